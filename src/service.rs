//! The gateway as a systemd service: `READY=1`, `WATCHDOG=1` and `STATUS=` over the
//! `sd_notify(3)` protocol (a datagram to `$NOTIFY_SOCKET`), driven by the hub.
//!
//! The unit (`config/systemd/dc-gateway.service`) is `Type=notify` with `WatchdogSec=`:
//!
//! - **READY** is sent once every configured device has delivered its first poll to the
//!   hub (answered or not: a dead device is an alarm, not a reason to stay "starting"),
//!   or [`READY_AT_THE_LATEST`] after the hub started, whichever comes first. The live
//!   state the page shows already holds those first polls when READY goes out.
//! - **WATCHDOG** pings come from the hub's own loop, on its one-second tick, and only
//!   from there: a hub that stops turning (a deadlock, a blocking call, a runaway loop)
//!   stops the pings and systemd restarts the gateway. Sinks drain their queues in
//!   their own tasks, so an InfluxDB or broker outage never delays the hub: it is an
//!   alarm (`sink_failing`), never a restart.
//! - **STATUS** is a one-line summary (devices answering, active alarms, sinks that are
//!   failing), sent when it changes; `systemctl status dc-gateway` shows it.
//!
//! The `sd-notify` crate gives the message format and reads `$WATCHDOG_USEC`; the
//! datagram is sent here, so that an abstract socket (`@name`) works as well as a path.
//! Without `$NOTIFY_SOCKET` (not under systemd) nothing is sent; without
//! `$WATCHDOG_USEC` (no `WatchdogSec=`) no pings are sent. A send that fails is logged
//! once and counted, and never stops the hub.
//!
//! Test hook (for the integration tests only, never set in the unit): with
//! `DCGW_TEST_STALL_HUB_AFTER_S=N` in the environment the hub stops turning N seconds
//! after it started, as a hung hub would, while every other task goes on. It proves the
//! watchdog pings come from the hub's loop. The gateway logs a warning at start when
//! the variable is set.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::model::Level;
use crate::state::{Live, Shared};

/// READY is sent at the latest this long after the hub started, even if some device
/// has not delivered its first poll yet (a bus of dead slaves backs off for longer).
/// The unit's `TimeoutStartSec=` is above it.
pub const READY_AT_THE_LATEST: Duration = Duration::from_secs(60);

/// Environment variable of the test hook that stalls the hub (see the module docs).
pub const STALL_HUB_ENV: &str = "DCGW_TEST_STALL_HUB_AFTER_S";

/// The hub's side of the service manager protocol. Create one in the hub; call
/// [`Service::polled`] for every poll the hub has applied and [`Service::tick`] on
/// every tick of the hub's loop.
#[derive(Debug)]
pub struct Service {
    /// `$NOTIFY_SOCKET`, when set.
    socket: Option<std::ffi::OsString>,
    started: Instant,
    /// One flag per configured device: its first poll has arrived.
    polled: Vec<bool>,
    unpolled: usize,
    ready: bool,
    /// `$WATCHDOG_USEC`, when the unit asks for pings.
    watchdog: Option<Duration>,
    pings: u64,
    last_status: String,
    stall_after: Option<Duration>,
    send_failed: bool,
}

impl Service {
    /// The service state for a hub with `devices` configured devices, from the
    /// environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`, and the test hook).
    pub fn from_env(devices: usize) -> Service {
        let stall_after = std::env::var(STALL_HUB_ENV)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        if let Some(after) = stall_after {
            tracing::warn!(
                after_s = after.as_secs_f64(),
                "{STALL_HUB_ENV} is set: the hub will stall on purpose (a test hook; never set it in production)"
            );
        }
        let watchdog = sd_notify::watchdog_enabled();
        let socket = std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty());
        if socket.is_some() {
            tracing::info!(
                watchdog_s = watchdog.map(|w| w.as_secs_f64()),
                "running under systemd: READY after the first polls, watchdog pings from the hub"
            );
        }
        Service {
            socket,
            started: Instant::now(),
            polled: vec![false; devices],
            unpolled: devices,
            ready: false,
            watchdog,
            pings: 0,
            last_status: String::new(),
            stall_after,
            send_failed: false,
        }
    }

    /// Whether READY has been sent (or would have been, without a socket).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Watchdog pings sent so far.
    pub fn pings(&self) -> u64 {
        self.pings
    }

    /// The hub applied a poll of device `index` (its position in the config; `None` for
    /// a poll of no configured device) to the live state. Sends READY with the first
    /// STATUS once every device has been polled.
    pub fn polled(&mut self, index: Option<usize>, shared: &Shared) {
        if self.ready {
            return;
        }
        if let Some(seen) = index.and_then(|i| self.polled.get_mut(i))
            && !*seen
        {
            *seen = true;
            self.unpolled -= 1;
        }
        if self.unpolled == 0 {
            self.become_ready(shared);
        }
    }

    /// One turn of the hub's tick: READY if it is overdue, a watchdog ping, STATUS if
    /// the summary changed. Under the test hook, never returns once the stall is due.
    pub async fn tick(&mut self, shared: &Shared) {
        if let Some(after) = self.stall_after
            && self.started.elapsed() >= after
        {
            tracing::warn!("{STALL_HUB_ENV}: the hub stalls now (test hook)");
            std::future::pending::<()>().await;
        }
        if !self.ready && (self.unpolled == 0 || self.started.elapsed() >= READY_AT_THE_LATEST) {
            if self.unpolled > 0 {
                tracing::warn!(
                    waiting = self.unpolled,
                    "ready without a first poll from every device"
                );
            }
            self.become_ready(shared);
        }
        if self.watchdog.is_some() {
            self.send(&[NotifyState::Watchdog]);
            self.pings += 1;
        }
        if self.ready {
            let status = summary(&shared.read());
            if status != self.last_status {
                self.send(&[NotifyState::Status(&status)]);
                self.last_status = status;
            }
        }
    }

    fn become_ready(&mut self, shared: &Shared) {
        self.ready = true;
        let status = summary(&shared.read());
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        tracing::info!(status = %status, "ready");
        self.last_status = status;
    }

    fn send(&mut self, state: &[NotifyState<'_>]) {
        let Some(socket) = self.socket.as_deref() else {
            return;
        };
        match send_to(socket, state) {
            Ok(()) => self.send_failed = false,
            Err(e) => {
                if !self.send_failed {
                    tracing::error!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
                }
                self.send_failed = true;
                crate::metrics::get()
                    .sink_errors
                    .get_or_create(&crate::metrics::labels(&[
                        ("sink", "systemd"),
                        ("reason", "notify"),
                    ]))
                    .inc();
            }
        }
    }
}

