//! Property tests over the parts that read user, sender and admin input: arbitrary JSON
//! and strings must give an answer (ok or a located error), never a panic; business-time
//! arithmetic must round-trip. `PROPTEST_CASES` sets the number of cases (CI uses the
//! default 256 per property; a long run: `PROPTEST_CASES=100000`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use switchboard::calendar::{Calendar, CalendarSpec};
use switchboard::schedule::{CatchUp, Compiled};
use switchboard::ticket::{NewTicket, PriorityMatrix};
use switchboard::webhook::{self, Endpoint, Source};
use switchboard::workflow::condition::{Condition, Scope};
use switchboard_tests::repo;

/// Arbitrary JSON, biased towards the words workflows use so that deep paths are reached.
fn json_value() -> impl Strategy<Value = Value> {
    let word = prop_oneof![
        Just("ticket.title".to_string()),
        Just("ticket.custom.x".to_string()),
        Just("vars.a.0".to_string()),
        Just("eq".to_string()),
        Just("older_than".to_string()),
        Just("{{ticket.id}}".to_string()),
        Just("{{/a/b}}".to_string()),
        Just("P1".to_string()),
        Just("schedule".to_string()),
        Just("*/5 * * * *".to_string()),
        "\\PC{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        word.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(word.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The shipped workflows, parsed.
fn shipped() -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("workflows")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            out.push(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap());
        }
    }
    out
}

/// Replaces the value at a path chosen by `picks` with `replacement`.
fn mutate(doc: &mut Value, picks: &[usize], replacement: Value) {
    let Some((pick, rest)) = picks.split_first() else {
        *doc = replacement;
        return;
    };
    match doc {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(pick % m.len()).unwrap().clone();
            mutate(m.get_mut(&key).unwrap(), rest, replacement);
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            mutate(&mut a[pick % n], rest, replacement);
        }
        _ => *doc = replacement,
    }
}

fn ticket() -> switchboard::ticket::Ticket {
    let new = NewTicket { title: "Printer".into(), requester: "ann".into(), ..Default::default() };
    new.into_ticket("T-1".into(), &PriorityMatrix::default(), Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap())
}

proptest! {
    #[test]
    fn workflow_validation_answers_any_json(doc in json_value()) {
        let _ = switchboard::workflow::validate_value(&doc);
        let _ = switchboard::workflow::validate_str(&doc.to_string());
    }

    #[test]
    fn mutated_shipped_workflows_validate_or_locate_the_error(
        which in any::<prop::sample::Index>(),
        picks in prop::collection::vec(any::<usize>(), 1..6),
        replacement in json_value(),
    ) {
        let docs = shipped();
        let mut doc = docs[which.index(docs.len())].clone();
        mutate(&mut doc, &picks, replacement);
        if let Err(errors) = switchboard::workflow::validate_value(&doc) {
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(e.pointer.is_empty() || e.pointer.starts_with('/'), "{}", e.pointer);
            }
        }
    }

    #[test]
    fn conditions_evaluate_without_panicking(cond in json_value(), vars in json_value()) {
        if let Ok(c) = serde_json::from_value::<Condition>(cond) {
            let t = ticket();
            let vars = match vars { Value::Object(m) => m, _ => Map::new() };
            let scope = Scope { ticket: &t, changes: &[], previous: None, vars: &vars, event: "ticket.updated", actor: "ann", now: Utc::now() };
            let _ = c.evaluate(&scope, "/conditions", &mut Vec::new());
        }
    }

    #[test]
    fn webhook_mappings_extract_from_any_payload(source in json_value(), payload in json_value(), endpoint in json_value()) {
        if let Ok(s) = serde_json::from_value::<Source>(source) {
            let _ = webhook::extract(&s, &payload);
        }
        if let Ok(e) = serde_json::from_value::<Endpoint>(endpoint) {
            let _ = e.check();
        }
        let _ = webhook::new_ticket_object(payload.as_object().cloned().unwrap_or_default());
    }

    #[test]
    fn schedules_parse_any_text_and_move_forward(expr in "\\PC{0,30}", tz in "\\PC{0,20}", minute in 0u32..60, hour in 0u32..24, start in 0i64..2_000_000_000) {
        let _ = Compiled::new(&expr, &tz);
        let _ = switchboard::workflow::parse_at(&expr, chrono_tz::Europe::Berlin);
        for zone in ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"] {
            let s = Compiled::new(&format!("{minute} {hour} * * *"), zone).unwrap();
            let t = DateTime::<Utc>::from_timestamp(start, 0).unwrap();
            let next = s.next_after(t).unwrap();
            prop_assert!(next > t);
            prop_assert!(next - t <= Duration::hours(49), "daily fires within two days ({zone}): {t} -> {next}");
            let plan = s.plan(t, None, t + Duration::days(3), CatchUp::All);
            prop_assert!(plan.firings.windows(2).all(|w| w[0].scheduled_for < w[1].scheduled_for));
        }
    }

    #[test]
    fn business_time_round_trips(start in 1_700_000_000i64..1_900_000_000, minutes in 0i64..20_000) {
        for (zone, hours) in [("Europe/Berlin", ("08:00", "18:00")), ("Australia/Lord_Howe", ("09:30", "17:00"))] {
            let day = vec![[hours.0.to_string(), hours.1.to_string()]];
            let spec = CalendarSpec {
                id: "c".into(),
                timezone: zone.into(),
                hours: ["mon", "tue", "wed", "thu", "fri"].iter().map(|d| (d.to_string(), day.clone())).collect(),
                holidays: vec!["2026-12-24".into(), "2026-12-25".into()],
            };
            let cal = Calendar::new(&spec).unwrap();
            let t = DateTime::<Utc>::from_timestamp(start, 0).unwrap();
            let end = cal.add(t, Duration::minutes(minutes)).unwrap();
            prop_assert!(end >= t);
            prop_assert_eq!(cal.between(t, end), Duration::minutes(minutes), "{} {} + {}m = {}", zone, t, minutes, end);
        }
    }
}
