//! Sandbox tests with hand-written modules (WebAssembly text): the attacks that need
//! exact control of the ABI boundary, which a Rust plugin built with the SDK cannot make.

use super::*;

use super::tests_support::{host, MANIFEST};

/// A module exporting the ABI marker, the manifest section and `switchboard_invoke`
/// with the given body (locals: `$a $b` are the parameters).
fn module(imports: &str, body: &str, extra: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
            (@custom "switchboard-manifest" "{manifest}")
            (import "switchboard" "output" (func $output (param i32 i32) (result i32)))
            (import "switchboard" "error" (func $error (param i32 i32) (result i32)))
            (import "switchboard" "input" (func $input (param i32 i32) (result i32)))
            (import "switchboard" "call" (func $call (param i32 i32 i32 i32) (result i32)))
            (import "switchboard" "take" (func $take (param i32) (result i32)))
            {imports}
            (memory (export "memory") 1)
            (func (export "__switchboard_abi_1"))
            {extra}
            (func (export "switchboard_invoke") (param $a i32) (param $b i32) (result i32) {body}))"#,
        manifest = MANIFEST.replace('"', "\\\"")
    );
    wat::parse_str(text).expect("test module compiles")
}

async fn run(host: &PluginHost, wasm: &[u8]) -> Result<CallOutcome, PluginError> {
    host.install(wasm, "test", crate::plugin::Installer::Admin).await?;
    host.call("wat", "go", Value::Null, CallContext { ticket: Value::Null, idempotency_key: None }).await
}

/// A body that hands back, as its output, a JSON array with one digit per expression:
/// the negated value of each (host statuses are small negative numbers).
fn report(statuses: &[&str]) -> String {
    let mut body = String::new();
    body.push_str("(i32.store8 (i32.const 2048) (i32.const 91))"); // '['
    for (i, s) in statuses.iter().enumerate() {
        let at = 2049 + 2 * i;
        body.push_str(&format!("(i32.store8 (i32.const {at}) (i32.add (i32.const 48) (i32.sub (i32.const 0) {s})))"));
        let sep = if i + 1 == statuses.len() { 93 } else { 44 }; // ']' or ','
        body.push_str(&format!("(i32.store8 (i32.const {}) (i32.const {sep}))", at + 1));
    }
    body.push_str(&format!("(drop (call $output (i32.const 2048) (i32.const {})))", 1 + 2 * statuses.len()));
    body.push_str("(i32.const 0)");
    body
}

#[tokio::test]
async fn bad_pointers_and_lengths_get_status_codes_not_host_panics() {
    let (_d, host) = host();
    let calls = [
        "(call $output (i32.const -16) (i32.const 100))", // past the end of memory
        "(call $output (i32.const 0) (i32.const -1))",    // negative length
        "(call $call (i32.const 65530) (i32.const 64) (i32.const 0) (i32.const 2))", // op straddles the end
        "(call $input (i32.const 70000) (i32.const 0))",  // action buffer outside memory
        "(call $take (i32.const 0))",                     // nothing pending
        "(call $call (i32.const 0) (i32.const 65) (i32.const 0) (i32.const 1))", // op name too long
    ];
    let out = run(&host, &module("", &report(&calls), "")).await.expect("call completes");
    // INVALID_MEMORY=4, BAD_ARGUMENT=1, INVALID_MEMORY=4, INVALID_MEMORY=4, NOTHING_PENDING=7, LIMIT_EXCEEDED=3
    assert_eq!(out.output, serde_json::json!([4, 1, 4, 4, 7, 3]));
}

#[tokio::test]
async fn table_growth_bomb_is_refused() {
    let (_d, host) = host();
    let body = "(drop (table.grow $t (ref.null func) (i32.const 1000000))) (unreachable)";
    let wasm = module("", body, "(table $t 1 funcref)");
    let err = run(&host, &wasm).await.expect_err("traps");
    assert_eq!(err.code, "table_limit", "{err}");
}

#[tokio::test]
async fn memory_grow_bomb_is_refused() {
    let (_d, host) = host();
    let body = "(if (i32.eq (memory.grow (i32.const 60000)) (i32.const -1)) (then (unreachable))) (i32.const 0)";
    let err = run(&host, &module("", body, "")).await.expect_err("traps");
    assert_eq!(err.code, "memory_limit", "{err}");
}

#[tokio::test]
async fn deep_wasm_recursion_overflows_the_guest_stack_not_the_host() {
    let (_d, host) = host();
    let extra = "(func $down (param i64) (result i64) (i64.add (i64.const 1) (call $down (local.get 0))))";
    let body = "(drop (call $down (i64.const 0))) (i32.const 0)";
    let err = run(&host, &module("", body, extra)).await.expect_err("traps");
    assert_eq!(err.code, "stack_overflow", "{err}");
}

#[tokio::test]
async fn a_plugin_for_a_newer_abi_is_refused_at_install_with_a_clear_message() {
    let (_d, host) = host();
    let newer = wat::parse_str(format!(
        r#"(module (@custom "switchboard-manifest" "{}") (memory (export "memory") 1)
           (func (export "__switchboard_abi_2")) (func (export "switchboard_invoke") (param i32 i32) (result i32) (i32.const 0)))"#,
        MANIFEST.replace('"', "\\\"")
    ))
    .expect("compiles");
    let err = host.install(&newer, "test", crate::plugin::Installer::Admin).await.expect_err("refused");
    assert!(err.message.contains("plugin ABI 2") && err.message.contains("supports ABI 1"), "{err}");
}

#[tokio::test]
async fn modules_importing_anything_else_or_lacking_a_manifest_are_refused() {
    let (_d, host) = host();
    let foreign = module(r#"(import "env" "system" (func (param i32) (result i32)))"#, "(i32.const 0)", "");
    let err = host.install(&foreign, "test", crate::plugin::Installer::Admin).await.expect_err("refused");
    assert!(err.message.contains("env::system"), "{err}");
    let bare = wat::parse_str(r#"(module (func (export "__switchboard_abi_1")) (func (export "switchboard_invoke") (param i32 i32) (result i32) (i32.const 0)))"#).expect("compiles");
    assert!(host
        .install(&bare, "test", crate::plugin::Installer::Admin)
        .await
        .expect_err("refused")
        .message
        .contains("switchboard-manifest"));
    assert_eq!(
        host.install(b"not wasm", "test", crate::plugin::Installer::Admin).await.expect_err("refused").code,
        "invalid_plugin"
    );
}

#[tokio::test]
async fn wasi_files_and_sockets_answer_errno() {
    let (_d, host) = host();
    let imports = r#"(import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
                     (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))"#;
    // Each entry is 1 when the call answered ENOSYS (52).
    let checks = [
        "(i32.sub (i32.const 0) (i32.eq (i32.const 52) (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))))",
        "(i32.sub (i32.const 0) (i32.eq (i32.const 52) (call $accept (i32.const 3) (i32.const 0) (i32.const 0))))",
    ];
    let out = run(&host, &module(imports, &report(&checks), "")).await.expect("completes");
    assert_eq!(out.output, serde_json::json!([1, 1]));
}
