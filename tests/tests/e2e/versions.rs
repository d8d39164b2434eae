//! Workflow versions: a waiting run stays on the revision it started with across a
//! publish; diffs by path; rollback; cycles found at publish (warned over HTTP, refused
//! when configured).

use chrono::Duration;
use serde_json::{json, Value};
use std::sync::Arc;
use switchboard::clock::FakeClock;
use switchboard::config::{Config, OnCycle};
use switchboard::executor::{Engine, Error};
use switchboard::store::{sled::SledStore, Durability, RunFilter, RunStore, TicketStore};
use switchboard::ticket::NewTicket;
use switchboard_tests::{write_config, Api, Server, ADMIN};

fn def(v: &Value) -> switchboard::workflow::Workflow {
    switchboard::workflow::validate_value(v).unwrap()
}

fn greeter(body: &str) -> Value {
    json!({"id": "greet", "name": "greet", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "pause", "type": "wait", "minutes": 60}, {"id": "say", "type": "comment", "body": body}]})
}

#[tokio::test]
async fn a_waiting_run_keeps_its_revision_and_rollback_publishes_an_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = FakeClock::new("2026-11-02T08:00:00Z".parse().unwrap());
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(Config::default())).unwrap();
    engine.put_workflow(def(&greeter("hello from revision 1")), "t").await.unwrap();
    let new = NewTicket { title: "A".into(), requester: "ann".into(), ..Default::default() };
    let t = engine.create_ticket(new, "ann").await.unwrap().ticket.id;
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    let (record, _) = engine.put_workflow(def(&greeter("hello from revision 2")), "t").await.unwrap();
    assert_eq!(record.revision, 2);
    clock.advance(Duration::minutes(60));
    engine.fire_due_timers().await.unwrap();
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        store.ticket(&t).await.unwrap().unwrap().comments[0].body,
        "hello from revision 1",
        "pinned to its revision"
    );

    let changes = engine.diff("greet", 1, 2).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].path.as_str(), changes[0].op), ("/steps/1/body", "changed"));
    let (rolled, changed) = engine.rollback("greet", 1, "t").await.unwrap();
    assert!(changed);
    assert_eq!(rolled.revision, 3);
    assert!(engine.diff("greet", 1, 3).await.unwrap().is_empty(), "revision 3 is revision 1 again");
    assert!(matches!(engine.rollback("greet", 9, "t").await, Err(Error::NotFound { .. })));
    let runs = store.runs(&RunFilter { workflow: Some("greet".into()), ..Default::default() }).await.unwrap();
    assert_eq!(runs[0].workflow_revision, 1);
}

