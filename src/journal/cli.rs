//! `dc-gateway journal`: reading the journal on the board, for people (one line per
//! entry) or for programs (JSON Lines, exactly the [`Entry`] serialisation).
//!
//! Times on the command line are RFC 3339 (`2026-12-04T08:00:00Z`,
//! `2026-12-04T15:00:00+07:00`) or relative to now: `-30m`, `-24h`, `-7d` (also `s`).
//! The output is streamed in pages of [`super::MAX_LIMIT`], so a long journal never
//! sits in memory whole; a closed pipe (`| head`) ends it quietly.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Entry, Error, Journal, Query};
use crate::model::Timestamp;
use crate::texts::time::SiteTime;

/// The arguments of `dc-gateway journal`, as given.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// `--state-dir`: the directory holding `journal.db`.
    pub state_dir: Option<PathBuf>,
    /// `--config`: a site config whose `[storage] state_dir` to read.
    pub config: Option<PathBuf>,
    /// `--since`: RFC 3339 or relative.
    pub since: Option<String>,
    /// `--until`: RFC 3339 or relative.
    pub until: Option<String>,
    /// `--device`.
    pub device: Option<String>,
    /// `--kind`: a [`super::Kind`] name.
    pub kind: Option<String>,
    /// `--limit` (default: all).
    pub limit: Option<usize>,
    /// `--json`: JSON Lines.
    pub json: bool,
}

/// Why `dc-gateway journal` cannot print.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config named (or the default one) cannot be loaded.
    #[error("{0}")]
    Config(String),
    /// A time flag is not a time.
    #[error("--{flag}: {source}")]
    Time {
        /// `since` or `until`.
        flag: &'static str,
        /// What is wrong.
        source: BadTime,
    },
    /// `--kind` names no entry kind.
    #[error("--kind: unknown journal entry kind {0:?} (one of {names})", names = super::Kind::names())]
    Kind(String),
    /// The journal cannot be read.
    #[error(transparent)]
    Journal(#[from] Error),
}

/// The state directory and the site's time zone: `--state-dir` (times in the default
/// zone), else the `[storage] state_dir` and `time_zone` of `--config` (or of the
/// default config file when it exists), else the default directory.
pub fn state_dir(a: &Args) -> Result<(PathBuf, SiteTime), CliError> {
    if let Some(d) = &a.state_dir {
        return Ok((d.clone(), SiteTime::default()));
    }
    let path = match &a.config {
        Some(p) => p.clone(),
        None => {
            let p = Path::new(crate::config::DEFAULT_PATH);
            if !p.exists() {
                return Ok((
                    PathBuf::from(crate::config::DEFAULT_STATE_DIR),
                    SiteTime::default(),
                ));
            }
            p.to_path_buf()
        }
    };
    crate::config::load(&path)
        .map(|site| (site.storage.state_dir, site.time))
        .map_err(|e| CliError::Config(e.to_string()))
}

/// The query the flags ask for (`now` for relative times).
pub fn query(a: &Args, now: Timestamp) -> Result<Query, CliError> {
    let time = |flag: &'static str, v: &Option<String>| {
        v.as_deref()
            .map(|s| parse_time(s, now).map_err(|source| CliError::Time { flag, source }))
            .transpose()
    };
    let kind = a
        .kind
        .as_deref()
        .map(|k| super::Kind::parse(k).ok_or_else(|| CliError::Kind(k.to_string())))
        .transpose()?;
    Ok(Query {
        since: time("since", &a.since)?,
        until: time("until", &a.until)?,
        kind,
        device: a.device.clone(),
        limit: a.limit.unwrap_or(usize::MAX),
        after_seq: None,
    })
}

/// `dc-gateway journal`: open the journal read-only and print what the flags select to
/// `out`, times in the site's zone. Returns how many entries were printed.
pub fn run(a: &Args, out: &mut dyn Write) -> Result<usize, CliError> {
    let q = query(a, Timestamp::now())?;
    let (dir, tz) = state_dir(a)?;
    let journal = Journal::open_read_only(&dir)?;
    Ok(print(&journal, &q, a.json, &tz, out)?)
}

