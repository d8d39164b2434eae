//! Extractors whose failures are [`ApiError`]s naming the offending field.

use super::error::ApiError;
use super::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// A JSON body. Syntax errors report line and column; type errors report the JSON
/// pointer of the member; too-large bodies get 413.
pub struct JsonBody<T>(pub T);

/// Parses JSON bytes strictly ([`crate::json`]): syntax errors, duplicate keys and NUL
/// characters are 400 naming line and column or the JSON pointer; anything but an
/// object is 422.
pub fn parse_object(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    let value = crate::json::parse(bytes).map_err(|e| {
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("body is {e}"));
        if !e.pointer().is_empty() || !matches!(e, crate::json::StrictError::Syntax { .. }) {
            err.details = serde_json::json!({"errors": [{"pointer": e.pointer(), "message": e.to_string()}]});
        }
        err
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid("", "body must be a JSON object"));
    }
    Ok(value)
}

/// Parses a JSON object into `T`; type errors carry the member's JSON pointer.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_object(bytes)?;
    serde_path_to_error::deserialize::<_, T>(value)
        .map_err(|e| ApiError::invalid(&crate::json::pointer_of(e.path()), e.inner().to_string()))
}

/// A request body read whole, within the route's size limit and the server's
/// `body_timeout_ms` (a client dribbling its body is cut off, whatever the pace): 413
/// and 408 are the JSON error body like every other rejection.
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let timeout = std::time::Duration::from_millis(state.engine.config().body_timeout_ms);
        match tokio::time::timeout(timeout, Bytes::from_request(req, state)).await {
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {} ms (body_timeout_ms)", timeout.as_millis()),
            )),
            Ok(Err(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body exceeds the limit for this route (max_body_bytes, or plugins.max_module_bytes for modules)",
            )),
            Ok(Err(e)) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text())),
            Ok(Ok(bytes)) => Ok(RawBody(bytes)),
        }
    }
}

/// Refuses a body that is not declared as JSON (`application/json` or `+json`): 415.
pub fn require_json(req: &Request) -> Result<(), ApiError> {
    require_json_headers(req.headers())
}

/// [`require_json`] on headers alone.
pub fn require_json_headers(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let ct = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be application/json, not `{}`", if ct.is_empty() { "(none)" } else { ct }),
        ))
    }
}

/// A JSON body (Content-Type checked, then read as [`RawBody`] and parsed strictly).
/// Bodies that are JSON documents in another form (workflow definitions) use
/// [`JsonText`].
impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = JsonText::from_request(req, state).await?.0;
        parse(&bytes).map(JsonBody)
    }
}

/// The bytes of a JSON body: Content-Type checked, size and time bounded, not empty.
pub struct JsonText(pub Bytes);

impl FromRequest<AppState> for JsonText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        require_json(&req)?;
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "request body is empty; JSON expected",
            ));
        }
        Ok(JsonText(bytes))
    }
}

/// A query string, with errors naming the parameter.
pub struct QueryArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded_de(query).map(QueryArgs)
    }
}

fn serde_urlencoded_de<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", "malformed query string"))?,
    )
    .map(|q| q.0)
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))
}
