//! `resolve`: resolves the ticket, with an optional public resolution note.

use super::{Ctx, Effect};
use crate::ticket::{fields, Status};
use serde_json::json;

pub(super) fn plan(cx: &Ctx<'_>, resolution: Option<&str>) -> Effect {
    let effect = cx.effect();
    if matches!(cx.ticket.status, Status::Resolved | Status::Closed) {
        return effect.skipped(format!("already {}", cx.ticket.status));
    }
    let mut next = cx.ticket.clone();
    if let Err(e) = fields::set(&mut next, "status", json!("resolved"), &cx.config.priority_matrix, cx.now) {
        return effect.fail(e.to_string());
    }
    let mut effect = effect;
    if let Some(r) = resolution {
        effect.comment = Some(next.add_comment(&cx.author(), &cx.render(r), false, cx.now));
    }
    effect.ticket = Some(next);
    effect
}
