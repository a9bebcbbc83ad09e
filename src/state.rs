//! The live picture of the site: latest value and quality of every point, active
//! alarms and sink status. Written by the runtime, read by the web page and API.
//!
//! Updates are also broadcast (`Update`) so the wall view can refresh without a reload.

use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::journal::Journal;
use crate::model::{Device, Kind, Level, Quality, Timestamp, Value};
use crate::points::PointId;

/// A room as shown on the wall view.
#[derive(Debug, Clone, Serialize)]
pub struct RoomInfo {
    /// Room id.
    pub id: Arc<str>,
    /// Display name.
    pub name: String,
}

/// Latest state of one point.
#[derive(Debug, Clone)]
pub struct PointState {
    /// The canonical point.
    pub point: PointId,
    /// Last good value (kept after a failed read), `None` if never read.
    pub value: Option<Value>,
    /// Quality of the latest attempt.
    pub quality: Quality,
    /// Time of the last good read.
    pub ts: Option<Timestamp>,
}

impl PointState {
    /// Point `name` of a device of `kind` as last seen (`None` if the vocabulary has no
    /// such point).
    pub fn canonical(
        kind: crate::model::Kind,
        name: &str,
        value: Option<Value>,
        quality: Quality,
        ts: Option<Timestamp>,
    ) -> Option<PointState> {
        Some(PointState {
            point: crate::points::lookup(kind, name)?,
            value,
            quality,
            ts,
        })
    }
}

/// One device with its points.
#[derive(Debug, Clone)]
pub struct DeviceState {
    /// Identity.
    pub meta: Device,
    /// Rack / position.
    pub location: Option<String>,
    /// Whether the last poll got an answer.
    pub comm_ok: bool,
    /// Time of the last poll attempt.
    pub last_poll: Option<Timestamp>,
    /// Points in profile order.
    pub points: Vec<PointState>,
}

impl DeviceState {
    /// A device that answered its last poll just now.
    pub fn answering(
        meta: crate::model::DeviceMeta,
        location: Option<String>,
        points: Vec<PointState>,
    ) -> DeviceState {
        DeviceState {
            meta: std::sync::Arc::new(meta),
            location,
            comm_ok: true,
            last_poll: Some(Timestamp::now()),
            points,
        }
    }
}

/// An active (raised, not yet cleared) alarm.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveAlarm {
    /// Id of the event that raised it.
    pub id: String,
    /// `device/rule`.
    pub key: String,
    /// Device id.
    pub device: Arc<str>,
    /// Device kind.
    #[serde(skip)]
    pub kind: Kind,
    /// Point name.
    pub point: &'static str,
    /// Rule name.
    pub rule: Arc<str>,
    /// Current level.
    pub level: Level,
    /// `raised`; `acked` (acknowledged, condition still holds); `cleared` (a serious
    /// alarm whose condition cleared before anyone acknowledged it).
    pub state: &'static str,
    /// When it was raised.
    pub since: Timestamp,
    /// The value that raised it.
    pub value: Option<Value>,
    /// The threshold crossed.
    pub threshold: Option<f64>,
    /// Operator text.
    pub message: String,
    /// The instance's short number.
    pub no: u64,
    /// Who acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<Timestamp>,
    /// Shelved until.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shelved_until: Option<Timestamp>,
    /// Shelved by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shelved_by: Option<String>,
    /// Root-cause group id: the `id` of the link alarm this alarm is a child of
    /// (docs/ALARMS.md "One alarm per root cause").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// A value beyond a limit whose on-delay is still running: shown as "pending" (its own
/// colour and word), never as normal.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    /// Device id.
    pub device: Arc<str>,
    /// Point name.
    pub point: &'static str,
    /// Rule name.
    pub rule: Arc<str>,
    /// The level it will raise at if it holds.
    pub level: Level,
    /// Since when the condition holds.
    pub since: Timestamp,
}

