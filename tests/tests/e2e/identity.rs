//! The identity workflows end to end: the shipped `workflows/` on a `serve --demo`
//! server, the `directory` and `m365` plugins built from `plugins/`, a real OpenLDAP
//! with the AD schema (`tests/ldap/`), and the stateful Graph fake (`tests/src/graph.rs`).
//! Input comes in as a signed HR webhook or an API ticket; the assertions read slapd's
//! entries, the fake's state and request log, and the tickets and runs.

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use switchboard_tests::graph::{GraphFake, CLIENT_ID, CLIENT_SECRET, VAULT_TOKEN};
use switchboard_tests::{
    plugin_wasm, post_hook, repo, write_config, Api, Server, Slapd, ADMIN, LDAP_ADMIN_DN, LDAP_ADMIN_PW,
};

const DAVE: &str = "dave-approver-token-0123456789";

struct Stand {
    slapd: Slapd,
    graph: GraphFake,
    server: Server,
    admin: Api,
    dave: Api,
    dir: tempfile::TempDir,
}

/// Copies `workflows/` with the demo's `127.0.0.1:8080` pointed at this server.
fn copy_workflows(from: &Path, to: &Path, port: u16) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_workflows(&path, &target, port);
        } else {
            let text = std::fs::read_to_string(&path).unwrap().replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
            std::fs::write(target, text).unwrap();
        }
    }
}

async fn stand() -> Stand {
    let plugins = plugin_wasm("directory").parent().unwrap().to_path_buf();
    plugin_wasm("m365");
    // Over StartTLS, as Active Directory demands for password changes.
    let slapd = tokio::task::spawn_blocking(Slapd::start_corp_tls).await.unwrap().unwrap();
    let graph = GraphFake::start().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    copy_workflows(&repo().join("workflows"), &dir.path().join("workflows"), port);
    let g = &graph.url;
    let extra = format!(
        r#"public_url = "http://127.0.0.1:{port}"

[plugins]
timeout_ms = 10000

[connections.graph]
base_url = "{g}/v1.0"
allow_private = true
auth = {{ type = "oauth2", token_url = "{g}/tenant-1/oauth2/v2.0/token", client_id = "{CLIENT_ID}", client_secret = "{CLIENT_SECRET}", scope = "https://graph.microsoft.com/.default" }}

[connections.password-channel]
base_url = "{g}/_vault"
allow_private = true
auth = {{ type = "bearer", token = "{VAULT_TOKEN}" }}

[directories.ad]
url = "{ldap}"
starttls = true
ca_file = "{ca}"
bind_dn = "{LDAP_ADMIN_DN}"
bind_password = "{LDAP_ADMIN_PW}"
base_dn = "dc=example,dc=com"
allow_private = true

[directories.ad-untrusted]
url = "{ldap}"
starttls = true
bind_dn = "{LDAP_ADMIN_DN}"
bind_password = "{LDAP_ADMIN_PW}"
base_dn = "dc=example,dc=com"
allow_private = true

[[tokens]]
name = "dave"
token = "{DAVE}"
role = "agent"
"#,
        ldap = slapd.url,
        ca = slapd.ca_file.as_ref().unwrap().display()
    );
    let config = write_config(dir.path(), &extra).unwrap();
    let workflows = dir.path().join("workflows");
    let server = Server::start_logged(
        &format!("127.0.0.1:{port}"),
        &dir.path().join("data"),
        &config,
        &["--demo", "--workflows", workflows.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()],
        &dir.path().join("server.log"),
        "debug",
    )
    .unwrap();
    let admin = Api::new(&server.url, ADMIN);
    let dave = Api::new(&server.url, DAVE);
    Stand { slapd, graph, server, admin, dave, dir }
}

impl Stand {
    /// Posts a payload to a demo webhook endpoint, signed with the demo secret.
    async fn hook(&self, endpoint: &str, payload: &Value) -> Value {
        let secret = switchboard::demo::WEBHOOK_SECRET;
        let resp = post_hook(&reqwest::Client::new(), &self.server.url, endpoint, secret, payload, None).await.unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        resp.json().await.unwrap()
    }

    async fn ticket(&self, id: &str) -> Value {
        self.admin.get(&format!("/tickets/{id}")).await.unwrap()
    }

