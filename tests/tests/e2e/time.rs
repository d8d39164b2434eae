//! SLA clocks, durable timers, escalation and `wait` steps, driven by a fake clock (no
//! sleeps): the engine runs in process over a real sled store; time moves only when the
//! test says.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::Config;
use switchboard::executor::Engine;
use switchboard::store::{sled::SledStore, Durability, EventStore, TicketStore, TimeStore};
use switchboard::team::Group;
use switchboard::ticket::{Level, NewTicket};
use switchboard_tests::repo;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn engine(store: Arc<SledStore>, clock: &FakeClock) -> Arc<Engine> {
    Engine::new(store, Arc::new(clock.clone()), Arc::new(Config::default())).unwrap()
}

async fn setup(engine: &Arc<Engine>) {
    let group = Group { id: "service-desk".into(), name: "Desk".into(), description: String::new(), manager: None };
    engine.put_group(group, "test").await.unwrap();
    engine.put_agent(switchboard_tests::agent("grace", &["service-desk"]), "test").await.unwrap();
    let sla: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("workflows/sla/standard.json")).unwrap()).unwrap();
    engine.put_calendar(serde_json::from_value(sla["calendars"][0].clone()).unwrap()).await.unwrap();
    engine.put_sla_policy(serde_json::from_value(sla["policies"][0].clone()).unwrap()).await.unwrap();
    let wf = std::fs::read_to_string(repo().join("workflows/sla-escalation.json")).unwrap();
    engine.put_workflow(switchboard::workflow::validate_str(&wf).unwrap(), "test").await.unwrap();
}

async fn idle(engine: &Arc<Engine>) {
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
}

async fn p1(engine: &Arc<Engine>) -> String {
    let new = NewTicket {
        title: "Core switch down".into(),
        requester: "ann".into(),
        impact: Level::High,
        urgency: Level::High,
        ..Default::default()
    };
    engine.create_ticket(new, "ann").await.unwrap().ticket.id
}

fn patch(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

async fn sla_events(store: &SledStore, ticket: &str) -> Vec<String> {
    store
        .ticket_events(ticket)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| {
            let s = e.sla?;
            Some(format!(
                "{} {} {}",
                e.kind.as_str(),
                s.metric.as_str(),
                s.percent.map_or("-".into(), |p| p.to_string())
            ))
        })
        .collect()
}

#[tokio::test]
async fn warnings_fire_once_pauses_stop_the_clock_and_escalation_levels_run_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    // Mon 2 Nov 2026 08:00 in Berlin (CET, UTC+1): the office opens.
    let clock = FakeClock::new(utc("2026-11-02T07:00:00Z"));
    let engine = engine(store.clone(), &clock).await;
    setup(&engine).await;
    let id = p1(&engine).await; // P1: respond in 15, resolve in 240 business minutes

    clock.advance(Duration::minutes(10));
    engine.add_comment(&id, "We are on it.", false, "alice").await.unwrap(); // first response, met
    clock.advance(Duration::minutes(110)); // 2 h used: 50 %
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "nothing twice");
    idle(&engine).await;
    assert_eq!(sla_events(&store, &id).await, ["sla.warning resolution 50"]);
    let sla = store.ticket_sla(&id).await.unwrap().unwrap();
    assert!(sla.response.stopped_at.is_some() && sla.response.breached_at.is_none(), "response met");

    // Waiting on the customer for three hours: the clock stands still.
    engine.update_ticket(&id, &patch(json!({"status": "pending"})), "alice").await.unwrap();
    clock.advance(Duration::hours(3));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "no timer while paused");
    engine.update_ticket(&id, &patch(json!({"status": "in_progress"})), "alice").await.unwrap();
    let sla = store.ticket_sla(&id).await.unwrap().unwrap();
    assert_eq!(sla.resolution.used_secs, 2 * 3600);
    assert_eq!(sla.resolution.paused_secs, 3 * 3600);
    let report = engine.sla_report(&id).await.unwrap().unwrap();
    assert_eq!(report.response.status, "met");
    assert_eq!(report.resolution.status, "running");
    assert_eq!((report.resolution.used_minutes, report.resolution.remaining_minutes), (120, 120));
    assert_eq!(report.resolution.paused_minutes, 180);
    // Mon 12:00Z + 2 business hours = 14:00Z (15:00 Berlin, inside office hours).
    assert_eq!(report.resolution.due_at, Some(utc("2026-11-02T14:00:00Z")));

    // 75 %, 90 %, breach: each level once, in order.
    for (minutes, expected) in [(60, 1), (36, 1), (24, 1)] {
        clock.advance(Duration::minutes(minutes));
        assert_eq!(engine.fire_due_timers().await.unwrap(), expected);
        idle(&engine).await;
    }
    assert_eq!(
        sla_events(&store, &id).await,
        [
            "sla.warning resolution 50",
            "sla.warning resolution 75",
            "sla.warning resolution 90",
            "sla.breached resolution -"
        ]
    );
    let ticket = store.ticket(&id).await.unwrap().unwrap();
    let notes: Vec<&str> = ticket.comments.iter().skip(1).map(|c| c.body.as_str()).collect();
    assert!(notes[0].starts_with("SLA level 1: 75 %"), "{notes:?}");
    assert!(notes[1].starts_with("SLA level 2: 90 %"), "{notes:?}");
    assert!(notes[2].starts_with("SLA level 3"), "{notes:?}");
    assert_eq!(ticket.assignee.as_deref(), Some("grace"));
    assert_eq!(ticket.group.as_deref(), Some("service-desk"));
    assert_eq!(store.next_timer().await.unwrap(), None, "nothing left to fire");
}

