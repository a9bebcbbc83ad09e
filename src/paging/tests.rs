//! Paging timelines with an injected clock: who gets what, when, until acknowledged.

use std::sync::Arc;
use std::time::Duration;

use super::config::{Person, Shift, Step, StepTo};
use super::engine::What;
use super::*;
use crate::model::{AlarmEvent, AlarmState, EventDetail, Kind, Language, Level, Timestamp};
use crate::schedule::Schedule;
use crate::texts::time::SiteTime;

/// 2026-12-07 (a Monday) 00:00 UTC = 07:00 in Ho Chi Minh City.
const MON_07: i64 = 1_796_601_600_000;

fn t(min: f64) -> Timestamp {
    Timestamp(MON_07 + (min * 60_000.0) as i64)
}

fn person(id: &str, phone: &str, lang: Language, role: Option<&str>) -> Person {
    Person {
        id: id.into(),
        name: format!("Name {id}"),
        phone: phone.into(),
        language: lang,
        role: role.map(str::to_string),
        sms: true,
        call: true,
    }
}

fn sched(s: &[&str]) -> Schedule {
    Schedule::parse(s).unwrap()
}

/// an: day shift 07:00–19:00 on weekdays, binh: nights; chi: the lead.
fn cfg() -> PagingConfig {
    let mut c = PagingConfig::with_people(vec![
        person("an", "+84900000001", Language::Vi, None),
        person("binh", "+84900000002", Language::En, None),
        person("chi", "+84900000003", Language::Vi, Some("lead")),
    ]);
    c.shifts = vec![
        Shift {
            person: 0,
            when: sched(&["Mon-Fri 07:00-19:00"]),
            holidays: false,
        },
        Shift {
            person: 1,
            when: sched(&["daily 19:00-07:00", "Sat,Sun 07:00-19:00"]),
            holidays: true,
        },
    ];
    c.escalate = vec![
        Step {
            after: Duration::from_secs(15 * 60),
            to: StepTo::Next,
        },
        Step {
            after: Duration::from_secs(45 * 60),
            to: StepTo::Role("lead".into()),
        },
    ];
    c
}

fn time() -> SiteTime {
    SiteTime::new("Asia/Ho_Chi_Minh").unwrap()
}

fn pager(c: PagingConfig) -> Pager {
    Pager::new(Arc::new(c), time(), Language::Vi, "gw1")
}

fn event(no: u64, device: &str, level: Level, state: AlarmState, at: Timestamp) -> AlarmEvent {
    AlarmEvent {
        id: format!("ev-{no}-{}", at.0),
        seq: no,
        ts: at,
        site: Arc::from("tv"),
        device: Arc::from(device),
        kind: Kind::Ups,
        room: Arc::from("r1"),
        point: "on_battery",
        rule: Arc::from("on_battery"),
        level,
        state,
        value: Some(crate::model::Value::Bool(true)),
        threshold: None,
        message: format!("UPS {device} chạy bằng ắc quy (Điều 10.5)"),
        detail: EventDetail {
            no,
            name: device.into(),
            listed: true,
            ..Default::default()
        },
    }
}

/// Run a timeline: (minute, input) → the notices as `(minute, what, person, attempt)`.
enum In {
    Ev(AlarmEvent, bool),
}

fn run(p: &mut Pager, inputs: Vec<(f64, In)>, until: f64) -> Vec<(f64, What, String, u32)> {
    let mut out = Vec::new();
    let mut inputs = inputs.into_iter().peekable();
    let mut m = 0.0;
    while m <= until {
        while inputs.peek().is_some_and(|(at, _)| *at <= m) {
            let (_, i) = inputs.next().unwrap();
            let In::Ev(ev, trap) = i;
            let o = p.on_event(&ev, trap, t(m));
            out.extend(
                o.notices
                    .into_iter()
                    .map(|n| (m, n.what, n.person, n.attempt)),
            );
        }
        let o = p.tick(t(m));
        out.extend(
            o.notices
                .into_iter()
                .map(|n| (m, n.what, n.person, n.attempt)),
        );
        m += 1.0 / 60.0 * 30.0; // 30 s steps
        m = (m * 2.0).round() / 2.0;
    }
    out
}