    async fn runs(&self, ticket: &str) -> Vec<Value> {
        self.admin.get(&format!("/runs?ticket={ticket}")).await.unwrap()["runs"].as_array().cloned().unwrap()
    }

    /// The run of `workflow` on `ticket`, with its trace.
    async fn run(&self, ticket: &str, workflow: &str) -> Value {
        let runs = self.runs(ticket).await;
        let id = runs.iter().find(|r| r["workflow_id"] == workflow).unwrap_or_else(|| panic!("{runs:?}"))["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.admin.get(&format!("/runs/{id}")).await.unwrap()
    }

    async fn idle(&self) {
        self.admin.wait_idle(Duration::from_secs(60)).await.unwrap();
    }

    /// The teams resolve every open child task of `ticket` (laptop, licensing, asset
    /// return...); a parent is resolved only after its children.
    async fn finish_tasks(&self, ticket: &str) {
        let parent = self.ticket(ticket).await;
        assert_ne!(parent["status"], "resolved", "not resolved before its tasks: {parent}");
        let children: Vec<String> = parent["links"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["kind"] == "child")
            .map(|l| l["ticket"].as_str().unwrap().to_string())
            .collect();
        let mut open = Vec::new();
        for child in children {
            let status = self.ticket(&child).await["status"].clone();
            if !matches!(status.as_str(), Some("resolved" | "closed")) {
                open.push(child);
            }
        }
        assert_eq!(parent["open_children"].as_u64(), Some(open.len() as u64), "{parent}");
        for child in open {
            let (status, body) = self
                .admin
                .call("PATCH", &format!("/tickets/{child}"), Some(&json!({"status": "resolved"})))
                .await
                .unwrap();
            assert_eq!(status, 200, "{body}");
        }
        self.idle().await;
    }

    /// The manager approves the pending onboarding approval of `ticket`.
    async fn approve(&self, ticket: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let approval = loop {
            let pending = self.dave.get("/approvals?pending_for=me").await.unwrap();
            if let Some(a) = pending["approvals"].as_array().unwrap().iter().find(|a| a["ticket_id"] == ticket) {
                break a["id"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no approval for {ticket}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.dave
            .post(&format!("/approvals/{approval}/decisions"), &json!({"decision": "approve", "comment": "welcome"}))
            .await
            .unwrap();
    }

    fn ldap_user(&self, sam: &str) -> String {
        self.slapd.search(&format!("(sAMAccountName={sam})"), &["*", "memberOf", "entryCSN"]).unwrap()
    }

    /// Everything the server stored, as bytes.
    fn data_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        let mut stack = vec![self.dir.path().join("data")];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    all.extend(std::fs::read(path).unwrap());
                }
            }
        }
        all
    }
}

