//! Faults under load: an outbound endpoint and a plugin that hang must stall only their
//! own runs. The server has 2 workers and a dozen runs stuck on the outside world; runs
//! of other workflows (one of them calling a plugin) must still complete while those
//! are stuck, and the stuck ones must finish once the outside world answers.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_tests::{plugin_wasm, write_config, Api, Server, ADMIN};

/// Holds every request until `release` is notified; counts arrivals.
#[derive(Default)]
struct Gate {
    arrived: AtomicUsize,
    open: tokio::sync::Notify,
    opened: std::sync::atomic::AtomicBool,
}

async fn held(State(gate): State<Arc<Gate>>) -> axum::Json<Value> {
    gate.arrived.fetch_add(1, Ordering::SeqCst);
    while !gate.opened.load(Ordering::SeqCst) {
        let notified = gate.open.notified();
        if gate.opened.load(Ordering::SeqCst) {
            break;
        }
        notified.await;
    }
    axum::Json(json!({"id": "KB9", "title": "late"}))
}

fn workflow(id: &str, tag: &str, steps: Value) -> Value {
    json!({"id": id, "name": id, "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.tags", "op": "contains", "value": tag}, "steps": steps})
}

async fn runs_with(api: &Api, workflow: &str, status: &str) -> usize {
    let v = api.get(&format!("/runs?workflow={workflow}&status={status}&limit=1000")).await.unwrap();
    v["runs"].as_array().unwrap().len()
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_endpoint_and_plugin_stall_only_their_own_runs() {
    let gate = Arc::new(Gate::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/hook", post(held)).route("/articles/{id}", get(held)).with_state(gate.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"workers = 2
notify_timeout_ms = 60000
notify_attempts = 1

[plugins]
timeout_ms = 60000

[connections.kb]
base_url = "http://127.0.0.1:{port}"
allow_private = true
timeout_ms = 60000
"#
    );
    let config = write_config(dir.path(), &extra).unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    let wasm = std::fs::read(plugin_wasm("kb-suggest")).unwrap();
    assert_eq!(api.raw("POST", "/plugins", wasm).await.unwrap().0, 201);
    api.call("PUT", "/plugins/kb-suggest/grants", Some(&json!({"connections": ["kb"]}))).await.unwrap();

    let hook = format!("http://127.0.0.1:{port}/hook");
    for wf in [
        workflow("slow-notify", "hang-notify", json!([{"id": "tell", "type": "notify", "url": hook}])),
        workflow(
            "slow-plugin",
            "hang-plugin",
            json!([{"id": "fetch", "type": "plugin", "plugin": "kb-suggest", "action": "fetch", "input": {"id": "KB9"}, "retries": 0}]),
        ),
        workflow(
            "fast",
            "fast",
            json!([
                {"id": "mark", "type": "set", "fields": {"custom.done": true}},
                {"id": "suggest", "type": "plugin", "plugin": "kb-suggest", "action": "suggest", "input": {"title": "{{ticket.title}}"}},
                {"id": "note", "type": "comment", "body": "score {{vars.suggest.score}}"}
            ]),
        ),
    ] {
        api.post("/workflows", &wf).await.unwrap();
    }

    let ticket = |tag: &str, n: usize| json!({"title": format!("printer jam {n}"), "requester": "ann", "tags": [tag]});
    for n in 0..6 {
        api.post("/tickets", &ticket("hang-notify", n)).await.unwrap();
        api.post("/tickets", &ticket("hang-plugin", n)).await.unwrap();
    }
    // Twelve runs are now stuck on the outside world: six times the workers.
    until("12 requests held", async || gate.arrived.load(Ordering::SeqCst) == 12).await;

    for n in 0..40 {
        api.post("/tickets", &ticket("fast", n)).await.unwrap();
    }
    until("40 fast runs completed", async || runs_with(&api, "fast", "completed").await == 40).await;
    // A run is `pending` until its first step commits, `running` after.
    for wf in ["slow-notify", "slow-plugin"] {
        let active = runs_with(&api, wf, "pending").await + runs_with(&api, wf, "running").await;
        assert_eq!(active, 6, "{wf} runs still stuck");
    }

    gate.opened.store(true, Ordering::SeqCst);
    gate.open.notify_waiters();
    api.wait_idle(Duration::from_secs(60)).await.unwrap();
    assert_eq!(runs_with(&api, "slow-notify", "completed").await, 6);
    assert_eq!(runs_with(&api, "slow-plugin", "completed").await, 6);
}
