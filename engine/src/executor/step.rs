//! Driving a run: one step at a time, each committed with its effects.

use super::{Engine, Error, Result};
use crate::routing::{self, Request};
use crate::run::{machine, Cause, EventKind, Run, RunStatus, TraceEntry};
use crate::store::{Tx, Write};
use crate::ticket::{fields, Comment, Link, LinkKind, NewTicket, Status, Ticket};
use crate::workflow::condition::Scope;
use crate::workflow::template::{render, render_value};
use crate::workflow::{Action, Step, Workflow};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What one step did, before it is committed.
pub(super) struct Effect {
    pub(super) ticket: Option<Ticket>,
    pub(super) comment: Option<Comment>,
    pub(super) children: Vec<Ticket>,
    pub(super) next: Option<String>,
    pub(super) entry: TraceEntry,
    pub(super) output: Option<Value>,
    pub(super) failed: Option<String>,
    pub(super) writes: Vec<Write>,
    /// Set by a `wait` step: park the run.
    pub(super) wait: Option<crate::run::Waiting>,
}

impl Effect {
    fn new(step: &Step, now: chrono::DateTime<chrono::Utc>) -> Self {
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

    fn fail(mut self, message: impl Into<String>) -> Self {
        let message = message.into();
        self.entry.outcome = "failed".into();
        self.entry.message = message.clone();
        self.failed = Some(message);
        self.ticket = None;
        self.comment = None;
        self.children.clear();
        self.writes.clear();
        self
    }
}

/// A plugin step's retry policy: `retries` extra attempts, waiting `first_ms`, then
/// twice as long each time, at most `max_ms`.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    retries: u32,
    first_ms: u64,
    max_ms: u64,
}

impl Backoff {
    /// The wait after the `attempt`-th attempt failed (from 1).
    fn wait_ms(self, attempt: u32) -> u64 {
        self.first_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(30)).min(self.max_ms)
    }
}

