//! Reports for the service-desk manager: volume, SLA compliance, response and
//! resolution times, first-contact resolution, reopen rate, backlog and ageing, CSAT and
//! automation deflection, over a period, overall and per group / agent / category /
//! channel, and as a series of day / week / month buckets to chart.
//!
//! Definitions (also in the README). Who did something is counted by [actor kind]
//! (`person`, `requester`, `automation`, `integration`), never by "not the requester":
//! - **in the period**: logged at or after `from` and before `to`;
//! - **status at a time**: from the ticket's history, so a report on last week does not
//!   change when a ticket is resolved today;
//! - **SLA compliance**: of the clocks that reached an outcome (stopped, or breached) by
//!   `to`, the share not breached; response and resolution separately;
//! - **time to first response / to resolve**: business minutes from the SLA clocks
//!   (paused time excluded) for stopped clocks; tickets without SLA are left out;
//! - **resolved**: logged in the period and resolved or closed at `to`;
//! - **first-contact resolution**: resolved, never reopened, with at most one public
//!   reply by a person (replies by automation or integrations, such as a knowledge-base
//!   suggestion, are not contacts: an automatic resolution is first-contact);
//! - **reopen rate**: resolved tickets that were ever reopened;
//! - **backlog**: tickets logged before `to` (in the period or not) that were open at
//!   `to`, by age at `to` (<1 d, 1–3 d, 3–7 d, 7–30 d, >30 d);
//! - **CSAT**: the `custom.csat` score (1–5, set by a survey webhook): mean and share ≥ 4;
//! - **deflection**: resolved tickets no person acted on after they were logged (every
//!   change and comment by automation, an integration or the requester); `deflected_by`
//!   counts who resolved them (`workflow:<id>`...), and `hours_saved` sums each deflected
//!   ticket's minutes saved, per category (`reports.minutes_saved`) or the default;
//! - **touches**: history entries (changes, comments) by actor kind.
//!
//! Pure: the engine gathers tickets, their history and SLA clocks; this module counts.
//!
//! [actor kind]: crate::actor::Kind

use crate::actor::{Actors, Kind};
use crate::run::HistoryEntry;
use crate::sla::{Clock, Metric, TicketSla};
use crate::ticket::{Status, Ticket};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
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
    /// Priority (`P1`...).
    Priority,
}

impl GroupBy {
    /// The name in queries and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Group => "group",
            GroupBy::Agent => "agent",
            GroupBy::Category => "category",
            GroupBy::Channel => "channel",
            GroupBy::Priority => "priority",
        }
    }
}

/// The length of the buckets of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Calendar days (midnight to midnight in the report's time zone).
    Day,
    /// ISO weeks, Monday to Monday.
    Week,
    /// Calendar months.
    Month,
}

/// Most buckets one series may have.
pub const MAX_BUCKETS: usize = 1000;

/// Minutes of work a deflected ticket saves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Savings {
    /// For tickets whose category has no figure of its own.
    pub minutes_saved_per_ticket: f64,
    /// Per category (`password = 10`, `access = 25`).
    pub minutes_saved: BTreeMap<String, f64>,
}

impl Default for Savings {
    fn default() -> Self {
        Self { minutes_saved_per_ticket: 15.0, minutes_saved: BTreeMap::new() }
    }
}

impl Savings {
    fn minutes(&self, t: &Ticket) -> f64 {
        t.category.as_ref().and_then(|c| self.minutes_saved.get(c)).copied().unwrap_or(self.minutes_saved_per_ticket)
    }