#[tokio::test]
async fn after_a_restart_due_timers_fire_exactly_once_and_a_priority_change_keeps_used_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc("2026-11-02T07:00:00Z"));
    let id;
    {
        let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap());
        let engine = engine(store.clone(), &clock).await;
        setup(&engine).await;
        id = p1(&engine).await;
        engine.add_comment(&id, "Looking.", false, "alice").await.unwrap();
        clock.advance(Duration::hours(1));
        // P1 -> P2 after 1 h: resolution target 4 h -> 8 h, the hour used is kept.
        engine.update_ticket(&id, &patch(json!({"urgency": "medium"})), "alice").await.unwrap();
        let sla = store.ticket_sla(&id).await.unwrap().unwrap();
        assert_eq!(sla.resolution.target_secs, 8 * 3600);
        assert_eq!(sla.resolution.running_since, Some(utc("2026-11-02T07:00:00Z")), "the clock was not restarted");
        engine.shutdown().await;
        use switchboard::store::Store as _;
        store.close().unwrap();
    }
    // Down for a day (Mon 09:00 -> Tue 09:00 local): Monday's 10 open hours exceed the 8 h target.
    clock.advance(Duration::hours(24));
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap());
    let engine = engine(store.clone(), &clock).await;
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0);
    idle(&engine).await;
    assert_eq!(
        sla_events(&store, &id).await,
        [
            "sla.warning resolution 50",
            "sla.warning resolution 75",
            "sla.warning resolution 90",
            "sla.breached resolution -"
        ],
        "everything crossed during the downtime fires once, in order"
    );
}

async fn auto_close(dir: &std::path::Path, clock: &FakeClock) -> (Arc<SledStore>, Arc<Engine>) {
    let store = Arc::new(switchboard_tests::reopen_store(dir, Durability::Group).await);
    let engine = engine(store.clone(), clock).await;
    let sla: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("workflows/sla/standard.json")).unwrap()).unwrap();
    engine.put_calendar(serde_json::from_value(sla["calendars"][0].clone()).unwrap()).await.unwrap();
    let wf = std::fs::read_to_string(repo().join("workflows/auto-close-pending.json")).unwrap();
    engine.put_workflow(switchboard::workflow::validate_str(&wf).unwrap(), "test").await.unwrap();
    (store, engine)
}

/// Stops the engine and releases the data directory (as a process exit would).
async fn close(store: Arc<SledStore>, engine: Arc<Engine>) {
    engine.shutdown().await;
    use switchboard::store::Store as _;
    store.close().unwrap();
    drop(engine);
    drop(store);
}

