//! The PostgreSQL backend: the store API over one database that several engine nodes
//! can share (`store = "postgres://…"` or `SWITCHBOARD_STORE`).
//!
//! Each [`Tx`] is one database transaction. Its ticket writes lock the rows they expect
//! (`SELECT … FOR UPDATE`) and check versions as every backend does
//! ([`super::check_ticket_versions`]); a new ticket, or a journal entry another writer
//! appended first, hits a primary key and is refused as [`Error::Conflict`] too, so two
//! writers never overwrite each other whatever node they run on. Ids come from sequences.
//! A commit is durable when PostgreSQL says so (`synchronous_commit` as the database is
//! configured); back it up with the database's own tools.
//!
//! The schema (`postgres/schema.sql`) is applied at open and by `switchboard migrate`.

mod reads;

use super::{CommitFuture, Error, Result, Store, TicketTime, Tx, Write};
use crate::run::journal::Delta;
use crate::run::RunStatus;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::HashMap;
use tokio_postgres::NoTls;

/// The schema version this code writes.
const SCHEMA: i64 = 1;

/// A store in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    /// Where, for messages (the URL without its password).
    place: String,
    /// The session that holds the database for this process (see [`PostgresStore::open`]).
    holder: Option<tokio_postgres::Client>,
}

/// The advisory lock a serving node holds on its database.
const NODE_LOCK: i64 = 4_242_002;

/// The URL with any password replaced, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// An error and its causes, `: `-separated ("error connecting to server: Connection refused").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// A database error: a unique violation is another writer's commit (a conflict).
fn db(e: tokio_postgres::Error) -> Error {
    match e.code() {
        Some(c) if *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            Error::Conflict(e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()))
        }
        Some(c) if *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE => Error::Conflict(e.to_string()),
        _ => Error::Backend(e.to_string()),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Backend(format!("encode: {e}")))
}

fn num(id: &str, letter: char) -> Result<i64> {
    super::parse_id(id, letter)
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| Error::Backend(format!("malformed id `{id}`")))
}

/// A unit enum's JSON name (`in_progress`, `P1`).
fn label<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

impl PostgresStore {
    /// Connects (a pool of up to `connections`) and brings the schema up to date.
    ///
    /// Until work is claimed across nodes (leases on runs, timers fired once by whoever
    /// claims them), one engine serves a database at a time: `open` takes a session-level
    /// advisory lock on a connection of its own and refuses a database another process
    /// holds ([`Error::Held`]), as sled refuses a data directory in use. PostgreSQL
    /// releases the lock when that process's session ends, however it ends.
    pub async fn open(url: &str, connections: usize) -> Result<Self> {
        let mut store = Self::connect(url, connections).await?;
        let (holder, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| Error::Backend(format!("database {}: {}", store.place, causes(&e))))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(error = %e, "the session holding the database ended");
            }
        });
        // A node killed a moment ago holds it until PostgreSQL notices its session is
        // gone (milliseconds): a restart waits up to 5 s for that; a live node keeps it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let held: bool =
                holder.query_one("SELECT pg_try_advisory_lock($1)", &[&NODE_LOCK]).await.map_err(db)?.get(0);
            if held {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Held { place: store.place.clone() });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        store.holder = Some(holder);
        Ok(store)
    }

    /// Connects and brings the schema up to date, without holding the database (for
    /// `switchboard migrate`, and for tests that open several stores on one database).
    pub async fn connect(url: &str, connections: usize) -> Result<Self> {
        let place = redact(url);
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| Error::Backend(format!("store URL {place}: {e}")))?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            // A database that is down fails a request in seconds, not never.
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .build()
            .map_err(|e| Error::Backend(format!("store {place}: {e}")))?;
        let store = Self { pool, place, holder: None };
        store.migrate().await?;
        // Numbers continue after the highest stored (a database restored or filled by
        // other means): a sequence never hands out one that is taken.
        let client = store.client().await?;
        for (seq, table) in [("ticket_numbers", "tickets"), ("run_numbers", "runs"), ("event_numbers", "events")] {
            let sql = format!(
                "SELECT setval('{seq}', m) FROM (SELECT max(n) AS m FROM {table}) s \
                 WHERE m IS NOT NULL AND m > (SELECT last_value FROM {seq})"
            );
            client.execute(&sql, &[]).await.map_err(db)?;
        }
        drop(client);
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| Error::Backend(format!("database {}: {}", self.place, causes(&e))))
    }

    /// Applies the schema if the database has an older one (or none); refuses a newer one.
    pub async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // One migrator at a time across nodes starting together.
        tx.execute("SELECT pg_advisory_xact_lock(4242001)", &[]).await.map_err(db)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)")
            .await
            .map_err(db)?;
        let found: Option<i64> = tx
            .query_opt("SELECT value FROM meta WHERE key = 'schema'", &[])
            .await
            .map_err(db)?
            .and_then(|r| r.get::<_, String>(0).parse().ok());
        if found.is_some_and(|v| v > SCHEMA) {
            return Err(Error::Damaged {
                path: self.place.clone(),
                detail: format!(
                    "the database has schema version {}, written by a newer switchboard; this one knows up to {SCHEMA}",
                    found.unwrap_or_default()
                ),
            });
        }
        if found != Some(SCHEMA) {
            tx.batch_execute(include_str!("postgres/schema.sql")).await.map_err(db)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', $1) ON CONFLICT (key) DO UPDATE SET value = $1",
                &[&SCHEMA.to_string()],
            )
            .await
            .map_err(db)?;
            tracing::info!(database = %self.place, schema = SCHEMA, "database schema applied");
        }
        tx.commit().await.map_err(db)
    }

    /// Applies `tx` in one database transaction.
    async fn write(&self, tx: Tx) -> Result<()> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db)?;
        // Lock the tickets the writes expect, then check their versions.
        let expected: Vec<i64> = super::ticket_expectations(&tx)
            .filter(|(_, expect, _)| expect.is_some())
            .map(|(id, _, _)| num(id, 'T'))
            .collect::<Result<_>>()?;
        let mut held: HashMap<i64, u64> = HashMap::new();
        if !expected.is_empty() {
            for row in t
                .query("SELECT n, version FROM tickets WHERE n = ANY($1) ORDER BY n FOR UPDATE", &[&expected])
                .await
                .map_err(db)?
            {
                held.insert(row.get(0), u64::try_from(row.get::<_, i64>(1)).unwrap_or_default());
            }
        }
        super::check_ticket_versions(super::ticket_expectations(&tx), |id| Ok(held.get(&num(id, 'T')?).copied()))?;
        let cached = Cached(&t);
        for w in tx.writes {
            apply(&cached, w).await?;
        }
        t.commit().await.map_err(db)
    }
}

