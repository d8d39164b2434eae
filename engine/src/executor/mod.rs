//! The engine: ticket operations, event dispatch and durable runs.
//!
//! Every change to a ticket becomes an [`Event`]. Dispatch offers the event to each
//! workflow whose trigger matches, evaluates its conditions (recording every
//! comparison), applies the loop guard, and writes a `pending` [`Run`] for each match
//! in the *same* transaction as the change itself. Workers then drive runs one step at
//! a time; each step's effects and the run's new cursor are committed together, so
//! after a crash a run resumes at the first step whose commit did not happen.
//!
//! - [`step`]: what each step type does;
//! - [`admin`]: publishing workflows, agents and groups;
//! - [`locks`]: per-ticket serialisation;
//! - [`sla`]: SLA clocks on tickets, durable timers, `sla.warning` / `sla.breached` events;
//! - [`wait`]: runs parked at `wait` steps, resumed by a ticket event or a timer;
//! - [`schedule`]: cron-triggered workflows, with catch-up after downtime;
//! - [`approval`]: `approval` steps: stages, decisions, delegation, expiry, signed links;
//! - [`report`]: the manager's reports over a period;
//! - [`dryrun`]: a definition run against a ticket in memory, with no side effects;
//! - [`explain`]: why each workflow and SLA policy did or did not apply to a ticket;
//! - [`webhook`]: inbound deliveries (once per delivery id) and outbound dead letters.
//!
//! Runs are held in memory only up to `run_queue` at once (tasks waiting for one of the
//! `workers`); beyond that they wait in the store as `pending` and are queued as the
//! queue drains, so a burst of events costs disk, not memory.

mod admin;
pub use admin::Inventory;
mod approval;
mod dryrun;
pub use dryrun::{DryRun, WouldCall, WouldChild, WouldComment, WouldNotify, WouldRun};
mod explain;
pub use explain::{EventVerdict, Explanation, PolicyVerdict, WaitingRun, WorkflowVerdict};
mod locks;
pub mod loops;
mod report;
mod schedule;
pub use schedule::ScheduleInfo;
mod sla;
pub use sla::{ClockReport, SlaReport};
mod step;
mod steps;
mod wait;
mod webhook;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::notify::Notifier;
use crate::run::{Cause, Evaluation, Event, EventKind, HistoryEntry, Run, RunStatus, TraceEntry};
use crate::store::{self, Store, Tx, Write};
use crate::ticket::{fields, Comment, FieldChange, NewTicket, Ticket};
use crate::workflow::condition::{Check, Scope};
use crate::workflow::{Trigger, Workflow, WorkflowRecord};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::task::TaskTracker;

