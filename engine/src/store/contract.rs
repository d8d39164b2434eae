//! The store contract: what every backend of [`Store`] must do, as tests run against
//! each of them (sled, the in-memory store and PostgreSQL, on a real cluster).
//! Visibility, all-or-nothing transactions, ordering, run headers and journals with
//! their indexes, conflicts, timers, routing state, documents and plugin state.

use super::memory::MemoryStore;
use super::sled::SledStore;
use super::*;
use crate::run::{Run, RunStatus, TraceEntry};
use crate::ticket::{NewTicket, PriorityMatrix, Status};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

fn at(minutes: i64) -> DateTime<Utc> {
    "2026-11-02T08:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
}

/// A ticket as a new one is stored (version 1).
fn ticket(id: &str, requester: &str) -> Ticket {
    let new = NewTicket { title: format!("Ticket {id}"), requester: requester.into(), ..Default::default() };
    Ticket { version: 1, ..new.into_ticket(id.into(), &PriorityMatrix::default(), at(0)) }
}

/// A new ticket's write.
fn put(t: Ticket) -> Write {
    Write::Ticket { ticket: Box::new(t), comments_from: 0, expect: None }
}

fn run(id: &str, ticket: &str, workflow: &str) -> Run {
    serde_json::from_value(json!({
        "id": id, "workflow_id": workflow, "workflow_revision": 1, "ticket_id": ticket, "event_id": "E-1",
        "event_type": "ticket.created", "actor": "ann", "status": "pending", "cursor": "a", "vars": {"input": {"n": 1}},
        "trace": [{"at": "2026-11-02T08:00:00Z", "kind": "trigger", "outcome": "matched"}],
        "steps_done": 0, "created_at": "2026-11-02T08:00:00Z", "updated_at": "2026-11-02T08:00:00Z"
    }))
    .unwrap()
}

fn timer(key: &str, due: i64) -> Timer {
    Timer { key: key.into(), due: at(due), kind: TimerKind::SlaCheck { ticket: "T-1".into() } }
}

async fn commit(store: &dyn Store, writes: Vec<Write>) -> Result<()> {
    store.commit(Tx { writes }).await
}

async fn commit_run(store: &dyn Store, run: &mut Run) -> Result<()> {
    let mut tx = Tx::new();
    tx.run(run);
    store.commit(tx).await
}

async fn ids_are_fresh_and_writes_are_visible_in_id_order(store: &dyn Store) {
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..12 {
        ids.push(store.next_ticket_id().await.unwrap());
    }
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 12, "{ids:?}");
    assert_ne!(store.next_run_id().await.unwrap(), store.next_run_id().await.unwrap());
    assert_ne!(store.next_event_id().await.unwrap(), store.next_event_id().await.unwrap());
    // Written out of order; listed by number (T-10 after T-9, not after T-1).
    let writes = ids.iter().rev().map(|id| put(ticket(id, "ann"))).collect();
    commit(store, writes).await.unwrap();
    assert_eq!(store.ticket(&ids[3]).await.unwrap(), Some(ticket(&ids[3], "ann")));
    assert_eq!(store.ticket("T-999").await.unwrap(), None);
    assert_eq!(store.ticket("not an id").await.unwrap(), None);
    let page = store.tickets(&TicketFilter { limit: Some(5), ..Default::default() }).await.unwrap();
    assert_eq!(
        page.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ids[..5].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let next =
        store.tickets(&TicketFilter { after: Some(ids[4].clone()), limit: Some(100), ..Default::default() }).await;
    assert_eq!(next.unwrap().len(), 7);
}

async fn a_transaction_applies_whole_or_not_at_all(store: &dyn Store) {
    let good = ticket("T-1", "ann");
    let bad = ticket("X-1", "ann");
    let err = commit(store, vec![put(good.clone()), put(bad)]).await;
    assert!(err.is_err());
    assert_eq!(store.ticket("T-1").await.unwrap(), None, "nothing of a refused transaction is applied");
    commit(store, vec![put(good.clone())]).await.unwrap();
    assert_eq!(store.ticket("T-1").await.unwrap(), Some(good));
}

