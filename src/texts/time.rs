//! The site's local time: what people read (messages, SMS, the page) and the
//! `local_ts` of alarm events. Time is stored and sent in UTC everywhere else.
//!
//! The time zone is an IANA name (site `time_zone`, default [`DEFAULT_TIME_ZONE`]),
//! looked up in the tz database built into the binary (jiff's bundled copy), so a
//! board without `/usr/share/zoneinfo`, or with an outdated one, shows the same local
//! time as the test machine. Vietnam has had no daylight saving time since 1975; the
//! database is still used so another site's zone with DST is right too.
//!
//! Formats (hand-checked in the tests below):
//! - machine: RFC 3339 with milliseconds and the offset, `2026-12-04T21:05:12.123+07:00`;
//! - people, Vietnamese: `21:05:12 ngày 04/12/2026 (UTC+07:00)`;
//! - people, English: `21:05:12 on 4 Dec 2026 (UTC+07:00)` (the month in letters: a
//!   reader used to month/day order cannot misread it).

use jiff::tz::TimeZone;

use crate::model::{Language, Timestamp};

use super::pick;

/// The time zone of a site whose config names none.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Ho_Chi_Minh";

/// Why a time zone cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name is not in the tz database.
    #[error("unknown time zone {name:?}: {reason} (use an IANA name such as \"Asia/Ho_Chi_Minh\")")]
    UnknownTimeZone {
        /// The name as configured.
        name: String,
        /// What the database said.
        reason: String,
    },
}

/// The site's time zone, ready to turn UTC instants into local time.
#[derive(Debug, Clone)]
pub struct SiteTime {
    name: String,
    tz: TimeZone,
}

impl SiteTime {
    /// The zone named `name` (IANA, e.g. `Asia/Ho_Chi_Minh`, `UTC`).
    pub fn new(name: &str) -> Result<SiteTime, Error> {
        let name = name.trim();
        let tz = TimeZone::get(name).map_err(|e| Error::UnknownTimeZone {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        Ok(SiteTime {
            name: name.to_string(),
            tz,
        })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instant in the site's zone (for schedules and reports).
    pub fn zoned(&self, ts: Timestamp) -> jiff::Zoned {
        jiff::Timestamp::from_millisecond(ts.millis())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.tz.clone())
    }

    /// The instant of a local date and time in the site's zone (the earlier one in a
    /// fold, the later in a gap).
    pub fn instant(&self, dt: jiff::civil::DateTime) -> Option<Timestamp> {
        dt.to_zoned(self.tz.clone())
            .ok()
            .map(|z| Timestamp(z.timestamp().as_millisecond()))
    }

    /// The local wall-clock fields and UTC offset (seconds) of an instant.
    fn local(&self, ts: Timestamp) -> Local {
        let zoned = jiff::Timestamp::from_millisecond(ts.millis())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.tz.clone());
        Local {
            year: zoned.year(),
            month: zoned.month(),
            day: zoned.day(),
            hour: zoned.hour(),
            minute: zoned.minute(),
            second: zoned.second(),
            millis: zoned.millisecond(),
            offset_s: zoned.offset().seconds(),
        }
    }

    /// RFC 3339 in local time with the offset and milliseconds:
    /// `2026-12-04T21:05:12.123+07:00` (`local_ts` of alarm events).
    pub fn rfc3339(&self, ts: Timestamp) -> String {
        let l = self.local(ts);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{}",
            l.year,
            l.month,
            l.day,
            l.hour,
            l.minute,
            l.second,
            l.millis,
            offset(l.offset_s)
        )
    }

    /// Local time for people, with its offset: `21:05:12 ngày 04/12/2026 (UTC+07:00)`,
    /// `21:05:12 on 4 Dec 2026 (UTC+07:00)`.
    pub fn human(&self, ts: Timestamp, lang: Language) -> String {
        let l = self.local(ts);
        let clock = format!("{:02}:{:02}:{:02}", l.hour, l.minute, l.second);
        let zone = offset(l.offset_s);
        match lang {
            Language::Vi => format!(
                "{clock} ngày {:02}/{:02}/{:04} (UTC{zone})",
                l.day, l.month, l.year
            ),
            Language::En => format!(
                "{clock} on {} {} {:04} (UTC{zone})",
                l.day,
                month_abbr(l.month),
                l.year
            ),
        }
    }

