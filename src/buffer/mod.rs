//! The durable store-and-forward buffer in front of every sink.
//!
//! Each sink gets a [`DiskQueue`]: the hub appends records without waiting, the sink's
//! worker (`sinks::worker`) reads committed records in order, hands them to the sink
//! and removes them once the far end confirmed them (or moves them to the dead-letter
//! table with the far end's reason). A restart reopens the queues and delivery resumes
//! where it stopped.
//!
//! # Guarantees
//!
//! - **Alarm events** are committed — written and fsynced — *before* a worker can read
//!   them: an append of an alarm event wakes the buffer thread, which commits at once
//!   (group commit: every record pending at that moment goes in the same transaction).
//!   An alarm event that was ever handed to a sink survives a crash or power cut.
//! - **Readings** are committed in batches: at the latest [`Options::commit_interval`]
//!   (1 s by default) after the first uncommitted one arrived, or as soon as
//!   [`Options::commit_max_records`] are pending. **Loss window:** a SIGKILL, panic or
//!   power cut loses at most the readings appended since the last commit — one commit
//!   interval (≤ 1 s of readings by default), plus the commit that was in progress.
//!   Everything committed is delivered after the restart. An orderly stop commits what
//!   is pending and loses nothing.
//! - A record leaves its queue only when the sink reported the far end confirmed it
//!   (`Outcome::Delivered`: HTTP 2xx, MQTT PUBACK), or when the far end refused it for
//!   good (`Outcome::Rejected`): then it is moved to the dead-letter table with the
//!   reason, in the same transaction. Delivery is at-least-once: removals are
//!   committed with the next commit, so a crash in between re-sends a batch (InfluxDB
//!   keeps one point per series and time; alarm events carry `id` and `seq`).
//! - **Budget:** each queue holds at most `max_size_bytes` (records' encoded size plus
//!   [`store::ROW_OVERHEAD`] per row). When a commit would exceed it, the oldest
//!   readings are dropped first — never the batch being delivered — then, only if no
//!   reading is left, the oldest alarm events. Every drop is counted (`dropped` in
//!   `GET /api/v1/sinks`, `dcgw_sink_dropped`) and logged. The runtime raises the
//!   gateway's `buffer_high` alarm at 80 % of a budget.
//! - **Memory is bounded:** records waiting for the next commit are held in memory, at
//!   most [`Limits::max_pending`] per queue (the oldest readings go first beyond
//!   that, counted as dropped; this only happens when the disk stalls for long).
//!   Workers read in batches. Nothing else is held.
//! - A failing disk (full, I/O error) never stops the gateway: the transaction is
//!   rolled back, the records it was writing are **held** in memory under the ids
//!   they were given (bounded per queue by [`Limits::max_pending`]: the oldest readings
//!   go first, counted; alarm events last), the sinks read and deliver them as if
//!   committed, the error is logged and counted in `dcgw_sink_errors{sink="buffer"}`,
//!   [`Buffer::write_failure`] says why (the runtime raises the serious `disk_full`
//!   alarm), and the write is retried each commit interval: once space is back, what
//!   is held and not yet delivered is committed under the same ids.
//!
//! # On-disk format (version 1)
//!
//! One SQLite database, `<state_dir>/buffer.db` (WAL mode: also `buffer.db-wal` and
//! `buffer.db-shm`), `journal_mode=WAL`, `synchronous=FULL` (the WAL is fsynced at
//! every commit), owned by one thread with one connection ([`store::Sqlite`]). It can
//! be inspected with `sqlite3` while the gateway runs (read-only please):
//!
//! ```sql
//! meta(key TEXT PRIMARY KEY, value TEXT)       -- format_version = 1, created_at
//! "queue_<sink>"(                              -- one per sink: queue_influx, queue_mqtt
//!     id    INTEGER PRIMARY KEY,               -- increasing per queue: delivery order
//!     ts    INTEGER NOT NULL,                  -- record time, ms since the Unix epoch
//!     alarm INTEGER NOT NULL,                  -- 1 = alarm event, 0 = poll (readings)
//!     body  BLOB NOT NULL)                     -- the record, see `codec`
//! dead_letter(
//!     id INTEGER PRIMARY KEY, sink TEXT, failed_at TEXT,  -- RFC 3339 UTC
//!     record_ts TEXT, reason TEXT,             -- the far end's own message
//!     record TEXT,                             -- the record as JSON, for people
//!     body BLOB)                               -- the stored bytes, to re-inject
//! ```
//!
//! e.g. `sqlite3 /var/lib/dc-gateway/buffer.db "SELECT sink, failed_at, reason, record
//! FROM dead_letter ORDER BY id DESC LIMIT 10"`. The dead-letter table keeps the
//! newest [`store::DEAD_LETTER_MAX_ROWS`] rows. A record's `body` is the compact binary
//! encoding documented in [`codec`]: a poll keeps its device's id, kind, room and label
//! (so it is delivered unchanged even if the config changed meanwhile) and every
//! sample's point name, quality and typed value; an alarm event keeps every field.
//!
//! The file does not shrink when queues drain (SQLite reuses the free pages): its size
//! is the high-water mark, bounded by the sum of the budgets plus page overhead.
//! `VACUUM` it with the gateway stopped to give the space back.
//!
//! # Cost on an SD card
//!
//! While the far end keeps up, each commit rewrites the few B-tree pages that changed
//! (the page records were appended to, the page they were removed from) into the WAL,
//! and the automatic checkpoint copies them into the database later: a few pages per
//! commit interval, whatever the number of readings. See `docs/BENCHMARKS.md`
//! ("Durable buffer") for bytes written per reading, measured.
//!
//! [`store::Store`] is the small trait the thread uses; a segment log could replace
//! SQLite behind it.

