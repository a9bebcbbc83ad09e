//! The data that flows through the gateway: device kinds, values, reading qualities,
//! readings and alarm events.
//!
//! A reading keeps the difference between "the device answered with an exception" and
//! "the link failed" (as tokio-modbus does) in its [`Quality`], so rules, the API and
//! dashboards can tell a dead sensor from a dead cable.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::points::PointId;

/// Device kind: decides the point vocabulary, the InfluxDB measurement and the default
/// alarm profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Uninterruptible power supply.
    Ups,
    /// Standby generator controller.
    Generator,
    /// Precision cooling unit (CRAC/CRAH).
    Cooling,
    /// Temperature/humidity sensor.
    Climate,
    /// Fire alarm / suppression panel.
    FirePanel,
    /// Water-leak sensor.
    Leak,
    /// Door contact.
    Door,
    /// Camera recorder.
    Nvr,
    /// Surge / lightning protector.
    Surge,
    /// Power meter (mains, ATS).
    PowerMeter,
    /// The gateway itself.
    Gateway,
    /// Automatic transfer switch between mains and the standby generator.
    Ats,
}

/// The systems of the data center (CONTRACTS.md, "Systems"): the one map from device
/// kind to system, used by maintenance windows, incidents, the wall view and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum System {
    /// UPS, generator, transfer switch, power meters, PDUs.
    Power,
    /// Precision cooling.
    Cooling,
    /// Room climate (temperature, humidity).
    Climate,
    /// Fire panel, leak, surge and lightning protection.
    FireSafety,
    /// Doors and camera recorders.
    Security,
    /// The gateway itself.
    Gateway,
}

impl System {
    /// Every system, in display order.
    pub const ALL: [System; 6] = [
        System::Power,
        System::Cooling,
        System::Climate,
        System::FireSafety,
        System::Security,
        System::Gateway,
    ];

    /// The snake_case name (`fire_safety`).
    pub fn as_str(self) -> &'static str {
        match self {
            System::Power => "power",
            System::Cooling => "cooling",
            System::Climate => "climate",
            System::FireSafety => "fire_safety",
            System::Security => "security",
            System::Gateway => "gateway",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<System> {
        System::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The device kinds that belong to this system, in [`Kind::ALL`] order.
    pub fn kinds(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |k| k.system() == self)
    }
}

impl Kind {
    /// The system this kind of device belongs to (the one place this map is written).
    pub fn system(self) -> System {
        match self {
            Kind::Ups | Kind::Generator | Kind::PowerMeter | Kind::Ats => System::Power,
            Kind::Cooling => System::Cooling,
            Kind::Climate => System::Climate,
            Kind::FirePanel | Kind::Leak | Kind::Surge => System::FireSafety,
            Kind::Door | Kind::Nvr => System::Security,
            Kind::Gateway => System::Gateway,
        }
    }

    /// Every kind, in documentation order.
    pub const ALL: [Kind; 12] = [
        Kind::Ups,
        Kind::Generator,
        Kind::Cooling,
        Kind::Climate,
        Kind::FirePanel,
        Kind::Leak,
        Kind::Door,
        Kind::Nvr,
        Kind::Surge,
        Kind::PowerMeter,
        Kind::Gateway,
        Kind::Ats,
    ];

    /// The snake_case name used in config, MQTT, InfluxDB (measurement) and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ups => "ups",
            Kind::Generator => "generator",
            Kind::Cooling => "cooling",
            Kind::Climate => "climate",
            Kind::FirePanel => "fire_panel",
            Kind::Leak => "leak",
            Kind::Door => "door",
            Kind::Nvr => "nvr",
            Kind::Surge => "surge",
            Kind::PowerMeter => "power_meter",
            Kind::Gateway => "gateway",
            Kind::Ats => "ats",
        }
    }

    /// Parse a kind name. `camera_recorder` is another name of `nvr` (the systems
    /// map in CONTRACTS.md names it so).
    pub fn parse(s: &str) -> Option<Kind> {
        if s == "camera_recorder" {
            return Some(Kind::Nvr);
        }
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded value of a canonical point.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number in the point's unit.
    Number(f64),
    /// A boolean flag.
    Bool(bool),
    /// An enumeration value: its canonical lowercase name.
    Enum(&'static str),
}

impl Value {
    /// The value as a number, if it is one (booleans count as 0/1 for rules).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(v) => Some(*v),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Enum(_) => None,
        }
    }
}

