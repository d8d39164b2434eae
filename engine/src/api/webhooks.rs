//! `/webhooks` (admin: register endpoints) and `POST /hooks/{id}` (senders).

use super::auth::Principal;
use super::extract::JsonBody;
use super::{ApiError, AppState};
use crate::notify::{verify, DELIVERY_HEADER, SIGNATURE_HEADER};
use crate::webhook::Endpoint;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

/// `POST /webhooks` (admin): create or replace an endpoint. Without `secret` one is
/// generated and returned in this answer only.
pub async fn put(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(endpoint): JsonBody<Endpoint>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (endpoint, generated) = s.engine.put_endpoint(endpoint, &who.name).await?;
    let mut body = json!({"endpoint": endpoint.redacted(), "url": format!("/hooks/{}", endpoint.id)});
    if generated {
        body["secret"] = Value::String(endpoint.secret.clone());
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /webhooks` (admin), secrets redacted.
pub async fn list(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all: Vec<Value> = s.engine.endpoints().await?.iter().map(Endpoint::redacted).collect();
    Ok(Json(json!({"webhooks": all})))
}

/// `GET /webhooks/{id}` (admin), secret redacted.
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let e = s.engine.endpoint(&id).await?.ok_or_else(|| ApiError::not_found("webhook", &id))?;
    Ok(Json(e.redacted()))
}

fn unauthorized(endpoint: &str, reason: &str) -> ApiError {
    // Logged without the body: it is unauthenticated input.
    tracing::warn!(endpoint, reason, "webhook delivery refused");
    ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", reason.to_string())
}

/// `POST /hooks/{id}`: a delivery. 202 with the ticket / run ids once it is durable.
pub async fn receive(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(endpoint) = s.engine.endpoint(&id).await?.filter(|e| e.enabled) else {
        return Err(ApiError::not_found("webhook", &id));
    };
    let at = s.engine.clock_now();
    let mut delivery = None;
    let answered = receive_checked(&s, &endpoint, headers, body, &mut delivery).await;
    let (status, outcome, detail) = match &answered {
        Ok((resp, ticket, replay)) => (
            resp.status().as_u16(),
            if *replay {
                "replayed"
            } else if resp.status() == StatusCode::ACCEPTED {
                "accepted"
            } else {
                "rate_limited"
            },
            ticket.clone(),
        ),
        Err(e) => (e.status.as_u16(), e.code, e.message.clone()),
    };
    let received = crate::webhook::Received { at, status, outcome: outcome.into(), detail, delivery };
    s.engine.received().record(&id, received);
    answered.map(|(resp, _, _)| resp)
}

/// The checks and the delivery; the answer, the ticket it went to, and whether it was a
/// replay. `delivery` gets the delivery's id once the body is read.
async fn receive_checked(
    s: &AppState,
    endpoint: &crate::webhook::Endpoint,
    headers: HeaderMap,
    body: Body,
    delivery_id: &mut Option<String>,
) -> Result<(Response, String, bool), ApiError> {
    let id = endpoint.id.clone();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("body is larger than this endpoint's limit of {} bytes", endpoint.max_body_bytes),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let metrics = s.engine.metrics();
    if declared.is_some_and(|n: usize| n > endpoint.max_body_bytes) {
        metrics.inbound(&id, "too_large");
        return Err(too_large());
    }
    if let Err(e) = super::extract::require_json_headers(&headers) {
        metrics.inbound(&id, "malformed");
        return Err(e);
    }
    let timeout = std::time::Duration::from_millis(s.engine.config().body_timeout_ms);
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, endpoint.max_body_bytes)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            metrics.inbound(&id, "too_large");
            return Err(too_large());
        }
        Err(_) => {
            metrics.inbound(&id, "malformed");
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {} ms (body_timeout_ms)", timeout.as_millis()),
            ));
        }
    };
    let Some(signature) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        metrics.inbound(&id, "bad_signature");
        return Err(unauthorized(&id, "missing X-Switchboard-Signature header (t=<unix>,v1=<hex hmac>)"));
    };
    let Some(t) = verify(endpoint.secret.as_bytes(), signature, &bytes) else {
        metrics.inbound(&id, "bad_signature");
        return Err(unauthorized(&id, "signature does not match the body"));
    };
    let now = s.engine.clock_now().timestamp();
    if (now - t).abs() > endpoint.tolerance_seconds {
        metrics.inbound(&id, "stale");
        return Err(unauthorized(&id, "signature timestamp is outside the replay window"));
    }
    if let Err(wait) = s.engine.rate_limit(endpoint) {
        metrics.inbound(&id, "rate_limited");
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "endpoint `{id}` allows {}/s (burst {}); retry in {wait} s",
                endpoint.rate_limit.per_second, endpoint.rate_limit.burst
            ),
        )
        .into_response();
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok((resp, String::new(), false));
    }
    let header = ["idempotency-key", DELIVERY_HEADER]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(String::from));
    *delivery_id = header.clone().filter(|d| d.len() <= 200);
    let payload = super::extract::parse_object(&bytes).inspect_err(|_| metrics.inbound(&id, "malformed"))?;
    *delivery_id = endpoint.delivery_id(header.clone(), &payload);
    let (answer, replay) =
        s.engine.deliver(endpoint, &payload, header).await.inspect_err(|_| metrics.inbound(&id, "rejected"))?;
    metrics.inbound(&id, if replay { "replayed" } else { "accepted" });
    let ticket = answer["ticket"].as_str().unwrap_or_default().to_string();
    let mut resp = (StatusCode::ACCEPTED, Json(answer)).into_response();
    if replay {
        resp.headers_mut().insert("idempotent-replay", HeaderValue::from_static("true"));
    }
    Ok((resp, ticket, replay))
}

/// `GET /dead-letters` (admin): outbound webhooks that ran out of attempts.
pub async fn dead_letters(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"dead_letters": s.engine.dead_letters().await?})))
}

/// `POST /dead-letters/{id}/resend` (admin).
pub async fn resend(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (letter, delivery) = s.engine.resend(&id, &who.name).await?;
    Ok(Json(json!({"dead_letter": letter, "delivery": delivery})))
}
