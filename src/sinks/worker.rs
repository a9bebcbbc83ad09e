//! The queue in front of a sink, and the task that drains it.
//!
//! The queue owns *when* (batching, retry timing, backoff, budget, order); the sink owns
//! *how* (see [`super::Sink`]). Invariants:
//! - a record leaves the queue only when the sink reports [`Outcome::Delivered`] for
//!   the batch holding it, or the far end refused it for good ([`Outcome::Rejected`],
//!   then it is dead-lettered and counted);
//! - order is kept: a batch that must be retried goes back to the front;
//! - memory is bounded: over the budget the **oldest reading** is dropped (and counted),
//!   never an alarm event while a reading can go instead.
//!
//! This queue lives in memory: a restart loses what it holds. The durable on-disk
//! queue replaces it behind the same [`SinkQueue`] interface.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Outcome, Record, Sink};
use crate::metrics;
use crate::model::Timestamp;
use crate::state::SinkStatus;

/// When and how much to send.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Most records per delivery.
    pub batch_max: usize,
    /// How long to wait for a batch to fill once the first record is queued.
    pub linger: Duration,
    /// Most records held; beyond it the oldest readings are dropped.
    pub max_records: usize,
    /// First retry delay; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            batch_max: 500,
            linger: Duration::from_millis(1000),
            max_records: 100_000,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Counters shown by `GET /api/v1/sinks`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Whether the sink believes its far end is reachable.
    pub connected: AtomicBool,
    /// Records confirmed.
    pub delivered: AtomicU64,
    /// Failed attempts.
    pub retried: AtomicU64,
    /// Records dropped over budget.
    pub dropped: AtomicU64,
    /// Records refused for good.
    pub dead_lettered: AtomicU64,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Record>,
    bytes: usize,
    in_flight: usize,
}

/// The producer side: the runtime pushes records without ever waiting on the network.
#[derive(Clone)]
pub struct SinkQueue {
    name: Arc<str>,
    kind: &'static str,
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    stats: Arc<Stats>,
    max_records: usize,
}

