//! A real Modbus TCP server (pymodbus 3.16.1, `tests/peers/modbus_server.py`, run by
//! the venv's python) serving register tables given as data, and the ground truth about
//! what it served: requests per unit and function code, and each request's address and
//! count ("contiguous registers merged into one request" is asserted on this).
//!
//! Addresses are Modbus protocol addresses (0-based, as on the wire). The script builds
//! its tables with pymodbus' SimData API, which uses those addresses directly; the
//! deprecated `ModbusSequentialDataBlock(1, ...)` block-start offset does not apply.
//!
//! Counts survive [`ModbusServer::restart`] (carried over from the old process).
//! While [`ModbusServer::pause`]d (SIGSTOP) the kernel still accepts connections and
//! queues requests; pymodbus serves them after [`ModbusServer::resume`], so counts may
//! grow then even if the client has given up.
//!
//! [`ModbusServer::start_rtu`] runs the same server speaking Modbus RTU on one end of a
//! serial line (a [`super::PtyPair`]: an RS-485 bus for tests), 8N2 at 19200 baud.
//! There, as on a real bus, a unit id that is not in the spec gets no answer at all.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::process::{PeerProcess, Restartable, StartFailure, start_with_retry};
use super::{PeerError, START_TIMEOUT, free_port, peer_tempdir, repo_root, write_file};

/// The register tables of one unit (slave) id. Addresses are protocol addresses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitSpec {
    /// Holding registers (function codes 3, 6, 16).
    pub holding: BTreeMap<u16, u16>,
    /// Input registers (function code 4).
    pub input: BTreeMap<u16, u16>,
    /// Coils (function codes 1, 5, 15).
    pub coils: BTreeMap<u16, bool>,
    /// Discrete inputs (function code 2).
    pub discrete: BTreeMap<u16, bool>,
    /// `false`: each register table spans address 0 up to its highest address (gaps read
    /// 0). `true`: only the listed register addresses exist; others answer exception 0x02.
    pub strict: bool,
}

impl UnitSpec {
    /// No registers: every read answers exception 0x02.
    pub fn new() -> UnitSpec {
        UnitSpec::default()
    }

    /// Holding registers `addr, addr+1, ...` = `values`.
    pub fn holding(mut self, addr: u16, values: &[u16]) -> UnitSpec {
        for (i, v) in values.iter().enumerate() {
            self.holding.insert(addr + i as u16, *v);
        }
        self
    }

    /// Input registers `addr, addr+1, ...` = `values`.
    pub fn input(mut self, addr: u16, values: &[u16]) -> UnitSpec {
        for (i, v) in values.iter().enumerate() {
            self.input.insert(addr + i as u16, *v);
        }
        self
    }

    /// Coils `addr, addr+1, ...` = `values`.
    pub fn coils(mut self, addr: u16, values: &[bool]) -> UnitSpec {
        for (i, v) in values.iter().enumerate() {
            self.coils.insert(addr + i as u16, *v);
        }
        self
    }

    /// Discrete inputs `addr, addr+1, ...` = `values`.
    pub fn discrete(mut self, addr: u16, values: &[bool]) -> UnitSpec {
        for (i, v) in values.iter().enumerate() {
            self.discrete.insert(addr + i as u16, *v);
        }
        self
    }

    /// Only the listed register addresses exist (see [`UnitSpec::strict`] field).
    pub fn strict(mut self) -> UnitSpec {
        self.strict = true;
        self
    }

    fn to_json(&self) -> Value {
        fn regs(m: &BTreeMap<u16, u16>) -> Value {
            Value::Object(m.iter().map(|(a, v)| (a.to_string(), json!(v))).collect())
        }
        fn bits(m: &BTreeMap<u16, bool>) -> Value {
            Value::Object(m.iter().map(|(a, v)| (a.to_string(), json!(v))).collect())
        }
        json!({
            "hr": regs(&self.holding),
            "ir": regs(&self.input),
            "co": bits(&self.coils),
            "di": bits(&self.discrete),
            "strict": self.strict,
        })
    }
}

/// What the server serves: one [`UnitSpec`] per unit id. Unit ids not listed answer
/// exception 0x04; unit 0, if listed, answers for every unlisted id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModbusSpec {
    /// Unit id → tables.
    pub units: BTreeMap<u8, UnitSpec>,
}

impl ModbusSpec {
    /// No units yet.
    pub fn new() -> ModbusSpec {
        ModbusSpec::default()
    }

    /// Adds (or replaces) a unit.
    pub fn unit(mut self, id: u8, unit: UnitSpec) -> ModbusSpec {
        self.units.insert(id, unit);
        self
    }

    fn to_json(&self) -> Value {
        json!({ "units": Value::Object(self.units.iter().map(|(id, u)| (id.to_string(), u.to_json())).collect()) })
    }
}

