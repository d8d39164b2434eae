//! A stateful local fake of the Microsoft Graph v1.0 endpoints the `directory` and
//! `m365` plugins call, plus the Entra ID token endpoint.
//!
//! Faithful where the plugins depend on it: status codes and error bodies
//! (`{"error": {"code", "message", "innerError"}}`), bearer tokens from the client
//! credentials grant, `@odata.nextLink` paging (small pages, so callers must follow
//! them), `$batch` (at most 20 requests, `dependsOn` with 424, answers out of order),
//! "already a member" as 400, licence checks (usage location, free seats), and the
//! `DELETE /groups/{g}/members/{u}` trap (without `/$ref` it deletes the user).
//!
//! Test controls live under `/_fake`: the request log (`GET`/`DELETE /_fake/requests`),
//! throttling (`POST /_fake/throttle {"count", "retry_after", "status"}` makes the next
//! `count` Graph calls answer 429/503 with `Retry-After`), failures
//! (`POST /_fake/fail {"path_contains", "status", "count"}`), seats
//! (`POST /_fake/skus/{part} {"prepaid"}`) and full user state (`GET /_fake/users/{upn}`,
//! including the last password set). `/_vault` stands in for the secure channel that
//! receives generated passwords. Run it alone with the `demo-backends` binary.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod api;

use api::{batch, dispatch, error, not_found, ok, Req};

/// The client id the fake's token endpoint accepts.
pub const CLIENT_ID: &str = "switchboard-graph-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "graph-client-secret-never-in-plugins";
/// The bearer token the stand-in vault (`/_vault`) wants.
pub const VAULT_TOKEN: &str = "demo-vault-token";
/// Largest page the fake returns; small so paging is exercised.
pub const PAGE_SIZE: usize = 2;

/// One request the fake answered.
#[derive(Debug, Clone, Serialize)]
pub struct Logged {
    /// Milliseconds since the fake started.
    pub at_ms: u64,
    /// HTTP method.
    pub method: String,
    /// Path and query (for `$batch` items: the item's URL, prefixed `$batch:`).
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// Request body (JSON, or null).
    pub body: Value,
}

#[derive(Debug, Default)]
struct Throttle {
    remaining: u32,
    retry_after: u64,
    status: u16,
}

#[derive(Debug, Clone)]
struct Sku {
    id: String,
    part: String,
    prepaid: u64,
}

#[derive(Debug, Clone, Default)]
struct Group {
    name: String,
    nickname: String,
    members: BTreeSet<String>,
}

#[derive(Debug)]
struct Graph {
    started: Instant,
    next_id: u64,
    tokens: BTreeSet<String>,
    users: BTreeMap<String, Map<String, Value>>,
    passwords: BTreeMap<String, String>,
    managers: BTreeMap<String, String>,
    mailbox: BTreeMap<String, Value>,
    groups: BTreeMap<String, Group>,
    teams: BTreeMap<String, Group>,
    skus: Vec<Sku>,
    throttle: Throttle,
    log: Vec<Logged>,
    vault: Vec<Value>,
    /// Calls whose path contains `.0` answer `.1` (`403`, `404`, `500`...) `.2` more times.
    fail: Option<(String, u16, u32)>,
}

type Shared = Arc<Mutex<Graph>>;
type Answer = (u16, Option<u64>, Value);

/// The SKUs of the seed tenant: (skuId, skuPartNumber, seats bought).
pub const SKUS: [(&str, &str, u64); 3] = [
    ("6fd2c87f-b296-42f0-b197-1e91e994b900", "ENTERPRISEPACK", 5),
    ("efccb6f7-5641-4e0e-bd10-b4976e1bf68e", "EMS", 5),
    ("f8a1db68-be16-40ed-86d5-cb42ce701560", "POWER_BI_PRO", 0),
];

