//! The durable buffer benchmark: `cargo bench --bench buffer [-- FLAGS]`.
//!
//! Measures, on the machine it runs on, with the gateway's own code (the buffer, the
//! queue worker, the InfluxDB sink) and a real VictoriaMetrics:
//!
//! 1. **Append throughput** with the default commit policy (commit every second or
//!    every 5 000 records, WAL, `synchronous=FULL`): an outage's worth of readings
//!    (`--outage-s` × `--rate`, default 600 s × 2 000 readings/s = 1.2 M readings in
//!    polls of 10 readings from 200 power meters) appended as fast as possible and
//!    committed; readings/s from the first append to the last commit.
//! 2. **Replay rate** after that outage: the buffer is closed and reopened (as after
//!    a restart), VictoriaMetrics is started empty, the InfluxDB sink's queue worker
//!    replays the backlog while live polls keep arriving at `--rate`; readings/s from
//!    the worker's start until the whole backlog is confirmed, the delay of live
//!    records during the catch-up, and VictoriaMetrics' own count of what it holds.
//! 3. **Disk bytes written per reading while healthy**: the live stream at `--rate`
//!    and at 50 readings/s for `--healthy-s` seconds each, delivered to
//!    VictoriaMetrics as it arrives; `write_bytes` of `/proc/self/io` (bytes this
//!    process caused to be written to storage: the SQLite WAL and checkpoints) over
//!    readings appended.
//!
//! The state directory is on the file system of `--dir` (default: the system temp
//! dir); it must be a real disk, not tmpfs, for the write figures to mean anything.
//! VictoriaMetrics runs on the same machine and competes for its cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dc_gateway::buffer::{self, Buffer, Limits};
use dc_gateway::config::InfluxConfig;
use dc_gateway::model::{DeviceMeta, Kind, Poll, Quality, Sample, Timestamp, Value};
use dc_gateway::points::{self, PointId};
use dc_gateway::sinks::influx::InfluxSink;
use dc_gateway::sinks::worker::{self, QueueConfig, SinkQueue};
use dc_gateway::sinks::{Outcome, Record, Sink};

const POINTS: [&str; 10] = [
    "voltage_l1_v",
    "voltage_l2_v",
    "voltage_l3_v",
    "current_l1_a",
    "current_l2_a",
    "current_l3_a",
    "frequency_hz",
    "active_power_kw",
    "power_factor",
    "energy_kwh",
];
const READINGS_PER_POLL: u64 = POINTS.len() as u64;
const DEVICES: usize = 200;

struct Args {
    outage_s: u64,
    rate: u64,
    healthy_s: u64,
    dir: PathBuf,
    replay_cap: Option<u32>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        outage_s: 600,
        rate: 2000,
        healthy_s: 30,
        dir: std::env::temp_dir(),
        replay_cap: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--outage-s" => a.outage_s = v()?.parse().map_err(|e| format!("--outage-s: {e}"))?,
            "--rate" => a.rate = v()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--healthy-s" => a.healthy_s = v()?.parse().map_err(|e| format!("--healthy-s: {e}"))?,
            "--dir" => a.dir = PathBuf::from(v()?),
            "--replay-cap" => a.replay_cap = Some(v()?.parse().map_err(|e| format!("--replay-cap: {e}"))?),
            "--bench" => {}
            "--help" | "-h" => {
                return Err("cargo bench --bench buffer -- [--outage-s 600] [--rate 2000] [--healthy-s 30] [--dir DIR] [--replay-cap POLLS_PER_S (0: none)]".into())
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.rate < READINGS_PER_POLL {
        return Err(format!("--rate must be at least {READINGS_PER_POLL}"));
    }
    Ok(a)
}

/// Polls of the bench's power meters.
struct Site {
    devices: Vec<Arc<DeviceMeta>>,
    points: Vec<PointId>,
}

impl Site {
    fn new(prefix: &str) -> Site {
        let devices = (0..DEVICES)
            .map(|i| {
                let id = format!("{prefix}{i:03}");
                Arc::new(DeviceMeta {
                    id: id.as_str().into(),
                    name: id.clone(),
                    label: None,
                    room: "hall1".into(),
                    kind: Kind::PowerMeter,
                })
            })
            .collect();
        let points = POINTS
            .iter()
            .map(|p| points::lookup(Kind::PowerMeter, p).expect("a power meter point"))
            .collect();
        Site { devices, points }
    }