async fn a_run_is_a_header_and_a_journal_with_its_indexes(store: &dyn Store) {
    let mut r = run("R-1", "T-1", "w");
    let mut other = run("R-2", "T-1", "v");
    let mut elsewhere = run("R-3", "T-2", "w");
    for r in [&mut r, &mut other, &mut elsewhere] {
        commit_run(store, r).await.unwrap();
    }
    assert_eq!(store.run("R-1").await.unwrap().as_ref(), Some(&r));
    assert_eq!(store.active_runs(10).await.unwrap(), ["R-1", "R-2", "R-3"]);
    // Steps append; the run reads back as it is in memory.
    for i in 0..5 {
        r.trace.push(TraceEntry::step(at(i), "a", "set", "ok", ""));
        r.set_var("a", json!(i));
        r.steps_done += 1;
        r.status = RunStatus::Running;
        commit_run(store, &mut r).await.unwrap();
    }
    assert_eq!(store.run("R-1").await.unwrap().as_ref(), Some(&r));
    assert_eq!(r.vars["a"], json!(4));
    // Parked: waiting on its ticket; then ended: out of every index but the ticket's.
    r.status = RunStatus::Waiting;
    r.waiting = Some(crate::run::Waiting { step: "a".into(), deadline: None });
    commit_run(store, &mut r).await.unwrap();
    assert_eq!(store.waiting_runs("T-1").await.unwrap(), ["R-1"]);
    assert_eq!(store.count_waiting_runs().await.unwrap(), 1);
    assert_eq!(store.active_runs(10).await.unwrap(), ["R-2", "R-3"]);
    crate::run::machine::advance(&mut r, None, at(9));
    commit_run(store, &mut r).await.unwrap();
    assert!(store.waiting_runs("T-1").await.unwrap().is_empty());
    assert_eq!(store.run("R-1").await.unwrap().unwrap().trace.last().unwrap().kind, "finished");
    // Listing: newest first, by ticket, workflow and status.
    let ids = async |f: RunFilter| store.runs(&f).await.unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(RunFilter::default()).await, ["R-3", "R-2", "R-1"]);
    assert_eq!(ids(RunFilter { ticket: Some("T-1".into()), ..Default::default() }).await, ["R-2", "R-1"]);
    assert_eq!(ids(RunFilter { workflow: Some("w".into()), ..Default::default() }).await, ["R-3", "R-1"]);
    assert_eq!(ids(RunFilter { status: Some(RunStatus::Completed), ..Default::default() }).await, ["R-1"]);
    assert_eq!(ids(RunFilter { limit: Some(1), ..Default::default() }).await, ["R-3"]);
}

async fn an_append_behind_another_writers_back_is_a_conflict(store: &dyn Store) {
    let mut r = run("R-3", "T-1", "w");
    commit_run(store, &mut r).await.unwrap();
    let (mut a, mut b) = (store.run("R-3").await.unwrap().unwrap(), store.run("R-3").await.unwrap().unwrap());
    a.set_var("a", json!(1));
    b.set_var("b", json!(2));
    commit_run(store, &mut a).await.unwrap();
    let t = ticket("T-1", "ann");
    let mut tx = Tx::new();
    tx.push(put(t)).run(&mut b);
    let err = store.commit(tx).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(store.run("R-3").await.unwrap().unwrap().vars, a.vars, "the first writer's entry is kept");
    assert_eq!(store.ticket("T-1").await.unwrap(), None, "nothing of the refused transaction is applied");
    // A header-only write (no entry of its own) from a stale copy is refused too.
    let mut c = store.run("R-3").await.unwrap().unwrap();
    let mut stale = c.clone();
    c.set_var("c", json!(3));
    commit_run(store, &mut c).await.unwrap();
    stale.status = RunStatus::Failed;
    let err = commit_run(store, &mut stale).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(store.run("R-3").await.unwrap().unwrap().status, RunStatus::Pending, "the header is not overwritten");
}

