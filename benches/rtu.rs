//! RS-485 bus cycle benchmark (`docs/BENCHMARKS.md`, "Modbus TCP and RS-485 buses"):
//! how long one poll of every device on a bus takes, for 3 devices at 19200 baud, with
//! no dead slave and with one.
//!
//! `cargo bench --bench rtu -- [--seconds S] [--timeout-ms T]` (defaults 20, 200)
//!
//! The bus is a `socat` pty pair; the pymodbus RTU server of the integration tests
//! (`tests/peers/modbus_server.py`) answers as units 1 to 3 with the layouts of three
//! shipped profiles: an XY-MD02 sensor, an SDM630 meter and a Liebert iCOM unit. The
//! gateway side is the production bus task (`sources::modbus::spawn_rtu`) with the three
//! devices at a 1 ms poll interval, so the bus never idles: a *cycle* is the time from
//! one poll of every device to the next.
//!
//! Two figures per scenario:
//! - **computed wire time** at 19200 baud 8E1 (11 bits a character): for every read of
//!   the three profiles' plans, the inter-frame gap, the request and the reply on the
//!   wire; a dead slave adds its timeout (and its request). A pty ignores the baud rate
//!   and moves bytes at memory speed, so this is what a real bus adds;
//! - **measured cycle** on the pty: the gateway's and pymodbus' turnaround plus the gap
//!   the gateway keeps before every request. A real bus costs about wire + measured.
//!
//! With one dead slave (unit 3 absent, no answer), the cycles in which it is tried are
//! reported apart from the mean: the device backoff tries it on fewer and fewer ticks
//! (after 1, 2, 4, 8 … up to 10 s), which is what keeps the others' poll period.

#[path = "../tests/it/peers/mod.rs"]
mod peers;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dc_gateway::model::{DeviceMeta, Kind, Quality};
use dc_gateway::sources::modbus::{self, BusDevice, Parity, SerialSettings, profile};
use peers::{ModbusServer, ModbusSpec, PtyPair, UnitSpec};
use tokio::sync::mpsc;

fn shipped(file: &str) -> Arc<profile::Profile> {
    let (name, text) = profile::shipped()
        .into_iter()
        .find(|(f, _)| *f == file)
        .expect("shipped profile");
    Arc::new(profile::parse(text, name).expect("valid profile"))
}

/// Registers 0..=max of every table a profile reads, all zero: enough to answer.
fn unit_for(p: &profile::Profile) -> UnitSpec {
    let mut u = UnitSpec::new();
    for pt in &p.points {
        let end = pt.address + pt.width();
        u = match pt.table {
            profile::Table::Holding => u.holding(pt.address, &vec![0; usize::from(pt.width())]),
            profile::Table::Input => u.input(pt.address, &vec![0; usize::from(pt.width())]),
            profile::Table::Discrete => {
                u.discrete(pt.address, &vec![false; usize::from(end - pt.address)])
            }
            profile::Table::Coil => {
                u.coils(pt.address, &vec![false; usize::from(end - pt.address)])
            }
        };
    }
    u
}

struct Scenario {
    cycles: Vec<Duration>,
    /// Cycles in which the dead slave was tried.
    tried: Vec<Duration>,
    /// Cycles in which it was skipped (backed off).
    skipped: Vec<Duration>,
    dead_polls: usize,
}

async fn run(
    pty: &PtyPair,
    devices: Vec<BusDevice>,
    seconds: u64,
    dead: Option<&str>,
    timeout: Duration,
) -> Scenario {
    let bus = pty.bus("bench", devices);
    let ids: Vec<String> = bus.devices.iter().map(|d| d.meta.id.to_string()).collect();
    let (tx, mut rx) = mpsc::channel(1024);
    let task = modbus::spawn_rtu(bus, tx);
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(2) {
        let _ = rx.recv().await;
    }
    let mut s = Scenario {
        cycles: Vec::new(),
        tried: Vec::new(),
        skipped: Vec::new(),
        dead_polls: 0,
    };
    let mut seen = vec![false; ids.len()];
    let (mut round_start, mut last) = (Instant::now(), Instant::now());
    let mut round_tried = false;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        let Some(p) = rx.recv().await else { break };
        let now = Instant::now();
        let i = ids
            .iter()
            .position(|id| id.as_str() == p.device.id.as_ref())
            .unwrap_or(0);
        if dead == Some(ids[i].as_str()) {
            s.dead_polls += 1;
            if now - last >= timeout {
                round_tried = true;
            }
        } else {
            assert!(
                p.samples
                    .iter()
                    .all(|x| x.quality != Quality::Timeout && x.quality != Quality::CommError),
                "{} failed",
                ids[i]
            );
        }
        last = now;
        seen[i] = true;
        if seen.iter().all(|x| *x) {
            let cycle = now - round_start;
            s.cycles.push(cycle);
            if round_tried {
                s.tried.push(cycle);
            } else {
                s.skipped.push(cycle);
            }
            seen.iter_mut().for_each(|x| *x = false);
            round_start = now;
            round_tried = false;
        }
    }
    task.abort();
    s
}

