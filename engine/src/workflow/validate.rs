//! Validation of workflow definitions.
//!
//! Three passes, each reporting *every* problem it finds with a JSON pointer:
//! 1. syntax (the pointer is empty; the message carries line and column);
//! 2. the committed JSON Schema ([`super::SCHEMA`]) through the `jsonschema` crate:
//!    structure, types, unknown members;
//! 3. semantic checks the schema cannot express: duplicate and unknown step ids,
//!    unknown fields, values of the wrong type for a field, regexes that do not compile,
//!    template placeholders that name nothing.

use super::condition::{parse_path, Comparison, Op, Root};
use super::{template, Action, Trigger, Workflow, END};
use crate::ticket::{fields, NewTicket, PriorityMatrix};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    /// JSON pointer to the offending value (`""` is the whole document).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl ValidationError {
    fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), message: message.into() }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() { "/" } else { &self.pointer };
        write!(f, "{at}: {}", self.message)
    }
}

/// The compiled schema. The committed schema declares draft 7: compiled as draft 2020-12,
/// `jsonschema` 0.33's check of the schema against the 2020-12 meta-schema kept ~90 MiB
/// of heap for the life of the process (measured with /proc/self/status); as draft 7,
/// about 7 MiB. The schema uses no 2019-09/2020-12 keywords (`$defs` is reached by JSON
/// pointer, which draft 7 resolves like any other location).
fn schema_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(super::SCHEMA).expect("committed schema is valid JSON");
        jsonschema::validator_for(&schema).expect("committed schema compiles")
    })
}

/// Validates workflow JSON text.
pub fn validate_str(text: &str) -> Result<Workflow, Vec<ValidationError>> {
    let value: Value = crate::json::parse(text.as_bytes()).map_err(|e| match e {
        crate::json::StrictError::Syntax { line, column, message } => {
            vec![ValidationError::new("", format!("invalid JSON at line {line}, column {column}: {message}"))]
        }
        other => vec![ValidationError::new(other.pointer(), other.to_string())],
    })?;
    validate_value(&value)
}

/// Validates a parsed workflow document.
pub fn validate_value(value: &Value) -> Result<Workflow, Vec<ValidationError>> {
    let mut errors = schema_errors(value);
    // Semantic checks run on every part that parses on its own, so one round trip
    // reports schema and semantic problems together.
    let parts = Parts::from_value(value);
    errors.extend(parts.check());
    if errors.is_empty() {
        match serde_path_to_error::deserialize::<_, Workflow>(value.clone()) {
            Ok(workflow) => return Ok(workflow),
            Err(e) => errors.push(ValidationError::new(path_to_pointer(&e.path().to_string()), e.inner().to_string())),
        }
    }
    errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    errors.dedup();
    Err(errors)
}

/// The pieces of a document that deserialize on their own, with their positions.
struct Parts {
    id: Option<String>,
    triggers: Vec<(usize, Trigger)>,
    conditions: Option<super::Condition>,
    steps: Vec<(usize, super::Step)>,
    step_ids: Vec<(usize, String)>,
}

impl Parts {
    fn from_value(v: &Value) -> Self {
        fn each<T: serde::de::DeserializeOwned>(v: Option<&Value>) -> Vec<(usize, T)> {
            v.and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, x)| serde_json::from_value(x.clone()).ok().map(|t| (i, t)))
                        .collect()
                })
                .unwrap_or_default()
        }
        let step_ids = v
            .get("steps")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .enumerate()
                    .filter_map(|(i, x)| x.get("id").and_then(Value::as_str).map(|id| (i, id.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            id: v.get("id").and_then(Value::as_str).map(String::from),
            triggers: each(v.get("triggers")),
            conditions: v.get("conditions").and_then(|c| serde_json::from_value(c.clone()).ok()),
            steps: each(v.get("steps")),
            step_ids,
        }
    }

    fn check(&self) -> Vec<ValidationError> {
        Checker { parts: self, ids: self.step_ids.iter().map(|(_, id)| id.as_str()).collect(), errors: Vec::new() }
            .run()
    }
}