#[tokio::test]
async fn cycles_are_refused_at_publish_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = FakeClock::new("2026-11-02T08:00:00Z".parse().unwrap());
    let config = Config { on_cycle: OnCycle::Refuse, ..Config::default() };
    let engine = Engine::new(store, Arc::new(clock), Arc::new(config)).unwrap();
    let a = json!({"id": "a", "name": "a", "triggers": [{"on": "ticket.updated", "changed": [{"field": "category"}]}],
        "steps": [{"id": "s", "type": "set", "fields": {"custom.flag": true}}]});
    let b = json!({"id": "b", "name": "b", "triggers": [{"on": "ticket.updated", "changed": [{"field": "custom.flag"}]}],
        "steps": [{"id": "s", "type": "set", "fields": {"category": "network"}}]});
    engine.put_workflow(def(&a), "t").await.unwrap();
    match engine.put_workflow(def(&b), "t").await {
        Err(Error::Invalid(errors)) => {
            assert_eq!(errors[0].0, "/triggers");
            assert!(errors[0].1.contains("b -> a -> b"), "{}", errors[0].1);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn over_http_publish_warns_about_cycles_and_diff_lists_changes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    let selfish = json!({"id": "tagger", "name": "t", "triggers": [{"on": "ticket.updated"}],
        "steps": [{"id": "s", "type": "set", "fields": {"tags": ["seen"]}}]});
    let out = api.post("/workflows", &selfish).await.unwrap();
    assert!(out["warnings"][0].as_str().unwrap().starts_with("cycle: tagger -> tagger"), "{out}");
    let mut v2 = selfish.clone();
    v2["steps"][0]["fields"]["tags"] = json!(["seen", "twice"]);
    api.post("/workflows", &v2).await.unwrap();
    let diff = api.get("/workflows/tagger/diff?from=1").await.unwrap();
    assert_eq!(diff["to"], 2);
    assert_eq!(diff["changes"][0]["path"], "/steps/0/fields/tags/1");
    assert_eq!(diff["changes"][0]["op"], "added");
    assert_eq!(api.get("/workflows/tagger/revisions").await.unwrap()["revisions"], json!([1, 2]));
    let rolled = api.post("/workflows/tagger/rollback", &json!({"revision": 1})).await.unwrap();
    assert_eq!(rolled["workflow"]["revision"], 3);
}

#[tokio::test]
async fn a_failed_run_is_retried_from_its_failed_step_after_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = FakeClock::new("2026-11-02T08:00:00Z".parse().unwrap());
    let engine = Engine::new(store.clone(), Arc::new(clock), Arc::new(Config::default())).unwrap();
    let group =
        switchboard::team::Group { id: "desk".into(), name: "Desk".into(), description: String::new(), manager: None };
    engine.put_group(group, "t").await.unwrap();
    let broken = json!({"id": "triage", "name": "t", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "note", "type": "comment", "body": "triaging"},
                  {"id": "assign", "type": "assign", "group": "dsek"},
                  {"id": "done", "type": "comment", "body": "assigned"}]});
    engine.put_workflow(def(&broken), "t").await.unwrap();
    let new = NewTicket { title: "A".into(), requester: "ann".into(), ..Default::default() };
    let t = engine.create_ticket(new, "ann").await.unwrap().ticket.id;
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    let failed =
        store.runs(&RunFilter { workflow: Some("triage".into()), ..Default::default() }).await.unwrap().remove(0);
    assert_eq!(failed.status, switchboard::run::RunStatus::Failed, "{:?}", failed.trace);
    let mut fixed = broken.clone();
    fixed["steps"][1]["group"] = json!("desk");
    engine.put_workflow(def(&fixed), "t").await.unwrap();
    let retry = engine.retry_run(&failed.id, "admin").await.unwrap();
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    let retry = store.run(&retry.id).await.unwrap().unwrap();
    assert_eq!(retry.status, switchboard::run::RunStatus::Completed, "{:?}", retry.trace);
    assert_eq!(retry.workflow_revision, 2);
    assert_eq!(retry.trace[0].detail["retry_of"], failed.id.as_str());
    let ticket = store.ticket(&t).await.unwrap().unwrap();
    assert_eq!(ticket.group.as_deref(), Some("desk"));
    let notes: Vec<&str> = ticket.comments.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(notes, ["triaging", "assigned"], "the step before the failure is not repeated");
    let old = store.run(&failed.id).await.unwrap().unwrap();
    assert_eq!(old.trace.last().unwrap().detail["retried_as"], retry.id.as_str());
    assert!(matches!(engine.retry_run(&retry.id, "admin").await, Err(Error::Conflict(_))), "only failed runs");
}

#[tokio::test]
async fn dry_run_reports_what_a_draft_would_do_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    api.post("/groups", &json!({"id": "network", "name": "Network"})).await.unwrap();
    let t = api
        .post("/tickets", &json!({"title": "Switch down", "requester": "ann", "category": "network"}))
        .await
        .unwrap();
    let id = t["ticket"]["id"].as_str().unwrap().to_string();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let draft = json!({"id": "draft", "name": "draft", "triggers": [{"on": "ticket.created"}],
    "conditions": {"field": "ticket.category", "op": "eq", "value": "network"},
    "steps": [
        {"id": "kb", "type": "plugin", "plugin": "kb-suggest", "action": "suggest", "input": {"title": "{{ticket.title}}"}},
        {"id": "tag", "type": "set", "fields": {"tags": ["network"], "group": "network"}},
        {"id": "tell", "type": "notify", "url": hook, "payload": {"article": "{{vars.kb.title}}"}},
        {"id": "big", "type": "if", "condition": {"field": "vars.kb.score", "op": "gt", "value": 0.5}, "then": "child", "else": "note"},
        {"id": "note", "type": "comment", "body": "low score", "next": "end"},
        {"id": "child", "type": "create_child", "ticket": {"title": "Check {{ticket.title}}", "kind": "task"}},
        {"id": "hold", "type": "wait", "minutes": 60}
    ]});
    let before = (
        api.get("/tickets").await.unwrap(),
        api.get("/runs").await.unwrap(),
        api.get(&format!("/tickets/{id}/history")).await.unwrap(),
    );
    let out = api
        .post(
            "/workflows/dry-run",
            &json!({"workflow": draft, "ticket": id,
            "plugin_outputs": {"kb": {"title": "Switch runbook", "score": 0.9}}}),
        )
        .await
        .unwrap();
    assert_eq!(out["matched"], true);
    assert_eq!(out["status"], "waiting", "stops at the wait");
    let fields: Vec<&str> = out["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["group", "tags"]);
    assert_eq!(out["notifications"][0]["body"]["article"], "Switch runbook");
    assert_eq!(out["plugin_calls"][0]["output_from"], "given");
    assert_eq!(out["children"][0]["title"], "Check Switch down");
    let after = (
        api.get("/tickets").await.unwrap(),
        api.get("/runs").await.unwrap(),
        api.get(&format!("/tickets/{id}/history")).await.unwrap(),
    );
    assert_eq!(before, after, "tickets, runs and history unchanged");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "no webhook sent");

    let other = api
        .post(
            "/workflows/dry-run",
            &json!({"workflow": draft, "ticket": {"title": "Printer", "requester": "bob", "category": "hardware"}}),
        )
        .await
        .unwrap();
    assert_eq!(other["matched"], false);
    assert!(other["reason"].as_str().unwrap().contains("saw \"hardware\""), "{other}");
    let (status, bad) =
        api.call("POST", "/workflows/dry-run", Some(&json!({"workflow": {"id": "x"}, "ticket": id}))).await.unwrap();
    assert_eq!(status, 422);
    assert!(bad["error"]["details"]["errors"][0]["pointer"].as_str().unwrap().starts_with("/workflow/"));
}

