//! The rule engine: one state machine per (device, rule), driven by polls and ticks.
//!
//! [`Engine::on_poll`] evaluates a device's rules against one poll at the poll's own
//! time; [`Engine::tick`] lets time pass (on-delays that end between polls,
//! communication loss). Both return the alarm events of the transitions they caused,
//! in a deterministic order (devices in the order they were added, rules in spec
//! order, the device's `comm_lost` first on a poll).
//!
//! Invariants:
//! - For every (device, rule) the events alternate correctly: a `Raised` always changes
//!   the level (raise, escalation, de-escalation), a `Cleared` only follows an active
//!   alarm; two `Raised` at the same level never follow each other.
//! - `seq` is strictly increasing across all events of an engine, starting at the
//!   `next_seq` given to [`Engine::new`]; `id` is a UUID v7 built from the event time,
//!   a hash of the site and `seq`, so it is unique per site and replay-deterministic.
//! - No clock reads: time comes only from `poll.ts` and the `now` given to `tick`.
//!
//! The semantics (hysteresis, on-delay, bad quality, rate of change, communication
//! loss) are described in the [module documentation](super).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::model::{
    AlarmEvent, AlarmState, Device, DeviceMeta, Language, Level, Poll, Quality, Sample, Timestamp,
    Value,
};
use crate::state::ActiveAlarm;

use super::messages::{self, Side};
use super::spec::{Condition, RuleSpec};

/// Poll intervals after which a point's last good sample is too old to complete an
/// on-delay, when the device has no enabled `comm_lost` rule.
const DEFAULT_STALE_INTERVALS: u32 = 3;

/// Evaluates alarm rules for a set of devices. See the [module docs](self).
pub struct Engine {
    /// Shared links and their alarms (`engine/links.rs`, one alarm per root cause).
    links: links::LinkAlarms,
    out: Emitter,
    devices: Vec<DeviceSlot>,
    index: HashMap<Arc<str>, usize>,
    /// Latest sample of every point of every device: time, and the value when good.
    /// Composite rules read other devices' points here.
    latest: HashMap<(Arc<str>, &'static str), Latest>,
    /// The points composite rules read, per device: only these are kept in `latest`.
    watched: HashMap<Arc<str>, std::collections::HashSet<&'static str>>,
    /// Each device's staleness horizon, ms (a composite's term older than its
    /// device's horizon is unknown).
    stale: HashMap<Arc<str>, i64>,
}

/// Time of a point's latest sample, and its value when good.
type Latest = (Timestamp, Option<Value>);

/// What every event needs besides the transition itself.
struct Emitter {
    site: Arc<str>,
    site_hash: u32,
    language: Language,
    next_seq: u64,
    /// The next alarm instance number.
    next_no: u64,
    gateway: Arc<str>,
    time: crate::texts::time::SiteTime,
    /// Per device: its room's name and its rack / position, for texts and events.
    places: HashMap<Arc<str>, (String, Option<String>)>,
}

struct DeviceSlot {
    device: Device,
    /// Silence that raises `comm_lost`, ms.
    comm_horizon_ms: i64,
    /// A point's last good sample older than this cannot complete an on-delay, ms.
    stale_ms: i64,
    /// First poll or tick the engine saw for this device.
    first_seen: Option<Timestamp>,
    /// Latest poll with `comm_ok`.
    last_ok: Option<Timestamp>,
    rules: Vec<RuleSlot>,
}

struct RuleSlot {
    spec: RuleSpec,
    st: RuleState,
    active: Option<Active>,
    /// The number of the latest instance (kept after it is unlisted, for its events).
    last_no: u64,
}

/// The alarm instance as it stands while listed.
struct Active {
    level: Level,
    since: Timestamp,
    id: String,
    value: Option<Value>,
    threshold: Option<f64>,
    message: String,
    /// The instance's short number.
    no: u64,
    /// Who acknowledged it, when, with what comment.
    acked: Option<Ack>,
    /// Whether the condition still holds; `false`: a serious alarm that cleared before
    /// anyone acknowledged it, listed until someone does.
    condition: bool,
    /// Shelved: who, why, until when.
    shelved: Option<Shelve>,
    /// Root-cause group id: the link alarm this alarm is a child of.
    cause: Option<Arc<str>>,
}

/// A shelving of an alarm instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Shelve {
    /// The operator.
    pub by: String,
    /// Why (required).
    pub reason: String,
    /// When it ends by itself.
    pub until: Timestamp,
}

/// An acknowledgement of an alarm instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// The operator, as given.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Their comment.
    pub comment: Option<String>,
}

/// An alarm instance as it stood, for [`Engine::restore`] after a restart.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Device id.
    pub device: Arc<str>,
    /// Rule name.
    pub rule: Arc<str>,
    /// Its level.
    pub level: Level,
    /// When it was raised.
    pub since: Timestamp,
    /// Id of the event that raised it.
    pub id: String,
    /// Its value and threshold.
    pub value: Option<Value>,
    /// The threshold crossed.
    pub threshold: Option<f64>,
    /// Its text.
    pub message: String,
    /// Its number.
    pub no: u64,
    /// Its acknowledgement, if any.
    pub acked: Option<Ack>,
    /// Whether its condition still held (false: cleared, not acknowledged).
    pub condition: bool,
    /// Its shelving, if shelved.
    pub shelved: Option<Shelve>,
    /// The link alarm it is a child of (its events' `cause`), if any.
    pub cause: Option<Arc<str>>,
}

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AckError {
    /// No listed alarm has this number or key.
    #[error("no listed alarm {0}")]
    NotFound(String),
    /// It is shelved already.
    #[error("alarm {0} is shelved already")]
    Shelved(String),
    /// It is not shelved.
    #[error("alarm {0} is not shelved")]
    NotShelved(String),
    /// It was acknowledged already.
    #[error("alarm {target} was acknowledged already by {by}")]
    Already {
        /// The alarm.
        target: String,
        /// Who.
        by: String,
    },
}

enum RuleState {
    /// Above, Below, Flag, EnumNot, EnumLevel.
    Levels(LevelState),
    /// Composite: since when the condition has held.
    Composite(Option<Timestamp>),
    /// StartToRated.
    Start(StartState),
    /// RateOfChange.
    Rate(Window),
    /// CommLost: its state is the device's `last_ok`.
    Comm,
    /// DoorAccess.
    Door(super::door::DoorState),
}

