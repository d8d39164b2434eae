//! The workflow editor: the definition as JSON, saved as a draft with the schema's and
//! the engine's validation errors listed at their JSON pointers (the text kept as typed),
//! the draft's changes against the published revision, a dry run of the draft (or the
//! published revision) against a chosen ticket, publish, enable / disable, revisions and
//! rollback. Every action is the engine's (the same as the API's `/workflows/...`).

use crate::api::{blocking, ApiError, AppState};
use crate::console::page::{act, csrf, layout, may, time, FormData, Nav, PageError};
use crate::console::session::User;
use crate::executor::DryRun;
use crate::run::EventKind;
use crate::workflow::{validate_str, Workflow};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

/// What the page shows besides the stored state.
#[derive(Default)]
struct Shown {
    /// The text as typed, when saving it failed.
    text: Option<String>,
    /// Validation errors (pointer, message) of that text.
    errors: Vec<(String, String)>,
    /// A dry run's result and the ticket it ran against.
    dry: Option<(String, DryRun)>,
}

/// A new workflow's starting text.
fn template(id: &str) -> String {
    let def = serde_json::json!({
        "id": id, "name": id, "triggers": [{"on": "ticket.created"}],
        "steps": [{"id": "note", "type": "comment", "body": "Seen by {{workflow.id}}", "internal": true}]
    });
    serde_json::to_string_pretty(&def).unwrap_or_default()
}

fn pretty(def: &Workflow) -> String {
    serde_json::to_string_pretty(def).unwrap_or_default()
}

