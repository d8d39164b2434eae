//! Condition evaluation: any JSON that parses as a condition evaluates against a ticket
//! and arbitrary run variables without panicking.
#![no_main]
use chrono::TimeZone;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use switchboard::ticket::{NewTicket, PriorityMatrix};
use switchboard::workflow::condition::{Condition, Scope};

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Array(parts)) = serde_json::from_slice::<Value>(data) else { return };
    let (Some(cond), vars) = (parts.first().cloned(), parts.get(1).cloned()) else { return };
    let Ok(c) = serde_json::from_value::<Condition>(cond) else { return };
    let now = chrono::Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap();
    let new = NewTicket { title: "Printer".into(), requester: "ann".into(), ..Default::default() };
    let t = new.into_ticket("T-1".into(), &PriorityMatrix::default(), now);
    let vars = match vars { Some(Value::Object(m)) => m, _ => Map::new() };
    let scope = Scope { ticket: &t, changes: &[], previous: None, vars: &vars, event: "ticket.updated", actor: "ann", now };
    let _ = c.evaluate(&scope, "/conditions", &mut Vec::new());
});
