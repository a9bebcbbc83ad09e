//! Configuration: raw TOML ([`raw`]) validated into runtime objects ([`Site`]).
//!
//! Parsing and validation are two steps, as in ripgrep's flags: serde reads the file
//! into `Raw*` structs (a TOML syntax error stops there, reported with file:line:column),
//! then [`validate`] checks everything it can and reports **every** problem it finds,
//! each with file:line:column and the key path (`devices[3] (ups1) .profile`). What
//! comes out is a [`Site`] that cannot be wrong: ids unique, rooms and profiles exist,
//! secrets resolved, rule overrides applied in the documented order
//! (kind default < site < room < device).

pub mod files;
pub mod history;
pub mod profiles;
pub mod raw;
pub mod span;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use crate::model::{DeviceMeta, Kind, Language};
use crate::rules::{self, RuleSpec};
use crate::sinks::SinkEntry;
pub use crate::sinks::influx::{InfluxApi, InfluxConfig};
pub use crate::sinks::mqtt::MqttConfig;
pub use crate::sources::modbus::BusConfig;
pub use crate::sources::{Connection, DeviceProfile, SourcesConfig};
use crate::sources::{RawConnection, Validator};
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
    /// This gateway's name (config `gateway`, default the host name).
    pub gateway: Arc<str>,
    /// The site's time zone.
    pub time: crate::texts::time::SiteTime,
    /// Rooms in file order.
    pub rooms: Vec<Room>,
    /// Devices in file order.
    pub devices: Vec<DeviceConfig>,
    /// Site-level settings of the sources (RS-485 buses, the SNMP trap receiver).
    pub sources: SourcesConfig,
    /// Web listen address.
    pub web_listen: SocketAddr,
    /// `[web]` settings beyond the address: TLS, sessions, connection caps.
    pub web: WebConfig,
    /// Where readings and alarm events go, in config order.
    pub sinks: Vec<SinkEntry>,
    /// Durable state: the sink buffers.
    pub storage: StorageConfig,
    /// How long alarms may be shelved.
    pub shelve: ShelvePolicy,
    /// Planned maintenance windows.
    pub maintenance: Vec<crate::rules::maintenance::Planned>,
    /// Sirens and beacons.
    pub outputs: Vec<crate::outputs::OutputConfig>,
    /// `[clock]`: the NTP check of the gateway's clock; `None` without the table (the
    /// clock is then not checked).
    pub clock: Option<crate::selfwatch::ClockConfig>,
    /// `[incidents]`: when serious alarms become incidents, reminders (src/incidents/).
    pub incidents: crate::incidents::IncidentConfig,
    /// `[generator_runs]`: test windows, pass/fail criteria, nameplates.
    pub generator_runs: crate::generator_runs::RunsConfig,
    /// `[history]`: budget and retention of the on-board history (src/history/).
    pub history: crate::history::Options,
    /// `[paging]`: people, roster, escalation (src/paging/); `None` without the table
    /// (nobody is paged).
    pub paging: Option<std::sync::Arc<crate::paging::PagingConfig>>,
    /// `[standby]`: this gateway's part in a standby pair; `None`: a gateway alone
    /// (src/runtime/standby.rs).
    pub standby: Option<crate::runtime::standby::StandbyConfig>,
    /// SHA-256 of the site file's text (hex), journaled with every load.
    pub config_sha256: String,
    /// Where the site file was read from.
    pub config_origin: String,
    /// The site file's text as loaded (kept as a config version, src/config/history.rs).
    pub config_text: std::sync::Arc<str>,
    /// What was read but should be written differently (an old form): each with its
    /// place and the form to use. `check-config` prints them; `run` logs them.
    pub warnings: Vec<Problem>,
}

impl Site {
    /// The MQTT settings of the first sink of kind `mqtt`, if any.
    pub fn mqtt(&self) -> Option<&MqttConfig> {
        self.sinks.iter().find_map(|s| match &s.config {
            crate::sinks::SinkConfig::Mqtt(c) => Some(c),
            _ => None,
        })
    }
}

/// `[alarms]`, validated: how long a shelve lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShelvePolicy {
    /// A shelve without `minutes`.
    pub default: Duration,
    /// The longest one.
    pub max: Duration,
}

