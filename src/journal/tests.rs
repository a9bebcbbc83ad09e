//! The journal against real SQLite files in temporary state directories.

use std::sync::Arc;

use serde_json::json;

use super::cli::{self, parse_time};
use super::*;
use crate::texts::time::SiteTime;

const DAY_MS: i64 = 86_400_000;
/// 2026-12-04T00:00:00Z.
const T0: i64 = 1_796_342_400_000;

fn entry(ts: i64, kind: Kind, device: Option<&str>, data: serde_json::Value) -> NewEntry {
    NewEntry {
        ts: Timestamp(ts),
        kind,
        gateway: Arc::from("gw1"),
        device: device.map(Arc::from),
        data,
    }
}

fn open(dir: &Path) -> Journal {
    Journal::open(dir, Options::default()).unwrap()
}

#[test]
fn appended_entries_are_read_back_in_order_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    let a = j
        .append(entry(
            T0,
            Kind::GatewayStart,
            None,
            json!({"version": "1.2"}),
        ))
        .unwrap();
    let b = j
        .append(entry(
            T0 + 1000,
            Kind::Alarm,
            Some("ups1"),
            json!({"rule": "on_battery", "state": "raised", "level": "serious"}),
        ))
        .unwrap();
    assert!(b.seq > a.seq);
    assert_eq!(b.device.as_deref(), Some("ups1"));
    drop(j);
    let j = open(dir.path());
    let all = j.query(&Query::default()).unwrap();
    assert_eq!(all, vec![a.clone(), b.clone()]);
    let c = j
        .append(entry(
            T0 + 2000,
            Kind::GatewayStop,
            None,
            serde_json::Value::Null,
        ))
        .unwrap();
    assert_eq!(c.seq, b.seq + 1);
    assert_eq!(c.data, json!({}));
}

#[test]
fn the_flat_serialisation_puts_data_fields_beside_the_envelope() {
    let e = Entry {
        seq: 7,
        ts: Timestamp(T0 + 123),
        kind: Kind::Command,
        gateway: "gw1".into(),
        device: Some("ups1".into()),
        data: json!({"id": "c-1", "verb": "ack", "seq": 99}),
    };
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"seq":7,"ts":"2026-12-04T00:00:00.123Z","kind":"command","gateway":"gw1","device":"ups1","id":"c-1","verb":"ack"}"#
    );
    // Read back, the envelope's names stay the envelope's.
    let back: Entry = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(
        back,
        Entry {
            data: json!({"id": "c-1", "verb": "ack"}),
            ..e.clone()
        }
    );
    assert!(
        serde_json::from_str::<Entry>(r#"{"seq":1,"kind":"alarm","gateway":"g"}"#)
            .unwrap_err()
            .to_string()
            .contains("missing field `ts`")
    );
    let no_device = Entry { device: None, ..e };
    let back: Entry = serde_json::from_str(&cli::json_line(&no_device)).unwrap();
    assert_eq!(back.device, None);
    assert!(!cli::json_line(&no_device).contains("\"device\""));
}

