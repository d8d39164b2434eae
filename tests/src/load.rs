//! Open-loop load generation, shared by `loadgen` and `bench`.
//!
//! Request *i* is due at `start + i / rate` and its latency is measured from that due
//! time, not from when a connection became free, so a stalled server shows its stall in
//! the tail instead of silently lowering the offered rate (no coordinated omission).

use crate::Api;
use serde::Serialize;
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one rate step measured.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Label (durability mode, variant...).
    pub mode: String,
    /// Offered rate per second.
    pub target_rate: u64,
    /// Requests scheduled.
    pub sent: u64,
    /// Requests that got the expected answer.
    pub ok: u64,
    /// The others.
    pub errors: u64,
    /// `ok` per second of wall time.
    pub achieved_rate: f64,
    /// Latency percentiles from the due time, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Flushes per second, when the server reports them.
    pub flushes_per_s: Option<f64>,
}

/// The `p` quantile of microsecond samples, in milliseconds.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

type Job = (u64, Instant);

/// Sends `rate * seconds` requests on the open-loop schedule over `connections`
/// concurrent senders; `send(i)` performs request `i` and says whether it succeeded.
pub async fn open_loop<F, Fut>(label: &str, rate: u64, seconds: u64, connections: usize, send: F) -> Row
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let total = rate * seconds;
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let send = Arc::new(send);
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (rx, errors, send) = (rx.clone(), errors.clone(), send.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let job = rx.lock().await.recv().await;
                let Some((i, due)) = job else { break };
                if send(i).await {
                    lat.push(Instant::now().duration_since(due).as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    for i in 0..total {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate.max(1));
        tokio::time::sleep_until(due.into()).await;
        if tx.send((i, due)).is_err() {
            break;
        }
    }
    drop(tx);
    let mut lat = Vec::with_capacity(total as usize);
    for w in workers {
        lat.extend(w.await.unwrap_or_default());
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    Row {
        mode: label.to_string(),
        target_rate: rate,
        sent: total,
        ok: lat.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        achieved_rate: lat.len() as f64 / elapsed,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        flushes_per_s: None,
    }
}

/// The signing secret of the benchmark's webhook endpoint.
pub const HOOK_SECRET: &str = "bench-webhook-secret-0123456789";

/// A signed inbound webhook with a unique delivery id (`POST {base}/hooks/bench`); true on 202.
pub async fn send_webhook(http: &reqwest::Client, base: &str, i: u64) -> bool {
    let payload = json!({"event_id": format!("evt-{i}"), "summary": format!("bench {i}"), "user": "bench"});
    let resp = crate::post_hook(http, base, "bench", HOOK_SECRET, &payload, Some(&format!("evt-{i}"))).await;
    matches!(resp, Ok(r) if r.status().as_u16() == 202)
}

/// Registers the benchmark's webhook endpoint (no rate limit) and a workflow each of
/// its tickets starts (a run that parks in a `wait`).
pub async fn setup_webhook(api: &Api) -> anyhow::Result<()> {
    api.post(
        "/webhooks",
        &json!({"id": "bench", "secret": HOOK_SECRET, "action": {"type": "create_ticket"},
            "rate_limit": {"per_second": 1e9, "burst": 1_000_000_000u64},
            "mapping": {"fields": {"title": {"pointer": "/summary"}, "requester": {"pointer": "/user"},
                "category": {"value": "monitoring"}}}}),
    )
    .await?;
    api.post(
        "/workflows",
        &json!({"id": "bench-run", "name": "bench", "triggers": [{"on": "ticket.created"}],
            "conditions": {"field": "ticket.category", "op": "eq", "value": "monitoring"},
            "steps": [{"id": "hold", "type": "wait", "minutes": 60}]}),
    )
    .await?;
    Ok(())
}
