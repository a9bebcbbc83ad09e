//! Engine tests with an injected clock: every time is an explicit `Timestamp`.

use proptest::prelude::*;

use super::*;
use crate::model::{Kind, Sample};
use crate::points::lookup;
use crate::rules::defaults;

/// 2026-05-28T00:00:00Z, an arbitrary origin for the injected clock.
const T0: i64 = 1_779_926_400_000;

fn at(secs: f64) -> Timestamp {
    Timestamp(T0 + ms(secs))
}

fn device(kind: Kind, id: &str, name: &str) -> Device {
    Arc::new(DeviceMeta {
        id: Arc::from(id),
        name: name.into(),
        label: None,
        room: Arc::from("server1"),
        kind,
    })
}

fn rule(name: &str, point: &'static str, condition: Condition) -> RuleSpec {
    RuleSpec {
        name: Arc::from(name),
        point,
        condition,
        article: "10.3",
        enabled: true,
    }
}

fn temp_high(hysteresis: f64, on_delay_s: f64) -> RuleSpec {
    rule(
        "temperature_high",
        "temperature_c",
        Condition::Above {
            normal: Some(27.0),
            serious: Some(32.0),
            hysteresis,
            on_delay_s,
        },
    )
}

/// One device in an engine, polled every 10 s unless the test says otherwise.
struct Rig {
    e: Engine,
    dev: Device,
}

impl Rig {
    fn new(kind: Kind, rules: Vec<RuleSpec>, lang: Language) -> Rig {
        let dev = device(kind, "dev1", "dev1");
        let mut e = Engine::new(Arc::from("travinh"), lang, 1);
        e.add_device(dev.clone(), Duration::from_secs(10), rules);
        Rig { e, dev }
    }

    fn poll_q(
        &mut self,
        t: f64,
        comm_ok: bool,
        samples: &[(&str, Option<Value>, Quality)],
    ) -> Vec<AlarmEvent> {
        let kind = self.dev.kind;
        let poll = Poll {
            device: self.dev.clone(),
            ts: at(t),
            comm_ok,
            samples: samples
                .iter()
                .map(|(p, v, q)| Sample {
                    point: lookup(kind, p).expect("point in vocabulary"),
                    value: v.clone(),
                    quality: *q,
                })
                .collect(),
        };
        self.e.on_poll(&poll)
    }

    fn poll(&mut self, t: f64, point: &str, v: Value) -> Vec<AlarmEvent> {
        self.poll_q(t, true, &[(point, Some(v), Quality::Good)])
    }

    fn num(&mut self, t: f64, point: &str, v: f64) -> Vec<AlarmEvent> {
        self.poll(t, point, Value::Number(v))
    }

    fn bad(&mut self, t: f64, point: &str) -> Vec<AlarmEvent> {
        self.poll_q(t, true, &[(point, None, Quality::Timeout)])
    }

    fn tick(&mut self, now: Timestamp) -> Vec<AlarmEvent> {
        self.e.tick(now)
    }

    /// The level at which the rule's condition holds now (a cleared alarm that is
    /// still listed, waiting for an acknowledgement, has none).
    fn level(&self, rule: &str) -> Option<Level> {
        self.e
            .active()
            .into_iter()
            .find(|a| &*a.rule == rule && a.state != "cleared")
            .map(|a| a.level)
    }
}

fn summary(events: &[AlarmEvent]) -> Vec<(String, AlarmState, Level)> {
    events
        .iter()
        .map(|e| (e.rule.to_string(), e.state, e.level))
        .collect()
}

fn one(events: &[AlarmEvent]) -> &AlarmEvent {
    assert_eq!(
        events.len(),
        1,
        "expected one event, got {:?}",
        summary(events)
    );
    &events[0]
}

#[test]
fn noisy_signal_around_the_limit_raises_once_and_does_not_chatter() {
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 0.0)], Language::Vi);
    let mut all = Vec::new();
    for (i, v) in [26.9, 27.1, 26.8, 27.2, 26.6, 27.3, 26.7, 27.05, 26.55]
        .iter()
        .enumerate()
    {
        all.extend(r.num(i as f64 * 10.0, "temperature_c", *v));
    }
    assert_eq!(
        summary(&all),
        vec![("temperature_high".into(), AlarmState::Raised, Level::Normal)]
    );
    assert_eq!(all[0].ts, at(10.0));
    assert_eq!(all[0].value, Some(Value::Number(27.1)));
    assert_eq!(all[0].threshold, Some(27.0));
    // Exactly at the limit − hysteresis: back inside, clears.
    let e = r.num(100.0, "temperature_c", 26.5);
    assert_eq!(one(&e).state, AlarmState::Cleared);
    assert_eq!(e[0].level, Level::Normal);
    assert_eq!(r.level("temperature_high"), None);
    // A value equal to the limit is not above it.
    assert!(r.num(110.0, "temperature_c", 27.0).is_empty());
}

