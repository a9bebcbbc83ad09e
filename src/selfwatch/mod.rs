//! The gateway watches itself: its clock against NTP servers (Art. 16.6) and the
//! board's health (memory, disk, SD-card wear, CPU temperature and throttling).
//!
//! [`start`] spawns two tasks that measure on their own schedule and leave the latest
//! figures in a [`Watch`]: the clock check (SNTP, [`sntp`], every `[clock] interval_s`)
//! and the board collector ([`board`], every [`BOARD_EVERY`]). The runtime's
//! self-monitor reads the [`Watch`] on the hub's tick ([`Watch::samples`]) and sends the
//! figures as `gateway` points; the default gateway rules alarm on them. The hub never
//! waits on a socket or a file here: both tasks run beside it.
//!
//! Invariants:
//! - A figure nobody measured is not produced: no `[clock]` or no server → no `clock_*`
//!   points; no thermal zone or `vcgencmd` → no temperature or throttling points. A
//!   zero is always a measurement.
//! - Until one check has found the clock within `max_offset_ms` of a server, the clock
//!   is *not known synchronised*: [`Watch::unsynced`] is true, the hub marks every alarm
//!   event `clock_unsynced: true`, and the journal holds a `clock` entry saying so
//!   (with the system time at start). The first check journals what it found
//!   (`synced` or `unsynced`, with the offset), and so does every change after it: the
//!   offset in the first `synced` entry corrects what was stamped before it. Readings are not marked one by one: the
//!   `gateway` device's `clock_synced` reading and the journal give the window
//!   (docs/SELFWATCH.md).
//! - The gateway never sets the system clock; the board's time daemon does.

pub mod board;
pub mod config;
pub mod sntp;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use config::ClockConfig;

use crate::journal::{Journal, Kind as JKind, NewEntry};
use crate::model::{Kind, Quality, Sample, Timestamp, Value};
use crate::points;
use crate::rules::{Condition, RuleSpec};

/// How often the board's figures are collected.
pub const BOARD_EVERY: Duration = Duration::from_secs(10);
/// Attempts per server in one clock check (a single lost datagram is not an outage).
pub const ATTEMPTS: u32 = 2;
/// Before this instant (2026-01-01T00:00:00Z, before this release) the system clock is
/// certainly wrong: a board without a real-time clock starts at 1970 or at its last
/// shutdown time until its time daemon syncs.
pub const PLAUSIBLE_FROM_MS: i64 = 1_767_225_600_000;

/// The last clock check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClockStatus {
    /// A check has completed.
    pub checked: bool,
    /// Some server gave a usable answer.
    pub reachable: bool,
    /// The chosen server's time minus ours, ms.
    pub offset_ms: Option<f64>,
    /// The chosen server's stratum.
    pub stratum: Option<u8>,
    /// The chosen server.
    pub server: Option<String>,
    /// Reachable and within `max_offset_ms`.
    pub synced: bool,
    /// Why no server was usable (each server's error).
    pub errors: Vec<String>,
}

#[derive(Debug, Default)]
struct Inner {
    /// `None`: the clock is not checked.
    clock: Option<ClockStatus>,
    board: board::Board,
}

/// The latest figures, shared between the measuring tasks and the self-monitor.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    inner: Arc<Mutex<Inner>>,
}

