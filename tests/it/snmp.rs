//! The SNMP source against real peers: net-snmp's `snmpd` (v3 users, `override`
//! values), `snmpsim` serving recordings written by hand from the MIBs, and net-snmp's
//! `snmptrap` sending traps to the gateway's receiver.
//!
//! Everything goes through the public API (`sources::snmp::{spawn, probe, spawn_traps}`),
//! as the runtime uses it. Recording values cite the MIB object they stand for; they
//! are never produced by our own encoder. Expected values are computed by hand from
//! the MIB units (upsEstimatedMinutesRemaining 42 minutes → 2520 s, upsBatteryVoltage
//! 2712 × 0.1 V → 271.2 V, TimeTicks 432000 → 4320 s).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dc_gateway::metrics;
use dc_gateway::model::{DeviceMeta, Kind, Poll, Quality, Value};
use dc_gateway::sources::snmp::{
    self, AuthProto, Credentials, PrivProto, SnmpAgent, SnmpProfile, TrapAgent, TrapConfig, V3User,
};
use tokio::sync::mpsc;

use crate::modbus::poll_where;
use crate::peers::{Snmpd, Snmpsim, snmptrap};

// --- Recordings (snmprec: OID|type|value; 2 INTEGER, 4 OCTET STRING, 6 OID,
// --- 66 Gauge32, 67 TimeTicks), values hand-written from the MIB text. ---------------

/// RFC 1628 UPS-MIB, a three-phase UPS on mains, no alarm.
pub(crate) const UPS_MAINS: &str = "\
1.3.6.1.2.1.1.3.0|67|123456
1.3.6.1.2.1.33.1.2.1.0|2|2
1.3.6.1.2.1.33.1.2.2.0|2|0
1.3.6.1.2.1.33.1.2.3.0|2|42
1.3.6.1.2.1.33.1.2.4.0|2|100
1.3.6.1.2.1.33.1.2.5.0|2|2712
1.3.6.1.2.1.33.1.2.7.0|2|27
1.3.6.1.2.1.33.1.3.3.1.2.1|2|500
1.3.6.1.2.1.33.1.3.3.1.3.1|2|231
1.3.6.1.2.1.33.1.3.3.1.3.2|2|229
1.3.6.1.2.1.33.1.3.3.1.3.3|2|230
1.3.6.1.2.1.33.1.4.1.0|2|3
1.3.6.1.2.1.33.1.4.2.0|2|500
1.3.6.1.2.1.33.1.4.4.1.2.1|2|230
1.3.6.1.2.1.33.1.4.4.1.2.2|2|231
1.3.6.1.2.1.33.1.4.4.1.2.3|2|229
1.3.6.1.2.1.33.1.4.4.1.4.1|2|2100
1.3.6.1.2.1.33.1.4.4.1.4.2|2|1900
1.3.6.1.2.1.33.1.4.4.1.4.3|2|2000
1.3.6.1.2.1.33.1.4.4.1.5.1|2|31
1.3.6.1.2.1.33.1.4.4.1.5.2|2|47
1.3.6.1.2.1.33.1.4.4.1.5.3|2|12
1.3.6.1.2.1.33.1.6.1.0|66|0
";

/// RFC 1628 UPS-MIB, a single-phase UPS on battery: upsOutputSource battery(5), 95 s on
/// battery, 12 minutes left, one alarm row upsAlarmOnBattery (upsWellKnownAlarms 2).
const UPS_BATTERY: &str = "\
1.3.6.1.2.1.1.3.0|67|123456
1.3.6.1.2.1.33.1.2.1.0|2|2
1.3.6.1.2.1.33.1.2.2.0|2|95
1.3.6.1.2.1.33.1.2.3.0|2|12
1.3.6.1.2.1.33.1.2.4.0|2|64
1.3.6.1.2.1.33.1.2.5.0|2|2580
1.3.6.1.2.1.33.1.2.7.0|2|29
1.3.6.1.2.1.33.1.3.3.1.2.1|2|0
1.3.6.1.2.1.33.1.3.3.1.3.1|2|0
1.3.6.1.2.1.33.1.4.1.0|2|5
1.3.6.1.2.1.33.1.4.2.0|2|500
1.3.6.1.2.1.33.1.4.4.1.2.1|2|230
1.3.6.1.2.1.33.1.4.4.1.4.1|2|1500
1.3.6.1.2.1.33.1.4.4.1.5.1|2|38
1.3.6.1.2.1.33.1.6.1.0|66|1
1.3.6.1.2.1.33.1.6.2.1.2.1|6|1.3.6.1.2.1.33.1.6.3.2
1.3.6.1.2.1.33.1.6.2.1.3.1|67|123000
";

/// RFC 1628 UPS-MIB, alarms present: batteryLow(3), upsOutputSource bypass(4), load
/// 104 % on line 1, and four alarm rows: upsAlarmBatteryBad (1), upsAlarmLowBattery (3),
/// upsAlarmOutputOverload (8), upsAlarmOnBypass (9).
const UPS_ALARMS: &str = "\
1.3.6.1.2.1.1.3.0|67|123456
1.3.6.1.2.1.33.1.2.1.0|2|3
1.3.6.1.2.1.33.1.2.2.0|2|0
1.3.6.1.2.1.33.1.2.3.0|2|3
1.3.6.1.2.1.33.1.2.4.0|2|18
1.3.6.1.2.1.33.1.2.5.0|2|2310
1.3.6.1.2.1.33.1.2.7.0|2|41
1.3.6.1.2.1.33.1.3.3.1.2.1|2|499
1.3.6.1.2.1.33.1.3.3.1.3.1|2|228
1.3.6.1.2.1.33.1.4.1.0|2|4
1.3.6.1.2.1.33.1.4.2.0|2|499
1.3.6.1.2.1.33.1.4.4.1.2.1|2|228
1.3.6.1.2.1.33.1.4.4.1.4.1|2|6240
1.3.6.1.2.1.33.1.4.4.1.5.1|2|104
1.3.6.1.2.1.33.1.6.1.0|66|4
1.3.6.1.2.1.33.1.6.2.1.2.7|6|1.3.6.1.2.1.33.1.6.3.1
1.3.6.1.2.1.33.1.6.2.1.2.8|6|1.3.6.1.2.1.33.1.6.3.3
1.3.6.1.2.1.33.1.6.2.1.2.9|6|1.3.6.1.2.1.33.1.6.3.8
1.3.6.1.2.1.33.1.6.2.1.2.10|6|1.3.6.1.2.1.33.1.6.3.9
";

