//! Approval steps, in process over a real sled store with a fake clock: counting
//! policies, chains, expiry actions, delegation (explicit and out of office) and signed
//! links (single use, bound to approver and stage).

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use switchboard::approval::{Channel, Status};
use switchboard::clock::FakeClock;
use switchboard::config::Config;
use switchboard::executor::{Engine, Error};
use switchboard::run::RunStatus;
use switchboard::store::{sled::SledStore, Durability, RunFilter, RunStore, TicketStore};
use switchboard::team::{Group, OutOfOffice};
use switchboard::ticket::NewTicket;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

struct Desk {
    _dir: tempfile::TempDir,
    store: Arc<SledStore>,
    engine: Arc<Engine>,
    clock: FakeClock,
}

async fn desk() -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = FakeClock::new(utc("2026-11-02T09:00:00Z"));
    let mut config = Config::default();
    config.secrets.insert("default".into(), "test-signing-secret-0123456789".into());
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(config)).unwrap();
    engine
        .put_group(Group { id: "cab".into(), name: "CAB".into(), description: String::new(), manager: None }, "test")
        .await
        .unwrap();
    for id in ["ann", "ben", "cat", "dan", "eve", "grace", "hal"] {
        let cab = ["ann", "ben", "cat", "dan", "eve"].contains(&id);
        let groups: &[&str] = if cab { &["cab"] } else { &[] };
        engine.put_agent(switchboard_tests::agent(id, groups), "test").await.unwrap();
    }
    Desk { _dir: dir, store, engine, clock }
}

impl Desk {
    async fn idle(&self) {
        while self.engine.runs_in_flight() > 0 {
            tokio::task::yield_now().await;
        }
    }

    /// Publishes a workflow: approval step `ok` with `stages`, then a note; rejection
    /// goes to a `rejected` note.
    async fn workflow(&self, stages: Value) {
        let wf = json!({
            "id": "change", "name": "change",
            "triggers": [{"on": "ticket.created"}],
            "steps": [
                {"id": "ok", "type": "approval", "stages": stages, "on_reject": "rejected"},
                {"id": "go", "type": "comment", "body": "Approved: {{vars.ok.outcome}}", "next": "end"},
                {"id": "rejected", "type": "comment", "body": "Rejected: {{vars.ok.outcome}}"}
            ]
        });
        self.engine.put_workflow(switchboard::workflow::validate_value(&wf).unwrap(), "test").await.unwrap();
    }

    /// Logs a ticket and returns it with its approval's id.
    async fn ticket(&self, custom: Value) -> (String, String) {
        let mut new = NewTicket { title: "Change".into(), requester: "req".into(), ..Default::default() };
        if let Value::Object(m) = custom {
            new.custom = m;
        }
        let id = self.engine.create_ticket(new, "req").await.unwrap().ticket.id;
        self.idle().await;
        let run =
            self.store.runs(&RunFilter { ticket: Some(id.clone()), ..Default::default() }).await.unwrap().remove(0);
        assert_eq!(run.status, RunStatus::Waiting, "{:?}", run.trace);
        let approval =
            run.trace.iter().rev().find_map(|e| e.detail.get("approval")).unwrap().as_str().unwrap().to_string();
        (id, approval)
    }

    async fn decide(&self, approval: &str, who: &str, approve: bool) -> Result<switchboard::approval::Approval, Error> {
        let r = self.engine.decide(approval, who, approve, "", Channel::Api, None).await;
        self.idle().await;
        r
    }

    async fn notes(&self, ticket: &str) -> Vec<String> {
        self.store.ticket(ticket).await.unwrap().unwrap().comments.into_iter().map(|c| c.body).collect()
    }

    async fn last_note(&self, ticket: &str) -> String {
        self.notes(ticket).await.pop().unwrap_or_default()
    }
}

#[tokio::test]
async fn majority_and_quorum_count_as_documented() {
    let d = desk().await;
    d.workflow(json!([{"name": "cab", "approvers": [{"group": "cab"}], "policy": "majority"}])).await;
    let (t, a) = d.ticket(json!({})).await;
    assert_eq!(d.engine.approval(&a).await.unwrap().stage().need, 3, "majority of 5");
    d.decide(&a, "ann", true).await.unwrap();
    d.decide(&a, "ben", false).await.unwrap();
    d.decide(&a, "cat", true).await.unwrap();
    assert_eq!(d.engine.approval(&a).await.unwrap().status, Status::Pending, "2 of 3 needed");
    d.decide(&a, "dan", true).await.unwrap();
    assert_eq!(d.engine.approval(&a).await.unwrap().status, Status::Approved);
    assert_eq!(d.last_note(&t).await, "Approved: approved");
    let late = d.decide(&a, "eve", true).await.unwrap_err();
    assert!(late.to_string().contains("is closed"), "{late}");

    d.workflow(json!([{"name": "cab", "approvers": [{"group": "cab"}], "policy": "quorum", "quorum": 2}])).await;
    let (t, a) = d.ticket(json!({})).await;
    for who in ["ann", "ben", "cat"] {
        d.decide(&a, who, false).await.unwrap();
    }
    assert_eq!(d.engine.approval(&a).await.unwrap().status, Status::Pending, "2 approvals are still possible");
    d.decide(&a, "dan", false).await.unwrap();
    assert_eq!(
        d.engine.approval(&a).await.unwrap().status,
        Status::Rejected,
        "only 1 approver left: quorum 2 impossible"
    );
    assert_eq!(d.last_note(&t).await, "Rejected: rejected");
}

