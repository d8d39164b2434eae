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
use switchboard_tests::load::{open_loop, send_webhook, setup_webhook, Row};
use switchboard_tests::{write_config, Api, Server, ADMIN};

#[derive(Parser)]
struct Args {
    /// Target request rates (per second).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1000, 2500, 5000, 7500, 10000])]
    rates: Vec<u64>,
    /// Seconds per rate.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Durability modes to compare (`postgres`: the PostgreSQL store on a scratch
    /// cluster this starts, instead of sled).
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

/// One request of the scenario; true when it got the expected status.
async fn send(api: &Api, http: &reqwest::Client, scenario: &str, i: u64) -> bool {
    if scenario == "webhook" {
        send_webhook(http, &api.url, i).await
    } else {
        let body = json!({"title": format!("bench {i}"), "requester": "bench", "category": "hardware"});
        matches!(api.call("POST", "/tickets", Some(&body)).await, Ok((201, _)))
    }
}

async fn run_rate(api: &Api, scenario: &str, mode: &str, rate: u64, seconds: u64, connections: usize) -> Row {
    let (api, scenario, http) = (api.clone(), scenario.to_string(), reqwest::Client::new());
    open_loop(mode, rate, seconds, connections, move |i| {
        let (api, scenario, http) = (api.clone(), scenario.clone(), http.clone());
        async move { send(&api, &http, &scenario, i).await }
    })
    .await
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut rows = Vec::new();
    for mode in &args.modes {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), "workers = 8").unwrap();
        let store = if mode == "postgres" {
            vec!["--store".to_string(), switchboard::store::postgres::scratch::database().await.unwrap()]
        } else {
            vec!["--durability".to_string(), mode.clone()]
        };
        let store: Vec<&str> = store.iter().map(String::as_str).collect();
        let server = Server::start(&dir.path().join("data"), &config, &store).unwrap();
        let api = Api::new(&server.url, ADMIN);
        if args.scenario == "webhook" {
            setup_webhook(&api).await.unwrap();
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
