//! The console in a real browser (headless Chromium through chromedriver): sign in,
//! keyboard navigation, log a ticket through the form, follow it to its run's timeline,
//! approve from the inbox, read the dashboard, and the same pages at phone width.
//! Screenshots of each page are saved under the test's temp dir (or under
//! `SWITCHBOARD_SCREENSHOTS`, to keep and look at).

use serde_json::json;
use std::time::Duration;
use switchboard_tests::browser::{self, Browser};
use switchboard_tests::{Stand, AGENT};

/// Where a test's screenshots go: `SWITCHBOARD_SCREENSHOTS` to keep them, else the
/// test's temp dir.
fn screenshots(stand: &Stand) -> std::path::PathBuf {
    std::env::var_os("SWITCHBOARD_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| stand.dir.path().join("screenshots"))
}

#[tokio::test]
async fn a_person_works_the_desk_in_a_real_browser() {
    assert!(browser::available(), "Chromium and chromedriver are missing: run tests/deps.sh");
    let stand = Stand::start("").unwrap();
    stand.admin.post("/workflows", &switchboard_tests::printer_triage("Printer")).await.unwrap();
    stand
        .admin
        .post(
            "/workflows",
            &json!({"id": "laptop", "name": "Laptop approval", "triggers": [{"on": "ticket.created"}],
                "conditions": {"field": "ticket.title", "op": "contains", "value": "laptop"},
                "steps": [{"id": "ask", "type": "approval", "stages": [{"name": "manager", "approvers": [{"user": "agent-ann"}]}]}]}),
        )
        .await
        .unwrap();
    let shots = screenshots(&stand);
    let base = stand.server.url.clone();
    let mut b = Browser::start(1280, 900, &shots).await.unwrap();

    // Not signed in: the sign-in form, which comes back to the page asked for.
    b.goto(&format!("{base}/console/tickets")).await.unwrap();
    assert_eq!(b.path().await.unwrap(), "/console/login?next=%2Fconsole%2Ftickets");
    b.screenshot("01-sign-in").await.unwrap();
    b.fill("#token", AGENT).await.unwrap();
    b.click("form[action='/console/login'] button[type=submit]").await.unwrap();
    assert_eq!(b.path().await.unwrap(), "/console/tickets");

    // The keyboard reaches the skip link first.
    let tab = b.eval("document.body.focus(); return document.activeElement.tagName").await.unwrap();
    assert_eq!(tab, "BODY");
    b.client.active_element().await.unwrap().send_keys("\u{E004}").await.unwrap();
    let focused = b.eval("return document.activeElement.textContent").await.unwrap();
    assert_eq!(focused, "Skip to content");

    // Log a ticket through the form; its page shows what the workflow did.
    b.fill("#new-ticket input[name=title]", "Printer on floor 3 jams").await.unwrap();
    b.fill("#new-ticket input[name=requester]", "ann").await.unwrap();
    b.click("form#new-ticket button[type=submit]").await.unwrap();
    let ticket_path = b.path().await.unwrap();
    assert!(ticket_path.starts_with("/console/tickets/T-"), "{ticket_path}");
    stand.admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    b.goto(&format!("{base}{ticket_path}")).await.unwrap();
    let page = b.source().await.unwrap();
    assert!(page.contains("Triaged by triage") && page.contains("hardware"), "{page}");
    b.screenshot("02-ticket").await.unwrap();

    // Follow it to the run's timeline.
    b.click("a[href^='/console/runs/R-']").await.unwrap();
    assert!(b.text("h1").await.unwrap().starts_with("Run R-"));
    let timeline = b.text("ol.timeline").await.unwrap();
    for seen in ["trigger", "tag", "note", "finished"] {
        assert!(timeline.contains(seen), "{seen} in {timeline}");
    }
    b.screenshot("03-run-timeline").await.unwrap();

    // Approve from the inbox; the decision is the API's.
    let out = stand.admin.post("/tickets", &json!({"title": "New laptop for Bob", "requester": "bob"})).await.unwrap();
    let laptop = out["ticket"]["id"].as_str().unwrap().to_string();
    stand.admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    b.goto(&format!("{base}/console/approvals")).await.unwrap();
    assert!(b.source().await.unwrap().contains(&laptop));
    b.screenshot("04-approvals").await.unwrap();
    b.fill("textarea[name=comment]", "Budget approved").await.unwrap();
    b.click("button[value=approve]").await.unwrap();
    assert_eq!(b.path().await.unwrap(), "/console/approvals");
    assert!(b.source().await.unwrap().contains("Nothing waits for your decision"));
    let approvals = stand.admin.get("/approvals").await.unwrap();
    assert_eq!(approvals["approvals"][0]["status"], "approved", "{approvals}");

    // The dashboard, at desk width and at phone width (no sideways scrolling).
    b.goto(&format!("{base}/console")).await.unwrap();
    assert_eq!(b.text("h1").await.unwrap(), "Dashboard");
    assert!(b.source().await.unwrap().contains("<svg"));
    b.screenshot("05-dashboard").await.unwrap();
    b.resize(390, 844).await.unwrap();
    for (path, name) in [("/console", "06-phone-dashboard"), (ticket_path.as_str(), "07-phone-ticket")] {
        b.goto(&format!("{base}{path}")).await.unwrap();
        b.screenshot(name).await.unwrap();
        let widths = b.eval("return [document.documentElement.scrollWidth, window.innerWidth]").await.unwrap();
        assert!(widths[0].as_u64() <= widths[1].as_u64().map(|w| w + 1), "{path} fits a phone's width: {widths}");
    }
    b.close().await.unwrap();
}

#[tokio::test]
async fn an_admin_breaks_a_workflow_in_the_editor_then_dry_runs_and_publishes_the_fix() {
    assert!(browser::available(), "Chromium and chromedriver are missing: run tests/deps.sh");
    let stand = Stand::start("").unwrap();
    let out = stand.admin.post("/tickets", &json!({"title": "VIP cannot print", "requester": "ceo"})).await.unwrap();
    let ticket = out["ticket"]["id"].as_str().unwrap().to_string();
    let shots = screenshots(&stand);
    let base = stand.server.url.clone();
    let b = Browser::start(1280, 900, &shots).await.unwrap();
    b.goto(&format!("{base}/console/workflows")).await.unwrap();
    b.fill("#token", switchboard_tests::ADMIN).await.unwrap();
    b.click("form[action='/console/login'] button[type=submit]").await.unwrap();
    b.fill("#new-workflow input[name=id]", "vip").await.unwrap();
    b.click("#new-workflow button[type=submit]").await.unwrap();
    assert_eq!(b.path().await.unwrap(), "/console/workflows/vip");

    let broken = r#"{"id": "vip", "name": "VIP", "triggers": [{"on": "ticket.created"}], "steps": [{"id": "go", "type": "if", "condition": {"field": "ticket.title", "op": "contains", "value": "VIP"}, "then": "nowhere"}]}"#;
    b.fill("#definition", broken).await.unwrap();
    b.click("#editor button[type=submit]").await.unwrap();
    let errors = b.text("#errors").await.unwrap();
    assert!(errors.contains("/steps/0/then"), "{errors}");
    assert!(b.text("#definition").await.unwrap().contains("nowhere"), "the text is kept as typed");
    b.screenshot("11-editor-error").await.unwrap();

    let fixed = broken.replace(
        r#""then": "nowhere"}]"#,
        r#""then": "tag"}, {"id": "tag", "type": "set", "fields": {"priority": "P1"}}]"#,
    );
    b.fill("#definition", &fixed).await.unwrap();
    b.click("#editor button[type=submit]").await.unwrap();
    assert!(b.source().await.unwrap().contains("A draft is saved"));
    b.fill("#dry-run input[name=ticket]", &ticket).await.unwrap();
    b.click("#dry-run button[type=submit]").await.unwrap();
    let result = b.text("#dry-result").await.unwrap();
    assert!(result.contains("matches") && result.contains("completed") && result.contains("priority"), "{result}");
    b.screenshot("12-editor-dry-run").await.unwrap();
    b.click("form[action='/console/workflows/vip/publish'] button").await.unwrap();
    assert!(b.source().await.unwrap().contains("Published revision"));
    b.screenshot("13-editor-published").await.unwrap();
    let record = stand.admin.get("/workflows/vip").await.unwrap();
    assert_eq!(record["revision"], 1);
    b.close().await.unwrap();
}

/// Polls the page until `seen` holds for its source (live refresh has no event the
/// test could await), for at most `within`.
async fn until(b: &Browser, within: Duration, seen: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let page = b.source().await.unwrap();
        if seen(&page) {
            return page;
        }
        assert!(std::time::Instant::now() < deadline, "not seen within {within:?}: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_operator_watches_runs_arrive_live_resends_a_dead_letter_and_reads_the_dashboard() {
    use std::sync::atomic::Ordering;
    assert!(browser::available(), "Chromium and chromedriver are missing: run tests/deps.sh");
    let stand = Stand::start("notify_attempts = 1").unwrap();
    let (url, up, hits) = switchboard_tests::flaky_receiver().await;
    stand
        .admin
        .post(
            "/workflows",
            &json!({"id": "tell", "name": "Tell the NOC", "triggers": [{"on": "ticket.created"}],
                "steps": [{"id": "post", "type": "notify", "url": url, "payload": {"ticket": "{{ticket.id}}"}}]}),
        )
        .await
        .unwrap();
    let shots = screenshots(&stand);
    let base = stand.server.url.clone();
    let b = Browser::start(1280, 900, &shots).await.unwrap();
    b.goto(&format!("{base}/console/runs")).await.unwrap();
    b.fill("#token", switchboard_tests::ADMIN).await.unwrap();
    b.click("form[action='/console/login'] button[type=submit]").await.unwrap();
    assert!(b.source().await.unwrap().contains("No runs match"));

    // A ticket logged elsewhere: its run appears on the open page without a reload.
    let out =
        stand.admin.post("/tickets", &json!({"title": "Switch down in room 4", "requester": "noc"})).await.unwrap();
    let ticket = out["ticket"]["id"].as_str().unwrap().to_string();
    let page = until(&b, Duration::from_secs(20), |p| {
        p.contains(&format!("/console/tickets/{ticket}")) && p.contains("failed")
    })
    .await;
    assert!(page.contains("data-refreshed"), "swapped in place by live refresh, not a navigation");
    b.screenshot("21-runs-live").await.unwrap();

    // The notification gave up: resend that one letter from the dead-letter page.
    b.goto(&format!("{base}/console/dead-letters")).await.unwrap();
    assert!(b.source().await.unwrap().contains("1 not resent yet"));
    b.screenshot("22-dead-letters").await.unwrap();
    up.store(true, Ordering::SeqCst);
    b.click("button[aria-label^='Resend R-']").await.unwrap();
    assert_eq!(b.path().await.unwrap(), "/console/dead-letters");
    assert!(b.source().await.unwrap().contains("0 not resent yet"));
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one failed attempt, one resend");

    // The dashboard reads what happened: one ticket logged and open, one failed run.
    b.goto(&format!("{base}/console?days=1")).await.unwrap();
    let card = |name: &str| {
        format!("return Array.from(document.querySelectorAll('.card')).find(c => c.textContent.includes('{name}')).querySelector('.v').textContent")
    };
    assert_eq!(b.eval(&card("Tickets logged")).await.unwrap(), "1");
    assert_eq!(b.eval(&card("Open backlog")).await.unwrap(), "1");
    let failed = b.text("#failed-runs").await.unwrap();
    assert!(failed.contains("tell") && failed.contains(&ticket), "{failed}");
    b.screenshot("23-dashboard").await.unwrap();
    for (path, name) in [("/console/plugins", "24-plugins"), ("/console/webhooks", "25-webhooks")] {
        b.goto(&format!("{base}{path}")).await.unwrap();
        assert_eq!(b.path().await.unwrap(), path);
        b.screenshot(name).await.unwrap();
    }
    b.close().await.unwrap();
}
