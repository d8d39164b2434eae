//! What a run sees and does, in-process over real sled files with a fake clock:
//! `previous.<field>`, parents and their children.

use serde_json::{json, Value};
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::Config;
use switchboard::executor::Engine;
use switchboard::store::{sled::SledStore, Durability, TicketStore as _};
use switchboard::ticket::{Level, NewTicket, Ticket};
use switchboard_tests::repo;

pub struct Desk {
    pub engine: Arc<Engine>,
    pub store: Arc<SledStore>,
    pub clock: FakeClock,
    _dir: tempfile::TempDir,
}

impl Desk {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap());
        let clock = FakeClock::new("2026-11-02T09:00:00Z".parse().unwrap());
        let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(Config::default())).unwrap();
        Self { engine, store, clock, _dir: dir }
    }

    pub async fn publish(&self, wf: Value) {
        self.engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "admin").await.unwrap();
    }

    pub async fn publish_file(&self, name: &str) {
        let text = std::fs::read_to_string(repo().join("workflows").join(name)).unwrap();
        self.publish(serde_json::from_str(&text).unwrap()).await;
    }

    pub async fn settle(&self) {
        while self.engine.runs_in_flight() > 0 {
            tokio::task::yield_now().await;
        }
    }

    pub async fn ticket(&self, id: &str) -> Ticket {
        self.store.ticket(id).await.unwrap().unwrap()
    }
}

fn patch(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Regression: the reopen note said "was high" for a medium ticket, because the run's own
/// `set` step had raised urgency before the note read `previous.urgency`.
#[tokio::test]
async fn previous_is_the_value_before_the_triggering_event_even_after_the_run_changes_it() {
    let desk = Desk::new();
    desk.publish_file("reopen-note.json").await;
    let t =
        NewTicket { title: "printer".into(), requester: "ann".into(), urgency: Level::Medium, ..Default::default() };
    let id = desk.engine.create_ticket(t, "ann").await.unwrap().ticket.id;
    desk.engine.update_ticket(&id, &patch(json!({"status": "resolved"})), "alice").await.unwrap();
    desk.engine.update_ticket(&id, &patch(json!({"status": "reopened"})), "ann").await.unwrap();
    desk.settle().await;
    let ticket = desk.ticket(&id).await;
    assert_eq!(ticket.urgency, Level::High, "the run raised urgency");
    let note = ticket.comments.last().unwrap();
    assert_eq!(note.body, "Reopened by ann; urgency raised (was medium).");
    desk.engine.shutdown().await;
}

/// Regression: parents were resolved while their child tasks were still new. A parent
/// counts its open children (`ticket.open_children`), cannot be resolved before them
/// (a step fails naming them; the API answers 409), and a run can wait for them.
#[tokio::test]
async fn a_parent_is_resolved_only_after_its_children_and_a_run_can_wait_for_them() {
    let desk = Desk::new();
    desk.publish(json!({"id": "hasty", "name": "hasty", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.title", "op": "eq", "value": "hasty"},
        "steps": [{"id": "task", "type": "create_child", "ticket": {"kind": "task", "title": "do it"}},
                  {"id": "done", "type": "resolve"}]}))
        .await;
    desk.publish(json!({"id": "patient", "name": "patient", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.title", "op": "eq", "value": "patient"},
        "steps": [{"id": "task", "type": "create_child", "ticket": {"kind": "task", "title": "do it"}},
                  {"id": "wait", "type": "wait", "until": {"field": "ticket.open_children", "op": "eq", "value": 0}},
                  {"id": "done", "type": "resolve"}]}))
        .await;
    let new = |title: &str| NewTicket { title: title.into(), requester: "ann".into(), ..Default::default() };
    let hasty = desk.engine.create_ticket(new("hasty"), "ann").await.unwrap();
    desk.settle().await;
    use switchboard::store::RunStore as _;
    let run = desk.store.run(&hasty.runs[0]).await.unwrap().unwrap();
    assert_eq!(run.status, switchboard::run::RunStatus::Failed);
    let child = run.vars["task"]["ticket"].as_str().unwrap().to_string();
    let error = run.error.unwrap();
    assert!(error.contains("open child tickets") && error.contains(&child), "{error}");
    let parent = desk.ticket(&hasty.ticket.id).await;
    assert!(parent.status.is_open());
    assert_eq!(parent.open_children, 1);
    match desk.engine.update_ticket(&parent.id, &patch(json!({"status": "resolved"})), "alice").await {
        Err(switchboard::executor::Error::Conflict(m)) => assert!(m.contains(&child), "{m}"),
        other => panic!("resolving a parent with an open child: {other:?}"),
    }

    let patient = desk.engine.create_ticket(new("patient"), "ann").await.unwrap();
    desk.settle().await;
    let run = desk.store.run(&patient.runs[0]).await.unwrap().unwrap();
    assert_eq!(run.status, switchboard::run::RunStatus::Waiting, "waits for its task");
    let task = run.vars["task"]["ticket"].as_str().unwrap().to_string();
    desk.engine.update_ticket(&task, &patch(json!({"status": "resolved"})), "bob").await.unwrap();
    // The parent recounts on a durable timer due now, in the same commit as the child.
    assert!(desk.engine.fire_due_timers().await.unwrap() >= 1);
    desk.settle().await;
    let parent = desk.ticket(&patient.ticket.id).await;
    assert_eq!((parent.open_children, parent.status), (0, switchboard::ticket::Status::Resolved));
    let run = desk.store.run(&patient.runs[0]).await.unwrap().unwrap();
    assert_eq!(run.status, switchboard::run::RunStatus::Completed);
    // Reopening the task counts it again, with an update event on the parent.
    desk.engine.update_ticket(&task, &patch(json!({"status": "reopened"})), "bob").await.unwrap();
    desk.engine.fire_due_timers().await.unwrap();
    assert_eq!(desk.ticket(&patient.ticket.id).await.open_children, 1);
    use switchboard::store::EventStore as _;
    let events = desk.store.ticket_events(&patient.ticket.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.changes.iter().any(|c| c.field == "open_children" && c.to == json!(1))
            && e.actor == "system:children"),
        "{events:?}"
    );
    desk.engine.shutdown().await;
}

