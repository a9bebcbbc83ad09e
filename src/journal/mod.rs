//! The gateway's durable journal: what happened, kept for people and for the gateway
//! itself after a restart — alarm transitions, commands with their origin and result,
//! gateway start and stop, each config loaded, sink failures and recoveries, and later
//! logins, incidents and generator runs.
//!
//! # Guarantees
//!
//! - **Append-only and durable:** [`Journal::append`] returns once the entry is
//!   committed and fsynced (WAL, `synchronous=FULL`): a command answered after its
//!   entry was appended is in the journal after a crash or power cut. Entries are never
//!   changed; `seq` increases and is never reused, also after pruning.
//! - **Never dropped to make room:** the journal has its own budget
//!   ([`Options::max_bytes`], 256 MiB by default). Past it, every entry is kept and
//!   appending goes on while the disk allows; [`Journal::used_pct`] goes above 100 and
//!   the gateway raises `journal_high` (above 80 %) and `journal_full` (at or past the
//!   budget) from its `journal_used_pct` point. Only [`Journal::prune`] deletes, and only
//!   entries older than [`Options::retention_days`] (at least
//!   [`MIN_RETENTION_DAYS`]).
//! - **A full or failing disk** loses no entry that fits in memory: an append the
//!   database refuses is **held** in memory (at most [`MAX_HELD`] entries; beyond it
//!   the oldest entries that are not alarm transitions go first, counted and logged)
//!   and reported as [`Error::Held`]; every later append, and [`Journal::retry_held`]
//!   (the hub calls it every second), first writes what is held, in order, so `seq`
//!   follows the order things happened. [`Journal::write_failure`] says why writing
//!   fails until it succeeds again (the runtime raises the serious `disk_full` alarm).
//!   A held entry gets its `seq` when written; it is not in [`Journal::query`] until
//!   then, and is lost if the gateway stops before the disk has room again.
//! - **Readable while the gateway runs:** [`Journal::open_read_only`] (used by
//!   `dc-gateway journal`) reads beside the writer; it never writes.
//! - **Formats that last:** `meta.format_version` names the layout. An older file is
//!   migrated on open (in one transaction); a newer one is refused with a message
//!   naming the file and both versions, and left untouched.
//!
//! # On-disk format (version 1)
//!
//! `<state_dir>/journal.db` (SQLite, WAL: also `journal.db-wal`, `journal.db-shm`):
//!
//! ```sql
//! meta(key TEXT PRIMARY KEY, value TEXT)   -- format_version = 1, created_at
//! entries(
//!     seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of appending
//!     ts         INTEGER NOT NULL,   -- when it happened, ms since the Unix epoch (UTC)
//!     kind       TEXT NOT NULL,      -- alarm, command, gateway_start, ... (Kind)
//!     gateway    TEXT NOT NULL,      -- the gateway that wrote it
//!     device     TEXT,               -- the device concerned, if any
//!     command_id TEXT,               -- data.id of a `command` entry (indexed)
//!     data       TEXT NOT NULL)      -- the entry's own fields, a JSON object
//! ```
//!
//! Read it with `dc-gateway journal` or, e.g., `sqlite3 -readonly
//! /var/lib/dc-gateway/journal.db "SELECT seq, datetime(ts/1000, 'unixepoch'), kind,
//! device, data FROM entries ORDER BY seq DESC LIMIT 20"`.

pub mod cli;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use crate::model::Timestamp;
use crate::statedb;

/// Name of the journal's file inside the state directory.
pub const DB_FILE: &str = "journal.db";

/// Current on-disk format version (`meta.format_version`).
pub const FORMAT_VERSION: u32 = 1;

/// Shortest retention, days: a year of records plus a month (the regulation's yearly
/// reviews look back a full year).
pub const MIN_RETENTION_DAYS: u32 = 400;

/// Default budget, bytes (256 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Entries a [`Query`] returns by default.
pub const DEFAULT_LIMIT: usize = 1000;

/// Most entries one [`Query`] returns (a larger `limit` is lowered to this).
pub const MAX_LIMIT: usize = 10_000;

/// Most entries held in memory while the database cannot be written.
pub const MAX_HELD: usize = 10_000;

