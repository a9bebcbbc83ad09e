//! Unit tests of backup and restore on temp directories.

use super::*;

fn state_with_queue(dir: &Path, rows: i64) {
    let c = Connection::open(dir.join("buffer.db")).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO meta VALUES ('format_version', '1');
         CREATE TABLE \"queue_influx\" (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, alarm INTEGER NOT NULL, body BLOB NOT NULL);",
    )
    .unwrap();
    for i in 1..=rows {
        c.execute(
            "INSERT INTO queue_influx VALUES (?1, 0, ?2, x'00ff')",
            rusqlite::params![i, i64::from(i % 10 == 0)],
        )
        .unwrap();
    }
    fs::write(dir.join("alarm_seq"), "1234\n").unwrap();
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("sub/x"), vec![7u8; 1000]).unwrap();
    std::mem::forget(c); // keep the WAL in place, as a running gateway would
}

#[test]
fn timestamped_names_sort_by_time_and_prune_keeps_the_newest() {
    let tmp = tempfile::tempdir().unwrap();
    let name = file_name(Timestamp::now());
    assert!(
        name.starts_with("dc-gateway-2") && name.ends_with("Z.tar.gz"),
        "{name}"
    );
    assert_eq!(
        name.len(),
        "dc-gateway-20261204T231500Z.tar.gz".len(),
        "{name}"
    );
    for n in [
        "dc-gateway-20260101T000000Z.tar.gz",
        "dc-gateway-20260102T000000Z.tar.gz",
        "dc-gateway-20260103T000000Z.tar.gz",
        "notes.txt",
    ] {
        fs::write(tmp.path().join(n), "x").unwrap();
    }
    let removed = prune(tmp.path(), 2).unwrap();
    assert_eq!(
        removed,
        vec![tmp.path().join("dc-gateway-20260101T000000Z.tar.gz")]
    );
    assert!(tmp.path().join("notes.txt").exists());
}

#[test]
fn backup_then_restore_round_trips_queues_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("state");
    fs::create_dir_all(&src).unwrap();
    state_with_queue(&src, 95);
    let out = tmp.path().join("b.tar.gz");
    let rep = backup(&src, &out).unwrap();
    assert_eq!(
        rep.queues,
        vec![QueueCount {
            sink: "influx".into(),
            records: 95,
            alarms: 9
        }]
    );
    let names: Vec<&str> = rep.manifest.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["buffer.db", "alarm_seq", "sub/x"]);
    assert!(!with_suffix(&out, ".partial").exists());

    let dst = tmp.path().join("restored");
    let rep2 = restore(&out, &dst, RestoreOptions::default()).unwrap();
    assert_eq!(rep2.queues, rep.queues);
    assert_eq!(fs::read_to_string(dst.join("alarm_seq")).unwrap(), "1234\n");
    assert_eq!(fs::read(dst.join("sub/x")).unwrap(), vec![7u8; 1000]);
    let c = Connection::open(dst.join("buffer.db")).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM queue_influx", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 95);
    // The target now holds state: a second restore needs --force.
    let e = restore(&out, &dst, RestoreOptions::default()).unwrap_err();
    assert!(matches!(e, Error::NotEmpty { .. }), "{e}");
    restore(
        &out,
        &dst,
        RestoreOptions {
            force: true,
            dry_run: false,
        },
    )
    .unwrap();
}

#[test]
fn a_dry_run_touches_nothing_and_a_backup_inside_the_state_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("state");
    fs::create_dir_all(&src).unwrap();
    state_with_queue(&src, 3);
    let e = backup(&src, &src.join("b.tar.gz")).unwrap_err();
    assert!(e.to_string().contains("outside the state directory"), "{e}");
    let out = tmp.path().join("b.tar.gz");
    backup(&src, &out).unwrap();
    let dst = tmp.path().join("never");
    let opts = RestoreOptions {
        force: false,
        dry_run: true,
    };
    let rep = restore(&out, &dst, opts).unwrap();
    assert_eq!(rep.queues[0].records, 3);
    assert!(!dst.exists(), "a dry run creates nothing");
}