impl Graph {
    fn seeded() -> Self {
        let mut g = Graph {
            started: Instant::now(),
            next_id: 1,
            tokens: BTreeSet::new(),
            users: BTreeMap::new(),
            passwords: BTreeMap::new(),
            managers: BTreeMap::new(),
            mailbox: BTreeMap::new(),
            groups: BTreeMap::new(),
            teams: BTreeMap::new(),
            skus: SKUS
                .iter()
                .map(|(id, part, n)| Sku { id: id.to_string(), part: part.to_string(), prepaid: *n })
                .collect(),
            throttle: Throttle::default(),
            log: Vec::new(),
            vault: Vec::new(),
            fail: None,
        };
        let people = [
            ("mmanager", "Mia", "Manager", true, "Sales"),
            ("jdoe", "Jane", "Doe", true, "Sales"),
            ("ssmith", "Sam", "Smith", true, "Engineering"),
            ("ddisabled", "Dan", "Disabled", false, "Finance"),
            ("lleaver", "Leo", "Leaver", true, "Sales"),
        ];
        for (nick, given, sur, enabled, dept) in people {
            let id = g.create_user(json!({
                "accountEnabled": enabled, "displayName": format!("{given} {sur}"), "givenName": given,
                "surname": sur, "mailNickname": nick, "userPrincipalName": format!("{nick}@example.com"),
                "usageLocation": "DE", "department": dept,
            }));
            g.mailbox.insert(id, default_mailbox());
        }
        for (name, nick) in [
            ("All Staff", "all-staff"),
            ("Sales", "sales"),
            ("VPN Users", "vpn-users"),
            ("Engineering", "engineering"),
            ("Finance", "finance"),
        ] {
            let id = g.new_id();
            g.groups.insert(id, Group { name: name.into(), nickname: nick.into(), members: BTreeSet::new() });
        }
        for (name, nick) in [("Sales Team", "sales-team"), ("Engineering Team", "engineering-team")] {
            let id = g.new_id();
            g.teams.insert(id, Group { name: name.into(), nickname: nick.into(), members: BTreeSet::new() });
        }
        let id = |g: &Graph, upn: &str| g.user_id(upn).unwrap_or_default();
        let (mia, jane, sam, leo) = (id(&g, "mmanager"), id(&g, "jdoe"), id(&g, "ssmith"), id(&g, "lleaver"));
        for (group, members) in [
            ("All Staff", vec![&mia, &jane, &sam, &leo]),
            ("Sales", vec![&mia, &jane, &leo]),
            ("VPN Users", vec![&leo]),
            ("Engineering", vec![&sam]),
        ] {
            if let Some(grp) = g.groups.values_mut().find(|x| x.name == group) {
                grp.members.extend(members.into_iter().cloned());
            }
        }
        if let Some(t) = g.teams.values_mut().find(|t| t.name == "Sales Team") {
            t.members.extend([mia.clone(), leo.clone()]);
        }
        for u in [&jane, &leo] {
            g.managers.insert(u.clone(), mia.clone());
        }
        for (user, skus) in [(&mia, vec![0]), (&jane, vec![0]), (&leo, vec![0, 1])] {
            let lic: Vec<Value> = skus.iter().map(|i| json!({"skuId": SKUS[*i].0, "disabledPlans": []})).collect();
            if let Some(u) = g.users.get_mut(user) {
                u.insert("assignedLicenses".into(), Value::Array(lic));
            }
        }
        g
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next_id)
    }

    fn create_user(&mut self, body: Value) -> String {
        let id = self.new_id();
        let mut u = body.as_object().cloned().unwrap_or_default();
        if let Some(p) = u.remove("passwordProfile") {
            self.passwords.insert(id.clone(), p["password"].as_str().unwrap_or("").to_string());
        }
        u.insert("id".into(), json!(id));
        let upn = u.get("userPrincipalName").cloned().unwrap_or(Value::Null);
        u.entry("mail").or_insert(upn);
        u.entry("assignedLicenses").or_insert(json!([]));
        u.entry("usageLocation").or_insert(Value::Null);
        u.entry("signInSessionsValidFromDateTime").or_insert(Value::Null);
        self.users.insert(id.clone(), u);
        self.mailbox.insert(id.clone(), default_mailbox());
        id
    }

    /// A user's id from an id or a UPN (case-insensitive), as Graph accepts both.
    fn user_id(&self, key: &str) -> Option<String> {
        if self.users.contains_key(key) {
            return Some(key.to_string());
        }
        let key = key.to_lowercase();
        self.users.iter().find_map(|(id, u)| {
            let upn = u.get("userPrincipalName").and_then(Value::as_str).unwrap_or("").to_lowercase();
            let nick = u.get("mailNickname").and_then(Value::as_str).unwrap_or("").to_lowercase();
            (upn == key || nick == key).then(|| id.clone())
        })
    }

    fn consumed(&self, sku: &str) -> u64 {
        self.users
            .values()
            .filter(|u| {
                u.get("assignedLicenses").and_then(Value::as_array).is_some_and(|l| l.iter().any(|x| x["skuId"] == sku))
            })
            .count() as u64
    }

    fn group_json(id: &str, g: &Group) -> Value {
        json!({"@odata.type": "#microsoft.graph.group", "id": id, "displayName": g.name, "mailNickname": g.nickname,
               "securityEnabled": true})
    }

    fn user_json(&self, id: &str) -> Value {
        let mut u = self.users.get(id).cloned().unwrap_or_default();
        u.insert("@odata.type".into(), json!("#microsoft.graph.user"));
        Value::Object(u)
    }
}

