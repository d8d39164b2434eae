//! Hardening against hostile integrators and clients, over a real server on loopback:
//! who may replace a plugin, what a plugin may cost (compile, schemas, key-value store,
//! its share of the pool, its host calls' time and size), and where its requests may go.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_tests::{plugin_wasm, write_config, Api, Server, ADMIN, AGENT, INTEGRATOR};

const API_SECRET: &str = "api-connection-secret-9876";

/// A hand-written plugin: `manifest` in its custom section, one action per name in
/// the manifest, each answering `{"v": "<version>"}`; `functions` extra empty functions.
fn wat_plugin(manifest: &Value, functions: usize) -> Vec<u8> {
    let text = manifest.to_string().replace('\\', "\\\\").replace('"', "\\\"");
    let version = manifest["version"].as_str().unwrap_or("?");
    let answer = format!("{{\\\"v\\\":\\\"{version}\\\"}}");
    let len = version.len() + 8;
    let extra: String = (0..functions).map(|i| format!("(func $f{i})")).collect();
    let wat = format!(
        r#"(module
            (@custom "switchboard-manifest" "{text}")
            (import "switchboard" "output" (func $output (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "{answer}")
            (func (export "__switchboard_abi_1"))
            {extra}
            (func (export "switchboard_invoke") (param i32 i32) (result i32)
              (drop (call $output (i32.const 0) (i32.const {len}))) (i32.const 0)))"#
    );
    wat::parse_str(wat).unwrap()
}

fn manifest(id: &str, version: &str, capabilities: &[&str]) -> Value {
    json!({"id": id, "version": version, "abi": 1, "actions": [{"name": "go", "capabilities": capabilities}]})
}

/// What the API server behind the `api` connection saw: path and authorization.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn record(State(seen): State<Seen>, uri: Uri, headers: HeaderMap) -> impl IntoResponse {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    seen.lock().unwrap().push((uri.path().to_string(), auth));
    match uri.path() {
        "/api/redir" => Redirect::temporary("/secret").into_response(),
        "/api/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late".into_response()
        }
        "/api/huge" => {
            // 64 MiB, streamed in 64 KiB chunks, without a length up front.
            let chunk = axum::body::Bytes::from(vec![b'x'; 64 << 10]);
            let stream = futures_stream(chunk, 1024);
            axum::body::Body::from_stream(stream).into_response()
        }
        _ => (StatusCode::OK, axum::Json(json!({"path": uri.path()}))).into_response(),
    }
}

fn futures_stream(
    chunk: axum::body::Bytes,
    n: usize,
) -> impl futures_core::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    struct Repeat(axum::body::Bytes, usize);
    impl futures_core::Stream for Repeat {
        type Item = Result<axum::body::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.1 == 0 {
                return std::task::Poll::Ready(None);
            }
            self.1 -= 1;
            std::task::Poll::Ready(Some(Ok(self.0.clone())))
        }
    }
    Repeat(chunk, n)
}

struct Fixture {
    _dir: tempfile::TempDir,
    _server: Server,
    admin: Api,
    agent: Api,
    integrator: Api,
    seen: Seen,
}

async fn start() -> Fixture {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(get(record)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[plugins]
timeout_ms = 600
pool_size = 4
max_concurrent_per_plugin = 2
kv_max_bytes = 1048576

[connections.api]
base_url = "http://127.0.0.1:{port}/api"
allow_private = true
timeout_ms = 10000
auth = {{ type = "bearer", token = "{API_SECRET}" }}
"#
    );
    let config = write_config(dir.path(), &extra).unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    Fixture {
        admin: Api::new(&server.url, ADMIN),
        agent: Api::new(&server.url, AGENT),
        integrator: Api::new(&server.url, INTEGRATOR),
        _dir: dir,
        _server: server,
        seen,
    }
}

