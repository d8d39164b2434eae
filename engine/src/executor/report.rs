//! Reports: gathers the tickets a period's figures count, with their history and SLA
//! clocks, and lets [`crate::report`] count. The tickets come from the store's indexes
//! (logged in the period; open now; done since the period began), so a report reads the
//! period's tickets and the backlog, not the whole desk. The dashboard's reports are snapshots:
//! computed off the request path at most once per [`SNAPSHOT_AGE`] and shared by every
//! viewer, so a page view never counts the whole desk.

use super::{invalid, Engine, Result};
use crate::report::{self, Bucket, GroupBy, Item, Query, Report};
use crate::store::{parse_id, TicketTime};
use crate::ticket::Ticket;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A ticket with what a report reads of it.
type Gathered = (Ticket, Vec<crate::run::HistoryEntry>, Option<crate::sla::TicketSla>);

fn items(gathered: &[Gathered]) -> Vec<Item<'_>> {
    gathered.iter().map(|(ticket, history, sla)| Item { ticket, history, sla: sla.as_ref() }).collect()
}

/// How old a dashboard snapshot may be before a view starts computing the next one (the
/// view still gets the old one at once).
pub const SNAPSHOT_AGE: Duration = Duration::seconds(60);

/// A dashboard report and when it was computed.
#[derive(Debug)]
pub struct Snapshot {
    /// The figures, by group.
    pub report: Report,
    /// The same period by priority (its groups are the priorities).
    pub by_priority: Report,
    /// Computed at.
    pub at: DateTime<Utc>,
}

/// The dashboard's snapshots by (days back, bucket), and which are being recomputed.
#[derive(Default)]
pub struct Snapshots {
    kept: Mutex<HashMap<(i64, Bucket), Arc<Snapshot>>>,
    /// Held while a snapshot is computed: one computation per key at a time.
    computing: tokio::sync::Mutex<()>,
}

/// Refuses a report query that makes no sense (naming the field).
fn check(q: &Query) -> Result<()> {
    if q.to <= q.from {
        return Err(invalid("/to", "`to` must be after `from`"));
    }
    q.savings.check().map_err(|m| invalid("/minutes_saved_per_ticket", m))?;
    if let Some(bucket) = q.bucket {
        if report::boundaries(q.from, q.to, bucket, q.tz).len() > report::MAX_BUCKETS + 1 {
            return Err(invalid("/bucket", format!("more than {} buckets: use a longer bucket", report::MAX_BUCKETS)));
        }
    }
    Ok(())
}

impl Engine {
    /// The report `q` asks for.
    pub async fn report(&self, q: &Query) -> Result<Report> {
        check(q)?;
        let gathered = self.gather(q.from, q.to).await?;
        Ok(report::compute(&items(&gathered), q, &self.actors))
    }

    /// The tickets a report over `[from, to)` counts, each with its history and SLA
    /// clocks: those logged in the period, and those logged before `to` that were open at
    /// some moment from `from` on (a bucket's end): open now, or done since `from` (a
    /// ticket open at a moment and not open now was changed after it). The report
    /// itself decides what each one counts for.
    async fn gather(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Gathered>> {
        let far = DateTime::<Utc>::MAX_UTC;
        let mut ids = self.store.tickets_by_time(TicketTime::Created, from, to).await?;
        ids.extend(self.store.tickets_by_time(TicketTime::Done, from, far).await?);
        let mut tickets: BTreeMap<u64, Ticket> = BTreeMap::new();
        for t in super::schedule::open_tickets(self).await? {
            if let Some(n) = parse_id(&t.id, 'T') {
                tickets.insert(n, t);
            }
        }
        for id in ids {
            let Some(n) = parse_id(&id, 'T') else { continue };
            if let std::collections::btree_map::Entry::Vacant(slot) = tickets.entry(n) {
                if let Some(t) = self.store.ticket(&id).await? {
                    slot.insert(t);
                }
            }
        }
        let mut out = Vec::with_capacity(tickets.len());
        for t in tickets.into_values().filter(|t| t.created_at < to) {
            let history = self.store.history(&t.id).await?;
            let sla = self.store.ticket_sla(&t.id).await?;
            out.push((t, history, sla));
        }
        Ok(out)
    }

    /// The dashboard's report of the last `days` days in `bucket`s (UTC, by group): the
    /// kept snapshot, recomputed in the background once it is older than
    /// [`SNAPSHOT_AGE`]; only the first view of a period waits for it.
    pub async fn dashboard(self: &Arc<Self>, days: i64, bucket: Bucket) -> Result<Arc<Snapshot>> {
        let key = (days, bucket);
        let kept = self.snapshots.kept.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        match kept {
            Some(s) if self.now() - s.at < SNAPSHOT_AGE => Ok(s),
            Some(s) => {
                let engine = self.clone();
                // Not one of the run tasks: those count as runs in flight.
                tokio::spawn(async move {
                    // Others asking meanwhile get the old one; one recomputation at a time.
                    let Ok(_one) = engine.snapshots.computing.try_lock() else { return };
                    if let Err(e) = engine.snapshot(key).await {
                        tracing::warn!(error = %e, "dashboard report failed");
                    }
                });
                Ok(s)
            }
            None => {
                let _one = self.snapshots.computing.lock().await;
                let kept = self.snapshots.kept.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
                match kept {
                    Some(s) => Ok(s),
                    None => self.snapshot(key).await,
                }
            }
        }
    }

    /// Computes and keeps one dashboard snapshot (on a blocking thread: it reads and
    /// counts every ticket).
    async fn snapshot(self: &Arc<Self>, (days, bucket): (i64, Bucket)) -> Result<Arc<Snapshot>> {
        let now = self.now();
        let query = Query {
            from: now - Duration::days(days),
            to: now,
            by: Some(GroupBy::Group),
            bucket: Some(bucket),
            tz: chrono_tz::UTC,
            savings: self.config.reports.clone(),
        };
        let (engine, handle) = (self.clone(), tokio::runtime::Handle::current());
        // One read of the desk, counted twice (by group and by priority).
        let (report, by_priority) = tokio::task::spawn_blocking(move || {
            handle.block_on(async move {
                check(&query)?;
                let gathered = engine.gather(query.from, query.to).await?;
                let by_priority = Query { by: Some(GroupBy::Priority), bucket: None, ..query.clone() };
                let items = items(&gathered);
                Ok::<_, super::Error>((
                    report::compute(&items, &query, &engine.actors),
                    report::compute(&items, &by_priority, &engine.actors),
                ))
            })
        })
        .await
        .map_err(|e| crate::store::Error::Backend(format!("the dashboard report task failed: {e}")))??;
        let snapshot = Arc::new(Snapshot { report, by_priority, at: now });
        self.snapshots.kept.lock().unwrap_or_else(|p| p.into_inner()).insert((days, bucket), snapshot.clone());
        Ok(snapshot)
    }
}
