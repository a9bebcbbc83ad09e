//! SNMP device profiles: an OID list as data (`config/profiles/*.toml` with
//! `protocol = "snmp"`), mapping a MIB's objects to canonical points, plus the traps
//! that carry news about those points.
//!
//! Parsing is two steps, as for Modbus profiles: serde reads the TOML into `Raw*`
//! structs (a syntax error stops there, reported as `origin:line:column: message`),
//! then every entry is validated against the canonical vocabulary ([`crate::points`]).
//! What comes out is an [`SnmpProfile`] that cannot be wrong:
//!
//! - every point exists for the profile's kind, at most once, and names its `source`
//!   in the MIB (object name and OID);
//! - a point is read either with GET of one instance (`oid`) or by walking a table
//!   column (`walk`) and reducing the rows (`aggregate`);
//! - a boolean point says which raw values mean `true` (`true_values`), or is a
//!   `contains` test over a column (an alarm table row naming a well-known alarm);
//! - an enumeration point maps raw integers to names of its vocabulary (`enum`);
//! - a trap rule sets points to values its kind allows.
//!
//! Format:
//!
//! ```toml
//! id = "ups-mib"
//! kind = "ups"
//! protocol = "snmp"
//! description = "..."
//! source = "RFC 1628 (UPS-MIB)"
//!
//! [[points]]
//! point = "battery_charge_pct"
//! oid = "1.3.6.1.2.1.33.1.2.4.0"       # GET this instance (numeric OID, no MIB names)
//! scale = 1.0                          # value = raw * scale + offset
//! offset = 0.0
//! min = 0.0                            # valid range after scaling -> out_of_range
//! max = 100.0
//! unavailable = [-1]                   # raw values meaning "not available" -> unknown
//! source = "RFC 1628 upsEstimatedChargeRemaining 1.3.6.1.2.1.33.1.2.4.0"
//!
//! [[points]]
//! point = "load_pct"
//! walk = "1.3.6.1.2.1.33.1.4.4.1.5"    # walk a column ...
//! aggregate = "max"                    # ... first | max | min | sum | count | contains | any
//! source = "..."
//!
//! [[points]]
//! point = "return_air_temperature_c"
//! walk = "1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.3"   # a column whose rows are named ...
//! where = { column = "1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.2", equals = "1.3.6.1.4.1.476.1.42.3.4.1.1.2" }
//!                                      # ... by another column: only rows whose
//!                                      #     `column` value equals `equals` (OID or
//!                                      #     integer) count, whatever their index
//! source = "..."
//!
//! [[points]]
//! point = "battery_replace"
//! walk = "1.3.6.1.2.1.33.1.6.2.1.2"    # upsAlarmDescr
//! aggregate = "contains"
//! match = "1.3.6.1.2.1.33.1.6.3.1"     # a row whose value is this OID (or integer)
//! source = "..."
//!
//! [[points]]
//! point = "on_battery"
//! oid = "1.3.6.1.2.1.33.1.4.1.0"
//! true_values = [5]                    # bool: these raw integers mean true
//! source = "..."
//!
//! [[points]]
//! point = "output_source"
//! oid = "1.3.6.1.2.1.33.1.4.1.0"
//! enum = { 3 = "normal", 4 = "on_bypass", 5 = "on_battery" }
//! source = "..."
//!
//! [[traps]]
//! name = "upsTrapOnBattery"
//! oid = "1.3.6.1.2.1.33.2.1"           # snmpTrapOID (v2c/v3), or v1 enterprise + specific
//! varbind = "1.3.6.1.2.1.33.1.6.2.1.2" # optional condition: a varbind under this OID ...
//! equals = "1.3.6.1.2.1.33.1.6.3.9"    # ... whose value is this OID or integer
//! set = { on_battery = true, output_source = "on_battery" }
//! source = "RFC 1628 upsTrapOnBattery 1.3.6.1.2.1.33.2.1"
//! ```
//!
//! Raw values: INTEGER, Gauge32, Counter32/64 and Unsigned32 as numbers; TimeTicks in
//! **seconds** (hundredths divided by 100) before `scale`; an OCTET STRING holding a
//! number (`"23.5"`, `" 45 %"`) as that number; an empty string or `N/A` as
//! "not available". `rate = true` on a counter point reports the per-second rate of
//! change (wrap-around of Counter32/Counter64 handled) instead of the count.
//!
//! A v1 trap matches a rule when its RFC 3584 notification OID
//! (`enterprise.0.specific`) equals the rule's `oid`, or equals it once the `0` arc is
//! removed (RFC 1628 defines its traps as `upsTraps N`, without the `0` arc).

use std::collections::BTreeMap;
use std::ops::Range;

use async_snmp::Oid;
use serde::Deserialize;
use serde_spanned::Spanned;

pub use crate::config::span::ProfileError;
use crate::config::span::{self, ProfileErrors};
use crate::model::{Kind, Value};
use crate::points::{self, PointId, PointType};
use crate::sources::profile_checks as checks;

