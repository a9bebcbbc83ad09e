//! Modbus device profiles: a register map as data (`config/profiles/*.toml`), mapping a
//! vendor's registers to canonical points.
//!
//! A profile is parsed in two steps: serde reads the TOML into `Raw*` structs (a syntax
//! error stops there and is reported as `origin:line:column: message`), then every entry
//! is validated against the canonical vocabulary ([`crate::points`]) and the register
//! type rules below. What comes out is a [`Profile`] that cannot be wrong:
//!
//! - every point exists for the profile's kind, at most once;
//! - a boolean point is read as `bool` (a coil, a discrete input, or a register bit), an
//!   enumeration point through an `enum` table whose names are in the vocabulary, a
//!   number point as a numeric register type;
//! - coils and discrete inputs carry only `bool`; `bit` is 0..=15 and only on registers;
//! - a 32-bit value does not run past address 65535;
//! - every point names its `source` in the vendor documentation.
//!
//! Format (one `[[points]]` table per mapped point):
//!
//! ```toml
//! id = "xy-md02"
//! kind = "climate"                  # device kind (model::Kind)
//! protocol = "modbus"
//! description = "..."
//! source = "vendor document, edition/date"
//! byte_order = "big"                # big | little: bytes within a 16-bit register
//! word_order = "big"                # big (high word first) | little: 32-bit values
//! max_gap_registers = 4             # optional: merge reads across holes this small
//! max_gap_bits = 32                 # optional: same for coils / discrete inputs
//! high_addresses_are_real = true    # optional: see "Addresses" below
//!
//! [[points]]
//! point = "temperature_c"           # canonical name for `kind`
//! table = "input"                   # holding | input | coil | discrete
//! address = 1                       # 0-based protocol address, as on the wire
//! type = "i16"                      # u16 | i16 | u32 | i32 | f32 | bool
//! scale = 0.1                       # value = raw * scale + offset
//! offset = 0.0
//! bit = 3                           # bool from one register bit (0 = least significant)
//! nibble = 3                        # u16: one 4-bit field (0 = bits 0-3, 3 = bits 12-15)
//! enum = { 0 = "stop", 1 = "auto" } # raw integer -> canonical enumeration name
//! unavailable = [32767]             # raw values meaning "not available" -> unknown
//! min = -40.0                       # valid range after scaling -> out_of_range
//! max = 125.0
//! byte_order = "little"             # optional per-point override
//! source = "manual p.4, table 'Modbus registers', 0x0001"
//! ```
//!
//! Booleans and enumerations that vendors pack differently:
//!
//! ```toml
//! true_values = [2, 3, 4]           # bool from a register holding a state code: true
//! false_values = [0, 1, 5, 6]       #   for these codes; with false_values, any other
//!                                   #   code is out_of_range (without: false)
//! any_of = [33, 34, 36]             # bool over several coils / discrete inputs: true
//!                                   #   when any is set (instead of `address`)
//! enum_bits = [{ bit = 2, value = "on_battery" }, { bit = 1, value = "normal" }]
//!                                   # enumeration from a bit field: the first listed
//!                                   #   bit that is set wins; none set -> out_of_range
//! ```
//!
//! Addresses: `address` is the 0-based protocol address sent on the wire. Manuals
//! often print the 1-based Modicon reference instead (40001 = holding register 0,
//! 30001 = input register 0). An address from 30001 to 49999 on a register table
//! looks like one, and `check-config` warns with the number to write, unless the
//! profile says `high_addresses_are_real = true` (DSE GenComm page 154 at 39424,
//! SunSpec maps at 40000 really live there).
//!
//! A `bool` on a register without `bit` or `true_values` is true when the register is
//! not zero; `true_values` and `unavailable` compare the register as an unsigned 16-bit
//! number.
//! `unavailable` matches either the typed raw value (`-1` for an i16) or the register
//! pattern as an unsigned number (`0xFFFF`), so vendor tables can be copied as written.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::plan::{self, Plan, PlanOptions};
pub use crate::config::span::ProfileError;
use crate::config::span::{self, ProfileErrors};
use crate::model::Kind;
use crate::points::{PointId, PointType};
use crate::sources::profile_checks as checks;

/// The profiles shipped in the binary: `(file name, TOML text)`.
pub fn shipped() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "xy-md02.toml",
            include_str!("../../../config/profiles/xy-md02.toml"),
        ),
        (
            "dse-gencomm.toml",
            include_str!("../../../config/profiles/dse-gencomm.toml"),
        ),
        (
            "abb-ats022.toml",
            include_str!("../../../config/profiles/abb-ats022.toml"),
        ),
        (
            "apc-smart-ups.toml",
            include_str!("../../../config/profiles/apc-smart-ups.toml"),
        ),
        (
            "liebert-icom.toml",
            include_str!("../../../config/profiles/liebert-icom.toml"),
        ),
        (
            "sdm630.toml",
            include_str!("../../../config/profiles/sdm630.toml"),
        ),
        (
            "dcgw-node-climate.toml",
            include_str!("../../../config/profiles/dcgw-node-climate.toml"),
        ),
        (
            "dcgw-node-leak.toml",
            include_str!("../../../config/profiles/dcgw-node-leak.toml"),
        ),
        (
            "dcgw-node-door.toml",
            include_str!("../../../config/profiles/dcgw-node-door.toml"),
        ),
        (
            "adam-4051-fire-panel.toml",
            include_str!("../../../config/profiles/adam-4051-fire-panel.toml"),
        ),
        (
            "adam-4051-leak.toml",
            include_str!("../../../config/profiles/adam-4051-leak.toml"),
        ),
        (
            "adam-4051-door.toml",
            include_str!("../../../config/profiles/adam-4051-door.toml"),
        ),
        (
            "adam-4051-surge.toml",
            include_str!("../../../config/profiles/adam-4051-surge.toml"),
        ),
        (
            "adam-4051-ats.toml",
            include_str!("../../../config/profiles/adam-4051-ats.toml"),
        ),
        (
            "adam-4051-generator.toml",
            include_str!("../../../config/profiles/adam-4051-generator.toml"),
        ),
        (
            "adam-6050-fire-panel.toml",
            include_str!("../../../config/profiles/adam-6050-fire-panel.toml"),
        ),
        (
            "adam-6050-leak.toml",
            include_str!("../../../config/profiles/adam-6050-leak.toml"),
        ),
        (
            "adam-6050-door.toml",
            include_str!("../../../config/profiles/adam-6050-door.toml"),
        ),
        (
            "adam-6050-surge.toml",
            include_str!("../../../config/profiles/adam-6050-surge.toml"),
        ),
        (
            "adam-6050-ats.toml",
            include_str!("../../../config/profiles/adam-6050-ats.toml"),
        ),
        (
            "adam-6050-generator.toml",
            include_str!("../../../config/profiles/adam-6050-generator.toml"),
        ),
    ]
}

