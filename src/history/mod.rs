//! The compact on-board history: per device, per point, per minute and per hour, the
//! count, sum, min and max of the good numeric samples (booleans as 0/1), in
//! `<state_dir>/history.db`. Reports (src/records/) and the console's sparklines
//! (`GET /api/v1/history`) read it, so they work without InfluxDB.
//!
//! Invariants:
//! - The hub only adds samples to an in-memory [`Accumulator`] (no I/O); once a minute
//!   is over, its rows go to the writer thread, which commits them in one transaction
//!   (minute rows inserted, hour rows merged) — the hub never waits on the disk. A
//!   crash loses at most the minute in progress and the batch being written.
//! - Bounded: minute rows are kept `minute_days` (default 35: this month and the last),
//!   hour rows `hour_days` (default 400); when the file's used pages exceed `max_bytes`
//!   (default 64 MiB) the oldest minute rows go first, then the oldest hour rows.
//!   Pruned once an hour and after a start.
//! - Survives a restart: it is a WAL SQLite file like the journal (src/statedb.rs).
//!
//! # On-disk format (version 1)
//!
//! ```sql
//! meta(key TEXT PRIMARY KEY, value TEXT)      -- format_version = 1
//! minute(device TEXT, point TEXT, ts INTEGER, -- ts: start of the minute, ms UTC
//!        n INTEGER, sum REAL, min REAL, max REAL, PRIMARY KEY (device, point, ts))
//! hour(...)                                   -- the same per hour
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use toml::de::DeValue;

use crate::model::{Poll, Quality, Timestamp, Value};
use crate::statedb;

/// File name in the state directory.
pub const DB_FILE: &str = "history.db";
/// Format version.
pub const FORMAT_VERSION: u32 = 1;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// What can go wrong with the history.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error("history {}: {op} failed: {reason}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        reason: String,
    },
    /// No history file yet.
    #[error("no history at {} (the gateway creates it on its first start)", path.display())]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
}

/// `[history]`: budget and retention.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Used pages above this many bytes: the oldest rows go.
    pub max_bytes: u64,
    /// Days of minute rows.
    pub minute_days: u32,
    /// Days of hour rows.
    pub hour_days: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_bytes: 64 * 1024 * 1024,
            minute_days: 35,
            hour_days: 400,
        }
    }
}

/// `[history]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHistory {
    /// Budget of `history.db`, bytes (default 64 MiB, at least 1 MiB).
    #[serde(default)]
    pub max_bytes: Option<Spanned<u64>>,
    /// Days of per-minute rows (default 35, 2 to 400).
    #[serde(default)]
    pub minute_days: Option<Spanned<u32>>,
    /// Days of per-hour rows (default 400, 31 to 3660).
    #[serde(default)]
    pub hour_days: Option<Spanned<u32>>,
}

/// Validate `[history]` (taken out of the document by the loader).
pub(crate) fn validate(
    r: &mut crate::config::Report<'_>,
    table: Option<Spanned<DeValue<'_>>>,
) -> Options {
    let mut o = Options::default();
    let Some(t) = table else { return o };
    let Some(raw) = r.parse_value::<RawHistory>(t, "history") else {
        return o;
    };
    if let Some(v) = &raw.max_bytes {
        if *v.get_ref() >= 1024 * 1024 {
            o.max_bytes = *v.get_ref();
        } else {
            r.at(v.span(), "history.max_bytes", "at least 1048576 (1 MiB)");
        }
    }
    if let Some(v) = &raw.minute_days {
        if (2..=400).contains(v.get_ref()) {
            o.minute_days = *v.get_ref();
        } else {
            r.at(
                v.span(),
                "history.minute_days",
                format!("{} is out of range: use 2 to 400", v.get_ref()),
            );
        }
    }
    if let Some(v) = &raw.hour_days {
        if (31..=3660).contains(v.get_ref()) {
            o.hour_days = *v.get_ref();
        } else {
            r.at(
                v.span(),
                "history.hour_days",
                format!("{} is out of range: use 31 to 3660", v.get_ref()),
            );
        }
    }
    o
}

/// One aggregate row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Device id.
    pub device: String,
    /// Point name.
    pub point: String,
    /// Start of the minute (or hour).
    pub ts: Timestamp,
    /// Samples.
    pub n: u64,
    /// Sum of the samples.
    #[serde(skip)]
    pub sum: f64,
    /// Lowest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Highest.
    pub max: f64,
}

#[derive(Debug, Clone, Copy)]
struct Agg {
    minute: i64,
    n: u64,
    sum: f64,
    min: f64,
    max: f64,
}

