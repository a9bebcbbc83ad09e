//! The registry of sink kinds: `[[sinks]]` entries read and validated into
//! [`SinkEntry`]s, and each started behind its own durable queue.
//!
//! A `[[sinks]]` entry has the keys every sink shares — `name` (unique; it also names
//! the sink's queue on disk and its budget in `[storage.max_size_bytes]`), `kind`,
//! `accepts` and the filters `level`, `rooms`, `device_kinds`, `devices` — and the
//! keys of its kind, which its own folder reads (`sinks/mqtt/config.rs`, ...).
//!
//! The form of the first release (`[sinks.mqtt]`, `[sinks.influx]`: one sink of each
//! kind, named after the kind) is still read, with a warning that shows the new form.
//! Queues on disk under those names are carried over to the new names at start
//! ([`legacy_queue_renames`]).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::influx::{InfluxConfig, InfluxSink};
use super::mqtt::{MqttConfig, MqttHandle, MqttSink};
use super::sms::{SmsConfig, SmsSink};
use super::syslog::{SyslogConfig, SyslogSink};
use super::worker::{self, QueueConfig, SinkQueue};
use super::{Accept, Route};
use crate::buffer::Buffer;
use crate::config::{Report, StorageConfig, valid_id};
use crate::model::{Kind, Level};

/// A validated sink of one kind.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// An MQTT broker.
    Mqtt(MqttConfig),
    /// InfluxDB (v2 API or 1.x).
    Influx(InfluxConfig),
    /// An LTE/GSM modem sending SMS texts and ringing phones.
    Sms(SmsConfig),
    /// A syslog server (the SOC): RELP, UDP, TCP or TLS.
    Syslog(SyslogConfig),
}

/// The kinds, by their name in `kind = "..."`.
const KINDS: &[&str] = &["mqtt", "influx", "syslog", "sms"];

/// The kinds of the first release, the only ones its `[sinks.<kind>]` form and its
/// queue names know.
const LEGACY_KINDS: &[&str] = &["mqtt", "influx"];

impl SinkConfig {
    /// The kind's name in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Mqtt(_) => "mqtt",
            SinkConfig::Influx(_) => "influx",
            SinkConfig::Sms(_) => "sms",
            SinkConfig::Syslog(_) => "syslog",
        }
    }

    /// What a sink of this kind takes when its entry does not say.
    fn default_accepts(kind: &str) -> &'static [Accept] {
        match kind {
            "mqtt" => &[Accept::Readings, Accept::Alarms, Accept::Notifications],
            "sms" => &[Accept::Notifications],
            "syslog" => &[Accept::Alarms],
            _ => &[Accept::Readings, Accept::Alarms],
        }
    }

    /// What a sink of this kind can take at all.
    fn can_accept(kind: &str) -> &'static [Accept] {
        match kind {
            "mqtt" => &Accept::ALL,
            "sms" => &[Accept::Notifications],
            "syslog" => &[Accept::Alarms, Accept::Audit],
            _ => &[Accept::Readings, Accept::Alarms],
        }
    }

    /// Disk budget of its queue unless `[storage.max_size_bytes]` names it: InfluxDB
    /// keeps history while it is away (1 GiB, days of readings of a room); MQTT readings
    /// are current state and not queued, so its queue holds alarm events (64 MiB), as
    /// does syslog's.
    pub fn default_max_bytes(&self) -> u64 {
        match self {
            SinkConfig::Mqtt(_) | SinkConfig::Syslog(_) => 64 << 20,
            SinkConfig::Influx(_) => 1 << 30,
            // Texts to people: a few hundred bytes each.
            SinkConfig::Sms(_) => 16 << 20,
        }
    }

    fn validate(
        r: &mut Report<'_>,
        kind: &str,
        rest: Spanned<DeValue<'_>>,
        ctx: &str,
        site: &str,
        base: &Path,
    ) -> Option<SinkConfig> {
        match kind {
            "mqtt" => {
                let raw = r.parse_value(rest, ctx)?;
                MqttConfig::validate(r, &raw, ctx, site, base).map(SinkConfig::Mqtt)
            }
            "sms" => {
                let raw = r.parse_value(rest, ctx)?;
                SmsConfig::validate(r, &raw, ctx, base).map(SinkConfig::Sms)
            }
            "syslog" => {
                let raw = r.parse_value(rest, ctx)?;
                SyslogConfig::validate(r, &raw, ctx, base).map(SinkConfig::Syslog)
            }
            _ => {
                let raw = r.parse_value(rest, ctx)?;
                InfluxConfig::validate(r, &raw, ctx, base).map(SinkConfig::Influx)
            }
        }
    }
}