    /// The UTC offset at an instant: `+07:00`.
    pub fn offset(&self, ts: Timestamp) -> String {
        offset(self.local(ts).offset_s)
    }

    /// Words before a local time in messages: `lúc 21:05:12 ngày 04/12/2026 (UTC+07:00)`.
    pub fn at(&self, ts: Timestamp, lang: Language) -> String {
        format!("{} {}", pick(lang, "lúc", "at"), self.human(ts, lang))
    }
}

impl Default for SiteTime {
    /// [`DEFAULT_TIME_ZONE`]; should the database ever lack it, a fixed +07:00 (the
    /// zone's only offset since 1975) with the same name.
    fn default() -> SiteTime {
        SiteTime::new(DEFAULT_TIME_ZONE).unwrap_or_else(|_| SiteTime {
            name: DEFAULT_TIME_ZONE.to_string(),
            tz: TimeZone::fixed(jiff::tz::offset(7)),
        })
    }
}

struct Local {
    year: i16,
    month: i8,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    millis: i16,
    offset_s: i32,
}

/// `+07:00`, `-03:30`, `+00:00`; seconds of an offset (historical zones only) are
/// dropped.
fn offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
}

fn month_abbr(month: i8) -> &'static str {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    usize::try_from(month - 1)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04T14:05:12.123Z.
    const T: Timestamp = Timestamp(1_796_393_112_123);

    #[test]
    fn the_instant_under_test_is_what_the_tests_say() {
        assert_eq!(T.rfc3339(), "2026-12-04T14:05:12.123Z");
    }

    #[test]
    fn vietnam_local_time() {
        let z = SiteTime::default();
        assert_eq!(z.name(), "Asia/Ho_Chi_Minh");
        assert_eq!(z.rfc3339(T), "2026-12-04T21:05:12.123+07:00");
        assert_eq!(z.offset(T), "+07:00");
        assert_eq!(
            z.human(T, Language::Vi),
            "21:05:12 ngày 04/12/2026 (UTC+07:00)"
        );
        assert_eq!(
            z.human(T, Language::En),
            "21:05:12 on 4 Dec 2026 (UTC+07:00)"
        );
        assert_eq!(
            z.at(T, Language::Vi),
            "lúc 21:05:12 ngày 04/12/2026 (UTC+07:00)"
        );
        assert_eq!(
            z.at(T, Language::En),
            "at 21:05:12 on 4 Dec 2026 (UTC+07:00)"
        );
    }

    #[test]
    fn local_date_can_differ_from_utc_date() {
        // 2026-12-31T17:30:00Z is already New Year in Vietnam.
        let z = SiteTime::new("Asia/Ho_Chi_Minh").unwrap();
        let t = Timestamp(1_798_738_200_000);
        assert_eq!(t.rfc3339(), "2026-12-31T17:30:00.000Z");
        assert_eq!(z.rfc3339(t), "2027-01-01T00:30:00.000+07:00");
        assert_eq!(
            z.human(t, Language::Vi),
            "00:30:00 ngày 01/01/2027 (UTC+07:00)"
        );
    }

    #[test]
    fn the_tz_database_knows_daylight_saving_time() {
        let z = SiteTime::new("Europe/Berlin").unwrap();
        // Winter: +01:00; summer (2026-07-01T12:00:00Z): +02:00.
        assert_eq!(z.rfc3339(T), "2026-12-04T15:05:12.123+01:00");
        assert_eq!(
            z.rfc3339(Timestamp(1_782_907_200_000)),
            "2026-07-01T14:00:00.000+02:00"
        );
        let u = SiteTime::new("UTC").unwrap();
        assert_eq!(
            u.human(T, Language::En),
            "14:05:12 on 4 Dec 2026 (UTC+00:00)"
        );
        let ny = SiteTime::new("America/St_Johns").unwrap();
        assert_eq!(ny.offset(T), "-03:30");
    }

    #[test]
    fn unknown_zone_is_a_clear_error() {
        let e = SiteTime::new("Asia/Tra_Vinh").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("\"Asia/Tra_Vinh\""), "{text}");
        assert!(text.contains("Asia/Ho_Chi_Minh"), "{text}");
    }
}
