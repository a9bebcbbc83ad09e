//! The MQTT sink against a real Mosquitto broker. Ground truth is what an independent
//! `mosquitto_sub` receives (topics, payload bytes, retain flag, QoS), never the sink's
//! own claim.
//!
//! The tests run on a current-thread runtime: the sink's event loop runs on the test
//! thread, so its log lines can be captured with a thread-local subscriber, and the
//! blocking peer helpers are only called where the sink may pause.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dc_gateway::config::MqttConfig;
use dc_gateway::metrics;
use dc_gateway::model::{
    AlarmEvent, AlarmState, DeviceMeta, Kind, Level, Poll, Quality, Sample, Timestamp, Value,
};
use dc_gateway::sinks::mqtt::MqttSink;
use dc_gateway::sinks::worker::{self, QueueConfig};
use dc_gateway::sinks::{Outcome, Record, Sink};

use crate::peers::{Mosquitto, MosquittoOpts, MqttMessage, MqttSubscriber};

const WAIT: Duration = Duration::from_secs(15);

fn sink_cfg(url: &str, site: &str) -> MqttConfig {
    let mut c = MqttConfig::from_url(url, site).expect("test URL parses");
    c.ack_timeout = Duration::from_secs(5);
    c
}

fn point(kind: Kind, name: &str) -> dc_gateway::points::PointId {
    dc_gateway::points::lookup(kind, name).unwrap_or_else(|| panic!("no point {name} for {kind}"))
}

fn ups_poll() -> Record {
    let device = Arc::new(DeviceMeta {
        id: "ups1".into(),
        name: "UPS 1".into(),
        label: None,
        room: "dc1".into(),
        kind: Kind::Ups,
    });
    Record::Poll(Arc::new(Poll {
        device,
        ts: Timestamp::now(),
        comm_ok: true,
        samples: vec![
            Sample {
                point: point(Kind::Ups, "battery_charge_pct"),
                value: Some(Value::Number(23.4)),
                quality: Quality::Good,
            },
            Sample {
                point: point(Kind::Ups, "on_battery"),
                value: Some(Value::Bool(true)),
                quality: Quality::Good,
            },
            Sample {
                point: point(Kind::Ups, "output_source"),
                value: Some(Value::Enum("on_battery")),
                quality: Quality::Good,
            },
            // Not fresh: must not be published.
            Sample {
                point: point(Kind::Ups, "battery_temperature_c"),
                value: None,
                quality: Quality::Timeout,
            },
        ],
    }))
}

fn alarm(site: &str, seq: u64, state: AlarmState) -> Arc<AlarmEvent> {
    Arc::new(AlarmEvent {
        detail: Default::default(),
        id: format!("0190f0c2-0000-7000-8000-{seq:012}"),
        seq,
        ts: Timestamp::now(),
        site: site.into(),
        device: "crac1".into(),
        kind: Kind::Cooling,
        room: "dc1".into(),
        point: "supply_temp_c",
        rule: "temperature_high".into(),
        level: Level::Serious,
        state,
        value: Some(Value::Number(31.5)),
        threshold: Some(27.0),
        message: "Nhiệt độ gió cấp cao (Điều 10.3)".into(),
    })
}