fn default_mailbox() -> Value {
    json!({"automaticRepliesSetting": {"status": "disabled", "externalAudience": "all",
        "internalReplyMessage": "", "externalReplyMessage": ""}, "timeZone": "W. Europe Standard Time"})
}

fn throttled(t: &Throttle) -> Answer {
    let (code, status) = if t.status == 503 { ("serviceNotAvailable", 503) } else { ("TooManyRequests", 429) };
    let mut e = error(status, code, "Too many requests. Please retry after the time in the Retry-After header.");
    e.1 = Some(t.retry_after);
    e
}

fn respond((status, retry_after, body): Answer) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if body.is_null() { code.into_response() } else { (code, axum::Json(body)).into_response() };
    if let Some(s) = retry_after {
        if let Ok(v) = s.to_string().parse() {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    resp
}

async fn handle(State(state): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let base = format!("http://{host}");
    let path = uri.path().to_string();
    let query: BTreeMap<String, String> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or(""))
            .unwrap_or_default()
            .into_iter()
            .collect();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut g = state.lock().unwrap_or_else(|e| e.into_inner());
    let answer = if path.ends_with("/oauth2/v2.0/token") && method == Method::POST {
        token(&mut g, &body)
    } else if let Some(rest) = path.strip_prefix("/_fake") {
        return respond(control(&mut g, &method, rest, &json_body));
    } else if path.starts_with("/_vault") {
        // The stand-in for a password vault (the `password-channel` connection): it takes
        // what it is sent with its bearer token, and shows it to whoever asks.
        let bearer = headers.get("authorization").and_then(|h| h.to_str().ok());
        return respond(match method {
            Method::POST if bearer == Some(&format!("Bearer {VAULT_TOKEN}")) => {
                g.vault.push(json!({"path": path, "body": json_body}));
                ok(201, json!({"stored": true}))
            }
            Method::POST => ok(401, json!({"error": "vault token missing"})),
            _ => ok(200, json!(g.vault)),
        });
    } else if let Some(graph_path) = path.strip_prefix("/v1.0") {
        let bearer = headers.get("authorization").and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer "));
        if !bearer.is_some_and(|t| g.tokens.contains(t)) {
            error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        } else if graph_path == "/$batch" && method == Method::POST {
            batch(&mut g, &base, &json_body)
        } else if g.throttle.remaining > 0 {
            g.throttle.remaining -= 1;
            throttled(&g.throttle)
        } else if let Some(status) = injected_failure(&mut g, graph_path) {
            let code = if status == 403 { "Authorization_RequestDenied" } else { "InjectedFailure" };
            error(status, code, "Insufficient privileges to complete the operation.")
        } else {
            dispatch(&mut g, Req { base: &base, method: &method, path: graph_path, query: &query, body: &json_body })
        }
    } else {
        error(404, "NotFound", "not a Graph path")
    };
    let logged_path = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let at_ms = g.started.elapsed().as_millis() as u64;
    let logged_body = if path.ends_with("/token") { Value::Null } else { json_body };
    g.log.push(Logged { at_ms, method: method.to_string(), path: logged_path, status: answer.0, body: logged_body });
    respond(answer)
}

/// The status of an injected failure for this path, if one is armed (and counts it).
fn injected_failure(g: &mut Graph, path: &str) -> Option<u16> {
    let (pattern, status, remaining) = g.fail.as_mut()?;
    if *remaining == 0 || !path.contains(pattern.as_str()) {
        return None;
    }
    *remaining -= 1;
    Some(*status)
}

fn token(g: &mut Graph, body: &[u8]) -> Answer {
    let form: BTreeMap<String, String> =
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default().into_iter().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return ok(
            400,
            json!({"error": "unsupported_grant_type", "error_description": "AADSTS70003: The app requested an unsupported grant type."}),
        );
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return ok(
            401,
            json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
        );
    }
    let token = format!("fake-access-token-{}", g.tokens.len() + 1);
    g.tokens.insert(token.clone());
    ok(200, json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}))
}