impl Default for ShelvePolicy {
    fn default() -> Self {
        ShelvePolicy {
            default: Duration::from_secs(60 * 60),
            max: Duration::from_secs(8 * 60 * 60),
        }
    }
}

fn validate_alarms(r: &mut Report<'_>, raw: &raw::RawAlarms) -> ShelvePolicy {
    let mut p = ShelvePolicy::default();
    let minutes = |v: &Spanned<u32>| Duration::from_secs(u64::from(*v.get_ref()) * 60);
    if let Some(m) = &raw.shelve_max_minutes {
        if (1..=10_080).contains(m.get_ref()) {
            p.max = minutes(m);
        } else {
            r.at(
                m.span(),
                "alarms.shelve_max_minutes",
                format!("{} is out of range: use 1 to 10080 (a week)", m.get_ref()),
            );
        }
    }
    if let Some(m) = &raw.shelve_default_minutes {
        if *m.get_ref() >= 1 && minutes(m) <= p.max {
            p.default = minutes(m);
        } else {
            r.at(
                m.span(),
                "alarms.shelve_default_minutes",
                format!(
                    "{} is out of range: use 1 up to shelve_max_minutes ({})",
                    m.get_ref(),
                    p.max.as_secs() / 60
                ),
            );
        }
    }
    if p.default > p.max {
        p.default = p.max;
    }
    p
}

/// Default directory for durable state.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/dc-gateway";
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
    /// Disk budget per sink queue, by sink name, where the site file sets one (the
    /// sink kind's default otherwise).
    pub max_size_bytes: BTreeMap<String, u64>,
    /// The journal's budget and retention (`journal_max_size_bytes`,
    /// `journal_retention_days`).
    pub journal: crate::journal::Options,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            commit_interval: Duration::from_millis(DEFAULT_COMMIT_INTERVAL_MS),
            max_size_bytes: BTreeMap::new(),
            journal: crate::journal::Options::default(),
        }
    }
}

impl StorageConfig {
    /// The disk budget of sink `name`'s queue (`default`: its kind's).
    pub fn max_bytes(&self, name: &str, default: u64) -> u64 {
        self.max_size_bytes.get(name).copied().unwrap_or(default)
    }
}

fn validate_storage(
    r: &mut Report<'_>,
    raw: &raw::RawStorage,
    base: &Path,
    sinks: &[SinkEntry],
) -> StorageConfig {
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
        if !sinks.iter().any(|s| &*s.name == name) {
            let known: Vec<&str> = sinks.iter().map(|s| &*s.name).collect();
            let hint = if known.is_empty() {
                "no sink is configured".to_string()
            } else {
                format!("configured sinks are {}", known.join(", "))
            };
            r.at(
                v.span(),
                format!("storage.max_size_bytes.{name}"),
                format!("unknown sink {name:?}: {hint}"),
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
    if let Some(v) = &raw.journal_max_size_bytes {
        if *v.get_ref() < MIN_MAX_BYTES {
            r.at(
                v.span(),
                "storage.journal_max_size_bytes",
                format!(
                    "{} bytes is too small: use at least {MIN_MAX_BYTES}",
                    v.get_ref()
                ),
            );
        } else {
            st.journal.max_bytes = *v.get_ref();
        }
    }
    if let Some(v) = &raw.journal_retention_days {
        let days = *v.get_ref();
        if days < crate::journal::MIN_RETENTION_DAYS {
            r.at(
                v.span(),
                "storage.journal_retention_days",
                format!(
                    "{days} days is too short: the journal keeps at least {} days",
                    crate::journal::MIN_RETENTION_DAYS
                ),
            );
        } else {
            st.journal.retention_days = days;
        }
    }
    st
}

/// Default poll period.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 5_000;
/// Default request timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// `[web]` settings beyond the listen address (docs/ACCOUNTS.md).
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// PEM certificate (chain) for HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key_file: Option<PathBuf>,
    /// Seconds without a request that end a session.
    pub session_idle_s: u64,
    /// Seconds after the login that end a session.
    pub session_max_s: u64,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client address at most.
    pub max_connections_per_address: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            tls_cert_file: None,
            tls_key_file: None,
            session_idle_s: 1800,
            session_max_s: 43_200,
            max_connections: 256,
            max_connections_per_address: 32,
        }
    }
}

