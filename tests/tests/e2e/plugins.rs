//! WebAssembly plugins end to end: real modules built from `plugins/` with the SDK,
//! installed into a real server, called from workflows and directly. The hostile
//! plugin attacks the sandbox one way per action; each attack must fail only its own
//! call, with a clear error, and leave the server healthy.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::{routing::get, Json, Router};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_tests::{
    binary, plugin_wasm, repo, write_config, Api, Server, Slapd, ADMIN, LDAP_ADMIN_DN, LDAP_ADMIN_PW,
};

const KB_TOKEN: &str = "kb-secret-token-never-in-plugin-memory";

type Seen = Arc<Mutex<Vec<String>>>;

async fn token(State(seen): State<Seen>, body: String) -> Json<Value> {
    seen.lock().unwrap().push(format!("token-request {body}"));
    Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "oauth-access-token-1"}))
}

async fn article(State(seen): State<Seen>, headers: HeaderMap, Path(id): Path<String>) -> impl IntoResponse {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    seen.lock().unwrap().push(auth.clone());
    if id == "FLAKY" && seen.lock().unwrap().iter().filter(|s| s.starts_with("Bearer")).count() == 1 {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "try again"})));
    }
    if auth != format!("Bearer {KB_TOKEN}") && auth != "Bearer oauth-access-token-1" {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "no token"})));
    }
    (StatusCode::OK, Json(json!({"id": id, "title": format!("Article {id}")})))
}

/// A knowledge-base server on loopback, plus a second origin for off-list redirects.
async fn kb_server() -> (u16, u16, Seen) {
    let seen: Seen = Arc::default();
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = other.local_addr().unwrap().port();
    tokio::spawn(
        async move { axum::serve(other, Router::new().route("/x", get(|| async { "elsewhere" }))).await.unwrap() },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/articles/{id}", get(article))
        .route("/token", axum::routing::post(token))
        .route("/redirect-on", get(|| async { Redirect::temporary("/articles/KB0002") }))
        .route(
            "/redirect-off",
            get(move || async move { Redirect::temporary(&format!("http://127.0.0.1:{other_port}/x")) }),
        )
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, other_port, seen)
}

struct Fixture {
    _slapd: Slapd,
    _dir: tempfile::TempDir,
    _server: Server,
    admin: Api,
    kb_port: u16,
    other_port: u16,
    seen: Seen,
}

async fn start() -> Fixture {
    let (kb_port, other_port, seen) = kb_server().await;
    let slapd = Slapd::start().unwrap();
    let ldap_url = slapd.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[plugins]
timeout_ms = 400
memory_mb = 32
max_output_bytes = 65536
max_log_lines = 50

[connections.kb]
base_url = "http://127.0.0.1:{kb_port}"
allow_private = true
auth = {{ type = "bearer", token = "{KB_TOKEN}" }}

[connections.kb-strict]
base_url = "http://127.0.0.1:{kb_port}"

[connections.metadata]
base_url = "http://169.254.169.254"
allow_private = true

[connections.oauth]
base_url = "http://127.0.0.1:{kb_port}"
allow_private = true
auth = {{ type = "oauth2", token_url = "http://127.0.0.1:{kb_port}/token", client_id = "switchboard", client_secret = "client-secret-xyz", scope = "kb/.default" }}

[directories.corp]
url = "{ldap_url}"
bind_dn = "{LDAP_ADMIN_DN}"
bind_password = "{LDAP_ADMIN_PW}"
base_dn = "dc=example,dc=com"
allow_private = true

[directories.corp-strict]
url = "{ldap_url}"
bind_dn = "{LDAP_ADMIN_DN}"
bind_password = "{LDAP_ADMIN_PW}"
base_dn = "dc=example,dc=com"
"#
    );
    let config = write_config(dir.path(), &extra).unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let admin = Api::new(&server.url, ADMIN);
    Fixture { _slapd: slapd, _dir: dir, _server: server, admin, kb_port, other_port, seen }
}

async fn install(api: &Api, name: &str) -> Value {
    let bytes = std::fs::read(plugin_wasm(name)).unwrap();
    let (status, body) = api.raw("POST", "/plugins", bytes).await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test]