pub mod codec;
pub mod store;
mod thread;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};

use crate::model::Timestamp;
use crate::sinks::Record;
pub use codec::Registry;
pub use store::carry_over_queues;
use store::{Row, Sqlite, Store};
use thread::{Cmd, Item, Pending, Service};

/// Default commit interval for readings.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(1000);
/// Default number of pending records that triggers a commit before the interval.
pub const DEFAULT_COMMIT_MAX_RECORDS: usize = 5000;

/// Why the buffer failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory cannot be created.
    #[error("cannot create the state directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("buffer database {path}: {op} failed: {reason}")]
    Store {
        /// The database file.
        path: String,
        /// What was being done.
        op: &'static str,
        /// The database's message.
        reason: String,
    },
    /// The database was written by another format version.
    #[error(
        "buffer database {path} has format version {found:?}; this build reads up to {supported}{}",
        if *newer { " (it was written by a newer dc-gateway: upgrade, or move the file away)" } else { "" }
    )]
    Version {
        /// The database file.
        path: String,
        /// Version found.
        found: String,
        /// Newest version this build reads.
        supported: u32,
        /// Whether `found` is a newer version (rather than garbage).
        newer: bool,
    },
    /// A sink name that cannot name a queue table.
    #[error("sink name {name:?} cannot name a buffer queue: use letters, digits, '_', '-' and '.'")]
    BadName {
        /// The name.
        name: String,
    },
    /// Two queues with one name.
    #[error("buffer queue {name:?} is already open")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// The buffer thread is gone (it only stops when the buffer is dropped).
    #[error("the buffer thread has stopped")]
    Stopped,
}

/// Commit policy, shared by every queue of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Readings are committed at the latest this long after the first uncommitted one.
    pub commit_interval: Duration,
    /// ... or as soon as this many records are pending.
    pub commit_max_records: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            commit_max_records: DEFAULT_COMMIT_MAX_RECORDS,
        }
    }
}

/// Limits of one queue.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Disk budget: encoded records plus [`store::ROW_OVERHEAD`] per row.
    pub max_bytes: u64,
    /// Most records held in memory waiting for a commit.
    pub max_pending: usize,
}

/// Counters of one queue, written by the buffer thread, read by anyone.
pub(crate) struct QueueShared {
    pub name: String,
    pub idx: usize,
    pub limits: Limits,
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub alarms: AtomicU64,
    /// `i64::MAX` when empty.
    pub oldest_ts: AtomicI64,
    pub last_id: AtomicI64,
    pub dropped: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Records taken from the pending area by a commit in progress (and their bytes),
    /// so counters never show them nowhere.
    pub committing: AtomicU64,
    pub committing_bytes: AtomicU64,
    /// Records held in memory while the disk cannot be written (and their bytes).
    pub held: AtomicU64,
    pub held_bytes: AtomicU64,
    /// Signalled when records were committed (the worker waits on it).
    pub notify: Notify,
}

