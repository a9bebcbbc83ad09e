//! The parts of the site benchmark beyond the Modbus site and the broker:
//!
//! - **the floor** (`--floor-client FILE`, this benchmark binary run again as a child): a
//!   bare tokio-modbus client making the requests dc-gateway makes — one read of M
//!   holding registers per device per second, one connection per endpoint, the unit ids
//!   behind an endpoint in turn, endpoints started in 4 groups over the second like
//!   dc-gateway's — and doing nothing else: no decoding, no rules, no publishing, one
//!   thread. Its CPU per value is what no gateway can go under on this machine;
//! - **a modem** on a pty pair (`socat`) that answers the SMS sink's AT commands as a
//!   registered modem with a SIM does, so the sink runs its real start-up and health
//!   checks (`--all-sinks`);
//! - **a syslog drain**: a UDP socket that reads and counts what the syslog sink sends;
//! - **SNMP agents**: one `snmpsimd` serving a UPS-MIB recording on K UDP endpoints.
//!
//! Each lives as long as the value returned; dropping it stops the process or thread.

use std::io::{Read as _, Write as _};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::procs::{self, Proc};

/// The floor client's work list: `registers M` on the first line, then one line per
/// endpoint: `port unit unit ...`.
pub fn floor_plan(registers: usize, endpoints: &[(u16, Vec<(usize, u8)>)]) -> String {
    let mut s = format!("registers {registers}\n");
    for (port, units) in endpoints {
        s.push_str(&port.to_string());
        for (_, u) in units {
            s.push(' ');
            s.push_str(&u.to_string());
        }
        s.push('\n');
    }
    s
}

/// Run as the floor client (never returns while the plan is valid): the bench binary's
/// `--floor-client FILE` mode.
pub fn floor_client(plan: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(plan)
        .map_err(|e| format!("floor client: cannot read {}: {e}", plan.display()))?;
    let mut lines = text.lines();
    let registers: u16 = lines
        .next()
        .and_then(|l| l.strip_prefix("registers "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("floor client: the plan has no `registers M` line")?;
    let mut endpoints = Vec::new();
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let mut it = l.split_whitespace().map(str::parse::<u16>);
        let port = it
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| format!("floor client: bad plan line {l:?}"))?;
        let units: Vec<u8> = it
            .map(|u| u.ok().and_then(|u| u8::try_from(u).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("floor client: bad unit id in {l:?}"))?;
        endpoints.push((port, units));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("floor client: runtime: {e}"))?;
    rt.block_on(async move {
        for (i, (port, units)) in endpoints.into_iter().enumerate() {
            let offset = Duration::from_millis(250 * (i % 4) as u64);
            tokio::spawn(floor_endpoint(port, units, registers, offset));
        }
        std::future::pending::<()>().await;
    });
    Ok(())
}

async fn floor_endpoint(port: u16, units: Vec<u8>, registers: u16, offset: Duration) {
    use tokio_modbus::prelude::*;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    tokio::time::sleep(offset).await;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ctx = None;
    loop {
        tick.tick().await;
        if ctx.is_none() {
            ctx = tcp::connect(addr).await.ok();
        }
        let Some(c) = ctx.as_mut() else { continue };
        for &u in &units {
            c.set_slave(Slave(u));
            if c.read_holding_registers(0, registers).await.is_err() {
                ctx = None;
                break;
            }
        }
    }
}

/// A modem on a pty pair: the SMS sink opens `port`; a thread answers on the other end.
pub struct Modem {
    /// The pty the sink opens.
    pub port: PathBuf,
    socat: Proc,
    stop: Arc<AtomicBool>,
    /// Texts the sink sent (`AT+CMGS` completed).
    pub sent: Arc<AtomicU64>,
}

impl Modem {
    /// Start `socat` with two linked ptys under `dir` and answer on one of them.
    pub fn start(dir: &Path) -> Result<Modem, String> {
        let port = dir.join("modem");
        let ours = dir.join("modem-peer");
        let socat = Proc::spawn(
            "socat",
            Command::new(procs::which("socat").ok_or("socat not found (apt-get install socat)")?)
                .arg(format!("pty,raw,echo=0,link={}", port.display()))
                .arg(format!("pty,raw,echo=0,link={}", ours.display())),
            &dir.join("socat.log"),
        )?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !(port.exists() && ours.exists()) {
            if std::time::Instant::now() > deadline {
                return Err("socat did not make the modem's pty pair".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&ours)
            .map_err(|e| format!("cannot open {}: {e}", ours.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop2, sent2) = (Arc::clone(&stop), Arc::clone(&sent));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut line = Vec::new();
            let mut in_pdu = false;
            while !stop2.load(Ordering::Relaxed) {
                let n = match f.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    Ok(n) => n,
                };
                for &b in &buf[..n] {
                    if in_pdu {
                        if b == 0x1a {
                            in_pdu = false;
                            let n = sent2.fetch_add(1, Ordering::Relaxed) + 1;
                            let _ = write!(f, "\r\n+CMGS: {}\r\n\r\nOK\r\n", n % 256);
                        }
                        continue;
                    }
                    if b != b'\r' {
                        line.push(b);
                        continue;
                    }
                    let cmd = String::from_utf8_lossy(&line).trim().to_ascii_uppercase();
                    line.clear();
                    let reply = match cmd.as_str() {
                        "" => continue,
                        "AT+CPIN?" => "\r\n+CPIN: READY\r\n\r\nOK\r\n".to_string(),
                        "AT+CEREG?" => "\r\n+CEREG: 1,1\r\n\r\nOK\r\n".to_string(),
                        "AT+CREG?" => "\r\n+CREG: 1,1\r\n\r\nOK\r\n".to_string(),
                        "AT+CSQ" => "\r\n+CSQ: 20,99\r\n\r\nOK\r\n".to_string(),
                        "AT+CMGF?" => "\r\n+CMGF: 0\r\n\r\nOK\r\n".to_string(),
                        c if c.starts_with("AT+CMGS=") => {
                            in_pdu = true;
                            "\r\n> ".to_string()
                        }
                        _ => "\r\nOK\r\n".to_string(),
                    };
                    let _ = f.write_all(reply.as_bytes());
                }
            }
        });
        Ok(Modem {
            port,
            socat,
            stop,
            sent,
        })
    }
}

impl Drop for Modem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.socat.stop(Duration::from_secs(2));
    }
}

