//! Command-line flags of the site benchmark (`cargo bench --bench site -- FLAGS`).
//!
//! Hand-parsed (no extra dependency); unknown flags are an error so a typo never runs a
//! different benchmark than the one asked for. `--bench`, which `cargo bench` passes
//! to every bench binary, is accepted and ignored.

use std::path::PathBuf;
use std::time::Duration;

/// Largest register count per device: the bench profile maps one holding register to
/// each canonical point of one device kind, and `generator` has 20 points.
pub const MAX_REGISTERS: usize = 20;

/// A contender in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// dc-gateway (`dc-gateway run` on a generated site).
    Gateway,
    /// collectd 5.12 with the `modbus` and `mqtt` plugins.
    Collectd,
    /// Node-RED 4 with node-red-contrib-modbus 5.23.3.
    NodeRed,
}

impl Contender {
    /// Every contender, in run order (A B C per round).
    pub const ALL: [Contender; 3] = [Contender::Gateway, Contender::Collectd, Contender::NodeRed];

    /// Name in flags and tables.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Gateway => "dc-gateway",
            Contender::Collectd => "collectd",
            Contender::NodeRed => "node-red",
        }
    }

    /// First MQTT topic level of the contender's readings; each contender publishes
    /// under its own, so one subscriber counts them apart.
    pub fn prefix(self) -> &'static str {
        match self {
            Contender::Gateway => "gw",
            Contender::Collectd => "cd",
            Contender::NodeRed => "nr",
        }
    }

    fn parse(s: &str) -> Option<Contender> {
        match s {
            "dc-gateway" | "gateway" | "gw" => Some(Contender::Gateway),
            "collectd" | "cd" => Some(Contender::Collectd),
            "node-red" | "nodered" | "nr" => Some(Contender::NodeRed),
            _ => None,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Args {
    /// Simulated devices (N), each on its own TCP port.
    pub devices: usize,
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

  --devices N          simulated Modbus TCP devices, one port each        (100)
  --registers M        holding registers per device, at most 20           (20)
  --seconds S          measurement window per contender and round         (60)
  --rounds R           rounds; contenders run alternately A B C A B C ... (3)
  --warmup S           seconds between first delivered value and window   (5)
  --only LIST          comma-separated: dc-gateway,collectd,node-red      (all)
  --alarm-changes K    register changes for the alarm latency, 0 = skip   (400)
  --quick              smoke run: N=10, S=10, R=1, warmup 2, K=40
  --gateway-bin PATH   dc-gateway binary to measure (default: this build's)
  --gateway-wrapper C  run dc-gateway under command C (profiling), e.g.
                       \"valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out\"
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
        registers: 20,
        seconds: 60,
        rounds: 3,
        warmup: Duration::from_secs(5),
        contenders: Contender::ALL.to_vec(),
        alarm_changes: 400,
        gateway_bin: PathBuf::from(env!("CARGO_BIN_EXE_dc-gateway")),
        gateway_wrapper: Vec::new(),
        out: None,
        quick: false,
    };
    // Explicit flags win over --quick, whatever their order.
    let mut explicit: Vec<&'static str> = Vec::new();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--bench" => {}
            "-h" | "--help" => return Err(USAGE.to_string()),
            "--devices" => {
                a.devices = value(&flag, it.next())?;
                explicit.push("devices");
            }
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
                                "--only: unknown contender {s:?} (dc-gateway, collectd, node-red)"
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--quick" => a.quick = true,
            "--gateway-bin" => a.gateway_bin = value(&flag, it.next())?,
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
    if a.devices == 0 || a.devices > 999 {
        return Err(format!("--devices {}: use 1 to 999", a.devices));
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
    if a.contenders.is_empty() {
        return Err("--only: no contender left".into());
    }
    Ok(a)
}
