//! Admin operations: publishing workflows (each change a new revision), switching them
//! on and off, and keeping agents and groups (every one audited); the inventory of
//! counts `/metrics` reports.

use super::{invalid, Engine, Error, Result};
use crate::store::{Tx, Write};
use crate::team::{Agent, Group};
use crate::workflow::{Workflow, WorkflowRecord};
use serde_json::{json, Value};
use std::sync::Arc;

impl Engine {
    /// Stores a validated definition as a new revision (or returns the current record
    /// unchanged when the definition is identical).
    pub async fn put_workflow(&self, mut def: Workflow, actor: &str) -> Result<(WorkflowRecord, bool)> {
        def.schema = None;
        let now = self.now();
        if self.config.on_cycle == crate::config::OnCycle::Refuse {
            let cycles = self.cycles(&def).await?;
            if let Some(c) = cycles.first() {
                return Err(invalid(
                    "/triggers",
                    format!("publishing would close a cycle: {} (config on_cycle = \"refuse\")", c.join(" -> ")),
                ));
            }
        }
        let current = self.store.workflow(&def.id).await?;
        if let Some(cur) = &current {
            if cur.definition == def {
                return Ok((cur.clone(), false));
            }
        }
        let revision = current.as_ref().map_or(1, |c| c.revision + 1);
        let record = WorkflowRecord {
            id: def.id.clone(),
            revision,
            enabled: def.enabled,
            definition: def.clone(),
            updated_at: now,
            updated_by: actor.to_string(),
        };
        let mut tx = Tx::new();
        if let Some(w) = self.schedule_timer(&record).await? {
            tx.push(w);
        }
        tx.push(Write::WorkflowRevision { revision, definition: Box::new(def) })
            .push(Write::Workflow(Box::new(record.clone())))
            .push(Write::Audit(crate::run::AuditEntry {
                at: now,
                actor: actor.into(),
                action: "workflow.publish".into(),
                target: record.id.clone(),
                detail: json!({"revision": revision}),
            }));
        self.store.commit(tx).await?;
        self.forget_workflows().await;
        self.wake_timers();
        Ok((record, true))
    }

    /// The cycles `def` would close among the current workflows (see
    /// [`crate::workflow::analysis::cycles`]).
    pub async fn cycles(&self, def: &Workflow) -> Result<Vec<Vec<String>>> {
        let current = self.current_workflows().await?;
        let mut all: Vec<&Workflow> =
            current.iter().filter(|r| r.id != def.id && r.enabled).map(|r| &r.definition).collect();
        all.push(def);
        Ok(crate::workflow::analysis::cycles(&all, &def.id))
    }

    /// Saves a draft: validated like a publish, stored beside the published workflow,
    /// not active. Dry-run and replay can use it; `publish_draft` makes it a revision.
    pub async fn put_draft(&self, mut def: Workflow, actor: &str) -> Result<Workflow> {
        def.schema = None;
        let mut tx = Tx::new();
        tx.doc(crate::store::DocKind::Draft, &def.id.clone(), &def).push(Write::Audit(crate::run::AuditEntry {
            at: self.now(),
            actor: actor.into(),
            action: "workflow.draft".into(),
            target: def.id.clone(),
            detail: Value::Null,
        }));
        self.store.commit(tx).await?;
        Ok(def)
    }

