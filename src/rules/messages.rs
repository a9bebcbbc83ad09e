//! Operator texts of alarm events, in Vietnamese (default, with diacritics) and English.
//!
//! One table per purpose, both languages side by side, so a translation is never
//! missing: [`POINT_TEXTS`] names what a rule watches, [`phrase`] holds the connecting
//! words. Every text names the device (`name (id)`, or the id when they are the same)
//! and ends with the article it serves (`(Điều 10.3)` / `(Art. 10.3)`), so an auditor
//! can follow the trail from an SMS to the regulation.
//!
//! Numbers are written with a decimal point and at most two decimals (`28.4 °C`).

use crate::model::{DeviceMeta, Kind, Language, Level, Value, fmt_number};
use crate::points::lookup;

/// How one watched point is named in texts.
#[derive(Debug)]
pub struct PointText {
    /// Device kind.
    pub kind: Kind,
    /// Canonical point.
    pub point: &'static str,
    /// Vietnamese: the quantity for numbers (`Nhiệt độ`), the alarm condition for
    /// booleans and states (`Phát hiện rò rỉ nước`).
    pub vi: &'static str,
    /// English, same role.
    pub en: &'static str,
    /// Unit words (vi, en) when the point's unit symbol does not read well.
    pub unit: Option<(&'static str, &'static str)>,
}

const fn t(kind: Kind, point: &'static str, vi: &'static str, en: &'static str) -> PointText {
    PointText {
        kind,
        point,
        vi,
        en,
        unit: None,
    }
}