/// Migrations: `MIGRATIONS[i]` turns format `i` into format `i + 1` (format 0 is an
/// empty file). Each runs in the same transaction as the version update.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE IF NOT EXISTS entries (
         seq        INTEGER PRIMARY KEY AUTOINCREMENT,
         ts         INTEGER NOT NULL,
         kind       TEXT NOT NULL,
         gateway    TEXT NOT NULL,
         device     TEXT,
         command_id TEXT,
         data       TEXT NOT NULL
     );
     CREATE INDEX IF NOT EXISTS entries_ts ON entries (ts);
     CREATE INDEX IF NOT EXISTS entries_kind ON entries (kind, seq);
     CREATE INDEX IF NOT EXISTS entries_device ON entries (device, seq);
     CREATE INDEX IF NOT EXISTS entries_command ON entries (command_id)
         WHERE command_id IS NOT NULL;",
];

/// What can go wrong with the journal.
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
    /// There is no journal to read.
    #[error("no journal at {} (the gateway creates it on its first start)", path.display())]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// The database failed.
    #[error("journal {}: {op} failed: {reason}", path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The database's message.
        reason: String,
    },
    /// The file holds a format this build cannot read.
    #[error(
        "journal {} has format version {found:?}; this build reads up to {supported}{}",
        path.display(),
        if *newer { " (it was written by a newer dc-gateway: upgrade, or move the file away)" } else { "" }
    )]
    Version {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: String,
        /// The newest version this build reads.
        supported: u32,
        /// Whether `found` is a newer version (rather than garbage).
        newer: bool,
    },
    /// The file is older than this build and was opened read-only, so it cannot be
    /// migrated.
    #[error(
        "journal {} has format version {found}, older than this build's {supported}; start the gateway once to upgrade it",
        path.display()
    )]
    NeedsUpgrade {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// This build's version.
        supported: u32,
    },
    /// The database refused the write (a full or failing disk): the entries are held in
    /// memory and written with the next append or [`Journal::retry_held`].
    #[error("journal {}: cannot be written ({reason}); {held} entries held in memory until it can", path.display())]
    Held {
        /// The database file.
        path: PathBuf,
        /// The database's message.
        reason: String,
        /// Entries held now.
        held: usize,
    },
    /// An entry's `data` is not a JSON object.
    #[error("journal entry of kind {kind}: data must be a JSON object, got {got}")]
    NotAnObject {
        /// The entry's kind.
        kind: Kind,
        /// What was given instead (`array`, `string`, ...).
        got: &'static str,
    },
    /// A stored row cannot be read back (edited by hand, or damaged).
    #[error("journal {} entry {seq}: {reason}", path.display())]
    BadRow {
        /// The database file.
        path: PathBuf,
        /// The entry's `seq`.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// Budget and retention of the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Size the journal should stay under, bytes; the gateway alarms at 80 % and when
    /// full, and keeps every entry beyond it.
    pub max_bytes: u64,
    /// Entries older than this many days are deleted by [`Journal::prune`]; values
    /// below [`MIN_RETENTION_DAYS`] are raised to it.
    pub retention_days: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_bytes: DEFAULT_MAX_BYTES,
            retention_days: MIN_RETENTION_DAYS,
        }
    }
}

