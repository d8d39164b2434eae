//! Outbound HTTP for plugins, through admin-configured connections.
//!
//! A plugin names a connection; the host builds the URL from the connection's base,
//! checks scheme, host and port against it, refuses loopback, private and link-local
//! addresses (by literal and after DNS resolution) unless the connection allows them,
//! follows redirects only within the connection's origin, and adds the credentials
//! itself (a static header or an OAuth2 client-credentials token it fetches and caches),
//! so the plugin never sees a secret.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use switchboard_sdk::HttpRequest as Request;

/// How the host authenticates a connection's requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
    /// Any header, e.g. an API key.
    Header {
        /// Header name.
        name: String,
        /// Header value.
        value: String,
    },
    /// OAuth2 client credentials (e.g. Microsoft Graph); the token is cached until shortly before it expires.
    Oauth2 {
        /// Token endpoint.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: String,
        /// Scope, e.g. `https://graph.microsoft.com/.default`.
        #[serde(default)]
        scope: String,
    },
}

/// A named outbound HTTP connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Scheme, host and port (and optional path prefix) every request must stay on.
    pub base_url: String,
    /// Allow loopback and private (RFC 1918, ULA) addresses; needed for on-prem servers and tests.
    #[serde(default)]
    pub allow_private: bool,
    /// Allow link-local addresses (169.254.0.0/16, including cloud metadata). Rarely right.
    #[serde(default)]
    pub allow_link_local: bool,
    /// Credentials the host adds.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Per-request timeout in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    10_000
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Denied {
    /// The connection is not granted to the plugin or does not exist.
    #[error("connection `{0}` is not granted to this plugin")]
    NotGranted(String),
    /// The URL leaves the connection's origin.
    #[error("{0} is off the allow-list of connection `{1}`")]
    OffList(String, String),
    /// The address is loopback/private/link-local and the connection does not allow it.
    #[error("{0} resolves to {1}, a {2} address, which connection `{3}` does not allow")]
    Address(String, IpAddr, &'static str, String),
    /// A header the host owns.
    #[error("header `{0}` is set by the host")]
    Header(String),
    /// Unsupported method or malformed URL.
    #[error("{0}")]
    Bad(String),
}

/// Maximum response body kept.
pub const MAX_RESPONSE: usize = 1 << 20;

/// Classifies an address: `None` if public.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() || v4.is_unspecified() {
                Some("loopback")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_private() || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 || v4.is_broadcast() {
                Some("private")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return restricted(IpAddr::V4(v4));
            }
            let seg = v6.segments()[0];
            if v6.is_loopback() || v6.is_unspecified() {
                Some("loopback")
            } else if seg & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg & 0xfe00 == 0xfc00 {
                Some("private")
            } else {
                None
            }
        }
    }
}

fn origin(u: &reqwest::Url) -> (String, String, Option<u16>) {
    (u.scheme().to_string(), u.host_str().unwrap_or("").to_ascii_lowercase(), u.port_or_known_default())
}

