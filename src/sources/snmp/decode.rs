//! SNMP values ↔ canonical values.
//!
//! Pure functions, no I/O: a varbind value (or a walked column) and the point's map
//! in, a value and a [`Quality`] out. What must stay true:
//!
//! - noSuchObject, noSuchInstance and endOfMibView are [`Quality::NoSuchObject`], never
//!   an error: an agent without a battery temperature sensor is normal.
//! - A raw value listed in `unavailable`, an empty OCTET STRING or one reading `N/A`
//!   is [`Quality::Unknown`] ("the device says: not available").
//! - A value of an unexpected type (an IpAddress where a number was mapped), an
//!   unmapped enumeration value, or a value outside `min`/`max` is
//!   [`Quality::OutOfRange`]; the decoded number is still returned for `probe`.
//! - TimeTicks become seconds before `scale` is applied.
//! - Counter rates ([`RateState`]) handle Counter32 and Counter64 wrap-around; the
//!   first reading of a counter, or one after the counter went backwards on a
//!   non-wrapping type, has no rate yet ([`Quality::Unknown`]).

use std::time::Instant;

use async_snmp::Value as SnmpValue;

use super::profile::{Aggregate, OidPoint, RowFilter};
use crate::model::{Quality, Value, fmt_number};
use crate::points::PointType;
use crate::sources::profile_checks as checks;

pub use crate::sources::Decoded;

/// A raw SNMP value as a number, or the quality explaining why it is not one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Raw {
    /// A number (TimeTicks already in seconds).
    Num(f64),
    /// A wrapping counter with its modulus bits (32 or 64), for rates.
    Counter(u64, u32),
}

impl Raw {
    /// The number.
    pub fn value(self) -> f64 {
        match self {
            Raw::Num(v) => v,
            Raw::Counter(c, _) => c as f64,
        }
    }
}

/// The number an SNMP value carries.
pub fn raw_number(v: &SnmpValue) -> Result<Raw, (Quality, String)> {
    match v {
        SnmpValue::Integer(i) => Ok(Raw::Num(f64::from(*i))),
        SnmpValue::Gauge32(g) | SnmpValue::UInteger32(g) => Ok(Raw::Num(f64::from(*g))),
        SnmpValue::Counter32(c) => Ok(Raw::Counter(u64::from(*c), 32)),
        SnmpValue::Counter64(c) => Ok(Raw::Counter(*c, 64)),
        SnmpValue::TimeTicks(t) => Ok(Raw::Num(f64::from(*t) / 100.0)),
        SnmpValue::OctetString(b) => number_from_text(b),
        SnmpValue::NoSuchObject => Err((Quality::NoSuchObject, "noSuchObject".into())),
        SnmpValue::NoSuchInstance => Err((Quality::NoSuchObject, "noSuchInstance".into())),
        SnmpValue::EndOfMibView => Err((Quality::NoSuchObject, "endOfMibView".into())),
        other => {
            if let Some(f) = other.as_opaque_double() {
                return Ok(Raw::Num(f));
            }
            if let Some(f) = other.as_opaque_float() {
                return Ok(Raw::Num(f64::from(f)));
            }
            Err((
                Quality::OutOfRange,
                format!("unexpected type {}", kind_name(other)),
            ))
        }
    }
}

/// A number sent as text by some cards: the leading decimal number of the string
/// (`"23.5"`, `" 45 %"`, `"-3"`). Empty, `N/A`, `-` → not available.
fn number_from_text(b: &[u8]) -> Result<Raw, (Quality, String)> {
    let text = String::from_utf8_lossy(b);
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if t.is_empty()
        || matches!(
            lower.as_str(),
            "n/a" | "na" | "-" | "--" | "unknown" | "null"
        )
    {
        return Err((Quality::Unknown, format!("string {t:?}: not available")));
    }
    let end = t
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || ((*c == '-' || *c == '+') && *i == 0)))
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    match t[..end].parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Raw::Num(v)),
        _ => Err((Quality::OutOfRange, format!("string {t:?} is not a number"))),
    }
}

