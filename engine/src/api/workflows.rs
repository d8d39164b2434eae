//! `/workflows`: publish (validated), read, enable/disable, start by hand.

use super::auth::Principal;
use super::extract::JsonBody;
use super::extract::JsonText;
use super::{blocking, ApiError, AppState};
use crate::workflow::{validate_value, Workflow, WorkflowRecord};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

fn validated(body: &Bytes) -> Result<Workflow, ApiError> {
    let value = super::extract::parse_object(body)?;
    validate_value(&value)
        .map_err(|errs| ApiError::invalid_all(errs.into_iter().map(|e| (e.pointer, e.message)).collect()))
}

/// `GET /workflows`
pub async fn list(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"workflows": s.engine.store().workflows().await?})))
}

/// `POST /workflows` (admin): validate and publish; 201 for a new workflow, 200 for a
/// new revision (or an unchanged one). Invalid: 422 listing every error with its pointer.
pub async fn create(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonText(body): JsonText,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let def = validated(&body)?;
    let warnings = cycle_warnings(&s, &def).await?;
    let (record, changed) = s.engine.put_workflow(def, &who.name).await?;
    let status = if record.revision == 1 && changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"workflow": record, "changed": changed, "warnings": warnings}))))
}

/// A body validated for the workflow `id` (its id must match the URL), with the
/// cycles it would close.
async fn validated_for(s: &AppState, id: &str, body: &Bytes) -> Result<(Workflow, Vec<String>), ApiError> {
    let def = validated(body)?;
    if def.id != id {
        return Err(ApiError::invalid("/id", format!("body id `{}` differs from the URL's `{id}`", def.id)));
    }
    let warnings = cycle_warnings(s, &def).await?;
    Ok((def, warnings))
}

/// Cycles the definition closes, as messages (publishing refuses them instead when
/// `on_cycle = "refuse"`).
async fn cycle_warnings(s: &AppState, def: &Workflow) -> Result<Vec<String>, ApiError> {
    Ok(s.engine
        .cycles(def)
        .await?
        .into_iter()
        .map(|c| {
            format!(
                "cycle: {} (each writes what the next one's trigger watches; the loop guard will stop it at run time)",
                c.join(" -> ")
            )
        })
        .collect())
}

/// `GET /workflows/{id}/revisions`: the revision numbers kept.
pub async fn revisions(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let revisions = s.engine.store().workflow_revisions(&id).await?;
    if revisions.is_empty() {
        return Err(ApiError::not_found("workflow", &id));
    }
    Ok(Json(json!({"workflow": id, "revisions": revisions})))
}

/// Query of `GET /workflows/{id}/diff`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The older revision.
    pub from: u32,
    /// The newer revision (default: the current one).
    pub to: Option<u32>,
}

/// `GET /workflows/{id}/diff?from=1&to=3`: differences by JSON pointer.
pub async fn diff(
    State(s): State<AppState>,
    Path(id): Path<String>,
    super::extract::QueryArgs(q): super::extract::QueryArgs<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    let to = match q.to {
        Some(t) => t,
        None => s.engine.store().workflow(&id).await?.ok_or_else(|| ApiError::not_found("workflow", &id))?.revision,
    };
    Ok(Json(json!({"workflow": id, "from": q.from, "to": to, "changes": s.engine.diff(&id, q.from, to).await?})))
}

/// Body of `POST /workflows/{id}/rollback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The revision to publish again.
    pub revision: u32,
}

/// `POST /workflows/{id}/rollback` (admin): publishes an old revision as a new one;
/// runs already started stay on the revision they started with.
pub async fn rollback(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RollbackBody>,
) -> Result<Json<Value>, ApiError> {
    let (record, changed) = s.engine.rollback(&id, body.revision, &who.name).await?;
    Ok(Json(json!({"workflow": record, "changed": changed})))
}

/// `PUT /workflows/{id}` (admin): like POST, but the body's id must match the URL.
pub async fn replace(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonText(body): JsonText,
) -> Result<Json<Value>, ApiError> {
    let (def, warnings) = validated_for(&s, &id, &body).await?;
    let (record, changed) = s.engine.put_workflow(def, &who.name).await?;
    Ok(Json(json!({"workflow": record, "changed": changed, "warnings": warnings})))
}

