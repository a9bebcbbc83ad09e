//! The "Article 10 profile": the alarm rules every device kind gets by default.
//!
//! Figures come from `regulation/THRESHOLDS.md` (ASHRAE TC 9.9 for climate, NUT /
//! apcupsd / UPS card defaults for power, NFPA 110 for generators); each rule cites the
//! article of decision 1289/QĐ-UBND it serves. Every figure is overridable per site,
//! room and device ([`apply_override`](super::apply_override)).
//!
//! Besides single-point conditions, a few rules read several points: `mains_failure`
//! (UPS on battery ∧ its generator not on load; the power topology in config names
//! the generator and switch, [`mains_failure`]), `supply_air_high` (supply air above
//! the unit's set point + 3 °C) and `not_at_rated` (a generator start not at rated
//! voltage and frequency within 10 s). The site's own composite rules are read from
//! config by [`super::site`].
//!
//! Choices the table leaves open, taken here:
//! - On-delay 60 s for every analog threshold (climate per the table; the others so a
//!   load step, a starter-motor crank or a sensor glitch does not page), except the
//!   UPS runtime: below 10 min every second counts, so it raises at once.
//! - On-delay 0 s for contacts and controller alarms (the device debounces them),
//!   except the door (open longer than 5 min) and the gateway clock (unsynchronised
//!   for more than 5 min), where the delay *is* the condition.
//! - Hysteresis: 0.5 °C and 2 % as the table says; 60 s of UPS runtime, 0.2 V of
//!   starter battery, 1 day of recordings.
//! - The starter-battery limit is for a 12 V system; a 24 V system overrides
//!   `battery_voltage_low.normal = 24.0`.
//! - A rule never judges a sample that is not good (see the engine): a UPS card that
//!   does not estimate its runtime (`unknown`) or sends an implausible one
//!   (`out_of_range`) raises no `runtime_low`. For that case `battery_low` watches the
//!   UPS's own battery status (UPS-MIB `upsBatteryStatus` low/depleted, APC
//!   `upsBasicBatteryStatus` batteryLow), serious at once like `runtime_low`.
//! - `comm_lost` (3 poll intervals) on every kind: serious for UPS, generator and fire
//!   panel, normal otherwise. It cites Art. 10.1 (monitoring runs continuously).

use std::sync::Arc;

use crate::model::{Kind, Level};

use super::spec::{Condition, Expr, RuleSpec, Term, Test};

/// Climate on-delay, seconds (THRESHOLDS.md: "60 s for climate").
const CLIMATE_DELAY_S: f64 = 60.0;
/// On-delay for other analog thresholds, seconds.
const ANALOG_DELAY_S: f64 = 60.0;
/// Temperature hysteresis, °C.
const HYST_C: f64 = 0.5;
/// Humidity and percentage hysteresis, %.
const HYST_PCT: f64 = 2.0;
/// Door open longer than this raises, seconds (5 min).
const DOOR_OPEN_S: f64 = 300.0;
/// Clock unsynchronised longer than this raises, seconds (5 min, Art. 16.6).
const CLOCK_UNSYNCED_S: f64 = 300.0;
/// Free disk space changes slowly and jumps briefly with log rotation and database
/// checkpoints: on-delay of `disk_free_low`, seconds (5 min).
const DISK_DELAY_S: f64 = 300.0;
/// Clock offset limit, ms, when `[clock] max_offset_ms` does not set one.
const CLOCK_OFFSET_MS: f64 = 1000.0;
/// Poll intervals of silence before communication is lost.
const COMM_LOST_INTERVALS: u32 = 3;
/// A UPS on battery is serious after this long unless its generator took the load
/// (THRESHOLDS.md "Power": "serious after 60 s if the generator has not taken the
/// load").
pub const MAINS_FAILURE_S: f64 = 60.0;
/// A UPS on battery longer than this is serious whatever the generator does (the
/// margin: a generator that runs but whose power the UPS does not accept, an ATS that
/// did not transfer). THRESHOLDS.md gives no figure; 5 min is 30 times the NFPA 110
/// Type 10 start and leaves the UPS's walk-in and an ATS's transfer delay room.
pub const ON_BATTERY_MARGIN_S: f64 = 300.0;
/// Battery charge below this while on battery is serious (THRESHOLDS.md "Power").
pub const CHARGE_LOW_ON_BATTERY_PCT: f64 = 50.0;
/// Time a generator start has to reach rated voltage and frequency (NFPA 110 Type 10,
/// THRESHOLDS.md "Power").
pub const START_TO_RATED_S: f64 = 10.0;
/// Rated generator phase voltage, V, unless a site sets `rated_voltage_v`: Vietnam's
/// low-voltage network is 220/380 V (a 230 V set is inside the tolerance).
pub const RATED_VOLTAGE_V: f64 = 220.0;
/// Rated frequency, Hz (Vietnam: 50 Hz).
pub const RATED_FREQUENCY_HZ: f64 = 50.0;
/// "At rated voltage": within ±10 % (ours; NFPA 110 leaves the band to the maker, and
/// ±10 % is the utilisation range IT power supplies are rated for).
pub const RATED_VOLTAGE_TOLERANCE_PCT: f64 = 10.0;
/// "At rated frequency": within ±5 % (ours; 47.5-52.5 Hz, the range a UPS accepts
/// as input by default on the common models).
pub const RATED_FREQUENCY_TOLERANCE_PCT: f64 = 5.0;
/// Supply air above the set point by more than this raises (THRESHOLDS.md "Cooling").
pub const SUPPLY_AIR_MARGIN_C: f64 = 3.0;
/// ... for this long (THRESHOLDS.md "Cooling": "for 5 min").
pub const SUPPLY_AIR_DELAY_S: f64 = 300.0;
/// A generator controller's named alarm levels (THRESHOLDS.md "Power": shutdown
/// alarms are serious; Art. 18.2: a warning is a normal incident).
pub const GENERATOR_ALARM_LEVELS: &[(&str, Level)] = &[
    ("warning", Level::Normal),
    ("shutdown", Level::Serious),
    ("electrical_trip", Level::Serious),
];