#[tokio::test]
async fn pending_without_reply_is_reminded_then_resolved_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc("2026-11-02T07:00:00Z")); // Mon 08:00 Berlin
    let (store, engine) = auto_close(dir.path(), &clock).await;
    let new = NewTicket { title: "Printer".into(), requester: "ann".into(), ..Default::default() };
    let id = engine.create_ticket(new, "ann").await.unwrap().ticket.id;
    engine.update_ticket(&id, &patch(json!({"status": "pending"})), "alice").await.unwrap();
    idle(&engine).await;
    use switchboard::store::RunStore as _;
    let waiting = store.waiting_runs(&id).await.unwrap();
    assert_eq!(waiting.len(), 1, "the run is parked");
    assert!(store.active_runs(10).await.unwrap().is_empty(), "a waiting run is not an active run: no task, no memory");
    close(store, engine).await;

    // 30 business hours later (Thu 08:00 local), after a restart: the reminder.
    clock.advance(Duration::days(3));
    let (store, engine) = auto_close(dir.path(), &clock).await;
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    idle(&engine).await;
    let t = store.ticket(&id).await.unwrap().unwrap();
    assert_eq!(t.comments.len(), 1);
    assert!(t.comments[0].body.starts_with("Hi ann, we are waiting"));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "the reminder is sent once");

    // 20 more business hours (Thu 10 + Fri 8 + Mon 2): due Mon 9 Nov 10:00 local.
    clock.advance(Duration::days(4));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "Mon 08:00: not yet");
    clock.advance(Duration::hours(2));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    idle(&engine).await;
    let t = store.ticket(&id).await.unwrap().unwrap();
    assert_eq!(t.status, switchboard::ticket::Status::Resolved);
    assert!(t.comments[1].body.starts_with("Resolved automatically"));
    assert!(store.waiting_runs(&id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_reply_from_the_requester_ends_the_wait_and_cancels_its_timer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc("2026-11-02T07:00:00Z"));
    let (store, engine) = auto_close(dir.path(), &clock).await;
    let new = NewTicket { title: "VPN".into(), requester: "ann".into(), ..Default::default() };
    let id = engine.create_ticket(new, "ann").await.unwrap().ticket.id;
    engine.update_ticket(&id, &patch(json!({"status": "pending"})), "alice").await.unwrap();
    idle(&engine).await;
    clock.advance(Duration::hours(5));
    // A note by an agent does not end the wait; the requester's reply does.
    engine.add_comment(&id, "Still waiting for ann", true, "alice").await.unwrap();
    use switchboard::store::RunStore as _;
    assert_eq!(store.waiting_runs(&id).await.unwrap().len(), 1);
    engine.add_comment(&id, "It works again, thanks", false, "ann").await.unwrap();
    idle(&engine).await;
    let t = store.ticket(&id).await.unwrap().unwrap();
    assert_eq!(t.status, switchboard::ticket::Status::InProgress, "back in progress");
    assert!(store.waiting_runs(&id).await.unwrap().is_empty());
    assert_eq!(store.next_timer().await.unwrap(), None, "the wait's timer was cancelled");
    clock.advance(Duration::days(10));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0);
    assert_eq!(store.ticket(&id).await.unwrap().unwrap().comments.len(), 2, "no reminder");
}

/// Regression: raising a ticket's priority past its new targets left its clocks
/// "running" with negative minutes and no timer, so escalation never ran. Every
/// threshold crossed by the retarget fires at once, exactly once, and the breach time
/// is when the new target ran out (it does not move with the clock).
#[tokio::test]
async fn a_priority_raised_past_its_targets_warns_and_breaches_at_once_exactly_once() {
    use switchboard::clock::Clock as _;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    // Mon 2 Nov 2026 08:00 Berlin: the office opens.
    let clock = FakeClock::new(utc("2026-11-02T07:00:00Z"));
    let engine = engine(store.clone(), &clock).await;
    setup(&engine).await;
    let low = NewTicket {
        title: "Printer toner low".into(),
        requester: "ann".into(),
        impact: Level::Low,
        urgency: Level::Low,
        ..Default::default()
    };
    let id = engine.create_ticket(low, "ann").await.unwrap().ticket.id;
    // 230 business minutes later (P4: 480 / 2880 minutes) it becomes a P1 (15 / 240):
    // the response target is long gone, the resolution one is 96 % used.
    clock.advance(Duration::minutes(230));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "nothing crossed under P4 targets");
    engine.update_ticket(&id, &patch(json!({"impact": "high", "urgency": "high"})), "alice").await.unwrap();
    assert_eq!(store.next_timer().await.unwrap(), Some(clock.now()), "due at once");
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "exactly once");
    idle(&engine).await;
    let crossed = [
        "sla.warning response 50",
        "sla.warning response 75",
        "sla.warning response 90",
        "sla.breached response -",
        "sla.warning resolution 50",
        "sla.warning resolution 75",
        "sla.warning resolution 90",
    ];
    assert_eq!(sla_events(&store, &id).await, crossed);
    // 240 business minutes after 08:00 local: 12:00 local, 11:00Z, when the timer is set.
    assert_eq!(store.next_timer().await.unwrap(), Some(utc("2026-11-02T11:00:00Z")));
    let report = engine.sla_report(&id).await.unwrap().unwrap();
    assert_eq!(report.response.status, "breached");
    assert_eq!(report.response.due_at, Some(utc("2026-11-02T07:15:00Z")), "when the new target ran out");
    assert_eq!(report.resolution.due_at, Some(utc("2026-11-02T11:00:00Z")));
    clock.advance(Duration::minutes(10));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    idle(&engine).await;
    assert_eq!(sla_events(&store, &id).await.last().map(String::as_str), Some("sla.breached resolution -"));
    assert_eq!(sla_events(&store, &id).await.len(), crossed.len() + 1);
    clock.advance(Duration::hours(1));
    let later = engine.sla_report(&id).await.unwrap().unwrap();
    assert_eq!(later.resolution.status, "breached");
    assert_eq!(later.resolution.due_at, Some(utc("2026-11-02T11:00:00Z")), "a breach time stays put");
    assert_eq!(later.response.due_at, Some(utc("2026-11-02T07:15:00Z")));
}