#[test]
fn a_spike_shorter_than_the_on_delay_raises_nothing() {
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 60.0)], Language::Vi);
    let mut all = Vec::new();
    all.extend(r.num(0.0, "temperature_c", 25.0));
    all.extend(r.num(10.0, "temperature_c", 35.0)); // a single spike, even above serious
    all.extend(r.num(20.0, "temperature_c", 25.0));
    all.extend(r.tick(at(75.0)));
    for i in 3..20 {
        let t = i as f64 * 10.0;
        // 50 s above, then one sample below: never continuous for 60 s.
        let v = if i % 6 == 0 { 26.0 } else { 28.0 };
        all.extend(r.num(t, "temperature_c", v));
        all.extend(r.tick(at(t + 5.0)));
    }
    assert!(all.is_empty(), "{:?}", summary(&all));
}

#[test]
fn on_delay_completes_on_a_tick_between_polls() {
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 60.0)], Language::Vi);
    for t in (0..60).step_by(10) {
        assert!(r.num(t as f64, "temperature_c", 28.0).is_empty());
        assert!(r.tick(at(t as f64 + 5.0)).is_empty());
    }
    assert!(r.tick(at(59.999)).is_empty());
    let e = r.tick(at(60.0));
    assert_eq!(
        (one(&e).state, e[0].level, e[0].ts),
        (AlarmState::Raised, Level::Normal, at(60.0))
    );
    assert_eq!(e[0].value, Some(Value::Number(28.0)));
    // The next poll at the same level adds nothing.
    assert!(r.num(70.0, "temperature_c", 28.2).is_empty());
    // Escalation needs its own delay.
    for t in (80..140).step_by(10) {
        assert!(r.num(t as f64, "temperature_c", 33.0).is_empty());
    }
    assert!(r.tick(at(139.0)).is_empty());
    let e = r.tick(at(140.0));
    assert_eq!(
        (one(&e).state, e[0].level),
        (AlarmState::Raised, Level::Serious)
    );
    assert_eq!(e[0].threshold, Some(32.0));
    // Clearing has no delay.
    let e = r.num(150.0, "temperature_c", 25.0);
    assert_eq!(
        (one(&e).state, e[0].level),
        (AlarmState::Cleared, Level::Serious)
    );
}

#[test]
fn escalation_and_de_escalation_with_hysteresis() {
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 0.0)], Language::En);
    let steps: &[(f64, Option<(AlarmState, Level)>)] = &[
        (28.0, Some((AlarmState::Raised, Level::Normal))),
        (33.0, Some((AlarmState::Raised, Level::Serious))),
        (31.8, None), // inside the serious hysteresis band
        (31.5, Some((AlarmState::Raised, Level::Normal))), // at serious − hysteresis: de-escalates
        (32.2, Some((AlarmState::Raised, Level::Serious))),
        (26.0, Some((AlarmState::Cleared, Level::Serious))), // straight back inside: one clear
        (26.9, None),
    ];
    for (i, (v, want)) in steps.iter().enumerate() {
        let e = r.num(i as f64 * 10.0, "temperature_c", *v);
        match want {
            None => assert!(e.is_empty(), "{v}: {:?}", summary(&e)),
            Some((state, level)) => {
                let ev = one(&e);
                assert_eq!((ev.state, ev.level), (*state, *level), "at {v}");
            }
        }
    }
    // The de-escalation event speaks of the normal limit.
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 0.0)], Language::En);
    r.num(0.0, "temperature_c", 33.0);
    let e = r.num(10.0, "temperature_c", 30.0);
    assert_eq!(one(&e).threshold, Some(27.0));
    assert_eq!(
        e[0].message,
        "Normal incident #1: dev1 — Temperature 30 °C above 27 °C; in server1; at 07:00:10 on 28 May 2026 (UTC+07:00) (Art. 10.3)"
    );
}

#[test]
fn below_rule_with_only_a_serious_limit() {
    let rules = defaults(Kind::Climate)
        .into_iter()
        .filter(|r| &*r.name == "humidity_low")
        .collect();
    let mut r = Rig::new(Kind::Climate, rules, Language::Vi);
    for t in (0..60).step_by(10) {
        assert!(r.num(t as f64, "humidity_pct", 7.5).is_empty());
    }
    let e = r.num(60.0, "humidity_pct", 7.0);
    assert_eq!(
        (one(&e).state, e[0].level, e[0].threshold),
        (AlarmState::Raised, Level::Serious, Some(8.0))
    );
    assert!(r.num(70.0, "humidity_pct", 9.9).is_empty());
    let e = r.num(80.0, "humidity_pct", 10.0);
    assert_eq!(
        (one(&e).state, e[0].level),
        (AlarmState::Cleared, Level::Serious)
    );
    assert_eq!(
        e[0].message,
        "Hết cảnh báo #1: dev1 — Độ ẩm 10 % đã trở lại trên ngưỡng 8 %; tại server1; lúc 07:01:20 ngày 28/05/2026 (UTC+07:00) (Điều 10.3)"
    );
}

