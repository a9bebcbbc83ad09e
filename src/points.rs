//! The canonical point vocabulary: every name a profile may map to, per device kind.
//!
//! This table is the single definition of the vocabulary. Profiles, rules, sinks, the
//! HTTP API and the dashboards speak only these names, so a UPS from any vendor ends up
//! as the same points. `docs/POINTS.md` is generated from this table
//! (`dc-gateway points`) and a test keeps the two equal.
//!
//! Vocabulary version: [`VOCABULARY_VERSION`]. Adding a point is a minor change;
//! renaming or removing one is a breaking change for dashboards and consumers.

use crate::model::Kind;

/// Version of the vocabulary below, bumped on every change.
pub const VOCABULARY_VERSION: &str = "1.6";

/// What kind of value a point carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointType {
    /// A number in the point's unit.
    Number,
    /// A boolean flag (`true` = the condition the name says is present).
    Bool,
    /// An enumeration: the canonical lowercase names; the InfluxDB integer code is the
    /// index in this list.
    Enum(&'static [&'static str]),
}

/// One canonical point.
#[derive(Debug, PartialEq, Eq)]
pub struct PointDef {
    /// Canonical name, unique within its kind (`battery_charge_pct`).
    pub name: &'static str,
    /// Unit symbol, empty for booleans and enumerations.
    pub unit: &'static str,
    /// Value type.
    pub ty: PointType,
    /// Display resolution of a number: how many decimals people and machine formats
    /// (API, MQTT) carry. 0 for booleans and enumerations.
    pub decimals: u8,
    /// One line for operators.
    pub doc: &'static str,
}

impl PointDef {
    /// Integer code of an enumeration value (its position in the list).
    pub fn enum_code(&self, value: &str) -> Option<i64> {
        match self.ty {
            PointType::Enum(names) => names.iter().position(|n| *n == value).map(|i| i as i64),
            _ => None,
        }
    }
}

/// A reference to a canonical point; cheap to copy and compare.
pub type PointId = &'static PointDef;

const fn num(name: &'static str, unit: &'static str, decimals: u8, doc: &'static str) -> PointDef {
    PointDef {
        name,
        unit,
        ty: PointType::Number,
        decimals,
        doc,
    }
}
const fn flag(name: &'static str, doc: &'static str) -> PointDef {
    PointDef {
        name,
        unit: "",
        ty: PointType::Bool,
        decimals: 0,
        doc,
    }
}
const fn enumeration(
    name: &'static str,
    names: &'static [&'static str],
    doc: &'static str,
) -> PointDef {
    PointDef {
        name,
        unit: "",
        ty: PointType::Enum(names),
        decimals: 0,
        doc,
    }
}

/// UPS output source, as UPS-MIB `upsOutputSource` and vendor maps reduce to it.
pub const UPS_OUTPUT_SOURCE: &[&str] = &[
    "unknown",
    "normal",
    "on_battery",
    "on_bypass",
    "off",
    "booster",
    "reducer",
];
/// UPS battery status, as UPS-MIB `upsBatteryStatus` and vendor maps reduce to it.
pub const UPS_BATTERY_STATUS: &[&str] = &["unknown", "normal", "low", "depleted", "fault"];
/// Generator controller mode.
pub const GENERATOR_MODE: &[&str] = &["unknown", "stop", "auto", "manual", "test"];
/// State of one of a generator controller's own named alarms (DSE GenComm page 154
/// alarm codes reduce to it): `warning` → normal, `shutdown` and `electrical_trip` →
/// serious; `indication` is an active condition that is not an alarm.
pub const GENERATOR_ALARM: &[&str] = &[
    "inactive",
    "warning",
    "shutdown",
    "electrical_trip",
    "disabled",
    "indication",
];
/// Where an automatic transfer switch connects the load.
pub const ATS_POSITION: &[&str] = &["unknown", "mains", "generator", "off", "transferring"];

