//! RS-485 buses (`[[buses]]`) and the Modbus RTU devices on them
//! (`[devices.modbus_rtu]`).
//!
//! What validation guarantees: bus ids are unique and valid; the serial settings are
//! ones a UART can do (baud 300 to 921600, parity none/even/odd, 7 or 8 data bits, 1 or
//! 2 stop bits); a device names a bus that exists and a unit id from 1 to 247 that no
//! other device uses on that bus; and its timeout leaves room for the largest read of
//! its profile on the wire at the bus's baud rate (a 125-register read takes about
//! 280 ms at 9600 baud, longer than many people's first guess at a timeout).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_spanned::Spanned;

use super::config::{RawBus, RawModbusRtu};
use super::profile::Profile;
use super::rtu::{self, Parity, SerialSettings};
use crate::config::{DeviceCtx, Report, valid_id};
use crate::sources::Connection;

/// Default baud rate: 19200, the Modbus serial line default.
pub const DEFAULT_BAUD: u32 = 19_200;

/// A validated RS-485 bus.
#[derive(Debug, Clone, PartialEq)]
pub struct BusConfig {
    /// Bus id.
    pub id: Arc<str>,
    /// Port and line settings.
    pub serial: SerialSettings,
    /// Default per-request timeout of the bus's devices, if set.
    pub timeout_ms: Option<u64>,
}

/// The buses of a site, and which unit ids are taken on each.
pub(crate) struct Buses {
    /// In file order.
    pub list: Vec<BusConfig>,
    /// `(bus id, unit id)` → the first device using it and the module it names.
    taken: HashMap<(String, u8), (String, Option<String>)>,
}

impl Buses {
    fn get(&self, id: &str) -> Option<&BusConfig> {
        self.list.iter().find(|b| b.id.as_ref() == id)
    }

    /// The bus default timeout for a device on a bus, if it has one.
    pub(crate) fn timeout_ms(&self, m: &RawModbusRtu) -> Option<u64> {
        self.get(m.bus.get_ref())?.timeout_ms
    }
}

fn ctx(i: usize, key: &str) -> String {
    format!("buses[{i}] .{key}")
}

/// Validate `[[buses]]`.
pub(crate) fn validate(r: &mut Report<'_>, raw: &[RawBus]) -> Buses {
    let mut list: Vec<BusConfig> = Vec::new();
    for (i, b) in raw.iter().enumerate() {
        let id = b.id.get_ref();
        let before = r.problems.len();
        if !valid_id(id) {
            r.at(
                b.id.span(),
                ctx(i, "id"),
                format!("{id:?} is not a valid bus id: use letters, digits, '-' and '_'"),
            );
        } else if raw[..i].iter().any(|x| x.id.get_ref() == id) {
            r.at(
                b.id.span(),
                ctx(i, "id"),
                format!("bus {id:?} is defined twice"),
            );
        }
        let c = |key: &str| format!("buses[{i}] ({id}) .{key}");
        if b.port.get_ref().trim().is_empty() {
            r.at(b.port.span(), c("port"), "port is empty: name the serial device, e.g. /dev/serial/by-id/usb-FTDI_...-if00-port0");
        }
        let baud = b
            .baud
            .as_ref()
            .map(|v| *v.get_ref())
            .unwrap_or(DEFAULT_BAUD);
        if let Some(v) = &b.baud
            && !(300..=921_600).contains(&baud)
        {
            r.at(
                v.span(),
                c("baud"),
                format!("{baud} is out of range: use 300 to 921600"),
            );
        }
        let parity = match b.parity.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("even") => Parity::Even,
            Some("none") => Parity::None,
            Some("odd") => Parity::Odd,
            Some(other) => {
                let span = b.parity.as_ref().map(|p| p.span()).unwrap_or(0..0);
                r.at(
                    span,
                    c("parity"),
                    format!("unknown parity {other:?}: use \"none\", \"even\" or \"odd\""),
                );
                Parity::Even
            }
        };
        let data_bits = b.data_bits.as_ref().map(|v| *v.get_ref()).unwrap_or(8);
        if let Some(v) = &b.data_bits
            && !(7..=8).contains(&data_bits)
        {
            r.at(
                v.span(),
                c("data_bits"),
                format!("{data_bits} data bits: use 7 or 8 (Modbus RTU uses 8)"),
            );
        }
        let stop_bits = b.stop_bits.as_ref().map(|v| *v.get_ref()).unwrap_or(1);
        if let Some(v) = &b.stop_bits
            && !(1..=2).contains(&stop_bits)
        {
            r.at(
                v.span(),
                c("stop_bits"),
                format!("{stop_bits} stop bits: use 1 or 2"),
            );
        }
        let frame_gap = b.frame_gap_us.as_ref().map(|v| *v.get_ref());
        if let (Some(g), Some(v)) = (frame_gap, &b.frame_gap_us)
            && g > 1_000_000
        {
            r.at(
                v.span(),
                c("frame_gap_us"),
                format!("{g} is out of range: use 0 to 1000000 µs"),
            );
        }
        let timeout_ms = b.timeout_ms.as_ref().map(|v| *v.get_ref());
        if let (Some(t), Some(v)) = (timeout_ms, &b.timeout_ms)
            && !(10..=60_000).contains(&t)
        {
            r.at(
                v.span(),
                c("timeout_ms"),
                format!("{t} is out of range: use 10 to 60000 ms"),
            );
        }
        if r.problems.len() == before {
            list.push(BusConfig {
                id: Arc::from(id.as_str()),
                serial: SerialSettings {
                    port: b.port.get_ref().trim().to_string(),
                    baud,
                    parity,
                    data_bits,
                    stop_bits,
                    frame_gap: frame_gap.map(Duration::from_micros),
                },
                timeout_ms,
            });
        }
    }
    Buses {
        list,
        taken: HashMap::new(),
    }
}

