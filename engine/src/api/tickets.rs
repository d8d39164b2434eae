//! `/tickets`: log, read, change and comment on tickets.

use super::auth::Principal;
use super::extract::{JsonBody, QueryArgs};
use super::{ApiError, AppState};
use crate::executor::Outcome;
use crate::store::TicketFilter;
use crate::ticket::{NewTicket, Ticket};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// `POST /tickets` -> 201 with the ticket and the runs it started.
pub async fn create(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(mut new): JsonBody<NewTicket>,
) -> Result<(StatusCode, Json<Outcome>), ApiError> {
    // Logged through the API unless the caller says which channel (portal, phone, ...).
    new.channel.get_or_insert_with(|| "api".into());
    let out = s.engine.create_ticket(new, &who.name).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /tickets?status=&group=&assignee=&category=&priority=&kind=&requester=&external_id=&after=&limit=`
pub async fn list(
    State(s): State<AppState>,
    QueryArgs(filter): QueryArgs<TicketFilter>,
) -> Result<Json<Value>, ApiError> {
    let tickets = s.engine.store().tickets(&filter).await?;
    let next = (tickets.len() >= filter.page_size()).then(|| tickets.last().map(|t| t.id.clone())).flatten();
    Ok(Json(json!({"tickets": tickets, "next_after": next})))
}

async fn load(s: &AppState, id: &str) -> Result<Ticket, ApiError> {
    s.engine.store().ticket(id).await?.ok_or_else(|| ApiError::not_found("ticket", id))
}

/// The entity tag of a ticket: its version, quoted (RFC 9110 §8.8.3).
fn etag(t: &Ticket) -> [(HeaderName, String); 1] {
    [(header::ETAG, format!("\"{}\"", t.version))]
}

/// `GET /tickets/{id}`, with the ticket's version as its `ETag`.
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<([(HeaderName, String); 1], Json<Ticket>), ApiError> {
    let t = load(&s, &id).await?;
    Ok((etag(&t), Json(t)))
}

/// The versions an `If-Match` header accepts (RFC 9110 §13.1.1): `None` without the
/// header or for `*` (any stored version); else the listed strong tags. A weak tag
/// (`W/"3"`) never matches, as the RFC's strong comparison says.
fn if_match(headers: &HeaderMap) -> Result<Option<Vec<u64>>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "header If-Match: expected * or a list of entity tags like \"3\" (a ticket's version, from its ETag)",
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let mut versions = Vec::new();
    for tag in text.split(',').map(str::trim) {
        if tag.starts_with("W/\"") && tag.ends_with('"') && tag.len() >= 4 {
            continue;
        }
        let inner = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).ok_or_else(bad)?;
        match inner.parse::<u64>() {
            Ok(v) => versions.push(v),
            // Another server's tag, or a mangled one: it matches no version of ours.
            Err(_) if !inner.contains('"') => {}
            Err(_) => return Err(bad()),
        }
    }
    Ok(Some(versions))
}

/// `PATCH /tickets/{id}` with `{field: value, ..., "custom": {...}}`. With `If-Match`,
/// only if the ticket is still at that version (else 412 and nothing changes).
pub async fn update(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<Map<String, Value>>,
) -> Result<([(HeaderName, String); 1], Json<Outcome>), ApiError> {
    let versions = if_match(&headers)?;
    if patch.is_empty() {
        return Err(ApiError::invalid("", "patch is empty; send at least one field"));
    }
    let out = match versions {
        Some(v) => s.engine.update_ticket_if(&id, &v, &patch, &who.name).await?,
        None => s.engine.update_ticket(&id, &patch, &who.name).await?,
    };
    Ok((etag(&out.ticket), Json(out)))
}

/// Body of `POST /tickets/{id}/comments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The text.
    pub body: String,
    /// Internal note (default false: a public reply).
    #[serde(default)]
    pub internal: bool,
    /// Post on behalf of this person (a portal or mail gateway relaying the requester's
    /// reply): the comment is theirs (so `event.by_requester` holds for the requester),
    /// and the audit log records which token posted it.
    #[serde(default)]
    pub author: Option<String>,
}

/// `POST /tickets/{id}/comments` -> 201.
pub async fn comment(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(c): JsonBody<NewComment>,
) -> Result<(StatusCode, Json<Outcome>), ApiError> {
    check_comment_size(&c.body)?;
    let out = match c.author.as_deref().map(str::trim) {
        Some("") => return Err(ApiError::invalid("/author", "author must not be empty")),
        Some(author) if author != who.name => {
            s.engine.add_comment_on_behalf(&id, &c.body, c.internal, author, &who.name).await?
        }
        _ => s.engine.add_comment(&id, &c.body, c.internal, &who.name).await?,
    };
    Ok((StatusCode::CREATED, Json(out)))
}

/// Refuses a ticket comment over 64 KiB (the API and the console).
pub(crate) fn check_comment_size(body: &str) -> Result<(), ApiError> {
    if body.len() > 65536 {
        return Err(ApiError::invalid("/body", "comment is longer than 65536 bytes"));
    }
    Ok(())
}

/// `POST /tickets/{id}/links` with `{"kind": "parent|child|duplicate_of|related", "ticket": "T-2"}`.
pub async fn link(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(link): JsonBody<crate::ticket::Link>,
) -> Result<Json<Outcome>, ApiError> {
    Ok(Json(s.engine.link(&id, link, &who.name).await?))
}

/// `GET /tickets/{id}/history`: every field change, oldest first.
pub async fn history(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    load(&s, &id).await?;
    Ok(Json(json!({"history": s.engine.store().history(&id).await?})))
}

/// `GET /tickets/{id}/events`: events with the workflows each one was offered to.
pub async fn events(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    load(&s, &id).await?;
    Ok(Json(json!({"events": s.engine.store().ticket_events(&id).await?})))
}

/// `GET /tickets/{id}/explain`: why each workflow and SLA policy did or did not apply.
pub async fn explain(
    axum::extract::State(s): axum::extract::State<super::AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<crate::executor::Explanation>, super::ApiError> {
    Ok(axum::Json(s.engine.explain(&id).await?))
}