/// Names of the points that default rules watch, per kind.
pub static POINT_TEXTS: &[PointText] = &[
    // Climate (Art. 10.3).
    t(Kind::Climate, "temperature_c", "Nhiệt độ", "Temperature"),
    t(Kind::Climate, "humidity_pct", "Độ ẩm", "Humidity"),
    t(Kind::Climate, "dew_point_c", "Điểm sương", "Dew point"),
    // UPS (Art. 10.5).
    t(
        Kind::Ups,
        "on_battery",
        "UPS đang chạy bằng ắc quy (mất điện lưới)",
        "UPS on battery (mains lost)",
    ),
    t(
        Kind::Ups,
        "on_bypass",
        "UPS đang chạy qua bypass, tải không được bảo vệ",
        "UPS on bypass, load not protected",
    ),
    t(Kind::Ups, "fault", "UPS báo lỗi", "UPS fault"),
    t(
        Kind::Ups,
        "battery_replace",
        "Ắc quy UPS cần thay thế",
        "UPS battery needs replacement",
    ),
    t(
        Kind::Ups,
        "battery_low",
        "Ắc quy UPS yếu, sắp ngắt tải (theo trạng thái ắc quy của UPS)",
        "UPS battery low, shutdown near (the UPS's own battery status)",
    ),
    t(
        Kind::Ups,
        "runtime_remaining_s",
        "Thời gian lưu điện còn lại",
        "Estimated runtime",
    ),
    t(Kind::Ups, "load_pct", "Tải UPS", "UPS load"),
    t(
        Kind::Ups,
        "battery_temperature_c",
        "Nhiệt độ ắc quy",
        "Battery temperature",
    ),
    // Generator (Art. 10.5).
    t(
        Kind::Generator,
        "mode",
        "Máy phát không ở chế độ tự động (AUTO)",
        "Generator not in AUTO mode",
    ),
    t(
        Kind::Generator,
        "shutdown_alarm",
        "Máy phát báo dừng sự cố (áp suất dầu, nhiệt độ nước làm mát, quá tốc, không khởi động được)",
        "Generator shutdown alarm (oil pressure, coolant temperature, overspeed, fail to start)",
    ),
    t(
        Kind::Generator,
        "fuel_level_pct",
        "Mức nhiên liệu máy phát",
        "Generator fuel level",
    ),
    t(
        Kind::Generator,
        "battery_voltage_v",
        "Điện áp ắc quy khởi động máy phát",
        "Generator starter battery voltage",
    ),
    // Cooling (Art. 10.6).
    t(
        Kind::Cooling,
        "unit_on",
        "Máy lạnh chính xác đã dừng",
        "Precision cooling unit stopped",
    ),
    t(
        Kind::Cooling,
        "critical_alarm",
        "Máy lạnh chính xác báo lỗi nghiêm trọng (áp suất máy nén, hỏng quạt)",
        "Precision cooling critical alarm (compressor pressure, fan failure)",
    ),
    t(
        Kind::Cooling,
        "filter_dirty",
        "Lọc gió máy lạnh cần vệ sinh",
        "Cooling unit air filter dirty",
    ),
    // Fire panel (Art. 10.4).
    t(
        Kind::FirePanel,
        "fire_alarm",
        "Tủ báo cháy: CÓ BÁO CHÁY",
        "Fire panel: FIRE ALARM",
    ),
    t(
        Kind::FirePanel,
        "extinguishant_released",
        "Tủ báo cháy: đã xả khí chữa cháy",
        "Fire panel: extinguishant released",
    ),
    t(
        Kind::FirePanel,
        "fault",
        "Tủ báo cháy báo lỗi",
        "Fire panel fault",
    ),
    t(
        Kind::FirePanel,
        "supervisory",
        "Tủ báo cháy: tín hiệu giám sát",
        "Fire panel supervisory condition",
    ),
    // Leak, door, surge, NVR, gateway.
    t(
        Kind::Leak,
        "leak_detected",
        "Phát hiện rò rỉ nước",
        "Water leak detected",
    ),
    t(Kind::Door, "door_open", "Cửa đang mở", "Door open"),
    t(
        Kind::Surge,
        "protector_tripped",
        "Thiết bị chống sét lan truyền đã tác động",
        "Surge protector tripped",
    ),
    PointText {
        kind: Kind::Nvr,
        point: "retention_days",
        vi: "Thời gian lưu trữ ghi hình",
        en: "Recordings kept",
        unit: Some(("ngày", "days")),
    },
    t(
        Kind::Gateway,
        "clock_synced",
        "Đồng hồ gateway chưa được đồng bộ",
        "Gateway clock not synchronised",
    ),
    t(
        Kind::Gateway,
        "buffer_used_pct",
        "Bộ đệm dữ liệu của gateway",
        "Gateway buffer use",
    ),
    t(
        Kind::Gateway,
        "sink_failing_s",
        "Thời gian không gửi được dữ liệu (InfluxDB/MQTT)",
        "Time a sink (InfluxDB/MQTT) has failed to deliver",
    ),
    t(
        Kind::Gateway,
        "sink_auth_failed",
        "Đích gửi dữ liệu (InfluxDB/MQTT) từ chối thông tin đăng nhập",
        "A sink (InfluxDB/MQTT) refuses the gateway's credentials",
    ),
];

/// Connecting words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phrase {
    /// "above" a limit.
    Above,
    /// "below" a limit.
    Below,
    /// Back below a limit (an upper threshold cleared).
    BackBelow,
    /// Back above a limit (a lower threshold cleared).
    BackAbove,
    /// Level normal.
    LevelNormal,
    /// Level serious.
    LevelSerious,
    /// The alarm ended.
    Cleared,
    /// Article prefix.
    Article,
    /// "for more than" (an on-delay that is part of the condition).
    ForMoreThan,
    /// "now:" before a current state value.
    Now,
    /// "changed by".
    ChangedBy,
    /// "within".
    Within,
    /// "limit".
    Limit,
    /// Temperature (etc.) steady again.
    SteadyAgain,
    /// Communication lost.
    CommLost,
    /// No valid reading for.
    NoValidReadingFor,
    /// Poll intervals.
    PollIntervals,
    /// Communication restored.
    CommRestored,
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
}

