//! Configuration: raw TOML ([`raw`]) validated into runtime objects ([`Site`]).
//!
//! Parsing and validation are two steps, as in ripgrep's flags: serde reads the file
//! into `Raw*` structs (a TOML syntax error stops there, reported with file:line:column),
//! then [`validate`] checks everything it can and reports **every** problem it finds,
//! each with file:line:column and the key path (`devices[3] (ups1) .profile`). What
//! comes out is a [`Site`] that cannot be wrong: ids unique, rooms and profiles exist,
//! secrets resolved, rule overrides applied in the documented order
//! (kind default < site < room < device).

pub mod buses;
pub mod profiles;
pub mod raw;
pub mod sinks;
pub mod span;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_spanned::Spanned;

use crate::model::{DeviceMeta, Kind, Language};
use crate::rules::{self, RuleSpec};
use crate::sources::modbus::profile::Profile;
use crate::sources::snmp::{AgentConnection, SnmpProfile, TrapConfig};
pub use buses::BusConfig;
pub use sinks::{InfluxApi, InfluxConfig, MqttConfig};
pub use span::line_col;

use raw::{RawDevice, RawRuleOverride, RawSecret, RawSite};

/// Default place of the site file.
pub const DEFAULT_PATH: &str = "/etc/dc-gateway/site.toml";

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// File the problem is in.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Key path, naming the device where there is one (`devices[2] (ups1) .profile`).
    pub context: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.column, self.context, self.message
            )
        }
    }
}

/// Every problem found; never empty.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<Problem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A room.
#[derive(Debug, Clone)]
pub struct Room {
    /// Room id.
    pub id: Arc<str>,
    /// Display name.
    pub name: String,
}

/// How to reach a device.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// Modbus TCP (or a Modbus TCP gateway in front of RTU devices).
    ModbusTcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// Unit id.
        unit_id: u8,
    },
    /// Modbus RTU on an RS-485 bus ([`Site::buses`]).
    ModbusRtu {
        /// Bus id.
        bus: Arc<str>,
        /// Unit id on the bus.
        unit_id: u8,
    },
    /// An SNMP agent.
    Snmp(AgentConnection),
}

/// The register map or OID list of a device.
#[derive(Debug, Clone)]
pub enum DeviceProfile {
    /// A Modbus register map.
    Modbus(Arc<Profile>),
    /// An SNMP OID list.
    Snmp(Arc<SnmpProfile>),
}

impl DeviceProfile {
    /// Profile id.
    pub fn id(&self) -> &str {
        match self {
            DeviceProfile::Modbus(p) => &p.id,
            DeviceProfile::Snmp(p) => &p.id,
        }
    }
    /// Device kind the profile is for.
    pub fn kind(&self) -> Kind {
        match self {
            DeviceProfile::Modbus(p) => p.kind,
            DeviceProfile::Snmp(p) => p.kind,
        }
    }
    /// Protocol name, as in the profile file.
    pub fn protocol(&self) -> &'static str {
        match self {
            DeviceProfile::Modbus(_) => "modbus",
            DeviceProfile::Snmp(_) => "snmp",
        }
    }
    /// The canonical points the profile maps, in profile order.
    pub fn points(&self) -> Vec<crate::points::PointId> {
        match self {
            DeviceProfile::Modbus(p) => p.points.iter().map(|m| m.point).collect(),
            DeviceProfile::Snmp(p) => p.points.iter().map(|m| m.point).collect(),
        }
    }
    /// The Modbus map, if this is one.
    pub fn modbus(&self) -> Option<&Arc<Profile>> {
        match self {
            DeviceProfile::Modbus(p) => Some(p),
            DeviceProfile::Snmp(_) => None,
        }
    }
    /// The SNMP OID list, if this is one.
    pub fn snmp(&self) -> Option<&Arc<SnmpProfile>> {
        match self {
            DeviceProfile::Snmp(p) => Some(p),
            DeviceProfile::Modbus(_) => None,
        }
    }
}

