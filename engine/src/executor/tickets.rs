//! The ticket service: logging, changing, commenting and linking tickets, and starting
//! a manual workflow. Each operation validates, changes the ticket under its lock, raises
//! the event (which starts the workflows it triggers) and commits all of it as one
//! transaction.

use super::{invalid, Engine, Error, Outcome, Result, CHILDREN};
use crate::run::EventKind;
use crate::store::{self, Tx, Write};
use crate::ticket::{fields, FieldChange, NewTicket, Ticket};
use crate::workflow::Trigger;
use serde_json::{json, Map, Value};
use std::sync::Arc;

impl Engine {
    pub(super) async fn check_people(&self, group: Option<&str>, assignee: Option<&str>) -> Result<()> {
        let mut errors = Vec::new();
        if let Some(g) = group {
            if self.store.group(g).await?.is_none() {
                errors.push(("/group".to_string(), format!("unknown group `{g}`")));
            }
        }
        if let Some(a) = assignee {
            if self.store.agent(a).await?.is_none() {
                errors.push(("/assignee".to_string(), format!("unknown agent `{a}`")));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(errors))
        }
    }

    /// Logs a ticket and starts the workflows it triggers.
    pub async fn create_ticket(self: &Arc<Self>, new: NewTicket, actor: &str) -> Result<Outcome> {
        self.create_ticket_with(new, actor, |_| Vec::new()).await
    }

    /// [`Engine::create_ticket`], committing `extra(outcome)` in the same transaction
    /// (e.g. an inbound webhook's delivery record, for idempotency).
    pub async fn create_ticket_with(
        self: &Arc<Self>,
        new: NewTicket,
        actor: &str,
        extra: impl FnOnce(&Outcome) -> Vec<Write>,
    ) -> Result<Outcome> {
        new.check().map_err(|(p, m)| invalid(&p, m))?;
        self.check_people(new.group.as_deref(), new.assignee.as_deref()).await?;
        for (i, link) in new.links.iter().enumerate() {
            if self.store.ticket(&link.ticket).await?.is_none() {
                return Err(invalid(&format!("/links/{i}/ticket"), format!("unknown ticket `{}`", link.ticket)));
            }
        }
        let id = self.store.next_ticket_id().await?;
        let mut ticket = new.into_ticket(id, &self.config.priority_matrix, self.now());
        let mut tx = Tx::new();
        tx.ticket(None, &mut ticket);
        let event = self.raise(&mut tx, &ticket, EventKind::Created, Vec::new(), None, actor, &[], None).await?;
        let outcome = Outcome { ticket, event: Some(event.0), runs: event.1 };
        tx.writes.extend(extra(&outcome));
        self.store.commit(tx).await?;
        self.after_commit(&outcome.runs);
        Ok(outcome)
    }

    /// Applies a JSON object of field changes.
    pub async fn update_ticket(self: &Arc<Self>, id: &str, patch: &Map<String, Value>, actor: &str) -> Result<Outcome> {
        self.update_ticket_with(id, patch, actor, |_| Vec::new()).await
    }

    /// [`Engine::update_ticket`] only if the ticket is stored at one of `versions` (an
    /// HTTP `If-Match`): otherwise [`Error::Stale`] and nothing is written.
    pub async fn update_ticket_if(
        self: &Arc<Self>,
        id: &str,
        versions: &[u64],
        patch: &Map<String, Value>,
        actor: &str,
    ) -> Result<Outcome> {
        self.update_inner(id, Some(versions), patch, actor, |_| Vec::new()).await
    }

    /// [`Engine::update_ticket`], committing `extra(outcome)` in the same transaction.
    pub async fn update_ticket_with(
        self: &Arc<Self>,
        id: &str,
        patch: &Map<String, Value>,
        actor: &str,
        extra: impl FnOnce(&Outcome) -> Vec<Write>,
    ) -> Result<Outcome> {
        self.update_inner(id, None, patch, actor, extra).await
    }

