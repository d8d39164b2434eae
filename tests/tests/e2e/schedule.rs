//! Cron-triggered workflows and `wait ... at`, driven by a fake clock over a real sled
//! store: time zones, catch-up after downtime, fan-out over tickets with relative-time
//! conditions, and waits until a time taken from the ticket.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::Config;
use switchboard::executor::Engine;
use switchboard::run::{Run, RunStatus};
use switchboard::store::{sled::SledStore, Durability, RunFilter, RunStore, Store, TicketStore, TimeStore};
use switchboard::team::Group;
use switchboard::ticket::{Level, NewTicket};
use switchboard_tests::repo;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn open(dir: &std::path::Path, clock: &FakeClock) -> (Arc<SledStore>, Arc<Engine>) {
    let store = Arc::new(switchboard_tests::reopen_store(dir, Durability::Group).await);
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(Config::default())).unwrap();
    (store, engine)
}

async fn close(store: Arc<SledStore>, engine: Arc<Engine>) {
    engine.shutdown().await;
    store.close().unwrap();
}

async fn idle(engine: &Arc<Engine>) {
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
}

async fn publish(engine: &Arc<Engine>, wf: Value) {
    let def = switchboard::workflow::validate_value(&wf).unwrap();
    engine.put_workflow(def, "test").await.unwrap();
}

/// A schedule-only workflow whose runs wait a minute (no side effects to set up).
fn summary(id: &str, cron: &str, timezone: &str, catch_up: &str) -> Value {
    json!({
        "id": id, "name": id,
        "triggers": [{"on": "schedule", "cron": cron, "timezone": timezone, "catch_up": catch_up}],
        "steps": [{"id": "pause", "type": "wait", "minutes": 1}]
    })
}

async fn runs(store: &SledStore, workflow: &str) -> Vec<Run> {
    let mut runs = store
        .runs(&RunFilter { workflow: Some(workflow.into()), limit: Some(1000), ..Default::default() })
        .await
        .unwrap();
    runs.sort_by_key(|r| r.id.trim_start_matches("R-").parse::<u64>().unwrap());
    runs
}

async fn fired_for(store: &SledStore, workflow: &str) -> Vec<String> {
    runs(store, workflow)
        .await
        .iter()
        .map(|r| r.vars["schedule"]["scheduled_for"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn cron_in_two_time_zones_fires_at_each_zones_local_time_across_dst() {
    let dir = tempfile::tempdir().unwrap();
    // Thu 2026-03-26: New York is on EDT (since 8 March), Berlin still on CET until the 29th.
    let clock = FakeClock::new(utc("2026-03-26T00:00:00Z"));
    let (store, engine) = open(dir.path(), &clock).await;
    publish(&engine, summary("berlin", "0 8 * * Mon-Fri", "Europe/Berlin", "once")).await;
    publish(&engine, summary("new-york", "0 8 * * Mon-Fri", "America/New_York", "once")).await;
    assert_eq!(store.next_timer().await.unwrap(), Some(utc("2026-03-26T07:00:00Z")));

    // Walk the clock in 30-minute steps over five days, firing what is due each time.
    for _ in 0..(5 * 48) {
        clock.advance(Duration::minutes(30));
        engine.fire_due_timers().await.unwrap();
    }
    idle(&engine).await;
    assert_eq!(
        fired_for(&store, "berlin").await,
        ["2026-03-26T07:00:00Z", "2026-03-27T07:00:00Z", "2026-03-30T06:00:00Z"],
        "08:00 CET, then 08:00 CEST after the weekend's change"
    );
    assert_eq!(
        fired_for(&store, "new-york").await,
        ["2026-03-26T12:00:00Z", "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z"]
    );
    let first = &runs(&store, "berlin").await[0];
    assert_eq!(first.vars["schedule"]["local"], "2026-03-26T08:00:00");
    assert_eq!(first.vars["schedule"]["missed"], false);
    assert_eq!(first.ticket_id, "", "a schedule without `tickets` runs with no ticket");
    assert!(first.vars.get("backlog").is_none(), "computed only for workflows that read it");
    close(store, engine).await;
}

#[tokio::test]
async fn downtime_catch_up_follows_each_schedules_policy_and_fires_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc("2026-06-01T09:30:00Z"));
    let workflows = [
        summary("hourly-once", "0 * * * *", "UTC", "once"),
        summary("hourly-all", "0 * * * *", "UTC", "all"),
        summary("hourly-skip", "0 * * * *", "UTC", "skip"),
    ];
    let (store, engine) = open(dir.path(), &clock).await;
    for wf in &workflows {
        publish(&engine, wf.clone()).await;
    }
    close(store, engine).await;

    // Down from 09:30 to 14:00:20: 10:00 .. 13:00 were missed, 14:00 is on time.
    clock.advance(Duration::minutes(270) + Duration::seconds(20));
    let (store, engine) = open(dir.path(), &clock).await;
    // The server re-applies the same definitions at start (as `serve --demo` does):
    // unchanged schedules keep their timers, so the downtime is still caught up.
    for wf in &workflows {
        publish(&engine, wf.clone()).await;
    }
    assert_eq!(engine.fire_due_timers().await.unwrap(), 3, "one timer per workflow");
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "nothing fires twice");
    idle(&engine).await;

    let once = runs(&store, "hourly-once").await;
    assert_eq!(once.len(), 2, "one run for the four missed hours, one for 14:00");
    assert_eq!(once[0].vars["schedule"]["occurrences"], 4);
    assert_eq!(once[0].vars["schedule"]["missed"], true);
    assert_eq!(once[0].vars["schedule"]["scheduled_for"], "2026-06-01T13:00:00Z");
    assert_eq!(fired_for(&store, "hourly-all").await.len(), 5);
    assert_eq!(fired_for(&store, "hourly-skip").await, ["2026-06-01T14:00:00Z"]);
    assert_eq!(store.timer("cron:hourly-all").await.unwrap().unwrap().due, utc("2026-06-01T15:00:00Z"));

    // Disabling cancels the timer; re-enabling starts from the next occurrence, with
    // no catch-up for the time it was off.
    engine.set_enabled("hourly-all", false, "test").await.unwrap();
    assert!(store.timer("cron:hourly-all").await.unwrap().is_none());
    clock.advance(Duration::hours(3));
    engine.set_enabled("hourly-all", true, "test").await.unwrap();
    assert_eq!(store.timer("cron:hourly-all").await.unwrap().unwrap().due, utc("2026-06-01T18:00:00Z"));
    close(store, engine).await;
}