#[tokio::test]
async fn stage_two_starts_after_stage_one_and_a_rejection_takes_the_reject_path() {
    let d = desk().await;
    d.workflow(json!([
        {"name": "manager", "approvers": [{"field": "custom.manager"}]},
        {"name": "finance", "approvers": [{"user": "hal"}, {"user": "eve"}], "policy": "all"}
    ]))
    .await;
    let (t, a) = d.ticket(json!({"manager": "grace"})).await;
    let approval = d.engine.approval(&a).await.unwrap();
    assert_eq!(approval.stages[1].status, Status::Waiting);
    assert!(
        d.decide(&a, "hal", true).await.unwrap_err().to_string().contains("not an approver"),
        "stage 2 not open yet"
    );
    d.decide(&a, "grace", true).await.unwrap();
    let approval = d.engine.approval(&a).await.unwrap();
    assert_eq!((approval.current, approval.stages[0].status), (1, Status::Approved));
    d.decide(&a, "hal", true).await.unwrap();
    d.decide(&a, "eve", false).await.unwrap();
    let approval = d.engine.approval(&a).await.unwrap();
    assert_eq!(approval.status, Status::Rejected);
    assert_eq!(d.last_note(&t).await, "Rejected: rejected");
    let notes = d.notes(&t).await;
    assert!(notes.iter().any(|n| n.starts_with("Approved by grace (API, stage 1: manager)")), "{notes:?}");
    assert!(notes.iter().any(|n| n.starts_with("Rejected by eve (API, stage 2: finance)")), "{notes:?}");
    let run = d.store.runs(&RunFilter { ticket: Some(t), ..Default::default() }).await.unwrap().remove(0);
    let outcomes: Vec<&str> =
        run.trace.iter().filter(|e| e.step.as_deref() == Some("ok")).map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["waiting", "progress", "requested", "progress", "progress", "rejected"]);
    assert_eq!(run.vars["ok"]["stages"][1]["decisions"][1]["by"], "eve");
}

#[tokio::test]
async fn expiry_approves_rejects_or_escalates() {
    let d = desk().await;
    d.workflow(json!([{"name": "auto", "approvers": [{"user": "ann"}], "due_minutes": 60, "on_expiry": "approve"}]))
        .await;
    let (t, a) = d.ticket(json!({})).await;
    d.clock.advance(Duration::minutes(59));
    assert_eq!(d.engine.fire_due_timers().await.unwrap(), 0);
    d.clock.advance(Duration::minutes(1));
    assert_eq!(d.engine.fire_due_timers().await.unwrap(), 1);
    d.idle().await;
    assert_eq!(d.engine.approval(&a).await.unwrap().status, Status::Approved);
    assert_eq!(d.last_note(&t).await, "Approved: approved");

    d.workflow(json!([{"name": "up", "approvers": [{"user": "ann"}], "due_minutes": 30, "on_expiry": {"escalate_to": "grace"}}]))
        .await;
    let (t, a) = d.ticket(json!({})).await;
    d.clock.advance(Duration::minutes(30));
    d.engine.fire_due_timers().await.unwrap();
    d.idle().await;
    let approval = d.engine.approval(&a).await.unwrap();
    assert_eq!(approval.status, Status::Pending);
    assert_eq!(approval.stage().slots[0].acting, "grace", "handed to grace");
    assert!(d.decide(&a, "ann", true).await.is_err(), "ann is no longer asked");
    d.clock.advance(Duration::minutes(30));
    d.engine.fire_due_timers().await.unwrap();
    d.idle().await;
    assert_eq!(
        d.engine.approval(&a).await.unwrap().status,
        Status::Rejected,
        "an escalated stage that expires is rejected"
    );
    assert!(d.notes(&t).await.iter().any(|n| n.contains("escalated to grace")));
}