    pub(super) async fn update_inner(
        self: &Arc<Self>,
        id: &str,
        versions: Option<&[u64]>,
        patch: &Map<String, Value>,
        actor: &str,
        extra: impl FnOnce(&Outcome) -> Vec<Write>,
    ) -> Result<Outcome> {
        let _guard = self.locks.lock(id).await;
        let before = self.store.ticket(id).await?.ok_or_else(|| Error::NotFound { kind: "ticket", id: id.into() })?;
        if let Some(versions) = versions.filter(|v| !v.contains(&before.version)) {
            let expected = versions.iter().map(u64::to_string).collect::<Vec<_>>().join(" or ");
            return Err(Error::Stale { kind: "ticket", id: id.into(), expected, current: before.version });
        }
        let mut after = fields::patch(&before, patch, &self.config.priority_matrix, self.now())
            .map_err(|errs| Error::Invalid(errs.into_iter().map(|(p, e)| (p, e.to_string())).collect()))?;
        let changes = fields::diff(&before, &after);
        if changes.is_empty() {
            let outcome = Outcome { ticket: before, event: None, runs: Vec::new() };
            let writes = extra(&outcome);
            if !writes.is_empty() {
                let mut tx = Tx::new();
                tx.writes.extend(writes);
                self.store.commit(tx).await?;
            }
            return Ok(outcome);
        }
        let changed = |f: &str| changes.iter().any(|c| c.field == f);
        if changed("status") && !after.status.is_open() {
            let open = self.open_children(&after).await?;
            if !open.is_empty() {
                return Err(Error::Conflict(format!(
                    "{id} has open child tickets ({}): resolve or close them first",
                    open.join(", ")
                )));
            }
        }
        self.check_people(
            after.group.as_deref().filter(|_| changed("group")),
            after.assignee.as_deref().filter(|_| changed("assignee")),
        )
        .await?;
        let mut tx = Tx::new();
        tx.ticket(Some(&before), &mut after);
        let (event, runs) = self.raise(&mut tx, &after, EventKind::Updated, changes, None, actor, &[], None).await?;
        let outcome = Outcome { ticket: after, event: Some(event), runs };
        tx.writes.extend(extra(&outcome));
        self.store.commit(tx).await?;
        self.after_commit(&outcome.runs);
        Ok(outcome)
    }

    /// The ids of a ticket's children that are still open.
    pub(crate) async fn open_children(&self, t: &Ticket) -> Result<Vec<String>> {
        let mut open = Vec::new();
        for child in t.children() {
            if self.store.ticket(child).await?.is_some_and(|c| c.status.is_open()) {
                open.push(child.to_string());
            }
        }
        Ok(open)
    }

    /// Recounts a parent's open children (a [`store::TimerKind::CountChildren`] timer);
    /// a changed count is an update event on the parent, which wakes its waiting runs.
    pub(super) async fn count_children(self: &Arc<Self>, timer: &store::Timer, parent: &str) -> Result<()> {
        let _guard = self.locks.lock(parent).await;
        let mut tx = Tx::new();
        tx.push(Write::CancelTimer(timer.key.clone()));
        let mut runs = Vec::new();
        if let Some(before) = self.store.ticket(parent).await? {
            let open = self.open_children(&before).await?.len() as u32;
            if open != before.open_children {
                let mut after = before.clone();
                after.open_children = open;
                let change =
                    FieldChange { field: "open_children".into(), from: json!(before.open_children), to: json!(open) };
                tx.ticket(Some(&before), &mut after);
                runs =
                    self.raise(&mut tx, &after, EventKind::Updated, vec![change], None, CHILDREN, &[], None).await?.1;
            }
        }
        self.store.commit(tx).await?;
        self.after_commit(&runs);
        Ok(())
    }

    /// Adds a comment.
    pub async fn add_comment(self: &Arc<Self>, id: &str, body: &str, internal: bool, actor: &str) -> Result<Outcome> {
        self.comment_as(id, body, internal, actor, None).await
    }

    /// A comment by `author`, posted by the token `poster` on their behalf (a portal or
    /// mail gateway relaying a reply); the audit log records who posted it.
    pub async fn add_comment_on_behalf(
        self: &Arc<Self>,
        id: &str,
        body: &str,
        internal: bool,
        author: &str,
        poster: &str,
    ) -> Result<Outcome> {
        self.comment_as(id, body, internal, author, Some(poster)).await
    }

    pub(super) async fn comment_as(
        self: &Arc<Self>,
        id: &str,
        body: &str,
        internal: bool,
        actor: &str,
        poster: Option<&str>,
    ) -> Result<Outcome> {
        if body.trim().is_empty() {
            return Err(invalid("/body", "body must not be empty"));
        }
        let _guard = self.locks.lock(id).await;
        let before = self.store.ticket(id).await?.ok_or_else(|| Error::NotFound { kind: "ticket", id: id.into() })?;
        let mut after = before.clone();
        let comment = after.add_comment(actor, body, internal, self.now());
        let mut tx = Tx::new();
        tx.ticket(Some(&before), &mut after);
        if let Some(poster) = poster {
            tx.push(Write::Audit(crate::run::AuditEntry {
                at: self.now(),
                actor: poster.to_string(),
                action: "comment.on_behalf".into(),
                target: id.to_string(),
                detail: json!({"author": actor, "comment": comment.id, "internal": internal}),
            }));
        }
        let (event, runs) =
            self.raise(&mut tx, &after, EventKind::CommentAdded, Vec::new(), Some(comment), actor, &[], None).await?;
        self.store.commit(tx).await?;
        self.after_commit(&runs);
        Ok(Outcome { ticket: after, event: Some(event), runs })
    }

