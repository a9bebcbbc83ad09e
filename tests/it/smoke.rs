//! Guards the test harness itself: each peer helper in [`crate::peers`] is started
//! against the real third-party program and made to round-trip data, checked with an
//! independent client (`mosquitto_pub`/`mosquitto_sub`, rustls, plain HTTP, `mbpoll`).
//! If one of these fails, the area tests built on that helper cannot be trusted.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::peers::{
    Influx1, ModbusRequest, ModbusServer, ModbusSpec, Mosquitto, MosquittoOpts, MqttSubscriber,
    UnitSpec, VictoriaMetrics, free_port, http_post, require_bin,
};

const WAIT: Duration = Duration::from_secs(15);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[test]
fn free_port_hands_out_distinct_bindable_ports() {
    let ports: Vec<u16> = (0..40).map(|_| free_port()).collect();
    let distinct: HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ports.len(),
        "free_port repeated a port: {ports:?}"
    );
    for p in ports {
        assert!(p >= 1024, "privileged port {p}");
        TcpListener::bind(("127.0.0.1", p))
            .unwrap_or_else(|e| panic!("port {p} not bindable: {e}"));
    }
}

#[test]
fn a_missing_peer_fails_with_its_install_command() {
    let panic = std::panic::catch_unwind(|| {
        require_bin("dcgw-no-such-peer", "apt-get install -y dcgw-no-such-peer")
    })
    .expect_err("a missing peer must fail the test, not skip it");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("`dcgw-no-such-peer` is not installed"),
        "{msg}"
    );
    assert!(
        msg.contains("apt-get install -y dcgw-no-such-peer"),
        "{msg}"
    );
    assert!(require_bin("mosquitto", "x").is_absolute());
}

#[test]
fn mosquitto_sub_sees_exactly_what_mosquitto_pub_sent_and_retained_replay() {
    let broker = Mosquitto::start(MosquittoOpts::default());
    assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port));
    let sub = broker.subscribe("dcgw/#");
    broker.publish("dcgw/tv/ups1/load_pct", "42.5", false);
    broker.publish("other/topic", "not for us", false);
    broker.publish("dcgw/tv/ups1/state", "on battery\nsecond line", true);
    broker.publish("dcgw/tv/sentinel", "", false);
    sub.wait_for(|m| m.iter().any(|x| x.topic == "dcgw/tv/sentinel"), WAIT)
        .unwrap();
    assert_eq!(
        sub.pairs(),
        vec![
            ("dcgw/tv/ups1/load_pct".to_owned(), "42.5".to_owned()),
            (
                "dcgw/tv/ups1/state".to_owned(),
                "on battery\nsecond line".to_owned()
            ),
            ("dcgw/tv/sentinel".to_owned(), String::new()),
        ]
    );
    assert!(
        sub.messages().iter().all(|m| !m.retained && m.qos == 1),
        "{:?}",
        sub.messages()
    );

    // A late subscriber gets the retained value, flagged as retained.
    let late = broker.subscribe("dcgw/tv/ups1/#");
    let got = late.wait_for(|m| !m.is_empty(), WAIT).unwrap();
    assert_eq!(got[0].topic, "dcgw/tv/ups1/state");
    assert_eq!(got[0].payload_str(), "on battery\nsecond line");
    assert!(got[0].retained);

    // An empty retained payload clears it: the next subscriber sees only the sentinel.
    broker.publish("dcgw/tv/ups1/state", "", true);
    late.wait_for(|m| m.len() >= 2, WAIT).unwrap();
    assert_eq!(late.messages()[1].payload, Vec::<u8>::new());
    let fresh = broker.subscribe("dcgw/tv/ups1/#");
    broker.publish("dcgw/tv/ups1/sentinel", "s", false);
    let got = fresh.wait_for(|m| !m.is_empty(), WAIT).unwrap();
    assert_eq!(got.len(), 1, "retained value not cleared: {got:?}");
    assert_eq!(got[0].topic, "dcgw/tv/ups1/sentinel");
    assert_eq!(sub.subacks(), 1);
    assert_eq!(sub.connacks(), vec![0]);
}