/// The words of a phrase in a language: `(vi, en)` side by side.
pub fn phrase(p: Phrase, lang: Language) -> &'static str {
    let (vi, en) = match p {
        Phrase::Above => ("vượt ngưỡng", "above"),
        Phrase::Below => ("dưới ngưỡng", "below"),
        Phrase::BackBelow => ("đã trở lại dưới ngưỡng", "back below"),
        Phrase::BackAbove => ("đã trở lại trên ngưỡng", "back above"),
        Phrase::LevelNormal => ("sự cố thông thường", "normal incident"),
        Phrase::LevelSerious => ("sự cố nghiêm trọng", "serious incident"),
        Phrase::Cleared => ("hết cảnh báo", "cleared"),
        Phrase::Article => ("Điều", "Art."),
        Phrase::ForMoreThan => ("quá", "for more than"),
        Phrase::Now => ("hiện tại:", "now:"),
        Phrase::ChangedBy => ("thay đổi", "changed by"),
        Phrase::Within => ("trong", "within"),
        Phrase::Limit => ("giới hạn", "limit"),
        Phrase::SteadyAgain => ("đã ổn định trở lại:", "steady again:"),
        Phrase::CommLost => ("Mất liên lạc với thiết bị", "Communication lost"),
        Phrase::NoValidReadingFor => ("không có số đo hợp lệ trong", "no valid reading for"),
        Phrase::PollIntervals => ("chu kỳ đọc", "poll intervals"),
        Phrase::CommRestored => (
            "Đã khôi phục liên lạc với thiết bị",
            "Communication restored",
        ),
        Phrase::Minutes => ("phút", "min"),
        Phrase::Hours => ("giờ", "h"),
    };
    match lang {
        Language::Vi => vi,
        Language::En => en,
    }
}

/// The text entry of a point, if the table has one.
pub fn point_text(kind: Kind, point: &str) -> Option<&'static PointText> {
    POINT_TEXTS
        .iter()
        .find(|p| p.kind == kind && p.point == point)
}

/// What a rule watches, in a language; the point name when the table has no entry.
fn label(kind: Kind, point: &'static str, lang: Language) -> &'static str {
    match point_text(kind, point) {
        Some(p) => match lang {
            Language::Vi => p.vi,
            Language::En => p.en,
        },
        None => point,
    }
}

/// Unit text of a point (` °C`, ` %`, ` ngày`), with its leading space; empty if none.
fn unit(kind: Kind, point: &str, lang: Language) -> String {
    if let Some((vi, en)) = point_text(kind, point).and_then(|p| p.unit) {
        return format!(" {}", if lang == Language::Vi { vi } else { en });
    }
    match lookup(kind, point).map(|p| p.unit) {
        Some(u) if !u.is_empty() => format!(" {u}"),
        _ => String::new(),
    }
}

/// A number as shown to operators: at most two decimals.
pub fn num(v: f64) -> String {
    fmt_number((v * 100.0).round() / 100.0)
}

/// A duration in seconds as shown to operators: `5 phút`, `1 giờ`, `30 s`.
pub fn duration(secs: f64, lang: Language) -> String {
    let whole = secs.round();
    if (secs - whole).abs() < 1e-9 && whole >= 3600.0 && whole % 3600.0 == 0.0 {
        format!("{} {}", num(whole / 3600.0), phrase(Phrase::Hours, lang))
    } else if (secs - whole).abs() < 1e-9 && whole >= 60.0 && whole % 60.0 == 0.0 {
        format!("{} {}", num(whole / 60.0), phrase(Phrase::Minutes, lang))
    } else {
        format!("{} s", num(secs))
    }
}

/// The device as named in texts: `name (id)`, or `id` when the name is the id.
pub fn device_label(dev: &DeviceMeta) -> String {
    if dev.name.is_empty() || dev.name == *dev.id {
        dev.id.to_string()
    } else {
        format!("{} ({})", dev.name, dev.id)
    }
}

fn level_text(level: Level, lang: Language) -> &'static str {
    match level {
        Level::Normal => phrase(Phrase::LevelNormal, lang),
        Level::Serious => phrase(Phrase::LevelSerious, lang),
    }
}

