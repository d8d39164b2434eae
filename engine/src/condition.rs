//! Conditions: `all` / `any` / `not` trees over comparisons, and their evaluation.
//!
//! Evaluation records every comparison it makes (the values seen and the result) so
//! a person can read why a workflow ran or did not.

use crate::json::present;
use crate::ticket::{fields, FieldChange, Ticket};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A condition tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    /// Every child holds.
    All {
        /// Children.
        all: Vec<Condition>,
    },
    /// At least one child holds.
    Any {
        /// Children.
        any: Vec<Condition>,
    },
    /// The child does not hold.
    Not {
        /// Child.
        not: Box<Condition>,
    },
    /// A comparison on one field.
    Compare(Comparison),
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// `ticket.<field>`, `previous.<field>`, `vars.<name>[.<name>...]` or
    /// `event.type`, `event.actor`, `event.by_requester`.
    pub field: String,
    /// The test.
    pub op: Op,
    /// The operand (absent for `exists` and `changed`).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal (numbers compare by value).
    Eq,
    /// Not equal.
    Ne,
    /// The field's value is one of the array's items.
    In,
    /// Substring of a string, or item of an array.
    Contains,
    /// String prefix.
    StartsWith,
    /// Regular expression match (Rust `regex` syntax).
    Regex,
    /// Greater than (numbers, or strings compared in order: ISO dates, `P1`..`P4`).
    Gt,
    /// Less than.
    Lt,
    /// Greater than or equal.
    Gte,
    /// Less than or equal.
    Lte,
    /// The field is set (not null); `value: false` tests the opposite.
    Exists,
    /// The triggering event changed the field.
    Changed,
    /// The event changed the field from `value`.
    ChangedFrom,
    /// The event changed the field to `value`.
    ChangedTo,
    /// The field is a time more than `value` (`15m`, `4h`, `3d`) before now.
    OlderThan,
    /// The field is a time at most `value` before now.
    NewerThan,
}

/// Parses `15m`, `4h` or `3d` (minutes, hours, days).
pub fn parse_age(s: &str) -> Option<chrono::Duration> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n >= 0 && *n <= 100 * 365 * 24 * 60)?;
    match unit {
        "m" => Some(chrono::Duration::minutes(n)),
        "h" => Some(chrono::Duration::hours(n)),
        "d" => Some(chrono::Duration::days(n)),
        _ => None,
    }
}

impl Op {
    /// Operators that take no value (or an optional boolean for `exists`).
    pub fn takes_value(self) -> bool {
        !matches!(self, Op::Exists | Op::Changed)
    }

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::In => "in",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::Regex => "regex",
            Op::Gt => "gt",
            Op::Lt => "lt",
            Op::Gte => "gte",
            Op::Lte => "lte",
            Op::Exists => "exists",
            Op::Changed => "changed",
            Op::ChangedFrom => "changed_from",
            Op::ChangedTo => "changed_to",
            Op::OlderThan => "older_than",
            Op::NewerThan => "newer_than",
        }
    }
}

/// What a condition can see.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The ticket as it is now.
    pub ticket: &'a Ticket,
    /// The changes of the triggering event (empty when not an update).
    pub changes: &'a [FieldChange],
    /// Fields the event did not change, as it left them (`previous.<field>` reads these
    /// before the ticket now, which the run may have changed since).
    pub previous: Option<&'a Map<String, Value>>,
    /// Run variables.
    pub vars: &'a Map<String, Value>,
    /// The triggering event's type, e.g. `ticket.updated`.
    pub event: &'a str,
    /// Who caused the event.
    pub actor: &'a str,
    /// The engine clock's now, for `older_than` / `newer_than`.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// One comparison made during evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Where the comparison sits in the definition (JSON pointer).
    pub pointer: String,
    /// The field tested.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// The operand, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// The value seen.
    pub actual: Value,
    /// Whether it held.
    pub result: bool,
}

/// Where a field path points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `ticket.*`
    Ticket,
    /// `previous.*`
    Previous,
    /// `vars.*`
    Vars,
    /// `event.*`
    Event,
}

/// Splits `ticket.status` into its root and the rest; `None` if the path is not known.
pub fn parse_path(path: &str) -> Option<(Root, &str)> {
    let (root, rest) = path.split_once('.')?;
    let root = match root {
        "ticket" => Root::Ticket,
        "previous" => Root::Previous,
        "vars" => Root::Vars,
        "event" => Root::Event,
        _ => return None,
    };
    let ok = match root {
        Root::Ticket | Root::Previous => fields::is_known(rest),
        Root::Vars => !rest.is_empty() && rest.split('.').all(|s| !s.is_empty()),
        Root::Event => matches!(rest, "type" | "actor" | "by_requester"),
    };
    ok.then_some((root, rest))
}

