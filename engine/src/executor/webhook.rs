//! Inbound webhook deliveries: mapping a payload into a ticket change or a workflow
//! start, once per delivery id.

use super::{invalid, Engine, Error, Outcome, Result};
use crate::store::{get_doc, DocKind, TicketFilter, Write};
use crate::ticket::NewTicket;
use crate::webhook::{self, Action, Endpoint};
use serde_json::{json, Value};
use std::sync::Arc;

/// The first answer to a delivery, kept for idempotency.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeliveryRecord {
    /// `<endpoint>/<delivery id>`.
    pub id: String,
    /// When it was first processed.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The answer given then.
    pub response: Value,
}

impl Engine {
    /// Stores an endpoint (admin). A missing secret is generated and returned once.
    pub async fn put_endpoint(&self, mut endpoint: Endpoint, actor: &str) -> Result<(Endpoint, bool)> {
        let generated = endpoint.secret.is_empty();
        if generated {
            let mut bytes = [0u8; 24];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            endpoint.secret = hex::encode(bytes);
        }
        let errors = endpoint.check();
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        if let Action::StartWorkflow { workflow } = &endpoint.action {
            if self.store.workflow(workflow).await?.is_none() {
                return Err(invalid("/action/workflow", format!("unknown workflow `{workflow}`")));
            }
        }
        let mut stored = endpoint.clone();
        if let Some(b) = &self.secret_box {
            stored.secret = b.seal(&endpoint.secret);
        }
        let mut tx = crate::store::Tx::new();
        tx.doc(DocKind::Webhook, &endpoint.id, &stored).push(Write::Audit(crate::run::AuditEntry {
            at: self.now(),
            actor: actor.into(),
            action: "webhook.put".into(),
            target: endpoint.id.clone(),
            detail: Value::Null,
        }));
        self.store.commit(tx).await?;
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).remove(&endpoint.id);
        Ok((endpoint, generated))
    }

    /// An endpoint (cached; replaced on every `put_endpoint`).
    pub async fn endpoint(&self, id: &str) -> Result<Option<Arc<Endpoint>>> {
        if let Some(e) = self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(Some(e.clone()));
        }
        let Some(mut e) = get_doc::<Endpoint>(&*self.store, DocKind::Webhook, id).await? else { return Ok(None) };
        if crate::secret::is_sealed(&e.secret) {
            let opened = match &self.secret_box {
                Some(b) => b.open(&e.secret),
                None => Err("it is sealed and no secrets_key is configured".into()),
            };
            e.secret = opened
                .map_err(|why| Error::Conflict(format!("webhook `{id}`'s signing secret cannot be read: {why}")))?;
        }
        let e = Arc::new(e);
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), e.clone());
        Ok(Some(e))
    }

    /// Seals, under `secrets_key`, the signing secrets stored in clear before a key was
    /// configured (at start). Returns how many were sealed.
    pub async fn seal_stored_secrets(&self) -> Result<usize> {
        let Some(b) = &self.secret_box else {
            let clear = self.endpoints().await?.iter().filter(|e| !crate::secret::is_sealed(&e.secret)).count();
            if clear > 0 {
                tracing::warn!(
                    endpoints = clear,
                    "webhook signing secrets are stored in clear; set secrets_key to seal them"
                );
            }
            return Ok(0);
        };
        let mut tx = crate::store::Tx::new();
        let mut n = 0;
        for mut e in self.endpoints().await? {
            if !crate::secret::is_sealed(&e.secret) {
                e.secret = b.seal(&e.secret);
                tx.doc(DocKind::Webhook, &e.id.clone(), &e);
                n += 1;
            }
        }
        if n > 0 {
            self.store.commit(tx).await?;
            self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).clear();
            tracing::info!(endpoints = n, "sealed webhook signing secrets under secrets_key");
        }
        Ok(n)
    }

    /// All endpoints.
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        Ok(crate::store::list_docs(&*self.store, DocKind::Webhook, None, 10_000).await?)
    }

    /// Takes a token from the endpoint's bucket, or the seconds to wait.
    pub fn rate_limit(&self, endpoint: &Endpoint) -> std::result::Result<(), u64> {
        self.limiter.take(&endpoint.id, endpoint.rate_limit)
    }

    /// Processes a verified delivery. Returns the answer and whether it is a replay of
    /// an earlier delivery with the same id.
    pub async fn deliver(
        self: &Arc<Self>,
        endpoint: &Endpoint,
        payload: &Value,
        delivery: Option<String>,
    ) -> Result<(Value, bool)> {
        let Some(delivery) = endpoint.delivery_id(delivery, payload) else {
            return self.apply(endpoint, payload, None).await.map(|v| (v, false));
        };
        let key = format!("{}/{delivery}", endpoint.id);
        // Same delivery id at once: the second waits for the first, then replays it.
        let _guard = self.locks.lock(&format!("hook:{key}")).await;
        if let Some(seen) = get_doc::<DeliveryRecord>(&*self.store, DocKind::Delivery, &key).await? {
            return Ok((seen.response, true));
        }
        self.apply(endpoint, payload, Some(key)).await.map(|v| (v, false))
    }

    async fn apply(self: &Arc<Self>, endpoint: &Endpoint, payload: &Value, key: Option<String>) -> Result<Value> {
        let actor = format!("webhook:{}", endpoint.id);
        let now = self.now();
        // The delivery record (for idempotency) commits with the change it answers.
        let record = |o: &Outcome, created: bool| -> Vec<Write> {
            match &key {
                Some(id) => {
                    let rec = DeliveryRecord { id: id.clone(), at: now, response: answer(o, created) };
                    vec![Write::Doc { kind: DocKind::Delivery, id: id.clone(), value: serde_json::to_vec(&rec).ok() }]
                }
                None => Vec::new(),
            }
        };
        let missing = endpoint.mapping.missing(payload);
        if !missing.is_empty() {
            return Err(super::Error::Invalid(
                missing
                    .into_iter()
                    .map(|p| (p.clone(), format!("the payload has no value at {p}, which this endpoint requires")))
                    .collect(),
            ));
        }
        let mapped = webhook::map_fields(&endpoint.mapping.fields, payload);
        let external =
            endpoint.mapping.external_id.as_ref().map(|s| webhook::extract(s, payload)).filter(|v| !v.is_null());
        let create = |mut fields: serde_json::Map<String, Value>| -> Result<NewTicket> {
            if let Some(x) = &external {
                fields.insert("external_id".into(), Value::String(value_text(x)));
            }
            fields.entry("channel").or_insert_with(|| Value::String("webhook".into()));
            serde_path_to_error::deserialize::<_, NewTicket>(webhook::new_ticket_object(fields)).map_err(|e| {
                let pointer = crate::json::pointer_of(e.path());
                invalid(&format!("/mapping/fields{pointer}"), format!("mapped value: {}", e.inner()))
            })
        };
        match &endpoint.action {
            Action::CreateTicket => {
                let out = self.create_ticket_with(create(mapped)?, &actor, |o| record(o, false)).await?;
                Ok(answer(&out, false))
            }
            Action::UpdateTicket { create_if_missing } => {
                let by_id = endpoint.mapping.ticket.as_ref().map(|s| value_text(&webhook::extract(s, payload)));
                let found = match by_id.filter(|s| !s.is_empty()) {
                    Some(id) => Some(self.store.ticket(&id).await?.ok_or(Error::NotFound { kind: "ticket", id })?),
                    None => {
                        let x = external.as_ref().map(value_text).ok_or_else(|| {
                            invalid("/mapping/external_id", "the payload has no value at the external_id mapping")
                        })?;
                        let t = self.ticket_by_external_id(&x).await?;
                        if t.is_none() && !*create_if_missing {
                            return Err(Error::NotFound { kind: "ticket with external_id", id: x });
                        }
                        t
                    }
                };
                match found {
                    Some(t) => {
                        let mut patch = mapped;
                        patch.remove("requester");
                        let out = self.update_ticket_with(&t.id, &patch, &actor, |o| record(o, false)).await?;
                        Ok(answer(&out, false))
                    }
                    // Only reached with `create_if_missing`.
                    None => {
                        let out = self.create_ticket_with(create(mapped)?, &actor, |o| record(o, true)).await?;
                        Ok(answer(&out, true))
                    }
                }
            }
            Action::StartWorkflow { workflow } => {
                let reference = endpoint
                    .mapping
                    .ticket
                    .as_ref()
                    .map(|s| value_text(&webhook::extract(s, payload)))
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| invalid("/mapping/ticket", "the payload has no value at the ticket mapping"))?;
                let ticket = match self.store.ticket(&reference).await? {
                    Some(t) => t.id,
                    None => {
                        let t = self.ticket_by_external_id(&reference).await?;
                        t.map(|t| t.id).ok_or(Error::NotFound { kind: "ticket", id: reference })?
                    }
                };
                let input = Value::Object(webhook::map_fields(&endpoint.mapping.input, payload));
                let out = self.start_manual_with(workflow, &ticket, input, &actor, |o| record(o, false)).await?;
                Ok(answer(&out, false))
            }
        }
    }

    /// The ticket another system knows by `external_id`.
    async fn ticket_by_external_id(&self, external_id: &str) -> Result<Option<crate::ticket::Ticket>> {
        let filter = TicketFilter { external_id: Some(external_id.into()), limit: Some(1), ..Default::default() };
        Ok(self.store.tickets(&filter).await?.into_iter().next())
    }
}

