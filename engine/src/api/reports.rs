//! `GET /reports`: the manager's figures over a period, as JSON or CSV.

use super::extract::QueryArgs;
use super::{ApiError, AppState};
use crate::report::{Bucket, GroupBy, Query, Savings};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

/// Query of `GET /reports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Start (RFC 3339, or a date = its midnight UTC). Default: `to` minus the period.
    pub from: Option<String>,
    /// End, exclusive (default: now).
    pub to: Option<String>,
    /// `day`, `week` (default) or `month`: the length before `to` when `from` is absent.
    pub period: Option<String>,
    /// `group`, `agent`, `category` or `channel`.
    pub by: Option<GroupBy>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// For "hours saved" by deflected tickets whose category has no figure of its own
    /// (default: the configuration's `reports.minutes_saved_per_ticket`, 15).
    pub minutes_saved_per_ticket: Option<f64>,
    /// `day`, `week` or `month`: add a `series` of buckets of that length.
    pub bucket: Option<Bucket>,
    /// IANA time zone of the bucket boundaries (default UTC).
    pub tz: Option<String>,
}

/// Parses RFC 3339 or `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
    })
}

/// Resolves the query's period into `[from, to)`.
pub fn period(q: &ReportQuery, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let time = |name: &str, v: &Option<String>| -> Result<Option<DateTime<Utc>>, ApiError> {
        match v {
            None => Ok(None),
            Some(s) => parse_time(s)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(&format!("/{name}"), format!("`{s}` is not RFC 3339 or YYYY-MM-DD"))),
        }
    };
    let to = time("to", &q.to)?.unwrap_or(now);
    let length = match q.period.as_deref().unwrap_or("week") {
        "day" => chrono::Duration::days(1),
        "week" => chrono::Duration::days(7),
        "month" => chrono::Duration::days(30),
        other => return Err(ApiError::invalid("/period", format!("`{other}`: use day, week or month"))),
    };
    let from = time("from", &q.from)?.unwrap_or(to - length);
    Ok((from, to))
}

/// The report query `q` stands for, with the configured savings.
pub fn query(q: &ReportQuery, now: DateTime<Utc>, savings: &Savings) -> Result<Query, ApiError> {
    let (from, to) = period(q, now)?;
    let tz = match q.tz.as_deref() {
        None => chrono_tz::UTC,
        Some(name) => name
            .parse()
            .map_err(|_| ApiError::invalid("/tz", format!("`{name}` is not an IANA time zone (e.g. Europe/Berlin)")))?,
    };
    let mut savings = savings.clone();
    if let Some(m) = q.minutes_saved_per_ticket {
        savings.minutes_saved_per_ticket = m;
    }
    Ok(Query { from, to, by: q.by, bucket: q.bucket, tz, savings })
}

/// `GET /reports?from=&to=&period=&by=&bucket=&tz=&format=json|csv&minutes_saved_per_ticket=`.
pub async fn get(State(s): State<AppState>, QueryArgs(q): QueryArgs<ReportQuery>) -> Result<Response, ApiError> {
    let query = query(&q, s.engine.clock_now(), &s.engine.config().reports)?;
    let engine = s.engine.clone();
    let report = super::blocking(move || async move { engine.report(&query).await }).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(report).into_response()),
        "csv" => Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], crate::report::csv(&report)).into_response()),
        other => Err(ApiError::invalid("/format", format!("`{other}`: use json or csv"))),
    }
}
