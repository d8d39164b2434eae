//! The API's contract over a real server: every route against every role (from the one
//! table in `api::openapi`), the documented success codes, and every rejection as the
//! JSON error body (405, 413, 415, duplicate keys, NUL, missing webhook fields).

use serde_json::{json, Value};
use std::time::Duration;
use switchboard::api::openapi::{Access, OPERATIONS};
use switchboard::config::Role;
use switchboard::notify::sign;
use switchboard_tests::{repo, write_config, Api, Server, ADMIN, AGENT, INTEGRATOR};

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    (dir, server)
}

async fn send(
    url: &str,
    method: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Option<Value>) {
    if body.len() > 64 << 10 {
        return send_raw(url, method, token, content_type, body).await;
    }
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).ok())
}

/// Sends a large body over a plain TCP connection, reading the answer while the body is
/// still being written. The server may answer 413 from the headers alone and close the
/// connection without reading the rest; an HTTP client then fails on the write (broken
/// pipe, seen in a CI run) before it reads the answer that was sent.
async fn send_raw(
    url: &str,
    method: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Option<Value>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    if let Some(t) = token {
        head.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    if let Some(ct) = content_type {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    // Write errors are expected once the server has answered and closed.
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_ok() {
            let _ = wr.write_all(&body).await;
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).ok())
}

/// Every route, every role: a role outside the route's list gets 403 with the JSON
/// error body; a role inside it is never refused for its role (whatever else the
/// placeholder request earns: 404, 422...).
#[tokio::test]
async fn every_route_answers_every_role_as_the_table_says() {
    let (_dir, server) = start();
    let roles = [(Role::Admin, ADMIN), (Role::Agent, AGENT), (Role::Integrator, INTEGRATOR)];
    let mut checked = 0;
    for (method, path, _, access, body, _) in OPERATIONS {
        let Access::Roles(allowed) = access else { continue };
        let url = format!("{}{}", server.url, path.replace("{action}", "go").replace('{', "zz").replace('}', ""));
        let (ct, payload): (Option<&str>, Vec<u8>) = match (*method, body) {
            ("get" | "delete", _) => (None, Vec::new()),
            (_, Some("wasm")) => (Some("application/wasm"), b"not wasm".to_vec()),
            _ => (Some("application/json"), b"{}".to_vec()),
        };
        for (role, token) in roles {
            let (status, err) = send(&url, &method.to_uppercase(), Some(token), ct, payload.clone()).await;
            if allowed.contains(&role) {
                assert!(status != 401 && status != 403, "{method} {path} as {role:?}: {status} {err:?}");
            } else {
                assert_eq!(status, 403, "{method} {path} as {role:?} must be refused");
                assert_eq!(err.as_ref().and_then(|e| e["error"]["code"].as_str()), Some("forbidden"), "{err:?}");
            }
            checked += 1;
        }
        // No token: 401 with the JSON body, everywhere.
        let (status, err) = send(&url, &method.to_uppercase(), None, ct, payload.clone()).await;
        assert_eq!(status, 401, "{method} {path} without a token");
        assert_eq!(err.unwrap()["error"]["code"], "unauthorized");
    }
    assert!(checked > 150, "{checked} checks");
}

/// The README's role table is the one generated from the code's table.
#[test]
fn the_readme_role_table_is_the_codes() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let begin = "<!-- roles:begin -->\n";
    let end = "<!-- roles:end -->";
    let generated = switchboard::api::openapi::roles_table();
    let (Some(a), Some(b)) = (readme.find(begin), readme.find(end)) else { panic!("README has no role table markers") };
    let current = &readme[a + begin.len()..b];
    if std::env::var_os("BLESS").is_some() {
        let updated = format!("{}{generated}{}", &readme[..a + begin.len()], &readme[b..]);
        std::fs::write(repo().join("README.md"), updated).unwrap();
        return;
    }
    assert_eq!(current, generated, "README's role table is stale (run with BLESS=1 to regenerate)");
}

fn documented(method: &str, path: &str) -> &'static [u16] {
    OPERATIONS.iter().find(|(m, p, ..)| *m == method && *p == path).map(|(.., s)| *s).unwrap()
}

