//! rsyslog, the third-party syslog receiver: `rsyslogd -n` with its own config, work
//! dir and pid file in a temp dir, listening on loopback with the inputs a test asks
//! for — `imudp`, `imtcp` (octet-counted framing), `imtcp` over TLS (`gtls`, anonymous
//! clients and one port that requires a client certificate signed by the test CA), and
//! `imrelp`.
//!
//! Each input has its own ruleset writing two files: `<input>.raw` (`%rawmsg%`, the
//! message exactly as received, without the TCP octet count) and `<input>.parsed`
//! (rsyslog's own RFC 5424 parse: PRI, timestamp, hostname, app-name, procid, msgid,
//! the structured data decoded by `mmpstrucdata` as JSON, and MSG), one line each.
//! The main queue is `Direct`, so a message is in its file before `imrelp` answers
//! `200 OK` for it: after a SIGKILL what was acknowledged is on disk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::{PeerProcess, Restartable, StartFailure, start_with_retry};
use super::{START_TIMEOUT, chmod, free_port, peer_tempdir, require_bin, tcp_accepts, write_file};

const INSTALL: &str =
    "apt-get install -y --no-install-recommends rsyslog rsyslog-relp rsyslog-gnutls";

/// Which inputs to open.
#[derive(Debug, Clone, Copy, Default)]
pub struct RsyslogOpts {
    /// `imudp`.
    pub udp: bool,
    /// `imtcp`, plain.
    pub tcp: bool,
    /// `imtcp` over TLS: one port for anonymous clients, one that requires a client
    /// certificate ([`Rsyslog::client_cert`]).
    pub tls: bool,
    /// `imrelp`.
    pub relp: bool,
}

/// A running rsyslogd. Dropping it kills it.
pub struct Rsyslog {
    /// UDP port (0 when off).
    pub udp_port: u16,
    /// Plain TCP port (0 when off).
    pub tcp_port: u16,
    /// TLS port, anonymous clients (0 when off).
    pub tls_port: u16,
    /// TLS port that requires a client certificate (0 when off).
    pub tls_mutual_port: u16,
    /// RELP port (0 when off).
    pub relp_port: u16,
    opts: RsyslogOpts,
    proc: Restartable,
    dir: tempfile::TempDir,
}

impl Rsyslog {
    /// Starts rsyslogd; panics with the install command when it (or the RELP or TLS
    /// module) is missing, or with its log when it does not come up.
    pub fn start(opts: RsyslogOpts) -> Rsyslog {
        let bin = require_bin("rsyslogd", INSTALL);
        for (on, module) in [(opts.relp, "imrelp.so"), (opts.tls, "lmnsd_gtls.so")] {
            let found = [
                "/usr/lib/x86_64-linux-gnu/rsyslog",
                "/usr/lib/aarch64-linux-gnu/rsyslog",
                "/usr/lib/rsyslog",
            ]
            .iter()
            .any(|d| Path::new(d).join(module).is_file());
            assert!(
                !on || found,
                "rsyslog module {module} is not installed. Install it with:\n    {INSTALL}\nor run ./tests/run.sh"
            );
        }
        let dir = peer_tempdir("rsyslog");
        if opts.tls {
            make_certs(dir.path());
        }
        let mut r = Rsyslog {
            udp_port: 0,
            tcp_port: 0,
            tls_port: 0,
            tls_mutual_port: 0,
            relp_port: 0,
            opts,
            proc: Restartable::stopped("rsyslogd"),
            dir,
        };
        let pick = |on: bool| if on { free_port() } else { 0 };
        let proc = start_with_retry("rsyslogd", || {
            r.udp_port = pick(opts.udp);
            r.tcp_port = pick(opts.tcp);
            r.tls_port = pick(opts.tls);
            r.tls_mutual_port = pick(opts.tls);
            r.relp_port = pick(opts.relp);
            r.write_config();
            r.spawn(&bin)
        });
        r.proc.started(proc);
        r
    }

