//! Persistence behind traits.
//!
//! The engine reads through the per-concept traits ([`TicketStore`], [`WorkflowStore`],
//! [`RunStore`], [`EventStore`], [`TeamStore`], [`AuditStore`]...), all async so that a
//! backend may read over the network, and writes through one [`Store::commit`] of a
//! backend-neutral [`Tx`]: a list of typed writes that the backend applies atomically and
//! acknowledges only once durable. A step's ticket change, its history, the events it
//! raises, the runs those start and the run's own progress go in one `Tx`, which is why a
//! crash can never leave a step half done.
//!
//! Writes are optimistic: a ticket write expects the version it was computed from, a
//! run write the journal it was computed from; when another writer got there first the
//! backend refuses the whole `Tx` with [`Error::Conflict`] and the writer reads again.
//!
//! [`sled`](self::sled) is the embedded implementation; [`commit`] groups many writers'
//! flushes into one. [`memory`] keeps everything in maps (tests, and the second
//! implementation the contract is checked against); `contract` is the test suite every
//! backend must pass.

pub mod commit;
#[cfg(test)]
mod contract;
mod expect;
mod filter;
pub mod memory;
pub mod postgres;
pub mod sled;

use crate::manifest::PluginRecord;
use crate::run::{AuditEntry, Event, HistoryEntry, Run};
use crate::team::{Agent, Group};
use crate::ticket::Ticket;
use crate::workflow::{Workflow, WorkflowRecord};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

pub use commit::Durability;
pub(crate) use expect::{check_ticket_versions, ticket_expectations};
pub use filter::{RunFilter, TicketFilter, TicketTime};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the data directory.
    #[error("data directory {path} is in use by another process (is a server already running on it?)")]
    Locked {
        /// The directory.
        path: String,
    },
    /// Another engine node serves the database (see [`postgres::PostgresStore::open`]).
    #[error(
        "database {place} is served by another switchboard node: one node per database for now (README: PostgreSQL)"
    )]
    Held {
        /// The database, without its password.
        place: String,
    },
    /// The data directory could not be opened or written.
    #[error("data directory {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The data directory lost committed data (see [`commit::Watermark`]).
    #[error("data directory {path}: {detail}")]
    Damaged {
        /// The directory.
        path: String,
        /// What is missing and what to do.
        detail: String,
    },
    /// Stored bytes do not decode: the data directory is damaged.
    #[error("stored record `{key}` is corrupt: {detail}")]
    Corrupt {
        /// Which record.
        key: String,
        /// What failed.
        detail: String,
    },
    /// A write was based on a state another writer has changed since it was read (a run
    /// whose journal grew behind the writer's back); nothing of the transaction was applied.
    #[error("conflict: {0} was changed by another writer since it was read")]
    Conflict(String),
    /// The backend failed.
    #[error("storage backend: {0}")]
    Backend(String),
    /// An I/O error, before the store has classified it into [`Error::Full`] or
    /// [`Error::WriteFailed`] (backends return those; this one is theirs to convert).
    #[error("storage I/O error: {detail}")]
    Unclassified {
        /// No space left on the device.
        full: bool,
        /// The error.
        detail: String,
    },
    /// The disk holding the data directory is full. Sticky: the store takes no more
    /// writes until the server is restarted with space freed (sled cannot resume).
    #[error("the disk holding data directory {path} is full ({detail}): free space and restart the server; acknowledged writes are safe, this one was not saved")]
    Full {
        /// The directory.
        path: String,
        /// The I/O error.
        detail: String,
    },
    /// Writing to the data directory failed (read-only remount, I/O error). Sticky, as
    /// [`Error::Full`].
    #[error("writing to data directory {path} failed ({detail}): fix the disk and restart the server; acknowledged writes are safe, this one was not saved")]
    WriteFailed {
        /// The directory.
        path: String,
        /// The I/O error.
        detail: String,
    },
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
}

