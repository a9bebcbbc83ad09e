//! The shipped SNMP profiles against recordings of real agents: every recording with
//! UPS-MIB, UPS or environmental data in the PyPI package `snmpsim-data` (pinned in
//! `tests/requirements.txt`), served by snmpsim and polled through the real poller with
//! every shipped profile that fits it, then fed to the default rules.
//!
//! What must hold, agent by agent:
//! - the agent answers and nothing panics; no value comes back as a communication or
//!   device error;
//! - every good number is plausible for its unit (an independent table here, not the
//!   profile's own range), and every other value says why (`unknown`: the device says
//!   "not available"; `out_of_range`: implausible; `no_such_object`: the agent does not
//!   have it);
//! - no more than [`MAX_MARKED_SHARE`] of the values read are marked: marking
//!   everything is not a pass;
//! - no alarm is raised on an agent whose own status says normal (output source
//!   normal and, where it is reported, battery status normal);
//! - a second poll reads the same as the first (rows a walk found are remembered).
//!
//! Which recordings: the package's `UPS/` and `iot/` folders and any whose name speaks
//! of power, temperature or sensors. A survey of all 116 recordings of snmpsim-data
//! 1.0.1 (docs/PROFILES.md, "Real agents") found UPS-MIB, UPS or environmental objects
//! only in those; the juniper-ac file in `UPS/` has none. Recordings with such objects
//! but no shipped profile are listed with the reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use dc_gateway::model::{AlarmState, DeviceMeta, Language, Poll, Quality, Value};
use dc_gateway::rules::{self, Engine};
use dc_gateway::sources::snmp::{self, Credentials, SnmpAgent, SnmpProfile};
use tokio::sync::mpsc;

use crate::peers::{Recording, Snmpsim, snmpsim_data};

/// At most this share of the values read may be marked `unknown` or `out_of_range`.
/// Measured on snmpsim-data 1.0.1: see the printed table; the bound leaves room for a
/// new recording, not for marking whole profiles.
const MAX_MARKED_SHARE: f64 = 0.15;

/// Objects that make a recording a UPS or environmental one, and the shipped profile
/// that reads them (`None`: no shipped profile, with the reason).
const FAMILIES: &[(&str, Result<&str, &str>)] = &[
    ("1.3.6.1.2.1.33.1.", Ok("ups-mib")),
    ("1.3.6.1.4.1.534.1.", Ok("eaton-xups")),
    ("1.3.6.1.4.1.2011.6.174.", Ok("huawei-ups")),
    ("1.3.6.1.4.1.318.1.1.1.", Ok("apc-powernet")),
    ("1.3.6.1.4.1.5528.100.", Ok("netbotz-climate")),
    ("1.3.6.1.4.1.476.1.42.3.4.", Ok("liebert-gp-env")),
    (
        "1.3.6.1.4.1.21239.5.",
        Err("Geist Watchdog: temperatures follow the device's unit setting"),
    ),
    (
        "1.3.6.1.4.1.13400.2.",
        Err("Emerson Network Power (China) UPS MIB: no public MIB found"),
    ),
    (
        "1.3.6.1.4.1.318.1.1.26.",
        Err("APC rack PDU (rPDU2): no pdu device kind"),
    ),
];

/// Plausible ranges by unit, independent of the profiles.
fn plausible(unit: &str, v: f64) -> bool {
    let (lo, hi) = match unit {
        "V" => (0.0, 1000.0),
        "Hz" => (0.0, 70.0),
        "%" => (0.0, 200.0),
        "°C" => (-20.0, 80.0),
        "s" => (0.0, 7.0 * 86_400.0),
        "kW" => (0.0, 10_000.0),
        "" => (0.0, 1000.0),
        _ => return v.is_finite(),
    };
    v.is_finite() && (lo..=hi).contains(&v)
}

