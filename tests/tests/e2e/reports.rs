//! The manager's report on a seeded data set, every figure checked against values
//! computed by hand (see the comments), through the engine, CSV and the CLI.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::Config;
use switchboard::config::{Role, Token};
use switchboard::executor::Engine;
use switchboard::report::{Bucket, GroupBy, Query, Savings};
use switchboard::store::{sled::SledStore, Durability, Store};
use switchboard::team::Group;
use switchboard::ticket::{Level, NewTicket};
use switchboard_tests::{binary, repo};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn patch(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn report_figures_match_hand_computed_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap());
    // Monday 2 November 2026; Berlin office hours 08:00-18:00 = 07:00-17:00 UTC.
    let clock = FakeClock::new(utc("2026-11-02T06:00:00Z"));
    // A self-service portal posts through an integration token; password resets save 12
    // minutes of work, other tickets 30.
    let config = Config {
        tokens: vec![Token::new("portal", "portal-token-0123456789", Role::Integrator)],
        reports: Savings { minutes_saved_per_ticket: 30.0, minutes_saved: [("password".to_string(), 12.0)].into() },
        ..Config::default()
    };
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(config.clone())).unwrap();
    let sla: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("workflows/sla/standard.json")).unwrap()).unwrap();
    engine.put_calendar(serde_json::from_value(sla["calendars"][0].clone()).unwrap()).await.unwrap();
    engine.put_sla_policy(serde_json::from_value(sla["policies"][0].clone()).unwrap()).await.unwrap();
    for g in ["network", "desk"] {
        engine
            .put_group(Group { id: g.into(), name: g.into(), description: String::new(), manager: None }, "t")
            .await
            .unwrap();
    }
    // The password workflow suggests an article publicly, then resolves: the bot's reply is
    // neither a contact (FCR) nor a person's touch (deflection).
    let auto = json!({"id": "auto", "name": "auto", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.category", "op": "eq", "value": "password"},
        "steps": [{"id": "kb", "type": "comment", "internal": false, "body": "This article may help: KB0001"},
            {"id": "r", "type": "resolve", "resolution": "Reset link sent"}]});
    // A knowledge-base bot replies publicly to monitor tickets: that is no first response.
    let kb = json!({"id": "kb", "name": "kb", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.title", "op": "eq", "value": "monitor"},
        "steps": [{"id": "kb", "type": "comment", "internal": false, "body": "Try KB0003"}]});
    for wf in [auto, kb] {
        engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "t").await.unwrap();
    }
    let new =
        |title: &str, level: Level, group: Option<&str>, channel: &str, category: Option<&str>, requester: &str| {
            NewTicket {
                title: title.into(),
                requester: requester.into(),
                impact: level,
                urgency: level,
                group: group.map(String::from),
                channel: Some(channel.into()),
                category: category.map(String::from),
                ..Default::default()
            }
        };
    // T-1 is logged before the period.
    engine.create_ticket(new("old", Level::Low, None, "email", None, "ann"), "ann").await.unwrap();
    clock.advance(Duration::hours(1)); // 07:00Z
    let t1 = engine
        .create_ticket(new("switch down", Level::High, Some("network"), "email", None, "ann"), "ann")
        .await
        .unwrap()
        .ticket
        .id;
    let t2 = engine
        .create_ticket(new("slow wifi", Level::Medium, Some("network"), "phone", None, "ann"), "ann")
        .await
        .unwrap()
        .ticket
        .id;
    let t3 = engine
        .create_ticket(new("password", Level::Medium, None, "portal", Some("password"), "bob"), "portal")
        .await
        .unwrap()
        .ticket
        .id;
    let t4 = engine
        .create_ticket(new("monitor", Level::Medium, Some("desk"), "portal", None, "cy"), "cy")
        .await
        .unwrap()
        .ticket
        .id;
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    use switchboard::store::TicketStore as _;
    use switchboard::ticket::Status;
    assert_eq!(store.ticket(&t3).await.unwrap().unwrap().status, Status::Resolved, "resolved by the workflow");
    assert_eq!(store.ticket(&t4).await.unwrap().unwrap().status, Status::New);
    assert_eq!(store.ticket(&t4).await.unwrap().unwrap().comments.len(), 1, "the bot replied");
    // P1 t1: first reply after 10 min (met, target 15), resolved after 60 (met, 240).
    clock.advance(Duration::minutes(10));
    engine.add_comment(&t1, "Looking at it", false, "alice").await.unwrap();
    clock.advance(Duration::minutes(50));
    engine.update_ticket(&t1, &patch(json!({"status": "resolved"})), "alice").await.unwrap();
    // P3 t2: first reply after 300 min (breached, target 240); resolved at 360, reopened
    // at 400 by the requester, resolved again at 420: 360 + 20 = 380 min (met, 1440).
    clock.advance(Duration::minutes(240)); // 12:00Z
    engine.add_comment(&t2, "Which floor?", false, "alice").await.unwrap();
    clock.advance(Duration::minutes(60));
    engine.update_ticket(&t2, &patch(json!({"status": "resolved"})), "alice").await.unwrap();
    clock.advance(Duration::minutes(40));
    engine.update_ticket(&t2, &patch(json!({"status": "reopened"})), "ann").await.unwrap();
    clock.advance(Duration::minutes(20));
    engine.update_ticket(&t2, &patch(json!({"status": "resolved"})), "alice").await.unwrap();
    // Survey answers: 5 and 2.
    for (t, score) in [(&t1, 5), (&t2, 2)] {
        engine.update_ticket(t, &patch(json!({"custom": {"csat": score}})), "webhook:csat-survey").await.unwrap();
    }
    // Day 2, after the report's end: a new ticket, and t4 resolved. Neither changes the
    // figures of the period before (status and clocks are read as they stood at `to`).
    clock.set(utc("2026-11-03T08:00:00Z"));
    engine.create_ticket(new("dock", Level::Low, Some("desk"), "phone", None, "dan"), "alice").await.unwrap();
    clock.set(utc("2026-11-03T10:00:00Z"));
    engine.update_ticket(&t4, &patch(json!({"status": "resolved"})), "alice").await.unwrap();
    let from = utc("2026-11-02T06:30:00Z");
    let to = utc("2026-11-03T07:00:00Z");
    let query =
        |by, bucket, tz: &str| Query { from, to, by, bucket, tz: tz.parse().unwrap(), savings: config.reports.clone() };
    let typed = engine.report(&query(Some(GroupBy::Group), None, "UTC")).await.unwrap();
    let report = serde_json::to_value(&typed).unwrap();
    let total = &report["total"];
    let expect = json!({
        "volume": 4,                    // t1..t4 (the old one is before, t5 after)
        "sla_response_pct": 66.7,       // met t1, t3 (0 min: resolved at once); breached t2;
                                        // t4 running: the bot's reply is no response
        "sla_resolution_pct": 100.0,    // t1, t2, t3 met; t4 running at `to`
        "response_mean_min": 103.3,     // (10 + 300 + 0) / 3
        "response_median_min": 10.0,
        "resolve_mean_min": 146.7,      // (60 + 380 + 0) / 3
        "resolve_median_min": 60.0,
        "resolved": 3,                  // t4 was resolved only after `to`
        "fcr_pct": 66.7,                // t1 (one reply), t3 (the bot's reply is no contact); not t2 (reopened)
        "reopen_pct": 33.3,             // t2
        "backlog": 2,                   // t4, and the old ticket logged before the period
        "ageing": {"1-3d": 2},          // t4 is 24 h old at `to`, the old one 25 h
        "csat_responses": 2,
        "csat_mean": 3.5,
        "csat_satisfied_pct": 50.0,
        "deflected": 1,                 // t3: only the portal (an integration) and workflow:auto touched it
        "deflection_pct": 33.3,
        "deflected_by": {"workflow:auto": 1},
        "hours_saved": 0.2,             // 1 password ticket x 12 min
        "touches": {"person": 5, "requester": 1, "automation": 6},
                                        // alice: t1 reply + resolve, t2 reply + 2 resolves; ann's reopen;
                                        // replies on t3 and t4, t3's resolve and its resolution note,
                                        // the 2 survey answers
    });
    assert_eq!(total, &expect, "{}", serde_json::to_string_pretty(total).unwrap());
    // The breach, with the time it happened.
    assert_eq!(
        report["breaches"],
        json!([{"ticket": t2, "title": "slow wifi", "metric": "response", "breached_at": "2026-11-02T12:00:00Z",
            "priority": "P3", "group": "network", "assignee": null}])
    );
    // Days in Berlin: 2 Nov (00:00+01:00 = 1 Nov 23:00Z) to 4 Nov.
    let mut daily = query(None, Some(Bucket::Day), "Europe/Berlin");
    daily.from = utc("2026-11-01T23:00:00Z");
    daily.to = utc("2026-11-03T23:00:00Z");
    let series = serde_json::to_value(engine.report(&daily).await.unwrap()).unwrap()["series"].clone();
    let days: Vec<(String, u64, u64, u64)> = series
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let f = &b["total"];
            (
                b["start"].as_str().unwrap().to_string(),
                f["volume"].as_u64().unwrap(),
                f["resolved"].as_u64().unwrap(),
                f["backlog"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            ("2026-11-01T23:00:00Z".to_string(), 5, 3, 2), // old, t1-t4; t1-t3 resolved; old and t4 open at midnight
            ("2026-11-02T23:00:00Z".to_string(), 1, 0, 2), // t5; open at the end: old and t5 (t4 resolved)
        ]
    );
    let groups: Vec<(&str, u64)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["figures"]["volume"].as_u64().unwrap()))
        .collect();
    assert_eq!(groups, [("(none)", 1), ("desk", 1), ("network", 2)]);
    let network = &report["groups"][2]["figures"];
    assert_eq!((network["sla_response_pct"].as_f64(), network["fcr_pct"].as_f64()), (Some(50.0), Some(50.0)));

    let csv = switchboard::report::csv(&typed);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "header, total, 3 groups");
    assert!(lines[0].starts_with("group,volume,sla_response_pct"));
    assert!(
        lines[0].ends_with(",hours_saved,ageing_<1d,ageing_1-3d,ageing_3-7d,ageing_7-30d,ageing_>30d"),
        "{}",
        lines[0]
    );
    // One column per age bucket: t4 is in 1-3d.
    assert_eq!(
        lines[1], "\"(total)\",4,66.7,100.0,103.3,10.0,146.7,60.0,3,66.7,33.3,2,2,3.5,50.0,1,33.3,0.2,0,2,0,0,0",
        "{}",
        lines[1]
    );
    // Regression: the first column was headed `group` whatever the grouping.
    let by_agent = switchboard::report::csv(&engine.report(&query(Some(GroupBy::Agent), None, "UTC")).await.unwrap());
    assert!(by_agent.starts_with("agent,volume,"), "{by_agent}");
    // A series in CSV: one block per bucket, its start first.
    let daily_csv = switchboard::report::csv(&engine.report(&daily).await.unwrap());
    let rows: Vec<&str> = daily_csv.lines().collect();
    assert!(rows[0].starts_with("start,group,volume,"), "{daily_csv}");
    assert!(rows[1].starts_with("\"2026-11-01T23:00:00Z\",\"(total)\",5,"), "{daily_csv}");
    assert!(rows[2].starts_with("\"2026-11-02T23:00:00Z\",\"(total)\",1,"), "{daily_csv}");

    // The CLI prints the same CSV from the data directory.
    engine.shutdown().await;
    store.close().unwrap();
    drop(engine);
    drop(store);
    let out = std::process::Command::new(binary())
        .args([
            "report",
            "--from",
            "2026-11-02T06:30:00Z",
            "--to",
            "2026-11-03T07:00:00Z",
            "--by",
            "group",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().nth(1).unwrap().starts_with("\"(total)\",4,66.7,100.0"), "{text}");
    let bad = std::process::Command::new(binary())
        .args(["report", "--from", "yesterday", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("yesterday"));
}

/// Which actors stop the response clock is the policy's choice: people by default, and a
/// policy may let automation's replies count.
#[tokio::test]
async fn a_bot_reply_stops_the_response_clock_only_when_the_policy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap());
    let clock = FakeClock::new(utc("2026-11-02T08:00:00Z"));
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(Config::default())).unwrap();
    let policy = |id: &str, category: &str, by: Value| {
        json!({"id": id, "applies_to": {"field": "ticket.category", "op": "eq", "value": category},
            "response_stopped_by": by,
            "targets": {"P1": {"response_minutes": 15, "resolution_minutes": 240},
                "P2": {"response_minutes": 60, "resolution_minutes": 480},
                "P3": {"response_minutes": 240, "resolution_minutes": 1440},
                "P4": {"response_minutes": 480, "resolution_minutes": 2880}}})
    };
    for p in [policy("people", "hw", json!(["person"])), policy("bots", "sw", json!(["person", "automation"]))] {
        engine.put_sla_policy(serde_json::from_value(p).unwrap()).await.unwrap();
    }
    let refused = serde_json::from_value::<switchboard::sla::Policy>(policy("x", "x", json!(["requester"]))).unwrap();
    match engine.put_sla_policy(refused).await {
        Err(switchboard::executor::Error::Invalid(errors)) => {
            assert_eq!(errors[0].0, "/response_stopped_by/0", "{errors:?}")
        }
        other => panic!("a requester cannot respond to themselves: {other:?}"),
    }
    let kb = json!({"id": "kb", "name": "kb", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "kb", "type": "comment", "internal": false, "body": "Try KB0003"}]});
    engine.put_workflow(switchboard::workflow::validate_value(&kb).unwrap(), "t").await.unwrap();
    let mut ids = Vec::new();
    for category in ["hw", "sw"] {
        let t = NewTicket {
            title: category.into(),
            requester: "ann".into(),
            category: Some(category.into()),
            ..Default::default()
        };
        ids.push(engine.create_ticket(t, "ann").await.unwrap().ticket.id);
    }
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    use switchboard::store::TimeStore as _;
    let stopped = async |id: &str| store.ticket_sla(id).await.unwrap().unwrap().response.stopped_at;
    assert_eq!(stopped(&ids[0]).await, None, "a bot's reply is no response under the default policy");
    assert_eq!(stopped(&ids[1]).await, Some(utc("2026-11-02T08:00:00Z")), "the policy lets automation respond");
    clock.advance(Duration::minutes(5));
    engine.add_comment(&ids[0], "On my way", false, "alice").await.unwrap();
    assert_eq!(stopped(&ids[0]).await, Some(utc("2026-11-02T08:05:00Z")), "a person's reply responds");
    engine.shutdown().await;
}