impl fmt::Display for Value {
    /// Text form used on MQTT: `23.4`, `true`, `on_battery`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(v) => write!(f, "{}", fmt_number(*v)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Enum(s) => f.write_str(s),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Number(v) if v.is_finite() => s.serialize_f64(*v),
            Value::Number(_) => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Enum(n) => s.serialize_str(n),
        }
    }
}

/// Shortest text for a number that round-trips, without a trailing `.0` on integers.
pub fn fmt_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        // Round away binary noise from scaling (0.1 * 234 = 23.400000000000002).
        let r = (v * 1e6).round() / 1e6;
        format!("{r}")
    }
}

/// Why a value is or is not fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Read successfully in the last poll.
    Good,
    /// No good reading for 3 poll intervals.
    Stale,
    /// The link failed: connection refused or lost, I/O error, garbage reply.
    CommError,
    /// The device did not answer within its timeout.
    Timeout,
    /// The device answered with a protocol exception (Modbus exception code).
    DeviceException,
    /// The agent has no such object (SNMP noSuchObject / noSuchInstance).
    NoSuchObject,
    /// The raw value is outside the range the profile allows.
    OutOfRange,
    /// The device reports the value as "not available".
    Unknown,
}

impl Quality {
    /// The snake_case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Stale => "stale",
            Quality::CommError => "comm_error",
            Quality::Timeout => "timeout",
            Quality::DeviceException => "device_exception",
            Quality::NoSuchObject => "no_such_object",
            Quality::OutOfRange => "out_of_range",
            Quality::Unknown => "unknown",
        }
    }
}

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The system clock now.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }
    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
    /// This instant plus a duration.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0 + d.as_millis() as i64)
    }
    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }
    /// RFC 3339 UTC with milliseconds: `2026-11-25T08:00:00.123Z`.
    pub fn rfc3339(self) -> String {
        let dt = time::OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        dt.format(&fmt).unwrap_or_default()
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_millis() as i64),
            Err(e) => Timestamp(-(e.duration().as_millis() as i64)),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    /// From its RFC 3339 form (any offset), or from milliseconds since the epoch.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Millis(i64),
        }
        match Form::deserialize(d)? {
            Form::Millis(ms) => Ok(Timestamp(ms)),
            Form::Text(t) => {
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .map(|dt| Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64))
                    .map_err(|e| {
                        serde::de::Error::custom(format!("{t:?} is not an RFC 3339 time: {e}"))
                    })
            }
        }
    }
}

/// Identity of a configured device, shared by every reading it produces.
#[derive(Debug)]
pub struct DeviceMeta {
    /// Config id, unique per site (`ups1`); used in MQTT topics and InfluxDB tags.
    pub id: Arc<str>,
    /// Human name.
    pub name: String,
    /// The sticker on the equipment (Art. 14.1).
    pub label: Option<String>,
    /// Room id.
    pub room: Arc<str>,
    /// Device kind.
    pub kind: Kind,
}

/// A device handle: cheap to clone, carried by readings.
pub type Device = Arc<DeviceMeta>;

/// One point's outcome in one poll.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The canonical point.
    pub point: PointId,
    /// The decoded value when `quality` is good, otherwise `None`.
    pub value: Option<Value>,
    /// Quality of this sample.
    pub quality: Quality,
}

/// The result of one poll of one device: every point it maps, read at `ts`.
#[derive(Debug, Clone)]
pub struct Poll {
    /// The device polled.
    pub device: Device,
    /// When the reply arrived (or the poll failed).
    pub ts: Timestamp,
    /// Whether at least one read returned data: false on timeout, link failure, or when
    /// every read was refused with an exception.
    pub comm_ok: bool,
    /// One sample per mapped point.
    pub samples: Vec<Sample>,
}

/// Alarm level: the regulation's two incident levels (Art. 18.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Sự cố thông thường.
    Normal,
    /// Sự cố nghiêm trọng.
    Serious,
}

impl Level {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Serious => "serious",
        }
    }
}

/// An alarm state transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Condition became active (or changed level).
    Raised,
    /// Condition returned to normal.
    Cleared,
    /// An operator acknowledged it.
    Acked,
    /// An operator shelved it (with a reason, until a time).
    Shelved,
    /// Its shelving ended (by an operator, or at its expiry).
    Unshelved,
}

impl AlarmState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Raised => "raised",
            AlarmState::Cleared => "cleared",
            AlarmState::Acked => "acked",
            AlarmState::Shelved => "shelved",
            AlarmState::Unshelved => "unshelved",
        }
    }
    /// Integer code for the InfluxDB `state` field.
    pub fn code(self) -> i64 {
        match self {
            AlarmState::Raised => 1,
            AlarmState::Cleared => 0,
            AlarmState::Acked => 2,
            AlarmState::Shelved => 3,
            AlarmState::Unshelved => 4,
        }
    }
}