impl QueueShared {
    fn new(name: String, idx: usize, limits: Limits) -> QueueShared {
        QueueShared {
            name,
            idx,
            limits,
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            alarms: AtomicU64::new(0),
            oldest_ts: AtomicI64::new(i64::MAX),
            last_id: AtomicI64::new(0),
            dropped: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            committing: AtomicU64::new(0),
            committing_bytes: AtomicU64::new(0),
            held: AtomicU64::new(0),
            held_bytes: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }
}

struct Inner {
    tx: Sender<Cmd>,
    pending: Arc<Mutex<Pending>>,
    wake: Arc<AtomicBool>,
    registry: Registry,
    opts: Options,
    path: Option<PathBuf>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Inner {
    fn send(&self, cmd: Cmd) -> Result<(), Error> {
        self.tx.send(cmd).map_err(|_| Error::Stopped)
    }
}

impl Drop for Inner {
    /// Commit what is pending and stop the thread: an orderly stop loses nothing.
    fn drop(&mut self) {
        let _ = self.tx.send(Cmd::Close);
        if let Some(h) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take()
            && h.join().is_err()
        {
            tracing::error!("buffer thread panicked");
        }
    }
}

/// The buffer: one database, one thread, a queue per sink. Cheap to clone; the thread
/// commits what is pending and stops when the last clone and queue are dropped.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
}

impl Buffer {
    /// Open (or create) the buffer in `state_dir` (`<state_dir>/buffer.db`).
    pub fn open(state_dir: &Path, opts: Options) -> Result<Buffer, Error> {
        let store = Sqlite::open(state_dir)?;
        Buffer::start(store, opts, Some(state_dir.join(store::DB_FILE)))
    }

    /// A buffer in memory: the same queues and policies, nothing durable. For tests and
    /// tools that need a sink queue without a state directory.
    pub fn in_memory(opts: Options) -> Result<Buffer, Error> {
        Buffer::start(Sqlite::in_memory()?, opts, None)
    }

