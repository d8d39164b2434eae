//! The PostgreSQL backend's read side: the per-concept read traits of the store API.

use super::{db, num, PostgresStore};
use crate::manifest::PluginRecord;
use crate::run::journal::{self, Header};
use crate::run::{AuditEntry, Event, HistoryEntry, Run};
use crate::store::{
    AuditStore, DocKind, DocStore, Error, EventStore, PluginStore, Result, RunFilter, RunStore, TeamStore,
    TicketFilter, TicketStore, TicketTime, TimeStore, Timer, WorkflowStore,
};
use crate::team::{Agent, Group};
use crate::ticket::Ticket;
use crate::workflow::{Workflow, WorkflowRecord};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;

type Params<'a> = [&'a (dyn ToSql + Sync)];

fn decode<T: DeserializeOwned>(what: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Corrupt { key: what.to_string(), detail: e.to_string() })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Rows of one text column, decoded.
    async fn list<T: DeserializeOwned>(&self, what: &str, sql: &str, params: &Params<'_>) -> Result<Vec<T>> {
        let client = self.client().await?;
        let rows = client.query(sql, params).await.map_err(db)?;
        rows.iter().map(|r| decode(what, r.get::<_, &str>(0))).collect()
    }

    /// The first row's text column, decoded.
    async fn one<T: DeserializeOwned>(&self, what: &str, sql: &str, params: &Params<'_>) -> Result<Option<T>> {
        Ok(self.list(what, sql, params).await?.into_iter().next())
    }

    /// Tickets whose `n` is in `ns`, with their comments, in `ns`' order.
    async fn tickets_numbered(&self, ns: &[i64]) -> Result<Vec<Ticket>> {
        let client = self.client().await?;
        let rows = client.query("SELECT n, body FROM tickets WHERE n = ANY($1)", &[&ns]).await.map_err(db)?;
        let mut by_n: std::collections::HashMap<i64, Ticket> = std::collections::HashMap::new();
        for r in &rows {
            by_n.insert(r.get(0), decode("ticket", r.get::<_, &str>(1))?);
        }
        for r in client
            .query("SELECT ticket, body FROM comments WHERE ticket = ANY($1) ORDER BY ticket, id", &[&ns])
            .await
            .map_err(db)?
        {
            if let Some(t) = by_n.get_mut(&r.get::<_, i64>(0)) {
                t.comments.push(decode("comment", r.get::<_, &str>(1))?);
            }
        }
        Ok(ns.iter().filter_map(|n| by_n.remove(n)).collect())
    }

    /// A run from its header row, start record and journal.
    async fn assemble(&self, n: i64, header: Header, start: &str) -> Result<Run> {
        let start: journal::Start = decode("run start", start)?;
        let entries: Vec<journal::Entry> =
            self.list("journal entry", "SELECT body FROM journal WHERE run = $1 ORDER BY seq", &[&n]).await?;
        Ok(journal::fold(header, start, entries))
    }

    /// Runs from rows of (n, header, start).
    async fn runs_of(&self, rows: &[tokio_postgres::Row], filter: &RunFilter) -> Result<Vec<Run>> {
        let mut out = Vec::new();
        for r in rows {
            let header: Header = decode("run header", r.get::<_, &str>(1))?;
            if filter.before_range(&header) || out.len() >= filter.page_size() {
                break;
            }
            if filter.keeps(&header) {
                out.push(self.assemble(r.get(0), header, r.get::<_, &str>(2)).await?);
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl TicketStore for PostgresStore {
    async fn next_ticket_id(&self) -> Result<String> {
        let row = self.client().await?.query_one("SELECT nextval('ticket_numbers')", &[]).await.map_err(db)?;
        Ok(format!("T-{}", row.get::<_, i64>(0)))
    }

    async fn ticket(&self, id: &str) -> Result<Option<Ticket>> {
        let Some(n) = crate::store::parse_id(id, 'T').and_then(|n| i64::try_from(n).ok()) else { return Ok(None) };
        Ok(self.tickets_numbered(&[n]).await?.pop())
    }

    async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>> {
        let window = filter.window();
        let (from, to) =
            (i64::try_from(window.start).unwrap_or(i64::MAX), i64::try_from(window.end).unwrap_or(i64::MAX));
        let (status, priority) = (filter.status.as_ref().map(super::label), filter.priority.as_ref().map(super::label));
        let (group, assignee, category, requester) =
            (&filter.group, &filter.assignee, &filter.category, &filter.requester);
        // The indexed fields in SQL; the rest (kind, external id, text in any case) by the
        // filter itself, a batch at a time, until a page is full.
        let mut out = Vec::new();
        let mut after = from - 1;
        loop {
            let ns: Vec<i64> = self
                .client()
                .await?
                .query(
                    "SELECT n FROM tickets WHERE n > $1 AND n >= $2 AND n < $3 \
                     AND ($4::text IS NULL OR status = $4) AND ($5::text IS NULL OR priority = $5) \
                     AND ($6::text IS NULL OR grp = $6) AND ($7::text IS NULL OR assignee = $7) \
                     AND ($8::text IS NULL OR category = $8) AND ($9::text IS NULL OR requester = $9) \
                     ORDER BY n LIMIT 500",
                    &[&after, &from, &to, &status, &priority, &group, &assignee, &category, &requester],
                )
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let Some(last) = ns.last().copied() else { return Ok(out) };
            for t in self.tickets_numbered(&ns).await? {
                if filter.matches(&t) {
                    out.push(t);
                    if out.len() >= filter.page_size() {
                        return Ok(out);
                    }
                }
            }
            if ns.len() < 500 {
                return Ok(out);
            }
            after = last;
        }
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>> {
        let n = num(id, 'T').unwrap_or(-1);
        self.list("history", "SELECT body FROM history WHERE ticket = $1 ORDER BY seq", &[&n]).await
    }

    async fn tickets_by_time(&self, time: TicketTime, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<String>> {
        let sql = match time {
            TicketTime::Created => {
                "SELECT n FROM tickets WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, n"
            }
            TicketTime::Done => "SELECT n FROM tickets WHERE done_at >= $1 AND done_at < $2 ORDER BY done_at, n",
        };
        let rows = self.client().await?.query(sql, &[&from, &to]).await.map_err(db)?;
        Ok(rows.iter().map(|r| format!("T-{}", r.get::<_, i64>(0))).collect())
    }
}

#[async_trait::async_trait]
impl WorkflowStore for PostgresStore {
    async fn workflow(&self, id: &str) -> Result<Option<WorkflowRecord>> {
        self.one("workflow", "SELECT body FROM workflows WHERE id = $1", &[&id]).await
    }

    async fn workflows(&self) -> Result<Vec<WorkflowRecord>> {
        self.list("workflow", "SELECT body FROM workflows ORDER BY id COLLATE \"C\"", &[]).await
    }

    async fn workflow_revision(&self, id: &str, revision: u32) -> Result<Option<Workflow>> {
        let sql = "SELECT body FROM revisions WHERE id = $1 AND revision = $2";
        self.one("revision", sql, &[&id, &i64::from(revision)]).await
    }

    async fn workflow_revisions(&self, id: &str) -> Result<Vec<u32>> {
        let rows = self
            .client()
            .await?
            .query("SELECT revision FROM revisions WHERE id = $1 ORDER BY revision", &[&id])
            .await
            .map_err(db)?;
        Ok(rows.iter().filter_map(|r| u32::try_from(r.get::<_, i64>(0)).ok()).collect())
    }
}

#[async_trait::async_trait]
impl RunStore for PostgresStore {
    async fn next_run_id(&self) -> Result<String> {
        let row = self.client().await?.query_one("SELECT nextval('run_numbers')", &[]).await.map_err(db)?;
        Ok(format!("R-{}", row.get::<_, i64>(0)))
    }

    async fn run(&self, id: &str) -> Result<Option<Run>> {
        let Ok(n) = num(id, 'R') else { return Ok(None) };
        let row = self.client().await?.query_opt("SELECT header, start FROM runs WHERE n = $1", &[&n]).await;
        match row.map_err(db)? {
            Some(r) => Ok(Some(self.assemble(n, decode("run header", r.get::<_, &str>(0))?, r.get(1)).await?)),
            None => Ok(None),
        }
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let ticket = match &filter.ticket {
            Some(t) => match num(t, 'T') {
                Ok(n) => Some(n),
                Err(_) => return Ok(Vec::new()),
            },
            None => None,
        };
        let status = filter.status.as_ref().map(super::label);
        let rows = self
            .client()
            .await?
            .query(
                "SELECT n, header, start FROM runs WHERE ($1::bigint IS NULL OR ticket = $1) \
                 AND ($2::text IS NULL OR workflow = $2) AND ($3::text IS NULL OR status = $3) \
                 AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at < $5) \
                 ORDER BY n DESC LIMIT $6",
                &[&ticket, &filter.workflow, &status, &filter.from, &filter.to, &limit(filter.page_size())],
            )
            .await
            .map_err(db)?;
        self.runs_of(&rows, filter).await
    }

    async fn prune_runs(&self, before: DateTime<Utc>, max: usize) -> Result<u64> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db)?;
        // Oldest first, finished before the cut; never the newest run (numbers come from a
        // sequence here, but every backend keeps it alike).
        let ns: Vec<i64> = t
            .query(
                "SELECT n FROM runs WHERE NOT active AND NOT waiting AND finished_at < $1 AND created_at < $1 \
                 AND n < (SELECT max(n) FROM runs) ORDER BY n LIMIT $2 FOR UPDATE SKIP LOCKED",
                &[&before, &limit(max)],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        t.execute("DELETE FROM journal WHERE run = ANY($1)", &[&ns]).await.map_err(db)?;
        t.execute("DELETE FROM runs WHERE n = ANY($1)", &[&ns]).await.map_err(db)?;
        t.commit().await.map_err(db)?;
        Ok(ns.len() as u64)
    }

    async fn run_headers_since(&self, from: DateTime<Utc>, max: usize) -> Result<Vec<Header>> {
        let sql = "SELECT header FROM runs WHERE created_at >= $1 ORDER BY n DESC LIMIT $2";
        self.list("run header", sql, &[&from, &limit(max)]).await
    }

    async fn active_runs(&self, max: usize) -> Result<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query("SELECT n FROM runs WHERE active ORDER BY n LIMIT $1", &[&limit(max)])
            .await
            .map_err(db)?;
        Ok(rows.iter().map(|r| format!("R-{}", r.get::<_, i64>(0))).collect())
    }

    async fn waiting_runs(&self, ticket: &str) -> Result<Vec<String>> {
        let Ok(t) = num(ticket, 'T') else { return Ok(Vec::new()) };
        let rows = self
            .client()
            .await?
            .query("SELECT n FROM runs WHERE waiting AND ticket = $1 ORDER BY n", &[&t])
            .await
            .map_err(db)?;
        Ok(rows.iter().map(|r| format!("R-{}", r.get::<_, i64>(0))).collect())
    }

    async fn count_waiting_runs(&self) -> Result<u64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT count(*) FROM runs WHERE waiting AND ticket IS NOT NULL", &[])
            .await
            .map_err(db)?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
    }
}

#[async_trait::async_trait]
impl EventStore for PostgresStore {
    async fn next_event_id(&self) -> Result<String> {
        let row = self.client().await?.query_one("SELECT nextval('event_numbers')", &[]).await.map_err(db)?;
        Ok(format!("E-{}", row.get::<_, i64>(0)))
    }

    async fn event(&self, id: &str) -> Result<Option<Event>> {
        let Ok(n) = num(id, 'E') else { return Ok(None) };
        self.one("event", "SELECT body FROM events WHERE n = $1", &[&n]).await
    }

    async fn ticket_events(&self, ticket: &str) -> Result<Vec<Event>> {
        let Ok(t) = num(ticket, 'T') else { return Ok(Vec::new()) };
        self.list("event", "SELECT body FROM events WHERE ticket = $1 ORDER BY n", &[&t]).await
    }

    async fn prune_events(&self, before: DateTime<Utc>, max: usize) -> Result<u64> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM events WHERE n IN (SELECT n FROM events WHERE at < $1 \
                 AND n < (SELECT max(n) FROM events) ORDER BY n LIMIT $2)",
                &[&before, &limit(max)],
            )
            .await
            .map_err(db)?;
        Ok(n)
    }
}

