//! SLA clocks: how much business time a ticket has used of its target, with pauses.
//!
//! A [`Clock`] measures one target (first response or resolution) on a business
//! [`Calendar`]. It runs, pauses (waiting on the customer or a vendor) and resumes;
//! changing the ticket's priority gives it a new target but keeps the time already
//! used and paused (the bug GLPI users report when an SLA is changed). [`Clock::check`]
//! reports each warning threshold and the breach exactly once, and [`Clock::next_due`]
//! says when the next one will happen, so a timer can be set for it instead of polling.
//!
//! Pure: the caller passes the time in.

use crate::actor::Kind;
use crate::calendar::Calendar;
use crate::condition::Condition;
use crate::ticket::Priority;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// First response or resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Time to the first response to the requester.
    Response,
    /// Time to resolution.
    Resolution,
}

impl Metric {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Response => "response",
            Metric::Resolution => "resolution",
        }
    }
}

/// Targets for one priority, in business minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// First response within.
    pub response_minutes: u32,
    /// Resolution within.
    pub resolution_minutes: u32,
}

/// An SLA policy as admins write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Identifier.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Which tickets it covers (absent: all). The first matching policy, by id, applies.
    #[serde(default)]
    pub applies_to: Option<Condition>,
    /// Business calendar id (absent: around the clock).
    #[serde(default)]
    pub calendar: Option<String>,
    /// Targets for P1..P4 (all four required).
    pub targets: BTreeMap<Priority, Targets>,
    /// While this holds (e.g. status pending), the clocks stop.
    #[serde(default)]
    pub pause_when: Option<Condition>,
    /// Percentages of the target that raise `sla.warning` (default 75).
    #[serde(default = "default_warnings")]
    pub warnings: Vec<u8>,
    /// Whose public reply (or start of work) meets the response target: `person`
    /// (default), and optionally `automation` and `integration`. A knowledge-base
    /// suggestion by a workflow then does not count as a response. Resolving the ticket
    /// stops both clocks whoever does it.
    #[serde(default = "default_responders")]
    pub response_stopped_by: Vec<Kind>,
}

fn default_warnings() -> Vec<u8> {
    vec![75]
}

fn default_responders() -> Vec<Kind> {
    vec![Kind::Person]
}

impl Policy {
    /// Checks what serde cannot; each error carries a JSON pointer.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        if !crate::team::valid_id(&self.id) {
            errors.push(("/id".into(), "id must be 1-64 characters of letters, digits, `.`, `_` or `-`".into()));
        }
        for p in [Priority::P1, Priority::P2, Priority::P3, Priority::P4] {
            match self.targets.get(&p) {
                None => errors.push(("/targets".into(), format!("targets for {p:?} are missing"))),
                Some(t) if t.response_minutes == 0 || t.resolution_minutes == 0 => {
                    errors.push((format!("/targets/{p:?}"), "targets must be at least one minute".into()))
                }
                Some(_) => {}
            }
        }
        for (i, k) in self.response_stopped_by.iter().enumerate() {
            if *k == Kind::Requester {
                errors.push((
                    format!("/response_stopped_by/{i}"),
                    "the requester's own reply never responds to them: use person, automation or integration".into(),
                ));
            }
        }
        for (i, w) in self.warnings.iter().enumerate() {
            if !(1..=99).contains(w) {
                errors.push((format!("/warnings/{i}"), "warning thresholds are percentages from 1 to 99".into()));
            }
        }
        errors
    }

    /// The target of a metric at a priority.
    pub fn target(&self, metric: Metric, priority: Priority) -> Duration {
        let t =
            self.targets.get(&priority).copied().unwrap_or(Targets { response_minutes: 60, resolution_minutes: 480 });
        Duration::minutes(match metric {
            Metric::Response => t.response_minutes,
            Metric::Resolution => t.resolution_minutes,
        } as i64)
    }
}

/// The SLA clocks of one ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketSla {
    /// The ticket.
    pub ticket_id: String,
    /// The policy measuring it.
    pub policy: String,
    /// The priority the targets were taken from.
    pub priority: Priority,
    /// First response.
    pub response: Clock,
    /// Resolution.
    pub resolution: Clock,
}