/// What a run's conditions and templates see: its ticket, triggering changes and vars.
pub(super) fn scope<'a>(run: &'a Run, ticket: &'a Ticket, now: chrono::DateTime<chrono::Utc>) -> Scope<'a> {
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
            machine::Outcome::Continues => {}
            machine::Outcome::Completed => self.metrics.run(&run.workflow_id, "completed"),
            machine::Outcome::Failed(_) => self.metrics.run(&run.workflow_id, "failed"),
        }
    }

    /// Sleeps for `d` unless the engine stops first; returns whether the time passed.
    async fn pause(&self, d: std::time::Duration) -> bool {
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
                let policy = Backoff { retries: *retries, first_ms: *backoff_ms, max_ms: *max_backoff_ms };
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
        let _routing_guard = match &step.action {
            Action::Route { group, .. } => {
                let members = self.store.agents()?.into_iter().filter(|a| a.groups.contains(group));
                let keys: Vec<String> =
                    std::iter::once(format!("g:{group}")).chain(members.map(|a| format!("a:{}", a.id))).collect();
                Some(self.routing.lock_all(keys.iter().map(String::as_str)).await)
            }
            _ => None,
        };
        let Some(ticket) = self.run_ticket(&run)? else {
            self.finish(run, RunStatus::Failed, Some("ticket no longer exists".into())).await?;
            return Ok(None);
        };
        let mut effect = match delivery {
            Some(Ok(effect)) | Some(Err(effect)) => effect,
            None => self.execute(&run, def, index, &ticket)?,
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
        if let (Some(message), Action::Plugin { on_error: Some(target), .. }) = (&effect.failed, &step.action) {
            // The step failed for good, and the workflow says where to go: continue there.
            let code = effect.output.as_ref().map_or(Value::Null, |o| o["error"]["code"].clone());
            run.set_var("error", json!({"step": step.id, "code": code, "message": message}));
            effect.entry.message = format!("{message}; continuing at `{target}`");
            effect.failed = None;
            effect.next = machine::target(Some(target), None);
        } else if effect.failed.is_none()
            && effect.next.is_none()
            && !matches!(step.action, Action::If { .. } | Action::Wait { .. } | Action::Approval { .. })
        {
            effect.next = def.following(index);
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
        if let Some(output) = effect.output.take() {
            run.set_var(&step.id, output);
        }
        let approval_id = effect.entry.detail.get("approval").and_then(|v| v.as_str()).map(String::from);
        run.trace.push(effect.entry);
        run.steps_done += 1;
        run.updated_at = now;
        let waiting = effect.wait.take();
        let more = match effect.failed {
            None if waiting.is_some() => {
                if let Some(deadline) = waiting.as_ref().and_then(|w| w.deadline) {
                    tx.push(Write::Timer(crate::store::Timer {
                        key: format!("run:{}", run.id),
                        due: deadline,
                        kind: crate::store::TimerKind::ResumeRun { run: run.id.clone() },
                    }));
                }
                run.status = RunStatus::Waiting;
                run.waiting = waiting;
                false
            }
            Some(msg) => {
                let outcome = machine::fail(&mut run, format!("step `{}` failed: {msg}", step.id), now);
                self.count_end(&run, &outcome);
                false
            }
            None => {
                let outcome = machine::advance(&mut run, effect.next, now);
                self.count_end(&run, &outcome);
                !outcome.ended()
            }
        };
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

    async fn notify(
        &self,
        run: &Run,
        ticket: &Ticket,
        step: &Step,
        url: &str,
        secret: Option<&str>,
        payload: Option<&Value>,
    ) -> std::result::Result<Effect, Effect> {
        let effect = Effect::new(step, self.now());
        let name = secret.unwrap_or("default");
        let Some(key) = self.config.secrets.get(name) else {
            return Err(effect.fail(format!("signing secret `{name}` is not configured (config `secrets.{name}`)")));
        };
        let scope = scope(run, ticket, self.now());
        let body = match payload {
            Some(p) => render_value(p, &scope, &run.id, &run.workflow_id),
            None => json!({"event": run.event_type, "run": run.id, "workflow": run.workflow_id, "ticket": ticket}),
        };
        let delivery_id = format!("{}/{}", run.id, step.id);
        let delivery = self.notifier.send(url, key.as_bytes(), &delivery_id, &body, self.now().timestamp()).await;
        let mut effect = effect;
        let detail = json!({"url": url, "delivery": delivery_id, "status": delivery.status,
            "attempts": delivery.attempts, "log": delivery.log});
        effect.entry.detail = detail.clone();
        effect.output = Some(json!({"status": delivery.status, "delivery": delivery_id}));
        self.metrics.outbound("notify", if delivery.ok { "delivered" } else { "dead_lettered" });
        if delivery.ok {
            effect.entry.message = format!("delivered to {url} ({}, attempt {})", delivery.status, delivery.attempts);
            Ok(effect)
        } else {
            let err = delivery.error.clone().unwrap_or_else(|| "not delivered".into());
            let letter = crate::notify::DeadLetter {
                id: delivery_id.replace('/', "-"),
                url: url.to_string(),
                secret: name.to_string(),
                delivery: delivery_id.clone(),
                body,
                run: run.id.clone(),
                step: step.id.clone(),
                ticket: run.ticket_id.clone(),
                at: self.now(),
                attempts: delivery.log,
                error: err.clone(),
                resent: None,
            };
            let mut failed = effect.fail(format!(
                "webhook to {url} failed after {} attempt(s): {err}; dead-lettered as {}",
                delivery.attempts, letter.id
            ));
            failed.entry.detail = detail;
            failed.writes.push(crate::store::Write::Doc {
                kind: crate::store::DocKind::DeadLetter,
                id: letter.id.clone(),
                value: serde_json::to_vec(&letter).ok(),
            });
            Err(failed)
        }
    }

    /// Calls a plugin, retrying retryable errors as `policy` says. The outer error means
    /// the engine is stopping during a wait between attempts: the step is left undone, and
    /// the run resumes at it after the restart (the idempotency key stays the same).
    #[allow(clippy::too_many_arguments)]
    async fn call_plugin(
        &self,
        run: &Run,
        ticket: &Ticket,
        step: &Step,
        plugin: &str,
        action: &str,
        input: &Value,
        policy: Backoff,
    ) -> Result<std::result::Result<Effect, Effect>> {
        let mut effect = Effect::new(step, self.now());
        let input = render_value(input, &scope(run, ticket, self.now()), &run.id, &run.workflow_id);
        let ticket_json = serde_json::to_value(ticket).unwrap_or(Value::Null);
        let mut attempts = 0;
        let mut waits_ms: Vec<u64> = Vec::new();
        loop {
            attempts += 1;
            let ctx = crate::plugin::CallContext {
                ticket: ticket_json.clone(),
                idempotency_key: Some(format!("{}/{}/{}", run.id, step.id, run.steps_done)),
            };
            let timing = std::time::Instant::now();
            let result = self.plugins.call(plugin, action, input.clone(), ctx).await;
            let code = result.as_ref().err().map(|e| e.code.clone());
            self.metrics.plugin_call(plugin, timing.elapsed().as_secs_f64(), code.as_deref());
            match result {
                Ok(out) => {
                    effect.entry.message = format!("{plugin}.{action} answered in {} µs", out.micros);
                    effect.entry.detail = json!({"plugin": plugin, "version": out.version, "action": action,
                        "attempts": attempts, "waits_ms": waits_ms, "micros": out.micros, "logs": out.logs});
                    effect.output = Some(out.output);
                    // The call's key-value writes commit with the step, or not at all.
                    effect.writes.extend(out.writes);
                    return Ok(Ok(effect));
                }
                Err(e) if e.retryable && attempts <= policy.retries => {
                    // Exponential backoff, or longer if the plugin passed on a Retry-After.
                    let backoff = policy.wait_ms(attempts);
                    let cap = self.config.plugins.max_retry_after_ms.max(policy.max_ms);
                    let wait = e.retry_after_ms.map_or(backoff, |asked| asked.min(cap).max(backoff));
                    tracing::info!(run = %run.id, plugin, action, code = %e.code, attempts, wait_ms = wait, "retryable plugin error; retrying");
                    waits_ms.push(wait);
                    if !self.pause(std::time::Duration::from_millis(wait)).await {
                        return Err(Error::Conflict("the engine is stopping".into()));
                    }
                }
                Err(e) => {
                    let detail = json!({"plugin": plugin, "action": action, "attempts": attempts, "waits_ms": waits_ms,
                        "code": e.code, "retryable": e.retryable, "logs": e.logs});
                    let mut failed = effect.fail(format!("{plugin}.{action}: {}: {}", e.code, e.message));
                    failed.entry.detail = detail;
                    failed.output =
                        Some(json!({"error": {"code": e.code, "message": e.message, "retryable": e.retryable}}));
                    return Ok(Err(failed));
                }
            }
        }
    }

    /// Computes a step's effect on the ticket (no I/O but store reads).
    pub(super) fn execute(&self, run: &Run, def: &Workflow, index: usize, ticket: &Ticket) -> Result<Effect> {
        let step = &def.steps[index];
        let now = self.now();
        let matrix = &self.config.priority_matrix;
        let mut effect = Effect::new(step, now);
        let sc = scope(run, ticket, self.now());
        let rendered = |s: &str| render(s, &sc, &run.id, &run.workflow_id);
        let mut next = ticket.clone();
        match &step.action {
            Action::Set { fields: map } => {
                for (name, value) in map {
                    let value = render_value(value, &sc, &run.id, &run.workflow_id);
                    if let Err(e) = fields::set(&mut next, name, value, matrix, now) {
                        return Ok(effect.fail(e.to_string()));
                    }
                }
                effect.ticket = Some(next);
            }
            Action::Assign { group, agent } => {
                if let Some(g) = group {
                    if self.store.group(g)?.is_none() {
                        return Ok(effect.fail(format!("unknown group `{g}`")));
                    }
                    next.group = Some(g.clone());
                }
                if let Some(a) = agent {
                    if self.store.agent(a)?.is_none() {
                        return Ok(effect.fail(format!("unknown agent `{a}`")));
                    }
                    if let Err(e) = fields::set(&mut next, "assignee", json!(a), matrix, now) {
                        return Ok(effect.fail(e.to_string()));
                    }
                }
                next.updated_at = now;
                effect.output = Some(json!({"group": next.group, "agent": next.assignee}));
                effect.ticket = Some(next);
            }
            Action::Route { group, strategy, skills, on_shift_only } => {
                if self.store.group(group)?.is_none() {
                    return Ok(effect.fail(format!("unknown group `{group}`")));
                }
                let agents: Vec<_> = self.store.agents()?.into_iter().filter(|a| a.groups.contains(group)).collect();
                let mut load = HashMap::new();
                for a in &agents {
                    load.insert(a.id.clone(), self.store.open_load(&a.id)?);
                }
                let cursor = self.store.round_robin_cursor(group)?;
                let decision = routing::choose(&Request {
                    agents: &agents,
                    load: &load,
                    strategy: *strategy,
                    skills,
                    on_shift_only: *on_shift_only,
                    cursor: cursor.as_deref(),
                });
                next.group = Some(group.clone());
                next.updated_at = now;
                let how =
                    serde_json::to_value(strategy).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                match &decision.agent {
                    Some(agent) => {
                        if let Err(e) = fields::set(&mut next, "assignee", json!(agent), matrix, now) {
                            return Ok(effect.fail(e.to_string()));
                        }
                        effect.entry.message = format!("{how} chose {agent} in {group}");
                        if let Some(c) = &decision.cursor {
                            effect.writes.push(Write::RoundRobin { group: group.clone(), agent: c.clone() });
                        }
                    }
                    None => {
                        effect.entry.outcome = "no_agent".into();
                        effect.entry.message = format!("no eligible agent in {group}; left in the group queue");
                    }
                }
                // For notes people read: who got it, or that no one could and what happens now.
                let summary = match &decision.agent {
                    Some(agent) => format!("{agent} ({} in {group})", how.replace('_', " ")),
                    None => format!(
                        "no one in {group} was available (at capacity, off shift or without the skills); the ticket waits unassigned in the {group} queue"
                    ),
                };
                effect.output = Some(json!({"group": group, "agent": decision.agent,
                    "assigned": decision.agent.is_some(), "summary": summary}));
                effect.entry.detail = serde_json::to_value(&decision).unwrap_or(Value::Null);
                effect.ticket = Some(next);
            }
            Action::Comment { body, internal } => {
                let text = rendered(body);
                let author = format!("workflow:{}", run.workflow_id);
                effect.comment = Some(next.add_comment(&author, &text, *internal, now));
                effect.entry.message = format!("added {} comment", if *internal { "an internal" } else { "a public" });
                effect.ticket = Some(next);
            }
            Action::Resolve { resolution } => {
                if next.status == Status::Resolved || next.status == Status::Closed {
                    effect.entry.outcome = "skipped".into();
                    effect.entry.message = format!("already {}", next.status);
                    return Ok(effect);
                }
                if let Err(e) = fields::set(&mut next, "status", json!("resolved"), matrix, now) {
                    return Ok(effect.fail(e.to_string()));
                }
                if let Some(r) = resolution {
                    let author = format!("workflow:{}", run.workflow_id);
                    effect.comment = Some(next.add_comment(&author, &rendered(r), false, now));
                }
                effect.ticket = Some(next);
            }
            Action::Fail { reason } => return Ok(effect.fail(rendered(reason))),
            Action::Close {} => {
                if next.status == Status::Closed {
                    effect.entry.outcome = "skipped".into();
                    effect.entry.message = "already closed".into();
                    return Ok(effect);
                }
                if let Err(e) = fields::set(&mut next, "status", json!("closed"), matrix, now) {
                    return Ok(effect.fail(e.to_string()));
                }
                effect.ticket = Some(next);
            }
            Action::CreateChild { ticket: spec } => {
                let mut spec = render_value(&Value::Object(spec.clone()), &sc, &run.id, &run.workflow_id);
                if let Some(m) = spec.as_object_mut() {
                    m.entry("requester").or_insert_with(|| json!(ticket.requester));
                }
                let new: NewTicket = match serde_json::from_value(spec) {
                    Ok(n) => n,
                    Err(e) => return Ok(effect.fail(format!("child ticket: {e}"))),
                };
                if let Err((p, m)) = new.check() {
                    return Ok(effect.fail(format!("child ticket {p}: {m}")));
                }
                let id = self.store.next_ticket_id()?;
                let mut child = new.into_ticket(id.clone(), matrix, now);
                child.links.push(Link { kind: LinkKind::Parent, ticket: ticket.id.clone() });
                next.links.push(Link { kind: LinkKind::Child, ticket: id.clone() });
                // Counted at once, so a `wait` for the children right after sees this one.
                next.open_children += u32::from(child.status.is_open());
                next.updated_at = now;
                effect.entry.message = format!("created child {id}");
                effect.output = Some(json!({"ticket": id}));
                effect.children.push(child);
                effect.ticket = Some(next);
            }
            Action::If { condition, then, otherwise } => {
                let mut checks = Vec::new();
                let holds = condition.evaluate(&sc, &format!("/steps/{index}/condition"), &mut checks);
                effect.entry.outcome = holds.to_string();
                effect.entry.checks = checks;
                let target = if holds { Some(then.as_str()) } else { otherwise.as_deref() };
                effect.next = machine::target(target, def.following(index));
                effect.entry.message = format!("went to {}", effect.next.as_deref().unwrap_or("end"));
            }
            // Notify is executed before the ticket lock is taken; see `step`.
            Action::Approval { stages, .. } => match self.begin_approval(run, &step.id, stages, ticket, now)? {
                Err(why) => return Ok(effect.fail(why)),
                Ok((tx, approval)) => {
                    effect.writes.extend(tx.writes);
                    let stage = approval.stage();
                    let asked: Vec<String> = stage
                        .slots
                        .iter()
                        .map(|s| match &s.delegation {
                            Some(why) => format!("{} (for {}: {why})", s.acting, s.approver),
                            None => s.acting.clone(),
                        })
                        .collect();
                    effect.entry.outcome = "waiting".into();
                    effect.entry.message =
                        format!("approval {}: stage 1 ({}) asked {}", approval.id, stage.name, asked.join(", "));
                    effect.entry.detail = json!({"approval": approval.id, "due": stage.due});
                    effect.wait = Some(crate::run::Waiting { step: step.id.clone(), deadline: None });
                }
            },
            Action::Wait { minutes, business, calendar, at, timezone, on_timeout, .. } => {
                let deadline = match minutes {
                    None => match at {
                        None => None,
                        Some(at) => {
                            let text = rendered(at);
                            let tz = timezone.as_deref().and_then(|t| t.parse().ok()).unwrap_or(chrono_tz::UTC);
                            match crate::workflow::parse_at(&text, tz) {
                                Some(t) => Some(t),
                                None => {
                                    return Ok(effect.fail(format!("`at` rendered to `{text}`, which is not a time")))
                                }
                            }
                        }
                    },
                    Some(m) if !*business => Some(now + chrono::Duration::minutes(*m as i64)),
                    Some(m) => {
                        let setup = self.sla()?;
                        let cal = match calendar {
                            Some(id) => setup.calendar_by_id(id),
                            None => self.store.ticket_sla(&ticket.id)?.and_then(|s| setup.policy_calendar(&s.policy)),
                        };
                        let Some(cal) = cal.or_else(|| calendar.is_none().then(crate::calendar::Calendar::always))
                        else {
                            return Ok(effect.fail(format!("unknown calendar `{}`", calendar.as_deref().unwrap_or(""))));
                        };
                        cal.add(now, chrono::Duration::minutes(*m as i64))
                    }
                };
                if let Some(d) = deadline.filter(|d| *d <= now) {
                    // Already past: go on now, as the timer would, without parking (a parked
                    // run would look idle until the timer loop got to it).
                    effect.next = machine::target(on_timeout.as_deref(), def.following(index));
                    effect.entry.outcome = "timed_out".into();
                    effect.entry.message = format!(
                        "{} had already passed; went to {}",
                        d.to_rfc3339(),
                        effect.next.as_deref().unwrap_or("end")
                    );
                    return Ok(effect);
                }
                effect.entry.outcome = "waiting".into();
                effect.entry.message = match deadline {
                    Some(d) => format!("waiting until {}", d.to_rfc3339()),
                    None => "waiting for its condition".into(),
                };
                effect.wait = Some(crate::run::Waiting { step: step.id.clone(), deadline });
            }
            // Notify and plugin steps are executed before the ticket lock is taken; see `step`.
            Action::Notify { .. } | Action::Plugin { .. } => {
                return Ok(effect.fail("slow step reached the wrong executor path"))
            }
        }
        Ok(effect)
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

#[cfg(test)]
mod tests {
    use super::Backoff;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_can_ride_out_minutes() {
        let dc_reboot = Backoff { retries: 6, first_ms: 5000, max_ms: 60_000 };
        let waits: Vec<u64> = (1..=6).map(|a| dc_reboot.wait_ms(a)).collect();
        assert_eq!(waits, [5000, 10_000, 20_000, 40_000, 60_000, 60_000]);
        assert!(waits.iter().sum::<u64>() > 120_000, "longer than a two-minute reboot");
        let default = Backoff { retries: 2, first_ms: 200, max_ms: 6400 };
        assert_eq!((default.wait_ms(1), default.wait_ms(2), default.wait_ms(40)), (200, 400, 6400));
    }
}
