//! Figures of a run and the Markdown report: per-run rows, per-contender summaries with
//! their spread over rounds, ratios to collectd, alarm latency percentiles, the goals of
//! issue 6 each marked met or NOT met, and, with two dc-gateway binaries, the second's
//! figures as ratios to the first's (same round, so both saw the same machine load).

use std::fmt::Write as _;

use super::args::{Args, Contender};

/// What one contender did in one round's measurement window.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Who.
    pub contender: Contender,
    /// Round, from 1.
    pub round: usize,
    /// Window length, seconds (measured).
    pub window_s: f64,
    /// CPU seconds (user + system, children included) spent in the window.
    pub cpu_s: f64,
    /// Poll cycles the simulator served in the window (all devices).
    pub polls: u64,
    /// Poll cycles expected: devices × whole seconds of the window.
    pub expected_polls: u64,
    /// Values polled: `polls × registers`.
    pub values_polled: u64,
    /// Readings the subscriber received in the window.
    pub delivered: u64,
    /// Readings per whole second inside the window, mean of the one-second counts
    /// (not `delivered / window`: readings come in bursts, one per poll cycle, and a
    /// window holds one burst more or less than its length in seconds).
    pub per_s: f64,
    /// Lowest and highest one-second count of readings inside the window.
    pub min_bin: u64,
    /// See `min_bin`.
    pub max_bin: u64,
    /// Peak resident set (VmHWM), kB, at the end of the window.
    pub peak_rss_kb: u64,
    /// Anonymous resident pages (heap, stacks, caches) at the end of the window, kB.
    pub rss_anon_kb: u64,
    /// File-backed resident pages (code and read-only data touched) at the end, kB.
    pub rss_file_kb: u64,
    /// Poll cycles missing against one per device per second.
    pub missed: u64,
    /// Gaps between consecutive polls of a device longer than 1.5 s.
    pub late: u64,
    /// Longest gap between two polls of one device, ms.
    pub max_gap_ms: i64,
    /// CPU seconds of the harness itself (simulator + subscriber) in the window.
    pub harness_cpu_s: f64,
    /// CPU seconds of Mosquitto and VictoriaMetrics in the window.
    pub peers_cpu_s: f64,
    /// CPU seconds of everything else on the machine in the window (other work that
    /// competed for the cores; ideally near 0).
    pub other_cpu_s: f64,
}

impl RunResult {
    /// CPU seconds per 1 000 polled values.
    pub fn cpu_per_1000(&self) -> f64 {
        if self.values_polled == 0 {
            f64::NAN
        } else {
            self.cpu_s * 1000.0 / self.values_polled as f64
        }
    }
    /// Readings delivered per second.
    pub fn delivered_per_s(&self) -> f64 {
        self.per_s
    }
    /// Peak RSS in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.peak_rss_kb as f64 / 1024.0
    }
}

/// Alarm latency of one contender.
#[derive(Debug, Clone)]
pub struct Latency {
    /// Who.
    pub contender: Contender,
    /// How the alarm reaches MQTT.
    pub path: String,
    /// Register changes made.
    pub changes: usize,
    /// Latencies from the first read that returned the change to the subscriber, ms.
    pub from_read_ms: Vec<f64>,
    /// Latencies from the change itself to the subscriber, ms (includes waiting for
    /// the next poll).
    pub from_change_ms: Vec<f64>,
    /// CPU seconds of the contender and of everything else on the machine (besides the
    /// harness, broker and database) during the changes.
    pub cpu_s: f64,
    /// See `cpu_s`.
    pub other_cpu_s: f64,
    /// Raw samples: (device index, raised?, change, first read, received), ms since the
    /// epoch, for analysis (`results.json`).
    pub samples: Vec<(usize, bool, i64, i64, i64)>,
}

/// Nearest-rank percentile of unsorted values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

struct Spread {
    mean: f64,
    min: f64,
    max: f64,
}

