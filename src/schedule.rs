//! Schedules: the one syntax, in the site's local time, for every window of the
//! gateway — maintenance windows, access windows, generator test windows, on-call
//! shifts, working hours, holidays.
//!
//! A schedule is a list of entries (a TOML array of strings); an instant is in the
//! schedule when it is in any entry. Entries, case-insensitive:
//!
//! | Form | Example | Meaning |
//! |---|---|---|
//! | days + time range | `Mon-Fri 08:00-17:00`, `Sat,Sun 00:00-24:00`, `daily 02:00-03:00` | every such day; a range that ends at or before it starts runs past midnight (`Fri 22:00-06:00` is Friday 22:00 to Saturday 06:00) |
//! | nth weekday of the month | `first Mon 09:00-10:00`, `last Fri 14:00-16:00` | `first` … `fourth`, `last` |
//! | a date | `2026-09-02` | the whole day (holidays) |
//! | a date + time range | `2026-12-24 22:00-06:00` | that day (past midnight as above) |
//! | from … to | `2026-12-24 22:00 to 2026-12-27 06:00` | one span |
//!
//! Days: `Mon Tue Wed Thu Fri Sat Sun` (or their full English names), lists with `,`,
//! ranges with `-` (`Fri-Mon` wraps). Times `HH:MM`, `24:00` as an end. Start
//! included, end excluded. Local times come from the site's `time_zone`
//! ([`SiteTime`]); a time that does not exist on a DST change day is moved forward.

use jiff::civil::{Date, DateTime, Time, Weekday};

use crate::model::Timestamp;
use crate::texts::time::SiteTime;

/// A schedule entry that cannot be read, with the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("schedule entry {entry:?}: {reason}")]
pub struct Error {
    /// The entry as written.
    pub entry: String,
    /// Why.
    pub reason: String,
}

/// Minutes of the day, 0..=1440.
type Minute = u16;

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// Days of the week (bit 0 = Monday) and a range of minutes.
    Weekly { days: u8, from: Minute, to: Minute },
    /// The nth (1–4, or 5 = last) given weekday of each month, a range.
    Monthly {
        nth: u8,
        day: Weekday,
        from: Minute,
        to: Minute,
    },
    /// One date, a range.
    Dated {
        date: Date,
        from: Minute,
        to: Minute,
    },
    /// One span of local time.
    Span { from: DateTime, to: DateTime },
}

/// A validated schedule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    entries: Vec<Entry>,
    text: Vec<String>,
}