/// Default web listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Read and validate a site file.
pub fn load(path: &Path) -> Result<Site, ConfigErrors> {
    let origin = path.display().to_string();
    let fail = |line: usize, column: usize, message: String| {
        ConfigErrors(vec![Problem {
            file: origin.clone(),
            line,
            column,
            context: String::new(),
            message,
        }])
    };
    // A site file is a few hundred lines; a huge one is a mistake, refused before it
    // is read into memory.
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(fail(0, 0, "not a regular file".into()));
        }
        Ok(m) if m.len() > MAX_CONFIG_BYTES => {
            return Err(fail(
                0,
                0,
                format!(
                    "the file is {} bytes; a site file may be at most {MAX_CONFIG_BYTES} bytes",
                    m.len()
                ),
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(fail(0, 0, format!("cannot read the config file: {e}"))),
    }
    let bytes =
        std::fs::read(path).map_err(|e| fail(0, 0, format!("cannot read the config file: {e}")))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let line = valid.matches('\n').count() + 1;
            let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Err(fail(
                line,
                column,
                "not UTF-8 text: save the file as UTF-8 (Vietnamese names need it)".into(),
            ));
        }
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &origin, &base)
}

/// Largest site file accepted: 1 MiB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// When set (`check-config --offline`, on a laptop without the site's secrets), secret
/// files and variables are not read: each is reported as not checked and taken as
/// [`OFFLINE_SECRET`]. Never set while running.
static OFFLINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What a secret reads as under `--offline`: long enough for every length rule (SNMPv3
/// pass phrases need 8 characters), so only the secret's form is judged.
pub const OFFLINE_SECRET: &str = "(not checked: --offline)";

/// Check configs without the site's secrets (`check-config --offline`).
pub fn set_offline(on: bool) {
    OFFLINE.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Parse and validate a site file's text. `origin` names it in messages; relative
/// paths in it (profiles_dir, secret files) are taken from `base`.
///
/// The document is read once into a spanned tree; the sections a source, a sink or the
/// self-watch owns (a device's connection table, `[[buses]]`, `[snmp_traps]`,
/// `[[sinks]]`, `[clock]`) are taken out of it and handed to their folder, so positions stay exact everywhere and this
/// file names no protocol and no sink.
pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Site, ConfigErrors> {
    let mut r = Report {
        text,
        origin,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let root = DeTable::parse(text).map_err(|e| {
        let (line, column, message) = span::toml_error_at(text, &e);
        ConfigErrors(vec![Problem {
            file: origin.to_string(),
            line,
            column,
            context: String::new(),
            message,
        }])
    })?;
    let root_span = root.span();
    let mut root = root.into_inner();
    let devices = root.remove("devices");
    let sinks = root.remove("sinks");
    let clock = crate::selfwatch::config::validate(&mut r, root.remove("clock"));
    let generator_runs =
        crate::generator_runs::config::validate(&mut r, root.remove("generator_runs"));
    let history = crate::history::validate(&mut r, root.remove("history"));
    let paging = crate::paging::config::validate(&mut r, root.remove("paging"), text);
    let incidents =
        crate::incidents::config::validate(&mut r, root.remove("incidents"), paging.as_ref());
    let standby = crate::runtime::standby::validate(&mut r, root.remove("standby"));
    let sources = Validator::new(&mut r, &mut root);
    let Some(raw) = r.parse_value::<RawSite>(Spanned::new(root_span, DeValue::Table(root)), "")
    else {
        return Err(ConfigErrors(r.problems));
    };
    let mut raw_devices = Vec::new();
    if let Some(v) = devices {
        let span = v.span();
        match v.into_inner() {
            DeValue::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    raw_devices.extend(device(&mut r, i, item));
                }
            }
            _ => r.at(span, "devices", "expected [[devices]] entries"),
        }
    }
    validate(r, raw, raw_devices, sources, sinks, base).map(|mut site| {
        site.clock = clock;
        site.incidents = incidents;
        site.generator_runs = generator_runs;
        site.history = history;
        if let Some(p) = &paging {
            // A gap in the roster is a warning naming the hours (the fallback, if
            // set, is paged then).
            let gaps =
                crate::paging::roster::gaps(p, crate::model::Timestamp::now(), &site.time, 7);
            if !gaps.is_empty() {
                let who = p.fallback.map_or(
                    "nobody is paged then (set paging.fallback)".to_string(),
                    |f| format!("the fallback {} is paged then", p.people[f].id),
                );
                site.warnings.push(Problem {
                    file: origin.to_string(),
                    line: p.at.0,
                    column: p.at.1,
                    context: "paging".into(),
                    message: format!(
                        "the roster leaves gaps in the coming 7 days ({who}): {}",
                        gaps.join("; ")
                    ),
                });
            }
        }
        site.paging = paging.map(std::sync::Arc::new);
        site.standby = standby;
        site
    })
}

/// One `[[devices]]` entry: its own keys, and its connection tables (read by the
/// source that owns each).
fn device(
    r: &mut Report<'_>,
    i: usize,
    item: Spanned<DeValue<'_>>,
) -> Option<(RawDevice, Vec<RawConnection>)> {
    let span = item.span();
    let DeValue::Table(mut table) = item.into_inner() else {
        r.at(
            span,
            format!("devices[{i}]"),
            "expected a table: [[devices]]",
        );
        return None;
    };
    let id = table
        .get("id")
        .and_then(|v| v.get_ref().as_str())
        .unwrap_or("?")
        .to_string();
    let mut conns = Vec::new();
    for key in RawConnection::KEYS {
        if let Some(v) = table.remove(*key) {
            match RawConnection::parse(key, v) {
                Ok(c) => conns.push(c),
                Err(e) => r.toml_error(&e, format!("devices[{i}] ({id}) .{key}")),
            }
        }
    }
    let raw = r.parse_value(
        Spanned::new(span, DeValue::Table(table)),
        &format!("devices[{i}] ({id})"),
    )?;
    Some((raw, conns))
}

/// Read `T` from a spanned part of the document; errors carry positions in the file.
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(
    v: Spanned<DeValue<'_>>,
) -> Result<T, toml::de::Error> {
    T::deserialize(toml::de::ValueDeserializer::from(v))
}

/// The problems (and warnings) found so far in one site file.
pub(crate) struct Report<'a> {
    text: &'a str,
    origin: &'a str,
    /// Problems found so far.
    pub problems: Vec<Problem>,
    /// Warnings found so far (old forms): reported, not fatal.
    pub warnings: Vec<Problem>,
}

