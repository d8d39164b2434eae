//! sled's read side: the per-table read traits of the store API (tickets, workflows,
//! events, teams, audit, timers, plugins, documents; runs are `runs.rs`) over the keys of
//! `keys::Key`. Writes go through `Store::apply` in `sled.rs`.

use super::{be, body, decode, parse_id, Key, SledStore};
use crate::manifest::PluginRecord;
use crate::run::{Event, HistoryEntry};
use crate::store::{
    AuditEntry, AuditStore, DocKind, DocStore, EventStore, PluginStore, Result, TeamStore, TicketFilter, TicketStore,
    TicketTime, TimeStore, Timer, WorkflowStore,
};
use crate::team::{Agent, Group};
use crate::ticket::Ticket;
use crate::workflow::{Workflow, WorkflowRecord};

impl SledStore {
    /// A stored ticket record with its comments (stored apart, appended) put back.
    fn with_comments(&self, n: u64, mut ticket: Ticket) -> Result<Ticket> {
        ticket.comments = self.scan(&Key::Comments(n).bytes())?;
        Ok(ticket)
    }
}

#[async_trait::async_trait]
impl TicketStore for SledStore {
    async fn next_ticket_id(&self) -> Result<String> {
        self.next_id('T')
    }

    async fn ticket(&self, id: &str) -> Result<Option<Ticket>> {
        match parse_id(id, 'T') {
            Some(n) => self.get(&Key::Ticket(n).bytes())?.map(|t| self.with_comments(n, t)).transpose(),
            None => Ok(None),
        }
    }

    async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>> {
        let window = filter.window();
        let mut out = Vec::new();
        let mut keep = |n: u64, t: Ticket| -> Result<bool> {
            if filter.matches(&t) {
                out.push(self.with_comments(n, t)?);
            }
            Ok(out.len() >= filter.page_size())
        };
        let prefixes = super::index::prefixes(filter);
        if prefixes.is_empty() {
            // No indexed field: the table in id order (a text search reads a window).
            let start = Key::Ticket(window.start).bytes();
            let prefilter = text_prefilter(filter.text.as_deref());
            for kv in self.db.range(start..) {
                let (k, v) = kv.map_err(|e| self.io(e))?;
                if !k.starts_with(&Key::Tickets.bytes()) || be(&k) >= window.end {
                    break;
                }
                // A record whose JSON does not hold the text anywhere cannot match:
                // skipped without decoding.
                if prefilter.as_ref().is_some_and(|t| !String::from_utf8_lossy(&v).to_lowercase().contains(t.as_str()))
                {
                    continue;
                }
                if keep(be(&k), decode(&k, &v)?)? {
                    break;
                }
            }
        } else {
            // The tickets in every named field's index; each then passes the whole filter.
            let mut n = window.start;
            while let Some(found) = self.next_in_all(&prefixes, n, window.end)? {
                if let Some(t) = self.get::<Ticket>(&Key::Ticket(found).bytes())? {
                    if keep(found, t)? {
                        break;
                    }
                }
                n = found.saturating_add(1);
            }
        }
        Ok(out)
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        match parse_id(id, 'T') {
            Some(n) => self.scan(&Key::HistoryOf(n).bytes()),
            None => Ok(Vec::new()),
        }
    }

