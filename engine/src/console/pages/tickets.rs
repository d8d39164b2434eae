//! Tickets: a filtered, paged list with a form to log one; a ticket's page with its
//! fields, comments, SLA clocks, runs and the explain view (every workflow and SLA policy:
//! applied, or why not, with the values seen), and a form to comment.

use crate::api::AppState;
use crate::console::page::{
    self, act, csrf, label, layout, maybe_time, or_dash, parse, some, time, FormData, Nav, PageError, Params,
};
use crate::console::session::User;
use crate::store::{RunFilter, TicketFilter};
use crate::ticket::NewTicket;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// The list's filters, as the form sends them (empty = any).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    requester: String,
    /// Text in the title or description.
    #[serde(default)]
    text: String,
    /// The last id of the previous page.
    #[serde(default)]
    after: String,
}

const PAGE: usize = 50;
/// Tickets a text search reads per page at most.
const TEXT_WINDOW: u64 = 10_000;
const STATUSES: [&str; 6] = ["new", "assigned", "in_progress", "pending", "resolved", "closed"];
const PRIORITIES: [&str; 4] = ["P1", "P2", "P3", "P4"];

/// `GET /console/tickets`.
pub async fn list(State(s): State<AppState>, user: User, Params(f): Params<Filters>) -> Result<Markup, PageError> {
    let filter = TicketFilter {
        status: parse("status", &f.status)?,
        priority: parse("priority", &f.priority)?,
        group: some(&f.group),
        assignee: some(&f.assignee),
        category: some(&f.category),
        requester: some(&f.requester),
        text: some(&f.text),
        after: some(&f.after),
        limit: Some(PAGE),
        ..Default::default()
    };
    // A text search has no index: it reads one window of ids per page.
    let searched = filter.text.is_some().then(|| filter.window().start.saturating_sub(1) + TEXT_WINDOW);
    let filter = TicketFilter { before: searched.map(|end| format!("T-{}", end + 1)), ..filter };
    let tickets = s.engine.store().tickets(&filter).await?;
    let mut next = (tickets.len() >= PAGE).then(|| tickets.last().map(|t| t.id.clone())).flatten();
    let mut searched_to = None;
    if let (None, Some(end)) = (&next, searched) {
        let beyond = TicketFilter { after: Some(format!("T-{end}")), limit: Some(1), ..Default::default() };
        if !s.engine.store().tickets(&beyond).await?.is_empty() {
            next = Some(format!("T-{end}"));
            searched_to = Some(end);
        }
    }
    let can_create = page::may(&user, "post", "/tickets");
    let body = html! {
        h1 { "Tickets" }
        form.filters #ticket-filters method="get" action="/console/tickets" {
            label { "Text" input type="search" name="text" value=(f.text); }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for st in STATUSES { option value=(st) selected[f.status == st] { (st) } }
                }
            }
            label { "Priority"
                select name="priority" {
                    option value="" { "any" }
                    @for p in PRIORITIES { option value=(p) selected[f.priority == p] { (p) } }
                }
            }
            label { "Group" input type="text" name="group" value=(f.group); }
            label { "Assignee" input type="text" name="assignee" value=(f.assignee); }
            label { "Category" input type="text" name="category" value=(f.category); }
            label { "Requester" input type="text" name="requester" value=(f.requester); }
            button.secondary type="submit" { "Filter" }
        }
        (page::live(html! { @if tickets.is_empty() {
            p.muted { "No tickets match." }
        } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Ticket" } th scope="col" { "Title" } th scope="col" { "Status" } th scope="col" { "Priority" }
                    th scope="col" { "Group" } th scope="col" { "Assignee" } th scope="col" { "Updated" } } }
                tbody {
                    @for t in &tickets {
                        tr {
                            td { a href=(format!("/console/tickets/{}", t.id)) { (t.id) } }
                            td { (t.title) }
                            td { (t.status) }
                            td { (label(&t.priority)) }
                            td { (or_dash(t.group.as_deref())) }
                            td { (or_dash(t.assignee.as_deref())) }
                            td { (time(t.updated_at)) }
                        }
                    }
                }
            } }
        }
        @if let Some(after) = &next {
            p { a href=(format!("/console/tickets?{}", page::query(&[("status", &f.status), ("priority", &f.priority), ("group", &f.group),
                ("assignee", &f.assignee), ("category", &f.category), ("requester", &f.requester), ("text", &f.text), ("after", after)]))) {
                    @match searched_to { Some(end) => { "Searched up to T-" (end) ": search the next " (TEXT_WINDOW) " tickets →" }, None => "Next page →" } } }
        } }))
        @if can_create {
            h2 { "Log a ticket" }
            form.stack #new-ticket method="post" action="/console/tickets" {
                (csrf(&user.session))
                label { "Title" input type="text" name="title" required maxlength="500"; }
                label { "Requester" input type="text" name="requester" required; }
                label { "Description" textarea name="description" rows="4" {} }
                label { "Category (optional)" input type="text" name="category"; }
                button.primary type="submit" { "Log ticket" }
            }
        }
    };
    Ok(layout("Tickets", Some(&user.session), Some(Nav::Tickets), body))
}