/// Short type name of a value, for messages and `probe`.
pub fn kind_name(v: &SnmpValue) -> &'static str {
    match v {
        SnmpValue::Integer(_) => "INTEGER",
        SnmpValue::OctetString(_) => "OCTET STRING",
        SnmpValue::Null => "NULL",
        SnmpValue::ObjectIdentifier(_) => "OID",
        SnmpValue::IpAddress(_) => "IpAddress",
        SnmpValue::Counter32(_) => "Counter32",
        SnmpValue::Gauge32(_) => "Gauge32",
        SnmpValue::UInteger32(_) => "UInteger32",
        SnmpValue::TimeTicks(_) => "TimeTicks",
        SnmpValue::Opaque(_) => "Opaque",
        SnmpValue::Counter64(_) => "Counter64",
        SnmpValue::NoSuchObject => "noSuchObject",
        SnmpValue::NoSuchInstance => "noSuchInstance",
        SnmpValue::EndOfMibView => "endOfMibView",
        _ => "other",
    }
}

/// Text of a raw value for `probe`: `INTEGER 2`, `TimeTicks 360000`, `OCTET STRING "23.5"`.
pub fn raw_text(v: &SnmpValue) -> String {
    match v {
        SnmpValue::Integer(i) => format!("INTEGER {i}"),
        SnmpValue::Counter32(c) => format!("Counter32 {c}"),
        SnmpValue::Gauge32(g) => format!("Gauge32 {g}"),
        SnmpValue::UInteger32(g) => format!("UInteger32 {g}"),
        SnmpValue::TimeTicks(t) => format!("TimeTicks {t}"),
        SnmpValue::Counter64(c) => format!("Counter64 {c}"),
        SnmpValue::OctetString(b) => format!("OCTET STRING {:?}", String::from_utf8_lossy(b)),
        SnmpValue::ObjectIdentifier(o) => format!("OID {o}"),
        SnmpValue::IpAddress(a) => format!("IpAddress {}.{}.{}.{}", a[0], a[1], a[2], a[3]),
        other => kind_name(other).to_string(),
    }
}

