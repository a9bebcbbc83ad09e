//! `dc-gateway backup` and `restore` (Art. 13.1) with the real binary: a backup taken
//! while a gateway polls a pymodbus sensor and queues for an unreachable
//! VictoriaMetrics, restored onto a second gateway, delivers every record it holds.
//!
//! Ground truth: the restored `buffer.db` (read here with SQLite, before the second
//! gateway starts) says how many records were queued at the backup; VictoriaMetrics
//! must end up with exactly those, no fewer (nothing lost) and no more (nothing from
//! after the backup, since the first gateway is killed with its later records never
//! delivered). The pymodbus server's request count shows the backup is recent: every
//! poll served up to one commit window before the backup is in it.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::e2e::{Gateway, site};
use crate::peers::{
    ModbusServer, ModbusSpec, UnitSpec, VictoriaMetrics, free_port, peer_tempdir, wait_until,
};

const HOT: u16 = 0x0131; // 30.5 °C (XY-MD02 manual example scaling, value/10)
const COOL: u16 = 0x00EB; // 23.5 °C
const RH: u16 = 0x0222; // 54.6 %RH

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn dc_gateway(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(args)
        .output()
        .expect("run dc-gateway");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_backup_taken_during_a_steady_stream_restores_to_a_gateway_that_delivers_every_queued_record() {
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[COOL, RH])));
    let mut vm = VictoriaMetrics::start_with(true);
    vm.stop(); // down for the first gateway: everything it polls stays queued
    let poll_ms = 200;
    let commit_ms = 1000;
    let sinks = format!(
        "[sinks.influx]\nurl = \"{}?org=dc&bucket=facility\"\nflush_interval_ms = 100\n\n[storage]\ncommit_interval_ms = {commit_ms}\n",
        vm.base_url()
    );
    let toml = site("backup", free_port(), modbus.addr().port(), poll_ms, &sinks)
        .replace("timeout_ms = 500", "timeout_ms = 150");
    let first = peer_tempdir("backup-first");
    let mut a = Gateway::start(&toml, first.path());

    // A steady stream, with an alarm raised on the way (on_delay 0).
    std::thread::sleep(Duration::from_secs(3));
    modbus.set_input(1, 1, &[HOT]);
    let hot_at = now_ms();
    std::thread::sleep(Duration::from_secs(2));
    modbus.set_input(1, 1, &[COOL]);
    std::thread::sleep(Duration::from_secs(1));

    // The backup, while polls go on.
    let state = first.path().join("state");
    let out = first.path().join("site-backup.tar.gz");
    let served_before = modbus.request_count(1);
    let t0 = Instant::now();
    let (ok, msg) = dc_gateway(&[
        "backup",
        "--state-dir",
        state.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "backup failed: {msg}\n--- gateway log ---\n{}", a.log());
    let took = t0.elapsed();
    assert!(
        msg.contains("buffer.db") && msg.contains("alarm_seq"),
        "{msg}"
    );
    eprintln!("backup in {took:?}:\n{msg}");
    // Restoring over a running gateway's state is refused, even with --force.
    let (ok, msg) = dc_gateway(&[
        "restore",
        "--force",
        "--from",
        out.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(
        !ok && msg.contains("stop the gateway first"),
        "restore over a running gateway: {msg}"
    );
    // The stream goes on after the backup, then the board dies: what it queued after
    // the backup is not in the backup and is never delivered.
    std::thread::sleep(Duration::from_secs(2));
    a.kill();
    let killed_at = now_ms();
    let served_total = modbus.request_count(1);
    assert!(
        served_total > served_before + 5,
        "polls went on during and after the backup"
    );

    // A damaged copy is refused and installs nothing.
    let mut bytes = std::fs::read(&out).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let damaged = first.path().join("damaged.tar.gz");
    std::fs::write(&damaged, &bytes).unwrap();
    let second = peer_tempdir("backup-second");
    let target = second.path().join("state");
    let (ok, msg) = dc_gateway(&[
        "restore",
        "--from",
        damaged.to_str().unwrap(),
        "--state-dir",
        target.to_str().unwrap(),
    ]);
    assert!(!ok, "a damaged backup was restored: {msg}");
    assert!(
        !target.join("buffer.db").exists(),
        "nothing installed: {msg}"
    );

    // Restore onto a second gateway's (empty) state dir.
    let (ok, msg) = dc_gateway(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--state-dir",
        target.to_str().unwrap(),
    ]);
    assert!(ok, "restore failed: {msg}");
    eprintln!("{msg}");
    let (readings, alarms) = {
        let db = rusqlite::Connection::open(target.join("buffer.db")).unwrap();
        db.query_row(
            "SELECT count(*) - coalesce(sum(alarm), 0), coalesce(sum(alarm), 0) FROM queue_influx",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .unwrap()
    };
    // Recent: every poll served more than a commit window (and a poll) before the
    // backup started is in it (plus the gateway's own readings, one every 10 s).
    let window = commit_ms / poll_ms + 2;
    assert!(
        readings + window >= served_before,
        "the backup holds {readings} readings, {served_before} polls were served before it"
    );
    assert!(alarms >= 1, "the raised alarm is queued in the backup");
    let (ok, msg) = dc_gateway(&[
        "restore",
        "--from",
        out.to_str().unwrap(),
        "--state-dir",
        target.to_str().unwrap(),
    ]);
    assert!(
        !ok && msg.contains("--force"),
        "a second restore over existing state needs --force: {msg}"
    );

    // The second gateway, with the database reachable again, delivers the backup.
    vm.start_again();
    let b = Gateway::start(&toml, second.path());
    let mut got = (0, 0);
    let delivered = wait_until(
        "every record of the backup in VictoriaMetrics",
        Duration::from_secs(60),
        || {
            std::thread::sleep(Duration::from_millis(400));
            vm.force_flush();
            let polls = vm
                .samples("{__name__=~\".+_comm_ok\"}")
                .into_iter()
                .filter(|s| s.timestamp_ms <= killed_at)
                .count() as u64;
            let events = vm
                .samples("alarm_state")
                .into_iter()
                .filter(|s| s.timestamp_ms <= killed_at)
                .count() as u64;
            got = (polls, events);
            got == (readings, alarms)
        },
    );
    if let Err(e) = delivered {
        panic!(
            "{e}: VictoriaMetrics holds {got:?} (readings, alarm events) from before the restore, the backup held ({readings}, {alarms})\n--- second gateway log ---\n{}",
            b.log()
        );
    }
    // And the alarm raised before the backup is among them.
    let raised = vm
        .samples("alarm_state")
        .into_iter()
        .any(|s| s.value == 1.0 && s.timestamp_ms >= hot_at - 500 && s.timestamp_ms <= killed_at);
    assert!(
        raised,
        "the alarm raised before the backup reached the database"
    );
    // Nothing more arrives for that time later (exactly once per record, counted once).
    std::thread::sleep(Duration::from_secs(2));
    vm.force_flush();
    std::thread::sleep(Duration::from_secs(1));
    let polls = vm
        .samples("{__name__=~\".+_comm_ok\"}")
        .into_iter()
        .filter(|s| s.timestamp_ms <= killed_at)
        .count() as u64;
    assert_eq!(polls, readings, "records from before the restore");
}
