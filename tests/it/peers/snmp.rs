//! net-snmp's `snmpd` (with `override` values and v3 users), `snmpsim` serving
//! hand-written recordings, and net-snmp's `snmptrap` as the independent trap sender.
//!
//! - [`Snmpd::start`] writes the given config lines after an `agentAddress` on a free
//!   loopback UDP port and runs `snmpd -f -C -m ''` with its persistent dir in a temp
//!   dir; ready when its log says `NET-SNMP version`, retried on "Error opening
//!   specified endpoint".
//! - [`Snmpsim::start`] writes each recording as `<community>.snmprec` in a
//!   world-readable temp dir (snmpsimd drops root to `nobody`), with a cache dir
//!   writable by `nobody`; ready when it logs `Listening at UDP/IPv4 endpoint` for
//!   every endpoint.
//! - [`snmpsim_data`] reads the recordings of real agents shipped in the PyPI package
//!   `snmpsim-data` (installed into `tests/.venv` from `tests/requirements.txt`),
//!   decompressing the `.bz2` ones with `bzcat`.
//! - [`snmptrap`] runs `snmptrap` with `SNMP_PERSISTENT_DIR` in a temp dir (so no state
//!   leaks between tests) and `-m ''` (Debian ships no MIBs).

use std::path::PathBuf;
use std::process::{Command, Output};

use super::process::{PeerProcess, StartFailure, start_with_retry};
use super::{START_TIMEOUT, chmod, free_port, peer_tempdir, require_bin, write_file};

const INSTALL_SNMPD: &str = "apt-get install -y --no-install-recommends snmpd snmp";
const INSTALL_SNMPSIM: &str = "apt-get install -y snmpsim";
const INSTALL_SNMPSIM_DATA: &str =
    "python3 -m venv tests/.venv && tests/.venv/bin/pip install -r tests/requirements.txt";
const INSTALL_BZIP2: &str = "apt-get install -y --no-install-recommends bzip2";

/// A running `snmpd` on `127.0.0.1:port` (UDP). Dropping it kills it.
pub struct Snmpd {
    /// The UDP port.
    pub port: u16,
    proc: Option<PeerProcess>,
    dir: tempfile::TempDir,
}

impl Snmpd {
    /// Starts snmpd with `config` (snmpd.conf lines: `rocommunity`, `createUser`,
    /// `rouser`, `override`, ...; the `agentAddress` is added). Panics with the install
    /// command when snmpd is missing, or with its log when it does not come up.
    pub fn start(config: &str) -> Snmpd {
        let bin = require_bin("snmpd", INSTALL_SNMPD);
        let dir = peer_tempdir("snmpd");
        let d = dir.path().to_path_buf();
        let (port, proc) = start_with_retry("snmpd", || {
            let port = free_port();
            let persist = d.join(format!("persist-{port}"));
            let _ = std::fs::create_dir_all(&persist);
            let conf = d.join("snmpd.conf");
            write_file(
                &conf,
                format!("agentAddress udp:127.0.0.1:{port}\n{config}\n"),
            );
            let log = d.join("snmpd.log");
            let mut cmd = Command::new(&bin);
            cmd.arg("-f")
                .arg("-Lf")
                .arg(&log)
                .arg("-C")
                .args(["-m", ""])
                .arg("-c")
                .arg(&conf)
                .arg(format!("--persistentDir={}", persist.display()))
                .env("SNMP_PERSISTENT_DIR", &persist)
                .env("MIBS", "");
            let mut p = PeerProcess::spawn("snmpd", &mut cmd, &d.join("snmpd.out"), false);
            let res = p.wait_ready(START_TIMEOUT, |_| {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.contains("NET-SNMP version")
            });
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            match res {
                Ok(()) => Ok((port, p)),
                Err(_) if log_text.contains("Error opening specified endpoint") => {
                    Err(StartFailure::PortInUse(log_text))
                }
                Err(e) => Err(StartFailure::Failed(format!(
                    "{}\nsnmpd log:\n{log_text}",
                    e.message()
                ))),
            }
        });
        Snmpd {
            port,
            proc: Some(proc),
            dir,
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("snmpd.log")).unwrap_or_default()
    }

    /// Kill it now.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }
}

/// SNMPv3 user snmpsimd accepts (its `--v3-*` options).
#[derive(Debug, Clone)]
pub struct SnmpsimV3 {
    /// User name.
    pub user: String,
    /// `MD5`, `SHA`, ...
    pub auth_proto: String,
    /// Authentication key.
    pub auth_key: String,
    /// `DES`, `AES`, ...
    pub priv_proto: String,
    /// Privacy key.
    pub priv_key: String,
}

/// A running `snmpsimd` serving recordings on one or more loopback UDP ports. Dropping
/// it kills it.
pub struct Snmpsim {
    /// The UDP ports (one per endpoint).
    pub ports: Vec<u16>,
    proc: Option<PeerProcess>,
    dir: tempfile::TempDir,
}

impl Snmpsim {
    /// Serves `recordings` (`(community, snmprec text)`: lines `OID|type|value`, types
    /// 2 INTEGER, 4 OCTET STRING, 6 OID, 65 Counter32, 66 Gauge32, 67 TimeTicks,
    /// 70 Counter64) on one endpoint.
    pub fn start(recordings: &[(&str, &str)], v3: Option<SnmpsimV3>) -> Snmpsim {
        Snmpsim::start_endpoints(recordings, v3, 1)
    }