/// A Modbus data table (the four primary tables of the Modbus data model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Holding registers, read with function 0x03.
    Holding,
    /// Input registers, read with function 0x04.
    Input,
    /// Coils, read with function 0x01.
    Coil,
    /// Discrete inputs, read with function 0x02.
    Discrete,
}

impl Table {
    /// Every table, in planning order.
    pub const ALL: [Table; 4] = [Table::Holding, Table::Input, Table::Coil, Table::Discrete];

    /// The name used in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Holding => "holding",
            Table::Input => "input",
            Table::Coil => "coil",
            Table::Discrete => "discrete",
        }
    }

    /// Whether the table holds single bits (coils, discrete inputs) rather than
    /// 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::Discrete)
    }

    /// The Modbus function code that reads this table.
    pub fn read_function(self) -> u8 {
        match self {
            Table::Coil => 0x01,
            Table::Discrete => 0x02,
            Table::Holding => 0x03,
            Table::Input => 0x04,
        }
    }

    fn parse(s: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// How a point's raw bits are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegType {
    /// Unsigned 16-bit register.
    U16,
    /// Signed (two's complement) 16-bit register.
    I16,
    /// Unsigned 32-bit value over two registers.
    U32,
    /// Signed 32-bit value over two registers.
    I32,
    /// IEEE 754 single-precision float over two registers.
    F32,
    /// A coil, a discrete input, or a register (bit).
    Bool,
}

impl RegType {
    const ALL: [RegType; 6] = [
        RegType::U16,
        RegType::I16,
        RegType::U32,
        RegType::I32,
        RegType::F32,
        RegType::Bool,
    ];

    /// The name used in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            RegType::U16 => "u16",
            RegType::I16 => "i16",
            RegType::U32 => "u32",
            RegType::I32 => "i32",
            RegType::F32 => "f32",
            RegType::Bool => "bool",
        }
    }

    /// Registers occupied (1 for bits too).
    pub fn width(self) -> u16 {
        match self {
            RegType::U32 | RegType::I32 | RegType::F32 => 2,
            _ => 1,
        }
    }

    /// Whether the type is an integer (usable with `enum` tables).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            RegType::U16 | RegType::I16 | RegType::U32 | RegType::I32
        )
    }

    fn parse(s: &str) -> Option<RegType> {
        RegType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Order of the two bytes inside a 16-bit register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// Most significant byte first (the Modbus standard).
    Big,
    /// Least significant byte first.
    Little,
}

/// Order of the two registers of a 32-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordOrder {
    /// High word at the lower address.
    Big,
    /// Low word at the lower address ("word swapped").
    Little,
}

/// One mapped point: where its raw value lives and how to turn it into a canonical value.
#[derive(Debug, Clone)]
pub struct PointMap {
    /// The canonical point.
    pub point: PointId,
    /// Table the value is read from.
    pub table: Table,
    /// 0-based protocol address of the first register or bit.
    pub address: u16,
    /// Raw type.
    pub ty: RegType,
    /// `value = raw * scale + offset`.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// For `bool` from a register: the bit (0 = least significant).
    pub bit: Option<u8>,
    /// Raw integer → canonical enumeration name; empty unless the point is an enumeration.
    pub enum_map: Vec<(i64, &'static str)>,
    /// Raw values that mean "not available".
    pub unavailable: Vec<f64>,
    /// Lowest valid value after scaling.
    pub min: Option<f64>,
    /// Highest valid value after scaling.
    pub max: Option<f64>,
    /// Byte order within each register.
    pub byte_order: ByteOrder,
    /// Word order of 32-bit values.
    pub word_order: WordOrder,
    /// Where this register is documented.
    pub source: String,
    /// For a boolean from a register holding a state code: the codes meaning `true`
    /// (empty: not used).
    pub true_values: Vec<i64>,
    /// With `true_values`: the codes meaning `false`; when given, any other code is out
    /// of range. Empty: every code not in `true_values` is `false`.
    pub false_values: Vec<i64>,
    /// For a boolean over several coils or discrete inputs: their addresses, lowest
    /// first (`address` is the lowest); true when any is set. Empty: only `address`.
    pub any_of: Vec<u16>,
    /// For an enumeration from a bit field: `enum_map` holds `(1 << bit, name)` in
    /// priority order and the first set bit wins.
    pub first_set_bit: bool,
    /// For a `u16` register packing four 4-bit fields (DSE GenComm page 154 named
    /// alarms): the field read, 0 = bits 0-3 … 3 = bits 12-15; `enum`, `unavailable`
    /// and the codes then apply to the field's value 0-15. `None`: the whole register.
    pub nibble: Option<u8>,
}

impl PointMap {
    /// Registers (or bits) this point occupies, from `address` on.
    pub fn width(&self) -> u16 {
        match self.any_of.last() {
            Some(last) => last - self.address + 1,
            None => self.ty.width(),
        }
    }
}

/// A validated Modbus device profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Profile id (`xy-md02`), referenced by devices in the site config.
    pub id: String,
    /// Device kind whose vocabulary the points belong to.
    pub kind: Kind,
    /// One line for operators.
    pub description: String,
    /// Vendor document the map was taken from.
    pub source: String,
    /// Mapped points in file order.
    pub points: Vec<PointMap>,
    /// How reads are merged for this device model.
    pub plan_options: PlanOptions,
    /// Things that are valid but probably not meant (an address that looks like
    /// 4xxxx numbering), for `check-config` to print; never a reason to refuse.
    pub warnings: Vec<ProfileError>,
}

impl Profile {
    /// The requests that read every point of this profile.
    pub fn plan(&self) -> Plan {
        plan::plan(&self.points, self.plan_options)
    }

    /// The mapping of one canonical point, by name.
    pub fn point(&self, name: &str) -> Option<&PointMap> {
        self.points.iter().find(|p| p.point.name == name)
    }
}

/// Parse and validate a profile; the first problem found is the error.
pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
    parse_all(text, origin).map_err(|mut errs| errs.swap_remove(0))
}

