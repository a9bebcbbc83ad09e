//! The texts of alarm events the rules raise and clear, built from the one template
//! in [`crate::texts::alarm`] with what a rule knows today: the device's label, name,
//! id and room, the value and limit at the point's display resolution, the level and
//! the article.
//!
//! A raise begins with its level (`Sự cố nghiêm trọng: ...`), a clear with the word for
//! cleared (`Hết cảnh báo: ...`), so a notification cut short still tells them apart.
//! The alarm's short number and the local time join the same template once the
//! alarm event carries them ([`crate::texts::alarm::Message::no`] and `at`).
//!
//! Example (Vietnamese, default): `Sự cố thông thường: Phòng máy 1 (th1) — Nhiệt độ
//! 28,4 °C vượt ngưỡng 27 °C; tại server1 (Điều 10.3)`.

use crate::model::{DeviceMeta, Language, Level, Value};
use crate::texts::alarm::{self, Message, Phase, Subject};
use crate::texts::number;

pub use crate::texts::alarm::Side;

/// A number in the documentation's tables (`0.5`): `.` as decimal point, no binary
/// noise.
pub fn num(v: f64) -> String {
    format!("{}", number::round(v, number::FALLBACK_DECIMALS))
}

/// The device as the template names it: label, name, id and room.
pub fn subject(dev: &DeviceMeta) -> Subject<'_> {
    Subject {
        id: &dev.id,
        name: &dev.name,
        label: dev.label.as_deref(),
        room: Some(&dev.room),
        location: None,
    }
}

fn finish(lang: Language, dev: &DeviceMeta, phase: Phase, what: String, article: &str) -> String {
    alarm::message(
        lang,
        &Message {
            subject: subject(dev),
            phase,
            no: None,
            what,
            at: None,
            article,
        },
    )
}

fn phase(level: Option<Level>) -> Phase {
    level.map_or(Phase::Cleared, Phase::Raised)
}

/// Text of a threshold rule raised (or changing level):
/// `Sự cố thông thường: th1 — Nhiệt độ 28,4 °C vượt ngưỡng 27 °C; tại r1 (Điều 10.3)`.
#[allow(clippy::too_many_arguments)]
pub fn threshold_raised(
    lang: Language,
    dev: &DeviceMeta,
    point: &'static str,
    side: Side,
    value: f64,
    limit: f64,
    level: Level,
    article: &str,
) -> String {
    let what = alarm::threshold(lang, dev.kind, point, side, false, value, limit);
    finish(lang, dev, Phase::Raised(level), what, article)
}

/// Text of a threshold rule cleared:
/// `Hết cảnh báo: th1 — Nhiệt độ 26,4 °C đã trở lại dưới ngưỡng 27 °C; tại r1 (Điều 10.3)`.
pub fn threshold_cleared(
    lang: Language,
    dev: &DeviceMeta,
    point: &'static str,
    side: Side,
    value: f64,
    limit: f64,
    article: &str,
) -> String {
    let what = alarm::threshold(lang, dev.kind, point, side, true, value, limit);
    finish(lang, dev, Phase::Cleared, what, article)
}

/// Text of a boolean or state rule. `state` is the current enumeration value of a
/// state rule (`manual`), `on_delay_s` the delay that is part of the condition (door
/// open for more than 5 min) or 0. `level` is `None` for a clear.
pub fn condition(
    lang: Language,
    dev: &DeviceMeta,
    point: &'static str,
    state: Option<&Value>,
    on_delay_s: f64,
    level: Option<Level>,
    article: &str,
) -> String {
    let what = alarm::condition(lang, dev.kind, point, state, on_delay_s);
    finish(lang, dev, phase(level), what, article)
}

/// Text of a rate-of-change rule: `Sự cố thông thường: th1 — Nhiệt độ thay đổi
/// 6,2 °C trong 15 phút (giới hạn 5 °C); tại r1 (Điều 10.3)`. `level` is `None` for a
/// clear.
#[allow(clippy::too_many_arguments)]
pub fn rate(
    lang: Language,
    dev: &DeviceMeta,
    point: &'static str,
    delta: f64,
    max_delta: f64,
    window_s: f64,
    level: Option<Level>,
    article: &str,
) -> String {
    let what = alarm::rate(
        lang,
        dev.kind,
        point,
        level.is_none(),
        delta,
        max_delta,
        window_s,
    );
    finish(lang, dev, phase(level), what, article)
}