#[test]
fn bad_quality_keeps_the_alarm_and_blocks_the_on_delay() {
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 0.0)], Language::Vi);
    assert_eq!(
        one(&r.num(0.0, "temperature_c", 28.0)).state,
        AlarmState::Raised
    );
    for t in [70.0, 80.0, 90.0] {
        assert!(r.bad(t, "temperature_c").is_empty());
        assert!(
            r.poll_q(
                t + 1.0,
                false,
                &[("temperature_c", None, Quality::CommError)]
            )
            .is_empty()
        );
    }
    assert_eq!(r.level("temperature_high"), Some(Level::Normal));

    // A pending on-delay cannot complete while the latest sample is bad...
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 15.0)], Language::Vi);
    assert!(r.num(0.0, "temperature_c", 28.0).is_empty());
    assert!(r.bad(10.0, "temperature_c").is_empty());
    assert!(r.tick(at(20.0)).is_empty());
    // ...but the short gap does not restart it: the next good sample completes it.
    let e = r.num(25.0, "temperature_c", 28.0);
    assert_eq!((one(&e).state, e[0].ts), (AlarmState::Raised, at(25.0)));

    // A failed poll that carries no samples at all counts as bad too.
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 15.0)], Language::Vi);
    assert!(r.num(0.0, "temperature_c", 28.0).is_empty());
    assert!(r.poll_q(10.0, false, &[]).is_empty());
    assert!(r.tick(at(20.0)).is_empty());
    assert_eq!(one(&r.num(25.0, "temperature_c", 28.0)).ts, at(25.0));
}

#[test]
fn stale_value_does_not_complete_an_on_delay_and_a_long_gap_restarts_it() {
    // Staleness horizon: comm_lost 3 intervals × 10 s = 30 s.
    let mut rules = vec![temp_high(0.5, 60.0)];
    rules.push(defaults(Kind::Climate).pop().unwrap());
    let mut r = Rig::new(Kind::Climate, rules, Language::Vi);
    r.num(0.0, "temperature_c", 28.0);
    // Device goes silent (no polls at all): comm_lost raises, temperature does not.
    let e = r.tick(at(60.0));
    assert_eq!(
        summary(&e),
        vec![("comm_lost".into(), AlarmState::Raised, Level::Normal)]
    );
    // A good sample 100 s later: the on-delay starts again from here.
    let e = r.num(100.0, "temperature_c", 28.0);
    assert_eq!(
        summary(&e),
        vec![("comm_lost".into(), AlarmState::Cleared, Level::Normal)]
    );
    for t in (110..160).step_by(10) {
        assert!(r.num(t as f64, "temperature_c", 28.0).is_empty());
    }
    assert!(r.tick(at(159.9)).is_empty());
    let e = r.num(160.0, "temperature_c", 28.0);
    assert_eq!(one(&e).ts, at(160.0));
}

#[test]
fn comm_lost_and_recovery() {
    let mut r = Rig::new(Kind::Ups, defaults(Kind::Ups), Language::Vi);
    let ok = |r: &mut Rig, t: f64| {
        r.poll_q(
            t,
            true,
            &[("on_battery", Some(Value::Bool(false)), Quality::Good)],
        )
    };
    let fail = |r: &mut Rig, t: f64| r.poll_q(t, false, &[("on_battery", None, Quality::Timeout)]);
    assert!(ok(&mut r, 0.0).is_empty());
    assert!(fail(&mut r, 10.0).is_empty());
    assert!(fail(&mut r, 20.0).is_empty());
    assert!(r.tick(at(29.9)).is_empty());
    let e = fail(&mut r, 30.0);
    let ev = one(&e);
    assert_eq!(
        (&*ev.rule, ev.point, ev.state, ev.level),
        ("comm_lost", "comm", AlarmState::Raised, Level::Serious)
    );
    assert_eq!(
        (ev.value.clone(), ev.threshold),
        (Some(Value::Number(30.0)), Some(30.0))
    );
    assert_eq!(
        ev.message,
        "Sự cố nghiêm trọng #1: dev1 — Mất liên lạc với thiết bị: không có số đo hợp lệ trong 30 giây (3 chu kỳ đọc); tại server1; lúc 07:00:30 ngày 28/05/2026 (UTC+07:00) (Điều 10.1)"
    );
    // No repeat while still silent.
    assert!(r.tick(at(45.0)).is_empty());
    assert!(fail(&mut r, 40.0).is_empty());
    let e = ok(&mut r, 50.0);
    assert_eq!(
        (one(&e).state, e[0].level),
        (AlarmState::Cleared, Level::Serious)
    );
    // Serious and nobody acknowledged it: listed, cleared, until acknowledged.
    let listed = r.e.active();
    assert_eq!((listed.len(), listed[0].state), (1, "cleared"));
    let acked =
        r.e.ack(&listed[0].no.to_string(), "an", None, at(55.0))
            .unwrap();
    assert!(!acked.detail.listed);
    assert!(r.e.active().is_empty());
}

