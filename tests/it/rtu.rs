//! Modbus RTU buses against real peers: a `socat` pty pair is the RS-485 bus, the
//! gateway's bus task on one end (`modbus::spawn_rtu`, exactly as the runtime starts
//! it), on the other either the pymodbus RTU server (`peers::ModbusServer::start_rtu`)
//! or, for faults no real peer produces (late replies, garbage, bad CRC), a small
//! fault-injection slave written here that speaks raw RTU frames.
//!
//! Register fixtures are hand-written from the vendor documents, as listed in
//! `docs/PROFILES.md` (row ids D1…, A1…, L1…, S1… are the ids of that file's test
//! vector tables, each citing its document, page and register); the XY-MD02 values
//! are the examples of its manual ("MODBUS commands": 0xFF33 = -20.5 °C, 0x0222 =
//! 54.6 %RH). Ground truth for what the bus carried is the server's own log.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dc_gateway::model::{AlarmState, DeviceMeta, Kind, Language, Poll, Quality, Value};
use dc_gateway::rules::{self, Engine};
use dc_gateway::sources::modbus::rtu::crc16;
use dc_gateway::sources::modbus::{self, BusDevice, RtuBus, profile};
use tokio::sync::mpsc;

use crate::modbus::{
    DEADLINE, all_good, all_quality, approx, number, poll_where, qualities, xy_md02,
};
use crate::peers::{ModbusServer, ModbusSpec, PtyPair, UnitSpec};

/// XY-MD02 manual, read temperature example: 0xFF33 = -205 → -20.5 °C.
const TEMP_MINUS_20_5: u16 = 0xFF33;
/// XY-MD02 manual, read humidity example: 0x0222 = 546 → 54.6 %RH.
const HUM_54_6: u16 = 0x0222;

fn shipped(file: &str) -> Arc<profile::Profile> {
    let (name, text) = profile::shipped()
        .into_iter()
        .find(|(f, _)| *f == file)
        .unwrap_or_else(|| panic!("{file} is not shipped"));
    Arc::new(profile::parse(text, name).unwrap_or_else(|e| panic!("{e}")))
}

fn device(
    id: &str,
    kind: Kind,
    unit_id: u8,
    profile: Arc<profile::Profile>,
    interval_ms: u64,
    timeout_ms: u64,
) -> BusDevice {
    BusDevice {
        meta: Arc::new(DeviceMeta {
            id: id.into(),
            name: id.into(),
            label: None,
            room: "it".into(),
            kind,
        }),
        unit_id,
        poll_interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(timeout_ms),
        profile,
    }
}

/// An XY-MD02 climate sensor at `unit_id`.
fn xy(id: &str, unit_id: u8, interval_ms: u64, timeout_ms: u64) -> BusDevice {
    device(
        id,
        Kind::Climate,
        unit_id,
        xy_md02(),
        interval_ms,
        timeout_ms,
    )
}

fn bus(id: &str, pty: &PtyPair, devices: Vec<BusDevice>) -> RtuBus {
    pty.bus(id, devices)
}