#[tokio::test]
async fn stale_p1_reminders_fan_out_over_matching_tickets_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc("2026-11-02T07:00:00Z"));
    let (store, engine) = open(dir.path(), &clock).await;
    let group = Group { id: "desk".into(), name: "Desk".into(), description: String::new(), manager: None };
    engine.put_group(group, "test").await.unwrap();
    engine.put_agent(switchboard_tests::agent("grace", &["desk"]), "test").await.unwrap();
    let wf = std::fs::read_to_string(repo().join("workflows/p1-stale-reminder.json")).unwrap();
    engine.put_workflow(switchboard::workflow::validate_str(&wf).unwrap(), "test").await.unwrap();
    let new = |title: &str, level| NewTicket {
        title: title.into(),
        requester: "ann".into(),
        impact: level,
        urgency: level,
        assignee: Some("grace".into()),
        ..Default::default()
    };
    let p1 = engine.create_ticket(new("Core switch down", Level::High), "ann").await.unwrap().ticket.id;
    let p3 = engine.create_ticket(new("Mouse", Level::Medium), "ann").await.unwrap().ticket.id;
    let comments = async |id: &str| store.ticket(id).await.unwrap().unwrap().comments.len();

    let mut seen = Vec::new();
    for _ in 0..5 {
        clock.advance(Duration::minutes(15));
        engine.fire_due_timers().await.unwrap();
        idle(&engine).await;
        seen.push(comments(&p1).await);
    }
    // 07:15 (15 min, not more) no; 07:30 yes; 07:45 (15 min after the reminder) no;
    // 08:00 yes; 08:15 no.
    assert_eq!(seen, [0, 1, 1, 2, 2]);
    assert_eq!(comments(&p3).await, 0, "the P3 ticket is not reminded");
    let body = &store.ticket(&p1).await.unwrap().unwrap().comments[0].body;
    assert!(body.starts_with("Reminder for grace:"), "{body}");

    // A resolved P1 is no longer open: no more reminders.
    engine.update_ticket(&p1, json!({"status": "resolved"}).as_object().unwrap(), "grace").await.unwrap();
    clock.advance(Duration::hours(2));
    engine.fire_due_timers().await.unwrap();
    idle(&engine).await;
    assert_eq!(comments(&p1).await, 2);
    close(store, engine).await;
}

