//! `GET /schedules`: every scheduled workflow with its next occurrences (UTC and local),
//! its last firing and its missed occurrences.

use super::{ApiError, AppState};
use crate::executor::ScheduleInfo;
use axum::extract::State;
use axum::Json;

/// `GET /schedules`
pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<ScheduleInfo>>, ApiError> {
    Ok(Json(s.engine.schedules().await?))
}