static UPS: &[PointDef] = &[
    enumeration("output_source", UPS_OUTPUT_SOURCE, "What feeds the load"),
    flag("on_battery", "Mains lost, load carried by the battery"),
    flag("on_bypass", "Load fed through the bypass, not protected"),
    flag("fault", "UPS reports a fault"),
    flag("battery_replace", "Battery needs replacement"),
    num("battery_charge_pct", "%", 1, "Battery state of charge"),
    num(
        "runtime_remaining_s",
        "s",
        0,
        "Estimated runtime on battery at the present load",
    ),
    num("battery_voltage_v", "V", 1, "Battery voltage"),
    num("battery_temperature_c", "°C", 1, "Battery temperature"),
    num("load_pct", "%", 1, "Output load, highest phase"),
    num("input_voltage_v", "V", 1, "Input voltage (phase 1)"),
    num("input_frequency_hz", "Hz", 1, "Input frequency"),
    num("output_voltage_v", "V", 1, "Output voltage (phase 1)"),
    num("output_frequency_hz", "Hz", 1, "Output frequency"),
    num("output_power_kw", "kW", 2, "Output active power"),
    enumeration(
        "battery_status",
        UPS_BATTERY_STATUS,
        "Battery capacity status",
    ),
    flag(
        "battery_low",
        "Remaining runtime at or below the low-battery limit",
    ),
    flag("overload", "Output load exceeds the UPS capacity"),
    num(
        "alarms_present",
        "",
        0,
        "Number of active alarm conditions the UPS reports",
    ),
    num("input_voltage_l2_v", "V", 1, "Input voltage (phase 2)"),
    num("input_voltage_l3_v", "V", 1, "Input voltage (phase 3)"),
    num("output_voltage_l2_v", "V", 1, "Output voltage (phase 2)"),
    num("output_voltage_l3_v", "V", 1, "Output voltage (phase 3)"),
    num("load_l1_pct", "%", 1, "Output load, phase 1"),
    num("load_l2_pct", "%", 1, "Output load, phase 2"),
    num("load_l3_pct", "%", 1, "Output load, phase 3"),
];