#[test]
fn filters_select_by_time_kind_device_and_seq() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    for i in 0..10i64 {
        let (kind, dev) = if i % 2 == 0 {
            (Kind::Alarm, Some("ups1"))
        } else {
            (Kind::Command, Some("crac1"))
        };
        j.append(entry(T0 + i * 60_000, kind, dev, json!({"i": i})))
            .unwrap();
    }
    let is = |q: Query| -> Vec<i64> {
        j.query(&q)
            .unwrap()
            .iter()
            .map(|e| e.data["i"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(is(Query::default()), (0..10).collect::<Vec<_>>());
    assert_eq!(
        is(Query {
            since: Some(Timestamp(T0 + 3 * 60_000)),
            until: Some(Timestamp(T0 + 6 * 60_000)),
            ..Query::default()
        }),
        vec![3, 4, 5]
    );
    assert_eq!(
        is(Query {
            kind: Some(Kind::Command),
            ..Query::default()
        }),
        vec![1, 3, 5, 7, 9]
    );
    assert_eq!(
        is(Query {
            device: Some("ups1".into()),
            limit: 2,
            ..Query::default()
        }),
        vec![0, 2]
    );
    let all = j.query(&Query::default()).unwrap();
    assert_eq!(
        is(Query {
            after_seq: Some(all[7].seq),
            ..Query::default()
        }),
        vec![8, 9]
    );
    assert!(
        is(Query {
            device: Some("nobody".into()),
            ..Query::default()
        })
        .is_empty()
    );
}

#[test]
fn find_command_finds_a_command_by_its_id_only() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    j.append(entry(T0, Kind::Alarm, Some("ups1"), json!({"id": "c-1"})))
        .unwrap();
    let cmd = j
        .append(entry(
            T0 + 1,
            Kind::Command,
            Some("ups1"),
            json!({"id": "c-1", "verb": "ack", "ok": true, "origin": "mqtt"}),
        ))
        .unwrap();
    j.append(entry(
        T0 + 2,
        Kind::Command,
        None,
        json!({"id": "c-2", "verb": "shelve"}),
    ))
    .unwrap();
    assert_eq!(j.find_command("c-1").unwrap(), Some(cmd));
    assert_eq!(
        j.find_command("c-2").unwrap().unwrap().data["verb"],
        json!("shelve")
    );
    assert_eq!(j.find_command("c-3").unwrap(), None);
    let ro = Journal::open_read_only(dir.path()).unwrap();
    assert!(ro.find_command("c-1").unwrap().is_some());
}

#[test]
fn prune_deletes_only_entries_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    // Asking for 30 days still keeps 400.
    let j = Journal::open(
        dir.path(),
        Options {
            max_bytes: 1,
            retention_days: 30,
        },
    )
    .unwrap();
    assert_eq!(j.options().retention_days, MIN_RETENTION_DAYS);
    let now = T0;
    for age_days in [500, 401, 399, 31, 0] {
        j.append(entry(
            now - age_days * DAY_MS,
            Kind::Alarm,
            None,
            json!({ "age": age_days }),
        ))
        .unwrap();
    }
    // Far over its 1-byte budget, the journal still deletes nothing within retention.
    assert!(j.used_pct() > 100.0);
    assert_eq!(j.prune(Timestamp(now)).unwrap(), 2);
    let ages: Vec<i64> = j
        .query(&Query::default())
        .unwrap()
        .iter()
        .map(|e| e.data["age"].as_i64().unwrap())
        .collect();
    assert_eq!(ages, vec![399, 31, 0]);
    assert_eq!(j.prune(Timestamp(now)).unwrap(), 0);
    // seq is never reused after pruning.
    let next = j.append(entry(now, Kind::Alarm, None, json!({}))).unwrap();
    let last = j.query(&Query::default()).unwrap()[1].seq;
    assert!(next.seq > last + 1, "{} after {}", next.seq, last);
}

