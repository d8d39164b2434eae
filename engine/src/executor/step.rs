//! Driving a run: one step at a time, each committed with its effects. What a step
//! does is its type's module in `steps`; where the run goes is `run::machine`.

use super::{steps, Engine, Error, Result};
use crate::run::{machine, Cause, EventKind, Run, RunStatus};
use crate::store::{Tx, Write};
use crate::ticket::{fields, Ticket};
use crate::workflow::{Action, Workflow};
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
        let Some(mut run) = self.store.run(run_id)? else { return Ok(()) };
        loop {
            if self.stopping.load(Ordering::SeqCst) || !run.status.is_active() {
                return Ok(());
            }
            let def = self.definition(&run.workflow_id, run.workflow_revision)?;
            // Every line logged while the step runs names its run, workflow and ticket.
            let span = tracing::info_span!("run", run = %run.id, workflow = %run.workflow_id, ticket = %run.ticket_id);
            match tracing::Instrument::instrument(self.step(run, &def, &mut worker), span).await? {
                Some(next) => run = next,
                None => return Ok(()),
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

    /// Sleeps for `d` unless the engine stops first; returns whether the time passed.
    pub(super) async fn pause(&self, d: std::time::Duration) -> bool {
        let stopping = self.stop_signal.notified();
        if self.stopping.load(Ordering::SeqCst) {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = stopping => false,
        }
    }

    async fn worker(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.workers.clone().acquire_owned().await.map_err(|_| Error::Conflict("the engine is stopping".into()))
    }

    /// Executes the run's next step and commits it. Returns the run, as stored, when more
    /// steps follow.
    async fn step(
        self: &Arc<Self>,
        mut run: Run,
        def: &Workflow,
        worker: &mut Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Option<Run>> {
        let timing = std::time::Instant::now();
        let now = self.now();
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
                let Some(ticket) = self.run_ticket(&run)? else {
                    self.finish(run, RunStatus::Failed, Some("ticket no longer exists".into())).await?;
                    return Ok(None);
                };
                Some(self.notify(&run, &ticket, step, url, secret.as_deref(), payload.as_ref()).await)
            }
            Action::Plugin { plugin, action, input, retries, backoff_ms, max_backoff_ms, .. } => {
                let Some(ticket) = self.run_ticket(&run)? else {
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
                let members = steps::route::members(self, group)?;
                let keys: Vec<String> = std::iter::once(format!("g:{group}"))
                    .chain(members.iter().map(|a| format!("a:{}", a.id)))
                    .collect();
                (Some(self.routing.lock_all(keys.iter().map(String::as_str)).await), Some(members))
            }
            _ => (None, None),
        };
        let Some(ticket) = self.run_ticket(&run)? else {
            self.finish(run, RunStatus::Failed, Some("ticket no longer exists".into())).await?;
            return Ok(None);
        };
        let mut effect = match delivery {
            Some(Ok(effect)) | Some(Err(effect)) => effect,
            None => self.execute(&run, def, index, &ticket, members)?,
        };
        if let Some(next) = effect.ticket.as_ref().filter(|n| ticket.status.is_open() && !n.status.is_open()) {
            let open = self.open_children(next)?;
            if !open.is_empty() {
                let msg = format!(
                    "{} has open child tickets ({}): it cannot be {} before them (wait until ticket.open_children is 0)",
                    ticket.id,
                    open.join(", "),
                    next.status
                );
                effect = effect.fail(msg);
            }
        }
        if run.ticket_id.is_empty() && (effect.ticket.is_some() || !effect.children.is_empty()) {
            // Validation refuses such workflows; a stored one from before still fails cleanly.
            effect = effect.fail(format!("`{}` needs a ticket and this run has none", step.action.kind()));
        }

        let mut tx = Tx::new();
        let mut new_runs = Vec::new();
        let causation = {
            let mut c = run.causation.clone();
            c.push(Cause {
                workflow_id: run.workflow_id.clone(),
                run_id: run.id.clone(),
                event_id: run.event_id.clone(),
            });
            c
        };
        let actor = format!("workflow:{}", run.workflow_id);
        if let Some(after) = &effect.ticket {
            let changes = fields::diff(&ticket, after);
            effect.entry.changes = changes.clone();
            tx.ticket(Some(&ticket), after);
            if !changes.is_empty() {
                let (_, runs) =
                    self.raise(&mut tx, after, EventKind::Updated, changes, None, &actor, &causation, None)?;
                new_runs.extend(runs);
            }
            if let Some(comment) = effect.comment.take() {
                let (_, runs) = self.raise(
                    &mut tx,
                    after,
                    EventKind::CommentAdded,
                    Vec::new(),
                    Some(comment),
                    &actor,
                    &causation,
                    None,
                )?;
                new_runs.extend(runs);
            }
        }
        for child in &effect.children {
            tx.ticket(None, child);
            let (_, runs) =
                self.raise(&mut tx, child, EventKind::Created, Vec::new(), None, &actor, &causation, None)?;
            new_runs.extend(runs);
        }
        tx.writes.append(&mut effect.writes);
        let approval_id = effect.entry.detail.get("approval").and_then(|v| v.as_str()).map(String::from);
        let outcome = machine::complete_step(&mut run, effect.end(step), def.following(index), now);
        self.count_end(&run, &outcome);
        if let Some(deadline) =
            run.waiting.as_ref().and_then(|w| w.deadline).filter(|_| outcome == machine::Outcome::Parked)
        {
            tx.push(Write::Timer(crate::store::Timer {
                key: format!("run:{}", run.id),
                due: deadline,
                kind: crate::store::TimerKind::ResumeRun { run: run.id.clone() },
            }));
        }
        let more = outcome == machine::Outcome::Continues;
        let request = match (&step.action, approval_id) {
            (Action::Approval { notify_url: Some(url), .. }, Some(id)) => Some((id, url.clone())),
            _ => None,
        };
        let ended = matches!(run.status, RunStatus::Completed | RunStatus::Failed).then(|| outcome_of(&run));
        tx.run(&mut run);
        let durable = self.store.apply(tx)?;
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
        self.metrics.step(step.action.kind(), timing.elapsed().as_secs_f64());
        self.after_commit(&new_runs);
        if let Some((id, url)) = request {
            self.spawn_approval_request(id, url, false);
        }
        Ok(more.then_some(run))
    }

    /// The run's ticket: the stored one, or a blank one for a run that has no ticket.
    fn run_ticket(&self, run: &Run) -> Result<Option<Ticket>> {
        if run.ticket_id.is_empty() {
            return Ok(Some(Ticket::placeholder(run.created_at)));
        }
        Ok(self.store.ticket(&run.ticket_id)?)
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
