//! Alarm messages a person reads on a phone, from one template.
//!
//! ```text
//! <head>[ #<no>]: <who> — <what>[; tại|in <room>[, <location>]][; lúc|at <local time>] (Điều|Art. <article>)
//! ```
//!
//! - `head` is the level for a raise (`Sự cố nghiêm trọng` / `Serious incident`) and
//!   the word for cleared for a clear (`Hết cảnh báo` / `Cleared`): a notification
//!   cut after a few words still tells a clear from a raise;
//! - `no` is the alarm instance's short number, when there is one;
//! - `who` names the equipment as people find it: the label stuck on it and its name
//!   (`TH-A3 (Cảm biến tủ A3)`), else its name and id (`Phòng máy 1 (th1)`), else
//!   the id;
//! - `what` is the condition with the value at the point's display resolution and
//!   unit and the limit (`Nhiệt độ 28,5 °C vượt ngưỡng 27 °C`);
//! - the place and the local time (site time zone, with its offset) follow when known;
//! - the article of the regulation the alarm serves ends every message, so an auditor
//!   can follow an SMS to the rule.
//!
//! Parts that are not known (no label, no location, no number yet) are left out with
//! their separators; nothing prints as an empty field.

use crate::model::{AlarmState, Kind, Language, Level, Value};
use crate::points::lookup;

use super::names;
use super::number::{FALLBACK_DECIMALS, display, duration};
use super::words::{self, Phrase, phrase};

/// The equipment an alarm is about, as people find it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// Config id (`th1`).
    pub id: &'a str,
    /// Human name (`Cảm biến tủ A3`); may be empty or equal to the id.
    pub name: &'a str,
    /// The sticker on the equipment (`TH-A3`, Art. 14.1).
    pub label: Option<&'a str>,
    /// Room, by name where known.
    pub room: Option<&'a str>,
    /// Rack / position (`tủ A3`).
    pub location: Option<&'a str>,
}

impl Subject<'_> {
    /// `label (name)`, `label (id)`, `name (id)` or `id`, never a part twice.
    pub fn who(&self) -> String {
        let name = (!self.name.is_empty() && self.name != self.id).then_some(self.name);
        match (self.label.filter(|l| !l.is_empty()), name) {
            (Some(l), Some(n)) if l != n => format!("{l} ({n})"),
            (Some(l), _) if l != self.id => format!("{l} ({})", self.id),
            (Some(l), _) => l.to_string(),
            (None, Some(n)) => format!("{n} ({})", self.id),
            (None, None) => self.id.to_string(),
        }
    }

    /// `tại Phòng máy 1, tủ A3` / `in Server room 1, rack A3`; `None` when neither is
    /// known.
    fn place(&self, lang: Language) -> Option<String> {
        let parts: Vec<&str> = [self.room, self.location]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| format!("{} {}", phrase(Phrase::In, lang), parts.join(", ")))
    }
}

/// Raise or clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The alarm is raised (or changed level) at this level.
    Raised(Level),
    /// The alarm cleared.
    Cleared,
}

/// One alarm message, before it becomes text.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The equipment.
    pub subject: Subject<'a>,
    /// Raise or clear.
    pub phase: Phase,
    /// The alarm instance's short number, when assigned.
    pub no: Option<u64>,
    /// The condition, from one of the body builders of this module.
    pub what: String,
    /// The local time, already written by [`super::time::SiteTime::at`].
    pub at: Option<String>,
    /// The article of the regulation (`10.3`).
    pub article: &'a str,
}

/// The message as text: see the module doc for the template.
pub fn message(lang: Language, m: &Message<'_>) -> String {
    let mut out = match m.phase {
        Phase::Raised(level) => words::level(level, lang).to_string(),
        Phase::Cleared => words::state(AlarmState::Cleared, lang).to_string(),
    };
    if let Some(no) = m.no {
        out.push_str(&format!(" #{no}"));
    }
    out.push_str(": ");
    out.push_str(&m.subject.who());
    out.push_str(" — ");
    out.push_str(&m.what);
    if let Some(place) = m.subject.place(lang) {
        out.push_str("; ");
        out.push_str(&place);
    }
    if let Some(at) = m.at.as_deref().filter(|s| !s.is_empty()) {
        out.push_str("; ");
        out.push_str(at);
    }
    out.push_str(&format!(
        " ({} {})",
        phrase(Phrase::Article, lang),
        m.article
    ));
    out
}

