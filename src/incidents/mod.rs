//! Incidents (Art. 18.2–18.5): serious alarms that last become incidents with a
//! 24-hour report deadline, reminders, a timeline from the journal and a report draft.
//!
//! [`Incidents`] is a pure state machine like the rules engine: alarm events and an
//! injected `now` in, [`Change`]s out; no clock reads, no I/O. The hub feeds it every
//! alarm event before the events are journaled (so an event of an alarm that belongs
//! to an incident carries `detail.incident`), ticks it every second, applies the
//! `incident_close` command to it, and journals every change.
//!
//! Invariants:
//! - A serious alarm (or a serious alarm of a rule listed in `[incidents] rules`, at
//!   once) that stays raised for `open_after` *qualifies*: it joins the open incident of
//!   the same system ([`crate::model::Kind::system`]) whose last qualifying alarm is at
//!   most `join_window` old, else it opens a new incident. An alarm is in at most one
//!   incident.
//! - An alarm raised while its device is in a maintenance window (Art. 8.3a) opens
//!   no incident.
//! - The report deadline is 24 hours after the incident opened (Art. 18.5e; the
//!   gateway "detects" the incident when the alarm qualifies). Each configured
//!   reminder fires once, at `deadline - reminder`, while the incident is open;
//!   reminders already due when the gateway restarts fire once at the first tick.
//! - Closing needs a cause and the actions taken, or `false_alarm` with a reason;
//!   anything else is refused with the reason. A closed incident is kept (and its
//!   false-alarm verdict with it).
//! - Every change is journaled as a `incident` entry holding the whole incident after
//!   the change ([`journal_data`]): folding those entries ([`Incidents::restore`],
//!   [`fold`]) gives back the state after a restart, and the API and CLI read the same.

pub mod config;
pub mod report;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::journal::{Entry, Journal, Kind as JKind, Query};
use crate::model::{AlarmEvent, AlarmState, Kind, Level, System, Timestamp};
pub use config::IncidentConfig;

/// What can go wrong with an incident.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// No incident has that id.
    #[error("no incident {0:?} (see `dc-gateway incident list`)")]
    Unknown(String),
    /// It is closed already.
    #[error("incident {0} is closed already")]
    Closed(String),
    /// Closing without what Art. 18 asks.
    #[error(
        "incident {0}: closing needs a cause and the actions taken (--cause, --actions), or --false-alarm with a reason"
    )]
    NeedsCause(String),
    /// A false alarm without its reason.
    #[error("incident {0}: a false alarm needs a reason (--reason)")]
    NeedsReason(String),
    /// Reading the journal failed.
    #[error("{0}")]
    Journal(String),
}

/// One alarm in an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentAlarm {
    /// `device/rule`.
    pub key: String,
    /// The alarm instance number.
    pub no: u64,
    /// Device id.
    pub device: String,
    /// Rule name.
    pub rule: String,
    /// Message of the event that raised it.
    pub message: String,
    /// When it was raised.
    pub since: Timestamp,
    /// When it cleared, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<Timestamp>,
}

/// How an incident was closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Closure {
    /// Who closed it.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// A false alarm (kept, with its reason).
    #[serde(default)]
    pub false_alarm: bool,
    /// The cause found (Art. 18.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The actions taken (Art. 18.1, 18.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<String>,
    /// Why it was a false alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `SC-<n>` (sự cố), per gateway, increasing.
    pub id: String,
    /// Its number.
    pub no: u64,
    /// The gateway that opened it.
    pub gateway: String,
    /// The system affected.
    pub system: System,
    /// Always serious (Art. 18.4): normal alarms never open incidents.
    pub level: Level,
    /// When the first alarm was raised.
    pub first_alarm_at: Timestamp,
    /// When it opened (the first alarm qualified).
    pub opened_at: Timestamp,
    /// The report is due (Art. 18.5e): 24 h after it opened.
    pub deadline: Timestamp,
    /// The alarms in it, in order of joining.
    pub alarms: Vec<IncidentAlarm>,
    /// When its last alarm joined (the join window counts from here).
    pub last_joined_at: Timestamp,
    /// Reminders already given, as seconds before the deadline.
    #[serde(default)]
    pub reminded: Vec<u64>,
    /// How it was closed, once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closure>,
}

impl Incident {
    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }
    /// The devices in it, first seen first.
    pub fn devices(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.alarms {
            if !out.contains(&a.device) {
                out.push(a.device.clone());
            }
        }
        out
    }
    /// Whether the report is overdue at `now`.
    pub fn overdue(&self, now: Timestamp) -> bool {
        self.is_open() && now >= self.deadline
    }
}