/// Parse and validate a profile, reporting every semantic problem found (a TOML syntax
/// error stops parsing, so it is reported alone). The error list is never empty.
pub fn parse_all(text: &str, origin: &str) -> Result<Profile, Vec<ProfileError>> {
    let raw: RawProfile = span::parse_raw(text, origin)?;
    let mut v = Validator {
        errors: ProfileErrors::new(text, origin),
        warnings: Vec::new(),
    };
    let mut profile = v.profile(raw);
    if let Some(p) = &mut profile {
        p.warnings = v
            .warnings
            .drain(..)
            .map(|(at, message)| {
                let (line, column) = span::line_col(text, at.start);
                ProfileError {
                    origin: origin.to_string(),
                    line,
                    column,
                    message,
                }
            })
            .collect();
    }
    v.errors.finish(profile)
}

/// The warning for an address that looks like 1-based Modicon numbering (30001–39999
/// input, 40001–49999 holding), saying which number to write; `None` for any other.
pub fn modicon_lookalike(point: &str, table: Table, address: u16) -> Option<String> {
    let a = u32::from(address);
    let (base, meant) = match a {
        30_001..=39_999 => (30_001, Table::Input),
        40_001..=49_999 => (40_001, Table::Holding),
        _ => return None,
    };
    if table.is_bits() {
        return None;
    }
    let wire = a - base;
    let fix = if meant == table {
        format!("write address = {wire}")
    } else {
        format!("write table = \"{}\", address = {wire}", meant.as_str())
    };
    Some(format!(
        "point `{point}`: address {a} looks like the manual's 1-based {}xxxx numbering ({} register {a} is protocol address {wire}): {fix}; if the device really uses address {a}, set high_addresses_are_real = true in the profile",
        base / 10_000,
        meant.as_str()
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    id: Spanned<String>,
    kind: Spanned<String>,
    protocol: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    byte_order: Option<Spanned<String>>,
    #[serde(default)]
    word_order: Option<Spanned<String>>,
    #[serde(default)]
    max_gap_registers: Option<Spanned<i64>>,
    #[serde(default)]
    max_gap_bits: Option<Spanned<i64>>,
    #[serde(default)]
    high_addresses_are_real: Option<bool>,
    #[serde(default)]
    points: Vec<Spanned<RawPoint>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    point: Spanned<String>,
    table: Spanned<String>,
    #[serde(default)]
    address: Option<Spanned<i64>>,
    #[serde(rename = "type")]
    ty: Spanned<String>,
    #[serde(default)]
    scale: Option<Spanned<f64>>,
    #[serde(default)]
    offset: Option<f64>,
    #[serde(default)]
    bit: Option<Spanned<i64>>,
    #[serde(default)]
    nibble: Option<Spanned<i64>>,
    #[serde(default, rename = "enum")]
    enum_map: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(default)]
    unavailable: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    min: Option<Spanned<f64>>,
    #[serde(default)]
    max: Option<Spanned<f64>>,
    #[serde(default)]
    byte_order: Option<Spanned<String>>,
    #[serde(default)]
    word_order: Option<Spanned<String>>,
    #[serde(default)]
    source: Option<Spanned<String>>,
    #[serde(default)]
    true_values: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    false_values: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    any_of: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    enum_bits: Option<Spanned<Vec<Spanned<RawEnumBit>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnumBit {
    bit: Spanned<i64>,
    value: Spanned<String>,
}

/// What a point's `source` names.
const SOURCE_HINT: &str =
    "name the vendor document, page and table where this register is documented";

struct Validator<'a> {
    errors: ProfileErrors<'a>,
    warnings: Vec<(Range<usize>, String)>,
}

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push(span, message);
    }

    fn byte_order(&mut self, s: &Option<Spanned<String>>, default: ByteOrder) -> ByteOrder {
        match s {
            None => default,
            Some(s) => match s.get_ref().as_str() {
                "big" => ByteOrder::Big,
                "little" => ByteOrder::Little,
                other => {
                    self.err(
                        s.span(),
                        format!("unknown byte_order {other:?}: use \"big\" or \"little\""),
                    );
                    default
                }
            },
        }
    }

    fn word_order(&mut self, s: &Option<Spanned<String>>, default: WordOrder) -> WordOrder {
        match s {
            None => default,
            Some(s) => match s.get_ref().as_str() {
                "big" => WordOrder::Big,
                "little" => WordOrder::Little,
                other => {
                    self.err(s.span(), format!("unknown word_order {other:?}: use \"big\" (high word first) or \"little\""));
                    default
                }
            },
        }
    }

    fn gap(&mut self, s: &Option<Spanned<i64>>, default: u16, max: u16, key: &str) -> u16 {
        match s {
            None => default,
            Some(s) => match u16::try_from(*s.get_ref()) {
                Ok(v) if v <= max => v,
                _ => {
                    self.err(
                        s.span(),
                        format!("{key} = {} is out of range: use 0 to {max}", s.get_ref()),
                    );
                    default
                }
            },
        }
    }

    fn profile(&mut self, raw: RawProfile) -> Option<Profile> {
        let id = checks::profile_id(&mut self.errors, &raw.id);
        if raw.protocol.get_ref() != "modbus" {
            self.err(
                raw.protocol.span(),
                format!(
                    "protocol {:?} is not handled by Modbus profiles: use \"modbus\"",
                    raw.protocol.get_ref()
                ),
            );
        }
        let kind = checks::kind(&mut self.errors, &raw.kind);
        let byte_order = self.byte_order(&raw.byte_order, ByteOrder::Big);
        let word_order = self.word_order(&raw.word_order, WordOrder::Big);
        let defaults = PlanOptions::default();
        let plan_options = PlanOptions {
            max_gap_registers: self.gap(
                &raw.max_gap_registers,
                defaults.max_gap_registers,
                plan::MAX_READ_REGISTERS - 1,
                "max_gap_registers",
            ),
            max_gap_bits: self.gap(
                &raw.max_gap_bits,
                defaults.max_gap_bits,
                plan::MAX_READ_BITS - 1,
                "max_gap_bits",
            ),
        };
        let kind = kind?;

        let mut points: Vec<PointMap> = Vec::with_capacity(raw.points.len());
        for rp in &raw.points {
            if let Some(p) = self.point(kind, rp, byte_order, word_order) {
                let at = rp.get_ref().point.span();
                checks::push_once(&mut self.errors, &mut points, p, |p| p.point, at);
            }
        }
        checks::some_points(&mut self.errors, raw.points.len(), raw.id.span());
        if raw.high_addresses_are_real != Some(true) {
            for rp in &raw.points {
                let rp = rp.get_ref();
                let (Some(table), Some(a)) = (Table::parse(rp.table.get_ref()), &rp.address) else {
                    continue;
                };
                if let Some(w) = u16::try_from(*a.get_ref())
                    .ok()
                    .and_then(|addr| modicon_lookalike(rp.point.get_ref(), table, addr))
                {
                    self.warnings.push((a.span(), w));
                }
            }
        }
        Some(Profile {
            id,
            kind,
            description: raw.description.unwrap_or_default(),
            source: raw.source.unwrap_or_default(),
            points,
            plan_options,
            warnings: Vec::new(),
        })
    }

    fn point(
        &mut self,
        kind: Kind,
        sp: &Spanned<RawPoint>,
        byte_order: ByteOrder,
        word_order: WordOrder,
    ) -> Option<PointMap> {
        let rp = sp.get_ref();
        let before = self.errors.len();
        let name = rp.point.get_ref();
        let def = checks::point(&mut self.errors, kind, &rp.point);
        let table = Table::parse(rp.table.get_ref());
        if table.is_none() {
            self.err(
                rp.table.span(),
                format!(
                    "point `{name}`: unknown table {:?}: use holding, input, coil or discrete",
                    rp.table.get_ref()
                ),
            );
        }
        let ty = RegType::parse(rp.ty.get_ref());
        if ty.is_none() {
            self.err(
                rp.ty.span(),
                format!(
                    "point `{name}`: unknown type {:?}: use u16, i16, u32, i32, f32 or bool",
                    rp.ty.get_ref()
                ),
            );
        }
        let addr_ok = |a: i64| u16::try_from(a).ok();
        let mut any_of: Vec<u16> = Vec::new();
        let address = match (&rp.address, &rp.any_of) {
            (Some(a), None) => match addr_ok(*a.get_ref()) {
                Some(v) => Some(v),
                None => {
                    let v = *a.get_ref();
                    let hint = match v {
                        300_001..=365_536 => format!(
                            " ({v} looks like the manual's 6-digit input register numbering: write table = \"input\", address = {})",
                            v - 300_001
                        ),
                        400_001..=465_536 => format!(
                            " ({v} looks like the manual's 6-digit holding register numbering: write table = \"holding\", address = {})",
                            v - 400_001
                        ),
                        _ => String::new(),
                    };
                    self.err(a.span(), format!("point `{name}`: address {v} is out of range: use 0 to 65535 (0-based, as on the wire){hint}"));
                    None
                }
            },
            (None, Some(list)) => {
                for a in list.get_ref() {
                    match addr_ok(*a) {
                        Some(v) => any_of.push(v),
                        None => self.err(list.span(), format!("point `{name}`: address {a} in `any_of` is out of range: use 0 to 65535 (0-based, as on the wire)")),
                    }
                }
                any_of.sort_unstable();
                any_of.dedup();
                if list.get_ref().is_empty() {
                    self.err(list.span(), format!("point `{name}`: `any_of` is empty"));
                }
                if !table.is_some_and(Table::is_bits) || ty != Some(RegType::Bool) {
                    self.err(list.span(), format!("point `{name}`: `any_of` needs type = \"bool\" on a coil or discrete table"));
                }
                if let (Some(lo), Some(hi)) = (any_of.first(), any_of.last())
                    && hi - lo >= plan::MAX_READ_BITS
                {
                    self.err(list.span(), format!("point `{name}`: `any_of` spans {} addresses; one read carries at most {}", hi - lo + 1, plan::MAX_READ_BITS));
                }
                any_of.first().copied()
            }
            (Some(a), Some(_)) => {
                self.err(
                    a.span(),
                    format!("point `{name}`: give either `address` or `any_of`, not both"),
                );
                None
            }
            (None, None) => {
                self.err(sp.span(), format!("point `{name}`: missing `address`"));
                None
            }
        };
        let source = checks::source(
            &mut self.errors,
            &rp.source,
            sp.span(),
            &format!("point `{name}`"),
            SOURCE_HINT,
        );
        let p_byte = self.byte_order(&rp.byte_order, byte_order);
        let p_word = self.word_order(&rp.word_order, word_order);

        // Table / type compatibility.
        if let (Some(table), Some(ty)) = (table, ty) {
            if table.is_bits() && ty != RegType::Bool {
                self.err(rp.ty.span(), format!("point `{name}`: type = \"{}\" on a {} table: coils and discrete inputs are single bits, use type = \"bool\"", ty.as_str(), table.as_str()));
            }
            if let (Some(a), Some(sa)) = (address, &rp.address)
                && u32::from(a) + u32::from(ty.width()) - 1 > 65535
            {
                self.err(
                    sa.span(),
                    format!(
                        "point `{name}`: a {} at address {a} runs past address 65535",
                        ty.as_str()
                    ),
                );
            }
        }
        let bit = match &rp.bit {
            None => None,
            Some(b) => {
                let v = *b.get_ref();
                if !(0..=15).contains(&v) {
                    self.err(
                        b.span(),
                        format!(
                            "point `{name}`: bit = {v} is out of range: a register has bits 0 to 15"
                        ),
                    );
                    None
                } else if ty != Some(RegType::Bool) {
                    self.err(
                        b.span(),
                        format!("point `{name}`: `bit` needs type = \"bool\""),
                    );
                    None
                } else if table.is_some_and(Table::is_bits) {
                    self.err(
                        b.span(),
                        format!(
                            "point `{name}`: `bit` applies to registers, not to a {} table",
                            table.map(Table::as_str).unwrap_or("")
                        ),
                    );
                    None
                } else {
                    Some(v as u8)
                }
            }
        };
        let nibble = match &rp.nibble {
            None => None,
            Some(n) => {
                let v = *n.get_ref();
                if !(0..=3).contains(&v) {
                    self.err(
                        n.span(),
                        format!(
                            "point `{name}`: nibble = {v} is out of range: a register has nibbles 0 (bits 0-3) to 3 (bits 12-15)"
                        ),
                    );
                    None
                } else if ty != Some(RegType::U16) || table.is_some_and(Table::is_bits) {
                    self.err(
                        n.span(),
                        format!("point `{name}`: `nibble` needs type = \"u16\" on a holding or input register"),
                    );
                    None
                } else {
                    Some(v as u8)
                }
            }
        };
        let scale = checks::scale(&mut self.errors, name, &rp.scale);
        let offset = rp.offset.unwrap_or(0.0);
        let (min, max) = checks::range(&mut self.errors, name, &rp.min, &rp.max);

        // Point type against register type.
        let mut enum_map = Vec::new();
        if let (Some(def), Some(ty)) = (def, ty) {
            match def.ty {
                PointType::Bool => {
                    if ty != RegType::Bool {
                        self.err(rp.ty.span(), format!("point `{name}` is a boolean: use type = \"bool\" (with `bit` for a register bit)"));
                    }
                }
                PointType::Number => {
                    if ty == RegType::Bool {
                        self.err(rp.ty.span(), format!("point `{name}` is a number: use a numeric type (u16, i16, u32, i32, f32)"));
                    }
                }
                PointType::Enum(names) => {
                    if !ty.is_integer() {
                        self.err(rp.ty.span(), format!("point `{name}` is an enumeration: use an integer type (u16, i16, u32, i32) with an `enum` table"));
                    }
                    if rp.enum_map.is_none() && rp.enum_bits.is_none() {
                        self.err(sp.span(), format!("point `{name}` is an enumeration: add an `enum` table mapping raw values to {}", names.join(", ")));
                    }
                }
            }
            if let Some(em) = &rp.enum_map {
                match def.ty {
                    PointType::Enum(names) => {
                        enum_map = checks::enum_table(&mut self.errors, name, em, names, parse_int);
                        // Keys may be hexadecimal: "1" and "0x1" name the same raw value.
                        if let Some(w) = enum_map.windows(2).find(|w| w[0].0 == w[1].0) {
                            self.err(
                                em.span(),
                                format!("point `{name}`: raw value {} is mapped twice", w[0].0),
                            );
                        }
                    }
                    _ => self.err(
                        em.span(),
                        format!("point `{name}` is not an enumeration: remove `enum`"),
                    ),
                }
            }
        }
        let unavailable = match &rp.unavailable {
            None => Vec::new(),
            Some(u) => {
                if ty == Some(RegType::Bool) && rp.true_values.is_none() {
                    self.err(
                        u.span(),
                        format!("point `{name}`: `unavailable` applies to a bool only with `true_values`"),
                    );
                }
                u.get_ref().clone()
            }
        };
        if ty == Some(RegType::Bool) && (rp.scale.is_some() || rp.min.is_some() || rp.max.is_some())
        {
            let span = rp
                .scale
                .as_ref()
                .map(|s| s.span())
                .or(rp.min.as_ref().map(|s| s.span()))
                .or(rp.max.as_ref().map(|s| s.span()))
                .unwrap_or(sp.span());
            self.err(
                span,
                format!("point `{name}`: scale, min and max do not apply to a bool"),
            );
        }

        let (true_values, false_values) = self.codes(name, rp, table, ty, bit);
        let first_set_bit = match &rp.enum_bits {
            None => false,
            Some(eb) => {
                if rp.enum_map.is_some() {
                    self.err(
                        eb.span(),
                        format!("point `{name}`: give either `enum` or `enum_bits`, not both"),
                    );
                }
                enum_map = self.enum_bits(name, eb, def, ty);
                true
            }
        };

        if self.errors.len() != before {
            return None;
        }
        Some(PointMap {
            point: def?,
            table: table?,
            address: address?,
            ty: ty?,
            scale,
            offset,
            bit,
            enum_map,
            unavailable,
            min,
            max,
            byte_order: p_byte,
            word_order: p_word,
            source,
            true_values,
            false_values,
            any_of: if any_of.len() > 1 { any_of } else { Vec::new() },
            first_set_bit,
            nibble,
        })
    }

    /// `true_values` / `false_values` of a boolean from a state-code register.
    fn codes(
        &mut self,
        name: &str,
        rp: &RawPoint,
        table: Option<Table>,
        ty: Option<RegType>,
        bit: Option<u8>,
    ) -> (Vec<i64>, Vec<i64>) {
        let Some(tv) = &rp.true_values else {
            if let Some(fv) = &rp.false_values {
                self.err(
                    fv.span(),
                    format!("point `{name}`: `false_values` needs `true_values`"),
                );
            }
            return (Vec::new(), Vec::new());
        };
        if ty != Some(RegType::Bool) || table.is_some_and(Table::is_bits) {
            self.err(tv.span(), format!("point `{name}`: `true_values` needs type = \"bool\" on a holding or input register"));
        }
        if bit.is_some() {
            self.err(
                tv.span(),
                format!("point `{name}`: give either `bit` or `true_values`, not both"),
            );
        }
        let fv = rp
            .false_values
            .as_ref()
            .map(|f| f.get_ref().clone())
            .unwrap_or_default();
        for (list, span) in [
            (tv.get_ref(), tv.span()),
            (
                &fv,
                rp.false_values
                    .as_ref()
                    .map(|f| f.span())
                    .unwrap_or(tv.span()),
            ),
        ] {
            if let Some(c) = list.iter().find(|c| !(0..=65535).contains(*c)) {
                self.err(
                    span,
                    format!(
                        "point `{name}`: code {c} is out of range: a register holds 0 to 65535"
                    ),
                );
            }
        }
        if tv.get_ref().is_empty() {
            self.err(tv.span(), format!("point `{name}`: `true_values` is empty"));
        }
        if let Some(c) = tv.get_ref().iter().find(|c| fv.contains(c)) {
            self.err(
                tv.span(),
                format!("point `{name}`: code {c} is in both `true_values` and `false_values`"),
            );
        }
        (tv.get_ref().clone(), fv)
    }

    /// `enum_bits` as `(1 << bit, name)` in priority order.
    fn enum_bits(
        &mut self,
        name: &str,
        eb: &Spanned<Vec<Spanned<RawEnumBit>>>,
        def: Option<PointId>,
        ty: Option<RegType>,
    ) -> Vec<(i64, &'static str)> {
        let names = match def.map(|d| d.ty) {
            Some(PointType::Enum(names)) => names,
            Some(_) => {
                self.err(
                    eb.span(),
                    format!("point `{name}` is not an enumeration: remove `enum_bits`"),
                );
                return Vec::new();
            }
            None => return Vec::new(),
        };
        let bits = match ty {
            Some(RegType::U16) => 16,
            Some(RegType::U32) => 32,
            _ => {
                self.err(
                    eb.span(),
                    format!("point `{name}`: `enum_bits` needs type = \"u16\" or \"u32\""),
                );
                return Vec::new();
            }
        };
        if eb.get_ref().is_empty() {
            self.err(eb.span(), format!("point `{name}`: `enum_bits` is empty"));
        }
        let mut out: Vec<(i64, &'static str)> = Vec::new();
        for e in eb.get_ref() {
            let e = e.get_ref();
            let b = *e.bit.get_ref();
            if !(0..bits).contains(&b) {
                self.err(e.bit.span(), format!("point `{name}`: bit = {b} is out of range: a {}-bit value has bits 0 to {}", bits, bits - 1));
                continue;
            }
            let Some(canon) = names.iter().find(|n| **n == e.value.get_ref().as_str()) else {
                self.err(
                    e.value.span(),
                    format!(
                        "point `{name}`: {:?} is not a value of this enumeration; use one of {}",
                        e.value.get_ref(),
                        names.join(", ")
                    ),
                );
                continue;
            };
            if out.iter().any(|(m, _)| *m == 1i64 << b) {
                self.err(
                    e.bit.span(),
                    format!("point `{name}`: bit {b} is listed twice"),
                );
                continue;
            }
            out.push((1i64 << b, *canon));
        }
        out
    }
}

