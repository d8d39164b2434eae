//! The loop guard over a real server: one originating event has a budget for its whole
//! causation tree (runs started, ticket changes), refusals are recorded once per
//! workflow, a `set` to the value a field already has is no change and raises no event,
//! and the run page shows the tree.

use serde_json::{json, Value};
use std::time::Duration;
use switchboard_tests::Stand;

/// A server, with the helpers below.
struct Fixture(Stand);

impl std::ops::Deref for Fixture {
    type Target = Stand;
    fn deref(&self) -> &Stand {
        &self.0
    }
}

async fn start(extra_config: &str) -> Fixture {
    Fixture(Stand::start(extra_config).unwrap())
}

/// A workflow that sets `custom.<field>` to `value` on every update (or on a change
/// of `watch`).
fn setter(id: &str, field: &str, value: &str, watch: Option<&str>) -> Value {
    let trigger = match watch {
        Some(w) => json!({"on": "ticket.updated", "changed": [{"field": w}]}),
        None => json!({"on": "ticket.updated"}),
    };
    json!({
        "id": id, "name": id,
        "triggers": [trigger],
        "steps": [{"id": "touch", "type": "set", "fields": {format!("custom.{field}"): value}}]
    })
}

impl Fixture {
    /// Publishes the workflows, creates a ticket, PATCHes it once and waits until
    /// everything that edit set off is done. Returns the ticket id and the edit's event.
    async fn one_edit(&self, workflows: &[Value]) -> (String, String) {
        for wf in workflows {
            self.admin.post("/workflows", wf).await.unwrap();
        }
        let t = self.agent.post("/tickets", &json!({"title": "x", "requester": "r"})).await.unwrap();
        let id = t["ticket"]["id"].as_str().unwrap().to_string();
        let (status, out) =
            self.agent.call("PATCH", &format!("/tickets/{id}"), Some(&json!({"category": "loop"}))).await.unwrap();
        assert_eq!(status, 200, "{out}");
        self.agent.wait_idle(Duration::from_secs(30)).await.unwrap();
        (id, out["event"].as_str().unwrap().to_string())
    }

    async fn runs(&self, ticket: &str) -> Vec<Value> {
        let runs = self.agent.get(&format!("/runs?ticket={ticket}&limit=1000")).await.unwrap();
        runs["runs"].as_array().unwrap().clone()
    }

    /// (started, refused) runs of the ticket, skipping the runs of its creation.
    async fn counts(&self, ticket: &str) -> (usize, usize, Vec<Value>) {
        let runs: Vec<Value> =
            self.runs(ticket).await.into_iter().filter(|r| r["event_type"] != "ticket.created").collect();
        let refused: Vec<Value> = runs.iter().filter(|r| r["status"] == "refused").cloned().collect();
        (runs.len() - refused.len(), refused.len(), refused)
    }

    async fn history_len(&self, ticket: &str) -> usize {
        let h = self.agent.get(&format!("/tickets/{ticket}/history")).await.unwrap();
        h["history"].as_array().or_else(|| h.as_array()).map_or(0, Vec::len)
    }
}

/// Only the tree budget acts here: the per-workflow depth and chain length are high.
const BUDGET_ONLY: &str = "loop_depth = 1000\nmax_chain = 1000\nmax_tree_runs = 25\nmax_tree_changes = 1000";

/// Regression: `ping` and `pong` each set a changing field on every update; one PATCH
/// made 138 runs (70 of them refused) and 70 history rows. Now the edit's tree starts
/// 25 runs and records one refusal per workflow.
#[tokio::test]
async fn ping_pong_is_bounded_by_the_tree_budget_with_one_refusal_per_workflow() {
    let f = start(BUDGET_ONLY).await;
    let (id, origin) =
        f.one_edit(&[setter("ping", "ping", "{{run.id}}", None), setter("pong", "pong", "{{run.id}}", None)]).await;
    let (started, refused, refusals) = f.counts(&id).await;
    assert_eq!((started, refused), (25, 2), "{refusals:?}");
    let mut who: Vec<&str> = refusals.iter().map(|r| r["workflow_id"].as_str().unwrap()).collect();
    who.sort_unstable();
    assert_eq!(who, ["ping", "pong"]);
    let reason = refusals[0]["error"].as_str().unwrap();
    assert!(reason.contains("25 runs") && reason.contains("max_tree_runs"), "{reason}");
    // The originating event is named: the PATCH's event.
    assert!(reason.contains(&format!("event {origin} ")), "{reason} names {origin}");
    // The PATCH's change, plus one per started run (each sets a new value).
    assert_eq!(f.history_len(&id).await, 1 + 1 + 25);
}

