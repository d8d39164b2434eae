//! Fixed-rate benchmark of durable ticket creation (`--scenario tickets`) and of inbound
//! webhooks that durably start a run (`--scenario webhook`: a signed `POST /hooks/bench`
//! with a unique delivery id, mapped into a ticket whose `ticket.created` starts a run;
//! the 202 comes once ticket, run and delivery record are committed).
//!
//! For each durability mode it starts a real `switchboard` process on a fresh data
//! directory, then for each target rate sends requests on an open-loop schedule:
//! request *i* is due at `start + i / rate` and its latency is measured from that due
//! time, not from when it was actually sent, so a stalled server cannot hide its stall
//! (no coordinated omission). Writes `docs/benchmarks/tickets.{md,json}`.
//!
//! `cargo run --release -p switchboard-tests --bin loadgen -- --help`

#![allow(clippy::unwrap_used)] // a benchmark harness: a panic is a failed run

use clap::Parser;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_tests::{write_config, Api, Server, ADMIN};

#[derive(Parser)]
struct Args {
    /// Target request rates (per second).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1000, 2500, 5000, 7500, 10000])]
    rates: Vec<u64>,
    /// Seconds per rate.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Durability modes to compare.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["group".to_string(), "per-request".to_string(), "none".to_string()])]
    modes: Vec<String>,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Where to write the report.
    #[arg(long, default_value = "docs/benchmarks")]
    out: std::path::PathBuf,
    /// `tickets` (POST /tickets) or `webhook` (signed POST /hooks/bench starting a run).
    #[arg(long, default_value = "tickets")]
    scenario: String,
}

const HOOK_SECRET: &str = "bench-webhook-secret-0123456789";

/// One request of the scenario; true when it got the expected status.
async fn send(api: &Api, http: &reqwest::Client, scenario: &str, i: u64) -> bool {
    if scenario == "webhook" {
        let body = serde_json::to_vec(
            &json!({"event_id": format!("evt-{i}"), "summary": format!("bench {i}"), "user": "bench"}),
        )
        .unwrap();
        let t = chrono::Utc::now().timestamp();
        let resp = http
            .post(format!("{}/hooks/bench", api.url))
            .header("content-type", "application/json")
            .header("x-switchboard-signature", switchboard::notify::sign(HOOK_SECRET.as_bytes(), t, &body))
            .header("idempotency-key", format!("evt-{i}"))
            .body(body)
            .send()
            .await;
        matches!(resp, Ok(r) if r.status().as_u16() == 202)
    } else {
        let body = json!({"title": format!("bench {i}"), "requester": "bench", "category": "hardware"});
        matches!(api.call("POST", "/tickets", Some(&body)).await, Ok((201, _)))
    }
}

/// Registers the webhook scenario's endpoint and the workflow its tickets start.
async fn setup_webhook(api: &Api) {
    api.post(
        "/webhooks",
        &json!({"id": "bench", "secret": HOOK_SECRET, "action": {"type": "create_ticket"},
            "rate_limit": {"per_second": 1e9, "burst": 1_000_000_000u64},
            "mapping": {"fields": {"title": {"pointer": "/summary"}, "requester": {"pointer": "/user"},
                "category": {"value": "monitoring"}}}}),
    )
    .await
    .unwrap();
    api.post(
        "/workflows",
        &json!({"id": "bench-run", "name": "bench", "triggers": [{"on": "ticket.created"}],
            "conditions": {"field": "ticket.category", "op": "eq", "value": "monitoring"},
            "steps": [{"id": "hold", "type": "wait", "minutes": 60}]}),
    )
    .await
    .unwrap();
}

