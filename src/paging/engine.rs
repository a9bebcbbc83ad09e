//! The escalation engine: a pure state machine over alarm events, an injected clock
//! and the roster. It decides who is told what and when; the hub turns its
//! [`Notice`]s into notifications for the sinks and journals every one.
//!
//! Invariants:
//! - an alarm is paged when it is raised serious, or normal and normal alarms are
//!   paged (`page_normal`, `normal_rules`); never when it is in a maintenance window,
//!   shelved, or the child of a link alarm (`detail.cause` set);
//! - a serious alarm: a text to the person on call at once, again every `repeat`
//!   until acknowledged, the phone rung after `call_after`, and the escalation steps
//!   after their delay; a normal alarm: one text, no repeat, waiting for the end of
//!   the quiet hours if raised inside them;
//! - an acknowledgement or a clear stops everything for that instance; a clear is
//!   told to whoever was texted about it; after an acknowledgement nobody is paged
//!   again for that instance;
//! - an alarm raised by an SNMP trap is paged only when a later poll of the device
//!   has not cleared it (the confirming poll agrees, or cannot be made) or after
//!   `trap_confirm`; a trap the poll contradicts is not paged and is reported;
//! - every text passes the person's storm gate ([`super::storm`]); every notice
//!   carries its attempt number (per alarm and person, counting from 1).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::config::{PagingConfig, StepTo};
use super::roster;
use super::storm::{Decision, Gate};
use crate::model::{AlarmEvent, AlarmState, Language, Level, Timestamp};
use crate::texts::time::SiteTime;

/// What a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    /// The first text about an alarm to this person.
    Page,
    /// A repeated text (not acknowledged yet).
    Repeat,
    /// A text to a person an escalation step reached.
    Escalation,
    /// A ring.
    Call,
    /// The alarm cleared.
    Clear,
    /// Storm control: several alarms in one text.
    Summary,
    /// A test message.
    Test,
    /// The answer to an SMS reply.
    Reply,
}

/// A message for one person, decided by the pager.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// What it is.
    pub what: What,
    /// The person's id.
    pub person: String,
    /// Their number ("" when they take no texts: MQTT only).
    pub phone: String,
    /// Their language.
    pub lang: Language,
    /// The text in their language.
    pub text: String,
    /// The alarm instance it is about.
    pub alarm: Option<u64>,
    /// Ring instead of text.
    pub call: bool,
    /// Attempt number: the nth notice about this alarm to this person (1 for notices
    /// about no alarm).
    pub attempt: u32,
}

/// What the pager did that is not a notice but belongs in the journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// `trap_contradicted`, `trap_unconfirmed`, `nobody_on_call`, `held`,
    /// `not_paged`.
    pub event: &'static str,
    /// The alarm instance.
    pub alarm: Option<u64>,
    /// The device.
    pub device: String,
    /// Details for people.
    pub detail: String,
}

/// The pager's output for one input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Messages to send.
    pub notices: Vec<Notice>,
    /// Journal notes.
    pub notes: Vec<Note>,
}

impl Output {
    fn extend(&mut self, o: Output) {
        self.notices.extend(o.notices);
        self.notes.extend(o.notes);
    }
}

/// One alarm instance being paged.
#[derive(Debug, Clone)]
struct Page {
    no: u64,
    device: String,
    serious: bool,
    group: String,
    /// Its text in the site language (the event's message) and the parts to say it in
    /// the other language.
    event: Arc<AlarmEvent>,
    raised: Timestamp,
    /// When paging started (None: waiting for the trap's confirmation or the end of
    /// the quiet hours).
    started: Option<Timestamp>,
    /// Page only at or after this (trap confirmation timeout, quiet hours).
    wait_trap_until: Option<Timestamp>,
    wait_quiet: bool,
    /// People reached, with when they were reached and their last text.
    targets: Vec<Target>,
    steps_done: usize,
    acked: bool,
}

