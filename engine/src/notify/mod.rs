//! Outbound webhooks: signed JSON POSTs to other systems.
//!
//! Signature: `X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
//! so receivers can check both origin and freshness. `X-Switchboard-Delivery` carries a
//! delivery id that stays the same across retries, so receivers can drop duplicates.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Header with the signature.
pub const SIGNATURE_HEADER: &str = "x-switchboard-signature";
/// Header with the delivery id.
pub const DELIVERY_HEADER: &str = "x-switchboard-delivery";

/// The signature header value for `body` at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header (constant-time comparison of the MAC).
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> Option<i64> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (t, v1) = (t?, v1?);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1).ok().map(|_| t)
}

/// The result of delivering one notification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    /// HTTP status of the last attempt (0 when no response).
    pub status: u16,
    /// Attempts made.
    pub attempts: u32,
    /// Whether the receiver accepted it (2xx).
    pub ok: bool,
    /// The last error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Sends signed webhooks.
#[derive(Clone)]
pub struct Notifier {
    client: reqwest::Client,
    attempts: u32,
}

impl Notifier {
    /// A notifier with a per-attempt timeout and an attempt budget.
    pub fn new(timeout: Duration, attempts: u32) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("TLS backend initialises");
        Self { client, attempts: attempts.max(1) }
    }

    /// POSTs `body`, retrying on connection errors, 429 and 5xx with exponential backoff.
    pub async fn send(
        &self,
        url: &str,
        secret: &[u8],
        delivery_id: &str,
        body: &serde_json::Value,
        now: i64,
    ) -> Delivery {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let signature = sign(secret, now, &bytes);
        let mut last = Delivery { status: 0, attempts: 0, ok: false, error: None };
        for attempt in 1..=self.attempts {
            last.attempts = attempt;
            let sent = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .header(DELIVERY_HEADER, delivery_id)
                .body(bytes.clone())
                .send()
                .await;
            match sent {
                Ok(resp) => {
                    last.status = resp.status().as_u16();
                    last.ok = resp.status().is_success();
                    last.error = None;
                    let retry = resp.status().is_server_error() || resp.status().as_u16() == 429;
                    if last.ok || !retry {
                        if !last.ok {
                            last.error = Some(format!("receiver answered {}", last.status));
                        }
                        return last;
                    }
                    last.error = Some(format!("receiver answered {}", last.status));
                }
                Err(e) => {
                    last.status = 0;
                    last.error = Some(e.to_string());
                }
            }
            if attempt < self.attempts {
                tokio::time::sleep(Duration::from_millis(100u64 << (attempt - 1).min(6))).await;
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_and_rejects_tampering() {
        let header = sign(b"k", 1700000000, b"{\"a\":1}");
        assert_eq!(verify(b"k", &header, b"{\"a\":1}"), Some(1700000000));
        assert_eq!(verify(b"k", &header, b"{\"a\":2}"), None);
        assert_eq!(verify(b"other", &header, b"{\"a\":1}"), None);
        assert_eq!(verify(b"k", "garbage", b""), None);
    }
}
