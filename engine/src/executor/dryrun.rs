//! Dry runs: a definition (a draft, or a published workflow) run against a ticket in
//! memory. Nothing is written: ticket changes are computed, plugin calls are answered
//! from recorded outputs, notifications are rendered but not sent, and the run stops at
//! the first `wait` or `approval` (reporting what it would wait for).

use super::steps::Ids;
use super::{describe_failure, event_scope, Engine, Result};
use crate::run::{machine, Event, EventKind, Run, RunStatus, TraceEntry};
use crate::store::RunFilter;
use crate::ticket::FieldChange;
use crate::ticket::{fields, Ticket};
use crate::workflow::condition::Check;
use crate::workflow::template::render_value;
use crate::workflow::{Action, Workflow};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// What a definition would do to a ticket (`POST /workflows/dry-run`, the console's
/// editor): whether it matches, and when it does, how its run would go.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// A trigger fired and the conditions held.
    pub matched: bool,
    /// Why it did not match (no trigger fires on the event, or the first failing comparison).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The conditions' comparisons, with the values seen.
    pub checks: Vec<Check>,
    /// The run, when it matched.
    #[serde(flatten)]
    pub run: Option<WouldRun>,
}

/// How a dry run went: its trace and what it would have changed, said and sent. It stops
/// at the first wait or approval (`status` `waiting`).
#[derive(Debug, Clone, Serialize)]
pub struct WouldRun {
    /// `completed`, `failed` or `waiting`.
    pub status: &'static str,
    pub error: Option<String>,
    pub trace: Vec<TraceEntry>,
    /// The ticket's fields, before and after.
    pub changes: Vec<FieldChange>,
    pub comments: Vec<WouldComment>,
    pub children: Vec<WouldChild>,
    pub notifications: Vec<WouldNotify>,
    pub plugin_calls: Vec<WouldCall>,
    /// The run's variables at the end (step outputs by step id).
    pub vars: Map<String, Value>,
}

/// A comment a dry run would add.
#[derive(Debug, Clone, Serialize)]
pub struct WouldComment {
    pub step: String,
    pub body: String,
    pub internal: bool,
}

/// A child ticket a dry run would log.
#[derive(Debug, Clone, Serialize)]
pub struct WouldChild {
    pub step: String,
    pub title: String,
    pub kind: crate::ticket::Kind,
    pub group: Option<String>,
}

/// A webhook a dry run would post (not sent).
#[derive(Debug, Clone, Serialize)]
pub struct WouldNotify {
    pub step: String,
    pub url: String,
    pub body: Value,
}