async fn a_plugin_built_with_the_sdk_is_installed_by_the_cli_and_called_from_a_workflow() {
    let f = start().await;
    let wasm = plugin_wasm("kb-suggest");
    let out = Command::new(binary())
        .args(["install", wasm.to_str().unwrap(), "--server", &f.admin.url, "--token", ADMIN])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wf: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("workflows/suggest-article.json")).unwrap()).unwrap();
    f.admin.post("/workflows", &wf).await.unwrap();

    let t = f
        .admin
        .post("/tickets", &json!({"title": "VPN does not connect from home", "requester": "ann"}))
        .await
        .unwrap();
    let id = t["ticket"]["id"].as_str().unwrap().to_string();
    f.admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    let ticket = f.admin.get(&format!("/tickets/{id}")).await.unwrap();
    let reply = &ticket["comments"][0];
    assert_eq!(reply["internal"], false);
    assert!(reply["body"].as_str().unwrap().contains("KB0002"), "{reply}");

    let run = f.admin.get(&format!("/runs/{}", t["runs"][0].as_str().unwrap())).await.unwrap();
    let step = run["trace"].as_array().unwrap().iter().find(|e| e["step"] == "suggest").unwrap();
    assert_eq!(step["detail"]["plugin"], "kb-suggest");
    assert_eq!(step["detail"]["version"], "1.0.0");
    assert!(step["detail"]["logs"][0].as_str().unwrap().contains("matched KB0002"), "{step}");

    // Input that breaks the action's schema fails the step with the location.
    let (status, body) =
        f.admin.call("POST", "/plugins/kb-suggest/actions/suggest", Some(&json!({"title": 5}))).await.unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("/title"), "{body}");
}

#[tokio::test]
async fn plugin_http_uses_granted_connections_and_the_host_adds_the_credentials() {
    let f = start().await;
    install(&f.admin, "kb-suggest").await;
    // Not granted yet: refused.
    let (status, body) =
        f.admin.call("POST", "/plugins/kb-suggest/actions/fetch", Some(&json!({"id": "KB0002"}))).await.unwrap();
    assert_eq!(status, 502);
    assert_eq!(body["error"]["details"]["code"], "denied", "{body}");
    assert!(f.seen.lock().unwrap().is_empty(), "nothing was sent");

    f.admin.call("PUT", "/plugins/kb-suggest/grants", Some(&json!({"connections": ["kb"]}))).await.unwrap();
    let out = f.admin.post("/plugins/kb-suggest/actions/fetch", &json!({"id": "KB0002"})).await.unwrap();
    assert_eq!(out["output"], json!({"id": "KB0002", "title": "Article KB0002"}));
    assert_eq!(f.seen.lock().unwrap().as_slice(), [format!("Bearer {KB_TOKEN}")]);
    assert!(!out.to_string().contains(KB_TOKEN), "the secret never reaches the plugin's output");

    // Granting a connection the server does not have is refused.
    let (status, _) =
        f.admin.call("PUT", "/plugins/kb-suggest/grants", Some(&json!({"connections": ["nope"]}))).await.unwrap();
    assert_eq!(status, 422);
}

async fn attack(api: &Api, action: &str, input: Value) -> (u16, Value) {
    api.call("POST", &format!("/plugins/hostile/actions/{action}"), Some(&input)).await.unwrap()
}

fn failed_with(result: &(u16, Value), code: &str) {
    assert_eq!(result.0, 502, "{}", result.1);
    assert_eq!(result.1["error"]["details"]["code"], code, "{}", result.1);
}

