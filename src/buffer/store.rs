//! The storage primitives the buffer thread needs ([`Store`]), and their SQLite
//! implementation ([`Sqlite`]).
//!
//! The trait is deliberately small and policy-free: rows in, rows out, ranges removed,
//! one row copied to the dead-letter table, transactions. Everything that decides
//! *when* (commit policy, budget, in-flight protection) lives in the buffer thread, so
//! a segment log could replace SQLite by implementing these methods.
//!
//! Invariants an implementation keeps:
//! - ids given to [`Store::insert`] are strictly increasing per queue; reads return
//!   rows in id order;
//! - nothing written between [`Store::begin`] and [`Store::commit`] survives a crash
//!   unless `commit` returned `Ok`, and everything that `commit` acknowledged does
//!   (SQLite: WAL with `synchronous=FULL`, so the WAL is fsynced at every commit);
//! - reads see the connection's own uncommitted changes (removals made inside an open
//!   transaction are not returned again).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::Error;
use crate::model::Timestamp;
use crate::statedb;

/// Current on-disk format version (the `meta` table's `format_version`).
pub const FORMAT_VERSION: u32 = 1;

/// Dead-letter rows kept; beyond this the oldest are deleted.
pub const DEAD_LETTER_MAX_ROWS: u64 = 10_000;

/// Bytes counted per queued row on top of its body: SQLite's cell header, rowid,
/// `ts` and `alarm` columns and cell pointer. Budgets count `body + ROW_OVERHEAD`.
pub const ROW_OVERHEAD: u64 = 24;

/// A row to store.
#[derive(Debug, Clone, Copy)]
pub struct NewRow<'a> {
    /// Queue-unique, increasing id.
    pub id: i64,
    /// Record time, ms since the epoch.
    pub ts: i64,
    /// Whether the record is an alarm event.
    pub alarm: bool,
    /// The encoded record (see `codec`).
    pub body: &'a [u8],
}

/// A stored row read back.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its id.
    pub id: i64,
    /// The encoded record.
    pub body: Vec<u8>,
}

/// What a queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows.
    pub rows: u64,
    /// Sum of `body` lengths plus [`ROW_OVERHEAD`] per row.
    pub bytes: u64,
    /// Rows holding alarm events.
    pub alarms: u64,
    /// Highest id, 0 when empty.
    pub max_id: i64,
    /// Time of the oldest row (lowest id).
    pub oldest_ts: Option<i64>,
}

/// What a removal took out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Rows.
    pub rows: u64,
    /// Bytes as counted in [`Summary::bytes`].
    pub bytes: u64,
    /// Alarm rows among them.
    pub alarms: u64,
}