static GENERATOR: &[PointDef] = &[
    enumeration(
        "mode",
        GENERATOR_MODE,
        "Controller mode; only auto starts on a mains failure",
    ),
    flag("engine_running", "Engine running"),
    flag(
        "shutdown_alarm",
        "A shutdown alarm is active (oil pressure, coolant, overspeed, fail to start)",
    ),
    flag("warning_alarm", "A warning alarm is active"),
    flag("mains_available", "Controller sees mains within limits"),
    num("mains_voltage_l1_v", "V", 1, "Mains voltage L1-N"),
    num("mains_voltage_l2_v", "V", 1, "Mains voltage L2-N"),
    num("mains_voltage_l3_v", "V", 1, "Mains voltage L3-N"),
    num("mains_frequency_hz", "Hz", 1, "Mains frequency"),
    num("gen_voltage_l1_v", "V", 1, "Generator voltage L1-N"),
    num("gen_voltage_l2_v", "V", 1, "Generator voltage L2-N"),
    num("gen_voltage_l3_v", "V", 1, "Generator voltage L3-N"),
    num("gen_frequency_hz", "Hz", 1, "Generator frequency"),
    num("load_kw", "kW", 1, "Generator active power"),
    num(
        "load_pct",
        "%",
        1,
        "Generator load, percent of nameplate kW",
    ),
    num(
        "coolant_temperature_c",
        "°C",
        1,
        "Engine coolant temperature",
    ),
    num("oil_pressure_kpa", "kPa", 0, "Engine oil pressure"),
    num("fuel_level_pct", "%", 1, "Fuel tank level"),
    num("battery_voltage_v", "V", 1, "Starter battery voltage"),
    num("engine_hours_h", "h", 1, "Engine run hours"),
    flag(
        "engine_starting",
        "Start sequence under way (pre-start, cranking), engine not yet running",
    ),
    enumeration(
        "alarm_emergency_stop",
        GENERATOR_ALARM,
        "Controller alarm: Emergency stop",
    ),
    enumeration(
        "alarm_low_oil_pressure",
        GENERATOR_ALARM,
        "Controller alarm: Low oil pressure",
    ),
    enumeration(
        "alarm_high_coolant_temperature",
        GENERATOR_ALARM,
        "Controller alarm: High coolant temperature",
    ),
    enumeration(
        "alarm_low_coolant_temperature",
        GENERATOR_ALARM,
        "Controller alarm: Low coolant temperature",
    ),
    enumeration(
        "alarm_under_speed",
        GENERATOR_ALARM,
        "Controller alarm: Under speed",
    ),
    enumeration(
        "alarm_over_speed",
        GENERATOR_ALARM,
        "Controller alarm: Over speed",
    ),
    enumeration(
        "alarm_under_frequency",
        GENERATOR_ALARM,
        "Controller alarm: Generator under frequency",
    ),
    enumeration(
        "alarm_over_frequency",
        GENERATOR_ALARM,
        "Controller alarm: Generator over frequency",
    ),
    enumeration(
        "alarm_low_voltage",
        GENERATOR_ALARM,
        "Controller alarm: Generator low voltage",
    ),
    enumeration(
        "alarm_high_voltage",
        GENERATOR_ALARM,
        "Controller alarm: Generator high voltage",
    ),
    enumeration(
        "alarm_battery_low_voltage",
        GENERATOR_ALARM,
        "Controller alarm: Battery low voltage",
    ),
    enumeration(
        "alarm_battery_high_voltage",
        GENERATOR_ALARM,
        "Controller alarm: Battery high voltage",
    ),
    enumeration(
        "alarm_charge_alternator_failure",
        GENERATOR_ALARM,
        "Controller alarm: Charge alternator failure",
    ),
    enumeration(
        "alarm_fail_to_start",
        GENERATOR_ALARM,
        "Controller alarm: Fail to start",
    ),
    enumeration(
        "alarm_fail_to_stop",
        GENERATOR_ALARM,
        "Controller alarm: Fail to stop",
    ),
    enumeration(
        "alarm_gen_fail_to_close",
        GENERATOR_ALARM,
        "Controller alarm: Generator fail to close",
    ),
    enumeration(
        "alarm_mains_fail_to_close",
        GENERATOR_ALARM,
        "Controller alarm: Mains fail to close",
    ),
    enumeration(
        "alarm_oil_pressure_sender_fault",
        GENERATOR_ALARM,
        "Controller alarm: Oil pressure sender fault",
    ),
    enumeration(
        "alarm_loss_of_magnetic_pickup",
        GENERATOR_ALARM,
        "Controller alarm: Loss of magnetic pick-up",
    ),
    enumeration(
        "alarm_magnetic_pickup_open_circuit",
        GENERATOR_ALARM,
        "Controller alarm: Magnetic pick-up open circuit",
    ),
    enumeration(
        "alarm_high_current",
        GENERATOR_ALARM,
        "Controller alarm: Generator high current",
    ),
    enumeration(
        "alarm_calibration_lost",
        GENERATOR_ALARM,
        "Controller alarm: Calibration lost",
    ),
    enumeration(
        "alarm_low_fuel_level",
        GENERATOR_ALARM,
        "Controller alarm: Low fuel level",
    ),
    enumeration(
        "alarm_can_ecu_warning",
        GENERATOR_ALARM,
        "Controller alarm: CAN ECU warning",
    ),
    enumeration(
        "alarm_can_ecu_shutdown",
        GENERATOR_ALARM,
        "Controller alarm: CAN ECU shutdown",
    ),
    enumeration(
        "alarm_can_ecu_data_fail",
        GENERATOR_ALARM,
        "Controller alarm: CAN ECU data fail",
    ),
    enumeration(
        "alarm_low_oil_level_switch",
        GENERATOR_ALARM,
        "Controller alarm: Low oil level switch",
    ),
    enumeration(
        "alarm_high_temperature_switch",
        GENERATOR_ALARM,
        "Controller alarm: High temperature switch",
    ),
];

