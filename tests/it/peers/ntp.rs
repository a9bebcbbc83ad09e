//! chronyd as a real NTP server on a loopback UDP port, optionally under `faketime` so
//! its clock is a known offset from ours.
//!
//! `chronyd -x` leaves the system clock alone; `local stratum 8` makes it serve its
//! own clock as a synchronised stratum-8 source; `cmdport 0` keeps it off the command
//! socket so several can run at once; `-u root` keeps it from switching to the
//! `_chrony` user, so nothing in the temp dir needs to belong to that user. `faketime` forks chronyd as its child, so the
//! daemon is stopped by the PID it writes to its pidfile, then `faketime` is reaped.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::{PeerProcess, StartFailure, start_with_retry};
use super::{free_port, peer_tempdir, require_bin, write_file};

const INSTALL: &str = "apt-get install -y --no-install-recommends chrony faketime";

/// A running chronyd.
pub struct Chrony {
    proc: Option<PeerProcess>,
    pidfile: PathBuf,
    /// The UDP port it serves NTP on (127.0.0.1).
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Chrony {
    /// Start chronyd serving its clock shifted by `offset` (a `faketime -f` spec such
    /// as `"+6s"`; `None`: our own clock), and wait until it answers an NTP request.
    pub fn start(offset: Option<&str>) -> Chrony {
        let chronyd = require_bin("chronyd", INSTALL);
        let faketime = offset.map(|_| require_bin("faketime", INSTALL));
        let dir = peer_tempdir("chrony");
        let pidfile = dir.path().join("chronyd.pid");
        let (proc, port) = start_with_retry("chronyd", || {
            let port = free_udp_port();
            let conf = dir.path().join("chrony.conf");
            write_file(
                &conf,
                format!(
                    "port {port}\nbindaddress 127.0.0.1\nlocal stratum 8\nallow 127.0.0.1\n\
                     cmdport 0\npidfile {}\n",
                    pidfile.display()
                ),
            );
            let mut cmd = match (&faketime, offset) {
                (Some(ft), Some(off)) => {
                    let mut c = Command::new(ft);
                    c.args(["-f", off]).arg(&chronyd);
                    c
                }
                _ => Command::new(&chronyd),
            };
            cmd.args(["-x", "-d", "-u", "root", "-f"]).arg(&conf);
            let mut p =
                PeerProcess::spawn("chronyd", &mut cmd, &dir.path().join("chronyd.log"), false);
            let start = Instant::now();
            loop {
                if let Some(status) = p.exited() {
                    let tail = p.log_tail();
                    let msg = format!("chronyd exited during start ({status}); log:\n{tail}");
                    return Err(if tail.contains("in use") {
                        StartFailure::PortInUse(msg)
                    } else {
                        StartFailure::Failed(msg)
                    });
                }
                if ntp_answers(port) {
                    return Ok((p, port));
                }
                if start.elapsed() > super::START_TIMEOUT {
                    return Err(StartFailure::Failed(format!(
                        "chronyd gives no NTP answer on 127.0.0.1:{port}; log:\n{}",
                        p.log_tail()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Chrony {
            proc: Some(proc),
            pidfile,
            port,
            _dir: dir,
        }
    }

    /// Stop chronyd (SIGTERM to the daemon by its pidfile, then reap `faketime`).
    pub fn stop(&mut self) {
        self.signal_daemon("TERM");
        if let Some(mut p) = self.proc.take() {
            p.terminate(Duration::from_secs(5));
        }
        let until = Instant::now() + Duration::from_secs(5);
        while ntp_answers(self.port) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!ntp_answers(self.port), "chronyd still answers after stop");
    }

    fn signal_daemon(&self, sig: &str) {
        if let Ok(pid) = std::fs::read_to_string(&self.pidfile)
            && let Ok(pid) = pid.trim().parse::<u32>()
        {
            let _ = Command::new("sh")
                .args(["-c", "kill -s \"$0\" \"$1\"", sig, &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Chrony {
    fn drop(&mut self) {
        if self.proc.is_some() {
            self.signal_daemon("KILL");
        }
    }
}

/// A UDP port free a moment ago (NTP is UDP: the TCP helper's check does not apply).
fn free_udp_port() -> u16 {
    loop {
        let p = free_port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Whether an NTP server on `port` answers a client request (mode 4 reply) within
/// 300 ms. Hand-built request per RFC 5905 §7.3: LI 0, VN 4, mode 3.
pub fn ntp_answers(port: u16) -> bool {
    let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
    let mut req = [0u8; 48];
    req[0] = 0x23;
    req[40..48].copy_from_slice(&0x1234_5678_9abc_def0u64.to_be_bytes());
    if s.send_to(&req, ("127.0.0.1", port)).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(s.recv_from(&mut buf), Ok((n, _)) if n >= 48 && buf[0] & 7 == 4 && buf[24..32] == req[40..48])
}
