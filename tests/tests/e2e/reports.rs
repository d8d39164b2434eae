//! The manager's report on a seeded data set, every figure checked against values
//! computed by hand (see the comments), through the engine, CSV and the CLI.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::Config;
use switchboard::executor::Engine;
use switchboard::report::GroupBy;
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
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(Config::default())).unwrap();
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
    let auto = json!({"id": "auto", "name": "auto", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.category", "op": "eq", "value": "password"},
        "steps": [{"id": "r", "type": "resolve", "resolution": "Reset link sent"}]});
    engine.put_workflow(switchboard::workflow::validate_value(&auto).unwrap(), "t").await.unwrap();
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
        .create_ticket(new("password", Level::Medium, None, "portal", Some("password"), "bob"), "bob")
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
    assert_eq!(store.ticket(&t3).unwrap().unwrap().status, Status::Resolved, "resolved by the workflow");
    assert_eq!(store.ticket(&t4).unwrap().unwrap().status, Status::New);
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
    let from = utc("2026-11-02T06:30:00Z");
    let to = utc("2026-11-03T07:00:00Z");
    let report = engine.report(from, to, Some(GroupBy::Group), 30.0).unwrap();
    let total = &report["total"];
    let expect = json!({
        "volume": 4,                    // t1..t4 (the old one is outside)
        "sla_response_pct": 66.7,       // met t1, t3 (0 min: resolved at once); breached t2; t4 running
        "sla_resolution_pct": 100.0,    // t1, t2, t3 met; t4 running
        "response_mean_min": 103.3,     // (10 + 300 + 0) / 3
        "response_median_min": 10.0,
        "resolve_mean_min": 146.7,      // (60 + 380 + 0) / 3
        "resolve_median_min": 60.0,
        "resolved": 3,
        "fcr_pct": 66.7,                // t1 (one reply), t3 (the workflow's note); not t2 (reopened)
        "reopen_pct": 33.3,             // t2
        "backlog": 1,                   // t4
        "ageing": {"1-3d": 1},          // t4 is 24 h old at `to`
        "csat_responses": 2,
        "csat_mean": 3.5,
        "csat_satisfied_pct": 50.0,
        "deflected": 1,                 // t3: only bob (requester) and workflow:auto touched it
        "hours_saved": 0.5,             // 1 x 30 min
    });
    assert_eq!(total, &expect, "{}", serde_json::to_string_pretty(total).unwrap());
    let groups: Vec<(&str, u64)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["figures"]["volume"].as_u64().unwrap()))
        .collect();
    assert_eq!(groups, [("(none)", 1), ("desk", 1), ("network", 2)]);
    let network = &report["groups"][2]["figures"];
    assert_eq!((network["sla_response_pct"].as_f64(), network["fcr_pct"].as_f64()), (Some(50.0), Some(50.0)));

    let csv = switchboard::report::csv(&report);
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
        lines[1], "\"(total)\",4,66.7,100.0,103.3,10.0,146.7,60.0,3,66.7,33.3,1,2,3.5,50.0,1,0.5,0,1,0,0,0",
        "{}",
        lines[1]
    );
    // Regression: the first column was headed `group` whatever the grouping.
    let by_agent = switchboard::report::csv(&engine.report(from, to, Some(GroupBy::Agent), 30.0).unwrap());
    assert!(by_agent.starts_with("agent,volume,"), "{by_agent}");

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
