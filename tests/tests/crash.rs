//! `kill -9` in the middle of runs, then restart: every acknowledged ticket is there,
//! and interrupted runs finish without repeating completed steps. 20 rounds by default
//! (about 40 s); `CRASH_ROUNDS=200` for a long run.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use axum::{extract::State, http::HeaderMap, routing::post, Router};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_tests::{write_config, Api, Server, ADMIN};

type Deliveries = Arc<Mutex<HashMap<String, u32>>>;

/// A slow receiver, so that runs are mid-flight when the server dies.
async fn slow_hook(State(seen): State<Deliveries>, headers: HeaderMap) -> axum::http::StatusCode {
    tokio::time::sleep(Duration::from_millis(30)).await;
    let id = headers.get("x-switchboard-delivery").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    *seen.lock().unwrap().entry(id).or_default() += 1;
    axum::http::StatusCode::OK
}

fn probe(port: u16) -> Value {
    json!({
        "id": "crash-probe", "name": "Five steps, one of them slow",
        "triggers": [{"on": "ticket.created"}],
        "steps": [
            {"id": "one", "type": "comment", "body": "one {{run.id}}"},
            {"id": "two", "type": "set", "fields": {"custom.two": "{{run.id}}"}},
            {"id": "three", "type": "comment", "body": "three {{run.id}}"},
            {"id": "four", "type": "notify", "url": format!("http://127.0.0.1:{port}/hook")},
            {"id": "five", "type": "comment", "body": "five {{run.id}}"}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_run_loses_no_acknowledged_ticket_and_repeats_no_step() {
    let rounds: usize = std::env::var("CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seen: Deliveries = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/hook", post(slow_hook)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "workers = 16").unwrap();
    let data = dir.path().join("data");
    let mut acked: Vec<String> = Vec::new();
    {
        let server = Server::start(&data, &config, &[]).unwrap();
        Api::new(&server.url, ADMIN).post("/workflows", &probe(port)).await.unwrap();
    }
    for round in 0..rounds {
        let mut server = Server::start(&data, &config, &[]).unwrap();
        let api = Api::new(&server.url, ADMIN);
        // Eight writers create tickets until the server dies under them.
        let mut writers = Vec::new();
        for w in 0..8 {
            let api = api.clone();
            writers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0.. {
                    let body = json!({"title": format!("round {round} writer {w} #{i}"), "requester": "crash"});
                    match api.call("POST", "/tickets", Some(&body)).await {
                        Ok((201, out)) => mine.push(out["ticket"]["id"].as_str().unwrap().to_string()),
                        _ => break,
                    }
                }
                mine
            }));
        }
        // Kill at a different point each round, while runs are in flight.
        tokio::time::sleep(Duration::from_millis(150 + 70 * round as u64)).await;
        server.kill9();
        for w in writers {
            acked.extend(w.await.unwrap());
        }
    }
    assert!(acked.len() > 50, "the test should create a fair number of tickets, made {}", acked.len());

    // Restart and let interrupted runs finish.
    let server = Server::start(&data, &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    let started = Instant::now();
    api.wait_idle(Duration::from_secs(60)).await.unwrap();
    eprintln!(
        "{} acknowledged tickets over {rounds} kills; resumed runs finished in {:?}",
        acked.len(),
        started.elapsed()
    );

    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len(), "ticket ids are never handed out twice");
    for id in &acked {
        let t =
            api.get(&format!("/tickets/{id}")).await.unwrap_or_else(|e| panic!("acknowledged ticket {id} lost: {e}"));
        let runs = api.get(&format!("/runs?ticket={id}")).await.unwrap()["runs"].as_array().unwrap().clone();
        assert_eq!(runs.len(), 1, "{id}: exactly one run per ticket, got {runs:?}");
        let run = &runs[0];
        let rid = run["id"].as_str().unwrap();
        assert_eq!(run["status"], "completed", "{id}: {run}");
        assert_eq!(run["steps_done"], 5, "{id}: no step counted twice");
        let bodies: Vec<&str> = t["comments"].as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap()).collect();
        assert_eq!(
            bodies,
            [format!("one {rid}"), format!("three {rid}"), format!("five {rid}")],
            "{id}: each comment step ran exactly once"
        );
        assert_eq!(t["custom"]["two"], rid);
        let step_entries = run["trace"].as_array().unwrap().iter().filter(|e| e["kind"] == "step").count();
        assert_eq!(step_entries, 5, "{id}: trace has one entry per step");
    }
    // The webhook is at-least-once: each run delivered it, possibly more than once if a
    // kill hit between the delivery and its commit (documented), never zero times.
    let seen = seen.lock().unwrap().clone();
    for id in &acked {
        let runs = api.get(&format!("/runs?ticket={id}")).await.unwrap();
        let rid = runs["runs"][0]["id"].as_str().unwrap().to_string();
        assert!(seen.get(&format!("{rid}/four")).copied().unwrap_or(0) >= 1, "{rid} never delivered");
    }
}
