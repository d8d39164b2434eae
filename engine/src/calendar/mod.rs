//! Business calendars: when a service desk works, in its own time zone.
//!
//! A calendar has working intervals per weekday (local wall-clock times), holidays, and
//! an IANA time zone. Business-time arithmetic walks local days and converts each working
//! interval to UTC through the zone, so daylight-saving changes are handled where they
//! happen: an interval that crosses a spring-forward gap is shorter in real time, one
//! that crosses a fall-back overlap is longer, and "3 business hours" means three hours
//! of real working time either way.
//!
//! Pure: no clock, no storage.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How far ahead business-time arithmetic searches before giving up (about ten years).
const MAX_DAYS: i64 = 3660;

/// A calendar as admins write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// Identifier used by SLA policies.
    pub id: String,
    /// IANA zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Working intervals per weekday (`mon`..`sun`), e.g. `{"mon": [["08:00", "12:00"], ["13:00", "17:00"]]}`.
    /// An interval ending at `24:00` runs to midnight.
    pub hours: BTreeMap<String, Vec<[String; 2]>>,
    /// Days off, `YYYY-MM-DD` in the calendar's zone.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// Why a calendar spec is not usable. Each names the member at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalendarError {
    /// Unknown zone.
    #[error("/timezone: `{0}` is not an IANA time zone (e.g. Europe/Berlin)")]
    Zone(String),
    /// Bad weekday key.
    #[error("/hours/{0}: weekdays are mon, tue, wed, thu, fri, sat, sun")]
    Weekday(String),
    /// Bad or inverted interval.
    #[error("/hours/{day}/{index}: {message}")]
    Interval {
        /// Weekday key.
        day: String,
        /// Interval index.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// Bad holiday date.
    #[error("/holidays/{0}: dates look like 2026-12-25")]
    Holiday(usize),
    /// No working time at all.
    #[error("/hours: the calendar has no working time")]
    Empty,
}

/// A validated calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Its id.
    pub id: String,
    tz: Tz,
    /// Intervals per weekday (Monday = 0), as (start, end) seconds from local midnight.
    week: [Vec<(u32, u32)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

fn weekday_index(key: &str) -> Option<usize> {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].iter().position(|d| *d == key)
}

fn parse_time(s: &str) -> Option<u32> {
    if s == "24:00" {
        return Some(86_400);
    }
    let t = NaiveTime::parse_from_str(s, "%H:%M").ok()?;
    Some(t.signed_duration_since(NaiveTime::MIN).num_seconds() as u32)
}