/// The SNMP profiles shipped in the binary: `(file name, TOML text)`.
pub fn shipped_profiles() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "ups-mib.toml",
            include_str!("../../../config/profiles/ups-mib.toml"),
        ),
        (
            "apc-powernet.toml",
            include_str!("../../../config/profiles/apc-powernet.toml"),
        ),
        (
            "delta-ups.toml",
            include_str!("../../../config/profiles/delta-ups.toml"),
        ),
        (
            "eaton-xups.toml",
            include_str!("../../../config/profiles/eaton-xups.toml"),
        ),
        (
            "huawei-ups.toml",
            include_str!("../../../config/profiles/huawei-ups.toml"),
        ),
        (
            "liebert-gp-env.toml",
            include_str!("../../../config/profiles/liebert-gp-env.toml"),
        ),
        (
            "netbotz-climate.toml",
            include_str!("../../../config/profiles/netbotz-climate.toml"),
        ),
        (
            "hikvision-nvr.toml",
            include_str!("../../../config/profiles/hikvision-nvr.toml"),
        ),
        (
            "netbotz-door.toml",
            include_str!("../../../config/profiles/netbotz-door.toml"),
        ),
        (
            "netbotz-leak.toml",
            include_str!("../../../config/profiles/netbotz-leak.toml"),
        ),
    ]
}

/// How a walked column is reduced to one value.
#[derive(Debug, Clone, PartialEq)]
pub enum Aggregate {
    /// The first row (lowest index).
    First,
    /// The highest value of all rows.
    Max,
    /// The lowest value of all rows.
    Min,
    /// The sum of all rows.
    Sum,
    /// The number of rows.
    Count,
    /// True when a row's value equals this.
    Contains(Match),
    /// A boolean true when any row's raw integer is one of the point's `true_values`
    /// (a disk table where one failed disk is a fault).
    Any,
}

impl Aggregate {
    /// The name used in profiles.
    pub fn as_str(&self) -> &'static str {
        match self {
            Aggregate::First => "first",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
            Aggregate::Sum => "sum",
            Aggregate::Count => "count",
            Aggregate::Contains(_) => "contains",
            Aggregate::Any => "any",
        }
    }
}

/// A value a varbind is compared with: an OID (AutonomousType, such as a well-known
/// alarm) or an integer.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// OBJECT IDENTIFIER value.
    Oid(Oid),
    /// INTEGER (or any unsigned integer type) value.
    Int(i64),
}

impl Match {
    /// Whether an SNMP value equals this.
    pub fn matches(&self, v: &async_snmp::Value) -> bool {
        match self {
            Match::Oid(o) => v.as_oid() == Some(o),
            Match::Int(i) => match v {
                async_snmp::Value::Integer(x) => i64::from(*x) == *i,
                async_snmp::Value::Counter64(x) => i64::try_from(*x).ok() == Some(*i),
                other => other.as_u32().map(i64::from) == Some(*i),
            },
        }
    }

    fn parse(text: &str) -> Option<Match> {
        let t = text.trim();
        if t.contains('.') {
            parse_oid(t).map(Match::Oid)
        } else {
            t.parse::<i64>().ok().map(Match::Int)
        }
    }
}

impl std::fmt::Display for Match {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Match::Oid(o) => write!(f, "{o}"),
            Match::Int(i) => write!(f, "{i}"),
        }
    }
}

/// Where a point's raw value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// GET of one instance.
    Get(Oid),
    /// Walk of a column, reduced by `aggregate`.
    Walk {
        /// Column OID (rows are `column.index`).
        column: Oid,
        /// Reduction of the rows.
        aggregate: Aggregate,
        /// Only the rows another column names (`where`); `None`: every row.
        rows: Option<Box<RowFilter>>,
    },
}

/// `where = { column, equals }`: the rows of a walked column whose index has, in
/// `column`, a value equal to `equals`. Vendor tables name their rows this way (Liebert
/// `lgpEnvTemperatureDescrDegC` = `lgpEnvReturnAirTemperature`), at an index that
/// differs from unit to unit.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFilter {
    /// The column that names the rows.
    pub column: Oid,
    /// The value naming the wanted rows.
    pub equals: Match,
}

impl Access {
    /// The OID named in the profile.
    pub fn oid(&self) -> &Oid {
        match self {
            Access::Get(o) => o,
            Access::Walk { column, .. } => column,
        }
    }
}

/// One mapped point.
#[derive(Debug, Clone)]
pub struct OidPoint {
    /// The canonical point.
    pub point: PointId,
    /// How it is read.
    pub access: Access,
    /// `value = raw * scale + offset`.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// Raw integer → canonical enumeration name (enumeration points).
    pub enum_map: Vec<(i64, &'static str)>,
    /// Raw integers meaning `true` (boolean points read with GET or `first`).
    pub true_values: Vec<i64>,
    /// Raw values meaning "not available".
    pub unavailable: Vec<f64>,
    /// Lowest valid value after scaling.
    pub min: Option<f64>,
    /// Highest valid value after scaling.
    pub max: Option<f64>,
    /// Report the per-second rate of a counter instead of its count.
    pub rate: bool,
    /// Where this object is documented (MIB, object name, OID).
    pub source: String,
}

/// A trap rule: which notification, under which condition, sets which points.
#[derive(Debug, Clone)]
pub struct TrapRule {
    /// Notification name in its MIB (for logs).
    pub name: String,
    /// Notification OID (snmpTrapOID.0).
    pub oid: Oid,
    /// Optional condition: a varbind whose OID starts with `.0` has value `.1`.
    pub condition: Option<(Oid, Match)>,
    /// Points set to values when the rule matches.
    pub set: Vec<(PointId, Value)>,
    /// Where the notification is documented.
    pub source: String,
}

impl TrapRule {
    /// Whether a notification with `trap_oid` (and `v1`: it came as an SNMPv1 trap)
    /// and these varbinds matches this rule.
    pub fn matches(&self, trap_oid: &Oid, v1: bool, varbinds: &[async_snmp::VarBind]) -> bool {
        let oid_ok =
            *trap_oid == self.oid || (v1 && strip_v1_zero(trap_oid) == Some(self.oid.clone()));
        if !oid_ok {
            return false;
        }
        match &self.condition {
            None => true,
            Some((prefix, m)) => varbinds
                .iter()
                .any(|vb| vb.oid.starts_with(prefix) && m.matches(&vb.value)),
        }
    }
}

/// `enterprise.0.specific` → `enterprise.specific` (see the module docs).
fn strip_v1_zero(oid: &Oid) -> Option<Oid> {
    let arcs = oid.arcs();
    if arcs.len() >= 3 && arcs[arcs.len() - 2] == 0 {
        let mut v = arcs[..arcs.len() - 2].to_vec();
        v.push(arcs[arcs.len() - 1]);
        Some(Oid::new(v))
    } else {
        None
    }
}

/// A validated SNMP device profile.
#[derive(Debug, Clone)]
pub struct SnmpProfile {
    /// Profile id (`ups-mib`), referenced by devices in the site config.
    pub id: String,
    /// Device kind whose vocabulary the points belong to.
    pub kind: Kind,
    /// One line for operators.
    pub description: String,
    /// MIB the map was taken from.
    pub source: String,
    /// Mapped points in file order.
    pub points: Vec<OidPoint>,
    /// Trap rules in file order.
    pub traps: Vec<TrapRule>,
}

impl SnmpProfile {
    /// The mapping of one canonical point, by name.
    pub fn point(&self, name: &str) -> Option<&OidPoint> {
        self.points.iter().find(|p| p.point.name == name)
    }