/// A configured sink: its name, what it takes, and its settings.
#[derive(Debug, Clone)]
pub struct SinkEntry {
    /// Unique name: names its queue on disk, its budget, its metrics.
    pub name: Arc<str>,
    /// What it takes.
    pub route: Route,
    /// Its kind's settings.
    pub config: SinkConfig,
}

impl SinkEntry {
    /// A sink of `config`'s kind named after the kind, taking its kind's default (the
    /// `demo` flags and the first release's `[sinks.<kind>]` tables).
    pub fn default_for(config: SinkConfig) -> SinkEntry {
        let kind = config.kind();
        SinkEntry {
            name: Arc::from(kind),
            route: Route::all(SinkConfig::default_accepts(kind)),
            config,
        }
    }
}

/// The keys every `[[sinks]]` entry shares.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    /// Unique sink name (`[a-zA-Z0-9_-]`).
    name: Spanned<String>,
    /// Sink kind: `mqtt`, `influx`, `syslog` or `sms`.
    kind: Spanned<String>,
    /// What it takes: any of `readings`, `alarms`, `notifications`, `audit`
    /// (default: by kind).
    #[serde(default)]
    accepts: Option<Vec<Spanned<String>>>,
    /// Lowest alarm level taken (`normal` or `serious`; default every level).
    #[serde(default)]
    level: Option<Spanned<String>>,
    /// Only devices in these rooms.
    #[serde(default)]
    rooms: Vec<Spanned<String>>,
    /// Only devices of these kinds.
    #[serde(default)]
    device_kinds: Vec<Spanned<String>>,
    /// Only these devices.
    #[serde(default)]
    devices: Vec<Spanned<String>>,
}

const ROUTE_KEYS: &[&str] = &[
    "name",
    "kind",
    "accepts",
    "level",
    "rooms",
    "device_kinds",
    "devices",
];

/// What the site has, for checking the filters.
pub(crate) struct Known<'a> {
    /// Site name (default topic prefix and client id).
    pub site: &'a str,
    /// Room ids.
    pub rooms: &'a HashSet<String>,
    /// Device ids.
    pub devices: &'a HashSet<String>,
}

/// Read and validate the `sinks` value of a site file: an array of tables (the
/// current form) or a table of `mqtt` / `influx` tables (the first release's form,
/// read with a warning).
pub(crate) fn validate(
    r: &mut Report<'_>,
    value: Spanned<DeValue<'_>>,
    known: &Known<'_>,
    base: &Path,
) -> Vec<SinkEntry> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => {
            let mut out: Vec<SinkEntry> = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                if let Some(e) = entry(r, i, item, known, base) {
                    if out.iter().any(|o| o.name == e.name) {
                        r.at(
                            span.clone(),
                            format!("sinks[{i}] ({}) .name", e.name),
                            format!("sink name {:?} is used twice", e.name),
                        );
                    }
                    out.push(e);
                }
            }
            out
        }
        DeValue::Table(table) => legacy(r, table, span, known, base),
        _ => {
            r.at(span, "sinks", "expected [[sinks]] entries");
            Vec::new()
        }
    }
}

