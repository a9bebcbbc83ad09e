//! The GPIO source through the whole pipeline, in-process, with the fake GPIO backend
//! (`dc_gateway::sources::gpio::fake`, the same trait as the kernel's; this CI kernel
//! has no gpio-sim) and a real Mosquitto: an edge becomes an MQTT alarm event; a
//! bouncing contact gives one alarm; edge → MQTT alarm event latency.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dc_gateway::sources::gpio::{fake::FakeGpio, use_backend};

use crate::peers::{Mosquitto, MosquittoOpts, MqttMessage, free_port, peer_tempdir};

fn json(m: &MqttMessage) -> serde_json::Value {
    serde_json::from_str(&m.payload_str()).unwrap_or(serde_json::Value::Null)
}

/// Alarm events of `rule` in state `state`.
fn events(m: &[MqttMessage], rule: &str, state: &str) -> usize {
    m.iter()
        .filter(|x| x.topic.ends_with("/alarms/events"))
        .map(json)
        .filter(|e| e["rule"] == rule && e["state"] == state)
        .count()
}

/// A Pi header with a fire panel's alarm contact (opto input, active-low) and a leak
/// rope controller's relay, as two logical devices in two rooms.
fn site(name: &str, dir: &Path, broker: &Mosquitto) -> String {
    format!(
        r#"
[site]
name = "{name}"
language = "en"
[[rooms]]
id = "server1"
[[rooms]]
id = "ups_room"
[web]
listen = "127.0.0.1:{web}"
[storage]
state_dir = "{state}"
[[sinks]]
name = "mqtt"
kind = "mqtt"
url = "{url}"
[[devices]]
id = "facp1"
label = "FACP-01"
room = "server1"
kind = "fire_panel"
profile = "gpio-fire-panel"
poll_interval_ms = 5000
[devices.gpio.lines]
fire_alarm = {{ name = "GPIO17", active_low = true, bias = "pull_up" }}
fault = {{ name = "GPIO27", active_low = true, bias = "pull_up" }}
[[devices]]
id = "leak1"
room = "ups_room"
kind = "leak"
profile = "gpio-leak"
poll_interval_ms = 5000
[devices.gpio.lines]
leak_detected = {{ chip = "gpiochip0", offset = 22, active_low = true }}
"#,
        web = free_port(),
        state = dir.join("state").display(),
        url = broker.url(),
    )
}