#[tokio::test]
async fn wait_until_a_local_time_taken_from_the_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc("2026-11-02T07:00:00Z"));
    let (store, engine) = open(dir.path(), &clock).await;
    publish(
        &engine,
        json!({
            "id": "first-day", "name": "first day",
            "triggers": [{"on": "ticket.created"}],
            "conditions": {"field": "ticket.custom.start_date", "op": "exists"},
            "steps": [
                {"id": "until-start", "type": "wait", "at": "{{ticket.custom.start_date}}T09:00",
                 "timezone": "Europe/Berlin"},
                {"id": "welcome", "type": "comment", "body": "First day: account handed over."}
            ]
        }),
    )
    .await;
    let mut new = NewTicket { title: "New hire".into(), requester: "hr".into(), ..Default::default() };
    new.custom.insert("start_date".into(), json!("2026-11-05"));
    let id = engine.create_ticket(new, "hr").await.unwrap().ticket.id;
    idle(&engine).await;
    let run = &runs(&store, "first-day").await[0];
    assert_eq!(run.status, RunStatus::Waiting);
    assert_eq!(run.waiting.as_ref().unwrap().deadline, Some(utc("2026-11-05T08:00:00Z")), "09:00 CET");

    clock.advance(Duration::days(3));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "Thu 07:00 UTC: not yet");
    clock.advance(Duration::hours(1));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    idle(&engine).await;
    assert_eq!(store.ticket(&id).await.unwrap().unwrap().comments[0].body, "First day: account handed over.");

    // A date that does not parse fails the run with the rendered text, not a panic.
    let mut bad = NewTicket { title: "New hire 2".into(), requester: "hr".into(), ..Default::default() };
    bad.custom.insert("start_date".into(), json!("next monday"));
    engine.create_ticket(bad, "hr").await.unwrap();
    idle(&engine).await;
    let failed = runs(&store, "first-day").await.pop().unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert!(failed.error.unwrap().contains("`next mondayT09:00`, which is not a time"));
    close(store, engine).await;
}

#[test]
fn ticketless_schedules_refuse_steps_that_need_a_ticket() {
    let wf = json!({
        "id": "bad", "name": "bad",
        "triggers": [{"on": "schedule", "cron": "0 8 * * *", "timezone": "Europe/Berlin"}],
        "conditions": {"field": "ticket.priority", "op": "eq", "value": "P1"},
        "steps": [
            {"id": "note", "type": "comment", "body": "hi"},
            {"id": "w", "type": "wait", "minutes": 5, "until": {"field": "event.type", "op": "eq", "value": "comment.added"}}
        ]
    });
    let errors = switchboard::workflow::validate_value(&wf).unwrap_err();
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/conditions/field", "/steps/0/type", "/steps/1/until"], "{errors:?}");
    let bad_tz = json!({
        "id": "tz", "name": "tz",
        "triggers": [{"on": "schedule", "cron": "0 8 * *", "timezone": "Europe/Berlinn"}],
        "steps": [{"id": "w", "type": "wait", "minutes": 1}]
    });
    let errors = switchboard::workflow::validate_value(&bad_tz).unwrap_err();
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/triggers/0/timezone"], "the zone is checked first: {errors:?}");
}

#[tokio::test]
async fn summary_runs_see_the_open_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc("2026-11-02T06:30:00Z"));
    let (store, engine) = open(dir.path(), &clock).await;
    let mut wf = summary("digest", "0 8 * * Mon-Fri", "Europe/Berlin", "once");
    wf["steps"] = json!([{"id": "any", "type": "if", "then": "end",
        "condition": {"field": "vars.backlog.open", "op": "gt", "value": 0}}]);
    publish(&engine, wf).await;
    let new = |title: &str, level| NewTicket {
        title: title.into(),
        requester: "ann".into(),
        impact: level,
        urgency: level,
        ..Default::default()
    };
    engine.create_ticket(new("Core switch down", Level::High), "ann").await.unwrap();
    engine.create_ticket(new("Mouse", Level::Medium), "ann").await.unwrap();
    let done = engine.create_ticket(new("Printer", Level::Low), "ann").await.unwrap().ticket.id;
    engine.update_ticket(&done, json!({"status": "resolved"}).as_object().unwrap(), "ann").await.unwrap();
    clock.advance(Duration::minutes(30)); // 07:00 UTC = 08:00 Berlin
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    idle(&engine).await;
    let run = &runs(&store, "digest").await[0];
    let backlog = &run.vars["backlog"];
    assert_eq!(backlog["open"], 2, "{backlog}");
    assert_eq!(backlog["unassigned"], 2);
    assert_eq!(backlog["by_priority"], json!({"P1": 1, "P3": 1}));
    assert_eq!(backlog["oldest"]["title"], "Core switch down");
    assert_eq!(run.status, RunStatus::Completed);
    close(store, engine).await;
}