/// The `mains_failure` rule of a UPS: on battery for [`MAINS_FAILURE_S`] while its
/// generator has not taken the load. Without a generator (`generator = None`) the
/// generator can never take the load, so on battery alone is the condition. With a
/// generator: it has not taken the load while its `engine_running` is not true (a
/// silent generator counts as not running) or, with a transfer switch, while the
/// switch's `position` is not `generator` (unknown counts as not).
pub fn mains_failure(generator: Option<&Arc<str>>, ats: Option<&Arc<str>>) -> Arc<Expr> {
    let on_battery = Expr::Term(Term {
        device: None,
        point: "on_battery",
        test: Test::Is(true),
        if_unknown: None,
    });
    let Some(g) = generator else {
        return Arc::new(Expr::All(vec![on_battery]));
    };
    let mut not_on_load = vec![Expr::Term(Term {
        device: Some(g.clone()),
        point: "engine_running",
        test: Test::Is(false),
        if_unknown: Some(true),
    })];
    if let Some(a) = ats {
        not_on_load.push(Expr::Term(Term {
            device: Some(a.clone()),
            point: "position",
            test: Test::IsNotValue("generator"),
            if_unknown: Some(true),
        }));
    }
    Arc::new(Expr::All(vec![on_battery, Expr::Any(not_on_load)]))
}

fn spec(name: &str, point: &'static str, article: &'static str, condition: Condition) -> RuleSpec {
    RuleSpec {
        name: Arc::from(name),
        point,
        condition,
        article,
        enabled: true,
    }
}

fn above(normal: Option<f64>, serious: Option<f64>, hysteresis: f64, on_delay_s: f64) -> Condition {
    Condition::Above {
        normal,
        serious,
        hysteresis,
        on_delay_s,
    }
}

fn below(normal: Option<f64>, serious: Option<f64>, hysteresis: f64, on_delay_s: f64) -> Condition {
    Condition::Below {
        normal,
        serious,
        hysteresis,
        on_delay_s,
    }
}

fn flag(when: bool, level: Level, on_delay_s: f64) -> Condition {
    Condition::Flag {
        when,
        level,
        on_delay_s,
    }
}

fn comm_lost(level: Level) -> RuleSpec {
    spec(
        "comm_lost",
        "comm",
        "10.1",
        Condition::CommLost {
            intervals: COMM_LOST_INTERVALS,
            level,
        },
    )
}

