//! Commands from people and the alarm lifecycle, end to end: the real binary, pymodbus
//! and Mosquitto. An acknowledgement on the MQTT command topic is answered, applied
//! once per command id, and shows on the API and as an `acked` event with the
//! operator; a serious alarm that clears before anyone acknowledged it stays listed
//! (API and retained MQTT) until acknowledged through the board's local socket.
//!
//! Fixture values: XY-MD02 input registers from its manual (value/10 °C): 0x00EB =
//! 23.5 °C, 0x0131 = 30.5 °C (above the 27 °C normal limit), 0x0150 = 33.6 °C (above the
//! 32 °C serious limit; THRESHOLDS.md).

use std::time::Duration;

use crate::e2e::{Gateway, site};
use crate::peers::{
    ModbusServer, ModbusSpec, Mosquitto, MosquittoOpts, MqttMessage, UnitSpec, free_port,
    peer_tempdir, wait_until,
};

fn json(m: &MqttMessage) -> serde_json::Value {
    serde_json::from_str(&m.payload_str()).unwrap_or(serde_json::Value::Null)
}

fn events<'a>(m: &'a [MqttMessage], state: &str) -> Vec<serde_json::Value> {
    m.iter()
        .filter(|x| x.topic.ends_with("/alarms/events"))
        .map(json)
        .filter(|e| e["state"] == state && e["rule"] == "temperature_high")
        .collect()
}

/// Send a command until its answer comes (a client resends with the same id until
/// answered; the gateway applies it once). Returns the answer.
fn command(broker: &Mosquitto, prefix: &str, cmd: &str) -> serde_json::Value {
    let id = serde_json::from_str::<serde_json::Value>(cmd).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let replies = broker.subscribe(&format!("{prefix}/commands/replies"));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        broker.publish(&format!("{prefix}/commands"), cmd, false);
        if let Ok(m) = replies.wait_for(
            |m| m.iter().any(|x| json(x)["id"] == id),
            Duration::from_millis(700),
        ) {
            return json(m.iter().find(|x| json(x)["id"] == id).unwrap());
        }
    }
    panic!("no answer to command {id}");
}

fn high(gw: &Gateway) -> Option<serde_json::Value> {
    gw.api("/api/v1/alarms")["alarms"]
        .as_array()?
        .iter()
        .find(|a| a["rule"] == "temperature_high")
        .cloned()
}