/// `POST /workflows/validate`: `{valid, errors}` without storing anything.
pub async fn validate(JsonText(body): JsonText) -> Result<Json<Value>, ApiError> {
    let value = super::extract::parse_object(&body)?;
    Ok(Json(match validate_value(&value) {
        Ok(_) => json!({"valid": true, "errors": []}),
        Err(errs) => json!({"valid": false, "errors": errs}),
    }))
}

/// `GET /workflows/{id}`
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<WorkflowView>, ApiError> {
    let record = s.engine.store().workflow(&id).await?.ok_or_else(|| ApiError::not_found("workflow", &id))?;
    let schedule = s.engine.schedule_info(&record).await?;
    Ok(Json(WorkflowView { record, schedule }))
}

/// A workflow as `GET /workflows/{id}` answers it: the record, and for a scheduled
/// workflow its next occurrences.
#[derive(serde::Serialize)]
pub struct WorkflowView {
    /// The record.
    #[serde(flatten)]
    pub record: WorkflowRecord,
    /// Its schedule, when it has a schedule trigger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::executor::ScheduleInfo>,
}

/// `GET /workflows/{id}/revisions/{revision}`
pub async fn revision(
    State(s): State<AppState>,
    Path((id, revision)): Path<(String, u32)>,
) -> Result<Json<Workflow>, ApiError> {
    s.engine
        .store()
        .workflow_revision(&id, revision)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("workflow revision", &format!("{id}@{revision}")))
}

/// `POST /workflows/{id}/enable` (admin)
pub async fn enable(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<WorkflowRecord>, ApiError> {
    Ok(Json(s.engine.set_enabled(&id, true, &who.name).await?))
}

/// `POST /workflows/{id}/disable` (admin)
pub async fn disable(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<WorkflowRecord>, ApiError> {
    Ok(Json(s.engine.set_enabled(&id, false, &who.name).await?))
}

/// Body of `POST /workflows/{id}/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// The ticket to run on; absent for a scheduled workflow, which then runs now as
    /// if its schedule had fired.
    #[serde(default)]
    pub ticket: Option<String>,
    /// Available to the run as `vars.input`.
    #[serde(default)]
    pub input: Value,
}

/// `POST /workflows/{id}/runs`: start a workflow with a `manual` trigger on a ticket, or
/// a scheduled one now (no ticket) -> 202.
pub async fn start(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Start>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(ticket) = body.ticket else {
        if !body.input.is_null() {
            return Err(ApiError::invalid("/input", "a scheduled run takes no input"));
        }
        let runs = s.engine.run_schedule_now(&id, &who.name).await?;
        return Ok((StatusCode::ACCEPTED, Json(json!({"runs": runs}))));
    };
    let out = s.engine.start_manual(&id, &ticket, body.input, &who.name).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"event": out.event, "runs": out.runs}))))
}

/// The definition a dry run or replay uses: given inline (validated, errors under
/// `/workflow`), a saved draft's, or a published workflow's.
async fn definition_from(
    s: &AppState,
    workflow: Option<&Value>,
    id: Option<&str>,
    draft: Option<&str>,
) -> Result<Workflow, ApiError> {
    if let Some(id) = draft {
        if workflow.is_some() || id.is_empty() {
            return Err(ApiError::invalid("/draft", "give one of `workflow`, `workflow_id` or `draft`"));
        }
        return Ok(s.engine.draft(id).await?);
    }
    match (workflow, id) {
        (Some(v), None) => validate_value(v).map_err(|errs| {
            ApiError::invalid_all(errs.into_iter().map(|e| (format!("/workflow{}", e.pointer), e.message)).collect())
        }),
        (None, Some(id)) => {
            Ok(s.engine.store().workflow(id).await?.ok_or_else(|| ApiError::not_found("workflow", id))?.definition)
        }
        _ => Err(ApiError::invalid("/workflow", "give `workflow` (a definition) or `workflow_id`, not both")),
    }
}

/// Body of `POST /workflows/dry-run`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunBody {
    /// A definition (e.g. a draft), validated like a publish.
    #[serde(default)]
    pub workflow: Option<Value>,
    /// Or the id of a published workflow.
    #[serde(default)]
    pub workflow_id: Option<String>,
    /// Or the id of a workflow whose saved draft to use.
    #[serde(default)]
    pub draft: Option<String>,
    /// A ticket id, or a ticket given inline (the fields of `POST /tickets`); absent
    /// for a scheduled workflow: as if its schedule fired now.
    #[serde(default)]
    pub ticket: Value,
    /// The event to simulate (default `ticket.created`).
    #[serde(default)]
    pub event: Option<crate::run::EventKind>,
    /// Plugin outputs by step id (default: the last recorded output of that step).
    #[serde(default)]
    pub plugin_outputs: serde_json::Map<String, Value>,
}