/// Storage for the per-sink queues and the dead-letter table. Queues are addressed by
/// the index the caller gave in [`Store::open_queue`].
pub trait Store: Send {
    /// Create queue `q` named `name` if it does not exist; summarise what it holds.
    fn open_queue(&mut self, q: usize, name: &str) -> Result<Summary, Error>;
    /// Start a write transaction (no-op when one is open).
    fn begin(&mut self) -> Result<(), Error>;
    /// Make everything since [`Store::begin`] durable.
    fn commit(&mut self) -> Result<(), Error>;
    /// Undo everything since [`Store::begin`].
    fn rollback(&mut self);
    /// Whether a transaction is open.
    fn in_transaction(&self) -> bool;
    /// Write something small and commit it (outside any transaction): whether the
    /// store takes writes again after a failure, when there is nothing else to write.
    fn probe(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// Add a row (inside a transaction).
    fn insert(&mut self, q: usize, row: NewRow<'_>) -> Result<(), Error>;
    /// Up to `limit` rows with `after < id <= upto`, in id order.
    fn read(&mut self, q: usize, after: i64, upto: i64, limit: usize) -> Result<Vec<Row>, Error>;
    /// Remove the rows with `lo <= id <= hi`.
    fn remove_range(&mut self, q: usize, lo: i64, hi: i64) -> Result<Removed, Error>;
    /// Remove these rows.
    fn remove_ids(&mut self, q: usize, ids: &[i64]) -> Result<Removed, Error>;
    /// The oldest rows of one type (`alarm`) outside `skip` (an inclusive id range), as
    /// `(id, counted bytes)`.
    fn oldest_of_type(
        &mut self,
        q: usize,
        alarm: bool,
        skip: Option<(i64, i64)>,
        limit: usize,
    ) -> Result<Vec<(i64, u64)>, Error>;
    /// Copy row `id` of queue `q` into the dead-letter table with `reason`; `false` if
    /// the row does not exist.
    fn dead_letter(
        &mut self,
        q: usize,
        id: i64,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool, Error>;
    /// Summarise queue `q` again (after a failed transaction).
    fn summary(&mut self, q: usize) -> Result<Summary, Error>;
    /// Time of the oldest row of queue `q`.
    fn oldest_ts(&mut self, q: usize) -> Result<Option<i64>, Error>;
}

/// SQL text of one queue, built once (table names cannot be bound parameters).
struct QueueSql {
    name: String,
    insert: String,
    read: String,
    remove_range: String,
    remove_id: String,
    oldest_of_type: String,
    summary: String,
    oldest_ts: String,
    select_one: String,
}

impl QueueSql {
    fn new(name: &str) -> QueueSql {
        let t = format!("\"queue_{name}\"");
        QueueSql {
            name: name.to_string(),
            insert: format!("INSERT INTO {t} (id, ts, alarm, body) VALUES (?1, ?2, ?3, ?4)"),
            read: format!(
                "SELECT id, body FROM {t} WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3"
            ),
            remove_range: format!(
                "DELETE FROM {t} WHERE id BETWEEN ?1 AND ?2 RETURNING length(body), alarm"
            ),
            remove_id: format!("DELETE FROM {t} WHERE id = ?1 RETURNING length(body), alarm"),
            oldest_of_type: format!(
                "SELECT id, length(body) FROM {t} WHERE alarm = ?1 AND (id < ?2 OR id > ?3) ORDER BY id LIMIT ?4"
            ),
            summary: format!(
                "SELECT count(*), coalesce(sum(length(body)), 0), coalesce(sum(alarm), 0), coalesce(max(id), 0) FROM {t}"
            ),
            oldest_ts: format!("SELECT ts FROM {t} ORDER BY id LIMIT 1"),
            select_one: format!("SELECT ts, body FROM {t} WHERE id = ?1"),
        }
    }
}

/// SQLite in WAL mode with `synchronous=FULL`: one connection, used by one thread.
pub struct Sqlite {
    conn: Connection,
    path: String,
    queues: Vec<Option<QueueSql>>,
    dead_rows: u64,
    /// A cap on the database's pages (SQLite's `max_page_count`), applied before each
    /// transaction; 0: none. See [`Sqlite::with_page_limit`].
    page_limit: Option<std::sync::Arc<std::sync::atomic::AtomicU32>>,
}

/// Name of the database file inside the state directory.
pub const DB_FILE: &str = "buffer.db";

impl Sqlite {
    /// Open (or create) `<dir>/buffer.db`.
    pub fn open(dir: &Path) -> Result<Sqlite, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path: PathBuf = dir.join(DB_FILE);
        let shown = path.display().to_string();
        let conn = statedb::open_rw(&path).map_err(|f| Error::Store {
            path: shown.clone(),
            op: f.op,
            reason: f.reason,
        })?;
        Sqlite::setup(conn, shown, true)
    }

    /// Cap the database at the number of pages `limit` holds (0: no cap), read again
    /// before every transaction. Over it SQLite refuses writes with `SQLITE_FULL`
    /// ("database or disk is full") exactly as on a full disk: the library tests of
    /// the disk-full path use it where no small file system can be mounted.
    pub fn with_page_limit(
        mut self,
        limit: std::sync::Arc<std::sync::atomic::AtomicU32>,
    ) -> Sqlite {
        self.page_limit = Some(limit);
        self
    }

    /// A private in-memory database: same behaviour, nothing durable. For tests and
    /// tools that need a queue without a state directory.
    pub fn in_memory() -> Result<Sqlite, Error> {
        let conn = Connection::open_in_memory().map_err(|e| sql_err(":memory:", "open", e))?;
        Sqlite::setup(conn, ":memory:".into(), false)
    }

    fn setup(conn: Connection, path: String, wal: bool) -> Result<Sqlite, Error> {
        let p = path.as_str();
        let fail = |f: statedb::Failure| Error::Store {
            path: p.to_string(),
            op: f.op,
            reason: f.reason,
        };
        statedb::configure(&conn, wal).map_err(fail)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS dead_letter (
                 id INTEGER PRIMARY KEY,
                 sink TEXT NOT NULL,
                 failed_at TEXT NOT NULL,
                 record_ts TEXT NOT NULL,
                 reason TEXT NOT NULL,
                 record TEXT NOT NULL,
                 body BLOB NOT NULL
             );",
        )
        .map_err(|e| sql_err(p, "create tables", e))?;
        conn.set_prepared_statement_cache_capacity(64);
        let (found, newer) = match statedb::format(&conn, FORMAT_VERSION).map_err(fail)? {
            statedb::Format::Created | statedb::Format::Found(_) => (None, false),
            statedb::Format::Newer(v) => (Some(v.to_string()), true),
            statedb::Format::Garbage(s) => (Some(s), false),
        };
        if let Some(found) = found {
            return Err(Error::Version {
                path,
                found,
                supported: FORMAT_VERSION,
                newer,
            });
        }
        let dead_rows: i64 = conn
            .query_row("SELECT count(*) FROM dead_letter", [], |r| r.get(0))
            .map_err(|e| sql_err(p, "count dead letters", e))?;
        Ok(Sqlite {
            conn,
            path,
            queues: Vec::new(),
            page_limit: None,
            dead_rows: dead_rows.max(0) as u64,
        })
    }

    fn sql(&self, q: usize) -> Result<&QueueSql, Error> {
        self.queues
            .get(q)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Store {
                path: self.path.clone(),
                op: "queue lookup",
                reason: format!("queue {q} was never opened"),
            })
    }

