//! Configuration: raw TOML ([`raw`]) validated into runtime objects ([`Site`]).

pub mod raw;
pub mod sinks;

pub use sinks::{InfluxApi, InfluxConfig, MqttConfig};
