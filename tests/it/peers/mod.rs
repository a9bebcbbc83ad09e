//! Real third-party peers for the integration tests: Mosquitto (with `mosquitto_sub` as
//! the independent subscriber), VictoriaMetrics, InfluxDB 1.x, a pymodbus server,
//! chronyd (NTP, optionally under `faketime`) and rsyslog.
//!
//! Invariants every helper here keeps:
//! - A peer runs on free loopback ports in its own temp dir and is stopped by PID on
//!   `Drop` (SIGKILL, then waited for), so a failing test leaves nothing behind.
//! - A missing peer binary is a test **failure** whose message names the exact install
//!   command; nothing is skipped.
//! - A taken port is retried with a new one; readiness is awaited with a deadline
//!   (log line, TCP connect or HTTP ping), never with a blind sleep.
//! - Helpers are blocking. Tests that run the gateway in-process should use
//!   `#[tokio::test(flavor = "multi_thread")]` (the test body then blocks only its own
//!   thread) or the `*_async` waiting variants.
//!
//! The peers' own output goes to a log file in their temp dir; start failures quote its
//! tail.

#![allow(dead_code, unused_imports)]

mod http;
mod influx;
mod modbus;
mod mqtt;
pub mod ntp;
mod process;
mod pty;
mod sms;
mod snmp;
mod syslog;
mod victoria;

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use http::{HttpResponse, http_get, http_post, http_request};
pub use influx::Influx1;
pub use modbus::{ModbusCounts, ModbusRequest, ModbusServer, ModbusSpec, UnitSpec};
pub use mqtt::{Mosquitto, MosquittoOpts, MqttMessage, MqttSubscriber, SubOpts, make_tls_files};
pub(crate) use process::PeerProcess;
pub use pty::PtyPair;
pub use sms::ScriptedModem;
pub use snmp::{Recording, Snmpd, Snmpsim, SnmpsimV3, snmp_tool, snmpsim_data, snmptrap};
pub use syslog::{Rsyslog, RsyslogOpts};
pub use victoria::{Sample, VictoriaMetrics};

/// What went wrong talking to a peer. Start failures panic instead (see module docs).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// An HTTP exchange failed below the status line (connect, read, parse).
    #[error("HTTP {method} {url}: {reason}")]
    Http {
        /// Request method.
        method: String,
        /// Full URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A waited-for condition did not hold before the deadline.
    #[error("timed out after {waited:?} waiting for {what}; last seen: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        waited: Duration,
        /// The last state seen, for the failure message.
        last: String,
    },
    /// A peer's control channel or command-line tool failed.
    #[error("{peer}: {reason}")]
    Peer {
        /// Which peer.
        peer: String,
        /// What failed.
        reason: String,
    },
}

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A loopback TCP port that was free a moment ago and has not been handed out before in
/// this process.
///
/// Ports come from below the kernel's ephemeral range when possible, so an outgoing
/// connection's source port cannot take it between this call and the peer's bind.
/// Callers still retry on "address in use" (another test process may race us).
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    let low = ephemeral_low().unwrap_or(32768);
    let (lo, hi) = if low > 12000 {
        (10000u16, low.min(65000) as u16)
    } else {
        (0, 0)
    };
    for _ in 0..200 {
        let port = if hi > lo {
            lo + (random_u64() % u64::from(hi - lo)) as u16
        } else {
            match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                Ok(addr) => addr.port(),
                Err(_) => continue,
            }
        };
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut set = handed.lock().unwrap_or_else(|e| e.into_inner());
        if set.insert(port) {
            return port;
        }
    }
    panic!("free_port: no free loopback port found after 200 tries");
}

fn ephemeral_low() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Finds a peer's binary on `PATH` (and the sbin folders, where Debian puts daemons).
///
/// Panics, naming `install`, when it is missing: a test never skips for a missing peer.
pub fn require_bin(name: &str, install: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in ["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(PathBuf::from(extra));
    }
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "test peer `{name}` is not installed. Install it with:\n    {install}\n\
         or run ./tests/run.sh, which installs every test peer"
    );
}

/// A temp dir for a peer, world-readable (0755): Mosquitto drops root to its own user
/// and must still read its config, password file and TLS key.
pub fn peer_tempdir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("dcgw-{prefix}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir for {prefix}: {e}"));
    chmod(dir.path(), 0o755);
    dir
}

/// Sets a file's mode; panics with the path on failure (test setup only).
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Writes a file and makes it world-readable (0644); panics with the path on failure.
pub fn write_file(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    chmod(path, 0o644);
}

/// True when something accepts TCP connections on `127.0.0.1:port`.
pub fn tcp_accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Polls `cond` every 20 ms until it is true or `timeout` passes. `what` names the
/// condition in the error.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<(), PeerError> {
    let start = Instant::now();
    loop {
        if cond() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(PeerError::Timeout {
                what: what.to_owned(),
                waited: start.elapsed(),
                last: String::from("condition false"),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Percent-encodes a query-string component.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// How long a peer may take to become ready. Generous: CI shares 2 cores with cargo.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports a start tries before giving up.
pub(crate) const PORT_ATTEMPTS: usize = 6;

/// Write a secret file the way a site keeps one: readable by its owner only (the
/// gateway refuses a secret file every user can read).
pub fn write_secret(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
