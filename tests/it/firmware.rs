//! The rack-inlet sensor node (`firmware/`) on a real serial line: `node-sim` runs the
//! firmware's core on the device end of a `socat` pty pair and is polled
//!
//! - by `mbpoll`, an independent Modbus RTU client, checking the register map of
//!   `firmware/README.md` (values, counters, exceptions, a wrong unit id ignored, a
//!   bad CRC counted and survived, the settings guard, settings kept across restarts);
//! - by the gateway's own RTU bus task (`modbus::spawn_rtu`, as the runtime starts
//!   it) with the shipped `dcgw-node-climate`, `dcgw-node-leak` and `dcgw-node-door`
//!   profiles on one unit id: readings decode to the canonical points and a wet leak
//!   rope raises the `leak_detected` alarm (Art. 10.3) through the default rules.
//!
//! The simulated values are physical quantities (°C, %RH, contact levels) given to the
//! simulated sensor, which encodes them as SHT4x raw words; the expected registers are
//! worked out by hand from the register map (−20.5 °C → 0xFF33 as in the XY-MD02
//! manual's example, 54.6 %RH → 546), never read back from our own decoder.
//!
//! `node-sim` is a member of the cargo workspace; `cargo nextest run --workspace`
//! builds it beside this test binary, and the test runs `cargo build -p
//! dcgw-node-sim` once before using it, so a run of this package alone
//! (`cargo nextest run -E 'test(firmware)'`) never uses a stale simulator.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dc_gateway::model::{AlarmState, DeviceMeta, Kind, Language, Quality, Value};
use dc_gateway::rules::{self, Engine};
use dc_gateway::sources::modbus::{self, BusDevice, profile};
use tokio::sync::mpsc;

use crate::modbus::{DEADLINE, approx, number};
use crate::peers::{PtyPair, START_TIMEOUT, peer_tempdir, repo_root, require_bin};

/// Numbers the node-sim logs of one test process.
static START_COUNT: AtomicUsize = AtomicUsize::new(0);

/// The unlock key of the settings guard (firmware/README.md "Settings").
const UNLOCK_KEY: u16 = 0x5AA5;

/// The `node-sim` binary beside this test binary, brought up to date once per test
/// process with `cargo build -p dcgw-node-sim` (a no-op after
/// `cargo nextest run --workspace`, which has built it already).
fn node_sim_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/it-<hash> -> target/<profile>/node-sim
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary sits in target/<profile>/deps");
        let bin = dir.join("node-sim");
        let cargo = std::env::var_os("CARGO")
            .or_else(|| option_env!("CARGO").map(Into::into))
            .unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(repo_root())
            .args(["build", "-q", "-p", "dcgw-node-sim", "--bin", "node-sim"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status();
        let built = status.as_ref().is_ok_and(|s| s.success());
        assert!(
            bin.is_file(),
            "node-sim is not at {} and `{} build -p dcgw-node-sim` failed ({status:?})",
            bin.display(),
            Path::new(&cargo).display()
        );
        if !built {
            eprintln!("firmware tests: `cargo build -p dcgw-node-sim` failed ({status:?}); using the existing {}", bin.display());
        }
        bin
    })
    .clone()
}

/// A running `node-sim` on the device end of `pty`, with a control file. Dropping it
/// kills the process (SIGKILL) and reaps it.
struct NodeSim {
    child: std::process::Child,
    log: PathBuf,
    control: PathBuf,
}

