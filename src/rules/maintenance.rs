//! Maintenance windows (Art. 8.3a: maintenance follows an approved plan and must not
//! interrupt service): while a device is in one, its readings are still recorded and
//! its alarms still raised, journaled and shown — flagged `in_maintenance` — but they
//! page nobody.
//!
//! A window covers a device, a room or a system (the map from device kind to system is
//! [`crate::model::Kind::system`]) and is either planned in the site file (a
//! [`Schedule`]) or started and ended by command (`maintenance_start` with a planned
//! length, `maintenance_end`). A window started by command that is still open after its
//! planned end is an alarm of its own (`maintenance_overrun`): a forgotten window would
//! otherwise hide alarms from people for good.
//!
//! Pure state over an injected clock, like the rules.

use std::sync::Arc;

use serde::Serialize;

use crate::model::{Kind, System, Timestamp};
use crate::schedule::Schedule;
use crate::texts::time::SiteTime;

/// What a window covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Target {
    /// One device.
    Device(Arc<str>),
    /// Every device in a room.
    Room(Arc<str>),
    /// Every device of a system.
    System(System),
}

impl Target {
    /// From `ups1`, `room:server1` or `system:power`.
    pub fn parse(s: &str) -> Result<Target, String> {
        let s = s.trim();
        match s.split_once(':') {
            Some(("room", r)) if !r.is_empty() => Ok(Target::Room(Arc::from(r))),
            Some(("system", x)) => System::parse(x).map(Target::System).ok_or_else(|| {
                let all: Vec<&str> = System::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown system {x:?}: use one of {}", all.join(", "))
            }),
            Some((other, _)) => Err(format!(
                "unknown target type {other:?}: write a device id, room:<id> or system:<name>"
            )),
            None if !s.is_empty() => Ok(Target::Device(Arc::from(s))),
            None => Err("empty target".into()),
        }
    }

    /// Whether it covers the device `id` of `kind` in `room`.
    pub fn covers(&self, id: &str, room: &str, kind: Kind) -> bool {
        match self {
            Target::Device(d) => &**d == id,
            Target::Room(r) => &**r == room,
            Target::System(s) => kind.system() == *s,
        }
    }

    /// As written in the config and commands.
    pub fn text(&self) -> String {
        match self {
            Target::Device(d) => d.to_string(),
            Target::Room(r) => format!("room:{r}"),
            Target::System(s) => format!("system:{}", s.as_str()),
        }
    }
}

/// A window planned in the site file.
#[derive(Debug, Clone)]
pub struct Planned {
    /// What it covers.
    pub target: Target,
    /// When.
    pub when: Schedule,
    /// Why (shown with the alarms it covers).
    pub reason: String,
}

/// A window started by command.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Started {
    /// What it covers.
    pub target: Target,
    /// Who started it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub since: Timestamp,
    /// Its planned end: after it, the window is still open but overrun (an alarm).
    pub until: Timestamp,
}

/// Every window of the site.
#[derive(Debug, Clone, Default)]
pub struct Maintenance {
    planned: Vec<Planned>,
    started: Vec<Started>,
    time: SiteTime,
}

impl Maintenance {
    /// The planned windows of the site, in its time zone.
    pub fn new(planned: Vec<Planned>, time: SiteTime) -> Maintenance {
        Maintenance {
            planned,
            started: Vec::new(),
            time,
        }
    }

    /// Whether the device is in a window at `now`.
    pub fn covers(&self, id: &str, room: &str, kind: Kind, now: Timestamp) -> bool {
        self.started.iter().any(|w| w.target.covers(id, room, kind))
            || self
                .planned
                .iter()
                .any(|p| p.target.covers(id, room, kind) && p.when.contains(now, &self.time))
    }

    /// Start a window (a second start of the same target is refused).
    pub fn start(&mut self, w: Started) -> Result<(), String> {
        if self.started.iter().any(|x| x.target == w.target) {
            return Err(format!(
                "maintenance of {} is already open",
                w.target.text()
            ));
        }
        self.started.push(w);
        Ok(())
    }

    /// End the window started for `target`.
    pub fn end(&mut self, target: &Target) -> Result<Started, String> {
        let i = self
            .started
            .iter()
            .position(|x| x.target == *target)
            .ok_or_else(|| format!("no maintenance of {} is open", target.text()))?;
        Ok(self.started.remove(i))
    }

    /// Whether a window started by command is open past its planned end.
    pub fn overrun(&self, now: Timestamp) -> bool {
        self.started.iter().any(|w| now >= w.until)
    }

    /// The windows started by command (for the API and the restore after a restart).
    pub fn started(&self) -> &[Started] {
        &self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: f64) -> Timestamp {
        Timestamp(1_798_124_400_000 + (s * 1000.0) as i64) // 2026-12-24 22:00 local
    }

    #[test]
    fn targets_cover_devices_rooms_and_systems() {
        assert!(
            Target::parse("ups1")
                .unwrap()
                .covers("ups1", "power", Kind::Ups)
        );
        assert!(
            Target::parse("room:server1")
                .unwrap()
                .covers("th1", "server1", Kind::Climate)
        );
        assert!(
            Target::parse("system:power")
                .unwrap()
                .covers("gen1", "yard", Kind::Generator)
        );
        assert!(
            !Target::parse("system:power")
                .unwrap()
                .covers("crac1", "server1", Kind::Cooling)
        );
        assert!(
            Target::parse("system:plumbing")
                .unwrap_err()
                .contains("unknown system")
        );
        assert!(
            Target::parse("rack:a3")
                .unwrap_err()
                .contains("unknown target type")
        );
    }

    #[test]
    fn planned_and_started_windows_and_the_overrun() {
        let planned = Planned {
            target: Target::parse("room:server1").unwrap(),
            when: Schedule::parse(&["2026-12-24 22:00-23:00"]).unwrap(),
            reason: "CRAC filter change".into(),
        };
        let mut m = Maintenance::new(vec![planned], SiteTime::default());
        assert!(m.covers("th1", "server1", Kind::Climate, t(0.0)));
        assert!(
            !m.covers("th1", "server1", Kind::Climate, t(3600.0)),
            "the plan ended"
        );
        assert!(!m.covers("ups1", "power", Kind::Ups, t(0.0)));
        m.start(Started {
            target: Target::parse("ups1").unwrap(),
            by: "An".into(),
            reason: "battery replacement".into(),
            since: t(0.0),
            until: t(1800.0),
        })
        .unwrap();
        assert!(m.covers("ups1", "power", Kind::Ups, t(10.0)));
        assert!(!m.overrun(t(1799.0)));
        assert!(m.overrun(t(1800.0)), "open past its planned end");
        assert!(
            m.covers("ups1", "power", Kind::Ups, t(4000.0)),
            "still covers while overrun"
        );
        assert!(
            m.start(Started {
                target: Target::parse("ups1").unwrap(),
                by: "x".into(),
                reason: "y".into(),
                since: t(1.0),
                until: t(2.0)
            })
            .is_err()
        );
        m.end(&Target::parse("ups1").unwrap()).unwrap();
        assert!(!m.covers("ups1", "power", Kind::Ups, t(4001.0)));
        assert!(!m.overrun(t(4001.0)));
        assert!(m.end(&Target::parse("ups1").unwrap()).is_err());
    }
}
