//! Raw config as written in TOML: serde structs, nothing validated yet.
//!
//! Fields that validation may complain about are `Spanned`, so a semantic error can
//! name the file, line and column as well as the device and key path. The parts that
//! belong to a source or a sink (a device's connection table, `[[buses]]`,
//! `[snmp_traps]`, `[[sinks]]`) are not here: the loader takes them out of the document
//! and hands them to their folder (see `sources/mod.rs`, `sinks/registry.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_spanned::Spanned;

/// The whole site file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    /// Site identity.
    pub site: RawSiteInfo,
    /// Rooms of the site.
    #[serde(default)]
    pub rooms: Vec<RawRoom>,
    /// Local web page and API.
    #[serde(default)]
    pub web: RawWeb,
    /// Site-wide alarm rule overrides, by rule name.
    #[serde(default)]
    pub rules: BTreeMap<String, Spanned<RawRuleOverride>>,
    /// Extra profile files (`*.toml`) that add to or override the shipped ones.
    #[serde(default)]
    pub profiles_dir: Option<PathBuf>,
    /// How people may act on alarms.
    #[serde(default)]
    pub alarms: RawAlarms,
    /// Planned maintenance windows (Art. 8.3a).
    #[serde(default)]
    pub maintenance: Vec<RawMaintenance>,
    /// Sirens and beacons driven by alarms (docs/GPIO.md, "Outputs").
    #[serde(default)]
    pub outputs: Vec<crate::outputs::RawOutput>,
    /// Approved access windows of doors (Art. 7.5).
    #[serde(default)]
    pub access_windows: Vec<crate::rules::door::RawAccessWindow>,
    /// Durable state: where it lives and how much disk each sink's queue may use.
    #[serde(default)]
    pub storage: RawStorage,
    /// The site's own rules over points of named devices (`[[composite_rules]]`,
    /// docs/RULES.md "Composite rules").
    #[serde(default)]
    pub composite_rules: Vec<Spanned<RawCompositeRule>>,
}

/// `[[composite_rules]]`: an alarm when all of `all` and (if given) any of `any` hold
/// for `for_s`. The alarm belongs to `device`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompositeRule {
    /// Rule name, snake_case, unique among the device's rules (`hot_aisle_no_cooling`).
    pub name: Spanned<String>,
    /// The device the alarm belongs to; conditions without `device` read its points.
    pub device: Spanned<String>,
    /// `normal` or `serious` (Art. 18.2).
    pub level: Spanned<String>,
    /// How long the condition must hold before raising, seconds (default 0).
    #[serde(default)]
    pub for_s: Option<Spanned<f64>>,
    /// Article of the regulation the rule serves, cited in the text (default `10.1`).
    #[serde(default)]
    pub article: Option<Spanned<String>>,
    /// The alarm text in Vietnamese (the condition, as people should read it).
    pub text_vi: Spanned<String>,
    /// The alarm text in English (default: the Vietnamese one).
    #[serde(default)]
    pub text_en: Option<String>,
    /// Conditions that must all hold.
    #[serde(default)]
    pub all: Vec<Spanned<RawCondition>>,
    /// Conditions of which at least one must hold (when given).
    #[serde(default)]
    pub any: Vec<Spanned<RawCondition>>,
}

/// One condition of a `[[composite_rules]]` entry: a point and exactly one test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    /// Device id (default: the rule's device).
    #[serde(default)]
    pub device: Option<Spanned<String>>,
    /// Canonical point of that device.
    pub point: Spanned<String>,
    /// Equals: `true`/`false` for a boolean point, a value name for an enumeration.
    #[serde(default)]
    pub is: Option<Spanned<toml::Value>>,
    /// Not equal to this value name (enumerations).
    #[serde(default)]
    pub is_not: Option<Spanned<String>>,
    /// Strictly above this number.
    #[serde(default)]
    pub above: Option<Spanned<f64>>,
    /// Strictly below this number.
    #[serde(default)]
    pub below: Option<Spanned<f64>>,
    /// What the condition counts as while the point has no good, fresh value. Not
    /// given: unknown, and a rule whose outcome depends on it keeps its state.
    #[serde(default)]
    pub if_unknown: Option<bool>,
}

