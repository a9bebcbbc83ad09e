//! Door access windows (Art. 7.5: only assigned staff enter the DC; visits need
//! approval): the `door_open` rule of a door knows when an opening is approved.
//!
//! An **access window** is planned in the site file (`[[access_windows]]`): what it
//! covers (a door, a room or a system, as for maintenance windows), when (the site's
//! [`Schedule`] syntax, in local time) and when not (`except`: holidays). A door is
//! *inside* a window at an instant when some window covering it holds the instant in
//! `when` and not in `except`.
//!
//! The rule ([`DoorState`], pure: it reads no clock, the engine hands it `now` and
//! whether `now` is inside a window):
//! - a door opened **outside** every window raises at once, at `outside_level`
//!   (default normal, THRESHOLDS.md); the opening stays unapproved until the door
//!   closes, even if a window begins while it is open;
//! - a door opened **inside** a window raises only if it stays open longer than
//!   `on_delay_s` (default 5 min), at `level` (normal), and raises the outside alarm if
//!   it is still open when the window ends;
//! - a door that no window covers keeps only the long-open alarm: nothing says which
//!   of its openings are approved;
//! - a door closes → the alarm clears at once;
//! - a sample that is not good, or the last one older than the staleness horizon,
//!   changes nothing.
//!
//! Maintenance windows still apply on top (the alarm is recorded and shown, flagged
//! `in_maintenance`, and pages nobody), as for every rule.

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::model::{DeviceMeta, Kind, Language, Level, Timestamp};
use crate::rules::maintenance::Target;
use crate::schedule::Schedule;
use crate::texts::alarm::{self, Message, Phase};
use crate::texts::time::SiteTime;

/// `[[access_windows]]`: a planned access window, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessWindow {
    /// What it covers: a door's device id, `room:<id>` or `system:security`.
    pub target: Spanned<String>,
    /// When doors may be opened, in the site's schedule syntax
    /// (`["Mon-Fri 07:30-17:30"]`).
    pub when: Spanned<Vec<String>>,
    /// When not, although `when` holds (holidays: `["2026-09-02"]`).
    #[serde(default)]
    pub except: Option<Spanned<Vec<String>>>,
    /// Why (working hours, a contractor's visit).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A validated access window.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessWindow {
    /// What it covers.
    pub target: Target,
    /// When doors may be opened.
    pub when: Schedule,
    /// When not (holidays).
    pub except: Schedule,
    /// Why.
    pub reason: String,
}

/// The access windows covering one door, attached to its `door_open` rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Windows {
    list: Vec<AccessWindow>,
}

impl Windows {
    /// The windows of `all` that cover the door `id` in `room`.
    pub fn covering(all: &[AccessWindow], id: &str, room: &str) -> Windows {
        Windows {
            list: all
                .iter()
                .filter(|w| w.target.covers(id, room, Kind::Door))
                .cloned()
                .collect(),
        }
    }

    /// Whether no window covers the door.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether `now` is inside one of the windows (in the site's local time).
    pub fn contains(&self, now: Timestamp, time: &SiteTime) -> bool {
        self.list
            .iter()
            .any(|w| w.when.contains(now, time) && !w.except.contains(now, time))
    }