fn counter(
    family: &metrics::Family<metrics::Labels, metrics::Counter>,
    sink: &str,
    reason: &str,
) -> u64 {
    metrics::count(family, &[("sink", sink), ("reason", reason)])
}

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_msgs(
    sub: &MqttSubscriber,
    what: &str,
    cond: impl Fn(&[MqttMessage]) -> bool,
) -> Vec<MqttMessage> {
    sub.wait_for_async(cond, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn json(m: &MqttMessage) -> serde_json::Value {
    serde_json::from_slice(&m.payload)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {:?}", m.topic, m.payload_str()))
}

/// Log lines written on this thread while the guard lives.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let w = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn readings_and_alarm_lifecycle_arrive_as_the_contract_says() {
    let broker = Mosquitto::start(MosquittoOpts::default());
    let site = "it-topics";
    let prefix = format!("dcgw/{site}");
    let live = broker.subscribe(&format!("{prefix}/#"));
    let mut sink = MqttSink::start(
        "it-mqtt-topics",
        site.into(),
        &sink_cfg(&broker.url(), site),
    )
    .expect("sink starts");
    wait_until("sink connected", WAIT, || sink.connected()).await;
    let status = format!("{prefix}/gateway/status");
    wait_msgs(&live, "online status", |m| {
        m.iter()
            .any(|m| m.topic == status && m.payload == b"online" && m.qos == 1)
    })
    .await;

    // Readings: one message per good sample, value as text.
    assert_eq!(sink.deliver(&[ups_poll()]).await, Outcome::Delivered);
    let expected = [
        (format!("{prefix}/ups1/battery_charge_pct"), "23.4"),
        (format!("{prefix}/ups1/on_battery"), "true"),
        (format!("{prefix}/ups1/output_source"), "on_battery"),
    ];
    let got = wait_msgs(&live, "three readings", |m| {
        expected
            .iter()
            .all(|(t, p)| m.iter().any(|m| &m.topic == t && m.payload_str() == *p))
    })
    .await;
    let stale = format!("{prefix}/ups1/battery_temperature_c");
    assert!(
        !got.iter().any(|m| m.topic == stale),
        "a timed-out sample was published"
    );

    // Alarm raised: the event (QoS 1, not retained) and the active state.
    let raised = alarm(site, 7, AlarmState::Raised);
    assert_eq!(
        sink.deliver(&[Record::Alarm(raised.clone())]).await,
        Outcome::Delivered
    );
    let events = format!("{prefix}/alarms/events");
    let active = format!("{prefix}/alarms/active/crac1/temperature_high");
    let got = wait_msgs(&live, "alarm event and active state", |m| {
        m.iter().any(|m| m.topic == events) && m.iter().any(|m| m.topic == active)
    })
    .await;
    let ev = got.iter().find(|m| m.topic == events).unwrap();
    assert_eq!(ev.qos, 1);
    let v = json(ev);
    assert_eq!(v["id"], raised.id.as_str());
    assert_eq!(v["seq"], 7);
    assert_eq!(v["site"], site);
    assert_eq!(v["device"], "crac1");
    assert_eq!(v["point"], "supply_temp_c");
    assert_eq!(v["rule"], "temperature_high");
    assert_eq!(v["level"], "serious");
    assert_eq!(v["state"], "raised");
    assert_eq!(v["value"], 31.5);
    assert_eq!(v["threshold"], 27.0);
    assert_eq!(v["message"], "Nhiệt độ gió cấp cao (Điều 10.3)");
    assert_eq!(v["ts"], raised.ts.rfc3339());
    assert_eq!(
        json(got.iter().find(|m| m.topic == active).unwrap())["state"],
        "raised"
    );

    // A notification to a person: QoS 1 on <prefix>/notify/<person>, for bridges.
    let n = dc_gateway::sinks::Notification {
        id: "0190a0b0-0000-7000-8000-0000000000aa".into(),
        ts: dc_gateway::model::Timestamp::now(),
        person: "an".into(),
        phone: "+84912345678".into(),
        text: "Cảnh báo nghiêm trọng #7: nhiệt độ gió cấp cao".into(),
        lang: "vi".into(),
        alarm_no: Some(7),
        call: false,
        attempt: 1,
    };
    assert_eq!(
        sink.deliver(&[Record::Notification(Arc::new(n.clone()))])
            .await,
        Outcome::Delivered
    );
    let notify = format!("{prefix}/notify/an");
    let got = wait_msgs(&live, "the notification", |m| {
        m.iter().any(|m| m.topic == notify)
    })
    .await;
    let m = got.iter().find(|m| m.topic == notify).unwrap();
    assert_eq!((m.qos, m.retained), (1, false));
    let v = json(m);
    assert_eq!(v["id"], n.id.as_str());
    assert_eq!(v["person"], "an");
    assert_eq!(v["alarm"], 7);
    assert_eq!(v["text"], n.text.as_str());
    assert_eq!(v["channel"], "mqtt");

    // A newcomer gets the retained state: readings, status and the active alarm, but
    // never the event stream.
    let late = broker.subscribe(&format!("{prefix}/#"));
    let got = wait_msgs(&late, "retained state", |m| {
        expected
            .iter()
            .all(|(t, _)| m.iter().any(|m| &m.topic == t))
            && m.iter().any(|m| m.topic == active)
            && m.iter().any(|m| m.topic == status)
    })
    .await;
    for (t, p) in &expected {
        let m = got.iter().find(|m| &m.topic == t).unwrap();
        assert!(m.retained, "{t} not retained");
        assert_eq!(m.payload_str(), *p);
    }
    let a = got.iter().find(|m| m.topic == active).unwrap();
    assert!(a.retained && json(a)["id"] == raised.id.as_str());
    assert!(got.iter().find(|m| m.topic == status).unwrap().retained);
    assert!(
        !got.iter().any(|m| m.topic == events),
        "alarm events must not be retained"
    );
    drop(late);

    // Cleared: a new event, and the active topic emptied (retained message deleted).
    live.clear();
    let cleared = alarm(site, 8, AlarmState::Cleared);
    assert_eq!(
        sink.deliver(&[Record::Alarm(cleared.clone())]).await,
        Outcome::Delivered
    );
    let got = wait_msgs(&live, "cleared event and empty active payload", |m| {
        m.iter().any(|m| m.topic == events) && m.iter().any(|m| m.topic == active)
    })
    .await;
    assert_eq!(
        json(got.iter().find(|m| m.topic == events).unwrap())["state"],
        "cleared"
    );
    assert!(
        got.iter()
            .find(|m| m.topic == active)
            .unwrap()
            .payload
            .is_empty()
    );
    let late = broker.subscribe(&format!("{prefix}/#"));
    let got = wait_msgs(&late, "retained state after clear", |m| {
        expected
            .iter()
            .all(|(t, _)| m.iter().any(|m| &m.topic == t))
            && m.iter().any(|m| m.topic == status)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = [got, late.messages()].concat();
    assert!(
        !got.iter()
            .any(|m| m.topic.starts_with(&format!("{prefix}/alarms/"))),
        "the cleared alarm is still retained: {:?}",
        got.iter()
            .map(|m| (&m.topic, m.payload_str()))
            .collect::<Vec<_>>()
    );

    // Several alarms in one batch keep their order.
    live.clear();
    let batch: Vec<Record> = (20..25)
        .map(|s| Record::Alarm(alarm(site, s, AlarmState::Raised)))
        .collect();
    assert_eq!(sink.deliver(&batch).await, Outcome::Delivered);
    let got = wait_msgs(&live, "five events", |m| {
        m.iter().filter(|m| m.topic == events).count() >= 5
    })
    .await;
    let seqs: Vec<u64> = got
        .iter()
        .filter(|m| m.topic == events)
        .map(|m| json(m)["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![20, 21, 22, 23, 24]);
}

#[tokio::test]
async fn tls_with_password_works_and_wrong_credentials_are_an_auth_error() {
    let users = vec![("gw".to_string(), "s3cret pw".to_string())];
    let broker = Mosquitto::start(MosquittoOpts {
        tls: true,
        users,
        persistence: false,
    });
    let site = "it-tls";
    let prefix = format!("dcgw/{site}");
    let sub = broker.subscribe(&format!("{prefix}/alarms/events"));

    let mut cfg = sink_cfg(&broker.url_with_user("gw", "s3cret pw"), site);
    assert!(cfg.tls);
    cfg.ca_file = Some(broker.ca_file());
    let mut sink = MqttSink::start("it-mqtt-tls", site.into(), &cfg).expect("sink starts");
    wait_until("TLS sink connected", WAIT, || sink.connected()).await;
    let ev = alarm(site, 1, AlarmState::Raised);
    assert_eq!(
        sink.deliver(&[Record::Alarm(ev.clone())]).await,
        Outcome::Delivered
    );
    let got = wait_msgs(&sub, "alarm over TLS", |m| !m.is_empty()).await;
    assert_eq!(json(&got[0])["id"], ev.id.as_str());

    // Wrong password: a clear error, counted as `auth`, logged once, no crash.
    let logs = LogCapture::default();
    let _guard = logs.install();
    let name = "it-mqtt-badpw";
    let mut cfg = sink_cfg(&broker.url_with_user("gw", "wrong"), "it-tls-bad");
    cfg.ca_file = Some(broker.ca_file());
    let mut bad = MqttSink::start(name, "it-tls-bad".into(), &cfg).expect("sink starts");
    let m = metrics::get();
    wait_until("two refused attempts", WAIT, || {
        counter(&m.sink_errors, name, "auth") >= 2
    })
    .await;
    assert!(!bad.connected());
    let err = bad.last_error().expect("a last error");
    assert!(
        err.starts_with("auth:") && err.contains("not authorised"),
        "{err}"
    );
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(name) && l.contains("ERROR"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one error line for repeated refusals:\n{text}"
    );
    assert!(
        lines[0].contains("not authorised") && lines[0].contains("auth"),
        "{}",
        lines[0]
    );
    let out = bad
        .deliver(&[Record::Alarm(alarm("it-tls-bad", 2, AlarmState::Raised))])
        .await;
    assert!(
        matches!(&out, Outcome::Retry { reason, .. } if reason.contains("not authorised")),
        "{out:?}"
    );
    assert_eq!(counter(&m.sink_errors, name, "connect"), 0);

    // A CA that did not sign the broker's certificate: a `tls` error.
    let other = Mosquitto::start(MosquittoOpts {
        tls: true,
        ..Default::default()
    });
    let name = "it-mqtt-badca";
    let mut cfg = sink_cfg(&broker.url_with_user("gw", "s3cret pw"), "it-tls-ca");
    cfg.ca_file = Some(other.ca_file());
    let wrong_ca = MqttSink::start(name, "it-tls-ca".into(), &cfg).expect("sink starts");
    wait_until("a TLS failure", WAIT, || {
        counter(&m.sink_errors, name, "tls") >= 1
    })
    .await;
    assert!(!wrong_ca.connected());
    assert_eq!(counter(&m.sink_errors, name, "auth"), 0);

    // The good sink was never disturbed.
    assert!(sink.connected());
    assert_eq!(sub.messages().len(), 1);
}

#[tokio::test]
async fn alarm_while_broker_is_down_is_delivered_only_after_its_puback() {
    let mut broker = Mosquitto::start(MosquittoOpts::default());
    let site = "it-outage";
    let prefix = format!("dcgw/{site}");
    let events = format!("{prefix}/alarms/events");
    let sub = broker.subscribe(&events);
    let mut cfg = sink_cfg(&broker.url(), site);
    cfg.ack_timeout = Duration::from_secs(3);
    let mut sink = MqttSink::start("it-mqtt-outage", site.into(), &cfg).expect("sink starts");
    wait_until("sink connected", WAIT, || sink.connected()).await;

    broker.stop();
    wait_until("sink notices the broker is gone", WAIT, || {
        !sink.connected()
    })
    .await;
    let ev = alarm(site, 1, AlarmState::Raised);
    let out = sink.deliver(&[Record::Alarm(ev.clone())]).await;
    assert!(
        matches!(out, Outcome::Retry { .. }),
        "delivered with no broker: {out:?}"
    );

    // Through the queue: the event stays queued, not counted delivered, while the
    // broker is down, and goes out once it is back.
    let name = "it-mqtt-outage-q";
    let queued_sink = MqttSink::start(name, site.into(), &{
        let mut c = cfg.clone();
        c.client_id = "dcgw-it-outage-q".into();
        c
    })
    .expect("sink starts");
    let qcfg = QueueConfig {
        linger: Duration::ZERO,
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(1),
        ..Default::default()
    };
    let (q, _task) = worker::spawn(queued_sink, qcfg);
    q.push(Record::Alarm(ev.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = q.status(Timestamp::now());
    assert_eq!(
        st.delivered, 0,
        "counted delivered while the broker is down"
    );
    assert_eq!(st.queued, 1);
    assert!(st.retried >= 1);

    broker.start_again();
    sub.wait_subacks(2, WAIT).expect("subscriber back");
    wait_until("sink reconnected", WAIT, || sink.connected()).await;
    wait_until("queue delivered the event", WAIT, || {
        q.status(Timestamp::now()).delivered == 1
    })
    .await;
    assert_eq!(
        sink.deliver(&[Record::Alarm(ev.clone())]).await,
        Outcome::Delivered
    );
    let got = wait_msgs(&sub, "the event, from both paths", |m| m.len() >= 2).await;
    assert!(got.iter().all(|m| json(m)["id"] == ev.id.as_str()));
    assert_eq!(q.status(Timestamp::now()).queued, 0);
}

#[tokio::test]
async fn lost_connection_leaves_offline_and_shutdown_publishes_it() {
    let broker = Mosquitto::start(MosquittoOpts::default());
    let site = "it-will";
    let status = format!("dcgw/{site}/gateway/status");
    let sub = broker.subscribe(&status);
    let cfg = sink_cfg(&broker.url(), site);

    // Connection cut without DISCONNECT (as when the process dies): the broker
    // publishes the last will.
    let sink = MqttSink::start("it-mqtt-will", site.into(), &cfg).expect("sink starts");
    wait_msgs(&sub, "online", |m| {
        m.last().is_some_and(|m| m.payload == b"online")
    })
    .await;
    drop(sink);
    wait_msgs(&sub, "offline will", |m| {
        m.last().is_some_and(|m| m.payload == b"offline")
    })
    .await;
    let late = broker.subscribe(&status);
    let got = wait_msgs(&late, "retained status", |m| !m.is_empty()).await;
    assert_eq!(
        (got[0].payload_str().as_str(), got[0].retained),
        ("offline", true)
    );
    drop(late);

    // Reconnect publishes online again; a planned shutdown says offline itself.
    sub.clear();
    let sink = MqttSink::start("it-mqtt-will", site.into(), &cfg).expect("sink starts");
    wait_msgs(&sub, "online again", |m| {
        m.iter().any(|m| m.payload == b"online")
    })
    .await;
    let handle = sink.handle();
    assert!(
        handle.shutdown(Duration::from_secs(5)).await,
        "offline not confirmed"
    );
    wait_msgs(&sub, "offline on shutdown", |m| {
        m.last().is_some_and(|m| m.payload == b"offline")
    })
    .await;
    assert!(!handle.connected());
    let late = broker.subscribe(&status);
    let got = wait_msgs(&late, "retained status", |m| !m.is_empty()).await;
    assert_eq!(got[0].payload_str(), "offline");
    // Ground truth for "clean" versus "cut": the broker's own connection log.
    let log = broker.log();
    assert!(
        log.contains("Client dcgw-it-will closed its connection."),
        "the dropped sink's connection was not cut:\n{log}"
    );
    assert!(
        log.contains("Client dcgw-it-will disconnected."),
        "no clean DISCONNECT on shutdown:\n{log}"
    );
}