fn finish(dev: &DeviceMeta, body: String, tail: &str, article: &str, lang: Language) -> String {
    format!(
        "{}: {body} — {tail} ({} {article})",
        device_label(dev),
        phrase(Phrase::Article, lang)
    )
}

/// Which side of a limit a threshold rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Alarm above the limit.
    Above,
    /// Alarm below the limit.
    Below,
}

/// Text of a threshold rule raised (or changing level):
/// `th1: Nhiệt độ 28.4 °C vượt ngưỡng 27 °C — sự cố thông thường (Điều 10.3)`.
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
    let word = if side == Side::Above {
        Phrase::Above
    } else {
        Phrase::Below
    };
    let body = threshold_body(lang, dev, point, word, value, limit);
    finish(dev, body, level_text(level, lang), article, lang)
}

/// `Nhiệt độ 28.4 °C <word> 27 °C`: the part raised and cleared texts share.
fn threshold_body(
    lang: Language,
    dev: &DeviceMeta,
    point: &'static str,
    word: Phrase,
    value: f64,
    limit: f64,
) -> String {
    let u = unit(dev.kind, point, lang);
    format!(
        "{} {}{u} {} {}{u}",
        label(dev.kind, point, lang),
        num(value),
        phrase(word, lang),
        num(limit)
    )
}

/// Text of a threshold rule cleared:
/// `th1: Nhiệt độ 26.4 °C đã trở lại dưới ngưỡng 27 °C — hết cảnh báo (Điều 10.3)`.
pub fn threshold_cleared(
    lang: Language,
    dev: &DeviceMeta,
    point: &'static str,
    side: Side,
    value: f64,
    limit: f64,
    article: &str,
) -> String {
    let word = if side == Side::Above {
        Phrase::BackBelow
    } else {
        Phrase::BackAbove
    };
    let body = threshold_body(lang, dev, point, word, value, limit);
    finish(dev, body, phrase(Phrase::Cleared, lang), article, lang)
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
    let mut body = label(dev.kind, point, lang).to_string();
    if on_delay_s > 0.0 {
        body = format!(
            "{body} {} {}",
            phrase(Phrase::ForMoreThan, lang),
            duration(on_delay_s, lang)
        );
    }
    if let Some(Value::Enum(s)) = state {
        body = format!("{body} ({} {s})", phrase(Phrase::Now, lang));
    }
    let tail = match level {
        Some(l) => level_text(l, lang),
        None => phrase(Phrase::Cleared, lang),
    };
    finish(dev, body, tail, article, lang)
}

/// Text of a rate-of-change rule: `th1: Nhiệt độ thay đổi 6.2 °C trong 15 phút
/// (giới hạn 5 °C) — sự cố thông thường (Điều 10.3)`. `level` is `None` for a clear.
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
    let u = unit(dev.kind, point, lang);
    let what = label(dev.kind, point, lang);
    let change = format!(
        "{} {}{u} {} {} ({} {}{u})",
        phrase(Phrase::ChangedBy, lang),
        num(delta),
        phrase(Phrase::Within, lang),
        duration(window_s, lang),
        phrase(Phrase::Limit, lang),
        num(max_delta)
    );
    match level {
        Some(l) => finish(
            dev,
            format!("{what} {change}"),
            level_text(l, lang),
            article,
            lang,
        ),
        None => finish(
            dev,
            format!("{what} {} {change}", phrase(Phrase::SteadyAgain, lang)),
            phrase(Phrase::Cleared, lang),
            article,
            lang,
        ),
    }
}

/// Text of communication lost: `ups1: Mất liên lạc với thiết bị: không có số đo hợp lệ
/// trong 30 s (3 chu kỳ đọc) — sự cố nghiêm trọng (Điều 10.1)`.
pub fn comm_lost(
    lang: Language,
    dev: &DeviceMeta,
    horizon_s: f64,
    intervals: u32,
    level: Level,
    article: &str,
) -> String {
    let body = format!(
        "{}: {} {} ({intervals} {})",
        phrase(Phrase::CommLost, lang),
        phrase(Phrase::NoValidReadingFor, lang),
        duration(horizon_s, lang),
        phrase(Phrase::PollIntervals, lang)
    );
    finish(dev, body, level_text(level, lang), article, lang)
}

