//! The GPIO source against the fake backend: config validation, debounce, still-alive
//! polls, a failing chip, the probe.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::fake::FakeGpio;
use super::*;
use crate::model::{Poll, Quality, Value};

/// One GPIO header wired to a fire panel (two contacts), a leak rope and a door.
const HEADER: &str = r#"
[site]
name = "t"
[[rooms]]
id = "r1"
[[rooms]]
id = "r2"
[[devices]]
id = "fire1"
room = "r1"
kind = "fire_panel"
label = "FACP-01"
profile = "gpio-fire-panel"
poll_interval_ms = 10000
[devices.gpio]
chip = "gpiochip0"
debounce_ms = 30
[devices.gpio.lines]
fire_alarm = { name = "FIRE", active_low = true, bias = "pull_up" }
fault = { offset = 1 }
[[devices]]
id = "leak1"
room = "r1"
kind = "leak"
profile = "gpio-leak"
[devices.gpio.lines]
leak_detected = { chip = "gpiochip0", offset = 2, active_low = true }
[[devices]]
id = "door1"
room = "r2"
kind = "door"
label = "D-02"
profile = "gpio-door"
[devices.gpio.lines]
door_open = { name = "DOOR" }
"#;

fn fake() -> FakeGpio {
    let g = FakeGpio::new();
    g.add_chip("gpiochip0", &["FIRE", "FAULT", "LEAK", "DOOR"]);
    g
}

fn site(text: &str) -> crate::config::Site {
    crate::config::parse(text, "site.toml", Path::new("/")).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str) -> String {
    match crate::config::parse(text, "site.toml", Path::new("/")) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn one_header_several_logical_devices() {
    let s = site(HEADER);
    let devs = devices(&s);
    assert_eq!(devs.len(), 3);
    let fire = &devs[0];
    assert_eq!(fire.meta.label.as_deref(), Some("FACP-01"));
    assert_eq!(fire.conn.debounce, Duration::from_millis(30));
    let lines: Vec<(&str, String, bool, Bias)> = fire
        .conn
        .lines
        .iter()
        .map(|(p, l)| (p.name, l.at.to_string(), l.active_low, l.bias))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("fault", "gpiochip0:1".to_string(), false, Bias::AsIs),
            ("fire_alarm", "FIRE".to_string(), true, Bias::PullUp)
        ]
    );
    assert_eq!(
        devs[1].conn.debounce,
        Duration::from_millis(config::DEFAULT_DEBOUNCE_MS)
    );
    assert_eq!(&*devs[2].meta.room, "r2");
}

#[test]
fn bad_lines_are_reported_where_they_are() {
    let text = HEADER
        .replace(
            "fault = { offset = 1 }",
            "fault = { offset = 1, name = \"FAULT\" }\nsmoke = { name = \"X\" }",
        )
        .replace(
            "leak_detected = { chip = \"gpiochip0\", offset = 2, active_low = true }",
            "leak_detected = { offset = 2, bias = \"up\" }",
        )
        .replace(
            "door_open = { name = \"DOOR\" }",
            "door_open = { name = \"FIRE\" }",
        );
    let e = errors(&text);
    assert!(e.contains("site.toml:20:30: devices[0] (fire1) .gpio.lines.fault: give the line's name or its offset, not both"), "{e}");
    assert!(e.contains("devices[0] (fire1) .gpio.lines.smoke: profile \"gpio-fire-panel\" has no point \"smoke\""), "{e}");
    assert!(
        e.contains("devices[1] (leak1) .gpio.lines.leak_detected.offset: an offset needs its chip"),
        "{e}"
    );
    assert!(
        e.contains("devices[1] (leak1) .gpio.lines.leak_detected.bias: unknown bias \"up\""),
        "{e}"
    );
    assert!(e.contains("devices[2] (door1) .gpio.lines.door_open: line FIRE is already used by fire1 (fire_alarm)"), "{e}");
    // A GPIO profile on a Modbus connection is the existing protocol check.
    let e = errors(&HEADER.replace(
        "[devices.gpio]\nchip = \"gpiochip0\"\ndebounce_ms = 30\n[devices.gpio.lines]\nfire_alarm = { name = \"FIRE\", active_low = true, bias = \"pull_up\" }\nfault = { offset = 1 }",
        "[devices.modbus_tcp]\nhost = \"127.0.0.1\"",
    ));
    assert!(
        e.contains(
            "profile \"gpio-fire-panel\" is a gpio profile, but the device has a modbus connection"
        ),
        "{e}"
    );
}