#[tokio::test]
async fn replay_compares_a_draft_with_what_happened_on_seeded_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = FakeClock::new("2026-11-02T08:00:00Z".parse().unwrap());
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(Config::default())).unwrap();
    // Published: tag network tickets.
    let v1 = json!({"id": "tagger", "name": "t", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.category", "op": "eq", "value": "network"},
        "steps": [{"id": "tag", "type": "set", "fields": {"tags": ["net"]}}]});
    engine.put_workflow(def(&v1), "t").await.unwrap();
    let mut ids = Vec::new();
    for (title, category) in [("switch", "network"), ("printer", "hardware"), ("vpn", "network")] {
        let new = NewTicket {
            title: title.into(),
            requester: "ann".into(),
            category: Some(category.into()),
            ..Default::default()
        };
        ids.push(engine.create_ticket(new, "ann").await.unwrap().ticket.id);
        clock.advance(Duration::hours(1));
    }
    while engine.runs_in_flight() > 0 {
        tokio::task::yield_now().await;
    }
    // Later, someone recategorises the printer ticket as network: replay must see it as logged.
    engine
        .update_ticket(&ids[1], &serde_json::from_value(json!({"category": "network"})).unwrap(), "bob")
        .await
        .unwrap();
    let initial = engine.ticket_at_creation(&ids[1]).await.unwrap().unwrap();
    assert_eq!(initial.category.as_deref(), Some("hardware"));

    // Draft: also hardware tickets, and a different tag.
    let draft = json!({"id": "tagger", "name": "t", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.category", "op": "in", "value": ["network", "hardware"]},
        "steps": [{"id": "tag", "type": "set", "fields": {"tags": ["net"]}}]});
    let out = engine.replay(&def(&draft), 7).await.unwrap();
    assert_eq!(out["tickets"], 3);
    let rows = out["rows"].as_array().unwrap();
    let by_ticket = |id: &str| rows.iter().find(|r| r["ticket"] == id).unwrap();
    assert_eq!(by_ticket(&ids[0])["differs"], false, "same as what happened");
    let printer = by_ticket(&ids[1]);
    assert_eq!(printer["differs"], true);
    assert_eq!(
        (printer["would"]["matched"].as_bool(), printer["happened"]["ran"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(printer["would"]["changed"], json!(["tags"]));
    assert_eq!((out["same"].as_u64(), out["differ"].as_u64()), (Some(2), Some(1)));
    let runs_before = store.runs(&RunFilter::default()).await.unwrap().len();
    let _ = engine.replay(&def(&draft), 7).await.unwrap();
    assert_eq!(store.runs(&RunFilter::default()).await.unwrap().len(), runs_before, "replay stores nothing");
}

#[tokio::test]
async fn drafts_are_tried_then_published() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    api.post("/workflows", &greeter("v1")).await.unwrap();
    let (status, saved) = api.call("PUT", "/workflows/greet/draft", Some(&greeter("v2 draft"))).await.unwrap();
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["changes_from_published"][0]["path"], "/steps/1/body");
    assert_eq!(api.get("/workflows/greet").await.unwrap()["revision"], 1, "a draft is not active");
    let tried = api
        .post("/workflows/dry-run", &json!({"draft": "greet", "ticket": {"title": "t", "requester": "ann"}}))
        .await
        .unwrap();
    assert_eq!(tried["status"], "waiting");
    let published = api.post("/workflows/greet/publish", &json!({})).await.unwrap();
    assert_eq!(published["workflow"]["revision"], 2);
    assert_eq!(published["workflow"]["definition"]["steps"][1]["body"], "v2 draft");
    let (status, _) = api.call("GET", "/workflows/greet/draft", None).await.unwrap();
    assert_eq!(status, 404, "the draft is gone once published");
}