/// APC PowerNet-MIB v4.2.8, Smart-UPS on mains: upsBasicBatteryStatus batteryNormal(2),
/// upsAdvBatteryCapacity 100 %, upsAdvBatteryTemperature 26 °C, upsAdvBatteryRunTimeRemaining
/// 432000 ticks (72 min), upsAdvBatteryReplaceIndicator noBatteryNeedsReplacing(1),
/// upsAdvBatteryActualVoltage 27 V, upsAdvInputLineVoltage 229 VAC,
/// upsAdvInputFrequency 50 Hz, upsBasicOutputStatus onLine(2), upsAdvOutputVoltage
/// 230 VAC, upsAdvOutputFrequency 50 Hz, upsAdvOutputLoad 23 %, upsAdvOutputActivePower
/// 1380 W.
const APC_MAINS: &str = "\
1.3.6.1.2.1.1.3.0|67|9876
1.3.6.1.4.1.318.1.1.1.2.1.1.0|2|2
1.3.6.1.4.1.318.1.1.1.2.2.1.0|66|100
1.3.6.1.4.1.318.1.1.1.2.2.2.0|66|26
1.3.6.1.4.1.318.1.1.1.2.2.3.0|67|432000
1.3.6.1.4.1.318.1.1.1.2.2.4.0|2|1
1.3.6.1.4.1.318.1.1.1.2.2.8.0|2|27
1.3.6.1.4.1.318.1.1.1.3.2.1.0|66|229
1.3.6.1.4.1.318.1.1.1.3.2.4.0|66|50
1.3.6.1.4.1.318.1.1.1.4.1.1.0|2|2
1.3.6.1.4.1.318.1.1.1.4.2.1.0|66|230
1.3.6.1.4.1.318.1.1.1.4.2.2.0|66|50
1.3.6.1.4.1.318.1.1.1.4.2.3.0|66|23
1.3.6.1.4.1.318.1.1.1.4.2.8.0|2|1380
";

/// APC PowerNet-MIB, on battery: upsBasicOutputStatus onBattery(3), capacity 87 %,
/// 180000 ticks (30 min) left, input 0 VAC, replace indicator batteryNeedsReplacing(2).
const APC_BATTERY: &str = "\
1.3.6.1.2.1.1.3.0|67|9876
1.3.6.1.4.1.318.1.1.1.2.1.1.0|2|2
1.3.6.1.4.1.318.1.1.1.2.2.1.0|66|87
1.3.6.1.4.1.318.1.1.1.2.2.2.0|66|28
1.3.6.1.4.1.318.1.1.1.2.2.3.0|67|180000
1.3.6.1.4.1.318.1.1.1.2.2.4.0|2|2
1.3.6.1.4.1.318.1.1.1.2.2.8.0|2|25
1.3.6.1.4.1.318.1.1.1.3.2.1.0|66|0
1.3.6.1.4.1.318.1.1.1.3.2.4.0|66|0
1.3.6.1.4.1.318.1.1.1.4.1.1.0|2|3
1.3.6.1.4.1.318.1.1.1.4.2.1.0|66|230
1.3.6.1.4.1.318.1.1.1.4.2.2.0|66|50
1.3.6.1.4.1.318.1.1.1.4.2.3.0|66|31
1.3.6.1.4.1.318.1.1.1.4.2.8.0|2|1860
";

/// The index of a NetBotz sensor row: the sensor id string, length-prefixed ASCII
/// (NETBOTZV2-MIB tables are INDEX { ...SensorId } DisplayString).
fn str_index(id: &str) -> String {
    let mut s = id.len().to_string();
    for b in id.bytes() {
        s.push('.');
        s.push_str(&b.to_string());
    }
    s
}

/// NETBOTZV2-MIB: one temperature sensor 23.5 °C (tempSensorValue 235, tenths), its
/// tempSensorValueStr "23.5", humidity 45.6 % (humiSensorValue 456), dew point 10.9 °C
/// (dewPointSensorValue 109), a door switch open(0), a dry contact closed(1).
fn netbotz_recording() -> String {
    let t = str_index("nbHawkEnc_0_TEMP");
    let h = str_index("nbHawkEnc_0_HUMI");
    let d = str_index("nbHawkEnc_0_DEWPT");
    let door = str_index("nbHawkEnc_0_DOOR");
    let dry = str_index("nbHawkEnc_0_DRYCONTACT");
    format!(
        "1.3.6.1.2.1.1.3.0|67|5555\n\
         1.3.6.1.4.1.5528.100.4.1.1.1.2.{t}|2|235\n\
         1.3.6.1.4.1.5528.100.4.1.1.1.7.{t}|4|23.5\n\
         1.3.6.1.4.1.5528.100.4.1.2.1.2.{h}|2|456\n\
         1.3.6.1.4.1.5528.100.4.1.3.1.2.{d}|2|109\n\
         1.3.6.1.4.1.5528.100.4.2.1.1.2.{dry}|2|1\n\
         1.3.6.1.4.1.5528.100.4.2.2.1.2.{door}|2|0\n"
    )
}

