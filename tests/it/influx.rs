//! The InfluxDB sink against real peers, called directly (no queue in front).
//!
//! - VictoriaMetrics through `/api/v2/write` (series `measurement_field`): values, tags
//!   and timestamps arrive. VictoriaMetrics ignores tokens and InfluxDB 2.x is not
//!   available on these machines, so the `Authorization: Token ...` header (and gzip,
//!   and 1.x basic auth) is checked on the wire with a small capturing HTTP server.
//! - InfluxDB 1.6 through `/write`: values are queryable; one refused line in a batch
//!   becomes `Rejected` for that record only, with the server's message, while the good
//!   lines are stored; an unknown database and wrong credentials keep the records
//!   (`Retry`), count in `dcgw_sink_errors` and are logged once, not once per retry.
//! - Answers no real peer gives on demand (413, 429 with `Retry-After`, 503, 500, a
//!   server that never answers, a refused connection) come from the same small server.
//!
//! Ground truth is what the database holds, never the sink's own claim. The tests run on
//! a current-thread runtime, so the sink's log lines can be captured per test.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dc_gateway::config::{InfluxApi, InfluxConfig};
use dc_gateway::metrics;
use dc_gateway::model::{
    AlarmEvent, AlarmState, DeviceMeta, Kind, Level, Poll, Quality, Sample, Timestamp, Value,
};
use dc_gateway::sinks::influx::InfluxSink;
use dc_gateway::sinks::{Outcome, Record, Sink};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::peers::{Influx1, VictoriaMetrics};

const WAIT: Duration = Duration::from_secs(20);

/// A label with every character line protocol must escape, and Vietnamese.
const TRICKY_LABEL: &str = "Tủ R01 inlet, A=1 \"x\"";

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn device(kind: Kind, id: &str, label: Option<&str>) -> Arc<DeviceMeta> {
    Arc::new(DeviceMeta {
        id: Arc::from(id),
        name: id.to_string(),
        label: label.map(str::to_string),
        room: Arc::from("dc1"),
        kind,
    })
}

fn good(kind: Kind, point: &str, value: Value) -> Sample {
    Sample {
        point: dc_gateway::points::lookup(kind, point)
            .unwrap_or_else(|| panic!("no point {point}")),
        value: Some(value),
        quality: Quality::Good,
    }
}

fn poll(dev: &Arc<DeviceMeta>, ts: i64, comm_ok: bool, samples: Vec<Sample>) -> Record {
    Record::Poll(Arc::new(Poll {
        device: dev.clone(),
        ts: Timestamp(ts),
        comm_ok,
        samples,
    }))
}

fn climate(id: &str, ts: i64, temperature: Value) -> Record {
    let dev = device(Kind::Climate, id, None);
    poll(
        &dev,
        ts,
        true,
        vec![good(Kind::Climate, "temperature_c", temperature)],
    )
}

fn alarm(ts: i64, seq: u64) -> Record {
    Record::Alarm(Arc::new(AlarmEvent {
        detail: Default::default(),
        id: format!("0190a0b0-0000-7000-8000-{seq:012}"),
        seq,
        ts: Timestamp(ts),
        site: Arc::from("tv"),
        device: Arc::from("t1"),
        kind: Kind::Climate,
        room: Arc::from("dc1"),
        point: "temperature_c",
        rule: Arc::from("temperature_high"),
        level: Level::Serious,
        state: AlarmState::Raised,
        value: Some(Value::Number(33.5)),
        threshold: Some(32.0),
        message: "Nhiệt độ cao (Điều 10.3)".into(),
    }))
}