/// Regression: replay compared only the *names* of changed fields (a route step changed
/// from `skills` to `least_loaded`, assigning bob instead of alice, was "same"; so was a
/// variant that no longer posts its reply) and replayed only `ticket.created` (a reopen
/// workflow found "no trigger fires" on every ticket). It compares values, comments,
/// notifications, plugin calls and children, for every recorded event a trigger fires on.
#[tokio::test]
async fn replay_compares_values_and_replays_every_trigger_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
    let clock = FakeClock::new("2026-11-02T08:00:00Z".parse().unwrap());
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()), Arc::new(Config::default())).unwrap();
    let group = switchboard::team::Group {
        id: "network".into(),
        name: "Network".into(),
        description: String::new(),
        manager: None,
    };
    engine.put_group(group, "t").await.unwrap();
    let mut alice = switchboard_tests::agent("alice", &["network"]);
    alice.skills = vec!["cisco".into()];
    engine.put_agent(alice, "t").await.unwrap();
    engine.put_agent(switchboard_tests::agent("bob", &["network"]), "t").await.unwrap();
    let settle = || async {
        while engine.runs_in_flight() > 0 {
            tokio::task::yield_now().await;
        }
    };
    let router = |strategy: &str, reply: bool| {
        let skills = if strategy == "skills" { json!(["cisco"]) } else { json!([]) };
        let mut steps =
            vec![json!({"id": "route", "type": "route", "group": "network", "strategy": strategy, "skills": skills})];
        if reply {
            steps.push(json!({"id": "reply", "type": "comment", "internal": false, "body": "We are on it"}));
        }
        json!({"id": "router", "name": "router", "triggers": [{"on": "ticket.created"}],
            "conditions": {"field": "ticket.category", "op": "eq", "value": "network"}, "steps": steps})
    };
    engine.put_workflow(def(&router("skills", true)), "t").await.unwrap();
    let reopen = json!({"id": "reopen", "name": "reopen",
        "triggers": [{"on": "ticket.updated", "changed": [{"field": "status", "from": "resolved", "to": "reopened"}]}],
        "steps": [{"id": "note", "type": "comment", "body": "Reopened (was {{previous.status}})"}]});
    engine.put_workflow(def(&reopen), "t").await.unwrap();
    let new = |title: &str| NewTicket {
        title: title.into(),
        requester: "ann".into(),
        category: Some("network".into()),
        ..Default::default()
    };
    engine.create_ticket(new("earlier"), "ann").await.unwrap();
    settle().await;
    let t = engine.create_ticket(new("switch down"), "ann").await.unwrap().ticket.id;
    settle().await;
    let patch = |v: Value| serde_json::from_value::<serde_json::Map<String, Value>>(v).unwrap();
    engine.update_ticket(&t, &patch(json!({"status": "resolved"})), "alice").await.unwrap();
    engine.update_ticket(&t, &patch(json!({"status": "reopened"})), "ann").await.unwrap();
    settle().await;
    assert_eq!(store.ticket(&t).await.unwrap().unwrap().assignee.as_deref(), Some("alice"), "skills chose alice");

    // The draft routes to the least loaded (bob: alice has both tickets) and posts no reply.
    let out = engine.replay(&def(&router("least_loaded", false)), 7).await.unwrap();
    let row = out["rows"].as_array().unwrap().iter().find(|r| r["ticket"] == t).unwrap().clone();
    assert_eq!(row["differs"], true, "{row}");
    let differences = row["differences"].as_array().unwrap();
    assert!(differences.contains(&json!({"what": "changes.assignee", "would": "bob", "happened": "alice"})), "{row}");
    assert!(
        differences.contains(&json!({"what": "comments", "would": [], "happened": [[false, "We are on it"]]})),
        "{differences:?}"
    );
    // The published definition replays as what happened.
    let out = engine.replay(&def(&router("skills", true)), 7).await.unwrap();
    assert_eq!(out["differ"], 0, "{out}");

    // The reopen workflow replays the update that reopened the ticket, on the ticket as
    // that event left it, and matches what happened (its note included).
    let out = engine.replay(&def(&reopen), 7).await.unwrap();
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "only the reopening fires its trigger: {out}");
    assert_eq!(
        (rows[0]["trigger"].as_str(), rows[0]["would"]["matched"].as_bool()),
        (Some("ticket.updated"), Some(true))
    );
    assert_eq!(rows[0]["differs"], false, "{}", rows[0]);
    assert_eq!(rows[0]["would"]["effects"]["comments"], json!([[true, "Reopened (was resolved)"]]));
    engine.shutdown().await;
}