impl TicketSla {
    /// The clock of a metric.
    pub fn clock(&self, metric: Metric) -> &Clock {
        match metric {
            Metric::Response => &self.response,
            Metric::Resolution => &self.resolution,
        }
    }

    /// The clock of a metric, to change.
    pub fn clock_mut(&mut self, metric: Metric) -> &mut Clock {
        match metric {
            Metric::Response => &mut self.response,
            Metric::Resolution => &mut self.resolution,
        }
    }
}

/// Something an SLA clock crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Crossed {
    /// `percent` of the target is used.
    Warning {
        /// The threshold, e.g. 75.
        percent: u8,
    },
    /// The target is used up.
    Breached,
}

/// One SLA target being measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clock {
    /// The target, in business time (seconds).
    pub target_secs: i64,
    /// Business time used in finished running stretches (seconds).
    pub used_secs: i64,
    /// Running since (None while paused or stopped).
    pub running_since: Option<DateTime<Utc>>,
    /// Paused since (None while running or stopped).
    pub paused_since: Option<DateTime<Utc>>,
    /// Wall-clock time spent paused, for reports (seconds).
    pub paused_secs: i64,
    /// Thresholds already reported.
    pub warned: Vec<u8>,
    /// When the target was breached.
    pub breached_at: Option<DateTime<Utc>>,
    /// When the clock stopped (target met or missed).
    pub stopped_at: Option<DateTime<Utc>>,
}

impl Clock {
    /// A clock that starts running at `at`.
    pub fn start(at: DateTime<Utc>, target: Duration) -> Self {
        Self {
            target_secs: target.num_seconds(),
            used_secs: 0,
            running_since: Some(at),
            paused_since: None,
            paused_secs: 0,
            warned: Vec::new(),
            breached_at: None,
            stopped_at: None,
        }
    }

    /// Business time used by `at`.
    pub fn used(&self, at: DateTime<Utc>, cal: &Calendar) -> Duration {
        let running = self.running_since.map_or(Duration::zero(), |s| cal.between(s, at));
        Duration::seconds(self.used_secs) + running
    }

    /// Business time left by `at` (negative once breached).
    pub fn remaining(&self, at: DateTime<Utc>, cal: &Calendar) -> Duration {
        Duration::seconds(self.target_secs) - self.used(at, cal)
    }

    /// Stops counting until [`Clock::resume`]. No effect unless running.
    pub fn pause(&mut self, at: DateTime<Utc>, cal: &Calendar) {
        if let Some(since) = self.running_since.take() {
            self.used_secs += cal.between(since, at).num_seconds();
            self.paused_since = Some(at);
        }
    }

    /// Counts again. No effect unless paused.
    pub fn resume(&mut self, at: DateTime<Utc>) {
        if let Some(since) = self.paused_since.take() {
            self.paused_secs += (at - since).num_seconds().max(0);
            self.running_since = Some(at);
        }
    }

    /// A new target (the ticket's priority changed). Time used and paused is kept;
    /// thresholds already reported stay reported.
    pub fn retarget(&mut self, target: Duration) {
        self.target_secs = target.num_seconds();
    }

    /// Stops the clock for good (target met, or the ticket closed). Returns whether the
    /// target was met.
    pub fn stop(&mut self, at: DateTime<Utc>, cal: &Calendar) -> bool {
        self.pause(at, cal);
        if let Some(since) = self.paused_since.take() {
            self.paused_secs += (at - since).num_seconds().max(0);
        }
        self.stopped_at.get_or_insert(at);
        self.breached_at.is_none() && self.used_secs <= self.target_secs
    }

    /// Starts measuring again after a stop (the ticket was reopened); time used so far counts.
    pub fn reopen(&mut self, at: DateTime<Utc>) {
        if self.stopped_at.take().is_some() {
            self.running_since = Some(at);
        }
    }

    /// Whether the clock is still measuring.
    pub fn is_active(&self) -> bool {
        self.stopped_at.is_none()
    }

