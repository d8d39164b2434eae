//! The operator's pages: schedules with their next fire times, dead letters (outbound
//! webhooks that gave up) with resend — one, or every one not resent yet — and the audit
//! log of what admins changed.

use crate::api::AppState;
use crate::console::page::{act, csrf, layout, may, maybe_time, require, time, FormData, Nav, PageError};
use crate::console::session::{CsrfForm, User};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

/// The operator's pages, one tab each.
pub(super) fn tabs(current: &str) -> Markup {
    html! {
        nav aria-label="Operations" {
            p { @for (i, (href, name)) in [("/console/schedules", "Schedules"), ("/console/dead-letters", "Dead letters"),
                ("/console/plugins", "Plugins"), ("/console/webhooks", "Inbound webhooks"), ("/console/audit", "Audit log")].into_iter().enumerate() {
                @if i > 0 { " · " }
                @if href == current { strong aria-current="page" { (name) } } @else { a href=(href) { (name) } }
            } }
        }
    }
}

/// `GET /console/schedules`.
pub async fn schedules(State(s): State<AppState>, user: User) -> Result<Markup, PageError> {
    let schedules = s.engine.schedules().await?;
    let body = html! {
        (tabs("/console/schedules"))
        h1 { "Schedules" }
        @if schedules.is_empty() { p.muted { "No workflow has a schedule." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Workflow" } th scope="col" { "Cron" } th scope="col" { "Time zone" } th scope="col" { "Next fire times (local)" }
                    th scope="col" { "Last fired" } th scope="col" { "Missed" } } }
                tbody { @for sc in &schedules {
                    tr {
                        td { a href=(format!("/console/workflows/{}", sc.workflow)) { (sc.workflow) } @if !sc.enabled { " (disabled)" } }
                        td { code { (sc.cron) } }
                        td { (sc.timezone) }
                        td { ul { @for o in sc.next.iter().take(3) { li { (o.weekday) " " (o.local) " " (o.zone) } } } }
                        td { @match &sc.last_fired { Some(o) => { (o.local) " " (o.zone) }, None => span.muted { "never" } } }
                        td { (sc.missed) }
                    }
                } }
            } }
        }
    };
    Ok(layout("Schedules", Some(&user.session), Some(Nav::Operations), body))
}

/// `GET /console/dead-letters`.
pub async fn dead_letters(State(s): State<AppState>, user: User) -> Result<Markup, PageError> {
    let mut letters = s.engine.dead_letters().await?;
    letters.sort_by_key(|l| std::cmp::Reverse(l.at));
    let can_resend = may(&user, "post", "/dead-letters/{id}/resend");
    let waiting = letters.iter().filter(|l| l.resent.is_none()).count();
    let body = html! {
        (tabs("/console/dead-letters"))
        h1 { "Dead letters" }
        p { (letters.len()) " outbound webhook(s) gave up; " (waiting) " not resent yet." }
        @if can_resend && waiting > 0 {
            form.inline method="post" action="/console/dead-letters/resend" {
                (csrf(&user.session))
                button.primary type="submit" { "Resend all " (waiting) " not resent yet" }
            }
        }
        @if !letters.is_empty() {
            div.scroll { table {
                thead { tr { th scope="col" { "Letter" } th scope="col" { "To" } th scope="col" { "Run" } th scope="col" { "Why" }
                    th scope="col" { "Failed" } th scope="col" { "Resent" } th scope="col" { "" } } }
                tbody { @for l in &letters {
                    tr {
                        td { (l.id) }
                        td { code { (l.url) } }
                        td { a href=(format!("/console/runs/{}", l.run)) { (l.run) } " step " code { (l.step) } }
                        td.error { (l.error) }
                        td { (time(l.at)) " after " (l.attempts.len()) " attempt(s)" }
                        td { (maybe_time(l.resent)) }
                        td { @if can_resend {
                            form.inline method="post" action=(format!("/console/dead-letters/{}/resend", l.id)) {
                                (csrf(&user.session))
                                button.secondary type="submit" aria-label=(format!("Resend {}", l.id)) { "Resend" }
                            }
                        } }
                    }
                } }
            } }
        }
    };
    Ok(layout("Dead letters", Some(&user.session), Some(Nav::Operations), crate::console::page::live(body)))
}