/// The 202 answer to a delivery (and what a replay of it returns).
fn answer(o: &Outcome, created: bool) -> Value {
    let mut v = json!({"ticket": o.ticket.id, "event": o.event, "runs": o.runs});
    if created {
        v["created"] = Value::Bool(true);
    }
    v
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Engine {
    /// Outbound webhooks that ran out of attempts, oldest id first.
    pub async fn dead_letters(&self) -> Result<Vec<crate::notify::DeadLetter>> {
        Ok(crate::store::list_docs(&*self.store, DocKind::DeadLetter, None, 10_000).await?)
    }

    /// Sends a dead letter again (same delivery id, fresh signature and attempts). On
    /// success it is marked `resent`; either way the attempt is returned.
    pub async fn resend(&self, id: &str, actor: &str) -> Result<(crate::notify::DeadLetter, crate::notify::Delivery)> {
        let mut letter: crate::notify::DeadLetter = get_doc(&*self.store, DocKind::DeadLetter, id)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "dead letter", id: id.into() })?;
        let key = self.config.secrets.get(&letter.secret).ok_or_else(|| {
            Error::Conflict(format!(
                "signing secret `{}` is not configured (config `secrets.{}`)",
                letter.secret, letter.secret
            ))
        })?;
        let delivery = self
            .notifier
            .send(&letter.url, key.as_bytes(), &letter.delivery, &letter.body, self.now().timestamp())
            .await;
        letter.attempts.extend(delivery.log.iter().cloned());
        if delivery.ok {
            letter.resent = Some(self.now());
        } else {
            letter.error = delivery.error.clone().unwrap_or_default();
        }
        let mut tx = crate::store::Tx::new();
        tx.doc(DocKind::DeadLetter, id, &letter).push(Write::Audit(crate::run::AuditEntry {
            at: self.now(),
            actor: actor.into(),
            action: "dead_letter.resend".into(),
            target: id.into(),
            detail: json!({"status": delivery.status, "ok": delivery.ok}),
        }));
        self.store.commit(tx).await?;
        Ok((letter, delivery))
    }
}