#[derive(Default)]
struct LevelState {
    /// Since when the raise condition of Normal (index 0) and Serious (index 1) has
    /// held continuously.
    since: [Option<Timestamp>; 2],
    /// Latest sample of the point: time, and the value when it was good and usable.
    last: Option<(Timestamp, Option<Value>)>,
    /// Time of the latest good sample.
    last_good: Option<Timestamp>,
    /// A level whose condition holds but whose on-delay has not run out: the value is
    /// "pending", never shown as normal.
    pending: Option<Level>,
}

/// A generator start being watched (see [`Condition::StartToRated`]).
#[derive(Default)]
struct StartState {
    /// `engine_running` (or `engine_starting`) as last read (good samples only).
    running: Option<bool>,
    /// When the present start began; `None` when no start is being judged.
    start: Option<Timestamp>,
    /// The latest good generator frequency, Hz (the event's value).
    frequency: Option<f64>,
}

/// Sliding-window max and min (monotonic queues), amortised O(1) per sample.
#[derive(Default)]
struct Window {
    max: VecDeque<(i64, f64)>,
    min: VecDeque<(i64, f64)>,
    last_ts: Option<i64>,
}

impl Window {
    /// Add a sample; out-of-order samples are ignored.
    fn push(&mut self, ts: i64, v: f64) {
        if self.last_ts.is_some_and(|l| ts < l) {
            return;
        }
        self.last_ts = Some(ts);
        while self.max.back().is_some_and(|&(_, b)| b <= v) {
            self.max.pop_back();
        }
        self.max.push_back((ts, v));
        while self.min.back().is_some_and(|&(_, b)| b >= v) {
            self.min.pop_back();
        }
        self.min.push_back((ts, v));
    }

    /// Drop samples older than `start` and return max − min of the rest.
    fn delta_since(&mut self, start: i64) -> Option<f64> {
        while self.max.front().is_some_and(|&(t, _)| t < start) {
            self.max.pop_front();
        }
        while self.min.front().is_some_and(|&(t, _)| t < start) {
            self.min.pop_front();
        }
        Some(self.max.front()?.1 - self.min.front()?.1)
    }
}

fn level_index(l: Level) -> usize {
    match l {
        Level::Normal => 0,
        Level::Serious => 1,
    }
}

fn ms(secs: f64) -> i64 {
    (secs * 1000.0).round() as i64
}

/// A stable 32-bit hash of the site name for event ids.
fn fnv1a(s: &str) -> u32 {
    let h = crate::model::stable_hash(s);
    (h ^ (h >> 32)) as u32
}

/// UUID v7: 48-bit Unix ms of the event, then (after the version and variant bits) 18
/// bits of the site hash and the low 56 bits of `seq`.
fn event_id(site_hash: u32, ts: Timestamp, seq: u64) -> String {
    let millis = u64::try_from(ts.millis()).unwrap_or(0);
    let mut b = [0u8; 10];
    b[..3].copy_from_slice(&site_hash.to_be_bytes()[1..]);
    b[3..].copy_from_slice(&seq.to_be_bytes()[1..]);
    uuid::Builder::from_unix_timestamp_millis(millis, &b)
        .into_uuid()
        .to_string()
}

/// One transition to report.
struct Transition {
    level: Level,
    state: AlarmState,
    value: Option<Value>,
    threshold: Option<f64>,
    message: String,
    /// The operator of an unshelve (others take theirs from the instance).
    by: Option<String>,
    /// Their comment.
    comment: Option<String>,
}

impl Emitter {
    /// Build the event and update the rule's active alarm.
    fn emit(
        &mut self,
        dev: &DeviceMeta,
        slot: &mut RuleSlot,
        now: Timestamp,
        mut t: Transition,
    ) -> AlarmEvent {
        // Numbers leave at the point's display resolution (no binary noise such as
        // 5.199999999999999 in an event read on a phone).
        let round = |x: f64| crate::texts::number::machine_by_name(dev.kind, slot.spec.point, x);
        t.value = t.value.map(|v| match v {
            Value::Number(x) => Value::Number(round(x)),
            other => other,
        });
        t.threshold = t.threshold.map(round);
        let prior_cause = slot.active.as_ref().and_then(|a| a.cause.clone());
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = event_id(self.site_hash, now, seq);
        // Read on a phone: the instance's number and the local time join the text.
        let no_of_text = match t.state {
            AlarmState::Raised => slot
                .active
                .as_ref()
                .filter(|a| a.condition)
                .map_or(self.next_no, |a| a.no),
            AlarmState::Cleared => slot.last_no,
            _ => 0,
        };
        if no_of_text > 0 {
            if let Some((room, location)) = self.places.get(&dev.id) {
                t.message = crate::texts::alarm::with_place(
                    self.language,
                    &t.message,
                    &dev.room,
                    room,
                    location.as_deref(),
                );
            }
            t.message = crate::texts::alarm::with_number_and_time(
                self.language,
                &t.message,
                no_of_text,
                &self.time.at(now, self.language),
            );
        }
        let mut by = None;
        let mut comment = None;
        match t.state {
            AlarmState::Cleared => {
                // A serious alarm nobody acknowledged stays listed, cleared (unless it
                // was shelved: the shelving covered it).
                match &mut slot.active {
                    Some(a)
                        if a.level == Level::Serious
                            && a.acked.is_none()
                            && a.shelved.is_none() =>
                    {
                        a.condition = false;
                    }
                    _ => slot.active = None,
                }
            }
            AlarmState::Shelved => {
                if let Some(a) = &slot.active {
                    by = a.shelved.as_ref().map(|k| k.by.clone());
                    comment = a.shelved.as_ref().map(|k| k.reason.clone());
                }
            }
            AlarmState::Unshelved => {
                if let Some(a) = &mut slot.active {
                    by = t.by.clone();
                    comment = t.comment.clone();
                    a.shelved = None;
                    if !a.condition && (a.level != Level::Serious || a.acked.is_some()) {
                        slot.active = None;
                    }
                }
            }
            AlarmState::Acked => {
                if let Some(a) = &mut slot.active {
                    by = a.acked.as_ref().map(|k| k.by.clone());
                    comment = a.acked.as_ref().and_then(|k| k.comment.clone());
                    if !a.condition {
                        slot.active = None;
                    }
                }
            }
            _ => {
                // The same instance while its condition holds (a change of level); a
                // new one after a clear. A rise in level asks for a new
                // acknowledgement.
                let same = slot.active.as_ref().filter(|a| a.condition);
                let (since, no, acked) = match same {
                    Some(a) => (
                        a.since,
                        a.no,
                        a.acked.clone().filter(|_| t.level <= a.level),
                    ),
                    None => {
                        let no = self.next_no;
                        self.next_no += 1;
                        slot.last_no = no;
                        (now, no, None)
                    }
                };
                let shelved = same.and_then(|a| a.shelved.clone());
                let cause = same.and_then(|a| a.cause.clone());
                slot.active = Some(Active {
                    level: t.level,
                    since,
                    id: id.clone(),
                    value: t.value.clone(),
                    threshold: t.threshold,
                    message: t.message.clone(),
                    no,
                    acked,
                    condition: true,
                    shelved,
                    cause,
                });
            }
        }
        let cause = match t.state {
            AlarmState::Raised => slot.active.as_ref().and_then(|a| a.cause.clone()),
            _ => prior_cause,
        };
        let detail = crate::model::EventDetail {
            gateway: self.gateway.clone(),
            no: slot.last_no,
            name: dev.name.clone(),
            label: dev.label.clone(),
            room: dev.room.clone(),
            location: self.places.get(&dev.id).and_then(|p| p.1.clone()),
            behind: Vec::new(),
            local_ts: self.time.rfc3339(now),
            by,
            comment,
            in_maintenance: false,
            shelved_until: slot
                .active
                .as_ref()
                .and_then(|a| a.shelved.as_ref())
                .map(|k| k.until),
            listed: slot.active.is_some(),
            // Set by the hub, which knows the clock (src/selfwatch/).
            clock_unsynced: false,
            cause: None,
            // Set by the hub's incidents (src/incidents/).
            incident: None,
        };
        AlarmEvent {
            id,
            seq,
            ts: now,
            site: self.site.clone(),
            device: dev.id.clone(),
            kind: dev.kind,
            room: dev.room.clone(),
            point: slot.spec.point,
            rule: slot.spec.name.clone(),
            level: t.level,
            state: t.state,
            value: t.value,
            threshold: t.threshold,
            message: t.message,
            detail: crate::model::EventDetail {
                cause: cause.map(|c| c.to_string()),
                ..detail
            },
        }
    }
}

