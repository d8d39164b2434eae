//! Dry runs: a definition (a draft, or a published workflow) run against a ticket in
//! memory. Nothing is written: ticket changes are computed, plugin calls are answered
//! from recorded outputs, notifications are rendered but not sent, and the run stops at
//! the first `wait` or `approval` (reporting what it would wait for).

use super::{describe_failure, event_scope, Engine, Result};
use crate::run::{Event, EventKind, Run, RunStatus, TraceEntry};
use crate::store::RunFilter;
use crate::ticket::{fields, Ticket};
use crate::workflow::template::render_value;
use crate::workflow::{Action, Workflow};
use serde_json::{json, Map, Value};

/// A value that satisfies a (simple) JSON Schema: `const`, `default`, the first of
/// `examples` or `enum`, else the type's zero with every required property filled.
fn example(schema: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    for key in ["const", "default"] {
        if let Some(v) = schema.get(key) {
            return v.clone();
        }
    }
    for key in ["examples", "enum"] {
        if let Some(v) = schema.get(key).and_then(Value::as_array).and_then(|a| a.first()) {
            return v.clone();
        }
    }
    let ty = match schema.get("type") {
        Some(Value::Array(types)) => types.iter().find(|t| *t != "null").and_then(Value::as_str).unwrap_or("null"),
        Some(Value::String(t)) => t.as_str(),
        _ if schema.get("properties").is_some() => "object",
        _ => "object",
    };
    match ty {
        "object" => {
            let props = schema.get("properties").and_then(Value::as_object);
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = Map::new();
            for (name, sub) in props.into_iter().flatten() {
                if required.contains(&name.as_str()) {
                    out.insert(name.clone(), example(sub, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => match schema.get("minItems").and_then(Value::as_u64) {
            Some(n) if n > 0 => {
                Value::Array((0..n).map(|_| example(schema.get("items").unwrap_or(&Value::Null), depth + 1)).collect())
            }
            _ => json!([]),
        },
        "string" => json!(""),
        "integer" | "number" => schema.get("minimum").cloned().unwrap_or(json!(0)),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

impl Engine {
    /// A plugin action's output schema, if the plugin is installed and has the action.
    fn output_schema(&self, plugin: &str, action: &str) -> Result<Option<Value>> {
        Ok(self
            .store
            .plugin(plugin)?
            .and_then(|r| r.manifest.actions.into_iter().find(|a| a.name == action).map(|a| a.output_schema)))
    }

    /// The most recent output a real run of `workflow` recorded for `step`.
    fn recorded_output(&self, workflow: &str, step: &str) -> Result<Option<Value>> {
        let runs =
            self.store.runs(&RunFilter { workflow: Some(workflow.into()), limit: Some(200), ..Default::default() })?;
        Ok(runs.into_iter().find_map(|r| r.vars.get(step).cloned()))
    }

    /// Runs `def` against `ticket` as if `event_type` had happened, with no side effects.
    /// `outputs` answers plugin steps by step id (else the last recorded output, else `{}`).
    pub fn dry_run(
        &self,
        def: &Workflow,
        ticket: Ticket,
        event_type: EventKind,
        outputs: &Map<String, Value>,
    ) -> Result<Value> {
        let now = self.now();
        let event = Event {
            id: "dry-run".into(),
            ticket_id: ticket.id.clone(),
            kind: event_type,
            changes: Vec::new(),
            comment: None,
            actor: "dry-run".into(),
            causation: Vec::new(),
            at: now,
            sla: None,
            evaluations: Vec::new(),
        };
        let triggered = super::triggered(def, &event);
        let vars = Map::new();
        let mut checks = Vec::new();
        let matched = match &def.conditions {
            Some(c) => c.evaluate(&event_scope(&ticket, &event, &vars), "/conditions", &mut checks),
            None => true,
        };
        if !triggered || !matched {
            let reason = if triggered {
                checks.iter().find(|c| !c.result).map(describe_failure).unwrap_or_default()
            } else {
                format!("no trigger of the workflow fires on {}", event_type.as_str())
            };
            return Ok(json!({"matched": false, "reason": reason, "checks": checks}));
        }
        let original = ticket.clone();
        let mut ticket = ticket;
        let mut run = Run {
            id: "dry-run".into(),
            workflow_id: def.id.clone(),
            workflow_revision: 0,
            ticket_id: ticket.id.clone(),
            event_id: event.id.clone(),
            event_type: event_type.as_str().into(),
            actor: event.actor.clone(),
            changes: Vec::new(),
            previous: Map::new(),
            status: RunStatus::Running,
            waiting: None,
            cursor: def.steps.first().map(|s| s.id.clone()),
            vars: Map::new(),
            trace: Vec::new(),
            causation: Vec::new(),
            steps_done: 0,
            created_at: now,
            updated_at: now,
            finished_at: None,
            error: None,
        };
        let (mut comments, mut children, mut notifications, mut plugin_calls) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut status = "completed";
        let mut steps = 0;
        while let Some(id) = run.cursor.clone() {
            steps += 1;
            if steps > self.config.max_steps_per_run.min(1000) {
                status = "failed";
                run.trace.push(TraceEntry::new(now, "finished", "failed", "step limit reached"));
                break;
            }
            let Some(index) = def.step_index(&id) else {
                status = "failed";
                run.trace.push(TraceEntry::new(now, "finished", "failed", format!("step `{id}` does not exist")));
                break;
            };
            let step = &def.steps[index];
            let scope = super::step::scope(&run, &ticket, now);
            match &step.action {
                Action::Notify { url, payload, .. } => {
                    let body = match payload {
                        Some(p) => render_value(p, &scope, &run.id, &run.workflow_id),
                        None => json!({"ticket": ticket.id}),
                    };
                    notifications.push(json!({"step": step.id, "url": url, "body": body}));
                    run.trace.push(TraceEntry::step(
                        now,
                        &step.id,
                        "notify",
                        "not_sent",
                        format!("would POST to {url}"),
                    ));
                    run.vars.insert(step.id.clone(), json!({"status": 0, "dry_run": true}));
                    run.cursor = def.following(index);
                }
                Action::Plugin { plugin, action, input, .. } => {
                    let input = render_value(input, &scope, &run.id, &run.workflow_id);
                    let (output, source) = match outputs.get(&step.id) {
                        Some(v) => (v.clone(), "given"),
                        None => match self.recorded_output(&def.id, &step.id)? {
                            Some(v) => (v, "recorded"),
                            None => match self.output_schema(plugin, action)? {
                                Some(schema) => (example(&schema, 0), "stubbed from the output schema"),
                                None => (json!({}), "plugin not installed: {}"),
                            },
                        },
                    };
                    plugin_calls.push(json!({"step": step.id, "plugin": plugin, "action": action, "input": input, "output": output, "output_from": source}));
                    run.trace.push(TraceEntry::step(
                        now,
                        &step.id,
                        "plugin",
                        "stubbed",
                        format!("{plugin}.{action} not called; output {source}"),
                    ));
                    run.vars.insert(step.id.clone(), output);
                    run.cursor = def.following(index);
                }
                Action::Wait { .. } | Action::Approval { .. } => {
                    status = "waiting";
                    let what = if matches!(step.action, Action::Wait { .. }) { "wait" } else { "approval" };
                    run.trace.push(TraceEntry::step(
                        now,
                        &step.id,
                        what,
                        "waiting",
                        format!("the run would {what} here; the dry run stops"),
                    ));
                    break;
                }
                _ => {
                    let effect = self.execute(&run, def, index, &ticket)?;
                    let entry = effect.entry.clone();
                    run.trace.push(entry);
                    if let Some(msg) = &effect.failed {
                        status = "failed";
                        run.error = Some(format!("step `{}` failed: {msg}", step.id));
                        break;
                    }
                    if let Some(c) = &effect.comment {
                        comments.push(json!({"step": step.id, "body": c.body, "internal": c.internal}));
                    }
                    for child in &effect.children {
                        children.push(
                            json!({"step": step.id, "title": child.title, "kind": child.kind, "group": child.group}),
                        );
                    }
                    if let Some(after) = effect.ticket {
                        ticket = after;
                    }
                    if let Some(out) = effect.output {
                        run.vars.insert(step.id.clone(), out);
                    }
                    run.cursor = match effect.next {
                        Some(n) if n == crate::workflow::END => None,
                        Some(n) => Some(n),
                        None if matches!(step.action, Action::If { .. }) => None,
                        None => def.following(index),
                    };
                }
            }
        }
        Ok(json!({
            "matched": true,
            "checks": checks,
            "status": status,
            "error": run.error,
            "trace": run.trace,
            "changes": fields::diff(&original, &ticket),
            "comments": comments,
            "children": children,
            "notifications": notifications,
            "plugin_calls": plugin_calls,
            "vars": run.vars,
        }))
    }
}

impl Engine {
    /// A ticket as it was when it was logged: its current state with every recorded
    /// change undone, newest first (comments and later links dropped).
    pub fn ticket_at_creation(&self, id: &str) -> Result<Option<Ticket>> {
        let Some(ticket) = self.store.ticket(id)? else { return Ok(None) };
        let created = ticket.created_at;
        let mut value = serde_json::to_value(&ticket).unwrap_or(Value::Null);
        for entry in self.store.history(id)?.iter().rev() {
            for change in entry.changes.iter().rev() {
                let pointer = match change.field.split_once('.') {
                    Some(("custom", name)) => format!("/custom/{}", fields::escape(name)),
                    _ => format!("/{}", fields::escape(&change.field)),
                };
                if change.field == "comments" {
                    continue;
                }
                match value.pointer_mut(&pointer) {
                    Some(slot) => *slot = change.from.clone(),
                    None => {
                        if let (Some(("custom", name)), Some(map)) =
                            (change.field.split_once('.'), value["custom"].as_object_mut())
                        {
                            map.insert(name.to_string(), change.from.clone());
                        }
                    }
                }
            }
        }
        value["comments"] = json!([]);
        value["updated_at"] = json!(created);
        value["resolved_at"] = Value::Null;
        value["closed_at"] = Value::Null;
        if let Some(custom) = value["custom"].as_object_mut() {
            custom.retain(|_, v| !v.is_null());
        }
        Ok(serde_json::from_value(value).ok())
    }

    /// Runs `def` (dry) against every ticket logged in the last `days` days as it was
    /// when logged, and sets what it would have done beside what actually happened
    /// (the runs of the workflow with the same id on that ticket).
    pub fn replay(&self, def: &Workflow, days: u32) -> Result<Value> {
        let since = self.now() - chrono::Duration::days(days.into());
        let tickets: Vec<Ticket> =
            super::schedule::all_tickets(self)?.into_iter().filter(|t| t.created_at >= since).collect();
        let mut rows = Vec::new();
        let (mut differ, mut same) = (0, 0);
        for t in &tickets {
            let Some(initial) = self.ticket_at_creation(&t.id)? else { continue };
            let would = self.dry_run(def, initial, EventKind::Created, &Map::new())?;
            let runs = self.store.runs(&RunFilter {
                ticket: Some(t.id.clone()),
                workflow: Some(def.id.clone()),
                ..Default::default()
            })?;
            let happened: Vec<Value> = runs
                .iter()
                .map(|r| {
                    let changed: Vec<&str> =
                        r.trace.iter().flat_map(|e| e.changes.iter().map(|c| c.field.as_str())).collect();
                    json!({"run": r.id, "revision": r.workflow_revision, "status": r.status, "changed": changed})
                })
                .collect();
            let mut would_fields: Vec<String> = would["changes"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c["field"].as_str().map(String::from)).collect())
                .unwrap_or_default();
            would_fields.sort();
            let mut did_fields: Vec<String> = happened
                .iter()
                .flat_map(|r| r["changed"].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            did_fields.sort();
            did_fields.dedup();
            let ran = !runs.is_empty();
            let same_outcome = would["matched"].as_bool() == Some(ran) && would_fields == did_fields;
            if same_outcome {
                same += 1;
            } else {
                differ += 1;
            }
            rows.push(json!({
                "ticket": t.id,
                "title": t.title,
                "would": {"matched": would["matched"], "status": would["status"], "reason": would["reason"], "changed": would_fields},
                "happened": {"ran": ran, "runs": happened, "changed": did_fields},
                "differs": !same_outcome,
            }));
        }
        Ok(
            json!({"workflow": def.id, "since": since, "tickets": rows.len(), "same": same, "differ": differ, "rows": rows}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::example;
    use serde_json::json;

    #[test]
    fn examples_satisfy_simple_schemas() {
        let schema = json!({"type": "object", "required": ["title", "score", "tags", "kind"], "properties": {
            "title": {"type": "string"}, "score": {"type": "number", "minimum": 0.5},
            "tags": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "kind": {"enum": ["kb", "faq"]}, "optional": {"type": "string"}}});
        assert_eq!(example(&schema, 0), json!({"title": "", "score": 0.5, "tags": [""], "kind": "kb"}));
        assert_eq!(example(&json!({"type": ["null", "integer"]}), 0), json!(0));
    }
}
