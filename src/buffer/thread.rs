//! The buffer thread: the one owner of the [`Store`], running the commit policy and the
//! budgets. Producers never wait for it; queue workers talk to it by message.
//!
//! Invariants:
//! - Records enter the store only in [`Service::commit`], which inserts and commits in
//!   one transaction; so every row a [`Cmd::Read`] can return is committed (durable).
//! - Removals (delivered, dead-lettered) run at once inside an open transaction, which
//!   is committed with the next commit; if that commit is lost, the rows come back and
//!   are delivered again (at-least-once).
//! - Budget drops take the oldest readings first, never the batch a worker is
//!   delivering, and alarm events only when no reading is left to drop. Drops of rows
//!   already in the store are counted once their removal is committed; drops of
//!   records that never reached the store are counted at once.
//! - A failed transaction is rolled back, the records it was writing go back to the
//!   front of the pending area, the counters are read again from the store, and the
//!   next attempt waits one commit interval. Nothing here panics.
//! - **Held records** (a full or failing disk): the records a failed commit was
//!   writing keep the ids they were given and wait in memory, per queue, beside the
//!   committed rows: a [`Cmd::Read`] returns them after the committed rows, so the
//!   sinks go on delivering live while nothing can be written; an ack removes them from
//!   memory. Every later commit writes them first, under the same ids, so an id read
//!   once never names another record. Held records are bounded by
//!   [`Limits::max_pending`] per queue (the oldest readings outside the batch being
//!   delivered go first, counted as dropped; alarm events only when no reading is
//!   left). [`Pending::failure`] says why writing fails, until a commit succeeds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::store::{NewRow, Removed, Row, Store};
use super::{Error, Limits, Options, QueueShared};
use crate::metrics;
use crate::model::Timestamp;

/// How long the thread sleeps when nothing is pending (it wakes on any command).
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// Drops and store failures are logged at most this often (with counts in between).
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Rows fetched per step while looking for rows to drop.
const DROP_CHUNK: usize = 4096;

/// A record waiting for the next commit.
#[derive(Debug)]
pub(crate) struct Item {
    pub ts: i64,
    pub alarm: bool,
    pub body: Vec<u8>,
}

impl Item {
    pub fn size(&self) -> u64 {
        self.body.len() as u64 + super::store::ROW_OVERHEAD
    }
}

/// Records appended but not yet committed, per queue. Bounded per queue by
/// [`Limits::max_pending`].
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub queues: Vec<VecDeque<Item>>,
    pub bytes: Vec<u64>,
    /// When the oldest pending record arrived.
    pub since: Option<Instant>,
    /// An alarm event is pending: commit now.
    pub urgent: bool,
    pub total: usize,
    /// Why the last commit failed (`None` once one succeeded): the disk is full or
    /// failing, and records are held in memory.
    pub failure: Option<String>,
}

/// A reply callback (works from async and blocking callers alike).
pub(crate) type Done<T> = Box<dyn FnOnce(Result<T, Error>) + Send>;

/// Messages to the thread.
pub(crate) enum Cmd {
    /// Records were appended to the pending area.
    Wake,
    /// Open (or create) a queue.
    Open {
        name: String,
        limits: Limits,
        done: Done<Arc<QueueShared>>,
    },
    /// Committed rows `after < id <= upto`, oldest first; they become the in-flight batch.
    Read {
        q: usize,
        after: i64,
        upto: i64,
        limit: usize,
        done: Done<Vec<Row>>,
    },
    /// The in-flight batch `lo..=hi` was delivered: remove it.
    Ack { q: usize, lo: i64, hi: i64 },
    /// Dead-letter `bad` (id, reason), then remove `range` (the whole batch) if given.
    Reject {
        q: usize,
        range: Option<(i64, i64)>,
        bad: Vec<(i64, String)>,
    },
    /// The in-flight batch was not delivered; it may be dropped over budget again.
    Release { q: usize },
    /// Commit now.
    Flush { done: Done<()> },
    /// Commit and stop.
    Close,
}

struct QState {
    shared: Arc<QueueShared>,
    next_id: i64,
    inflight: Option<(i64, i64)>,
    rows: u64,
    bytes: u64,
    alarms: u64,
    oldest_ts: Option<i64>,
    drops_unlogged: u64,
    drops_logged_at: Option<Instant>,
    /// Records a failed commit was writing, with the ids they keep (see the module
    /// docs: held records).
    held: VecDeque<(i64, Item)>,
}

