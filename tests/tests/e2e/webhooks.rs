//! Webhooks and approvals over real HTTP on loopback against a real server process:
//! inbound signature, replay window, idempotency, body limit, rate limit and mapping;
//! outbound retries (honouring Retry-After) and dead letters against local receivers;
//! approval decisions by the approver's token and by signed link.

use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard::notify::sign;
use switchboard_tests::{copy_dir, repo, write_config, Api, Server, ADMIN};

const HOOK_SECRET: &str = "hook-secret-0123456789abcdef";

/// A receiver that answers `fail_first` requests with 503 (the first with 429 and
/// `Retry-After: 1`), then 200; it counts requests and keeps the delivery ids.
async fn receiver(fail_first: usize) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, i) = (hits.clone(), ids.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let (h, i) = (h.clone(), i.clone());
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                let id = headers.get("x-switchboard-delivery").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                i.lock().unwrap().push(id);
                if n == 0 && fail_first > 0 {
                    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response_parts()
                } else if n < fail_first {
                    (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")]).into_response_parts()
                } else {
                    (StatusCode::OK, [("retry-after", "0")]).into_response_parts()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits, ids)
}

trait Parts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl<T: axum::response::IntoResponse> Parts for T {
    fn into_response_parts(self) -> axum::response::Response {
        self.into_response()
    }
}

async fn server(dir: &std::path::Path) -> (Server, Api) {
    let extra = "notify_attempts = 4\nnotify_retry_base_ms = 50\nnotify_retry_max_ms = 3000\n\n\
                 [[tokens]]\nname = \"grace\"\ntoken = \"grace-token-0123456789\"\nrole = \"agent\"\n";
    let config = write_config(dir, extra).unwrap();
    let server = Server::start(&dir.join("data"), &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    (server, api)
}

async fn register(api: &Api, file: &str, overrides: Value) -> Value {
    let text = std::fs::read_to_string(repo().join("workflows/webhooks").join(file)).unwrap();
    let mut endpoint: Value = serde_json::from_str(&text).unwrap();
    endpoint["secret"] = json!(HOOK_SECRET);
    for (k, v) in overrides.as_object().unwrap() {
        endpoint[k] = v.clone();
    }
    api.post("/webhooks", &endpoint).await.unwrap()
}

/// Posts a body to `/hooks/{id}` signed at `t` (None: unsigned).
async fn deliver(
    url: &str,
    id: &str,
    body: &[u8],
    t: Option<i64>,
    delivery: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    deliver_signed(url, id, body, t.map(|t| sign(HOOK_SECRET.as_bytes(), t, body)), delivery).await
}

/// Posts a body with the given signature header.
async fn deliver_signed(
    url: &str,
    id: &str,
    body: &[u8],
    signature: Option<String>,
    delivery: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/hooks/{id}"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("x-switchboard-signature", s);
    }
    if let Some(d) = delivery {
        req = req.header("idempotency-key", d);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn inbound_webhooks_are_verified_idempotent_limited_and_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api) = server(dir.path()).await;
    let created = register(
        &api,
        "monitoring-alert.json",
        json!({"rate_limit": {"per_second": 0.2, "burst": 6}, "max_body_bytes": 4096}),
    )
    .await;
    assert_eq!(created["endpoint"]["secret"], "<redacted>");
    let listed = api.get("/webhooks").await.unwrap();
    assert!(!listed.to_string().contains(HOOK_SECRET), "secrets are never returned");

    let alert = json!({"fingerprint": "fp-1", "delivery": "d-1", "status": "firing",
        "labels": {"alertname": "DiskFull", "instance": "db1", "severity": "critical"},
        "annotations": {"description": "/var is 97% full"}});
    let body = serde_json::to_vec(&alert).unwrap();

    // Refused: no signature, wrong signature, stale timestamp. Nothing is created.
    assert_eq!(deliver(&api.url, "monitoring-alert", &body, None, None).await.0, 401);
    let mut tampered = body.clone();
    tampered[5] ^= 1;
    let signature = sign(HOOK_SECRET.as_bytes(), now(), &body);
    let (status, err, _) = deliver_signed(&api.url, "monitoring-alert", &tampered, Some(signature), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (401, Some("bad_signature")));
    let (status, err, _) = deliver(&api.url, "monitoring-alert", &body, Some(now() - 3600), None).await;
    assert_eq!(status, 401);
    assert!(err["error"]["message"].as_str().unwrap().contains("replay window"));
    assert_eq!(api.get("/tickets").await.unwrap()["tickets"].as_array().unwrap().len(), 0);

    // Accepted once: 202 with the ticket; the same delivery id again replays the answer.
    let (status, first, _) = deliver(&api.url, "monitoring-alert", &body, Some(now()), None).await;
    assert_eq!(status, 202, "{first}");
    let ticket = first["ticket"].as_str().unwrap().to_string();
    let (status, again, headers) = deliver(&api.url, "monitoring-alert", &body, Some(now()), None).await;
    assert_eq!((status, &again), (202, &first));
    assert_eq!(headers.get("idempotent-replay").unwrap(), "true");
    let t = api.get(&format!("/tickets/{ticket}")).await.unwrap();
    assert_eq!(t["title"], "DiskFull on db1");
    assert_eq!((t["impact"].as_str(), t["priority"].as_str()), (Some("high"), Some("P1")), "severity critical -> P1");
    assert_eq!(t["external_id"], "fp-1");
    assert_eq!(t["custom"]["alert_status"], "firing");
    assert_eq!(t["channel"], "webhook");
    let tickets = api.get("/tickets").await.unwrap();
    assert_eq!(tickets["tickets"].as_array().unwrap().len(), 1, "no duplicate ticket");

    // A new delivery for the same fingerprint updates the same ticket.
    let resolved = json!({"fingerprint": "fp-1", "delivery": "d-2", "status": "resolved",
        "labels": {"alertname": "DiskFull", "instance": "db1", "severity": "critical"}});
    let (status, upd, _) =
        deliver(&api.url, "monitoring-alert", &serde_json::to_vec(&resolved).unwrap(), Some(now()), None).await;
    assert_eq!((status, upd["ticket"].as_str()), (202, Some(ticket.as_str())));
    assert_eq!(api.get(&format!("/tickets/{ticket}")).await.unwrap()["custom"]["alert_status"], "resolved");

    // Too large: 413 before the signature is even checked.
    let big = vec![b' '; 5000];
    assert_eq!(deliver(&api.url, "monitoring-alert", &big, Some(now()), None).await.0, 413);
    // A mapping that yields a bad value names the field.
    let bad = json!({"fingerprint": "fp-2", "delivery": "d-3", "labels": {"alertname": "X", "instance": "y"}, "annotations": {"description": 7}});
    let (status, err, _) =
        deliver(&api.url, "monitoring-alert", &serde_json::to_vec(&bad).unwrap(), Some(now()), None).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["details"]["errors"][0]["pointer"], "/mapping/fields/description");
    // Not JSON: 400.
    assert_eq!(deliver(&api.url, "monitoring-alert", b"{nope", Some(now()), None).await.0, 400);

    // Burst of 6 spent (2 ok + 1 update + 413 does not count... the rest do): soon 429 with Retry-After.
    let mut limited = None;
    for i in 0..10 {
        let b = serde_json::to_vec(&json!({"fingerprint": format!("r{i}"), "delivery": format!("r{i}"),
            "labels": {"alertname": "A", "instance": "i"}}))
        .unwrap();
        let (status, _, headers) = deliver(&api.url, "monitoring-alert", &b, Some(now()), None).await;
        if status == 429 {
            limited = headers.get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            break;
        }
        assert_eq!(status, 202);
    }
    assert!(limited.is_some_and(|s| s >= 1), "rate limited with Retry-After");

    // Every outcome is counted for Prometheus.
    let metrics = api.metrics().await.unwrap();
    for (outcome, at_least) in [
        ("bad_signature", 2),
        ("stale", 1),
        ("replayed", 1),
        ("too_large", 1),
        ("rate_limited", 1),
        ("rejected", 1),
        ("malformed", 1),
    ] {
        let line =
            format!("switchboard_webhook_deliveries_total{{endpoint=\"monitoring-alert\",outcome=\"{outcome}\"}} ");
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("{line}\n{metrics}"))
            .parse()
            .unwrap();
        assert!(n >= at_least, "{outcome}: {n}");
    }
    assert!(metrics.contains("# TYPE switchboard_step_seconds histogram"));
    assert!(metrics.contains("switchboard_runs_in_flight "));
}

