//! The SMS sink against a scripted LTE modem on a socat pty (tests/it/sms_modem.py; its
//! behaviour cites 3GPP TS 27.005 / 27.007 and the SIM7600 / EC25 AT manuals). What
//! reached the modem is judged by the modem's own log, where every PDU was decoded by
//! PyPI's `smspdudecoder`, independently of our encoder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dc_gateway::model::{DeviceMeta, Kind, Language, Level, Poll, Quality, Sample, Timestamp};
use dc_gateway::rules::{Engine, defaults};
use dc_gateway::sinks::sms::{SmsConfig, SmsSink};
use dc_gateway::sinks::worker::{self, QueueConfig};
use dc_gateway::sinks::{Notification, Record};
use serde_json::Value as Json;

use crate::peers::{PtyPair, ScriptedModem};

fn note(id: &str, text: &str, call: bool) -> Notification {
    Notification {
        id: id.to_string(),
        ts: Timestamp::now(),
        person: "an".into(),
        phone: "+84912345678".into(),
        text: text.into(),
        lang: "vi".into(),
        alarm_no: Some(123),
        call,
        attempt: 1,
    }
}

async fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const VI: &str = "Cảnh báo NGHIÊM TRỌNG #123 (Điều 10.3): UPS phòng máy chủ 1 đang chạy bằng ắc quy, \
máy phát điện chưa khởi động. Còn 12 phút lưu điện. Trả lời \"OK 123\" để xác nhận đã nhận.";
const EN: &str = "Serious alarm #7: generator stopped {gen1} [room power] ~ 5 € | reply OK 7";