/// What changed, to journal (and to tell people, for reminders).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new incident.
    Opened(Incident),
    /// An alarm joined an open incident.
    Joined(Incident),
    /// An alarm of the incident cleared.
    AlarmCleared(Incident),
    /// A reminder of the deadline is due (`before`: the time left).
    Reminder {
        /// The incident.
        incident: Incident,
        /// Time left to the deadline, as configured.
        before: Duration,
    },
    /// Closed.
    Closed(Incident),
}

impl Change {
    /// The journal entry's `event` name.
    pub fn event(&self) -> &'static str {
        match self {
            Change::Opened(_) => "opened",
            Change::Joined(_) => "joined",
            Change::AlarmCleared(_) => "alarm_cleared",
            Change::Reminder { .. } => "reminder",
            Change::Closed(_) => "closed",
        }
    }
    /// The incident after the change.
    pub fn incident(&self) -> &Incident {
        match self {
            Change::Opened(i) | Change::Joined(i) | Change::AlarmCleared(i) | Change::Closed(i) => {
                i
            }
            Change::Reminder { incident, .. } => incident,
        }
    }
}

/// The data of the journal entry of a change: `{event, incident, before_s?}`.
pub fn journal_data(c: &Change) -> serde_json::Value {
    let mut v = serde_json::json!({
        "event": c.event(),
        "incident": c.incident(),
    });
    if let Change::Reminder { before, .. } = c {
        v["before_s"] = serde_json::json!(before.as_secs());
    }
    v
}

/// What closing asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloseRequest {
    /// Who closes.
    pub by: String,
    /// The cause found.
    pub cause: Option<String>,
    /// The actions taken.
    pub actions: Option<String>,
    /// It was a false alarm.
    pub false_alarm: bool,
    /// Why it was a false alarm.
    pub reason: Option<String>,
}

/// A serious alarm that has not qualified yet.
#[derive(Debug, Clone)]
struct Waiting {
    alarm: IncidentAlarm,
    system: System,
    at_once: bool,
}

/// The incidents of one gateway.
#[derive(Debug)]
pub struct Incidents {
    cfg: IncidentConfig,
    gateway: Arc<str>,
    /// Every incident known, by id (open and closed).
    all: Vec<Incident>,
    /// Serious alarms not yet in an incident, by key.
    waiting: HashMap<String, Waiting>,
    /// Alarm key → incident id, while the alarm is active.
    member: HashMap<String, String>,
    next_no: u64,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
}

impl Incidents {
    /// No incident yet.
    pub fn new(cfg: IncidentConfig, gateway: Arc<str>) -> Incidents {
        Incidents {
            cfg,
            gateway,
            all: Vec::new(),
            waiting: HashMap::new(),
            member: HashMap::new(),
            next_no: 1,
        }
    }

    /// The settings.
    pub fn config(&self) -> &IncidentConfig {
        &self.cfg
    }

    /// Every incident, oldest first.
    pub fn all(&self) -> &[Incident] {
        &self.all
    }

