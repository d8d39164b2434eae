//! `explain`: for one ticket, why each workflow and SLA policy did or did not apply.
//!
//! Built from what dispatch already recorded: every event keeps each workflow's
//! evaluation (started, not matched with the first failing comparison and the value it
//! saw, refused by the loop guard, disabled). Workflows that no event triggered are listed
//! with their triggers; scheduled runs on the ticket are counted from its runs; SLA
//! policies are tested against the ticket as it is now.

use super::loops::CausationTree;
use super::sla::SlaReport;
use super::{describe_failure, event_scope, Engine, Error, Result};
use crate::run::{Event, EventKind};
use crate::store::RunFilter;
use crate::workflow::condition::Check;
use crate::workflow::Trigger;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Map;

/// Why each workflow and SLA policy did or did not apply to a ticket.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub ticket: String,
    /// Every current workflow, in id order.
    pub workflows: Vec<WorkflowVerdict>,
    /// Every SLA policy, tested against the ticket as it is now.
    pub sla_policies: Vec<PolicyVerdict>,
    /// The ticket's SLA clocks, when a policy measures it.
    pub sla: Option<SlaReport>,
    /// Runs on the ticket parked at a wait or an approval.
    pub waiting_runs: Vec<WaitingRun>,
    /// Events of the ticket whose runs set off further events.
    pub trees: Vec<CausationTree>,
}

/// What one workflow did with a ticket's events.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowVerdict {
    pub workflow: String,
    pub revision: u32,
    pub enabled: bool,
    /// Its triggers, as people read them.
    pub triggers: Vec<String>,
    /// One line: ran, refused, never triggered, conditions never held (and the first
    /// failing comparison).
    pub summary: String,
    /// Runs a schedule started on the ticket.
    pub scheduled_runs: usize,
    /// Every event of the ticket the workflow was offered, oldest first.
    pub events: Vec<EventVerdict>,
}

/// What a workflow made of one event.
#[derive(Debug, Clone, Serialize)]
pub struct EventVerdict {
    pub event: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub revision: u32,
    /// `started`, `not_matched`, `refused` or `disabled`.
    pub outcome: String,
    pub run: Option<String>,
    pub reason: Option<String>,
    /// The comparisons made, with the values seen.
    pub checks: Vec<Check>,
}

/// Whether an SLA policy applies to the ticket, and why.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyVerdict {
    pub policy: String,
    /// Its `applies_to` holds for the ticket as it is now.
    pub applies: bool,
    /// It is the policy measuring the ticket.
    pub selected: bool,
    pub why: String,
    pub checks: Vec<Check>,
}

/// A run parked on the ticket.
#[derive(Debug, Clone, Serialize)]
pub struct WaitingRun {
    pub run: String,
    pub workflow: String,
    pub step: Option<String>,
    pub until: Option<DateTime<Utc>>,
}

fn trigger_name(t: &Trigger) -> String {
    match t {
        Trigger::TicketCreated => "ticket.created".into(),
        Trigger::TicketUpdated { changed } if changed.is_empty() => "ticket.updated".into(),
        Trigger::TicketUpdated { changed } => {
            let fields: Vec<&str> = changed.iter().map(|c| c.field.as_str()).collect();
            format!("ticket.updated ({})", fields.join(", "))
        }
        Trigger::CommentAdded { .. } => "comment.added".into(),
        Trigger::Manual => "manual".into(),
        Trigger::SlaWarning { .. } => "sla.warning".into(),
        Trigger::SlaBreached { .. } => "sla.breached".into(),
        Trigger::Schedule(s) => format!("schedule `{}` {}", s.cron, s.timezone),
    }
}

