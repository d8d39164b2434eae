//! `create_child`: logs a child ticket linked to this one (fields may hold templates;
//! the requester defaults to the parent's).

use super::{Ctx, Effect};
use crate::executor::Result;
use crate::ticket::{Link, LinkKind, NewTicket};
use serde_json::{json, Map, Value};

pub(super) async fn execute(cx: &Ctx<'_>, spec: &Map<String, Value>) -> Result<Effect> {
    let effect = cx.effect();
    let mut spec = cx.render_value(&Value::Object(spec.clone()));
    if let Some(m) = spec.as_object_mut() {
        m.entry("requester").or_insert_with(|| json!(cx.ticket.requester));
    }
    let new: NewTicket = match serde_json::from_value(spec) {
        Ok(n) => n,
        Err(e) => return Ok(effect.fail(format!("child ticket: {e}"))),
    };
    if let Err((p, m)) = new.check() {
        return Ok(effect.fail(format!("child ticket {p}: {m}")));
    }
    let id = cx.engine.store.next_ticket_id().await?;
    let mut child = new.into_ticket(id.clone(), &cx.engine.config.priority_matrix, cx.now);
    let mut next = cx.ticket.clone();
    child.links.push(Link { kind: LinkKind::Parent, ticket: next.id.clone() });
    next.links.push(Link { kind: LinkKind::Child, ticket: id.clone() });
    // Counted at once, so a `wait` for the children right after sees this one.
    next.open_children += u32::from(child.status.is_open());
    next.updated_at = cx.now;
    let mut effect = effect;
    effect.entry.message = format!("created child {id}");
    effect.output = Some(json!({"ticket": id}));
    effect.children.push(child);
    effect.ticket = Some(next);
    Ok(effect)
}
