//! How long the console's pages take with a large desk: seeds a sled data directory with
//! 100k tickets (each with a history entry and a comment) and 500k runs (five per ticket,
//! with journals), approvals, dead letters and audit entries, written straight through
//! the store API; then starts `switchboard serve` on it, signs in, and asks each page
//! many times in a row, measuring from the client on loopback (an upper bound of the
//! server's own time). The dashboard's first view, which counts the whole desk for its
//! snapshot, is reported apart; so are the manager's reports (`GET /reports` over the
//! last week and the last 30 days by day), which read the period's tickets and the
//! backlog through the store's indexes.
//!
//! `console-bench [--tickets N] [--days D] [--open O] [--runs R] [--requests Q] [--no-backup]
//! [--out docs/benchmarks/console.json]`: N tickets (100,000) logged evenly over D days
//! (90), the newest O of them open (N/5), R runs per ticket (5).
//! See docs/benchmarks/README.md.

#![allow(clippy::unwrap_used)] // a benchmark harness: a panic is a failed run

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use switchboard::run::Run;
use switchboard::store::{sled::SledStore, DocKind, Durability, RunStore, Store, TicketStore, Tx, Write};
use switchboard::ticket::{Level, NewTicket, PriorityMatrix, Status};
use switchboard_tests::console::Console;
use switchboard_tests::{write_config, Server, ADMIN};

const GROUPS: [&str; 6] = ["network", "service-desk", "field", "identity", "apps", "facilities"];
const WORDS: [&str; 12] =
    ["printer", "vpn", "password", "laptop", "mail", "teams", "badge", "wifi", "sap", "monitor", "phone", "access"];
const STATUSES: [Status; 6] =
    [Status::New, Status::Assigned, Status::InProgress, Status::Pending, Status::Resolved, Status::Closed];

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The desk to seed.
struct Desk {
    tickets: usize,
    days: usize,
    open: usize,
    runs: usize,
}