/// Reads a field path in a scope (null when absent).
pub fn resolve(scope: &Scope<'_>, path: &str) -> Value {
    let Some((root, rest)) = parse_path(path) else {
        return Value::Null;
    };
    match root {
        Root::Ticket => fields::get(scope.ticket, rest).unwrap_or(Value::Null),
        Root::Previous => match scope.changes.iter().find(|c| c.field == rest) {
            Some(change) => change.from.clone(),
            None => match scope.previous.and_then(|p| p.get(rest)) {
                Some(v) => v.clone(),
                None => fields::get(scope.ticket, rest).unwrap_or(Value::Null),
            },
        },
        Root::Vars => {
            let mut parts = rest.split('.');
            let first = parts.next().unwrap_or_default();
            let mut cur = scope.vars.get(first).cloned().unwrap_or(Value::Null);
            for part in parts {
                cur = match &cur {
                    Value::Object(m) => m.get(part).cloned().unwrap_or(Value::Null),
                    Value::Array(a) => {
                        part.parse::<usize>().ok().and_then(|i| a.get(i).cloned()).unwrap_or(Value::Null)
                    }
                    _ => Value::Null,
                };
            }
            cur
        }
        Root::Event => match rest {
            "type" => Value::String(scope.event.to_string()),
            "by_requester" => Value::Bool(scope.actor == scope.ticket.requester),
            _ => Value::String(scope.actor.to_string()),
        },
    }
}

fn cached_regex(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(re) = map.get(pattern) {
        return Some(re.clone());
    }
    let re = regex::RegexBuilder::new(pattern).size_limit(1 << 20).build().ok()?;
    if map.len() > 1024 {
        map.clear();
    }
    map.insert(pattern.to_string(), re.clone());
    Some(re)
}

/// JSON equality, except that numbers compare by value (1 == 1.0).
pub fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare(c: &Comparison, scope: &Scope<'_>) -> (Value, bool) {
    let change_of = |field: &str| -> Option<&FieldChange> {
        let name = field.strip_prefix("ticket.")?;
        scope.changes.iter().find(|ch| ch.field == name)
    };
    let expected = c.value.clone().unwrap_or(Value::Null);
    match c.op {
        Op::Changed => {
            let ch = change_of(&c.field);
            (ch.map(|ch| ch.to.clone()).unwrap_or(Value::Null), ch.is_some())
        }
        Op::ChangedFrom => match change_of(&c.field) {
            Some(ch) => (ch.from.clone(), loosely_equal(&ch.from, &expected)),
            None => (Value::Null, false),
        },
        Op::ChangedTo => match change_of(&c.field) {
            Some(ch) => (ch.to.clone(), loosely_equal(&ch.to, &expected)),
            None => (Value::Null, false),
        },
        _ => {
            let actual = resolve(scope, &c.field);
            let result = match c.op {
                Op::Eq => loosely_equal(&actual, &expected),
                Op::Ne => !loosely_equal(&actual, &expected),
                Op::In => expected.as_array().is_some_and(|items| items.iter().any(|i| loosely_equal(i, &actual))),
                Op::Contains => match (&actual, &expected) {
                    (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
                    (Value::Array(items), needle) => items.iter().any(|i| loosely_equal(i, needle)),
                    _ => false,
                },
                Op::StartsWith => match (&actual, &expected) {
                    (Value::String(s), Value::String(p)) => s.starts_with(p.as_str()),
                    _ => false,
                },
                Op::Regex => match (&actual, &expected) {
                    (Value::String(s), Value::String(p)) => cached_regex(p).is_some_and(|re| re.is_match(s)),
                    _ => false,
                },
                Op::Gt => order(&actual, &expected).is_some_and(|o| o.is_gt()),
                Op::Lt => order(&actual, &expected).is_some_and(|o| o.is_lt()),
                Op::Gte => order(&actual, &expected).is_some_and(|o| o.is_ge()),
                Op::Lte => order(&actual, &expected).is_some_and(|o| o.is_le()),
                Op::Exists => {
                    let want = expected.as_bool().unwrap_or(true);
                    actual.is_null() != want
                }
                Op::OlderThan | Op::NewerThan => {
                    let at = actual.as_str().and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok());
                    match (at, expected.as_str().and_then(parse_age)) {
                        (Some(at), Some(age)) if c.op == Op::OlderThan => scope.now - at > age,
                        (Some(at), Some(age)) => scope.now - at <= age,
                        _ => false,
                    }
                }
                Op::Changed | Op::ChangedFrom | Op::ChangedTo => false,
            };
            (actual, result)
        }
    }
}

