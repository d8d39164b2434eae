//! `approval`: opens an approval (stages, approvers, due times) and parks the run until
//! it is decided (`executor/approval.rs` resumes it).

use super::{Ctx, Effect, Ids};
use crate::executor::approval::{begin_approval, StageContext};
use crate::executor::{Engine, Result};
use crate::ticket::Ticket;
use serde_json::json;

/// The approval's id and what its first stage reads.
pub(in crate::executor) struct Context {
    id: String,
    stage: StageContext,
}

pub(super) async fn load(
    engine: &Engine,
    stages: &[crate::approval::StageSpec],
    ticket: &Ticket,
    ids: Ids,
) -> Result<Context> {
    let id = match ids {
        Ids::Allocate => format!("A-{}", engine.store.next_number().await?),
        Ids::Placeholder => "(new approval)".to_string(),
    };
    let stage = engine.stage_context(&stages[..stages.len().min(1)], ticket).await?;
    Ok(Context { id, stage })
}

pub(super) fn plan(cx: &Ctx<'_>, stages: &[crate::approval::StageSpec], loaded: Context) -> Effect {
    let mut effect = cx.effect();
    let (tx, approval) = match begin_approval(loaded.id, cx.run, &cx.step.id, stages, cx.ticket, cx.now, &loaded.stage)
    {
        Err(why) => return effect.fail(why),
        Ok(begun) => begun,
    };
    effect.writes.extend(tx.writes);
    let stage = approval.stage();
    let asked: Vec<String> = stage
        .slots
        .iter()
        .map(|s| match &s.delegation {
            Some(why) => format!("{} (for {}: {why})", s.acting, s.approver),
            None => s.acting.clone(),
        })
        .collect();
    effect.entry.outcome = "waiting".into();
    effect.entry.message = format!("approval {}: stage 1 ({}) asked {}", approval.id, stage.name, asked.join(", "));
    effect.entry.detail = json!({"approval": approval.id, "due": stage.due});
    effect.wait = Some(crate::run::Waiting { step: cx.step.id.clone(), deadline: None });
    effect
}
