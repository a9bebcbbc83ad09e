//! The gateway's clock check against a real NTP server: chronyd started by the test,
//! under `faketime` for a known offset. The ground truth is chronyd's clock (6 s ahead
//! of ours); what the gateway concluded is read from its journal with the real
//! `dc-gateway journal` command while the gateway runs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::peers::ntp::Chrony;
use crate::peers::{free_port, peer_tempdir, wait_until, write_file};

fn start_gateway(dir: &Path, ntp_port: u16) -> crate::peers::PeerProcess {
    let site = dir.join("site.toml");
    write_file(
        &site,
        format!(
            "[site]\nname = \"sw\"\ngateway = \"gw-sw\"\n\n[web]\nlisten = \"127.0.0.1:{}\"\n\n\
             [storage]\nstate_dir = \"{}\"\n\n\
             [clock]\nservers = [\"127.0.0.1:{ntp_port}\"]\ninterval_s = 15\nmax_offset_ms = 1000\ntimeout_ms = 500\n",
            free_port(),
            dir.join("state").display()
        ),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dc-gateway"));
    cmd.args(["run", "--config"]).arg(&site);
    crate::peers::PeerProcess::spawn("dc-gateway", &mut cmd, &dir.join("gateway.log"), false)
}

/// Journal entries of `kind`, as JSON objects, from the real CLI.
fn journal(dir: &Path, kind: &str) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["journal", "--json", "--kind", kind, "--state-dir"])
        .arg(dir.join("state"))
        .output()
        .expect("run dc-gateway journal");
    if !out.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn alarm(dir: &Path, rule: &str, state: &str) -> Option<serde_json::Value> {
    journal(dir, "alarm")
        .into_iter()
        .find(|e| e["rule"] == rule && e["state"] == state)
}

#[test]
fn clock_six_seconds_behind_a_real_ntp_server_raises_and_an_unreachable_server_raises() {
    let mut ntp = Chrony::start(Some("+6s"));
    let dir = peer_tempdir("selfwatch-offset");
    let mut gw = start_gateway(dir.path(), ntp.port);

    let mut behind = None;
    wait_until("clock_behind raised", Duration::from_secs(20), || {
        behind = alarm(dir.path(), "clock_behind", "raised");
        behind.is_some()
    })
    .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gw.log_tail()));
    let ev = behind.unwrap();
    let offset = ev["value"].as_f64().expect("offset value");
    // chronyd runs 6 s ahead: our clock is behind, a positive offset (±0.5 s for
    // faketime's start and the two processes' scheduling).
    assert!(
        (5500.0..=6500.0).contains(&offset),
        "offset {offset} ms: {ev}"
    );
    assert_eq!(ev["device"], "gateway", "{ev}");
    assert_eq!(ev["threshold"].as_f64(), Some(1000.0), "{ev}");
    assert_eq!(ev["level"], "normal", "{ev}");
    // The clock never was within 1 s of the server: the event says its time may be wrong.
    assert_eq!(ev["clock_unsynced"], true, "{ev}");
    assert!(
        ev["message"].as_str().unwrap_or("").contains("16.6"),
        "{ev}"
    );

    // At start the journal says the clock is not yet known synchronised.
    let clock = journal(dir.path(), "clock");
    assert_eq!(
        clock.first().map(|e| e["state"].clone()),
        Some("unknown".into()),
        "{clock:?}"
    );
    assert_eq!(clock[0]["servers"][0], format!("127.0.0.1:{}", ntp.port));
    // The first check's finding is journaled with the offset.
    let first = clock
        .iter()
        .find(|e| e["state"] == "unsynced")
        .expect("unsynced entry");
    let off = first["offset_ms"].as_f64().expect("offset_ms");
    assert!((5500.0..=6500.0).contains(&off), "{first}");
    assert_eq!(first["stratum"], 8, "{first}");
    assert!(alarm(dir.path(), "clock_unreachable", "raised").is_none());

    // The server goes away: the next check (15 s later at most) finds nobody.
    ntp.stop();
    wait_until("clock_unreachable raised", Duration::from_secs(30), || {
        alarm(dir.path(), "clock_unreachable", "raised").is_some()
    })
    .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gw.log_tail()));
    let ev = alarm(dir.path(), "clock_unreachable", "raised").unwrap();
    assert_eq!(ev["value"], false, "{ev}");
    assert_eq!(ev["clock_unsynced"], true, "{ev}");
    gw.terminate(Duration::from_secs(10));
}

#[test]
fn clock_in_step_with_a_real_ntp_server_is_journaled_synchronised_without_alarms() {
    let ntp = Chrony::start(None);
    let dir = peer_tempdir("selfwatch-synced");
    let mut gw = start_gateway(dir.path(), ntp.port);
    let mut synced = None;
    wait_until(
        "clock synced in the journal",
        Duration::from_secs(20),
        || {
            synced = journal(dir.path(), "clock")
                .into_iter()
                .find(|e| e["state"] == "synced");
            synced.is_some()
        },
    )
    .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gw.log_tail()));
    let e = synced.unwrap();
    let offset = e["offset_ms"].as_f64().expect("offset");
    assert!(offset.abs() < 200.0, "offset {offset} ms: {e}");
    assert_eq!(e["stratum"], 8, "{e}");
    // A tick or two for the rules to see the figures: no clock alarm of any kind.
    std::thread::sleep(Duration::from_secs(2));
    let clock_alarms: Vec<_> = journal(dir.path(), "alarm")
        .into_iter()
        .filter(|e| e["rule"].as_str().is_some_and(|r| r.starts_with("clock_")))
        .collect();
    assert!(clock_alarms.is_empty(), "{clock_alarms:?}");
    gw.terminate(Duration::from_secs(10));
}
