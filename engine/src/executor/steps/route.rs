//! `route`: chooses an agent in a group (skills, shifts, capacity, strategy). The
//! context — the group's agents, their open load, the round-robin cursor — is loaded
//! first; the decision is `routing::choose`, pure.

use super::{Ctx, Effect};
use crate::executor::{Engine, Result};
use crate::routing::{self, Strategy};
use crate::store::Write;
use crate::team::Agent;
use crate::ticket::fields;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What the step asks for.
pub(super) struct Request<'a> {
    pub(super) group: &'a str,
    pub(super) strategy: Strategy,
    pub(super) skills: &'a [String],
    pub(super) on_shift_only: bool,
}

/// The agents of a group: the driver locks them (with the group) before the step, and
/// hands the same list to [`execute`], so they are read once per step.
pub(in crate::executor) async fn members(engine: &Engine, group: &str) -> Result<Vec<Agent>> {
    Ok(engine.store.agents().await?.into_iter().filter(|a| a.groups.iter().any(|g| g == group)).collect())
}

/// What routing decides from: whether the group exists, its agents, their open load
/// and the group's round-robin cursor.
pub(in crate::executor) struct Context {
    group_known: bool,
    agents: Vec<Agent>,
    load: HashMap<String, u32>,
    cursor: Option<String>,
}

pub(super) async fn load(engine: &Engine, group: &str, agents: Vec<Agent>) -> Result<Context> {
    let store = &engine.store;
    if store.group(group).await?.is_none() {
        return Ok(Context { group_known: false, agents: Vec::new(), load: HashMap::new(), cursor: None });
    }
    let mut load = HashMap::new();
    for a in &agents {
        load.insert(a.id.clone(), store.open_load(&a.id).await?);
    }
    let cursor = store.round_robin_cursor(group).await?;
    Ok(Context { group_known: true, agents, load, cursor })
}

pub(super) fn plan(cx: &Ctx<'_>, req: Request<'_>, loaded: Context) -> Effect {
    let group = req.group;
    if !loaded.group_known {
        return cx.effect().fail(format!("unknown group `{group}`"));
    }
    let decision = routing::choose(&routing::Request {
        agents: &loaded.agents,
        load: &loaded.load,
        strategy: req.strategy,
        skills: req.skills,
        on_shift_only: req.on_shift_only,
        cursor: loaded.cursor.as_deref(),
    });
    let mut effect = cx.effect();
    let mut next = cx.ticket.clone();
    next.group = Some(group.to_string());
    next.updated_at = cx.now;
    let how = serde_json::to_value(req.strategy).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    match &decision.agent {
        Some(agent) => {
            if let Err(e) = fields::set(&mut next, "assignee", json!(agent), &cx.config.priority_matrix, cx.now) {
                return effect.fail(e.to_string());
            }
            effect.entry.message = format!("{how} chose {agent} in {group}");
            if let Some(c) = &decision.cursor {
                effect.writes.push(Write::RoundRobin { group: group.to_string(), agent: c.clone() });
            }
        }
        None => {
            effect.entry.outcome = "no_agent".into();
            effect.entry.message = format!("no eligible agent in {group}; left in the group queue");
        }
    }
    // For notes people read: who got it, or that no one could and what happens now.
    let summary = match &decision.agent {
        Some(agent) => format!("{agent} ({} in {group})", how.replace('_', " ")),
        None => format!(
            "no one in {group} was available (at capacity, off shift or without the skills); the ticket waits unassigned in the {group} queue"
        ),
    };
    effect.output = Some(
        json!({"group": group, "agent": decision.agent, "assigned": decision.agent.is_some(), "summary": summary}),
    );
    effect.entry.detail = serde_json::to_value(&decision).unwrap_or(Value::Null);
    effect.ticket = Some(next);
    effect
}