#[tokio::test]
async fn outbound_webhooks_retry_honour_retry_after_then_dead_letter_and_resend() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api) = server(dir.path()).await;
    let (flaky, flaky_hits, flaky_ids) = receiver(2).await; // 429 (Retry-After 1), 503, then 200
    let (down, down_hits, _) = receiver(usize::MAX).await;
    for (id, url) in [("flaky", &flaky), ("down", &down)] {
        let wf = json!({"id": id, "name": id, "triggers": [{"on": "ticket.created"}],
            "conditions": {"field": "ticket.title", "op": "eq", "value": id},
            "steps": [{"id": "tell", "type": "notify", "url": url, "payload": {"ticket": "{{ticket.id}}"}}]});
        api.post("/workflows", &wf).await.unwrap();
    }
    let started = std::time::Instant::now();
    api.post("/tickets", &json!({"title": "flaky", "requester": "ann"})).await.unwrap();
    api.post("/tickets", &json!({"title": "down", "requester": "ann"})).await.unwrap();
    api.wait_idle(Duration::from_secs(30)).await.unwrap();

    assert_eq!(flaky_hits.load(Ordering::SeqCst), 3);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After: 1");
    let ids = flaky_ids.lock().unwrap().clone();
    assert!(ids.iter().all(|i| i == &ids[0]), "one delivery id across retries: {ids:?}");
    let runs = api.get("/runs?workflow=flaky").await.unwrap();
    let step = runs["runs"][0]["trace"].as_array().unwrap().iter().find(|e| e["step"] == "tell").unwrap().clone();
    let log = step["detail"]["log"].as_array().unwrap();
    assert_eq!(log.iter().map(|a| a["status"].as_u64().unwrap()).collect::<Vec<_>>(), [429, 503, 200]);
    assert_eq!(log[0]["then_waited_ms"], 1000, "Retry-After honoured");

    assert_eq!(down_hits.load(Ordering::SeqCst), 4, "notify_attempts = 4");
    let runs = api.get("/runs?workflow=down").await.unwrap();
    assert_eq!(runs["runs"][0]["status"], "failed");
    let letters = api.get("/dead-letters").await.unwrap()["dead_letters"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["url"], down.as_str());
    assert_eq!(letters[0]["attempts"].as_array().unwrap().len(), 4);
    let id = letters[0]["id"].as_str().unwrap();
    let resent = api.post(&format!("/dead-letters/{id}/resend"), &json!({})).await.unwrap();
    assert_eq!(resent["delivery"]["ok"], false, "still down");
    assert_eq!(down_hits.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn approvals_by_the_approvers_token_and_by_signed_link_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api) = server(dir.path()).await;
    for (id, name) in [("grace", "Grace"), ("dave", "Dave")] {
        api.post("/agents", &json!({"id": id, "name": name})).await.unwrap();
    }
    let wf = json!({"id": "buy", "name": "purchase", "triggers": [{"on": "ticket.created"}],
    "steps": [
        {"id": "ok", "type": "approval", "on_reject": "no", "stages": [
            {"name": "manager", "approvers": [{"user": "grace"}]},
            {"name": "finance", "approvers": [{"user": "dave"}]}]},
        {"id": "yes", "type": "comment", "body": "approved", "next": "end"},
        {"id": "no", "type": "comment", "body": "declined"}
    ]});
    api.post("/workflows", &wf).await.unwrap();
    let t = api.post("/tickets", &json!({"title": "New laptop", "requester": "ann"})).await.unwrap();
    let ticket = t["ticket"]["id"].as_str().unwrap().to_string();
    api.wait_idle(Duration::from_secs(10)).await.unwrap();

    let grace = Api::new(&api.url, "grace-token-0123456789");
    let mine = grace.get("/approvals?pending_for=me").await.unwrap();
    let approval = mine["approvals"][0]["id"].as_str().unwrap().to_string();
    // The admin token is not an approver.
    let (status, _) = api
        .call("POST", &format!("/approvals/{approval}/decisions"), Some(&json!({"decision": "approve"})))
        .await
        .unwrap();
    assert_eq!(status, 403);
    let (status, bad) = grace
        .call("POST", &format!("/approvals/{approval}/decisions"), Some(&json!({"decision": "maybe"})))
        .await
        .unwrap();
    assert_eq!((status, bad["error"]["details"]["errors"][0]["pointer"].as_str()), (422, Some("/decision")));
    grace
        .post(&format!("/approvals/{approval}/decisions"), &json!({"decision": "approve", "comment": "ok"}))
        .await
        .unwrap();

    // Stage 2 by signed link (as an e-mail would carry it); the GET only shows a page.
    let links = api.post(&format!("/approvals/{approval}/links"), &json!({})).await.unwrap();
    let link = links["links"][0]["approve"].as_str().unwrap().replace("http://127.0.0.1:8080", &api.url);
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form class=\"stack\" method=\"post\">"));
    assert_eq!(api.get(&format!("/approvals/{approval}")).await.unwrap()["status"], "pending", "GET decides nothing");
    let forged = link.replace("approver=dave", "approver=grace");
    let http = reqwest::Client::new();
    assert_eq!(http.post(&forged).send().await.unwrap().status(), 403, "bound to its approver");
    let used = http.post(&link).form(&[("comment", "budget ok")]).send().await.unwrap();
    assert_eq!(used.status(), 200);
    assert_eq!(http.post(&link).send().await.unwrap().status(), 409, "single use");
    api.wait_idle(Duration::from_secs(10)).await.unwrap();
    let t = api.get(&format!("/tickets/{ticket}")).await.unwrap();
    let notes: Vec<&str> = t["comments"].as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap()).collect();
    assert!(notes.contains(&"Approved by dave (signed link, stage 2: finance): budget ok"), "{notes:?}");
    assert_eq!(notes.last(), Some(&"approved"));
    let history = api.get(&format!("/tickets/{ticket}/history")).await.unwrap();
    assert!(history.to_string().contains("grace"), "decisions are in the ticket's history");
}