impl Schedule {
    /// Read the entries; every bad one is reported.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Schedule, Vec<Error>> {
        let mut out = Schedule::default();
        let mut errors = Vec::new();
        for e in entries {
            match entry(e.as_ref()) {
                Ok(x) => {
                    out.entries.push(x);
                    out.text.push(e.as_ref().trim().to_string());
                }
                Err(reason) => errors.push(Error {
                    entry: e.as_ref().to_string(),
                    reason,
                }),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// Whether the schedule has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as written.
    pub fn entries(&self) -> &[String] {
        &self.text
    }

    /// Whether `ts` is inside the schedule, in the site's local time.
    pub fn contains(&self, ts: Timestamp, time: &SiteTime) -> bool {
        let z = time.zoned(ts);
        let dt = z.datetime();
        self.entries.iter().any(|e| entry_contains(e, dt))
    }
}

fn entry_contains(e: &Entry, dt: DateTime) -> bool {
    let m = (dt.hour() as u16) * 60 + dt.minute() as u16;
    let date = dt.date();
    let yesterday = date.yesterday().ok();
    // A range on `day` holds `m` of `date` (same day) or of the day after (past midnight).
    let on = |day_ok: &dyn Fn(Date) -> bool, from: Minute, to: Minute| -> bool {
        if from < to {
            day_ok(date) && m >= from && m < to
        } else {
            (day_ok(date) && m >= from) || (yesterday.is_some_and(day_ok) && m < to)
        }
    };
    match e {
        Entry::Weekly { days, from, to } => on(
            &|d: Date| days & (1 << d.weekday().to_monday_zero_offset()) != 0,
            *from,
            *to,
        ),
        Entry::Monthly { nth, day, from, to } => on(
            &|d: Date| {
                d.weekday() == *day
                    && if *nth == 5 {
                        d.checked_add(jiff::Span::new().days(7))
                            .is_ok_and(|n| n.month() != d.month())
                    } else {
                        (d.day() as u8 - 1) / 7 + 1 == *nth
                    }
            },
            *from,
            *to,
        ),
        Entry::Dated {
            date: want,
            from,
            to,
        } => on(&|d: Date| d == *want, *from, *to),
        Entry::Span { from, to } => dt >= *from && dt < *to,
    }
}

fn weekday(s: &str) -> Option<Weekday> {
    let s = s.to_ascii_lowercase();
    let all = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    all.iter()
        .find(|(short, d)| s == *short || s == format!("{d:?}").to_ascii_lowercase())
        .map(|(_, d)| *d)
}

fn days(s: &str) -> Result<u8, String> {
    if s.eq_ignore_ascii_case("daily") {
        return Ok(0x7f);
    }
    let mut bits = 0u8;
    for part in s.split(',') {
        let bit = |d: Weekday| 1u8 << d.to_monday_zero_offset();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (
                    weekday(a).ok_or(format!("{a:?} is not a day (Mon … Sun)"))?,
                    weekday(b).ok_or(format!("{b:?} is not a day (Mon … Sun)"))?,
                );
                let mut d = a;
                loop {
                    bits |= bit(d);
                    if d == b {
                        break;
                    }
                    d = d.next();
                }
            }
            None => {
                bits |=
                    bit(weekday(part)
                        .ok_or(format!("{part:?} is not a day (Mon … Sun, or daily)"))?)
            }
        }
    }
    Ok(bits)
}

fn minute(s: &str) -> Result<Minute, String> {
    let bad = || format!("{s:?} is not a time HH:MM");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) || h.to_string().len() > 2 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn range(s: &str) -> Result<(Minute, Minute), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or(format!("{s:?} is not a time range HH:MM-HH:MM"))?;
    let (from, to) = (minute(a)?, minute(b)?);
    if from == 1440 {
        return Err("a range cannot start at 24:00".into());
    }
    if from == to {
        return Err(format!("{s:?} is empty: start and end are the same"));
    }
    Ok((from, to))
}

fn date(s: &str) -> Result<Date, String> {
    s.parse::<Date>()
        .map_err(|_| format!("{s:?} is not a date YYYY-MM-DD"))
}

fn datetime(d: &str, t: &str) -> Result<DateTime, String> {
    let m = minute(t)?;
    let date = date(d)?;
    if m == 1440 {
        return date
            .tomorrow()
            .map(|n| n.to_datetime(Time::midnight()))
            .map_err(|e| e.to_string());
    }
    Ok(date.at((m / 60) as i8, (m % 60) as i8, 0, 0))
}

