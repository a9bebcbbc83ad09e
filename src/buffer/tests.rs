//! Buffer behaviour with real SQLite files in temp dirs: what is committed when, what
//! survives a reopen, budgets, dead letters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::model::{AlarmEvent, AlarmState, DeviceMeta, Kind, Level, Poll, Quality, Sample, Value};
use crate::points;

fn device() -> Arc<DeviceMeta> {
    Arc::new(DeviceMeta {
        id: "th1".into(),
        name: "Inlet".into(),
        label: None,
        room: "r1".into(),
        kind: Kind::Climate,
    })
}

fn poll(ts: i64) -> Record {
    Record::Poll(Arc::new(Poll {
        device: device(),
        ts: Timestamp(ts),
        comm_ok: true,
        samples: vec![Sample {
            point: points::lookup(Kind::Climate, "temperature_c").unwrap(),
            value: Some(Value::Number(ts as f64 / 10.0)),
            quality: Quality::Good,
        }],
    }))
}

fn alarm(ts: i64) -> Record {
    Record::Alarm(Arc::new(AlarmEvent {
        detail: Default::default(),
        id: format!("id-{ts:06}"),
        seq: ts as u64,
        ts: Timestamp(ts),
        site: "s".into(),
        device: "th1".into(),
        kind: Kind::Climate,
        room: "r1".into(),
        point: "temperature_c",
        rule: "temperature_high".into(),
        level: Level::Normal,
        state: AlarmState::Raised,
        value: Some(Value::Number(30.0)),
        threshold: Some(27.0),
        message: "Nhiệt độ cao".into(),
    }))
}

fn limits(max_bytes: u64) -> Limits {
    Limits {
        max_bytes,
        max_pending: 10_000,
    }
}

fn size(r: &Record) -> u64 {
    codec::to_vec(r).len() as u64 + store::ROW_OVERHEAD
}

async fn all(q: &DiskQueue) -> Vec<(i64, Record)> {
    let rows = q.read(i64::MIN, i64::MAX, 1_000_000).await.unwrap();
    q.release();
    rows
}

fn stamps(rows: &[(i64, Record)]) -> Vec<i64> {
    rows.iter().map(|(_, r)| r.ts().0).collect()
}

#[tokio::test]
async fn alarms_are_committed_at_once_readings_after_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let interval = Duration::from_millis(600);
    let buf = Buffer::open(
        dir.path(),
        Options {
            commit_interval: interval,
            commit_max_records: 1000,
        },
    )
    .unwrap();
    let q = buf.queue("influx", limits(1 << 20)).unwrap();
    let t0 = Instant::now();
    q.append(&poll(1));
    // Not readable before it is committed.
    assert!(all(&q).await.is_empty());
    assert_eq!(q.counters().pending, 1);
    q.append(&alarm(2));
    q.committed(Duration::from_secs(5)).await;
    let took = t0.elapsed();
    assert!(
        took < interval,
        "the alarm waited for the reading interval: {took:?}"
    );
    // The alarm's commit took the pending reading with it (group commit).
    assert_eq!(stamps(&all(&q).await), vec![1, 2]);
    q.append(&poll(3));
    q.committed(Duration::from_secs(5)).await;
    let took = t0.elapsed();
    assert!(
        took >= interval,
        "a reading alone was committed before the interval: {took:?}"
    );
    assert_eq!(stamps(&all(&q).await), vec![1, 2, 3]);
}

#[tokio::test]
async fn committed_records_survive_a_reopen_and_removed_ones_do_not_come_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let buf = Buffer::open(dir.path(), Options::default()).unwrap();
        let q = buf.queue("influx", limits(1 << 20)).unwrap();
        for ts in 1..=5 {
            q.append(&poll(ts));
        }
        q.append(&alarm(6));
        buf.flush_async().await.unwrap();
        let rows = q.read(i64::MIN, i64::MAX, 2).await.unwrap();
        q.ack(rows[0].0, rows[1].0);
        buf.flush_async().await.unwrap();
        // Appended after the last commit, then an orderly drop: committed on close.
        q.append(&poll(7));
    }
    let buf = Buffer::open(dir.path(), Options::default()).unwrap();
    buf.registry().add([device()]);
    let q = buf.queue("influx", limits(1 << 20)).unwrap();
    let c = q.counters();
    assert_eq!((c.rows, c.alarms), (5, 1));
    let rows = all(&q).await;
    assert_eq!(stamps(&rows), vec![3, 4, 5, 6, 7]);
    let Record::Poll(p) = &rows[0].1 else {
        panic!("not a poll")
    };
    assert_eq!(
        p.device.name, "Inlet",
        "known devices come back with their config"
    );
    assert_eq!(p.samples[0].value, Some(Value::Number(0.3)));
    // New ids continue after the old ones.
    q.append(&poll(8));
    buf.flush_async().await.unwrap();
    let rows = all(&q).await;
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(stamps(&rows).last(), Some(&8));
}