async fn a_ticket_write_expects_the_version_it_read(store: &dyn Store) {
    let mut t = ticket("T-1", "ann");
    let mut tx = Tx::new();
    tx.ticket(None, &mut t);
    store.commit(tx).await.unwrap();
    let v1 = store.ticket("T-1").await.unwrap().unwrap();
    assert_eq!(v1.version, 1, "a new ticket is stored at version 1");
    // Two writers read version 1; the first to commit wins.
    let (mut a, mut b) = (v1.clone(), v1.clone());
    a.title = "first writer".into();
    b.title = "second writer".into();
    let mut tx = Tx::new();
    tx.ticket(Some(&v1), &mut a);
    store.commit(tx).await.unwrap();
    assert_eq!(a.version, 2);
    let mut tx = Tx::new();
    tx.ticket(Some(&v1), &mut b).push(put(ticket("T-2", "bob")));
    let err = store.commit(tx).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let stored = store.ticket("T-1").await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.version), ("first writer", 2), "no blind overwrite");
    assert_eq!(store.ticket("T-2").await.unwrap(), None, "nothing of the refused transaction is applied");
    // Logging a ticket under an id that is taken is a conflict too.
    let err = commit(store, vec![put(ticket("T-1", "eve"))]).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    // Two changes in one transaction: written once, one version up.
    let (before, mut mid) = (stored.clone(), stored.clone());
    mid.title = "mid".into();
    let mut tx = Tx::new();
    tx.ticket(Some(&before), &mut mid);
    let mut last = mid.clone();
    last.title = "last".into();
    tx.ticket(Some(&mid), &mut last);
    assert_eq!(tx.writes.len(), 1, "merged");
    store.commit(tx).await.unwrap();
    let stored = store.ticket("T-1").await.unwrap().unwrap();
    assert_eq!((stored.title.as_str(), stored.version, last.version), ("last", 3, 3));
    // Written twice in one transaction as two writes: each expects what the one before wrote.
    let w = |title: &str, expect: u64| Write::Ticket {
        ticket: Box::new(Ticket { title: title.into(), version: expect + 1, ..stored.clone() }),
        comments_from: 0,
        expect: Some(expect),
    };
    commit(store, vec![w("four", 3), w("five", 4)]).await.unwrap();
    assert_eq!(store.ticket("T-1").await.unwrap().unwrap().version, 5);
    let err = commit(store, vec![w("six", 5), w("stale", 5)]).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(store.ticket("T-1").await.unwrap().unwrap().title, "five");
}