/// Text of communication lost: `Sự cố nghiêm trọng: ups1 — Mất liên lạc với thiết bị:
/// không có số đo hợp lệ trong 30 giây (3 chu kỳ đọc); tại r1 (Điều 10.1)`.
pub fn comm_lost(
    lang: Language,
    dev: &DeviceMeta,
    horizon_s: f64,
    intervals: u32,
    level: Level,
    article: &str,
) -> String {
    let what = alarm::comm_lost(lang, horizon_s, intervals);
    finish(lang, dev, Phase::Raised(level), what, article)
}

/// The gateway's own texts of its built-in composite rules `(rule, Vietnamese,
/// English)`.
pub const COMPOSITE_TEXTS: &[(&str, &str, &str)] = &[
    (
        "mains_failure",
        "Mất điện lưới: UPS chạy bằng ắc quy và máy phát chưa nhận tải",
        "Mains failure: the UPS is on battery and the generator has not taken the load",
    ),
    (
        "charge_low_on_battery",
        "UPS chạy bằng ắc quy và dung lượng ắc quy dưới 50 %",
        "UPS on battery with the battery charge below 50 %",
    ),
    (
        "supply_air_high",
        "Nhiệt độ gió cấp cao hơn nhiệt độ cài đặt quá 3 °C",
        "Supply air more than 3 °C above the set point",
    ),
];

/// Text of a composite rule: the site's own text when given, else the gateway's for
/// the rule name, with the time it must hold: `Sự cố nghiêm trọng: ups1 — Mất điện
/// lưới: UPS chạy bằng ắc quy và máy phát chưa nhận tải quá 1 phút; ...`.
pub fn composite(
    lang: Language,
    dev: &DeviceMeta,
    rule: &str,
    text: Option<&(String, String)>,
    on_delay_s: f64,
    level: Option<Level>,
    article: &str,
) -> String {
    let base = match text {
        Some((vi, en)) => crate::texts::pick(lang, vi.as_str(), en.as_str()).to_string(),
        None => COMPOSITE_TEXTS
            .iter()
            .find(|(r, _, _)| *r == rule)
            .map_or_else(
                || rule.to_string(),
                |(_, vi, en)| crate::texts::pick(lang, *vi, *en).to_string(),
            ),
    };
    let what = if on_delay_s > 0.0 && level.is_some() {
        format!(
            "{base} {} {}",
            crate::texts::words::phrase(crate::texts::words::Phrase::ForMoreThan, lang),
            number::duration(on_delay_s, lang)
        )
    } else {
        base
    };
    finish(lang, dev, phase(level), what, article)
}

/// Text of a generator start judged against NFPA 110 Type 10: `Máy phát không đạt
/// điện áp và tần số định mức (220 V, 50 Hz) trong 10 giây sau khi khởi động`.
pub fn start_to_rated(
    lang: Language,
    dev: &DeviceMeta,
    within_s: f64,
    voltage_v: f64,
    frequency_hz: f64,
    level: Option<Level>,
    article: &str,
) -> String {
    let secs = number::duration(within_s, lang);
    let (v, f) = (num(voltage_v), num(frequency_hz));
    let what = match (level.is_some(), lang) {
        (true, Language::En) => format!(
            "Generator not at rated voltage and frequency ({v} V, {f} Hz) within {secs} of its start"
        ),
        (true, _) => format!(
            "Máy phát không đạt điện áp và tần số định mức ({v} V, {f} Hz) trong {secs} sau khi khởi động"
        ),
        (false, Language::En) => {
            format!("Generator at rated voltage and frequency ({v} V, {f} Hz)")
        }
        (false, _) => format!("Máy phát đã đạt điện áp và tần số định mức ({v} V, {f} Hz)"),
    };
    finish(lang, dev, phase(level), what, article)
}

/// Text of communication restored.
pub fn comm_restored(lang: Language, dev: &DeviceMeta, article: &str) -> String {
    let what = alarm::comm_restored(lang).to_string();
    finish(lang, dev, Phase::Cleared, what, article)
}

/// Text of an alarm whose `what` its rule writes itself (the link alarms of
/// [`super::rootcause`]): raised at `level`, or cleared when `None`.
pub fn with_what(
    lang: Language,
    dev: &DeviceMeta,
    level: Option<Level>,
    what: String,
    article: &str,
) -> String {
    finish(lang, dev, phase(level), what, article)
}