    /// A workflow's draft.
    pub async fn draft(&self, id: &str) -> Result<Workflow> {
        crate::store::get_doc::<Workflow>(&*self.store, crate::store::DocKind::Draft, id)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "draft", id: id.into() })
    }

    /// Publishes the draft as a new revision and removes it.
    pub async fn publish_draft(&self, id: &str, actor: &str) -> Result<(WorkflowRecord, bool)> {
        let def = self.draft(id).await?;
        let published = self.put_workflow(def, actor).await?;
        let mut tx = Tx::new();
        tx.push(Write::Doc { kind: crate::store::DocKind::Draft, id: id.into(), value: None });
        self.store.commit(tx).await?;
        Ok(published)
    }

    /// Publishes revision `revision` of a workflow again, as a new revision.
    pub async fn rollback(&self, id: &str, revision: u32, actor: &str) -> Result<(WorkflowRecord, bool)> {
        let def = self
            .store
            .workflow_revision(id, revision)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "workflow revision", id: format!("{id}@{revision}") })?;
        let (record, changed) = self.put_workflow(def, actor).await?;
        let mut tx = Tx::new();
        tx.push(Write::Audit(crate::run::AuditEntry {
            at: self.now(),
            actor: actor.into(),
            action: "workflow.rollback".into(),
            target: id.into(),
            detail: json!({"to_revision": revision, "new_revision": record.revision}),
        }));
        self.store.commit(tx).await?;
        Ok((record, changed))
    }

    /// The semantic differences between two revisions (JSON pointers).
    pub async fn diff(&self, id: &str, from: u32, to: u32) -> Result<Vec<crate::workflow::analysis::Change>> {
        let get = |rev: u32| async move {
            let def = self
                .store
                .workflow_revision(id, rev)
                .await?
                .ok_or_else(|| Error::NotFound { kind: "workflow revision", id: format!("{id}@{rev}") })?;
            Ok::<_, Error>(serde_json::to_value(def).unwrap_or(Value::Null))
        };
        Ok(crate::workflow::analysis::diff(&get(from).await?, &get(to).await?))
    }

    /// Enables or disables a workflow without a new revision.
    pub async fn set_enabled(&self, id: &str, enabled: bool, actor: &str) -> Result<WorkflowRecord> {
        let mut record =
            self.store.workflow(id).await?.ok_or_else(|| Error::NotFound { kind: "workflow", id: id.into() })?;
        record.enabled = enabled;
        record.updated_at = self.now();
        record.updated_by = actor.into();
        let mut tx = Tx::new();
        if let Some(w) = self.schedule_timer(&record).await? {
            tx.push(w);
        }
        tx.push(Write::Workflow(Box::new(record.clone()))).push(Write::Audit(crate::run::AuditEntry {
            at: record.updated_at,
            actor: actor.into(),
            action: if enabled { "workflow.enable" } else { "workflow.disable" }.into(),
            target: id.into(),
            detail: Value::Null,
        }));
        self.store.commit(tx).await?;
        self.forget_workflows().await;
        self.wake_timers();
        Ok(record)
    }

    /// Creates or replaces an agent.
    pub async fn put_agent(&self, agent: Agent, actor: &str) -> Result<Agent> {
        if !crate::team::valid_id(&agent.id) {
            return Err(invalid("/id", "id must be 1-64 characters of letters, digits, `.`, `_` or `-`"));
        }
        for (i, g) in agent.groups.iter().enumerate() {
            if self.store.group(g).await?.is_none() {
                return Err(invalid(&format!("/groups/{i}"), format!("unknown group `{g}`")));
            }
        }
        let mut tx = Tx::new();
        tx.push(Write::Agent(agent.clone())).push(Write::Audit(crate::run::AuditEntry {
            at: self.now(),
            actor: actor.into(),
            action: "agent.put".into(),
            target: agent.id.clone(),
            detail: Value::Null,
        }));
        self.store.commit(tx).await?;
        Ok(agent)
    }

    /// Creates or replaces a group.
    pub async fn put_group(&self, group: Group, actor: &str) -> Result<Group> {
        if !crate::team::valid_id(&group.id) {
            return Err(invalid("/id", "id must be 1-64 characters of letters, digits, `.`, `_` or `-`"));
        }
        let mut tx = Tx::new();
        tx.push(Write::Group(group.clone())).push(Write::Audit(crate::run::AuditEntry {
            at: self.now(),
            actor: actor.into(),
            action: "group.put".into(),
            target: group.id.clone(),
            detail: Value::Null,
        }));
        self.store.commit(tx).await?;
        Ok(group)
    }
}

impl Engine {
    /// Starts a failed run again from the step that failed, on the workflow's current
    /// revision (after a fix), with the failed run's variables. Both traces link the
    /// other.
    pub async fn retry_run(self: &std::sync::Arc<Self>, id: &str, actor: &str) -> Result<crate::run::Run> {
        use crate::run::{RunStatus, TraceEntry};
        let _guard;
        let mut old = self.store.run(id).await?.ok_or_else(|| Error::NotFound { kind: "run", id: id.into() })?;
        if !old.ticket_id.is_empty() {
            _guard = self.locks.lock(&old.ticket_id).await;
            old = self.store.run(id).await?.ok_or_else(|| Error::NotFound { kind: "run", id: id.into() })?;
        }
        if old.status != RunStatus::Failed {
            return Err(Error::Conflict(format!("run {id} is {:?}, not failed", old.status).to_lowercase()));
        }
        let step = old
            .trace
            .iter()
            .rev()
            .find(|e| e.outcome == "failed" && e.step.is_some())
            .and_then(|e| e.step.clone())
            .ok_or_else(|| Error::Conflict(format!("run {id} did not fail at a step")))?;
        let record = self
            .store
            .workflow(&old.workflow_id)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "workflow", id: old.workflow_id.clone() })?;
        if record.definition.step_index(&step).is_none() {
            return Err(Error::Conflict(format!(
                "step `{step}` no longer exists in revision {} of `{}`",
                record.revision, record.id
            )));
        }
        let now = self.now();
        let new_id = self.store.next_run_id().await?;
        let mut run = old.clone();
        run.id = new_id.clone();
        run.workflow_revision = record.revision;
        run.status = RunStatus::Pending;
        run.cursor = Some(step.clone());
        run.error = None;
        run.finished_at = None;
        run.waiting = None;
        run.created_at = now;
        run.updated_at = now;
        run.steps_done = 0;
        run.trace = vec![TraceEntry {
            detail: json!({"retry_of": id, "from_revision": old.workflow_revision}),
            ..TraceEntry::new(
                now,
                "retry",
                "started",
                format!("retry of {id} from step `{step}` on revision {} by {actor}", record.revision),
            )
        }];
        old.trace.push(TraceEntry {
            detail: json!({"retried_as": new_id}),
            ..TraceEntry::new(now, "retry", "retried", format!("retried as {new_id} by {actor}"))
        });
        let mut tx = Tx::new();
        tx.run(&mut old).run(&mut run).push(Write::Audit(crate::run::AuditEntry {
            at: now,
            actor: actor.into(),
            action: "run.retry".into(),
            target: id.into(),
            detail: json!({"new_run": new_id, "step": step}),
        }));
        self.store.commit(tx).await?;
        self.metrics.run(&run.workflow_id, "started");
        self.after_commit(std::slice::from_ref(&new_id));
        Ok(run)
    }
}

