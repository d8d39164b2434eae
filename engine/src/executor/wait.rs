//! Runs parked at `wait` steps.
//!
//! A waiting run is a record in the store (status `waiting`, indexed by ticket) and,
//! when its wait has a duration, a timer: no task and no memory. Every ticket event
//! checks the runs waiting on that ticket and resumes those whose `until` condition now
//! holds; the timer resumes the others at `on_timeout`. Both happen under the ticket's
//! lock and commit the run's new state with the event or the timer's removal.

use super::{Engine, Result};
use crate::run::{machine, Event, RunStatus, TraceEntry};
use crate::store::{Timer, Tx, Write};
use crate::ticket::Ticket;
use crate::workflow::Action;
use std::sync::Arc;

impl Engine {
    /// Resumes the runs waiting on `ticket` whose condition holds for `event`. Returns
    /// their ids (to drive after the commit).
    pub(super) async fn wake_waiting(&self, tx: &mut Tx, ticket: &Ticket, event: &Event) -> Result<Vec<String>> {
        let mut woken = Vec::new();
        for id in self.store.waiting_runs(&ticket.id).await? {
            if tx.writes_run(&id) {
                continue; // resumed by an earlier event of this same transaction
            }
            let Some(mut run) = self.store.run(&id).await? else { continue };
            let Some(waiting) = run.waiting.clone().filter(|_| run.status == RunStatus::Waiting) else { continue };
            let def = self.definition(&run.workflow_id, run.workflow_revision).await?;
            let Some(index) = def.step_index(&waiting.step) else { continue };
            let Action::Wait { until: Some(cond), .. } = &def.steps[index].action else { continue };
            let mut checks = Vec::new();
            let scope = super::event_scope(ticket, event, &run.vars);
            if !cond.evaluate(&scope, &format!("/steps/{index}/until"), &mut checks) {
                continue;
            }
            let message = format!("condition held on {} by {}", event.kind.as_str(), event.actor);
            let entry = TraceEntry { checks, ..TraceEntry::step(event.at, &waiting.step, "wait", "resumed", message) };
            let outcome = machine::resume(&mut run, entry, def.following(index), event.at);
            self.count_end(&run, &outcome);
            tx.push(Write::CancelTimer(format!("run:{}", run.id)));
            if run.status.is_active() {
                woken.push(run.id.clone());
            }
            tx.run(&mut run);
        }
        Ok(woken)
    }

    /// A wait's duration ran out: continue at `on_timeout` (or the next step).
    pub(super) async fn fire_wait(
        self: &Arc<Self>,
        timer: &Timer,
        run_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(Write::CancelTimer(timer.key.clone()));
        let Some(run) = self.store.run(run_id).await? else { return Ok(self.store.commit(tx).await?) };
        let _guard = self.locks.lock(&run.ticket_id).await;
        // Re-read under the lock: an event may have resumed it meanwhile.
        let Some(mut run) = self.store.run(run_id).await? else { return Ok(self.store.commit(tx).await?) };
        let Some(waiting) = run.waiting.clone().filter(|_| run.status == RunStatus::Waiting) else {
            return Ok(self.store.commit(tx).await?);
        };
        let def = self.definition(&run.workflow_id, run.workflow_revision).await?;
        let Some(index) = def.step_index(&waiting.step) else { return Ok(self.store.commit(tx).await?) };
        let on_timeout = match &def.steps[index].action {
            Action::Wait { on_timeout, .. } => on_timeout.clone(),
            _ => None,
        };
        let next = machine::target(on_timeout.as_deref(), def.following(index));
        let message = format!("went to {}", next.as_deref().unwrap_or("end"));
        let entry = TraceEntry::step(now, &waiting.step, "wait", "timed_out", message);
        let outcome = machine::resume(&mut run, entry, next, now);
        self.count_end(&run, &outcome);
        let resume = run.status.is_active().then(|| run.id.clone());
        tx.run(&mut run);
        self.store.commit(tx).await?;
        if let Some(id) = resume {
            self.spawn_run(id);
        }
        Ok(())
    }
}
