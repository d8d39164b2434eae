//! The HTTP API against a real server process on loopback.

use serde_json::{json, Value};
use std::time::Duration;
use switchboard_tests::{repo, seed_team, Api, Stand};

type Fixture = Stand;

async fn start(extra_config: &str) -> Fixture {
    Stand::start(extra_config).unwrap()
}

fn shipped(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("workflows").join(name)).unwrap()).unwrap()
}

#[tokio::test]
async fn created_ticket_is_routed_and_the_trace_explains_why() {
    let f = start("").await;
    seed_team(&f.admin).await.unwrap();
    f.admin.post("/workflows", &shipped("route-network.json")).await.unwrap();

    let out = f
        .agent
        .post("/tickets", &json!({"title": "Cisco ASA drops VPN", "requester": "ann", "category": "network"}))
        .await
        .unwrap();
    let id = out["ticket"]["id"].as_str().unwrap().to_string();
    let run_id = out["runs"][0].as_str().expect("a run started").to_string();
    f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();

    // carol has the skill but is off shift; alice has it and is on shift.
    let ticket = f.agent.get(&format!("/tickets/{id}")).await.unwrap();
    assert_eq!(ticket["assignee"], "alice");
    assert_eq!(ticket["group"], "network");
    assert_eq!(ticket["status"], "assigned");

    let run = f.agent.get(&format!("/runs/{run_id}")).await.unwrap();
    assert_eq!(run["status"], "completed");
    let trace = run["trace"].as_array().unwrap();
    let conditions = trace.iter().find(|t| t["kind"] == "conditions").unwrap();
    let checks = conditions["checks"].as_array().unwrap();
    assert_eq!(checks[0]["field"], "ticket.category");
    assert_eq!(checks[0]["actual"], "network");
    assert_eq!(checks[0]["result"], true);
    let branch = trace.iter().find(|t| t["step"] == "cisco").unwrap();
    assert_eq!(branch["outcome"], "true");
    assert_eq!(branch["checks"][0]["op"], "regex");
    let route = trace.iter().find(|t| t["step"] == "route-cisco").unwrap();
    assert_eq!(route["detail"]["agent"], "alice");
    let skipped = route["detail"]["skipped"].as_array().unwrap();
    assert!(skipped.iter().any(|s| s["agent"] == "carol" && s["reason"] == "off_shift"), "{skipped:?}");

    // A ticket the workflow does not match says why in its event.
    let other = f
        .agent
        .post("/tickets", &json!({"title": "Printer jam", "requester": "bo", "category": "hardware"}))
        .await
        .unwrap();
    assert_eq!(other["runs"], json!([]));
    let events = f.agent.get(&format!("/tickets/{}/events", other["ticket"]["id"].as_str().unwrap())).await.unwrap();
    let evaluation = &events["events"][0]["evaluations"][0];
    assert_eq!(evaluation["outcome"], "not_matched");
    assert!(evaluation["reason"].as_str().unwrap().contains("ticket.category eq \"network\""), "{evaluation}");
}

#[tokio::test]
async fn least_loaded_routing_counts_open_tickets_and_capacity() {
    let f = start("").await;
    seed_team(&f.admin).await.unwrap();
    f.admin.post("/workflows", &shipped("route-network.json")).await.unwrap();
    let mut assignees = Vec::new();
    for i in 0..4 {
        let out = f
            .agent
            .post("/tickets", &json!({"title": format!("Wi-Fi slow {i}"), "requester": "ann", "category": "network"}))
            .await
            .unwrap();
        f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();
        let t = f.agent.get(&format!("/tickets/{}", out["ticket"]["id"].as_str().unwrap())).await.unwrap();
        assignees.push(t["assignee"].as_str().unwrap_or("-").to_string());
    }
    // alice (capacity 2) and bob alternate by load; alice is full for the fourth.
    assert_eq!(assignees, ["alice", "bob", "alice", "bob"]);
    // Resolving frees capacity.
    let (status, _) = f.agent.call("PATCH", "/tickets/T-1", Some(&json!({"status": "resolved"}))).await.unwrap();
    assert_eq!(status, 200);
    let agents = f.agent.get("/agents/alice").await.unwrap();
    assert_eq!(agents["open_tickets"], 1);
}

