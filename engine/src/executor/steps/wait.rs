//! `wait`: parks the run until a duration (wall-clock or business minutes on a
//! calendar) or a time (`at`) has passed, or its condition holds on a later event
//! (`executor/wait.rs` resumes it). A deadline already past goes on at once.

use super::{Ctx, Effect};
use crate::executor::Result;
use crate::run::machine;

/// The step's timing.
pub(super) struct Spec<'a> {
    pub(super) minutes: Option<u32>,
    pub(super) business: bool,
    pub(super) calendar: Option<&'a str>,
    pub(super) at: Option<&'a str>,
    pub(super) timezone: Option<&'a str>,
    pub(super) on_timeout: Option<&'a str>,
}

pub(super) async fn execute(cx: &Ctx<'_>, spec: Spec<'_>) -> Result<Effect> {
    let mut effect = cx.effect();
    let now = cx.now;
    let deadline = match spec.minutes {
        None => match spec.at {
            None => None,
            Some(at) => {
                let text = cx.render(at);
                let tz = spec.timezone.and_then(|t| t.parse().ok()).unwrap_or(chrono_tz::UTC);
                match crate::workflow::parse_at(&text, tz) {
                    Some(t) => Some(t),
                    None => return Ok(effect.fail(format!("`at` rendered to `{text}`, which is not a time"))),
                }
            }
        },
        Some(m) if !spec.business => Some(now + chrono::Duration::minutes(i64::from(m))),
        Some(m) => {
            let setup = cx.engine.sla().await?;
            let cal = match spec.calendar {
                Some(id) => setup.calendar_by_id(id),
                None => cx.engine.store.ticket_sla(&cx.ticket.id).await?.and_then(|s| setup.policy_calendar(&s.policy)),
            };
            let Some(cal) = cal.or_else(|| spec.calendar.is_none().then(crate::calendar::Calendar::always)) else {
                return Ok(effect.fail(format!("unknown calendar `{}`", spec.calendar.unwrap_or(""))));
            };
            cal.add(now, chrono::Duration::minutes(i64::from(m)))
        }
    };
    if let Some(d) = deadline.filter(|d| *d <= now) {
        // Already past: go on now, as the timer would, without parking (a parked run
        // would look idle until the timer loop got to it).
        effect.next = machine::target(spec.on_timeout, cx.def.following(cx.index));
        effect.entry.outcome = "timed_out".into();
        effect.entry.message =
            format!("{} had already passed; went to {}", d.to_rfc3339(), effect.next.as_deref().unwrap_or("end"));
        return Ok(effect);
    }
    effect.entry.outcome = "waiting".into();
    effect.entry.message = match deadline {
        Some(d) => format!("waiting until {}", d.to_rfc3339()),
        None => "waiting for its condition".into(),
    };
    effect.wait = Some(crate::run::Waiting { step: cx.step.id.clone(), deadline });
    Ok(effect)
}
