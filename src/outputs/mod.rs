//! Outputs: sirens and beacons driven by the alarm state, on a GPIO line or a coil of
//! a Modbus TCP I/O module (ADAM-6050 DO). See docs/GPIO.md, "Outputs".
//!
//! - [`config`]: `[[outputs]]` as written and validated.
//! - [`logic`]: which output should be on (pure: listed alarms and silences in, one
//!   bool per output out).
//! - [`port`]: one write and its read-back per output.
//!
//! One task drives every output. It wakes when the listed alarms change (the live
//! state's `Update::Alarms`), when a `silence` command arrives, and every
//! [`VERIFY_EVERY`] besides, so an output that lost its state (a module power-cycled,
//! someone switching a DO by hand) is driven again. Invariants:
//! - every write is read back; an error or a read-back that differs counts as a
//!   failure (`dcgw_output_failures`, the gateway point `output_failures`), sets the
//!   gateway point `outputs_ok` false (the serious gateway alarm `output_fault`) and is
//!   retried every [`RETRY_EVERY`] until the output holds its state;
//! - the task never blocks the hub: the hub only hands it silences and the live state;
//! - on an orderly stop every output is set to its `on_stop` state (default off);
//!   a gateway that dies leaves the output as it was (docs/GPIO.md, fail-safe).

pub mod config;
pub mod logic;
pub mod port;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot};

pub use config::{Drive, Driver, OnStop, OutputConfig, RawOutput};
use logic::Silence;

use crate::model::{Kind, Quality, Sample, Value};
use crate::state::{ActiveAlarm, Shared, Update};
use tokio::sync::broadcast::error::RecvError;

/// Outputs are written and read back at least this often, changes or not.
pub const VERIFY_EVERY: Duration = Duration::from_secs(5);
/// A failed output is tried again this often.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// One output's state as the task last saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    /// Output id.
    pub id: String,
    /// Whether the alarm state wants it on.
    pub wanted: bool,
    /// The state read back after the last write (`None`: not known).
    pub held: Option<bool>,
    /// The last write succeeded and the read-back matched.
    pub ok: bool,
    /// Failed writes and read-backs since the start.
    pub failures: u64,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Inner {
    outputs: Vec<OutputConfig>,
    /// Device id → room id (for the room filter).
    rooms: HashMap<String, String>,
    silence: Mutex<Silence>,
    status: Mutex<Vec<Status>>,
    wake: Notify,
    stop: Mutex<Option<mpsc::Sender<oneshot::Sender<()>>>>,
}

/// The site's outputs, shared by the hub (silences, the gateway points) and the task
/// that drives them. Cheap to clone; a site without outputs has an empty handle.
#[derive(Clone, Default)]
pub struct Handle {
    inner: Option<Arc<Inner>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handle {
    /// The outputs of a site.
    pub fn new(site: &crate::config::Site) -> Handle {
        if site.outputs.is_empty() {
            return Handle::default();
        }
        let rooms = site
            .devices
            .iter()
            .map(|d| (d.meta.id.to_string(), d.meta.room.to_string()))
            .collect();
        Handle::with(site.outputs.clone(), rooms)
    }

    /// Outputs with a device → room map (tests).
    pub fn with(outputs: Vec<OutputConfig>, rooms: HashMap<String, String>) -> Handle {
        let status = outputs
            .iter()
            .map(|o| Status {
                id: o.id.clone(),
                ..Default::default()
            })
            .collect();
        Handle {
            inner: Some(Arc::new(Inner {
                outputs,
                rooms,
                silence: Mutex::new(Silence::default()),
                status: Mutex::new(status),
                wake: Notify::new(),
                stop: Mutex::new(None),
            })),
        }
    }

    /// Silence the sirens `target` names (`all` or empty: every siren; else an output
    /// id) for the alarms sounding them now. The answer for the command's reply.
    pub fn silence(&self, alarms: &[ActiveAlarm], target: &str) -> Result<String, String> {
        let Some(inner) = &self.inner else {
            return Err("no siren is configured".into());
        };
        let room = |d: &str| inner.rooms.get(d).cloned();
        let n = lock(&inner.silence).silence(&inner.outputs, alarms, &room, target.trim())?;
        inner.wake.notify_one();
        Ok(match n {
            0 => "no siren was sounding".to_string(),
            1 => "1 siren silenced".to_string(),
            n => format!("{n} sirens silenced"),
        })
    }

    /// Every output's state.
    pub fn status(&self) -> Vec<Status> {
        self.inner
            .as_ref()
            .map(|i| lock(&i.status).clone())
            .unwrap_or_default()
    }

    /// The gateway's points about its outputs (none without outputs): `outputs_ok`
    /// (every output holds the state written) and `output_failures`.
    pub fn samples(&self) -> Vec<Sample> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        let st = lock(&inner.status);
        // Before the first write nothing is known to be wrong.
        let ok = st
            .iter()
            .all(|s| s.ok || (s.held.is_none() && s.failures == 0));
        let failures: u64 = st.iter().map(|s| s.failures).sum();
        [
            ("outputs_ok", Value::Bool(ok)),
            ("output_failures", Value::Number(failures as f64)),
        ]
        .into_iter()
        .filter_map(|(name, v)| {
            crate::points::lookup(Kind::Gateway, name).map(|point| Sample {
                point,
                value: Some(v),
                quality: Quality::Good,
            })
        })
        .collect()
    }