fn entry(s: &str) -> Result<Entry, String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    let nth = |w: &str| match w.to_ascii_lowercase().as_str() {
        "first" => Some(1),
        "second" => Some(2),
        "third" => Some(3),
        "fourth" => Some(4),
        "last" => Some(5),
        _ => None,
    };
    match words.as_slice() {
        [] => Err("empty".into()),
        [d, t1, to, d2, t2] if to.eq_ignore_ascii_case("to") => {
            let (from, to) = (datetime(d, t1)?, datetime(d2, t2)?);
            if to <= from {
                return Err("its end is not after its start".into());
            }
            Ok(Entry::Span { from, to })
        }
        [n, day, r] if nth(n).is_some() => {
            let day = weekday(day).ok_or(format!("{day:?} is not a day (Mon … Sun)"))?;
            let (from, to) = range(r)?;
            Ok(Entry::Monthly { nth: nth(n).unwrap_or(1), day, from, to })
        }
        [d] if d.chars().next().is_some_and(|c| c.is_ascii_digit()) => Ok(Entry::Dated {
            date: date(d)?,
            from: 0,
            to: 1440,
        }),
        [d, r] if d.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
            let (from, to) = range(r)?;
            Ok(Entry::Dated { date: date(d)?, from, to })
        }
        [d, r] => {
            let (from, to) = range(r)?;
            Ok(Entry::Weekly { days: days(d)?, from, to })
        }
        _ => Err("not a schedule entry: write e.g. \"Mon-Fri 08:00-17:00\", \"first Mon 09:00-10:00\", \"2026-09-02\" or \"2026-12-24 22:00 to 2026-12-27 06:00\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local time in Asia/Ho_Chi_Minh (UTC+7, no DST) as an instant.
    fn at(s: &str) -> Timestamp {
        let dt: DateTime = s.parse().unwrap();
        SiteTime::default().instant(dt).unwrap()
    }

    fn sched(e: &[&str]) -> Schedule {
        Schedule::parse(e).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn weekly_ranges_including_past_midnight() {
        let t = SiteTime::default();
        let office = sched(&["Mon-Fri 08:00-17:00"]);
        // 2026-12-04 is a Friday.
        assert!(office.contains(at("2026-12-04T08:00"), &t));
        assert!(office.contains(at("2026-12-04T16:59"), &t));
        assert!(!office.contains(at("2026-12-04T17:00"), &t), "end excluded");
        assert!(!office.contains(at("2026-12-05T10:00"), &t), "Saturday");
        let night = sched(&["Fri 22:00-06:00"]);
        assert!(night.contains(at("2026-12-04T23:30"), &t));
        assert!(
            night.contains(at("2026-12-05T05:59"), &t),
            "Saturday morning belongs to Friday's night"
        );
        assert!(!night.contains(at("2026-12-05T22:30"), &t));
        assert!(
            !night.contains(at("2026-12-04T05:00"), &t),
            "Friday morning belongs to Thursday"
        );
        let wrap = sched(&["Fri-Mon 00:00-24:00"]);
        assert!(wrap.contains(at("2026-12-07T12:00"), &t), "Monday");
        assert!(!wrap.contains(at("2026-12-08T12:00"), &t), "Tuesday");
        assert!(sched(&["daily 02:00-03:00"]).contains(at("2026-12-08T02:30"), &t));
    }

    #[test]
    fn monthly_dated_and_spans() {
        let t = SiteTime::default();
        let test = sched(&["first Mon 09:00-10:00"]);
        assert!(
            test.contains(at("2026-12-07T09:30"), &t),
            "7 Dec 2026 is the first Monday"
        );
        assert!(!test.contains(at("2026-12-14T09:30"), &t));
        let last = sched(&["last Fri 14:00-16:00"]);
        assert!(last.contains(at("2026-12-25T15:00"), &t));
        assert!(!last.contains(at("2026-12-18T15:00"), &t));
        let holiday = sched(&["2026-09-02"]);
        assert!(holiday.contains(at("2026-09-02T00:00"), &t));
        assert!(holiday.contains(at("2026-09-02T23:59"), &t));
        assert!(!holiday.contains(at("2026-09-03T00:00"), &t));
        let span = sched(&["2026-12-24 22:00 to 2026-12-27 06:00"]);
        assert!(span.contains(at("2026-12-26T12:00"), &t));
        assert!(!span.contains(at("2026-12-27T06:00"), &t));
        // Local time: 22:00 in Hanoi is 15:00 UTC.
        assert_eq!(at("2026-12-24T22:00"), Timestamp(1_798_124_400_000));
    }

    #[test]
    fn bad_entries_are_each_reported_with_the_reason() {
        let errs = Schedule::parse(&[
            "Mon-Fry 08:00-17:00",
            "Mon 8-17",
            "Sat 10:00-10:00",
            "2026-13-01",
            "Mon 23:60-24:00",
        ])
        .unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 5, "{msgs:?}");
        assert!(msgs[0].contains("\"Fry\" is not a day"), "{}", msgs[0]);
        assert!(msgs[1].contains("\"8\" is not a time HH:MM"), "{}", msgs[1]);
        assert!(msgs[2].contains("is empty"), "{}", msgs[2]);
        assert!(msgs[3].contains("is not a date"), "{}", msgs[3]);
        assert!(msgs[4].contains("is not a time"), "{}", msgs[4]);
    }
}