/// Whether `url` is on `base`'s origin and under its path by whole segments (base
/// `/api` covers `/api` and `/api/x`, not `/api-admin`). URLs are parsed, so `..` and
/// its percent-encoded forms are resolved before the check.
pub fn within(base: &reqwest::Url, url: &reqwest::Url) -> bool {
    let prefix = base.path().trim_end_matches('/');
    let path = url.path();
    origin(url) == origin(base)
        && (prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')))
}

/// Outbound HTTP with the checks above.
pub struct Net {
    connections: BTreeMap<String, Connection>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Net {
    /// Over the configured connections.
    pub fn new(connections: BTreeMap<String, Connection>) -> Self {
        Self { connections, tokens: Mutex::new(HashMap::new()) }
    }

    /// Whether a connection exists.
    pub fn has(&self, name: &str) -> bool {
        self.connections.contains_key(name)
    }

    async fn check_host(&self, name: &str, conn: &Connection, url: &reqwest::Url) -> Result<(), Denied> {
        let host = url.host_str().ok_or_else(|| Denied::Bad("URL has no host".into()))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<IpAddr> = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| Denied::Bad(format!("cannot resolve {host}: {e}")))?
                .map(|a| a.ip())
                .collect(),
        };
        for ip in addrs {
            if let Some(kind) = restricted(ip) {
                let allowed = match kind {
                    "link-local" => conn.allow_link_local,
                    _ => conn.allow_private,
                };
                if !allowed {
                    return Err(Denied::Address(host.to_string(), ip, kind, name.to_string()));
                }
            }
        }
        Ok(())
    }

    /// The URL a request goes to, if it stays on the connection.
    pub fn resolve_url(&self, name: &str, conn: &Connection, path: &str) -> Result<reqwest::Url, Denied> {
        let base = reqwest::Url::parse(&conn.base_url)
            .map_err(|e| Denied::Bad(format!("connection `{name}` base_url: {e}")))?;
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            reqwest::Url::parse(path).map_err(|e| Denied::Bad(format!("bad URL {path}: {e}")))?
        } else if path.starts_with('/') {
            let joined = format!("{}{}", conn.base_url.trim_end_matches('/'), path);
            reqwest::Url::parse(&joined).map_err(|e| Denied::Bad(format!("bad path {path}: {e}")))?
        } else {
            return Err(Denied::Bad(format!("path `{path}` must start with `/`")));
        };
        if !within(&base, &url) {
            return Err(Denied::OffList(url.to_string(), name.to_string()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Denied::Bad("credentials in URLs are refused; the host adds them".into()));
        }
        Ok(url)
    }

    async fn token(
        &self,
        name: &str,
        conn: &Connection,
        client: &reqwest::Client,
    ) -> Result<Option<(String, String)>, String> {
        match &conn.auth {
            None => Ok(None),
            Some(Auth::Bearer { token }) => Ok(Some(("authorization".into(), format!("Bearer {token}")))),
            Some(Auth::Header { name, value }) => Ok(Some((name.to_ascii_lowercase(), value.clone()))),
            Some(Auth::Oauth2 { token_url, client_id, client_secret, scope }) => {
                if let Some((tok, until)) = self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
                    if Instant::now() < *until {
                        return Ok(Some(("authorization".into(), format!("Bearer {tok}"))));
                    }
                }
                let form = [
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.as_str()),
                    ("scope", scope.as_str()),
                    ("grant_type", "client_credentials"),
                ];
                let body = serde_urlencoded(&form);
                let resp = client
                    .post(token_url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("token endpoint: {e}"))?;
                let status = resp.status();
                let v: Value = resp.json().await.map_err(|e| format!("token endpoint reply: {e}"))?;
                let Some(tok) = v["access_token"].as_str().filter(|_| status.is_success()) else {
                    return Err(format!("token endpoint answered {status}"));
                };
                let ttl = v["expires_in"].as_u64().unwrap_or(3600).saturating_sub(60).max(1);
                self.tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name.to_string(), (tok.to_string(), Instant::now() + Duration::from_secs(ttl)));
                Ok(Some(("authorization".into(), format!("Bearer {tok}"))))
            }
        }
    }

    /// Sends a plugin's request; `granted` are the connections the admin granted it.
    /// Returns the SDK's `{"ok": HttpResponse}` or `{"error": ...}`.
    pub async fn send(&self, granted: &[String], req: Request) -> Value {
        match self.try_send(granted, req).await {
            Ok(v) => json!({ "ok": v }),
            Err((code, message, retryable)) => {
                json!({"error": {"code": code, "message": message, "retryable": retryable}})
            }
        }
    }

    async fn try_send(&self, granted: &[String], req: Request) -> Result<Value, (&'static str, String, bool)> {
        let denied = |d: Denied| ("denied", d.to_string(), false);
        let name = req.connection.clone();
        if !granted.contains(&name) {
            return Err(denied(Denied::NotGranted(name)));
        }
        let conn = self.connections.get(&name).ok_or_else(|| denied(Denied::NotGranted(name.clone())))?;
        let method = match req.method.to_ascii_uppercase().as_str() {
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => {
                reqwest::Method::from_bytes(m.as_bytes()).map_err(|e| ("bad_request", e.to_string(), false))?
            }
            other => return Err(denied(Denied::Bad(format!("method `{other}` is not allowed")))),
        };
        let url = self.resolve_url(&name, conn, &req.path).map_err(denied)?;
        self.check_host(&name, conn, &url).await.map_err(denied)?;
        for h in req.headers.keys() {
            let h = h.to_ascii_lowercase();
            if matches!(h.as_str(), "authorization" | "host" | "cookie" | "proxy-authorization") {
                return Err(denied(Denied::Header(h)));
            }
        }
        // Redirects are followed only within the connection's origin and path prefix,
        // every hop checked, so the credentials never leave it.
        let base = reqwest::Url::parse(&conn.base_url).map_err(|e| ("bad_connection", e.to_string(), false))?;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if !within(&base, attempt.url()) {
                let to = attempt.url().to_string();
                attempt.error(format!("redirect to {to} is off the allow-list"))
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .timeout(Duration::from_millis(conn.timeout_ms))
            .build()
            .map_err(|e| ("internal", e.to_string(), false))?;
        let mut builder = client.request(method, url.clone());
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        if let Some((k, v)) = self.token(&name, conn, &client).await.map_err(|e| ("auth_failed", e, true))? {
            builder = builder.header(k, v);
        }
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let resp = builder.send().await.map_err(|e| {
            let off_list = e.is_redirect() || e.to_string().contains("allow-list");
            if off_list {
                ("denied", format!("{url}: redirect refused: {}", error_chain(&e)), false)
            } else {
                ("unavailable", format!("{url}: {}", error_chain(&e)), e.is_timeout() || e.is_connect())
            }
        })?;
        let status = resp.status().as_u16();
        let headers: BTreeMap<String, String> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect();
        // Read at most MAX_RESPONSE bytes, whatever the sender says or sends.
        let too_large =
            |n: String| ("response_too_large", format!("response of {n} bytes exceeds {MAX_RESPONSE}"), false);
        if let Some(len) = resp.content_length().filter(|l| *l > MAX_RESPONSE as u64) {
            return Err(too_large(len.to_string()));
        }
        let mut resp = resp;
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| ("unavailable", e.to_string(), true))? {
            if bytes.len() + chunk.len() > MAX_RESPONSE {
                return Err(too_large(format!("more than {}", bytes.len() + chunk.len())));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(json!({"status": status, "headers": headers, "body": body}))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

fn serde_urlencoded(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for form values and
/// single URL path segments).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(base: &str) -> Connection {
        Connection {
            base_url: base.into(),
            allow_private: false,
            allow_link_local: false,
            auth: None,
            timeout_ms: 1000,
        }
    }

    #[test]
    fn urls_must_stay_on_the_connection_origin() {
        let net = Net::new(BTreeMap::new());
        let c = conn("https://graph.example.com/v1.0");
        // Paths are relative to the base URL, its path included (the SDK's example).
        assert_eq!(net.resolve_url("g", &c, "/users/42").unwrap().as_str(), "https://graph.example.com/v1.0/users/42");
        assert!(net.resolve_url("g", &c, "https://graph.example.com/v1.0/users?$top=5").is_ok());
        // Regression: a `starts_with("/api")` check let `/api-admin` through.
        let api = conn("https://h.example.com/api");
        for bad in [
            "https://h.example.com/api-admin/x",
            "https://h.example.com/api/../secret",
            "https://h.example.com/api/%2e%2e/secret",
        ] {
            assert!(net.resolve_url("a", &api, bad).is_err(), "{bad} should be refused");
        }
        assert!(net.resolve_url("a", &api, "https://h.example.com/api").is_ok());
        for bad in [
            "https://evil.example.com/v1.0",
            "http://graph.example.com/v1.0/x",
            "https://graph.example.com:8443/v1.0/x",
            "https://graph.example.com/beta/x",
            "users",
            "https://u:p@graph.example.com/v1.0",
        ] {
            assert!(net.resolve_url("g", &c, bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn restricted_addresses() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("192.168.0.1", "private"),
            ("169.254.169.254", "link-local"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("100.64.0.1", "private"),
        ] {
            assert_eq!(restricted(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        assert_eq!(restricted("93.184.216.34".parse().unwrap()), None);
    }
}