    fn write_config(&self) {
        let d = self.dir.path().display().to_string();
        let mut c = format!(
            "global(workDirectory=\"{d}\" maxMessageSize=\"64k\"{tls})\n\
             main_queue(queue.type=\"Direct\")\n\
             module(load=\"mmpstrucdata\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             template(name=\"parsed\" type=\"string\" string=\"%pri%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%$!%|%msg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{d}/internal.log\")\n",
            tls = if self.opts.tls {
                format!(
                    " DefaultNetstreamDriverCAFile=\"{d}/ca.pem\" DefaultNetstreamDriverCertFile=\"{d}/server.pem\" DefaultNetstreamDriverKeyFile=\"{d}/server.key\""
                )
            } else {
                String::new()
            }
        );
        let input = |c: &mut String, name: &str, line: String| {
            c.push_str(&format!(
                "ruleset(name=\"{name}\") {{ action(type=\"mmpstrucdata\") action(type=\"omfile\" file=\"{d}/{name}.raw\" template=\"raw\") action(type=\"omfile\" file=\"{d}/{name}.parsed\" template=\"parsed\") }}\n{line}\n"
            ));
        };
        if self.opts.udp {
            c.push_str("module(load=\"imudp\")\n");
            let p = self.udp_port;
            input(
                &mut c,
                "udp",
                format!("input(type=\"imudp\" address=\"127.0.0.1\" port=\"{p}\" ruleset=\"udp\")"),
            );
        }
        if self.opts.tcp || self.opts.tls {
            c.push_str("module(load=\"imtcp\")\n");
        }
        if self.opts.tcp {
            let p = self.tcp_port;
            input(
                &mut c,
                "tcp",
                format!("input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{p}\" ruleset=\"tcp\")"),
            );
        }
        if self.opts.tls {
            let p = self.tls_port;
            input(
                &mut c,
                "tls",
                format!(
                    "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{p}\" ruleset=\"tls\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")"
                ),
            );
            let p = self.tls_mutual_port;
            input(
                &mut c,
                "tls_mutual",
                format!(
                    "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{p}\" ruleset=\"tls_mutual\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"x509/certvalid\")"
                ),
            );
        }
        if self.opts.relp {
            c.push_str("module(load=\"imrelp\")\n");
            let p = self.relp_port;
            input(
                &mut c,
                "relp",
                format!(
                    "input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{p}\" ruleset=\"relp\")"
                ),
            );
        }
        write_file(&self.dir.path().join("rsyslog.conf"), c);
    }

    fn spawn(&self, bin: &Path) -> Result<PeerProcess, StartFailure> {
        let d = self.dir.path();
        let _ = std::fs::remove_file(d.join("rsyslogd.pid"));
        let seen = std::fs::metadata(d.join("internal.log")).map_or(0, |m| m.len() as usize);
        let mut cmd = Command::new(bin);
        cmd.arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"));
        let mut proc = PeerProcess::spawn("rsyslogd", &mut cmd, &d.join("rsyslogd.log"), false);
        let tcp_ports: Vec<u16> = [
            self.tcp_port,
            self.tls_port,
            self.tls_mutual_port,
            self.relp_port,
        ]
        .into_iter()
        .filter(|p| *p != 0)
        .collect();
        let start = Instant::now();
        loop {
            // Only what this start wrote: an earlier attempt's "address already in use"
            // must not fail this one.
            let internal = std::fs::read(d.join("internal.log")).unwrap_or_default();
            let internal = String::from_utf8_lossy(&internal[seen.min(internal.len())..]);
            let log = format!("{}{internal}", proc.log_text());
            if log.to_lowercase().contains("address already in use") {
                proc.kill();
                return Err(StartFailure::PortInUse(log));
            }
            if let Some(status) = proc.exited() {
                return Err(StartFailure::Failed(format!(
                    "rsyslogd exited during start ({status}); log:\n{log}"
                )));
            }
            if tcp_ports.iter().all(|p| tcp_accepts(*p))
                && (self.udp_port == 0 || udp_bound(self.udp_port))
            {
                return Ok(proc);
            }
            if start.elapsed() > START_TIMEOUT {
                proc.kill();
                return Err(StartFailure::Failed(format!(
                    "rsyslogd did not open its ports within {START_TIMEOUT:?}; log:\n{log}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The CA that signed the server's (and the client's) certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A client certificate signed by the CA, and its key.
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("client.pem"),
            self.dir.path().join("client.key"),
        )
    }

    /// The messages an input received, as rsyslog saw them (`%rawmsg%`), one per line.
    pub fn raw(&self, input: &str) -> Vec<String> {
        read_lines(&self.dir.path().join(format!("{input}.raw")))
    }

    /// rsyslog's parse of the messages an input received, one line each:
    /// `pri|timestamp|hostname|app-name|procid|msgid|{structured data as JSON}|msg`.
    pub fn parsed(&self, input: &str) -> Vec<String> {
        read_lines(&self.dir.path().join(format!("{input}.parsed")))
    }

    /// Kills rsyslogd with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts rsyslogd again on the same ports, writing to the same files.
    pub fn start_again(&mut self) {
        self.proc.assert_stopped("Rsyslog");
        let start = self.spawn(&require_bin("rsyslogd", INSTALL));
        self.proc.restarted(self.relp_port, start);
    }

    /// rsyslogd's own output and internal messages, for failure messages.
    pub fn log(&self) -> String {
        let internal =
            std::fs::read_to_string(self.dir.path().join("internal.log")).unwrap_or_default();
        format!("{}{internal}", self.proc.log())
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b)
            .lines()
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether a UDP socket is bound to `127.0.0.1:port` (from /proc/net/udp).
fn udp_bound(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .map(|t| {
            t.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

/// The test CA (`ca.pem`), a server certificate for 127.0.0.1 (`server.pem`, `.key`)
/// and a client certificate (`client.pem`, `.key`), all signed by the CA.
fn make_certs(dir: &Path) {
    super::mqtt::make_tls_files(dir);
    let run = super::mqtt::openssl_in(dir);
    write_file(
        &dir.join("client.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\nsubjectAltName=DNS:gw-tv1\n",
    );
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=gw-tv1",
    ]);
    let serial = format!("0x{:016x}", super::random_u64());
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        &serial,
        "-days",
        "3",
        "-extfile",
        "client.ext",
        "-out",
        "client.pem",
    ]);
    for f in ["client.pem", "client.key"] {
        chmod(&dir.join(f), 0o644);
    }
}