async fn install(api: &Api, bytes: Vec<u8>) -> (u16, Value) {
    api.raw("POST", "/plugins", bytes).await.unwrap()
}

async fn hostile(f: &Fixture) {
    let (status, body) = install(&f.admin, std::fs::read(plugin_wasm("hostile")).unwrap()).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        f.admin.call("PUT", "/plugins/hostile/grants", Some(&json!({"connections": ["api"]}))).await.unwrap();
    assert_eq!(status, 200, "{body}");
}

async fn call(api: &Api, action: &str, input: Value) -> (u16, Value) {
    api.call("POST", &format!("/plugins/hostile/actions/{action}"), Some(&input)).await.unwrap()
}

/// Regression: an integrator could upload a module claiming an installed plugin's id,
/// replace it and inherit the admin's grants.
#[tokio::test]
async fn only_an_admin_replaces_an_installed_plugin_and_versions_never_change_bytes() {
    let f = start().await;
    let (status, body) = install(&f.admin, wat_plugin(&manifest("directory", "1.0.0", &["http:api"]), 0)).await;
    assert_eq!(status, 201, "{body}");
    f.admin.call("PUT", "/plugins/directory/grants", Some(&json!({"connections": ["api"]}))).await.unwrap();

    // The integrator's lookalike is refused, and nothing changed.
    let (status, body) = install(&f.integrator, wat_plugin(&manifest("directory", "6.6.6", &["http:api"]), 1)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("only an admin"), "{body}");
    let now = f.admin.get("/plugins/directory").await.unwrap();
    assert_eq!((now["version"].as_str(), now["connections"].clone()), (Some("1.0.0"), json!(["api"])));

    // The same version with other bytes is refused even for an admin; the same bytes are a no-op.
    let (status, body) = install(&f.admin, wat_plugin(&manifest("directory", "1.0.0", &["http:api"]), 3)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")), "{body}");
    let (status, _) = install(&f.admin, wat_plugin(&manifest("directory", "1.0.0", &["http:api"]), 0)).await;
    assert_eq!(status, 200);

    // The legitimate upgrade: an admin's new version keeps the grants and says what it asks for.
    let (status, body) =
        install(&f.admin, wat_plugin(&manifest("directory", "1.1.0", &["http:api", "ldap:corp"]), 0)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replaced"], "1.0.0");
    assert_eq!(body["changes"]["added_connections"], json!(["corp"]));
    assert_eq!(body["plugin"]["connections"], json!(["api"]), "grants stay with the admin's upgrade");
    let (_, out) = f.admin.call("POST", "/plugins/directory/actions/go", Some(&json!({}))).await.unwrap();
    assert_eq!(out["output"]["v"], "1.1.0");

    // An integrator may add a new id; it starts with no grants.
    let (status, body) = install(&f.integrator, wat_plugin(&manifest("ivy-tool", "0.1.0", &["http:api"]), 0)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["plugin"]["connections"], json!([]));
    assert_eq!(body["plugin"]["installed_by"], "integrator-ivy");

    // The audit log names who did what.
    let audit = f.admin.get("/audit").await.unwrap().to_string();
    assert!(audit.contains("plugin.upgrade") && audit.contains("integrator-ivy"), "{audit}");
}

#[tokio::test]
async fn plugins_and_versions_can_be_deleted_unless_a_waiting_run_needs_them() {
    let f = start().await;
    for v in ["1.0.0", "1.1.0"] {
        install(&f.admin, wat_plugin(&manifest("helper", v, &[]), 0)).await;
    }
    let wf = json!({"id": "later", "name": "later", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "nap", "type": "wait", "minutes": 60},
                  {"id": "use", "type": "plugin", "plugin": "helper", "action": "go", "input": {}}]});
    f.admin.post("/workflows", &wf).await.unwrap();
    f.agent.post("/tickets", &json!({"title": "t", "requester": "r"})).await.unwrap();
    f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();

    let (status, body) = f.admin.call("DELETE", "/plugins/helper", None).await.unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("waiting"), "{body}");
    let (status, _) = f.admin.call("DELETE", "/plugins/helper/versions/1.1.0", None).await.unwrap();
    assert_eq!(status, 409, "the current version is needed too");
    // An old version is nobody's: it goes.
    let (status, body) = f.admin.call("DELETE", "/plugins/helper/versions/1.0.0", None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(f.admin.get("/plugins/helper").await.unwrap()["versions"], json!(["1.1.0"]));
    // Not admin: refused.
    let (status, _) = f.integrator.call("DELETE", "/plugins/helper", None).await.unwrap();
    assert_eq!(status, 403);
    // A plugin no run needs is deleted whole.
    install(&f.admin, wat_plugin(&manifest("unused", "1.0.0", &[]), 0)).await;
    let (status, _) = f.admin.call("DELETE", "/plugins/unused", None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(f.admin.call("GET", "/plugins/unused", None).await.unwrap().0, 404);
}

#[tokio::test]
async fn plugin_config_is_shown_to_admins_only() {
    let f = start().await;
    install(&f.admin, wat_plugin(&manifest("cfg", "1.0.0", &[]), 0)).await;
    let (status, _) =
        f.admin.call("PUT", "/plugins/cfg/grants", Some(&json!({"config": {"tenant": "contoso"}}))).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(f.admin.get("/plugins/cfg").await.unwrap()["config"]["tenant"], "contoso");
    for api in [&f.agent, &f.integrator] {
        let seen = api.get("/plugins/cfg").await.unwrap();
        assert_eq!(seen["config"], "(admins only)");
        assert!(!api.get("/plugins").await.unwrap().to_string().contains("contoso"));
    }
}

/// Regression: a manifest's patterns with lookaround forced the backtracking engine on
/// the request workers (200 of them froze `/health` for 16 s).
#[tokio::test]
async fn manifests_whose_patterns_need_backtracking_are_refused_and_caps_name_their_limit() {
    let f = start().await;
    let mut m = manifest("redos", "1.0.0", &[]);
    m["actions"][0]["input_schema"] =
        json!({"type": "object", "patternProperties": {"^(a+)+(?=b)$": {"type": "string"}}});
    let (status, body) = install(&f.integrator, wat_plugin(&m, 0)).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("/actions/0/input_schema") && message.contains("backtracking"), "{message}");
    m["actions"][0]["input_schema"] =
        json!({"type": "object", "properties": {"x": {"type": "string", "pattern": "(\\w)\\1"}}});
    let (status, _) = install(&f.integrator, wat_plugin(&m, 0)).await;
    assert_eq!(status, 422, "backreferences too");
    // A linear pattern is fine, and validates.
    m["actions"][0]["input_schema"] =
        json!({"type": "object", "properties": {"x": {"type": "string", "pattern": "^[a-z]+$"}}});
    let (status, body) = install(&f.integrator, wat_plugin(&m, 0)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = f.admin.call("POST", "/plugins/redos/actions/go", Some(&json!({"x": "A1"}))).await.unwrap();
    assert_eq!(status, 422, "{body}");

    // Too many functions: refused before compiling, naming the limit.
    let (status, body) = install(&f.integrator, wat_plugin(&manifest("bloated", "1.0.0", &[]), 10_001)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("plugins.max_functions"), "{body}");
}

/// Regression: a call that wrote to its key-value store and then timed out kept the
/// write; one plugin wrote 300 MB with no quota.
#[tokio::test]
async fn kv_writes_commit_with_the_call_and_a_quota_bounds_them() {
    let f = start().await;
    hostile(&f).await;
    let (status, body) = call(&f.admin, "write_then_spin", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["details"]["code"], "timeout");
    assert_eq!(f.admin.get("/plugins/hostile").await.unwrap()["kv"]["keys"], 0, "the timed-out call left no write");

    // 100 x 60 KiB against a 1 MiB quota: refused, and the call's earlier writes go too.
    let (status, body) = call(&f.admin, "kv_flood", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.to_string().contains("quota"), "{body}");
    let kv = f.admin.get("/plugins/hostile").await.unwrap()["kv"].clone();
    assert_eq!((kv["keys"].as_u64(), kv["max_bytes"].as_u64()), (Some(0), Some(1 << 20)), "{kv}");
    // Within the quota: kept and counted.
    let (status, body) = call(&f.admin, "kv_flood", json!({"count": 3, "size": 1000})).await;
    assert_eq!(status, 200, "{body}");
    let kv = f.admin.get("/plugins/hostile").await.unwrap()["kv"].clone();
    assert_eq!(kv["keys"], 3, "{kv}");
    assert!(kv["bytes"].as_u64().unwrap() > 3000, "{kv}");
}

/// Regression: 64 looping calls of one plugin held every instance of the pool.
#[tokio::test]
async fn one_plugin_cannot_hold_the_whole_pool() {
    let f = start().await;
    hostile(&f).await;
    install(&f.admin, wat_plugin(&manifest("polite", "1.0.0", &[]), 0)).await;
    let (status, _) = f.admin.call("POST", "/plugins/polite/actions/go", Some(&json!({}))).await.unwrap();
    assert_eq!(status, 200);
    // Six spinning calls against a share of 2 take at least three rounds of 600 ms.
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut spins = Vec::new();
    for _ in 0..6 {
        let (api, done) = (f.admin.clone(), done.clone());
        spins.push(tokio::spawn(async move {
            let (status, _) = call(&api, "spin", json!({})).await;
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            status
        }));
    }
    // Once the spins hold the plugin's whole share, the other plugin is called: it gets
    // a slot at once, while every spin is still running (each takes 600 ms).
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.admin.get("/plugins/hostile").await.unwrap()["calls_in_flight"] != 2 {
        assert!(Instant::now() < deadline, "the spins never started");
        tokio::task::yield_now().await;
    }
    let (status, _) = f.admin.call("POST", "/plugins/polite/actions/go", Some(&json!({}))).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 0, "the other plugin's call did not wait for a spin");
    for s in spins {
        assert_eq!(s.await.unwrap(), 502);
    }
}

