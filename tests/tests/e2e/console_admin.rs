//! The console's pages for admins and approvers outside the desk's daily lists, over real
//! HTTP: the signed approval link answered with pages, plugins installed by upload and
//! granted, inbound webhook deliveries with their answers, live refresh's event stream,
//! ticket text search and run time filters.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchboard_tests::console::signed_in;
use switchboard_tests::{plugin_wasm, post_hook, repo, Stand, ADMIN, AGENT, INTEGRATOR};

/// A workflow whose approval asks `who`, and a ticket that starts it: the approval's id.
async fn pending_approval(stand: &Stand, who: &str) -> String {
    stand
        .admin
        .post(
            "/workflows",
            &json!({"id": "laptop", "name": "Laptop approval", "triggers": [{"on": "ticket.created"}],
                "steps": [{"id": "ask", "type": "approval", "stages": [{"name": "manager", "approvers": [{"user": who}]}]}]}),
        )
        .await
        .unwrap();
    stand.admin.post("/tickets", &json!({"title": "New laptop", "requester": "bob"})).await.unwrap();
    stand.admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    let pending = stand.admin.get(&format!("/approvals?pending_for={who}")).await.unwrap();
    pending["approvals"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_signed_approval_link_answers_with_pages_and_says_when_it_is_decided_already() {
    let stand = Stand::start("").unwrap();
    let approval = pending_approval(&stand, "carol").await;
    let links = stand.admin.post(&format!("/approvals/{approval}/links"), &json!({})).await.unwrap();
    let approve = links["links"][0]["approve"].as_str().unwrap();
    let path = &approve[approve.find("/approvals/").unwrap()..];
    let http = reqwest::Client::new();
    let url = format!("{}{path}", stand.server.url);

    let confirm = http.get(&url).send().await.unwrap();
    assert_eq!(confirm.status(), 200);
    assert!(confirm.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let page = confirm.text().await.unwrap();
    assert!(page.contains("app.css") && page.contains("New laptop"), "styled like the console: {page}");
    assert!(page.contains("Approve as carol"), "{page}");
    assert_eq!(
        stand.admin.get(&format!("/approvals/{approval}")).await.unwrap()["status"],
        "pending",
        "GET decides nothing"
    );

    // A tampered link shows a page saying so, and nothing of the approval.
    let forged = http.get(url.replace("approver=carol", "approver=mallory")).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    let forged = forged.text().await.unwrap();
    assert!(!forged.contains("New laptop") && forged.contains("<html"), "{forged}");

    let decided = http
        .post(&url)
        .header("accept", "text/html,application/xhtml+xml")
        .form(&[("comment", "ok by me")])
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);
    let decided = decided.text().await.unwrap();
    assert!(decided.contains("Thank you: approved as carol") && decided.contains("approved"), "{decided}");
    let stored = stand.admin.get(&format!("/approvals/{approval}")).await.unwrap();
    assert_eq!(stored["status"], "approved");
    assert_eq!(stored["stages"][0]["slots"][0]["decision"]["comment"], "ok by me");

    // Opened again: already decided, no button. Posted again: the same, with the API's status.
    let again = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(again.contains("already") && !again.contains("<button"), "{again}");
    let replay = http.post(&url).header("accept", "text/html").form(&[("comment", "")]).send().await.unwrap();
    assert!(matches!(replay.status().as_u16(), 403 | 409), "{}", replay.status());
    assert!(replay.text().await.unwrap().contains("already"));
    // Another method: a 405 that says so, as on every console address.
    let put = http.put(&url).send().await.unwrap();
    assert_eq!(put.status(), 405);
    assert!(put.text().await.unwrap().contains("does not take that method"));
    // A link cut short: a page for a browser, the API's JSON error for an API client.
    let cut = url[..url.find("&sig=").unwrap()].to_string();
    let cut_page = http.post(&cut).header("accept", "text/html").send().await.unwrap();
    assert_eq!(cut_page.status(), 400);
    assert!(cut_page.text().await.unwrap().contains("<html"));
    let cut_json: Value = http.post(&cut).send().await.unwrap().json().await.unwrap();
    assert!(cut_json["error"]["message"].as_str().unwrap().contains("sig"), "{cut_json}");
    // An API client still gets JSON.
    let json = http.post(&url).send().await.unwrap();
    assert!(json.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = json.json().await.unwrap();
    assert!(body["error"].is_object() || body["message"].is_string() || body["code"].is_string(), "{body}");
}

#[tokio::test]
async fn plugins_are_installed_by_upload_and_an_admin_grants_them_connections_and_config() {
    let stand = Stand::start("").unwrap();
    let module = std::fs::read(plugin_wasm("kb-suggest")).unwrap();
    let integrator = signed_in(&stand, INTEGRATOR).await;
    let page = integrator.get("/console/plugins").await;
    assert!(page.body.contains("Install a plugin") && !page.body.contains("Save grants"), "{}", page.body);
    let upload = |csrf: String, bytes: Vec<u8>| {
        reqwest::multipart::Form::new()
            .text("csrf", csrf)
            .part("module", reqwest::multipart::Part::bytes(bytes).file_name("kb-suggest.wasm"))
    };
    let installed = integrator
        .send(
            integrator
                .http
                .post(format!("{}/console/plugins", stand.server.url))
                .multipart(upload(page.csrf(), module.clone())),
        )
        .await;
    assert_eq!(installed.status, 303, "{}", installed.body);
    let stored = stand.admin.get("/plugins/kb-suggest").await.unwrap();
    assert_eq!(stored["installed_by"], "integrator-ivy");
    // Not a module: the installer's own error, on a page.
    let junk = integrator
        .send(
            integrator
                .http
                .post(format!("{}/console/plugins", stand.server.url))
                .multipart(upload(page.csrf(), b"MZ not wasm".to_vec())),
        )
        .await;
    assert!(matches!(junk.status, 400 | 422), "{} {}", junk.status, junk.body);
    // Without the CSRF token: refused, nothing installed.
    let forged = integrator
        .send(
            integrator
                .http
                .post(format!("{}/console/plugins", stand.server.url))
                .multipart(upload(String::new(), module)),
        )
        .await;
    assert_eq!(forged.status, 403);

    let admin = signed_in(&stand, ADMIN).await;
    let page = admin.get("/console/plugins").await;
    assert!(page.body.contains("Save grants of kb-suggest"), "{}", page.body);
    let granted = admin
        .post(
            "/console/plugins/kb-suggest/grants",
            &[("csrf", &page.csrf()), ("connections", " "), ("config", "base_url = https://kb.example\n\n")],
        )
        .await;
    assert_eq!(granted.status, 303, "{}", granted.body);
    let stored = stand.admin.get("/plugins/kb-suggest").await.unwrap();
    assert_eq!(stored["connections"], json!([]));
    assert_eq!(stored["config"], json!({"base_url": "https://kb.example"}));
    // A connection the server does not have: the API's check, on a page.
    let unknown =
        admin.post("/console/plugins/kb-suggest/grants", &[("csrf", &page.csrf()), ("connections", "kb")]).await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("connection `kb` is not configured"), "{}", unknown.body);
    let bad =
        admin.post("/console/plugins/kb-suggest/grants", &[("csrf", &page.csrf()), ("config", "no equals sign")]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Config line 1"), "{}", bad.body);
    let off = admin.post("/console/plugins/kb-suggest/disable", &[("csrf", &page.csrf())]).await;
    assert_eq!(off.status, 303);
    assert_eq!(stand.admin.get("/plugins/kb-suggest").await.unwrap()["enabled"], false);
    // Grants are an admin's: the integrator's post is refused.
    let theirs = integrator.get("/console/plugins").await;
    let refused = integrator
        .post("/console/plugins/kb-suggest/grants", &[("csrf", &theirs.csrf()), ("connections", "all")])
        .await;
    assert_eq!(refused.status, 403);
}

#[tokio::test]
async fn the_webhooks_page_lists_recent_deliveries_with_their_answers() {
    let stand = Stand::start("").unwrap();
    let text = std::fs::read_to_string(repo().join("workflows/webhooks/monitoring-alert.json")).unwrap();
    let mut endpoint: Value = serde_json::from_str(&text).unwrap();
    endpoint["secret"] = json!("hook-secret-0123456789");
    stand.admin.post("/webhooks", &endpoint).await.unwrap();
    let http = reqwest::Client::new();
    let alert =
        json!({"fingerprint": "fp-9", "delivery": "d-9", "labels": {"alertname": "DiskFull", "instance": "db1"}});
    let bad = post_hook(&http, &stand.server.url, "monitoring-alert", "wrong-secret", &alert, None).await.unwrap();
    assert_eq!(bad.status(), 401);
    let ok =
        post_hook(&http, &stand.server.url, "monitoring-alert", "hook-secret-0123456789", &alert, None).await.unwrap();
    assert_eq!(ok.status(), 202);
    let ticket = ok.json::<Value>().await.unwrap()["ticket"].as_str().unwrap().to_string();

    let page = signed_in(&stand, ADMIN).await.get("/console/webhooks").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let recent = &page.body[page.body.find("Recent deliveries").unwrap()..];
    let (accepted, refused) = (recent.find("accepted").unwrap(), recent.find("bad_signature").unwrap());
    assert!(accepted < refused, "newest first: {recent}");
    assert!(recent.contains(&format!("/console/tickets/{ticket}")), "links the ticket: {recent}");
    assert!(recent.contains("signature does not match"), "says why: {recent}");
    assert!(recent.contains("d-9"), "the delivery id: {recent}");
    assert_eq!(signed_in(&stand, AGENT).await.get("/console/webhooks").await.status, 403, "admins only, as the API");
}

#[tokio::test]
async fn the_event_stream_says_change_when_the_desk_changes() {
    let stand = Stand::start("").unwrap();
    let console = signed_in(&stand, AGENT).await;
    let script = console.get("/console/static/live.js").await;
    assert_eq!(script.status, 200);
    assert!(script.headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(console.get("/console/runs").await.body.contains("data-live"), "the list is refreshed live");
    let req = console.http.get(format!("{}/console/events", stand.server.url));
    let mut stream = req.header("cookie", console.cookie.clone().unwrap()).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    stand.admin.post("/tickets", &json!({"title": "Printer", "requester": "bob"})).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while !seen.contains("event: change") {
        assert!(Instant::now() < deadline, "no change event: {seen}");
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.chunk()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // Without a session there is no stream.
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let refused = anonymous.get(format!("{}/console/events", stand.server.url)).send().await.unwrap();
    assert_eq!(refused.status(), 303);
}

#[tokio::test]
async fn tickets_are_found_by_text_and_runs_by_when_they_started() {
    let stand = Stand::start("").unwrap();
    stand.admin.post("/workflows", &switchboard_tests::printer_triage("printer")).await.unwrap();
    for (title, description) in
        [("VPN drops", "every hour"), ("printer jam", "tray 2"), ("Mail", "the PRINTER in room 4")]
    {
        stand
            .admin
            .post("/tickets", &json!({"title": title, "description": description, "requester": "bob"}))
            .await
            .unwrap();
    }
    stand.admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    let console = signed_in(&stand, AGENT).await;
    let found = console.get("/console/tickets?text=printer").await;
    assert!(found.body.contains("printer jam") && found.body.contains("Mail"), "{}", found.body);
    assert!(!found.body.contains("VPN drops"), "{}", found.body);
    let api = stand.admin.get("/tickets?text=PRINTER").await.unwrap();
    assert_eq!(api["tickets"].as_array().unwrap().len(), 2, "the API's filter is the same");

    let runs = stand.admin.get("/runs").await.unwrap();
    let started = runs["runs"][0]["created_at"].as_str().unwrap().to_string();
    let at = chrono::DateTime::parse_from_rfc3339(&started).unwrap().with_timezone(&chrono::Utc);
    let minute = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let later = console.get(&format!("/console/runs?from={}", minute(at + chrono::Duration::minutes(2)))).await;
    assert!(later.body.contains("No runs match"), "{}", later.body);
    let around = console
        .get(&format!(
            "/console/runs?from={}&to={}",
            minute(at - chrono::Duration::minutes(1)),
            minute(at + chrono::Duration::minutes(2))
        ))
        .await;
    assert!(around.body.contains("/console/runs/R-"), "{}", around.body);
    let bad = console.get("/console/runs?from=yesterday").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("`from`"), "{}", bad.body);
}
