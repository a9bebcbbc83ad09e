//! The SMS sink's configuration: an entry of kind `sms` in `[[sinks]]` as written
//! (serde), validated into [`SmsConfig`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::config::Report;

/// A validated SMS sink: one LTE/GSM modem on a serial port.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// The modem's AT command port (`/dev/dc-gateway/modem`, made by the shipped udev rule).
    pub port: PathBuf,
    /// Baud rate (115200; USB modems ignore it).
    pub baud_rate: u32,
    /// Time limit of an ordinary AT command.
    pub command_timeout: Duration,
    /// Time limit of one `AT+CMGS` (the manuals give up to 120 s; the network is slow
    /// at times).
    pub send_timeout: Duration,
    /// How often the modem's health (SIM, registration, signal) is checked.
    pub check_interval: Duration,
    /// Ask for delivery reports (`+CDS`).
    pub status_reports: bool,
    /// How long a voice call rings before the gateway hangs up.
    pub call_ring: Duration,
    /// SIM PIN, if the SIM has one (resolved from its file or variable).
    pub pin: Option<String>,
    /// Queue limit in records.
    pub max_queued: usize,
}

impl SmsConfig {
    /// Defaults for `port`.
    pub fn new(port: PathBuf) -> SmsConfig {
        SmsConfig {
            port,
            baud_rate: 115_200,
            command_timeout: Duration::from_millis(default_command_timeout_ms()),
            send_timeout: Duration::from_millis(default_send_timeout_ms()),
            check_interval: Duration::from_secs(default_check_interval_s()),
            status_reports: true,
            call_ring: Duration::from_secs(default_call_ring_s()),
            pin: None,
            max_queued: 10_000,
        }
    }
}

const fn default_command_timeout_ms() -> u64 {
    5_000
}
const fn default_send_timeout_ms() -> u64 {
    60_000
}
const fn default_check_interval_s() -> u64 {
    60
}
const fn default_call_ring_s() -> u64 {
    30
}

/// A `[[sinks]]` entry of kind `sms`, beside its name and routing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSms {
    /// The modem's AT command port; prefer a stable name (`/dev/dc-gateway/modem`
    /// from the shipped udev rule, or `/dev/serial/by-id/...`).
    pub port: Spanned<String>,
    /// Baud rate (115200).
    #[serde(default)]
    pub baud_rate: Option<u32>,
    /// Time limit of an AT command in ms (5000).
    #[serde(default)]
    pub command_timeout_ms: Option<u64>,
    /// Time limit of sending one SMS part in ms (60000).
    #[serde(default)]
    pub send_timeout_ms: Option<u64>,
    /// Seconds between health checks of the modem (60).
    #[serde(default)]
    pub check_interval_s: Option<u64>,
    /// Request delivery reports (true).
    #[serde(default)]
    pub status_reports: Option<bool>,
    /// Seconds a voice call rings before the gateway hangs up (30).
    #[serde(default)]
    pub call_ring_s: Option<u64>,
    /// SIM PIN from a file or an environment variable (`{ file = ".." }` / `{ env = ".." }`).
    #[serde(default)]
    pub pin: Option<Spanned<crate::config::raw::RawSecret>>,
    /// Queue limit in records (10000).
    #[serde(default)]
    pub max_queued: Option<usize>,
}

impl SmsConfig {
    /// Validate a sink entry of kind `sms` (`ctx` names it: `sinks[2] (modem)`).
    pub(crate) fn validate(
        r: &mut Report<'_>,
        c: &RawSms,
        ctx: &str,
        base: &Path,
    ) -> Option<SmsConfig> {
        let port = c.port.get_ref().trim();
        if port.is_empty() {
            r.at(
                c.port.span(),
                format!("{ctx}.port"),
                "the modem's serial port is empty",
            );
            return None;
        }
        let mut cfg = SmsConfig::new(base.join(port));
        if let Some(b) = c.baud_rate {
            cfg.baud_rate = b;
        }
        if let Some(t) = c.command_timeout_ms {
            cfg.command_timeout = Duration::from_millis(t.max(100));
        }
        if let Some(t) = c.send_timeout_ms {
            cfg.send_timeout = Duration::from_millis(t.max(1000));
        }
        if let Some(s) = c.check_interval_s {
            cfg.check_interval = Duration::from_secs(s.max(1));
        }
        if let Some(b) = c.status_reports {
            cfg.status_reports = b;
        }
        if let Some(s) = c.call_ring_s {
            cfg.call_ring = Duration::from_secs(s.clamp(1, 300));
        }
        if let Some(p) = &c.pin {
            cfg.pin = crate::config::resolve_secret(r, p, &format!("{ctx}.pin"), base);
        }
        if let Some(q) = c.max_queued {
            cfg.max_queued = q.max(1);
        }
        Some(cfg)
    }
}
