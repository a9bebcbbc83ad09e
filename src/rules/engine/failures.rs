//! The failures that matter (power, generator, cooling, transfer switch), table-driven
//! with an injected clock: every default rule of those kinds has a row that raises it
//! at the level and time `docs/RULES.md` gives, and the power topology
//! (`mains_failure` naming a generator and a transfer switch) is played through.

use super::*;
use crate::model::{Kind, Sample};
use crate::points::{GENERATOR_ALARM, PointType, lookup, points_of};
use crate::rules::defaults::{self, mains_failure};
use crate::rules::spec::Expr;

const T0: i64 = 1_779_926_400_000;
const POLL_S: i64 = 2;

fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * 1000)
}

fn dev(kind: Kind, id: &str) -> Device {
    Arc::new(DeviceMeta {
        id: Arc::from(id),
        name: id.into(),
        label: None,
        room: Arc::from("power"),
        kind,
    })
}

fn b(x: bool) -> Value {
    Value::Bool(x)
}
fn n(x: f64) -> Value {
    Value::Number(x)
}
fn e(x: &'static str) -> Value {
    Value::Enum(x)
}

/// A site of devices, each polled every 2 s with its present values (a device set
/// `silent` is not polled), the engine ticked every second.
struct Site {
    e: Engine,
    devs: Vec<(Device, BTreeMap<&'static str, Value>, bool)>,
    now: i64,
    events: Vec<AlarmEvent>,
}

use std::collections::BTreeMap;

impl Site {
    fn new(devices: Vec<(Device, Vec<RuleSpec>)>) -> Site {
        let mut e = Engine::new(Arc::from("travinh"), Language::En, 1);
        let mut devs = Vec::new();
        for (d, rules) in devices {
            e.add_device(d.clone(), Duration::from_secs(POLL_S as u64), rules);
            devs.push((d, BTreeMap::new(), false));
        }
        Site {
            e,
            devs,
            now: 0,
            events: Vec::new(),
        }
    }

