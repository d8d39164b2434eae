//! Workflows with a `schedule` trigger.
//!
//! Each enabled scheduled workflow has one durable timer (`cron:<workflow>`) due at its
//! next occurrence. Publishing keeps the timer when the expression and zone are
//! unchanged (so a restart that re-applies the same workflows does not lose catch-up)
//! and sets a fresh one otherwise; disabling or removing the schedule cancels it.
//!
//! When the timer fires, [`crate::schedule::Compiled::plan`] turns "due at X, now is Y"
//! into firings under the trigger's catch-up policy, and the runs of every firing are
//! written in the same commit that moves the timer to the next occurrence: after a crash
//! either both happened or neither, so an occurrence fires exactly once.

use super::{Engine, Error, Result};
use crate::run::{Event, EventKind, RunStatus};
use crate::schedule::{Compiled, Firing};
use crate::store::{TicketFilter, Timer, TimerKind, Tx, Write};
use crate::ticket::Ticket;
use crate::workflow::{Schedule, Workflow, WorkflowRecord};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// A scheduled workflow as `GET /schedules` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduleInfo {
    /// The workflow.
    pub workflow: String,
    /// Whether the workflow is enabled (a disabled one has no timer and fires nothing).
    pub enabled: bool,
    /// The expression.
    pub cron: String,
    /// Its zone.
    pub timezone: String,
    /// What happens to occurrences missed while the server was down.
    pub catch_up: crate::schedule::CatchUp,
    /// The next occurrences (five), computed from now.
    pub next: Vec<crate::schedule::Occurrence>,
    /// When the durable timer is due (the first of `next`, or an overdue one).
    pub timer_due: Option<DateTime<Utc>>,
    /// The latest occurrence fired.
    pub last_fired: Option<crate::schedule::Occurrence>,
    /// Occurrences missed (caught up late, or skipped) since the timer was set.
    pub missed: u64,
}

/// The timer key of a workflow's schedule.
pub(super) fn timer_key(workflow: &str) -> String {
    format!("cron:{workflow}")
}

/// Hands every ticket matching `filter` to `each`, a page of 1,000 at a time (none is
/// kept beyond its page).
pub(super) async fn each_ticket_page(
    engine: &Engine,
    filter: TicketFilter,
    mut each: impl FnMut(Vec<Ticket>),
) -> Result<()> {
    let mut after: Option<String> = None;
    loop {
        let page = TicketFilter { after: after.take(), limit: Some(1000), ..filter.clone() };
        let page = engine.store.tickets(&page).await?;
        let more = page.len() == 1000;
        after = page.last().map(|t| t.id.clone());
        each(page);
        if !more {
            return Ok(());
        }
    }
}

/// Reads every ticket matching `filter`, a page at a time.
pub(super) async fn all_tickets_where(engine: &Engine, filter: TicketFilter) -> Result<Vec<Ticket>> {
    let mut out: Vec<Ticket> = Vec::new();
    each_ticket_page(engine, filter, |page| out.extend(page)).await?;
    Ok(out)
}

/// Reads every ticket, a page at a time.
pub(super) async fn all_tickets(engine: &Engine) -> Result<Vec<Ticket>> {
    all_tickets_where(engine, TicketFilter::default()).await
}

/// Reads the open tickets (through the status index), in id order.
pub(super) async fn open_tickets(engine: &Engine) -> Result<Vec<Ticket>> {
    let mut out = Vec::new();
    for status in crate::ticket::Status::ALL.into_iter().filter(|s| s.is_open()) {
        out.extend(all_tickets_where(engine, TicketFilter { status: Some(status), ..Default::default() }).await?);
    }
    out.sort_by_key(|t| crate::store::parse_id(&t.id, 'T'));
    Ok(out)
}

/// Whether a workflow reads `vars.<name>` (anywhere in its definition).
fn mentions(def: &Workflow, name: &str) -> bool {
    serde_json::to_string(def).is_ok_and(|s| s.contains(&format!("vars.{name}")))
}