async fn render(s: &AppState, user: &User, id: &str, shown: Shown) -> Result<(StatusCode, Markup), PageError> {
    let record = s.engine.store().workflow(id).await?;
    let draft = match s.engine.draft(id).await {
        Ok(d) => Some(d),
        Err(crate::executor::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let revisions = s.engine.store().workflow_revisions(id).await?;
    let changes = match (&record, &draft) {
        (Some(r), Some(d)) => crate::workflow::analysis::diff(
            &serde_json::to_value(&r.definition).unwrap_or(Value::Null),
            &serde_json::to_value(d).unwrap_or(Value::Null),
        ),
        _ => Vec::new(),
    };
    let warnings: Vec<String> = match &draft {
        Some(d) => s.engine.cycles(d).await?.into_iter().map(|c| c.join(" → ")).collect(),
        None => Vec::new(),
    };
    let text = shown.text.clone().unwrap_or_else(|| match (&draft, &record) {
        (Some(d), _) => pretty(d),
        (None, Some(r)) => pretty(&r.definition),
        (None, None) => template(id),
    });
    let status = if shown.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let (can_draft, can_publish, can_dry, can_toggle, can_rollback) = (
        may(user, "put", "/workflows/{id}/draft"),
        may(user, "post", "/workflows/{id}/publish"),
        may(user, "post", "/workflows/dry-run"),
        may(user, "post", "/workflows/{id}/enable"),
        may(user, "post", "/workflows/{id}/rollback"),
    );
    let base = format!("/console/workflows/{id}");
    let body = html! {
        h1 { "Workflow " (id) }
        @match &record {
            Some(r) => p {
                "Published revision " strong { (r.revision) } ", "
                span class=(if r.enabled { "ok" } else { "muted" }) { (if r.enabled { "enabled" } else { "disabled" }) }
                ", changed " (time(r.updated_at)) " by " (r.updated_by) "."
                @if can_toggle {
                    " "
                    form.inline method="post" action=(format!("{base}/{}", if r.enabled { "disable" } else { "enable" })) {
                        (csrf(&user.session))
                        button.secondary type="submit" { (if r.enabled { "Disable" } else { "Enable" }) }
                    }
                }
            },
            None => p.muted { "Not published yet." },
        }
        @if draft.is_some() {
            p.notice { "A draft is saved" @if record.is_some() { " (" (changes.len()) " change(s) from the published revision)" } "." }
        }
        @if !shown.errors.is_empty() {
            div.notice role="alert" {
                p { strong { "Not saved: " (shown.errors.len()) " problem(s)" } }
                ul #errors { @for (pointer, message) in &shown.errors {
                    li { code { (if pointer.is_empty() { "/" } else { pointer }) } " — " (message) }
                } }
            }
        }
        @if !warnings.is_empty() {
            div.notice { "Cycles the draft closes (the loop guard stops them at run time): "
                ul { @for w in &warnings { li { (w) } } } }
        }
        h2 { "Definition" }
        @if can_draft {
            form.stack #editor method="post" action=(format!("{base}/draft")) {
                (csrf(&user.session))
                label for="definition" { "JSON (the schema is at /schema/workflow.v1.json)" }
                textarea #definition name="definition" rows="24" spellcheck="false" aria-describedby=[(!shown.errors.is_empty()).then_some("errors")] { (text) }
                button.primary type="submit" { "Save draft" }
            }
        } @else {
            pre { (text) }
        }
        @if !changes.is_empty() {
            h2 { "Draft changes from revision " (record.as_ref().map(|r| r.revision).unwrap_or(0)) }
            ul #changes { @for c in &changes {
                li { code { (c.path) } " " (c.op) }
            } }
        }
        @if draft.is_some() && can_publish {
            form.inline method="post" action=(format!("{base}/publish")) {
                (csrf(&user.session))
                button.primary type="submit" { "Publish the draft" }
            }
        }
        @if can_dry {
            h2 { "Dry run" }
            form.filters #dry-run method="post" action=(format!("{base}/dry-run")) {
                (csrf(&user.session))
                label { "Ticket" input type="text" name="ticket" required placeholder="T-1"; }
                button.secondary type="submit" { "Dry-run " (if draft.is_some() { "the draft" } else { "the published revision" }) }
            }
            @if let Some((ticket, dry)) = &shown.dry {
                section #dry-result aria-label="Dry-run result" {
                    @match &dry.run {
                        None => p { "Against " (ticket) ": " strong { "does not match" } " — " (dry.reason.as_deref().unwrap_or("")) },
                        Some(run) => {
                            p { "Against " (ticket) ": matches; the run would end " strong class=(run.status) { (run.status) }
                                @if let Some(e) = &run.error { " (" (e) ")" } "." }
                            @if !run.changes.is_empty() {
                                p { "Changes: " @for c in &run.changes { code { (c.field) } " → " code { (c.to) } " " } }
                            }
                            @for c in &run.comments { p { "Comment (" (c.step) "): " (c.body) } }
                            @for n in &run.notifications { p { "Would POST to " (n.url) } }
                            @for p in &run.plugin_calls { p { "Would call " (p.plugin) "." (p.action) " (output " (p.output_from) ")" } }
                            ol { @for e in &run.trace { li { (e.kind) @if let Some(st) = &e.step { " " code { (st) } } " — " (e.outcome) " " (e.message) } } }
                        }
                    }
                }
            }
        }
        @if !revisions.is_empty() {
            h2 { "Revisions" }
            ul { @for rev in revisions.iter().rev() {
                li {
                    "Revision " (rev)
                    @if can_rollback && record.as_ref().is_some_and(|r| r.revision != *rev) {
                        " "
                        form.inline method="post" action=(format!("{base}/rollback")) {
                            (csrf(&user.session))
                            input type="hidden" name="revision" value=(rev);
                            button.secondary type="submit" aria-label=(format!("Roll back to revision {rev}")) { "Roll back to it" }
                        }
                    }
                }
            } }
        }
    };
    Ok((status, layout(&format!("Workflow {id}"), Some(&user.session), Some(Nav::Workflows), body)))
}

/// `GET /console/workflows/{id}`.
pub async fn page(State(s): State<AppState>, user: User, Path(id): Path<String>) -> Result<Response, PageError> {
    if !crate::team::valid_id(&id) {
        return Err(PageError::new(StatusCode::BAD_REQUEST, format!("`{id}` is not a workflow id")));
    }
    Ok(render(&s, &user, &id, Shown::default()).await?.into_response())
}