/// A counter's value in the metrics text (0 when absent).
fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = dc_gateway::metrics::get().encode();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---- Shipped profiles on one bus ------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Want {
    Num(f64),
    Bool(bool),
    Enum(&'static str),
    Quality(Quality),
}

#[derive(Debug, Clone, Copy)]
enum Tab {
    Hr,
    Ir,
    Di,
}

/// One hand-written vector: `raw` at `addr` of `unit` makes `point` read `want`.
#[derive(Debug, Clone, Copy)]
struct Vector {
    id: &'static str,
    unit: u8,
    tab: Tab,
    addr: u16,
    raw: &'static [u16],
    point: &'static str,
    want: Want,
}

const fn v(
    id: &'static str,
    unit: u8,
    tab: Tab,
    addr: u16,
    raw: &'static [u16],
    point: &'static str,
    want: Want,
) -> Vector {
    Vector {
        id,
        unit,
        tab,
        addr,
        raw,
        point,
        want,
    }
}

use Tab::{Di, Hr, Ir};
use Want::{Bool, Enum, Num};
const UNKNOWN: Want = Want::Quality(Quality::Unknown);
const OUT_OF_RANGE: Want = Want::Quality(Quality::OutOfRange);

const XY: u8 = 1;
const DSE: u8 = 2;
const APC: u8 = 3;
const LIEBERT: u8 = 4;
const SDM: u8 = 5;
const ATS: u8 = 6;

/// docs/PROFILES.md vectors, served in phases: the first phase is the server's initial
/// table, later phases change registers while the bus runs.
#[rustfmt::skip]
const PHASES: &[&[Vector]] = &[
    &[
        v("XY temperature", XY, Ir, 1, &[TEMP_MINUS_20_5], "temperature_c", Num(-20.5)),
        v("XY humidity", XY, Ir, 2, &[HUM_54_6], "humidity_pct", Num(54.6)),
        v("D1", DSE, Hr, 1024, &[0x00C8], "oil_pressure_kpa", Num(200.0)),
        v("D3", DSE, Hr, 1025, &[0x0055], "coolant_temperature_c", Num(85.0)),
        v("D6", DSE, Hr, 1029, &[0x0089], "battery_voltage_v", Num(13.7)),
        v("D7", DSE, Hr, 1032, &[0x0000, 0x08FC], "gen_voltage_l1_v", Num(230.0)),
        v("D9", DSE, Hr, 1536, &[0x0001, 0x86A0], "load_kw", Num(100.0)),
        v("D11", DSE, Hr, 1558, &[0x02F3], "load_pct", Num(75.5)),
        v("D12", DSE, Hr, 1798, &[0x0002, 0xB818], "engine_hours_h", Num(49.5)),
        v("D13", DSE, Hr, 772, &[0x0001], "mode", Enum("auto")),
        v("D15", DSE, Hr, 1408, &[0x0003], "engine_running", Bool(true)),
        v("A1", APC, Hr, 0, &[0x0000, 0x0004], "on_battery", Bool(true)),
        v("A1", APC, Hr, 0, &[0x0000, 0x0004], "on_bypass", Bool(false)),
        v("A1", APC, Hr, 0, &[0x0000, 0x0004], "fault", Bool(false)),
        v("A14", APC, Hr, 0, &[0x0000, 0x0004], "output_source", Enum("on_battery")),
        v("A4", APC, Hr, 22, &[0x0004], "battery_replace", Bool(true)),
        v("A5", APC, Hr, 128, &[0x0000, 0x0E10], "runtime_remaining_s", Num(3600.0)),
        v("A6", APC, Hr, 130, &[0xC800], "battery_charge_pct", Num(100.0)),
        v("A8", APC, Hr, 131, &[0x0360], "battery_voltage_v", Num(27.0)),
        v("A9", APC, Hr, 135, &[0x0C80], "battery_temperature_c", Num(25.0)),
        v("A11", APC, Hr, 136, &[0x1900], "load_pct", Num(25.0)),
        v("A12", APC, Hr, 142, &[0x3980], "output_voltage_v", Num(230.0)),
        v("A12", APC, Hr, 144, &[0x1900], "output_frequency_hz", Num(50.0)),
        v("A13", APC, Hr, 151, &[0xFFFF], "input_voltage_v", UNKNOWN),
        v("L1", LIEBERT, Ir, 99, &[0x0001], "unit_on", Bool(true)),
        v("L4", LIEBERT, Ir, 101, &[0x0010], "common_alarm", Bool(true)),
        v("L6", LIEBERT, Ir, 22, &[0x00DC], "setpoint_c", Num(22.0)),
        v("L7", LIEBERT, Ir, 129, &[0x01C7], "humidity_pct", Num(45.5)),
        v("L10", LIEBERT, Di, 33, &[0, 0, 0, 0, 0, 0], "critical_alarm", Bool(false)),
        v("S1", SDM, Ir, 0, &[0x4366, 0x0000], "voltage_l1_v", Num(230.0)),
        v("S2", SDM, Ir, 2, &[0x4367, 0x8000], "voltage_l2_v", Num(231.5)),
        v("S3", SDM, Ir, 6, &[0x40A0, 0x0000], "current_l1_a", Num(5.0)),
        v("S4", SDM, Ir, 52, &[0x44BB, 0x8000], "active_power_kw", Num(1.5)),
        v("S5", SDM, Ir, 62, &[0xBF7A, 0xE148], "power_factor", Num(-0.98)),
        v("S6", SDM, Ir, 70, &[0x4248, 0x0000], "frequency_hz", Num(50.0)),
        v("S7", SDM, Ir, 72, &[0x4640, 0xE600], "energy_kwh", Num(12345.5)),
        v("D20", DSE, Hr, 39425, &[0x1111], "alarm_emergency_stop", Enum("inactive")),
        v("D20", DSE, Hr, 39425, &[0x1111], "alarm_low_coolant_temperature", Enum("inactive")),
        v("D21", DSE, Hr, 39428, &[0x1111], "alarm_fail_to_start", Enum("inactive")),
        v("D22", DSE, Hr, 39430, &[0x1111], "alarm_low_fuel_level", Enum("inactive")),
        v("D23", DSE, Hr, 39431, &[0x1111], "alarm_can_ecu_shutdown", Enum("inactive")),
        v("T1", ATS, Hr, 2000, &[0x0000], "mains_available", Bool(true)),
        v("T2", ATS, Hr, 2001, &[0x0001], "generator_available", Bool(false)),
        v("T3", ATS, Hr, 2002, &[0x0000], "position", Enum("mains")),
        v("T3", ATS, Hr, 2002, &[0x0000], "transfer_failed", Bool(false)),
        v("T4", ATS, Hr, 2007, &[0x0000], "fault", Bool(false)),
    ],
    &[
        v("D2", DSE, Hr, 1024, &[0xFFFC], "oil_pressure_kpa", UNKNOWN),
        v("D4", DSE, Hr, 1025, &[0xFFF6], "coolant_temperature_c", Num(-10.0)),
        v("D8", DSE, Hr, 1032, &[0xFFFF, 0xFFFF], "gen_voltage_l1_v", UNKNOWN),
        v("D10", DSE, Hr, 1536, &[0xFFFF, 0xFC18], "load_kw", Num(-1.0)),
        v("D14", DSE, Hr, 772, &[0xFFFF], "mode", UNKNOWN),
        v("D16", DSE, Hr, 1408, &[0x0000], "engine_running", Bool(false)),
        v("A3", APC, Hr, 0, &[0x0000, 0x0028], "on_bypass", Bool(true)),
        v("A3", APC, Hr, 0, &[0x0000, 0x0028], "fault", Bool(true)),
        v("A3", APC, Hr, 0, &[0x0000, 0x0028], "on_battery", Bool(false)),
        v("A16", APC, Hr, 0, &[0x0000, 0x0028], "output_source", Enum("on_bypass")),
        v("A7", APC, Hr, 130, &[0x6400], "battery_charge_pct", Num(50.0)),
        v("A10", APC, Hr, 135, &[0xFF00], "battery_temperature_c", Num(-2.0)),
        v("L2", LIEBERT, Ir, 99, &[0x0002], "unit_on", Bool(false)),
        v("L5", LIEBERT, Ir, 101, &[0x0008], "common_alarm", Bool(false)),
        v("L11", LIEBERT, Di, 33, &[0, 1, 0, 0, 0, 0], "critical_alarm", Bool(true)),
        v("L11", LIEBERT, Di, 33, &[0, 1, 0, 0, 0, 0], "high_pressure_alarm", Bool(false)),
        v("D24", DSE, Hr, 39428, &[0x1311], "alarm_fail_to_start", Enum("shutdown")),
        v("D25", DSE, Hr, 39425, &[0x2111], "alarm_emergency_stop", Enum("warning")),
        v("T5", ATS, Hr, 2002, &[0x0002], "position", Enum("generator")),
        v("T6", ATS, Hr, 2000, &[0x0001], "mains_available", Bool(false)),
    ],
    &[
        v("D5", DSE, Hr, 1025, &[0x7FFE], "coolant_temperature_c", UNKNOWN),
        v("D17", DSE, Hr, 1408, &[0x000F], "engine_running", UNKNOWN),
        v("A2", APC, Hr, 0, &[0x0000, 0x0002], "on_battery", Bool(false)),
        v("A15", APC, Hr, 0, &[0x0000, 0x0002], "output_source", Enum("normal")),
        v("L3", LIEBERT, Ir, 99, &[0x0000], "unit_on", Bool(false)),
        v("L8", LIEBERT, Ir, 101, &[0x0020], "common_alarm", Bool(true)),
        v("L12", LIEBERT, Di, 33, &[0, 0, 1, 0, 0, 0], "critical_alarm", Bool(false)),
        v("D26", DSE, Hr, 39428, &[0x1411], "alarm_fail_to_start", Enum("electrical_trip")),
        v("D27", DSE, Hr, 39430, &[0x1121], "alarm_low_fuel_level", Enum("warning")),
        v("T7", ATS, Hr, 2002, &[0x0004], "transfer_failed", Bool(true)),
        v("T7", ATS, Hr, 2002, &[0x0004], "position", Enum("unknown")),
        v("T8", ATS, Hr, 2007, &[0x0400], "fault", Bool(true)),
    ],
    &[
        v("D18", DSE, Hr, 1408, &[0x0004], "engine_running", Bool(true)),
        v("D19", DSE, Hr, 772, &[0x0000], "mode", Enum("stop")),
        v("A17", APC, Hr, 0, &[0x0000, 0x0010], "output_source", Enum("off")),
        v("L9", LIEBERT, Ir, 99, &[0x0003], "unit_on", OUT_OF_RANGE),
        v("L13", LIEBERT, Di, 33, &[0, 0, 0, 0, 0, 1], "critical_alarm", Bool(true)),
        v("L14", LIEBERT, Di, 33, &[0, 0, 0, 1, 0, 1], "high_pressure_alarm", Bool(true)),
        v("L14", LIEBERT, Di, 33, &[0, 0, 0, 1, 0, 1], "low_pressure_alarm", Bool(false)),
        v("L14", LIEBERT, Di, 33, &[0, 0, 0, 1, 0, 1], "critical_alarm", Bool(true)),
        v("D28", DSE, Hr, 39425, &[0xF111], "alarm_emergency_stop", UNKNOWN),
        v("D29", DSE, Hr, 39428, &[0x1A11], "alarm_fail_to_start", Enum("indication")),
        v("T9", ATS, Hr, 2000, &[0x0009], "mains_available", OUT_OF_RANGE),
    ],
];

/// What is wrong with `poll` for the vectors of its unit (empty: all as documented).
fn mismatches(poll: &Poll, vectors: &[&Vector]) -> Vec<String> {
    let mut out = Vec::new();
    for vec in vectors {
        let Some(s) = poll.samples.iter().find(|s| s.point.name == vec.point) else {
            out.push(format!("{}: point {} not in the poll", vec.id, vec.point));
            continue;
        };
        let ok = match (vec.want, &s.value) {
            (Want::Num(w), Some(Value::Number(x))) => {
                s.quality == Quality::Good && (x - w).abs() < 1e-6
            }
            (Want::Bool(w), Some(Value::Bool(x))) => s.quality == Quality::Good && *x == w,
            (Want::Enum(w), Some(Value::Enum(x))) => s.quality == Quality::Good && *x == w,
            (Want::Quality(q), None) => s.quality == q,
            _ => false,
        };
        if !ok {
            out.push(format!(
                "{} {}: want {:?}, got {:?} ({})",
                vec.id,
                vec.point,
                vec.want,
                s.value,
                s.quality.as_str()
            ));
        }
    }
    out
}

fn unit_spec(vectors: impl Iterator<Item = Vector>) -> UnitSpec {
    let mut u = UnitSpec::new();
    for vec in vectors {
        u = match vec.tab {
            Hr => u.holding(vec.addr, vec.raw),
            Ir => u.input(vec.addr, vec.raw),
            Di => u.discrete(
                vec.addr,
                &vec.raw.iter().map(|b| *b != 0).collect::<Vec<_>>(),
            ),
        };
    }
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_profiles_on_one_bus_decode_the_vendor_vectors() {
    let pty = PtyPair::start();
    let mut spec = ModbusSpec::new();
    for unit in [XY, DSE, APC, LIEBERT, SDM, ATS] {
        spec = spec.unit(
            unit,
            unit_spec(PHASES[0].iter().copied().filter(|v| v.unit == unit)),
        );
    }
    let server = ModbusServer::start_rtu(spec, &pty.device);
    let devices = vec![
        xy("rtu-xy", XY, 300, 200),
        device(
            "rtu-dse",
            Kind::Generator,
            DSE,
            shipped("dse-gencomm.toml"),
            300,
            200,
        ),
        device(
            "rtu-apc",
            Kind::Ups,
            APC,
            shipped("apc-smart-ups.toml"),
            300,
            200,
        ),
        device(
            "rtu-liebert",
            Kind::Cooling,
            LIEBERT,
            shipped("liebert-icom.toml"),
            300,
            200,
        ),
        device(
            "rtu-sdm",
            Kind::PowerMeter,
            SDM,
            shipped("sdm630.toml"),
            300,
            200,
        ),
        device(
            "rtu-ats",
            Kind::Ats,
            ATS,
            shipped("abb-ats022.toml"),
            300,
            200,
        ),
    ];
    let unit_of: BTreeMap<String, u8> = devices
        .iter()
        .map(|d| (d.meta.id.to_string(), d.unit_id))
        .collect();
    // The Article 10 default rules of each kind run on the same polls, as in the
    // runtime: the flags the vectors set must raise their alarms.
    let mut engine = Engine::new("it".into(), Language::En, 1);
    for d in &devices {
        engine.add_device(
            d.meta.clone(),
            d.poll_interval,
            rules::defaults(d.meta.kind),
        );
    }
    let mut raised: BTreeSet<(String, String)> = BTreeSet::new();
    let (tx, mut rx) = mpsc::channel(256);
    let task = modbus::spawn_rtu(bus("it-rtu-profiles", &pty, devices), tx);

    for (phase, vectors) in PHASES.iter().enumerate() {
        if phase > 0 {
            for vec in *vectors {
                match vec.tab {
                    Hr => server.set_holding(vec.unit, vec.addr, vec.raw),
                    Ir => server.set_input(vec.unit, vec.addr, vec.raw),
                    Di => server.set_discrete(
                        vec.unit,
                        vec.addr,
                        &vec.raw.iter().map(|b| *b != 0).collect::<Vec<_>>(),
                    ),
                }
            }
        }
        // Every unit with vectors in this phase must produce a poll that matches all of
        // them (earlier polls may predate the change).
        let mut pending: BTreeMap<u8, Vec<String>> = vectors
            .iter()
            .map(|v| (v.unit, vec!["no poll yet".to_string()]))
            .collect();
        let start = Instant::now();
        while pending.values().any(|m| !m.is_empty()) && start.elapsed() < DEADLINE {
            let Ok(Some(poll)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
            else {
                continue;
            };
            for ev in engine.on_poll(&poll) {
                if ev.state == AlarmState::Raised {
                    raised.insert((ev.device.to_string(), ev.rule.to_string()));
                }
            }
            let unit = unit_of[poll.device.id.as_ref()];
            if let Some(m) = pending.get_mut(&unit)
                && !m.is_empty()
            {
                let mine: Vec<&Vector> = vectors.iter().filter(|v| v.unit == unit).collect();
                *m = mismatches(&poll, &mine);
            }
        }
        let left: Vec<String> = pending.into_values().flatten().collect();
        assert!(
            left.is_empty(),
            "phase {phase}: not as documented after {DEADLINE:?}:\n  {}",
            left.join("\n  ")
        );
    }
    task.abort();
    // A1, A4, A3, A3, L2, L11, D19.
    for (device, rule) in [
        ("rtu-apc", "on_battery"),
        ("rtu-apc", "battery_replace"),
        ("rtu-apc", "on_bypass"),
        ("rtu-apc", "fault"),
        ("rtu-liebert", "unit_stopped"),
        ("rtu-liebert", "critical_alarm"),
        ("rtu-dse", "mode_not_auto"),
        ("rtu-dse", "alarm_fail_to_start"),
        ("rtu-dse", "alarm_emergency_stop"),
        ("rtu-dse", "alarm_low_fuel_level"),
        ("rtu-ats", "transfer_failed"),
        ("rtu-ats", "fault"),
        ("rtu-liebert", "high_pressure"),
    ] {
        assert!(
            raised.contains(&(device.to_string(), rule.to_string())),
            "{device}/{rule} not raised; raised: {raised:?}"
        );
    }

    // Ground truth: every request the bus carried went to one of the five units, and
    // each device's reads were merged (the DSE map needs 7 requests, not 18).
    let reqs = server.requests();
    assert!(reqs.iter().all(|r| (1..=6).contains(&r.unit)), "{reqs:?}");
    // 7 for pages 3-7 and one for the named alarms of page 154.
    let dse_per_poll = shipped("dse-gencomm.toml").plan().reads.len();
    assert_eq!(dse_per_poll, 8);
    assert_eq!(shipped("abb-ats022.toml").plan().reads.len(), 1);
    let counts = server.counts();
    assert_eq!(counts.exceptions_for(DSE), 0, "{counts:?}");
}

// ---- One dead slave --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dead_slave_does_not_stall_the_bus() {
    let pty = PtyPair::start();
    let server = ModbusServer::start_rtu(
        ModbusSpec::new()
            .unit(1, UnitSpec::new().input(1, &[TEMP_MINUS_20_5, HUM_54_6]))
            .unit(2, UnitSpec::new().input(1, &[TEMP_MINUS_20_5, HUM_54_6])),
        &pty.device,
    );
    let (interval_ms, timeout_ms) = (500u64, 200u64);
    // The dead slave first in config order: it must still not delay the others.
    let devices = vec![
        xy("rtu-dead", 3, interval_ms, timeout_ms),
        xy("rtu-a", 1, interval_ms, timeout_ms),
        xy("rtu-b", 2, interval_ms, timeout_ms),
    ];
    let (tx, mut rx) = mpsc::channel(256);
    let task = modbus::spawn_rtu(bus("it-rtu-dead", &pty, devices), tx);
    poll_where(&mut rx, "a good poll of rtu-a", |p| {
        p.device.id.as_ref() == "rtu-a" && all_good(p)
    })
    .await;
    poll_where(&mut rx, "a timeout of rtu-dead", |p| {
        p.device.id.as_ref() == "rtu-dead" && all_quality(Quality::Timeout)(p)
    })
    .await;
    let dead_before = server.request_count(3);

    let window = Duration::from_secs(8);
    let start = Instant::now();
    let mut ts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    while start.elapsed() < window {
        let Ok(Some(p)) =
            tokio::time::timeout(window.saturating_sub(start.elapsed()), rx.recv()).await
        else {
            break;
        };
        match p.device.id.as_ref() {
            "rtu-dead" => assert!(
                all_quality(Quality::Timeout)(&p),
                "dead slave: {:?}",
                qualities(&p)
            ),
            id => assert!(all_good(&p), "{id} degraded: {:?}", qualities(&p)),
        }
        ts.entry(p.device.id.to_string())
            .or_default()
            .push(p.ts.millis());
    }
    task.abort();
    let dead_tries = server.request_count(3) - dead_before;

    let expected = (window.as_millis() as u64 / interval_ms) as usize; // 16
    for id in ["rtu-a", "rtu-b", "rtu-dead"] {
        let n = ts.get(id).map_or(0, Vec::len);
        assert!(
            n + 1 >= expected && n <= expected + 1,
            "{id}: {n} polls in {window:?}, expected {expected}"
        );
    }
    // Healthy devices keep their period within 10 %.
    for id in ["rtu-a", "rtu-b"] {
        let periods: Vec<i64> = ts[id].windows(2).map(|w| w[1] - w[0]).collect();
        let lo = (interval_ms as f64 * 0.9) as i64;
        let hi = (interval_ms as f64 * 1.1) as i64;
        assert!(
            periods.iter().all(|p| (lo..=hi).contains(p)),
            "{id} periods (ms): {periods:?}"
        );
    }
    // The bus cycle grows by at most the dead slave's timeout: within a tick, the dead
    // slave's poll ends at most `timeout` (plus scheduling slack) after the last
    // healthy one, which the dead slave never delays.
    let mut growth = Vec::new();
    for d in &ts["rtu-dead"] {
        let last_healthy = ["rtu-a", "rtu-b"]
            .iter()
            .flat_map(|id| ts[*id].iter().copied())
            .filter(|t| t <= d && d - t < interval_ms as i64 / 2)
            .max();
        if let Some(h) = last_healthy {
            growth.push(d - h);
        }
    }
    let max_growth = growth.iter().copied().max().unwrap_or(0);
    assert!(
        max_growth <= timeout_ms as i64 + 25,
        "cycle growth per tick (ms): {growth:?}"
    );
    assert!(
        growth.iter().any(|g| *g >= timeout_ms as i64 - 5),
        "the dead slave was never tried in the window: {growth:?}"
    );
    // Backed off: tried on some ticks, not on every one (the server saw the requests).
    assert!(
        dead_tries >= 2 && (dead_tries as usize) < expected / 2,
        "{dead_tries} requests to the dead slave in {expected} ticks"
    );
    assert_eq!(
        server.counts().responses.get(&(3, 4)),
        None,
        "the absent slave never answered"
    );
}

// ---- A fault-injection slave ------------------------------------------------------------

/// A reply the fault slave sent.
#[derive(Debug, Clone, Copy)]
struct Served {
    unit: u8,
    /// Request number for this unit (1, 2, ...), which is also the value served.
    n: u16,
    delay_ms: u64,
}

/// What to do to the next reply.
#[derive(Debug, Clone)]
enum Next {
    BadCrc,
    GarbageBefore(Vec<u8>),
    StrayBefore,
}

type Behaviour = dyn Fn(u8, u16) -> Option<(u16, Duration)> + Send + Sync;

/// A request for a unit's worker.
struct Job {
    fc: u8,
    count: u16,
    n: u16,
    value: u16,
    delay: Duration,
}

/// An RTU slave on the device end of a pty: reads request frames, answers FC 3/4 with
/// every register set to the value `behaviour(unit, n)` returns, after its delay (per
/// unit in order, units independent, as separate devices on a bus are); `None` =
/// silent. Replies carry a correct CRC unless [`Next::BadCrc`] says otherwise.
struct FaultSlave {
    writer: Arc<Mutex<std::fs::File>>,
    next: Arc<Mutex<VecDeque<Next>>>,
    log: Arc<Mutex<Vec<Served>>>,
}

impl FaultSlave {
    fn start(pty: &PtyPair, behaviour: Arc<Behaviour>) -> FaultSlave {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&pty.device)
            .expect("open the device end of the pty");
        let writer = Arc::new(Mutex::new(file.try_clone().expect("clone the pty")));
        let next: Arc<Mutex<VecDeque<Next>>> = Arc::default();
        let log: Arc<Mutex<Vec<Served>>> = Arc::default();
        let counters: Arc<[AtomicU32; 256]> = Arc::new(std::array::from_fn(|_| AtomicU32::new(0)));
        let (w, nx, lg) = (writer.clone(), next.clone(), log.clone());
        std::thread::spawn(move || {
            let mut reader = file;
            let mut buf: Vec<u8> = Vec::new();
            let mut workers: BTreeMap<u8, std::sync::mpsc::Sender<Job>> = BTreeMap::new();
            let mut chunk = [0u8; 64];
            loop {
                let n = match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => return, // unplugged
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while buf.len() >= 8 {
                    let crc = u16::from_le_bytes([buf[6], buf[7]]);
                    if crc != crc16(&buf[..6]) || !(1..=4).contains(&buf[1]) {
                        buf.remove(0);
                        continue;
                    }
                    let (unit, fc) = (buf[0], buf[1]);
                    let count = u16::from_be_bytes([buf[4], buf[5]]);
                    buf.drain(..8);
                    let n = counters[usize::from(unit)].fetch_add(1, Ordering::SeqCst) as u16 + 1;
                    let Some((value, delay)) = behaviour(unit, n) else {
                        continue;
                    };
                    let tx = workers.entry(unit).or_insert_with(|| {
                        // One worker per unit: a device answers its requests in order.
                        let (tx, rx) = std::sync::mpsc::channel::<Job>();
                        let (w, nx, lg) = (w.clone(), nx.clone(), lg.clone());
                        std::thread::spawn(move || {
                            for job in rx {
                                Self::reply(&w, &nx, &lg, unit, job);
                            }
                        });
                        tx
                    });
                    let _ = tx.send(Job {
                        fc,
                        count,
                        n,
                        value,
                        delay,
                    });
                }
            }
        });
        FaultSlave { writer, next, log }
    }

    fn reply(
        w: &Mutex<std::fs::File>,
        next: &Mutex<VecDeque<Next>>,
        log: &Mutex<Vec<Served>>,
        unit: u8,
        job: Job,
    ) {
        let Job {
            fc,
            count,
            n,
            value,
            delay,
        } = job;
        std::thread::sleep(delay);
        let mut frame = vec![unit, fc, (count * 2) as u8];
        for _ in 0..count {
            frame.extend_from_slice(&value.to_be_bytes());
        }
        let mut crc = crc16(&frame).to_le_bytes();
        let mut out = Vec::new();
        match next.lock().unwrap().pop_front() {
            Some(Next::BadCrc) => crc[0] ^= 0x5A,
            Some(Next::GarbageBefore(g)) => out.extend_from_slice(&g),
            Some(Next::StrayBefore) => {
                // A complete, valid reply from unit 9, as a late answer would be.
                let mut stray = vec![9, fc, (count * 2) as u8];
                stray.extend(std::iter::repeat_n([0x12u8, 0x34], usize::from(count)).flatten());
                let c = crc16(&stray).to_le_bytes();
                stray.extend_from_slice(&c);
                out.extend_from_slice(&stray);
            }
            None => {}
        }
        frame.extend_from_slice(&crc);
        out.extend_from_slice(&frame);
        let _ = w.lock().unwrap().write_all(&out);
        log.lock().unwrap().push(Served {
            unit,
            n,
            delay_ms: delay.as_millis() as u64,
        });
    }

    /// Write raw bytes on the bus now.
    fn write_raw(&self, bytes: &[u8]) {
        self.writer
            .lock()
            .unwrap()
            .write_all(bytes)
            .expect("write to the pty");
    }

    fn next(&self, what: Next) {
        self.next.lock().unwrap().push_back(what);
    }

    fn served(&self) -> Vec<Served> {
        self.log.lock().unwrap().clone()
    }
}

fn temperature_tenths(p: &Poll) -> Option<i64> {
    number(p, "temperature_c").map(|t| (t * 10.0).round() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_replies_are_never_taken_for_the_next_request() {
    // Unit 1 serves its request number n in every register (temperature = n × 0.1 °C)
    // and answers odd requests after the timeout: n ≡ 1 (mod 4) 150 ms late, so the
    // reply lands while unit 2's exchange runs (unit 2 answers after 60 ms); n ≡ 3
    // (mod 4) 480 ms late, so it lands in unit 1's own next exchange, ahead of the
    // reply to that next request. Unit 2 serves 222 (22.2 °C).
    let (interval_ms, timeout_ms) = (400u64, 100u64);
    let pty = PtyPair::start();
    let slave = FaultSlave::start(
        &pty,
        Arc::new(|unit, n| match unit {
            1 if n % 4 == 1 => Some((n, Duration::from_millis(150))),
            1 if n % 4 == 3 => Some((n, Duration::from_millis(480))),
            1 => Some((n, Duration::ZERO)),
            2 => Some((222, Duration::from_millis(60))),
            _ => None,
        }),
    );
    let devices = vec![
        xy("rtu-late", 1, interval_ms, timeout_ms),
        xy("rtu-steady", 2, interval_ms, timeout_ms),
    ];
    let (tx, mut rx) = mpsc::channel(256);
    let task = modbus::spawn_rtu(bus("it-rtu-late", &pty, devices), tx);

    let window = Duration::from_secs(12);
    let start = Instant::now();
    let (mut late_good, mut late_bad, mut steady_good, mut steady_bad) = (Vec::new(), 0, 0, 0);
    while start.elapsed() < window {
        let Ok(Some(p)) =
            tokio::time::timeout(window.saturating_sub(start.elapsed()), rx.recv()).await
        else {
            break;
        };
        let good = all_good(&p);
        match (p.device.id.as_ref(), good) {
            ("rtu-late", true) => late_good.push(temperature_tenths(&p).unwrap()),
            ("rtu-late", false) => late_bad += 1,
            (_, true) => {
                assert!(
                    approx(number(&p, "temperature_c"), 22.2),
                    "unit 2 read another unit's reply: {p:?}"
                );
                steady_good += 1;
            }
            (_, false) => steady_bad += 1,
        }
    }
    task.abort();
    let served = slave.served();
    let on_time: Vec<i64> = served
        .iter()
        .filter(|s| s.unit == 1 && s.delay_ms == 0)
        .map(|s| i64::from(s.n))
        .collect();
    let late_150 = served
        .iter()
        .filter(|s| s.unit == 1 && s.delay_ms == 150)
        .count();
    let late_480 = served
        .iter()
        .filter(|s| s.unit == 1 && s.delay_ms == 480)
        .count();
    assert!(
        late_150 >= 3 && late_480 >= 3,
        "the slave must have answered late both ways: {served:?}"
    );
    // Every reading of unit 1 is the reply to a request the slave answered in time: a
    // late reply (odd n) is never attributed to a later request.
    assert!(
        late_good.len() >= 8,
        "too few good readings to judge: {late_good:?} ({late_bad} failed)"
    );
    let wrong: Vec<&i64> = late_good
        .iter()
        .filter(|n| *n % 2 == 1 || !on_time.contains(n))
        .collect();
    assert!(
        wrong.is_empty(),
        "readings taken from late replies: {wrong:?}; all: {late_good:?}"
    );
    // The readings are fresh: each on-time request number shows up, once.
    let mut sorted = late_good.clone();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        late_good.len(),
        "a reply was used twice: {late_good:?}"
    );
    // Unit 2 is not disturbed by unit 1's late frames.
    assert!(
        steady_bad == 0 && steady_good >= 25,
        "unit 2: {steady_good} good, {steady_bad} failed"
    );
    assert!(
        metric(
            "dcgw_line_bad_frames_total",
            &[("line", "it-rtu-late"), ("reason", "stray")]
        ) >= 2.0
    );
    assert!(
        metric(
            "dcgw_line_bad_frames_total",
            &[("line", "it-rtu-late"), ("reason", "late")]
        ) >= 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_bad_crc_frames_are_counted_and_survived() {
    let pty = PtyPair::start();
    // Unit 1 answers at once with the XY-MD02 manual's 30.5 °C example (0x0131).
    let slave = FaultSlave::start(
        &pty,
        Arc::new(|unit, _| (unit == 1).then_some((0x0131, Duration::ZERO))),
    );
    let (tx, mut rx) = mpsc::channel(256);
    let line = "it-rtu-noise";
    let task = modbus::spawn_rtu(bus(line, &pty, vec![xy("rtu-noise", 1, 200, 150)]), tx);
    let good = |p: &Poll| all_good(p) && approx(number(p, "temperature_c"), 30.5);
    poll_where(&mut rx, "30.5 °C", good).await;
    let discarded = |l: &str| metric("dcgw_line_discarded_bytes_total", &[("line", l)]);
    let bad = |reason: &str| {
        metric(
            "dcgw_line_bad_frames_total",
            &[("line", line), ("reason", reason)],
        )
    };

    // Noise while the bus is idle: thrown away before the next request, counted.
    let before = discarded(line);
    let noise: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(73) ^ 0xA5).collect();
    slave.write_raw(&noise);
    let p = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let p = if good(&p) {
        p
    } else {
        tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .unwrap()
            .unwrap()
    };
    assert!(good(&p), "the request after the noise: {:?}", qualities(&p));
    assert!(
        discarded(line) >= before + 37.0,
        "discarded {} → {}",
        before,
        discarded(line)
    );

    // A reply with a bad CRC: that read fails (comm_error), is counted, the next succeeds.
    slave.next(Next::BadCrc);
    let p = poll_where(&mut rx, "the bad-CRC reply", |p| !p.comm_ok).await;
    assert!(all_quality(Quality::CommError)(&p), "{:?}", qualities(&p));
    assert_eq!(bad("crc"), 1.0);
    let p = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        good(&p),
        "the request after the bad CRC: {:?}",
        qualities(&p)
    );

    // Garbage glued in front of a reply: skipped, counted, the reply is read.
    let before = discarded(line);
    slave.next(Next::GarbageBefore(vec![0x00, 0x00, 0x55, 0xAA, 0xFF]));
    let p = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(good(&p), "a reply behind garbage: {:?}", qualities(&p));
    assert!(discarded(line) >= before + 5.0);

    // Another unit's frame just before ours: a stray, counted; our reply still wins.
    slave.next(Next::StrayBefore);
    let p = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        good(&p),
        "a reply behind another unit's frame: {:?}",
        qualities(&p)
    );
    assert_eq!(bad("stray"), 1.0);
    task.abort();
}

// ---- Unplug and replug ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_recovers_after_the_port_is_removed_and_recreated() {
    let mut pty = PtyPair::start();
    let mut server = ModbusServer::start_rtu(
        ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[TEMP_MINUS_20_5, HUM_54_6])),
        &pty.device,
    );
    let (tx, mut rx) = mpsc::channel(256);
    let task = modbus::spawn_rtu(
        bus("it-rtu-unplug", &pty, vec![xy("rtu-unplug", 1, 200, 100)]),
        tx,
    );
    poll_where(&mut rx, "good quality", all_good).await;

    // Pull the adapter: the device side goes with it; the links dangle.
    server.stop();
    pty.unplug();
    assert!(!pty.gateway.exists());
    poll_where(
        &mut rx,
        "comm_error after the unplug",
        all_quality(Quality::CommError),
    )
    .await;
    // Still one poll per tick while the port is gone.
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_millis(1000) {
        let p = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(!p.comm_ok, "{:?}", qualities(&p));
        n += 1;
    }
    assert!(
        (4..=7).contains(&n),
        "{n} polls in 1 s at 200 ms while unplugged"
    );

    // Plug it back in: same path, new pty behind it. No restart of the bus task.
    pty.replug();
    server.start_again();
    let p = poll_where(&mut rx, "good quality after the replug", all_good).await;
    assert!(approx(number(&p, "humidity_pct"), 54.6), "{p:?}");
    assert!(!task.is_finished());
    task.abort();
}

