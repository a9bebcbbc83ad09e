//! The data path end to end: the real `dc-gateway` binary, polling a pymodbus server,
//! publishing to Mosquitto and writing to VictoriaMetrics / InfluxDB 1.x.
//!
//! Fixture values are hand-written raw registers from the XY-MD02 manual's own
//! examples ("MODBUS commands": input register 0x0001 temperature, signed, value/10,
//! example 0x0131 = 30.5 °C; input register 0x0002 humidity, value/10, example
//! 0x0222 = 54.6 %RH), never generated from our profile.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::{
    Influx1, ModbusServer, ModbusSpec, Mosquitto, MosquittoOpts, UnitSpec, VictoriaMetrics,
    free_port, peer_tempdir, wait_until,
};

/// The gateway binary under test, run as a child process with its log in a file.
/// Its durable state (sink buffers) lives in `<dir>/state`, so a [`Gateway::restart`]
/// after a [`Gateway::kill`] resumes from what the killed process committed.
pub struct Gateway {
    child: Option<Child>,
    log: PathBuf,
    cfg: PathBuf,
    dir: PathBuf,
    /// Web address.
    pub web: String,
}

impl Gateway {
    /// Start `dc-gateway run --config <site> --state-dir <dir>/state`; wait until its
    /// web server answers.
    pub fn start(site_toml: &str, dir: &Path) -> Gateway {
        let cfg = dir.join("site.toml");
        std::fs::write(&cfg, site_toml).unwrap();
        let log = dir.join("gateway.log");
        let web = site_toml
            .lines()
            .find_map(|l| l.strip_prefix("listen = \""))
            .map(|s| s.trim_end_matches('"').to_string())
            .expect("the test site sets web.listen");
        let mut gw = Gateway {
            child: None,
            log,
            cfg,
            dir: dir.to_path_buf(),
            web,
        };
        gw.restart();
        gw
    }

    /// Start the process (again, after [`Gateway::kill`]) with the same config and
    /// state dir; the log is appended to. Waits until the web server answers.
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "Gateway::restart: still running; kill() it first"
        );
        let append = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap()
        };
        let child = Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
            .args(["run", "--config"])
            .arg(&self.cfg)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .env("DCGW_LOG", "info,dc_gateway=debug")
            .stdin(Stdio::null())
            .stdout(append(&self.dir.join("gateway.out")))
            .stderr(append(&self.log))
            .spawn()
            .expect("start dc-gateway");
        self.child = Some(child);
        let port: u16 = self.web.rsplit(':').next().unwrap().parse().unwrap();
        let child = self.child.as_mut().unwrap();
        let mut exited = None;
        let up = wait_until("dc-gateway web server", Duration::from_secs(20), || {
            exited = child.try_wait().ok().flatten();
            exited.is_some() || crate::peers::tcp_accepts(port)
        });
        if let Some(status) = exited {
            panic!(
                "dc-gateway exited at start ({status})\n--- gateway log ---\n{}",
                self.log()
            );
        }
        if let Err(e) = up {
            panic!("{e}\n--- gateway log ---\n{}", self.log());
        }
    }

    /// The running process's id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no clean shutdown, no MQTT DISCONNECT.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// GET a JSON document from the gateway's API.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let r = crate::peers::http_get(&format!("http://{}{}", self.web, path))
            .expect("gateway API answers");
        r.json().expect("gateway API returns JSON")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A site with one XY-MD02 sensor at `modbus` and the given sink tables.
pub fn site(name: &str, web_port: u16, modbus_port: u16, poll_ms: u64, sinks: &str) -> String {
    format!(
        r#"
[site]
name = "{name}"
language = "en"

[[rooms]]
id = "server1"

[web]
listen = "127.0.0.1:{web_port}"

[[devices]]
id = "th1"
label = "TH-01"
room = "server1"
kind = "climate"
profile = "xy-md02"
poll_interval_ms = {poll_ms}
timeout_ms = 500
[devices.modbus_tcp]
host = "127.0.0.1"
port = {modbus_port}
unit_id = 1
[devices.rules.temperature_high]
on_delay_s = 0

{sinks}
"#
    )
}

fn sensor_server(temp_raw: u16, rh_raw: u16) -> ModbusServer {
    ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[temp_raw, rh_raw])))
}