/// The mixed batch most tests send: a labelled climate sensor, a UPS on battery, a UPS
/// that did not answer, and an alarm.
fn mixed_batch(ts: i64) -> Vec<Record> {
    let t1 = device(Kind::Climate, "t1", Some(TRICKY_LABEL));
    let ups1 = device(Kind::Ups, "ups1", None);
    let ups2 = device(Kind::Ups, "ups2", None);
    vec![
        poll(
            &t1,
            ts,
            true,
            vec![
                good(Kind::Climate, "temperature_c", Value::Number(22.5)),
                good(Kind::Climate, "humidity_pct", Value::Number(55.0)),
            ],
        ),
        poll(
            &ups1,
            ts,
            true,
            vec![
                good(Kind::Ups, "output_source", Value::Enum("on_battery")),
                good(Kind::Ups, "on_battery", Value::Bool(true)),
                good(Kind::Ups, "battery_charge_pct", Value::Number(87.25)),
                Sample {
                    point: dc_gateway::points::lookup(Kind::Ups, "load_pct").unwrap(),
                    value: None,
                    quality: Quality::Timeout,
                },
            ],
        ),
        poll(
            &ups2,
            ts,
            false,
            vec![Sample {
                point: dc_gateway::points::lookup(Kind::Ups, "battery_charge_pct").unwrap(),
                value: None,
                quality: Quality::Timeout,
            }],
        ),
        alarm(ts, 42),
    ]
}

fn now_ms() -> i64 {
    // Whole seconds back from now, so every peer keeps it and values are easy to read.
    (Timestamp::now().millis() / 1000 - 60) * 1000
}

fn errors(sink: &str, reason: &str) -> u64 {
    metrics::get()
        .sink_errors
        .get_or_create(&metrics::labels(&[("sink", sink), ("reason", reason)]))
        .get()
}

fn v1_cfg(base: &str, db: &str, user: Option<(&str, &str)>) -> InfluxConfig {
    let mut c = InfluxConfig::from_url(&format!("{base}?db={db}"), None).expect("test URL parses");
    if let InfluxApi::V1 {
        username, password, ..
    } = &mut c.api
    {
        *username = user.map(|(u, _)| u.to_string());
        *password = user.map(|(_, p)| p.to_string());
    }
    c.timeout = Duration::from_secs(10);
    c
}

fn v2_cfg(base: &str, token: Option<&str>) -> InfluxConfig {
    InfluxConfig::from_url(
        &format!("{base}?org=dc&bucket=facility"),
        token.map(str::to_string),
    )
    .expect("test URL parses")
}

fn new_sink(name: &str, cfg: &InfluxConfig) -> InfluxSink {
    provider();
    InfluxSink::new(name, Arc::from("tv"), cfg).unwrap_or_else(|e| panic!("{e}"))
}

fn rejected(o: &Outcome) -> &[(usize, String)] {
    match o {
        Outcome::Rejected { records } => records,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

fn retry(o: &Outcome) -> (Option<Duration>, &str) {
    match o {
        Outcome::Retry { after, reason } => (*after, reason),
        other => panic!("expected Retry, got {other:?}"),
    }
}

/// Log lines written on this thread while the guard lives.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let w = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
    fn lines_with(&self, level: &str, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(level) && l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// A small HTTP server that records each request and answers from a script: for the
// wire format (headers, gzip) and for answers no real peer gives on demand.

/// One scripted answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// Read the request, never answer.
    hang: bool,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            hang: false,
        }
    }
    fn body(mut self, body: &str) -> Reply {
        self.body = body.to_string();
        self
    }
    fn header(mut self, k: &'static str, v: &str) -> Reply {
        self.headers.push((k, v.to_string()));
        self
    }
    fn hang() -> Reply {
        Reply {
            hang: true,
            ..Reply::status(204)
        }
    }
}

/// A request as received.
#[derive(Debug, Clone)]
struct Request {
    /// Request line and headers, as sent.
    head: String,
    /// Body as sent (possibly gzip).
    body: Vec<u8>,
}

impl Request {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
    /// The body, un-gzipped when it says so.
    fn text(&self) -> String {
        if self.header("content-encoding").as_deref() == Some("gzip") {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_string(&mut out)
                .expect("body is valid gzip");
            out
        } else {
            String::from_utf8(self.body.clone()).expect("UTF-8 body")
        }
    }
}

