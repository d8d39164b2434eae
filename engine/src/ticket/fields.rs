//! Named access to ticket fields.
//!
//! The HTTP API's PATCH, workflow `set` steps, conditions and templates all address
//! fields by name (`status`, `custom.vip`). This module is the single table of those
//! names, so a field added here is readable and writable everywhere at once.

use super::{Kind, Level, Priority, PriorityMatrix, Status, Ticket};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};

/// One field's change, as recorded in history and in events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Field name, e.g. `status` or `custom.vip`.
    pub field: String,
    /// Value before (null when absent).
    pub from: Value,
    /// Value after (null when removed).
    pub to: Value,
}

/// Why a field could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    /// No such field.
    #[error("unknown field `{0}`; known fields: {known}", known = WRITABLE.join(", "))]
    Unknown(String),
    /// The field exists but only the engine sets it.
    #[error("field `{0}` is read-only")]
    ReadOnly(String),
    /// The value has the wrong type or is not one of the allowed values.
    #[error("field `{field}` expects {expected}")]
    WrongType {
        /// The field.
        field: String,
        /// What it accepts.
        expected: String,
    },
    /// The status lifecycle does not allow this move.
    #[error("status cannot move from `{from}` to `{to}`; allowed: {allowed}")]
    Transition {
        /// Current status.
        from: Status,
        /// Requested status.
        to: Status,
        /// Allowed targets.
        allowed: String,
    },
}

/// Fields that can be written through the API and `set` steps (plus `custom.<name>`).
pub const WRITABLE: &[&str] = &[
    "kind",
    "title",
    "description",
    "requester",
    "impact",
    "urgency",
    "priority",
    "status",
    "category",
    "group",
    "assignee",
    "tags",
    "channel",
    "external_id",
];

/// Fields that can be read but only the engine writes.
pub const READ_ONLY: &[&str] =
    &["id", "created_at", "updated_at", "resolved_at", "closed_at", "comment_count", "links", "open_children"];

/// Whether `name` names a readable field (`custom.*` always does).
pub fn is_known(name: &str) -> bool {
    name.starts_with("custom.") || WRITABLE.contains(&name) || READ_ONLY.contains(&name)
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn time(t: &Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(t.to_rfc3339())).unwrap_or(Value::Null)
}

/// Reads a field by name; `None` for unknown names, `Some(Null)` for unset fields.
pub fn get(t: &Ticket, name: &str) -> Option<Value> {
    if let Some(key) = name.strip_prefix("custom.") {
        return Some(t.custom.get(key).cloned().unwrap_or(Value::Null));
    }
    Some(match name {
        "id" => Value::String(t.id.clone()),
        "kind" => to_value(&t.kind),
        "title" => Value::String(t.title.clone()),
        "description" => Value::String(t.description.clone()),
        "requester" => Value::String(t.requester.clone()),
        "impact" => to_value(&t.impact),
        "urgency" => to_value(&t.urgency),
        "priority" => to_value(&t.priority),
        "status" => to_value(&t.status),
        "category" => to_value(&t.category),
        "group" => to_value(&t.group),
        "assignee" => to_value(&t.assignee),
        "tags" => to_value(&t.tags),
        "channel" => to_value(&t.channel),
        "external_id" => to_value(&t.external_id),
        "created_at" => Value::String(t.created_at.to_rfc3339()),
        "updated_at" => Value::String(t.updated_at.to_rfc3339()),
        "resolved_at" => time(&t.resolved_at),
        "closed_at" => time(&t.closed_at),
        "comment_count" => Value::from(t.comments.len()),
        "links" => to_value(&t.links),
        "open_children" => Value::from(t.open_children),
        _ => return None,
    })
}

fn parse<T: DeserializeOwned>(field: &str, value: Value, expected: &str) -> Result<T, FieldError> {
    serde_json::from_value(value)
        .map_err(|_| FieldError::WrongType { field: field.to_string(), expected: expected.to_string() })
}

fn text(field: &str, value: Value) -> Result<String, FieldError> {
    parse(field, value, "a string")
}

fn opt_text(field: &str, value: Value) -> Result<Option<String>, FieldError> {
    parse(field, value, "a string or null")
}