#[async_trait::async_trait]
impl TeamStore for PostgresStore {
    async fn agent(&self, id: &str) -> Result<Option<Agent>> {
        self.one("agent", "SELECT body FROM agents WHERE id = $1", &[&id]).await
    }

    async fn agents(&self) -> Result<Vec<Agent>> {
        self.list("agent", "SELECT body FROM agents ORDER BY id COLLATE \"C\"", &[]).await
    }

    async fn group(&self, id: &str) -> Result<Option<Group>> {
        self.one("group", "SELECT body FROM groups WHERE id = $1", &[&id]).await
    }

    async fn groups(&self) -> Result<Vec<Group>> {
        self.list("group", "SELECT body FROM groups ORDER BY id COLLATE \"C\"", &[]).await
    }

    async fn open_load(&self, agent: &str) -> Result<u32> {
        let row = self
            .client()
            .await?
            .query_one("SELECT count(*) FROM open_assignments WHERE agent = $1", &[&agent])
            .await
            .map_err(db)?;
        Ok(u32::try_from(row.get::<_, i64>(0)).unwrap_or(u32::MAX))
    }

    async fn round_robin_cursor(&self, group: &str) -> Result<Option<String>> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT agent FROM round_robin WHERE grp = $1", &[&group])
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get(0)))
    }
}

