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
    _dir: tempfile::TempDir,
}

impl Desk {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap());
        let clock = FakeClock::new("2026-11-02T09:00:00Z".parse().unwrap());
        let engine = Engine::new(store.clone(), Arc::new(clock), Arc::new(Config::default())).unwrap();
        Self { engine, store, _dir: dir }
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

    pub fn ticket(&self, id: &str) -> Ticket {
        self.store.ticket(id).unwrap().unwrap()
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
    let ticket = desk.ticket(&id);
    assert_eq!(ticket.urgency, Level::High, "the run raised urgency");
    let note = ticket.comments.last().unwrap();
    assert_eq!(note.body, "Reopened by ann; urgency raised (was medium).");
    desk.engine.shutdown().await;
}