impl Report<'_> {
    fn problem(&self, span: Range<usize>, context: String, message: String) -> Problem {
        let (line, column) = line_col(self.text, span.start);
        Problem {
            file: self.origin.to_string(),
            line,
            column,
            context,
            message,
        }
    }

    /// A problem at `span` of the file, about `context` (the key path).
    pub fn at(
        &mut self,
        span: Range<usize>,
        context: impl Into<String>,
        message: impl Into<String>,
    ) {
        let p = self.problem(span, context.into(), message.into());
        self.problems.push(p);
    }

    /// A warning at `span`: read, but should be written differently.
    pub fn warn(
        &mut self,
        span: Range<usize>,
        context: impl Into<String>,
        message: impl Into<String>,
    ) {
        let p = self.problem(span, context.into(), message.into());
        self.warnings.push(p);
    }

    /// A serde error from reading a part of the file.
    pub fn toml_error(&mut self, e: &toml::de::Error, context: String) {
        let span = e.span().unwrap_or(0..0);
        self.at(span, context, e.message().trim().to_string());
    }

    /// Read `T` from a part of the document; a problem (and `None`) if it does not fit.
    pub fn parse_value<T: serde::de::DeserializeOwned>(
        &mut self,
        v: Spanned<DeValue<'_>>,
        context: &str,
    ) -> Option<T> {
        match from_value(v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.toml_error(&e, context.to_string());
                None
            }
        }
    }

    /// Read `T` from a part of the document and hand it to `f` if it fits.
    pub fn parse<T: serde::de::DeserializeOwned>(
        &mut self,
        v: Spanned<DeValue<'_>>,
        context: &str,
        f: impl FnOnce(T),
    ) {
        if let Some(t) = self.parse_value(v, context) {
            f(t);
        }
    }
}

/// Where a device is in the file, for messages: `devices[3] (ups1) .key`.
pub(crate) struct DeviceCtx<'a> {
    /// Index in `[[devices]]`.
    pub index: usize,
    /// Its id as written.
    pub id: &'a str,
    /// Where its `timeout_ms` is, if written.
    pub timeout_span: Option<Range<usize>>,
}

