//! Sinks: where readings and alarm events leave the gateway (InfluxDB, MQTT, ...).
//!
//! The split of work between a queue and a sink (CONTRACTS.md):
//! - the **queue** ([`worker`]) owns *when*: batch size, retry timing and backoff, the
//!   budget, replay order;
//! - the **sink** ([`Sink`]) owns *how*: encoding, compression, the network call, and
//!   classifying the far end's answer as an [`Outcome`].
//!
//! A record leaves the queue only when the sink reports the far end confirmed it
//! (HTTP 2xx, MQTT PUBACK). The sink never sees the queue.
//!
//! This file is also the **registry** of sink kinds: the only place outside a sink's
//! own folder that names them ([`SinkConfig`] and the matches on it in [`registry`]).
//! A sink kind brings, in its folder, its raw config (serde) and validation, its queue
//! settings and its [`Sink`]; here it gets one variant of [`SinkConfig`] and its arms.
//! [`Route`] decides which records reach which sink (`accepts` and filters of a
//! `[[sinks]]` entry); the hub applies it before a record enters a queue.

pub mod influx;
pub mod mqtt;
pub mod registry;
mod route;
pub mod sms;
pub mod syslog;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use crate::model::{AlarmEvent, Poll};
pub use registry::{SinkConfig, SinkEntry, Started};
pub use route::{Accept, Route, forward_audit};

/// A sink URL that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

/// The message for a password written inside a URL in the site file.
pub(crate) const INLINE_PASSWORD: &str = "the URL holds a password: secrets must not be written inline; use password = { file = \"...\" } or { env = \"...\" }";

/// Percent-decoding of a URL's user name or password (`p%40ss` → `p@ss`).
pub(crate) fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// One unit of work for a sink.
#[derive(Debug, Clone)]
pub enum Record {
    /// Every sample of one poll of one device.
    Poll(Arc<Poll>),
    /// An alarm transition; must never be lost.
    Alarm(Arc<AlarmEvent>),
    /// A message to one person (an SMS text, a page); must never be lost.
    Notification(Arc<Notification>),
    /// An audit entry of the journal (a login, an account change, a command, a config
    /// load) for sinks that accept `audit`; kept like an alarm event.
    Audit(Arc<Audit>),
}

/// A journal entry forwarded to the sinks that accept `audit` (the SOC's syslog): the
/// entry as journaled, with an `id` (`<gateway>-<seq>`) consumers de-duplicate by.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Audit {
    /// `<gateway>-<seq>`: unique, the same on every retry.
    pub id: String,
    /// The journal's `seq`.
    pub seq: i64,
    /// When it happened.
    pub ts: crate::model::Timestamp,
    /// The gateway that journaled it.
    pub gateway: String,
    /// The journal entry kind (`login`, `account`, `command`, `config_loaded`, ...).
    pub kind: String,
    /// The device concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The entry's own fields.
    pub data: serde_json::Value,
}

impl Audit {
    /// Journal entry kinds that are audit records (Art. 11.7: who did what, when).
    pub const KINDS: [crate::journal::Kind; 6] = [
        crate::journal::Kind::Login,
        crate::journal::Kind::Account,
        crate::journal::Kind::Command,
        crate::journal::Kind::ConfigLoaded,
        crate::journal::Kind::GatewayStart,
        crate::journal::Kind::GatewayStop,
    ];

    /// The audit record of a journal entry, if its kind is one of [`Audit::KINDS`].
    pub fn of(e: &crate::journal::Entry) -> Option<Audit> {
        Audit::KINDS.contains(&e.kind).then(|| Audit {
            id: format!("{}-{}", e.gateway, e.seq),
            seq: e.seq,
            ts: e.ts,
            gateway: e.gateway.clone(),
            kind: e.kind.as_str().to_string(),
            device: e.device.clone(),
            data: e.data.clone(),
        })
    }
}

