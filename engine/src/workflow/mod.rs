//! Workflow language v1: what admins write in `workflows/*.json`.
//!
//! - this file: the serde types of a definition (triggers, conditions, steps);
//! - [`condition`]: condition trees and their evaluation, with a trace of every test;
//! - [`template`]: `{{ticket.title}}`-style placeholders in strings;
//! - [`validate`]: JSON Schema + semantic checks, every error located by a JSON pointer;
//!
//! The language is pure: nothing here touches storage or clocks.

pub mod analysis;
/// Conditions live below both the language and SLA policies; this path stays for callers.
pub use crate::condition;
pub mod template;
pub mod validate;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use condition::Condition;
pub use validate::{validate_str, validate_value, ValidationError};

/// The JSON Schema the validator checks against; workflow files may point at it with `$schema`.
pub const SCHEMA: &str = include_str!("../../schema/workflow.v1.schema.json");

/// The step id that ends a run when used as a jump target.
pub const END: &str = "end";

/// The language's one rule for where a run goes: an explicit target (`end` stops the
/// run), else `following`.
pub fn target(explicit: Option<&str>, following: Option<String>) -> Option<String> {
    match explicit {
        Some(t) if t == END => None,
        Some(t) => Some(t.to_string()),
        None => following,
    }
}

/// A workflow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Editors use this to find the schema; the engine ignores it.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Stable identifier, `[A-Za-z0-9._-]{1,64}`.
    pub id: String,
    /// Human name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The author's version number. The store keeps its own revision counter too.
    #[serde(default = "one")]
    pub version: u32,
    /// Disabled workflows never start runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Events that start a run (any of them).
    pub triggers: Vec<Trigger>,
    /// Must hold for the run to start; absent means always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Condition>,
    /// What the run does, in order unless a step jumps.
    pub steps: Vec<Step>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn default_backoff_ms() -> u64 {
    200
}

fn default_max_backoff_ms() -> u64 {
    6400
}

fn two() -> u32 {
    2
}

use crate::json::present;

/// An event that starts a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "on")]
pub enum Trigger {
    /// A ticket was logged.
    #[serde(rename = "ticket.created")]
    TicketCreated,
    /// A ticket changed; optionally only when one of `changed` matches.
    #[serde(rename = "ticket.updated")]
    TicketUpdated {
        /// Any of these field changes (empty: any change).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<ChangeFilter>,
    },
    /// A comment was added.
    #[serde(rename = "comment.added")]
    CommentAdded {
        /// Only public replies (`false`), only internal notes (`true`), or both (absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        internal: Option<bool>,
    },
    /// Started by hand through the API or CLI.
    #[serde(rename = "manual")]
    Manual,
    /// An SLA clock crossed a warning threshold (optionally only this metric / percent).
    #[serde(rename = "sla.warning")]
    SlaWarning {
        /// `response` or `resolution` (absent: either).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metric: Option<crate::sla::Metric>,
        /// The threshold (absent: any).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent: Option<u8>,
    },
    /// An SLA clock ran out (optionally only this metric).
    #[serde(rename = "sla.breached")]
    SlaBreached {
        /// `response` or `resolution` (absent: either).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metric: Option<crate::sla::Metric>,
    },
    /// A cron schedule in a time zone. Without `tickets` each occurrence starts one run
    /// with no ticket (for summaries and reports: `vars.backlog` holds the open-ticket
    /// counts); with `tickets` it starts one run per open ticket the condition holds for.
    #[serde(rename = "schedule")]
    Schedule(Schedule),
}

/// When and for what a `schedule` trigger fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Cron expression: 5 fields `min hour day month weekday`, or 6-7 with seconds/years.
    pub cron: String,
    /// IANA zone the expression's times are local to (default `UTC`).
    #[serde(default = "utc")]
    pub timezone: String,
    /// What to do about occurrences missed while the server was down (default `once`).
    #[serde(default)]
    pub catch_up: crate::schedule::CatchUp,
    /// Fan out: one run per open (not resolved or closed) ticket this holds for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tickets: Option<Condition>,
}

fn utc() -> String {
    "UTC".into()
}