/// A validated device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Identity shared by its readings.
    pub meta: Arc<DeviceMeta>,
    /// Rack / position.
    pub location: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Poll period.
    pub poll_interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Connection.
    pub connection: Connection,
    /// Register map.
    pub profile: DeviceProfile,
    /// Alarm rules with every override applied.
    pub rules: Vec<RuleSpec>,
}

/// A validated site: everything the runtime needs.
#[derive(Debug, Clone)]
pub struct Site {
    /// Short site id (topics, tags).
    pub name: Arc<str>,
    /// Display title.
    pub title: String,
    /// Language of alarm texts and the page.
    pub language: Language,
    /// Rooms in file order.
    pub rooms: Vec<Room>,
    /// Devices in file order.
    pub devices: Vec<DeviceConfig>,
    /// RS-485 buses in file order.
    pub buses: Vec<BusConfig>,
    /// Web listen address.
    pub web_listen: SocketAddr,
    /// MQTT sink.
    pub mqtt: Option<MqttConfig>,
    /// InfluxDB sink.
    pub influx: Option<InfluxConfig>,
    /// Durable state: the sink buffers.
    pub storage: StorageConfig,
    /// SNMP trap receiver, if configured.
    pub snmp_traps: Option<TrapConfig>,
}

/// Default directory for durable state.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/dc-gateway";
/// Default disk budget of the InfluxDB queue: 1 GiB (days of readings for a typical
/// room at ~20 bytes per reading).
pub const DEFAULT_INFLUX_MAX_BYTES: u64 = 1 << 30;
/// Default disk budget of the MQTT queue (alarm events only): 64 MiB.
pub const DEFAULT_MQTT_MAX_BYTES: u64 = 64 << 20;
/// Smallest disk budget accepted.
pub const MIN_MAX_BYTES: u64 = 64 << 10;
/// Default commit interval for readings.
pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 1_000;

/// `[storage]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// Directory of the buffer database (`buffer.db`).
    pub state_dir: PathBuf,
    /// Readings are committed at least this often; alarm events at once.
    pub commit_interval: Duration,
    /// Disk budget per sink queue, by sink name (`influx`, `mqtt`).
    pub max_size_bytes: BTreeMap<String, u64>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            commit_interval: Duration::from_millis(DEFAULT_COMMIT_INTERVAL_MS),
            max_size_bytes: BTreeMap::from([
                ("influx".to_string(), DEFAULT_INFLUX_MAX_BYTES),
                ("mqtt".to_string(), DEFAULT_MQTT_MAX_BYTES),
            ]),
        }
    }
}

impl StorageConfig {
    /// The disk budget of sink `name`'s queue.
    pub fn max_bytes(&self, name: &str) -> u64 {
        self.max_size_bytes
            .get(name)
            .copied()
            .unwrap_or(DEFAULT_MQTT_MAX_BYTES)
    }
}

fn validate_storage(r: &mut Report<'_>, raw: &raw::RawStorage, base: &Path) -> StorageConfig {
    let mut st = StorageConfig::default();
    if let Some(d) = &raw.state_dir {
        st.state_dir = base.join(d);
    }
    if let Some(ms) = &raw.commit_interval_ms {
        let v = *ms.get_ref();
        if (10..=60_000).contains(&v) {
            st.commit_interval = Duration::from_millis(v);
        } else {
            r.at(
                ms.span(),
                "storage.commit_interval_ms",
                format!("{v} is out of range: use 10 to 60000 ms"),
            );
        }
    }
    for (name, v) in &raw.max_size_bytes {
        if !st.max_size_bytes.contains_key(name) {
            r.at(
                v.span(),
                format!("storage.max_size_bytes.{name}"),
                format!("unknown sink {name:?}: known sinks are influx, mqtt"),
            );
        } else if *v.get_ref() < MIN_MAX_BYTES {
            r.at(
                v.span(),
                format!("storage.max_size_bytes.{name}"),
                format!(
                    "{} bytes is too small: use at least {MIN_MAX_BYTES}",
                    v.get_ref()
                ),
            );
        } else {
            st.max_size_bytes.insert(name.clone(), *v.get_ref());
        }
    }
    st
}