#[tokio::test]
async fn the_weekly_report_workflow_gets_last_weeks_report() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc("2026-11-08T12:00:00Z")); // Sunday
    let (store, engine) = open(dir.path(), &clock).await;
    let text = std::fs::read_to_string(repo().join("workflows/weekly-report.json")).unwrap();
    let mut wf: Value = serde_json::from_str(&text).unwrap();
    // Post nowhere: replace the notify step by a check of what it would send.
    wf["steps"] = json!([{"id": "check", "type": "if", "then": "end",
        "condition": {"field": "vars.report.total.volume", "op": "gte", "value": 0}}]);
    publish(&engine, wf).await;
    let new = NewTicket { title: "Mouse".into(), requester: "ann".into(), ..Default::default() };
    engine.create_ticket(new, "ann").await.unwrap();
    clock.advance(Duration::hours(18)); // Monday 06:00 UTC = 07:00 Berlin
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    idle(&engine).await;
    let run = &runs(&store, "weekly-report").await[0];
    assert_eq!(run.vars["report"]["total"]["volume"], 1);
    assert_eq!(run.vars["report"]["group_by"], "group");
    assert_eq!(run.vars["schedule"]["local"], "2026-11-09T07:00:00");
    close(store, engine).await;
}

/// Regression: armed during the second pass of a repeated hour, a schedule's timer was
/// set in the past and fired the same occurrence thousands of times, stalling every
/// other timer. Each occurrence fires once and the timer is always due in the future.
#[tokio::test]
async fn a_schedule_armed_in_the_repeated_hour_fires_each_occurrence_once() {
    // Each zone at a moment in the second pass of its repeated hour, and every
    // occurrence of the next two hours. Under the DST rule a repeated local time fires
    // only on its first pass, so the second-pass :00/:30 marks do not fire again.
    let cases: [(&str, &str, &[&str]); 4] = [
        // 02:15:30 CET, Berlin's second 02:00-03:00; next 03:00 CET.
        (
            "Europe/Berlin",
            "2026-10-25T01:15:30Z",
            &["2026-10-25T02:00:00Z", "2026-10-25T02:30:00Z", "2026-10-25T03:00:00Z"],
        ),
        // 01:15:30 EST, New York's second 01:00-02:00; next 02:00 EST.
        (
            "America/New_York",
            "2026-11-01T06:15:30Z",
            &["2026-11-01T07:00:00Z", "2026-11-01T07:30:00Z", "2026-11-01T08:00:00Z"],
        ),
        // 01:45:30 LHST (+10:30), Lord Howe's second 01:30-02:00 (a 30-minute change).
        (
            "Australia/Lord_Howe",
            "2026-04-04T15:15:30Z",
            &["2026-04-04T15:30:00Z", "2026-04-04T16:00:00Z", "2026-04-04T16:30:00Z", "2026-04-04T17:00:00Z"],
        ),
        // 02:45:30 CHAST (+12:45), Chatham's second 02:45-03:45: 03:00 and 03:30 are repeats.
        ("Pacific/Chatham", "2026-04-04T14:00:30Z", &["2026-04-04T15:15:00Z", "2026-04-04T15:45:00Z"]),
    ];
    for (zone, now, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock::new(utc(now));
        let (store, engine) = open(dir.path(), &clock).await;
        publish(&engine, summary("half-hourly", "*/30 * * * *", zone, "all")).await;
        let due = store.timer("cron:half-hourly").await.unwrap().unwrap().due;
        assert_eq!(due, utc(expected[0]), "{zone}: the timer is due after now");
        assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "{zone}: nothing is due yet");

        // A restart in the repeated hour: the timer is kept and still in the future.
        close(store, engine).await;
        let (store, engine) = open(dir.path(), &clock).await;
        publish(&engine, summary("half-hourly", "*/30 * * * *", zone, "all")).await;
        assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "{zone}: nothing fires at restart");

        // Two hours in 5-minute steps (each call returns: nothing re-fires in a loop);
        // each occurrence fires exactly once. (The count a call returns includes the
        // runs' own wait timers, so only the runs are compared.)
        for _ in 0..24 {
            clock.advance(Duration::minutes(5));
            engine.fire_due_timers().await.unwrap();
        }
        idle(&engine).await;
        assert_eq!(fired_for(&store, "half-hourly").await, expected, "{zone}: each occurrence once");
        close(store, engine).await;
    }
}