#[tokio::test]
async fn undecided_approvers_are_reminded_once() {
    let d = desk().await;
    d.workflow(json!([{"name": "cab", "approvers": [{"user": "ann"}, {"user": "ben"}], "policy": "all",
        "remind_minutes": 30, "due_minutes": 120}]))
        .await;
    let (t, a) = d.ticket(json!({})).await;
    d.decide(&a, "ann", true).await.unwrap();
    d.clock.advance(Duration::minutes(29));
    assert_eq!(d.engine.fire_due_timers().await.unwrap(), 0);
    d.clock.advance(Duration::minutes(1));
    assert_eq!(d.engine.fire_due_timers().await.unwrap(), 1);
    d.idle().await;
    assert_eq!(d.last_note(&t).await, "Reminder: approval stage 1 (cab) is waiting for ben");
    d.clock.advance(Duration::minutes(60));
    assert_eq!(d.engine.fire_due_timers().await.unwrap(), 0, "one reminder");
    d.decide(&a, "ben", true).await.unwrap();
    assert_eq!(d.engine.approval(&a).await.unwrap().status, Status::Approved);
    d.clock.advance(Duration::minutes(60));
    assert_eq!(d.engine.fire_due_timers().await.unwrap(), 0, "the due timer went with the decision");
    let run = d.store.runs(&RunFilter { ticket: Some(t), ..Default::default() }).await.unwrap().remove(0);
    assert!(run.trace.iter().any(|e| e.message.starts_with("Reminder:")));
}

#[tokio::test]
async fn delegation_explicit_and_out_of_office_records_who_decided_for_whom() {
    let d = desk().await;
    let mut grace = d.engine.store().agent("grace").await.unwrap().unwrap();
    grace.out_of_office = Some(OutOfOffice {
        from: utc("2026-11-01T00:00:00Z"),
        until: utc("2026-11-09T00:00:00Z"),
        delegate: "hal".into(),
    });
    d.engine.put_agent(grace, "test").await.unwrap();
    d.workflow(json!([{"name": "managers", "approvers": [{"user": "grace"}, {"user": "ann"}], "policy": "all"}])).await;
    let (t, a) = d.ticket(json!({})).await;
    let slots = d.engine.approval(&a).await.unwrap().stage().slots.clone();
    assert_eq!((slots[0].approver.as_str(), slots[0].acting.as_str()), ("grace", "hal"));
    assert!(slots[0].delegation.as_deref().unwrap().contains("out of office"));

    d.engine.delegate(&a, "ann", "ben", "on a course").await.unwrap();
    let refused = d.decide(&a, "ann", true).await.unwrap_err();
    assert!(matches!(refused, Error::Forbidden(_)), "{refused}");
    d.decide(&a, "ben", true).await.unwrap();
    d.decide(&a, "hal", true).await.unwrap();
    let approval = d.engine.approval(&a).await.unwrap();
    assert_eq!(approval.status, Status::Approved);
    let by: Vec<(String, String)> = approval.stages[0]
        .slots
        .iter()
        .map(|s| (s.approver.clone(), s.decision.as_ref().unwrap().by.clone()))
        .collect();
    assert_eq!(by, [("grace".to_string(), "hal".to_string()), ("ann".to_string(), "ben".to_string())]);
    assert!(d.notes(&t).await.iter().any(|n| n.starts_with("Approved by ben for ann")));
}

/// Splits a link into (stage, approver, approve, expires, sig).
fn parse_link(url: &str) -> (usize, String, bool, i64, String) {
    let query = url.split_once('?').unwrap().1;
    let get = |k: &str| query.split('&').find_map(|p| p.strip_prefix(&format!("{k}="))).unwrap().to_string();
    (
        get("stage").parse().unwrap(),
        get("approver"),
        get("decision") == "approve",
        get("expires").parse().unwrap(),
        get("sig"),
    )
}

