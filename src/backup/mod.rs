//! `dc-gateway backup` and `restore` (Art. 13.1: the gateway's own state is backed up
//! and the copy verified): a consistent copy of the state directory taken while the
//! gateway runs, and a checked restore of one.
//!
//! ## The backup file
//!
//! A gzip-compressed POSIX tar archive (`.tar.gz`, readable with `tar xzf`):
//!
//! 1. `MANIFEST.json` first: `{"format": "dc-gateway-backup", "version": 1,
//!    "created_at", "gateway_version", "source", "files": [{"name", "kind", "size"}]}`,
//!    `kind` being `sqlite` or `file`;
//! 2. then every file of the state directory under its relative name: SQLite databases
//!    (`buffer.db`, and any other database the state directory holds) before the plain
//!    files (`alarm_seq`, SNMP engine state, ...).
//!
//! Invariants:
//!
//! - a database is copied with `VACUUM INTO`, which reads it in one read transaction:
//!   the copy is the database as of one commit, whatever the running gateway writes
//!   meanwhile (its WAL and shared-memory files are never copied);
//! - plain files are read *after* the databases, so `alarm_seq` (a reservation above
//!   every alarm `seq` handed out) covers every event in the copied queues;
//! - a backup is written to `<out>.partial`, checked (each database copy passes
//!   `PRAGMA integrity_check` before it goes in; the whole archive is read back, gzip
//!   CRC and tar checksums included), fsynced, and only then renamed to `<out>`;
//! - `restore` installs nothing unless the whole archive checks out: manifest format
//!   and version, every listed file present with its size and nothing unlisted, gzip
//!   CRC, every database `integrity_check` = `ok`, and `buffer.db`'s format version
//!   one this gateway reads. It refuses while a process has the target's `buffer.db`
//!   open (a running gateway), and refuses a state directory that already holds state
//!   unless `force` is given.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// The manifest's `format`.
pub const FORMAT: &str = "dc-gateway-backup";
/// The manifest's `version` this gateway writes and the highest it restores.
pub const VERSION: u32 = 1;
/// Name of the manifest entry, the archive's first.
pub const MANIFEST: &str = "MANIFEST.json";

/// What can go wrong in a backup or a restore.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An SQLite operation failed.
    #[error("{path}: {op}: {source}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
    /// A database failed `PRAGMA integrity_check`.
    #[error("{name}: integrity check failed: {report}")]
    Integrity {
        /// The database's name in the state directory.
        name: String,
        /// SQLite's first lines of report.
        report: String,
    },
    /// The archive is not a backup this gateway can restore.
    #[error("{path}: {reason}")]
    Format {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The backup file would be written inside the state directory it copies.
    #[error("{out}: the backup must be written outside the state directory {state_dir}")]
    OutInsideState {
        /// The backup file.
        out: PathBuf,
        /// The state directory.
        state_dir: PathBuf,
    },
    /// The state directory is missing.
    #[error("no state directory at {0}")]
    NoStateDir(PathBuf),
    /// Restore refused: a process has the target state open.
    #[error("process {pid} has {path} open: stop the gateway first (systemctl stop dc-gateway)")]
    InUse {
        /// The process.
        pid: u32,
        /// The open file.
        path: PathBuf,
    },
    /// Restore refused: the target already holds state.
    #[error("{dir} already holds gateway state ({first}); restore with --force to replace it")]
    NotEmpty {
        /// The state directory.
        dir: PathBuf,
        /// One file found there.
        first: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sql_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + 'a {
    move |source| Error::Sqlite {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// One file in a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the state directory (`/`-separated).
    pub name: String,
    /// `sqlite` (a consistent database copy) or `file`.
    pub kind: String,
    /// Bytes.
    pub size: u64,
}

/// The archive's first entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written.
    pub version: u32,
    /// When the backup was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The gateway version that wrote it.
    pub gateway_version: String,
    /// The state directory it was taken from.
    pub source: String,
    /// The files that follow, in archive order.
    pub files: Vec<FileEntry>,
}

/// What a sink queue in `buffer.db` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCount {
    /// The sink's name.
    pub sink: String,
    /// Records queued.
    pub records: u64,
    /// Of which alarm events.
    pub alarms: u64,
}