fn raised(no: u64, level: Level, at: f64) -> In {
    In::Ev(event(no, "ups1", level, AlarmState::Raised, t(at)), false)
}

#[test]
fn the_roster_says_who_is_on_call_now_and_next() {
    let c = cfg();
    let tz = time();
    // Monday 07:00 local: an's day shift.
    let r = roster::report(&c, t(0.0), &tz);
    assert_eq!(r.now.as_ref().unwrap().person, "an");
    let next = r.next.unwrap();
    assert_eq!(next.person, "binh");
    assert_eq!(next.from.as_deref(), Some("2026-12-07T19:00:00.000+07:00"));
    // Monday 20:00 local: binh; next an at Tuesday 07:00.
    let r = roster::report(&c, t(13.0 * 60.0), &tz);
    assert_eq!(r.now.unwrap().person, "binh");
    assert_eq!(
        r.next.unwrap().from.as_deref(),
        Some("2026-12-08T07:00:00.000+07:00")
    );
    assert!(r.gaps.is_empty(), "{:?}", r.gaps);
}

#[test]
fn holidays_overrides_rotations_and_the_fallback() {
    let tz = time();
    let mut c = cfg();
    // Monday is a holiday: the office-hours shift does not hold, binh's does not cover
    // the day → a gap, the fallback (chi) is paged.
    c.holidays = sched(&["2026-12-07"]);
    assert!(roster::covered(&c, t(60.0), &tz).is_none());
    assert_eq!(roster::on_call(&c, t(60.0), &tz), None);
    let gaps = roster::gaps(&c, t(0.0), &tz, 2);
    assert_eq!(
        gaps,
        vec!["Mon 2026-12-07 07:00 – Mon 2026-12-07 19:00".to_string()]
    );
    c.fallback = Some(2);
    let o = roster::on_call(&c, t(60.0), &tz).unwrap();
    assert_eq!((o.person, o.source), (2, roster::Source::Fallback));
    // An override wins over everything.
    c.overrides = vec![Shift {
        person: 1,
        when: sched(&["2026-12-07 08:00-09:00"]),
        holidays: true,
    }];
    let o = roster::on_call(&c, t(90.0), &tz).unwrap();
    assert_eq!((o.person, o.source), (1, roster::Source::Override));
    // A rotation: an and binh take weekly turns from Monday 08:00.
    let mut c = cfg();
    c.shifts.clear();
    c.rotations = vec![config::Rotation {
        people: vec![0, 1],
        start: "2026-12-07 08:00".parse().unwrap(),
        every_days: 7,
        when: Schedule::default(),
    }];
    assert_eq!(
        roster::on_call(&c, t(59.0), &tz),
        None,
        "before the first turn"
    );
    assert_eq!(roster::on_call(&c, t(61.0), &tz).unwrap().person, 0);
    assert_eq!(
        roster::on_call(&c, t(7.0 * 1440.0 + 61.0), &tz)
            .unwrap()
            .person,
        1
    );
    assert_eq!(
        roster::on_call(&c, t(14.0 * 1440.0 + 61.0), &tz)
            .unwrap()
            .person,
        0
    );
}