async fn seed(store: &SledStore, desk: &Desk) {
    let Desk { tickets, days, open, runs } = *desk;
    let now = Utc::now();
    let span = Duration::days(i64::try_from(days).unwrap());
    let started = Instant::now();
    let mut tx = Tx::new();
    for i in 0..tickets {
        let id = store.next_ticket_id().await.unwrap();
        let created = now - span + span * i32::try_from(i).unwrap() / i32::try_from(tickets).unwrap();
        let word = WORDS[i % WORDS.len()];
        let new = NewTicket {
            title: format!("{word} problem number {i}"),
            description: format!("The {word} does not work for user u{}", i % 997),
            requester: format!("u{}", i % 997),
            group: Some(GROUPS[i % GROUPS.len()].into()),
            assignee: (i % 5 != 0).then(|| format!("agent{}", i % 30)),
            impact: [Level::High, Level::Medium, Level::Low][i % 3],
            urgency: [Level::Medium, Level::Low, Level::High][(i / 3) % 3],
            ..Default::default()
        };
        let mut t = new.into_ticket(id.clone(), &PriorityMatrix::default(), created);
        // Old tickets are done; the newest are open.
        t.status = if i + open < tickets { STATUSES[4 + i % 2] } else { STATUSES[i % 4] };
        if !t.status.is_open() {
            t.updated_at = created + Duration::hours(4);
        }
        t.comments.push(
            serde_json::from_value(
                json!({"id": 1, "author": "agent1", "body": "Looking into it", "internal": false, "at": created}),
            )
            .unwrap(),
        );
        tx.ticket(None, &mut t);
        tx.push(Write::History(
            serde_json::from_value(json!({"ticket_id": id, "event_id": "E-0", "at": created, "actor": "agent1",
                "changes": [{"field": "status", "from": "new", "to": t.status}]}))
            .unwrap(),
        ));
        for r in 0..runs {
            let rid = store.next_run_id().await.unwrap();
            let status = match (i * 5 + r) % 100 {
                0 | 1 => "failed",
                2 => "waiting",
                _ => "completed",
            };
            let at = created + Duration::seconds(r as i64);
            let mut run: Run = serde_json::from_value(json!({
                "id": rid, "workflow_id": format!("wf-{r}"), "workflow_revision": 1, "ticket_id": id, "event_id": "E-0",
                "event_type": "ticket.created", "actor": "agent1", "status": status, "cursor": null,
                "vars": {"input": {"n": i}}, "steps_done": 3, "created_at": at, "updated_at": at,
                "error": if status == "failed" { json!("plugin call failed: upstream 503") } else { Value::Null },
                "trace": [
                    {"at": at, "kind": "trigger", "outcome": "matched"},
                    {"at": at, "kind": "step", "step": "tag", "step_type": "set", "outcome": "completed"},
                    {"at": at, "kind": "step", "step": "note", "step_type": "comment", "outcome": "completed"},
                    {"at": at, "kind": "finished", "outcome": status}
                ]
            }))
            .unwrap();
            tx.run(&mut run);
        }
        if tx.writes.len() >= 2_000 {
            store.commit(std::mem::take(&mut tx)).await.unwrap();
        }
        if (i + 1) % 20_000 == 0 {
            eprintln!("seeded {} tickets, {} runs in {:.0?}", i + 1, (i + 1) * runs, started.elapsed());
        }
    }
    // Approvals: many decided, a few pending for the admin (indexed at the server's start).
    for n in 1..=2_000usize {
        let pending = n % 100 == 0;
        let stage = json!({"name": "manager", "policy": "any", "need": 1, "status": if pending { "pending" } else { "approved" },
            "slots": [{"approver": if pending { "admin" } else { "agent3" }, "acting": if pending { "admin" } else { "agent3" }}]});
        let a = json!({"id": format!("A-{n}"), "run_id": format!("R-{}", n * 5), "ticket_id": format!("T-{n}"),
            "workflow_id": "wf-0", "step": "ask", "stages": [stage], "current": 0,
            "status": if pending { "pending" } else { "approved" }, "created_at": now});
        tx.doc(DocKind::Approval, &format!("A-{n}"), &a);
    }
    for n in 1..=200 {
        let letter = json!({"id": format!("R-{}-post", n * 50), "url": "https://noc.example/hook", "secret": "default",
            "run": format!("R-{}", n * 50), "step": "post", "ticket": format!("T-{}", n * 10), "delivery": format!("d-{n}"), "body": {}, "error": "503",
            "attempts": [], "at": now});
        tx.doc(DocKind::DeadLetter, &format!("R-{}-post", n * 50), &letter);
    }
    for n in 0..2_000 {
        tx.push(Write::Audit(
            serde_json::from_value(json!({"at": now, "actor": "admin", "action": "workflow.publish", "target": format!("wf-{}", n % 5), "detail": {}}))
                .unwrap(),
        ));
    }
    store.commit(tx).await.unwrap();
    eprintln!("seeded in {:.0?}", started.elapsed());
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tickets = arg("--tickets", 100_000);
    let desk = Desk { tickets, days: arg("--days", 90), open: arg("--open", tickets / 5), runs: arg("--runs", 5) };
    let requests = arg("--requests", 200);
    let backup = !std::env::args().any(|a| a == "--no-backup");
    let out = std::env::args().skip_while(|a| a != "--out").nth(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = Arc::new(SledStore::open(&data, 256 << 20, Durability::None).unwrap());
        let engine = switchboard::executor::Engine::new(
            store.clone(),
            Arc::new(switchboard::clock::SystemClock),
            Arc::new(switchboard::config::Config::default()),
        )
        .unwrap();
        for r in 0..5 {
            let wf = json!({"id": format!("wf-{r}"), "name": format!("Workflow {r}"), "triggers": [{"on": "manual"}],
                "steps": [{"id": "note", "type": "comment", "body": "hello", "internal": true}]});
            engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "bench").await.unwrap();
        }
        seed(&store, &desk).await;
        drop(engine);
        store.close().unwrap();
    }
    let size: u64 = std::fs::read_dir(&data).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    let config = write_config(dir.path(), "").unwrap();
    let started = Instant::now();
    let server = Server::start(&data, &config, &[]).unwrap();
    let ready = started.elapsed();
    let mut console = Console::new(&server.url);
    assert_eq!(console.sign_in(ADMIN).await.status, 303);
    let mid = tickets / 2;
    let pages = [
        "/console".to_string(),
        "/console/tickets".into(),
        "/console/tickets?status=new".into(),
        "/console/tickets?group=identity&status=pending".into(),
        "/console/tickets?assignee=agent7".into(),
        "/console/tickets?text=vpn".into(),
        "/console/tickets?text=no-such-words".into(),
        format!("/console/tickets?after=T-{mid}"),
        format!("/console/tickets/T-{mid}"),
        "/console/runs".into(),
        "/console/runs?status=failed".into(),
        format!("/console/runs?ticket=T-{mid}"),
        format!("/console/runs/R-{}", (mid * desk.runs).max(1)),
        "/console/workflows".into(),
        "/console/approvals".into(),
        "/console/schedules".into(),
        "/console/dead-letters".into(),
        "/console/audit".into(),
        "/console/plugins".into(),
        "/console/webhooks".into(),
    ];
    let cold = Instant::now();
    assert_eq!(console.get("/console").await.status, 200);
    let cold_ms = cold.elapsed().as_secs_f64() * 1000.0;
    let mut rows = Vec::new();
    println!("| page | p50 ms | p99 ms | max ms |\n|---|---|---|---|");
    for page in &pages {
        for _ in 0..10 {
            assert_eq!(console.get(page).await.status, 200, "{page}");
        }
        let mut ms = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let p = console.get(page).await;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(p.status, 200, "{page}");
        }
        ms.sort_by(f64::total_cmp);
        let (p50, p99, max) = (percentile(&ms, 0.5), percentile(&ms, 0.99), ms[ms.len() - 1]);
        println!("| `{page}` | {p50:.2} | {p99:.2} | {max:.2} |");
        rows.push(json!({"page": page, "p50_ms": p50, "p99_ms": p99, "max_ms": max}));
    }
    // The manager's reports through the API: the last week by group, the last 30 days
    // by day (timed apart: each reads its period's tickets and the open backlog).
    let http = reqwest::Client::new();
    let url = console.base.clone();
    let mut reports = Vec::new();
    println!("\n| report | p50 ms | p99 ms | max ms |\n|---|---|---|---|");
    for query in ["period=week&by=group", "from={30d}&bucket=day&by=priority"] {
        let from = (Utc::now() - Duration::days(30)).format("%Y-%m-%d").to_string();
        let path = format!("/reports?{}", query.replace("{30d}", &from));
        let mut ms = Vec::new();
        for _ in 0..(requests / 10).max(5) {
            let t = Instant::now();
            let r = http.get(format!("{url}{path}")).bearer_auth(ADMIN).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.bytes().await.unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(f64::total_cmp);
        let (p50, p99, max) = (percentile(&ms, 0.5), percentile(&ms, 0.99), ms[ms.len() - 1]);
        println!("| `{path}` | {p50:.1} | {p99:.1} | {max:.1} |");
        reports.push(json!({"report": path, "p50_ms": p50, "p99_ms": p99, "max_ms": max}));
    }
    // An online backup of the same store, with tickets written meanwhile.
    let (backup_bytes, backup_ms, worst_write_ms) = if backup {
        let writer = tokio::spawn({
            let (http, url) = (http.clone(), url.clone());
            async move {
                let mut worst = 0f64;
                for i in 0..400 {
                    let t = Instant::now();
                    let r = http
                        .post(format!("{url}/tickets"))
                        .bearer_auth(ADMIN)
                        .json(&json!({"title": format!("during backup {i}"), "requester": "bench"}))
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                    worst = worst.max(t.elapsed().as_secs_f64() * 1000.0);
                }
                worst
            }
        });
        let t = Instant::now();
        let resp = http.post(format!("{url}/admin/backup")).bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let backup_bytes = resp.bytes().await.unwrap().len();
        let backup_ms = t.elapsed().as_secs_f64() * 1000.0;
        let worst_write_ms = writer.await.unwrap();
        println!(
            "\nbackup: {} MiB in {backup_ms:.0} ms (downloaded); slowest ticket write meanwhile {worst_write_ms:.0} ms",
            backup_bytes >> 20
        );
        (backup_bytes, backup_ms, worst_write_ms)
    } else {
        (0, 0.0, 0.0)
    };
    println!("\ndashboard's first view (counts the last 30 days and the backlog for the snapshot): {cold_ms:.0} ms");
    println!("server ready on the seeded store after {ready:.1?}; data directory {} MiB", size >> 20);
    let report = json!({"tickets": tickets, "days": desk.days, "open": desk.open, "runs": tickets * desk.runs,
        "requests_per_page": requests, "dashboard_first_view_ms": cold_ms, "backup_mib": backup_bytes >> 20,
        "backup_ms": backup_ms, "slowest_write_during_backup_ms": worst_write_ms, "ready_ms": ready.as_millis() as u64,
        "data_mib": size >> 20, "pages": rows, "reports": reports});
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }
}
