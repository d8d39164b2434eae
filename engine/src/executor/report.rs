//! Reports: gathers the tickets logged before the period's end with their history and
//! SLA clocks, and lets [`crate::report`] count.

use super::{invalid, Engine, Result};
use crate::report::{self, Item, Query, Report};

impl Engine {
    /// The report `q` asks for.
    pub async fn report(&self, q: &Query) -> Result<Report> {
        if q.to <= q.from {
            return Err(invalid("/to", "`to` must be after `from`"));
        }
        q.savings.check().map_err(|m| invalid("/minutes_saved_per_ticket", m))?;
        if let Some(bucket) = q.bucket {
            if report::boundaries(q.from, q.to, bucket, q.tz).len() > report::MAX_BUCKETS + 1 {
                return Err(invalid(
                    "/bucket",
                    format!("more than {} buckets: use a longer bucket", report::MAX_BUCKETS),
                ));
            }
        }
        let tickets: Vec<_> =
            super::schedule::all_tickets(self).await?.into_iter().filter(|t| t.created_at < q.to).collect();
        let mut histories = Vec::with_capacity(tickets.len());
        let mut slas = Vec::with_capacity(tickets.len());
        for t in &tickets {
            histories.push(self.store.history(&t.id).await?);
            slas.push(self.store.ticket_sla(&t.id).await?);
        }
        let items: Vec<Item<'_>> = tickets
            .iter()
            .zip(histories.iter())
            .zip(slas.iter())
            .map(|((ticket, history), sla)| Item { ticket, history, sla: sla.as_ref() })
            .collect();
        Ok(report::compute(&items, q, &self.actors))
    }
}