    /// Same, listening on `endpoints` UDP ports (every community on every port).
    pub fn start_endpoints(
        recordings: &[(&str, &str)],
        v3: Option<SnmpsimV3>,
        endpoints: usize,
    ) -> Snmpsim {
        let bin = require_bin("snmpsimd", INSTALL_SNMPSIM);
        let dir = peer_tempdir("snmpsim");
        let d = dir.path().to_path_buf();
        let data = d.join("data");
        std::fs::create_dir(&data).unwrap_or_else(|e| panic!("mkdir {}: {e}", data.display()));
        chmod(&data, 0o755);
        for (community, text) in recordings {
            write_file(&data.join(format!("{community}.snmprec")), text);
        }
        let (ports, proc) = start_with_retry("snmpsimd", || {
            let cache = d.join(format!("cache-{}", free_port()));
            std::fs::create_dir_all(&cache)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", cache.display()));
            chmod(&cache, 0o777);
            let ports: Vec<u16> = (0..endpoints.max(1)).map(|_| free_port()).collect();
            let mut cmd = Command::new(&bin);
            cmd.arg(format!("--data-dir={}", data.display()))
                .arg(format!("--cache-dir={}", cache.display()))
                .args([
                    "--process-user=nobody",
                    "--process-group=nogroup",
                    "--logging-method=stderr",
                ]);
            for p in &ports {
                cmd.arg(format!("--agent-udpv4-endpoint=127.0.0.1:{p}"));
            }
            if let Some(v3) = &v3 {
                cmd.arg(format!("--v3-user={}", v3.user))
                    .arg(format!("--v3-auth-key={}", v3.auth_key))
                    .arg(format!("--v3-auth-proto={}", v3.auth_proto))
                    .arg(format!("--v3-priv-key={}", v3.priv_key))
                    .arg(format!("--v3-priv-proto={}", v3.priv_proto));
            }
            let mut p = PeerProcess::spawn("snmpsimd", &mut cmd, &d.join("snmpsimd.log"), false);
            let n = ports.len();
            p.wait_ready(START_TIMEOUT, |log| {
                log.matches("Listening at UDP/IPv4 endpoint").count() >= n
            })?;
            Ok((ports, p))
        });
        Snmpsim {
            ports,
            proc: Some(proc),
            dir,
        }
    }

    /// `127.0.0.1:port` of the first endpoint.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports[0])
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("snmpsimd.log")).unwrap_or_default()
    }

    /// The process id (for CPU accounting in benchmarks).
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().map(|p| p.pid()).unwrap_or(0)
    }
}

/// Runs net-snmp's `snmptrap` with `args` (everything after the program name), with a
/// private persistent dir and no MIBs. Panics with the install command when missing.
pub fn snmptrap(args: &[&str]) -> Output {
    let bin = require_bin("snmptrap", INSTALL_SNMPD);
    let dir = peer_tempdir("snmptrap");
    Command::new(bin)
        .args(["-m", ""])
        .args(args)
        .env("SNMP_PERSISTENT_DIR", dir.path())
        .env("MIBS", "")
        .output()
        .unwrap_or_else(|e| panic!("snmptrap: {e}"))
}

/// Path of a net-snmp client tool (for tests that cross-check with `snmpget`).
pub fn snmp_tool(name: &str) -> PathBuf {
    require_bin(name, INSTALL_SNMPD)
}

/// One recording of a real agent from the `snmpsim-data` package.
pub struct Recording {
    /// Path inside the package's `data` folder (`UPS/eaton-93e-80.snmprec.bz2`).
    pub path: String,
    /// The `.snmprec` text (decompressed).
    pub text: String,
}

/// The `data` folder of the `snmpsim-data` package in `tests/.venv`. Panics with the
/// install command when it is missing.
pub fn snmpsim_data_dir() -> PathBuf {
    let lib = super::repo_root().join("tests/.venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("site-packages/snmpsim_data/data"))
            .find(|p| p.is_dir())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the PyPI package snmpsim-data (recordings of real SNMP agents) is not installed in {}. Install it with:\n    {INSTALL_SNMPSIM_DATA}\nor run ./tests/run.sh",
            lib.display()
        )
    })
}

/// Every recording under `snmpsim_data_dir()` whose path (relative, lowercase) passes
/// `wanted`, sorted by path; `.bz2` files are decompressed with `bzcat`.
pub fn snmpsim_data(wanted: impl Fn(&str) -> bool) -> Vec<Recording> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.filter_map(|e| e.ok()) {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.to_string_lossy().contains(".snmprec") {
                    out.push(p);
                }
            }
        }
    }
    let root = snmpsim_data_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .unwrap_or(&f)
            .to_string_lossy()
            .to_string();
        if !wanted(&rel.to_lowercase()) {
            continue;
        }
        let text = if rel.ends_with(".bz2") {
            let bzcat = require_bin("bzcat", INSTALL_BZIP2);
            let o = Command::new(bzcat)
                .arg(&f)
                .output()
                .unwrap_or_else(|e| panic!("bzcat {}: {e}", f.display()));
            assert!(o.status.success(), "bzcat {} failed", f.display());
            String::from_utf8_lossy(&o.stdout).into_owned()
        } else {
            std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()))
        };
        out.push(Recording { path: rel, text });
    }
    out
}
