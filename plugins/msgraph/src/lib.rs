//! Microsoft Graph v1.0 through a Switchboard HTTP connection, shared by the `directory`
//! and `m365` plugins.
//!
//! The host holds the OAuth2 client credentials and adds the bearer token; this crate
//! never sees them. What it adds on top of [`host::http`]:
//! - Graph's error body (`{"error": {"code", "message"}}`) becomes a plugin [`Error`]
//!   with the Graph code; 429 and 503 are retryable and carry `Retry-After` (seconds) as
//!   `retry_after_ms`, so the engine waits as Graph asked before the step runs again;
//! - [`Graph::get_all`] follows `@odata.nextLink` to the end;
//! - [`Graph::batch`] sends `$batch` requests in chunks of 20 and hands back each
//!   item's answer by id (Graph answers in any order).
//!
//! Every write a plugin makes is idempotent (read first, or "already done" counts as
//! success), so retrying a whole action after a throttled call is safe.

use switchboard_sdk::host::{self};
use switchboard_sdk::{json, Error, HttpRequest, HttpResponse, Value};

/// Most requests in one `$batch` (Graph's limit).
pub const BATCH_LIMIT: usize = 20;
/// Most pages [`Graph::get_all`] follows, against a server that never stops paging.
pub const MAX_PAGES: usize = 200;
/// How `@odata.id` references name directory objects.
pub const OBJECT_BASE: &str = "https://graph.microsoft.com/v1.0/directoryObjects/";

/// A Graph connection (its name in the server's `[connections]`).
#[derive(Debug, Clone)]
pub struct Graph {
    /// Connection name; its `base_url` ends in `/v1.0`.
    pub connection: String,
}

/// One `$batch` request.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// Unique within the batch.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// Path relative to `/v1.0`, e.g. `/groups/{id}/members/$ref`.
    pub url: String,
    /// JSON body.
    pub body: Option<Value>,
}

/// One `$batch` answer.
#[derive(Debug, Clone)]
pub struct BatchAnswer {
    /// The request's id.
    pub id: String,
    /// Its status.
    pub status: u16,
    /// Its body.
    pub body: Value,
    /// `Retry-After` seconds, for 429/503 items.
    pub retry_after: Option<u64>,
}

impl Graph {
    /// The connection named by plugin config `graph_connection` (default `graph`).
    pub fn from_config() -> Result<Graph, Error> {
        let connection = host::config("graph_connection")?.unwrap_or_else(|| "graph".to_string());
        Ok(Graph { connection })
    }

    /// Sends one request and returns the raw response.
    pub fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<HttpResponse, Error> {
        let mut headers = std::collections::BTreeMap::new();
        if body.is_some() {
            headers.insert("content-type".to_string(), "application/json".to_string());
        }
        host::http(&HttpRequest {
            connection: self.connection.clone(),
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body,
        })
    }

