//! The Modbus TCP source against a real pymodbus server (`peers::ModbusServer`).
//!
//! Everything goes through the public API: `sources::modbus::spawn` with an mpsc
//! receiver, exactly as the runtime uses it. Register values are hand-written from the
//! XY-MD02 vendor manual ("温湿度变送器 XY-MD02", edition updated 2018-12-19, section
//! "MODBUS commands"), never produced by our own encoder: input register 0x0001 is the
//! temperature (signed, 0.1 °C: 0x0131 = 30.5 °C, 0xFF33 = -20.5 °C), 0x0002 the
//! relative humidity (0.1 %RH: 0x0222 = 54.6 %RH). Ground truth for request counts is
//! the server's own log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dc_gateway::model::{DeviceMeta, Kind, Poll, Quality, Value};
use dc_gateway::sources::modbus::{self, TcpDevice, profile};
use tokio::sync::mpsc;

use crate::peers::{ModbusServer, ModbusSpec, UnitSpec};

/// XY-MD02 manual, read temperature example: 0xFF33 = -205 → -20.5 °C.
const TEMP_MINUS_20_5: u16 = 0xFF33;
/// XY-MD02 manual, read temperature example: 0x0131 = 305 → 30.5 °C.
const TEMP_30_5: u16 = 0x0131;
/// XY-MD02 manual, read humidity example: 0x0222 = 546 → 54.6 %RH.
const HUM_54_6: u16 = 0x0222;

pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

pub(crate) fn xy_md02() -> Arc<profile::Profile> {
    let (file, text) = profile::shipped()
        .into_iter()
        .find(|(f, _)| *f == "xy-md02.toml")
        .expect("xy-md02 is shipped");
    Arc::new(profile::parse(text, file).unwrap_or_else(|e| panic!("{e}")))
}

fn device(
    id: &str,
    server: &ModbusServer,
    unit_id: u8,
    interval_ms: u64,
    timeout_ms: u64,
) -> TcpDevice {
    TcpDevice {
        meta: Arc::new(DeviceMeta {
            id: id.into(),
            name: id.into(),
            label: None,
            room: "it".into(),
            kind: Kind::Climate,
        }),
        addr: server.addr().to_string(),
        unit_id,
        poll_interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(timeout_ms),
        profile: xy_md02(),
    }
}

pub(crate) fn number(poll: &Poll, point: &str) -> Option<f64> {
    poll.samples
        .iter()
        .find(|s| s.point.name == point)?
        .value
        .as_ref()
        .and_then(Value::as_f64)
}

pub(crate) fn approx(v: Option<f64>, want: f64) -> bool {
    v.is_some_and(|v| (v - want).abs() < 1e-9)
}

pub(crate) fn qualities(poll: &Poll) -> Vec<Quality> {
    poll.samples.iter().map(|s| s.quality).collect()
}

/// The next poll satisfying `pred`, or a panic naming `what` and the last poll seen
/// (every point's quality and value). Shared by the source tests (Modbus TCP, RTU, SNMP).
pub(crate) async fn poll_where(
    rx: &mut mpsc::Receiver<Poll>,
    what: &str,
    pred: impl Fn(&Poll) -> bool,
) -> Poll {
    let start = Instant::now();
    let mut last = String::from("no poll at all");
    while start.elapsed() < DEADLINE {
        match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            Ok(Some(p)) if pred(&p) => return p,
            Ok(Some(p)) => {
                last = format!(
                    "{}: comm_ok={} {:?}",
                    p.device.id,
                    p.comm_ok,
                    p.samples
                        .iter()
                        .map(|s| (s.point.name, s.quality, s.value.clone()))
                        .collect::<Vec<_>>()
                )
            }
            Ok(None) => panic!("poller stopped while waiting for {what}"),
            Err(_) => {}
        }
    }
    panic!("no poll with {what} within {DEADLINE:?}; last: {last}");
}

pub(crate) fn all_good(p: &Poll) -> bool {
    p.comm_ok && p.samples.iter().all(|s| s.quality == Quality::Good)
}

