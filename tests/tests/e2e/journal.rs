//! Execution core v2: a run is stored as a small header plus an append-only journal, so
//! what a step writes does not grow with the run, and a large output is written once.
//! In-process, on a real sled store that records the bytes of every batch it applies.

use serde_json::{json, Value};
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::Config;
use switchboard::executor::Engine;
use switchboard::run::RunStatus;
use switchboard::store::{sled::SledStore, Durability, RunFilter, RunStore};
use switchboard::ticket::NewTicket;

/// An engine on the in-memory store (the second backend of the store contract).
fn memory_engine() -> (Arc<switchboard::store::memory::MemoryStore>, Arc<Engine>) {
    let store = Arc::new(switchboard::store::memory::MemoryStore::new());
    let clock = FakeClock::new("2026-11-02T07:00:00Z".parse().unwrap());
    let engine = Engine::new(store.clone(), Arc::new(clock), Arc::new(Config::default())).unwrap();
    (store, engine)
}

async fn engine(config: Config) -> (tempfile::TempDir, Arc<SledStore>, Arc<Engine>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = FakeClock::new("2026-11-02T07:00:00Z".parse().unwrap());
    let engine = Engine::new(store.clone(), Arc::new(clock), Arc::new(config)).unwrap();
    (dir, store, engine)
}

/// Publishes `wf`, logs one ticket, waits for its runs; gives back the run and the bytes
/// of every batch applied from logging the ticket on.
async fn run_once(store: &SledStore, engine: &Arc<Engine>, wf: Value) -> (switchboard::run::Run, Vec<u64>) {
    let id = wf["id"].as_str().unwrap().to_string();
    engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "test").await.unwrap();
    store.record_batch_sizes(true);
    let new = NewTicket { title: "Printer jam".into(), requester: "ann".into(), ..Default::default() };
    engine.create_ticket(new, "ann").await.unwrap();
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    let sizes = store.batch_sizes();
    store.record_batch_sizes(false);
    (store.runs(&RunFilter { workflow: Some(id), ..Default::default() }).await.unwrap().remove(0), sizes)
}

fn branch(id: &str, then: &str) -> Value {
    json!({"id": id, "type": "if", "condition": {"field": "ticket.status", "op": "eq", "value": "new"}, "then": then})
}

fn ok_call(id: &str) -> Value {
    json!({"id": id, "type": "plugin", "plugin": "hostile", "action": "ok", "input": {}})
}

async fn install_hostile(engine: &Engine) {
    let wasm = std::fs::read(switchboard_tests::plugin_wasm("hostile")).unwrap();
    engine.plugins().install(&wasm, "test", switchboard::plugin::Installer::Admin).await.unwrap();
}

/// A plugin call ends a commit (it calls the outside world), so a loop of a call and a
/// branch commits once per turn: turn 50 writes no more than turn 2.
#[tokio::test]
async fn the_hundredth_step_of_a_run_writes_no_more_than_the_second() {
    let (_dir, store, engine) = engine(Config { max_steps_per_run: 150, ..Config::default() }).await;
    install_hostile(&engine).await;
    let wf = json!({"id": "spin", "name": "spin", "triggers": [{"on": "ticket.created"}],
        "steps": [ok_call("a"), branch("b", "a")]});
    let (run, sizes) = run_once(&store, &engine, wf).await;
    assert_eq!(run.status, RunStatus::Failed, "{:?}", run.error);
    assert_eq!(run.steps_done, 150);
    assert_eq!(run.trace.iter().filter(|t| t.kind == "step").count(), 150, "every step is in the journal");
    // Batch 0 logs the ticket and starts the run; batch n is turn n (steps 2n-1 and 2n);
    // the last ends the run.
    assert_eq!(sizes.len(), 77, "{sizes:?}");
    let (second, fiftieth) = (sizes[2], sizes[50]);
    // A few bytes of slack: the header's step counters grow from one digit to three.
    assert!(fiftieth <= second + 8, "turn 50 wrote {fiftieth} bytes, turn 2 wrote {second}");
    assert!(sizes[75] <= second + 8, "turn 75 wrote {} bytes", sizes[75]);
}

/// Steps that touch only their run and ticket share one commit: 150 branch steps are
/// one batch, its size the sum of their journal entries (no header or ticket per step).
#[tokio::test]
async fn local_steps_share_one_commit() {
    let (_dir, store, engine) = engine(Config { max_steps_per_run: 150, ..Config::default() }).await;
    let wf = json!({"id": "spin", "name": "spin", "triggers": [{"on": "ticket.created"}],
        "steps": [branch("a", "b"), branch("b", "a")]});
    let (run, sizes) = run_once(&store, &engine, wf).await;
    assert_eq!(run.status, RunStatus::Failed, "{:?}", run.error);
    assert_eq!(run.trace.iter().filter(|t| t.kind == "step").count(), 150, "every step is in the journal");
    // The ticket and the run's start; the 150 steps; the run failed at its step limit.
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    let entry = serde_json::to_vec(&run.trace[5]).unwrap().len() as u64;
    assert!(sizes[1] <= 150 * (entry + 64), "150 steps wrote {} bytes, one entry is {entry}", sizes[1]);
}

