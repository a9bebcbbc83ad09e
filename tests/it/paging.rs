//! Paging end to end: the gateway binary with a roster, an `sms` sink on the scripted
//! modem (a `socat` pty, tests/it/sms_modem.py, every PDU decoded by PyPI's
//! `smspdudecoder`) and an MQTT sink on Mosquitto, reading a pymodbus sensor.
//!
//! A serious alarm texts the person on call (and publishes the same notification on
//! `<prefix>/notify/<person>`), is texted again while nobody acknowledges it, and a
//! reply "OK <no>" from that person's phone acknowledges it through the command path
//! (journaled with `by` = the person and origin `sms`), is answered, and stops the
//! escalation: no more texts and no call about it.

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::e2e::{Gateway, site};
use crate::peers::{
    ModbusServer, ModbusSpec, Mosquitto, MosquittoOpts, PtyPair, ScriptedModem, UnitSpec,
    free_port, peer_tempdir,
};

/// The on-call engineer's phone (11 digits, as the scripted modem's sender addresses).
const PHONE: &str = "+84987654321";

/// A text being put together from its parts.
type Concat = (Option<u64>, Vec<(u64, String)>, u64);

/// The whole texts sent to `to`, in order: the parts of a concatenated text (one
/// reference) joined, each as `{"content": ...}`; only complete texts.
pub(crate) fn texts_to(modem: &ScriptedModem, to: &str) -> Vec<Json> {
    // (concatenation reference, parts received (number, text), parts in all)
    let mut out: Vec<Concat> = Vec::new();
    for e in modem.entries() {
        if e["recipient"] != to || e.get("content").is_none() {
            continue;
        }
        let content = e["content"].as_str().unwrap_or_default().to_string();
        let c = &e["concat"];
        if c.is_null() {
            out.push((None, vec![(1, content)], 1));
            continue;
        }
        let r = c["reference"].as_u64();
        let (part, count) = (
            c["part_number"].as_u64().unwrap_or(1),
            c["parts_count"].as_u64().unwrap_or(1),
        );
        match out
            .iter_mut()
            .rev()
            .find(|(x, parts, n)| *x == r && (parts.len() as u64) < *n)
        {
            Some((_, parts, _)) if !parts.iter().any(|p| p.0 == part) => {
                parts.push((part, content))
            }
            _ => out.push((r, vec![(part, content)], count)),
        }
    }
    out.into_iter()
        .filter(|(_, parts, n)| parts.len() as u64 == *n)
        .map(|(_, mut parts, _)| {
            parts.sort();
            serde_json::json!({"content": parts.into_iter().map(|p| p.1).collect::<String>()})
        })
        .collect()
}

fn wait(what: &str, limit: Duration, gw: &Gateway, cond: impl FnMut() -> bool) {
    crate::peers::wait_until(what, limit, cond)
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
}