/// The durable guard: a timer that (by any bug) is due at or before an occurrence it
/// already fired starts nothing for it and moves to the future.
#[tokio::test]
async fn a_cron_timer_never_refires_its_last_fired_occurrence() {
    use switchboard::store::{Timer, TimerKind, Tx, Write};
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(utc("2026-06-01T10:00:10Z"));
    let (store, engine) = open(dir.path(), &clock).await;
    publish(&engine, summary("hourly", "0 * * * *", "UTC", "all")).await;
    let mut tx = Tx::new();
    tx.push(Write::Timer(Timer {
        key: "cron:hourly".into(),
        due: utc("2026-06-01T09:00:00Z"),
        kind: TimerKind::Cron {
            workflow: "hourly".into(),
            cron: "0 * * * *".into(),
            timezone: "UTC".into(),
            last_fired: Some(utc("2026-06-01T10:00:00Z")),
            missed: 0,
        },
    }));
    store.commit(tx).await.unwrap();
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1, "the stale timer is taken");
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0, "and not again");
    idle(&engine).await;
    assert!(fired_for(&store, "hourly").await.is_empty(), "09:00 and 10:00 count as fired");
    assert_eq!(store.timer("cron:hourly").await.unwrap().unwrap().due, utc("2026-06-01T11:00:00Z"));
    close(store, engine).await;
}

/// Crontab numbering and the day-of-month OR day-of-week rule, end to end: `1-5` is
/// Monday to Friday, `0` and `7` are Sunday, `13 * FRI` is every 13th and every Friday,
/// and `@annually` / `@midnight` are accepted.
#[tokio::test]
async fn crontab_weekdays_dom_or_dow_and_shortcuts_fire_as_in_crontab() {
    let dir = tempfile::tempdir().unwrap();
    // Sat 2026-02-28 12:00 UTC; March 2026 starts on a Sunday; the 13th is a Friday.
    let clock = FakeClock::new(utc("2026-02-28T12:00:00Z"));
    let (store, engine) = open(dir.path(), &clock).await;
    publish(&engine, summary("weekdays", "0 8 * * 1-5", "UTC", "all")).await;
    publish(&engine, summary("sundays", "0 8 * * 0", "UTC", "all")).await;
    publish(&engine, summary("sundays7", "0 8 * * 7", "UTC", "all")).await;
    publish(&engine, summary("dom-or-dow", "0 0 13 * FRI", "UTC", "all")).await;
    publish(&engine, summary("midnight", "@midnight", "UTC", "all")).await;
    publish(&engine, summary("annually", "@annually", "UTC", "all")).await;
    for _ in 0..(16 * 24) {
        clock.advance(Duration::hours(1));
        engine.fire_due_timers().await.unwrap();
    }
    idle(&engine).await;
    let days =
        async |w: &str| -> Vec<String> { fired_for(&store, w).await.iter().map(|s| s[..10].to_string()).collect() };
    assert_eq!(
        days("weekdays").await,
        [
            "2026-03-02",
            "2026-03-03",
            "2026-03-04",
            "2026-03-05",
            "2026-03-06",
            "2026-03-09",
            "2026-03-10",
            "2026-03-11",
            "2026-03-12",
            "2026-03-13",
            "2026-03-16"
        ]
    );
    assert_eq!(days("sundays").await, ["2026-03-01", "2026-03-08", "2026-03-15"]);
    assert_eq!(days("sundays7").await, days("sundays").await);
    assert_eq!(days("dom-or-dow").await, ["2026-03-06", "2026-03-13"], "Friday the 6th, and the 13th");
    assert_eq!(days("midnight").await.len(), 16);
    assert!(days("annually").await.is_empty());
    let info = engine.schedules().await.unwrap();
    let annual = info.iter().find(|s| s.workflow == "annually").unwrap();
    assert_eq!(annual.next[0].utc, utc("2027-01-01T00:00:00Z"));
    let weekdays = info.iter().find(|s| s.workflow == "weekdays").unwrap();
    assert_eq!(weekdays.last_fired.as_ref().map(|o| o.utc), Some(utc("2026-03-16T08:00:00Z")));
    assert_eq!(weekdays.missed, 0);
    close(store, engine).await;
}