/// Default poll period.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 5_000;
/// Default request timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Default web listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Read and validate a site file.
pub fn load(path: &Path) -> Result<Site, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![Problem {
            file: origin.clone(),
            line: 0,
            column: 0,
            context: String::new(),
            message: format!("cannot read the config file: {e}"),
        }])
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &origin, &base)
}

/// Parse and validate a site file's text. `origin` names it in messages; relative
/// paths in it (profiles_dir, secret files) are taken from `base`.
pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Site, ConfigErrors> {
    let raw: RawSite = toml::from_str(text).map_err(|e| {
        let (line, column, message) = span::toml_error_at(text, &e);
        ConfigErrors(vec![Problem {
            file: origin.to_string(),
            line,
            column,
            context: String::new(),
            message,
        }])
    })?;
    validate(raw, text, origin, base)
}

struct Report<'a> {
    text: &'a str,
    origin: &'a str,
    problems: Vec<Problem>,
}

impl Report<'_> {
    fn at(&mut self, span: Range<usize>, context: impl Into<String>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.problems.push(Problem {
            file: self.origin.to_string(),
            line,
            column,
            context: context.into(),
            message: message.into(),
        });
    }
}

fn device_ctx(i: usize, d: &RawDevice, key: &str) -> String {
    format!("devices[{i}] ({}) .{key}", d.id.get_ref())
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Validate raw config into a [`Site`], reporting every problem found.
pub fn validate(raw: RawSite, text: &str, origin: &str, base: &Path) -> Result<Site, ConfigErrors> {
    let mut r = Report {
        text,
        origin,
        problems: Vec::new(),
    };

    // Site.
    let site_name = raw.site.name.get_ref().clone();
    if !valid_id(&site_name) || site_name.chars().any(|c| c.is_ascii_uppercase()) {
        r.at(
            raw.site.name.span(),
            "site.name",
            format!("{site_name:?} is not a valid site id: use lowercase letters, digits, '-' and '_' (it appears in MQTT topics and InfluxDB tags)"),
        );
    }
    let language = match raw.site.language.as_ref().map(|l| l.get_ref().as_str()) {
        None | Some("vi") => Language::Vi,
        Some("en") => Language::En,
        Some(other) => {
            let span = raw.site.language.as_ref().map(|l| l.span()).unwrap_or(0..0);
            r.at(
                span,
                "site.language",
                format!("unknown language {other:?}: use \"vi\" or \"en\""),
            );
            Language::Vi
        }
    };

    // Rooms.
    let mut rooms = Vec::new();
    let mut room_rules: HashMap<String, &BTreeMap<String, Spanned<RawRuleOverride>>> =
        HashMap::new();
    for (i, room) in raw.rooms.iter().enumerate() {
        let id = room.id.get_ref();
        if !valid_id(id) {
            r.at(
                room.id.span(),
                format!("rooms[{i}] .id"),
                format!("{id:?} is not a valid room id: use letters, digits, '-' and '_'"),
            );
        } else if room_rules.contains_key(id) {
            r.at(
                room.id.span(),
                format!("rooms[{i}] .id"),
                format!("room {id:?} is defined twice"),
            );
        }
        room_rules.insert(id.clone(), &room.rules);
        rooms.push(Room {
            id: Arc::from(id.as_str()),
            name: room.name.clone().unwrap_or_else(|| id.clone()),
        });
    }

    // Profiles: shipped + site directory.
    let profiles_dir = raw.profiles_dir.as_ref().map(|p| base.join(p));
    let loaded = profiles::load_all(profiles_dir.as_deref());
    r.problems.extend(loaded.problems);
    let (profiles, broken_profiles) = (loaded.profiles, loaded.broken);

    // Rule names known per kind, for checking overrides.
    let known_rules = |kind: Kind| -> Vec<String> {
        rules::defaults(kind)
            .into_iter()
            .map(|s| s.name.to_string())
            .collect()
    };
    let all_rule_names: HashSet<String> = Kind::ALL.iter().flat_map(|k| known_rules(*k)).collect();
    for (name, o) in &raw.rules {
        if !all_rule_names.contains(name) {
            r.at(
                o.span(),
                format!("rules.{name}"),
                format!("unknown rule {name:?}"),
            );
        }
    }
    for (i, room) in raw.rooms.iter().enumerate() {
        for (name, o) in &room.rules {
            if !all_rule_names.contains(name) {
                r.at(
                    o.span(),
                    format!("rooms[{i}] ({}) .rules.{name}", room.id.get_ref()),
                    format!("unknown rule {name:?}"),
                );
            }
        }
    }

    // Buses, then devices.
    let mut buses = buses::validate(&mut r, &raw.buses);
    let mut devices = Vec::new();
    let mut seen_ids: HashSet<String> = HashSet::new();
    for (i, d) in raw.devices.iter().enumerate() {
        let id = d.id.get_ref();
        let before = r.problems.len();
        if !valid_id(id) {
            r.at(d.id.span(), device_ctx(i, d, "id"), format!("{id:?} is not a valid device id: use letters, digits, '-' and '_' (it appears in MQTT topics)"));
        } else if !seen_ids.insert(id.clone()) {
            r.at(
                d.id.span(),
                device_ctx(i, d, "id"),
                format!("device id {id:?} is used twice"),
            );
        }
        if !room_rules.contains_key(d.room.get_ref()) {
            r.at(
                d.room.span(),
                device_ctx(i, d, "room"),
                format!(
                    "unknown room {:?}: add it under [[rooms]]",
                    d.room.get_ref()
                ),
            );
        }
        let kind = Kind::parse(d.kind.get_ref());
        if kind.is_none() {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            r.at(
                d.kind.span(),
                device_ctx(i, d, "kind"),
                format!(
                    "unknown kind {:?}: expected one of {}",
                    d.kind.get_ref(),
                    names.join(", ")
                ),
            );
        }
        let profile = profiles.get(d.profile.get_ref()).cloned();
        match (&profile, kind) {
            // Its file is broken and was reported where it is broken.
            (None, _) if broken_profiles.contains(d.profile.get_ref()) => {}
            (None, _) => {
                let mut ids: Vec<&String> = profiles.keys().collect();
                ids.sort();
                let ids: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
                r.at(
                    d.profile.span(),
                    device_ctx(i, d, "profile"),
                    format!(
                        "unknown profile {:?}: known profiles are {}",
                        d.profile.get_ref(),
                        ids.join(", ")
                    ),
                );
            }
            (Some(p), Some(k)) if p.kind() != k => {
                r.at(
                    d.profile.span(),
                    device_ctx(i, d, "profile"),
                    format!(
                        "profile {:?} is for kind {}, but the device is a {}",
                        p.id(),
                        p.kind(),
                        k
                    ),
                );
            }
            _ => {}
        }
        let poll_ms = d
            .poll_interval_ms
            .as_ref()
            .map(|v| *v.get_ref())
            .unwrap_or(DEFAULT_POLL_INTERVAL_MS);
        if !(100..=3_600_000).contains(&poll_ms) {
            let span = d
                .poll_interval_ms
                .as_ref()
                .map(|v| v.span())
                .unwrap_or(d.id.span());
            r.at(
                span,
                device_ctx(i, d, "poll_interval_ms"),
                format!("{poll_ms} is out of range: use 100 to 3600000 ms"),
            );
        }
        let timeout_ms = d.timeout_ms.as_ref().map(|v| *v.get_ref()).unwrap_or(
            buses
                .timeout_ms(d)
                .unwrap_or(DEFAULT_TIMEOUT_MS)
                .min(poll_ms),
        );
        // A timeout only derived from a bad poll interval is not a second problem.
        if d.timeout_ms.is_some() && (timeout_ms < 10 || timeout_ms > poll_ms) {
            let span = d
                .timeout_ms
                .as_ref()
                .map(|v| v.span())
                .unwrap_or(d.id.span());
            r.at(
                span,
                device_ctx(i, d, "timeout_ms"),
                format!(
                    "{timeout_ms} is out of range: use 10 ms up to the poll interval ({poll_ms} ms)"
                ),
            );
        }
        let modbus_profile = profile
            .as_ref()
            .and_then(|p| p.modbus())
            .map(|p| p.as_ref());
        let connection = if let Some(m) = &d.snmp {
            if d.modbus_tcp.is_some() || d.modbus_rtu.is_some() {
                r.at(
                    m.span(),
                    device_ctx(i, d, "snmp"),
                    "give one connection: [devices.snmp], [devices.modbus_tcp] or [devices.modbus_rtu]",
                );
                None
            } else {
                match crate::sources::snmp::validate_agent(m.get_ref(), m.span(), base) {
                    Ok(a) => Some(Connection::Snmp(a)),
                    Err(problems) => {
                        for p in problems {
                            let span = if p.span.is_empty() { m.span() } else { p.span };
                            r.at(
                                span,
                                device_ctx(i, d, &format!("snmp.{}", p.key)),
                                p.message,
                            );
                        }
                        None
                    }
                }
            }
        } else {
            match (&d.modbus_tcp, &d.modbus_rtu) {
                (Some(_), Some(m)) => {
                    r.at(
                        m.span(),
                        device_ctx(i, d, "modbus_rtu"),
                        "give either [devices.modbus_tcp] or [devices.modbus_rtu], not both",
                    );
                    None
                }
                (None, Some(m)) => buses::connection(
                    &mut r,
                    &mut buses,
                    i,
                    d,
                    m,
                    modbus_profile,
                    Duration::from_millis(timeout_ms),
                ),
                (Some(m), None) => {
                    let c = m.get_ref();
                    if c.host.get_ref().trim().is_empty() {
                        r.at(
                            c.host.span(),
                            device_ctx(i, d, "modbus_tcp.host"),
                            "host is empty",
                        );
                    }
                    let unit_id = *c.unit_id.get_ref();
                    if !(1..=247).contains(&unit_id) && unit_id != 255 {
                        let span = if c.unit_id.span().is_empty() {
                            m.span()
                        } else {
                            c.unit_id.span()
                        };
                        r.at(span, device_ctx(i, d, "modbus_tcp.unit_id"), format!("unit id {unit_id} is out of range: use 1 to 247 (or 255 for a TCP device)"));
                    }
                    Some(Connection::ModbusTcp {
                        host: c.host.get_ref().clone(),
                        port: c.port,
                        unit_id,
                    })
                }
                (None, None) => {
                    r.at(
                    d.id.span(),
                    device_ctx(i, d, "modbus_tcp"),
                    "no connection: add a [devices.modbus_tcp], [devices.modbus_rtu] or [devices.snmp] table",
                );
                    None
                }
            }
        };

        // The profile must speak the connection's protocol.
        if let (Some(p), Some(c)) = (&profile, &connection) {
            let wants = match c {
                Connection::Snmp(_) => "snmp",
                Connection::ModbusTcp { .. } | Connection::ModbusRtu { .. } => "modbus",
            };
            if p.protocol() != wants {
                r.at(
                    d.profile.span(),
                    device_ctx(i, d, "profile"),
                    format!(
                        "profile {:?} is a {} profile, but the device has a {} connection",
                        p.id(),
                        p.protocol(),
                        wants
                    ),
                );
            }
        }

        // Rules: kind default < site < room < device.
        let mut specs = kind.map(rules::defaults).unwrap_or_default();
        if let Some(k) = kind {
            let names = known_rules(k);
            for (name, o) in &d.rules {
                if !names.contains(name) {
                    r.at(
                        o.span(),
                        device_ctx(i, d, &format!("rules.{name}")),
                        format!(
                            "unknown rule {name:?} for kind {k}: known rules are {}",
                            names.join(", ")
                        ),
                    );
                }
            }
            let mut layers: Vec<(&BTreeMap<String, Spanned<RawRuleOverride>>, String)> =
                vec![(&raw.rules, "rules".to_string())];
            if let Some(room) = room_rules.get(d.room.get_ref()) {
                layers.push((room, format!("rooms ({}) .rules", d.room.get_ref())));
            }
            layers.push((&d.rules, format!("devices[{i}] ({id}) .rules")));
            for (layer, ctx) in &layers {
                for spec in specs.iter_mut() {
                    if let Some(o) = layer.get(spec.name.as_ref())
                        && let Err(e) = rules::apply_override(spec, o.get_ref())
                    {
                        r.at(o.span(), format!("{ctx}.{}", spec.name), e);
                    }
                }
            }
        }

        if r.problems.len() == before
            && let (Some(kind), Some(profile), Some(connection)) = (kind, profile, connection)
        {
            devices.push(DeviceConfig {
                meta: Arc::new(DeviceMeta {
                    id: Arc::from(id.as_str()),
                    name: d.name.clone().unwrap_or_else(|| id.clone()),
                    label: d.label.clone(),
                    room: Arc::from(d.room.get_ref().as_str()),
                    kind,
                }),
                location: d.location.clone(),
                model: d.model.clone(),
                serial: d.serial.clone(),
                poll_interval: Duration::from_millis(poll_ms),
                timeout: Duration::from_millis(timeout_ms),
                connection,
                profile,
                rules: specs,
            });
        }
    }

    // Web.
    let web_listen = match &raw.web.listen {
        None => default_listen(),
        Some(l) => match l.get_ref().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                r.at(
                    l.span(),
                    "web.listen",
                    format!(
                        "{:?} is not an address:port (e.g. \"127.0.0.1:8080\")",
                        l.get_ref()
                    ),
                );
                default_listen()
            }
        },
    };

    // Sinks.
    let mqtt = raw.sinks.mqtt.as_ref().and_then(|m| {
        let c = m.get_ref();
        let mut cfg = match MqttConfig::from_url(c.url.get_ref(), &site_name) {
            Ok(cfg) => cfg,
            Err(e) => {
                r.at(c.url.span(), "sinks.mqtt.url", e);
                return None;
            }
        };
        if cfg.password.is_some() {
            r.at(c.url.span(), "sinks.mqtt.url", "the URL holds a password: secrets must not be written inline; use password = { file = \"...\" } or { env = \"...\" }");
        }
        if let Some(u) = &c.username {
            cfg.username = Some(u.clone());
        }
        if let Some(p) = &c.password {
            cfg.password = resolve_secret(&mut r, p, "sinks.mqtt.password", base);
        }
        if let Some(ca) = &c.ca_file {
            cfg.ca_file = Some(base.join(ca));
        }
        if let Some(id) = &c.client_id {
            cfg.client_id = id.clone();
        }
        if let Some(p) = &c.prefix {
            cfg.prefix = p.trim_end_matches('/').to_string();
        }
        if let Some(k) = c.keep_alive_s {
            cfg.keep_alive = Duration::from_secs(k.max(1));
        }
        if let Some(t) = c.ack_timeout_ms {
            cfg.ack_timeout = Duration::from_millis(t.max(100));
        }
        if let Some(q) = c.max_queued {
            cfg.max_queued = q.max(1);
        }
        Some(cfg)
    });
    let influx = raw.sinks.influx.as_ref().and_then(|m| {
        let c = m.get_ref();
        let mut cfg = match InfluxConfig::from_url(c.url.get_ref(), None) {
            Ok(cfg) => cfg,
            Err(e) => {
                r.at(c.url.span(), "sinks.influx.url", e);
                return None;
            }
        };
        match &mut cfg.api {
            InfluxApi::V2 { token, .. } => {
                *token = match &c.token {
                    Some(t) => resolve_secret(&mut r, t, "sinks.influx.token", base),
                    None => std::env::var("DCGW_INFLUX_TOKEN").ok(),
                };
            }
            InfluxApi::V1 { username, password, .. } => {
                if password.is_some() {
                    r.at(c.url.span(), "sinks.influx.url", "the URL holds a password: secrets must not be written inline; use password = { file = \"...\" } or { env = \"...\" }");
                }
                if let Some(u) = &c.username {
                    *username = Some(u.clone());
                }
                if let Some(p) = &c.password {
                    *password = resolve_secret(&mut r, p, "sinks.influx.password", base);
                }
            }
        }
        if let Some(b) = c.batch_max {
            cfg.batch_max = b.max(1);
        }
        if let Some(f) = c.flush_interval_ms {
            cfg.flush_interval = Duration::from_millis(f.max(10));
        }
        if let Some(g) = c.gzip {
            cfg.gzip = g;
        }
        if let Some(t) = c.timeout_ms {
            cfg.timeout = Duration::from_millis(t.max(100));
        }
        if let Some(q) = c.max_queued {
            cfg.max_queued = q.max(1);
        }
        Some(cfg)
    });

    let storage = validate_storage(&mut r, &raw.storage, base);
    let snmp_traps =
        raw.snmp_traps.as_ref().and_then(|t| {
            match crate::sources::snmp::validate_traps(t.get_ref(), base, Some(&storage.state_dir))
            {
                Ok(c) => Some(c),
                Err(problems) => {
                    for p in problems {
                        let span = if p.span.is_empty() { t.span() } else { p.span };
                        r.at(span, format!("snmp_traps.{}", p.key), p.message);
                    }
                    None
                }
            }
        });

    if !r.problems.is_empty() {
        // A room-level override error shows once, not once per device in the room.
        let mut seen = HashSet::new();
        r.problems.retain(|p| seen.insert(p.to_string()));
        return Err(ConfigErrors(r.problems));
    }
    Ok(Site {
        name: Arc::from(site_name.as_str()),
        title: raw.site.title.clone().unwrap_or_else(|| site_name.clone()),
        language,
        rooms,
        devices,
        buses: buses.list,
        web_listen,
        mqtt,
        influx,
        storage,
        snmp_traps,
    })
}

fn resolve_secret(
    r: &mut Report<'_>,
    s: &Spanned<RawSecret>,
    ctx: &str,
    base: &Path,
) -> Option<String> {
    match s.get_ref() {
        RawSecret::Inline(_) => {
            r.at(s.span(), ctx, "secrets must not be written inline: use { file = \"/path\" } or { env = \"VARIABLE\" }");
            None
        }
        RawSecret::File { file } => {
            let path: PathBuf = base.join(file);
            match std::fs::read_to_string(&path) {
                Ok(v) => Some(v.trim_end_matches(['\r', '\n']).to_string()),
                Err(e) => {
                    r.at(
                        s.span(),
                        ctx,
                        format!("cannot read secret file {}: {e}", path.display()),
                    );
                    None
                }
            }
        }
        RawSecret::Env { env } => match std::env::var(env) {
            Ok(v) => Some(v),
            Err(_) => {
                r.at(
                    s.span(),
                    ctx,
                    format!("environment variable {env} is not set"),
                );
                None
            }
        },
    }
}

#[cfg(test)]
mod tests;
