//! Reports: gathers the tickets logged in a period with their history and SLA clocks,
//! and lets [`crate::report`] count.

use super::{invalid, Engine, Result};
use crate::report::{self, GroupBy, Item};
use chrono::{DateTime, Utc};
use serde_json::Value;

impl Engine {
    /// The report for tickets logged in `[from, to)`.
    pub fn report(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        by: Option<GroupBy>,
        minutes_saved: f64,
    ) -> Result<Value> {
        if to <= from {
            return Err(invalid("/to", "`to` must be after `from`"));
        }
        if !(0.0..=10_000.0).contains(&minutes_saved) {
            return Err(invalid("/minutes_saved_per_ticket", "between 0 and 10000"));
        }
        let tickets: Vec<_> = super::schedule::all_tickets(self)?
            .into_iter()
            .filter(|t| t.created_at >= from && t.created_at < to)
            .collect();
        let mut histories = Vec::with_capacity(tickets.len());
        let mut slas = Vec::with_capacity(tickets.len());
        for t in &tickets {
            histories.push(self.store.history(&t.id)?);
            slas.push(self.store.ticket_sla(&t.id)?);
        }
        let items: Vec<Item<'_>> = tickets
            .iter()
            .zip(histories.iter())
            .zip(slas.iter())
            .map(|((ticket, history), sla)| Item { ticket, history, sla: sla.as_ref() })
            .collect();
        Ok(report::compute(&items, from, to, by, minutes_saved))
    }
}