#[test]
fn a_device_never_heard_from_is_lost_after_the_horizon_from_first_sight() {
    let mut r = Rig::new(Kind::Leak, defaults(Kind::Leak), Language::En);
    assert!(r.tick(at(100.0)).is_empty());
    assert!(r.tick(at(129.0)).is_empty());
    let e = r.tick(at(130.0));
    assert_eq!(
        one(&e).message,
        "Normal incident #1: dev1 — Communication lost: no valid reading for 30 s (3 poll intervals); in server1; at 07:02:10 on 28 May 2026 (UTC+07:00) (Art. 10.1)"
    );
}

#[test]
fn boolean_and_state_rules() {
    let mut r = Rig::new(Kind::Leak, defaults(Kind::Leak), Language::Vi);
    let e = r.poll(0.0, "leak_detected", Value::Bool(true));
    let ev = one(&e);
    assert_eq!(
        (ev.state, ev.level, ev.threshold),
        (AlarmState::Raised, Level::Serious, None)
    );
    assert_eq!(
        ev.message,
        "Sự cố nghiêm trọng #1: dev1 — Phát hiện rò rỉ nước; tại server1; lúc 07:00:00 ngày 28/05/2026 (UTC+07:00) (Điều 10.3)"
    );
    assert!(r.poll(10.0, "leak_detected", Value::Bool(true)).is_empty());
    assert_eq!(
        one(&r.poll(20.0, "leak_detected", Value::Bool(false))).state,
        AlarmState::Cleared
    );

    // Door: open longer than 5 min, completed by a tick.
    let mut r = Rig::new(Kind::Door, defaults(Kind::Door), Language::En);
    r.poll(0.0, "door_open", Value::Bool(true));
    for t in (10..300).step_by(10) {
        assert!(r.poll(t as f64, "door_open", Value::Bool(true)).is_empty());
    }
    let e = r.tick(at(300.0));
    assert_eq!(
        one(&e).message,
        "Normal incident #1: dev1 — Door open for more than 5 min; in server1; at 07:05:00 on 28 May 2026 (UTC+07:00) (Art. 7.5)"
    );

    // Cooling unit stopped: the alarm is `unit_on == false`.
    let mut r = Rig::new(Kind::Cooling, defaults(Kind::Cooling), Language::Vi);
    assert!(r.poll(0.0, "unit_on", Value::Bool(true)).is_empty());
    let e = r.poll(10.0, "unit_on", Value::Bool(false));
    assert_eq!(
        (&*one(&e).rule, e[0].level),
        ("unit_stopped", Level::Serious)
    );

    // Generator mode: anything but auto.
    let mut r = Rig::new(Kind::Generator, defaults(Kind::Generator), Language::En);
    assert!(r.poll(0.0, "mode", Value::Enum("auto")).is_empty());
    let e = r.poll(10.0, "mode", Value::Enum("manual"));
    assert_eq!(one(&e).value, Some(Value::Enum("manual")));
    assert_eq!(
        e[0].message,
        "Normal incident #1: dev1 — Generator not in AUTO mode (now: Manual); in server1; at 07:00:10 on 28 May 2026 (UTC+07:00) (Art. 10.5)"
    );
    // manual -> stop: still not auto, same level: no new event.
    assert!(r.poll(20.0, "mode", Value::Enum("stop")).is_empty());
    assert_eq!(
        one(&r.poll(30.0, "mode", Value::Enum("auto"))).state,
        AlarmState::Cleared
    );
}

#[test]
fn rate_of_change_raises_and_clears_with_the_window() {
    let rules: Vec<RuleSpec> = defaults(Kind::Climate)
        .into_iter()
        .filter(|r| r.name.starts_with("temperature_rate"))
        .collect();
    let mut r = Rig::new(Kind::Climate, rules, Language::En);
    let mut all = Vec::new();
    for i in 0..10 {
        all.extend(r.num(i as f64 * 60.0, "temperature_c", 22.0));
    }
    assert!(all.is_empty());
    // 4.9 °C within 15 min: fine. 6 °C: normal.
    assert!(r.num(600.0, "temperature_c", 26.9).is_empty());
    let e = r.num(660.0, "temperature_c", 28.0);
    let ev = one(&e);
    assert_eq!(
        (&*ev.rule, ev.level, ev.value.clone(), ev.threshold),
        (
            "temperature_rate_15min",
            Level::Normal,
            Some(Value::Number(6.0)),
            Some(5.0)
        )
    );
    assert_eq!(
        ev.message,
        "Normal incident #1: dev1 — Temperature changed by 6 °C within 15 min (limit 5 °C); in server1; at 07:11:00 on 28 May 2026 (UTC+07:00) (Art. 10.3)"
    );
    // Steady at 28: the 22 °C samples (last at 540 s) leave the 15-min window at 1440 s.
    for t in (720..1440).step_by(60) {
        assert!(r.num(t as f64, "temperature_c", 28.0).is_empty(), "at {t}");
    }
    let e = r.num(1441.0, "temperature_c", 28.0);
    assert_eq!(
        (one(&e).state, e[0].level),
        (AlarmState::Cleared, Level::Normal)
    );
    // 21 °C within the hour: serious rule.
    let e = r.num(1500.0, "temperature_c", 43.5);
    assert_eq!(
        summary(&e),
        vec![
            (
                "temperature_rate_15min".into(),
                AlarmState::Raised,
                Level::Normal
            ),
            (
                "temperature_rate_60min".into(),
                AlarmState::Raised,
                Level::Serious
            ),
        ]
    );
}