/// What a journal entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An alarm transition (raised, acked, cleared, shelved, unshelved).
    Alarm,
    /// A command from a person or a system, with its origin and result.
    Command,
    /// The gateway started.
    GatewayStart,
    /// The gateway stopped.
    GatewayStop,
    /// A config was loaded (with its hash).
    ConfigLoaded,
    /// A sink started failing to deliver.
    SinkFailed,
    /// A sink delivers again.
    SinkRecovered,
    /// A person logged in (or failed to).
    Login,
    /// An incident was opened, changed or closed.
    Incident,
    /// A generator run (test or outage).
    GeneratorRun,
    /// The gateway's clock: not yet known synchronised at start, synchronised (with
    /// the offset found), or no longer synchronised (src/selfwatch/).
    Clock,
    /// Paging: a notification to a person (every attempt), a text received from a
    /// phone, a trap not confirmed, a page held by storm control (src/paging/).
    Notification,
    /// An account or token was made, changed, locked, unlocked or removed
    /// (src/accounts/; logins themselves are [`Kind::Login`]).
    Account,
    /// A config offered for reload was refused (with its errors, hash and author);
    /// the running config stays.
    ConfigRefused,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 14] = [
        Kind::Alarm,
        Kind::Command,
        Kind::GatewayStart,
        Kind::GatewayStop,
        Kind::ConfigLoaded,
        Kind::SinkFailed,
        Kind::SinkRecovered,
        Kind::Login,
        Kind::Incident,
        Kind::GeneratorRun,
        Kind::Clock,
        Kind::Notification,
        Kind::Account,
        Kind::ConfigRefused,
    ];

    /// The stored and serialised name (`gateway_start`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Alarm => "alarm",
            Kind::Command => "command",
            Kind::GatewayStart => "gateway_start",
            Kind::GatewayStop => "gateway_stop",
            Kind::ConfigLoaded => "config_loaded",
            Kind::SinkFailed => "sink_failed",
            Kind::SinkRecovered => "sink_recovered",
            Kind::Login => "login",
            Kind::Incident => "incident",
            Kind::GeneratorRun => "generator_run",
            Kind::Clock => "clock",
            Kind::Notification => "notification",
            Kind::Account => "account",
            Kind::ConfigRefused => "config_refused",
        }
    }

    /// The kind named `s` (exact, as [`Kind::as_str`] gives it).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Every name, comma-separated (for error messages).
    pub fn names() -> String {
        Kind::ALL.map(Kind::as_str).join(", ")
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// When it happened.
    pub ts: Timestamp,
    /// What it records.
    pub kind: Kind,
    /// The gateway writing it.
    pub gateway: Arc<str>,
    /// The device concerned, if any.
    pub device: Option<Arc<str>>,
    /// The entry's own fields: a JSON object (`null` is stored as `{}`). For a
    /// [`Kind::Command`], `data.id` is the command id [`Journal::find_command`] looks up.
    pub data: serde_json::Value,
}

/// A stored entry.
///
/// Serialised as one flat JSON object: `seq`, `ts` (RFC 3339 UTC), `kind`, `gateway`,
/// `device` (only when set), then the fields of `data`. A `data` field named like one
/// of those five is left out of the flat form (the envelope wins).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the journal, increasing, never reused.
    pub seq: i64,
    /// When it happened.
    pub ts: Timestamp,
    /// What it records.
    pub kind: Kind,
    /// The gateway that wrote it.
    pub gateway: String,
    /// The device concerned, if any.
    pub device: Option<String>,
    /// The entry's own fields (a JSON object).
    pub data: serde_json::Value,
}

/// Field names of the envelope, which `data` cannot override in the flat form.
pub const ENVELOPE: [&str; 5] = ["seq", "ts", "kind", "gateway", "device"];

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("ts", &self.ts)?;
        m.serialize_entry("kind", &self.kind)?;
        m.serialize_entry("gateway", &self.gateway)?;
        if let Some(d) = &self.device {
            m.serialize_entry("device", d)?;
        }
        if let Some(obj) = self.data.as_object() {
            for (k, v) in obj {
                if !ENVELOPE.contains(&k.as_str()) {
                    m.serialize_entry(k, v)?;
                }
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Entry {
    /// The flat form back (a line of `dc-gateway journal --json`, an element of
    /// `entries` in `GET /api/v1/journal`): fields other than the envelope's go to
    /// `data`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        use serde::de::Error as _;
        let mut m = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut take = |k: &str| m.remove(k).ok_or_else(|| D::Error::missing_field_owned(k));
        let seq = take("seq")?
            .as_i64()
            .ok_or_else(|| D::Error::custom("seq: not an integer"))?;
        let ts = take("ts")?;
        let ts = ts
            .as_str()
            .and_then(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            })
            .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
            .ok_or_else(|| D::Error::custom(format!("ts: not an RFC 3339 time: {ts}")))?;
        let kind = take("kind")?;
        let kind = kind
            .as_str()
            .and_then(Kind::parse)
            .ok_or_else(|| D::Error::custom(format!("kind: unknown {kind}")))?;
        let gateway = match take("gateway")? {
            serde_json::Value::String(s) => s,
            other => return Err(D::Error::custom(format!("gateway: not a string: {other}"))),
        };
        let device = match m.remove("device") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(other) => return Err(D::Error::custom(format!("device: not a string: {other}"))),
        };
        Ok(Entry {
            seq,
            ts: Timestamp(ts),
            kind,
            gateway,
            device,
            data: serde_json::Value::Object(m),
        })
    }
}

