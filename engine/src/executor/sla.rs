//! SLA clocks on tickets, and the durable timers that fire their warnings and breaches.
//!
//! Every ticket event passes [`Engine::observe_sla`]: the first matching policy starts
//! the ticket's clocks; later events pause and resume them (the policy's `pause_when`),
//! retarget them (priority changes keep the time used and paused), and stop them (the first
//! public reply, or the start of work, by an actor of a kind the policy's
//! `response_stopped_by` names (people, by default) meets the response target; resolving
//! stops both clocks; reopening resumes the resolution clock). The ticket's
//! SLA state and its one timer (`sla:<ticket>`, due at the next threshold) are written in
//! the same transaction as the event.
//!
//! Timers live in the store, indexed by due time. [`Engine::fire_due_timers`] takes the
//! due ones and, per ticket, raises `sla.warning` / `sla.breached` events (which start
//! workflows like any event), re-arms the timer and deletes the fired one, all in one
//! transaction: after a crash a timer either fired completely or fires again; never twice.

use super::{Engine, Error, Result};
use crate::calendar::{Calendar, CalendarSpec};
use crate::run::{Event, EventKind, SlaSignal};
use crate::sla::{Clock, Crossed, Metric, Policy, TicketSla};
use crate::store::{Timer, TimerKind, Tx, Write};
use crate::ticket::{Status, Ticket};
use serde_json::Map;
use std::collections::HashMap;

use std::sync::Arc;

/// Policies (by id) and their calendars.
pub struct Setup {
    policies: Vec<Policy>,
    calendars: HashMap<String, Calendar>,
}

impl Setup {
    /// A calendar by id.
    pub fn calendar_by_id(&self, id: &str) -> Option<Calendar> {
        self.calendars.get(id).cloned()
    }

    /// The calendar of a policy, by policy id.
    pub fn policy_calendar(&self, policy: &str) -> Option<Calendar> {
        self.policy(policy).map(|p| self.calendar(p))
    }

    fn calendar(&self, policy: &Policy) -> Calendar {
        policy.calendar.as_ref().and_then(|c| self.calendars.get(c)).cloned().unwrap_or_else(Calendar::always)
    }

    fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }
}

fn holds(cond: &Option<crate::workflow::Condition>, ticket: &Ticket, event: &Event) -> bool {
    let Some(c) = cond else { return false };
    let vars = Map::new();
    c.evaluate(&super::event_scope(ticket, event, &vars), "", &mut Vec::new())
}

fn timer_for(state: &TicketSla, policy: &Policy, cal: &Calendar, now: chrono::DateTime<chrono::Utc>) -> Write {
    let key = format!("sla:{}", state.ticket_id);
    let due = [&state.response, &state.resolution]
        .into_iter()
        .filter(|c| c.is_active())
        .filter_map(|c| c.next_due(now, cal, &policy.warnings))
        .min();
    match due {
        Some(due) => Write::Timer(Timer { key, due, kind: TimerKind::SlaCheck { ticket: state.ticket_id.clone() } }),
        None => Write::CancelTimer(key),
    }
}

impl Engine {
    pub(super) async fn sla(&self) -> Result<Arc<Setup>> {
        let mut cache = self.sla_setup.lock().await;
        if let Some(s) = cache.as_ref() {
            return Ok(s.clone());
        }
        let mut calendars = HashMap::new();
        for spec in self.store.calendars().await? {
            if let Ok(cal) = Calendar::new(&spec) {
                calendars.insert(spec.id.clone(), cal);
            }
        }
        let setup = Arc::new(Setup { policies: self.store.sla_policies().await?, calendars });
        *cache = Some(setup.clone());
        Ok(setup)
    }