fn mean(v: &[Duration]) -> Duration {
    if v.is_empty() {
        Duration::ZERO
    } else {
        v.iter().sum::<Duration>() / v.len() as u32
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> ExitCode {
    let (mut seconds, mut timeout_ms) = (20u64, 200u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{name} needs a number"))
        };
        let r = match a.as_str() {
            "--seconds" => num("--seconds").map(|v| seconds = v),
            "--timeout-ms" => num("--timeout-ms").map(|v| timeout_ms = v),
            "--bench" => Ok(()),
            other => Err(format!(
                "unknown argument {other}; usage: cargo bench --bench rtu -- [--seconds S] [--timeout-ms T]"
            )),
        };
        if let Err(e) = r {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    let timeout = Duration::from_millis(timeout_ms);
    let profiles = [
        ("xy-md02", Kind::Climate, shipped("xy-md02.toml")),
        ("sdm630", Kind::PowerMeter, shipped("sdm630.toml")),
        ("liebert-icom", Kind::Cooling, shipped("liebert-icom.toml")),
    ];
    let devices = |with_dead: bool| -> Vec<BusDevice> {
        profiles
            .iter()
            .enumerate()
            .map(|(i, (name, kind, p))| BusDevice {
                meta: Arc::new(DeviceMeta {
                    id: (*name).into(),
                    name: (*name).into(),
                    label: None,
                    room: "bench".into(),
                    kind: *kind,
                }),
                unit_id: if with_dead && i == 2 { 9 } else { i as u8 + 1 },
                poll_interval: Duration::from_millis(1),
                timeout,
                profile: Arc::clone(p),
            })
            .collect()
    };

    // Computed wire time at 19200 8E1.
    let wire = SerialSettings {
        port: String::new(),
        baud: 19_200,
        parity: Parity::Even,
        data_bits: 8,
        stop_bits: 1,
        frame_gap: None,
    };
    let mut wire_cycle = Duration::ZERO;
    let mut reads = 0;
    for (_, _, p) in &profiles {
        for r in &p.plan().reads {
            wire_cycle += wire.exchange_time(r);
            reads += 1;
        }
    }
    let dead_reads = profiles[2].2.plan().reads.len();
    // A dead slave: its first request times out (the timeout covers gap, request and
    // wait) and the rest of its reads are skipped.
    let skipped_wire = wire_cycle
        - profiles[2]
            .2
            .plan()
            .reads
            .iter()
            .map(|r| wire.exchange_time(r))
            .sum::<Duration>();
    let dead_wire = skipped_wire + timeout;

    let pty = PtyPair::start();
    let mut spec = ModbusSpec::new();
    for (i, (_, _, p)) in profiles.iter().enumerate() {
        spec = spec.unit(i as u8 + 1, unit_for(p));
    }
    let server = ModbusServer::start_rtu(spec, &pty.device);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let live = rt.block_on(run(&pty, devices(false), seconds, None, timeout));
    let dead = rt.block_on(run(
        &pty,
        devices(true),
        seconds,
        Some("liebert-icom"),
        timeout,
    ));
    drop(server);

    println!(
        "RS-485 bus, 3 devices (XY-MD02, SDM630, Liebert iCOM: {reads} reads a cycle), 19200 baud"
    );
    println!(
        "  frame gap 3.5 characters = {} at 8E1",
        ms(wire.frame_gap())
    );
    println!(
        "  0 dead slaves: computed wire time {} a cycle; measured on the pty {} median, {} mean over {} cycles (min {}, max {})",
        ms(wire_cycle),
        ms(median(&live.cycles)),
        ms(mean(&live.cycles)),
        live.cycles.len(),
        ms(live.cycles.iter().min().copied().unwrap_or_default()),
        ms(live.cycles.iter().max().copied().unwrap_or_default())
    );
    println!(
        "  1 dead slave (Liebert absent, timeout {timeout_ms} ms, {dead_reads} reads of which 1 is sent):"
    );
    println!(
        "    computed wire time {} in a cycle that tries it, {} in one that skips it",
        ms(dead_wire),
        ms(skipped_wire)
    );
    println!(
        "    measured on the pty: {} median in the {} cycles that tried it (max {}), {} median in the {} that skipped it; {} mean over all cycles",
        ms(median(&dead.tried)),
        dead.tried.len(),
        ms(dead.tried.iter().max().copied().unwrap_or_default()),
        ms(median(&dead.skipped)),
        dead.skipped.len(),
        ms(mean(&dead.cycles)),
    );
    println!(
        "    growth when tried: {} median (the dead slave's timeout is {timeout_ms} ms); {} dead-slave polls, one per tick",
        ms(median(&dead.tried).saturating_sub(median(&dead.skipped))),
        dead.dead_polls
    );
    if live.cycles.is_empty() || dead.cycles.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
