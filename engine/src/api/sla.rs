//! `/sla`: business calendars and SLA policies; a ticket's SLA clocks.

use super::extract::JsonBody;
use super::{ApiError, AppState};
use crate::calendar::CalendarSpec;
use crate::sla::Policy;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

/// `POST /sla/calendars` (admin): create or replace a business calendar.
pub async fn put_calendar(
    State(s): State<AppState>,
    JsonBody(spec): JsonBody<CalendarSpec>,
) -> Result<Json<CalendarSpec>, ApiError> {
    Ok(Json(s.engine.put_calendar(spec).await?))
}

/// `POST /sla/policies` (admin): create or replace an SLA policy.
pub async fn put_policy(
    State(s): State<AppState>,
    JsonBody(policy): JsonBody<Policy>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(s.engine.put_sla_policy(policy).await?))
}

/// `GET /sla`: calendars and policies.
pub async fn list(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = s.engine.store();
    Ok(Json(json!({"calendars": store.calendars().await?, "policies": store.sla_policies().await?})))
}

/// `GET /tickets/{id}/sla`: per metric, status, business minutes used and left, and the
/// breach time if nothing pauses the clock (404 when no policy applies).
pub async fn ticket(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crate::executor::SlaReport>, ApiError> {
    s.engine.sla_report(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("SLA state of ticket", &id))
}
