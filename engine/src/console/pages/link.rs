//! The signed approval link's pages, styled like the rest of the console and needing no
//! sign-in (the link is the credential): `GET` shows what the link will do — or that the
//! approval is decided already, moved on, or the link expired — and a button; only the
//! `POST` decides, so mail scanners that fetch links decide nothing. A browser's post is
//! answered with a page; an API client (no `text/html` in `Accept`) gets the approval as
//! JSON, as before.

use crate::api::approvals::{check_comment, LinkQuery, Verdict};
use crate::api::extract::QueryArgs;
use crate::api::{ApiError, AppState};
use crate::approval::{Approval, Status};
use crate::console::page::{layout, time, PageError, Params};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};

fn verb(q: &LinkQuery) -> (&'static str, bool) {
    match q.decision {
        Verdict::Approve => ("Approve", true),
        Verdict::Reject => ("Reject", false),
    }
}

/// What stands in the way of deciding through this link now, if anything.
fn settled(approval: &Approval, q: &LinkQuery) -> Option<Markup> {
    if approval.status != Status::Pending {
        let outcome = if approval.status == Status::Approved { "approved" } else { "rejected" };
        return Some(html! {
            p.notice role="status" { "Approval " (approval.id) " is already " strong { (outcome) }
                @if let Some(at) = approval.closed_at { " (" (time(at)) ")" } ". Nothing is left to decide." }
        });
    }
    if approval.current != q.stage {
        return Some(
            html! { p.notice role="status" { "This link was for an earlier stage; the approval has moved on to "
            strong { (approval.stage().name) } "." } },
        );
    }
    let slot = approval.stage().slots.iter().find(|s| s.acting == q.approver || s.approver == q.approver)?;
    let d = slot.decision.as_ref()?;
    Some(html! {
        p.notice role="status" { (d.by) " already " strong { (if d.approve { "approved" } else { "rejected" }) }
            " (" (time(d.at)) "). A decision is recorded once." }
    })
}

async fn frame(s: &AppState, approval: &Approval, q: &LinkQuery, inner: Markup) -> Result<Markup, PageError> {
    let ticket = s.engine.store().ticket(&approval.ticket_id).await?;
    let stage = approval.stages.get(q.stage).map(|st| st.name.as_str()).unwrap_or_default();
    let body = html! {
        h1 { "Approval " (approval.id) }
        dl.fields {
            dt { "Ticket" } dd { @match &ticket { Some(t) => { (t.id) ": " (t.title) }, None => { (approval.ticket_id) } } }
            dt { "Stage" } dd { (stage) }
            dt { "Asked of" } dd { (q.approver) }
        }
        (inner)
    };
    Ok(layout(&format!("Approval {}", approval.id), None, None, body))
}

/// `GET /approvals/{id}/decide?...`: the confirmation page.
pub async fn confirm(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Params(q): Params<LinkQuery>,
) -> Result<Markup, PageError> {
    let (verb, approve) = verb(&q);
    let link =
        crate::approval::Link { approval: &id, stage: q.stage, approver: &q.approver, approve, expires: q.expires };
    s.engine.check_link(&link, &q.sig)?;
    let approval = s.engine.approval(&id).await?;
    let inner = match settled(&approval, &q) {
        Some(done) => done,
        None => html! {
            form.stack method="post" {
                label { "Comment (optional)" textarea name="comment" rows="3" maxlength="10000" {} }
                button.primary type="submit" { (verb) " as " (q.approver) }
            }
        },
    };
    frame(&s, &approval, &q, inner).await
}

/// `POST /approvals/{id}/decide?...`: records the link's decision once.
pub async fn decide(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<QueryArgs<LinkQuery>, ApiError>,
    body: axum::body::Bytes,
) -> Response {
    let page = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    // A link that does not parse: a page for a browser, the API's JSON error otherwise.
    let q = match query {
        Ok(QueryArgs(q)) => q,
        Err(e) if page => return PageError::from(e).into_response(),
        Err(e) => return e.into_response(),
    };
    let outcome = record(&s, &id, &q, &body).await;
    match (outcome, page) {
        (Ok(approval), false) => Json(approval).into_response(),
        (Err(e), false) => e.into_response(),
        (Ok(approval), true) => {
            let (verb, _) = verb(&q);
            let done = html! { p.notice role="status" { "Thank you: " (verb.to_lowercase()) "d as " (q.approver) "."
            @if approval.status != Status::Pending { " The approval is now " strong { (crate::console::page::label(&approval.status)) } "." } } };
            frame(&s, &approval, &q, done).await.into_response()
        }
        (Err(e), true) => {
            // Say why on a page: already decided, moved on, expired, not this approver.
            let approval = s.engine.approval(&id).await.ok();
            match approval.as_ref().and_then(|a| Some((a, settled(a, &q)?))) {
                Some((approval, inner)) => (e.status, frame(&s, approval, &q, inner).await).into_response(),
                None => PageError::from(e).into_response(),
            }
        }
    }
}

async fn record(s: &AppState, id: &str, q: &LinkQuery, body: &[u8]) -> Result<Approval, ApiError> {
    // The confirmation form posts `comment=...` (urlencoded); an API client may use the query.
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let comment = form.into_iter().find(|(k, _)| k == "comment").map(|(_, v)| v).unwrap_or_else(|| q.comment.clone());
    check_comment(&comment)?;
    let (_, approve) = verb(q);
    s.engine.decide_by_link(id, q.stage, &q.approver, approve, q.expires, &q.sig, &comment).await.map_err(|e| {
        tracing::warn!(approval = %id, approver = %q.approver, error = %e, "signed link refused");
        e.into()
    })
}