    /// One incident.
    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.all.iter().find(|i| i.id == id)
    }

    /// Give back the incidents journaled before a restart (entries of kind
    /// `incident`, any order of reading: the latest `seq` of each id wins).
    pub fn restore(&mut self, entries: &[Entry]) {
        self.all = fold(entries);
        self.next_no = self.all.iter().map(|i| i.no).max().unwrap_or(0) + 1;
        self.member.clear();
        for i in self.all.iter().filter(|i| i.is_open()) {
            for a in i.alarms.iter().filter(|a| a.cleared_at.is_none()) {
                self.member.insert(a.key.clone(), i.id.clone());
            }
        }
    }

    /// A serious alarm still active after a restart (from the restored alarm list):
    /// it waits to qualify as if it had been seen raised at `since`.
    pub fn seed(
        &mut self,
        kind: Kind,
        key: &str,
        no: u64,
        rule: &str,
        message: &str,
        since: Timestamp,
    ) {
        if self.member.contains_key(key) {
            return;
        }
        let device = key.split('/').next().unwrap_or_default().to_string();
        self.waiting.insert(
            key.to_string(),
            Waiting {
                alarm: IncidentAlarm {
                    key: key.to_string(),
                    no,
                    device,
                    rule: rule.to_string(),
                    message: message.to_string(),
                    since,
                    cleared_at: None,
                },
                system: kind.system(),
                at_once: self.cfg.rules.iter().any(|r| r == rule),
            },
        );
    }

    /// Take alarm events (before they are journaled): marks each event of an alarm
    /// in an incident with `detail.incident`, and returns what changed.
    pub fn on_events(&mut self, events: &mut [AlarmEvent]) -> Vec<Change> {
        let mut out = Vec::new();
        for ev in events.iter_mut() {
            out.extend(self.on_event(ev));
        }
        out
    }

    fn on_event(&mut self, ev: &mut AlarmEvent) -> Vec<Change> {
        let key = ev.key();
        let mut out = Vec::new();
        match ev.state {
            // An alarm of a device in a maintenance window (Art. 8.3a) is recorded,
            // not paged, and opens no incident.
            AlarmState::Raised if ev.level == Level::Serious && ev.detail.in_maintenance => {
                self.waiting.remove(&key);
            }
            AlarmState::Raised if ev.level == Level::Serious => {
                if !self.member.contains_key(&key) && !self.waiting.contains_key(&key) {
                    let at_once = self.cfg.rules.iter().any(|r| **r == *ev.rule);
                    self.waiting.insert(
                        key.clone(),
                        Waiting {
                            alarm: IncidentAlarm {
                                key: key.clone(),
                                no: ev.detail.no,
                                device: ev.device.to_string(),
                                rule: ev.rule.to_string(),
                                message: ev.message.clone(),
                                since: ev.ts,
                                cleared_at: None,
                            },
                            system: ev.kind.system(),
                            at_once,
                        },
                    );
                }
                out.extend(self.qualify(ev.ts));
            }
            // Back to normal level: no longer on its way to an incident.
            AlarmState::Raised => {
                self.waiting.remove(&key);
            }
            AlarmState::Cleared => {
                self.waiting.remove(&key);
                if let Some(id) = self.member.get(&key).cloned() {
                    ev.detail.incident = Some(id.clone());
                    self.member.remove(&key);
                    if let Some(inc) = self.all.iter_mut().find(|i| i.id == id) {
                        for a in inc
                            .alarms
                            .iter_mut()
                            .filter(|a| a.key == key && a.cleared_at.is_none())
                        {
                            a.cleared_at = Some(ev.ts);
                        }
                        out.push(Change::AlarmCleared(inc.clone()));
                    }
                }
            }
            _ => {}
        }
        if let Some(id) = self.member.get(&key) {
            ev.detail.incident = Some(id.clone());
        }
        out
    }

    /// Advance to `now`: alarms that lasted long enough open or join incidents;
    /// reminders fall due.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Change> {
        let mut out = self.qualify(now);
        for inc in self.all.iter_mut().filter(|i| i.is_open()) {
            for r in &self.cfg.reminders {
                let due = Timestamp(inc.deadline.0 - r.as_millis() as i64);
                let s = r.as_secs();
                if now >= due && !inc.reminded.contains(&s) {
                    inc.reminded.push(s);
                    out.push(Change::Reminder {
                        incident: inc.clone(),
                        before: *r,
                    });
                }
            }
        }
        out
    }

    /// Waiting alarms that qualify at `now`, oldest first.
    fn qualify(&mut self, now: Timestamp) -> Vec<Change> {
        let open_after = self.cfg.open_after.as_millis() as i64;
        let mut ready: Vec<Waiting> = self
            .waiting
            .values()
            .filter(|w| w.at_once || now.0 - w.alarm.since.0 >= open_after)
            .cloned()
            .collect();
        ready.sort_by_key(|w| (w.alarm.since, w.alarm.no));
        let mut out = Vec::new();
        for w in ready {
            self.waiting.remove(&w.alarm.key);
            let window = self.cfg.join_window.as_millis() as i64;
            let key = w.alarm.key.clone();
            let joined = self.all.iter_mut().rev().find(|i| {
                i.is_open() && i.system == w.system && now.0 - i.last_joined_at.0 <= window
            });
            match joined {
                Some(inc) => {
                    inc.alarms.push(w.alarm);
                    inc.last_joined_at = now;
                    self.member.insert(key, inc.id.clone());
                    out.push(Change::Joined(inc.clone()));
                }
                None => {
                    let no = self.next_no;
                    self.next_no += 1;
                    let inc = Incident {
                        id: format!("SC-{no}"),
                        no,
                        gateway: self.gateway.to_string(),
                        system: w.system,
                        level: Level::Serious,
                        first_alarm_at: w.alarm.since,
                        opened_at: now,
                        deadline: now.plus(config::DEADLINE),
                        alarms: vec![w.alarm],
                        last_joined_at: now,
                        reminded: Vec::new(),
                        closed: None,
                    };
                    self.member.insert(key, inc.id.clone());
                    self.all.push(inc.clone());
                    out.push(Change::Opened(inc));
                }
            }
        }
        out
    }

    /// Close an incident: a cause and actions, or a false alarm with a reason.
    pub fn close(&mut self, id: &str, req: &CloseRequest, now: Timestamp) -> Result<Change, Error> {
        let inc = self
            .all
            .iter_mut()
            .find(|i| i.id.eq_ignore_ascii_case(id.trim()))
            .ok_or_else(|| Error::Unknown(id.to_string()))?;
        if !inc.is_open() {
            return Err(Error::Closed(inc.id.clone()));
        }
        let closure = if req.false_alarm {
            let reason =
                non_empty(&req.reason).ok_or_else(|| Error::NeedsReason(inc.id.clone()))?;
            Closure {
                by: req.by.clone(),
                at: now,
                false_alarm: true,
                cause: non_empty(&req.cause),
                actions: non_empty(&req.actions),
                reason: Some(reason),
            }
        } else {
            let (Some(cause), Some(actions)) = (non_empty(&req.cause), non_empty(&req.actions))
            else {
                return Err(Error::NeedsCause(inc.id.clone()));
            };
            Closure {
                by: req.by.clone(),
                at: now,
                false_alarm: false,
                cause: Some(cause),
                actions: Some(actions),
                reason: non_empty(&req.reason),
            }
        };
        inc.closed = Some(closure);
        let id = inc.id.clone();
        self.member.retain(|_, v| *v != id);
        Ok(Change::Closed(inc.clone()))
    }

    /// The reminder text for a person, in their language.
    pub fn reminder_text(
        inc: &Incident,
        before: Duration,
        time: &crate::texts::time::SiteTime,
        lang: crate::model::Language,
    ) -> String {
        let hours = before.as_secs() as f64 / 3600.0;
        let left = crate::model::fmt_number((hours * 10.0).round() / 10.0);
        let system = crate::texts::names::system(inc.system, lang);
        match lang {
            crate::model::Language::Vi => format!(
                "Nhắc: sự cố {} ({}) phải báo cáo cơ quan quản lý trước {} (còn {} giờ, Điều 18.5e)",
                inc.id,
                system,
                time.human(inc.deadline, lang),
                left
            ),
            crate::model::Language::En => format!(
                "Reminder: incident {} ({}) must be reported to the managing agency by {} ({} h left, Art. 18.5e)",
                inc.id,
                system,
                time.human(inc.deadline, lang),
                left
            ),
        }
    }
}

