//! Generated passwords and the secure channel they travel on.
//!
//! A password is generated inside the plugin from the host's random source, written to
//! the directory, and handed to one place only: the HTTP connection the admin named in
//! the plugin config `password_channel` (a vault, an SMS gateway, the manager's secure
//! mailbox...). It never goes into the action's output, a log line or the ticket, so it
//! never reaches traces, run variables or comments.

use serde::Serialize;
use switchboard_sdk::host;
use switchboard_sdk::{Error, HttpRequest, Value};

/// Characters a generated password is drawn from: no look-alikes (0/O, 1/l/I).
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGIT: &[u8] = b"23456789";
const SYMBOL: &[u8] = b"!#%+-=?@_";

/// A random password of `len` (at least 12) characters with every class present, which
/// meets AD's complexity rule (3 of 4 classes) and Entra's (3 of 4, 8-256 characters).
pub fn generate(len: usize) -> Result<String, Error> {
    let len = len.clamp(12, 128);
    let random = host::random_bytes(len * 2)?;
    let classes = [UPPER, LOWER, DIGIT, SYMBOL];
    let mut out: Vec<u8> = Vec::with_capacity(len);
    for i in 0..len {
        // The first four positions take one of each class; the rest draw from all.
        let class = if i < classes.len() { classes[i] } else { classes[random[i] as usize % classes.len()] };
        out.push(class[random[len + i] as usize % class.len()]);
    }
    // Move the guaranteed characters away from the front (Fisher-Yates on the same bytes).
    for i in (1..len).rev() {
        let j = (random[i] as usize) % (i + 1);
        out.swap(i, j);
    }
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// What the secure channel receives.
#[derive(Debug, Serialize)]
struct Delivery<'a> {
    user: &'a str,
    target: &'a str,
    password: &'a str,
    force_change: bool,
    recipient: &'a str,
    ticket: Value,
}

/// The configured channel, or an error before anything is changed.
pub fn channel() -> Result<(String, String), Error> {
    match host::config("password_channel")? {
        Some(c) if !c.is_empty() => {
            let path = host::config("password_channel_path")?.unwrap_or_else(|| "/".to_string());
            Ok((c, path))
        }
        _ => Err(Error::new(
            "no_secure_channel",
            "no secure channel for passwords: set plugin config `password_channel` to an HTTP connection",
        )),
    }
}

/// Posts the password to the channel. The response body is not kept.
pub fn deliver(
    channel: &(String, String),
    user: &str,
    target: &str,
    password: &str,
    force_change: bool,
    recipient: &str,
) -> Result<(), Error> {
    let ticket = host::ticket().ok().and_then(|t| t.get("id").cloned()).unwrap_or(Value::Null);
    let body = Delivery { user, target, password, force_change, recipient, ticket };
    let body = serde_json::to_value(&body).map_err(|e| Error::new("bad_request", e.to_string()))?;
    let mut headers = std::collections::BTreeMap::new();
    headers.insert("content-type".to_string(), "application/json".to_string());
    let resp = host::http(&HttpRequest {
        connection: channel.0.clone(),
        method: "POST".into(),
        path: channel.1.clone(),
        headers,
        body: Some(body),
    })?;
    match resp.status {
        200..=299 => Ok(()),
        s => Err(Error::retryable(
            "delivery_failed",
            format!(
                "the password was changed but the secure channel `{}` answered {}; retrying sets a new one",
                channel.0, s
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_every_class_and_differ() {
        for _ in 0..50 {
            let p = generate(16).unwrap();
            assert_eq!(p.len(), 16);
            assert!(p.bytes().any(|b| UPPER.contains(&b)), "{}", p);
            assert!(p.bytes().any(|b| LOWER.contains(&b)), "{}", p);
            assert!(p.bytes().any(|b| DIGIT.contains(&b)), "{}", p);
            assert!(p.bytes().any(|b| SYMBOL.contains(&b)), "{}", p);
        }
        assert_ne!(generate(16).unwrap(), generate(16).unwrap());
        assert_eq!(generate(3).unwrap().len(), 12);
    }
}