    /// Sends one request; a non-2xx answer becomes an [`Error`] (see [`graph_error`]).
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let resp = self.send(method, path, body)?;
        if (200..300).contains(&resp.status) {
            Ok(resp.body)
        } else {
            Err(graph_error(&resp, &format!("{} {}", method, path)))
        }
    }

    /// Like [`Graph::call`], but 404 is `None`.
    pub fn get_opt(&self, path: &str) -> Result<Option<Value>, Error> {
        let resp = self.send("GET", path, None)?;
        match resp.status {
            200 => Ok(Some(resp.body)),
            404 => Ok(None),
            _ => Err(graph_error(&resp, &format!("GET {}", path))),
        }
    }

    /// Every item of a collection, following `@odata.nextLink`.
    pub fn get_all(&self, path: &str) -> Result<Vec<Value>, Error> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(Error::new("too_many_pages", format!("{} has more than {} pages", path, MAX_PAGES)));
            }
            let page = self.call("GET", &url, None)?;
            if let Some(values) = page.get("value").and_then(Value::as_array) {
                items.extend(values.iter().cloned());
            }
            next = page.get("@odata.nextLink").and_then(Value::as_str).map(String::from);
        }
        Ok(items)
    }

    /// A user by object id, UPN, mail or mail nickname (what AD calls sAMAccountName);
    /// `None` if there is none.
    pub fn find_user(&self, key: &str) -> Result<Option<Value>, Error> {
        if key.is_empty() {
            return Err(Error::new("bad_input", "user is empty"));
        }
        if let Some(u) = self.get_opt(&format!("/users/{}", encode(key)))? {
            return Ok(Some(u));
        }
        let field = if key.contains('@') { "mail" } else { "mailNickname" };
        let found = self.call("GET", &format!("/users?$filter={}", encode(&eq_filter(field, key))), None)?;
        Ok(found.get("value").and_then(Value::as_array).and_then(|v| v.first().cloned()))
    }

    /// Like [`Graph::find_user`], but a missing user is a `not_found` error.
    pub fn user(&self, key: &str) -> Result<Value, Error> {
        self.find_user(key)?.ok_or_else(|| Error::new("not_found", format!("no Entra ID user `{}`", key)))
    }

    /// A group's (or team's) object id from its id, display name or mail nickname.
    pub fn group_id(&self, name: &str) -> Result<String, Error> {
        if is_guid(name) {
            return Ok(name.to_string());
        }
        for field in ["displayName", "mailNickname"] {
            let found = self.call("GET", &format!("/groups?$filter={}", encode(&eq_filter(field, name))), None)?;
            if let Some(id) = found.pointer("/value/0/id").and_then(Value::as_str) {
                return Ok(id.to_string());
            }
        }
        Err(Error::new("not_found", format!("no Entra ID group `{}`", name)))
    }

    /// Sends `items` as `$batch` requests of at most [`BATCH_LIMIT`]; answers by request.
    pub fn batch(&self, items: &[BatchItem]) -> Result<Vec<BatchAnswer>, Error> {
        let mut answers = Vec::new();
        for chunk in items.chunks(BATCH_LIMIT) {
            let requests: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    let mut r = json!({"id": i.id, "method": i.method, "url": i.url});
                    if let Some(b) = &i.body {
                        r["body"] = b.clone();
                        r["headers"] = json!({"Content-Type": "application/json"});
                    }
                    r
                })
                .collect();
            let out = self.call("POST", "/$batch", Some(json!({ "requests": requests })))?;
            let responses = out.get("responses").and_then(Value::as_array).cloned().unwrap_or_default();
            for item in chunk {
                let answer = responses.iter().find(|r| r.get("id").and_then(Value::as_str) == Some(item.id.as_str()));
                let answer = match answer {
                    Some(a) => a,
                    None => {
                        return Err(Error::retryable("bad_batch", format!("$batch gave no answer for {}", item.id)))
                    }
                };
                let retry_after = answer
                    .pointer("/headers/Retry-After")
                    .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())));
                answers.push(BatchAnswer {
                    id: item.id.clone(),
                    status: answer.get("status").and_then(Value::as_u64).unwrap_or(0) as u16,
                    body: answer.get("body").cloned().unwrap_or(Value::Null),
                    retry_after,
                });
            }
        }
        Ok(answers)
    }
}

/// Maps a Graph error answer to a plugin error: Graph's own code and message; 429 and
/// 503 (and other 5xx) retryable, with `Retry-After` passed on.
pub fn graph_error(resp: &HttpResponse, what: &str) -> Error {
    let retry_after = resp.headers.get("retry-after").and_then(|s| s.trim().parse::<u64>().ok());
    body_error(resp.status, &resp.body, retry_after, &format!("{} ->", what))
}

/// The error for a status and Graph's error body, labelled `label` in the message.
fn body_error(status: u16, body: &Value, retry_after: Option<u64>, label: &str) -> Error {
    let code = body.pointer("/error/code").and_then(Value::as_str).unwrap_or("graph_error");
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| format!("Graph answered {}", status));
    item_error(status, code, format!("{} {} {}: {}", label, status, code, message), retry_after)
}

/// The error for one status (also used for `$batch` items).
pub fn item_error(status: u16, code: &str, message: String, retry_after: Option<u64>) -> Error {
    match status {
        429 | 503 => Error::retry_after("throttled", message, retry_after.unwrap_or(1).saturating_mul(1000)),
        500..=599 => Error::retryable("graph_unavailable", message),
        401 => Error::new("unauthorized", message),
        403 => Error::new("forbidden", message),
        404 => Error::new("not_found", message),
        _ => Error::new(code, message),
    }
}