fn community_of(path: &str) -> String {
    let stem = path
        .trim_end_matches(".bz2")
        .trim_end_matches(".snmprec")
        .to_lowercase();
    stem.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn has(text: &str, prefix: &str) -> bool {
    text.starts_with(prefix) || text.contains(&format!("\n{prefix}"))
}

fn shipped(id: &str) -> Arc<SnmpProfile> {
    let (f, text) = snmp::shipped_profiles()
        .into_iter()
        .find(|(f, _)| f.trim_end_matches(".toml") == id)
        .unwrap_or_else(|| panic!("{id} is not shipped"));
    Arc::new(snmp::parse_profile(text, f).unwrap_or_else(|e| panic!("{e}")))
}

/// Two polls of `community` through `profile` from one poller.
async fn two_polls(sim: &Snmpsim, community: &str, profile: Arc<SnmpProfile>) -> (Poll, Poll) {
    let agent = SnmpAgent {
        meta: Arc::new(DeviceMeta {
            id: community.into(),
            name: community.into(),
            label: None,
            room: "dc".into(),
            kind: profile.kind,
        }),
        addr: sim.addr(),
        credentials: Credentials::V2c {
            community: community.into(),
        },
        timeout: Duration::from_millis(2000),
        retries: 1,
        poll_interval: Duration::from_millis(300),
        profile,
    };
    let (tx, mut rx) = mpsc::channel(4);
    let task = snmp::spawn(agent, tx);
    let mut polls = Vec::new();
    while polls.len() < 2 {
        let p = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{community}: no poll within 30 s"))
            .unwrap_or_else(|| panic!("{community}: poller stopped"));
        polls.push(p);
    }
    task.handle.abort();
    let second = polls.pop().unwrap_or_else(|| unreachable!());
    let first = polls.pop().unwrap_or_else(|| unreachable!());
    (first, second)
}

fn enum_of(p: &Poll, point: &str) -> Option<&'static str> {
    match p.samples.iter().find(|s| s.point.name == point)?.value {
        Some(Value::Enum(e)) => Some(e),
        _ => None,
    }
}

fn number(p: &Poll, point: &str) -> (Option<f64>, Quality) {
    let s = p
        .samples
        .iter()
        .find(|s| s.point.name == point)
        .unwrap_or_else(|| panic!("{point} not in the poll"));
    (s.value.as_ref().and_then(Value::as_f64), s.quality)
}

