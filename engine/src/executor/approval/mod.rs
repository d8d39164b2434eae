//! `approval` steps: starting stages, taking decisions, delegation, expiry.
//!
//! The approval is a document in the store; its run waits (status `waiting`, no task).
//! Every change happens under the ticket's lock and commits together with its effects:
//! the decision, the internal note on the ticket (so it is in the ticket's history), the
//! run's trace entry, the next stage's due timer, and — when the approval closes — the
//! run's resumption at `next` or `on_reject`.

mod links;

use super::{invalid, Engine, Error, Result};
use crate::approval::{
    self, Approval, ApproverSource, Channel, Decision, ExpiryOutcome, OnExpiry, Refusal, Stage, StageSpec, Status,
};
use crate::calendar::Calendar;
use crate::run::{machine, EventKind, Run, RunStatus, TraceEntry};
use crate::store::{get_doc, DocKind, Timer, TimerKind, Tx, Write};
use crate::team::Agent;
use crate::ticket::{fields, Comment, Ticket};
use crate::workflow::{Action, Workflow};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

fn refused(r: Refusal) -> Error {
    if r.is_forbidden() {
        Error::Forbidden(r.to_string())
    } else {
        Error::Conflict(r.to_string())
    }
}

/// The timer key of an approval's current stage.
fn due_key(approval: &str) -> String {
    format!("approval:{approval}")
}

/// The timer key of an approval's reminder.
fn remind_key(approval: &str) -> String {
    format!("approval-remind:{approval}")
}

/// Names found in a JSON value: a string, or strings in an array.
fn names(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => vec![s.trim().to_string()],
        Value::Array(items) => items.iter().flat_map(names).collect(),
        _ => Vec::new(),
    }
}

/// What starting a stage reads from the store, loaded first: the groups its approvers
/// come from (those that exist), the agents (members, and who stands in for whom), and
/// the calendar its business-time due dates count on (the ticket's SLA policy's).
pub(super) struct StageContext {
    groups: HashSet<String>,
    agents: Vec<Agent>,
    calendar: Calendar,
}

impl Engine {
    /// Loads what starting any of `specs` reads.
    pub(super) async fn stage_context(&self, specs: &[StageSpec], ticket: &Ticket) -> Result<StageContext> {
        let mut groups = HashSet::new();
        for spec in specs {
            for source in &spec.approvers {
                if let ApproverSource::Group { group } = source {
                    if self.store.group(group).await?.is_some() {
                        groups.insert(group.clone());
                    }
                }
            }
        }
        let calendar = if specs.iter().any(|s| s.business) {
            let setup = self.sla().await?;
            self.store
                .ticket_sla(&ticket.id)
                .await?
                .and_then(|s| setup.policy_calendar(&s.policy))
                .unwrap_or_else(Calendar::always)
        } else {
            Calendar::always()
        };
        Ok(StageContext { groups, agents: self.store.agents().await?, calendar })
    }
}

