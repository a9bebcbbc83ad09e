//! Raw Modbus registers and bits → canonical values, and back ([`encode`], used by the
//! simulator).
//!
//! Order of operations when decoding registers, as the profile documents it:
//! 1. byte order: swap the two bytes of each register if `little`;
//! 2. word order: for 32-bit types, the high word is the first register if `big`;
//! 3. type: reinterpret the bits as u16 / i16 / u32 / i32 / f32;
//! 4. `unavailable`: a match on the typed raw value or the unsigned register pattern
//!    gives [`Quality::Unknown`] (so does a NaN or infinite float);
//! 5. `enum`: the typed raw integer → canonical name; an unlisted code is
//!    [`Quality::OutOfRange`]; `enum_bits`: the first listed bit that is set names the
//!    value, none set is [`Quality::OutOfRange`];
//! 6. `value = raw * scale + offset`, then `min`/`max` → [`Quality::OutOfRange`].
//!
//! Booleans from a register: `bit` picks one bit; `true_values` compares the register
//! (unsigned, after byte order) with state codes, after `unavailable`; otherwise
//! non-zero is true. Booleans from coils or discrete inputs: the bit, or any of the
//! `any_of` bits.
//!
//! A decode never panics: a slice shorter than the point (which the planner never
//! produces) is reported as [`Quality::CommError`].

use super::profile::{ByteOrder, PointMap, RegType, WordOrder};
use crate::model::{Quality, Value};
use crate::points::PointType;

pub use crate::sources::Decoded;

/// `"the device sends 0xFFFF (65535): ..."`: a raw register pattern as the manuals
/// write it, hexadecimal with the decimal beside.
fn sends(pattern: u32, width: u16, what: &str) -> String {
    if width == 2 {
        format!("the device sends {pattern:#010x} ({pattern}): {what}")
    } else {
        format!("the device sends {pattern:#06x} ({pattern}): {what}")
    }
}

fn codes_text(codes: &[i64]) -> String {
    codes
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The raw bits a point encodes to, for a register image or a bit table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    /// Whole registers starting at the point's address (1 or 2).
    Registers(Vec<u16>),
    /// One coil or discrete input.
    Bit(bool),
    /// One bit of the register at the point's address; the other bits are kept.
    RegisterBit {
        /// Bit number (0 = least significant).
        bit: u8,
        /// New state of the bit.
        set: bool,
    },
    /// One 4-bit field of the register at the point's address; the others are kept.
    RegisterNibble {
        /// Field number (0 = bits 0-3).
        nibble: u8,
        /// New value of the field, 0-15.
        value: u16,
    },
}

/// A value that cannot be encoded for a point.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// The value's type does not fit the point (a number for a boolean point ...).
    #[error("point `{point}`: a {got} value does not fit this point")]
    Type {
        /// Point name.
        point: &'static str,
        /// Kind of value given.
        got: &'static str,
    },
    /// The enumeration name has no raw code in the profile.
    #[error("point `{point}`: the profile maps no raw code to {name:?}")]
    UnmappedEnum {
        /// Point name.
        point: &'static str,
        /// Enumeration name.
        name: &'static str,
    },
    /// The scaled raw value does not fit the register type.
    #[error(
        "point `{point}`: {value} is outside what a {ty} register can hold with this scale and offset"
    )]
    OutOfRange {
        /// Point name.
        point: &'static str,
        /// Value given.
        value: f64,
        /// Register type.
        ty: &'static str,
    },
}

fn order_bytes(r: u16, order: ByteOrder) -> u16 {
    match order {
        ByteOrder::Big => r,
        ByteOrder::Little => r.swap_bytes(),
    }
}

/// The 32-bit pattern of two registers (after byte order), high word per word order.
fn combine(regs: &[u16], bo: ByteOrder, wo: WordOrder) -> u32 {
    let a = u32::from(order_bytes(regs[0], bo));
    let b = u32::from(order_bytes(regs[1], bo));
    match wo {
        WordOrder::Big => (a << 16) | b,
        WordOrder::Little => (b << 16) | a,
    }
}

