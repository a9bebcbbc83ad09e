//! Generator runs: each start and stop of a generator, detected from its canonical
//! points (any profile), measured and — inside a test window — judged against the
//! NFPA 110 §8.4 style criteria of docs/RULES.md.
//!
//! [`Runs`] is a pure state machine over polls and alarm events (no clock reads, no
//! I/O); the hub feeds it the polls of every `generator` device and journals each
//! finished [`Run`] (`generator_run` entry, device = the generator).
//!
//! Definitions (docs/RECORDS.md):
//! - A run starts at the first poll with `engine_running` true and ends at the first
//!   poll with it false. Samples of bad quality are ignored.
//! - The **start signal** is the loss of mains when mains was lost at most
//!   [`START_SIGNAL_WINDOW_S`] before the engine ran (an automatic start), else the
//!   start itself. Mains is `mains_available`, or, on profiles without it, mains L1
//!   voltage within the voltage tolerance of the rated voltage.
//! - **Cause**: mains lost at the start signal → `mains_failure`; else inside a test
//!   window → `test`; else controller mode `manual` or `test` → `manual`; else
//!   `unknown`.
//! - **Time to rated**: from the start signal to the first poll with frequency and
//!   every reported phase voltage within tolerance.
//! - **Load**: samples with load above zero; min/mean/max of kW and %; % from kW and
//!   the nameplate when `rated_kw` is known, else the `load_pct` point. Polls come at a
//!   fixed interval, so the sample mean is the time mean.
//! - **Under load** time: the longest stretch of consecutive polls at or above
//!   `min_load_pct`, from its first to its last poll.
//! - **Battery at crank**: the lowest starter-battery voltage from [`CRANK_WINDOW_S`]
//!   before the engine ran (the crank comes first) to [`CRANK_WINDOW_S`] after.
//! - A run in progress when the gateway stops is not recorded (the detector's state
//!   is in memory; the next start begins a new run).

pub mod config;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{AlarmEvent, AlarmState, Kind, Poll, Quality, Timestamp, Value};
use crate::texts::time::SiteTime;
pub use config::{Nameplate, RunsConfig};

/// Mains lost at most this long before the engine ran is the start signal.
pub const START_SIGNAL_WINDOW_S: f64 = 60.0;
/// The crank dip of the starter battery is looked for this long after the start.
pub const CRANK_WINDOW_S: f64 = 15.0;
/// A generator without a passed test for longer than this is overdue (monthly tests).
pub const TEST_OVERDUE_MS: i64 = 31 * 86_400_000;

/// Why the generator ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Inside a configured test window.
    Test,
    /// Mains failed (an automatic start).
    MainsFailure,
    /// Started by hand (controller in manual or test mode).
    Manual,
    /// None of these.
    Unknown,
}

impl Cause {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Test => "test",
            Cause::MainsFailure => "mains_failure",
            Cause::Manual => "manual",
            Cause::Unknown => "unknown",
        }
    }
    /// Integer code (InfluxDB field).
    pub fn code(self) -> i64 {
        match self {
            Cause::Unknown => 0,
            Cause::Test => 1,
            Cause::MainsFailure => 2,
            Cause::Manual => 3,
        }
    }
}

/// min / mean / max of a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Lowest.
    pub min: f64,
    /// Mean of the samples.
    pub mean: f64,
    /// Highest.
    pub max: f64,
}