pub(crate) fn all_quality(q: Quality) -> impl Fn(&Poll) -> bool {
    move |p: &Poll| {
        !p.comm_ok
            && p.samples
                .iter()
                .all(|s| s.quality == q && s.value.is_none())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xy_md02_decodes_vendor_examples_in_one_request_per_poll() {
    let mut server = ModbusServer::start(
        ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[TEMP_MINUS_20_5, HUM_54_6])),
    );
    let (tx, mut rx) = mpsc::channel(64);
    let task = modbus::spawn(device("it-xy-decode", &server, 1, 200, 1000), tx);

    let p = poll_where(&mut rx, "good quality", all_good).await;
    assert_eq!(p.samples.len(), 2);
    assert!(
        (number(&p, "temperature_c").unwrap() - -20.5).abs() < 1e-9,
        "{p:?}"
    );
    assert!(
        (number(&p, "humidity_pct").unwrap() - 54.6).abs() < 1e-9,
        "{p:?}"
    );

    // A new value on the device shows up in a later poll.
    server.set_input(1, 1, &[TEMP_30_5]);
    let p = poll_where(&mut rx, "30.5 °C", |p| {
        approx(number(p, "temperature_c"), 30.5)
    })
    .await;
    assert!((number(&p, "humidity_pct").unwrap() - 54.6).abs() < 1e-9);

    // Two adjacent input registers: one request per poll, reading both.
    server.reset_counts();
    let mut polls = 0u64;
    while polls < 8 {
        let p = poll_where(&mut rx, "good quality", all_good).await;
        assert!(p.comm_ok);
        polls += 1;
    }
    task.abort();
    let _ = task.await;
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .all(|r| (r.unit, r.fc, r.address, r.count) == (1, 4, 1, 2)),
        "every request must read input registers 1..3 in one go: {requests:?}"
    );
    // The first poll after the reset may have been served just before it.
    let n = requests.len() as u64;
    assert!(
        n == polls || n + 1 == polls,
        "{n} requests served for {polls} polls"
    );
    assert_eq!(server.counts().total(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_unit_gives_device_exception_and_keeps_polling() {
    // pymodbus answers a unit id it does not serve with exception 0x04.
    let server = ModbusServer::start(
        ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[TEMP_30_5, HUM_54_6])),
    );
    let (tx, mut rx) = mpsc::channel(64);
    let task = modbus::spawn(device("it-xy-absent", &server, 7, 200, 1000), tx);
    for _ in 0..3 {
        poll_where(
            &mut rx,
            "device_exception",
            all_quality(Quality::DeviceException),
        )
        .await;
    }
    task.abort();
    assert!(
        server.exception_count(7) >= 3,
        "server log: {:?}",
        server.counts()
    );
    assert_eq!(server.request_count(1), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_server_gives_timeout_then_recovers() {
    let mut server = ModbusServer::start(
        ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[TEMP_30_5, HUM_54_6])),
    );
    let (tx, mut rx) = mpsc::channel(64);
    let task = modbus::spawn(device("it-xy-pause", &server, 1, 300, 200), tx);
    poll_where(&mut rx, "good quality", all_good).await;

    server.pause();
    poll_where(&mut rx, "timeout", all_quality(Quality::Timeout)).await;
    // Still one poll per interval while the device is silent (ts is when each poll
    // ended, so count polls over a window rather than measuring single gaps).
    let window = Duration::from_millis(2400);
    let start = Instant::now();
    let mut n = 0;
    while let Ok(Some(p)) =
        tokio::time::timeout(window.saturating_sub(start.elapsed()), rx.recv()).await
    {
        assert!(
            all_quality(Quality::Timeout)(&p),
            "while paused: {:?}",
            qualities(&p)
        );
        n += 1;
    }
    assert!(
        (6..=10).contains(&n),
        "{n} polls in {window:?} while timing out (interval 0.3 s, 8 expected)"
    );

    server.resume();
    let p = poll_where(&mut rx, "good quality after resume", all_good).await;
    assert!(approx(number(&p, "temperature_c"), 30.5), "{p:?}");
    task.abort();

    let metrics = dc_gateway::metrics::get().encode();
    assert!(
        metrics.lines().any(|l| l.starts_with("dcgw_polls_total{")
            && l.contains("device=\"it-xy-pause\"")
            && l.contains("result=\"timeout\"")),
        "timeouts are counted: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_server_gives_comm_error_then_recovers() {
    let mut server = ModbusServer::start(
        ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[TEMP_30_5, HUM_54_6])),
    );
    let (tx, mut rx) = mpsc::channel(64);
    let task = modbus::spawn(device("it-xy-restart", &server, 1, 200, 1000), tx);
    poll_where(&mut rx, "good quality", all_good).await;

    server.stop();
    poll_where(&mut rx, "comm_error", all_quality(Quality::CommError)).await;
    server.start_again();
    let p = poll_where(&mut rx, "good quality after restart", all_good).await;
    assert!(approx(number(&p, "humidity_pct"), 54.6), "{p:?}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_device_does_not_slow_a_healthy_one() {
    let healthy = ModbusServer::start(
        ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[TEMP_30_5, HUM_54_6])),
    );
    let mut failing = ModbusServer::start(
        ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[TEMP_MINUS_20_5, HUM_54_6])),
    );
    let interval_ms = 250;
    let (tx, mut rx) = mpsc::channel(256);
    let a = modbus::spawn(
        device("it-xy-healthy", &healthy, 1, interval_ms, 200),
        tx.clone(),
    );
    let b = modbus::spawn(device("it-xy-failing", &failing, 1, interval_ms, 200), tx);

    // Both answer first, then one goes silent.
    let mut seen = (false, false);
    while !(seen.0 && seen.1) {
        let p = poll_where(&mut rx, "good quality", all_good).await;
        match p.device.id.as_ref() {
            "it-xy-healthy" => seen.0 = true,
            _ => seen.1 = true,
        }
    }
    failing.pause();
    poll_where(&mut rx, "timeout on the failing device", |p| {
        p.device.id.as_ref() == "it-xy-failing" && all_quality(Quality::Timeout)(p)
    })
    .await;

    let window = Duration::from_secs(4);
    let start = Instant::now();
    let (mut good, mut bad) = (0u32, 0u32);
    while start.elapsed() < window {
        let left = window.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(p)) if p.device.id.as_ref() == "it-xy-healthy" => {
                assert!(all_good(&p), "healthy device degraded: {:?}", qualities(&p));
                good += 1;
            }
            Ok(Some(p)) => {
                assert!(!p.comm_ok, "the paused device answered");
                bad += 1;
            }
            Ok(None) => panic!("pollers stopped"),
            Err(_) => break,
        }
    }
    failing.resume();
    a.abort();
    b.abort();
    let expected = window.as_millis() as f64 / interval_ms as f64; // 16
    for (name, n) in [("healthy", good), ("failing", bad)] {
        let ratio = f64::from(n) / expected;
        assert!(
            (0.8..=1.2).contains(&ratio),
            "{name} device: {n} polls in {window:?}, expected about {expected}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_refusing_reads_across_holes_is_read_in_parts() {
    // A device whose register map has a hole at 0x0002 and answers any read touching it
    // with exception 02 (pymodbus "strict" unit). The profile maps 0x0001 and 0x0003, a
    // gap small enough to merge by default.
    let text = r#"
        id = "holey"
        kind = "climate"
        protocol = "modbus"
        [[points]]
        point = "temperature_c"
        table = "input"
        address = 1
        type = "i16"
        scale = 0.1
        source = "XY-MD02 manual, 'MODBUS commands', register 0x0001 (temperature layout)"
        [[points]]
        point = "humidity_pct"
        table = "input"
        address = 3
        type = "u16"
        scale = 0.1
        source = "XY-MD02 manual, 'MODBUS commands', register 0x0002 (humidity layout, moved to 0x0003)"
    "#;
    let profile = Arc::new(profile::parse(text, "holey.toml").unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(
        profile.plan().reads.len(),
        1,
        "the plan merges across the hole"
    );
    let server = ModbusServer::start(
        ModbusSpec::new().unit(
            1,
            UnitSpec::new()
                .input(1, &[TEMP_30_5])
                .input(3, &[HUM_54_6])
                .strict(),
        ),
    );
    let mut dev = device("it-holey", &server, 1, 200, 1000);
    dev.profile = profile;
    let (tx, mut rx) = mpsc::channel(64);
    let task = modbus::spawn(dev, tx);
    let first = poll_where(&mut rx, "any poll", |_| true).await;
    assert_eq!(qualities(&first), vec![Quality::DeviceException; 2]);
    let p = poll_where(&mut rx, "good quality", all_good).await;
    assert!(
        approx(number(&p, "temperature_c"), 30.5) && approx(number(&p, "humidity_pct"), 54.6),
        "{p:?}"
    );
    task.abort();
    let reqs: Vec<(u16, u16)> = server
        .requests()
        .iter()
        .map(|r| (r.address, r.count))
        .collect();
    assert_eq!(reqs.first(), Some(&(1, 3)), "{reqs:?}");
    assert!(
        reqs[1..].iter().all(|r| *r == (1, 1) || *r == (3, 1)),
        "{reqs:?}"
    );
}