/// Resolves a stage's approvers: `(approver, acting, why someone else acts)`.
fn resolve_approvers(
    spec: &StageSpec,
    ticket: &Ticket,
    run: &Run,
    now: DateTime<Utc>,
    cx: &StageContext,
) -> std::result::Result<Vec<(String, String, Option<String>)>, String> {
    let mut ids: Vec<String> = Vec::new();
    for source in &spec.approvers {
        let found = match source {
            ApproverSource::User { user } => vec![user.clone()],
            ApproverSource::Group { group } => {
                if !cx.groups.contains(group) {
                    return Err(format!("group `{group}` does not exist"));
                }
                cx.agents.iter().filter(|a| a.groups.contains(group)).map(|a| a.id.clone()).collect()
            }
            ApproverSource::Field { field } => names(&fields::get(ticket, field).unwrap_or(Value::Null)),
            ApproverSource::Var { var } => {
                let path = format!("vars.{var}");
                let scope = super::steps::scope(run, ticket, now);
                names(&crate::workflow::condition::resolve(&scope, &path))
            }
        };
        for id in found {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    if ids.is_empty() {
        return Err(format!("stage `{}` has no approvers (its sources named nobody)", spec.name));
    }
    Ok(ids
        .into_iter()
        .map(|id| match cx.agents.iter().find(|a| a.id == id).and_then(|a| a.delegate_at(now)) {
            Some(ooo) => {
                let why = format!("{id} is out of office until {}", ooo.until.to_rfc3339());
                (id.clone(), ooo.delegate.clone(), Some(why))
            }
            None => (id.clone(), id, None),
        })
        .collect())
}

/// Starts stage `index` from `spec`: resolves approvers, sets the due time and its timer.
/// Pure: what it reads was loaded into `cx`.
#[allow(clippy::too_many_arguments)]
pub(super) fn start_stage(
    approval: &mut Approval,
    spec: &StageSpec,
    index: usize,
    ticket: &Ticket,
    run: &Run,
    tx: &mut Tx,
    now: DateTime<Utc>,
    cx: &StageContext,
) -> std::result::Result<(), String> {
    let due_after = |minutes: Option<u32>| {
        let duration = chrono::Duration::minutes(minutes?.into());
        if spec.business {
            cx.calendar.add(now, duration)
        } else {
            Some(now + duration)
        }
    };
    let mut stage = Stage::new(spec, resolve_approvers(spec, ticket, run, now, cx)?);
    stage.status = Status::Pending;
    stage.started_at = Some(now);
    stage.due = due_after(spec.due_minutes);
    if let Some(due) = stage.due {
        let kind = TimerKind::ApprovalDue { approval: approval.id.clone(), stage: index };
        tx.push(Write::Timer(Timer { key: due_key(&approval.id), due, kind }));
    }
    match due_after(spec.remind_minutes) {
        Some(due) if !stage.escalated => {
            let kind = TimerKind::ApprovalRemind { approval: approval.id.clone(), stage: index };
            tx.push(Write::Timer(Timer { key: remind_key(&approval.id), due, kind }));
        }
        _ => {
            tx.push(Write::CancelTimer(remind_key(&approval.id)));
        }
    }
    if index < approval.stages.len() {
        approval.stages[index] = stage;
    } else {
        approval.stages.push(stage);
    }
    approval.current = index;
    Ok(())
}

/// The `approval` step: creates approval `id` and its first stage. Returns the writes
/// and the approval (for the trace), or why it could not start. Pure.
pub(super) fn begin_approval(
    id: String,
    run: &Run,
    step: &str,
    specs: &[StageSpec],
    ticket: &Ticket,
    now: DateTime<Utc>,
    cx: &StageContext,
) -> std::result::Result<(Tx, Approval), String> {
    let mut approval = Approval {
        id,
        run_id: run.id.clone(),
        ticket_id: ticket.id.clone(),
        workflow_id: run.workflow_id.clone(),
        step: step.to_string(),
        stages: Vec::new(),
        current: 0,
        status: Status::Pending,
        created_at: now,
        closed_at: None,
    };
    let mut tx = Tx::new();
    start_stage(&mut approval, &specs[0], 0, ticket, run, &mut tx, now, cx)?;
    // Later stages are listed (waiting) so the record shows the whole chain.
    for spec in &specs[1..] {
        approval.stages.push(Stage::new(spec, Vec::new()));
    }
    put_approval(&mut tx, None, &approval);
    Ok((tx, approval))
}

/// One entry of the "pending for" index ([`DocKind::Pending`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingEntry {
    acting: String,
    approval: String,
}

/// Who may decide `a` now (undecided slots of its current stage), none once it is closed.
fn deciders(a: &Approval) -> std::collections::BTreeSet<&str> {
    match a.status {
        Status::Pending => a.stage().slots.iter().filter(|s| s.decision.is_none()).map(|s| s.acting.as_str()).collect(),
        _ => Default::default(),
    }
}

/// Adds an approval's write to `tx`, with the index entries of who may decide it now
/// (those of `before`, the stored approval, that no longer hold are removed).
fn put_approval(tx: &mut Tx, before: Option<&Approval>, after: &Approval) {
    let (was, is) = (before.map(deciders).unwrap_or_default(), deciders(after));
    for gone in was.difference(&is) {
        tx.push(Write::Doc { kind: DocKind::Pending, id: format!("{gone}/{}", after.id), value: None });
    }
    for new in is.difference(&was) {
        let entry = PendingEntry { acting: (*new).to_string(), approval: after.id.clone() };
        tx.doc(DocKind::Pending, &format!("{new}/{}", after.id), &entry);
    }
    tx.doc(DocKind::Approval, &after.id, after);
}

impl Engine {
    /// An approval by id.
    pub async fn approval(&self, id: &str) -> Result<Approval> {
        get_doc::<Approval>(&*self.store, DocKind::Approval, id)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "approval", id: id.into() })
    }

    /// An approval read under its ticket's lock, held while the guard lives (every change
    /// to an approval happens under it, with the ticket note and run it commits with).
    async fn locked_approval(&self, id: &str) -> Result<(tokio::sync::MutexGuard<'_, ()>, Approval)> {
        let ticket = self.approval(id).await?.ticket_id;
        let guard = self.locks.lock(&ticket).await;
        Ok((guard, self.approval(id).await?))
    }

    /// Approvals, optionally only pending ones where `acting` may decide.
    pub async fn approvals(&self, pending_for: Option<&str>, limit: usize) -> Result<Vec<Approval>> {
        let Some(who) = pending_for else {
            return Ok(crate::store::list_docs(&*self.store, DocKind::Approval, None, limit).await?);
        };
        // The index's entries of `who`, in approval-id order (ids sort as text).
        let mut out = Vec::new();
        let mut after = format!("{who}/");
        'pages: loop {
            let page: Vec<PendingEntry> =
                crate::store::list_docs(&*self.store, DocKind::Pending, Some(&after), 100).await?;
            let full = page.len() == 100;
            for entry in page {
                if entry.acting != who || out.len() >= limit {
                    break 'pages;
                }
                after = format!("{who}/{}", entry.approval);
                let approval = get_doc::<Approval>(&*self.store, DocKind::Approval, &entry.approval).await?;
                out.extend(approval.filter(|a| deciders(a).contains(who)));
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Builds the "pending for" index of approvals stored before it existed (once; a
    /// marker document says it is done).
    pub async fn index_pending_approvals(&self) -> Result<()> {
        const MARKER: &str = "index/pending-approvals";
        if self.store.doc(DocKind::Seeded, MARKER).await?.is_some() {
            return Ok(());
        }
        let mut after: Option<String> = None;
        loop {
            let page: Vec<Approval> =
                crate::store::list_docs(&*self.store, DocKind::Approval, after.as_deref(), 500).await?;
            let Some(last) = page.last().map(|a| a.id.clone()) else { break };
            let mut tx = Tx::new();
            for a in page.iter().filter(|a| a.status == Status::Pending) {
                put_approval(&mut tx, None, a);
            }
            self.store.commit(tx).await?;
            after = Some(last);
        }
        let mut tx = Tx::new();
        tx.doc(DocKind::Seeded, MARKER, &json!({"done": true}));
        self.store.commit(tx).await?;
        Ok(())
    }

    async fn approval_step(
        &self,
        approval: &Approval,
        run: &Run,
    ) -> Result<(Arc<Workflow>, Vec<StageSpec>, Option<String>)> {
        let def = self.definition(&run.workflow_id, run.workflow_revision).await?;
        let index = def.step_index(&approval.step).ok_or_else(|| invalid("/step", "approval step no longer exists"))?;
        match &def.steps[index].action {
            Action::Approval { stages, on_reject, .. } => {
                let (stages, on_reject) = (stages.clone(), on_reject.clone());
                Ok((def, stages, on_reject))
            }
            _ => Err(invalid("/step", "step is not an approval")),
        }
    }

    /// Records a decision by `who` (API or link) and moves the approval on.
    ///
    /// `link_stage` is the stage a signed link was issued for; a link for an earlier
    /// stage is refused.
    pub async fn decide(
        self: &Arc<Self>,
        id: &str,
        who: &str,
        approve: bool,
        comment: &str,
        via: Channel,
        link_stage: Option<usize>,
    ) -> Result<Approval> {
        let (_guard, mut approval) = self.locked_approval(id).await?;
        if link_stage.is_some_and(|s| s != approval.current) && approval.status == Status::Pending {
            return Err(refused(Refusal::BadLink("link is for another stage".into())));
        }
        let slot = approval.slot_for(who).map_err(refused)?;
        let now = self.now();
        let stage = approval.current;
        let entry = &mut approval.stages[stage].slots[slot];
        entry.decision = Some(Decision { approve, by: who.to_string(), at: now, comment: comment.to_string(), via });
        let on_behalf = (entry.approver != who).then(|| format!(" for {}", entry.approver));
        let verb = if approve { "Approved" } else { "Rejected" };
        let via_name = if via == Channel::Link { "signed link" } else { "API" };
        let note = format!(
            "{verb} by {who}{} ({}, stage {}: {}){}",
            on_behalf.unwrap_or_default(),
            via_name,
            stage + 1,
            approval.stages[stage].name,
            if comment.is_empty() { String::new() } else { format!(": {comment}") }
        );
        self.advance(approval, who, note, now).await
    }

    /// Hands `who`'s slot in the current stage to `to`.
    pub async fn delegate(self: &Arc<Self>, id: &str, who: &str, to: &str, comment: &str) -> Result<Approval> {
        let (_guard, mut approval) = self.locked_approval(id).await?;
        if to.trim().is_empty() || to == who {
            return Err(invalid("/to", "delegate to someone else"));
        }
        let slot = approval.slot_for(who).map_err(refused)?;
        let now = self.now();
        let stage = approval.current;
        let s = &mut approval.stages[stage].slots[slot];
        s.acting = to.to_string();
        s.delegation =
            Some(format!("delegated by {who}{}", if comment.is_empty() { "".into() } else { format!(": {comment}") }));
        let note =
            format!("{who} delegated their approval (stage {}: {}) to {to}", stage + 1, approval.stages[stage].name);
        self.advance(approval, who, note, now).await
    }

    /// A stage's due time passed: apply its `on_expiry`.
    pub(super) async fn fire_approval_due(self: &Arc<Self>, timer: &Timer, id: &str, stage: usize) -> Result<()> {
        let (_guard, mut approval) = match self.locked_approval(id).await {
            Ok(found) => found,
            Err(Error::NotFound { .. }) => return self.drop_timer(timer).await,
            Err(e) => return Err(e),
        };
        if approval.status != Status::Pending || approval.current != stage {
            return self.drop_timer(timer).await;
        }
        let now = self.now();
        let Some(run) = self.store.run(&approval.run_id).await? else { return Ok(()) };
        let (_, specs, _) = self.approval_step(&approval, &run).await?;
        let spec = &specs[stage];
        let name = approval.stages[stage].name.clone();
        let action =
            if approval.stages[stage].escalated { &OnExpiry::Outcome(ExpiryOutcome::Reject) } else { &spec.on_expiry };
        let note = match action {
            OnExpiry::Escalate { escalate_to } => {
                let mut tx = Tx::new();
                let ticket = self.store.ticket(&approval.ticket_id).await?.unwrap_or_else(|| Ticket::placeholder(now));
                let escalated = StageSpec {
                    approvers: vec![ApproverSource::User { user: escalate_to.clone() }],
                    policy: approval::Policy::Any,
                    quorum: None,
                    ..spec.clone()
                };
                // The escalation target replaces the stage's approvers (the trace and the
                // ticket's notes keep who was asked before), with a fresh due time.
                let cx = self.stage_context(std::slice::from_ref(&escalated), &ticket).await?;
                if let Err(why) = start_stage(&mut approval, &escalated, stage, &ticket, &run, &mut tx, now, &cx) {
                    tracing::warn!(approval = %id, %why, "escalation failed; rejecting");
                    approval.stages[stage].status = Status::Rejected;
                    let note = format!("Approval stage {} ({name}) was due; escalation failed: {why}", stage + 1);
                    return self.advance(approval, "expiry", note, now).await.map(|_| ());
                }
                approval.stages[stage].escalated = true;
                let note = format!("Approval stage {} ({name}) was due; escalated to {escalate_to}", stage + 1);
                return self.commit_progress(approval, "expiry", note, now, tx, true).await.map(|_| ());
            }
            OnExpiry::Outcome(outcome) => {
                let approve = *outcome == ExpiryOutcome::Approve;
                approval.stages[stage].status = if approve { Status::Approved } else { Status::Rejected };
                format!(
                    "Approval stage {} ({name}) was due with no outcome; {} by its expiry rule",
                    stage + 1,
                    if approve { "approved" } else { "rejected" }
                )
            }
        };
        self.advance(approval, "expiry", note, now).await.map(|_| ())
    }

    /// Reminds the current stage's undecided approvers (once per stage).
    pub(super) async fn fire_approval_reminder(self: &Arc<Self>, timer: &Timer, id: &str, stage: usize) -> Result<()> {
        let (_guard, approval) = match self.locked_approval(id).await {
            Ok(found) => found,
            Err(Error::NotFound { .. }) => return self.drop_timer(timer).await,
            Err(e) => return Err(e),
        };
        if approval.status != Status::Pending || approval.current != stage {
            return self.drop_timer(timer).await;
        }
        // The reminder's timer goes with the note it leaves.
        let mut tx = Tx::new();
        tx.push(Write::CancelTimer(timer.key.clone()));
        let waiting: Vec<&str> =
            approval.stage().slots.iter().filter(|s| s.decision.is_none()).map(|s| s.acting.as_str()).collect();
        let note = format!(
            "Reminder: approval stage {} ({}) is waiting for {}",
            stage + 1,
            approval.stage().name,
            waiting.join(", ")
        );
        let now = self.now();
        let url = match self.store.run(&approval.run_id).await? {
            Some(run) => {
                let def = self.definition(&run.workflow_id, run.workflow_revision).await?;
                match def.step_index(&approval.step).map(|i| &def.steps[i].action) {
                    Some(Action::Approval { notify_url: Some(url), .. }) => Some(url.clone()),
                    _ => None,
                }
            }
            None => None,
        };
        let approval = self.commit_progress(approval, "reminder", note, now, tx, false).await?;
        if let Some(url) = url {
            self.spawn_approval_request(approval.id.clone(), url, true);
        }
        Ok(())
    }

    /// After a change: decides the stage if its decisions determine it, starts the next
    /// stage or closes the approval, and commits with the note and the run's trace.
    async fn advance(
        self: &Arc<Self>,
        mut approval: Approval,
        actor: &str,
        note: String,
        now: DateTime<Utc>,
    ) -> Result<Approval> {
        let mut tx = Tx::new();
        let stage = approval.current;
        let mut started = false;
        let outcome = match approval.stages[stage].status {
            Status::Approved => Some(true),
            Status::Rejected => Some(false),
            _ => approval.stages[stage].outcome(),
        };
        if let Some(approved) = outcome {
            approval.stages[stage].status = if approved { Status::Approved } else { Status::Rejected };
            tx.push(Write::CancelTimer(due_key(&approval.id)));
            tx.push(Write::CancelTimer(remind_key(&approval.id)));
            let run = self.store.run(&approval.run_id).await?;
            let more = approved && stage + 1 < approval.stages.len();
            if more {
                if let Some(run) = &run {
                    let (_, specs, _) = self.approval_step(&approval, run).await?;
                    let ticket =
                        self.store.ticket(&approval.ticket_id).await?.unwrap_or_else(|| Ticket::placeholder(now));
                    let spec = &specs[stage + 1];
                    let cx = self.stage_context(std::slice::from_ref(spec), &ticket).await?;
                    if let Err(why) = start_stage(&mut approval, spec, stage + 1, &ticket, run, &mut tx, now, &cx) {
                        approval.status = Status::Rejected;
                        approval.closed_at = Some(now);
                        tracing::warn!(approval = %approval.id, %why, "next stage could not start; rejected");
                    } else {
                        started = true;
                    }
                }
            } else {
                approval.status = if approved { Status::Approved } else { Status::Rejected };
                approval.closed_at = Some(now);
            }
        }
        self.commit_progress(approval, actor, note, now, tx, started).await
    }

    /// Commits an approval change: the document, an internal note on the ticket, the
    /// run's trace entry, and the run's resumption when the approval closed.
    /// `started_stage`: a stage (the next, or an escalated one) started in this change.
    async fn commit_progress(
        self: &Arc<Self>,
        approval: Approval,
        actor: &str,
        note: String,
        now: DateTime<Utc>,
        mut tx: Tx,
        started_stage: bool,
    ) -> Result<Approval> {
        let mut resume = None;
        let mut request = None;
        if let Some(mut run) = self.store.run(&approval.run_id).await? {
            let started_next = started_stage && approval.status == Status::Pending;
            run.trace.push(TraceEntry {
                detail: json!({"approval": approval.id, "stage": approval.current, "status": approval::status_name(approval.status)}),
                ..TraceEntry::step(now, &approval.step, "approval", "progress", note.clone())
            });
            if started_next {
                let s = approval.stage();
                let who: Vec<&str> = s.slots.iter().map(|s| s.acting.as_str()).collect();
                run.trace.push(TraceEntry::step(
                    now,
                    &approval.step,
                    "approval",
                    "requested",
                    format!("stage {} ({}) asked {}", approval.current + 1, s.name, who.join(", ")),
                ));
                let def = self.definition(&run.workflow_id, run.workflow_revision).await?;
                if let Some(Action::Approval { notify_url: Some(url), .. }) =
                    def.step_index(&approval.step).map(|i| &def.steps[i].action)
                {
                    request = Some(url.clone());
                }
            }
            if approval.status != Status::Pending && run.status == RunStatus::Waiting {
                let (def, _, on_reject) = self.approval_step(&approval, &run).await?;
                let index = def.step_index(&approval.step).unwrap_or_default();
                let approved = approval.status == Status::Approved;
                // Approved: the next step; rejected: `on_reject`, else the run ends.
                let next = if approved {
                    def.following(index)
                } else {
                    machine::target(Some(on_reject.as_deref().unwrap_or(crate::workflow::END)), None)
                };
                run.set_var(&approval.step, summary(&approval));
                let outcome = approval::status_name(approval.status);
                let entry = TraceEntry::step(
                    now,
                    &approval.step,
                    "approval",
                    outcome,
                    format!("approval {} {outcome}; went to {}", approval.id, next.as_deref().unwrap_or("end")),
                );
                let ended = machine::resume(&mut run, entry, next, now);
                self.count_end(&run, &ended);
                resume = run.status.is_active().then(|| run.id.clone());
            }
            run.updated_at = now;
            tx.run(&mut run);
        }
        let mut started = Vec::new();
        if let Some(ticket) = self.store.ticket(&approval.ticket_id).await? {
            let comment = Comment {
                id: ticket.comments.len() as u32 + 1,
                author: actor.to_string(),
                body: note,
                internal: true,
                at: now,
            };
            let mut after = ticket.clone();
            after.comments.push(comment.clone());
            after.updated_at = now;
            tx.ticket(Some(&ticket), &mut after);
            let (_, runs) = self
                .raise(&mut tx, &after, EventKind::CommentAdded, Vec::new(), Some(comment), actor, &[], None)
                .await?;
            started.extend(runs);
        }
        let stored = get_doc::<Approval>(&*self.store, DocKind::Approval, &approval.id).await?;
        put_approval(&mut tx, stored.as_ref(), &approval);
        tx.push(Write::Audit(crate::run::AuditEntry {
            at: now,
            actor: actor.to_string(),
            action: "approval.progress".into(),
            target: approval.id.clone(),
            detail: json!({"status": approval::status_name(approval.status), "stage": approval.current}),
        }));
        self.store.commit(tx).await?;
        started.extend(resume);
        self.after_commit(&started);
        if let Some(url) = request {
            self.spawn_approval_request(approval.id.clone(), url, false);
        }
        Ok(approval)
    }
}

/// What the run sees in `vars.<step id>` once the approval closed.
fn summary(a: &Approval) -> Value {
    json!({
        "approval": a.id,
        "outcome": approval::status_name(a.status),
        "stages": a.stages.iter().map(|s| json!({
            "name": s.name,
            "status": approval::status_name(s.status),
            "decisions": s.slots.iter().filter_map(|slot| slot.decision.as_ref().map(|d| json!({
                "approver": slot.approver, "by": d.by, "approve": d.approve, "comment": d.comment, "at": d.at,
            }))).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