/// `backed_by` of a UPS: the standby generator and the transfer switch behind it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackedBy {
    /// Device id of the generator (kind `generator`).
    #[serde(default)]
    pub generator: Option<Spanned<String>>,
    /// Device id of the transfer switch (kind `ats`).
    #[serde(default)]
    pub ats: Option<Spanned<String>>,
}

/// `[site]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSiteInfo {
    /// Short site id used in MQTT topics and InfluxDB tags (`[a-z0-9_-]+`).
    pub name: Spanned<String>,
    /// Display title for the wall view.
    #[serde(default)]
    pub title: Option<String>,
    /// `vi` (default) or `en`: language of alarm texts and the page.
    #[serde(default)]
    pub language: Option<Spanned<String>>,
    /// This gateway's name, in every alarm event and journal entry and in its own
    /// status topic (default: the host name). Two gateways of one site need two names.
    #[serde(default)]
    pub gateway: Option<Spanned<String>>,
    /// The site's time zone (IANA name, default `Asia/Ho_Chi_Minh`): local times in
    /// alarm texts, events (`local_ts`), the page and reports.
    #[serde(default)]
    pub time_zone: Option<Spanned<String>>,
}

/// `[alarms]`: how people may act on alarms.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlarms {
    /// A shelve without `minutes` lasts this long (default 60).
    #[serde(default)]
    pub shelve_default_minutes: Option<Spanned<u32>>,
    /// The longest a shelve may last (default 480: one shift).
    #[serde(default)]
    pub shelve_max_minutes: Option<Spanned<u32>>,
}

/// `[[maintenance]]`: a planned maintenance window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    /// What it covers: a device id, `room:<id>` or `system:<name>` (power, cooling,
    /// climate, fire_safety, security).
    pub target: Spanned<String>,
    /// When, in the site's schedule syntax (`["Sat 22:00-02:00"]`; docs/RULES.md).
    pub when: Spanned<Vec<String>>,
    /// Why (shown with the alarms it covers).
    #[serde(default)]
    pub reason: Option<String>,
}

/// `[[rooms]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoom {
    /// Room id (`server1`).
    pub id: Spanned<String>,
    /// Display name (`Phòng máy chủ 1`).
    #[serde(default)]
    pub name: Option<String>,
    /// Rule overrides for every device in this room.
    #[serde(default)]
    pub rules: BTreeMap<String, Spanned<RawRuleOverride>>,
}

/// `[web]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// Listen address; loopback by default. Bind it to the management address only.
    #[serde(default)]
    pub listen: Option<Spanned<String>>,
    /// PEM certificate (chain) for HTTPS; with `tls_key_file`. Required once accounts
    /// exist, except on a loopback address.
    #[serde(default)]
    pub tls_cert_file: Option<Spanned<PathBuf>>,
    /// PEM private key for HTTPS; with `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: Option<Spanned<PathBuf>>,
    /// A session ends after this many seconds without a request (default 1800).
    #[serde(default)]
    pub session_idle_s: Option<Spanned<u64>>,
    /// A session ends this many seconds after the login (default 43200).
    #[serde(default)]
    pub session_max_s: Option<Spanned<u64>>,
    /// Open connections at most (default 256).
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    /// Open connections from one client address at most (default 32).
    #[serde(default)]
    pub max_connections_per_address: Option<Spanned<usize>>,
}