/// Comments are appended apart from their ticket: the 50th comment a run adds writes no
/// more than the 2nd (the ticket used to be rewritten with every comment it had).
#[tokio::test]
async fn the_fiftieth_comment_writes_no_more_than_the_second() {
    let (_dir, store, engine) = engine(Config { max_steps_per_run: 150, ..Config::default() }).await;
    install_hostile(&engine).await;
    let wf = json!({"id": "chatty", "name": "chatty", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "note", "type": "comment", "body": "still looking at it", "internal": true},
                  ok_call("call"), branch("again", "note")]});
    let (run, sizes) = run_once(&store, &engine, wf).await;
    assert_eq!(run.steps_done, 150, "{:?}", run.error);
    let ticket = switchboard::store::TicketStore::ticket(&*store, &run.ticket_id).await.unwrap().unwrap();
    assert_eq!(ticket.comments.len(), 50);
    // Batch 0 logs the ticket; batch 1 is the first comment; batch n the call, the
    // branch and comment n. Slack: ids (comment, event, step counters) grow by a digit or two.
    assert!(sizes[50] <= sizes[2] + 16, "comment 50 wrote {} bytes, comment 2 wrote {}", sizes[50], sizes[2]);
}

#[tokio::test]
async fn a_one_mebibyte_plugin_output_is_written_once() {
    let mut config = Config::default();
    config.plugins.max_output_bytes = 2 << 20;
    let (_dir, store, engine) = engine(config).await;
    install_hostile(&engine).await;
    let mut steps = vec![json!({"id": "big", "type": "plugin", "plugin": "hostile", "action": "sized_output",
        "input": {"bytes": 1 << 20}})];
    steps.extend((0..5).map(|i| branch(&format!("s{i}"), &format!("s{}", i + 1))));
    steps.push(json!({"id": "s5", "type": "comment", "body": "done", "internal": true}));
    let wf = json!({"id": "big", "name": "big", "triggers": [{"on": "ticket.created"}], "steps": steps});
    let (run, sizes) = run_once(&store, &engine, wf).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.vars["big"].as_str().map(str::len), Some(1 << 20), "the output reads back whole");
    let large: Vec<u64> = sizes.iter().copied().filter(|&n| n > 64 << 10).collect();
    assert_eq!(large.len(), 1, "one batch carries the output: {sizes:?}");
    assert!(large[0] >= 1 << 20 && large[0] < (1 << 20) + (16 << 10), "{sizes:?}");
}

/// The engine runs on the in-memory store too (the second backend of the store contract):
/// the same workflow, the same trace, no disk.
#[tokio::test]
async fn the_engine_runs_workflows_on_the_in_memory_store() {
    use switchboard::store::TicketStore;
    let (store, engine) = memory_engine();
    let wf = json!({"id": "tag", "name": "tag", "triggers": [{"on": "ticket.created"}],
        "steps": [branch("check", "note"), {"id": "skipped", "type": "fail", "reason": "not reached"},
                  {"id": "note", "type": "comment", "body": "seen by {{workflow.id}}", "internal": true}]});
    engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "test").await.unwrap();
    let new = NewTicket { title: "Printer jam".into(), requester: "ann".into(), ..Default::default() };
    let id = engine.create_ticket(new, "ann").await.unwrap().ticket.id;
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    let run = store.runs(&RunFilter::default()).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let kinds: Vec<&str> = run.trace.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(kinds, ["trigger", "conditions", "step", "step", "finished"]);
    assert_eq!(store.ticket(&id).await.unwrap().unwrap().comments[0].body, "seen by tag");
}

