//! Numbers at a point's display resolution: one formatter per language for people,
//! one machine form for the HTTP API, MQTT and InfluxDB.
//!
//! The resolution is [`PointDef::decimals`], defined once with the vocabulary in
//! [`crate::points`]. Rounding is half away from zero on the binary value
//! (`(v * 10^d).round() / 10^d`), the same arithmetic the wall view's script does, so
//! the page, the API and the messages of one value agree.
//!
//! - For people ([`display`]): at most `decimals` decimals, trailing zeros dropped
//!   (`27 °C`, `28,5 °C`), digit groups of three in the integer part from four digits
//!   on. Vietnamese writes `1.234,5` (decimal comma), English `1,234.5`.
//! - For machines ([`machine`], [`machine_text`]): the nearest `f64` to the rounded
//!   decimal, written as the shortest text that reads back as it, with `.`; so a
//!   register read of `499.90000000000003` goes out as `499.9`, and a JSON number stays
//!   a number. `-0` is written as `0`.

use crate::model::{Kind, Language, Value};
use crate::points::{PointDef, lookup};

use super::pick;

/// Decimals used where no canonical point is known (a rule on an unknown point):
/// enough for any device value, few enough to drop binary noise.
pub const FALLBACK_DECIMALS: u8 = 6;

/// Beyond this magnitude `v * 10^d` loses integer precision: such values are left as
/// they are (they carry no fraction worth rounding).
const EXACT_LIMIT: f64 = 9.0e15;

/// `v` rounded to `decimals` decimals (half away from zero). Non-finite values are
/// returned unchanged; `-0` becomes `0`.
pub fn round(v: f64, decimals: u8) -> f64 {
    if !v.is_finite() {
        return v;
    }
    let f = 10f64.powi(i32::from(decimals));
    let scaled = v * f;
    let r = if scaled.abs() >= EXACT_LIMIT {
        v
    } else {
        scaled.round() / f
    };
    if r == 0.0 { 0.0 } else { r }
}

/// A number of `point` as machines get it: rounded to the point's resolution.
pub fn machine(point: &PointDef, v: f64) -> f64 {
    round(v, point.decimals)
}

/// A value of `point` as machines get it: numbers rounded, the rest unchanged.
pub fn machine_value(point: &PointDef, v: &Value) -> Value {
    match v {
        Value::Number(x) => Value::Number(machine(point, *x)),
        other => other.clone(),
    }
}

/// A number of the point `point` of a device of `kind`, found by name; an unknown
/// point (the `comm` pseudo-point of communication rules) keeps
/// [`FALLBACK_DECIMALS`].
pub fn machine_by_name(kind: Kind, point: &str, v: f64) -> f64 {
    round(v, decimals_of(kind, point))
}

/// The resolution of a point found by name, [`FALLBACK_DECIMALS`] when unknown.
pub fn decimals_of(kind: Kind, point: &str) -> u8 {
    lookup(kind, point).map_or(FALLBACK_DECIMALS, |p| p.decimals)
}

/// The text of a value for machines (MQTT reading payloads): `23.4`, `230`, `true`,
/// `on_battery`.
pub fn machine_text(point: &PointDef, v: &Value) -> String {
    match v {
        Value::Number(x) => number_text(machine(point, *x)),
        Value::Bool(b) => b.to_string(),
        Value::Enum(name) => (*name).to_string(),
    }
}

/// Shortest round-trip text of an already rounded number, `.` as decimal point, no
/// exponent for the magnitudes devices report.
fn number_text(v: f64) -> String {
    // `Display` of f64 is the shortest text that reads back as the same value and
    // never uses an exponent; integers come without `.0`.
    format!("{v}")
}

/// Decimal and group separators of a language.
pub fn separators(lang: Language) -> (char, char) {
    pick(lang, (',', '.'), ('.', ','))
}