fn fire_device(debounce_ms: u64, poll: Duration) -> GpioDevice {
    let s = site(&HEADER.replace("debounce_ms = 30", &format!("debounce_ms = {debounce_ms}")));
    let mut d = devices(&s).remove(0);
    d.poll_interval = poll;
    d
}

fn flag(p: &Poll, name: &str) -> Option<bool> {
    p.samples
        .iter()
        .find(|s| s.point.name == name)
        .and_then(|s| match s.value {
            Some(Value::Bool(b)) => Some(b),
            _ => None,
        })
}

async fn next(rx: &mut mpsc::Receiver<Poll>, within: Duration) -> Option<Poll> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

/// A contact bouncing 10 times in 20 ms gives one poll, timed at the first edge, once
/// it is steady; a burst that ends where it started gives none.
#[tokio::test]
async fn a_bouncing_contact_is_one_change() {
    let g = fake();
    let (tx, mut rx) = mpsc::channel(16);
    let task = spawn(
        fire_device(30, Duration::from_secs(10)),
        Arc::new(g.clone()),
        tx,
    );
    let first = next(&mut rx, Duration::from_secs(2))
        .await
        .expect("a poll at start");
    assert!(first.comm_ok);
    assert_eq!(flag(&first, "fire_alarm"), Some(false));
    assert_eq!(g.held("gpiochip0", 0), Some((true, Bias::PullUp)));

    let t0 = crate::model::Timestamp::now();
    let started = Instant::now();
    // 10 edges in 20 ms, ending low: the opto-coupler conducts, the contact is closed.
    for i in 0..10 {
        g.set_level("gpiochip0", 0, i % 2 == 1);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    g.set_level("gpiochip0", 0, false);
    let p = next(&mut rx, Duration::from_secs(2))
        .await
        .expect("the change");
    let took = started.elapsed();
    assert_eq!(flag(&p, "fire_alarm"), Some(true));
    assert!(
        p.ts.millis() - t0.millis() < 10,
        "timed at the first edge: {} vs {}",
        p.ts.millis(),
        t0.millis()
    );
    assert!(
        took >= Duration::from_millis(30),
        "waited for the line to be steady: {took:?}"
    );
    assert!(took < Duration::from_millis(200), "{took:?}");
    assert!(
        next(&mut rx, Duration::from_millis(200)).await.is_none(),
        "one poll for the bounce"
    );

    // A glitch that ends where it started: no poll.
    g.set_level("gpiochip0", 0, true);
    g.set_level("gpiochip0", 0, false);
    assert!(next(&mut rx, Duration::from_millis(200)).await.is_none());
    task.abort();
}

/// Between changes the lines are read once per interval; a failing chip is
/// `comm_error` every interval and the lines are requested again once it is back.
#[tokio::test]
async fn still_alive_polls_and_a_failing_chip() {
    let g = fake();
    let (tx, mut rx) = mpsc::channel(16);
    let task = spawn(
        fire_device(0, Duration::from_millis(100)),
        Arc::new(g.clone()),
        tx,
    );
    for _ in 0..3 {
        let p = next(&mut rx, Duration::from_secs(1))
            .await
            .expect("a still-alive poll");
        assert!(p.comm_ok);
        assert_eq!(
            flag(&p, "fault"),
            Some(true),
            "no pull-down: FAULT reads high"
        );
    }
    g.set_failing("gpiochip0", true);
    let mut failed = 0;
    while failed < 2 {
        let p = next(&mut rx, Duration::from_secs(1))
            .await
            .expect("polls go on");
        if !p.comm_ok {
            assert!(
                p.samples
                    .iter()
                    .all(|s| s.quality == Quality::CommError && s.value.is_none())
            );
            failed += 1;
        }
    }
    g.set_failing("gpiochip0", false);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let p = next(&mut rx, Duration::from_secs(1))
            .await
            .expect("polls go on");
        if p.comm_ok {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered");
    }
    task.abort();
}

/// A line held by someone else is `comm_error` (the kernel says busy), not a crash.
#[tokio::test]
async fn a_busy_line_is_comm_error() {
    let g = fake();
    let dev = fire_device(0, Duration::from_millis(100));
    let _held = g
        .request("other", &[dev.conn.lines[1].1.clone()])
        .expect("first request");
    let (tx, mut rx) = mpsc::channel(4);
    let task = spawn(dev, Arc::new(g.clone()), tx);
    let p = next(&mut rx, Duration::from_secs(1)).await.expect("a poll");
    assert!(!p.comm_ok);
    assert!(p.samples.iter().all(|s| s.quality == Quality::CommError));
    task.abort();
}

#[test]
fn probe_prints_line_states() {
    let g = fake();
    g.set_level("gpiochip0", 0, false);
    let out = probe(&fire_device(30, Duration::from_secs(1)), &g).expect("probe");
    assert!(
        out.starts_with("fire1 (fire_panel): 2 lines, debounce 30 ms\n"),
        "{out}"
    );
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![
                "fault",
                "gpiochip0:1",
                "gpiochip0:1",
                "as_is",
                "high",
                "true"
            ],
            vec![
                "fire_alarm",
                "FIRE",
                "gpiochip0:0",
                "pull_up",
                "low",
                "true"
            ],
        ]
    );
    // The probe released its lines.
    assert_eq!(g.held("gpiochip0", 0), None);
    let e = probe(&fire_device(30, Duration::from_secs(1)), &FakeGpio::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot open GPIO chip gpiochip0: No such file or directory"
    );
}

