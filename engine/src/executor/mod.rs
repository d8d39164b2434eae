//! The engine: ticket operations, event dispatch and durable runs.
//!
//! Every change to a ticket becomes an [`Event`]. Dispatch offers the event to each
//! workflow whose trigger matches, evaluates its conditions (recording every
//! comparison), applies the loop guard, and writes a `pending` [`Run`] for each match
//! in the *same* transaction as the change itself. Workers then drive runs one step at
//! a time; each step's effects and the run's new cursor are committed together, so
//! after a crash a run resumes at the first step whose commit did not happen.
//!
//! - [`tickets`]: the ticket service (log, change, comment, link, start by hand);
//! - [`runtime`]: which runs are driven now (the queue, workers, refill, the timer
//!   loop, shutdown);
//! - [`step`]: the driver — a run's next step and the local steps after it, committed
//!   as one transaction; [`steps`]: one module per step type (load, then a pure plan);
//!   where the run goes is `run::machine`;
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
mod retention;
mod runtime;
mod schedule;
pub use schedule::ScheduleInfo;
mod sla;
pub use sla::{ClockReport, SlaReport};
mod step;
mod steps;
mod tickets;
mod wait;
mod webhook;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::notify::Notifier;
use crate::run::{Cause, Evaluation, Event, EventKind, HistoryEntry, Run, RunStatus, TraceEntry};
use crate::store::{self, Store, Tx, Write};
use crate::ticket::{Comment, FieldChange, Ticket};
use crate::workflow::condition::{Check, Scope};
use crate::workflow::{Trigger, Workflow, WorkflowRecord};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

use std::sync::{Arc, Mutex};

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
    /// Which runs are driven now, the workers, the timer loop, stopping.
    runtime: runtime::Runtime,
    /// Seals stored secrets (`secrets_key`), if configured.
    secret_box: Option<crate::secret::SecretBox>,
    /// Inbound webhook endpoints, read once each.
    endpoints: Mutex<HashMap<String, Arc<crate::webhook::Endpoint>>>,
    /// Inbound webhook rate limits.
    limiter: crate::webhook::Limiter,
    /// Inbound webhook deliveries, the latest per endpoint.
    received: crate::webhook::Recent,
    /// The dashboard's report snapshots.
    snapshots: report::Snapshots,
    /// Counters and histograms for `GET /metrics`.
    metrics: crate::metrics::Metrics,
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
            runtime: runtime::Runtime::new(config.workers),
            plugins,
            actors: crate::actor::Actors::new(config.integrations()),
            inventory: Mutex::new(None),
            secret_box: config.secrets_key.as_deref().map(crate::secret::SecretBox::new),
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
            endpoints: Mutex::new(HashMap::new()),
            limiter: Default::default(),
            received: Default::default(),
            snapshots: Default::default(),
            metrics: Default::default(),
        }))
    }

    /// The plugin host.
    pub fn plugins(&self) -> &Arc<crate::plugin::PluginHost> {
        &self.plugins
    }

    /// Inbound webhook deliveries, the latest per endpoint (the console shows them).
    pub fn received(&self) -> &crate::webhook::Recent {
        &self.received
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