#[test]
fn a_serious_alarm_texts_the_person_on_call_and_a_reply_acknowledges_it() {
    let pty = PtyPair::start();
    let modem = ScriptedModem::start(&pty.device, 0);
    // 23.5 °C / 54.6 %RH (the XY-MD02 manual's example): no alarm yet.
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let broker = Mosquitto::start(MosquittoOpts::default());
    let sub = broker.subscribe("dcgw/pg/#");
    let dir = peer_tempdir("paging");
    // Texts again every 6 s, rings after 12 s: both must stop at the acknowledgement.
    // Normal alarms (the rate of change of a jump to 40 °C) are not paged here, and
    // storm control allows 10 texts per window, so the repeats are not held.
    let extra = format!(
        r#"[[sinks]]
name = "mqtt"
kind = "mqtt"
url = "mqtt://127.0.0.1:{mqtt}"
accepts = ["alarms", "notifications"]

[[sinks]]
name = "modem"
kind = "sms"
port = "{port}"
command_timeout_ms = 1500

[paging]
repeat_min = 0.1
call_after_min = 0.2
page_normal = false
storm_max = 10

[[paging.people]]
id = "an"
name = "Nguyen Van An"
phone = "{PHONE}"
language = "en"

[[paging.shifts]]
person = "an"
when = ["daily 00:00-24:00"]
"#,
        mqtt = broker.port,
        port = pty.gateway.display(),
    );
    let gw = Gateway::start(
        &site("pg", free_port(), modbus.addr().port(), 500, &extra),
        dir.path(),
    );
    let oncall = gw.api("/api/v1/oncall");
    assert_eq!(oncall["now"]["person"], "an", "{oncall}");
    assert_eq!(oncall["now"]["phone"], PHONE, "{oncall}");
    // `dc-gateway oncall` reads the same roster from the site file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["oncall", "--config"])
        .arg(dir.path().join("site.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains(&format!("on call now: Nguyen Van An (an, {PHONE}) [shift]")),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait("the modem set up", Duration::from_secs(15), &gw, || {
        modem.entries().iter().any(|e| e["cmd"] == "AT+CSQ")
    });
    // `test_notification` through the command path (the board's local socket): a test
    // text to the person on call proves the path before anything goes wrong.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args([
            "command",
            "test_notification",
            "--by",
            "installer",
            "--state-dir",
        ])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait("the test text", Duration::from_secs(10), &gw, || {
        texts_to(&modem, PHONE).iter().any(|t| {
            t["content"]
                .as_str()
                .is_some_and(|c| c.starts_with("Test message from dc-gateway"))
        })
    });

    // 0x0190 = 40.0 °C: above the serious limit (32 °C).
    modbus.set_input(1, 1, &[0x0190]);
    let t0 = Instant::now();
    // The person's language is English: the alarm is said in English (the site's
    // texts are Vietnamese by default; this test site is English too).
    let is_page = |t: &Json| {
        t["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("Serious incident #"))
    };
    wait(
        "the page reached the modem",
        Duration::from_secs(10),
        &gw,
        || texts_to(&modem, PHONE).iter().any(is_page),
    );
    let page = texts_to(&modem, PHONE).into_iter().find(is_page).unwrap();
    let content = page["content"].as_str().unwrap().to_string();
    // 40 °C raises the serious temperature alarm (and others, e.g. the normal rate of
    // change, not paged here): follow the one paged first.
    let no: u64 = content
        .split_once('#')
        .and_then(|(_, r)| r.split(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no alarm number in {content}"));
    let alarms = gw.api("/api/v1/alarms");
    let alarm = alarms["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["no"] == no)
        .unwrap_or_else(|| panic!("no alarm {no}: {alarms}"))
        .clone();
    assert_eq!(alarm["level"], "serious");
    assert!(
        content.contains(&format!("Reply \"OK {no}\" to acknowledge.")),
        "{content}"
    );
    let about = |t: &Json| {
        t["content"]
            .as_str()
            .is_some_and(|c| c.contains(&format!("\"OK {no}\"")))
    };
    // The same notification on MQTT, for bridges, with its attempt number.
    let notify = |m: &[crate::peers::MqttMessage]| -> Vec<Json> {
        m.iter()
            .filter(|x| x.topic == "dcgw/pg/notify/an")
            .filter_map(|x| serde_json::from_str(&x.payload_str()).ok())
            .collect()
    };
    let got = sub
        .wait_for(
            |m| notify(m).iter().any(|n| n["alarm"] == no),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    let n = notify(&got).into_iter().find(|n| n["alarm"] == no).unwrap();
    assert_eq!(
        (
            n["person"].as_str(),
            n["attempt"].as_u64(),
            n["text"].as_str()
        ),
        (Some("an"), Some(1), Some(content.as_str())),
        "{n}"
    );

    // Not acknowledged: texted again (attempt 2 on MQTT).
    wait("the repeat", Duration::from_secs(15), &gw, || {
        texts_to(&modem, PHONE).iter().filter(|t| about(t)).count() >= 2
    });
    assert!(
        t0.elapsed() >= Duration::from_secs(5),
        "repeated too early: {:?}",
        t0.elapsed()
    );
    assert!(
        sub.on_topic("dcgw/pg/notify/an")
            .iter()
            .filter_map(|m| serde_json::from_str::<Json>(&m.payload_str()).ok())
            .any(|n| n["alarm"] == no && n["attempt"] == 2),
        "attempt 2 on MQTT"
    );
    assert!(
        !modem.entries().iter().any(|e| e.get("call").is_some()),
        "no call before call_after_min"
    );

    // A text from a number not in the roster is ignored; one the gateway does not
    // understand from the person is answered with how to reply; then the person's
    // reply acknowledges.
    modem.receive("+84911111111", &format!("OK {no}"));
    std::thread::sleep(Duration::from_millis(600));
    modem.receive(PHONE, "what?");
    wait("the help text", Duration::from_secs(10), &gw, || {
        texts_to(&modem, PHONE).iter().any(|t| {
            t["content"]
                .as_str()
                .is_some_and(|c| c.starts_with("Reply not understood. Send \"OK <no>\""))
        })
    });
    modem.receive(PHONE, &format!("ok {no}"));
    wait(
        "the alarm acknowledged",
        Duration::from_secs(10),
        &gw,
        || {
            gw.api("/api/v1/alarms")["alarms"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["no"] == no && x["state"] == "acked"))
        },
    );
    let acked_at = Instant::now();
    let alarms = gw.api("/api/v1/alarms");
    let a = alarms["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["no"] == no)
        .unwrap();
    assert_eq!(a["acked_by"], "an", "{a}");
    let journal = gw.api("/api/v1/journal?kind=command");
    let cmd = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["verb"] == "ack")
        .unwrap_or_else(|| panic!("no ack command journaled: {journal}"));
    assert_eq!(cmd["by"], "an");
    assert_eq!(cmd["origin"]["entry"], "sms");
    assert_eq!(cmd["origin"]["peer"], PHONE);
    assert_eq!(cmd["reply"]["ok"], true);
    // The person is told; the stranger is not answered (journaled, counted).
    wait(
        "the confirmation text",
        Duration::from_secs(10),
        &gw,
        || {
            texts_to(&modem, PHONE).iter().any(|t| {
                t["content"]
                    .as_str()
                    .is_some_and(|c| c.contains(&format!("Alarm #{no} acknowledged")))
            })
        },
    );
    assert!(
        texts_to(&modem, "+84911111111").is_empty(),
        "a stranger is not answered"
    );
    let metrics = crate::peers::http_get(&format!("http://{}/metrics", gw.web)).unwrap();
    let metrics = String::from_utf8_lossy(&metrics.body);
    for want in [
        "dcgw_notifications_total{what=\"page\"}",
        "dcgw_notifications_total{what=\"repeat\"}",
        "dcgw_notifications_total{what=\"reply\"}",
        // The scripted modem's own two stored texts come from numbers not in the roster
        // too: 3 in all.
        "dcgw_bad_input_total{what=\"sms_reply\",reason=\"unknown_sender\"} 3",
        "dcgw_bad_input_total{what=\"sms_reply\",reason=\"malformed\"} 1",
    ] {
        assert!(
            metrics.contains(want),
            "missing {want} in /metrics:\n{metrics}"
        );
    }
    let notes = gw.api("/api/v1/journal?kind=notification");
    assert!(
        notes["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == "+84911111111"
                && e["result"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("ignored"))),
        "{notes}"
    );
    let sent: Vec<&Json> = notes["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "sent" && e["alarm"] == no)
        .collect();
    assert!(sent.len() >= 2, "every attempt journaled: {notes}");
    assert_eq!(sent[0]["attempt"], 1);
    assert_eq!(sent[1]["attempt"], 2);

    // Escalation stopped: past the next repeat and the call time, nothing more about it.
    let texts_then = texts_to(&modem, PHONE).iter().filter(|t| about(t)).count();
    while acked_at.elapsed() < Duration::from_secs(8) || t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        texts_to(&modem, PHONE).iter().filter(|t| about(t)).count(),
        texts_then,
        "texted about alarm {no} after its acknowledgement"
    );
    // The other alarm (not acknowledged) rang the phone once: one call per storm window
    // and person, so a ring about alarm {no} cannot be told apart on the modem; the
    // journal says which alarm each call was about.
    let notes = gw.api("/api/v1/journal?kind=notification");
    assert!(
        !notes["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["call"] == true && e["alarm"] == no),
        "rang about alarm {no} after its acknowledgement: {notes}"
    );
}

/// A trap is news, not truth (a v2c trap is a community in clear text): the gateway
/// binary raises the alarm a trap reports at once, but pages nobody until the confirming
/// poll agrees — here the agent (snmpsim serving a UPS on mains) contradicts it, so the
/// alarm clears, nobody is paged, and the journal says the trap was contradicted.
#[test]
fn a_trap_the_confirming_poll_contradicts_pages_nobody() {
    use crate::peers::{Snmpsim, snmptrap};
    use std::os::unix::fs::PermissionsExt;

    let sim = Snmpsim::start(&[("ups-mains", crate::snmp::UPS_MAINS)], None);
    let dir = peer_tempdir("paging-trap");
    let secret = |name: &str, value: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, value).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.display().to_string()
    };
    let trap_port = free_port();
    let web = free_port();
    let (host, port) = sim
        .addr()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap();
    let cfg = format!(
        r#"
[site]
name = "pgtrap"
language = "en"

[[rooms]]
id = "power"

[web]
listen = "127.0.0.1:{web}"

[[devices]]
id = "ups1"
room = "power"
kind = "ups"
profile = "ups-mib"
poll_interval_ms = 60000
timeout_ms = 1000
[devices.snmp]
host = "{host}"
port = {port}
version = "2c"
community = {{ file = "{community}" }}

[snmp_traps]
listen = "127.0.0.1:{trap_port}"
communities = [ {{ file = "{trapcomm}" }} ]

[paging]
trap_confirm_s = 20

[[paging.people]]
id = "an"
phone = "{PHONE}"

[[paging.shifts]]
person = "an"
when = ["daily 00:00-24:00"]
"#,
        community = secret("community", "ups-mains"),
        trapcomm = secret("trapcomm", "trapcommunity"),
    );
    let gw = Gateway::start(&cfg, dir.path());
    // The first scheduled poll: on mains, no alarm.
    wait("the first poll", Duration::from_secs(15), &gw, || {
        gw.api("/api/v1/readings")["readings"]
            .as_array()
            .is_some_and(|r| {
                r.iter()
                    .any(|x| x["point"] == "on_battery" && x["value"] == false)
            })
    });
    // RFC 1628 upsTrapOnBattery: the UPS says it is on battery.
    let out = snmptrap(&[
        "-v2c",
        "-c",
        "trapcommunity",
        &format!("127.0.0.1:{trap_port}"),
        "",
        "1.3.6.1.2.1.33.2.1",
        "1.3.6.1.2.1.33.1.2.3.0",
        "i",
        "12",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alarm_events = |state: &str| -> Vec<Json> {
        gw.api("/api/v1/journal?kind=alarm")["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["rule"] == "on_battery" && e["state"] == state)
            .cloned()
            .collect()
    };
    wait(
        "the alarm the trap raised, cleared by the confirming poll",
        Duration::from_secs(10),
        &gw,
        || !alarm_events("raised").is_empty() && !alarm_events("cleared").is_empty(),
    );
    let no = alarm_events("raised")[0]["no"].as_u64().unwrap();
    let notes = gw.api("/api/v1/journal?kind=notification");
    let entries = notes["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["event"] == "trap_contradicted"
            && e["alarm"] == no
            && e["device"] == "ups1"),
        "{notes}"
    );
    assert!(
        !entries
            .iter()
            .any(|e| e["event"] == "sent" && e["alarm"] == no),
        "paged on a trap the poll contradicted: {notes}"
    );
}

/// A storm from one cause, end to end: 50 XY-MD02 sensors in one room behind one pymodbus
/// endpoint (one unit answering for all 50, as a Modbus gateway in front of a bus does)
/// all go above the serious limit at once. Storm control (`storm_max = 2` per group and
/// window) lets the first 2 pages out and holds the rest for one summary at the end of
/// the 10 s window: at most 3 texts reach the person's phone, counted at the scripted
/// modem, though 50 serious alarms are raised.
#[test]
fn fifty_alarms_from_one_cause_are_at_most_three_texts() {
    let pty = PtyPair::start();
    let modem = ScriptedModem::start(&pty.device, 0);
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let dir = peer_tempdir("paging-storm");
    let web = free_port();
    let mut cfg = format!(
        r#"
[site]
name = "pgstorm"
language = "en"

[[rooms]]
id = "server1"

[web]
listen = "127.0.0.1:{web}"

[[sinks]]
name = "modem"
kind = "sms"
port = "{port}"
command_timeout_ms = 1500

[paging]
repeat_min = 0
call_after_min = 0
page_normal = false
storm_window_s = 10
storm_max = 2

[[paging.people]]
id = "an"
phone = "{PHONE}"
language = "en"

[[paging.shifts]]
person = "an"
when = ["daily 00:00-24:00"]
"#,
        port = pty.gateway.display(),
    );
    for i in 1..=50 {
        cfg.push_str(&format!(
            r#"
[[devices]]
id = "th{i}"
room = "server1"
kind = "climate"
profile = "xy-md02"
poll_interval_ms = 1000
timeout_ms = 500
[devices.modbus_tcp]
host = "127.0.0.1"
port = {mb}
unit_id = 1
[devices.rules.temperature_high]
on_delay_s = 0
"#,
            mb = modbus.addr().port()
        ));
    }
    let gw = Gateway::start(&cfg, dir.path());
    wait("the modem set up", Duration::from_secs(15), &gw, || {
        modem.entries().iter().any(|e| e["cmd"] == "AT+CSQ")
    });
    // 0x0190 = 40.0 °C on every sensor: 50 serious temperature_high alarms.
    modbus.set_input(1, 1, &[0x0190]);
    let serious = || {
        gw.api("/api/v1/alarms")["alarms"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["rule"] == "temperature_high" && x["level"] == "serious")
                    .count()
            })
            .unwrap_or(0)
    };
    wait("50 serious alarms", Duration::from_secs(10), &gw, || {
        serious() == 50
    });
    let is_summary = |t: &Json| {
        t["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("Alarm storm ("))
    };
    // The window (10 s from the first page) ends; the summary goes out.
    wait("the storm summary", Duration::from_secs(20), &gw, || {
        texts_to(&modem, PHONE).iter().any(is_summary)
    });
    // Nothing more follows within the next second and a half.
    std::thread::sleep(Duration::from_millis(1500));
    let texts = texts_to(&modem, PHONE);
    let pdus = modem
        .entries()
        .iter()
        .filter(|e| e["recipient"] == PHONE && e.get("content").is_some())
        .count();
    assert!(
        texts.len() <= 3,
        "{} texts ({pdus} PDUs) for one storm: {texts:?}",
        texts.len()
    );
    let pages = texts
        .iter()
        .filter(|t| {
            t["content"]
                .as_str()
                .is_some_and(|c| c.starts_with("Serious incident #"))
        })
        .count();
    assert_eq!(pages, 2, "storm_max pages before holding: {texts:?}");
    let summary = texts.iter().find(|t| is_summary(t)).unwrap();
    assert!(
        summary["content"]
            .as_str()
            .unwrap()
            .contains("48 more alarms"),
        "{summary}"
    );
    // Every held alarm is journaled as held, none lost.
    let notes = gw.api("/api/v1/journal?kind=notification&limit=1000");
    let held = notes["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "held")
        .count();
    assert!(held >= 48, "{held} held texts journaled: {notes}");
}

/// Who pages when the modem fails: the modem refuses the page (`+CMS ERROR: 331`, no
/// network service) and then stops answering at all. The gateway raises its own serious
/// `modem_fault` alarm, and the notification about the alarm that was being paged still
/// reaches `<prefix>/notify/<person>` on Mosquitto for the bridges, as does the page
/// about the modem itself.
#[test]
fn a_failing_modem_raises_an_alarm_and_mqtt_still_notifies() {
    let pty = PtyPair::start();
    // Every AT+CMGS is refused.
    let modem = ScriptedModem::start(&pty.device, 1000);
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let broker = Mosquitto::start(MosquittoOpts::default());
    let sub = broker.subscribe("dcgw/pgfail/#");
    let dir = peer_tempdir("paging-fail");
    let extra = format!(
        r#"[[sinks]]
name = "mqtt"
kind = "mqtt"
url = "mqtt://127.0.0.1:{mqtt}"
accepts = ["alarms", "notifications"]

[[sinks]]
name = "modem"
kind = "sms"
port = "{port}"
command_timeout_ms = 1000
check_interval_s = 1

[paging]
repeat_min = 0
call_after_min = 0
page_normal = false

[[paging.people]]
id = "an"
phone = "{PHONE}"
language = "en"

[[paging.shifts]]
person = "an"
when = ["daily 00:00-24:00"]
"#,
        mqtt = broker.port,
        port = pty.gateway.display(),
    );
    let gw = Gateway::start(
        &site("pgfail", free_port(), modbus.addr().port(), 500, &extra),
        dir.path(),
    );
    wait("the modem set up", Duration::from_secs(15), &gw, || {
        modem.entries().iter().any(|e| e["cmd"] == "AT+CSQ")
    });
    // 40 °C: a serious alarm, paged; the modem refuses the text.
    modbus.set_input(1, 1, &[0x0190]);
    wait("the page refused", Duration::from_secs(10), &gw, || {
        modem.entries().iter().any(|e| e.get("refused").is_some())
    });
    // Then the modem goes silent.
    modem.set_mode("silent");
    let notify = || -> Vec<Json> {
        sub.on_topic("dcgw/pgfail/notify/an")
            .iter()
            .filter_map(|m| serde_json::from_str(&m.payload_str()).ok())
            .collect()
    };
    let alarm_no = |rule: &str| -> Option<u64> {
        gw.api("/api/v1/alarms")["alarms"]
            .as_array()?
            .iter()
            .find(|a| a["rule"] == rule && a["level"] == "serious")?["no"]
            .as_u64()
    };
    wait(
        "the serious modem_fault alarm",
        Duration::from_secs(20),
        &gw,
        || alarm_no("modem_fault").is_some(),
    );
    // The refusal alone is a fault (serious at once); the silence that follows is seen
    // by the next health check, and the alarm stays.
    wait(
        "a command to the silent modem",
        Duration::from_secs(15),
        &gw,
        || modem.entries().iter().any(|e| e["mode"] == "silent"),
    );
    // Past the command timeout (1 s) and a health check (every 1 s): still a fault.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        gw.log().contains("did not answer") || gw.log().contains("no answer"),
        "the gateway saw no silence\n--- gateway log ---\n{}",
        gw.log()
    );
    let temp = alarm_no("temperature_high").expect("the temperature alarm is still active");
    let fault = alarm_no("modem_fault").expect("modem_fault still active while silent");
    // The temperature page reached MQTT though the modem refused it.
    wait(
        "both notifications on MQTT",
        Duration::from_secs(10),
        &gw,
        || {
            let n = notify();
            n.iter().any(|x| x["alarm"] == temp) && n.iter().any(|x| x["alarm"] == fault)
        },
    );
    let n = notify();
    let page = n.iter().find(|x| x["alarm"] == temp).unwrap();
    assert_eq!(page["person"], "an", "{page}");
    assert!(
        page["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Serious incident #")),
        "{page}"
    );
    // The alarm itself is published as raised too.
    assert!(
        sub.messages()
            .iter()
            .any(|m| m.topic.contains("alarm") && m.payload_str().contains("modem_fault")),
        "the modem_fault alarm event on MQTT"
    );
    // No text got through.
    assert!(
        texts_to(&modem, PHONE).is_empty(),
        "a refusing, then silent modem delivered a text?"
    );
}

/// Nobody answers, end to end: the person on call is texted, rung after `call_after_min`
/// and, still unacknowledged, the escalation step `next` texts the person whose turn
/// comes next in the rotation (on the modem and on `notify/<person>`), saying who did
/// not answer; that person's reply acknowledges the alarm. The real binary runs on the
/// wall clock, so the minutes are decimals (a call after 0.1 min, the step after
/// 0.15 min instead of 5 and 15; docs/PAGING.md); the 15- and 45-minute timeline itself is
/// the library's injected-clock test.
#[test]
fn no_reply_rings_and_escalates_to_the_next_person() {
    const NEXT: &str = "+84987654322";
    let pty = PtyPair::start();
    let modem = ScriptedModem::start(&pty.device, 0);
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let broker = Mosquitto::start(MosquittoOpts::default());
    let sub = broker.subscribe("dcgw/pgesc/notify/#");
    let dir = peer_tempdir("paging-escalate");
    // An's turn started two days ago (weekly turns); Binh's is next.
    let start = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_sub(jiff::Span::new().days(2))
        .unwrap();
    let extra = format!(
        r#"[[sinks]]
name = "mqtt"
kind = "mqtt"
url = "mqtt://127.0.0.1:{mqtt}"
accepts = ["notifications"]

[[sinks]]
name = "modem"
kind = "sms"
port = "{port}"
command_timeout_ms = 1500
call_ring_s = 1

[paging]
repeat_min = 0
call_after_min = 0.1
page_normal = false
escalate = [ {{ after_min = 0.15, to = "next" }} ]

[[paging.people]]
id = "an"
name = "An"
phone = "{PHONE}"
language = "en"

[[paging.people]]
id = "binh"
name = "Binh"
phone = "{NEXT}"
language = "en"

[[paging.rotations]]
people = ["an", "binh"]
start = "{start} 00:00"
every_days = 7
"#,
        mqtt = broker.port,
        port = pty.gateway.display(),
    );
    let gw = Gateway::start(
        &site("pgesc", free_port(), modbus.addr().port(), 500, &extra),
        dir.path(),
    );
    let oncall = gw.api("/api/v1/oncall");
    assert_eq!(oncall["now"]["person"], "an", "{oncall}");
    wait("the modem set up", Duration::from_secs(15), &gw, || {
        modem.entries().iter().any(|e| e["cmd"] == "AT+CSQ")
    });
    // 40 °C: serious.
    modbus.set_input(1, 1, &[0x0190]);
    let is_page = |t: &Json| {
        t["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("Serious incident #"))
    };
    wait("the page to An", Duration::from_secs(10), &gw, || {
        texts_to(&modem, PHONE).iter().any(is_page)
    });
    let paged = Instant::now();
    let content = texts_to(&modem, PHONE).into_iter().find(is_page).unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    let no: u64 = content
        .split_once('#')
        .and_then(|(_, r)| r.split(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no alarm number in {content}"));
    assert!(
        texts_to(&modem, NEXT).is_empty(),
        "Binh texted with the first page"
    );
    // No reply: An's phone rings (ATD<number>; at the modem), then Binh is texted.
    wait("the call to An", Duration::from_secs(15), &gw, || {
        modem
            .entries()
            .iter()
            .any(|e| e["call"].as_str() == Some(PHONE))
    });
    let rang = paged.elapsed();
    let escalated = |t: &Json| {
        t["content"].as_str().is_some_and(|c| {
            c.starts_with("Escalated: An has not acknowledged in ")
                && c.contains(&format!("\"OK {no}\""))
        })
    };
    wait(
        "the escalation to Binh",
        Duration::from_secs(15),
        &gw,
        || texts_to(&modem, NEXT).iter().any(escalated),
    );
    let stepped = paged.elapsed();
    // Rung at about 6 s, escalated at about 9 s after the page (the hub ticks every
    // second; the page itself left up to a second after the alarm).
    assert!(
        rang >= Duration::from_secs(4) && stepped >= Duration::from_secs(7) && rang <= stepped,
        "rang after {rang:?}, escalated after {stepped:?}"
    );
    assert!(
        !modem
            .entries()
            .iter()
            .any(|e| e["call"].as_str() == Some(NEXT)),
        "Binh rung before call_after_min of his own"
    );
    // The same on MQTT for bridges: Binh's notification about the alarm.
    sub.wait_for(
        |m| {
            m.iter().any(|x| {
                x.topic == "dcgw/pgesc/notify/binh"
                    && serde_json::from_str::<Json>(&x.payload_str())
                        .is_ok_and(|n| n["alarm"] == no && n["person"] == "binh")
            })
        },
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    // Binh answers: acknowledged, by Binh.
    modem.receive(NEXT, &format!("OK {no}"));
    wait("the acknowledgement", Duration::from_secs(10), &gw, || {
        gw.api("/api/v1/alarms")["alarms"]
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|x| x["no"] == no && x["state"] == "acked" && x["acked_by"] == "binh")
            })
    });
}