#[test]
fn events_carry_identity_seq_and_deterministic_ids() {
    let run = || {
        let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 0.0)], Language::Vi);
        let mut all = Vec::new();
        for (i, v) in [28.0, 33.0, 26.0, 28.0, 20.0].iter().enumerate() {
            all.extend(r.num(i as f64, "temperature_c", *v));
        }
        (all, r.e.next_seq())
    };
    let (a, next) = run();
    let (b, _) = run();
    assert_eq!(a.len(), 5);
    assert_eq!(next, 6, "started at 1, five events");
    for (i, e) in a.iter().enumerate() {
        assert_eq!(e.seq, 1 + i as u64);
        assert_eq!(e.id, b[i].id, "replay gives the same id");
        let u = uuid::Uuid::parse_str(&e.id).unwrap();
        assert_eq!(u.get_version_num(), 7);
        let (secs, nanos) = u.get_timestamp().unwrap().to_unix();
        assert_eq!(
            secs as i64 * 1000 + i64::from(nanos / 1_000_000),
            e.ts.millis()
        );
        assert_eq!(
            (&*e.site, &*e.device, e.kind, &*e.room, e.point),
            ("travinh", "dev1", Kind::Climate, "server1", "temperature_c")
        );
    }
    let mut ids: Vec<&str> = a.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    // Another site, same inputs: different ids.
    let mut other = Engine::new(Arc::from("other"), Language::Vi, 1);
    let dev = device(Kind::Climate, "dev1", "dev1");
    other.add_device(
        dev.clone(),
        Duration::from_secs(10),
        vec![temp_high(0.5, 0.0)],
    );
    let p = Poll {
        device: dev,
        ts: at(0.0),
        comm_ok: true,
        samples: vec![Sample {
            point: lookup(Kind::Climate, "temperature_c").unwrap(),
            value: Some(Value::Number(28.0)),
            quality: Quality::Good,
        }],
    };
    assert_ne!(other.on_poll(&p)[0].id, a[0].id);
}

#[test]
fn messages_in_both_languages_name_the_device() {
    for (lang, want) in [
        (
            Language::Vi,
            "Sự cố thông thường #1: Phòng máy 1 (th1) — Nhiệt độ 28,4 °C vượt ngưỡng 27 °C; tại server1; lúc 07:00:00 ngày 28/05/2026 (UTC+07:00) (Điều 10.3)",
        ),
        (
            Language::En,
            "Normal incident #1: Phòng máy 1 (th1) — Temperature 28.4 °C above 27 °C; in server1; at 07:00:00 on 28 May 2026 (UTC+07:00) (Art. 10.3)",
        ),
    ] {
        let dev = device(Kind::Climate, "th1", "Phòng máy 1");
        let mut e = Engine::new(Arc::from("s"), lang, 0);
        e.add_device(
            dev.clone(),
            Duration::from_secs(5),
            vec![temp_high(0.5, 0.0)],
        );
        let p = Poll {
            device: dev,
            ts: at(0.0),
            comm_ok: true,
            samples: vec![Sample {
                point: lookup(Kind::Climate, "temperature_c").unwrap(),
                value: Some(Value::Number(28.4)),
                quality: Quality::Good,
            }],
        };
        let ev = e.on_poll(&p);
        assert_eq!(one(&ev).message, want);
        assert_eq!(e.active()[0].message, want);
    }
}

