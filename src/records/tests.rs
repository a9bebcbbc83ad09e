//! Reports for a simulated November 2026: every figure checked against the input
//! written here (worked out by hand in the comments).

use std::sync::Arc;

use super::reports::{self, Cell, Kind as RKind, Month};
use super::*;
use crate::journal::{Kind as JKind, NewEntry, Options};
use crate::model::Kind;

const MIN: i64 = 60_000;
/// 2026-11-01T00:00 +07:00 = 2026-10-31T17:00Z.
const NOV: i64 = 1_793_466_000_000;

fn site(dir: &std::path::Path) -> SiteInfo {
    let d = |id: &str, kind: Kind, room: &str| DeviceInfo {
        id: id.into(),
        name: format!("Thiết bị {id}"),
        label: Some(format!("NH-{id}")),
        kind,
        room: room.into(),
        location: Some("Tủ A1".into()),
        model: Some("M1".into()),
        serial: Some(format!("SN-{id}")),
    };
    SiteInfo {
        name: "tv".into(),
        title: "Trung tâm dữ liệu tỉnh Trà Vinh".into(),
        language: Language::Vi,
        time: Default::default(),
        rooms: vec![
            ("r1".into(), "Phòng máy chủ 1".into()),
            ("r2".into(), "Phòng máy phát".into()),
        ],
        devices: vec![
            d("th1", Kind::Climate, "r1"),
            d("ups1", Kind::Ups, "r1"),
            d("gen1", Kind::Generator, "r2"),
        ],
        state_dir: dir.to_path_buf(),
    }
}

fn alarm(j: &Journal, ts: i64, device: &str, rule: &str, level: &str, state: &str) {
    j.append(NewEntry {
        ts: Timestamp(ts),
        kind: JKind::Alarm,
        gateway: Arc::from("gw"),
        device: Some(Arc::from(device)),
        data: serde_json::json!({"device": device, "rule": rule, "level": level, "state": state, "no": 1, "message": "m"}),
    })
    .unwrap();
}

fn minutes(point: &str, start: i64, count: i64, mean: f64) -> Vec<crate::history::Row> {
    (0..count)
        .map(|i| crate::history::Row {
            device: "th1".into(),
            point: point.into(),
            ts: Timestamp(start + i * MIN),
            n: 2,
            sum: 2.0 * mean,
            min: mean - 0.5,
            mean,
            max: mean + 0.5,
        })
        .collect()
}

fn cells(r: &reports::Report, section: usize) -> Vec<Vec<Cell>> {
    r.sections[section].table.as_ref().unwrap().rows.clone()
}

fn num(c: &Cell) -> f64 {
    match c {
        Cell::Num(v) => *v,
        other => panic!("not a number: {other:?}"),
    }
}