impl Condition {
    /// Evaluates the tree, short-circuiting like `&&` / `||`, and appends each
    /// comparison made to `trace`. `pointer` is this node's location in the definition.
    pub fn evaluate(&self, scope: &Scope<'_>, pointer: &str, trace: &mut Vec<Check>) -> bool {
        match self {
            Condition::All { all } => {
                all.iter().enumerate().all(|(i, c)| c.evaluate(scope, &format!("{pointer}/all/{i}"), trace))
            }
            Condition::Any { any } => {
                any.iter().enumerate().any(|(i, c)| c.evaluate(scope, &format!("{pointer}/any/{i}"), trace))
            }
            Condition::Not { not } => !not.evaluate(scope, &format!("{pointer}/not"), trace),
            Condition::Compare(c) => {
                let (actual, result) = compare(c, scope);
                trace.push(Check {
                    pointer: pointer.to_string(),
                    field: c.field.clone(),
                    op: c.op,
                    expected: c.value.clone(),
                    actual,
                    result,
                });
                result
            }
        }
    }

    /// Visits every comparison with its pointer (for validation).
    pub fn walk<'a>(&'a self, pointer: &str, f: &mut dyn FnMut(&'a Comparison, &str)) {
        match self {
            Condition::All { all } => {
                for (i, c) in all.iter().enumerate() {
                    c.walk(&format!("{pointer}/all/{i}"), f)
                }
            }
            Condition::Any { any } => {
                for (i, c) in any.iter().enumerate() {
                    c.walk(&format!("{pointer}/any/{i}"), f)
                }
            }
            Condition::Not { not } => not.walk(&format!("{pointer}/not"), f),
            Condition::Compare(c) => f(c, pointer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{NewTicket, PriorityMatrix};
    use serde_json::json;

    fn ticket() -> Ticket {
        NewTicket {
            title: "Switch in B2 down".into(),
            requester: "ann".into(),
            category: Some("network".into()),
            ..Default::default()
        }
        .into_ticket("T-9".into(), &PriorityMatrix::default(), chrono::Utc::now())
    }

    fn eval(cond: Value, changes: &[FieldChange]) -> (bool, Vec<Check>) {
        let t = ticket();
        let vars = Map::new();
        let now = t.created_at + chrono::Duration::minutes(90);
        let scope =
            Scope { ticket: &t, changes, previous: None, vars: &vars, event: "ticket.updated", actor: "bob", now };
        let c: Condition = serde_json::from_value(cond).unwrap();
        let mut trace = Vec::new();
        (c.evaluate(&scope, "/conditions", &mut trace), trace)
    }

    #[test]
    fn nested_any_all_not_with_trace() {
        let (ok, trace) = eval(
            json!({"all": [
                {"field": "ticket.category", "op": "eq", "value": "network"},
                {"any": [
                    {"field": "ticket.priority", "op": "in", "value": ["P1", "P2"]},
                    {"not": {"field": "ticket.title", "op": "regex", "value": "(?i)printer"}}
                ]}
            ]}),
            &[],
        );
        assert!(ok);
        let pointers: Vec<&str> = trace.iter().map(|c| c.pointer.as_str()).collect();
        assert_eq!(pointers, ["/conditions/all/0", "/conditions/all/1/any/0", "/conditions/all/1/any/1/not"]);
        assert_eq!(trace[1].actual, json!("P3"));
        assert!(!trace[1].result);
    }

    #[test]
    fn changed_from_to_and_previous() {
        let changes = vec![FieldChange { field: "status".into(), from: json!("new"), to: json!("pending") }];
        assert!(eval(json!({"field": "ticket.status", "op": "changed"}), &changes).0);
        assert!(eval(json!({"field": "ticket.status", "op": "changed_from", "value": "new"}), &changes).0);
        assert!(!eval(json!({"field": "ticket.status", "op": "changed_to", "value": "new"}), &changes).0);
        assert!(eval(json!({"field": "previous.status", "op": "eq", "value": "new"}), &changes).0);
        assert!(!eval(json!({"field": "ticket.category", "op": "changed"}), &changes).0);
    }

    #[test]
    fn ordering_and_exists() {
        assert!(eval(json!({"field": "ticket.priority", "op": "gte", "value": "P2"}), &[]).0);
        assert!(eval(json!({"field": "ticket.assignee", "op": "exists", "value": false}), &[]).0);
        assert!(!eval(json!({"field": "ticket.custom.vip", "op": "exists"}), &[]).0);
        assert!(eval(json!({"field": "event.actor", "op": "eq", "value": "bob"}), &[]).0);
    }

    #[test]
    fn age_against_the_scope_clock() {
        // The ticket was updated 90 minutes before the scope's now.
        assert!(eval(json!({"field": "ticket.updated_at", "op": "older_than", "value": "1h"}), &[]).0);
        assert!(!eval(json!({"field": "ticket.updated_at", "op": "older_than", "value": "2h"}), &[]).0);
        assert!(eval(json!({"field": "ticket.created_at", "op": "newer_than", "value": "90m"}), &[]).0);
        assert!(!eval(json!({"field": "ticket.resolved_at", "op": "newer_than", "value": "1d"}), &[]).0);
        assert_eq!(parse_age("3d"), Some(chrono::Duration::days(3)));
        assert_eq!(parse_age("3w"), None);
        assert_eq!(parse_age(""), None);
    }
}