#[tokio::test(flavor = "multi_thread")]
async fn sms_through_a_modem_decode_exactly_then_a_failing_modem_is_a_serious_alarm() {
    let pty = PtyPair::start();
    // The first AT+CMGS is refused with +CMS ERROR: 331 (no network service).
    let modem = ScriptedModem::start(&pty.device, 1);
    let mut cfg = SmsConfig::new(pty.gateway.clone());
    cfg.command_timeout = Duration::from_millis(1500);
    cfg.send_timeout = Duration::from_secs(5);
    cfg.check_interval = Duration::from_secs(1);
    cfg.call_ring = Duration::from_secs(1);
    let sink = SmsSink::start("sms", &cfg);
    let handle = sink.handle();
    let (q, _task) = worker::spawn(
        sink,
        QueueConfig {
            batch_max: 1,
            linger: Duration::ZERO,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            live_first: false,
            ..Default::default()
        },
    );
    until(
        "the modem's start-up checks",
        Duration::from_secs(15),
        || handle.status().ok(),
    )
    .await;
    let st = handle.status();
    assert_eq!(st.signal_dbm, Some(-73.0), "+CSQ: 20 is -113 + 2*20 dBm");

    let vi = note("n-vi", VI, false);
    let en = note("n-en", EN, false);
    let call = note("n-call", "", true);
    for n in [&vi, &en, &call] {
        q.push(Record::Notification(Arc::new(n.clone())));
    }
    until(
        "three notifications delivered",
        Duration::from_secs(30),
        || q.status(Timestamp::now()).delivered == 3,
    )
    .await;
    until("the queue empty", Duration::from_secs(5), || q.is_empty()).await;
    assert!(
        q.status(Timestamp::now()).retried >= 1,
        "the +CMS ERROR was retried"
    );

    let log = modem.entries();
    assert!(
        !log.iter().any(|e| e.get("bad_length").is_some()),
        "every AT+CMGS length matched its PDU: {log:?}"
    );
    assert_eq!(log.iter().filter(|e| e.get("refused").is_some()).count(), 1);
    let sent: Vec<&Json> = log.iter().filter(|e| e.get("content").is_some()).collect();
    // Vietnamese: UCS-2, several parts with one reference, reassembled exactly.
    let mut parts: Vec<&Json> = sent
        .iter()
        .copied()
        .filter(|e| e["encoding"] == "ucs2")
        .collect();
    let n = VI.chars().count().div_ceil(67);
    assert!(n >= 3, "the text needs several parts");
    assert_eq!(parts.len(), n, "{parts:?}");
    parts.sort_by_key(|e| e["concat"]["part_number"].as_u64());
    let reference = &parts[0]["concat"]["reference"];
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["concat"]["part_number"], (i + 1) as u64);
        assert_eq!(p["concat"]["parts_count"], n as u64);
        assert_eq!(
            &p["concat"]["reference"], reference,
            "one reference for all parts"
        );
        assert_eq!(p["recipient"], "+84912345678");
        assert_eq!(p["srr"], true, "status report requested");
    }
    let text: String = parts
        .iter()
        .map(|p| p["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, VI);
    // Plain text with extension-table characters: one 7-bit part.
    let gsm: Vec<&&Json> = sent.iter().filter(|e| e["encoding"] == "gsm").collect();
    assert_eq!(gsm.len(), 1);
    assert_eq!(gsm[0]["content"], EN);
    assert!(gsm[0]["concat"].is_null());

    // The call: dialled, hung up after the ring time.
    let dial = log
        .iter()
        .find(|e| e.get("call").is_some())
        .expect("ATD logged");
    assert_eq!(dial["call"], "+84912345678");
    let hang = log
        .iter()
        .find(|e| e.get("hangup").is_some())
        .expect("AT+CHUP logged");
    let rang = hang["t"].as_f64().unwrap() - dial["t"].as_f64().unwrap();
    assert!(
        rang >= 0.9,
        "hung up after {rang} s, not the configured 1 s"
    );

    // Delivery reports (+CDS, sent inside the +CMGS reply) matched to the notifications.
    until("a report per part", Duration::from_secs(5), || {
        handle.reports().len() == n + 1
    })
    .await;
    let reports = handle.reports();
    assert!(reports.iter().all(|r| r.report.delivered()));
    let for_vi = reports
        .iter()
        .filter(|r| r.notification.as_deref() == Some("n-vi"))
        .count();
    let for_en = reports
        .iter()
        .filter(|r| r.notification.as_deref() == Some("n-en"))
        .count();
    assert_eq!((for_vi, for_en), (n, 1), "{reports:?}");

    // Texts received: one stored before start (AT+CMGL), one announced by +CMTI in the
    // middle of the AT+CEREG? reply; both read and deleted.
    until("two texts received", Duration::from_secs(5), || {
        handle.incoming().len() >= 2
    })
    .await;
    let inc = handle.incoming();
    assert!(
        inc.iter()
            .any(|m| m.index == 1 && m.message.text == "hellohello"),
        "{inc:?}"
    );
    assert!(
        inc.iter().any(|m| m.index == 2
            && m.message.text == "OK 123"
            && m.message.from == "+84912345678"),
        "{inc:?}"
    );
    let deleted: Vec<u64> = modem
        .entries()
        .iter()
        .filter_map(|e| e["deleted"].as_u64())
        .collect();
    assert!(deleted.contains(&1) && deleted.contains(&2), "{deleted:?}");

    // The modem restarts on its own (RDY, echo and text mode back): the gateway sets it
    // up again and the next text goes out in PDU mode.
    let set_ups = |log: &[Json]| log.iter().filter(|e| e["cmd"] == "AT+CMGF=0").count();
    assert_eq!(set_ups(&modem.entries()), 1);
    modem.set_mode("reset");
    until("the modem set up again", Duration::from_secs(10), || {
        set_ups(&modem.entries()) == 2
    })
    .await;
    q.push(Record::Notification(Arc::new(note(
        "n-after-reset",
        "after reset",
        false,
    ))));
    until(
        "the text after the restart",
        Duration::from_secs(15),
        || q.status(Timestamp::now()).delivered == 4,
    )
    .await;
    let log = modem.entries();
    assert!(
        !log.iter().any(|e| e.get("cmgs_in_text_mode").is_some()),
        "nothing was sent in text mode"
    );
    assert!(log.iter().any(|e| e["content"] == "after reset"));

    // The modem answers ERROR, then nothing: modem_ok goes false, a serious alarm.
    modem.set_mode("error");
    until("the modem seen failing", Duration::from_secs(10), || {
        !handle.status().ok()
    })
    .await;
    modem.set_mode("silent");
    until("the modem seen silent", Duration::from_secs(15), || {
        !handle.status().responding
    })
    .await;
    q.push(Record::Notification(Arc::new(note(
        "n-late", "late", false,
    ))));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(q.len(), 1, "a text the modem cannot send stays queued");

    let samples = handle.samples();
    let flag = |name: &str| {
        samples
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        flag("modem_ok"),
        Some(dc_gateway::model::Value::Bool(false))
    );
    assert_eq!(
        flag("modem_responding"),
        Some(dc_gateway::model::Value::Bool(false))
    );
    // The gateway's rules make it a serious alarm.
    let dev = Arc::new(DeviceMeta {
        id: "gateway".into(),
        name: "dc-gateway".into(),
        label: None,
        room: "gateway".into(),
        kind: Kind::Gateway,
    });
    let mut engine = Engine::new(Arc::from("tv"), Language::Vi, 1);
    engine.add_device(dev.clone(), Duration::from_secs(1), defaults(Kind::Gateway));
    let poll = Poll {
        device: dev,
        ts: Timestamp::now(),
        comm_ok: true,
        samples: samples
            .into_iter()
            .filter_map(|(name, v)| {
                Some(Sample {
                    point: dc_gateway::points::lookup(Kind::Gateway, name)?,
                    value: Some(v),
                    quality: Quality::Good,
                })
            })
            .collect(),
    };
    let events = engine.on_poll(&poll);
    assert!(
        events
            .iter()
            .any(|e| e.rule.as_ref() == "modem_fault" && e.level == Level::Serious),
        "{events:?}"
    );
}

/// The gateway binary with an `sms` sink: the modem's state reaches the page's API as
/// gateway points, and a modem that goes silent raises the serious `modem_fault` alarm.
#[test]
fn the_running_gateway_shows_the_modem_and_alarms_when_it_goes_silent() {
    use crate::e2e::{Gateway, site};
    use crate::peers::{ModbusServer, ModbusSpec, UnitSpec, free_port, peer_tempdir};

    let pty = PtyPair::start();
    let modem = ScriptedModem::start(&pty.device, 0);
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let dir = peer_tempdir("e2e-sms");
    let sinks = format!(
        "[[sinks]]\nname = \"modem\"\nkind = \"sms\"\nport = \"{}\"\ncommand_timeout_ms = 1000\ncheck_interval_s = 1\n",
        pty.gateway.display()
    );
    let gw = Gateway::start(
        &site("e2esms", free_port(), modbus.addr().port(), 500, &sinks),
        dir.path(),
    );
    let modem_fault = |alarms: &Json| {
        alarms["alarms"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["rule"] == "modem_fault" && x["level"] == "serious")
        })
    };
    // Healthy: set up (the scripted modem's log shows the health checks repeating), and
    // no modem_fault alarm, not even while the gateway was starting.
    let start = Instant::now();
    while modem
        .entries()
        .iter()
        .filter(|e| e["cmd"] == "AT+CSQ")
        .count()
        < 3
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the gateway never checked the modem\n--- gateway log ---\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let alarms = gw.api("/api/v1/alarms");
    assert!(
        !modem_fault(&alarms),
        "a healthy modem raised an alarm: {alarms}"
    );

    modem.set_mode("silent");
    let start = Instant::now();
    loop {
        let alarms = gw.api("/api/v1/alarms");
        if modem_fault(&alarms) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no modem_fault alarm: {alarms}\n--- gateway log ---\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `dc-gateway modem` (the real binary) checks the modem of the site's `sms` sink,
/// sends a test text and rings a phone: what an installer runs before going live.
#[test]
fn the_modem_command_checks_texts_and_rings() {
    use crate::peers::{peer_tempdir, repo_root};

    let pty = PtyPair::start();
    let modem = ScriptedModem::start(&pty.device, 0);
    let dir = peer_tempdir("modem-cli");
    let cfg = dir.path().join("site.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nname = \"tv\"\n\n[storage]\nstate_dir = \"{}\"\n\n[[sinks]]\nname = \"sms\"\nkind = \"sms\"\nport = \"{}\"\ncommand_timeout_ms = 1500\ncall_ring_s = 1\n",
            dir.path().join("state").display(),
            pty.gateway.display()
        ),
    )
    .unwrap();
    let bin = repo_root().join("target/debug/dc-gateway");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["modem", "--config"])
        .arg(&cfg)
        .args(["--text-to", "+84912345678", "--call", "+84912345678"])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "registered:  yes",
        "signal:      -73 dBm",
        "modem_ok:    yes",
        "text to +84912345678: accepted by the network",
        "call to +84912345678: rang, hung up",
        "delivery report: delivered",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    let log = modem.entries();
    let text = log
        .iter()
        .find(|e| e.get("content").is_some())
        .expect("a text reached the modem");
    assert!(
        text["content"]
            .as_str()
            .unwrap()
            .contains("tin nhắn thử nghiệm"),
        "{text}"
    );
    assert!(log.iter().any(|e| e["call"] == "+84912345678"));
}
