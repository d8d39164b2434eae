//! `assign`: puts the ticket in a group and/or on an agent, both checked to exist.

use super::{Ctx, Effect};
use crate::executor::Result;
use crate::ticket::fields;
use serde_json::json;

pub(super) async fn execute(cx: &Ctx<'_>, group: Option<&str>, agent: Option<&str>) -> Result<Effect> {
    let effect = cx.effect();
    let mut next = cx.ticket.clone();
    if let Some(g) = group {
        if cx.engine.store.group(g).await?.is_none() {
            return Ok(effect.fail(format!("unknown group `{g}`")));
        }
        next.group = Some(g.to_string());
    }
    if let Some(a) = agent {
        if cx.engine.store.agent(a).await?.is_none() {
            return Ok(effect.fail(format!("unknown agent `{a}`")));
        }
        if let Err(e) = fields::set(&mut next, "assignee", json!(a), &cx.engine.config.priority_matrix, cx.now) {
            return Ok(effect.fail(e.to_string()));
        }
    }
    next.updated_at = cx.now;
    let mut effect = effect;
    effect.output = Some(json!({"group": next.group, "agent": next.assignee}));
    effect.ticket = Some(next);
    Ok(effect)
}