    async fn tickets_by_time(
        &self,
        time: TicketTime,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>> {
        use super::index::{prefix, stamp, time_tag};
        let tag = time_tag(time);
        let (start, end) = (prefix(tag, &stamp(from)), prefix(tag, &stamp(to)));
        let mut out = Vec::new();
        if start < end {
            for k in self.db.range(start..end).keys() {
                let k = k.map_err(|e| self.io(e))?;
                out.push(format!("T-{}", be(&k[k.len().saturating_sub(8)..])));
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl WorkflowStore for SledStore {
    async fn workflow(&self, id: &str) -> Result<Option<WorkflowRecord>> {
        self.get(&Key::Workflow(id).bytes())
    }

    async fn workflows(&self) -> Result<Vec<WorkflowRecord>> {
        self.scan(&Key::Workflows.bytes())
    }

    async fn workflow_revision(&self, id: &str, revision: u32) -> Result<Option<Workflow>> {
        self.get(&Key::Revision(id, revision).bytes())
    }

    async fn workflow_revisions(&self, id: &str) -> Result<Vec<u32>> {
        let prefix = Key::Revisions(id).bytes();
        let mut out = Vec::new();
        for k in self.db.scan_prefix(&prefix).keys() {
            let k = k.map_err(|e| self.io(e))?;
            if let Ok(bytes) = <[u8; 4]>::try_from(&k[prefix.len()..]) {
                out.push(u32::from_be_bytes(bytes));
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl EventStore for SledStore {
    async fn next_event_id(&self) -> Result<String> {
        self.next_id('E')
    }

    async fn event(&self, id: &str) -> Result<Option<Event>> {
        match parse_id(id, 'E') {
            Some(n) => self.get(&Key::Event(n).bytes()),
            None => Ok(None),
        }
    }

    async fn ticket_events(&self, ticket: &str) -> Result<Vec<Event>> {
        let Some(t) = parse_id(ticket, 'T') else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for k in self.keys(&Key::EventsOfTicket(t).bytes())? {
            if let Some(e) = self.get(&Key::Event(be(&k)).bytes())? {
                out.push(e);
            }
        }
        Ok(out)
    }

    async fn prune_events(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<u64> {
        let mut batch = ::sled::Batch::default();
        let mut n = 0u64;
        let newest = self.db.scan_prefix(Key::Events.bytes()).keys().next_back().transpose().map_err(|e| self.io(e))?;
        for kv in self.db.scan_prefix(Key::Events.bytes()).take(limit) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            let event: Event = decode(&k, &v)?;
            // Event numbers follow times; the newest stays (the next number counts from it).
            if event.at >= before || newest.as_ref() == Some(&k) {
                break;
            }
            if let Some(t) = parse_id(&event.ticket_id, 'T') {
                batch.remove(Key::EventOfTicket(t, be(&k)).bytes());
            }
            batch.remove(k);
            n += 1;
        }
        self.apply_removals(batch)?;
        Ok(n)
    }
}

#[async_trait::async_trait]
impl TeamStore for SledStore {
    async fn agent(&self, id: &str) -> Result<Option<Agent>> {
        self.get(&Key::Agent(id).bytes())
    }

    async fn agents(&self) -> Result<Vec<Agent>> {
        self.scan(&Key::Agents.bytes())
    }

    async fn group(&self, id: &str) -> Result<Option<Group>> {
        self.get(&Key::Group(id).bytes())
    }

    async fn groups(&self) -> Result<Vec<Group>> {
        self.scan(&Key::Groups.bytes())
    }

    async fn open_load(&self, agent: &str) -> Result<u32> {
        Ok(self.keys(&Key::OpenOf(agent).bytes())?.len() as u32)
    }

    async fn round_robin_cursor(&self, group: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .get(Key::RoundRobin(group).bytes())
            .map_err(|e| self.io(e))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

#[async_trait::async_trait]
impl AuditStore for SledStore {
    async fn prune_audit(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<u64> {
        let mut batch = ::sled::Batch::default();
        let mut n = 0u64;
        for kv in self.db.scan_prefix(Key::Audits.bytes()).take(limit) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            let entry: AuditEntry = decode(&k, &v)?;
            if entry.at >= before {
                break;
            }
            batch.remove(k);
            n += 1;
        }
        self.apply_removals(batch)?;
        Ok(n)
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(Key::Audits.bytes()).rev().take(limit) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl TimeStore for SledStore {
    async fn due_timers(&self, until: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<Vec<Timer>> {
        let end = Key::TimersBefore(until.timestamp_millis().max(0) as u64 + 1).bytes();
        let mut out = Vec::new();
        for kv in self.db.range(Key::Timers.bytes()..end).take(limit) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    async fn next_timer(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        match self.db.scan_prefix(Key::Timers.bytes()).next().transpose().map_err(|e| self.io(e))? {
            Some((k, v)) => Ok(Some(decode::<Timer>(&k, &v)?.due)),
            None => Ok(None),
        }
    }

    async fn timer(&self, key: &str) -> Result<Option<Timer>> {
        match self.db.get(Key::TimerIndex(key).bytes()).map_err(|e| self.io(e))? {
            Some(k) => self.get(&k),
            None => Ok(None),
        }
    }

    async fn ticket_sla(&self, ticket: &str) -> Result<Option<crate::sla::TicketSla>> {
        match parse_id(ticket, 'T') {
            Some(n) => self.get(&Key::Sla(n).bytes()),
            None => Ok(None),
        }
    }

    async fn calendars(&self) -> Result<Vec<crate::calendar::CalendarSpec>> {
        self.scan(&Key::Calendars.bytes())
    }

    async fn sla_policies(&self) -> Result<Vec<crate::sla::Policy>> {
        self.scan(&Key::SlaPolicies.bytes())
    }
}

#[async_trait::async_trait]
impl PluginStore for SledStore {
    async fn plugin(&self, id: &str) -> Result<Option<PluginRecord>> {
        self.get(&Key::Plugin(id).bytes())
    }

    async fn plugins(&self) -> Result<Vec<PluginRecord>> {
        self.scan(&Key::Plugins.bytes())
    }

    async fn plugin_module(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.modules.get(Key::Module(id, version).bytes()).map_err(|e| self.io(e))?.map(|v| v.to_vec()))
    }

    async fn plugin_kv(&self, plugin: &str, key: &str) -> Result<Option<serde_json::Value>> {
        self.get(&Key::Kv(plugin, key).bytes())
    }

    async fn plugin_artifact(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.modules.get(Key::Artifact(id, version).bytes()).map_err(|e| self.io(e))?.map(|v| v.to_vec()))
    }

    async fn plugin_kv_usage(&self, plugin: &str) -> Result<(u64, u64)> {
        let prefix = Key::KvOf(plugin).bytes();
        let (mut keys, mut bytes) = (0u64, 0u64);
        for kv in self.db.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            keys += 1;
            bytes += (k.len() - prefix.len() + body(&v).len()) as u64;
        }
        Ok((keys, bytes))
    }
}

#[async_trait::async_trait]
impl DocStore for SledStore {
    async fn next_number(&self) -> Result<u64> {
        Ok(self.numbers.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)
    }

    async fn doc(&self, kind: DocKind, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(Key::Doc(kind, id).bytes()).map_err(|e| self.io(e))?.map(|v| body(&v).to_vec()))
    }

    async fn docs(&self, kind: DocKind, after: Option<&str>, limit: usize) -> Result<Vec<Vec<u8>>> {
        let prefix = Key::Docs(kind).bytes();
        let start = match after {
            Some(a) => {
                let mut k = Key::Doc(kind, a).bytes();
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for kv in self.db.range(start..).take(limit) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(body(&v).to_vec());
        }
        Ok(out)
    }
}

/// For a text filter, the lowercased text to look for in the stored JSON, lowercased the
/// same way ([`TicketFilter::matches`] lowercases title and description): every matching
/// ticket's record holds it, since JSON escapes only quotes, backslashes and control
/// characters (text with those gets no prefilter).
fn text_prefilter(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.is_empty() && !t.chars().any(|c| c == '"' || c == '\\' || c.is_control())).map(str::to_lowercase)
}
