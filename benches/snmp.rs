//! The SNMP benchmark (`docs/BENCHMARKS.md`, "SNMP source").
//!
//! `cargo bench --bench snmp -- [--agents N] [--oids M] [--seconds S] [--traps T]`
//!
//! 1. Starts `snmpsimd` (Debian package `snmpsim`) on one loopback UDP port serving N
//!    recordings (one community per agent), each with M INTEGER objects.
//! 2. **One round**: N clients read their M OIDs concurrently (the poller's own
//!    `read` path: one GET request of up to 32 varbinds per agent), 20 rounds; prints
//!    the wall time of a whole round and the p50/p99 of a single agent's read.
//! 3. **Sustained**: N pollers (`sources::snmp::spawn`, one task each) at a 1 s period
//!    for S seconds; prints polls received against the schedule, the worst gap between
//!    two polls of one agent, and the CPU time of this process (the gateway side: UDP,
//!    BER, decoding, one `Poll` per agent per second) and of snmpsimd.
//! 4. **Trap latency**: T SNMPv2c `upsTrapOnBattery` traps sent one at a time to the
//!    trap receiver (`spawn_traps`) by an async-snmp client in this process; prints
//!    p50/p99/max from the send call to the `Poll` coming out of the receiver.
//!
//! The simulator is a Python program on the same 2 cores: round times include its
//! answer time; CPU is split per process.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dc_gateway::model::{DeviceMeta, Kind, Poll};
use dc_gateway::points::{self, PointType};
use dc_gateway::sources::snmp::profile::{Access, OidPoint, parse_oid};
use dc_gateway::sources::snmp::{self, Credentials, SnmpAgent, SnmpProfile, TrapAgent, TrapConfig};
use tokio::sync::mpsc;