fn split(v: u32, bo: ByteOrder, wo: WordOrder) -> Vec<u16> {
    let hi = order_bytes((v >> 16) as u16, bo);
    let lo = order_bytes(v as u16, bo);
    match wo {
        WordOrder::Big => vec![hi, lo],
        WordOrder::Little => vec![lo, hi],
    }
}

/// Typed raw value and unsigned bit pattern of a register-based point.
enum Raw {
    Int { value: i64, pattern: u32 },
    Float { value: f64, pattern: u32 },
}

fn raw_of(map: &PointMap, regs: &[u16]) -> Option<Raw> {
    if regs.len() < usize::from(map.width()) {
        return None;
    }
    let (bo, wo) = (map.byte_order, map.word_order);
    Some(match map.ty {
        RegType::U16 | RegType::Bool => {
            let mut r = order_bytes(regs[0], bo);
            if let Some(n) = map.nibble {
                r = (r >> (4 * n)) & 0xF;
            }
            Raw::Int {
                value: i64::from(r),
                pattern: u32::from(r),
            }
        }
        RegType::I16 => {
            let r = order_bytes(regs[0], bo);
            Raw::Int {
                value: i64::from(r as i16),
                pattern: u32::from(r),
            }
        }
        RegType::U32 => {
            let p = combine(regs, bo, wo);
            Raw::Int {
                value: i64::from(p),
                pattern: p,
            }
        }
        RegType::I32 => {
            let p = combine(regs, bo, wo);
            Raw::Int {
                value: i64::from(p as i32),
                pattern: p,
            }
        }
        RegType::F32 => {
            let p = combine(regs, bo, wo);
            Raw::Float {
                value: f64::from(f32::from_bits(p)),
                pattern: p,
            }
        }
    })
}