/// Regression: a slow host call held the call for the connection's 10 s while the
/// error blamed the plugin; a 600 MB body was buffered before the cap applied.
#[tokio::test]
async fn host_calls_are_bounded_by_the_call_deadline_and_the_response_cap() {
    let f = start().await;
    hostile(&f).await;
    let started = Instant::now();
    let (status, body) = call(&f.admin, "http", json!({"connection": "api", "method": "GET", "path": "/slow"})).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("host call `http`") && message.contains("600 ms"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(4), "bounded by the deadline, not the 10 s connection timeout");

    let (status, body) = call(&f.admin, "http", json!({"connection": "api", "method": "GET", "path": "/huge"})).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.to_string().contains("response_too_large"), "{body}");
}

/// Regression: `starts_with("/api")` let `/api-admin` through, and a same-origin
/// redirect to `/secret` carried the connection's credential along.
#[tokio::test]
async fn requests_and_redirects_stay_under_the_connection_prefix() {
    let f = start().await;
    hostile(&f).await;
    // Relative to the base URL, base path included.
    let (status, body) =
        call(&f.admin, "http", json!({"connection": "api", "method": "GET", "path": "/users/42"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["body"]["path"], "/api/users/42");
    let base = {
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen.last().unwrap().1, format!("Bearer {API_SECRET}"));
        seen.len()
    };
    for path in ["/../secret", "/%2e%2e/secret"] {
        let (_, body) = call(&f.admin, "http", json!({"connection": "api", "method": "GET", "path": path})).await;
        assert!(body.to_string().contains("off the allow-list"), "{path}: {body}");
    }
    let (_, body) = call(&f.admin, "http", json!({"connection": "api", "method": "GET", "path": "/redir"})).await;
    assert!(body.to_string().contains("redirect"), "{body}");
    let seen = f.seen.lock().unwrap().clone();
    assert!(seen[base..].iter().all(|(p, _)| p.starts_with("/api/")), "nothing outside /api was requested: {seen:?}");
}

/// Regression: tokens sat in plaintext in the config and webhook secrets in clear in
/// sled. A token may be given by its SHA-256, any secret as `{ file = ... }` or
/// `{ env = ... }`, and stored signing secrets are sealed under `secrets_key`.
#[tokio::test]
async fn config_secrets_by_hash_or_file_and_webhook_secrets_sealed_at_rest() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secrets.key"), "sealing-key-0123456789abcdef\n").unwrap();
    let hashed = "only-its-hash-is-configured-42";
    let extra = format!(
        "secrets_key = {{ file = \"secrets.key\" }}\n\n[[tokens]]\nname = \"hashed\"\ntoken_sha256 = \"{}\"\nrole = \"agent\"\n",
        hex::encode(sha2::Sha256::digest(hashed.as_bytes()))
    );
    let config = write_config(dir.path(), &extra).unwrap();
    assert!(!std::fs::read_to_string(&config).unwrap().contains(hashed));
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &config, &[]).unwrap();
    let admin = Api::new(&server.url, ADMIN);
    let secret = "hook-secret-never-on-disk-0123";
    let mut endpoint: Value = serde_json::from_str(
        &std::fs::read_to_string(switchboard_tests::repo().join("workflows/webhooks/monitoring-alert.json")).unwrap(),
    )
    .unwrap();
    endpoint["secret"] = json!(secret);
    let (status, body) = admin.call("POST", "/webhooks", Some(&endpoint)).await.unwrap();
    assert!(status < 300, "{body}");
    server.kill9();
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is on disk in clear");
    }

    let server = Server::start(&data, &config, &[]).unwrap();
    let payload = serde_json::to_vec(&json!({"fingerprint": "fp-s", "status": "firing",
        "labels": {"alertname": "Disk", "instance": "db9", "severity": "warning"}}))
    .unwrap();
    let sig = switchboard::notify::sign(secret.as_bytes(), chrono::Utc::now().timestamp(), &payload);
    let resp = reqwest::Client::new()
        .post(format!("{}/hooks/monitoring-alert", server.url))
        .header("content-type", "application/json")
        .header("x-switchboard-signature", sig)
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "the sealed secret still verifies after a restart");
    let by_hash = Api::new(&server.url, hashed);
    assert_eq!(by_hash.call("GET", "/tickets", None).await.unwrap().0, 200, "a token configured by its hash works");
}