/// The editor's form.
#[derive(Debug, Deserialize)]
pub struct DraftForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    definition: String,
}

/// `POST /console/workflows/{id}/draft`: validates the text; on problems the page comes
/// back (422) with the text as typed and each problem at its pointer; else the draft is
/// saved.
pub async fn save(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<DraftForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "put", "/workflows/{id}/draft")?;
    let errors: Vec<(String, String)> = match validate_str(&f.definition) {
        Ok(def) if def.id != id => {
            vec![("/id".into(), format!("the id `{}` differs from this workflow's `{id}`", def.id))]
        }
        Ok(def) => {
            s.engine.put_draft(def, user.name()).await?;
            return Ok(Redirect::to(&format!("/console/workflows/{id}")).into_response());
        }
        Err(errors) => errors.into_iter().map(|e| (e.pointer, e.message)).collect(),
    };
    let shown = Shown { text: Some(f.definition), errors, dry: None };
    Ok(render(&s, &user, &id, shown).await?.into_response())
}

/// A form with only the CSRF token and, for rollback, a revision.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    revision: Option<u32>,
    #[serde(default)]
    ticket: String,
}

/// `POST /console/workflows/{id}/publish`.
pub async fn publish(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<ActionForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/workflows/{id}/publish")?;
    s.engine.publish_draft(&id, user.name()).await?;
    Ok(Redirect::to(&format!("/console/workflows/{id}")).into_response())
}

/// `POST /console/workflows/{id}/enable` and `/disable`.
pub async fn toggle(
    State(s): State<AppState>,
    user: User,
    Path((id, action)): Path<(String, String)>,
    FormData(f): FormData<ActionForm>,
) -> Result<Response, PageError> {
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return Err(PageError::new(StatusCode::NOT_FOUND, "No such action.")),
    };
    act(&user, &f.csrf, "post", &format!("/workflows/{{id}}/{action}"))?;
    s.engine.set_enabled(&id, enabled, user.name()).await?;
    Ok(Redirect::to(&format!("/console/workflows/{id}")).into_response())
}

/// `POST /console/workflows/{id}/rollback`.
pub async fn rollback(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<ActionForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/workflows/{id}/rollback")?;
    let revision = f.revision.ok_or_else(|| PageError::from(ApiError::invalid("/revision", "which revision")))?;
    s.engine.rollback(&id, revision, user.name()).await?;
    Ok(Redirect::to(&format!("/console/workflows/{id}")).into_response())
}

/// `POST /console/workflows/{id}/dry-run`: the draft (or the published revision) against
/// a ticket, as if it had just been logged; nothing is written.
pub async fn dry_run(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<ActionForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "post", "/workflows/dry-run")?;
    let def = match s.engine.draft(&id).await {
        Ok(d) => d,
        Err(crate::executor::Error::NotFound { .. }) => {
            s.engine
                .store()
                .workflow(&id)
                .await?
                .ok_or_else(|| {
                    PageError::new(StatusCode::NOT_FOUND, "Save a draft first: there is nothing to dry-run.")
                })?
                .definition
        }
        Err(e) => return Err(e.into()),
    };
    let ticket_id = f.ticket.trim().to_string();
    let ticket =
        s.engine.store().ticket(&ticket_id).await?.ok_or_else(|| {
            PageError::from(ApiError::invalid("/ticket", format!("ticket `{ticket_id}` does not exist")))
        })?;
    let engine = s.engine.clone();
    let dry =
        blocking(
            move || async move { engine.dry_run(&def, ticket, EventKind::Created, &serde_json::Map::new()).await },
        )
        .await?;
    let shown = Shown { dry: Some((ticket_id, dry)), ..Default::default() };
    Ok(render(&s, &user, &id, shown).await?.into_response())
}
