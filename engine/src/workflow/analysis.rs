//! Static analysis of definitions: semantic diffs between revisions, and cycles between
//! workflows (one writes a field another's `ticket.updated` trigger watches, and so on
//! back to the first) found at publish time, before the loop guard has to stop them.

use super::{Action, Trigger, Workflow};
use crate::ticket::{FieldChange, Ticket};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// One difference between two definitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// JSON pointer of the member.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub op: &'static str,
    /// The value before (absent when added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// The value after (absent when removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The differences from `a` to `b`, by path. Steps are compared by their `id` (a step
/// moved within the list is not reported as a change of every step after it).
pub fn diff(a: &Value, b: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", a, b, &mut out);
    out
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{}", escape(k));
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => walk(&p, va, vb, out),
                    (Some(va), None) => out.push(Change { path: p, op: "removed", from: Some(va.clone()), to: None }),
                    (None, Some(vb)) => out.push(Change { path: p, op: "added", from: None, to: Some(vb.clone()) }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if path == "/steps" => {
            // Match steps by id; the path names the step by its index in `b` (or `a`).
            let id = |v: &Value| v.get("id").and_then(Value::as_str).map(String::from);
            let before: BTreeMap<String, (usize, &Value)> =
                x.iter().enumerate().filter_map(|(i, v)| id(v).map(|k| (k, (i, v)))).collect();
            let after: BTreeMap<String, (usize, &Value)> =
                y.iter().enumerate().filter_map(|(i, v)| id(v).map(|k| (k, (i, v)))).collect();
            for (k, (i, vb)) in &after {
                match before.get(k) {
                    Some((_, va)) => walk(&format!("{path}/{i}"), va, vb, out),
                    None => out.push(Change {
                        path: format!("{path}/{i}"),
                        op: "added",
                        from: None,
                        to: Some((*vb).clone()),
                    }),
                }
            }
            for (k, (i, va)) in &before {
                if !after.contains_key(k) {
                    out.push(Change {
                        path: format!("{path}/{i}"),
                        op: "removed",
                        from: Some((*va).clone()),
                        to: None,
                    });
                }
            }
            let order_a: Vec<&String> = before.keys().collect();
            let order_b: Vec<&String> = after.keys().collect();
            let seq = |v: &Vec<Value>| v.iter().filter_map(id).collect::<Vec<_>>();
            if order_a == order_b && seq(x) != seq(y) {
                out.push(Change { path: path.into(), op: "changed", from: Some(json_ids(x)), to: Some(json_ids(y)) });
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}/{i}");
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => walk(&p, va, vb, out),
                    (Some(va), None) => out.push(Change { path: p, op: "removed", from: Some(va.clone()), to: None }),
                    (None, Some(vb)) => out.push(Change { path: p, op: "added", from: None, to: Some(vb.clone()) }),
                    (None, None) => {}
                }
            }
        }
        _ if a != b => {
            out.push(Change { path: path.into(), op: "changed", from: Some(a.clone()), to: Some(b.clone()) })
        }
        _ => {}
    }
}

fn json_ids(steps: &[Value]) -> Value {
    Value::Array(steps.iter().filter_map(|s| s.get("id").cloned()).collect())
}

/// What events a workflow's steps cause: fields written, and whether it comments.
fn effects(wf: &Workflow) -> (Vec<String>, bool) {
    let comments = wf.steps.iter().any(|s| {
        matches!(s.action, Action::Comment { .. } | Action::Resolve { resolution: Some(_) } | Action::Approval { .. })
    });
    (wf.written_fields(), comments)
}

/// Whether `b`'s triggers fire on what `a` does.
fn feeds(a: &Workflow, b: &Workflow) -> bool {
    let (written, comments) = effects(a);
    b.triggers.iter().any(|t| match t {
        Trigger::TicketUpdated { changed } if changed.is_empty() => !written.is_empty(),
        Trigger::TicketUpdated { changed } => changed.iter().any(|c| {
            written.iter().any(|w| {
                w == &c.field
                    || c.field.strip_prefix("custom.").is_some_and(|f| w == "custom" || w == &format!("custom.{f}"))
            })
        }),
        Trigger::CommentAdded { internal } => comments && internal.is_none_or(|i| i),
        _ => false,
    })
}