impl SinkQueue {
    /// Queue a record. Never blocks; over budget the oldest reading is dropped.
    pub fn push(&self, rec: Record) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.bytes += rec.approx_bytes();
        g.queue.push_back(rec);
        while g.queue.len() + g.in_flight > self.max_records {
            let Some(pos) = g.queue.iter().position(|r| !r.is_alarm()) else { break };
            if let Some(old) = g.queue.remove(pos) {
                g.bytes = g.bytes.saturating_sub(old.approx_bytes());
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::get()
                    .sink_dropped
                    .get_or_create(&metrics::labels(&[("sink", &self.name)]))
                    .inc();
            }
        }
        drop(g);
        self.notify.notify_one();
    }

    /// Status for the API.
    pub fn status(&self, now: Timestamp) -> SinkStatus {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = g.queue.front().map(|r| now.secs_since(r.ts()).max(0.0)).unwrap_or(0.0);
        SinkStatus {
            name: self.name.to_string(),
            kind: self.kind,
            connected: self.stats.connected.load(Ordering::Relaxed),
            queued: (g.queue.len() + g.in_flight) as u64,
            queued_bytes: g.bytes as u64,
            oldest_age_s: oldest,
            delivered: self.stats.delivered.load(Ordering::Relaxed),
            retried: self.stats.retried.load(Ordering::Relaxed),
            dropped: self.stats.dropped.load(Ordering::Relaxed),
            dead_lettered: self.stats.dead_lettered.load(Ordering::Relaxed),
        }
    }

    /// Records waiting, including those being delivered.
    pub fn len(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.queue.len() + g.in_flight
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Start the task that drains a queue into `sink`; returns the producer handle.
pub fn spawn<S: Sink>(sink: S, cfg: QueueConfig) -> (SinkQueue, tokio::task::JoinHandle<()>) {
    let q = SinkQueue {
        name: Arc::from(sink.name()),
        kind: sink.kind(),
        inner: Arc::new(Mutex::new(Inner::default())),
        notify: Arc::new(Notify::new()),
        stats: Arc::new(Stats::default()),
        max_records: cfg.max_records.max(1),
    };
    let handle = tokio::spawn(drain(sink, q.clone(), cfg));
    (q, handle)
}

async fn drain<S: Sink>(mut sink: S, q: SinkQueue, cfg: QueueConfig) {
    let labels = metrics::labels(&[("sink", &q.name)]);
    let m = metrics::get();
    let mut backoff = cfg.backoff_min;
    let mut batch_cap = cfg.batch_max.max(1);
    loop {
        q.stats.connected.store(sink.connected(), Ordering::Relaxed);
        // Wait for work, then give the batch a moment to fill.
        if q.is_empty() {
            // Wake up now and then to refresh the connected flag.
            let _ = tokio::time::timeout(Duration::from_secs(1), q.notify.notified()).await;
            continue;
        }
        if !cfg.linger.is_zero() && q.len() < batch_cap {
            let deadline = tokio::time::Instant::now() + cfg.linger;
            while q.len() < batch_cap {
                if tokio::time::timeout_at(deadline, q.notify.notified()).await.is_err() {
                    break;
                }
            }
        }
        let batch: Vec<Record> = {
            let mut g = q.inner.lock().unwrap_or_else(|e| e.into_inner());
            let n = g.queue.len().min(batch_cap);
            let batch: Vec<Record> = g.queue.drain(..n).collect();
            g.in_flight = batch.len();
            batch
        };
        let outcome = sink.deliver(&batch).await;
        q.stats.connected.store(sink.connected(), Ordering::Relaxed);
        let finish = |kept: Vec<Record>, removed_bytes: usize| {
            let mut g = q.inner.lock().unwrap_or_else(|e| e.into_inner());
            g.in_flight = 0;
            g.bytes = g.bytes.saturating_sub(removed_bytes);
            for r in kept.into_iter().rev() {
                g.queue.push_front(r);
            }
            m.sink_queued.get_or_create(&labels).set((g.queue.len()) as i64);
        };
        let bytes: usize = batch.iter().map(Record::approx_bytes).sum();
        match outcome {
            Outcome::Delivered => {
                q.stats.delivered.fetch_add(batch.len() as u64, Ordering::Relaxed);
                m.sink_delivered.get_or_create(&labels).inc_by(batch.len() as u64);
                finish(Vec::new(), bytes);
                backoff = cfg.backoff_min;
                batch_cap = cfg.batch_max.max(1);
            }
            Outcome::Rejected { records } => {
                let bad: std::collections::HashSet<usize> = records.iter().map(|(i, _)| *i).collect();
                for (i, reason) in &records {
                    tracing::error!(sink = %q.name, record = ?batch.get(*i).map(describe), %reason, "record refused by the far end; dead-lettered");
                }
                let good = batch.len() - bad.len().min(batch.len());
                q.stats.delivered.fetch_add(good as u64, Ordering::Relaxed);
                q.stats.dead_lettered.fetch_add(bad.len() as u64, Ordering::Relaxed);
                m.sink_delivered.get_or_create(&labels).inc_by(good as u64);
                m.sink_dead_lettered.get_or_create(&labels).inc_by(bad.len() as u64);
                finish(Vec::new(), bytes);
                backoff = cfg.backoff_min;
            }
            Outcome::Split => {
                if batch.len() <= 1 {
                    tracing::error!(sink = %q.name, record = ?batch.first().map(describe), "a single record is too large for the far end; dead-lettered");
                    q.stats.dead_lettered.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    m.sink_dead_lettered.get_or_create(&labels).inc_by(batch.len() as u64);
                    finish(Vec::new(), bytes);
                } else {
                    batch_cap = (batch.len() / 2).max(1);
                    finish(batch, 0);
                }
            }
            Outcome::Retry { after, reason } => {
                q.stats.retried.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(sink = %q.name, %reason, "delivery failed; will retry");
                finish(batch, 0);
                let wait = after.unwrap_or(backoff).min(Duration::from_secs(300));
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(cfg.backoff_max);
            }
        }
    }
}

fn describe(r: &Record) -> String {
    match r {
        Record::Poll(p) => format!("poll of {} at {}", p.device.id, p.ts.rfc3339()),
        Record::Alarm(a) => format!("alarm {} seq {}", a.key(), a.seq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlarmEvent, AlarmState, DeviceMeta, Kind, Level, Poll};
    use std::sync::atomic::AtomicUsize;

    struct Flaky {
        fail_first: usize,
        calls: Arc<AtomicUsize>,
        got: Arc<Mutex<Vec<i64>>>,
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
                return Outcome::Retry { after: Some(Duration::from_millis(1)), reason: "down".into() };
            }
            self.got.lock().unwrap().extend(batch.iter().map(|r| r.ts().0));
            Outcome::Delivered
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
        Record::Poll(Arc::new(Poll { device, ts: Timestamp(ts), comm_ok: true, samples: vec![] }))
    }

    fn alarm(ts: i64) -> Record {
        Record::Alarm(Arc::new(AlarmEvent {
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

    #[tokio::test]
    async fn retried_batches_arrive_once_in_order() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = Flaky { fail_first: 3, calls: Arc::new(AtomicUsize::new(0)), got: got.clone() };
        let cfg = QueueConfig { batch_max: 4, linger: Duration::ZERO, backoff_min: Duration::from_millis(1), ..Default::default() };
        let (q, _h) = spawn(sink, cfg);
        for ts in 0..10 {
            q.push(poll(ts));
        }
        for _ in 0..200 {
            if got.lock().unwrap().len() == 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(*got.lock().unwrap(), (0..10).collect::<Vec<_>>());
        assert_eq!(q.status(Timestamp(0)).delivered, 10);
        assert!(q.status(Timestamp(0)).retried >= 3);
    }

    #[tokio::test]
    async fn over_budget_drops_oldest_readings_never_alarms() {
        let sink = Flaky { fail_first: usize::MAX, calls: Arc::new(AtomicUsize::new(0)), got: Arc::new(Mutex::new(Vec::new())) };
        let cfg = QueueConfig { max_records: 3, linger: Duration::from_secs(3600), batch_max: 100, ..Default::default() };
        let (q, _h) = spawn(sink, cfg);
        q.push(alarm(1));
        q.push(poll(2));
        q.push(poll(3));
        q.push(poll(4));
        q.push(alarm(5));
        let g = q.inner.lock().unwrap();
        let ts: Vec<i64> = g.queue.iter().map(|r| r.ts().0).collect();
        assert_eq!(ts, vec![1, 4, 5]);
        drop(g);
        assert_eq!(q.status(Timestamp(0)).dropped, 2);
    }
}
