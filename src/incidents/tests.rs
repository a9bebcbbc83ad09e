//! Incidents over an injected clock: opening after `open_after`, joining, the 24-hour
//! deadline and reminders, closing rules, restart, the draft's timeline.

use std::sync::Arc;
use std::time::Duration;

use super::report::{Context, draft, span, timeline};
use super::*;
use crate::journal::{Journal, NewEntry, Options};
use crate::model::{AlarmEvent, AlarmState, EventDetail, Kind, Language, Level, Timestamp};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// 2026-11-25T08:00:00Z
const T0: i64 = 1_795_593_600_000;

fn ev(
    device: &str,
    kind: Kind,
    rule: &str,
    level: Level,
    state: AlarmState,
    ts: i64,
    no: u64,
) -> AlarmEvent {
    AlarmEvent {
        id: format!("e-{device}-{rule}-{ts}"),
        seq: 0,
        ts: Timestamp(ts),
        site: Arc::from("s"),
        device: Arc::from(device),
        kind,
        room: Arc::from("r1"),
        point: "on_battery",
        rule: Arc::from(rule),
        level,
        state,
        value: None,
        threshold: None,
        message: format!("{device} {rule}"),
        detail: EventDetail {
            no,
            ..Default::default()
        },
    }
}

fn incidents(toml: &str) -> Incidents {
    let text = format!("[site]\nname = \"s\"\n{toml}");
    let site = crate::config::parse(&text, "site.toml", std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"));
    Incidents::new(site.incidents, Arc::from("gw1"))
}

fn run_ticks(inc: &mut Incidents, from: i64, to: i64, step: i64) -> Vec<(i64, Change)> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        for c in inc.tick(Timestamp(t)) {
            out.push((t, c));
        }
        t += step;
    }
    out
}

#[test]
fn serious_alarm_for_ten_minutes_opens_an_incident_due_in_24_hours_with_reminders() {
    let mut inc = incidents("[incidents]\nopen_after = \"10m\"\nreminders = [\"12h\", \"2h\"]\n");
    let mut evs = vec![ev(
        "ups1",
        Kind::Ups,
        "on_battery",
        Level::Serious,
        AlarmState::Raised,
        T0,
        7,
    )];
    assert!(inc.on_events(&mut evs).is_empty());
    assert_eq!(evs[0].detail.incident, None);
    // Nothing before 10 min.
    assert!(inc.tick(Timestamp(T0 + 10 * MIN - 1000)).is_empty());
    let ch = inc.tick(Timestamp(T0 + 10 * MIN));
    let [Change::Opened(i)] = ch.as_slice() else {
        panic!("{ch:?}")
    };
    assert_eq!(i.id, "SC-1");
    assert_eq!(i.opened_at, Timestamp(T0 + 10 * MIN));
    assert_eq!(i.first_alarm_at, Timestamp(T0));
    assert_eq!(i.deadline, Timestamp(T0 + 10 * MIN + 24 * HOUR));
    assert_eq!(i.system, crate::model::System::Power);
    // Later events of the alarm carry the incident id.
    let mut ack = vec![ev(
        "ups1",
        Kind::Ups,
        "on_battery",
        Level::Serious,
        AlarmState::Acked,
        T0 + 11 * MIN,
        7,
    )];
    inc.on_events(&mut ack);
    assert_eq!(ack[0].detail.incident.as_deref(), Some("SC-1"));
    // Reminders exactly at deadline - 12 h and deadline - 2 h (1-minute steps).
    let opened = T0 + 10 * MIN;
    let seen: Vec<(i64, u64)> = run_ticks(&mut inc, opened, opened + 25 * HOUR, MIN)
        .into_iter()
        .filter_map(|(t, c)| match c {
            Change::Reminder { before, .. } => Some((t, before.as_secs())),
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (opened + 12 * HOUR, 12 * 3600),
            (opened + 22 * HOUR, 2 * 3600)
        ]
    );
    assert!(
        inc.get("SC-1")
            .is_some_and(|i| i.overdue(Timestamp(opened + 24 * HOUR)))
    );
}