#[test]
fn a_serious_alarm_escalates_until_acknowledged() {
    let mut p = pager(cfg());
    let got = run(
        &mut p,
        vec![
            (0.0, raised(7, Level::Serious, 0.0)),
            (
                50.0,
                In::Ev(
                    event(7, "ups1", Level::Serious, AlarmState::Acked, t(50.0)),
                    false,
                ),
            ),
        ],
        90.0,
    );
    let want: Vec<(f64, What, &str, u32)> = vec![
        (0.0, What::Page, "an", 1),
        (5.0, What::Repeat, "an", 2),
        (5.0, What::Call, "an", 3),
        (10.0, What::Repeat, "an", 4),
        (15.0, What::Escalation, "binh", 1),
        (15.0, What::Repeat, "an", 5),
        (20.0, What::Repeat, "an", 6),
        (20.0, What::Repeat, "binh", 2),
        (20.0, What::Call, "binh", 3),
        (25.0, What::Repeat, "an", 7),
        (25.0, What::Repeat, "binh", 4),
        (30.0, What::Repeat, "an", 8),
        (30.0, What::Repeat, "binh", 5),
        (35.0, What::Repeat, "an", 9),
        (35.0, What::Repeat, "binh", 6),
        (40.0, What::Repeat, "an", 10),
        (40.0, What::Repeat, "binh", 7),
        (45.0, What::Escalation, "chi", 1),
        (45.0, What::Repeat, "an", 11),
        (45.0, What::Repeat, "binh", 8),
    ];
    let got: Vec<(f64, What, &str, u32)> = got
        .iter()
        .map(|(m, w, p, a)| (*m, *w, p.as_str(), *a))
        .collect();
    // The hourly limit (10) holds some of an's repeats: compare what went out.
    let an_texts = got
        .iter()
        .filter(|x| x.2 == "an" && x.1 != What::Call)
        .count();
    assert!(
        an_texts <= 10,
        "at most 10 texts an hour to one person: {got:?}"
    );
    for w in &want {
        if w.2 == "an" && w.1 == What::Repeat && w.3 > 10 {
            continue;
        }
        assert!(got.contains(w), "missing {w:?} in {got:?}");
    }
    assert!(
        got.iter().all(|x| x.0 < 50.0),
        "nothing after the acknowledgement: {got:?}"
    );
    assert!(p.paging().is_empty());
}

#[test]
fn a_clear_stops_escalation_and_is_told_to_whoever_was_texted() {
    let mut p = pager(cfg());
    let got = run(
        &mut p,
        vec![
            (0.0, raised(3, Level::Serious, 0.0)),
            (
                16.0,
                In::Ev(
                    event(3, "ups1", Level::Serious, AlarmState::Cleared, t(16.0)),
                    false,
                ),
            ),
        ],
        60.0,
    );
    let clears: Vec<_> = got
        .iter()
        .filter(|x| x.1 == What::Clear)
        .map(|x| x.2.as_str())
        .collect();
    assert_eq!(clears, vec!["an", "binh"]);
    assert!(got.iter().all(|x| x.0 <= 16.0), "{got:?}");
}

#[test]
fn a_normal_alarm_is_one_text_and_waits_for_the_end_of_quiet_hours() {
    let mut c = cfg();
    c.quiet_hours = sched(&["daily 06:00-08:00"]);
    let mut p = pager(c);
    let got = run(&mut p, vec![(0.0, raised(4, Level::Normal, 0.0))], 120.0);
    // Raised at 07:00 local inside quiet hours: one text at 08:00, nothing else.
    assert_eq!(got, vec![(60.0, What::Page, "an".to_string(), 1)]);
    let mut c = cfg();
    c.page_normal = false;
    let mut p = pager(c);
    assert!(run(&mut p, vec![(0.0, raised(4, Level::Normal, 0.0))], 30.0).is_empty());
}

#[test]
fn maintenance_shelved_and_children_of_a_link_alarm_are_not_paged() {
    let mut p = pager(cfg());
    let mut m = event(1, "ups1", Level::Serious, AlarmState::Raised, t(0.0));
    m.detail.in_maintenance = true;
    let mut child = event(2, "ups2", Level::Serious, AlarmState::Raised, t(0.0));
    child.detail.cause = Some("link-sw1".into());
    let got = run(
        &mut p,
        vec![
            (0.0, In::Ev(m, false)),
            (0.0, In::Ev(child, false)),
            (0.0, raised(3, Level::Serious, 0.0)),
            (
                1.0,
                In::Ev(
                    event(3, "ups1", Level::Serious, AlarmState::Shelved, t(1.0)),
                    false,
                ),
            ),
        ],
        30.0,
    );
    assert_eq!(got, vec![(0.0, What::Page, "an".to_string(), 1)]);
}

