//! One module per step type (mini-redis `src/cmd/` style): each owns how its step type
//! executes. This module only holds what they share — the [`Effect`] a step produces
//! before it is committed, the [`Ctx`] it runs in — and dispatches.
//!
//! The fast steps ([`execute`]) compute their effect under the ticket lock from the run,
//! the ticket and store reads; `notify` and `plugin` ([`notify`], [`plugin`]) call the
//! outside world first, outside the ticket lock and without a worker. The driver
//! (`executor/step.rs`) commits whatever they return, and `run::machine` decides where
//! the run goes.

mod approval;
mod assign;
mod branch;
mod child;
mod close;
mod comment;
mod fail;
pub(super) mod notify;
pub(super) mod plugin;
mod resolve;
pub(super) mod route;
mod set;
mod wait;

use super::{Engine, Result};
use crate::run::{machine, Run, TraceEntry};
use crate::store::Write;
use crate::ticket::{Comment, Ticket};
use crate::workflow::condition::Scope;
use crate::workflow::template::{render, render_value};
use crate::workflow::{Action, Step, Workflow};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// What one step did, before it is committed.
pub(in crate::executor) struct Effect {
    pub(in crate::executor) ticket: Option<Ticket>,
    pub(in crate::executor) comment: Option<Comment>,
    pub(in crate::executor) children: Vec<Ticket>,
    pub(in crate::executor) next: Option<String>,
    pub(in crate::executor) entry: TraceEntry,
    pub(in crate::executor) output: Option<Value>,
    pub(in crate::executor) failed: Option<String>,
    pub(in crate::executor) writes: Vec<Write>,
    /// Set by a `wait` or `approval` step: park the run.
    pub(in crate::executor) wait: Option<crate::run::Waiting>,
}

impl Effect {
    pub(super) fn new(step: &Step, now: DateTime<Utc>) -> Self {
        Self {
            ticket: None,
            comment: None,
            children: Vec::new(),
            next: None,
            entry: TraceEntry::step(now, &step.id, step.action.kind(), "ok", ""),
            output: None,
            failed: None,
            writes: Vec::new(),
            wait: None,
        }
    }

    /// The step failed: nothing it changed is kept.
    pub(super) fn fail(mut self, message: impl Into<String>) -> Self {
        self.refuse(message);
        self
    }

    /// [`Effect::fail`] in place.
    pub(in crate::executor) fn refuse(&mut self, message: impl Into<String>) {
        let message = message.into();
        self.entry.outcome = "failed".into();
        self.entry.message = message.clone();
        self.failed = Some(message);
        self.ticket = None;
        self.comment = None;
        self.children.clear();
        self.writes.clear();
    }

    /// The step's end, as the run machine takes it (after the driver has taken the
    /// ticket change, comment, children and writes).
    pub(in crate::executor) fn end(self, step: &Step) -> machine::StepEnd<'_> {
        let decides = matches!(step.action, Action::If { .. } | Action::Wait { .. } | Action::Approval { .. });
        let next = match self.next {
            Some(next) => machine::Next::Decided(Some(next)),
            None if decides => machine::Next::Decided(None),
            None => machine::Next::InOrder,
        };
        let on_error = match &step.action {
            Action::Plugin { on_error, .. } => on_error.as_deref(),
            _ => None,
        };
        machine::StepEnd {
            step: &step.id,
            entry: self.entry,
            output: self.output,
            failed: self.failed,
            next,
            wait: self.wait,
            on_error,
        }
    }

    /// The step had nothing to do.
    fn skipped(mut self, message: impl Into<String>) -> Self {
        self.entry.outcome = "skipped".into();
        self.entry.message = message.into();
        self
    }
}

/// What conditions and templates see: the run's ticket, triggering changes and vars.
pub(in crate::executor) fn scope<'a>(run: &'a Run, ticket: &'a Ticket, now: DateTime<Utc>) -> Scope<'a> {
    Scope {
        ticket,
        changes: &run.changes,
        previous: Some(&run.previous),
        vars: &run.vars,
        event: &run.event_type,
        actor: &run.actor,
        now,
    }
}