/// The result of a backup or restore, for the command's output.
#[derive(Debug, Clone)]
pub struct Report {
    /// The manifest written or read.
    pub manifest: Manifest,
    /// Queued records per sink in the copied `buffer.db`.
    pub queues: Vec<QueueCount>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.manifest.files {
            writeln!(f, "  {:<24} {:>6} {:>12} bytes", e.name, e.kind, e.size)?;
        }
        for q in &self.queues {
            writeln!(
                f,
                "  queue {:<18} {} records ({} alarm events)",
                q.sink, q.records, q.alarms
            )?;
        }
        Ok(())
    }
}

/// Files of a state directory that are never copied: SQLite's companions (the WAL is
/// folded into the database copy) and temporary files.
fn skipped(name: &str) -> bool {
    name.ends_with("-wal")
        || name.ends_with("-shm")
        || name.ends_with("-journal")
        || name.ends_with(".tmp")
        || name.ends_with(".partial")
        || name.ends_with(".partial.d")
}

fn is_sqlite(path: &Path) -> Result<bool, Error> {
    let mut head = [0u8; 16];
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]).map_err(io_err(path))? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n == 16 && &head == b"SQLite format 3\0")
}

/// Every file under `dir` as (relative name, path), sorted by name.
fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), Error> {
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(io_err(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".restore") || skipped(&name) {
                continue;
            }
            if ty.is_dir() {
                walk(root, &path, out)?;
            } else if ty.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, path));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn integrity_check(conn: &Connection, path: &Path, name: &str) -> Result<(), Error> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .map_err(sql_err(path, "integrity_check"))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql_err(path, "integrity_check"))?
        .collect::<Result<_, _>>()
        .map_err(sql_err(path, "integrity_check"))?;
    if lines.len() == 1 && lines[0] == "ok" {
        Ok(())
    } else {
        Err(Error::Integrity {
            name: name.to_string(),
            report: lines.into_iter().take(5).collect::<Vec<_>>().join("; "),
        })
    }
}

/// Queued records per sink in a buffer database.
fn queue_counts(conn: &Connection, path: &Path) -> Result<Vec<QueueCount>, Error> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'queue\\_%' ESCAPE '\\' ORDER BY name")
        .map_err(sql_err(path, "list queues"))?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(sql_err(path, "list queues"))?
        .collect::<Result<_, _>>()
        .map_err(sql_err(path, "list queues"))?;
    let mut out = Vec::new();
    for t in tables {
        let (records, alarms): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT count(*), coalesce(sum(alarm), 0) FROM \"{}\"",
                    t.replace('"', "\"\"")
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql_err(path, "count queue"))?;
        out.push(QueueCount {
            sink: t.trim_start_matches("queue_").to_string(),
            records: records.max(0) as u64,
            alarms: alarms.max(0) as u64,
        });
    }
    Ok(out)
}