/// Regression: the shipped demo workflows posted to `127.0.0.1:8080` whatever
/// `--listen` said, so a demo on another port paged nobody. Started on a random port,
/// the P1 page reaches this server's own demo inbox, signed with the documented secret.
#[tokio::test]
async fn the_demo_on_any_port_posts_to_its_own_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let workflows = repo().join("workflows");
    let server = Server::start(
        &dir.path().join("data"),
        &config,
        &["--demo", "--workflows", workflows.to_str().unwrap(), "--plugins", dir.path().to_str().unwrap()],
    )
    .unwrap();
    assert!(!server.url.ends_with(":8080"));
    let agent = Api::new(&server.url, ADMIN);
    let body = json!({"title": "Core switch down", "requester": "ann", "category": "network", "impact": "high", "urgency": "high"});
    let (status, created) = agent.call("POST", "/tickets", Some(&body)).await.unwrap();
    assert_eq!(status, 201, "{created}");
    agent.wait_idle(Duration::from_secs(30)).await.unwrap();
    let inbox = agent.get("/demo/inbox").await.unwrap();
    assert!(
        inbox["deliveries"].as_array().is_some_and(|d| !d.is_empty()),
        "the page reached this server's inbox: {inbox}"
    );
    assert!(inbox.to_string().contains("Core switch down"), "{inbox}");
}

