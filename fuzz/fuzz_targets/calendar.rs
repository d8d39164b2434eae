//! SLA calendar arithmetic: adding business minutes and measuring them back agree, in a
//! zone with a 30-minute DST shift, for any start and duration.
#![no_main]
use chrono::{DateTime, Duration};
use libfuzzer_sys::fuzz_target;
use switchboard::calendar::{Calendar, CalendarSpec};

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let start = 1_700_000_000 + i64::from(u32::from_le_bytes([data[0], data[1], data[2], data[3]]) % 200_000_000);
    let minutes = i64::from(u32::from_le_bytes([data[4], data[5], data[6], data[7]]) % 50_000);
    let open = 6 + u32::from(data[8] % 6);
    let close = open + 1 + u32::from(data[9] % 10);
    let zone = ["Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns"][usize::from(data[10] % 4)];
    let day = vec![[format!("{open:02}:00"), format!("{close:02}:30")]];
    let spec = CalendarSpec {
        id: "c".into(),
        timezone: zone.into(),
        hours: ["mon", "tue", "wed", "thu", "fri"].iter().map(|d| (d.to_string(), day.clone())).collect(),
        holidays: vec!["2026-12-24".into(), "2027-01-01".into()],
    };
    let Ok(cal) = Calendar::new(&spec) else { return };
    let t = DateTime::from_timestamp(start, 0).unwrap();
    if let Some(end) = cal.add(t, Duration::minutes(minutes)) {
        assert!(end >= t);
        assert_eq!(cal.between(t, end), Duration::minutes(minutes), "{zone} {t} + {minutes}m = {end}");
    }
});
