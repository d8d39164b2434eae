//! A burst of inbound events against the real server: tickets are logged as fast as the
//! webhooks arrive, their runs wait in the store (not as tasks in memory) until workers
//! take them, and the process's resident memory, sampled from `/proc` all along, stays
//! within a bound that does not grow with the burst.
//!
//! 20,000 events by default; `BURST_EVENTS=100000` for the full-size run the docs report.

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_tests::{post_hook, write_config, Api, Server, ADMIN};

const HOOK_SECRET: &str = "burst-signing-secret-0123456789";

/// Resident memory of process `pid`, in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_events_queues_runs_in_the_store_with_memory_bounded() {
    let events: usize = std::env::var("BURST_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    // A small run queue, so the burst outruns it by far whatever the machine's speed.
    let config = write_config(dir.path(), "run_queue = 256\nworkers = 8\n").unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    api.post(
        "/workflows",
        &json!({"id": "triage", "name": "triage", "triggers": [{"on": "ticket.created"}],
            "steps": [{"id": "note", "type": "comment", "body": "Logged from monitoring", "internal": true},
                      {"id": "tag", "type": "set", "fields": {"tags": ["monitoring"], "category": "alert"}}]}),
    )
    .await
    .unwrap();
    api.post(
        "/webhooks",
        &json!({"id": "alerts", "name": "alerts", "secret": HOOK_SECRET, "action": {"type": "create_ticket"},
            "rate_limit": {"per_second": 1e9, "burst": 1_000_000_000u64},
            "mapping": {"fields": {"title": {"pointer": "/subject"}, "requester": {"value": "monitoring"}}}}),
    )
    .await
    .unwrap();

    let pid = server.child.id();
    let samples: Arc<Mutex<Vec<(usize, f64)>>> = Arc::default();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (samples, sent, done) = (samples.clone(), sent.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if let Some(mib) = rss_mib(pid) {
                    samples.lock().unwrap().push((sent.load(Ordering::SeqCst), mib));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // 32 senders, each posting its share as fast as the server answers.
    let http = reqwest::Client::new();
    let mut senders = Vec::new();
    let (mut most_in_flight, queue) = (0f64, 256f64);
    for s in 0..32 {
        let (http, url, sent) = (http.clone(), server.url.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            for i in (s..events).step_by(32) {
                let payload = json!({"subject": format!("disk full on host-{i}")});
                let delivery = format!("burst-{i}");
                let resp = post_hook(&http, &url, "alerts", HOOK_SECRET, &payload, Some(&delivery)).await.unwrap();
                assert!(resp.status().is_success(), "{}", resp.text().await.unwrap_or_default());
                sent.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut pending_seen = 0u64;
    while senders.iter().any(|s| !s.is_finished()) {
        most_in_flight = most_in_flight.max(api.metric("switchboard_runs_in_flight").await.unwrap());
        let pending = api.get("/runs?status=pending&limit=1000").await.unwrap()["runs"].as_array().unwrap().len();
        pending_seen = pending_seen.max(pending as u64);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for s in senders {
        s.await.unwrap();
    }
    api.wait_idle(Duration::from_secs(600)).await.unwrap();
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();

    // Every event became a ticket, and every run completed once.
    let health = api.get("/health").await.unwrap();
    let completed = api.metric("switchboard_runs_total{workflow=\"triage\",outcome=\"completed\"}").await.unwrap();
    assert_eq!(completed as usize, events, "{health}");
    // The queue's runs, plus the few tasks of runs that just finished (one of them
    // refilling the queue from the store) before they end.
    assert!(most_in_flight <= queue + 8.0, "never more runs in memory than the queue holds: {most_in_flight}");
    assert!(pending_seen > 0, "the burst outran the workers: runs waited in the store");

    // Memory: sampled all along; the peak, draining included, stays under a bound that
    // is the same for any size of burst (measured: 223 MiB after 20,000 events, 263 MiB
    // after 100,000, with sled's 64 MiB cache), and what it gains after the first fifth
    // of the burst (the cache and the queue are filled by then) is small.
    let samples = samples.lock().unwrap().clone();
    let peak = |lo: usize, hi: usize| {
        samples.iter().filter(|(n, _)| (lo..hi).contains(n)).map(|(_, m)| *m).fold(0f64, f64::max)
    };
    let (early, late) = (peak(events / 5, events * 3 / 10), peak(events / 2, usize::MAX));
    let deciles: Vec<String> =
        (0..10).map(|d| format!("{:.0}", peak(events * d / 10, events * (d + 1) / 10))).collect();
    eprintln!(
        "burst of {events}: RSS peak per tenth of the burst (MiB): {}; draining included: {late:.0}",
        deciles.join(" ")
    );
    assert!(early > 0.0 && late > 0.0, "sampled: {} samples", samples.len());
    assert!(late < 384.0, "resident memory {late:.0} MiB");
    assert!(late < early + 128.0, "resident memory grew with the burst: {early:.0} -> {late:.0} MiB");
}