/// Regression: the signature was checked over the re-printed integer timestamp, so a
/// sender that signed the `t` it sent as `0<unix>` was refused. Checked with a plain
/// HMAC over the exact bytes, as any sender's library computes it.
#[tokio::test]
async fn inbound_signatures_cover_the_timestamp_exactly_as_sent() {
    use hmac::{Hmac, Mac};
    let dir = tempfile::tempdir().unwrap();
    let (_server, api) = server(dir.path()).await;
    register(&api, "monitoring-alert.json", json!({})).await;
    let body = serde_json::to_vec(&json!({"fingerprint": "fp-z", "delivery": "z-1", "status": "firing",
        "labels": {"alertname": "Ping", "instance": "h1", "severity": "warning"}}))
    .unwrap();
    let t = format!("0{}", now());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    let signature = format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()));
    let (status, out, _) = deliver_signed(&api.url, "monitoring-alert", &body, Some(signature), None).await;
    assert_eq!(status, 202, "{out}");
    // The same MAC under a different rendering of the same instant is not what was signed.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    let reprinted = format!("t={},v1={}", t.trim_start_matches('0'), hex::encode(mac.finalize().into_bytes()));
    let (status, _, _) = deliver_signed(&api.url, "monitoring-alert", &body, Some(reprinted), None).await;
    assert_eq!(status, 401);
}

