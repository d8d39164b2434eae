//! `assign`: puts the ticket in a group and/or on an agent, both checked to exist.

use super::{Ctx, Effect};
use crate::executor::{Engine, Result};
use crate::ticket::fields;
use serde_json::json;

/// Whether the group and the agent the step names exist.
pub(in crate::executor) struct Context {
    group_known: bool,
    agent_known: bool,
}

pub(super) async fn load(engine: &Engine, group: Option<&str>, agent: Option<&str>) -> Result<Context> {
    let group_known = match group {
        Some(g) => engine.store.group(g).await?.is_some(),
        None => true,
    };
    let agent_known = match agent {
        Some(a) => engine.store.agent(a).await?.is_some(),
        None => true,
    };
    Ok(Context { group_known, agent_known })
}

pub(super) fn plan(cx: &Ctx<'_>, group: Option<&str>, agent: Option<&str>, loaded: Context) -> Effect {
    let mut effect = cx.effect();
    let mut next = cx.ticket.clone();
    if let Some(g) = group {
        if !loaded.group_known {
            return effect.fail(format!("unknown group `{g}`"));
        }
        next.group = Some(g.to_string());
    }
    if let Some(a) = agent {
        if !loaded.agent_known {
            return effect.fail(format!("unknown agent `{a}`"));
        }
        if let Err(e) = fields::set(&mut next, "assignee", json!(a), &cx.config.priority_matrix, cx.now) {
            return effect.fail(e.to_string());
        }
    }
    next.updated_at = cx.now;
    effect.output = Some(json!({"group": next.group, "agent": next.assignee}));
    effect.ticket = Some(next);
    effect
}