#[tokio::test]
async fn signed_links_work_once_for_their_approver_and_stage_only() {
    let d = desk().await;
    d.workflow(json!([
        {"name": "two", "approvers": [{"user": "ann"}, {"user": "ben"}], "policy": "all"},
        {"name": "final", "approvers": [{"user": "ann"}]}
    ]))
    .await;
    let (_, a) = d.ticket(json!({})).await;
    let links = d.engine.approval_links(&d.engine.approval(&a).await.unwrap()).unwrap();
    let ann = links.iter().find(|l| l["approver"] == "ann").unwrap()["approve"].as_str().unwrap().to_string();
    let (stage, who, yes, exp, sig) = parse_link(&ann);
    assert!(ann.starts_with("http://127.0.0.1:8080/approvals/"));

    // Ann's link used as Ben: the approver is signed in.
    let forged = d.engine.decide_by_link(&a, stage, "ben", yes, exp, &sig, "").await.unwrap_err();
    assert!(matches!(forged, Error::Forbidden(_)), "{forged}");
    // Turned into a reject: the decision is signed in too.
    assert!(d.engine.decide_by_link(&a, stage, &who, false, exp, &sig, "").await.is_err());
    d.engine.decide_by_link(&a, stage, &who, yes, exp, &sig, "fine").await.unwrap();
    let replay = d.engine.decide_by_link(&a, stage, &who, yes, exp, &sig, "").await.unwrap_err();
    assert!(replay.to_string().contains("already decided"), "{replay}");

    // Stage 2 asks Ann again; her stage-1 link does not carry over.
    d.decide(&a, "ben", true).await.unwrap();
    assert_eq!(d.engine.approval(&a).await.unwrap().current, 1);
    let stale = d.engine.decide_by_link(&a, stage, &who, yes, exp, &sig, "").await.unwrap_err();
    assert!(stale.to_string().contains("another stage"), "{stale}");
    d.decide(&a, "ann", true).await.unwrap();
    let closed = d.engine.decide_by_link(&a, 1, &who, yes, exp, &sig, "").await.unwrap_err();
    assert!(matches!(closed, Error::Forbidden(_) | Error::Conflict(_)), "{closed}");
    let approval = d.engine.approval(&a).await.unwrap();
    assert_eq!(approval.status, Status::Approved);
    assert_eq!(approval.stages[0].slots[0].decision.as_ref().unwrap().via, Channel::Link);

    // Expired links are refused.
    d.workflow(json!([{"name": "one", "approvers": [{"user": "cat"}], "due_minutes": 10}])).await;
    let (_, a) = d.ticket(json!({})).await;
    let links = d.engine.approval_links(&d.engine.approval(&a).await.unwrap()).unwrap();
    let (stage, who, yes, exp, sig) = parse_link(links[0]["approve"].as_str().unwrap());
    d.clock.advance(Duration::minutes(11));
    let expired = d.engine.decide_by_link(&a, stage, &who, yes, exp, &sig, "").await.unwrap_err();
    assert!(expired.to_string().contains("expired"), "{expired}");
}

#[tokio::test]
async fn a_stage_with_nobody_to_ask_fails_the_step_with_the_reason() {
    let d = desk().await;
    d.workflow(json!([{"name": "manager", "approvers": [{"field": "custom.manager"}]}])).await;
    let new = NewTicket { title: "Change".into(), requester: "req".into(), ..Default::default() };
    let id = d.engine.create_ticket(new, "req").await.unwrap().ticket.id;
    d.idle().await;
    let run = d.store.runs(&RunFilter { ticket: Some(id), ..Default::default() }).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("has no approvers"));
}

/// The "pending for me" inbox reads an index of who may decide what: it follows
/// decisions, stages and delegation, and approvals stored before the index existed are
/// indexed once at start.
#[tokio::test]
async fn the_inbox_index_follows_decisions_and_is_built_for_older_approvals() {
    use switchboard::store::{DocKind, DocStore, Store, Tx, Write};
    let d = desk().await;
    d.workflow(json!([
        {"name": "both", "approvers": [{"user": "ann"}, {"user": "ben"}], "policy": "all"},
        {"name": "final", "approvers": [{"user": "cat"}]}
    ]))
    .await;
    let (_, a) = d.ticket(json!({})).await;
    let inbox = |who: &'static str| {
        let engine = d.engine.clone();
        async move { engine.approvals(Some(who), 100).await.unwrap().into_iter().map(|a| a.id).collect::<Vec<_>>() }
    };
    assert_eq!(
        (inbox("ann").await, inbox("ben").await, inbox("cat").await),
        (vec![a.clone()], vec![a.clone()], vec![])
    );
    d.decide(&a, "ann", true).await.unwrap();
    assert_eq!((inbox("ann").await, inbox("ben").await), (vec![], vec![a.clone()]), "decided: out of ann's inbox");
    d.decide(&a, "ben", true).await.unwrap();
    assert_eq!((inbox("ben").await, inbox("cat").await), (vec![], vec![a.clone()]), "the next stage asks cat");

    // An approval from before the index: its entries and the marker gone, as in an old store.
    let mut tx = Tx::new();
    tx.push(Write::Doc { kind: DocKind::Pending, id: format!("cat/{a}"), value: None });
    tx.push(Write::Doc { kind: DocKind::Seeded, id: "index/pending-approvals".into(), value: None });
    d.store.commit(tx).await.unwrap();
    assert_eq!(inbox("cat").await, Vec::<String>::new());
    d.engine.recover().await.unwrap();
    assert_eq!(inbox("cat").await, vec![a.clone()], "indexed at start");
    assert!(d.store.doc(DocKind::Seeded, "index/pending-approvals").await.unwrap().is_some());
    d.decide(&a, "cat", true).await.unwrap();
    assert_eq!(inbox("cat").await, Vec::<String>::new());
    assert_eq!(d.engine.approval(&a).await.unwrap().status, Status::Approved);
}