/// `POST /workflows/dry-run` (admin, integrator): what a definition would do to a
/// ticket, with no side effects (nothing stored, no plugin or webhook called).
pub async fn dry_run(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<DryRunBody>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let def = definition_from(&s, body.workflow.as_ref(), body.workflow_id.as_deref(), body.draft.as_deref()).await?;
    let ticket = match &body.ticket {
        Value::Null if body.event.is_none() => {
            let (engine, outputs) = (s.engine.clone(), body.plugin_outputs);
            let dry = blocking(move || async move { engine.dry_run_schedule(&def, &outputs).await }).await?;
            return Ok(Json(dry).into_response());
        }
        Value::String(id) => s.engine.store().ticket(id).await?.ok_or_else(|| ApiError::not_found("ticket", id))?,
        Value::Object(_) => {
            let new: crate::ticket::NewTicket = serde_path_to_error::deserialize(body.ticket.clone()).map_err(|e| {
                ApiError::invalid(&format!("/ticket{}", crate::json::pointer_of(e.path())), e.inner().to_string())
            })?;
            new.check().map_err(|(p, m)| ApiError::invalid(&format!("/ticket{p}"), m))?;
            new.into_ticket("T-dry-run".into(), &s.engine.config().priority_matrix, s.engine.clock_now())
        }
        _ => return Err(ApiError::invalid("/ticket", "a ticket id or a ticket object")),
    };
    let event = body.event.unwrap_or(crate::run::EventKind::Created);
    let (engine, outputs) = (s.engine.clone(), body.plugin_outputs);
    let dry = blocking(move || async move { engine.dry_run(&def, ticket, event, &outputs).await }).await?;
    Ok(Json(dry).into_response())
}

/// Body of `POST /workflows/replay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// A definition (e.g. a draft of a published workflow, same id).
    #[serde(default)]
    pub workflow: Option<Value>,
    /// Or the id of a published workflow.
    #[serde(default)]
    pub workflow_id: Option<String>,
    /// Or the id of a workflow whose saved draft to use.
    #[serde(default)]
    pub draft: Option<String>,
    /// Tickets logged in the last this many days (default 7, at most 90).
    #[serde(default)]
    pub days: Option<u32>,
}

/// `POST /workflows/replay` (admin, integrator): a definition run dry against each
/// ticket of the last N days as it was when logged, beside what happened.
pub async fn replay(State(s): State<AppState>, JsonBody(body): JsonBody<ReplayBody>) -> Result<Json<Value>, ApiError> {
    let def = definition_from(&s, body.workflow.as_ref(), body.workflow_id.as_deref(), body.draft.as_deref()).await?;
    let days = body.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::invalid("/days", "between 1 and 90"));
    }
    let engine = s.engine.clone();
    blocking(move || async move { engine.replay(&def, days).await }).await.map(Json)
}

/// `PUT /workflows/{id}/draft` (admin): save a draft (validated; not active).
pub async fn put_draft(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonText(body): JsonText,
) -> Result<Json<Value>, ApiError> {
    let (def, warnings) = validated_for(&s, &id, &body).await?;
    let draft = s.engine.put_draft(def, &who.name).await?;
    let changes = match s.engine.store().workflow(&id).await? {
        Some(current) => crate::workflow::analysis::diff(
            &serde_json::to_value(&current.definition).unwrap_or(Value::Null),
            &serde_json::to_value(&draft).unwrap_or(Value::Null),
        ),
        None => Vec::new(),
    };
    Ok(Json(json!({"draft": draft, "changes_from_published": changes, "warnings": warnings})))
}

/// `GET /workflows/{id}/draft`.
pub async fn get_draft(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Workflow>, ApiError> {
    Ok(Json(s.engine.draft(&id).await?))
}

/// `POST /workflows/{id}/publish` (admin): the draft becomes a new revision.
pub async fn publish(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (record, changed) = s.engine.publish_draft(&id, &who.name).await?;
    Ok(Json(json!({"workflow": record, "changed": changed})))
}