#[test]
fn a_short_serious_alarm_or_a_normal_one_opens_nothing() {
    let mut inc = incidents("");
    let mut evs = vec![
        ev(
            "ups1",
            Kind::Ups,
            "on_battery",
            Level::Serious,
            AlarmState::Raised,
            T0,
            1,
        ),
        ev(
            "crac1",
            Kind::Cooling,
            "filter",
            Level::Normal,
            AlarmState::Raised,
            T0,
            2,
        ),
    ];
    inc.on_events(&mut evs);
    let mut clear = vec![ev(
        "ups1",
        Kind::Ups,
        "on_battery",
        Level::Serious,
        AlarmState::Cleared,
        T0 + 9 * MIN,
        1,
    )];
    inc.on_events(&mut clear);
    // A serious alarm in a maintenance window (Art. 8.3a) opens none either.
    let mut maint = vec![ev(
        "ups2",
        Kind::Ups,
        "on_battery",
        Level::Serious,
        AlarmState::Raised,
        T0,
        3,
    )];
    maint[0].detail.in_maintenance = true;
    inc.on_events(&mut maint);
    assert!(run_ticks(&mut inc, T0, T0 + 3 * HOUR, MIN).is_empty());
    assert!(inc.all().is_empty());
}

#[test]
fn a_rule_marked_incident_opens_at_once_and_same_system_alarms_join() {
    let mut inc = incidents("[incidents]\nrules = [\"fire_alarm\"]\njoin_window = \"30m\"\n");
    let mut evs = vec![ev(
        "fp1",
        Kind::FirePanel,
        "fire_alarm",
        Level::Serious,
        AlarmState::Raised,
        T0,
        1,
    )];
    let ch = inc.on_events(&mut evs);
    assert!(matches!(ch.as_slice(), [Change::Opened(_)]), "{ch:?}");
    // A leak (same system: fire & safety) qualifying 20 min later joins.
    let mut leak = vec![ev(
        "leak1",
        Kind::Leak,
        "leak",
        Level::Serious,
        AlarmState::Raised,
        T0 + 10 * MIN,
        2,
    )];
    inc.on_events(&mut leak);
    let ch = inc.tick(Timestamp(T0 + 20 * MIN));
    let [Change::Joined(i)] = ch.as_slice() else {
        panic!("{ch:?}")
    };
    assert_eq!(i.alarms.len(), 2);
    // A UPS alarm (another system) opens its own.
    let mut ups = vec![ev(
        "ups1",
        Kind::Ups,
        "on_battery",
        Level::Serious,
        AlarmState::Raised,
        T0 + 10 * MIN,
        3,
    )];
    inc.on_events(&mut ups);
    let ch = inc.tick(Timestamp(T0 + 21 * MIN));
    assert!(
        matches!(ch.as_slice(), [Change::Opened(i)] if i.id == "SC-2"),
        "{ch:?}"
    );
    // Past the join window (30 min after the last join): a new incident.
    let mut smoke = vec![ev(
        "fp2",
        Kind::FirePanel,
        "fire_alarm",
        Level::Serious,
        AlarmState::Raised,
        T0 + 51 * MIN,
        4,
    )];
    let ch = inc.on_events(&mut smoke);
    assert!(
        matches!(ch.as_slice(), [Change::Opened(i)] if i.id == "SC-3"),
        "{ch:?}"
    );
}

