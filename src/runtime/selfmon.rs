//! The gateway's own readings (`gateway` kind), made by the hub every second.
//!
//! The clock and board figures are measured beside the hub by [`crate::selfwatch`];
//! this only reads their latest values.

use std::sync::Arc;

use crate::config::Site;
use crate::model::{Kind, Poll, Quality, Timestamp};
use crate::points;
use crate::sinks::worker::SinkQueue;

/// Gateway points the sinks report about their far ends (the SMS modem's state). With
/// several sinks reporting the same point, the worst counts: a flag is true only when
/// it is true for every one, a number is the lowest.
fn own_points(queues: &[SinkQueue]) -> Vec<crate::model::Sample> {
    use crate::model::Value;
    let mut merged: Vec<(&'static str, Value)> = Vec::new();
    for (name, v) in queues.iter().flat_map(SinkQueue::own_points) {
        match merged.iter_mut().find(|(n, _)| *n == name) {
            None => merged.push((name, v)),
            Some((_, have)) => {
                *have = match (&*have, &v) {
                    (Value::Bool(a), Value::Bool(b)) => Value::Bool(*a && *b),
                    (Value::Number(a), Value::Number(b)) => Value::Number(a.min(*b)),
                    _ => v,
                }
            }
        }
    }
    merged
        .into_iter()
        .filter_map(|(name, v)| {
            points::lookup(Kind::Gateway, name).map(|point| crate::model::Sample {
                point,
                value: Some(v),
                quality: Quality::Good,
            })
        })
        .collect()
}

/// The gateway's own readings (`gateway` kind): `buffer_used_pct` (the fullest sink
/// queue, percent of its disk budget) and `uptime_s`. The hub evaluates them every
/// second, so `buffer_high` is raised within a second of crossing 80 %, and queues
/// them for the sinks every [`SelfMonitor::EVERY`] ticks.
pub(super) struct SelfMonitor {
    pub(super) device: crate::model::Device,
    started: std::time::Instant,
    ticks: u64,
    /// Clock and board figures (src/selfwatch/).
    pub(super) watch: crate::selfwatch::Watch,
    /// Whether the configured state directory is in use (false: a volatile one).
    pub(super) state_ok: bool,
    /// Sirens and beacons (their points `outputs_ok`, `output_failures`).
    pub(super) outputs: crate::outputs::Handle,
    /// False while the web console is closed for an unsafe setting (src/web/auth.rs).
    pub(super) web_console_ok: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The durable state whose writes are watched (`state_writes_ok`, `disk_full`).
    pub(super) storage: Option<(crate::buffer::Buffer, crate::journal::Journal)>,
}

/// How a `/healthz` reason about failing writes starts (replaced as it changes).
const WRITES_FAILING: &str = "writes to the state disk fail";

impl SelfMonitor {
    /// Ticks between two gateway readings sent to the sinks.
    pub(super) const EVERY: u64 = 10;

    pub(super) fn new(site: &Site, watch: crate::selfwatch::Watch) -> SelfMonitor {
        let taken = |id: &str| site.devices.iter().any(|d| d.meta.id.as_ref() == id);
        let id = if taken("gateway") {
            "gateway-self"
        } else {
            "gateway"
        };
        SelfMonitor {
            state_ok: true,
            outputs: crate::outputs::Handle::default(),
            web_console_ok: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            storage: None,
            device: Arc::new(crate::model::DeviceMeta {
                id: Arc::from(id),
                name: "dc-gateway".into(),
                label: None,
                room: Arc::from("gateway"),
                kind: Kind::Gateway,
            }),
            started: std::time::Instant::now(),
            ticks: 0,
            watch,
        }
    }

    /// Why the queues or the journal cannot write, if they cannot (a full or failing
    /// disk). Journal entries held in memory are written again first.
    pub(super) fn write_failure(&self) -> Option<String> {
        let (buffer, journal) = self.storage.as_ref()?;
        if journal.held_entries() > 0
            && let Err(e) = journal.retry_held()
        {
            tracing::debug!(error = %e, "journal entries still held in memory");
        }
        let b = buffer
            .write_failure()
            .map(|why| format!("sink queues: {why}"));
        let j = journal.write_failure().map(|why| {
            format!(
                "journal: {why} ({} entries held in memory)",
                journal.held_entries()
            )
        });
        match (b, j) {
            (None, None) => None,
            (b, j) => Some(b.into_iter().chain(j).collect::<Vec<_>>().join("; ")),
        }
    }

    /// Keep the `/healthz` reason about failing writes up to date (once a second).
    pub(super) fn mark_degraded(&self, failure: Option<&str>, shared: &crate::state::Shared) {
        let line = failure.map(|why| {
            format!("{WRITES_FAILING} ({why}); records are held in memory within a budget and committed once there is space")
        });
        let has = shared
            .read()
            .degraded
            .iter()
            .find(|l| l.starts_with(WRITES_FAILING))
            .cloned();
        if has != line {
            let mut live = shared.write();
            live.degraded.retain(|l| !l.starts_with(WRITES_FAILING));
            live.degraded.extend(line);
        }
    }

    /// This second's reading, and whether it goes to the sinks.
    pub(super) fn poll(
        &mut self,
        now: Timestamp,
        queues: &[SinkQueue],
        journal_pct: f64,
        maintenance_overrun: bool,
    ) -> (Poll, bool) {
        let writes_ok = self.write_failure().is_none();
        let used = queues.iter().map(SinkQueue::used_pct).fold(0.0, f64::max);
        let sample = |name: &str, value: crate::model::Value| {
            points::lookup(Kind::Gateway, name).map(|point| crate::model::Sample {
                point,
                value: Some(value),
                quality: Quality::Good,
            })
        };
        let num = |name: &str, v: f64| sample(name, crate::model::Value::Number(v));
        let flag = |name: &str, b: bool| sample(name, crate::model::Value::Bool(b));
        let failing = queues.iter().map(|q| q.failing_s(now)).fold(0.0, f64::max);
        let auth_failed = queues.iter().any(SinkQueue::auth_failed);
        let samples = [
            num("buffer_used_pct", (used * 10.0).round() / 10.0),
            num("uptime_s", self.started.elapsed().as_secs() as f64),
            num("sink_failing_s", failing.round()),
            num("journal_used_pct", (journal_pct * 10.0).round() / 10.0),
            flag("sink_auth_failed", auth_failed),
            flag("state_dir_ok", self.state_ok),
            flag("state_writes_ok", writes_ok),
            flag("maintenance_overrun", maintenance_overrun),
            flag(
                "web_console_ok",
                self.web_console_ok
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
        ]
        .into_iter()
        .flatten()
        .chain(own_points(queues))
        .chain(self.watch.samples())
        .chain(self.outputs.samples())
        .collect();
        self.ticks += 1;
        let send = self.ticks % Self::EVERY == 1;
        (
            Poll {
                device: self.device.clone(),
                ts: now,
                comm_ok: true,
                samples,
            },
            send,
        )
    }
}
