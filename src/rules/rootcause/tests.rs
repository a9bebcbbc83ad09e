//! Tests of link tracking and of one alarm per root cause, with an injected clock:
//! every time is an explicit `Timestamp`, every poll made up here.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::model::{
    AlarmEvent, AlarmState, DeviceMeta, Kind, Level, Poll, Quality, Sample, Timestamp, Value,
};
use crate::points::lookup;
use crate::rules::spec::{Condition, RuleSpec};
use crate::rules::{Engine, defaults};

/// 2026-05-28T00:00:00Z, an arbitrary origin for the injected clock.
const T0: i64 = 1_779_926_400_000;
/// Poll interval of the devices behind the gateway (comm_lost after 3: 6 s).
const EVERY_S: f64 = 2.0;

fn at(secs: f64) -> Timestamp {
    Timestamp(T0 + (secs * 1000.0).round() as i64)
}

fn device(kind: Kind, id: &str) -> Device {
    Arc::new(DeviceMeta {
        id: Arc::from(id),
        name: id.to_uppercase(),
        label: None,
        room: Arc::from("server1"),
        kind,
    })
}

fn tcp(host: &str, port: u16) -> LinkKey {
    LinkKey::ModbusTcp {
        host: host.into(),
        port,
    }
}

/// How a poll ends.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Outcome {
    /// Data.
    Ok,
    /// The connection refused or dropped: every sample `comm_error`.
    Refused,
    /// No reply in time.
    Timeout,
    /// The TCP-to-RTU gateway answers exception 0x0B (target failed to respond).
    GatewayException,
}

fn the_point(kind: Kind) -> &'static str {
    match kind {
        Kind::Ups => "load_pct",
        _ => "temperature_c",
    }
}

fn poll(dev: &Device, t: f64, o: Outcome, value: f64) -> Poll {
    let point = lookup(dev.kind, the_point(dev.kind)).expect("point in vocabulary");
    let (quality, v) = match o {
        Outcome::Ok => (Quality::Good, Some(Value::Number(value))),
        Outcome::Refused => (Quality::CommError, None),
        Outcome::Timeout => (Quality::Timeout, None),
        Outcome::GatewayException => (Quality::DeviceException, None),
    };
    Poll {
        device: dev.clone(),
        ts: at(t),
        comm_ok: o == Outcome::Ok,
        samples: vec![Sample {
            point,
            value: v,
            quality,
        }],
    }
}

/// 7 climate sensors and a UPS behind one Modbus TCP gateway, and an unrelated
/// climate sensor on its own endpoint with a 30 °C limit and no on-delay.
struct Site {
    e: Engine,
    behind: Vec<Device>,
    other: Device,
    /// Every event so far, in order.
    events: Vec<AlarmEvent>,
}

impl Site {
    fn new() -> Site {
        let mut behind: Vec<Device> = (1..=7)
            .map(|i| device(Kind::Climate, &format!("th{i}")))
            .collect();
        behind.push(device(Kind::Ups, "ups1"));
        let other = device(Kind::Climate, "th9");
        let mut e = Engine::new(Arc::from("travinh"), Language::En, 1);
        for d in &behind {
            e.add_device(d.clone(), Duration::from_secs(2), defaults(d.kind));
        }
        e.add_device(
            other.clone(),
            Duration::from_secs(2),
            vec![RuleSpec {
                name: Arc::from("temperature_high"),
                point: "temperature_c",
                condition: Condition::Above {
                    normal: Some(27.0),
                    serious: Some(30.0),
                    hysteresis: 0.5,
                    on_delay_s: 0.0,
                },
                article: "10.3",
                enabled: true,
            }],
        );
        let mut links: Vec<(Device, LinkKey)> = behind
            .iter()
            .map(|d| (d.clone(), tcp("10.0.0.5", 502)))
            .collect();
        links.push((other.clone(), tcp("10.0.0.9", 502)));
        e.add_links(plan(links));
        Site {
            e,
            behind,
            other,
            events: Vec::new(),
        }
    }

    /// Round `r` of polls: device `j` is polled at `2r + 0.1 j` s with `outcome(j)`,
    /// then the 1 s ticks up to the next round. Returns the round's events.
    fn round(&mut self, r: u32, outcome: impl Fn(usize) -> Outcome) -> Vec<AlarmEvent> {
        let base = f64::from(r) * EVERY_S;
        let mut got = Vec::new();
        for (j, d) in self.behind.iter().enumerate() {
            let p = poll(d, base + 0.1 * j as f64, outcome(j), 22.0);
            got.extend(self.e.on_poll(&p));
        }
        got.extend(self.e.tick(at(base + 1.0)));
        self.events.extend(got.clone());
        got
    }