/// The default rules of a device kind, in evaluation order. Names are snake_case and
/// unique within the kind; every kind has `comm_lost`.
pub fn defaults(kind: Kind) -> Vec<RuleSpec> {
    use Level::{Normal, Serious};
    let mut rules = match kind {
        // Art. 10.3 / 10.6: ASHRAE recommended (normal) and class A1 allowable (serious).
        Kind::Climate => vec![
            spec(
                "temperature_high",
                "temperature_c",
                "10.3",
                above(Some(27.0), Some(32.0), HYST_C, CLIMATE_DELAY_S),
            ),
            spec(
                "temperature_low",
                "temperature_c",
                "10.3",
                below(Some(18.0), Some(15.0), HYST_C, CLIMATE_DELAY_S),
            ),
            spec(
                "humidity_high",
                "humidity_pct",
                "10.3",
                above(Some(60.0), Some(80.0), HYST_PCT, CLIMATE_DELAY_S),
            ),
            spec(
                "humidity_low",
                "humidity_pct",
                "10.3",
                below(None, Some(8.0), HYST_PCT, CLIMATE_DELAY_S),
            ),
            spec(
                "dew_point_high",
                "dew_point_c",
                "10.3",
                above(Some(15.0), Some(17.0), HYST_C, CLIMATE_DELAY_S),
            ),
            spec(
                "dew_point_low",
                "dew_point_c",
                "10.3",
                below(Some(-9.0), Some(-12.0), HYST_C, CLIMATE_DELAY_S),
            ),
            // ASHRAE rate-of-change limits: 5 °C in any 15 min, 20 °C in an hour.
            spec(
                "temperature_rate_15min",
                "temperature_c",
                "10.3",
                Condition::RateOfChange {
                    max_delta: 5.0,
                    window_s: 900.0,
                    level: Normal,
                },
            ),
            spec(
                "temperature_rate_60min",
                "temperature_c",
                "10.3",
                Condition::RateOfChange {
                    max_delta: 20.0,
                    window_s: 3600.0,
                    level: Serious,
                },
            ),
        ],
        // Art. 10.5: UPS carries the load when mains fail.
        Kind::Ups => vec![
            spec("on_battery", "on_battery", "10.5", flag(true, Normal, 0.0)),
            // The power topology (`backed_by`) replaces the condition with the one
            // naming the UPS's generator and transfer switch (`mains_failure`).
            spec(
                "mains_failure",
                "on_battery",
                "10.5",
                Condition::Composite {
                    expr: mains_failure(None, None),
                    level: Serious,
                    on_delay_s: MAINS_FAILURE_S,
                    text: None,
                },
            ),
            spec(
                "on_battery_long",
                "on_battery",
                "10.5",
                flag(true, Serious, ON_BATTERY_MARGIN_S),
            ),
            // THRESHOLDS.md "Power": battery charge below 50 % while on battery →
            // serious (at once, like the runtime).
            spec(
                "charge_low_on_battery",
                "battery_charge_pct",
                "10.5",
                Condition::Composite {
                    expr: Arc::new(Expr::All(vec![
                        Expr::Term(Term {
                            device: None,
                            point: "on_battery",
                            test: Test::Is(true),
                            if_unknown: None,
                        }),
                        Expr::Term(Term {
                            device: None,
                            point: "battery_charge_pct",
                            test: Test::Below(CHARGE_LOW_ON_BATTERY_PCT),
                            if_unknown: None,
                        }),
                    ])),
                    level: Serious,
                    on_delay_s: 0.0,
                    text: None,
                },
            ),
            spec(
                "runtime_low",
                "runtime_remaining_s",
                "10.5",
                below(None, Some(600.0), 60.0, 0.0),
            ),
            spec(
                "battery_low",
                "battery_low",
                "10.5",
                flag(true, Serious, 0.0),
            ),
            spec(
                "load_high",
                "load_pct",
                "10.5",
                above(Some(80.0), Some(90.0), HYST_PCT, ANALOG_DELAY_S),
            ),
            spec("on_bypass", "on_bypass", "10.5", flag(true, Serious, 0.0)),
            spec("fault", "fault", "10.5", flag(true, Serious, 0.0)),
            spec(
                "battery_replace",
                "battery_replace",
                "10.5",
                flag(true, Normal, 0.0),
            ),
            spec(
                "battery_temperature_high",
                "battery_temperature_c",
                "10.5",
                above(Some(40.0), None, HYST_C, ANALOG_DELAY_S),
            ),
        ],
        // Art. 10.5: the standby generator takes the load (NFPA 110).
        Kind::Generator => vec![
            spec(
                "mode_not_auto",
                "mode",
                "10.5",
                Condition::EnumNot {
                    allowed: &["auto"],
                    level: Normal,
                    on_delay_s: 0.0,
                },
            ),
            spec(
                "shutdown_alarm",
                "shutdown_alarm",
                "10.5",
                flag(true, Serious, 0.0),
            ),
            spec(
                "fuel_low",
                "fuel_level_pct",
                "10.5",
                below(Some(50.0), Some(25.0), HYST_PCT, ANALOG_DELAY_S),
            ),
            spec(
                "battery_voltage_low",
                "battery_voltage_v",
                "10.5",
                below(Some(12.0), None, 0.2, ANALOG_DELAY_S),
            ),
            spec(
                "not_at_rated",
                "gen_frequency_hz",
                "10.5",
                Condition::StartToRated {
                    within_s: START_TO_RATED_S,
                    voltage_v: RATED_VOLTAGE_V,
                    frequency_hz: RATED_FREQUENCY_HZ,
                    voltage_tolerance_pct: RATED_VOLTAGE_TOLERANCE_PCT,
                    frequency_tolerance_pct: RATED_FREQUENCY_TOLERANCE_PCT,
                    level: Serious,
                },
            ),
        ]
        .into_iter()
        // The controller's own named alarms (DSE GenComm page 154), one rule each,
        // named after the point.
        .chain(
            crate::points::points_of(Kind::Generator)
                .iter()
                .filter(|p| p.ty == crate::points::PointType::Enum(crate::points::GENERATOR_ALARM))
                .map(|p| {
                    spec(
                        p.name,
                        p.name,
                        "10.5",
                        Condition::EnumLevel {
                            levels: GENERATOR_ALARM_LEVELS,
                            on_delay_s: 0.0,
                        },
                    )
                }),
        )
        .collect(),
        // Art. 10.6: air conditioning holds the room temperature.
        Kind::Cooling => vec![
            spec("unit_stopped", "unit_on", "10.6", flag(false, Serious, 0.0)),
            spec(
                "critical_alarm",
                "critical_alarm",
                "10.6",
                flag(true, Serious, 0.0),
            ),
            spec(
                "filter_dirty",
                "filter_dirty",
                "10.6",
                flag(true, Normal, 0.0),
            ),
            spec(
                "common_alarm",
                "common_alarm",
                "10.6",
                flag(true, Normal, 0.0),
            ),
            spec(
                "high_pressure",
                "high_pressure_alarm",
                "10.6",
                flag(true, Serious, 0.0),
            ),
            spec(
                "low_pressure",
                "low_pressure_alarm",
                "10.6",
                flag(true, Serious, 0.0),
            ),
            spec(
                "supply_air_high",
                "supply_air_temperature_c",
                "10.6",
                Condition::Composite {
                    expr: Arc::new(Expr::Term(Term {
                        device: None,
                        point: "supply_air_temperature_c",
                        test: Test::AbovePoint {
                            point: "setpoint_c",
                            by: SUPPLY_AIR_MARGIN_C,
                        },
                        if_unknown: None,
                    })),
                    level: Normal,
                    on_delay_s: SUPPLY_AIR_DELAY_S,
                    text: None,
                },
            ),
        ],
        // Art. 10.4: fire is always serious.
        Kind::FirePanel => vec![
            spec("fire_alarm", "fire_alarm", "10.4", flag(true, Serious, 0.0)),
            spec(
                "extinguishant_released",
                "extinguishant_released",
                "10.4",
                flag(true, Serious, 0.0),
            ),
            spec("fault", "fault", "10.4", flag(true, Normal, 0.0)),
            spec(
                "supervisory",
                "supervisory",
                "10.4",
                flag(true, Normal, 0.0),
            ),
        ],
        // Art. 10.3: no leaks or seepage.
        Kind::Leak => vec![spec(
            "leak_detected",
            "leak_detected",
            "10.3",
            flag(true, Serious, 0.0),
        )],
        // Art. 7.5: access to the DC is controlled.
        Kind::Door => vec![spec(
            "door_open",
            "door_open",
            "7.5",
            Condition::DoorAccess {
                level: Normal,
                outside_level: Normal,
                on_delay_s: DOOR_OPEN_S,
                windows: None,
            },
        )],
        // Art. 10.7: recordings kept at least 30 days.
        // A failed disk or a recorder not recording loses recordings (Art. 10.7);
        // THRESHOLDS.md gives only the 30 days, so like the 30 days these are normal.
        // A recorder that stops answering is `comm_lost` (normal).
        Kind::Nvr => vec![
            spec(
                "retention_low",
                "retention_days",
                "10.7",
                below(Some(30.0), None, 1.0, ANALOG_DELAY_S),
            ),
            spec("disk_fault", "disk_fault", "10.7", flag(true, Normal, 0.0)),
            // A minute: a recorder restarting its recording after a schedule change or a
            // camera reconnecting is not an alarm.
            spec(
                "not_recording",
                "recording",
                "10.7",
                flag(false, Normal, 60.0),
            ),
        ],
        // Art. 4.5: lightning protection is part of the auxiliary subsystem.
        Kind::Surge => vec![spec(
            "protector_tripped",
            "protector_tripped",
            "4.5",
            flag(true, Normal, 0.0),
        )],
        Kind::PowerMeter => vec![],
        // Art. 10.5: the switch must move the load to the generator.
        Kind::Ats => vec![
            spec(
                "transfer_failed",
                "transfer_failed",
                "10.5",
                flag(true, Serious, 0.0),
            ),
            spec("fault", "fault", "10.5", flag(true, Serious, 0.0)),
        ],
        // Art. 16.6: time synchronisation; Art. 10.1: monitoring runs without loss.
        Kind::Gateway => vec![
            spec(
                "clock_unsynced",
                "clock_synced",
                "16.6",
                flag(false, Normal, CLOCK_UNSYNCED_S),
            ),
            // Art. 16.6 names no figure; THRESHOLDS.md gives only "not synchronised for
            // more than 5 min". Decision (docs/SELFWATCH.md): an offset above 1 s
            // (`[clock] max_offset_ms`) raises at once — the check itself runs once a
            // minute and asks each server twice, so one answer is not a glitch; an
            // offset that large puts events in the wrong second against the other
            // gateways and the SOC. No NTP server answering raises at once too: nothing
            // can then say the clock is right.
            spec(
                "clock_behind",
                "clock_offset_ms",
                "16.6",
                above(Some(CLOCK_OFFSET_MS), None, CLOCK_OFFSET_MS / 10.0, 0.0),
            ),
            spec(
                "clock_ahead",
                "clock_offset_ms",
                "16.6",
                below(Some(-CLOCK_OFFSET_MS), None, CLOCK_OFFSET_MS / 10.0, 0.0),
            ),
            spec(
                "clock_unreachable",
                "clock_server_reachable",
                "16.6",
                flag(false, Normal, 0.0),
            ),
            spec(
                "buffer_high",
                "buffer_used_pct",
                "10.1",
                above(Some(80.0), None, HYST_PCT, 0.0),
            ),
            // The journal is never trimmed to make room (CONTRACTS.md "Journal"), so
            // its budget is watched instead, like the buffer's (THRESHOLDS.md "the
            // local buffer above 80 % of its budget"): normal above 80 %; serious once
            // it is full, i.e. at or past its budget (`journal_used_pct` passes 100 as
            // soon as the file grows beyond `max_bytes`). Art. 11.7: the audit log
            // keeps every change; Art. 13.1: the gateway's own state stays durable.
            spec(
                "journal_high",
                "journal_used_pct",
                "11.7",
                above(Some(80.0), None, HYST_PCT, 0.0),
            ),
            spec(
                "journal_full",
                "journal_used_pct",
                "13.1",
                above(None, Some(100.0), HYST_PCT, 0.0),
            ),
            // THRESHOLDS.md "The gateway and its links": a sink unreachable for more
            // than 5 min is a normal alarm; refused credentials are one at once.
            spec(
                "sink_unreachable",
                "sink_failing_s",
                "16.5",
                above(Some(300.0), None, 0.0, 0.0),
            ),
            spec(
                "sink_auth_failed",
                "sink_auth_failed",
                "16.5",
                flag(true, Normal, 0.0),
            ),
            // The SMS modem is how the on-call engineer is woken (Art. 10.1: monitoring
            // runs continuously; a page that cannot go out is a silent failure): no
            // SIM, not registered, no signal, +CMS ERROR or silence is serious at once.
            // Its points exist only when an `sms` sink is configured.
            spec("modem_fault", "modem_ok", "10.1", flag(false, Serious, 0.0)),
            // Sirens and beacons (docs/GPIO.md, "Outputs"): an output that cannot be
            // written or does not hold its state (read back) may leave a fire
            // unannounced in the room (Art. 10.4): serious at once. Its points exist
            // only when outputs are configured.
            spec(
                "output_fault",
                "outputs_ok",
                "10.4",
                flag(false, Serious, 0.0),
            ),
            // Art. 8.3a: maintenance follows an approved plan; a window left open past
            // its planned end hides alarms from people, so it is itself an alarm.
            // Art. 13.1: the durable state (queues, journal) must be kept; a state
            // directory that cannot be written loses it at the next restart.
            spec(
                "state_dir_failed",
                "state_dir_ok",
                "13.1",
                flag(false, Serious, 0.0),
            ),
            // Art. 13.1 again: a disk that fills (or fails) while the gateway runs; the
            // records wait in memory, bounded, and are lost if it stops before space
            // is back.
            spec(
                "disk_full",
                "state_writes_ok",
                "13.1",
                flag(false, Serious, 0.0),
            ),
            spec(
                "maintenance_overrun",
                "maintenance_overrun",
                "8.3a",
                flag(true, Normal, 0.0),
            ),
            // Art. 12.2a: default passwords are changed before use; Art. 11.1/16.3:
            // management only over a protected channel. An unsafe setting closes the
            // web console (src/web/auth.rs) and is itself a serious alarm.
            spec(
                "web_console_disabled",
                "web_console_ok",
                "12.2a",
                flag(false, Serious, 0.0),
            ),
            // The board itself (docs/SELFWATCH.md; THRESHOLDS.md has no figures for
            // it, these are ours). The durable state (Art. 13.1) needs disk: normal
            // below 20 % free, serious below 10 %, after 5 min. SD-card wear: above 4 GiB a day a
            // 32 GB card rated for about 1000 write cycles is used up within about 20
            // years before write amplification, within a few years with the
            // amplification small synchronous writes cause: worth a look (normal).
            // Memory: normal below 10 % available, serious below 5 % (the kernel's
            // OOM killer is close). CPU: a Raspberry Pi's firmware caps the clock from
            // 80 °C and throttles hard at 85 °C (Raspberry Pi documentation,
            // "Frequency management and thermal control"): normal / serious there.
            // Throttling and under-voltage as the firmware reports them: normal.
            spec(
                "disk_free_low",
                "disk_free_pct",
                "13.1",
                below(Some(20.0), Some(10.0), 1.0, DISK_DELAY_S),
            ),
            spec(
                "disk_wear_high",
                "disk_written_mib_per_day",
                "13.1",
                above(Some(4096.0), None, 0.0, 0.0),
            ),
            spec(
                "memory_low",
                "memory_available_pct",
                "10.1",
                below(Some(10.0), Some(5.0), 1.0, ANALOG_DELAY_S),
            ),
            spec(
                "cpu_temperature_high",
                "cpu_temperature_c",
                "10.1",
                above(Some(80.0), Some(85.0), 2.0, ANALOG_DELAY_S),
            ),
            spec(
                "cpu_throttled",
                "cpu_throttled",
                "10.1",
                flag(true, Normal, 0.0),
            ),
            spec(
                "undervoltage",
                "undervoltage",
                "10.1",
                flag(true, Normal, 0.0),
            ),
        ],
    };
    let comm_level = match kind {
        Kind::Ups | Kind::Generator | Kind::FirePanel => Serious,
        _ => Normal,
    };
    rules.push(comm_lost(comm_level));
    rules
}

