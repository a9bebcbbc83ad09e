//! The Modbus source's configuration: `[devices.modbus_tcp]`, `[devices.modbus_rtu]`
//! and the site's `[[buses]]`, as written (serde) and validated; and the lines a site's
//! Modbus devices are polled over.
//!
//! What validation guarantees for a TCP device: a host, a unit id from 1 to 247 (or 255
//! for a plain TCP device). RTU devices and buses: see [`super::buses`].

use serde::Deserialize;
use serde_spanned::Spanned;

use super::{BusDevice, RtuBus, TcpDevice, TcpLine};
use crate::config::{DeviceConfig, DeviceCtx, Report, Site};
use crate::sources::Connection;

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
    /// Modbus unit id (slave address) on the bus, 1 to 247, unique on the bus unless
    /// the devices sharing it name the same `module`.
    pub unit_id: Spanned<u8>,
    /// The physical device this logical device is a channel of (`di-a1`: a DI module
    /// wired to a fire panel, a leak rope and a door). Several devices may share one
    /// unit id on a bus when every one of them names the same module; each keeps its
    /// own id, kind, room, label and profile.
    #[serde(default)]
    pub module: Option<Spanned<String>>,
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

/// Validate a device's `[devices.modbus_tcp]`.
pub(crate) fn tcp_connection(
    r: &mut Report<'_>,
    d: &DeviceCtx<'_>,
    m: &Spanned<RawModbusTcp>,
) -> Option<Connection> {
    let c = m.get_ref();
    let before = r.problems.len();
    if c.host.get_ref().trim().is_empty() {
        r.at(c.host.span(), d.key("modbus_tcp.host"), "host is empty");
    }
    let unit_id = *c.unit_id.get_ref();
    if !(1..=247).contains(&unit_id) && unit_id != 255 {
        let span = if c.unit_id.span().is_empty() {
            m.span()
        } else {
            c.unit_id.span()
        };
        r.at(
            span,
            d.key("modbus_tcp.unit_id"),
            format!("unit id {unit_id} is out of range: use 1 to 247 (or 255 for a TCP device)"),
        );
    }
    (r.problems.len() == before).then(|| Connection::ModbusTcp {
        host: c.host.get_ref().clone(),
        port: c.port,
        unit_id,
    })
}

/// The Modbus TCP poller settings of a configured device (`None` unless it is a
/// Modbus TCP device).
pub fn tcp_device(d: &DeviceConfig) -> Option<TcpDevice> {
    let Connection::ModbusTcp { host, port, .. } = &d.connection else {
        return None;
    };
    let b = bus_device(d)?;
    Some(TcpDevice {
        meta: b.meta,
        addr: format!("{host}:{port}"),
        unit_id: b.unit_id,
        poll_interval: b.poll_interval,
        timeout: b.timeout,
        profile: b.profile,
    })
}

/// A configured Modbus device as a member of its line (`None` for other protocols).
pub fn bus_device(d: &DeviceConfig) -> Option<BusDevice> {
    let (Connection::ModbusTcp { unit_id, .. } | Connection::ModbusRtu { unit_id, .. }) =
        &d.connection
    else {
        return None;
    };
    Some(BusDevice {
        meta: d.meta.clone(),
        unit_id: *unit_id,
        poll_interval: d.poll_interval,
        timeout: d.timeout,
        profile: d.profile.modbus()?.clone(),
    })
}

/// The Modbus lines of a site, each polled by one task: one per TCP endpoint
/// (`host:port`; the unit ids behind a Modbus TCP gateway share its connection) and
/// one per RS-485 bus with devices. Devices keep their config order on a line.
pub fn lines(site: &Site) -> (Vec<TcpLine>, Vec<RtuBus>) {
    let mut tcp: Vec<TcpLine> = Vec::new();
    let mut rtu: Vec<RtuBus> = Vec::new();
    for d in &site.devices {
        let Some(dev) = bus_device(d) else { continue };
        match &d.connection {
            Connection::ModbusTcp { host, port, .. } => {
                let addr = format!("{host}:{port}");
                match tcp.iter_mut().find(|l| l.addr == addr) {
                    Some(l) => l.devices.push(dev),
                    None => tcp.push(TcpLine {
                        addr,
                        devices: vec![dev],
                    }),
                }
            }
            Connection::ModbusRtu { bus, .. } => match rtu.iter_mut().find(|b| b.id == *bus) {
                Some(b) => b.devices.push(dev),
                None => {
                    if let Some(cfg) = site.sources.buses.iter().find(|b| b.id == *bus) {
                        rtu.push(RtuBus {
                            id: cfg.id.clone(),
                            serial: cfg.serial.clone(),
                            devices: vec![dev],
                        });
                    }
                }
            },
            _ => {}
        }
    }
    (tcp, rtu)
}
