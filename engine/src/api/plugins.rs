//! `/plugins`: install WebAssembly plugins, grant them connections, call them.

use super::auth::Principal;
use super::extract::JsonBody;
use super::{ApiError, AppState};
use crate::config::Role;
use crate::plugin::manifest::PluginRecord;
use crate::plugin::{CallContext, Installed, Installer, PluginError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        let (status, code) = match e.code.as_str() {
            "not_found" => (StatusCode::NOT_FOUND, "not_found"),
            "disabled" => (StatusCode::CONFLICT, "plugin_disabled"),
            "unknown_action" | "invalid_input" | "invalid_plugin" | "invalid_module" | "unknown_connection" => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            "too_large" => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            "too_complex" => (StatusCode::UNPROCESSABLE_ENTITY, "too_complex"),
            "forbidden" => (StatusCode::FORBIDDEN, "forbidden"),
            "version_conflict" | "conflict" | "in_use" => (StatusCode::CONFLICT, "conflict"),
            "storage" => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
            _ => (StatusCode::BAD_GATEWAY, "plugin_failed"),
        };
        let mut err = ApiError::new(status, code, e.to_string());
        err.details = json!({"code": e.code, "retryable": e.retryable, "logs": e.logs});
        err
    }
}

/// `POST /plugins` (admin, integrator): the body is the `.wasm` module. A new id: 201.
/// A new version of an installed id (admin only): 200 with what it changes. The same
/// module again: 200, nothing changed.
pub async fn install(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    super::extract::RawBody(body): super::extract::RawBody,
) -> Result<(StatusCode, Json<Installed>), ApiError> {
    let installer = if who.role == Role::Admin { Installer::Admin } else { Installer::Integrator };
    let installed = s.engine.plugins().install(&body, &who.name, installer).await?;
    let status = if installed.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(installed)))
}

/// A plugin as the API shows it: `config` only to admins (config is not for secrets,
/// but it is the admin's), and the key-value usage against its quota.
async fn view(s: &AppState, who: &Principal, mut record: PluginRecord) -> Value {
    if who.role != Role::Admin {
        record.config.clear();
    }
    let c = s.engine.plugins().config();
    let usage = s.engine.plugins().kv_usage(&record.id).await.ok();
    let mut v = serde_json::to_value(&record).unwrap_or_default();
    if who.role != Role::Admin {
        v["config"] = json!("(admins only)");
    }
    v["calls_in_flight"] = json!(s.engine.plugins().calls_in_flight(&record.id));
    v["kv"] = json!({"keys": usage.map(|u| u.0), "bytes": usage.map(|u| u.1),
        "max_keys": c.kv_max_keys, "max_bytes": c.kv_max_bytes});
    v
}

/// `GET /plugins`
pub async fn list(State(s): State<AppState>, Extension(who): Extension<Principal>) -> Result<Json<Value>, ApiError> {
    let mut plugins = Vec::new();
    for r in s.engine.store().plugins().await? {
        plugins.push(view(&s, &who, r).await);
    }
    Ok(Json(json!({"plugins": plugins})))
}

async fn load(s: &AppState, id: &str) -> Result<PluginRecord, ApiError> {
    s.engine.store().plugin(id).await?.ok_or_else(|| ApiError::not_found("plugin", id))
}

/// `GET /plugins/{id}`
pub async fn get(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = load(&s, &id).await?;
    Ok(Json(view(&s, &who, record).await))
}

/// `DELETE /plugins/{id}` (admin): the plugin, every version and its key-value store;
/// refused while a run that will call it is pending, running or waiting.
pub async fn delete(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    s.engine.delete_plugin(&id, None, &who.name).await?;
    Ok(Json(json!({"deleted": id})))
}

/// `DELETE /plugins/{id}/versions/{version}` (admin): one kept version. Deleting the
/// current one makes the newest other version current (refused while runs need it).
pub async fn delete_version(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let after = s.engine.delete_plugin(&id, Some(&version), &who.name).await?;
    Ok(Json(json!({"deleted": format!("{id}@{version}"), "plugin": after})))
}

/// Body of `PUT /plugins/{id}/grants`: the shape of a setup directory's grants files.
pub use crate::setup::Grants;

/// `PUT /plugins/{id}/grants` (admin): which connections and config the plugin gets.
pub async fn grants(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(g): JsonBody<Grants>,
) -> Result<Json<PluginRecord>, ApiError> {
    Ok(Json(set_grants(&s, &who.name, &id, g).await?))
}

/// Sets a plugin's grants (the API and the console).
pub(crate) async fn set_grants(s: &AppState, actor: &str, id: &str, g: Grants) -> Result<PluginRecord, ApiError> {
    let mut record = load(s, id).await?;
    record.connections = g.connections;
    record.config = g.config;
    Ok(s.engine.plugins().update(record, actor).await?)
}

/// Enables or disables a plugin (the API and the console).
pub(crate) async fn set_enabled(s: &AppState, actor: &str, id: &str, enabled: bool) -> Result<PluginRecord, ApiError> {
    let mut record = load(s, id).await?;
    record.enabled = enabled;
    Ok(s.engine.plugins().update(record, actor).await?)
}

/// `POST /plugins/{id}/enable` (admin)
pub async fn enable(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<PluginRecord>, ApiError> {
    Ok(Json(set_enabled(&s, &who.name, &id, true).await?))
}

/// `POST /plugins/{id}/disable` (admin)
pub async fn disable(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<PluginRecord>, ApiError> {
    Ok(Json(set_enabled(&s, &who.name, &id, false).await?))
}

/// `POST /plugins/{id}/actions/{action}` (admin, integrator): call an action directly
/// with the body as input, e.g. to try a plugin before using it in a workflow.
/// Optional `?ticket=T-1` makes that ticket visible to `host::ticket()`.
pub async fn call(
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    super::extract::QueryArgs(q): super::extract::QueryArgs<Map<String, Value>>,
    JsonBody(input): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let ticket = match q.get("ticket").and_then(Value::as_str) {
        Some(t) => {
            serde_json::to_value(s.engine.store().ticket(t).await?.ok_or_else(|| ApiError::not_found("ticket", t))?)
                .unwrap_or_default()
        }
        None => Value::Null,
    };
    let out = s.engine.plugins().call(&id, &action, input, CallContext { ticket, idempotency_key: None }).await?;
    // A direct call's key-value writes commit once it has succeeded.
    if !out.writes.is_empty() {
        let mut tx = crate::store::Tx::new();
        tx.writes = out.writes;
        s.engine.store().commit(tx).await?;
    }
    Ok(Json(json!({"output": out.output, "logs": out.logs, "version": out.version, "micros": out.micros})))
}