static ATS: &[PointDef] = &[
    enumeration(
        "position",
        ATS_POSITION,
        "Which source the switch connects the load to",
    ),
    flag(
        "mains_available",
        "Mains (normal source) within limits as the switch sees it",
    ),
    flag(
        "generator_available",
        "Generator (emergency source) within limits as the switch sees it",
    ),
    flag(
        "transfer_failed",
        "The switch failed to transfer (open or close failure)",
    ),
    flag(
        "fault",
        "The switch reports an alarm (breaker trip, external alarm)",
    ),
];

static COOLING: &[PointDef] = &[
    flag("unit_on", "Unit running"),
    flag("common_alarm", "Any alarm active on the unit"),
    flag(
        "critical_alarm",
        "Critical alarm: compressor pressure, fan failure",
    ),
    flag("filter_dirty", "Air filter needs service"),
    num(
        "supply_air_temperature_c",
        "°C",
        1,
        "Supply (discharge) air temperature",
    ),
    num(
        "return_air_temperature_c",
        "°C",
        1,
        "Return air temperature",
    ),
    num("setpoint_c", "°C", 1, "Temperature set point"),
    num("humidity_pct", "%", 1, "Return air relative humidity"),
    flag(
        "high_pressure_alarm",
        "Compressor high (head) pressure alarm",
    ),
    flag(
        "low_pressure_alarm",
        "Compressor low (suction) pressure alarm",
    ),
];

static CLIMATE: &[PointDef] = &[
    num(
        "temperature_c",
        "°C",
        1,
        "Air temperature (rack inlet or room)",
    ),
    num("humidity_pct", "%", 1, "Relative humidity"),
    num(
        "dew_point_c",
        "°C",
        1,
        "Dew point; derived from temperature and humidity when not reported",
    ),
];

static FIRE_PANEL: &[PointDef] = &[
    flag("fire_alarm", "Fire alarm"),
    flag("extinguishant_released", "Extinguishing agent released"),
    flag("fault", "Panel fault / trouble"),
    flag("supervisory", "Supervisory condition"),
];

static LEAK: &[PointDef] = &[flag(
    "leak_detected",
    "Water detected on the sensing rope or spot",
)];

static DOOR: &[PointDef] = &[flag("door_open", "Door open")];

static NVR: &[PointDef] = &[
    flag("recording", "Recorder is recording"),
    flag("disk_fault", "A recording disk has failed"),
    num("retention_days", "d", 0, "Days of recordings kept"),
    num("disk_count", "", 0, "Recording disks the recorder reports"),
    num(
        "disk_free_gb",
        "GB",
        1,
        "Free space on the recording disks, summed (a recorder that overwrites its oldest recordings runs near 0)",
    ),
];

static SURGE: &[PointDef] = &[flag(
    "protector_tripped",
    "Surge / lightning protector tripped",
)];

static POWER_METER: &[PointDef] = &[
    flag("mains_present", "Voltage present on all phases"),
    num("voltage_l1_v", "V", 1, "Voltage L1-N"),
    num("voltage_l2_v", "V", 1, "Voltage L2-N"),
    num("voltage_l3_v", "V", 1, "Voltage L3-N"),
    num("current_l1_a", "A", 2, "Current L1"),
    num("current_l2_a", "A", 2, "Current L2"),
    num("current_l3_a", "A", 2, "Current L3"),
    num("frequency_hz", "Hz", 2, "Frequency"),
    num("active_power_kw", "kW", 2, "Total active power"),
    num("power_factor", "", 2, "Total power factor"),
    num("energy_kwh", "kWh", 1, "Imported active energy"),
];

