//! Approvals: the inbox of approvals waiting for the signed-in person (as approver, or
//! acting for someone out of office), each with approve / reject and a comment.

use crate::api::AppState;
use crate::approval::Channel;
use crate::console::page::{act, csrf, layout, maybe_time, time, FormData, Nav, PageError};
use crate::console::session::User;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// `GET /console/approvals`.
pub async fn inbox(State(s): State<AppState>, user: User) -> Result<Markup, PageError> {
    let pending = s.engine.approvals(Some(user.name()), 200).await?;
    let body = html! {
        h1 { "Approvals waiting for you" }
        @if pending.is_empty() { p.muted { "Nothing waits for your decision." } }
        @for a in &pending {
            @let stage = a.stage();
            article.card {
                h2 { (a.id) ": " (stage.name) }
                p {
                    "Ticket " a href=(format!("/console/tickets/{}", a.ticket_id)) { (a.ticket_id) }
                    ", workflow " (a.workflow_id) " (run " a href=(format!("/console/runs/{}", a.run_id)) { (a.run_id) } ")."
                    " Asked " (time(a.created_at)) "; due " (maybe_time(stage.due)) "."
                }
                @for slot in stage.slots.iter().filter(|s| s.acting == user.name()) {
                    @if let Some(why) = &slot.delegation { p.muted { "You act for " (slot.approver) ": " (why) } }
                }
                form.stack method="post" action=(format!("/console/approvals/{}", a.id)) {
                    (csrf(&user.session))
                    label { "Comment (optional)" textarea name="comment" rows="2" {} }
                    div {
                        button.primary type="submit" name="decision" value="approve" { "Approve" } " "
                        button.secondary type="submit" name="decision" value="reject" { "Reject" }
                    }
                }
                details {
                    summary { "Hand it to someone else" }
                    form.filters method="post" action=(format!("/console/approvals/{}/delegate", a.id)) {
                        (csrf(&user.session))
                        label { "Delegate to" input type="text" name="to" required; }
                        label { "Why" input type="text" name="comment"; }
                        button.secondary type="submit" { "Delegate" }
                    }
                }
            }
        }
    };
    Ok(layout("Approvals", Some(&user.session), Some(Nav::Approvals), crate::console::page::live(body)))
}

/// The decision form.
#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

/// `POST /console/approvals/{id}`: decides as `POST /approvals/{id}/decisions` does.
pub async fn decide(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<DecisionForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/approvals/{id}/decisions")?;
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(crate::api::ApiError::invalid("/decision", "approve or reject").into()),
    };
    crate::api::approvals::check_comment(&f.comment)?;
    s.engine.decide(&id, user.name(), approve, &f.comment, Channel::Console, None).await?;
    Ok(Redirect::to("/console/approvals").into_response())
}

/// The delegation form.
#[derive(Debug, Deserialize)]
pub struct DelegateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    comment: String,
}

/// `POST /console/approvals/{id}/delegate`: hands the user's decision to someone else
/// (as `POST /approvals/{id}/delegate`).
pub async fn delegate(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<DelegateForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/approvals/{id}/delegate")?;
    let to = f.to.trim();
    if !crate::team::valid_id(to) {
        return Err(crate::api::ApiError::invalid("/to", "an agent or user id").into());
    }
    crate::api::approvals::check_comment(&f.comment)?;
    s.engine.delegate(&id, user.name(), to, &f.comment).await?;
    Ok(Redirect::to("/console/approvals").into_response())
}