#[test]
fn closing_needs_a_cause_and_actions_or_a_false_alarm_reason() {
    let mut inc = incidents("[incidents]\nopen_after = \"0s\"\n");
    let mut evs = vec![ev(
        "ups1",
        Kind::Ups,
        "on_battery",
        Level::Serious,
        AlarmState::Raised,
        T0,
        1,
    )];
    inc.on_events(&mut evs);
    let now = Timestamp(T0 + HOUR);
    let by =
        |cause: Option<&str>, actions: Option<&str>, fa: bool, reason: Option<&str>| CloseRequest {
            by: "an".into(),
            cause: cause.map(str::to_string),
            actions: actions.map(str::to_string),
            false_alarm: fa,
            reason: reason.map(str::to_string),
        };
    assert_eq!(
        inc.close("SC-1", &by(None, None, false, None), now),
        Err(Error::NeedsCause("SC-1".into()))
    );
    assert_eq!(
        inc.close(
            "SC-1",
            &by(Some("mất điện lưới"), Some("  "), false, None),
            now
        ),
        Err(Error::NeedsCause("SC-1".into()))
    );
    assert_eq!(
        inc.close("SC-1", &by(None, None, true, None), now),
        Err(Error::NeedsReason("SC-1".into()))
    );
    assert_eq!(
        inc.close("SC-9", &by(Some("x"), Some("y"), false, None), now),
        Err(Error::Unknown("SC-9".into()))
    );
    let msg = inc
        .close("SC-1", &by(None, None, false, None), now)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cause") && msg.contains("false-alarm"),
        "{msg}"
    );
    let ok = inc
        .close("sc-1", &by(None, None, true, Some("cảm biến lỗi")), now)
        .unwrap();
    let c = ok.incident().closed.clone().unwrap();
    assert!(c.false_alarm);
    assert_eq!(c.reason.as_deref(), Some("cảm biến lỗi"));
    assert_eq!(
        inc.close("SC-1", &by(Some("x"), Some("y"), false, None), now),
        Err(Error::Closed("SC-1".into()))
    );
    // No reminder for a closed incident.
    assert!(run_ticks(&mut inc, T0 + HOUR, T0 + 30 * HOUR, 10 * MIN).is_empty());
}

fn journal_changes(j: &Journal, changes: &[Change], ts: i64) {
    for c in changes {
        j.append(NewEntry {
            ts: Timestamp(ts),
            kind: crate::journal::Kind::Incident,
            gateway: Arc::from("gw1"),
            device: None,
            data: journal_data(c),
        })
        .unwrap();
    }
}

fn journal_events(j: &Journal, evs: &[AlarmEvent]) {
    for e in evs {
        j.append(NewEntry {
            ts: e.ts,
            kind: crate::journal::Kind::Alarm,
            gateway: Arc::from("gw1"),
            device: Some(e.device.clone()),
            data: serde_json::to_value(e).unwrap(),
        })
        .unwrap();
    }
}