/// Decode a register-based point from the registers starting at its address.
pub fn decode_registers(map: &PointMap, regs: &[u16]) -> Decoded {
    let Some(raw) = raw_of(map, regs) else {
        return Decoded::bad(Quality::CommError);
    };
    if map.ty == RegType::Bool {
        let Raw::Int { pattern, .. } = raw else {
            return Decoded::bad(Quality::CommError);
        };
        if !map.true_values.is_empty() {
            let code = i64::from(pattern);
            if map.unavailable.contains(&(code as f64)) {
                return Decoded::because(
                    Quality::Unknown,
                    sends(pattern, 1, "\"not available\" for this point"),
                );
            }
            if map.true_values.contains(&code) {
                return Decoded::good(Value::Bool(true));
            }
            if map.false_values.is_empty() || map.false_values.contains(&code) {
                return Decoded::good(Value::Bool(false));
            }
            return Decoded::because(
                Quality::OutOfRange,
                format!(
                    "state code {code} is neither a true code ({}) nor a false code ({})",
                    codes_text(&map.true_values),
                    codes_text(&map.false_values)
                ),
            );
        }
        let on = match map.bit {
            Some(b) => (pattern >> b) & 1 == 1,
            None => pattern != 0,
        };
        return Decoded::good(Value::Bool(on));
    }
    let (value, pattern) = match raw {
        Raw::Int { value, pattern } => (value as f64, pattern),
        Raw::Float { value, pattern } => (value, pattern),
    };
    if map
        .unavailable
        .iter()
        .any(|u| *u == value || *u == f64::from(pattern))
    {
        return Decoded::because(
            Quality::Unknown,
            sends(pattern, map.ty.width(), "\"not available\" for this point"),
        );
    }
    if !value.is_finite() {
        return Decoded::because(
            Quality::Unknown,
            sends(pattern, 2, "not a finite number (NaN or infinity)"),
        );
    }
    if let PointType::Enum(_) = map.point.ty {
        if map.first_set_bit {
            let bits = i64::from(pattern);
            return match map.enum_map.iter().find(|(mask, _)| bits & mask != 0) {
                Some((_, name)) => Decoded::good(Value::Enum(name)),
                None => Decoded::because(
                    Quality::OutOfRange,
                    sends(pattern, map.ty.width(), "none of the listed bits is set"),
                ),
            };
        }
        let code = value as i64;
        return match map.enum_map.iter().find(|(c, _)| *c == code) {
            Some((_, name)) => Decoded::good(Value::Enum(name)),
            None => Decoded::because(
                Quality::OutOfRange,
                sends(
                    pattern,
                    map.ty.width(),
                    &format!(
                        "code {code} is not one the profile knows ({})",
                        map.enum_map
                            .iter()
                            .map(|(c, n)| format!("{c} {n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            ),
        };
    }
    scaled(map, value)
}

/// Round away binary noise so 229 × 0.1 reads 22.9, not 22.900000000000002, and an f32
/// 0.95 reads 0.95, not 0.949999988079071, keeping `significant` digits: more than a
/// 32-bit integer or an f32 carries, so no information the device sent is lost.
fn tidy(n: f64, significant: i32) -> f64 {
    if n == 0.0 || !n.is_finite() {
        return n;
    }
    let magnitude = n.abs().log10().floor() as i32;
    let decimals = (significant - 1 - magnitude).clamp(0, 15);
    let p = 10f64.powi(decimals);
    let r = (n * p).round() / p;
    if r.is_finite() { r } else { n }
}

fn scaled(map: &PointMap, raw: f64) -> Decoded {
    let digits = if map.ty == RegType::F32 { 7 } else { 12 };
    let n = tidy(raw * map.scale + map.offset, digits);
    let note = crate::sources::profile_checks::range_note(n, map.min, map.max);
    Decoded {
        value: Some(Value::Number(n)),
        quality: if note.is_some() {
            Quality::OutOfRange
        } else {
            Quality::Good
        },
        note,
    }
}

/// Decode a coil or discrete input.
pub fn decode_bit(_map: &PointMap, bit: bool) -> Decoded {
    Decoded::good(Value::Bool(bit))
}

/// Decode a point from the coils or discrete inputs starting at its address: the bit
/// at `address`, or whether any of `any_of` is set.
pub fn decode_bits(map: &PointMap, bits: &[bool]) -> Decoded {
    if map.any_of.is_empty() {
        return match bits.first() {
            Some(b) => decode_bit(map, *b),
            None => Decoded::bad(Quality::CommError),
        };
    }
    let mut any = false;
    for a in &map.any_of {
        match bits.get(usize::from(a - map.address)) {
            Some(b) => any |= *b,
            None => return Decoded::bad(Quality::CommError),
        }
    }
    Decoded::good(Value::Bool(any))
}

/// Encode a canonical value into the raw form the point's device would hold.
pub fn encode(map: &PointMap, value: &Value) -> Result<Encoded, EncodeError> {
    let point = map.point.name;
    let got = match value {
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Enum(_) => "enumeration",
    };
    let type_err = || EncodeError::Type { point, got };
    match (map.point.ty, value) {
        (PointType::Bool, Value::Bool(b)) => {
            if map.table.is_bits() {
                Ok(Encoded::Bit(*b))
            } else if !map.true_values.is_empty() {
                let code = if *b {
                    map.true_values[0]
                } else {
                    match map.false_values.first() {
                        Some(c) => *c,
                        None => (0..).find(|c| !map.true_values.contains(c)).unwrap_or(0),
                    }
                };
                Ok(Encoded::Registers(vec![order_bytes(
                    code as u16,
                    map.byte_order,
                )]))
            } else if let Some(bit) = map.bit {
                Ok(Encoded::RegisterBit { bit, set: *b })
            } else {
                Ok(Encoded::Registers(vec![order_bytes(
                    u16::from(*b),
                    map.byte_order,
                )]))
            }
        }
        (PointType::Enum(_), Value::Enum(name)) => {
            let code = map
                .enum_map
                .iter()
                .find(|(_, n)| n == name)
                .map(|(c, _)| *c)
                .ok_or(EncodeError::UnmappedEnum { point, name })?;
            if let Some(nibble) = map.nibble {
                return Ok(Encoded::RegisterNibble {
                    nibble,
                    value: (code & 0xF) as u16,
                });
            }
            encode_int(map, code, code as f64)
        }
        (PointType::Number, Value::Number(v)) => {
            let raw = (v - map.offset) / map.scale;
            if map.ty == RegType::F32 {
                let f = raw as f32;
                if raw.is_finite() && !f.is_finite() {
                    return Err(EncodeError::OutOfRange {
                        point,
                        value: *v,
                        ty: map.ty.as_str(),
                    });
                }
                Ok(Encoded::Registers(split(
                    f.to_bits(),
                    map.byte_order,
                    map.word_order,
                )))
            } else {
                let r = raw.round();
                if !r.is_finite() || r.abs() > 1e12 {
                    return Err(EncodeError::OutOfRange {
                        point,
                        value: *v,
                        ty: map.ty.as_str(),
                    });
                }
                encode_int(map, r as i64, *v)
            }
        }
        _ => Err(type_err()),
    }
}

fn encode_int(map: &PointMap, raw: i64, shown: f64) -> Result<Encoded, EncodeError> {
    let (lo, hi) = match map.ty {
        RegType::U16 => (0, i64::from(u16::MAX)),
        RegType::I16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        RegType::U32 => (0, i64::from(u32::MAX)),
        RegType::I32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        RegType::F32 => {
            let f = raw as f32;
            return Ok(Encoded::Registers(split(
                f.to_bits(),
                map.byte_order,
                map.word_order,
            )));
        }
        RegType::Bool => (0, 1),
    };
    if raw < lo || raw > hi {
        return Err(EncodeError::OutOfRange {
            point: map.point.name,
            value: shown,
            ty: map.ty.as_str(),
        });
    }
    let pattern = raw as u32; // two's complement for negative i16/i32
    Ok(Encoded::Registers(match map.ty {
        RegType::U16 | RegType::I16 | RegType::Bool => {
            vec![order_bytes(pattern as u16, map.byte_order)]
        }
        _ => split(pattern, map.byte_order, map.word_order),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::points;
    use crate::sources::modbus::profile::Table;

    fn map(point: &str, ty: RegType, bo: ByteOrder, wo: WordOrder, scale: f64) -> PointMap {
        let kind = if points::lookup(Kind::Generator, point).is_some() {
            Kind::Generator
        } else {
            Kind::Climate
        };
        PointMap {
            point: points::lookup(kind, point).unwrap(),
            table: Table::Holding,
            address: 0,
            ty,
            scale,
            offset: 0.0,
            bit: None,
            enum_map: Vec::new(),
            unavailable: Vec::new(),
            min: None,
            max: None,
            byte_order: bo,
            word_order: wo,
            source: "test".into(),
            true_values: Vec::new(),
            false_values: Vec::new(),
            any_of: Vec::new(),
            first_set_bit: false,
            nibble: None,
        }
    }

    use ByteOrder as B;
    use RegType as T;
    use WordOrder as W;

    /// (type, byte order, word order, scale, registers, expected value)
    type Case = (RegType, ByteOrder, WordOrder, f64, &'static [u16], f64);
    const GOLDEN: &[Case] = &[
        // XY-MD02 manual examples: 0x0131 = 30.5 °C, 0xFF33 = -20.5 °C, 0x0222 = 54.6 %RH.
        (T::I16, B::Big, W::Big, 0.1, &[0x0131], 30.5),
        (T::I16, B::Big, W::Big, 0.1, &[0xFF33], -20.5),
        (T::U16, B::Big, W::Big, 0.1, &[0x0222], 54.6),
        // The same register unsigned: 65331 * 0.1.
        (T::U16, B::Big, W::Big, 0.1, &[0xFF33], 6533.1),
        // Byte-swapped 16-bit.
        (T::I16, B::Little, W::Big, 0.1, &[0x3101], 30.5),
        (T::I16, B::Little, W::Big, 1.0, &[0x00FF], -256.0),
        (T::I16, B::Big, W::Big, 1.0, &[0x8000], -32768.0),
        // 32-bit integers: 0x0001_E240 = 123456, -123456 = 0xFFFE_1DC0.
        (T::U32, B::Big, W::Big, 1.0, &[0x0001, 0xE240], 123456.0),
        (T::U32, B::Big, W::Little, 1.0, &[0xE240, 0x0001], 123456.0),
        (T::I32, B::Big, W::Big, 1.0, &[0xFFFE, 0x1DC0], -123456.0),
        (T::I32, B::Big, W::Little, 1.0, &[0x1DC0, 0xFFFE], -123456.0),
        (T::I32, B::Little, W::Big, 1.0, &[0xFEFF, 0xC01D], -123456.0),
        (
            T::I32,
            B::Little,
            W::Little,
            0.01,
            &[0xC01D, 0xFEFF],
            -1234.56,
        ),
        (T::U32, B::Big, W::Big, 0.1, &[0xFFFF, 0xFFFF], 429496729.5),
        // f32 123.456 = 0x42F6E979 across the register boundary, in all four orders.
        (T::F32, B::Big, W::Big, 1.0, &[0x42F6, 0xE979], 123.456),
        (T::F32, B::Big, W::Little, 1.0, &[0xE979, 0x42F6], 123.456),
        (T::F32, B::Little, W::Big, 1.0, &[0xF642, 0x79E9], 123.456),
        (
            T::F32,
            B::Little,
            W::Little,
            1.0,
            &[0x79E9, 0xF642],
            123.456,
        ),
        // f32 -40.25 = 0xC2210000.
        (T::F32, B::Big, W::Big, 1.0, &[0xC221, 0x0000], -40.25),
        (T::F32, B::Big, W::Little, 1.0, &[0x0000, 0xC221], -40.25),
        // SDM630 test vectors (docs/PROFILES.md S5, S7): -0.98 = 0xBF7AE148 and
        // 12345.5 = 0x4640E600, high word first, then the other three orders.
        (T::F32, B::Big, W::Big, 1.0, &[0xBF7A, 0xE148], -0.98),
        (T::F32, B::Big, W::Little, 1.0, &[0xE148, 0xBF7A], -0.98),
        (T::F32, B::Little, W::Big, 1.0, &[0x7ABF, 0x48E1], -0.98),
        (T::F32, B::Little, W::Little, 1.0, &[0x48E1, 0x7ABF], -0.98),
        (T::F32, B::Big, W::Big, 1.0, &[0x4640, 0xE600], 12345.5),
        (T::F32, B::Big, W::Little, 1.0, &[0xE600, 0x4640], 12345.5),
        // Negative 16-bit values with scales: -1, DSE coolant 0xFFF6 = -10 °C
        // (PROFILES.md D4), APC battery temperature 0xFF00 / 2^7 = -2 °C (A10).
        (T::I16, B::Big, W::Big, 1.0, &[0xFFFF], -1.0),
        (T::I16, B::Big, W::Big, 1.0, &[0xFFF6], -10.0),
        (T::I16, B::Big, W::Big, 0.0078125, &[0xFF00], -2.0),
        (T::I16, B::Little, W::Big, 0.0078125, &[0x00FF], -2.0),
        // 32-bit extremes and a negative scaled i32: DSE load -1000 W = -1 kW (D10).
        (
            T::I32,
            B::Big,
            W::Big,
            1.0,
            &[0x8000, 0x0000],
            -2147483648.0,
        ),
        (T::I32, B::Big, W::Big, 0.001, &[0xFFFF, 0xFC18], -1.0),
        (T::I32, B::Big, W::Little, 0.001, &[0xFC18, 0xFFFF], -1.0),
        (T::U32, B::Big, W::Little, 0.1, &[0x08FC, 0x0000], 230.0),
    ];

    #[test]
    fn golden_table() {
        for (i, (ty, bo, wo, scale, regs, want)) in GOLDEN.iter().enumerate() {
            let m = map("load_kw", *ty, *bo, *wo, *scale);
            let d = decode_registers(&m, regs);
            assert_eq!(d.quality, Quality::Good, "case {i}");
            let got = d.value.and_then(|v| v.as_f64()).unwrap();
            assert!(
                (got - want).abs() < 1e-4,
                "case {i}: got {got}, want {want}"
            );
        }
    }

    #[test]
    fn golden_table_encodes_back() {
        for (i, (ty, bo, wo, scale, regs, want)) in GOLDEN.iter().enumerate() {
            let m = map("load_kw", *ty, *bo, *wo, *scale);
            assert_eq!(
                encode(&m, &Value::Number(*want)),
                Ok(Encoded::Registers(regs.to_vec())),
                "case {i}"
            );
        }
    }

    #[test]
    fn scaling_noise_is_rounded_away() {
        let m = map("load_kw", RegType::U16, ByteOrder::Big, WordOrder::Big, 0.1);
        assert_eq!(
            decode_registers(&m, &[229]).value,
            Some(Value::Number(22.9))
        );
        let m = map("load_kw", RegType::F32, ByteOrder::Big, WordOrder::Big, 1.0);
        let b = 0.95f32.to_bits();
        let regs = [(b >> 16) as u16, b as u16];
        assert_eq!(decode_registers(&m, &regs).value, Some(Value::Number(0.95)));
        assert_eq!(tidy(-20.5, 12), -20.5);
        assert_eq!(tidy(182_345.0, 7), 182_345.0);
    }

    #[test]
    fn offset_applies_after_scale() {
        let mut m = map("load_kw", T::U16, B::Big, W::Big, 0.5);
        m.offset = -40.0;
        let d = decode_registers(&m, &[100]);
        assert_eq!(
            d,
            Decoded {
                value: Some(Value::Number(10.0)),
                quality: Quality::Good,
                note: None,
            }
        );
        assert_eq!(
            encode(&m, &Value::Number(10.0)),
            Ok(Encoded::Registers(vec![100]))
        );
    }

    #[test]
    fn bits_of_a_register() {
        let mut m = map("engine_running", T::Bool, B::Big, W::Big, 1.0);
        m.bit = Some(3);
        assert_eq!(
            decode_registers(&m, &[0b1000]).value,
            Some(Value::Bool(true))
        );
        assert_eq!(
            decode_registers(&m, &[0b0111]).value,
            Some(Value::Bool(false))
        );
        m.bit = Some(15);
        assert_eq!(
            decode_registers(&m, &[0x8000]).value,
            Some(Value::Bool(true))
        );
        m.byte_order = B::Little;
        assert_eq!(
            decode_registers(&m, &[0x0080]).value,
            Some(Value::Bool(true))
        );
        m.bit = None;
        assert_eq!(
            decode_registers(&m, &[0x0000]).value,
            Some(Value::Bool(false))
        );
        assert_eq!(
            decode_registers(&m, &[0x0100]).value,
            Some(Value::Bool(true))
        );
        assert_eq!(
            encode(&m, &Value::Bool(true)),
            Ok(Encoded::Registers(vec![0x0100]))
        );
        m.bit = Some(4);
        assert_eq!(
            encode(&m, &Value::Bool(true)),
            Ok(Encoded::RegisterBit { bit: 4, set: true })
        );
    }

    #[test]
    fn coils_decode_and_encode() {
        let mut m = map("engine_running", T::Bool, B::Big, W::Big, 1.0);
        m.table = Table::Coil;
        assert_eq!(decode_bit(&m, true).value, Some(Value::Bool(true)));
        assert_eq!(encode(&m, &Value::Bool(false)), Ok(Encoded::Bit(false)));
    }

    #[test]
    fn enumerations() {
        let mut m = map("mode", T::U16, B::Big, W::Big, 1.0);
        m.enum_map = vec![(0, "stop"), (1, "auto"), (4, "manual")];
        assert_eq!(
            decode_registers(&m, &[4]),
            Decoded {
                value: Some(Value::Enum("manual")),
                quality: Quality::Good,
                note: None,
            }
        );
        assert_eq!(
            decode_registers(&m, &[2]),
            Decoded {
                value: None,
                quality: Quality::OutOfRange,
                note: Some(
                    "the device sends 0x0002 (2): code 2 is not one the profile knows (0 stop, 1 auto, 4 manual)"
                        .into()
                ),
            }
        );
        assert_eq!(
            encode(&m, &Value::Enum("auto")),
            Ok(Encoded::Registers(vec![1]))
        );
        assert_eq!(
            encode(&m, &Value::Enum("test")),
            Err(EncodeError::UnmappedEnum {
                point: "mode",
                name: "test"
            })
        );
        m.ty = T::I16;
        m.enum_map = vec![(-1, "unknown")];
        assert_eq!(
            decode_registers(&m, &[0xFFFF]).value,
            Some(Value::Enum("unknown"))
        );
    }

    #[test]
    fn booleans_from_state_codes() {
        // DSE engine operating state: 2, 3, 4 turn the engine; 15 = not available.
        let mut m = map("engine_running", T::Bool, B::Big, W::Big, 1.0);
        m.true_values = vec![2, 3, 4];
        m.false_values = vec![0, 1, 5, 6];
        m.unavailable = vec![15.0];
        let q = |m: &PointMap, raw: u16| {
            let d = decode_registers(m, &[raw]);
            (d.value, d.quality)
        };
        assert_eq!(q(&m, 3), (Some(Value::Bool(true)), Quality::Good));
        assert_eq!(q(&m, 4), (Some(Value::Bool(true)), Quality::Good));
        assert_eq!(q(&m, 0), (Some(Value::Bool(false)), Quality::Good));
        assert_eq!(q(&m, 15), (None, Quality::Unknown));
        assert_eq!(
            q(&m, 9),
            (None, Quality::OutOfRange),
            "a code in neither list"
        );
        assert_eq!(
            encode(&m, &Value::Bool(true)),
            Ok(Encoded::Registers(vec![2]))
        );
        assert_eq!(
            encode(&m, &Value::Bool(false)),
            Ok(Encoded::Registers(vec![0]))
        );
        // Without false_values every other code is false.
        m.false_values.clear();
        assert_eq!(q(&m, 9), (Some(Value::Bool(false)), Quality::Good));
        m.true_values = vec![0, 1];
        assert_eq!(
            encode(&m, &Value::Bool(false)),
            Ok(Encoded::Registers(vec![2]))
        );
    }

    #[test]
    fn booleans_from_any_of_several_bits() {
        let mut m = map("engine_running", T::Bool, B::Big, W::Big, 1.0);
        m.table = Table::Discrete;
        m.address = 33;
        m.any_of = vec![33, 34, 36, 37, 38];
        assert_eq!(m.width(), 6);
        let all_off = [false; 6];
        assert_eq!(decode_bits(&m, &all_off).value, Some(Value::Bool(false)));
        // 35 is not in the set.
        assert_eq!(
            decode_bits(&m, &[false, false, true, false, false, false]).value,
            Some(Value::Bool(false))
        );
        assert_eq!(
            decode_bits(&m, &[false, false, false, false, false, true]).value,
            Some(Value::Bool(true))
        );
        assert_eq!(
            decode_bits(&m, &[false; 3]).quality,
            Quality::CommError,
            "short read"
        );
    }

    #[test]
    fn enumeration_from_a_nibble() {
        // DSE GenComm page 154: four 4-bit alarm codes per register.
        let mut m = map(
            "alarm_fail_to_start",
            RegType::U16,
            ByteOrder::Big,
            WordOrder::Big,
            1.0,
        );
        m.nibble = Some(2);
        m.enum_map = vec![(1, "inactive"), (2, "warning"), (3, "shutdown")];
        m.unavailable = vec![15.0];
        assert_eq!(
            decode_registers(&m, &[0x1311]).value,
            Some(Value::Enum("shutdown"))
        );
        assert_eq!(
            decode_registers(&m, &[0x3133]).value,
            Some(Value::Enum("inactive"))
        );
        assert_eq!(decode_registers(&m, &[0x1F11]).quality, Quality::Unknown);
        assert_eq!(decode_registers(&m, &[0x1711]).quality, Quality::OutOfRange);
        // And back: only the field changes.
        assert_eq!(
            encode(&m, &Value::Enum("warning")),
            Ok(Encoded::RegisterNibble {
                nibble: 2,
                value: 2
            })
        );
    }

    #[test]
    fn enumeration_from_the_first_set_bit() {
        // APC UPSStatus_BF: bit 4 output off, 2 on battery, 3 bypass, 1 online.
        let mut m = map("mode", T::U16, B::Big, W::Big, 1.0);
        m.first_set_bit = true;
        m.enum_map = vec![(1 << 4, "stop"), (1 << 2, "manual"), (1 << 1, "auto")];
        let v = |raw: u16| decode_registers(&m, &[raw]);
        assert_eq!(v(0x0002).value, Some(Value::Enum("auto")));
        assert_eq!(
            v(0x0006).value,
            Some(Value::Enum("manual")),
            "listed first wins"
        );
        assert_eq!(v(0x0016).value, Some(Value::Enum("stop")));
        assert_eq!(v(0x0020).quality, Quality::OutOfRange, "no listed bit set");
        assert_eq!(
            encode(&m, &Value::Enum("manual")),
            Ok(Encoded::Registers(vec![0x0004]))
        );
    }

    #[test]
    fn unavailable_matches_typed_value_or_pattern() {
        let mut m = map("temperature_c", T::I16, B::Big, W::Big, 0.1);
        m.unavailable = vec![32767.0, f64::from(0x8000u16)];
        assert_eq!(decode_registers(&m, &[0x7FFF]).quality, Quality::Unknown);
        assert_eq!(decode_registers(&m, &[0x8000]).quality, Quality::Unknown);
        assert_eq!(decode_registers(&m, &[0x7FFE]).quality, Quality::Good);
        m.unavailable = vec![-1.0];
        assert_eq!(decode_registers(&m, &[0xFFFF]).quality, Quality::Unknown);
        // NaN from a float register is "not available" too.
        let f = map("temperature_c", T::F32, B::Big, W::Big, 1.0);
        assert_eq!(
            decode_registers(&f, &[0x7FC0, 0x0000]).quality,
            Quality::Unknown
        );
    }

    #[test]
    fn min_max_give_out_of_range() {
        let mut m = map("temperature_c", T::I16, B::Big, W::Big, 0.1);
        m.min = Some(-40.0);
        m.max = Some(125.0);
        assert_eq!(decode_registers(&m, &[1250]).quality, Quality::Good);
        let d = decode_registers(&m, &[1251]);
        assert_eq!(d.quality, Quality::OutOfRange);
        assert!(matches!(d.value, Some(Value::Number(v)) if (v - 125.1).abs() < 1e-9));
        assert_eq!(
            decode_registers(&m, &[(-401i16) as u16]).quality,
            Quality::OutOfRange
        );
    }

    #[test]
    fn short_slice_is_a_comm_error_not_a_panic() {
        let m = map("load_kw", T::F32, B::Big, W::Big, 1.0);
        assert_eq!(decode_registers(&m, &[1]).quality, Quality::CommError);
    }

    #[test]
    fn encode_rejects_what_does_not_fit() {
        let m = map("load_kw", T::U16, B::Big, W::Big, 0.1);
        assert!(matches!(
            encode(&m, &Value::Number(-1.0)),
            Err(EncodeError::OutOfRange { .. })
        ));
        assert!(matches!(
            encode(&m, &Value::Number(6553.6)),
            Err(EncodeError::OutOfRange { .. })
        ));
        assert_eq!(
            encode(&m, &Value::Number(6553.5)),
            Ok(Encoded::Registers(vec![65535]))
        );
        assert!(matches!(
            encode(&m, &Value::Bool(true)),
            Err(EncodeError::Type { .. })
        ));
    }
}
