//! The one owner of a run's transitions: what a finished step does to the run
//! ([`complete_step`]: its trace entry and output, `on_error`, parking, failing, the next
//! step), a parked run going on ([`resume`]), and what ending means. Every caller — the
//! step driver, the dry run, a wait resumed by an event or timed out, an approval
//! decided — goes through these functions, so `end`, the status, the cursor, the finish
//! time and the `finished` trace entry are set in one place and cannot drift apart. Pure.

use super::{Run, RunStatus, TraceEntry, Waiting};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

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
    /// It is parked at a wait or an approval.
    Parked,
}

impl Outcome {
    /// Whether the run ended.
    pub fn ended(&self) -> bool {
        matches!(self, Outcome::Completed | Outcome::Failed(_))
    }
}

/// Where a finished step sends the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The step after it, in order (most step types).
    InOrder,
    /// Where the step decided (`if`, a wait that timed out at once): a step, or `None`
    /// to end.
    Decided(Option<String>),
}

/// What a step did, as the machine takes it.
#[derive(Debug, Clone)]
pub struct StepEnd<'a> {
    /// The step's id.
    pub step: &'a str,
    /// Its trace entry.
    pub entry: TraceEntry,
    /// Its output (`vars.<step>`).
    pub output: Option<Value>,
    /// Why it failed.
    pub failed: Option<String>,
    /// Where it sends the run.
    pub next: Next,
    /// Set when it parks the run.
    pub wait: Option<Waiting>,
    /// A plugin step's `on_error`: where a failure continues instead of ending the run.
    pub on_error: Option<&'a str>,
}

/// Records a finished step and moves the run on: a failure goes to `on_error` (with
/// `vars.error`) or fails the run; a step that parks parks it; else the run goes where
/// the step says, `following` being the next step in order.
pub fn complete_step(run: &mut Run, end: StepEnd<'_>, following: Option<String>, now: DateTime<Utc>) -> Outcome {
    let StepEnd { step, mut entry, output, mut failed, mut next, wait, on_error } = end;
    if let (Some(message), Some(on_error)) = (&failed, on_error) {
        let code = output.as_ref().map_or(Value::Null, |o| o["error"]["code"].clone());
        run.set_var("error", json!({"step": step, "code": code, "message": message}));
        entry.message = format!("{message}; continuing at `{on_error}`");
        next = Next::Decided(target(Some(on_error), None));
        failed = None;
    }
    if let Some(output) = output {
        run.set_var(step, output);
    }
    run.trace.push(entry);
    run.steps_done += 1;
    run.updated_at = now;
    match (failed, wait) {
        (Some(message), _) => fail(run, format!("step `{step}` failed: {message}"), now),
        (None, Some(waiting)) => {
            run.status = RunStatus::Waiting;
            run.waiting = Some(waiting);
            Outcome::Parked
        }
        (None, None) => advance(run, if let Next::Decided(n) = next { n } else { following }, now),
    }
}

/// A parked run goes on: `entry` says why (a condition held, a timeout, an approval
/// decided), `next` where to.
pub fn resume(run: &mut Run, entry: TraceEntry, next: Option<String>, now: DateTime<Utc>) -> Outcome {
    run.trace.push(entry);
    advance(run, next, now)
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
    use serde_json::json;

    fn run() -> Run {
        serde_json::from_value(serde_json::json!({
            "id": "R-1", "workflow_id": "w", "workflow_revision": 1, "ticket_id": "T-1", "event_id": "E-1",
            "event_type": "ticket.created", "actor": "ann", "status": "waiting", "cursor": "wait",
            "waiting": {"step": "wait"}, "vars": {}, "trace": [],
            "steps_done": 1, "created_at": "2026-11-02T08:00:00Z", "updated_at": "2026-11-02T08:00:00Z"
        }))
        .unwrap()
    }

    fn end<'a>(step: &'a str, next: Next) -> StepEnd<'a> {
        let at = "2026-11-02T09:00:00Z".parse().unwrap();
        StepEnd {
            step,
            entry: TraceEntry::step(at, step, "plugin", "ok", ""),
            output: None,
            failed: None,
            next,
            wait: None,
            on_error: None,
        }
    }

    #[test]
    fn a_finished_step_records_itself_then_moves_the_run() {
        let now = "2026-11-02T09:00:00Z".parse().unwrap();
        let mut r = run();
        let out =
            complete_step(&mut r, StepEnd { output: Some(json!(1)), ..end("a", Next::InOrder) }, Some("b".into()), now);
        assert_eq!(
            (out, r.cursor.as_deref(), r.steps_done, r.vars["a"].clone()),
            (Outcome::Continues, Some("b"), 2, json!(1))
        );
        assert_eq!(complete_step(&mut r, end("b", Next::Decided(None)), Some("c".into()), now), Outcome::Completed);
        let mut r = run();
        let waiting = Waiting { step: "w".into(), deadline: None };
        let parked = complete_step(&mut r, StepEnd { wait: Some(waiting), ..end("w", Next::InOrder) }, None, now);
        assert_eq!((parked, r.status), (Outcome::Parked, RunStatus::Waiting));
        // A failure with `on_error` continues there, with the error in `vars.error`.
        let mut r = run();
        let failed = StepEnd {
            failed: Some("timeout".into()),
            output: Some(json!({"error": {"code": "timeout"}})),
            on_error: Some("recover"),
            ..end("p", Next::InOrder)
        };
        assert_eq!(complete_step(&mut r, failed, Some("next".into()), now), Outcome::Continues);
        assert_eq!((r.cursor.as_deref(), r.vars["error"]["code"].clone()), (Some("recover"), json!("timeout")));
        assert_eq!(r.trace.last().unwrap().message, "timeout; continuing at `recover`");
        let mut r = run();
        let failed = StepEnd { failed: Some("boom".into()), ..end("p", Next::InOrder) };
        assert_eq!(
            complete_step(&mut r, failed, Some("next".into()), now),
            Outcome::Failed("step `p` failed: boom".into())
        );
        assert_eq!(r.trace.last().unwrap().kind, "finished");
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
