//! `explain`: for one ticket, why each workflow and SLA policy did or did not apply.
//!
//! Built from what dispatch already recorded: every event keeps each workflow's
//! evaluation (started, not matched with the first failing comparison and the value it
//! saw, refused by the loop guard, disabled). Workflows that no event triggered are listed
//! with their triggers; scheduled runs on the ticket are counted from its runs; SLA
//! policies are tested against the ticket as it is now.

use super::{describe_failure, event_scope, Engine, Error, Result};
use crate::run::{Event, EventKind};
use crate::store::RunFilter;
use crate::workflow::Trigger;
use serde_json::{json, Map, Value};

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
    pub async fn explain(&self, id: &str) -> Result<Value> {
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
                    seen.push(json!({
                        "event": e.id, "type": e.kind.as_str(), "at": e.at, "actor": e.actor,
                        "revision": ev.revision, "outcome": ev.outcome, "run": ev.run_id, "reason": ev.reason,
                        "checks": ev.checks,
                    }));
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
            workflows.push(json!({
                "workflow": record.id, "revision": record.revision, "enabled": record.enabled,
                "triggers": triggers, "summary": summary, "scheduled_runs": scheduled, "events": seen,
            }));
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
            policies.push(
                json!({"policy": policy.id, "applies": holds, "selected": selected, "why": why, "checks": checks}),
            );
        }
        let waiting: Vec<Value> = runs
            .iter()
            .filter(|r| r.status == crate::run::RunStatus::Waiting)
            .map(|r| json!({"run": r.id, "workflow": r.workflow_id, "step": r.waiting.as_ref().map(|w| &w.step), "until": r.waiting.as_ref().and_then(|w| w.deadline)}))
            .collect();
        Ok(json!({
            "ticket": id,
            "workflows": workflows,
            "sla_policies": policies,
            "sla": self.sla_report(id).await?,
            "waiting_runs": waiting,
            "trees": self.ticket_trees(&events),
        }))
    }
}
