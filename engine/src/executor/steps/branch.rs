//! `if`: tests a condition (each comparison recorded) and jumps.

use super::{Ctx, Effect};
use crate::run::machine;
use crate::workflow::condition::Condition;

pub(super) fn plan(cx: &Ctx<'_>, condition: &Condition, then: &str, otherwise: Option<&str>) -> Effect {
    let mut effect = cx.effect();
    let mut checks = Vec::new();
    let holds = condition.evaluate(&cx.scope, &format!("/steps/{}/condition", cx.index), &mut checks);
    effect.entry.outcome = holds.to_string();
    effect.entry.checks = checks;
    let target = if holds { Some(then) } else { otherwise };
    effect.next = machine::target(target, cx.def.following(cx.index));
    effect.entry.message = format!("went to {}", effect.next.as_deref().unwrap_or("end"));
    effect
}