fn header() -> FakeGpio {
    let g = FakeGpio::new();
    let names: Vec<String> = (0..28).map(|i| format!("GPIO{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    g.add_chip("gpiochip0", &names);
    use_backend(Arc::new(g.clone()));
    g
}

struct Gw {
    rt: tokio::runtime::Runtime,
    running: Option<dc_gateway::runtime::Running>,
}

impl Gw {
    fn start(text: &str) -> Gw {
        let site = dc_gateway::config::parse(text, "site.toml", Path::new("/"))
            .unwrap_or_else(|e| panic!("{e}"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = rt
            .block_on(dc_gateway::runtime::start(site))
            .expect("gateway starts");
        Gw {
            rt,
            running: Some(running),
        }
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown(Duration::from_secs(2)));
        }
    }
}

/// A closed fire contact becomes a serious `fire_alarm` event on MQTT; a contact
/// bouncing 10 times in 20 ms gives one alarm; the leak rope on the same header is its
/// own device and room.
#[test]
fn an_edge_becomes_an_mqtt_alarm_event_and_a_bounce_one_alarm() {
    let dir = peer_tempdir("gpio");
    let broker = Mosquitto::start(MosquittoOpts::default());
    let g = header();
    let sub = broker.subscribe("dcgw/gp/alarms/#");
    let _gw = Gw::start(&site("gp", dir.path(), &broker));
    // Wait until the devices have been read once (the first still-alive polls).
    std::thread::sleep(Duration::from_millis(500));

    // Bounce: 10 edges in 20 ms, ending closed (low).
    for i in 0..10 {
        g.set_level("gpiochip0", 17, i % 2 == 1);
        std::thread::sleep(Duration::from_millis(2));
    }
    g.set_level("gpiochip0", 17, false);
    let m = sub
        .wait_for(
            |m| events(m, "fire_alarm", "raised") >= 1,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let ev = m
        .iter()
        .filter(|x| x.topic.ends_with("/alarms/events"))
        .map(json)
        .find(|e| e["rule"] == "fire_alarm")
        .unwrap();
    assert_eq!(ev["device"], "facp1");
    assert_eq!(ev["level"], "serious");
    assert_eq!(ev["label"], "FACP-01");
    assert_eq!(ev["room"], "server1");
    // Nothing more for the bounce.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        events(&sub.messages(), "fire_alarm", "raised"),
        1,
        "one alarm for a bounce"
    );
    assert_eq!(events(&sub.messages(), "fault", "raised"), 0);

    // The leak rope on the same header: its own device and room.
    g.set_level("gpiochip0", 22, false);
    let m = sub
        .wait_for(
            |m| events(m, "leak_detected", "raised") >= 1,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let ev = m
        .iter()
        .filter(|x| x.topic.ends_with("/alarms/events"))
        .map(json)
        .find(|e| e["rule"] == "leak_detected")
        .unwrap();
    assert_eq!(
        (ev["device"].as_str(), ev["room"].as_str()),
        (Some("leak1"), Some("ups_room"))
    );
}

/// Edge → MQTT alarm event latency, 20 raises and 20 clears of the fire contact
/// (debounce 20 ms, the default). Figures in docs/BENCHMARKS.md.
#[test]
fn edge_to_mqtt_alarm_latency() {
    let dir = peer_tempdir("gpio");
    let broker = Mosquitto::start(MosquittoOpts::default());
    let g = header();
    let sub = broker.subscribe("dcgw/gl/alarms/events");
    let _gw = Gw::start(&site("gl", dir.path(), &broker));
    std::thread::sleep(Duration::from_millis(500));
    let mut lat = Vec::new();
    for i in 1..=20 {
        for (level, state) in [(false, "raised"), (true, "cleared")] {
            let t = Instant::now();
            g.set_level("gpiochip0", 17, level);
            sub.wait_for(
                |m| events(m, "fire_alarm", state) >= i,
                Duration::from_secs(5),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            lat.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    lat.sort();
    let p50 = lat[lat.len() / 2];
    let p99 = lat[(lat.len() * 99).div_ceil(100) - 1];
    eprintln!(
        "edge -> MQTT alarm event, {} samples: p50 {p50:?}, p99 {p99:?}, max {:?}",
        lat.len(),
        lat[lat.len() - 1]
    );
    assert!(
        p50 >= Duration::from_millis(20),
        "debounce respected: {p50:?}"
    );
    assert!(p50 <= Duration::from_millis(50), "p50 {p50:?}");
    assert!(p99 <= Duration::from_millis(250), "p99 {p99:?}");
}

/// An ADAM-6050 (pymodbus serving its coil map) wired to a fire panel, a leak rope and a
/// door: three logical devices on one module, polled every 200 ms. A closed fire
/// contact is a serious alarm on MQTT within one poll interval + 50 ms.
#[test]
fn di_module_fire_contact_is_a_serious_alarm_within_one_poll() {
    use crate::peers::{ModbusServer, ModbusSpec, UnitSpec};
    let dir = peer_tempdir("di-module");
    let broker = Mosquitto::start(MosquittoOpts::default());
    let module = ModbusServer::start(
        ModbusSpec::new().unit(1, UnitSpec::new().coils(0, &[false; 18]).strict()),
    );
    let sub = broker.subscribe("dcgw/di/alarms/events");
    let mut text = format!(
        "[site]\nname = \"di\"\nlanguage = \"en\"\n[[rooms]]\nid = \"server1\"\n[[rooms]]\nid = \"corridor\"\n\
         [web]\nlisten = \"127.0.0.1:{}\"\n[storage]\nstate_dir = \"{}\"\n\
         [[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\n",
        free_port(),
        dir.path().join("state").display(),
        broker.url()
    );
    for (id, kind, room, profile) in [
        ("facp1", "fire_panel", "server1", "adam-6050-fire-panel"),
        ("leak1", "leak", "server1", "adam-6050-leak"),
        ("door1", "door", "corridor", "adam-6050-door"),
    ] {
        text += &format!(
            "[[devices]]\nid = \"{id}\"\nroom = \"{room}\"\nkind = \"{kind}\"\nprofile = \"{profile}\"\n\
             poll_interval_ms = 200\n[devices.modbus_tcp]\nhost = \"127.0.0.1\"\nport = {}\nunit_id = 1\n",
            module.addr().port()
        );
    }
    let _gw = Gw::start(&text);
    // Every channel read at least once, nothing raised.
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        module.request_count_fc(1, 1) >= 6,
        "coils read (function 01)"
    );
    assert_eq!(events(&sub.messages(), "fire_alarm", "raised"), 0);

    module.set_coils(1, 0, &[true]);
    let t = Instant::now();
    let m = sub
        .wait_for(
            |m| events(m, "fire_alarm", "raised") >= 1,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let took = t.elapsed();
    let ev = m
        .iter()
        .map(json)
        .find(|e| e["rule"] == "fire_alarm")
        .unwrap();
    assert_eq!(
        (ev["device"].as_str(), ev["level"].as_str()),
        (Some("facp1"), Some("serious"))
    );
    assert!(
        took <= Duration::from_millis(250),
        "fire contact to MQTT alarm: {took:?}"
    );
    // The leak channel of the same module is its own device.
    module.set_coils(1, 4, &[true]);
    let m = sub
        .wait_for(
            |m| events(m, "leak_detected", "raised") >= 1,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let ev = m
        .iter()
        .map(json)
        .find(|e| e["rule"] == "leak_detected")
        .unwrap();
    assert_eq!(ev["device"], "leak1");
    assert_eq!(events(&m, "fault", "raised"), 0);
}

/// An ADAM-4051 on RS-485 (pymodbus RTU on a socat pty pair) wired to a fire panel, a
/// leak rope and a door: three logical devices on unit 5 naming one `module`, polled
/// every 200 ms by one bus task. The fire contact raises a serious alarm within one
/// poll interval + 50 ms; the door channel is its own device in its own room.
#[test]
fn rs485_di_module_channels_share_one_unit_id() {
    use crate::peers::{ModbusServer, ModbusSpec, PtyPair, UnitSpec};
    let dir = peer_tempdir("di-rtu");
    let broker = Mosquitto::start(MosquittoOpts::default());
    let pty = PtyPair::start();
    let module = ModbusServer::start_rtu(
        ModbusSpec::new().unit(5, UnitSpec::new().coils(0, &[false; 16])),
        &pty.device,
    );
    let sub = broker.subscribe("dcgw/dr/alarms/events");
    let mut text = format!(
        "[site]\nname = \"dr\"\nlanguage = \"en\"\n[[rooms]]\nid = \"server1\"\n[[rooms]]\nid = \"corridor\"\n\
         [web]\nlisten = \"127.0.0.1:{}\"\n[storage]\nstate_dir = \"{}\"\n\
         [[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\n\
         [[buses]]\nid = \"bus1\"\nport = \"{}\"\nbaud = 19200\nparity = \"none\"\nstop_bits = 2\ntimeout_ms = 100\n",
        free_port(),
        dir.path().join("state").display(),
        broker.url(),
        pty.gateway.display(),
    );
    for (id, kind, room, profile) in [
        ("facp1", "fire_panel", "server1", "adam-4051-fire-panel"),
        ("leak1", "leak", "server1", "adam-4051-leak"),
        ("door1", "door", "corridor", "adam-4051-door"),
    ] {
        text += &format!(
            "[[devices]]\nid = \"{id}\"\nroom = \"{room}\"\nkind = \"{kind}\"\nprofile = \"{profile}\"\n\
             poll_interval_ms = 200\n[devices.modbus_rtu]\nbus = \"bus1\"\nunit_id = 5\nmodule = \"di-a1\"\n"
        );
    }
    let gw = Gw::start(&text);
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        module.request_count_fc(5, 1) >= 6,
        "three channels read their coils"
    );

    module.set_coils(5, 0, &[true]);
    let t = Instant::now();
    let m = sub
        .wait_for(
            |m| events(m, "fire_alarm", "raised") >= 1,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let took = t.elapsed();
    let ev = m
        .iter()
        .map(json)
        .find(|e| e["rule"] == "fire_alarm")
        .unwrap();
    assert_eq!(
        (ev["device"].as_str(), ev["level"].as_str()),
        (Some("facp1"), Some("serious"))
    );
    assert!(
        took <= Duration::from_millis(250),
        "fire contact to MQTT alarm: {took:?}"
    );

    // The door channel: a reading of its own device and room (its alarm waits 5 min).
    module.set_coils(5, 5, &[true]);
    let web = gw.running.as_ref().unwrap().web_addr;
    let door = || -> serde_json::Value {
        crate::peers::http_get(&format!("http://{web}/api/v1/readings?device=door1"))
            .expect("API answers")
            .json()
            .expect("JSON")
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let b = door();
        let r = &b["readings"][0];
        if r["point"] == "door_open" && r["value"] == true {
            assert_eq!(b["readings"].as_array().unwrap().len(), 1, "{b}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "door reading never turned true: {b}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        events(&sub.messages(), "door_open", "raised"),
        0,
        "door alarm waits 5 min"
    );
}

/// `dc-gateway probe` of a GPIO device, the real binary with the kernel backend: on this
/// machine (no such line) a clear error naming the device and the line, not a panic.
/// On a board the same command prints the line states (docs/GPIO.md "Manual check").
#[test]
fn probe_of_a_gpio_device_without_its_line_is_a_clear_error() {
    let dir = peer_tempdir("gpio-probe");
    let cfg = dir.path().join("site.toml");
    std::fs::write(
        &cfg,
        "[site]\nname = \"pr\"\n[[rooms]]\nid = \"r1\"\n[[devices]]\nid = \"door9\"\nroom = \"r1\"\n\
         kind = \"door\"\nprofile = \"gpio-door\"\n[devices.gpio.lines]\ndoor_open = { name = \"DCGW_TEST_NO_SUCH_LINE\" }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["probe", "--config"])
        .arg(&cfg)
        .args(["--device", "door9"])
        .output()
        .expect("run dc-gateway probe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "probe must fail: {stderr}");
    assert!(
        stderr.contains("no GPIO line named \"DCGW_TEST_NO_SUCH_LINE\" on any chip"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Sirens and beacons on the DO coils of an ADAM-6050 (pymodbus serving its map:
/// DO 0 = coil 16, DO 1 = coil 17; *ADAM-6000 Series User Manual*, Appendix B.2),
/// through the whole gateway. The coil states are read from pymodbus, not from the
/// gateway: a closed fire contact sets the siren and the beacon; acknowledging stops
/// the siren, the beacon stays while the alarm is listed; a new alarm sounds the siren
/// again and `silence` (a journaled command) stops it; an orderly stop switches every
/// output off.
#[test]
fn siren_coil_follows_the_fire_alarm_ack_and_silence() {
    use crate::peers::{ModbusServer, ModbusSpec, UnitSpec};
    let dir = peer_tempdir("siren");
    let module = ModbusServer::start(
        ModbusSpec::new().unit(1, UnitSpec::new().coils(0, &[false; 18]).strict()),
    );
    let port = module.addr().port();
    let text = format!(
        "[site]\nname = \"sr\"\nlanguage = \"en\"\n[[rooms]]\nid = \"server1\"\n\
         [web]\nlisten = \"127.0.0.1:{web}\"\n[storage]\nstate_dir = \"{state}\"\n\
         [[devices]]\nid = \"facp1\"\nroom = \"server1\"\nkind = \"fire_panel\"\nprofile = \"adam-6050-fire-panel\"\n\
         poll_interval_ms = 200\n[devices.modbus_tcp]\nhost = \"127.0.0.1\"\nport = {port}\nunit_id = 1\n\
         [[outputs]]\nid = \"siren1\"\ndrive = \"siren\"\nkinds = [\"fire_panel\", \"leak\"]\n\
         [outputs.modbus_tcp]\nhost = \"127.0.0.1\"\nport = {port}\nunit_id = 1\ncoil = 16\n\
         [[outputs]]\nid = \"beacon1\"\ndrive = \"beacon\"\n\
         [outputs.modbus_tcp]\nhost = \"127.0.0.1\"\nport = {port}\nunit_id = 1\ncoil = 17\n",
        web = free_port(),
        state = dir.path().join("state").display(),
    );
    let gw = Gw::start(&text);
    let running = gw.running.as_ref().unwrap();
    let outputs = || module.coils(1, 16, 2);
    let wait = |what: &str, want: [bool; 2]| {
        let end = Instant::now() + Duration::from_secs(3);
        while outputs() != want {
            assert!(
                Instant::now() < end,
                "{what}: coils {:?}, want {want:?}",
                outputs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let n = std::cell::Cell::new(0);
    let command = |verb: &str, target: &str| {
        n.set(n.get() + 1);
        let id = format!("c-{verb}-{}", n.get());
        let body = serde_json::json!({"id": id, "verb": verb, "target": target, "by": "An"});
        let origin = dc_gateway::commands::Origin {
            entry: "test".into(),
            peer: "it".into(),
        };
        let cmd = dc_gateway::commands::parse(body.to_string().as_bytes(), origin).unwrap();
        gw.rt
            .block_on(running.commands.send(cmd, Duration::from_secs(5)))
    };
    let listed = || running.shared.read().alarms.clone();

    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(outputs(), [false, false], "nothing listed");
    assert!(
        module.request_count_fc(1, 5) >= 2,
        "both outputs written at the start (function 05)"
    );

    module.set_coils(1, 0, &[true]);
    wait("fire alarm: siren and beacon on", [true, true]);
    let no = listed()
        .iter()
        .find(|a| &*a.rule == "fire_alarm")
        .map(|a| a.no)
        .unwrap();
    let r = command("ack", &no.to_string());
    assert!(r.ok, "{r:?}");
    wait("acknowledged: siren off, beacon on", [false, true]);

    // The contact opens: cleared and acknowledged, the alarm leaves the list.
    module.set_coils(1, 0, &[false]);
    wait("nothing listed: beacon off", [false, false]);

    // A new fire alarm sounds the siren again; silence stops it, the beacon stays.
    module.set_coils(1, 0, &[true]);
    wait("new alarm", [true, true]);
    let r = command("silence", "all");
    assert!(r.ok, "{r:?}");
    assert_eq!(r.result.as_deref(), Some("1 siren silenced"));
    wait("silenced", [false, true]);
    let r = command("silence", "nope");
    assert_eq!(r.error.as_deref(), Some("no output \"nope\""));
    let status = running.shared.read().alarms.len();
    assert_eq!(status, 1, "silence does not touch the alarm");
    // The page's API shows what the outputs hold.
    let api = crate::peers::http_get(&format!("http://{}/api/v1/outputs", running.web_addr))
        .unwrap()
        .json()
        .unwrap();
    let held: Vec<(String, bool)> = api["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o["held"] == true))
        .collect();
    assert_eq!(
        held,
        vec![("siren1".to_string(), false), ("beacon1".to_string(), true)]
    );

    // Someone switches the siren on by hand at the module: put back within 5 s.
    module.set_coils(1, 16, &[true]);
    let end = Instant::now() + Duration::from_secs(7);
    while outputs() != [false, true] {
        assert!(Instant::now() < end, "siren not put back: {:?}", outputs());
        std::thread::sleep(Duration::from_millis(50));
    }

    // The silence is journaled with its origin.
    let journal =
        dc_gateway::journal::Journal::open(&dir.path().join("state"), Default::default()).unwrap();
    let entries = journal
        .query(&dc_gateway::journal::Query {
            kind: Some(dc_gateway::journal::Kind::Command),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.data["verb"] == "silence" && e.data["reply"]["ok"] == true),
        "{entries:?}"
    );

    // Orderly stop: every output off, although the alarm is listed.
    drop(gw);
    assert_eq!(outputs(), [false, false], "stop state");
}

/// Two doors on two ADAM-6050 modules (pymodbus units 1 and 2, DI 5 = door contact),
/// through the whole gateway: `door-in` is covered by an access window that holds all
/// day, `door-out` only by one on a past date. Opening `door-out` is a serious alarm at
/// once (`outside_level = "serious"`); opening `door-in` is recorded and pending (an
/// alarm only after 5 min open), not an alarm.
#[test]
fn door_on_a_di_module_inside_and_outside_an_access_window() {
    use crate::peers::{ModbusServer, ModbusSpec, UnitSpec};
    let dir = peer_tempdir("door-window");
    let module = ModbusServer::start(
        ModbusSpec::new()
            .unit(1, UnitSpec::new().coils(0, &[false; 18]).strict())
            .unit(2, UnitSpec::new().coils(0, &[false; 18]).strict()),
    );
    let port = module.addr().port();
    let mut text = format!(
        "[site]\nname = \"dw\"\nlanguage = \"en\"\n[[rooms]]\nid = \"server1\"\n\
         [web]\nlisten = \"127.0.0.1:{}\"\n[storage]\nstate_dir = \"{}\"\n\
         [rules.door_open]\noutside_level = \"serious\"\n\
         [[access_windows]]\ntarget = \"door-in\"\nwhen = [\"daily 00:00-24:00\"]\n\
         [[access_windows]]\ntarget = \"door-out\"\nwhen = [\"2020-01-01\"]\n",
        free_port(),
        dir.path().join("state").display(),
    );
    for (id, unit) in [("door-in", 1), ("door-out", 2)] {
        text += &format!(
            "[[devices]]\nid = \"{id}\"\nroom = \"server1\"\nkind = \"door\"\nprofile = \"adam-6050-door\"\n\
             poll_interval_ms = 200\n[devices.modbus_tcp]\nhost = \"127.0.0.1\"\nport = {port}\nunit_id = {unit}\n"
        );
    }
    let gw = Gw::start(&text);
    let running = gw.running.as_ref().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(running.shared.read().alarms.is_empty());

    module.set_coils(1, 5, &[true]);
    module.set_coils(2, 5, &[true]);
    let t = Instant::now();
    let alarm = loop {
        let found = running
            .shared
            .read()
            .alarms
            .iter()
            .find(|a| &*a.device == "door-out")
            .cloned();
        if let Some(a) = found {
            break a;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "no alarm for door-out"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        (&*alarm.rule, alarm.level),
        ("door_open", dc_gateway::model::Level::Serious)
    );
    assert!(
        alarm.message.contains("outside an approved access window"),
        "{}",
        alarm.message
    );
    // door-in: open inside its window, pending, no alarm (the hub's 1 s tick has run).
    std::thread::sleep(Duration::from_millis(1500));
    let live = running.shared.read();
    assert!(
        !live.alarms.iter().any(|a| &*a.device == "door-in"),
        "{:?}",
        live.alarms
    );
    assert!(
        live.pending.iter().any(|p| &*p.device == "door-in"),
        "{:?}",
        live.pending
    );
    drop(live);
    // Closing clears door-out's alarm (serious: listed, cleared, until acknowledged).
    module.set_coils(2, 5, &[false]);
    let t = Instant::now();
    while !running
        .shared
        .read()
        .alarms
        .iter()
        .any(|a| &*a.device == "door-out" && a.state == "cleared")
    {
        assert!(t.elapsed() < Duration::from_secs(3), "door-out not cleared");
        std::thread::sleep(Duration::from_millis(20));
    }
}