// ---- Probe ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reads_an_rtu_device_once_with_raw_registers() {
    let pty = PtyPair::start();
    let spec = ModbusSpec::new().unit(
        DSE,
        unit_spec(PHASES[0].iter().copied().filter(|v| v.unit == DSE)),
    );
    let server = ModbusServer::start_rtu(spec, &pty.device);
    let b = bus(
        "it-rtu-probe",
        &pty,
        vec![device(
            "gen1",
            Kind::Generator,
            DSE,
            shipped("dse-gencomm.toml"),
            1000,
            300,
        )],
    );
    let report = modbus::probe_rtu(&b, &b.devices[0])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Pages 3-7 in 7 requests, the page 154 named alarms in one more.
    assert_eq!(report.requests.len(), 8, "{report}");
    assert_eq!(server.request_count(DSE), 8);
    let point = |name: &str| report.points.iter().find(|p| p.point == name).unwrap();
    // D9: raw 0x0001 0x86A0 → 100 kW.
    let load = point("load_kw");
    assert_eq!(
        (load.raw.clone(), load.value.clone(), load.quality),
        (
            vec![0x0001, 0x86A0],
            Some(Value::Number(100.0)),
            Quality::Good
        )
    );
    assert_eq!(point("mode").value, Some(Value::Enum("auto")));
    let text = report.to_string();
    assert!(text.starts_with("device gen1 at it-rtu-probe ("), "{text}");
    assert!(text.contains("0x0001 0x86a0"), "{text}");

    // While the gateway holds the port, a probe says so instead of fighting for it.
    let (tx, _rx) = mpsc::channel(16);
    let task = modbus::spawn_rtu(b.clone(), tx);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = modbus::probe_rtu(&b, &b.devices[0]).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("device gen1 on bus it-rtu-probe: cannot open"),
        "{e}"
    );
    task.abort();
}

