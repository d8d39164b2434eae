//! `comment`: adds a public or internal comment written by the workflow.

use super::{Ctx, Effect};

pub(super) fn plan(cx: &Ctx<'_>, body: &str, internal: bool) -> Effect {
    let mut effect = cx.effect();
    let mut next = cx.ticket.clone();
    effect.comment = Some(next.add_comment(&cx.author(), &cx.render(body), internal, cx.now));
    effect.entry.message = format!("added {} comment", if internal { "an internal" } else { "a public" });
    effect.ticket = Some(next);
    effect
}