/// The level whose raise condition a value meets, or `None` if none; `Err(())` when
/// the value does not fit the rule (wrong type, not finite) and is not evaluated.
fn raw_level(cond: &Condition, v: &Value) -> Result<Option<Level>, ()> {
    match cond {
        Condition::Above {
            normal, serious, ..
        }
        | Condition::Below {
            normal, serious, ..
        } => {
            let x = v.as_f64().filter(|x| x.is_finite()).ok_or(())?;
            let beyond = |limit: &Option<f64>| match cond {
                Condition::Above { .. } => limit.is_some_and(|l| x > l),
                _ => limit.is_some_and(|l| x < l),
            };
            Ok(if beyond(serious) {
                Some(Level::Serious)
            } else if beyond(normal) {
                Some(Level::Normal)
            } else {
                None
            })
        }
        Condition::Flag { when, level, .. } => {
            let b = match v {
                Value::Bool(b) => *b,
                Value::Number(x) if x.is_finite() => *x != 0.0,
                _ => return Err(()),
            };
            Ok((b == *when).then_some(*level))
        }
        Condition::EnumNot { allowed, level, .. } => match v {
            Value::Enum(s) => Ok((!allowed.contains(s)).then_some(*level)),
            _ => Err(()),
        },
        Condition::EnumLevel { levels, .. } => match v {
            Value::Enum(s) => Ok(levels.iter().find(|(n, _)| n == s).map(|(_, l)| *l)),
            _ => Err(()),
        },
        Condition::RateOfChange { .. }
        | Condition::CommLost { .. }
        | Condition::Composite { .. }
        | Condition::StartToRated { .. }
        | Condition::DoorAccess { .. } => Err(()),
    }
}

/// The highest level at or below `cur` that the value still holds, hysteresis
/// included (for thresholds: above `limit − hysteresis` for `Above`).
fn hold_level(cond: &Condition, cur: Option<Level>, v: &Value) -> Option<Level> {
    let cur = cur?;
    match cond {
        Condition::Above {
            normal,
            serious,
            hysteresis,
            ..
        }
        | Condition::Below {
            normal,
            serious,
            hysteresis,
            ..
        } => {
            let x = v.as_f64()?;
            let holds = |limit: &Option<f64>| match cond {
                Condition::Above { .. } => limit.is_some_and(|l| x > l - hysteresis),
                _ => limit.is_some_and(|l| x < l + hysteresis),
            };
            if cur == Level::Serious && holds(serious) {
                Some(Level::Serious)
            } else if holds(normal) {
                Some(Level::Normal)
            } else {
                None
            }
        }
        _ => raw_level(cond, v).ok().flatten(),
    }
}

fn on_delay_ms(cond: &Condition) -> i64 {
    match cond {
        Condition::Above { on_delay_s, .. }
        | Condition::Below { on_delay_s, .. }
        | Condition::Flag { on_delay_s, .. }
        | Condition::EnumNot { on_delay_s, .. }
        | Condition::EnumLevel { on_delay_s, .. } => ms(*on_delay_s),
        _ => 0,
    }
}

/// The event payload of a level rule reaching `new` (from `cur`).
fn level_transition(
    lang: Language,
    dev: &DeviceMeta,
    spec: &RuleSpec,
    cur: Option<Level>,
    new: Option<Level>,
    v: &Value,
) -> Option<Transition> {
    let (state, level) = match (cur, new) {
        (None, None) => return None,
        (Some(a), Some(b)) if a == b => return None,
        (_, Some(b)) => (AlarmState::Raised, b),
        (Some(a), None) => (AlarmState::Cleared, a),
    };
    let art = spec.article;
    let (threshold, message) = match &spec.condition {
        Condition::Above {
            normal, serious, ..
        }
        | Condition::Below {
            normal, serious, ..
        } => {
            let side = if matches!(spec.condition, Condition::Above { .. }) {
                Side::Above
            } else {
                Side::Below
            };
            let x = v.as_f64().unwrap_or(f64::NAN);
            let limit = match (state, level) {
                (AlarmState::Raised, Level::Serious) => serious.or(*normal),
                (AlarmState::Raised, _) => normal.or(*serious),
                // A clear is governed by the normal limit when there is one.
                _ => normal.or(*serious),
            };
            let limit = limit.unwrap_or(f64::NAN);
            let msg = if state == AlarmState::Raised {
                messages::threshold_raised(lang, dev, spec.point, side, x, limit, level, art)
            } else {
                messages::threshold_cleared(lang, dev, spec.point, side, x, limit, art)
            };
            (Some(limit), msg)
        }
        Condition::Flag { on_delay_s, .. }
        | Condition::EnumNot { on_delay_s, .. }
        | Condition::EnumLevel { on_delay_s, .. } => {
            let lvl = (state == AlarmState::Raised).then_some(level);
            (
                None,
                messages::condition(lang, dev, spec.point, Some(v), *on_delay_s, lvl, art),
            )
        }
        _ => return None,
    };
    Some(Transition {
        by: None,
        comment: None,
        level,
        state,
        value: Some(v.clone()),
        threshold,
        message,
    })
}

