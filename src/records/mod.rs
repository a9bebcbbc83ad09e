//! Records the regulation asks the data center to keep (Art. 9, 14.2, 18, 26.9): the
//! incident list and report drafts, and the monthly reports, read from the journal
//! and the on-board history so they work without InfluxDB.
//!
//! [`SiteInfo`] is the part of the site config records need (names, labels, models,
//! serials, rooms, the time zone); the web API and the CLI build the same answers
//! from it with the functions here, so the page, the API and `dc-gateway incident` /
//! `report` never disagree.

pub mod cli;
pub mod reports;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::incidents::{self, Incident};
use crate::journal::{Journal, Query};
use crate::model::{Kind, Language, Timestamp};
use crate::texts::time::SiteTime;

/// What can go wrong making a record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such incident.
    #[error("no incident {0:?}")]
    UnknownIncident(String),
    /// The journal could not be read.
    #[error("journal: {0}")]
    Journal(String),
    /// Incidents could not be read.
    #[error(transparent)]
    Incidents(#[from] incidents::Error),
}

/// One device as records show it (Art. 9.1đ, 14.1, 14.2).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    /// Config id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// The sticker on the equipment.
    pub label: Option<String>,
    /// Device kind.
    pub kind: Kind,
    /// Room id.
    pub room: String,
    /// Rack / position.
    pub location: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
}

/// The site as records need it.
#[derive(Debug, Clone)]
pub struct SiteInfo {
    /// Site id.
    pub name: String,
    /// Display title (the operating unit on reports).
    pub title: String,
    /// Default language of records.
    pub language: Language,
    /// The site's time zone.
    pub time: SiteTime,
    /// Rooms: (id, display name).
    pub rooms: Vec<(String, String)>,
    /// Devices in config order.
    pub devices: Vec<DeviceInfo>,
    /// The state directory (journal, history).
    pub state_dir: PathBuf,
}

impl SiteInfo {
    /// From a validated site config.
    pub fn from_site(site: &crate::config::Site) -> SiteInfo {
        SiteInfo {
            name: site.name.to_string(),
            title: site.title.clone(),
            language: site.language,
            time: site.time.clone(),
            rooms: site
                .rooms
                .iter()
                .map(|r| (r.id.to_string(), r.name.clone()))
                .collect(),
            devices: site
                .devices
                .iter()
                .map(|d| DeviceInfo {
                    id: d.meta.id.to_string(),
                    name: d.meta.name.clone(),
                    label: d.meta.label.clone(),
                    kind: d.meta.kind,
                    room: d.meta.room.to_string(),
                    location: d.location.clone(),
                    model: d.model.clone(),
                    serial: d.serial.clone(),
                })
                .collect(),
            state_dir: site.storage.state_dir.clone(),
        }
    }

    /// A device by id.
    pub fn device(&self, id: &str) -> Option<&DeviceInfo> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// "name (label)" of a device, for people.
    pub fn device_name(&self, id: &str) -> Option<String> {
        self.device(id).map(|d| match &d.label {
            Some(l) => format!("{} ({l})", d.name),
            None => d.name.clone(),
        })
    }
}

/// An incident as listed: the incident and whether its report is overdue.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The incident.
    #[serde(flatten)]
    pub incident: Incident,
    /// Open with its deadline passed.
    pub overdue: bool,
}

/// Every incident in the journal, newest first.
pub fn incident_list(j: &Journal, now: Timestamp) -> Result<Vec<Listed>, Error> {
    let mut all = incidents::load(j)?;
    all.reverse();
    Ok(all
        .into_iter()
        .map(|i| Listed {
            overdue: i.overdue(now),
            incident: i,
        })
        .collect())
}

/// One incident with its timeline and report draft.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentDetail {
    /// The incident.
    pub incident: Incident,
    /// Open with its deadline passed.
    pub overdue: bool,
    /// The draft (with the timeline).
    pub draft: incidents::report::Draft,
    /// The draft as plain text.
    pub text: String,
}

/// The incident `id` (case-insensitive) with its timeline and draft in `lang`.
pub fn incident_detail(
    j: &Journal,
    site: &SiteInfo,
    id: &str,
    lang: Language,
    now: Timestamp,
) -> Result<IncidentDetail, Error> {
    let inc = incidents::load(j)?
        .into_iter()
        .find(|i| i.id.eq_ignore_ascii_case(id.trim()))
        .ok_or_else(|| Error::UnknownIncident(id.to_string()))?;
    let (from, to) = incidents::report::span(&inc, now);
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let page = j
            .query(&Query {
                since: Some(from),
                until: Some(to),
                limit: crate::journal::MAX_LIMIT,
                after_seq: after,
                ..Query::default()
            })
            .map_err(|e| Error::Journal(e.to_string()))?;
        let n = page.len();
        after = page.last().map(|e| e.seq);
        entries.extend(page);
        if n < crate::journal::MAX_LIMIT {
            break;
        }
    }
    let timeline = incidents::report::timeline(&inc, &entries, lang);
    let name = |d: &str| site.device_name(d);
    let cx = incidents::report::Context {
        site_title: &site.title,
        time: &site.time,
        device_name: &name,
        now,
    };
    let draft = incidents::report::draft(&inc, timeline, &cx, lang);
    let text = draft.text(&site.time, lang);
    Ok(IncidentDetail {
        overdue: inc.overdue(now),
        incident: inc,
        draft,
        text,
    })
}

/// Incidents opened in `[from, to)`, oldest first.
pub fn incidents_of(j: &Journal, from: Timestamp, to: Timestamp) -> Result<Vec<Incident>, Error> {
    Ok(incidents::load(j)?
        .into_iter()
        .filter(|i| i.opened_at >= from && i.opened_at < to)
        .collect())
}

/// Shared handle for the web API.
pub type Shared = Arc<SiteInfo>;
#[cfg(test)]
mod tests;
