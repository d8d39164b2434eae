//! The `switchboard` binary; everything lives in the library (see `cli`).

#[global_allocator]
static ALLOCATOR: switchboard::Allocator = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchboard::cli::main()
}