static GATEWAY: &[PointDef] = &[
    flag("clock_synced", "System clock synchronised (Art. 16.6)"),
    num("uptime_s", "s", 0, "Gateway process uptime"),
    num(
        "buffer_used_pct",
        "%",
        1,
        "Highest sink buffer fill, percent of its budget",
    ),
    num(
        "journal_used_pct",
        "%",
        1,
        "Journal size, percent of its budget (above 100 once past it: every entry is kept)",
    ),
    num(
        "sink_failing_s",
        "s",
        0,
        "Longest time a sink (InfluxDB, MQTT) has been failing to deliver",
    ),
    flag(
        "sink_auth_failed",
        "A sink's far end refuses the configured credentials",
    ),
    flag(
        "modem_ok",
        "SMS modem usable: answers, SIM ready, registered, has signal, sends succeed",
    ),
    flag("modem_responding", "SMS modem answers AT commands"),
    flag("modem_sim_ready", "SMS modem's SIM is present and unlocked"),
    flag(
        "modem_registered",
        "SMS modem registered on a mobile network",
    ),
    num(
        "modem_signal_dbm",
        "dBm",
        0,
        "SMS modem received signal strength (AT+CSQ)",
    ),
    flag(
        "state_dir_ok",
        "The state directory (queues, journal) can be written; false: the gateway runs on a volatile one",
    ),
    flag(
        "state_writes_ok",
        "The queues and the journal commit to disk; false: the disk is full or failing and records are held in memory",
    ),
    flag(
        "maintenance_overrun",
        "A maintenance window started by command is still open after its planned end",
    ),
    flag(
        "outputs_ok",
        "Every siren and beacon output holds the state written (read back)",
    ),
    num(
        "output_failures",
        "",
        0,
        "Failed siren and beacon output writes and read-backs since the start",
    ),
    flag(
        "web_console_ok",
        "The web console is open; false: closed for an unsafe setting (default admin password, no TLS where required, unreadable accounts)",
    ),
    num(
        "clock_offset_ms",
        "ms",
        1,
        "NTP server's time minus the gateway's (positive: the gateway's clock is behind)",
    ),
    num(
        "clock_stratum",
        "",
        0,
        "Stratum of the NTP server the clock was last checked against",
    ),
    flag(
        "clock_server_reachable",
        "A configured NTP server gave a usable answer at the last check",
    ),
    num(
        "memory_available_pct",
        "%",
        1,
        "Memory available for new work (MemAvailable), percent of the total",
    ),
    num(
        "memory_available_mib",
        "MiB",
        0,
        "Memory available for new work (MemAvailable)",
    ),
    num(
        "disk_free_pct",
        "%",
        1,
        "Free space on the state directory's filesystem, percent of its size",
    ),
    num(
        "disk_free_mib",
        "MiB",
        0,
        "Free space on the state directory's filesystem",
    ),
    num(
        "disk_written_mib_per_day",
        "MiB/d",
        1,
        "Bytes written to the state directory's device (SD-card wear), average per day",
    ),
    num("cpu_temperature_c", "°C", 1, "CPU temperature"),
    flag(
        "cpu_throttled",
        "The board's firmware throttles the CPU now (Raspberry Pi: frequency capped, throttled or soft temperature limit)",
    ),
    flag(
        "undervoltage",
        "The board's firmware reports under-voltage now (Raspberry Pi)",
    ),
];

/// The points of one device kind.
pub fn points_of(kind: Kind) -> &'static [PointDef] {
    match kind {
        Kind::Ups => UPS,
        Kind::Generator => GENERATOR,
        Kind::Cooling => COOLING,
        Kind::Climate => CLIMATE,
        Kind::FirePanel => FIRE_PANEL,
        Kind::Leak => LEAK,
        Kind::Door => DOOR,
        Kind::Nvr => NVR,
        Kind::Surge => SURGE,
        Kind::PowerMeter => POWER_METER,
        Kind::Gateway => GATEWAY,
        Kind::Ats => ATS,
    }
}

/// Look a canonical point up by kind and name.
pub fn lookup(kind: Kind, name: &str) -> Option<PointId> {
    points_of(kind).iter().find(|p| p.name == name)
}

