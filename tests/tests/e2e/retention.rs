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
    sled::SledStore, AuditStore, DocKind, DocStore, Durability, RunFilter, RunStore, TicketStore,
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
        retention: Retention { runs_days: 30, deliveries_days: 7, audit_days: 60, every_minutes: 0 },
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
    // The three old tickets' `note` runs; the `hold` run still waits.
    assert_eq!((pruned.runs, pruned.deliveries, pruned.audit), (3, 1, 0), "{pruned:?}");
    assert!(store.run(&old_runs[0].id).await.unwrap().is_none(), "the finished run is gone");
    assert!(store.runs(&RunFilter { ticket: Some(old.clone()), ..Default::default() }).await.unwrap().is_empty());
    let waiting = store.runs(&RunFilter { ticket: Some(held.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(waiting.len(), 1, "a waiting run stays however old");
    assert_eq!(store.runs(&RunFilter { ticket: Some(new), ..Default::default() }).await.unwrap().len(), 1);
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