/// An MQTT 3.1.1 CONNECT with clean session, username and password.
fn mqtt_connect_packet(client_id: &str, user: &str, pass: &str) -> Vec<u8> {
    let field = |s: &str| {
        let mut v = (s.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    };
    let mut body = field("MQTT");
    body.extend_from_slice(&[4, 0xC2, 0, 30]);
    body.extend(field(client_id));
    body.extend(field(user));
    body.extend(field(pass));
    assert!(body.len() < 128);
    let mut pkt = vec![0x10, body.len() as u8];
    pkt.extend(body);
    pkt
}

/// TLS handshake with rustls (the gateway's TLS stack) trusting only `ca_file`, then an
/// MQTT CONNECT; returns the CONNACK return code.
fn rustls_connack(
    port: u16,
    ca_file: &std::path::Path,
    user: &str,
    pass: &str,
) -> Result<u8, String> {
    let pem = std::fs::read(ca_file).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&mqtt_connect_packet("rustls-probe", user, pass))
        .map_err(|e| e.to_string())?;
    let mut connack = [0u8; 4];
    tls.read_exact(&mut connack).map_err(|e| e.to_string())?;
    if connack[0] != 0x20 {
        return Err(format!("not a CONNACK: {connack:?}"));
    }
    Ok(connack[3])
}

#[test]
fn mosquitto_tls_with_password_accepts_right_and_refuses_wrong_credentials() {
    let broker = Mosquitto::start(MosquittoOpts {
        tls: true,
        users: vec![
            ("gw".into(), "s3cret pw:@".into()),
            ("ops".into(), "other".into()),
        ],
        persistence: false,
    });
    assert_eq!(broker.url(), format!("mqtts://127.0.0.1:{}", broker.port));
    assert_eq!(
        broker.url_with_user("gw", "s3cret pw:@"),
        format!("mqtts://gw:s3cret%20pw%3A%40@127.0.0.1:{}", broker.port)
    );

    // mosquitto_sub/pub over TLS, verifying the broker against the CA, as user gw.
    let sub = broker.subscribe("t/#");
    broker.publish("t/1", "over tls", false);
    let got = sub.wait_for(|m| !m.is_empty(), WAIT).unwrap();
    assert_eq!(got[0].payload_str(), "over tls");

    // rustls accepts the certificate for IP 127.0.0.1 with only our CA trusted, and the
    // broker answers CONNACK 0 for good and 5 (not authorised) for bad credentials.
    assert_eq!(
        rustls_connack(broker.port, &broker.ca_file(), "gw", "s3cret pw:@"),
        Ok(0)
    );
    assert_eq!(
        rustls_connack(broker.port, &broker.ca_file(), "gw", "wrong"),
        Ok(5)
    );

    let mut wrong = broker.sub_opts("t/#");
    wrong.user = Some(("gw".into(), "wrong".into()));
    let err = MqttSubscriber::try_start(wrong)
        .err()
        .expect("wrong password must be refused")
        .to_string();
    assert!(
        err.contains("exit code 5") && err.contains("not authorised"),
        "{err}"
    );

    let mut anonymous = broker.sub_opts("t/#");
    anonymous.user = None;
    let err = MqttSubscriber::try_start(anonymous)
        .err()
        .expect("anonymous must be refused")
        .to_string();
    assert!(
        err.contains("exit code 5") && err.contains("not authorised"),
        "{err}"
    );
}

#[test]
fn mosquitto_persistent_session_keeps_qos1_messages_across_broker_restart() {
    let mut broker = Mosquitto::start(MosquittoOpts {
        persistence: true,
        ..Default::default()
    });
    let port = broker.port;
    MqttSubscriber::start(broker.sub_opts("alarms/#").persistent("it-persistent")).stop();
    broker.publish("alarms/events", "queued while away", false);

    // The queued message survives a broker restart (persistence file) ...
    broker.stop();
    assert!(!broker.is_running());
    broker.start_again();
    assert_eq!(broker.port, port);
    let sub = MqttSubscriber::start(broker.sub_opts("alarms/#").persistent("it-persistent"));
    let got = sub.wait_for(|m| !m.is_empty(), WAIT).unwrap();
    assert_eq!(got[0].payload_str(), "queued while away");

    // ... and a running subscriber reconnects and resubscribes by itself.
    broker.stop();
    broker.start_again();
    sub.wait_subacks(2, WAIT).unwrap();
    broker.publish("alarms/events", "after restart", false);
    sub.wait_for(
        |m| m.iter().any(|x| x.payload_str() == "after restart"),
        WAIT,
    )
    .unwrap();
    assert_eq!(
        sub.on_topic("alarms/events").len(),
        2,
        "{:?}",
        sub.messages()
    );
}