#[tokio::test]
async fn hostile_plugin_attacks_fail_only_their_own_call() {
    let f = start().await;
    install(&f.admin, "hostile").await;
    f.admin
        .call("PUT", "/plugins/hostile/grants", Some(&json!({"connections": ["kb", "kb-strict", "metadata"]})))
        .await
        .unwrap();

    // Infinite loop: the deadline stops it; a sibling call is not held up.
    let spinner = {
        let api = f.admin.clone();
        tokio::spawn(async move { attack(&api, "spin", json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let sibling = attack(&f.admin, "ok", json!({})).await;
    assert_eq!(sibling.0, 200, "{}", sibling.1);
    assert!(started.elapsed() < Duration::from_millis(350), "sibling waited {:?}", started.elapsed());
    let spun = spinner.await.unwrap();
    failed_with(&spun, "timeout");

    failed_with(&attack(&f.admin, "grow_memory", json!({})).await, "memory_limit");
    let deep = attack(&f.admin, "recurse", json!({})).await;
    assert_eq!(deep.0, 502);
    assert!(["stack_overflow", "trap"].contains(&deep.1["error"]["details"]["code"].as_str().unwrap()), "{}", deep.1);
    failed_with(&attack(&f.admin, "huge_output", json!({})).await, "output_too_large");
    let panicked = attack(&f.admin, "panic", json!({})).await;
    failed_with(&panicked, "trap");
    assert!(panicked.1.to_string().contains("panics on purpose"), "the panic message is in the logs: {}", panicked.1);

    // Log flood: the call succeeds, the logs are capped and say so.
    let flood = attack(&f.admin, "log_flood", json!({})).await;
    assert_eq!(flood.0, 200, "{}", flood.1);
    let logs = flood.1["logs"].as_array().unwrap();
    assert!(logs.len() <= 51, "{} log lines kept", logs.len());
    assert!(logs.last().unwrap().as_str().unwrap().contains("dropped"));

    // WASI: no files, no environment, no arguments.
    let probe = attack(&f.admin, "wasi_probe", json!({})).await;
    assert_eq!(probe.1["output"], json!({"passwd": false, "cwd": false, "env": 0, "args": 0}));

    // HTTP: only granted connections, only their origin, no loopback/link-local unless allowed.
    let req = |connection: &str, path: &str| json!({"connection": connection, "method": "GET", "path": path});
    let cases = [
        (req("not-granted", "/articles/A"), "not granted"),
        (req("kb-strict", "/articles/A"), "loopback"),
        (req("metadata", "/latest/meta-data/"), "link-local"),
        (req("kb", &format!("http://127.0.0.1:{}/x", f.other_port)), "off the allow-list"),
        (req("kb", "http://169.254.169.254/latest/meta-data/"), "off the allow-list"),
        (req("kb", "/redirect-off"), "redirect"),
    ];
    for (input, needle) in cases {
        let r = attack(&f.admin, "http", input.clone()).await;
        failed_with(&r, "denied");
        assert!(r.1["error"]["message"].as_str().unwrap().contains(needle), "{input}: {}", r.1);
    }
    let followed = attack(&f.admin, "http", req("kb", "/redirect-on")).await;
    assert_eq!(followed.1["output"]["status"], 200, "same-origin redirects are followed: {}", followed.1);
    assert!(f.kb_port > 0);

    // A fresh instance per call: nothing survives from the previous call.
    assert_eq!(attack(&f.admin, "remember", json!({})).await.0, 200);
    assert_eq!(attack(&f.admin, "recall", json!({})).await.1["output"], json!({"secret": 0}));

    // The engine is healthy and the plugin still works.
    assert_eq!(f.admin.get("/health").await.unwrap()["status"], "ok");
    assert_eq!(attack(&f.admin, "ok", json!({})).await.1["output"], json!({"ok": true}));
}

#[tokio::test]
async fn oauth2_tokens_are_fetched_once_and_retryable_plugin_errors_are_retried_in_workflows() {
    let f = start().await;
    install(&f.admin, "kb-suggest").await;
    // The plugin asks for connection `kb`; point that grant at an OAuth2 connection by
    // granting both and calling through the hostile passthrough instead.
    install(&f.admin, "hostile").await;
    f.admin.call("PUT", "/plugins/hostile/grants", Some(&json!({"connections": ["oauth"]}))).await.unwrap();
    for _ in 0..2 {
        let r =
            attack(&f.admin, "http", json!({"connection": "oauth", "method": "GET", "path": "/articles/KB1"})).await;
        assert_eq!(r.1["output"]["status"], 200, "{}", r.1);
    }
    let seen = f.seen.lock().unwrap().clone();
    let token_requests: Vec<&String> = seen.iter().filter(|s| s.starts_with("token-request")).collect();
    assert_eq!(token_requests.len(), 1, "token fetched once and cached: {seen:?}");
    assert!(
        token_requests[0].contains("grant_type=client_credentials")
            && token_requests[0].contains("client_id=switchboard")
    );
    assert_eq!(seen.iter().filter(|s| *s == "Bearer oauth-access-token-1").count(), 2);

    // A plugin step whose plugin reports a retryable error is retried with backoff.
    f.admin.call("PUT", "/plugins/kb-suggest/grants", Some(&json!({"connections": ["kb"]}))).await.unwrap();
    f.seen.lock().unwrap().clear();
    let wf = json!({"id": "fetch", "name": "Fetch", "triggers": [{"on": "manual"}],
        "steps": [{"id": "get", "type": "plugin", "plugin": "kb-suggest", "action": "fetch", "input": {"id": "FLAKY"}, "retries": 2, "backoff_ms": 750}]});
    f.admin.post("/workflows", &wf).await.unwrap();
    let t = f.admin.post("/tickets", &json!({"title": "x", "requester": "r"})).await.unwrap();
    let started = f.admin.post("/workflows/fetch/runs", &json!({"ticket": t["ticket"]["id"]})).await.unwrap();
    f.admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    let run = f.admin.get(&format!("/runs/{}", started["runs"][0].as_str().unwrap())).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    let step = run["trace"].as_array().unwrap().iter().find(|e| e["step"] == "get").unwrap();
    assert_eq!(step["detail"]["attempts"], 2, "{step}");
    assert_eq!(step["detail"]["waits_ms"], json!([750]), "the step's own backoff: {step}");
    assert_eq!(run["vars"]["get"]["id"], "FLAKY");

    // Disabled plugins cannot be called.
    f.admin.post("/plugins/kb-suggest/disable", &json!({})).await.unwrap();
    let (status, _) =
        f.admin.call("POST", "/plugins/kb-suggest/actions/suggest", Some(&json!({"title": "x"}))).await.unwrap();
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_hostile_step_in_a_workflow_fails_its_run_with_the_reason_in_the_trace() {
    let f = start().await;
    install(&f.admin, "hostile").await;
    let wf = json!({"id": "bad", "name": "Calls a spinning plugin", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "spin", "type": "plugin", "plugin": "hostile", "action": "spin", "input": {}},
                  {"id": "after", "type": "comment", "body": "never"}]});
    f.admin.post("/workflows", &wf).await.unwrap();
    let t = f.admin.post("/tickets", &json!({"title": "x", "requester": "r"})).await.unwrap();
    f.admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    let run = f.admin.get(&format!("/runs/{}", t["runs"][0].as_str().unwrap())).await.unwrap();
    assert_eq!(run["status"], "failed");
    assert!(run["error"].as_str().unwrap().contains("timeout"), "{run}");
    let step = run["trace"].as_array().unwrap().iter().find(|e| e["step"] == "spin").unwrap();
    assert_eq!(step["outcome"], "failed");
    assert_eq!(step["detail"]["code"], "timeout");
    let ticket = f.admin.get(&format!("/tickets/{}", t["ticket"]["id"].as_str().unwrap())).await.unwrap();
    assert_eq!(ticket["comments"], json!([]), "no step after the failure ran");
    assert_eq!(f.admin.get("/health").await.unwrap()["status"], "ok");
}

#[tokio::test]
async fn plugin_ldap_goes_through_granted_directories_and_the_host_binds() {
    let f = start().await;
    install(&f.admin, "hostile").await;
    let ldap = |req: Value| {
        let api = f.admin.clone();
        async move { attack(&api, "ldap", req).await }
    };
    let search =
        json!({"op": "search", "connection": "corp", "base": "", "filter": "(uid=jdoe)", "attrs": ["mail", "cn"]});
    // Not granted yet.
    failed_with(&ldap(search.clone()).await, "denied");
    f.admin
        .call("PUT", "/plugins/hostile/grants", Some(&json!({"connections": ["corp", "corp-strict"]})))
        .await
        .unwrap();

    let found = ldap(search).await;
    assert_eq!(found.0, 200, "{}", found.1);
    let entry = &found.1["output"]["entries"][0];
    assert_eq!(entry["dn"], "uid=jdoe,ou=people,dc=example,dc=com");
    assert_eq!(entry["attrs"]["mail"], json!(["jdoe@example.com"]));

    let add_member = json!({"op": "modify", "connection": "corp", "dn": "cn=vpn,dc=example,dc=com",
        "changes": [{"op": "add", "attr": "member", "values": ["uid=jdoe,ou=people,dc=example,dc=com"]}]});
    assert_eq!(ldap(add_member.clone()).await.1["output"]["code"], 0);
    // OpenLDAP answers 20 (attributeOrValueExists) for a second add; the plugin sees the code.
    assert_eq!(ldap(add_member).await.1["output"]["code"], 20);
    let compare = json!({"op": "compare", "connection": "corp", "dn": "cn=vpn,dc=example,dc=com", "attr": "member", "value": "uid=jdoe,ou=people,dc=example,dc=com"});
    assert_eq!(ldap(compare).await.1["output"]["matched"], true);

    // A directory on loopback without allow_private is refused by the host.
    let strict = ldap(json!({"op": "search", "connection": "corp-strict", "filter": "(uid=*)"})).await;
    failed_with(&strict, "denied");
    assert!(strict.1["error"]["message"].as_str().unwrap().contains("loopback"), "{}", strict.1);
    assert!(!found.1.to_string().contains(LDAP_ADMIN_PW), "the bind password never reaches the plugin");
}