/// The Article 10 profile as Markdown, one table per device kind: rule, point,
/// condition, level, hysteresis, on-delay, article. For `docs/` and `check-config`.
pub fn markdown() -> String {
    use std::fmt::Write;
    let mut out = String::from("# Default alarm rules (Article 10 profile)\n");
    let opt = |v: Option<f64>| v.map_or("—".to_string(), super::messages::num);
    for kind in Kind::ALL {
        let _ = writeln!(out, "\n## `{kind}`\n");
        let _ = writeln!(
            out,
            "| Rule | Point | Condition | Level | Hysteresis | On-delay | Art. |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for r in defaults(kind) {
            let (cond, level, hyst, delay) = match &r.condition {
                Condition::Above {
                    normal,
                    serious,
                    hysteresis,
                    on_delay_s,
                } => (
                    format!("above {} / {}", opt(*normal), opt(*serious)),
                    "normal / serious".to_string(),
                    super::messages::num(*hysteresis),
                    format!("{on_delay_s} s"),
                ),
                Condition::Below {
                    normal,
                    serious,
                    hysteresis,
                    on_delay_s,
                } => (
                    format!("below {} / {}", opt(*normal), opt(*serious)),
                    "normal / serious".to_string(),
                    super::messages::num(*hysteresis),
                    format!("{on_delay_s} s"),
                ),
                Condition::Flag {
                    when,
                    level,
                    on_delay_s,
                } => (
                    format!("is {when}"),
                    level.as_str().to_string(),
                    "—".into(),
                    format!("{on_delay_s} s"),
                ),
                Condition::EnumNot {
                    allowed,
                    level,
                    on_delay_s,
                } => (
                    format!("not {}", allowed.join(", ")),
                    level.as_str().to_string(),
                    "—".into(),
                    format!("{on_delay_s} s"),
                ),
                Condition::RateOfChange {
                    max_delta,
                    window_s,
                    level,
                } => (
                    format!(
                        "changes more than {} in {window_s} s",
                        super::messages::num(*max_delta)
                    ),
                    level.as_str().to_string(),
                    "—".into(),
                    "—".into(),
                ),
                Condition::DoorAccess {
                    level,
                    outside_level,
                    on_delay_s,
                    ..
                } => (
                    format!(
                        "open outside an access window ({}); inside one, open longer than the on-delay ({})",
                        outside_level.as_str(),
                        level.as_str()
                    ),
                    format!("{} / {}", outside_level.as_str(), level.as_str()),
                    "—".into(),
                    format!("{on_delay_s} s"),
                ),
                Condition::CommLost { intervals, level } => (
                    format!("no valid reading for {intervals} poll intervals"),
                    level.as_str().to_string(),
                    "—".into(),
                    "—".into(),
                ),
                Condition::EnumLevel { levels, on_delay_s } => (
                    levels
                        .iter()
                        .map(|(v, l)| format!("{v} → {}", l.as_str()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    "by value".to_string(),
                    "—".into(),
                    format!("{on_delay_s} s"),
                ),
                Condition::Composite {
                    expr,
                    level,
                    on_delay_s,
                    ..
                } => (
                    expr.describe(),
                    level.as_str().to_string(),
                    "—".into(),
                    format!("{on_delay_s} s"),
                ),
                Condition::StartToRated {
                    within_s,
                    voltage_v,
                    frequency_hz,
                    voltage_tolerance_pct,
                    frequency_tolerance_pct,
                    level,
                } => (
                    format!(
                        "a start (`engine_running` false → true) not at {} V ±{} % and {} Hz ±{} % (`gen_voltage_l1_v`, `gen_frequency_hz`) within the time",
                        super::messages::num(*voltage_v),
                        super::messages::num(*voltage_tolerance_pct),
                        super::messages::num(*frequency_hz),
                        super::messages::num(*frequency_tolerance_pct)
                    ),
                    level.as_str().to_string(),
                    "—".into(),
                    format!("{within_s} s"),
                ),
            };
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {cond} | {level} | {hyst} | {delay} | {} |",
                r.name, r.point, r.article
            );
        }
    }
    out.push_str(CONTACTS_MD);
    out.push_str(FAILURES_MD);
    out.push_str(&super::messages::markdown());
    out
}

/// The failures that matter (power topology, generator start, cooling, the site's
/// own composite rules): how the rules above work together; part of `docs/RULES.md`.
const FAILURES_MD: &str = r#"
## Mains failure and the power topology

A UPS names the generator and the transfer switch behind it:

```toml
[[devices]]
id = "ups1"
kind = "ups"
profile = "apc-smart-ups"
backed_by = { generator = "gen1", ats = "ats1" }   # both optional; `ats` needs `generator`
```

`check-config` refuses `backed_by` on another kind, an id no `[[devices]]` entry has, and
a device of the wrong kind (`site.toml:13:27: devices[0] (ups1) .backed_by.generator:
device "ats1" is a ats, not a generator`).

From THRESHOLDS.md "Power" (Art. 10.5): *UPS on battery (mains lost): normal at once;
serious after 60 s if the generator has not taken the load*, and *estimated runtime
below 10 min, or battery charge below 50 % while on battery: serious*. Per UPS:

| Rule | Condition | Level | Default |
|---|---|---|---|
| `on_battery` | `on_battery` is true | normal | at once |
| `mains_failure` | `on_battery` is true and the generator has not taken the load | serious | after 60 s (`on_delay_s`) |
| `on_battery_long` | `on_battery` is true, whatever the generator does (the margin) | serious | after 300 s (`on_delay_s`) |
| `runtime_low` | `runtime_remaining_s` below 600 | serious | at once |
| `charge_low_on_battery` | `on_battery` is true and `battery_charge_pct` below 50 | serious | at once |

"The generator has not taken the load" is: its `engine_running` is not true, or (with a
transfer switch) the switch's `position` is not `generator`. A generator or switch that
gives no good reading within its staleness horizon (3 poll intervals) counts as *not*
having taken the load: a silent generator must not hide a mains failure. While the
UPS's own `on_battery` is unknown (its card silent or the value not good) the alarm
keeps its state, raised or not, as any rule does on a bad sample; the UPS's
`comm_lost` (serious) tells that story. Without `backed_by` nothing can take the load, so
`mains_failure` is "on battery for 60 s". The alarm clears as soon as the generator
runs and the switch is on `generator` (or the UPS leaves the battery).

`on_battery_long` is the margin THRESHOLDS.md leaves open: 5 min (ours; 30 times the
NFPA 110 Type 10 start, room for an ATS's transfer delay and the UPS's walk-in). It
catches a generator that runs but whose power the UPS does not accept. A runtime the
UPS reports as unknown or implausible (quality not `good`) never raises `runtime_low`
(see the real-devices notes in PROFILES.md); `battery_low` watches the UPS's own flag.

Every figure is overridable like any other rule (`[rules.mains_failure] on_delay_s =
90`, per room, per device).

## Generator

- **The controller's own alarms** (DSE GenComm Page 154, PROFILES.md): one rule per
  named alarm, named like its point (`alarm_fail_to_start`, `alarm_low_oil_pressure`,
  ...); the controller's level decides ours: `warning` → normal, `shutdown` and
  `electrical_trip` → serious (THRESHOLDS.md: a shutdown alarm from the controller is
  serious; Art. 18.2: a warning is a normal incident). The alarm text names the alarm
  and shows the controller's state (`Alarm: Fail to start (now Shutdown)`). "Fail to
  start" is the controller's own judgement (its crank attempts), so it is this rule.
- **Low fuel**: `fuel_low`, below 50 % normal, below 25 % serious (THRESHOLDS.md).
- **Not at rated voltage and frequency within 10 s of a start** (`not_at_rated`, NFPA
  110 Type 10, THRESHOLDS.md): a start begins at the first poll that sees the start
  sequence (`engine_starting`: DSE "Pre-Start", the crank) or the engine running after
  both were seen false (a gateway that first sees the engine already running does not
  judge that start; a start sequence that ends without the engine running ends it).
  If no poll within 10 s of it shows `gen_voltage_l1_v` within ±10 % of 220 V and
  `gen_frequency_hz` within ±5 % of 50 Hz, a serious alarm is raised at the 10 s mark
  (the event, on `gen_frequency_hz`, carries the frequency seen and the rated one); it
  clears when the generator reaches rated values. Overrides: `on_delay_s` (the time
  allowed), `rated_voltage_v`, `rated_frequency_hz`:

  ```toml
  [devices.rules.not_at_rated]
  rated_voltage_v = 230
  ```

  The tolerances are ours (±10 % is the utilisation band IT power supplies are rated
  for, ±5 % the input range common UPSs accept); NFPA 110 leaves the band to the maker.
- **Fast polling**: a generator (kind `generator`, profile mapping `engine_running`)
  is polled every 250 ms from the poll that first sees its start sequence or its engine
  running until a poll shows it at rated values (±5 % of 50 or 60 Hz, ±10 % of
  220/230/240/110/120 V), for at most 30 s (`src/sources/modbus/fastpoll.rs`). The
  moment rated values are reached is then known within 250 ms. The start itself is
  seen at the generator's own poll interval: poll generators every 1 s (DSE modules
  answer that fast) so the start is known within a second. (The gateway cannot poll
  faster before anything has started without polling fast all the time.)