#[tokio::test]
async fn budget_drops_oldest_readings_exactly_and_keeps_alarms() {
    let buf = Buffer::in_memory(Options::default()).unwrap();
    let r = size(&poll(100));
    let a = size(&alarm(100));
    // Room for 3 alarms and 10 polls.
    let q = buf.queue("influx", limits(3 * a + 10 * r)).unwrap();
    q.append(&alarm(0));
    for ts in 1..=30 {
        q.append(&poll(100 + ts));
        if ts % 10 == 0 {
            q.append(&alarm(ts));
            buf.flush_async().await.unwrap();
        }
    }
    buf.flush_async().await.unwrap();
    let rows = all(&q).await;
    let alarms: Vec<i64> = rows
        .iter()
        .filter(|(_, r)| r.is_alarm())
        .map(|(_, r)| r.ts().0)
        .collect();
    let polls: Vec<i64> = rows
        .iter()
        .filter(|(_, r)| !r.is_alarm())
        .map(|(_, r)| r.ts().0)
        .collect();
    assert_eq!(alarms, vec![0, 10, 20, 30], "every alarm kept");
    // 4 alarms use the room of 3 alarms + ~1 poll: the newest polls that fit remain.
    let kept = polls.len() as u64;
    assert!(
        4 * a + kept * r <= 3 * a + 10 * r,
        "over budget: {kept} polls"
    );
    assert!(
        4 * a + (kept + 1) * r > 3 * a + 10 * r,
        "dropped more than needed: {kept} polls"
    );
    assert_eq!(
        polls,
        ((131 - kept as i64)..=130).collect::<Vec<_>>(),
        "the oldest went first"
    );
    let c = q.counters();
    assert_eq!(c.dropped, 30 - kept, "every drop counted");
    assert_eq!(c.rows, kept + 4);
    assert_eq!(c.bytes, kept * r + 4 * a);
    assert!(q.used_pct() > 90.0);
}

#[tokio::test]
async fn the_batch_in_flight_is_not_dropped() {
    let buf = Buffer::in_memory(Options::default()).unwrap();
    let r = size(&poll(1));
    let q = buf.queue("influx", limits(4 * r)).unwrap();
    for ts in 1..=4 {
        q.append(&poll(ts));
    }
    buf.flush_async().await.unwrap();
    let batch = q.read(i64::MIN, i64::MAX, 2).await.unwrap();
    assert_eq!(stamps(&batch), vec![1, 2]);
    q.append(&poll(5));
    q.append(&poll(6));
    buf.flush_async().await.unwrap();
    q.ack(batch[0].0, batch[1].0);
    assert_eq!(stamps(&all(&q).await), vec![5, 6]);
    assert_eq!(
        q.counters().dropped,
        2,
        "3 and 4 went, not the batch being sent"
    );
}

#[tokio::test]
async fn only_alarms_left_then_the_oldest_alarm_goes() {
    let buf = Buffer::in_memory(Options::default()).unwrap();
    let a = size(&alarm(1));
    let q = buf.queue("mqtt", limits(2 * a)).unwrap();
    for ts in 1..=3 {
        q.append(&alarm(ts));
        buf.flush_async().await.unwrap();
    }
    q.append(&poll(4));
    buf.flush_async().await.unwrap();
    // A new reading never pushes an alarm out: the reading itself is dropped.
    assert_eq!(stamps(&all(&q).await), vec![2, 3]);
    assert_eq!(q.counters().dropped, 2);
}

#[tokio::test]
async fn rejected_records_land_in_the_dead_letter_table_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let buf = Buffer::open(dir.path(), Options::default()).unwrap();
    let q = buf.queue("influx", limits(1 << 20)).unwrap();
    for ts in 1..=3 {
        q.append(&poll(ts));
    }
    buf.flush_async().await.unwrap();
    let batch = q.read(i64::MIN, i64::MAX, 10).await.unwrap();
    q.reject(
        batch[0].0,
        batch[2].0,
        vec![(batch[1].0, "HTTP 400: field type conflict".into())],
    );
    buf.flush_async().await.unwrap();
    assert!(all(&q).await.is_empty());
    assert_eq!(q.counters().dead_lettered, 1);
    let db = rusqlite::Connection::open(dir.path().join(store::DB_FILE)).unwrap();
    let (sink, reason, record): (String, String, String) = db
        .query_row("SELECT sink, reason, record FROM dead_letter", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(sink, "influx");
    assert_eq!(reason, "HTTP 400: field type conflict");
    let rec: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(rec["samples"]["temperature_c"], 0.2);
}