impl Calendar {
    /// Validates a spec.
    pub fn new(spec: &CalendarSpec) -> Result<Self, CalendarError> {
        let tz: Tz = spec.timezone.parse().map_err(|_| CalendarError::Zone(spec.timezone.clone()))?;
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, intervals) in &spec.hours {
            let i = weekday_index(day).ok_or_else(|| CalendarError::Weekday(day.clone()))?;
            for (index, [from, to]) in intervals.iter().enumerate() {
                let bad = |message: &str| CalendarError::Interval { day: day.clone(), index, message: message.into() };
                let (a, b) = (parse_time(from), parse_time(to));
                let (Some(a), Some(b)) = (a, b) else { return Err(bad("times look like 08:00 (24:00 for midnight)")) };
                if a >= b {
                    return Err(bad("an interval must end after it starts; split overnight shifts at midnight"));
                }
                week[i].push((a, b));
            }
            week[i].sort_unstable();
            if week[i].windows(2).any(|w| w[0].1 > w[1].0) {
                return Err(CalendarError::Interval {
                    day: day.clone(),
                    index: 0,
                    message: "intervals overlap".into(),
                });
            }
        }
        if week.iter().all(Vec::is_empty) {
            return Err(CalendarError::Empty);
        }
        let mut holidays = BTreeSet::new();
        for (i, h) in spec.holidays.iter().enumerate() {
            holidays.insert(NaiveDate::parse_from_str(h, "%Y-%m-%d").map_err(|_| CalendarError::Holiday(i))?);
        }
        Ok(Self { id: spec.id.clone(), tz, week, holidays })
    }

    /// Round the clock, every day, in UTC (the default when a policy names no calendar).
    pub fn always() -> Self {
        Self {
            id: "24x7".into(),
            tz: chrono_tz::UTC,
            week: std::array::from_fn(|_| vec![(0, 86_400)]),
            holidays: BTreeSet::new(),
        }
    }

    /// Local wall-clock time `secs` after midnight of `day`, as an instant. A time that
    /// does not exist (spring-forward gap) moves to the end of the gap; an ambiguous one
    /// (fall-back overlap) takes the earlier instant.
    fn instant(&self, day: NaiveDate, secs: u32) -> DateTime<Utc> {
        let local: NaiveDateTime = day.and_time(NaiveTime::MIN) + Duration::seconds(secs as i64);
        match self.tz.from_local_datetime(&local).earliest() {
            Some(t) => t.with_timezone(&Utc),
            None => self.gap_end(local),
        }
    }

    /// The instant a spring-forward gap containing the local time `local` ends: the
    /// first instant whose wall-clock time is at or after `local`. Found by bisection
    /// over a window that brackets it in every zone (offsets are within ±15 h), to the
    /// second.
    fn gap_end(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let wall = |t: i64| Utc.timestamp_opt(t, 0).single().map(|u| u.with_timezone(&self.tz).naive_local());
        let as_utc = local.and_utc().timestamp();
        let (mut lo, mut hi) = (as_utc - 15 * 3600, as_utc + 15 * 3600);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match wall(mid) {
                Some(w) if w >= local => hi = mid,
                Some(_) => lo = mid,
                None => break,
            }
        }
        Utc.timestamp_opt(hi, 0).single().unwrap_or_else(|| Utc.from_utc_datetime(&local))
    }

    /// The working intervals of a local day, as UTC instants.
    fn intervals(&self, day: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.holidays.contains(&day) {
            return Vec::new();
        }
        let idx = day.weekday().num_days_from_monday() as usize;
        self.week[idx]
            .iter()
            .map(|&(a, b)| (self.instant(day, a), self.instant(day, b)))
            .filter(|(a, b)| a < b)
            .collect()
    }

    fn local_day(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// Whether `t` falls in working time.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let day = self.local_day(t);
        [day.pred_opt(), Some(day)]
            .into_iter()
            .flatten()
            .any(|d| self.intervals(d).iter().any(|(a, b)| *a <= t && t < *b))
    }

    /// The instant `amount` of business time after `start`. `None` if the calendar has
    /// no working time in the next ten years (e.g. every day a holiday).
    pub fn add(&self, start: DateTime<Utc>, amount: Duration) -> Option<DateTime<Utc>> {
        let mut left = amount;
        let mut day = self.local_day(start).pred_opt()?;
        for _ in 0..MAX_DAYS {
            for (a, b) in self.intervals(day) {
                let from = a.max(start);
                if from >= b {
                    continue;
                }
                let span = b - from;
                if left <= span {
                    return Some(from + left);
                }
                left -= span;
            }
            day = day.succ_opt()?;
        }
        None
    }

    /// Business time elapsed between `from` and `to` (zero if `to` is not after `from`).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        if to <= from {
            return Duration::zero();
        }
        let mut total = Duration::zero();
        let Some(mut day) = self.local_day(from).pred_opt() else { return total };
        let last = self.local_day(to);
        while day <= last {
            for (a, b) in self.intervals(day) {
                let (x, y) = (a.max(from), b.min(to));
                if x < y {
                    total += y - x;
                }
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        total
    }
}