/// Regression: the document said 201 where the server answers 202 or 200.
#[tokio::test]
async fn success_codes_are_the_documented_ones() {
    let (_dir, server) = start();
    let admin = Api::new(&server.url, ADMIN);
    let agent = Api::new(&server.url, AGENT);
    let check = |method: &'static str, path: &'static str, status: u16| {
        assert!(documented(method, path).contains(&status), "{method} {path} answered {status}");
    };
    let (s, b) = admin
        .call("POST", "/groups", Some(&json!({"id": "desk", "name": "Desk", "description": "", "manager": null})))
        .await
        .unwrap();
    assert!(s < 300, "{b}");
    check("post", "/groups", s);
    let (s, _) = admin
        .call("POST", "/agents", Some(&serde_json::to_value(switchboard_tests::agent("amy", &["desk"])).unwrap()))
        .await
        .unwrap();
    check("post", "/agents", s);
    let sla: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("workflows/sla/standard.json")).unwrap()).unwrap();
    let (s, _) = admin.call("POST", "/sla/calendars", Some(&sla["calendars"][0])).await.unwrap();
    check("post", "/sla/calendars", s);
    let (s, _) = admin.call("POST", "/sla/policies", Some(&sla["policies"][0])).await.unwrap();
    check("post", "/sla/policies", s);
    let wf = json!({"id": "hand", "name": "By hand", "triggers": [{"on": "manual"}],
        "steps": [{"id": "note", "type": "comment", "body": "started by hand", "internal": true}]});
    let (s, b) = admin.call("POST", "/workflows", Some(&wf)).await.unwrap();
    assert_eq!(s, 201, "{b}");
    check("post", "/workflows", s);
    let mut changed = wf.clone();
    changed["name"] = json!("By hand, again");
    let (s, _) = admin.call("POST", "/workflows", Some(&changed)).await.unwrap();
    assert_eq!(s, 200);
    check("post", "/workflows", s);
    let (s, t) = agent.call("POST", "/tickets", Some(&json!({"title": "t", "requester": "r"}))).await.unwrap();
    check("post", "/tickets", s);
    let id = t["ticket"]["id"].as_str().unwrap().to_string();
    let (s, t2) = agent.call("POST", "/tickets", Some(&json!({"title": "u", "requester": "r"}))).await.unwrap();
    check("post", "/tickets", s);
    let other = t2["ticket"]["id"].as_str().unwrap();
    let (s, b) = agent.call("POST", "/workflows/hand/runs", Some(&json!({"ticket": id}))).await.unwrap();
    assert!(s < 300, "{b}");
    check("post", "/workflows/{id}/runs", s);
    let (s, _) = agent
        .call("POST", &format!("/tickets/{id}/comments"), Some(&json!({"body": "hi", "internal": false})))
        .await
        .unwrap();
    check("post", "/tickets/{id}/comments", s);
    let (s, b) = agent
        .call("POST", &format!("/tickets/{id}/links"), Some(&json!({"ticket": other, "kind": "related"})))
        .await
        .unwrap();
    assert!(s < 300, "{b}");
    check("post", "/tickets/{id}/links", s);
    agent.wait_idle(Duration::from_secs(10)).await.unwrap();
}

