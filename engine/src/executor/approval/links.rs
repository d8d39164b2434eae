//! Approvals outside the API: signed one-time links an approver decides with (checked
//! before anything is shown), and the approval requests posted to an outbound URL when
//! a stage starts or reminds.

use super::refused;
use crate::approval::{self, Approval, Channel};
use crate::executor::{Engine, Error, Result};
use crate::run::{RunStatus, TraceEntry};
use crate::store::Tx;
use serde_json::{json, Value};
use std::sync::Arc;

impl Engine {
    /// The key that signs approval links: secret `approval_links`, else `default`.
    fn link_key(&self) -> Option<&[u8]> {
        let s = &self.config.secrets;
        s.get("approval_links").or_else(|| s.get("default")).map(|k| k.as_bytes())
    }

    /// Signed approve and reject links for every undecided slot of the current stage,
    /// valid until the stage is due (or 7 days).
    pub fn approval_links(&self, approval: &Approval) -> Result<Vec<Value>> {
        let key = self.link_key().ok_or_else(|| {
            Error::Conflict("no signing secret for links: set `secrets.approval_links` (or `secrets.default`)".into())
        })?;
        let stage = approval.stage();
        let expires = stage.due.unwrap_or(self.now() + chrono::Duration::days(7)).timestamp();
        let base = self.config.public_url.trim_end_matches('/');
        Ok(stage
            .slots
            .iter()
            .filter(|s| s.decision.is_none())
            .map(|s| {
                let link = |approve: bool| {
                    let link = approval::Link {
                        approval: &approval.id,
                        stage: approval.current,
                        approver: &s.acting,
                        approve,
                        expires,
                    };
                    let sig = link.sign(key);
                    format!(
                        "{base}/approvals/{}/decide?stage={}&approver={}&decision={}&expires={expires}&sig={sig}",
                        approval.id,
                        approval.current,
                        s.acting,
                        if approve { "approve" } else { "reject" }
                    )
                };
                json!({"approver": s.approver, "acting": s.acting, "approve": link(true), "reject": link(false)})
            })
            .collect())
    }

    /// Checks a link and records its decision.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_by_link(
        self: &Arc<Self>,
        id: &str,
        stage: usize,
        approver: &str,
        approve: bool,
        expires: i64,
        sig: &str,
        comment: &str,
    ) -> Result<Approval> {
        self.check_link(&approval::Link { approval: id, stage, approver, approve, expires }, sig)?;
        self.decide(id, approver, approve, comment, Channel::Link, Some(stage)).await
    }

    /// Checks a signed link (signature and expiry) without deciding anything: the link's
    /// confirmation page shows nothing of the approval to anyone else.
    pub fn check_link(&self, link: &approval::Link<'_>, sig: &str) -> Result<()> {
        let key = self.link_key().ok_or_else(|| Error::Conflict("links are not configured".into()))?;
        link.verify(key, sig, self.now()).map_err(refused)
    }

    /// Posts the current stage's request — or its reminder — with links to `url`, then
    /// notes the delivery in the run's trace.
    pub(in crate::executor) fn spawn_approval_request(self: &Arc<Self>, id: String, url: String, reminder: bool) {
        let engine = self.clone();
        self.runtime.tasks.spawn(async move {
            let Ok(approval) = engine.approval(&id).await else { return };
            let links = engine.approval_links(&approval).unwrap_or_default();
            let ticket = engine.store.ticket(&approval.ticket_id).await.ok().flatten();
            let body = json!({
                "type": if reminder { "approval.reminder" } else { "approval.requested" },
                "approval": approval.id,
                "stage": approval.current,
                "stage_name": approval.stage().name,
                "due": approval.stage().due,
                "ticket": ticket.as_ref().map(|t| json!({"id": t.id, "title": t.title, "requester": t.requester})),
                "approvers": links,
            });
            let key = engine.config.secrets.get("default").map(|k| k.as_bytes().to_vec()).unwrap_or_default();
            let delivery_id =
                format!("{}/{}{}", approval.id, approval.current, if reminder { "/reminder" } else { "" });
            let d = engine.notifier.send(&url, &key, &delivery_id, &body, engine.now().timestamp()).await;
            engine.metrics.outbound("approval_request", if d.ok { "delivered" } else { "not_sent" });
            let _guard = engine.locks.lock(&approval.ticket_id).await;
            let Ok(Some(mut run)) = engine.store.run(&approval.run_id).await else { return };
            let outcome = if d.ok { "sent" } else { "not_sent" };
            // Only a run still parked at this approval is written here: one that went on
            // (decided before the request was answered) is its driver's alone, and an
            // entry appended behind the driver's back would take the sequence number of
            // the driver's next one.
            let parked = run.status == RunStatus::Waiting && run.waiting.as_ref().is_some_and(|w| w.step == approval.step);
            if !parked {
                tracing::info!(approval = %id, run = %run.id, outcome, url = %url, "approval request answered after the run went on");
                return;
            }
            let message = format!(
                "request for stage {} posted to {url}: status {} after {} attempt(s)",
                approval.current + 1,
                d.status,
                d.attempts
            );
            run.trace.push(TraceEntry::step(engine.now(), &approval.step, "approval", outcome, message));
            let mut tx = Tx::new();
            tx.run(&mut run);
            if let Err(e) = engine.store.commit(tx).await {
                tracing::error!(approval = %id, error = %e, "recording the approval request");
            }
        });
    }
}