fn spread(v: &[f64]) -> Spread {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Spread {
            mean: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
    }
    Spread {
        mean: v.iter().sum::<f64>() / v.len() as f64,
        min: v.iter().copied().fold(f64::INFINITY, f64::min),
        max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

fn fmt_spread(s: &Spread, digits: usize) -> String {
    if !s.mean.is_finite() {
        return "—".into();
    }
    if (s.max - s.min).abs() < 10f64.powi(-(digits as i32)) {
        format!("{:.*}", digits, s.mean)
    } else {
        format!(
            "{:.*} ({:.*}–{:.*})",
            digits, s.mean, digits, s.min, digits, s.max
        )
    }
}

/// Goal verdict over a spread of ratios against a limit (lower is better).
fn verdict(s: &Spread, limit: f64) -> &'static str {
    if !s.mean.is_finite() {
        "not measured"
    } else if s.max <= limit {
        "met"
    } else if s.min > limit {
        "NOT met"
    } else {
        "NOT met in every round (spread straddles the limit)"
    }
}

/// Machine description for the report.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} CPUs (nproc), {model}, {:.1} GiB RAM, Linux {}",
        mem_kb as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

/// The whole report as Markdown.
pub fn markdown(
    args: &Args,
    versions: &[(String, String)],
    runs: &[RunResult],
    latencies: &[Latency],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Site benchmark results\n");
    let _ = writeln!(s, "- Machine: {}", machine());
    let _ = writeln!(
        s,
        "- Workload: {} devices × {} holding registers, polled every 1 s = {} values/s; {} s window per contender, {} round(s), warm-up {:.0} s{}",
        args.devices,
        args.registers,
        args.devices * args.registers,
        args.seconds,
        args.rounds,
        args.warmup.as_secs_f64(),
        if args.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        s,
        "- Topology: {}; SNMP agents: {}; dc-gateway sinks: MQTT, InfluxDB{} (journal always on)",
        if args.units == 1 {
            "one TCP port per device".to_string()
        } else {
            format!(
                "{} endpoints × up to {} unit ids (as Modbus TCP gateways)",
                args.devices.div_ceil(args.units),
                args.units
            )
        },
        if args.snmp_agents == 0 {
            "none".to_string()
        } else {
            format!(
                "{} (snmpsimd, UPS-MIB, every {} s, dc-gateway only)",
                args.snmp_agents,
                super::configs::SNMP_INTERVAL_S
            )
        },
        if args.all_sinks {
            ", syslog (UDP), SMS (pty modem)"
        } else {
            ""
        }
    );
    for (name, v) in versions {
        let _ = writeln!(s, "- {name}: {v}");
    }

    let _ = writeln!(s, "\n### Per run\n");
    let _ = writeln!(
        s,
        "| Round | Contender | CPU s | Polled values | CPU s / 1 000 values | Peak RSS MiB | Delivered/s (min–max per s) | Polls (expected) | Missed | Late (>1.5 s) | Max gap ms | CPU s: harness / broker+db / rest of machine |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {} | {:.4} | {:.1} | {:.0} ({}–{}) | {} ({}) | {} | {} | {} | {:.1} / {:.1} / {:.1} |",
            r.round,
            args.label(r.contender),
            r.cpu_s,
            r.values_polled,
            r.cpu_per_1000(),
            r.rss_mib(),
            r.delivered_per_s(),
            r.min_bin,
            r.max_bin,
            r.polls,
            r.expected_polls,
            r.missed,
            r.late,
            r.max_gap_ms,
            r.harness_cpu_s,
            r.peers_cpu_s,
            r.other_cpu_s
        );
    }

    let _ = writeln!(s, "\n### Summary (mean over rounds, min–max in brackets)\n");
    let _ = writeln!(
        s,
        "| Contender | CPU s / 1 000 values | CPU vs collectd | CPU vs floor | Peak RSS MiB | RSS at end: anon / file MiB | RSS vs collectd | Delivered values/s | Missed polls | Late polls |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    let of = |c: Contender| runs.iter().filter(move |r| r.contender == c);
    // Ratios per round (both ran in it, one after the other, so both saw the same load).
    let ratio_to = |base: Contender, c: Contender, f: &dyn Fn(&RunResult) -> f64| -> Spread {
        let v: Vec<f64> = of(c)
            .filter_map(|r| {
                let b = of(base).find(|b| b.round == r.round)?;
                Some(f(r) / f(b))
            })
            .collect();
        spread(&v)
    };
    let ratio = |c: Contender, f: &dyn Fn(&RunResult) -> f64| ratio_to(Contender::Collectd, c, f);
    for c in &args.contenders {
        let c = *c;
        let cpu = spread(&of(c).map(|r| r.cpu_per_1000()).collect::<Vec<_>>());
        let rss = spread(&of(c).map(|r| r.rss_mib()).collect::<Vec<_>>());
        let del = spread(&of(c).map(|r| r.delivered_per_s()).collect::<Vec<_>>());
        let missed = spread(&of(c).map(|r| r.missed as f64).collect::<Vec<_>>());
        let late = spread(&of(c).map(|r| r.late as f64).collect::<Vec<_>>());
        let anon = spread(
            &of(c)
                .map(|r| r.rss_anon_kb as f64 / 1024.0)
                .collect::<Vec<_>>(),
        );
        let file = spread(
            &of(c)
                .map(|r| r.rss_file_kb as f64 / 1024.0)
                .collect::<Vec<_>>(),
        );
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} |",
            args.label(c),
            fmt_spread(&cpu, 4),
            fmt_spread(&ratio(c, &|r| r.cpu_per_1000()), 2),
            fmt_spread(&ratio_to(Contender::Floor, c, &|r| r.cpu_per_1000()), 2),
            fmt_spread(&rss, 1),
            fmt_spread(&anon, 1),
            fmt_spread(&file, 1),
            fmt_spread(&ratio(c, &|r| r.rss_mib()), 2),
            fmt_spread(&del, 0),
            fmt_spread(&missed, 0),
            fmt_spread(&late, 0)
        );
    }

    if !latencies.is_empty() {
        let _ = writeln!(s, "\n### Alarm latency\n");
        let _ = writeln!(
            s,
            "From the simulator's timestamp of the read that first returned the change to the subscriber's receive time (same clock, 1 ms resolution); in brackets from the change itself, which adds the wait for the next poll.\n"
        );
        let _ = writeln!(
            s,
            "| Contender | Path | Changes | Events matched | p50 ms | p90 ms | p99 ms | max ms | p50 / p99 from change ms | CPU s: contender / rest of machine |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        for l in latencies {
            let v = &l.from_read_ms;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} / {:.0} | {:.1} / {:.1} |",
                args.label(l.contender),
                l.path,
                l.changes,
                v.len(),
                percentile(v, 50.0),
                percentile(v, 90.0),
                percentile(v, 99.0),
                percentile(v, 100.0),
                percentile(&l.from_change_ms, 50.0),
                percentile(&l.from_change_ms, 99.0),
                l.cpu_s,
                l.other_cpu_s
            );
        }
    }

    if has_both_gateways(runs) {
        two_gateways(&mut s, args, runs, latencies);
    }

    let _ = writeln!(s, "\n### Goals\n");
    let has = |c: Contender| runs.iter().any(|r| r.contender == c);
    if has(Contender::Gateway) && has(Contender::Collectd) {
        let cpu = ratio(Contender::Gateway, &|r| r.cpu_per_1000());
        let _ = writeln!(
            s,
            "- dc-gateway CPU per 1 000 values ≤ collectd's: ratio {} → **{}**",
            fmt_spread(&cpu, 2),
            verdict(&cpu, 1.0)
        );
    } else {
        let _ = writeln!(
            s,
            "- CPU ratio to collectd: not measured (both contenders are needed)"
        );
    }
    if has(Contender::Gateway) && has(Contender::Floor) {
        let f = ratio_to(Contender::Floor, Contender::Gateway, &|r| r.cpu_per_1000());
        let _ = writeln!(
            s,
            "- dc-gateway CPU per 1 000 values ≤ 1.5 × the floor's: ratio {} → **{}**",
            fmt_spread(&f, 2),
            verdict(&f, 1.5)
        );
    }
    if has(Contender::Gateway) {
        let rss = spread(
            &of(Contender::Gateway)
                .map(|r| r.rss_mib())
                .collect::<Vec<_>>(),
        );
        let everything = args.all_sinks && args.registers == 20;
        let goal = match args.devices {
            100 if everything => Some(12.0),
            1000 => Some(20.0),
            _ => None,
        };
        match goal {
            Some(g) => {
                let _ = writeln!(
                    s,
                    "- dc-gateway peak RSS ≤ {g:.0} MiB at N={}: {} MiB → **{}**",
                    args.devices,
                    fmt_spread(&rss, 1),
                    verdict(&rss, g)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "- dc-gateway peak RSS: {} MiB (the goals are ≤ 12 MiB at N=100, M=20 with --all-sinks, ≤ 20 MiB at N=1000; this run: N={}, M={}{})",
                    fmt_spread(&rss, 1),
                    args.devices,
                    args.registers,
                    if args.all_sinks { ", all sinks" } else { "" }
                );
            }
        }
    }
    if has(Contender::Gateway) && has(Contender::NodeRed) {
        let r = {
            let v: Vec<f64> = of(Contender::Gateway)
                .filter_map(|g| {
                    let n = of(Contender::NodeRed).find(|b| b.round == g.round)?;
                    Some(g.rss_mib() / n.rss_mib())
                })
                .collect();
            spread(&v)
        };
        let _ = writeln!(
            s,
            "- dc-gateway peak RSS ≤ 1/4 of Node-RED's: ratio {} → **{}**",
            fmt_spread(&r, 3),
            verdict(&r, 0.25)
        );
    }
    match latencies.iter().find(|l| l.contender == Contender::Gateway) {
        Some(l) if !l.from_read_ms.is_empty() => {
            let p99 = percentile(&l.from_read_ms, 99.0);
            let missing = l.changes - l.from_read_ms.len();
            let ok = p99 <= 50.0 && missing == 0 && l.changes >= 200;
            let _ = writeln!(
                s,
                "- Alarm latency p99 ≤ 50 ms from the poll that saw the change: p99 {:.1} ms over {} changes{} → **{}**",
                p99,
                l.changes,
                if missing > 0 {
                    format!(", {missing} without an event")
                } else {
                    String::new()
                },
                if ok {
                    "met"
                } else if l.changes < 200 {
                    "not decided (fewer than 200 changes)"
                } else {
                    "NOT met"
                }
            );
        }
        _ => {
            let _ = writeln!(s, "- Alarm latency: not measured");
        }
    }
    s
}