#[test]
fn victoria_metrics_stores_line_protocol_and_keeps_it_across_restart() {
    let mut vm = VictoriaMetrics::start();
    let ts = now_ms() - 60_000;
    let line = format!(
        "ups,site=tv,device=ups1 battery_charge_pct=87.5,on_battery=true {}\n",
        ts * 1_000_000
    );
    assert_eq!(vm.write_lines("dcgw", &line), 204);
    let v2 = format!("{}/api/v2/write?org=o&bucket=b&precision=ms", vm.base_url());
    let resp = http_post(&v2, format!("climate,device=th1 temp_c=23.4 {ts}\n")).unwrap();
    assert_eq!(resp.status, 204, "{}", resp.text());

    let all = r#"{__name__=~"ups_.*|climate_.*"}"#;
    let samples = vm.wait_samples(all, |s| s.len() >= 3, WAIT).unwrap();
    let got: Vec<(&str, f64, i64)> = samples
        .iter()
        .map(|s| (s.name.as_str(), s.value, s.timestamp_ms))
        .collect();
    assert_eq!(
        got,
        vec![
            ("climate_temp_c", 23.4, ts),
            ("ups_battery_charge_pct", 87.5, ts),
            ("ups_on_battery", 1.0, ts)
        ]
    );
    let ups = &samples[1];
    assert_eq!(ups.labels.get("device").map(String::as_str), Some("ups1"));
    assert_eq!(ups.labels.get("site").map(String::as_str), Some("tv"));
    assert!(vm.export(r#"{__name__="ups_battery_charge_pct"}"#)[0]["values"].is_array());

    // Without dedup, a resent sample (same series, same timestamp) is stored twice.
    assert_eq!(vm.write_lines("dcgw", &line), 204);
    vm.wait_samples(
        r#"{__name__="ups_battery_charge_pct"}"#,
        |s| s.len() == 2,
        WAIT,
    )
    .unwrap();

    vm.stop();
    assert!(
        vm.try_export(all).is_err(),
        "stopped VictoriaMetrics still answers"
    );
    vm.start_again();
    let again = vm.wait_samples(all, |s| s.len() >= 5, WAIT).unwrap();
    assert_eq!(again.len(), 5, "{again:?}");
}

#[test]
fn victoria_metrics_with_dedup_counts_a_resent_sample_once() {
    let vm = VictoriaMetrics::start_with(true);
    assert!(vm.dedup());
    let ts = now_ms() - 60_000;
    let line = |t: i64, v: f64| format!("ups,device=ups1 load_pct={v} {}\n", t * 1_000_000);
    assert_eq!(vm.write_lines("dcgw", &line(ts, 40.0)), 204);
    assert_eq!(vm.write_lines("dcgw", &line(ts, 40.0)), 204);
    assert_eq!(vm.write_lines("dcgw", &line(ts + 1000, 41.0)), 204);
    let m = r#"{__name__="ups_load_pct"}"#;
    let s = vm
        .wait_samples(m, |s| s.iter().any(|x| x.value == 41.0), WAIT)
        .unwrap();
    let got: Vec<(f64, i64)> = s.iter().map(|x| (x.value, x.timestamp_ms)).collect();
    assert_eq!(got, vec![(40.0, ts), (41.0, ts + 1000)]);
}

#[test]
fn influxdb1_write_query_partial_write_and_unknown_database() {
    let db = Influx1::start(None);
    db.create_db("dcgw");
    let r = db.write(
        "dcgw",
        "ups,site=tv,device=ups1 load_pct=41 1700000000000000000\nups,site=tv,device=ups1 load_pct=42 1700000001000000000\n",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let rows = db.rows("dcgw", "SELECT load_pct FROM ups GROUP BY device");
    let got: Vec<(i64, f64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["time"].as_i64().unwrap(),
                r["load_pct"].as_f64().unwrap(),
                r["device"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1_700_000_000_000, 41.0, "ups1"),
            (1_700_000_001_000, 42.0, "ups1")
        ]
    );

    // A bad line among good ones: 400 "partial write" naming the line, good ones kept.
    let r = db.write(
        "dcgw",
        "ups,device=ups1 load_pct=43 1700000002000000000\nthis is not line protocol\n",
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("partial write"), "{}", r.text());
    let n = db.rows("dcgw", "SELECT count(load_pct) FROM ups");
    assert_eq!(n[0]["count"].as_i64(), Some(3), "{n:?}");
    let t = db.rows(
        "dcgw",
        "SELECT load_pct FROM ups WHERE time = 1700000002000ms",
    );
    assert_eq!(
        t.len(),
        1,
        "good line of the partial write not stored: {t:?}"
    );

    let r = db.write("nope", "ups load_pct=1\n");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("database not found"), "{}", r.text());
    let r = http_post(
        &format!("{}/api/v2/write?org=o&bucket=b", db.base_url()),
        "ups load_pct=1\n",
    )
    .unwrap();
    assert_eq!(r.status, 404, "InfluxDB 1.6 has no v2 write API");
}

#[test]
fn influxdb1_with_auth_refuses_anonymous_and_wrong_password() {
    let db = Influx1::start(Some(("admin", "pa ss'w&rd")));
    db.create_db("dcgw");
    let line = "ups,device=ups1 load_pct=50 1700000000000000000\n";
    let anon = http_post(&format!("{}/write?db=dcgw", db.base_url()), line).unwrap();
    assert_eq!(anon.status, 401, "{}", anon.text());
    let wrong = http_post(
        &format!("{}/write?db=dcgw&u=admin&p=nope", db.base_url()),
        line,
    )
    .unwrap();
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert!(db.try_query("dcgw", "SHOW MEASUREMENTS").is_ok());
    let r = db.write("dcgw", line);
    assert_eq!(r.status, 204, "{}", r.text());
    let rows = db.rows("dcgw", "SELECT load_pct FROM ups");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["load_pct"].as_f64(), Some(50.0));
}

