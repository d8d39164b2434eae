//! The one owner of a run's lifecycle transitions (a first step of the execution core
//! v2): where a step, a wait or an approval sends the run, and what ending means. Every
//! caller — the step driver, a wait resumed by an event or timed out, an approval decided
//! — goes through these functions, so `end`, the status, the cursor, the finish time and
//! the `finished` trace entry are set in one place and cannot drift apart. Pure.

use super::{Run, RunStatus, TraceEntry};
use chrono::{DateTime, Utc};

/// Where a run goes: an explicit target (`end` stops the run), else `following` (the
/// next step in order, or none after the last): the language's rule.
pub use crate::workflow::target;

/// What a transition did to the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It has a next step.
    Continues,
    /// It ended well.
    Completed,
    /// It ended with this error.
    Failed(String),
}

impl Outcome {
    /// Whether the run ended.
    pub fn ended(&self) -> bool {
        !matches!(self, Outcome::Continues)
    }
}

/// Moves the run on to `next`; with none, it completes.
pub fn advance(run: &mut Run, next: Option<String>, now: DateTime<Utc>) -> Outcome {
    run.waiting = None;
    run.updated_at = now;
    match next {
        Some(step) => {
            run.cursor = Some(step);
            run.status = RunStatus::Running;
            Outcome::Continues
        }
        None => {
            finish(run, RunStatus::Completed, None, now);
            Outcome::Completed
        }
    }
}

/// Ends the run as failed.
pub fn fail(run: &mut Run, error: String, now: DateTime<Utc>) -> Outcome {
    run.waiting = None;
    run.updated_at = now;
    finish(run, RunStatus::Failed, Some(error.clone()), now);
    Outcome::Failed(error)
}

fn finish(run: &mut Run, status: RunStatus, error: Option<String>, now: DateTime<Utc>) {
    let outcome = if status == RunStatus::Completed { "completed" } else { "failed" };
    run.status = status;
    run.cursor = None;
    run.finished_at = Some(now);
    run.trace.push(TraceEntry::new(now, "finished", outcome, error.as_deref().unwrap_or("")));
    run.error = error;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        serde_json::from_value(serde_json::json!({
            "id": "R-1", "workflow_id": "w", "workflow_revision": 1, "ticket_id": "T-1", "event_id": "E-1",
            "event_type": "ticket.created", "actor": "ann", "status": "waiting", "cursor": "wait",
            "waiting": {"step": "wait"}, "vars": {}, "trace": [],
            "steps_done": 1, "created_at": "2026-11-02T08:00:00Z", "updated_at": "2026-11-02T08:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn end_stops_and_every_ending_is_recorded_the_same_way() {
        assert_eq!(target(Some("end"), Some("next".into())), None);
        assert_eq!(target(Some("other"), Some("next".into())), Some("other".into()));
        assert_eq!(target(None, Some("next".into())), Some("next".into()));
        let now = "2026-11-02T09:00:00Z".parse().unwrap();
        let mut r = run();
        assert_eq!(advance(&mut r, Some("note".into()), now), Outcome::Continues);
        assert_eq!((r.status, r.cursor.as_deref(), r.waiting.is_none()), (RunStatus::Running, Some("note"), true));
        let mut r = run();
        assert_eq!(advance(&mut r, None, now), Outcome::Completed);
        assert_eq!((r.status, r.finished_at, r.cursor.clone()), (RunStatus::Completed, Some(now), None));
        assert_eq!((r.trace[0].kind.as_str(), r.trace[0].outcome.as_str()), ("finished", "completed"));
        let mut r = run();
        assert_eq!(fail(&mut r, "boom".into(), now), Outcome::Failed("boom".into()));
        assert_eq!(
            (r.status, r.error.as_deref(), r.trace[0].outcome.as_str()),
            (RunStatus::Failed, Some("boom"), "failed")
        );
    }
}