#[tokio::test]
async fn pending_memory_is_bounded_when_the_disk_is_slow() {
    // A commit interval that never comes within the test: everything stays pending.
    let buf = Buffer::in_memory(Options {
        commit_interval: Duration::from_secs(3600),
        commit_max_records: usize::MAX,
    })
    .unwrap();
    let q = buf
        .queue(
            "influx",
            Limits {
                max_bytes: 1 << 30,
                max_pending: 5,
            },
        )
        .unwrap();
    q.append(&alarm(0));
    buf.flush_async().await.unwrap();
    for ts in 1..=8 {
        q.append(&poll(ts));
    }
    let c = q.counters();
    assert_eq!((c.pending, c.dropped), (5, 3));
    buf.flush_async().await.unwrap();
    assert_eq!(stamps(&all(&q).await), vec![0, 4, 5, 6, 7, 8]);
}

#[test]
fn one_queue_per_name() {
    let buf = Buffer::in_memory(Options::default()).unwrap();
    let _q = buf.queue("influx", limits(1000)).unwrap();
    assert!(matches!(
        buf.queue("influx", limits(1000)),
        Err(Error::Duplicate { .. })
    ));
    assert!(matches!(
        buf.queue("in flux", limits(1000)),
        Err(Error::BadName { .. })
    ));
}

#[tokio::test]
async fn a_queue_on_disk_under_an_old_sink_name_is_carried_over_to_the_new_name() {
    let dir = tempfile::tempdir().unwrap();
    {
        let b = Buffer::open(dir.path(), Options::default()).unwrap();
        let q = b.queue("mqtt", limits(1 << 20)).unwrap();
        q.append(&alarm(1));
        q.append(&alarm(2));
        b.flush_async().await.unwrap();
    }
    let renames = vec![("mqtt".to_string(), "alarms-broker".to_string())];
    let done = carry_over_queues(dir.path(), &renames).unwrap();
    assert_eq!(done, renames);
    // Done once: a second start finds nothing left to carry over.
    assert!(carry_over_queues(dir.path(), &renames).unwrap().is_empty());
    let b = Buffer::open(dir.path(), Options::default()).unwrap();
    let q = b.queue("alarms-broker", limits(1 << 20)).unwrap();
    assert_eq!(stamps(&all(&q).await), vec![1, 2]);
    let old = b.queue("mqtt", limits(1 << 20)).unwrap();
    assert!(all(&old).await.is_empty());
}

#[test]
fn carrying_over_never_overwrites_a_queue_of_the_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(store::DB_FILE)).unwrap();
    conn.execute_batch(
        "CREATE TABLE \"queue_mqtt\" (id INTEGER PRIMARY KEY, ts INTEGER, alarm INTEGER, body BLOB);
         CREATE TABLE \"queue_broker\" (id INTEGER PRIMARY KEY, ts INTEGER, alarm INTEGER, body BLOB);",
    )
    .unwrap();
    drop(conn);
    let renames = vec![("mqtt".to_string(), "broker".to_string())];
    assert!(carry_over_queues(dir.path(), &renames).unwrap().is_empty());
    // No buffer yet: nothing to do, nothing created.
    let empty = tempfile::tempdir().unwrap();
    assert!(
        carry_over_queues(empty.path(), &renames)
            .unwrap()
            .is_empty()
    );
    assert!(!empty.path().join(store::DB_FILE).exists());
}