struct FakeInflux {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl FakeInflux {
    /// Start on a free port; answers 204 once the script is used up.
    async fn start() -> FakeInflux {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let (req, scr) = (requests.clone(), script.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (req, scr) = (req.clone(), scr.clone());
                tokio::spawn(async move {
                    let Some(r) = read_request(&mut sock).await else {
                        return;
                    };
                    req.lock().unwrap().push(r);
                    let reply = scr
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or(Reply::status(204));
                    if reply.hang {
                        tokio::time::sleep(Duration::from_secs(120)).await;
                        return;
                    }
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    if !reply.body.is_empty() {
                        out.push_str("Content-Type: application/json\r\n");
                    }
                    for (k, v) in &reply.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&reply.body);
                    let _ = sock.write_all(out.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        FakeInflux {
            port,
            requests,
            script,
        }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn push(&self, r: Reply) {
        self.script.lock().unwrap().push_back(r);
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request { head, body })
}

// ---------------------------------------------------------------------------------
// The wire format.

#[tokio::test(flavor = "current_thread")]
async fn v2_sends_token_header_gzip_and_ms_precision() {
    let fake = FakeInflux::start().await;
    let mut cfg = v2_cfg(&fake.base_url(), Some("s3cr3t-token"));
    cfg.gzip = true;
    let mut sink = new_sink("influx_wire_v2", &cfg);
    let ts = now_ms();
    let batch = mixed_batch(ts);
    assert_eq!(sink.deliver(&batch).await, Outcome::Delivered);
    assert!(sink.connected());

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1, "one request per batch");
    let r = &reqs[0];
    assert_eq!(
        r.request_line(),
        "POST /api/v2/write?org=dc&bucket=facility&precision=ms HTTP/1.1"
    );
    assert_eq!(
        r.header("authorization").as_deref(),
        Some("Token s3cr3t-token")
    );
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "climate,device=t1,label=Tủ\\ R01\\ inlet\\,\\ A\\=1\\ \"x\",room=dc1,site=tv \
             temperature_c=22.5,humidity_pct=55,comm_ok=true {ts}"
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "ups,device=ups1,room=dc1,site=tv output_source=2i,on_battery=true,battery_charge_pct=87.25,comm_ok=true {ts}"
        )
    );
    assert_eq!(
        lines[2],
        format!("ups,device=ups2,room=dc1,site=tv comm_ok=false {ts}")
    );
    assert_eq!(
        lines[3],
        format!(
            "alarm,device=t1,level=serious,point=temperature_c,rule=temperature_high,site=tv \
             state=1i,value=33.5,threshold=32,seq=42i,message=\"Nhiệt độ cao (Điều 10.3)\" {ts}"
        )
    );
}

#[tokio::test(flavor = "current_thread")]
async fn v1_sends_basic_auth_and_plain_body_without_gzip() {
    let fake = FakeInflux::start().await;
    let mut cfg = v1_cfg(&fake.base_url(), "dc", Some(("gw", "pa:ss wörd")));
    cfg.gzip = false;
    let mut sink = new_sink("influx_wire_v1", &cfg);
    assert_eq!(sink.deliver(&[alarm(1_000, 1)]).await, Outcome::Delivered);
    let reqs = fake.requests();
    let r = &reqs[0];
    assert_eq!(r.request_line(), "POST /write?db=dc&precision=ms HTTP/1.1");
    assert_eq!(r.header("content-encoding"), None);
    // base64("gw:pa:ss wörd")
    assert_eq!(
        r.header("authorization").as_deref(),
        Some("Basic Z3c6cGE6c3Mgd8O2cmQ=")
    );
    assert!(
        !r.request_line().contains("pa:ss"),
        "no password in the URL"
    );
    assert!(r.text().starts_with("alarm,device=t1,"), "{}", r.text());
}

// ---------------------------------------------------------------------------------
// VictoriaMetrics through the v2 API.

fn find<'a>(
    samples: &'a [crate::peers::Sample],
    name: &str,
    device: &str,
) -> &'a crate::peers::Sample {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.get("device").map(String::as_str) == Some(device))
        .unwrap_or_else(|| panic!("no {name} for {device} in {samples:#?}"))
}