impl Workflow {
    /// The workflow's schedule trigger, if it has one (validation allows at most one).
    pub fn schedule(&self) -> Option<&Schedule> {
        self.triggers.iter().find_map(|t| match t {
            Trigger::Schedule(s) => Some(s),
            _ => None,
        })
    }

    /// Whether runs of this workflow may have no ticket (a schedule without `tickets`).
    pub fn ticketless(&self) -> bool {
        self.schedule().is_some_and(|s| s.tickets.is_none())
    }
}

/// "Field F changed (from X) (to Y)".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeFilter {
    /// The field, e.g. `status` or `custom.vip`.
    pub field: String,
    /// The value before, if it matters.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// The value after, if it matters.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique within the workflow; other steps jump to it by this id.
    pub id: String,
    /// The step to run after this one (default: the next in the list; `end` stops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// What the step does.
    #[serde(flatten)]
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Write ticket fields (`custom.x` for custom fields). String values may hold templates.
    Set {
        /// Field name to value.
        fields: Map<String, Value>,
    },
    /// Give the ticket to a group and/or an agent.
    Assign {
        /// Owning group.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        /// Owning agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// Pick an agent of a group by a strategy.
    Route {
        /// The group whose agents are candidates; the ticket is assigned to it.
        group: String,
        /// How to choose.
        strategy: crate::routing::Strategy,
        /// Required skills (all of them); needed by the `skills` strategy.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skills: Vec<String>,
        /// Skip agents who are off shift (default true).
        #[serde(default = "yes")]
        on_shift_only: bool,
    },
    /// Add a reply or an internal note.
    Comment {
        /// Text; may hold templates.
        body: String,
        /// Internal note (default) or public reply.
        #[serde(default = "yes")]
        internal: bool,
    },
    /// Resolve the ticket, optionally with a public resolution note.
    Resolve {
        /// Posted as a public comment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolution: Option<String>,
    },
    /// Close the ticket.
    Close {},
    /// Log a child ticket linked to this one.
    CreateChild {
        /// Fields of the child; strings may hold templates. Requester defaults to the parent's.
        ticket: Map<String, Value>,
    },
    /// Branch on a condition.
    If {
        /// What to test.
        condition: Condition,
        /// Step to jump to when true.
        then: String,
        /// Step to jump to when false (default: the next step).
        #[serde(rename = "else", default, skip_serializing_if = "Option::is_none")]
        otherwise: Option<String>,
    },
    /// Park the run until a condition holds on a later event of the ticket, or until a
    /// duration has passed (wall-clock or business time), whichever comes first.
    Wait {
        /// How long (absent: only the condition ends the wait).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<u32>,
        /// Count `minutes` in business time on `calendar` (default: wall-clock time).
        #[serde(default)]
        business: bool,
        /// Calendar for business time (default: the ticket's SLA calendar, else 24x7).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        calendar: Option<String>,
        /// Resume at `next` as soon as this holds on a ticket event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Condition>,
        /// Wait until this time instead of for `minutes`: RFC 3339 (`2026-12-01T09:00:00Z`),
        /// or a local `2026-12-01T09:00` / `2026-12-01` in `timezone`; may hold templates
        /// such as `{{ticket.custom.start_date}}`. A time already past ends the wait at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
        /// IANA zone for a local `at` (default UTC).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<String>,
        /// Where to go when the duration passes first (default: the next step).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_timeout: Option<String>,
    },
    /// Call a WebAssembly plugin's action; its output lands in `vars.<step id>`.
    Plugin {
        /// Plugin id.
        plugin: String,
        /// Action name.
        action: String,
        /// Input; strings may hold templates. Checked against the action's input schema.
        #[serde(default)]
        input: Value,
        /// Extra attempts for errors the plugin marks retryable (default 2), with backoff;
        /// a `retry_after_ms` the plugin passes on (e.g. Graph's `Retry-After`) is honoured.
        #[serde(default = "two")]
        retries: u32,
        /// First wait before a retry, in milliseconds (default 200); each later wait
        /// doubles up to `max_backoff_ms`. A directory lookup that should ride out a
        /// domain controller's reboot says e.g. 5000 and 60000 with 6 retries.
        #[serde(default = "default_backoff_ms")]
        backoff_ms: u64,
        /// Longest wait between two attempts (default 6400 ms, at most 15 minutes).
        #[serde(default = "default_max_backoff_ms")]
        max_backoff_ms: u64,
        /// Where to go when the call fails for good (default: the run fails). The error is
        /// in `vars.error` (`step`, `code`, `message`) and `vars.<step id>.error`, so a
        /// compensation path can undo what earlier steps did and say why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_error: Option<String>,
    },
    /// End the run as failed, with a reason (templates allowed); e.g. the last step of a
    /// compensation path, so the run counts as failed in `/metrics` and reports.
    Fail {
        /// Why; lands in the run's `error`.
        reason: String,
    },
    /// Ask people to approve; the run waits (no task held) until the stages decide. On
    /// approval the run goes on at `next`; on rejection at `on_reject` (default: it ends).
    /// `vars.<step id>` holds the outcome and every decision.
    Approval {
        /// Stage 2 starts when stage 1 is approved, and so on.
        stages: Vec<crate::approval::StageSpec>,
        /// Where to go when rejected (default: end the run).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_reject: Option<String>,
        /// POSTs each stage's request, with single-use signed approve/reject links per
        /// approver (for e-mail), to this URL (signed like `notify`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notify_url: Option<String>,
    },
    /// POST a JSON body, signed with HMAC-SHA256, to an outbound webhook.
    Notify {
        /// http(s) URL.
        url: String,
        /// Name of the signing secret in the server configuration (default: `default`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// Body; strings may hold templates. Default: the ticket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
}

impl Action {
    /// The `type` name used in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Set { .. } => "set",
            Action::Assign { .. } => "assign",
            Action::Route { .. } => "route",
            Action::Comment { .. } => "comment",
            Action::Resolve { .. } => "resolve",
            Action::Close {} => "close",
            Action::Fail { .. } => "fail",
            Action::CreateChild { .. } => "create_child",
            Action::If { .. } => "if",
            Action::Notify { .. } => "notify",
            Action::Plugin { .. } => "plugin",
            Action::Wait { .. } => "wait",
            Action::Approval { .. } => "approval",
        }
    }

    /// Every step type, for the schema drift test.
    pub const KINDS: [&'static str; 13] = [
        "set",
        "assign",
        "route",
        "comment",
        "resolve",
        "close",
        "create_child",
        "if",
        "notify",
        "plugin",
        "wait",
        "approval",
        "fail",
    ];
}