    fn rounds(&mut self, rs: std::ops::Range<u32>, outcome: impl Fn(usize) -> Outcome + Copy) {
        for r in rs {
            self.round(r, outcome);
        }
    }
}

fn raised<'a>(events: &'a [AlarmEvent], rule: &str) -> Vec<&'a AlarmEvent> {
    events
        .iter()
        .filter(|e| &*e.rule == rule && e.state == AlarmState::Raised)
        .collect()
}

#[test]
fn plan_groups_devices_by_link_and_leaves_out_single_devices() {
    let a = device(Kind::Climate, "a");
    let b = device(Kind::Climate, "b");
    let c = device(Kind::Ups, "c");
    let d = device(Kind::Ups, "d");
    let e = device(Kind::Ups, "e");
    let specs = plan([
        (a.clone(), tcp("10.0.0.5", 502)),
        (c.clone(), LinkKey::Bus(Arc::from("bus1"))),
        (b.clone(), tcp("10.0.0.5", 502)),
        (d.clone(), tcp("10.0.0.5", 503)),
        (e.clone(), LinkKey::Bus(Arc::from("bus1"))),
    ]);
    let got: Vec<(String, Vec<&str>)> = specs
        .iter()
        .map(|s| {
            (
                s.key.device_id().to_string(),
                s.devices.iter().map(|d| &*d.id).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("link_10_0_0_5_502".to_string(), vec!["a", "b"]),
            ("link_bus1".to_string(), vec!["c", "e"]),
        ]
    );
    assert_eq!(
        LinkKey::Snmp {
            host: "fe80::1".into(),
            port: 161
        }
        .device_id()
        .as_ref(),
        "link_snmp_fe80__1_161"
    );
    assert_eq!(tcp("gw.site", 502).name(), "Modbus TCP gw.site:502");
}

#[test]
fn a_failed_poll_is_refused_on_the_link_or_silent_behind_it() {
    let d = device(Kind::Climate, "a");
    let cases = [
        (Outcome::Ok, None),
        (Outcome::Refused, Some(Fault::Refused)),
        (Outcome::Timeout, Some(Fault::Silent)),
        (Outcome::GatewayException, Some(Fault::Silent)),
    ];
    for (o, want) in cases {
        assert_eq!(Fault::of(&poll(&d, 0.0, o, 1.0)), want, "{o:?}");
    }
    let mut empty = poll(&d, 0.0, Outcome::Refused, 1.0);
    empty.samples.clear();
    assert_eq!(Fault::of(&empty), Some(Fault::Refused));
}

#[test]
fn a_link_is_lost_only_when_every_device_behind_it_failed() {
    let (a, b) = (device(Kind::Climate, "a"), device(Kind::Climate, "b"));
    let mut links = Links::new(plan([(a.clone(), tcp("h", 1)), (b.clone(), tcp("h", 1))]));
    assert_eq!(links.lost(0), None, "nothing polled yet");
    links.observe(&poll(&a, 0.0, Outcome::Timeout, 0.0));
    assert_eq!(links.lost(0), None, "b not polled yet");
    links.observe(&poll(&b, 0.1, Outcome::Ok, 0.0));
    assert_eq!(links.lost(0), None, "b answers");
    links.observe(&poll(&b, 2.1, Outcome::GatewayException, 0.0));
    assert_eq!(links.lost(0), Some(Fault::Silent));
    links.observe(&poll(&a, 2.0, Outcome::Refused, 0.0));
    assert_eq!(links.lost(0), Some(Fault::Refused), "a refusal wins");
    links.observe(&poll(&a, 4.0, Outcome::Ok, 0.0));
    assert_eq!(links.lost(0), None, "back on the first answer");
}

/// The whole storm: a refused gateway, one link alarm, eight children with its id,
/// an unrelated alarm at once, and the clear.
#[test]
fn a_dead_gateway_raises_one_link_alarm_and_its_devices_comm_lost_are_its_children() {
    let mut s = Site::new();
    s.rounds(0..5, |_| Outcome::Ok);
    assert!(s.events.is_empty(), "{:?}", s.events);
    // The gateway dies at t = 10 s: every connection refused.
    s.rounds(5..7, |_| Outcome::Refused);
    assert!(
        s.events.is_empty(),
        "not due before the horizon: {:?}",
        s.events
    );
    // th1's last answer was at 8.0 s: comm_lost falls due at 14.0 s (round 7).
    let storm = s.round(7, |_| Outcome::Refused);
    let links = raised(&storm, "link_down");
    assert_eq!(links.len(), 1, "one link alarm: {storm:#?}");
    let link = links[0];
    assert_eq!(&*link.device, "link_10_0_0_5_502");
    assert_eq!(link.ts, at(14.0), "at the first child's horizon, not later");
    assert_eq!(link.level, Level::Serious, "a UPS is behind it");
    let ids: Vec<&str> = s.behind.iter().map(|d| &*d.id).collect();
    assert_eq!(
        link.detail.behind.iter().map(|d| &**d).collect::<Vec<_>>(),
        ids
    );
    for id in &ids {
        assert!(link.message.contains(id), "{} names {id}", link.message);
    }
    assert!(link.message.contains("refuses"), "{}", link.message);
    assert_eq!(link.detail.cause, None);
    let children = raised(&storm, "comm_lost");
    assert_eq!(children.len(), 8, "{storm:#?}");
    for c in &children {
        assert_eq!(
            c.detail.cause.as_deref(),
            Some(link.id.as_str()),
            "{}",
            c.device
        );
        assert!(c.seq > link.seq, "the link alarm comes first");
    }
    // Nothing more while it lasts; the other endpoint's sensor alarms at once.
    s.rounds(8..10, |_| Outcome::Refused);
    let hot = s.e.on_poll(&poll(&s.other, 19.5, Outcome::Ok, 31.0));
    assert_eq!(hot.len(), 1, "{hot:#?}");
    assert_eq!(&*hot[0].rule, "temperature_high");
    assert_eq!(hot[0].ts, at(19.5), "on its own poll: not held back");
    assert_eq!(hot[0].detail.cause, None);
    let link_raises = raised(&s.events, "link_down").len() + raised(&s.events, "link_silent").len();
    assert_eq!(link_raises, 1);
    assert_eq!(raised(&s.events, "comm_lost").len(), 8);
    // The API's list: the children carry the link alarm's id as their cause.
    let active = s.e.active();
    let head = active
        .iter()
        .find(|a| &*a.rule == "link_down")
        .expect("listed");
    assert_eq!(head.id, link.id);
    assert_eq!(
        active
            .iter()
            .filter(|a| a.cause.as_deref() == Some(link.id.as_str()))
            .count(),
        8
    );
    // An acknowledgement of a child keeps its cause.
    let acked =
        s.e.ack("th3/comm_lost", "op", None, at(19.6))
            .expect("listed");
    assert_eq!(acked.detail.cause.as_deref(), Some(link.id.as_str()));

    // The gateway is back at t = 20 s; the devices answer one by one.
    s.events.clear();
    let back = s.round(10, |_| Outcome::Ok);
    let first = &back[0];
    assert_eq!(
        (&*first.rule, first.state, first.ts),
        ("link_down", AlarmState::Cleared, at(20.0)),
        "{back:#?}"
    );
    let cleared: Vec<&AlarmEvent> = back
        .iter()
        .filter(|e| &*e.rule == "comm_lost" && e.state == AlarmState::Cleared)
        .collect();
    assert_eq!(cleared.len(), 8);
    for c in &cleared {
        assert_eq!(c.detail.cause.as_deref(), Some(link.id.as_str()));
    }
    // Each child clears on its own device's answer.
    for (j, c) in cleared.iter().enumerate() {
        assert_eq!(c.ts, at(20.0 + 0.1 * j as f64));
    }
}

#[test]
fn a_gateway_that_answers_for_silent_devices_raises_link_silent() {
    for outcome in [Outcome::Timeout, Outcome::GatewayException] {
        let mut s = Site::new();
        s.rounds(0..5, |_| Outcome::Ok);
        s.rounds(5..9, move |_| outcome);
        assert!(raised(&s.events, "link_down").is_empty(), "{outcome:?}");
        let silent = raised(&s.events, "link_silent");
        assert_eq!(silent.len(), 1, "{outcome:?}");
        assert!(
            silent[0].message.contains("answers"),
            "{}",
            silent[0].message
        );
        let children = raised(&s.events, "comm_lost");
        assert_eq!(children.len(), 8);
        assert!(
            children
                .iter()
                .all(|c| c.detail.cause.as_deref() == Some(silent[0].id.as_str()))
        );
    }
}

#[test]
fn one_dead_device_behind_a_working_gateway_is_its_own_alarm() {
    let mut s = Site::new();
    s.rounds(0..5, |_| Outcome::Ok);
    s.rounds(5..10, |j| {
        if j == 2 {
            Outcome::Timeout
        } else {
            Outcome::Ok
        }
    });
    let lost = raised(&s.events, "comm_lost");
    assert_eq!(lost.len(), 1, "{:#?}", s.events);
    assert_eq!(&*lost[0].device, "th3");
    assert_eq!(lost[0].detail.cause, None, "paged as itself");
    assert!(raised(&s.events, "link_down").is_empty());
    assert!(raised(&s.events, "link_silent").is_empty());
    // Then the whole gateway dies: one link alarm; th3 stays as it was (no cause),
    // the seven others become children.
    s.events.clear();
    s.rounds(10..14, |_| Outcome::Refused);
    let link = raised(&s.events, "link_down");
    assert_eq!(link.len(), 1, "{:#?}", s.events);
    let children = raised(&s.events, "comm_lost");
    assert_eq!(children.len(), 7);
    assert!(children.iter().all(|c| &*c.device != "th3"));
    assert!(
        children
            .iter()
            .all(|c| c.detail.cause.as_deref() == Some(link[0].id.as_str()))
    );
}

#[test]
fn a_link_lost_again_after_its_clear_is_a_new_alarm_with_a_new_group_id() {
    let mut s = Site::new();
    s.rounds(0..5, |_| Outcome::Ok);
    s.rounds(5..9, |_| Outcome::Refused);
    s.rounds(9..11, |_| Outcome::Ok);
    s.rounds(11..15, |_| Outcome::Refused);
    let links = raised(&s.events, "link_down");
    assert_eq!(links.len(), 2, "{:#?}", s.events);
    assert_ne!(links[0].id, links[1].id);
    assert_ne!(links[0].detail.no, links[1].detail.no);
    let children = raised(&s.events, "comm_lost");
    assert_eq!(children.len(), 16);
    assert_eq!(
        children
            .iter()
            .filter(|c| c.detail.cause.as_deref() == Some(links[1].id.as_str()))
            .count(),
        8
    );
}

#[test]
fn after_a_restart_a_restored_link_alarm_is_adopted_not_raised_again() {
    use crate::rules::engine::Restored;
    let mut s = Site::new();
    let restored = |device: &str, rule: &str, no: u64, id: &str, cause: Option<&str>| Restored {
        device: Arc::from(device),
        rule: Arc::from(rule),
        level: Level::Serious,
        since: at(0.0),
        id: id.into(),
        value: None,
        threshold: None,
        message: String::new(),
        no,
        acked: None,
        condition: true,
        shelved: None,
        cause: cause.map(Arc::from),
    };
    let mut list = vec![restored(
        "link_10_0_0_5_502",
        "link_down",
        1,
        "group-1",
        None,
    )];
    for (k, d) in s.behind.iter().enumerate() {
        list.push(restored(
            &d.id,
            "comm_lost",
            2 + k as u64,
            "x",
            Some("group-1"),
        ));
    }
    s.e.restore(list);
    assert_eq!(
        s.e.active()
            .iter()
            .filter(|a| a.cause.as_deref() == Some("group-1"))
            .count(),
        8
    );
    // Still down after the start: nothing raised, nothing cleared.
    s.rounds(0..6, |_| Outcome::Refused);
    assert!(s.events.is_empty(), "{:#?}", s.events);
    // Back: the restored link alarm clears, the children keep their cause.
    let back = s.round(6, |_| Outcome::Ok);
    assert_eq!(
        (&*back[0].rule, back[0].state),
        ("link_down", AlarmState::Cleared)
    );
    assert!(
        back.iter()
            .filter(|e| &*e.rule == "comm_lost")
            .all(|e| e.state == AlarmState::Cleared && e.detail.cause.as_deref() == Some("group-1"))
    );
}

/// Timeouts of 1 s each make a round of eight devices (8 s) longer than the 6 s
/// horizon: the first `comm_lost` falls due while the last devices were not asked
/// yet. It waits for them; then one link alarm, eight children.
#[test]
fn a_slow_round_of_timeouts_waits_for_the_verdict_and_still_gives_one_link_alarm() {
    let mut s = Site::new();
    s.rounds(0..5, |_| Outcome::Ok);
    let mut t = 10.0;
    let mut got = Vec::new();
    while t < 30.0 {
        for (j, d) in s.behind.clone().iter().enumerate() {
            let at_s = t + j as f64;
            got.extend(s.e.tick(at(at_s - 0.5)));
            got.extend(s.e.on_poll(&poll(d, at_s, Outcome::Timeout, 0.0)));
        }
        t += 8.0;
    }
    let link = raised(&got, "link_silent");
    assert_eq!(link.len(), 1, "{got:#?}");
    // th1 (last answer 8.0 s) is due at 14.0 s, but ups1 is asked only at 17.0 s.
    assert_eq!(
        link[0].ts,
        at(17.0),
        "the verdict comes with the last device's timeout"
    );
    let children = raised(&got, "comm_lost");
    assert_eq!(children.len(), 8, "{got:#?}");
    for c in &children {
        assert_eq!(c.detail.cause.as_deref(), Some(link[0].id.as_str()));
        assert!(
            c.ts >= at(17.0) && c.ts <= at(18.5),
            "{} at {:?}",
            c.device,
            c.ts
        );
    }
    assert!(raised(&got, "link_down").is_empty());
}

/// A device whose link partner is polled rarely: its `comm_lost` waits one more
/// horizon at most, then is raised as its own alarm.
#[test]
fn a_device_waits_for_its_links_verdict_one_horizon_at_most() {
    let a = device(Kind::Climate, "a");
    let b = device(Kind::Climate, "b");
    let mut e = Engine::new(Arc::from("travinh"), Language::En, 1);
    e.add_device(a.clone(), Duration::from_secs(2), defaults(Kind::Climate));
    e.add_device(b.clone(), Duration::from_secs(60), defaults(Kind::Climate));
    e.add_links(plan([(a.clone(), tcp("h", 1)), (b.clone(), tcp("h", 1))]));
    let mut got = Vec::new();
    got.extend(e.on_poll(&poll(&a, 0.0, Outcome::Ok, 22.0)));
    got.extend(e.on_poll(&poll(&b, 0.5, Outcome::Ok, 22.0)));
    let mut t = 2.0;
    while t <= 14.0 {
        got.extend(e.on_poll(&poll(&a, t, Outcome::Timeout, 0.0)));
        got.extend(e.tick(at(t + 1.0)));
        t += 2.0;
    }
    let lost = raised(&got, "comm_lost");
    assert_eq!(lost.len(), 1, "{got:#?}");
    // Due at 6 s (3 × 2 s), waited for b, raised on its own at 12 s (2 horizons).
    assert_eq!(lost[0].ts, at(12.0));
    assert_eq!(lost[0].detail.cause, None);
    assert!(raised(&got, "link_silent").is_empty());
}

#[test]
fn link_texts_name_the_kind_of_link_the_failure_and_every_device() {
    let spec = |key: LinkKey| LinkSpec {
        key,
        devices: vec![device(Kind::Climate, "th1"), device(Kind::Ups, "ups1")],
    };
    let cases = [
        (
            tcp("h", 1),
            Fault::Refused,
            Language::En,
            "Link down: the gateway refuses",
        ),
        (
            tcp("h", 1),
            Fault::Silent,
            Language::En,
            "the gateway answers but its 2 devices do not",
        ),
        (
            tcp("h", 1),
            Fault::Refused,
            Language::Vi,
            "cổng từ chối hoặc cắt kết nối",
        ),
        (tcp("h", 1), Fault::Silent, Language::Vi, "cổng vẫn trả lời"),
        (
            LinkKey::Bus(Arc::from("bus1")),
            Fault::Refused,
            Language::En,
            "Bus down",
        ),
        (
            LinkKey::Bus(Arc::from("bus1")),
            Fault::Silent,
            Language::En,
            "Bus silent",
        ),
        (
            LinkKey::Bus(Arc::from("bus1")),
            Fault::Silent,
            Language::Vi,
            "Bus RS-485 im lặng",
        ),
        (
            LinkKey::Snmp {
                host: "a".into(),
                port: 161,
            },
            Fault::Silent,
            Language::En,
            "SNMP agent not answering; 2 devices",
        ),
    ];
    for (key, fault, lang, want) in cases {
        let text = raised_what(lang, fault, &spec(key));
        assert!(text.contains(want), "{text:?} lacks {want:?}");
        assert!(text.ends_with(": th1, ups1"), "{text:?}");
    }
}

#[test]
fn a_devices_connection_names_its_link() {
    use crate::sources::Connection;
    let a = Connection::ModbusTcp {
        host: "10.0.0.5".into(),
        port: 502,
        unit_id: 1,
    };
    let b = Connection::ModbusTcp {
        host: "10.0.0.5".into(),
        port: 502,
        unit_id: 7,
    };
    assert_eq!(a.link(), b.link(), "unit ids behind one endpoint share it");
    assert_eq!(a.link(), Some(tcp("10.0.0.5", 502)));
    let rtu = Connection::ModbusRtu {
        bus: Arc::from("bus1"),
        unit_id: 3,
    };
    assert_eq!(rtu.link(), Some(LinkKey::Bus(Arc::from("bus1"))));
}