fn path_to_pointer(path: &str) -> String {
    if path == "." || path.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for part in path.split('.') {
        // serde_path_to_error renders indices as `steps[2]`.
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            out.push('/');
            out.push_str(&fields::escape(&rest[..i]));
            rest = &rest[i..];
            for idx in rest.split('[').filter(|s| !s.is_empty()) {
                out.push('/');
                out.push_str(idx.trim_end_matches(']'));
            }
        } else {
            out.push('/');
            out.push_str(&fields::escape(rest));
        }
    }
    out
}

fn schema_errors(value: &Value) -> Vec<ValidationError> {
    let mut out = Vec::new();
    for error in schema_validator().iter_errors(value) {
        let pointer = error.instance_path.to_string();
        match &error.kind {
            jsonschema::error::ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                out.push(ValidationError::new(
                    format!("{pointer}/{}", fields::escape(name)),
                    format!("required field `{name}` is missing"),
                ));
            }
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    out.push(ValidationError::new(
                        format!("{pointer}/{}", fields::escape(name)),
                        format!("unknown field `{name}`"),
                    ));
                }
            }
            _ => out.push(ValidationError::new(pointer, error.to_string())),
        }
    }
    out
}

/// Values a field accepts, checked by writing them to a sample ticket.
fn check_field_value(field: &str, value: &Value) -> Result<(), String> {
    if value.as_str().is_some_and(|s| !template::placeholders(s).is_empty()) {
        return Ok(()); // filled at run time
    }
    let matrix = PriorityMatrix::default();
    let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let mut sample = NewTicket { title: "sample".into(), requester: "sample".into(), ..Default::default() }
        .into_ticket("T-0".into(), &matrix, now);
    if field == "status" {
        // Any status is a valid *value*; whether the move is allowed depends on the ticket.
        return serde_json::from_value::<crate::ticket::Status>(value.clone()).map(|_| ()).map_err(|_| {
            "field `status` expects one of new, assigned, in_progress, pending, resolved, closed, reopened".to_string()
        });
    }
    fields::set(&mut sample, field, value.clone(), &matrix, now).map_err(|e| e.to_string())
}

struct Checker<'a> {
    parts: &'a Parts,
    ids: HashSet<&'a str>,
    errors: Vec<ValidationError>,
}