/// Engine failures that callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// `ticket`, `workflow`, `run`...
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The request is not acceptable; each problem has a JSON pointer.
    #[error("invalid input")]
    Invalid(Vec<(String, String)>),
    /// The request conflicts with the object's state.
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this (not an approver, a link that does not verify).
    #[error("{0}")]
    Forbidden(String),
    /// The caller changed an object it read at a version that is no longer the stored
    /// one (HTTP `If-Match`): nothing was written.
    #[error("{kind} `{id}` is at version {current}, not {expected}: read it again and retry")]
    Stale {
        /// `ticket`.
        kind: &'static str,
        /// Its id.
        id: String,
        /// The versions the caller accepts.
        expected: String,
        /// The version stored.
        current: u64,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Result with an engine [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(pointer: &str, message: impl Into<String>) -> Error {
    Error::Invalid(vec![(pointer.to_string(), message.into())])
}

/// The engine. Cheap to share behind an `Arc`.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: SharedClock,
    config: Arc<Config>,
    notifier: Notifier,
    locks: locks::TicketLocks,
    /// Routing decisions: a route step locks its group (the round-robin cursor) and each
    /// of the group's agents (their open load against capacity), so groups that share no
    /// agent route in parallel. A separate set of stripes from the ticket locks, always
    /// taken after the ticket's.
    routing: locks::TicketLocks,
    definitions: Mutex<HashMap<(String, u32), Arc<Workflow>>>,
    /// Current workflow records, read once and replaced whenever one changes, so
    /// dispatching an event does not decode every definition from the store.
    workflows: tokio::sync::Mutex<Option<Arc<Vec<WorkflowRecord>>>>,
    /// SLA policies and calendars, read once and replaced whenever one changes.
    sla_setup: tokio::sync::Mutex<Option<Arc<sla::Setup>>>,
    /// Loop-guard budgets of causation trees.
    trees: loops::Trees,
    /// Seals stored secrets (`secrets_key`), if configured.
    secret_box: Option<crate::secret::SecretBox>,
    /// Wakes the timer loop when a timer may have become due sooner.
    timer_wakeup: tokio::sync::Notify,
    /// The timer loop ([`Engine::spawn_timers`]), awaited by [`Engine::shutdown`] so no
    /// timer fires into a store that is closing.
    timer_loop: Mutex<Option<tokio::task::JoinHandle<()>>>,
    tasks: TaskTracker,
    /// Ids of the runs held as tasks; at most `config.run_queue`.
    in_flight: Mutex<std::collections::HashSet<String>>,
    /// Set when a run was left in the store because the queue was full.
    overflow: AtomicBool,
    /// Inbound webhook endpoints, read once each.
    endpoints: Mutex<HashMap<String, Arc<crate::webhook::Endpoint>>>,
    /// Inbound webhook rate limits.
    limiter: crate::webhook::Limiter,
    /// Counters and histograms for `GET /metrics`.
    metrics: crate::metrics::Metrics,
    workers: Arc<tokio::sync::Semaphore>,
    stopping: AtomicBool,
    /// Wakes waits that should end when the engine stops (backoff between plugin attempts).
    stop_signal: tokio::sync::Notify,
    plugins: Arc<crate::plugin::PluginHost>,
    /// Tells people from integrations and automation (reports, SLA response clocks).
    actors: crate::actor::Actors,
    /// The last [`admin::Inventory`] for `/metrics`, and when it was counted.
    inventory: Mutex<Option<(std::time::Instant, Arc<admin::Inventory>)>>,
}

/// The actor of a parent's `open_children` updates.
const CHILDREN: &str = "system:children";

/// What a ticket operation produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The ticket after the change.
    pub ticket: Ticket,
    /// The event recorded (absent when nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Runs started by the event.
    pub runs: Vec<String>,
}