    /// Running SLA clocks that run out within `within`, soonest first (at most `limit`):
    /// found through the SLA check timers (a clock's next warning or breach is one), so
    /// the open tickets are not read one by one.
    pub async fn breaching_soon(&self, within: chrono::Duration, limit: usize) -> Result<Vec<(SlaReport, Metric)>> {
        let until = self.now() + within;
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for timer in self.store.due_timers(until, 2000).await? {
            let crate::store::TimerKind::SlaCheck { ticket } = timer.kind else { continue };
            if !seen.insert(ticket.clone()) {
                continue;
            }
            let Some(report) = self.sla_report(&ticket).await? else { continue };
            for metric in [Metric::Response, Metric::Resolution] {
                let clock = match metric {
                    Metric::Response => &report.response,
                    Metric::Resolution => &report.resolution,
                };
                if clock.status == "running" && clock.due_at.is_some_and(|d| d <= until) {
                    out.push((report.clone(), metric));
                }
            }
        }
        let due = |(r, m): &(SlaReport, Metric)| match m {
            Metric::Response => r.response.due_at,
            Metric::Resolution => r.resolution.due_at,
        };
        out.sort_by_key(due);
        out.truncate(limit);
        Ok(out)
    }

    /// A ticket's SLA clocks as a person reads them. `None` when no policy applies.
    pub async fn sla_report(&self, ticket: &str) -> Result<Option<SlaReport>> {
        let Some(state) = self.store.ticket_sla(ticket).await? else { return Ok(None) };
        let setup = self.sla().await?;
        let cal = setup.policy_calendar(&state.policy).unwrap_or_else(Calendar::always);
        let now = self.now();
        let describe = |c: &Clock| {
            let status = match (c.stopped_at, c.breached_at, c.running_since) {
                (Some(_), None, _) if c.used_secs <= c.target_secs => "met",
                (_, Some(_), _) => "breached",
                (Some(_), None, _) => "breached",
                (None, None, Some(_)) => "running",
                (None, None, None) => "paused",
            };
            let used = c.used(now, &cal);
            ClockReport {
                status,
                target_minutes: c.target_secs / 60,
                used_minutes: used.num_minutes(),
                remaining_minutes: (chrono::Duration::seconds(c.target_secs) - used).num_minutes(),
                paused_minutes: c.paused_secs / 60,
                due_at: c.due_at(&cal),
                warned: c.warned.clone(),
            }
        };
        Ok(Some(SlaReport {
            ticket: state.ticket_id.clone(),
            policy: state.policy.clone(),
            priority: state.priority,
            calendar: cal.id.clone(),
            response: describe(&state.response),
            resolution: describe(&state.resolution),
        }))
    }

    /// Stores a business calendar (validated).
    pub async fn put_calendar(&self, spec: CalendarSpec) -> Result<CalendarSpec> {
        if !crate::team::valid_id(&spec.id) {
            return Err(Error::Invalid(vec![(
                "/id".into(),
                "id must be 1-64 characters of letters, digits, `.`, `_` or `-`".into(),
            )]));
        }
        Calendar::new(&spec).map_err(|e| {
            let text = e.to_string();
            let (pointer, message) = text.split_once(": ").unwrap_or(("", &text));
            Error::Invalid(vec![(pointer.to_string(), message.to_string())])
        })?;
        let mut tx = Tx::new();
        tx.push(Write::Calendar(spec.clone()));
        self.store.commit(tx).await?;
        *self.sla_setup.lock().await = None;
        Ok(spec)
    }

