//! A run as it is stored: a small [`Header`] rewritten at each step, a [`Start`] written
//! once, and an append-only journal of [`Entry`]s keyed by `(run, seq)` (execution core
//! v2). The in-memory [`Run`] (what the API answers) is the fold of the three:
//! `trace` is the journal's trace entries in order, `vars` the last output written under
//! each key.
//!
//! A run remembers how much of it is stored ([`Saved`]); [`delta`] takes what is new
//! since then — the header, the start record for a run never stored, and the entries
//! appended since — so the bytes a step writes do not grow with the run: a 1 MiB plugin
//! output is written once, in the step that produced it. Pure.

use super::{Cause, Run, RunStatus, TraceEntry, Waiting};
use crate::ticket::FieldChange;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The part of a run that changes as it goes: small, rewritten at each step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// `R-<n>`.
    pub id: String,
    /// The workflow.
    pub workflow_id: String,
    /// The revision the run is pinned to.
    pub workflow_revision: u32,
    /// The ticket it works on (none for a schedule's summary run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Where it stands.
    pub status: RunStatus,
    /// What a waiting run waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// The next step to execute (`None` when finished).
    pub cursor: Option<String>,
    /// Steps executed so far.
    pub steps_done: u32,
    /// Journal entries stored so far: the next entry's sequence number.
    pub journal_len: u32,
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
}

/// What started a run: written once, never changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// The event that started it.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Who caused the event.
    pub actor: String,
    /// The event's field changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// `previous.*` values as the event left them.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub previous: Map<String, Value>,
    /// The runs that led to this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causation: Vec<Cause>,
    /// The trace as the run was first stored (its trigger and conditions): the journal's
    /// entries follow these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<TraceEntry>,
    /// The variables as the run was first stored (`input` of a manual start).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Map<String, Value>,
}

/// One journal entry: appended, never rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// A trace entry (trigger, conditions, step, resumed, finished...).
    Trace(TraceEntry),
    /// A run variable set: a step's output under its id, `input`, `error`.
    Output {
        /// The variable.
        key: String,
        /// Its value.
        value: Value,
    },
}

/// How much of a run is stored. Not serialized: a run read from the store says all of
/// it is; a run built in memory (or retried under a new id) says none is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Saved {
    /// The id the run was stored under (a copy under another id is a new run).
    id: String,
    /// Journal entries stored.
    len: u32,
    /// Trace entries stored.
    trace: usize,
    /// Variables set since, in order.
    vars: Vec<String>,
    /// The status stored (none before the first write).
    status: Option<RunStatus>,
}

impl Saved {
    /// Notes that `key` was set and must be journaled.
    pub(super) fn touch(&mut self, key: &str) {
        if !self.vars.iter().any(|k| k == key) {
            self.vars.push(key.to_string());
        }
    }
}

/// What one write of a run stores: the header, the start record for a run stored for the
/// first time, and the new journal entries with their sequence numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// The header (its `journal_len` counts the entries below).
    pub header: Header,
    /// Set only the first time the run is stored.
    pub start: Option<Box<Start>>,
    /// New entries, by sequence number.
    pub entries: Vec<(u32, Entry)>,
    /// The status the store holds for the run before this write (none for a run stored
    /// for the first time): a backend touches its status indexes only when it changes.
    pub was: Option<RunStatus>,
}

impl Delta {
    /// The sequence number that must still be free for this write to apply (none for a
    /// run stored for the first time): its first new entry's, or, when it appends none,
    /// the one after the journal it was computed from. Taken means another writer
    /// appended since (the run's version moved): a conflict.
    pub fn expected_free(&self) -> Option<u32> {
        if self.start.is_some() {
            return None;
        }
        Some(self.entries.first().map_or(self.header.journal_len, |(seq, _)| *seq))
    }
}

/// Takes what is new in `run` since it was last stored, and marks it stored.
pub fn delta(run: &mut Run) -> Delta {
    let fresh = run.saved.id != run.id;
    if fresh {
        run.saved = Saved { id: run.id.clone(), ..Saved::default() };
    }
    let was = run.saved.status.replace(run.status);
    if fresh {
        // Stored for the first time: one record with everything so far (a run starting
        // is one key, not one per trace entry); the journal starts after it.
        run.saved.trace = run.trace.len();
        let start = Start {
            event_id: run.event_id.clone(),
            event_type: run.event_type.clone(),
            actor: run.actor.clone(),
            changes: run.changes.clone(),
            previous: run.previous.clone(),
            causation: run.causation.clone(),
            trace: run.trace.clone(),
            vars: run.vars.clone(),
        };
        return Delta { header: header(run), start: Some(Box::new(start)), entries: Vec::new(), was };
    }
    let trace = run.trace[run.saved.trace.min(run.trace.len())..].iter().cloned().map(Entry::Trace);
    let outputs = std::mem::take(&mut run.saved.vars).into_iter().filter_map(|key| {
        let value = run.vars.get(&key)?.clone();
        Some(Entry::Output { key, value })
    });
    let first = run.saved.len;
    let entries: Vec<(u32, Entry)> = (first..).zip(trace.chain(outputs)).collect();
    run.saved.len = first + entries.len() as u32;
    run.saved.trace = run.trace.len();
    let start = None;
    Delta { header: header(run), start, entries, was }
}

