//! Camera recorders over ONVIF Recording Search (Art. 10.7: recordings kept at least 30
//! days), the real binary end to end: a scripted recorder (`tests/it/onvif_recorder.py`,
//! every request and reply validated against the ONVIF schema from PyPI's `onvif-zeep`)
//! serves three search services; the gateway polls them with a WS-Security
//! UsernameToken and publishes to Mosquitto.
//!
//! - `nvr29` keeps 29 days → a `retention_low` alarm event on MQTT and in the API;
//! - `nvr31` keeps 31 days → none;
//! - `nvr-badpw` has the wrong password → the recorder answers `ter:NotAuthorized`; the
//!   gateway shows `comm_error` quality, counts `auth_error` and logs an authentication
//!   failure naming the user — at once, not after a timeout.

use std::time::{Duration, Instant};

use crate::e2e::Gateway;
use crate::peers::{
    Mosquitto, MosquittoOpts, OnvifRecorder, free_port, peer_tempdir, wait_until, write_secret,
};

#[test]
fn retention_below_30_days_is_an_alarm_and_a_wrong_password_an_auth_error() {
    let rec = OnvifRecorder::start("dcgw", "right-password", &[("r29", 29.0), ("r31", 31.0)]);
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("onvif-gw");
    write_secret(&dir.path().join("nvr.pass"), "right-password\n");
    write_secret(&dir.path().join("bad.pass"), "wrong-password\n");
    let mut text = format!(
        "[site]\nname = \"onvif\"\nlanguage = \"en\"\n[[rooms]]\nid = \"sec\"\n\
         [web]\nlisten = \"127.0.0.1:{}\"\n\
         # The 60 s the default rule waits is the slow-moving value's; a test cannot wait.\n\
         [rules.retention_low]\non_delay_s = 0\n\
         [sinks.mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n",
        free_port(),
        broker.port
    );
    for (id, path, pass) in [
        ("nvr29", "r29", "nvr.pass"),
        ("nvr31", "r31", "nvr.pass"),
        ("nvr-badpw", "r31", "bad.pass"),
    ] {
        text += &format!(
            "[[devices]]\nid = \"{id}\"\nroom = \"sec\"\nkind = \"camera_recorder\"\nprofile = \"onvif-recorder\"\n\
             poll_interval_ms = 1000\ntimeout_ms = 1000\n[devices.onvif]\nurl = \"{}\"\nusername = \"dcgw\"\n\
             password = {{ file = \"{pass}\" }}\n",
            rec.url(path)
        );
    }
    let sub = broker.subscribe("dcgw/onvif/#");
    let t0 = Instant::now();
    let gw = Gateway::start(&text, dir.path());

    // 29 days kept: an alarm event on MQTT.
    let got = sub.wait_for(
        |m| {
            m.iter().any(|x| {
                x.topic == "dcgw/onvif/alarms/events"
                    && x.payload_str().contains("\"rule\":\"retention_low\"")
                    && x.payload_str().contains("\"device\":\"nvr29\"")
            })
        },
        Duration::from_secs(15),
    );
    let msgs = got.unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    let event: serde_json::Value = msgs
        .iter()
        .find(|x| x.topic == "dcgw/onvif/alarms/events")
        .map(|x| serde_json::from_str(&x.payload_str()).unwrap())
        .unwrap();
    assert_eq!(
        (&event["state"], &event["level"], &event["threshold"]),
        (&"raised".into(), &"normal".into(), &30.0.into()),
        "{event}"
    );
    assert!(
        (event["value"].as_f64().unwrap() - 29.0).abs() < 0.01,
        "{event}"
    );

    // The API: the alarm for nvr29 only; nvr31's readings good; nvr-badpw comm_error.
    let mut readings = serde_json::Value::Null;
    wait_until(
        "readings of all three recorders",
        Duration::from_secs(5),
        || {
            readings = gw.api("/api/v1/readings");
            let q = |dev: &str, point: &str| {
                readings["readings"].as_array().and_then(|a| {
                    a.iter()
                        .find(|r| r["device"] == dev && r["point"] == point)
                        .map(|r| r["quality"].as_str().unwrap_or("").to_string())
                })
            };
            q("nvr31", "retention_days").as_deref() == Some("good")
                && q("nvr31", "recording").as_deref() == Some("good")
                && q("nvr-badpw", "retention_days").as_deref() == Some("comm_error")
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nreadings: {readings}\n--- gateway log ---\n{}",
            gw.log()
        )
    });
    let r31 = readings["readings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device"] == "nvr31" && r["point"] == "retention_days")
        .unwrap()
        .clone();
    assert!(
        (r31["value"].as_f64().unwrap() - 31.0).abs() < 0.01,
        "{r31}"
    );
    let rec31 = readings["readings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device"] == "nvr31" && r["point"] == "recording")
        .unwrap()
        .clone();
    assert_eq!(rec31["value"], true, "{rec31}");
    let alarms = gw.api("/api/v1/alarms");
    let list = alarms["alarms"].as_array().unwrap();
    assert!(
        list.iter().any(|a| a["device"] == "nvr29"
            && a["rule"] == "retention_low"
            && a["level"] == "normal"),
        "{alarms}"
    );
    assert!(
        !list
            .iter()
            .any(|a| a["device"] == "nvr31" || a["device"] == "nvr-badpw"),
        "31 days kept, or a refused login, raised an alarm: {alarms}"
    );

    // Wrong password: a clear authentication failure, counted, logged, no timeout.
    let metrics = crate::peers::http_get(&format!("http://{}/metrics", gw.web))
        .expect("metrics")
        .text();
    assert!(
        metrics.lines().any(|l| l.starts_with("dcgw_polls_total{")
            && l.contains("device=\"nvr-badpw\"")
            && l.contains("result=\"auth_error\"")),
        "{metrics}"
    );
    assert!(
        !metrics
            .lines()
            .any(|l| l.contains("device=\"nvr-badpw\"") && l.contains("result=\"timeout\"")),
        "{metrics}"
    );
    let log = gw.log();
    assert!(
        log.contains("nvr-badpw") && log.contains("authentication failed for user \"dcgw\""),
        "{log}"
    );
    assert!(
        !log.contains("wrong-password") && !log.contains("right-password"),
        "a password reached the log"
    );

    // The recorder's view: every request schema-valid, the right ones authenticated,
    // the wrong-password ones refused, every reply schema-valid.
    let entries = rec.entries();
    assert!(entries.iter().all(|e| e["valid"] == true), "{entries:?}");
    assert!(
        entries
            .iter()
            .filter(|e| e["auth_ok"] == true)
            .all(|e| e["reply_valid"] == true && e["status"] == 200),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["auth_ok"] == false && e["status"] == 400)
    );
    assert!(
        entries
            .iter()
            .any(|e| e["recorder"] == "r29" && e["auth_ok"] == true)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
}