impl DeviceSlot {
    fn new(device: Device, poll_interval: Duration, rules: Vec<RuleSpec>) -> DeviceSlot {
        let interval_ms = i64::try_from(poll_interval.as_millis()).unwrap_or(i64::MAX);
        let comm_intervals = rules
            .iter()
            .filter(|r| r.enabled)
            .find_map(|r| match r.condition {
                Condition::CommLost { intervals, .. } => Some(intervals.max(1)),
                _ => None,
            });
        let comm_horizon_ms = interval_ms
            .saturating_mul(i64::from(comm_intervals.unwrap_or(DEFAULT_STALE_INTERVALS)));
        let rules = rules
            .into_iter()
            .filter(|r| r.enabled)
            .map(|spec| {
                let st = match spec.condition {
                    Condition::RateOfChange { .. } => RuleState::Rate(Window::default()),
                    Condition::CommLost { .. } => RuleState::Comm,
                    Condition::DoorAccess { .. } => RuleState::Door(Default::default()),
                    Condition::Composite { .. } => RuleState::Composite(None),
                    Condition::StartToRated { .. } => RuleState::Start(StartState::default()),
                    _ => RuleState::Levels(LevelState::default()),
                };
                RuleSlot {
                    spec,
                    st,
                    active: None,
                    last_no: 0,
                }
            })
            .collect();
        DeviceSlot {
            device,
            comm_horizon_ms,
            stale_ms: comm_horizon_ms,
            first_seen: None,
            last_ok: None,
            rules,
        }
    }

    /// Raise `comm_lost` if the device has been silent for the horizon.
    /// `cause`: the group id of the link alarm standing for this device's link, set on
    /// the raise (and kept by the instance).
    fn check_comm(
        &mut self,
        out: &mut Emitter,
        now: Timestamp,
        events: &mut Vec<AlarmEvent>,
        cause: Option<&Arc<str>>,
    ) {
        let Some(reference) = self.last_ok.or(self.first_seen) else {
            return;
        };
        let silence_ms = now.millis() - reference.millis();
        if silence_ms < self.comm_horizon_ms {
            return;
        }
        let dev = self.device.clone();
        let horizon_s = self.comm_horizon_ms as f64 / 1000.0;
        for slot in &mut self.rules {
            let Condition::CommLost { intervals, level } = slot.spec.condition else {
                continue;
            };
            if slot.active.as_ref().is_some_and(|a| a.condition) {
                continue;
            }
            let message = messages::comm_lost(
                out.language,
                &dev,
                horizon_s,
                intervals,
                level,
                slot.spec.article,
            );
            let t = Transition {
                by: None,
                comment: None,
                level,
                state: AlarmState::Raised,
                value: Some(Value::Number(silence_ms as f64 / 1000.0)),
                threshold: Some(horizon_s),
                message,
            };
            let mut ev = out.emit(&dev, slot, now, t);
            if let Some(c) = cause {
                ev.detail.cause = Some(c.to_string());
                if let Some(a) = &mut slot.active {
                    a.cause = Some(c.clone());
                }
            }
            events.push(ev);
        }
    }

    /// Clear `comm_lost` on a poll with `comm_ok`.
    fn comm_ok(&mut self, out: &mut Emitter, now: Timestamp, events: &mut Vec<AlarmEvent>) {
        let silence_s = self.last_ok.or(self.first_seen).map(|r| now.secs_since(r));
        self.last_ok = Some(self.last_ok.map_or(now, |l| l.max(now)));
        let dev = self.device.clone();
        let horizon_s = self.comm_horizon_ms as f64 / 1000.0;
        for slot in &mut self.rules {
            let Condition::CommLost { .. } = slot.spec.condition else {
                continue;
            };
            let Some(active) = slot.active.as_ref().filter(|a| a.condition) else {
                continue;
            };
            let t = Transition {
                by: None,
                comment: None,
                level: active.level,
                state: AlarmState::Cleared,
                value: silence_s.map(Value::Number),
                threshold: Some(horizon_s),
                message: messages::comm_restored(out.language, &dev, slot.spec.article),
            };
            events.push(out.emit(&dev, slot, now, t));
        }
    }
}

/// Evaluate a level rule (thresholds, flags, states) at `now`. With `sample`, a new
/// good value arrived; without, time passed (tick) and only a raise can happen.
fn eval_level(
    out: &mut Emitter,
    dev: &DeviceMeta,
    stale_ms: i64,
    slot: &mut RuleSlot,
    now: Timestamp,
    sample: Option<(&Value, Option<Level>)>,
    events: &mut Vec<AlarmEvent>,
) {
    let RuleState::Levels(st) = &mut slot.st else {
        return;
    };
    let cur = slot
        .active
        .as_ref()
        .filter(|a| a.condition)
        .map(|a| a.level);
    let delay = on_delay_ms(&slot.spec.condition);
    let value = match sample {
        Some((v, raw)) => {
            // Two good samples further apart than the staleness horizon are not
            // "continuous": the on-delay starts again.
            if st
                .last_good
                .is_some_and(|g| now.millis() - g.millis() > stale_ms)
            {
                st.since = [None, None];
            }
            for l in [Level::Normal, Level::Serious] {
                let i = level_index(l);
                if raw.is_some_and(|r| r >= l) {
                    st.since[i].get_or_insert(now);
                } else {
                    st.since[i] = None;
                }
            }
            st.last = Some((now, Some(v.clone())));
            st.last_good = Some(now);
            v.clone()
        }
        None => match &st.last {
            Some((ts, Some(v))) if now.millis() - ts.millis() <= stale_ms => v.clone(),
            _ => return,
        },
    };
    let elapsed = |i: usize| st.since[i].is_some_and(|s| now.millis() - s.millis() >= delay);
    let candidate = if elapsed(1) {
        Some(Level::Serious)
    } else if elapsed(0) {
        Some(Level::Normal)
    } else {
        None
    };
    let held = if sample.is_some() {
        hold_level(&slot.spec.condition, cur, &value)
    } else {
        cur
    };
    let new = candidate.max(held);
    st.pending = [Level::Serious, Level::Normal]
        .into_iter()
        .find(|l| st.since[level_index(*l)].is_some() && Some(*l) > new);
    if let Some(t) = level_transition(out.language, dev, &slot.spec, cur, new, &value) {
        events.push(out.emit(dev, slot, now, t));
    }
}

