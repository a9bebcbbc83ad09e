//! Command-line flags of the site benchmark (`cargo bench --bench site -- FLAGS`).
//!
//! Hand-parsed (no extra dependency); unknown flags are an error so a typo never runs a
//! different benchmark than the one asked for. `--bench`, which `cargo bench` passes
//! to every bench binary, is accepted and ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest register count per device: the bench profile maps one holding register to
/// each canonical point of one device kind, and `generator` has 20 points.
pub const MAX_REGISTERS: usize = 20;

/// A contender in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// dc-gateway (`dc-gateway run` on a generated site).
    Gateway,
    /// A second dc-gateway binary (`--gateway-bin-b`) on the same site, to compare two
    /// builds in one run.
    GatewayB,
    /// collectd 5.12 with the `modbus` and `mqtt` plugins.
    Collectd,
    /// Node-RED 4 with node-red-contrib-modbus 5.23.3.
    NodeRed,
    /// The floor: a bare tokio-modbus client making the same requests on the same
    /// connections, decoding and publishing nothing (this benchmark binary run with
    /// `--floor-client`). No gateway can poll the site for less.
    Floor,
}

impl Contender {
    /// The contenders of a run without `--only`, in run order (A B C per round);
    /// `--gateway-bin-b` adds [`Contender::GatewayB`] after dc-gateway.
    pub const ALL: [Contender; 4] = [
        Contender::Gateway,
        Contender::Floor,
        Contender::Collectd,
        Contender::NodeRed,
    ];

    /// Whether this is a dc-gateway binary (started, configured and measured alike).
    pub fn is_gateway(self) -> bool {
        matches!(self, Contender::Gateway | Contender::GatewayB)
    }

