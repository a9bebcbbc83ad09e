//! One task per Modbus line (an RS-485 bus, or one TCP connection to a device or to a
//! Modbus TCP gateway in front of RTU devices): the line's devices are polled one
//! request at a time, each on its own schedule.
//!
//! What must stay true:
//!
//! - **Requests on a line never overlap.** The task owns the link; a device's reads run
//!   to completion (or to their timeouts) before the next device's.
//! - **Each device keeps its own fixed-rate grid** (`start + k × poll_interval`, where
//!   `start` is the line's start offset, see [`crate::sources::stagger`]). A
//!   tick that is missed because the line was busy is skipped, not fired back to back,
//!   so readings stay equally spaced.
//! - **Healthy devices first.** Devices due at the same instant are polled in config
//!   order, except that devices whose last tick failed go last: a dead slave's timeout
//!   delays only what comes after it on the same tick, which is nothing healthy.
//! - **The link is reopened, backing off.** When the link fails (connection refused or
//!   reset, port gone: EOF/EIO after an unplug), every device's points get the link's
//!   quality on their own ticks without traffic, and the link is reopened on a tick at
//!   most every `min(shortest interval × 2^(n-2), cap)` after `n` consecutive failures;
//!   the cap is [`super::station::MAX_BACKOFF`] for TCP and [`super::rtu::REOPEN_MAX`]
//!   for a serial port (opening a local path is cheap; an unplugged adapter should come
//!   back within a second of being plugged in). Opening is logged once per change.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::station::{BusDevice, Link, Station};
use crate::model::{Poll, Quality};

/// Link state, for backoff and logging once per change.
struct LinkState {
    failures: u32,
    retry_at: Instant,
    quality: Quality,
    detail: String,
    /// Last logged state: `None` never opened, `Some(true)` open, `Some(false)` failing.
    logged: Option<bool>,
}

/// Run a line until the receiver is dropped.
pub(crate) async fn run<L: Link>(
    mut link: L,
    devices: Vec<BusDevice>,
    max_backoff: Duration,
    offset: Duration,
    tx: mpsc::Sender<Poll>,
) {
    if devices.is_empty() {
        return;
    }
    let name: Arc<str> = Arc::from(link.name());
    let mut stations: Vec<Station> = devices
        .into_iter()
        .map(|d| Station::new(d, Arc::clone(&name)))
        .collect();
    let base = stations
        .iter()
        .map(|s| s.dev.poll_interval)
        .min()
        .unwrap_or(Duration::from_secs(1));
    let open_timeout = stations
        .iter()
        .map(|s| s.dev.timeout)
        .max()
        .unwrap_or(Duration::from_secs(1));
    let start = Instant::now() + offset;
    let mut due: Vec<Instant> = vec![start; stations.len()];
    let mut ls = LinkState {
        failures: 0,
        retry_at: start,
        quality: Quality::CommError,
        detail: "not opened yet".into(),
        logged: None,
    };
    tracing::debug!(line = %name, devices = stations.len(), "modbus line started");
    loop {
        // Earliest due; at equal times healthy devices first, then config order.
        let Some(i) = (0..stations.len()).min_by_key(|&i| (due[i], stations[i].failing(), i))
        else {
            return;
        };
        tokio::time::sleep_until(due[i]).await;

        if !link.is_open() && Instant::now() >= ls.retry_at {
            match link.open(open_timeout).await {
                Ok(()) => {
                    if ls.logged != Some(true) {
                        tracing::info!(line = %name, "modbus line open");
                        ls.logged = Some(true);
                    }
                    ls.failures = 0;
                }
                Err((q, detail)) => failed(&mut ls, &name, q, detail, base, max_backoff),
            }
        }
        let poll = if link.is_open() {
            let tick = stations[i].tick(&mut link).await;
            if let Some((q, detail)) = tick.link_failure {
                link.close();
                failed(&mut ls, &name, q, detail, base, max_backoff);
            }
            tick.poll
        } else {
            stations[i].offline(ls.quality, &ls.detail)
        };

        // A generator that starts is polled fast until rated (sources/modbus/fastpoll.rs).
        let interval = stations[i].interval_after(&poll);
        due[i] = next_due(due[i], interval, Instant::now());
        if tx.send(poll).await.is_err() {
            tracing::debug!(line = %name, "modbus line stopped: receiver gone");
            return;
        }
    }
}

fn failed(
    ls: &mut LinkState,
    name: &str,
    q: Quality,
    detail: String,
    base: Duration,
    cap: Duration,
) {
    ls.failures = ls.failures.saturating_add(1);
    ls.retry_at = Instant::now() + backoff(ls.failures, base, cap);
    if ls.logged != Some(false) {
        tracing::warn!(line = %name, error = %detail, "modbus line failed: reopening it, backing off");
        ls.logged = Some(false);
    } else {
        tracing::debug!(line = %name, error = %detail, "modbus line still failing");
    }
    ls.quality = q;
    ls.detail = detail;
}

/// Wait before reopening after `failures` consecutive failures.
pub(crate) fn backoff(failures: u32, base: Duration, cap: Duration) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let factor = 1u32 << (failures - 2).min(16);
    base.saturating_mul(factor).min(cap)
}

/// The first point of the grid `due + k × interval` after `now` (k ≥ 1).
pub(crate) fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now {
        return next;
    }
    let behind = now.duration_since(due).as_nanos();
    let step = interval.as_nanos().max(1);
    let k = behind / step + 1;
    due + Duration::from_nanos(u64::try_from(step * k).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_ticks_are_skipped_and_the_grid_is_kept() {
        let t0 = Instant::now();
        let i = Duration::from_millis(100);
        assert_eq!(next_due(t0, i, t0 + Duration::from_millis(5)), t0 + i);
        assert_eq!(
            next_due(t0, i, t0 + Duration::from_millis(250)),
            t0 + Duration::from_millis(300)
        );
        assert_eq!(
            next_due(t0, i, t0 + Duration::from_millis(300)),
            t0 + Duration::from_millis(400)
        );
    }

    #[test]
    fn reopen_backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs(1);
        let seen: Vec<u64> = (1..=7)
            .map(|n| backoff(n, s, Duration::from_secs(10)).as_millis() as u64)
            .collect();
        assert_eq!(seen, vec![0, 1000, 2000, 4000, 8000, 10000, 10000]);
        // A serial port: at most a second between attempts, even for slow devices.
        assert_eq!(
            backoff(9, Duration::from_secs(60), Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert_eq!(
            backoff(9, Duration::from_millis(200), Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