/// Regression: some 413s and every 405 were text/plain or empty; text/plain bodies were
/// parsed as JSON; duplicate keys were taken silently (two `steps` arrays validated);
/// `bearer` in lower case was refused.
#[tokio::test]
async fn every_rejection_is_the_json_error_body() {
    let (_dir, server) = start();
    let u = |p: &str| format!("{}{p}", server.url);
    let code = |v: &Option<Value>| v.as_ref().and_then(|v| v["error"]["code"].as_str().map(String::from));

    let (s, b) = send(&u("/tickets"), "DELETE", Some(ADMIN), None, Vec::new()).await;
    assert_eq!((s, code(&b).as_deref()), (405, Some("method_not_allowed")), "{b:?}");
    let (s, b) = send(&u("/health"), "POST", None, None, Vec::new()).await;
    assert_eq!((s, code(&b).as_deref()), (405, Some("method_not_allowed")), "{b:?}");

    let big = vec![b' '; 2 << 20];
    for (method, path) in [
        ("POST", "/workflows"),
        ("PUT", "/workflows/x"),
        ("PUT", "/workflows/x/draft"),
        ("POST", "/workflows/validate"),
        ("POST", "/tickets"),
    ] {
        let (s, b) = send(&u(path), method, Some(ADMIN), Some("application/json"), big.clone()).await;
        assert_eq!((s, code(&b).as_deref()), (413, Some("body_too_large")), "{method} {path}: {b:?}");
    }
    let (s, b) = send(&u("/plugins"), "POST", Some(ADMIN), Some("application/wasm"), vec![0; 9 << 20]).await;
    assert_eq!((s, code(&b).as_deref()), (413, Some("body_too_large")), "{b:?}");

    let ticket = br#"{"title": "printer", "requester": "ann"}"#.to_vec();
    let (s, b) = send(&u("/tickets"), "POST", Some(AGENT), Some("text/plain"), ticket.clone()).await;
    assert_eq!((s, code(&b).as_deref()), (415, Some("unsupported_media_type")), "{b:?}");
    let (s, b) = send(&u("/tickets"), "POST", Some(AGENT), None, ticket.clone()).await;
    assert_eq!(s, 415, "{b:?}");
    let (s, _) = send(&u("/tickets"), "POST", Some(AGENT), Some("application/json; charset=utf-8"), ticket).await;
    assert_eq!(s, 201);

    let dup = br#"{"title": "a", "requester": "ann", "title": "b"}"#.to_vec();
    let (s, b) = send(&u("/tickets"), "POST", Some(AGENT), Some("application/json"), dup).await;
    assert_eq!((s, code(&b).as_deref()), (400, Some("malformed_json")), "{b:?}");
    assert!(b.unwrap()["error"]["message"].as_str().unwrap().contains("`title` appears twice"));
    let two_steps = br#"{"id": "w", "name": "w", "triggers": [{"on": "manual"}], "steps": [], "steps": [{"id": "a", "type": "resolve"}]}"#.to_vec();
    let (s, b) = send(&u("/workflows/validate"), "POST", Some(ADMIN), Some("application/json"), two_steps).await;
    assert_eq!(s, 400, "{b:?}");
    assert!(b.unwrap()["error"]["message"].as_str().unwrap().contains("`steps` appears twice"));
    let nul = br#"{"title": "a\u0000b", "requester": "ann"}"#.to_vec();
    let (s, b) = send(&u("/tickets"), "POST", Some(AGENT), Some("application/json"), nul).await;
    assert_eq!(s, 400, "{b:?}");
    assert_eq!(b.unwrap()["error"]["details"]["errors"][0]["pointer"], "/title");

    let lower = reqwest::Client::new()
        .get(u("/tickets"))
        .header("authorization", format!("bearer {AGENT}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status().as_u16(), 200, "auth schemes are case-insensitive");
}

/// Regression: a signed new-hire delivery missing every mapped field made a ticket
/// titled "Onboard  (), starts " and onboarding runs that failed.
#[tokio::test]
async fn a_webhook_delivery_missing_required_fields_is_refused_naming_them() {
    let (_dir, server) = start();
    let admin = Api::new(&server.url, ADMIN);
    let mut endpoint: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("workflows/webhooks/hr-new-hire.json")).unwrap())
            .unwrap();
    endpoint["secret"] = json!("hr-secret-0123456789abcdef");
    let (s, b) = admin.call("POST", "/webhooks", Some(&endpoint)).await.unwrap();
    assert!(s < 300, "{b}");
    let body = serde_json::to_vec(&json!({"event_id": "evt-9", "employee": {"id": "E-9"}})).unwrap();
    let sig = sign(b"hr-secret-0123456789abcdef", chrono::Utc::now().timestamp(), &body);
    let resp = reqwest::Client::new()
        .post(format!("{}/hooks/hr-new-hire", server.url))
        .header("content-type", "application/json")
        .header("x-switchboard-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let err: Value = resp.json().await.unwrap();
    let pointers: Vec<&str> =
        err["error"]["details"]["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert!(pointers.contains(&"/employee/first_name") && pointers.contains(&"/employee/start_date"), "{err}");
    assert!(!pointers.contains(&"/employee/id"));
    assert_eq!(admin.get("/tickets").await.unwrap()["tickets"].as_array().unwrap().len(), 0, "nothing created");
}

/// The response schemas in the OpenAPI document describe what the server answers.
#[tokio::test]
async fn documented_response_schemas_match_the_answers() {
    let (_dir, server) = start();
    let admin = Api::new(&server.url, ADMIN);
    let doc: Value = reqwest::get(format!("{}/openapi.json", server.url)).await.unwrap().json().await.unwrap();
    let mut components = doc["components"].clone();
    // Those two point at the workflow schema by URL; the rest is self-contained.
    for external in ["Workflow", "WorkflowRecord"] {
        components["schemas"].as_object_mut().unwrap().remove(external);
    }
    let check = |name: &str, answer: &Value| {
        let schema = json!({"$ref": format!("#/components/schemas/{name}"), "components": components.clone()});
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(answer).map(|e| format!("{} {e}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{name}: {errors:?} in {answer}");
    };
    let wf = json!({"id": "every-hour", "name": "hourly", "triggers": [{"on": "schedule", "cron": "0 * * * *", "timezone": "Europe/Berlin"}],
        "steps": [{"id": "pause", "type": "wait", "minutes": 1}]});
    admin.post("/workflows", &wf).await.unwrap();
    let created = admin.post("/tickets", &json!({"title": "t", "requester": "r"})).await.unwrap();
    check("Outcome", &created);
    let id = created["ticket"]["id"].as_str().unwrap();
    check("Ticket", &admin.get(&format!("/tickets/{id}")).await.unwrap());
    check("TicketList", &admin.get("/tickets").await.unwrap());
    check("Schedules", &admin.get("/schedules").await.unwrap());
    let (s, installed) =
        admin.raw("POST", "/plugins", std::fs::read(switchboard_tests::plugin_wasm("hostile")).unwrap()).await.unwrap();
    assert_eq!(s, 201);
    check("Installed", &installed);
    check("Plugin", &admin.get("/plugins/hostile").await.unwrap());
    let hand = json!({"id": "hand", "name": "By hand", "triggers": [{"on": "manual"}], "steps": [{"id": "r", "type": "resolve"}]});
    admin.post("/workflows", &hand).await.unwrap();
    let started = admin.post("/workflows/hand/runs", &json!({"ticket": id})).await.unwrap();
    check("Started", &started);
    admin.wait_idle(Duration::from_secs(10)).await.unwrap();
    let run = admin.get(&format!("/runs/{}", started["runs"][0].as_str().unwrap())).await.unwrap();
    check("Run", &run);
    check("RunList", &admin.get("/runs").await.unwrap());
}

/// `engine/src/lib.rs` maps the layers, lower first, and says each depends only on those
/// above it. This reads every module's source (outside its tests) and checks that no
/// module names a `crate::` module listed below it.
#[test]
fn the_layout_map_in_lib_rs_is_true() {
    let src = switchboard_tests::repo().join("engine/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut layers: Vec<Vec<String>> = Vec::new();
    for line in lib.lines().filter(|l| l.starts_with("//! | [`")) {
        let cell = line.trim_start_matches("//! | ").split(" |").next().unwrap();
        layers
            .push(cell.split(", ").map(|m| m.trim_matches(|c| c == '[' || c == ']' || c == '`').to_string()).collect());
    }
    let layer_of = |m: &str| layers.iter().position(|l| l.iter().any(|x| x == m));
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut broken = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        for module in layer {
            let mut files = Vec::new();
            if src.join(format!("{module}.rs")).exists() {
                files.push(src.join(format!("{module}.rs")));
            }
            if src.join(module).is_dir() {
                sources(&src.join(module), &mut files);
            }
            assert!(!files.is_empty(), "the map names `{module}`, which has no source");
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap();
                for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
                    for (at, _) in line.match_indices("crate::") {
                        let name: String =
                            line[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                        if layer_of(&name).is_some_and(|l| l > i) {
                            broken.push(format!("{}: {module} uses crate::{name}, a layer below it", file.display()));
                        }
                    }
                }
            }
        }
    }
    assert!(layers.len() > 20, "the map was read: {layers:?}");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