impl DeviceCtx<'_> {
    /// The key path of `key` in this device.
    pub fn key(&self, key: &str) -> String {
        format!("devices[{}] ({}) .{key}", self.index, self.id)
    }
}

fn device_ctx(i: usize, d: &RawDevice, key: &str) -> String {
    format!("devices[{i}] ({}) .{key}", d.id.get_ref())
}

/// SHA-256 of `text`, hex.
pub fn sha256_hex(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The host name, made into a valid gateway name (`gateway` when there is none).
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "gateway".into()
    } else {
        name
    }
}

/// Whether `s` can be an id (device, room, bus, sink): letters, digits, `-`, `_`.
pub(crate) fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Validate raw config into a [`Site`], reporting every problem found.
fn validate(
    mut r: Report<'_>,
    raw: RawSite,
    raw_devices: Vec<(RawDevice, Vec<RawConnection>)>,
    mut sources: Validator,
    raw_sinks: Option<Spanned<DeValue<'_>>>,
    base: &Path,
) -> Result<Site, ConfigErrors> {
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

    // Identity and time zone.
    let gateway = match &raw.site.gateway {
        Some(g) if valid_id(g.get_ref()) => g.get_ref().clone(),
        Some(g) => {
            r.at(
                g.span(),
                "site.gateway",
                format!("{:?} is not a valid gateway name: use letters, digits, '-' and '_' (it appears in MQTT topics)", g.get_ref()),
            );
            String::new()
        }
        None => host_name(),
    };
    let time = match &raw.site.time_zone {
        None => crate::texts::time::SiteTime::default(),
        Some(tz) => match crate::texts::time::SiteTime::new(tz.get_ref()) {
            Ok(t) => t,
            Err(e) => {
                r.at(tz.span(), "site.time_zone", e.to_string());
                crate::texts::time::SiteTime::default()
            }
        },
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

    // Devices (the sources' site-level sections were read first).
    let mut devices = Vec::new();
    let mut seen_ids: HashSet<String> = HashSet::new();
    for (i, (d, conns)) in raw_devices.iter().enumerate() {
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
            conns
                .first()
                .and_then(|c| sources.default_timeout_ms(c))
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
        let ctx = DeviceCtx {
            index: i,
            id,
            timeout_span: d.timeout_ms.as_ref().map(|v| v.span()),
        };
        let connection = match conns.as_slice() {
            [] => {
                r.at(
                    d.id.span(),
                    device_ctx(i, d, RawConnection::KEYS[0]),
                    format!(
                        "no connection: add one of the tables {}",
                        RawConnection::KEYS
                            .iter()
                            .map(|k| format!("[devices.{k}]"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                None
            }
            [c] => sources.connection(
                &mut r,
                &ctx,
                c,
                profile.as_ref(),
                Duration::from_millis(timeout_ms),
                base,
            ),
            [first, rest @ ..] => {
                let written: Vec<String> = std::iter::once(first)
                    .chain(rest)
                    .map(|c| format!("[devices.{}]", c.key()))
                    .collect();
                r.at(
                    rest[0].span(),
                    device_ctx(i, d, rest[0].key()),
                    format!("give one connection, not {}", written.join(" and ")),
                );
                None
            }
        };

        // The profile must speak the connection's protocol.
        if let (Some(p), Some(c)) = (&profile, &connection) {
            let wants = c.protocol();
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
                        r.at(o.span(), format!("{ctx}.{}", spec.name), e.to_string());
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

    // Power topology and the site's composite rules (rules/site.rs).
    rules::site::topology(&mut r, raw_devices.iter().map(|(d, _)| d), &mut devices);
    rules::site::composite_rules(
        &mut r,
        raw_devices.iter().map(|(d, _)| d),
        &raw.composite_rules,
        &mut devices,
    );

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

    let mut web = WebConfig::default();
    match (&raw.web.tls_cert_file, &raw.web.tls_key_file) {
        (Some(c), Some(k)) => {
            web.tls_cert_file = Some(c.get_ref().clone());
            web.tls_key_file = Some(k.get_ref().clone());
        }
        (Some(x), None) | (None, Some(x)) => r.at(
            x.span(),
            "web",
            "tls_cert_file and tls_key_file go together: give both or neither".to_string(),
        ),
        (None, None) => {}
    }
    for (v, field, lo, out) in [
        (
            &raw.web.session_idle_s,
            "web.session_idle_s",
            1u64,
            &mut web.session_idle_s,
        ),
        (
            &raw.web.session_max_s,
            "web.session_max_s",
            1,
            &mut web.session_max_s,
        ),
    ] {
        if let Some(v) = v {
            if *v.get_ref() < lo {
                r.at(v.span(), field, "must be at least 1".to_string());
            } else {
                *out = *v.get_ref();
            }
        }
    }
    for (v, field, out) in [
        (
            &raw.web.max_connections,
            "web.max_connections",
            &mut web.max_connections,
        ),
        (
            &raw.web.max_connections_per_address,
            "web.max_connections_per_address",
            &mut web.max_connections_per_address,
        ),
    ] {
        if let Some(v) = v {
            if *v.get_ref() < 4 {
                r.at(v.span(), field, "must be at least 4".to_string());
            } else {
                *out = *v.get_ref();
            }
        }
    }

    // Sinks, then what needs their names (budgets) and the state directory.
    let room_ids: HashSet<String> = room_rules.keys().cloned().collect();
    let known = crate::sinks::registry::Known {
        site: &site_name,
        rooms: &room_ids,
        devices: &seen_ids,
    };
    let sinks = raw_sinks
        .map(|v| crate::sinks::registry::validate(&mut r, v, &known, base))
        .unwrap_or_default();
    let storage = validate_storage(&mut r, &raw.storage, base, &sinks);
    let shelve = validate_alarms(&mut r, &raw.alarms);
    let mut maintenance = Vec::new();
    for (i, m) in raw.maintenance.iter().enumerate() {
        let ctx = |k: &str| format!("maintenance[{i}] .{k}");
        let target = match crate::rules::maintenance::Target::parse(m.target.get_ref()) {
            Ok(crate::rules::maintenance::Target::Device(d)) if !seen_ids.contains(&*d) => {
                r.at(
                    m.target.span(),
                    ctx("target"),
                    format!("unknown device {d:?}"),
                );
                None
            }
            Ok(crate::rules::maintenance::Target::Room(x)) if !room_rules.contains_key(&*x) => {
                r.at(
                    m.target.span(),
                    ctx("target"),
                    format!("unknown room {x:?}"),
                );
                None
            }
            Ok(t) => Some(t),
            Err(e) => {
                r.at(m.target.span(), ctx("target"), e);
                None
            }
        };
        let when = match crate::schedule::Schedule::parse(m.when.get_ref()) {
            Ok(w) if !w.is_empty() => Some(w),
            Ok(_) => {
                r.at(
                    m.when.span(),
                    ctx("when"),
                    "no entry: say when, e.g. [\"Sat 22:00-02:00\"]",
                );
                None
            }
            Err(errs) => {
                for e in errs {
                    r.at(m.when.span(), ctx("when"), e.to_string());
                }
                None
            }
        };
        if let (Some(target), Some(when)) = (target, when) {
            maintenance.push(crate::rules::maintenance::Planned {
                target,
                when,
                reason: m.reason.clone().unwrap_or_default(),
            });
        }
    }
    // Access windows of doors (Art. 7.5), attached to each door's `door_open` rule.
    let kinds: HashMap<&str, Kind> = devices
        .iter()
        .map(|d: &DeviceConfig| (&*d.meta.id, d.meta.kind))
        .collect();
    let mut access = Vec::new();
    for (i, w) in raw.access_windows.iter().enumerate() {
        let device_kind = |id: &str| {
            kinds
                .get(id)
                .copied()
                .or_else(|| seen_ids.contains(id).then_some(Kind::Door))
        };
        match rules::door::validate(w, &device_kind, &|x| room_rules.contains_key(x)) {
            Ok(a) => access.push(a),
            Err(errs) => {
                for (key, e) in errs {
                    let span = match key {
                        "target" => w.target.span(),
                        "except" => w.except.as_ref().map_or(w.when.span(), |x| x.span()),
                        _ => w.when.span(),
                    };
                    r.at(span, format!("access_windows[{i}] .{key}"), e.to_string());
                }
            }
        }
    }
    for d in &mut devices {
        let covering = rules::door::Windows::covering(&access, &d.meta.id, &d.meta.room);
        for spec in &mut d.rules {
            if let rules::Condition::DoorAccess { windows, .. } = &mut spec.condition
                && !covering.is_empty()
            {
                *windows = Some(Arc::new(covering.clone()));
            }
        }
    }
    // Sirens and beacons.
    let input_line = |at: &crate::sources::gpio::LineAt| {
        devices.iter().find_map(|d| match &d.connection {
            Connection::Gpio(g) => g
                .lines
                .iter()
                .find(|(_, l)| l.at == *at)
                .map(|(p, _)| format!("{} ({})", d.meta.id, p.name)),
            _ => None,
        })
    };
    let (outputs, problems) = crate::outputs::config::validate(
        &raw.outputs,
        &crate::outputs::config::Known {
            rooms: &|x| room_rules.contains_key(x),
            rules: &|x| all_rule_names.contains(x),
            input_line: &input_line,
        },
    );
    for (span, ctx, msg) in problems {
        r.at(span, ctx, msg);
    }
    let sources = sources.finish(&mut r, base, &storage.state_dir);

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
        gateway: Arc::from(gateway.as_str()),
        time,
        rooms,
        devices,
        sources,
        web_listen,
        web,
        sinks,
        storage,
        shelve,
        maintenance,
        outputs,
        clock: None,
        incidents: crate::incidents::IncidentConfig::default(),
        generator_runs: crate::generator_runs::RunsConfig::default(),
        history: crate::history::Options::default(),
        paging: None,
        standby: None,
        config_sha256: sha256_hex(r.text),
        config_origin: r.origin.to_string(),
        config_text: std::sync::Arc::from(r.text),
        warnings: r.warnings,
    })
}

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SecretError {
    /// Written in the file itself.
    #[error(
        "secrets must not be written inline: use {{ file = \"/path\" }} or {{ env = \"VARIABLE\" }}"
    )]
    Inline,
    /// The file cannot be read.
    #[error("cannot read secret file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The variable is not set.
    #[error("environment variable {0} is not set")]
    Env(String),
}

/// Read a secret from its file (trailing newline removed) or environment variable;
/// relative paths are taken from `base`.
pub fn read_secret(s: &RawSecret, base: &Path) -> Result<String, SecretError> {
    if OFFLINE.load(std::sync::atomic::Ordering::SeqCst) && !matches!(s, RawSecret::Inline(_)) {
        return Ok(OFFLINE_SECRET.to_string());
    }
    match s {
        RawSecret::Inline(_) => Err(SecretError::Inline),
        RawSecret::File { file } => {
            let path: PathBuf = base.join(file);
            let shown = path.display().to_string();
            // A FIFO would hang the read; a device or directory is a mistake.
            match std::fs::metadata(&path) {
                Ok(m) if !m.is_file() => {
                    return Err(SecretError::File {
                        path: shown,
                        reason: "not a regular file".into(),
                    });
                }
                #[cfg(unix)]
                Ok(m) => {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = m.permissions().mode() & 0o777;
                    if mode & 0o004 != 0 {
                        return Err(SecretError::File {
                            path: shown,
                            reason: format!(
                                "its mode {mode:04o} lets every user read it: chmod 0600 (or 0640 with the service's group)"
                            ),
                        });
                    }
                }
                #[cfg(not(unix))]
                Ok(_) => {}
                Err(e) => {
                    return Err(SecretError::File {
                        path: shown,
                        reason: e.to_string(),
                    });
                }
            }
            std::fs::read_to_string(&path)
                .map(|v| v.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| SecretError::File {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
        }
        RawSecret::Env { env } => std::env::var(env).map_err(|_| SecretError::Env(env.clone())),
    }
}

/// [`read_secret`], reporting a failure at the secret's place in the file.
pub(crate) fn resolve_secret(
    r: &mut Report<'_>,
    s: &Spanned<RawSecret>,
    ctx: &str,
    base: &Path,
) -> Option<String> {
    read_secret(s.get_ref(), base)
        .map_err(|e| r.at(s.span(), ctx, e.to_string()))
        .ok()
}

#[cfg(test)]
mod tests;