    fn poll(&self, n: u64, ts: i64) -> Record {
        let device = self.devices[n as usize % DEVICES].clone();
        let samples = self
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| Sample {
                point: p,
                value: Some(Value::Number(230.0 + ((n + i as u64) % 97) as f64 * 0.1)),
                quality: Quality::Good,
            })
            .collect();
        Record::Poll(Arc::new(Poll {
            device,
            ts: Timestamp(ts),
            comm_ok: true,
            samples,
        }))
    }
}

fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("write_bytes:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A VictoriaMetrics on a free port; killed on drop.
struct Victoria {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Victoria {
    fn start() -> Result<Victoria, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let log = std::fs::File::create(dir.path().join("vm.log")).map_err(|e| e.to_string())?;
        let child = Command::new("victoria-metrics")
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .args([
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
                "-loggerLevel=ERROR",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!("cannot start victoria-metrics (apt-get install -y victoria-metrics): {e}")
            })?;
        let vm = Victoria {
            child,
            port,
            _dir: dir,
        };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t0.elapsed() > Duration::from_secs(30) {
                return Err("victoria-metrics did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(vm)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `sum(count_over_time(<series>[window]))` at `at` (ms).
    async fn count(&self, series: &str, window_s: u64, at: i64) -> Result<u64, String> {
        let c = reqwest::Client::new();
        c.get(format!("{}/internal/force_flush", self.url()))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let q = format!("sum(count_over_time({series}[{window_s}s]))");
        let url = format!(
            "{}/api/v1/query?query={}&time={:.3}",
            self.url(),
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>(),
            at as f64 / 1000.0
        );
        let body = c
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let r: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        r["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .map(|v| v as u64)
            .ok_or_else(|| format!("unexpected answer: {r}"))
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The InfluxDB sink, timing what it delivers: backlog records (older than
/// `live_from`) counted, live records' delay from their time to their confirmation.
struct Timed {
    inner: InfluxSink,
    live_from: i64,
    backlog_done: Arc<AtomicU64>,
    live_delays_ms: Arc<Mutex<Vec<i64>>>,
}

impl Sink for Timed {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn connected(&self) -> bool {
        self.inner.connected()
    }
    async fn deliver(&mut self, batch: &[Record]) -> Outcome {
        let out = self.inner.deliver(batch).await;
        if out == Outcome::Delivered {
            let now = Timestamp::now().0;
            let backlog = batch.iter().filter(|r| r.ts().0 < self.live_from).count() as u64;
            self.backlog_done.fetch_add(backlog, Ordering::Relaxed);
            let mut d = self
                .live_delays_ms
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            d.extend(
                batch
                    .iter()
                    .filter(|r| r.ts().0 >= self.live_from)
                    .map(|r| now - r.ts().0),
            );
        }
        out
    }
}

/// Push live polls at `rate` readings/s until `stop` is set; returns how many polls.
fn live(
    q: SinkQueue,
    site: Arc<Site>,
    rate: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let polls_per_tick = (rate / READINGS_PER_POLL).div_ceil(10).max(1);
        let period =
            Duration::from_secs_f64(polls_per_tick as f64 * READINGS_PER_POLL as f64 / rate as f64);
        let mut tick = tokio::time::interval(period);
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let ts = Timestamp::now().0;
            for _ in 0..polls_per_tick {
                q.push(site.poll(n, ts));
                n += 1;
            }
        }
        n
    })
}

fn influx(vm: &Victoria, site: &str) -> Result<InfluxSink, String> {
    let cfg = InfluxConfig::from_url(
        &format!("{}?org=dc&bucket=bench", vm.url()),
        Some("bench".into()),
    )
    .map_err(|e| e.to_string())?;
    InfluxSink::new("influx", site.into(), &cfg).map_err(|e| e.to_string())
}

fn queue_config() -> QueueConfig {
    // As the runtime sets up the InfluxDB sink with its defaults.
    QueueConfig {
        batch_max: 500,
        linger: Duration::from_millis(1000),
        max_bytes: 1 << 30,
        ..Default::default()
    }
}

fn pct(v: &mut [i64], p: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn healthy(a: &Args, vm: &Victoria, rate: u64) -> Result<(), String> {
    let state = tempfile::tempdir_in(&a.dir).map_err(|e| e.to_string())?;
    let buf = Buffer::open(state.path(), buffer::Options::default()).map_err(|e| e.to_string())?;
    let site = Arc::new(Site::new("h"));
    let (q, task) =
        worker::spawn_on(&buf, influx(vm, "bench")?, queue_config()).map_err(|e| e.to_string())?;
    // Warm up: the tables and the first pages exist.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = live(q.clone(), site.clone(), rate, stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (w0, d0, t0) = (
        write_bytes(),
        q.status(Timestamp::now()).delivered,
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(a.healthy_s)).await;
    let (w1, d1, secs) = (
        write_bytes(),
        q.status(Timestamp::now()).delivered,
        t0.elapsed().as_secs_f64(),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = producer.await;
    let st = q.status(Timestamp::now());
    let readings = (d1 - d0) * READINGS_PER_POLL;
    let bytes = w1 - w0;
    println!(
        "| {rate} | {:.0} | {} | {:.0} | {:.1} | {} | {:.0} KiB |",
        readings as f64 / secs,
        bytes,
        bytes as f64 / secs / 1024.0,
        bytes as f64 / readings.max(1) as f64,
        st.queued,
        dir_size(state.path()) as f64 / 1024.0
    );
    task.abort();
    Ok(())
}

/// Time from appending an alarm event to its commit (fsync) being signalled, on an
/// otherwise idle queue.
async fn alarm_latency(a: &Args) -> Result<(), String> {
    let state = tempfile::tempdir_in(&a.dir).map_err(|e| e.to_string())?;
    let buf = Buffer::open(state.path(), buffer::Options::default()).map_err(|e| e.to_string())?;
    let q = buf
        .queue(
            "mqtt",
            Limits {
                max_bytes: 1 << 30,
                max_pending: 1000,
            },
        )
        .map_err(|e| e.to_string())?;
    let mut took = Vec::new();
    for seq in 0..100u64 {
        let ev = dc_gateway::model::AlarmEvent {
            detail: Default::default(),
            id: format!("0190a0b0-0000-7000-8000-{seq:012}"),
            seq,
            ts: Timestamp::now(),
            site: "bench".into(),
            device: "pm000".into(),
            kind: Kind::PowerMeter,
            room: "hall1".into(),
            point: "voltage_l1_v",
            rule: "voltage_low".into(),
            level: dc_gateway::model::Level::Serious,
            state: dc_gateway::model::AlarmState::Raised,
            value: Some(Value::Number(180.0)),
            threshold: Some(200.0),
            message: "Điện áp thấp (Điều 10.2)".into(),
        };
        let t0 = Instant::now();
        q.append(&Record::Alarm(Arc::new(ev)));
        q.committed(Duration::from_secs(5)).await;
        took.push(t0.elapsed().as_micros() as i64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "Alarm event appended → committed (fsynced), 100 events one at a time: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms.\n",
        pct(&mut took, 0.5) as f64 / 1000.0,
        pct(&mut took, 0.99) as f64 / 1000.0,
        pct(&mut took, 1.0) as f64 / 1000.0
    );
    Ok(())
}

async fn run(a: Args) -> Result<(), String> {
    println!("# Durable buffer benchmark\n");
    println!(
        "Polls of {READINGS_PER_POLL} readings from {DEVICES} power meters; state dir under {}; commit policy: every {} ms or {} records, WAL, synchronous=FULL.\n",
        a.dir.display(),
        buffer::DEFAULT_COMMIT_INTERVAL.as_millis(),
        buffer::DEFAULT_COMMIT_MAX_RECORDS
    );
    let state = tempfile::tempdir_in(&a.dir).map_err(|e| e.to_string())?;
    let site = Arc::new(Site::new("pm"));
    let polls = a.outage_s * a.rate / READINGS_PER_POLL;
    let readings = polls * READINGS_PER_POLL;
    let per_s = a.rate / READINGS_PER_POLL;

    // 1. Append throughput: the outage's backlog, appended and committed.
    let live_from = Timestamp::now().0;
    let t_start = live_from - (a.outage_s as i64) * 1000;
    let (w0, t0) = (write_bytes(), Instant::now());
    {
        let buf =
            Buffer::open(state.path(), buffer::Options::default()).map_err(|e| e.to_string())?;
        buf.registry().add(site.devices.iter().cloned());
        let q = buf
            .queue(
                "influx",
                Limits {
                    max_bytes: 1 << 30,
                    max_pending: 1_000_000,
                },
            )
            .map_err(|e| e.to_string())?;
        for n in 0..polls {
            let ts = t_start + (n / per_s) as i64 * 1000 + (n % per_s) as i64;
            q.append(&site.poll(n, ts));
        }
        let appended = t0.elapsed().as_secs_f64();
        buf.flush().map_err(|e| e.to_string())?;
        let secs = t0.elapsed().as_secs_f64();
        let c = q.counters();
        if c.rows != polls || c.dropped != 0 {
            return Err(format!(
                "append: {} of {polls} polls stored, {} dropped",
                c.rows, c.dropped
            ));
        }
        println!("## Append throughput\n");
        println!(
            "| Readings | Polls | Appended in | Committed in | Readings/s | Polls/s | Queue bytes (budget count) | Written to disk |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        println!(
            "| {readings} | {polls} | {appended:.2} s | {secs:.2} s | {:.0} | {:.0} | {:.1} MiB | {:.1} MiB ({:.1} B/reading) |\n",
            readings as f64 / secs,
            polls as f64 / secs,
            c.bytes as f64 / 1048576.0,
            (write_bytes() - w0) as f64 / 1048576.0,
            (write_bytes() - w0) as f64 / readings as f64
        );
    }
    println!(
        "Database after the backlog: {:.1} MiB\n",
        dir_size(state.path()) as f64 / 1048576.0
    );
    alarm_latency(&a).await?;

    // 2. Replay: reopen (as after a restart), VictoriaMetrics comes back, live data
    //    keeps arriving.
    let vm = Victoria::start()?;
    let buf = Buffer::open(state.path(), buffer::Options::default()).map_err(|e| e.to_string())?;
    buf.registry().add(site.devices.iter().cloned());
    let backlog_done = Arc::new(AtomicU64::new(0));
    let delays = Arc::new(Mutex::new(Vec::new()));
    let sink = Timed {
        inner: influx(&vm, "bench")?,
        live_from,
        backlog_done: backlog_done.clone(),
        live_delays_ms: delays.clone(),
    };
    let mut cfg = queue_config();
    if let Some(cap) = a.replay_cap {
        cfg.replay_max_per_s = cap;
    }
    let (replay_batch, replay_cap) = (cfg.replay_batch_max, cfg.replay_max_per_s);
    let t0 = Instant::now();
    let (q, task) = worker::spawn_on(&buf, sink, cfg).map_err(|e| e.to_string())?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = live(q.clone(), site.clone(), a.rate, stop.clone());
    while backlog_done.load(Ordering::Relaxed) < polls {
        if t0.elapsed() > Duration::from_secs(1800) {
            return Err(format!(
                "replay: only {} of {polls} polls after 30 min",
                backlog_done.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let mut d = std::mem::take(&mut *delays.lock().unwrap_or_else(|e| e.into_inner()));
    stop.store(true, Ordering::Relaxed);
    let live_polls = producer.await.unwrap_or(0);
    let held = vm
        .count("power_meter_voltage_l1_v", a.outage_s + 60, live_from - 1)
        .await?;
    println!(
        "## Replay after a {} s outage at {} readings/s\n",
        a.outage_s, a.rate
    );
    let cap = if replay_cap == 0 {
        "no rate cap".to_string()
    } else {
        format!("at most {replay_cap} polls/s")
    };
    println!(
        "Catch-up batches of {replay_batch} polls, {cap}, alternating with batches of new polls.\n"
    );
    println!(
        "| Backlog readings | Replayed in | Replay readings/s | Live polls confirmed during the replay | Their delay p50 / p99 / max | VictoriaMetrics holds (backlog polls) |"
    );
    println!("|---|---|---|---|---|---|");
    let n_live = d.len();
    println!(
        "| {readings} | {secs:.1} s | {:.0} | {n_live} of {live_polls} | {} / {} / {} ms | {held} of {polls} |\n",
        readings as f64 / secs,
        pct(&mut d, 0.5),
        pct(&mut d, 0.99),
        pct(&mut d, 1.0)
    );
    task.abort();
    drop(q);
    drop(buf);

    // 3. Bytes written per reading while healthy.
    println!("## Disk writes while healthy ({} s each)\n", a.healthy_s);
    println!(
        "| Offered readings/s | Delivered readings/s | Bytes written | KiB/s | Bytes/reading | Queued at end | Database size |"
    );
    println!("|---|---|---|---|---|---|---|");
    healthy(&a, &vm, a.rate).await?;
    healthy(&a, &vm, 50).await?;
    Ok(())
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("buffer benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