/// The "Alarm messages" section of `docs/RULES.md`: the template and examples in both
/// languages, written by the functions above.
pub fn markdown() -> String {
    use crate::model::Kind;
    use crate::texts::time::SiteTime;
    use std::fmt::Write;
    use std::sync::Arc;

    let th = DeviceMeta {
        id: Arc::from("th1"),
        name: "Cảm biến tủ A3".into(),
        label: Some("TH-A3".into()),
        room: Arc::from("server1"),
        kind: Kind::Climate,
    };
    let mut out = String::from(
        "\n## Alarm messages\n\n\
         Every alarm text follows one template (`src/texts/alarm.rs`), in the site's language\n\
         (Vietnamese by default, English with `language = \"en\"`):\n\n\
         ```text\n\
         <head>[ #<no>]: <who> — <what>[; tại|in <room>[, <location>]][; lúc|at <local time>] (Điều|Art. <article>)\n\
         ```\n\n\
         - `head`: the level for a raise (`Sự cố thông thường` / `Sự cố nghiêm trọng`,\n  \
         `Normal incident` / `Serious incident`); for a clear the word for cleared\n  \
         (`Hết cảnh báo` / `Cleared`), so a notification cut short still tells a clear from a raise.\n\
         - `who`: the label on the equipment and its name (`TH-A3 (Cảm biến tủ A3)`), else\n  \
         the name and the id, else the id.\n\
         - `what`: the condition; numbers at the point's resolution (`docs/POINTS.md`) with\n  \
         their unit and the limit, Vietnamese with a decimal comma (`28,5 °C`).\n\
         - The room (today its id), the rack/location, the alarm's short number `no` and the\n  \
         local time in the site's time zone (default `Asia/Ho_Chi_Minh`, written with its\n  \
         offset) appear when the alarm event carries them; parts not known are left out.\n\n\
         Examples, as the rules write them today:\n\n",
    );
    for (lang, level, value) in [
        (Language::Vi, Level::Normal, 28.46),
        (Language::En, Level::Serious, 32.5),
    ] {
        let limit = if level == Level::Serious { 32.0 } else { 27.0 };
        let t = "temperature_c";
        let raised = threshold_raised(lang, &th, t, Side::Above, value, limit, level, "10.3");
        let cleared = threshold_cleared(lang, &th, t, Side::Above, 26.4, 27.0, "10.3");
        let _ = writeln!(out, "- {raised}\n- {cleared}");
    }
    let zone = SiteTime::default();
    let at = crate::model::Timestamp(1_796_393_112_000);
    let full = |lang: Language, phase: Phase, cleared: bool, value: f64| {
        alarm::message(
            lang,
            &Message {
                subject: Subject {
                    room: Some("Phòng máy chủ"),
                    location: Some("tủ A3"),
                    ..subject(&th)
                },
                phase,
                no: Some(123),
                what: alarm::threshold(
                    lang,
                    Kind::Climate,
                    "temperature_c",
                    Side::Above,
                    cleared,
                    value,
                    27.0,
                ),
                at: Some(zone.at(at, lang)),
                article: "10.3",
            },
        )
    };
    let _ = writeln!(
        out,
        "\nWith the short number, the room's name, the rack and the local time:\n"
    );
    for e in [
        full(Language::Vi, Phase::Raised(Level::Serious), false, 28.5),
        full(Language::Vi, Phase::Cleared, true, 26.4),
        full(Language::En, Phase::Raised(Level::Serious), false, 28.5),
        full(Language::En, Phase::Cleared, true, 26.4),
    ] {
        let _ = writeln!(out, "- {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::Kind;

    fn dev(kind: Kind, id: &str, name: &str, label: Option<&str>) -> DeviceMeta {
        DeviceMeta {
            id: Arc::from(id),
            name: name.into(),
            label: label.map(str::to_string),
            room: Arc::from("r1"),
            kind,
        }
    }

    #[test]
    fn threshold_texts_in_both_languages() {
        let d = dev(Kind::Climate, "th1", "th1", None);
        assert_eq!(
            threshold_raised(
                Language::Vi,
                &d,
                "temperature_c",
                Side::Above,
                28.4,
                27.0,
                Level::Normal,
                "10.3"
            ),
            "Sự cố thông thường: th1 — Nhiệt độ 28,4 °C vượt ngưỡng 27 °C; tại r1 (Điều 10.3)"
        );
        assert_eq!(
            threshold_raised(
                Language::En,
                &d,
                "temperature_c",
                Side::Above,
                28.4,
                27.0,
                Level::Serious,
                "10.3"
            ),
            "Serious incident: th1 — Temperature 28.4 °C above 27 °C; in r1 (Art. 10.3)"
        );
        let d = dev(Kind::Nvr, "nvr1", "Đầu ghi tầng 2", Some("NVR-02"));
        assert_eq!(
            threshold_cleared(
                Language::Vi,
                &d,
                "retention_days",
                Side::Below,
                31.0,
                30.0,
                "10.7"
            ),
            "Hết cảnh báo: NVR-02 (Đầu ghi tầng 2) — Số ngày lưu trữ ghi hình 31 ngày đã trở lại trên ngưỡng 30 ngày; tại r1 (Điều 10.7)"
        );
        // Binary noise from scaling never reaches a person.
        let u = dev(Kind::Ups, "ups1", "UPS 1", None);
        assert_eq!(
            threshold_raised(
                Language::En,
                &u,
                "battery_temperature_c",
                Side::Above,
                40.199999999999996,
                40.0,
                Level::Normal,
                "10.5"
            ),
            "Normal incident: UPS 1 (ups1) — Battery temperature 40.2 °C above 40 °C; in r1 (Art. 10.5)"
        );
    }

    #[test]
    fn condition_texts() {
        let d = dev(Kind::Door, "door1", "Cửa phòng máy", None);
        assert_eq!(
            condition(
                Language::Vi,
                &d,
                "door_open",
                None,
                300.0,
                Some(Level::Normal),
                "7.5"
            ),
            "Sự cố thông thường: Cửa phòng máy (door1) — Cửa đang mở quá 5 phút; tại r1 (Điều 7.5)"
        );
        let g = dev(Kind::Generator, "gen1", "gen1", None);
        assert_eq!(
            condition(
                Language::En,
                &g,
                "mode",
                Some(&Value::Enum("manual")),
                0.0,
                Some(Level::Normal),
                "10.5"
            ),
            "Normal incident: gen1 — Generator not in AUTO mode (now: Manual); in r1 (Art. 10.5)"
        );
        assert_eq!(
            condition(Language::En, &g, "shutdown_alarm", None, 0.0, None, "10.5"),
            "Cleared: gen1 — Generator shutdown alarm (oil pressure, coolant temperature, overspeed, fail to start); in r1 (Art. 10.5)"
        );
        assert_eq!(
            condition(Language::Vi, &g, "shutdown_alarm", None, 0.0, None, "10.5"),
            "Hết cảnh báo: gen1 — Máy phát báo dừng sự cố (áp suất dầu, nhiệt độ nước làm mát, quá tốc, không khởi động được); tại r1 (Điều 10.5)"
        );
    }

    #[test]
    fn rate_and_comm_texts() {
        let d = dev(Kind::Climate, "th1", "th1", None);
        assert_eq!(
            rate(
                Language::Vi,
                &d,
                "temperature_c",
                6.2,
                5.0,
                900.0,
                Some(Level::Normal),
                "10.3"
            ),
            "Sự cố thông thường: th1 — Nhiệt độ thay đổi 6,2 °C trong 15 phút (giới hạn 5 °C); tại r1 (Điều 10.3)"
        );
        assert_eq!(
            rate(
                Language::En,
                &d,
                "temperature_c",
                19.0,
                20.0,
                3600.0,
                None,
                "10.3"
            ),
            "Cleared: th1 — Temperature steady again: changed by 19 °C within 1 h (limit 20 °C); in r1 (Art. 10.3)"
        );
        let u = dev(Kind::Ups, "ups1", "ups1", None);
        assert_eq!(
            comm_lost(Language::Vi, &u, 30.0, 3, Level::Serious, "10.1"),
            "Sự cố nghiêm trọng: ups1 — Mất liên lạc với thiết bị: không có số đo hợp lệ trong 30 giây (3 chu kỳ đọc); tại r1 (Điều 10.1)"
        );
        assert_eq!(
            comm_restored(Language::En, &u, "10.1"),
            "Cleared: ups1 — Communication restored; in r1 (Art. 10.1)"
        );
        assert_eq!(
            comm_restored(Language::Vi, &u, "10.1"),
            "Hết cảnh báo: ups1 — Đã khôi phục liên lạc với thiết bị; tại r1 (Điều 10.1)"
        );
    }

    #[test]
    fn documentation_numbers() {
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(0.1 + 0.2), "0.3");
    }
}