/// The minute in progress, per device and point (the hub's part: no I/O).
#[derive(Debug, Default)]
pub struct Accumulator {
    open: HashMap<(Arc<str>, &'static str), Agg>,
    done: Vec<Row>,
}

fn row(device: &str, point: &str, a: &Agg) -> Row {
    Row {
        device: device.to_string(),
        point: point.to_string(),
        ts: Timestamp(a.minute),
        n: a.n,
        sum: a.sum,
        min: a.min,
        mean: a.sum / a.n as f64,
        max: a.max,
    }
}

impl Accumulator {
    /// Add the good numeric samples of a poll.
    pub fn add(&mut self, poll: &Poll) {
        let minute = poll.ts.0.div_euclid(MINUTE_MS) * MINUTE_MS;
        for s in &poll.samples {
            if s.quality != Quality::Good {
                continue;
            }
            let v = match &s.value {
                Some(Value::Number(v)) if v.is_finite() => *v,
                Some(Value::Bool(b)) => f64::from(u8::from(*b)),
                _ => continue,
            };
            let key = (poll.device.id.clone(), s.point.name);
            match self.open.get_mut(&key) {
                Some(a) if a.minute == minute => {
                    a.n += 1;
                    a.sum += v;
                    a.min = a.min.min(v);
                    a.max = a.max.max(v);
                }
                other => {
                    let fresh = Agg {
                        minute,
                        n: 1,
                        sum: v,
                        min: v,
                        max: v,
                    };
                    if let Some(a) = other {
                        let old = std::mem::replace(a, fresh);
                        self.done.push(row(&key.0, key.1, &old));
                    } else {
                        self.open.insert(key, fresh);
                    }
                }
            }
        }
    }

    /// The rows of minutes that are over at `now`.
    pub fn take_done(&mut self, now: Timestamp) -> Vec<Row> {
        let minute = now.0.div_euclid(MINUTE_MS) * MINUTE_MS;
        let mut out = std::mem::take(&mut self.done);
        self.open.retain(|k, a| {
            if a.minute < minute {
                out.push(row(&k.0, k.1, a));
                false
            } else {
                true
            }
        });
        out
    }
}

/// The history file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    opts: Options,
}