fn entry(
    r: &mut Report<'_>,
    i: usize,
    item: Spanned<DeValue<'_>>,
    known: &Known<'_>,
    base: &Path,
) -> Option<SinkEntry> {
    let span = item.span();
    let DeValue::Table(mut table) = item.into_inner() else {
        r.at(span, format!("sinks[{i}]"), "expected a table: [[sinks]]");
        return None;
    };
    let mut head = DeTable::default();
    for key in ROUTE_KEYS {
        if let Some((k, v)) = table.remove_entry(*key) {
            head.insert(k, v);
        }
    }
    let ctx0 = format!("sinks[{i}]");
    let raw: RawRoute = r.parse_value(Spanned::new(span.clone(), DeValue::Table(head)), &ctx0)?;
    let name = raw.name.get_ref();
    let ctx = format!("sinks[{i}] ({name})");
    let before = r.problems.len();
    if !valid_id(name) {
        r.at(
            raw.name.span(),
            format!("{ctx} .name"),
            format!("{name:?} is not a valid sink name: use letters, digits, '-' and '_' (it names the sink's queue on disk)"),
        );
    }
    let kind = raw.kind.get_ref().as_str();
    if !KINDS.contains(&kind) {
        r.at(
            raw.kind.span(),
            format!("{ctx} .kind"),
            format!(
                "unknown sink kind {kind:?}: known kinds are {}",
                KINDS.join(", ")
            ),
        );
        return None;
    }
    let route = route(r, &raw, kind, &ctx, known);
    let config = SinkConfig::validate(
        r,
        kind,
        Spanned::new(span, DeValue::Table(table)),
        &ctx,
        known.site,
        base,
    );
    (r.problems.len() == before).then_some(())?;
    Some(SinkEntry {
        name: Arc::from(name.as_str()),
        route,
        config: config?,
    })
}

fn route(r: &mut Report<'_>, raw: &RawRoute, kind: &str, ctx: &str, known: &Known<'_>) -> Route {
    let mut route = Route::all(SinkConfig::default_accepts(kind));
    if let Some(list) = &raw.accepts {
        route.accepts.clear();
        let can = SinkConfig::can_accept(kind);
        for a in list {
            match Accept::parse(a.get_ref()) {
                Some(x) if can.contains(&x) => {
                    route.accepts.insert(x);
                }
                Some(_) => r.at(
                    a.span(),
                    format!("{ctx} .accepts"),
                    format!(
                        "a sink of kind {kind} cannot take {:?}: it takes {}",
                        a.get_ref(),
                        names(can)
                    ),
                ),
                None => r.at(
                    a.span(),
                    format!("{ctx} .accepts"),
                    format!(
                        "unknown record class {:?}: use {}",
                        a.get_ref(),
                        names(&Accept::ALL)
                    ),
                ),
            }
        }
    }
    if let Some(l) = &raw.level {
        route.min_level = match l.get_ref().as_str() {
            "normal" => Some(Level::Normal),
            "serious" => Some(Level::Serious),
            other => {
                r.at(
                    l.span(),
                    format!("{ctx} .level"),
                    format!("unknown level {other:?}: use \"normal\" or \"serious\""),
                );
                None
            }
        };
    }
    for room in &raw.rooms {
        if known.rooms.contains(room.get_ref()) {
            route.rooms.push(Arc::from(room.get_ref().as_str()));
        } else {
            r.at(
                room.span(),
                format!("{ctx} .rooms"),
                format!("unknown room {:?}", room.get_ref()),
            );
        }
    }
    for k in &raw.device_kinds {
        match Kind::parse(k.get_ref()) {
            Some(kind) => route.kinds.push(kind),
            None => {
                let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                r.at(
                    k.span(),
                    format!("{ctx} .device_kinds"),
                    format!(
                        "unknown kind {:?}: expected one of {}",
                        k.get_ref(),
                        all.join(", ")
                    ),
                );
            }
        }
    }
    for d in &raw.devices {
        if known.devices.contains(d.get_ref()) {
            route.devices.push(Arc::from(d.get_ref().as_str()));
        } else {
            r.at(
                d.span(),
                format!("{ctx} .devices"),
                format!("unknown device {:?}", d.get_ref()),
            );
        }
    }
    route
}

