//! Approvals: who must agree, how their answers are counted, and signed decision links.
//!
//! An `approval` step names one or more **stages**; stage 2 starts when stage 1 is
//! approved. Each stage resolves its approvers when it starts (users, a group's members,
//! a ticket field such as `custom.manager`, or a run variable such as a plugin's output)
//! into **slots**, one per approver. An approver who is out of office at that moment is
//! represented by their delegate; the slot records both, so the record shows who decided
//! for whom.
//!
//! The **policy** turns decisions into an outcome. With N slots and `need` approvals
//! required (`any` 1, `all` N, `majority` N/2+1, `quorum` n), the stage is approved as
//! soon as `need` approvals are in, and rejected as soon as so many rejections are in that
//! `need` can no longer be reached. `first` takes the first decision either way.
//!
//! Decisions arrive through the API (the approver's own token) or a **signed link** for
//! e-mail: HMAC-SHA256 over approval, stage, approver, decision and expiry. A link works
//! once (its slot then has a decision), not after the approval closed, not for another
//! approver or stage (those are signed in), and not after it expires.
//!
//! Everything here is pure: the engine ([`crate::executor`]) stores approvals, parks the
//! run, sets expiry timers and resumes the run.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Where a stage's approvers come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum ApproverSource {
    /// A named user (agent id).
    User {
        /// The agent id.
        user: String,
    },
    /// Every member of a group.
    Group {
        /// The group id.
        group: String,
    },
    /// The user named by a ticket field, e.g. `custom.manager`.
    Field {
        /// The field (as in `set`).
        field: String,
    },
    /// The user(s) in a run variable, e.g. `lookup.manager` from a plugin step's output
    /// (a string or an array of strings).
    Var {
        /// The path under `vars.`.
        var: String,
    },
}

/// How decisions are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// One approval approves; rejected only when everyone rejected.
    Any,
    /// Everyone must approve; one rejection rejects.
    All,
    /// More than half must approve.
    Majority,
    /// The first decision, either way, decides.
    First,
    /// At least `quorum` approvals (set `quorum` on the stage).
    Quorum,
}

/// What happens when a stage's due time passes without an outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OnExpiry {
    /// `approve` or `reject`.
    Outcome(ExpiryOutcome),
    /// Hand the stage to another approver (who then decides alone, with a fresh due time;
    /// if that passes too, the stage is rejected).
    Escalate {
        /// The agent id to escalate to.
        escalate_to: String,
    },
}

/// `approve` or `reject` on expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryOutcome {
    /// Approve.
    Approve,
    /// Reject.
    Reject,
}

/// One stage of an approval step, as written in the workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Shown to approvers and in the trace.
    pub name: String,
    /// Who decides (all sources together, duplicates removed).
    pub approvers: Vec<ApproverSource>,
    /// How decisions are counted (default `any`).
    #[serde(default = "any")]
    pub policy: Policy,
    /// Approvals needed with `policy: quorum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// Minutes until the stage is due (absent: no due time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_minutes: Option<u32>,
    /// Remind the undecided approvers once, this many minutes after the stage started
    /// (same clock as `due_minutes`): a note on the ticket, a trace entry, and the request
    /// posted again to `notify_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_minutes: Option<u32>,
    /// Count `due_minutes` in business time on the ticket's SLA calendar.
    #[serde(default)]
    pub business: bool,
    /// What happens at the due time (default `reject`).
    #[serde(default = "reject", skip_serializing_if = "is_reject")]
    pub on_expiry: OnExpiry,
}

fn any() -> Policy {
    Policy::Any
}

fn reject() -> OnExpiry {
    OnExpiry::Outcome(ExpiryOutcome::Reject)
}

fn is_reject(o: &OnExpiry) -> bool {
    *o == reject()
}

/// Where an approval or a stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for decisions.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Not started yet (later stages).
    Waiting,
}

/// How a decision arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// `POST /approvals/{id}/decisions` with the approver's token.
    Api,
    /// A signed link.
    Link,
    /// The web console, signed in with the approver's token.
    Console,
    /// The due time passed (`on_expiry`).
    Expiry,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Approve (true) or reject.
    pub approve: bool,
    /// Who decided (the delegate, when one acted).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The approver's comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// How it arrived.
    pub via: Channel,
}

/// One approver's place in a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// The approver the workflow named.
    pub approver: String,
    /// Who may decide now: the approver, or their delegate (out of office, or delegated).
    pub acting: String,
    /// Why someone else acts (`out of office until ...`, `delegated by grace: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<String>,
    /// The decision, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// A stage as it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// From the spec.
    pub name: String,
    /// From the spec.
    pub policy: Policy,
    /// Approvals needed.
    pub need: u32,
    /// One per approver.
    pub slots: Vec<Slot>,
    /// Where it stands.
    pub status: Status,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    /// Set once the stage was escalated on expiry.
    #[serde(default)]
    pub escalated: bool,
}