    /// Name in flags and tables.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Gateway => "dc-gateway",
            Contender::GatewayB => "dc-gateway-b",
            Contender::Collectd => "collectd",
            Contender::NodeRed => "node-red",
            Contender::Floor => "floor",
        }
    }

    /// First MQTT topic level of the contender's readings; each kind of contender
    /// publishes under its own, so one subscriber counts them apart. Both dc-gateway
    /// binaries read the same site file, so they share `gw`; they never run at once.
    pub fn prefix(self) -> &'static str {
        match self {
            Contender::Gateway | Contender::GatewayB => "gw",
            Contender::Collectd => "cd",
            Contender::NodeRed => "nr",
            Contender::Floor => "floor",
        }
    }

    fn parse(s: &str) -> Option<Contender> {
        match s {
            "dc-gateway" | "gateway" | "gw" => Some(Contender::Gateway),
            "dc-gateway-b" | "gateway-b" | "gw-b" => Some(Contender::GatewayB),
            "collectd" | "cd" => Some(Contender::Collectd),
            "node-red" | "nodered" | "nr" => Some(Contender::NodeRed),
            "floor" => Some(Contender::Floor),
            _ => None,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Args {
    /// Simulated devices (N).
    pub devices: usize,
    /// Devices (unit ids) behind one simulated TCP endpoint: 1 = one port per device;
    /// more = N/U endpoints, as Modbus TCP gateways in front of RS-485 lines.
    pub units: usize,
    /// SNMP agents (snmpsim) added to dc-gateway's site, polled every `SNMP_INTERVAL_S`.
    pub snmp_agents: usize,
    /// dc-gateway with every sink of the round configured: besides MQTT and InfluxDB, a
    /// syslog sink (UDP to the harness) and an SMS sink on a pty modem answered by the
    /// harness. The journal is always on.
    pub all_sinks: bool,
    /// Holding registers per device (M), one value each.
    pub registers: usize,
    /// Measurement window per contender and round.
    pub seconds: u64,
    /// Rounds of A B C.
    pub rounds: usize,
    /// Time between the first delivered value and the start of the window.
    pub warmup: Duration,
    /// Contenders, in run order.
    pub contenders: Vec<Contender>,
    /// Alarm-latency changes per contender that can publish alarms (0 = skip).
    pub alarm_changes: usize,
    /// The dc-gateway binary (default: the one cargo built for this bench).
    pub gateway_bin: PathBuf,
    /// A second dc-gateway binary, run as contender `dc-gateway-b`.
    pub gateway_bin_b: Option<PathBuf>,
    /// A command to run dc-gateway under (e.g. `valgrind --tool=callgrind ...`).
    pub gateway_wrapper: Vec<String>,
    /// Where configs, logs and results go (default `target/bench-site/<time>`).
    pub out: Option<PathBuf>,
    /// Whether `--quick` was given (for the report).
    pub quick: bool,
}

/// The flags, for `--help`.
pub const USAGE: &str = "\
site benchmark: dc-gateway beside collectd and Node-RED on one simulated Modbus site

usage: cargo bench --bench site -- [FLAGS]      (or benches/run.sh [FLAGS])

  --devices N          simulated Modbus TCP devices                       (100)
  --units U            devices (unit ids) per TCP endpoint; 1 = one port
                       per device                                         (1)
  --snmp-agents K      SNMP agents (snmpsim, UPS-MIB) added to dc-gateway's
                       site, polled every 5 s                             (0)
  --all-sinks          dc-gateway also with a syslog sink (UDP) and an SMS
                       sink on a pty modem answered by the harness
  --registers M        holding registers per device, at most 20           (20)
  --seconds S          measurement window per contender and round         (60)
  --rounds R           rounds; contenders run alternately A B C A B C ... (3)
  --warmup S           seconds between first delivered value and window   (5)
  --only LIST          comma-separated: dc-gateway,dc-gateway-b,collectd,
                       node-red,floor                                     (all)
  --alarm-changes K    register changes for the alarm latency, 0 = skip   (400)
  --quick              smoke run: N=10, S=10, R=1, warmup 2, K=40
  --gateway-bin PATH   dc-gateway binary to measure (default: this build's)
  --gateway-bin-b PATH a second dc-gateway binary, contender dc-gateway-b
                       (after dc-gateway in each round): same site, same
                       figures, and its CPU and RSS as ratios to dc-gateway's;
                       the report names each by its file name
  --gateway-wrapper C  run each dc-gateway binary under command C (profiling),
                       e.g. \"valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out\"
  --out DIR            output folder (default target/bench-site/<unix time>)
";

fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse().map_err(|_| format!("{flag}: cannot use {v:?}"))
}

/// Parse the flags; `Err` holds the message to print (the usage for `--help`).
pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        devices: 100,
        units: 1,
        snmp_agents: 0,
        all_sinks: false,
        registers: 20,
        seconds: 60,
        rounds: 3,
        warmup: Duration::from_secs(5),
        contenders: Contender::ALL.to_vec(),
        alarm_changes: 400,
        gateway_bin: PathBuf::from(env!("CARGO_BIN_EXE_dc-gateway")),
        gateway_bin_b: None,
        gateway_wrapper: Vec::new(),
        out: None,
        quick: false,
    };
    // Explicit flags win over --quick, whatever their order.
    let mut explicit: Vec<&'static str> = Vec::new();
    let mut only = false;
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--bench" => {}
            "-h" | "--help" => return Err(USAGE.to_string()),
            "--devices" => {
                a.devices = value(&flag, it.next())?;
                explicit.push("devices");
            }
            "--units" => a.units = value(&flag, it.next())?,
            "--snmp-agents" => a.snmp_agents = value(&flag, it.next())?,
            "--all-sinks" => a.all_sinks = true,
            "--registers" => {
                a.registers = value(&flag, it.next())?;
                explicit.push("registers");
            }
            "--seconds" => {
                a.seconds = value(&flag, it.next())?;
                explicit.push("seconds");
            }
            "--rounds" => {
                a.rounds = value(&flag, it.next())?;
                explicit.push("rounds");
            }
            "--warmup" => {
                a.warmup = Duration::from_secs_f64(value(&flag, it.next())?);
                explicit.push("warmup");
            }
            "--alarm-changes" => {
                a.alarm_changes = value(&flag, it.next())?;
                explicit.push("alarm-changes");
            }
            "--only" => {
                let list: String = value(&flag, it.next())?;
                a.contenders = list
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        Contender::parse(s.trim()).ok_or_else(|| {
                            format!(
                                "--only: unknown contender {s:?} (dc-gateway, dc-gateway-b, collectd, node-red, floor)"
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
                only = true;
            }
            "--quick" => a.quick = true,
            "--gateway-bin" => a.gateway_bin = value(&flag, it.next())?,
            "--gateway-bin-b" => a.gateway_bin_b = Some(value(&flag, it.next())?),
            "--gateway-wrapper" => {
                let w: String = value(&flag, it.next())?;
                a.gateway_wrapper = w.split_whitespace().map(str::to_string).collect();
            }
            "--out" => a.out = Some(value(&flag, it.next())?),
            other => return Err(format!("unknown flag {other:?}\n\n{USAGE}")),
        }
    }
    if a.quick {
        let set = |name: &str| !explicit.contains(&name);
        if set("devices") {
            a.devices = 10;
        }
        if set("seconds") {
            a.seconds = 10;
        }
        if set("rounds") {
            a.rounds = 1;
        }
        if set("warmup") {
            a.warmup = Duration::from_secs(2);
        }
        if set("alarm-changes") {
            a.alarm_changes = 40;
        }
    }
    if a.devices == 0 || a.devices > 5000 {
        return Err(format!("--devices {}: use 1 to 5000", a.devices));
    }
    if a.units == 0 || a.units > 247 {
        return Err(format!(
            "--units {}: use 1 to 247 (Modbus unit ids)",
            a.units
        ));
    }
    if a.registers == 0 || a.registers > MAX_REGISTERS {
        return Err(format!(
            "--registers {}: use 1 to {MAX_REGISTERS} (one canonical generator point per register)",
            a.registers
        ));
    }
    if a.seconds == 0 || a.rounds == 0 {
        return Err("--seconds and --rounds must be at least 1".into());
    }
    if a.gateway_bin_b.is_some() && !only {
        a.contenders.insert(1, Contender::GatewayB);
    }
    if a.contenders.contains(&Contender::GatewayB) && a.gateway_bin_b.is_none() {
        return Err("--only dc-gateway-b needs --gateway-bin-b PATH".into());
    }
    if a.contenders.is_empty() {
        return Err("--only: no contender left".into());
    }
    Ok(a)
}

impl Args {
    /// The binary a dc-gateway contender runs (`None` for the others).
    pub fn gateway_bin_of(&self, c: Contender) -> Option<&Path> {
        match c {
            Contender::Gateway => Some(&self.gateway_bin),
            Contender::GatewayB => self.gateway_bin_b.as_deref(),
            Contender::Collectd | Contender::NodeRed | Contender::Floor => None,
        }
    }

    /// Every dc-gateway binary of the run, with its contender.
    pub fn gateway_bins(&self) -> Vec<(Contender, &Path)> {
        [Contender::Gateway, Contender::GatewayB]
            .into_iter()
            .filter_map(|c| Some((c, self.gateway_bin_of(c)?)))
            .collect()
    }

    /// A contender's name in the report: with two dc-gateway binaries, each also by
    /// its file name, so the tables say which build is which.
    pub fn label(&self, c: Contender) -> String {
        match (self.gateway_bin_b.is_some(), self.gateway_bin_of(c)) {
            (true, Some(bin)) => format!(
                "{} ({})",
                c.name(),
                bin.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| bin.display().to_string())
            ),
            _ => c.name().to_string(),
        }
    }
}