/// Evaluate a door rule at `now` (after a sample, or on a tick): see [`super::door`].
fn eval_door(
    out: &mut Emitter,
    dev: &DeviceMeta,
    stale_ms: i64,
    slot: &mut RuleSlot,
    now: Timestamp,
    events: &mut Vec<AlarmEvent>,
) {
    let Condition::DoorAccess {
        level,
        outside_level,
        on_delay_s,
        windows,
    } = &slot.spec.condition
    else {
        return;
    };
    let RuleState::Door(st) = &mut slot.st else {
        return;
    };
    let in_window = windows
        .as_ref()
        .filter(|w| !w.is_empty())
        .map(|w| w.contains(now, &out.time));
    let Some(verdict) = st.judge(now, in_window, ms(*on_delay_s), stale_ms) else {
        return;
    };
    let new = verdict.level(*level, *outside_level);
    let cur = slot
        .active
        .as_ref()
        .filter(|a| a.condition)
        .map(|a| a.level);
    let (state, lvl) = match (cur, new) {
        (None, None) => return,
        (Some(a), Some(b)) if a == b => return,
        (_, Some(b)) => (AlarmState::Raised, b),
        (Some(a), None) => (AlarmState::Cleared, a),
    };
    let lang = out.language;
    let art = slot.spec.article;
    let value = Value::Bool(verdict.open);
    let message = match state {
        AlarmState::Raised if verdict.outside && Some(lvl) == Some(*outside_level) => {
            super::door::outside_text(lang, dev, lvl, art)
        }
        AlarmState::Raised => messages::condition(
            lang,
            dev,
            slot.spec.point,
            Some(&value),
            *on_delay_s,
            Some(lvl),
            art,
        ),
        _ => messages::condition(
            lang,
            dev,
            slot.spec.point,
            Some(&value),
            *on_delay_s,
            None,
            art,
        ),
    };
    let t = Transition {
        by: None,
        comment: None,
        level: lvl,
        state,
        value: Some(value),
        threshold: None,
        message,
    };
    events.push(out.emit(dev, slot, now, t));
}

/// Evaluate a rate-of-change rule on a new good number.
fn eval_rate(
    out: &mut Emitter,
    dev: &DeviceMeta,
    slot: &mut RuleSlot,
    now: Timestamp,
    x: f64,
    events: &mut Vec<AlarmEvent>,
) {
    let Condition::RateOfChange {
        max_delta,
        window_s,
        level,
    } = slot.spec.condition
    else {
        return;
    };
    let RuleState::Rate(win) = &mut slot.st else {
        return;
    };
    win.push(now.millis(), x);
    let Some(delta) = win.delta_since(now.millis() - ms(window_s)) else {
        return;
    };
    let over = delta > max_delta;
    let lang = out.language;
    let (state, lvl) = match (slot.active.as_ref().filter(|a| a.condition), over) {
        (None, true) => (AlarmState::Raised, level),
        (Some(a), false) => (AlarmState::Cleared, a.level),
        _ => return,
    };
    let text_level = (state == AlarmState::Raised).then_some(lvl);
    let message = messages::rate(
        lang,
        dev,
        slot.spec.point,
        delta,
        max_delta,
        window_s,
        text_level,
        slot.spec.article,
    );
    let t = Transition {
        by: None,
        comment: None,
        level: lvl,
        state,
        value: Some(Value::Number(delta)),
        threshold: Some(max_delta),
        message,
    };
    events.push(out.emit(dev, slot, now, t));
}

/// Judge a generator start (`StartToRated`): on a poll of the generator with
/// `poll`, on a tick without. A start is an `engine_running` (or `engine_starting`)
/// false → true change seen in good samples (a gateway that first sees the engine already running does not
/// judge that start).
fn eval_start(
    out: &mut Emitter,
    dev: &DeviceMeta,
    slot: &mut RuleSlot,
    now: Timestamp,
    poll: Option<&Poll>,
    events: &mut Vec<AlarmEvent>,
) {
    let Condition::StartToRated {
        within_s,
        voltage_v,
        frequency_hz,
        voltage_tolerance_pct,
        frequency_tolerance_pct,
        level,
    } = slot.spec.condition
    else {
        return;
    };
    let RuleState::Start(st) = &mut slot.st else {
        return;
    };
    let active = slot.active.as_ref().filter(|a| a.condition).is_some();
    let mut at_rated = false;
    if let Some(poll) = poll {
        let good = |name: &str| {
            poll.samples.iter().find_map(|s| match s {
                Sample {
                    quality: Quality::Good,
                    value: Some(v),
                    point,
                    ..
                } if point.name == name => Some(v.clone()),
                _ => None,
            })
        };
        if let Some(f) = good("gen_frequency_hz").and_then(|v| v.as_f64()) {
            st.frequency = Some(f);
        }
        // The engine turns or its start sequence runs (`engine_starting`, where the
        // profile has it): a start begins at the first of the two.
        let starting = good("engine_starting") == Some(Value::Bool(true));
        let turning = match good("engine_running") {
            Some(Value::Bool(r)) => Some(r || starting),
            _ => starting.then_some(true),
        };
        if let Some(running) = turning {
            if running && st.running == Some(false) {
                st.start = Some(now);
            }
            if !running {
                st.start = None;
            }
            st.running = Some(running);
        }
        let within = |v: Option<Value>, rated: f64, tol: f64| {
            v.and_then(|v| v.as_f64())
                .is_some_and(|x| (x - rated).abs() <= rated * tol / 100.0)
        };
        at_rated = st.running == Some(true)
            && within(good("gen_voltage_l1_v"), voltage_v, voltage_tolerance_pct)
            && within(
                good("gen_frequency_hz"),
                frequency_hz,
                frequency_tolerance_pct,
            );
    }
    let elapsed = st.start.map(|s| now.secs_since(s));
    let frequency = st.frequency;
    let state = if at_rated {
        st.start = None;
        if !active {
            return;
        }
        AlarmState::Cleared
    } else {
        match elapsed {
            Some(e) if e >= within_s && !active => AlarmState::Raised,
            _ => return,
        }
    };
    let lvl = (state == AlarmState::Raised).then_some(level);
    let message = messages::start_to_rated(
        out.language,
        dev,
        within_s,
        voltage_v,
        frequency_hz,
        lvl,
        slot.spec.article,
    );
    let t = Transition {
        by: None,
        comment: None,
        level,
        state,
        // On the rule's point (`gen_frequency_hz`): the frequency then and the rated one;
        // the time allowed is in the text.
        value: frequency.map(Value::Number),
        threshold: Some(frequency_hz),
        message,
    };
    events.push(out.emit(dev, slot, now, t));
}