/// An approval: the state of one `approval` step of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// `A-<n>`.
    pub id: String,
    /// The run that waits for it.
    pub run_id: String,
    /// The ticket.
    pub ticket_id: String,
    /// The workflow.
    pub workflow_id: String,
    /// The step.
    pub step: String,
    /// The stages; `current` is the one deciding.
    pub stages: Vec<Stage>,
    /// Index into `stages`.
    pub current: usize,
    /// Where the whole approval stands.
    pub status: Status,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Closed (approved or rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
}

/// Why a decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The approval already has an outcome.
    #[error("approval {0} is closed ({1})")]
    Closed(String, &'static str),
    /// The caller is not an approver of the current stage (nor acting for one).
    #[error("`{0}` is not an approver of the current stage")]
    NotApprover(String),
    /// The caller's slot already has a decision.
    #[error("`{0}` already decided on this stage")]
    AlreadyDecided(String),
    /// A link for an earlier stage, or with a bad signature, or expired.
    #[error("{0}")]
    BadLink(String),
}

impl Stage {
    /// A stage over resolved approvers (`(approver, acting, why)`).
    pub fn new(spec: &StageSpec, approvers: Vec<(String, String, Option<String>)>) -> Self {
        let n = approvers.len() as u32;
        let need = match spec.policy {
            Policy::Any | Policy::First => 1,
            Policy::All => n,
            Policy::Majority => n / 2 + 1,
            Policy::Quorum => spec.quorum.unwrap_or(1).min(n),
        }
        .max(1);
        Self {
            name: spec.name.clone(),
            policy: spec.policy,
            need,
            slots: approvers
                .into_iter()
                .map(|(approver, acting, delegation)| Slot { approver, acting, delegation, decision: None })
                .collect(),
            status: Status::Waiting,
            started_at: None,
            due: None,
            escalated: false,
        }
    }

    /// Approvals so far.
    pub fn approvals(&self) -> u32 {
        self.slots.iter().filter(|s| s.decision.as_ref().is_some_and(|d| d.approve)).count() as u32
    }

    /// Rejections so far.
    pub fn rejections(&self) -> u32 {
        self.slots.iter().filter(|s| s.decision.as_ref().is_some_and(|d| !d.approve)).count() as u32
    }

    /// The outcome the decisions so far determine, if any.
    pub fn outcome(&self) -> Option<bool> {
        if self.policy == Policy::First {
            return self.slots.iter().filter_map(|s| s.decision.as_ref()).min_by_key(|d| d.at).map(|d| d.approve);
        }
        let n = self.slots.len() as u32;
        if self.approvals() >= self.need {
            Some(true)
        } else if n.saturating_sub(self.rejections()) < self.need {
            Some(false)
        } else {
            None
        }
    }
}

impl Approval {
    /// The stage deciding now.
    pub fn stage(&self) -> &Stage {
        &self.stages[self.current]
    }

    /// The slot that `who` may decide in the current stage: their own, or one they act for.
    pub fn slot_for(&self, who: &str) -> Result<usize, Refusal> {
        if self.status != Status::Pending {
            return Err(Refusal::Closed(self.id.clone(), status_name(self.status)));
        }
        let stage = self.stage();
        let index = stage
            .slots
            .iter()
            .position(|s| s.acting == who && s.decision.is_none())
            .or_else(|| stage.slots.iter().position(|s| s.acting == who || s.approver == who))
            .ok_or_else(|| Refusal::NotApprover(who.to_string()))?;
        if stage.slots[index].decision.is_some() {
            return Err(Refusal::AlreadyDecided(who.to_string()));
        }
        if stage.slots[index].acting != who {
            // The approver delegated: only the delegate acts now.
            return Err(Refusal::NotApprover(who.to_string()));
        }
        Ok(index)
    }
}

impl Refusal {
    /// Whether the refusal is about who asks (403) rather than the approval's state (409).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Refusal::NotApprover(_) | Refusal::BadLink(_))
    }
}

/// `approved`, `rejected`...
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::Approved => "approved",
        Status::Rejected => "rejected",
        Status::Waiting => "waiting",
    }
}

/// What a decision link is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link<'a> {
    /// The approval.
    pub approval: &'a str,
    /// The stage it was issued for.
    pub stage: usize,
    /// Who may use it.
    pub approver: &'a str,
    /// What it decides.
    pub approve: bool,
    /// Unix seconds after which it is refused.
    pub expires: i64,
}

