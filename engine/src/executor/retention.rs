//! Retention: finished runs, inbound delivery records and audit entries older than the
//! configured days are removed in the background, in small batches with a pause between
//! them, so pruning never holds writes back for long. Tickets, their history and SLA
//! clocks — what the reports count — are kept, so a report over a pruned period gives the
//! same figures.

use super::webhook::DeliveryRecord;
use super::{Engine, Result};
use crate::store::{DocKind, Tx, Write};
use chrono::Duration;
use std::sync::Arc;

/// Records removed per batch.
const BATCH: usize = 500;

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// Finished runs.
    pub runs: u64,
    /// Inbound delivery records.
    pub deliveries: u64,
    /// Audit entries.
    pub audit: u64,
}

/// Runs `batch` until it removes fewer than a full batch, letting other tasks in between;
/// returns how many it removed in all.
async fn in_batches<F, Fut>(mut batch: F) -> crate::store::Result<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<u64>>,
{
    let mut total = 0;
    loop {
        let n = batch().await?;
        total += n;
        if (n as usize) < BATCH {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

impl Engine {
    /// One pruning pass over every kind, as configured.
    pub async fn prune(&self) -> Result<Pruned> {
        let r = &self.config.retention;
        let now = self.now();
        let cutoff = |days: u32| (days > 0).then(|| now - Duration::days(i64::from(days)));
        let mut out = Pruned::default();
        if let Some(before) = cutoff(r.runs_days) {
            out.runs = in_batches(|| self.store.prune_runs(before, BATCH)).await?;
        }
        if let Some(before) = cutoff(r.audit_days) {
            out.audit = in_batches(|| self.store.prune_audit(before, BATCH)).await?;
        }
        if let Some(before) = cutoff(r.deliveries_days) {
            // Delivery records are keyed by endpoint and delivery id, not time: a walk
            // through them in pages.
            let mut after: Option<String> = None;
            loop {
                let page: Vec<DeliveryRecord> =
                    crate::store::list_docs(&*self.store, DocKind::Delivery, after.as_deref(), BATCH).await?;
                let Some(last) = page.last().map(|d| d.id.clone()) else { break };
                let mut tx = Tx::new();
                for d in page.iter().filter(|d| d.at < before) {
                    tx.push(Write::Doc { kind: DocKind::Delivery, id: d.id.clone(), value: None });
                }
                out.deliveries += tx.writes.len() as u64;
                if !tx.writes.is_empty() {
                    self.store.commit(tx).await?;
                }
                if page.len() < BATCH {
                    break;
                }
                after = Some(last);
                tokio::task::yield_now().await;
            }
        }
        if out != Pruned::default() {
            tracing::info!(runs = out.runs, deliveries = out.deliveries, audit = out.audit, "pruned by retention");
        }
        Ok(out)
    }

    /// Prunes every `every_minutes` until the engine stops.
    pub(super) fn spawn_retention(self: &Arc<Self>) {
        let every = self.config.retention.every_minutes;
        if every == 0 {
            return;
        }
        let engine = self.clone();
        // Not one of the run tasks (those count as runs in flight).
        tokio::spawn(async move {
            loop {
                let stopping = engine.runtime.stop_signal.notified();
                if engine.runtime.stopping() {
                    break;
                }
                if let Err(e) = engine.prune().await {
                    tracing::warn!(error = %e, "pruning failed; trying again next pass");
                }
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(u64::from(every) * 60)) => {}
                    _ = stopping => break,
                }
            }
        });
    }
}