    /// The windows' schedules as written (`when` minus `except`), for texts and docs.
    pub fn describe(&self) -> String {
        self.list
            .iter()
            .map(|w| {
                let mut s = w.when.entries().join(", ");
                if !w.except.is_empty() {
                    s += &format!(" except {}", w.except.entries().join(", "));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Why an access window cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The target names nothing that could be a door.
    #[error("{0}")]
    Target(String),
    /// A schedule entry cannot be read.
    #[error(transparent)]
    Schedule(#[from] crate::schedule::Error),
    /// `when` has no entry.
    #[error("no entry: say when doors may be opened, e.g. [\"Mon-Fri 07:30-17:30\"]")]
    Empty,
}

/// Validate one window: `devices` maps the site's device ids to their kind, `rooms`
/// lists the room ids. Every problem is returned, with the key it is about.
pub fn validate(
    raw: &RawAccessWindow,
    devices: &dyn Fn(&str) -> Option<Kind>,
    room_known: &dyn Fn(&str) -> bool,
) -> Result<AccessWindow, Vec<(&'static str, Error)>> {
    let mut errors = Vec::new();
    let target = match Target::parse(raw.target.get_ref()) {
        Ok(Target::Device(d)) => match devices(&d) {
            Some(Kind::Door) => Some(Target::Device(d)),
            Some(k) => {
                errors.push((
                    "target",
                    Error::Target(format!(
                        "device {d:?} is a {k}, not a door: access windows apply to doors"
                    )),
                ));
                None
            }
            None => {
                errors.push(("target", Error::Target(format!("unknown device {d:?}"))));
                None
            }
        },
        Ok(Target::Room(x)) if !room_known(&x) => {
            errors.push(("target", Error::Target(format!("unknown room {x:?}"))));
            None
        }
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(("target", Error::Target(e)));
            None
        }
    };
    let mut schedule =
        |key: &'static str, entries: &[String], required: bool| match Schedule::parse(entries) {
            Ok(s) if s.is_empty() && required => {
                errors.push((key, Error::Empty));
                None
            }
            Ok(s) => Some(s),
            Err(es) => {
                errors.extend(es.into_iter().map(|e| (key, Error::from(e))));
                None
            }
        };
    let when = schedule("when", raw.when.get_ref(), true);
    let except = match &raw.except {
        Some(e) => schedule("except", e.get_ref(), false),
        None => Some(Schedule::default()),
    };
    match (target, when, except) {
        (Some(target), Some(when), Some(except)) if errors.is_empty() => Ok(AccessWindow {
            target,
            when,
            except,
            reason: raw.reason.clone().unwrap_or_default(),
        }),
        _ => Err(errors),
    }
}

/// What the rule makes of a door at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The door is open.
    pub open: bool,
    /// The current opening is not approved (began, or went on, outside every window).
    pub outside: bool,
    /// The current opening has lasted longer than the allowed time.
    pub long: bool,
}

impl Verdict {
    /// The alarm level: the higher of the outside alarm and the long-open alarm.
    pub fn level(self, level: Level, outside_level: Level) -> Option<Level> {
        let a = (self.open && self.outside).then_some(outside_level);
        let b = (self.open && self.long).then_some(level);
        a.max(b)
    }
}

/// The door rule's memory: the current opening and the latest sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DoorState {
    /// When the current opening began (`None`: closed, or not known yet).
    open_since: Option<Timestamp>,
    /// The current opening went on outside every window at some instant.
    outside: bool,
    /// The latest sample: its time, and whether the door was open when it was good.
    last: Option<(Timestamp, Option<bool>)>,
}

impl DoorState {
    /// A sample of `door_open` at `now`: `Some(open)` when good, `None` when not (it
    /// keeps everything as it was).
    pub fn observe(&mut self, now: Timestamp, open: Option<bool>) {
        self.last = Some((now, open));
        match open {
            Some(true) => {
                self.open_since.get_or_insert(now);
            }
            Some(false) => {
                self.open_since = None;
                self.outside = false;
            }
            None => {}
        }
    }

    /// Judge the door at `now`. `in_window`: whether `now` is inside an access window
    /// of the door, `None` when no window covers it. `None` when nothing usable is
    /// known (no good sample, or the latest one older than `stale_ms`): the alarm then
    /// keeps its state.
    pub fn judge(
        &mut self,
        now: Timestamp,
        in_window: Option<bool>,
        long_open_ms: i64,
        stale_ms: i64,
    ) -> Option<Verdict> {
        let (ts, open) = self.last?;
        let open = open?;
        if now.millis() - ts.millis() > stale_ms {
            return None;
        }
        if !open {
            return Some(Verdict {
                open: false,
                outside: false,
                long: false,
            });
        }
        if in_window == Some(false) {
            self.outside = true;
        }
        let since = self.open_since.unwrap_or(ts);
        Some(Verdict {
            open: true,
            outside: self.outside,
            long: now.millis() - since.millis() >= long_open_ms,
        })
    }

