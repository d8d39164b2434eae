//! Time benchmarks, in process over a real sled store with the real clock.
//!
//! - `waiting`: N tickets each start a run that parks at a one-week `wait` (a run record,
//!   a waiting-index entry and a timer each). Reports the time to park them, the process
//!   RSS while doing so and after a restart (the engine reopened on the same files: what
//!   a server holding N waiting runs costs), the disk used and the payload it holds.
//! - `crons`: W workflows scheduled every minute (all due on the same second) while
//!   tickets are created at a fixed rate. For every occurrence in the measured window it
//!   reports how late the run was written (`created_at - scheduled_for`) and how late its
//!   first step ran (which includes the commit), p50/p99/max, and counts missed and
//!   doubled occurrences.
//!
//! `cargo run --release -p switchboard-tests --bin time-bench -- waiting --runs 1000000`
//! `cargo run --release -p switchboard-tests --bin time-bench -- crons --workflows 10000 --minutes 2`

#![allow(clippy::unwrap_used)] // a benchmark harness: a panic is a failed run

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::clock::SystemClock;
use switchboard::config::Config;
use switchboard::executor::Engine;
use switchboard::store::{sled::SledStore, Durability, RunStore, Store};
use switchboard::ticket::NewTicket;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
    /// Where to write the JSON result (printed to stdout as well).
    #[arg(long, global = true)]
    out: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Scenario {
    /// N runs parked at a wait: RSS and disk.
    Waiting {
        #[arg(long, default_value_t = 1_000_000)]
        runs: usize,
        /// Tickets created concurrently.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Opens an existing data directory in this (fresh) process and reports its RSS.
    Reopen {
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// W every-minute schedules firing together under ticket load: lateness.
    Crons {
        #[arg(long, default_value_t = 10_000)]
        workflows: usize,
        /// Minute boundaries to measure.
        #[arg(long, default_value_t = 2)]
        minutes: usize,
        /// Tickets created per second meanwhile (fixed rate).
        #[arg(long, default_value_t = 500)]
        ticket_rate: u64,
    },
}

/// Resident memory that is the process's own (heap, stacks), not pages of the mapped
/// executable (a release binary with debug info is ~180 MB, and touched text counts in
/// VmRSS).
fn anon_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

fn disk_mib(dir: &Path) -> f64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total as f64 / (1 << 20) as f64
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn open(dir: &Path) -> (Arc<SledStore>, Arc<Engine>) {
    let mut config = Config::default();
    if let Some(mb) = std::env::var("CACHE_MB").ok().and_then(|v| v.parse().ok()) {
        config.cache_mb = mb; // the server's `cache_mb`; default 64
    }
    let store = Arc::new(SledStore::open(dir, config.cache_mb << 20, Durability::Group).unwrap());
    let engine = Engine::new(store.clone(), Arc::new(SystemClock), Arc::new(config)).unwrap();
    (store, engine)
}

async fn publish(engine: &Arc<Engine>, wf: Value) {
    engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "bench").await.unwrap();
}

async fn idle(engine: &Arc<Engine>) {
    while engine.runs_in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn waiting(runs: usize, concurrency: usize) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = open(dir.path());
    publish(
        &engine,
        json!({"id": "park", "name": "park", "triggers": [{"on": "ticket.created"}],
               "steps": [{"id": "week", "type": "wait", "minutes": 10080,
                          "until": {"field": "ticket.status", "op": "eq", "value": "resolved"}}]}),
    )
    .await;
    let started = Instant::now();
    let per_task = runs.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let n = task * per_task + i;
                if n >= runs {
                    break;
                }
                let new = NewTicket {
                    title: format!("Laptop {n} will not boot"),
                    requester: format!("user{}", n % 5000),
                    ..Default::default()
                };
                engine.create_ticket(new, "bench").await.unwrap();
            }
        }));
    }
    let mut peak_during = 0.0f64;
    let mut peak_anon = 0.0f64;
    let mut progress = tokio::time::interval(Duration::from_secs(10));
    let all = futures_join(tasks);
    tokio::pin!(all);
    loop {
        tokio::select! {
            _ = &mut all => break,
            _ = progress.tick() => {
                let (rss, _) = rss_mib();
                peak_during = peak_during.max(rss);
                peak_anon = peak_anon.max(anon_mib());
                eprintln!("{:>6.0} s  rss {rss:.0} MiB, anon {:.0} MiB", started.elapsed().as_secs_f64(), anon_mib());
            }
        }
    }
    idle(&engine).await;
    let park_seconds = started.elapsed().as_secs_f64();
    let (rss_loaded, hwm_loaded) = rss_mib();
    let waiting_runs = store.runs(&switchboard::store::RunFilter::default()).await.unwrap().len(); // sanity: readable
    engine.shutdown().await;
    store.close().unwrap();
    drop(engine);
    drop(store);
    let disk = disk_mib(dir.path());

    // Restart on the same files in a fresh process: what a server with N parked runs holds.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["reopen", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let after: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut row = json!({
        "scenario": "waiting",
        "runs": runs,
        "park_seconds": park_seconds,
        "parked_per_s": runs as f64 / park_seconds,
        "rss_mib_while_parking_peak": peak_during.max(rss_loaded),
        "rss_hwm_mib": hwm_loaded,
        "rss_anon_mib_while_parking_peak": peak_anon.max(anon_mib()),
        "disk_mib": disk,
        "listing_ok": waiting_runs > 0,
        "after_restart": after,
    });
    let payload = row["after_restart"]["payload_mib"].as_f64().unwrap_or(f64::NAN);
    row["disk_over_payload"] = json!(disk / payload);
    row
}