impl Watch {
    /// A watch with nothing measured and the clock not checked.
    pub fn new() -> Watch {
        Watch::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last clock check (`None`: the clock is not checked).
    pub fn clock(&self) -> Option<ClockStatus> {
        self.lock().clock.clone()
    }

    /// The last board figures.
    pub fn board(&self) -> board::Board {
        self.lock().board.clone()
    }

    /// The clock is checked and not (yet) known synchronised: events are marked.
    pub fn unsynced(&self) -> bool {
        self.lock().clock.as_ref().is_some_and(|c| !c.synced)
    }

    /// The gateway points measured so far, as samples of the `gateway` device.
    pub fn samples(&self) -> Vec<Sample> {
        let inner = self.lock();
        let mut out = Vec::new();
        let mut num = |name: &str, v: Option<f64>| {
            if let (Some(point), Some(v)) = (points::lookup(Kind::Gateway, name), v) {
                out.push(Sample {
                    point,
                    value: Some(Value::Number(v)),
                    quality: Quality::Good,
                });
            }
        };
        let b = &inner.board;
        num("memory_available_pct", b.memory_available_pct);
        num(
            "memory_available_mib",
            b.memory_available_mib.map(f64::round),
        );
        num("disk_free_pct", b.disk_free_pct);
        num("disk_free_mib", b.disk_free_mib.map(f64::round));
        num("disk_written_mib_per_day", b.disk_written_mib_per_day);
        num("cpu_temperature_c", b.cpu_temperature_c);
        if let Some(c) = &inner.clock
            && c.checked
        {
            num(
                "clock_offset_ms",
                c.offset_ms.map(|v| (v * 10.0).round() / 10.0),
            );
            num("clock_stratum", c.stratum.map(f64::from));
        }
        let mut flag = |name: &str, v: Option<bool>| {
            if let (Some(point), Some(v)) = (points::lookup(Kind::Gateway, name), v) {
                out.push(Sample {
                    point,
                    value: Some(Value::Bool(v)),
                    quality: Quality::Good,
                });
            }
        };
        flag("cpu_throttled", b.cpu_throttled);
        flag("undervoltage", b.undervoltage);
        if let Some(c) = &inner.clock {
            // Before the first check: not known synchronised (so `clock_unsynced` runs
            // its 5 min from the start), reachability not yet known.
            flag("clock_synced", Some(c.synced));
            flag("clock_server_reachable", c.checked.then_some(c.reachable));
        }
        out
    }
}

/// The gateway device's rules: the defaults, with the clock offset limits from
/// `[clock] max_offset_ms`.
pub fn rules(clock: Option<&ClockConfig>) -> Vec<RuleSpec> {
    let mut specs = crate::rules::defaults(Kind::Gateway);
    if let Some(c) = clock {
        let limit = c.max_offset_ms as f64;
        for s in &mut specs {
            match (s.name.as_ref(), &mut s.condition) {
                ("clock_behind", Condition::Above { normal, .. }) => *normal = Some(limit),
                ("clock_ahead", Condition::Below { normal, .. }) => *normal = Some(-limit),
                _ => {}
            }
        }
    }
    specs
}

/// Where [`start`] journals the clock's state.
pub struct JournalTo {
    /// The journal.
    pub journal: Journal,
    /// This gateway's name.
    pub gateway: Arc<str>,
}

/// Start the measuring tasks for a gateway whose state lives in `state_dir`.
pub fn start(
    clock: Option<&ClockConfig>,
    state_dir: &std::path::Path,
    journal: JournalTo,
) -> (Watch, Vec<tokio::task::JoinHandle<()>>) {
    let watch = Watch::new();
    let mut tasks = Vec::new();
    let mut collector = board::Collector::new(board::Sources::system(state_dir));
    {
        let watch = watch.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(BOARD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = Instant::now();
                let (c, b) = match tokio::task::spawn_blocking(move || {
                    let b = collector.collect(now);
                    (collector, b)
                })
                .await
                {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::error!(error = %e, "board health collection failed; no more board figures");
                        return;
                    }
                };
                collector = c;
                watch.lock().board = b;
            }
        }));
    }
    match clock {
        None => tracing::warn!(
            "no [clock] section: the gateway's clock is not checked against NTP (Art. 16.6); see docs/SELFWATCH.md"
        ),
        Some(c) if c.servers.is_empty() => tracing::warn!(
            "[clock] names no servers and the board's time daemon has none configured: the clock is not checked (Art. 16.6)"
        ),
        Some(c) => {
            watch.lock().clock = Some(ClockStatus::default());
            let now = Timestamp::now();
            journal_clock(
                &journal,
                now,
                serde_json::json!({
                    "state": "unknown",
                    "system_time": now.rfc3339(),
                    "plausible": now.millis() >= PLAUSIBLE_FROM_MS,
                    "servers": c.servers,
                    "servers_from": c.servers_from,
                    "note": "alarm events are marked clock_unsynced until a check finds the clock synchronised",
                }),
            );
            tasks.push(tokio::spawn(check_loop(c.clone(), watch.clone(), journal)));
        }
    }
    (watch, tasks)
}