async fn filters_find_tickets_by_what_they_are_now(store: &dyn Store) {
    let ids = |list: Vec<Ticket>| list.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let find = |f: TicketFilter| async move { ids(store.tickets(&f).await.unwrap()) };
    for n in 1..=6 {
        let mut t = ticket(&format!("T-{n}"), if n % 2 == 0 { "ann" } else { "bob" });
        t.group = Some(if n <= 3 { "network" } else { "desk" }.into());
        let mut tx = Tx::new();
        tx.ticket(None, &mut t);
        store.commit(tx).await.unwrap();
    }
    let by_group = |g: &str| TicketFilter { group: Some(g.into()), ..Default::default() };
    assert_eq!(find(by_group("network")).await, ["T-1", "T-2", "T-3"]);
    assert_eq!(find(TicketFilter { requester: Some("ann".into()), ..by_group("desk") }).await, ["T-4", "T-6"]);
    // T-2 moves to the desk group and is assigned; twice in one transaction, as two writes.
    let before = store.ticket("T-2").await.unwrap().unwrap();
    let moved = Ticket { group: Some("desk".into()), version: 2, ..before.clone() };
    let assigned = Ticket {
        assignee: Some("cat".into()),
        status: Status::Assigned,
        group: Some("field".into()),
        version: 3,
        ..before.clone()
    };
    commit(
        store,
        vec![
            Write::Ticket { ticket: Box::new(moved), comments_from: 0, expect: Some(1) },
            Write::Ticket { ticket: Box::new(assigned), comments_from: 0, expect: Some(2) },
        ],
    )
    .await
    .unwrap();
    assert_eq!(find(by_group("network")).await, ["T-1", "T-3"], "not under its old group");
    assert_eq!(find(by_group("desk")).await, ["T-4", "T-5", "T-6"], "nor under the one between");
    assert_eq!(find(by_group("field")).await, ["T-2"]);
    assert_eq!(find(TicketFilter { assignee: Some("cat".into()), ..Default::default() }).await, ["T-2"]);
    assert_eq!(find(TicketFilter { status: Some(Status::Assigned), ..Default::default() }).await, ["T-2"]);
    assert_eq!(find(TicketFilter { status: Some(Status::New), ..Default::default() }).await.len(), 5);
    // Paged through an index.
    let page =
        TicketFilter { status: Some(Status::New), after: Some("T-3".into()), limit: Some(2), ..Default::default() };
    assert_eq!(find(page).await, ["T-4", "T-5"]);
    assert_eq!(find(by_group("nobody")).await, Vec::<String>::new());
    // A window of ids, through the table and through an index.
    let window = |after: &str, before: &str| TicketFilter {
        after: Some(after.into()),
        before: Some(before.into()),
        ..Default::default()
    };
    assert_eq!(find(window("T-1", "T-5")).await, ["T-2", "T-3", "T-4"]);
    assert_eq!(find(TicketFilter { group: Some("desk".into()), ..window("T-1", "T-6") }).await, ["T-4", "T-5"]);
    assert_eq!(find(window("T-5", "T-2")).await, Vec::<String>::new(), "an empty window");
    // Text in the title or description, any case, quotes included.
    let mut t = Ticket { title: "Drucker im BÜRO \"3\"".into(), ..ticket("T-7", "cy") };
    t.description = "Toner leer".into();
    let mut tx = Tx::new();
    tx.ticket(None, &mut t);
    store.commit(tx).await.unwrap();
    let text = |t: &str| TicketFilter { text: Some(t.into()), ..Default::default() };
    assert_eq!(find(text("büro")).await, ["T-7"]);
    assert_eq!(find(text("\"3\"")).await, ["T-7"]);
    assert_eq!(find(text("TONER")).await, ["T-7"]);
    assert_eq!(find(text("cy")).await, Vec::<String>::new(), "the requester is not text");
}

async fn tickets_are_found_by_when_they_were_logged_and_done(store: &dyn Store) {
    // T-1..T-4 logged at minutes 0, 10, 20, 30 (T-3 before T-2: ids are not times).
    for (n, minute) in [(1, 0), (2, 20), (3, 10), (4, 30)] {
        let mut t = Ticket { created_at: at(minute), updated_at: at(minute), ..ticket(&format!("T-{n}"), "ann") };
        let mut tx = Tx::new();
        tx.ticket(None, &mut t);
        store.commit(tx).await.unwrap();
    }
    let by = |time, from: i64, to: i64| async move { store.tickets_by_time(time, at(from), at(to)).await.unwrap() };
    assert_eq!(by(TicketTime::Created, 0, 30).await, ["T-1", "T-3", "T-2"], "in time order, `to` excluded");
    assert_eq!(by(TicketTime::Created, 10, 11).await, ["T-3"]);
    assert_eq!(by(TicketTime::Created, 30, 10).await, Vec::<String>::new(), "an empty range");
    assert_eq!(by(TicketTime::Done, 0, 1000).await, Vec::<String>::new(), "all open");
    // T-2 resolved at minute 40, then commented on at 50 (its done time moves); T-3
    // resolved at 45 and reopened at 60 (open again: no done time).
    let change = |id: &'static str, minute: i64, status: Status| async move {
        let before = store.ticket(id).await.unwrap().unwrap();
        let mut after = Ticket { status, updated_at: at(minute), ..before.clone() };
        let mut tx = Tx::new();
        tx.ticket(Some(&before), &mut after);
        store.commit(tx).await.unwrap();
    };
    change("T-2", 40, Status::Resolved).await;
    change("T-3", 45, Status::Resolved).await;
    assert_eq!(by(TicketTime::Done, 0, 1000).await, ["T-2", "T-3"]);
    change("T-2", 50, Status::Resolved).await;
    change("T-3", 60, Status::Reopened).await;
    assert_eq!(by(TicketTime::Done, 0, 50).await, Vec::<String>::new(), "not under its old time");
    assert_eq!(by(TicketTime::Done, 50, 51).await, ["T-2"]);
    assert_eq!(by(TicketTime::Created, 0, 1000).await, ["T-1", "T-3", "T-2", "T-4"], "logged times never move");
}