/// Add the instance number and the local time to a message made before they were
/// known (the template's optional `#<no>` after the head and `; lúc|at <time>` before
/// the article), keeping every other part as it was.
pub fn with_number_and_time(lang: Language, text: &str, no: u64, at: &str) -> String {
    let article = format!(" ({} ", phrase(Phrase::Article, lang));
    let (body, tail) = match text.rfind(&article) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let body = match body.split_once(": ") {
        Some((head, rest)) if no > 0 && !head.contains('#') => format!("{head} #{no}: {rest}"),
        _ => body.to_string(),
    };
    if at.is_empty() {
        format!("{body}{tail}")
    } else {
        format!("{body}; {at}{tail}")
    }
}

/// Name the place of a message made with only the room id: `; tại server1` becomes
/// `; tại Phòng máy chủ 1, tủ A3` (the room's name and the rack / position).
pub fn with_place(
    lang: Language,
    text: &str,
    room_id: &str,
    room_name: &str,
    location: Option<&str>,
) -> String {
    let was = format!("; {} {room_id}", phrase(Phrase::In, lang));
    let mut parts = vec![if room_name.is_empty() {
        room_id
    } else {
        room_name
    }];
    parts.extend(location.filter(|l| !l.is_empty()));
    let now = format!("; {} {}", phrase(Phrase::In, lang), parts.join(", "));
    match text.find(&was) {
        Some(i) if text[i + was.len()..].starts_with([';', ' ']) || i + was.len() == text.len() => {
            format!("{}{now}{}", &text[..i], &text[i + was.len()..])
        }
        _ => text.to_string(),
    }
}

/// Which side of a limit a threshold rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Alarm above the limit.
    Above,
    /// Alarm below the limit.
    Below,
}

/// A number of `point` with its unit at the point's resolution (`28,5 °C`); a point
/// the vocabulary lacks gets [`FALLBACK_DECIMALS`] and no unit.
fn q(kind: Kind, point: &str, v: f64, lang: Language) -> String {
    match lookup(kind, point) {
        Some(def) => names::quantity(def, v, lang),
        None => display(v, FALLBACK_DECIMALS, lang),
    }
}

/// A threshold condition: `Nhiệt độ 28,5 °C vượt ngưỡng 27 °C`; once `cleared`,
/// `Nhiệt độ 26,4 °C đã trở lại dưới ngưỡng 27 °C`.
pub fn threshold(
    lang: Language,
    kind: Kind,
    point: &'static str,
    side: Side,
    cleared: bool,
    value: f64,
    limit: f64,
) -> String {
    let word = match (side, cleared) {
        (Side::Above, false) => Phrase::Above,
        (Side::Below, false) => Phrase::Below,
        (Side::Above, true) => Phrase::BackBelow,
        (Side::Below, true) => Phrase::BackAbove,
    };
    format!(
        "{} {} {} {}",
        names::point(kind, point, lang),
        q(kind, point, value, lang),
        phrase(word, lang),
        q(kind, point, limit, lang)
    )
}

/// A boolean or state condition: `Cửa đang mở quá 5 phút`,
/// `Máy phát không ở chế độ tự động (AUTO) (hiện tại: Bằng tay)`. `state` is the
/// present value of a state point, `on_delay_s` a delay that is part of the
/// condition (0 for none).
pub fn condition(
    lang: Language,
    kind: Kind,
    point: &'static str,
    state: Option<&Value>,
    on_delay_s: f64,
) -> String {
    let mut out = names::condition(kind, point, lang).to_string();
    if on_delay_s > 0.0 {
        out = format!(
            "{out} {} {}",
            phrase(Phrase::ForMoreThan, lang),
            duration(on_delay_s, lang)
        );
    }
    if let Some(Value::Enum(s)) = state {
        out = format!(
            "{out} ({} {})",
            phrase(Phrase::Now, lang),
            names::enum_value(s, lang)
        );
    }
    out
}

