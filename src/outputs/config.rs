//! `[[outputs]]`: sirens and beacons, as written and validated.
//!
//! ```toml
//! [[outputs]]
//! id = "siren-server1"
//! name = "Còi phòng máy 1"
//! drive = "siren"                    # siren | beacon
//! level = "serious"                  # lowest alarm level that drives it (default serious)
//! kinds = ["fire_panel", "leak"]     # optional filters: device kinds, rooms, rules
//! rooms = ["server1"]
//! rules = ["fire_alarm", "extinguishant_released", "leak_detected"]
//! on_stop = "off"                    # off (default) | on | keep
//! [outputs.modbus_tcp]               # an ADAM-6050 DO channel ...
//! host = "10.0.0.50"
//! port = 502
//! unit_id = 1
//! coil = 16                          # DO 0 = 0X reference 00017 → address 16
//! # [outputs.gpio]                   # ... or a GPIO line driving a relay
//! # line = { name = "GPIO20" }       # or { chip = "gpiochip0", offset = 20 }
//! # active_low = false
//! ```
//!
//! Invariants of an [`OutputConfig`]: its id is unique among outputs, its filters name
//! known kinds, rooms and rules, it has exactly one driver, and a GPIO line is not also
//! an input of a GPIO device.

use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::model::{Kind, Level};
use crate::sources::gpio::{Bias, LineAt, LineSpec};

/// `[[outputs]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Unique id (`siren-server1`), in logs, metrics and the `silence` command.
    pub id: Spanned<String>,
    /// Human name.
    #[serde(default)]
    pub name: Option<String>,
    /// `siren` (on while a matching alarm is active and unacknowledged, until
    /// silenced) or `beacon` (on while a matching alarm is listed).
    pub drive: Spanned<String>,
    /// Lowest alarm level that drives it: `serious` (default) or `normal`.
    #[serde(default)]
    pub level: Option<Spanned<String>>,
    /// Only alarms of devices of these kinds (default: every kind).
    #[serde(default)]
    pub kinds: Option<Spanned<Vec<String>>>,
    /// Only alarms of devices in these rooms (default: every room).
    #[serde(default)]
    pub rooms: Option<Spanned<Vec<String>>>,
    /// Only alarms of these rules (default: every rule).
    #[serde(default)]
    pub rules: Option<Spanned<Vec<String>>>,
    /// What the output is set to when the gateway stops in order: `off` (default),
    /// `on` or `keep`.
    #[serde(default)]
    pub on_stop: Option<Spanned<String>>,
    /// A GPIO line driving the siren's relay.
    #[serde(default)]
    pub gpio: Option<Spanned<RawGpioOut>>,
    /// A coil of a Modbus TCP I/O module (ADAM-6050 DO).
    #[serde(default)]
    pub modbus_tcp: Option<Spanned<RawCoil>>,
}

/// `[outputs.gpio]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGpioOut {
    /// The line: `{ name = "GPIO20" }` or `{ chip = "gpiochip0", offset = 20 }`.
    pub line: RawLine,
    /// The output is on while the line is low (a relay board switching on low).
    #[serde(default)]
    pub active_low: bool,
}

/// A line by name or by chip and offset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLine {
    /// Line name.
    #[serde(default)]
    pub name: Option<String>,
    /// Chip (`gpiochip0`).
    #[serde(default)]
    pub chip: Option<String>,
    /// Offset on the chip.
    #[serde(default)]
    pub offset: Option<u32>,
}

/// `[outputs.modbus_tcp]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCoil {
    /// Host name or address of the module.
    pub host: String,
    /// TCP port (default 502).
    #[serde(default)]
    pub port: Option<u16>,
    /// Unit id (default 1).
    #[serde(default)]
    pub unit_id: Option<u8>,
    /// Coil address (protocol address, 0-based: 0X reference − 1).
    pub coil: u16,
    /// Per-request timeout (default 1000 ms).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// What drives an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// On while a matching alarm is active and unacknowledged, and not silenced.
    Siren,
    /// On while a matching alarm is listed (not shelved).
    Beacon,
}

/// What an output does when the gateway stops in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStop {
    /// Switched off.
    Off,
    /// Switched on (a beacon that says "monitoring stopped").
    On,
    /// Left as it is.
    Keep,
}

/// Where an output is.
#[derive(Debug, Clone, PartialEq)]
pub enum Driver {
    /// A GPIO line.
    Gpio(LineSpec),
    /// A coil of a Modbus TCP module.
    Coil {
        /// `host:port`.
        addr: String,
        /// Unit id.
        unit: u8,
        /// Coil address.
        coil: u16,
        /// Per-request timeout.
        timeout: Duration,
    },
}

/// A validated output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputConfig {
    /// Unique id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Siren or beacon.
    pub drive: Drive,
    /// Lowest level that drives it.
    pub level: Level,
    /// Kinds filter (empty: all).
    pub kinds: Vec<Kind>,
    /// Rooms filter (empty: all).
    pub rooms: Vec<String>,
    /// Rules filter (empty: all).
    pub rules: Vec<String>,
    /// State on an orderly stop.
    pub on_stop: OnStop,
    /// Where it is.
    pub driver: Driver,
}

/// What the validation knows of the rest of the site.
pub struct Known<'a> {
    /// Room ids.
    pub rooms: &'a dyn Fn(&str) -> bool,
    /// Rule names of any kind.
    pub rules: &'a dyn Fn(&str) -> bool,
    /// The GPIO device holding a line as an input (its id and point), if any.
    pub input_line: &'a dyn Fn(&LineAt) -> Option<String>,
}

/// A problem found by [`validate`]: where in the file, the key path, the message.
pub type Problem = (std::ops::Range<usize>, String, String);