/// A transaction whose statements are prepared once per connection (the pool's
/// statement cache): one round trip per statement instead of two.
struct Cached<'t, 'c>(&'t deadpool_postgres::Transaction<'c>);

type Params<'p> = [&'p (dyn tokio_postgres::types::ToSql + Sync)];

impl Cached<'_, '_> {
    async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, tokio_postgres::Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.execute(&statement, params).await
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
        let statement = self.0.prepare_cached(sql).await?;
        self.0.query_opt(&statement, params).await
    }
}

/// One write, inside the transaction `t`.
async fn apply(t: &Cached<'_, '_>, w: Write) -> Result<()> {
    match w {
        Write::Ticket { mut ticket, comments_from, expect } => {
            let n = num(&ticket.id, 'T')?;
            let comments = std::mem::take(&mut ticket.comments);
            for c in comments.iter().skip(comments_from) {
                t.execute(
                    "INSERT INTO comments (ticket, id, body) VALUES ($1, $2, $3) ON CONFLICT (ticket, id) DO UPDATE SET body = $3",
                    &[&n, &i64::from(c.id), &json(c)?],
                )
                .await
                .map_err(db)?;
            }
            let version = i64::try_from(ticket.version).map_err(backend)?;
            let done = TicketTime::Done.of(&ticket);
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
                &n,
                &version,
                &label(&ticket.status),
                &label(&ticket.priority),
                &ticket.group,
                &ticket.assignee,
                &ticket.category,
                &ticket.requester,
                &ticket.created_at,
                &done,
                &json(&*ticket)?,
            ];
            if expect.is_none() {
                // A ticket stored under this id since it was read: the primary key refuses it.
                t.execute(
                    "INSERT INTO tickets (n, version, status, priority, grp, assignee, category, requester, created_at, done_at, body) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    &params,
                )
                .await
                .map_err(db)?;
            } else {
                t.execute(
                    "UPDATE tickets SET version = $2, status = $3, priority = $4, grp = $5, assignee = $6, category = $7, \
                     requester = $8, created_at = $9, done_at = $10, body = $11 WHERE n = $1",
                    &params,
                )
                .await
                .map_err(db)?;
            }
        }
        Write::History(h) => {
            t.execute("INSERT INTO history (ticket, body) VALUES ($1, $2)", &[&num(&h.ticket_id, 'T')?, &json(&h)?])
                .await
                .map_err(db)?;
        }
        Write::Workflow(w) => upsert(t, "workflows", &w.id, &json(&*w)?).await?,
        Write::WorkflowRevision { revision, definition } => {
            t.execute(
                "INSERT INTO revisions (id, revision, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (id, revision) DO UPDATE SET body = $3",
                &[&definition.id, &i64::from(revision), &json(&*definition)?],
            )
            .await
            .map_err(db)?;
        }
        Write::Run(delta) => put_run(t, *delta).await?,
        Write::Event(e) => {
            t.execute(
                "INSERT INTO events (n, ticket, at, body) VALUES ($1, $2, $3, $4)",
                &[&num(&e.id, 'E')?, &num(&e.ticket_id, 'T')?, &e.at, &json(&*e)?],
            )
            .await
            .map_err(db)?;
        }
        Write::Agent(a) => upsert(t, "agents", &a.id, &json(&a)?).await?,
        Write::Group(g) => upsert(t, "groups", &g.id, &json(&g)?).await?,
        Write::OpenAssignment { agent, ticket, open } => {
            let sql = if open {
                "INSERT INTO open_assignments (agent, ticket) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM open_assignments WHERE agent = $1 AND ticket = $2"
            };
            t.execute(sql, &[&agent, &num(&ticket, 'T')?]).await.map_err(db)?;
        }
        Write::RoundRobin { group, agent } => {
            t.execute(
                "INSERT INTO round_robin (grp, agent) VALUES ($1, $2) ON CONFLICT (grp) DO UPDATE SET agent = $2",
                &[&group, &agent],
            )
            .await
            .map_err(db)?;
        }
        Write::Audit(a) => {
            t.execute("INSERT INTO audit (at, body) VALUES ($1, $2)", &[&a.at, &json(&a)?]).await.map_err(db)?;
        }
        Write::Plugin(p) => upsert(t, "plugins", &p.id, &json(&*p)?).await?,
        Write::PluginModule { id, version, bytes } => put_module(t, "module", &id, &version, &bytes).await?,
        Write::PluginArtifact { id, version, bytes } => put_module(t, "artifact", &id, &version, &bytes).await?,
        Write::DeletePluginVersion { id, version } => {
            t.execute("DELETE FROM plugin_modules WHERE id = $1 AND version = $2", &[&id, &version])
                .await
                .map_err(db)?;
        }
        Write::DeletePlugin { id } => {
            for sql in [
                "DELETE FROM plugins WHERE id = $1",
                "DELETE FROM plugin_modules WHERE id = $1",
                "DELETE FROM plugin_kv WHERE plugin = $1",
            ] {
                t.execute(sql, &[&id]).await.map_err(db)?;
            }
        }
        Write::PluginKv { plugin, key, value } => match value {
            Some(v) => {
                t.execute(
                    "INSERT INTO plugin_kv (plugin, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (plugin, key) DO UPDATE SET value = $3",
                    &[&plugin, &key, &json(&v)?],
                )
                .await
                .map_err(db)?;
            }
            None => {
                t.execute("DELETE FROM plugin_kv WHERE plugin = $1 AND key = $2", &[&plugin, &key])
                    .await
                    .map_err(db)?;
            }
        },
        Write::Sla(s) => {
            t.execute(
                "INSERT INTO sla (ticket, body) VALUES ($1, $2) ON CONFLICT (ticket) DO UPDATE SET body = $2",
                &[&num(&s.ticket_id, 'T')?, &json(&*s)?],
            )
            .await
            .map_err(db)?;
        }
        Write::Calendar(c) => upsert(t, "calendars", &c.id, &json(&c)?).await?,
        Write::SlaPolicy(p) => upsert(t, "sla_policies", &p.id, &json(&*p)?).await?,
        Write::Timer(timer) => {
            t.execute(
                "INSERT INTO timers (key, due, body) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET due = $2, body = $3",
                &[&timer.key, &timer.due, &json(&timer)?],
            )
            .await
            .map_err(db)?;
        }
        Write::CancelTimer(key) => {
            t.execute("DELETE FROM timers WHERE key = $1", &[&key]).await.map_err(db)?;
        }
        Write::Doc { kind, id, value } => match value {
            Some(v) => {
                t.execute(
                    "INSERT INTO docs (kind, id, body) VALUES ($1, $2, $3) ON CONFLICT (kind, id) DO UPDATE SET body = $3",
                    &[&kind.prefix(), &id, &v],
                )
                .await
                .map_err(db)?;
            }
            None => {
                t.execute("DELETE FROM docs WHERE kind = $1 AND id = $2", &[&kind.prefix(), &id]).await.map_err(db)?;
            }
        },
    }
    Ok(())
}