#[test]
fn a_trap_is_paged_when_the_poll_agrees_not_when_it_contradicts_and_after_the_timeout() {
    let mut p = pager(cfg());
    let trap = |no, dev: &str| {
        In::Ev(
            event(no, dev, Level::Serious, AlarmState::Raised, t(0.0)),
            true,
        )
    };
    let mut out = Vec::new();
    for (m, i) in [
        (0.0, trap(1, "ups1")),
        (0.0, trap(2, "ups2")),
        (0.0, trap(3, "ups3")),
    ] {
        let In::Ev(ev, tr) = i;
        out.push(p.on_event(&ev, tr, t(m)));
    }
    assert!(
        out.iter().all(|o| o.notices.is_empty()),
        "nothing before the confirming poll"
    );
    // ups1: the poll agrees.
    let o = p.confirmed("ups1", t(0.2));
    assert_eq!(o.notices.len(), 1);
    assert_eq!(o.notices[0].alarm, Some(1));
    // ups2: the poll clears it: not paged, journaled as contradicted.
    let o = p.on_event(
        &event(2, "ups2", Level::Serious, AlarmState::Cleared, t(0.2)),
        false,
        t(0.2),
    );
    assert!(o.notices.is_empty());
    assert_eq!(o.notes[0].event, "trap_contradicted");
    // ups3: no poll within 30 s: paged on the trap alone.
    assert!(p.tick(t(0.4)).notices.is_empty());
    let o = p.tick(t(0.51));
    assert_eq!(
        o.notices.iter().map(|n| n.alarm).collect::<Vec<_>>(),
        vec![Some(3)]
    );
    assert_eq!(o.notes[0].event, "trap_unconfirmed");
}

#[test]
fn a_storm_from_one_cause_is_summed_up_and_an_unrelated_serious_alarm_still_goes_out() {
    let mut c = cfg();
    c.repeat = Duration::ZERO;
    c.call_after = Duration::ZERO;
    c.escalate.clear();
    let mut p = pager(c);
    let mut inputs: Vec<(f64, In)> = (1..=50)
        .map(|no| (0.0, raised(no, Level::Serious, 0.0)))
        .collect();
    let mut other = event(99, "crac1", Level::Serious, AlarmState::Raised, t(0.5));
    other.kind = Kind::Cooling;
    inputs.push((0.5, In::Ev(other, false)));
    let got = run(&mut p, inputs, 10.0);
    let storm: Vec<_> = got
        .iter()
        .filter(|x| x.0 < 0.5 || x.1 == What::Summary)
        .collect();
    assert!(
        storm.len() <= 3,
        "50 alarms from one cause: at most 3 texts, got {storm:?}"
    );
    assert_eq!(
        got.iter().filter(|x| x.1 == What::Summary).count(),
        1,
        "{got:?}"
    );
    assert!(
        got.contains(&(0.5, What::Page, "an".to_string(), 1)),
        "the unrelated alarm at once: {got:?}"
    );
}