    fn err(&self, op: &'static str, e: rusqlite::Error) -> Error {
        sql_err(&self.path, op, e)
    }

    fn removed(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        op: &'static str,
    ) -> Result<Removed, Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(op, e))?;
        let mut rows = stmt.query(p).map_err(|e| self.err(op, e))?;
        let mut out = Removed::default();
        while let Some(r) = rows.next().map_err(|e| self.err(op, e))? {
            let len: i64 = r.get(0).map_err(|e| self.err(op, e))?;
            let alarm: i64 = r.get(1).map_err(|e| self.err(op, e))?;
            out.rows += 1;
            out.bytes += len.max(0) as u64 + ROW_OVERHEAD;
            out.alarms += u64::from(alarm != 0);
        }
        Ok(out)
    }
}

fn sql_err(path: &str, op: &'static str, e: rusqlite::Error) -> Error {
    Error::Store {
        path: path.to_string(),
        op,
        reason: e.to_string(),
    }
}

/// Whether `name` can name a queue table (`"queue_<name>"`, always quoted in SQL).
pub fn valid_queue_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Store for Sqlite {
    fn open_queue(&mut self, q: usize, name: &str) -> Result<Summary, Error> {
        if !valid_queue_name(name) {
            return Err(Error::BadName {
                name: name.to_string(),
            });
        }
        self.conn
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS \"queue_{name}\" (
                     id INTEGER PRIMARY KEY,
                     ts INTEGER NOT NULL,
                     alarm INTEGER NOT NULL,
                     body BLOB NOT NULL
                 )"
            ))
            .map_err(|e| self.err("create queue table", e))?;
        if self.queues.len() <= q {
            self.queues.resize_with(q + 1, || None);
        }
        self.queues[q] = Some(QueueSql::new(name));
        self.summary(q)
    }

    fn begin(&mut self) -> Result<(), Error> {
        if self.conn.is_autocommit() {
            if let Some(l) = &self.page_limit {
                let n = l.load(std::sync::atomic::Ordering::SeqCst);
                let n = if n == 0 { 1_073_741_823 } else { n };
                self.conn
                    .pragma_update(None, "max_page_count", n)
                    .map_err(|e| self.err("set max_page_count", e))?;
            }
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| self.err("begin", e))?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Error> {
        if !self.conn.is_autocommit() {
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| self.err("commit", e))?;
        }
        Ok(())
    }

    fn rollback(&mut self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(path = %self.path, error = %e, "buffer: rollback failed");
        }
    }

    fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    fn probe(&mut self) -> Result<(), Error> {
        self.begin()?;
        let r = self
            .conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('write_probe', ?1)",
                // A page's worth, as a batch of records would need; kept small after.
                [format!(
                    "{}{}",
                    Timestamp::now().rfc3339(),
                    " ".repeat(4096)
                )],
            )
            .map_err(|e| self.err("probe", e));
        match r {
            Ok(_) => {
                self.commit()?;
                let _ = self
                    .conn
                    .execute("DELETE FROM meta WHERE key = 'write_probe'", []);
                Ok(())
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    fn insert(&mut self, q: usize, row: NewRow<'_>) -> Result<(), Error> {
        let sql = &self.sql(q)?.insert;
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.err("insert", e))?;
        stmt.execute(params![row.id, row.ts, i64::from(row.alarm), row.body])
            .map_err(|e| self.err("insert", e))?;
        Ok(())
    }

    fn read(&mut self, q: usize, after: i64, upto: i64, limit: usize) -> Result<Vec<Row>, Error> {
        let sql = &self.sql(q)?.read;
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.err("read", e))?;
        let rows = stmt
            .query_map(
                params![after, upto, limit.min(i64::MAX as usize) as i64],
                |r| {
                    Ok(Row {
                        id: r.get(0)?,
                        body: r.get(1)?,
                    })
                },
            )
            .map_err(|e| self.err("read", e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err("read", e))
    }

    fn remove_range(&mut self, q: usize, lo: i64, hi: i64) -> Result<Removed, Error> {
        let sql = self.sql(q)?.remove_range.clone();
        self.removed(&sql, params![lo, hi], "remove delivered rows")
    }

    fn remove_ids(&mut self, q: usize, ids: &[i64]) -> Result<Removed, Error> {
        let sql = self.sql(q)?.remove_id.clone();
        let mut total = Removed::default();
        for id in ids {
            let r = self.removed(&sql, params![id], "remove rows")?;
            total.rows += r.rows;
            total.bytes += r.bytes;
            total.alarms += r.alarms;
        }
        Ok(total)
    }

    fn oldest_of_type(
        &mut self,
        q: usize,
        alarm: bool,
        skip: Option<(i64, i64)>,
        limit: usize,
    ) -> Result<Vec<(i64, u64)>, Error> {
        let sql = &self.sql(q)?.oldest_of_type;
        // An empty skip range: lo > hi, so `id < lo OR id > hi` holds for every id.
        let (lo, hi) = skip.unwrap_or((i64::MAX, i64::MIN));
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.err("find oldest rows", e))?;
        let rows = stmt
            .query_map(params![i64::from(alarm), lo, hi, limit as i64], |r| {
                let id: i64 = r.get(0)?;
                let len: i64 = r.get(1)?;
                Ok((id, len.max(0) as u64 + ROW_OVERHEAD))
            })
            .map_err(|e| self.err("find oldest rows", e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err("find oldest rows", e))
    }

    fn dead_letter(
        &mut self,
        q: usize,
        id: i64,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool, Error> {
        let (select, sink) = {
            let s = self.sql(q)?;
            (s.select_one.clone(), s.name.clone())
        };
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(&select)
            .and_then(|mut st| {
                st.query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.err("read a refused row", e))?;
        let Some((ts, body)) = row else {
            return Ok(false);
        };
        self.conn
            .prepare_cached(
                "INSERT INTO dead_letter (sink, failed_at, record_ts, reason, record, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    sink,
                    now.rfc3339(),
                    Timestamp(ts).rfc3339(),
                    reason,
                    super::codec::describe(&body),
                    body
                ])
            })
            .map_err(|e| self.err("write a dead letter", e))?;
        self.dead_rows += 1;
        if self.dead_rows > DEAD_LETTER_MAX_ROWS {
            let n = self
                .conn
                .execute(
                    "DELETE FROM dead_letter WHERE id IN (SELECT id FROM dead_letter ORDER BY id LIMIT ?1)",
                    params![(self.dead_rows - DEAD_LETTER_MAX_ROWS) as i64],
                )
                .map_err(|e| self.err("trim dead letters", e))?;
            self.dead_rows -= n as u64;
        }
        Ok(true)
    }

    fn summary(&mut self, q: usize) -> Result<Summary, Error> {
        let sql = self.sql(q)?.summary.clone();
        let (rows, body, alarms, max_id): (i64, i64, i64, i64) = self
            .conn
            .query_row(&sql, [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(|e| self.err("summarise queue", e))?;
        let rows = rows.max(0) as u64;
        Ok(Summary {
            rows,
            bytes: body.max(0) as u64 + rows * ROW_OVERHEAD,
            alarms: alarms.max(0) as u64,
            max_id,
            oldest_ts: self.oldest_ts(q)?,
        })
    }

    fn oldest_ts(&mut self, q: usize) -> Result<Option<i64>, Error> {
        let sql = &self.sql(q)?.oldest_ts;
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.query_row([], |r| r.get(0)).optional())
            .map_err(|e| self.err("oldest row", e))
    }
}

