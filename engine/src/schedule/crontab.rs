//! Crontab's expression language, read the way Vixie cron (Debian's `cron`, cronie)
//! reads it, and translated into the `cron` crate's dialect, which differs.
//!
//! Fields: `minute hour day-of-month month day-of-week` (an optional leading seconds
//! field is our extension). Each field is a comma list of `*`, `N`, `N-M`, `*/S`,
//! `N-M/S` or `N/S` (from N to the field's end). Months take `jan`..`dec` and days of
//! the week `sun`..`sat`, in any case. Day of week: 0 and 7 are Sunday, 1 is Monday.
//! When both day of month and day of week are restricted (neither starts with `*`), a
//! day matches when *either* does (`0 0 13 * 5`: every 13th and every Friday);
//! otherwise both must. Shortcuts: `@yearly` = `@annually`, `@monthly`, `@weekly`,
//! `@daily` = `@midnight`, `@hourly`.
//!
//! The `cron` crate numbers weekdays 1 = Sunday and ANDs day of month with day of
//! week, so every field is handed to it as an explicit list of values (weekdays as
//! names), and the OR case becomes two schedules whose occurrences are merged.

/// One parsed field: its values in ascending order and whether it began with `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The values it matches.
    pub values: Vec<u32>,
    /// It began with `*` (unrestricted for the day-of-month / day-of-week rule).
    pub star: bool,
}

/// A crontab expression, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crontab {
    /// Seconds (`[0]` unless a sixth, leading field gave them).
    pub seconds: Field,
    /// Minutes 0-59.
    pub minutes: Field,
    /// Hours 0-23.
    pub hours: Field,
    /// Days of month 1-31.
    pub days_of_month: Field,
    /// Months 1-12.
    pub months: Field,
    /// Days of week 0-6, 0 = Sunday (7 is folded into 0).
    pub days_of_week: Field,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const CRATE_DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct Spec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value of the first name (`jan` = 1, `sun` = 0).
    names_from: u32,
}

const SECOND: Spec = Spec { name: "second", min: 0, max: 59, names: &[], names_from: 0 };
const MINUTE: Spec = Spec { name: "minute", min: 0, max: 59, names: &[], names_from: 0 };
const HOUR: Spec = Spec { name: "hour", min: 0, max: 23, names: &[], names_from: 0 };
const DOM: Spec = Spec { name: "day of month", min: 1, max: 31, names: &[], names_from: 0 };
const MONTH: Spec = Spec { name: "month", min: 1, max: 12, names: &MONTHS, names_from: 1 };
const DOW: Spec = Spec { name: "day of week", min: 0, max: 7, names: &DAYS, names_from: 0 };

fn value(spec: &Spec, s: &str) -> Result<u32, String> {
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(spec.names_from + i as u32);
    }
    let n: u32 = s.parse().map_err(|_| {
        let names =
            if spec.names.is_empty() { String::new() } else { format!(" or a name ({})", spec.names.join(", ")) };
        format!("{}: `{s}` is not a number{names}", spec.name)
    })?;
    if n < spec.min || n > spec.max {
        return Err(format!("{}: {n} is out of range {}-{}", spec.name, spec.min, spec.max));
    }
    Ok(n)
}

fn field(spec: &Spec, text: &str) -> Result<Field, String> {
    let mut values = std::collections::BTreeSet::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("{}: step `{s}` is not a number", spec.name))?;
                if step == 0 {
                    return Err(format!("{}: a step of 0 never advances", spec.name));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(spec, a)?, value(spec, b)?);
            if a > b {
                return Err(format!("{}: range `{range}` runs backwards", spec.name));
            }
            (a, b)
        } else if range.is_empty() {
            return Err(format!("{}: empty list element in `{text}`", spec.name));
        } else {
            let a = value(spec, range)?;
            // `N/S` runs from N to the end of the field, as in cronie.
            (a, if part.contains('/') { spec.max } else { a })
        };
        values.extend((lo..=hi).step_by(step as usize));
    }
    Ok(Field { values: values.into_iter().collect(), star: text.starts_with('*') })
}

