//! The server on PostgreSQL (a real cluster started by the test, `initdb` + `pg_ctl` on a
//! loopback port): tickets, runs, approvals, webhooks and timers work as on sled; every
//! acknowledged write survives a `kill -9`; readiness reports the database; `switchboard
//! migrate` applies the schema.

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard::store::postgres::scratch;
use switchboard_tests::{binary, post_hook, printer_triage, write_config, Api, Server, ADMIN};

const HOOK_SECRET: &str = "pg-hook-signing-secret-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_on_postgres_and_keeps_every_acknowledged_write_through_kill_9() {
    let url = scratch::database().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let data = dir.path().join("unused-data");
    let store_args = ["--store", url.as_str()];

    // `migrate` on an empty database, then again (nothing to do).
    for _ in 0..2 {
        let out = std::process::Command::new(binary()).args(["migrate", "--store", &url]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("schema is up to date"));
    }

    let mut server = Server::start(&data, &config, &store_args).unwrap();
    let api = Api::new(&server.url, ADMIN);
    assert_eq!(api.get("/health/ready").await.unwrap()["status"], "ready");
    // A second node on the same database is refused (exit code 3), naming it.
    let second = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(store_args)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(3), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(String::from_utf8_lossy(&second.stderr).contains("served by another switchboard node"));
    let (status, body) = api.call("POST", "/admin/backup", None).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (501, Some("backup_not_here")), "{body}");
    api.post("/workflows", &printer_triage("printer")).await.unwrap();
    api.post(
        "/webhooks",
        &json!({"id": "alerts", "name": "alerts", "secret": HOOK_SECRET, "action": {"type": "create_ticket"},
            "mapping": {"fields": {"title": {"pointer": "/subject"}, "requester": {"value": "monitoring"}}}}),
    )
    .await
    .unwrap();
    let first = api.post("/tickets", &json!({"title": "printer jammed", "requester": "ann"})).await.unwrap();
    let first = first["ticket"]["id"].as_str().unwrap().to_string();
    api.wait_idle(Duration::from_secs(30)).await.unwrap();
    let ticket = api.get(&format!("/tickets/{first}")).await.unwrap();
    assert_eq!(ticket["category"], "hardware", "{ticket}");
    assert!(!server.url.is_empty() && !data.exists(), "nothing written to a data directory");

    // A webhook delivery and its replay answer the same ticket.
    let http = reqwest::Client::new();
    let payload = json!({"subject": "printer on fire"});
    let a = post_hook(&http, &server.url, "alerts", HOOK_SECRET, &payload, Some("d-1")).await.unwrap();
    let a: serde_json::Value = a.json().await.unwrap();
    let b = post_hook(&http, &server.url, "alerts", HOOK_SECRET, &payload, Some("d-1")).await.unwrap();
    let b: serde_json::Value = b.json().await.unwrap();
    assert_eq!(a["ticket"], b["ticket"], "{a} / {b}");

    // Writers create tickets while the server is killed under them: every acknowledged
    // ticket is there after the restart, and its run completes.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (api, stop) = (api.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let body = json!({"title": format!("printer {w}-{i}"), "requester": "crash"});
                match api.call("POST", "/tickets", Some(&body)).await {
                    Ok((201, out)) => acked.push(out["ticket"]["id"].as_str().unwrap().to_string()),
                    _ => break,
                }
            }
            acked
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while api.get("/tickets?requester=crash&limit=1000").await.unwrap()["tickets"].as_array().unwrap().len() < 40 {
        assert!(std::time::Instant::now() < deadline, "the writers stopped before 40 tickets");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() >= 40, "{}", acked.len());

    let server = Server::start(&data, &config, &store_args).unwrap();
    let api = Api::new(&server.url, ADMIN);
    api.wait_idle(Duration::from_secs(60)).await.unwrap();
    for id in &acked {
        let t = api.get(&format!("/tickets/{id}")).await.unwrap();
        assert_eq!(t["category"], "hardware", "{id}: acknowledged, kept, and its run finished: {t}");
        let runs = api.get(&format!("/runs?ticket={id}")).await.unwrap();
        let runs = runs["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{id}: one run, not two: {runs:?}");
        assert_eq!(runs[0]["status"], "completed", "{id}");
    }
    // Numbers continue after a restart: a new ticket is not an old id.
    let new = api.post("/tickets", &json!({"title": "after", "requester": "ann"})).await.unwrap();
    let new = new["ticket"]["id"].as_str().unwrap().to_string();
    assert!(!acked.contains(&new) && new != first, "{new}");
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_stops_the_start_naming_it_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://sb:hunter2-secret@127.0.0.1:{port}/sb");
    let out = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(["--store", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")) && !err.contains("hunter2"), "{err}");
    let bad = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(["--store", "mysql://x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
}