/// A rate-of-change condition: `Nhiệt độ thay đổi 6,2 °C trong 15 phút (giới hạn
/// 5 °C)`; once `cleared`, `Nhiệt độ đã ổn định trở lại: thay đổi ...`.
#[allow(clippy::too_many_arguments)]
pub fn rate(
    lang: Language,
    kind: Kind,
    point: &'static str,
    cleared: bool,
    delta: f64,
    max_delta: f64,
    window_s: f64,
) -> String {
    let change = format!(
        "{} {} {} {} ({} {})",
        phrase(Phrase::ChangedBy, lang),
        q(kind, point, delta, lang),
        phrase(Phrase::Within, lang),
        duration(window_s, lang),
        phrase(Phrase::Limit, lang),
        q(kind, point, max_delta, lang)
    );
    let what = names::point(kind, point, lang);
    if cleared {
        format!("{what} {} {change}", phrase(Phrase::SteadyAgain, lang))
    } else {
        format!("{what} {change}")
    }
}

/// Communication lost: `Mất liên lạc với thiết bị: không có số đo hợp lệ trong
/// 30 giây (3 chu kỳ đọc)`.
pub fn comm_lost(lang: Language, horizon_s: f64, intervals: u32) -> String {
    format!(
        "{}: {} {} ({} {})",
        phrase(Phrase::CommLost, lang),
        phrase(Phrase::NoValidReadingFor, lang),
        duration(horizon_s, lang),
        display(f64::from(intervals), 0, lang),
        phrase(Phrase::PollIntervals, lang)
    )
}

/// Communication restored.
pub fn comm_restored(lang: Language) -> &'static str {
    phrase(Phrase::CommRestored, lang)
}

/// The head words of the template, for documentation: `(raise head, clear head)`.
pub fn heads(level: Level, lang: Language) -> (&'static str, &'static str) {
    (
        words::level(level, lang),
        words::state(AlarmState::Cleared, lang),
    )
}

#[cfg(test)]
mod number_and_time_tests {
    use super::*;

    #[test]
    fn the_place_is_the_rooms_name_and_the_rack() {
        assert_eq!(
            with_place(
                Language::Vi,
                "Sự cố thông thường: TH-A3 (th1) — Nhiệt độ 28,5 °C vượt ngưỡng 27 °C; tại server1 (Điều 10.3)",
                "server1",
                "Phòng máy chủ 1",
                Some("tủ A3")
            ),
            "Sự cố thông thường: TH-A3 (th1) — Nhiệt độ 28,5 °C vượt ngưỡng 27 °C; tại Phòng máy chủ 1, tủ A3 (Điều 10.3)"
        );
        assert_eq!(
            with_place(
                Language::En,
                "Cleared: UPS-1 (ups1) — On battery: no; in power (Art. 10.5)",
                "power",
                "Power room",
                None
            ),
            "Cleared: UPS-1 (ups1) — On battery: no; in Power room (Art. 10.5)"
        );
    }