## Cooling

From THRESHOLDS.md "Cooling" (Art. 10.6): unit stopped (`unit_stopped`) or in a
critical alarm (`critical_alarm`; compressor high/low pressure also on their own:
`high_pressure`, `low_pressure`) → serious; filter (`filter_dirty`) → normal; any other
alarm of the unit (`common_alarm`) → normal (its critical causes are serious through
the rules above); supply air more than 3 °C above the unit's set point for 5 min
(`supply_air_high`, comparing `supply_air_temperature_c` with `setpoint_c` of the same
unit) → normal. The Liebert SNMP profile (`liebert-gp-env`) gives supply and return air
and the set point (LIEBERT-GP-ENVIRONMENTAL-MIB, PROFILES.md), so the rule works there.
The Liebert iCOM Modbus profile has no supply/return air register yet (its Table 8 rows
could not be read in a public copy, PROFILES.md: a documented gap): on such a unit
`supply_air_high` stays silent until a site maps them (a profile in `profiles_dir`).

## Transfer switch (`ats`)

`transfer_failed` (the switch reports a failed transfer) and `fault` (any alarm of the
switch: open/close failure, breaker trip) → serious at once (Art. 10.5: the switch must
move the load to the generator). `mains_available`, `generator_available` and
`position` are recorded (wall view, InfluxDB) and feed `mains_failure`; a mains loss
itself is alarmed once, by the UPS (`on_battery`), not again by the switch.
`comm_lost` of a switch is normal (THRESHOLDS.md names UPS, generator and fire panel as
the serious ones).