#[tokio::test]
async fn invalid_workflow_gets_every_error_with_its_pointer() {
    let f = start("").await;
    let body: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("workflows/invalid/wrong-value-types.json")).unwrap(),
    )
    .unwrap();
    let (status, out) = f.admin.call("POST", "/workflows", Some(&body)).await.unwrap();
    assert_eq!(status, 422);
    assert_eq!(out["error"]["code"], "invalid");
    let pointers: Vec<&str> =
        out["error"]["details"]["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert!(pointers.contains(&"/steps/0/fields/priority"), "{pointers:?}");
    assert!(pointers.contains(&"/version"), "{pointers:?}");
    assert_eq!(pointers.len(), 8, "{out}");
    // Nothing was stored.
    assert_eq!(f.admin.get("/workflows").await.unwrap()["workflows"], json!([]));
    // The validate endpoint answers the same without storing.
    let v = f.admin.post("/workflows/validate", &body).await.unwrap();
    assert_eq!(v["valid"], false);
}

#[tokio::test]
async fn bad_input_gets_a_located_4xx_and_persists_nothing() {
    let f = start("max_body_bytes = 4096").await;
    seed_team(&f.admin).await.unwrap();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("POST", "/tickets", b"{\"title\": ".to_vec(), 400, "malformed_json"),
        ("POST", "/tickets", b"".to_vec(), 400, "malformed_json"),
        ("POST", "/tickets", br#"{"title":"x","requester":"r","colour":"red"}"#.to_vec(), 422, "/colour"),
        ("POST", "/tickets", br#"{"title":"x","requester":"r","impact":"huge"}"#.to_vec(), 422, "/impact"),
        ("POST", "/tickets", br#"{"title":"","requester":"r"}"#.to_vec(), 422, "/title"),
        ("POST", "/tickets", br#"{"title":"x","requester":"r","assignee":"nobody"}"#.to_vec(), 422, "/assignee"),
        ("POST", "/tickets", br#"[1,2,3]"#.to_vec(), 422, "invalid"),
        (
            "POST",
            "/tickets",
            format!(r#"{{"title":"x","requester":"r","description":"{}"}}"#, "a".repeat(5000)).into_bytes(),
            413,
            "body_too_large",
        ),
        ("GET", "/tickets/T-999", vec![], 404, "not_found"),
        ("GET", "/tickets/not-an-id", vec![], 404, "not_found"),
        ("GET", "/tickets?status=sleeping", vec![], 400, "bad_query"),
    ];
    for (method, path, body, status, needle) in cases {
        let (got, out) = f.agent.raw(method, path, body).await.unwrap();
        assert_eq!(got, status, "{method} {path}: {out}");
        assert!(out.to_string().contains(needle), "{method} {path}: expected {needle} in {out}");
        assert!(out["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{out}");
    }
    assert_eq!(f.agent.get("/tickets").await.unwrap()["tickets"], json!([]), "nothing persisted");

    // Invalid transition: named field and allowed moves; the ticket is unchanged.
    let t = f.agent.post("/tickets", &json!({"title": "x", "requester": "r"})).await.unwrap();
    let id = t["ticket"]["id"].as_str().unwrap();
    let (status, out) = f
        .agent
        .call("PATCH", &format!("/tickets/{id}"), Some(&json!({"status": "reopened", "category": "net"})))
        .await
        .unwrap();
    assert_eq!(status, 422);
    assert_eq!(out["error"]["details"]["errors"][0]["pointer"], "/status");
    assert!(out["error"]["message"].as_str().unwrap().contains("cannot move from `new` to `reopened`"));
    let after = f.agent.get(&format!("/tickets/{id}")).await.unwrap();
    assert_eq!(after["category"], Value::Null, "a failed patch changes nothing");

    // Auth: no token, unknown token, wrong role.
    let anon = Api::new(&f.agent.url, "");
    assert_eq!(anon.call("GET", "/tickets", None).await.unwrap().0, 401);
    let wrong = Api::new(&f.agent.url, "not-a-real-token-at-all");
    assert_eq!(wrong.call("GET", "/tickets", None).await.unwrap().0, 401);
    let (status, out) = f.agent.call("POST", "/workflows", Some(&shipped("route-network.json"))).await.unwrap();
    assert_eq!(status, 403, "{out}");
    assert_eq!(anon.call("GET", "/health", None).await.unwrap().0, 200, "health needs no token");
}

#[tokio::test]
async fn loop_guard_refuses_a_self_retriggering_workflow_visibly() {
    let f = start("loop_depth = 3").await;
    let wf = json!({
        "id": "ping", "name": "Rewrites a field on every update",
        "triggers": [{"on": "ticket.updated"}],
        "steps": [{"id": "touch", "type": "set", "fields": {"custom.last_run": "{{run.id}}"}}]
    });
    f.admin.post("/workflows", &wf).await.unwrap();
    let t = f.agent.post("/tickets", &json!({"title": "x", "requester": "r"})).await.unwrap();
    let id = t["ticket"]["id"].as_str().unwrap().to_string();
    f.agent.call("PATCH", &format!("/tickets/{id}"), Some(&json!({"category": "loop"}))).await.unwrap();
    f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();

    let runs = f.agent.get(&format!("/runs?ticket={id}")).await.unwrap()["runs"].as_array().unwrap().clone();
    let statuses: Vec<&str> = runs.iter().rev().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["completed", "completed", "completed", "refused"]);
    let refused = &runs[0];
    assert!(refused["error"].as_str().unwrap().contains("loop guard"), "{refused}");
    assert_eq!(refused["causation"].as_array().unwrap().len(), 3);
    let events = f.agent.get(&format!("/tickets/{id}/events")).await.unwrap();
    assert!(events["events"].as_array().unwrap().iter().any(|e| e["evaluations"][0]["outcome"] == "refused"));
}

#[tokio::test]
async fn manual_start_with_input_and_signed_outbound_webhook() {
    use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post, Router};
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<(String, Value)>>>;
    let seen: Seen = Arc::default();
    async fn hook(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> axum::http::StatusCode {
        let sig = headers.get("x-switchboard-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
        if switchboard::notify::verify(switchboard_tests::SECRET.as_bytes(), sig, &body).is_none() {
            return axum::http::StatusCode::UNAUTHORIZED;
        }
        let delivery = headers.get("x-switchboard-delivery").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        seen.lock().unwrap().push((delivery, serde_json::from_slice(&body).unwrap()));
        axum::http::StatusCode::OK
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/hook", post(hook)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let f = start("").await;
    let wf = json!({
        "id": "announce", "name": "Announce by hand",
        "triggers": [{"on": "manual"}],
        "steps": [
            {"id": "note", "type": "comment", "body": "Announced: {{vars.input.message}}", "internal": false},
            {"id": "hook", "type": "notify", "url": format!("http://127.0.0.1:{port}/hook"),
             "payload": {"ticket": "{{ticket.id}}", "message": "{{vars.input.message}}"}}
        ]
    });
    f.admin.post("/workflows", &wf).await.unwrap();
    let t = f.agent.post("/tickets", &json!({"title": "x", "requester": "r"})).await.unwrap();
    let id = t["ticket"]["id"].as_str().unwrap().to_string();
    let started = f
        .agent
        .post("/workflows/announce/runs", &json!({"ticket": id, "input": {"message": "maintenance at 6"}}))
        .await
        .unwrap();
    let run_id = started["runs"][0].as_str().unwrap().to_string();
    f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();

    let run = f.agent.get(&format!("/runs/{run_id}")).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    let ticket = f.agent.get(&format!("/tickets/{id}")).await.unwrap();
    assert_eq!(ticket["comments"][0]["body"], "Announced: maintenance at 6");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, format!("{run_id}/hook"));
    assert_eq!(seen[0].1, json!({"ticket": id, "message": "maintenance at 6"}));

    // A workflow without a manual trigger cannot be started by hand.
    let (status, _) = f.agent.call("POST", "/workflows/nope/runs", Some(&json!({"ticket": id}))).await.unwrap();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn links_are_recorded_on_both_sides_with_history() {
    let f = start("").await;
    let a = f.agent.post("/tickets", &json!({"title": "Outage", "requester": "r"})).await.unwrap();
    let b = f.agent.post("/tickets", &json!({"title": "Me too", "requester": "s"})).await.unwrap();
    let (a, b) = (a["ticket"]["id"].as_str().unwrap().to_string(), b["ticket"]["id"].as_str().unwrap().to_string());
    f.agent.post(&format!("/tickets/{b}/links"), &json!({"kind": "parent", "ticket": a})).await.unwrap();
    f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();
    let parent = f.agent.get(&format!("/tickets/{a}")).await.unwrap();
    assert_eq!(parent["links"], json!([{"kind": "child", "ticket": b}]));
    assert_eq!(parent["open_children"], 1, "the child is open: {parent}");
    let history = f.agent.get(&format!("/tickets/{a}/history")).await.unwrap();
    let fields: Vec<&str> =
        history["history"].as_array().unwrap().iter().filter_map(|h| h["changes"][0]["field"].as_str()).collect();
    assert_eq!(fields, ["links", "open_children"], "the link, then the count it changed");
    let (status, out) = f
        .agent
        .call("POST", &format!("/tickets/{b}/links"), Some(&json!({"kind": "sibling", "ticket": a})))
        .await
        .unwrap();
    assert_eq!((status, out["error"]["details"]["errors"][0]["pointer"].as_str()), (422, Some("/kind")));
    let (status, _) = f
        .agent
        .call("POST", &format!("/tickets/{b}/links"), Some(&json!({"kind": "related", "ticket": "T-999"})))
        .await
        .unwrap();
    assert_eq!(status, 422);
}

/// Regression: a saturated group gave "Routed to  (least loaded in network)." with an
/// empty name. The note says no one was available and what happens next.
#[tokio::test]
async fn a_saturated_group_is_said_so_in_the_note() {
    let f = start("").await;
    f.admin.post("/groups", &json!({"id": "network", "name": "network"})).await.unwrap();
    f.admin
        .post("/agents", &json!({"id": "dan", "name": "dan", "groups": ["network"], "capacity": 1, "on_shift": true}))
        .await
        .unwrap();
    f.admin.post("/workflows", &shipped("route-network.json")).await.unwrap();
    let mut notes = Vec::new();
    for title in ["Switch down in B1", "Switch down in B2"] {
        let out = f
            .agent
            .post("/tickets", &json!({"title": title, "requester": "ann", "category": "network"}))
            .await
            .unwrap();
        f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();
        let id = out["ticket"]["id"].as_str().unwrap();
        let t = f.agent.get(&format!("/tickets/{id}")).await.unwrap();
        notes.push((t["assignee"].clone(), t["comments"][0]["body"].as_str().unwrap_or("").to_string()));
    }
    assert_eq!(notes[0], (json!("dan"), "Routed to dan (least loaded in network).".to_string()));
    assert_eq!(notes[1].0, Value::Null, "dan is at capacity");
    assert!(
        notes[1].1.contains("no one in network was available") && notes[1].1.contains("waits unassigned"),
        "{:?}",
        notes[1]
    );
}

/// Regression: a comment took no author, so a requester's reply relayed by a portal was
/// the portal's and `event.by_requester` never held. It may name the person; the audit
/// log says which token posted it.
#[tokio::test]
async fn a_portal_posts_a_reply_on_behalf_of_the_requester() {
    let f = start("").await;
    let wf = json!({"id": "reply-seen", "name": "Requester replied", "triggers": [{"on": "comment.added"}],
        "conditions": {"field": "event.by_requester", "op": "eq", "value": true},
        "steps": [{"id": "note", "type": "comment", "internal": true, "body": "The requester replied."}]});
    f.admin.post("/workflows", &wf).await.unwrap();
    let t = f.agent.post("/tickets", &json!({"title": "VPN", "requester": "ann"})).await.unwrap();
    let id = t["ticket"]["id"].as_str().unwrap();
    let out = f
        .agent
        .post(&format!("/tickets/{id}/comments"), &json!({"body": "Still broken", "author": "ann"}))
        .await
        .unwrap();
    assert_eq!(out["runs"].as_array().unwrap().len(), 1, "by_requester held: {out}");
    f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();
    let ticket = f.agent.get(&format!("/tickets/{id}")).await.unwrap();
    assert_eq!(ticket["comments"][0]["author"], "ann");
    assert_eq!(ticket["comments"][1]["body"], "The requester replied.");
    let audit = f.admin.get("/audit").await.unwrap().to_string();
    assert!(audit.contains("comment.on_behalf") && audit.contains("agent-ann"), "{audit}");
    // Without `author` the token's name is the author, as before.
    let out = f.agent.post(&format!("/tickets/{id}/comments"), &json!({"body": "Looking"})).await.unwrap();
    assert!(out["runs"].as_array().unwrap().is_empty());
}

/// Regression: the leaver workflow disabled accounts the moment HR's webhook arrived,
/// though HR announces leavers weeks ahead. It waits until the last day.
#[tokio::test]
async fn the_leaver_workflow_waits_for_the_last_day() {
    let f = start("").await;
    for plugin in ["directory", "m365"] {
        let (status, body) = f
            .admin
            .raw("POST", "/plugins", std::fs::read(switchboard_tests::plugin_wasm(plugin)).unwrap())
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    f.admin.post("/workflows", &shipped("leaver-offboarding.json")).await.unwrap();
    let t = f
        .agent
        .post(
            "/tickets",
            &json!({"title": "Offboard Leo", "requester": "hr", "kind": "service_request",
            "category": "offboarding", "custom": {"leaver_upn": "lleaver@example.com", "last_day": "2099-06-30"}}),
        )
        .await
        .unwrap();
    f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();
    let run = &t["runs"][0];
    let run = f.agent.get(&format!("/runs/{}", run.as_str().unwrap())).await.unwrap();
    assert_eq!(run["status"], "waiting", "{run}");
    assert_eq!(run["waiting"]["step"], "last_day");
    assert_eq!(run["waiting"]["deadline"], "2099-06-30T16:00:00Z", "18:00 in Berlin (CEST)");
}

/// Regression: the tour logged 9 lines: no access log, no line per run outcome, a
/// failed run no WARN, ANSI colours into a file. Now each is there, in plain text.
#[tokio::test]
async fn operators_get_an_access_log_and_a_line_per_run_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let config = switchboard_tests::write_config(dir.path(), "").unwrap();
    let log = dir.path().join("server.log");
    let server =
        switchboard_tests::Server::start_logged("127.0.0.1:0", &dir.path().join("data"), &config, &[], &log, "info")
            .unwrap();
    let admin = Api::new(&server.url, switchboard_tests::ADMIN);
    let ok = json!({"id": "fine", "name": "fine", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "n", "type": "comment", "internal": true, "body": "seen"}]});
    let bad = json!({"id": "broken", "name": "broken", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "boom", "type": "fail", "reason": "on purpose"}]});
    admin.post("/workflows", &ok).await.unwrap();
    admin.post("/workflows", &bad).await.unwrap();
    let t = admin.post("/tickets", &json!({"title": "t", "requester": "r"})).await.unwrap();
    admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    let (status, _) = Api::new(&server.url, "wrong-token-0123456789").call("GET", "/tickets", None).await.unwrap();
    assert_eq!(status, 401);
    let id = t["ticket"]["id"].as_str().unwrap();
    // Run outcome lines are written just after the commit the API already shows.
    let text = log_until(&log, |t| t.contains("run completed") && t.contains("run failed")).await;
    assert!(!text.contains('\u{1b}'), "no colour codes in a file");
    assert!(
        text.lines().any(|l| l.contains("request")
            && l.contains("POST")
            && l.contains("status=201")
            && l.contains("token=admin")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.contains("status=401")), "401s are logged: {text}");
    assert!(
        text.lines().any(|l| l.contains("INFO")
            && l.contains("run completed")
            && l.contains(&format!("ticket={id}"))
            && l.contains("workflow=fine")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("WARN") && l.contains("run failed") && l.contains("workflow=broken")),
        "{text}"
    );
}

/// Regression (found by CI in the leaver test): a wait until a time already past parked
/// the run for the timer loop to wake, so for a moment the run looked idle though it had
/// steps left. It goes on at once, without parking.
#[tokio::test]
async fn a_wait_until_a_past_time_goes_on_without_parking() {
    let f = start("").await;
    let wf = json!({"id": "late", "name": "late", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "until", "type": "wait", "at": "2020-01-01T09:00", "timezone": "Europe/Berlin"},
                  {"id": "note", "type": "comment", "internal": true, "body": "went on"}]});
    f.admin.post("/workflows", &wf).await.unwrap();
    let t = f.agent.post("/tickets", &json!({"title": "t", "requester": "r"})).await.unwrap();
    f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();
    let run = f.agent.get(&format!("/runs/{}", t["runs"][0].as_str().unwrap())).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    let outcomes: Vec<&str> = run["trace"].as_array().unwrap().iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert!(!outcomes.contains(&"waiting"), "{outcomes:?}");
    let until = run["trace"].as_array().unwrap().iter().find(|e| e["step"] == "until").unwrap();
    assert_eq!(until["outcome"], "timed_out");
    assert!(until["message"].as_str().unwrap().contains("had already passed; went to note"), "{until}");
}

/// `log_format = "json"`: one JSON object per line, lines inside a run carry its ticket;
/// `/metrics` counts HTTP requests by route and status, and reports tickets by status and
/// group, waiting runs, pending approvals, dead letters and the build.
#[tokio::test]
async fn json_logs_carry_the_ticket_and_metrics_count_what_operators_watch() {
    let dir = tempfile::tempdir().unwrap();
    let config = switchboard_tests::write_config(dir.path(), "log_format = \"json\"").unwrap();
    let log = dir.path().join("server.log");
    let server =
        switchboard_tests::Server::start_logged("127.0.0.1:0", &dir.path().join("data"), &config, &[], &log, "info")
            .unwrap();
    let admin = Api::new(&server.url, switchboard_tests::ADMIN);
    let parked = json!({"id": "parked", "name": "parked", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "boom", "type": "wait", "minutes": 600}]});
    let noted = json!({"id": "noted", "name": "noted", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "n", "type": "comment", "internal": true, "body": "seen"}]});
    admin.post("/workflows", &parked).await.unwrap();
    admin.post("/workflows", &noted).await.unwrap();
    let t = admin.post("/tickets", &json!({"title": "t", "requester": "r"})).await.unwrap();
    let id = t["ticket"]["id"].as_str().unwrap();
    admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    let (status, _) = admin.call("GET", "/tickets/T-999", None).await.unwrap();
    assert_eq!(status, 404);
    // A run's outcome line is written just after its commit, which the API already shows:
    // read the log until the lines are there.
    let parse = |text: &str| -> Vec<Value> {
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    };
    let wanted = |lines: &[Value]| {
        lines.iter().any(|l| l["fields"]["route"] == "/tickets/{id}" && l["fields"]["status"] == 404)
            && lines.iter().any(|l| {
                l["fields"]["message"] == "run completed"
                    && l["span"]["ticket"] == id
                    && l["span"]["workflow"] == "noted"
            })
    };
    let text = log_until(&log, |t| wanted(&parse(t))).await;
    assert!(wanted(&parse(&text)), "the access line and the run's line with its ticket, as JSON: {text}");

    let metrics = admin.metrics().await.unwrap();
    for expected in [
        "switchboard_http_requests_total{method=\"GET\",route=\"/tickets/{id}\",status=\"404\"} 1",
        "switchboard_http_requests_total{method=\"POST\",route=\"/tickets\",status=\"201\"} 1",
        "switchboard_tickets{status=\"new\",group=\"(none)\"} 1",
        "switchboard_runs_waiting 1",
        "switchboard_approvals_pending 0",
        "switchboard_dead_letters 0",
        "switchboard_http_request_seconds_count{route=\"/tickets\"}",
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }
    assert!(
        metrics.lines().any(|l| l.starts_with("switchboard_build_info{version=\"") && l.ends_with(" 1")),
        "{metrics}"
    );
}