/// Take a backup of `state_dir` into `out` (see the module docs). The gateway may be
/// running. Returns what was written.
pub fn backup(state_dir: &Path, out: &Path) -> Result<Report, Error> {
    if !state_dir.is_dir() {
        return Err(Error::NoStateDir(state_dir.to_path_buf()));
    }
    // A backup inside the state directory would be copied into the next one.
    let out_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let (Ok(o), Ok(s)) = (fs::canonicalize(out_dir), fs::canonicalize(state_dir))
        && o.starts_with(&s)
    {
        return Err(Error::OutInsideState {
            out: out.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
        });
    }
    let partial = with_suffix(out, ".partial");
    let work = with_suffix(out, ".partial.d");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(io_err(&work))?;
    let result = write_backup(state_dir, out, &partial, &work);
    let _ = fs::remove_dir_all(&work);
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

fn write_backup(
    state_dir: &Path,
    out: &Path,
    partial: &Path,
    work: &Path,
) -> Result<Report, Error> {
    let files = list_files(state_dir)?;
    let mut dbs = Vec::new();
    let mut plain = Vec::new();
    for (name, path) in files {
        if is_sqlite(&path)? {
            dbs.push((name, path));
        } else {
            plain.push((name, path));
        }
    }
    // Databases first, each as of one commit.
    let mut staged: Vec<(FileEntry, PathBuf)> = Vec::new();
    let mut queues = Vec::new();
    for (i, (name, path)) in dbs.iter().enumerate() {
        let copy = work.join(format!("db{i}"));
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err(path, "open"))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql_err(path, "busy_timeout"))?;
        conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()])
            .map_err(sql_err(path, "VACUUM INTO"))?;
        drop(conn);
        let c = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql_err(&copy, "open copy"))?;
        integrity_check(&c, &copy, name)?;
        if name == crate::buffer::store::DB_FILE {
            queues = queue_counts(&c, &copy)?;
        }
        drop(c);
        let size = fs::metadata(&copy).map_err(io_err(&copy))?.len();
        staged.push((
            FileEntry {
                name: name.clone(),
                kind: "sqlite".into(),
                size,
            },
            copy,
        ));
    }
    // Then the plain files (alarm_seq after the queues it must cover).
    for (i, (name, path)) in plain.iter().enumerate() {
        let copy = work.join(format!("file{i}"));
        fs::copy(path, &copy).map_err(io_err(path))?;
        let size = fs::metadata(&copy).map_err(io_err(&copy))?.len();
        staged.push((
            FileEntry {
                name: name.clone(),
                kind: "file".into(),
                size,
            },
            copy,
        ));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at: Timestamp::now().rfc3339(),
        gateway_version: env!("CARGO_PKG_VERSION").into(),
        source: state_dir.display().to_string(),
        files: staged.iter().map(|(e, _)| e.clone()).collect(),
    };
    {
        let f = File::create(partial).map_err(io_err(partial))?;
        let mut tar = GzEncoder::new(BufWriter::new(f), Compression::default());
        let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        let mtime = (Timestamp::now().millis().max(0) / 1000) as u64;
        tar::append(
            &mut tar,
            MANIFEST,
            &mut json.as_slice(),
            json.len() as u64,
            mtime,
        )
        .map_err(io_err(partial))?;
        for (entry, path) in &staged {
            let mut src = File::open(path).map_err(io_err(path))?;
            tar::append(&mut tar, &entry.name, &mut src, entry.size, mtime)
                .map_err(io_err(partial))?;
        }
        tar::finish(&mut tar).map_err(io_err(partial))?;
        let buf = tar.finish().map_err(io_err(partial))?;
        let f = buf.into_inner().map_err(|e| Error::Io {
            path: partial.to_path_buf(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io_err(partial))?;
    }
    // Read it back: gzip CRC, tar checksums, sizes, manifest.
    read_archive(partial, |_, _| Ok(()))?;
    fs::rename(partial, out).map_err(io_err(out))?;
    sync_parent(out);
    Ok(Report { manifest, queues })
}

/// Prefix of the time-stamped backup names (`--out` a directory, the daily timer).
pub const FILE_PREFIX: &str = "dc-gateway-";
/// Suffix of backup files.
pub const FILE_SUFFIX: &str = ".tar.gz";

/// The name of a backup taken at `now` in a backup directory:
/// `dc-gateway-20261204T231500Z.tar.gz` (sorts by time).
pub fn file_name(now: Timestamp) -> String {
    let stamp: String = now
        .rfc3339()
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{FILE_PREFIX}{stamp}Z{FILE_SUFFIX}")
}

/// Keep the newest `keep` backups (by name, see [`file_name`]) in `dir`; delete older
/// ones. Other files are left alone.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, Error> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with(FILE_PREFIX) && n.ends_with(FILE_SUFFIX))
        .collect();
    found.sort();
    let excess = found.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for name in found.into_iter().take(excess) {
        let p = dir.join(name);
        fs::remove_file(&p).map_err(io_err(&p))?;
        removed.push(p);
    }
    Ok(removed)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
}