#[test]
fn active_lists_serious_first_then_oldest() {
    let mut e = Engine::new(Arc::from("s"), Language::En, 0);
    let leak = device(Kind::Leak, "leak1", "leak1");
    let door = device(Kind::Door, "door1", "door1");
    let th = device(Kind::Climate, "th1", "th1");
    e.add_device(
        door.clone(),
        Duration::from_secs(1),
        vec![rule(
            "door_open",
            "door_open",
            Condition::Flag {
                when: true,
                level: Level::Normal,
                on_delay_s: 0.0,
            },
        )],
    );
    e.add_device(leak.clone(), Duration::from_secs(1), defaults(Kind::Leak));
    e.add_device(
        th.clone(),
        Duration::from_secs(1),
        vec![temp_high(0.5, 0.0)],
    );
    let poll = |d: &Device, t: f64, p: &str, v: Value| Poll {
        device: d.clone(),
        ts: at(t),
        comm_ok: true,
        samples: vec![Sample {
            point: lookup(d.kind, p).unwrap(),
            value: Some(v),
            quality: Quality::Good,
        }],
    };
    e.on_poll(&poll(&th, 0.0, "temperature_c", Value::Number(28.0)));
    e.on_poll(&poll(&door, 1.0, "door_open", Value::Bool(true)));
    e.on_poll(&poll(&leak, 2.0, "leak_detected", Value::Bool(true)));
    // Escalation keeps `since` but the level moves the alarm up.
    e.on_poll(&poll(&th, 3.0, "temperature_c", Value::Number(33.0)));
    let keys: Vec<(String, Level, Timestamp)> = e
        .active()
        .into_iter()
        .map(|a| (a.key, a.level, a.since))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("th1/temperature_high".into(), Level::Serious, at(0.0)),
            ("leak1/leak_detected".into(), Level::Serious, at(2.0)),
            ("door1/door_open".into(), Level::Normal, at(1.0)),
        ]
    );
    // The active alarm's id is the latest Raised event's.
    let ev = e.on_poll(&poll(&th, 4.0, "temperature_c", Value::Number(30.0)));
    let a = e
        .active()
        .into_iter()
        .find(|a| &*a.rule == "temperature_high")
        .unwrap();
    assert_eq!(a.id, ev[0].id);
    assert_eq!(a.state, "raised");
}

#[test]
fn disabled_rules_and_unknown_devices_raise_nothing() {
    let mut spec = temp_high(0.5, 0.0);
    spec.enabled = false;
    let mut r = Rig::new(Kind::Climate, vec![spec], Language::Vi);
    assert!(r.num(0.0, "temperature_c", 40.0).is_empty());
    assert!(
        r.tick(at(1000.0)).is_empty(),
        "no comm_lost rule, no comm alarm"
    );
    let stranger = device(Kind::Climate, "nobody", "nobody");
    let p = Poll {
        device: stranger,
        ts: at(0.0),
        comm_ok: false,
        samples: vec![],
    };
    assert!(r.e.on_poll(&p).is_empty());
    assert_eq!(r.e.next_seq(), 1);
}

#[test]
fn readding_a_device_replaces_its_rules() {
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 0.0)], Language::Vi);
    r.num(0.0, "temperature_c", 28.0);
    assert_eq!(r.e.active().len(), 1);
    r.e.add_device(r.dev.clone(), Duration::from_secs(10), vec![]);
    assert!(r.e.active().is_empty());
    assert!(r.num(10.0, "temperature_c", 40.0).is_empty());
}

// ---- properties ----

/// The textbook band definition of a two-level upper threshold with hysteresis and
/// no on-delay, written from the value's side.
fn reference_above(prev: Option<Level>, v: f64, n: f64, s: f64, h: f64) -> Option<Level> {
    let serious = v > s || (prev == Some(Level::Serious) && v > s - h);
    let normal = v > n || (prev.is_some() && v > n - h);
    if serious {
        Some(Level::Serious)
    } else if normal {
        Some(Level::Normal)
    } else {
        None
    }
}

