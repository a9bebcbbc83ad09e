//! The site benchmark: dc-gateway beside collectd and Node-RED on one workload.
//!
//! `cargo bench --bench site -- [FLAGS]` (or `benches/run.sh [FLAGS]`, which first
//! installs the peers). In one run on this machine it:
//!
//! 1. starts a simulated site in this process: N Modbus TCP devices (the crate's own
//!    simulator, `dc_gateway::sim`), each on its own loopback port (or `--units U` of
//!    them behind one port, unit ids 1..U), with M holding registers mapped to
//!    canonical generator points (`configs::BENCH_POINTS`); with `--snmp-agents K`, K
//!    UPS-MIB agents (snmpsimd) for dc-gateway; with `--all-sinks`, a pty modem and a
//!    syslog drain for dc-gateway's SMS and syslog sinks;
//! 2. starts Mosquitto and VictoriaMetrics, and an independent MQTT subscriber on `#`
//!    that counts each contender's readings per second;
//! 3. runs each contender alone for the same window, alternately (A B C A B C ...) for
//!    R rounds: dc-gateway (`dc-gateway run`: rules, MQTT + InfluxDB sinks; with
//!    `--gateway-bin-b` a second dc-gateway binary on the same site file), the floor
//!    (a bare tokio-modbus client: `site/extras.rs`), collectd
//!    (`modbus` + `mqtt`), Node-RED (`modbus-read` → `function` → `mqtt out`), every
//!    device polled every second and every value published as its own MQTT message;
//! 4. measures per run, over the window only: CPU seconds (user + system, children
//!    included, from `/proc/<pid>/stat`), peak RSS (`VmHWM`), readings received by the
//!    subscriber, and the poll cycles the simulator served (missed and late polls);
//! 5. measures alarm latency: a register is changed across a threshold at known
//!    instants, and each alarm message's receive time is compared with the simulator's
//!    timestamp of the read that first returned the change;
//! 6. prints a Markdown report (also written to `<out>/results.md`, raw figures to
//!    `<out>/results.json`) with ratios to collectd (and of the second dc-gateway
//!    binary to the first) and the goals met or not.
//!
//! The machine is shared by the contender, the simulator, the broker, the database and
//! the subscriber: figures are comparable with each other, not absolute. See
//! `docs/BENCHMARKS.md` for what limits each figure.

#[path = "site/args.rs"]
mod args;
#[path = "site/configs.rs"]
mod configs;
#[path = "site/extras.rs"]
mod extras;
#[path = "site/procs.rs"]
mod procs;
#[path = "site/report.rs"]
mod report;
#[path = "site/subscriber.rs"]
mod subscriber;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dc_gateway::model::{Timestamp, Value};
use dc_gateway::sim::{self, SimDevice, Values};
use tokio::sync::mpsc;

use args::{Args, Contender};
use configs::Endpoints;
use procs::Proc;
use report::{Latency, RunResult};
use subscriber::{AlarmMsg, Subscriber};

/// Where Node-RED is installed (by `benches/run.sh`).
const NODE_RED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/node-red");

/// How dc-gateway is set up here, for the report.
const GATEWAY_SETUP: &str = "`dc-gateway run`: default Article 10 rules (+ `fuel_low` on-delay 0), MQTT and InfluxDB (v2 API on VictoriaMetrics) sinks, web server";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = argv.iter().position(|a| a == "--floor-client") {
        return match argv.get(i + 1).map(|p| extras::floor_client(Path::new(p))) {
            Some(Ok(())) => ExitCode::SUCCESS,
            Some(Err(e)) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
            None => {
                eprintln!("--floor-client needs the plan file");
                ExitCode::from(2)
            }
        };
    }
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return if msg == args::USAGE {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&rt, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nsite benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything a contender run needs.
struct Bench<'a> {
    args: &'a Args,
    out: PathBuf,
    ticks: f64,
    values: Vec<Arc<Values>>,
    sub: Subscriber,
    alarms: mpsc::UnboundedReceiver<AlarmMsg>,
    gateway_web_port: u16,
    /// Mosquitto's, VictoriaMetrics' and snmpsimd's PIDs.
    peer_pids: Vec<u32>,
    /// The floor client's work list (`--floor-client`).
    floor_plan: PathBuf,
}

