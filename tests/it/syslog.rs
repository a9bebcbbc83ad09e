//! The syslog sink against a real rsyslogd: one alarm event over UDP, TCP, TLS (with
//! and without a client certificate) and RELP arrives byte for byte, and rsyslog's own
//! RFC 5424 parser (with `mmpstrucdata`) reads back every structured-data parameter;
//! over RELP, rsyslogd killed with SIGKILL and started again during a burst loses no
//! event (ground truth: the ids in rsyslog's own output file).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dc_gateway::buffer::{self, Buffer};
use dc_gateway::model::{AlarmEvent, AlarmState, EventDetail, Kind, Level, Timestamp, Value};
use dc_gateway::sinks::syslog::{SyslogConfig, SyslogSink};
use dc_gateway::sinks::worker::{self, QueueConfig};
use dc_gateway::sinks::{Outcome, Record, Sink};

use crate::e2e::{Gateway, site};
use crate::peers::{
    ModbusServer, ModbusSpec, Rsyslog, RsyslogOpts, UnitSpec, free_port, peer_tempdir, wait_until,
};

/// A raised serious alarm whose label and comment hold every character RFC 5424 makes
/// us escape, and a Vietnamese text.
fn event() -> AlarmEvent {
    AlarmEvent {
        id: "0190a0b0-0000-7000-8000-000000000007".into(),
        seq: 7,
        // 2026-11-25T08:00:00.123Z
        ts: Timestamp(1_795_593_600_123),
        site: Arc::from("tv"),
        device: Arc::from("ups1"),
        kind: Kind::Ups,
        room: Arc::from("power"),
        point: "battery_charge_pct",
        rule: Arc::from("battery_charge_low"),
        level: Level::Serious,
        state: AlarmState::Raised,
        value: Some(Value::Number(18.5)),
        threshold: Some(20.0),
        message: "Dung lượng ắc quy thấp: 18,5 % (Điều 10.3)".into(),
        detail: EventDetail {
            gateway: Arc::from("gw-tv1"),
            no: 12,
            label: Some("UPS \"A\" [rack]\\1".into()),
            comment: Some("x]y".into()),
            ..Default::default()
        },
    }
}

