//! The web console over real HTTP: sign-in with a token for a session cookie, CSRF on
//! every form, the security headers, roles deciding what is shown and allowed, and the
//! pages an agent and a manager use (tickets, a run's timeline, the approval inbox, the
//! dashboard). A browser (headless Chromium) drives the same pages in `browser.rs`.

use reqwest::header::{CONTENT_TYPE, SET_COOKIE};
use serde_json::json;
use std::time::Duration;
use switchboard_tests::console::{signed_in, Console, Page};
use switchboard_tests::{Stand, ADMIN, AGENT, INTEGRATOR};

#[tokio::test]
async fn signing_in_exchanges_a_token_for_a_session_cookie_and_signing_out_ends_it() {
    let stand = Stand::start("").unwrap();
    let mut console = Console::new(&stand.server.url);
    let root = console.get("/").await;
    assert_eq!((root.status, root.location()), (303, "/console"));
    let away = console.get("/console/tickets?status=new").await;
    assert_eq!(away.status, 303);
    assert_eq!(away.location(), "/console/login?next=%2Fconsole%2Ftickets%3Fstatus%3Dnew", "comes back after sign-in");

    let wrong = console.sign_in("not-a-token-of-this-server").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("not known"), "{}", wrong.body);
    assert!(console.cookie.is_none(), "no session for an unknown token");

    let ok = console.sign_in(ADMIN).await;
    assert_eq!((ok.status, ok.location()), (303, "/console"));
    let cookie = ok.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains(ADMIN), "the cookie is not the token");

    let dashboard = console.get("/console").await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    assert!(dashboard.headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let csp = dashboard.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(dashboard.headers["x-frame-options"], "DENY");
    assert!(
        dashboard.body.matches("<script").count()
            == dashboard.body.matches("<script src=\"/console/static/live.js\"").count(),
        "no inline script, only ours: {}",
        dashboard.body
    );
    for page in ["Dashboard", "Tickets", "Runs", "Workflows", "Approvals", "admin (admin)"] {
        assert!(dashboard.body.contains(page), "{page} in the navigation");
    }

    // Sign-out is a form: without the session's CSRF token it is refused.
    let forged = console.post("/console/logout", &[("csrf", "0000")]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(console.get("/console").await.status, 200, "still signed in");
    let out = console.post("/console/logout", &[("csrf", &dashboard.csrf())]).await;
    assert_eq!(out.status, 303);
    assert!(out.headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(console.get("/console").await.status, 303, "the session is over");
}

#[tokio::test]
async fn an_agent_logs_a_ticket_comments_and_follows_its_run_to_the_timeline() {
    let stand = Stand::start("").unwrap();
    stand.admin.post("/workflows", &switchboard_tests::printer_triage("printer")).await.unwrap();
    let console = signed_in(&stand, AGENT).await;
    let list = console.get("/console/tickets").await;
    assert!(list.body.contains("Log a ticket"), "agents log tickets");
    let created = console
        .post(
            "/console/tickets",
            &[("csrf", &list.csrf()), ("title", "The printer <b>jams</b>"), ("requester", "ann"), ("description", "")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let ticket_path = created.location().to_string();
    assert!(ticket_path.starts_with("/console/tickets/T-"), "{ticket_path}");
    stand.admin.wait_idle(Duration::from_secs(10)).await.unwrap();

    let ticket = console.get(&ticket_path).await;
    assert_eq!(ticket.status, 200);
    assert!(ticket.body.contains("The printer &lt;b&gt;jams&lt;/b&gt;"), "text is escaped: {}", ticket.body);
    assert!(ticket.body.contains("Triaged by triage"), "the workflow's comment");
    assert!(ticket.body.contains("hardware"), "the category it set");
    assert!(ticket.body.contains("ran 1 time"), "explain: {}", ticket.body);
    let run_link = ticket.body.split("href=\"/console/runs/").nth(1).unwrap();
    let run_id = &run_link[..run_link.find('"').unwrap()];

    let run = console.get(&format!("/console/runs/{run_id}")).await;
    assert_eq!(run.status, 200);
    for seen in ["Timeline", "tag", "note", "completed", "category"] {
        assert!(run.body.contains(seen), "{seen} in the timeline");
    }

    let id = ticket_path.trim_start_matches("/console/tickets/");
    let commented =
        console.post(&format!("/console/tickets/{id}/comments"), &[("csrf", &ticket.csrf()), ("body", "On it")]).await;
    assert_eq!((commented.status, commented.location()), (303, ticket_path.as_str()));
    let page = console.get(&ticket_path).await;
    assert!(
        page.body.contains("id=\"history\"") && page.body.contains("<code>category</code>"),
        "history: {}",
        page.body
    );
    let stored = stand.admin.get(&format!("/tickets/{id}")).await.unwrap();
    let last = stored["comments"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["body"].as_str(), last["author"].as_str()), (Some("On it"), Some("agent-ann")));
    assert_eq!(stored["channel"], "console");

    let missing = console.get("/console/tickets/T-999999").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("does not exist"));
}

#[tokio::test]
async fn roles_decide_what_the_console_shows_and_allows_as_in_the_api() {
    let stand = Stand::start("").unwrap();
    let console = signed_in(&stand, INTEGRATOR).await;
    let list = console.get("/console/tickets").await;
    assert_eq!(list.status, 200);
    assert!(!list.body.contains("Log a ticket"), "integrators do not log tickets (POST /tickets is desk work)");
    let refused = console.post("/console/tickets", &[("csrf", &list.csrf()), ("title", "x"), ("requester", "y")]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let tickets = stand.admin.get("/tickets").await.unwrap();
    assert_eq!(tickets["tickets"].as_array().unwrap().len(), 0, "nothing was logged");
    // A form without its CSRF token is refused before anything else.
    let agent = signed_in(&stand, AGENT).await;
    let forged = agent.post("/console/tickets", &[("title", "x"), ("requester", "y")]).await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn an_approver_decides_from_the_inbox_and_the_run_goes_on() {
    let stand = Stand::start("").unwrap();
    stand
        .admin
        .post(
            "/workflows",
            &json!({"id": "laptop", "name": "Laptop approval", "triggers": [{"on": "ticket.created"}],
                "steps": [{"id": "ask", "type": "approval", "stages": [{"name": "manager", "approvers": [{"user": "agent-ann"}]}]},
                          {"id": "done", "type": "comment", "body": "approved"}]}),
        )
        .await
        .unwrap();
    let out = stand.admin.post("/tickets", &json!({"title": "New laptop", "requester": "bob"})).await.unwrap();
    let ticket = out["ticket"]["id"].as_str().unwrap().to_string();
    stand.admin.wait_idle(Duration::from_secs(10)).await.unwrap();

    let console = signed_in(&stand, AGENT).await;
    let inbox = console.get("/console/approvals").await;
    assert!(inbox.body.contains(&ticket) && inbox.body.contains("manager"), "{}", inbox.body);
    let id_at = inbox.body.find("action=\"/console/approvals/").unwrap() + "action=\"/console/approvals/".len();
    let approval = inbox.body[id_at..id_at + inbox.body[id_at..].find('"').unwrap()].to_string();
    // Handed to the admin and back: the inbox follows who acts.
    let handed = console
        .post(
            &format!("/console/approvals/{approval}/delegate"),
            &[("csrf", &inbox.csrf()), ("to", "admin"), ("comment", "on leave")],
        )
        .await;
    assert_eq!(handed.status, 303, "{}", handed.body);
    assert!(!console.get("/console/approvals").await.body.contains(&approval), "no longer ann's to decide");
    let admin = signed_in(&stand, ADMIN).await;
    let theirs = admin.get("/console/approvals").await;
    assert!(theirs.body.contains(&approval) && theirs.body.contains("You act for agent-ann"), "{}", theirs.body);
    let back = admin
        .post(&format!("/console/approvals/{approval}/delegate"), &[("csrf", &theirs.csrf()), ("to", "agent-ann")])
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    let inbox = console.get("/console/approvals").await;
    let decided = console
        .post(
            &format!("/console/approvals/{approval}"),
            &[("csrf", &inbox.csrf()), ("decision", "approve"), ("comment", "fine")],
        )
        .await;
    assert_eq!((decided.status, decided.location()), (303, "/console/approvals"), "{}", decided.body);
    stand.admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    let stored = stand.admin.get(&format!("/approvals/{approval}")).await.unwrap();
    assert_eq!(stored["status"], "approved");
    assert_eq!(stored["stages"][0]["slots"][0]["decision"]["via"], "console");
    let runs = stand.admin.get(&format!("/runs?ticket={ticket}")).await.unwrap();
    assert_eq!(runs["runs"][0]["status"], "completed");
    assert!(!console.get("/console/approvals").await.body.contains(&approval), "decided: out of the inbox");
    // Deciding it again is refused with the API's status.
    let page = admin.get("/console/approvals").await;
    let again =
        admin.post(&format!("/console/approvals/{approval}"), &[("csrf", &page.csrf()), ("decision", "reject")]).await;
    assert!(matches!(again.status, 403 | 409), "{} {}", again.status, again.body);
}

#[tokio::test]
async fn the_dashboard_shows_the_period_figures_and_the_backlog_by_group() {
    let stand = Stand::start("").unwrap();
    switchboard_tests::seed_team(&stand.admin).await.unwrap();
    // Round the clock, so the response clock runs whenever the test runs.
    let always: serde_json::Map<String, serde_json::Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| (d.to_string(), json!([["00:00", "24:00"]])))
        .collect();
    stand
        .admin
        .post("/sla/calendars", &json!({"id": "always", "timezone": "UTC", "hours": always, "holidays": []}))
        .await
        .unwrap();
    stand
        .admin
        .post(
            "/sla/policies",
            &json!({"id": "p1", "name": "P1", "applies_to": {"field": "ticket.priority", "op": "eq", "value": "P1"},
                "calendar": "always", "warnings": [50],
                "targets": {"P1": {"response_minutes": 30, "resolution_minutes": 600}, "P2": {"response_minutes": 60, "resolution_minutes": 600},
                    "P3": {"response_minutes": 60, "resolution_minutes": 600}, "P4": {"response_minutes": 60, "resolution_minutes": 600}}}),
        )
        .await
        .unwrap();
    let p1 = stand
        .admin
        .post(
            "/tickets",
            &json!({"title": "Core switch down", "requester": "noc", "impact": "high", "urgency": "high"}),
        )
        .await
        .unwrap();
    let p1 = p1["ticket"]["id"].as_str().unwrap().to_string();
    for title in ["VPN down", "Mail slow", "Badge broken"] {
        stand.admin.post("/tickets", &json!({"title": title, "requester": "bob", "group": "network"})).await.unwrap();
    }
    let console = signed_in(&stand, ADMIN).await;
    let page = console.get("/console?days=7&bucket=day").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let logged = page.body.find("Tickets logged").unwrap();
    let card = &page.body[..logged];
    assert!(card.rfind("<div class=\"v\">4</div>").is_some(), "four tickets logged: {}", &page.body[..logged]);
    let soon = &page.body[page.body.find("id=\"breaching-soon\"").unwrap()..page.body.find("SLA breaches").unwrap()];
    assert!(
        soon.contains(&format!("/console/tickets/{p1}")) && soon.contains("response"),
        "the P1's response clock: {soon}"
    );
    assert!(!soon.contains("resolution"), "ten hours away: {soon}");
    for chart in [
        "Tickets logged",
        "Resolution SLA met",
        "Response SLA met",
        "First-contact resolution",
        "Mean time to resolve",
        "CSAT (mean",
        "Deflection (%)",
        "Hours saved by automation",
    ] {
        assert!(page.body.contains(&format!("<title>{chart}")), "a trend chart of {chart}");
    }
    assert!(page.body.contains("/console/tickets?group=network"), "backlog by group links to the list");
    let by_priority =
        &page.body[page.body.find("id=\"backlog-priority\"").unwrap()..page.body.find("Backlog by group").unwrap()];
    assert!(
        by_priority.contains("/console/tickets?priority=P1\">P1</a></td><td>1</td>"),
        "the P1 is open: {by_priority}"
    );
    let bad = console.get("/console?bucket=fortnight").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[tokio::test]
async fn an_admin_drafts_a_workflow_sees_each_error_at_its_pointer_dry_runs_and_publishes() {
    let stand = Stand::start("").unwrap();
    let out = stand.admin.post("/tickets", &json!({"title": "VIP cannot print", "requester": "ceo"})).await.unwrap();
    let ticket = out["ticket"]["id"].as_str().unwrap().to_string();
    let admin = signed_in(&stand, ADMIN).await;
    let new = admin.get("/console/workflows/new?id=vip").await;
    assert_eq!((new.status, new.location()), (303, "/console/workflows/vip"));
    let editor = admin.get("/console/workflows/vip").await;
    assert!(editor.body.contains("Not published yet") && editor.body.contains("textarea"), "{}", editor.body);

    let broken = r#"{"id": "vip", "name": "VIP", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "tag", "type": "set", "fields": {"priority": "P9"}},
                  {"id": "go", "type": "if", "condition": {"field": "ticket.title", "op": "contains", "value": "VIP"}, "then": "nowhere"}]}"#;
    let refused = admin.post("/console/workflows/vip/draft", &[("csrf", &editor.csrf()), ("definition", broken)]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("<code>/steps/1/then</code>"), "the bad jump at its pointer: {}", refused.body);
    assert!(refused.body.contains("nowhere"), "the text is kept as typed");
    assert!(stand.admin.call("GET", "/workflows/vip/draft", None).await.unwrap().0 == 404, "nothing saved");

    let fixed = r#"{"id": "vip", "name": "VIP", "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "go", "type": "if", "condition": {"field": "ticket.title", "op": "contains", "value": "VIP"}, "then": "tag"},
                  {"id": "tag", "type": "set", "fields": {"priority": "P1"}}]}"#;
    let saved = admin.post("/console/workflows/vip/draft", &[("csrf", &editor.csrf()), ("definition", fixed)]).await;
    assert_eq!((saved.status, saved.location()), (303, "/console/workflows/vip"), "{}", saved.body);
    let page = admin.get("/console/workflows/vip").await;
    assert!(page.body.contains("A draft is saved"), "{}", page.body);

    let dry = admin.post("/console/workflows/vip/dry-run", &[("csrf", &page.csrf()), ("ticket", &ticket)]).await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert!(dry.body.contains("matches; the run would end") && dry.body.contains("completed"), "{}", dry.body);
    assert!(dry.body.contains("<code>priority</code>"), "the change it would make: {}", dry.body);
    let unchanged = stand.admin.get(&format!("/tickets/{ticket}")).await.unwrap();
    assert_eq!(unchanged["priority"], "P3", "a dry run writes nothing");

    let published = admin.post("/console/workflows/vip/publish", &[("csrf", &page.csrf())]).await;
    assert_eq!(published.status, 303, "{}", published.body);
    let record = stand.admin.get("/workflows/vip").await.unwrap();
    assert_eq!((record["revision"].as_u64(), record["enabled"].as_bool()), (Some(1), Some(true)), "{record}");
    let list = admin.get("/console/workflows").await;
    assert!(list.body.contains("href=\"/console/workflows/vip\""));

    // An agent reads the definition but has no editor, and cannot save one.
    let agent = signed_in(&stand, AGENT).await;
    let read = agent.get("/console/workflows/vip").await;
    assert!(read.body.contains("<pre>") && !read.body.contains("<textarea"), "{}", read.body);
    let forged = agent.post("/console/workflows/vip/draft", &[("csrf", &read.csrf()), ("definition", fixed)]).await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn an_operator_resends_dead_letters_and_reads_schedules_and_the_audit_log() {
    use std::sync::atomic::Ordering;
    let stand = Stand::start("notify_attempts = 1").unwrap();
    let (url, up, hits) = switchboard_tests::flaky_receiver().await;
    for id in ["tell-a", "tell-b"] {
        stand
            .admin
            .post(
                "/workflows",
                &json!({"id": id, "name": id, "triggers": [{"on": "ticket.created"}],
                    "steps": [{"id": "tell", "type": "notify", "url": url, "payload": {"ticket": "{{ticket.id}}"}}]}),
            )
            .await
            .unwrap();
    }
    stand
        .admin
        .post(
            "/workflows",
            &json!({"id": "weekly", "name": "weekly",
                "triggers": [{"on": "schedule", "cron": "0 7 * * 1", "timezone": "Europe/Berlin"}],
                "steps": [{"id": "post", "type": "notify", "url": "http://127.0.0.1:9/inbox"}]}),
        )
        .await
        .unwrap();
    stand.admin.post("/tickets", &json!({"title": "Printer", "requester": "ann"})).await.unwrap();
    stand.admin.wait_idle(Duration::from_secs(20)).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one attempt each");

    let admin = signed_in(&stand, ADMIN).await;
    let page = admin.get("/console/dead-letters").await;
    assert!(page.body.contains("2 not resent yet") && page.body.contains("Resend all 2"), "{}", page.body);
    up.store(true, Ordering::SeqCst);
    let resent = admin.post("/console/dead-letters/resend", &[("csrf", &page.csrf())]).await;
    assert_eq!((resent.status, resent.location()), (303, "/console/dead-letters"), "{}", resent.body);
    assert_eq!(hits.load(Ordering::SeqCst), 4, "both resent");
    let letters = stand.admin.get("/dead-letters").await.unwrap();
    assert!(letters["dead_letters"].as_array().unwrap().iter().all(|l| !l["resent"].is_null()), "{letters}");
    assert!(admin.get("/console/dead-letters").await.body.contains("0 not resent yet"));

    let schedules = admin.get("/console/schedules").await;
    assert!(schedules.body.contains("0 7 * * 1") && schedules.body.contains("Europe/Berlin"), "{}", schedules.body);
    assert!(schedules.body.contains("Mon"), "next fire times by weekday: {}", schedules.body);
    let plugins = admin.get("/console/plugins").await;
    assert!(plugins.status == 200 && plugins.body.contains("No plugin is installed"), "{}", plugins.body);
    stand
        .admin
        .post(
            "/webhooks",
            &json!({"id": "monitoring", "name": "Monitoring alerts", "secret": "monitoring-secret-0123456789",
                "action": {"type": "create_ticket"},
                "mapping": {"fields": {"title": {"pointer": "/title"}, "requester": {"value": "monitoring"}}}}),
        )
        .await
        .unwrap();
    let hooks = admin.get("/console/webhooks").await;
    assert!(hooks.body.contains("/hooks/monitoring") && hooks.body.contains("logs a ticket"), "{}", hooks.body);
    assert!(!hooks.body.contains("monitoring-secret-0123456789"), "no secret on the page");
    let audit = admin.get("/console/audit").await;
    assert!(audit.body.contains("workflow.publish") && audit.body.contains("weekly"), "{}", audit.body);

    // Agents read schedules and dead letters but neither resend nor read the audit log.
    let agent = signed_in(&stand, AGENT).await;
    let theirs = agent.get("/console/dead-letters").await;
    assert_eq!(theirs.status, 200);
    assert!(!theirs.body.contains("Resend"), "{}", theirs.body);
    assert_eq!(agent.get("/console/audit").await.status, 403);
    assert_eq!(agent.get("/console/webhooks").await.status, 403);
}

/// Follows one redirect by hand: the `Location` of `page`, fetched with `client`.
async fn follow(console: &Console, page: &Page) -> Page {
    console.send(console.http.get(page.location())).await
}

/// The path and query of an absolute URL.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".to_string(), |i| rest[i..].to_string())
}