    /// Run the buffer thread over any [`Store`].
    pub fn start<S: Store + 'static>(
        store: S,
        opts: Options,
        path: Option<PathBuf>,
    ) -> Result<Buffer, Error> {
        let (tx, rx) = mpsc::channel();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let wake = Arc::new(AtomicBool::new(false));
        let service = Service::new(store, rx, pending.clone(), wake.clone(), opts);
        let thread = std::thread::Builder::new()
            .name("dcgw-buffer".into())
            .spawn(move || service.run())
            .map_err(|e| Error::Store {
                path: "buffer".into(),
                op: "start thread",
                reason: e.to_string(),
            })?;
        Ok(Buffer {
            inner: Arc::new(Inner {
                tx,
                pending,
                wake,
                registry: Registry::new(),
                opts,
                path,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Why the buffer cannot write (a full or failing disk: the store's own message),
    /// or `None` while commits succeed. Records are held in memory meanwhile and the
    /// sinks go on delivering them.
    pub fn write_failure(&self) -> Option<String> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failure
            .clone()
    }

    /// The commit policy.
    pub fn options(&self) -> Options {
        self.inner.opts
    }

    /// Devices that decoded polls should share (see [`Registry`]).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Open the queue of sink `name` (creating it if needed). Blocks for the few
    /// milliseconds the thread takes; call it at start-up.
    pub fn queue(&self, name: &str, limits: Limits) -> Result<DiskQueue, Error> {
        let (tx, rx) = mpsc::channel();
        self.inner.send(Cmd::Open {
            name: name.to_string(),
            limits,
            done: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        })?;
        let shared = rx.recv().map_err(|_| Error::Stopped)??;
        Ok(DiskQueue {
            inner: self.inner.clone(),
            shared,
        })
    }

    /// Commit everything pending now, and wait for it (blocking).
    pub fn flush(&self) -> Result<(), Error> {
        let (tx, rx) = mpsc::channel();
        self.inner.send(Cmd::Flush {
            done: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        })?;
        rx.recv().map_err(|_| Error::Stopped)?
    }

    /// Commit everything pending now, and wait for it (async).
    pub async fn flush_async(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.inner.send(Cmd::Flush {
            done: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        })?;
        rx.await.map_err(|_| Error::Stopped)?
    }
}

/// A snapshot of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueCounters {
    /// Committed records (including a batch being delivered).
    pub rows: u64,
    /// Their bytes as the budget counts them.
    pub bytes: u64,
    /// Committed alarm events.
    pub alarms: u64,
    /// Records waiting for the next commit (including those held in memory while the
    /// disk cannot be written).
    pub pending: u64,
    /// Their bytes.
    pub pending_bytes: u64,
    /// Time of the oldest record, committed or pending.
    pub oldest: Option<Timestamp>,
    /// Records dropped over budget since start.
    pub dropped: u64,
    /// Records moved to the dead-letter table since start.
    pub dead_lettered: u64,
}

/// One sink's queue. Cheap to clone.
#[derive(Clone)]
pub struct DiskQueue {
    inner: Arc<Inner>,
    shared: Arc<QueueShared>,
}

impl DiskQueue {
    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The queue's limits.
    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    /// Append a record. Never blocks on the disk: the record waits in memory for the
    /// next commit (at once for an alarm event). Over [`Limits::max_pending`] the
    /// oldest pending reading is dropped and counted.
    pub fn append(&self, rec: &Record) {
        let item = Item {
            ts: rec.ts().0,
            alarm: rec.is_alarm(),
            body: codec::to_vec(rec),
        };
        self.append_item(item);
    }

    /// Append an already encoded record (see [`codec`]).
    pub fn append_encoded(&self, ts: Timestamp, body: Vec<u8>) {
        let alarm = codec::is_alarm(&body);
        self.append_item(Item {
            ts: ts.0,
            alarm,
            body,
        });
    }

    fn append_item(&self, item: Item) {
        let idx = self.shared.idx;
        let alarm = item.alarm;
        let max = self.shared.limits.max_pending.max(1);
        let mut p = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        let size = item.size();
        p.queues[idx].push_back(item);
        p.bytes[idx] += size;
        p.total += 1;
        let first = p.since.is_none();
        if first {
            p.since = Some(Instant::now());
        }
        if alarm {
            p.urgent = true;
        }
        let (dropped, dropped_alarms) = if p.queues[idx].len() > max {
            thread::trim_pending(&mut p, idx, max)
        } else {
            (0, 0)
        };
        let wake = first || alarm || p.total >= self.inner.opts.commit_max_records;
        drop(p);
        if dropped > 0 {
            self.shared.dropped.fetch_add(dropped, Ordering::Relaxed);
            crate::metrics::get()
                .sink_dropped
                .get_or_create(&crate::metrics::labels(&[("sink", &self.shared.name)]))
                .inc_by(dropped);
            tracing::warn!(sink = %self.shared.name, dropped, alarm_events = dropped_alarms, "buffer: records waiting for the disk exceed the memory limit; the oldest were dropped");
        }
        if wake && !self.inner.wake.swap(true, Ordering::SeqCst) {
            let _ = self.inner.send(Cmd::Wake);
        }
    }

    /// Up to `limit` committed records with `after < id <= upto`, oldest first, decoded.
    /// They are the in-flight batch until [`DiskQueue::ack`], [`DiskQueue::reject`] or
    /// [`DiskQueue::release`]: budget drops leave them alone. A row that does not
    /// decode is dead-lettered at once and left out.
    pub async fn read(
        &self,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Record)>, Error> {
        let (tx, rx) = oneshot::channel();
        self.inner.send(Cmd::Read {
            q: self.shared.idx,
            after,
            upto,
            limit,
            done: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        })?;
        let rows: Vec<Row> = rx.await.map_err(|_| Error::Stopped)??;
        let mut out = Vec::with_capacity(rows.len());
        let mut bad = Vec::new();
        for row in rows {
            match codec::decode(&row.body, &self.inner.registry) {
                Ok(r) => out.push((row.id, r)),
                Err(e) => {
                    tracing::error!(sink = %self.shared.name, id = row.id, error = %e, "buffer: a stored record does not decode; dead-lettered");
                    bad.push((row.id, format!("undecodable record: {e}")));
                }
            }
        }
        if !bad.is_empty() {
            self.inner.send(Cmd::Reject {
                q: self.shared.idx,
                range: None,
                bad,
            })?;
        }
        Ok(out)
    }

    /// The batch `lo..=hi` was delivered: remove it.
    pub fn ack(&self, lo: i64, hi: i64) {
        let _ = self.inner.send(Cmd::Ack {
            q: self.shared.idx,
            lo,
            hi,
        });
    }

    /// The far end refused `bad` (id, its reason) for good and took the rest of the
    /// batch `lo..=hi`: dead-letter `bad`, remove the batch.
    pub fn reject(&self, lo: i64, hi: i64, bad: Vec<(i64, String)>) {
        let _ = self.inner.send(Cmd::Reject {
            q: self.shared.idx,
            range: Some((lo, hi)),
            bad,
        });
    }

    /// The in-flight batch was not delivered; it stays queued.
    pub fn release(&self) {
        let _ = self.inner.send(Cmd::Release { q: self.shared.idx });
    }

    /// Wait until records were committed (or `timeout`).
    pub async fn committed(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.shared.notify.notified()).await;
    }

    /// Wake a task waiting in [`DiskQueue::committed`] (e.g. other work arrived).
    pub fn wake_reader(&self) {
        self.shared.notify.notify_one();
    }

    /// Records ready to read: committed (including an in-flight batch), and those held
    /// in memory while the disk cannot be written.
    pub fn rows(&self) -> u64 {
        self.shared.rows.load(Ordering::Relaxed) + self.shared.held.load(Ordering::Relaxed)
    }

    /// The highest id given so far.
    pub fn last_id(&self) -> i64 {
        self.shared.last_id.load(Ordering::Relaxed)
    }

    /// Time of the oldest committed record.
    pub fn oldest_committed(&self) -> Option<Timestamp> {
        let t = self.shared.oldest_ts.load(Ordering::Relaxed);
        (t != i64::MAX).then_some(Timestamp(t))
    }

    /// Counters for the API.
    pub fn counters(&self) -> QueueCounters {
        let s = &self.shared;
        let (pending, pending_bytes, pending_oldest) = {
            let p = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            let q = &p.queues[self.shared.idx];
            (
                q.len() as u64,
                p.bytes[self.shared.idx],
                q.front().map(|i| i.ts),
            )
        };
        // Read the in-commit count before the committed one: the thread publishes the
        // committed count first and clears this one after, so a record may be counted
        // twice for an instant but never missed.
        let committing = s.committing.load(Ordering::SeqCst);
        let committing_bytes = s.committing_bytes.load(Ordering::SeqCst);
        let held = s.held.load(Ordering::SeqCst);
        let held_bytes = s.held_bytes.load(Ordering::SeqCst);
        let (pending, pending_bytes) = (
            pending + committing + held,
            pending_bytes + committing_bytes + held_bytes,
        );
        let committed = self.oldest_committed();
        let oldest = match (committed, pending_oldest) {
            (Some(c), Some(p)) => Some(Timestamp(c.0.min(p))),
            (c, p) => c.or(p.map(Timestamp)),
        };
        QueueCounters {
            rows: s.rows.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            alarms: s.alarms.load(Ordering::Relaxed),
            pending,
            pending_bytes,
            oldest,
            dropped: s.dropped.load(Ordering::Relaxed),
            dead_lettered: s.dead_lettered.load(Ordering::Relaxed),
        }
    }

    /// Fill of the budget, 0–100 % (committed and pending bytes over `max_bytes`).
    pub fn used_pct(&self) -> f64 {
        let c = self.counters();
        let max = self.shared.limits.max_bytes.max(1) as f64;
        ((c.bytes + c.pending_bytes) as f64 / max * 100.0).min(100.0)
    }

    /// Count records refused for good that never reached the store (e.g. from an
    /// in-memory ring in front of the sink), so the API shows one total.
    pub fn count_dead_lettered(&self, n: u64) {
        self.shared.dead_lettered.fetch_add(n, Ordering::Relaxed);
        crate::metrics::get()
            .sink_dead_lettered
            .get_or_create(&crate::metrics::labels(&[("sink", &self.shared.name)]))
            .inc_by(n);
    }

    /// Count records dropped outside the store (see [`DiskQueue::count_dead_lettered`]).
    pub fn count_dropped(&self, n: u64) {
        self.shared.dropped.fetch_add(n, Ordering::Relaxed);
        crate::metrics::get()
            .sink_dropped
            .get_or_create(&crate::metrics::labels(&[("sink", &self.shared.name)]))
            .inc_by(n);
    }

    /// The buffer this queue belongs to.
    pub fn buffer(&self) -> Buffer {
        Buffer {
            inner: self.inner.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