    /// Checks the figures are sensible; errors carry the setting's name.
    pub fn check(&self) -> Result<(), String> {
        let ok = |m: f64| (0.0..=10_000.0).contains(&m);
        if !ok(self.minutes_saved_per_ticket) {
            return Err("minutes_saved_per_ticket: between 0 and 10000".into());
        }
        match self.minutes_saved.iter().find(|(_, m)| !ok(**m)) {
            Some((c, _)) => Err(format!("minutes_saved.{c}: between 0 and 10000")),
            None => Ok(()),
        }
    }
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct Query {
    /// Start of the period.
    pub from: DateTime<Utc>,
    /// End of the period, exclusive.
    pub to: DateTime<Utc>,
    /// Grouping of the figures, if any.
    pub by: Option<GroupBy>,
    /// A series of buckets, if asked for.
    pub bucket: Option<Bucket>,
    /// The time zone bucket boundaries are taken in.
    pub tz: chrono_tz::Tz,
    /// Minutes saved per deflected ticket.
    pub savings: Savings,
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

impl Item<'_> {
    /// The ticket's status at `at`, from its history.
    fn status_at(&self, at: DateTime<Utc>) -> Status {
        let status = |v: &Value| serde_json::from_value::<Status>(v.clone()).ok();
        let changes = self.history.iter().flat_map(|h| h.changes.iter().map(move |c| (h.at, c)));
        let mut first_after = None;
        let mut last_before = None;
        for (when, c) in changes.filter(|(_, c)| c.field == "status") {
            if when < at {
                last_before = status(&c.to);
            } else if first_after.is_none() {
                first_after = status(&c.from);
            }
        }
        last_before.or(first_after).unwrap_or(self.ticket.status)
    }

    fn open_at(&self, at: DateTime<Utc>) -> bool {
        self.ticket.created_at < at && self.status_at(at).is_open()
    }
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
    /// Open at `to`.
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
    /// Deflection, percent of resolved.
    pub deflection_pct: Option<f64>,
    /// Who resolved the deflected tickets (`workflow:<id>`, an integration...).
    pub deflected_by: BTreeMap<String, u64>,
    /// Minutes saved by the deflected tickets, in hours.
    pub hours_saved: f64,
    /// History entries (changes and comments) by actor kind.
    pub touches: BTreeMap<&'static str, u64>,
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
    deflected_by: BTreeMap<String, u64>,
    minutes_saved: f64,
    touches: BTreeMap<&'static str, u64>,
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

/// (met, decided) of a clock as it stood at `to`: breached (by its timer, or stopped over
/// target) or met; a clock that breached or stopped later was still running then.
fn outcome(c: &Clock, to: DateTime<Utc>) -> (u64, u64) {
    match (c.breached_at.filter(|t| *t < to), stopped_by(c, to)) {
        (Some(_), _) => (0, 1),
        (None, Some(_)) if c.used_secs > c.target_secs => (0, 1),
        (None, Some(_)) => (1, 1),
        (None, None) => (0, 0),
    }
}

/// When the clock stopped, if that was before `to`.
fn stopped_by(c: &Clock, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
    c.stopped_at.filter(|t| *t < to)
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

impl Tally {
    /// Counts a ticket logged in the window ending at `to`.
    fn add(&mut self, item: &Item<'_>, to: DateTime<Utc>, actors: &Actors, savings: &Savings) {
        let t = item.ticket;
        self.volume += 1;
        if let Some(sla) = item.sla {
            let (m, d) = outcome(&sla.response, to);
            self.resp.0 += m;
            self.resp.1 += d;
            let (m, d) = outcome(&sla.resolution, to);
            self.resol.0 += m;
            self.resol.1 += d;
            if stopped_by(&sla.response, to).is_some() {
                self.resp_minutes.push(sla.response.used_secs as f64 / 60.0);
            }
            if stopped_by(&sla.resolution, to).is_some() {
                self.resol_minutes.push(sla.resolution.used_secs as f64 / 60.0);
            }
        }
        let history: Vec<&HistoryEntry> = item.history.iter().filter(|h| h.at < to && !h.changes.is_empty()).collect();
        let kind = |actor: &str| actors.kind(actor, &t.requester);
        for h in &history {
            *self.touches.entry(kind(&h.actor).as_str()).or_default() += 1;
        }
        let reopened =
            history.iter().any(|h| h.changes.iter().any(|c| c.field == "status" && c.to == json!("reopened")));
        if matches!(item.status_at(to), Status::Resolved | Status::Closed) {
            self.resolved += 1;
            let contacts =
                t.comments.iter().filter(|c| c.at < to && !c.internal && kind(&c.author) == Kind::Person).count();
            if !reopened && contacts <= 1 {
                self.fcr += 1;
            }
            if reopened {
                self.reopened += 1;
            }
            let by_person = history.iter().any(|h| kind(&h.actor) == Kind::Person)
                || t.comments.iter().any(|c| c.at < to && kind(&c.author) == Kind::Person);
            if !by_person {
                self.deflected += 1;
                self.minutes_saved += savings.minutes(t);
                let resolver = history
                    .iter()
                    .rev()
                    .find(|h| {
                        h.changes
                            .iter()
                            .any(|c| c.field == "status" && matches!(c.to.as_str(), Some("resolved" | "closed")))
                    })
                    .map(|h| h.actor.clone())
                    .unwrap_or_else(|| "(unknown)".into());
                *self.deflected_by.entry(resolver).or_default() += 1;
            }
        }
        if let Some(score) = t.custom.get("csat").and_then(Value::as_f64).filter(|s| (1.0..=5.0).contains(s)) {
            self.csat.push(score);
        }
    }

    /// Counts a ticket open at `to` (logged in the window or before it).
    fn add_open(&mut self, item: &Item<'_>, to: DateTime<Utc>) {
        self.backlog += 1;
        *self.ageing.entry(age_bucket(to - item.ticket.created_at)).or_default() += 1;
    }

    fn figures(&self) -> Figures {
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
            deflection_pct: pct(self.deflected, self.resolved),
            deflected_by: self.deflected_by.clone(),
            hours_saved: (self.minutes_saved / 60.0 * 10.0).round() / 10.0,
            touches: self.touches.clone(),
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
        GroupBy::Priority => serde_json::to_value(t.priority).ok().and_then(|v| v.as_str().map(String::from)),
    };
    v.unwrap_or_else(|| "(none)".into())
}

/// Figures of one group (an agent, a category...).
#[derive(Debug, Clone, Serialize)]
pub struct GroupFigures {
    /// What the tickets share (`(none)` when the field is empty).
    pub key: String,
    /// Their figures.
    pub figures: Figures,
}

/// Figures over one period: overall and per group.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Every ticket of the period.
    pub total: Figures,
    /// Per group, when the report is grouped (by key).
    pub groups: Vec<GroupFigures>,
}

/// One bucket of a series: its period and its figures.
#[derive(Debug, Clone, Serialize)]
pub struct BucketFigures {
    /// Start of the bucket (the report's `from` for the first).
    pub start: DateTime<Utc>,
    /// End of the bucket, exclusive (the report's `to` for the last).
    pub end: DateTime<Utc>,
    /// Its figures.
    #[serde(flatten)]
    pub window: Window,
}

/// An SLA target a ticket of the period missed.
#[derive(Debug, Clone, Serialize)]
pub struct Breach {
    pub ticket: String,
    pub title: String,
    /// `response` or `resolution`.
    pub metric: &'static str,
    pub breached_at: DateTime<Utc>,
    pub priority: crate::ticket::Priority,
    pub group: Option<String>,
    pub assignee: Option<String>,
}

/// A report: the figures of a period, optionally grouped and as a series of buckets.
/// `GET /reports` answers it as JSON (or CSV, [`csv`]); the console draws it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: Option<GroupBy>,
    pub minutes_saved_per_ticket: f64,
    pub minutes_saved: BTreeMap<String, f64>,
    /// The whole period.
    #[serde(flatten)]
    pub window: Window,
    /// SLA breaches of tickets logged in the period, oldest first.
    pub breaches: Vec<Breach>,
    /// The series' bucket length, when a series was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Bucket>,
    /// The time zone of the bucket boundaries (with a series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The buckets, oldest first (with a series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<BucketFigures>>,
}

/// Figures over `[from, to)`: overall and per key.
fn window(items: &[Item<'_>], from: DateTime<Utc>, to: DateTime<Utc>, q: &Query, actors: &Actors) -> Window {
    let mut total = Tally::default();
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    for item in items {
        let logged = item.ticket.created_at >= from && item.ticket.created_at < to;
        let open = item.open_at(to);
        if !logged && !open {
            continue;
        }
        let mut tallies = vec![&mut total];
        if let Some(by) = q.by {
            tallies.push(groups.entry(key(item.ticket, by)).or_default());
        }
        for tally in tallies {
            if logged {
                tally.add(item, to, actors, &q.savings);
            }
            if open {
                tally.add_open(item, to);
            }
        }
    }
    Window {
        total: total.figures(),
        groups: groups.iter().map(|(k, t)| GroupFigures { key: k.clone(), figures: t.figures() }).collect(),
    }
}

/// Local midnight of `date` in `tz` (the first instant of the day where midnight is skipped).
fn midnight(tz: chrono_tz::Tz, date: NaiveDate) -> DateTime<Utc> {
    (0..24)
        .find_map(|h| tz.from_local_datetime(&date.and_hms_opt(h, 0, 0)?).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// The bucket boundaries from the one holding `from` up to past `to`.
pub fn boundaries(from: DateTime<Utc>, to: DateTime<Utc>, bucket: Bucket, tz: chrono_tz::Tz) -> Vec<DateTime<Utc>> {
    let local = from.with_timezone(&tz).date_naive();
    let mut date = match bucket {
        Bucket::Day => local,
        Bucket::Week => local - Duration::days(local.weekday().num_days_from_monday() as i64),
        Bucket::Month => local.with_day(1).unwrap_or(local),
    };
    let mut out = vec![midnight(tz, date)];
    while out.last().is_some_and(|b| *b < to) && out.len() <= MAX_BUCKETS + 1 {
        date = match bucket {
            Bucket::Day => date + Duration::days(1),
            Bucket::Week => date + Duration::days(7),
            Bucket::Month => date.checked_add_months(chrono::Months::new(1)).unwrap_or(date + Duration::days(31)),
        };
        out.push(midnight(tz, date));
    }
    out
}

/// The SLA breaches of the tickets logged in the period, oldest first.
fn breaches(items: &[Item<'_>], q: &Query) -> Vec<Breach> {
    let mut out = Vec::new();
    for item in items.iter().filter(|i| i.ticket.created_at >= q.from && i.ticket.created_at < q.to) {
        let Some(sla) = item.sla else { continue };
        for metric in [Metric::Response, Metric::Resolution] {
            let c = sla.clock(metric);
            let at = c.breached_at.or(c.stopped_at.filter(|_| c.used_secs > c.target_secs));
            if let Some(at) = at.filter(|at| *at < q.to) {
                let t = item.ticket;
                out.push(Breach {
                    ticket: t.id.clone(),
                    title: t.title.clone(),
                    metric: metric.as_str(),
                    breached_at: at,
                    priority: t.priority,
                    group: t.group.clone(),
                    assignee: t.assignee.clone(),
                });
            }
        }
    }
    out.sort_by_key(|b| b.breached_at);
    out
}

/// Computes the report: `items` hold at least every ticket logged in the period or open at
/// some moment of it (earlier ones count in the backlog); any others count for nothing.
pub fn compute(items: &[Item<'_>], q: &Query, actors: &Actors) -> Report {
    let series = q.bucket.map(|bucket| {
        boundaries(q.from, q.to, bucket, q.tz)
            .windows(2)
            .map(|w| {
                let (start, end) = (w[0].max(q.from), w[1].min(q.to));
                BucketFigures { start, end, window: window(items, start, end, q, actors) }
            })
            .collect()
    });
    Report {
        from: q.from,
        to: q.to,
        group_by: q.by,
        minutes_saved_per_ticket: q.savings.minutes_saved_per_ticket,
        minutes_saved: q.savings.minutes_saved.clone(),
        window: window(items, q.from, q.to, q, actors),
        breaches: breaches(items, q),
        bucket: q.bucket,
        timezone: q.bucket.map(|_| q.tz.name().to_string()),
        series,
    }
}

/// The age buckets of the backlog, youngest first (one CSV column each).
pub const AGE_BUCKETS: [&str; 5] = ["<1d", "1-3d", "3-7d", "7-30d", ">30d"];

/// The figures of the CSV, in column order.
const COLUMNS: [&str; 17] = [
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
    "deflection_pct",
    "hours_saved",
];

/// The report as CSV: one row for the total, one per group (the first column is headed
/// by what the report is grouped by), then one column per backlog age bucket. A report
/// with a series has one such block per bucket, with the bucket's start in a first
/// `start` column.
pub fn csv(report: &Report) -> String {
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
        other => other.to_string(),
    };
    let first = report.group_by.map(|b| b.as_str()).unwrap_or("group");
    let ages: Vec<String> = AGE_BUCKETS.iter().map(|b| format!("ageing_{b}")).collect();
    let lead = if report.series.is_some() { "start," } else { "" };
    let mut out = format!("{lead}{first},{},{}\n", COLUMNS.join(","), ages.join(","));
    let mut block = |start: Option<DateTime<Utc>>, window: &Window| {
        let mut row = |name: &str, figures: &Figures| {
            let f = serde_json::to_value(figures).unwrap_or(Value::Null);
            let mut cells: Vec<String> = start.map(|s| cell(&json!(s))).into_iter().collect();
            cells.push(cell(&Value::String(name.into())));
            cells.extend(COLUMNS.iter().map(|c| cell(&f[*c])));
            cells.extend(AGE_BUCKETS.iter().map(|b| figures.ageing.get(b).copied().unwrap_or(0).to_string()));
            out.push_str(&cells.join(","));
            out.push('\n');
        };
        row("(total)", &window.total);
        for g in &window.groups {
            row(&g.key, &g.figures);
        }
    };
    match &report.series {
        Some(buckets) => buckets.iter().for_each(|b| block(Some(b.start), &b.window)),
        None => block(None, &report.window),
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
    }
}
