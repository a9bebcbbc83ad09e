//! Modbus TCP CPU benchmark (`docs/BENCHMARKS.md`, "Modbus TCP and RS-485 buses"): the
//! CPU time the gateway spends per 1 000 register reads over TCP.
//!
//! `cargo bench --bench modbus -- [--seconds S]` (default 20)
//!
//! The demo's device simulator (this crate's `sim`, a tokio-modbus TCP server) serves
//! the five shipped profiles as units 1 to 5 on loopback, on its own thread and
//! runtime. The gateway side is the production poller: one TCP line
//! (`sources::modbus::spawn_tcp`, one connection shared by the five unit ids) at a 1 ms
//! poll interval, so requests go back to back, on a current-thread runtime in the main
//! thread. The figure is that thread's CPU time (user + system, from
//! `/proc/thread-self/stat`, 10 ms ticks): request encoding, socket calls, decoding and
//! one `Poll` per device per cycle. The simulator's CPU is not counted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dc_gateway::model::{DeviceMeta, Kind, Quality};
use dc_gateway::sim::{self, SimDevice};
use dc_gateway::sources::modbus::{self, BusDevice, TcpLine, profile};
use tokio::sync::mpsc;

/// CPU seconds (user + system) of the calling thread.
fn thread_cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = text.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, the 12th and 13th after the ")".
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> ExitCode {
    let mut seconds = 20u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => match args.next().and_then(|v| v.parse().ok()) {
                Some(s) => seconds = s,
                None => {
                    eprintln!("--seconds needs a number");
                    return ExitCode::from(2);
                }
            },
            "--bench" => {}
            other => {
                eprintln!(
                    "unknown argument {other}; usage: cargo bench --bench modbus -- [--seconds S]"
                );
                return ExitCode::from(2);
            }
        }
    }

    let profiles: Vec<(Kind, Arc<profile::Profile>)> = profile::shipped()
        .into_iter()
        .filter_map(|(file, text)| {
            let p = profile::parse(text, file).ok()?;
            Some((p.kind, Arc::new(p)))
        })
        .filter(|(k, _)| {
            [
                Kind::Climate,
                Kind::Generator,
                Kind::Ups,
                Kind::Cooling,
                Kind::PowerMeter,
            ]
            .contains(k)
        })
        .collect();

    // The simulator on its own thread and runtime.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
    let sim_devices: Vec<SimDevice> = profiles
        .iter()
        .enumerate()
        .map(|(i, (_, p))| SimDevice::new(i as u8 + 1, Arc::clone(p)))
        .collect();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("simulator runtime");
        rt.block_on(async move {
            let (addr, task) = sim::serve("127.0.0.1:0".parse().expect("address"), sim_devices)
                .await
                .expect("simulator");
            let _ = addr_tx.send(addr);
            let _ = task.await;
        });
    });
    let Ok(addr) = addr_rx.recv_timeout(Duration::from_secs(10)) else {
        eprintln!("the simulator did not start");
        return ExitCode::FAILURE;
    };

    let devices: Vec<BusDevice> = profiles
        .iter()
        .enumerate()
        .map(|(i, (kind, p))| BusDevice {
            meta: Arc::new(DeviceMeta {
                id: format!("bench{}", i + 1).into(),
                name: p.id.clone(),
                label: None,
                room: "bench".into(),
                kind: *kind,
            }),
            unit_id: i as u8 + 1,
            poll_interval: Duration::from_millis(1),
            timeout: Duration::from_millis(1000),
            profile: Arc::clone(p),
        })
        .collect();
    let per_device: Vec<(usize, u64)> = devices
        .iter()
        .map(|d| {
            let plan = d.profile.plan();
            (
                plan.reads.len(),
                plan.reads.iter().map(|r| u64::from(r.count)).sum(),
            )
        })
        .collect();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (polls, requests, registers, bad, wall, cpu) = rt.block_on(async move {
        let index: Vec<String> = devices.iter().map(|d| d.meta.id.to_string()).collect();
        let (tx, mut rx) = mpsc::channel(1024);
        let task = modbus::spawn_tcp(
            TcpLine {
                addr: addr.to_string(),
                devices,
            },
            tx,
        );
        // Warm up: connect, first cycles.
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_secs(1) {
            let _ = rx.recv().await;
        }
        let (mut polls, mut requests, mut registers, mut bad) = (0u64, 0u64, 0u64, 0u64);
        let cpu0 = thread_cpu_seconds();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(seconds) {
            let Some(p) = rx.recv().await else { break };
            let i = index
                .iter()
                .position(|id| id.as_str() == p.device.id.as_ref())
                .unwrap_or(0);
            polls += 1;
            requests += per_device[i].0 as u64;
            registers += per_device[i].1;
            if !p.comm_ok
                || p.samples
                    .iter()
                    .any(|s| matches!(s.quality, Quality::Timeout | Quality::CommError))
            {
                bad += 1;
            }
        }
        let wall = start.elapsed();
        let cpu = thread_cpu_seconds() - cpu0;
        task.abort();
        (polls, requests, registers, bad, wall, cpu)
    });

    println!(
        "Modbus TCP: 5 shipped profiles as units 1-5 behind one host:port, one connection, back to back"
    );
    println!("  wall              {:.1} s", wall.as_secs_f64());
    println!("  polls             {polls} ({bad} with a link failure)");
    println!(
        "  requests          {requests} ({:.0}/s)",
        requests as f64 / wall.as_secs_f64()
    );
    println!("  registers/bits    {registers}");
    println!(
        "  gateway CPU       {cpu:.2} s ({:.0} % of one core)",
        100.0 * cpu / wall.as_secs_f64()
    );
    if requests > 0 && registers > 0 {
        println!(
            "  CPU per 1000 read requests   {:.1} ms",
            1000.0 * cpu * 1000.0 / requests as f64
        );
        println!(
            "  CPU per 1000 registers read  {:.2} ms",
            1000.0 * cpu * 1000.0 / registers as f64
        );
    }
    if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
