//! `/plugins`: install WebAssembly plugins, grant them connections, call them.

use super::auth::Principal;
use super::extract::JsonBody;
use super::{ApiError, AppState};
use crate::config::Role;
use crate::plugin::manifest::PluginRecord;
use crate::plugin::{CallContext, PluginError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        let (status, code) = match e.code.as_str() {
            "not_found" => (StatusCode::NOT_FOUND, "not_found"),
            "disabled" => (StatusCode::CONFLICT, "plugin_disabled"),
            "unknown_action" | "invalid_input" | "invalid_plugin" | "invalid_module" | "unknown_connection" => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            "too_large" => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            "storage" => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
            _ => (StatusCode::BAD_GATEWAY, "plugin_failed"),
        };
        let mut err = ApiError::new(status, code, e.to_string());
        err.details = json!({"code": e.code, "retryable": e.retryable, "logs": e.logs});
        err
    }
}

/// `POST /plugins` (admin, integrator): the body is the `.wasm` module.
pub async fn install(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Result<(StatusCode, Json<PluginRecord>), ApiError> {
    who.require(&[Role::Admin, Role::Integrator])?;
    let record = s.engine.plugins().install(&body, &who.name).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// `GET /plugins`
pub async fn list(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"plugins": s.engine.store().plugins()?})))
}

fn load(s: &AppState, id: &str) -> Result<PluginRecord, ApiError> {
    s.engine.store().plugin(id)?.ok_or_else(|| ApiError::not_found("plugin", id))
}

/// `GET /plugins/{id}`
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<PluginRecord>, ApiError> {
    load(&s, &id).map(Json)
}

/// Body of `PUT /plugins/{id}/grants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Connections the plugin may use.
    #[serde(default)]
    pub connections: Vec<String>,
    /// Configuration values it may read.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// `PUT /plugins/{id}/grants` (admin): which connections and config the plugin gets.
pub async fn grants(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(g): JsonBody<Grants>,
) -> Result<Json<PluginRecord>, ApiError> {
    who.admin()?;
    let mut record = load(&s, &id)?;
    record.connections = g.connections;
    record.config = g.config;
    Ok(Json(s.engine.plugins().update(record, &who.name).await?))
}

async fn set_enabled(s: &AppState, who: &Principal, id: &str, enabled: bool) -> Result<Json<PluginRecord>, ApiError> {
    who.admin()?;
    let mut record = load(s, id)?;
    record.enabled = enabled;
    Ok(Json(s.engine.plugins().update(record, &who.name).await?))
}

/// `POST /plugins/{id}/enable` (admin)
pub async fn enable(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<PluginRecord>, ApiError> {
    set_enabled(&s, &who, &id, true).await
}

/// `POST /plugins/{id}/disable` (admin)
pub async fn disable(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<PluginRecord>, ApiError> {
    set_enabled(&s, &who, &id, false).await
}

/// `POST /plugins/{id}/actions/{action}` (admin, integrator): call an action directly
/// with the body as input, e.g. to try a plugin before using it in a workflow.
/// Optional `?ticket=T-1` makes that ticket visible to `host::ticket()`.
pub async fn call(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, action)): Path<(String, String)>,
    super::extract::QueryArgs(q): super::extract::QueryArgs<Map<String, Value>>,
    JsonBody(input): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    who.require(&[Role::Admin, Role::Integrator])?;
    let ticket = match q.get("ticket").and_then(Value::as_str) {
        Some(t) => serde_json::to_value(s.engine.store().ticket(t)?.ok_or_else(|| ApiError::not_found("ticket", t))?)
            .unwrap_or_default(),
        None => Value::Null,
    };
    let out = s.engine.plugins().call(&id, &action, input, CallContext { ticket, idempotency_key: None }).await?;
    Ok(Json(json!({"output": out.output, "logs": out.logs, "version": out.version, "micros": out.micros})))
}