// --- Helpers -------------------------------------------------------------------------

fn profile(file: &str) -> Arc<SnmpProfile> {
    let (f, text) = snmp::shipped_profiles()
        .into_iter()
        .find(|(f, _)| *f == file)
        .unwrap_or_else(|| panic!("{file} is not shipped"));
    Arc::new(snmp::parse_profile(text, f).unwrap_or_else(|e| panic!("{e}")))
}

fn meta(id: &str, kind: Kind) -> Arc<DeviceMeta> {
    Arc::new(DeviceMeta {
        id: id.into(),
        name: id.into(),
        label: None,
        room: "it".into(),
        kind,
    })
}

fn agent(
    id: &str,
    addr: &str,
    credentials: Credentials,
    prof: Arc<SnmpProfile>,
    interval_ms: u64,
) -> SnmpAgent {
    SnmpAgent {
        meta: meta(id, prof.kind),
        addr: addr.to_string(),
        credentials,
        timeout: Duration::from_millis(1000),
        retries: 1,
        poll_interval: Duration::from_millis(interval_ms),
        profile: prof,
    }
}

fn v2c(c: &str) -> Credentials {
    Credentials::V2c {
        community: c.into(),
    }
}

fn v3(user: &str, auth: AuthProto, ak: &str, privacy: Option<(PrivProto, &str)>) -> Credentials {
    Credentials::V3 {
        user: V3User {
            name: user.into(),
            auth: Some((auth, ak.into())),
            privacy: privacy.map(|(p, k)| (p, k.to_string())),
        },
        context: String::new(),
    }
}

fn value(poll: &Poll, point: &str) -> Option<Value> {
    poll.samples
        .iter()
        .find(|s| s.point.name == point)?
        .value
        .clone()
}

fn quality(poll: &Poll, point: &str) -> Option<Quality> {
    poll.samples
        .iter()
        .find(|s| s.point.name == point)
        .map(|s| s.quality)
}

fn num(poll: &Poll, point: &str) -> f64 {
    match value(poll, point) {
        Some(Value::Number(v)) => v,
        other => panic!(
            "{point}: expected a number, got {other:?} ({:?})",
            quality(poll, point)
        ),
    }
}

fn assert_num(poll: &Poll, point: &str, want: f64) {
    let got = num(poll, point);
    assert!((got - want).abs() < 1e-9, "{point}: got {got}, want {want}");
}

fn assert_val(poll: &Poll, point: &str, want: Value) {
    assert_eq!(
        value(poll, point),
        Some(want),
        "{point} (quality {:?})",
        quality(poll, point)
    );
}

/// One poll of `a` from a freshly spawned poller.
async fn poll_once(a: SnmpAgent, what: &str, pred: impl Fn(&Poll) -> bool) -> Poll {
    let (tx, mut rx) = mpsc::channel(16);
    let task = snmp::spawn(a, tx);
    let p = poll_where(&mut rx, what, pred).await;
    task.handle.abort();
    p
}

fn comm_ok(p: &Poll) -> bool {
    p.comm_ok
}

/// The first answered poll of a v2c agent `id` reading the recording `community` of
/// `sim` through `prof`.
async fn read_recording(
    sim: &Snmpsim,
    id: &str,
    community: &str,
    prof: Arc<SnmpProfile>,
    what: &str,
) -> Poll {
    poll_once(
        agent(id, &sim.addr(), v2c(community), prof, 500),
        what,
        comm_ok,
    )
    .await
}

/// The next poll on `rx` within `within`; panics naming `what` when none comes.
async fn next_poll(rx: &mut mpsc::Receiver<Poll>, within: Duration, what: &str) -> Poll {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect(what)
        .unwrap()
}