async fn retention_prunes_finished_runs_and_old_audit_only(store: &dyn Store) {
    for (id, status, finished) in
        [("R-1", "completed", Some(at(5))), ("R-2", "waiting", None), ("R-3", "failed", Some(at(50)))]
    {
        let mut r = run(id, "T-1", "wf");
        r.status = serde_json::from_value(json!(status)).unwrap();
        r.finished_at = finished;
        commit_run(store, &mut r).await.unwrap();
    }
    assert_eq!(store.prune_runs(at(10), 100).await.unwrap(), 1, "finished before the cut");
    assert!(store.run("R-1").await.unwrap().is_none());
    let left: Vec<String> = store
        .runs(&RunFilter { ticket: Some("T-1".into()), ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, ["R-3", "R-2"], "a waiting run and a later one stay");
    for m in [1, 2, 30] {
        let entry = crate::run::AuditEntry {
            at: at(m),
            actor: "a".into(),
            action: "x".into(),
            target: "t".into(),
            detail: json!({}),
        };
        commit(store, vec![Write::Audit(entry)]).await.unwrap();
    }
    assert_eq!(store.prune_audit(at(10), 1).await.unwrap(), 1, "at most the limit");
    assert_eq!(store.prune_audit(at(10), 100).await.unwrap(), 1);
    assert_eq!(store.audit(10).await.unwrap().len(), 1);
    // Long after: every run finished; all go but the newest, whose number the next
    // run's counts from (after a restart too).
    let mut r2 = store.run("R-2").await.unwrap().unwrap();
    r2.status = RunStatus::Completed;
    r2.finished_at = Some(at(60));
    commit_run(store, &mut r2).await.unwrap();
    assert_eq!(store.prune_runs(at(1000), 100).await.unwrap(), 1, "R-2 goes, R-3 stays");
    assert!(store.run("R-3").await.unwrap().is_some());
    // Events: the oldest go with their index entries, the newest stays.
    for (n, minute) in [(1, 1), (2, 2), (3, 3)] {
        let e: Event =
            serde_json::from_value(json!({"id": format!("E-{n}"), "ticket_id": "T-1", "kind": "ticket.updated",
            "actor": "ann", "at": at(minute), "changes": []}))
            .unwrap();
        commit(store, vec![Write::Event(Box::new(e))]).await.unwrap();
    }
    assert_eq!(store.prune_events(at(2), 100).await.unwrap(), 1, "raised before the cut");
    assert_eq!(store.prune_events(at(1000), 100).await.unwrap(), 1, "all but the newest");
    let left: Vec<String> = store.ticket_events("T-1").await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(left, ["E-3"]);
    assert!(store.event("E-2").await.unwrap().is_none());
}

async fn timers_come_due_in_order_and_a_key_replaces_its_timer(store: &dyn Store) {
    commit(store, vec![Write::Timer(timer("b", 10)), Write::Timer(timer("a", 5)), Write::Timer(timer("c", 20))])
        .await
        .unwrap();
    let keys = |ts: Vec<Timer>| ts.into_iter().map(|t| t.key).collect::<Vec<_>>();
    assert_eq!(keys(store.due_timers(at(15), 10).await.unwrap()), ["a", "b"]);
    assert_eq!(keys(store.due_timers(at(15), 1).await.unwrap()), ["a"]);
    assert_eq!(store.next_timer().await.unwrap(), Some(at(5)));
    // Same key, new due time: replaced, also twice within one transaction.
    commit(store, vec![Write::Timer(timer("b", 30)), Write::Timer(timer("b", 40))]).await.unwrap();
    assert_eq!(keys(store.due_timers(at(100), 10).await.unwrap()), ["a", "c", "b"]);
    assert_eq!(store.timer("b").await.unwrap().map(|t| t.due), Some(at(40)));
    commit(store, vec![Write::CancelTimer("a".into()), Write::CancelTimer("nothing".into())]).await.unwrap();
    assert_eq!(store.next_timer().await.unwrap(), Some(at(20)));
    assert_eq!(store.timer("a").await.unwrap(), None);
}

async fn history_events_and_audit_keep_their_order(store: &dyn Store) {
    let entry = |event: &str| HistoryEntry {
        ticket_id: "T-1".into(),
        event_id: event.into(),
        at: at(0),
        actor: "ann".into(),
        changes: Vec::new(),
    };
    commit(store, vec![Write::History(entry("E-2")), Write::History(entry("E-1"))]).await.unwrap();
    commit(store, vec![Write::History(entry("E-3"))]).await.unwrap();
    let order: Vec<String> = store.history("T-1").await.unwrap().into_iter().map(|h| h.event_id).collect();
    assert_eq!(order, ["E-2", "E-1", "E-3"], "in the order written");
    let event = |id: &str| Event {
        id: id.into(),
        ticket_id: "T-1".into(),
        kind: crate::run::EventKind::Updated,
        changes: Vec::new(),
        comment: None,
        actor: "ann".into(),
        causation: Vec::new(),
        at: at(0),
        sla: None,
        evaluations: Vec::new(),
    };
    commit(store, vec![Write::Event(Box::new(event("E-10"))), Write::Event(Box::new(event("E-9")))]).await.unwrap();
    let ids: Vec<String> = store.ticket_events("T-1").await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["E-9", "E-10"], "by number");
    assert_eq!(store.event("E-10").await.unwrap().map(|e| e.id), Some("E-10".into()));
    let audit = |action: &str| {
        Write::Audit(AuditEntry {
            at: at(0),
            actor: "ann".into(),
            action: action.into(),
            target: "x".into(),
            detail: json!(null),
        })
    };
    commit(store, vec![audit("first"), audit("second")]).await.unwrap();
    commit(store, vec![audit("third")]).await.unwrap();
    let actions: Vec<String> = store.audit(2).await.unwrap().into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["third", "second"], "newest first");
}