/// Two events of one commit (a segment that changes a field, then comments) both satisfy
/// a waiting run's condition: the run is resumed once, by the first.
#[tokio::test]
async fn a_waiting_run_is_resumed_once_by_a_commit_with_two_events() {
    let (_dir, store, engine) = engine(Config::default()).await;
    let waiter = json!({"id": "waiter", "name": "waiter", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "w", "type": "wait", "until": {"field": "ticket.priority", "op": "eq", "value": "P1"}}]});
    let mover = json!({"id": "mover", "name": "mover", "triggers": [{"on": "manual"}],
        "steps": [{"id": "up", "type": "set", "fields": {"priority": "P1"}},
                  {"id": "say", "type": "comment", "body": "raised", "internal": true}]});
    for wf in [waiter, mover] {
        engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "test").await.unwrap();
    }
    let new = NewTicket { title: "Printer jam".into(), requester: "ann".into(), ..Default::default() };
    let ticket = engine.create_ticket(new, "ann").await.unwrap().ticket.id;
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    engine.start_manual("mover", &ticket, Value::Null, "ann").await.unwrap();
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    let runs = store.runs(&RunFilter { workflow: Some("waiter".into()), ..Default::default() }).await.unwrap();
    let run = &runs[0];
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let resumed = run.trace.iter().filter(|t| t.outcome == "resumed").count();
    assert_eq!(resumed, 1, "{:#?}", run.trace);
    let metrics = engine.metrics().render(&[]);
    let completed = metrics.lines().find(|l| l.contains("workflow=\"waiter\"") && l.contains("completed"));
    assert!(completed.is_some_and(|l| l.ends_with(" 1")), "counted once: {completed:?}");
}

/// Another writer (another node, simulated by the store) changes the ticket between a
/// step's reads and its commit: the store refuses the step's stale write, and the
/// driver takes the step again from a fresh read, so both changes are kept and the
/// step is in the trace once.
#[tokio::test]
async fn a_step_that_meets_a_concurrent_write_is_retried_from_a_fresh_read() {
    use switchboard::store::{TicketStore, Tx, Write};
    let (store, engine) = memory_engine();
    let wf = json!({"id": "raise", "name": "raise", "triggers": [{"on": "manual"}],
        "steps": [{"id": "up", "type": "set", "fields": {"priority": "P1"}},
                  {"id": "say", "type": "comment", "body": "raised", "internal": true}]});
    engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "test").await.unwrap();
    let new = NewTicket { title: "Printer jam".into(), requester: "ann".into(), ..Default::default() };
    let id = engine.create_ticket(new, "ann").await.unwrap().ticket.id;
    let read = store.ticket(&id).await.unwrap().unwrap();
    let mut elsewhere = read.clone();
    elsewhere.title = "Printer jam on floor 3".into();
    let mut other = Tx::new();
    other.ticket(Some(&read), &mut elsewhere);
    // Slipped in before the run's first step commit (a run write that is not its start).
    store.interfere_once(
        |tx| tx.writes.iter().any(|w| matches!(w, Write::Run(d) if d.start.is_none() && !d.entries.is_empty())),
        other,
    );
    engine.start_manual("raise", &id, Value::Null, "ann").await.unwrap();
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    let run = store.runs(&RunFilter::default()).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let steps: Vec<&str> = run.trace.iter().filter_map(|t| t.step.as_deref()).collect();
    assert_eq!(steps, ["up", "say"], "each step once");
    let ticket = store.ticket(&id).await.unwrap().unwrap();
    assert_eq!(ticket.title, "Printer jam on floor 3", "the other writer's change is kept");
    assert_eq!(serde_json::to_value(ticket.priority).unwrap(), "P1", "and the run's");
    assert_eq!(ticket.comments.iter().filter(|c| c.body == "raised").count(), 1);
    assert_eq!(ticket.version, 3, "logged, changed elsewhere, changed by the run");
}

/// A dry run plans its steps with the same step modules as a real run, over a context
/// that allocates nothing: a dry run of a `create_child` step leaves the ticket numbers
/// where they were (it used to take one).
#[tokio::test]
async fn a_dry_run_of_a_child_ticket_allocates_no_ticket_number() {
    let (_store, engine) = memory_engine();
    let wf = json!({"id": "split", "name": "split", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "child", "type": "create_child", "ticket": {"title": "Laptop for {{ticket.requester}}"}}]});
    let def = switchboard::workflow::validate_value(&wf).unwrap();
    let new = || NewTicket { title: "New starter".into(), requester: "ann".into(), ..Default::default() };
    let first = engine.create_ticket(new(), "ann").await.unwrap().ticket;
    let dry = engine
        .dry_run(&def, first.clone(), switchboard::run::EventKind::Created, &serde_json::Map::new())
        .await
        .unwrap();
    let would = dry.run.expect("the workflow matches");
    assert_eq!(would.status, "completed", "{:?}", would.error);
    assert_eq!(would.children[0].title, "Laptop for ann");
    let second = engine.create_ticket(new(), "ann").await.unwrap().ticket;
    let number = |id: &str| id.trim_start_matches(|c: char| !c.is_ascii_digit()).parse::<u64>().unwrap();
    assert_eq!(number(&second.id), number(&first.id) + 1, "{} then {}", first.id, second.id);
}