/// Status of one sink, as `GET /api/v1/sinks` reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkStatus {
    /// Configured name.
    pub name: String,
    /// `influxdb` or `mqtt`.
    pub kind: &'static str,
    /// Whether the far end is reachable.
    pub connected: bool,
    /// Records waiting.
    pub queued: u64,
    /// Approximate bytes waiting.
    pub queued_bytes: u64,
    /// Age of the oldest waiting record, seconds.
    pub oldest_age_s: f64,
    /// Records confirmed.
    pub delivered: u64,
    /// Failed attempts retried.
    pub retried: u64,
    /// Records dropped over budget.
    pub dropped: u64,
    /// Records refused for good.
    pub dead_lettered: u64,
    /// For how long the sink has been failing to deliver, seconds (0 while healthy).
    pub failing_s: f64,
}

/// Everything the page and API show.
#[derive(Debug, Default)]
pub struct Live {
    /// Site id.
    pub site: String,
    /// Display title.
    pub title: String,
    /// `vi` or `en`.
    pub language: String,
    /// Rooms in config order.
    pub rooms: Vec<RoomInfo>,
    /// Devices in config order.
    pub devices: Vec<DeviceState>,
    /// Active alarms, most serious first.
    pub alarms: Vec<ActiveAlarm>,
    /// Values whose alarm is pending (beyond a limit, on-delay running).
    pub pending: Vec<Pending>,
    /// Maintenance windows open by command.
    pub maintenance: Vec<crate::rules::maintenance::Started>,
    /// What the gateway runs without (a state directory it cannot use), one line each:
    /// `/healthz` answers 503 with them.
    pub degraded: Vec<String>,
    /// Sink status.
    pub sinks: Vec<SinkStatus>,
    /// Last time every poller and sink made progress (for `/healthz`).
    pub last_progress: Option<Timestamp>,
}

/// What changed, for live clients (server-sent events).
#[derive(Debug, Clone)]
pub enum Update {
    /// New readings of a device (index into `Live::devices`).
    Device(usize),
    /// The set of active alarms changed.
    Alarms,
}

/// Shared handle: the state plus the update channel.
#[derive(Clone)]
pub struct Shared {
    /// The live picture.
    pub live: Arc<RwLock<Live>>,
    /// Change notifications.
    pub updates: broadcast::Sender<Update>,
    /// The durable journal, for `GET /api/v1/journal`; `None` until the runtime
    /// opened it (the API then answers 503).
    pub journal: Option<Journal>,
    /// The site as records need it (incidents, reports, history; src/records/);
    /// `None` until the runtime set it (those APIs then answer 503).
    pub records: Option<crate::records::Shared>,
    /// The paging roster and the site's time zone, for `GET /api/v1/oncall`; `None`
    /// without a `[paging]` table.
    pub paging: Option<(
        Arc<crate::paging::PagingConfig>,
        crate::texts::time::SiteTime,
    )>,
    /// Sirens and beacons, for `GET /api/v1/outputs` (empty without outputs).
    pub outputs: crate::outputs::Handle,
}

impl Shared {
    /// A new shared state.
    pub fn new(live: Live) -> Shared {
        let (updates, _) = broadcast::channel(1024);
        Shared {
            live: Arc::new(RwLock::new(live)),
            updates,
            journal: None,
            records: None,
            paging: None,
            outputs: crate::outputs::Handle::default(),
        }
    }

    /// The same state with the site's outputs (set before the handle is cloned, as
    /// for the journal).
    pub fn with_outputs(mut self, outputs: crate::outputs::Handle) -> Shared {
        self.outputs = outputs;
        self
    }

    /// The same state with the journal the API reads. Set it before the handle is
    /// cloned for the web server: clones made earlier do not see it.
    pub fn with_journal(mut self, journal: Journal) -> Shared {
        self.journal = Some(journal);
        self
    }

    /// The same state with the site information records need. Set it before the
    /// handle is cloned for the web server.
    pub fn with_records(mut self, records: crate::records::SiteInfo) -> Shared {
        self.records = Some(std::sync::Arc::new(records));
        self
    }

    /// Read the state; a poisoned lock (a panic elsewhere) still gives the data.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Live> {
        self.live.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write the state.
    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, Live> {
        self.live.write().unwrap_or_else(|e| e.into_inner())
    }
}