#[test]
fn an_mqtt_acknowledgement_is_answered_applied_once_and_shown_everywhere() {
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("commands");
    let sinks = format!(
        "[[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\ncommands = true\n",
        broker.url()
    );
    let text = site("cmd", free_port(), modbus.addr().port(), 500, &sinks)
        .replace("language = \"en\"", "language = \"en\"\ngateway = \"gw-a\"");
    let sub = broker.subscribe("dcgw/cmd/#");
    let gw = Gateway::start(&text, dir.path());
    let log = |e: String| -> ! { panic!("{e}\n--- gateway log ---\n{}", gw.log()) };

    // The per-gateway status topic, beside the site's.
    sub.wait_for(
        |m| {
            m.iter()
                .any(|x| x.topic == "dcgw/cmd/gateways/gw-a/status" && x.payload_str() == "online")
        },
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| log(e.to_string()));

    modbus.set_input(1, 1, &[0x0131]);
    let raised = sub
        .wait_for(|m| !events(m, "raised").is_empty(), Duration::from_secs(10))
        .unwrap_or_else(|e| log(e.to_string()));
    let ev = events(&raised, "raised").remove(0);
    let no = ev["no"].as_u64().expect("alarm number");
    assert!(no >= 1);
    assert_eq!(ev["gateway"], "gw-a");
    assert_eq!(ev["name"], "th1");
    assert_eq!(ev["label"], "TH-01");
    assert_eq!(ev["room"], "server1");
    assert!(
        ev["local_ts"]
            .as_str()
            .is_some_and(|t| t.ends_with("+07:00")),
        "{ev}"
    );
    assert_eq!(ev["value"], 30.5);

    // Acknowledge by MQTT command; the same command sent twice is applied once.
    let cmd = format!(
        r#"{{"id":"ack-1","verb":"ack","target":"{no}","by":"Nguyen Van An","comment":"checking the CRAC"}}"#
    );
    broker.publish("dcgw/cmd/commands", &cmd, false);
    let got = sub
        .wait_for(
            |m| {
                m.iter()
                    .any(|x| x.topic == "dcgw/cmd/commands/replies" && json(x)["id"] == "ack-1")
                    && !events(m, "acked").is_empty()
            },
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    let reply = got
        .iter()
        .find(|x| x.topic == "dcgw/cmd/commands/replies")
        .map(json)
        .unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["result"], format!("alarm {no} acknowledged"));
    let acked = events(&got, "acked").remove(0);
    assert_eq!(acked["by"], "Nguyen Van An");
    assert_eq!(acked["comment"], "checking the CRAC");
    assert_eq!(acked["no"], no);
    let a = high(&gw).expect("still listed: the condition holds");
    assert_eq!(a["state"], "acked");
    assert_eq!(a["acked_by"], "Nguyen Van An");

    sub.clear();
    broker.publish("dcgw/cmd/commands", &cmd, false);
    let again = sub
        .wait_for(
            |m| m.iter().any(|x| x.topic == "dcgw/cmd/commands/replies"),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    let reply = again
        .iter()
        .find(|x| x.topic == "dcgw/cmd/commands/replies")
        .map(json)
        .unwrap();
    assert_eq!(
        (reply["ok"].clone(), reply["repeated"].clone()),
        (true.into(), true.into()),
        "{reply}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(events(&sub.messages(), "acked").is_empty(), "applied once");

    // A malformed command is answered with the reason and changes nothing.
    broker.publish(
        "dcgw/cmd/commands",
        r#"{"id":"x1","verb":"reboot","by":"x"}"#,
        false,
    );
    let bad = sub
        .wait_for(
            |m| {
                m.iter()
                    .any(|x| x.topic == "dcgw/cmd/commands/replies" && json(x)["id"] == "x1")
            },
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    let reply = bad
        .iter()
        .rev()
        .find(|x| x.topic == "dcgw/cmd/commands/replies")
        .map(json)
        .unwrap();
    assert_eq!(reply["ok"], false);
    assert!(
        reply["error"].as_str().unwrap().contains("reboot"),
        "{reply}"
    );

    // Shelve (reason required, default length from the site's [alarms]) and unshelve.
    sub.clear();
    broker.publish(
        "dcgw/cmd/commands",
        &format!(r#"{{"id":"sh-1","verb":"shelve","target":"{no}","by":"An","reason":"probe being replaced","minutes":20}}"#),
        false,
    );
    let sh = sub
        .wait_for(
            |m| !events(m, "shelved").is_empty(),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    let ev = events(&sh, "shelved").remove(0);
    assert_eq!(
        (ev["by"].as_str(), ev["comment"].as_str()),
        (Some("An"), Some("probe being replaced"))
    );
    assert!(ev["shelved_until"].as_str().is_some(), "{ev}");
    assert_eq!(high(&gw).unwrap()["state"], "shelved");
    broker.publish(
        "dcgw/cmd/commands",
        &format!(r#"{{"id":"sh-2","verb":"unshelve","target":"{no}","by":"Binh"}}"#),
        false,
    );
    sub.wait_for(
        |m| events(m, "unshelved").iter().any(|e| e["by"] == "Binh"),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| log(e.to_string()));
    assert_eq!(high(&gw).unwrap()["state"], "acked");

    // Back to normal: an acknowledged alarm leaves the list.
    modbus.set_input(1, 1, &[0x00EB]);
    wait_until(
        "acknowledged alarm gone after its clear",
        Duration::from_secs(10),
        || high(&gw).is_none(),
    )
    .unwrap_or_else(|e| log(e.to_string()));
}

#[test]
fn a_serious_alarm_cleared_unacknowledged_stays_listed_until_acknowledged_on_the_board() {
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("commands-serious");
    let sinks = format!(
        "[[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\n",
        broker.url()
    );
    let gw = Gateway::start(
        &site("ser", free_port(), modbus.addr().port(), 500, &sinks),
        dir.path(),
    );
    let log = |e: String| -> ! { panic!("{e}\n--- gateway log ---\n{}", gw.log()) };
    let sub = broker.subscribe("dcgw/ser/alarms/#");

    modbus.set_input(1, 1, &[0x0150]);
    wait_until("serious alarm", Duration::from_secs(10), || {
        high(&gw).is_some_and(|a| a["level"] == "serious")
    })
    .unwrap_or_else(|e| log(e.to_string()));
    let no = high(&gw).unwrap()["no"].as_u64().unwrap();
    modbus.set_input(1, 1, &[0x00EB]);
    let cleared = sub
        .wait_for(
            |m| {
                !events(m, "cleared").is_empty()
                    && m.iter().any(|x| {
                        x.topic == "dcgw/ser/alarms/active/th1/temperature_high"
                            && (x.payload.is_empty() || json(x)["state"] == "cleared")
                    })
            },
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    // Still listed, cleared: on the API and retained on the broker.
    let a = high(&gw).expect("listed until acknowledged");
    assert_eq!(
        (a["state"].as_str(), a["no"].as_u64()),
        (Some("cleared"), Some(no))
    );
    let retained: Vec<&MqttMessage> = cleared
        .iter()
        .filter(|x| x.topic == "dcgw/ser/alarms/active/th1/temperature_high")
        .collect();
    let last = retained.last().expect("retained state");
    assert!(
        !last.payload.is_empty(),
        "the retained alarm must stay until acknowledged"
    );
    assert_eq!(json(last)["state"], "cleared");
    let fresh = broker.subscribe("dcgw/ser/alarms/active/#");
    fresh
        .wait_for(
            |m| {
                m.iter().any(|x| {
                    x.topic.ends_with("/th1/temperature_high") && json(x)["state"] == "cleared"
                })
            },
            Duration::from_secs(5),
        )
        .expect("a new subscriber gets the cleared, unacknowledged alarm");

    // Acknowledged on the board's console: gone from the list and the broker.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args([
            "ack",
            &no.to_string(),
            "--by",
            "Tran Thi Binh",
            "--state-dir",
        ])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    sub.wait_for(
        |m| {
            m.iter().any(|x| {
                x.topic == "dcgw/ser/alarms/active/th1/temperature_high" && x.payload.is_empty()
            }) && events(m, "acked")
                .iter()
                .any(|e| e["by"] == "Tran Thi Binh")
        },
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| log(e.to_string()));
    assert!(high(&gw).is_none());
    // A second acknowledgement of the same alarm is refused with the reason.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["ack", &no.to_string(), "--by", "X", "--state-dir"])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no listed alarm"));
}

#[test]
fn at_start_retained_alarm_states_this_gateway_no_longer_lists_are_emptied() {
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let broker = Mosquitto::start(MosquittoOpts::default());
    // Left on the broker by an earlier run: ours (a device since removed, and one of
    // the first release without a gateway field) and another gateway's.
    let ours = r#"{"device":"old-ups","rule":"comm_lost","state":"raised","gateway":"gw-a"}"#;
    let first_release = r#"{"device":"old-th","rule":"comm_lost","state":"raised"}"#;
    let theirs = r#"{"device":"ups9","rule":"comm_lost","state":"raised","gateway":"gw-b"}"#;
    broker.publish("dcgw/rec/alarms/active/old-ups/comm_lost", ours, true);
    broker.publish(
        "dcgw/rec/alarms/active/old-th/comm_lost",
        first_release,
        true,
    );
    broker.publish("dcgw/rec/alarms/active/ups9/comm_lost", theirs, true);
    let dir = peer_tempdir("commands-reconcile");
    let sinks = format!(
        "[[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\n",
        broker.url()
    );
    let text = site("rec", free_port(), modbus.addr().port(), 500, &sinks)
        .replace("language = \"en\"", "language = \"en\"\ngateway = \"gw-a\"");
    let sub = broker.subscribe("dcgw/rec/alarms/active/#");
    let gw = Gateway::start(&text, dir.path());
    sub.wait_for(
        |m| {
            let emptied = |t: &str| m.iter().any(|x| x.topic == t && x.payload.is_empty());
            emptied("dcgw/rec/alarms/active/old-ups/comm_lost")
                && emptied("dcgw/rec/alarms/active/old-th/comm_lost")
        },
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    // Another gateway's retained state is not ours to touch.
    let fresh = broker.subscribe("dcgw/rec/alarms/active/#");
    let kept = fresh
        .wait_for(
            |m| m.iter().any(|x| x.topic.ends_with("/ups9/comm_lost")),
            Duration::from_secs(5),
        )
        .expect("the other gateway's retained alarm is still there");
    assert!(
        kept.iter().all(|x| !x.topic.contains("/old-")),
        "emptied ones stay gone"
    );
}

/// A site with two XY-MD02 sensors (units 1 and 2 behind one endpoint), every alarm at
/// once (no on-delay), the rate rule off (its history does not survive a restart).
fn two_sensors(name: &str, web: u16, modbus_port: u16, sinks: &str) -> String {
    let one = site(name, web, modbus_port, 500, sinks);
    format!(
        "{one}\n[rules.temperature_rate_15min]\nenabled = false\n[rules.humidity_high]\non_delay_s = 0\n\n\
         [[devices]]\nid = \"th2\"\nroom = \"server1\"\nkind = \"climate\"\nprofile = \"xy-md02\"\npoll_interval_ms = 500\ntimeout_ms = 500\n\
         [devices.modbus_tcp]\nhost = \"127.0.0.1\"\nport = {modbus_port}\nunit_id = 2\n[devices.rules.temperature_high]\non_delay_s = 0\n"
    )
}

fn listed(gw: &Gateway) -> Vec<(String, String, Option<String>)> {
    let mut v: Vec<_> = gw.api("/api/v1/alarms")["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["key"].as_str().unwrap().to_string(),
                a["state"].as_str().unwrap().to_string(),
                a["acked_by"].as_str().map(str::to_string),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn after_sigkill_and_restart_the_same_alarms_and_acknowledgement_are_on_the_api_and_the_broker() {
    // th1: 30.5 °C and 65.0 %RH (0x028A, above 60 %), th2: 30.5 °C → three alarms.
    let modbus = ModbusServer::start(
        ModbusSpec::new()
            .unit(1, UnitSpec::new().input(1, &[0x0131, 0x028A]))
            .unit(2, UnitSpec::new().input(1, &[0x0131, 0x0222])),
    );
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("commands-restart");
    let sinks = format!(
        "[[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\ncommands = true\n",
        broker.url()
    );
    let mut gw = Gateway::start(
        &two_sensors("rs", free_port(), modbus.addr().port(), &sinks),
        dir.path(),
    );
    let want_keys = [
        "th1/humidity_high",
        "th1/temperature_high",
        "th2/temperature_high",
    ];
    wait_until("three alarms", Duration::from_secs(15), || {
        listed(&gw)
            .iter()
            .map(|(k, _, _)| k.as_str())
            .collect::<Vec<_>>()
            == want_keys
    })
    .unwrap_or_else(|e| panic!("{e}\n{:?}\n--- gateway log ---\n{}", listed(&gw), gw.log()));
    let no = high(&gw).unwrap()["no"].as_u64().unwrap();
    let replies = broker.subscribe("dcgw/rs/commands/replies");
    let cmd = format!(r#"{{"id":"k-1","verb":"ack","target":"{no}","by":"Le Van Cuong"}}"#);
    broker.publish("dcgw/rs/commands", &cmd, false);
    replies
        .wait_for(
            |m| {
                m.iter()
                    .any(|x| json(x)["id"] == "k-1" && json(x)["ok"] == true)
            },
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    // Killed right after answering: no orderly stop.
    gw.kill();

    // The command is in the journal, with its origin and answer.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["journal", "--json", "--kind", "command", "--state-dir"])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let c = &lines[0];
    assert_eq!(
        (c["kind"].as_str(), c["id"].as_str(), c["verb"].as_str()),
        (Some("command"), Some("k-1"), Some("ack"))
    );
    assert_eq!(c["by"], "Le Van Cuong");
    assert_eq!(c["origin"]["entry"], "mqtt");
    assert_eq!(c["reply"]["ok"], true);

    // Restart: exactly the three alarms, the acknowledgement kept.
    gw.restart();
    let after = listed(&gw);
    assert_eq!(
        after,
        vec![
            ("th1/humidity_high".to_string(), "raised".to_string(), None),
            (
                "th1/temperature_high".to_string(),
                "acked".to_string(),
                Some("Le Van Cuong".to_string())
            ),
            (
                "th2/temperature_high".to_string(),
                "raised".to_string(),
                None
            ),
        ]
    );
    // The broker holds exactly those three (none emptied, none extra).
    let fresh = broker.subscribe("dcgw/rs/alarms/active/#");
    let got = fresh
        .wait_for(|m| m.len() >= 3, Duration::from_secs(5))
        .expect("retained alarm states");
    std::thread::sleep(Duration::from_millis(2500)); // past the start's reconciliation
    let fresh = broker.subscribe("dcgw/rs/alarms/active/#");
    let got2 = fresh
        .wait_for(|m| m.len() >= 3, Duration::from_secs(5))
        .expect("retained after reconciliation");
    for got in [&got, &got2] {
        let mut topics: Vec<&str> = got
            .iter()
            .filter(|x| !x.payload.is_empty())
            .map(|x| x.topic.as_str())
            .collect();
        topics.sort();
        topics.dedup();
        assert_eq!(
            topics,
            vec![
                "dcgw/rs/alarms/active/th1/humidity_high",
                "dcgw/rs/alarms/active/th1/temperature_high",
                "dcgw/rs/alarms/active/th2/temperature_high"
            ]
        );
    }
    // The same command id after the restart: the first answer, not applied again.
    replies.clear();
    broker.publish("dcgw/rs/commands", &cmd, false);
    let again = replies
        .wait_for(
            |m| m.iter().any(|x| json(x)["id"] == "k-1"),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    let r = json(again.iter().find(|x| json(x)["id"] == "k-1").unwrap());
    assert_eq!(
        (r["ok"].clone(), r["repeated"].clone()),
        (true.into(), true.into()),
        "{r}"
    );
    assert_eq!(listed(&gw), after, "not applied again");
}

#[test]
fn a_journal_at_its_budget_raises_its_alarm_and_keeps_every_entry() {
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let dir = peer_tempdir("commands-journal-full");
    let state = dir.path().join("state");
    // An earlier year's worth of entries, more than the 64 KiB budget holds.
    {
        let j = dc_gateway::journal::Journal::open(&state, dc_gateway::journal::Options::default())
            .unwrap();
        let pad = "x".repeat(400);
        let entries = (0..400)
            .map(|i| dc_gateway::journal::NewEntry {
                ts: dc_gateway::model::Timestamp::now(),
                kind: dc_gateway::journal::Kind::Command,
                gateway: "gw".into(),
                device: None,
                data: serde_json::json!({"id": format!("old-{i}"), "pad": pad}),
            })
            .collect();
        j.append_all(entries).unwrap();
    }
    let text = site("jf", free_port(), modbus.addr().port(), 500, "")
        + "\n[storage]\njournal_max_size_bytes = 65536\n";
    let gw = Gateway::start(&text, dir.path());
    wait_until("journal_full raised", Duration::from_secs(10), || {
        gw.api("/api/v1/alarms")["alarms"]
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|x| x["rule"] == "journal_full" && x["level"] == "serious")
            })
    })
    .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    // Every entry kept, and the journal goes on taking new ones.
    let j = gw.api("/api/v1/journal?kind=command&limit=10000");
    assert_eq!(j["entries"].as_array().unwrap().len(), 400);
    let alarms = gw.api("/api/v1/journal?kind=alarm&limit=100");
    assert!(
        alarms["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["rule"] == "journal_full"),
        "{alarms}"
    );
}

#[test]
fn alarms_in_a_maintenance_window_are_journaled_and_flagged_and_the_window_survives_a_restart() {
    let modbus = ModbusServer::start(
        ModbusSpec::new()
            .unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222]))
            .unit(2, UnitSpec::new().input(1, &[0x00EB, 0x0222])),
    );
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("commands-maintenance");
    let sinks = format!(
        "[[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\ncommands = true\n",
        broker.url()
    );
    // th2 is covered by a planned window all day; th1 gets one by command.
    let text = two_sensors("mt", free_port(), modbus.addr().port(), &sinks)
        + "\n[[maintenance]]\ntarget = \"th2\"\nwhen = [\"daily 00:00-24:00\"]\nreason = \"sensor swap\"\n";
    let mut gw = Gateway::start(&text, dir.path());
    let sub = broker.subscribe("dcgw/mt/#");
    let log = |gw: &Gateway, e: String| -> ! { panic!("{e}\n--- gateway log ---\n{}", gw.log()) };
    let r = command(
        &broker,
        "dcgw/mt",
        r#"{"id":"m-1","verb":"maintenance_start","target":"th1","by":"An","reason":"filter change","minutes":30}"#,
    );
    assert_eq!(r["ok"], true, "{r}");
    modbus.set_input(1, 1, &[0x0131]);
    modbus.set_input(2, 1, &[0x0131]);
    let got = sub
        .wait_for(|m| events(m, "raised").len() >= 2, Duration::from_secs(10))
        .unwrap_or_else(|e| log(&gw, e.to_string()));
    for ev in events(&got, "raised") {
        assert_eq!(ev["in_maintenance"], true, "{ev}");
    }
    // Ended: the next transition of th1 is not in maintenance; th2's plan still holds.
    gw.kill();
    gw.restart();
    let sub = broker.subscribe("dcgw/mt/#");
    let r = command(
        &broker,
        "dcgw/mt",
        r#"{"id":"m-2","verb":"maintenance_end","target":"th1","by":"An"}"#,
    );
    assert_eq!(
        r["ok"], true,
        "the window opened before the restart must still be open: {r}"
    );
    modbus.set_input(1, 1, &[0x00EB]);
    modbus.set_input(2, 1, &[0x00EB]);
    let got = sub
        .wait_for(|m| events(m, "cleared").len() >= 2, Duration::from_secs(10))
        .unwrap_or_else(|e| log(&gw, e.to_string()));
    let cleared = events(&got, "cleared");
    let by_dev =
        |d: &str| cleared.iter().find(|e| e["device"] == d).unwrap()["in_maintenance"].clone();
    assert_eq!(by_dev("th1"), false);
    assert_eq!(by_dev("th2"), true);
    // Journaled with the flag.
    let j = gw.api("/api/v1/journal?kind=alarm&device=th2&limit=100");
    assert!(
        j["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["in_maintenance"] == true),
        "{j}"
    );
}
