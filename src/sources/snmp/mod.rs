//! SNMP: device profiles (OID lists as data), decoding, the per-agent poller (v1, v2c,
//! v3 with MD5/SHA-1/SHA-2 authentication and DES/AES-128/192/256 privacy, both AES
//! key extensions) and the trap receiver.
//!
//! - [`profile`]: the TOML profile format (`protocol = "snmp"`), validated against the
//!   canonical vocabulary; [`shipped_profiles`] are embedded in the binary.
//! - [`decode`]: SNMP values ↔ canonical values (types, TimeTicks, numbers in strings,
//!   enumerations, table aggregates, counter rates, exceptions as qualities).
//! - [`config`]: the `[devices.snmp]` and `[snmp_traps]` tables and their validation.
//! - [`poller`]: one task per agent, one [`crate::model::Poll`] per interval, every
//!   request under the agent's timeout and retries; [`probe`] reads an agent once.
//! - [`traps`]: the trap/inform listener turning known traps into immediate polls and
//!   confirming polls.
//! - [`state`]: durable SNMPv3 engine state (boots, DES salt).
//!
//! Wiring (the runtime): call [`init_state_dir`] once with the gateway's state
//! directory; validate each device's `[devices.snmp]` with [`config::validate_agent`],
//! build an [`SnmpAgent`] with [`SnmpAgent::new`], start it with [`spawn`] (keep the
//! returned trigger); then, when `[snmp_traps]` is configured, start [`spawn_traps`]
//! with [`TrapAgent::for_agent`] of each agent (its `engine_id` and trigger).

pub mod config;
pub mod decode;
pub mod poller;
pub mod profile;
pub mod state;
pub mod traps;

pub use config::{
    AgentConnection, AuthProto, ConfigProblem, Credentials, PrivProto, RawSnmp, RawSnmpTraps,
    RawTrapUser, TrapConfig, V3User, validate_agent, validate_traps,
};
pub use poller::{
    AgentTask, Error, PollTrigger, ProbePoint, ProbeReport, SharedUdp, SnmpAgent, probe, spawn,
    spawn_at, spawn_shared, spawn_with_trigger,
};
pub use profile::{ProfileError, SnmpProfile, parse_profile, parse_profile_all, shipped_profiles};
pub use state::init_state_dir;
pub use traps::{TrapAgent, TrapReceiver, spawn_traps};

/// The SNMP poller settings of a configured device (`None` unless it is an SNMP agent
/// with an SNMP profile).
pub fn agent(d: &crate::config::DeviceConfig) -> Option<SnmpAgent> {
    let crate::sources::Connection::Snmp(conn) = &d.connection else {
        return None;
    };
    Some(SnmpAgent::new(
        d.meta.clone(),
        conn,
        d.poll_interval,
        d.timeout,
        d.profile.snmp()?.clone(),
    ))
}
