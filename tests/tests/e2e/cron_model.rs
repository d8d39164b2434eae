//! Schedules against an independent model of crontab, written here from crontab(5)
//! and not sharing code with the engine: random expressions × time zones × instants
//! around every 2026 DST change of those zones. The model walks UTC minutes one by
//! one, reads each as local wall-clock time and matches the fields the way Vixie cron
//! does (0 and 7 are Sunday; day of month OR day of week when both are restricted);
//! a local time that happens twice fires on its first pass only, and one that does
//! not exist never fires (the documented DST rule).
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default; a long run:
//! `PROPTEST_CASES=20000 cargo test -p switchboard-tests --test e2e cron_model`).

use chrono::{DateTime, Datelike, Duration, LocalResult, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use switchboard::schedule::Compiled;

const ZONES: [&str; 7] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "America/Santiago",
    "UTC",
];

/// One element of a field, as text, for a field whose values run `lo..=hi`.
fn element(lo: u32, hi: u32, names: &'static [&'static str], names_from: u32) -> BoxedStrategy<String> {
    let value = move |n: u32, use_name: bool| -> String {
        if use_name && !names.is_empty() && n >= names_from && ((n - names_from) as usize) < names.len() {
            let name = names[(n - names_from) as usize];
            // crontab takes names in any case
            if n % 2 == 0 {
                name.to_uppercase()
            } else {
                name.to_string()
            }
        } else {
            n.to_string()
        }
    };
    prop_oneof![
        2 => Just("*".to_string()),
        2 => (1..=(hi - lo).max(1)).prop_map(|s| format!("*/{s}")),
        4 => (lo..=hi, any::<bool>()).prop_map(move |(n, nm)| value(n, nm)),
        3 => (lo..=hi, lo..=hi, any::<bool>()).prop_map(move |(a, b, nm)| {
            let (a, b) = (a.min(b), a.max(b));
            format!("{}-{}", value(a, nm), value(b, nm))
        }),
        1 => (lo..=hi, lo..=hi, 1..=6u32).prop_map(|(a, b, s)| format!("{}-{}/{s}", a.min(b), a.max(b))),
    ]
    .boxed()
}

fn field(lo: u32, hi: u32, names: &'static [&'static str], names_from: u32) -> BoxedStrategy<String> {
    prop::collection::vec(element(lo, hi, names, names_from), 1..=3).prop_map(|v| v.join(",")).boxed()
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A crontab expression, biased towards schedules that fire within the window.
fn expression() -> impl Strategy<Value = String> {
    let minute = prop_oneof![3 => field(0, 59, &[], 0), 1 => Just("*/15".to_string()), 1 => Just("0,30".to_string())];
    let hour = prop_oneof![2 => Just("*".to_string()), 3 => field(0, 23, &[], 0)];
    let dom = prop_oneof![3 => Just("*".to_string()), 2 => field(1, 31, &[], 0)];
    let month = prop_oneof![4 => Just("*".to_string()), 1 => field(1, 12, &MONTHS, 1)];
    let dow = prop_oneof![3 => Just("*".to_string()), 3 => field(0, 7, &DAYS, 0)];
    let fields = (minute, hour, dom, month, dow).prop_map(|(a, b, c, d, e)| format!("{a} {b} {c} {d} {e}"));
    prop_oneof![
        12 => fields,
        1 => prop::sample::select(vec!["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"])
            .prop_map(String::from),
    ]
}

// ---- the model ----

/// A field as text and the values it allows.
struct ModelField {
    text: String,
    lo: u32,
    hi: u32,
    names: &'static [&'static str],
    names_from: u32,
}

impl ModelField {
    fn number(&self, s: &str) -> u32 {
        let lower = s.to_lowercase();
        match self.names.iter().position(|n| *n == lower) {
            Some(i) => i as u32 + self.names_from,
            None => s.parse().expect("the generator makes numbers or names"),
        }
    }

    /// crontab(5): a list of ranges, each `*`, `N` or `N-M`, optionally `/step`.
    fn allows(&self, v: u32) -> bool {
        self.text.split(',').any(|part| {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, s.parse::<u32>().unwrap()),
                None => (part, 1),
            };
            let (a, b) = if range == "*" {
                (self.lo, self.hi)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.number(a), self.number(b))
            } else {
                let a = self.number(range);
                (a, a)
            };
            a <= v && v <= b && (v - a) % step == 0
        })
    }
}

struct Model {
    minute: ModelField,
    hour: ModelField,
    dom: ModelField,
    month: ModelField,
    dow: ModelField,
    tz: Tz,
}

