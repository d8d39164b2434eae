//! Workflows: each published workflow with its status, revision, triggers, and its runs
//! and failures in the last 24 hours.

use crate::api::AppState;
use crate::console::page::{layout, may, query, time, Nav, PageError, Params};
use crate::console::session::User;
use crate::run::RunStatus;
use axum::extract::State;
use chrono::Duration;
use maud::{html, Markup};
use std::collections::HashMap;

/// Run headers read at most for the 24-hour counts (beyond, the counts say so).
const COUNTED: usize = 50_000;

/// `GET /console/workflows`.
pub async fn list(State(s): State<AppState>, user: User) -> Result<Markup, PageError> {
    let records = s.engine.store().workflows().await?;
    let since = s.engine.clock_now() - Duration::hours(24);
    // One pass over the last day's run headers (not journals), newest first, capped.
    let headers = s.engine.store().run_headers_since(since, COUNTED).await?;
    let capped = headers.len() >= COUNTED;
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for h in &headers {
        let c = counts.entry(h.workflow_id.as_str()).or_default();
        c.0 += 1;
        c.1 += usize::from(h.status == RunStatus::Failed);
    }
    let rows: Vec<_> = records
        .iter()
        .map(|r| {
            let (runs, failed) = counts.get(r.id.as_str()).copied().unwrap_or_default();
            (r, runs, failed)
        })
        .collect();
    let can_draft = may(&user, "put", "/workflows/{id}/draft");
    let body = html! {
        h1 { "Workflows" }
        @if can_draft {
            form.filters #new-workflow method="get" action="/console/workflows/new" {
                label { "New workflow id" input type="text" name="id" required pattern="[A-Za-z0-9._-]{1,64}"; }
                button.secondary type="submit" { "Open the editor" }
            }
        }
        @if rows.is_empty() { p.muted { "No workflow is published." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Workflow" } th scope="col" { "Status" } th scope="col" { "Revision" } th scope="col" { "Triggers" }
                    th scope="col" { "Runs (24 h)" } th scope="col" { "Failed (24 h)" } th scope="col" { "Changed" } } }
                tbody { @for (r, runs, failed) in &rows {
                    tr {
                        td { a href=(format!("/console/workflows/{}", r.id)) { strong { (r.id) } } br; span.muted { (r.definition.name) } }
                        td class=(if r.enabled { "ok" } else { "muted" }) { (if r.enabled { "enabled" } else { "disabled" }) }
                        td { (r.revision) }
                        td { (r.definition.triggers.len()) }
                        td { a href=(format!("/console/runs?{}", query(&[("workflow", &r.id)]))) { (runs) } }
                        td { @if *failed > 0 { a.failed href=(format!("/console/runs?{}", query(&[("workflow", &r.id), ("status", "failed")]))) { (failed) } } @else { "0" } }
                        td { (time(r.updated_at)) " by " (r.updated_by) }
                    }
                } }
            } }
            @if capped { p.muted { "More than " (COUNTED) " runs started in the last 24 hours: the counts are of the latest " (COUNTED) "." } }
        }
    };
    Ok(layout("Workflows", Some(&user.session), Some(Nav::Workflows), body))
}

/// The new-workflow form.
#[derive(Debug, serde::Deserialize)]
pub struct NewForm {
    #[serde(default)]
    id: String,
}

/// `GET /console/workflows/new?id=`: to the editor of a workflow not published yet.
pub async fn new(_user: User, Params(f): Params<NewForm>) -> Result<axum::response::Redirect, PageError> {
    let id = f.id.trim();
    if !crate::team::valid_id(id) {
        return Err(crate::api::ApiError::invalid("/id", "1-64 characters of letters, digits, `.`, `_` or `-`").into());
    }
    Ok(axum::response::Redirect::to(&format!("/console/workflows/{id}")))
}