/// An alarm event as published on MQTT and written to InfluxDB.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmEvent {
    /// Unique id of this event (UUID v7), for de-duplication by consumers.
    pub id: String,
    /// Per-gateway monotonically increasing sequence number.
    pub seq: u64,
    /// When the transition happened.
    pub ts: Timestamp,
    /// Site name.
    pub site: Arc<str>,
    /// Device id.
    pub device: Arc<str>,
    /// Device kind.
    #[serde(skip)]
    pub kind: Kind,
    /// Room id (serialized with the detail).
    #[serde(skip)]
    pub room: Arc<str>,
    /// Point name.
    pub point: &'static str,
    /// Rule name (`temperature_high`, `stale`, ...).
    pub rule: Arc<str>,
    /// Level of the alarm.
    pub level: Level,
    /// Transition.
    pub state: AlarmState,
    /// The value that caused the transition, if numeric or boolean.
    pub value: Option<Value>,
    /// The threshold crossed, if any.
    pub threshold: Option<f64>,
    /// Operator text (Vietnamese by default), citing the article.
    pub message: String,
    /// What the event carries beyond the transition (round 2 of the contract).
    #[serde(flatten)]
    pub detail: EventDetail,
}

/// The fields an alarm event gained in round 2 of the contract (CONTRACTS.md), all
/// additive: who and where, the alarm instance, and the operator of a transition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventDetail {
    /// The gateway that made the event (config `gateway`, default the host name).
    pub gateway: Arc<str>,
    /// The alarm instance's short number, per gateway, increasing (shown to people,
    /// used in "OK 123" replies); 0 on events of the first release.
    pub no: u64,
    /// The device's human name.
    pub name: String,
    /// The sticker on the equipment (Art. 14.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The room id.
    pub room: Arc<str>,
    /// The rack / position of the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// On a link alarm (`link_down`, `link_silent`): the ids of the devices behind the
    /// lost link (src/rules/rootcause.rs). Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub behind: Vec<Arc<str>>,
    /// The event time in the site's time zone, RFC 3339 with the offset.
    pub local_ts: String,
    /// The operator of an `acked` (or other operator) transition, as they gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The operator's comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The device was in a maintenance window (Art. 8.3a): recorded and shown, not
    /// paged.
    #[serde(default)]
    pub in_maintenance: bool,
    /// Until when a `shelved` alarm is shelved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shelved_until: Option<Timestamp>,
    /// Whether the alarm stands in the active list after this event (raised or
    /// acknowledged; serious, cleared and not yet acknowledged). Decides the retained
    /// `alarms/active/...` message.
    pub listed: bool,
    /// The gateway's clock was not known synchronised when the event was made (before
    /// the first good NTP check after a start, or after the check lost it): its `ts`
    /// may be wrong. Left out when false (src/selfwatch/).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clock_unsynced: bool,
    /// Root-cause group id, set on child alarms of a link alarm: such children are
    /// journaled but not paged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The incident this alarm belongs to (`SC-<n>`, src/incidents/), once its alarm
    /// qualified as an incident (Art. 18).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

impl AlarmEvent {
    /// The key that identifies the alarm (not the event): `device/rule`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.device, self.rule)
    }
}

/// Language of alarm texts and the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Vietnamese, with diacritics (default).
    #[default]
    Vi,
    /// English.
    En,
}

/// A stable 64-bit fingerprint of `s` (FNV-1a): the same in every build and version,
/// for ids and cache keys. Not a security measure.
pub fn stable_hash(s: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(s.as_bytes());
    h.finish()
}

#[cfg(test)]
mod system_tests {
    use super::*;

    #[test]
    fn every_kind_is_in_exactly_one_system_as_the_contract_maps_it() {
        let mut seen = Vec::new();
        for s in System::ALL {
            seen.extend(s.kinds());
        }
        seen.sort_by_key(|k| k.as_str());
        let mut all = Kind::ALL.to_vec();
        all.sort_by_key(|k| k.as_str());
        assert_eq!(seen, all);
        assert_eq!(Kind::Ups.system(), System::Power);
        assert_eq!(Kind::Leak.system(), System::FireSafety);
        assert_eq!(Kind::Nvr.system(), System::Security);
        assert_eq!(System::FireSafety.as_str(), "fire_safety");
    }
}