    /// Start the task driving the outputs from the live state (`None` without
    /// outputs). GPIO lines come from `gpio`.
    pub fn spawn(
        &self,
        shared: Shared,
        gpio: Arc<dyn crate::sources::gpio::Backend>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let inner = self.inner.clone()?;
        let (tx, rx) = mpsc::channel(1);
        *lock(&inner.stop) = Some(tx);
        Some(tokio::spawn(run(inner, shared, gpio, rx)))
    }

    /// Orderly stop: every output to its `on_stop` state, waiting at most `timeout`.
    pub async fn stop(&self, timeout: Duration) {
        let Some(inner) = &self.inner else { return };
        let tx = lock(&inner.stop).take();
        if let Some(tx) = tx {
            let (ack, done) = oneshot::channel();
            if tx.send(ack).await.is_ok() && tokio::time::timeout(timeout, done).await.is_err() {
                tracing::warn!("outputs not set to their stop state in time");
            }
        }
    }
}

async fn run(
    inner: Arc<Inner>,
    shared: Shared,
    gpio: Arc<dyn crate::sources::gpio::Backend>,
    mut stop: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let mut ports: Vec<Box<dyn port::Port>> = inner
        .outputs
        .iter()
        .map(|o| port::open(&o.id, &o.driver, gpio.clone()))
        .collect();
    let mut updates = shared.updates.subscribe();
    let room = |d: &str| inner.rooms.get(d).cloned();
    let mut next_verify = tokio::time::Instant::now();
    loop {
        let alarms = shared.read().alarms.clone();
        let want = logic::desired(&inner.outputs, &alarms, &room, &mut lock(&inner.silence));
        let verify = tokio::time::Instant::now() >= next_verify;
        if verify {
            next_verify = tokio::time::Instant::now() + VERIFY_EVERY;
        }
        for (i, p) in ports.iter_mut().enumerate() {
            let (held, ok) = {
                let st = &lock(&inner.status)[i];
                (st.held, st.ok)
            };
            if held == Some(want[i]) && ok && !verify {
                continue;
            }
            let r = p.set(want[i]).await;
            write_result(&inner, i, want[i], r);
        }
        let failing = lock(&inner.status).iter().any(|s| !s.ok);
        let deadline = tokio::time::Instant::now()
            + if failing {
                RETRY_EVERY
            } else {
                next_verify.saturating_duration_since(tokio::time::Instant::now())
            };
        // Wait for a change of the listed alarms (readings of devices do not wake the
        // outputs), a silence, the next check, or the stop.
        loop {
            tokio::select! {
                u = updates.recv() => match u {
                    Ok(Update::Device(_)) => continue,
                    // A lag: updates were missed, the list may have changed.
                    Ok(Update::Alarms) | Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                },
                _ = inner.wake.notified() => break,
                _ = tokio::time::sleep_until(deadline) => break,
                Some(ack) = stop.recv() => {
                    for (i, (p, o)) in ports.iter_mut().zip(&inner.outputs).enumerate() {
                        let target = match o.on_stop {
                            OnStop::Off => false,
                            OnStop::On => true,
                            OnStop::Keep => continue,
                        };
                        let r = p.set(target).await;
                        write_result(&inner, i, target, r);
                    }
                    let _ = ack.send(());
                    return;
                }
            }
        }
    }
}

/// Record the outcome of one write and read-back.
fn write_result(inner: &Inner, i: usize, want: bool, r: Result<bool, port::Error>) {
    let o = &inner.outputs[i];
    let mut all = lock(&inner.status);
    let st = &mut all[i];
    let was_ok = st.ok;
    st.wanted = want;
    let failure = match r {
        Ok(v) if v == want => {
            if st.held != Some(v) {
                tracing::info!(output = %o.id, on = v, "output set");
            }
            st.held = Some(v);
            st.ok = true;
            st.error = None;
            if !was_ok && st.failures > 0 {
                tracing::info!(output = %o.id, "output holds its state again");
            }
            None
        }
        Ok(v) => {
            st.held = Some(v);
            Some((
                "readback",
                format!("wrote {}, read back {}", on_off(want), on_off(v)),
            ))
        }
        Err(e) => {
            st.held = None;
            Some(("write", e.to_string()))
        }
    };
    if let Some((reason, text)) = failure {
        st.ok = false;
        st.failures += 1;
        crate::metrics::get()
            .output_failures
            .get_or_create(&crate::metrics::labels(&[
                ("output", o.id.as_str()),
                ("reason", reason),
            ]))
            .inc();
        if st.error.as_deref() != Some(text.as_str()) {
            tracing::error!(output = %o.id, reason, "output failed: {text}");
        }
        st.error = Some(text);
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

#[cfg(test)]
mod tests;