impl Link<'_> {
    fn mac(&self, key: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        let decision = if self.approve { "approve" } else { "reject" };
        mac.update(
            format!("{}|{}|{}|{decision}|{}", self.approval, self.stage, self.approver, self.expires).as_bytes(),
        );
        mac
    }

    /// The link's signature (hex HMAC-SHA256).
    pub fn sign(&self, key: &[u8]) -> String {
        hex::encode(self.mac(key).finalize().into_bytes())
    }

    /// Checks a signature (constant time) and the expiry.
    pub fn verify(&self, key: &[u8], sig: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        let bytes = hex::decode(sig).map_err(|_| Refusal::BadLink("link signature is not hex".into()))?;
        self.mac(key).verify_slice(&bytes).map_err(|_| Refusal::BadLink("link signature does not match".into()))?;
        if now.timestamp() > self.expires {
            return Err(Refusal::BadLink("link expired".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(policy: Policy, quorum: Option<u32>, n: usize) -> Stage {
        let spec = StageSpec {
            name: "s".into(),
            approvers: vec![],
            policy,
            quorum,
            due_minutes: None,
            remind_minutes: None,
            business: false,
            on_expiry: reject(),
        };
        Stage::new(&spec, (0..n).map(|i| (format!("u{i}"), format!("u{i}"), None)).collect())
    }

    fn decide(s: &mut Stage, i: usize, approve: bool, minute: i64) {
        let at = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute);
        s.slots[i].decision =
            Some(Decision { approve, by: format!("u{i}"), at, comment: String::new(), via: Channel::Api });
    }

    #[test]
    fn majority_of_five_needs_three_and_fails_at_three_rejections() {
        let mut s = stage(Policy::Majority, None, 5);
        assert_eq!(s.need, 3);
        decide(&mut s, 0, true, 1);
        decide(&mut s, 1, false, 2);
        decide(&mut s, 2, true, 3);
        assert_eq!(s.outcome(), None);
        decide(&mut s, 3, true, 4);
        assert_eq!(s.outcome(), Some(true));
        let mut s = stage(Policy::Majority, None, 4);
        assert_eq!(s.need, 3, "half is not a majority");
        decide(&mut s, 0, false, 1);
        assert_eq!(s.outcome(), None);
        decide(&mut s, 1, false, 2);
        assert_eq!(s.outcome(), Some(false), "3 approvals out of the 2 left cannot happen");
    }

    #[test]
    fn quorum_any_all_first() {
        let mut q = stage(Policy::Quorum, Some(2), 4);
        decide(&mut q, 0, true, 1);
        decide(&mut q, 1, false, 2);
        decide(&mut q, 2, false, 3);
        assert_eq!(q.outcome(), None, "two approvals still possible");
        decide(&mut q, 3, true, 4);
        assert_eq!(q.outcome(), Some(true));
        let mut any = stage(Policy::Any, None, 2);
        decide(&mut any, 0, false, 1);
        assert_eq!(any.outcome(), None);
        decide(&mut any, 1, false, 2);
        assert_eq!(any.outcome(), Some(false));
        let mut all = stage(Policy::All, None, 3);
        decide(&mut all, 0, true, 1);
        decide(&mut all, 1, false, 2);
        assert_eq!(all.outcome(), Some(false));
        let mut first = stage(Policy::First, None, 3);
        decide(&mut first, 2, false, 5);
        decide(&mut first, 1, true, 7);
        assert_eq!(first.outcome(), Some(false), "the earliest decision counts");
        assert_eq!(stage(Policy::Quorum, Some(9), 3).need, 3, "quorum is capped at the approvers");
    }

    #[test]
    fn links_bind_approval_stage_approver_decision_and_expiry() {
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(1);
        let exp = now.timestamp() + 3600;
        let link = Link { approval: "A-1", stage: 0, approver: "grace", approve: true, expires: exp };
        let sig = link.sign(b"k");
        assert!(link.verify(b"k", &sig, now).is_ok());
        let others = [
            Link { approval: "A-2", ..link.clone() },
            Link { stage: 1, ..link.clone() },
            Link { approver: "bob", ..link.clone() },
            Link { approve: false, ..link.clone() },
            Link { expires: exp + 1, ..link.clone() },
        ];
        for other in others {
            assert!(other.verify(b"k", &sig, now).is_err(), "{other:?}");
        }
        assert!(link.verify(b"other key", &sig, now).is_err());
        let late = now + chrono::Duration::hours(2);
        assert_eq!(link.verify(b"k", &sig, late), Err(Refusal::BadLink("link expired".into())));
    }
}