/// Send `state` as one datagram to the service manager's socket `socket`: a path, or
/// an abstract socket written `@name` (which systemd uses in some setups).
fn send_to(socket: &std::ffi::OsStr, state: &[NotifyState<'_>]) -> std::io::Result<()> {
    use std::os::unix::net::UnixDatagram;
    let msg: String = state.iter().map(|s| format!("{s}\n")).collect();
    let sock = UnixDatagram::unbound()?;
    #[cfg(target_os = "linux")]
    if let Some(name) = socket.as_encoded_bytes().strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.connect_addr(&addr)?;
        let n = sock.send(msg.as_bytes())?;
        return whole(n, &msg);
    }
    sock.connect(socket)?;
    let n = sock.send(msg.as_bytes())?;
    whole(n, &msg)
}

fn whole(n: usize, msg: &str) -> std::io::Result<()> {
    if n == msg.len() {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            "incomplete datagram",
        ))
    }
}

/// The one-line STATUS: devices answering, active alarms, failing sinks.
/// Example: `14/15 devices answering; 2 alarms (1 serious); influx failing 35 s, 1200 queued`.
pub fn summary(live: &Live) -> String {
    let answering = live.devices.iter().filter(|d| d.comm_ok).count();
    let mut s = format!("{answering}/{} devices answering", live.devices.len());
    let serious = live
        .alarms
        .iter()
        .filter(|a| a.level == Level::Serious)
        .count();
    match live.alarms.len() {
        0 => s.push_str("; no alarms"),
        n => s.push_str(&format!("; {n} alarms ({serious} serious)")),
    }
    let failing: Vec<String> = live
        .sinks
        .iter()
        .filter(|k| !k.connected || k.failing_s > 0.0)
        .map(|k| {
            // Whole tens of seconds, so STATUS changes every 10 s at most per sink.
            let secs = (k.failing_s / 10.0).floor() * 10.0;
            format!("{} failing {secs:.0} s, {} queued", k.name, k.queued)
        })
        .collect();
    if failing.is_empty() {
        if !live.sinks.is_empty() {
            s.push_str("; sinks ok");
        }
    } else {
        s.push_str("; ");
        s.push_str(&failing.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SinkStatus;

    #[test]
    fn summary_names_failing_sinks_and_counts_serious_alarms() {
        let mut live = Live::default();
        assert_eq!(summary(&live), "0/0 devices answering; no alarms");
        live.sinks.push(SinkStatus {
            name: "influx".into(),
            connected: false,
            failing_s: 37.0,
            queued: 12,
            ..Default::default()
        });
        live.sinks.push(SinkStatus {
            name: "mqtt".into(),
            connected: true,
            ..Default::default()
        });
        assert_eq!(
            summary(&live),
            "0/0 devices answering; no alarms; influx failing 30 s, 12 queued"
        );
        live.sinks.remove(0);
        assert_eq!(summary(&live), "0/0 devices answering; no alarms; sinks ok");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_notify_socket_and_a_path_are_reached() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let name = format!("dcgw-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        send_to(
            std::ffi::OsStr::new(&format!("@{name}")),
            &[NotifyState::Status("abstract")],
        )
        .unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=abstract\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        send_to(
            path.as_os_str(),
            &[NotifyState::Ready, NotifyState::Watchdog],
        )
        .unwrap();
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nWATCHDOG=1\n");
    }

    #[test]
    fn ready_waits_for_every_device_once() {
        let shared = Shared::new(Live::default());
        let mut s = Service::from_env(2);
        s.polled(Some(0), &shared);
        s.polled(Some(0), &shared);
        s.polled(None, &shared);
        assert!(!s.is_ready(), "one device of two polled");
        s.polled(Some(1), &shared);
        assert!(s.is_ready());
        // A site without devices is ready at its first tick.
        let mut empty = Service::from_env(0);
        assert!(!empty.is_ready());
        futures_util::FutureExt::now_or_never(empty.tick(&shared));
        assert!(empty.is_ready());
    }
}