impl Engine {
    /// An engine over `store`. Call [`Engine::recover`] before serving.
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, config: Arc<Config>) -> anyhow::Result<Arc<Self>> {
        let notifier =
            Notifier::new(std::time::Duration::from_millis(config.notify_timeout_ms), config.notify_attempts)
                .with_delays(
                    std::time::Duration::from_millis(config.notify_retry_base_ms),
                    std::time::Duration::from_millis(config.notify_retry_max_ms),
                );
        let plugins = crate::plugin::PluginHost::new(
            config.plugins.clone(),
            store.clone(),
            crate::plugin::net::Net::new(config.connections.clone()),
            crate::plugin::directory::Directories::new(config.directories.clone()),
        )?;
        Ok(Arc::new(Self {
            plugins,
            actors: crate::actor::Actors::new(config.integrations()),
            inventory: Mutex::new(None),
            secret_box: config.secrets_key.as_deref().map(crate::secret::SecretBox::new),
            workers: Arc::new(tokio::sync::Semaphore::new(config.workers)),
            store,
            clock,
            config,
            notifier,
            locks: locks::TicketLocks::new(),
            routing: locks::TicketLocks::new(),
            definitions: Mutex::new(HashMap::new()),
            workflows: tokio::sync::Mutex::new(None),
            sla_setup: tokio::sync::Mutex::new(None),
            trees: loops::Trees::default(),
            timer_wakeup: tokio::sync::Notify::new(),
            timer_loop: Mutex::new(None),
            tasks: TaskTracker::new(),
            in_flight: Mutex::new(Default::default()),
            overflow: AtomicBool::new(false),
            endpoints: Mutex::new(HashMap::new()),
            limiter: Default::default(),
            metrics: Default::default(),
            stopping: AtomicBool::new(false),
            stop_signal: tokio::sync::Notify::new(),
        }))
    }

    /// The plugin host.
    pub fn plugins(&self) -> &Arc<crate::plugin::PluginHost> {
        &self.plugins
    }

    /// Counters and histograms.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The store, for reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Re-queues the runs that were pending or running when the process stopped (up to
    /// `run_queue` at once; the rest follow as the queue drains). Returns how many were
    /// queued now.
    pub async fn recover(self: &Arc<Self>) -> Result<usize> {
        let limit = self.config.run_queue + 1;
        let active = self.store.active_runs(limit).await?;
        let n = active.len().min(self.config.run_queue);
        self.queue(active, limit);
        Ok(n)
    }

    /// Spawns `ids` (read from the store with `limit`). When the store may hold more,
    /// marks the queue as overflowing so that it refills as it drains. That must not
    /// depend on `spawn_run` finding the queue full: runs spawned first may already have
    /// finished by the time the last is spawned.
    fn queue(self: &Arc<Self>, ids: Vec<String>, limit: usize) {
        let more = ids.len() >= limit;
        for id in ids {
            self.spawn_run(id);
        }
        if more {
            self.overflow.store(true, Ordering::SeqCst);
            let left = self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).len();
            // Everything spawned may be done already; then no finishing run will refill.
            if left <= self.config.run_queue / 2 && self.overflow.swap(false, Ordering::SeqCst) {
                let engine = self.clone();
                self.tasks.spawn(async move { engine.refill().await });
            }
        }
    }

    /// Stops starting new steps and waits for the ones under way to commit.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop_signal.notify_waiters();
        let timers = self.timer_loop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(timers) = timers {
            // A firing in progress completes (its commit is whole); the loop then stops.
            let _ = timers.await;
        }
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Runs being driven right now (or queued for a worker).
    pub fn runs_in_flight(&self) -> usize {
        self.tasks.len()
    }

    /// Drives a run in a task, unless it is already in flight or the queue is full (then
    /// it stays `pending` in the store and [`Engine::refill`] picks it up later).
    fn spawn_run(self: &Arc<Self>, id: String) {
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if in_flight.contains(&id) {
                return;
            }
            if in_flight.len() >= self.config.run_queue {
                self.overflow.store(true, Ordering::SeqCst);
                return;
            }
            in_flight.insert(id.clone());
        }
        let engine = self.clone();
        self.tasks.spawn(async move {
            if let Err(e) = engine.drive(&id).await {
                if engine.stopping.load(Ordering::SeqCst) {
                    tracing::info!(run = %id, "run paused by the shutdown; it resumes on restart");
                } else {
                    tracing::error!(run = %id, error = %e, "run stopped; it resumes on restart");
                }
            }
            let left = {
                let mut in_flight = engine.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                in_flight.remove(&id);
                in_flight.len()
            };
            // Refill at half capacity, so each scan of the store queues many runs.
            if left <= engine.config.run_queue / 2 && engine.overflow.swap(false, Ordering::SeqCst) {
                engine.refill().await;
            }
        });
    }

    /// Queues active runs that were left in the store while the queue was full.
    async fn refill(self: &Arc<Self>) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        // The oldest active runs are the ones in flight and the next to queue.
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).len();
        let limit = in_flight + self.config.run_queue;
        match self.store.active_runs(limit).await {
            Ok(ids) => self.queue(ids, limit),
            Err(e) => {
                tracing::error!(error = %e, "reading pending runs; they resume on restart");
            }
        }
    }

    /// After a commit: start the runs it created and let the timer loop see new timers.
    fn after_commit(self: &Arc<Self>, runs: &[String]) {
        self.spawn_runs(runs);
        self.wake_timers();
    }

    fn spawn_runs(self: &Arc<Self>, ids: &[String]) {
        for id in ids {
            self.spawn_run(id.clone());
        }
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The engine's clock (real, or the tests' fake).
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    async fn definition(&self, id: &str, revision: u32) -> Result<Arc<Workflow>> {
        let key = (id.to_string(), revision);
        if let Some(d) = self.definitions.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(d.clone());
        }
        let def = self
            .store
            .workflow_revision(id, revision)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "workflow revision", id: format!("{id}@{revision}") })?;
        let def = Arc::new(def);
        self.definitions.lock().unwrap_or_else(|p| p.into_inner()).insert(key, def.clone());
        Ok(def)
    }

    async fn current_workflows(&self) -> Result<Arc<Vec<WorkflowRecord>>> {
        let mut cache = self.workflows.lock().await;
        if let Some(list) = cache.as_ref() {
            return Ok(list.clone());
        }
        let list = Arc::new(self.store.workflows().await?);
        *cache = Some(list.clone());
        Ok(list)
    }

    async fn forget_workflows(&self) {
        *self.workflows.lock().await = None;
    }

    // ----- tickets -------------------------------------------------------------------

    async fn check_people(&self, group: Option<&str>, assignee: Option<&str>) -> Result<()> {
        let mut errors = Vec::new();
        if let Some(g) = group {
            if self.store.group(g).await?.is_none() {
                errors.push(("/group".to_string(), format!("unknown group `{g}`")));
            }
        }
        if let Some(a) = assignee {
            if self.store.agent(a).await?.is_none() {
                errors.push(("/assignee".to_string(), format!("unknown agent `{a}`")));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(errors))
        }
    }

    /// Logs a ticket and starts the workflows it triggers.
    pub async fn create_ticket(self: &Arc<Self>, new: NewTicket, actor: &str) -> Result<Outcome> {
        self.create_ticket_with(new, actor, |_| Vec::new()).await
    }

    /// [`Engine::create_ticket`], committing `extra(outcome)` in the same transaction
    /// (e.g. an inbound webhook's delivery record, for idempotency).
    pub async fn create_ticket_with(
        self: &Arc<Self>,
        new: NewTicket,
        actor: &str,
        extra: impl FnOnce(&Outcome) -> Vec<Write>,
    ) -> Result<Outcome> {
        new.check().map_err(|(p, m)| invalid(&p, m))?;
        self.check_people(new.group.as_deref(), new.assignee.as_deref()).await?;
        for (i, link) in new.links.iter().enumerate() {
            if self.store.ticket(&link.ticket).await?.is_none() {
                return Err(invalid(&format!("/links/{i}/ticket"), format!("unknown ticket `{}`", link.ticket)));
            }
        }
        let id = self.store.next_ticket_id().await?;
        let mut ticket = new.into_ticket(id, &self.config.priority_matrix, self.now());
        let mut tx = Tx::new();
        tx.ticket(None, &mut ticket);
        let event = self.raise(&mut tx, &ticket, EventKind::Created, Vec::new(), None, actor, &[], None).await?;
        let outcome = Outcome { ticket, event: Some(event.0), runs: event.1 };
        tx.writes.extend(extra(&outcome));
        self.store.commit(tx).await?;
        self.after_commit(&outcome.runs);
        Ok(outcome)
    }

    /// Applies a JSON object of field changes.
    pub async fn update_ticket(self: &Arc<Self>, id: &str, patch: &Map<String, Value>, actor: &str) -> Result<Outcome> {
        self.update_ticket_with(id, patch, actor, |_| Vec::new()).await
    }

    /// [`Engine::update_ticket`] only if the ticket is stored at one of `versions` (an
    /// HTTP `If-Match`): otherwise [`Error::Stale`] and nothing is written.
    pub async fn update_ticket_if(
        self: &Arc<Self>,
        id: &str,
        versions: &[u64],
        patch: &Map<String, Value>,
        actor: &str,
    ) -> Result<Outcome> {
        self.update_inner(id, Some(versions), patch, actor, |_| Vec::new()).await
    }

    /// [`Engine::update_ticket`], committing `extra(outcome)` in the same transaction.
    pub async fn update_ticket_with(
        self: &Arc<Self>,
        id: &str,
        patch: &Map<String, Value>,
        actor: &str,
        extra: impl FnOnce(&Outcome) -> Vec<Write>,
    ) -> Result<Outcome> {
        self.update_inner(id, None, patch, actor, extra).await
    }

    async fn update_inner(
        self: &Arc<Self>,
        id: &str,
        versions: Option<&[u64]>,
        patch: &Map<String, Value>,
        actor: &str,
        extra: impl FnOnce(&Outcome) -> Vec<Write>,
    ) -> Result<Outcome> {
        let _guard = self.locks.lock(id).await;
        let before = self.store.ticket(id).await?.ok_or_else(|| Error::NotFound { kind: "ticket", id: id.into() })?;
        if let Some(versions) = versions.filter(|v| !v.contains(&before.version)) {
            let expected = versions.iter().map(u64::to_string).collect::<Vec<_>>().join(" or ");
            return Err(Error::Stale { kind: "ticket", id: id.into(), expected, current: before.version });
        }
        let mut after = fields::patch(&before, patch, &self.config.priority_matrix, self.now())
            .map_err(|errs| Error::Invalid(errs.into_iter().map(|(p, e)| (p, e.to_string())).collect()))?;
        let changes = fields::diff(&before, &after);
        if changes.is_empty() {
            let outcome = Outcome { ticket: before, event: None, runs: Vec::new() };
            let writes = extra(&outcome);
            if !writes.is_empty() {
                let mut tx = Tx::new();
                tx.writes.extend(writes);
                self.store.commit(tx).await?;
            }
            return Ok(outcome);
        }
        let changed = |f: &str| changes.iter().any(|c| c.field == f);
        if changed("status") && !after.status.is_open() {
            let open = self.open_children(&after).await?;
            if !open.is_empty() {
                return Err(Error::Conflict(format!(
                    "{id} has open child tickets ({}): resolve or close them first",
                    open.join(", ")
                )));
            }
        }
        self.check_people(
            after.group.as_deref().filter(|_| changed("group")),
            after.assignee.as_deref().filter(|_| changed("assignee")),
        )
        .await?;
        let mut tx = Tx::new();
        tx.ticket(Some(&before), &mut after);
        let (event, runs) = self.raise(&mut tx, &after, EventKind::Updated, changes, None, actor, &[], None).await?;
        let outcome = Outcome { ticket: after, event: Some(event), runs };
        tx.writes.extend(extra(&outcome));
        self.store.commit(tx).await?;
        self.after_commit(&outcome.runs);
        Ok(outcome)
    }

    /// The ids of a ticket's children that are still open.
    pub(crate) async fn open_children(&self, t: &Ticket) -> Result<Vec<String>> {
        let mut open = Vec::new();
        for child in t.children() {
            if self.store.ticket(child).await?.is_some_and(|c| c.status.is_open()) {
                open.push(child.to_string());
            }
        }
        Ok(open)
    }

    /// Recounts a parent's open children (a [`store::TimerKind::CountChildren`] timer);
    /// a changed count is an update event on the parent, which wakes its waiting runs.
    pub(super) async fn count_children(self: &Arc<Self>, timer: &store::Timer, parent: &str) -> Result<()> {
        let _guard = self.locks.lock(parent).await;
        let mut tx = Tx::new();
        tx.push(Write::CancelTimer(timer.key.clone()));
        let mut runs = Vec::new();
        if let Some(before) = self.store.ticket(parent).await? {
            let open = self.open_children(&before).await?.len() as u32;
            if open != before.open_children {
                let mut after = before.clone();
                after.open_children = open;
                let change =
                    FieldChange { field: "open_children".into(), from: json!(before.open_children), to: json!(open) };
                tx.ticket(Some(&before), &mut after);
                runs =
                    self.raise(&mut tx, &after, EventKind::Updated, vec![change], None, CHILDREN, &[], None).await?.1;
            }
        }
        self.store.commit(tx).await?;
        self.after_commit(&runs);
        Ok(())
    }

    /// Adds a comment.
    pub async fn add_comment(self: &Arc<Self>, id: &str, body: &str, internal: bool, actor: &str) -> Result<Outcome> {
        self.comment_as(id, body, internal, actor, None).await
    }

    /// A comment by `author`, posted by the token `poster` on their behalf (a portal or
    /// mail gateway relaying a reply); the audit log records who posted it.
    pub async fn add_comment_on_behalf(
        self: &Arc<Self>,
        id: &str,
        body: &str,
        internal: bool,
        author: &str,
        poster: &str,
    ) -> Result<Outcome> {
        self.comment_as(id, body, internal, author, Some(poster)).await
    }

    async fn comment_as(
        self: &Arc<Self>,
        id: &str,
        body: &str,
        internal: bool,
        actor: &str,
        poster: Option<&str>,
    ) -> Result<Outcome> {
        if body.trim().is_empty() {
            return Err(invalid("/body", "body must not be empty"));
        }
        let _guard = self.locks.lock(id).await;
        let before = self.store.ticket(id).await?.ok_or_else(|| Error::NotFound { kind: "ticket", id: id.into() })?;
        let mut after = before.clone();
        let comment = after.add_comment(actor, body, internal, self.now());
        let mut tx = Tx::new();
        tx.ticket(Some(&before), &mut after);
        if let Some(poster) = poster {
            tx.push(Write::Audit(crate::run::AuditEntry {
                at: self.now(),
                actor: poster.to_string(),
                action: "comment.on_behalf".into(),
                target: id.to_string(),
                detail: json!({"author": actor, "comment": comment.id, "internal": internal}),
            }));
        }
        let (event, runs) =
            self.raise(&mut tx, &after, EventKind::CommentAdded, Vec::new(), Some(comment), actor, &[], None).await?;
        self.store.commit(tx).await?;
        self.after_commit(&runs);
        Ok(Outcome { ticket: after, event: Some(event), runs })
    }

    /// Links two tickets. Parent/child and related links are recorded on both sides;
    /// `duplicate_of` on this ticket only. Each side's history gets a `links` change.
    pub async fn link(self: &Arc<Self>, id: &str, link: crate::ticket::Link, actor: &str) -> Result<Outcome> {
        use crate::ticket::{Link, LinkKind};
        if link.ticket == id {
            return Err(invalid("/ticket", "a ticket cannot link to itself"));
        }
        let _guards = self.locks.lock_pair(id, &link.ticket).await;
        let before = self.store.ticket(id).await?.ok_or_else(|| Error::NotFound { kind: "ticket", id: id.into() })?;
        let other_before = self
            .store
            .ticket(&link.ticket)
            .await?
            .ok_or_else(|| invalid("/ticket", format!("unknown ticket `{}`", link.ticket)))?;
        if before.links.contains(&link) {
            return Ok(Outcome { ticket: before, event: None, runs: Vec::new() });
        }
        let now = self.now();
        let reverse = match link.kind {
            LinkKind::Parent => Some(LinkKind::Child),
            LinkKind::Child => Some(LinkKind::Parent),
            LinkKind::Related => Some(LinkKind::Related),
            LinkKind::DuplicateOf => None,
        };
        let change = |t: &Ticket, added: &Link| FieldChange {
            field: "links".into(),
            from: serde_json::to_value(&t.links).unwrap_or(Value::Null),
            to: serde_json::to_value(t.links.iter().chain(std::iter::once(added)).collect::<Vec<_>>())
                .unwrap_or(Value::Null),
        };
        let mut tx = Tx::new();
        let mut after = before.clone();
        let changes = vec![change(&before, &link)];
        after.links.push(link.clone());
        after.updated_at = now;
        tx.ticket(Some(&before), &mut after);
        let (event, mut runs) =
            self.raise(&mut tx, &after, EventKind::Updated, changes, None, actor, &[], None).await?;
        if let Some(kind) = reverse {
            let back = Link { kind, ticket: id.to_string() };
            if !other_before.links.contains(&back) {
                let mut other = other_before.clone();
                let changes = vec![change(&other_before, &back)];
                other.links.push(back);
                other.updated_at = now;
                tx.ticket(Some(&other_before), &mut other);
                runs.extend(self.raise(&mut tx, &other, EventKind::Updated, changes, None, actor, &[], None).await?.1);
            }
        }
        self.store.commit(tx).await?;
        self.after_commit(&runs);
        Ok(Outcome { ticket: after, event: Some(event), runs })
    }

    /// Starts a workflow by hand on a ticket; `input` becomes `vars.input`.
    pub async fn start_manual(
        self: &Arc<Self>,
        workflow: &str,
        ticket: &str,
        input: Value,
        actor: &str,
    ) -> Result<Outcome> {
        self.start_manual_with(workflow, ticket, input, actor, |_| Vec::new()).await
    }

    /// [`Engine::start_manual`], committing `extra(outcome)` in the same transaction.
    pub async fn start_manual_with(
        self: &Arc<Self>,
        workflow: &str,
        ticket: &str,
        input: Value,
        actor: &str,
        extra: impl FnOnce(&Outcome) -> Vec<Write>,
    ) -> Result<Outcome> {
        let record = self
            .store
            .workflow(workflow)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "workflow", id: workflow.into() })?;
        if !record.definition.triggers.contains(&Trigger::Manual) {
            return Err(Error::Conflict(format!("workflow `{workflow}` has no `manual` trigger")));
        }
        let _guard = self.locks.lock(ticket).await;
        let t =
            self.store.ticket(ticket).await?.ok_or_else(|| invalid("/ticket", format!("unknown ticket `{ticket}`")))?;
        let mut tx = Tx::new();
        let (event, runs) =
            self.raise(&mut tx, &t, EventKind::Manual, Vec::new(), None, actor, &[], Some((workflow, input))).await?;
        let outcome = Outcome { ticket: t, event: Some(event), runs };
        tx.writes.extend(extra(&outcome));
        self.store.commit(tx).await?;
        self.after_commit(&outcome.runs);
        Ok(outcome)
    }

    /// Records an event in `tx` and the runs it starts; returns the event id and run ids.
    ///
    /// `manual` restricts dispatch to one workflow and hands it input.
    #[allow(clippy::too_many_arguments)]
    async fn raise(
        &self,
        tx: &mut Tx,
        ticket: &Ticket,
        kind: EventKind,
        changes: Vec<FieldChange>,
        comment: Option<Comment>,
        actor: &str,
        causation: &[Cause],
        manual: Option<(&str, Value)>,
    ) -> Result<(String, Vec<String>)> {
        self.raise_with(tx, ticket, kind, changes, comment, actor, causation, manual, None).await
    }

    /// [`Engine::raise`] for SLA events, which carry their signal.
    #[allow(clippy::too_many_arguments)]
    async fn raise_with(
        &self,
        tx: &mut Tx,
        ticket: &Ticket,
        kind: EventKind,
        changes: Vec<FieldChange>,
        comment: Option<Comment>,
        actor: &str,
        causation: &[Cause],
        manual: Option<(&str, Value)>,
        signal: Option<crate::run::SlaSignal>,
    ) -> Result<(String, Vec<String>)> {
        let now = self.now();
        let event_id = self.store.next_event_id().await?;
        let mut history = changes.clone();
        if let Some(c) = &comment {
            history.push(FieldChange {
                field: "comments".into(),
                from: Value::Null,
                to: json!({"id": c.id, "internal": c.internal}),
            });
        }
        if kind != EventKind::Manual {
            tx.push(Write::History(HistoryEntry {
                ticket_id: ticket.id.clone(),
                event_id: event_id.clone(),
                at: now,
                actor: actor.to_string(),
                changes: history,
            }));
        }
        let mut event = Event {
            id: event_id.clone(),
            ticket_id: ticket.id.clone(),
            kind,
            changes,
            comment,
            actor: actor.to_string(),
            causation: causation.to_vec(),
            at: now,
            sla: signal,
            evaluations: Vec::new(),
        };
        if matches!(kind, EventKind::Created | EventKind::Updated | EventKind::CommentAdded) {
            self.observe_sla(tx, ticket, &event).await?;
        }
        self.count_changes(&event);
        let mut runs = Vec::new();
        let mut seed = Map::new();
        let only = match manual {
            Some((w, input)) => {
                if !input.is_null() {
                    seed.insert("input".into(), input);
                }
                Some(w)
            }
            None => None,
        };
        if let Some(signal) = &event.sla {
            seed.insert("sla".into(), serde_json::to_value(signal).unwrap_or(Value::Null));
        }
        for record in self.current_workflows().await?.iter() {
            if only.is_some_and(|w| w != record.id) || !triggered(&record.definition, &event) {
                continue;
            }
            let (evaluation, run) = self.evaluate(record, &event, ticket, seed.clone()).await?;
            if let Some(mut run) = run {
                if run.status.is_active() {
                    runs.push(run.id.clone());
                }
                tx.run(&mut run);
            }
            event.evaluations.push(evaluation);
        }
        runs.extend(self.wake_waiting(tx, ticket, &event).await?);
        tx.push(Write::Event(Box::new(event)));
        Ok((event_id, runs))
    }

    /// Offers one event to one workflow whose trigger matched.
    async fn evaluate(
        &self,
        record: &WorkflowRecord,
        event: &Event,
        ticket: &Ticket,
        vars: Map<String, Value>,
    ) -> Result<(Evaluation, Option<Run>)> {
        let wf = &record.definition;
        let mut evaluation = Evaluation {
            workflow_id: record.id.clone(),
            revision: record.revision,
            outcome: String::new(),
            run_id: None,
            reason: None,
            checks: Vec::new(),
        };
        if !record.enabled {
            evaluation.outcome = "disabled".into();
            evaluation.reason = Some("workflow is disabled".into());
            return Ok((evaluation, None));
        }
        let now = self.now();
        let mut run = Run {
            id: String::new(),
            workflow_id: record.id.clone(),
            workflow_revision: record.revision,
            ticket_id: ticket.id.clone(),
            event_id: event.id.clone(),
            event_type: event.kind.as_str().into(),
            actor: event.actor.clone(),
            changes: event.changes.clone(),
            previous: crate::workflow::analysis::previous_values(wf, ticket, &event.changes),
            status: RunStatus::Pending,
            waiting: None,
            cursor: wf.steps.first().map(|s| s.id.clone()),
            vars,
            trace: vec![TraceEntry {
                changes: event.changes.clone(),
                ..TraceEntry::new(
                    now,
                    "trigger",
                    "matched",
                    match ticket.id.as_str() {
                        "" => format!("{} by {}", event.kind.as_str(), event.actor),
                        id => format!("{} on {id} by {}", event.kind.as_str(), event.actor),
                    },
                )
            }],
            causation: event.causation.clone(),
            steps_done: 0,
            created_at: now,
            updated_at: now,
            finished_at: None,
            error: None,
            saved: Default::default(),
        };
        let mut checks = Vec::new();
        let matched = match &wf.conditions {
            None => true,
            Some(c) => c.evaluate(&event_scope(ticket, event, &run.vars), "/conditions", &mut checks),
        };
        if !matched {
            evaluation.outcome = "not_matched".into();
            evaluation.reason = checks.iter().find(|c| !c.result).map(describe_failure);
            evaluation.checks = checks;
            return Ok((evaluation, None));
        }
        // Loop guard: refuse visibly, with the chain that led here (see `loops`).
        let reason = match self.guard(&record.id, event) {
            loops::Verdict::Start => None,
            loops::Verdict::Record(reason) => Some((reason, true)),
            loops::Verdict::Quiet(reason) => Some((reason, false)),
        };
        if let Some((reason, record_run)) = reason {
            self.metrics.run(&record.id, "refused");
            evaluation.outcome = "refused".into();
            evaluation.reason = Some(reason.clone());
            evaluation.checks = checks;
            if !record_run {
                return Ok((evaluation, None));
            }
            run.id = self.store.next_run_id().await?;
            run.status = RunStatus::Refused;
            run.cursor = None;
            run.finished_at = Some(now);
            run.error = Some(reason.clone());
            let chain: Vec<String> =
                event.causation.iter().map(|c| format!("{}({})", c.workflow_id, c.run_id)).collect();
            run.trace.push(TraceEntry {
                detail: json!({"chain": chain, "origin": loops::origin(event)}),
                ..TraceEntry::new(now, "refused", "refused", reason.clone())
            });
            tracing::warn!(workflow = %record.id, ticket = %ticket.id, run = %run.id, %reason, "run refused");
            evaluation.run_id = Some(run.id.clone());
            return Ok((evaluation, Some(run)));
        }
        run.id = self.store.next_run_id().await?;
        let message = if checks.is_empty() {
            "no conditions".into()
        } else {
            format!("{} comparison(s) held", checks.iter().filter(|c| c.result).count())
        };
        run.trace.push(TraceEntry { checks: checks.clone(), ..TraceEntry::new(now, "conditions", "matched", message) });
        evaluation.outcome = "started".into();
        self.metrics.run(&record.id, "started");
        evaluation.run_id = Some(run.id.clone());
        evaluation.checks = checks;
        Ok((evaluation, Some(run)))
    }
}