impl Model {
    fn new(expr: &str, tz: Tz) -> Self {
        let expr = match expr {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let f: Vec<&str> = expr.split(' ').collect();
        let mk = |i: usize, lo, hi, names, names_from| ModelField { text: f[i].to_string(), lo, hi, names, names_from };
        Self {
            minute: mk(0, 0, 59, &[], 0),
            hour: mk(1, 0, 23, &[], 0),
            dom: mk(2, 1, 31, &[], 0),
            month: mk(3, 1, 12, &MONTHS, 1),
            dow: mk(4, 0, 7, &DAYS, 0),
            tz,
        }
    }

    fn fires_at(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.tz);
        // The second pass of a repeated local time does not fire.
        if let LocalResult::Ambiguous(first, _) = self.tz.from_local_datetime(&local.naive_local()) {
            if first.with_timezone(&Utc) != t {
                return false;
            }
        }
        let wd = local.weekday().num_days_from_sunday();
        let dom = self.dom.allows(local.day());
        let dow = self.dow.allows(wd) || (wd == 0 && self.dow.allows(7));
        let day =
            if self.dom.text.starts_with('*') || self.dow.text.starts_with('*') { dom && dow } else { dom || dow };
        self.minute.allows(local.minute()) && self.hour.allows(local.hour()) && self.month.allows(local.month()) && day
    }

    /// Occurrences in `(from, until]`, by walking every minute.
    fn between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut t = from.with_second(0).unwrap().with_nanosecond(0).unwrap() + Duration::minutes(1);
        let mut out = Vec::new();
        while t <= until {
            if self.fires_at(t) {
                out.push(t);
            }
            t += Duration::minutes(1);
        }
        out
    }
}

/// The instants in 2026 where a zone's UTC offset changes (found by walking hours).
fn transitions(tz: Tz) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let offset = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local() - t.naive_utc();
    while t.year() == 2026 {
        let next = t + Duration::minutes(15);
        if offset(t) != offset(next) {
            out.push(next);
        }
        t = next;
    }
    out
}

/// A zone and an instant: around one of its DST changes (or anywhere in 2026 for zones
/// without), at a random second.
fn zone_and_start() -> impl Strategy<Value = (Tz, DateTime<Utc>)> {
    (prop::sample::select(ZONES.to_vec()), any::<prop::sample::Index>(), -4000i64..2000, 0..60i64).prop_map(
        |(zone, pick, minutes, second)| {
            let tz: Tz = zone.parse().unwrap();
            let marks = transitions(tz);
            let base = if marks.is_empty() {
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(pick.index(365) as i64)
            } else {
                marks[pick.index(marks.len())]
            };
            (tz, base + Duration::minutes(minutes) + Duration::seconds(second))
        },
    )
}

proptest! {
    #[test]
    fn next_fire_times_match_an_independent_crontab_model(expr in expression(), (tz, start) in zone_and_start()) {
        let compiled = Compiled::new(&expr, tz.name());
        // Generated expressions are valid crontab, except ones that can never fire
        // (30 February), which the engine refuses on purpose.
        let until = start + Duration::days(6);
        let model = Model::new(&expr, tz);
        let expected = model.between(start, until);
        match compiled {
            Ok(c) => {
                let got = c.between(start + Duration::nanoseconds(1), until, 100_000);
                prop_assert_eq!(&got, &expected, "{} in {} from {}", expr, tz, start);
                // Strictly after the instant asked about, always.
                if let Some(next) = c.next_after(start) {
                    prop_assert!(next > start);
                    if let Some(first) = expected.first() {
                        prop_assert_eq!(next, *first);
                    }
                }
            }
            Err(e) => {
                prop_assert!(expected.is_empty(), "{} refused ({}) but fires at {:?}", expr, e.message, expected.first());
                prop_assert!(e.message.contains("never fires"), "{} refused: {}", expr, e.message);
            }
        }
    }
}

/// The shapes people write most, in every zone, over a week around each of its 2026
/// DST changes (a week in June for zones without).
#[test]
fn common_schedules_agree_with_the_model_around_every_dst_change() {
    for zone in ZONES {
        let tz: Tz = zone.parse().unwrap();
        let mut marks = transitions(tz);
        if marks.is_empty() {
            marks.push(Utc.with_ymd_and_hms(2026, 6, 15, 0, 0, 0).unwrap());
        }
        for mark in marks {
            let (from, until) = (mark - Duration::days(3), mark + Duration::days(4));
            for expr in ["0 8 * * 1-5", "*/30 * * * *", "30 2 * * *", "0 0 13 * 5", "15 1-3 * * 0,7", "@daily"] {
                let model = Model::new(expr, tz);
                let compiled = Compiled::new(expr, zone).unwrap();
                assert_eq!(
                    compiled.between(from, until, 100_000),
                    model.between(from - Duration::minutes(1), until),
                    "{expr} in {zone} around {mark}"
                );
            }
        }
    }
}
