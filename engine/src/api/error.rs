//! The one error type of the HTTP API: `{ "error": { "code", "message", "details" } }`.

use crate::executor;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `invalid`, `not_found`.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// Structured detail, e.g. `{"errors": [{"pointer", "message"}]}`.
    pub details: Value,
}

impl ApiError {
    /// A new error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Value::Null }
    }

    /// 422 with one located problem.
    pub fn invalid(pointer: &str, message: impl Into<String>) -> Self {
        Self::invalid_all(vec![(pointer.to_string(), message.into())])
    }

    /// 422 with every located problem.
    pub fn invalid_all(errors: Vec<(String, String)>) -> Self {
        let first =
            errors.first().map(|(p, m)| format!("{}: {m}", if p.is_empty() { "/" } else { p })).unwrap_or_default();
        let list: Vec<Value> = errors.into_iter().map(|(p, m)| json!({"pointer": p, "message": m})).collect();
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid",
            message: if list.len() > 1 { format!("{} problems; first: {first}", list.len()) } else { first },
            details: json!({ "errors": list }),
        }
    }

    /// 404.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{kind} `{id}` not found"))
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if !self.details.is_null() {
            body["error"]["details"] = self.details;
        }
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<executor::Error> for ApiError {
    fn from(e: executor::Error) -> Self {
        match e {
            executor::Error::NotFound { kind, id } => Self::not_found(kind, &id),
            executor::Error::Invalid(errors) => Self::invalid_all(errors),
            executor::Error::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            executor::Error::Forbidden(m) => Self::forbidden(m),
            e @ executor::Error::Stale { .. } => Self::new(StatusCode::PRECONDITION_FAILED, "stale", e.to_string()),
            executor::Error::Store(e) => e.into(),
        }
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> Self {
        tracing::error!(error = %e, "storage error");
        match e {
            crate::store::Error::Closed => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "server is shutting down")
            }
            e @ crate::store::Error::Full { .. } => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", e.to_string())
            }
            e @ crate::store::Error::Unclassified { full: true, .. } => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", format!("{e}: free space and restart the server; acknowledged writes are safe, this one was not saved; the disk is full"))
            }
            e @ (crate::store::Error::WriteFailed { .. } | crate::store::Error::Unclassified { .. }) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage_failed", e.to_string())
            }
            e @ crate::store::Error::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", other.to_string()),
        }
    }
}
