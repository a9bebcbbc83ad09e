//! The durable buffer against real peers: nothing committed is lost across a database
//! outage, SIGKILLs of the real binary, a broker restart; refused lines are
//! dead-lettered with the server's message; a full budget drops the oldest readings.
//!
//! Ground truth is always the peer's own record: the pymodbus server's count of
//! requests it served (one request per poll of the XY-MD02 profile: input registers
//! 0x0001..0x0002 read together, as in the manual), the samples VictoriaMetrics or
//! InfluxDB 1.6 hold, the messages a persistent `mosquitto_sub` received.
//!
//! Fixture values are the XY-MD02 manual's examples: 0x0131 = 30.5 °C (above the
//! 27 °C threshold), 0x00EB = 23.5 °C (same scaling, value/10), 0x0222 = 54.6 %RH.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dc_gateway::buffer::{self, Buffer};
use dc_gateway::config::{InfluxConfig, MqttConfig};
use dc_gateway::model::{
    AlarmEvent, AlarmState, DeviceMeta, Kind, Level, Poll, Quality, Sample, Timestamp, Value,
};
use dc_gateway::sinks::Record;
use dc_gateway::sinks::influx::InfluxSink;
use dc_gateway::sinks::mqtt::MqttSink;
use dc_gateway::sinks::worker::{self, QueueConfig, SinkQueue};

use crate::e2e::{Gateway, site};
use crate::peers::{
    Influx1, ModbusServer, ModbusSpec, Mosquitto, MosquittoOpts, MqttSubscriber, SubOpts, UnitSpec,
    VictoriaMetrics, free_port, peer_tempdir, wait_until,
};

const HOT: u16 = 0x0131; // 30.5 °C
const COOL: u16 = 0x00EB; // 23.5 °C
const RH: u16 = 0x0222; // 54.6 %RH

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("DCGW_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(now_ms() as u64 | 1);
        eprintln!("random seed {seed} (set DCGW_TEST_SEED to replay)");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

fn sensor() -> ModbusServer {
    ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[COOL, RH])))
}