    /// Thresholds (percent of target) and breach crossed by `at` and not reported
    /// before, in order. Each is reported once, however often this is called.
    pub fn check(&mut self, at: DateTime<Utc>, cal: &Calendar, thresholds: &[u8]) -> Vec<Crossed> {
        if !self.is_active() {
            return Vec::new();
        }
        let used = self.used(at, cal).num_seconds();
        let mut out = Vec::new();
        let mut sorted: Vec<u8> = thresholds.to_vec();
        sorted.sort_unstable();
        for p in sorted {
            if !self.warned.contains(&p) && used * 100 >= self.target_secs * p as i64 {
                self.warned.push(p);
                out.push(Crossed::Warning { percent: p });
            }
        }
        if self.breached_at.is_none() && used >= self.target_secs {
            // The moment the target ran out, not the (possibly later) moment of the check.
            self.breached_at = Some(self.due_at(cal).map_or(at, |d| d.min(at)));
            out.push(Crossed::Breached);
        }
        out
    }

    /// When the next unreported threshold or the breach will be crossed, if the clock
    /// keeps running from `at` (None while paused or stopped, or when all is reported).
    pub fn next_due(&self, at: DateTime<Utc>, cal: &Calendar, thresholds: &[u8]) -> Option<DateTime<Utc>> {
        self.running_since?;
        let used = self.used(at, cal).num_seconds();
        let mut marks: Vec<i64> = thresholds
            .iter()
            .filter(|p| !self.warned.contains(p))
            .map(|p| (self.target_secs * *p as i64 + 99) / 100)
            .collect();
        if self.breached_at.is_none() {
            marks.push(self.target_secs);
        }
        let next = marks.into_iter().min()?;
        if next <= used {
            // Crossed already (a retarget to a shorter target, or time counted while
            // nothing was checking): due now, so it is reported at once, and once.
            return Some(at);
        }
        cal.add(at, Duration::seconds(next - used))
    }