/// One request the server decoded, in arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModbusRequest {
    /// Unit id.
    pub unit: u8,
    /// Function code.
    pub fc: u8,
    /// Start address.
    pub address: u16,
    /// Quantity (registers or bits; for writes, how many were written).
    pub count: u16,
}

/// Counts keyed by `(unit, function code)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModbusCounts {
    /// Requests decoded.
    pub requests: BTreeMap<(u8, u8), u64>,
    /// Responses sent (normal and exception).
    pub responses: BTreeMap<(u8, u8), u64>,
    /// Exception responses sent, under the request's function code.
    pub exceptions: BTreeMap<(u8, u8), u64>,
}

impl ModbusCounts {
    /// Requests to `unit`, any function code.
    pub fn requests_for(&self, unit: u8) -> u64 {
        self.requests
            .iter()
            .filter(|((u, _), _)| *u == unit)
            .map(|(_, n)| n)
            .sum()
    }

    /// Exception responses to `unit`, any function code.
    pub fn exceptions_for(&self, unit: u8) -> u64 {
        self.exceptions
            .iter()
            .filter(|((u, _), _)| *u == unit)
            .map(|(_, n)| n)
            .sum()
    }

    /// All requests.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }

    fn add(&mut self, other: &ModbusCounts) {
        for (mine, theirs) in [
            (&mut self.requests, &other.requests),
            (&mut self.responses, &other.responses),
            (&mut self.exceptions, &other.exceptions),
        ] {
            for (k, n) in theirs {
                *mine.entry(*k).or_default() += n;
            }
        }
    }
}

/// A running pymodbus TCP server on `127.0.0.1:port`. Dropping it kills it.
pub struct ModbusServer {
    /// Modbus TCP port.
    pub port: u16,
    /// Control port (line protocol, see `tests/peers/modbus_server.py`).
    pub control_port: u16,
    spec: ModbusSpec,
    paused: bool,
    /// Serial port for Modbus RTU instead of TCP.
    serial: Option<PathBuf>,
    carried_counts: ModbusCounts,
    carried_requests: Vec<ModbusRequest>,
    proc: Restartable,
    // Last: removed after the process is gone.
    dir: tempfile::TempDir,
}

pub(crate) fn python() -> PathBuf {
    let py = repo_root().join("tests/.venv/bin/python");
    if !py.exists() {
        panic!(
            "the test venv is missing ({}). Create it with:\n    python3 -m venv tests/.venv && \
             tests/.venv/bin/pip install -r tests/requirements.txt\nor run ./tests/run.sh, which installs every test peer",
            py.display()
        );
    }
    py
}

impl ModbusServer {
    /// Starts the server with `spec`; panics (with the install command or the server's
    /// log) when it cannot.
    pub fn start(spec: ModbusSpec) -> ModbusServer {
        ModbusServer::launch(spec, None)
    }

    /// Starts the server speaking Modbus RTU on the serial port `serial` (the device
    /// end of a [`super::PtyPair`]); `port` is then 0.
    pub fn start_rtu(spec: ModbusSpec, serial: &std::path::Path) -> ModbusServer {
        ModbusServer::launch(spec, Some(serial.to_path_buf()))
    }

    fn launch(spec: ModbusSpec, serial: Option<PathBuf>) -> ModbusServer {
        assert!(
            !spec.units.is_empty(),
            "ModbusServer::start: the spec has no units"
        );
        let py = python();
        let dir = peer_tempdir("pymodbus");
        let mut server = ModbusServer {
            port: 0,
            control_port: 0,
            spec,
            paused: false,
            serial,
            carried_counts: ModbusCounts::default(),
            carried_requests: Vec::new(),
            proc: Restartable::stopped("pymodbus server"),
            dir,
        };
        let (port, control_port, proc) = start_with_retry("pymodbus server", || {
            let port = if server.serial.is_some() {
                0
            } else {
                free_port()
            };
            let control = free_port();
            server.spawn(&py, port, control).map(|p| (port, control, p))
        });
        server.port = port;
        server.control_port = control_port;
        server.proc.started(proc);
        server
    }