async fn comments_are_appended_never_rewritten(store: &dyn Store) {
    let mut t = ticket("T-1", "ann");
    t.add_comment("ann", "first", false, at(1));
    t.add_comment("bob", "second", true, at(2));
    let mut tx = Tx::new();
    tx.ticket(None, &mut t);
    store.commit(tx).await.unwrap();
    assert_eq!(store.ticket("T-1").await.unwrap(), Some(t.clone()));
    // A writer whose copy differs in the stored comments appends only its new one.
    let before = t.clone();
    let mut after = t.clone();
    after.comments[0].body = "rewritten".into();
    after.add_comment("ann", "third", false, at(3));
    let mut tx = Tx::new();
    tx.ticket(Some(&before), &mut after);
    store.commit(tx).await.unwrap();
    let stored = store.ticket("T-1").await.unwrap().unwrap();
    let bodies: Vec<&str> = stored.comments.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(bodies, ["first", "second", "third"]);
    let listed = store.tickets(&TicketFilter::default()).await.unwrap();
    assert_eq!(listed[0].comments, stored.comments, "a listed ticket has its comments");
}

async fn open_assignments_follow_the_ticket_and_routing_state_is_kept(store: &dyn Store) {
    let mut t = ticket("T-1", "ann");
    let mut tx = Tx::new();
    tx.ticket(None, &mut t);
    store.commit(tx).await.unwrap();
    assert_eq!(store.open_load("alice").await.unwrap(), 0);
    let before = t.clone();
    t.assignee = Some("alice".into());
    t.status = Status::Assigned;
    let mut tx = Tx::new();
    tx.ticket(Some(&before), &mut t);
    store.commit(tx).await.unwrap();
    assert_eq!(store.open_load("alice").await.unwrap(), 1);
    assert_eq!(store.open_load("alice2").await.unwrap(), 0, "an agent whose id extends another's");
    let before = t.clone();
    t.status = Status::Resolved;
    let mut tx = Tx::new();
    tx.ticket(Some(&before), &mut t);
    store.commit(tx).await.unwrap();
    assert_eq!(store.open_load("alice").await.unwrap(), 0, "a resolved ticket no longer counts");
    commit(store, vec![Write::RoundRobin { group: "net".into(), agent: "bob".into() }]).await.unwrap();
    assert_eq!(store.round_robin_cursor("net").await.unwrap().as_deref(), Some("bob"));
    assert_eq!(store.round_robin_cursor("other").await.unwrap(), None);
}

