//! Runs: a filtered list, and a run's page as a timeline — each trace entry with the
//! time it took, the conditions with the values seen, the changes it made, routing
//! decisions and plugin calls (their detail), with a link to the failure and a retry
//! button for a failed run.

use crate::api::AppState;
use crate::console::page::{
    self, act, csrf, label, layout, maybe_time, parse, query, some, time, FormData, Nav, PageError, Params,
};
use crate::console::session::{CsrfForm, User};
use crate::run::RunStatus;
use crate::store::RunFilter;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// The list's filters (empty = any).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    ticket: String,
    /// Started at or after (`datetime-local`, UTC).
    #[serde(default)]
    from: String,
    /// Started before (`datetime-local`, UTC).
    #[serde(default)]
    to: String,
}

const STATUSES: [&str; 5] = ["pending", "running", "waiting", "completed", "failed"];

/// `GET /console/runs`.
pub async fn list(State(s): State<AppState>, user: User, Params(f): Params<Filters>) -> Result<Markup, PageError> {
    let status: Option<RunStatus> = parse("run status", &f.status)?;
    let (from, to) = (page::utc_minute("from", &f.from)?, page::utc_minute("to", &f.to)?);
    let filter = RunFilter { status, workflow: some(&f.workflow), ticket: some(&f.ticket), from, to, limit: Some(100) };
    let runs = s.engine.store().runs(&filter).await?;
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/console/runs" {
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for st in STATUSES { option value=(st) selected[f.status == st] { (st) } }
                }
            }
            label { "Workflow" input type="text" name="workflow" value=(f.workflow); }
            label { "Ticket" input type="text" name="ticket" value=(f.ticket); }
            label { "Started from (UTC)" input type="datetime-local" name="from" value=(f.from); }
            label { "until (UTC)" input type="datetime-local" name="to" value=(f.to); }
            button.secondary type="submit" { "Filter" }
        }
        p.muted { "Newest first, at most 100." }
        (page::live(html! { @if runs.is_empty() { p.muted { "No runs match." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Run" } th scope="col" { "Workflow" } th scope="col" { "Ticket" } th scope="col" { "Status" }
                    th scope="col" { "Steps" } th scope="col" { "Started" } th scope="col" { "Finished" } } }
                tbody { @for r in &runs {
                    tr {
                        td { a href=(format!("/console/runs/{}", r.id)) { (r.id) } }
                        td { a href=(format!("/console/runs?{}", query(&[("workflow", &r.workflow_id)]))) { (r.workflow_id) } " r" (r.workflow_revision) }
                        td { @if r.ticket_id.is_empty() { span.muted { "—" } } @else { a href=(format!("/console/tickets/{}", r.ticket_id)) { (r.ticket_id) } } }
                        td class=(label(&r.status)) { (label(&r.status)) }
                        td { (r.steps_done) }
                        td { (time(r.created_at)) }
                        td { (maybe_time(r.finished_at)) }
                    }
                } }
            } }
        } }))
    };
    Ok(layout("Runs", Some(&user.session), Some(Nav::Runs), body))
}

/// `GET /console/runs/{id}`.
pub async fn show(State(s): State<AppState>, user: User, Path(id): Path<String>) -> Result<Markup, PageError> {
    let run = s
        .engine
        .store()
        .run(&id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("Run `{id}` does not exist.")))?;
    let tree = s.engine.causation_tree(&run).await?;
    let failed_at = run.trace.iter().position(|e| e.outcome == "failed");
    let can_retry = run.status == RunStatus::Failed && page::may(&user, "post", "/runs/{id}/retry");
    let finished = matches!(run.status, RunStatus::Completed | RunStatus::Failed);
    let body = html! {
        h1 { "Run " (run.id) }
        p {
            "Workflow " strong { (run.workflow_id) } " revision " (run.workflow_revision)
            @if !run.ticket_id.is_empty() { " on " a href=(format!("/console/tickets/{}", run.ticket_id)) { (run.ticket_id) } }
            ", started by " (run.event_type) " (" (run.actor) "). Status: "
            span class=(label(&run.status)) { (label(&run.status)) }
            @if let Some(w) = &run.waiting { " at step " code { (w.step) } @if let Some(d) = w.deadline { " until " (time(d)) } }
            "."
        }
        @if let Some(e) = &run.error { p.notice role="alert" { "Failed: " (e) " " @if failed_at.is_some() { a href="#failure" { "Jump to the failure" } } } }
        @if can_retry {
            form.inline method="post" action=(format!("/console/runs/{}/retry", run.id)) {
                (csrf(&user.session))
                button.primary type="submit" { "Retry from the failed step" }
            }
        }
        h2 { "Timeline" }
        ol.timeline {
            @for (i, e) in run.trace.iter().enumerate() {
                @let took = run.trace.get(i + 1).map(|n| (n.at - e.at).num_milliseconds());
                li class=(if e.outcome == "failed" { "failed" } else { "" }) id=[(Some(i) == failed_at).then_some("failure")] {
                    div {
                        strong { (e.kind) }
                        @if let Some(step) = &e.step { " " code { (step) } }
                        @if let Some(t) = &e.step_type { " (" (t) ")" }
                        " — " span class=(e.outcome.as_str()) { (e.outcome) }
                        " · " (time(e.at))
                        @if let Some(ms) = took { " · " (ms) " ms" }
                    }
                    @if !e.message.is_empty() { div { (e.message) } }
                    @if !e.checks.is_empty() {
                        details { summary { (e.checks.len()) " comparison(s)" }
                            ul { @for c in &e.checks {
                                li class=(if c.result { "ok" } else { "failed" }) { code { (c.pointer) } " " code { (c.field) } " " (label(&c.op)) " "
                                    @if let Some(x) = &c.expected { code { (x) } } " — saw " code { (c.actual) } }
                            } }
                        }
                    }
                    @if !e.changes.is_empty() {
                        details { summary { (e.changes.len()) " change(s)" }
                            ul { @for c in &e.changes { li { code { (c.field) } ": " code { (c.from) } " → " code { (c.to) } } } }
                        }
                    }
                    @if !e.detail.is_null() {
                        details { summary { "Detail (routing, plugin call, delivery)" }
                            pre { (serde_json::to_string_pretty(&e.detail).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        h2 { "Variables" }
        pre { (serde_json::to_string_pretty(&run.vars).unwrap_or_default()) }
        h2 { "Causation" }
        p { (tree.runs_started) " run(s) started and " (tree.refusals) " refused by the loop guard in this tree"
            @if tree.stopped_by_guard { span.failed { " (the loop guard stopped part of it)" } } "." }
    };
    // A run still moving refreshes itself; a finished one keeps what the reader opened.
    let body = if finished { body } else { page::live(body) };
    Ok(layout(&format!("Run {}", run.id), Some(&user.session), Some(Nav::Runs), body))
}

/// `POST /console/runs/{id}/retry`: retries a failed run from its failed step (as
/// `POST /runs/{id}/retry`) and shows the new run.
pub async fn retry(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<CsrfForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/runs/{id}/retry")?;
    let run = s.engine.retry_run(&id, user.name()).await?;
    Ok(Redirect::to(&format!("/console/runs/{}", run.id)).into_response())
}
