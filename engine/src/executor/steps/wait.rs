//! `wait`: parks the run until a duration (wall-clock or business minutes on a
//! calendar) or a time (`at`) has passed, or its condition holds on a later event
//! (`executor/wait.rs` resumes it). A deadline already past goes on at once.

use super::{Ctx, Effect};
use crate::calendar::Calendar;
use crate::executor::{Engine, Result};
use crate::run::machine;
use crate::ticket::Ticket;

/// The step's timing.
pub(super) struct Spec<'a> {
    pub(super) minutes: Option<u32>,
    pub(super) business: bool,
    pub(super) at: Option<&'a str>,
    pub(super) timezone: Option<&'a str>,
    pub(super) on_timeout: Option<&'a str>,
}

/// The calendar business minutes count on (loaded only for a business-time wait).
#[derive(Default)]
pub(in crate::executor) struct Context {
    /// The named calendar, else the ticket's SLA policy's, else around the clock;
    /// `Err` names a calendar that does not exist.
    calendar: Option<std::result::Result<Calendar, String>>,
}

pub(super) async fn load(engine: &Engine, calendar: Option<&str>, ticket: &Ticket) -> Result<Context> {
    let setup = engine.sla().await?;
    let calendar = match calendar {
        Some(id) => setup.calendar_by_id(id).ok_or_else(|| format!("unknown calendar `{id}`")),
        None => Ok(engine
            .store
            .ticket_sla(&ticket.id)
            .await?
            .and_then(|s| setup.policy_calendar(&s.policy))
            .unwrap_or_else(Calendar::always)),
    };
    Ok(Context { calendar: Some(calendar) })
}

pub(super) fn plan(cx: &Ctx<'_>, spec: Spec<'_>, loaded: Context) -> Effect {
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
                    None => return effect.fail(format!("`at` rendered to `{text}`, which is not a time")),
                }
            }
        },
        Some(m) if !spec.business => Some(now + chrono::Duration::minutes(i64::from(m))),
        Some(m) => match loaded.calendar {
            Some(Ok(cal)) => cal.add(now, chrono::Duration::minutes(i64::from(m))),
            Some(Err(why)) => return effect.fail(why),
            None => return effect.fail("the wait's calendar was not loaded"),
        },
    };
    if let Some(d) = deadline.filter(|d| *d <= now) {
        // Already past: go on now, as the timer would, without parking (a parked run
        // would look idle until the timer loop got to it).
        effect.next = machine::target(spec.on_timeout, cx.def.following(cx.index));
        effect.entry.outcome = "timed_out".into();
        effect.entry.message =
            format!("{} had already passed; went to {}", d.to_rfc3339(), effect.next.as_deref().unwrap_or("end"));
        return effect;
    }
    effect.entry.outcome = "waiting".into();
    effect.entry.message = match deadline {
        Some(d) => format!("waiting until {}", d.to_rfc3339()),
        None => "waiting for its condition".into(),
    };
    effect.wait = Some(crate::run::Waiting { step: cx.step.id.clone(), deadline });
    effect
}