impl Engine {
    /// An engine for a site. Texts are in `language`; the first event gets sequence
    /// number `next_seq` (the runtime takes it from [`crate::seq::SeqStore`] so `seq`
    /// keeps increasing across restarts).
    pub fn new(site: Arc<str>, language: Language, next_seq: u64) -> Engine {
        let site_hash = fnv1a(&site);
        Engine {
            links: links::LinkAlarms::default(),
            out: Emitter {
                site,
                site_hash,
                language,
                next_seq,
                next_no: 1,
                gateway: Arc::from(""),
                time: crate::texts::time::SiteTime::default(),
                places: HashMap::new(),
            },
            devices: Vec::new(),
            index: HashMap::new(),
            latest: HashMap::new(),
            watched: HashMap::new(),
            stale: HashMap::new(),
        }
    }

    /// Add a device with its rules (overrides already applied). Disabled rules are
    /// dropped. Adding a device id again replaces its rules and forgets its state.
    pub fn add_device(&mut self, device: Device, poll_interval: Duration, rules: Vec<RuleSpec>) {
        let slot = DeviceSlot::new(device.clone(), poll_interval, rules);
        self.stale.insert(device.id.clone(), slot.stale_ms);
        for r in &slot.rules {
            let Condition::Composite { expr, .. } = &r.spec.condition else {
                continue;
            };
            for t in expr.terms() {
                let id = t.device.clone().unwrap_or_else(|| device.id.clone());
                let set = self.watched.entry(id).or_default();
                set.insert(t.point);
                if let super::spec::Test::AbovePoint { point, .. } = t.test {
                    set.insert(point);
                }
            }
        }
        match self.index.get(&device.id) {
            Some(&i) => self.devices[i] = slot,
            None => {
                self.index.insert(device.id.clone(), self.devices.len());
                self.devices.push(slot);
            }
        }
    }