#[test]
fn used_pct_grows_with_entries_and_passes_100_without_losing_any() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(
        dir.path(),
        Options {
            max_bytes: 128 * 1024,
            retention_days: 400,
        },
    )
    .unwrap();
    let start = j.used_pct();
    assert!(start > 0.0 && start < 50.0, "{start}");
    let filler = "x".repeat(400);
    for i in 0..100 {
        j.append(entry(
            T0 + i,
            Kind::Alarm,
            None,
            json!({"i": i, "f": filler}),
        ))
        .unwrap();
    }
    let mid = j.used_pct();
    assert!(mid > start, "{mid} <= {start}");
    for i in 100..300 {
        j.append(entry(
            T0 + i,
            Kind::Alarm,
            None,
            json!({"i": i, "f": filler}),
        ))
        .unwrap();
    }
    assert!(j.used_pct() > 100.0, "{}", j.used_pct());
    assert_eq!(
        j.used_bytes() as f64 * 100.0 / 131072.0,
        j.used_pct(),
        "used_pct is used_bytes of max_bytes"
    );
    let all = j
        .query(&Query {
            limit: MAX_LIMIT,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(all.len(), 300);
    assert_eq!(all[0].data["i"], json!(0));
}

#[test]
fn a_newer_format_on_disk_is_refused_naming_file_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let path = dir.path().join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE meta SET value = '7' WHERE key = 'format_version'",
            [],
        )
        .unwrap();
    }
    for err in [
        Journal::open(dir.path(), Options::default()).unwrap_err(),
        Journal::open_read_only(dir.path()).unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(matches!(err, Error::Version { newer: true, .. }), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("\"7\"") && msg.contains("up to 1"), "{msg}");
        assert!(msg.contains("newer dc-gateway"), "{msg}");
    }
    // The refused file was left as it was.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'format_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, "7");
}

#[test]
fn an_existing_file_without_a_version_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .unwrap();
    }
    let j = open(dir.path());
    j.append(entry(T0, Kind::Login, None, json!({"user": "an"})))
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'format_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, FORMAT_VERSION.to_string());
}

#[test]
fn failures_to_write_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    // A state directory that cannot be created (its parent is a file).
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let err = Journal::open(&file.join("state"), Options::default()).unwrap_err();
    assert!(matches!(err, Error::CreateDir { .. }), "{err}");
    // Appending through a read-only handle goes through the commit path and fails.
    let j = open(dir.path());
    j.append(entry(T0, Kind::Alarm, None, json!({}))).unwrap();
    let ro = Journal::open_read_only(dir.path()).unwrap();
    let err = ro
        .append(entry(T0, Kind::Alarm, None, json!({})))
        .unwrap_err();
    // A write the database refuses is held in memory, not lost (a full disk).
    assert!(matches!(err, Error::Held { held: 1, .. }), "{err}");
    assert!(err.to_string().contains("journal.db"), "{err}");
    assert_eq!(j.query(&Query::default()).unwrap().len(), 1);
    // Data that is not an object is refused.
    let err = j
        .append(entry(T0, Kind::Alarm, None, json!([1, 2])))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "journal entry of kind alarm: data must be a JSON object, got an array"
    );
    // No journal yet: a clear message for the CLI.
    let empty = tempfile::tempdir().unwrap();
    let err = Journal::open_read_only(empty.path()).unwrap_err();
    assert!(err.to_string().starts_with("no journal at "), "{err}");
}

#[test]
fn a_reader_sees_what_the_writer_committed() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    let ro = Journal::open_read_only(dir.path()).unwrap();
    assert!(ro.query(&Query::default()).unwrap().is_empty());
    let e = j
        .append(entry(T0, Kind::ConfigLoaded, None, json!({"hash": "abc"})))
        .unwrap();
    assert_eq!(ro.query(&Query::default()).unwrap(), vec![e]);
}

#[test]
fn a_journal_handle_can_be_shared_between_tasks() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    shared::<Journal>();
}

#[test]
fn kinds_round_trip_through_their_names() {
    for k in Kind::ALL {
        assert_eq!(Kind::parse(k.as_str()), Some(k));
        assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
    }
    assert_eq!(Kind::parse("Alarm"), None);
    assert!(Kind::names().starts_with("alarm, command, gateway_start"));
}

