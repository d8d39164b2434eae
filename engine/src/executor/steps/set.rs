//! `set`: writes ticket fields (values may hold templates).

use super::{Ctx, Effect};
use crate::ticket::fields;
use serde_json::{Map, Value};

pub(super) fn plan(cx: &Ctx<'_>, map: &Map<String, Value>) -> Effect {
    let mut next = cx.ticket.clone();
    for (name, value) in map {
        if let Err(e) = fields::set(&mut next, name, cx.render_value(value), &cx.config.priority_matrix, cx.now) {
            return cx.effect().fail(e.to_string());
        }
    }
    let mut effect = cx.effect();
    effect.ticket = Some(next);
    effect
}