/// Check the event stream of one rule: seq increasing, ts non-decreasing, and every
/// event a real change of level.
fn check_alternation(events: &[AlarmEvent]) -> Result<(), TestCaseError> {
    let mut level: Option<Level> = None;
    for w in events.windows(2) {
        prop_assert!(w[1].seq > w[0].seq);
        prop_assert!(w[1].ts >= w[0].ts);
    }
    for e in events {
        match e.state {
            AlarmState::Raised => {
                prop_assert_ne!(level, Some(e.level), "two Raised at the same level");
                level = Some(e.level);
            }
            AlarmState::Cleared => {
                prop_assert_eq!(level, Some(e.level), "Cleared without a matching Raised");
                level = None;
            }
            _ => prop_assert!(false, "unexpected state"),
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn state_matches_the_reference_band_model(
        values in prop::collection::vec(prop_oneof![24.0..35.0f64, 26.0..28.0f64, 30.5..33.0f64], 1..80),
        h in prop_oneof![Just(0.0), 0.0..6.0f64],
    ) {
        let mut r = Rig::new(Kind::Climate, vec![temp_high(h, 0.0)], Language::Vi);
        let mut expected = None;
        let mut all = Vec::new();
        for (i, v) in values.iter().enumerate() {
            all.extend(r.num(i as f64 * 10.0, "temperature_c", *v));
            expected = reference_above(expected, *v, 27.0, 32.0, h);
            prop_assert_eq!(r.level("temperature_high"), expected, "after {} at step {}", v, i);
        }
        check_alternation(&all)?;
    }

    #[test]
    fn raises_only_after_the_condition_held_for_the_on_delay(
        steps in prop::collection::vec((1u32..25, 24.0..35.0f64, any::<bool>(), any::<bool>()), 1..120),
    ) {
        let delay = 60.0;
        let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, delay)], Language::Vi);
        let mut t = 0.0;
        let mut good: Vec<(f64, f64)> = Vec::new();
        let mut all = Vec::new();
        for (dt, v, bad, tick) in steps {
            t += f64::from(dt);
            if tick {
                all.extend(r.tick(at(t)));
                t += 1.0;
            }
            if bad {
                all.extend(r.bad(t, "temperature_c"));
            } else {
                all.extend(r.num(t, "temperature_c", v));
                good.push((t, v));
            }
        }
        check_alternation(&all)?;
        let raw = |v: f64| if v > 32.0 { 2 } else if v > 27.0 { 1 } else { 0 };
        let mut prev: Option<Level> = None;
        for e in &all {
            let t_ev = (e.ts.millis() - T0) as f64 / 1000.0;
            let up = e.state == AlarmState::Raised && prev.is_none_or(|p| e.level > p);
            if up {
                let need = if e.level == Level::Serious { 2 } else { 1 };
                // The run of good samples meeting the condition that ends at the event.
                let upto: Vec<&(f64, f64)> = good.iter().filter(|(gt, _)| *gt <= t_ev + 1e-9).collect();
                let mut start = None;
                for (gt, gv) in upto.iter().rev() {
                    if raw(*gv) >= need { start = Some(*gt) } else { break }
                }
                let start = start.expect("a raise is backed by a good sample meeting the condition");
                prop_assert!(t_ev - start >= delay - 1e-9, "raised at {} but condition held only since {}", t_ev, start);
            }
            prev = if e.state == AlarmState::Raised { Some(e.level) } else { None };
        }
        // Whatever came before, a condition that then holds longer than the delay
        // raises, and a value back inside clears.
        for i in 1..=8 {
            r.num(t + f64::from(i) * 10.0, "temperature_c", 33.0);
        }
        prop_assert_eq!(r.level("temperature_high"), Some(Level::Serious));
        r.num(t + 90.0, "temperature_c", 20.0);
        prop_assert_eq!(r.level("temperature_high"), None);
    }
}

#[test]
fn event_numbers_leave_at_the_points_resolution() {
    // 27.3 + 0.1 in binary is 27.400000000000002; temperature_c has one decimal.
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 0.0)], Language::En);
    let ev = r.num(0.0, "temperature_c", 27.3 + 0.1);
    let ev = one(&ev);
    assert_eq!(ev.value, Some(Value::Number(27.4)));
    assert_eq!(ev.threshold, Some(27.0));
    let json = serde_json::to_string(ev).unwrap();
    assert!(json.contains("\"value\":27.4,"), "{json}");
}

/// One step of a lifecycle scenario, at a time in seconds.
enum Step {
    /// A temperature reading.
    T(f64, f64),
    /// Acknowledge the instance by number.
    Ack(f64, u64),
    /// Shelve the instance for `minutes`.
    Shelve(f64, u64, u64),
    /// Unshelve.
    Unshelve(f64, u64),
    /// Let time pass.
    Tick(f64),
}

/// Run `steps` on one climate device with temperature_high (27 / 32, hysteresis 0.5,
/// no delay); returns every event as `state level no` and the listed states at the end.
fn lifecycle(steps: &[Step]) -> (Vec<String>, Vec<(u64, &'static str)>) {
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 0.0)], Language::En);
    let mut out = Vec::new();
    for s in steps {
        let evs = match s {
            Step::T(t, v) => r.num(*t, "temperature_c", *v),
            Step::Ack(t, no) => vec![r.e.ack(&no.to_string(), "an", None, at(*t)).unwrap()],
            Step::Shelve(t, no, min) => {
                vec![
                    r.e.shelve(
                        &no.to_string(),
                        "an",
                        "sensor being replaced",
                        at(*t + *min as f64 * 60.0),
                        at(*t),
                    )
                    .unwrap(),
                ]
            }
            Step::Unshelve(t, no) => {
                vec![r.e.unshelve(&no.to_string(), "binh", None, at(*t)).unwrap()]
            }
            Step::Tick(t) => r.tick(at(*t)),
        };
        for e in evs {
            out.push(format!(
                "{} {} {}",
                e.state.as_str(),
                e.level.as_str(),
                e.detail.no
            ));
        }
    }
    let listed = r.e.active().into_iter().map(|a| (a.no, a.state)).collect();
    (out, listed)
}

