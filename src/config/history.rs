//! Config versions (Art. 11.7, 11.8, 13.2): every site file the gateway loaded is kept
//! as a numbered version in the state directory, so `dc-gateway config history` shows
//! what changed and when, and `dc-gateway config export` gives back any version.
//!
//! Invariants:
//! - A version is stored only when its text differs (by SHA-256) from the newest one:
//!   restarts with the same file add nothing.
//! - Versions are written whole (temporary file, fsync, rename; mode 0600) and never
//!   changed or deleted by the gateway; numbers increase from 1.
//!
//! # On-disk format
//!
//! `<state_dir>/config-history/NNNNNN.toml` (the text as loaded) beside
//! `NNNNNN.json`: `{"version", "ts", "sha256", "origin"}`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// Folder of the versions inside the state directory.
pub const DIR: &str = "config-history";

/// A stored version's description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// Its number (1, 2, ...).
    pub version: u32,
    /// When it was first loaded.
    pub ts: Timestamp,
    /// SHA-256 of the text, hex (as journaled in `config_loaded`).
    pub sha256: String,
    /// Where it was read from.
    pub origin: String,
}

/// A history operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// No such version.
    #[error("no config version {0} (see `dc-gateway config history`)")]
    NoVersion(u32),
    /// No version stored yet.
    #[error("no config version stored yet in {0} (the gateway stores each config it loads)")]
    Empty(PathBuf),
}

fn io(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { path, op, source }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    {
        let mut o = std::fs::OpenOptions::new();
        o.create(true).write(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp).map_err(io(&tmp, "create"))?;
        f.write_all(bytes).map_err(io(&tmp, "write"))?;
        f.sync_all().map_err(io(&tmp, "fsync"))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path, "rename"))
}

/// The stored versions, oldest first.
pub fn list(state_dir: &Path) -> Result<Vec<Version>, Error> {
    let dir = state_dir.join(DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: dir,
                op: "read",
                source,
            });
        }
    };
    let mut out: Vec<Version> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            match serde_json::from_str::<Version>(&text) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "config history: unreadable version entry skipped");
                    None
                }
            }
        })
        .collect();
    out.sort_by_key(|v| v.version);
    Ok(out)
}

/// The text of `version`.
pub fn text(state_dir: &Path, version: u32) -> Result<String, Error> {
    let p = state_dir.join(DIR).join(format!("{version:06}.toml"));
    std::fs::read_to_string(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NoVersion(version)
        } else {
            Error::Io {
                path: p,
                op: "read",
                source: e,
            }
        }
    })
}

/// Keep `text` (loaded from `origin`, hash `sha256`) as a new version unless it equals
/// the newest one. Returns the version that holds it and whether it is new.
pub fn keep(
    state_dir: &Path,
    text: &str,
    sha256: &str,
    origin: &str,
    now: Timestamp,
) -> Result<(Version, bool), Error> {
    let versions = list(state_dir)?;
    if let Some(last) = versions.last()
        && last.sha256 == sha256
    {
        return Ok((last.clone(), false));
    }
    let dir = state_dir.join(DIR);
    std::fs::create_dir_all(&dir).map_err(io(&dir, "create directory"))?;
    let v = Version {
        version: versions.last().map_or(1, |l| l.version + 1),
        ts: now,
        sha256: sha256.to_string(),
        origin: origin.to_string(),
    };
    // The text first: a version whose description exists always has its text.
    write_private(&dir.join(format!("{:06}.toml", v.version)), text.as_bytes())?;
    let desc = serde_json::to_vec_pretty(&v).unwrap_or_default();
    write_private(&dir.join(format!("{:06}.json", v.version)), &desc)?;
    Ok((v, true))
}

/// A line diff of `old` → `new`: lines prefixed `-`, `+` or ` ` (unchanged lines
/// farther than `context` from a change are left out, with `@@` marking the gaps).
pub fn diff(old: &str, new: &str, context: usize) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table (site files are small).
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || l[i + 1][j] >= l[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near: Vec<bool> = (0..ops.len())
        .map(|k| {
            let lo = k.saturating_sub(context);
            let hi = (k + context + 1).min(ops.len());
            ops[lo..hi].iter().any(|(c, _)| *c != ' ')
        })
        .collect();
    let mut out = String::new();
    let mut gap = false;
    for (k, (c, line)) in ops.iter().enumerate() {
        if near[k] {
            if gap && !out.is_empty() {
                out.push_str("@@\n");
            }
            gap = false;
            out.push(*c);
            out.push_str(line);
            out.push('\n');
        } else {
            gap = true;
        }
    }
    out
}

/// Lines added and removed from `old` to `new`.
pub fn diff_counts(old: &str, new: &str) -> (usize, usize) {
    let d = diff(old, new, 0);
    let added = d.lines().filter(|l| l.starts_with('+')).count();
    let removed = d.lines().filter(|l| l.starts_with('-')).count();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_kept_once_per_text_and_exported_as_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let t = Timestamp(1_780_000_000_000);
        let (v1, new) = keep(dir.path(), "a = 1\n", "h1", "/etc/site.toml", t).unwrap();
        assert!(new);
        assert_eq!(v1.version, 1);
        let (again, new) = keep(dir.path(), "a = 1\n", "h1", "/etc/site.toml", t).unwrap();
        assert!(!new, "a restart with the same file adds nothing");
        assert_eq!(again.version, 1);
        let (v2, _) = keep(dir.path(), "a = 2\nb = 3\n", "h2", "/etc/site.toml", t).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(list(dir.path()).unwrap(), vec![v1, v2]);
        assert_eq!(text(dir.path(), 1).unwrap(), "a = 1\n");
        assert!(matches!(text(dir.path(), 9), Err(Error::NoVersion(9))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(DIR).join("000002.toml");
            assert_eq!(
                std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn the_diff_shows_changed_lines_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\n";
        let new = "a\nb\nc\nD\ne\nf\ng\nh\n";
        let d = diff(old, new, 1);
        assert_eq!(d, " c\n-d\n+D\n e\n@@\n g\n+h\n");
        assert_eq!(diff_counts(old, new), (2, 1));
        assert_eq!(diff(old, old, 3), "");
    }
}