#[test]
fn the_hourly_limit_holds_texts_and_sends_one_and_n_more() {
    let mut c = cfg();
    c.repeat = Duration::ZERO;
    c.call_after = Duration::ZERO;
    c.escalate.clear();
    c.max_per_hour = 3;
    c.storm_max = 100;
    c.page_normal = true;
    let mut p = pager(c);
    // Normal alarms each in its own room, a minute apart.
    let inputs: Vec<(f64, In)> = (1..=6)
        .map(|no| {
            let mut e = event(no, "ups1", Level::Normal, AlarmState::Raised, t(no as f64));
            e.room = Arc::from(format!("room{no}"));
            (no as f64, In::Ev(e, false))
        })
        .collect();
    let got = run(&mut p, inputs, 70.0);
    let pages = got.iter().filter(|x| x.1 == What::Page).count();
    let summaries: Vec<_> = got.iter().filter(|x| x.1 == What::Summary).collect();
    assert_eq!(pages, 3, "{got:?}");
    assert_eq!(summaries.len(), 1, "{got:?}");
    assert!(summaries[0].0 >= 61.0, "the hour had to have room: {got:?}");
}

#[test]
fn texts_are_in_the_persons_language_and_carry_the_reply_word() {
    let mut c = cfg();
    c.shifts[0].person = 1; // binh (en) on the day shift
    let mut p = pager(c);
    let o = p.on_event(
        &event(12, "ups1", Level::Serious, AlarmState::Raised, t(0.0)),
        false,
        t(0.0),
    );
    let n = &o.notices[0];
    assert_eq!(n.person, "binh");
    assert!(
        n.text.starts_with("Serious incident #12: ups1"),
        "{}",
        n.text
    );
    assert!(
        n.text
            .ends_with("(Art. 10.5) Reply \"OK 12\" to acknowledge."),
        "the article said in English too: {}",
        n.text
    );
    let mut p = pager(cfg());
    let o = p.on_event(
        &event(12, "ups1", Level::Serious, AlarmState::Raised, t(0.0)),
        false,
        t(0.0),
    );
    assert_eq!(
        o.notices[0].text,
        "UPS ups1 chạy bằng ắc quy (Điều 10.5) Trả lời \"OK 12\" để nhận."
    );
}

#[test]
fn the_daily_test_goes_to_the_person_on_call_at_the_start_of_each_window() {
    let mut c = cfg();
    c.daily_test = sched(&["daily 09:00-09:05"]);
    let mut p = pager(c);
    let got = run(&mut p, vec![], 2.0 * 1440.0);
    let tests: Vec<_> = got
        .iter()
        .filter(|x| x.1 == What::Test)
        .map(|x| (x.0, x.2.as_str()))
        .collect();
    assert_eq!(tests, vec![(120.0, "an"), (1440.0 + 120.0, "an")]);
    assert!(p.test(Some("nobody"), t(0.0)).is_err());
    assert_eq!(
        p.test(Some("chi"), t(0.0)).unwrap().notices[0].person,
        "chi"
    );
}