/// Writes one field, keeping the ticket's invariants: priority follows impact and
/// urgency, status moves only along the lifecycle and stamps resolved/closed times,
/// and assigning a new ticket marks it assigned.
pub fn set(
    t: &mut Ticket,
    name: &str,
    value: Value,
    matrix: &PriorityMatrix,
    now: DateTime<Utc>,
) -> Result<(), FieldError> {
    if let Some(key) = name.strip_prefix("custom.") {
        if key.is_empty() {
            return Err(FieldError::Unknown(name.to_string()));
        }
        if value.is_null() {
            t.custom.remove(key);
        } else {
            t.custom.insert(key.to_string(), value);
        }
        t.updated_at = now;
        return Ok(());
    }
    match name {
        "kind" => t.kind = parse::<Kind>(name, value, "one of incident, service_request, problem, task")?,
        "title" => {
            let title = text(name, value)?;
            if title.trim().is_empty() || title.chars().count() > super::MAX_TITLE {
                return Err(FieldError::WrongType {
                    field: name.into(),
                    expected: format!("a non-empty string of at most {} characters", super::MAX_TITLE),
                });
            }
            t.title = title;
        }
        "description" => t.description = text(name, value)?,
        "requester" => t.requester = text(name, value)?,
        "impact" | "urgency" => {
            let level = parse::<Level>(name, value, "one of high, medium, low")?;
            if name == "impact" {
                t.impact = level;
            } else {
                t.urgency = level;
            }
            t.priority = matrix.priority(t.impact, t.urgency);
        }
        "priority" => t.priority = parse::<Priority>(name, value, "one of P1, P2, P3, P4")?,
        "status" => {
            let to =
                parse::<Status>(name, value, "one of new, assigned, in_progress, pending, resolved, closed, reopened")?;
            if !t.status.can_move_to(to) {
                let allowed: Vec<&str> = t.status.next().iter().map(|s| s.as_str()).collect();
                return Err(FieldError::Transition {
                    from: t.status,
                    to,
                    allowed: if allowed.is_empty() { "none".into() } else { allowed.join(", ") },
                });
            }
            if to != t.status {
                match to {
                    Status::Resolved => t.resolved_at = Some(now),
                    Status::Closed => t.closed_at = Some(now),
                    Status::Reopened => t.resolved_at = None,
                    _ => {}
                }
            }
            t.status = to;
        }
        "category" => t.category = opt_text(name, value)?,
        "group" => t.group = opt_text(name, value)?,
        "assignee" => {
            t.assignee = opt_text(name, value)?;
            if t.assignee.is_some() && t.status == Status::New {
                t.status = Status::Assigned;
            }
        }
        "tags" => t.tags = parse(name, value, "an array of strings")?,
        "channel" => t.channel = opt_text(name, value)?,
        "external_id" => t.external_id = opt_text(name, value)?,
        _ if READ_ONLY.contains(&name) => return Err(FieldError::ReadOnly(name.to_string())),
        _ => return Err(FieldError::Unknown(name.to_string())),
    }
    t.updated_at = now;
    Ok(())
}

/// The fields that differ between two versions of a ticket (timestamps excluded).
pub fn diff(old: &Ticket, new: &Ticket) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    for name in WRITABLE {
        let (from, to) = (get(old, name), get(new, name));
        if from != to {
            changes.push(FieldChange {
                field: (*name).to_string(),
                from: from.unwrap_or(Value::Null),
                to: to.unwrap_or(Value::Null),
            });
        }
    }
    let mut keys: Vec<&String> = old.custom.keys().chain(new.custom.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (from, to) = (old.custom.get(key), new.custom.get(key));
        if from != to {
            changes.push(FieldChange {
                field: format!("custom.{key}"),
                from: from.cloned().unwrap_or(Value::Null),
                to: to.cloned().unwrap_or(Value::Null),
            });
        }
    }
    changes
}

/// Applies a JSON object of `field: value` pairs to a copy of `t`. Either every field
/// applies and the new ticket is returned, or nothing does and every error is returned
/// with the JSON pointer of the offending member.
pub fn patch(
    t: &Ticket,
    body: &Map<String, Value>,
    matrix: &PriorityMatrix,
    now: DateTime<Utc>,
) -> Result<Ticket, Vec<(String, FieldError)>> {
    let mut next = t.clone();
    let mut errors = Vec::new();
    // `custom` may be given as an object and is merged key by key.
    for (name, value) in body {
        if name == "custom" {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        if let Err(e) = set(&mut next, &format!("custom.{k}"), v.clone(), matrix, now) {
                            errors.push((format!("/custom/{}", escape(k)), e));
                        }
                    }
                }
                _ => errors.push((
                    "/custom".into(),
                    FieldError::WrongType { field: "custom".into(), expected: "an object".into() },
                )),
            }
            continue;
        }
        // Apply explicit priority last so it wins over impact/urgency in the same patch.
        if name == "priority" {
            continue;
        }
        if let Err(e) = set(&mut next, name, value.clone(), matrix, now) {
            errors.push((format!("/{}", escape(name)), e));
        }
    }
    if let Some(p) = body.get("priority") {
        if let Err(e) = set(&mut next, "priority", p.clone(), matrix, now) {
            errors.push(("/priority".into(), e));
        }
    }
    if errors.is_empty() {
        Ok(next)
    } else {
        Err(errors)
    }
}

pub use crate::json::escape;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::NewTicket;
    use serde_json::json;

    fn ticket() -> Ticket {
        NewTicket { title: "VPN down".into(), requester: "ann".into(), ..Default::default() }.into_ticket(
            "T-1".into(),
            &PriorityMatrix::default(),
            Utc::now(),
        )
    }

    #[test]
    fn impact_change_recomputes_priority() {
        let mut t = ticket();
        assert_eq!(t.priority, Priority::P3);
        set(&mut t, "impact", json!("high"), &PriorityMatrix::default(), Utc::now()).unwrap();
        assert_eq!(t.priority, Priority::P2);
    }

    #[test]
    fn patch_is_all_or_nothing_and_names_each_bad_field() {
        let t = ticket();
        let body = json!({"category": "network", "status": "reopened", "bogus": 1, "tags": "x"});
        let errs = patch(&t, body.as_object().unwrap(), &PriorityMatrix::default(), Utc::now()).unwrap_err();
        let mut pointers: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
        pointers.sort();
        assert_eq!(pointers, vec!["/bogus", "/status", "/tags"]);
    }

    #[test]
    fn diff_lists_custom_and_derived_fields() {
        let old = ticket();
        let body = json!({"urgency": "high", "custom": {"vip": true}});
        let new = patch(&old, body.as_object().unwrap(), &PriorityMatrix::default(), Utc::now()).unwrap();
        let fields: Vec<String> = diff(&old, &new).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, vec!["urgency", "priority", "custom.vip"]);
    }

    #[test]
    fn assigning_a_new_ticket_marks_it_assigned() {
        let mut t = ticket();
        set(&mut t, "assignee", json!("bob"), &PriorityMatrix::default(), Utc::now()).unwrap();
        assert_eq!(t.status, Status::Assigned);
    }
}