impl QState {
    fn publish(&self) {
        let s = &self.shared;
        s.rows.store(self.rows, Ordering::SeqCst);
        s.bytes.store(self.bytes, Ordering::Relaxed);
        s.alarms.store(self.alarms, Ordering::Relaxed);
        s.oldest_ts
            .store(self.oldest_ts.unwrap_or(i64::MAX), Ordering::Relaxed);
        s.last_id.store(self.next_id - 1, Ordering::Relaxed);
        s.held.store(self.held.len() as u64, Ordering::SeqCst);
        s.held_bytes.store(
            self.held.iter().map(|(_, it)| it.size()).sum(),
            Ordering::SeqCst,
        );
    }

    /// Bring the held records down to `max`: the oldest readings outside the batch
    /// being delivered first, then the oldest alarm events outside it. Returns
    /// (dropped, alarm events).
    fn trim_held(&mut self, max: usize) -> (u64, u64) {
        let (mut n, mut a) = (0, 0);
        let busy = self.inflight;
        let free = |id: i64| busy.is_none_or(|(lo, hi)| id < lo || id > hi);
        for alarm in [false, true] {
            while self.held.len() > max {
                let Some(pos) = self
                    .held
                    .iter()
                    .position(|(id, it)| it.alarm == alarm && free(*id))
                else {
                    break;
                };
                self.held.remove(pos);
                n += 1;
                a += u64::from(alarm);
            }
        }
        (n, a)
    }

    fn sub(&mut self, r: Removed) {
        self.rows = self.rows.saturating_sub(r.rows);
        self.bytes = self.bytes.saturating_sub(r.bytes);
        self.alarms = self.alarms.saturating_sub(r.alarms);
    }

    /// Count `n` dropped records (`alarms` of them alarm events) and log at most once
    /// per [`LOG_EVERY`].
    fn dropped(&mut self, n: u64, alarms: u64) {
        if n == 0 {
            return;
        }
        self.shared.dropped.fetch_add(n, Ordering::Relaxed);
        metrics::get()
            .sink_dropped
            .get_or_create(&metrics::labels(&[("sink", &self.shared.name)]))
            .inc_by(n);
        if alarms > 0 {
            tracing::error!(sink = %self.shared.name, alarms, "buffer full of alarm events: the oldest alarm events were dropped");
        }
        self.drops_unlogged += n;
        if self
            .drops_logged_at
            .is_none_or(|t| t.elapsed() >= LOG_EVERY)
        {
            tracing::warn!(
                sink = %self.shared.name,
                dropped = self.drops_unlogged,
                max_size_bytes = self.shared.limits.max_bytes,
                "buffer budget reached: the oldest readings were dropped"
            );
            self.drops_unlogged = 0;
            self.drops_logged_at = Some(Instant::now());
        }
    }
}

/// The thread's state.
pub(crate) struct Service<S: Store> {
    store: S,
    rx: Receiver<Cmd>,
    pending: Arc<Mutex<Pending>>,
    wake: Arc<AtomicBool>,
    opts: Options,
    queues: Vec<QState>,
    /// When the open transaction (holding removals) was started.
    txn_since: Option<Instant>,
    /// After a failed transaction: do not try again before this.
    retry_at: Option<Instant>,
    failing: Option<(Instant, u64)>,
    last_fail_log: Option<Instant>,
}

impl<S: Store> Service<S> {
    pub fn new(
        store: S,
        rx: Receiver<Cmd>,
        pending: Arc<Mutex<Pending>>,
        wake: Arc<AtomicBool>,
        opts: Options,
    ) -> Self {
        Service {
            store,
            rx,
            pending,
            wake,
            opts,
            queues: Vec::new(),
            txn_since: None,
            retry_at: None,
            failing: None,
            last_fail_log: None,
        }
    }

