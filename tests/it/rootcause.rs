//! One alarm per root cause, end to end: the real binary, two pymodbus servers and
//! Mosquitto. Eight XY-MD02 sensors (units 1–8) sit behind one Modbus TCP endpoint,
//! as behind a TCP-to-RTU gateway; a ninth sensor has its own endpoint.
//!
//! - The endpoint killed (connections refused) → exactly one `link_down` alarm naming
//!   the eight on MQTT and the API, raised before the eight `comm_lost`, which carry its
//!   id as `cause`; the ninth sensor crossing its limit meanwhile alarms on its own
//!   poll, not held back. The person on call (`[paging]`, notifications on
//!   `notify/an`) is paged for the link alarm and the ninth sensor, never for a child.
//! - The endpoint back → the link alarm clears, then each child as its device answers.
//! - The wall (headless Chromium) shows one banner for the link, expandable to the
//!   eight, and th9's alarm as its own row.
//! - The endpoint frozen (SIGSTOP: the TCP connection stands, nothing answers) →
//!   `link_silent`, told apart from `link_down`; so is a third endpoint that answers
//!   exception 0x0B ("gateway target failed to respond") for its two unit ids.
//!
//! Fixture values: XY-MD02 input registers from its manual (value/10 °C): 0x00EB =
//! 23.5 °C, 0x0131 = 30.5 °C (above the 27 °C normal limit; THRESHOLDS.md).

use std::time::{Duration, Instant};

use crate::e2e::{Gateway, site};
use crate::peers::{
    ModbusServer, ModbusSpec, Mosquitto, MosquittoOpts, MqttMessage, UnitSpec, free_port,
    peer_tempdir, wait_until,
};

fn json(m: &MqttMessage) -> serde_json::Value {
    serde_json::from_str(&m.payload_str()).unwrap_or(serde_json::Value::Null)
}

/// Alarm events on `<prefix>/alarms/events` of `rule` in `state`.
fn events(m: &[MqttMessage], rule: &str, state: &str) -> Vec<serde_json::Value> {
    m.iter()
        .filter(|x| x.topic.ends_with("/alarms/events"))
        .map(json)
        .filter(|e| e["state"] == state && e["rule"] == rule)
        .collect()
}

/// The same, of the devices th1..th8 (behind the shared endpoint) or of `device`.
fn events_of(m: &[MqttMessage], rule: &str, state: &str, device: &str) -> Vec<serde_json::Value> {
    events(m, rule, state)
        .into_iter()
        .filter(|e| match device {
            "th1..th8" => e["device"]
                .as_str()
                .is_some_and(|d| d.len() == 3 && d.starts_with("th") && d != "th9"),
            d => e["device"] == d,
        })
        .collect()
}

/// The site: th9 on its own endpoint (from [`site`], renamed), th1..th8 behind the
/// shared one, tx5 and tx6 (units 5 and 6) behind a third endpoint that only hosts
/// unit 1 (pymodbus answers exception 0x0B, "gateway target failed to respond", for
/// the others), every device polled every 500 ms (comm_lost after 1.5 s).
fn site_text(web: u16, shared: u16, own: u16, gw0b: u16, sinks: &str) -> String {
    let one = site("rc", web, own, 500, sinks).replace(
        "id = \"th1\"\nlabel = \"TH-01\"",
        "id = \"th9\"\nlabel = \"TH-09\"",
    );
    let mut text = one;
    for u in 1..=8 {
        text.push_str(&format!(
            "\n[[devices]]\nid = \"th{u}\"\nroom = \"server1\"\nkind = \"climate\"\nprofile = \"xy-md02\"\n\
             poll_interval_ms = 500\ntimeout_ms = 300\n[devices.modbus_tcp]\nhost = \"127.0.0.1\"\n\
             port = {shared}\nunit_id = {u}\n"
        ));
    }
    for u in [5, 6] {
        text.push_str(&format!(
            "\n[[devices]]\nid = \"tx{u}\"\nroom = \"server1\"\nkind = \"climate\"\nprofile = \"xy-md02\"\n\
             poll_interval_ms = 500\ntimeout_ms = 300\n[devices.modbus_tcp]\nhost = \"127.0.0.1\"\n\
             port = {gw0b}\nunit_id = {u}\n"
        ));
    }
    text
}