/// Monday..Sunday, for building specs in code.
pub fn weekday_key(d: Weekday) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][d.num_days_from_monday() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(tz: &str, holidays: &[&str]) -> Calendar {
        let mut hours = BTreeMap::new();
        for d in ["mon", "tue", "wed", "thu", "fri"] {
            hours.insert(d.to_string(), vec![["09:00".to_string(), "17:00".to_string()]]);
        }
        Calendar::new(&CalendarSpec {
            id: "office".into(),
            timezone: tz.into(),
            hours,
            holidays: holidays.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn adds_across_evenings_weekends_and_holidays() {
        let cal = office("Europe/Berlin", &["2026-12-25"]);
        // Thu 24 Dec 2026 16:00 CET (15:00Z) + 3h: 1h Thu, Fri 25 is a holiday, weekend, 2h Mon 28.
        assert_eq!(cal.add(utc("2026-12-24T15:00:00Z"), Duration::hours(3)), Some(utc("2026-12-28T10:00:00Z")));
        // Starting outside working time counts from the next opening.
        assert_eq!(cal.add(utc("2026-12-26T12:00:00Z"), Duration::minutes(30)), Some(utc("2026-12-28T08:30:00Z")));
        assert!(!cal.is_open(utc("2026-12-25T10:00:00Z")));
        assert!(cal.is_open(utc("2026-12-28T08:00:00Z")));
    }

    #[test]
    fn daylight_saving_changes_move_working_hours_in_utc() {
        let cal = office("Europe/Berlin", &[]);
        // Fri 27 Mar 2026 is CET (09:00 = 08:00Z); Mon 30 Mar is CEST (09:00 = 07:00Z).
        assert_eq!(cal.add(utc("2026-03-27T15:00:00Z"), Duration::hours(2)), Some(utc("2026-03-30T08:00:00Z")));
        assert_eq!(cal.between(utc("2026-03-27T08:00:00Z"), utc("2026-03-30T15:00:00Z")), Duration::hours(16));
        // Autumn: Fri 23 Oct is CEST, Mon 26 Oct is CET.
        assert_eq!(cal.add(utc("2026-10-23T14:00:00Z"), Duration::hours(2)), Some(utc("2026-10-26T09:00:00Z")));
    }

    #[test]
    fn a_shift_across_the_spring_gap_is_an_hour_shorter() {
        let mut hours = BTreeMap::new();
        hours.insert("sun".to_string(), vec![["00:00".to_string(), "06:00".to_string()]]);
        let cal = Calendar::new(&CalendarSpec {
            id: "night".into(),
            timezone: "Europe/Berlin".into(),
            hours,
            holidays: vec![],
        })
        .unwrap();
        // Sun 29 Mar 2026: 02:00-03:00 local does not exist, so 00:00-06:00 is 5 real hours.
        assert_eq!(cal.between(utc("2026-03-28T12:00:00Z"), utc("2026-03-29T12:00:00Z")), Duration::hours(5));
        // Sun 25 Oct 2026: 02:00-03:00 happens twice, so the shift is 7 real hours.
        assert_eq!(cal.between(utc("2026-10-24T12:00:00Z"), utc("2026-10-25T12:00:00Z")), Duration::hours(7));
    }

    /// Regression: the start of an interval inside a spring-forward gap was found by
    /// probing in 15-minute steps (New York 02:20 started at 03:05, Lord Howe 02:10 at
    /// 02:40); it starts exactly when the gap ends.
    #[test]
    fn an_interval_starting_in_a_spring_gap_starts_when_the_gap_ends() {
        let sunday = |tz: &str, from: &str| {
            let mut hours = BTreeMap::new();
            hours.insert("sun".to_string(), vec![[from.to_string(), "06:00".to_string()]]);
            Calendar::new(&CalendarSpec { id: "s".into(), timezone: tz.into(), hours, holidays: vec![] }).unwrap()
        };
        // New York, Sun 8 Mar 2026: 02:00 EST jumps to 03:00 EDT (07:00Z).
        let ny = sunday("America/New_York", "02:20");
        assert_eq!(ny.add(utc("2026-03-07T12:00:00Z"), Duration::zero()), Some(utc("2026-03-08T07:00:00Z")));
        assert_eq!(ny.between(utc("2026-03-07T12:00:00Z"), utc("2026-03-09T00:00:00Z")), Duration::hours(3));
        // Lord Howe, Sun 4 Oct 2026: 02:00 (+10:30) jumps to 02:30 (+11), i.e. 15:30Z on the 3rd.
        let lhi = sunday("Australia/Lord_Howe", "02:10");
        assert_eq!(lhi.add(utc("2026-10-03T00:00:00Z"), Duration::zero()), Some(utc("2026-10-03T15:30:00Z")));
        // Chatham, Sun 27 Sep 2026: 02:45 (+12:45) jumps to 03:45 (+13:45), i.e. 14:00Z on the 26th.
        let cha = sunday("Pacific/Chatham", "03:00");
        assert_eq!(cha.add(utc("2026-09-26T00:00:00Z"), Duration::zero()), Some(utc("2026-09-26T14:00:00Z")));
    }

    #[test]
    fn odd_offsets_and_half_hour_dst() {
        // Kathmandu is UTC+05:45: 09:00 local is 03:15Z.
        let ktm = office("Asia/Kathmandu", &[]);
        assert_eq!(ktm.add(utc("2026-06-01T00:00:00Z"), Duration::minutes(1)), Some(utc("2026-06-01T03:16:00Z")));
        // Lord Howe moves by 30 minutes: 09:00 is 22:30Z (+10:30) in July, 22:00Z (+11) in January.
        let lhi = office("Australia/Lord_Howe", &[]);
        assert_eq!(lhi.add(utc("2026-07-05T12:00:00Z"), Duration::zero()), Some(utc("2026-07-05T22:30:00Z")));
        assert_eq!(lhi.add(utc("2026-01-04T12:00:00Z"), Duration::zero()), Some(utc("2026-01-04T22:00:00Z")));
    }

    #[test]
    fn between_is_the_inverse_of_add() {
        let cal = office("America/New_York", &["2026-11-26"]);
        let start = utc("2026-11-02T13:37:00Z");
        for minutes in [1, 59, 480, 481, 2000, 10_000] {
            let end = cal.add(start, Duration::minutes(minutes)).unwrap();
            assert_eq!(cal.between(start, end), Duration::minutes(minutes), "{minutes} minutes");
        }
    }

    #[test]
    fn bad_specs_name_the_member() {
        let spec = |tz: &str, day: &str, from: &str, to: &str| CalendarSpec {
            id: "x".into(),
            timezone: tz.into(),
            hours: BTreeMap::from([(day.to_string(), vec![[from.to_string(), to.to_string()]])]),
            holidays: vec!["2026-02-30".into()],
        };
        assert_eq!(
            Calendar::new(&spec("Mars/Olympus", "mon", "09:00", "17:00")).unwrap_err().to_string(),
            "/timezone: `Mars/Olympus` is not an IANA time zone (e.g. Europe/Berlin)"
        );
        assert!(Calendar::new(&spec("UTC", "monday", "09:00", "17:00"))
            .unwrap_err()
            .to_string()
            .starts_with("/hours/monday"));
        assert!(Calendar::new(&spec("UTC", "mon", "22:00", "06:00")).unwrap_err().to_string().contains("overnight"));
        assert_eq!(Calendar::new(&spec("UTC", "mon", "09:00", "17:00")).unwrap_err(), CalendarError::Holiday(0));
        let mut empty = spec("UTC", "mon", "09:00", "17:00");
        empty.hours.clear();
        empty.holidays.clear();
        assert_eq!(Calendar::new(&empty).unwrap_err(), CalendarError::Empty);
    }

    #[test]
    fn a_calendar_of_only_holidays_gives_up_instead_of_looping() {
        let mut hours = BTreeMap::new();
        hours.insert("mon".to_string(), vec![["09:00".to_string(), "10:00".to_string()]]);
        let days: Vec<String> = (0..4000)
            .map(|i| (NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + Duration::days(7 * i)).to_string())
            .collect();
        let cal =
            Calendar::new(&CalendarSpec { id: "never".into(), timezone: "UTC".into(), hours, holidays: days }).unwrap();
        assert_eq!(cal.add(utc("2026-01-01T00:00:00Z"), Duration::minutes(1)), None);
    }
}