#[derive(Debug, Clone, Default)]
struct Acc {
    n: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Acc {
    fn add(&mut self, v: f64) {
        if self.n == 0 {
            self.min = v;
            self.max = v;
        }
        self.n += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
    fn stats(&self) -> Option<Stats> {
        (self.n > 0).then(|| Stats {
            min: round(self.min),
            mean: round(self.sum / self.n as f64),
            max: round(self.max),
        })
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// An alarm raised on the generator during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunAlarm {
    /// When.
    pub ts: Timestamp,
    /// Instance number.
    pub no: u64,
    /// Rule.
    pub rule: String,
    /// `normal` or `serious`.
    pub level: String,
}

/// One finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The generator's device id.
    pub device: String,
    /// First poll with the engine running.
    pub start: Timestamp,
    /// First poll with it stopped.
    pub end: Timestamp,
    /// Seconds from start to end.
    pub duration_s: f64,
    /// Why it ran.
    pub cause: Cause,
    /// The start signal (mains lost, or the start).
    pub start_signal: Timestamp,
    /// Seconds from the start signal to rated voltage and frequency; `None`: never.
    pub time_to_rated_s: Option<f64>,
    /// Load, kW, over the samples on load.
    pub load_kw: Option<Stats>,
    /// Load, % of nameplate kW.
    pub load_pct: Option<Stats>,
    /// Longest stretch at or above the test's minimum load, seconds.
    pub under_load_s: f64,
    /// Phase voltages (L1, L2, L3 when reported) after rated was reached.
    pub voltage_v: Vec<Option<Stats>>,
    /// Frequency after rated was reached.
    pub frequency_hz: Option<Stats>,
    /// Highest coolant temperature.
    pub coolant_max_c: Option<f64>,
    /// Lowest oil pressure after rated was reached.
    pub oil_pressure_min_kpa: Option<f64>,
    /// Lowest starter battery voltage around the crank.
    pub battery_crank_v: Option<f64>,
    /// Fuel at start and end, %.
    pub fuel_start_pct: Option<f64>,
    /// Fuel at the end, %.
    pub fuel_end_pct: Option<f64>,
    /// Fuel used, litres (when the tank size is known).
    pub fuel_used_l: Option<f64>,
    /// Engine hours at start.
    pub engine_hours_start: Option<f64>,
    /// Engine hours at the end.
    pub engine_hours_end: Option<f64>,
    /// Starts in this run (1: one engine start per run).
    pub starts: u32,
    /// Alarms raised on the generator during the run.
    pub alarms: Vec<RunAlarm>,
    /// Whether it was a test (inside a test window).
    pub test: bool,
    /// A test's verdict (`None` for other runs).
    pub passed: Option<bool>,
    /// Why a test failed (English; texts for people come from `reasons_vi`).
    pub reasons: Vec<String>,
    /// The same reasons in Vietnamese.
    pub reasons_vi: Vec<String>,
}

/// A finished run as it leaves the gateway (InfluxDB measurement `generator_run`,
/// MQTT `<prefix>/generator_runs/<device>`): the run and where the generator is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Site id.
    pub site: String,
    /// The generator's room.
    pub room: String,
    /// The sticker on the generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The run.
    #[serde(flatten)]
    pub run: Run,
}

/// What the detector remembers of a generator between runs.
#[derive(Debug, Clone, Default)]
struct Last {
    battery_v: Option<f64>,
    /// Battery voltages of the last [`CRANK_WINDOW_S`] (the crank comes before the
    /// engine runs).
    battery_recent: Vec<(Timestamp, f64)>,
    fuel_pct: Option<f64>,
    hours: Option<f64>,
    mains: Option<bool>,
    mains_lost_at: Option<Timestamp>,
    mode: Option<String>,
}

#[derive(Debug, Clone)]
struct Active {
    start: Timestamp,
    start_signal: Timestamp,
    cause: Cause,
    battery_min: Option<f64>,
    fuel_start: Option<f64>,
    fuel_end: Option<f64>,
    hours_start: Option<f64>,
    hours_end: Option<f64>,
    rated_at: Option<Timestamp>,
    kw: Acc,
    pct: Acc,
    volts: [Acc; 3],
    freq: Acc,
    coolant_max: Option<f64>,
    oil_min: Option<f64>,
    stretch: Option<(Timestamp, Timestamp)>,
    best_stretch_s: f64,
    alarms: Vec<RunAlarm>,
}

/// The runs of every generator.
#[derive(Debug)]
pub struct Runs {
    cfg: RunsConfig,
    time: SiteTime,
    last: HashMap<String, Last>,
    active: HashMap<String, Active>,
    /// The generators of the site.
    generators: Vec<String>,
    /// The last passed test of each generator.
    last_passed: HashMap<String, Timestamp>,
    /// Since when tests are counted (the journal's first entry).
    since: Timestamp,
}

fn num(poll: &Poll, name: &str) -> Option<f64> {
    poll.samples
        .iter()
        .find(|s| s.point.name == name && s.quality == Quality::Good)
        .and_then(|s| s.value.as_ref())
        .and_then(Value::as_f64)
}

fn flag(poll: &Poll, name: &str) -> Option<bool> {
    poll.samples
        .iter()
        .find(|s| s.point.name == name && s.quality == Quality::Good)
        .and_then(|s| match s.value.as_ref()? {
            Value::Bool(b) => Some(*b),
            v => v.as_f64().map(|x| x != 0.0),
        })
}

fn text(poll: &Poll, name: &str) -> Option<String> {
    poll.samples
        .iter()
        .find(|s| s.point.name == name && s.quality == Quality::Good)
        .and_then(|s| match s.value.as_ref()? {
            Value::Enum(t) => Some(t.to_string()),
            _ => None,
        })
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Runs {
    /// No run yet.
    pub fn new(cfg: RunsConfig, time: SiteTime) -> Runs {
        Runs {
            cfg,
            time,
            last: HashMap::new(),
            active: HashMap::new(),
            generators: Vec::new(),
            last_passed: HashMap::new(),
            since: Timestamp(i64::MAX),
        }
    }

    /// The site's generators, the passed tests journaled before (entries of kind
    /// `generator_run`) and since when the journal counts (its first entry).
    pub fn restore(
        &mut self,
        generators: Vec<String>,
        runs: &[crate::journal::Entry],
        since: Timestamp,
    ) {
        self.generators = generators;
        self.since = since;
        for e in runs {
            if let Ok(r) = serde_json::from_value::<Run>(e.data.clone())
                && r.passed == Some(true)
            {
                let t = self.last_passed.entry(r.device.clone()).or_insert(r.end);
                *t = (*t).max(r.end);
            }
        }
    }

    /// Whether tests are watched: test windows configured and generators on the site.
    pub fn watches_tests(&self) -> bool {
        !self.cfg.test_windows.is_empty() && !self.generators.is_empty()
    }

    /// Whether a generator has gone [`TEST_OVERDUE_MS`] without a passed test (only
    /// when test windows are configured): the gateway's `generator_test_overdue`.
    pub fn test_overdue(&self, now: Timestamp) -> bool {
        if self.cfg.test_windows.is_empty() || self.since.0 == i64::MAX {
            return false;
        }
        self.generators.iter().any(|g| {
            let from = self
                .last_passed
                .get(g)
                .copied()
                .unwrap_or(self.since)
                .max(self.since);
            now.0 - from.0 > TEST_OVERDUE_MS
        })
    }

    /// The settings.
    pub fn config(&self) -> &RunsConfig {
        &self.cfg
    }

    /// Whether `device` is running now (as far as the polls tell).
    pub fn running(&self, device: &str) -> bool {
        self.active.contains_key(device)
    }

    fn mains(&self, poll: &Poll, np: &Nameplate) -> Option<bool> {
        flag(poll, "mains_available").or_else(|| {
            num(poll, "mains_voltage_l1_v").map(|v| {
                (v - np.rated_voltage_v).abs()
                    <= np.rated_voltage_v * self.cfg.voltage_tolerance_pct / 100.0
            })
        })
    }

    /// An alarm event: a raise on a running generator is kept with its run.
    pub fn on_alarm(&mut self, ev: &AlarmEvent) {
        if ev.state != AlarmState::Raised {
            return;
        }
        if let Some(a) = self.active.get_mut(&*ev.device) {
            a.alarms.push(RunAlarm {
                ts: ev.ts,
                no: ev.detail.no,
                rule: ev.rule.to_string(),
                level: ev.level.as_str().to_string(),
            });
        }
    }

    /// A poll of any device; a finished run of a generator is returned.
    pub fn on_poll(&mut self, poll: &Poll) -> Option<Run> {
        if poll.device.kind != Kind::Generator {
            return None;
        }
        let id = poll.device.id.to_string();
        let np = self.cfg.nameplate(&id);
        let ts = poll.ts;
        let mains = self.mains(poll, &np);
        let running = flag(poll, "engine_running");
        let battery = num(poll, "battery_voltage_v");
        let fuel = num(poll, "fuel_level_pct");
        let hours = num(poll, "engine_hours_h");
        let mode = text(poll, "mode");
        let last = self.last.entry(id.clone()).or_default();
        if let Some(m) = mains {
            if m {
                last.mains_lost_at = None;
            } else if last.mains != Some(false) || last.mains_lost_at.is_none() {
                last.mains_lost_at.get_or_insert(ts);
            }
            last.mains = Some(m);
        }
        let last = last.clone();

        match (self.active.contains_key(&id), running) {
            (false, Some(true)) => {
                let lost = last.mains_lost_at.filter(|t| {
                    ts.secs_since(*t) <= START_SIGNAL_WINDOW_S && last.mains == Some(false)
                });
                let start_signal = lost.unwrap_or(ts);
                let cause = if lost.is_some() {
                    Cause::MainsFailure
                } else if !self.cfg.test_windows.is_empty()
                    && self.cfg.test_windows.contains(ts, &self.time)
                {
                    Cause::Test
                } else if matches!(
                    mode.as_deref().or(last.mode.as_deref()),
                    Some("manual" | "test")
                ) {
                    Cause::Manual
                } else {
                    Cause::Unknown
                };
                let mut a = Active {
                    start: ts,
                    start_signal,
                    cause,
                    battery_min: last
                        .battery_recent
                        .iter()
                        .map(|(_, v)| *v)
                        .fold(battery, |m, v| min_opt(m, Some(v))),
                    fuel_start: last.fuel_pct.or(fuel),
                    fuel_end: fuel,
                    hours_start: last.hours.or(hours),
                    hours_end: hours,
                    rated_at: None,
                    kw: Acc::default(),
                    pct: Acc::default(),
                    volts: Default::default(),
                    freq: Acc::default(),
                    coolant_max: None,
                    oil_min: None,
                    stretch: None,
                    best_stretch_s: 0.0,
                    alarms: Vec::new(),
                };
                self.measure(&mut a, poll, &np);
                self.active.insert(id.clone(), a);
            }
            (true, Some(true)) => {
                if let Some(mut a) = self.active.remove(&id) {
                    if ts.secs_since(a.start) <= CRANK_WINDOW_S {
                        a.battery_min = min_opt(a.battery_min, battery);
                    }
                    self.measure(&mut a, poll, &np);
                    self.active.insert(id.clone(), a);
                }
            }
            (true, Some(false)) => {
                let a = self.active.remove(&id)?;
                let run = self.finish(&id, a, poll, &np);
                if run.passed == Some(true) {
                    self.last_passed.insert(id.clone(), run.end);
                }
                self.remember(&id, ts, battery, fuel, hours, mode);
                return Some(run);
            }
            _ => {}
        }
        self.remember(&id, ts, battery, fuel, hours, mode);
        None
    }

    fn remember(
        &mut self,
        id: &str,
        ts: Timestamp,
        battery: Option<f64>,
        fuel: Option<f64>,
        hours: Option<f64>,
        mode: Option<String>,
    ) {
        let l = self.last.entry(id.to_string()).or_default();
        l.battery_recent
            .retain(|(t, _)| ts.secs_since(*t) <= CRANK_WINDOW_S);
        if let Some(b) = battery {
            l.battery_recent.push((ts, b));
        }
        l.battery_v = battery.or(l.battery_v);
        l.fuel_pct = fuel.or(l.fuel_pct);
        l.hours = hours.or(l.hours);
        if mode.is_some() {
            l.mode = mode;
        }
    }

    fn measure(&self, a: &mut Active, poll: &Poll, np: &Nameplate) {
        let ts = poll.ts;
        let vtol = np.rated_voltage_v * self.cfg.voltage_tolerance_pct / 100.0;
        let ftol = np.rated_frequency_hz * self.cfg.frequency_tolerance_pct / 100.0;
        let volts = [
            num(poll, "gen_voltage_l1_v"),
            num(poll, "gen_voltage_l2_v"),
            num(poll, "gen_voltage_l3_v"),
        ];
        let freq = num(poll, "gen_frequency_hz");
        if a.rated_at.is_none() {
            let f_ok = freq.is_some_and(|f| (f - np.rated_frequency_hz).abs() <= ftol);
            let any_v = volts.iter().any(Option::is_some);
            let v_ok = volts
                .iter()
                .flatten()
                .all(|v| (v - np.rated_voltage_v).abs() <= vtol);
            if f_ok && any_v && v_ok {
                a.rated_at = Some(ts);
            }
        }
        if a.rated_at.is_some() {
            for (acc, v) in a.volts.iter_mut().zip(volts) {
                if let Some(v) = v {
                    acc.add(v);
                }
            }
            if let Some(f) = freq {
                a.freq.add(f);
            }
            a.oil_min = min_opt(a.oil_min, num(poll, "oil_pressure_kpa"));
        }
        a.coolant_max = max_opt(a.coolant_max, num(poll, "coolant_temperature_c"));
        if let Some(f) = num(poll, "fuel_level_pct") {
            a.fuel_end = Some(f);
        }
        if let Some(h) = num(poll, "engine_hours_h") {
            a.hours_end = Some(h);
        }
        let kw = num(poll, "load_kw");
        let pct = match (kw, np.rated_kw) {
            (Some(k), Some(r)) => Some(k / r * 100.0),
            _ => num(poll, "load_pct"),
        };
        let on_load = kw
            .map(|k| k > 0.0)
            .or(pct.map(|p| p > 0.0))
            .unwrap_or(false);
        if on_load {
            if let Some(k) = kw {
                a.kw.add(k);
            }
            if let Some(p) = pct {
                a.pct.add(p);
            }
        }
        match pct {
            Some(p) if p >= self.cfg.min_load_pct && p > 0.0 => {
                let (from, _) = a.stretch.unwrap_or((ts, ts));
                a.stretch = Some((from, ts));
                a.best_stretch_s = a.best_stretch_s.max(ts.secs_since(from));
            }
            // A poll without a load value keeps the stretch going.
            None if a.stretch.is_some() => {}
            _ => a.stretch = None,
        }
    }

    fn finish(&self, id: &str, a: Active, poll: &Poll, np: &Nameplate) -> Run {
        let end = poll.ts;
        let fuel_end = num(poll, "fuel_level_pct").or(a.fuel_end);
        let hours_end = num(poll, "engine_hours_h").or(a.hours_end);
        let fuel_used_l = match (a.fuel_start, fuel_end, np.tank_l) {
            (Some(s), Some(e), Some(t)) => Some(round((s - e) / 100.0 * t)),
            _ => None,
        };
        let time_to_rated_s = a.rated_at.map(|t| round(t.secs_since(a.start_signal)));
        let test = a.cause == Cause::Test;
        let mut run = Run {
            device: id.to_string(),
            start: a.start,
            end,
            duration_s: round(end.secs_since(a.start)),
            cause: a.cause,
            start_signal: a.start_signal,
            time_to_rated_s,
            load_kw: a.kw.stats(),
            load_pct: a.pct.stats(),
            under_load_s: round(a.best_stretch_s),
            voltage_v: a.volts.iter().map(Acc::stats).collect(),
            frequency_hz: a.freq.stats(),
            coolant_max_c: a.coolant_max,
            oil_pressure_min_kpa: a.oil_min,
            battery_crank_v: a.battery_min,
            fuel_start_pct: a.fuel_start,
            fuel_end_pct: fuel_end,
            fuel_used_l,
            engine_hours_start: a.hours_start,
            engine_hours_end: hours_end,
            starts: 1,
            alarms: a.alarms,
            test,
            passed: None,
            reasons: Vec::new(),
            reasons_vi: Vec::new(),
        };
        while run.voltage_v.last().is_some_and(Option::is_none) {
            run.voltage_v.pop();
        }
        if test {
            judge(&mut run, &self.cfg);
        }
        run
    }
}

/// Judge a test run (NFPA 110 §8.4 style; docs/RULES.md "Generator test").
pub fn judge(run: &mut Run, cfg: &RunsConfig) {
    let mut en = Vec::new();
    let mut vi = Vec::new();
    match run.time_to_rated_s {
        None => {
            en.push("never reached rated voltage and frequency".to_string());
            vi.push("không đạt điện áp và tần số định mức".to_string());
        }
        Some(t) if t > cfg.max_start_s => {
            en.push(format!(
                "reached rated voltage and frequency after {} s (at most {} s)",
                crate::model::fmt_number(t),
                crate::model::fmt_number(cfg.max_start_s)
            ));
            vi.push(format!(
                "đạt điện áp và tần số định mức sau {} giây (tối đa {} giây)",
                crate::texts::number::display(t, 1, crate::model::Language::Vi),
                crate::model::fmt_number(cfg.max_start_s)
            ));
        }
        _ => {}
    }
    if run.load_pct.is_none() {
        en.push("load unknown (no load_kw with rated_kw, nor load_pct)".to_string());
        vi.push("không đo được tải".to_string());
    } else if run.under_load_s < cfg.min_run_s {
        let got = (run.under_load_s / 60.0 * 10.0).round() / 10.0;
        en.push(format!(
            "ran {} min at or above {} % load (at least {} min)",
            crate::model::fmt_number(got),
            crate::model::fmt_number(cfg.min_load_pct),
            crate::model::fmt_number(cfg.min_run_s / 60.0)
        ));
        vi.push(format!(
            "chạy {} phút với tải từ {} % trở lên (tối thiểu {} phút)",
            crate::texts::number::display(got, 1, crate::model::Language::Vi),
            crate::model::fmt_number(cfg.min_load_pct),
            crate::model::fmt_number(cfg.min_run_s / 60.0)
        ));
    }
    run.passed = Some(en.is_empty());
    run.reasons = en;
    run.reasons_vi = vi;
}

/// The "Generator test" section of docs/RULES.md: the criteria [`judge`] applies,
/// with the defaults of [`RunsConfig`].
pub fn rules_markdown() -> String {
    let c = RunsConfig::default();
    let n = crate::model::fmt_number;
    format!(
        "
## Generator test (NFPA 110 §8.4; regulation/THRESHOLDS.md \"Generator test log\")

A generator run that starts inside a test window (`[generator_runs] test_windows`, the
schedule syntax) is a test, judged by `src/generator_runs/` (docs/RECORDS.md). It
**passes** when both hold, and fails with every reason that does not:

| Criterion | Default | Setting |
|---|---|---|
| Rated voltage and frequency reached within the start time, counted from the start signal (mains lost, else the engine running) — NFPA 110 Type 10 | {} s | `max_start_s` |
| \"Rated\": every reported phase voltage within ±{} % of `rated_voltage_v` and the frequency within ±{} % of `rated_frequency_hz` (the usual transfer-switch pick-up of 90 % voltage and 95 % frequency) | ±{} % / ±{} % | `voltage_tolerance_pct`, `frequency_tolerance_pct` |
| Ran continuously under load at no less than this share of nameplate kW (`rated_kw`; else the controller's `load_pct`) | {} % | `min_load_pct` |
| ... for at least | {} min | `min_run_minutes` |

The documented alternative of NFPA 110 (the maker's minimum exhaust temperature
instead of 30 % load) is not judged: no canonical point carries exhaust temperature.
Runs outside test windows (mains failure, manual, unknown) are logged with the same
figures and no verdict.
",
        n(c.max_start_s),
        n(c.voltage_tolerance_pct),
        n(c.frequency_tolerance_pct),
        n(c.voltage_tolerance_pct),
        n(c.frequency_tolerance_pct),
        n(c.min_load_pct),
        n(c.min_run_s / 60.0),
    )
}