/// The series over HTTP: `bucket` and `tz` are read, and a wrong one is a 422 naming it.
#[tokio::test]
async fn report_series_over_http_and_their_errors() {
    let stand = switchboard_tests::Stand::start("").unwrap();
    stand.agent.post("/tickets", &json!({"title": "t", "requester": "r"})).await.unwrap();
    let report = stand.agent.get("/reports?period=month&bucket=week&tz=America/New_York").await.unwrap();
    let series = report["series"].as_array().unwrap();
    assert!((4..=6).contains(&series.len()), "a month in weeks: {report}");
    assert_eq!(report["timezone"], "America/New_York");
    let volume: u64 = series.iter().map(|b| b["total"]["volume"].as_u64().unwrap()).sum();
    assert_eq!(volume, 1, "each ticket in exactly one bucket");
    let (status, body) = stand.agent.call("GET", "/reports?bucket=week&tz=Mars/Base", None).await.unwrap();
    assert_eq!((status, body["error"]["details"]["errors"][0]["pointer"].as_str()), (422, Some("/tz")), "{body}");
    // A value the query type refuses is a 400 naming the parameter, as for every query.
    let (status, body) = stand.agent.call("GET", "/reports?bucket=fortnight", None).await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("bucket"), "{body}");
}

/// A report reads only the tickets its period can count (logged in it, open now, done
/// since it began: the store's indexes), never the whole desk. Whatever happened to the
/// tickets — resolved, closed, reopened, commented on long after —, the figures it gives
/// are those computed from every ticket of the desk, for any period and bucket.
#[tokio::test]
async fn reports_from_the_indexes_equal_reports_over_every_ticket() {
    let dir = tempfile::tempdir().unwrap();
    indexed_reports_equal_full_ones(Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap())).await;
}