/// Constant values: the second round re-sets what is already there, which changes
/// nothing and raises nothing, so the ping-pong ends by itself.
#[tokio::test]
async fn a_set_to_the_current_value_is_no_change_and_ends_a_ping_pong() {
    let f = start("").await;
    let (id, _) = f.one_edit(&[setter("ping", "ping", "on", None), setter("pong", "pong", "on", None)]).await;
    let (started, refused, _) = f.counts(&id).await;
    // PATCH -> ping, pong (each a change) -> 2 events x 2 workflows, all no-ops.
    assert_eq!((started, refused), (6, 0));
    let events = f.agent.get(&format!("/tickets/{id}/events")).await.unwrap();
    let updates = events["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "ticket.updated").count();
    assert_eq!(updates, 3, "the PATCH and the two real changes; no event for a no-op");
}

/// A ring of three (a -> b -> c -> a), each watching the previous one's field.
#[tokio::test]
async fn a_three_workflow_ring_is_bounded_by_the_tree_budget() {
    let f = start(BUDGET_ONLY).await;
    let (id, _) = f
        .one_edit(&[
            setter("ring-a", "a", "{{run.id}}", Some("category")),
            setter("ring-a2", "a", "{{run.id}}", Some("custom.c")),
            setter("ring-b", "b", "{{run.id}}", Some("custom.a")),
            setter("ring-c", "c", "{{run.id}}", Some("custom.b")),
        ])
        .await;
    let (started, refused, refusals) = f.counts(&id).await;
    assert_eq!((started, refused), (25, 1), "one chain: the 26th run is refused, once");
    // a, b, c, a2, b, c, ...: the 26th would have been ring-b (25 = 1 + 3*8).
    assert_eq!(refusals[0]["workflow_id"], "ring-b");
}

/// A workflow that re-triggers itself with a changing value, bounded by the change
/// budget: each run makes 3 changes; past 10 changes the tree starts nothing more.
#[tokio::test]
async fn a_self_retriggering_workflow_is_bounded_by_the_change_budget() {
    let f = start("loop_depth = 1000\nmax_chain = 1000\nmax_tree_runs = 1000\nmax_tree_changes = 10").await;
    let wf = json!({
        "id": "churn", "name": "churn",
        "triggers": [{"on": "ticket.updated"}],
        "steps": [{"id": "touch", "type": "set",
                   "fields": {"custom.x": "x{{run.id}}", "custom.y": "y{{run.id}}", "custom.z": "z{{run.id}}"}}]
    });
    let (id, _) = f.one_edit(&[wf]).await;
    let (started, refused, refusals) = f.counts(&id).await;
    // Changes before each run: 0, 3, 6, 9 (< 10: runs), then 12: refused.
    assert_eq!((started, refused), (4, 1));
    let reason = refusals[0]["error"].as_str().unwrap();
    assert!(reason.contains("max_tree_changes"), "{reason}");
    // The run page shows the tree and where it stopped.
    let run = f.agent.get(&format!("/runs/{}", refusals[0]["id"].as_str().unwrap())).await.unwrap();
    let tree = &run["tree"];
    assert_eq!(tree["origin"]["kind"], "ticket.updated", "{tree}");
    let mut depth = 0;
    let mut node = &tree["origin"];
    while let Some(next) = node["runs"].as_array().and_then(|r| r.first()) {
        depth += 1;
        if next["status"] == "refused" {
            assert_eq!(next["run"], refusals[0]["id"]);
            assert!(next["reason"].as_str().unwrap().contains("max_tree_changes"));
            break;
        }
        node = &next["events"][0];
    }
    assert_eq!(depth, 5, "four runs, then the refusal: {tree}");
    // explain shows the same tree for the ticket.
    let explain = f.agent.get(&format!("/tickets/{id}/explain")).await.unwrap();
    assert!(explain["trees"].as_array().is_some_and(|t| !t.is_empty()), "{explain}");
}

/// The depth guard still works, and its refusals are recorded once per workflow too.
#[tokio::test]
async fn the_depth_guard_refuses_once_per_workflow() {
    let f = start("loop_depth = 3").await;
    let (id, _) =
        f.one_edit(&[setter("ping", "ping", "{{run.id}}", None), setter("pong", "pong", "{{run.id}}", None)]).await;
    let (_, refused, refusals) = f.counts(&id).await;
    assert_eq!(refused, 2, "{refusals:?}");
}