    fn spawn(
        &self,
        py: &std::path::Path,
        port: u16,
        control: u16,
    ) -> Result<PeerProcess, StartFailure> {
        let d = self.dir.path();
        let spec_file = d.join("spec.json");
        write_file(&spec_file, self.spec.to_json().to_string());
        let mut cmd = Command::new(py);
        cmd.arg("-u")
            .arg(repo_root().join("tests/peers/modbus_server.py"))
            .args(["--control-port", &control.to_string()]);
        match &self.serial {
            Some(path) => cmd.arg("--serial").arg(path),
            None => cmd.args(["--port", &port.to_string()]),
        };
        cmd.arg("--spec")
            .arg(&spec_file)
            .env("PYTHONWARNINGS", "ignore::DeprecationWarning");
        let mut proc =
            PeerProcess::spawn("pymodbus server", &mut cmd, &d.join("server.log"), false);
        let ready = match &self.serial {
            Some(path) => format!("READY {} {control}", path.display()),
            None => format!("READY {port} {control}"),
        };
        match proc.wait_ready(START_TIMEOUT, |log| log.contains(&ready)) {
            Err(StartFailure::Failed(m)) if m.contains("No module named") => {
                Err(StartFailure::Failed(format!(
                    "{m}\npymodbus is missing from the test venv. Install it with:\n    \
                 tests/.venv/bin/pip install -r tests/requirements.txt\nor run ./tests/run.sh"
                )))
            }
            other => other.map(|_| proc),
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The spec it was (re)started with.
    pub fn spec(&self) -> &ModbusSpec {
        &self.spec
    }

    /// Sends one control command and returns its JSON reply (5 s timeout).
    pub fn control(&self, command: &str) -> Result<Value, PeerError> {
        let fail = |reason: String| PeerError::Peer {
            peer: format!("pymodbus control 127.0.0.1:{}", self.control_port),
            reason: format!("{command:?}: {reason}"),
        };
        if self.paused {
            return Err(fail("server is paused (SIGSTOP); resume() it first".into()));
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], self.control_port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| fail(e.to_string()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| fail(e.to_string()))?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(|e| fail(e.to_string()))?;
        let v: Value =
            serde_json::from_str(&line).map_err(|e| fail(format!("bad reply {line:?}: {e}")))?;
        if v["ok"] != json!(true) {
            return Err(fail(
                v["error"].as_str().unwrap_or("unknown error").to_owned(),
            ));
        }
        Ok(v)
    }

    fn control_ok(&self, command: &str) -> Value {
        self.control(command).unwrap_or_else(|e| panic!("{e}"))
    }

    fn live_counts(&self) -> ModbusCounts {
        let v = self.control_ok("counts");
        let table = |key: &str| -> BTreeMap<(u8, u8), u64> {
            let mut out = BTreeMap::new();
            if let Some(units) = v[key].as_object() {
                for (unit, fcs) in units {
                    for (fc, n) in fcs.as_object().into_iter().flatten() {
                        if let (Ok(u), Ok(f)) = (unit.parse(), fc.parse()) {
                            out.insert((u, f), n.as_u64().unwrap_or(0));
                        }
                    }
                }
            }
            out
        };
        ModbusCounts {
            requests: table("requests"),
            responses: table("responses"),
            exceptions: table("exceptions"),
        }
    }

    fn live_requests(&self) -> Vec<ModbusRequest> {
        let v = self.control_ok("requests");
        v["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| ModbusRequest {
                unit: r["unit"].as_u64().unwrap_or(0) as u8,
                fc: r["fc"].as_u64().unwrap_or(0) as u8,
                address: r["address"].as_u64().unwrap_or(0) as u16,
                count: r["count"].as_u64().unwrap_or(0) as u16,
            })
            .collect()
    }

    /// All counts (including those of processes before a [`ModbusServer::restart`]).
    pub fn counts(&self) -> ModbusCounts {
        let mut c = self.carried_counts.clone();
        c.add(&self.live_counts());
        c
    }

    /// Requests served to `unit`, any function code.
    pub fn request_count(&self, unit: u8) -> u64 {
        self.counts().requests_for(unit)
    }

    /// Requests served to `unit` with function code `fc`.
    pub fn request_count_fc(&self, unit: u8, fc: u8) -> u64 {
        self.counts()
            .requests
            .get(&(unit, fc))
            .copied()
            .unwrap_or(0)
    }

    /// Exception responses sent to `unit`.
    pub fn exception_count(&self, unit: u8) -> u64 {
        self.counts().exceptions_for(unit)
    }

    /// Every request decoded, in arrival order (the last 100 000 per process).
    pub fn requests(&self) -> Vec<ModbusRequest> {
        let mut r = self.carried_requests.clone();
        r.extend(self.live_requests());
        r
    }

    /// Zeroes the counts and the request log.
    pub fn reset_counts(&mut self) {
        self.control_ok("reset");
        self.carried_counts = ModbusCounts::default();
        self.carried_requests.clear();
    }

    fn set(&self, table: &str, unit: u8, addr: u16, values: &[String]) {
        assert!(!values.is_empty(), "ModbusServer::set_{table}: no values");
        self.control_ok(&format!("set {table} {unit} {addr} {}", values.join(",")));
    }

    /// Sets holding registers `addr..` of `unit` (must lie inside its table).
    pub fn set_holding(&self, unit: u8, addr: u16, values: &[u16]) {
        self.set(
            "hr",
            unit,
            addr,
            &values.iter().map(u16::to_string).collect::<Vec<_>>(),
        );
    }

    /// Sets input registers `addr..` of `unit`.
    pub fn set_input(&self, unit: u8, addr: u16, values: &[u16]) {
        self.set(
            "ir",
            unit,
            addr,
            &values.iter().map(u16::to_string).collect::<Vec<_>>(),
        );
    }

    /// Sets coils `addr..` of `unit`.
    pub fn set_coils(&self, unit: u8, addr: u16, values: &[bool]) {
        self.set(
            "co",
            unit,
            addr,
            &values
                .iter()
                .map(|b| u8::from(*b).to_string())
                .collect::<Vec<_>>(),
        );
    }

    /// Sets discrete inputs `addr..` of `unit`.
    pub fn set_discrete(&self, unit: u8, addr: u16, values: &[bool]) {
        self.set(
            "di",
            unit,
            addr,
            &values
                .iter()
                .map(|b| u8::from(*b).to_string())
                .collect::<Vec<_>>(),
        );
    }

    fn get(&self, table: &str, unit: u8, addr: u16, count: u16) -> Vec<u64> {
        let v = self.control_ok(&format!("get {table} {unit} {addr} {count}"));
        v["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_u64().unwrap_or(0))
            .collect()
    }

    /// Reads holding registers as the server holds them now (e.g. after the gateway
    /// wrote them).
    pub fn holding(&self, unit: u8, addr: u16, count: u16) -> Vec<u16> {
        self.get("hr", unit, addr, count)
            .into_iter()
            .map(|v| v as u16)
            .collect()
    }

    /// Reads coils as the server holds them now.
    pub fn coils(&self, unit: u8, addr: u16, count: u16) -> Vec<bool> {
        self.get("co", unit, addr, count)
            .into_iter()
            .map(|v| v != 0)
            .collect()
    }

    /// Freezes the server (SIGSTOP): requests get no answer until [`ModbusServer::resume`].
    pub fn pause(&mut self) {
        if let Some(p) = self.proc.get_mut() {
            p.signal("STOP");
            self.paused = true;
        }
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&mut self) {
        if let Some(p) = self.proc.get_mut() {
            p.signal("CONT");
        }
        self.paused = false;
    }

    /// Kills the server (no answer, connections reset) until [`ModbusServer::start_again`].
    /// Its counts and current register values are kept for the next start.
    pub fn stop(&mut self) {
        if self.proc.is_stopped() {
            return;
        }
        self.resume();
        self.carry_state();
        self.proc.kill();
    }

    /// Starts a stopped server on the same ports with the values it had.
    pub fn start_again(&mut self) {
        self.proc.assert_stopped("ModbusServer");
        let py = python();
        let mut last = String::new();
        for _ in 0..20 {
            match self.spawn(&py, self.port, self.control_port) {
                Ok(p) => {
                    self.proc.started(p);
                    return;
                }
                // The old listener may linger for a moment after SIGKILL.
                Err(StartFailure::PortInUse(m)) => {
                    last = m;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(StartFailure::Failed(m)) => panic!("pymodbus server restart failed: {m}"),
            }
        }
        panic!(
            "pymodbus server restart: port {} or {} stays taken: {last}",
            self.port, self.control_port
        );
    }

    /// Kills the server and starts it again on the same port, with the same units and
    /// the register values it held (including values clients wrote). Counts carry over.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    fn carry_state(&mut self) {
        self.carried_counts.add(&self.live_counts());
        self.carried_requests.extend(self.live_requests());
        let dumped = self.control_ok("dump");
        self.spec = spec_from_dump(&dumped["spec"]);
    }

    /// The server's log (pymodbus' own messages) since its last (re)start.
    pub fn log(&self) -> String {
        self.proc.log()
    }
}

fn spec_from_dump(v: &Value) -> ModbusSpec {
    let mut spec = ModbusSpec::new();
    for (id, u) in v["units"].as_object().into_iter().flatten() {
        let Ok(id) = id.parse::<u8>() else { continue };
        let regs = |key: &str| -> BTreeMap<u16, u16> {
            u[key]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(a, v)| Some((a.parse().ok()?, v.as_u64()? as u16)))
                .collect()
        };
        let bits = |key: &str| -> BTreeMap<u16, bool> {
            u[key]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(a, v)| Some((a.parse().ok()?, v.as_bool()?)))
                .collect()
        };
        spec.units.insert(
            id,
            UnitSpec {
                holding: regs("hr"),
                input: regs("ir"),
                coils: bits("co"),
                discrete: bits("di"),
                strict: u["strict"].as_bool().unwrap_or(false),
            },
        );
    }
    spec
}
