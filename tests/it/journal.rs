//! `dc-gateway journal`, the real binary, reading a journal written through the library
//! while the writer still holds it open (as a running gateway does).

use std::process::Command;
use std::sync::Arc;

use dc_gateway::journal::{Entry, Journal, Kind, NewEntry, Options};
use dc_gateway::model::Timestamp;
use serde_json::json;

use crate::peers::peer_tempdir;

/// 2026-12-04T00:00:00Z.
const T0: i64 = 1_796_342_400_000;

fn journal_cmd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .arg("journal")
        .args(args)
        .output()
        .expect("run dc-gateway journal");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn append(
    j: &Journal,
    ts: i64,
    kind: Kind,
    device: Option<&str>,
    data: serde_json::Value,
) -> Entry {
    j.append(NewEntry {
        ts: Timestamp(ts),
        kind,
        gateway: Arc::from("gw-a"),
        device: device.map(Arc::from),
        data,
    })
    .expect("append")
}

#[test]
fn journal_json_lines_are_exactly_the_commands_appended() {
    let dir = peer_tempdir("journal-cli");
    let state = dir.path().join("state");
    let j = Journal::open(&state, Options::default()).unwrap();
    append(
        &j,
        T0,
        Kind::GatewayStart,
        None,
        json!({"version": "0.1.0"}),
    );
    let c1 = append(
        &j,
        T0 + 1_500,
        Kind::Command,
        Some("ups1"),
        json!({"id": "c-1", "verb": "ack", "by": "an", "origin": "mqtt", "client_id": "ops-7", "ok": true}),
    );
    append(
        &j,
        T0 + 2_000,
        Kind::Alarm,
        Some("ups1"),
        json!({"rule": "on_battery", "state": "acked", "no": 12}),
    );
    let c2 = append(
        &j,
        T0 + 3_000,
        Kind::Command,
        None,
        json!({"id": "c-2", "verb": "test_notification", "ok": false, "error": "no such person"}),
    );
    let dir_arg = state.to_str().unwrap();

    // The writer `j` is still open: the CLI reads beside it.
    let (ok, stdout, stderr) =
        journal_cmd(&["--state-dir", dir_arg, "--json", "--kind", "command"]);
    assert!(ok, "{stderr}");
    let expected = format!(
        "{{\"seq\":{},\"ts\":\"2026-12-04T00:00:01.500Z\",\"kind\":\"command\",\"gateway\":\"gw-a\",\"device\":\"ups1\",\"by\":\"an\",\"client_id\":\"ops-7\",\"id\":\"c-1\",\"ok\":true,\"origin\":\"mqtt\",\"verb\":\"ack\"}}\n\
         {{\"seq\":{},\"ts\":\"2026-12-04T00:00:03.000Z\",\"kind\":\"command\",\"gateway\":\"gw-a\",\"error\":\"no such person\",\"id\":\"c-2\",\"ok\":false,\"verb\":\"test_notification\"}}\n",
        c1.seq, c2.seq
    );
    assert_eq!(stdout, expected);
    // Each line is the library's own serialisation of the entry.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], serde_json::to_string(&c1).unwrap());
    assert_eq!(lines[1], serde_json::to_string(&c2).unwrap());

    // Filters combine; an entry appended now shows up at once.
    let c3 = append(
        &j,
        T0 + 4_000,
        Kind::Command,
        Some("ups1"),
        json!({"id": "c-3"}),
    );
    let (ok, stdout, stderr) = journal_cmd(&[
        "--state-dir",
        dir_arg,
        "--json",
        "--device",
        "ups1",
        "--since",
        "2026-12-04T07:00:01.600+07:00",
    ]);
    assert!(ok, "{stderr}");
    let seqs: Vec<i64> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [c1.seq + 1, c3.seq]);

    // People's form: one line each, local time, kind, device, summary.
    let (ok, stdout, stderr) = journal_cmd(&["--state-dir", dir_arg, "--limit", "2"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[1].contains("2026-12-04T07:00:01.500+07:00  command")
            && lines[1].contains("ups1")
            && lines[1].contains("verb=ack"),
        "{stdout}"
    );
    assert_eq!(
        lines[0],
        format!(
            "{:>6}  2026-12-04T07:00:00.000+07:00  gateway_start   gw-a  -             version=0.1.0",
            c1.seq - 1
        )
    );
}

#[test]
fn journal_with_a_config_reads_its_state_dir_and_shows_its_time_zone() {
    let dir = peer_tempdir("journal-cli-config");
    let j = Journal::open(&dir.path().join("st"), Options::default()).unwrap();
    append(&j, T0, Kind::ConfigLoaded, None, json!({"hash": "ab12"}));
    let cfg = dir.path().join("site.toml");
    let text = crate::e2e::site("jr", 1, 2, 1000, "[storage]\nstate_dir = \"st\"\n").replace(
        "language = \"en\"",
        "language = \"en\"\ntime_zone = \"Europe/Paris\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let (ok, stdout, stderr) = journal_cmd(&["--config", cfg.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(
            "2026-12-04T01:00:00.000+01:00  config_loaded   gw-a  -             hash=ab12"
        ),
        "{stdout}"
    );
}

#[test]
fn journal_cli_errors_name_the_problem() {
    let dir = peer_tempdir("journal-cli-err");
    let d = dir.path().to_str().unwrap();
    let (ok, stdout, stderr) = journal_cmd(&["--state-dir", d]);
    assert!(!ok && stdout.is_empty());
    assert!(
        stderr.contains("no journal at") && stderr.contains("journal.db"),
        "{stderr}"
    );
    Journal::open(dir.path(), Options::default()).unwrap();
    let (ok, _, stderr) = journal_cmd(&["--state-dir", d, "--kind", "alarms"]);
    assert!(!ok);
    assert!(
        stderr.contains("--kind: unknown journal entry kind \"alarms\" (one of alarm, command"),
        "{stderr}"
    );
    let (ok, _, stderr) = journal_cmd(&["--state-dir", d, "--since", "last week"]);
    assert!(!ok);
    assert!(
        stderr.contains("--since: \"last week\" is not a time"),
        "{stderr}"
    );
    // An empty journal prints nothing and succeeds.
    let (ok, stdout, stderr) = journal_cmd(&["--state-dir", d, "--json", "--since", "-24h"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "");
}