/// The same on PostgreSQL (its indexes are SQL ones).
#[tokio::test]
async fn reports_from_the_indexes_equal_reports_over_every_ticket_on_postgres() {
    let url = switchboard::store::postgres::scratch::database().await.unwrap();
    let store = switchboard::store::postgres::PostgresStore::connect(&url, 4).await.unwrap();
    indexed_reports_equal_full_ones(Arc::new(store)).await;
}

async fn indexed_reports_equal_full_ones(store: Arc<dyn Store>) {
    use rand::{Rng, SeedableRng};
    use switchboard::clock::Clock;
    use switchboard::store::TicketFilter;
    let start = utc("2026-09-01T00:00:00Z");
    let clock = FakeClock::new(start);
    let config = Config::default();
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(config.clone())).unwrap();
    for g in ["desk", "network"] {
        engine
            .put_group(Group { id: g.into(), name: g.into(), description: String::new(), manager: None }, "t")
            .await
            .unwrap();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261203);
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..400 {
        clock.advance(Duration::minutes(rng.gen_range(1..600)));
        if ids.is_empty() || rng.gen_bool(0.3) {
            let new = NewTicket {
                title: "printer".into(),
                requester: "ann".into(),
                group: Some(["desk", "network"][rng.gen_range(0..2)].into()),
                ..Default::default()
            };
            ids.push(engine.create_ticket(new, "ann").await.unwrap().ticket.id);
            continue;
        }
        let id = ids[rng.gen_range(0..ids.len())].clone();
        let status = ["in_progress", "pending", "resolved", "closed", "reopened"][rng.gen_range(0..5)];
        let change = if rng.gen_bool(0.2) { json!({"comment": {"body": "later"}}) } else { json!({"status": status}) };
        // Some changes are refused (closed tickets reopen only by rule): that is fine.
        let _ = engine.update_ticket(&id, &patch(change), "bob").await;
    }
    let end = clock.now();
    let mut every: Vec<(switchboard::ticket::Ticket, Vec<_>, Option<_>)> = Vec::new();
    for t in store.tickets(&TicketFilter { limit: Some(1000), ..Default::default() }).await.unwrap() {
        let (history, sla) = (store.history(&t.id).await.unwrap(), store.ticket_sla(&t.id).await.unwrap());
        every.push((t, history, sla));
    }
    assert_eq!(every.len(), ids.len());
    let items: Vec<switchboard::report::Item<'_>> = every
        .iter()
        .map(|(ticket, history, sla)| switchboard::report::Item {
            ticket,
            history: history.as_slice(),
            sla: sla.as_ref(),
        })
        .collect();
    let actors = switchboard::actor::Actors::new(config.integrations());
    let span = (end - start).num_minutes();
    for _ in 0..40 {
        let a = start + Duration::minutes(rng.gen_range(0..span));
        let b = if rng.gen_bool(0.3) { end } else { start + Duration::minutes(rng.gen_range(0..span)) };
        let (from, to) = if a < b { (a, b) } else { (b, a + Duration::hours(1)) };
        let bucket = [None, Some(Bucket::Day), Some(Bucket::Week)][rng.gen_range(0..3)];
        let q = Query {
            from,
            to,
            by: Some(GroupBy::Group),
            bucket,
            tz: chrono_tz::Europe::Berlin,
            savings: Savings::default(),
        };
        let indexed = serde_json::to_value(engine.report(&q).await.unwrap()).unwrap();
        let whole = serde_json::to_value(switchboard::report::compute(&items, &q, &actors)).unwrap();
        assert_eq!(indexed, whole, "{from} .. {to} by {bucket:?}");
    }
}
