//! Fixed-rate benchmark of durable ticket creation.
//!
//! For each durability mode it starts a real `switchboard` process on a fresh data
//! directory, then for each target rate sends `POST /tickets` on an open-loop schedule:
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

async fn run_rate(api: &Api, mode: &str, rate: u64, seconds: u64, connections: usize) -> Row {
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
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while let Some((i, due)) = recv(&rx).await {
                let body = json!({"title": format!("bench {i}"), "requester": "bench", "category": "hardware"});
                match api.call("POST", "/tickets", Some(&body)).await {
                    Ok((201, _)) => lat.push(Instant::now().duration_since(due).as_micros() as u64),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
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
        // Warm up connections and the data file.
        run_rate(&api, mode, 500, 1, args.connections).await;
        for &rate in &args.rates {
            let row = run_rate(&api, mode, rate, args.seconds, args.connections).await;
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

fn write_report(args: &Args, rows: &[Row]) {
    std::fs::create_dir_all(&args.out).unwrap();
    let (cpu, cores) = switchboard_tests::machine();
    let machine = json!({"cpu": cpu, "cores": cores, "note": "load generator and server share the machine", "connections": args.connections});
    std::fs::write(
        args.out.join("tickets.json"),
        serde_json::to_string_pretty(&json!({"machine": machine, "seconds_per_rate": args.seconds, "rows": rows}))
            .unwrap(),
    )
    .unwrap();
    let mut md = format!(
        "# Ticket creation at fixed rates\n\nMachine: {cpu}, {cores} cores (load generator on the same machine). {}s per rate.\nLatency is measured from each request's scheduled send time (open loop).\n\n| durability | target/s | achieved/s | p50 ms | p99 ms | max ms | errors |\n|---|---|---|---|---|---|---|\n",
        args.seconds
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |\n",
            r.mode, r.target_rate, r.achieved_rate, r.p50_ms, r.p99_ms, r.max_ms, r.errors
        ));
    }
    std::fs::write(args.out.join("tickets.md"), md).unwrap();
}