/// A decimal or `0x` hexadecimal integer, as enum keys may be written either way.
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else {
        t.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23, item 3: an address that looks like the manual's 3xxxx/4xxxx numbering
    /// is a warning naming the number to write, unless the profile says it is real;
    /// a 6-digit one is an error naming it.
    #[test]
    fn modicon_lookalike_addresses_warn_with_the_number_to_write() {
        let prof = |head: &str, table: &str, address: i64| {
            format!(
                "id = \"t\"\nkind = \"generator\"\nprotocol = \"modbus\"\n{head}[[points]]\npoint = \"load_pct\"\ntable = \"{table}\"\naddress = {address}\ntype = \"u16\"\nsource = \"x\"\n"
            )
        };
        let cases: &[(&str, &str, i64, Option<&str>)] = &[
            (
                "",
                "holding",
                40001,
                Some(
                    "t.toml:7:11: point `load_pct`: address 40001 looks like the manual's 1-based 4xxxx numbering (holding register 40001 is protocol address 0): write address = 0",
                ),
            ),
            (
                "",
                "input",
                30100,
                Some(
                    "address 30100 looks like the manual's 1-based 3xxxx numbering (input register 30100 is protocol address 99): write address = 99",
                ),
            ),
            (
                "",
                "holding",
                30100,
                Some("write table = \"input\", address = 99"),
            ),
            ("", "holding", 39424, Some("3xxxx numbering")),
            ("high_addresses_are_real = true\n", "holding", 39424, None),
            ("high_addresses_are_real = true\n", "holding", 40000, None),
            ("", "holding", 1024, None),
            ("", "holding", 29999, None),
        ];
        for (head, table, address, want) in cases {
            let p = parse(&prof(head, table, *address), "t.toml")
                .unwrap_or_else(|e| panic!("{address}: {e}"));
            let got: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
            match want {
                None => assert!(got.is_empty(), "{address}: {got:?}"),
                Some(w) => assert!(got.len() == 1 && got[0].contains(w), "{address}: {got:?}"),
            }
        }
        let e = parse(&prof("", "holding", 401025), "t.toml").unwrap_err();
        assert!(
            e.message
                .contains("write table = \"holding\", address = 1024"),
            "{e}"
        );
    }

    /// Issue 23, item 1 (Modbus): a DSE register that reads 0xFFFF (unimplemented)
    /// is "not available", in words, for the enumeration and the state code alike.
    #[test]
    fn dse_unimplemented_registers_read_not_available() {
        use crate::model::Quality;
        use crate::sources::modbus::decode::decode_registers;
        let (_, text) = shipped()
            .into_iter()
            .find(|(f, _)| *f == "dse-gencomm.toml")
            .unwrap();
        let p = parse(text, "dse-gencomm.toml").unwrap();
        for point in [
            "mode",
            "engine_running",
            "oil_pressure_kpa",
            "fuel_level_pct",
        ] {
            let d = decode_registers(p.point(point).unwrap(), &[0xFFFF]);
            assert_eq!(d.quality, Quality::Unknown, "{point}: {d:?}");
            assert_eq!(
                d.note.as_deref(),
                Some("the device sends 0xffff (65535): \"not available\" for this point"),
                "{point}"
            );
        }
        let d = decode_registers(p.point("oil_pressure_kpa").unwrap(), &[0x2800]);
        assert_eq!(d.quality, Quality::OutOfRange);
        assert_eq!(
            d.note.as_deref(),
            Some("10240 is above the plausible range 0 to 10000")
        );
    }

    const HEAD: &str = "id = \"t\"\nkind = \"generator\"\nprotocol = \"modbus\"\n";

    fn err_of(body: &str) -> ProfileError {
        let text = format!("{HEAD}{body}");
        match parse(&text, "t.toml") {
            Ok(p) => panic!("expected an error, got {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn shipped_profiles_parse() {
        for (file, text) in shipped() {
            let p = parse(text, file).unwrap_or_else(|e| panic!("{e}"));
            assert!(!p.points.is_empty(), "{file}");
            assert!(p.points.iter().all(|pt| !pt.source.is_empty()));
        }
    }

    #[test]
    fn xy_md02_layout() {
        let (_, text) = shipped()
            .into_iter()
            .find(|(f, _)| *f == "xy-md02.toml")
            .unwrap();
        let p = parse(text, "xy-md02.toml").unwrap();
        assert_eq!(p.id, "xy-md02");
        assert_eq!(p.kind, Kind::Climate);
        let t = p.point("temperature_c").unwrap();
        assert_eq!(
            (t.table, t.address, t.ty, t.scale),
            (Table::Input, 1, RegType::I16, 0.1)
        );
        let h = p.point("humidity_pct").unwrap();
        assert_eq!((h.table, h.address, h.ty), (Table::Input, 2, RegType::U16));
    }

    #[test]
    fn full_point_parses() {
        let text = format!(
            "{HEAD}byte_order = \"little\"\nword_order = \"little\"\nmax_gap_registers = 0\n\
             [[points]]\npoint = \"mode\"\ntable = \"holding\"\naddress = 0x10\ntype = \"u16\"\n\
             enum = {{ 0 = \"stop\", 1 = \"auto\", 0x02 = \"manual\" }}\nunavailable = [0xFFFF]\nsource = \"p.3\"\n\
             [[points]]\npoint = \"engine_running\"\ntable = \"holding\"\naddress = 0x11\ntype = \"bool\"\nbit = 15\nsource = \"p.3\"\n\
             [[points]]\npoint = \"load_kw\"\ntable = \"input\"\naddress = 65534\ntype = \"f32\"\nbyte_order = \"big\"\nsource = \"p.4\"\n"
        );
        let p = parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let mode = p.point("mode").unwrap();
        assert_eq!(mode.enum_map, vec![(0, "stop"), (1, "auto"), (2, "manual")]);
        assert_eq!(mode.unavailable, vec![65535.0]);
        assert_eq!(
            (mode.byte_order, mode.word_order),
            (ByteOrder::Little, WordOrder::Little)
        );
        assert_eq!(p.point("engine_running").unwrap().bit, Some(15));
        let load = p.point("load_kw").unwrap();
        assert_eq!(
            (load.byte_order, load.word_order),
            (ByteOrder::Big, WordOrder::Little)
        );
        assert_eq!(p.plan_options.max_gap_registers, 0);
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = err_of("[[points]]\npoint = \"load_kw\n");
        assert_eq!(e.origin, "t.toml");
        assert_eq!(e.line, 5, "{e}");
        assert!(e.to_string().starts_with("t.toml:5:"), "{e}");
    }

    #[test]
    fn unknown_point_names_only_the_point() {
        let e = err_of(
            "[[points]]\npoint = \"temprature_c\"\ntable = \"input\"\naddress = 1\ntype = \"i16\"\nsource = \"x\"\n",
        );
        assert_eq!(
            e.to_string(),
            "t.toml:5:9: unknown point `temprature_c` for kind `generator`"
        );
    }

    #[test]
    fn f32_on_a_coil_is_rejected() {
        let e = err_of(
            "[[points]]\npoint = \"load_kw\"\ntable = \"coil\"\naddress = 1\ntype = \"f32\"\nsource = \"x\"\n",
        );
        assert_eq!((e.line, e.column), (8, 8), "{e}");
        assert!(e.message.contains("coil"), "{e}");
    }

    #[test]
    fn bit_above_15_is_rejected() {
        let e = err_of(
            "[[points]]\npoint = \"engine_running\"\ntable = \"holding\"\naddress = 1\ntype = \"bool\"\nbit = 16\nsource = \"x\"\n",
        );
        assert_eq!((e.line, e.column), (9, 7), "{e}");
        assert!(e.message.contains("bit = 16"), "{e}");
    }

    #[test]
    fn nibble_out_of_range_or_on_the_wrong_type_is_rejected() {
        let body = |ty: &str, nibble: i64| {
            format!(
                "[[points]]\npoint = \"alarm_fail_to_start\"\ntable = \"holding\"\naddress = 4\ntype = \"{ty}\"\nnibble = {nibble}\nenum = {{ 1 = \"inactive\", 3 = \"shutdown\" }}\nsource = \"x\"\n"
            )
        };
        let e = err_of(&body("u16", 4));
        assert_eq!((e.line, e.column), (9, 10), "{e}");
        assert!(
            e.message.contains(
                "nibble = 4 is out of range: a register has nibbles 0 (bits 0-3) to 3 (bits 12-15)"
            ),
            "{e}"
        );
        let e = err_of(&body("i16", 2));
        assert!(
            e.message
                .contains("`nibble` needs type = \"u16\" on a holding or input register"),
            "{e}"
        );
        // The shipped DSE map reads "fail to start" from bits 11-8 of 39428.
        let (_, text) = shipped()
            .into_iter()
            .find(|(f, _)| *f == "dse-gencomm.toml")
            .unwrap();
        let p = parse(text, "dse-gencomm.toml").unwrap();
        let f = p.point("alarm_fail_to_start").unwrap();
        assert_eq!((f.address, f.nibble), (39428, Some(2)));
    }

    #[test]
    fn enum_value_outside_vocabulary_is_rejected() {
        let e = err_of(
            "[[points]]\npoint = \"mode\"\ntable = \"holding\"\naddress = 1\ntype = \"u16\"\nenum = { 0 = \"stop\", 1 = \"automatic\" }\nsource = \"x\"\n",
        );
        assert_eq!(e.line, 9, "{e}");
        assert!(e.message.contains("\"automatic\""), "{e}");
    }

    #[test]
    fn enum_point_needs_enum_table() {
        let e = err_of(
            "[[points]]\npoint = \"mode\"\ntable = \"holding\"\naddress = 1\ntype = \"u16\"\nsource = \"x\"\n",
        );
        assert!(e.message.contains("enum"), "{e}");
    }

    #[test]
    fn bool_point_needs_bool_type() {
        let e = err_of(
            "[[points]]\npoint = \"engine_running\"\ntable = \"holding\"\naddress = 1\ntype = \"u16\"\nsource = \"x\"\n",
        );
        assert!(e.message.contains("boolean"), "{e}");
    }

    #[test]
    fn number_point_rejects_bool_type() {
        let e = err_of(
            "[[points]]\npoint = \"load_kw\"\ntable = \"coil\"\naddress = 1\ntype = \"bool\"\nsource = \"x\"\n",
        );
        assert!(e.message.contains("number"), "{e}");
    }

    #[test]
    fn u32_crossing_65535_is_rejected() {
        let e = err_of(
            "[[points]]\npoint = \"load_kw\"\ntable = \"holding\"\naddress = 65535\ntype = \"u32\"\nsource = \"x\"\n",
        );
        assert_eq!((e.line, e.column), (7, 11), "{e}");
        assert!(e.message.contains("65535"), "{e}");
    }

    #[test]
    fn missing_source_is_rejected() {
        let e = err_of(
            "[[points]]\npoint = \"load_kw\"\ntable = \"holding\"\naddress = 3\ntype = \"u16\"\n",
        );
        assert!(e.message.contains("missing `source`"), "{e}");
        assert!(e.message.contains("load_kw"), "{e}");
    }

    #[test]
    fn duplicate_point_is_rejected() {
        let e = err_of(
            "[[points]]\npoint = \"load_kw\"\ntable = \"holding\"\naddress = 3\ntype = \"u16\"\nsource = \"x\"\n[[points]]\npoint = \"load_kw\"\ntable = \"holding\"\naddress = 4\ntype = \"u16\"\nsource = \"x\"\n",
        );
        assert_eq!(e.line, 11, "{e}");
        assert!(e.message.contains("twice"), "{e}");
    }

    #[test]
    fn every_problem_is_reported() {
        let text = format!(
            "{HEAD}[[points]]\npoint = \"nope\"\ntable = \"input\"\naddress = 1\ntype = \"i16\"\nsource = \"x\"\n\
             [[points]]\npoint = \"load_kw\"\ntable = \"coil\"\naddress = 2\ntype = \"f32\"\n"
        );
        let errs = parse_all(&text, "t.toml").unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn state_codes_bit_sets_and_bit_enums_parse() {
        let text = format!(
            "{HEAD}[[points]]\npoint = \"engine_running\"\ntable = \"holding\"\naddress = 1408\ntype = \"bool\"\n\
             true_values = [2, 3, 4]\nfalse_values = [0, 1]\nunavailable = [15]\nsource = \"x\"\n\
             [[points]]\npoint = \"shutdown_alarm\"\ntable = \"discrete\"\nany_of = [38, 33, 34]\ntype = \"bool\"\nsource = \"x\"\n"
        );
        let p = parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let e = p.point("engine_running").unwrap();
        assert_eq!(
            (e.true_values.clone(), e.false_values.clone()),
            (vec![2, 3, 4], vec![0, 1])
        );
        assert_eq!(e.unavailable, vec![15.0]);
        let a = p.point("shutdown_alarm").unwrap();
        assert_eq!(
            (a.address, a.width(), a.any_of.clone()),
            (33, 6, vec![33, 34, 38])
        );

        let ups = "id = \"u\"\nkind = \"ups\"\nprotocol = \"modbus\"\n[[points]]\npoint = \"output_source\"\ntable = \"holding\"\n\
                   address = 1\ntype = \"u16\"\nenum_bits = [{ bit = 4, value = \"off\" }, { bit = 1, value = \"normal\" }]\nsource = \"x\"\n";
        let p = parse(ups, "u.toml").unwrap_or_else(|e| panic!("{e}"));
        let o = p.point("output_source").unwrap();
        assert!(o.first_set_bit);
        assert_eq!(
            o.enum_map,
            vec![(16, "off"), (2, "normal")],
            "priority order is kept"
        );
    }

    #[test]
    fn misused_state_codes_bit_sets_and_bit_enums_are_rejected() {
        let point =
            |body: &str| format!("[[points]]\npoint = \"engine_running\"\n{body}source = \"x\"\n");
        let cases: &[(&str, &str)] = &[
            (
                "table = \"coil\"\naddress = 1\ntype = \"bool\"\ntrue_values = [1]\n",
                "t.toml:9:15: point `engine_running`: `true_values` needs type = \"bool\" on a holding or input register",
            ),
            (
                "table = \"holding\"\naddress = 1\ntype = \"bool\"\nfalse_values = [0]\n",
                "t.toml:9:16: point `engine_running`: `false_values` needs `true_values`",
            ),
            (
                "table = \"holding\"\naddress = 1\ntype = \"bool\"\ntrue_values = [1, 2]\nfalse_values = [2]\n",
                "t.toml:9:15: point `engine_running`: code 2 is in both `true_values` and `false_values`",
            ),
            (
                "table = \"holding\"\naddress = 1\ntype = \"bool\"\ntrue_values = [70000]\n",
                "t.toml:9:15: point `engine_running`: code 70000 is out of range: a register holds 0 to 65535",
            ),
            (
                "table = \"holding\"\nany_of = [1, 2]\ntype = \"bool\"\n",
                "t.toml:7:10: point `engine_running`: `any_of` needs type = \"bool\" on a coil or discrete table",
            ),
            (
                "table = \"coil\"\naddress = 3\nany_of = [1, 2]\ntype = \"bool\"\n",
                "t.toml:7:11: point `engine_running`: give either `address` or `any_of`, not both",
            ),
            (
                "table = \"coil\"\nany_of = [1, 2500]\ntype = \"bool\"\n",
                "t.toml:7:10: point `engine_running`: `any_of` spans 2500 addresses; one read carries at most 2000",
            ),
            (
                "table = \"coil\"\ntype = \"bool\"\n",
                "t.toml:4:1: point `engine_running`: missing `address`",
            ),
            (
                "table = \"holding\"\naddress = 1\ntype = \"bool\"\nunavailable = [15]\n",
                "t.toml:9:15: point `engine_running`: `unavailable` applies to a bool only with `true_values`",
            ),
        ];
        let mut failures = Vec::new();
        for (body, expected) in cases {
            let text = format!("{HEAD}{}", point(body));
            match parse_all(&text, "t.toml") {
                Ok(_) => failures.push(format!("{body:?}: accepted")),
                Err(errs) if errs.iter().any(|e| e.to_string() == *expected) => {}
                Err(errs) => {
                    failures.push(format!("{body:?}: expected {expected}\n  got {errs:?}"))
                }
            }
        }
        let ups = |e: &str| {
            format!(
                "id = \"u\"\nkind = \"ups\"\nprotocol = \"modbus\"\n[[points]]\npoint = \"output_source\"\ntable = \"holding\"\naddress = 1\n{e}source = \"x\"\n"
            )
        };
        for (body, expected) in [
            (
                "type = \"u16\"\nenum_bits = [{ bit = 16, value = \"off\" }]\n",
                "u.toml:9:22: point `output_source`: bit = 16 is out of range: a 16-bit value has bits 0 to 15",
            ),
            (
                "type = \"u16\"\nenum_bits = [{ bit = 1, value = \"online\" }]\n",
                "u.toml:9:33: point `output_source`: \"online\" is not a value of this enumeration; use one of unknown, normal, on_battery, on_bypass, off, booster, reducer",
            ),
            (
                "type = \"i16\"\nenum_bits = [{ bit = 1, value = \"normal\" }]\n",
                "u.toml:9:13: point `output_source`: `enum_bits` needs type = \"u16\" or \"u32\"",
            ),
            (
                "type = \"u16\"\nenum = { 2 = \"normal\" }\nenum_bits = [{ bit = 1, value = \"normal\" }]\n",
                "u.toml:10:13: point `output_source`: give either `enum` or `enum_bits`, not both",
            ),
        ] {
            match parse_all(&ups(body), "u.toml") {
                Ok(_) => failures.push(format!("{body:?}: accepted")),
                Err(errs) if errs.iter().any(|e| e.to_string() == expected) => {}
                Err(errs) => {
                    failures.push(format!("{body:?}: expected {expected}\n  got {errs:?}"))
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
