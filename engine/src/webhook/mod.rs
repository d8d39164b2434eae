//! Inbound webhooks: endpoints other systems call to create or update tickets or to
//! start a workflow, with a mapping from their payload.
//!
//! Every request to `POST /hooks/{id}` is checked in this order, each failure with its
//! own status: the body size (413), the signature — `X-Switchboard-Signature:
//! t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the same scheme as outbound webhooks —
//! and its timestamp within the replay window (401, logged without the body), the
//! endpoint's rate limit (429 with `Retry-After`), the JSON (400), and the mapped fields
//! (422, naming the mapping entry). A delivery id (`Idempotency-Key`,
//! `X-Switchboard-Delivery`, or the mapping's `delivery_id` pointer) seen before returns
//! the first answer and does nothing again: the delivery record is committed in the same
//! transaction as the ticket it created.
//!
//! The mapping language is small on purpose: a JSON pointer into the payload (with a
//! default), a template with `{{/json/pointer}}` placeholders, or a constant.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// What a delivery does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Log a ticket from `mapping.fields`.
    CreateTicket,
    /// Update the ticket `mapping.ticket` (a ticket id), or the one whose `external_id` is
    /// `mapping.external_id`, with `mapping.fields`.
    UpdateTicket {
        /// Log a ticket instead when none has that external id.
        #[serde(default)]
        create_if_missing: bool,
    },
    /// Start a workflow (it needs a `manual` trigger) on the ticket `mapping.ticket`
    /// (a ticket id or an external id) with `mapping.input` as `vars.input`.
    StartWorkflow {
        /// The workflow id.
        workflow: String,
    },
}

/// One value taken from the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Source {
    /// The value at a JSON pointer, or `default` when absent or null.
    Pointer {
        /// RFC 6901 pointer, e.g. `/alert/labels/severity`.
        pointer: String,
        /// Used when the pointer finds nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<Value>,
        /// Translate the value found (e.g. severity `critical` -> impact `high`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        map: BTreeMap<String, Value>,
    },
    /// A string with `{{/pointer}}` placeholders.
    Template {
        /// E.g. `"{{/alert/name}} on {{/host}}"`.
        template: String,
    },
    /// A constant.
    Value {
        /// The value.
        value: Value,
    },
}

/// From payload to ticket fields / workflow input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Ticket fields (`title`, `requester`, `category`, `custom.x`...).
    #[serde(default)]
    pub fields: BTreeMap<String, Source>,
    /// The sender's id for the ticket (create: stored; update: used to find the ticket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<Source>,
    /// The ticket a workflow starts on (`start_workflow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Source>,
    /// The workflow's `vars.input` (`start_workflow`).
    #[serde(default)]
    pub input: BTreeMap<String, Source>,
    /// Where the delivery id is in the payload, when the sender sends no header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// JSON pointers into the payload that must hold a value (not absent, null or
    /// empty text); a delivery missing one is refused with 422 naming it, before
    /// anything is created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
}

impl Mapping {
    /// The `required` pointers the payload lacks.
    pub fn missing(&self, payload: &Value) -> Vec<String> {
        self.required
            .iter()
            .filter(|p| match payload.pointer(p) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                Some(_) => false,
            })
            .cloned()
            .collect()
    }
}

/// A token bucket: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { per_second: 100.0, burst: 200 }
    }
}

/// A registered endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// URL segment: `POST /hooks/{id}`.
    pub id: String,
    /// Human name.
    #[serde(default)]
    pub name: String,
    /// HMAC key the sender signs with (at least 16 characters). Never returned by the API.
    #[serde(default)]
    pub secret: String,
    /// What a delivery does.
    pub action: Action,
    /// How the payload maps.
    #[serde(default)]
    pub mapping: Mapping,
    /// Requests per endpoint.
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// Largest body accepted (default 256 KiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How far the signature's timestamp may be from now (default 300 s).
    #[serde(default = "default_tolerance")]
    pub tolerance_seconds: i64,
    /// Disabled endpoints answer 404.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_max_body() -> usize {
    256 << 10
}

fn default_tolerance() -> i64 {
    300
}

fn yes() -> bool {
    true
}