async fn documents_page_in_id_order_and_delete(store: &dyn Store) {
    let doc =
        |id: &str| Write::Doc { kind: DocKind::Approval, id: id.into(), value: Some(format!("\"{id}\"").into_bytes()) };
    commit(store, vec![doc("b"), doc("a"), doc("c")]).await.unwrap();
    commit(store, vec![Write::Doc { kind: DocKind::Webhook, id: "a".into(), value: Some(b"1".to_vec()) }])
        .await
        .unwrap();
    let ids = async |after, limit| list_docs::<String>(store, DocKind::Approval, after, limit).await.unwrap();
    assert_eq!(ids(None, 10).await, ["a", "b", "c"], "only the kind asked for");
    assert_eq!(ids(Some("a"), 10).await, ["b", "c"]);
    assert_eq!(ids(None, 2).await, ["a", "b"]);
    commit(store, vec![Write::Doc { kind: DocKind::Approval, id: "b".into(), value: None }]).await.unwrap();
    assert_eq!(ids(None, 10).await, ["a", "c"]);
    assert_eq!(get_doc::<String>(store, DocKind::Approval, "c").await.unwrap().as_deref(), Some("c"));
    let (first, second) = (store.next_number().await.unwrap(), store.next_number().await.unwrap());
    assert_eq!(second, first + 1, "document numbers are dense");
}