/// A plugin call a dry run stubbed (not made), with the output it used and where that
/// came from (given, recorded, stubbed from the output schema).
#[derive(Debug, Clone, Serialize)]
pub struct WouldCall {
    pub step: String,
    pub plugin: String,
    pub action: String,
    pub input: Value,
    pub output: Value,
    pub output_from: &'static str,
}

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
    async fn output_schema(&self, plugin: &str, action: &str) -> Result<Option<Value>> {
        Ok(self
            .store
            .plugin(plugin)
            .await?
            .and_then(|r| r.manifest.actions.into_iter().find(|a| a.name == action).map(|a| a.output_schema)))
    }

    /// The most recent output a real run of `workflow` recorded for `step`.
    async fn recorded_output(&self, workflow: &str, step: &str) -> Result<Option<Value>> {
        let runs = self
            .store
            .runs(&RunFilter { workflow: Some(workflow.into()), limit: Some(200), ..Default::default() })
            .await?;
        Ok(runs.into_iter().find_map(|r| r.vars.get(step).cloned()))
    }

    /// Runs `def` against `ticket` as if `event_type` had happened, with no side effects.
    /// `outputs` answers plugin steps by step id (else the last recorded output, else `{}`).
    pub async fn dry_run(
        &self,
        def: &Workflow,
        ticket: Ticket,
        event_type: EventKind,
        outputs: &Map<String, Value>,
    ) -> Result<DryRun> {
        let event = Event {
            id: "dry-run".into(),
            ticket_id: ticket.id.clone(),
            kind: event_type,
            changes: Vec::new(),
            comment: None,
            actor: "dry-run".into(),
            causation: Vec::new(),
            at: self.now(),
            sla: None,
            evaluations: Vec::new(),
        };
        self.dry_run_event(def, ticket, &event, Map::new(), outputs).await
    }

    /// [`Engine::dry_run`] for a given event (a recorded one, in replay): its changes,
    /// comment and actor are what triggers, conditions and `previous.*` see.
    pub async fn dry_run_event(
        &self,
        def: &Workflow,
        ticket: Ticket,
        event: &Event,
        mut vars: Map<String, Value>,
        outputs: &Map<String, Value>,
    ) -> Result<DryRun> {
        let now = self.now();
        let event_type = event.kind;
        let triggered = super::triggered(def, event);
        if let Some(signal) = &event.sla {
            vars.insert("sla".into(), serde_json::to_value(signal).unwrap_or(Value::Null));
        }
        let mut checks = Vec::new();
        let matched = match &def.conditions {
            Some(c) => c.evaluate(&event_scope(&ticket, event, &vars), "/conditions", &mut checks),
            None => true,
        };
        if !triggered || !matched {
            let reason = if triggered {
                checks.iter().find(|c| !c.result).map(describe_failure).unwrap_or_default()
            } else {
                format!("no trigger of the workflow fires on {}", event_type.as_str())
            };
            return Ok(DryRun { matched: false, reason: Some(reason), checks, run: None });
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
            changes: event.changes.clone(),
            previous: crate::workflow::analysis::previous_values(def, &ticket, &event.changes),
            status: RunStatus::Running,
            waiting: None,
            cursor: def.steps.first().map(|s| s.id.clone()),
            vars,
            trace: Vec::new(),
            causation: Vec::new(),
            steps_done: 0,
            created_at: now,
            updated_at: now,
            finished_at: None,
            error: None,
            saved: Default::default(),
        };
        let (mut comments, mut children, mut notifications, mut plugin_calls) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut status = "completed";
        let mut steps = 0;
        // The same machine as a real run (`run::machine`): what a step records, where it
        // goes, how the run ends. Only the outside world is stubbed: notify and plugin
        // steps record what they would send, and a wait or an approval stops the dry run.
        while let Some(id) = run.cursor.clone() {
            steps += 1;
            if steps > self.config.max_steps_per_run.min(1000) {
                status = "failed";
                machine::fail(&mut run, "step limit reached".into(), now);
                break;
            }
            let Some(index) = def.step_index(&id) else {
                status = "failed";
                machine::fail(&mut run, format!("step `{id}` does not exist"), now);
                break;
            };
            let step = &def.steps[index];
            let scope = super::steps::scope(&run, &ticket, now);
            let mut effect = super::steps::Effect::new(step, now);
            match &step.action {
                Action::Notify { url, payload, .. } => {
                    let body = match payload {
                        Some(p) => render_value(p, &scope, &run.id, &run.workflow_id),
                        None => json!({"ticket": ticket.id}),
                    };
                    notifications.push(WouldNotify { step: step.id.clone(), url: url.clone(), body });
                    effect.entry.outcome = "not_sent".into();
                    effect.entry.message = format!("would POST to {url}");
                    effect.output = Some(json!({"status": 0, "dry_run": true}));
                }
                Action::Plugin { plugin, action, input, .. } => {
                    let input = render_value(input, &scope, &run.id, &run.workflow_id);
                    let (output, source) = match outputs.get(&step.id) {
                        Some(v) => (v.clone(), "given"),
                        None => match self.recorded_output(&def.id, &step.id).await? {
                            Some(v) => (v, "recorded"),
                            None => match self.output_schema(plugin, action).await? {
                                Some(schema) => (example(&schema, 0), "stubbed from the output schema"),
                                None => (json!({}), "plugin not installed: {}"),
                            },
                        },
                    };
                    plugin_calls.push(WouldCall {
                        step: step.id.clone(),
                        plugin: plugin.clone(),
                        action: action.clone(),
                        input,
                        output: output.clone(),
                        output_from: source,
                    });
                    effect.entry.outcome = "stubbed".into();
                    effect.entry.message = format!("{plugin}.{action} not called; output {source}");
                    effect.output = Some(output);
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
                    // The same plan as a real step, over a context that allocates no ids.
                    let context = self.load(def, index, &ticket, None, Ids::Placeholder).await?;
                    effect = super::steps::plan(&self.config, now, &run, def, index, &ticket, context);
                    if effect.failed.is_none() {
                        if let Some(c) = &effect.comment {
                            comments.push(WouldComment {
                                step: step.id.clone(),
                                body: c.body.clone(),
                                internal: c.internal,
                            });
                        }
                        for child in &effect.children {
                            children.push(WouldChild {
                                step: step.id.clone(),
                                title: child.title.clone(),
                                kind: child.kind,
                                group: child.group.clone(),
                            });
                        }
                        if let Some(after) = effect.ticket.take() {
                            ticket = after;
                        }
                    }
                }
            }
            if let machine::Outcome::Failed(_) =
                machine::complete_step(&mut run, effect.end(step), def.following(index), now)
            {
                status = "failed";
            }
        }
        Ok(DryRun {
            matched: true,
            reason: None,
            checks,
            run: Some(WouldRun {
                status,
                error: run.error,
                trace: run.trace,
                changes: fields::diff(&original, &ticket),
                comments,
                children,
                notifications,
                plugin_calls,
                vars: run.vars,
            }),
        })
    }
}