/// Read a backup archive through, checking the manifest, every entry against it and
/// the gzip CRC; `each(entry, reader)` sees every file's content.
fn read_archive(
    path: &Path,
    mut each: impl FnMut(&FileEntry, &mut dyn Read) -> Result<(), Error>,
) -> Result<Manifest, Error> {
    let bad = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let f = File::open(path).map_err(io_err(path))?;
    let mut gz = GzDecoder::new(BufReader::new(f));
    let read_err = |e: io::Error| {
        if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::InvalidInput {
            bad(format!("corrupt archive: {e}"))
        } else {
            bad(format!("cannot read the archive: {e}"))
        }
    };
    let first = tar::next(&mut gz)
        .map_err(read_err)?
        .ok_or_else(|| bad("empty archive".into()))?;
    if first.name != MANIFEST {
        return Err(bad(format!(
            "not a dc-gateway backup: the first entry is {:?}, not {MANIFEST}",
            first.name
        )));
    }
    if first.size > 16 << 20 {
        return Err(bad("manifest larger than 16 MiB".into()));
    }
    let mut json = Vec::new();
    (&mut gz)
        .take(first.size)
        .read_to_end(&mut json)
        .map_err(read_err)?;
    tar::skip_padding(&mut gz, first.size).map_err(read_err)?;
    let manifest: Manifest =
        serde_json::from_slice(&json).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "{MANIFEST}: format {:?}, expected {FORMAT:?}",
            manifest.format
        )));
    }
    if manifest.version > VERSION {
        return Err(bad(format!(
            "{MANIFEST}: backup format version {} is newer than this gateway reads ({VERSION}); restore with dc-gateway {} or later",
            manifest.version, manifest.gateway_version
        )));
    }
    for want in &manifest.files {
        check_name(&want.name).map_err(|r| bad(format!("{MANIFEST}: {r}")))?;
        let got = tar::next(&mut gz)
            .map_err(read_err)?
            .ok_or_else(|| bad(format!("truncated: {} is missing", want.name)))?;
        if got.name != want.name || got.size != want.size {
            return Err(bad(format!(
                "entry {:?} ({} bytes) where the manifest lists {:?} ({} bytes)",
                got.name, got.size, want.name, want.size
            )));
        }
        let mut body = (&mut gz).take(got.size);
        each(want, &mut body)?;
        // Whatever `each` left unread.
        io::copy(&mut body, &mut io::sink()).map_err(read_err)?;
        tar::skip_padding(&mut gz, got.size).map_err(read_err)?;
    }
    if let Some(extra) = tar::next(&mut gz).map_err(read_err)? {
        return Err(bad(format!(
            "entry {:?} is not in the manifest",
            extra.name
        )));
    }
    // Drain to the gzip trailer, where the CRC is checked.
    io::copy(&mut gz, &mut io::sink()).map_err(read_err)?;
    Ok(manifest)
}

/// A relative path inside the state directory: no `..`, not absolute, not empty.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\0')
        && !name.contains('\\')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(format!("file name {name:?} is not a plain relative path"))
    }
}

/// How [`restore`] treats an existing state directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Replace existing state (the files the backup holds; `buffer.db`'s WAL is removed).
    pub force: bool,
    /// Check everything, install nothing.
    pub dry_run: bool,
}

