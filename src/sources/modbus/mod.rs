//! Modbus: device profiles (register maps as data), decoding, request planning and the
//! Modbus TCP poller.
//!
//! - [`profile`]: the TOML profile format, validated against the canonical vocabulary.
//! - [`decode`]: registers/bits ↔ canonical values (byte/word order, scale, enums, ...).
//! - [`plan`]: which reads fetch a profile's points (merged, within protocol limits).
//! - [`poller`]: one task per TCP device, one [`crate::model::Poll`] per interval, every
//!   request under a timeout; [`poller::probe`] reads a device once for the CLI.

pub mod decode;
pub mod plan;
pub mod poller;
pub mod profile;

pub use poller::{Error, ProbePoint, ProbeReport, TcpDevice, probe, spawn};
pub use profile::{Profile, ProfileError};
