//! Modbus: device profiles (register maps as data), decoding, request planning, and the
//! pollers for Modbus TCP and Modbus RTU on RS-485.
//!
//! - [`profile`]: the TOML profile format, validated against the canonical vocabulary.
//! - [`decode`]: registers/bits ↔ canonical values (byte/word order, scale, enums, ...).
//! - [`plan`]: which reads fetch a profile's points (merged, within protocol limits).
//! - Lines: one task per **line**, a transport that carries one request at a time: an
//!   RS-485 bus ([`rtu`], [`spawn_rtu`]) or one TCP connection to a device or to a
//!   Modbus TCP gateway ([`tcp`], [`spawn_tcp`]). The task serialises the requests of
//!   every device (unit id) on the line, each on its own poll interval, every request
//!   under its own timeout; one [`crate::model::Poll`] per device per interval,
//!   whatever happens. A device that does not answer is backed off without slowing the
//!   others; a failed link is reopened.
//! - [`probe`]: read one device once for the CLI (`dc-gateway probe`).
//! - [`fastpoll`]: a generator that starts is polled every 250 ms until it is at rated
//!   voltage and frequency (NFPA 110 Type 10 is judged on it).

pub(crate) mod buses;
pub mod config;
pub mod decode;
pub mod fastpoll;
mod line;
pub mod plan;
pub mod probe;
pub mod profile;
pub mod rtu;
mod station;
pub mod tcp;
mod wire;

use std::time::Duration;

pub use buses::BusConfig;
pub use config::{bus_device, lines, tcp_device};
pub use probe::{ProbePoint, ProbeReport};
pub use profile::{Profile, ProfileError};
pub use rtu::{Parity, RtuBus, SerialSettings, probe_rtu, spawn_rtu, spawn_rtu_at};
pub use station::{BusDevice, MAX_BACKOFF};
pub use tcp::{TcpDevice, TcpLine, probe, spawn, spawn_tcp, spawn_tcp_at};

/// Errors of a one-off read ([`probe`], [`probe_rtu`]); the pollers themselves turn
/// failures into qualities.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connection failed.
    #[error("device {device} at {addr}: cannot connect: {source}")]
    Connect {
        /// Device id.
        device: String,
        /// `host:port`.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The TCP connection did not complete in time.
    #[error("device {device} at {addr}: no connection within {} ms", timeout.as_millis())]
    ConnectTimeout {
        /// Device id.
        device: String,
        /// `host:port`.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
    /// The bus's serial port could not be opened.
    #[error("device {device} on bus {bus}: {detail}")]
    Open {
        /// Device id.
        device: String,
        /// Bus id.
        bus: String,
        /// What failed (names the port).
        detail: String,
    },
}
