//! Sinks as a list: routing between two MQTT sinks, the first release's config form,
//! and queues on disk from that form delivered after the upgrade — the real binary
//! against Mosquitto and pymodbus.
//!
//! Fixture values: XY-MD02 input registers from its manual's examples (0x00EB = 23.5 °C
//! by the manual's value/10 rule, 0x0131 = 30.5 °C, 0x0222 = 54.6 %RH).

use std::time::Duration;

use crate::e2e::{Gateway, site};
use crate::peers::{
    ModbusServer, ModbusSpec, Mosquitto, MosquittoOpts, UnitSpec, free_port, peer_tempdir,
};

fn sensor() -> ModbusServer {
    ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])))
}

/// Whether the API lists the temperature_high alarm as active.
fn high(alarms: &serde_json::Value) -> bool {
    alarms["alarms"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["rule"] == "temperature_high"))
}

fn events(m: &[crate::peers::MqttMessage], state: &str) -> usize {
    m.iter()
        .filter(|x| {
            x.topic.ends_with("/alarms/events") && x.payload_str().contains(&format!("\"{state}\""))
        })
        .count()
}

#[test]
fn an_alarm_only_sink_gets_no_reading_and_a_readings_only_sink_no_alarm() {
    let modbus = sensor();
    let readings_broker = Mosquitto::start(MosquittoOpts::default());
    let alarms_broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("sinks-route");
    let sinks = format!(
        "[[sinks]]\nname = \"readings\"\nkind = \"mqtt\"\naccepts = [\"readings\"]\nurl = \"{}\"\nclient_id = \"gw-readings\"\n\n\
         [[sinks]]\nname = \"alarms\"\nkind = \"mqtt\"\naccepts = [\"alarms\"]\nurl = \"{}\"\nclient_id = \"gw-alarms\"\n",
        readings_broker.url(),
        alarms_broker.url()
    );
    let sub_r = readings_broker.subscribe("dcgw/route/#");
    let sub_a = alarms_broker.subscribe("dcgw/route/#");
    let gw = Gateway::start(
        &site("route", free_port(), modbus.addr().port(), 500, &sinks),
        dir.path(),
    );
    sub_r
        .wait_for(
            |m| m.iter().any(|x| x.topic == "dcgw/route/th1/temperature_c"),
            Duration::from_secs(15),
        )
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    // 30.5 °C is above 27 °C: raised, then back to 23.5 °C: cleared.
    modbus.set_input(1, 1, &[0x0131]);
    sub_a
        .wait_for(|m| events(m, "raised") >= 1, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    modbus.set_input(1, 1, &[0x00EB]);
    sub_a
        .wait_for(|m| events(m, "cleared") >= 1, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    // Several more polls for a reading to slip through where it must not.
    std::thread::sleep(Duration::from_millis(1500));
    let on_r = sub_r.messages();
    let on_a = sub_a.messages();
    assert!(
        on_r.iter().all(|x| !x.topic.contains("/alarms/")),
        "the readings-only broker got alarm traffic: {:?}",
        on_r.iter()
            .filter(|x| x.topic.contains("/alarms/"))
            .map(|x| &x.topic)
            .collect::<Vec<_>>()
    );
    assert!(
        on_r.iter()
            .filter(|x| x.topic == "dcgw/route/th1/temperature_c")
            .count()
            >= 2,
        "readings keep flowing to the readings-only broker"
    );
    let readings_on_a: Vec<&String> = on_a
        .iter()
        .map(|x| &x.topic)
        .filter(|t| {
            t.starts_with("dcgw/route/th1/")
                || t.starts_with("dcgw/route/gateway/") && !t.ends_with("/status")
        })
        .collect();
    assert!(
        readings_on_a.is_empty(),
        "the alarm-only broker got readings: {readings_on_a:?}"
    );
    // Both connections announce the gateway (status and last will are the link's, not records).
    assert!(
        on_a.iter()
            .any(|x| x.topic == "dcgw/route/gateway/status" && x.payload_str() == "online")
    );
}

#[test]
fn the_first_release_config_form_still_runs_and_warns_with_the_new_form() {
    let modbus = sensor();
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("sinks-old-form");
    let sinks = format!("[sinks.mqtt]\nurl = \"{}\"\n", broker.url());
    let text = site("oldform", free_port(), modbus.addr().port(), 500, &sinks);
    // check-config: accepted, with the warning on stderr naming the line and the new form.
    let cfg = dir.path().join("check.toml");
    std::fs::write(&cfg, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check-config refused the old form: {stderr}"
    );
    let line = text.lines().position(|l| l == "[sinks.mqtt]").unwrap() + 1;
    assert!(
        stderr.contains(&format!(
            "check.toml:{line}:8: sinks.mqtt: [sinks.mqtt] is the first release's form"
        )) && stderr.contains("[[sinks]]\n    name = \"mqtt\"\n    kind = \"mqtt\""),
        "{stderr}"
    );
    // run: monitoring goes on.
    let sub = broker.subscribe("dcgw/oldform/#");
    let gw = Gateway::start(&text, dir.path());
    sub.wait_for(
        |m| {
            m.iter()
                .any(|x| x.topic == "dcgw/oldform/th1/temperature_c" && x.payload_str() == "23.5")
        },
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    assert!(gw.log().contains("first release's form"), "{}", gw.log());
}

#[test]
fn alarms_queued_under_the_old_sink_name_are_delivered_after_the_upgrade() {
    let modbus = sensor();
    let mut broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("sinks-upgrade");
    let web = free_port();
    let old = format!("[sinks.mqtt]\nurl = \"{}\"\n", broker.url());
    // The broker goes away; an alarm is raised and cleared meanwhile: both events wait
    // in the queue named after the old form's sink (`mqtt`).
    broker.stop();
    let mut gw = Gateway::start(
        &site("upgrade", web, modbus.addr().port(), 500, &old),
        dir.path(),
    );
    modbus.set_input(1, 1, &[0x0131]);
    crate::peers::wait_until("alarm raised on the API", Duration::from_secs(10), || {
        high(&gw.api("/api/v1/alarms"))
    })
    .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    modbus.set_input(1, 1, &[0x00EB]);
    crate::peers::wait_until(
        "alarm cleared while the broker is away",
        Duration::from_secs(10),
        || !high(&gw.api("/api/v1/alarms")),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nsinks: {}\nalarms: {}\n--- gateway log ---\n{}",
            gw.api("/api/v1/sinks"),
            gw.api("/api/v1/alarms"),
            gw.log()
        )
    });
    gw.kill();
    // Upgrade the config to the list form with another sink name; the broker returns.
    let new = format!(
        "[[sinks]]\nname = \"alarms-broker\"\nkind = \"mqtt\"\nurl = \"{}\"\n",
        broker.url()
    );
    std::fs::write(
        dir.path().join("site.toml"),
        site("upgrade", web, modbus.addr().port(), 500, &new),
    )
    .unwrap();
    broker.start_again();
    let sub = broker.subscribe("dcgw/upgrade/alarms/events");
    gw.restart();
    let got = sub
        .wait_for(
            |m| {
                let high: Vec<_> = m
                    .iter()
                    .filter(|x| x.payload_str().contains("\"temperature_high\""))
                    .cloned()
                    .collect();
                events(&high, "raised") >= 1 && events(&high, "cleared") >= 1
            },
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    let seqs: Vec<u64> = got
        .iter()
        .map(|x| {
            serde_json::from_str::<serde_json::Value>(&x.payload_str()).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "delivered in order: {seqs:?}"
    );
    assert!(
        gw.log().contains("carried over to sink \"alarms-broker\""),
        "{}",
        gw.log()
    );
    // The sink list on the API is refreshed on the hub's 1 s tick.
    crate::peers::wait_until("the sink on the API", Duration::from_secs(5), || {
        gw.api("/api/v1/sinks")["sinks"][0]["name"] == "alarms-broker"
    })
    .unwrap_or_else(|e| panic!("{e}: {}", gw.api("/api/v1/sinks")));
}

#[test]
fn a_device_that_stops_answering_has_its_state_on_its_status_topic() {
    let mut modbus = sensor();
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("sinks-status");
    let sinks = format!(
        "[[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\n",
        broker.url()
    );
    let sub = broker.subscribe("dcgw/st/status/#");
    let gw = Gateway::start(
        &site("st", free_port(), modbus.addr().port(), 500, &sinks),
        dir.path(),
    );
    let status = |m: &[crate::peers::MqttMessage]| -> Vec<serde_json::Value> {
        m.iter()
            .filter(|x| x.topic == "dcgw/st/status/th1")
            .map(|x| serde_json::from_str(&x.payload_str()).unwrap())
            .collect()
    };
    sub.wait_for(
        |m| {
            status(m)
                .iter()
                .any(|s| s["comm_ok"] == true && s["quality"] == "good")
        },
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    // Published on a change only, not on every poll.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        status(&sub.messages()).len(),
        1,
        "one message while nothing changes"
    );
    modbus.pause(); // SIGSTOP: requests time out
    let got = sub
        .wait_for(
            |m| status(m).iter().any(|s| s["comm_ok"] == false),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    let s = status(&got)
        .into_iter()
        .find(|s| s["comm_ok"] == false)
        .unwrap();
    assert_eq!(s["quality"], "timeout");
    assert!(s["ts"].as_str().is_some(), "the last good poll's time: {s}");
    modbus.resume();
}

#[test]
fn an_unusable_state_dir_gives_a_degraded_start_not_a_dead_gateway() {
    let modbus = sensor();
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("sinks-degraded");
    // A file where the state directory's parent should be: nobody, root included, can
    // create the directory.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let sinks = format!(
        "[[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\n",
        broker.url()
    );
    let text = site("dg", free_port(), modbus.addr().port(), 500, &sinks)
        + &format!(
            "\n[storage]\nstate_dir = \"{}\"\n",
            blocker.join("state").display()
        );
    let cfg = dir.path().join("site.toml");
    std::fs::write(&cfg, &text).unwrap();
    let web = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let sub = broker.subscribe("dcgw/dg/#");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("gateway.log")).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
    // Readings and the state alarm still reach the broker.
    let got = sub
        .wait_for(
            |m| {
                m.iter().any(|x| x.topic == "dcgw/dg/th1/temperature_c")
                    && m.iter().any(|x| {
                        x.topic == "dcgw/dg/alarms/events"
                            && x.payload_str().contains("\"state_dir_failed\"")
                            && x.payload_str().contains("\"serious\"")
                    })
            },
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("{e}\n--- gateway log ---\n{}", log())
        });
    assert!(!got.is_empty());
    // /healthz says why, with 503.
    let h = crate::peers::http_get(&format!("http://{web}/healthz")).expect("healthz answers");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(h.status, 503, "{}", h.text());
    assert!(h.text().contains("cannot be used"), "{}", h.text());
    assert!(log().contains("state kept in"), "{}", log());
}