/// Validate the outputs; each problem is `(span, key path, message)`.
pub fn validate(raw: &[RawOutput], known: &Known<'_>) -> (Vec<OutputConfig>, Vec<Problem>) {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    let mut lines: Vec<(LineAt, String)> = Vec::new();
    for (i, o) in raw.iter().enumerate() {
        let before = errs.len();
        let id = o.id.get_ref();
        let ctx = |k: &str| format!("outputs[{i}] ({id}) .{k}");
        let mut err =
            |span: std::ops::Range<usize>, k: &str, m: String| errs.push((span, ctx(k), m));
        if !crate::config::valid_id(id) {
            err(
                o.id.span(),
                "id",
                format!("{id:?} is not a valid output id: use letters, digits, '-' and '_'"),
            );
        } else if ids.contains(&id.as_str()) {
            err(o.id.span(), "id", format!("output {id:?} is defined twice"));
        }
        ids.push(id);
        let drive = match o.drive.get_ref().as_str() {
            "siren" => Some(Drive::Siren),
            "beacon" => Some(Drive::Beacon),
            other => {
                err(
                    o.drive.span(),
                    "drive",
                    format!("unknown drive {other:?}: use siren or beacon"),
                );
                None
            }
        };
        let level = match o.level.as_ref().map(|l| (l.span(), l.get_ref().as_str())) {
            None | Some((_, "serious")) => Level::Serious,
            Some((_, "normal")) => Level::Normal,
            Some((span, other)) => {
                err(
                    span,
                    "level",
                    format!("unknown level {other:?}: use normal or serious"),
                );
                Level::Serious
            }
        };
        let on_stop = match o.on_stop.as_ref().map(|l| (l.span(), l.get_ref().as_str())) {
            None | Some((_, "off")) => OnStop::Off,
            Some((_, "on")) => OnStop::On,
            Some((_, "keep")) => OnStop::Keep,
            Some((span, other)) => {
                err(
                    span,
                    "on_stop",
                    format!("unknown on_stop {other:?}: use off, on or keep"),
                );
                OnStop::Off
            }
        };
        let mut kinds = Vec::new();
        if let Some(k) = &o.kinds {
            for name in k.get_ref() {
                match Kind::parse(name) {
                    Some(kind) => kinds.push(kind),
                    None => err(k.span(), "kinds", format!("unknown kind {name:?}")),
                }
            }
        }
        let mut rooms = Vec::new();
        if let Some(r) = &o.rooms {
            for name in r.get_ref() {
                if (known.rooms)(name) {
                    rooms.push(name.clone());
                } else {
                    err(r.span(), "rooms", format!("unknown room {name:?}"));
                }
            }
        }
        let mut rules = Vec::new();
        if let Some(r) = &o.rules {
            for name in r.get_ref() {
                if (known.rules)(name) {
                    rules.push(name.clone());
                } else {
                    err(r.span(), "rules", format!("unknown rule {name:?}"));
                }
            }
        }
        let driver = match (&o.gpio, &o.modbus_tcp) {
            (Some(g), None) => {
                let l = &g.get_ref().line;
                let at = match (&l.name, &l.chip, l.offset) {
                    (Some(n), None, None) => Some(LineAt::Name(n.clone())),
                    (None, Some(c), Some(off)) => Some(LineAt::Offset {
                        chip: c.clone(),
                        offset: off,
                    }),
                    _ => {
                        err(g.span(), "gpio.line", "give the line as { name = \"GPIO20\" } or { chip = \"gpiochip0\", offset = 20 }".into());
                        None
                    }
                };
                at.and_then(|at| {
                    if let Some(user) = (known.input_line)(&at) {
                        err(
                            g.span(),
                            "gpio.line",
                            format!("line {at} is already used by {user}"),
                        );
                        return None;
                    }
                    if let Some((_, other)) = lines.iter().find(|(a, _)| *a == at) {
                        err(
                            g.span(),
                            "gpio.line",
                            format!("line {at} is already used by output {other}"),
                        );
                        return None;
                    }
                    lines.push((at.clone(), id.clone()));
                    Some(Driver::Gpio(LineSpec {
                        at,
                        active_low: g.get_ref().active_low,
                        bias: Bias::AsIs,
                    }))
                })
            }
            (None, Some(m)) => {
                let c = m.get_ref();
                let timeout_ms = c.timeout_ms.unwrap_or(1000);
                if c.host.trim().is_empty() {
                    err(m.span(), "modbus_tcp.host", "empty host".into());
                    None
                } else if !(50..=30_000).contains(&timeout_ms) {
                    err(
                        m.span(),
                        "modbus_tcp.timeout_ms",
                        format!("{timeout_ms} is out of range: 50 to 30000"),
                    );
                    None
                } else {
                    Some(Driver::Coil {
                        addr: format!("{}:{}", c.host.trim(), c.port.unwrap_or(502)),
                        unit: c.unit_id.unwrap_or(1),
                        coil: c.coil,
                        timeout: Duration::from_millis(timeout_ms),
                    })
                }
            }
            (Some(g), Some(_)) => {
                err(
                    g.span(),
                    "gpio",
                    "an output has one driver: [outputs.gpio] or [outputs.modbus_tcp], not both"
                        .into(),
                );
                None
            }
            (None, None) => {
                err(
                    o.id.span(),
                    "id",
                    "no driver: add [outputs.gpio] or [outputs.modbus_tcp]".into(),
                );
                None
            }
        };
        if let (Some(drive), Some(driver), true) = (drive, driver, errs.len() == before) {
            out.push(OutputConfig {
                id: id.clone(),
                name: o.name.clone().unwrap_or_else(|| id.clone()),
                drive,
                level,
                kinds,
                rooms,
                rules,
                on_stop,
                driver,
            });
        }
    }
    (out, errs)
}
