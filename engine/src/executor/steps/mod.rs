//! One module per step type (mini-redis `src/cmd/` style): each owns how its step type
//! executes. This module only holds what they share — the [`Effect`] a step produces
//! before it is committed, the [`Ctx`] it runs in — and dispatches.
//!
//! The fast steps go in two phases under the ticket lock: **load** ([`Engine::load`]:
//! the store reads a step type needs — the group's agents, their load and the round-robin
//! cursor for `route`, the calendar for `wait`, the id of what it creates — each module's
//! `load`), then **plan** ([`plan`]: each module's pure `plan` over the run, the ticket
//! and that [`Context`]; it cannot reach the store, its type has none). `notify` and
//! `plugin` ([`notify`], [`plugin`]) call the outside world first, outside the ticket lock
//! and without a worker. The driver (`executor/step.rs`) commits whatever they return,
//! and `run::machine` decides where the run goes; a dry run plans with the same modules
//! over a context whose ids are placeholders ([`Ids::Placeholder`]).

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
use crate::config::Config;
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

/// What a step is planned from: the configuration, the run, its workflow, the step and
/// the ticket as they are now (no store: what a plan reads from it is its [`Context`]).
pub(super) struct Ctx<'a> {
    config: &'a Config,
    run: &'a Run,
    def: &'a Workflow,
    index: usize,
    step: &'a Step,
    ticket: &'a Ticket,
    now: DateTime<Utc>,
    scope: Scope<'a>,
}

impl<'a> Ctx<'a> {
    fn new(
        config: &'a Config,
        now: DateTime<Utc>,
        run: &'a Run,
        def: &'a Workflow,
        index: usize,
        ticket: &'a Ticket,
    ) -> Self {
        let step = &def.steps[index];
        Self { config, run, def, index, step, ticket, now, scope: scope(run, ticket, now) }
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

/// How the ids of what a step creates (a child ticket, an approval) are found.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::executor) enum Ids {
    /// Allocated from the store (a real run).
    Allocate,
    /// Named but not allocated (a dry run creates nothing).
    Placeholder,
}

/// What a fast step's plan reads from the store, loaded before it is planned.
pub(in crate::executor) enum Context {
    /// The step reads nothing but the run and the ticket.
    Nothing,
    Assign(assign::Context),
    Route(route::Context),
    Child(child::Context),
    Wait(wait::Context),
    Approval(approval::Context),
}

impl Engine {
    /// Loads what the step at `index` plans from. `route` takes the group's agents read
    /// once by the caller (it locked them).
    pub(in crate::executor) async fn load(
        &self,
        def: &Workflow,
        index: usize,
        ticket: &Ticket,
        agents: Option<Vec<crate::team::Agent>>,
        ids: Ids,
    ) -> Result<Context> {
        Ok(match &def.steps[index].action {
            Action::Assign { group, agent } => {
                Context::Assign(assign::load(self, group.as_deref(), agent.as_deref()).await?)
            }
            Action::Route { group, .. } => {
                let agents = match agents {
                    Some(agents) => agents,
                    None => route::members(self, group).await?,
                };
                Context::Route(route::load(self, group, agents).await?)
            }
            Action::CreateChild { .. } => Context::Child(child::load(self, ids).await?),
            Action::Wait { minutes: Some(_), business: true, calendar, .. } => {
                Context::Wait(wait::load(self, calendar.as_deref(), ticket).await?)
            }
            Action::Approval { stages, .. } => Context::Approval(approval::load(self, stages, ticket, ids).await?),
            _ => Context::Nothing,
        })
    }

    /// Computes a fast step's effect on the ticket: [`Engine::load`], then [`plan`].
    pub(in crate::executor) async fn execute(
        &self,
        run: &Run,
        def: &Workflow,
        index: usize,
        ticket: &Ticket,
        agents: Option<Vec<crate::team::Agent>>,
    ) -> Result<Effect> {
        let context = self.load(def, index, ticket, agents, Ids::Allocate).await?;
        Ok(plan(&self.config, self.now(), run, def, index, ticket, context))
    }
}

/// A fast step's effect, decided from its [`Context`] alone: pure, no store, no I/O.
pub(in crate::executor) fn plan(
    config: &Config,
    now: DateTime<Utc>,
    run: &Run,
    def: &Workflow,
    index: usize,
    ticket: &Ticket,
    context: Context,
) -> Effect {
    let cx = Ctx::new(config, now, run, def, index, ticket);
    match (&cx.step.action, context) {
        (Action::Set { fields }, _) => set::plan(&cx, fields),
        (Action::Assign { group, agent }, Context::Assign(loaded)) => {
            assign::plan(&cx, group.as_deref(), agent.as_deref(), loaded)
        }
        (Action::Route { group, strategy, skills, on_shift_only }, Context::Route(loaded)) => route::plan(
            &cx,
            route::Request { group, strategy: *strategy, skills, on_shift_only: *on_shift_only },
            loaded,
        ),
        (Action::Comment { body, internal }, _) => comment::plan(&cx, body, *internal),
        (Action::Resolve { resolution }, _) => resolve::plan(&cx, resolution.as_deref()),
        (Action::Close {}, _) => close::plan(&cx),
        (Action::Fail { reason }, _) => fail::plan(&cx, reason),
        (Action::CreateChild { ticket: spec }, Context::Child(loaded)) => child::plan(&cx, spec, loaded),
        (Action::If { condition, then, otherwise }, _) => branch::plan(&cx, condition, then, otherwise.as_deref()),
        (Action::Approval { stages, .. }, Context::Approval(loaded)) => approval::plan(&cx, stages, loaded),
        (Action::Wait { minutes, business, at, timezone, on_timeout, .. }, context) => wait::plan(
            &cx,
            wait::Spec {
                minutes: *minutes,
                business: *business,
                at: at.as_deref(),
                timezone: timezone.as_deref(),
                on_timeout: on_timeout.as_deref(),
            },
            match context {
                Context::Wait(loaded) => loaded,
                _ => wait::Context::default(),
            },
        ),
        // Notify and plugin steps are performed before the ticket lock is taken; see `step`.
        (Action::Notify { .. } | Action::Plugin { .. }, _) => {
            cx.effect().fail("slow step reached the wrong executor path")
        }
        (_, _) => cx.effect().fail("the step's context was loaded for another step type"),
    }
}