#[derive(Debug, Clone)]
struct Target {
    person: usize,
    since: Timestamp,
    last_text: Timestamp,
    called: bool,
    texted: bool,
}

/// The escalation engine.
pub struct Pager {
    cfg: Arc<PagingConfig>,
    time: SiteTime,
    site_lang: Language,
    gateway: String,
    pages: BTreeMap<u64, Page>,
    gates: HashMap<usize, Gate>,
    attempts: HashMap<(u64, usize), u32>,
    in_test_window: bool,
}

fn pick(lang: Language, vi: &str, en: &str) -> String {
    match lang {
        Language::Vi => vi.to_string(),
        Language::En => en.to_string(),
    }
}

impl Pager {
    /// A pager for a site.
    pub fn new(
        cfg: Arc<PagingConfig>,
        time: SiteTime,
        site_lang: Language,
        gateway: &str,
    ) -> Pager {
        Pager {
            cfg,
            time,
            site_lang,
            gateway: gateway.to_string(),
            pages: BTreeMap::new(),
            gates: HashMap::new(),
            attempts: HashMap::new(),
            in_test_window: true,
        }
    }

    /// The policy.
    pub fn config(&self) -> &PagingConfig {
        &self.cfg
    }

    /// Alarm instances being paged (not acknowledged, not cleared), by number.
    pub fn paging(&self) -> Vec<u64> {
        self.pages
            .values()
            .filter(|p| !p.acked)
            .map(|p| p.no)
            .collect()
    }

    fn wants(&self, ev: &AlarmEvent) -> bool {
        match ev.level {
            Level::Serious => true,
            Level::Normal => {
                self.cfg.page_normal
                    && (self.cfg.normal_rules.is_empty()
                        || self.cfg.normal_rules.iter().any(|r| **r == *ev.rule))
            }
        }
    }

    /// An alarm event (after the hub marked maintenance). `from_trap`: the event came
    /// from a poll an SNMP trap made.
    pub fn on_event(&mut self, ev: &AlarmEvent, from_trap: bool, now: Timestamp) -> Output {
        let mut out = Output::default();
        let no = ev.detail.no;
        if no == 0 {
            return out;
        }
        match ev.state {
            AlarmState::Raised => {
                let skip = if ev.detail.in_maintenance {
                    Some("in a maintenance window")
                } else if ev.detail.cause.is_some() {
                    Some("a consequence of a link alarm (cause set)")
                } else {
                    None
                };
                if let Some(why) = skip {
                    self.drop_page(no);
                    out.notes.push(Note {
                        event: "not_paged",
                        alarm: Some(no),
                        device: ev.device.to_string(),
                        detail: why.into(),
                    });
                    return out;
                }
                if !self.wants(ev) {
                    // A step down to a normal level that is not paged: stop repeating.
                    if let Some(p) = self.pages.get_mut(&no) {
                        p.serious = false;
                    }
                    return out;
                }
                let serious = ev.level == Level::Serious;
                let group = ev
                    .detail
                    .cause
                    .clone()
                    .unwrap_or_else(|| format!("{}/{}", ev.room, ev.kind.system().as_str()));
                if let Some(p) = self.pages.get_mut(&no) {
                    // A rise of level keeps the instance and asks for a new acknowledgement.
                    let rise = serious && !p.serious;
                    p.event = Arc::new(ev.clone());
                    if !serious {
                        // A step down to normal: no more repeats, rings or steps.
                        p.serious = false;
                    }
                    if rise {
                        p.serious = true;
                        p.acked = false;
                        if p.started.is_some() {
                            // Paging starts again from the first person: the steps
                            // run again from now.
                            p.started = Some(now);
                            p.steps_done = 0;
                            p.targets.truncate(1);
                            for t in &mut p.targets {
                                t.since = now;
                                t.called = false;
                                t.texted = false;
                            }
                        }
                        out.extend(self.send_due(no, now));
                    }
                    return out;
                }
                let quiet = !serious
                    && !self.cfg.quiet_hours.is_empty()
                    && self.cfg.quiet_hours.contains(now, &self.time);
                let page = Page {
                    no,
                    device: ev.device.to_string(),
                    serious,
                    group,
                    event: Arc::new(ev.clone()),
                    raised: now,
                    started: None,
                    wait_trap_until: from_trap.then(|| now.plus(self.cfg.trap_confirm)),
                    wait_quiet: quiet,
                    targets: Vec::new(),
                    steps_done: 0,
                    acked: false,
                };
                self.pages.insert(no, page);
                if !from_trap && !quiet {
                    out.extend(self.start(no, now));
                }
            }
            AlarmState::Acked => {
                if let Some(p) = self.pages.get_mut(&no) {
                    p.acked = true;
                }
                for g in self.gates.values_mut() {
                    g.forget(no);
                }
            }
            AlarmState::Shelved => {
                self.drop_page(no);
            }
            AlarmState::Cleared => {
                if let Some(p) = self.pages.remove(&no) {
                    if p.wait_trap_until.is_some() && p.started.is_none() {
                        out.notes.push(Note {
                            event: "trap_contradicted",
                            alarm: Some(no),
                            device: p.device.clone(),
                            detail: "the poll after the trap did not find the condition: not paged"
                                .into(),
                        });
                    }
                    for g in self.gates.values_mut() {
                        g.forget(no);
                    }
                    let texted: Vec<usize> = p
                        .targets
                        .iter()
                        .filter(|t| t.texted)
                        .map(|t| t.person)
                        .collect();
                    for person in texted {
                        let text = self.clear_text(person, ev);
                        out.extend(self.text(person, &p.group, no, What::Clear, text, false, now));
                    }
                    self.attempts.retain(|(n, _), _| *n != no);
                }
            }
            AlarmState::Unshelved => {}
        }
        out
    }