/// A UDP socket on loopback that reads and counts syslog messages.
pub struct SyslogDrain {
    /// Its port.
    pub port: u16,
    /// Messages received.
    pub received: Arc<AtomicU64>,
}

impl SyslogDrain {
    /// Bind and start reading on a thread (it ends with the process).
    pub fn start() -> Result<SyslogDrain, String> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("syslog drain: {e}"))?;
        let port = sock.local_addr().map_err(|e| e.to_string())?.port();
        let received = Arc::new(AtomicU64::new(0));
        let r = Arc::clone(&received);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while sock.recv(&mut buf).is_ok() {
                r.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(SyslogDrain { port, received })
    }
}

/// RFC 1628 UPS-MIB recording of a three-phase UPS on mains (values written from the
/// MIB text, as in the integration tests' fixtures).
const UPS_RECORDING: &str = "\
1.3.6.1.2.1.1.3.0|67|123456
1.3.6.1.2.1.33.1.2.1.0|2|2
1.3.6.1.2.1.33.1.2.2.0|2|0
1.3.6.1.2.1.33.1.2.3.0|2|42
1.3.6.1.2.1.33.1.2.4.0|2|100
1.3.6.1.2.1.33.1.2.5.0|2|2712
1.3.6.1.2.1.33.1.2.7.0|2|27
1.3.6.1.2.1.33.1.3.3.1.2.1|2|500
1.3.6.1.2.1.33.1.3.3.1.3.1|2|231
1.3.6.1.2.1.33.1.3.3.1.3.2|2|229
1.3.6.1.2.1.33.1.3.3.1.3.3|2|230
1.3.6.1.2.1.33.1.4.1.0|2|3
1.3.6.1.2.1.33.1.4.2.0|2|500
1.3.6.1.2.1.33.1.4.4.1.2.1|2|230
1.3.6.1.2.1.33.1.4.4.1.2.2|2|231
1.3.6.1.2.1.33.1.4.4.1.2.3|2|229
1.3.6.1.2.1.33.1.4.4.1.4.1|2|2100
1.3.6.1.2.1.33.1.4.4.1.4.2|2|1900
1.3.6.1.2.1.33.1.4.4.1.4.3|2|2000
1.3.6.1.2.1.33.1.4.4.1.5.1|2|31
1.3.6.1.2.1.33.1.4.4.1.5.2|2|47
1.3.6.1.2.1.33.1.4.4.1.5.3|2|12
1.3.6.1.2.1.33.1.6.1.0|66|0
";

/// `snmpsimd` serving [`UPS_RECORDING`] (community `public`) on `k` UDP ports.
pub struct Agents {
    /// The agents' ports.
    pub ports: Vec<u16>,
    proc: Proc,
}

impl Agents {
    /// Start it under `dir` and wait until every endpoint listens.
    pub fn start(dir: &Path, k: usize) -> Result<Agents, String> {
        let bin = procs::which("snmpsimd")
            .ok_or("snmpsimd not found (apt-get install snmpsim) for --snmp-agents")?;
        let data = dir.join("data");
        let cache = dir.join("cache");
        for d in [&data, &cache] {
            std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        }
        std::fs::write(data.join("public.snmprec"), UPS_RECORDING)
            .map_err(|e| format!("snmprec: {e}"))?;
        // snmpsimd drops to nobody: the folders must be readable (cache writable) by it.
        let _ = Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(dir)
            .status();
        let mut ports = Vec::with_capacity(k);
        for _ in 0..k {
            let p = UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .map_err(|e| format!("free UDP port: {e}"))?
                .port();
            ports.push(p);
        }
        let mut cmd = Command::new(bin);
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
        let log = dir.join("snmpsimd.log");
        let mut proc = Proc::spawn("snmpsimd", &mut cmd, &log)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            proc.check_alive()?;
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.matches("Listening at UDP/IPv4 endpoint").count() >= k {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "snmpsimd did not listen on {k} endpoints within 60 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Agents { ports, proc })
    }

    /// Its PID (its CPU is counted with the peers').
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}