## Composite rules (a site's own)

A site writes its own rules over the canonical points of named devices, without code,
as `[[composite_rules]]` (the name `[[rules]]` is taken: `[rules.<name>]` tables are the
overrides). The alarm belongs to `device`; it is raised when every condition of `all`
and at least one of `any` (when given) hold continuously for `for_s` seconds, and
cleared as soon as they do not:

```toml
[[composite_rules]]
name = "ups_on_battery_generator_low_fuel"   # snake_case, unique among the device's rules
device = "ups1"
level = "serious"                            # normal | serious (Art. 18.2)
for_s = 30                                   # default 0
article = "10.5"                             # cited in the text; default 10.1
text_vi = "UPS chạy pin, máy phát sắp hết nhiên liệu"
text_en = "UPS on battery and the generator is low on fuel"   # default: text_vi
all = [
  { point = "on_battery", is = true },                          # the rule's device
  { device = "gen1", point = "fuel_level_pct", below = 30 },
]
any = [
  { device = "ats1", point = "position", is_not = "generator", if_unknown = true },
  { device = "gen1", point = "mode", is = "manual" },
]
```

One test per condition: `is` (`true`/`false` for a boolean, a value name for an
enumeration), `is_not` (enumerations), `above` / `below` (numbers, strict). A condition
whose point has no good reading within its device's staleness horizon counts as
`if_unknown` when given; without it the condition is unknown, and a rule whose outcome
depends on it (a false part decides `all`, a true part decides `any`) keeps its state:
no raise, no clear, as a single-point rule on a bad sample. Rules are evaluated on
every poll of any device and on the 1 s tick; acknowledging, shelving and maintenance
work as for any alarm. `check-config` names every problem with file:line:column: an
unknown device or point (listing the kind's points), a test that does not fit the
point's type, an enumeration value that does not exist (listing the values), more or
less than one test, no conditions, a bad level or `for_s`, a name the device already
has.
"#;

/// How the contact kinds' defaults above apply to dry contacts (GPIO, DI modules),
/// with the regulation digest they come from; part of `docs/RULES.md`.
const CONTACTS_MD: &str = "
## Dry contacts (fire panel, leak, door, surge, mains, generator)

Contacts read on GPIO or a DI module (`docs/GPIO.md`) give the same points as any
other device of their kind, so the rules above apply unchanged. From
`regulation/THRESHOLDS.md`, \"Fire, security, records (Art. 7.5, 10.4, 10.7, 16.6)\":

| Contact | Point | Rule and level | Why |
|---|---|---|---|
| Fire panel: fire alarm | `fire_alarm` | `fire_alarm`, serious at once (0 s) | Art. 10.4; THRESHOLDS.md: fire alarm or extinguishant released → serious |
| Fire panel: extinguishant released | `extinguishant_released` | serious at once | Art. 10.4, same row |
| Fire panel: fault / trouble | `fault` | normal at once | Art. 10.4; THRESHOLDS.md: fault, supervisory → normal |
| Fire panel: supervisory | `supervisory` | normal at once | same row |
| Leak rope / spot | `leak_detected` | serious at once | Art. 10.3; THRESHOLDS.md: any wet contact, 0 s delay |
| Door | `door_open` | normal at once outside an access window; normal after 5 min open inside one | Art. 7.5; THRESHOLDS.md: open outside an approved window, or open longer than 5 min |
| Surge / lightning protector | `protector_tripped` | normal at once | THRESHOLDS.md: protector tripped → normal |
| Mains present (ATS, phase relay) | `mains_present` (kind `power_meter`) | recorded, no default rule | a mains failure is alarmed by the UPS (`on_battery`) and generator rules |
| Generator running / mains available | `engine_running`, `mains_available` | recorded, no default rule | the generator rules watch `shutdown_alarm` and `mode` |

Every opening of a door is recorded (a reading to InfluxDB and the page). Approved
access windows (Art. 7.5) are planned in the site file (`[[access_windows]]`, the
schedule syntax of maintenance windows, with `except` for holidays; `docs/GPIO.md`).
A door opened **outside** every window covering it raises `door_open` at once, at
`outside_level` (normal by default, THRESHOLDS.md; `serious` per site, room or door),
and stays raised until the door closes, even if a window begins meanwhile; a door
opened **inside** a window raises only when open longer than `on_delay_s` (5 min), and
raises the outside alarm if still open when the window ends. A door no window covers
keeps only the long-open alarm (nothing says which of its openings are approved).
Maintenance windows apply on top, as for every rule. A fire panel that gives
no valid reading for 3 poll intervals is a serious `comm_lost`; a GPIO line that cannot
be read counts as no valid reading (`comm_error`).
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::{PointType, lookup};

    #[test]
    fn every_rule_watches_a_point_of_the_right_type() {
        for kind in Kind::ALL {
            for r in defaults(kind) {
                if let Condition::CommLost { .. } = r.condition {
                    assert_eq!(r.point, "comm");
                    continue;
                }
                let p = lookup(kind, r.point)
                    .unwrap_or_else(|| panic!("{kind}/{}: no point {}", r.name, r.point));
                match (&r.condition, p.ty) {
                    (Condition::Above { .. } | Condition::Below { .. }, PointType::Number) => {}
                    (Condition::RateOfChange { .. }, PointType::Number) => {}
                    (Condition::Flag { .. }, PointType::Bool) => {}
                    (Condition::DoorAccess { .. }, PointType::Bool) => {}
                    (Condition::EnumLevel { levels, .. }, PointType::Enum(names)) => {
                        for (a, _) in *levels {
                            assert!(names.contains(a), "{kind}/{}: {a}", r.name);
                        }
                    }
                    (Condition::StartToRated { .. }, PointType::Number) => {
                        for p in ["engine_running", "gen_voltage_l1_v", "gen_frequency_hz"] {
                            assert!(lookup(kind, p).is_some(), "{kind}/{}: {p}", r.name);
                        }
                    }
                    (Condition::Composite { expr, .. }, _) => {
                        for t in expr.terms() {
                            assert!(
                                t.device.is_none(),
                                "{kind}/{}: a default names a device",
                                r.name
                            );
                            assert!(
                                lookup(kind, t.point).is_some(),
                                "{kind}/{}: {}",
                                r.name,
                                t.point
                            );
                        }
                    }
                    (Condition::EnumNot { allowed, .. }, PointType::Enum(names)) => {
                        for a in *allowed {
                            assert!(
                                names.contains(a),
                                "{kind}/{}: {a} is not a value of {}",
                                r.name,
                                r.point
                            );
                        }
                    }
                    (c, t) => panic!("{kind}/{}: {c:?} on a {t:?} point", r.name),
                }
            }
        }
    }

    #[test]
    fn names_are_snake_case_unique_and_cite_an_article() {
        for kind in Kind::ALL {
            let rules = defaults(kind);
            for (i, r) in rules.iter().enumerate() {
                assert!(
                    !r.name.is_empty()
                        && r.name
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "{kind}: {:?} is not snake_case",
                    r.name
                );
                assert!(
                    rules[i + 1..].iter().all(|o| o.name != r.name),
                    "{kind}: {} twice",
                    r.name
                );
                assert!(
                    !r.article.is_empty() && r.article.contains('.'),
                    "{kind}/{}",
                    r.name
                );
                assert!(r.enabled);
            }
            assert_eq!(rules.last().map(|r| &*r.name), Some("comm_lost"));
        }
    }

    #[test]
    fn climate_figures_follow_thresholds_md() {
        let rules = defaults(Kind::Climate);
        let get = |n: &str| {
            rules
                .iter()
                .find(|r| &*r.name == n)
                .unwrap()
                .condition
                .clone()
        };
        assert_eq!(
            get("temperature_high"),
            Condition::Above {
                normal: Some(27.0),
                serious: Some(32.0),
                hysteresis: 0.5,
                on_delay_s: 60.0
            }
        );
        assert_eq!(
            get("temperature_low"),
            Condition::Below {
                normal: Some(18.0),
                serious: Some(15.0),
                hysteresis: 0.5,
                on_delay_s: 60.0
            }
        );
        assert_eq!(
            get("humidity_high"),
            Condition::Above {
                normal: Some(60.0),
                serious: Some(80.0),
                hysteresis: 2.0,
                on_delay_s: 60.0
            }
        );
        assert_eq!(
            get("humidity_low"),
            Condition::Below {
                normal: None,
                serious: Some(8.0),
                hysteresis: 2.0,
                on_delay_s: 60.0
            }
        );
        assert_eq!(
            get("dew_point_low"),
            Condition::Below {
                normal: Some(-9.0),
                serious: Some(-12.0),
                hysteresis: 0.5,
                on_delay_s: 60.0
            }
        );
        assert_eq!(
            get("comm_lost"),
            Condition::CommLost {
                intervals: 3,
                level: Level::Normal
            }
        );
    }

    #[test]
    fn markdown_lists_every_rule() {
        let md = markdown();
        for kind in Kind::ALL {
            for r in defaults(kind) {
                assert!(
                    md.contains(&format!("| `{}` | `{}` |", r.name, r.point)),
                    "{kind}/{}",
                    r.name
                );
            }
        }
        assert!(md.contains("| `temperature_high` | `temperature_c` | above 27 / 32 | normal / serious | 0.5 | 60 s | 10.3 |"));
    }

    #[test]
    fn comm_lost_is_serious_for_power_and_fire() {
        for kind in Kind::ALL {
            let level = defaults(kind)
                .into_iter()
                .find_map(|r| match r.condition {
                    Condition::CommLost { level, .. } => Some(level),
                    _ => None,
                })
                .unwrap();
            let serious = matches!(kind, Kind::Ups | Kind::Generator | Kind::FirePanel);
            assert_eq!(level == Level::Serious, serious, "{kind}");
        }
    }
}
