//! Retention: finished runs (with the events that started runs), inbound delivery
//! records, decided approvals and audit entries older than the configured days are
//! removed in the background, in small batches with a pause between
//! them, so pruning never holds writes back for long. Tickets, their history and SLA
//! clocks — what the reports count — are kept, so a report over a pruned period gives the
//! same figures.

use super::webhook::DeliveryRecord;
use super::{Engine, Result};
use crate::approval::Approval;
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
    /// Events (what triggered runs).
    pub events: u64,
    /// Decided approvals.
    pub approvals: u64,
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
            out.events = in_batches(|| self.store.prune_events(before, BATCH)).await?;
        }
        if let Some(before) = cutoff(r.audit_days) {
            out.audit = in_batches(|| self.store.prune_audit(before, BATCH)).await?;
        }
        if let Some(before) = cutoff(r.deliveries_days) {
            out.deliveries =
                self.prune_docs(DocKind::Delivery, |d: &DeliveryRecord| (d.at < before).then(|| d.id.clone())).await?;
        }
        if let Some(before) = cutoff(r.approvals_days) {
            let old = |a: &Approval| {
                let decided = a.status != crate::approval::Status::Pending;
                (decided && a.closed_at.is_some_and(|at| at < before)).then(|| a.id.clone())
            };
            out.approvals = self.prune_docs(DocKind::Approval, old).await?;
        }
        if out != Pruned::default() {
            tracing::info!(
                runs = out.runs,
                events = out.events,
                deliveries = out.deliveries,
                approvals = out.approvals,
                audit = out.audit,
                "pruned by retention"
            );
        }
        Ok(out)
    }

    /// Removes the documents of `kind` that `old` names (it gives the id of one to
    /// remove): documents are keyed by id, not time, so a walk through them in pages.
    async fn prune_docs<T: serde::de::DeserializeOwned>(
        &self,
        kind: DocKind,
        old: impl Fn(&T) -> Option<String>,
    ) -> Result<u64> {
        let (mut after, mut removed): (Option<String>, u64) = (None, 0);
        loop {
            let page = self.store.docs(kind, after.as_deref(), BATCH).await?;
            let Some(last) = page.last() else { break };
            let mut tx = Tx::new();
            for bytes in &page {
                let doc: T = serde_json::from_slice(bytes)
                    .map_err(|e| crate::store::Error::Corrupt { key: kind.prefix().into(), detail: e.to_string() })?;
                if let Some(id) = old(&doc) {
                    tx.push(Write::Doc { kind, id, value: None });
                }
            }
            let next =
                serde_json::from_slice::<serde_json::Value>(last).ok().and_then(|v| v["id"].as_str().map(String::from));
            removed += tx.writes.len() as u64;
            if !tx.writes.is_empty() {
                self.store.commit(tx).await?;
            }
            match next {
                Some(id) if page.len() == BATCH => after = Some(id),
                _ => break,
            }
            tokio::task::yield_now().await;
        }
        Ok(removed)
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