    /// The thread body: until [`Cmd::Close`] or every sender is gone, then a last commit.
    pub fn run(mut self) {
        loop {
            let timeout = match self.next_deadline() {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => IDLE_WAIT,
            };
            match self.rx.recv_timeout(timeout) {
                Ok(Cmd::Close) => break,
                Ok(cmd) => self.handle(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.commit_due() {
                let _ = self.commit();
            }
        }
        self.retry_at = None;
        let _ = self.commit();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_deadline(&self) -> Option<Instant> {
        let p = self.lock();
        let mut d = if p.urgent || p.total >= self.opts.commit_max_records {
            Some(Instant::now())
        } else {
            p.since.map(|s| s + self.opts.commit_interval)
        };
        drop(p);
        if let Some(t) = self.txn_since {
            let t = t + self.opts.commit_interval;
            d = Some(d.map_or(t, |d| d.min(t)));
        }
        if self.queues.iter().any(|q| !q.held.is_empty()) || self.lock().failure.is_some() {
            let r = self.retry_at.unwrap_or_else(Instant::now);
            d = Some(d.map_or(r, |d| d.min(r)));
        }
        match (d, self.retry_at) {
            (Some(d), Some(r)) => Some(d.max(r)),
            (d, _) => d,
        }
    }

    fn commit_due(&self) -> bool {
        let now = Instant::now();
        if self.retry_at.is_some_and(|r| now < r) {
            return false;
        }
        let interval = self.opts.commit_interval;
        if self.queues.iter().any(|q| !q.held.is_empty()) || self.lock().failure.is_some() {
            return true;
        }
        let p = self.lock();
        p.urgent
            || p.total >= self.opts.commit_max_records
            || p.since.is_some_and(|s| now >= s + interval)
            || self.txn_since.is_some_and(|s| now >= s + interval)
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Wake => self.wake.store(false, Ordering::SeqCst),
            Cmd::Open { name, limits, done } => done(self.open(name, limits)),
            Cmd::Read {
                q,
                after,
                upto,
                limit,
                done,
            } => {
                let mut r = self.store.read(q, after, upto, limit);
                if let (Ok(rows), Some(qs)) = (&mut r, self.queues.get(q)) {
                    // Held records follow the committed ones (their ids are higher).
                    let room = limit.saturating_sub(rows.len());
                    rows.extend(
                        qs.held
                            .iter()
                            .filter(|(id, _)| *id > after && *id <= upto)
                            .take(room)
                            .map(|(id, it)| Row {
                                id: *id,
                                body: it.body.clone(),
                            }),
                    );
                }
                if let (Ok(rows), Some(qs)) = (&r, self.queues.get_mut(q)) {
                    qs.inflight = match (rows.first(), rows.last()) {
                        (Some(a), Some(b)) => Some((a.id, b.id)),
                        _ => None,
                    };
                }
                if let Err(e) = &r {
                    self.store_failed(e);
                }
                done(r)
            }
            Cmd::Ack { q, lo, hi } => {
                if let Err(e) = self.remove(q, Some((lo, hi)), &[]) {
                    self.abort(&e);
                }
            }
            Cmd::Reject { q, range, bad } => {
                if let Err(e) = self.remove(q, range, &bad) {
                    self.abort(&e);
                }
            }
            Cmd::Release { q } => {
                if let Some(qs) = self.queues.get_mut(q) {
                    qs.inflight = None;
                }
            }
            Cmd::Flush { done } => {
                self.retry_at = None;
                let r = self.commit();
                done(r)
            }
            Cmd::Close => {}
        }
    }

    fn open(&mut self, name: String, limits: Limits) -> Result<Arc<QueueShared>, Error> {
        if self.queues.iter().any(|q| q.shared.name == name) {
            return Err(Error::Duplicate { name });
        }
        let idx = self.queues.len();
        let sum = self.store.open_queue(idx, &name)?;
        let shared = Arc::new(QueueShared::new(name, idx, limits));
        let qs = QState {
            shared: shared.clone(),
            next_id: sum.max_id.saturating_add(1).max(1),
            inflight: None,
            rows: sum.rows,
            bytes: sum.bytes,
            alarms: sum.alarms,
            oldest_ts: sum.oldest_ts,
            drops_unlogged: 0,
            drops_logged_at: None,
            held: VecDeque::new(),
        };
        qs.publish();
        if sum.rows > 0 {
            tracing::info!(
                sink = %shared.name,
                records = sum.rows,
                alarm_events = sum.alarms,
                bytes = sum.bytes,
                "buffer: resuming delivery of records queued before the restart"
            );
            shared.notify.notify_one();
        }
        self.queues.push(qs);
        let mut p = self.lock();
        p.queues.push(VecDeque::new());
        p.bytes.push(0);
        Ok(shared)
    }

    fn begin(&mut self) -> Result<(), Error> {
        if !self.store.in_transaction() {
            self.store.begin()?;
            self.txn_since = Some(Instant::now());
        }
        Ok(())
    }

    /// Dead-letter `bad`, then remove `range`.
    fn remove(
        &mut self,
        q: usize,
        range: Option<(i64, i64)>,
        bad: &[(i64, String)],
    ) -> Result<(), Error> {
        if q >= self.queues.len() {
            return Ok(());
        }
        // Held records leave memory whatever the store does next.
        let qs = &mut self.queues[q];
        if !qs.held.is_empty() {
            let before = qs.held.len();
            let mut refused = 0u64;
            qs.held.retain(|(id, _)| {
                let in_range = range.is_some_and(|(lo, hi)| *id >= lo && *id <= hi);
                let bad_one = bad.iter().any(|(b, _)| b == id);
                if bad_one {
                    refused += 1;
                }
                !(in_range || bad_one)
            });
            if refused > 0 {
                // The dead-letter table cannot be written while the disk fails: the
                // record is counted and logged, not kept.
                tracing::error!(sink = %qs.shared.name, records = refused, "records refused for good while the disk cannot be written: counted as dead-lettered, not stored");
                qs.shared
                    .dead_lettered
                    .fetch_add(refused, Ordering::Relaxed);
                metrics::get()
                    .sink_dead_lettered
                    .get_or_create(&metrics::labels(&[("sink", &qs.shared.name)]))
                    .inc_by(refused);
            }
            if qs.held.len() != before {
                if range.is_some() {
                    qs.inflight = None;
                }
                qs.publish();
            }
        }
        self.begin()?;
        let now = Timestamp::now();
        let mut dead = Vec::new();
        for (id, reason) in bad {
            if self.store.dead_letter(q, *id, reason, now)? {
                dead.push(*id);
            }
        }
        let mut removed = Removed::default();
        if let Some((lo, hi)) = range {
            removed = self.store.remove_range(q, lo, hi)?;
        }
        // Rows refused outside the range (undecodable rows found by a read).
        let outside: Vec<i64> = dead
            .iter()
            .copied()
            .filter(|id| range.is_none_or(|(lo, hi)| *id < lo || *id > hi))
            .collect();
        let r2 = self.store.remove_ids(q, &outside)?;
        let oldest = self.store.oldest_ts(q)?;
        let qs = &mut self.queues[q];
        qs.sub(removed);
        qs.sub(r2);
        qs.oldest_ts = oldest;
        if range.is_some() {
            qs.inflight = None;
        }
        if !dead.is_empty() {
            qs.shared
                .dead_lettered
                .fetch_add(dead.len() as u64, Ordering::Relaxed);
            metrics::get()
                .sink_dead_lettered
                .get_or_create(&metrics::labels(&[("sink", &qs.shared.name)]))
                .inc_by(dead.len() as u64);
        }
        qs.publish();
        Ok(())
    }

    /// Write the pending records and commit the open transaction.
    fn commit(&mut self) -> Result<(), Error> {
        let mut taken: Vec<VecDeque<Item>> = {
            let mut p = self.lock();
            let t: Vec<VecDeque<Item>> = p.queues.iter_mut().map(std::mem::take).collect();
            for (i, b) in p.bytes.iter_mut().enumerate() {
                if let Some(qs) = self.queues.get(i) {
                    qs.shared
                        .committing
                        .store(t[i].len() as u64, Ordering::SeqCst);
                    qs.shared.committing_bytes.store(*b, Ordering::SeqCst);
                }
                *b = 0;
            }
            p.total = 0;
            p.since = None;
            p.urgent = false;
            t
        };
        let any =
            taken.iter().any(|q| !q.is_empty()) || self.queues.iter().any(|q| !q.held.is_empty());
        if !any && !self.store.in_transaction() {
            self.txn_since = None;
            return self.probe_if_failing();
        }
        let mut table_drops: Vec<Removed> = vec![Removed::default(); self.queues.len()];
        match self.write(&mut taken, &mut table_drops) {
            Ok(()) => {
                self.txn_since = None;
                self.retry_at = None;
                let mut was_held = vec![false; self.queues.len()];
                for (i, qs) in self.queues.iter_mut().enumerate() {
                    was_held[i] = !qs.held.is_empty();
                    qs.held.clear();
                }
                // Only rows written say the disk takes writes again (a commit of
                // removals alone may need no new space).
                if taken.iter().any(|q| !q.is_empty()) || was_held.iter().any(|h| *h) {
                    self.lock().failure = None;
                } else {
                    let _ = self.probe_if_failing();
                }
                if let Some((since, n)) = self.failing.take() {
                    tracing::info!(
                        failed_attempts = n,
                        down_s = since.elapsed().as_secs(),
                        "buffer: the store accepts writes again"
                    );
                }
                for (i, items) in taken.iter().enumerate() {
                    let drops = table_drops.get(i).copied().unwrap_or_default();
                    if items.is_empty() && drops.rows == 0 && !was_held[i] {
                        continue;
                    }
                    let oldest = self.store.oldest_ts(i).ok().flatten();
                    let qs = &mut self.queues[i];
                    qs.dropped(drops.rows, drops.alarms);
                    qs.oldest_ts = oldest;
                    qs.publish();
                    if !items.is_empty() {
                        qs.shared.notify.notify_one();
                    }
                }
                for qs in &self.queues {
                    qs.shared.committing.store(0, Ordering::SeqCst);
                    qs.shared.committing_bytes.store(0, Ordering::SeqCst);
                }
                Ok(())
            }
            Err(e) => {
                self.abort(&e);
                // Cleared by the next commit that succeeds (a failed removal alone
                // does not set it: nothing would clear it).
                self.lock().failure = Some(e.to_string());
                // What was being written is held in memory under ids of its own, and
                // readable by the sinks at once (see the module docs).
                for (i, items) in taken.into_iter().enumerate() {
                    let Some(qs) = self.queues.get_mut(i) else {
                        continue;
                    };
                    let fresh = !items.is_empty();
                    for it in items {
                        let id = qs.next_id;
                        qs.next_id += 1;
                        qs.held.push_back((id, it));
                    }
                    let max = qs.shared.limits.max_pending.max(1);
                    let (n, a) = qs.trim_held(max);
                    qs.dropped(n, a);
                    qs.shared.committing.store(0, Ordering::SeqCst);
                    qs.shared.committing_bytes.store(0, Ordering::SeqCst);
                    qs.publish();
                    if fresh {
                        qs.shared.notify.notify_one();
                    }
                }
                Err(e)
            }
        }
    }

    fn write(
        &mut self,
        taken: &mut [VecDeque<Item>],
        table_drops: &mut [Removed],
    ) -> Result<(), Error> {
        // While writes fail, removals (deliveries) are committed on their own first:
        // a delete may still fit where new rows do not, and then delivered records do
        // not come back.
        if self.failing.is_some() && self.store.in_transaction() {
            self.store.commit()?;
        }
        self.begin()?;
        for (i, items) in taken.iter_mut().enumerate() {
            if i >= self.queues.len() {
                continue;
            }
            {
                let qs = &mut self.queues[i];
                for (id, it) in qs.held.iter() {
                    self.store.insert(
                        i,
                        NewRow {
                            id: *id,
                            ts: it.ts,
                            alarm: it.alarm,
                            body: &it.body,
                        },
                    )?;
                    qs.rows += 1;
                    qs.bytes += it.size();
                    qs.alarms += u64::from(it.alarm);
                }
            }
            if items.is_empty() {
                continue;
            }
            table_drops[i] = self.make_room(i, items)?;
            let qs = &mut self.queues[i];
            for it in items.iter() {
                let id = qs.next_id;
                qs.next_id += 1;
                self.store.insert(
                    i,
                    NewRow {
                        id,
                        ts: it.ts,
                        alarm: it.alarm,
                        body: &it.body,
                    },
                )?;
                qs.rows += 1;
                qs.bytes += it.size();
                qs.alarms += u64::from(it.alarm);
            }
        }
        self.store.commit()
    }

    /// Keep queue `i` within its budget once `items` are added: drop the oldest stored
    /// readings (outside the in-flight batch), then the oldest incoming readings, then
    /// the oldest stored alarm events, then incoming ones. Returns what was removed from
    /// the store; incoming records dropped are counted here.
    fn make_room(&mut self, i: usize, items: &mut VecDeque<Item>) -> Result<Removed, Error> {
        let max = self.queues[i].shared.limits.max_bytes;
        let incoming: u64 = items.iter().map(Item::size).sum();
        let mut over = (self.queues[i].bytes + incoming).saturating_sub(max);
        let mut removed = Removed::default();
        let (mut in_dropped, mut in_alarms) = (0u64, 0u64);
        for alarm in [false, true] {
            // Stored rows of this type.
            while over > 0 {
                let skip = self.queues[i].inflight;
                let cands = self.store.oldest_of_type(i, alarm, skip, DROP_CHUNK)?;
                let full = cands.len() == DROP_CHUNK;
                let mut ids = Vec::new();
                for (id, size) in cands {
                    if over == 0 {
                        break;
                    }
                    ids.push(id);
                    over = over.saturating_sub(size);
                }
                if ids.is_empty() {
                    break;
                }
                let r = self.store.remove_ids(i, &ids)?;
                self.queues[i].sub(r);
                removed.rows += r.rows;
                removed.bytes += r.bytes;
                removed.alarms += r.alarms;
                if !full && over > 0 {
                    break;
                }
            }
            // Incoming records of this type, oldest first.
            while over > 0 {
                let Some(pos) = items.iter().position(|it| it.alarm == alarm) else {
                    break;
                };
                let Some(it) = items.remove(pos) else { break };
                over = over.saturating_sub(it.size());
                in_dropped += 1;
                in_alarms += u64::from(alarm);
            }
        }
        self.queues[i].dropped(in_dropped, in_alarms);
        Ok(removed)
    }

    /// While writes fail and nothing is left to write (everything held was delivered
    /// from memory), write a probe each retry: the failure ends only when the store
    /// takes a write again.
    fn probe_if_failing(&mut self) -> Result<(), Error> {
        if self.lock().failure.is_none() {
            return Ok(());
        }
        match self.store.probe() {
            Ok(()) => {
                self.lock().failure = None;
                self.retry_at = None;
                if let Some((since, n)) = self.failing.take() {
                    tracing::info!(
                        failed_attempts = n,
                        down_s = since.elapsed().as_secs(),
                        "buffer: the store accepts writes again"
                    );
                }
                Ok(())
            }
            Err(e) => {
                self.retry_at = Some(Instant::now() + self.opts.commit_interval);
                self.store_failed(&e);
                Err(e)
            }
        }
    }

    /// Roll back after a failure and read the counters again.
    fn abort(&mut self, e: &Error) {
        self.store.rollback();
        self.txn_since = None;
        self.retry_at = Some(Instant::now() + self.opts.commit_interval);
        self.store_failed(e);
        for i in 0..self.queues.len() {
            match self.store.summary(i) {
                Ok(s) => {
                    let qs = &mut self.queues[i];
                    qs.rows = s.rows;
                    qs.bytes = s.bytes;
                    qs.alarms = s.alarms;
                    qs.oldest_ts = s.oldest_ts;
                    qs.next_id = qs.next_id.max(s.max_id + 1);
                    // A batch of held records being delivered stays in flight.
                    if qs
                        .inflight
                        .is_some_and(|(lo, _)| !qs.held.iter().any(|(id, _)| *id == lo))
                    {
                        qs.inflight = None;
                    }
                    qs.publish();
                }
                Err(e) => {
                    tracing::error!(sink = %self.queues[i].shared.name, error = %e, "buffer: cannot read the queue back")
                }
            }
        }
    }

    fn store_failed(&mut self, e: &Error) {
        let f = self.failing.get_or_insert((Instant::now(), 0));
        f.1 += 1;
        let op = match e {
            Error::Store { op, .. } => *op,
            _ => "other",
        };
        metrics::get()
            .sink_errors
            .get_or_create(&metrics::labels(&[("sink", "buffer"), ("reason", op)]))
            .inc();
        if self.last_fail_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            tracing::error!(error = %e, failed_attempts = f.1, "buffer: the store failed; records stay in memory (bounded) and the write is retried");
            self.last_fail_log = Some(Instant::now());
        }
    }
}

/// Bring queue `i` of the pending area down to `max` records: the oldest readings go
/// first, alarm events only when no reading is left. Returns (dropped, alarm events).
pub(crate) fn trim_pending(p: &mut Pending, i: usize, max: usize) -> (u64, u64) {
    let (mut n, mut a) = (0, 0);
    while p.queues[i].len() > max {
        let pos = p.queues[i].iter().position(|it| !it.alarm).unwrap_or(0);
        let Some(it) = p.queues[i].remove(pos) else {
            break;
        };
        p.bytes[i] = p.bytes[i].saturating_sub(it.size());
        p.total = p.total.saturating_sub(1);
        n += 1;
        a += u64::from(it.alarm);
    }
    (n, a)
}