    #[test]
    fn the_number_goes_after_the_head_and_the_time_before_the_article() {
        assert_eq!(
            with_number_and_time(
                Language::Vi,
                "Sự cố thông thường: TH-A3 (Cảm biến tủ A3) — Nhiệt độ 28,5 °C vượt ngưỡng 27 °C; tại server1 (Điều 10.3)",
                12,
                "lúc 21:05:12 ngày 04/12/2026 (UTC+07:00)"
            ),
            "Sự cố thông thường #12: TH-A3 (Cảm biến tủ A3) — Nhiệt độ 28,5 °C vượt ngưỡng 27 °C; tại server1; lúc 21:05:12 ngày 04/12/2026 (UTC+07:00) (Điều 10.3)"
        );
        assert_eq!(
            with_number_and_time(
                Language::En,
                "Cleared: UPS-1 (ups1) — On battery: no; in power (Art. 10.5)",
                7,
                "at 21:05:12 on 4 Dec 2026 (UTC+07:00)"
            ),
            "Cleared #7: UPS-1 (ups1) — On battery: no; in power; at 21:05:12 on 4 Dec 2026 (UTC+07:00) (Art. 10.5)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;
    use crate::texts::time::SiteTime;

    const VI: Language = Language::Vi;
    const EN: Language = Language::En;

    /// A canonical point's name, checked to exist.
    fn p(kind: Kind, name: &'static str) -> &'static str {
        assert!(lookup(kind, name).is_some(), "{kind}/{name}");
        name
    }

    fn th_a3() -> Subject<'static> {
        Subject {
            id: "th1",
            name: "Cảm biến tủ A3",
            label: Some("TH-A3"),
            room: Some("Phòng máy chủ"),
            location: Some("tủ A3"),
        }
    }

    /// 2026-12-04T14:05:12Z, 21:05:12 in Vietnam.
    const T: Timestamp = Timestamp(1_796_393_112_000);

    #[test]
    fn raise_with_everything_a_phone_reader_needs() {
        let t = p(Kind::Climate, "temperature_c");
        let zone = SiteTime::default();
        for (lang, want) in [
            (
                VI,
                "Sự cố nghiêm trọng #123: TH-A3 (Cảm biến tủ A3) — Nhiệt độ 28,5 °C vượt ngưỡng 27 °C; tại Phòng máy chủ, tủ A3; lúc 21:05:12 ngày 04/12/2026 (UTC+07:00) (Điều 10.3)",
            ),
            (
                EN,
                "Serious incident #123: TH-A3 (Cảm biến tủ A3) — Temperature 28.5 °C above 27 °C; in Phòng máy chủ, tủ A3; at 21:05:12 on 4 Dec 2026 (UTC+07:00) (Art. 10.3)",
            ),
        ] {
            let m = Message {
                subject: th_a3(),
                phase: Phase::Raised(Level::Serious),
                no: Some(123),
                what: threshold(lang, Kind::Climate, t, Side::Above, false, 28.46, 27.0),
                at: Some(zone.at(T, lang)),
                article: "10.3",
            };
            assert_eq!(message(lang, &m), want);
        }
    }

    #[test]
    fn clear_begins_with_the_word_for_cleared() {
        let t = p(Kind::Climate, "temperature_c");
        let zone = SiteTime::default();
        for (lang, want) in [
            (
                VI,
                "Hết cảnh báo #123: TH-A3 (Cảm biến tủ A3) — Nhiệt độ 26,4 °C đã trở lại dưới ngưỡng 27 °C; tại Phòng máy chủ, tủ A3; lúc 21:05:12 ngày 04/12/2026 (UTC+07:00) (Điều 10.3)",
            ),
            (
                EN,
                "Cleared #123: TH-A3 (Cảm biến tủ A3) — Temperature 26.4 °C back below 27 °C; in Phòng máy chủ, tủ A3; at 21:05:12 on 4 Dec 2026 (UTC+07:00) (Art. 10.3)",
            ),
        ] {
            let m = Message {
                subject: th_a3(),
                phase: Phase::Cleared,
                no: Some(123),
                what: threshold(lang, Kind::Climate, t, Side::Above, true, 26.4, 27.0),
                at: Some(zone.at(T, lang)),
                article: "10.3",
            };
            assert_eq!(message(lang, &m), want);
        }
    }

    #[test]
    fn unknown_parts_are_left_out() {
        let ups = Subject {
            id: "ups1",
            name: "ups1",
            ..Subject::default()
        };
        let m = Message {
            subject: ups,
            phase: Phase::Raised(Level::Normal),
            no: None,
            what: condition(VI, Kind::Ups, p(Kind::Ups, "on_battery"), None, 0.0),
            at: None,
            article: "10.5",
        };
        assert_eq!(
            message(VI, &m),
            "Sự cố thông thường: ups1 — UPS đang chạy bằng ắc quy (mất điện lưới) (Điều 10.5)"
        );
        let m = Message {
            phase: Phase::Cleared,
            what: condition(EN, Kind::Ups, p(Kind::Ups, "on_battery"), None, 0.0),
            ..m
        };
        assert_eq!(
            message(EN, &m),
            "Cleared: ups1 — UPS on battery (mains lost) (Art. 10.5)"
        );
    }

    #[test]
    fn who_names_the_equipment_as_people_find_it() {
        let s = |name, label, id| Subject {
            id,
            name,
            label,
            ..Subject::default()
        };
        assert_eq!(
            s("Cảm biến tủ A3", Some("TH-A3"), "th1").who(),
            "TH-A3 (Cảm biến tủ A3)"
        );
        assert_eq!(s("th1", Some("TH-A3"), "th1").who(), "TH-A3 (th1)");
        assert_eq!(s("", Some("TH-A3"), "th1").who(), "TH-A3 (th1)");
        assert_eq!(s("TH-A3", Some("TH-A3"), "th1").who(), "TH-A3 (th1)");
        assert_eq!(s("Phòng máy 1", None, "th1").who(), "Phòng máy 1 (th1)");
        assert_eq!(s("th1", None, "th1").who(), "th1");
        assert_eq!(s("", Some(""), "th1").who(), "th1");
        assert_eq!(s("x", Some("th1"), "th1").who(), "th1 (x)");
    }

    #[test]
    fn condition_bodies() {
        let door = p(Kind::Door, "door_open");
        assert_eq!(
            condition(VI, Kind::Door, door, None, 300.0),
            "Cửa đang mở quá 5 phút"
        );
        assert_eq!(
            condition(EN, Kind::Door, door, None, 300.0),
            "Door open for more than 5 min"
        );
        let mode = p(Kind::Generator, "mode");
        assert_eq!(
            condition(VI, Kind::Generator, mode, Some(&Value::Enum("manual")), 0.0),
            "Máy phát không ở chế độ tự động (AUTO) (hiện tại: Bằng tay)"
        );
        assert_eq!(
            condition(EN, Kind::Generator, mode, Some(&Value::Enum("manual")), 0.0),
            "Generator not in AUTO mode (now: Manual)"
        );
    }

    #[test]
    fn threshold_bodies_at_the_points_resolution() {
        let v = p(Kind::Generator, "battery_voltage_v");
        assert_eq!(
            threshold(
                VI,
                Kind::Generator,
                v,
                Side::Below,
                false,
                11.399999999999999,
                12.0
            ),
            "Điện áp ắc quy đề 11,4 V dưới ngưỡng 12 V"
        );
        assert_eq!(
            threshold(EN, Kind::Generator, v, Side::Below, true, 12.5, 12.0),
            "Starter battery voltage 12.5 V back above 12 V"
        );
        let r = p(Kind::Nvr, "retention_days");
        assert_eq!(
            threshold(VI, Kind::Nvr, r, Side::Below, true, 31.0, 30.0),
            "Số ngày lưu trữ ghi hình 31 ngày đã trở lại trên ngưỡng 30 ngày"
        );
        let e = p(Kind::PowerMeter, "energy_kwh");
        assert_eq!(
            threshold(
                EN,
                Kind::PowerMeter,
                e,
                Side::Above,
                false,
                12345.67,
                10000.0
            ),
            "Energy 12,345.7 kWh above 10,000 kWh"
        );
    }

    #[test]
    fn rate_and_communication_bodies() {
        let t = p(Kind::Climate, "temperature_c");
        assert_eq!(
            rate(VI, Kind::Climate, t, false, 6.2, 5.0, 900.0),
            "Nhiệt độ thay đổi 6,2 °C trong 15 phút (giới hạn 5 °C)"
        );
        assert_eq!(
            rate(EN, Kind::Climate, t, true, 19.0, 20.0, 3600.0),
            "Temperature steady again: changed by 19 °C within 1 h (limit 20 °C)"
        );
        assert_eq!(
            comm_lost(VI, 30.0, 3),
            "Mất liên lạc với thiết bị: không có số đo hợp lệ trong 30 giây (3 chu kỳ đọc)"
        );
        assert_eq!(
            comm_lost(EN, 7.5, 3),
            "Communication lost: no valid reading for 7.5 s (3 poll intervals)"
        );
        assert_eq!(comm_restored(VI), "Đã khôi phục liên lạc với thiết bị");
        assert_eq!(comm_restored(EN), "Communication restored");
    }

    #[test]
    fn a_point_outside_the_vocabulary_still_reads() {
        assert_eq!(
            threshold(
                EN,
                Kind::Door,
                "temperature_c",
                Side::Above,
                false,
                0.1 + 0.2,
                1.0
            ),
            "temperature_c 0.3 above 1"
        );
    }

    #[test]
    fn heads_of_raise_and_clear() {
        assert_eq!(
            heads(Level::Serious, VI),
            ("Sự cố nghiêm trọng", "Hết cảnh báo")
        );
        assert_eq!(heads(Level::Normal, EN), ("Normal incident", "Cleared"));
    }
}