/// Dribbles `head` one byte per tick, then `body` likewise; returns what the server
/// answered (possibly nothing) once it closes the connection, and how long that took.
async fn slow_client(url: &str, head: String, body: Vec<u8>, tick: Duration) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut pace = tokio::time::interval(tick);
    let bytes: Vec<u8> = head.into_bytes().into_iter().chain(body).collect();
    let mut answer = Vec::new();
    for b in bytes {
        pace.tick().await;
        if stream.write_all(&[b]).await.is_err() {
            break;
        }
        // Anything the server says (or its closing) ends the dribble.
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the server kept a slow client for 30 s");
    }
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    answer.extend(rest);
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

/// Regression: connections dribbling headers or a body (even on the unauthenticated
/// `POST /hooks/{id}`) stayed open indefinitely; installs compiled and schemas were
/// checked on the request workers, freezing `/health` for seconds. Together: slow
/// clients are cut off at their timeouts, and `/health` stays under 100 ms p99.
#[tokio::test]
async fn slow_clients_are_cut_off_and_health_stays_fast_under_hostile_load() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "header_timeout_ms = 1000\nbody_timeout_ms = 1500\n\n[plugins]\ntimeout_ms = 600\npool_size = 4\nmax_concurrent_per_plugin = 2\n";
    let config = write_config(dir.path(), extra).unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let admin = Api::new(&server.url, ADMIN);
    let (status, body) = install(&admin, std::fs::read(plugin_wasm("hostile")).unwrap()).await;
    assert_eq!(status, 201, "{body}");

    let tick = Duration::from_millis(200);
    let head = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Pad: {}\r\n", "a".repeat(40))
    };
    // Headers that never end.
    let mut attackers = Vec::new();
    for _ in 0..10 {
        let url = server.url.clone();
        let h = head("/hooks/anything");
        attackers.push(tokio::spawn(async move { slow_client(&url, h, Vec::new(), tick).await }));
    }
    // Complete headers, then a body dribbled a byte at a time.
    for _ in 0..5 {
        let url = server.url.clone();
        let h = format!("{}Content-Length: 200\r\nAuthorization: Bearer {ADMIN}\r\n\r\n", head("/tickets"));
        attackers.push(tokio::spawn(async move { slow_client(&url, h, vec![b' '; 200], tick).await }));
    }
    // Hostile installs (compiles of 9,000 functions each) and plugin calls that spin.
    let mut load = Vec::new();
    for i in 0..3 {
        let api = admin.clone();
        let wasm = wat_plugin(&manifest(&format!("heavy-{i}"), "1.0.0", &[]), 9_000);
        load.push(tokio::spawn(async move { install(&api, wasm).await.0 }));
    }
    for _ in 0..6 {
        let api = admin.clone();
        load.push(tokio::spawn(async move { call(&api, "spin", json!({})).await.0 }));
    }

    // /health, sampled one after another for as long as any of that runs.
    let client = reqwest::Client::new();
    let mut samples = Vec::new();
    while samples.len() < 200 || load.iter().any(|h| !h.is_finished()) || attackers.iter().any(|h| !h.is_finished()) {
        let t = Instant::now();
        let resp = client.get(format!("{}/health", server.url)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        samples.push(t.elapsed());
    }
    samples.sort();
    let p99 = samples[samples.len() * 99 / 100];
    eprintln!(
        "health under hostile load: {} samples, p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        samples[samples.len() / 2],
        p99,
        samples[samples.len() - 1]
    );
    assert!(p99 < Duration::from_millis(100), "/health p99 {p99:?} under hostile load");

    for a in attackers {
        let (answer, took) = a.await.unwrap();
        assert!(took < Duration::from_secs(10), "a slow client was held {took:?}");
        if !answer.is_empty() {
            assert!(answer.contains("408") && answer.contains("body_timeout"), "{answer}");
        }
    }
    for l in load {
        let status = l.await.unwrap();
        assert!(status == 201 || status == 502, "{status}");
    }
    assert_eq!(admin.call("GET", "/health", None).await.unwrap().0, 200);
}

/// Regression: the first call after a restart compiled the module on a request worker
/// (7.5 s of frozen `/health`). The compiled code is kept at install and loaded back.
#[tokio::test]
async fn a_restart_loads_plugins_from_their_compiled_code() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let mut server = Server::start(&data, &config, &[]).unwrap();
    let admin = Api::new(&server.url, ADMIN);
    assert_eq!(install(&admin, std::fs::read(plugin_wasm("hostile")).unwrap()).await.0, 201);
    server.kill9();
    let server = Server::start_logged("127.0.0.1:0", &data, &config, &[], &log, "info").unwrap();
    let admin = Api::new(&server.url, ADMIN);
    assert_eq!(call(&admin, "ok", json!({})).await.0, 200);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("plugin loaded from its compiled artifact"), "{text}");
    assert!(!text.contains("plugin compiled (no usable artifact)"), "{text}");
}