    fn set(&mut self, id: &str, values: &[(&'static str, Value)]) {
        let d = self.devs.iter_mut().find(|d| &*d.0.id == id).unwrap();
        for (p, v) in values {
            d.1.insert(p, v.clone());
        }
    }

    fn silent(&mut self, id: &str, silent: bool) {
        self.devs.iter_mut().find(|d| &*d.0.id == id).unwrap().2 = silent;
    }

    /// Run to `until` seconds: polls every 2 s, ticks every second.
    fn run(&mut self, until: i64) {
        while self.now < until {
            self.now += 1;
            let t = at(self.now);
            if self.now % POLL_S == 0 {
                for (d, values, silent) in &self.devs {
                    if *silent {
                        continue;
                    }
                    let poll = Poll {
                        device: d.clone(),
                        ts: t,
                        comm_ok: true,
                        samples: values
                            .iter()
                            .map(|(p, v)| Sample {
                                point: lookup(d.kind, p).expect("point in vocabulary"),
                                value: Some(v.clone()),
                                quality: Quality::Good,
                            })
                            .collect(),
                    };
                    let ev = self.e.on_poll(&poll);
                    self.events.extend(ev);
                }
            }
            let ev = self.e.tick(t);
            self.events.extend(ev);
        }
    }

    /// `(seconds, level)` of the first raise of `device/rule`.
    fn raised(&self, device: &str, rule: &str) -> Option<(i64, Level)> {
        self.events
            .iter()
            .find(|ev| &*ev.device == device && &*ev.rule == rule && ev.state == AlarmState::Raised)
            .map(|ev| ((ev.ts.millis() - T0) / 1000, ev.level))
    }

    fn cleared(&self, device: &str, rule: &str) -> Option<i64> {
        self.events
            .iter()
            .find(|ev| {
                &*ev.device == device && &*ev.rule == rule && ev.state == AlarmState::Cleared
            })
            .map(|ev| (ev.ts.millis() - T0) / 1000)
    }
}

/// One row: a device of `kind` starts in `base`, `change` is first polled at 10 s; the rule
/// must first raise at `want` (seconds, level) — or never within `until` (`None`).
struct Row {
    kind: Kind,
    rule: &'static str,
    base: Vec<(&'static str, Value)>,
    change: Vec<(&'static str, Value)>,
    until: i64,
    want: Option<(i64, Level)>,
}

fn row(
    kind: Kind,
    rule: &'static str,
    base: Vec<(&'static str, Value)>,
    change: Vec<(&'static str, Value)>,
    until: i64,
    want: Option<(i64, Level)>,
) -> Row {
    Row {
        kind,
        rule,
        base,
        change,
        until,
        want,
    }
}

fn ups_ok() -> Vec<(&'static str, Value)> {
    vec![
        ("on_battery", b(false)),
        ("on_bypass", b(false)),
        ("fault", b(false)),
        ("battery_replace", b(false)),
        ("battery_low", b(false)),
        ("battery_charge_pct", n(100.0)),
        ("runtime_remaining_s", n(3600.0)),
        ("load_pct", n(40.0)),
        ("battery_temperature_c", n(25.0)),
    ]
}

fn gen_ok() -> Vec<(&'static str, Value)> {
    let mut v = vec![
        ("mode", e("auto")),
        ("engine_running", b(false)),
        ("shutdown_alarm", b(false)),
        ("fuel_level_pct", n(90.0)),
        ("battery_voltage_v", n(13.2)),
        ("gen_voltage_l1_v", n(0.0)),
        ("gen_frequency_hz", n(0.0)),
    ];
    for p in named_alarms() {
        v.push((p, e("inactive")));
    }
    v
}

fn cooling_ok() -> Vec<(&'static str, Value)> {
    vec![
        ("unit_on", b(true)),
        ("common_alarm", b(false)),
        ("critical_alarm", b(false)),
        ("filter_dirty", b(false)),
        ("high_pressure_alarm", b(false)),
        ("low_pressure_alarm", b(false)),
        ("supply_air_temperature_c", n(20.0)),
        ("setpoint_c", n(22.0)),
    ]
}

fn ats_ok() -> Vec<(&'static str, Value)> {
    vec![
        ("position", e("mains")),
        ("mains_available", b(true)),
        ("generator_available", b(false)),
        ("transfer_failed", b(false)),
        ("fault", b(false)),
    ]
}

fn named_alarms() -> Vec<&'static str> {
    points_of(Kind::Generator)
        .iter()
        .filter(|p| p.ty == PointType::Enum(GENERATOR_ALARM))
        .map(|p| p.name)
        .collect()
}

fn rows() -> Vec<Row> {
    use Kind::{Ats, Cooling, Generator, Ups};
    use Level::{Normal, Serious};
    let mut rows = vec![
        // THRESHOLDS.md "Power": on battery → normal at once, serious after 60 s if the
        // generator has not taken the load (no generator configured: it never does).
        row(
            Ups,
            "on_battery",
            ups_ok(),
            vec![("on_battery", b(true))],
            30,
            Some((10, Normal)),
        ),
        row(
            Ups,
            "mains_failure",
            ups_ok(),
            vec![("on_battery", b(true))],
            100,
            Some((70, Serious)),
        ),
        row(
            Ups,
            "on_battery_long",
            ups_ok(),
            vec![("on_battery", b(true))],
            400,
            Some((310, Serious)),
        ),
        // Runtime below 10 min → serious at once; 10 min exactly is not below.
        row(
            Ups,
            "runtime_low",
            ups_ok(),
            vec![("runtime_remaining_s", n(599.0))],
            30,
            Some((10, Serious)),
        ),
        row(
            Ups,
            "runtime_low",
            ups_ok(),
            vec![("runtime_remaining_s", n(600.0))],
            30,
            None,
        ),
        row(
            Ups,
            "charge_low_on_battery",
            ups_ok(),
            vec![("on_battery", b(true)), ("battery_charge_pct", n(49.0))],
            30,
            Some((10, Serious)),
        ),
        row(
            Ups,
            "charge_low_on_battery",
            ups_ok(),
            vec![("battery_charge_pct", n(20.0))],
            30,
            None,
        ),
        row(
            Ups,
            "battery_low",
            ups_ok(),
            vec![("battery_low", b(true))],
            30,
            Some((10, Serious)),
        ),
        row(
            Ups,
            "load_high",
            ups_ok(),
            vec![("load_pct", n(85.0))],
            100,
            Some((70, Normal)),
        ),
        row(
            Ups,
            "load_high",
            ups_ok(),
            vec![("load_pct", n(95.0))],
            100,
            Some((70, Serious)),
        ),
        row(
            Ups,
            "on_bypass",
            ups_ok(),
            vec![("on_bypass", b(true))],
            30,
            Some((10, Serious)),
        ),
        row(
            Ups,
            "fault",
            ups_ok(),
            vec![("fault", b(true))],
            30,
            Some((10, Serious)),
        ),
        row(
            Ups,
            "battery_replace",
            ups_ok(),
            vec![("battery_replace", b(true))],
            30,
            Some((10, Normal)),
        ),
        row(
            Ups,
            "battery_temperature_high",
            ups_ok(),
            vec![("battery_temperature_c", n(41.0))],
            100,
            Some((70, Normal)),
        ),
        row(
            Generator,
            "mode_not_auto",
            gen_ok(),
            vec![("mode", e("manual"))],
            30,
            Some((10, Normal)),
        ),
        row(
            Generator,
            "shutdown_alarm",
            gen_ok(),
            vec![("shutdown_alarm", b(true))],
            30,
            Some((10, Serious)),
        ),
        row(
            Generator,
            "fuel_low",
            gen_ok(),
            vec![("fuel_level_pct", n(40.0))],
            100,
            Some((70, Normal)),
        ),
        row(
            Generator,
            "fuel_low",
            gen_ok(),
            vec![("fuel_level_pct", n(20.0))],
            100,
            Some((70, Serious)),
        ),
        row(
            Generator,
            "battery_voltage_low",
            gen_ok(),
            vec![("battery_voltage_v", n(11.5))],
            100,
            Some((70, Normal)),
        ),
        // NFPA 110 Type 10: rated voltage and frequency within 10 s of the start.
        row(
            Generator,
            "not_at_rated",
            gen_ok(),
            vec![
                ("engine_running", b(true)),
                ("gen_voltage_l1_v", n(120.0)),
                ("gen_frequency_hz", n(30.0)),
            ],
            40,
            Some((20, Serious)),
        ),
        row(
            Generator,
            "not_at_rated",
            gen_ok(),
            vec![
                ("engine_running", b(true)),
                ("gen_voltage_l1_v", n(229.0)),
                ("gen_frequency_hz", n(50.1)),
            ],
            40,
            None,
        ),
        row(
            Cooling,
            "unit_stopped",
            cooling_ok(),
            vec![("unit_on", b(false))],
            30,
            Some((10, Serious)),
        ),
        row(
            Cooling,
            "critical_alarm",
            cooling_ok(),
            vec![("critical_alarm", b(true))],
            30,
            Some((10, Serious)),
        ),
        row(
            Cooling,
            "filter_dirty",
            cooling_ok(),
            vec![("filter_dirty", b(true))],
            30,
            Some((10, Normal)),
        ),
        row(
            Cooling,
            "common_alarm",
            cooling_ok(),
            vec![("common_alarm", b(true))],
            30,
            Some((10, Normal)),
        ),
        row(
            Cooling,
            "high_pressure",
            cooling_ok(),
            vec![("high_pressure_alarm", b(true))],
            30,
            Some((10, Serious)),
        ),
        row(
            Cooling,
            "low_pressure",
            cooling_ok(),
            vec![("low_pressure_alarm", b(true))],
            30,
            Some((10, Serious)),
        ),
        // Supply air above the set point + 3 °C for 5 min → normal; + 3 exactly is not.
        row(
            Cooling,
            "supply_air_high",
            cooling_ok(),
            vec![("supply_air_temperature_c", n(25.5))],
            400,
            Some((310, Normal)),
        ),
        row(
            Cooling,
            "supply_air_high",
            cooling_ok(),
            vec![("supply_air_temperature_c", n(25.0))],
            400,
            None,
        ),
        row(
            Ats,
            "transfer_failed",
            ats_ok(),
            vec![("transfer_failed", b(true))],
            30,
            Some((10, Serious)),
        ),
        row(
            Ats,
            "fault",
            ats_ok(),
            vec![("fault", b(true))],
            30,
            Some((10, Serious)),
        ),
    ];
    // The controller's named alarms: warning → normal, shutdown / electrical trip →
    // serious, an indication or "inactive" → nothing.
    for (i, p) in named_alarms().into_iter().enumerate() {
        let (v, want) = match i % 4 {
            0 => ("warning", Some((10, Level::Normal))),
            1 => ("shutdown", Some((10, Level::Serious))),
            2 => ("electrical_trip", Some((10, Level::Serious))),
            _ => ("indication", None),
        };
        rows.push(row(Generator, p, gen_ok(), vec![(p, e(v))], 30, want));
        if want.is_none() {
            rows.push(row(
                Generator,
                p,
                gen_ok(),
                vec![(p, e("shutdown"))],
                30,
                Some((10, Level::Serious)),
            ));
        }
    }
    rows
}

#[test]
fn every_default_of_power_cooling_and_ats_raises_as_documented() {
    let rows = rows();
    for r in &rows {
        let d = dev(r.kind, "d1");
        let mut site = Site::new(vec![(d, defaults::defaults(r.kind))]);
        site.set("d1", &r.base);
        // The change is first polled at 10 s.
        site.run(9);
        assert_eq!(
            site.raised("d1", r.rule),
            None,
            "{}/{} raised before the change",
            r.kind,
            r.rule
        );
        site.set("d1", &r.change);
        site.run(r.until);
        assert_eq!(site.raised("d1", r.rule), r.want, "{}/{}", r.kind, r.rule);
    }
    // Every default of these kinds has a row (comm_lost has its own tests).
    for kind in [Kind::Ups, Kind::Generator, Kind::Cooling, Kind::Ats] {
        for spec in defaults::defaults(kind) {
            if &*spec.name == "comm_lost" {
                continue;
            }
            assert!(
                rows.iter()
                    .any(|r| r.kind == kind && r.rule == &*spec.name && r.want.is_some()),
                "no row raises {kind}/{}",
                spec.name
            );
        }
    }
}

#[test]
fn unknown_runtime_never_raises_runtime_low() {
    let d = dev(Kind::Ups, "ups1");
    let mut e = Engine::new(Arc::from("travinh"), Language::En, 1);
    e.add_device(
        d.clone(),
        Duration::from_secs(2),
        defaults::defaults(Kind::Ups),
    );
    let point = lookup(Kind::Ups, "runtime_remaining_s").unwrap();
    let mut events = Vec::new();
    for (i, q) in [Quality::Unknown, Quality::OutOfRange, Quality::Unknown]
        .iter()
        .enumerate()
    {
        let poll = Poll {
            device: d.clone(),
            ts: at(2 * i as i64),
            comm_ok: true,
            samples: vec![Sample {
                point,
                value: None,
                quality: *q,
            }],
        };
        events.extend(e.on_poll(&poll));
        events.extend(e.tick(at(2 * i as i64 + 1)));
    }
    assert!(
        events.iter().all(|ev| &*ev.rule != "runtime_low"),
        "{events:?}"
    );
}

/// A UPS backed by generator `gen1` through transfer switch `ats1`.
fn power_site() -> Site {
    let ups = dev(Kind::Ups, "ups1");
    let generator = dev(Kind::Generator, "gen1");
    let ats = dev(Kind::Ats, "ats1");
    let mut ups_rules = defaults::defaults(Kind::Ups);
    for s in &mut ups_rules {
        if let Condition::Composite { expr, .. } = &mut s.condition {
            *expr = mains_failure(Some(&Arc::from("gen1")), Some(&Arc::from("ats1")));
        }
    }
    let mut site = Site::new(vec![
        (ups, ups_rules),
        (generator, defaults::defaults(Kind::Generator)),
        (ats, defaults::defaults(Kind::Ats)),
    ]);
    site.set("ups1", &ups_ok());
    site.set("gen1", &gen_ok());
    site.set("ats1", &ats_ok());
    // What a test sets next is first polled at 10 s.
    site.run(9);
    site
}

#[test]
fn mains_failure_with_topology_table() {
    // (what happens, at which second after the mains fail, want: first raise second)
    type Script = fn(&mut Site);
    let gen_takes_load: Script = |s| {
        s.run(30);
        s.set(
            "gen1",
            &[
                ("engine_running", b(true)),
                ("gen_voltage_l1_v", n(230.0)),
                ("gen_frequency_hz", n(50.0)),
            ],
        );
        s.run(40);
        s.set("ats1", &[("position", e("generator"))]);
        s.run(140);
    };
    let gen_runs_ats_stays: Script = |s| {
        s.run(30);
        s.set(
            "gen1",
            &[
                ("engine_running", b(true)),
                ("gen_voltage_l1_v", n(230.0)),
                ("gen_frequency_hz", n(50.0)),
            ],
        );
        s.run(140);
    };
    let gen_stays_stopped: Script = |s| s.run(140);
    let gen_silent: Script = |s| {
        s.silent("gen1", true);
        s.run(140);
    };
    type Want = Option<(i64, Level)>;
    let table: [(&str, Script, Want); 4] = [
        (
            "generator stays stopped",
            gen_stays_stopped,
            Some((70, Level::Serious)),
        ),
        (
            "generator starts and the switch moves",
            gen_takes_load,
            None,
        ),
        (
            "generator runs, switch stays on mains",
            gen_runs_ats_stays,
            Some((70, Level::Serious)),
        ),
        (
            "generator silent (counts as not running)",
            gen_silent,
            Some((70, Level::Serious)),
        ),
    ];
    for (what, script, want) in table {
        let mut s = power_site();
        s.set("ups1", &[("on_battery", b(true))]);
        script(&mut s);
        assert_eq!(s.raised("ups1", "mains_failure"), want, "{what}");
        assert_eq!(
            s.raised("ups1", "on_battery"),
            Some((10, Level::Normal)),
            "{what}"
        );
    }
}

#[test]
fn mains_failure_clears_when_the_generator_takes_the_load() {
    let mut s = power_site();
    s.set("ups1", &[("on_battery", b(true))]);
    s.run(30);
    // Inside its 60 s: pending, not an alarm yet, not normal either.
    let pending = s.e.pending();
    assert!(
        pending
            .iter()
            .any(|p| &*p.rule == "mains_failure" && p.level == Level::Serious && p.since == at(10)),
        "{pending:?}"
    );
    s.run(80);
    assert_eq!(
        s.raised("ups1", "mains_failure"),
        Some((70, Level::Serious))
    );
    assert!(s.e.pending().iter().all(|p| &*p.rule != "mains_failure"));
    let raised = s
        .events
        .iter()
        .find(|ev| &*ev.rule == "mains_failure")
        .unwrap();
    assert!(
        raised.message.contains("Mains failure"),
        "{}",
        raised.message
    );
    s.set("gen1", &[("engine_running", b(true))]);
    s.set("ats1", &[("position", e("generator"))]);
    s.run(90);
    assert_eq!(s.cleared("ups1", "mains_failure"), Some(82));
    // Back on mains: the UPS leaves the battery, nothing raises again.
    s.set("ups1", &[("on_battery", b(false))]);
    s.run(400);
    let raises = s
        .events
        .iter()
        .filter(|ev| &*ev.rule == "mains_failure" && ev.state == AlarmState::Raised)
        .count();
    assert_eq!(raises, 1);
    assert_eq!(s.raised("ups1", "on_battery_long"), None);
}

#[test]
fn a_start_reaching_rated_after_14_s_raises_not_at_rated_at_10_s_and_clears() {
    let mut s = power_site();
    s.set(
        "gen1",
        &[
            ("engine_running", b(true)),
            ("gen_voltage_l1_v", n(100.0)),
            ("gen_frequency_hz", n(25.0)),
        ],
    );
    s.run(24);
    assert_eq!(s.raised("gen1", "not_at_rated"), Some((20, Level::Serious)));
    let ev = s
        .events
        .iter()
        .find(|ev| &*ev.rule == "not_at_rated")
        .unwrap();
    assert_eq!(ev.threshold, Some(50.0));
    assert_eq!(ev.value, Some(Value::Number(25.0)));
    assert!(ev.message.contains("within 10"), "{}", ev.message);
    s.set(
        "gen1",
        &[
            ("gen_voltage_l1_v", n(231.0)),
            ("gen_frequency_hz", n(50.0)),
        ],
    );
    s.run(30);
    assert_eq!(s.cleared("gen1", "not_at_rated"), Some(26));
    // A gateway that first sees the engine already running does not judge that start.
    let mut fresh = Site::new(vec![(
        dev(Kind::Generator, "g"),
        defaults::defaults(Kind::Generator),
    )]);
    fresh.set(
        "g",
        &[
            ("engine_running", b(true)),
            ("gen_voltage_l1_v", n(0.0)),
            ("gen_frequency_hz", n(0.0)),
        ],
    );
    fresh.run(60);
    assert_eq!(fresh.raised("g", "not_at_rated"), None);
}

#[test]
fn composite_expression_logic_and_unknowns() {
    let expr = mains_failure(Some(&Arc::from("g")), None);
    let eval = |on_battery: Option<bool>, running: Option<bool>| {
        expr.eval(&|d, p| match (d.map(|x| &**x), p) {
            (None, "on_battery") => on_battery.map(Value::Bool),
            (Some("g"), "engine_running") => running.map(Value::Bool),
            _ => None,
        })
    };
    assert_eq!(eval(Some(true), Some(false)), Some(true));
    assert_eq!(
        eval(Some(true), None),
        Some(true),
        "a silent generator is not running"
    );
    assert_eq!(eval(Some(true), Some(true)), Some(false));
    assert_eq!(eval(None, Some(false)), None, "unknown on_battery: unknown");
    assert_eq!(
        eval(None, Some(true)),
        Some(false),
        "a false part decides `all`"
    );
    assert_eq!(eval(Some(false), Some(false)), Some(false));
    assert_eq!(Expr::All(vec![]).eval(&|_, _| None), Some(true));
    assert_eq!(Expr::Any(vec![]).eval(&|_, _| None), Some(false));
    assert_eq!(
        expr.describe(),
        "this device: on_battery is true and (g: engine_running is false)"
    );
}

#[test]
fn a_ups_that_falls_silent_keeps_its_mains_failure_state() {
    let mut s = power_site();
    s.set("ups1", &[("on_battery", b(true))]);
    s.run(80);
    assert_eq!(
        s.raised("ups1", "mains_failure"),
        Some((70, Level::Serious))
    );
    // The UPS card stops answering (as it may when the battery runs down): no clear.
    s.silent("ups1", true);
    s.run(200);
    assert_eq!(s.cleared("ups1", "mains_failure"), None);
    assert_eq!(
        s.raised("ups1", "comm_lost").map(|r| r.1),
        Some(Level::Serious)
    );
    // It answers again, still on battery, the generator now on load: cleared.
    s.silent("ups1", false);
    s.set("gen1", &[("engine_running", b(true))]);
    s.set("ats1", &[("position", e("generator"))]);
    s.run(210);
    assert!(s.cleared("ups1", "mains_failure").is_some());
    // And a silent UPS never raises it in the first place.
    let mut quiet = power_site();
    quiet.silent("ups1", true);
    quiet.run(200);
    assert_eq!(quiet.raised("ups1", "mains_failure"), None);
}

#[test]
fn a_start_is_judged_from_the_start_sequence_when_the_profile_reports_it() {
    let mut s = power_site();
    // Pre-start at 10 s, running at 14 s, never at rated: raised 10 s after pre-start.
    s.set("gen1", &[("engine_starting", b(true))]);
    s.run(13);
    s.set(
        "gen1",
        &[
            ("engine_starting", b(false)),
            ("engine_running", b(true)),
            ("gen_voltage_l1_v", n(150.0)),
            ("gen_frequency_hz", n(40.0)),
        ],
    );
    s.run(30);
    assert_eq!(s.raised("gen1", "not_at_rated"), Some((20, Level::Serious)));
    // A start sequence that ends without the engine running ends the start.
    let mut aborted = power_site();
    aborted.set("gen1", &[("engine_starting", b(true))]);
    aborted.run(13);
    aborted.set("gen1", &[("engine_starting", b(false))]);
    aborted.run(40);
    assert_eq!(aborted.raised("gen1", "not_at_rated"), None);
}