/// Text of communication restored.
pub fn comm_restored(lang: Language, dev: &DeviceMeta, article: &str) -> String {
    finish(
        dev,
        phrase(Phrase::CommRestored, lang).to_string(),
        phrase(Phrase::Cleared, lang),
        article,
        lang,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::rules::defaults;
    use crate::rules::spec::Condition;

    fn dev(kind: Kind, id: &str, name: &str) -> DeviceMeta {
        DeviceMeta {
            id: Arc::from(id),
            name: name.into(),
            label: None,
            room: Arc::from("r1"),
            kind,
        }
    }

    #[test]
    fn threshold_text_in_both_languages() {
        let d = dev(Kind::Climate, "th1", "th1");
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
            "th1: Nhiệt độ 28.4 °C vượt ngưỡng 27 °C — sự cố thông thường (Điều 10.3)"
        );
        assert_eq!(
            threshold_raised(
                Language::En,
                &d,
                "temperature_c",
                Side::Above,
                28.4,
                27.0,
                Level::Normal,
                "10.3"
            ),
            "th1: Temperature 28.4 °C above 27 °C — normal incident (Art. 10.3)"
        );
        let d = dev(Kind::Nvr, "nvr1", "Đầu ghi tầng 2");
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
            "Đầu ghi tầng 2 (nvr1): Thời gian lưu trữ ghi hình 31 ngày đã trở lại trên ngưỡng 30 ngày — hết cảnh báo (Điều 10.7)"
        );
    }

    #[test]
    fn condition_texts() {
        let d = dev(Kind::Door, "door1", "Cửa phòng máy");
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
            "Cửa phòng máy (door1): Cửa đang mở quá 5 phút — sự cố thông thường (Điều 7.5)"
        );
        let g = dev(Kind::Generator, "gen1", "gen1");
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
            "gen1: Generator not in AUTO mode (now: manual) — normal incident (Art. 10.5)"
        );
        assert_eq!(
            condition(Language::En, &g, "shutdown_alarm", None, 0.0, None, "10.5"),
            "gen1: Generator shutdown alarm (oil pressure, coolant temperature, overspeed, fail to start) — cleared (Art. 10.5)"
        );
    }

    #[test]
    fn rate_and_comm_texts() {
        let d = dev(Kind::Climate, "th1", "th1");
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
            "th1: Nhiệt độ thay đổi 6.2 °C trong 15 phút (giới hạn 5 °C) — sự cố thông thường (Điều 10.3)"
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
            "th1: Temperature steady again: changed by 19 °C within 1 h (limit 20 °C) — cleared (Art. 10.3)"
        );
        let u = dev(Kind::Ups, "ups1", "ups1");
        assert_eq!(
            comm_lost(Language::Vi, &u, 30.0, 3, Level::Serious, "10.1"),
            "ups1: Mất liên lạc với thiết bị: không có số đo hợp lệ trong 30 s (3 chu kỳ đọc) — sự cố nghiêm trọng (Điều 10.1)"
        );
        assert_eq!(
            comm_restored(Language::En, &u, "10.1"),
            "ups1: Communication restored — cleared (Art. 10.1)"
        );
    }

    #[test]
    fn every_default_rule_has_a_text() {
        for kind in Kind::ALL {
            for r in defaults(kind) {
                if matches!(r.condition, Condition::CommLost { .. }) {
                    continue;
                }
                assert!(
                    point_text(kind, r.point).is_some(),
                    "no text for {kind}/{}",
                    r.point
                );
            }
        }
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(num(28.433333), "28.43");
        assert_eq!(num(-9.0), "-9");
        assert_eq!(duration(90.0, Language::En), "90 s");
        assert_eq!(duration(900.0, Language::En), "15 min");
        assert_eq!(duration(7200.0, Language::Vi), "2 giờ");
        assert_eq!(duration(1.5, Language::Vi), "1.5 s");
    }
}
