//! Config validation: a valid site, the sample, and a table of broken configs, each
//! with the exact message expected.

use super::*;

const BASE: &str = r#"
[site]
name = "tv"

[[rooms]]
id = "server1"

[[devices]]
id = "th1"
room = "server1"
kind = "climate"
profile = "xy-md02"
poll_interval_ms = 1000
[devices.modbus_tcp]
host = "127.0.0.1"
port = 5020
unit_id = 1
"#;

fn errors(text: &str) -> Vec<String> {
    match parse(text, "site.toml", Path::new("/nonexistent")) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn base_config_is_valid() {
    let site = parse(BASE, "site.toml", Path::new("/")).expect("valid");
    assert_eq!(site.devices.len(), 1);
    let d = &site.devices[0];
    assert_eq!(d.poll_interval, Duration::from_millis(1000));
    assert_eq!(
        d.connection,
        Connection::ModbusTcp {
            host: "127.0.0.1".into(),
            port: 5020,
            unit_id: 1
        }
    );
    assert!(
        d.rules
            .iter()
            .any(|r| r.name.as_ref() == "temperature_high")
    );
    assert_eq!(site.web_listen.to_string(), DEFAULT_LISTEN);
}

#[test]
fn shipped_sample_config_is_valid() {
    // The sample names secrets in files that don't exist here; give it an environment.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/site.sample.toml"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = text.replace(
        "/etc/dc-gateway/secrets/mqtt.pass",
        &dir.path().join("mqtt.pass").display().to_string(),
    );
    write_secret(&dir.path().join("mqtt.pass"), "secret\n");
    // SAFETY: tests in this module do not read this variable concurrently.
    unsafe {
        std::env::set_var("DCGW_INFLUX_TOKEN", "token");
        std::env::set_var("DCGW_UPS_AUTH_KEY", "auth-key-of-the-sample");
        std::env::set_var("DCGW_UPS_PRIV_KEY", "priv-key-of-the-sample");
    }
    let site = parse(&text, "site.sample.toml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(site.mqtt().unwrap().password.as_deref(), Some("secret"));
    let th = &site.devices[0];
    let high = th
        .rules
        .iter()
        .find(|r| r.name.as_ref() == "temperature_high")
        .unwrap();
    match &high.condition {
        crate::rules::Condition::Above {
            normal, serious, ..
        } => {
            assert_eq!(*normal, Some(28.0), "device override wins over site");
            assert_eq!(*serious, Some(32.0));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn broken_configs_give_exact_messages() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "toml syntax error",
            "[site]\nname = \"tv\"\n[[rooms]\nid = \"a\"\n",
            "site.toml:3:",
        ),
        (
            "unknown room",
            &BASE.replace("room = \"server1\"", "room = \"server9\""),
            "site.toml:10:8: devices[0] (th1) .room: unknown room \"server9\": add it under [[rooms]]",
        ),
        (
            "unknown kind",
            &BASE.replace("kind = \"climate\"", "kind = \"toaster\""),
            "site.toml:11:8: devices[0] (th1) .kind: unknown kind \"toaster\": expected one of ups, generator, cooling, climate, fire_panel, leak, door, nvr, surge, power_meter, gateway",
        ),
        (
            "profile of another kind",
            &BASE.replace("kind = \"climate\"", "kind = \"ups\""),
            "site.toml:12:11: devices[0] (th1) .profile: profile \"xy-md02\" is for kind climate, but the device is a ups",
        ),
        (
            "poll interval too short",
            &BASE.replace("poll_interval_ms = 1000", "poll_interval_ms = 5"),
            "site.toml:13:20: devices[0] (th1) .poll_interval_ms: 5 is out of range: use 100 to 3600000 ms",
        ),
        (
            "bad unit id",
            &BASE.replace("unit_id = 1", "unit_id = 0"),
            "site.toml:17:11: devices[0] (th1) .modbus_tcp.unit_id: unit id 0 is out of range: use 1 to 247 (or 255 for a TCP device)",
        ),
        (
            "duplicate device",
            &format!("{BASE}\n{}", &BASE[BASE.find("[[devices]]").unwrap()..]),
            "site.toml:20:6: devices[1] (th1) .id: device id \"th1\" is used twice",
        ),
        (
            "bad site name",
            &BASE.replace("name = \"tv\"", "name = \"Trà Vinh\""),
            "site.toml:3:8: site.name: \"Trà Vinh\" is not a valid site id: use lowercase letters, digits, '-' and '_' (it appears in MQTT topics and InfluxDB tags)",
        ),
        (
            "unknown rule on device",
            &format!("{BASE}[devices.rules.temperature_hgih]\nnormal = 28\n"),
            "site.toml:18:1: devices[0] (th1) .rules.temperature_hgih: unknown rule \"temperature_hgih\" for kind climate: known rules are temperature_high, temperature_low, humidity_high, humidity_low, dew_point_high, dew_point_low, temperature_rate_15min, temperature_rate_60min, comm_lost",
        ),
        (
            "inline secret",
            &format!(
                "{BASE}[sinks.mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\npassword = \"hunter2\"\n"
            ),
            "site.toml:20:12: sinks.mqtt.password: secrets must not be written inline: use { file = \"/path\" } or { env = \"VARIABLE\" }",
        ),
        (
            "missing env secret",
            &format!(
                "{BASE}[sinks.mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\npassword = {{ env = \"DCGW_TEST_UNSET_VARIABLE\" }}\n"
            ),
            "site.toml:20:12: sinks.mqtt.password: environment variable DCGW_TEST_UNSET_VARIABLE is not set",
        ),
        (
            "bad influx url",
            &format!("{BASE}[sinks.influx]\nurl = \"http://127.0.0.1:8086\"\n"),
            "site.toml:19:7: sinks.influx.url: InfluxDB URL \"http://127.0.0.1:8086\" must name either ?db=D (1.x) or ?org=O&bucket=B (v2)",
        ),
        (
            "bad listen address",
            &format!("{BASE}[web]\nlisten = \"localhost\"\n"),
            "site.toml:19:10: web.listen: \"localhost\" is not an address:port (e.g. \"127.0.0.1:8080\")",
        ),
        (
            "unknown key",
            &BASE.replace("poll_interval_ms = 1000", "poll_interval = 1000"),
            "site.toml:13:1: devices[0] (th1): unknown field `poll_interval`, expected one of `id`, `name`",
        ),
        (
            "snmp profile on a modbus connection",
            &BASE
                .replace("kind = \"climate\"", "kind = \"ups\"")
                .replace("profile = \"xy-md02\"", "profile = \"ups-mib\""),
            "site.toml:12:11: devices[0] (th1) .profile: profile \"ups-mib\" is a snmp profile, but the device has a modbus connection",
        ),
        (
            "bad threshold override",
            &format!("{BASE}[devices.rules.leak_detected]\nnormal = 1\n"),
            "site.toml:18:1: devices[0] (th1) .rules.leak_detected: unknown rule \"leak_detected\" for kind climate",
        ),
    ];
    let mut failures = Vec::new();
    for (name, text, expected) in cases {
        let errs = errors(text);
        if !errs.iter().any(|e| e.starts_with(expected)) {
            failures.push(format!(
                "case {name:?}: expected a message starting with\n  {expected}\ngot\n  {}",
                errs.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = BASE
        .replace("room = \"server1\"", "room = \"nowhere\"")
        .replace("profile = \"xy-md02\"", "profile = \"nope\"")
        .replace("unit_id = 1", "unit_id = 250");
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn overrides_apply_in_order_kind_site_room_device() {
    let text = format!(
        "{}\n[rules.temperature_high]\nnormal = 25.0\nserious = 30.0\n",
        BASE.replace(
            "[[rooms]]\nid = \"server1\"\n",
            "[[rooms]]\nid = \"server1\"\n[rooms.rules.temperature_high]\nnormal = 26.0\n"
        )
    );
    let site = parse(&text, "site.toml", Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
    let high = site.devices[0]
        .rules
        .iter()
        .find(|r| r.name.as_ref() == "temperature_high")
        .unwrap();
    match &high.condition {
        crate::rules::Condition::Above {
            normal, serious, ..
        } => {
            assert_eq!(*normal, Some(26.0), "room wins over site");
            assert_eq!(*serious, Some(30.0), "site wins over kind default");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn line_col_counts_characters() {
    assert_eq!(line_col("a\nbc", 3), (2, 2));
    assert_eq!(line_col("ạb", "ạ".len()), (1, 2));
}

#[test]
fn storage_defaults_and_overrides() {
    let site = parse(BASE, "site.toml", Path::new("/etc/dc-gateway")).expect("valid");
    assert_eq!(site.storage, StorageConfig::default());
    assert_eq!(site.storage.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    assert!(site.storage.max_size_bytes.is_empty());
    let text = format!(
        "{BASE}\n[[sinks]]\nname = \"history\"\nkind = \"influx\"\nurl = \"http://127.0.0.1:8086?db=dc\"\n\n[[sinks]]\nname = \"broker\"\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:1883\"\n\n[storage]\nstate_dir = \"state\"\ncommit_interval_ms = 250\njournal_max_size_bytes = 1_000_000\njournal_retention_days = 730\n[storage.max_size_bytes]\nhistory = 10_000_000\n"
    );
    let site = parse(&text, "site.toml", Path::new("/etc/dc-gateway")).expect("valid");
    assert_eq!(
        site.storage.state_dir,
        PathBuf::from("/etc/dc-gateway/state"),
        "relative to the config file"
    );
    assert_eq!(site.storage.commit_interval, Duration::from_millis(250));
    // Budgets are by sink name; a sink without one gets its kind's default.
    let budget = |name: &str| {
        let s = site.sinks.iter().find(|s| &*s.name == name).unwrap();
        site.storage.max_bytes(name, s.config.default_max_bytes())
    };
    assert_eq!(budget("history"), 10_000_000);
    assert_eq!(budget("broker"), 64 << 20);
    assert_eq!(
        site.storage.journal,
        crate::journal::Options {
            max_bytes: 1_000_000,
            retention_days: 730
        }
    );
}

#[test]
fn storage_mistakes_are_named() {
    let text = format!(
        "{BASE}\n[[sinks]]\nname = \"influx\"\nkind = \"influx\"\nurl = \"http://127.0.0.1:8086?db=dc\"\n\n[storage]\ncommit_interval_ms = 0\njournal_max_size_bytes = 10\njournal_retention_days = 30\n[storage.max_size_bytes]\ninflux = 100\nsms = 1000000\n"
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.contains("storage.commit_interval_ms: 0 is out of range")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("storage.max_size_bytes.influx: 100 bytes is too small")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("storage.max_size_bytes.sms: unknown sink \"sms\"")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("storage.journal_max_size_bytes: 10 bytes is too small")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains(
            "storage.journal_retention_days: 30 days is too short: the journal keeps at least 400 days"
        )),
        "{errs:?}"
    );
}

fn write_secret(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn secret_files_every_user_can_read_or_that_are_not_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{BASE}\n[[sinks]]\nname = \"m\"\nkind = \"mqtt\"\nurl = \"mqtt://h\"\nusername = \"gw\"\npassword = {{ file = \"p\" }}\n"
    );
    let p = dir.path().join("p");
    std::fs::write(&p, "x\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = parse(&text, "site.toml", dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("its mode 0644 lets every user read it: chmod 0600"),
        "{e}"
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(
        parse(&text, "site.toml", dir.path()).is_ok(),
        "group-readable is how a service reads it"
    );
    // A FIFO would hang the read: refused without opening it.
    std::fs::remove_file(&p).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg(&p)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let e = parse(&text, "site.toml", dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
    // Offline (a laptop without the site's secrets): not read, not an error.
    set_offline(true);
    let site = parse(&text, "site.toml", dir.path());
    set_offline(false);
    assert!(site.is_ok());
}

#[test]
fn a_huge_or_non_utf8_site_file_is_refused_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("site.toml");
    let mut bytes = b"[site]\nname = \"tv\"\ntitle = \"Ph".to_vec();
    bytes.push(0xF2); // not UTF-8 (a Windows-1258 "ò")
    bytes.extend_from_slice(b"ng\"\n");
    std::fs::write(&p, &bytes).unwrap();
    let e = load(&p).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "site.toml:3:12: not UTF-8 text: save the file as UTF-8 (Vietnamese names need it)"
        ),
        "{e}"
    );
    std::fs::write(&p, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
    let e = load(&p).unwrap_err().to_string();
    assert!(
        e.contains("a site file may be at most 1048576 bytes"),
        "{e}"
    );
}

#[test]
fn standby_is_read_with_its_limits_and_errors_at_their_place() {
    let ok = format!("{BASE}\n[standby]\nrole = \"secondary\"\npeer = \"gw-a\"\ntakeover_s = 5\n");
    let site = parse(&ok, "site.toml", Path::new(".")).unwrap();
    let s = site.standby.unwrap();
    assert_eq!(s.role, crate::runtime::standby::Role::Secondary);
    assert_eq!((s.peer.as_str(), s.takeover.as_secs()), ("gw-a", 5));
    assert!(
        parse(BASE, "site.toml", Path::new("."))
            .unwrap()
            .standby
            .is_none()
    );
    let line = BASE.lines().count() + 5;
    let bad = format!("{BASE}\n[standby]\nrole = \"secondary\"\npeer = \"gw-a\"\ntakeover_s = 1\n");
    let err = parse(&bad, "site.toml", Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "site.toml:{line}:14: standby.takeover_s: use 2 to 600"
        )),
        "{err}"
    );
    let bad = format!("{BASE}\n[standby]\nrole = \"third\"\npeer = \"gw-a\"\n");
    let err = parse(&bad, "site.toml", Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(err.contains("standby") && err.contains("third"), "{err}");
}