#[test]
fn incidents_survive_a_restart_and_the_draft_holds_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), Options::default()).unwrap();
    let mut inc = incidents("[incidents]\nreminders = [\"12h\", \"2h\"]\n");
    let mut raise = vec![ev(
        "ups1",
        Kind::Ups,
        "on_battery",
        Level::Serious,
        AlarmState::Raised,
        T0,
        5,
    )];
    journal_changes(&j, &inc.on_events(&mut raise), T0);
    journal_events(&j, &raise);
    let ch = inc.tick(Timestamp(T0 + 10 * MIN));
    journal_changes(&j, &ch, T0 + 10 * MIN);
    let mut ack = vec![ev(
        "ups1",
        Kind::Ups,
        "on_battery",
        Level::Serious,
        AlarmState::Acked,
        T0 + 12 * MIN,
        5,
    )];
    ack[0].detail.by = Some("an".into());
    journal_changes(&j, &inc.on_events(&mut ack), T0 + 12 * MIN);
    journal_events(&j, &ack);
    // A related normal alarm of the same device.
    let other = vec![ev(
        "ups1",
        Kind::Ups,
        "load_high",
        Level::Normal,
        AlarmState::Raised,
        T0 + 15 * MIN,
        6,
    )];
    journal_events(&j, &other);
    let mut clear = vec![ev(
        "ups1",
        Kind::Ups,
        "on_battery",
        Level::Serious,
        AlarmState::Cleared,
        T0 + 40 * MIN,
        5,
    )];
    let ch = inc.on_events(&mut clear);
    journal_events(&j, &clear);
    journal_changes(&j, &ch, T0 + 40 * MIN);
    assert_eq!(clear[0].detail.incident.as_deref(), Some("SC-1"));
    // The 12-hour reminder, then a restart.
    let opened = T0 + 10 * MIN;
    let ch = inc.tick(Timestamp(opened + 12 * HOUR));
    assert_eq!(ch.len(), 1);
    journal_changes(&j, &ch, opened + 12 * HOUR);

    let mut again = incidents("[incidents]\nreminders = [\"12h\", \"2h\"]\n");
    again.restore(&read_entries(&j).unwrap());
    assert_eq!(again.all(), inc.all());
    // The 12-hour reminder is not given twice; the 2-hour one comes once.
    let r: Vec<_> = run_ticks(&mut again, opened + 12 * HOUR, opened + 23 * HOUR, 30 * MIN);
    assert_eq!(r.len(), 1, "{r:?}");
    // Closing works on the restored incident; the next one is SC-2.
    let closed = again
        .close(
            "SC-1",
            &CloseRequest {
                by: "an".into(),
                cause: Some("Mất điện lưới".into()),
                actions: Some("Máy phát chạy, kiểm tra ATS".into()),
                ..Default::default()
            },
            Timestamp(opened + 23 * HOUR),
        )
        .unwrap();
    journal_changes(&j, &[closed], opened + 23 * HOUR);
    let i = load(&j).unwrap().into_iter().next().unwrap();
    assert_eq!(
        i.closed.as_ref().and_then(|c| c.cause.as_deref()),
        Some("Mất điện lưới")
    );

    // Timeline from the journal: raise, incident opened, ack, related alarm, clear, ..., closed.
    let (from, to) = span(&i, Timestamp(opened + 24 * HOUR));
    let entries = j
        .query(&crate::journal::Query {
            since: Some(from),
            until: Some(to),
            limit: crate::journal::MAX_LIMIT,
            ..Default::default()
        })
        .unwrap();
    let tl = timeline(&i, &entries, Language::Vi);
    let events: Vec<(&str, &str)> = tl.iter().map(|t| (t.what, t.event.as_str())).collect();
    assert_eq!(
        events,
        vec![
            ("alarm", "raised"),
            ("incident", "opened"),
            ("alarm", "acked"),
            ("alarm", "raised"),
            ("alarm", "cleared"),
            ("incident", "alarm_cleared"),
            ("incident", "reminder"),
            ("incident", "closed"),
        ]
    );
    let time = crate::texts::time::SiteTime::default();
    let name = |d: &str| (d == "ups1").then(|| "UPS phòng máy 1".to_string());
    let cx = Context {
        site_title: "Trung tâm dữ liệu tỉnh Trà Vinh",
        time: &time,
        device_name: &name,
        now: Timestamp(opened + 24 * HOUR),
    };
    let d = draft(&i, tl, &cx, Language::Vi);
    let text = d.text(&time, Language::Vi);
    for want in [
        "BÁO CÁO SỰ CỐ SC-1",
        "Điều 18.5e",
        "UPS phòng máy 1",
        "Mất điện lưới",
        "Máy phát chạy, kiểm tra ATS",
        "Cảnh báo 5 được xác nhận bởi an",
        // Local time of the first alarm (08:00Z = 15:00 +07:00).
        "15:00:00 ngày 25/11/2026",
        "đã đóng trong hạn",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
}

#[test]
fn bad_incident_settings_are_reported_with_their_place() {
    let text =
        "[site]\nname = \"s\"\n[incidents]\nopen_after = \"ten minutes\"\nreminders = [\"30h\"]\n";
    let e = crate::config::parse(text, "site.toml", std::path::Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("site.toml:4:") && e.contains("incidents.open_after"),
        "{e}"
    );
    assert!(
        e.contains("site.toml:5:") && e.contains("incidents.reminders"),
        "{e}"
    );
    assert_eq!(
        config::parse_duration("1h30m"),
        Ok(Duration::from_secs(5400))
    );
}

#[test]
fn reminders_name_people_of_the_paging_roster_at_their_place() {
    let base = "[site]\nname = \"s\"\n[incidents]\nnotify = [\"an\", \"ghost\"]\n";
    let e = crate::config::parse(base, "site.toml", std::path::Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("site.toml:4:11") && e.contains("no [paging] table"),
        "{e}"
    );
    let with_roster = format!(
        "{base}[paging]\n[[paging.people]]\nid = \"an\"\nname = \"An\"\nphone = \"+84912345678\"\n"
    );
    let e = crate::config::parse(&with_roster, "site.toml", std::path::Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("site.toml:4:17") && e.contains("\"ghost\" is not in [paging.people]"),
        "{e}"
    );
    assert!(!e.contains("\"an\" is not"), "{e}");
}