/// Validate a device's `[devices.modbus_rtu]`: the bus exists, the unit id is valid and
/// free on it, and `timeout` leaves room for the profile's largest read on the wire.
pub(crate) fn connection(
    r: &mut Report<'_>,
    buses: &mut Buses,
    d: &DeviceCtx<'_>,
    m: &Spanned<RawModbusRtu>,
    profile: Option<&Profile>,
    timeout: Duration,
) -> Option<Connection> {
    let c = m.get_ref();
    let bus_id = c.bus.get_ref();
    let unit_id = *c.unit_id.get_ref();
    let before = r.problems.len();
    if !(1..=247).contains(&unit_id) {
        r.at(
            c.unit_id.span(),
            d.key("modbus_rtu.unit_id"),
            format!("unit id {unit_id} is out of range: use 1 to 247 (0 is broadcast)"),
        );
    }
    let Some(bus) = buses.get(bus_id).cloned() else {
        let known: Vec<&str> = buses.list.iter().map(|b| b.id.as_ref()).collect();
        let hint = if known.is_empty() {
            "add it under [[buses]]".to_string()
        } else {
            format!("known buses are {}", known.join(", "))
        };
        r.at(
            c.bus.span(),
            d.key("modbus_rtu.bus"),
            format!("unknown bus {bus_id:?}: {hint}"),
        );
        return None;
    };
    if (1..=247).contains(&unit_id) {
        let key = (bus_id.clone(), unit_id);
        let module = c.module.as_ref().map(|m| m.get_ref().trim().to_string());
        if let Some(m) = &c.module
            && !valid_id(m.get_ref().trim())
        {
            r.at(
                m.span(),
                d.key("modbus_rtu.module"),
                format!(
                    "{:?} is not a valid module name: use letters, digits, '-' and '_'",
                    m.get_ref()
                ),
            );
        }
        match buses.taken.get(&key) {
            // Channels of one physical device: every one names the same module.
            Some((_, Some(theirs))) if module.as_ref() == Some(theirs) => {}
            Some((other, theirs)) => {
                let hint = match (theirs, &module) {
                    (Some(t), _) => {
                        format!("; if this device is a channel of module {t:?}, add module = {t:?}")
                    }
                    (None, _) => "; if both are channels of one physical device, give both the same module = \"...\"".to_string(),
                };
                r.at(
                    c.unit_id.span(),
                    d.key("modbus_rtu.unit_id"),
                    format!(
                        "unit id {unit_id} is already used on bus {bus_id:?} by device {other:?}{hint}"
                    ),
                );
            }
            None => {
                buses.taken.insert(key, (d.id.to_string(), module));
            }
        }
    }
    if let Some(p) = profile
        && let Some((read, wire)) = p
            .plan()
            .reads
            .iter()
            .map(|rd| (rd, bus.serial.exchange_time(rd)))
            .max_by_key(|(_, t)| *t)
        && wire >= timeout
    {
        let span = d.timeout_span.clone().unwrap_or(m.span());
        r.at(
            span,
            d.key("timeout_ms"),
            format!(
                "a timeout of {} ms is too short for bus {bus_id:?}: the largest read of profile {:?} ({} {} registers or bits, {} reply bytes) takes {} ms on the wire at {} baud",
                timeout.as_millis(),
                p.id,
                read.table.as_str(),
                read.count,
                rtu::reply_len(read),
                wire.as_millis(),
                bus.serial.baud
            ),
        );
    }
    (r.problems.len() == before).then(|| Connection::ModbusRtu {
        bus: bus.id.clone(),
        unit_id,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse;

    const BASE: &str = r#"
[site]
name = "tv"

[[rooms]]
id = "server1"

[[buses]]
id = "bus1"
port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
baud = 9600
parity = "none"

[[devices]]
id = "th1"
room = "server1"
kind = "climate"
profile = "xy-md02"
poll_interval_ms = 1000
[devices.modbus_rtu]
bus = "bus1"
unit_id = 1

[[devices]]
id = "th2"
room = "server1"
kind = "climate"
profile = "xy-md02"
[devices.modbus_rtu]
bus = "bus1"
unit_id = 2
"#;

    fn errors(text: &str) -> Vec<String> {
        match parse(text, "site.toml", Path::new("/nonexistent")) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn rtu_devices_reference_their_bus() {
        let site = parse(BASE, "site.toml", Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(site.sources.buses.len(), 1);
        let b = &site.sources.buses[0];
        assert_eq!(b.id.as_ref(), "bus1");
        assert_eq!(
            b.serial,
            SerialSettings {
                port: "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0".into(),
                baud: 9600,
                parity: Parity::None,
                data_bits: 8,
                stop_bits: 1,
                frame_gap: None,
            }
        );
        assert_eq!(
            site.devices[0].connection,
            Connection::ModbusRtu {
                bus: Arc::from("bus1"),
                unit_id: 1
            }
        );
        assert_eq!(
            site.devices[1].connection,
            Connection::ModbusRtu {
                bus: Arc::from("bus1"),
                unit_id: 2
            }
        );
        // No timeout anywhere: 1000 ms, capped at the poll interval (5000 ms default).
        assert_eq!(site.devices[1].timeout, Duration::from_millis(1000));
    }

    #[test]
    fn bus_defaults_are_the_modbus_serial_line_defaults_and_its_timeout_applies() {
        let text = BASE
            .replace(
                "baud = 9600\nparity = \"none\"\n",
                "timeout_ms = 300\nframe_gap_us = 5000\n",
            )
            .replace(
                "poll_interval_ms = 1000\n",
                "poll_interval_ms = 1000\ntimeout_ms = 150\n",
            );
        let site = parse(&text, "site.toml", Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
        let s = &site.sources.buses[0].serial;
        assert_eq!(
            (s.baud, s.parity, s.data_bits, s.stop_bits),
            (19_200, Parity::Even, 8, 1)
        );
        assert_eq!(s.frame_gap, Some(Duration::from_millis(5)));
        assert_eq!(
            site.devices[0].timeout,
            Duration::from_millis(150),
            "the device's own timeout wins"
        );
        assert_eq!(
            site.devices[1].timeout,
            Duration::from_millis(300),
            "the bus default applies"
        );
    }

    #[test]
    fn broken_bus_configs_give_exact_messages() {
        let cases: &[(&str, String, &str)] = &[
            (
                "unknown bus",
                BASE.replacen("bus = \"bus1\"", "bus = \"bus9\"", 1),
                "site.toml:21:7: devices[0] (th1) .modbus_rtu.bus: unknown bus \"bus9\": known buses are bus1",
            ),
            (
                "unit id used twice on one bus",
                BASE.replace("unit_id = 2", "unit_id = 1"),
                "site.toml:31:11: devices[1] (th2) .modbus_rtu.unit_id: unit id 1 is already used on bus \"bus1\" by device \"th1\"; if both are channels of one physical device, give both the same module = \"...\"",
            ),
            (
                "unit id shared with another module",
                BASE.replace("unit_id = 1\n", "unit_id = 1\nmodule = \"node-a\"\n").replace("unit_id = 2", "unit_id = 1\nmodule = \"node-b\""),
                "site.toml:32:11: devices[1] (th2) .modbus_rtu.unit_id: unit id 1 is already used on bus \"bus1\" by device \"th1\"; if this device is a channel of module \"node-a\", add module = \"node-a\"",
            ),
            (
                "broadcast unit id",
                BASE.replace("unit_id = 2", "unit_id = 0"),
                "site.toml:31:11: devices[1] (th2) .modbus_rtu.unit_id: unit id 0 is out of range: use 1 to 247 (0 is broadcast)",
            ),
            (
                "reserved unit id",
                BASE.replace("unit_id = 2", "unit_id = 248"),
                "site.toml:31:11: devices[1] (th2) .modbus_rtu.unit_id: unit id 248 is out of range: use 1 to 247 (0 is broadcast)",
            ),
            (
                "tcp and rtu at once",
                BASE.replace("unit_id = 2\n", "unit_id = 2\n[devices.modbus_tcp]\nhost = \"10.0.0.5\"\n"),
                "site.toml:29:1: devices[1] (th2) .modbus_rtu: give one connection, not [devices.modbus_tcp] and [devices.modbus_rtu]",
            ),
            (
                "bad parity",
                BASE.replace("parity = \"none\"", "parity = \"mark\""),
                "site.toml:12:10: buses[0] (bus1) .parity: unknown parity \"mark\": use \"none\", \"even\" or \"odd\"",
            ),
            (
                "bad baud",
                BASE.replace("baud = 9600", "baud = 96000000"),
                "site.toml:11:8: buses[0] (bus1) .baud: 96000000 is out of range: use 300 to 921600",
            ),
            (
                "bad stop bits",
                BASE.replace("parity = \"none\"", "parity = \"none\"\nstop_bits = 3"),
                "site.toml:13:13: buses[0] (bus1) .stop_bits: 3 stop bits: use 1 or 2",
            ),
            (
                "bus defined twice",
                BASE.replace("[[devices]]\nid = \"th1\"", "[[buses]]\nid = \"bus1\"\nport = \"/dev/ttyUSB1\"\n\n[[devices]]\nid = \"th1\""),
                "site.toml:15:6: buses[1] .id: bus \"bus1\" is defined twice",
            ),
            (
                "empty port",
                BASE.replace("port = \"/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0\"", "port = \" \""),
                "site.toml:10:8: buses[0] (bus1) .port: port is empty: name the serial device, e.g. /dev/serial/by-id/usb-FTDI_...-if00-port0",
            ),
            (
                "timeout shorter than the wire time",
                BASE.replace("baud = 9600", "baud = 300").replace("poll_interval_ms = 1000\n", "poll_interval_ms = 1000\ntimeout_ms = 200\n"),
                "site.toml:20:14: devices[0] (th1) .timeout_ms: a timeout of 200 ms is too short for bus \"bus1\": the largest read of profile \"xy-md02\" (input 2 registers or bits, 9 reply bytes) takes 683 ms on the wire at 300 baud",
            ),
            (
                "no connection at all",
                BASE.replace("[devices.modbus_rtu]\nbus = \"bus1\"\nunit_id = 2\n", ""),
                "site.toml:25:6: devices[1] (th2) .modbus_tcp: no connection: add one of the tables [devices.modbus_tcp], [devices.modbus_rtu], [devices.snmp], [devices.gpio], [devices.onvif]",
            ),
        ];
        let mut failures = Vec::new();
        for (name, text, expected) in cases {
            let errs = errors(text);
            if !errs.iter().any(|e| e == expected) {
                failures.push(format!(
                    "case {name:?}: expected\n  {expected}\ngot\n  {}",
                    errs.join("\n  ")
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// One ADAM-4051 wired to a fire panel, a leak rope and a door: three logical
    /// devices (own id, kind, room, label, profile) on one unit id, polled by one bus
    /// task as three devices.
    #[test]
    fn channels_of_one_module_share_its_unit_id() {
        let mut text = String::from(
            "[site]\nname = \"tv\"\n[[rooms]]\nid = \"server1\"\n[[rooms]]\nid = \"corridor\"\n\
             [[buses]]\nid = \"bus1\"\nport = \"/dev/ttyUSB0\"\nbaud = 9600\n",
        );
        for (id, kind, room, profile) in [
            ("facp1", "fire_panel", "server1", "adam-4051-fire-panel"),
            ("leak1", "leak", "server1", "adam-4051-leak"),
            ("door1", "door", "corridor", "adam-4051-door"),
        ] {
            text += &format!(
                "[[devices]]\nid = \"{id}\"\nlabel = \"{id}-label\"\nroom = \"{room}\"\nkind = \"{kind}\"\nprofile = \"{profile}\"\n\
                 poll_interval_ms = 200\n[devices.modbus_rtu]\nbus = \"bus1\"\nunit_id = 5\nmodule = \"di-a1\"\n"
            );
        }
        let site = parse(&text, "site.toml", Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
        let (_, buses) = super::super::lines(&site);
        assert_eq!(buses.len(), 1);
        let devs: Vec<(String, u8, String, String)> = buses[0]
            .devices
            .iter()
            .map(|d| {
                (
                    d.meta.id.to_string(),
                    d.unit_id,
                    d.meta.room.to_string(),
                    d.profile.id.clone(),
                )
            })
            .collect();
        assert_eq!(
            devs,
            vec![
                (
                    "facp1".into(),
                    5,
                    "server1".into(),
                    "adam-4051-fire-panel".into()
                ),
                ("leak1".into(), 5, "server1".into(), "adam-4051-leak".into()),
                (
                    "door1".into(),
                    5,
                    "corridor".into(),
                    "adam-4051-door".into()
                ),
            ]
        );
        // One channel without the module name is refused.
        let bad = text.replacen("module = \"di-a1\"\n", "", 3).replacen(
            "unit_id = 5\n",
            "unit_id = 5\nmodule = \"di-a1\"\n",
            1,
        );
        let e = parse(&bad, "site.toml", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("devices[1] (leak1) .modbus_rtu.unit_id: unit id 5 is already used on bus \"bus1\" by device \"facp1\"; if this device is a channel of module \"di-a1\""), "{e}");
    }
}