    /// Links two tickets. Parent/child and related links are recorded on both sides;
    /// `duplicate_of` on this ticket only. Each side's history gets a `links` change.
    pub async fn link(self: &Arc<Self>, id: &str, link: crate::ticket::Link, actor: &str) -> Result<Outcome> {
        use crate::ticket::{Link, LinkKind};
        if link.ticket == id {
            return Err(invalid("/ticket", "a ticket cannot link to itself"));
        }
        let _guards = self.locks.lock_pair(id, &link.ticket).await;
        let before = self.store.ticket(id).await?.ok_or_else(|| Error::NotFound { kind: "ticket", id: id.into() })?;
        let other_before = self
            .store
            .ticket(&link.ticket)
            .await?
            .ok_or_else(|| invalid("/ticket", format!("unknown ticket `{}`", link.ticket)))?;
        if before.links.contains(&link) {
            return Ok(Outcome { ticket: before, event: None, runs: Vec::new() });
        }
        let now = self.now();
        let reverse = match link.kind {
            LinkKind::Parent => Some(LinkKind::Child),
            LinkKind::Child => Some(LinkKind::Parent),
            LinkKind::Related => Some(LinkKind::Related),
            LinkKind::DuplicateOf => None,
        };
        let change = |t: &Ticket, added: &Link| FieldChange {
            field: "links".into(),
            from: serde_json::to_value(&t.links).unwrap_or(Value::Null),
            to: serde_json::to_value(t.links.iter().chain(std::iter::once(added)).collect::<Vec<_>>())
                .unwrap_or(Value::Null),
        };
        let mut tx = Tx::new();
        let mut after = before.clone();
        let changes = vec![change(&before, &link)];
        after.links.push(link.clone());
        after.updated_at = now;
        tx.ticket(Some(&before), &mut after);
        let (event, mut runs) =
            self.raise(&mut tx, &after, EventKind::Updated, changes, None, actor, &[], None).await?;
        if let Some(kind) = reverse {
            let back = Link { kind, ticket: id.to_string() };
            if !other_before.links.contains(&back) {
                let mut other = other_before.clone();
                let changes = vec![change(&other_before, &back)];
                other.links.push(back);
                other.updated_at = now;
                tx.ticket(Some(&other_before), &mut other);
                runs.extend(self.raise(&mut tx, &other, EventKind::Updated, changes, None, actor, &[], None).await?.1);
            }
        }
        self.store.commit(tx).await?;
        self.after_commit(&runs);
        Ok(Outcome { ticket: after, event: Some(event), runs })
    }

    /// Starts a workflow by hand on a ticket; `input` becomes `vars.input`.
    pub async fn start_manual(
        self: &Arc<Self>,
        workflow: &str,
        ticket: &str,
        input: Value,
        actor: &str,
    ) -> Result<Outcome> {
        self.start_manual_with(workflow, ticket, input, actor, |_| Vec::new()).await
    }

    /// [`Engine::start_manual`], committing `extra(outcome)` in the same transaction.
    pub async fn start_manual_with(
        self: &Arc<Self>,
        workflow: &str,
        ticket: &str,
        input: Value,
        actor: &str,
        extra: impl FnOnce(&Outcome) -> Vec<Write>,
    ) -> Result<Outcome> {
        let record = self
            .store
            .workflow(workflow)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "workflow", id: workflow.into() })?;
        if !record.definition.triggers.contains(&Trigger::Manual) {
            return Err(Error::Conflict(format!("workflow `{workflow}` has no `manual` trigger")));
        }
        let _guard = self.locks.lock(ticket).await;
        let t =
            self.store.ticket(ticket).await?.ok_or_else(|| invalid("/ticket", format!("unknown ticket `{ticket}`")))?;
        let mut tx = Tx::new();
        let (event, runs) =
            self.raise(&mut tx, &t, EventKind::Manual, Vec::new(), None, actor, &[], Some((workflow, input))).await?;
        let outcome = Outcome { ticket: t, event: Some(event), runs };
        tx.writes.extend(extra(&outcome));
        self.store.commit(tx).await?;
        self.after_commit(&outcome.runs);
        Ok(outcome)
    }
}