fn counter(
    family: &metrics::Family<metrics::Labels, metrics::Counter>,
    labels: &[(&'static str, &str)],
) -> u64 {
    metrics::count(family, labels)
}

fn polls_counted(device: &str, result: &str) -> u64 {
    counter(
        &metrics::get().polls,
        &[("device", device), ("result", result)],
    )
}

fn trap_rejects(reason: &str) -> u64 {
    counter(
        &metrics::get().bad_input,
        &[("what", "snmp_trap"), ("reason", reason)],
    )
}

// --- snmpd: SNMPv3 -------------------------------------------------------------------

/// snmpd serving three UPS-MIB scalars through `override` (RFC 1628:
/// upsEstimatedChargeRemaining 87 %, upsEstimatedMinutesRemaining 42 min,
/// upsOutputSource battery(5)) to v3 users of several auth/priv combinations.
const SNMPD_USERS: &str = "\
createUser sha-aes SHA authpass-sha1 AES privpass-aes1
createUser sha256-aes256 SHA-256 authpass-sha256 AES256 privpass-aes256
createUser sha-aes256 SHA authpass-blumenthal AES256 privpass-blumenthal
createUser sha-aes256c SHA authpass-reeder AES256C privpass-reeder
createUser sha-aes192 SHA authpass-b192 AES192 privpass-b192
createUser sha-aes192c SHA authpass-r192 AES192C privpass-r192
createUser md5-des MD5 authpass-md5 DES privpass-des
createUser sha512-auth SHA-512 authpass-sha512
rouser sha-aes priv
rouser sha256-aes256 priv
rouser sha-aes256 priv
rouser sha-aes256c priv
rouser sha-aes192 priv
rouser sha-aes192c priv
rouser md5-des priv
rouser sha512-auth auth
override 1.3.6.1.2.1.33.1.2.4.0 integer 87
override 1.3.6.1.2.1.33.1.2.3.0 integer 42
override 1.3.6.1.2.1.33.1.4.1.0 integer 5
";

fn check_override_values(p: &Poll) {
    assert!(p.comm_ok);
    assert_num(p, "battery_charge_pct", 87.0);
    assert_num(p, "runtime_remaining_s", 42.0 * 60.0);
    assert_val(p, "output_source", Value::Enum("on_battery"));
    assert_val(p, "on_battery", Value::Bool(true));
    assert_val(p, "on_bypass", Value::Bool(false));
    // snmpd has no other UPS-MIB object: a quality, not an error.
    assert_eq!(
        quality(p, "battery_temperature_c"),
        Some(Quality::NoSuchObject)
    );
    assert_eq!(quality(p, "input_voltage_v"), Some(Quality::NoSuchObject));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmpd_v3_auth_priv_users_read_override_values() {
    let snmpd = Snmpd::start(SNMPD_USERS);
    let ups = profile("ups-mib.toml");
    let cases = [
        (
            "sha-aes",
            v3(
                "sha-aes",
                AuthProto::Sha1,
                "authpass-sha1",
                Some((PrivProto::Aes128, "privpass-aes1")),
            ),
        ),
        (
            "sha256-aes256",
            v3(
                "sha256-aes256",
                AuthProto::Sha256,
                "authpass-sha256",
                Some((PrivProto::Aes256, "privpass-aes256")),
            ),
        ),
        (
            "md5-des",
            v3(
                "md5-des",
                AuthProto::Md5,
                "authpass-md5",
                Some((PrivProto::Des, "privpass-des")),
            ),
        ),
        (
            "sha512-auth",
            v3("sha512-auth", AuthProto::Sha512, "authpass-sha512", None),
        ),
    ];
    for (name, creds) in cases {
        let a = agent(
            &format!("it-snmpd-{name}"),
            &snmpd.addr(),
            creds,
            ups.clone(),
            500,
        );
        let p = poll_once(a, &format!("{name}: data"), comm_ok).await;
        check_override_values(&p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes192_and_aes256_in_both_key_extensions_against_net_snmp() {
    // With SHA-1 (20-byte keys) AES-192/256 need a key extension: net-snmp's AES192/
    // AES256 use Blumenthal's, AES192C/AES256C Reeder's. Each variant must read its own
    // user and fail (as an authentication error) on the other's.
    let snmpd = Snmpd::start(SNMPD_USERS);
    let ups = profile("ups-mib.toml");
    let good = [
        (
            "sha-aes256",
            "authpass-blumenthal",
            PrivProto::Aes256,
            "privpass-blumenthal",
        ),
        (
            "sha-aes256c",
            "authpass-reeder",
            PrivProto::Aes256C,
            "privpass-reeder",
        ),
        (
            "sha-aes192",
            "authpass-b192",
            PrivProto::Aes192,
            "privpass-b192",
        ),
        (
            "sha-aes192c",
            "authpass-r192",
            PrivProto::Aes192C,
            "privpass-r192",
        ),
    ];
    for (user, ak, pp, pk) in good {
        let a = agent(
            &format!("it-ext-{user}"),
            &snmpd.addr(),
            v3(user, AuthProto::Sha1, ak, Some((pp, pk))),
            ups.clone(),
            500,
        );
        let p = poll_once(a, &format!("{user} with {pp:?}: data"), comm_ok).await;
        check_override_values(&p);
    }
    let crossed = [
        (
            "sha-aes256",
            "authpass-blumenthal",
            PrivProto::Aes256C,
            "privpass-blumenthal",
        ),
        (
            "sha-aes256c",
            "authpass-reeder",
            PrivProto::Aes256,
            "privpass-reeder",
        ),
    ];
    for (user, ak, pp, pk) in crossed {
        let id = format!("it-ext-crossed-{user}");
        let before = polls_counted(&id, "auth_error");
        let a = agent(
            &id,
            &snmpd.addr(),
            v3(user, AuthProto::Sha1, ak, Some((pp, pk))),
            ups.clone(),
            500,
        );
        let p = poll_once(a, &format!("{user} with {pp:?}: a failed poll"), |p| {
            !p.comm_ok
        })
        .await;
        assert!(
            p.samples
                .iter()
                .all(|s| s.quality == Quality::CommError && s.value.is_none()),
            "{p:?}"
        );
        assert!(
            polls_counted(&id, "auth_error") > before,
            "{user} with the other key extension is not counted as auth_error"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_v3_key_is_a_clear_authentication_error_not_a_hang() {
    let snmpd = Snmpd::start(SNMPD_USERS);
    let ups = profile("ups-mib.toml");
    let cases = [
        (
            "auth",
            v3(
                "sha-aes",
                AuthProto::Sha1,
                "wrong-auth-key",
                Some((PrivProto::Aes128, "privpass-aes1")),
            ),
        ),
        (
            "priv",
            v3(
                "sha-aes",
                AuthProto::Sha1,
                "authpass-sha1",
                Some((PrivProto::Aes128, "wrong-priv-key")),
            ),
        ),
        (
            "user",
            v3(
                "nobody-here",
                AuthProto::Sha1,
                "authpass-sha1",
                Some((PrivProto::Aes128, "privpass-aes1")),
            ),
        ),
    ];
    for (what, creds) in cases {
        let id = format!("it-wrong-{what}");
        let before = polls_counted(&id, "auth_error");
        let mut a = agent(&id, &snmpd.addr(), creds, ups.clone(), 300);
        a.timeout = Duration::from_millis(500);
        let start = Instant::now();
        let p = poll_once(a.clone(), &format!("wrong {what}: a failed poll"), |p| {
            !p.comm_ok
        })
        .await;
        let took = start.elapsed();
        assert!(
            p.samples.iter().all(|s| s.quality == Quality::CommError),
            "wrong {what}: {p:?}"
        );
        assert!(
            polls_counted(&id, "auth_error") > before,
            "wrong {what} not counted as auth_error"
        );
        // A Report comes back at once: no waiting for timeouts and retries.
        assert!(
            took < Duration::from_secs(3),
            "wrong {what}: the failed poll took {took:?}"
        );
        // probe says what is wrong.
        let report = snmp::probe(&a).await.expect("client builds");
        let text = report.to_string();
        assert!(
            text.contains("SNMPv3"),
            "wrong {what}: probe does not name the SNMPv3 failure:\n{text}"
        );
        assert!(
            !text.contains("wrong-auth-key") && !text.contains("wrong-priv-key"),
            "a key leaked into probe output"
        );
    }
}

// --- snmpsim: recordings ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ups_mib_recordings_on_mains_on_battery_and_with_alarms() {
    let sim = Snmpsim::start(
        &[
            ("ups-mains", UPS_MAINS),
            ("ups-battery", UPS_BATTERY),
            ("ups-alarms", UPS_ALARMS),
        ],
        None,
    );
    let ups = profile("ups-mib.toml");

    let p = read_recording(&sim, "it-ups-mains", "ups-mains", ups.clone(), "mains").await;
    assert_val(&p, "output_source", Value::Enum("normal"));
    assert_val(&p, "on_battery", Value::Bool(false));
    assert_val(&p, "on_bypass", Value::Bool(false));
    assert_val(&p, "battery_status", Value::Enum("normal"));
    assert_val(&p, "battery_low", Value::Bool(false));
    assert_num(&p, "battery_charge_pct", 100.0);
    assert_num(&p, "runtime_remaining_s", 2520.0);
    assert_num(&p, "battery_voltage_v", 271.2);
    assert_num(&p, "battery_temperature_c", 27.0);
    assert_num(&p, "input_frequency_hz", 50.0);
    assert_num(&p, "input_voltage_v", 231.0);
    assert_num(&p, "input_voltage_l2_v", 229.0);
    assert_num(&p, "input_voltage_l3_v", 230.0);
    assert_num(&p, "output_frequency_hz", 50.0);
    assert_num(&p, "output_voltage_v", 230.0);
    assert_num(&p, "output_voltage_l2_v", 231.0);
    assert_num(&p, "output_voltage_l3_v", 229.0);
    assert_num(&p, "output_power_kw", 6.0);
    assert_num(&p, "load_pct", 47.0);
    assert_num(&p, "load_l1_pct", 31.0);
    assert_num(&p, "load_l2_pct", 47.0);
    assert_num(&p, "load_l3_pct", 12.0);
    assert_num(&p, "alarms_present", 0.0);
    for flag in ["battery_replace", "overload", "fault"] {
        assert_val(&p, flag, Value::Bool(false));
    }
    assert!(
        p.samples.iter().all(|s| s.quality == Quality::Good),
        "{:?}",
        p.samples
    );

    let p = read_recording(
        &sim,
        "it-ups-battery",
        "ups-battery",
        ups.clone(),
        "battery",
    )
    .await;
    assert_val(&p, "output_source", Value::Enum("on_battery"));
    assert_val(&p, "on_battery", Value::Bool(true));
    assert_num(&p, "battery_charge_pct", 64.0);
    assert_num(&p, "runtime_remaining_s", 720.0);
    assert_num(&p, "input_voltage_v", 0.0);
    assert_num(&p, "alarms_present", 1.0);
    assert_val(&p, "battery_replace", Value::Bool(false));
    // Single-phase: lines 2 and 3 do not exist.
    for missing in ["input_voltage_l2_v", "output_voltage_l3_v", "load_l2_pct"] {
        assert_eq!(
            quality(&p, missing),
            Some(Quality::NoSuchObject),
            "{missing}"
        );
    }

    let p = read_recording(&sim, "it-ups-alarms", "ups-alarms", ups.clone(), "alarms").await;
    assert_val(&p, "output_source", Value::Enum("on_bypass"));
    assert_val(&p, "on_bypass", Value::Bool(true));
    assert_val(&p, "on_battery", Value::Bool(false));
    assert_val(&p, "battery_status", Value::Enum("low"));
    assert_val(&p, "battery_low", Value::Bool(true));
    assert_val(&p, "battery_replace", Value::Bool(true));
    assert_val(&p, "overload", Value::Bool(true));
    assert_val(&p, "fault", Value::Bool(false));
    assert_num(&p, "alarms_present", 4.0);
    assert_num(&p, "load_pct", 104.0);
    assert_num(&p, "runtime_remaining_s", 180.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmpv1_reads_and_skips_a_missing_oid() {
    // SNMPv1 refuses the whole GET for one missing OID (noSuchName): the poller takes
    // it out and asks again; the table walks use GETNEXT.
    let sim = Snmpsim::start(&[("ups-battery", UPS_BATTERY)], None);
    let a = agent(
        "it-ups-v1",
        &sim.addr(),
        Credentials::V1 {
            community: "ups-battery".into(),
        },
        profile("ups-mib.toml"),
        500,
    );
    let p = poll_once(a, "v1 data", comm_ok).await;
    assert_val(&p, "on_battery", Value::Bool(true));
    assert_num(&p, "battery_charge_pct", 64.0);
    assert_num(&p, "load_pct", 38.0);
    assert_num(&p, "alarms_present", 1.0);
    assert_eq!(quality(&p, "load_l2_pct"), Some(Quality::NoSuchObject));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apc_powernet_recordings_on_mains_and_on_battery() {
    let sim = Snmpsim::start(
        &[("apc-mains", APC_MAINS), ("apc-battery", APC_BATTERY)],
        None,
    );
    let apc = profile("apc-powernet.toml");
    let p = read_recording(&sim, "it-apc-mains", "apc-mains", apc.clone(), "apc mains").await;
    assert_val(&p, "output_source", Value::Enum("normal"));
    assert_val(&p, "on_battery", Value::Bool(false));
    assert_val(&p, "battery_status", Value::Enum("normal"));
    assert_val(&p, "battery_replace", Value::Bool(false));
    assert_num(&p, "battery_charge_pct", 100.0);
    assert_num(&p, "battery_temperature_c", 26.0);
    assert_num(&p, "runtime_remaining_s", 4320.0);
    assert_num(&p, "battery_voltage_v", 27.0);
    assert_num(&p, "input_voltage_v", 229.0);
    assert_num(&p, "input_frequency_hz", 50.0);
    assert_num(&p, "output_voltage_v", 230.0);
    assert_num(&p, "load_pct", 23.0);
    assert_num(&p, "output_power_kw", 1.38);
    assert!(
        p.samples.iter().all(|s| s.quality == Quality::Good),
        "{:?}",
        p.samples
    );

    let p = read_recording(
        &sim,
        "it-apc-battery",
        "apc-battery",
        apc.clone(),
        "apc battery",
    )
    .await;
    assert_val(&p, "output_source", Value::Enum("on_battery"));
    assert_val(&p, "on_battery", Value::Bool(true));
    assert_val(&p, "battery_replace", Value::Bool(true));
    assert_num(&p, "battery_charge_pct", 87.0);
    assert_num(&p, "runtime_remaining_s", 1800.0);
    assert_num(&p, "input_voltage_v", 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netbotz_climate_door_and_leak_and_a_number_sent_as_a_string() {
    let rec = netbotz_recording();
    let sim = Snmpsim::start(&[("netbotz", rec.as_str())], None);
    let p = read_recording(
        &sim,
        "it-nb-climate",
        "netbotz",
        profile("netbotz-climate.toml"),
        "climate",
    )
    .await;
    assert_num(&p, "temperature_c", 23.5);
    assert_num(&p, "humidity_pct", 45.6);
    assert_num(&p, "dew_point_c", 10.9);
    let p = read_recording(
        &sim,
        "it-nb-door",
        "netbotz",
        profile("netbotz-door.toml"),
        "door",
    )
    .await;
    assert_val(&p, "door_open", Value::Bool(true));
    let p = read_recording(
        &sim,
        "it-nb-leak",
        "netbotz",
        profile("netbotz-leak.toml"),
        "leak",
    )
    .await;
    assert_val(&p, "leak_detected", Value::Bool(true));

    // tempSensorValueStr: the reading as an OCTET STRING.
    let text = "id = \"nb-str\"\nkind = \"climate\"\nprotocol = \"snmp\"\n[[points]]\npoint = \"temperature_c\"\nwalk = \"1.3.6.1.4.1.5528.100.4.1.1.1.7\"\nsource = \"NETBOTZV2-MIB tempSensorValueStr (column 1.3.6.1.4.1.5528.100.4.1.1.1.7), DisplayString, degrees Celsius\"\n";
    let prof = Arc::new(snmp::parse_profile(text, "nb-str.toml").unwrap());
    let p = read_recording(&sim, "it-nb-str", "netbotz", prof, "string temperature").await;
    assert_num(&p, "temperature_c", 23.5);
}

// --- Traps -------------------------------------------------------------------------------

const TRAP_ENGINE: &str = "0x80001f8880aabbccdd01";

async fn receiver(
    cfg: TrapConfig,
    agents: Vec<TrapAgent>,
) -> (snmp::TrapReceiver, mpsc::Receiver<Poll>, String) {
    let (tx, rx) = mpsc::channel(64);
    let r = snmp::spawn_traps(cfg, agents, tx)
        .await
        .expect("trap receiver starts");
    let target = format!("127.0.0.1:{}", r.local_addr.port());
    (r, rx, target)
}

fn trap_config(dir: &std::path::Path) -> TrapConfig {
    let mut cfg = TrapConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.communities = vec!["trapcommunity".into()];
    cfg.users = vec![V3User {
        name: "trapuser".into(),
        auth: Some((AuthProto::Sha256, "trap-auth-key".into())),
        privacy: Some((PrivProto::Aes128, "trap-priv-key".into())),
    }];
    cfg.state_dir = Some(dir.to_path_buf());
    cfg
}

fn trap_agent(id: &str, prof: Arc<SnmpProfile>, trigger: Option<snmp::PollTrigger>) -> TrapAgent {
    TrapAgent {
        source: IpAddr::V4(Ipv4Addr::LOCALHOST),
        meta: meta(id, prof.kind),
        profile: prof,
        engine_id: snmp::config::parse_engine_id(TRAP_ENGINE),
        trigger,
    }
}

fn sent(out: std::process::Output) {
    assert!(
        out.status.success(),
        "snmptrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_battery_trap_gives_a_poll_within_1s_then_a_confirming_poll() {
    let sim = Snmpsim::start(&[("ups-battery", UPS_BATTERY)], None);
    let ups = profile("ups-mib.toml");
    // A slow poller (1 min): any poll after the first is the confirming one.
    let (ptx, mut prx) = mpsc::channel(16);
    let task = snmp::spawn(
        agent(
            "it-trap-ups",
            &sim.addr(),
            v2c("ups-battery"),
            ups.clone(),
            60_000,
        ),
        ptx,
    );
    poll_where(&mut prx, "the first scheduled poll", comm_ok).await;

    let dir = tempfile::tempdir().unwrap();
    let (_r, mut rx, target) = receiver(
        trap_config(dir.path()),
        vec![trap_agent(
            "it-trap-ups",
            ups.clone(),
            Some(task.trigger.clone()),
        )],
    )
    .await;

    // RFC 1628 upsTrapOnBattery with upsEstimatedMinutesRemaining.0 = 12.
    let start = Instant::now();
    sent(snmptrap(&[
        "-v2c",
        "-c",
        "trapcommunity",
        &target,
        "",
        "1.3.6.1.2.1.33.2.1",
        "1.3.6.1.2.1.33.1.2.3.0",
        "i",
        "12",
        "1.3.6.1.2.1.33.1.2.2.0",
        "i",
        "95",
    ]));
    let p = next_poll(&mut rx, Duration::from_secs(2), "a poll from the trap").await;
    let latency = start.elapsed();
    assert!(
        latency < Duration::from_secs(1),
        "trap to poll took {latency:?}"
    );
    assert_eq!(&*p.device.id, "it-trap-ups");
    assert_val(&p, "on_battery", Value::Bool(true));
    assert_val(&p, "output_source", Value::Enum("on_battery"));
    assert_num(&p, "runtime_remaining_s", 720.0);
    assert!(
        quality(&p, "battery_charge_pct").is_none(),
        "a trap sets only what it speaks about"
    );

    // The confirming poll of the agent comes long before its 60 s period.
    let confirm = next_poll(&mut prx, Duration::from_secs(5), "a confirming poll").await;
    assert!(confirm.comm_ok);
    assert_val(&confirm, "on_battery", Value::Bool(true));
    assert_num(&confirm, "battery_charge_pct", 64.0);
    // The hub tells a trap's poll from a poll by this (docs/PAGING.md, "Page only on
    // what is confirmed"): a poll has one sample per mapped point, a trap's fewer.
    assert!(
        p.samples.len() < ups.points.len(),
        "{} samples",
        p.samples.len()
    );
    assert_eq!(confirm.samples.len(), ups.points.len());
    task.handle.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_entry_v1_apc_and_v3_traps_are_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let ups = profile("ups-mib.toml");
    let (_r, mut rx, target) = receiver(
        trap_config(dir.path()),
        vec![trap_agent("it-trap-multi", ups.clone(), None)],
    )
    .await;

    // upsTrapAlarmEntryAdded with upsAlarmDescr.7 = upsAlarmOnBypass.
    sent(snmptrap(&[
        "-v2c",
        "-c",
        "trapcommunity",
        &target,
        "",
        "1.3.6.1.2.1.33.2.3",
        "1.3.6.1.2.1.33.1.6.2.1.2.7",
        "o",
        "1.3.6.1.2.1.33.1.6.3.9",
    ]));
    let p = next_poll(&mut rx, Duration::from_secs(3), "alarm added").await;
    assert_val(&p, "on_bypass", Value::Bool(true));
    assert_val(&p, "output_source", Value::Enum("on_bypass"));
    // ... and removed.
    sent(snmptrap(&[
        "-v2c",
        "-c",
        "trapcommunity",
        &target,
        "",
        "1.3.6.1.2.1.33.2.4",
        "1.3.6.1.2.1.33.1.6.2.1.2.7",
        "o",
        "1.3.6.1.2.1.33.1.6.3.9",
    ]));
    let p = next_poll(&mut rx, Duration::from_secs(3), "alarm removed").await;
    assert_val(&p, "on_bypass", Value::Bool(false));

    // SNMPv1: RFC 1628 upsTrapOnBattery as enterprise upsTraps, specific 1.
    sent(snmptrap(&[
        "-v1",
        "-c",
        "trapcommunity",
        &target,
        "1.3.6.1.2.1.33.2",
        "127.0.0.1",
        "6",
        "1",
        "",
    ]));
    let p = next_poll(&mut rx, Duration::from_secs(3), "v1 trap").await;
    assert_val(&p, "on_battery", Value::Bool(true));

    // SNMPv3 authPriv trap from the configured engine ID.
    sent(snmptrap(&[
        "-v3",
        "-e",
        TRAP_ENGINE,
        "-u",
        "trapuser",
        "-l",
        "authPriv",
        "-a",
        "SHA-256",
        "-A",
        "trap-auth-key",
        "-x",
        "AES",
        "-X",
        "trap-priv-key",
        &target,
        "",
        "1.3.6.1.2.1.33.2.1",
    ]));
    let p = next_poll(&mut rx, Duration::from_secs(3), "v3 trap").await;
    assert_val(&p, "on_battery", Value::Bool(true));

    // APC PowerNet-MIB upsOnBattery (ENTERPRISE apc, specific 5), v1.
    let apc = profile("apc-powernet.toml");
    let dir2 = tempfile::tempdir().unwrap();
    let (_r2, mut rx2, target2) = receiver(
        trap_config(dir2.path()),
        vec![trap_agent("it-trap-apc", apc, None)],
    )
    .await;
    sent(snmptrap(&[
        "-v1",
        "-c",
        "trapcommunity",
        &target2,
        "1.3.6.1.4.1.318",
        "127.0.0.1",
        "6",
        "5",
        "",
        "1.3.6.1.4.1.318.2.3.1.0",
        "s",
        "UPS: On battery power in response to an input power problem.",
    ]));
    let p = next_poll(&mut rx2, Duration::from_secs(3), "apc v1 trap").await;
    assert_eq!(&*p.device.id, "it-trap-apc");
    assert_val(&p, "on_battery", Value::Bool(true));
    // ... and powerRestored as a v2c trap (RFC 3584 form apc.0.9).
    sent(snmptrap(&[
        "-v2c",
        "-c",
        "trapcommunity",
        &target2,
        "",
        "1.3.6.1.4.1.318.0.9",
    ]));
    let p = next_poll(&mut rx2, Duration::from_secs(3), "apc v2c trap").await;
    assert_val(&p, "on_battery", Value::Bool(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_with_wrong_credentials_engine_or_source_are_rejected_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ups = profile("ups-mib.toml");
    let (_r, mut rx, target) = receiver(
        trap_config(dir.path()),
        vec![trap_agent("it-trap-reject", ups, None)],
    )
    .await;
    let on_battery = "1.3.6.1.2.1.33.2.1";

    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "bad_community",
            vec!["-v2c", "-c", "not-the-community", &target, "", on_battery],
        ),
        (
            "wrong_digest",
            vec![
                "-v3",
                "-e",
                TRAP_ENGINE,
                "-u",
                "trapuser",
                "-l",
                "authPriv",
                "-a",
                "SHA-256",
                "-A",
                "wrong-auth-key",
                "-x",
                "AES",
                "-X",
                "trap-priv-key",
                &target,
                "",
                on_battery,
            ],
        ),
        (
            "unknown_engine_id",
            vec![
                "-v3",
                "-e",
                "0x80001f8880deadbeef99",
                "-u",
                "trapuser",
                "-l",
                "authPriv",
                "-a",
                "SHA-256",
                "-A",
                "trap-auth-key",
                "-x",
                "AES",
                "-X",
                "trap-priv-key",
                &target,
                "",
                on_battery,
            ],
        ),
        (
            "security_level",
            vec![
                "-v3",
                "-e",
                TRAP_ENGINE,
                "-u",
                "trapuser",
                "-l",
                "authNoPriv",
                "-a",
                "SHA-256",
                "-A",
                "trap-auth-key",
                &target,
                "",
                on_battery,
            ],
        ),
        (
            "unknown_source",
            vec![
                "-v2c",
                "-c",
                "trapcommunity",
                "--clientaddr=127.0.0.2",
                &target,
                "",
                on_battery,
            ],
        ),
    ];
    for (reason, args) in cases {
        let before = trap_rejects(reason);
        sent(snmptrap(&args));
        let deadline = Instant::now() + Duration::from_secs(5);
        while trap_rejects(reason) == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            trap_rejects(reason) > before,
            "{reason}: not counted in dcgw_bad_input{{what=\"snmp_trap\"}}"
        );
        assert!(
            rx.try_recv().is_err(),
            "{reason}: a rejected trap produced a poll"
        );
    }
    // The receiver still works after all that.
    sent(snmptrap(&[
        "-v2c",
        "-c",
        "trapcommunity",
        &target,
        "",
        on_battery,
    ]));
    let p = next_poll(
        &mut rx,
        Duration::from_secs(3),
        "a good trap after rejected ones",
    )
    .await;
    assert_val(&p, "on_battery", Value::Bool(true));
}

// --- Isolation ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dead_agent_does_not_slow_the_four_others() {
    let sim = Snmpsim::start(&[("ups-mains", UPS_MAINS)], None);
    let ups = profile("ups-mib.toml");
    // Bound but silent: every request to it times out (3 tries of 400 ms).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = silent.local_addr().unwrap().to_string();
    let interval = Duration::from_millis(500);
    let (tx, mut rx) = mpsc::channel(256);
    let mut tasks = Vec::new();
    let mut dead = agent(
        "it-iso-dead",
        &dead_addr,
        v2c("ups-mains"),
        ups.clone(),
        500,
    );
    dead.timeout = Duration::from_millis(400);
    dead.retries = 2;
    tasks.push(snmp::spawn(dead, tx.clone()));
    for i in 0..4 {
        tasks.push(snmp::spawn(
            agent(
                &format!("it-iso-{i}"),
                &sim.addr(),
                v2c("ups-mains"),
                ups.clone(),
                500,
            ),
            tx.clone(),
        ));
    }
    drop(tx);
    let mut seen: HashMap<String, Vec<(Instant, bool)>> = HashMap::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            seen.entry(p.device.id.to_string())
                .or_default()
                .push((Instant::now(), p.comm_ok));
        }
    }
    for t in &tasks {
        t.handle.abort();
    }
    let dead_polls = seen.get("it-iso-dead").map(Vec::len).unwrap_or(0);
    assert!(
        dead_polls >= 2,
        "the dead agent must still report (timeout) polls: {dead_polls}"
    );
    assert!(seen["it-iso-dead"].iter().all(|(_, ok)| !ok));
    for i in 0..4 {
        let id = format!("it-iso-{i}");
        let polls = &seen[&id];
        assert!(polls.iter().all(|(_, ok)| *ok), "{id}: a failed poll");
        // 6 s at 500 ms: about 12 polls; the dead agent's 1.2 s cycles must not show.
        assert!(polls.len() >= 10, "{id}: only {} polls in 6 s", polls.len());
        let gaps: Vec<Duration> = polls.windows(2).map(|w| w[1].0 - w[0].0).collect();
        let worst = gaps.iter().max().copied().unwrap_or_default();
        assert!(
            worst < interval + Duration::from_millis(300),
            "{id}: a gap of {worst:?} between polls"
        );
    }
}