/// Runs `mbpoll` once against `127.0.0.1:port` with protocol (0-based) addresses;
/// returns `(address, value)` pairs, or mbpoll's complaint.
fn mbpoll(port: u16, args: &[&str]) -> Result<Vec<(u16, i64)>, String> {
    mbpoll_write(port, args, &[])
}

/// [`mbpoll`] writing `values` (function code 6 for one holding register).
fn mbpoll_write(port: u16, args: &[&str], values: &[&str]) -> Result<Vec<(u16, i64)>, String> {
    let bin = require_bin(
        "mbpoll",
        "apt-get install -y --no-install-recommends mbpoll",
    );
    let out = Command::new(bin)
        .args(["-m", "tcp", "-p", &port.to_string(), "-1", "-0", "-o", "1"])
        .args(args)
        .arg("127.0.0.1")
        .args(values)
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("mbpoll {args:?}: {}\n{stderr}{stdout}", out.status));
    }
    let read = stdout
        .lines()
        .filter_map(|l| {
            let (addr, value) = l.trim().strip_prefix('[')?.split_once("]:")?;
            Some((addr.parse().ok()?, value.trim().parse().ok()?))
        })
        .collect::<Vec<_>>();
    if read.is_empty() && values.is_empty() {
        return Err(format!(
            "mbpoll {args:?} printed no values:\n{stdout}{stderr}"
        ));
    }
    Ok(read)
}

fn range(start: u16, values: &[i64]) -> Vec<(u16, i64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (start + i as u16, *v))
        .collect()
}

