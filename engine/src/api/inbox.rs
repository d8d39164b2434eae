//! `/demo/inbox`: a receiver for the demo's outbound webhooks, so the tour can show a
//! signed notification arriving. Mounted only with `serve --demo`.
//!
//! `POST` verifies the signature with the `default` secret and keeps the last 100
//! deliveries in memory; `GET` (any token) lists them.

use super::{ApiError, AppState};
use crate::notify::{verify, DELIVERY_HEADER, SIGNATURE_HEADER};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Mutex;

/// Deliveries received, newest last.
#[derive(Default)]
pub struct Inbox(Mutex<VecDeque<Value>>);

/// `POST /demo/inbox` (signature required, no token).
pub async fn receive(
    State(s): State<AppState>,
    headers: HeaderMap,
    super::extract::RawBody(body): super::extract::RawBody,
) -> Result<StatusCode, ApiError> {
    let Some(inbox) = &s.inbox else { return Err(ApiError::not_found("route", "/demo/inbox")) };
    let secret = s.engine.config().secrets.get("default").cloned().unwrap_or_default();
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if verify(secret.as_bytes(), signature, &body).is_none() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "missing or wrong X-Switchboard-Signature",
        ));
    }
    let delivery = headers.get(DELIVERY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut q = inbox.0.lock().unwrap_or_else(|p| p.into_inner());
    if q.len() >= 100 {
        q.pop_front();
    }
    q.push_back(json!({"delivery": delivery, "payload": payload}));
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /demo/inbox`
pub async fn list(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let Some(inbox) = &s.inbox else { return Err(ApiError::not_found("route", "/demo/inbox")) };
    let q = inbox.0.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Json(json!({"deliveries": q.iter().cloned().collect::<Vec<_>>()})))
}