    fn drop_page(&mut self, no: u64) {
        self.pages.remove(&no);
        for g in self.gates.values_mut() {
            g.forget(no);
        }
        self.attempts.retain(|(n, _), _| *n != no);
    }

    /// A poll of `device` that no trap made: the confirming poll. Alarms its trap
    /// raised and the poll did not clear are paged now.
    pub fn confirmed(&mut self, device: &str, now: Timestamp) -> Output {
        let mut out = Output::default();
        let waiting: Vec<u64> = self
            .pages
            .values()
            .filter(|p| p.device == device && p.wait_trap_until.is_some() && p.started.is_none())
            .map(|p| p.no)
            .collect();
        for no in waiting {
            if let Some(p) = self.pages.get_mut(&no) {
                p.wait_trap_until = None;
                if p.wait_quiet {
                    continue;
                }
            }
            out.extend(self.start(no, now));
        }
        out
    }

    /// Start paging `no`: the person on call.
    fn start(&mut self, no: u64, now: Timestamp) -> Output {
        let mut out = Output::default();
        let who = roster::on_call(&self.cfg, now, &self.time);
        let Some(p) = self.pages.get_mut(&no) else {
            return out;
        };
        p.started = Some(now);
        p.wait_trap_until = None;
        p.wait_quiet = false;
        match who {
            Some(o) => p.targets.push(Target { person: o.person, since: now, last_text: now, called: false, texted: false }),
            None => out.notes.push(Note {
                event: "nobody_on_call",
                alarm: Some(no),
                device: p.device.clone(),
                detail: "nobody is on call and no fallback is set: only the escalation steps can reach someone".into(),
            }),
        }
        out.extend(self.send_due(no, now));
        out
    }