/// The message as RFC 5424 says it must look, written out by hand: PRI 130 = local0
/// (16) × 8 + crit (2); `"`, `\` and `]` escaped in PARAM-VALUEs; BOM before the text.
const EXPECTED: &str = "<130>1 2026-11-25T08:00:00.123Z gw-tv1 dc-gateway - alarm \
    [dcgw@32473 id=\"0190a0b0-0000-7000-8000-000000000007\" seq=\"7\" no=\"12\" \
    gateway=\"gw-tv1\" site=\"tv\" room=\"power\" device=\"ups1\" \
    label=\"UPS \\\"A\\\" [rack\\]\\\\1\" kind=\"ups\" system=\"power\" point=\"battery_charge_pct\" \
    rule=\"battery_charge_low\" level=\"serious\" state=\"raised\" value=\"18.5\" \
    threshold=\"20\" comment=\"x\\]y\"] \u{feff}Dung lượng ắc quy thấp: 18,5 % (Điều 10.3)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_tcp_tls_and_relp_messages_and_their_structured_data_arrive_exactly() {
    let rs = tokio::task::block_in_place(|| {
        Rsyslog::start(RsyslogOpts {
            udp: true,
            tcp: true,
            tls: true,
            relp: true,
        })
    });
    let (cert, key) = rs.client_cert();
    let inputs = [
        ("udp", format!("udp://127.0.0.1:{}", rs.udp_port)),
        ("tcp", format!("tcp://127.0.0.1:{}", rs.tcp_port)),
        ("tls", format!("tls://127.0.0.1:{}", rs.tls_port)),
        (
            "tls_mutual",
            format!("tls://127.0.0.1:{}", rs.tls_mutual_port),
        ),
        ("relp", format!("relp://127.0.0.1:{}", rs.relp_port)),
    ];
    // Without a client certificate the port that requires one takes nothing (over TLS
    // the write may still succeed: best effort); checked below, where that input holds
    // exactly the one message sent with the certificate.
    let mut cfg =
        SyslogConfig::from_url(&format!("tls://127.0.0.1:{}", rs.tls_mutual_port)).unwrap();
    cfg.ca_file = Some(rs.ca_file());
    let _ = SyslogSink::new("no-cert", &cfg, "gw-tv1")
        .deliver(&[Record::Alarm(Arc::new(event()))])
        .await;
    for (input, url) in &inputs {
        let mut cfg = SyslogConfig::from_url(url).unwrap();
        cfg.timeout = Duration::from_secs(5);
        if url.starts_with("tls") {
            cfg.ca_file = Some(rs.ca_file());
        }
        if *input == "tls_mutual" {
            cfg.cert_file = Some(cert.clone());
            cfg.key_file = Some(key.clone());
        }
        // HOSTNAME defaults to the gateway's name.
        let mut sink = SyslogSink::new(input, &cfg, "gw-tv1");
        let out = sink.deliver(&[Record::Alarm(Arc::new(event()))]).await;
        assert_eq!(out, Outcome::Delivered, "{input}: {}", rs.log());
        assert!(sink.connected(), "{input}");
    }
    // A CA file that does not vouch for the server: nothing sent, retried with the reason
    // (and nothing more arrives on the TLS input: checked below).
    let mut cfg = SyslogConfig::from_url(&format!("tls://127.0.0.1:{}", rs.tls_port)).unwrap();
    cfg.ca_file = Some(cert.clone());
    let mut sink = SyslogSink::new("bad-ca", &cfg, "gw-tv1");
    match sink.deliver(&[Record::Alarm(Arc::new(event()))]).await {
        Outcome::Retry { reason, .. } => {
            assert!(reason.contains("TLS with 127.0.0.1:"), "{reason}")
        }
        other => panic!("a server the CA file does not vouch for: {other:?}"),
    }
    assert!(!sink.connected());
    for (input, _) in &inputs {
        tokio::task::block_in_place(|| {
            wait_until(
                &format!("{input} message in rsyslog's file"),
                Duration::from_secs(10),
                || !rs.parsed(input).is_empty(),
            )
        })
        .unwrap_or_else(|e| panic!("{e}\n--- rsyslog ---\n{}", rs.log()));
        assert_eq!(
            rs.raw(input),
            vec![EXPECTED.to_string()],
            "{input}: raw message"
        );
        // rsyslog's own parse of the header and the structured data.
        let parsed = rs.parsed(input);
        let f: Vec<&str> = parsed[0].splitn(8, '|').collect();
        assert_eq!(
            &f[..6],
            &[
                "130",
                "2026-11-25T08:00:00.123Z",
                "gw-tv1",
                "dc-gateway",
                "-",
                "alarm"
            ],
            "{input}: {parsed:?}"
        );
        let sd: serde_json::Value = serde_json::from_str(f[6])
            .unwrap_or_else(|e| panic!("{input}: structured data {:?}: {e}", f[6]));
        let p = &sd["rfc5424-sd"]["dcgw@32473"];
        let want = serde_json::json!({
            "id": "0190a0b0-0000-7000-8000-000000000007", "seq": "7", "no": "12",
            "gateway": "gw-tv1", "site": "tv", "room": "power", "device": "ups1",
            "label": "UPS \"A\" [rack]\\1", "kind": "ups", "system": "power",
            "point": "battery_charge_pct",
            "rule": "battery_charge_low", "level": "serious", "state": "raised",
            "value": "18.5", "threshold": "20", "comment": "x]y"
        });
        assert_eq!(
            p, &want,
            "{input}: rsyslog's reading of the structured data"
        );
        assert_eq!(
            f[7], "\u{feff}Dung lượng ắc quy thấp: 18,5 % (Điều 10.3)",
            "{input}: MSG"
        );
    }
}