/// Check the backup `from` and install it into `state_dir` (see the module docs).
pub fn restore(from: &Path, state_dir: &Path, opts: RestoreOptions) -> Result<Report, Error> {
    if !opts.dry_run {
        if let Some((pid, path)) = open_by_a_process(&state_dir.join(crate::buffer::store::DB_FILE))
        {
            return Err(Error::InUse { pid, path });
        }
        if !opts.force && state_dir.is_dir() {
            let existing = list_files(state_dir)?;
            if let Some((first, _)) = existing.first() {
                return Err(Error::NotEmpty {
                    dir: state_dir.to_path_buf(),
                    first: first.clone(),
                });
            }
        }
    }
    // The check unpacks beside the target (same file system, so installing is a
    // rename); a dry run unpacks in the temp directory and leaves the target alone.
    let work = if opts.dry_run {
        std::env::temp_dir().join(format!(".dc-gateway-restore-check-{}", std::process::id()))
    } else {
        fs::create_dir_all(state_dir).map_err(io_err(state_dir))?;
        set_mode(state_dir, 0o700);
        state_dir.join(format!(".restore-{}", std::process::id()))
    };
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(io_err(&work))?;
    let result = restore_into(from, state_dir, &work, opts);
    let _ = fs::remove_dir_all(&work);
    result
}

fn restore_into(
    from: &Path,
    state_dir: &Path,
    work: &Path,
    opts: RestoreOptions,
) -> Result<Report, Error> {
    let mut staged: Vec<(FileEntry, PathBuf)> = Vec::new();
    let manifest = read_archive(from, |entry, body| {
        let path = work.join(format!("f{}", staged.len()));
        let mut f = File::create(&path).map_err(io_err(&path))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // A read error is the archive's fault; a write error the target's.
            let n = body.read(&mut buf).map_err(|e| Error::Format {
                path: from.to_path_buf(),
                reason: format!("corrupt archive in {}: {e}", entry.name),
            })?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n]).map_err(io_err(&path))?;
        }
        f.sync_all().map_err(io_err(&path))?;
        staged.push((entry.clone(), path));
        Ok(())
    })?;
    let mut queues = Vec::new();
    for (entry, path) in &staged {
        if entry.kind != "sqlite" {
            continue;
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql_err(path, "open"))?;
        integrity_check(&conn, path, &entry.name)?;
        if entry.name == crate::buffer::store::DB_FILE {
            let v: Option<String> = conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'format_version'",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err(path, "read format_version"))?;
            let supported = crate::buffer::store::FORMAT_VERSION;
            match v.as_deref().map(str::parse::<u32>) {
                Some(Ok(v)) if v <= supported => {}
                other => {
                    return Err(Error::Format {
                        path: from.to_path_buf(),
                        reason: format!(
                            "{}: buffer format version {other:?}, this gateway reads up to {supported}",
                            entry.name
                        ),
                    });
                }
            }
            queues = queue_counts(&conn, path)?;
        }
    }
    if !opts.dry_run {
        for (entry, path) in &staged {
            let dest = state_dir.join(&entry.name);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            if entry.kind == "sqlite" {
                for companion in ["-wal", "-shm", "-journal"] {
                    let c = with_suffix(&dest, companion);
                    match fs::remove_file(&c) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => {
                            return Err(Error::Io { path: c, source: e });
                        }
                        _ => {}
                    }
                }
            }
            set_mode(path, 0o600);
            fs::rename(path, &dest).map_err(io_err(&dest))?;
            sync_parent(&dest);
        }
    }
    Ok(Report { manifest, queues })
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// A process (other than this one) with `file` open, found through `/proc/*/fd`
/// (Linux; elsewhere nothing is found). Only processes this user may inspect are seen:
/// run restore as root or as the gateway's user.
fn open_by_a_process(file: &Path) -> Option<(u32, PathBuf)> {
    let target = fs::canonicalize(file).ok()?;
    let me = std::process::id();
    for proc_entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if fs::read_link(fd.path()).is_ok_and(|l| l == target) {
                return Some((pid, target));
            }
        }
    }
    None
}

mod tar;

#[cfg(test)]
mod tests;