/// A message to one person, made by whoever decides who is told what (the roster and
/// escalation, a test message). Sinks that take `notifications` deliver it: the SMS
/// sink as a text to `phone`, the MQTT sink on `<prefix>/notify/<person>`.
///
/// Kept small on purpose: what a channel needs to deliver it, and the alarm instance
/// it is about, so a reply ("OK 123") or a delivery report can be tied back to it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notification {
    /// Unique id (a UUID), the same on every channel and every retry.
    pub id: String,
    /// When it was made.
    pub ts: crate::model::Timestamp,
    /// The person's id in the roster.
    pub person: String,
    /// The person's phone number, E.164 (`+84912345678`).
    pub phone: String,
    /// The text, already in the person's language.
    pub text: String,
    /// Language of the text (`vi`, `en`).
    pub lang: String,
    /// The alarm instance number (`no`) it is about, if any.
    pub alarm_no: Option<u64>,
    /// Ring the phone (a voice call, hung up after the sink's `call_ring_s`) instead
    /// of sending the text: a ring wakes people, a text does not. Channels that
    /// cannot ring (MQTT) deliver the text.
    pub call: bool,
    /// Attempt number: the nth notification about this alarm to this person (1 for
    /// one about no alarm); the queue's own retries re-send the same attempt.
    pub attempt: u32,
}

impl Record {
    /// Records that must never be lost: alarm events and notifications. They are kept
    /// before readings when a budget is exceeded, and retried while a far end is away.
    pub fn is_alarm(&self) -> bool {
        matches!(
            self,
            Record::Alarm(_) | Record::Notification(_) | Record::Audit(_)
        )
    }
    /// Time of the record, for replay order and oldest-age reporting.
    pub fn ts(&self) -> crate::model::Timestamp {
        match self {
            Record::Poll(p) => p.ts,
            Record::Alarm(a) => a.ts,
            Record::Notification(n) => n.ts,
            Record::Audit(a) => a.ts,
        }
    }
    /// Rough size in bytes, for budget accounting.
    pub fn approx_bytes(&self) -> usize {
        match self {
            Record::Poll(p) => 64 + p.samples.len() * 24,
            Record::Alarm(a) => 256 + a.message.len(),
            Record::Notification(n) => 128 + n.text.len(),
            Record::Audit(a) => 128 + a.data.to_string().len(),
        }
    }
}

/// What happened to a batch handed to [`Sink::deliver`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The far end confirmed every record of the batch.
    Delivered,
    /// Nothing (or not all) was confirmed; try the whole batch again later.
    /// `after` is the far end's own hint (`Retry-After`), if it gave one.
    Retry {
        /// Wait at least this long, if the far end said so.
        after: Option<Duration>,
        /// Why, for logs and the API.
        reason: String,
    },
    /// The batch is too large for the far end (HTTP 413): split it and send the halves.
    Split,
    /// The far end stored the batch except these records, which it refused for good
    /// (index into the batch, reason). They go to the dead-letter store.
    Rejected {
        /// Records the far end refused, by index in the batch, with its reason.
        records: Vec<(usize, String)>,
    },
}

/// A destination for records.
///
/// Implementations must be cancel-safe only at `deliver` boundaries; a batch handed to
/// `deliver` is retried whole unless the outcome says otherwise, so delivery is
/// at-least-once.
#[allow(async_fn_in_trait)]
pub trait Sink: Send + 'static {
    /// Configured name (`influx`, `mqtt`), used in metrics and the API.
    fn name(&self) -> &str;
    /// Sink kind (`influxdb`, `mqtt`).
    fn kind(&self) -> &'static str;
    /// Whether the sink currently believes its far end is reachable.
    fn connected(&self) -> bool;
    /// Whether the far end refused our credentials on the last attempt (HTTP 401/403,
    /// MQTT CONNACK "bad user name or password" / "not authorised").
    fn auth_failed(&self) -> bool {
        false
    }
    /// Deliver a batch; resolve only once the far end has answered.
    fn deliver(&mut self, batch: &[Record]) -> impl std::future::Future<Output = Outcome> + Send;
}