// ---- Wiring ---------------------------------------------------------------------------------

#[test]
fn site_lines_share_one_connection_per_endpoint_and_one_task_per_bus() {
    let text = r#"
[site]
name = "tv"
[[rooms]]
id = "r1"
[[buses]]
id = "bus1"
port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A1-if00-port0"
[[devices]]
id = "gen1"
room = "r1"
kind = "generator"
profile = "dse-gencomm"
[devices.modbus_tcp]
host = "10.0.0.9"
unit_id = 10
[[devices]]
id = "ups1"
room = "r1"
kind = "ups"
profile = "apc-smart-ups"
[devices.modbus_tcp]
host = "10.0.0.9"
unit_id = 11
[[devices]]
id = "th1"
room = "r1"
kind = "climate"
profile = "xy-md02"
[devices.modbus_rtu]
bus = "bus1"
unit_id = 3
[[devices]]
id = "pm1"
room = "r1"
kind = "power_meter"
profile = "sdm630"
[devices.modbus_tcp]
host = "10.0.0.10"
"#;
    let site = dc_gateway::config::parse(text, "site.toml", std::path::Path::new("/"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (tcp, rtu) = dc_gateway::sources::modbus::lines(&site);
    let lines: Vec<(String, Vec<(String, u8)>)> = tcp
        .iter()
        .map(|l| {
            (
                l.addr.clone(),
                l.devices
                    .iter()
                    .map(|d| (d.meta.id.to_string(), d.unit_id))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                "10.0.0.9:502".to_string(),
                vec![("gen1".to_string(), 10), ("ups1".to_string(), 11)]
            ),
            ("10.0.0.10:502".to_string(), vec![("pm1".to_string(), 1)]),
        ]
    );
    assert_eq!(rtu.len(), 1);
    assert_eq!(
        rtu[0].serial.port,
        "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A1-if00-port0"
    );
    assert_eq!(
        rtu[0].devices.iter().map(|d| d.unit_id).collect::<Vec<_>>(),
        vec![3]
    );
}