fn alarm(seq: u64) -> Record {
    let mut ev = event();
    ev.id = format!("0190a0b0-0000-7000-8000-{seq:012}");
    ev.seq = seq;
    ev.ts = Timestamp::now();
    ev.detail.label = None;
    ev.detail.comment = None;
    ev.message = format!("Nhiệt độ cao ({seq:04})");
    Record::Alarm(Arc::new(ev))
}

/// The event ids in rsyslog's raw output file.
fn ids(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let at = l.find(" id=\"")? + 5;
            Some(l[at..at + l[at..].find('"')?].to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relp_loses_nothing_when_rsyslog_is_killed_and_restarted_during_a_burst() {
    const N: u64 = 400;
    let mut rs = tokio::task::block_in_place(|| {
        Rsyslog::start(RsyslogOpts {
            relp: true,
            ..Default::default()
        })
    });
    let dir = peer_tempdir("syslog-burst");
    let buffer = Buffer::open(dir.path(), buffer::Options::default()).unwrap();
    let mut cfg = SyslogConfig::from_url(&format!("relp://127.0.0.1:{}", rs.relp_port)).unwrap();
    cfg.timeout = Duration::from_secs(3);
    let sink = SyslogSink::new("soc", &cfg, "gw-tv1");
    let qcfg = QueueConfig {
        batch_max: 50,
        linger: Duration::ZERO,
        live_first: false,
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        ..Default::default()
    };
    let (q, _task) = worker::spawn_on(&buffer, sink, qcfg).unwrap();
    let producer = {
        let q = q.clone();
        tokio::spawn(async move {
            for seq in 1..=N {
                q.push(alarm(seq));
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        })
    };
    let seen_before = tokio::task::block_in_place(|| {
        // Kill it once the burst is flowing (the producer needs over 1.6 s for all).
        wait_until(
            "the first events in rsyslog's file",
            Duration::from_secs(10),
            || ids(&rs.raw("relp")).len() >= 20,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", rs.log()));
        let n = ids(&rs.raw("relp")).len();
        rs.kill();
        std::thread::sleep(Duration::from_millis(300));
        rs.start_again();
        n
    });
    producer.await.unwrap();
    tokio::task::block_in_place(|| {
        wait_until(
            "every id in rsyslog's file",
            Duration::from_secs(20),
            || {
                ids(&rs.raw("relp"))
                    .into_iter()
                    .collect::<HashSet<_>>()
                    .len() as u64
                    >= N
            },
        )
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {} distinct ids; queue {:?}\n--- rsyslog ---\n{}",
            ids(&rs.raw("relp"))
                .into_iter()
                .collect::<HashSet<_>>()
                .len(),
            q.status(Timestamp::now()),
            rs.log()
        )
    });
    assert!(
        seen_before > 0 && (seen_before as u64) < N,
        "the kill was not during the burst ({seen_before} before)"
    );
    let got = ids(&rs.raw("relp"));
    let want: HashSet<String> = (1..=N)
        .map(|s| format!("0190a0b0-0000-7000-8000-{s:012}"))
        .collect();
    assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), want);
    let t0 = Instant::now();
    while q.status(Timestamp::now()).queued > 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "queue not drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = q.status(Timestamp::now());
    assert_eq!(
        (st.delivered, st.dropped, st.dead_lettered),
        (N, 0, 0),
        "{st:?}"
    );
    // Resent only what was not acknowledged: at most one batch in flight was repeated.
    assert!(
        got.len() as u64 <= N + 50,
        "{} messages for {N} events",
        got.len()
    );
}

/// The real binary: a `[[sinks]]` entry of kind `syslog` is started behind its queue,
/// HOSTNAME is the gateway's name, and the alarm raised by a pymodbus sensor (30.5 °C
/// from 0x0131, the XY-MD02 manual's value/10 rule) reaches rsyslog over RELP.
#[test]
fn the_gateway_sends_its_alarm_events_to_rsyslog_over_relp() {
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x0131, 0x0222])));
    let rs = Rsyslog::start(RsyslogOpts {
        relp: true,
        ..Default::default()
    });
    let dir = peer_tempdir("syslog-e2e");
    let sinks = format!(
        "[[sinks]]\nname = \"soc\"\nkind = \"syslog\"\nurl = \"relp://127.0.0.1:{}\"\nfacility = \"local4\"\n",
        rs.relp_port
    );
    let toml = site("sysl", free_port(), modbus.addr().port(), 500, &sinks).replace(
        "language = \"en\"\n",
        "language = \"en\"\ngateway = \"gw-e2e\"\n",
    );
    let gw = Gateway::start(&toml, dir.path());
    let raised = |l: &String| l.contains("\"state\": \"raised\"") && l.contains("temperature_high");
    wait_until(
        "the raised alarm in rsyslog",
        Duration::from_secs(20),
        || rs.parsed("relp").iter().any(raised),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n--- rsyslog ---\n{}\n--- gateway ---\n{}",
            rs.log(),
            gw.log()
        )
    });
    let parsed = rs.parsed("relp");
    let line = parsed.iter().find(|l| raised(l)).unwrap();
    let f: Vec<&str> = line.splitn(8, '|').collect();
    let sd: serde_json::Value = serde_json::from_str(f[6]).unwrap();
    let p = &sd["rfc5424-sd"]["dcgw@32473"];
    let severity = if p["level"] == "serious" { 2 } else { 4 };
    assert_eq!(
        f[0],
        (20 * 8 + severity).to_string(),
        "PRI: local4 and the level: {line}"
    );
    assert_eq!(
        (f[2], f[3], f[5]),
        ("gw-e2e", "dc-gateway", "alarm"),
        "{line}"
    );
    for (k, v) in [
        ("gateway", "gw-e2e"),
        ("site", "sysl"),
        ("room", "server1"),
        ("device", "th1"),
        ("label", "TH-01"),
        ("system", "climate"),
        ("point", "temperature_c"),
        ("value", "30.5"),
    ] {
        assert_eq!(p[k], v, "{k} in {line}");
    }
    assert!(
        f[7].starts_with('\u{feff}') && f[7].len() > 3,
        "MSG: {line}"
    );
}