fn attr<'a>(ldif: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}: ");
    ldif.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn comments(ticket: &Value) -> String {
    ticket["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn new_hire(id: &str, first: &str, last: &str, department: &str) -> Value {
    json!({"event_id": format!("evt-{id}"), "submitted_by": "hr@example.com", "employee": {
        "id": id, "first_name": first, "last_name": last, "department": department, "start_date": "2026-12-01",
        "manager": "dave", "manager_upn": "mmanager@example.com", "country": "DE"}})
}

async fn locked_out(s: &Stand, requester: &str) -> String {
    let t = s
        .admin
        .post(
            "/tickets",
            &json!({"title": "I am locked out of my account", "requester": requester, "kind": "incident"}),
        )
        .await
        .unwrap();
    t["ticket"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn locked_out_users_are_unlocked_or_routed_with_a_reason() {
    let s = stand().await;
    assert_ne!(attr(&s.ldap_user("jdoe"), "lockoutTime"), ["0"], "seeded locked");

    let locked = locked_out(&s, "jdoe@example.com").await;
    let fine = locked_out(&s, "ssmith").await;
    let disabled = locked_out(&s, "ddisabled@example.com").await;
    let stranger = locked_out(&s, "nobody@example.com").await;
    s.idle().await;

    // Locked: unlocked in AD, noted, resolved, no human.
    assert_eq!(attr(&s.ldap_user("jdoe"), "lockoutTime"), ["0"]);
    let t = s.ticket(&locked).await;
    assert_eq!(t["status"], "resolved", "{t}");
    assert!(t["assignee"].is_null());
    assert!(comments(&t).contains("Unlocked jdoe (jdoe@example.com) in Active Directory"), "{}", comments(&t));
    let run = s.run(&locked, "account-unlock").await;
    assert_eq!(run["status"], "completed");
    let steps: Vec<&str> = run["trace"].as_array().unwrap().iter().filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(
        steps,
        [
            "categorise",
            "find",
            "known",
            "check-disabled",
            "check-locked",
            "unlock",
            "unlocked-note",
            "resolve-unlocked"
        ]
    );

    // Not locked: resolved with the article, nothing written.
    let t = s.ticket(&fine).await;
    assert_eq!(t["status"], "resolved");
    assert!(comments(&t).contains("KB0001"), "{}", comments(&t));

    // Disabled: left locked, routed to Identity & Access with the reason.
    assert_ne!(attr(&s.ldap_user("ddisabled"), "lockoutTime"), ["0"]);
    let t = s.ticket(&disabled).await;
    assert_eq!((t["status"].as_str(), t["group"].as_str()), (Some("assigned"), Some("access")), "{t}");
    assert_eq!(t["assignee"], "frank", "the Identity & Access agent");
    assert!(comments(&t).contains("disabled in Active Directory"));

    let t = s.ticket(&stranger).await;
    assert_eq!(t["group"], "access");
    assert!(comments(&t).contains("No Active Directory account matches"));

    // The same through the ticketing-system webhook.
    s.slapd
        .ldap("ldapmodify", "dn: cn=Jane Doe,ou=Users,dc=example,dc=com\nchangetype: modify\nreplace: lockoutTime\nlockoutTime: 133990000000000000\n")
        .unwrap();
    let answer = s
        .hook("ticketing-created", &json!({"id": "zd-1", "ticket": {"id": 77, "subject": "Account locked again", "requester": {"email": "jdoe@example.com"}}}))
        .await;
    s.idle().await;
    let t = s.ticket(answer["ticket"].as_str().unwrap()).await;
    assert_eq!(t["status"], "resolved", "{t}");
    assert_eq!(attr(&s.ldap_user("jdoe"), "lockoutTime"), ["0"]);
}

/// Decodes standard base64 (ldapsearch prints binary values that way).
fn base64(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | alphabet.iter().position(|a| *a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn new_hires_are_onboarded_after_approval_and_secrets_stay_out() {
    let s = stand().await;
    let answer = s.hook("hr-new-hire", &new_hire("E-1001", "Nina", "Neumann", "Sales")).await;
    let ticket = answer["ticket"].as_str().unwrap().to_string();
    s.approve(&ticket).await;
    s.idle().await;
    let parked = s.run(&ticket, "new-hire-onboarding").await;
    assert_eq!(parked["waiting"]["step"], "wait_tasks", "the request waits for its laptop task: {parked}");
    s.finish_tasks(&ticket).await;

    let t = s.ticket(&ticket).await;
    assert_eq!(t["status"], "resolved", "{t}");
    let run = s.run(&ticket, "new-hire-onboarding").await;
    assert_eq!(run["status"], "completed", "{run}");

    // AD: created, enabled, password set and to be changed, department groups.
    let ad = s.ldap_user("nneumann");
    assert_eq!(attr(&ad, "userAccountControl"), ["512"], "{ad}");
    assert_eq!(attr(&ad, "pwdLastSet"), ["0"]);
    assert_eq!(attr(&ad, "userPrincipalName"), ["nneumann@example.com"]);
    let mut groups = attr(&ad, "memberOf");
    groups.sort();
    assert_eq!(groups, ["cn=All Staff,ou=Groups,dc=example,dc=com", "cn=Sales,ou=Groups,dc=example,dc=com"]);

    // Entra ID / Microsoft 365: account, manager, licence, groups, team.
    let u = s.graph.user("nneumann@example.com").await.unwrap();
    assert_eq!(u["accountEnabled"], true);
    let mia = s.graph.user("mmanager@example.com").await.unwrap();
    assert_eq!(u["_manager"], mia["id"]);
    assert_eq!(u["assignedLicenses"][0]["skuId"], "6fd2c87f-b296-42f0-b197-1e91e994b900");
    assert_eq!(u["_groups"], json!(["All Staff", "Sales"]));
    assert_eq!(u["_teams"], json!(["Sales Team"]));

    // The password went to the secure channel, for the manager, and is the one AD has.
    let vault = s.graph.vault().await.unwrap();
    assert_eq!(vault.len(), 1, "{vault:?}");
    let delivered = &vault[0]["body"];
    assert_eq!(
        (delivered["user"].as_str(), delivered["recipient"].as_str()),
        (Some("nneumann"), Some("mmanager@example.com"))
    );
    assert_eq!(delivered["ticket"], ticket.as_str());
    let password = delivered["password"].as_str().unwrap().to_string();
    assert!(password.len() >= 16);
    let stored = s.slapd.search("(sAMAccountName=nneumann)", &["unicodePwd"]).unwrap();
    let b64 = stored.lines().find_map(|l| l.strip_prefix("unicodePwd:: ")).unwrap();
    let utf16: Vec<u16> = base64(b64).chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    assert_eq!(String::from_utf16(&utf16).unwrap(), format!("\"{password}\""));

    // ...and nowhere else: not in the ticket, traces, run variables, the manager's note,
    // the server's debug log, or anything the server stored. Nor are the Graph client secret or the LDAP bind password.
    let runs = serde_json::to_string(&s.runs(&ticket).await).unwrap();
    let full_run = s.run(&ticket, "new-hire-onboarding").await.to_string();
    let inbox = s.admin.get("/demo/inbox").await.unwrap().to_string();
    let data = s.data_bytes();
    let log = std::fs::read_to_string(s.dir.path().join("server.log")).unwrap();
    assert!(log.contains("DEBUG"), "the server logged at debug level");
    for secret in [password.as_str(), CLIENT_SECRET, LDAP_ADMIN_PW, VAULT_TOKEN] {
        assert!(!log.contains(secret), "{secret} in the server log");
        assert!(!t.to_string().contains(secret), "{secret} in the ticket");
        assert!(!runs.contains(secret) && !full_run.contains(secret), "{secret} in a run");
        assert!(!inbox.contains(secret), "{secret} in the manager's note");
        assert!(!contains(&data, secret), "{secret} in the data directory");
    }
    assert!(full_run.contains("reset_password"), "the trace names the step");

    // The trace is readable: every plugin step with its outcome.
    let steps: Vec<String> = serde_json::from_str::<Value>(&full_run).unwrap()["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["step"].as_str().map(|s| format!("{s}:{}", e["outcome"].as_str().unwrap_or(""))))
        .collect();
    for step in [
        "ad_account:ok",
        "password:ok",
        "enable:ok",
        "ad_groups:ok",
        "entra_account:ok",
        "licence:ok",
        "team:ok",
        "done:ok",
    ] {
        assert!(steps.iter().any(|s| s == step), "{step} missing from {steps:?}");
    }
    let run: Value = serde_json::from_str(&full_run).unwrap();
    assert!(run["vars"].get("licence_task").is_none(), "a seat was free: no licensing task");
    assert_eq!(run["vars"]["licence"]["assigned"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_free_seat_goes_to_licensing_and_a_failure_midway_is_compensated() {
    let s = stand().await;
    // 3 of 5 ENTERPRISEPACK seats are used by the seed users: leave none free.
    s.graph.set_seats("ENTERPRISEPACK", 3).await.unwrap();
    let a = s.hook("hr-new-hire", &new_hire("E-2001", "Omar", "Osei", "Finance")).await;
    let first = a["ticket"].as_str().unwrap().to_string();
    s.approve(&first).await;
    s.idle().await;
    s.finish_tasks(&first).await;
    let t = s.ticket(&first).await;
    assert_eq!(t["status"], "resolved", "{t}");
    let run = s.run(&first, "new-hire-onboarding").await;
    let task = run["vars"]["licence_task"]["ticket"].as_str().unwrap();
    let task = s.ticket(task).await;
    assert_eq!(task["group"], "licensing");
    assert!(task["title"].as_str().unwrap().contains("No free ENTERPRISEPACK seat"));
    assert_eq!(s.graph.user("oosei@example.com").await.unwrap()["assignedLicenses"], json!([]));

    // Seats again, but adding to the team is refused: everything done so far is undone.
    s.graph.set_seats("ENTERPRISEPACK", 10).await.unwrap();
    s.graph.fail("/teams/", 403, 1).await.unwrap();
    let b = s.hook("hr-new-hire", &new_hire("E-2002", "Pia", "Park", "Engineering")).await;
    let second = b["ticket"].as_str().unwrap().to_string();
    s.approve(&second).await;
    s.idle().await;
    let run = s.run(&second, "new-hire-onboarding").await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("onboarding stopped at step team"), "{}", run["error"]);
    assert_eq!(attr(&s.ldap_user("ppark"), "userAccountControl"), ["514"], "AD account disabled again");
    let u = s.graph.user("ppark@example.com").await.unwrap();
    assert_eq!(u["accountEnabled"], false);
    assert_eq!(u["assignedLicenses"], json!([]), "licence released");
    let t = s.ticket(&second).await;
    assert_eq!(t["group"], "access");
    let note = comments(&t);
    assert!(note.contains("stopped at step team") && note.contains("Authorization_RequestDenied"), "{note}");
    assert!(note.contains("Licences released: ENTERPRISEPACK"), "{note}");
    // Only what was done is undone, and the note names it.
    assert!(
        note.contains("AD account ppark disabled.") && note.contains("Entra ID account ppark@example.com disabled."),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_graph_calls_wait_for_retry_after_and_the_flow_completes() {
    let s = stand().await;
    let a = s.hook("hr-new-hire", &new_hire("E-3001", "Quinn", "Quade", "Engineering")).await;
    let ticket = a["ticket"].as_str().unwrap().to_string();
    // The next Graph calls (the first Entra steps) are throttled: two 429s, one 503.
    s.graph.throttle(2, 1, 429).await.unwrap();
    s.approve(&ticket).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.graph.requests().await.unwrap().iter().filter(|r| r["status"] == 429).count() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.graph.throttle(1, 2, 503).await.unwrap();
    s.idle().await;
    s.finish_tasks(&ticket).await;
    let t = s.ticket(&ticket).await;
    assert_eq!(t["status"], "resolved", "{t}");

    let log = s.graph.requests().await.unwrap();
    let graph_calls: Vec<&Value> = log.iter().filter(|r| r["path"].as_str().unwrap().starts_with("/v1.0")).collect();
    let throttled: Vec<usize> =
        (0..graph_calls.len()).filter(|i| matches!(graph_calls[*i]["status"].as_u64(), Some(429 | 503))).collect();
    assert_eq!(throttled.len(), 3, "{graph_calls:?}");
    for i in throttled {
        let asked = if graph_calls[i]["status"] == 503 { 2000 } else { 1000 };
        let waited = graph_calls[i + 1]["at_ms"].as_u64().unwrap() - graph_calls[i]["at_ms"].as_u64().unwrap();
        assert!(waited >= asked, "retried after {waited} ms, Retry-After asked {asked} ms");
    }
    let run = s.run(&ticket, "new-hire-onboarding").await;
    let waits: Vec<u64> = run["trace"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["detail"]["waits_ms"].as_array().cloned().unwrap_or_default())
        .filter_map(|w| w.as_u64())
        .collect();
    assert!(waits.contains(&1000) && waits.contains(&2000), "the trace shows the waits: {waits:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn leavers_are_offboarded_and_a_second_run_changes_nothing() {
    let s = stand().await;
    let leaver = json!({"event_id": "evt-L1", "employee": {"id": "E-0042", "first_name": "Leo", "last_name": "Leaver",
        "upn": "lleaver@example.com", "manager_upn": "mmanager@example.com", "last_day": "2026-11-30"}});
    let a = s.hook("hr-leaver", &leaver).await;
    let ticket = a["ticket"].as_str().unwrap().to_string();
    s.idle().await;

    // Everything up to the mailbox conversion is done; the licences wait for it.
    let run = s.run(&ticket, "leaver-offboarding").await;
    assert_eq!(
        (run["status"].as_str(), run["waiting"]["step"].as_str()),
        (Some("waiting"), Some("wait_mailbox")),
        "{run}"
    );
    assert_eq!(attr(&s.ldap_user("lleaver"), "userAccountControl"), ["514"]);
    let u = s.graph.user("lleaver@example.com").await.unwrap();
    assert_eq!(u["accountEnabled"], false);
    assert!(u["signInSessionsValidFromDateTime"].is_string(), "sessions revoked");
    assert_eq!(u["_mailboxSettings"]["automaticRepliesSetting"]["status"], "alwaysEnabled");
    assert_eq!(u["assignedLicenses"].as_array().unwrap().len(), 2, "licences stay until the mailbox is converted");
    let task = s.ticket(run["vars"]["mailbox_task"]["ticket"].as_str().unwrap_or_else(|| panic!("{run}"))).await;
    assert_eq!(task["group"], "messaging");

    // Regression: the mailbox task stayed open after Messaging had done it (they ticked a
    // box on the parent instead). Now they resolve their task, and that moves the parent on.
    let mailbox = run["vars"]["mailbox_task"]["ticket"].as_str().unwrap().to_string();
    let (status, body) =
        s.admin.call("PATCH", &format!("/tickets/{mailbox}"), Some(&json!({"status": "resolved"}))).await.unwrap();
    assert_eq!(status, 200, "{body}");
    s.idle().await;
    // Regression: the parent was resolved while its asset-return task was still new.
    let run = s.run(&ticket, "leaver-offboarding").await;
    assert_eq!(run["waiting"]["step"], "wait_assets", "{run}");
    s.finish_tasks(&ticket).await;
    let t = s.ticket(&ticket).await;
    assert_eq!(t["status"], "resolved", "{t}");
    assert_eq!(t["custom"]["removed_ad_groups"], json!(["All Staff", "Sales", "VPN Users"]));
    assert_eq!(t["custom"]["removed_entra_groups"], json!(["All Staff", "Sales", "VPN Users"]));
    assert!(attr(&s.ldap_user("lleaver"), "memberOf").is_empty());
    let u = s.graph.user("lleaver@example.com").await.unwrap();
    assert_eq!((u["assignedLicenses"].clone(), u["_groups"].clone()), (json!([]), json!([])));
    assert!(comments(&t).contains("Licences removed: ENTERPRISEPACK, EMS"), "{}", comments(&t));
    let run = s.run(&ticket, "leaver-offboarding").await;
    assert!(run["vars"]["asset_return"]["ticket"].is_string(), "asset-return task opened");

    // Again, on a new ticket: only reads, and slapd's entry is untouched.
    let before_ldap = s.ldap_user("lleaver");
    let before_graph = s.graph.user("lleaver@example.com").await.unwrap();
    let logged_before = s.graph.requests().await.unwrap().len();
    let again = s
        .admin
        .post(
            "/tickets",
            &json!({"title": "Offboard Leo Leaver (again)", "requester": "hr", "kind": "service_request", "category": "offboarding",
                "custom": {"leaver": "Leo Leaver", "leaver_upn": "lleaver@example.com", "manager_upn": "mmanager@example.com"}}),
        )
        .await
        .unwrap();
    s.idle().await;
    let again = again["ticket"]["id"].as_str().unwrap();
    assert_eq!(s.ticket(again).await["status"], "resolved");
    let second = s.run(again, "leaver-offboarding").await;
    assert_eq!(second["status"], "completed", "{second}");
    assert!(second["vars"].get("asset_return").is_none(), "no second asset-return task");
    let writes: Vec<Value> = s.graph.requests().await.unwrap()[logged_before..]
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/v1.0") && r["method"] != "GET")
        .cloned()
        .collect();
    assert!(writes.is_empty(), "second run wrote to Graph: {writes:?}");
    assert_eq!(s.ldap_user("lleaver"), before_ldap, "second run wrote to AD");
    assert_eq!(s.graph.user("lleaver@example.com").await.unwrap(), before_graph);
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_tls_certificates_are_verified() {
    let s = stand().await;
    let input = json!({"user": "jdoe"});
    let call = || s.admin.call("POST", "/plugins/directory/actions/find_user", Some(&input));
    let (status, found) = call().await.unwrap();
    assert_eq!((status, found["output"]["found"].as_bool()), (200, Some(true)), "{found}");
    // The same server, but its CA is not trusted: the TLS handshake fails, nothing is sent.
    let grants = json!({"connections": ["ad-untrusted"], "config": {"ldap_connection": "ad-untrusted"}});
    let (status, _) = s.admin.call("PUT", "/plugins/directory/grants", Some(&grants)).await.unwrap();
    assert_eq!(status, 200);
    let (status, refused) = call().await.unwrap();
    assert_ne!(status, 200);
    assert!(refused.to_string().contains("certificate"), "{refused}");
}
