//! The "Article 10 profile": the alarm rules every device kind gets by default.
//!
//! Figures come from `regulation/THRESHOLDS.md` (ASHRAE TC 9.9 for climate, NUT /
//! apcupsd / UPS card defaults for power, NFPA 110 for generators); each rule cites the
//! article of decision 1289/QĐ-UBND it serves. Every figure is overridable per site,
//! room and device ([`apply_override`](super::apply_override)).
//!
//! Only single-point conditions are here. Composite ones (UPS on battery ∧ generator
//! not running, supply air above set point, generator not at rated voltage 10 s after
//! a start) need several points and come with the alarm-lifecycle work.
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

use super::spec::{Condition, RuleSpec};

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
        ],
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
            flag(true, Normal, DOOR_OPEN_S),
        )],
        // Art. 10.7: recordings kept at least 30 days.
        Kind::Nvr => vec![spec(
            "retention_low",
            "retention_days",
            "10.7",
            below(Some(30.0), None, 1.0, ANALOG_DELAY_S),
        )],
        // Art. 4.5: lightning protection is part of the auxiliary subsystem.
        Kind::Surge => vec![spec(
            "protector_tripped",
            "protector_tripped",
            "4.5",
            flag(true, Normal, 0.0),
        )],
        Kind::PowerMeter => vec![],
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
            spec(
                "maintenance_overrun",
                "maintenance_overrun",
                "8.3a",
                flag(true, Normal, 0.0),
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
            // THRESHOLDS.md "Generator test log" (NFPA 110 §8.4: monthly): a site with
            // test windows and no passed test of a generator for 31 days (Art. 10.5:
            // the generator must carry the load when mains fail).
            spec(
                "generator_test_missed",
                "generator_test_overdue",
                "10.5",
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
                Condition::CommLost { intervals, level } => (
                    format!("no valid reading for {intervals} poll intervals"),
                    level.as_str().to_string(),
                    "—".into(),
                    "—".into(),
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
    out.push_str(&super::messages::markdown());
    out.push_str(&crate::generator_runs::rules_markdown());
    out
}

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
| Door | `door_open` | normal after 5 min open | Art. 7.5; THRESHOLDS.md: open outside an approved window, or open longer than 5 min |
| Surge / lightning protector | `protector_tripped` | normal at once | THRESHOLDS.md: protector tripped → normal |
| Mains present (ATS, phase relay) | `mains_present` (kind `power_meter`) | recorded, no default rule | a mains failure is alarmed by the UPS (`on_battery`) and generator rules |
| Generator running / mains available | `engine_running`, `mains_available` | recorded, no default rule | the generator rules watch `shutdown_alarm` and `mode` |

Every opening of a door is recorded (a reading to InfluxDB and the page). Approved
access windows (Art. 7.5) are not wired to the door rule yet: the schedule syntax
exists (`src/schedule.rs`) but no rule consults it, so a door open longer than 5
minutes is a normal alarm at any hour, and an opening outside an access window is not
told apart. A fire panel that gives
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