fn names(list: &[Accept]) -> String {
    list.iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `[sinks.mqtt]` / `[sinks.influx]`: one sink of each kind, named after it, taking
/// its kind's default. Read with a warning that shows the current form.
fn legacy(
    r: &mut Report<'_>,
    table: DeTable<'_>,
    span: std::ops::Range<usize>,
    known: &Known<'_>,
    base: &Path,
) -> Vec<SinkEntry> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in entries {
        let kind = key.get_ref().to_string();
        if !LEGACY_KINDS.contains(&kind.as_str()) {
            r.at(
                key.span(),
                format!("sinks.{kind}"),
                format!(
                    "unknown sink {kind:?}: write sinks as [[sinks]] entries with a kind ({})",
                    KINDS.join(", ")
                ),
            );
            continue;
        }
        r.warn(
            key.span(),
            format!("sinks.{kind}"),
            format!(
                "[sinks.{kind}] is the first release's form and is still read; write it as\n    [[sinks]]\n    name = \"{kind}\"\n    kind = \"{kind}\"\n    # ... the same keys as under [sinks.{kind}]\n  (name = \"{kind}\" keeps the queue already on disk; another name takes it over)"
            ),
        );
        let ctx = format!("sinks.{kind}");
        if let Some(config) = SinkConfig::validate(r, &kind, value, &ctx, known.site, base) {
            out.push(SinkEntry::default_for(config));
        }
    }
    let _ = span;
    out
}

/// Queues on disk under the first release's names (`mqtt`, `influx`) whose sink now
/// has another name: `(old, new)` for each kind with exactly one sink and no sink
/// still named after the kind.
pub fn legacy_queue_renames(entries: &[SinkEntry]) -> Vec<(String, String)> {
    LEGACY_KINDS
        .iter()
        .filter(|k| !entries.iter().any(|e| &*e.name == **k))
        .filter_map(|k| {
            let mut of_kind = entries.iter().filter(|e| e.config.kind() == *k);
            match (of_kind.next(), of_kind.next()) {
                (Some(e), None) => Some((k.to_string(), e.name.to_string())),
                _ => None,
            }
        })
        .collect()
}

/// Started sinks: where the hub puts records, and the tasks that drain them.
pub struct Started {
    /// Each sink's route and queue, in config order.
    pub outlets: Vec<(Route, SinkQueue)>,
    /// One draining task per sink.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The MQTT connections, for the orderly `offline` status at shutdown.
    pub mqtt: Vec<MqttHandle>,
    /// The SMS modems, for the texts they receive (replies to pages).
    pub sms: Vec<super::sms::SmsHandle>,
}

