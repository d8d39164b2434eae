//! `plugin`: calls a WebAssembly plugin's action, outside the ticket lock and without a
//! worker, retrying retryable errors with backoff; the call's key-value writes commit
//! with the step.

use super::{scope, Effect};
use crate::executor::{Engine, Error, Result};
use crate::run::Run;
use crate::ticket::Ticket;
use crate::workflow::template::render_value;
use crate::workflow::Step;
use serde_json::{json, Value};

/// A plugin step's retry policy: `retries` extra attempts, waiting `first_ms`, then
/// twice as long each time, at most `max_ms`.
#[derive(Debug, Clone, Copy)]
pub(in crate::executor) struct Backoff {
    pub(in crate::executor) retries: u32,
    pub(in crate::executor) first_ms: u64,
    pub(in crate::executor) max_ms: u64,
}

impl Backoff {
    /// The wait after the `attempt`-th attempt failed (from 1).
    fn wait_ms(self, attempt: u32) -> u64 {
        self.first_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(30)).min(self.max_ms)
    }
}

impl Engine {
    /// Calls a plugin, retrying retryable errors as `policy` says. The outer error means
    /// the engine is stopping during a wait between attempts: the step is left undone, and
    /// the run resumes at it after the restart (the idempotency key stays the same).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::executor) async fn call_plugin(
        &self,
        run: &Run,
        ticket: &Ticket,
        step: &Step,
        plugin: &str,
        action: &str,
        input: &Value,
        policy: Backoff,
    ) -> Result<std::result::Result<Effect, Effect>> {
        let mut effect = Effect::new(step, self.now());
        let input = render_value(input, &scope(run, ticket, self.now()), &run.id, &run.workflow_id);
        let ticket_json = serde_json::to_value(ticket).unwrap_or(Value::Null);
        let mut attempts = 0;
        let mut waits_ms: Vec<u64> = Vec::new();
        loop {
            attempts += 1;
            let ctx = crate::plugin::CallContext {
                ticket: ticket_json.clone(),
                idempotency_key: Some(format!("{}/{}/{}", run.id, step.id, run.steps_done)),
            };
            let timing = std::time::Instant::now();
            let result = self.plugins.call(plugin, action, input.clone(), ctx).await;
            let code = result.as_ref().err().map(|e| e.code.clone());
            self.metrics.plugin_call(plugin, timing.elapsed().as_secs_f64(), code.as_deref());
            match result {
                Ok(out) => {
                    effect.entry.message = format!("{plugin}.{action} answered in {} µs", out.micros);
                    effect.entry.detail = json!({"plugin": plugin, "version": out.version, "action": action,
                        "attempts": attempts, "waits_ms": waits_ms, "micros": out.micros, "logs": out.logs});
                    effect.output = Some(out.output);
                    // The call's key-value writes commit with the step, or not at all.
                    effect.writes.extend(out.writes);
                    return Ok(Ok(effect));
                }
                Err(e) if e.retryable && attempts <= policy.retries => {
                    // Exponential backoff, or longer if the plugin passed on a Retry-After.
                    let backoff = policy.wait_ms(attempts);
                    let cap = self.config.plugins.max_retry_after_ms.max(policy.max_ms);
                    let wait = e.retry_after_ms.map_or(backoff, |asked| asked.min(cap).max(backoff));
                    tracing::info!(run = %run.id, plugin, action, code = %e.code, attempts, wait_ms = wait, "retryable plugin error; retrying");
                    waits_ms.push(wait);
                    if !self.pause(std::time::Duration::from_millis(wait)).await {
                        return Err(Error::Conflict("the engine is stopping".into()));
                    }
                }
                Err(e) => {
                    let detail = json!({"plugin": plugin, "action": action, "attempts": attempts, "waits_ms": waits_ms,
                        "code": e.code, "retryable": e.retryable, "logs": e.logs});
                    let mut failed = effect.fail(format!("{plugin}.{action}: {}: {}", e.code, e.message));
                    failed.entry.detail = detail;
                    failed.output =
                        Some(json!({"error": {"code": e.code, "message": e.message, "retryable": e.retryable}}));
                    return Ok(Err(failed));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_can_ride_out_minutes() {
        let dc_reboot = Backoff { retries: 6, first_ms: 5000, max_ms: 60_000 };
        let waits: Vec<u64> = (1..=6).map(|a| dc_reboot.wait_ms(a)).collect();
        assert_eq!(waits, [5000, 10_000, 20_000, 40_000, 60_000, 60_000]);
        assert!(waits.iter().sum::<u64>() > 120_000, "longer than a two-minute reboot");
        let default = Backoff { retries: 2, first_ms: 200, max_ms: 6400 };
        assert_eq!((default.wait_ms(1), default.wait_ms(2), default.wait_ms(40)), (200, 400, 6400));
    }
}
