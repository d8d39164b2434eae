//! `/agents` and `/groups`.

use super::auth::Principal;
use super::extract::JsonBody;
use super::{ApiError, AppState};
use crate::team::{Agent, Group};
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

/// `GET /agents` with each agent's open-ticket count.
pub async fn list_agents(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = s.engine.store();
    let mut out = Vec::new();
    for a in store.agents().await? {
        let load = store.open_load(&a.id).await?;
        let mut v = serde_json::to_value(&a).unwrap_or(Value::Null);
        v["open_tickets"] = json!(load);
        out.push(v);
    }
    Ok(Json(json!({"agents": out})))
}

/// `GET /agents/{id}`
pub async fn get_agent(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let a = s.engine.store().agent(&id).await?.ok_or_else(|| ApiError::not_found("agent", &id))?;
    let mut v = serde_json::to_value(&a).unwrap_or(Value::Null);
    v["open_tickets"] = json!(s.engine.store().open_load(&id).await?);
    Ok(Json(v))
}

/// `POST /agents` (admin): create or replace.
pub async fn put_agent(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(agent): JsonBody<Agent>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(s.engine.put_agent(agent, &who.name).await?))
}

/// `PUT /agents/{id}` (admin): the body's id must match.
pub async fn replace_agent(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(agent): JsonBody<Agent>,
) -> Result<Json<Agent>, ApiError> {
    if agent.id != id {
        return Err(ApiError::invalid("/id", format!("body id `{}` differs from the URL's `{id}`", agent.id)));
    }
    Ok(Json(s.engine.put_agent(agent, &who.name).await?))
}

/// `GET /groups`
pub async fn list_groups(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"groups": s.engine.store().groups().await?})))
}

/// `GET /groups/{id}` with its agents.
pub async fn get_group(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let g = s.engine.store().group(&id).await?.ok_or_else(|| ApiError::not_found("group", &id))?;
    let members: Vec<String> =
        s.engine.store().agents().await?.into_iter().filter(|a| a.groups.contains(&id)).map(|a| a.id).collect();
    let mut v = serde_json::to_value(&g).unwrap_or(Value::Null);
    v["agents"] = json!(members);
    Ok(Json(v))
}

/// `POST /groups` (admin): create or replace.
pub async fn put_group(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(group): JsonBody<Group>,
) -> Result<Json<Group>, ApiError> {
    Ok(Json(s.engine.put_group(group, &who.name).await?))
}
