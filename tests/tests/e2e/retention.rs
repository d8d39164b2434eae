//! Retention, in process on a real sled store with a fake clock: finished runs, inbound
//! delivery records and audit entries older than the configured days go; waiting runs,
//! newer records and the tickets themselves stay, and the report over the pruned period
//! gives the same figures.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::{Config, Retention};
use switchboard::executor::Engine;
use switchboard::report::Query;
use switchboard::store::{
    sled::SledStore, AuditStore, DocKind, DocStore, Durability, EventStore, RunFilter, RunStore, TicketStore,
};
use switchboard::ticket::NewTicket;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn old_finished_work_is_pruned_and_what_reports_count_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = FakeClock::new(utc("2026-01-05T09:00:00Z"));
    let config = Config {
        retention: Retention {
            runs_days: 30,
            deliveries_days: 7,
            audit_days: 60,
            approvals_days: 30,
            every_minutes: 0,
        },
        ..Config::default()
    };
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(config)).unwrap();
    let publish = |wf: serde_json::Value| {
        let engine = engine.clone();
        async move { engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "admin").await.unwrap() }
    };
    publish(json!({"id": "note", "name": "note", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "n", "type": "comment", "body": "seen", "internal": true}]}))
    .await;
    publish(json!({"id": "hold", "name": "hold", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.title", "op": "contains", "value": "hold"},
        "steps": [{"id": "w", "type": "wait", "until": {"field": "ticket.status", "op": "eq", "value": "resolved"}}]}))
    .await;
    publish(json!({"id": "ask", "name": "ask", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.title", "op": "contains", "value": "ask"},
        "steps": [{"id": "ok", "type": "approval", "stages": [{"name": "boss", "approvers": [{"user": "ann"}]}]}]}))
    .await;
    let endpoint: switchboard::webhook::Endpoint = serde_json::from_value(json!({"id": "mon", "name": "mon",
        "secret": "monitoring-secret-0123456789", "action": {"type": "create_ticket"},
        "mapping": {"fields": {"title": {"pointer": "/title"}, "requester": {"value": "monitoring"}}}}))
    .unwrap();
    let (endpoint, _) = engine.put_endpoint(endpoint, "admin").await.unwrap();
    let idle = || async {
        while engine.runs_in_flight() > 0 {
            tokio::task::yield_now().await;
        }
    };
    let log = |title: &str| {
        let engine = engine.clone();
        let new = NewTicket { title: title.into(), requester: "ann".into(), ..Default::default() };
        async move { engine.create_ticket(new, "ann").await.unwrap().ticket.id }
    };
    let old = log("printer").await;
    let held = log("hold this").await;
    let (asked, asked_again) = (log("ask for access").await, log("ask again").await);
    idle().await;
    let approvals: Vec<switchboard::approval::Approval> =
        switchboard::store::list_docs(&*store, DocKind::Approval, None, 10).await.unwrap();
    let approval_of = |ticket: &str| approvals.iter().find(|a| a.ticket_id == ticket).unwrap().id.clone();
    let (decided, undecided) = (approval_of(&asked), approval_of(&asked_again));
    engine.decide(&decided, "ann", true, "", switchboard::approval::Channel::Api, None).await.unwrap();
    engine.deliver(&endpoint, &json!({"title": "disk full"}), Some("d-old".into())).await.unwrap();
    idle().await;
    let report_before = |engine: Arc<Engine>| async move {
        let q = Query {
            from: utc("2026-01-01T00:00:00Z"),
            to: utc("2026-01-10T00:00:00Z"),
            by: None,
            bucket: None,
            tz: chrono_tz::UTC,
            savings: Default::default(),
        };
        serde_json::to_value(engine.report(&q).await.unwrap()).unwrap()
    };
    let figures = report_before(engine.clone()).await;
    let old_runs = store.runs(&RunFilter { ticket: Some(old.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(old_runs.len(), 1);

    // Forty days on: a new ticket and delivery; the old finished run and delivery go.
    clock.advance(Duration::days(40));
    let new = log("printer again").await;
    engine.deliver(&endpoint, &json!({"title": "disk full again"}), Some("d-new".into())).await.unwrap();
    idle().await;
    let pruned = engine.prune().await.unwrap();
    // The five old tickets' `note` runs and the decided `ask` run; the `hold` run and
    // the undecided `ask` run still wait. The decided approval goes, the other stays.
    assert_eq!((pruned.runs, pruned.deliveries, pruned.audit, pruned.approvals), (6, 1, 0, 1), "{pruned:?}");
    assert!(store.doc(DocKind::Approval, &decided).await.unwrap().is_none());
    assert!(store.doc(DocKind::Approval, &undecided).await.unwrap().is_some());
    // The events that started the old runs go with them; the new ticket's stay.
    assert!(pruned.events >= 6, "{pruned:?}");
    assert!(store.ticket_events(&old).await.unwrap().is_empty());
    assert!(!store.ticket_events(&new).await.unwrap().is_empty());
    assert!(store.run(&old_runs[0].id).await.unwrap().is_none(), "the finished run is gone");
    assert!(store.runs(&RunFilter { ticket: Some(old.clone()), ..Default::default() }).await.unwrap().is_empty());
    let waiting = store.runs(&RunFilter { ticket: Some(held.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(waiting.len(), 1, "a waiting run stays however old");
    assert_eq!(store.runs(&RunFilter { ticket: Some(new.clone()), ..Default::default() }).await.unwrap().len(), 1);
    assert!(store.doc(DocKind::Delivery, "mon/d-old").await.unwrap().is_none());
    assert!(store.doc(DocKind::Delivery, "mon/d-new").await.unwrap().is_some());
    assert!(store.ticket(&old).await.unwrap().is_some(), "tickets are kept");
    assert_eq!(report_before(engine.clone()).await, figures, "the report over the pruned period is unchanged");
    assert_eq!(engine.prune().await.unwrap(), Default::default(), "nothing more to prune");

    // The audit log: entries older than 60 days go.
    let audit_before = store.audit(1000).await.unwrap().len();
    assert!(audit_before >= 3, "publishes and the endpoint");
    clock.advance(Duration::days(30));
    let pruned = engine.prune().await.unwrap();
    assert_eq!(pruned.audit as usize, audit_before);
    assert!(store.audit(1000).await.unwrap().is_empty());
}

/// Size of the files in a directory, in bytes.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// A soak: runs created and finished day after day (on a fake clock), pruned as
/// configured; the data directory stops growing once retention removes a day's work as
/// fast as a day adds it. 8 simulated days by default; `SOAK_DAYS` for longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_use_stays_flat_while_runs_come_and_go() {
    const PER_DAY: usize = 144;
    let days: usize = std::env::var("SOAK_DAYS").ok().and_then(|v| v.parse().ok()).unwrap_or(8).max(6);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = FakeClock::new(utc("2026-01-05T00:00:00Z"));
    let config = Config {
        retention: Retention { runs_days: 2, deliveries_days: 2, audit_days: 2, approvals_days: 2, every_minutes: 0 },
        ..Config::default()
    };
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(config)).unwrap();
    // Two steps that read the ticket and change nothing: the churn is runs and events.
    let check = json!({"id": "check", "name": "check", "triggers": [{"on": "manual"}],
        "steps": [{"id": "p1", "type": "if", "condition": {"field": "ticket.priority", "op": "eq", "value": "P1"}, "then": "page"},
                  {"id": "page", "type": "if", "condition": {"field": "ticket.status", "op": "eq", "value": "new"}, "then": "p1", "else": "end"}]});
    let check = switchboard::workflow::validate_value(&check);
    let new = NewTicket { title: "watched host".into(), requester: "monitoring".into(), ..Default::default() };
    let ticket = engine.create_ticket(new, "monitoring").await.unwrap().ticket.id;
    match check {
        Ok(def) => engine.put_workflow(def, "admin").await.unwrap(),
        Err(e) => panic!("{e:?}"),
    };
    let mut sizes = Vec::new();
    for _ in 0..days {
        for _ in 0..PER_DAY {
            engine.start_manual("check", &ticket, json!({}), "monitoring").await.unwrap();
            // Each run finishes before the clock moves on: what a day keeps is exact,
            // however slow the machine.
            while engine.runs_in_flight() > 0 {
                tokio::task::yield_now().await;
            }
            clock.advance(Duration::minutes(24 * 60 / PER_DAY as i64));
        }
        engine.prune().await.unwrap();
        switchboard::store::Store::commit(&*store, switchboard::store::Tx::new()).await.unwrap();
        sizes.push(dir_bytes(dir.path()) >> 10);
    }
    let runs = store.runs(&RunFilter { ticket: Some(ticket.clone()), limit: Some(1000), ..Default::default() }).await;
    let kept = runs.unwrap().len();
    eprintln!("data directory per day (KiB): {sizes:?}; runs kept {kept}");
    assert_eq!(kept, 2 * PER_DAY, "exactly the last two days' runs are kept");
    let events = store.ticket_events(&ticket).await.unwrap().len();
    assert_eq!(events, 2 * PER_DAY, "exactly the last two days' events are kept");
    // From the fifth day on (two days kept, a day being written), no day's size exceeds
    // the largest of days 3 and 4 by half (sled grows its file in 512 KiB segments and
    // reuses them as it cleans; measured: 2.5 MiB on day 3, then 2.5-3 MiB to day 8).
    // Without retention the directory grows by a day's runs every day (~0.7 MiB).
    let settled = sizes[2].max(sizes[3]);
    let worst = sizes[4..].iter().copied().max().unwrap_or(0);
    assert!(worst <= settled * 3 / 2, "the data directory kept growing: {sizes:?}");
}