#[test]
fn a_damaged_or_foreign_archive_is_refused_and_nothing_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("state");
    fs::create_dir_all(&src).unwrap();
    state_with_queue(&src, 10);
    let out = tmp.path().join("b.tar.gz");
    backup(&src, &out).unwrap();
    // Flip one byte in the middle of the compressed stream.
    let mut bytes = fs::read(&out).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let bad = tmp.path().join("bad.tar.gz");
    fs::write(&bad, &bytes).unwrap();
    let dst = tmp.path().join("r1");
    let e = restore(&bad, &dst, RestoreOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Format { .. }), "{e}");
    assert!(list_files(&dst).unwrap().is_empty(), "nothing installed");

    // A tar.gz that is not ours.
    let foreign = tmp.path().join("foreign.tar.gz");
    {
        let mut gz = GzEncoder::new(File::create(&foreign).unwrap(), Compression::fast());
        tar::append(&mut gz, "etc/passwd", &mut &b"x"[..], 1, 0).unwrap();
        tar::finish(&mut gz).unwrap();
        gz.finish().unwrap();
    }
    let e = restore(&foreign, &dst, RestoreOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not a dc-gateway backup"), "{e}");

    // A manifest naming a path outside the state directory.
    let evil = tmp.path().join("evil.tar.gz");
    {
        let m = Manifest {
            format: FORMAT.into(),
            version: 1,
            created_at: String::new(),
            gateway_version: String::new(),
            source: String::new(),
            files: vec![FileEntry {
                name: "../x".into(),
                kind: "file".into(),
                size: 1,
            }],
        };
        let json = serde_json::to_vec(&m).unwrap();
        let mut gz = GzEncoder::new(File::create(&evil).unwrap(), Compression::fast());
        tar::append(
            &mut gz,
            MANIFEST,
            &mut json.as_slice(),
            json.len() as u64,
            0,
        )
        .unwrap();
        tar::append(&mut gz, "../x", &mut &b"x"[..], 1, 0).unwrap();
        tar::finish(&mut gz).unwrap();
        gz.finish().unwrap();
    }
    let e = restore(&evil, &dst, RestoreOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not a plain relative path"), "{e}");
    assert!(!tmp.path().join("x").exists());
}

#[test]
fn a_corrupt_database_in_the_backup_fails_the_integrity_check() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("state");
    fs::create_dir_all(&src).unwrap();
    state_with_queue(&src, 2000);
    let out = tmp.path().join("b.tar.gz");
    let rep = backup(&src, &out).unwrap();
    // Rewrite the archive with a database whose pages are damaged (the tar and gzip
    // layers stay valid, so only the SQLite check can notice).
    let mut db = Vec::new();
    let mut json = Vec::new();
    let mut others = Vec::new();
    read_archive(&out, |e, r| {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        if e.name == "buffer.db" {
            db = v;
        } else {
            others.push((e.clone(), v));
        }
        Ok(())
    })
    .unwrap();
    for b in db.iter_mut().skip(4096 * 2).take(4096) {
        *b = 0x5a;
    }
    let mut m = rep.manifest.clone();
    m.files[0].size = db.len() as u64;
    json.extend(serde_json::to_vec(&m).unwrap());
    let broken = tmp.path().join("broken.tar.gz");
    {
        let mut gz = GzEncoder::new(File::create(&broken).unwrap(), Compression::fast());
        tar::append(
            &mut gz,
            MANIFEST,
            &mut json.as_slice(),
            json.len() as u64,
            0,
        )
        .unwrap();
        tar::append(&mut gz, "buffer.db", &mut db.as_slice(), db.len() as u64, 0).unwrap();
        for (e, v) in &others {
            tar::append(&mut gz, &e.name, &mut v.as_slice(), v.len() as u64, 0).unwrap();
        }
        tar::finish(&mut gz).unwrap();
        gz.finish().unwrap();
    }
    let dst = tmp.path().join("r");
    let e = restore(&broken, &dst, RestoreOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::Integrity { .. } | Error::Sqlite { .. }),
        "{e}"
    );
    assert!(!dst.join("buffer.db").exists());
}