/// A number for people, at `decimals` decimals at most: `28,5` (vi), `28.5` (en),
/// `1.234,5` / `1,234.5`. Non-finite values are written as `—`.
pub fn display(v: f64, decimals: u8, lang: Language) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    let r = round(v, decimals);
    let fixed = format!("{:.*}", usize::from(decimals), r.abs());
    let (int, frac) = match fixed.split_once('.') {
        Some((i, f)) => (i, f.trim_end_matches('0')),
        None => (fixed.as_str(), ""),
    };
    let (dec_sep, group_sep) = separators(lang);
    let mut out = String::with_capacity(fixed.len() + 4);
    if r < 0.0 {
        out.push('-');
    }
    let digits = int.len();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && digits > 3 && (digits - i) % 3 == 0 {
            out.push(group_sep);
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push(dec_sep);
        out.push_str(frac);
    }
    out
}

/// A number of `point` for people, at its resolution, without unit.
pub fn display_point(point: &PointDef, v: f64, lang: Language) -> String {
    display(v, point.decimals, lang)
}

/// A duration for people: whole hours as hours (`2 giờ`, `2 h`), whole minutes as
/// minutes (`15 phút`, `15 min`), anything else in seconds with one decimal at most
/// (`90 giây`, `1,5 s`).
pub fn duration(secs: f64, lang: Language) -> String {
    let whole = secs.round();
    let exact = (secs - whole).abs() < 1e-9;
    let unit = |symbol: &'static str| super::names::unit(symbol, lang);
    if exact && whole >= 3600.0 && whole % 3600.0 == 0.0 {
        format!("{} {}", display(whole / 3600.0, 0, lang), unit("h"))
    } else if exact && whole >= 60.0 && whole % 60.0 == 0.0 {
        format!("{} {}", display(whole / 60.0, 0, lang), unit("min"))
    } else {
        format!("{} {}", display(secs, 1, lang), unit("s"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    fn pt(kind: Kind, name: &str) -> &'static PointDef {
        lookup(kind, name).unwrap()
    }

    #[test]
    fn people_numbers_in_vietnamese() {
        let vi = Language::Vi;
        assert_eq!(display(28.5, 1, vi), "28,5");
        assert_eq!(display(28.46, 1, vi), "28,5");
        assert_eq!(display(27.0, 1, vi), "27");
        assert_eq!(display(27.04, 1, vi), "27");
        assert_eq!(display(-3.25, 1, vi), "-3,3");
        assert_eq!(display(-0.04, 1, vi), "0");
        assert_eq!(display(0.0, 2, vi), "0");
        assert_eq!(display(0.955, 2, vi), "0,96");
        assert_eq!(display(999.0, 0, vi), "999");
        assert_eq!(display(1234.56, 1, vi), "1.234,6");
        assert_eq!(display(1_234_567.0, 0, vi), "1.234.567");
        assert_eq!(display(-12_345.0, 0, vi), "-12.345");
        assert_eq!(display(f64::NAN, 1, vi), "—");
    }

    #[test]
    fn people_numbers_in_english() {
        let en = Language::En;
        assert_eq!(display(28.5, 1, en), "28.5");
        assert_eq!(display(27.0, 1, en), "27");
        assert_eq!(display(499.90000000000003, 1, en), "499.9");
        assert_eq!(display(1234.56, 1, en), "1,234.6");
        assert_eq!(display(1_234_567.0, 0, en), "1,234,567");
        assert_eq!(display(-0.5, 0, en), "-1");
        assert_eq!(display(f64::INFINITY, 0, en), "—");
    }

    #[test]
    fn point_resolution_is_used() {
        let t = pt(Kind::Climate, "temperature_c");
        assert_eq!(display_point(t, 28.4567, Language::Vi), "28,5");
        let pf = pt(Kind::PowerMeter, "power_factor");
        assert_eq!(display_point(pf, 0.9876, Language::Vi), "0,99");
        let rt = pt(Kind::Ups, "runtime_remaining_s");
        assert_eq!(display_point(rt, 1234.4, Language::En), "1,234");
    }

    #[test]
    fn machine_numbers_have_no_binary_noise() {
        let v = pt(Kind::Ups, "input_voltage_v");
        assert_eq!(machine(v, 499.90000000000003), 499.9);
        assert_eq!(machine_text(v, &Value::Number(499.90000000000003)), "499.9");
        let t = pt(Kind::Climate, "temperature_c");
        assert_eq!(machine_text(t, &Value::Number(0.1 * 234.0)), "23.4");
        assert_eq!(machine_text(t, &Value::Number(5.199999999999999)), "5.2");
        assert_eq!(machine_text(t, &Value::Number(230.0)), "230");
        assert_eq!(machine_text(t, &Value::Number(-0.01)), "0");
        assert_eq!(machine_text(t, &Value::Number(-12.25)), "-12.3");
        let pf = pt(Kind::PowerMeter, "power_factor");
        assert_eq!(machine_text(pf, &Value::Number(0.987654)), "0.99");
        let soc = pt(Kind::Ups, "battery_charge_pct");
        // APC's raw/512 fixed point.
        assert_eq!(machine_text(soc, &Value::Number(50177.0 / 512.0)), "98");
        assert_eq!(machine_text(soc, &Value::Bool(true)), "true");
        assert_eq!(machine_text(soc, &Value::Enum("on_battery")), "on_battery");
        // JSON numbers stay numbers, at the resolution.
        let json =
            serde_json::to_string(&machine_value(v, &Value::Number(499.90000000000003))).unwrap();
        assert_eq!(json, "499.9");
    }

    #[test]
    fn unknown_points_only_lose_noise() {
        assert_eq!(machine_by_name(Kind::Ups, "comm", 0.1 + 0.2), 0.3);
        assert_eq!(machine_by_name(Kind::Ups, "comm", 1.234567), 1.234567);
        assert_eq!(machine_by_name(Kind::Climate, "temperature_c", 1.26), 1.3);
        assert_eq!(decimals_of(Kind::Door, "temperature_c"), FALLBACK_DECIMALS);
    }

    #[test]
    fn huge_values_are_left_alone() {
        assert_eq!(round(1e20, 2), 1e20);
        assert!(round(f64::NAN, 1).is_nan());
    }

    #[test]
    fn durations() {
        assert_eq!(duration(90.0, Language::En), "90 s");
        assert_eq!(duration(90.0, Language::Vi), "90 giây");
        assert_eq!(duration(900.0, Language::En), "15 min");
        assert_eq!(duration(300.0, Language::Vi), "5 phút");
        assert_eq!(duration(7200.0, Language::Vi), "2 giờ");
        assert_eq!(duration(3600.0, Language::En), "1 h");
        assert_eq!(duration(1.5, Language::Vi), "1,5 giây");
        assert_eq!(duration(30.0, Language::Vi), "30 giây");
    }

    proptest::proptest! {
        /// The machine text reads back as the rounded number and never has more
        /// decimals than the resolution.
        #[test]
        fn machine_text_round_trips(x in -1.0e6f64..1.0e6, d in 0u8..=3) {
            let r = round(x, d);
            let text = number_text(r);
            proptest::prop_assert_eq!(text.parse::<f64>().unwrap(), r);
            let decimals = text.split_once('.').map_or(0, |(_, f)| f.len());
            proptest::prop_assert!(decimals <= usize::from(d), "{} has more than {} decimals", text, d);
        }

        /// People's text in both languages is the machine text with other separators.
        #[test]
        fn display_is_machine_text_localised(x in -1.0e6f64..1.0e6, d in 0u8..=3) {
            let machine = number_text(round(x, d));
            let en = display(x, d, Language::En).replace(',', "");
            let vi = display(x, d, Language::Vi).replace('.', "").replace(',', ".");
            proptest::prop_assert_eq!(&en, &machine);
            proptest::prop_assert_eq!(&vi, &machine);
        }
    }
}