/// Start every sink behind its queue in `buffer` (reopened after a restart).
pub fn start(
    entries: &[SinkEntry],
    buffer: &Buffer,
    storage: &StorageConfig,
    site: &Arc<str>,
    commands: Option<&crate::commands::Commands>,
    gateway: &Arc<str>,
) -> anyhow::Result<Started> {
    let mut s = Started {
        outlets: Vec::new(),
        tasks: Vec::new(),
        mqtt: Vec::new(),
        sms: Vec::new(),
    };
    for e in entries {
        let max_bytes = storage.max_bytes(&e.name, e.config.default_max_bytes());
        let (q, h) = match &e.config {
            SinkConfig::Mqtt(cfg) => {
                let mut cfg = cfg.clone();
                cfg.gateway = gateway.clone();
                let cfg = &cfg;
                let sink = MqttSink::start_with(&e.name, site.clone(), cfg, commands.cloned())
                    .with_context(|| format!("MQTT sink {} ({}:{})", e.name, cfg.host, cfg.port))?;
                s.mqtt.push(sink.handle());
                // Readings on MQTT are retained current state: not replayed, kept in
                // a ring; a quarter second's worth goes out in one delivery (4 socket
                // writes a second instead of one per poll: docs/BENCHMARKS.md). Alarm
                // events are durable, delivered in order, and do not wait.
                worker::spawn_on(
                    buffer,
                    sink,
                    QueueConfig {
                        batch_max: 200,
                        linger: Duration::ZERO,
                        max_records: cfg.max_queued,
                        max_bytes,
                        replay_readings: false,
                        ring_linger: Duration::from_millis(250),
                        live_first: false,
                        ..Default::default()
                    },
                )
            }
            SinkConfig::Sms(cfg) => {
                let sink = SmsSink::start(&e.name, cfg);
                let handle = sink.handle();
                s.sms.push(handle.clone());
                worker::spawn_on(buffer, sink, super::sms::queue_config(cfg, max_bytes))
                    .map(|(q, h)| (q.with_points(Arc::new(move || handle.samples())), h))
            }
            SinkConfig::Influx(cfg) => {
                let sink = InfluxSink::new(&e.name, site.clone(), cfg)
                    .with_context(|| format!("InfluxDB sink {} ({})", e.name, cfg.base_url))?;
                worker::spawn_on(
                    buffer,
                    sink,
                    QueueConfig {
                        batch_max: cfg.batch_max,
                        linger: cfg.flush_interval,
                        max_records: cfg.max_queued,
                        max_bytes,
                        ..Default::default()
                    },
                )
            }
            SinkConfig::Syslog(cfg) => {
                // Alarm (and audit) events only, durable, in order: a SOC reads them
                // as a timeline.
                let sink = SyslogSink::new(&e.name, cfg, gateway);
                worker::spawn_on(
                    buffer,
                    sink,
                    QueueConfig {
                        batch_max: cfg.batch_max,
                        linger: Duration::ZERO,
                        max_records: cfg.max_queued,
                        max_bytes,
                        live_first: false,
                        ..Default::default()
                    },
                )
            }
        }
        .with_context(|| format!("cannot open the queue of sink {}", e.name))?;
        s.outlets.push((e.route.clone(), q));
        s.tasks.push(h);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use crate::config::parse;
    use crate::model::{AlarmEvent, AlarmState, DeviceMeta, Kind, Level, Poll, Timestamp};
    use crate::sinks::{Accept, Record};

    const BASE: &str = r#"
[site]
name = "tv"

[[rooms]]
id = "server1"

[[rooms]]
id = "power"

[[devices]]
id = "th1"
room = "server1"
kind = "climate"
profile = "xy-md02"
[devices.modbus_tcp]
host = "127.0.0.1"
"#;

    fn site(sinks: &str) -> crate::config::Site {
        parse(&format!("{BASE}\n{sinks}"), "site.toml", Path::new("/"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn errors(sinks: &str) -> Vec<String> {
        match parse(&format!("{BASE}\n{sinks}"), "site.toml", Path::new("/")) {
            Ok(_) => panic!("accepted: {sinks}"),
            Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn poll(room: &str, kind: Kind) -> Record {
        Record::Poll(Arc::new(Poll {
            device: Arc::new(DeviceMeta {
                id: "d1".into(),
                name: "d1".into(),
                label: None,
                room: room.into(),
                kind,
            }),
            ts: Timestamp(0),
            comm_ok: true,
            samples: vec![],
        }))
    }

    fn alarm(level: Level, room: &str) -> Record {
        Record::Alarm(Arc::new(AlarmEvent {
            detail: Default::default(),
            id: "x".into(),
            seq: 1,
            ts: Timestamp(0),
            site: "tv".into(),
            device: "d1".into(),
            kind: Kind::Ups,
            room: room.into(),
            point: "on_battery",
            rule: "on_battery".into(),
            level,
            state: AlarmState::Raised,
            value: None,
            threshold: None,
            message: String::new(),
        }))
    }

    #[test]
    fn two_mqtt_sinks_with_their_own_routes() {
        let s = site(
            r#"
[[sinks]]
name = "readings"
kind = "mqtt"
accepts = ["readings"]
url = "mqtt://127.0.0.1:1883"
client_id = "a"

[[sinks]]
name = "soc"
kind = "mqtt"
accepts = ["alarms"]
level = "serious"
rooms = ["power"]
url = "mqtt://127.0.0.1:1884"
client_id = "b"
"#,
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let (readings, soc) = (&s.sinks[0], &s.sinks[1]);
        assert_eq!((&*readings.name, &*soc.name), ("readings", "soc"));
        assert!(readings.route.passes(&poll("power", Kind::Ups)));
        assert!(!readings.route.passes(&alarm(Level::Serious, "power")));
        assert!(!soc.route.passes(&poll("power", Kind::Ups)));
        assert!(soc.route.passes(&alarm(Level::Serious, "power")));
        assert!(
            !soc.route.passes(&alarm(Level::Normal, "power")),
            "below its level"
        );
        assert!(
            !soc.route.passes(&alarm(Level::Serious, "server1")),
            "another room"
        );
    }

    #[test]
    fn a_kind_takes_its_default_unless_the_entry_says() {
        let s = site(
            "[[sinks]]\nname = \"history\"\nkind = \"influx\"\nurl = \"http://127.0.0.1:8086?db=dc\"\n\n[[sinks]]\nname = \"broker\"\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:1883\"\n",
        );
        let accepts =
            |i: usize| -> Vec<Accept> { s.sinks[i].route.accepts.iter().copied().collect() };
        assert_eq!(accepts(0), vec![Accept::Readings, Accept::Alarms]);
        assert_eq!(
            accepts(1),
            vec![Accept::Readings, Accept::Alarms, Accept::Notifications]
        );
    }

    #[test]
    fn the_first_release_form_is_read_with_a_warning_showing_the_new_form() {
        let s = site(
            "[sinks.mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n\n[sinks.influx]\nurl = \"http://127.0.0.1:8086?db=dc\"\n",
        );
        let names: Vec<&str> = s.sinks.iter().map(|e| &*e.name).collect();
        assert_eq!(names, vec!["mqtt", "influx"]);
        assert_eq!(s.warnings.len(), 2);
        let w = s.warnings[0].to_string();
        assert!(
            w.starts_with("site.toml:19:8: sinks.mqtt: [sinks.mqtt] is the first release's form"),
            "{w}"
        );
        assert!(
            w.contains("[[sinks]]\n    name = \"mqtt\"\n    kind = \"mqtt\""),
            "{w}"
        );
    }

    #[test]
    fn broken_sink_entries_give_exact_messages() {
        let cases: &[(&str, &str)] = &[
            (
                "[[sinks]]\nname = \"a\"\nkind = \"kafka\"\n",
                "site.toml:21:8: sinks[0] (a) .kind: unknown sink kind \"kafka\": known kinds are mqtt, influx, syslog, sms",
            ),
            (
                "[[sinks]]\nname = \"a\"\nkind = \"influx\"\naccepts = [\"notifications\"]\nurl = \"http://h:8086?db=d\"\n",
                "site.toml:22:12: sinks[0] (a) .accepts: a sink of kind influx cannot take \"notifications\": it takes readings, alarms",
            ),
            (
                "[[sinks]]\nname = \"a\"\nkind = \"mqtt\"\nurl = \"mqtt://h\"\nqos = 2\n",
                "site.toml:23:1: sinks[0] (a): unknown field `qos`",
            ),
            (
                "[[sinks]]\nname = \"a\"\nkind = \"mqtt\"\nlevel = \"urgent\"\nurl = \"mqtt://h\"\n",
                "site.toml:22:9: sinks[0] (a) .level: unknown level \"urgent\": use \"normal\" or \"serious\"",
            ),
            (
                "[[sinks]]\nname = \"a\"\nkind = \"mqtt\"\nrooms = [\"cellar\"]\nurl = \"mqtt://h\"\n",
                "site.toml:22:10: sinks[0] (a) .rooms: unknown room \"cellar\"",
            ),
            (
                "[[sinks]]\nname = \"a b\"\nkind = \"mqtt\"\nurl = \"mqtt://h\"\n",
                "site.toml:20:8: sinks[0] (a b) .name: \"a b\" is not a valid sink name",
            ),
            (
                "[[sinks]]\nkind = \"mqtt\"\nurl = \"mqtt://h\"\n",
                "site.toml:19:1: sinks[0]: missing field `name`",
            ),
        ];
        for (text, want) in cases {
            let errs = errors(text);
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "case {text:?}: expected a message starting with\n  {want}\ngot\n  {}",
                errs.join("\n  ")
            );
        }
        // Two sinks cannot share a name: it names their queue on disk.
        let errs = errors(
            "[[sinks]]\nname = \"a\"\nkind = \"mqtt\"\nurl = \"mqtt://h\"\n\n[[sinks]]\nname = \"a\"\nkind = \"influx\"\nurl = \"http://h:8086?db=d\"\n",
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("sink name \"a\" is used twice")),
            "{errs:?}"
        );
    }

    #[test]
    fn an_sms_sink_takes_notifications_only() {
        let s = site(
            "[[sinks]]\nname = \"modem\"\nkind = \"sms\"\nport = \"/dev/dc-gateway/modem\"\ncall_ring_s = 20\n",
        );
        let e = &s.sinks[0];
        assert_eq!(
            e.route.accepts.iter().copied().collect::<Vec<_>>(),
            vec![Accept::Notifications]
        );
        let super::SinkConfig::Sms(cfg) = &e.config else {
            panic!("not an sms sink: {:?}", e.config)
        };
        assert_eq!(cfg.port, Path::new("/dev/dc-gateway/modem"));
        assert_eq!(cfg.call_ring, std::time::Duration::from_secs(20));
        assert_eq!(cfg.command_timeout, std::time::Duration::from_secs(5));
        assert!(!e.route.passes(&poll("power", Kind::Ups)));
        assert!(!e.route.passes(&alarm(Level::Serious, "power")));
        let errs = errors(
            "[[sinks]]\nname = \"m\"\nkind = \"sms\"\naccepts = [\"alarms\"]\nport = \"/dev/ttyUSB2\"\n",
        );
        assert!(
            errs.iter().any(|e| e.starts_with("site.toml:22:12: sinks[0] (m) .accepts: a sink of kind sms cannot take \"alarms\": it takes notifications")),
            "{errs:?}"
        );
        let errs = errors(
            "[[sinks]]\nname = \"m\"\nkind = \"sms\"\nport = \"/dev/ttyUSB2\"\nbaud = 9600\n",
        );
        assert!(
            errs.iter().any(|e| e.contains("unknown field `baud`")),
            "{errs:?}"
        );
    }

    #[test]
    fn queues_of_the_first_release_go_to_the_only_sink_of_their_kind() {
        let renamed = |sinks: &str| super::legacy_queue_renames(&site(sinks).sinks);
        assert_eq!(
            renamed("[[sinks]]\nname = \"alarms\"\nkind = \"mqtt\"\nurl = \"mqtt://h\"\n"),
            vec![("mqtt".to_string(), "alarms".to_string())]
        );
        // Still named after its kind: its queue is its own already.
        assert!(
            renamed("[[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"mqtt://h\"\n").is_empty()
        );
        // Two of a kind: which one had it is not knowable; the old queue is left alone.
        assert!(
            renamed("[[sinks]]\nname = \"a\"\nkind = \"mqtt\"\nurl = \"mqtt://h\"\n\n[[sinks]]\nname = \"b\"\nkind = \"mqtt\"\nurl = \"mqtt://h2\"\nclient_id = \"b\"\n").is_empty()
        );
    }
}