    /// Evaluate one poll at `poll.ts`. A poll of an unknown device gives no events.
    ///
    /// Call [`derive`](super::derive()) on the poll first so that dew-point rules see
    /// the derived sample.
    pub fn on_poll(&mut self, poll: &Poll) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let link = self.links.links.observe(poll);
        let Some(&i) = self.index.get(&poll.device.id) else {
            return events;
        };
        let now = poll.ts;
        let gate = match link {
            Some(l) => self.link_step(l, i, now, &mut events),
            None => links::Gate::Go(None),
        };
        let out = &mut self.out;
        let d = &mut self.devices[i];
        d.first_seen.get_or_insert(now);
        if poll.comm_ok {
            d.comm_ok(out, now, &mut events);
        } else if let links::Gate::Go(cause) = gate {
            d.check_comm(out, now, &mut events, cause.as_ref());
        }
        let dev = d.device.clone();
        let stale_ms = d.stale_ms;
        let watched = self.watched.get(&dev.id);
        for s in poll
            .samples
            .iter()
            .filter(|s| watched.is_some_and(|w| w.contains(s.point.name)))
        {
            let good = match s {
                Sample {
                    quality: Quality::Good,
                    value: Some(v),
                    ..
                } => Some(v.clone()),
                _ => None,
            };
            self.latest
                .insert((dev.id.clone(), s.point.name), (now, good));
        }
        for slot in &mut d.rules {
            if let Condition::StartToRated { .. } = slot.spec.condition {
                eval_start(out, &dev, slot, now, Some(poll), &mut events);
                continue;
            }
            if let Condition::Composite { .. } = slot.spec.condition {
                continue;
            }
            let sample = poll
                .samples
                .iter()
                .find(|s| s.point.name == slot.spec.point);
            // A point the poll does not carry is not evaluated, unless the whole poll
            // failed: then nothing is confirmed and it counts as a bad sample.
            if sample.is_none() && poll.comm_ok {
                continue;
            }
            let good = match sample {
                Some(Sample {
                    quality: Quality::Good,
                    value: Some(v),
                    ..
                }) => Some(v),
                _ => None,
            };
            match slot.spec.condition {
                Condition::CommLost { .. } => continue,
                Condition::DoorAccess { .. } => {
                    let open = good.and_then(|v| match v {
                        Value::Bool(b) => Some(*b),
                        Value::Number(x) if x.is_finite() => Some(*x != 0.0),
                        _ => None,
                    });
                    if let RuleState::Door(st) = &mut slot.st {
                        st.observe(now, open);
                    }
                    eval_door(out, &dev, stale_ms, slot, now, &mut events);
                    continue;
                }
                Condition::RateOfChange { .. } => {
                    if let Some(x) = good.and_then(Value::as_f64).filter(|x| x.is_finite()) {
                        eval_rate(out, &dev, slot, now, x, &mut events);
                    }
                    continue;
                }
                _ => {}
            }
            match good.map(|v| (v, raw_level(&slot.spec.condition, v))) {
                Some((v, Ok(raw))) => {
                    eval_level(out, &dev, stale_ms, slot, now, Some((v, raw)), &mut events)
                }
                // Bad quality or an unusable value: keep the alarm state, and let no
                // on-delay complete on a tick until a good sample confirms it.
                _ => {
                    if let RuleState::Levels(st) = &mut slot.st {
                        st.last = Some((now, None));
                    }
                }
            }
        }
        self.eval_composites(now, &mut events);
        events
    }

    /// Evaluate every composite rule at `now` against the latest samples.
    fn eval_composites(&mut self, now: Timestamp, events: &mut Vec<AlarmEvent>) {
        if self.watched.is_empty() {
            return;
        }
        let stale = &self.stale;
        let latest = &self.latest;
        let out = &mut self.out;
        for d in &mut self.devices {
            let dev = d.device.clone();
            for slot in &mut d.rules {
                let Condition::Composite {
                    expr,
                    level,
                    on_delay_s,
                    text,
                } = &slot.spec.condition
                else {
                    continue;
                };
                let value = |device: Option<&Arc<str>>, point: &'static str| {
                    let id = device.unwrap_or(&dev.id);
                    let horizon = stale.get(id).copied()?;
                    let (ts, v) = latest.get(&(id.clone(), point))?;
                    if now.millis() - ts.millis() > horizon {
                        return None;
                    }
                    v.clone()
                };
                // Unknown (a term without `if_unknown` has no fresh good value): the
                // alarm keeps its state, a running on-delay neither restarts nor ends.
                let Some(holds) = expr.eval(&value) else {
                    continue;
                };
                let (level, on_delay_s, text) = (*level, *on_delay_s, text.clone());
                let RuleState::Composite(since) = &mut slot.st else {
                    continue;
                };
                let active = slot
                    .active
                    .as_ref()
                    .filter(|a| a.condition)
                    .map(|a| a.level);
                let state = if holds {
                    let s = *since.get_or_insert(now);
                    if active.is_some() || now.millis() - s.millis() < ms(on_delay_s) {
                        continue;
                    }
                    AlarmState::Raised
                } else {
                    *since = None;
                    if active.is_none() {
                        continue;
                    }
                    AlarmState::Cleared
                };
                let lvl = (state == AlarmState::Raised).then_some(level);
                let message = messages::composite(
                    out.language,
                    &dev,
                    &slot.spec.name,
                    text.as_deref(),
                    on_delay_s,
                    lvl,
                    slot.spec.article,
                );
                let t = Transition {
                    by: None,
                    comment: None,
                    level: active.unwrap_or(level),
                    state,
                    value: None,
                    threshold: None,
                    message,
                };
                events.push(out.emit(&dev, slot, now, t));
            }
        }
    }

    /// Let time pass to `now`: complete on-delays whose condition still holds and
    /// raise `comm_lost` for silent devices.
    pub fn tick(&mut self, now: Timestamp) -> Vec<AlarmEvent> {
        let mut events = self.expire_shelves(now);
        for i in 0..self.devices.len() {
            let gate = match self.links.links.link_of(&self.devices[i].device.id) {
                Some(l) => self.link_step(l, i, now, &mut events),
                None => links::Gate::Go(None),
            };
            let out = &mut self.out;
            let d = &mut self.devices[i];
            d.first_seen.get_or_insert(now);
            if let links::Gate::Go(cause) = gate {
                d.check_comm(out, now, &mut events, cause.as_ref());
            }
            let dev = d.device.clone();
            let stale_ms = d.stale_ms;
            for slot in &mut d.rules {
                eval_level(out, &dev, stale_ms, slot, now, None, &mut events);
                eval_door(out, &dev, stale_ms, slot, now, &mut events);
                eval_start(out, &dev, slot, now, None, &mut events);
            }
        }
        self.eval_composites(now, &mut events);
        events
    }

    /// Values beyond a limit whose on-delay is still running: `(device, point, rule,
    /// level, since)`. They are not alarms yet, and not normal either.
    pub fn pending(&self) -> Vec<crate::state::Pending> {
        let mut out = Vec::new();
        for d in &self.devices {
            for slot in &d.rules {
                if let (RuleState::Door(st), Condition::DoorAccess { level, .. }) =
                    (&slot.st, &slot.spec.condition)
                    && let Some(since) = st.open_since()
                    && slot.active.as_ref().is_none_or(|a| !a.condition)
                {
                    out.push(crate::state::Pending {
                        device: d.device.id.clone(),
                        point: slot.spec.point,
                        rule: slot.spec.name.clone(),
                        level: *level,
                        since,
                    });
                }
                if let RuleState::Levels(st) = &slot.st
                    && let Some(level) = st.pending
                {
                    out.push(crate::state::Pending {
                        device: d.device.id.clone(),
                        point: slot.spec.point,
                        rule: slot.spec.name.clone(),
                        level,
                        since: st.since[level_index(level)].unwrap_or_default(),
                    });
                }
                // A composite whose condition holds but whose on-delay runs.
                if let (RuleState::Composite(Some(since)), Condition::Composite { level, .. }) =
                    (&slot.st, &slot.spec.condition)
                    && slot.active.as_ref().is_none_or(|a| !a.condition)
                {
                    out.push(crate::state::Pending {
                        device: d.device.id.clone(),
                        point: slot.spec.point,
                        rule: slot.spec.name.clone(),
                        level: *level,
                        since: *since,
                    });
                }
            }
        }
        out
    }

    /// Active alarms: most serious first, then oldest first (then by key).
    pub fn active(&self) -> Vec<ActiveAlarm> {
        let mut list: Vec<ActiveAlarm> = self
            .devices
            .iter()
            .flat_map(|d| {
                d.rules.iter().filter_map(move |slot| {
                    let a = slot.active.as_ref()?;
                    Some(ActiveAlarm {
                        id: a.id.clone(),
                        key: format!("{}/{}", d.device.id, slot.spec.name),
                        device: d.device.id.clone(),
                        kind: d.device.kind,
                        point: slot.spec.point,
                        rule: slot.spec.name.clone(),
                        level: a.level,
                        state: match (a.condition, &a.acked, &a.shelved) {
                            (_, _, Some(_)) => AlarmState::Shelved.as_str(),
                            (false, _, _) => AlarmState::Cleared.as_str(),
                            (true, Some(_), _) => AlarmState::Acked.as_str(),
                            (true, None, _) => AlarmState::Raised.as_str(),
                        },
                        since: a.since,
                        value: a.value.clone(),
                        threshold: a.threshold,
                        message: a.message.clone(),
                        no: a.no,
                        acked_by: a.acked.as_ref().map(|k| k.by.clone()),
                        acked_at: a.acked.as_ref().map(|k| k.at),
                        shelved_until: a.shelved.as_ref().map(|k| k.until),
                        shelved_by: a.shelved.as_ref().map(|k| k.by.clone()),
                        cause: a.cause.as_ref().map(|c| c.to_string()),
                    })
                })
            })
            .collect();
        list.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then(a.since.cmp(&b.since))
                .then_with(|| a.key.cmp(&b.key))
        });
        list
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.out.next_seq
    }

    /// The gateway's name in events, the site's time zone for `local_ts`, and the
    /// next alarm instance number (the runtime keeps it growing across restarts).
    pub fn set_identity(
        &mut self,
        gateway: Arc<str>,
        time: crate::texts::time::SiteTime,
        next_no: u64,
    ) {
        self.out.gateway = gateway;
        self.out.time = time;
        self.out.next_no = next_no.max(1);
    }

    /// Where a device is, for the texts and events: its room's name and its rack /
    /// position.
    pub fn set_place(&mut self, device: Arc<str>, room_name: String, location: Option<String>) {
        self.out.places.insert(device, (room_name, location));
    }

    /// The number the next new alarm instance gets.
    pub fn next_no(&self) -> u64 {
        self.out.next_no
    }

    /// The listed instance `target` names: its number (`123`, `#123`) or its key
    /// (`device/rule`); `(device index, rule index)`.
    fn find(&self, target: &str) -> Option<(usize, usize)> {
        let want_no: Option<u64> = target.trim_start_matches('#').parse().ok();
        self.devices.iter().enumerate().find_map(|(i, d)| {
            d.rules
                .iter()
                .position(|slot| {
                    slot.active.as_ref().is_some_and(|a| match want_no {
                        Some(no) => a.no == no,
                        None => target == format!("{}/{}", d.device.id, slot.spec.name),
                    })
                })
                .map(|j| (i, j))
        })
    }

    /// Emit an operator transition of instance `(i, j)`.
    fn operator_event(
        &mut self,
        (i, j): (usize, usize),
        state: AlarmState,
        now: Timestamp,
        by: Option<String>,
        comment: Option<String>,
    ) -> AlarmEvent {
        let lang = self.out.language;
        let d = &mut self.devices[i];
        let dev = d.device.clone();
        let slot = &mut d.rules[j];
        let a = slot.active.as_ref().expect("found listed");
        let t = Transition {
            level: a.level,
            state,
            value: a.value.clone(),
            threshold: a.threshold,
            message: format!("{}: {}", crate::texts::words::state(state, lang), a.message),
            by,
            comment,
        };
        self.out.emit(&dev, slot, now, t)
    }

    /// Acknowledge the listed alarm `target` — its number (`123`) or key
    /// (`device/rule`) — at `now`. An alarm whose condition has cleared leaves the list;
    /// one that still holds stays, acknowledged. Returns the `acked` event.
    pub fn ack(
        &mut self,
        target: &str,
        by: &str,
        comment: Option<String>,
        now: Timestamp,
    ) -> Result<AlarmEvent, AckError> {
        let at = self
            .find(target)
            .ok_or_else(|| AckError::NotFound(target.to_string()))?;
        let a = self.devices[at.0].rules[at.1]
            .active
            .as_mut()
            .expect("found listed");
        if let Some(k) = &a.acked {
            return Err(AckError::Already {
                target: target.to_string(),
                by: k.by.clone(),
            });
        }
        a.acked = Some(Ack {
            by: by.to_string(),
            at: now,
            comment,
        });
        Ok(self.operator_event(at, AlarmState::Acked, now, None, None))
    }

    /// Shelve the listed alarm `target` until `until` with a reason: it stays listed
    /// (shown as shelved) and its transitions are still events, but people are not
    /// paged for it. It unshelves itself at `until` ([`Engine::tick`]).
    pub fn shelve(
        &mut self,
        target: &str,
        by: &str,
        reason: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<AlarmEvent, AckError> {
        let at = self
            .find(target)
            .ok_or_else(|| AckError::NotFound(target.to_string()))?;
        let a = self.devices[at.0].rules[at.1]
            .active
            .as_mut()
            .expect("found listed");
        if a.shelved.is_some() {
            return Err(AckError::Shelved(target.to_string()));
        }
        a.shelved = Some(Shelve {
            by: by.to_string(),
            reason: reason.to_string(),
            until,
        });
        Ok(self.operator_event(at, AlarmState::Shelved, now, None, None))
    }

    /// End the shelving of `target` now.
    pub fn unshelve(
        &mut self,
        target: &str,
        by: &str,
        comment: Option<String>,
        now: Timestamp,
    ) -> Result<AlarmEvent, AckError> {
        let at = self
            .find(target)
            .ok_or_else(|| AckError::NotFound(target.to_string()))?;
        if self.devices[at.0].rules[at.1]
            .active
            .as_ref()
            .is_none_or(|a| a.shelved.is_none())
        {
            return Err(AckError::NotShelved(target.to_string()));
        }
        Ok(self.operator_event(
            at,
            AlarmState::Unshelved,
            now,
            Some(by.to_string()),
            comment,
        ))
    }

    /// Shelvings that ended by `now`: their `unshelved` events.
    fn expire_shelves(&mut self, now: Timestamp) -> Vec<AlarmEvent> {
        let mut due = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            for (j, slot) in d.rules.iter().enumerate() {
                if slot
                    .active
                    .as_ref()
                    .and_then(|a| a.shelved.as_ref())
                    .is_some_and(|k| k.until <= now)
                {
                    due.push((i, j));
                }
            }
        }
        due.into_iter()
            .map(|at| {
                self.operator_event(
                    at,
                    AlarmState::Unshelved,
                    now,
                    Some("gateway".into()),
                    Some("shelving expired".into()),
                )
            })
            .collect()
    }

    /// Put back alarm instances as they stood before a restart (from the journal).
    /// Instances of devices or rules no longer configured are dropped. Their
    /// conditions are judged again on the next poll: one that no longer holds clears
    /// with an event, so every consumer gets the clear it may have missed.
    pub fn restore(&mut self, list: Vec<Restored>) {
        for r in list {
            let Some(&i) = self.index.get(&r.device) else {
                continue;
            };
            let d = &mut self.devices[i];
            let Some(slot) = d.rules.iter_mut().find(|s| s.spec.name == r.rule) else {
                continue;
            };
            self.out.next_no = self.out.next_no.max(r.no + 1);
            slot.last_no = r.no;
            if let (RuleState::Door(st), Condition::DoorAccess { outside_level, .. }) =
                (&mut slot.st, &slot.spec.condition)
                && r.condition
            {
                st.resume(r.since, r.level == *outside_level);
            }
            slot.active = Some(Active {
                level: r.level,
                since: r.since,
                id: r.id,
                value: r.value,
                threshold: r.threshold,
                message: r.message,
                no: r.no,
                acked: r.acked,
                condition: r.condition,
                shelved: r.shelved,
                cause: r.cause,
            });
        }
    }
}

mod links;

#[cfg(test)]
mod failures;
#[cfg(test)]
mod tests;