/// The incidents in `entries` of kind `incident`: the latest `seq` of each id wins;
/// oldest first by number.
pub fn fold(entries: &[Entry]) -> Vec<Incident> {
    let mut by_id: HashMap<String, (i64, Incident)> = HashMap::new();
    for e in entries.iter().filter(|e| e.kind == JKind::Incident) {
        let Some(v) = e.data.get("incident") else {
            continue;
        };
        let Ok(inc) = serde_json::from_value::<Incident>(v.clone()) else {
            tracing::warn!(
                seq = e.seq,
                "journal: an incident entry cannot be read; skipped"
            );
            continue;
        };
        match by_id.get(&inc.id) {
            Some((seq, _)) if *seq > e.seq => {}
            _ => {
                by_id.insert(inc.id.clone(), (e.seq, inc));
            }
        }
    }
    let mut out: Vec<Incident> = by_id.into_values().map(|(_, i)| i).collect();
    out.sort_by_key(|i| i.no);
    out
}

/// Every `incident` entry of the journal (paged through).
pub fn read_entries(j: &Journal) -> Result<Vec<Entry>, Error> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = j
            .query(&Query {
                kind: Some(JKind::Incident),
                limit: crate::journal::MAX_LIMIT,
                after_seq: after,
                ..Query::default()
            })
            .map_err(|e| Error::Journal(e.to_string()))?;
        let n = page.len();
        after = page.last().map(|e| e.seq);
        out.extend(page);
        if n < crate::journal::MAX_LIMIT {
            return Ok(out);
        }
    }
}

/// The incidents in a journal.
pub fn load(j: &Journal) -> Result<Vec<Incident>, Error> {
    Ok(fold(&read_entries(j)?))
}