/// Inserts or replaces a `(id, body)` row of `table` (a name from this file, never input).
async fn upsert(t: &Cached<'_, '_>, table: &str, id: &str, body: &str) -> Result<()> {
    let sql = format!("INSERT INTO {table} (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = $2");
    t.execute(&sql, &[&id, &body]).await.map_err(db)?;
    Ok(())
}

/// Sets a plugin version's `column` (`module` or `artifact`, names from this file).
async fn put_module(t: &Cached<'_, '_>, column: &str, id: &str, version: &str, bytes: &[u8]) -> Result<()> {
    let sql = format!(
        "INSERT INTO plugin_modules (id, version, {column}) VALUES ($1, $2, $3) \
         ON CONFLICT (id, version) DO UPDATE SET {column} = $3"
    );
    t.execute(&sql, &[&id, &version, &bytes]).await.map_err(db)?;
    Ok(())
}

/// A run's header, its start record when new, and its new journal entries (an entry
/// another writer appended first is a primary-key conflict).
async fn put_run(t: &Cached<'_, '_>, delta: Delta) -> Result<()> {
    let free = delta.expected_free();
    let Delta { header, start, entries, .. } = delta;
    let n = num(&header.id, 'R')?;
    if let Some(seq) = free {
        // The run as read: its row locked (a concurrent writer of it waits), then its next
        // journal entry must still be free.
        t.query_opt("SELECT n FROM runs WHERE n = $1 FOR UPDATE", &[&n]).await.map_err(db)?;
        if t.query_opt("SELECT 1 FROM journal WHERE run = $1 AND seq = $2", &[&n, &i64::from(seq)])
            .await
            .map_err(db)?
            .is_some()
        {
            return Err(Error::Conflict(format!("run {} (journal entry {seq})", header.id)));
        }
    }
    let ticket = header.ticket.as_deref().map(|id| num(id, 'T')).transpose()?;
    let (active, waiting) = (header.status.is_active(), header.status == RunStatus::Waiting);
    let body = json(&header)?;
    match start {
        Some(start) => {
            t.execute(
                "INSERT INTO runs (n, ticket, workflow, status, active, waiting, created_at, finished_at, header, start) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &n,
                    &ticket,
                    &header.workflow_id,
                    &label(&header.status),
                    &active,
                    &waiting,
                    &header.created_at,
                    &header.finished_at,
                    &body,
                    &json(&*start)?,
                ],
            )
            .await
            .map_err(db)?;
        }
        None => {
            t.execute(
                "UPDATE runs SET status = $2, active = $3, waiting = $4, finished_at = $5, header = $6 WHERE n = $1",
                &[&n, &label(&header.status), &active, &waiting, &header.finished_at, &body],
            )
            .await
            .map_err(db)?;
        }
    }
    for (seq, entry) in entries {
        t.execute("INSERT INTO journal (run, seq, body) VALUES ($1, $2, $3)", &[&n, &i64::from(seq), &json(&entry)?])
            .await
            .map_err(|e| match db(e) {
                Error::Conflict(_) => Error::Conflict(format!("run {} (journal entry {seq})", header.id)),
                other => other,
            })?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn apply(&self, tx: Tx) -> Result<CommitFuture<'_>> {
        if self.pool.is_closed() {
            return Err(Error::Closed);
        }
        self.write(tx).await?;
        Ok(Box::pin(async { Ok(()) }))
    }

    fn close(&self) -> Result<()> {
        self.pool.close();
        // The lock goes with the holding session when the store is dropped.
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        let ask = async { self.client().await?.simple_query("SELECT 1").await.map_err(db).map(drop) };
        match tokio::time::timeout(std::time::Duration::from_secs(2), ask).await {
            Ok(answer) => answer,
            Err(_) => Err(Error::Backend(format!("database {} did not answer within 2 s", self.place))),
        }
    }
}

#[doc(hidden)]
pub mod scratch;

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_kept_out_of_messages() {
        assert_eq!(super::redact("postgres://sb:s3cret@db:5432/sb"), "postgres://sb:***@db:5432/sb");
        assert_eq!(super::redact("postgres://sb@db/sb"), "postgres://sb@db/sb");
        assert_eq!(super::redact("host=/tmp dbname=sb"), "host=/tmp dbname=sb");
    }
}
