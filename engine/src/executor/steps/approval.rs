//! `approval`: opens an approval (stages, approvers, due times) and parks the run until
//! it is decided (`executor/approval.rs` resumes it).

use super::{Ctx, Effect};
use crate::executor::Result;
use serde_json::json;

pub(super) async fn execute(cx: &Ctx<'_>, stages: &[crate::approval::StageSpec]) -> Result<Effect> {
    let mut effect = cx.effect();
    let (tx, approval) = match cx.engine.begin_approval(cx.run, &cx.step.id, stages, cx.ticket, cx.now).await? {
        Err(why) => return Ok(effect.fail(why)),
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
    Ok(effect)
}