#[test]
fn reports_of_a_simulated_month_match_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let s = site(dir.path());
    let j = Journal::open(dir.path(), Options::default()).unwrap();
    // History, 2 Nov from 00:00 local: temperature 24 for 100 min, 28 for 30, 33 for 10;
    // humidity 50 for 126 min, 70 for 14. Plus a minute in October (not counted).
    let day2 = NOV + 86_400_000;
    let mut rows = minutes("temperature_c", day2, 100, 24.0);
    rows.extend(minutes("temperature_c", day2 + 100 * MIN, 30, 28.0));
    rows.extend(minutes("temperature_c", day2 + 130 * MIN, 10, 33.0));
    rows.extend(minutes("humidity_pct", day2, 126, 50.0));
    rows.extend(minutes("humidity_pct", day2 + 126 * MIN, 14, 70.0));
    rows.extend(minutes("temperature_c", NOV - 10 * MIN, 1, 40.0));
    // The gateway's own uptime for 2 days (2880 minutes) of the month's 43 200.
    rows.extend(
        minutes("uptime_s", NOV, 2880, 1.0)
            .into_iter()
            .map(|mut r| {
                r.device = "gateway".into();
                r
            }),
    );
    {
        let mut h = crate::history::Store::open(dir.path(), Default::default()).unwrap();
        h.write(&rows).unwrap();
    }
    // Alarms: UPS serious 10 Nov 00:00 to 01:30 local (90 min); th1 normal twice; one
    // UPS serious in October (outside the month, cleared in October).
    let nov10 = NOV + 9 * 86_400_000;
    alarm(
        &j,
        NOV - 60 * MIN,
        "ups1",
        "on_battery",
        "serious",
        "raised",
    );
    alarm(
        &j,
        NOV - 30 * MIN,
        "ups1",
        "on_battery",
        "serious",
        "cleared",
    );
    alarm(&j, nov10, "ups1", "on_battery", "serious", "raised");
    alarm(
        &j,
        nov10 + 5 * MIN,
        "ups1",
        "on_battery",
        "serious",
        "acked",
    );
    alarm(
        &j,
        nov10 + 90 * MIN,
        "ups1",
        "on_battery",
        "serious",
        "cleared",
    );
    alarm(
        &j,
        day2 + 100 * MIN,
        "th1",
        "temperature_high",
        "normal",
        "raised",
    );
    alarm(
        &j,
        day2 + 140 * MIN,
        "th1",
        "temperature_high",
        "normal",
        "cleared",
    );
    alarm(
        &j,
        day2 + 200 * MIN,
        "th1",
        "humidity_high",
        "normal",
        "raised",
    );
    // An incident of the UPS alarm, opened 10 min after it, closed.
    let mut inc = crate::incidents::Incidents::new(Default::default(), Arc::from("gw"));
    inc.seed(
        Kind::Ups,
        "ups1/on_battery",
        1,
        "on_battery",
        "m",
        Timestamp(nov10),
    );
    let mut changes = inc.tick(Timestamp(nov10 + 10 * MIN));
    changes.push(
        inc.close(
            "SC-1",
            &crate::incidents::CloseRequest {
                by: "an".into(),
                cause: Some("Mất điện lưới".into()),
                actions: Some("Kiểm tra ATS".into()),
                ..Default::default()
            },
            Timestamp(nov10 + 120 * MIN),
        )
        .unwrap(),
    );
    for c in &changes {
        j.append(NewEntry {
            ts: c.incident().opened_at,
            kind: JKind::Incident,
            gateway: Arc::from("gw"),
            device: None,
            data: crate::incidents::journal_data(c),
        })
        .unwrap();
    }
    // A generator run (a test that failed), ended 15 Nov.
    let run = serde_json::json!({
        "device": "gen1", "start": NOV + 14 * 86_400_000, "end": NOV + 14 * 86_400_000 + 20 * MIN,
        "duration_s": 1200.0, "cause": "test", "start_signal": NOV + 14 * 86_400_000, "time_to_rated_s": 6.5,
        "load_kw": {"min": 30.0, "mean": 35.0, "max": 40.0}, "load_pct": {"min": 30.0, "mean": 35.0, "max": 40.0},
        "under_load_s": 1140.0, "voltage_v": [], "frequency_hz": null, "coolant_max_c": 80.0,
        "oil_pressure_min_kpa": 390.0, "battery_crank_v": 19.8, "fuel_start_pct": 80.0, "fuel_end_pct": 78.0,
        "fuel_used_l": 8.0, "engine_hours_start": 1234.5, "engine_hours_end": 1234.8, "starts": 1,
        "alarms": [], "test": true, "passed": false,
        "reasons": ["ran 19 min at or above 30 % load (at least 30 min)"],
        "reasons_vi": ["chạy 19 phút với tải từ 30 % trở lên (tối thiểu 30 phút)"]
    });
    j.append(NewEntry {
        ts: Timestamp(NOV + 14 * 86_400_000 + 20 * MIN),
        kind: JKind::GeneratorRun,
        gateway: Arc::from("gw"),
        device: Some(Arc::from("gen1")),
        data: run,
    })
    .unwrap();

    let now = Timestamp(NOV + 40 * 86_400_000); // mid-December
    let month = Month::parse("2026-11").unwrap();
    assert_eq!(month.start(&s.time), Timestamp(NOV));

    // Environment, room r1: temperature min 23.5, mean (2400+840+330)/140 = 25.5,
    // max 33.5; humidity min 49.5, mean (6300+980)/140 = 52, max 70.5; outside
    // 18–27: 40 min; outside 15–32: 10; above 60 %: 14; outside 8–80: 0; alarms
    // raised on r1's devices: 3 (UPS once, th1 twice); incidents: 1.
    let env = reports::make(RKind::Environment, &s, &j, month, Language::Vi, now).unwrap();
    let r1 = &cells(&env, 0)[0];
    assert_eq!(r1[0], Cell::Text("Phòng máy chủ 1".into()));
    let figures: Vec<f64> = r1[1..].iter().map(num).collect();
    assert_eq!(
        figures,
        vec![
            23.5, 25.5, 33.5, 49.5, 52.0, 70.5, 40.0, 10.0, 14.0, 0.0, 3.0, 1.0
        ]
    );

    // Availability, power: 90 min of 43 200 in November; six months June–November
    // (183 days = 263 520 min); twelve months Dec 2025–Nov 2026 (365 days = 525 600
    // min) also hold the October alarm of 30 min: 120 min.
    let av = reports::make(RKind::Availability, &s, &j, month, Language::En, now).unwrap();
    let rows = cells(&av, 0);
    let power = rows
        .iter()
        .find(|r| r[0] == Cell::Text("Power".into()))
        .unwrap();
    assert_eq!(num(&power[1]), 90.0);
    assert!((num(&power[2]) - (1.0 - 90.0 / 43_200.0) * 100.0).abs() < 1e-9);
    assert!((num(&power[3]) - (1.0 - 120.0 / 263_520.0) * 100.0).abs() < 1e-9);
    assert!((num(&power[4]) - (1.0 - 120.0 / 525_600.0) * 100.0).abs() < 1e-9);
    assert!(
        av.sections[0]
            .lines
            .iter()
            .any(|l| l == "The gateway was watching 2880 of the month's 43200 minutes (6.7 %)."),
        "{:?}",
        av.sections[0].lines
    );
    let climate = rows
        .iter()
        .find(|r| r[0] == Cell::Text("Climate".into()))
        .unwrap();
    assert_eq!(num(&climate[2]), 100.0);

    // Generator log: one run, failed with its reason; CSV in machine numbers.
    let g = reports::make(RKind::Generator, &s, &j, month, Language::Vi, now).unwrap();
    let row = &cells(&g, 0)[0];
    assert_eq!(row[0], Cell::Text("Thiết bị gen1 (NH-gen1)".into()));
    assert_eq!(num(&row[3]), 20.0);
    assert_eq!(row[4], Cell::Text("Chạy thử định kỳ".into()));
    assert_eq!(row[16], Cell::Text("Không đạt".into()));
    assert!(
        g.sections[0]
            .lines
            .iter()
            .any(|l| l.contains("chưa có lần chạy thử đạt"))
    );
    let csv = reports::csv(&g);
    assert!(
        csv.contains(",6.5,30,35,40,35,19.8,80,78,8,1234.8,0,Không đạt,"),
        "{csv}"
    );

    // Incidents: SC-1 closed in time, its draft with the timeline.
    let i = reports::make(RKind::Incident, &s, &j, month, Language::Vi, now).unwrap();
    assert_eq!(cells(&i, 0).len(), 1);
    assert_eq!(cells(&i, 0)[0][5], Cell::Text("Đã đóng trong hạn".into()));
    let html = reports::html(&i);
    for want in [
        "BÁO CÁO SỰ CỐ SC-1",
        "Mất điện lưới",
        "Cảnh báo 1",
        "<meta charset=\"utf-8\">",
        "@page",
    ] {
        assert!(html.contains(want), "{want}");
    }

    // Equipment: every device with label, model, serial, room name.
    let e = reports::make(RKind::Equipment, &s, &j, month, Language::Vi, now).unwrap();
    let rows = cells(&e, 0);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1][0], Cell::Text("NH-ups1".into()));
    assert_eq!(rows[1][4], Cell::Text("Phòng máy chủ 1".into()));
    assert_eq!(rows[1][7], Cell::Text("SN-ups1".into()));
}

#[test]
fn bad_month_kind_and_format_are_refused_clearly() {
    assert!(
        Month::parse("2026-13")
            .unwrap_err()
            .to_string()
            .contains("YYYY-MM")
    );
    assert!(
        RKind::parse("weather")
            .unwrap_err()
            .to_string()
            .contains("generator, environment")
    );
    assert!(reports::Format::parse("docx").is_err());
    assert_eq!(Month::parse("2026-01").unwrap().minus(1).text(), "2025-12");
}