#[test]
fn alarm_lifecycle_scenarios() {
    use Step::*;
    let cases: Vec<(&str, Vec<Step>, Vec<&str>, Vec<(u64, &str)>)> = vec![
        (
            "normal raise and clear: unlisted at the clear",
            vec![T(0.0, 28.0), T(10.0, 25.0)],
            vec!["raised normal 1", "cleared normal 1"],
            vec![],
        ),
        (
            "serious cleared unacknowledged stays listed until acknowledged",
            vec![T(0.0, 33.0), T(10.0, 25.0), Ack(20.0, 1)],
            vec!["raised serious 1", "cleared serious 1", "acked serious 1"],
            vec![],
        ),
        (
            "acknowledged while it holds, then cleared: gone",
            vec![T(0.0, 33.0), Ack(5.0, 1), T(10.0, 25.0)],
            vec!["raised serious 1", "acked serious 1", "cleared serious 1"],
            vec![],
        ),
        (
            "a re-raise after a clear is a new instance",
            vec![T(0.0, 28.0), T(10.0, 25.0), T(20.0, 28.0)],
            vec!["raised normal 1", "cleared normal 1", "raised normal 2"],
            vec![(2, "raised")],
        ),
        (
            "escalation keeps the number and asks for a new acknowledgement",
            vec![T(0.0, 28.0), Ack(5.0, 1), T(10.0, 33.0)],
            vec!["raised normal 1", "acked normal 1", "raised serious 1"],
            vec![(1, "raised")],
        ),
        (
            "de-escalation keeps the acknowledgement",
            vec![T(0.0, 33.0), Ack(5.0, 1), T(10.0, 28.0)],
            vec!["raised serious 1", "acked serious 1", "raised normal 1"],
            vec![(1, "acked")],
        ),
        (
            "shelve expires on time",
            vec![
                T(0.0, 28.0),
                Shelve(10.0, 1, 30),
                Tick(10.0 + 29.0 * 60.0),
                Tick(10.0 + 30.0 * 60.0),
            ],
            vec!["raised normal 1", "shelved normal 1", "unshelved normal 1"],
            vec![(1, "raised")],
        ),
        (
            "unshelve by hand; a shelved serious alarm that clears is gone",
            vec![
                T(0.0, 33.0),
                Shelve(5.0, 1, 60),
                Unshelve(6.0, 1),
                Shelve(7.0, 1, 60),
                T(10.0, 25.0),
            ],
            vec![
                "raised serious 1",
                "shelved serious 1",
                "unshelved serious 1",
                "shelved serious 1",
                "cleared serious 1",
            ],
            vec![],
        ),
    ];
    for (name, steps, want, want_listed) in cases {
        let (got, listed) = lifecycle(&steps);
        assert_eq!(got, want, "{name}");
        assert_eq!(listed, want_listed, "{name}: listed at the end");
    }
}

#[test]
fn shelved_events_carry_the_operator_the_reason_and_the_end() {
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 0.0)], Language::En);
    r.num(0.0, "temperature_c", 28.0);
    let ev =
        r.e.shelve(
            "dev1/temperature_high",
            "An",
            "probe being replaced",
            at(3600.0),
            at(1.0),
        )
        .unwrap();
    assert_eq!(ev.state, AlarmState::Shelved);
    assert_eq!(ev.detail.by.as_deref(), Some("An"));
    assert_eq!(ev.detail.comment.as_deref(), Some("probe being replaced"));
    assert_eq!(ev.detail.shelved_until, Some(at(3600.0)));
    assert!(ev.detail.listed);
    assert!(ev.message.starts_with("Shelved: "), "{}", ev.message);
    assert_eq!(r.e.active()[0].state, "shelved");
    assert!(matches!(
        r.e.shelve("1", "x", "y", at(9.0), at(2.0)),
        Err(AckError::Shelved(_))
    ));
    let ev = r.tick(at(3600.0)).remove(0);
    assert_eq!(
        (ev.state, ev.detail.by.as_deref()),
        (AlarmState::Unshelved, Some("gateway"))
    );
}

#[test]
fn a_value_beyond_its_limit_inside_its_on_delay_is_pending_not_normal() {
    let mut r = Rig::new(Kind::Climate, vec![temp_high(0.5, 30.0)], Language::En);
    assert!(r.num(0.0, "temperature_c", 25.0).is_empty());
    assert!(r.e.pending().is_empty());
    // Beyond the serious limit: pending at serious while the delay runs.
    assert!(r.num(10.0, "temperature_c", 33.0).is_empty());
    let p = r.e.pending();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].point, p[0].level, p[0].since),
        ("temperature_c", Level::Serious, at(10.0))
    );
    // The delay runs out: raised, no longer pending.
    let ev = r.tick(at(40.0));
    assert_eq!(one(&ev).state, AlarmState::Raised);
    assert!(r.e.pending().is_empty());
    // Back inside: nothing pending.
    r.num(50.0, "temperature_c", 25.0);
    assert!(r.e.pending().is_empty());
}
