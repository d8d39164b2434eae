//! Records of what automation did: events, runs and their traces, history, audit.
//!
//! Plain data shared by the store (which persists them) and the executor (which
//! writes them). Nothing here runs anything.

pub mod journal;
pub mod machine;

use crate::condition::Check;
use crate::ticket::{Comment, FieldChange};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What happened to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// Logged.
    #[serde(rename = "ticket.created")]
    Created,
    /// Fields changed.
    #[serde(rename = "ticket.updated")]
    Updated,
    /// Comment added.
    #[serde(rename = "comment.added")]
    CommentAdded,
    /// A manual start through the API.
    #[serde(rename = "manual")]
    Manual,
    /// An SLA clock crossed a warning threshold.
    #[serde(rename = "sla.warning")]
    SlaWarning,
    /// An SLA clock ran out.
    #[serde(rename = "sla.breached")]
    SlaBreached,
    /// A cron schedule came due.
    #[serde(rename = "schedule")]
    Schedule,
}

impl EventKind {
    /// The name used in triggers and conditions (`event.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "ticket.created",
            EventKind::Updated => "ticket.updated",
            EventKind::CommentAdded => "comment.added",
            EventKind::Manual => "manual",
            EventKind::SlaWarning => "sla.warning",
            EventKind::SlaBreached => "sla.breached",
            EventKind::Schedule => "schedule",
        }
    }
}

/// One link of a causation chain: the run whose step produced the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// The workflow.
    pub workflow_id: String,
    /// The run.
    pub run_id: String,
    /// The event that run made.
    pub event_id: String,
}

/// What an SLA event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaSignal {
    /// The policy.
    pub policy: String,
    /// Response or resolution.
    pub metric: crate::sla::Metric,
    /// The warning threshold (absent for a breach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
}

/// How one workflow reacted to an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The workflow.
    pub workflow_id: String,
    /// Its revision at the time.
    pub revision: u32,
    /// `started`, `not_matched`, `refused` or `disabled`.
    pub outcome: String,
    /// The run started (or recorded as refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Why it did not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The comparisons made.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub checks: Vec<Check>,
}

/// An event on a ticket, with the workflows it was offered to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `E-<n>`.
    pub id: String,
    /// The ticket.
    pub ticket_id: String,
    /// What happened.
    pub kind: EventKind,
    /// Field changes (updates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// The comment (comment events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Comment>,
    /// A user name, or `workflow:<id>`.
    pub actor: String,
    /// Runs that led to this event, oldest first (empty for human actions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causation: Vec<Cause>,
    /// When.
    pub at: DateTime<Utc>,
    /// For SLA events: which clock and threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaSignal>,
    /// The workflows whose trigger matched, and what they did.
    #[serde(default)]
    pub evaluations: Vec<Evaluation>,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Durably started; a worker will pick it up.
    Pending,
    /// Steps are executing.
    Running,
    /// Parked at a `wait` step: no task, no memory; a timer or a ticket event resumes it.
    Waiting,
    /// All steps done.
    Completed,
    /// A step failed; the trace says which and why.
    Failed,
    /// The loop guard refused to start it.
    Refused,
}

impl RunStatus {
    /// Whether the run still has work to do.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Pending | RunStatus::Running)
    }
}

/// A run parked at a `wait` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// The wait step.
    pub step: String,
    /// When the wait ends without its condition (None: only the condition ends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
}

/// One entry of a run's trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// `trigger`, `conditions`, `step`, `refused` or `finished`.
    pub kind: String,
    /// The step id (step entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The step type (step entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_type: Option<String>,
    /// `matched`, `not_matched`, `ok`, `failed`, `true`, `false`...
    pub outcome: String,
    /// Human-readable summary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Comparisons made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Ticket fields the step changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// Step-specific detail (routing decision, HTTP status...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

impl TraceEntry {
    /// An entry with no step, checks, changes or detail (set those with struct update).
    pub fn new(at: DateTime<Utc>, kind: &str, outcome: &str, message: impl Into<String>) -> Self {
        Self {
            at,
            kind: kind.into(),
            step: None,
            step_type: None,
            outcome: outcome.into(),
            message: message.into(),
            checks: Vec::new(),
            changes: Vec::new(),
            detail: Value::Null,
        }
    }

    /// A `step` entry for a step of the given type.
    pub fn step(at: DateTime<Utc>, step: &str, step_type: &str, outcome: &str, message: impl Into<String>) -> Self {
        Self { step: Some(step.into()), step_type: Some(step_type.into()), ..Self::new(at, "step", outcome, message) }
    }
}

/// A workflow run: a durable state machine, persisted after every step as a small
/// header and the journal entries appended since (see [`journal`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `R-<n>`.
    pub id: String,
    /// The workflow.
    pub workflow_id: String,
    /// The revision the run is pinned to.
    pub workflow_revision: u32,
    /// The ticket it works on.
    pub ticket_id: String,
    /// The event that started it.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Who caused the event.
    pub actor: String,
    /// The event's field changes (for `changed` and `previous.*` in steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// The values, as the triggering event left them, of the fields the workflow reads as
    /// `previous.<field>` that the event did not change: `previous` stays the value before
    /// the event even after the run's own steps change the field.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub previous: Map<String, Value>,
    /// Where it stands.
    pub status: RunStatus,
    /// What a waiting run waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// The next step to execute (`None` when finished).
    pub cursor: Option<String>,
    /// Run variables: manual input under `input`, step outputs under the step id. Set
    /// them with [`Run::set_var`], which journals them.
    pub vars: Map<String, Value>,
    /// What happened, in order: append only (entries are journaled once).
    pub trace: Vec<TraceEntry>,
    /// The runs that led to this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causation: Vec<Cause>,
    /// Steps executed so far (also guards against jump loops).
    pub steps_done: u32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last persisted.
    pub updated_at: DateTime<Utc>,
    /// Finished (completed, failed or refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed or was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How much of the run is stored (see [`journal::delta`]).
    #[serde(skip)]
    pub saved: journal::Saved,
}

impl Run {
    /// Sets a run variable (a step's output under its id, `error`...), to be journaled
    /// with the run's next write.
    pub fn set_var(&mut self, key: &str, value: Value) {
        self.saved.touch(key);
        self.vars.insert(key.to_string(), value);
    }
}

/// A ticket's field-change history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The ticket.
    pub ticket_id: String,
    /// The event it belongs to.
    pub event_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What changed (for a comment: `comments` with the comment id).
    pub changes: Vec<FieldChange>,
}

/// An administrative action (workflow published, agent changed...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// The token's name.
    pub actor: String,
    /// E.g. `workflow.update`.
    pub action: String,
    /// The object's id.
    pub target: String,
    /// Extra facts (revision, old/new enabled...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}