#[test]
fn readings_and_alarms_reach_mosquitto_and_victoria_metrics() {
    // 0x0131 = 305 -> 30.5 °C would alarm at once; start at 0x00EB = 235 -> 23.5 °C
    // (same scaling rule, value/10), humidity 0x0222 = 546 -> 54.6 %RH (manual example).
    let modbus = sensor_server(0x00EB, 0x0222);
    let broker = Mosquitto::start(MosquittoOpts::default());
    let vm = VictoriaMetrics::start();
    let dir = peer_tempdir("e2e");
    let sinks = format!(
        "[sinks.mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n\n[sinks.influx]\nurl = \"{}?org=dc&bucket=facility\"\nflush_interval_ms = 200\n",
        broker.port,
        vm.base_url()
    );
    let sub = broker.subscribe("dcgw/e2e/#");
    // A seq reservation far above what the clock gives (as after a restart with the
    // clock set back): the gateway must continue above it (src/seq.rs).
    const RESERVED: u64 = 9_000_000_000_000_000_000;
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/alarm_seq"), format!("{RESERVED}\n")).unwrap();
    let mut gw = Gateway::start(
        &site("e2e", free_port(), modbus.addr().port(), 500, &sinks),
        dir.path(),
    );

    // Retained readings and the online status.
    let got = sub.wait_for(
        |m| {
            m.iter()
                .any(|x| x.topic == "dcgw/e2e/th1/temperature_c" && x.payload_str() == "23.5")
                && m.iter()
                    .any(|x| x.topic == "dcgw/e2e/th1/humidity_pct" && x.payload_str() == "54.6")
                && m.iter()
                    .any(|x| x.topic == "dcgw/e2e/gateway/status" && x.payload_str() == "online")
                && m.iter().any(|x| x.topic == "dcgw/e2e/th1/dew_point_c")
        },
        Duration::from_secs(15),
    );
    if let Err(e) = got {
        panic!("{e}\n--- gateway log ---\n{}", gw.log());
    }
    let dew = sub.on_topic("dcgw/e2e/th1/dew_point_c");
    let dew: f64 = dew
        .last()
        .expect("dew point published")
        .payload_str()
        .parse()
        .unwrap();
    // Magnus formula at 23.5 °C / 54.6 %: 13.8 °C (reference tables: 13.8).
    assert!((dew - 13.8).abs() < 0.2, "dew point {dew}");

    // InfluxDB API (VictoriaMetrics): values and tags.
    let samples = vm
        .wait_samples(
            "climate_temperature_c",
            |s| !s.is_empty(),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    let s = &samples[0];
    assert_eq!(s.value, 23.5);
    assert_eq!(s.labels.get("site").map(String::as_str), Some("e2e"));
    assert_eq!(s.labels.get("room").map(String::as_str), Some("server1"));
    assert_eq!(s.labels.get("device").map(String::as_str), Some("th1"));
    assert_eq!(s.labels.get("label").map(String::as_str), Some("TH-01"));
    let rh = vm
        .wait_samples(
            "climate_humidity_pct",
            |s| !s.is_empty(),
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(rh[0].value, 54.6);

    // A threshold crossing: 0x0131 = 30.5 °C (manual example) is above 27 °C (normal).
    // The alarm event must arrive within one poll interval plus 1 s.
    sub.clear();
    let t0 = Instant::now();
    modbus.set_input(1, 1, &[0x0131]);
    let raised = sub.wait_for(
        |m| {
            m.iter().any(|x| {
                x.topic == "dcgw/e2e/alarms/events" && x.payload_str().contains("\"raised\"")
            })
        },
        Duration::from_secs(10),
    );
    let elapsed = t0.elapsed();
    let raised = raised.unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    assert!(
        elapsed <= Duration::from_millis(500 + 1000 + 300),
        "alarm took {elapsed:?}"
    );
    let ev: serde_json::Value = raised
        .iter()
        .find(|x| x.topic == "dcgw/e2e/alarms/events")
        .map(|x| serde_json::from_str(&x.payload_str()).unwrap())
        .unwrap();
    assert_eq!(ev["device"], "th1");
    assert_eq!(ev["rule"], "temperature_high");
    assert_eq!(ev["level"], "normal");
    assert_eq!(ev["value"], 30.5);
    assert_eq!(ev["threshold"], 27.0);
    assert_eq!(ev["site"], "e2e");
    assert!(ev["id"].as_str().is_some_and(|s| !s.is_empty()));
    let seq_raised = ev["seq"].as_u64().expect("seq");
    assert!(
        seq_raised >= RESERVED,
        "seq {seq_raised} below the reservation"
    );
    let reserved: u64 = std::fs::read_to_string(dir.path().join("state/alarm_seq"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        reserved > seq_raised,
        "reservation {reserved} not above seq {seq_raised}"
    );
    let active = sub
        .wait_for(
            |m| {
                m.iter().any(|x| {
                    x.topic == "dcgw/e2e/alarms/active/th1/temperature_high"
                        && !x.payload.is_empty()
                })
            },
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(!active.is_empty());
    let alarms = gw.api("/api/v1/alarms");
    assert_eq!(alarms["alarms"][0]["rule"], "temperature_high", "{alarms}");

    // Back to 23.5 °C: cleared (below 27 − 0.5 hysteresis), retained state emptied.
    modbus.set_input(1, 1, &[0x00EB]);
    let cleared = sub
        .wait_for(
            |m| {
                m.iter().any(|x| {
                    x.topic == "dcgw/e2e/alarms/events" && x.payload_str().contains("\"cleared\"")
                }) && m.iter().any(|x| {
                    x.topic == "dcgw/e2e/alarms/active/th1/temperature_high" && x.payload.is_empty()
                })
            },
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    let ev: serde_json::Value = cleared
        .iter()
        .filter(|x| x.topic == "dcgw/e2e/alarms/events")
        .map(|x| serde_json::from_str::<serde_json::Value>(&x.payload_str()).unwrap())
        .find(|e| e["state"] == "cleared")
        .unwrap();
    assert!(ev["seq"].as_u64().unwrap() > seq_raised, "seq grows");
    // The alarm also reached InfluxDB's API as its own measurement.
    vm.wait_samples("alarm_state", |s| s.len() >= 2, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));

    // SIGKILL: the broker publishes the last will.
    sub.clear();
    gw.kill();
    sub.wait_for(
        |m| {
            m.iter()
                .any(|x| x.topic == "dcgw/e2e/gateway/status" && x.payload_str() == "offline")
        },
        Duration::from_secs(30),
    )
    .expect("last will `offline` after SIGKILL");
}

#[test]
fn readings_reach_influxdb_1_via_write() {
    let modbus = sensor_server(0xFF33, 0x0222); // -20.5 °C (manual example), 54.6 %RH
    let influx = Influx1::start(None);
    influx.create_db("dc");
    let dir = peer_tempdir("e2e-influx1");
    let sinks = format!(
        "[sinks.influx]\nurl = \"{}?db=dc\"\nflush_interval_ms = 200\n",
        influx.base_url()
    );
    let gw = Gateway::start(
        &site("e2e1", free_port(), modbus.addr().port(), 500, &sinks),
        dir.path(),
    );
    let mut rows = Vec::new();
    let ok = wait_until(
        "InfluxDB 1.x holds the reading",
        Duration::from_secs(20),
        || {
            rows = influx.rows(
                "dc",
                "SELECT temperature_c, humidity_pct, comm_ok FROM climate WHERE device = 'th1'",
            );
            !rows.is_empty()
        },
    );
    if let Err(e) = ok {
        panic!("{e}\n--- gateway log ---\n{}", gw.log());
    }
    assert_eq!(rows[0]["temperature_c"], -20.5);
    assert_eq!(rows[0]["humidity_pct"], 54.6);
    assert_eq!(rows[0]["comm_ok"], true);
    let tags = influx.rows("dc", "SHOW TAG VALUES FROM climate WITH KEY = \"site\"");
    assert_eq!(tags[0]["value"], "e2e1");
}

#[test]
fn check_config_names_file_line_column_and_device() {
    let dir = peer_tempdir("e2e-check");
    let text =
        site("chk", 8080, 502, 1000, "").replace("profile = \"xy-md02\"", "profile = \"xy-md03\"");
    let path = dir.path().join("site.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "{}:17:11: devices[0] (th1) .profile: unknown profile \"xy-md03\"",
        path.display()
    );
    assert!(
        err.contains(&expected),
        "stderr:\n{err}\nexpected to contain:\n{expected}"
    );
}

#[test]
fn snmp_on_battery_trap_raises_an_alarm_on_mqtt_within_1s() {
    // A UPS-MIB agent on mains (snmpsim recording of RFC 1628 objects), polled every
    // minute, so only the trap can tell the gateway about the mains failure in time.
    let sim = crate::peers::Snmpsim::start(&[("ups-mains", crate::snmp::UPS_MAINS)], None);
    let broker = Mosquitto::start(MosquittoOpts::default());
    let dir = peer_tempdir("e2e-snmp");
    crate::peers::write_secret(&dir.path().join("community"), "ups-mains\n");
    crate::peers::write_secret(&dir.path().join("trap-community"), "trapcommunity\n");
    let trap_port = free_port();
    let sim_port: u16 = sim.addr().rsplit(':').next().unwrap().parse().unwrap();
    let text = format!(
        r#"
[site]
name = "e2esnmp"
language = "en"

[[rooms]]
id = "power"

[web]
listen = "127.0.0.1:{web}"

[snmp_traps]
listen = "127.0.0.1:{trap_port}"
communities = [{{ file = "trap-community" }}]

[[devices]]
id = "ups1"
room = "power"
kind = "ups"
profile = "ups-mib"
poll_interval_ms = 60000
timeout_ms = 2000
[devices.snmp]
host = "127.0.0.1"
port = {sim_port}
version = "2c"
community = {{ file = "community" }}

[sinks.mqtt]
url = "mqtt://127.0.0.1:{mqtt}"
"#,
        web = free_port(),
        mqtt = broker.port,
    );
    let sub = broker.subscribe("dcgw/e2esnmp/#");
    let gw = Gateway::start(&text, dir.path());
    sub.wait_for(
        |m| {
            m.iter()
                .any(|x| x.topic == "dcgw/e2esnmp/ups1/on_battery" && x.payload_str() == "false")
        },
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));

    // RFC 1628 upsTrapOnBattery (1.3.6.1.2.1.33.2.1) with upsEstimatedMinutesRemaining.0.
    let t0 = Instant::now();
    let out = crate::peers::snmptrap(&[
        "-v2c",
        "-c",
        "trapcommunity",
        &format!("127.0.0.1:{trap_port}"),
        "",
        "1.3.6.1.2.1.33.2.1",
        "1.3.6.1.2.1.33.1.2.3.0",
        "i",
        "12",
    ]);
    assert!(
        out.status.success(),
        "snmptrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sub.wait_for(
        |m| {
            m.iter().any(|x| {
                x.topic == "dcgw/e2esnmp/alarms/events"
                    && x.payload_str().contains("\"rule\":\"on_battery\"")
                    && x.payload_str().contains("\"raised\"")
            })
        },
        Duration::from_secs(5),
    );
    let elapsed = t0.elapsed();
    got.unwrap_or_else(|e| panic!("{e}\n--- gateway log ---\n{}", gw.log()));
    assert!(
        elapsed < Duration::from_secs(1),
        "trap to MQTT alarm took {elapsed:?}"
    );
}

#[test]
fn influxdb_refusing_credentials_is_an_alarm_and_keeps_readings_queued() {
    let modbus = sensor_server(0x00EB, 0x0222);
    let influx = Influx1::start(Some(("admin", "right-password")));
    influx.create_db("dc");
    let dir = peer_tempdir("e2e-influx-auth");
    crate::peers::write_secret(&dir.path().join("influx.pass"), "wrong-password\n");
    let sinks = format!(
        "[sinks.influx]\nurl = \"{}?db=dc\"\nusername = \"admin\"\npassword = {{ file = \"influx.pass\" }}\nflush_interval_ms = 200\n",
        influx.base_url()
    );
    let gw = Gateway::start(
        &site("e2eauth", free_port(), modbus.addr().port(), 500, &sinks),
        dir.path(),
    );
    let mut alarms = serde_json::Value::Null;
    let raised = wait_until(
        "the sink_auth_failed alarm",
        Duration::from_secs(20),
        || {
            alarms = gw.api("/api/v1/alarms");
            alarms["alarms"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["rule"] == "sink_auth_failed" && x["level"] == "normal")
            })
        },
    );
    if let Err(e) = raised {
        panic!("{e}\nalarms: {alarms}\n--- gateway log ---\n{}", gw.log());
    }
    let sinks = gw.api("/api/v1/sinks");
    let s = &sinks["sinks"][0];
    assert_eq!(s["name"], "influx", "{sinks}");
    assert_eq!(s["delivered"], 0, "{sinks}");
    assert!(
        s["queued"].as_u64().unwrap_or(0) > 0,
        "readings stay queued: {sinks}"
    );
    assert!(
        gw.log().contains("authentication failed"),
        "a clear log line"
    );
    assert!(
        !gw.log().contains("wrong-password"),
        "the password is never logged"
    );
}