impl Engine {
    /// A ticket as it was when it was logged: its current state with every recorded
    /// change undone, newest first (comments and later links dropped).
    pub async fn ticket_at_creation(&self, id: &str) -> Result<Option<Ticket>> {
        self.ticket_as_of(id, 0).await
    }

    /// A ticket as event number `event` (`E-<n>`; 0: its creation) left it: every
    /// change of a later event undone, the comments they added dropped.
    pub async fn ticket_as_of(&self, id: &str, event: u64) -> Result<Option<Ticket>> {
        let Some(ticket) = self.store.ticket(id).await? else { return Ok(None) };
        let history = self.store.history(id).await?;
        // Event 0 undoes everything (the creation entry itself changes nothing).
        let undo: Vec<&crate::run::HistoryEntry> =
            history.iter().filter(|h| event == 0 || event_number(&h.event_id) > event).collect();
        let mut value = serde_json::to_value(&ticket).unwrap_or(Value::Null);
        let mut dropped_comments = std::collections::BTreeSet::new();
        for entry in undo.iter().rev() {
            for change in entry.changes.iter().rev() {
                if change.field == "comments" {
                    if let Some(n) = change.to["id"].as_u64() {
                        dropped_comments.insert(n);
                    }
                    continue;
                }
                let pointer = match change.field.split_once('.') {
                    Some(("custom", name)) => format!("/custom/{}", fields::escape(name)),
                    _ => format!("/{}", fields::escape(&change.field)),
                };
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
        if let Some(comments) = value["comments"].as_array_mut() {
            comments.retain(|c| c["id"].as_u64().is_none_or(|n| !dropped_comments.contains(&n)));
        }
        if event == 0 {
            value["updated_at"] = json!(ticket.created_at);
            value["resolved_at"] = Value::Null;
            value["closed_at"] = Value::Null;
        }
        if let Some(custom) = value["custom"].as_object_mut() {
            custom.retain(|_, v| !v.is_null());
        }
        Ok(serde_json::from_value(value).ok())
    }

    /// What a real run did up to its first wait or approval (where a dry run stops).
    async fn effects_of_run(&self, r: &Run) -> Result<Effects> {
        let mut fx = Effects { status: format!("{:?}", r.status).to_lowercase(), ..Default::default() };
        let mut until = r.finished_at.unwrap_or(r.updated_at);
        // Step entries only: the trigger entry carries the event's own changes.
        for e in r.trace.iter().filter(|e| e.kind == "step") {
            if matches!(e.step_type.as_deref(), Some("wait" | "approval")) {
                fx.status = "waiting".into();
                until = e.at;
                break;
            }
            for c in &e.changes {
                fx.changes.insert(c.field.clone(), c.to.clone());
            }
            match e.step_type.as_deref() {
                Some("notify") => fx.notifications.push(e.detail["url"].as_str().unwrap_or_default().to_string()),
                Some("plugin") => fx.plugin_calls.push(format!(
                    "{}.{}",
                    e.detail["plugin"].as_str().unwrap_or_default(),
                    e.detail["action"].as_str().unwrap_or_default()
                )),
                Some("create_child") => {
                    let child = e.step.as_ref().and_then(|s| r.vars.get(s)).and_then(|v| v["ticket"].as_str());
                    if let Some(c) = child {
                        if let Some(child) = self.store.ticket(c).await.ok().flatten() {
                            fx.children.push(child.title);
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(t) = self.store.ticket(&r.ticket_id).await? {
            let author = format!("workflow:{}", r.workflow_id);
            fx.comments = t
                .comments
                .iter()
                .filter(|c| c.author == author && c.at >= r.created_at && c.at <= until)
                .map(|c| (c.internal, c.body.clone()))
                .collect();
        }
        Ok(fx)
    }

    /// Runs `def` (dry) against every event of the last `days` days that one of its
    /// triggers fires on (tickets logged, updated, commented, SLA warnings and breaches),
    /// each on the ticket as that event left it, and sets what it would have done beside
    /// what the workflow with the same id did for that event: field values, comments,
    /// notifications, plugin calls, child tickets and how the run ended, up to the first
    /// wait or approval (where a dry run stops).
    pub async fn replay(&self, def: &Workflow, days: u32) -> Result<Value> {
        let since = self.now() - chrono::Duration::days(days.into());
        let tickets: Vec<Ticket> =
            super::schedule::all_tickets(self).await?.into_iter().filter(|t| t.updated_at >= since).collect();
        let mut rows = Vec::new();
        let (mut differ, mut same) = (0, 0);
        let mut seen = std::collections::BTreeSet::new();
        for t in &tickets {
            let runs = self
                .store
                .runs(&RunFilter {
                    ticket: Some(t.id.clone()),
                    workflow: Some(def.id.clone()),
                    limit: Some(1000),
                    ..Default::default()
                })
                .await?;
            for event in self.store.ticket_events(&t.id).await? {
                if event.at < since || event.kind == EventKind::Manual || !super::triggered(def, &event) {
                    continue;
                }
                let number = if event.kind == EventKind::Created { 0 } else { event_number(&event.id) };
                let Some(then) = self.ticket_as_of(&t.id, number).await? else { continue };
                let would = self.dry_run_event(def, then, &event, Map::new(), &Map::new()).await?;
                let would_fx = Effects::of_dry_run(&would);
                let happened: Vec<&Run> = runs.iter().filter(|r| r.event_id == event.id).collect();
                let mut did = Effects::default();
                for r in &happened {
                    did.absorb(self.effects_of_run(r).await?);
                }
                let ran = !happened.is_empty();
                let differences = if would.matched == ran {
                    if ran {
                        would_fx.differences(&did)
                    } else {
                        Vec::new()
                    }
                } else {
                    vec![json!({"what": "matched", "would": would.matched, "happened": ran})]
                };
                if differences.is_empty() {
                    same += 1;
                } else {
                    differ += 1;
                }
                seen.insert(t.id.clone());
                rows.push(json!({
                    "ticket": t.id,
                    "title": t.title,
                    "event": event.id,
                    "trigger": event.kind.as_str(),
                    "would": {"matched": would.matched, "status": would.run.as_ref().map(|r| r.status), "reason": would.reason,
                        "changed": would_fx.changes.keys().collect::<Vec<_>>(), "effects": would_fx},
                    "happened": {"ran": ran, "runs": happened.iter().map(|r| json!({"run": r.id, "revision": r.workflow_revision, "status": r.status})).collect::<Vec<_>>(),
                        "changed": did.changes.keys().collect::<Vec<_>>(), "effects": did},
                    "differs": !differences.is_empty(),
                    "differences": differences,
                }));
            }
        }
        Ok(json!({"workflow": def.id, "since": since, "tickets": seen.len(), "events": rows.len(),
            "same": same, "differ": differ, "rows": rows}))
    }
}

/// The number of an event id (`E-12` -> 12).
fn event_number(id: &str) -> u64 {
    id.strip_prefix("E-").and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// What a run did (or a dry run would do), in a shape that compares.
#[derive(Debug, Default, PartialEq, serde::Serialize)]
struct Effects {
    /// How it ended: completed, failed, waiting.
    status: String,
    /// Each changed field's final value.
    changes: std::collections::BTreeMap<String, Value>,
    /// Comments added: (internal, body).
    comments: Vec<(bool, String)>,
    /// URLs posted to.
    notifications: Vec<String>,
    /// `plugin.action` called.
    plugin_calls: Vec<String>,
    /// Titles of child tickets created.
    children: Vec<String>,
}

impl Effects {
    fn of_dry_run(dry: &DryRun) -> Self {
        let Some(r) = &dry.run else { return Self::default() };
        Self {
            status: r.status.to_string(),
            changes: r.changes.iter().map(|c| (c.field.clone(), c.to.clone())).collect(),
            comments: r.comments.iter().map(|c| (c.internal, c.body.clone())).collect(),
            notifications: r.notifications.iter().map(|n| n.url.clone()).collect(),
            plugin_calls: r.plugin_calls.iter().map(|p| format!("{}.{}", p.plugin, p.action)).collect(),
            children: r.children.iter().map(|c| c.title.clone()).collect(),
        }
    }

    /// Several runs for one event (rare: a retry) count together.
    fn absorb(&mut self, other: Effects) {
        self.status = other.status;
        self.changes.extend(other.changes);
        self.comments.extend(other.comments);
        self.notifications.extend(other.notifications);
        self.plugin_calls.extend(other.plugin_calls);
        self.children.extend(other.children);
    }

    /// Each aspect that differs, with both values.
    fn differences(&self, happened: &Effects) -> Vec<Value> {
        let mut out = Vec::new();
        let mut diff = |what: String, would: Value, did: Value| {
            if would != did {
                out.push(json!({"what": what, "would": would, "happened": did}));
            }
        };
        diff("status".into(), json!(self.status), json!(happened.status));
        let fields: std::collections::BTreeSet<&String> = self.changes.keys().chain(happened.changes.keys()).collect();
        for f in fields {
            let get = |fx: &Effects| fx.changes.get(f).cloned().unwrap_or(json!("(unchanged)"));
            diff(format!("changes.{f}"), get(self), get(happened));
        }
        diff("comments".into(), json!(self.comments), json!(happened.comments));
        diff("notifications".into(), json!(self.notifications), json!(happened.notifications));
        diff("plugin_calls".into(), json!(self.plugin_calls), json!(happened.plugin_calls));
        diff("children".into(), json!(self.children), json!(happened.children));
        out
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