impl Endpoint {
    /// Checks what serde cannot; errors carry a JSON pointer.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        if !crate::team::valid_id(&self.id) {
            errors.push(("/id".into(), "1-64 letters, digits, `.`, `_` or `-`".into()));
        }
        if self.secret.len() < 16 {
            errors.push(("/secret".into(), "at least 16 characters (omit it to have one generated)".into()));
        }
        if self.rate_limit.per_second.is_nan() || self.rate_limit.per_second <= 0.0 || self.rate_limit.burst == 0 {
            errors.push(("/rate_limit".into(), "per_second and burst must be positive".into()));
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > 16 << 20 {
            errors.push(("/max_body_bytes".into(), "between 1 and 16 MiB".into()));
        }
        if !(1..=86_400).contains(&self.tolerance_seconds) {
            errors.push(("/tolerance_seconds".into(), "between 1 and 86400".into()));
        }
        for (name, source) in &self.mapping.fields {
            let known = crate::ticket::fields::WRITABLE.contains(&name.as_str())
                || name.starts_with("custom.")
                || matches!(
                    name.as_str(),
                    "title" | "description" | "requester" | "kind" | "impact" | "urgency" | "channel"
                );
            if !known {
                errors.push((
                    format!("/mapping/fields/{}", crate::ticket::fields::escape(name)),
                    format!("unknown ticket field `{name}`"),
                ));
            }
            check_source(source, &format!("/mapping/fields/{}", crate::ticket::fields::escape(name)), &mut errors);
        }
        match &self.action {
            Action::CreateTicket => {
                for required in ["title", "requester"] {
                    if !self.mapping.fields.contains_key(required) {
                        errors
                            .push((format!("/mapping/fields/{required}"), format!("create_ticket needs `{required}`")));
                    }
                }
            }
            Action::UpdateTicket { .. } if self.mapping.external_id.is_none() && self.mapping.ticket.is_none() => {
                errors.push((
                    "/mapping/external_id".into(),
                    "update_ticket finds the ticket by `external_id` (or `ticket`: a ticket id)".into(),
                ))
            }
            Action::StartWorkflow { .. } if self.mapping.ticket.is_none() => {
                errors.push(("/mapping/ticket".into(), "start_workflow needs the ticket (an id or external id)".into()))
            }
            _ => {}
        }
        for (i, p) in self.mapping.required.iter().enumerate() {
            if !p.starts_with('/') {
                errors.push((format!("/mapping/required/{i}"), "a JSON pointer starting with `/`".into()));
            }
        }
        if let Some(p) = &self.mapping.delivery_id {
            if !p.is_empty() && !p.starts_with('/') {
                errors.push(("/mapping/delivery_id".into(), "a JSON pointer starting with `/`".into()));
            }
        }
        errors
    }

    /// A delivery's id: the header's (`Idempotency-Key` / `X-Switchboard-Delivery`), else
    /// the mapping's `delivery_id` pointer into the payload; none when empty or over 200
    /// bytes.
    pub fn delivery_id(&self, header: Option<String>, payload: &Value) -> Option<String> {
        let id = header.or_else(|| match payload.pointer(self.mapping.delivery_id.as_deref()?)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        id.filter(|d| !d.is_empty() && d.len() <= 200)
    }

    /// The endpoint as shown by the API: the secret redacted.
    pub fn redacted(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        v["secret"] = Value::String("<redacted>".into());
        v
    }
}

fn check_source(s: &Source, pointer: &str, errors: &mut Vec<(String, String)>) {
    if let Source::Pointer { pointer: p, .. } = s {
        if !p.is_empty() && !p.starts_with('/') {
            errors.push((format!("{pointer}/pointer"), "a JSON pointer starts with `/`".into()));
        }
    }
}

/// Reads a source from a payload (null when nothing is there).
pub fn extract(source: &Source, payload: &Value) -> Value {
    match source {
        Source::Value { value } => value.clone(),
        Source::Pointer { pointer, default, map } => {
            let found = payload.pointer(pointer).filter(|v| !v.is_null()).cloned();
            let found = match (found, map.is_empty()) {
                (Some(v), false) => {
                    let key = match &v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    map.get(&key).cloned().or(default.clone())
                }
                (found, _) => found,
            };
            found.or_else(|| default.clone()).unwrap_or(Value::Null)
        }
        Source::Template { template } => {
            let mut out = String::new();
            let mut rest = template.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(end) = rest[start + 2..].find("}}") else { break };
                out.push_str(&rest[..start]);
                let pointer = rest[start + 2..start + 2 + end].trim();
                match payload.pointer(pointer) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Null) | None => {}
                    Some(other) => out.push_str(&other.to_string()),
                }
                rest = &rest[start + 2 + end + 2..];
            }
            out.push_str(rest);
            Value::String(out)
        }
    }
}