/// Where a step runs: the engine (store reads, configuration), the run, its workflow,
/// the step and the ticket as they are now.
pub(super) struct Ctx<'a> {
    engine: &'a Engine,
    run: &'a Run,
    def: &'a Workflow,
    index: usize,
    step: &'a Step,
    ticket: &'a Ticket,
    now: DateTime<Utc>,
    scope: Scope<'a>,
}

impl<'a> Ctx<'a> {
    fn new(engine: &'a Engine, run: &'a Run, def: &'a Workflow, index: usize, ticket: &'a Ticket) -> Self {
        let now = engine.now();
        let step = &def.steps[index];
        Self { engine, run, def, index, step, ticket, now, scope: scope(run, ticket, now) }
    }

    fn effect(&self) -> Effect {
        Effect::new(self.step, self.now)
    }

    /// A template rendered in the run's scope.
    fn render(&self, text: &str) -> String {
        render(text, &self.scope, &self.run.id, &self.run.workflow_id)
    }

    /// A JSON value with its templates rendered in the run's scope.
    fn render_value(&self, value: &Value) -> Value {
        render_value(value, &self.scope, &self.run.id, &self.run.workflow_id)
    }

    /// The author of what the workflow writes.
    fn author(&self) -> String {
        format!("workflow:{}", self.run.workflow_id)
    }
}

/// Whether a step reads and writes only its run and its ticket (no outside call, no
/// routing decision, no parking, no new tickets): it can share its commit with the
/// step before it.
pub(in crate::executor) fn is_local(action: &Action) -> bool {
    matches!(
        action,
        Action::Set { .. }
            | Action::Assign { .. }
            | Action::Comment { .. }
            | Action::Resolve { .. }
            | Action::Close {}
            | Action::Fail { .. }
            | Action::If { .. }
    )
}

impl Engine {
    /// Computes a fast step's effect on the ticket (no I/O but store reads). `route`
    /// takes the group's agents read once by the caller (it locked them).
    pub(in crate::executor) async fn execute(
        &self,
        run: &Run,
        def: &Workflow,
        index: usize,
        ticket: &Ticket,
        agents: Option<Vec<crate::team::Agent>>,
    ) -> Result<Effect> {
        let cx = Ctx::new(self, run, def, index, ticket);
        match &cx.step.action {
            Action::Set { fields } => set::execute(&cx, fields),
            Action::Assign { group, agent } => assign::execute(&cx, group.as_deref(), agent.as_deref()).await,
            Action::Route { group, strategy, skills, on_shift_only } => {
                let agents = match agents {
                    Some(agents) => agents,
                    None => route::members(self, group).await?,
                };
                route::execute(
                    &cx,
                    route::Request { group, strategy: *strategy, skills, on_shift_only: *on_shift_only },
                    agents,
                )
                .await
            }
            Action::Comment { body, internal } => Ok(comment::execute(&cx, body, *internal)),
            Action::Resolve { resolution } => Ok(resolve::execute(&cx, resolution.as_deref())),
            Action::Close {} => Ok(close::execute(&cx)),
            Action::Fail { reason } => Ok(fail::execute(&cx, reason)),
            Action::CreateChild { ticket: spec } => child::execute(&cx, spec).await,
            Action::If { condition, then, otherwise } => {
                Ok(branch::execute(&cx, condition, then, otherwise.as_deref()))
            }
            Action::Approval { stages, .. } => approval::execute(&cx, stages).await,
            Action::Wait { minutes, business, calendar, at, timezone, on_timeout, .. } => {
                wait::execute(
                    &cx,
                    wait::Spec {
                        minutes: *minutes,
                        business: *business,
                        calendar: calendar.as_deref(),
                        at: at.as_deref(),
                        timezone: timezone.as_deref(),
                        on_timeout: on_timeout.as_deref(),
                    },
                )
                .await
            }
            // Notify and plugin steps are executed before the ticket lock is taken; see `step`.
            Action::Notify { .. } | Action::Plugin { .. } => {
                Ok(cx.effect().fail("slow step reached the wrong executor path"))
            }
        }
    }
}