/// Decode a number that is already a raw value into the point's canonical value.
pub fn decode_raw(map: &OidPoint, raw: f64) -> Decoded {
    if map.unavailable.contains(&raw) {
        return Decoded::because(
            Quality::Unknown,
            format!(
                "the agent sends {}: \"not available\" for this point",
                fmt_number(raw)
            ),
        );
    }
    match map.point.ty {
        PointType::Bool => {
            if raw.fract() != 0.0 {
                return Decoded::because(
                    Quality::OutOfRange,
                    format!("raw {raw} is not an integer"),
                );
            }
            Decoded::good(Value::Bool(map.true_values.contains(&(raw as i64))))
        }
        PointType::Enum(_) => {
            let code = raw as i64;
            match map.enum_map.iter().find(|(c, _)| *c == code) {
                Some((_, name)) if raw.fract() == 0.0 => Decoded::good(Value::Enum(name)),
                _ => Decoded::because(
                    Quality::OutOfRange,
                    format!(
                        "code {} is not one the profile knows ({})",
                        fmt_number(raw),
                        map.enum_map
                            .iter()
                            .map(|(c, n)| format!("{c} {n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        PointType::Number => {
            let v = raw * map.scale + map.offset;
            let below = map.min.is_some_and(|m| v < m);
            let above = map.max.is_some_and(|m| v > m);
            if below || above {
                Decoded {
                    value: Some(Value::Number(v)),
                    quality: Quality::OutOfRange,
                    note: checks::range_note(v, map.min, map.max),
                }
            } else {
                Decoded::good(Value::Number(v))
            }
        }
    }
}

/// Decode one GET value (no rate: see [`RateState`]).
pub fn decode_value(map: &OidPoint, v: &SnmpValue) -> Decoded {
    match raw_number(v) {
        Ok(r) => decode_raw(map, r.value()),
        Err((q, note)) => Decoded::because(q, note),
    }
}

/// The values of the rows of `column` (walked as `rows`) that `filter` names: those
/// whose index has, in the filter's column (walked as `named_by`), the wanted value.
pub fn rows_where<'a>(
    column: &async_snmp::Oid,
    rows: &'a [async_snmp::VarBind],
    filter: &RowFilter,
    named_by: &[async_snmp::VarBind],
) -> Vec<&'a SnmpValue> {
    let index = |o: &async_snmp::Oid, col: &async_snmp::Oid| -> Option<Vec<u32>> {
        o.arcs().strip_prefix(col.arcs()).map(<[u32]>::to_vec)
    };
    let wanted: Vec<Vec<u32>> = named_by
        .iter()
        .filter(|vb| filter.equals.matches(&vb.value))
        .filter_map(|vb| index(&vb.oid, &filter.column))
        .collect();
    rows.iter()
        .filter(|vb| index(&vb.oid, column).is_some_and(|i| wanted.contains(&i)))
        .map(|vb| &vb.value)
        .collect()
}

/// Reduce a walked column (`rows` in index order) as the point's aggregate says.
pub fn decode_column(map: &OidPoint, aggregate: &Aggregate, rows: &[&SnmpValue]) -> Decoded {
    match aggregate {
        Aggregate::Contains(m) => Decoded::good(Value::Bool(rows.iter().any(|v| m.matches(v)))),
        Aggregate::Count => decode_raw(map, rows.len() as f64),
        Aggregate::Any => {
            if rows.is_empty() {
                return Decoded::because(Quality::NoSuchObject, "the column has no rows");
            }
            let mut any = false;
            for v in rows {
                match raw_number(v) {
                    Ok(r) => {
                        any |= r.value().fract() == 0.0
                            && map.true_values.contains(&(r.value() as i64))
                    }
                    Err((q, note)) => return Decoded::because(q, note),
                }
            }
            Decoded::good(Value::Bool(any))
        }
        Aggregate::First => match rows.first() {
            Some(v) => decode_value(map, v),
            None => Decoded::because(Quality::NoSuchObject, "the column has no rows"),
        },
        Aggregate::Max | Aggregate::Min | Aggregate::Sum => {
            let mut nums = Vec::new();
            let mut first_bad: Option<(Quality, String)> = None;
            for v in rows {
                match raw_number(v) {
                    Ok(r) if !map.unavailable.contains(&r.value()) => nums.push(r.value()),
                    Ok(r) => {
                        first_bad.get_or_insert((
                            Quality::Unknown,
                            format!(
                                "the agent sends {}: \"not available\" for this point",
                                fmt_number(r.value())
                            ),
                        ));
                    }
                    Err(e) => {
                        first_bad.get_or_insert(e);
                    }
                }
            }
            if nums.is_empty() {
                let (q, note) =
                    first_bad.unwrap_or((Quality::NoSuchObject, "the column has no rows".into()));
                return Decoded::because(q, note);
            }
            let r = match aggregate {
                Aggregate::Max => nums.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                Aggregate::Min => nums.iter().copied().fold(f64::INFINITY, f64::min),
                _ => nums.iter().sum(),
            };
            decode_raw(map, r)
        }
    }
}

/// The last reading of a counter, to turn counts into per-second rates.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateState {
    last: Option<(Raw, Instant)>,
}

impl RateState {
    /// The rate since the previous reading, decoded as the point says (`scale`
    /// applies to the rate).
    pub fn update(&mut self, map: &OidPoint, raw: Raw, now: Instant) -> Decoded {
        let prev = self.last.replace((raw, now));
        let Some((before, at)) = prev else {
            return Decoded::because(
                Quality::Unknown,
                "first reading of the counter: no rate yet",
            );
        };
        let dt = now.saturating_duration_since(at).as_secs_f64();
        if dt <= 0.0 {
            return Decoded::because(Quality::Unknown, "two readings at the same instant");
        }
        let delta = match (before, raw) {
            (Raw::Counter(a, bits_a), Raw::Counter(b, bits)) if bits_a == bits => {
                if b >= a {
                    (b - a) as f64
                } else if bits == 32 {
                    ((1u64 << 32) - a + b) as f64
                } else {
                    (u64::MAX - a).wrapping_add(b).wrapping_add(1) as f64
                }
            }
            (x, y) => {
                let d = y.value() - x.value();
                if d < 0.0 {
                    return Decoded::because(
                        Quality::Unknown,
                        "the value went backwards: counter reset",
                    );
                }
                d
            }
        };
        decode_raw(map, delta / dt)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sources::snmp::profile::{Access, Match, parse_oid};

    fn map(point: &str, kind: crate::model::Kind) -> OidPoint {
        OidPoint {
            point: crate::points::lookup(kind, point).unwrap(),
            access: Access::Get(parse_oid("1.3.6.1.4.1.1.0").unwrap()),
            scale: 1.0,
            offset: 0.0,
            enum_map: Vec::new(),
            true_values: Vec::new(),
            unavailable: Vec::new(),
            min: None,
            max: None,
            rate: false,
            source: "t".into(),
        }
    }

    use crate::model::Kind;

    #[test]
    fn integer_gauge_and_scale() {
        let mut m = map("battery_voltage_v", Kind::Ups);
        m.scale = 0.1;
        assert_eq!(
            decode_value(&m, &SnmpValue::Integer(2712)).value,
            Some(Value::Number(2712.0 * 0.1))
        );
        assert_eq!(
            decode_value(&m, &SnmpValue::Gauge32(540)).quality,
            Quality::Good
        );
    }

    #[test]
    fn timeticks_become_seconds() {
        let m = map("runtime_remaining_s", Kind::Ups);
        let d = decode_value(&m, &SnmpValue::TimeTicks(360_000));
        assert_eq!(d.value, Some(Value::Number(3600.0)));
    }

    #[test]
    fn numbers_sent_as_strings() {
        let m = map("temperature_c", Kind::Climate);
        let s = |t: &str| SnmpValue::OctetString(t.as_bytes().to_vec().into());
        assert_eq!(
            decode_value(&m, &s("23.5")).value,
            Some(Value::Number(23.5))
        );
        assert_eq!(
            decode_value(&m, &s(" -4 C")).value,
            Some(Value::Number(-4.0))
        );
        assert_eq!(decode_value(&m, &s("")).quality, Quality::Unknown);
        assert_eq!(decode_value(&m, &s("N/A")).quality, Quality::Unknown);
        assert_eq!(decode_value(&m, &s("warm")).quality, Quality::OutOfRange);
    }

    #[test]
    fn exceptions_are_no_such_object() {
        let m = map("load_pct", Kind::Ups);
        for v in [
            SnmpValue::NoSuchObject,
            SnmpValue::NoSuchInstance,
            SnmpValue::EndOfMibView,
        ] {
            let d = decode_value(&m, &v);
            assert_eq!((d.quality, d.value), (Quality::NoSuchObject, None));
        }
    }

    #[test]
    fn enums_bools_and_unavailable() {
        let mut e = map("output_source", Kind::Ups);
        e.enum_map = vec![(3, "normal"), (4, "on_bypass"), (5, "on_battery")];
        assert_eq!(
            decode_value(&e, &SnmpValue::Integer(5)).value,
            Some(Value::Enum("on_battery"))
        );
        assert_eq!(
            decode_value(&e, &SnmpValue::Integer(9)).quality,
            Quality::OutOfRange
        );
        let mut b = map("on_battery", Kind::Ups);
        b.true_values = vec![5];
        b.unavailable = vec![-1.0];
        assert_eq!(
            decode_value(&b, &SnmpValue::Integer(5)).value,
            Some(Value::Bool(true))
        );
        assert_eq!(
            decode_value(&b, &SnmpValue::Integer(3)).value,
            Some(Value::Bool(false))
        );
        assert_eq!(
            decode_value(&b, &SnmpValue::Integer(-1)).quality,
            Quality::Unknown
        );
    }

    #[test]
    fn out_of_range_keeps_the_number() {
        let mut m = map("battery_charge_pct", Kind::Ups);
        m.max = Some(100.0);
        let d = decode_value(&m, &SnmpValue::Integer(140));
        assert_eq!(
            (d.quality, d.value),
            (Quality::OutOfRange, Some(Value::Number(140.0)))
        );
        assert_eq!(
            decode_value(&m, &SnmpValue::IpAddress([1, 2, 3, 4])).quality,
            Quality::OutOfRange
        );
    }

    #[test]
    fn any_row_in_true_values_is_true() {
        let mut m = map("disk_fault", Kind::Nvr);
        m.true_values = vec![2, 3];
        let any = |v: &[i32]| {
            let rows: Vec<SnmpValue> = v.iter().map(|x| SnmpValue::Integer(*x)).collect();
            let d = decode_column(&m, &Aggregate::Any, &rows.iter().collect::<Vec<_>>());
            (d.quality, d.value)
        };
        assert_eq!(any(&[0, 5, 0]), (Quality::Good, Some(Value::Bool(false))));
        assert_eq!(any(&[0, 3]), (Quality::Good, Some(Value::Bool(true))));
        assert_eq!(any(&[]).0, Quality::NoSuchObject);
    }

    #[test]
    fn columns_reduce() {
        let m = map("load_pct", Kind::Ups);
        let rows = [
            SnmpValue::Integer(31),
            SnmpValue::Integer(47),
            SnmpValue::Integer(12),
        ];
        let refs: Vec<&SnmpValue> = rows.iter().collect();
        assert_eq!(
            decode_column(&m, &Aggregate::Max, &refs).value,
            Some(Value::Number(47.0))
        );
        assert_eq!(
            decode_column(&m, &Aggregate::Min, &refs).value,
            Some(Value::Number(12.0))
        );
        assert_eq!(
            decode_column(&m, &Aggregate::Sum, &refs).value,
            Some(Value::Number(90.0))
        );
        assert_eq!(
            decode_column(&m, &Aggregate::First, &refs).value,
            Some(Value::Number(31.0))
        );
        assert_eq!(
            decode_column(&m, &Aggregate::Max, &[]).quality,
            Quality::NoSuchObject
        );
        let a = map("battery_replace", Kind::Ups);
        let alarm = parse_oid("1.3.6.1.2.1.33.1.6.3.1").unwrap();
        let rows = [
            SnmpValue::ObjectIdentifier(parse_oid("1.3.6.1.2.1.33.1.6.3.2").unwrap()),
            SnmpValue::ObjectIdentifier(alarm.clone()),
        ];
        let refs: Vec<&SnmpValue> = rows.iter().collect();
        let c = Aggregate::Contains(Match::Oid(alarm));
        assert_eq!(decode_column(&a, &c, &refs).value, Some(Value::Bool(true)));
        assert_eq!(
            decode_column(&a, &c, &refs[..1]).value,
            Some(Value::Bool(false))
        );
        assert_eq!(
            decode_column(&a, &c, &[]).value,
            Some(Value::Bool(false)),
            "an empty alarm table means no alarm"
        );
    }

    #[test]
    fn counter_rates_wrap() {
        let m = map("load_pct", Kind::Ups);
        let t0 = Instant::now();
        let mut r = RateState::default();
        assert_eq!(
            r.update(&m, Raw::Counter(u64::from(u32::MAX) - 9, 32), t0)
                .quality,
            Quality::Unknown
        );
        let d = r.update(&m, Raw::Counter(10, 32), t0 + Duration::from_secs(2));
        assert_eq!(
            d.value,
            Some(Value::Number(10.0)),
            "20 counts over 2 s across the 2^32 wrap"
        );
        let d = r.update(&m, Raw::Counter(40, 32), t0 + Duration::from_secs(5));
        assert_eq!(d.value, Some(Value::Number(10.0)));
        let mut r64 = RateState::default();
        r64.update(&m, Raw::Counter(u64::MAX, 64), t0);
        let d = r64.update(&m, Raw::Counter(4, 64), t0 + Duration::from_secs(1));
        assert_eq!(d.value, Some(Value::Number(5.0)));
        let mut g = RateState::default();
        g.update(&m, Raw::Num(100.0), t0);
        assert_eq!(
            g.update(&m, Raw::Num(50.0), t0 + Duration::from_secs(1))
                .quality,
            Quality::Unknown
        );
    }
}