/// Applies a field mapping: `{field: value}` with nulls left out.
pub fn map_fields(sources: &BTreeMap<String, Source>, payload: &Value) -> Map<String, Value> {
    sources
        .iter()
        .filter_map(|(k, s)| {
            let v = extract(s, payload);
            (!v.is_null()).then(|| (k.clone(), v))
        })
        .collect()
}

/// Turns a mapped field object (`custom.x` keys flattened) into a `NewTicket` object.
pub fn new_ticket_object(mut fields: Map<String, Value>) -> Value {
    let mut custom = Map::new();
    let keys: Vec<String> = fields.keys().filter(|k| k.starts_with("custom.")).cloned().collect();
    for k in keys {
        if let Some(v) = fields.remove(&k) {
            custom.insert(k["custom.".len()..].to_string(), v);
        }
    }
    if !custom.is_empty() {
        fields.insert("custom".into(), Value::Object(custom));
    }
    Value::Object(fields)
}

/// Token buckets per endpoint.
#[derive(Default)]
pub struct Limiter(Mutex<std::collections::HashMap<String, (f64, Instant)>>);

impl Limiter {
    /// Takes a token, or says how many seconds until one is free.
    pub fn take(&self, endpoint: &str, limit: RateLimit) -> Result<(), u64> {
        let mut buckets = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, at) = buckets.entry(endpoint.to_string()).or_insert((limit.burst as f64, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * limit.per_second).min(limit.burst as f64);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / limit.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sources_read_pointers_templates_constants_and_maps() {
        let payload = json!({"alert": {"name": "DiskFull", "severity": "critical", "host": "db1"}, "n": 3});
        let s: Source = serde_json::from_value(
            json!({"pointer": "/alert/severity", "map": {"critical": "high"}, "default": "low"}),
        )
        .unwrap();
        assert_eq!(extract(&s, &payload), json!("high"));
        let s: Source = serde_json::from_value(json!({"pointer": "/alert/missing", "default": "medium"})).unwrap();
        assert_eq!(extract(&s, &payload), json!("medium"));
        let s: Source =
            serde_json::from_value(json!({"template": "{{/alert/name}} on {{/alert/host}} ({{/n}}x){{/nope}}"}))
                .unwrap();
        assert_eq!(extract(&s, &payload), json!("DiskFull on db1 (3x)"));
        let s: Source = serde_json::from_value(json!({"value": "monitoring"})).unwrap();
        assert_eq!(extract(&s, &payload), json!("monitoring"));
        let obj = new_ticket_object(map_fields(
            &[
                ("title".to_string(), Source::Value { value: json!("t") }),
                ("custom.host".to_string(), Source::Value { value: json!("db1") }),
            ]
            .into_iter()
            .collect(),
            &payload,
        ));
        assert_eq!(obj, json!({"title": "t", "custom": {"host": "db1"}}));
    }

    #[test]
    fn bucket_refuses_past_the_burst_with_a_wait() {
        let l = Limiter::default();
        let limit = RateLimit { per_second: 0.5, burst: 2 };
        assert!(l.take("e", limit).is_ok());
        assert!(l.take("e", limit).is_ok());
        assert_eq!(l.take("e", limit), Err(2));
        assert!(l.take("other", limit).is_ok(), "buckets are per endpoint");
    }
}

/// How many deliveries [`Recent`] keeps per endpoint.
pub const RECENT: usize = 50;

/// One delivery as received: when, how it was answered, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// When it arrived.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The HTTP status answered.
    pub status: u16,
    /// The error's code (`bad_signature`, `invalid`...) or `accepted` / `replayed`.
    pub outcome: String,
    /// The error's message, or the ticket it went to.
    pub detail: String,
    /// The delivery id it carried, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

/// The latest [`RECENT`] deliveries of each endpoint, newest first, in memory since the
/// server started (what an admin checks first when "the webhook did nothing"). Only
/// configured endpoints are recorded, so its size is bounded.
#[derive(Default)]
pub struct Recent(Mutex<std::collections::HashMap<String, std::collections::VecDeque<Received>>>);

impl Recent {
    /// Records a delivery to `endpoint`.
    pub fn record(&self, endpoint: &str, received: Received) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(endpoint.to_string()).or_default();
        list.push_front(received);
        list.truncate(RECENT);
    }

    /// The endpoint's recent deliveries, newest first.
    pub fn of(&self, endpoint: &str) -> Vec<Received> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(endpoint).map(|l| l.iter().cloned().collect()).unwrap_or_default()
    }
}