/// The `$batch` request adding a user to (or removing them from) a group.
pub fn membership_item(id: usize, group_id: &str, user_id: &str, add: bool) -> BatchItem {
    if add {
        BatchItem {
            id: id.to_string(),
            method: "POST".into(),
            url: format!("/groups/{}/members/$ref", group_id),
            body: Some(json!({ "@odata.id": format!("{}{}", OBJECT_BASE, user_id) })),
        }
    } else {
        BatchItem {
            id: id.to_string(),
            method: "DELETE".into(),
            url: format!("/groups/{}/members/{}/$ref", group_id, user_id),
            body: None,
        }
    }
}

/// What a membership change's answer means: `Ok(true)` changed, `Ok(false)` already as
/// asked ("already a member" on add, 404 on remove), or the error (retryable for
/// throttling, with its `Retry-After`). `name` labels the message.
pub fn membership_outcome(answer: &BatchAnswer, add: bool, name: &str) -> Result<bool, Error> {
    match answer.status {
        200..=299 => Ok(true),
        404 if !add => Ok(false),
        s if add && already_member(s, &answer.body) => Ok(false),
        _ => Err(answer_error(answer, name)),
    }
}

/// A `$batch` item's failure as a plugin error.
pub fn answer_error(answer: &BatchAnswer, name: &str) -> Error {
    body_error(answer.status, &answer.body, answer.retry_after, &format!("{}:", name))
}

/// Of two throttling errors, the one asking for the longer wait.
pub fn longer_wait(current: Option<Error>, e: Error) -> Option<Error> {
    match current {
        Some(c) if c.retry_after_ms >= e.retry_after_ms => Some(c),
        _ => Some(e),
    }
}

/// Whether an answer says "already a member" (Graph gives 400 for that; it is success
/// for an idempotent add).
pub fn already_member(status: u16, body: &Value) -> bool {
    status == 400
        && body.pointer("/error/message").and_then(Value::as_str).map_or(false, |m| m.contains("already exist"))
}

/// `field eq 'value'` with quotes doubled, for `$filter`.
pub fn eq_filter(field: &str, value: &str) -> String {
    format!("{} eq '{}'", field, value.replace('\'', "''"))
}

/// Percent-encodes everything but unreserved characters and `@` (UPNs stay readable).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{:02X}", b)),
        }
    }
    out
}

/// Whether `s` looks like an object id (8-4-4-4-12 hex).
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A value as a string field of `v`, or "".
pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn resp(status: u16, body: Value, retry: Option<&str>) -> HttpResponse {
        let mut headers = BTreeMap::new();
        if let Some(r) = retry {
            headers.insert("retry-after".to_string(), r.to_string());
        }
        HttpResponse { status, headers, body }
    }

    #[test]
    fn throttling_is_retryable_and_keeps_retry_after() {
        let e = graph_error(
            &resp(429, json!({"error": {"code": "TooManyRequests", "message": "slow down"}}), Some("7")),
            "GET /users",
        );
        assert_eq!((e.code.as_str(), e.retryable, e.retry_after_ms), ("throttled", true, Some(7000)));
        assert!(e.message.contains("TooManyRequests") && e.message.contains("slow down"), "{}", e.message);
        let e = graph_error(&resp(503, Value::Null, None), "x");
        assert_eq!((e.retryable, e.retry_after_ms), (true, Some(1000)));
    }

    #[test]
    fn other_errors_keep_graph_codes_and_are_permanent() {
        let e = graph_error(&resp(400, json!({"error": {"code": "Request_BadRequest", "message": "bad"}}), None), "x");
        assert_eq!((e.code.as_str(), e.retryable), ("Request_BadRequest", false));
        assert_eq!(
            graph_error(&resp(403, json!({"error": {"code": "Authorization_RequestDenied"}}), None), "x").code,
            "forbidden"
        );
        assert!(graph_error(&resp(502, Value::Null, None), "x").retryable);
    }

    #[test]
    fn filters_and_paths_are_escaped() {
        assert_eq!(eq_filter("displayName", "O'Brien team"), "displayName eq 'O''Brien team'");
        assert_eq!(encode("displayName eq 'A&B'"), "displayName%20eq%20%27A%26B%27");
        assert_eq!(encode("jdoe@example.com"), "jdoe@example.com");
        assert!(is_guid("00000000-0000-4000-8000-000000000002"));
        assert!(!is_guid("Sales"));
    }

    #[test]
    fn already_member_is_recognised() {
        let body = json!({"error": {"message": "One or more added object references already exist for the following modified properties: 'members'."}});
        assert!(already_member(400, &body));
        assert!(!already_member(404, &body));
    }
}
