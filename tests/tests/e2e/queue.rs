//! The in-memory run queue is bounded: beyond `run_queue`, runs wait in the store as
//! `pending` and are picked up as the queue drains, so a burst costs disk, not memory.

use serde_json::json;
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::Config;
use switchboard::executor::Engine;
use switchboard::run::RunStatus;
use switchboard::store::{sled::SledStore, Durability, RunFilter, RunStore};
use switchboard::ticket::NewTicket;

#[tokio::test]
async fn a_burst_beyond_the_run_queue_completes_every_run_once() {
    let dir = tempfile::tempdir().unwrap();
    burst_beyond_the_queue(Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap())).await;
}

/// The same on PostgreSQL: its `active` partial index is the queue.
#[tokio::test]
async fn a_burst_beyond_the_run_queue_completes_every_run_once_on_postgres() {
    let url = switchboard::store::postgres::scratch::database().await.unwrap();
    burst_beyond_the_queue(Arc::new(switchboard::store::postgres::PostgresStore::connect(&url, 8).await.unwrap()))
        .await;
}

async fn burst_beyond_the_queue(store: Arc<dyn switchboard::store::Store>) {
    let clock = FakeClock::new("2026-11-02T07:00:00Z".parse().unwrap());
    let config = Config { workers: 1, run_queue: 2, ..Config::default() };
    let engine = Engine::new(store.clone(), Arc::new(clock), Arc::new(config)).unwrap();
    let wf = json!({"id": "tag", "name": "tag", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "note", "type": "comment", "body": "seen"}, {"id": "tag", "type": "set", "fields": {"tags": ["seen"]}}]});
    engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "test").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let new = NewTicket { title: format!("Ticket {i}"), requester: "ann".into(), ..Default::default() };
        ids.push(engine.create_ticket(new, "ann").await.unwrap().ticket.id);
        // The queue's runs, and at most one more task: a run that just finished refills
        // the queue from the store before its task ends (on a backend whose reads wait
        // on the network, that is seen here).
        assert!(engine.runs_in_flight() <= 2 + 1, "never more than run_queue tasks (and the refiller)");
    }
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    let runs =
        store.runs(&RunFilter { workflow: Some("tag".into()), limit: Some(1000), ..Default::default() }).await.unwrap();
    assert_eq!(runs.len(), 40);
    assert!(runs.iter().all(|r| r.status == RunStatus::Completed), "every run finished");
    for id in ids {
        let t = store.ticket(&id).await.unwrap().unwrap();
        assert_eq!(t.comments.len(), 1, "each step ran once on {id}");
        assert_eq!(t.tags, ["seen"]);
    }
}

/// Recovery with more interrupted runs than `run_queue`: the ones left in the store must
/// be picked up as the queue drains, even when the first ones finish while the rest are
/// still being queued (found by the recovery benchmark: 16k of 20k runs stayed pending).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_beyond_the_run_queue_resumes_every_run() {
    use switchboard::store::{Store, Tx};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = Arc::new(FakeClock::new("2026-11-02T07:00:00Z".parse().unwrap()));
    let config = Arc::new(Config { workers: 4, run_queue: 4, ..Config::default() });
    let engine = Engine::new(store.clone(), clock, config).unwrap();
    let wf = json!({"id": "tag", "name": "tag", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "note", "type": "comment", "body": "seen"}]});
    engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "test").await.unwrap();
    let new = NewTicket { title: "Printer".into(), requester: "ann".into(), ..Default::default() };
    engine.create_ticket(new, "ann").await.unwrap();
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    let filter = RunFilter { workflow: Some("tag".into()), limit: Some(1000), ..Default::default() };
    let done = store.runs(&filter).await.unwrap().remove(0);
    assert_eq!(done.status, RunStatus::Completed);
    // The store as a crash leaves it: 300 runs interrupted before their first step.
    let mut tx = Tx::new();
    for i in 0..300 {
        let mut run = done.clone();
        run.id = format!("R-{}", 1000 + i);
        run.status = RunStatus::Pending;
        run.cursor = Some("note".into());
        run.steps_done = 0;
        run.finished_at = None;
        run.trace.clear();
        tx.run(&mut run);
    }
    store.commit(tx).await.unwrap();

    engine.recover().await.unwrap();
    while engine.runs_in_flight() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let left: Vec<String> = store
        .runs(&filter)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.status != RunStatus::Completed)
        .map(|r| r.id)
        .collect();
    assert!(left.is_empty(), "{} interrupted runs never resumed: {:?}", left.len(), &left[..left.len().min(5)]);
}
