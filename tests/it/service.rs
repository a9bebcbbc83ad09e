//! The gateway under a service manager's eyes: the real binary (`dc-gateway demo`) run
//! with `NOTIFY_SOCKET` pointing at a datagram socket this test opened, as systemd
//! does for a `Type=notify` unit with `WatchdogSec=`.
//!
//! What systemd would see: `READY=1` only once the first polls are in the live state;
//! `WATCHDOG=1` about every second from the hub's loop; pings that go on while
//! InfluxDB is unreachable (a sink outage is an alarm, not a restart) and that stop
//! when the hub is stalled on purpose (`DCGW_TEST_STALL_HUB_AFTER_S`, a test hook),
//! while the rest of the process still answers.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::peers::{free_port, http_get, peer_tempdir, tcp_accepts, wait_until};

/// One datagram received on the notify socket.
#[derive(Debug, Clone)]
struct Note {
    at: Instant,
    text: String,
}

/// The service manager's end: a bound datagram socket and a thread collecting what
/// arrives.
struct NotifySocket {
    path: std::path::PathBuf,
    notes: Arc<Mutex<Vec<Note>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let notes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let notes = notes.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        notes.lock().unwrap().push(Note {
                            at: Instant::now(),
                            text,
                        });
                    }
                }
            })
        };
        NotifySocket {
            path,
            notes,
            stop,
            thread: Some(thread),
        }
    }

    fn notes(&self) -> Vec<Note> {
        self.notes.lock().unwrap().clone()
    }

    /// Times of the `WATCHDOG=1` datagrams.
    fn pings(&self) -> Vec<Instant> {
        self.notes()
            .into_iter()
            .filter(|n| n.text.lines().any(|l| l == "WATCHDOG=1"))
            .map(|n| n.at)
            .collect()
    }

    fn ready(&self) -> Option<Note> {
        self.notes()
            .into_iter()
            .find(|n| n.text.lines().any(|l| l == "READY=1"))
    }

    fn statuses(&self) -> Vec<String> {
        self.notes()
            .into_iter()
            .flat_map(|n| {
                n.text
                    .lines()
                    .filter_map(|l| l.strip_prefix("STATUS=").map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `dc-gateway demo` under a notify socket; killed on drop.
struct Demo {
    child: Child,
    web: String,
    log: std::path::PathBuf,
}

impl Demo {
    fn start(
        dir: &Path,
        notify: &NotifySocket,
        influx: Option<&str>,
        stall_after_s: Option<u64>,
    ) -> Demo {
        let port = free_port();
        let log = dir.join("gateway.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dc-gateway"));
        cmd.args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
        ])
        .arg(dir.join("state"))
        .env("NOTIFY_SOCKET", &notify.path)
        // What systemd sets for WatchdogSec=3: the gateway pings from the hub's
        // one-second tick whatever the period.
        .env("WATCHDOG_USEC", "3000000")
        .env_remove("WATCHDOG_PID")
        .env("DCGW_LOG", "info,dc_gateway=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
        if let Some(url) = influx {
            cmd.args(["--influx", url]);
        }
        match stall_after_s {
            Some(s) => cmd.env(dc_gateway::service::STALL_HUB_ENV, s.to_string()),
            None => cmd.env_remove(dc_gateway::service::STALL_HUB_ENV),
        };
        let child = cmd.spawn().expect("start dc-gateway demo");
        let demo = Demo {
            child,
            web: format!("127.0.0.1:{port}"),
            log,
        };
        if let Err(e) = wait_until("demo web server", Duration::from_secs(20), || {
            tcp_accepts(port)
        }) {
            panic!("{e}\n--- gateway log ---\n{}", demo.log());
        }
        demo
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn api(&self, path: &str) -> serde_json::Value {
        http_get(&format!("http://{}{path}", self.web))
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n--- gateway log ---\n{}", self.log()))
            .json()
            .expect("JSON")
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for READY=1; panics with the log after 30 s.
fn wait_ready(notify: &NotifySocket, demo: &Demo) -> Note {
    let mut ready = None;
    let ok = wait_until(
        "READY=1 on the notify socket",
        Duration::from_secs(30),
        || {
            ready = notify.ready();
            ready.is_some()
        },
    );
    if let Err(e) = ok {
        panic!(
            "{e}; received {:?}\n--- gateway log ---\n{}",
            notify.notes(),
            demo.log()
        );
    }
    ready.unwrap()
}

fn max_gap(pings: &[Instant]) -> Duration {
    pings
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[test]
fn ready_after_the_first_polls_and_watchdog_pings_go_on_while_influxdb_is_down() {
    let dir = peer_tempdir("notify-influx-down");
    let notify = NotifySocket::bind(dir.path());
    // A port nothing listens on: the InfluxDB sink fails for the whole test.
    let closed = free_port();
    let mut demo = Demo::start(
        dir.path(),
        &notify,
        Some(&format!("http://127.0.0.1:{closed}?db=facility")),
        None,
    );
    let ready = wait_ready(&notify, &demo);
    // READY means the first polls are in: every device shows values already.
    let readings = demo.api("/api/v1/readings");
    let rows = readings["readings"].as_array().expect("readings array");
    let mut devices: std::collections::BTreeMap<String, usize> = Default::default();
    for r in rows {
        let with_value = usize::from(!r["value"].is_null());
        *devices
            .entry(r["device"].as_str().unwrap().to_string())
            .or_default() += with_value;
    }
    assert!(devices.len() >= 3, "the demo site has devices: {devices:?}");
    let unread: Vec<&String> = devices
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(d, _)| d)
        .collect();
    assert!(
        unread.is_empty(),
        "READY was sent before devices {unread:?} delivered a poll"
    );
    // And in the status sent with READY: every device answered (comm_ok starts false,
    // so a READY sent before the first polls would say 0/N).
    let status = ready
        .text
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or_else(|| panic!("READY carries a status line: {:?}", ready.text));
    let n = devices.len();
    assert!(
        status.starts_with(&format!("{n}/{n} devices answering")),
        "status at READY: {status:?} ({n} devices)"
    );

    // Ten seconds of an InfluxDB outage: pings every second, the outage in the status.
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let pings: Vec<Instant> = notify
        .pings()
        .into_iter()
        .filter(|t| *t >= window)
        .collect();
    assert!(
        pings.len() >= 8,
        "{} watchdog pings in 10 s of an InfluxDB outage\n--- gateway log ---\n{}",
        pings.len(),
        demo.log()
    );
    assert!(
        max_gap(&pings) < Duration::from_secs(3),
        "a gap of {:?} between pings (WatchdogSec=3 would restart)",
        max_gap(&pings)
    );
    let sinks = demo.api("/api/v1/sinks");
    let influx = &sinks["sinks"][0];
    assert_eq!(influx["name"], "influx", "{sinks}");
    assert_eq!(
        influx["connected"], false,
        "the sink really is down: {sinks}"
    );
    assert!(influx["queued"].as_u64().unwrap_or(0) > 0, "{sinks}");
    let statuses = notify.statuses();
    assert!(
        statuses.iter().any(|s| s.contains("influx failing")),
        "STATUS names the failing sink: {statuses:?}"
    );
    assert!(demo.alive(), "the gateway keeps running");
}

#[test]
fn a_stalled_hub_stops_the_watchdog_pings_while_the_process_lives_on() {
    let dir = peer_tempdir("notify-stall");
    let notify = NotifySocket::bind(dir.path());
    let stall_after = 6;
    let mut demo = Demo::start(dir.path(), &notify, None, Some(stall_after));
    wait_ready(&notify, &demo);
    let stalled = wait_until(
        "the hub stalls (test hook)",
        Duration::from_secs(20),
        || demo.log().contains("the hub stalls now"),
    );
    if let Err(e) = stalled {
        panic!("{e}\n--- gateway log ---\n{}", demo.log());
    }
    let at_stall = Instant::now();
    let before = notify.pings();
    assert!(
        before.len() >= 2,
        "pings before the stall: {}\n--- gateway log ---\n{}",
        before.len(),
        demo.log()
    );
    std::thread::sleep(Duration::from_secs(5));
    // Allow a datagram already on its way when the stall was logged.
    let after: Vec<Instant> = notify
        .pings()
        .into_iter()
        .filter(|t| *t > at_stall + Duration::from_millis(200))
        .collect();
    assert!(
        after.is_empty(),
        "{} watchdog pings after the hub stalled: systemd would never restart it",
        after.len()
    );
    // Only the hub stopped: the process and its web server are alive, so the silence
    // comes from the hub's loop, not from a dead process.
    assert!(demo.alive(), "the process is alive");
    let health = http_get(&format!("http://{}/healthz", demo.web)).expect("the web server answers");
    assert!(
        !health.text().is_empty(),
        "healthz answers while the hub is stalled"
    );
}
