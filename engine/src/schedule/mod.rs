//! Cron schedules in a time zone, and what to do about occurrences missed while the
//! server was down.
//!
//! Expressions follow crontab (see [`crontab`] for the fields, numbering, the
//! day-of-month / day-of-week rule and the shortcuts). Times are local to the
//! schedule's IANA zone, so `0 8 * * 1-5` in `Europe/Berlin` fires at 07:00 UTC in
//! winter and 06:00 UTC in summer.
//!
//! Across DST changes: a local time that does not exist on the day clocks go forward is
//! skipped that day; a local time that happens twice on the day they go back fires once,
//! at its first occurrence. The next occurrence is always strictly after the instant
//! asked about, wherever in a repeated hour that instant lies.
//!
//! The engine keeps one durable timer per scheduled workflow, due at the next occurrence,
//! and remembers the last occurrence it fired. When the timer fires it asks
//! [`Compiled::plan`] for the occurrences after that one up to now and applies the
//! trigger's [`CatchUp`] policy to those that are more than [`GRACE`] late.

pub mod crontab;

use chrono::{DateTime, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// An occurrence at most this late is on time; later ones count as missed (downtime).
pub const GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// The most missed occurrences `catch_up: all` replays in one go; older ones are dropped
/// (and the drop is logged), so a schedule of every minute after a month offline does not
/// start 43,200 runs.
pub const MAX_CATCH_UP: usize = 1000;

/// How many occurrences [`Compiled::plan`] walks one by one before it jumps to the present.
pub const SCAN_LIMIT: usize = 100_000;

/// What to do with occurrences missed while the server was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Fire one run for all missed occurrences together (the default).
    #[default]
    Once,
    /// Fire one run per missed occurrence (at most [`MAX_CATCH_UP`]).
    All,
    /// Fire nothing for missed occurrences; wait for the next one.
    Skip,
}

/// A parsed expression with its zone.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// One schedule, or two whose union it is (day of month OR day of week).
    schedules: Vec<cron::Schedule>,
    tz: Tz,
}

/// Why a schedule does not parse; `field` is `cron` or `timezone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    /// The member at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// One occurrence to fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The occurrence (the latest one when several missed ones are fired together).
    pub scheduled_for: DateTime<Utc>,
    /// How many occurrences this firing stands for (more than 1 only for `once`).
    pub occurrences: usize,
    /// Whether it was missed (fired by catch-up) rather than on time.
    pub missed: bool,
}

/// An occurrence as people read it: the instant in UTC and on the schedule's wall clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    /// The instant.
    pub utc: DateTime<Utc>,
    /// Local time with its offset, e.g. `2026-10-25T02:30:00+02:00`.
    pub local: String,
    /// The zone's abbreviation then, e.g. `CEST`.
    pub zone: String,
    /// The local weekday, e.g. `Sunday`.
    pub weekday: String,
}

/// What [`Compiled::plan`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Runs to start.
    pub firings: Vec<Firing>,
    /// Missed occurrences dropped (by `skip`, or beyond [`MAX_CATCH_UP`]).
    pub skipped: usize,
    /// Occurrences more than [`GRACE`] late (fired by catch-up or dropped).
    pub missed: usize,
    /// When the timer should fire next (`None`: the expression has no future occurrence).
    pub next: Option<DateTime<Utc>>,
}

