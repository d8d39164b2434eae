//! Reports for the service-desk manager: volume, SLA compliance, response and
//! resolution times, first-contact resolution, reopen rate, backlog and ageing, CSAT and
//! automation deflection, over a period, overall and per group / agent / category /
//! channel.
//!
//! Definitions (also in the README):
//! - **in the period**: logged at or after `from` and before `to`;
//! - **SLA compliance**: of the clocks that reached an outcome (stopped, or breached), the
//!   share not breached; response and resolution separately;
//! - **time to first response / to resolve**: business minutes from the SLA clocks
//!   (paused time excluded) for stopped clocks; tickets without SLA are left out;
//! - **first-contact resolution**: resolved tickets, never reopened, with at most one
//!   public reply by someone other than the requester;
//! - **reopen rate**: resolved tickets that were ever reopened;
//! - **backlog**: tickets of the period still open, by age at `to` (<1 d, 1–3 d, 3–7 d,
//!   7–30 d, >30 d);
//! - **CSAT**: the `custom.csat` score (1–5, set by a survey webhook): mean and share ≥ 4;
//! - **deflection**: resolved tickets no person touched (every change by a workflow, a
//!   webhook, the SLA engine or a schedule, or by the requester), and the hours that saved
//!   at `minutes_saved_per_ticket`.
//!
//! Pure: the engine gathers tickets, their history and SLA clocks; this module counts.

use crate::run::HistoryEntry;
use crate::sla::{Clock, TicketSla};
use crate::ticket::{Status, Ticket};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Owning group.
    Group,
    /// Owning agent.
    Agent,
    /// Category.
    Category,
    /// Channel.
    Channel,
}

/// One ticket with what the report needs.
pub struct Item<'a> {
    /// The ticket now.
    pub ticket: &'a Ticket,
    /// Its field-change history.
    pub history: &'a [HistoryEntry],
    /// Its SLA clocks, if a policy measures it.
    pub sla: Option<&'a TicketSla>,
}

/// Figures for one bucket (or overall).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Tickets logged in the period.
    pub volume: u64,
    /// Response SLA: met / decided, in percent (None: nothing decided).
    pub sla_response_pct: Option<f64>,
    /// Resolution SLA: met / decided, in percent.
    pub sla_resolution_pct: Option<f64>,
    /// Mean business minutes to first response.
    pub response_mean_min: Option<f64>,
    /// Median business minutes to first response.
    pub response_median_min: Option<f64>,
    /// Mean business minutes to resolve.
    pub resolve_mean_min: Option<f64>,
    /// Median business minutes to resolve.
    pub resolve_median_min: Option<f64>,
    /// Resolved (or closed) tickets.
    pub resolved: u64,
    /// First-contact resolution, percent of resolved.
    pub fcr_pct: Option<f64>,
    /// Reopened, percent of resolved.
    pub reopen_pct: Option<f64>,
    /// Still open at `to`.
    pub backlog: u64,
    /// Open tickets by age at `to`.
    pub ageing: BTreeMap<&'static str, u64>,
    /// Tickets with a CSAT score.
    pub csat_responses: u64,
    /// Mean CSAT (1-5).
    pub csat_mean: Option<f64>,
    /// Share of CSAT scores of 4 or 5, percent.
    pub csat_satisfied_pct: Option<f64>,
    /// Resolved with no human touch.
    pub deflected: u64,
    /// `deflected` x minutes saved per ticket, in hours.
    pub hours_saved: f64,
}

#[derive(Default)]
struct Tally {
    volume: u64,
    resp: (u64, u64),
    resol: (u64, u64),
    resp_minutes: Vec<f64>,
    resol_minutes: Vec<f64>,
    resolved: u64,
    fcr: u64,
    reopened: u64,
    backlog: u64,
    ageing: BTreeMap<&'static str, u64>,
    csat: Vec<f64>,
    deflected: u64,
}

fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| (v.iter().sum::<f64>() / v.len() as f64 * 10.0).round() / 10.0)
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 })
}

/// (met, decided) of a clock: breached (by its timer, or stopped over target) or met.
fn outcome(c: &Clock) -> (u64, u64) {
    match (c.breached_at, c.stopped_at) {
        (Some(_), _) => (0, 1),
        (None, Some(_)) if c.used_secs > c.target_secs => (0, 1),
        (None, Some(_)) => (1, 1),
        (None, None) => (0, 0),
    }
}

fn age_bucket(age: Duration) -> &'static str {
    match age.num_hours() {
        h if h < 24 => "<1d",
        h if h < 72 => "1-3d",
        h if h < 168 => "3-7d",
        h if h < 720 => "7-30d",
        _ => ">30d",
    }
}

/// Whether an actor is automation (not a person).
fn automated(actor: &str) -> bool {
    ["workflow:", "webhook:", "sla:", "schedule", "expiry", "reminder"].iter().any(|p| actor.starts_with(p))
}