/// Opens `dir` as a restarted server would (recover active runs, read the next timer)
/// and reports this process's RSS, then reads every entry to size the payload.
async fn reopen(dir: &Path) -> Value {
    let baseline = rss_mib().0;
    let t = Instant::now();
    let (store, engine) = open(dir);
    let resumed = engine.recover().await.unwrap();
    let next_timer = switchboard::store::TimeStore::next_timer(&*store).await.unwrap();
    let reopen_ms = t.elapsed().as_secs_f64() * 1000.0;
    idle(&engine).await;
    let rss_open = rss_mib().0;
    let anon_open = anon_mib();
    let (entries, payload) = store.payload().unwrap();
    let (rss_scanned, hwm) = rss_mib();
    engine.shutdown().await;
    json!({
        "rss_mib_process_start": baseline,
        "rss_mib_open": rss_open,
        "rss_anon_mib_open": anon_open,
        "rss_anon_mib_after_full_scan": anon_mib(),
        "rss_mib_after_full_scan": rss_scanned,
        "rss_hwm_mib": hwm,
        "reopen_ms": reopen_ms,
        "active_runs_resumed": resumed,
        "next_timer": next_timer,
        "payload_entries": entries,
        "payload_mib": payload as f64 / (1 << 20) as f64,
    })
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.unwrap();
    }
}

async fn crons(workflows: usize, minutes: usize, ticket_rate: u64) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = open(dir.path());
    let t = Instant::now();
    for i in 0..workflows {
        publish(
            &engine,
            json!({"id": format!("cron-{i}"), "name": "every minute",
                   "triggers": [{"on": "schedule", "cron": "* * * * *", "catch_up": "skip"}],
                   "steps": [{"id": "check", "type": "if", "then": "end",
                              "condition": {"field": "vars.schedule.missed", "op": "eq", "value": true}}]}),
        )
        .await;
    }
    eprintln!("published {workflows} schedules in {:.1} s", t.elapsed().as_secs_f64());
    engine.spawn_timers();

    // Measure the minute boundaries strictly after the first full minute from now.
    let now = Utc::now();
    let first = now.timestamp() / 60 * 60 + 120;
    let boundaries: Vec<DateTime<Utc>> =
        (0..minutes as i64).map(|m| DateTime::from_timestamp(first + 60 * m, 0).unwrap()).collect();
    let end = *boundaries.last().unwrap() + chrono::Duration::seconds(20);

    // Fixed-rate ticket creation until the end of the window.
    let load = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / ticket_rate.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = 0u64;
            while Utc::now() < end {
                tick.tick().await;
                let engine = engine.clone();
                n += 1;
                tokio::spawn(async move {
                    let new = NewTicket { title: format!("Ticket {n}"), requester: "ann".into(), ..Default::default() };
                    engine.create_ticket(new, "bench").await.unwrap();
                });
            }
            n
        })
    };
    let tickets = load.await.unwrap();
    idle(&engine).await;

    // Every run: which workflow, which occurrence, when written, when its step ran.
    let last = store.next_run_id().await.unwrap();
    let last: u64 = last.trim_start_matches("R-").parse().unwrap();
    let mut written = Vec::new();
    let mut stepped = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for n in 1..last {
        let Some(run) = store.run(&format!("R-{n}")).await.unwrap() else { continue };
        let Some(at) = run.vars.get("schedule").and_then(|s| s["scheduled_for"].as_str()) else { continue };
        let scheduled: DateTime<Utc> = at.parse().unwrap();
        if !boundaries.contains(&scheduled) {
            continue;
        }
        *seen.entry((run.workflow_id.clone(), at.to_string())).or_default() += 1;
        written.push((run.created_at - scheduled).num_microseconds().unwrap() as f64 / 1000.0);
        if let Some(step) = run.trace.iter().find(|e| e.kind == "step") {
            stepped.push((step.at - scheduled).num_microseconds().unwrap() as f64 / 1000.0);
        }
    }
    written.sort_by(f64::total_cmp);
    stepped.sort_by(f64::total_cmp);
    let expected = workflows * minutes;
    let doubled = seen.values().filter(|c| **c > 1).count();
    let row = json!({
        "scenario": "crons",
        "workflows": workflows,
        "minutes": minutes,
        "ticket_rate": ticket_rate,
        "tickets_created": tickets,
        "occurrences_expected": expected,
        "occurrences_fired": seen.len(),
        "missed": expected - seen.len().min(expected),
        "doubled": doubled,
        "written_late_ms": {"p50": pct(&written, 0.5), "p99": pct(&written, 0.99), "max": written.last()},
        "first_step_late_ms": {"p50": pct(&stepped, 0.5), "p99": pct(&stepped, 0.99), "max": stepped.last()},
    });
    engine.shutdown().await;
    store.close().unwrap();
    row
}

#[global_allocator]
static ALLOCATOR: switchboard::Allocator = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (cpu, cores) = switchboard_tests::machine();
    let mut row = match args.scenario {
        Scenario::Waiting { runs, concurrency } => waiting(runs, concurrency).await,
        Scenario::Crons { workflows, minutes, ticket_rate } => crons(workflows, minutes, ticket_rate).await,
        Scenario::Reopen { dir } => {
            println!("{}", reopen(&dir).await);
            return;
        }
    };
    row["machine"] = json!({"cpu": cpu, "cores": cores});
    row["durability"] = json!("group");
    let text = serde_json::to_string_pretty(&row).unwrap();
    println!("{text}");
    if let Some(out) = args.out {
        std::fs::write(out, text + "\n").unwrap();
    }
}