/// The server's log once `done` holds for it (or after 10 s, for the caller's assert).
async fn log_until(log: &std::path::Path, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if done(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Scheduled workflows (the weekly report, a nudge over stale tickets) run on demand and
/// dry-run without a ticket, as if their schedule fired now; the timer is untouched.
#[tokio::test]
async fn scheduled_workflows_run_on_demand_and_dry_run_without_a_ticket() {
    let f = start("").await;
    let nudge = json!({"id": "nudge", "name": "nudge",
        "triggers": [{"on": "schedule", "cron": "0 7 * * 1", "timezone": "Europe/Berlin",
            "tickets": {"field": "ticket.status", "op": "eq", "value": "new"}}],
        "steps": [{"id": "mark", "type": "set", "fields": {"custom.nudged": true}}]});
    let weekly = json!({"id": "weekly", "name": "weekly",
        "triggers": [{"on": "schedule", "cron": "0 7 * * 1", "timezone": "Europe/Berlin"}],
        "steps": [{"id": "post", "type": "notify", "url": "http://127.0.0.1:9/inbox", "payload": {"open": "{{vars.backlog.open}}"}}]});
    f.admin.post("/workflows", &nudge).await.unwrap();
    f.admin.post("/workflows", &weekly).await.unwrap();
    let schedules_before = f.admin.get("/schedules").await.unwrap();
    let a = f.agent.post("/tickets", &json!({"title": "a", "requester": "r"})).await.unwrap();
    let b = f.agent.post("/tickets", &json!({"title": "b", "requester": "r"})).await.unwrap();
    let (a, b) = (a["ticket"]["id"].as_str().unwrap().to_string(), b["ticket"]["id"].as_str().unwrap().to_string());
    f.agent.call("PATCH", &format!("/tickets/{b}"), Some(&json!({"status": "resolved"}))).await.unwrap();

    // Dry runs: the fan-out sees the one new ticket; the summary sees the backlog.
    let dry = f.admin.post("/workflows/dry-run", &json!({"workflow_id": "nudge"})).await.unwrap();
    assert_eq!((dry["fan_out"].as_bool(), dry["matching"].as_u64()), (Some(true), Some(1)), "{dry}");
    assert_eq!(dry["results"][0]["ticket"], a.as_str());
    assert_eq!(dry["results"][0]["result"]["changes"][0]["field"], "custom.nudged", "{dry}");
    let dry = f.admin.post("/workflows/dry-run", &json!({"workflow_id": "weekly"})).await.unwrap();
    assert_eq!(dry["results"][0]["result"]["notifications"][0]["body"], json!({"open": 1}), "{dry}");
    assert_eq!(dry["results"][0]["ticket"], Value::Null);

    // On demand: runs now over the matching tickets; nothing else, no timer moved.
    let (status, started) = f.agent.call("POST", "/workflows/nudge/runs", Some(&json!({}))).await.unwrap();
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["runs"].as_array().unwrap().len(), 1);
    f.agent.wait_idle(Duration::from_secs(10)).await.unwrap();
    assert_eq!(f.agent.get(&format!("/tickets/{a}")).await.unwrap()["custom"]["nudged"], true);
    let resolved = f.agent.get(&format!("/tickets/{b}")).await.unwrap();
    assert_eq!(resolved["custom"].get("nudged"), None, "resolved: not matched");
    let run = f.agent.get(&format!("/runs/{}", started["runs"][0].as_str().unwrap())).await.unwrap();
    assert_eq!(run["event_type"], "schedule");
    let schedules_after = f.admin.get("/schedules").await.unwrap();
    assert_eq!(schedules_before["schedules"], schedules_after["schedules"], "the schedule is untouched");
    let audit = f.admin.get("/audit").await.unwrap();
    assert!(audit.to_string().contains("workflow.run_now"), "{audit}");

    // A workflow with neither a schedule nor a ticket says what is missing.
    let hand = json!({"id": "hand", "name": "hand", "triggers": [{"on": "manual"}], "steps": [{"id": "r", "type": "resolve"}]});
    f.admin.post("/workflows", &hand).await.unwrap();
    let (status, body) = f.agent.call("POST", "/workflows/hand/runs", Some(&json!({}))).await.unwrap();
    assert_eq!((status, body["error"]["details"]["errors"][0]["pointer"].as_str()), (422, Some("/ticket")), "{body}");
}

/// Optimistic concurrency for API clients: a ticket's `ETag` is its version; a `PATCH`
/// with `If-Match` applies only while the ticket is still at that version (RFC 9110
/// §13.1.1), so two agents editing the same ticket cannot overwrite each other blindly.
#[tokio::test]
async fn if_match_refuses_a_change_computed_from_an_older_version() {
    let f = start("").await;
    let out = f.agent.post("/tickets", &json!({"title": "VPN down", "requester": "ann"})).await.unwrap();
    let id = out["ticket"]["id"].as_str().unwrap().to_string();
    let path = format!("/tickets/{id}");
    let (status, headers, ticket) = f.agent.request("GET", &path, None, &[]).await.unwrap();
    assert_eq!(status, 200);
    let tag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(tag, format!("\"{}\"", ticket["version"]), "the ETag is the version");
    let patch = |title: &str| json!({"title": title});
    // First writer wins; the ETag moves on.
    let (status, headers, body) =
        f.agent.request("PATCH", &path, Some(&patch("first")), &[("if-match", &tag)]).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_ne!(headers["etag"].to_str().unwrap(), tag);
    // Second writer, from the same read: 412 with the JSON error, nothing written.
    let (status, _, body) =
        f.agent.request("PATCH", &path, Some(&patch("second")), &[("if-match", &tag)]).await.unwrap();
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["error"]["code"], "stale");
    assert_eq!(f.agent.get(&path).await.unwrap()["title"], "first");
    // A list matches any of its tags; a weak tag never matches; `*` matches any version.
    let now = f.agent.get(&path).await.unwrap()["version"].to_string();
    let list = format!("\"999\", \"{now}\"");
    let (status, _, _) = f.agent.request("PATCH", &path, Some(&patch("third")), &[("if-match", &list)]).await.unwrap();
    assert_eq!(status, 200);
    let now = f.agent.get(&path).await.unwrap()["version"].to_string();
    let weak = format!("W/\"{now}\"");
    let (status, _, _) = f.agent.request("PATCH", &path, Some(&patch("weak")), &[("if-match", &weak)]).await.unwrap();
    assert_eq!(status, 412);
    let (status, _, _) = f.agent.request("PATCH", &path, Some(&patch("any")), &[("if-match", "*")]).await.unwrap();
    assert_eq!(status, 200);
    // A malformed header is a 400 that names it, before anything is read or written.
    let (status, _, body) = f.agent.request("PATCH", &path, Some(&patch("bad")), &[("if-match", "3")]).await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("If-Match"), "{body}");
    assert_eq!(f.agent.get(&path).await.unwrap()["title"], "any");
}