/// Counts of one agent × profile.
#[derive(Default)]
struct Row {
    read: usize,
    good: usize,
    by_reason: BTreeMap<&'static str, usize>,
    absent: usize,
    normal: bool,
    alarms: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_profiles_on_every_real_ups_and_environment_recording() {
    let recordings: Vec<Recording> = snmpsim_data(|p| {
        p.starts_with("ups/")
            || p.starts_with("iot/")
            || ["power", "temp", "sensor", "environ"]
                .iter()
                .any(|w| p.contains(w))
    });
    assert!(
        recordings.len() >= 10,
        "expected the UPS and iot recordings of snmpsim-data, found {}",
        recordings.len()
    );

    let mut served: Vec<(String, String)> = Vec::new();
    let mut plan: Vec<(String, String, Vec<&str>)> = Vec::new();
    let mut unprofiled: Vec<(String, &str)> = Vec::new();
    let mut unrelated: Vec<String> = Vec::new();
    for r in &recordings {
        let mut profiles = Vec::new();
        let mut reasons = Vec::new();
        for (prefix, fit) in FAMILIES {
            if has(&r.text, prefix) {
                match fit {
                    Ok(id) => profiles.push(*id),
                    Err(why) => reasons.push(*why),
                }
            }
        }
        let community = community_of(&r.path);
        if !profiles.is_empty() {
            served.push((community.clone(), r.text.clone()));
            plan.push((r.path.clone(), community, profiles));
        } else if let Some(why) = reasons.first() {
            unprofiled.push((r.path.clone(), why));
        } else {
            unrelated.push(r.path.clone());
        }
    }
    assert!(
        plan.len() >= 7,
        "expected at least 7 recordings with a fitting profile, got {plan:?}"
    );
    let refs: Vec<(&str, &str)> = served
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    let sim = Snmpsim::start(&refs, None);

    let mut table: Vec<(String, String, Row)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut engine = Engine::new(Arc::from("realagents"), Language::En, 1);
    for (path, community, profiles) in &plan {
        for id in profiles {
            let profile = shipped(id);
            let (first, second) = two_polls(&sim, community, profile.clone()).await;
            let mut row = Row::default();
            if !first.comm_ok {
                problems.push(format!("{path} / {id}: the agent did not answer"));
            }
            for (a, b) in first.samples.iter().zip(&second.samples) {
                if a.quality != b.quality || a.value != b.value {
                    problems.push(format!(
                        "{path} / {id}: {} read {:?} {:?} then {:?} {:?}",
                        a.point.name, a.quality, a.value, b.quality, b.value
                    ));
                }
            }
            for s in &first.samples {
                match s.quality {
                    Quality::Good => {
                        row.read += 1;
                        row.good += 1;
                        if let Some(v) = s.value.as_ref().and_then(Value::as_f64)
                            && matches!(s.value, Some(Value::Number(_)))
                            && !plausible(s.point.unit, v)
                        {
                            problems.push(format!(
                                "{path} / {id}: {} = {v} {} is good but not plausible",
                                s.point.name, s.point.unit
                            ));
                        }
                    }
                    Quality::Unknown | Quality::OutOfRange => {
                        row.read += 1;
                        *row.by_reason.entry(s.quality.as_str()).or_default() += 1;
                    }
                    Quality::NoSuchObject => row.absent += 1,
                    other => problems.push(format!(
                        "{path} / {id}: {} has quality {other:?}",
                        s.point.name
                    )),
                }
            }
            // The agent's own status: a UPS on normal output with a normal battery;
            // a cooling unit running.
            row.normal = match profile.kind {
                dc_gateway::model::Kind::Cooling => first
                    .samples
                    .iter()
                    .any(|s| s.point.name == "unit_on" && s.value == Some(Value::Bool(true))),
                _ => {
                    enum_of(&first, "output_source") == Some("normal")
                        && matches!(enum_of(&first, "battery_status"), None | Some("normal"))
                }
            };
            let device = first.device.clone();
            engine.add_device(
                device.clone(),
                Duration::from_millis(300),
                rules::defaults(device.kind),
            );
            for poll in [&first, &second] {
                for e in engine.on_poll(poll) {
                    if e.state == AlarmState::Raised {
                        row.alarms.push(format!("{} ({})", e.rule, e.message));
                    }
                }
            }
            if row.normal && !row.alarms.is_empty() {
                problems.push(format!(
                    "{path} / {id}: the agent says normal, yet raised {:?}",
                    row.alarms
                ));
            }
            table.push((path.clone(), id.to_string(), row));
        }
    }

    // The regressions of issue 23, on the agents where they were seen.
    let find = |path_part: &str, id: &str| {
        table
            .iter()
            .position(|(p, i, _)| p.contains(path_part) && i == id)
            .unwrap_or_else(|| panic!("{path_part} / {id} was not polled"))
    };
    let _ = find("eastpower", "ups-mib");
    let _ = find("huawei", "huawei-ups");
    let _ = find("eaton-93e", "eaton-xups");

    // Print the table.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:44} {:15} {:>6} {:>5} {:>7} {:>12} {:>6} {:>6}  alarms",
        "recording", "profile", "status", "read", "unknown", "out_of_range", "absent", "marked"
    );
    let (mut read, mut marked, mut alarms_on_normal) = (0usize, 0usize, 0usize);
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for (path, id, row) in &table {
        let m: usize = row.by_reason.values().sum();
        read += row.read;
        marked += m;
        for (k, v) in &row.by_reason {
            *reasons.entry(k).or_default() += v;
        }
        if row.normal {
            alarms_on_normal += row.alarms.len();
        }
        let _ = writeln!(
            out,
            "{:44} {:15} {:>6} {:>5} {:>7} {:>12} {:>6} {:>6}  {}",
            path,
            id,
            if row.normal { "normal" } else { "-" },
            row.read,
            row.by_reason.get("unknown").copied().unwrap_or(0),
            row.by_reason.get("out_of_range").copied().unwrap_or(0),
            row.absent,
            m,
            if row.alarms.is_empty() {
                "-".to_string()
            } else {
                row.alarms.join("; ")
            }
        );
    }
    for (path, why) in &unprofiled {
        let _ = writeln!(out, "{path:44} not polled: {why}");
    }
    for path in &unrelated {
        let _ = writeln!(out, "{path:44} not polled: no UPS or environmental objects");
    }
    let share = marked as f64 / read.max(1) as f64;
    let _ = writeln!(
        out,
        "agents {} (polls {}), values read {read}, marked {marked} ({:.1} %: {reasons:?}), alarms raised on agents whose status is normal: {alarms_on_normal}",
        plan.len(),
        table.len(),
        share * 100.0
    );
    println!("{out}");