#[test]
fn a_paging_table_is_validated_with_positions() {
    let text = r#"
[site]
name = "tv"

[paging]
fallback = "chi"
escalate = [ { after_min = 15, to = "next" }, { after_min = 45, to = "zed" }, { after_min = 0, to = "next" } ]

[[paging.people]]
id = "an"
phone = "0912345678"

[[paging.people]]
id = "chi"
phone = "+84912345679"
language = "fr"

[[paging.shifts]]
person = "an"
when = ["Mon-Fri 25:00-08:00"]
"#;
    let errs = crate::config::parse(text, "site.toml", std::path::Path::new("."))
        .err()
        .map(|e| e.0.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        .unwrap_or_default();
    let has = |s: &str| errs.iter().any(|e| e.contains(s));
    assert!(
        has("site.toml:11:9: paging.people[0] (an) .phone: \"0912345678\" is not an E.164 number"),
        "{errs:#?}"
    );
    assert!(
        has("paging.people[1] (chi) .language: \"fr\": use \"vi\" or \"en\""),
        "{errs:#?}"
    );
    assert!(
        has("paging.escalate[1] .to: no person \"zed\""),
        "{errs:#?}"
    );
    assert!(
        has(
            "site.toml:7:93: paging.escalate[2] .after_min: 0: an escalation step comes after the first page"
        ),
        "{errs:#?}"
    );
    assert!(has("paging.shifts[0] .when: schedule entry"), "{errs:#?}");
}

#[test]
fn a_roster_gap_is_a_config_warning_naming_the_hours_and_phones_match_by_digits() {
    let text = r#"
[site]
name = "tv"

[paging]
repeat_min = 5
call_after_min = 2.5
escalate = [ { after_min = 0.1, to = "next" } ]

[[paging.people]]
id = "an"
phone = "+84 912 345 678"

[[paging.shifts]]
person = "an"
when = ["daily 08:00-20:00"]
"#;
    let site = crate::config::parse(text, "site.toml", std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"));
    let w: Vec<String> = site.warnings.iter().map(|p| p.to_string()).collect();
    assert!(
        w.iter().any(|w| w.starts_with("site.toml:5:1: paging: the roster leaves gaps in the coming 7 days (nobody is paged then (set paging.fallback))")
            && w.contains(" 20:00 – ") && w.contains(" 08:00")),
        "{w:#?}"
    );
    let p = site.paging.unwrap();
    assert_eq!(p.repeat, Duration::from_secs(300));
    // Escalation steps in decimal minutes too (a test site's 6 s).
    assert_eq!(p.escalate[0].after, Duration::from_secs(6));
    assert_eq!(p.call_after, Duration::from_secs(150));
    assert_eq!(p.people[0].phone, "+84912345678");
    assert_eq!(p.by_phone("84912345678").map(|x| x.id.as_str()), Some("an"));
    assert!(p.by_phone("+84912345679").is_none());
    assert!(p.by_phone("").is_none());
}

#[test]
fn after_a_restart_a_standing_serious_alarm_goes_on_escalating_without_a_burst() {
    let mut p = pager(cfg());
    p.resume(
        &event(8, "ups1", Level::Serious, AlarmState::Raised, t(-30.0)),
        t(0.0),
    );
    // Normal alarms are not resumed (they were one text).
    p.resume(
        &event(9, "ups1", Level::Normal, AlarmState::Raised, t(-30.0)),
        t(0.0),
    );
    let got = run(&mut p, vec![], 16.0);
    let got: Vec<(f64, What, &str)> = got
        .iter()
        .map(|(m, w, p, _)| (*m, *w, p.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (5.0, What::Repeat, "an"),
            (5.0, What::Call, "an"),
            (10.0, What::Repeat, "an"),
            (15.0, What::Escalation, "binh"),
            (15.0, What::Repeat, "an"),
        ]
    );
    assert_eq!(p.paging(), vec![8]);
}

#[test]
fn a_step_down_to_normal_stops_the_repeats() {
    let mut p = pager(cfg());
    let got = run(
        &mut p,
        vec![
            (0.0, raised(5, Level::Serious, 0.0)),
            (3.0, raised(5, Level::Normal, 3.0)),
        ],
        30.0,
    );
    assert_eq!(got, vec![(0.0, What::Page, "an".to_string(), 1)]);
}

#[test]
fn a_rise_to_serious_pages_again_from_the_first_person() {
    let mut c = cfg();
    c.repeat = Duration::ZERO;
    c.call_after = Duration::ZERO;
    let mut p = pager(c);
    let got = run(
        &mut p,
        vec![
            (0.0, raised(6, Level::Normal, 0.0)),
            (20.0, raised(6, Level::Serious, 20.0)),
        ],
        40.0,
    );
    let got: Vec<(f64, What, &str)> = got
        .iter()
        .map(|(m, w, p, _)| (*m, *w, p.as_str()))
        .collect();
    // Normal: one text, no escalation; serious from minute 20: a text at once and the
    // first step 15 min after that.
    assert_eq!(
        got,
        vec![
            (0.0, What::Page, "an"),
            (20.0, What::Page, "an"),
            (35.0, What::Escalation, "binh")
        ]
    );
}