/// Carry queues over to new names before the buffer opens: for each `(old, new)`, the
/// table of queue `old` becomes queue `new`'s, when `old` exists on disk and `new` does
/// not yet (a sink renamed in the config keeps what it had not delivered). Returns the
/// renames done. A state directory without a buffer file is left alone.
pub fn carry_over_queues(
    dir: &Path,
    renames: &[(String, String)],
) -> Result<Vec<(String, String)>, Error> {
    let path = dir.join(DB_FILE);
    if renames.is_empty() || !path.exists() {
        return Ok(Vec::new());
    }
    let shown = path.display().to_string();
    let conn = statedb::open_rw(&path).map_err(|f| Error::Store {
        path: shown.clone(),
        op: f.op,
        reason: f.reason,
    })?;
    conn.busy_timeout(statedb::BUSY_TIMEOUT)
        .map_err(|e| sql_err(&shown, "busy_timeout", e))?;
    let exists = |name: &str| -> Result<bool, Error> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [format!("queue_{name}")],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(|e| sql_err(&shown, "list queues", e))
    };
    let mut done = Vec::new();
    for (old, new) in renames {
        if !valid_queue_name(old) || !valid_queue_name(new) {
            return Err(Error::BadName {
                name: if valid_queue_name(old) {
                    new.clone()
                } else {
                    old.clone()
                },
            });
        }
        if exists(old)? && !exists(new)? {
            conn.execute_batch(&format!(
                "ALTER TABLE \"queue_{old}\" RENAME TO \"queue_{new}\""
            ))
            .map_err(|e| sql_err(&shown, "rename queue", e))?;
            done.push((old.clone(), new.clone()));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, alarm: bool, body: &[u8]) -> NewRow<'_> {
        NewRow {
            id,
            ts: id * 10,
            alarm,
            body,
        }
    }

    #[test]
    fn rows_survive_reopen_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Sqlite::open(dir.path()).unwrap();
            assert_eq!(s.open_queue(0, "influx").unwrap(), Summary::default());
            s.begin().unwrap();
            s.insert(0, row(1, false, b"abc")).unwrap();
            s.insert(0, row(2, true, b"de")).unwrap();
            s.commit().unwrap();
            s.begin().unwrap();
            s.insert(0, row(3, false, b"lost")).unwrap();
            // Dropped without commit: as after a crash.
        }
        let mut s = Sqlite::open(dir.path()).unwrap();
        let sum = s.open_queue(0, "influx").unwrap();
        assert_eq!(
            sum,
            Summary {
                rows: 2,
                bytes: 5 + 2 * ROW_OVERHEAD,
                alarms: 1,
                max_id: 2,
                oldest_ts: Some(10)
            }
        );
        let ids: Vec<i64> = s
            .read(0, i64::MIN, i64::MAX, 10)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn ranges_skips_and_dead_letters() {
        let mut s = Sqlite::in_memory().unwrap();
        s.open_queue(0, "a").unwrap();
        s.open_queue(1, "b").unwrap();
        s.begin().unwrap();
        for id in 1..=10 {
            s.insert(0, row(id, id % 4 == 0, &[1, 2, 3])).unwrap();
        }
        s.insert(1, row(1, false, b"other queue")).unwrap();
        s.commit().unwrap();
        let r: Vec<i64> = s.read(0, 2, 6, 3).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(r, vec![3, 4, 5]);
        let oldest = s.oldest_of_type(0, false, Some((1, 3)), 3).unwrap();
        assert_eq!(
            oldest.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![5, 6, 7]
        );
        assert_eq!(s.oldest_of_type(0, true, None, 9).unwrap().len(), 2);
        s.begin().unwrap();
        assert!(s.dead_letter(0, 5, "HTTP 400: bad", Timestamp(0)).unwrap());
        assert!(!s.dead_letter(0, 99, "gone", Timestamp(0)).unwrap());
        let rm = s.remove_range(0, 1, 5).unwrap();
        assert_eq!(
            rm,
            Removed {
                rows: 5,
                bytes: 5 * (3 + ROW_OVERHEAD),
                alarms: 1
            }
        );
        // Removed rows are not read again, even before the commit.
        assert_eq!(s.read(0, i64::MIN, i64::MAX, 100).unwrap().len(), 5);
        s.commit().unwrap();
        assert_eq!(s.summary(1).unwrap().rows, 1);
        let (sink, reason): (String, String) = s
            .conn
            .query_row("SELECT sink, reason FROM dead_letter", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((sink.as_str(), reason.as_str()), ("a", "HTTP 400: bad"));
    }

    #[test]
    fn bad_names_and_newer_formats_are_refused() {
        let mut s = Sqlite::in_memory().unwrap();
        assert!(matches!(
            s.open_queue(0, "x\"; DROP"),
            Err(Error::BadName { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        drop(Sqlite::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
        c.execute(
            "UPDATE meta SET value = '99' WHERE key = 'format_version'",
            [],
        )
        .unwrap();
        drop(c);
        let e = Sqlite::open(dir.path()).err().unwrap();
        assert!(e.to_string().contains("99"), "{e}");
    }
}
