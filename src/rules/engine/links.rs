//! The engine's side of one alarm per root cause ([`crate::rules::rootcause`]): the
//! alarm of a lost link, and the `cause` of the devices' own `comm_lost` alarms.
//!
//! Each tracked link is a device of the engine (id
//! [`LinkKey::device_id`](crate::rules::rootcause::LinkKey::device_id), kind `gateway`,
//! never polled, never "silent" itself) with two rules, `link_down` and `link_silent`,
//! so its alarm is an instance like any other: numbered, listed, acknowledged,
//! shelved, restored after a restart, with its key in MQTT topics.
//!
//! What stays true:
//! - The link alarm is raised at the moment the first device behind a lost link would
//!   raise its `comm_lost`, and *before* it: its `seq` is lower than its children's.
//!   A `comm_lost` behind a link not judged yet (devices not polled since it fell
//!   silent) waits for the verdict, at most one more horizon; nothing else waits.
//! - While it stands, every `comm_lost` raised behind the link carries its `id` as
//!   `cause` (and keeps it on every later event of that instance). A `comm_lost`
//!   raised before the link was lost (one device gone on its own) keeps no cause.
//! - It clears on the first poll of any device behind the link that answers; the
//!   children clear one by one as their devices answer. After a restart a restored
//!   link alarm stands until a device answers (it is adopted, not raised again), and
//!   restored children keep their `cause`.
//! - Its level is the highest `comm_lost` level among the devices behind it.

use std::sync::Arc;
use std::time::Duration;

use super::{AlarmEvent, AlarmState, DeviceSlot, Engine, Level, Timestamp, Transition, Value};
use crate::model::{DeviceMeta, Kind};
use crate::rules::messages;
use crate::rules::rootcause::{self, Fault, LinkSpec, Links, Verdict};
use crate::rules::spec::{Condition, RuleSpec};

/// The article a link alarm cites: monitoring runs continuously (as `comm_lost`).
const ARTICLE: &str = "10.1";

/// The links of the engine's devices and their alarms.
#[derive(Default)]
pub(super) struct LinkAlarms {
    /// The links' state from the polls.
    pub(super) links: Links,
    /// Per link: the engine index of the device standing for it.
    slot: Vec<usize>,
    /// Per link: the group id (`id` of its alarm's raise) while its alarm stands.
    cause: Vec<Option<Arc<str>>>,
    /// Per link: the level of its alarm.
    level: Vec<Level>,
}

/// What device `i`'s `comm_lost` check does now.
pub(super) enum Gate {
    /// Check as usual; a raise carries this cause (the standing link alarm's id).
    Go(Option<Arc<str>>),
    /// Do not raise yet: its link is not judged (see [`Verdict::Wait`]).
    Wait,
}

impl DeviceSlot {
    /// Whether a `comm_lost` of this device would be raised at `now` (silent for its
    /// horizon and not raised yet).
    fn comm_due(&self, now: Timestamp) -> bool {
        let Some(reference) = self.last_ok.or(self.first_seen) else {
            return false;
        };
        now.millis() - reference.millis() >= self.comm_horizon_ms
            && self.rules.iter().any(|s| {
                matches!(s.spec.condition, Condition::CommLost { .. })
                    && !s.active.as_ref().is_some_and(|a| a.condition)
            })
    }

    /// Whether this device has been silent for twice its horizon: its `comm_lost`
    /// waits no longer for its link's verdict.
    fn comm_overdue(&self, now: Timestamp) -> bool {
        self.last_ok
            .or(self.first_seen)
            .is_some_and(|r| now.millis() - r.millis() >= self.comm_horizon_ms.saturating_mul(2))
    }

    /// The level of this device's `comm_lost` rule, if it has one.
    fn comm_level(&self) -> Option<Level> {
        self.rules.iter().find_map(|s| match s.spec.condition {
            Condition::CommLost { level, .. } => Some(level),
            _ => None,
        })
    }
}