    /// Stores an SLA policy (validated: targets, thresholds, conditions, calendar).
    pub async fn put_sla_policy(&self, policy: Policy) -> Result<Policy> {
        let mut errors = policy.check();
        for (field, cond) in [("/applies_to", &policy.applies_to), ("/pause_when", &policy.pause_when)] {
            if let Some(c) = cond {
                errors.extend(
                    crate::workflow::validate::check_condition(c, field).into_iter().map(|e| (e.pointer, e.message)),
                );
            }
        }
        if let Some(c) = &policy.calendar {
            if !self.store.calendars().await?.iter().any(|s| &s.id == c) {
                errors.push(("/calendar".into(), format!("unknown calendar `{c}`")));
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let mut tx = Tx::new();
        tx.push(Write::SlaPolicy(Box::new(policy.clone())));
        self.store.commit(tx).await?;
        *self.sla_setup.lock().await = None;
        Ok(policy)
    }

    /// The SLA state written earlier in this transaction, else the stored one.
    async fn pending_sla(&self, tx: &Tx, ticket: &str) -> Result<Option<TicketSla>> {
        for w in tx.writes.iter().rev() {
            if let Write::Sla(s) = w {
                if s.ticket_id == ticket {
                    return Ok(Some((**s).clone()));
                }
            }
        }
        Ok(self.store.ticket_sla(ticket).await?)
    }

    /// Updates the ticket's SLA clocks for an event; writes state and timer into `tx`.
    pub(super) async fn observe_sla(&self, tx: &mut Tx, ticket: &Ticket, event: &Event) -> Result<()> {
        let setup = self.sla().await?;
        if setup.policies.is_empty() {
            return Ok(());
        }
        let now = event.at;
        let mut state = match self.pending_sla(tx, &ticket.id).await? {
            Some(s) => s,
            None => {
                let Some(policy) =
                    setup.policies.iter().find(|p| p.applies_to.is_none() || holds(&p.applies_to, ticket, event))
                else {
                    return Ok(());
                };
                TicketSla {
                    ticket_id: ticket.id.clone(),
                    policy: policy.id.clone(),
                    priority: ticket.priority,
                    response: Clock::start(now, policy.target(Metric::Response, ticket.priority)),
                    resolution: Clock::start(now, policy.target(Metric::Resolution, ticket.priority)),
                }
            }
        };
        let Some(policy) = setup.policy(&state.policy) else { return Ok(()) };
        let cal = setup.calendar(policy);
        if ticket.priority != state.priority {
            state.priority = ticket.priority;
            state.response.retarget(policy.target(Metric::Response, ticket.priority));
            state.resolution.retarget(policy.target(Metric::Resolution, ticket.priority));
        }
        let status_to = event.changes.iter().find(|c| c.field == "status").and_then(|c| c.to.as_str());
        let responder = |who: &str| policy.response_stopped_by.contains(&self.actors.kind(who, &ticket.requester));
        let responded = match event.kind {
            EventKind::CommentAdded => event.comment.as_ref().is_some_and(|c| !c.internal && responder(&c.author)),
            _ => matches!(status_to, Some("in_progress")) && responder(&event.actor),
        };
        if responded && state.response.is_active() {
            state.response.stop(now, &cal);
        }
        match ticket.status {
            Status::Resolved | Status::Closed => {
                state.resolution.stop(now, &cal);
                if state.response.is_active() {
                    state.response.stop(now, &cal);
                }
            }
            _ if status_to == Some("reopened") => state.resolution.reopen(now),
            _ => {}
        }
        let paused = holds(&policy.pause_when, ticket, event);
        for clock in [&mut state.response, &mut state.resolution] {
            if !clock.is_active() {
                continue;
            }
            if paused {
                clock.pause(now, &cal);
            } else {
                clock.resume(now);
            }
        }
        tx.push(timer_for(&state, policy, &cal, now));
        tx.push(Write::Sla(Box::new(state)));
        Ok(())
    }

    /// Fires every timer due by the clock's now; returns how many fired.
    pub async fn fire_due_timers(self: &Arc<Self>) -> Result<usize> {
        let now = self.now();
        let mut fired = 0;
        loop {
            let due = self.store.due_timers(now, 1024).await?;
            if due.is_empty() {
                return Ok(fired);
            }
            // Schedules due together commit together (10k crons on the same minute
            // are 40 commits, not 10k).
            let (crons, others): (Vec<Timer>, Vec<Timer>) =
                due.into_iter().partition(|t| matches!(t.kind, TimerKind::Cron { .. }));
            if !crons.is_empty() {
                self.fire_schedules(&crons, now).await?;
                self.metrics.timer("schedule", crons.len() as u64);
                fired += crons.len();
            }
            for timer in others {
                let kind = match &timer.kind {
                    TimerKind::SlaCheck { .. } => "sla",
                    TimerKind::ResumeRun { .. } => "wait",
                    TimerKind::CountChildren { .. } => "children",
                    _ => "approval",
                };
                self.metrics.timer(kind, 1);
                match &timer.kind {
                    TimerKind::SlaCheck { ticket } => self.fire_sla(&timer, ticket, now).await?,
                    TimerKind::ResumeRun { run } => self.fire_wait(&timer, run, now).await?,
                    TimerKind::ApprovalDue { approval, stage } => {
                        self.fire_approval_due(&timer, approval, *stage).await?
                    }
                    TimerKind::ApprovalRemind { approval, stage } => {
                        self.fire_approval_reminder(&timer, approval, *stage).await?
                    }
                    TimerKind::CountChildren { parent } => self.count_children(&timer, parent).await?,
                    TimerKind::Cron { .. } => {}
                }
                fired += 1;
            }
        }
    }

    async fn fire_sla(
        self: &Arc<Self>,
        timer: &Timer,
        ticket_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let _guard = self.locks.lock(ticket_id).await;
        let mut tx = Tx::new();
        let (Some(ticket), Some(mut state)) =
            (self.store.ticket(ticket_id).await?, self.store.ticket_sla(ticket_id).await?)
        else {
            return self.drop_timer(timer).await;
        };
        let setup = self.sla().await?;
        let Some(policy) = setup.policy(&state.policy).cloned() else {
            return self.drop_timer(timer).await;
        };
        let cal = setup.calendar(&policy);
        let mut runs = Vec::new();
        let actor = format!("sla:{}", policy.id);
        for metric in [Metric::Response, Metric::Resolution] {
            for crossed in state.clock_mut(metric).check(now, &cal, &policy.warnings) {
                self.metrics
                    .sla(if matches!(crossed, Crossed::Breached) { "breached" } else { "warning" }, metric.as_str());
                let (kind, percent) = match crossed {
                    Crossed::Warning { percent } => (EventKind::SlaWarning, Some(percent)),
                    Crossed::Breached => (EventKind::SlaBreached, None),
                };
                tracing::info!(ticket = %ticket_id, metric = metric.as_str(), ?percent, "SLA {}", kind.as_str());
                let signal = SlaSignal { policy: policy.id.clone(), metric, percent };
                let (_, started) =
                    self.raise_with(&mut tx, &ticket, kind, Vec::new(), None, &actor, &[], None, Some(signal)).await?;
                runs.extend(started);
            }
        }
        tx.push(timer_for(&state, &policy, &cal, now));
        tx.push(Write::Sla(Box::new(state)));
        self.store.commit(tx).await?;
        self.spawn_runs(&runs);
        Ok(())
    }

    /// Removes a timer that has nothing left to do (its ticket, run or approval is gone
    /// or has moved on).
    pub(super) async fn drop_timer(&self, timer: &Timer) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(Write::CancelTimer(timer.key.clone()));
        Ok(self.store.commit(tx).await?)
    }
}

/// A ticket's SLA clocks as a person reads them (`GET /tickets/{id}/sla`, `explain`, the
/// console's ticket page).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlaReport {
    pub ticket: String,
    /// The policy measuring the ticket.
    pub policy: String,
    /// The priority its targets were taken for.
    pub priority: crate::ticket::Priority,
    /// The business calendar the clocks count on.
    pub calendar: String,
    pub response: ClockReport,
    pub resolution: ClockReport,
}

/// One SLA clock.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClockReport {
    /// `running`, `paused`, `met` or `breached`.
    pub status: &'static str,
    pub target_minutes: i64,
    /// Business minutes used so far.
    pub used_minutes: i64,
    /// Business minutes left (negative once breached).
    pub remaining_minutes: i64,
    pub paused_minutes: i64,
    /// When the target runs out if nothing pauses the clock.
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The warning thresholds (percent used) already signalled.
    pub warned: Vec<u8>,
}