/// TCP and TLS have no acknowledgement, but a connection the server closed when it was
/// restarted is noticed before the next write: the first event after the restart goes
/// out on a new connection instead of into the dead one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_tls_reconnect_before_writing_after_the_server_restarted() {
    let mut rs = tokio::task::block_in_place(|| {
        Rsyslog::start(RsyslogOpts {
            tcp: true,
            tls: true,
            ..Default::default()
        })
    });
    let mut sinks = Vec::new();
    for (input, url) in [
        ("tcp", format!("tcp://127.0.0.1:{}", rs.tcp_port)),
        ("tls", format!("tls://127.0.0.1:{}", rs.tls_port)),
    ] {
        let mut cfg = SyslogConfig::from_url(&url).unwrap();
        cfg.timeout = Duration::from_secs(5);
        if input == "tls" {
            cfg.ca_file = Some(rs.ca_file());
        }
        sinks.push((input, SyslogSink::new(input, &cfg, "gw-tv1")));
    }
    for (input, sink) in &mut sinks {
        assert_eq!(
            sink.deliver(&[alarm(1)]).await,
            Outcome::Delivered,
            "{input}"
        );
    }
    tokio::task::block_in_place(|| {
        wait_until("both first events", Duration::from_secs(10), || {
            ids(&rs.raw("tcp")).len() == 1 && ids(&rs.raw("tls")).len() == 1
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", rs.log()));
        rs.kill();
        rs.start_again();
        // Let the kernel deliver the old connections' close to our side.
        std::thread::sleep(Duration::from_millis(200));
    });
    for (input, sink) in &mut sinks {
        assert_eq!(
            sink.deliver(&[alarm(2)]).await,
            Outcome::Delivered,
            "{input}"
        );
    }
    tokio::task::block_in_place(|| {
        wait_until("both second events", Duration::from_secs(10), || {
            ids(&rs.raw("tcp")).len() == 2 && ids(&rs.raw("tls")).len() == 2
        })
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: tcp {:?}, tls {:?}\n{}",
            ids(&rs.raw("tcp")),
            ids(&rs.raw("tls")),
            rs.log()
        )
    });
}