    /// After a restart, an alarm of this door was listed with its condition holding:
    /// the opening goes on since `since`, unapproved when `outside` (the alarm was at
    /// the outside level), so it neither clears nor starts its wait again.
    pub fn resume(&mut self, since: Timestamp, outside: bool) {
        self.open_since = Some(since);
        self.outside = outside;
    }

    /// When the current opening began.
    pub fn open_since(&self) -> Option<Timestamp> {
        self.open_since
    }
}

/// Text of a door opened outside its access windows: `Sự cố thông thường: Cửa phòng
/// máy (door1) — Cửa mở ngoài khung giờ ra vào được duyệt; tại r1 (Điều 7.5)`.
pub fn outside_text(lang: Language, dev: &DeviceMeta, level: Level, article: &str) -> String {
    let what = match lang {
        Language::Vi => "Cửa mở ngoài khung giờ ra vào được duyệt",
        Language::En => "Door opened outside an approved access window",
    };
    alarm::message(
        lang,
        &Message {
            subject: super::messages::subject(dev),
            phase: Phase::Raised(level),
            no: None,
            what: what.to_string(),
            at: None,
            article,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::DateTime;
    use std::sync::Arc;

    /// A local time in Asia/Ho_Chi_Minh as an instant.
    fn at(s: &str) -> Timestamp {
        let dt: DateTime = s.parse().unwrap();
        SiteTime::default().instant(dt).unwrap()
    }

    fn office() -> Windows {
        Windows {
            list: vec![AccessWindow {
                target: Target::parse("room:server1").unwrap(),
                when: Schedule::parse(&["Mon-Fri 08:00-17:00"]).unwrap(),
                except: Schedule::parse(&["2026-12-24"]).unwrap(),
                reason: "working hours".into(),
            }],
        }
    }

    const LONG_MS: i64 = 300_000;
    const STALE_MS: i64 = 60_000;

    /// One step of a table: at local time `t`, an optional sample (`Some(None)`: a
    /// bad sample), and the level expected after it (`outside` normal, `long` normal
    /// by default; `outside` serious in the serious table).
    type Step = (&'static str, Option<Option<bool>>, Option<Level>);

    fn run(windows: Option<&Windows>, outside_level: Level, steps: &[Step]) {
        let time = SiteTime::default();
        let mut st = DoorState::default();
        let mut level = None;
        for (i, (t, sample, want)) in steps.iter().enumerate() {
            let now = at(t);
            if let Some(s) = sample {
                st.observe(now, *s);
            }
            let in_window = windows.map(|w| w.contains(now, &time));
            if let Some(v) = st.judge(now, in_window, LONG_MS, STALE_MS) {
                level = v.level(Level::Normal, outside_level);
            }
            assert_eq!(level, *want, "step {i} at {t}");
        }
    }

    // 2026-12-04 is a Friday, 2026-12-05 a Saturday, 2026-12-24 a Thursday (holiday).

    #[test]
    fn inside_a_window_only_a_long_opening_alarms() {
        run(
            Some(&office()),
            Level::Serious,
            &[
                ("2026-12-04T09:00", Some(Some(true)), None),
                ("2026-12-04T09:04:59", None, None),
                ("2026-12-04T09:04:59", Some(Some(true)), None),
                ("2026-12-04T09:05", Some(Some(true)), Some(Level::Normal)),
                ("2026-12-04T09:06", Some(Some(false)), None),
                ("2026-12-04T09:07", Some(Some(true)), None),
                ("2026-12-04T09:08", Some(Some(false)), None),
            ],
        );
    }

    #[test]
    fn outside_a_window_an_opening_alarms_at_once() {
        run(
            Some(&office()),
            Level::Serious,
            &[
                ("2026-12-05T10:00", Some(Some(false)), None),
                (
                    "2026-12-05T10:00:01",
                    Some(Some(true)),
                    Some(Level::Serious),
                ),
                ("2026-12-05T10:00:30", Some(Some(false)), None),
                // Before opening time on a working day.
                ("2026-12-04T07:59", Some(Some(true)), Some(Level::Serious)),
                // The window begins while the door is open: still unapproved.
                (
                    "2026-12-04T08:00:30",
                    Some(Some(true)),
                    Some(Level::Serious),
                ),
                ("2026-12-04T08:01", Some(Some(false)), None),
                // A holiday is outside although Thursday 10:00 is in `when`.
                ("2026-12-24T10:00", Some(Some(true)), Some(Level::Serious)),
            ],
        );
    }

    #[test]
    fn open_when_the_window_ends_becomes_an_outside_alarm_on_a_tick() {
        run(
            Some(&office()),
            Level::Serious,
            &[
                ("2026-12-04T16:58", Some(Some(true)), None),
                ("2026-12-04T16:59:30", None, None),
                // A tick (no sample) at 17:00:00: the window has ended, the sample
                // from 16:59:30 is still fresh.
                ("2026-12-04T16:59:30", Some(Some(true)), None),
                ("2026-12-04T17:00", None, Some(Level::Serious)),
                ("2026-12-04T17:00:10", Some(Some(false)), None),
            ],
        );
    }

    #[test]
    fn a_bad_or_stale_sample_changes_nothing() {
        run(
            Some(&office()),
            Level::Normal,
            &[
                ("2026-12-05T10:00", Some(Some(true)), Some(Level::Normal)),
                ("2026-12-05T10:00:05", Some(None), Some(Level::Normal)),
                ("2026-12-05T10:30", None, Some(Level::Normal)),
                ("2026-12-05T10:31", Some(Some(false)), None),
                // Opened inside a window, then the source goes silent past the
                // horizon: the long-open alarm cannot complete on stale data.
                ("2026-12-04T09:00", Some(Some(true)), None),
                ("2026-12-04T09:10", None, None),
            ],
        );
    }

    #[test]
    fn a_door_no_window_covers_keeps_only_the_long_open_alarm() {
        run(
            None,
            Level::Serious,
            &[
                ("2026-12-05T03:00", Some(Some(true)), None),
                ("2026-12-05T03:04", Some(Some(true)), None),
                ("2026-12-05T03:05", Some(Some(true)), Some(Level::Normal)),
                ("2026-12-05T03:06", Some(Some(false)), None),
            ],
        );
    }

    #[test]
    fn long_and_outside_take_the_higher_level() {
        let v = Verdict {
            open: true,
            outside: true,
            long: true,
        };
        assert_eq!(v.level(Level::Serious, Level::Normal), Some(Level::Serious));
        assert_eq!(v.level(Level::Normal, Level::Serious), Some(Level::Serious));
        let closed = Verdict { open: false, ..v };
        assert_eq!(closed.level(Level::Serious, Level::Serious), None);
    }

    #[test]
    fn windows_are_validated_with_the_key_at_fault() {
        let kinds = |id: &str| match id {
            "door1" => Some(Kind::Door),
            "ups1" => Some(Kind::Ups),
            _ => None,
        };
        let rooms = |r: &str| r == "server1";
        let raw = |target: &str, when: &[&str], except: Option<&[&str]>| RawAccessWindow {
            target: Spanned::new(0..1, target.to_string()),
            when: Spanned::new(0..1, when.iter().map(|s| s.to_string()).collect()),
            except: except.map(|e| Spanned::new(0..1, e.iter().map(|s| s.to_string()).collect())),
            reason: None,
        };
        let ok = validate(&raw("door1", &["daily 08:00-17:00"], None), &kinds, &rooms).unwrap();
        assert_eq!(ok.target, Target::parse("door1").unwrap());
        let msgs = |r: RawAccessWindow| -> Vec<String> {
            validate(&r, &kinds, &rooms)
                .unwrap_err()
                .into_iter()
                .map(|(k, e)| format!("{k}: {e}"))
                .collect()
        };
        assert_eq!(
            msgs(raw("ups1", &["daily 08:00-17:00"], None)),
            vec!["target: device \"ups1\" is a ups, not a door: access windows apply to doors"]
        );
        assert_eq!(
            msgs(raw("room:lab", &[], Some(&["2026-13-01"]))),
            vec![
                "target: unknown room \"lab\"".to_string(),
                "when: no entry: say when doors may be opened, e.g. [\"Mon-Fri 07:30-17:30\"]"
                    .to_string(),
                "except: schedule entry \"2026-13-01\": \"2026-13-01\" is not a date YYYY-MM-DD"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn the_outside_text_names_the_door_and_the_article() {
        let d = DeviceMeta {
            id: Arc::from("door1"),
            name: "Cửa phòng máy".into(),
            label: None,
            room: Arc::from("r1"),
            kind: Kind::Door,
        };
        let t = outside_text(Language::Vi, &d, Level::Normal, "7.5");
        assert!(
            t.starts_with("Sự cố thông thường: Cửa phòng máy (door1)"),
            "{t}"
        );
        assert!(t.contains("ngoài khung giờ ra vào được duyệt"), "{t}");
        assert!(t.ends_with("(Điều 7.5)"), "{t}");
    }

    /// A site with two doors: `door1` in `server1` (covered by working hours minus a
    /// holiday, outside openings serious), `door2` in `corridor` (no window).
    const SITE: &str = r#"
[site]
name = "tv"
language = "en"
[[rooms]]
id = "server1"
[[rooms]]
id = "corridor"
[[access_windows]]
target = "room:server1"
when = ["Mon-Fri 08:00-17:00"]
except = ["2026-12-24"]
reason = "working hours"
[rules.door_open]
outside_level = "serious"
[[devices]]
id = "door1"
room = "server1"
kind = "door"
profile = "gpio-door"
poll_interval_ms = 1000
[devices.gpio.lines]
door_open = { name = "GPIO5" }
[[devices]]
id = "door2"
room = "corridor"
kind = "door"
profile = "gpio-door"
poll_interval_ms = 1000
[devices.gpio.lines]
door_open = { name = "GPIO6" }
"#;

    fn engine(text: &str) -> (crate::rules::Engine, Vec<crate::config::DeviceConfig>) {
        let site = crate::config::parse(text, "site.toml", std::path::Path::new("/"))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut e = crate::rules::Engine::new(Arc::from("tv"), Language::En, 1);
        e.set_identity(Arc::from("gw1"), SiteTime::default(), 1);
        for d in &site.devices {
            e.add_device(d.meta.clone(), d.poll_interval, d.rules.clone());
        }
        (e, site.devices)
    }

    fn poll(d: &crate::config::DeviceConfig, t: &str, open: bool) -> crate::model::Poll {
        crate::model::Poll {
            device: d.meta.clone(),
            ts: at(t),
            comm_ok: true,
            samples: vec![crate::model::Sample {
                point: crate::points::lookup(Kind::Door, "door_open").unwrap(),
                value: Some(crate::model::Value::Bool(open)),
                quality: crate::model::Quality::Good,
            }],
        }
    }

    #[test]
    fn the_engine_raises_a_door_opened_outside_its_window_at_once() {
        let (mut e, devs) = engine(SITE);
        let (d1, d2) = (&devs[0], &devs[1]);
        // Saturday night: door1 (covered, outside its window) raises at once, serious.
        let ev = e.on_poll(&poll(d1, "2026-12-05T02:00", true));
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(
            (ev[0].level, ev[0].state),
            (Level::Serious, crate::model::AlarmState::Raised)
        );
        assert!(
            ev[0].message.contains("outside an approved access window"),
            "{}",
            ev[0].message
        );
        // door2 has no window: only the long-open alarm, normal, after 5 min.
        assert!(e.on_poll(&poll(d2, "2026-12-05T02:00", true)).is_empty());
        let mut t = at("2026-12-05T02:00");
        let mut raised = None;
        for _ in 0..301 {
            t = Timestamp(t.millis() + 1000);
            // A poll every second keeps the samples fresh.
            let mut p = poll(d2, "2026-12-05T02:00", true);
            p.ts = t;
            let mut p1 = poll(d1, "2026-12-05T02:00", true);
            p1.ts = t;
            assert!(
                e.on_poll(&p1).is_empty(),
                "door1 stays raised, no new event"
            );
            for ev in e.on_poll(&p).into_iter().chain(e.tick(t)) {
                raised.get_or_insert((ev.device.clone(), ev.level, t));
            }
        }
        let (dev, level, when) = raised.expect("door2 raised after 5 min");
        assert_eq!((&*dev, level), ("door2", Level::Normal));
        assert_eq!(when, at("2026-12-05T02:05"));
        // Closing clears at once.
        let ev = e.on_poll(&poll(d1, "2026-12-05T02:06", false));
        assert_eq!(ev[0].state, crate::model::AlarmState::Cleared);
        // Friday 10:00, inside the window: an opening of 2 min raises nothing.
        assert!(e.on_poll(&poll(d1, "2026-12-04T10:00", true)).is_empty());
        assert!(e.on_poll(&poll(d1, "2026-12-04T10:02", true)).is_empty());
        assert!(
            e.pending().iter().any(|p| &*p.device == "door1"),
            "open inside: pending"
        );
        assert!(
            e.on_poll(&poll(d1, "2026-12-04T10:02:30", false))
                .is_empty()
        );
    }

    #[test]
    fn an_alarm_restored_after_a_restart_holds_until_the_door_closes() {
        let (mut e, devs) = engine(SITE);
        let d1 = &devs[0];
        let ev = e.on_poll(&poll(d1, "2026-12-05T02:00", true));
        assert_eq!(ev[0].level, Level::Serious);
        let listed = e.active();
        // A new engine (a restart) given the listed alarm back from the journal.
        let (mut e, _) = engine(SITE);
        e.restore(
            listed
                .into_iter()
                .map(|a| crate::rules::engine::Restored {
                    device: a.device,
                    rule: a.rule,
                    level: a.level,
                    since: a.since,
                    id: a.id,
                    value: a.value,
                    threshold: a.threshold,
                    message: a.message,
                    no: a.no,
                    acked: None,
                    condition: true,
                    shelved: None,
                    cause: None,
                })
                .collect(),
        );
        // Monday 08:30, inside the window, the door still open: no clear, no new wait.
        assert!(e.on_poll(&poll(d1, "2026-12-07T08:30", true)).is_empty());
        assert!(e.on_poll(&poll(d1, "2026-12-07T08:36", true)).is_empty());
        let ev = e.on_poll(&poll(d1, "2026-12-07T08:37", false));
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (&*ev[0].rule, ev[0].state),
            ("door_open", crate::model::AlarmState::Cleared)
        );
    }

    #[test]
    fn a_bad_window_or_override_is_a_clear_config_error() {
        let text = SITE.replace("target = \"room:server1\"", "target = \"room:lab\"");
        let e = crate::config::parse(&text, "site.toml", std::path::Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("site.toml:10:10: access_windows[0] .target: unknown room \"lab\""),
            "{e}"
        );
        let text = SITE.replace("[rules.door_open]", "[rules.comm_lost]");
        let e = crate::config::parse(&text, "site.toml", std::path::Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`outside_level` does not apply"), "{e}");
    }
}
