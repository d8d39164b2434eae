//! The `switchboard` binary, built inside this package so integration tests can start
//! it as a real process through `CARGO_BIN_EXE_switchboard-under-test`.

#[global_allocator]
static ALLOCATOR: switchboard::Allocator = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchboard::cli::main()
}
