//! The HTTP API (axum).
//!
//! - [`router`] builds the routes over an [`AppState`]; tests drive it with `oneshot`;
//! - [`auth`]: bearer tokens and roles; every route but `/health` needs a token;
//! - [`error`]: the JSON error body; [`extract`]: extractors that locate bad input;
//! - one file per resource: [`tickets`], [`workflows`], [`runs`], [`team`], [`plugins`].

pub mod approvals;
pub mod auth;
pub mod backup;
pub mod error;
pub mod extract;
pub mod inbox;
pub mod oidc;
pub mod openapi;
pub mod plugins;
pub mod reports;
pub mod runs;
pub mod schedules;
pub mod session;
pub mod sla;
pub mod team;
pub mod tickets;
pub mod webhooks;
pub mod workflows;

use crate::executor::Engine;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

pub use error::ApiError;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Token lookup.
    pub tokens: Arc<auth::Tokens>,
    /// The demo webhook receiver (`serve --demo` only).
    pub inbox: Option<Arc<inbox::Inbox>>,
    /// The web console's signed-in sessions.
    pub sessions: Arc<session::Sessions>,
    /// Sign-in with an OpenID Connect provider, when configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Cancelled when the server stops taking requests: long-lived answers (the
    /// console's event stream) end then, so the graceful shutdown does not wait on them.
    pub closing: tokio_util::sync::CancellationToken,
}

/// All routes.
pub fn router(state: AppState) -> Router {
    let max_body = state.engine.config().max_body_bytes;
    let protected = Router::new()
        .route("/tickets", post(tickets::create).get(tickets::list))
        .route("/tickets/{id}", get(tickets::get).patch(tickets::update))
        .route("/tickets/{id}/comments", post(tickets::comment))
        .route("/tickets/{id}/links", post(tickets::link))
        .route("/tickets/{id}/sla", get(sla::ticket))
        .route("/tickets/{id}/explain", get(tickets::explain))
        .route("/sla", get(sla::list))
        .route("/sla/calendars", post(sla::put_calendar))
        .route("/sla/policies", post(sla::put_policy))
        .route("/tickets/{id}/history", get(tickets::history))
        .route("/tickets/{id}/events", get(tickets::events))
        .route("/agents", get(team::list_agents).post(team::put_agent))
        .route("/agents/{id}", get(team::get_agent).put(team::replace_agent))
        .route("/groups", get(team::list_groups).post(team::put_group))
        .route("/groups/{id}", get(team::get_group))
        .route("/workflows", get(workflows::list).post(workflows::create))
        .route("/workflows/validate", post(workflows::validate))
        .route("/workflows/dry-run", post(workflows::dry_run))
        .route("/workflows/replay", post(workflows::replay))
        .route("/workflows/{id}", get(workflows::get).put(workflows::replace))
        .route("/workflows/{id}/revisions", get(workflows::revisions))
        .route("/workflows/{id}/revisions/{revision}", get(workflows::revision))
        .route("/workflows/{id}/diff", get(workflows::diff))
        .route("/workflows/{id}/rollback", post(workflows::rollback))
        .route("/workflows/{id}/draft", get(workflows::get_draft).put(workflows::put_draft))
        .route("/workflows/{id}/publish", post(workflows::publish))
        .route("/workflows/{id}/enable", post(workflows::enable))
        .route("/workflows/{id}/disable", post(workflows::disable))
        .route("/workflows/{id}/runs", post(workflows::start))
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}", get(approvals::get))
        .route("/approvals/{id}/decisions", post(approvals::decide))
        .route("/approvals/{id}/delegate", post(approvals::delegate))
        .route("/approvals/{id}/links", post(approvals::links))
        .route("/webhooks", get(webhooks::list).post(webhooks::put))
        .route("/webhooks/{id}", get(webhooks::get))
        .route("/dead-letters", get(webhooks::dead_letters))
        .route("/dead-letters/{id}/resend", post(webhooks::resend))
        .route("/schedules", get(schedules::list))
        .route("/metrics", get(metrics))
        .route("/reports", get(reports::get))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::get))
        .route("/runs/{id}/retry", post(runs::retry))
        .route("/audit", get(runs::audit))
        .route("/admin/backup", post(backup::backup))
        .route("/demo/inbox", get(inbox::list))
        .route(
            "/plugins",
            get(plugins::list)
                .post(plugins::install)
                .layer(DefaultBodyLimit::max(state.engine.config().plugins.max_module_bytes)),
        )
        .route("/plugins/{id}", get(plugins::get).delete(plugins::delete))
        .route("/plugins/{id}/versions/{version}", axum::routing::delete(plugins::delete_version))
        .route("/plugins/{id}/grants", axum::routing::put(plugins::grants))
        .route("/plugins/{id}/enable", post(plugins::enable))
        .route("/plugins/{id}/disable", post(plugins::disable))
        .route("/plugins/{id}/actions/{action}", post(plugins::call))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/schema/workflow.v1.json", get(workflow_schema))
        .route("/demo/inbox", post(inbox::receive))
        // `/approvals/{id}/decide` (signed links: pages for people) is the console's.
        // Senders authenticate by signature; each endpoint sets its own body limit.
        .route("/hooks/{id}", post(webhooks::receive).layer(DefaultBodyLimit::disable()))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), access_log))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// `GET /health/live`: 200 while the process answers at all (a supervisor restarts it