trait MissingOwned {
    fn missing_field_owned(k: &str) -> Self;
}

impl<E: serde::de::Error> MissingOwned for E {
    fn missing_field_owned(k: &str) -> E {
        E::custom(format!("missing field `{k}`"))
    }
}

/// Which entries to read. All conditions hold together; entries come oldest first
/// (by `seq`).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Only entries at or after this time.
    pub since: Option<Timestamp>,
    /// Only entries before this time.
    pub until: Option<Timestamp>,
    /// Only entries of this kind.
    pub kind: Option<Kind>,
    /// Only entries about this device.
    pub device: Option<String>,
    /// At most this many entries (at most [`MAX_LIMIT`]).
    pub limit: usize,
    /// Only entries with a larger `seq` (to page on from the last one read).
    pub after_seq: Option<i64>,
}

impl Default for Query {
    fn default() -> Query {
        Query {
            since: None,
            until: None,
            kind: None,
            device: None,
            limit: DEFAULT_LIMIT,
            after_seq: None,
        }
    }
}

struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
    opts: Options,
    used: AtomicU64,
    /// Where committed entries are also sent (the audit forwarder to the sinks).
    tap: Mutex<Option<tokio::sync::mpsc::Sender<Entry>>>,
    held: Mutex<Held>,
}

/// Entries the database refused, waiting in memory (see the module docs).
#[derive(Default)]
struct Held {
    entries: VecDeque<NewEntry>,
    /// Why the last write failed; `None` once one succeeded.
    failure: Option<String>,
    /// Entries dropped over [`MAX_HELD`] since start.
    dropped: u64,
}

/// The open journal: cheap to clone, shared by every task that writes or reads it.
/// Writes are small and rare; one connection behind a mutex serves them all.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.inner.path)
            .field("opts", &self.inner.opts)
            .field("used_bytes", &self.used_bytes())
            .finish()
    }
}

impl Journal {
    /// Open (or create) `<state_dir>/journal.db` for appending, creating the directory;
    /// an older format is migrated, a newer one refused.
    pub fn open(state_dir: &Path, opts: Options) -> Result<Journal, Error> {
        std::fs::create_dir_all(state_dir).map_err(|source| Error::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let fail = |f: statedb::Failure| Error::Store {
            path: path.clone(),
            op: f.op,
            reason: f.reason,
        };
        let mut conn = statedb::open_rw(&path).map_err(fail)?;
        statedb::configure(&conn, true).map_err(fail)?;
        let stored = statedb::stored_version(&conn).map_err(fail)?;
        let from = match statedb::classify(stored.as_deref(), FORMAT_VERSION) {
            statedb::Format::Created => 0,
            statedb::Format::Found(v) => v,
            statedb::Format::Newer(v) => return Err(version_error(&path, v.to_string(), true)),
            statedb::Format::Garbage(s) => return Err(version_error(&path, s, false)),
        };
        if from < FORMAT_VERSION {
            migrate(&mut conn, from).map_err(fail)?;
            if from > 0 {
                tracing::info!(path = %path.display(), from, to = FORMAT_VERSION, "journal: format upgraded");
            }
        }
        let opts = Options {
            retention_days: opts.retention_days.max(MIN_RETENTION_DAYS),
            ..opts
        };
        Journal::wrap(conn, path, opts)
    }

    /// Open an existing `<state_dir>/journal.db` for reading only, beside a running
    /// gateway. Appending through it fails with [`Error::Store`].
    pub fn open_read_only(state_dir: &Path) -> Result<Journal, Error> {
        let path = state_dir.join(DB_FILE);
        if !path.is_file() {
            return Err(Error::Missing { path });
        }
        let fail = |f: statedb::Failure| Error::Store {
            path: path.clone(),
            op: f.op,
            reason: f.reason,
        };
        let conn = statedb::open_ro(&path).map_err(fail)?;
        let stored = statedb::stored_version(&conn).map_err(fail)?;
        match statedb::classify(stored.as_deref(), FORMAT_VERSION) {
            statedb::Format::Found(FORMAT_VERSION) => {}
            statedb::Format::Found(v) => {
                return Err(Error::NeedsUpgrade {
                    path,
                    found: v,
                    supported: FORMAT_VERSION,
                });
            }
            statedb::Format::Created => return Err(Error::Missing { path }),
            statedb::Format::Newer(v) => return Err(version_error(&path, v.to_string(), true)),
            statedb::Format::Garbage(s) => return Err(version_error(&path, s, false)),
        }
        Journal::wrap(conn, path, Options::default())
    }

    fn wrap(conn: Connection, path: PathBuf, opts: Options) -> Result<Journal, Error> {
        let j = Journal {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path,
                opts,
                used: AtomicU64::new(0),
                tap: Mutex::new(None),
                held: Mutex::new(Held::default()),
            }),
        };
        j.refresh_used(&j.conn())?;
        Ok(j)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Budget and retention in force (retention raised to the minimum).
    pub fn options(&self) -> Options {
        self.inner.opts
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: every write is
        // one statement, committed or not.
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, op: &'static str, e: rusqlite::Error) -> Error {
        Error::Store {
            path: self.inner.path.clone(),
            op,
            reason: e.to_string(),
        }
    }