impl Engine {
    /// Deletes a plugin (`version` None) or one kept version, refusing while a run that
    /// will call the plugin's current version is pending, running or waiting (runs
    /// always call the current version, so deleting an older one needs no check).
    pub async fn delete_plugin(
        &self,
        id: &str,
        version: Option<&str>,
        actor: &str,
    ) -> std::result::Result<Option<crate::plugin::manifest::PluginRecord>, crate::plugin::PluginError> {
        use crate::plugin::PluginError;
        use crate::run::RunStatus;
        use crate::store::RunFilter;
        let storage = |e: super::Error| PluginError::new("storage", e.to_string());
        let record = self.plugins.installed(id).await?;
        if version.is_none_or(|v| v == record.version) {
            let mut users = Vec::new();
            for wf in self.store.workflows().await.map_err(|e| storage(e.into()))? {
                for status in [RunStatus::Pending, RunStatus::Running, RunStatus::Waiting] {
                    let filter = RunFilter {
                        workflow: Some(wf.id.clone()),
                        status: Some(status),
                        limit: Some(1000),
                        ..Default::default()
                    };
                    for run in self.store.runs(&filter).await.map_err(|e| storage(e.into()))? {
                        let def = self.definition(&run.workflow_id, run.workflow_revision).await.map_err(storage)?;
                        let calls = def.steps.iter().any(
                            |s| matches!(&s.action, crate::workflow::Action::Plugin { plugin, .. } if plugin == id),
                        );
                        if calls {
                            users.push(run.id);
                        }
                    }
                }
            }
            if !users.is_empty() {
                let shown: Vec<&str> = users.iter().take(5).map(String::as_str).collect();
                return Err(PluginError::new(
                    "in_use",
                    format!(
                        "plugin `{id}` {} is still needed by {} run(s) that are pending, running or waiting ({}); let them finish first",
                        record.version,
                        users.len(),
                        shown.join(", ")
                    ),
                ));
            }
        }
        self.plugins.delete(id, version, actor).await
    }
}

/// Counts for `/metrics` that need a pass over the store (until indexes count them).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Tickets by (status, group); `(none)` for no group.
    pub tickets: std::collections::BTreeMap<(String, String), u64>,
    /// Runs parked at a wait or an approval.
    pub waiting_runs: u64,
    /// Approvals not yet decided.
    pub pending_approvals: u64,
    /// Dead letters.
    pub dead_letters: u64,
}

/// How long a computed [`Inventory`] is served before it is counted again: a scrape
/// every few seconds costs one pass over the store per interval, not per scrape.
const INVENTORY_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl Engine {
    /// Ticket, run, approval and dead-letter counts, at most [`INVENTORY_TTL`] old.
    /// Scans the store: call it from a blocking task.
    pub async fn inventory(&self) -> Result<Arc<Inventory>> {
        if let Some((at, inv)) = self.inventory.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if at.elapsed() < INVENTORY_TTL {
                return Ok(inv.clone());
            }
        }
        let mut inv = Inventory::default();
        // Counted a page at a time: a large desk is never held in memory whole.
        super::schedule::each_ticket_page(self, crate::store::TicketFilter::default(), |page| {
            for t in page {
                let key = (t.status.as_str().to_string(), t.group.unwrap_or_else(|| "(none)".into()));
                *inv.tickets.entry(key).or_default() += 1;
            }
        })
        .await?;
        inv.waiting_runs = self.store.count_waiting_runs().await?;
        let approvals: Vec<crate::approval::Approval> =
            crate::store::list_docs(self.store.as_ref(), crate::store::DocKind::Approval, None, usize::MAX).await?;
        inv.pending_approvals =
            approvals.iter().filter(|a| a.status == crate::approval::Status::Pending).count() as u64;
        inv.dead_letters = self.store.docs(crate::store::DocKind::DeadLetter, None, usize::MAX).await?.len() as u64;
        let inv = Arc::new(inv);
        *self.inventory.lock().unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), inv.clone()));
        Ok(inv)
    }
}