fn header(run: &Run) -> Header {
    Header {
        id: run.id.clone(),
        workflow_id: run.workflow_id.clone(),
        workflow_revision: run.workflow_revision,
        ticket: Some(run.ticket_id.clone()).filter(|t| !t.is_empty()),
        status: run.status,
        waiting: run.waiting.clone(),
        cursor: run.cursor.clone(),
        steps_done: run.steps_done,
        journal_len: run.saved.len,
        created_at: run.created_at,
        updated_at: run.updated_at,
        finished_at: run.finished_at,
        error: run.error.clone(),
    }
}

/// Folds a stored header, start record and journal (in sequence order) into the run,
/// marked as wholly stored.
pub fn fold(header: Header, start: Start, entries: impl IntoIterator<Item = Entry>) -> Run {
    let (mut trace, mut vars) = (start.trace, start.vars);
    for entry in entries {
        match entry {
            Entry::Trace(t) => trace.push(t),
            Entry::Output { key, value } => {
                vars.insert(key, value);
            }
        }
    }
    let saved = Saved {
        id: header.id.clone(),
        len: header.journal_len,
        trace: trace.len(),
        vars: Vec::new(),
        status: Some(header.status),
    };
    Run {
        id: header.id,
        workflow_id: header.workflow_id,
        workflow_revision: header.workflow_revision,
        ticket_id: header.ticket.unwrap_or_default(),
        event_id: start.event_id,
        event_type: start.event_type,
        actor: start.actor,
        changes: start.changes,
        previous: start.previous,
        status: header.status,
        waiting: header.waiting,
        cursor: header.cursor,
        vars,
        trace,
        causation: start.causation,
        steps_done: header.steps_done,
        created_at: header.created_at,
        updated_at: header.updated_at,
        finished_at: header.finished_at,
        error: header.error,
        saved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run() -> Run {
        serde_json::from_value(json!({
            "id": "R-7", "workflow_id": "w", "workflow_revision": 2, "ticket_id": "T-1", "event_id": "E-1",
            "event_type": "ticket.created", "actor": "ann", "status": "pending", "cursor": "a",
            "vars": {"input": {"x": 1}}, "trace": [{"at": "2026-11-02T08:00:00Z", "kind": "trigger", "outcome": "matched"}],
            "steps_done": 0, "created_at": "2026-11-02T08:00:00Z", "updated_at": "2026-11-02T08:00:00Z"
        }))
        .unwrap()
    }

    fn step(run: &mut Run, id: &str, output: Option<Value>) {
        run.trace.push(TraceEntry::step(run.updated_at, id, "set", "ok", ""));
        if let Some(v) = output {
            run.set_var(id, v);
        }
        run.steps_done += 1;
    }

    #[test]
    fn a_run_is_stored_once_then_only_what_is_new() {
        let mut r = run();
        let first = delta(&mut r);
        let start = first.start.expect("stored for the first time");
        assert_eq!((start.trace.len(), start.vars.len()), (1, 1), "what the run started with, in one record");
        assert!(first.entries.is_empty());
        assert_eq!(first.header.journal_len, 0);
        assert!(delta(&mut r).entries.is_empty(), "nothing new, nothing appended");

        step(&mut r, "a", Some(json!({"big": "x".repeat(1000)})));
        let second = delta(&mut r);
        assert!(second.start.is_none());
        assert_eq!(second.entries.len(), 2, "the step's trace entry and its output");
        assert_eq!((second.entries[0].0, second.header.journal_len), (0, 2));
        step(&mut r, "b", None);
        let third = delta(&mut r);
        assert_eq!(third.entries.len(), 1, "the 1 KB output of `a` is not written again");
    }

    #[test]
    fn folding_the_stored_parts_gives_the_run_back() {
        let mut r = run();
        let mut stored = Vec::new();
        let mut start = None;
        let mut header = None;
        for _ in 0..3 {
            let n = r.steps_done;
            step(&mut r, "a", Some(json!(n)));
            let d = delta(&mut r);
            start = start.or(d.start);
            stored.extend(d.entries);
            header = Some(d.header);
        }
        let folded = fold(header.unwrap(), *start.unwrap(), stored.into_iter().map(|(_, e)| e));
        assert_eq!(folded, r);
        assert_eq!(folded.vars["a"], json!(2), "the last output under a key wins");
    }

    #[test]
    fn a_copy_under_a_new_id_is_stored_whole() {
        let mut r = run();
        delta(&mut r);
        let mut copy = r.clone();
        copy.id = "R-8".into();
        let d = delta(&mut copy);
        assert_eq!(d.start.map(|s| s.trace.len()), Some(1));
        assert!(d.entries.is_empty());
        assert_eq!(d.header.ticket.as_deref(), Some("T-1"));
    }
}
