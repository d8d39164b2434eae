//! `explain`: why each workflow and SLA policy did or did not apply to a ticket — matched,
//! not matched with the first failing comparison, refused by the loop guard, never
//! triggered — through the engine and the CLI.

use serde_json::{json, Value};
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::Config;
use switchboard::executor::Engine;
use switchboard::store::{sled::SledStore, Durability, Store};
use switchboard::ticket::NewTicket;
use switchboard_tests::{binary, repo};

async fn publish(engine: &Arc<Engine>, wf: Value) {
    engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "test").await.unwrap();
}

fn workflow<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["workflows"].as_array().unwrap().iter().find(|w| w["workflow"] == id).unwrap()
}

#[tokio::test]
async fn explain_says_matched_not_matched_refused_and_never_triggered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap());
    let clock = FakeClock::new("2026-11-02T08:00:00Z".parse().unwrap());
    let engine = Engine::new(store.clone(), Arc::new(clock), Arc::new(Config::default())).unwrap();
    let sla: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("workflows/sla/standard.json")).unwrap()).unwrap();
    engine.put_calendar(serde_json::from_value(sla["calendars"][0].clone()).unwrap()).await.unwrap();
    engine.put_sla_policy(serde_json::from_value(sla["policies"][0].clone()).unwrap()).await.unwrap();
    publish(
        &engine,
        json!({"id": "network", "name": "n", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.category", "op": "eq", "value": "network"},
        "steps": [{"id": "n", "type": "comment", "body": "network"}]}),
    )
    .await;
    publish(
        &engine,
        json!({"id": "note", "name": "n", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "n", "type": "set", "fields": {"custom.state": "a"}}]}),
    )
    .await;
    publish(&engine, json!({"id": "flip", "name": "flip",
        "triggers": [{"on": "ticket.updated", "changed": [{"field": "custom.state"}]}],
        "steps": [
            {"id": "which", "type": "if", "condition": {"field": "ticket.custom.state", "op": "eq", "value": "a"}, "then": "to-b"},
            {"id": "to-a", "type": "set", "fields": {"custom.state": "a"}, "next": "end"},
            {"id": "to-b", "type": "set", "fields": {"custom.state": "b"}}]}))
    .await;
    publish(
        &engine,
        json!({"id": "replies", "name": "r", "triggers": [{"on": "comment.added", "internal": false}],
        "steps": [{"id": "n", "type": "comment", "body": "thanks"}]}),
    )
    .await;
    let new = NewTicket {
        title: "Printer jam".into(),
        requester: "ann".into(),
        category: Some("hardware".into()),
        ..Default::default()
    };
    let id = engine.create_ticket(new, "ann").await.unwrap().ticket.id;
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }

    let report = serde_json::to_value(engine.explain(&id).await.unwrap()).unwrap();
    let network = workflow(&report, "network");
    let summary = network["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "triggered 1 time(s), conditions never held: ticket.category eq \"network\" was false (saw \"hardware\")"
        ),
        "{summary}"
    );
    assert_eq!(workflow(&report, "note")["summary"], "ran 1 time(s)");
    let flip = workflow(&report, "flip")["summary"].as_str().unwrap();
    assert!(flip.contains("refused 1 time(s) by the loop guard"), "{flip}");
    let refused =
        workflow(&report, "flip")["events"].as_array().unwrap().iter().find(|e| e["outcome"] == "refused").unwrap();
    assert!(refused["reason"].as_str().unwrap().starts_with("loop guard"));
    let replies = workflow(&report, "replies")["summary"].as_str().unwrap();
    assert_eq!(replies, "not triggered: no event of this ticket matched its triggers (comment.added)");
    assert_eq!(report["sla_policies"][0]["why"], "measures this ticket");

    // The CLI renders the same from the data directory.
    engine.shutdown().await;
    store.close().unwrap();
    drop(engine);
    drop(store);
    let out =
        std::process::Command::new(binary()).args(["explain", &id, "--data-dir"]).arg(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("  network (revision 1): triggered 1 time(s), conditions never held"), "{text}");
    assert!(text.contains("  standard: measures this ticket"), "{text}");
    let missing =
        std::process::Command::new(binary()).args(["explain", "T-999", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("T-999"));
}
