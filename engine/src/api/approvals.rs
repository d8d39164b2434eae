//! `/approvals`: pending approvals, decisions by token or signed link, delegation.

use super::auth::Principal;
use super::extract::{JsonBody, QueryArgs};
use super::{ApiError, AppState};
use crate::approval::{Approval, Channel};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// Query of `GET /approvals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only approvals waiting for this person's decision (`me` for the caller).
    pub pending_for: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// `GET /approvals?pending_for=me`.
pub async fn list(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    QueryArgs(q): QueryArgs<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let pending_for = q.pending_for.as_deref().map(|p| if p == "me" { who.name.as_str() } else { p });
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(json!({"approvals": s.engine.approvals(pending_for, limit).await?})))
}

/// `GET /approvals/{id}`.
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Approval>, ApiError> {
    Ok(Json(s.engine.approval(&id).await?))
}

/// Body of `POST /approvals/{id}/decisions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `approve` or `reject`.
    pub decision: Verdict,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// `approve` or `reject`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approve.
    Approve,
    /// Reject.
    Reject,
}

/// Refuses an approval comment over 10,000 characters (the API and the console).
pub(crate) fn check_comment(comment: &str) -> Result<(), ApiError> {
    if comment.len() > 10_000 {
        return Err(ApiError::invalid("/comment", "at most 10,000 characters"));
    }
    Ok(())
}

/// `POST /approvals/{id}/decisions`: the caller (their token's name) decides for their
/// slot, or the slot they act for.
pub async fn decide(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> Result<Json<Approval>, ApiError> {
    check_comment(&body.comment)?;
    let approve = matches!(body.decision, Verdict::Approve);
    Ok(Json(s.engine.decide(&id, &who.name, approve, &body.comment, Channel::Api, None).await?))
}

/// Body of `POST /approvals/{id}/delegate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegateBody {
    /// Who decides instead.
    pub to: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// `POST /approvals/{id}/delegate`.
pub async fn delegate(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DelegateBody>,
) -> Result<Json<Approval>, ApiError> {
    check_comment(&body.comment)?;
    if !crate::team::valid_id(&body.to) {
        return Err(ApiError::invalid("/to", "an agent id: 1-64 letters, digits, `.`, `_` or `-`"));
    }
    Ok(Json(s.engine.delegate(&id, &who.name, &body.to, &body.comment).await?))
}

/// `POST /approvals/{id}/links` (admin): signed links for the undecided approvers of the
/// current stage, e.g. to put in an e-mail sent by another system.
pub async fn links(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let approval = s.engine.approval(&id).await?;
    if approval.status != crate::approval::Status::Pending {
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", format!("approval {id} is closed")));
    }
    Ok(Json(json!({"approval": id, "stage": approval.current, "links": s.engine.approval_links(&approval)?})))
}

/// The query of a signed link.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkQuery {
    /// The stage the link was issued for.
    pub stage: usize,
    /// The approver (or delegate) it was issued to.
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: Verdict,
    /// Unix seconds.
    pub expires: i64,
    /// Hex HMAC.
    pub sig: String,
    /// An optional comment (POST only).
    #[serde(default)]
    pub comment: String,
}
