//! Who is on call: overrides first, then shifts in file order (a shift marked
//! `holidays = false` does not hold on a holiday), then rotations, then the fallback.
//! Pure functions of the config, an instant and the site's time zone.

use serde::Serialize;

use super::config::PagingConfig;
use crate::model::Timestamp;
use crate::texts::time::SiteTime;

/// Why a person is on call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An override.
    Override,
    /// A shift.
    Shift,
    /// A rotation.
    Rotation,
    /// Nobody is on call: the fallback person.
    Fallback,
}

/// The person on call at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnCall {
    /// Index into the people.
    pub person: usize,
    /// Why.
    pub source: Source,
}

/// Whether `ts` is a holiday.
fn holiday(c: &PagingConfig, ts: Timestamp, time: &SiteTime) -> bool {
    !c.holidays.is_empty() && c.holidays.contains(ts, time)
}

/// The person on call at `ts`, before the fallback; `None`: a gap.
pub fn covered(c: &PagingConfig, ts: Timestamp, time: &SiteTime) -> Option<OnCall> {
    if let Some(s) = c.overrides.iter().find(|s| s.when.contains(ts, time)) {
        return Some(OnCall {
            person: s.person,
            source: Source::Override,
        });
    }
    let hol = holiday(c, ts, time);
    if let Some(s) = c
        .shifts
        .iter()
        .find(|s| (s.holidays || !hol) && s.when.contains(ts, time))
    {
        return Some(OnCall {
            person: s.person,
            source: Source::Shift,
        });
    }
    for ro in &c.rotations {
        if !ro.when.is_empty() && !ro.when.contains(ts, time) {
            continue;
        }
        let Some(start) = time.instant(ro.start) else {
            continue;
        };
        if ts < start {
            continue;
        }
        let turn_ms = i64::from(ro.every_days) * 86_400_000;
        let turn = ((ts.0 - start.0) / turn_ms) as usize;
        return Some(OnCall {
            person: ro.people[turn % ro.people.len()],
            source: Source::Rotation,
        });
    }
    None
}

/// The person on call at `ts` (the fallback during a gap); `None` when nobody is.
pub fn on_call(c: &PagingConfig, ts: Timestamp, time: &SiteTime) -> Option<OnCall> {
    covered(c, ts, time).or(c.fallback.map(|person| OnCall {
        person,
        source: Source::Fallback,
    }))
}

/// Step used to look ahead in the roster: schedules are written in whole minutes.
const STEP_MS: i64 = 60_000;

/// The next change of who is on call after `ts`, within `horizon_days`: the instant
/// and who then (`None` inside: nobody).
pub fn next_change(
    c: &PagingConfig,
    ts: Timestamp,
    time: &SiteTime,
    horizon_days: u32,
) -> Option<(Timestamp, Option<OnCall>)> {
    let now = on_call(c, ts, time).map(|o| o.person);
    // From the next whole minute.
    let mut t = Timestamp((ts.0 / STEP_MS + 1) * STEP_MS);
    let end = ts.0 + i64::from(horizon_days) * 86_400_000;
    while t.0 <= end {
        let who = on_call(c, t, time);
        if who.map(|o| o.person) != now {
            return Some((t, who));
        }
        t = Timestamp(t.0 + STEP_MS);
    }
    None
}

/// The next person on call after the one on call at `ts` (a different person), for
/// the escalation step `next`.
pub fn next_person(c: &PagingConfig, ts: Timestamp, time: &SiteTime) -> Option<usize> {
    let now = on_call(c, ts, time).map(|o| o.person);
    let mut from = ts;
    for _ in 0..8 {
        let (t, who) = next_change(c, from, time, 14)?;
        match who {
            Some(o) if Some(o.person) != now => return Some(o.person),
            _ => from = t,
        }
    }
    None
}

/// Times in `[from, from + days)` nobody covers (before the fallback), as local
/// `start – end` ranges for a warning.
pub fn gaps(c: &PagingConfig, from: Timestamp, time: &SiteTime, days: u32) -> Vec<String> {
    let step = 15 * STEP_MS;
    let mut t = Timestamp((from.0 / step) * step);
    let end = t.0 + i64::from(days) * 86_400_000;
    let mut out = Vec::new();
    let mut open: Option<Timestamp> = None;
    let fmt = |ts: Timestamp| time.zoned(ts).strftime("%a %Y-%m-%d %H:%M").to_string();
    while t.0 < end {
        let gap = covered(c, t, time).is_none();
        match (gap, open) {
            (true, None) => open = Some(t),
            (false, Some(s)) => {
                out.push(format!("{} – {}", fmt(s), fmt(t)));
                open = None;
            }
            _ => {}
        }
        t = Timestamp(t.0 + step);
    }
    if let Some(s) = open {
        out.push(format!("{} – {}", fmt(s), fmt(Timestamp(end))));
    }
    out
}

/// What `dc-gateway oncall` and `GET /api/v1/oncall` say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The instant asked about (RFC 3339 UTC).
    pub at: String,
    /// The same, local.
    pub local: String,
    /// Who is on call then.
    pub now: Option<Entry>,
    /// Who comes next, and from when.
    pub next: Option<Entry>,
    /// Roster gaps in the coming 7 days (each covered by the fallback, if one is set).
    pub gaps: Vec<String>,
}

/// One person in a [`Report`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Id.
    pub person: String,
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: String,
    /// Why.
    pub source: Source,
    /// From when (RFC 3339 local), for `next`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// Who is on call at `ts` and next.
pub fn report(c: &PagingConfig, ts: Timestamp, time: &SiteTime) -> Report {
    let entry = |o: OnCall, from: Option<Timestamp>| {
        let p = &c.people[o.person];
        Entry {
            person: p.id.clone(),
            name: p.name.clone(),
            phone: p.phone.clone(),
            source: o.source,
            from: from.map(|f| time.rfc3339(f)),
        }
    };
    let next = next_change(c, ts, time, 14).and_then(|(t, who)| who.map(|o| entry(o, Some(t))));
    Report {
        at: ts.rfc3339(),
        local: time.rfc3339(ts),
        now: on_call(c, ts, time).map(|o| entry(o, None)),
        next,
        gaps: gaps(c, ts, time, 7),
    }
}

impl Report {
    /// For people (`dc-gateway oncall`).
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = format!("at {}\n", self.local);
        let line = |e: &Entry| {
            format!(
                "{} ({}, {}) [{}]",
                e.name,
                e.person,
                e.phone,
                serde_json::to_value(e.source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )
        };
        let _ = match &self.now {
            Some(e) => writeln!(s, "on call now: {}", line(e)),
            None => writeln!(s, "on call now: NOBODY (no shift and no fallback)"),
        };
        let _ = match &self.next {
            Some(e) => writeln!(
                s,
                "next:        {} from {}",
                line(e),
                e.from.as_deref().unwrap_or("?")
            ),
            None => writeln!(s, "next:        no change in the coming 14 days"),
        };
        for g in &self.gaps {
            let _ = writeln!(s, "gap:         {g}");
        }
        s
    }
}