/// Read the server's request count for unit 1 half-way between two polls (just after
/// one was served), so no poll is on the wire at the cut. Returns (count, cut time ms).
fn cut_between_polls(modbus: &ModbusServer, poll: Duration) -> (u64, i64) {
    let start = modbus.request_count(1);
    let t0 = Instant::now();
    while modbus.request_count(1) == start {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the gateway stopped polling"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let served = Instant::now();
    std::thread::sleep(poll / 2);
    let t = now_ms();
    let n = modbus.request_count(1);
    assert!(
        served.elapsed() < poll,
        "the cut took longer than a poll interval; the machine is overloaded"
    );
    (n, t)
}

fn temperature_samples(vm: &VictoriaMetrics) -> Vec<(i64, f64)> {
    vm.samples("climate_temperature_c")
        .into_iter()
        .map(|s| (s.timestamp_ms, s.value))
        .collect()
}

#[test]
fn victoria_metrics_down_for_two_minutes_loses_no_poll() {
    let modbus = sensor();
    let mut vm = VictoriaMetrics::start_with(true);
    let dir = peer_tempdir("buffer-outage");
    let poll = Duration::from_millis(1000);
    let sinks = format!(
        "[sinks.influx]\nurl = \"{}?org=dc&bucket=facility\"\nflush_interval_ms = 200\n",
        vm.base_url()
    );
    let gw = Gateway::start(
        &site(
            "outage",
            free_port(),
            modbus.addr().port(),
            poll.as_millis() as u64,
            &sinks,
        ),
        dir.path(),
    );
    vm.wait_samples(
        "climate_temperature_c",
        |s| !s.is_empty(),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));

    // The register steps every 5 s; each step is logged with the time it was set, to
    // check every stored value against what the server served at that time.
    let mut steps: Vec<(i64, i64, f64)> = vec![(0, 0, 23.5)];
    let mut set = |raw: u16| {
        let a = now_ms();
        modbus.set_input(1, 1, &[raw]);
        steps.push((a, now_ms(), f64::from(raw) / 10.0));
    };
    vm.stop();
    let down = Instant::now();
    let mut raw = 0x00C8; // 20.0 °C, below every threshold
    while down.elapsed() < Duration::from_secs(120) {
        set(raw);
        raw += 1;
        std::thread::sleep(Duration::from_secs(5));
        if (100..106).contains(&down.elapsed().as_secs()) {
            let s = &gw.api("/api/v1/sinks")["sinks"][0];
            assert_eq!(s["name"], "influx", "{s}");
            assert_eq!(s["connected"], false, "{s}");
            assert!(s["queued"].as_u64().unwrap() >= 90, "{s}");
            assert!(s["oldest_age_s"].as_f64().unwrap() >= 90.0, "{s}");
            assert_eq!(s["dropped"], 0, "{s}");
        }
    }
    vm.start_again();

    let (served, cut) = cut_between_polls(&modbus, poll);
    let counts = modbus.counts();
    assert_eq!(
        counts.requests_for(1),
        counts.requests.get(&(1, 4)).copied().unwrap_or(0),
        "one FC4 read per poll"
    );
    let mut got = Vec::new();
    let ok = wait_until(
        "every poll up to the cut in VictoriaMetrics",
        Duration::from_secs(120),
        || {
            got = temperature_samples(&vm)
                .into_iter()
                .filter(|(t, _)| *t <= cut)
                .collect();
            got.len() as u64 >= served
        },
    );
    if let Err(e) = ok {
        panic!(
            "{e}: {} of {served} polls stored\n--- gateway log ---\n{}",
            got.len(),
            gw.log()
        );
    }
    assert_eq!(
        got.len() as u64,
        served,
        "count per series equals polls made"
    );
    let stamps: HashSet<i64> = got.iter().map(|(t, _)| *t).collect();
    assert_eq!(stamps.len(), got.len(), "one sample per poll time");
    // Values: what the server held at the poll's time (or just before, for a poll in
    // flight while the register changed).
    let value_at = |t: i64| {
        steps
            .iter()
            .rev()
            .find(|(a, _, _)| *a <= t)
            .map(|s| s.2)
            .unwrap_or(23.5)
    };
    for (t, v) in &got {
        let ok = *v == value_at(*t) || *v == value_at(t - 200);
        assert!(
            ok,
            "sample at {t} is {v}, the server held {} then",
            value_at(*t)
        );
    }
    let outage: Vec<&(i64, f64)> = got
        .iter()
        .filter(|(t, _)| *t > steps[1].1 && *t < steps[steps.len() - 1].0)
        .collect();
    assert!(
        outage.len() >= 110,
        "readings of the outage replayed: {}",
        outage.len()
    );
    let s = &gw.api("/api/v1/sinks")["sinks"][0];
    assert_eq!(
        (s["dropped"].as_u64(), s["dead_lettered"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert!(s["retried"].as_u64().unwrap() >= 1, "{s}");
}

#[test]
fn sigkill_ten_times_loses_at_most_one_commit_window_per_kill_and_no_alarm() {
    let modbus = sensor();
    let vm = VictoriaMetrics::start_with(true);
    let dir = peer_tempdir("buffer-kill");
    let poll_ms = 200;
    let commit_ms = 1000;
    let sinks = format!(
        "[sinks.influx]\nurl = \"{}?org=dc&bucket=facility\"\nflush_interval_ms = 100\n\n[storage]\ncommit_interval_ms = {commit_ms}\n",
        vm.base_url()
    );
    let site_toml = site("kill", free_port(), modbus.addr().port(), poll_ms, &sinks)
        .replace("timeout_ms = 500", "timeout_ms = 150");
    let mut rng = Rng::new();
    let mut hot = false;
    // Per incarnation: (start ms, kill ms, requests served).
    let mut runs: Vec<(i64, i64, u64)> = Vec::new();
    // Alarm transitions the gateway certainly saw and committed: (from, to, raised?).
    let mut expected: Vec<(i64, i64, bool)> = Vec::new();
    let mut gw: Option<Gateway> = None;
    for round in 0..10 {
        let before = modbus.request_count(1);
        let start = now_ms();
        match gw.as_mut() {
            None => gw = Some(Gateway::start(&site_toml, dir.path())),
            Some(g) => g.restart(),
        }
        let g = gw.as_mut().unwrap();
        let ready = now_ms();
        let kill_after = rng.ms(2500, 4500);
        // A hot sensor raises nothing new at a restart: the alarm state (raised before
        // the kill, in the journal) is restored.
        std::thread::sleep(Duration::from_millis(500));
        loop {
            let pause = rng.ms(300, 900);
            if Duration::from_millis((now_ms() - ready) as u64) + pause >= kill_after {
                break;
            }
            std::thread::sleep(pause);
            hot = !hot;
            let a = now_ms();
            modbus.set_input(1, 1, &[if hot { HOT } else { COOL }]);
            expected.push((a, now_ms() + 1500, hot));
        }
        let left = kill_after.saturating_sub(Duration::from_millis((now_ms() - ready) as u64));
        std::thread::sleep(left);
        let killed = now_ms();
        g.kill();
        // The last request may still be in the server's input when the process dies.
        std::thread::sleep(Duration::from_millis(300));
        runs.push((start, killed, modbus.request_count(1) - before));
        // Transitions less than one commit window plus a poll before the kill may be lost.
        expected.retain(|(from, _, _)| {
            *from < start || *from + (commit_ms + 2 * poll_ms) as i64 <= killed
        });
        eprintln!(
            "round {round}: {} ms, {} polls served",
            killed - start,
            runs.last().unwrap().2
        );
    }
    // An eleventh start delivers what the killed ones committed.
    let g = gw.as_mut().unwrap();
    g.restart();
    let window = commit_ms / poll_ms + 2;
    let mut per_run: Vec<u64> = Vec::new();
    let done = wait_until(
        "every committed reading in VictoriaMetrics",
        Duration::from_secs(60),
        || {
            let got = temperature_samples(&vm);
            per_run = runs
                .iter()
                .map(|(a, b, _)| got.iter().filter(|(t, _)| t >= a && t <= b).count() as u64)
                .collect();
            per_run.iter().zip(&runs).all(|(n, r)| *n + window >= r.2)
        },
    );
    if let Err(e) = done {
        panic!(
            "{e}: stored {per_run:?}, served {:?}\n--- gateway log ---\n{}",
            runs.iter().map(|r| r.2).collect::<Vec<_>>(),
            g.log()
        );
    }
    let got = temperature_samples(&vm);
    for (i, (a, b, served)) in runs.iter().enumerate() {
        let mine: Vec<i64> = got
            .iter()
            .filter(|(t, _)| t >= a && t <= b)
            .map(|(t, _)| *t)
            .collect();
        let n = mine.len() as u64;
        eprintln!(
            "run {i}: {served} polls served, {n} readings stored, last {} ms before the kill",
            b - mine.last().copied().unwrap_or(*a)
        );
        assert!(
            n <= *served,
            "run {i}: {n} readings stored, only {served} polls served"
        );
        assert!(
            served - n <= window,
            "run {i}: {} readings lost, more than one commit window ({window})",
            served - n
        );
        assert!(n > 0, "run {i}: nothing stored");
        // What is missing is the tail: everything older than one commit window (and a
        // poll or two) before the kill is there.
        let last = *mine.last().unwrap();
        assert!(
            last >= b - (commit_ms + 3 * poll_ms) as i64,
            "run {i}: last stored reading {} ms before the kill",
            b - last
        );
    }
    // Every alarm transition the gateway saw and committed is there.
    let alarms: Vec<(i64, f64)> = vm
        .samples("alarm_state")
        .into_iter()
        .filter(|s| s.labels.get("rule").map(String::as_str) == Some("temperature_high"))
        .map(|s| (s.timestamp_ms, s.value))
        .collect();
    assert!(
        expected.len() >= 10,
        "too few alarm transitions to be a test: {}",
        expected.len()
    );
    eprintln!(
        "{} alarm transitions checked, {} alarm events stored",
        expected.len(),
        alarms.len()
    );
    for (from, to, raised) in &expected {
        let want = if *raised { 1.0 } else { 0.0 };
        assert!(
            alarms
                .iter()
                .any(|(t, v)| t >= from && t <= to && *v == want),
            "no {} event between {from} and {to}; stored: {alarms:?}\n--- gateway log ---\n{}",
            if *raised { "raised" } else { "cleared" },
            g.log()
        );
    }
}

fn alarm(site: &str, seq: u64) -> Record {
    Record::Alarm(Arc::new(AlarmEvent {
        detail: Default::default(),
        id: format!("0190a0b0-0000-7000-8000-{seq:012}"),
        seq,
        ts: Timestamp::now(),
        site: Arc::from(site),
        device: Arc::from(format!("th{}", seq % 7).as_str()),
        kind: Kind::Climate,
        room: Arc::from("server1"),
        point: "temperature_c",
        rule: Arc::from("temperature_high"),
        level: Level::Normal,
        state: if seq.is_multiple_of(2) {
            AlarmState::Raised
        } else {
            AlarmState::Cleared
        },
        value: Some(Value::Number(30.5)),
        threshold: Some(27.0),
        message: format!("Nhiệt độ cao ({seq:04})"),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_restart_during_a_burst_of_500_alarms_loses_none_and_keeps_order() {
    let mut broker = Mosquitto::start(MosquittoOpts {
        persistence: true,
        ..Default::default()
    });
    let site = "burst";
    let topic = format!("dcgw/{site}/alarms/events");
    let sub =
        MqttSubscriber::start(SubOpts::new(broker.port, &topic).persistent("it-burst-consumer"));
    let dir = peer_tempdir("buffer-burst");
    let buffer = Buffer::open(dir.path(), buffer::Options::default()).unwrap();
    let mut cfg = MqttConfig::from_url(&broker.url(), site).unwrap();
    cfg.ack_timeout = Duration::from_secs(3);
    let sink = MqttSink::start("mqtt", Arc::from(site), &cfg).unwrap();
    let qcfg = QueueConfig {
        batch_max: 50,
        linger: Duration::ZERO,
        replay_readings: false,
        live_first: false,
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        ..Default::default()
    };
    let (q, _task) = worker::spawn_on(&buffer, sink, qcfg).unwrap();
    let producer = {
        let q = q.clone();
        tokio::spawn(async move {
            for seq in 1..=500u64 {
                q.push(alarm("burst", seq));
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        })
    };
    // Restart the broker while the burst is on.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let seen_before = tokio::task::block_in_place(|| {
        let n = sub.messages().len();
        broker.stop();
        std::thread::sleep(Duration::from_millis(300));
        broker.start_again();
        n
    });
    producer.await.unwrap();
    let got = sub
        .wait_for_async(
            |m| {
                m.iter()
                    .map(|x| x.payload.clone())
                    .collect::<HashSet<_>>()
                    .len()
                    >= 500
            },
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}: status {:?}", q.status(Timestamp::now())));
    assert!(
        seen_before > 0 && seen_before < 500,
        "the restart was not during the burst ({seen_before} before)"
    );
    assert!(
        sub.connacks().len() >= 2,
        "the subscriber did not reconnect: {:?}",
        sub.connacks()
    );
    // In order: each event's first arrival comes after every earlier event's.
    let mut first: Vec<u64> = Vec::new();
    let mut ids = HashSet::new();
    for m in &got {
        let ev: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        if ids.insert(ev["id"].as_str().unwrap().to_string()) {
            first.push(ev["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(
        first,
        (1..=500).collect::<Vec<_>>(),
        "all 500, first arrivals in seq order"
    );
    wait_async(|| q.status(Timestamp::now()).queued == 0).await;
    let st = q.status(Timestamp::now());
    assert_eq!(
        (st.delivered, st.dropped, st.dead_lettered),
        (500, 0, 0),
        "{st:?}"
    );
}

async fn wait_async(mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn climate(id: &str, ts: i64, temperature: Value) -> Record {
    Record::Poll(Arc::new(Poll {
        device: Arc::new(DeviceMeta {
            id: Arc::from(id),
            name: id.into(),
            label: None,
            room: "dc1".into(),
            kind: Kind::Climate,
        }),
        ts: Timestamp(ts),
        comm_ok: true,
        samples: vec![Sample {
            point: dc_gateway::points::lookup(Kind::Climate, "temperature_c").unwrap(),
            value: Some(temperature),
            quality: Quality::Good,
        }],
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_400_dead_letters_the_bad_line_with_the_servers_message() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = tokio::task::block_in_place(|| {
        let db = Influx1::start(None);
        db.create_db("dc");
        db
    });
    let dir = peer_tempdir("buffer-400");
    let buffer = Buffer::open(dir.path(), buffer::Options::default()).unwrap();
    let cfg = InfluxConfig::from_url(&format!("{}?db=dc", db.base_url()), None).unwrap();
    let sink = InfluxSink::new("influx", Arc::from("tv"), &cfg).unwrap();
    let (q, _task) = worker::spawn_on(
        &buffer,
        sink,
        QueueConfig {
            linger: Duration::ZERO,
            ..Default::default()
        },
    )
    .unwrap();
    let ts = now_ms();
    // temperature_c is a float from now on.
    q.push(climate("t0", ts, Value::Number(20.0)));
    wait_async(|| q.status(Timestamp::now()).delivered == 1).await;
    // One batch, one bad line: a boolean into the float field.
    q.push(climate("t1", ts, Value::Number(21.5)));
    q.push(climate("t2", ts, Value::Bool(true)));
    q.push(climate("t3", ts, Value::Number(22.5)));
    q.push(alarm("tv", 7));
    wait_async(|| q.is_empty()).await;
    let st = q.status(Timestamp::now());
    assert_eq!(
        (st.delivered, st.dead_lettered, st.dropped),
        (4, 1, 0),
        "{st:?}"
    );
    // The server's view: the good lines are stored, the bad one is not.
    let rows = tokio::task::block_in_place(|| db.rows("dc", "SELECT * FROM climate"));
    let mut devices: Vec<&str> = rows.iter().filter_map(|r| r["device"].as_str()).collect();
    devices.sort();
    assert_eq!(devices, vec!["t0", "t1", "t3"], "{rows:?}");
    let alarms = tokio::task::block_in_place(|| db.rows("dc", "SELECT * FROM alarm"));
    assert_eq!(alarms.len(), 1);
    // The dead-letter table, as an operator reads it with sqlite3.
    buffer.flush_async().await.unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("buffer.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT sink, failed_at, reason, record FROM dead_letter")
        .unwrap();
    let dead: Vec<(String, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (sink, failed_at, reason, record) = &dead[0];
    assert_eq!(sink, "influx");
    assert!(failed_at.ends_with('Z'), "{failed_at}");
    assert!(
        reason.contains("field type conflict") && reason.contains("temperature_c"),
        "the server's message: {reason}"
    );
    let record: serde_json::Value = serde_json::from_str(record).unwrap();
    assert_eq!(
        (
            record["device"].as_str(),
            record["samples"]["temperature_c"].as_bool()
        ),
        (Some("t2"), Some(true))
    );
    let queued: i64 = conn
        .query_row("SELECT count(*) FROM queue_influx", [], |r| r.get(0))
        .unwrap();
    assert_eq!(queued, 0, "nothing left to retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_budget_drops_the_oldest_readings_counts_them_and_keeps_alarms() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // VictoriaMetrics is down while the queue fills; afterwards it shows what survived.
    let mut vm = tokio::task::block_in_place(|| {
        let mut vm = VictoriaMetrics::start_with(true);
        vm.stop();
        vm
    });
    let dir = peer_tempdir("buffer-budget");
    let buffer = Buffer::open(dir.path(), buffer::Options::default()).unwrap();
    let t0 = now_ms() - 60_000;
    let size = |r: &Record| buffer::codec::to_vec(r).len() as u64 + buffer::store::ROW_OVERHEAD;
    let (r, a) = (
        size(&climate("b1", t0, Value::Number(1.5))),
        size(&alarm("budget", 1)),
    );
    let budget = 40 * r + 4 * a;
    let cfg = InfluxConfig::from_url(&format!("{}?org=dc&bucket=b", vm.base_url()), None).unwrap();
    let sink = InfluxSink::new("influx", Arc::from("budget"), &cfg).unwrap();
    let qcfg = QueueConfig {
        max_bytes: budget,
        batch_max: 1000,
        linger: Duration::ZERO,
        backoff_min: Duration::from_secs(4),
        backoff_max: Duration::from_secs(4),
        ..Default::default()
    };
    let (q, _task) = worker::spawn_on(&buffer, sink, qcfg).unwrap();
    let push = |q: &SinkQueue, range: std::ops::Range<i64>| {
        for i in range {
            q.push(climate("b1", t0 + i * 100, Value::Number(i as f64)));
            if i % 25 == 0 {
                let mut ev = alarm("budget", i as u64);
                if let Record::Alarm(e) = &mut ev {
                    Arc::get_mut(e).unwrap().ts = Timestamp(t0 + i * 100 + 1);
                }
                q.push(ev);
            }
        }
    };
    push(&q, 0..50);
    buffer.flush_async().await.unwrap();
    // The first attempt failed; the worker now waits (its batch released).
    wait_async(|| q.status(Timestamp::now()).retried >= 1).await;
    push(&q, 50..100);
    buffer.flush_async().await.unwrap();
    let st = q.status(Timestamp::now());
    assert!(st.queued_bytes <= budget, "{st:?} over {budget}");
    assert!(st.dropped > 0, "{st:?}");
    tokio::task::block_in_place(|| vm.start_again());
    wait_async(|| q.is_empty()).await;
    let (polls, alarms) = tokio::task::block_in_place(|| {
        let polls: Vec<i64> = vm
            .samples("climate_temperature_c")
            .iter()
            .map(|s| s.value as i64)
            .collect();
        let alarms: Vec<u64> = vm
            .samples("alarm_seq")
            .iter()
            .map(|s| s.value as u64)
            .collect();
        (polls, alarms)
    });
    let mut alarms = alarms;
    alarms.sort();
    assert_eq!(alarms, vec![0, 25, 50, 75], "every alarm event kept");
    let kept = polls.len() as i64;
    assert_eq!(
        polls,
        ((100 - kept)..100).collect::<Vec<_>>(),
        "the newest readings kept, the oldest dropped"
    );
    let st = q.status(Timestamp::now());
    assert_eq!(
        st.dropped,
        (100 - kept) as u64,
        "every dropped reading counted, exactly: {st:?}"
    );
    assert_eq!(st.delivered, kept as u64 + 4);
    assert!(
        4 * a + kept as u64 * r <= budget && 4 * a + (kept as u64 + 1) * r > budget,
        "kept {kept}: the budget was used"
    );
}

#[test]
fn the_gateway_raises_buffer_high_at_80_percent_of_a_budget_and_then_drops_the_oldest() {
    let modbus = sensor();
    let dir = peer_tempdir("buffer-high");
    let web = free_port();
    // Eight sensors at 10 polls/s each fill a 64 KiB budget in seconds; InfluxDB is
    // a port nobody listens on.
    let mut text = format!(
        "[site]\nname = \"high\"\nlanguage = \"en\"\n\n[[rooms]]\nid = \"server1\"\n\n[web]\nlisten = \"127.0.0.1:{web}\"\n"
    );
    for i in 0..8 {
        text.push_str(&format!(
            "\n[[devices]]\nid = \"th{i}\"\nroom = \"server1\"\nkind = \"climate\"\nprofile = \"xy-md02\"\npoll_interval_ms = 100\ntimeout_ms = 100\n[devices.modbus_tcp]\nhost = \"127.0.0.1\"\nport = {}\nunit_id = 1\n",
            modbus.addr().port()
        ));
    }
    text.push_str(&format!(
        "\n[sinks.influx]\nurl = \"http://127.0.0.1:{}?org=dc&bucket=b\"\n\n[storage.max_size_bytes]\ninflux = 65536\n",
        free_port()
    ));
    let gw = Gateway::start(&text, dir.path());
    let mut alarms = serde_json::Value::Null;
    let raised = wait_until(
        "buffer_high in /api/v1/alarms",
        Duration::from_secs(60),
        || {
            alarms = gw.api("/api/v1/alarms");
            alarms["alarms"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["rule"] == "buffer_high"))
        },
    );
    if let Err(e) = raised {
        panic!(
            "{e}: {alarms}\nsinks: {}\n--- gateway log ---\n{}",
            gw.api("/api/v1/sinks"),
            gw.log()
        );
    }
    let a = alarms["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == "buffer_high")
        .unwrap()
        .clone();
    assert_eq!(a["device"], "gateway", "{a}");
    assert_eq!(a["point"], "buffer_used_pct", "{a}");
    assert_eq!(a["threshold"], 80.0, "{a}");
    assert!(a["value"].as_f64().unwrap() > 80.0, "{a}");
    let s = &gw.api("/api/v1/sinks")["sinks"][0];
    assert!(
        s["queued_bytes"].as_u64().unwrap() as f64 >= 0.8 * 65536.0,
        "{s}"
    );
    // Full: the oldest readings go, counted, and the queue stays within its budget.
    let mut s = serde_json::Value::Null;
    wait_until(
        "readings dropped over budget",
        Duration::from_secs(60),
        || {
            s = gw.api("/api/v1/sinks")["sinks"][0].clone();
            s["dropped"].as_u64().unwrap_or(0) > 0
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {s}"));
    // What the API shows also holds the readings waiting for the next commit; the
    // budget is what is on disk.
    let db = rusqlite::Connection::open_with_flags(
        dir.path().join("state/buffer.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let on_disk: i64 = db
        .query_row(
            "SELECT coalesce(sum(length(body)), 0) + 24 * count(*) FROM queue_influx",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        on_disk <= 65536 && on_disk > 60_000,
        "{on_disk} bytes queued on disk; budget 65536"
    );
}
