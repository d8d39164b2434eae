//! Driving a run: one step at a time, each committed with its effects. What a step
//! does is its type's module in `steps`; where the run goes is `run::machine`.

use super::{steps, Engine, Error, Result};
use crate::run::{machine, Cause, EventKind, Run, RunStatus};
use crate::store::{Tx, Write};
use crate::ticket::{fields, Ticket};
use crate::workflow::{Action, Workflow};
use std::sync::Arc;

/// How many times in a row a step is retried after a write conflict before its run is
/// left for recovery (a restart, or another node).
const MAX_CONFLICTS: u32 = 8;

impl Engine {
    /// Drives a run until it finishes, fails, or the engine stops. The run holds one of
    /// the `workers` while it computes and applies a step, but not while it waits: not
    /// while a plugin or webhook step waits on the outside world (a hanging endpoint or
    /// plugin then stalls only its own runs, not every worker), and not while its
    /// commit waits for the flush.
    pub(super) async fn drive(self: &Arc<Self>, run_id: &str) -> Result<()> {
        let mut worker = Some(self.worker().await?);
        // The run is read (header + journal, folded) once; after that the driver keeps it
        // in memory: while a run is pending or running, its driver is its only writer.
        let Some(mut run) = self.store.run(run_id).await? else { return Ok(()) };
        let mut conflicts = 0;
        loop {
            if self.runtime.stopping() || !run.status.is_active() {
                return Ok(());
            }
            let def = self.definition(&run.workflow_id, run.workflow_revision).await?;
            // Every line logged while the step runs names its run, workflow and ticket.
            let span = tracing::info_span!("run", run = %run.id, workflow = %run.workflow_id, ticket = %run.ticket_id);
            match tracing::Instrument::instrument(self.step(run, &def, &mut worker), span).await {
                Ok(Some(next)) => (run, conflicts) = (next, 0),
                Ok(None) => return Ok(()),
                // Another writer (another node) changed the ticket or the run between
                // the step's reads and its commit: nothing of the step was written, so it
                // is taken again from a fresh read (a notify or plugin step calls out
                // again: at least once, as after a crash).
                Err(Error::Store(crate::store::Error::Conflict(what))) if conflicts < MAX_CONFLICTS => {
                    conflicts += 1;
                    tracing::info!(run = %run_id, %what, attempt = conflicts, "step met a concurrent write; retrying it");
                    let Some(fresh) = self.store.run(run_id).await? else { return Ok(()) };
                    run = fresh;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Counts a run that a transition ended (`/metrics`).
    pub(super) fn count_end(&self, run: &Run, outcome: &machine::Outcome) {
        match outcome {
            machine::Outcome::Continues | machine::Outcome::Parked => {}
            machine::Outcome::Completed => self.metrics.run(&run.workflow_id, "completed"),
            machine::Outcome::Failed(_) => self.metrics.run(&run.workflow_id, "failed"),
        }
    }

    /// Executes the run's next step, and the local steps that follow it, and commits them
    /// as one transaction. Returns the run, as stored, when more steps follow.
    async fn step(
        self: &Arc<Self>,
        mut run: Run,
        def: &Workflow,
        worker: &mut Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Option<Run>> {
        let timing = std::time::Instant::now();
        let Some(step_id) = run.cursor.clone() else {
            self.finish(run, RunStatus::Completed, None).await?;
            return Ok(None);
        };
        let Some(index) = def.step_index(&step_id) else {
            self.finish(run, RunStatus::Failed, Some(format!("step `{step_id}` does not exist in revision"))).await?;
            return Ok(None);
        };
        if run.steps_done >= self.config.max_steps_per_run {
            let msg = format!("run executed {} steps, the limit (max_steps_per_run)", run.steps_done);
            self.finish(run, RunStatus::Failed, Some(msg)).await?;
            return Ok(None);
        }
        let step = &def.steps[index];
        // Slow outbound calls happen before the ticket is locked, and without a worker.
        if matches!(step.action, Action::Notify { .. } | Action::Plugin { .. }) {
            worker.take();
        }
        let delivery = match &step.action {
            Action::Notify { url, secret, payload } => {
                let Some(ticket) = self.run_ticket(&run).await? else {
                    self.finish(run, RunStatus::Failed, Some("ticket no longer exists".into())).await?;
                    return Ok(None);
                };
                Some(self.notify(&run, &ticket, step, url, secret.as_deref(), payload.as_ref()).await)
            }
            Action::Plugin { plugin, action, input, retries, backoff_ms, max_backoff_ms, .. } => {
                let Some(ticket) = self.run_ticket(&run).await? else {
                    self.finish(run, RunStatus::Failed, Some("ticket no longer exists".into())).await?;
                    return Ok(None);
                };
                let policy =
                    steps::plugin::Backoff { retries: *retries, first_ms: *backoff_ms, max_ms: *max_backoff_ms };
                Some(self.call_plugin(&run, &ticket, step, plugin, action, input, policy).await?)
            }
            _ => None,
        };
        if worker.is_none() {
            *worker = Some(self.worker().await?);
        }
        // A run with no ticket locks only itself.
        let lock_key = if run.ticket_id.is_empty() { &run.id } else { &run.ticket_id };
        let _ticket_guard = self.locks.lock(lock_key).await;
        // A route step locks its group (the round-robin cursor) and the group's agents
        // (their load against capacity), read once and handed to the step.
        let (_routing_guard, members) = match &step.action {
            Action::Route { group, .. } => {
                let members = steps::route::members(self, group).await?;
                let keys: Vec<String> = std::iter::once(format!("g:{group}"))
                    .chain(members.iter().map(|a| format!("a:{}", a.id)))
                    .collect();
                (Some(self.routing.lock_all(keys.iter().map(String::as_str)).await), Some(members))
            }
            _ => (None, None),
        };
        let Some(mut ticket) = self.run_ticket(&run).await? else {
            self.finish(run, RunStatus::Failed, Some("ticket no longer exists".into())).await?;
            return Ok(None);
        };
        let mut effect = match delivery {
            Some(Ok(effect)) | Some(Err(effect)) => effect,
            None => self.execute(&run, def, index, &ticket, members).await?,
        };
        // A segment: this step and the local steps that follow it (they read and write
        // only the ticket and the run) commit as one transaction, under the one ticket
        // lock, with the run header and the ticket written once.
        let mut tx = Tx::new();
        let mut new_runs = Vec::new();
        let mut request = None;
        let mut timings = Vec::new();
        let (mut index, mut step, mut timing) = (index, step, timing);
        let outcome = loop {
            self.guard_effect(&run, &ticket, step, &mut effect).await?;
            let now = self.now();
            let creates_children = !effect.children.is_empty();
            if let Some(mut after) = effect.ticket.take() {
                new_runs.extend(self.commit_ticket_change(&mut tx, &run, &ticket, &mut after, &mut effect).await?);
                ticket = after;
            }
            new_runs.extend(self.commit_children(&mut tx, &run, &mut effect.children).await?);
            tx.writes.append(&mut effect.writes);
            let approval_id = effect.entry.detail.get("approval").and_then(|v| v.as_str()).map(String::from);
            let outcome = machine::complete_step(&mut run, effect.end(step), def.following(index), now);
            timings.push((step.action.kind(), timing.elapsed().as_secs_f64()));
            if let Some(deadline) =
                run.waiting.as_ref().and_then(|w| w.deadline).filter(|_| outcome == machine::Outcome::Parked)
            {
                tx.push(Write::Timer(crate::store::Timer {
                    key: format!("run:{}", run.id),
                    due: deadline,
                    kind: crate::store::TimerKind::ResumeRun { run: run.id.clone() },
                }));
            }
            if let (Action::Approval { notify_url: Some(url), .. }, Some(id)) = (&step.action, approval_id) {
                request = Some((id, url.clone()));
            }
            // The next step joins the segment when it is local and nothing this step
            // wrote needs to be visible to it through the store (children are counted
            // from the store).
            let next = run.cursor.as_deref().and_then(|id| def.step_index(id));
            let Some(next) = next.filter(|&n| {
                outcome == machine::Outcome::Continues
                    && !creates_children
                    && steps::is_local(&def.steps[n].action)
                    && run.steps_done < self.config.max_steps_per_run
                    && !self.runtime.stopping()
            }) else {
                break outcome;
            };
            (index, step, timing) = (next, &def.steps[next], std::time::Instant::now());
            effect = self.execute(&run, def, index, &ticket, None).await?;
        };
        let more = outcome == machine::Outcome::Continues;
        let ended = matches!(run.status, RunStatus::Completed | RunStatus::Failed).then(|| outcome_of(&run));
        tx.run(&mut run);
        let durable = self.store.apply(tx).await?;
        // Counted once applied: a step retried after a conflict counts once.
        self.count_end(&run, &outcome);
        for (kind, seconds) in timings {
            self.metrics.step(kind, seconds);
        }
        // The writes are visible now: the next step on this ticket, the next routing
        // decision (the routing locks of its group and agents) and other runs can go on while the flush
        // completes, since the store keeps durability in apply order. Run throughput in
        // the benchmark did not change with this (it is CPU-bound); a route step no longer
        // blocks every other route step for a flush.
        drop(_routing_guard);
        drop(_ticket_guard);
        worker.take();
        durable.await?;
        if let Some(o) = ended {
            o.log();
        }
        self.after_commit(&new_runs);
        if let Some((id, url)) = request {
            self.spawn_approval_request(id, url, false);
        }
        Ok(more.then_some(run))
    }

    /// Refuses an effect that would close a ticket before its open children, or that
    /// needs a ticket when the run has none: the step fails instead.
    async fn guard_effect(
        &self,
        run: &Run,
        ticket: &Ticket,
        step: &crate::workflow::Step,
        effect: &mut steps::Effect,
    ) -> Result<()> {
        if let Some(next) = effect.ticket.as_ref().filter(|n| ticket.status.is_open() && !n.status.is_open()) {
            let open = self.open_children(next).await?;
            if !open.is_empty() {
                let msg = format!(
                    "{} has open child tickets ({}): it cannot be {} before them (wait until ticket.open_children is 0)",
                    ticket.id,
                    open.join(", "),
                    next.status
                );
                effect.refuse(msg);
            }
        }
        if run.ticket_id.is_empty() && (effect.ticket.is_some() || !effect.children.is_empty()) {
            // Validation refuses such workflows; a stored one from before still fails cleanly.
            let msg = format!("`{}` needs a ticket and this run has none", step.action.kind());
            effect.refuse(msg);
        }
        Ok(())
    }

    /// Writes a step's change to its run's ticket, with the events it raises (an update
    /// when fields changed, a comment when it added one). Returns the runs they start.
    async fn commit_ticket_change(
        &self,
        tx: &mut Tx,
        run: &Run,
        before: &Ticket,
        after: &mut Ticket,
        effect: &mut steps::Effect,
    ) -> Result<Vec<String>> {
        let (actor, causation) = (format!("workflow:{}", run.workflow_id), causation(run));
        let mut new_runs = Vec::new();
        let changes = fields::diff(before, after);
        effect.entry.changes = changes.clone();
        tx.ticket(Some(before), after);
        if !changes.is_empty() {
            let (_, runs) = self.raise(tx, after, EventKind::Updated, changes, None, &actor, &causation, None).await?;
            new_runs.extend(runs);
        }
        if let Some(comment) = effect.comment.take() {
            let (_, runs) = self
                .raise(tx, after, EventKind::CommentAdded, Vec::new(), Some(comment), &actor, &causation, None)
                .await?;
            new_runs.extend(runs);
        }
        Ok(new_runs)
    }

    /// Writes the tickets a step created, each with its `created` event.
    async fn commit_children(&self, tx: &mut Tx, run: &Run, children: &mut [Ticket]) -> Result<Vec<String>> {
        let (actor, causation) = (format!("workflow:{}", run.workflow_id), causation(run));
        let mut new_runs = Vec::new();
        for child in children {
            tx.ticket(None, child);
            let (_, runs) =
                self.raise(tx, child, EventKind::Created, Vec::new(), None, &actor, &causation, None).await?;
            new_runs.extend(runs);
        }
        Ok(new_runs)
    }

    /// The run's ticket: the stored one, or a blank one for a run that has no ticket.
    async fn run_ticket(&self, run: &Run) -> Result<Option<Ticket>> {
        if run.ticket_id.is_empty() {
            return Ok(Some(Ticket::placeholder(run.created_at)));
        }
        Ok(self.store.ticket(&run.ticket_id).await?)
    }

    async fn finish(&self, mut run: Run, status: RunStatus, error: Option<String>) -> Result<()> {
        let now = self.now();
        let outcome = match (status, error) {
            (RunStatus::Completed, _) => machine::advance(&mut run, None, now),
            (_, error) => machine::fail(&mut run, error.unwrap_or_default(), now),
        };
        self.count_end(&run, &outcome);
        let ended = outcome_of(&run);
        let mut tx = Tx::new();
        tx.run(&mut run);
        self.store.commit(tx).await.map_err(Error::from)?;
        ended.log();
        Ok(())
    }
}

/// The chain of runs that led to what a run does, this run last.
fn causation(run: &Run) -> Vec<Cause> {
    let mut c = run.causation.clone();
    c.push(Cause { workflow_id: run.workflow_id.clone(), run_id: run.id.clone(), event_id: run.event_id.clone() });
    c
}

/// A finished run, for its one log line.
struct Ended {
    run: String,
    ticket: String,
    workflow: String,
    failed: Option<String>,
}

fn outcome_of(run: &Run) -> Ended {
    Ended {
        run: run.id.clone(),
        ticket: run.ticket_id.clone(),
        workflow: run.workflow_id.clone(),
        failed: (run.status == RunStatus::Failed).then(|| run.error.clone().unwrap_or_default()),
    }
}

impl Ended {
    /// One line per run outcome: INFO when it completed, WARN when it failed.
    fn log(&self) {
        match &self.failed {
            None => tracing::info!(run = %self.run, ticket = %self.ticket, workflow = %self.workflow, "run completed"),
            Some(e) => {
                tracing::warn!(run = %self.run, ticket = %self.ticket, workflow = %self.workflow, error = %e, "run failed")
            }
        }
    }
}