/// Parses `T-42` (with the given letter) into 42: the numeric ids every backend keys by.
pub(crate) fn parse_id(id: &str, letter: char) -> Option<u64> {
    let rest = id.strip_prefix(letter)?.strip_prefix('-')?;
    if rest.is_empty() || rest.len() > 20 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// Result with a storage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One write of a [`Tx`].
#[derive(Debug, Clone)]
pub enum Write {
    /// Insert or replace a ticket. Its comments are appended, never rewritten: those
    /// from index `comments_from` on are new; the ones before are stored already.
    Ticket {
        /// The ticket as it is now (its `version` the one it is stored with).
        ticket: Box<Ticket>,
        /// How many of its comments the store holds already.
        comments_from: usize,
        /// The version the store must hold for the write to apply: `None` for a new
        /// ticket (none stored under its id). On a mismatch the whole transaction is
        /// refused with [`Error::Conflict`].
        expect: Option<u64>,
    },
    /// Append to a ticket's history.
    History(HistoryEntry),
    /// Insert or replace a workflow record.
    Workflow(Box<WorkflowRecord>),
    /// Keep a revision of a definition (runs pin it).
    WorkflowRevision {
        /// Revision number.
        revision: u32,
        /// The definition.
        definition: Box<Workflow>,
    },
    /// A run's header, and its start record and journal entries when new (see
    /// [`Tx::run`]); maintains the active, by-ticket and waiting indexes.
    Run(Box<crate::run::journal::Delta>),
    /// Insert an event.
    Event(Box<Event>),
    /// Insert or replace an agent.
    Agent(Agent),
    /// Insert or replace a group.
    Group(Group),
    /// Mark a ticket as counting (or no longer counting) against an agent's capacity.
    OpenAssignment {
        /// The agent.
        agent: String,
        /// The ticket.
        ticket: String,
        /// Counting or not.
        open: bool,
    },
    /// The round-robin cursor of a group.
    RoundRobin {
        /// The group.
        group: String,
        /// The last agent chosen.
        agent: String,
    },
    /// Append to the audit log.
    Audit(AuditEntry),
    /// Insert or replace a plugin record.
    Plugin(Box<PluginRecord>),
    /// Keep a plugin module's bytes.
    PluginModule {
        /// Plugin id.
        id: String,
        /// Version.
        version: String,
        /// The module.
        bytes: Vec<u8>,
    },
    /// Set (or with `None`, delete) the SLA clocks of a ticket.
    Sla(Box<crate::sla::TicketSla>),
    /// Store a business calendar.
    Calendar(crate::calendar::CalendarSpec),
    /// Store an SLA policy.
    SlaPolicy(Box<crate::sla::Policy>),
    /// Set a timer (replacing any timer with the same key).
    Timer(Timer),
    /// Remove the timer with this key, if any.
    CancelTimer(String),
    /// Set (or with `None`, delete) a document (see [`DocStore`]).
    Doc {
        /// Its kind.
        kind: DocKind,
        /// Its id, unique within the kind.
        id: String,
        /// JSON, or `None` to delete.
        value: Option<Vec<u8>>,
    },
    /// Keep a module's compiled code (wasmtime's serialized form, prefixed by its
    /// SHA-256), so a restart does not compile again.
    PluginArtifact {
        /// Plugin id.
        id: String,
        /// Version.
        version: String,
        /// 32 bytes of SHA-256, then the artifact.
        bytes: Vec<u8>,
    },
    /// Remove one kept version of a plugin (module and compiled code).
    DeletePluginVersion {
        /// Plugin id.
        id: String,
        /// Version.
        version: String,
    },
    /// Remove a plugin: its record, every module and compiled code, and its key-value store.
    DeletePlugin {
        /// Plugin id.
        id: String,
    },
    /// Set (or with `None`, delete) a key of a plugin's key-value store.
    PluginKv {
        /// Plugin id.
        plugin: String,
        /// Key.
        key: String,
        /// Value.
        value: Option<serde_json::Value>,
    },
}

/// A unit of work: applied all together or not at all.
#[derive(Debug, Clone, Default)]
pub struct Tx {
    /// The writes, in order.
    pub writes: Vec<Write>,
}

impl Tx {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a write.
    pub fn doc<T: serde::Serialize>(&mut self, kind: DocKind, id: &str, value: &T) -> &mut Self {
        let value = serde_json::to_vec(value).ok();
        self.push(Write::Doc { kind, id: id.to_string(), value })
    }

    /// Adds a write.
    pub fn push(&mut self, w: Write) -> &mut Self {
        self.writes.push(w);
        self
    }

    /// Adds a run's write: its header, plus what it appended since it was last stored
    /// (the run is marked stored).
    pub fn run(&mut self, run: &mut Run) -> &mut Self {
        self.push(Write::Run(Box::new(crate::run::journal::delta(run))))
    }

    /// Adds a ticket write (its comments since `before` appended) and keeps the
    /// open-assignment index in step with it. The write expects the store to hold
    /// `before`'s version (none for a new ticket); `after` gets the version it is stored
    /// with.
    pub fn ticket(&mut self, before: Option<&Ticket>, after: &mut Ticket) -> &mut Self {
        let counted = |t: &Ticket| t.assignee.clone().filter(|_| t.status.is_open());
        let (old, new) = (before.and_then(counted), counted(after));
        if old != new {
            if let Some(agent) = old {
                self.push(Write::OpenAssignment { agent, ticket: after.id.clone(), open: false });
            }
            if let Some(agent) = new {
                self.push(Write::OpenAssignment { agent, ticket: after.id.clone(), open: true });
            }
        }
        // A child that opens, closes, or gains or loses a parent: each parent recounts its
        // open children (a timer due now, in this same batch, so a crash cannot lose it).
        let parents =
            |t: Option<&Ticket>| t.map(|t| t.parents().map(String::from).collect::<Vec<_>>()).unwrap_or_default();
        let (was, is) = (parents(before), parents(Some(after)));
        let flipped = before.is_none_or(|b| b.status.is_open() != after.status.is_open());
        if (flipped && !is.is_empty()) || was != is {
            let mut all = was;
            all.extend(is);
            all.sort();
            all.dedup();
            let stamp = after.updated_at.timestamp_nanos_opt().unwrap_or_default();
            for parent in all {
                self.push(Write::Timer(Timer {
                    key: format!("children:{parent}:{}:{stamp}", after.id),
                    due: after.updated_at,
                    kind: TimerKind::CountChildren { parent },
                }));
            }
        }
        let comments_from = before.map_or(0, |b| b.comments.len()).min(after.comments.len());
        // A ticket changed twice in one transaction (a segment of steps) is written once,
        // as it ends up, with every comment added since the transaction's first change,
        // expecting the version the first change expected.
        for w in &mut self.writes {
            if let Write::Ticket { ticket, comments_from: first, expect } = w {
                if ticket.id == after.id {
                    after.version = expect.map_or(1, |v| v + 1);
                    **ticket = after.clone();
                    *first = (*first).min(comments_from);
                    return self;
                }
            }
        }
        let expect = before.map(|b| b.version);
        after.version = expect.map_or(1, |v| v + 1);
        self.push(Write::Ticket { ticket: Box::new(after.clone()), comments_from, expect })
    }

    /// Whether the transaction writes the run already (an earlier event in it resumed
    /// it, say).
    pub fn writes_run(&self, id: &str) -> bool {
        self.writes.iter().any(|w| matches!(w, Write::Run(d) if d.header.id == id))
    }
}

/// Tickets and their history.
#[async_trait::async_trait]
pub trait TicketStore: Send + Sync {
    /// A fresh ticket id (`T-<n>`), unique across restarts.
    async fn next_ticket_id(&self) -> Result<String>;
    /// One ticket.
    async fn ticket(&self, id: &str) -> Result<Option<Ticket>>;
    /// Tickets in id order, filtered and paged.
    async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>>;
    /// A ticket's field-change history, oldest first.
    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>>;
    /// Ids of the tickets whose `time` falls in `[from, to)`, in order of that time (then
    /// id): read from an index, so a report over a month reads that month's tickets.
    async fn tickets_by_time(
        &self,
        time: TicketTime,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>>;
}

/// Workflow definitions and their revisions.
#[async_trait::async_trait]
pub trait WorkflowStore: Send + Sync {
    /// The current record.
    async fn workflow(&self, id: &str) -> Result<Option<WorkflowRecord>>;
    /// All current records, by id.
    async fn workflows(&self) -> Result<Vec<WorkflowRecord>>;
    /// A past or current revision's definition.
    async fn workflow_revision(&self, id: &str, revision: u32) -> Result<Option<Workflow>>;
    /// The revision numbers kept for a workflow, oldest first.
    async fn workflow_revisions(&self, id: &str) -> Result<Vec<u32>>;
}

/// Runs.
#[async_trait::async_trait]
pub trait RunStore: Send + Sync {
    /// A fresh run id (`R-<n>`).
    async fn next_run_id(&self) -> Result<String>;
    /// One run.
    async fn run(&self, id: &str) -> Result<Option<Run>>;
    /// Runs, newest first, filtered.
    async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>>;
    /// Removes up to `limit` finished runs (completed or failed) that finished before
    /// `before`, oldest first, with their journals and indexes; returns how many. The
    /// newest run is always kept, so run numbers are never handed out twice.
    async fn prune_runs(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<u64>;
    /// The headers of runs started at or after `from`, newest first, at most `limit`
    /// (counts per workflow without reading journals).
    async fn run_headers_since(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<crate::run::journal::Header>>;
    /// Ids of runs that still have work to do, oldest first, at most `limit`.
    async fn active_runs(&self, limit: usize) -> Result<Vec<String>>;
    /// Ids of runs waiting on a ticket, oldest first.
    async fn waiting_runs(&self, ticket: &str) -> Result<Vec<String>>;
    /// How many runs wait on a ticket (parked at a wait or an approval).
    async fn count_waiting_runs(&self) -> Result<u64>;
}

/// Events.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync {
    /// A fresh event id (`E-<n>`).
    async fn next_event_id(&self) -> Result<String>;
    /// One event.
    async fn event(&self, id: &str) -> Result<Option<Event>>;
    /// A ticket's events, oldest first.
    async fn ticket_events(&self, ticket: &str) -> Result<Vec<Event>>;
    /// Removes up to `limit` of the oldest events raised before `before`, with their
    /// index entries; returns how many. The newest event is always kept (as runs).
    async fn prune_events(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<u64>;
}

/// Agents, groups and routing state.
#[async_trait::async_trait]
pub trait TeamStore: Send + Sync {
    /// One agent.
    async fn agent(&self, id: &str) -> Result<Option<Agent>>;
    /// All agents, by id.
    async fn agents(&self) -> Result<Vec<Agent>>;
    /// One group.
    async fn group(&self, id: &str) -> Result<Option<Group>>;
    /// All groups, by id.
    async fn groups(&self) -> Result<Vec<Group>>;
    /// Open tickets currently assigned to the agent.
    async fn open_load(&self, agent: &str) -> Result<u32>;
    /// The last agent round-robin chose in the group.
    async fn round_robin_cursor(&self, group: &str) -> Result<Option<String>>;
}

/// The audit log.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// The newest entries first.
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>>;
    /// Removes up to `limit` of the oldest audit entries recorded before `before`;
    /// returns how many.
    async fn prune_audit(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<u64>;
}

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimerKind {
    /// Check a ticket's SLA clocks for warnings and breaches.
    SlaCheck {
        /// The ticket.
        ticket: String,
    },
    /// End a run's wait (its duration is over).
    ResumeRun {
        /// The run.
        run: String,
    },
    /// Time to remind an approval stage's undecided approvers.
    ApprovalRemind {
        /// The approval.
        approval: String,
        /// The stage it was set for.
        stage: usize,
    },
    /// An approval stage's due time.
    ApprovalDue {
        /// The approval.
        approval: String,
        /// The stage it was set for.
        stage: usize,
    },
    /// A child of `parent` opened, closed or was linked: recount the parent's open
    /// children (one timer per change, so none is lost to a concurrent one).
    CountChildren {
        /// The parent ticket.
        parent: String,
    },
    /// A workflow's cron schedule is due. The expression and zone are kept so that
    /// republishing an unchanged schedule keeps the timer (and its catch-up) as it is.
    Cron {
        /// The workflow.
        workflow: String,
        /// Its expression when the timer was set.
        cron: String,
        /// Its zone when the timer was set.
        timezone: String,
        /// The latest occurrence already fired: nothing at or before it fires again,
        /// whatever the next-occurrence computation says (absent in older stores).
        #[serde(default)]
        last_fired: Option<chrono::DateTime<chrono::Utc>>,
        /// Occurrences missed (fired late by catch-up, or skipped) since the timer was set.
        #[serde(default)]
        missed: u64,
    },
}

/// A durable timer. Timers live in the store, indexed by due time, so any number of
/// them costs no memory until it is due, and they survive restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    /// Unique key (`sla:T-5`); setting a timer with the same key replaces it.
    pub key: String,
    /// When it fires.
    pub due: chrono::DateTime<chrono::Utc>,
    /// What it does.
    pub kind: TimerKind,
}

/// Timers, SLA state, calendars and policies.
#[async_trait::async_trait]
pub trait TimeStore: Send + Sync {
    /// Timers due at or before `until`, earliest first.
    async fn due_timers(&self, until: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<Vec<Timer>>;
    /// The earliest timer's due time.
    async fn next_timer(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>>;
    /// The timer with this key.
    async fn timer(&self, key: &str) -> Result<Option<Timer>>;
    /// A ticket's SLA clocks.
    async fn ticket_sla(&self, ticket: &str) -> Result<Option<crate::sla::TicketSla>>;
    /// All calendars.
    async fn calendars(&self) -> Result<Vec<crate::calendar::CalendarSpec>>;
    /// All SLA policies, by id.
    async fn sla_policies(&self) -> Result<Vec<crate::sla::Policy>>;
}

/// Installed plugins.
#[async_trait::async_trait]
pub trait PluginStore: Send + Sync {
    /// A plugin's record.
    async fn plugin(&self, id: &str) -> Result<Option<PluginRecord>>;
    /// All plugins, by id.
    async fn plugins(&self) -> Result<Vec<PluginRecord>>;
    /// A stored module.
    async fn plugin_module(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>>;
    /// A value of a plugin's key-value store.
    async fn plugin_kv(&self, plugin: &str, key: &str) -> Result<Option<serde_json::Value>>;
    /// A stored compiled artifact (as written by [`Write::PluginArtifact`]).
    async fn plugin_artifact(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>>;
    /// Keys and bytes (keys plus encoded values) of a plugin's key-value store.
    async fn plugin_kv_usage(&self, plugin: &str) -> Result<(u64, u64)>;
}

/// Kinds of small JSON documents kept by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// [`crate::approval::Approval`] by id.
    Approval,
    /// Inbound webhook endpoints by id.
    Webhook,
    /// Inbound deliveries by `<endpoint>/<delivery id>`: the first answer, for idempotency.
    Delivery,
    /// Outbound webhooks that ran out of attempts, by id.
    DeadLetter,
    /// Who may decide which pending approval now, by `<acting>/<approval id>`: the
    /// "pending for me" inbox reads its own entries, not every approval.
    Pending,
    /// Unpublished workflow drafts by workflow id.
    Draft,
    /// What `serve --demo` last applied from a shipped file, by `<kind>/<id>`: a digest,
    /// so a later start applies a changed file but never overwrites an admin's edit.
    Seeded,
}

impl DocKind {
    /// The key prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            DocKind::Approval => "d/approval/",
            DocKind::Webhook => "d/webhook/",
            DocKind::Delivery => "d/delivery/",
            DocKind::DeadLetter => "d/dead/",
            DocKind::Pending => "d/pending/",
            DocKind::Draft => "d/draft/",
            DocKind::Seeded => "d/seeded/",
        }
    }
}

/// Small JSON documents by kind and id: approvals, webhook endpoints, delivery records,
/// dead letters. Typed access goes through [`get_doc`], [`list_docs`] and [`Tx::doc`].
#[async_trait::async_trait]
pub trait DocStore: Send + Sync {
    /// A unique, increasing number for approval ids: dense (1, 2, 3, ... across restarts,
    /// continuing after the highest stored approval).
    async fn next_number(&self) -> Result<u64>;
    /// A document's JSON.
    async fn doc(&self, kind: DocKind, id: &str) -> Result<Option<Vec<u8>>>;
    /// Documents of a kind in id order, after `after`, at most `limit`.
    async fn docs(&self, kind: DocKind, after: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>>;
}

/// Reads a typed document.
pub async fn get_doc<T: serde::de::DeserializeOwned>(
    store: &dyn DocStore,
    kind: DocKind,
    id: &str,
) -> Result<Option<T>> {
    match store.doc(kind, id).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt { key: format!("{}{id}", kind.prefix()), detail: e.to_string() }),
        None => Ok(None),
    }
}

/// Lists typed documents (skipping none: a document that does not decode is an error).
pub async fn list_docs<T: serde::de::DeserializeOwned>(
    store: &dyn DocStore,
    kind: DocKind,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<T>> {
    store
        .docs(kind, after, limit)
        .await?
        .iter()
        .map(|b| {
            serde_json::from_slice(b).map_err(|e| Error::Corrupt { key: kind.prefix().into(), detail: e.to_string() })
        })
        .collect()
}

/// A future returned by [`Store::commit`].
pub type CommitFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// A complete backend.
#[async_trait::async_trait]
pub trait Store:
    TicketStore + WorkflowStore + RunStore + EventStore + TeamStore + AuditStore + PluginStore + TimeStore + DocStore
{
    /// Applies `tx` atomically; resolves once it is durable (as the configured
    /// [`Durability`] defines it). Reads see the writes as soon as this is called.
    async fn commit(&self, tx: Tx) -> Result<()> {
        self.apply(tx).await?.await
    }
    /// [`Store::commit`] in two halves: applies `tx` now (reads see it when this
    /// returns) and gives back the wait for durability.
    ///
    /// Between the two a caller may release what it holds (a worker, a ticket lock),
    /// since the backend must keep durability in apply order: whatever another writer
    /// commits after reading these writes becomes durable with them or after them, never
    /// before. Side effects that depend on the writes (acknowledging a client, starting
    /// the runs they created) still wait for the returned future.
    async fn apply(&self, tx: Tx) -> Result<CommitFuture<'_>>;
    /// Flushes everything and stops background work.
    fn close(&self) -> Result<()>;
    /// Why the store takes no more writes, once a write failed for good (disk full,
    /// I/O error); `None` while healthy.
    fn failure(&self) -> Option<Error> {
        None
    }
    /// Whether the store answers now (a database backend asks its database; an embedded
    /// one is always there): what readiness reports besides [`Store::failure`].
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
    /// Writes a consistent snapshot of everything stored to `out` (blocking: call it on
    /// a blocking thread); returns how many records it holds. Writes wait meanwhile.
    fn backup(&self, out: &mut dyn std::io::Write) -> Result<u64> {
        let _ = out;
        Err(Error::Backend("this store backend makes no backups (back up its database instead)".into()))
    }
}