impl Compiled {
    /// Parses an expression and a zone name.
    pub fn new(expr: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let tz = Tz::from_str(timezone).map_err(|_| ScheduleError {
            field: "timezone",
            message: format!("`{timezone}` is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)"),
        })?;
        let invalid = |why: String| ScheduleError {
            field: "cron",
            message: format!("`{expr}` is not a crontab expression: {why}"),
        };
        let parsed = crontab::Crontab::parse(expr).map_err(invalid)?;
        let schedules = parsed
            .crate_expressions()
            .iter()
            .map(|e| cron::Schedule::from_str(e).map_err(|e| invalid(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let compiled = Self { schedules, tz };
        // An expression that matches nothing (e.g. 30 February) is an error, not a silent no-op.
        if compiled.next_after(DateTime::UNIX_EPOCH).is_none() {
            return Err(ScheduleError { field: "cron", message: format!("`{expr}` never fires") });
        }
        Ok(compiled)
    }

    /// The zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// `t` on this schedule's wall clock.
    pub fn occurrence(&self, t: DateTime<Utc>) -> Occurrence {
        let local = t.with_timezone(&self.tz);
        Occurrence {
            utc: t,
            local: local.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            zone: local.format("%Z").to_string(),
            weekday: local.format("%A").to_string(),
        }
    }

    /// The next `n` occurrences after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<Occurrence> {
        std::iter::successors(self.next_after(t), |c| self.next_after(*c)).take(n).map(|c| self.occurrence(c)).collect()
    }

    /// The first occurrence strictly after `t`. The crate walks local wall-clock
    /// time, so near a repeated hour it can offer an instant at or before `t` (the
    /// first pass of a local time when `t` is in the second): those are passed over.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.schedules
            .iter()
            .filter_map(|s| s.after(&local).map(|c| c.with_timezone(&Utc)).find(|c| *c > t && !self.repeated(c)))
            .min()
    }

    /// Whether `c` is the second instance of a local time that happens twice (DST end).
    fn repeated(&self, c: &DateTime<Utc>) -> bool {
        match self.tz.from_local_datetime(&c.with_timezone(&self.tz).naive_local()) {
            LocalResult::Ambiguous(first, _) => first != *c,
            _ => false,
        }
    }

    /// Occurrences in `[from, until]`, oldest first, at most `cap + 1` of them (so the
    /// caller can tell the list was cut).
    pub fn between(&self, from: DateTime<Utc>, until: DateTime<Utc>, cap: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from - chrono::Duration::nanoseconds(1);
        while out.len() <= cap {
            match self.next_after(cursor) {
                Some(t) if t <= until => {
                    out.push(t);
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }

    /// Decides what a timer that was due at `due` does at `now` under `policy`.
    /// Occurrences at or before `last_fired` never fire again, and [`Plan::next`] is
    /// always after `now`, so a timer cannot fire the same occurrence twice.
    ///
    /// Counting missed occurrences stops being exact after [`SCAN_LIMIT`] of them (a
    /// per-second schedule after days offline); the count is then a lower bound.
    pub fn plan(
        &self,
        due: DateTime<Utc>,
        last_fired: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        policy: CatchUp,
    ) -> Plan {
        let mut missed_count = 0usize;
        let mut recent = std::collections::VecDeque::with_capacity(MAX_CATCH_UP);
        let mut on_time = Vec::new();
        let mut cursor = (due - chrono::Duration::nanoseconds(1)).max(last_fired.unwrap_or(DateTime::UNIX_EPOCH));
        let mut scanned = 0usize;
        while let Some(t) = self.next_after(cursor).filter(|t| *t <= now) {
            if now - t <= GRACE {
                on_time.push(t);
            } else {
                missed_count += 1;
                if recent.len() == MAX_CATCH_UP {
                    recent.pop_front();
                }
                recent.push_back(t);
            }
            cursor = t;
            scanned += 1;
            if scanned == SCAN_LIMIT && cursor < now - GRACE {
                cursor = now - GRACE - chrono::Duration::nanoseconds(1);
            }
        }
        let missed = |t: &DateTime<Utc>| Firing { scheduled_for: *t, occurrences: 1, missed: true };
        let (mut firings, skipped) = match policy {
            CatchUp::Once => match recent.back() {
                Some(last) => (vec![Firing { occurrences: missed_count, ..missed(last) }], 0),
                None => (Vec::new(), 0),
            },
            CatchUp::All => (recent.iter().map(missed).collect(), missed_count - recent.len()),
            CatchUp::Skip => (Vec::new(), missed_count),
        };
        firings.extend(on_time.iter().map(|t| Firing { scheduled_for: *t, occurrences: 1, missed: false }));
        Plan {
            firings,
            skipped,
            missed: missed_count,
            next: self.next_after(now).map(|n| n.max(now + chrono::Duration::seconds(1))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn weekday_morning_in_two_zones_follows_each_zones_dst() {
        let berlin = Compiled::new("0 8 * * Mon-Fri", "Europe/Berlin").unwrap();
        let ny = Compiled::new("0 8 * * Mon-Fri", "America/New_York").unwrap();
        // Friday 2026-03-27: Berlin is still on CET (UTC+1); New York already on EDT (UTC-4).
        assert_eq!(berlin.next_after(utc("2026-03-27T00:00:00Z")), Some(utc("2026-03-27T07:00:00Z")));
        assert_eq!(ny.next_after(utc("2026-03-27T00:00:00Z")), Some(utc("2026-03-27T12:00:00Z")));
        // After Friday 08:00 comes Monday 08:00, now CEST (UTC+2) in Berlin.
        assert_eq!(berlin.next_after(utc("2026-03-27T07:00:00Z")), Some(utc("2026-03-30T06:00:00Z")));
    }

    #[test]
    fn repeated_local_time_fires_once_and_missing_one_is_skipped() {
        // 2026-10-25 02:30 happens twice in Berlin; 2026-03-29 02:30 does not exist.
        let s = Compiled::new("30 2 * * *", "Europe/Berlin").unwrap();
        let autumn = s.between(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), 10);
        assert_eq!(autumn, vec![utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]);
        let spring = s.between(utc("2026-03-28T12:00:00Z"), utc("2026-03-30T12:00:00Z"), 10);
        assert_eq!(spring, vec![utc("2026-03-30T00:30:00Z")]);
    }

    #[test]
    fn catch_up_policies() {
        let s = Compiled::new("0 * * * *", "UTC").unwrap();
        let due = utc("2026-01-01T10:00:00Z");
        let now = utc("2026-01-01T13:00:20Z"); // down from 09:59 to 13:00:20
        let once = s.plan(due, None, now, CatchUp::Once);
        assert_eq!(
            once.firings,
            vec![
                Firing { scheduled_for: utc("2026-01-01T12:00:00Z"), occurrences: 3, missed: true },
                Firing { scheduled_for: utc("2026-01-01T13:00:00Z"), occurrences: 1, missed: false },
            ]
        );
        assert_eq!(once.next, Some(utc("2026-01-01T14:00:00Z")));
        let all = s.plan(due, None, now, CatchUp::All);
        assert_eq!(all.firings.len(), 4);
        assert!(all.firings[..3].iter().all(|f| f.missed && f.occurrences == 1));
        let skip = s.plan(due, None, now, CatchUp::Skip);
        assert_eq!(skip.firings.len(), 1);
        assert_eq!(skip.skipped, 3);
        assert!(!skip.firings[0].missed);
    }

    #[test]
    fn all_is_capped() {
        let s = Compiled::new("* * * * *", "UTC").unwrap();
        // Two days of minutes missed: 2880 occurrences, the newest 1000 are replayed.
        let plan = s.plan(utc("2026-01-01T00:00:00Z"), None, utc("2026-01-03T00:00:30Z"), CatchUp::All);
        assert_eq!(plan.firings.len(), MAX_CATCH_UP + 1);
        assert_eq!(plan.skipped, 2880 - MAX_CATCH_UP);
        assert_eq!(plan.firings[MAX_CATCH_UP - 1].scheduled_for, utc("2026-01-02T23:59:00Z"));
        assert_eq!(plan.firings[MAX_CATCH_UP].scheduled_for, utc("2026-01-03T00:00:00Z"));
        let once = s.plan(utc("2026-01-01T00:00:00Z"), None, utc("2026-01-03T00:00:30Z"), CatchUp::Once);
        assert_eq!(once.firings[0].occurrences, 2880);
    }

    #[test]
    fn errors_name_the_member() {
        assert_eq!(Compiled::new("0 8 * * *", "Mars/Olympus").unwrap_err().field, "timezone");
        assert_eq!(Compiled::new("every day", "UTC").unwrap_err().field, "cron");
        assert_eq!(Compiled::new("0 0 30 2 *", "UTC").unwrap_err().field, "cron");
        assert!(Compiled::new("@daily", "Asia/Kathmandu").is_ok());
        assert!(Compiled::new("0 */15 * * * *", "UTC").is_ok());
    }
}