#[async_trait::async_trait]
impl AuditStore for PostgresStore {
    async fn audit(&self, max: usize) -> Result<Vec<AuditEntry>> {
        self.list("audit entry", "SELECT body FROM audit ORDER BY seq DESC LIMIT $1", &[&limit(max)]).await
    }

    async fn prune_audit(&self, before: DateTime<Utc>, max: usize) -> Result<u64> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at < $1 ORDER BY seq LIMIT $2)",
                &[&before, &limit(max)],
            )
            .await
            .map_err(db)?;
        Ok(n)
    }
}

#[async_trait::async_trait]
impl TimeStore for PostgresStore {
    async fn due_timers(&self, until: DateTime<Utc>, max: usize) -> Result<Vec<Timer>> {
        let sql = "SELECT body FROM timers WHERE due <= $1 ORDER BY due, key COLLATE \"C\" LIMIT $2";
        self.list("timer", sql, &[&until, &limit(max)]).await
    }

    async fn next_timer(&self) -> Result<Option<DateTime<Utc>>> {
        let row = self.client().await?.query_opt("SELECT min(due) FROM timers", &[]).await.map_err(db)?;
        Ok(row.and_then(|r| r.get(0)))
    }

    async fn timer(&self, key: &str) -> Result<Option<Timer>> {
        self.one("timer", "SELECT body FROM timers WHERE key = $1", &[&key]).await
    }