#[derive(serde::Serialize, Clone)]
struct Row {
    mode: String,
    target_rate: u64,
    sent: u64,
    ok: u64,
    errors: u64,
    achieved_rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    flushes_per_s: Option<f64>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

async fn run_rate(api: &Api, scenario: &str, mode: &str, rate: u64, seconds: u64, connections: usize) -> Row {
    let total = rate * seconds;
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    // The schedule: request i is due at start + i/rate. A fixed pool of keep-alive
    // connections takes due requests in order; when all are busy, requests wait and that
    // wait counts in their latency.
    let (tx, rx) = async_channel(total as usize);
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (api, rx, errors) = (api.clone(), rx.clone(), errors.clone());
        let scenario = scenario.to_string();
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut lat = Vec::new();
            while let Some((i, due)) = recv(&rx).await {
                if send(&api, &http, &scenario, i).await {
                    lat.push(Instant::now().duration_since(due).as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    for i in 0..total {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        if tx.send((i, due)).is_err() {
            break;
        }
    }
    drop(tx);
    let mut lat = Vec::with_capacity(total as usize);
    for w in workers {
        lat.extend(w.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    Row {
        mode: mode.to_string(),
        target_rate: rate,
        sent: total,
        ok: lat.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        achieved_rate: lat.len() as f64 / elapsed,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        flushes_per_s: None,
    }
}

type Job = (u64, Instant);
type Rx = Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Job>>>;

fn async_channel(_capacity: usize) -> (tokio::sync::mpsc::UnboundedSender<Job>, Rx) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (tx, Arc::new(tokio::sync::Mutex::new(rx)))
}

async fn recv(rx: &Rx) -> Option<Job> {
    rx.lock().await.recv().await
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut rows = Vec::new();
    for mode in &args.modes {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), "workers = 8").unwrap();
        let server = Server::start(&dir.path().join("data"), &config, &["--durability", mode]).unwrap();
        let api = Api::new(&server.url, ADMIN);
        if args.scenario == "webhook" {
            setup_webhook(&api).await;
        }
        // Warm up connections and the data file.
        run_rate(&api, &args.scenario, mode, 500, 1, args.connections).await;
        for &rate in &args.rates {
            let row = run_rate(&api, &args.scenario, mode, rate, args.seconds, args.connections).await;
            eprintln!(
                "{mode:>11} {rate:>6}/s: achieved {:>8.0}/s p50 {:>7.2} ms p99 {:>8.2} ms max {:>8.2} ms errors {}",
                row.achieved_rate, row.p50_ms, row.p99_ms, row.max_ms, row.errors
            );
            rows.push(row);
        }
        drop(server);
    }
    write_report(&args, &rows);
}

fn report_name(args: &Args) -> &'static str {
    if args.scenario == "webhook" {
        "webhooks"
    } else {
        "tickets"
    }
}

fn write_report(args: &Args, rows: &[Row]) {
    std::fs::create_dir_all(&args.out).unwrap();
    let (cpu, cores) = switchboard_tests::machine();
    let machine = json!({"cpu": cpu, "cores": cores, "note": "load generator and server share the machine", "connections": args.connections});
    std::fs::write(
        args.out.join(format!("{}.json", report_name(args))),
        serde_json::to_string_pretty(&json!({"machine": machine, "seconds_per_rate": args.seconds, "rows": rows}))
            .unwrap(),
    )
    .unwrap();
    let mut md = format!(
        "# {} at fixed rates\n\nMachine: {cpu}, {cores} cores (load generator on the same machine). {}s per rate.\nLatency is measured from each request's scheduled send time (open loop).\n\n| durability | target/s | achieved/s | p50 ms | p99 ms | max ms | errors |\n|---|---|---|---|---|---|---|\n",
        if args.scenario == "webhook" { "Signed inbound webhook -> durably started run" } else { "Ticket creation" },
        args.seconds
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |\n",
            r.mode, r.target_rate, r.achieved_rate, r.p50_ms, r.p99_ms, r.max_ms, r.errors
        ));
    }
    std::fs::write(args.out.join(format!("{}.md", report_name(args))), md).unwrap();
}
