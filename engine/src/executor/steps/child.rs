//! `create_child`: logs a child ticket linked to this one (fields may hold templates;
//! the requester defaults to the parent's).

use super::{Ctx, Effect, Ids};
use crate::executor::{Engine, Result};
use crate::ticket::{Link, LinkKind, NewTicket};
use serde_json::{json, Map, Value};

/// The id the child ticket gets.
pub(in crate::executor) struct Context {
    id: String,
}

pub(super) async fn load(engine: &Engine, ids: Ids) -> Result<Context> {
    let id = match ids {
        Ids::Allocate => engine.store.next_ticket_id().await?,
        Ids::Placeholder => "(new ticket)".to_string(),
    };
    Ok(Context { id })
}

pub(super) fn plan(cx: &Ctx<'_>, spec: &Map<String, Value>, loaded: Context) -> Effect {
    let mut effect = cx.effect();
    let mut spec = cx.render_value(&Value::Object(spec.clone()));
    if let Some(m) = spec.as_object_mut() {
        m.entry("requester").or_insert_with(|| json!(cx.ticket.requester));
    }
    let new: NewTicket = match serde_json::from_value(spec) {
        Ok(n) => n,
        Err(e) => return effect.fail(format!("child ticket: {e}")),
    };
    if let Err((p, m)) = new.check() {
        return effect.fail(format!("child ticket {p}: {m}"));
    }
    let id = loaded.id;
    let mut child = new.into_ticket(id.clone(), &cx.config.priority_matrix, cx.now);
    let mut next = cx.ticket.clone();
    child.links.push(Link { kind: LinkKind::Parent, ticket: next.id.clone() });
    next.links.push(Link { kind: LinkKind::Child, ticket: id.clone() });
    // Counted at once, so a `wait` for the children right after sees this one.
    next.open_children += u32::from(child.status.is_open());
    next.updated_at = cx.now;
    effect.entry.message = format!("created child {id}");
    effect.output = Some(json!({"ticket": id}));
    effect.children.push(child);
    effect.ticket = Some(next);
    effect
}