/// when this fails; a full disk is not a reason to).
async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// `GET /health/ready`: 200 while this node should get traffic — the store takes writes
/// and the server is not shutting down; 503 with the reason otherwise (a load balancer
/// takes the node out).
async fn ready(State(state): State<AppState>) -> (axum::http::StatusCode, Json<Value>) {
    let reason = match state.engine.store().failure() {
        Some(e) => Some(e.to_string()),
        None if state.closing.is_cancelled() => Some("shutting down".to_string()),
        None => state.engine.store().ping().await.err().map(|e| e.to_string()),
    };
    match reason {
        Some(reason) => {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not_ready", "reason": reason})))
        }
        None => (axum::http::StatusCode::OK, Json(json!({"status": "ready"}))),
    }
}

/// `GET /health`: 200 while the store takes writes; 503 with the reason once it does
/// not (disk full, I/O error), so a load balancer or supervisor can act on it.
async fn health(State(state): State<AppState>) -> (axum::http::StatusCode, Json<Value>) {
    let failure = state.engine.store().failure();
    let status =
        if failure.is_some() { axum::http::StatusCode::SERVICE_UNAVAILABLE } else { axum::http::StatusCode::OK };
    let body = json!({
        "status": if failure.is_some() { "failing" } else { "ok" },
        "reason": failure.map(|e| e.to_string()),
        "runs_in_flight": state.engine.runs_in_flight(),
        // A durable timer is due and not fired yet (work about to start): one index read.
        "timers_due": state.engine.store().next_timer().await.ok().flatten().is_some_and(|due| due <= state.engine.clock_now()),
        "durability": state.engine.config().durability,
    });
    (status, Json(body))
}

/// Runs a store-reading computation (a report, a replay, a dry run: they read tickets,
/// history and runs) on a blocking thread, so it never stalls the async runtime: the
/// future `f` makes is driven there to completion.
pub(crate) async fn blocking<T, F, Fut>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = crate::executor::Result<T>>,
{
    let runtime = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || runtime.block_on(f())).await {
        Ok(result) => Ok(result?),
        Err(e) => {
            Err(ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("task failed: {e}")))
        }
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    let e = &state.engine;
    let next_timer_in = match e.store().next_timer().await {
        Ok(Some(due)) => (due - e.clock_now()).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    };
    let overdue = e.store().due_timers(e.clock_now(), 1000).await.map_or(0, |t| t.len());
    let engine = e.clone();
    let inventory = blocking(move || async move { engine.inventory().await }).await.ok();
    let mut gauges: Vec<(String, &str, f64)> = vec![(
        format!(
            "switchboard_build_info{{version=\"{}\",commit=\"{}\"}}",
            env!("CARGO_PKG_VERSION"),
            crate::BUILD_COMMIT
        ),
        "The running build: version and git commit.",
        1.0,
    )];
    if let Some(inv) = &inventory {
        for ((status, group), n) in &inv.tickets {
            gauges.push((
                format!("switchboard_tickets{{status=\"{status}\",group=\"{}\"}}", group.replace('"', "")),
                "Tickets by status and group.",
                *n as f64,
            ));
        }
        gauges.push((
            "switchboard_runs_waiting".into(),
            "Runs parked at a wait or an approval.",
            inv.waiting_runs as f64,
        ));
        gauges.push((
            "switchboard_approvals_pending".into(),
            "Approvals not yet decided.",
            inv.pending_approvals as f64,
        ));
        gauges.push((
            "switchboard_dead_letters".into(),
            "Outbound webhooks that ran out of attempts.",
            inv.dead_letters as f64,
        ));
    }
    let fixed = [
        (
            "switchboard_runs_in_flight",
            "Runs held in memory (running or queued for a worker).",
            e.runs_in_flight() as f64,
        ),
        ("switchboard_run_queue_capacity", "The run_queue setting.", e.config().run_queue as f64),
        ("switchboard_workers", "The workers setting.", e.config().workers as f64),
        (
            "switchboard_next_timer_seconds",
            "Seconds until the earliest durable timer (negative: overdue).",
            next_timer_in,
        ),
    ];
    let mut rows: Vec<(&str, &str, f64)> = fixed.to_vec();
    rows.push(("switchboard_timers_overdue", "Durable timers due now and not yet fired (up to 1000).", overdue as f64));
    rows.extend(gauges.iter().map(|(n, h, v)| (n.as_str(), *h, *v)));
    let body = e.metrics().render(&rows);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

async fn workflow_schema() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/schema+json")], crate::workflow::SCHEMA)
}

/// The access log: one line per request (method, route, status, latency, token name),
/// target `switchboard::access`; 5xx at WARN. Also counts the request in `/metrics`.
async fn access_log(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let matched = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_string());
    let route = matched.clone().unwrap_or_else(|| req.uri().path().to_string());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let token = resp.extensions().get::<auth::Principal>().map_or("-", |p| p.name.as_str()).to_string();
    let seconds = started.elapsed().as_secs_f64();
    // Paths that match no route are one label, so scanners cannot grow the metric.
    state.engine.metrics().http(method.as_str(), matched.as_deref().unwrap_or("(unmatched)"), status, seconds);
    let ms = seconds * 1000.0;
    if status >= 500 {
        tracing::warn!(target: "switchboard::access", %method, %route, status, ms, token = %token, "request");
    } else {
        tracing::info!(target: "switchboard::access", %method, %route, status, ms, token = %token, "request");
    }
    resp
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}; see /openapi.json for the methods each route takes", uri.path()),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "no_route", "no such route; see the README for the API")
}
