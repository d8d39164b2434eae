//! The plugin ABI boundary under fuzzing: a guest module that turns its input into a
//! program of host calls with arbitrary pointers and lengths, driven by proptest.
//!
//! The guest ([`super::fuzz_guest`], WebAssembly text) decodes its input (a JSON string of
//! letters `a`-`p`, two per byte) into 17-byte instructions `op a b c d` and runs them:
//! `input(a, b)`, `output(a, b)`, `error(a, b)`, `call(a, b, c, d)`, `take(a)`, then
//! returns the byte before the program as the invoke status. Its memory holds every host
//! operation name and a few well-formed and malformed requests at known offsets, so
//! generated programs reach deep into the host (logs, config, kv, http, ldap) as well
//! as its pointer checks.
//!
//! Property: whatever the program, the call ends with an output or a `PluginError`
//! (never a host panic, hang or unbounded allocation), and the host keeps serving.
//! CI runs 64 cases per test run; a long run: `PROPTEST_CASES=20000 cargo test -p
//! switchboard --lib plugin::fuzz`.

use super::fuzz_guest::{encode, guest_wat, OPS, REQUESTS};
use super::tests_support::{host, MANIFEST};
use super::*;
use proptest::prelude::*;

/// Pointers: memory edges, inside, outside, negative, and the known strings.
fn pointer() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0),
        Just(65535),
        Just(65536),
        Just(-1),
        Just(i32::MAX),
        Just(i32::MIN),
        0..70_000i32,
        any::<i32>(),
        proptest::sample::select(OPS.iter().chain(REQUESTS.iter()).map(|(o, _)| *o).collect::<Vec<_>>()),
    ]
}

/// Lengths: empty, small, the known strings', past the limits, negative.
fn length() -> impl Strategy<Value = i32> {
    prop_oneof![Just(0), 1..64i32, Just(65536), Just(1 << 20), Just(-1), any::<i32>(), 1..8192i32,]
}

/// One instruction; `call` mostly names a real operation with a real or broken request.
fn instruction() -> impl Strategy<Value = [i32; 5]> {
    let call = (proptest::sample::select(OPS.to_vec()), proptest::sample::select(REQUESTS.to_vec()))
        .prop_map(|((o, ol), (r, rl))| [3, o, ol, r, rl]);
    prop_oneof![
        3 => call,
        1 => (0..5i32, pointer(), length(), pointer(), length()).prop_map(|(op, a, b, c, d)| [op, a, b, c, d]),
        1 => (pointer(), length()).prop_map(|(a, b)| [1, a, b, 0, 0]),
        1 => pointer().prop_map(|a| [4, a, 0, 0, 0]),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_host_calls_fail_their_own_call_only(
        program in proptest::collection::vec(instruction(), 0..48),
        status in any::<u8>(),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let (_dir, host) = host();
            host.install(&wat::parse_str(guest_wat(MANIFEST)).expect("fuzz guest compiles"), "fuzz", crate::plugin::Installer::Admin).await.expect("installs");
            let started = std::time::Instant::now();
            let result = host.call("wat", "go", encode(&program, status), CallContext { ticket: Value::Null, idempotency_key: None }).await;
            // Within the plugin's deadline (300 ms) plus scheduling slack.
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(5));
            if let Err(e) = &result {
                prop_assert!(!e.code.is_empty() && e.code.len() <= 64 && e.message.len() <= 4096, "{e:?}");
            }
            // The host still answers a well-behaved call afterwards.
            // The host still answers a well-behaved program afterwards: log, then output.
            let good = encode(&[[3, OPS[0].0, OPS[0].1, REQUESTS[0].0, REQUESTS[0].1], [1, REQUESTS[0].0, REQUESTS[0].1, 0, 0]], 0);
            let again = host.call("wat", "go", good, CallContext { ticket: Value::Null, idempotency_key: None }).await.expect("host still serves");
            prop_assert_eq!(again.output, serde_json::json!({"level": "info", "message": "fuzz"}));
            prop_assert!(again.logs.iter().any(|l| l.contains("fuzz")), "{:?}", again.logs);
            Ok(())
        })?;
    }
}