/// Longest data summary on a human line, characters.
pub const SUMMARY_MAX: usize = 160;

/// A time argument that is neither RFC 3339 nor a relative time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{value:?} is not a time: use RFC 3339 (2026-12-04T08:00:00Z, 2026-12-04T15:00:00+07:00) or a time before now (-30m, -24h, -7d)"
)]
pub struct BadTime {
    /// The text given.
    pub value: String,
}

/// Parse `s` as RFC 3339 or as `-<n><s|m|h|d>` before `now`.
pub fn parse_time(s: &str, now: Timestamp) -> Result<Timestamp, BadTime> {
    let s = s.trim();
    let bad = || BadTime {
        value: s.chars().take(100).collect(),
    };
    if let Some(rel) = s.strip_prefix('-') {
        let split = rel.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = rel.split_at(split);
        let n: i64 = n.parse().map_err(|_| bad())?;
        let unit_ms: i64 = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let back = n.checked_mul(unit_ms).ok_or_else(bad)?;
        return Ok(Timestamp(now.millis().saturating_sub(back)));
    }
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())?;
    let ms = dt.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).map(Timestamp).map_err(|_| bad())
}

/// One JSON Lines record: the entry's serialisation, no trailing newline.
pub fn json_line(e: &Entry) -> String {
    serde_json::to_string(e).unwrap_or_else(|err| {
        // An Entry always serialises (its data is JSON already); say so if it did not.
        format!("{{\"seq\":{},\"error\":{:?}}}", e.seq, err.to_string())
    })
}

/// One line for people: `seq`, local time with its offset, kind, gateway, device (`-`
/// when none) and the entry's fields as `key=value`, shortened to [`SUMMARY_MAX`].
pub fn human_line(e: &Entry, tz: &SiteTime) -> String {
    format!(
        "{:>6}  {}  {:<14}  {}  {:<12}  {}",
        e.seq,
        tz.rfc3339(e.ts),
        e.kind.as_str(),
        e.gateway,
        e.device.as_deref().unwrap_or("-"),
        summary(&e.data)
    )
}

/// `key=value` pairs of a data object, strings unquoted, nested values as compact JSON,
/// cut at [`SUMMARY_MAX`] characters with `…`.
pub fn summary(data: &serde_json::Value) -> String {
    let Some(obj) = data.as_object() else {
        return data.to_string();
    };
    let text = obj
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ");
    if text.chars().count() > SUMMARY_MAX {
        let mut cut: String = text.chars().take(SUMMARY_MAX - 1).collect();
        cut.push('…');
        cut
    } else {
        text
    }
}

/// Write the entries `q` selects to `out`, oldest first: JSON Lines when `json`, else
/// one [`human_line`] each. `q.limit` is the total wanted (`usize::MAX` for all).
/// Returns how many were written; a closed output stops early without an error.
pub fn print(
    journal: &Journal,
    q: &Query,
    json: bool,
    tz: &SiteTime,
    out: &mut dyn Write,
) -> Result<usize, Error> {
    print_paged(journal, q, json, tz, out, super::MAX_LIMIT)
}

/// [`print`] reading `page_size` entries at a time.
pub(crate) fn print_paged(
    journal: &Journal,
    q: &Query,
    json: bool,
    tz: &SiteTime,
    out: &mut dyn Write,
    page_size: usize,
) -> Result<usize, Error> {
    let mut written = 0usize;
    let mut page = q.clone();
    loop {
        page.limit = (q.limit - written).min(page_size.max(1));
        if page.limit == 0 {
            break;
        }
        let entries = journal.query(&page)?;
        for e in &entries {
            let line = if json {
                json_line(e)
            } else {
                human_line(e, tz)
            };
            if writeln!(out, "{line}").is_err() {
                return Ok(written);
            }
            written += 1;
        }
        match entries.last() {
            Some(last) if entries.len() == page.limit => page.after_seq = Some(last.seq),
            _ => break,
        }
    }
    let _ = out.flush();
    Ok(written)
}
