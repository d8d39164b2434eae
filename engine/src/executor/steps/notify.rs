//! `notify`: a signed outbound webhook, called before the ticket lock is taken; after
//! its retries, a dead letter to resend.

use super::{scope, Effect};
use crate::executor::Engine;
use crate::run::Run;
use crate::ticket::Ticket;
use crate::workflow::template::render_value;
use crate::workflow::Step;
use serde_json::{json, Value};

impl Engine {
    /// Sends the step's webhook; `Err` carries the failed effect (with its dead letter).
    pub(in crate::executor) async fn notify(
        &self,
        run: &Run,
        ticket: &Ticket,
        step: &Step,
        url: &str,
        secret: Option<&str>,
        payload: Option<&Value>,
    ) -> std::result::Result<Effect, Effect> {
        let effect = Effect::new(step, self.now());
        let name = secret.unwrap_or("default");
        let Some(key) = self.config.secrets.get(name) else {
            return Err(effect.fail(format!("signing secret `{name}` is not configured (config `secrets.{name}`)")));
        };
        let scope = scope(run, ticket, self.now());
        let body = match payload {
            Some(p) => render_value(p, &scope, &run.id, &run.workflow_id),
            None => json!({"event": run.event_type, "run": run.id, "workflow": run.workflow_id, "ticket": ticket}),
        };
        let delivery_id = format!("{}/{}", run.id, step.id);
        let delivery = self.notifier.send(url, key.as_bytes(), &delivery_id, &body, self.now().timestamp()).await;
        let mut effect = effect;
        let detail = json!({"url": url, "delivery": delivery_id, "status": delivery.status,
            "attempts": delivery.attempts, "log": delivery.log});
        effect.entry.detail = detail.clone();
        effect.output = Some(json!({"status": delivery.status, "delivery": delivery_id}));
        self.metrics.outbound("notify", if delivery.ok { "delivered" } else { "dead_lettered" });
        if delivery.ok {
            effect.entry.message = format!("delivered to {url} ({}, attempt {})", delivery.status, delivery.attempts);
            Ok(effect)
        } else {
            let err = delivery.error.clone().unwrap_or_else(|| "not delivered".into());
            let letter = crate::notify::DeadLetter {
                id: delivery_id.replace('/', "-"),
                url: url.to_string(),
                secret: name.to_string(),
                delivery: delivery_id.clone(),
                body,
                run: run.id.clone(),
                step: step.id.clone(),
                ticket: run.ticket_id.clone(),
                at: self.now(),
                attempts: delivery.log,
                error: err.clone(),
                resent: None,
            };
            let mut failed = effect.fail(format!(
                "webhook to {url} failed after {} attempt(s): {err}; dead-lettered as {}",
                delivery.attempts, letter.id
            ));
            failed.entry.detail = detail;
            failed.writes.push(crate::store::Write::Doc {
                kind: crate::store::DocKind::DeadLetter,
                id: letter.id.clone(),
                value: serde_json::to_vec(&letter).ok(),
            });
            Err(failed)
        }
    }
}