/// What a condition sees when it is tested against an event: the ticket, the event's
/// changes, type and actor, and the given run variables.
pub(crate) fn event_scope<'a>(ticket: &'a Ticket, event: &'a Event, vars: &'a Map<String, Value>) -> Scope<'a> {
    Scope {
        ticket,
        changes: &event.changes,
        previous: None,
        vars,
        event: event.kind.as_str(),
        actor: &event.actor,
        now: event.at,
    }
}

/// Whether any of the workflow's triggers fires on the event.
pub fn triggered(wf: &Workflow, event: &Event) -> bool {
    wf.triggers.iter().any(|t| match (t, event.kind) {
        (Trigger::TicketCreated, EventKind::Created) => true,
        (Trigger::TicketUpdated { changed }, EventKind::Updated) => {
            changed.is_empty()
                || changed.iter().any(|f| {
                    event.changes.iter().any(|c| {
                        c.field == f.field
                            && f.from.as_ref().is_none_or(|v| crate::workflow::condition::loosely_equal(v, &c.from))
                            && f.to.as_ref().is_none_or(|v| crate::workflow::condition::loosely_equal(v, &c.to))
                    })
                })
        }
        (Trigger::CommentAdded { internal }, EventKind::CommentAdded) => {
            internal.is_none_or(|want| event.comment.as_ref().is_some_and(|c| c.internal == want))
        }
        (Trigger::Manual, EventKind::Manual) => true,
        (Trigger::Schedule(_), EventKind::Schedule) => true,
        (Trigger::SlaWarning { metric, percent }, EventKind::SlaWarning) => event
            .sla
            .as_ref()
            .is_some_and(|s| metric.is_none_or(|m| m == s.metric) && percent.is_none_or(|p| Some(p) == s.percent)),
        (Trigger::SlaBreached { metric }, EventKind::SlaBreached) => {
            event.sla.as_ref().is_some_and(|s| metric.is_none_or(|m| m == s.metric))
        }
        _ => false,
    })
}

/// "ticket.category eq \"network\" failed: saw \"hardware\"".
pub fn describe_failure(c: &Check) -> String {
    match &c.expected {
        Some(v) => format!("{} {} {} was false (saw {}) at {}", c.field, c.op.as_str(), v, c.actual, c.pointer),
        None => format!("{} {} was false (saw {}) at {}", c.field, c.op.as_str(), c.actual, c.pointer),
    }
}