fn run(rt: &tokio::runtime::Runtime, args: &Args) -> Result<(), String> {
    let _enter = rt.enter();
    check_tools(args)?;
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/bench-site")
                .join(t.to_string())
        }
    };
    for d in [
        "",
        "gateway/profiles",
        "collectd",
        "node-red",
        "mosquitto",
        "victoria",
        "floor",
        "snmp",
        "modem",
    ] {
        mkdir(&out.join(d))?;
    }
    eprintln!("site benchmark: output in {}", out.display());

    // The simulated site.
    let profile_text = configs::profile(args.registers);
    let profile = Arc::new(
        dc_gateway::sources::modbus::profile::parse(&profile_text, "bench-generator.toml")
            .map_err(|e| format!("bench profile: {e}"))?,
    );
    let mut values = Vec::new();
    let mut devices = Vec::new();
    let mut servers = Vec::new();
    let mut index = 0;
    while index < args.devices {
        let mut units = Vec::new();
        let first = index;
        while index < args.devices && units.len() < args.units {
            let unit = u8::try_from(units.len() + 1).map_err(|_| "unit id")?;
            let mut dev = SimDevice::new(unit, Arc::clone(&profile));
            for p in configs::BENCH_POINTS.iter().take(args.registers) {
                dev = dev
                    .with(p.point, (p.value)())
                    .map_err(|e| format!("simulator: {e}"))?;
            }
            values.push(Arc::clone(&dev.values));
            units.push(dev);
            index += 1;
        }
        let (addr, task) = rt
            .block_on(sim::serve(
                "127.0.0.1:0".parse().map_err(|_| "address")?,
                units,
            ))
            .map_err(|e| format!("simulator: {e}"))?;
        for (k, _) in (first..index).enumerate() {
            devices.push((addr.port(), u8::try_from(k + 1).map_err(|_| "unit id")?));
        }
        servers.push(task);
    }
    eprintln!(
        "  simulator: {} devices on {} endpoints from port {}",
        args.devices,
        servers.len(),
        devices[0].0
    );
    let agents = if args.snmp_agents > 0 {
        let a = extras::Agents::start(&out.join("snmp"), args.snmp_agents)?;
        eprintln!("  snmpsimd: {} UPS-MIB agents", a.ports.len());
        Some(a)
    } else {
        None
    };
    let (modem, syslog) = if args.all_sinks {
        let m = extras::Modem::start(&out.join("modem"))?;
        let d = extras::SyslogDrain::start()?;
        eprintln!(
            "  modem on {}, syslog drain on UDP {}",
            m.port.display(),
            d.port
        );
        (Some(m), Some(d))
    } else {
        (None, None)
    };

    // Broker and database.
    let mqtt_port = procs::free_port()?;
    let conf = out.join("mosquitto/mosquitto.conf");
    write(&conf, &configs::mosquitto_conf(mqtt_port))?;
    let mut mosquitto = Proc::spawn(
        "mosquitto",
        Command::new(procs::which("mosquitto").ok_or("mosquitto not found")?)
            .arg("-c")
            .arg(&conf),
        &out.join("mosquitto/mosquitto.log"),
    )?;
    procs::wait_for_port(&mut mosquitto, mqtt_port, Duration::from_secs(10))?;
    let influx_port = procs::free_port()?;
    let mut victoria = Proc::spawn(
        "victoria-metrics",
        Command::new(procs::which("victoria-metrics").ok_or("victoria-metrics not found")?)
            .arg(format!(
                "-storageDataPath={}",
                out.join("victoria/data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{influx_port}"))
            .arg("-retentionPeriod=1d")
            .arg("-search.latencyOffset=0s"),
        &out.join("victoria/victoria.log"),
    )?;
    procs::wait_for_port(&mut victoria, influx_port, Duration::from_secs(20))?;
    eprintln!("  mosquitto on {mqtt_port}, victoria-metrics on {influx_port}");

    let (alarm_tx, alarms) = mpsc::unbounded_channel();
    let sub = Subscriber::start(mqtt_port, alarm_tx);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sub.ready() {
        if Instant::now() > deadline {
            return Err("the counting subscriber did not connect to mosquitto".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let endpoints = Endpoints {
        devices,
        snmp_ports: agents.as_ref().map(|a| a.ports.clone()).unwrap_or_default(),
        extra_sinks: match (&syslog, &modem) {
            (Some(d), Some(m)) => Some((d.port, m.port.display().to_string())),
            _ => None,
        },
        registers: args.registers,
        mqtt_port,
        influx_port,
    };
    let gateway_web_port = procs::free_port()?;
    let queue = write_configs(args, &out, &endpoints, gateway_web_port)?;
    let floor_plan = out.join("floor/plan.txt");
    write(
        &floor_plan,
        &extras::floor_plan(args.registers, &configs::by_endpoint(&endpoints)),
    )?;
    let mut peer_pids = vec![mosquitto.pid(), victoria.pid()];
    if let Some(a) = &agents {
        peer_pids.push(a.pid());
    }
    let versions = versions(args, &queue);
    let mut bench = Bench {
        args,
        out: out.clone(),
        ticks: procs::clock_ticks(),
        values,
        sub,
        alarms,
        gateway_web_port,
        peer_pids,
        floor_plan,
    };

    let mut runs = Vec::new();
    for round in 1..=args.rounds {
        for &c in &args.contenders {
            eprintln!("round {round}/{}: {} ...", args.rounds, args.label(c));
            let r = bench.measure(c, round)?;
            eprintln!(
                "  {:.2} CPU s, {:.4} CPU s per 1000 values, peak RSS {:.1} MiB, {:.0} values/s delivered, {} polls ({} expected), {} missed, {} late",
                r.cpu_s,
                r.cpu_per_1000(),
                r.rss_mib(),
                r.delivered_per_s(),
                r.polls,
                r.expected_polls,
                r.missed,
                r.late
            );
            runs.push(r);
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    let mut latencies = Vec::new();
    if args.alarm_changes > 0 {
        for c in [Contender::Gateway, Contender::GatewayB, Contender::Collectd] {
            if args.contenders.contains(&c) {
                eprintln!(
                    "alarm latency: {} ({} changes) ...",
                    args.label(c),
                    args.alarm_changes
                );
                match bench.latency(c) {
                    Ok(l) => {
                        eprintln!(
                            "  {} of {} changes raised/cleared an alarm; p50 {:.1} ms, p99 {:.1} ms from the read",
                            l.from_read_ms.len(),
                            l.changes,
                            report::percentile(&l.from_read_ms, 50.0),
                            report::percentile(&l.from_read_ms, 99.0)
                        );
                        latencies.push(l);
                    }
                    Err(e) => eprintln!("  alarm latency of {} not measured: {e}", args.label(c)),
                }
            }
        }
    }

    let md = report::markdown(args, &versions, &runs, &latencies);
    println!("\n{md}");
    write(&out.join("results.md"), &md)?;
    write(
        &out.join("results.json"),
        &results_json(args, &versions, &runs, &latencies),
    )?;
    eprintln!("results: {}", out.join("results.md").display());

    if let Some(m) = &modem {
        eprintln!(
            "modem: {} texts sent by the SMS sink",
            m.sent.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    if let Some(d) = &syslog {
        eprintln!(
            "syslog drain: {} messages",
            d.received.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    drop(agents);
    drop(modem);
    bench.sub.stop();
    mosquitto.stop(Duration::from_secs(5));
    victoria.stop(Duration::from_secs(10));
    for s in servers {
        s.abort();
    }
    Ok(())
}

impl Bench<'_> {
    /// Start a contender and wait until its readings reach the broker, then for the
    /// warm-up.
    fn start(&mut self, c: Contender, alarms: bool) -> Result<Proc, String> {
        let out = &self.out;
        let mut p = match c {
            Contender::Gateway | Contender::GatewayB => {
                let bin = self
                    .args
                    .gateway_bin_of(c)
                    .ok_or_else(|| format!("{}: no binary given", c.name()))?;
                // A fresh buffer each time: nothing left from an earlier run is replayed.
                let _ = std::fs::remove_dir_all(out.join("gateway/state"));
                let mut cmd = match self.args.gateway_wrapper.split_first() {
                    Some((w, rest)) => {
                        let mut cmd = Command::new(w);
                        cmd.args(rest).arg(bin);
                        cmd
                    }
                    None => Command::new(bin),
                };
                cmd.arg("run")
                    .arg("--config")
                    .arg(out.join("gateway/site.toml"))
                    .env("DCGW_INFLUX_TOKEN", "bench")
                    .env("DCGW_SNMP_COMMUNITY", "public");
                let log = out.join(format!("gateway/gateway{}.log", gateway_suffix(c)));
                Proc::spawn(c.name(), &mut cmd, &log)?
            }
            Contender::Collectd => {
                let conf = if alarms {
                    "collectd/collectd-alarms.conf"
                } else {
                    "collectd/collectd.conf"
                };
                Proc::spawn(
                    "collectd",
                    Command::new(procs::which("collectd").ok_or("collectd not found")?)
                        .arg("-f")
                        .arg("-C")
                        .arg(out.join(conf)),
                    &out.join("collectd/collectd.log"),
                )?
            }
            Contender::Floor => {
                let exe = std::env::current_exe()
                    .map_err(|e| format!("floor: where is this benchmark binary? {e}"))?;
                let mut p = Proc::spawn(
                    "floor",
                    Command::new(exe)
                        .arg("--floor-client")
                        .arg(&self.floor_plan),
                    &out.join("floor/floor.log"),
                )?;
                // It publishes nothing: wait for its first polls, then the warm-up.
                std::thread::sleep(Duration::from_secs(2) + self.args.warmup);
                p.check_alive()?;
                return Ok(p);
            }
            Contender::NodeRed => {
                let dir = out.join("node-red");
                Proc::spawn(
                    "node-red",
                    Command::new(procs::which("node").ok_or("node not found")?)
                        .arg(Path::new(NODE_RED_DIR).join("node_modules/node-red/red.js"))
                        .arg("--userDir")
                        .arg(&dir)
                        .arg("--settings")
                        .arg(dir.join("settings.js")),
                    &dir.join("node-red.log"),
                )?
            }
        };
        let before = self.sub.total(c);
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.sub.total(c) == before {
            p.check_alive()?;
            if Instant::now() > deadline {
                let tail = p.log_tail(30);
                p.stop(Duration::from_secs(5));
                return Err(format!(
                    "{}: no reading reached the broker within 120 s; log tail:\n{tail}",
                    c.name()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(self.args.warmup);
        p.check_alive()?;
        Ok(p)
    }

    fn stop(&self, c: Contender, p: &mut Proc) {
        let grace = if c.is_gateway() && !self.args.gateway_wrapper.is_empty() {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(10)
        };
        p.stop(grace);
    }

    /// One contender, one round.
    fn measure(&mut self, c: Contender, round: usize) -> Result<RunResult, String> {
        let mut p = self.start(c, false)?;
        let pid = p.pid();
        let me = std::process::id();
        for v in &self.values {
            v.record_polls(true);
        }
        let t0 = Instant::now();
        let s0 = self.sub.now_s();
        let cpu0 =
            procs::cpu_seconds(pid, self.ticks).ok_or("cannot read the contender's /proc stat")?;
        let h0 = procs::cpu_seconds(me, self.ticks).unwrap_or(0.0);
        let d0 = self.sub.total(c);
        let peers = |b: &Self| -> f64 {
            b.peer_pids
                .iter()
                .filter_map(|p| procs::cpu_seconds(*p, b.ticks))
                .sum()
        };
        let p0 = peers(self);
        let m0 = procs::machine_busy_seconds(self.ticks).unwrap_or(0.0);
        std::thread::sleep(Duration::from_secs(self.args.seconds));
        let m1 = procs::machine_busy_seconds(self.ticks).unwrap_or(0.0);
        let p1 = peers(self);
        let cpu1 =
            procs::cpu_seconds(pid, self.ticks).ok_or("cannot read the contender's /proc stat")?;
        let h1 = procs::cpu_seconds(me, self.ticks).unwrap_or(0.0);
        let d1 = self.sub.total(c);
        let s1 = self.sub.now_s();
        let window_s = t0.elapsed().as_secs_f64();
        let logs: Vec<Vec<Timestamp>> = self.values.iter().map(|v| v.take_polls()).collect();
        for v in &self.values {
            v.record_polls(false);
        }
        let peak_rss_kb = procs::status_kb(pid, "VmHWM").unwrap_or(0);
        // Where the memory is at the end of the window: anonymous pages (heap, stacks,
        // SQLite caches) and file pages (the code and read-only data actually touched).
        let rss_anon_kb = procs::status_kb(pid, "RssAnon").unwrap_or(0);
        let rss_file_kb = procs::status_kb(pid, "RssFile").unwrap_or(0);
        p.check_alive()?;
        // The gateway's own account of its sinks, kept beside the results.
        if c.is_gateway()
            && let Some(body) = http_get(self.gateway_web_port, "/api/v1/sinks")
        {
            let _ = std::fs::write(
                self.out.join(format!(
                    "gateway/sinks{}-round{round}.json",
                    gateway_suffix(c)
                )),
                body,
            );
        }
        self.stop(c, &mut p);

        let slots = window_s.floor() as u64;
        let (mut polls, mut missed, mut late, mut max_gap) = (0u64, 0u64, 0u64, 0i64);
        for log in &logs {
            polls += log.len() as u64;
            missed += slots.saturating_sub(log.len() as u64);
            if log.len() < 2 {
                max_gap = max_gap.max((window_s * 1000.0) as i64);
            }
            for w in log.windows(2) {
                let gap = w[1].millis() - w[0].millis();
                max_gap = max_gap.max(gap);
                if gap > 1500 {
                    late += 1;
                }
            }
        }
        let bins = self.sub.bins(c, s0, s1);
        Ok(RunResult {
            contender: c,
            round,
            window_s,
            cpu_s: cpu1 - cpu0,
            polls,
            expected_polls: slots * self.values.len() as u64,
            values_polled: polls * self.args.registers as u64,
            delivered: d1 - d0,
            per_s: if bins.is_empty() {
                0.0
            } else {
                bins.iter().sum::<u64>() as f64 / bins.len() as f64
            },
            min_bin: bins.iter().copied().min().unwrap_or(0),
            max_bin: bins.iter().copied().max().unwrap_or(0),
            peak_rss_kb,
            rss_anon_kb,
            rss_file_kb,
            missed,
            late,
            max_gap_ms: max_gap,
            harness_cpu_s: h1 - h0,
            peers_cpu_s: p1 - p0,
            other_cpu_s: ((m1 - m0) - (cpu1 - cpu0) - (h1 - h0) - (p1 - p0)).max(0.0),
        })
    }

    /// Alarm latency of a contender that publishes alarms to MQTT.
    fn latency(&mut self, c: Contender) -> Result<Latency, String> {
        let n = self.values.len();
        let changes = self.args.alarm_changes;
        let mut p = self.start(c, true)?;
        while self.alarms.try_recv().is_ok() {}
        // Each device changes at most every 3 s, so every change is polled (1 s) and its
        // alarm delivered before the next one on that device.
        let spacing = Duration::from_millis((3000 / n as u64).max(50));
        let mut raised = vec![false; n];
        // Per device: the change waiting for its alarm message (raise?, set time).
        let mut pending: HashMap<usize, (bool, i64)> = HashMap::new();
        let mut lat = Latency {
            contender: c,
            path: match c {
                Contender::Gateway | Contender::GatewayB => {
                    "rule `fuel_low` → `gw/alarms/events` (QoS 1)".into()
                }
                Contender::Collectd => {
                    "`threshold` → `exec` NotificationExec → `mosquitto_pub` (QoS 1)".into()
                }
                Contender::NodeRed | Contender::Floor => String::new(),
            },
            changes,
            from_read_ms: Vec::new(),
            from_change_ms: Vec::new(),
            cpu_s: 0.0,
            other_cpu_s: 0.0,
            samples: Vec::new(),
        };
        let pid = p.pid();
        let me = std::process::id();
        let all = |b: &Self| -> [f64; 4] {
            [
                procs::cpu_seconds(pid, b.ticks).unwrap_or(0.0),
                procs::cpu_seconds(me, b.ticks).unwrap_or(0.0),
                b.peer_pids
                    .iter()
                    .filter_map(|p| procs::cpu_seconds(*p, b.ticks))
                    .sum(),
                procs::machine_busy_seconds(b.ticks).unwrap_or(0.0),
            ]
        };
        let before = all(self);
        let start = Instant::now();
        for k in 0..changes {
            let d = k % n;
            let up = !raised[d];
            raised[d] = up;
            let v = if up {
                configs::ALARM_LOW
            } else {
                configs::ALARM_NORMAL
            };
            self.values[d]
                .set_value(configs::ALARM_POINT, Value::Number(v))
                .map_err(|e| format!("simulator: {e}"))?;
            pending.insert(d, (up, Timestamp::now().millis()));
            let next = start + spacing * (k as u32 + 1);
            self.collect_alarms(c, &mut pending, &mut lat, next);
        }
        self.collect_alarms(
            c,
            &mut pending,
            &mut lat,
            Instant::now() + Duration::from_secs(10),
        );
        let after = all(self);
        let d: Vec<f64> = (0..4).map(|i| after[i] - before[i]).collect();
        lat.cpu_s = d[0];
        lat.other_cpu_s = (d[3] - d[0] - d[1] - d[2]).max(0.0);
        // Leave every device healthy for whatever runs next.
        for (d, up) in raised.iter().enumerate() {
            if *up {
                let _ = self.values[d]
                    .set_value(configs::ALARM_POINT, Value::Number(configs::ALARM_NORMAL));
            }
        }
        p.check_alive()?;
        self.stop(c, &mut p);
        Ok(lat)
    }

    /// Match alarm messages to pending changes until `until` (or until none is pending
    /// after the last change).
    fn collect_alarms(
        &mut self,
        c: Contender,
        pending: &mut HashMap<usize, (bool, i64)>,
        lat: &mut Latency,
        until: Instant,
    ) {
        let final_wait = until > Instant::now() + Duration::from_secs(5);
        loop {
            while let Ok(m) = self.alarms.try_recv() {
                let Some((d, up)) = parse_alarm(c, &m) else {
                    continue;
                };
                let Some(&(want, set_ms)) = pending.get(&d) else {
                    continue;
                };
                if want != up {
                    continue;
                }
                pending.remove(&d);
                let Some(read) = self.values[d]
                    .times(configs::ALARM_POINT)
                    .and_then(|t| t.first_read_after_change)
                else {
                    continue;
                };
                lat.from_read_ms.push((m.recv_ms - read.millis()) as f64);
                lat.from_change_ms.push((m.recv_ms - set_ms) as f64);
                lat.samples.push((d, up, set_ms, read.millis(), m.recv_ms));
            }
            if Instant::now() >= until || (final_wait && pending.is_empty()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// `(device index, raised?)` of an alarm message, if it is one of `c`'s about the
/// alarm point.
fn parse_alarm(c: Contender, m: &AlarmMsg) -> Option<(usize, bool)> {
    let dev_index = |id: &str| {
        id.strip_prefix("dev")?
            .parse::<usize>()
            .ok()?
            .checked_sub(1)
    };
    match c {
        Contender::Gateway | Contender::GatewayB => {
            if m.topic != "gw/alarms/events" {
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(&m.payload).ok()?;
            if v.get("rule")?.as_str()? != "fuel_low" {
                return None;
            }
            let up = match v.get("state")?.as_str()? {
                "raised" => true,
                "cleared" => false,
                _ => return None,
            };
            Some((dev_index(v.get("device")?.as_str()?)?, up))
        }
        Contender::Collectd => {
            let dev = m.topic.strip_prefix("cd/alarms/")?;
            let up = match m.payload.trim() {
                "WARNING" | "FAILURE" => true,
                "OKAY" => false,
                _ => return None,
            };
            Some((dev_index(dev)?, up))
        }
        Contender::NodeRed | Contender::Floor => None,
    }
}

/// Write every contender's config and check it with the contender itself. Returns
/// which sink queue the gateway runs with, for the report.
fn write_configs(args: &Args, out: &Path, e: &Endpoints, web_port: u16) -> Result<String, String> {
    write(
        &out.join(format!("gateway/profiles/{}.toml", configs::PROFILE_ID)),
        &configs::profile(args.registers),
    )?;
    // The durable buffer (`[storage]`) when every dc-gateway binary has it; a build
    // from before it refuses the section, and runs with its in-memory queue. Every
    // binary of the run reads the same site file.
    let site_file = out.join("gateway/site.toml");
    let bins = args.gateway_bins();
    let check = |durable: bool| -> Result<Vec<(&Path, std::process::Output)>, String> {
        write(&site_file, &configs::gateway_site(e, web_port, durable))?;
        bins.iter()
            .map(|(_, bin)| {
                Command::new(bin)
                    .arg("check-config")
                    .arg("--config")
                    .arg(&site_file)
                    .env("DCGW_INFLUX_TOKEN", "bench")
                    .env("DCGW_SNMP_COMMUNITY", "public")
                    .output()
                    .map(|o| (*bin, o))
                    .map_err(|e| format!("cannot run {}: {e}", bin.display()))
            })
            .collect()
    };
    let mut queue = format!(
        "sink queues: durable SQLite buffer in {}",
        out.join("gateway/state").display()
    );
    let mut res = check(true)?;
    if res
        .iter()
        .any(|(_, o)| !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("storage"))
    {
        queue = "sink queues: in memory (a build without the `[storage]` section, i.e. no durable buffer)".into();
        res = check(false)?;
    }
    if let Some((bin, o)) = res.iter().find(|(_, o)| !o.status.success()) {
        return Err(format!(
            "{} rejects the generated gateway site:\n{}{}",
            bin.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }

    let base = out.join("collectd");
    let base_s = base.display().to_string();
    write(
        &base.join("collectd.conf"),
        &configs::collectd_conf(e, &base_s, None),
    )?;
    let script = base.join("notify.sh");
    write(&script, &configs::collectd_notify_script(e.mqtt_port))?;
    chmod(&script, "755")?;
    write(
        &base.join("collectd-alarms.conf"),
        &configs::collectd_conf(e, &base_s, Some(&script.display().to_string())),
    )?;
    if args.contenders.contains(&Contender::Collectd) {
        for conf in ["collectd.conf", "collectd-alarms.conf"] {
            let t = Command::new(procs::which("collectd").ok_or("collectd not found")?)
                .arg("-t")
                .arg("-C")
                .arg(base.join(conf))
                .output()
                .map_err(|e| format!("cannot run collectd -t: {e}"))?;
            if !t.status.success() {
                return Err(format!(
                    "collectd rejects the generated {conf}:\n{}{}",
                    String::from_utf8_lossy(&t.stdout),
                    String::from_utf8_lossy(&t.stderr)
                ));
            }
        }
    }

    let nr = out.join("node-red");
    write(
        &nr.join("settings.js"),
        &configs::node_red_settings(procs::free_port()?),
    )?;
    write(&nr.join("flows.json"), &configs::node_red_flows(e))?;
    Ok(queue)
}

fn check_tools(args: &Args) -> Result<(), String> {
    let hint = "run benches/run.sh, which installs the benchmark's peers";
    let mut need = vec!["mosquitto", "victoria-metrics"];
    if args.contenders.contains(&Contender::Collectd) {
        need.extend(["collectd", "mosquitto_pub"]);
    }
    if args.contenders.contains(&Contender::NodeRed) {
        need.push("node");
        let red = Path::new(NODE_RED_DIR).join("node_modules/node-red/red.js");
        let modbus =
            Path::new(NODE_RED_DIR).join("node_modules/node-red-contrib-modbus/package.json");
        if !red.is_file() || !modbus.is_file() {
            return Err(format!(
                "Node-RED is not installed in {NODE_RED_DIR}: {hint}"
            ));
        }
    }
    for t in need {
        if procs::which(t).is_none() {
            return Err(format!("{t} not found: {hint}"));
        }
    }
    for (_, bin) in args.gateway_bins() {
        if !bin.is_file() {
            return Err(format!("no dc-gateway binary at {}", bin.display()));
        }
    }
    Ok(())
}

fn versions(args: &Args, queue: &str) -> Vec<(String, String)> {
    let first_line = |cmd: &mut Command| {
        cmd.output()
            .ok()
            .map(|o| {
                let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
                s.push_str(&String::from_utf8_lossy(&o.stderr));
                s.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default()
    };
    let dpkg =
        |pkg: &str| first_line(Command::new("dpkg-query").args(["-W", "-f=${Version}", pkg]));
    let npm_version = |pkg: &str| {
        std::fs::read_to_string(
            Path::new(NODE_RED_DIR)
                .join("node_modules")
                .join(pkg)
                .join("package.json"),
        )
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("version")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "not installed".into())
    };
    let mut v: Vec<(String, String)> = args
        .gateway_bins()
        .into_iter()
        .filter(|(c, _)| *c == Contender::Gateway || args.contenders.contains(c))
        .map(|(c, bin)| {
            (
                c.name().to_string(),
                format!(
                    "{} ({}{}); {GATEWAY_SETUP}; {queue}",
                    first_line(Command::new(bin).arg("--version")),
                    bin.display(),
                    if args.gateway_wrapper.is_empty() {
                        String::new()
                    } else {
                        format!(", under `{}`", args.gateway_wrapper.join(" "))
                    }
                ),
            )
        })
        .collect();
    if args.contenders.contains(&Contender::Collectd) {
        v.push((
            "collectd".into(),
            format!(
                "{} (Debian collectd-core), `modbus` (one request per register) + `mqtt` plugins",
                dpkg("collectd-core")
            ),
        ));
    }
    if args.contenders.contains(&Contender::NodeRed) {
        v.push((
            "Node-RED".into(),
            format!(
                "{} with node-red-contrib-modbus {} on Node.js {}",
                npm_version("node-red"),
                npm_version("node-red-contrib-modbus"),
                first_line(Command::new("node").arg("--version"))
            ),
        ));
    }
    if args.contenders.contains(&Contender::Floor) {
        v.push((
            "floor".into(),
            "this benchmark binary with `--floor-client`: tokio-modbus 0.17, one thread, the same reads on the same connections, nothing decoded or published".into(),
        ));
    }
    v.push(("Mosquitto".into(), dpkg("mosquitto")));
    v.push(("VictoriaMetrics".into(), dpkg("victoria-metrics")));
    v
}

fn results_json(
    args: &Args,
    versions: &[(String, String)],
    runs: &[RunResult],
    lat: &[Latency],
) -> String {
    use serde_json::json;
    let runs: Vec<_> = runs
        .iter()
        .map(|r| {
            json!({
                "round": r.round, "contender": r.contender.name(),
                "label": args.label(r.contender), "window_s": r.window_s,
                "cpu_s": r.cpu_s, "cpu_s_per_1000_values": r.cpu_per_1000(),
                "polls": r.polls, "expected_polls": r.expected_polls, "values_polled": r.values_polled,
                "delivered": r.delivered, "delivered_per_s": r.delivered_per_s(),
                "min_per_s": r.min_bin, "max_per_s": r.max_bin, "peak_rss_kb": r.peak_rss_kb,
                "missed_polls": r.missed, "late_polls": r.late, "max_gap_ms": r.max_gap_ms,
                "harness_cpu_s": r.harness_cpu_s, "peers_cpu_s": r.peers_cpu_s,
                "other_cpu_s": r.other_cpu_s,
                "rss_anon_kb": r.rss_anon_kb, "rss_file_kb": r.rss_file_kb,
            })
        })
        .collect();
    let lat: Vec<_> = lat
        .iter()
        .map(|l| {
            json!({
                "contender": l.contender.name(), "label": args.label(l.contender),
                "path": l.path, "changes": l.changes,
                "from_read_ms": l.from_read_ms, "from_change_ms": l.from_change_ms,
                "cpu_s": l.cpu_s, "other_cpu_s": l.other_cpu_s,
                "samples": l.samples.iter().map(|(d, up, set, read, recv)| json!({
                    "device": configs::device_id(*d), "raised": up, "changed_ms": set,
                    "first_read_ms": read, "received_ms": recv,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = json!({
        "machine": report::machine(),
        "devices": args.devices, "registers": args.registers, "seconds": args.seconds,
        "rounds": args.rounds, "quick": args.quick,
        "units": args.units, "snmp_agents": args.snmp_agents, "all_sinks": args.all_sinks,
        "versions": versions.iter().map(|(k, v)| json!({"name": k, "version": v})).collect::<Vec<_>>(),
        "runs": runs, "alarm_latency": lat,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// What tells the second dc-gateway binary's files in `<out>/gateway/` apart:
/// `gateway-b.log` beside `gateway.log`, `sinks-b-round1.json` beside `sinks-round1.json`.
fn gateway_suffix(c: Contender) -> &'static str {
    if c == Contender::GatewayB { "-b" } else { "" }
}

/// A plain HTTP/1.0 GET on loopback; the body, if the server answered.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    // Mosquitto drops root privileges: its config must be reachable by any user.
    chmod(p, "755")
}

fn chmod(p: &Path, mode: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let m = u32::from_str_radix(mode, 8).map_err(|e| e.to_string())?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m))
        .map_err(|e| format!("cannot chmod {}: {e}", p.display()))
}

fn write(p: &Path, text: &str) -> Result<(), String> {
    std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
}
