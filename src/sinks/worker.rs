//! The queue in front of a sink, and the task that drains it.
//!
//! The queue owns *when* (batching, retry timing, backoff, budget, replay order); the
//! sink owns *how* (see [`super::Sink`]). Records are kept in a durable
//! [`DiskQueue`](crate::buffer::DiskQueue) (see [`crate::buffer`] for what is
//! committed when, and the on-disk format). Invariants:
//! - a record leaves the queue only when the sink reports [`Outcome::Delivered`] for
//!   the batch holding it, or the far end refused it for good ([`Outcome::Rejected`]:
//!   it is moved to the dead-letter table with the far end's reason, and counted);
//! - only committed records are handed to the sink, so an alarm event is on disk
//!   before it is sent;
//! - order is kept: batches are read oldest first; a batch that must be retried is
//!   read again, whole, before anything after it;
//! - the producer never waits: [`SinkQueue::push`] only appends in memory; the disk
//!   budget (`max_bytes`) and the memory limit (`max_records`) drop the **oldest
//!   reading** first, never an alarm event while a reading can go, and count it.
//!
//! **Catch-up after an outage.** When more than [`QueueConfig::replay_threshold`]
//! records are waiting, the backlog up to the newest record at that moment is replayed
//! oldest first in large batches ([`QueueConfig::replay_batch_max`]), at most
//! [`QueueConfig::replay_max_per_s`] records per second, alternating with batches of
//! the records that arrived since, so live data keeps flowing while history catches
//! up. Both streams are in time order. Sinks whose records must arrive in one order
//! (MQTT alarm events) turn this off with [`QueueConfig::live_first`] = false.
//!
//! **Readings that are only current state** (MQTT retained values) need not be
//! replayed: with [`QueueConfig::replay_readings`] = false, polls go to a bounded
//! in-memory ring (the newest [`QueueConfig::ring_max`] kept, older ones dropped and
//! counted) and only alarm events go to disk; alarm events are delivered first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Outcome, Record, Sink};
use crate::buffer::{self, Buffer, DiskQueue, Limits, Options};
use crate::metrics;
use crate::model::Timestamp;
use crate::state::SinkStatus;

/// When and how much to send, and how much to keep.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Most records per delivery.
    pub batch_max: usize,
    /// How long the oldest waiting record may wait for a batch to fill.
    pub linger: Duration,
    /// Most records held in memory: waiting for the next commit, or in the readings
    /// ring. Beyond it the oldest readings are dropped (and counted).
    pub max_records: usize,
    /// Disk budget of the queue in bytes (`storage.max_size_bytes`).
    pub max_bytes: u64,
    /// First retry delay; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Keep readings on disk and replay them after an outage (InfluxDB). `false`:
    /// readings are current state only (MQTT retained values) and live in a ring.
    pub replay_readings: bool,
    /// Size of the readings ring when `replay_readings` is false.
    pub ring_max: usize,
    /// How long readings in the ring may wait for more to go out with them (one
    /// delivery carries the polls of many devices: with the sources' start times
    /// spread over the interval, polls arrive one by one). Alarm events never wait.
    pub ring_linger: Duration,
    /// Alternate catch-up batches with batches of new records (see module docs).
    pub live_first: bool,
    /// Waiting records above which the queue is catching up.
    pub replay_threshold: u64,
    /// Most records per catch-up batch.
    pub replay_batch_max: usize,
    /// Most catch-up records per second (0: no cap).
    pub replay_max_per_s: u32,
}

/// Default disk budget of a queue: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            batch_max: 500,
            linger: Duration::from_millis(1000),
            max_records: 100_000,
            max_bytes: DEFAULT_MAX_BYTES,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            replay_readings: true,
            ring_max: 10_000,
            ring_linger: Duration::ZERO,
            live_first: true,
            replay_threshold: 10_000,
            replay_batch_max: 5_000,
            replay_max_per_s: 20_000,
        }
    }
}