    /// The GET instances of the profile, deduplicated, in file order.
    pub fn get_oids(&self) -> Vec<Oid> {
        let mut out: Vec<Oid> = Vec::new();
        for p in &self.points {
            if let Access::Get(o) = &p.access
                && !out.contains(o)
            {
                out.push(o.clone());
            }
        }
        out
    }

    /// The walked columns of the profile, deduplicated, in file order.
    pub fn walk_columns(&self) -> Vec<Oid> {
        let mut out: Vec<Oid> = Vec::new();
        for p in &self.points {
            if let Access::Walk { column, rows, .. } = &p.access {
                for c in std::iter::once(column).chain(rows.as_ref().map(|r| &r.column)) {
                    if !out.contains(c) {
                        out.push(c.clone());
                    }
                }
            }
        }
        out
    }
}

/// Parse and validate an SNMP profile; the first problem found is the error.
pub fn parse_profile(text: &str, origin: &str) -> Result<SnmpProfile, ProfileError> {
    parse_profile_all(text, origin).map_err(|mut errs| errs.swap_remove(0))
}

/// Parse and validate an SNMP profile, reporting every semantic problem found (a TOML
/// syntax error stops parsing, so it is reported alone). The list is never empty.
pub fn parse_profile_all(text: &str, origin: &str) -> Result<SnmpProfile, Vec<ProfileError>> {
    let raw: RawProfile = span::parse_raw(text, origin)?;
    let mut v = Validator {
        errors: ProfileErrors::new(text, origin),
    };
    let profile = v.profile(raw);
    v.errors.finish(profile)
}

/// A numeric OID in dotted form (`1.3.6.1.2.1.33.1.2.4.0`, a leading dot allowed).
pub fn parse_oid(s: &str) -> Option<Oid> {
    let t = s.trim().trim_start_matches('.');
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let arcs: Option<Vec<u32>> = t.split('.').map(|a| a.parse::<u32>().ok()).collect();
    let arcs = arcs?;
    if arcs.len() < 2 || arcs[0] > 2 {
        return None;
    }
    Some(Oid::new(arcs))
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
    points: Vec<Spanned<RawPoint>>,
    #[serde(default)]
    traps: Vec<Spanned<RawTrap>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    point: Spanned<String>,
    #[serde(default)]
    oid: Option<Spanned<String>>,
    #[serde(default)]
    walk: Option<Spanned<String>>,
    #[serde(default)]
    aggregate: Option<Spanned<String>>,
    #[serde(default, rename = "match")]
    match_value: Option<Spanned<String>>,
    #[serde(default, rename = "where")]
    where_rows: Option<Spanned<RawWhere>>,
    #[serde(default)]
    scale: Option<Spanned<f64>>,
    #[serde(default)]
    offset: Option<f64>,
    #[serde(default, rename = "enum")]
    enum_map: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(default)]
    true_values: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    unavailable: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    min: Option<Spanned<f64>>,
    #[serde(default)]
    max: Option<Spanned<f64>>,
    #[serde(default)]
    rate: Option<Spanned<bool>>,
    #[serde(default)]
    source: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhere {
    column: Spanned<String>,
    equals: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrap {
    name: Spanned<String>,
    oid: Spanned<String>,
    #[serde(default)]
    varbind: Option<Spanned<String>>,
    #[serde(default)]
    equals: Option<Spanned<String>>,
    set: Spanned<BTreeMap<String, Spanned<toml::Value>>>,
    #[serde(default)]
    source: Option<Spanned<String>>,
}

struct Validator<'a> {
    errors: ProfileErrors<'a>,
}

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push(span, message);
    }

    fn oid(&mut self, s: &Spanned<String>, what: &str) -> Option<Oid> {
        let o = parse_oid(s.get_ref());
        if o.is_none() {
            self.err(
                s.span(),
                format!(
                    "{what}: {:?} is not a numeric OID (write it as 1.3.6.1...; MIB names are not resolved)",
                    s.get_ref()
                ),
            );
        }
        o
    }

    fn source(&mut self, s: &Option<Spanned<String>>, span: Range<usize>, what: &str) -> String {
        let hint = "name the MIB, the object and its OID";
        checks::source(&mut self.errors, s, span, what, hint)
    }

    fn profile(&mut self, raw: RawProfile) -> Option<SnmpProfile> {
        if raw.protocol.get_ref() != "snmp" {
            self.err(
                raw.protocol.span(),
                format!(
                    "protocol {:?}: an SNMP profile has protocol = \"snmp\"",
                    raw.protocol.get_ref()
                ),
            );
        }
        let id = checks::profile_id(&mut self.errors, &raw.id);
        let kind = checks::kind(&mut self.errors, &raw.kind)?;
        let mut points: Vec<OidPoint> = Vec::new();
        for sp in &raw.points {
            if let Some(p) = self.point(kind, sp) {
                let at = sp.get_ref().point.span();
                checks::push_once(&mut self.errors, &mut points, p, |p| p.point, at);
            }
        }
        checks::some_points(&mut self.errors, raw.points.len(), raw.id.span());
        let mut traps = Vec::new();
        for st in &raw.traps {
            if let Some(t) = self.trap(kind, st) {
                traps.push(t);
            }
        }
        Some(SnmpProfile {
            id,
            kind,
            description: raw.description.unwrap_or_default(),
            source: raw.source.unwrap_or_default(),
            points,
            traps,
        })
    }

    fn point(&mut self, kind: Kind, sp: &Spanned<RawPoint>) -> Option<OidPoint> {
        let before = self.errors.len();
        let rp = sp.get_ref();
        let name = rp.point.get_ref().as_str();
        let def = checks::point(&mut self.errors, kind, &rp.point);
        let source = self.source(&rp.source, sp.span(), &format!("point `{name}`"));

        let access = match (&rp.oid, &rp.walk) {
            (Some(o), None) => {
                if let Some(w) = &rp.where_rows {
                    self.err(
                        w.span(),
                        format!("point `{name}`: `where` applies to `walk`, not to `oid`"),
                    );
                }
                if let Some(a) = &rp.aggregate {
                    self.err(
                        a.span(),
                        format!("point `{name}`: `aggregate` applies to `walk`, not to `oid`"),
                    );
                }
                self.oid(o, &format!("point `{name}`")).map(Access::Get)
            }
            (None, Some(w)) => {
                let column = self.oid(w, &format!("point `{name}`"));
                let aggregate = match rp
                    .aggregate
                    .as_ref()
                    .map(|a| (a.span(), a.get_ref().as_str()))
                {
                    None | Some((_, "first")) => Some(Aggregate::First),
                    Some((_, "max")) => Some(Aggregate::Max),
                    Some((_, "min")) => Some(Aggregate::Min),
                    Some((_, "sum")) => Some(Aggregate::Sum),
                    Some((_, "count")) => Some(Aggregate::Count),
                    Some((_, "any")) => Some(Aggregate::Any),
                    Some((span, "contains")) => match &rp.match_value {
                        Some(m) => match Match::parse(m.get_ref()) {
                            Some(m) => Some(Aggregate::Contains(m)),
                            None => {
                                self.err(m.span(), format!("point `{name}`: match {:?} is neither a numeric OID nor an integer", m.get_ref()));
                                None
                            }
                        },
                        None => {
                            self.err(span, format!("point `{name}`: aggregate = \"contains\" needs `match` (the OID or integer a row must hold)"));
                            None
                        }
                    },
                    Some((span, other)) => {
                        self.err(span, format!("point `{name}`: unknown aggregate {other:?}: use first, max, min, sum, count, contains or any"));
                        None
                    }
                };
                let rows = match &rp.where_rows {
                    None => Some(None),
                    Some(w) => {
                        let w = w.get_ref();
                        let col = self.oid(&w.column, &format!("point `{name}`: where.column"));
                        let eq = Match::parse(w.equals.get_ref());
                        if eq.is_none() {
                            self.err(w.equals.span(), format!("point `{name}`: where.equals {:?} is neither a numeric OID nor an integer", w.equals.get_ref()));
                        }
                        col.zip(eq)
                            .map(|(column, equals)| Some(Box::new(RowFilter { column, equals })))
                    }
                };
                match (column, aggregate, rows) {
                    (Some(column), Some(aggregate), Some(rows)) => Some(Access::Walk {
                        column,
                        aggregate,
                        rows,
                    }),
                    _ => None,
                }
            }
            (Some(o), Some(_)) => {
                self.err(
                    o.span(),
                    format!(
                        "point `{name}`: give either `oid` (GET) or `walk` (table column), not both"
                    ),
                );
                None
            }
            (None, None) => {
                self.err(rp.point.span(), format!("point `{name}`: missing `oid` (GET one instance) or `walk` (a table column)"));
                None
            }
        };
        if let (Some(m), false) = (
            &rp.match_value,
            matches!(
                access,
                Some(Access::Walk {
                    aggregate: Aggregate::Contains(_),
                    ..
                })
            ),
        ) {
            self.err(
                m.span(),
                format!("point `{name}`: `match` applies to aggregate = \"contains\" only"),
            );
        }

        let scale = checks::scale(&mut self.errors, name, &rp.scale);
        let (min, max) = checks::range(&mut self.errors, name, &rp.min, &rp.max);
        let rate = rp.rate.as_ref().map(|r| *r.get_ref()).unwrap_or(false);
        if let Some(r) = &rp.rate
            && *r.get_ref()
            && rp.walk.is_some()
        {
            self.err(
                r.span(),
                format!("point `{name}`: `rate` applies to a counter read with `oid`, not to a walked column"),
            );
        }

        let mut enum_map = Vec::new();
        let mut true_values = Vec::new();
        let aggregate = match &access {
            Some(Access::Walk { aggregate, .. }) => Some(aggregate.clone()),
            _ => None,
        };
        if let Some(def) = def {
            match def.ty {
                PointType::Bool => {
                    match (&aggregate, &rp.true_values) {
                        (Some(Aggregate::Contains(_)), Some(tv)) => {
                            self.err(tv.span(), format!("point `{name}`: `true_values` does not apply to aggregate = \"contains\""));
                        }
                        (Some(Aggregate::Contains(_)), None) => {}
                        (
                            Some(
                                a @ (Aggregate::Max
                                | Aggregate::Min
                                | Aggregate::Sum
                                | Aggregate::Count),
                            ),
                            _,
                        ) => {
                            self.err(sp.span(), format!("point `{name}` is a boolean: aggregate {:?} does not give one; use first (with true_values) or contains", a.as_str()));
                        }
                        (_, Some(tv)) => {
                            if tv.get_ref().is_empty() {
                                self.err(
                                    tv.span(),
                                    format!("point `{name}`: `true_values` is empty"),
                                );
                            }
                            true_values = tv.get_ref().clone();
                        }
                        (_, None) => {
                            self.err(sp.span(), format!("point `{name}` is a boolean: add `true_values` (the raw integers that mean true; SNMP TruthValue true is 1, false is 2)"));
                        }
                    }
                    if rp.scale.is_some() || rp.min.is_some() || rp.max.is_some() || rate {
                        self.err(
                            sp.span(),
                            format!(
                                "point `{name}`: scale, min, max and rate do not apply to a boolean"
                            ),
                        );
                    }
                }
                PointType::Number => {
                    if let Some(tv) = &rp.true_values {
                        self.err(
                            tv.span(),
                            format!("point `{name}` is a number: remove `true_values`"),
                        );
                    }
                    if matches!(aggregate, Some(Aggregate::Contains(_) | Aggregate::Any)) {
                        self.err(
                            sp.span(),
                            format!(
                                "point `{name}` is a number: aggregate = \"{}\" gives a boolean",
                                aggregate.as_ref().map_or("", |a| a.as_str())
                            ),
                        );
                    }
                }
                PointType::Enum(names) => {
                    if let Some(tv) = &rp.true_values {
                        self.err(
                            tv.span(),
                            format!("point `{name}` is an enumeration: remove `true_values`"),
                        );
                    }
                    if matches!(
                        aggregate,
                        Some(
                            Aggregate::Contains(_)
                                | Aggregate::Count
                                | Aggregate::Sum
                                | Aggregate::Any
                        )
                    ) {
                        self.err(
                            sp.span(),
                            format!(
                                "point `{name}` is an enumeration: use GET or aggregate = \"first\""
                            ),
                        );
                    }
                    if rp.scale.is_some() || rate {
                        self.err(
                            sp.span(),
                            format!(
                                "point `{name}`: scale and rate do not apply to an enumeration"
                            ),
                        );
                    }
                    match &rp.enum_map {
                        None => self.err(sp.span(), format!("point `{name}` is an enumeration: add an `enum` table mapping raw values to {}", names.join(", "))),
                        Some(em) => {
                            enum_map = checks::enum_table(&mut self.errors, name, em, names, |k| {
                                k.trim().parse::<i64>().ok()
                            });
                        }
                    }
                }
            }
            if !matches!(def.ty, PointType::Enum(_))
                && let Some(em) = &rp.enum_map
            {
                self.err(
                    em.span(),
                    format!("point `{name}` is not an enumeration: remove `enum`"),
                );
            }
        }
        let unavailable = rp
            .unavailable
            .as_ref()
            .map(|u| u.get_ref().clone())
            .unwrap_or_default();

        if self.errors.len() != before {
            return None;
        }
        Some(OidPoint {
            point: def?,
            access: access?,
            scale,
            offset: rp.offset.unwrap_or(0.0),
            enum_map,
            true_values,
            unavailable,
            min,
            max,
            rate,
            source,
        })
    }

    fn trap(&mut self, kind: Kind, st: &Spanned<RawTrap>) -> Option<TrapRule> {
        let before = self.errors.len();
        let rt = st.get_ref();
        let name = rt.name.get_ref().trim().to_string();
        let what = format!("trap `{name}`");
        let source = self.source(&rt.source, st.span(), &what);
        let oid = self.oid(&rt.oid, &what);
        let condition = match (&rt.varbind, &rt.equals) {
            (None, None) => None,
            (Some(vb), Some(eq)) => {
                let prefix = self.oid(vb, &what);
                let m = Match::parse(eq.get_ref());
                if m.is_none() {
                    self.err(
                        eq.span(),
                        format!(
                            "{what}: equals {:?} is neither a numeric OID nor an integer",
                            eq.get_ref()
                        ),
                    );
                }
                prefix.zip(m)
            }
            (Some(vb), None) => {
                self.err(vb.span(), format!("{what}: `varbind` needs `equals`"));
                None
            }
            (None, Some(eq)) => {
                self.err(eq.span(), format!("{what}: `equals` needs `varbind`"));
                None
            }
        };
        let mut set = Vec::new();
        if rt.set.get_ref().is_empty() {
            self.err(rt.set.span(), format!("{what}: `set` is empty"));
        }
        for (pname, val) in rt.set.get_ref() {
            let Some(def) = points::lookup(kind, pname) else {
                self.err(
                    val.span(),
                    format!(
                        "{what}: unknown point `{pname}` for kind `{}`",
                        kind.as_str()
                    ),
                );
                continue;
            };
            let v = match (def.ty, val.get_ref()) {
                (PointType::Bool, toml::Value::Boolean(b)) => Some(Value::Bool(*b)),
                (PointType::Number, toml::Value::Integer(i)) => Some(Value::Number(*i as f64)),
                (PointType::Number, toml::Value::Float(f)) => Some(Value::Number(*f)),
                (PointType::Enum(names), toml::Value::String(s)) => names
                    .iter()
                    .find(|n| **n == s.as_str())
                    .map(|n| Value::Enum(n)),
                _ => None,
            };
            match v {
                Some(v) => set.push((def, v)),
                None => {
                    let want = match def.ty {
                        PointType::Bool => "true or false".to_string(),
                        PointType::Number => "a number".to_string(),
                        PointType::Enum(names) => format!("one of {}", names.join(", ")),
                    };
                    self.err(val.span(), format!("{what}: point `{pname}` takes {want}"));
                }
            }
        }
        if self.errors.len() != before {
            return None;
        }
        Some(TrapRule {
            name,
            oid: oid?,
            condition,
            set,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "id = \"t\"\nkind = \"ups\"\nprotocol = \"snmp\"\n";

    fn err_of(body: &str) -> ProfileError {
        let text = format!("{HEAD}{body}");
        match parse_profile(&text, "t.toml") {
            Ok(p) => panic!("expected an error, got {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn shipped_profiles_parse_and_cite_sources() {
        for (file, text) in shipped_profiles() {
            let p = parse_profile(text, file).unwrap_or_else(|e| panic!("{e}"));
            assert!(!p.points.is_empty(), "{file}");
            assert!(p.points.iter().all(|pt| !pt.source.is_empty()), "{file}");
            assert!(p.traps.iter().all(|t| !t.source.is_empty()), "{file}");
            assert!(file.starts_with(&p.id), "{file} has id {}", p.id);
        }
    }

    #[test]
    fn ups_mib_maps_the_rfc1628_objects() {
        let (_, text) = shipped_profiles()
            .into_iter()
            .find(|(f, _)| *f == "ups-mib.toml")
            .unwrap();
        let p = parse_profile(text, "ups-mib.toml").unwrap();
        assert_eq!(p.kind, Kind::Ups);
        let charge = p.point("battery_charge_pct").unwrap();
        assert_eq!(
            charge.access,
            Access::Get(parse_oid("1.3.6.1.2.1.33.1.2.4.0").unwrap())
        );
        let runtime = p.point("runtime_remaining_s").unwrap();
        assert_eq!(
            runtime.scale, 60.0,
            "upsEstimatedMinutesRemaining is in minutes"
        );
        let src = p.point("output_source").unwrap();
        assert!(
            src.enum_map.contains(&(5, "on_battery")) && src.enum_map.contains(&(4, "on_bypass"))
        );
        let bad = p.point("battery_replace").unwrap();
        assert_eq!(
            bad.access,
            Access::Walk {
                column: parse_oid("1.3.6.1.2.1.33.1.6.2.1.2").unwrap(),
                aggregate: Aggregate::Contains(Match::Oid(
                    parse_oid("1.3.6.1.2.1.33.1.6.3.1").unwrap()
                )),
                rows: None,
            }
        );
        assert!(p.traps.iter().any(|t| t.name == "upsTrapOnBattery"));
    }

    /// Issue 23, item 1: what real UPS-MIB agents send, as each shipped profile must
    /// read it: "not available" sentinels give `unknown`, implausible values
    /// `out_of_range` with the reason in words, vendor unit quirks the right value.
    #[test]
    fn shipped_profiles_read_real_agents_values_right_or_mark_them() {
        use crate::model::Quality as Q;
        use async_snmp::Value as V;
        let load = |id: &str| {
            let (f, t) = shipped_profiles()
                .into_iter()
                .find(|(f, _)| f.trim_end_matches(".toml") == id)
                .unwrap();
            parse_profile(t, f).unwrap()
        };
        type Case = (&'static str, &'static str, V, Q, Option<f64>, &'static str);
        let cases: Vec<Case> = vec![
            (
                "ups-mib",
                "runtime_remaining_s",
                V::Integer(0),
                Q::Unknown,
                None,
                "the agent sends 0: \"not available\"",
            ),
            (
                "ups-mib",
                "runtime_remaining_s",
                V::TimeTicks(0),
                Q::Unknown,
                None,
                "not available",
            ),
            (
                "ups-mib",
                "runtime_remaining_s",
                V::Integer(-1),
                Q::Unknown,
                None,
                "not available",
            ),
            (
                "ups-mib",
                "runtime_remaining_s",
                V::Integer(42),
                Q::Good,
                Some(2520.0),
                "",
            ),
            (
                "ups-mib",
                "battery_temperature_c",
                V::Integer(-1),
                Q::Unknown,
                None,
                "not available",
            ),
            (
                "ups-mib",
                "battery_temperature_c",
                V::Integer(25),
                Q::Good,
                Some(25.0),
                "",
            ),
            (
                "ups-mib",
                "battery_charge_pct",
                V::Integer(-1),
                Q::Unknown,
                None,
                "not available",
            ),
            (
                "ups-mib",
                "battery_charge_pct",
                V::Integer(0),
                Q::Good,
                Some(0.0),
                "",
            ),
            (
                "ups-mib",
                "input_voltage_v",
                V::Gauge32(2369),
                Q::OutOfRange,
                Some(2369.0),
                "2369 is above the plausible range 0 to 600",
            ),
            (
                "ups-mib",
                "input_voltage_v",
                V::Integer(236),
                Q::Good,
                Some(236.0),
                "",
            ),
            (
                "ups-mib",
                "input_frequency_hz",
                V::Gauge32(5000),
                Q::OutOfRange,
                Some(500.0),
                "500 is above the plausible range 0 to 70",
            ),
            (
                "ups-mib",
                "output_frequency_hz",
                V::Integer(499),
                Q::Good,
                Some(49.9),
                "",
            ),
            (
                "huawei-ups",
                "input_voltage_v",
                V::Gauge32(2369),
                Q::Good,
                Some(236.9),
                "",
            ),
            (
                "huawei-ups",
                "input_frequency_hz",
                V::Gauge32(5000),
                Q::Good,
                Some(50.0),
                "",
            ),
            (
                "huawei-ups",
                "runtime_remaining_s",
                V::Gauge32(4294967295),
                Q::Unknown,
                None,
                "not available",
            ),
            (
                "eaton-xups",
                "runtime_remaining_s",
                V::Integer(65535),
                Q::Unknown,
                None,
                "not available",
            ),
            (
                "eaton-xups",
                "runtime_remaining_s",
                V::Integer(17218),
                Q::Good,
                Some(17218.0),
                "",
            ),
            (
                "delta-ups",
                "input_voltage_v",
                V::Integer(2280),
                Q::Good,
                Some(228.0),
                "",
            ),
            (
                "delta-ups",
                "output_frequency_hz",
                V::Integer(499),
                Q::Good,
                Some(49.9),
                "",
            ),
        ];
        for (id, point, raw, q, v, note) in cases {
            let p = load(id);
            let map = p.point(point).unwrap_or_else(|| panic!("{id}: {point}"));
            let d = super::super::decode::decode_value(map, &raw);
            let what = format!("{id} {point} {raw:?}: {d:?}");
            assert_eq!(d.quality, q, "{what}");
            match (v, &d.value) {
                (Some(want), Some(Value::Number(got))) => {
                    assert!((want - got).abs() < 1e-9, "{what}")
                }
                (None, None) => {}
                _ => panic!("{what}: want {v:?}"),
            }
            assert!(d.note.as_deref().unwrap_or("").contains(note), "{what}");
            assert!(!d.note.as_deref().unwrap_or("").contains("Some("), "{what}");
        }
    }

    /// Issue 10, item 4: one profile id rule for both formats.
    #[test]
    fn profile_id_rule_is_the_same_for_modbus_and_snmp() {
        for (id, ok) in [
            ("ups-mib", true),
            ("x.y_z-1", true),
            ("", false),
            ("my ups", false),
            ("ups/1", false),
        ] {
            let snmp = format!(
                "id = {id:?}\nkind = \"ups\"\nprotocol = \"snmp\"\n[[points]]\npoint = \"load_pct\"\noid = \"1.3.6.1\"\nsource = \"x\"\n"
            );
            let modbus = format!(
                "id = {id:?}\nkind = \"ups\"\nprotocol = \"modbus\"\n[[points]]\npoint = \"load_pct\"\ntable = \"holding\"\naddress = 1\ntype = \"u16\"\nsource = \"x\"\n"
            );
            let a = parse_profile(&snmp, "s.toml")
                .map(|_| ())
                .map_err(|e| e.message);
            let b = crate::sources::modbus::profile::parse(&modbus, "m.toml")
                .map(|_| ())
                .map_err(|e| e.message);
            assert_eq!(a.is_ok(), ok, "snmp {id:?}: {a:?}");
            assert_eq!(a, b, "the two formats disagree on {id:?}");
        }
    }

    #[test]
    fn where_selects_rows_by_another_column() {
        use async_snmp::{Value as V, VarBind};
        let text = format!(
            "{HEAD}[[points]]\npoint = \"load_pct\"\nwalk = \"1.3.6.1.9.3\"\nwhere = {{ column = \"1.3.6.1.9.2\", equals = \"1.3.6.1.7.2\" }}\nsource = \"x\"\n"
        );
        let p = parse_profile(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.walk_columns().len(), 2, "the naming column is walked too");
        let Access::Walk {
            column,
            rows: Some(f),
            ..
        } = &p.points[0].access
        else {
            panic!("{:?}", p.points[0].access)
        };
        let vb = |o: &str, v: V| VarBind::new(parse_oid(o).unwrap(), v);
        let named_by = [
            vb(
                "1.3.6.1.9.2.1",
                V::ObjectIdentifier(parse_oid("1.3.6.1.7.1").unwrap()),
            ),
            vb(
                "1.3.6.1.9.2.3",
                V::ObjectIdentifier(parse_oid("1.3.6.1.7.2").unwrap()),
            ),
        ];
        let rows = [
            vb("1.3.6.1.9.3.1", V::Integer(10)),
            vb("1.3.6.1.9.3.3", V::Integer(30)),
        ];
        let got = crate::sources::snmp::decode::rows_where(column, &rows, f, &named_by);
        assert_eq!(got, vec![&V::Integer(30)]);
        let e = err_of(
            "[[points]]\npoint = \"load_pct\"\noid = \"1.3.6.1\"\nwhere = { column = \"1.3.6.1.2\", equals = \"3\" }\nsource = \"x\"\n",
        );
        assert!(e.message.contains("`where` applies to `walk`"), "{e}");
    }

    #[test]
    fn full_point_and_trap_parse() {
        let text = format!(
            "{HEAD}[[points]]\npoint = \"load_pct\"\nwalk = \".1.3.6.1.2.1.33.1.4.4.1.5\"\naggregate = \"max\"\nmin = 0.0\nmax = 200.0\nsource = \"x\"\n\
             [[points]]\npoint = \"on_battery\"\noid = \"1.3.6.1.2.1.33.1.4.1.0\"\ntrue_values = [5]\nsource = \"x\"\n\
             [[traps]]\nname = \"n\"\noid = \"1.3.6.1.2.1.33.2.3\"\nvarbind = \"1.3.6.1.2.1.33.1.6.2.1.2\"\nequals = \"1.3.6.1.2.1.33.1.6.3.9\"\nset = {{ on_bypass = true, output_source = \"on_bypass\", load_pct = 5 }}\nsource = \"x\"\n"
        );
        let p = parse_profile(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.walk_columns().len(), 1);
        assert_eq!(p.get_oids().len(), 1);
        assert_eq!(p.point("on_battery").unwrap().true_values, vec![5]);
        let t = &p.traps[0];
        assert_eq!(t.set.len(), 3);
        assert!(matches!(t.condition, Some((_, Match::Oid(_)))));
    }

    #[test]
    fn v1_trap_matches_with_or_without_the_zero_arc() {
        let rule = TrapRule {
            name: "x".into(),
            oid: parse_oid("1.3.6.1.2.1.33.2.1").unwrap(),
            condition: None,
            set: vec![],
            source: "x".into(),
        };
        assert!(rule.matches(&parse_oid("1.3.6.1.2.1.33.2.1").unwrap(), false, &[]));
        assert!(rule.matches(&parse_oid("1.3.6.1.2.1.33.2.0.1").unwrap(), true, &[]));
        assert!(!rule.matches(&parse_oid("1.3.6.1.2.1.33.2.0.1").unwrap(), false, &[]));
        assert!(!rule.matches(&parse_oid("1.3.6.1.2.1.33.2.2").unwrap(), true, &[]));
    }

    #[test]
    fn aggregate_any_needs_a_boolean_with_true_values() {
        let e = err_of(
            "[[points]]\npoint = \"load_pct\"\nwalk = \"1.3.6.1\"\naggregate = \"any\"\nsource = \"x\"\n",
        );
        assert!(
            e.message.contains("aggregate = \"any\" gives a boolean"),
            "{e}"
        );
        let e = err_of(
            "[[points]]\npoint = \"on_battery\"\nwalk = \"1.3.6.1\"\naggregate = \"any\"\nsource = \"x\"\n",
        );
        assert!(e.message.contains("add `true_values`"), "{e}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = err_of("[[points]]\npoint = \"load_pct\n");
        assert!(e.to_string().starts_with("t.toml:5:"), "{e}");
    }

    #[test]
    fn symbolic_oid_is_rejected_with_position() {
        let e = err_of(
            "[[points]]\npoint = \"load_pct\"\noid = \"upsOutputPercentLoad.1\"\nsource = \"x\"\n",
        );
        assert_eq!((e.line, e.column), (6, 7), "{e}");
        assert!(e.message.contains("numeric OID"), "{e}");
    }

    #[test]
    fn unknown_point_is_rejected() {
        let e = err_of(
            "[[points]]\npoint = \"batery_charge_pct\"\noid = \"1.3.6.1\"\nsource = \"x\"\n",
        );
        assert_eq!(
            e.to_string(),
            "t.toml:5:9: unknown point `batery_charge_pct` for kind `ups`"
        );
    }

    #[test]
    fn missing_source_is_rejected() {
        let e = err_of("[[points]]\npoint = \"load_pct\"\noid = \"1.3.6.1\"\n");
        assert!(e.message.contains("missing `source`"), "{e}");
    }

    #[test]
    fn bool_needs_true_values() {
        let e = err_of("[[points]]\npoint = \"on_battery\"\noid = \"1.3.6.1\"\nsource = \"x\"\n");
        assert!(e.message.contains("true_values"), "{e}");
    }

    #[test]
    fn contains_needs_match_and_a_boolean() {
        let e = err_of(
            "[[points]]\npoint = \"on_bypass\"\nwalk = \"1.3.6.1\"\naggregate = \"contains\"\nsource = \"x\"\n",
        );
        assert!(e.message.contains("match"), "{e}");
        let e = err_of(
            "[[points]]\npoint = \"load_pct\"\nwalk = \"1.3.6.1\"\naggregate = \"contains\"\nmatch = \"1.3.6.1.9\"\nsource = \"x\"\n",
        );
        assert!(e.message.contains("boolean"), "{e}");
    }

    #[test]
    fn enum_value_outside_vocabulary_is_rejected() {
        let e = err_of(
            "[[points]]\npoint = \"output_source\"\noid = \"1.3.6.1\"\nenum = { 5 = \"battery\" }\nsource = \"x\"\n",
        );
        assert!(e.message.contains("\"battery\""), "{e}");
    }

    #[test]
    fn trap_set_type_is_checked() {
        let e = err_of(
            "[[points]]\npoint = \"load_pct\"\noid = \"1.3.6.1\"\nsource = \"x\"\n[[traps]]\nname = \"t\"\noid = \"1.3.6.1.9\"\nset = { on_battery = \"yes\" }\nsource = \"x\"\n",
        );
        assert!(e.message.contains("true or false"), "{e}");
    }

    #[test]
    fn modbus_profile_is_not_an_snmp_profile() {
        let e = parse_profile("id = \"t\"\nkind = \"ups\"\nprotocol = \"modbus\"\n[[points]]\npoint = \"load_pct\"\noid = \"1.3.6.1\"\nsource = \"x\"\n", "m.toml").unwrap_err();
        assert!(e.message.contains("protocol"), "{e}");
    }

    #[test]
    fn both_oid_and_walk_is_rejected() {
        let e = err_of(
            "[[points]]\npoint = \"load_pct\"\noid = \"1.3.6.1\"\nwalk = \"1.3.6.1\"\nsource = \"x\"\n",
        );
        assert!(e.message.contains("not both"), "{e}");
    }
}