/// The whole OpenID Connect flow by hand, as a browser would follow it: console ->
/// provider -> console. Returns the client (with its session, if one was given), the
/// callback's answer and the callback's path.
async fn oidc_sign_in(
    issuer: &switchboard_tests::oidc::FakeIssuer,
    server: &str,
    name: &str,
    roles: &[&str],
) -> (Console, Page, String) {
    issuer.sign_in_as(name, roles);
    let mut console = Console::new(server);
    let login = console.get("/console/login?next=%2Fconsole%2Ftickets").await;
    assert!(login.body.contains("Sign in with Corp Entra ID"), "{}", login.body);
    let start = console.get("/console/oidc/start?next=%2Fconsole%2Ftickets").await;
    assert_eq!(start.status, 303, "{}", start.body);
    let to_provider = start.location().to_string();
    assert!(to_provider.starts_with(&format!("{}/authorize?", issuer.url)), "{to_provider}");
    for param in ["code_challenge_method=S256", "response_type=code", "scope=openid+profile+email", "nonce=", "state="]
    {
        assert!(to_provider.contains(param), "{param} in {to_provider}");
    }
    let back = follow(&console, &start).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let callback = path_of(back.location());
    assert!(callback.starts_with("/console/oidc/callback?"), "{callback}");
    let done = console.get(&callback).await;
    if let Some(c) = done.headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
        console.cookie = Some(c.split(';').next().unwrap().to_string());
    }
    (console, done, callback)
}