/// The ticket fields a definition reads as `previous.<field>` (in conditions or
/// templates).
fn previous_fields(wf: &Workflow) -> Vec<String> {
    let text = serde_json::to_string(wf).unwrap_or_default();
    let mut out: Vec<String> = text
        .match_indices("previous.")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len());
            rest[..end].trim_end_matches('.').to_string()
        })
        .filter(|f| !f.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What a run keeps as `previous.<field>` for the fields its definition reads that the
/// triggering event did not change: their values as the event left them (the changed ones
/// are read from the event's changes).
pub fn previous_values(wf: &Workflow, ticket: &Ticket, changes: &[FieldChange]) -> Map<String, Value> {
    previous_fields(wf)
        .into_iter()
        .filter(|f| !changes.iter().any(|c| &c.field == f))
        .filter_map(|f| Some((f.clone(), crate::ticket::fields::get(ticket, &f)?)))
        .collect()
}

/// Cycles through `focus` among `workflows` (each as the list of ids around it, starting
/// and ending at `focus`). Enabled workflows only; one cycle per first hop.
pub fn cycles(workflows: &[&Workflow], focus: &str) -> Vec<Vec<String>> {
    let by_id: BTreeMap<&str, &Workflow> =
        workflows.iter().filter(|w| w.enabled).map(|w| (w.id.as_str(), *w)).collect();
    let Some(start) = by_id.get(focus) else { return Vec::new() };
    let mut found = Vec::new();
    for (next_id, next) in &by_id {
        if !feeds(start, next) {
            continue;
        }
        // Breadth-first from `next` back to `focus`.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([*next_id]);
        let mut seen = BTreeSet::from([*next_id]);
        let mut closed = false;
        while let Some(cur) = queue.pop_front() {
            if cur == focus {
                closed = true;
                break;
            }
            for (id, wf) in &by_id {
                if !seen.contains(id) && feeds(by_id[cur], wf) {
                    seen.insert(id);
                    parent.insert(id, cur);
                    queue.push_back(id);
                }
            }
        }
        if closed {
            // focus <- ... <- next, reversed, after focus.
            let mut chain = vec![focus];
            let mut cur = focus;
            while cur != *next_id {
                cur = parent[cur];
                chain.push(cur);
            }
            chain.reverse();
            let mut path = vec![focus.to_string()];
            path.extend(chain.into_iter().map(String::from));
            if !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wf(v: Value) -> Workflow {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn diff_reports_paths_and_matches_steps_by_id() {
        let a =
            json!({"id": "w", "steps": [{"id": "a", "type": "comment", "body": "x"}, {"id": "b", "type": "close"}]});
        let b = json!({"id": "w", "name": "new", "steps": [{"id": "a", "type": "comment", "body": "y"}, {"id": "c", "type": "close"}]});
        let changes = diff(&a, &b);
        let summary: Vec<(String, &str)> = changes.iter().map(|c| (c.path.clone(), c.op)).collect();
        assert_eq!(
            summary,
            [
                ("/name".into(), "added"),
                ("/steps/0/body".into(), "changed"),
                ("/steps/1".into(), "added"),
                ("/steps/1".into(), "removed")
            ]
        );
    }

    #[test]
    fn finds_a_cycle_through_watched_fields_and_none_without() {
        let a = wf(
            json!({"id": "a", "name": "a", "triggers": [{"on": "ticket.updated", "changed": [{"field": "category"}]}],
            "steps": [{"id": "s", "type": "set", "fields": {"custom.flag": true}}]}),
        );
        let b = wf(
            json!({"id": "b", "name": "b", "triggers": [{"on": "ticket.updated", "changed": [{"field": "custom.flag"}]}],
            "steps": [{"id": "s", "type": "set", "fields": {"category": "network"}}]}),
        );
        let c = wf(json!({"id": "c", "name": "c", "triggers": [{"on": "ticket.created"}],
            "steps": [{"id": "s", "type": "set", "fields": {"category": "x"}}]}));
        assert_eq!(cycles(&[&a, &b, &c], "a"), vec![vec!["a".to_string(), "b".into(), "a".into()]]);
        assert!(cycles(&[&a, &c], "a").is_empty());
        let selfish = wf(json!({"id": "s", "name": "s", "triggers": [{"on": "ticket.updated"}],
            "steps": [{"id": "x", "type": "set", "fields": {"tags": ["t"]}}]}));
        assert_eq!(cycles(&[&selfish], "s"), vec![vec!["s".to_string(), "s".into()]]);
    }
}