    async fn ticket_sla(&self, ticket: &str) -> Result<Option<crate::sla::TicketSla>> {
        let Ok(t) = num(ticket, 'T') else { return Ok(None) };
        self.one("sla", "SELECT body FROM sla WHERE ticket = $1", &[&t]).await
    }

    async fn calendars(&self) -> Result<Vec<crate::calendar::CalendarSpec>> {
        self.list("calendar", "SELECT body FROM calendars ORDER BY id COLLATE \"C\"", &[]).await
    }

    async fn sla_policies(&self) -> Result<Vec<crate::sla::Policy>> {
        self.list("sla policy", "SELECT body FROM sla_policies ORDER BY id COLLATE \"C\"", &[]).await
    }
}

#[async_trait::async_trait]
impl PluginStore for PostgresStore {
    async fn plugin(&self, id: &str) -> Result<Option<PluginRecord>> {
        self.one("plugin", "SELECT body FROM plugins WHERE id = $1", &[&id]).await
    }

    async fn plugins(&self) -> Result<Vec<PluginRecord>> {
        self.list("plugin", "SELECT body FROM plugins ORDER BY id COLLATE \"C\"", &[]).await
    }

    async fn plugin_module(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>> {
        let sql = "SELECT module FROM plugin_modules WHERE id = $1 AND version = $2";
        let row = self.client().await?.query_opt(sql, &[&id, &version]).await.map_err(db)?;
        Ok(row.and_then(|r| r.get(0)))
    }

    async fn plugin_kv(&self, plugin: &str, key: &str) -> Result<Option<serde_json::Value>> {
        self.one("plugin value", "SELECT value FROM plugin_kv WHERE plugin = $1 AND key = $2", &[&plugin, &key]).await
    }

    async fn plugin_artifact(&self, id: &str, version: &str) -> Result<Option<Vec<u8>>> {
        let sql = "SELECT artifact FROM plugin_modules WHERE id = $1 AND version = $2";
        let row = self.client().await?.query_opt(sql, &[&id, &version]).await.map_err(db)?;
        Ok(row.and_then(|r| r.get(0)))
    }

    async fn plugin_kv_usage(&self, plugin: &str) -> Result<(u64, u64)> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT count(*), coalesce(sum(octet_length(key) + octet_length(value)), 0)::bigint \
                 FROM plugin_kv WHERE plugin = $1",
                &[&plugin],
            )
            .await
            .map_err(db)?;
        let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or_default();
        Ok((n(0), n(1)))
    }
}

#[async_trait::async_trait]
impl DocStore for PostgresStore {
    async fn next_number(&self) -> Result<u64> {
        let row = self.client().await?.query_one("SELECT nextval('doc_numbers')", &[]).await.map_err(db)?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
    }

    async fn doc(&self, kind: DocKind, id: &str) -> Result<Option<Vec<u8>>> {
        let sql = "SELECT body FROM docs WHERE kind = $1 AND id = $2";
        let row = self.client().await?.query_opt(sql, &[&kind.prefix(), &id]).await.map_err(db)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn docs(&self, kind: DocKind, after: Option<&str>, max: usize) -> Result<Vec<Vec<u8>>> {
        let sql = "SELECT body FROM docs WHERE kind = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3";
        let rows = self.client().await?.query(sql, &[&kind.prefix(), &after, &limit(max)]).await.map_err(db)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
