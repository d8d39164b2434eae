//! `fail`: ends the run as failed, with a reason (templates allowed).

use super::{Ctx, Effect};

pub(super) fn plan(cx: &Ctx<'_>, reason: &str) -> Effect {
    cx.effect().fail(cx.render(reason))
}