    assert!(problems.is_empty(), "{out}\n{}", problems.join("\n"));
    assert_eq!(alarms_on_normal, 0, "{out}");
    assert!(
        share <= MAX_MARKED_SHARE,
        "{:.1} % of the values read are marked (at most {:.0} % allowed){out}",
        share * 100.0,
        MAX_MARKED_SHARE * 100.0
    );
    assert!(
        read >= 100,
        "only {read} values read across the recordings{out}"
    );
}

/// Issue 23, item 1, on the agents where it was seen: values that used to be wrong or
/// missing, now right or marked with their reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_agents_issue_cases_read_right_or_say_why() {
    let recordings = snmpsim_data(|p| {
        p.contains("eastpower")
            || p.contains("huawei-gse200m")
            || p.contains("eaton-93e")
            || p.contains("vertiv-power")
    });
    assert_eq!(recordings.len(), 4, "snmpsim-data recordings missing");
    let served: Vec<(String, String)> = recordings
        .iter()
        .map(|r| (community_of(&r.path), r.text.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = served
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    let sim = Snmpsim::start(&refs, None);
    let community = |part: &str| {
        served
            .iter()
            .find(|(c, _)| c.contains(part))
            .map(|(c, _)| c.clone())
            .unwrap()
    };

    // (recording, profile, point, expected quality, expected value)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Quality,
        Option<f64>,
    );
    let cases: &[Case] = &[
        // On mains, battery normal, 100 %: upsEstimatedMinutesRemaining = 0 is "does not
        // estimate" (RFC 1628 range 1..), not 0 s.
        (
            "eastpower",
            "ups-mib",
            "runtime_remaining_s",
            Quality::Unknown,
            None,
        ),
        // Rows indexed `.N.0`: found by a walk.
        (
            "eastpower",
            "ups-mib",
            "input_voltage_v",
            Quality::Good,
            Some(236.0),
        ),
        (
            "eastpower",
            "ups-mib",
            "output_voltage_l3_v",
            Quality::Good,
            Some(219.0),
        ),
        (
            "eastpower",
            "ups-mib",
            "input_frequency_hz",
            Quality::Good,
            Some(50.0),
        ),
        (
            "eastpower",
            "ups-mib",
            "battery_temperature_c",
            Quality::Good,
            Some(36.0),
        ),
        // -1 = not available.
        (
            "huawei",
            "ups-mib",
            "battery_temperature_c",
            Quality::Unknown,
            None,
        ),
        (
            "huawei",
            "ups-mib",
            "runtime_remaining_s",
            Quality::Unknown,
            None,
        ),
        (
            "huawei",
            "ups-mib",
            "battery_charge_pct",
            Quality::Unknown,
            None,
        ),
        // 0.1 V sent where the RFC says volts: marked, not shown as 2369 V.
        (
            "huawei",
            "ups-mib",
            "input_voltage_v",
            Quality::OutOfRange,
            Some(2369.0),
        ),
        // ... and read right by the vendor profile.
        (
            "huawei",
            "huawei-ups",
            "input_voltage_v",
            Quality::Good,
            Some(234.7),
        ),
        (
            "huawei",
            "huawei-ups",
            "input_frequency_hz",
            Quality::Good,
            Some(50.0),
        ),
        (
            "huawei",
            "huawei-ups",
            "runtime_remaining_s",
            Quality::Good,
            Some(28080.0),
        ),
        (
            "huawei",
            "huawei-ups",
            "battery_voltage_v",
            Quality::Good,
            Some(538.5),
        ),
        // Eaton: 65535 s = no estimate; the RFC 1628 agent's minutes are fine.
        (
            "eaton-93e",
            "eaton-xups",
            "runtime_remaining_s",
            Quality::Unknown,
            None,
        ),
        (
            "eaton-93e",
            "eaton-xups",
            "input_voltage_l3_v",
            Quality::Good,
            Some(233.0),
        ),
        (
            "eaton-93e",
            "ups-mib",
            "runtime_remaining_s",
            Quality::Good,
            Some(65520.0),
        ),
        // Liebert cooling: rows named by their Descr column, at unit-specific indexes
        // (return air is row 3 here, return humidity row 2).
        (
            "vertiv",
            "liebert-gp-env",
            "return_air_temperature_c",
            Quality::Good,
            Some(23.0),
        ),
        (
            "vertiv",
            "liebert-gp-env",
            "humidity_pct",
            Quality::Good,
            Some(42.0),
        ),
        (
            "vertiv",
            "liebert-gp-env",
            "setpoint_c",
            Quality::Good,
            Some(23.0),
        ),
        // The supply-air row has no measurement on this unit.
        (
            "vertiv",
            "liebert-gp-env",
            "supply_air_temperature_c",
            Quality::NoSuchObject,
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (rec, id, point, q, v) in cases {
        let (first, _) = two_polls(&sim, &community(rec), shipped(id)).await;
        let (got_v, got_q) = number(&first, point);
        // Only good samples carry a value in a poll.
        let v_ok = match (v, got_v) {
            (Some(want), Some(got)) => (want - got).abs() < 1e-6,
            (_, None) => *q != Quality::Good,
            (None, Some(_)) => false,
        };
        if got_q != *q || !v_ok {
            failures.push(format!(
                "{rec} / {id} / {point}: got {got_q:?} {got_v:?}, want {q:?} {v:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue 23, item 1: rows a GET cannot find (`upsInputVoltage.1` served as
/// `upsInputVoltage.1.0`) are found by one walk and read there from then on, without
/// walking again: the agent's memory, not a walk per poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_found_by_a_walk_are_remembered_per_agent() {
    let recordings = snmpsim_data(|p| p.contains("eastpower"));
    assert_eq!(recordings.len(), 1, "snmpsim-data recording missing");
    let community = community_of(&recordings[0].path);
    let sim = Snmpsim::start(&[(community.as_str(), recordings[0].text.as_str())], None);
    let profile = shipped("ups-mib");
    let agent = SnmpAgent {
        meta: Arc::new(DeviceMeta {
            id: "ea9080".into(),
            name: "ea9080".into(),
            label: None,
            room: "dc".into(),
            kind: profile.kind,
        }),
        addr: sim.addr(),
        credentials: Credentials::V2c {
            community: community.clone(),
        },
        timeout: Duration::from_millis(2000),
        retries: 1,
        poll_interval: Duration::from_secs(60),
        profile: profile.clone(),
    };
    let client = snmp::poller::client(&agent).await.expect("client");
    let mut found = snmp::state::FoundRows::default();
    let first = snmp::poller::read(&client, &agent, &mut found).await;
    let second = snmp::poller::read(&client, &agent, &mut found).await;
    let input = snmp::profile::parse_oid("1.3.6.1.2.1.33.1.3.3.1.3.1").unwrap();
    let at = snmp::profile::parse_oid("1.3.6.1.2.1.33.1.3.3.1.3.1.0").unwrap();
    for (name, r) in [("first", &first), ("second", &second)] {
        assert!(
            r.relocated.contains(&(input.clone(), at.clone())),
            "{name} read: {:?}",
            r.relocated
        );
        assert_eq!(
            r.gets.get(&input),
            Some(&async_snmp::Value::Integer(236)),
            "{name} read"
        );
    }
    // The profile GETs 10 table instances the agent serves under `.0`: the first read
    // walks their columns, the second does not walk at all.
    assert!(
        second.requests + 4 <= first.requests,
        "requests: first {}, second {}",
        first.requests,
        second.requests
    );
    assert_eq!(found.resolve(&input), &at);
}
