//! The SQLite files of the state directory (`buffer.db`, `journal.db`): one way to
//! open them, so every file gets the same durability and the same format check.
//!
//! Invariants:
//! - a writable file is in WAL mode with `synchronous=FULL`: the WAL is fsynced at
//!   every commit, so a commit that returned `Ok` survives a crash or power cut; a file
//!   system that refuses WAL is an error, never a silent downgrade;
//! - every file has a `meta(key, value)` table whose `format_version` says which
//!   layout it holds; a file without one is new and gets the caller's version;
//! - a read-only connection never writes (`query_only`), so a reader beside the
//!   running gateway cannot change its files.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::model::Timestamp;

/// How long a connection waits for another one's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A step that failed, with the database's message. Each store turns it into its own
/// error naming its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What was being done (`journal_mode=WAL`, `create tables`, ...).
    pub op: &'static str,
    /// Why.
    pub reason: String,
}

impl Failure {
    /// A failure of `op` with SQLite's message.
    pub fn sql(op: &'static str, e: rusqlite::Error) -> Failure {
        Failure {
            op,
            reason: e.to_string(),
        }
    }
}

/// What `meta.format_version` held when the file was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// No version: a new file, now stamped with the caller's version.
    Created,
    /// A version this build reads (equal to or older than the caller's).
    Found(u32),
    /// A version newer than this build knows.
    Newer(u32),
    /// Not a version number at all (the text found).
    Garbage(String),
}

/// Open `path` for writing, creating it if needed.
pub fn open_rw(path: &Path) -> Result<Connection, Failure> {
    Connection::open(path).map_err(|e| Failure::sql("open", e))
}

/// Open an existing `path` for reading only (works while another process writes it:
/// WAL readers do not block the writer).
pub fn open_ro(path: &Path) -> Result<Connection, Failure> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Failure::sql("open read-only", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| Failure::sql("busy_timeout", e))?;
    conn.execute_batch("PRAGMA query_only = ON;")
        .map_err(|e| Failure::sql("query_only", e))?;
    Ok(conn)
}

/// Set up a writable connection: busy timeout, WAL (when `wal`; an in-memory database
/// has none), `synchronous=FULL`, a bounded WAL file and page cache, and the `meta`
/// table.
pub fn configure(conn: &Connection, wal: bool) -> Result<(), Failure> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| Failure::sql("busy_timeout", e))?;
    if wal {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| Failure::sql("journal_mode=WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Failure {
                op: "journal_mode=WAL",
                reason: format!("the file system refused WAL mode (got {mode:?})"),
            });
        }
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 4194304;
         PRAGMA cache_size = -2048;
         CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    )
    .map_err(|e| Failure::sql("create tables", e))
}

/// The text of `meta.format_version`, if any (also on a read-only connection; a file
/// without a `meta` table has none).
pub fn stored_version(conn: &Connection) -> Result<Option<String>, Failure> {
    let has_meta: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(|e| Failure::sql("read format_version", e))?;
    if !has_meta {
        return Ok(None);
    }
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'format_version'",
        [],
        |r| r.get(0),
    )
    .optional()
    .map_err(|e| Failure::sql("read format_version", e))
}

/// Classify a stored version against the newest one this build reads.
pub fn classify(stored: Option<&str>, supported: u32) -> Format {
    match stored.map(|s| (s, s.trim().parse::<u32>())) {
        None => Format::Created,
        Some((_, Ok(v))) if v <= supported => Format::Found(v),
        Some((_, Ok(v))) => Format::Newer(v),
        Some((s, Err(_))) => Format::Garbage(s.to_string()),
    }
}

/// Read the format version of a configured (writable) connection; a new file is
/// stamped with `supported` and its creation time.
pub fn format(conn: &Connection, supported: u32) -> Result<Format, Failure> {
    let stored = stored_version(conn)?;
    let f = classify(stored.as_deref(), supported);
    if f == Format::Created {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('format_version', ?1), ('created_at', ?2)",
            params![supported.to_string(), Timestamp::now().rfc3339()],
        )
        .map_err(|e| Failure::sql("write format_version", e))?;
    }
    Ok(f)
}

/// Record that the file now holds format `version` (after a migration, inside its
/// transaction).
pub fn set_version(conn: &Connection, version: u32) -> Result<(), Failure> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('format_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![version.to_string()],
    )
    .map(|_| ())
    .map_err(|e| Failure::sql("write format_version", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_stamped_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_rw(&dir.path().join("x.db")).unwrap();
        configure(&conn, true).unwrap();
        assert_eq!(format(&conn, 3).unwrap(), Format::Created);
        assert_eq!(format(&conn, 3).unwrap(), Format::Found(3));
        assert_eq!(format(&conn, 5).unwrap(), Format::Found(3));
        assert_eq!(format(&conn, 2).unwrap(), Format::Newer(3));
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[test]
    fn garbage_versions_and_read_only_connections() {
        assert_eq!(classify(Some("x1"), 1), Format::Garbage("x1".into()));
        assert_eq!(classify(None, 1), Format::Created);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let conn = open_rw(&path).unwrap();
        configure(&conn, true).unwrap();
        format(&conn, 1).unwrap();
        let ro = open_ro(&path).unwrap();
        assert_eq!(stored_version(&ro).unwrap().as_deref(), Some("1"));
        assert!(ro.execute("DELETE FROM meta", []).is_err());
        assert!(open_ro(&dir.path().join("absent.db")).is_err());
    }
}