fn journal_clock(j: &JournalTo, ts: Timestamp, data: serde_json::Value) {
    let e = NewEntry {
        ts,
        kind: JKind::Clock,
        gateway: j.gateway.clone(),
        device: None,
        data,
    };
    if let Err(e) = j.journal.append(e) {
        tracing::error!(error = %e, "cannot write the clock's state to the journal");
    }
}

/// Ask each server (up to [`ATTEMPTS`] times) and judge the clock.
pub async fn check(c: &ClockConfig) -> ClockStatus {
    let mut best: Option<(String, sntp::Answer)> = None;
    let mut errors = Vec::new();
    for server in &c.servers {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match sntp::query(server, c.timeout).await {
                Ok(a) => {
                    last = None;
                    if best.as_ref().is_none_or(|(_, b)| a.delay_s < b.delay_s) {
                        best = Some((server.clone(), a));
                    }
                    break;
                }
                // An unusable server does not get better by asking again at once.
                Err(e @ sntp::Error::Unusable { .. }) => {
                    last = Some(e);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        errors.extend(last.map(|e| e.to_string()));
    }
    match best {
        Some((server, a)) => {
            let offset_ms = a.offset_s * 1000.0;
            ClockStatus {
                checked: true,
                reachable: true,
                offset_ms: Some(offset_ms),
                stratum: Some(a.stratum),
                server: Some(server),
                synced: offset_ms.abs() <= c.max_offset_ms as f64,
                errors,
            }
        }
        None => ClockStatus {
            checked: true,
            errors,
            ..ClockStatus::default()
        },
    }
}

async fn check_loop(c: ClockConfig, watch: Watch, journal: JournalTo) {
    let mut tick = tokio::time::interval(c.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `None` until the first check: its outcome is always journaled.
    let mut was_synced: Option<bool> = None;
    let mut was_reachable: Option<bool> = None;
    loop {
        tick.tick().await;
        let st = check(&c).await;
        let now = Timestamp::now();
        if was_reachable != Some(st.reachable) {
            if st.reachable {
                tracing::info!(server = ?st.server, "NTP server reachable again");
            } else {
                tracing::warn!(errors = ?st.errors, "no NTP server answers");
            }
        }
        was_reachable = Some(st.reachable);
        if was_synced != Some(st.synced) {
            let data = serde_json::json!({
                "state": if st.synced { "synced" } else { "unsynced" },
                "offset_ms": st.offset_ms.map(|v| (v * 10.0).round() / 10.0),
                "server": st.server,
                "stratum": st.stratum,
                "max_offset_ms": c.max_offset_ms,
                "errors": st.errors,
            });
            if st.synced {
                tracing::info!(offset_ms = ?st.offset_ms, server = ?st.server, "clock synchronised");
            } else {
                tracing::warn!(offset_ms = ?st.offset_ms, errors = ?st.errors, "clock no longer known synchronised");
            }
            journal_clock(&journal, now, data);
            was_synced = Some(st.synced);
        }
        tracing::debug!(?st, "clock checked");
        watch.lock().clock = Some(st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_measured_nothing_produced() {
        let w = Watch::new();
        assert!(w.samples().is_empty());
        assert!(!w.unsynced(), "an unchecked clock marks nothing");
        // Checked but before the first answer: not known synchronised.
        w.lock().clock = Some(ClockStatus::default());
        assert!(w.unsynced());
        let s = w.samples();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].point.name, "clock_synced");
        assert_eq!(s[0].value, Some(Value::Bool(false)));
    }

    #[test]
    fn clock_and_board_figures_become_samples() {
        let w = Watch::new();
        w.lock().clock = Some(ClockStatus {
            checked: true,
            reachable: true,
            offset_ms: Some(5012.345),
            stratum: Some(8),
            server: Some("s".into()),
            synced: false,
            errors: vec![],
        });
        w.lock().board.disk_free_pct = Some(42.5);
        let s = w.samples();
        let get = |n: &str| {
            s.iter()
                .find(|x| x.point.name == n)
                .map(|x| x.value.clone())
        };
        assert_eq!(get("clock_offset_ms"), Some(Some(Value::Number(5012.3))));
        assert_eq!(get("clock_stratum"), Some(Some(Value::Number(8.0))));
        assert_eq!(get("clock_server_reachable"), Some(Some(Value::Bool(true))));
        assert_eq!(get("disk_free_pct"), Some(Some(Value::Number(42.5))));
        assert_eq!(get("cpu_temperature_c"), None);
        assert_eq!(get("cpu_throttled"), None);
        // 5 s off: events are marked; once a check finds the clock in step, not.
        assert!(w.unsynced());
        if let Some(c) = w.lock().clock.as_mut() {
            c.synced = true;
        }
        assert!(!w.unsynced());
    }

    #[test]
    fn offset_limits_follow_the_clock_config() {
        let c = ClockConfig {
            servers: vec!["x".into()],
            servers_from: String::new(),
            interval: Duration::from_secs(64),
            max_offset_ms: 250,
            timeout: Duration::from_secs(1),
        };
        let specs = rules(Some(&c));
        let find = |n: &str| {
            specs
                .iter()
                .find(|s| s.name.as_ref() == n)
                .unwrap()
                .condition
                .clone()
        };
        assert!(
            matches!(find("clock_behind"), Condition::Above { normal: Some(v), .. } if v == 250.0)
        );
        assert!(
            matches!(find("clock_ahead"), Condition::Below { normal: Some(v), .. } if v == -250.0)
        );
    }

    /// A real UDP exchange with a server written here that answers 3 s ahead of our
    /// clock (the third-party server test is in tests/it/selfwatch.rs).
    #[tokio::test]
    async fn check_over_loopback_and_unreachable() {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut b = [0u8; 48];
            loop {
                let (n, from) = sock.recv_from(&mut b).await.unwrap();
                assert_eq!(n, 48);
                let now = sntp::NtpTime::from_system(std::time::SystemTime::now()).0 + (3u64 << 32);
                let mut r = [0u8; 48];
                r[0] = 4 << 3 | 4;
                r[1] = 3;
                r[24..32].copy_from_slice(&b[40..48]);
                r[32..40].copy_from_slice(&now.to_be_bytes());
                r[40..48].copy_from_slice(&now.to_be_bytes());
                sock.send_to(&r, from).await.unwrap();
            }
        });
        let mut c = ClockConfig {
            servers: vec![addr.to_string()],
            servers_from: String::new(),
            interval: Duration::from_secs(64),
            max_offset_ms: 1000,
            timeout: Duration::from_millis(500),
        };
        let st = check(&c).await;
        assert!(st.reachable && !st.synced, "{st:?}");
        let off = st.offset_ms.unwrap();
        assert!((off - 3000.0).abs() < 50.0, "{off}");
        assert_eq!(st.stratum, Some(3));
        c.max_offset_ms = 5000;
        assert!(check(&c).await.synced);
        server.abort();
        let _ = server.await;
        let st = check(&c).await;
        assert!(
            !st.reachable && !st.synced && st.offset_ms.is_none(),
            "{st:?}"
        );
        assert_eq!(st.errors.len(), 1, "{st:?}");
    }
}