/// Regression (the drift the execution-core issue names): a run that ended at a wait
/// (resumed by an event, or timed out) or failed at a step got no `finished` trace entry;
/// one ended by the driver did. Every ending now goes through one transition.
#[tokio::test]
async fn every_way_a_run_ends_records_the_same_finished_entry() {
    let desk = Desk::new();
    desk.publish(json!({"id": "waits", "name": "waits", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.title", "op": "eq", "value": "waits"},
        "steps": [{"id": "w", "type": "wait", "until": {"field": "ticket.status", "op": "eq", "value": "in_progress"}}]}))
        .await;
    desk.publish(json!({"id": "times-out", "name": "times out", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.title", "op": "eq", "value": "times-out"},
        "steps": [{"id": "w", "type": "wait", "minutes": 5, "on_timeout": "end"}]}))
        .await;
    desk.publish(json!({"id": "fails", "name": "fails", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.title", "op": "eq", "value": "fails"},
        "steps": [{"id": "boom", "type": "fail", "reason": "on purpose"},
                  {"id": "never", "type": "comment", "body": "x"}]}))
        .await;
    let new = |title: &str| NewTicket { title: title.into(), requester: "ann".into(), ..Default::default() };
    let waits = desk.engine.create_ticket(new("waits"), "ann").await.unwrap();
    let times_out = desk.engine.create_ticket(new("times-out"), "ann").await.unwrap();
    let fails = desk.engine.create_ticket(new("fails"), "ann").await.unwrap();
    desk.settle().await;
    desk.engine.update_ticket(&waits.ticket.id, &patch(json!({"status": "in_progress"})), "alice").await.unwrap();
    desk.clock.advance(chrono::Duration::minutes(6));
    desk.engine.fire_due_timers().await.unwrap();
    desk.settle().await;
    use switchboard::store::RunStore as _;
    for (outcome, started) in [("completed", &waits), ("completed", &times_out), ("failed", &fails)] {
        let run = desk.store.run(&started.runs[0]).await.unwrap().unwrap();
        let last = run.trace.last().unwrap();
        assert_eq!((last.kind.as_str(), last.outcome.as_str()), ("finished", outcome), "{run:?}");
        assert!(run.finished_at.is_some() && run.cursor.is_none() && run.waiting.is_none(), "{run:?}");
    }
    desk.engine.shutdown().await;
}

/// Routing takes the locks of its group and of that group's agents (no longer one lock
/// for all routing): two groups sharing an agent still never give that agent more open
/// tickets than its capacity, however their route steps interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_in_two_groups_sharing_an_agent_respects_its_capacity() {
    let desk = Desk::new();
    for g in ["network", "desk"] {
        let group =
            switchboard::team::Group { id: g.into(), name: g.into(), description: String::new(), manager: None };
        desk.engine.put_group(group, "t").await.unwrap();
    }
    let mut shared = switchboard_tests::agent("sam", &["network", "desk"]);
    shared.capacity = 3;
    desk.engine.put_agent(shared, "t").await.unwrap();
    for g in ["network", "desk"] {
        desk.publish(json!({"id": format!("route-{g}"), "name": g, "triggers": [{"on": "ticket.created"}],
            "conditions": {"field": "ticket.category", "op": "eq", "value": g},
            "steps": [{"id": "route", "type": "route", "group": g, "strategy": "least_loaded"}]}))
            .await;
    }
    let mut created = Vec::new();
    for i in 0..20 {
        let category = if i % 2 == 0 { "network" } else { "desk" };
        let t = NewTicket {
            title: format!("t{i}"),
            requester: "ann".into(),
            category: Some(category.into()),
            ..Default::default()
        };
        created.push(desk.engine.create_ticket(t, "ann").await.unwrap().ticket.id);
    }
    desk.settle().await;
    let mut assigned = 0;
    for id in &created {
        assigned += usize::from(desk.ticket(id).await.assignee.as_deref() == Some("sam"));
    }
    assert_eq!(assigned, 3, "exactly its capacity, from both groups together");
    desk.engine.shutdown().await;
}
