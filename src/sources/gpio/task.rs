//! One task per GPIO device: it holds the device's lines and turns a change of a line
//! into a `Poll` as soon as the line is steady, with the kernel's timestamp of the
//! first edge; between changes it reads the lines once per poll interval ("still
//! alive"), so staleness and `comm_lost` keep their meaning.
//!
//! Invariants: every poll goes through [`Health::finish`]; a bouncing contact gives one
//! poll per debounced change (edges closer together than the debounce time restart
//! its timer, up to one poll interval; a burst that ends where it started gives none); a line that cannot be
//! requested or read makes a `comm_error` poll every interval until it can, and the
//! lines are requested again after a failure.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::backend::{Backend, Lines};
use super::config::GpioConnection;
use crate::model::{Device, Poll, Quality, Sample, Timestamp, Value};
use crate::sources::health::Health;

/// A GPIO device as its task sees it.
#[derive(Debug, Clone)]
pub struct GpioDevice {
    /// The logical device.
    pub meta: Device,
    /// Its lines.
    pub conn: GpioConnection,
    /// Still-alive read interval.
    pub poll_interval: Duration,
}

impl GpioDevice {
    fn consumer(&self) -> String {
        format!("dc-gateway:{}", self.meta.id)
    }

    fn peer(&self) -> String {
        self.conn
            .lines
            .iter()
            .map(|(_, l)| l.at.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn samples(&self, values: Option<&[bool]>) -> Vec<Sample> {
        self.conn
            .lines
            .iter()
            .enumerate()
            .map(|(i, (point, _))| match values {
                Some(v) => Sample {
                    point,
                    value: Some(Value::Bool(v[i])),
                    quality: Quality::Good,
                },
                None => Sample {
                    point,
                    value: None,
                    quality: Quality::CommError,
                },
            })
            .collect()
    }
}

/// Start the device's task.
pub fn spawn(
    dev: GpioDevice,
    backend: Arc<dyn Backend>,
    tx: mpsc::Sender<Poll>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(dev, backend, tx))
}

/// A wall-clock time from the kernel, in ms; the current time if it is not plausible
/// (a kernel without realtime event timestamps gives monotonic ones).
fn edge_time(ts_ns: u64) -> Timestamp {
    let now = Timestamp::now();
    let t = Timestamp((ts_ns / 1_000_000) as i64);
    if (now.millis() - t.millis()).abs() > 60_000 {
        now
    } else {
        t
    }
}

async fn run(dev: GpioDevice, backend: Arc<dyn Backend>, tx: mpsc::Sender<Poll>) {
    let mut health = Health::new(dev.meta.clone(), "gpio device", dev.peer());
    let mut tick = tokio::time::interval(dev.poll_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        let lines = match backend.request(
            &dev.consumer(),
            &dev.conn
                .lines
                .iter()
                .map(|(_, l)| l.clone())
                .collect::<Vec<_>>(),
        ) {
            Ok(l) => l,
            Err(e) => {
                let p = health.finish(
                    dev.samples(None),
                    false,
                    Some(("comm_error", e.to_string())),
                );
                if tx.send(p).await.is_err() {
                    return;
                }
                tick.tick().await;
                continue;
            }
        };
        match watch(&dev, lines, &mut health, &mut tick, &tx).await {
            Stop::Closed => return,
            Stop::Failed(e) => {
                let p = health.finish(dev.samples(None), false, Some(("comm_error", e)));
                if tx.send(p).await.is_err() {
                    return;
                }
                tick.tick().await;
            }
        }
    }
}

enum Stop {
    /// The hub is gone.
    Closed,
    /// The lines failed; request them again.
    Failed(String),
}

async fn watch(
    dev: &GpioDevice,
    mut lines: Box<dyn Lines>,
    health: &mut Health,
    tick: &mut tokio::time::Interval,
    tx: &mpsc::Sender<Poll>,
) -> Stop {
    let mut last: Option<Vec<bool>> = None;
    loop {
        let edge_ts = tokio::select! {
            _ = tick.tick() => None,
            e = lines.next_edge() => match e {
                Ok(e) => Some(e.ts_ns),
                Err(e) => return Stop::Failed(e.to_string()),
            },
        };
        if let Some(first) = edge_ts {
            // Debounce: wait until the lines have been steady for the debounce time,
            // but never longer than a poll interval: a line that never settles (a
            // chattering contact, induced hum) is still read and reported once per
            // interval rather than starving the device into comm_lost.
            let latest = Instant::now() + dev.poll_interval;
            let mut until = (Instant::now() + dev.conn.debounce).min(latest);
            while !dev.conn.debounce.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    e = lines.next_edge() => match e {
                        Ok(_) => until = (Instant::now() + dev.conn.debounce).min(latest),
                        Err(e) => return Stop::Failed(e.to_string()),
                    },
                }
            }
            let values = match lines.values() {
                Ok(v) => v,
                Err(e) => return Stop::Failed(e.to_string()),
            };
            if last.as_ref() == Some(&values) {
                // Bounced back to where it was: no change.
                continue;
            }
            let mut p = health.finish(dev.samples(Some(&values)), true, None);
            p.ts = edge_time(first);
            last = Some(values);
            if tx.send(p).await.is_err() {
                return Stop::Closed;
            }
        } else {
            let values = match lines.values() {
                Ok(v) => v,
                Err(e) => return Stop::Failed(e.to_string()),
            };
            let p = health.finish(dev.samples(Some(&values)), true, None);
            last = Some(values);
            if tx.send(p).await.is_err() {
                return Stop::Closed;
            }
        }
    }
}