async fn plugin_state_is_kept_and_deleted_whole(store: &dyn Store) {
    let kv =
        |key: &str, value: Option<serde_json::Value>| Write::PluginKv { plugin: "p".into(), key: key.into(), value };
    commit(
        store,
        vec![
            Write::PluginModule { id: "p".into(), version: "1.0.0".into(), bytes: b"wasm".to_vec() },
            Write::PluginArtifact { id: "p".into(), version: "1.0.0".into(), bytes: b"code".to_vec() },
            kv("a", Some(json!({"x": 1}))),
            kv("b", Some(json!(2))),
            Write::PluginKv { plugin: "q".into(), key: "a".into(), value: Some(json!(3)) },
        ],
    )
    .await
    .unwrap();
    assert_eq!(store.plugin_kv("p", "a").await.unwrap(), Some(json!({"x": 1})));
    assert_eq!(store.plugin_kv_usage("p").await.unwrap(), (2, (1 + 7 + 1 + 1) as u64));
    commit(store, vec![kv("b", None)]).await.unwrap();
    assert_eq!(store.plugin_kv("p", "b").await.unwrap(), None);
    assert_eq!(store.plugin_module("p", "1.0.0").await.unwrap().as_deref(), Some(&b"wasm"[..]));
    commit(store, vec![Write::DeletePlugin { id: "p".into() }]).await.unwrap();
    assert_eq!(store.plugin_module("p", "1.0.0").await.unwrap(), None);
    assert_eq!(store.plugin_artifact("p", "1.0.0").await.unwrap(), None);
    assert_eq!(store.plugin_kv_usage("p").await.unwrap(), (0, 0));
    assert_eq!(store.plugin_kv("q", "a").await.unwrap(), Some(json!(3)), "another plugin's state stays");
}

async fn workflow_revisions_are_kept(store: &dyn Store) {
    let def: Workflow = crate::workflow::validate_value(&json!({"id": "w", "name": "w",
        "triggers": [{"on": "ticket.created"}], "steps": [{"id": "a", "type": "comment", "body": "x"}]}))
    .unwrap();
    let writes = [3u32, 1, 2]
        .into_iter()
        .map(|revision| Write::WorkflowRevision { revision, definition: Box::new(def.clone()) })
        .collect();
    commit(store, writes).await.unwrap();
    assert_eq!(store.workflow_revisions("w").await.unwrap(), [1, 2, 3]);
    assert_eq!(store.workflow_revisions("w2").await.unwrap(), Vec::<u32>::new());
    assert_eq!(store.workflow_revision("w", 2).await.unwrap().map(|d| d.id), Some("w".into()));
    assert_eq!(store.workflow_revision("w", 4).await.unwrap().map(|d| d.id), None);
}

/// Runs every contract test against one backend, each on a fresh store.
macro_rules! contract {
    ($backend:ident, $open:ident, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    let (store, _dir) = super::$open().await;
                    super::$test(&*store).await;
                }
            )*
        }
    };
}

/// A sled store in a fresh directory (kept until the test ends).
async fn open_sled() -> (Box<dyn Store>, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
    (Box::new(store), Some(dir))
}

async fn open_memory() -> (Box<dyn Store>, Option<tempfile::TempDir>) {
    (Box::new(MemoryStore::new()), None)
}

/// A fresh database on the scratch PostgreSQL cluster (started by the first test).
async fn open_postgres() -> (Box<dyn Store>, Option<tempfile::TempDir>) {
    let url = super::postgres::scratch::database().await.unwrap();
    (Box::new(super::postgres::PostgresStore::open(&url, 4).await.unwrap()), None)
}

macro_rules! every_backend {
    ($($test:ident),* $(,)?) => {
        contract!(on_sled, open_sled, [$($test),*]);
        contract!(on_memory, open_memory, [$($test),*]);
        contract!(on_postgres, open_postgres, [$($test),*]);
    };
}

every_backend!(
    ids_are_fresh_and_writes_are_visible_in_id_order,
    retention_prunes_finished_runs_and_old_audit_only,
    filters_find_tickets_by_what_they_are_now,
    tickets_are_found_by_when_they_were_logged_and_done,
    a_transaction_applies_whole_or_not_at_all,
    a_run_is_a_header_and_a_journal_with_its_indexes,
    an_append_behind_another_writers_back_is_a_conflict,
    a_ticket_write_expects_the_version_it_read,
    timers_come_due_in_order_and_a_key_replaces_its_timer,
    history_events_and_audit_keep_their_order,
    open_assignments_follow_the_ticket_and_routing_state_is_kept,
    comments_are_appended_never_rewritten,
    documents_page_in_id_order_and_delete,
    plugin_state_is_kept_and_deleted_whole,
    workflow_revisions_are_kept,
);