    /// When the target runs (or ran) out: the breach time once breached, else the
    /// moment the running clock reaches its target (None while paused or stopped
    /// before a breach). Unlike "now + remaining", it does not move once passed.
    pub fn due_at(&self, cal: &Calendar) -> Option<DateTime<Utc>> {
        if let Some(b) = self.breached_at {
            return Some(b);
        }
        let since = self.running_since?;
        let left = self.target_secs - self.used_secs;
        if left <= 0 {
            return Some(since);
        }
        cal.add(since, Duration::seconds(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::CalendarSpec;
    use std::collections::BTreeMap;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn office() -> Calendar {
        let hours = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| (d.to_string(), vec![["09:00".to_string(), "17:00".to_string()]]))
            .collect::<BTreeMap<_, _>>();
        Calendar::new(&CalendarSpec { id: "o".into(), timezone: "Europe/Berlin".into(), hours, holidays: vec![] })
            .unwrap()
    }

    #[test]
    fn pausing_stops_the_count_and_records_paused_time() {
        let cal = office();
        // Mon 2 Nov 2026 09:00 CET = 08:00Z. Target 4 business hours.
        let mut c = Clock::start(utc("2026-11-02T08:00:00Z"), Duration::hours(4));
        c.pause(utc("2026-11-02T09:00:00Z"), &cal); // 1h used
        c.resume(utc("2026-11-02T11:00:00Z")); // paused 2h
        assert_eq!(c.used(utc("2026-11-02T12:00:00Z"), &cal), Duration::hours(2));
        assert_eq!(c.paused_secs, 7200);
        assert_eq!(c.remaining(utc("2026-11-02T12:00:00Z"), &cal), Duration::hours(2));
    }

    #[test]
    fn priority_change_mid_life_keeps_used_and_paused_time() {
        let cal = office();
        let mut c = Clock::start(utc("2026-11-02T08:00:00Z"), Duration::hours(8));
        c.pause(utc("2026-11-02T10:00:00Z"), &cal);
        c.resume(utc("2026-11-02T11:00:00Z"));
        // P3 -> P1 at 12:00Z: the target shrinks to 4h; 3h are already used.
        c.retarget(Duration::hours(4));
        assert_eq!(c.used(utc("2026-11-02T12:00:00Z"), &cal), Duration::hours(3));
        assert_eq!(c.paused_secs, 3600);
        assert_eq!(c.next_due(utc("2026-11-02T12:00:00Z"), &cal, &[]), Some(utc("2026-11-02T13:00:00Z")));
    }

    #[test]
    fn each_warning_and_the_breach_are_reported_exactly_once_in_order() {
        let cal = office();
        let mut c = Clock::start(utc("2026-11-02T08:00:00Z"), Duration::hours(4));
        let th = [90, 50, 75];
        assert_eq!(c.check(utc("2026-11-02T09:00:00Z"), &cal, &th), vec![]);
        assert_eq!(c.next_due(utc("2026-11-02T09:00:00Z"), &cal, &th), Some(utc("2026-11-02T10:00:00Z")));
        assert_eq!(c.check(utc("2026-11-02T10:00:00Z"), &cal, &th), vec![Crossed::Warning { percent: 50 }]);
        assert_eq!(c.check(utc("2026-11-02T10:00:00Z"), &cal, &th), vec![], "not twice");
        // Jumping past two thresholds and the breach reports all three, in order.
        assert_eq!(
            c.check(utc("2026-11-02T13:00:00Z"), &cal, &th),
            vec![Crossed::Warning { percent: 75 }, Crossed::Warning { percent: 90 }, Crossed::Breached]
        );
        assert_eq!(c.check(utc("2026-11-03T13:00:00Z"), &cal, &th), vec![]);
        assert_eq!(c.next_due(utc("2026-11-03T13:00:00Z"), &cal, &th), None);
        assert!(!c.stop(utc("2026-11-03T14:00:00Z"), &cal), "missed");
    }

    /// Regression: raising the priority past the new targets left the clock "running"
    /// with negative minutes and no timer, so no warning or breach was ever raised.
    #[test]
    fn a_retarget_past_the_thresholds_is_due_at_once_and_reported_once() {
        let cal = office();
        // Mon 2 Nov 2026 09:00 CET. 3h of an 8h target used; the ticket becomes P1 (2h).
        let mut c = Clock::start(utc("2026-11-02T08:00:00Z"), Duration::hours(8));
        let now = utc("2026-11-02T11:00:00Z");
        assert_eq!(c.check(now, &cal, &[75]), vec![]);
        c.retarget(Duration::hours(2));
        assert_eq!(c.next_due(now, &cal, &[75]), Some(now), "due at once");
        assert_eq!(c.check(now, &cal, &[75]), vec![Crossed::Warning { percent: 75 }, Crossed::Breached]);
        assert_eq!(c.check(now, &cal, &[75]), vec![], "once");
        assert_eq!(c.next_due(now, &cal, &[75]), None);
        // The breach time is when 2h were used (11:00 CET), and it stays there.
        assert_eq!(c.breached_at, Some(utc("2026-11-02T10:00:00Z")));
        assert_eq!(c.due_at(&cal), Some(utc("2026-11-02T10:00:00Z")));
    }

    /// Regression: a breached clock's due time was "now" and kept moving.
    #[test]
    fn a_breach_found_late_is_dated_when_the_target_ran_out() {
        let cal = office();
        let mut c = Clock::start(utc("2026-11-02T08:00:00Z"), Duration::hours(1));
        assert_eq!(c.due_at(&cal), Some(utc("2026-11-02T09:00:00Z")));
        // Checked only at 15:00 (the server was down): breached at 10:00 CET all the same.
        assert_eq!(c.check(utc("2026-11-02T14:00:00Z"), &cal, &[]), vec![Crossed::Breached]);
        assert_eq!(c.breached_at, Some(utc("2026-11-02T09:00:00Z")));
        assert_eq!(c.due_at(&cal), Some(utc("2026-11-02T09:00:00Z")));
    }

    #[test]
    fn due_times_follow_the_calendar_over_a_weekend_and_pauses_stop_them() {
        let cal = office();
        // Fri 6 Nov 2026 15:00 CET (14:00Z), 4h target: breach Mon 9 Nov 11:00 CET (10:00Z).
        let mut c = Clock::start(utc("2026-11-06T14:00:00Z"), Duration::hours(4));
        assert_eq!(c.next_due(utc("2026-11-06T14:00:00Z"), &cal, &[]), Some(utc("2026-11-09T10:00:00Z")));
        c.pause(utc("2026-11-06T15:00:00Z"), &cal);
        assert_eq!(c.next_due(utc("2026-11-06T15:00:00Z"), &cal, &[]), None, "no timer while paused");
        assert!(c.stop(utc("2026-11-06T15:30:00Z"), &cal), "met: 1h used of 4h");
        assert!(c.check(utc("2026-12-01T00:00:00Z"), &cal, &[50]).is_empty(), "a stopped clock reports nothing");
    }
}
