//! The console's frame: the layout every page shares (a skip link, the navigation bar
//! with the signed-in user and sign-out), the error page, and small renderers.

use super::session::User;
use crate::api::openapi::{access, Access};
use crate::api::session::Session;
use crate::api::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

/// The pages of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Tickets,
    Runs,
    Workflows,
    Approvals,
    /// Schedules, dead letters, audit.
    Operations,
}

const NAV: [(Nav, &str, &str); 6] = [
    (Nav::Dashboard, "/console", "Dashboard"),
    (Nav::Tickets, "/console/tickets", "Tickets"),
    (Nav::Runs, "/console/runs", "Runs"),
    (Nav::Workflows, "/console/workflows", "Workflows"),
    (Nav::Approvals, "/console/approvals", "Approvals"),
    (Nav::Operations, "/console/dead-letters", "Operations"),
];

/// A whole page: `body` inside the frame. Without a session (sign-in, errors before
/// sign-in) the bar shows no navigation.
pub fn layout(title: &str, session: Option<&Session>, current: Option<Nav>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Switchboard" }
                link rel="stylesheet" href="/console/static/app.css";
                @if session.is_some() {
                    script src="/console/static/live.js" defer {}
                }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.bar {
                    span.brand { "Switchboard" }
                    @if let Some(s) = session {
                        nav aria-label="Main" {
                            @for (page, href, name) in NAV {
                                @if Some(page) == current {
                                    a href=(href) aria-current="page" { (name) }
                                } @else {
                                    a href=(href) { (name) }
                                }
                            }
                        }
                        div.who {
                            span { (s.principal.name) " (" (s.principal.role.as_str()) ")" }
                            form.inline method="post" action="/console/logout" {
                                (csrf(s))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// The part of a page that live refresh replaces when the desk changes (see
/// [`super::live`]): lists and states, not editors.
pub fn live(body: Markup) -> Markup {
    html! { div data-live { (body) } }
}

/// The hidden CSRF field every form carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// Whether the user may do what the API operation `(method, route)` does: the API's one
/// role table decides for both.
pub fn may(user: &User, method: &str, route: &str) -> bool {
    match access(method, route) {
        Some(Access::Roles(roles)) => roles.contains(&user.principal().role),
        Some(Access::Public | Access::Signed) => true,
        None => false,
    }
}

/// Refuses (403) unless [`may`].
pub fn require(user: &User, method: &str, route: &str) -> Result<(), PageError> {
    if may(user, method, route) {
        Ok(())
    } else {
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            format!("Your role ({}) may not do this.", user.principal().role.as_str()),
        ))
    }
}

/// What every form's handler checks first: the form came from this session (CSRF), and
/// the user's role may do the API operation `(method, route)` it stands for.
pub fn act(user: &User, csrf: &str, method: &str, route: &str) -> Result<(), PageError> {
    user.check_csrf(csrf)?;
    require(user, method, route)
}

/// A time as people read it, with the exact instant for machines.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// An optional time, or a dash.
pub fn maybe_time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span.muted { "—" } },
    }
}

/// A serde enum's name (`"P2"`, `"in_progress"`).
pub fn label<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// An optional text, or a dash.
pub fn or_dash(v: Option<&str>) -> Markup {
    match v {
        Some(v) if !v.is_empty() => html! { (v) },
        _ => html! { span.muted { "—" } },
    }
}

/// A percentage with one decimal, or a dash.
pub fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.1} %"))
}

/// A form value for a serde enum, or an error naming the field.
pub fn parse<T: serde::de::DeserializeOwned>(field: &str, value: &str) -> Result<Option<T>, PageError> {
    if value.is_empty() {
        return Ok(None);
    }
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map(Some)
        .map_err(|_| PageError::new(StatusCode::BAD_REQUEST, format!("`{value}` is not a {field}")))
}

/// A `datetime-local` field (`2026-12-03T09:30`, seconds optional) read as UTC; `None`
/// when empty.
pub fn utc_minute(field: &str, value: &str) -> Result<Option<DateTime<Utc>>, PageError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                format!("`{field}`: `{value}` is not a date and time like 2026-12-03T09:30"),
            )
        })
}

/// A filter form's text field, trimmed; `None` when empty.
pub fn some(v: &str) -> Option<String> {
    (!v.trim().is_empty()).then(|| v.trim().to_string())
}

/// A URL query string from pairs, leaving out empty values.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// An error answered as a page, with the API's status for the same failure (and never
/// internal detail on a 500).
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
    /// Located problems (JSON pointer, message), e.g. of a form.
    problems: Vec<(String, String)>,
}

impl PageError {
    /// An error with a message for people.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), problems: Vec::new() }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let problems = e.details["errors"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| {
                        (
                            p["pointer"].as_str().unwrap_or_default().to_string(),
                            p["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let message = if e.status.is_server_error() {
            "Something went wrong on the server; the error is in its log.".to_string()
        } else {
            e.message
        };
        Self { status: e.status, message, problems }
    }
}

impl From<crate::executor::Error> for PageError {
    fn from(e: crate::executor::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crate::store::Error> for PageError {
    fn from(e: crate::store::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = html! {
            h1 { (self.status.as_u16()) " " (title) }
            p.notice role="alert" { (self.message) }
            @if !self.problems.is_empty() {
                ul {
                    @for (pointer, message) in &self.problems {
                        li { code { (if pointer.is_empty() { "/" } else { pointer }) } ": " (message) }
                    }
                }
            }
            p { a href="/console" { "Back to the dashboard" } }
        };
        (self.status, layout(title, None, None, body)).into_response()
    }
}

/// A page's query string, decoded into `T`; a bad one is a 400 page naming the problem.
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(e) => Err(PageError::new(
                StatusCode::BAD_REQUEST,
                format!("The address is not understood: {}", e.body_text()),
            )),
        }
    }
}

/// A submitted form, decoded into `T`; a bad one (wrong content type, undecodable, too
/// large) is an error page with the status axum gives it (415, 422, 413...).
pub struct FormData<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequest<S> for FormData<T> {
    type Rejection = PageError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(FormData(v)),
            Err(e) => Err(PageError::new(e.status(), format!("The form was not understood: {}", e.body_text()))),
        }
    }
}