#[test]
fn times_on_the_command_line() {
    let now = Timestamp(T0);
    assert_eq!(parse_time("-24h", now).unwrap(), Timestamp(T0 - DAY_MS));
    assert_eq!(parse_time("-7d", now).unwrap(), Timestamp(T0 - 7 * DAY_MS));
    assert_eq!(parse_time("-30m", now).unwrap(), Timestamp(T0 - 1_800_000));
    assert_eq!(
        parse_time("2026-12-04T07:00:00+07:00", now).unwrap(),
        Timestamp(T0)
    );
    assert_eq!(
        parse_time("2026-12-04T00:00:00.250Z", now).unwrap(),
        Timestamp(T0 + 250)
    );
    for bad in [
        "",
        "-",
        "-5",
        "-5w",
        "yesterday",
        "2026-12-04",
        "-99999999999999999999d",
    ] {
        assert!(parse_time(bad, now).is_err(), "{bad:?}");
    }
}

#[test]
fn human_lines_show_local_time_kind_device_and_a_short_summary() {
    let e = Entry {
        seq: 3,
        ts: Timestamp(T0),
        kind: Kind::Alarm,
        gateway: "gw1".into(),
        device: Some("ups1".into()),
        data: json!({"rule": "on_battery", "state": "raised", "value": 1}),
    };
    let line = cli::human_line(&e, &SiteTime::default());
    assert_eq!(
        line,
        "     3  2026-12-04T07:00:00.000+07:00  alarm           gw1  ups1          rule=on_battery state=raised value=1"
    );
    let long = cli::summary(&json!({"t": "y".repeat(500)}));
    assert_eq!(long.chars().count(), cli::SUMMARY_MAX);
    assert!(long.ends_with('…'));
}

#[test]
fn print_pages_through_everything_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    for i in 0..25 {
        j.append(entry(
            T0 + i,
            Kind::Command,
            None,
            json!({"id": format!("c{i}")}),
        ))
        .unwrap();
    }
    let tz = SiteTime::default();
    let mut out = Vec::new();
    let q = Query {
        limit: usize::MAX,
        ..Query::default()
    };
    // Pages of 10: 10 + 10 + 5.
    assert_eq!(
        cli::print_paged(&j, &q, true, &tz, &mut out, 10).unwrap(),
        25
    );
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 25);
    let last: serde_json::Value = serde_json::from_str(lines[24]).unwrap();
    assert_eq!(last["id"], json!("c24"));
    let mut out = Vec::new();
    let q = Query {
        limit: 4,
        ..Query::default()
    };
    assert_eq!(cli::print(&j, &q, false, &tz, &mut out).unwrap(), 4);
}

#[test]
fn a_full_disk_holds_entries_in_memory_and_writes_them_in_order_once_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    let first = j
        .append(entry(T0, Kind::GatewayStart, None, json!({})))
        .unwrap();
    // SQLite's own SQLITE_FULL: not one page more than the file has.
    let pages: u32 = {
        let c = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap()
    };
    j.cap_pages(pages);
    let big = "x".repeat(3000);
    let mut refused = 0;
    for i in 1..=20 {
        let kind = if i % 2 == 0 {
            Kind::Alarm
        } else {
            Kind::Command
        };
        match j.append(entry(
            T0 + i,
            kind,
            Some("ups1"),
            json!({"i": i, "pad": big}),
        )) {
            Ok(_) => {}
            Err(Error::Held { reason, held, .. }) => {
                refused += 1;
                assert!(reason.contains("full"), "{reason}");
                assert!(held >= 1);
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "the cap must refuse some appends");
    assert!(j.write_failure().unwrap().contains("full"));
    let held = j.held_entries();
    assert!(held >= refused, "{held} held, {refused} refused");
    assert!(j.retry_held().is_err(), "still full");
    // Space back: the next retry writes everything, in order, with increasing seq.
    j.cap_pages(0);
    assert_eq!(j.retry_held().unwrap(), held);
    assert!(j.write_failure().is_none());
    assert_eq!(j.held_entries(), 0);
    let all = j.query(&Query::default()).unwrap();
    assert_eq!(all.len(), 21);
    assert_eq!(all[0], first);
    let order: Vec<i64> = all
        .iter()
        .map(|e| e.data["i"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(order, (0..=20).collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
}
