//! Raw config as written in TOML: serde structs, nothing validated yet.
//!
//! Fields that validation may complain about are `Spanned`, so a semantic error can
//! name the file, line and column as well as the device and key path.

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
    /// RS-485 buses (serial ports shared by Modbus RTU devices).
    #[serde(default)]
    pub buses: Vec<RawBus>,
    /// Devices to poll.
    #[serde(default)]
    pub devices: Vec<RawDevice>,
    /// Where readings and alarms go.
    #[serde(default)]
    pub sinks: RawSinks,
    /// Site-wide alarm rule overrides, by rule name.
    #[serde(default)]
    pub rules: BTreeMap<String, Spanned<RawRuleOverride>>,
    /// Extra profile files (`*.toml`) that add to or override the shipped ones.
    #[serde(default)]
    pub profiles_dir: Option<PathBuf>,
    /// Durable state: where it lives and how much disk each sink's queue may use.
    #[serde(default)]
    pub storage: RawStorage,
    /// SNMP trap receiver.
    #[serde(default)]
    pub snmp_traps: Option<Spanned<crate::sources::snmp::RawSnmpTraps>>,
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
    /// Modbus TCP connection.
    #[serde(default)]
    pub modbus_tcp: Option<Spanned<RawModbusTcp>>,
    /// Modbus RTU on one of the `[[buses]]`.
    #[serde(default)]
    pub modbus_rtu: Option<Spanned<RawModbusRtu>>,
    /// SNMP agent (v1, v2c or v3).
    #[serde(default)]
    pub snmp: Option<Spanned<crate::sources::snmp::RawSnmp>>,
    /// Rule overrides for this device (each rule belongs to one point, so this is
    /// also the per-point level).
    #[serde(default)]
    pub rules: BTreeMap<String, Spanned<RawRuleOverride>>,
}

/// `[devices.modbus_tcp]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModbusTcp {
    /// Host name or address.
    pub host: Spanned<String>,
    /// TCP port (502).
    #[serde(default = "default_modbus_port")]
    pub port: u16,
    /// Modbus unit id (slave address) behind the endpoint.
    #[serde(default = "default_unit_id")]
    pub unit_id: Spanned<u8>,
}

/// `[devices.modbus_rtu]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModbusRtu {
    /// Bus id; must be one of `[[buses]]`.
    pub bus: Spanned<String>,
    /// Modbus unit id (slave address) on the bus, 1 to 247, unique on the bus.
    pub unit_id: Spanned<u8>,
}

/// `[[buses]]`: an RS-485 bus, a serial port shared by Modbus RTU devices.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBus {
    /// Bus id (`bus1`), named by `[devices.modbus_rtu] bus`.
    pub id: Spanned<String>,
    /// Serial port. Use `/dev/serial/by-id/...`: it names the adapter, so it survives
    /// replugging and re-enumeration (ttyUSB0 becoming ttyUSB1).
    pub port: Spanned<String>,
    /// Baud rate (19200).
    #[serde(default)]
    pub baud: Option<Spanned<u32>>,
    /// `none`, `even` (the Modbus default) or `odd`.
    #[serde(default)]
    pub parity: Option<Spanned<String>>,
    /// Data bits, 7 or 8 (8; Modbus RTU uses 8).
    #[serde(default)]
    pub data_bits: Option<Spanned<u8>>,
    /// Stop bits, 1 or 2 (1).
    #[serde(default)]
    pub stop_bits: Option<Spanned<u8>>,
    /// Silence before each request, in microseconds (3.5 character times at the
    /// settings above; 1750 µs above 19200 baud).
    #[serde(default)]
    pub frame_gap_us: Option<Spanned<u64>>,
    /// Per-request timeout of the bus's devices unless a device sets its own
    /// `timeout_ms` (1000, or the device's poll interval if shorter).
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
}

const fn default_modbus_port() -> u16 {
    502
}
fn default_unit_id() -> Spanned<u8> {
    Spanned::new(0..0, 1)
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
    /// How long the condition must hold before raising.
    pub on_delay_s: Option<f64>,
}

/// `[sinks]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSinks {
    /// MQTT broker.
    #[serde(default)]
    pub mqtt: Option<Spanned<RawMqtt>>,
    /// InfluxDB (v2 API or 1.x).
    #[serde(default)]
    pub influx: Option<Spanned<RawInflux>>,
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

/// `[sinks.mqtt]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// `mqtt://host:1883` or `mqtts://host:8883`.
    pub url: Spanned<String>,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (from file or env).
    #[serde(default)]
    pub password: Option<Spanned<RawSecret>>,
    /// CA certificate (PEM) to verify the broker; system roots when unset.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client id; `dcgw-<site>` by default.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Topic prefix; `dcgw/<site>` by default.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Keep-alive in seconds (10).
    #[serde(default)]
    pub keep_alive_s: Option<u64>,
    /// How long a batch with alarm events waits for every PUBACK before it is
    /// retried (10000 ms).
    #[serde(default)]
    pub ack_timeout_ms: Option<u64>,
    /// Queue limit in records.
    #[serde(default)]
    pub max_queued: Option<usize>,
}

/// `[sinks.influx]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInflux {
    /// v2: `http://host:8086?org=O&bucket=B`; 1.x: `http://host:8086?db=D`.
    pub url: Spanned<String>,
    /// v2 API token (from file or env; `DCGW_INFLUX_TOKEN` by default).
    #[serde(default)]
    pub token: Option<Spanned<RawSecret>>,
    /// 1.x user name.
    #[serde(default)]
    pub username: Option<String>,
    /// 1.x password (from file or env).
    #[serde(default)]
    pub password: Option<Spanned<RawSecret>>,
    /// Largest batch in records (polls or alarm events) per write (default 500).
    #[serde(default)]
    pub batch_max: Option<usize>,
    /// How long to wait to fill a batch (default 1000 ms).
    #[serde(default)]
    pub flush_interval_ms: Option<u64>,
    /// Gzip request bodies (default true).
    #[serde(default)]
    pub gzip: Option<bool>,
    /// HTTP request timeout (default 10000 ms).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Queue limit in records.
    #[serde(default)]
    pub max_queued: Option<usize>,
}

/// `[storage]`: the durable buffer in front of every sink (and, later, the journal).
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
    /// Disk budget per sink queue in bytes, by sink name: `influx` (default 1 GiB),
    /// `mqtt` (default 64 MiB). When full, the oldest readings are dropped first.
    #[serde(default)]
    pub max_size_bytes: BTreeMap<String, Spanned<u64>>,
}
