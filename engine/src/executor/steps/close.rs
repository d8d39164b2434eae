//! `close`: closes the ticket.

use super::{Ctx, Effect};
use crate::ticket::{fields, Status};
use serde_json::json;

pub(super) fn plan(cx: &Ctx<'_>) -> Effect {
    let effect = cx.effect();
    if cx.ticket.status == Status::Closed {
        return effect.skipped("already closed");
    }
    let mut next = cx.ticket.clone();
    if let Err(e) = fields::set(&mut next, "status", json!("closed"), &cx.config.priority_matrix, cx.now) {
        return effect.fail(e.to_string());
    }
    let mut effect = effect;
    effect.ticket = Some(next);
    effect
}
