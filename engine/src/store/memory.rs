//! The in-memory store: every table a map under one lock, a [`Tx`] applied whole under
//! it. Nothing survives the process. It exists so the engine and its tests can run with
//! no disk, and as the second implementation the store contract (`store::contract`) is
//! checked against: sled and this one must agree on every rule of the [`Store`] traits.

use super::*;
use crate::calendar::CalendarSpec;
use crate::run::journal::{self, Entry, Header, Start};
use crate::run::RunStatus;
use crate::sla::{Policy, TicketSla};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Memory-backed [`Store`].
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// Last ticket, run and event numbers handed out.
    counters: [AtomicU64; 3],
    /// Last document number handed out.
    numbers: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
    /// See [`MemoryStore::interfere_once`].
    interference: Mutex<Option<Interference>>,
}

/// A write another writer slips in just before a matching transaction.
type Interference = (Box<dyn Fn(&Tx) -> bool + Send>, Tx);

#[derive(Default)]
struct Tables {
    /// Without their comments, which are appended apart.
    tickets: BTreeMap<u64, Ticket>,
    comments: BTreeMap<(u64, u32), crate::ticket::Comment>,
    history: BTreeMap<(u64, u64), HistoryEntry>,
    workflows: BTreeMap<String, WorkflowRecord>,
    revisions: BTreeMap<(String, u32), Workflow>,
    headers: BTreeMap<u64, Header>,
    starts: HashMap<u64, Start>,
    journal: BTreeMap<(u64, u32), Entry>,
    active: BTreeSet<u64>,
    runs_by_ticket: BTreeSet<(u64, u64)>,
    waiting: BTreeSet<(u64, u64)>,
    events: BTreeMap<u64, Event>,
    events_by_ticket: BTreeSet<(u64, u64)>,
    agents: BTreeMap<String, Agent>,
    groups: BTreeMap<String, Group>,
    open: BTreeSet<(String, u64)>,
    round_robin: HashMap<String, String>,
    audit: BTreeMap<u64, AuditEntry>,
    sla: BTreeMap<u64, TicketSla>,
    calendars: BTreeMap<String, CalendarSpec>,
    policies: BTreeMap<String, Policy>,
    /// By due time (ms) and key, as sled orders them.
    timers: BTreeMap<(i64, String), Timer>,
    timer_keys: HashMap<String, (i64, String)>,
    plugins: BTreeMap<String, PluginRecord>,
    modules: BTreeMap<(String, String), Vec<u8>>,
    artifacts: BTreeMap<(String, String), Vec<u8>>,
    kv: BTreeMap<(String, String), serde_json::Value>,
    docs: BTreeMap<(&'static str, String), Vec<u8>>,
    /// Orders history and audit entries.
    seq: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a second writer (another engine node): the next transaction for which
    /// `when` holds finds `first` applied just before it, as if committed in between
    /// its reads and its commit. Tests of what a writer does on [`Error::Conflict`].
    pub fn interfere_once(&self, when: impl Fn(&Tx) -> bool + Send + 'static, first: Tx) {
        *self.interference.lock().unwrap_or_else(|p| p.into_inner()) = Some((Box::new(when), first));
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self, slot: usize, letter: char) -> String {
        format!("{letter}-{}", self.counters[slot].fetch_add(1, Ordering::Relaxed) + 1)
    }
}

fn num(id: &str, letter: char) -> Result<u64> {
    parse_id(id, letter).ok_or_else(|| Error::Backend(format!("malformed id `{id}`")))
}

impl Tables {
    /// Refuses what sled refuses before it applies anything: malformed ids, a ticket
    /// write that expects another version than the one held, and a run delta whose
    /// journal entries were appended by another writer since it was read.
    fn check(&self, tx: &Tx) -> Result<()> {
        super::check_ticket_versions(super::ticket_expectations(tx), |id| {
            Ok(self.tickets.get(&num(id, 'T')?).map(|t| t.version))
        })?;
        for w in &tx.writes {
            match w {
                Write::Ticket { ticket, .. } => num(&ticket.id, 'T').map(drop)?,
                Write::History(h) => num(&h.ticket_id, 'T').map(drop)?,
                Write::Event(e) => {
                    num(&e.id, 'E')?;
                    num(&e.ticket_id, 'T').map(drop)?
                }
                Write::OpenAssignment { ticket, .. } => num(ticket, 'T').map(drop)?,
                Write::Sla(s) => num(&s.ticket_id, 'T').map(drop)?,
                Write::Run(d) => {
                    let n = num(&d.header.id, 'R')?;
                    if let Some(t) = &d.header.ticket {
                        num(t, 'T')?;
                    }
                    if let Some(seq) = d.expected_free() {
                        if self.journal.contains_key(&(n, seq)) {
                            return Err(Error::Conflict(format!("run {} (journal entry {seq})", d.header.id)));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn apply(&mut self, tx: Tx) -> Result<()> {
        for w in tx.writes {
            match w {
                Write::Ticket { mut ticket, comments_from, .. } => {
                    let n = num(&ticket.id, 'T')?;
                    for c in std::mem::take(&mut ticket.comments).into_iter().skip(comments_from) {
                        self.comments.insert((n, c.id), c);
                    }
                    self.tickets.insert(n, *ticket);
                }
                Write::History(h) => {
                    self.seq += 1;
                    self.history.insert((num(&h.ticket_id, 'T')?, self.seq), h);
                }
                Write::Workflow(w) => {
                    self.workflows.insert(w.id.clone(), *w);
                }
                Write::WorkflowRevision { revision, definition } => {
                    self.revisions.insert((definition.id.clone(), revision), *definition);
                }
                Write::Run(delta) => self.put_run(*delta)?,
                Write::Event(e) => {
                    let n = num(&e.id, 'E')?;
                    self.events_by_ticket.insert((num(&e.ticket_id, 'T')?, n));
                    self.events.insert(n, *e);
                }
                Write::Agent(a) => {
                    self.agents.insert(a.id.clone(), a);
                }
                Write::Group(g) => {
                    self.groups.insert(g.id.clone(), g);
                }
                Write::OpenAssignment { agent, ticket, open } => {
                    let key = (agent, num(&ticket, 'T')?);
                    if open {
                        self.open.insert(key);
                    } else {
                        self.open.remove(&key);
                    }
                }
                Write::RoundRobin { group, agent } => {
                    self.round_robin.insert(group, agent);
                }
                Write::Audit(a) => {
                    self.seq += 1;
                    self.audit.insert(self.seq, a);
                }
                Write::Plugin(p) => {
                    self.plugins.insert(p.id.clone(), *p);
                }
                Write::PluginModule { id, version, bytes } => {
                    self.modules.insert((id, version), bytes);
                }
                Write::PluginArtifact { id, version, bytes } => {
                    self.artifacts.insert((id, version), bytes);
                }
                Write::DeletePluginVersion { id, version } => {
                    let key = (id, version);
                    self.modules.remove(&key);
                    self.artifacts.remove(&key);
                }
                Write::DeletePlugin { id } => {
                    self.plugins.remove(&id);
                    self.modules.retain(|(p, _), _| *p != id);
                    self.artifacts.retain(|(p, _), _| *p != id);
                    self.kv.retain(|(p, _), _| *p != id);
                }
                Write::Sla(s) => {
                    self.sla.insert(num(&s.ticket_id, 'T')?, *s);
                }
                Write::Calendar(c) => {
                    self.calendars.insert(c.id.clone(), c);
                }
                Write::SlaPolicy(p) => {
                    self.policies.insert(p.id.clone(), *p);
                }
                Write::Timer(t) => {
                    self.cancel_timer(&t.key);
                    let at = (t.due.timestamp_millis().max(0), t.key.clone());
                    self.timer_keys.insert(t.key.clone(), at.clone());
                    self.timers.insert(at, t);
                }
                Write::CancelTimer(key) => self.cancel_timer(&key),
                Write::Doc { kind, id, value } => {
                    let key = (kind.prefix(), id);
                    match value {
                        Some(v) => self.docs.insert(key, v),
                        None => self.docs.remove(&key),
                    };
                }
                Write::PluginKv { plugin, key, value } => {
                    match value {
                        Some(v) => self.kv.insert((plugin, key), v),
                        None => self.kv.remove(&(plugin, key)),
                    };
                }
            }
        }
        Ok(())
    }

    fn cancel_timer(&mut self, key: &str) {
        if let Some(at) = self.timer_keys.remove(key) {
            self.timers.remove(&at);
        }
    }

    fn put_run(&mut self, delta: journal::Delta) -> Result<()> {
        let journal::Delta { header, start, entries, .. } = delta;
        let n = num(&header.id, 'R')?;
        if header.status.is_active() {
            self.active.insert(n);
        } else {
            self.active.remove(&n);
        }
        if let Some(t) = &header.ticket {
            let t = num(t, 'T')?;
            self.runs_by_ticket.insert((t, n));
            if header.status == RunStatus::Waiting {
                self.waiting.insert((t, n));
            } else {
                self.waiting.remove(&(t, n));
            }
        }
        if let Some(start) = start {
            self.starts.insert(n, *start);
        }
        for (seq, entry) in entries {
            self.journal.insert((n, seq), entry);
        }
        self.headers.insert(n, header);
        Ok(())
    }

    fn ticket(&self, n: u64) -> Option<Ticket> {
        let mut t = self.tickets.get(&n)?.clone();
        t.comments = self.comments.range((n, 0)..=(n, u32::MAX)).map(|(_, c)| c.clone()).collect();
        Some(t)
    }

    fn run(&self, n: u64) -> Option<Run> {
        let header = self.headers.get(&n)?.clone();
        let start = self.starts.get(&n)?.clone();
        let entries = self.journal.range((n, 0)..=(n, u32::MAX)).map(|(_, e)| e.clone());
        Some(journal::fold(header, start, entries))
    }
}

#[async_trait::async_trait]
impl TicketStore for MemoryStore {
    async fn next_ticket_id(&self) -> Result<String> {
        Ok(self.next(0, 'T'))
    }

    async fn ticket(&self, id: &str) -> Result<Option<Ticket>> {
        Ok(parse_id(id, 'T').and_then(|n| self.tables().ticket(n)))
    }

    async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>> {
        let tables = self.tables();
        let page = tables.tickets.range(filter.window()).filter(|(_, t)| filter.matches(t)).take(filter.page_size());
        Ok(page.filter_map(|(n, _)| tables.ticket(*n)).collect())
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        let Some(n) = parse_id(id, 'T') else { return Ok(Vec::new()) };
        Ok(self.tables().history.range((n, 0)..=(n, u64::MAX)).map(|(_, h)| h.clone()).collect())
    }

    async fn tickets_by_time(
        &self,
        time: TicketTime,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>> {
        let tables = self.tables();
        let mut found: Vec<_> = tables
            .tickets
            .iter()
            .filter_map(|(n, t)| time.of(t).filter(|at| (from..to).contains(at)).map(|at| (at, *n)))
            .collect();
        found.sort();
        Ok(found.into_iter().map(|(_, n)| format!("T-{n}")).collect())
    }
}

#[async_trait::async_trait]
impl WorkflowStore for MemoryStore {
    async fn workflow(&self, id: &str) -> Result<Option<WorkflowRecord>> {
        Ok(self.tables().workflows.get(id).cloned())
    }

    async fn workflows(&self) -> Result<Vec<WorkflowRecord>> {
        Ok(self.tables().workflows.values().cloned().collect())
    }

    async fn workflow_revision(&self, id: &str, revision: u32) -> Result<Option<Workflow>> {
        Ok(self.tables().revisions.get(&(id.to_string(), revision)).cloned())
    }

    async fn workflow_revisions(&self, id: &str) -> Result<Vec<u32>> {
        let tables = self.tables();
        Ok(tables.revisions.range((id.to_string(), 0)..=(id.to_string(), u32::MAX)).map(|((_, r), _)| *r).collect())
    }
}

#[async_trait::async_trait]
impl RunStore for MemoryStore {
    async fn next_run_id(&self) -> Result<String> {
        Ok(self.next(1, 'R'))
    }

    async fn run(&self, id: &str) -> Result<Option<Run>> {
        Ok(parse_id(id, 'R').and_then(|n| self.tables().run(n)))
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let tables = self.tables();
        let ids: Vec<u64> = match &filter.ticket {
            Some(ticket) => {
                let Some(t) = parse_id(ticket, 'T') else { return Ok(Vec::new()) };
                tables.runs_by_ticket.range((t, 0)..=(t, u64::MAX)).rev().map(|(_, n)| *n).collect()
            }
            None => tables.headers.keys().rev().copied().collect(),
        };
        Ok(ids
            .into_iter()
            .filter_map(|n| tables.headers.get(&n).map(|h| (n, h)))
            .take_while(|(_, h)| !filter.before_range(h))
            .filter(|(_, h)| filter.keeps(h))
            .filter_map(|(n, _)| tables.run(n))
            .take(filter.page_size())
            .collect())
    }

    async fn prune_runs(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<u64> {
        let mut tables = self.tables();
        let newest = tables.headers.keys().next_back().copied();
        let done: Vec<(u64, Option<u64>)> = tables
            .headers
            .iter()
            .take_while(|(n, h)| h.created_at < before && Some(**n) != newest)
            .filter(|(_, h)| {
                !h.status.is_active() && h.status != RunStatus::Waiting && h.finished_at.is_some_and(|f| f < before)
            })
            .take(limit)
            .map(|(n, h)| (*n, h.ticket.as_deref().and_then(|t| parse_id(t, 'T'))))
            .collect();
        for (n, ticket) in &done {
            tables.headers.remove(n);
            tables.starts.remove(n);
            let entries: Vec<(u64, u32)> = tables.journal.range((*n, 0)..=(*n, u32::MAX)).map(|(k, _)| *k).collect();
            for k in entries {
                tables.journal.remove(&k);
            }
            if let Some(t) = ticket {
                tables.runs_by_ticket.remove(&(*t, *n));
            }
        }
        Ok(done.len() as u64)
    }

    async fn run_headers_since(&self, from: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<Vec<Header>> {
        let filter = RunFilter { from: Some(from), ..Default::default() };
        let tables = self.tables();
        Ok(tables
            .headers
            .values()
            .rev()
            .take_while(|h| !filter.before_range(h))
            .filter(|h| filter.keeps(h))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn active_runs(&self, limit: usize) -> Result<Vec<String>> {
        Ok(self.tables().active.iter().take(limit).map(|n| format!("R-{n}")).collect())
    }

    async fn waiting_runs(&self, ticket: &str) -> Result<Vec<String>> {
        let Some(t) = parse_id(ticket, 'T') else { return Ok(Vec::new()) };
        Ok(self.tables().waiting.range((t, 0)..=(t, u64::MAX)).map(|(_, n)| format!("R-{n}")).collect())
    }

    async fn count_waiting_runs(&self) -> Result<u64> {
        Ok(self.tables().waiting.len() as u64)
    }
}

#[async_trait::async_trait]
impl EventStore for MemoryStore {
    async fn next_event_id(&self) -> Result<String> {
        Ok(self.next(2, 'E'))
    }

    async fn event(&self, id: &str) -> Result<Option<Event>> {
        Ok(parse_id(id, 'E').and_then(|n| self.tables().events.get(&n).cloned()))
    }

    async fn ticket_events(&self, ticket: &str) -> Result<Vec<Event>> {
        let Some(t) = parse_id(ticket, 'T') else { return Ok(Vec::new()) };
        let tables = self.tables();
        Ok(tables
            .events_by_ticket
            .range((t, 0)..=(t, u64::MAX))
            .filter_map(|(_, n)| tables.events.get(n).cloned())
            .collect())
    }

    async fn prune_events(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<u64> {
        let mut tables = self.tables();
        let newest = tables.events.keys().next_back().copied();
        let old: Vec<(u64, Option<u64>)> = tables
            .events
            .iter()
            .take_while(|(n, e)| e.at < before && Some(**n) != newest)
            .take(limit)
            .map(|(n, e)| (*n, parse_id(&e.ticket_id, 'T')))
            .collect();
        for (n, ticket) in &old {
            tables.events.remove(n);
            if let Some(t) = ticket {
                tables.events_by_ticket.remove(&(*t, *n));
            }
        }
        Ok(old.len() as u64)
    }
}

#[async_trait::async_trait]
impl TeamStore for MemoryStore {
    async fn agent(&self, id: &str) -> Result<Option<Agent>> {
        Ok(self.tables().agents.get(id).cloned())
    }

    async fn agents(&self) -> Result<Vec<Agent>> {
        Ok(self.tables().agents.values().cloned().collect())
    }

    async fn group(&self, id: &str) -> Result<Option<Group>> {
        Ok(self.tables().groups.get(id).cloned())
    }

    async fn groups(&self) -> Result<Vec<Group>> {
        Ok(self.tables().groups.values().cloned().collect())
    }

    async fn open_load(&self, agent: &str) -> Result<u32> {
        let a = agent.to_string();
        Ok(self.tables().open.range((a.clone(), 0)..=(a, u64::MAX)).count() as u32)
    }

    async fn round_robin_cursor(&self, group: &str) -> Result<Option<String>> {
        Ok(self.tables().round_robin.get(group).cloned())
    }
}

#[async_trait::async_trait]
impl AuditStore for MemoryStore {
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        Ok(self.tables().audit.values().rev().take(limit).cloned().collect())
    }

    async fn prune_audit(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<u64> {
        let mut tables = self.tables();
        let old: Vec<u64> =
            tables.audit.iter().take_while(|(_, a)| a.at < before).take(limit).map(|(k, _)| *k).collect();
        for k in &old {
            tables.audit.remove(k);
        }
        Ok(old.len() as u64)
    }
}

#[async_trait::async_trait]
impl TimeStore for MemoryStore {
    async fn due_timers(&self, until: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<Vec<Timer>> {
        let end = until.timestamp_millis().max(0);
        Ok(self
            .tables()
            .timers
            .iter()
            .take_while(|((due, _), _)| *due <= end)
            .take(limit)
            .map(|(_, t)| t.clone())
            .collect())
    }

    async fn next_timer(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(self.tables().timers.values().next().map(|t| t.due))
    }

    async fn timer(&self, key: &str) -> Result<Option<Timer>> {
        let tables = self.tables();
        Ok(tables.timer_keys.get(key).and_then(|at| tables.timers.get(at)).cloned())
    }

    async fn ticket_sla(&self, ticket: &str) -> Result<Option<TicketSla>> {
        Ok(parse_id(ticket, 'T').and_then(|n| self.tables().sla.get(&n).cloned()))
    }

    async fn calendars(&self) -> Result<Vec<CalendarSpec>> {
        Ok(self.tables().calendars.values().cloned().collect())
    }

    async fn sla_policies(&self) -> Result<Vec<Policy>> {
        Ok(self.tables().policies.values().cloned().collect())
    }
}

#[async_trait::async_trait]
impl PluginStore for MemoryStore {
    async fn plugin(&self, id: &str) -> Result<Option<PluginRecord>> {
        Ok(self.tables().plugins.get(id).cloned())
    }

    async fn plugins(&self) -> Result<Vec<PluginRecord>> {
        Ok(self.tables().plugins.values().cloned().collect())
    }

    async fn plugin_module(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tables().modules.get(&(id.to_string(), version.to_string())).cloned())
    }

    async fn plugin_kv(&self, plugin: &str, key: &str) -> Result<Option<serde_json::Value>> {
        Ok(self.tables().kv.get(&(plugin.to_string(), key.to_string())).cloned())
    }

    async fn plugin_artifact(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tables().artifacts.get(&(id.to_string(), version.to_string())).cloned())
    }

    async fn plugin_kv_usage(&self, plugin: &str) -> Result<(u64, u64)> {
        let tables = self.tables();
        let mine = tables.kv.iter().filter(|((p, _), _)| p == plugin);
        Ok(mine.fold((0, 0), |(n, bytes), ((_, k), v)| {
            (n + 1, bytes + (k.len() + serde_json::to_vec(v).map_or(0, |b| b.len())) as u64)
        }))
    }
}

#[async_trait::async_trait]
impl DocStore for MemoryStore {
    async fn next_number(&self) -> Result<u64> {
        Ok(self.numbers.fetch_add(1, Ordering::SeqCst) + 1)
    }

    async fn doc(&self, kind: DocKind, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tables().docs.get(&(kind.prefix(), id.to_string())).cloned())
    }

    async fn docs(&self, kind: DocKind, after: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>> {
        let tables = self.tables();
        let p = kind.prefix();
        let from = match after {
            Some(a) => std::ops::Bound::Excluded((p, a.to_string())),
            None => std::ops::Bound::Included((p, String::new())),
        };
        Ok(tables
            .docs
            .range((from, std::ops::Bound::Unbounded))
            .take_while(|((k, _), _)| *k == p)
            .take(limit)
            .map(|(_, v)| v.clone())
            .collect())
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn apply(&self, tx: Tx) -> Result<CommitFuture<'_>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let mut tables = self.tables();
        let first = {
            let mut slot = self.interference.lock().unwrap_or_else(|p| p.into_inner());
            match slot.take() {
                Some((when, first)) if when(&tx) => Some(first),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        if let Some(first) = first {
            tables.check(&first)?;
            tables.apply(first)?;
        }
        tables.check(&tx)?;
        tables.apply(tx)?;
        Ok(Box::pin(async { Ok(()) }))
    }

    fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}
