//! The web console: server-rendered HTML (maud, checked at compile time) served at `/`
//! by the same server as the JSON API, over the same engine services (no rule is
//! implemented twice: the pages call `Engine`'s typed services, and what a role may do is
//! the API's one table, [`crate::api::openapi::access`]).
//!
//! - [`session`]: sign-in with an API token exchanged for a session cookie (HttpOnly,
//!   SameSite=Strict, expiring), a CSRF token per session checked on every form, sign-out;
//! - [`page`]: the layout (navigation bar, skip link), the error page, small helpers;
//! - [`chart`]: server-rendered inline SVG charts;
//! - one module per page in [`pages`]: dashboard, tickets, runs, workflows and the
//!   workflow editor, approvals, and the operator's schedules, dead letters and audit log.
//!
//! - [`live`]: live refresh over server-sent events, and its small script.
//!
//! Pages work without JavaScript; the one script of ours only refreshes lists (the
//! Content-Security-Policy allows no inline script, only `'self'`); styles come from one
//! stylesheet of ours.

mod chart;
mod live;
pub mod page;
mod pages;
pub use pages::link;
pub mod session;

use crate::api::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};

/// The console's routes (merged with the API's by the server).
pub fn router(state: AppState) -> Router {
    use pages::{approvals, dashboard, editor, operations, plugins, runs, tickets, workflows};
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(dashboard::page))
        .route("/console/login", get(session::login_page).post(session::login))
        .route("/console/logout", post(session::logout))
        .route("/console/oidc/start", get(session::start))
        .route("/console/oidc/callback", get(session::callback))
        .route("/console/tickets", get(tickets::list).post(tickets::create))
        .route("/console/tickets/{id}", get(tickets::show))
        .route("/console/tickets/{id}/comments", post(tickets::comment))
        .route("/console/runs", get(runs::list))
        .route("/console/runs/{id}", get(runs::show))
        .route("/console/runs/{id}/retry", post(runs::retry))
        .route("/console/workflows", get(workflows::list))
        .route("/console/workflows/new", get(workflows::new))
        .route("/console/workflows/{id}", get(editor::page))
        .route("/console/workflows/{id}/draft", post(editor::save))
        .route("/console/workflows/{id}/publish", post(editor::publish))
        .route("/console/workflows/{id}/dry-run", post(editor::dry_run))
        .route("/console/workflows/{id}/rollback", post(editor::rollback))
        .route("/console/workflows/{id}/{action}", post(editor::toggle))
        .route("/console/approvals", get(approvals::inbox))
        .route("/console/approvals/{id}", post(approvals::decide))
        .route("/console/approvals/{id}/delegate", post(approvals::delegate))
        .route("/console/schedules", get(operations::schedules))
        .route("/console/dead-letters", get(operations::dead_letters))
        .route("/console/dead-letters/resend", post(operations::resend_all))
        .route("/console/dead-letters/{id}/resend", post(operations::resend))
        .route("/console/audit", get(operations::audit))
        .route(
            "/console/plugins",
            get(plugins::list)
                .post(plugins::install)
                .layer(DefaultBodyLimit::max(state.engine.config().plugins.max_module_bytes + (64 << 10))),
        )
        .route("/console/plugins/{id}/grants", post(plugins::grants))
        .route("/console/plugins/{id}/{action}", post(plugins::toggle))
        .route("/console/webhooks", get(operations::webhooks))
        // Signed approval links carry their own credential (no session): an API path
        // (documented with the API's operations) answered with pages, JSON for API clients.
        .route("/approvals/{id}/decide", get(link::confirm).post(link::decide))
        .route("/console/events", get(live::events))
        .route("/console/static/app.css", get(stylesheet))
        .route("/console/static/live.js", get(live::script))
        .method_not_allowed_fallback(|| async {
            page::PageError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "This address does not take that method.")
        })
        .layer(middleware::from_fn(security_headers))
        // Forms are small: a comment, a ticket, a decision.
        .layer(DefaultBodyLimit::max(64 << 10))
        .with_state(state)
}

/// The stylesheet (compiled in; nothing is fetched at run time).
async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("app.css"),
    )
        .into_response()
}

/// Every console answer: a strict Content-Security-Policy (no inline script, only our
/// own stylesheet), no framing, no sniffing, no referrer outside the site, no caching of
/// pages that show desk data.
async fn security_headers(req: axum::extract::Request, next: middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
    resp
}