#[test]
fn a_dead_gateway_in_front_of_eight_devices_is_one_link_alarm_and_an_unrelated_alarm_is_not_held_back()
 {
    let mut spec = ModbusSpec::new();
    for u in 1..=8 {
        spec = spec.unit(u, UnitSpec::new().input(1, &[0x00EB, 0x0222]));
    }
    let mut shared = ModbusServer::start(spec);
    let own =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let gw0b =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("rootcause");
    // One person on call, paged for normal alarms too (the climate sensors' comm_lost
    // and the link alarms are normal): the MQTT sink carries her notifications.
    let sinks = format!(
        "[[sinks]]\nname = \"mqtt\"\nkind = \"mqtt\"\nurl = \"{}\"\n\n\
         [paging]\npage_normal = true\nrepeat_min = 0\ncall_after_min = 0\n\n\
         [[paging.people]]\nid = \"an\"\nphone = \"+84912345678\"\nlanguage = \"en\"\n\n\
         [[paging.shifts]]\nperson = \"an\"\nwhen = [\"daily 00:00-24:00\"]\n",
        broker.url()
    );
    let text = site_text(
        free_port(),
        shared.addr().port(),
        own.addr().port(),
        gw0b.addr().port(),
        &sinks,
    );
    let sub = broker.subscribe("dcgw/rc/#");
    let gw = Gateway::start(&text, dir.path());
    let log = |e: String| -> ! { panic!("{e}\n--- gateway log ---\n{}", gw.log()) };
    let link_id = format!("link_127_0_0_1_{}", shared.addr().port());
    let link_0b = format!("link_127_0_0_1_{}", gw0b.addr().port());

    // The third endpoint answers, with exception 0x0B for both its devices: the link
    // is up, its devices silent: `link_silent`, not `link_down`.
    let first = sub
        .wait_for(
            |m| {
                !events_of(m, "link_silent", "raised", &link_0b).is_empty()
                    && events_of(m, "comm_lost", "raised", "tx5").len()
                        + events_of(m, "comm_lost", "raised", "tx6").len()
                        == 2
            },
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    let s0b = events_of(&first, "link_silent", "raised", &link_0b).remove(0);
    assert!(
        s0b["message"].as_str().unwrap().contains("answers"),
        "{}",
        s0b["message"]
    );
    assert!(events_of(&first, "link_down", "raised", &link_0b).is_empty());
    for d in ["tx5", "tx6"] {
        assert_eq!(
            events_of(&first, "comm_lost", "raised", d)[0]["cause"],
            s0b["id"],
            "{d}"
        );
    }

    // Every device answering.
    wait_until("all nine sensors read", Duration::from_secs(20), || {
        let r = gw.api("/api/v1/readings");
        let good = r["readings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["point"] == "temperature_c" && x["quality"] == "good")
                    .count()
            })
            .unwrap_or(0);
        good == 9
    })
    .unwrap_or_else(|e| log(e.to_string()));

    // The shared endpoint dies: connections refused.
    shared.stop();
    let got = sub
        .wait_for(
            |m| events_of(m, "comm_lost", "raised", "th1..th8").len() >= 8,
            Duration::from_secs(15),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    // Meanwhile th9 crosses its limit: its alarm on its own next poll.
    let t_hot = Instant::now();
    own.set_input(1, 1, &[0x0131]);
    let hot = sub
        .wait_for(
            |m| !events(m, "temperature_high", "raised").is_empty(),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    let took = t_hot.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "unrelated alarm took {took:?} during the storm"
    );
    let hot_ev = events(&hot, "temperature_high", "raised").remove(0);
    assert_eq!(hot_ev["device"], "th9");
    assert!(hot_ev.get("cause").is_none(), "{hot_ev}");

    // Let any straggler arrive, then count.
    std::thread::sleep(Duration::from_secs(2));
    let all = sub.messages();
    let links = events(&all, "link_down", "raised");
    assert_eq!(links.len(), 1, "exactly one link alarm: {links:#?}");
    assert!(events_of(&all, "link_silent", "raised", &link_id).is_empty());
    let link = &links[0];
    assert_eq!(link["device"], link_id.as_str());
    let group = link["id"].as_str().expect("event id").to_string();
    let behind: Vec<&str> = link["behind"]
        .as_array()
        .expect("behind listed")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let want: Vec<String> = (1..=8).map(|u| format!("th{u}")).collect();
    assert_eq!(behind, want);
    let message = link["message"].as_str().unwrap();
    for id in &want {
        assert!(message.contains(id.as_str()), "{message}");
    }
    let children = events_of(&got, "comm_lost", "raised", "th1..th8");
    assert_eq!(events_of(&all, "comm_lost", "raised", "th1..th8").len(), 8);
    let link_seq = link["seq"].as_u64().unwrap();
    for c in &children {
        assert_eq!(c["cause"], group.as_str(), "{c}");
        assert!(
            c["seq"].as_u64().unwrap() > link_seq,
            "link alarm first: {c}"
        );
        assert_ne!(c["device"], "th9");
    }
    // The retained active alarm of the link, and the API: one head, eight children.
    assert!(
        all.iter().any(
            |m| m.topic == format!("dcgw/rc/alarms/active/{link_id}/link_down")
                && json(m)["rule"] == "link_down"
        ),
        "retained active link alarm"
    );
    let api = gw.api("/api/v1/alarms");
    let listed = api["alarms"].as_array().unwrap();
    let head: Vec<_> = listed.iter().filter(|a| a["rule"] == "link_down").collect();
    assert_eq!(head.len(), 1, "{api}");
    assert_eq!(head[0]["id"], group.as_str());
    assert_eq!(
        listed
            .iter()
            .filter(|a| a["rule"] == "comm_lost" && a["cause"] == group.as_str())
            .count(),
        8,
        "{api}"
    );
    assert_eq!(
        listed.iter().filter(|a| a["rule"] == "comm_lost").count(),
        10,
        "8 children of the dead endpoint, 2 of the 0x0B one: {api}"
    );
    // People are paged for the link alarm, never for its children (the pager skips
    // an event with `cause`): ground truth is what reached `notify/an` on the broker.
    let link_no = link["no"].as_u64().expect("link alarm number");
    let paged = sub
        .wait_for(
            |m| {
                m.iter()
                    .any(|x| x.topic == "dcgw/rc/notify/an" && json(x)["alarm"] == link_no)
            },
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    let child_nos: Vec<u64> = events(&paged, "comm_lost", "raised")
        .iter()
        .filter_map(|c| c["no"].as_u64())
        .collect();
    assert_eq!(child_nos.len(), 10, "8 + 2 children");
    let notified: Vec<serde_json::Value> = paged
        .iter()
        .filter(|x| x.topic == "dcgw/rc/notify/an")
        .map(json)
        .collect();
    for n in &notified {
        assert!(
            n["alarm"]
                .as_u64()
                .is_none_or(|no| !child_nos.contains(&no)),
            "a child was paged: {n}"
        );
    }
    assert!(
        notified.iter().any(|n| n["alarm"] == hot_ev["no"]),
        "the unrelated alarm is paged: {notified:#?}"
    );

    // The wall (headless Chromium): one banner for the lost link with its 8 children
    // behind it, th9's alarm its own row; a touch on the banner shows the children.
    crate::web::require_tools();
    let mut browser = crate::web::Browser::start(&format!("http://{}/", gw.web));
    let loaded = browser.recv(Duration::from_secs(60));
    assert_eq!(loaded["ok"], true, "page did not load: {loaded:#}");
    let banner = format!(r#"#alarm-list .alarm.banner[data-key="{link_id}/link_down"]"#);
    let banner = banner.as_str();
    let snap = browser.wait_attr(banner, "count", "9");
    let rows = snap["alarms"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        3,
        "a banner per lost link and th9's row: {rows:#?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["key"] == format!("{link_0b}/link_silent").as_str() && r["count"] == "3"),
        "{rows:#?}"
    );
    let head = rows.iter().find(|r| r["count"] == "9").unwrap();
    assert_eq!(head["key"], format!("{link_id}/link_down").as_str());
    assert_eq!(head["expanded"], "false");
    assert!(
        rows.iter().any(|r| r["key"] == "th9/temperature_high"),
        "{rows:#?}"
    );
    let r = browser.send(serde_json::json!({ "cmd": "click", "selector": banner }));
    assert_eq!(r["ok"], true, "{r}");
    let snap = browser.wait_attr(banner, "expanded", "true");
    let text = snap["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["count"] == "9")
        .unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        text.matches("Communication lost").count(),
        8,
        "the 8 children under the banner: {text}"
    );
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/wall-rootcause.png");
    let r = browser.send(serde_json::json!({ "cmd": "screenshot", "path": shot }));
    assert_eq!(r["ok"], true, "screenshot: {r}");
    browser.quit();

    // The endpoint comes back: the link alarm clears, then each child.
    shared.start_again();
    let back = sub
        .wait_for(
            |m| {
                !events_of(m, "link_down", "cleared", &link_id).is_empty()
                    && events_of(m, "comm_lost", "cleared", "th1..th8").len() >= 8
            },
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    let cleared = events(&back, "link_down", "cleared").remove(0);
    for c in events_of(&back, "comm_lost", "cleared", "th1..th8") {
        assert_eq!(c["cause"], group.as_str(), "{c}");
        assert!(
            c["seq"].as_u64() > cleared["seq"].as_u64(),
            "link clears first"
        );
    }

    // Frozen (SIGSTOP): connections stand, nothing answers → link_silent, not down.
    shared.pause();
    let silent = sub
        .wait_for(
            |m| !events_of(m, "link_silent", "raised", &link_id).is_empty(),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| log(e.to_string()));
    shared.resume();
    let s = events_of(&silent, "link_silent", "raised", &link_id).remove(0);
    assert_eq!(s["device"], link_id.as_str());
    assert!(
        s["message"].as_str().unwrap().contains("answers"),
        "{}",
        s["message"]
    );
    assert_eq!(
        events(&silent, "link_down", "raised").len(),
        1,
        "the frozen endpoint is not another link_down"
    );
}