/// The JSON name of a unit enum (`P1`, `in_progress`).
fn name_of(v: impl serde::Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// Counts of open tickets, for summary runs (`vars.backlog`).
fn backlog(tickets: &[Ticket], now: DateTime<Utc>) -> Value {
    let mut by_priority = Map::new();
    let mut by_status = Map::new();
    let mut by_group = Map::new();
    let (mut open, mut unassigned, mut older_than_7d) = (0u64, 0u64, 0u64);
    let mut oldest: Option<&Ticket> = None;
    let bump = |m: &mut Map<String, Value>, k: String| {
        let n = m.get(&k).and_then(Value::as_u64).unwrap_or(0);
        m.insert(k, json!(n + 1));
    };
    for t in tickets.iter().filter(|t| t.status.is_open()) {
        open += 1;
        bump(&mut by_priority, name_of(t.priority));
        bump(&mut by_status, t.status.to_string());
        bump(&mut by_group, t.group.clone().unwrap_or_else(|| "(none)".into()));
        unassigned += u64::from(t.assignee.is_none());
        older_than_7d += u64::from(now - t.created_at > chrono::Duration::days(7));
        if oldest.is_none_or(|o| t.created_at < o.created_at) {
            oldest = Some(t);
        }
    }
    json!({
        "open": open,
        "unassigned": unassigned,
        "older_than_7d": older_than_7d,
        "by_priority": by_priority,
        "by_status": by_status,
        "by_group": by_group,
        "oldest": oldest.map(|t| json!({"id": t.id, "created_at": t.created_at, "title": t.title})),
    })
}

impl Engine {
    /// Every scheduled workflow with its next occurrences, last firing and misses.
    pub async fn schedules(&self) -> Result<Vec<ScheduleInfo>> {
        let mut out = Vec::new();
        for record in self.current_workflows().await?.iter() {
            if let Some(info) = self.schedule_info(record).await? {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// One workflow's schedule (`None` when it has no schedule trigger).
    pub async fn schedule_info(&self, record: &WorkflowRecord) -> Result<Option<ScheduleInfo>> {
        let Some(schedule) = record.definition.schedule() else { return Ok(None) };
        let Ok(compiled) = Compiled::new(&schedule.cron, &schedule.timezone) else { return Ok(None) };
        let timer = self.store.timer(&timer_key(&record.id)).await?;
        let (last_fired, missed) = match timer.as_ref().map(|t| &t.kind) {
            Some(TimerKind::Cron { last_fired, missed, .. }) => (*last_fired, *missed),
            _ => (None, 0),
        };
        Ok(Some(ScheduleInfo {
            workflow: record.id.clone(),
            enabled: record.enabled,
            cron: schedule.cron.clone(),
            timezone: schedule.timezone.clone(),
            catch_up: schedule.catch_up,
            next: if record.enabled { compiled.upcoming(self.now(), 5) } else { Vec::new() },
            timer_due: timer.map(|t| t.due),
            last_fired: last_fired.map(|t| compiled.occurrence(t)),
            missed,
        }))
    }

    /// The write that keeps `record`'s schedule timer right after a publish or an
    /// enable/disable; `None` when the current timer is already right.
    pub(super) async fn schedule_timer(&self, record: &WorkflowRecord) -> Result<Option<Write>> {
        let key = timer_key(&record.id);
        let current = self.store.timer(&key).await?;
        let Some(schedule) = record.definition.schedule().filter(|_| record.enabled) else {
            return Ok(current.map(|_| Write::CancelTimer(key)));
        };
        if let Some(Timer { kind: TimerKind::Cron { cron, timezone, .. }, .. }) = &current {
            if *cron == schedule.cron && *timezone == schedule.timezone {
                return Ok(None);
            }
        }
        let Ok(compiled) = Compiled::new(&schedule.cron, &schedule.timezone) else {
            return Ok(Some(Write::CancelTimer(key))); // validation prevents this
        };
        Ok(Some(match compiled.next_after(self.now()) {
            Some(due) => Write::Timer(Timer { key, due, kind: cron_kind(&record.id, schedule, None, 0) }),
            None => Write::CancelTimer(key),
        }))
    }

    /// Fires due schedule timers together: their runs and their next timers go into
    /// one commit. Returns how many runs started.
    pub(super) async fn fire_schedules(self: &Arc<Self>, timers: &[Timer], now: DateTime<Utc>) -> Result<usize> {
        let mut tx = Tx::new();
        let mut started = Vec::new();
        let mut tickets: Option<Vec<Ticket>> = None;
        // The engine's cached current definitions, indexed once for the batch, and each
        // distinct expression parsed once: 10k schedules due together cost no store reads.
        let current = self.current_workflows().await?;
        let by_id: HashMap<&str, &WorkflowRecord> = current.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut parsed: HashMap<(String, String), Compiled> = HashMap::new();
        for timer in timers {
            let TimerKind::Cron { workflow, last_fired, missed, .. } = &timer.kind else { continue };
            let Some((record, schedule)) = by_id
                .get(workflow.as_str())
                .filter(|r| r.enabled)
                .and_then(|r| r.definition.schedule().cloned().map(|s| (*r, s)))
            else {
                tx.push(Write::CancelTimer(timer.key.clone()));
                continue;
            };
            let key = (schedule.cron.clone(), schedule.timezone.clone());
            let compiled = match parsed.get(&key) {
                Some(c) => c.clone(),
                None => match Compiled::new(&schedule.cron, &schedule.timezone) {
                    Ok(c) => parsed.entry(key).or_insert(c).clone(),
                    Err(e) => {
                        tracing::error!(workflow = %workflow, error = %e, "stored schedule does not compile; timer dropped");
                        tx.push(Write::CancelTimer(timer.key.clone()));
                        continue;
                    }
                },
            };
            let plan = compiled.plan(timer.due, *last_fired, now, schedule.catch_up);
            if plan.skipped > 0 {
                tracing::info!(workflow = %workflow, skipped = plan.skipped, policy = ?schedule.catch_up,
                    "missed schedule occurrences not fired");
            }
            // Reading the open tickets is the expensive part: only for fan-out, or for
            // summaries that use the backlog, and once per batch of due schedules.
            let needs_tickets = schedule.tickets.is_some() || mentions(&record.definition, "backlog");
            if !plan.firings.is_empty() && needs_tickets && tickets.is_none() {
                tickets = Some(open_tickets(self).await?);
            }
            for firing in &plan.firings {
                let tickets = if needs_tickets { tickets.as_deref() } else { None };
                started
                    .extend(self.start_scheduled(&mut tx, record, &schedule, &compiled, firing, tickets, now).await?);
            }
            let fired = plan.firings.iter().map(|f| f.scheduled_for).max().max(*last_fired);
            let kind = cron_kind(workflow, &schedule, fired, missed + plan.missed as u64);
            tx.push(match plan.next {
                Some(due) => Write::Timer(Timer { key: timer.key.clone(), due, kind }),
                None => Write::CancelTimer(timer.key.clone()),
            });
        }
        self.store.commit(tx).await?;
        self.spawn_runs(&started);
        Ok(started.len())
    }

    /// Writes the runs of one firing: one with no ticket, or one per open ticket that
    /// `tickets` holds for.
    #[allow(clippy::too_many_arguments)]
    async fn start_scheduled(
        &self,
        tx: &mut Tx,
        record: &WorkflowRecord,
        schedule: &Schedule,
        compiled: &Compiled,
        firing: &Firing,
        tickets: Option<&[Ticket]>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let mut started = Vec::new();
        for (ticket, event, seed) in
            self.firing_targets(&record.definition, schedule, compiled, firing, tickets, now).await?
        {
            let (_, run) = self.evaluate(record, &event, &ticket, seed).await?;
            if let Some(mut run) = run {
                if run.status == RunStatus::Pending {
                    started.push(run.id.clone());
                }
                tx.run(&mut run);
            }
        }
        Ok(started)
    }

    /// What one firing runs on, with the event and the variables each run starts with:
    /// the no-ticket placeholder (with `vars.backlog` / `vars.report` when the definition
    /// reads them), or each open ticket the schedule's `tickets` condition holds for.
    async fn firing_targets(
        &self,
        def: &Workflow,
        schedule: &Schedule,
        compiled: &Compiled,
        firing: &Firing,
        tickets: Option<&[Ticket]>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Target>> {
        let local = firing.scheduled_for.with_timezone(&compiled.tz());
        let info = json!({
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "scheduled_for": firing.scheduled_for,
            "local": local.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "weekday": local.format("%A").to_string(),
            "occurrences": firing.occurrences,
            "missed": firing.missed,
            "late_ms": (now - firing.scheduled_for).num_milliseconds(),
        });
        let event = |ticket: &str| Event {
            id: format!("S-{}-{}", def.id, firing.scheduled_for.timestamp()),
            ticket_id: ticket.to_string(),
            kind: EventKind::Schedule,
            changes: Vec::new(),
            comment: None,
            actor: "schedule".into(),
            causation: Vec::new(),
            at: now,
            sla: None,
            evaluations: Vec::new(),
        };
        let mut seed = Map::new();
        seed.insert("schedule".into(), info);
        let mut out = Vec::new();
        match &schedule.tickets {
            None => {
                if let Some(tickets) = tickets {
                    seed.insert("backlog".into(), backlog(tickets, now));
                }
                // The last week's report, for workflows that post it (`vars.report`).
                if mentions(def, "report") {
                    let week = crate::report::Query {
                        from: now - chrono::Duration::days(7),
                        to: now,
                        by: Some(crate::report::GroupBy::Group),
                        bucket: None,
                        tz: chrono_tz::UTC,
                        savings: self.config.reports.clone(),
                    };
                    seed.insert(
                        "report".into(),
                        serde_json::to_value(self.report(&week).await?).unwrap_or(Value::Null),
                    );
                }
                out.push((Ticket::placeholder(now), event(""), seed));
            }
            Some(cond) => {
                for ticket in tickets.unwrap_or_default().iter().filter(|t| t.status.is_open()) {
                    let ev = event(&ticket.id);
                    let scope = super::event_scope(ticket, &ev, &seed);
                    if cond.evaluate(&scope, "/triggers/tickets", &mut Vec::new()) {
                        out.push((ticket.clone(), ev, seed.clone()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Runs a scheduled workflow now, as if its schedule had fired (same variables, same
    /// fan-out over tickets); its timer and next occurrences are untouched. Audited.
    pub async fn run_schedule_now(self: &Arc<Self>, id: &str, actor: &str) -> Result<Vec<String>> {
        let record =
            self.store.workflow(id).await?.ok_or_else(|| Error::NotFound { kind: "workflow", id: id.into() })?;
        let now = self.now();
        let (schedule, compiled, firing, tickets) = self.firing_now(&record.definition, now).await?;
        if !record.enabled {
            return Err(Error::Conflict(format!("workflow `{id}` is disabled")));
        }
        let mut tx = Tx::new();
        let started =
            self.start_scheduled(&mut tx, &record, &schedule, &compiled, &firing, tickets.as_deref(), now).await?;
        tx.push(Write::Audit(crate::run::AuditEntry {
            at: now,
            actor: actor.into(),
            action: "workflow.run_now".into(),
            target: id.into(),
            detail: json!({"runs": started.len()}),
        }));
        self.store.commit(tx).await?;
        self.spawn_runs(&started);
        Ok(started)
    }

    /// A firing of `def`'s schedule at `now`, for a run or dry run on demand: the schedule,
    /// compiled, and the tickets it needs (for a fan-out or `vars.backlog`).
    async fn firing_now(
        &self,
        def: &Workflow,
        now: DateTime<Utc>,
    ) -> Result<(Schedule, Compiled, Firing, Option<Vec<Ticket>>)> {
        let Some(schedule) = def.schedule().cloned() else {
            return Err(super::invalid(
                "/ticket",
                format!("`{}` has no schedule trigger: give the ticket to run on", def.id),
            ));
        };
        let compiled = Compiled::new(&schedule.cron, &schedule.timezone)
            .map_err(|e| super::invalid("/triggers", e.to_string()))?;
        let firing = Firing { scheduled_for: now, occurrences: 1, missed: false };
        let needs_tickets = schedule.tickets.is_some() || mentions(def, "backlog");
        let tickets = if needs_tickets { Some(open_tickets(self).await?) } else { None };
        Ok((schedule, compiled, firing, tickets))
    }

    /// A dry run of a scheduled workflow as if its schedule fired now: one result for a
    /// summary, or one per matching open ticket (at most 50) for a fan-out.
    pub async fn dry_run_schedule(&self, def: &Workflow, outputs: &Map<String, Value>) -> Result<Value> {
        let now = self.now();
        let (schedule, compiled, firing, tickets) = self.firing_now(def, now).await?;
        let targets = self.firing_targets(def, &schedule, &compiled, &firing, tickets.as_deref(), now).await?;
        let matching = targets.len();
        let mut results = Vec::new();
        for (ticket, event, seed) in targets.into_iter().take(50) {
            let id = ticket.id.clone();
            let result = self.dry_run_event(def, ticket, &event, seed, outputs).await?;
            results.push(json!({"ticket": (!id.is_empty()).then_some(id), "result": result}));
        }
        Ok(json!({"schedule": schedule.cron, "timezone": schedule.timezone, "fan_out": schedule.tickets.is_some(),
            "matching": matching, "results": results}))
    }
}

/// One run a firing starts: on this ticket (or the placeholder), for this event, with
/// these variables.
type Target = (Ticket, Event, Map<String, Value>);

fn cron_kind(workflow: &str, schedule: &Schedule, last_fired: Option<DateTime<Utc>>, missed: u64) -> TimerKind {
    TimerKind::Cron {
        workflow: workflow.into(),
        cron: schedule.cron.clone(),
        timezone: schedule.timezone.clone(),
        last_fired,
        missed,
    }
}