#[tokio::test]
async fn people_sign_in_with_the_organisations_openid_provider_and_get_the_role_their_groups_map_to() {
    use switchboard_tests::oidc::{FakeIssuer, Tamper};
    let issuer = FakeIssuer::start("switchboard-console", "console-secret-0123").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = switchboard_tests::write_config(
        dir.path(),
        &format!(
            "public_url = \"http://127.0.0.1:{port}\"\n[oidc]\nissuer = \"{}\"\nclient_id = \"switchboard-console\"\nclient_secret = \"console-secret-0123\"\ndisplay_name = \"Corp Entra ID\"\n[oidc.roles]\n\"Helpdesk.Admins\" = \"admin\"\n\"Helpdesk.Agents\" = \"agent\"\n",
            issuer.url
        ),
    )
    .unwrap();
    let server =
        switchboard_tests::Server::start_on(&format!("127.0.0.1:{port}"), &dir.path().join("data"), &config, &[])
            .unwrap();

    let sign_in = |name, roles| oidc_sign_in(&issuer, &server.url, name, roles);
    let (ann, done, callback) = sign_in("ann@corp.example", &["Helpdesk.Agents", "Everyone"]).await;
    assert_eq!((done.status, done.location()), (303, "/console/tickets"), "{}", done.body);
    let tickets = ann.get("/console/tickets").await;
    assert!(tickets.body.contains("ann@corp.example (agent)"), "{}", tickets.body);
    assert!(tickets.body.contains("Log a ticket"), "agents log tickets");
    // The provider's answer works once.
    let again = ann.get(&callback).await;
    assert_eq!(again.status, 400, "{}", again.body);

    let (boss, done, _) = sign_in("boss@corp.example", &["Helpdesk.Agents", "Helpdesk.Admins"]).await;
    assert_eq!(done.status, 303);
    assert!(boss.get("/console/audit").await.body.contains("boss@corp.example (admin)"), "the most capable role");

    let (_, refused, _) = sign_in("guest@corp.example", &["Everyone"]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("none of their"), "{}", refused.body);

    for how in [Tamper::WrongAudience, Tamper::WrongNonce, Tamper::UnpublishedKey] {
        issuer.tamper(Some(how));
        let (_, refused, _) = sign_in("mallory@corp.example", &["Helpdesk.Admins"]).await;
        assert_eq!(refused.status, 401, "{how:?}: {}", refused.body);
        assert!(refused.headers.get(SET_COOKIE).is_none(), "{how:?}: no session");
    }
    issuer.tamper(None);
    assert!(issuer.refusals().is_empty(), "every code exchange was well-formed: {:?}", issuer.refusals());

    // Without `oidc` configured there is no provider button and no flow.
    let plain = Stand::start("").unwrap();
    let console = Console::new(&plain.server.url);
    assert!(!console.get("/console/login").await.body.contains("Sign in with"));
    assert_eq!(console.get("/console/oidc/start").await.status, 404);
}