/// `[[devices]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    /// Unique id (`ups1`), used in topics and tags.
    pub id: Spanned<String>,
    /// Human name.
    #[serde(default)]
    pub name: Option<String>,
    /// Equipment sticker (Art. 14.1).
    #[serde(default)]
    pub label: Option<String>,
    /// Room id; must be one of `[[rooms]]`.
    pub room: Spanned<String>,
    /// Rack / position.
    #[serde(default)]
    pub location: Option<String>,
    /// Device kind (`climate`, `ups`, ...).
    pub kind: Spanned<String>,
    /// Profile id (`xy-md02`).
    pub profile: Spanned<String>,
    /// Model name.
    #[serde(default)]
    pub model: Option<String>,
    /// Serial number.
    #[serde(default)]
    pub serial: Option<String>,
    /// Poll period.
    #[serde(default)]
    pub poll_interval_ms: Option<Spanned<u64>>,
    /// Per-request timeout.
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
    /// Rule overrides for this device (each rule belongs to one point, so this is
    /// also the per-point level).
    #[serde(default)]
    pub rules: BTreeMap<String, Spanned<RawRuleOverride>>,
    /// Power topology, UPS only: `backed_by = { generator = "gen1", ats = "ats1" }`
    /// (docs/RULES.md "Power topology").
    #[serde(default)]
    pub backed_by: Option<Spanned<RawBackedBy>>,
}

/// An override of one alarm rule. Unset fields keep the inherited value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleOverride {
    /// Turn the rule off (`false`) or back on.
    pub enabled: Option<bool>,
    /// Normal-level limit (Art. 18.2 "thông thường").
    pub normal: Option<f64>,
    /// Serious-level limit (Art. 18.2 "nghiêm trọng").
    pub serious: Option<f64>,
    /// Distance back inside the limit before the alarm clears.
    pub hysteresis: Option<f64>,
    /// How long the condition must hold before raising (for `not_at_rated`: the time
    /// a start is allowed to reach rated voltage and frequency).
    pub on_delay_s: Option<f64>,
    /// Level of a door opened outside its access windows (`normal` or `serious`;
    /// the `door_open` rule only).
    pub outside_level: Option<crate::model::Level>,
    /// `not_at_rated` only: the generator's rated phase voltage, V (default 220).
    pub rated_voltage_v: Option<f64>,
    /// `not_at_rated` only: the generator's rated frequency, Hz (default 50).
    pub rated_frequency_hz: Option<f64>,
}

/// A secret: never inline; read from a file or an environment variable.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RawSecret {
    /// `{ file = "/etc/dc-gateway/mqtt.pass" }`: the file's content, trailing newline removed.
    File {
        /// Path of the file holding the secret.
        file: PathBuf,
    },
    /// `{ env = "DCGW_MQTT_PASSWORD" }`
    Env {
        /// Name of the environment variable holding the secret.
        env: String,
    },
    /// An inline string: rejected by validation with an explanation.
    Inline(String),
}

/// `[storage]`: the durable buffer in front of every sink, and the journal.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// Directory for durable state (default `/var/lib/dc-gateway`); relative paths are
    /// taken from the config file's directory.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Readings are committed to disk at least this often (default 1000 ms); alarm
    /// events are committed at once. A power cut loses at most this window of readings.
    #[serde(default)]
    pub commit_interval_ms: Option<Spanned<u64>>,
    /// Disk budget per sink queue in bytes, by sink name (default by kind: 1 GiB for
    /// InfluxDB, 64 MiB for MQTT). When full, the oldest readings are dropped first.
    #[serde(default)]
    pub max_size_bytes: BTreeMap<String, Spanned<u64>>,
    /// The journal's budget in bytes (default 256 MiB). Past it the journal keeps every
    /// entry; the gateway raises `journal_high` at 80 % and `journal_full` when full.
    #[serde(default)]
    pub journal_max_size_bytes: Option<Spanned<u64>>,
    /// Days the journal keeps its entries (default and minimum 400).
    #[serde(default)]
    pub journal_retention_days: Option<Spanned<u32>>,
}