/// `POST /console/dead-letters/{id}/resend`: as `POST /dead-letters/{id}/resend`.
pub async fn resend(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<CsrfForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/dead-letters/{id}/resend")?;
    s.engine.resend(&id, user.name()).await?;
    Ok(Redirect::to("/console/dead-letters").into_response())
}

/// `POST /console/dead-letters/resend`: resends every letter not resent yet, one after
/// the other; the page then shows each one's outcome.
pub async fn resend_all(
    State(s): State<AppState>,
    user: User,
    FormData(f): FormData<CsrfForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/dead-letters/{id}/resend")?;
    for letter in s.engine.dead_letters().await?.into_iter().filter(|l| l.resent.is_none()) {
        // A letter that fails again stays listed with its new attempts; the rest go on.
        if let Err(e) = s.engine.resend(&letter.id, user.name()).await {
            tracing::warn!(letter = %letter.id, error = %e, "resend from the console failed");
        }
    }
    Ok(Redirect::to("/console/dead-letters").into_response())
}

/// `GET /console/audit`: the latest 200 admin changes, newest first.
pub async fn audit(State(s): State<AppState>, user: User) -> Result<Markup, PageError> {
    require(&user, "get", "/audit")?;
    let entries = s.engine.store().audit(200).await?;
    let body = html! {
        (tabs("/console/audit"))
        h1 { "Audit log" }
        @if entries.is_empty() { p.muted { "Nothing recorded yet." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "On" } } }
                tbody { @for e in &entries {
                    tr { td { (time(e.at)) } td { (e.actor) } td { code { (e.action) } } td { (e.target) } }
                } }
            } }
        }
    };
    Ok(layout("Audit log", Some(&user.session), Some(Nav::Operations), body))
}

/// `GET /console/webhooks` (admin): inbound webhook endpoints (secrets are not shown).
pub async fn webhooks(State(s): State<AppState>, user: User) -> Result<Markup, PageError> {
    require(&user, "get", "/webhooks")?;
    let endpoints = s.engine.endpoints().await?;
    let base = s.engine.config().public_url.trim_end_matches('/').to_string();
    let body = html! {
        (tabs("/console/webhooks"))
        h1 { "Inbound webhooks" }
        @if endpoints.is_empty() { p.muted { "No endpoint is configured." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Endpoint" } th scope="col" { "Senders post to" } th scope="col" { "Does" } th scope="col" { "Limits" } } }
                tbody { @for e in endpoints.iter() {
                    tr {
                        td { strong { (e.id) } br; span.muted { (e.name) } }
                        td { code { (base) "/hooks/" (e.id) } }
                        td { @match &e.action {
                            crate::webhook::Action::CreateTicket => "logs a ticket",
                            crate::webhook::Action::UpdateTicket { create_if_missing: true } => "updates a ticket (or logs one)",
                            crate::webhook::Action::UpdateTicket { .. } => "updates a ticket",
                            crate::webhook::Action::StartWorkflow { workflow } => { "starts " a href=(format!("/console/workflows/{workflow}")) { (workflow) } },
                        } }
                        td { (e.max_body_bytes) " bytes per delivery" }
                    }
                } }
            } }
        }
        h2 { "Recent deliveries" }
        p.muted { "The latest " (crate::webhook::RECENT) " per endpoint since the server started, newest first." }
        @for e in endpoints.iter() {
            @let received = s.engine.received().of(&e.id);
            h3 { (e.id) }
            @if received.is_empty() { p.muted { "None yet." } } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Answer" } th scope="col" { "Outcome" } th scope="col" { "Delivery id" } th scope="col" { "Detail" } } }
                    tbody { @for r in &received {
                        tr {
                            td { (time(r.at)) }
                            td class=(if r.status < 300 { "ok" } else { "failed" }) { (r.status) }
                            td { code { (r.outcome) } }
                            td { @match &r.delivery { Some(d) => code { (d) }, None => span.muted { "—" } } }
                            td { @if r.status < 300 && !r.detail.is_empty() { a href=(format!("/console/tickets/{}", r.detail)) { (r.detail) } } @else { (r.detail) } }
                        }
                    } }
                } }
            }
        }
    };
    Ok(layout("Inbound webhooks", Some(&user.session), Some(Nav::Operations), crate::console::page::live(body)))
}
