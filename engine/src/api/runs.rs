//! `/runs` and `/audit`: what automation did and what admins changed.

use super::auth::Principal;
use super::extract::QueryArgs;
use super::{ApiError, AppState};
use crate::run::Run;
use crate::store::RunFilter;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// `GET /runs?ticket=&workflow=&status=&limit=` (newest first).
pub async fn list(State(s): State<AppState>, QueryArgs(filter): QueryArgs<RunFilter>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"runs": s.engine.store().runs(&filter).await?})))
}

/// `GET /runs/{id}` with the full trace.
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<RunView>, ApiError> {
    let run = s.engine.store().run(&id).await?.ok_or_else(|| ApiError::not_found("run", &id))?;
    let tree = s.engine.causation_tree(&run).await?;
    Ok(Json(RunView { run, tree }))
}

/// A run as `GET /runs/{id}` answers it: the run with its trace, and the causation tree
/// it belongs to (originating event -> runs -> events -> runs, with the loop guard's
/// refusals and budget).
#[derive(serde::Serialize)]
pub struct RunView {
    /// The run.
    #[serde(flatten)]
    pub run: Run,
    /// Its causation tree.
    pub tree: crate::executor::loops::CausationTree,
}

/// Query of `GET /audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Newest entries to return (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// `GET /audit` (admin).
pub async fn audit(State(s): State<AppState>, QueryArgs(q): QueryArgs<AuditQuery>) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(json!({"audit": s.engine.store().audit(limit).await?})))
}

/// `POST /runs/{id}/retry` (admin): start a failed run again from its failed step on the
/// workflow's current revision.
pub async fn retry(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<Run>), ApiError> {
    Ok((axum::http::StatusCode::CREATED, Json(s.engine.retry_run(&id, &who.name).await?)))
}