#[tokio::test(flavor = "current_thread")]
async fn v2_write_to_victoria_metrics_stores_values_and_tags() {
    let vm = VictoriaMetrics::start();
    let mut cfg = v2_cfg(&vm.base_url(), Some("ignored-by-vm"));
    cfg.gzip = true;
    let mut sink = new_sink("influx_vm", &cfg);
    let ts = now_ms();
    assert_eq!(sink.deliver(&mixed_batch(ts)).await, Outcome::Delivered);
    // And once more without gzip, a second later.
    let mut cfg_plain = cfg.clone();
    cfg_plain.gzip = false;
    let mut plain = new_sink("influx_vm_plain", &cfg_plain);
    assert_eq!(
        plain.deliver(&mixed_batch(ts + 1000)).await,
        Outcome::Delivered
    );

    let samples = vm
        .wait_samples(
            r#"{__name__=~"(climate|ups|alarm)_.*"}"#,
            |s| s.len() >= 2 * 11,
            WAIT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let expect = |name: &str, device: &str, value: f64| {
        let mut got: Vec<(i64, f64)> = samples
            .iter()
            .filter(|s| {
                s.name == name && s.labels.get("device").map(String::as_str) == Some(device)
            })
            .map(|s| (s.timestamp_ms, s.value))
            .collect();
        got.sort_by_key(|g| g.0);
        assert_eq!(
            got,
            vec![(ts, value), (ts + 1000, value)],
            "{name} of {device}"
        );
    };
    expect("climate_temperature_c", "t1", 22.5);
    expect("climate_humidity_pct", "t1", 55.0);
    expect("climate_comm_ok", "t1", 1.0);
    expect("ups_output_source", "ups1", 2.0);
    expect("ups_on_battery", "ups1", 1.0);
    expect("ups_battery_charge_pct", "ups1", 87.25);
    expect("ups_comm_ok", "ups1", 1.0);
    expect("ups_comm_ok", "ups2", 0.0);
    expect("alarm_state", "t1", 1.0);
    expect("alarm_value", "t1", 33.5);
    expect("alarm_threshold", "t1", 32.0);
    expect("alarm_seq", "t1", 42.0);
    // Points that were not read well are not written.
    assert!(
        !samples.iter().any(|s| s.name == "ups_load_pct"),
        "{samples:#?}"
    );
    assert!(
        !samples.iter().any(|s| s.name.starts_with("ups_")
            && s.name != "ups_comm_ok"
            && s.labels.get("device").map(String::as_str) == Some("ups2")),
        "ups2 did not answer: only comm_ok"
    );

    let t = find(&samples, "climate_temperature_c", "t1");
    assert_eq!(
        t.labels.get("label").map(String::as_str),
        Some(TRICKY_LABEL),
        "{:?}",
        t.labels
    );
    assert_eq!(t.labels.get("room").map(String::as_str), Some("dc1"));
    assert_eq!(t.labels.get("site").map(String::as_str), Some("tv"));
    let a = find(&samples, "alarm_state", "t1");
    for (k, v) in [
        ("level", "serious"),
        ("point", "temperature_c"),
        ("rule", "temperature_high"),
        ("site", "tv"),
    ] {
        assert_eq!(
            a.labels.get(k).map(String::as_str),
            Some(v),
            "alarm tag {k}: {:?}",
            a.labels
        );
    }
    assert!(
        !a.labels.contains_key("room"),
        "alarm tags are the documented ones: {:?}",
        a.labels
    );
}

// ---------------------------------------------------------------------------------
// InfluxDB 1.6 through /write.

fn row_of<'a>(
    rows: &'a [BTreeMap<String, serde_json::Value>],
    device: &str,
) -> &'a BTreeMap<String, serde_json::Value> {
    rows.iter()
        .find(|r| r.get("device") == Some(&json!(device)))
        .unwrap_or_else(|| panic!("no row for {device} in {rows:#?}"))
}