/// Regression: every `serve --demo` re-applied the shipped files over the admin's edits
/// (revision 3 was the file again) and re-registered the webhooks into the audit log. Now
/// a shipped file is applied when it is new or changed, and never over an edit.
#[tokio::test]
async fn a_demo_restart_keeps_the_admins_edits_and_applies_only_changed_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let shipped = dir.path().join("workflows");
    copy_dir(&repo().join("workflows"), &shipped).unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let args = ["--demo", "--workflows", shipped.to_str().unwrap(), "--plugins", dir.path().to_str().unwrap()];
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = Server::start_logged(&listen, &data, &config, &args, &log, "info").unwrap();
    let admin = Api::new(&server.url, ADMIN);
    let mut edited = admin.get("/workflows/reopen-note").await.unwrap()["definition"].clone();
    edited["name"] = json!("Our own reopen rule");
    let (status, body) = admin.call("PUT", "/workflows/reopen-note", Some(&edited)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let audits = |a: &Value| a["audit"].as_array().unwrap().iter().filter(|e| e["action"] == "webhook.put").count();
    let registered = audits(&admin.get("/audit?limit=1000").await.unwrap());
    assert!(registered >= 3, "the demo's endpoints were registered once each");
    server.terminate();

    // An upgrade ships a changed weekly-report; reopen-note's file is unchanged.
    let file = shipped.join("weekly-report.json");
    let mut weekly: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    weekly["name"] = json!("Weekly report, new in this release");
    std::fs::write(&file, serde_json::to_string_pretty(&weekly).unwrap()).unwrap();
    let server = Server::start_logged(&listen, &data, &config, &args, &log, "info").unwrap();
    let admin = Api::new(&server.url, ADMIN);
    let reopen = admin.get("/workflows/reopen-note").await.unwrap();
    assert_eq!(
        (reopen["revision"].as_u64(), reopen["definition"]["name"].as_str()),
        (Some(2), Some("Our own reopen rule"))
    );
    let weekly = admin.get("/workflows/weekly-report").await.unwrap();
    assert_eq!(
        (weekly["revision"].as_u64(), weekly["definition"]["name"].as_str()),
        (Some(2), Some("Weekly report, new in this release"))
    );
    let untouched = admin.get("/workflows/route-network").await.unwrap();
    assert_eq!(untouched["revision"].as_u64(), Some(1), "an unchanged file is not published again");
    assert_eq!(audits(&admin.get("/audit?limit=1000").await.unwrap()), registered, "no endpoint registered twice");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("kept the stored workflow `reopen-note`"), "the log says what it kept: {text}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