/// Delivery counters (the disk queue keeps dropped and dead-lettered).
#[derive(Debug, Default)]
struct Stats {
    connected: AtomicBool,
    /// The far end refused our credentials on the last attempt.
    auth_failed: AtomicBool,
    /// Since when (ms since the epoch) the sink has failed to deliver; 0 while healthy.
    failing_since_ms: std::sync::atomic::AtomicI64,
    delivered: AtomicU64,
    retried: AtomicU64,
}

/// The producer side: the runtime pushes records without ever waiting on the network
/// or the disk. Cheap to clone.
#[derive(Clone)]
pub struct SinkQueue {
    name: Arc<str>,
    kind: &'static str,
    disk: DiskQueue,
    ring: Option<Arc<Mutex<VecDeque<Record>>>>,
    ring_max: usize,
    stats: Arc<Stats>,
    points: Option<OwnPoints>,
}

/// Gateway points a sink reports about its far end (the SMS modem's registration and
/// signal), read by the hub's self-monitor every second.
pub type OwnPoints = Arc<dyn Fn() -> Vec<(&'static str, crate::model::Value)> + Send + Sync>;

impl SinkQueue {
    /// This queue's sink reports gateway points through `f`.
    pub fn with_points(mut self, f: OwnPoints) -> SinkQueue {
        self.points = Some(f);
        self
    }

    /// The gateway points the sink reports (none for most sinks).
    pub fn own_points(&self) -> Vec<(&'static str, crate::model::Value)> {
        self.points.as_ref().map(|f| f()).unwrap_or_default()
    }

    /// Queue a record. Never blocks.
    pub fn push(&self, rec: Record) {
        match (&rec, &self.ring) {
            (Record::Poll(_), Some(ring)) => {
                let mut g = ring.lock().unwrap_or_else(|e| e.into_inner());
                g.push_back(rec);
                let mut over = 0;
                while g.len() > self.ring_max {
                    g.pop_front();
                    over += 1;
                }
                drop(g);
                if over > 0 {
                    self.disk.count_dropped(over);
                }
                self.disk.wake_reader();
            }
            _ => self.disk.append(&rec),
        }
    }

    /// Status for the API.
    pub fn status(&self, now: Timestamp) -> SinkStatus {
        let c = self.disk.counters();
        let (ring_len, ring_bytes, ring_oldest) = self.ring_summary();
        let oldest = match (c.oldest, ring_oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        SinkStatus {
            name: self.name.to_string(),
            kind: self.kind,
            connected: self.stats.connected.load(Ordering::Relaxed),
            queued: c.rows + c.pending + ring_len,
            queued_bytes: c.bytes + c.pending_bytes + ring_bytes,
            oldest_age_s: oldest.map(|t| now.secs_since(t).max(0.0)).unwrap_or(0.0),
            delivered: self.stats.delivered.load(Ordering::Relaxed),
            retried: self.stats.retried.load(Ordering::Relaxed),
            dropped: c.dropped,
            dead_lettered: c.dead_lettered,
            failing_s: self.failing_s(now),
        }
    }

    fn ring_summary(&self) -> (u64, u64, Option<Timestamp>) {
        match &self.ring {
            None => (0, 0, None),
            Some(r) => {
                let g = r.lock().unwrap_or_else(|e| e.into_inner());
                let bytes = g.iter().map(|r| r.approx_bytes() as u64).sum();
                (g.len() as u64, bytes, g.front().map(Record::ts))
            }
        }
    }

    /// Records waiting (committed, pending commit, in the ring), including a batch
    /// being delivered.
    pub fn len(&self) -> usize {
        let c = self.disk.counters();
        (c.rows + c.pending) as usize + self.ring_len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the far end refused our credentials on the last attempt.
    pub fn auth_failed(&self) -> bool {
        self.stats.auth_failed.load(Ordering::Relaxed)
    }

    /// For how long, in seconds, the sink has been failing to deliver (0 while healthy).
    pub fn failing_s(&self, now: Timestamp) -> f64 {
        match self.stats.failing_since_ms.load(Ordering::Relaxed) {
            0 => 0.0,
            since => now.secs_since(Timestamp(since)).max(0.0),
        }
    }

    /// Fill of the disk budget, percent (for the gateway's `buffer_used_pct`).
    pub fn used_pct(&self) -> f64 {
        self.disk.used_pct()
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The durable queue behind this one.
    pub fn disk(&self) -> &DiskQueue {
        &self.disk
    }

    fn ring_len(&self) -> usize {
        self.ring
            .as_ref()
            .map_or(0, |r| r.lock().unwrap_or_else(|e| e.into_inner()).len())
    }

    fn take_ring(&self, n: usize) -> Vec<Record> {
        match &self.ring {
            None => Vec::new(),
            Some(r) => {
                let mut g = r.lock().unwrap_or_else(|e| e.into_inner());
                let n = n.min(g.len());
                g.drain(..n).collect()
            }
        }
    }

    fn return_ring(&self, batch: Vec<Record>) {
        if let Some(r) = &self.ring {
            let mut g = r.lock().unwrap_or_else(|e| e.into_inner());
            for rec in batch.into_iter().rev() {
                g.push_front(rec);
            }
            let mut over = 0;
            while g.len() > self.ring_max {
                g.pop_front();
                over += 1;
            }
            drop(g);
            if over > 0 {
                self.disk.count_dropped(over);
            }
        }
    }
}

/// Start the task that drains a queue into `sink`, with its records in a private
/// in-memory buffer (nothing survives a restart). For tests and tools; the gateway
/// uses [`spawn_on`].
///
/// # Panics
/// If SQLite cannot allocate an in-memory database.
pub fn spawn<S: Sink>(sink: S, cfg: QueueConfig) -> (SinkQueue, tokio::task::JoinHandle<()>) {
    let buffer = Buffer::in_memory(Options::default()).expect("an in-memory SQLite database opens");
    spawn_on(&buffer, sink, cfg).expect("a new in-memory buffer opens a queue")
}

/// Start the task that drains the queue of `sink` in `buffer` (created on first use,
/// resumed after a restart) into `sink`; returns the producer handle.
pub fn spawn_on<S: Sink>(
    buffer: &Buffer,
    sink: S,
    cfg: QueueConfig,
) -> Result<(SinkQueue, tokio::task::JoinHandle<()>), buffer::Error> {
    let disk = buffer.queue(
        sink.name(),
        Limits {
            max_bytes: cfg.max_bytes,
            max_pending: cfg.max_records.max(1),
        },
    )?;
    let q = SinkQueue {
        name: Arc::from(sink.name()),
        kind: sink.kind(),
        disk,
        ring: (!cfg.replay_readings).then(|| Arc::new(Mutex::new(VecDeque::new()))),
        ring_max: cfg.ring_max.max(1),
        stats: Arc::new(Stats::default()),
        points: None,
    };
    let handle = tokio::spawn(drain(sink, q.clone(), cfg));
    Ok((q, handle))
}

/// Where the next batch comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// Oldest first, every committed record.
    All,
    /// Catching up: records up to the boundary.
    Replay,
    /// Catching up: records after the boundary.
    Live,
}

async fn drain<S: Sink>(mut sink: S, q: SinkQueue, cfg: QueueConfig) {
    let labels = metrics::labels(&[("sink", &q.name)]);
    let m = metrics::get();
    let mut backoff = cfg.backoff_min;
    let live_max = cfg.batch_max.max(1);
    let replay_max = cfg.replay_batch_max.max(live_max);
    let mut live_cap = live_max;
    let mut replay_cap = replay_max;
    let mut boundary: Option<i64> = None;
    let mut live_turn = false;
    let mut next_replay = tokio::time::Instant::now();
    // When the ring was first seen holding readings (for `ring_linger`).
    let mut ring_since: Option<tokio::time::Instant> = None;
    loop {
        q.stats.connected.store(sink.connected(), Ordering::Relaxed);
        m.sink_queued.get_or_create(&labels).set(q.len() as i64);
        let rows = q.disk.rows();
        if rows == 0 {
            boundary = None;
            let waiting = q.ring_len();
            if waiting > 0 && waiting < live_cap && !cfg.ring_linger.is_zero() {
                let now = tokio::time::Instant::now();
                let until = *ring_since.get_or_insert(now) + cfg.ring_linger;
                if now < until {
                    // Woken early by more readings or by an alarm event's commit.
                    q.disk.committed(until - now).await;
                    continue;
                }
            }
            ring_since = None;
            let batch = q.take_ring(live_cap);
            if batch.is_empty() {
                // Wake up now and then to refresh the connected flag.
                q.disk.committed(Duration::from_secs(1)).await;
                continue;
            }
            let n = batch.len();
            let outcome = sink.deliver(&batch).await;
            q.stats.connected.store(sink.connected(), Ordering::Relaxed);
            match outcome {
                Outcome::Delivered => {
                    delivered(&q, &labels, n as u64);
                    backoff = cfg.backoff_min;
                    live_cap = live_max;
                }
                Outcome::Rejected { records } => {
                    let bad = records.len().min(n);
                    for (i, reason) in records.iter().take(3) {
                        tracing::error!(sink = %q.name, record = ?batch.get(*i).map(describe), %reason, "record refused by the far end");
                    }
                    delivered(&q, &labels, (n - bad) as u64);
                    q.disk.count_dead_lettered(bad as u64);
                    backoff = cfg.backoff_min;
                }
                Outcome::Split if n <= 1 => {
                    tracing::error!(sink = %q.name, record = ?batch.first().map(describe), "a single record is too large for the far end; refused");
                    q.disk.count_dead_lettered(n as u64);
                }
                Outcome::Split => {
                    live_cap = (n / 2).max(1);
                    q.return_ring(batch);
                }
                Outcome::Retry { after, reason } => {
                    q.return_ring(batch);
                    backoff = retry(&mut sink, &q, after, &reason, backoff, &cfg).await;
                }
            }
            continue;
        }

        // Catching up after an outage?
        if cfg.live_first && boundary.is_none() && rows > cfg.replay_threshold {
            let b = q.disk.last_id();
            tracing::info!(sink = %q.name, records = rows, "catching up: replaying the backlog oldest first, alternating with new records");
            boundary = Some(b);
            live_turn = false;
        }
        let source = match boundary {
            Some(b) => {
                live_turn = !live_turn;
                let now = tokio::time::Instant::now();
                let live_waiting = q.disk.last_id() > b;
                if live_waiting && (live_turn || now < next_replay) {
                    Source::Live
                } else if now < next_replay {
                    let _ = tokio::time::timeout(
                        next_replay - now,
                        q.disk.committed(Duration::from_secs(1)),
                    )
                    .await;
                    continue;
                } else {
                    Source::Replay
                }
            }
            None => {
                linger(&q, &cfg, live_cap).await;
                Source::All
            }
        };
        let (after, upto, limit) = match (source, boundary) {
            (Source::Live, Some(b)) => (b, i64::MAX, live_cap),
            (Source::Replay, Some(b)) => (i64::MIN, b, replay_cap),
            _ => (i64::MIN, i64::MAX, live_cap),
        };
        let batch = match q.disk.read(after, upto, limit).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(sink = %q.name, error = %e, "cannot read the buffer; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(cfg.backoff_max);
                continue;
            }
        };
        if batch.is_empty() {
            match source {
                Source::Replay => {
                    tracing::info!(sink = %q.name, "caught up: the backlog is delivered");
                    boundary = None;
                }
                Source::Live => {
                    // Nothing new after the boundary: replay next, or wait for new
                    // records while the replay rate says wait.
                    live_turn = true;
                    let now = tokio::time::Instant::now();
                    if now < next_replay {
                        let _ = tokio::time::timeout(
                            next_replay - now,
                            q.disk.committed(Duration::from_secs(1)),
                        )
                        .await;
                    }
                }
                Source::All => q.disk.committed(Duration::from_secs(1)).await,
            }
            continue;
        }
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        let (lo, hi) = (ids[0], ids[ids.len() - 1]);
        let records: Vec<Record> = batch.into_iter().map(|(_, r)| r).collect();
        let n = records.len();
        let started = tokio::time::Instant::now();
        let outcome = sink.deliver(&records).await;
        q.stats.connected.store(sink.connected(), Ordering::Relaxed);
        q.stats
            .auth_failed
            .store(sink.auth_failed(), Ordering::Relaxed);
        // Failing: the batch must be retried, or the far end is unreachable (an MQTT
        // sink drops readings while offline and still reports them as handled).
        if matches!(outcome, Outcome::Retry { .. }) || !sink.connected() {
            let now = Timestamp::now().millis();
            let _ = q.stats.failing_since_ms.compare_exchange(
                0,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        } else {
            q.stats.failing_since_ms.store(0, Ordering::Relaxed);
        }
        if source == Source::Replay && cfg.replay_max_per_s > 0 {
            let spacing = Duration::from_secs_f64(n as f64 / f64::from(cfg.replay_max_per_s));
            next_replay = next_replay.max(started) + spacing;
        }
        let cap = if source == Source::Replay {
            &mut replay_cap
        } else {
            &mut live_cap
        };
        match outcome {
            Outcome::Delivered => {
                q.disk.ack(lo, hi);
                delivered(&q, &labels, n as u64);
                backoff = cfg.backoff_min;
                *cap = if source == Source::Replay {
                    replay_max
                } else {
                    live_max
                };
            }
            Outcome::Rejected { records: refused } => {
                let mut bad: Vec<(i64, String)> = Vec::with_capacity(refused.len());
                for (i, reason) in refused {
                    if let Some(id) = ids.get(i)
                        && !bad.iter().any(|(b, _)| b == id)
                    {
                        bad.push((*id, reason));
                    }
                }
                for (id, reason) in bad.iter().take(3) {
                    let i = ids.iter().position(|x| x == id).unwrap_or(0);
                    tracing::error!(sink = %q.name, record = ?records.get(i).map(describe), %reason, "record refused by the far end; dead-lettered");
                }
                delivered(&q, &labels, (n - bad.len().min(n)) as u64);
                q.disk.reject(lo, hi, bad);
                backoff = cfg.backoff_min;
            }
            Outcome::Split if n <= 1 => {
                tracing::error!(sink = %q.name, record = ?records.first().map(describe), "a single record is too large for the far end; dead-lettered");
                q.disk.reject(
                    lo,
                    hi,
                    vec![(
                        lo,
                        "the far end refused the record as too large (HTTP 413)".into(),
                    )],
                );
            }
            Outcome::Split => {
                *cap = (n / 2).max(1);
                q.disk.release();
            }
            Outcome::Retry { after, reason } => {
                q.disk.release();
                backoff = retry(&mut sink, &q, after, &reason, backoff, &cfg).await;
            }
        }
    }
}

/// Without a backlog, wait until the batch is full or the oldest record has waited
/// `linger` (counted from the record's own time, so the commit interval is not added
/// on top).
async fn linger(q: &SinkQueue, cfg: &QueueConfig, cap: usize) {
    if cfg.linger.is_zero() {
        return;
    }
    while (q.disk.rows() as usize) < cap {
        let Some(oldest) = q.disk.oldest_committed() else {
            return;
        };
        let waited = Timestamp::now().secs_since(oldest);
        let left = cfg.linger.as_secs_f64() - waited;
        if left <= 0.0 {
            return;
        }
        q.disk
            .committed(Duration::from_secs_f64(left.min(cfg.linger.as_secs_f64())))
            .await;
    }
}

fn delivered(q: &SinkQueue, labels: &metrics::Labels, n: u64) {
    q.stats.delivered.fetch_add(n, Ordering::Relaxed);
    metrics::get()
        .sink_delivered
        .get_or_create(labels)
        .inc_by(n);
}

/// Count a failed attempt and wait; returns the next backoff. A sink that was
/// disconnected and reconnects meanwhile (the MQTT client's CONNACK) ends the wait at
/// once: what waits (alarm events) goes out as soon as the far end is back.
async fn retry<S: Sink>(
    sink: &mut S,
    q: &SinkQueue,
    after: Option<Duration>,
    reason: &str,
    backoff: Duration,
    cfg: &QueueConfig,
) -> Duration {
    q.stats.retried.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(sink = %q.name, %reason, "delivery failed; will retry");
    let wait = after.unwrap_or(backoff).min(Duration::from_secs(300));
    let was_connected = sink.connected();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return (backoff * 2).min(cfg.backoff_max);
        }
        tokio::time::sleep((deadline - now).min(Duration::from_millis(100))).await;
        if !was_connected && sink.connected() {
            q.stats.connected.store(true, Ordering::Relaxed);
            return cfg.backoff_min;
        }
    }
}

fn describe(r: &Record) -> String {
    match r {
        Record::Poll(p) => format!("poll of {} at {}", p.device.id, p.ts.rfc3339()),
        Record::Alarm(a) => format!("alarm {} seq {}", a.key(), a.seq),
        Record::Notification(n) => format!("notification {} to {}", n.id, n.person),
        Record::Audit(a) => format!("audit {} ({})", a.id, a.kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlarmEvent, AlarmState, DeviceMeta, Kind, Level, Poll};
    use std::sync::atomic::AtomicUsize;

    /// Fails the first `fail_first` calls, then refuses records whose ts is in
    /// `refuse`, records what it was given.
    struct Flaky {
        fail_first: usize,
        refuse: Vec<i64>,
        calls: Arc<AtomicUsize>,
        got: Arc<Mutex<Vec<i64>>>,
    }

    impl Flaky {
        fn new(fail_first: usize) -> (Flaky, Arc<Mutex<Vec<i64>>>) {
            let got = Arc::new(Mutex::new(Vec::new()));
            (
                Flaky {
                    fail_first,
                    refuse: vec![],
                    calls: Arc::new(AtomicUsize::new(0)),
                    got: got.clone(),
                },
                got,
            )
        }
    }

    impl Sink for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn connected(&self) -> bool {
            true
        }
        async fn deliver(&mut self, batch: &[Record]) -> Outcome {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first {
                return Outcome::Retry {
                    after: Some(Duration::from_millis(1)),
                    reason: "down".into(),
                };
            }
            let refused: Vec<(usize, String)> = batch
                .iter()
                .enumerate()
                .filter(|(_, r)| self.refuse.contains(&r.ts().0))
                .map(|(i, _)| (i, format!("bad line {i}")))
                .collect();
            self.got.lock().unwrap().extend(
                batch
                    .iter()
                    .map(|r| r.ts().0)
                    .filter(|t| !self.refuse.contains(t)),
            );
            if refused.is_empty() {
                Outcome::Delivered
            } else {
                Outcome::Rejected { records: refused }
            }
        }
    }

    fn poll(ts: i64) -> Record {
        let device = Arc::new(DeviceMeta {
            id: "d".into(),
            name: "d".into(),
            label: None,
            room: "r".into(),
            kind: Kind::Climate,
        });
        Record::Poll(Arc::new(Poll {
            device,
            ts: Timestamp(ts),
            comm_ok: true,
            samples: vec![],
        }))
    }

    fn alarm(ts: i64) -> Record {
        Record::Alarm(Arc::new(AlarmEvent {
            detail: Default::default(),
            id: "x".into(),
            seq: ts as u64,
            ts: Timestamp(ts),
            site: "s".into(),
            device: "d".into(),
            kind: Kind::Climate,
            room: "r".into(),
            point: "temperature_c",
            rule: "temperature_high".into(),
            level: Level::Normal,
            state: AlarmState::Raised,
            value: None,
            threshold: None,
            message: String::new(),
        }))
    }

    async fn until(what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("timed out waiting for {what}");
    }

    fn fast() -> QueueConfig {
        QueueConfig {
            batch_max: 4,
            linger: Duration::ZERO,
            backoff_min: Duration::from_millis(1),
            ..Default::default()
        }
    }

    fn fast_buffer() -> Buffer {
        Buffer::in_memory(Options {
            commit_interval: Duration::from_millis(20),
            commit_max_records: 1000,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn retried_batches_arrive_once_in_order() {
        let (sink, got) = Flaky::new(3);
        let (q, _h) = spawn_on(&fast_buffer(), sink, fast()).unwrap();
        for ts in 0..10 {
            q.push(poll(ts));
        }
        until("10 delivered", || got.lock().unwrap().len() == 10).await;
        assert_eq!(*got.lock().unwrap(), (0..10).collect::<Vec<_>>());
        until("counted", || q.status(Timestamp(0)).delivered == 10).await;
        let st = q.status(Timestamp(0));
        assert!(st.retried >= 3);
        until("queue empty", || q.is_empty()).await;
    }

    #[tokio::test]
    async fn refused_records_are_dead_lettered_and_the_rest_delivered() {
        let (mut sink, got) = Flaky::new(0);
        sink.refuse = vec![2, 5];
        let (q, _h) = spawn_on(&fast_buffer(), sink, fast()).unwrap();
        for ts in 0..8 {
            q.push(poll(ts));
        }
        until("6 delivered", || got.lock().unwrap().len() == 6).await;
        until("2 dead-lettered", || {
            q.status(Timestamp(0)).dead_lettered == 2
        })
        .await;
        until("queue empty", || q.is_empty()).await;
        assert_eq!(q.status(Timestamp(0)).delivered, 6);
    }

    #[tokio::test]
    async fn over_budget_drops_oldest_readings_never_alarms() {
        let (sink, _got) = Flaky::new(usize::MAX);
        let buffer = fast_buffer();
        let probe = crate::buffer::codec::to_vec(&poll(0)).len() as u64
            + crate::buffer::store::ROW_OVERHEAD;
        let probe_alarm = crate::buffer::codec::to_vec(&alarm(0)).len() as u64
            + crate::buffer::store::ROW_OVERHEAD;
        // Room for two alarms and one poll.
        let cfg = QueueConfig {
            max_bytes: 2 * probe_alarm + probe,
            linger: Duration::from_secs(3600),
            batch_max: 100,
            ..Default::default()
        };
        let (q, _h) = spawn_on(&buffer, sink, cfg).unwrap();
        q.push(alarm(1));
        q.push(poll(2));
        q.push(poll(3));
        q.push(poll(4));
        q.push(alarm(5));
        buffer.flush_async().await.unwrap();
        let st = q.status(Timestamp(0));
        assert_eq!(st.dropped, 2);
        assert_eq!(st.queued, 3);
        let left: Vec<i64> = q
            .disk()
            .read(i64::MIN, i64::MAX, 10)
            .await
            .unwrap()
            .iter()
            .map(|(_, r)| r.ts().0)
            .collect();
        assert_eq!(left, vec![1, 4, 5]);
    }

    #[tokio::test]
    async fn readings_that_are_only_state_use_a_bounded_ring() {
        let (sink, got) = Flaky::new(0);
        let cfg = QueueConfig {
            replay_readings: false,
            ring_max: 3,
            ..fast()
        };
        let buffer = fast_buffer();
        let (q, _h) = spawn_on(&buffer, sink, cfg).unwrap();
        // Nothing reaches the disk for readings.
        q.push(alarm(100));
        for ts in 0..5 {
            q.push(poll(ts));
        }
        until("delivered", || got.lock().unwrap().len() >= 4).await;
        let got = got.lock().unwrap().clone();
        assert!(got.contains(&100));
        // The ring kept at most 3 polls; anything older was dropped and counted.
        let polls = got.iter().filter(|t| **t < 100).count() as u64;
        assert_eq!(polls + q.status(Timestamp(0)).dropped, 5);
    }
}
