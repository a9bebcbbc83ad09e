//! `dc-gateway incident list|show` (read the journal, safe while the gateway runs)
//! and the site a record is made for. `incident close` goes through the running
//! gateway's command path (`incident_close`), from main.rs.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{SiteInfo, incident_detail, incident_list};
use crate::journal::Journal;
use crate::model::{Language, Timestamp};

/// Why a records command cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config cannot be loaded.
    #[error("{0}")]
    Config(String),
    /// The journal cannot be opened.
    #[error(transparent)]
    Journal(#[from] crate::journal::Error),
    /// A record cannot be made.
    #[error(transparent)]
    Record(#[from] super::Error),
    /// Output failed.
    #[error("cannot write: {0}")]
    Io(#[from] std::io::Error),
    /// A flag's value is not valid.
    #[error("{0}")]
    Usage(String),
}

/// The site of `--config` (or the default file), with `--state-dir` overriding its
/// state directory; with neither a config file nor a state dir, an error.
pub fn site(config: Option<&Path>, state_dir: Option<PathBuf>) -> Result<SiteInfo, CliError> {
    let path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH));
    let mut info = if config.is_none() && !path.exists() {
        let Some(dir) = &state_dir else {
            return Err(CliError::Config(format!(
                "no site config at {} (give --config or --state-dir)",
                path.display()
            )));
        };
        SiteInfo {
            name: String::new(),
            title: String::new(),
            language: Language::Vi,
            time: Default::default(),
            rooms: Vec::new(),
            devices: Vec::new(),
            state_dir: dir.clone(),
        }
    } else {
        crate::config::load(&path)
            .map(|s| SiteInfo::from_site(&s))
            .map_err(|e| CliError::Config(e.to_string()))?
    };
    if let Some(d) = state_dir {
        info.state_dir = d;
    }
    Ok(info)
}

/// The language of `--lang` (default: the site's).
pub fn lang(flag: Option<&str>, site: &SiteInfo) -> Result<Language, CliError> {
    match flag {
        None => Ok(site.language),
        Some("vi") => Ok(Language::Vi),
        Some("en") => Ok(Language::En),
        Some(other) => Err(CliError::Usage(format!("--lang {other:?}: use vi or en"))),
    }
}

/// `incident list`: one line per incident, newest first (`--json`: the API's form).
pub fn list(site: &SiteInfo, json: bool, out: &mut dyn Write) -> Result<usize, CliError> {
    let j = Journal::open_read_only(&site.state_dir)?;
    let now = Timestamp::now();
    let all = incident_list(&j, now)?;
    if json {
        writeln!(out, "{}", serde_json::json!({ "incidents": all }))?;
        return Ok(all.len());
    }
    for l in &all {
        let i = &l.incident;
        let state = match &i.closed {
            Some(c) if c.false_alarm => "false_alarm",
            Some(_) => "closed",
            None if l.overdue => "OVERDUE",
            None => "open",
        };
        writeln!(
            out,
            "{}\t{}\t{}\topened {}\tdue {}\t{} alarm(s)",
            i.id,
            state,
            i.system.as_str(),
            site.time.rfc3339(i.opened_at),
            site.time.rfc3339(i.deadline),
            i.alarms.len()
        )?;
    }
    if all.is_empty() {
        writeln!(out, "no incidents")?;
    }
    Ok(all.len())
}

/// `incident show ID`: the report draft with its timeline.
pub fn show(
    site: &SiteInfo,
    id: &str,
    lang: Language,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let j = Journal::open_read_only(&site.state_dir)?;
    let d = incident_detail(&j, site, id, lang, Timestamp::now())?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&d).unwrap_or_default())?;
    } else {
        write!(out, "{}", d.text)?;
    }
    Ok(())
}

/// `report KIND --month YYYY-MM [--lang] [--format] [--out FILE]`: the report's
/// bytes, written to `out` (stdout when `None`).
pub fn report(
    site: &SiteInfo,
    kind: &str,
    month: Option<&str>,
    lang: Language,
    format: &str,
    out_file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    use super::reports::{self, Format, Kind, Month};
    let r = |e: reports::Error| CliError::Usage(e.to_string());
    let kind = Kind::parse(kind).map_err(r)?;
    let format = Format::parse(format).map_err(r)?;
    let now = Timestamp::now();
    let month = match month {
        Some(m) => Month::parse(m).map_err(r)?,
        None => Month::of(now, &site.time),
    };
    let j = Journal::open_read_only(&site.state_dir)?;
    let rep = reports::make(kind, site, &j, month, lang, now).map_err(r)?;
    let bytes = reports::render(&rep, format).map_err(r)?;
    match out_file {
        Some(p) => std::fs::write(p, &bytes)?,
        None => out.write_all(&bytes)?,
    }
    Ok(())
}