impl Engine {
    /// Track the links of `specs` ([`rootcause::plan`]), after the devices behind them
    /// were added and before [`Engine::restore`] (a listed link alarm is restored like
    /// any other). Replaces links tracked before.
    pub fn add_links(&mut self, specs: Vec<LinkSpec>) {
        let mut alarms = LinkAlarms::default();
        for spec in &specs {
            let level = spec
                .devices
                .iter()
                .filter_map(|d| self.index.get(&d.id))
                .filter_map(|&i| self.devices[i].comm_level())
                .max()
                .unwrap_or(Level::Normal);
            let first_room = spec.devices[0].room.clone();
            let meta = DeviceMeta {
                id: spec.key.device_id(),
                name: spec.key.name(),
                label: None,
                room: first_room,
                kind: Kind::Gateway,
            };
            let rules = Fault::RULES
                .iter()
                .map(|r| RuleSpec {
                    name: Arc::from(*r),
                    point: "comm",
                    condition: Condition::CommLost {
                        intervals: 1,
                        level,
                    },
                    article: ARTICLE,
                    enabled: true,
                })
                .collect();
            let id = meta.id.clone();
            // Never polled and never due: its alarms come from the link's state only.
            self.add_device(Arc::new(meta), Duration::MAX, rules);
            alarms.slot.push(self.index[&id]);
            alarms.cause.push(None);
            alarms.level.push(level);
        }
        alarms.links = Links::new(specs);
        self.links = alarms;
    }

    /// Link `l` after a poll of (or a tick for) device `i`: clear its alarm if it is
    /// back; if device `i`'s `comm_lost` falls due now, judge it ([`Verdict`]): raise
    /// the link alarm first when the link is lost, or hold the device's raise while the
    /// link is not known yet (one more horizon at most).
    pub(super) fn link_step(
        &mut self,
        l: usize,
        i: usize,
        now: Timestamp,
        events: &mut Vec<AlarmEvent>,
    ) -> Gate {
        if self.links.links.up(l) {
            self.link_clear(l, now, events);
        }
        let verdict = self.links.links.verdict(&self.devices[i].device.id);
        if self.links.cause[l].is_none() && matches!(verdict, Some(Verdict::Lost(_))) {
            // Standing already (restored after a restart): adopt it, raise nothing.
            self.links.cause[l] = self.devices[self.links.slot[l]]
                .rules
                .iter()
                .filter_map(|s| s.active.as_ref())
                .find(|a| a.condition)
                .map(|a| Arc::from(a.id.as_str()));
        }
        if self.links.cause[l].is_some() || !self.devices[i].comm_due(now) {
            return Gate::Go(self.links.cause[l].clone());
        }
        match verdict {
            Some(Verdict::Lost(fault)) => {
                self.link_raise(l, fault, now, events);
                Gate::Go(self.links.cause[l].clone())
            }
            Some(Verdict::Wait) if !self.devices[i].comm_overdue(now) => Gate::Wait,
            _ => Gate::Go(None),
        }
    }

    fn link_raise(&mut self, l: usize, fault: Fault, now: Timestamp, events: &mut Vec<AlarmEvent>) {
        let lang = self.out.language;
        let level = self.links.level[l];
        let spec = self.links.links.spec(l);
        let behind: Vec<Arc<str>> = spec.devices.iter().map(|d| d.id.clone()).collect();
        let what = rootcause::raised_what(lang, fault, spec);
        let d = &mut self.devices[self.links.slot[l]];
        let dev = d.device.clone();
        let Some(slot) = d.rules.iter_mut().find(|s| &*s.spec.name == fault.rule()) else {
            return;
        };
        let t = Transition {
            level,
            state: AlarmState::Raised,
            value: Some(Value::Number(behind.len() as f64)),
            threshold: None,
            message: messages::with_what(lang, &dev, Some(level), what, ARTICLE),
            by: None,
            comment: None,
        };
        let mut ev = self.out.emit(&dev, slot, now, t);
        ev.detail.behind = behind;
        self.links.cause[l] = slot.active.as_ref().map(|a| Arc::from(a.id.as_str()));
        events.push(ev);
    }

    fn link_clear(&mut self, l: usize, now: Timestamp, events: &mut Vec<AlarmEvent>) {
        self.links.cause[l] = None;
        let lang = self.out.language;
        let behind: Vec<Arc<str>> = self
            .links
            .links
            .spec(l)
            .devices
            .iter()
            .map(|d| d.id.clone())
            .collect();
        let d = &mut self.devices[self.links.slot[l]];
        let dev = d.device.clone();
        for slot in &mut d.rules {
            let Some(a) = slot.active.as_ref().filter(|a| a.condition) else {
                continue;
            };
            let t = Transition {
                level: a.level,
                state: AlarmState::Cleared,
                value: Some(Value::Number(behind.len() as f64)),
                threshold: None,
                message: messages::with_what(
                    lang,
                    &dev,
                    None,
                    rootcause::cleared_what(lang),
                    ARTICLE,
                ),
                by: None,
                comment: None,
            };
            let mut ev = self.out.emit(&dev, slot, now, t);
            ev.detail.behind = behind.clone();
            events.push(ev);
        }
    }
}
