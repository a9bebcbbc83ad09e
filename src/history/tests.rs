//! The history: minutes aggregated by hand-checked figures, kept across a reopen,
//! pruned by retention and by budget.

use std::sync::Arc;

use super::*;
use crate::model::{DeviceMeta, Kind, Sample};

/// 2026-11-25T08:00:00Z
const T0: i64 = 1_795_593_600_000;

fn poll(ms: i64, temp: f64, ok: bool) -> Poll {
    Poll {
        device: Arc::new(DeviceMeta {
            id: Arc::from("th1"),
            name: "th1".into(),
            label: None,
            room: Arc::from("r"),
            kind: Kind::Climate,
        }),
        ts: Timestamp(T0 + ms),
        comm_ok: true,
        samples: vec![Sample {
            point: crate::points::lookup(Kind::Climate, "temperature_c").unwrap(),
            value: ok.then_some(Value::Number(temp)),
            quality: if ok { Quality::Good } else { Quality::Timeout },
        }],
    }
}

#[test]
fn minutes_aggregate_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut acc = Accumulator::default();
    // Minute 0: 20, 22, (timeout), 27 -> n 3, min 20, mean 23, max 27. Minute 1: 30.
    for (ms, t, ok) in [
        (0, 20.0, true),
        (20_000, 22.0, true),
        (30_000, 99.0, false),
        (40_000, 27.0, true),
        (60_000, 30.0, true),
    ] {
        acc.add(&poll(ms, t, ok));
    }
    let rows = acc.take_done(Timestamp(T0 + 61_000));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].n, rows[0].min, rows[0].mean, rows[0].max),
        (3, 20.0, 23.0, 27.0)
    );
    {
        let mut s = Store::open(dir.path(), Options::default()).unwrap();
        s.write(&rows).unwrap();
        s.write(&acc.take_done(Timestamp(T0 + 120_000))).unwrap();
    }
    let s = Store::open_read_only(dir.path()).unwrap();
    let m = s
        .query(
            Some("th1"),
            Some("temperature_c"),
            Timestamp(T0),
            Timestamp(T0 + 3_600_000),
            false,
        )
        .unwrap();
    assert_eq!(
        m.iter()
            .map(|r| (r.ts.0 - T0, r.n, r.mean))
            .collect::<Vec<_>>(),
        vec![(0, 3, 23.0), (60_000, 1, 30.0)]
    );
    let h = s
        .query(None, None, Timestamp(T0), Timestamp(T0 + 3_600_000), true)
        .unwrap();
    // The hour: 20, 22, 27, 30 -> n 4, mean 24.75.
    assert_eq!(
        h.iter()
            .map(|r| (r.n, r.min, r.mean, r.max))
            .collect::<Vec<_>>(),
        vec![(4, 20.0, 24.75, 30.0)]
    );
}

#[test]
fn pruning_keeps_the_retention_and_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_bytes: 1024 * 1024,
        minute_days: 2,
        hour_days: 31,
    };
    let mut s = Store::open(dir.path(), opts).unwrap();
    // 5 days of minutes for 8 points: ~57 600 rows, well over 1 MiB.
    let day = 86_400_000i64;
    for d in 0..5 {
        let rows: Vec<Row> = (0..1440)
            .flat_map(|m| {
                (0..8).map(move |p| Row {
                    device: "th1".into(),
                    point: format!("p{p}"),
                    ts: Timestamp(T0 + d * day + m * 60_000),
                    n: 1,
                    sum: 1.0,
                    min: 1.0,
                    mean: 1.0,
                    max: 1.0,
                })
            })
            .collect();
        s.write(&rows).unwrap();
    }
    assert!(s.used_bytes() > opts.max_bytes, "{}", s.used_bytes());
    let now = Timestamp(T0 + 5 * day);
    assert!(s.prune(now).unwrap() > 0);
    assert!(s.used_bytes() <= opts.max_bytes, "{}", s.used_bytes());
    let left = s
        .query(Some("th1"), Some("p0"), Timestamp(0), now, false)
        .unwrap();
    // Nothing older than 2 days; the newest minute kept.
    assert!(left.iter().all(|r| r.ts.0 >= now.0 - 2 * day));
    assert_eq!(left.last().map(|r| r.ts.0), Some(T0 + 5 * day - 60_000));
}