impl Engine {
    /// The explanation for ticket `id` (see the module docs).
    pub async fn explain(&self, id: &str) -> Result<Explanation> {
        let ticket = self.store.ticket(id).await?.ok_or_else(|| Error::NotFound { kind: "ticket", id: id.into() })?;
        let events = self.store.ticket_events(id).await?;
        let runs =
            self.store.runs(&RunFilter { ticket: Some(id.into()), limit: Some(1000), ..Default::default() }).await?;
        let mut workflows = Vec::new();
        for record in self.current_workflows().await?.iter() {
            let mut seen = Vec::new();
            let (mut started, mut refused) = (0, 0);
            let mut first_miss = None;
            for e in &events {
                for ev in e.evaluations.iter().filter(|ev| ev.workflow_id == record.id) {
                    match ev.outcome.as_str() {
                        "started" => started += 1,
                        "refused" => refused += 1,
                        "not_matched" if first_miss.is_none() => first_miss = ev.reason.clone(),
                        _ => {}
                    }
                    seen.push(EventVerdict {
                        event: e.id.clone(),
                        kind: e.kind.as_str(),
                        at: e.at,
                        actor: e.actor.clone(),
                        revision: ev.revision,
                        outcome: ev.outcome.clone(),
                        run: ev.run_id.clone(),
                        reason: ev.reason.clone(),
                        checks: ev.checks.clone(),
                    });
                }
            }
            let scheduled = runs
                .iter()
                .filter(|r| r.workflow_id == record.id && r.event_type == EventKind::Schedule.as_str())
                .count();
            let triggers: Vec<String> = record.definition.triggers.iter().map(trigger_name).collect();
            let summary = if !record.enabled {
                "disabled".to_string()
            } else if seen.is_empty() && scheduled == 0 {
                format!("not triggered: no event of this ticket matched its triggers ({})", triggers.join(", "))
            } else if started + scheduled > 0 {
                format!(
                    "ran {} time(s){}",
                    started + scheduled,
                    if refused > 0 { format!(", refused {refused} time(s) by the loop guard") } else { String::new() }
                )
            } else if refused > 0 {
                format!("refused {refused} time(s) by the loop guard")
            } else {
                format!("triggered {} time(s), conditions never held: {}", seen.len(), first_miss.unwrap_or_default())
            };
            workflows.push(WorkflowVerdict {
                workflow: record.id.clone(),
                revision: record.revision,
                enabled: record.enabled,
                triggers,
                summary,
                scheduled_runs: scheduled,
                events: seen,
            });
        }
        let state = self.store.ticket_sla(id).await?;
        // Policies are tested against the ticket as it is now, as an update would.
        let probe = Event {
            id: String::new(),
            ticket_id: id.into(),
            kind: EventKind::Updated,
            changes: Vec::new(),
            comment: None,
            actor: String::new(),
            causation: Vec::new(),
            at: self.now(),
            sla: None,
            evaluations: Vec::new(),
        };
        let vars = Map::new();
        let mut policies = Vec::new();
        for policy in self.store.sla_policies().await? {
            let mut checks = Vec::new();
            let holds = match &policy.applies_to {
                Some(c) => c.evaluate(&event_scope(&ticket, &probe, &vars), "/applies_to", &mut checks),
                None => true,
            };
            let selected = state.as_ref().is_some_and(|s| s.policy == policy.id);
            let why = match (selected, holds) {
                (true, _) => "measures this ticket".to_string(),
                (false, true) => "applies to the ticket as it is now, but another policy measures it (or it started before this policy existed)".to_string(),
                (false, false) => checks.iter().find(|c| !c.result).map(describe_failure).unwrap_or_default(),
            };
            policies.push(PolicyVerdict { policy: policy.id, applies: holds, selected, why, checks });
        }
        let waiting_runs = runs
            .iter()
            .filter(|r| r.status == crate::run::RunStatus::Waiting)
            .map(|r| WaitingRun {
                run: r.id.clone(),
                workflow: r.workflow_id.clone(),
                step: r.waiting.as_ref().map(|w| w.step.clone()),
                until: r.waiting.as_ref().and_then(|w| w.deadline),
            })
            .collect();
        Ok(Explanation {
            ticket: id.to_string(),
            workflows,
            sla_policies: policies,
            sla: self.sla_report(id).await?,
            waiting_runs,
            trees: self.ticket_trees(&events),
        })
    }
}