    /// Bytes the database's pages in use take (free pages left by pruning excluded).
    fn refresh_used(&self, conn: &Connection) -> Result<u64, Error> {
        let pages: i64 = conn
            .query_row(
                "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count())",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err("measure size", e))?;
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| self.err("measure size", e))?;
        let used = (pages.max(0) as u64).saturating_mul(page_size.max(0) as u64);
        self.inner.used.store(used, Ordering::Relaxed);
        Ok(used)
    }

    /// Append an entry; it is committed and fsynced when this returns `Ok`. When the
    /// database refuses the write, the entry is held in memory and [`Error::Held`]
    /// returned (see the module docs).
    pub fn append(&self, e: NewEntry) -> Result<Entry, Error> {
        let mut out = self.append_all(vec![e])?;
        out.pop().ok_or_else(|| Error::Store {
            path: self.inner.path.clone(),
            op: "append",
            reason: "no entry written".into(),
        })
    }

    fn forward(&self, entries: &[Entry]) {
        if let Some(tx) = self
            .inner
            .tap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            for e in entries {
                // The journal holds the entry whatever happens here; a full tap only
                // means a forwarder that fell behind.
                if tx.try_send(e.clone()).is_err() {
                    tracing::warn!(
                        seq = e.seq,
                        "journal: entry not forwarded (tap full or closed)"
                    );
                }
            }
        }
    }

    /// Append several entries in one transaction: all committed and fsynced when it
    /// returns, or none (an alarm storm costs one fsync, not one per event). Entries
    /// held from earlier failures are written first, in the same transaction; when
    /// the database refuses, all of them are held and [`Error::Held`] returned.
    pub fn append_all(&self, entries: Vec<NewEntry>) -> Result<Vec<Entry>, Error> {
        if let Some(bad) = entries
            .iter()
            .find(|e| !e.data.is_object() && !e.data.is_null())
        {
            return Err(Error::NotAnObject {
                kind: bad.kind,
                got: json_type(&bad.data),
            });
        }
        let mut held = self.held();
        if entries.is_empty() && held.entries.is_empty() {
            return Ok(Vec::new());
        }
        let earlier = held.entries.len();
        let all: Vec<NewEntry> = held.entries.drain(..).chain(entries).collect();
        let conn = self.conn();
        match self.write(&conn, all.clone()) {
            Ok(mut out) => {
                if held.failure.take().is_some() {
                    tracing::info!(
                        written = earlier,
                        dropped = held.dropped,
                        "journal: writes succeed again; the entries held in memory are written"
                    );
                }
                if let Err(err) = self.refresh_used(&conn) {
                    // The entries are committed; a failed measurement only delays the figure.
                    tracing::warn!(error = %err, "journal: cannot measure its size");
                }
                Ok(out.split_off(earlier))
            }
            Err(err) => {
                let reason = match &err {
                    Error::Store { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                held.entries.extend(all);
                let mut dropped = 0;
                while held.entries.len() > MAX_HELD {
                    let pos = held
                        .entries
                        .iter()
                        .position(|e| e.kind != Kind::Alarm)
                        .unwrap_or(0);
                    held.entries.remove(pos);
                    dropped += 1;
                }
                held.dropped += dropped;
                if dropped > 0 {
                    tracing::error!(
                        dropped,
                        held = MAX_HELD,
                        "journal: too many entries held in memory; the oldest were dropped"
                    );
                }
                held.failure = Some(reason.clone());
                Err(Error::Held {
                    path: self.inner.path.clone(),
                    reason,
                    held: held.entries.len(),
                })
            }
        }
    }

    /// Write the entries held in memory, if any (the hub calls this every second).
    /// Returns how many were written.
    pub fn retry_held(&self) -> Result<usize, Error> {
        let n = self.held().entries.len();
        if n == 0 {
            return Ok(0);
        }
        self.append_all(Vec::new()).map(|_| n)
    }

    /// Why the journal cannot be written (the database's message), or `None` while
    /// writes succeed.
    pub fn write_failure(&self) -> Option<String> {
        self.held().failure.clone()
    }

    /// Entries held in memory, waiting for the disk.
    pub fn held_entries(&self) -> usize {
        self.held().entries.len()
    }

    /// Cap the database at `pages` pages (SQLite's `max_page_count`; 0: no cap): over
    /// it SQLite refuses writes with `SQLITE_FULL`, as on a full disk. For the tests.
    #[cfg(test)]
    pub(crate) fn cap_pages(&self, pages: u32) {
        let conn = self.conn();
        let n = if pages == 0 { 1_073_741_823 } else { pages };
        let _ = conn.pragma_update(None, "max_page_count", n);
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.inner.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Insert `entries` in one transaction.
    fn write(&self, conn: &Connection, entries: Vec<NewEntry>) -> Result<Vec<Entry>, Error> {
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|err| self.err("begin", err))?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            match self.insert(conn, e) {
                Ok(x) => out.push(x),
                Err(err) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(err);
                }
            }
        }
        if let Err(err) = conn.execute_batch("COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(self.err("commit", err));
        }
        self.forward(&out);
        Ok(out)
    }

    /// Send every entry committed from now on also to `tx` (after the commit; an entry
    /// that does not fit is logged and stays only in the journal).
    pub fn tap(&self, tx: tokio::sync::mpsc::Sender<Entry>) {
        *self.inner.tap.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    fn insert(&self, conn: &Connection, e: NewEntry) -> Result<Entry, Error> {
        let data = match e.data {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            serde_json::Value::Object(m) => serde_json::Value::Object(m),
            other => {
                return Err(Error::NotAnObject {
                    kind: e.kind,
                    got: json_type(&other),
                });
            }
        };
        let command_id = match e.kind {
            Kind::Command => data.get("id").and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
            _ => None,
        };
        let text = data.to_string();
        let seq: i64 = conn
            .prepare_cached(
                "INSERT INTO entries (ts, kind, gateway, device, command_id, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
            )
            .and_then(|mut st| {
                st.query_row(
                    params![
                        e.ts.millis(),
                        e.kind.as_str(),
                        e.gateway.as_ref(),
                        e.device.as_deref(),
                        command_id,
                        text
                    ],
                    |r| r.get(0),
                )
            })
            .map_err(|err| self.err("append", err))?;
        Ok(Entry {
            seq,
            ts: e.ts,
            kind: e.kind,
            gateway: e.gateway.to_string(),
            device: e.device.map(|d| d.to_string()),
            data,
        })
    }

    /// The entries `q` selects, oldest first.
    pub fn query(&self, q: &Query) -> Result<Vec<Entry>, Error> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(t) = q.since {
            clauses.push("ts >= ?");
            args.push(t.millis().into());
        }
        if let Some(t) = q.until {
            clauses.push("ts < ?");
            args.push(t.millis().into());
        }
        if let Some(k) = q.kind {
            clauses.push("kind = ?");
            args.push(k.as_str().to_string().into());
        }
        if let Some(d) = &q.device {
            clauses.push("device = ?");
            args.push(d.clone().into());
        }
        if let Some(s) = q.after_seq {
            clauses.push("seq > ?");
            args.push(s.into());
        }
        args.push((q.limit.min(MAX_LIMIT) as i64).into());
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT seq, ts, kind, gateway, device, data FROM entries{filter} ORDER BY seq LIMIT ?"
        );
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&sql)
            .map_err(|e| self.err("query", e))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| self.err("query", e))?;
        let mut out = Vec::new();
        for row in rows {
            let row = row.map_err(|e| self.err("query", e))?;
            out.push(self.entry(row)?);
        }
        Ok(out)
    }

    fn entry(
        &self,
        row: (i64, i64, String, String, Option<String>, String),
    ) -> Result<Entry, Error> {
        let (seq, ts, kind, gateway, device, data) = row;
        let bad = |reason: String| Error::BadRow {
            path: self.inner.path.clone(),
            seq,
            reason,
        };
        let kind = Kind::parse(&kind).ok_or_else(|| bad(format!("unknown kind {kind:?}")))?;
        let data: serde_json::Value =
            serde_json::from_str(&data).map_err(|e| bad(format!("data is not JSON: {e}")))?;
        Ok(Entry {
            seq,
            ts: Timestamp(ts),
            kind,
            gateway,
            device,
            data,
        })
    }

    /// The [`Kind::Command`] entry whose `data.id` is `command_id` (the latest, should
    /// one id have been journaled twice).
    pub fn find_command(&self, command_id: &str) -> Result<Option<Entry>, Error> {
        let conn = self.conn();
        let row = conn
            .prepare_cached(
                "SELECT seq, ts, kind, gateway, device, data FROM entries
                 WHERE command_id = ?1 AND kind = 'command' ORDER BY seq DESC LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row([command_id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.err("find command", e))?;
        row.map(|r| self.entry(r)).transpose()
    }

    /// Bytes the journal takes (pages in use), as of the last append, prune or open.
    pub fn used_bytes(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// [`Journal::used_bytes`] as a percentage of [`Options::max_bytes`]; above 100
    /// once the journal grew past its budget (it keeps every entry).
    pub fn used_pct(&self) -> f64 {
        let max = self.inner.opts.max_bytes;
        if max == 0 {
            return if self.used_bytes() == 0 {
                0.0
            } else {
                f64::INFINITY
            };
        }
        self.used_bytes() as f64 * 100.0 / max as f64
    }

    /// Delete the entries older than [`Options::retention_days`] before `now`; never
    /// anything younger, whatever the size. Returns how many were deleted.
    pub fn prune(&self, now: Timestamp) -> Result<u64, Error> {
        let keep_ms = i64::from(self.inner.opts.retention_days) * 86_400_000;
        let cutoff = now.millis().saturating_sub(keep_ms);
        let conn = self.conn();
        let n = conn
            .execute("DELETE FROM entries WHERE ts < ?1", [cutoff])
            .map_err(|e| self.err("prune", e))?;
        if n > 0 {
            tracing::info!(
                deleted = n,
                retention_days = self.inner.opts.retention_days,
                "journal: pruned old entries"
            );
        }
        self.refresh_used(&conn)?;
        Ok(n as u64)
    }
}

fn version_error(path: &Path, found: String, newer: bool) -> Error {
    Error::Version {
        path: path.to_path_buf(),
        found,
        supported: FORMAT_VERSION,
        newer,
    }
}

/// Run the migrations from format `from` to [`FORMAT_VERSION`] in one transaction.
fn migrate(conn: &mut Connection, from: u32) -> Result<(), statedb::Failure> {
    let tx = conn
        .transaction()
        .map_err(|e| statedb::Failure::sql("begin migration", e))?;
    for step in &MIGRATIONS[from as usize..FORMAT_VERSION as usize] {
        tx.execute_batch(step)
            .map_err(|e| statedb::Failure::sql("migrate", e))?;
    }
    if from == 0 {
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?1)",
            [Timestamp::now().rfc3339()],
        )
        .map_err(|e| statedb::Failure::sql("write created_at", e))?;
    }
    statedb::set_version(&tx, FORMAT_VERSION)?;
    tx.commit()
        .map_err(|e| statedb::Failure::sql("commit migration", e))
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
