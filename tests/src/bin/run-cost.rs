//! Runs a fixed number of the benchmark's 5-step runs (one WASM plugin call each)
//! in-process, on a sled store, and exits: the workload for counting CPU instructions
//! per completed run with `valgrind --tool=callgrind`, which is repeatable on a noisy
//! machine where wall-clock figures drift. Instructions per run is the difference
//! between two counts (N runs and 0 runs) over N, so start-up and plugin compilation
//! drop out. See docs/benchmarks/README.md.
//!
//! `run-cost <runs> [park]`: with `park`, the workflow is the webhook benchmark's instead
//! (one `wait` step that parks the run for an hour): the cost of logging a ticket and
//! durably starting and parking its run.

#![allow(clippy::unwrap_used)] // a benchmark harness: a panic is a failed run

use serde_json::json;
use std::sync::Arc;
use switchboard::clock::SystemClock;
use switchboard::config::Config;
use switchboard::executor::Engine;
use switchboard::store::{sled::SledStore, Durability};
use switchboard::ticket::NewTicket;

#[global_allocator]
static GLOBAL: switchboard::Allocator = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(200);
    let park = std::env::args().nth(2).as_deref() == Some("park");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 64 << 20, Durability::Group).unwrap());
    // A small plugin pool: valgrind cannot map the default pool's address space
    // reservation (32 instances × several GiB of guard regions).
    let mut config = Config::default();
    config.plugins.pool_size = 2;
    let engine = Engine::new(store, Arc::new(SystemClock), Arc::new(config)).unwrap();
    let wasm = std::fs::read(switchboard_tests::plugin_wasm("kb-suggest")).unwrap();
    engine.plugins().install(&wasm, "bench", switchboard::plugin::Installer::Admin).await.unwrap();
    let wf = json!({"id": "five", "name": "five steps", "triggers": [{"on": "ticket.created"}],
    "steps": [
        {"id": "one", "type": "set", "fields": {"custom.step": 1}},
        {"id": "suggest", "type": "plugin", "plugin": "kb-suggest", "action": "suggest", "input": {"title": "{{ticket.title}}"}},
        {"id": "three", "type": "comment", "body": "score {{vars.suggest.score}}"},
        {"id": "four", "type": "set", "fields": {"custom.step": 4}},
        {"id": "five", "type": "resolve", "resolution": "done"}
    ]});
    let wf = if park {
        json!({"id": "park", "name": "park", "triggers": [{"on": "ticket.created"}],
            "steps": [{"id": "hold", "type": "wait", "minutes": 60}]})
    } else {
        wf
    };
    engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "bench").await.unwrap();
    let started = std::time::Instant::now();
    for i in 0..runs {
        let new = NewTicket { title: format!("printer jam {i}"), requester: "bench".into(), ..Default::default() };
        engine.create_ticket(new, "bench").await.unwrap();
    }
    // Polled with a sleep, not a spin: a busy wait would count as the engine's work.
    while engine.runs_in_flight() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    eprintln!("{runs} runs in {:.2} s", started.elapsed().as_secs_f64());
    engine.shutdown().await;
}