impl Drop for NodeSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeSim {
    fn start(pty: &PtyPair, dir: &Path, args: &[&str]) -> NodeSim {
        let control = dir.join("control");
        let mut cmd = Command::new(node_sim_bin());
        cmd.arg("--port")
            .arg(&pty.device)
            .arg("--control")
            .arg(&control)
            .args(["--sample-ms", "50", "--debounce-ms", "20", "--verbose"])
            .args(args);
        // A fresh log per start: readiness is judged on this run's lines only.
        let log = dir.join(format!(
            "node-sim-{}.log",
            START_COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&log).expect("create the node-sim log");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", node_sim_bin().display()));
        let mut sim = NodeSim {
            child,
            log,
            control,
        };
        let start = Instant::now();
        while !sim.log().contains("node-sim: serving unit") {
            if let Ok(Some(status)) = sim.child.try_wait() {
                panic!("node-sim exited during start ({status}):\n{}", sim.log());
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "node-sim not ready after {START_TIMEOUT:?}:\n{}",
                sim.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sim
    }

    /// Replaces the control file atomically (the node re-reads it every 50 ms).
    fn set(&self, text: &str) {
        let tmp = self.control.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write the control file");
        std::fs::rename(&tmp, &self.control).expect("rename the control file");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What `mbpoll` printed: the `[address]: value` pairs, or its complaint.
type MbResult = Result<Vec<(u16, i64)>, String>;

/// Runs `mbpoll` once in RTU mode on the gateway end of `pty` (8N2 at 19200: a pty
/// refuses parity on some kernels; see `peers::pty`), 0-based addresses.
fn mbpoll(pty: &PtyPair, unit: u8, args: &[&str], values: &[&str]) -> MbResult {
    let bin = require_bin(
        "mbpoll",
        "apt-get install -y --no-install-recommends mbpoll",
    );
    let out = Command::new(bin)
        .args([
            "-m", "rtu", "-b", "19200", "-P", "none", "-s", "2", "-0", "-1",
        ])
        .args(["-o", "0.5", "-a", &unit.to_string()])
        .args(args)
        .arg(&pty.gateway)
        .args(values)
        .output()
        .map_err(|e| format!("mbpoll: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || text.contains("failed") {
        return Err(text);
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let (addr, value) = l.trim().strip_prefix('[')?.split_once("]:")?;
            let first = value.split_whitespace().next()?;
            Some((addr.parse().ok()?, first.parse().ok()?))
        })
        .collect())
}

/// Reads `count` input registers from `addr` (function 04).
fn inputs(pty: &PtyPair, unit: u8, addr: u16, count: u16) -> MbResult {
    mbpoll(
        pty,
        unit,
        &["-t", "3", "-r", &addr.to_string(), "-c", &count.to_string()],
        &[],
    )
}

/// Writes holding registers from `addr` (one value: function 06, more: 16).
fn write_holding(pty: &PtyPair, unit: u8, addr: u16, values: &[u16]) -> MbResult {
    let values: Vec<String> = values.iter().map(u16::to_string).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    mbpoll(pty, unit, &["-t", "4", "-r", &addr.to_string()], &values)
}

fn value_at(read: &[(u16, i64)], addr: u16) -> i64 {
    read.iter()
        .find(|(a, _)| *a == addr)
        .unwrap_or_else(|| panic!("register {addr} not in {read:?}"))
        .1
}

/// Retries `read` until `ok` holds for it (the node samples its inputs every 50 ms).
fn until(what: &str, mut read: impl FnMut() -> MbResult, ok: impl Fn(&[(u16, i64)]) -> bool) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < DEADLINE {
        match read() {
            Ok(v) if ok(&v) => return,
            Ok(v) => last = format!("{v:?}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {DEADLINE:?}; last read: {last}");
}

#[test]
fn node_sim_serves_the_register_map_to_mbpoll() {
    let pty = PtyPair::start();
    let dir = peer_tempdir("node-sim");
    let settings = dir.path().join("settings.bin");
    let sim = NodeSim::start(
        &pty,
        dir.path(),
        &[
            "--unit",
            "17",
            "--temperature",
            "-20.5",
            "--humidity",
            "54.6",
            "--door",
            "--settings",
            settings.to_str().unwrap(),
        ],
    );

    // Input registers 0..=10 (30001..30011), firmware/README.md "Register map".
    let r = inputs(&pty, 17, 0, 11).unwrap_or_else(|e| panic!("{e}\n{}", sim.log()));
    assert_eq!(value_at(&r, 1), 0xFF33, "-20.5 °C as signed tenths");
    assert_eq!(value_at(&r, 2), 546, "54.6 %RH in tenths");
    assert_eq!(value_at(&r, 3), 0, "leak rope dry");
    assert_eq!(value_at(&r, 4), 1, "door open (started open)");
    assert_eq!(value_at(&r, 6), 4, "an SHT4x answers");
    assert_eq!(value_at(&r, 10), 1, "firmware 0.1");
    // Status: door open (bit 2) + running on default settings (bit 4).
    assert_eq!(value_at(&r, 0), 0b1_0100);

    // A leak, changed while the node runs: register 3 and status bit 1.
    sim.set("leak = 1\ntemperature_c = 30.5\n");
    until(
        "leak register set",
        || inputs(&pty, 17, 0, 4),
        |r| value_at(r, 3) == 1 && value_at(r, 0) & 0b10 != 0 && value_at(r, 1) == 305,
    );

    // Exceptions: 02 for an address past the map, 01 for a settings write while the
    // guard is locked, 03 for a wrong guard key.
    let e = inputs(&pty, 17, 22, 1).unwrap_err();
    assert!(e.contains("Illegal data address"), "{e}");
    let e = write_holding(&pty, 17, 257, &[18]).unwrap_err();
    assert!(e.contains("Illegal function"), "{e}");
    let e = write_holding(&pty, 17, 256, &[0x1234]).unwrap_err();
    assert!(e.contains("Illegal data value"), "{e}");

    // A wrong unit id is ignored: no answer at all, the client times out.
    let e = inputs(&pty, 18, 1, 1).unwrap_err();
    assert!(e.contains("timed out"), "unit 18 must not answer: {e}");

    // Garbage and a frame with a bad CRC on the bus: no reply, counted, and the next
    // request is answered. Written raw on the client end, 300 ms apart so they stay
    // separate frames even on a loaded machine.
    let before = inputs(&pty, 17, 16, 6).expect("counters");
    {
        use std::io::Write as _;
        let mut line = std::fs::OpenOptions::new()
            .write(true)
            .open(&pty.gateway)
            .expect("open the client end");
        // 17, read input 1, qty 1 with its CRC's bytes swapped.
        let good = [17u8, 4, 0, 1, 0, 1];
        let crc = dc_gateway::sources::modbus::rtu::crc16(&good);
        let mut bad = good.to_vec();
        bad.extend_from_slice(&crc.to_be_bytes());
        line.write_all(&bad).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        line.write_all(&[0x42, 0x99]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    let after = inputs(&pty, 17, 16, 6).expect("the node still answers");
    assert_eq!(
        value_at(&after, 17),
        value_at(&before, 17) + 1,
        "one CRC error"
    );
    assert_eq!(
        value_at(&after, 21),
        value_at(&before, 21) + 1,
        "one short frame"
    );
    // Exceptions so far: 02, 01, 03.
    assert_eq!(value_at(&after, 18), 3);

    // Broadcast (unit 0; mbpoll cannot send it in RTU mode, so raw frames): unlock,
    // then a +1.0 °C temperature offset. Carried out, never answered: the next mbpoll
    // exchange would trip over a stray reply.
    {
        use std::io::Write as _;
        let mut line = std::fs::OpenOptions::new()
            .write(true)
            .open(&pty.gateway)
            .expect("open the client end");
        for body in [[0u8, 6, 1, 0, 0x5A, 0xA5], [0, 6, 1, 4, 0, 10]] {
            let crc = dc_gateway::sources::modbus::rtu::crc16(&body);
            let mut frame = body.to_vec();
            frame.extend_from_slice(&crc.to_le_bytes());
            line.write_all(&frame).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let r = inputs(&pty, 17, 0, 22).expect("no stray reply on the line");
    assert_eq!(value_at(&r, 1), 315, "30.5 °C + 1.0 °C offset");
    assert_eq!(
        value_at(&r, 20),
        value_at(&after, 20) + 2,
        "two broadcasts, no reply"
    );
    assert_eq!(value_at(&r, 18), 3, "no exception for a broadcast");

    // Unlock and change the unit id in one write-multiple (function 16) starting at
    // the guard: the reply still comes from 17, then only 18 answers.
    write_holding(&pty, 17, 256, &[UNLOCK_KEY, 18]).expect("unlock + unit id");
    let r = inputs(&pty, 18, 0, 2).expect("the new unit id answers");
    assert_eq!(value_at(&r, 1), 315);
    assert!(inputs(&pty, 17, 1, 1).unwrap_err().contains("timed out"));
    // The unlock was used up.
    let e = write_holding(&pty, 18, 260, &[5]).unwrap_err();
    assert!(e.contains("Illegal function"), "{e}");
    // Holding registers 256..=261 (40257..40262).
    let h = mbpoll(&pty, 18, &["-t", "4", "-r", "256", "-c", "6"], &[]).unwrap();
    assert_eq!(
        h.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        [0, 18, 192, 1, 10, 0],
        "guard locked, unit 18, 19200 baud, 8E1, +1.0 °C, no humidity offset"
    );

    // The settings survive a restart ("flash" = the settings file): same command
    // line (default unit 17), the node comes back as 18.
    drop(sim);
    let sim = NodeSim::start(
        &pty,
        dir.path(),
        &["--unit", "17", "--settings", settings.to_str().unwrap()],
    );
    let r = inputs(&pty, 18, 0, 1).unwrap_or_else(|e| panic!("{e}\n{}", sim.log()));
    assert_eq!(value_at(&r, 0) & 0b1_0000, 0, "no longer on defaults");
    assert!(inputs(&pty, 17, 0, 1).is_err());
}

fn node_profile(file: &str) -> Arc<profile::Profile> {
    let path = repo_root().join("config/profiles").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Arc::new(profile::parse(&text, file).unwrap_or_else(|e| panic!("{e}")))
}

fn node_device(id: &str, kind: Kind, file: &str) -> BusDevice {
    BusDevice {
        meta: Arc::new(DeviceMeta {
            id: id.into(),
            name: id.into(),
            label: None,
            room: "it".into(),
            kind,
        }),
        unit_id: 9,
        poll_interval: Duration::from_millis(300),
        timeout: Duration::from_millis(300),
        profile: node_profile(file),
    }
}

fn flag(poll: &dc_gateway::model::Poll, point: &str) -> Option<bool> {
    poll.samples
        .iter()
        .find(|s| s.point.name == point && s.quality == Quality::Good)
        .and_then(|s| match s.value {
            Some(Value::Bool(b)) => Some(b),
            _ => None,
        })
}

fn quality(poll: &dc_gateway::model::Poll, point: &str) -> Option<Quality> {
    poll.samples
        .iter()
        .find(|s| s.point.name == point)
        .map(|s| s.quality)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_reads_the_node_through_its_profiles_and_raises_the_leak_alarm() {
    let pty = PtyPair::start();
    let dir = peer_tempdir("node-sim");
    let sim = NodeSim::start(
        &pty,
        dir.path(),
        &["--unit", "9", "--temperature", "24.3", "--humidity", "48.7"],
    );
    // One node, three logical devices on unit 9 (docs/PROFILES.md "dcgw-node-*").
    let devices = vec![
        node_device("rack-a3-climate", Kind::Climate, "dcgw-node-climate.toml"),
        node_device("rack-a3-leak", Kind::Leak, "dcgw-node-leak.toml"),
        node_device("rack-a3-door", Kind::Door, "dcgw-node-door.toml"),
    ];
    let mut engine = Engine::new("it".into(), Language::En, 1);
    for d in &devices {
        engine.add_device(
            d.meta.clone(),
            d.poll_interval,
            rules::defaults(d.meta.kind),
        );
    }
    let (tx, mut rx) = mpsc::channel(256);
    let task = modbus::spawn_rtu(pty.bus("it-rtu-node", devices), tx);

    // Phases: what the node is told, and what each logical device must then read.
    struct Want {
        temperature: Option<f64>,
        humidity: Option<f64>,
        climate_quality: Quality,
        leak: bool,
        door: bool,
    }
    let phases: [(&str, Want); 3] = [
        (
            "",
            Want {
                temperature: Some(24.3),
                humidity: Some(48.7),
                climate_quality: Quality::Good,
                leak: false,
                door: false,
            },
        ),
        (
            "leak = 1\ndoor = 1\ntemperature_c = -20.5\nhumidity_pct = 54.6\n",
            Want {
                temperature: Some(-20.5),
                humidity: Some(54.6),
                climate_quality: Quality::Good,
                leak: true,
                door: true,
            },
        ),
        // Sensor unplugged: the node serves 0x7FFF / 0xFFFF, the profile's
        // `unavailable` codes: quality unknown, no value.
        (
            "leak = 1\ndoor = 0\nsensor = none\n",
            Want {
                temperature: None,
                humidity: None,
                climate_quality: Quality::Unknown,
                leak: true,
                door: false,
            },
        ),
    ];
    let mut leak_raised_in_phase = None;
    for (phase, (control, want)) in phases.iter().enumerate() {
        if !control.is_empty() {
            sim.set(control);
        }
        let (mut climate_ok, mut leak_ok, mut door_ok) = (false, false, false);
        let mut last = String::new();
        let start = Instant::now();
        while !(climate_ok && leak_ok && door_ok) && start.elapsed() < DEADLINE {
            let Ok(Some(poll)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
            else {
                continue;
            };
            for ev in engine.on_poll(&poll) {
                if ev.state == AlarmState::Raised
                    && ev.device.as_ref() == "rack-a3-leak"
                    && ev.rule.as_ref() == "leak_detected"
                {
                    leak_raised_in_phase.get_or_insert(phase);
                }
            }
            last = format!("{}: {:?}", poll.device.id, poll.samples);
            match poll.device.id.as_ref() {
                "rack-a3-climate" => {
                    climate_ok = poll.comm_ok
                        && quality(&poll, "temperature_c") == Some(want.climate_quality)
                        && quality(&poll, "humidity_pct") == Some(want.climate_quality)
                        && match (want.temperature, want.humidity) {
                            (Some(t), Some(h)) => {
                                approx(number(&poll, "temperature_c"), t)
                                    && approx(number(&poll, "humidity_pct"), h)
                            }
                            _ => {
                                number(&poll, "temperature_c").is_none()
                                    && number(&poll, "humidity_pct").is_none()
                            }
                        }
                }
                "rack-a3-leak" => leak_ok = flag(&poll, "leak_detected") == Some(want.leak),
                "rack-a3-door" => door_ok = flag(&poll, "door_open") == Some(want.door),
                other => panic!("poll of an unknown device {other}"),
            }
        }
        assert!(
            climate_ok && leak_ok && door_ok,
            "phase {phase}: climate {climate_ok} leak {leak_ok} door {door_ok}; last poll {last}\nnode-sim log:\n{}",
            sim.log()
        );
    }
    task.abort();
    assert_eq!(
        leak_raised_in_phase,
        Some(1),
        "the leak_detected alarm (Art. 10.3) is raised when the rope gets wet, not before"
    );
    // Ground truth on the node's side: it served the gateway's requests for unit 9.
    assert!(sim.log().contains("rx 09 04"), "{}", sim.log());
}