impl<'a> Checker<'a> {
    fn push(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError::new(pointer, message));
    }

    fn step_ref(&mut self, pointer: String, target: &str) {
        if target != END && !self.ids.contains(target) {
            let mut known: Vec<&str> = self.ids.iter().copied().collect();
            known.sort();
            self.push(pointer, format!("unknown step `{target}`; steps are: {}, or `end`", known.join(", ")));
        }
    }

    fn templates(&mut self, pointer: &str, value: &Value) {
        match value {
            Value::String(s) => {
                for path in template::unknown_paths(s) {
                    self.push(pointer, format!("template `{{{{{path}}}}}` names no known field"));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.templates(&format!("{pointer}/{i}"), v);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    self.templates(&format!("{pointer}/{}", fields::escape(k)), v);
                }
            }
            _ => {}
        }
    }

    fn comparison(&mut self, c: &Comparison, pointer: &str) {
        let Some((root, name)) = parse_path(&c.field) else {
            self.push(
                format!("{pointer}/field"),
                format!(
                    "unknown field `{}`; use ticket.<field>, previous.<field>, vars.<name>, event.type or event.actor",
                    c.field
                ),
            );
            return;
        };
        let value_ptr = format!("{pointer}/value");
        if matches!(c.op, Op::Changed | Op::ChangedFrom | Op::ChangedTo) && root != Root::Ticket {
            self.push(format!("{pointer}/op"), format!("`{}` applies to ticket.<field> only", c.op.as_str()));
        }
        if c.op == Op::Changed && c.value.is_some() {
            self.push(value_ptr.clone(), "`changed` takes no value; use `changed_to` or `changed_from` to compare");
        }
        let Some(value) = &c.value else { return };
        match c.op {
            Op::OlderThan | Op::NewerThan => {
                if value.as_str().and_then(super::condition::parse_age).is_none() {
                    self.push(value_ptr.clone(), format!("`{}` takes an age like `15m`, `4h` or `3d`", c.op.as_str()));
                }
                let timed = name.starts_with("custom.")
                    || root == Root::Vars
                    || matches!(name, "created_at" | "updated_at" | "resolved_at" | "closed_at");
                if !timed {
                    self.push(format!("{pointer}/field"), format!("`{}` is not a time field", c.field));
                }
            }
            Op::Regex => {
                if let Some(p) = value.as_str() {
                    if let Err(e) = regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                        self.push(value_ptr.clone(), format!("regex does not compile: {e}"));
                    }
                }
            }
            Op::Gt | Op::Lt | Op::Gte | Op::Lte if name.starts_with("custom.") || root == Root::Vars => {}
            Op::Gt | Op::Lt | Op::Gte | Op::Lte => {
                let numeric = matches!(name, "comment_count");
                if numeric != value.is_number() {
                    let want = if numeric { "a number" } else { "a string" };
                    self.push(value_ptr.clone(), format!("`{}` compares {} with {want}", c.op.as_str(), c.field));
                }
            }
            _ => {}
        }
        // For ticket fields with a fixed domain, the operand must be in it.
        if matches!(root, Root::Ticket | Root::Previous) && !name.starts_with("custom.") {
            let operands: Vec<(String, &Value)> = match (c.op, value) {
                (Op::In, Value::Array(items)) => {
                    items.iter().enumerate().map(|(i, v)| (format!("{value_ptr}/{i}"), v)).collect()
                }
                (Op::Eq | Op::Ne | Op::ChangedFrom | Op::ChangedTo, v) => vec![(value_ptr.clone(), v)],
                _ => vec![],
            };
            for (ptr, v) in operands {
                if v.is_null() || !fields::WRITABLE.contains(&name) {
                    continue;
                }
                if let Err(msg) = check_field_value(name, v) {
                    self.push(ptr, msg);
                }
            }
        }
    }

    fn condition(&mut self, c: &super::Condition, pointer: &str) {
        let mut found = Vec::new();
        c.walk(pointer, &mut |cmp, p| found.push((cmp, p.to_string())));
        for (cmp, p) in found {
            self.comparison(cmp, &p);
        }
    }

    /// A schedule without `tickets` starts runs with no ticket: only steps that need none
    /// may follow, and conditions cannot test ticket fields.
    fn ticketless(&mut self, trigger: usize) {
        let parts = self.parts;
        let why = format!("the schedule at /triggers/{trigger} has no `tickets`, so its runs have no ticket");
        let mut conditions: Vec<(String, &super::Condition)> = Vec::new();
        if let Some(c) = &parts.conditions {
            conditions.push(("/conditions".into(), c));
        }
        for (i, step) in parts.steps.iter() {
            match &step.action {
                Action::If { condition, .. } => conditions.push((format!("/steps/{i}/condition"), condition)),
                Action::Wait { until: Some(_), .. } => {
                    self.push(format!("/steps/{i}/until"), format!("`until` waits for ticket events; {why}"))
                }
                Action::Notify { .. } | Action::Plugin { .. } | Action::Wait { .. } => {}
                other => self.push(
                    format!("/steps/{i}/type"),
                    format!("`{}` needs a ticket; {why} (add `tickets` to fan out over tickets)", other.kind()),
                ),
            }
        }
        for (ptr, c) in conditions {
            let mut found = Vec::new();
            c.walk(&ptr, &mut |cmp, p| found.push((cmp.field.clone(), p.to_string())));
            for (field, p) in found {
                if matches!(parse_path(&field), Some((Root::Ticket | Root::Previous, _))) {
                    self.push(format!("{p}/field"), format!("`{field}` tests a ticket; {why}"));
                }
            }
        }
    }

    fn run(mut self) -> Vec<ValidationError> {
        let parts = self.parts;
        if parts.id.as_deref().is_some_and(|id| !crate::team::valid_id(id)) {
            self.push("/id", "id must be 1-64 characters of letters, digits, `.`, `_` or `-`");
        }
        let schedules: Vec<usize> =
            parts.triggers.iter().filter(|(_, t)| matches!(t, Trigger::Schedule(_))).map(|(i, _)| *i).collect();
        for extra in schedules.iter().skip(1) {
            self.push(format!("/triggers/{extra}"), "a workflow has at most one `schedule` trigger");
        }
        for (i, trigger) in parts.triggers.iter() {
            if let Trigger::Schedule(schedule) = trigger {
                if let Err(e) = crate::schedule::Compiled::new(&schedule.cron, &schedule.timezone) {
                    self.push(format!("/triggers/{i}/{}", e.field), e.message);
                }
                if let Some(c) = &schedule.tickets {
                    self.condition(c, &format!("/triggers/{i}/tickets"));
                }
                if schedule.tickets.is_none() && schedules.first() == Some(i) {
                    self.ticketless(*i);
                }
            }
            if let Trigger::TicketUpdated { changed } = trigger {
                for (j, f) in changed.iter().enumerate() {
                    let ptr = format!("/triggers/{i}/changed/{j}");
                    if !fields::is_known(&f.field) {
                        self.push(format!("{ptr}/field"), format!("unknown ticket field `{}`", f.field));
                        continue;
                    }
                    for (key, v) in [("from", &f.from), ("to", &f.to)] {
                        if let Some(v) = v.as_ref().filter(|v| !v.is_null()) {
                            if fields::WRITABLE.contains(&f.field.as_str()) {
                                if let Err(msg) = check_field_value(&f.field, v) {
                                    self.push(format!("{ptr}/{key}"), msg);
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(c) = &parts.conditions {
            self.condition(c, "/conditions");
        }
        let mut seen = HashSet::new();
        for (i, id) in parts.step_ids.iter() {
            if id == END {
                self.push(format!("/steps/{i}/id"), "`end` is reserved");
            }
            if !seen.insert(id.as_str()) {
                self.push(format!("/steps/{i}/id"), format!("duplicate step id `{id}`"));
            }
        }
        for (i, step) in parts.steps.iter() {
            let ptr = format!("/steps/{i}");
            if let Some(next) = &step.next {
                self.step_ref(format!("{ptr}/next"), next);
            }
            match &step.action {
                Action::Set { fields: map } => {
                    for (name, value) in map {
                        let fptr = format!("{ptr}/fields/{}", fields::escape(name));
                        if let Err(msg) = check_field_value(name, value) {
                            self.push(fptr.clone(), msg);
                        }
                        self.templates(&fptr, value);
                    }
                }
                Action::Assign { group, agent } => {
                    if group.is_none() && agent.is_none() {
                        self.push(ptr.clone(), "assign needs `group`, `agent` or both");
                    }
                }
                Action::Route { strategy, skills, .. } => {
                    if *strategy == crate::routing::Strategy::Skills && skills.is_empty() {
                        self.push(format!("{ptr}/skills"), "the skills strategy needs at least one skill");
                    }
                }
                Action::Comment { body, .. } => self.templates(&format!("{ptr}/body"), &Value::String(body.clone())),
                Action::Resolve { resolution: Some(r) } => {
                    self.templates(&format!("{ptr}/resolution"), &Value::String(r.clone()))
                }
                Action::Resolve { resolution: None } | Action::Close {} => {}
                Action::CreateChild { ticket } => {
                    let mut probe = ticket.clone();
                    probe.entry("requester").or_insert_with(|| Value::String("parent".into()));
                    for v in probe.values_mut() {
                        if v.as_str().is_some_and(|s| !template::placeholders(s).is_empty()) {
                            *v = Value::String("sample".into());
                        }
                    }
                    if let Err(e) = serde_path_to_error::deserialize::<_, NewTicket>(Value::Object(probe)) {
                        let inner = path_to_pointer(&e.path().to_string());
                        self.push(format!("{ptr}/ticket{inner}"), e.inner().to_string());
                    }
                    self.templates(&format!("{ptr}/ticket"), &Value::Object(ticket.clone()));
                }
                Action::If { condition, then, otherwise } => {
                    self.step_ref(format!("{ptr}/then"), then);
                    if let Some(o) = otherwise {
                        self.step_ref(format!("{ptr}/else"), o);
                    }
                    self.condition(condition, &format!("{ptr}/condition"));
                }
                Action::Plugin { input, on_error, backoff_ms, max_backoff_ms, .. } => {
                    self.templates(&format!("{ptr}/input"), input);
                    if backoff_ms > max_backoff_ms {
                        self.push(format!("{ptr}/backoff_ms"), "the first wait is longer than `max_backoff_ms`");
                    }
                    if let Some(t) = on_error {
                        self.step_ref(format!("{ptr}/on_error"), t);
                    }
                }
                Action::Fail { reason } => self.templates(&format!("{ptr}/reason"), &Value::String(reason.clone())),
                Action::Wait { minutes, until, on_timeout, at, timezone, .. } => {
                    if minutes.is_none() && until.is_none() && at.is_none() {
                        self.push(ptr.clone(), "wait needs `minutes` or `at`, `until`, or a time and `until`");
                    }
                    if minutes.is_some() && at.is_some() {
                        self.push(format!("{ptr}/at"), "give `minutes` or `at`, not both");
                    }
                    if let Some(tz) = timezone {
                        if at.is_none() {
                            self.push(format!("{ptr}/timezone"), "`timezone` applies to `at` only");
                        } else if tz.parse::<chrono_tz::Tz>().is_err() {
                            self.push(format!("{ptr}/timezone"), format!("`{tz}` is not an IANA time zone name"));
                        }
                    }
                    if let Some(at) = at {
                        self.templates(&format!("{ptr}/at"), &Value::String(at.clone()));
                        let tz = timezone.as_deref().and_then(|t| t.parse().ok()).unwrap_or(chrono_tz::UTC);
                        if template::placeholders(at).is_empty() && super::parse_at(at, tz).is_none() {
                            self.push(
                                format!("{ptr}/at"),
                                format!(
                                    "`{at}` is not a time; use 2026-12-01T09:00:00Z, 2026-12-01T09:00 or 2026-12-01"
                                ),
                            );
                        }
                    }
                    if let Some(t) = on_timeout {
                        if minutes.is_none() && at.is_none() {
                            self.push(format!("{ptr}/on_timeout"), "`on_timeout` needs `minutes` or `at`");
                        }
                        self.step_ref(format!("{ptr}/on_timeout"), t);
                    }
                    if let Some(c) = until {
                        self.condition(c, &format!("{ptr}/until"));
                    }
                }
                Action::Approval { stages, on_reject, notify_url } => {
                    if let Some(t) = on_reject {
                        self.step_ref(format!("{ptr}/on_reject"), t);
                    }
                    if let Some(url) = notify_url {
                        if !reqwest::Url::parse(url).is_ok_and(|u| u.host_str().is_some()) {
                            self.push(format!("{ptr}/notify_url"), format!("`{url}` is not an absolute http(s) URL"));
                        }
                    }
                    for (j, stage) in stages.iter().enumerate() {
                        let sptr = format!("{ptr}/stages/{j}");
                        use crate::approval::{ApproverSource, Policy};
                        match (stage.policy, stage.quorum) {
                            (Policy::Quorum, None) => self
                                .push(format!("{sptr}/quorum"), "policy `quorum` needs `quorum` (approvals required)"),
                            (Policy::Quorum, Some(_)) | (_, None) => {}
                            (_, Some(_)) => {
                                self.push(format!("{sptr}/quorum"), "`quorum` applies to policy `quorum` only")
                            }
                        }
                        for (k, source) in stage.approvers.iter().enumerate() {
                            if let ApproverSource::Field { field } = source {
                                if !fields::is_known(field) {
                                    self.push(
                                        format!("{sptr}/approvers/{k}/field"),
                                        format!("unknown ticket field `{field}`"),
                                    );
                                }
                            }
                        }
                    }
                }
                Action::Notify { url, payload, .. } => {
                    match reqwest::Url::parse(url) {
                        Ok(u) if u.host_str().is_some() => {}
                        _ => self.push(format!("{ptr}/url"), format!("`{url}` is not an absolute http(s) URL")),
                    }
                    if let Some(p) = payload {
                        self.templates(&format!("{ptr}/payload"), p);
                    }
                }
            }
        }
        self.errors
    }
}

/// Checks a condition used outside a workflow (e.g. an SLA policy's `applies_to`):
/// unknown fields, wrong value types, regexes that do not compile.
pub fn check_condition(condition: &super::Condition, pointer: &str) -> Vec<ValidationError> {
    let parts = Parts { id: None, triggers: Vec::new(), conditions: None, steps: Vec::new(), step_ids: Vec::new() };
    let mut checker = Checker { parts: &parts, ids: HashSet::new(), errors: Vec::new() };
    let mut found = Vec::new();
    condition.walk(pointer, &mut |cmp, p| found.push((cmp, p.to_string())));
    for (cmp, p) in found {
        checker.comparison(cmp, &p);
    }
    checker.errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers(v: Value) -> Vec<String> {
        validate_value(&v).unwrap_err().into_iter().map(|e| e.pointer).collect()
    }

    fn minimal() -> Value {
        json!({"id": "w", "name": "W", "triggers": [{"on": "ticket.created"}],
               "steps": [{"id": "a", "type": "comment", "body": "hi"}]})
    }

    #[test]
    fn minimal_workflow_is_valid() {
        validate_value(&minimal()).unwrap();
    }

    #[test]
    fn unknown_fields_are_located() {
        let mut v = minimal();
        v["colour"] = json!("red");
        v["steps"][0]["bodyy"] = json!("x");
        assert_eq!(pointers(v), vec!["/colour", "/steps/0/bodyy"]);
    }

    /// Workflow `regex` conditions run on the linear-time `regex` engine: patterns that
    /// need backtracking are refused at validation, and a pathological-looking pattern
    /// over a long text stays linear.
    #[test]
    fn regex_conditions_are_linear_time() {
        for pattern in ["(?=admin)", "(a)\\1", "(?<!x)y"] {
            let v = json!({"id": "w", "name": "W", "triggers": [{"on": "ticket.created"}],
                "conditions": {"field": "ticket.title", "op": "regex", "value": pattern},
                "steps": [{"id": "a", "type": "resolve"}]});
            assert_eq!(pointers(v), vec!["/conditions/value"], "{pattern}");
        }
        let re = regex::Regex::new("^(a+)+$").unwrap();
        let text = format!("{}!", "a".repeat(100_000));
        let started = std::time::Instant::now();
        assert!(!re.is_match(&text));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "no catastrophic backtracking");
    }

    #[test]
    fn _unused_are_all_reported() {
        let v = json!({"id": "w", "name": "W", "triggers": [{"on": "ticket.updated", "changed": [{"field": "colour"}]}],
        "conditions": {"all": [
            {"field": "ticket.title", "op": "regex", "value": "(unclosed"},
            {"field": "ticket.priority", "op": "eq", "value": "P9"},
            {"field": "ticket.nope", "op": "exists"}
        ]},
        "steps": [
            {"id": "a", "type": "if", "condition": {"field": "ticket.status", "op": "eq", "value": "new"}, "then": "zz"},
            {"id": "a", "type": "set", "fields": {"priority": 7}, "next": "b"}
        ]});
        assert_eq!(
            pointers(v),
            vec![
                "/conditions/all/0/value",
                "/conditions/all/1/value",
                "/conditions/all/2/field",
                "/steps/0/then",
                "/steps/1/fields/priority",
                "/steps/1/id",
                "/steps/1/next",
                "/triggers/0/changed/0/field",
            ]
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let errs = validate_str("{\n  \"id\": \"x\",\n  oops\n}").unwrap_err();
        assert!(errs[0].message.contains("line 3"), "{}", errs[0].message);
    }

    #[test]
    fn every_step_type_has_a_schema_definition() {
        let schema: Value = serde_json::from_str(super::super::SCHEMA).unwrap();
        let listed = schema["$defs"]["step"]["properties"]["type"]["enum"].as_array().unwrap().clone();
        let kinds: Vec<Value> = Action::KINDS.iter().map(|k| json!(k)).collect();
        assert_eq!(listed, kinds);
        for k in Action::KINDS {
            assert!(schema["$defs"].get(format!("step_{k}")).is_some(), "no schema for step type {k}");
        }
    }
}