impl Tally {
    fn add(&mut self, item: &Item<'_>, to: DateTime<Utc>) {
        let t = item.ticket;
        self.volume += 1;
        if let Some(sla) = item.sla {
            let (m, d) = outcome(&sla.response);
            self.resp.0 += m;
            self.resp.1 += d;
            let (m, d) = outcome(&sla.resolution);
            self.resol.0 += m;
            self.resol.1 += d;
            if sla.response.stopped_at.is_some() {
                self.resp_minutes.push(sla.response.used_secs as f64 / 60.0);
            }
            if sla.resolution.stopped_at.is_some() {
                self.resol_minutes.push(sla.resolution.used_secs as f64 / 60.0);
            }
        }
        let reopened =
            item.history.iter().any(|h| h.changes.iter().any(|c| c.field == "status" && c.to == json!("reopened")));
        let resolved = matches!(t.status, Status::Resolved | Status::Closed);
        if resolved {
            self.resolved += 1;
            let replies = t.comments.iter().filter(|c| !c.internal && c.author != t.requester).count();
            if !reopened && replies <= 1 {
                self.fcr += 1;
            }
            if reopened {
                self.reopened += 1;
            }
            let human = item.history.iter().any(|h| !automated(&h.actor) && h.actor != t.requester);
            if !human {
                self.deflected += 1;
            }
        } else {
            self.backlog += 1;
            *self.ageing.entry(age_bucket(to - t.created_at)).or_default() += 1;
        }
        if let Some(score) = t.custom.get("csat").and_then(Value::as_f64).filter(|s| (1.0..=5.0).contains(s)) {
            self.csat.push(score);
        }
    }

    fn figures(&self, minutes_saved: f64) -> Figures {
        Figures {
            volume: self.volume,
            sla_response_pct: pct(self.resp.0, self.resp.1),
            sla_resolution_pct: pct(self.resol.0, self.resol.1),
            response_mean_min: mean(&self.resp_minutes),
            response_median_min: median(&self.resp_minutes),
            resolve_mean_min: mean(&self.resol_minutes),
            resolve_median_min: median(&self.resol_minutes),
            resolved: self.resolved,
            fcr_pct: pct(self.fcr, self.resolved),
            reopen_pct: pct(self.reopened, self.resolved),
            backlog: self.backlog,
            ageing: self.ageing.clone(),
            csat_responses: self.csat.len() as u64,
            csat_mean: mean(&self.csat),
            csat_satisfied_pct: pct(self.csat.iter().filter(|s| **s >= 4.0).count() as u64, self.csat.len() as u64),
            deflected: self.deflected,
            hours_saved: (self.deflected as f64 * minutes_saved / 60.0 * 10.0).round() / 10.0,
        }
    }
}

/// The key of a ticket under `by`.
fn key(t: &Ticket, by: GroupBy) -> String {
    let v = match by {
        GroupBy::Group => t.group.clone(),
        GroupBy::Agent => t.assignee.clone(),
        GroupBy::Category => t.category.clone(),
        GroupBy::Channel => t.channel.clone(),
    };
    v.unwrap_or_else(|| "(none)".into())
}

/// Computes the report over `items` (already limited to the period).
pub fn compute(
    items: &[Item<'_>],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    by: Option<GroupBy>,
    minutes_saved: f64,
) -> Value {
    let mut total = Tally::default();
    let mut buckets: BTreeMap<String, Tally> = BTreeMap::new();
    for item in items {
        total.add(item, to);
        if let Some(by) = by {
            buckets.entry(key(item.ticket, by)).or_default().add(item, to);
        }
    }
    json!({
        "from": from,
        "to": to,
        "group_by": by,
        "minutes_saved_per_ticket": minutes_saved,
        "total": total.figures(minutes_saved),
        "groups": buckets.iter().map(|(k, t)| json!({"key": k, "figures": t.figures(minutes_saved)})).collect::<Vec<_>>(),
    })
}

/// The age buckets of the backlog, youngest first (one CSV column each).
pub const AGE_BUCKETS: [&str; 5] = ["<1d", "1-3d", "3-7d", "7-30d", ">30d"];

/// The report as CSV: one row for the total, one per group (the first column is headed
/// by what the report is grouped by), then one column per backlog age bucket.
pub fn csv(report: &Value) -> String {
    const COLUMNS: [&str; 16] = [
        "volume",
        "sla_response_pct",
        "sla_resolution_pct",
        "response_mean_min",
        "response_median_min",
        "resolve_mean_min",
        "resolve_median_min",
        "resolved",
        "fcr_pct",
        "reopen_pct",
        "backlog",
        "csat_responses",
        "csat_mean",
        "csat_satisfied_pct",
        "deflected",
        "hours_saved",
    ];
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
        Value::Object(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("\"{}\"", parts.join(" "))
        }
        other => other.to_string(),
    };
    let first = report["group_by"].as_str().unwrap_or("group");
    let ages: Vec<String> = AGE_BUCKETS.iter().map(|b| format!("ageing_{b}")).collect();
    let mut out = format!("{first},{},{}\n", COLUMNS.join(","), ages.join(","));
    let mut row = |name: &str, f: &Value| {
        let mut cells: Vec<String> = COLUMNS.iter().map(|c| cell(&f[*c])).collect();
        cells.extend(AGE_BUCKETS.iter().map(|b| f["ageing"][*b].as_u64().unwrap_or(0).to_string()));
        out.push_str(&format!("{},{}\n", cell(&Value::String(name.into())), cells.join(",")));
    };
    row("(total)", &report["total"]);
    for g in report["groups"].as_array().into_iter().flatten() {
        row(g["key"].as_str().unwrap_or(""), &g["figures"]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentages() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(pct(2, 3), Some(66.7));
        assert_eq!(pct(1, 0), None);
        assert_eq!(age_bucket(Duration::hours(30)), "1-3d");
        assert!(automated("workflow:x") && automated("webhook:hr") && !automated("alice"));
    }
}
