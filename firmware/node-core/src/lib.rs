//! The core of the rack-inlet sensor node: everything that does not touch a pin.
//!
//! The same code runs on the microcontroller (`firmware/node-rp2040`) and on the host
//! (`firmware/node-sim`, the simulated node used by the gateway's integration tests):
//!
//! - [`crc`]: CRC-16/MODBUS for RTU frames and the Sensirion CRC-8 for sensor words;
//! - [`sht`]: a SHT3x / SHT4x temperature and humidity driver over `embedded-hal` 1.0
//!   I2C and delay traits;
//! - [`debounce`]: the leak rope and door reed inputs, debounced in time;
//! - [`rtu`]: RTU framing (a frame ends after 3.5 silent character times);
//! - [`node`]: the register map and the Modbus server (functions 03, 04, 06, 16);
//! - [`settings`]: unit id, baud rate and sensor offsets, stored through the
//!   [`settings::SettingsStore`] trait (flash on the board, a file in the simulator).
//!
//! Invariants: no allocation, no panics on any input byte sequence, no clock reads
//! (every function that needs time takes `now` as an argument), so all of it is tested
//! on the host. The register map is documented in `firmware/README.md`; the constants
//! in [`node::map`] are its single source in code.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod crc;
pub mod debounce;
pub mod node;
pub mod rtu;
pub mod settings;
pub mod sht;