impl Crontab {
    /// Parses an expression: 5 fields, 6 with leading seconds, or a shortcut.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let trimmed = expr.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            "@reboot" => return Err("@reboot has no time; use a schedule of fields".into()),
            s if s.starts_with('@') => {
                return Err(format!(
                    "unknown shortcut `{trimmed}` (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"
                ))
            }
            _ => trimmed,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let (seconds, rest) = match parts.len() {
            5 => (Field { values: vec![0], star: false }, &parts[..]),
            6 => (field(&SECOND, parts[0])?, &parts[1..]),
            n => return Err(format!("{n} fields; crontab has 5: minute hour day-of-month month day-of-week")),
        };
        let mut dow = field(&DOW, rest[4])?;
        if dow.values.last() == Some(&7) {
            dow.values.pop();
            if dow.values.first() != Some(&0) {
                dow.values.insert(0, 0);
            }
        }
        Ok(Self {
            seconds,
            minutes: field(&MINUTE, rest[0])?,
            hours: field(&HOUR, rest[1])?,
            days_of_month: field(&DOM, rest[2])?,
            months: field(&MONTH, rest[3])?,
            days_of_week: dow,
        })
    }

    /// Whether a day matches (crontab's rule for day of month and day of week); the
    /// schedules themselves use [`Crontab::crate_expressions`], this states the rule
    /// for the tests.
    #[cfg(test)]
    fn day_matches(&self, month: u32, day: u32, weekday_from_sunday: u32) -> bool {
        if !self.months.values.contains(&month) {
            return false;
        }
        let dom = self.days_of_month.values.contains(&day);
        let dow = self.days_of_week.values.contains(&weekday_from_sunday);
        if self.days_of_month.star || self.days_of_week.star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The `cron` crate expressions whose union is this schedule (one, or two when
    /// day of month and day of week are both restricted).
    pub fn crate_expressions(&self) -> Vec<String> {
        let list = |f: &Field| f.values.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let days = self.days_of_week.values.iter().map(|d| CRATE_DAYS[*d as usize]).collect::<Vec<_>>().join(",");
        let head = format!("{} {} {}", list(&self.seconds), list(&self.minutes), list(&self.hours));
        let (dom, month) = (list(&self.days_of_month), list(&self.months));
        if self.days_of_month.star || self.days_of_week.star {
            vec![format!("{head} {dom} {month} {days}")]
        } else {
            vec![format!("{head} {dom} {month} *"), format!("{head} * {month} {days}")]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_are_numbered_as_in_crontab() {
        let c = Crontab::parse("0 8 * * 1-5").unwrap();
        assert_eq!(c.days_of_week.values, vec![1, 2, 3, 4, 5]);
        assert_eq!(Crontab::parse("0 8 * * 0").unwrap().days_of_week.values, vec![0]);
        assert_eq!(Crontab::parse("0 8 * * 7").unwrap().days_of_week.values, vec![0]);
        assert_eq!(Crontab::parse("0 8 * * 5-7").unwrap().days_of_week.values, vec![0, 5, 6]);
        assert_eq!(Crontab::parse("0 8 * * */2").unwrap().days_of_week.values, vec![0, 2, 4, 6]);
        assert_eq!(Crontab::parse("0 8 * * Mon-fri").unwrap().days_of_week.values, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_restricted() {
        let c = Crontab::parse("0 0 13 * FRI").unwrap();
        assert!(c.day_matches(3, 13, 2), "any 13th");
        assert!(c.day_matches(3, 6, 5), "any Friday");
        assert!(!c.day_matches(3, 6, 4));
        assert_eq!(c.crate_expressions().len(), 2);
        // A leading `*` (even `*/2`) makes the field unrestricted: both must match.
        let c = Crontab::parse("0 0 */2 * FRI").unwrap();
        assert!(!c.day_matches(3, 6, 5), "a Friday on an even day");
        assert!(c.day_matches(3, 7, 5));
    }

    #[test]
    fn shortcuts_and_errors() {
        assert_eq!(Crontab::parse("@annually").unwrap(), Crontab::parse("0 0 1 1 *").unwrap());
        assert_eq!(Crontab::parse("@midnight").unwrap(), Crontab::parse("0 0 * * *").unwrap());
        for (bad, why) in [
            ("60 * * * *", "out of range"),
            ("* * 0 * *", "out of range"),
            ("* * * * 8", "out of range"),
            ("5-1 * * * *", "backwards"),
            ("*/0 * * * *", "step of 0"),
            ("* * * *", "4 fields"),
            ("@reboot", "@reboot"),
            ("@often", "unknown shortcut"),
            ("1,,2 * * * *", "empty list element"),
        ] {
            let e = Crontab::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