/// Largest difference between two dc-gateway builds that counts as "the same cost".
pub const SAME_COST: f64 = 0.10;

fn has_both_gateways(runs: &[RunResult]) -> bool {
    let has = |c: Contender| runs.iter().any(|r| r.contender == c);
    has(Contender::Gateway) && has(Contender::GatewayB)
}

/// The second dc-gateway binary against the first: per round (both ran in it, one
/// after the other), its CPU per value and peak RSS divided by the first's; the mean
/// of those ratios is within [`SAME_COST`] of 1 or not.
fn two_gateways(s: &mut String, args: &Args, runs: &[RunResult], latencies: &[Latency]) {
    let (a, b) = (
        args.label(Contender::Gateway),
        args.label(Contender::GatewayB),
    );
    let (na, nb) = (Contender::Gateway.name(), Contender::GatewayB.name());
    let _ = writeln!(s, "\n### {nb} against {na}\n");
    let _ = writeln!(
        s,
        "{b} against {a}. Per round: {nb}'s figure divided by {na}'s in the same round (one ran right after the other); mean (min–max) over rounds.\n"
    );
    let per_round = |f: &dyn Fn(&RunResult) -> f64| -> Spread {
        let v: Vec<f64> = runs
            .iter()
            .filter(|r| r.contender == Contender::GatewayB)
            .filter_map(|r| {
                let base = runs
                    .iter()
                    .find(|x| x.contender == Contender::Gateway && x.round == r.round)?;
                Some(f(r) / f(base))
            })
            .collect();
        spread(&v)
    };
    let within = |sp: &Spread| {
        if !sp.mean.is_finite() {
            "not measured".to_string()
        } else if (sp.mean - 1.0).abs() <= SAME_COST {
            let every = (sp.min - 1.0).abs() <= SAME_COST && (sp.max - 1.0).abs() <= SAME_COST;
            format!(
                "within {:.0} %{}",
                SAME_COST * 100.0,
                if every {
                    " (every round)"
                } else {
                    " (mean; not every round)"
                }
            )
        } else {
            format!("NOT within {:.0} %", SAME_COST * 100.0)
        }
    };
    let cpu = per_round(&|r| r.cpu_per_1000());
    let rss = per_round(&|r| r.rss_mib());
    let _ = writeln!(s, "| Figure | Ratio {nb} / {na} | Verdict |");
    let _ = writeln!(s, "|---|---|---|");
    let _ = writeln!(
        s,
        "| CPU s per 1 000 values | {} | **{}** |",
        fmt_spread(&cpu, 3),
        within(&cpu)
    );
    let _ = writeln!(
        s,
        "| Peak RSS | {} | **{}** |",
        fmt_spread(&rss, 3),
        within(&rss)
    );
    let lat = |c: Contender| latencies.iter().find(|l| l.contender == c);
    if let (Some(la), Some(lb)) = (lat(Contender::Gateway), lat(Contender::GatewayB)) {
        for p in [50.0, 99.0] {
            let (pa, pb) = (
                percentile(&la.from_read_ms, p),
                percentile(&lb.from_read_ms, p),
            );
            let _ = writeln!(
                s,
                "| Alarm latency p{p:.0} ({pb:.1} / {pa:.1} ms) | {:.2} | (one run each, not alternated) |",
                pb / pa
            );
        }
    }
}