/// The real kernel backend on a machine without that chip or line: a clear error, no
/// panic; the device's task turns it into `comm_error` polls.
#[tokio::test]
async fn the_kernel_backend_reports_a_missing_chip_or_line() {
    let k = kernel::backend();
    let by_offset = LineSpec {
        at: LineAt::Offset {
            chip: "gpiochip-dcgw-absent".into(),
            offset: 3,
        },
        active_low: true,
        bias: Bias::PullUp,
    };
    let e = k
        .request("dc-gateway-test", &[by_offset])
        .err()
        .expect("no such chip");
    assert!(e.to_string().contains("gpiochip-dcgw-absent"), "{e}");
    let by_name = LineSpec {
        at: LineAt::Name("DCGW_NO_SUCH_LINE".into()),
        active_low: false,
        bias: Bias::AsIs,
    };
    let e = k
        .request("dc-gateway-test", &[by_name])
        .err()
        .expect("no such line");
    assert_eq!(
        e.to_string(),
        "no GPIO line named \"DCGW_NO_SUCH_LINE\" on any chip"
    );

    let mut dev = fire_device(0, Duration::from_millis(100));
    dev.conn.lines[1].1.at = LineAt::Name("DCGW_NO_SUCH_LINE".into());
    let (tx, mut rx) = mpsc::channel(4);
    let task = spawn(dev, k, tx);
    let p = next(&mut rx, Duration::from_secs(1)).await.expect("a poll");
    assert!(!p.comm_ok);
    assert!(p.samples.iter().all(|s| s.quality == Quality::CommError));
    task.abort();
}

/// A line that never settles (an edge every 5 ms) is still read once per interval, so
/// the device does not fall silent into comm_lost.
#[tokio::test]
async fn a_chattering_line_is_still_reported_every_interval() {
    let g = fake();
    let (tx, mut rx) = mpsc::channel(64);
    let task = spawn(
        fire_device(30, Duration::from_millis(100)),
        Arc::new(g.clone()),
        tx,
    );
    next(&mut rx, Duration::from_secs(1))
        .await
        .expect("first poll");
    let chatter = {
        let g = g.clone();
        tokio::spawn(async move {
            for i in 0..100 {
                g.set_level("gpiochip0", 0, i % 2 == 0);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let mut polls = 0;
    while started.elapsed() < Duration::from_millis(450) {
        if let Some(p) = next(&mut rx, Duration::from_millis(250)).await {
            assert!(p.comm_ok);
            polls += 1;
        }
    }
    chatter.abort();
    assert!(polls >= 2, "polls during 450 ms of chatter: {polls}");
    task.abort();
}