#[test]
fn pymodbus_server_serves_the_spec_and_counts_every_request() {
    let mut srv = ModbusServer::start(
        ModbusSpec::new()
            .unit(
                1,
                UnitSpec::new()
                    .holding(0, &[231, 5])
                    .holding(10, &[7])
                    .input(3, &[1234])
                    .coils(2, &[true])
                    .discrete(17, &[true]),
            )
            .unit(2, UnitSpec::new().holding(100, &[11, 12]).strict()),
    );
    let port = srv.port;
    assert_eq!(srv.counts().total(), 0);

    // Eleven registers in one request: one request counted, with its address and count.
    let hr = mbpoll(port, &["-a", "1", "-t", "4", "-r", "0", "-c", "11"]).unwrap();
    assert_eq!(hr, range(0, &[231, 5, 0, 0, 0, 0, 0, 0, 0, 0, 7]));
    assert_eq!(srv.request_count(1), 1);
    assert_eq!(
        srv.requests(),
        vec![ModbusRequest {
            unit: 1,
            fc: 3,
            address: 0,
            count: 11
        }]
    );

    // Three single-register reads: exactly three more.
    for a in ["0", "1", "10"] {
        mbpoll(port, &["-a", "1", "-t", "4", "-r", a, "-c", "1"]).unwrap();
    }
    assert_eq!(srv.request_count(1), 4);
    assert_eq!(srv.request_count_fc(1, 3), 4);

    // Protocol address 3 is address 3 (no block-start offset); gaps read 0.
    assert_eq!(
        mbpoll(port, &["-a", "1", "-t", "3", "-r", "2", "-c", "2"]).unwrap(),
        range(2, &[0, 1234])
    );
    assert_eq!(
        mbpoll(port, &["-a", "1", "-t", "0", "-r", "0", "-c", "4"]).unwrap(),
        range(0, &[0, 0, 1, 0])
    );
    assert_eq!(
        mbpoll(port, &["-a", "1", "-t", "1", "-r", "16", "-c", "2"]).unwrap(),
        range(16, &[0, 1])
    );
    let c = srv.counts();
    assert_eq!(
        c.requests,
        BTreeMap::from([((1, 1), 1), ((1, 2), 1), ((1, 3), 4), ((1, 4), 1)]),
        "per unit and function code"
    );
    assert_eq!(c.exceptions_for(1), 0);

    // Strict unit: only listed registers exist (exception 0x02 otherwise).
    assert_eq!(
        mbpoll(port, &["-a", "2", "-t", "4", "-r", "100", "-c", "2"]).unwrap(),
        range(100, &[11, 12])
    );
    let err = mbpoll(port, &["-a", "2", "-t", "4", "-r", "99", "-c", "2"]).unwrap_err();
    assert!(err.contains("Illegal data address"), "{err}");
    assert_eq!(srv.exception_count(2), 1);

    // An unknown unit id answers exception 0x04, not silence.
    let err = mbpoll(port, &["-a", "7", "-t", "4", "-r", "0", "-c", "1"]).unwrap_err();
    assert!(err.contains("Slave device or server failure"), "{err}");
    assert_eq!(srv.exception_count(7), 1);
    assert_eq!(srv.request_count(7), 1);

    // Values changed by the test and written by a client are served.
    srv.set_holding(1, 1, &[999, 998]);
    srv.set_input(1, 3, &[4321]);
    srv.set_coils(1, 0, &[true]);
    mbpoll_write(port, &["-a", "1", "-t", "4", "-r", "5"], &["4242"]).unwrap();
    assert_eq!(srv.holding(1, 0, 6), vec![231, 999, 998, 0, 0, 4242]);
    assert_eq!(
        mbpoll(port, &["-a", "1", "-t", "3", "-r", "3", "-c", "1"]).unwrap(),
        range(3, &[4321])
    );
    assert_eq!(srv.coils(1, 0, 3), vec![true, false, true]);
    assert!(
        srv.requests().contains(&ModbusRequest {
            unit: 1,
            fc: 6,
            address: 5,
            count: 1
        }),
        "{:?}",
        srv.requests()
    );

    // Restart: same port, same values (including the client's write), counts carried.
    let before = srv.request_count(1);
    srv.restart();
    assert_eq!(srv.port, port);
    let hr = mbpoll(port, &["-a", "1", "-t", "4", "-r", "0", "-c", "6"]).unwrap();
    assert_eq!(hr, range(0, &[231, 999, 998, 0, 0, 4242]));
    assert_eq!(srv.request_count(1), before + 1);

    srv.reset_counts();
    assert_eq!(srv.counts().total(), 0);
    assert!(srv.requests().is_empty());

    // Paused (SIGSTOP): no answer, the client times out; resumed: served again.
    srv.pause();
    let start = Instant::now();
    let err = mbpoll(port, &["-a", "1", "-t", "4", "-r", "0", "-c", "1"]).unwrap_err();
    assert!(err.to_lowercase().contains("timed out"), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(
        srv.control("ping").is_err(),
        "control must refuse while paused"
    );
    srv.resume();
    assert_eq!(
        mbpoll(port, &["-a", "1", "-t", "4", "-r", "0", "-c", "1"]).unwrap(),
        range(0, &[231])
    );
}