/// The form that logs a ticket.
#[derive(Debug, Deserialize)]
pub struct NewTicketForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    requester: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    category: String,
}

/// `POST /console/tickets`: logs the ticket (as the API does, channel `console`) and
/// goes to its page.
pub async fn create(
    State(s): State<AppState>,
    user: User,
    FormData(f): FormData<NewTicketForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/tickets")?;
    let new = NewTicket {
        title: f.title.trim().to_string(),
        requester: f.requester.trim().to_string(),
        description: f.description,
        category: some(&f.category),
        channel: Some("console".into()),
        ..Default::default()
    };
    if let Err((pointer, message)) = new.check() {
        return Err(crate::api::ApiError::invalid(&pointer, message).into());
    }
    let out = s.engine.create_ticket(new, user.name()).await?;
    Ok(Redirect::to(&format!("/console/tickets/{}", out.ticket.id)).into_response())
}

/// `GET /console/tickets/{id}`.
pub async fn show(State(s): State<AppState>, user: User, Path(id): Path<String>) -> Result<Markup, PageError> {
    let ticket = s
        .engine
        .store()
        .ticket(&id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("Ticket `{id}` does not exist.")))?;
    let sla = s.engine.sla_report(&id).await?;
    let runs =
        s.engine.store().runs(&RunFilter { ticket: Some(id.clone()), limit: Some(50), ..Default::default() }).await?;
    let explanation = s.engine.explain(&id).await?;
    let history = s.engine.store().history(&id).await?;
    let can_comment = page::may(&user, "post", "/tickets/{id}/comments");
    let fields: [(&str, Markup); 12] = [
        ("Status", html! { (ticket.status) }),
        (
            "Priority",
            html! { (label(&ticket.priority)) " (impact " (label(&ticket.impact)) ", urgency " (label(&ticket.urgency)) ")" },
        ),
        ("Kind", html! { (label(&ticket.kind)) }),
        ("Requester", html! { (ticket.requester) }),
        ("Group", or_dash(ticket.group.as_deref())),
        ("Assignee", or_dash(ticket.assignee.as_deref())),
        ("Category", or_dash(ticket.category.as_deref())),
        ("Channel", or_dash(ticket.channel.as_deref())),
        ("Logged", time(ticket.created_at)),
        ("Updated", time(ticket.updated_at)),
        ("Resolved", maybe_time(ticket.resolved_at)),
        ("Version", html! { (ticket.version) }),
    ];
    let body = html! {
        h1 { (ticket.id) ": " (ticket.title) }
        div.scroll { table {
            tbody {
                @for (name, value) in &fields { tr { th scope="row" { (name) } td { (value) } } }
                @if !ticket.links.is_empty() {
                    tr { th scope="row" { "Links" } td {
                        @for l in &ticket.links { (label(&l.kind)) " " a href=(format!("/console/tickets/{}", l.ticket)) { (l.ticket) } " " }
                    } }
                }
            }
        } }
        @if !ticket.description.is_empty() {
            h2 { "Description" }
            pre { (ticket.description) }
        }
        h2 { "SLA" }
        @match &sla {
            None => p.muted { "No SLA policy measures this ticket." },
            Some(r) => {
                p { "Policy " strong { (r.policy) } " for " (label(&r.priority)) ", calendar " (r.calendar) "." }
                div.scroll { table {
                    thead { tr { th scope="col" { "Clock" } th scope="col" { "State" } th scope="col" { "Target" } th scope="col" { "Used" } th scope="col" { "Left" } th scope="col" { "Due" } } }
                    tbody {
                        @for (name, c) in [("Response", &r.response), ("Resolution", &r.resolution)] {
                            tr {
                                td { (name) }
                                td class=(c.status) { (c.status) }
                                td { (c.target_minutes) " min" }
                                td { (c.used_minutes) " min" }
                                td { (c.remaining_minutes) " min" }
                                td { (maybe_time(c.due_at)) }
                            }
                        }
                    }
                } }
            }
        }
        h2 { "Comments" }
        @if ticket.comments.is_empty() { p.muted { "No comments." } }
        @for c in &ticket.comments {
            article.card {
                p.muted { (c.author) " · " (time(c.at)) @if c.internal { " · internal" } }
                pre { (c.body) }
            }
        }
        @if can_comment {
            form.stack method="post" action=(format!("/console/tickets/{}/comments", ticket.id)) {
                (csrf(&user.session))
                label { "Comment" textarea name="body" rows="3" required {} }
                label { span { input type="checkbox" name="internal" value="true"; " Internal note (not shown to the requester)" } }
                button.primary type="submit" { "Add comment" }
            }
        }
        h2 { "History" }
        @if history.is_empty() { p.muted { "No field has changed since the ticket was logged." } } @else {
            div.scroll { table #history {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Changes" } } }
                tbody { @for h in history.iter().rev().take(100) {
                    tr {
                        td { (time(h.at)) }
                        td { (h.actor) }
                        td { @for c in &h.changes { code { (c.field) } ": " code { (c.from) } " → " code { (c.to) } br; } }
                    }
                } }
            } }
        }
        h2 { "Runs" }
        @if runs.is_empty() { p.muted { "No workflow ran on this ticket." } } @else {
            ul { @for r in &runs {
                li { a href=(format!("/console/runs/{}", r.id)) { (r.id) } " " (r.workflow_id) " — "
                    span class=(label(&r.status)) { (label(&r.status)) } " " (time(r.created_at)) }
            } }
        }
        h2 #explain { "Why each workflow did or did not run" }
        div.scroll { table {
            thead { tr { th scope="col" { "Workflow" } th scope="col" { "Triggers" } th scope="col" { "What happened" } } }
            tbody { @for w in &explanation.workflows {
                tr {
                    td { (w.workflow) " r" (w.revision) @if !w.enabled { " (disabled)" } }
                    td { (w.triggers.join(", ")) }
                    td {
                        (w.summary)
                        @for e in w.events.iter().filter(|e| !e.checks.is_empty()).take(3) {
                            details {
                                summary { (e.event) " " (e.kind) ": " (e.outcome) }
                                ul { @for c in &e.checks {
                                    li class=(if c.result { "ok" } else { "failed" }) {
                                        code { (c.field) } " " (label(&c.op)) " "
                                        @if let Some(x) = &c.expected { code { (x) } }
                                        " — saw " code { (c.actual) }
                                    }
                                } }
                            }
                        }
                    }
                }
            } }
        } }
        h2 { "SLA policies" }
        ul { @for p in &explanation.sla_policies {
            li { strong { (p.policy) } ": " (p.why) }
        } }
    };
    Ok(layout(
        &format!("{} {}", ticket.id, ticket.title),
        Some(&user.session),
        Some(Nav::Tickets),
        crate::console::page::live(body),
    ))
}

/// The comment form.
#[derive(Debug, Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    internal: Option<String>,
}

/// `POST /console/tickets/{id}/comments`.
pub async fn comment(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<CommentForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/tickets/{id}/comments")?;
    if f.body.trim().is_empty() {
        return Err(crate::api::ApiError::invalid("/body", "a comment needs text").into());
    }
    crate::api::tickets::check_comment_size(&f.body)?;
    s.engine.add_comment(&id, &f.body, f.internal.is_some(), user.name()).await?;
    Ok(Redirect::to(&format!("/console/tickets/{id}")).into_response())
}
