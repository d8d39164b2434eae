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

/// Checks a signature header `t=<unix>,v1=<hex>[,v1=<hex>...]` (constant-time
/// comparison of the MAC). The MAC is over the `t` value exactly as sent (`0<unix>` is
/// signed as `0<unix>`), which must be decimal digits; any `v1` may match (a sender
/// rotating its secret sends one per secret). Returns the timestamp.
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> Option<i64> {
    let mut t = None;
    let mut macs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = Some(x),
            Some(("v1", x)) => macs.extend(hex::decode(x).ok()),
            _ => {}
        }
    }
    let t = t.filter(|x| !x.is_empty() && x.len() <= 20 && x.bytes().all(|b| b.is_ascii_digit()))?;
    let timestamp = t.parse::<i64>().ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    macs.iter().any(|v1| mac.clone().verify_slice(v1).is_ok()).then_some(timestamp)
}

/// An outbound webhook that ran out of attempts, kept to be listed and re-sent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// `<run>-<step>`.
    pub id: String,
    /// Where it was going.
    pub url: String,
    /// The name of the signing secret.
    pub secret: String,
    /// The delivery id (the same on re-send, so receivers can drop duplicates).
    pub delivery: String,
    /// The body.
    pub body: serde_json::Value,
    /// The run and step that sent it.
    pub run: String,
    /// The step.
    pub step: String,
    /// The ticket.
    pub ticket: String,
    /// When it was given up.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The attempts made.
    pub attempts: Vec<Attempt>,
    /// The last error.
    pub error: String,
    /// Set once a re-send was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resent: Option<chrono::DateTime<chrono::Utc>>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    /// When it was sent.
    pub at: chrono::DateTime<chrono::Utc>,
    /// HTTP status (0 when no response).
    pub status: u16,
    /// What went wrong, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the sender waited before the next attempt (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then_waited_ms: Option<u64>,
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
    /// Every attempt, in order.
    pub log: Vec<Attempt>,
}

/// Sends signed webhooks.
#[derive(Clone)]
pub struct Notifier {
    client: reqwest::Client,
    attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl Notifier {
    /// A notifier with a per-attempt timeout and an attempt budget.
    pub fn new(timeout: Duration, attempts: u32) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("TLS backend initialises");
        Self {
            client,
            attempts: attempts.max(1),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }

    /// Sets the first retry delay and the cap on any delay (also on `Retry-After`).
    pub fn with_delays(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max.max(base);
        self
    }

    /// The wait before retry `attempt` (1-based): exponential from the base delay with
    /// "full jitter" (a random point in [delay/2, delay]), or the receiver's
    /// `Retry-After`, both capped.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max_delay);
        }
        let exp = self.base_delay.saturating_mul(1u32 << (attempt - 1).min(16)).min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// POSTs `body`, retrying on connection errors, timeouts, 429 and 5xx.
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
        let mut last = Delivery { status: 0, attempts: 0, ok: false, error: None, log: Vec::new() };
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
            let mut retry_after = None;
            let retry = match sent {
                Ok(resp) => {
                    last.status = resp.status().as_u16();
                    last.ok = resp.status().is_success();
                    last.error = (!last.ok).then(|| format!("receiver answered {}", last.status));
                    retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    resp.status().is_server_error() || last.status == 429
                }
                Err(e) => {
                    last.status = 0;
                    last.error = Some(if e.is_timeout() { "timed out".to_string() } else { e.to_string() });
                    true
                }
            };
            last.log.push(Attempt {
                at: chrono::Utc::now(),
                status: last.status,
                error: last.error.clone(),
                then_waited_ms: None,
            });
            if last.ok || !retry || attempt == self.attempts {
                return last;
            }
            let wait = self.delay(attempt, retry_after);
            if let Some(entry) = last.log.last_mut() {
                entry.then_waited_ms = Some(wait.as_millis() as u64);
            }
            tokio::time::sleep(wait).await;
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

    /// Regression: the MAC was checked over the re-printed integer, so a sender that
    /// signed `0<unix>.<body>` (the `t` it sent) was refused.
    #[test]
    fn the_mac_covers_the_timestamp_exactly_as_sent() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"01700000000.{}");
        let header = format!("t=01700000000,v1={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(verify(b"k", &header, b"{}"), Some(1700000000));
        // Signed over the re-printed integer instead: not what was sent, refused.
        let reprinted = sign(b"k", 1700000000, b"{}").replace("t=", "t=0");
        assert_eq!(verify(b"k", &reprinted, b"{}"), None);
        // Not digits: refused rather than guessed.
        assert_eq!(verify(b"k", &sign(b"k", 1, b"{}").replace("t=1", "t=+1"), b"{}"), None);
        // Secret rotation: any v1 may match.
        let rotated = sign(b"k", 5, b"{}").replace("v1=", &format!("v1={},v1=", "00".repeat(32)));
        assert_eq!(verify(b"k", &rotated, b"{}"), Some(5));
    }

    #[test]
    fn delays_grow_with_jitter_and_honour_retry_after_up_to_the_cap() {
        let n =
            Notifier::new(Duration::from_secs(1), 5).with_delays(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 1..=4u32 {
            let full = Duration::from_millis(100 * (1 << (attempt - 1)));
            let d = n.delay(attempt, None);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(n.delay(12, None) <= Duration::from_secs(2), "capped");
        assert_eq!(n.delay(1, Some(Duration::from_secs(1))), Duration::from_secs(1), "Retry-After wins");
        assert_eq!(n.delay(1, Some(Duration::from_secs(600))), Duration::from_secs(2), "but is capped");
    }
}