/// The vocabulary as Markdown: the content of `docs/POINTS.md`.
pub fn markdown() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "# Canonical points\n");
    let _ = writeln!(
        out,
        "Vocabulary version {VOCABULARY_VERSION}. Generated by `dc-gateway points`; a test keeps this file equal to the code.\n\n\
         Every profile maps vendor registers or OIDs to these names, so rules, dashboards and\n\
         consumers work for any vendor. In InfluxDB, booleans are boolean fields and\n\
         enumerations are integer fields whose code is the position in the list below\n\
         (0-based); MQTT and the HTTP API carry the lowercase name.\n\n\
         Resolution is the step a number is shown and sent with (wall view, alarm texts,\n\
         HTTP API, MQTT): `0.1` means one decimal, rounded half away from zero. Texts for\n\
         people write at most that many decimals and drop trailing zeros (`27 °C`,\n\
         `28,5 °C`), group digits by three from four digits on, and use the language's\n\
         separators: Vietnamese `1.234,5`, English `1,234.5`. Machine formats (API JSON\n\
         numbers, MQTT payloads) use `.` and no digit groups, and carry no binary noise\n\
         (`499.9`, never `499.90000000000003`). InfluxDB fields keep the value as decoded.\n"
    );
    for kind in Kind::ALL {
        let _ = writeln!(out, "## `{}`\n", kind.as_str());
        let _ = writeln!(out, "| Point | Type | Unit | Resolution | Meaning |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for p in points_of(kind) {
            let ty = match p.ty {
                PointType::Number => "number".to_string(),
                PointType::Bool => "boolean".to_string(),
                PointType::Enum(names) => {
                    let codes: Vec<String> = names
                        .iter()
                        .enumerate()
                        .map(|(i, n)| format!("{i}={n}"))
                        .collect();
                    format!("enum ({})", codes.join(", "))
                }
            };
            let resolution = match p.ty {
                PointType::Number => step(p.decimals),
                PointType::Bool | PointType::Enum(_) => "—".to_string(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                p.name, ty, p.unit, resolution, p.doc
            );
        }
        let _ = writeln!(out);
    }
    out
}

/// The step of a resolution as written in the docs: `1`, `0.1`, `0.01`.
fn step(decimals: u8) -> String {
    match decimals {
        0 => "1".to_string(),
        d => format!("0.{}1", "0".repeat(usize::from(d) - 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_within_each_kind() {
        for kind in Kind::ALL {
            let pts = points_of(kind);
            for (i, a) in pts.iter().enumerate() {
                assert!(
                    pts[i + 1..].iter().all(|b| b.name != a.name),
                    "{} repeated in {}",
                    a.name,
                    kind.as_str()
                );
            }
        }
    }

    #[test]
    fn resolution_is_given_for_numbers_only() {
        assert_eq!(lookup(Kind::Climate, "temperature_c").unwrap().decimals, 1);
        assert_eq!(
            lookup(Kind::PowerMeter, "power_factor").unwrap().decimals,
            2
        );
        assert_eq!(
            lookup(Kind::Ups, "runtime_remaining_s").unwrap().decimals,
            0
        );
        for kind in Kind::ALL {
            for p in points_of(kind) {
                if p.ty != PointType::Number {
                    assert_eq!(p.decimals, 0, "{kind}/{}", p.name);
                }
                // More than 3 decimals would print binary noise for the values
                // devices give (0.001 steps at most).
                assert!(p.decimals <= 3, "{kind}/{}", p.name);
            }
        }
        assert_eq!(step(0), "1");
        assert_eq!(step(1), "0.1");
        assert_eq!(step(2), "0.01");
    }

    #[test]
    fn enum_code_is_position() {
        let p = lookup(Kind::Ups, "output_source").unwrap();
        assert_eq!(p.enum_code("on_battery"), Some(2));
        assert_eq!(p.enum_code("nonsense"), None);
    }

    #[test]
    fn docs_rules_md_matches_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RULES.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == crate::rules::defaults::markdown(),
            "docs/RULES.md is out of date: run `cargo run -- rules > docs/RULES.md`"
        );
    }

    #[test]
    fn docs_points_md_matches_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/POINTS.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == markdown(),
            "docs/POINTS.md is out of date: run `cargo run -- points > docs/POINTS.md`"
        );
    }
}
