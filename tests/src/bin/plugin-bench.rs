//! Plugin-call benchmark, in process (no HTTP): what a workflow `plugin` step pays.
//!
//! - `echo`: a minimal module (WebAssembly text) that copies its input to its output:
//!   the pure overhead of a call (fresh instance from the pool, JSON in and out, the
//!   blocking-thread hop, limits).
//! - `kb-suggest.suggest`: the demo plugin built with the SDK (rustc 1.63): overhead
//!   plus a real action's work and its std start-up.
//!
//! Reports p50/p99 of sequential calls and calls/s with concurrent callers.
//! `cargo run --release -p switchboard-tests --bin plugin-bench`

#![allow(clippy::unwrap_used)] // a benchmark harness: a panic is a failed run

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::plugin::{directory::Directories, net::Net, CallContext, PluginConfig, PluginHost};
use switchboard::store::{sled::SledStore, Durability};

const ECHO: &str = r#"(module
  (@custom "switchboard-manifest" "{\"id\":\"echo\",\"version\":\"1.0.0\",\"abi\":1,\"actions\":[{\"name\":\"echo\"}]}")
  (import "switchboard" "input" (func $input (param i32 i32) (result i32)))
  (import "switchboard" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "__switchboard_abi_1"))
  (func (export "switchboard_invoke") (param $a i32) (param $n i32) (result i32)
    (drop (call $input (i32.const 0) (local.get $a)))
    (drop (call $output (local.get $a) (local.get $n)))
    (i32.const 0)))"#;

fn pct(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64
}

async fn measure(
    host: &Arc<PluginHost>,
    plugin: &str,
    action: &str,
    input: Value,
    n: usize,
    concurrency: usize,
) -> Value {
    let ctx = || CallContext { ticket: Value::Null, idempotency_key: None };
    for _ in 0..200 {
        host.call(plugin, action, input.clone(), ctx()).await.unwrap();
    }
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        host.call(plugin, action, input.clone(), ctx()).await.unwrap();
        lat.push(t.elapsed().as_nanos() as u64);
    }
    lat.sort_unstable();
    let seconds = 3.0;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (host, input) = (host.clone(), input.clone());
        let plugin = plugin.to_string();
        let action = action.to_string();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                host.call(&plugin, &action, input.clone(), CallContext { ticket: Value::Null, idempotency_key: None })
                    .await
                    .unwrap();
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let row = json!({
        "plugin": plugin, "action": action, "sequential_calls": n,
        "p50_us": pct(&lat, 0.5) / 1000.0, "p99_us": pct(&lat, 0.99) / 1000.0,
        "concurrency": concurrency, "calls_per_s": total as f64 / seconds,
    });
    eprintln!("{row}");
    row
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 16 << 20, Durability::None).unwrap());
    let host = PluginHost::new(
        PluginConfig::default(),
        store,
        Net::new(Default::default()),
        Directories::new(Default::default()),
    )
    .unwrap();
    host.install(&wat::parse_str(ECHO).unwrap(), "bench", switchboard::plugin::Installer::Admin).await.unwrap();
    let kb = switchboard_tests::plugin_wasm("kb-suggest");
    host.install(&std::fs::read(kb).unwrap(), "bench", switchboard::plugin::Installer::Admin).await.unwrap();
    let rows = vec![
        measure(&host, "echo", "echo", json!({"title": "VPN down", "n": 1}), 20_000, 16).await,
        measure(
            &host,
            "kb-suggest",
            "suggest",
            json!({"title": "I forgot my password", "description": "reset"}),
            20_000,
            16,
        )
        .await,
    ];
    let (cpu, cores) = switchboard_tests::machine();
    let out = std::path::Path::new("docs/benchmarks");
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(
        out.join("plugins.json"),
        serde_json::to_string_pretty(&json!({"cpu": cpu, "cores": cores, "rows": rows})).unwrap(),
    )
    .unwrap();
    let mut md = format!("# Plugin calls\n\nMachine: {cpu}, {cores} cores. In process, release build.\n\n| plugin.action | p50 µs | p99 µs | calls/s ({} callers) |\n|---|---|---|---|\n", rows[0]["concurrency"]);
    for r in &rows {
        md.push_str(&format!(
            "| {}.{} | {:.1} | {:.1} | {:.0} |\n",
            r["plugin"].as_str().unwrap(),
            r["action"].as_str().unwrap(),
            r["p50_us"].as_f64().unwrap(),
            r["p99_us"].as_f64().unwrap(),
            r["calls_per_s"].as_f64().unwrap()
        ));
    }
    std::fs::write(out.join("plugins.md"), md).unwrap();
}