#[tokio::test(flavor = "current_thread")]
async fn v1_write_to_influxdb16_is_queryable() {
    let db = Influx1::start(None);
    db.create_db("dc");
    let mut sink = new_sink("influx_v1_ok", &v1_cfg(&db.base_url(), "dc", None));
    let ts = now_ms();
    assert_eq!(sink.deliver(&mixed_batch(ts)).await, Outcome::Delivered);
    assert!(sink.connected());

    let rows = db.rows("dc", "SELECT * FROM climate");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let r = &rows[0];
    assert_eq!(r["time"], json!(ts));
    assert_eq!(r["temperature_c"], json!(22.5));
    assert_eq!(r["humidity_pct"], json!(55));
    assert_eq!(r["comm_ok"], json!(true));
    assert_eq!(r["label"], json!(TRICKY_LABEL));
    assert_eq!(
        (r["room"].clone(), r["site"].clone()),
        (json!("dc1"), json!("tv"))
    );

    let rows = db.rows("dc", "SELECT * FROM ups");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let u1 = row_of(&rows, "ups1");
    assert_eq!(u1["output_source"], json!(2));
    assert_eq!(u1["on_battery"], json!(true));
    assert_eq!(u1["battery_charge_pct"], json!(87.25));
    assert_eq!(u1["comm_ok"], json!(true));
    let u2 = row_of(&rows, "ups2");
    assert_eq!(u2["comm_ok"], json!(false));
    assert_eq!(u2["battery_charge_pct"], json!(null));
    // Field types as the schema says: enumerations are integers.
    let types = db.query("dc", "SHOW FIELD KEYS FROM ups").to_string();
    assert!(types.contains(r#"["output_source","integer"]"#), "{types}");
    assert!(types.contains(r#"["on_battery","boolean"]"#), "{types}");
    assert!(
        types.contains(r#"["battery_charge_pct","float"]"#),
        "{types}"
    );

    let rows = db.rows("dc", "SELECT * FROM alarm");
    assert_eq!(rows.len(), 1);
    let a = &rows[0];
    assert_eq!(a["state"], json!(1));
    assert_eq!(a["value"], json!(33.5));
    assert_eq!(a["threshold"], json!(32));
    assert_eq!(a["seq"], json!(42));
    for (k, v) in [
        ("device", "t1"),
        ("level", "serious"),
        ("point", "temperature_c"),
        ("rule", "temperature_high"),
        ("site", "tv"),
    ] {
        assert_eq!(a[k], json!(v), "alarm tag {k}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn v1_partial_write_rejects_only_the_conflicting_record() {
    let db = Influx1::start(None);
    db.create_db("dc");
    let name = "influx_v1_partial";
    let mut sink = new_sink(name, &v1_cfg(&db.base_url(), "dc", None));
    let ts = now_ms();
    // temperature_c is a float from now on.
    assert_eq!(
        sink.deliver(&[climate("t0", ts, Value::Number(20.0))])
            .await,
        Outcome::Delivered
    );

    let before = errors(name, "http_400");
    let batch = vec![
        climate("t1", ts, Value::Number(21.5)),
        climate("t2", ts, Value::Bool(true)), // type conflict: boolean into a float field
        mixed_batch(ts).swap_remove(1),       // ups1
        alarm(ts, 7),
    ];
    let out = sink.deliver(&batch).await;
    let refused = rejected(&out);
    assert_eq!(refused.len(), 1, "{out:?}");
    assert_eq!(refused[0].0, 1, "only the boolean record");
    assert!(
        refused[0].1.contains("field type conflict")
            && refused[0].1.contains("temperature_c")
            && refused[0].1.contains("already exists as type float"),
        "the server's message: {}",
        refused[0].1
    );
    assert_eq!(errors(name, "http_400"), before + 1);
    assert!(sink.connected(), "a 400 is an answer: the server is there");

    // Ground truth: the good lines of that batch are stored, the refused one is not.
    let climate_rows = db.rows("dc", "SELECT * FROM climate");
    let devices: Vec<&serde_json::Value> = climate_rows.iter().map(|r| &r["device"]).collect();
    assert_eq!(
        devices,
        vec![&json!("t0"), &json!("t1")],
        "{climate_rows:#?}"
    );
    assert_eq!(row_of(&climate_rows, "t1")["temperature_c"], json!(21.5));
    assert_eq!(db.rows("dc", "SELECT * FROM ups").len(), 1);
    assert_eq!(db.rows("dc", "SELECT * FROM alarm")[0]["seq"], json!(7));
}

/// InfluxDB 1.6 names only the first conflicting field (`dropped=2`): the sink takes
/// that line out and sends the rest again until every refused line is known.
#[tokio::test(flavor = "current_thread")]
async fn v1_two_different_conflicts_are_both_found() {
    let db = Influx1::start(None);
    db.create_db("dc");
    let mut sink = new_sink("influx_v1_two", &v1_cfg(&db.base_url(), "dc", None));
    let ts = now_ms();
    let h = |id: &str, v: Value| {
        let dev = device(Kind::Climate, id, None);
        poll(&dev, ts, true, vec![good(Kind::Climate, "humidity_pct", v)])
    };
    assert_eq!(
        sink.deliver(&[
            climate("t0", ts, Value::Number(20.0)),
            h("h0", Value::Number(50.0))
        ])
        .await,
        Outcome::Delivered
    );
    let batch = vec![
        climate("t1", ts, Value::Bool(false)),
        h("h1", Value::Number(51.0)),
        h("h2", Value::Bool(true)),
        climate("t3", ts, Value::Number(23.0)),
    ];
    let out = sink.deliver(&batch).await;
    let refused = rejected(&out);
    assert_eq!(
        refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![0, 2],
        "{out:?}"
    );
    assert!(refused[0].1.contains("temperature_c"), "{}", refused[0].1);
    assert!(refused[1].1.contains("humidity_pct"), "{}", refused[1].1);
    let climate_rows = db.rows("dc", "SELECT * FROM climate");
    let mut stored: Vec<String> = climate_rows
        .iter()
        .map(|r| r["device"].as_str().unwrap_or_default().to_string())
        .collect();
    stored.sort();
    assert_eq!(stored, vec!["h0", "h1", "t0", "t3"], "{climate_rows:#?}");
}

/// In a batch that opens a new shard, InfluxDB 1.6 refuses the whole batch with a bare
/// `field type conflict` and stores nothing; the sink finds the disagreeing line and
/// sends the others again.
#[tokio::test(flavor = "current_thread")]
async fn v1_conflict_inside_a_new_shard_stores_the_good_lines() {
    let db = Influx1::start(None);
    db.create_db("dc");
    let ts = now_ms();
    // What the server answers to this shape of batch, written directly.
    let probe = db.write(
        "dc",
        &format!(
            "probe,d=1 f=1.5 {}\nprobe,d=2 f=true {}\n",
            ts * 1_000_000,
            ts * 1_000_000
        ),
    );
    assert_eq!(
        (probe.status, probe.text().trim()),
        (400, r#"{"error":"field type conflict"}"#)
    );
    assert!(
        db.rows("dc", "SELECT * FROM probe").is_empty(),
        "nothing stored"
    );

    let mut sink = new_sink("influx_v1_shard", &v1_cfg(&db.base_url(), "dc", None));
    // A week later than the probe: a new shard again.
    let ts2 = ts + 8 * 24 * 3600 * 1000;
    let batch = vec![
        climate("t1", ts2, Value::Number(21.0)),
        climate("t2", ts2, Value::Bool(true)),
        climate("t3", ts2, Value::Number(23.0)),
    ];
    let out = sink.deliver(&batch).await;
    let refused = rejected(&out);
    assert_eq!(
        refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1],
        "{out:?}"
    );
    assert!(
        refused[0].1.contains("field type conflict"),
        "{}",
        refused[0].1
    );
    let rows = db.rows("dc", "SELECT * FROM climate");
    let devices: Vec<&serde_json::Value> = rows.iter().map(|r| &r["device"]).collect();
    assert_eq!(devices, vec![&json!("t1"), &json!("t3")], "{rows:#?}");
}

#[tokio::test(flavor = "current_thread")]
async fn v1_unknown_database_keeps_records_and_logs_once() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let db = Influx1::start(None);
    let name = "influx_v1_404";
    let mut sink = new_sink(name, &v1_cfg(&db.base_url(), "nope", None));
    let batch = mixed_batch(now_ms());
    let before = errors(name, "http_404");
    for _ in 0..3 {
        let out = sink.deliver(&batch).await;
        let (after, reason) = retry(&out);
        assert_eq!(after, None);
        assert!(
            reason.contains(&format!("database \"nope\" not found on {}", db.base_url())),
            "{reason}"
        );
        assert!(!sink.connected());
    }
    assert_eq!(errors(name, "http_404"), before + 3);
    let errs = logs.lines_with("ERROR", "database \"nope\" not found");
    assert_eq!(
        errs.len(),
        1,
        "logged once, not per retry:\n{}",
        logs.text()
    );

    // Once the database exists the same batch goes through, and the recovery is logged
    // with the count.
    db.create_db("nope");
    assert_eq!(sink.deliver(&batch).await, Outcome::Delivered);
    assert!(sink.connected());
    assert_eq!(db.rows("nope", "SELECT * FROM ups").len(), 2);
    let info = logs.lines_with("INFO", "accepts writes again");
    assert_eq!(info.len(), 1, "{}", logs.text());
    assert!(info[0].contains("after 3 failed attempts"), "{}", info[0]);
}

#[tokio::test(flavor = "current_thread")]
async fn v1_wrong_credentials_keep_records_and_never_log_the_password() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let db = Influx1::start(Some(("admin", "right-pass")));
    db.create_db("dc");
    let name = "influx_v1_401";
    let mut sink = new_sink(
        name,
        &v1_cfg(&db.base_url(), "dc", Some(("admin", "wrong-pass"))),
    );
    let batch = mixed_batch(now_ms());
    let before = errors(name, "http_401");
    for _ in 0..2 {
        let out = sink.deliver(&batch).await;
        let (_, reason) = retry(&out);
        assert!(reason.starts_with("authentication failed"), "{reason}");
        assert!(reason.contains("user \"admin\""), "{reason}");
        assert!(!reason.contains("wrong-pass"), "{reason}");
        assert!(!sink.connected());
    }
    assert_eq!(errors(name, "http_401"), before + 2);
    let errs = logs.lines_with("ERROR", "authentication failed");
    assert_eq!(errs.len(), 1, "logged once:\n{}", logs.text());
    assert!(
        errs[0].contains(&db.base_url()) && errs[0].contains("admin"),
        "{}",
        errs[0]
    );
    assert!(!logs.text().contains("wrong-pass"), "{}", logs.text());
    // Nothing was written.
    assert!(db.rows("dc", "SELECT * FROM ups").is_empty());

    // The right password works through the same code path.
    let mut ok = new_sink(
        "influx_v1_401_ok",
        &v1_cfg(&db.base_url(), "dc", Some(("admin", "right-pass"))),
    );
    assert_eq!(ok.deliver(&batch).await, Outcome::Delivered);
    assert_eq!(db.rows("dc", "SELECT * FROM ups").len(), 2);
}

// ---------------------------------------------------------------------------------
// Answers injected by the small server.

#[tokio::test(flavor = "current_thread")]
async fn too_large_splits_and_a_single_record_is_rejected() {
    let fake = FakeInflux::start().await;
    let name = "influx_413";
    let mut sink = new_sink(name, &v2_cfg(&fake.base_url(), None));
    let before = errors(name, "http_413");
    fake.push(Reply::status(413).body(r#"{"code":"request too large","message":"too big"}"#));
    assert_eq!(sink.deliver(&mixed_batch(1_000)).await, Outcome::Split);
    fake.push(Reply::status(413).body(r#"{"code":"request too large","message":"too big"}"#));
    let out = sink.deliver(&[alarm(1_000, 1)]).await;
    let refused = rejected(&out);
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].1.contains("413") && refused[0].1.contains("too big"),
        "{}",
        refused[0].1
    );
    assert_eq!(errors(name, "http_413"), before + 2);
}

#[tokio::test(flavor = "current_thread")]
async fn throttling_honours_retry_after() {
    let fake = FakeInflux::start().await;
    let name = "influx_429";
    let mut sink = new_sink(name, &v2_cfg(&fake.base_url(), None));
    let (b429, b503) = (errors(name, "http_429"), errors(name, "http_5xx"));
    fake.push(
        Reply::status(429)
            .header("Retry-After", "7")
            .body(r#"{"message":"slow down"}"#),
    );
    let out = sink.deliver(&[alarm(1_000, 1)]).await;
    let (after, reason) = retry(&out);
    assert_eq!(after, Some(Duration::from_secs(7)));
    assert!(
        reason.contains("429") && reason.contains("slow down"),
        "{reason}"
    );
    fake.push(Reply::status(503).header("Retry-After", "2"));
    assert_eq!(
        retry(&sink.deliver(&[alarm(1_000, 1)]).await).0,
        Some(Duration::from_secs(2))
    );
    fake.push(Reply::status(503));
    assert_eq!(retry(&sink.deliver(&[alarm(1_000, 1)]).await).0, None);
    fake.push(Reply::status(500).body(r#"{"error":"engine: disk full"}"#));
    let out = sink.deliver(&[alarm(1_000, 1)]).await;
    let (after, reason) = retry(&out);
    assert_eq!(after, None);
    assert!(
        reason.contains("500") && reason.contains("disk full"),
        "{reason}"
    );
    assert_eq!(errors(name, "http_429"), b429 + 1);
    assert_eq!(errors(name, "http_5xx"), b503 + 3);
    assert!(!sink.connected());
    // Then the server is fine again.
    assert_eq!(sink.deliver(&[alarm(1_000, 1)]).await, Outcome::Delivered);
    assert!(sink.connected());
}

#[tokio::test(flavor = "current_thread")]
async fn silent_server_is_a_timeout_and_no_server_is_a_connect_error() {
    let fake = FakeInflux::start().await;
    let name = "influx_timeout";
    let mut cfg = v2_cfg(&fake.base_url(), None);
    cfg.timeout = Duration::from_millis(300);
    let mut sink = new_sink(name, &cfg);
    let before = errors(name, "timeout");
    fake.push(Reply::hang());
    let started = std::time::Instant::now();
    let out = sink.deliver(&[alarm(1_000, 1)]).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout applies"
    );
    let (_, reason) = retry(&out);
    assert!(reason.contains("did not answer within 300 ms"), "{reason}");
    assert_eq!(errors(name, "timeout"), before + 1);

    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let name = "influx_connect";
    let mut sink = new_sink(name, &v2_cfg(&format!("http://127.0.0.1:{port}"), None));
    let before = errors(name, "connect");
    let out = sink.deliver(&[alarm(1_000, 1)]).await;
    let (_, reason) = retry(&out);
    assert!(
        reason.contains(&format!(
            "cannot connect to InfluxDB at http://127.0.0.1:{port}"
        )),
        "{reason}"
    );
    assert_eq!(errors(name, "connect"), before + 1);
    assert!(!sink.connected());
}

#[tokio::test(flavor = "current_thread")]
async fn unidentifiable_400_rejects_the_whole_batch_with_the_message() {
    let fake = FakeInflux::start().await;
    let mut sink = new_sink("influx_400_all", &v1_cfg(&fake.base_url(), "dc", None));
    fake.push(
        Reply::status(400)
            .body(r#"{"error":"partial write: points beyond retention policy dropped=4"}"#),
    );
    let out = sink.deliver(&mixed_batch(1_000)).await;
    let refused = rejected(&out);
    assert_eq!(
        refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert!(
        refused
            .iter()
            .all(|r| r.1.contains("points beyond retention policy")),
        "{refused:?}"
    );
    assert_eq!(fake.requests().len(), 1, "no second attempt");
}

/// A proxy redirecting http to https must not turn the write into a GET that some page
/// answers with 200: the redirect is reported, and the records stay queued.
#[tokio::test(flavor = "current_thread")]
async fn redirect_is_reported_not_followed() {
    let fake = FakeInflux::start().await;
    let name = "influx_301";
    let mut sink = new_sink(name, &v2_cfg(&fake.base_url(), None));
    let before = errors(name, "http_other");
    fake.push(Reply::status(301).header("Location", &format!("{}/elsewhere", fake.base_url())));
    let out = sink.deliver(&[alarm(1_000, 1)]).await;
    let (_, reason) = retry(&out);
    assert!(reason.contains("HTTP 301"), "{reason}");
    assert_eq!(fake.requests().len(), 1, "not followed");
    assert_eq!(errors(name, "http_other"), before + 1);
}