impl Workflow {
    /// The index of a step by id.
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// The step that follows step `index` when it does not jump: its `next`, or the
    /// one after it in the list, or the end.
    pub fn following(&self, index: usize) -> Option<String> {
        target(self.steps[index].next.as_deref(), self.steps.get(index + 1).map(|s| s.id.clone()))
    }

    /// The fields that this workflow's steps may write (for loop analysis).
    pub fn written_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        for step in &self.steps {
            match &step.action {
                Action::Set { fields } => out.extend(fields.keys().cloned()),
                Action::Assign { .. } | Action::Route { .. } => {
                    out.extend(["group".to_string(), "assignee".to_string(), "status".to_string()])
                }
                Action::Resolve { .. } | Action::Close {} => out.push("status".into()),
                _ => {}
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Reads a wait's `at`: RFC 3339, or a local date-time / date in `tz` (a local time
/// that does not exist because of DST is taken as the first instant after the gap).
pub fn parse_at(s: &str, tz: chrono_tz::Tz) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::TimeZone;
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    let local = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))?;
    // Walk forward minute by minute out of a DST gap (at most a few hours).
    (0..=240)
        .find_map(|m| tz.from_local_datetime(&(local + chrono::Duration::minutes(m))).earliest())
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A stored workflow: the current definition and its revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    /// Same as `definition.id`.
    pub id: String,
    /// Increases by one each time the definition changes; runs pin it.
    pub revision: u32,
    /// Whether new events start runs (switched by enable/disable without a new revision).
    pub enabled: bool,
    /// The definition.
    pub definition: Workflow,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Who changed it last.
    pub updated_by: String,
}
