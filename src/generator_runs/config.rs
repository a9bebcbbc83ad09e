//! `[generator_runs]`: test windows, the pass/fail criteria (NFPA 110 §8.4 style,
//! docs/RULES.md, regulation/THRESHOLDS.md) and each generator's nameplate.
//!
//! ```toml
//! [generator_runs]
//! test_windows = ["first Mon 09:00-11:00"]   # the schedule syntax (src/schedule.rs)
//! min_run_minutes = 30          # a test must run at least this long under load
//! min_load_pct = 30             # ... at no less than this % of nameplate kW
//! max_start_s = 10              # rated voltage and frequency within this (NFPA 110 Type 10)
//! voltage_tolerance_pct = 10    # "rated voltage" = within this % of rated_voltage_v
//! frequency_tolerance_pct = 5   # "rated frequency" = within this % of rated_frequency_hz
//!
//! [generator_runs.devices.gen1]
//! rated_kw = 100.0
//! rated_voltage_v = 220.0       # phase to neutral (default 220, Vietnam's LV grid)
//! rated_frequency_hz = 50.0
//! tank_l = 400.0                # fuel in litres when known
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::DeValue;

use crate::config::Report;
use crate::schedule::Schedule;

/// `[generator_runs]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuns {
    /// When tests are run, in the schedule syntax; a run that starts inside one is a test.
    #[serde(default)]
    pub test_windows: Option<Spanned<Vec<String>>>,
    /// Minutes a test must run under load (default 30).
    #[serde(default)]
    pub min_run_minutes: Option<Spanned<f64>>,
    /// Load a test must hold, % of nameplate kW (default 30).
    #[serde(default)]
    pub min_load_pct: Option<Spanned<f64>>,
    /// Seconds from the start to rated voltage and frequency (default 10).
    #[serde(default)]
    pub max_start_s: Option<Spanned<f64>>,
    /// Voltage within this % of rated counts as rated (default 10).
    #[serde(default)]
    pub voltage_tolerance_pct: Option<Spanned<f64>>,
    /// Frequency within this % of rated counts as rated (default 5).
    #[serde(default)]
    pub frequency_tolerance_pct: Option<Spanned<f64>>,
    /// Each generator's nameplate, by device id.
    #[serde(default)]
    pub devices: BTreeMap<String, RawNameplate>,
}

/// A generator's nameplate as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNameplate {
    /// Nameplate active power, kW.
    #[serde(default)]
    pub rated_kw: Option<f64>,
    /// Rated phase-to-neutral voltage, V.
    #[serde(default)]
    pub rated_voltage_v: Option<f64>,
    /// Rated frequency, Hz.
    #[serde(default)]
    pub rated_frequency_hz: Option<f64>,
    /// Fuel tank size, litres.
    #[serde(default)]
    pub tank_l: Option<f64>,
}

/// A generator's nameplate.
#[derive(Debug, Clone, PartialEq)]
pub struct Nameplate {
    /// kW, if known (load % is then computed from kW; else the `load_pct` point).
    pub rated_kw: Option<f64>,
    /// V phase to neutral.
    pub rated_voltage_v: f64,
    /// Hz.
    pub rated_frequency_hz: f64,
    /// Litres, if known.
    pub tank_l: Option<f64>,
}

impl Default for Nameplate {
    fn default() -> Self {
        Nameplate {
            rated_kw: None,
            rated_voltage_v: 220.0,
            rated_frequency_hz: 50.0,
            tank_l: None,
        }
    }
}

/// `[generator_runs]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RunsConfig {
    /// Test windows.
    pub test_windows: Schedule,
    /// Seconds a test must run under load.
    pub min_run_s: f64,
    /// % of nameplate kW a test must hold.
    pub min_load_pct: f64,
    /// Seconds to rated voltage and frequency.
    pub max_start_s: f64,
    /// Voltage tolerance, %.
    pub voltage_tolerance_pct: f64,
    /// Frequency tolerance, %.
    pub frequency_tolerance_pct: f64,
    /// Nameplates by device id.
    pub devices: BTreeMap<String, Nameplate>,
}

impl Default for RunsConfig {
    fn default() -> Self {
        RunsConfig {
            test_windows: Schedule::default(),
            min_run_s: 30.0 * 60.0,
            min_load_pct: 30.0,
            max_start_s: 10.0,
            voltage_tolerance_pct: 10.0,
            frequency_tolerance_pct: 5.0,
            devices: BTreeMap::new(),
        }
    }
}

impl RunsConfig {
    /// The nameplate of `device` (defaults when not configured).
    pub fn nameplate(&self, device: &str) -> Nameplate {
        self.devices.get(device).cloned().unwrap_or_default()
    }
}

/// Validate `[generator_runs]` (taken out of the document by the loader).
pub(crate) fn validate(r: &mut Report<'_>, table: Option<Spanned<DeValue<'_>>>) -> RunsConfig {
    let mut c = RunsConfig::default();
    let Some(table) = table else { return c };
    let Some(raw) = r.parse_value::<RawRuns>(table, "generator_runs") else {
        return c;
    };
    if let Some(w) = &raw.test_windows {
        match Schedule::parse(w.get_ref()) {
            Ok(s) => c.test_windows = s,
            Err(errors) => {
                for e in errors {
                    r.at(w.span(), "generator_runs.test_windows", e.to_string());
                }
            }
        }
    }
    let mut num = |v: &Option<Spanned<f64>>, key: &str, lo: f64, hi: f64, out: &mut f64| {
        if let Some(v) = v {
            let x = *v.get_ref();
            if x.is_finite() && (lo..=hi).contains(&x) {
                *out = x;
            } else {
                r.at(
                    v.span(),
                    format!("generator_runs.{key}"),
                    format!("{x} is out of range: use {lo} to {hi}"),
                );
            }
        }
    };
    let mut minutes = c.min_run_s / 60.0;
    num(
        &raw.min_run_minutes,
        "min_run_minutes",
        1.0,
        600.0,
        &mut minutes,
    );
    c.min_run_s = minutes * 60.0;
    num(
        &raw.min_load_pct,
        "min_load_pct",
        0.0,
        100.0,
        &mut c.min_load_pct,
    );
    num(
        &raw.max_start_s,
        "max_start_s",
        1.0,
        600.0,
        &mut c.max_start_s,
    );
    num(
        &raw.voltage_tolerance_pct,
        "voltage_tolerance_pct",
        0.5,
        50.0,
        &mut c.voltage_tolerance_pct,
    );
    num(
        &raw.frequency_tolerance_pct,
        "frequency_tolerance_pct",
        0.5,
        50.0,
        &mut c.frequency_tolerance_pct,
    );
    for (id, n) in raw.devices {
        let d = Nameplate::default();
        let positive = |x: Option<f64>| x.filter(|v| v.is_finite() && *v > 0.0);
        c.devices.insert(
            id,
            Nameplate {
                rated_kw: positive(n.rated_kw),
                rated_voltage_v: positive(n.rated_voltage_v).unwrap_or(d.rated_voltage_v),
                rated_frequency_hz: positive(n.rated_frequency_hz).unwrap_or(d.rated_frequency_hz),
                tank_l: positive(n.tank_l),
            },
        );
    }
    c
}