impl Store {
    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |e| Error::Store {
            path: self.path.clone(),
            op,
            reason: e.to_string(),
        }
    }

    /// Open (create) `<dir>/history.db` for writing.
    pub fn open(dir: &Path, opts: Options) -> Result<Store, Error> {
        let path = dir.join(DB_FILE);
        let fail = |f: statedb::Failure| Error::Store {
            path: path.clone(),
            op: f.op,
            reason: f.reason,
        };
        let _ = std::fs::create_dir_all(dir);
        let conn = statedb::open_rw(&path).map_err(fail)?;
        statedb::configure(&conn, true).map_err(fail)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS minute (device TEXT NOT NULL, point TEXT NOT NULL, ts INTEGER NOT NULL,
                 n INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
                 PRIMARY KEY (device, point, ts)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS hour (device TEXT NOT NULL, point TEXT NOT NULL, ts INTEGER NOT NULL,
                 n INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
                 PRIMARY KEY (device, point, ts)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS minute_ts ON minute (ts);
             CREATE INDEX IF NOT EXISTS hour_ts ON hour (ts);",
        )
        .map_err(|e| Error::Store { path: path.clone(), op: "create tables", reason: e.to_string() })?;
        statedb::set_version(&conn, FORMAT_VERSION).map_err(fail)?;
        Ok(Store { conn, path, opts })
    }

    /// Open an existing history for reading (beside the running gateway).
    pub fn open_read_only(dir: &Path) -> Result<Store, Error> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(Error::Missing { path });
        }
        let conn = statedb::open_ro(&path).map_err(|f| Error::Store {
            path: path.clone(),
            op: f.op,
            reason: f.reason,
        })?;
        Ok(Store {
            conn,
            path,
            opts: Options::default(),
        })
    }

    /// Write finished minutes (and merge them into their hours), in one transaction.
    pub fn write(&mut self, rows: &[Row]) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |op: &'static str| {
            let path = path.clone();
            move |e: rusqlite::Error| Error::Store {
                path: path.clone(),
                op,
                reason: e.to_string(),
            }
        };
        let tx = self.conn.transaction().map_err(e("begin"))?;
        {
            let mut m = tx
                .prepare_cached(
                    "INSERT INTO minute (device, point, ts, n, sum, min, max) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (device, point, ts) DO UPDATE SET n = n + excluded.n, sum = sum + excluded.sum,
                     min = MIN(min, excluded.min), max = MAX(max, excluded.max)",
                )
                .map_err(e("prepare"))?;
            let mut h = tx
                .prepare_cached(
                    "INSERT INTO hour (device, point, ts, n, sum, min, max) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (device, point, ts) DO UPDATE SET n = n + excluded.n, sum = sum + excluded.sum,
                     min = MIN(min, excluded.min), max = MAX(max, excluded.max)",
                )
                .map_err(e("prepare"))?;
            for r in rows {
                let p = params![r.device, r.point, r.ts.0, r.n as i64, r.sum, r.min, r.max];
                m.execute(p).map_err(e("insert minute"))?;
                let hour = r.ts.0.div_euclid(HOUR_MS) * HOUR_MS;
                h.execute(params![
                    r.device, r.point, hour, r.n as i64, r.sum, r.min, r.max
                ])
                .map_err(e("insert hour"))?;
            }
        }
        tx.commit().map_err(e("commit"))
    }

    /// Bytes used by rows (pages in use).
    pub fn used_bytes(&self) -> u64 {
        let q = |sql: &str| {
            self.conn
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .unwrap_or(0)
        };
        let pages = q("PRAGMA page_count") - q("PRAGMA freelist_count");
        (pages.max(0) as u64) * q("PRAGMA page_size").max(0) as u64
    }

    /// Remove rows past their retention, then the oldest while over budget. Returns
    /// the rows removed.
    pub fn prune(&mut self, now: Timestamp) -> Result<u64, Error> {
        let day = 86_400_000i64;
        let mut n = self
            .conn
            .execute(
                "DELETE FROM minute WHERE ts < ?1",
                params![now.0 - i64::from(self.opts.minute_days) * day],
            )
            .map_err(self.err("prune minute"))? as u64;
        n += self
            .conn
            .execute(
                "DELETE FROM hour WHERE ts < ?1",
                params![now.0 - i64::from(self.opts.hour_days) * day],
            )
            .map_err(self.err("prune hour"))? as u64;
        for table in ["minute", "hour"] {
            let mut rounds = 0;
            while self.used_bytes() > self.opts.max_bytes && rounds < 50 {
                rounds += 1;
                let oldest: Option<i64> = self
                    .conn
                    .query_row(&format!("SELECT MIN(ts) FROM {table}"), [], |r| r.get(0))
                    .map_err(self.err("oldest"))?;
                let Some(oldest) = oldest else { break };
                // A day of rows at a time.
                n += self
                    .conn
                    .execute(
                        &format!("DELETE FROM {table} WHERE ts < ?1"),
                        params![oldest + day],
                    )
                    .map_err(self.err("prune budget"))? as u64;
            }
        }
        Ok(n)
    }

    /// Rows of one device's point (or every point when `point` is `None`) from `from`
    /// to before `to`, oldest first: minute rows, or hour rows when `hourly`.
    pub fn query(
        &self,
        device: Option<&str>,
        point: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        hourly: bool,
    ) -> Result<Vec<Row>, Error> {
        let table = if hourly { "hour" } else { "minute" };
        let sql = format!(
            "SELECT device, point, ts, n, sum, min, max FROM {table}
             WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR device = ?3) AND (?4 IS NULL OR point = ?4)
             ORDER BY device, point, ts"
        );
        let mut st = self.conn.prepare(&sql).map_err(self.err("query"))?;
        let rows = st
            .query_map(params![from.0, to.0, device, point], |r| {
                let n: i64 = r.get(3)?;
                let sum: f64 = r.get(4)?;
                Ok(Row {
                    device: r.get(0)?,
                    point: r.get(1)?,
                    ts: Timestamp(r.get(2)?),
                    n: n as u64,
                    sum,
                    min: r.get(5)?,
                    mean: if n > 0 { sum / n as f64 } else { 0.0 },
                    max: r.get(6)?,
                })
            })
            .map_err(self.err("query"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("read row"))
    }
}

/// The writer thread's handle: the hub sends finished minutes, never waits.
#[derive(Clone)]
pub struct History {
    tx: std::sync::mpsc::SyncSender<Vec<Row>>,
}

impl History {
    /// Open the store and start its writer thread (prunes at start and hourly).
    pub fn start(dir: &Path, opts: Options) -> Result<History, Error> {
        let mut store = Store::open(dir, opts)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Row>>(64);
        std::thread::Builder::new()
            .name("history".into())
            .spawn(move || {
                let mut last_prune: Option<Timestamp> = None;
                loop {
                    let now = Timestamp::now();
                    if last_prune.is_none_or(|t| now.secs_since(t) >= 3600.0) {
                        last_prune = Some(now);
                        if let Err(e) = store.prune(now) {
                            tracing::warn!(error = %e, "history: cannot prune");
                        }
                    }
                    let Ok(rows) = rx.recv() else { return };
                    if let Err(e) = store.write(&rows) {
                        tracing::warn!(error = %e, rows = rows.len(), "history: cannot write; rows dropped");
                    }
                }
            })
            .map_err(|e| Error::Store { path: dir.join(DB_FILE), op: "start thread", reason: e.to_string() })?;
        Ok(History { tx })
    }

    /// Hand finished minutes to the writer; a full channel drops them (logged): the
    /// history is a convenience, monitoring never waits for it.
    pub fn send(&self, rows: Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        if let Err(e) = self.tx.try_send(rows) {
            tracing::warn!(error = %e, "history: writer busy; a minute of history dropped");
        }
    }
}

#[cfg(test)]
mod tests;