struct Args {
    agents: usize,
    oids: usize,
    seconds: u64,
    traps: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        agents: 50,
        oids: 30,
        seconds: 30,
        traps: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match flag.as_str() {
            "--agents" => a.agents = val("--agents")? as usize,
            "--oids" => a.oids = val("--oids")? as usize,
            "--seconds" => a.seconds = val("--seconds")?,
            "--traps" => a.traps = val("--traps")? as usize,
            "--bench" => {}
            "--help" | "-h" => {
                return Err("usage: cargo bench --bench snmp -- [--agents 50] [--oids 30] [--seconds 30] [--traps 200]".into());
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

/// CPU seconds (user + system) of a process, from /proc (clock ticks of 1/100 s).
fn cpu_seconds(pid: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = text.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the ")".
    (ticks(11) + ticks(12)) / 100.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Sim {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
}

fn start_snmpsim(agents: usize, oids: usize) -> Result<Sim, String> {
    let dir = tempfile::Builder::new()
        .prefix("dcgw-bench-snmpsim-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    chmod(dir.path(), 0o755);
    let data = dir.path().join("data");
    let cache = dir.path().join("cache");
    std::fs::create_dir(&data).map_err(|e| e.to_string())?;
    std::fs::create_dir(&cache).map_err(|e| e.to_string())?;
    chmod(&data, 0o755);
    chmod(&cache, 0o777);
    for a in 0..agents {
        let mut rec = String::from("1.3.6.1.2.1.1.3.0|67|100\n");
        for i in 0..oids {
            rec.push_str(&format!(
                "1.3.6.1.4.1.99999.1.{}.0|2|{}\n",
                i + 1,
                200 + a + i
            ));
        }
        let f = data.join(format!("agent{a:03}.snmprec"));
        std::fs::write(&f, rec).map_err(|e| e.to_string())?;
        chmod(&f, 0o644);
    }
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = sock.local_addr().map_err(|e| e.to_string())?.port();
    drop(sock);
    let log = dir.path().join("snmpsimd.log");
    let logf = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let child = Command::new("snmpsimd")
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
        .args([
            "--process-user=nobody",
            "--process-group=nogroup",
            "--logging-method=null",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(logf)
        .spawn()
        .map_err(|e| format!("cannot start snmpsimd ({e}): apt-get install -y snmpsim"))?;
    let sim = Sim {
        child,
        port,
        _dir: dir,
    };
    // Ready when it answers a GET of the last agent's first object.
    let start = Instant::now();
    loop {
        let ok = Command::new("snmpget")
            .args([
                "-v2c",
                "-c",
                &format!("agent{:03}", agents - 1),
                "-m",
                "",
                "-t",
                "1",
                "-r",
                "0",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .arg("1.3.6.1.4.1.99999.1.1.0")
            .env("SNMP_PERSISTENT_DIR", sim._dir.path())
            .output()
            .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("INTEGER"))
            .unwrap_or(false);
        if ok {
            return Ok(sim);
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "snmpsimd not ready after 60 s: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn bench_profile(oids: usize) -> Arc<SnmpProfile> {
    let numbers: Vec<_> = points::points_of(Kind::Ups)
        .iter()
        .filter(|p| p.ty == PointType::Number)
        .collect();
    let points = (0..oids)
        .map(|i| OidPoint {
            point: numbers[i % numbers.len()],
            access: Access::Get(
                parse_oid(&format!("1.3.6.1.4.1.99999.1.{}.0", i + 1)).expect("oid"),
            ),
            scale: 0.1,
            offset: 0.0,
            enum_map: Vec::new(),
            true_values: Vec::new(),
            unavailable: Vec::new(),
            min: None,
            max: None,
            rate: false,
            source: "benchmark recording".into(),
        })
        .collect();
    Arc::new(SnmpProfile {
        id: "bench".into(),
        kind: Kind::Ups,
        description: String::new(),
        source: String::new(),
        points,
        traps: Vec::new(),
    })
}

fn agent(i: usize, port: u16, profile: Arc<SnmpProfile>) -> SnmpAgent {
    SnmpAgent {
        meta: Arc::new(DeviceMeta {
            id: format!("bench{i:03}").into(),
            name: String::new(),
            label: None,
            room: "bench".into(),
            kind: Kind::Ups,
        }),
        addr: format!("127.0.0.1:{port}"),
        credentials: Credentials::V2c {
            community: format!("agent{i:03}"),
        },
        timeout: Duration::from_millis(2000),
        retries: 1,
        poll_interval: Duration::from_secs(1),
        profile,
    }
}

async fn run(a: Args) -> Result<(), String> {
    let sim = start_snmpsim(a.agents, a.oids)?;
    let sim_pid = sim.child.id().to_string();
    let profile = bench_profile(a.oids);
    let agents: Vec<SnmpAgent> = (0..a.agents)
        .map(|i| agent(i, sim.port, profile.clone()))
        .collect();
    println!(
        "## SNMP benchmark: {} agents x {} OIDs (snmpsimd on 127.0.0.1:{})\n",
        a.agents, a.oids, sim.port
    );

    // 1. One round.
    let mut clients = Vec::new();
    for ag in &agents {
        clients.push(Arc::new(
            snmp::poller::client(ag).await.map_err(|e| e.to_string())?,
        ));
    }
    let mut rounds = Vec::new();
    let mut reads = Vec::new();
    for round in 0..21 {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (ag, c) in agents.iter().zip(&clients) {
            let (ag, c) = (ag.clone(), c.clone());
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let r = snmp::poller::read(&c, &ag, &mut Default::default()).await;
                (
                    t.elapsed(),
                    r.first_failure.is_none() && r.gets.len() == ag.profile.points.len(),
                )
            }));
        }
        for t in tasks {
            let (d, ok) = t.await.map_err(|e| e.to_string())?;
            if !ok {
                return Err("a read failed during the round benchmark".into());
            }
            if round > 0 {
                reads.push(d);
            }
        }
        if round > 0 {
            rounds.push(start.elapsed());
        }
    }
    rounds.sort();
    reads.sort();
    println!("### One round (all agents read once, concurrently; 20 rounds after one warm-up)\n");
    println!("| Round wall time p50 | p99 / max | One agent's read p50 | p99 |");
    println!("|---|---|---|---|");
    println!(
        "| {} | {} / {} | {} | {} |\n",
        ms(pct(&rounds, 0.5)),
        ms(pct(&rounds, 0.99)),
        ms(*rounds.last().unwrap_or(&Duration::ZERO)),
        ms(pct(&reads, 0.5)),
        ms(pct(&reads, 0.99))
    );
    drop(clients);

    // 2. Sustained polling.
    let (tx, mut rx) = mpsc::channel::<Poll>(4096);
    let cpu0 = cpu_seconds("self");
    let sim0 = cpu_seconds(&sim_pid);
    let t0 = Instant::now();
    let tasks: Vec<_> = agents
        .iter()
        .map(|ag| snmp::spawn(ag.clone(), tx.clone()))
        .collect();
    drop(tx);
    let window = Duration::from_secs(a.seconds);
    let mut last: std::collections::HashMap<String, Instant> = Default::default();
    let (mut polls, mut bad, mut values) = (0u64, 0u64, 0u64);
    let mut worst_gap = Duration::ZERO;
    while t0.elapsed() < window {
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Some(p)) => {
                polls += 1;
                if !p.comm_ok {
                    bad += 1;
                }
                values += p.samples.iter().filter(|s| s.value.is_some()).count() as u64;
                let now = Instant::now();
                if let Some(prev) = last.insert(p.device.id.to_string(), now) {
                    worst_gap = worst_gap.max(now - prev);
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self") - cpu0;
    let sim_cpu = cpu_seconds(&sim_pid) - sim0;
    for t in &tasks {
        t.handle.abort();
    }
    let expected = a.agents as f64 * elapsed;
    println!(
        "### Sustained: {} pollers at 1 s for {:.0} s\n",
        a.agents, elapsed
    );
    println!(
        "| Polls received / scheduled | Failed polls | Values | Worst gap between two polls of one agent | Gateway CPU | per poll | snmpsimd CPU |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {polls} / {expected:.0} | {bad} | {values} | {} | {cpu:.2} s ({:.1} % of one core) | {:.0} µs | {sim_cpu:.2} s ({:.0} %) |\n",
        ms(worst_gap),
        100.0 * cpu / elapsed,
        1e6 * cpu / polls.max(1) as f64,
        100.0 * sim_cpu / elapsed
    );

    // 3. Trap latency.
    let ups = {
        let (f, text) = snmp::shipped_profiles()
            .into_iter()
            .find(|(f, _)| *f == "ups-mib.toml")
            .ok_or("ups-mib missing")?;
        Arc::new(snmp::parse_profile(text, f).map_err(|e| e.to_string())?)
    };
    let mut cfg = TrapConfig::new(
        "127.0.0.1:0"
            .parse()
            .map_err(|e: std::net::AddrParseError| e.to_string())?,
    );
    cfg.communities = vec!["bench".into()];
    let (ttx, mut trx) = mpsc::channel::<Poll>(64);
    let receiver = snmp::spawn_traps(
        cfg,
        vec![TrapAgent {
            source: IpAddr::V4(Ipv4Addr::LOCALHOST),
            meta: Arc::new(DeviceMeta {
                id: "bench-ups".into(),
                name: String::new(),
                label: None,
                room: "bench".into(),
                kind: Kind::Ups,
            }),
            profile: ups,
            engine_id: None,
            trigger: None,
        }],
        ttx,
    )
    .await
    .map_err(|e| e.to_string())?;
    let sender = async_snmp::Client::builder(receiver.local_addr, async_snmp::Auth::v2c("bench"))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let trap_oid = parse_oid("1.3.6.1.2.1.33.2.1").ok_or("oid")?;
    let minutes = parse_oid("1.3.6.1.2.1.33.1.2.3.0").ok_or("oid")?;
    let mut lat = Vec::new();
    for i in 0..a.traps {
        let vb = vec![async_snmp::VarBind::new(
            minutes.clone(),
            async_snmp::Value::Integer(10 + (i % 50) as i32),
        )];
        let t = Instant::now();
        sender
            .send_trap(&trap_oid, 100, vb)
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(2), trx.recv()).await {
            Ok(Some(_)) => lat.push(t.elapsed()),
            _ => return Err(format!("trap {i}: no Poll within 2 s")),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lat.sort();
    println!(
        "### Trap to Poll ({} SNMPv2c upsTrapOnBattery traps, one at a time)\n",
        a.traps
    );
    println!("| p50 | p99 | max |");
    println!("|---|---|---|");
    println!(
        "| {} | {} | {} |",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap_or(&Duration::ZERO))
    );
    drop(receiver);
    Ok(())
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snmp benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