    /// Texts to targets not texted yet.
    fn send_due(&mut self, no: u64, now: Timestamp) -> Output {
        let mut out = Output::default();
        let Some(p) = self.pages.get(&no) else {
            return out;
        };
        let (group, serious) = (p.group.clone(), p.serious);
        let escalated_from = p.targets.first().map(|t| t.person);
        // Whole minutes as configured (15); a step under a minute (a test site's
        // `after_min = 0.1`) to a tenth.
        let minutes = crate::model::fmt_number(
            p.started
                .map_or(0.0, |s| (now.secs_since(s) / 6.0).round() / 10.0),
        );
        let fresh: Vec<(usize, bool)> = p
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.texted)
            .map(|(i, t)| (t.person, i > 0))
            .collect();
        for (person, escalation) in fresh {
            let mut text = self.alarm_text(person, no);
            let what = if escalation {
                let lang = self.cfg.people[person].language;
                let first = escalated_from
                    .map(|i| self.cfg.people[i].name.clone())
                    .unwrap_or_default();
                text = format!(
                    "{} {text}",
                    pick(
                        lang,
                        &format!("Chuyển cấp: {first} chưa nhận sau {minutes} phút."),
                        &format!("Escalated: {first} has not acknowledged in {minutes} min."),
                    )
                );
                What::Escalation
            } else {
                What::Page
            };
            out.extend(self.text(person, &group, no, what, text, serious, now));
            if let Some(p) = self.pages.get_mut(&no)
                && let Some(t) = p.targets.iter_mut().find(|t| t.person == person)
            {
                t.texted = true;
                t.last_text = now;
            }
        }
        out
    }

    /// Offer a text to the person's gate; a notice if it goes out now.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        person: usize,
        group: &str,
        no: u64,
        what: What,
        text: String,
        urgent: bool,
        now: Timestamp,
    ) -> Output {
        let mut out = Output::default();
        let cfg = self.cfg.clone();
        let gate = self.gates.entry(person).or_default();
        let limits = super::storm::Limits {
            window: cfg.storm_window,
            storm_max: cfg.storm_max,
            per_hour: cfg.max_per_hour,
        };
        match gate.offer(
            group,
            no,
            urgent && matches!(what, What::Page | What::Escalation),
            now,
            limits,
        ) {
            Decision::Send => out
                .notices
                .push(self.notice(person, Some(no), what, text, false)),
            d => out.notes.push(Note {
                event: "held",
                alarm: Some(no),
                device: String::new(),
                detail: format!(
                    "text to {} held ({})",
                    cfg.people[person].id,
                    if d == Decision::HeldForStorm {
                        "storm: summed up at the end of the window"
                    } else {
                        "hourly limit: summed up later"
                    }
                ),
            }),
        }
        out
    }

    fn notice(
        &mut self,
        person: usize,
        alarm: Option<u64>,
        what: What,
        text: String,
        call: bool,
    ) -> Notice {
        let p = &self.cfg.people[person];
        let attempt = match alarm {
            Some(no) => {
                let a = self.attempts.entry((no, person)).or_insert(0);
                *a += 1;
                *a
            }
            None => 1,
        };
        Notice {
            what,
            person: p.id.clone(),
            phone: if p.sms || call {
                p.phone.clone()
            } else {
                String::new()
            },
            lang: p.language,
            text,
            alarm,
            call,
            attempt,
        }
    }

    /// The alarm's text for a person, with how to acknowledge.
    fn alarm_text(&self, person: usize, no: u64) -> String {
        let lang = self.cfg.people[person].language;
        let Some(p) = self.pages.get(&no) else {
            return String::new();
        };
        let body = self.event_text(&p.event, lang);
        format!(
            "{body} {}",
            pick(
                lang,
                &format!("Trả lời \"OK {no}\" để nhận."),
                &format!("Reply \"OK {no}\" to acknowledge.")
            )
        )
    }

    /// The event's message in `lang`: the event's own when it is the site's language,
    /// else said again from its parts (level, number, equipment, point, value).
    fn event_text(&self, ev: &AlarmEvent, lang: Language) -> String {
        if lang == self.site_lang {
            return ev.message.clone();
        }
        let (raised, cleared) = crate::texts::alarm::heads(ev.level, lang);
        let head = if ev.state == AlarmState::Cleared {
            cleared
        } else {
            raised
        };
        let who = crate::texts::alarm::Subject {
            id: &ev.device,
            name: &ev.detail.name,
            label: ev.detail.label.as_deref(),
            room: None,
            location: None,
        }
        .who();
        let point = crate::texts::names::point(ev.kind, ev.point, lang);
        let value = match (&ev.value, crate::points::lookup(ev.kind, ev.point)) {
            (Some(v), Some(def)) => format!(" {}", crate::texts::names::value(def, v, lang)),
            _ => String::new(),
        };
        // The article the message cites, said in this language too.
        let article = ["(Điều ", "(Art. "]
            .iter()
            .find_map(|w| {
                ev.message
                    .rsplit_once(w)
                    .map(|(_, a)| a.trim_end_matches(')'))
            })
            .filter(|a| !a.is_empty() && !a.contains(' '))
            .map(|a| match lang {
                Language::Vi => format!(" (Điều {a})"),
                Language::En => format!(" (Art. {a})"),
            })
            .unwrap_or_default();
        format!(
            "{head} #{}: {who} — {point}{value}; {}{article}",
            ev.detail.no,
            self.time.at(ev.ts, lang)
        )
    }

    fn clear_text(&self, person: usize, ev: &AlarmEvent) -> String {
        self.event_text(ev, self.cfg.people[person].language)
    }

    /// The 1 s tick: trap confirmations that timed out, quiet hours that ended,
    /// repeats, calls, escalation steps, storm summaries, the daily test.
    pub fn tick(&mut self, now: Timestamp) -> Output {
        let mut out = Output::default();
        let nos: Vec<u64> = self.pages.keys().copied().collect();
        for no in nos {
            let Some(p) = self.pages.get(&no) else {
                continue;
            };
            if p.started.is_none() {
                let trap_due = p.wait_trap_until.is_some_and(|t| now >= t);
                let quiet_over = p.wait_quiet && !self.cfg.quiet_hours.contains(now, &self.time);
                if trap_due {
                    out.notes.push(Note {
                        event: "trap_unconfirmed",
                        alarm: Some(no),
                        device: p.device.clone(),
                        detail: format!(
                            "no confirming poll within {} s: paged on the trap alone",
                            self.cfg.trap_confirm.as_secs()
                        ),
                    });
                    if let Some(p) = self.pages.get_mut(&no) {
                        p.wait_trap_until = None;
                    }
                }
                let p = &self.pages[&no];
                if p.wait_trap_until.is_none() && (!p.wait_quiet || quiet_over) {
                    out.extend(self.start(no, now));
                }
                continue;
            }
            if p.acked || !p.serious {
                continue;
            }
            out.extend(self.escalate(no, now));
            out.extend(self.repeat_and_call(no, now));
        }
        // Storm summaries.
        let cfg = self.cfg.clone();
        let people: Vec<usize> = self.gates.keys().copied().collect();
        for person in people {
            let due = self
                .gates
                .get_mut(&person)
                .map(|g| g.due(now, cfg.storm_window, cfg.max_per_hour))
                .unwrap_or_default();
            for d in due {
                let alarms: Vec<u64> = d
                    .alarms
                    .iter()
                    .copied()
                    .filter(|no| self.pages.get(no).is_some_and(|p| !p.acked))
                    .collect();
                if alarms.is_empty() {
                    continue;
                }
                let lang = cfg.people[person].language;
                let list = alarms
                    .iter()
                    .map(|n| format!("#{n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let text = match &d.group {
                    Some(g) => pick(
                        lang,
                        &format!(
                            "Nhiều cảnh báo cùng lúc ({g}): thêm {} cảnh báo {list}. Trả lời \"OK <số>\" cho từng cảnh báo.",
                            alarms.len()
                        ),
                        &format!(
                            "Alarm storm ({g}): {} more alarms {list}. Reply \"OK <no>\" to each.",
                            alarms.len()
                        ),
                    ),
                    None => pick(
                        lang,
                        &format!(
                            "Và {} cảnh báo khác chưa báo (giới hạn tin mỗi giờ): {list}.",
                            alarms.len()
                        ),
                        &format!(
                            "And {} more alarms not texted (hourly limit): {list}.",
                            alarms.len()
                        ),
                    ),
                };
                let mut n = self.notice(person, None, What::Summary, text, false);
                n.alarm = alarms.first().copied();
                out.notices.push(n);
                for no in &alarms {
                    if let Some(p) = self.pages.get_mut(no) {
                        for t in p.targets.iter_mut().filter(|t| t.person == person) {
                            t.texted = true;
                        }
                    }
                }
            }
        }
        // The daily test: at the start of each window.
        if !self.cfg.daily_test.is_empty() {
            let inside = self.cfg.daily_test.contains(now, &self.time);
            if inside && !self.in_test_window {
                out.extend(self.test(None, now).unwrap_or_default());
            }
            self.in_test_window = inside;
        }
        out
    }

    fn escalate(&mut self, no: u64, now: Timestamp) -> Output {
        let Some(p) = self.pages.get(&no) else {
            return Output::default();
        };
        let Some(started) = p.started else {
            return Output::default();
        };
        let mut added = false;
        let mut steps_done = p.steps_done;
        let mut new_targets = Vec::new();
        while let Some(step) = self.cfg.escalate.get(steps_done) {
            if now.secs_since(started) < step.after.as_secs_f64() {
                break;
            }
            steps_done += 1;
            let people: Vec<usize> = match &step.to {
                StepTo::Person(i) => vec![*i],
                StepTo::Next => roster::next_person(&self.cfg, started, &self.time)
                    .into_iter()
                    .collect(),
                StepTo::Role(r) => self
                    .cfg
                    .people
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| x.role.as_deref() == Some(r.as_str()))
                    .map(|(i, _)| i)
                    .collect(),
            };
            for person in people {
                if !p.targets.iter().any(|t| t.person == person) && !new_targets.contains(&person) {
                    new_targets.push(person);
                    added = true;
                }
            }
        }
        let p = self.pages.get_mut(&no).expect("page present");
        p.steps_done = steps_done;
        for person in new_targets {
            p.targets.push(Target {
                person,
                since: now,
                last_text: now,
                called: false,
                texted: false,
            });
        }
        if added {
            self.send_due(no, now)
        } else {
            Output::default()
        }
    }

    fn repeat_and_call(&mut self, no: u64, now: Timestamp) -> Output {
        let mut out = Output::default();
        let cfg = self.cfg.clone();
        let Some(p) = self.pages.get(&no) else {
            return out;
        };
        let group = p.group.clone();
        let targets = p.targets.clone();
        for t in targets {
            if !cfg.repeat.is_zero()
                && t.texted
                && now.secs_since(t.last_text) >= cfg.repeat.as_secs_f64()
            {
                let lang = cfg.people[t.person].language;
                let n = self.attempts.get(&(no, t.person)).copied().unwrap_or(0) + 1;
                let text = format!(
                    "{} {}",
                    pick(
                        lang,
                        &format!("Nhắc lại (lần {n}):"),
                        &format!("Reminder ({n}):")
                    ),
                    self.alarm_text(t.person, no)
                );
                out.extend(self.text(t.person, &group, no, What::Repeat, text, false, now));
                if let Some(p) = self.pages.get_mut(&no)
                    && let Some(x) = p.targets.iter_mut().find(|x| x.person == t.person)
                {
                    x.last_text = now;
                }
            }
            if !cfg.call_after.is_zero()
                && !t.called
                && cfg.people[t.person].call
                && now.secs_since(t.since) >= cfg.call_after.as_secs_f64()
            {
                if let Some(p) = self.pages.get_mut(&no)
                    && let Some(x) = p.targets.iter_mut().find(|x| x.person == t.person)
                {
                    x.called = true;
                }
                let may = self
                    .gates
                    .entry(t.person)
                    .or_default()
                    .call(now, cfg.storm_window);
                if may {
                    let lang = cfg.people[t.person].language;
                    let text = pick(
                        lang,
                        &format!("Cuộc gọi báo cảnh báo #{no} chưa được nhận."),
                        &format!("Call about unacknowledged alarm #{no}."),
                    );
                    out.notices
                        .push(self.notice(t.person, Some(no), What::Call, text, true));
                }
            }
        }
        out
    }

    /// A test message to `person` (by id), or to the person on call. `Err` names why
    /// nobody can be sent one.
    pub fn test(&mut self, person: Option<&str>, now: Timestamp) -> Result<Output, String> {
        let i = match person.filter(|p| !p.trim().is_empty()) {
            Some(id) => self
                .cfg
                .people
                .iter()
                .position(|p| p.id == id.trim())
                .ok_or_else(|| format!("no person {id:?} in the roster"))?,
            None => roster::on_call(&self.cfg, now, &self.time)
                .map(|o| o.person)
                .ok_or("nobody is on call")?,
        };
        let lang = self.cfg.people[i].language;
        let text = pick(
            lang,
            &format!(
                "Tin nhắn thử từ dc-gateway {} lúc {}: đường báo tin hoạt động. Không cần trả lời.",
                self.gateway,
                self.time.human(now, lang)
            ),
            &format!(
                "Test message from dc-gateway {} at {}: the paging path works. No reply needed.",
                self.gateway,
                self.time.human(now, lang)
            ),
        );
        let n = self.notice(i, None, What::Test, text, false);
        Ok(Output {
            notices: vec![n],
            notes: Vec::new(),
        })
    }

    /// The answer to an SMS reply from `person` (by id), in their language.
    pub fn answer(&mut self, person: &str, text_vi: &str, text_en: &str) -> Option<Notice> {
        let i = self.cfg.people.iter().position(|p| p.id == person)?;
        let lang = self.cfg.people[i].language;
        let text = pick(lang, text_vi, text_en);
        let mut n = self.notice(i, None, What::Reply, text, false);
        // An answer is a text even for people who take MQTT only: they wrote by SMS.
        n.phone = self.cfg.people[i].phone.clone();
        Some(n)
    }

    /// A serious alarm still standing and not acknowledged when the gateway started
    /// (restored from the journal): its paging resumes without a new text — the person
    /// on call is taken as told now, so repeats, the ring and the escalation steps go
    /// on from here instead of a burst of texts at every restart.
    pub fn resume(&mut self, ev: &AlarmEvent, now: Timestamp) {
        if ev.level != Level::Serious || ev.detail.no == 0 || ev.detail.shelved_until.is_some() {
            return;
        }
        let who = roster::on_call(&self.cfg, now, &self.time);
        let group = ev
            .detail
            .cause
            .clone()
            .unwrap_or_else(|| format!("{}/{}", ev.room, ev.kind.system().as_str()));
        self.pages.insert(
            ev.detail.no,
            Page {
                no: ev.detail.no,
                device: ev.device.to_string(),
                serious: true,
                group,
                event: Arc::new(ev.clone()),
                raised: ev.ts,
                started: Some(now),
                wait_trap_until: None,
                wait_quiet: false,
                targets: who
                    .map(|o| Target {
                        person: o.person,
                        since: now,
                        last_text: now,
                        called: false,
                        texted: true,
                    })
                    .into_iter()
                    .collect(),
                steps_done: 0,
                acked: false,
            },
        );
    }

    /// When the alarm was raised (tests, the API).
    pub fn raised_at(&self, no: u64) -> Option<Timestamp> {
        self.pages.get(&no).map(|p| p.raised)
    }
}