fn control(g: &mut Graph, method: &Method, path: &str, body: &Value) -> Answer {
    match (method.as_str(), path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice()) {
        ("GET", ["requests"]) => ok(200, json!(g.log)),
        ("DELETE", ["requests"]) => {
            g.log.clear();
            ok(204, Value::Null)
        }
        ("POST", ["throttle"]) => {
            g.throttle = Throttle {
                remaining: body["count"].as_u64().unwrap_or(1) as u32,
                retry_after: body["retry_after"].as_u64().unwrap_or(1),
                status: body["status"].as_u64().unwrap_or(429) as u16,
            };
            ok(204, Value::Null)
        }
        ("POST", ["fail"]) => {
            let pattern = body["path_contains"].as_str().unwrap_or("").to_string();
            let status = body["status"].as_u64().unwrap_or(403) as u16;
            g.fail = Some((pattern, status, body["count"].as_u64().unwrap_or(1) as u32));
            ok(204, Value::Null)
        }
        ("POST", ["skus", part]) => match g.skus.iter_mut().find(|s| s.part == *part) {
            Some(s) => {
                s.prepaid = body["prepaid"].as_u64().unwrap_or(s.prepaid);
                ok(204, Value::Null)
            }
            None => not_found(part),
        },
        ("GET", ["users", key]) => {
            let Some(id) = g.user_id(key) else { return not_found(key) };
            let mut u = g.user_json(&id);
            u["_password"] = json!(g.passwords.get(&id));
            u["_manager"] = json!(g.managers.get(&id));
            u["_mailboxSettings"] = g.mailbox.get(&id).cloned().unwrap_or(Value::Null);
            u["_groups"] = json!(g
                .groups
                .values()
                .filter(|grp| grp.members.contains(&id))
                .map(|grp| grp.name.clone())
                .collect::<Vec<_>>());
            u["_teams"] =
                json!(g.teams.values().filter(|t| t.members.contains(&id)).map(|t| t.name.clone()).collect::<Vec<_>>());
            ok(200, u)
        }
        ("GET", ["teams"]) => {
            ok(200, json!(g.teams.iter().map(|(id, t)| json!({"id": id, "displayName": t.name})).collect::<Vec<_>>()))
        }
        _ => error(404, "NotFound", "unknown fake control"),
    }
}

/// A running fake; the server task ends with the runtime.
pub struct GraphFake {
    /// `http://127.0.0.1:<port>`: Graph is under `/v1.0`, the token endpoint at
    /// `/<tenant>/oauth2/v2.0/token`.
    pub url: String,
}

impl GraphFake {
    /// Serves the seeded tenant on `listener`.
    pub fn serve(listener: tokio::net::TcpListener) -> anyhow::Result<Self> {
        let url = format!("http://{}", listener.local_addr()?);
        let state: Shared = Arc::new(Mutex::new(Graph::seeded()));
        let app = Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url })
    }

    /// Starts on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
    }

    /// The request log so far.
    pub async fn requests(&self) -> anyhow::Result<Vec<Value>> {
        let v: Value = reqwest::get(format!("{}/_fake/requests", self.url)).await?.json().await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// A user's full state (with `_password`, `_manager`, `_groups`, `_teams`, `_mailboxSettings`).
    pub async fn user(&self, upn: &str) -> anyhow::Result<Value> {
        Ok(reqwest::get(format!("{}/_fake/users/{upn}", self.url)).await?.json().await?)
    }

    /// Makes the next `count` Graph calls answer `status` (429 or 503) with `Retry-After: retry_after`.
    pub async fn throttle(&self, count: u32, retry_after: u64, status: u16) -> anyhow::Result<()> {
        let body = json!({"count": count, "retry_after": retry_after, "status": status});
        reqwest::Client::new()
            .post(format!("{}/_fake/throttle", self.url))
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// What the stand-in vault received (`[{path, body}]`).
    pub async fn vault(&self) -> anyhow::Result<Vec<Value>> {
        let v: Value = reqwest::get(format!("{}/_vault", self.url)).await?.json().await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Makes the next `count` Graph calls whose path contains `path_contains` answer `status`.
    pub async fn fail(&self, path_contains: &str, status: u16, count: u32) -> anyhow::Result<()> {
        let body = json!({"path_contains": path_contains, "status": status, "count": count});
        reqwest::Client::new().post(format!("{}/_fake/fail", self.url)).json(&body).send().await?.error_for_status()?;
        Ok(())
    }

    /// Sets how many seats of a SKU the tenant bought.
    pub async fn set_seats(&self, part: &str, prepaid: u64) -> anyhow::Result<()> {
        let body = json!({ "prepaid": prepaid });
        reqwest::Client::new()
            .post(format!("{}/_fake/skus/{part}", self.url))
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}