/// Pages in use by the committed database (a second connection, as `sqlite3` would).
fn page_count(dir: &std::path::Path) -> u32 {
    let c = rusqlite::Connection::open(dir.join(store::DB_FILE)).unwrap();
    c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn a_full_disk_holds_records_in_memory_delivers_them_and_commits_them_once_space_is_back() {
    // SQLite's own SQLITE_FULL, from a page cap (max_page_count) the test can lift.
    let dir = tempfile::tempdir().unwrap();
    let cap = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let store = store::Sqlite::open(dir.path())
        .unwrap()
        .with_page_limit(cap.clone());
    let opts = Options {
        commit_interval: Duration::from_millis(50),
        commit_max_records: usize::MAX,
    };
    let buf = Buffer::start(store, opts, None).unwrap();
    let q = buf
        .queue(
            "influx",
            Limits {
                max_bytes: 1 << 30,
                max_pending: 300,
            },
        )
        .unwrap();
    q.append(&poll(1));
    buf.flush_async().await.unwrap();
    assert!(buf.write_failure().is_none());
    // The disk is full: not one more page.
    cap.store(page_count(dir.path()), Ordering::SeqCst);
    q.append(&alarm(2));
    for ts in 3..403 {
        q.append(&poll(ts));
    }
    q.append(&alarm(403));
    let err = buf.flush_async().await.unwrap_err();
    assert!(err.to_string().contains("full"), "{err}");
    let why = buf.write_failure().expect("the failure is reported");
    assert!(why.contains("full"), "{why}");
    // Bounded: 300 held (what fitted in the last free page was committed before the
    // disk filled), the oldest readings dropped and counted, alarm events kept.
    let c = q.counters();
    assert!(
        c.rows >= 1 && c.rows < 100,
        "committed before full: {}",
        c.rows
    );
    assert_eq!(c.pending, 300);
    assert_eq!(
        c.rows + c.pending + c.dropped,
        403,
        "every record accounted for"
    );
    // The sink goes on delivering live: committed rows, then the held ones.
    let batch = q.read(i64::MIN, i64::MAX, 1000).await.unwrap();
    assert_eq!(batch.len() as u64, c.rows + 300);
    let ts: Vec<i64> = stamps(&batch);
    assert_eq!(ts[0], 1);
    assert!(
        ts.contains(&2) && ts.contains(&403),
        "the alarm events are readable"
    );
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "in order");
    q.release();
    let batch = q.read(i64::MIN, i64::MAX, 50).await.unwrap();
    let (lo, hi) = (batch[0].0, batch[49].0);
    q.ack(lo, hi);
    // Retries keep failing while the disk is full; nothing is lost or duplicated.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(buf.write_failure().is_some());
    let left = c.rows + 300 - 50;
    let now = q.counters();
    assert_eq!(now.rows + now.pending, left);
    // Space back: what is held is committed, under the ids it was read with.
    cap.store(0, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(5);
    while buf.write_failure().is_some() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        buf.write_failure().is_none(),
        "the retry commits once space is back"
    );
    let rest = all(&q).await;
    assert_eq!(rest.len() as u64, left);
    assert!(rest[0].0 > hi, "ids continue after the acked batch");
    assert_eq!(q.counters().pending, 0);
    let ts = stamps(&rest);
    assert_eq!(*ts.last().unwrap(), 403, "the last alarm event is kept");
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "in order, no duplicate");
    // Durable: a reopen finds the same records.
    drop(q);
    drop(buf);
    let buf = Buffer::open(dir.path(), opts).unwrap();
    let q = buf.queue("influx", limits(1 << 30)).unwrap();
    assert_eq!(stamps(&all(&q).await), ts);
}

#[tokio::test]
async fn a_full_disk_stays_reported_after_everything_held_was_delivered_until_a_write_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let store = store::Sqlite::open(dir.path())
        .unwrap()
        .with_page_limit(cap.clone());
    let opts = Options {
        commit_interval: Duration::from_millis(50),
        commit_max_records: usize::MAX,
    };
    let buf = Buffer::start(store, opts, None).unwrap();
    let q = buf.queue("mqtt", limits(1 << 30)).unwrap();
    q.append(&alarm(1));
    buf.flush_async().await.unwrap();
    let all_of_it = all(&q).await;
    q.ack(all_of_it[0].0, all_of_it[0].0);
    buf.flush_async().await.unwrap();
    cap.store(page_count(dir.path()), Ordering::SeqCst);
    // Alarm events until one does not fit.
    let mut ts = 2;
    while buf.write_failure().is_none() && ts < 2000 {
        q.append(&alarm(ts));
        let _ = buf.flush_async().await;
        ts += 1;
    }
    assert!(buf.write_failure().is_some(), "the cap must be reached");
    // Everything held delivered from memory: nothing left to write, the disk still
    // full (the committed rows stay: deleting them would free pages in the file).
    let committed = q.counters().rows as usize;
    let batch = q.read(i64::MIN, i64::MAX, 10_000).await.unwrap();
    assert!(batch.len() > committed);
    let (lo, hi) = (batch[committed].0, batch[batch.len() - 1].0);
    q.ack(lo, hi);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(q.counters().pending, 0);
    assert!(
        buf.write_failure().is_some(),
        "still full: not cleared by a commit of removals"
    );
    // Space back: the next probe clears it.
    cap.store(0, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(5);
    while buf.write_failure().is_some() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(buf.write_failure().is_none());
}
