//! Requests against the router in memory (`tower::ServiceExt::oneshot`): JSON shapes,
//! filters, error answers, health, the page and the event stream.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use serde_json::Value as Json;
use tower::ServiceExt;

use super::*;
use crate::model::{DeviceMeta, Kind, Level, Quality, Timestamp, Value};
use crate::state::{ActiveAlarm, DeviceState, Live, PointState, RoomInfo, SinkStatus, Update};

fn point(
    kind: Kind,
    name: &str,
    value: Option<Value>,
    quality: Quality,
    ts: Option<Timestamp>,
) -> PointState {
    PointState::canonical(kind, name, value, quality, ts).expect("canonical point")
}

fn device(id: &str, name: &str, room: &str, kind: Kind, points: Vec<PointState>) -> DeviceState {
    let meta = DeviceMeta {
        id: id.into(),
        name: name.into(),
        label: Some(format!("{}-01", id.to_uppercase())),
        room: room.into(),
        kind,
    };
    DeviceState::answering(meta, Some("Rack A3".into()), points)
}

fn alarm(level: Level) -> ActiveAlarm {
    ActiveAlarm {
        shelved_until: None,
        shelved_by: None,
        no: 0,
        acked_by: None,
        acked_at: None,
        cause: None,
        id: "0190a5b2-0000-7000-8000-000000000001".into(),
        key: "th1/temperature_high".into(),
        device: "th1".into(),
        kind: Kind::Climate,
        point: "temperature_c",
        rule: "temperature_high".into(),
        level,
        state: "raised",
        since: Timestamp(1_764_057_600_000),
        value: Some(Value::Number(31.5)),
        threshold: Some(30.0),
        message: "Nhiệt độ phòng máy 31,5 °C vượt ngưỡng 30 °C (Điều 10.3)".into(),
    }
}

/// A small site: a climate sensor with one good, one never-read point; a UPS whose
/// last read timed out after a good one; a generator in another room.
fn site() -> Shared {
    let now = Timestamp::now();
    let two_s_ago = Timestamp(now.0 - 2_000);
    let live = Live {
        degraded: Vec::new(),
        maintenance: Vec::new(),
        pending: Vec::new(),
        site: "tv1".into(),
        title: "Trung tâm dữ liệu Trà Vinh".into(),
        language: "vi".into(),
        rooms: vec![
            RoomInfo {
                id: "r1".into(),
                name: "Phòng máy chủ".into(),
            },
            RoomInfo {
                id: "r2".into(),
                name: "Phòng nguồn".into(),
            },
        ],
        devices: vec![
            device(
                "th1",
                "Cảm biến rack A3",
                "r1",
                Kind::Climate,
                vec![
                    point(
                        Kind::Climate,
                        "temperature_c",
                        Some(Value::Number(23.4)),
                        Quality::Good,
                        Some(two_s_ago),
                    ),
                    point(
                        Kind::Climate,
                        "humidity_pct",
                        None,
                        Quality::CommError,
                        None,
                    ),
                ],
            ),
            device(
                "ups1",
                "UPS 1",
                "r1",
                Kind::Ups,
                vec![
                    point(
                        Kind::Ups,
                        "battery_charge_pct",
                        Some(Value::Number(80.0)),
                        Quality::Timeout,
                        Some(Timestamp(now.0 - 60_000)),
                    ),
                    point(
                        Kind::Ups,
                        "on_battery",
                        Some(Value::Bool(true)),
                        Quality::Good,
                        Some(now),
                    ),
                    point(
                        Kind::Ups,
                        "output_source",
                        Some(Value::Enum("on_battery")),
                        Quality::Good,
                        Some(now),
                    ),
                ],
            ),
            device(
                "gen1",
                "Máy phát",
                "r2",
                Kind::Generator,
                vec![point(
                    Kind::Generator,
                    "fuel_level_pct",
                    Some(Value::Number(71.0)),
                    Quality::Good,
                    Some(now),
                )],
            ),
        ],
        alarms: vec![],
        sinks: vec![SinkStatus {
            name: "influx".into(),
            kind: "influxdb",
            connected: true,
            queued: 3,
            ..Default::default()
        }],
        last_progress: Some(now),
    };
    Shared::new(live)
}

async fn get(shared: &Shared, uri: &str) -> (StatusCode, String, String) {
    request(shared, "GET", uri).await
}

async fn request(shared: &Shared, method: &str, uri: &str) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = router(shared.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

fn json(s: &str) -> Json {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn is_rfc3339(v: &Json) -> bool {
    v.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

fn entry<'a>(body: &'a Json, device: &str, point: &str) -> &'a Json {
    body["readings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device"] == device && r["point"] == point)
        .unwrap_or_else(|| panic!("no reading {device}/{point} in {body}"))
}

fn bad_input_http() -> u64 {
    crate::metrics::get()
        .bad_input
        .get_or_create(&crate::metrics::labels(&[("what", "http")]))
        .get()
}

#[tokio::test]
async fn readings_have_the_contract_shape() {
    let shared = site();
    let (status, ctype, body) = get(&shared, "/api/v1/readings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/json");
    let b = json(&body);
    assert_eq!(b["site"], "tv1");
    assert!(
        is_rfc3339(&b["generated_at"]),
        "generated_at: {}",
        b["generated_at"]
    );
    assert_eq!(b["readings"].as_array().unwrap().len(), 6);

    let t = entry(&b, "th1", "temperature_c");
    let mut keys: Vec<&str> = t.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "age_s", "device", "kind", "point", "quality", "room", "ts", "unit", "value"
        ]
    );
    assert_eq!(t["value"], 23.4);
    assert_eq!(t["unit"], "°C");
    assert_eq!(t["kind"], "climate");
    assert_eq!(t["room"], "r1");
    assert_eq!(t["quality"], "good");
    assert!(is_rfc3339(&t["ts"]));
    let age = t["age_s"].as_f64().unwrap();
    assert!((1.9..10.0).contains(&age), "age_s {age}");

    // Never read: no value, no time, no age; the quality says why.
    let h = entry(&b, "th1", "humidity_pct");
    assert!(
        h["value"].is_null() && h["ts"].is_null() && h["age_s"].is_null(),
        "{h}"
    );
    assert_eq!(h["quality"], "comm_error");

    // A failed read keeps the last good value and says why it is not fresh.
    let c = entry(&b, "ups1", "battery_charge_pct");
    assert_eq!(c["value"], 80.0);
    assert_eq!(c["quality"], "timeout");
    assert!(c["age_s"].as_f64().unwrap() >= 59.0);

    assert_eq!(entry(&b, "ups1", "on_battery")["value"], true);
    assert_eq!(entry(&b, "ups1", "on_battery")["unit"], "");
    assert_eq!(entry(&b, "ups1", "output_source")["value"], "on_battery");
}

#[tokio::test]
async fn readings_filters_select_devices() {
    let shared = site();
    let devices = |b: &Json| -> Vec<String> {
        let mut v: Vec<String> = b["readings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["device"].as_str().unwrap().to_string())
            .collect();
        v.dedup();
        v
    };
    let (s, _, b) = get(&shared, "/api/v1/readings?device=th1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(devices(&json(&b)), ["th1"]);
    let (_, _, b) = get(&shared, "/api/v1/readings?kind=generator").await;
    assert_eq!(devices(&json(&b)), ["gen1"]);
    let (_, _, b) = get(&shared, "/api/v1/readings?room=r1").await;
    assert_eq!(devices(&json(&b)), ["th1", "ups1"]);
    let (_, _, b) = get(&shared, "/api/v1/readings?device=th1&device=gen1").await;
    assert_eq!(devices(&json(&b)), ["th1", "gen1"]);
    let (_, _, b) = get(
        &shared,
        "/api/v1/readings?room=r1&kind=ups&point=on_battery",
    )
    .await;
    let b = json(&b);
    assert_eq!(b["readings"].as_array().unwrap().len(), 1);
    assert_eq!(b["readings"][0]["point"], "on_battery");
    // Percent-encoding and unknown parameters.
    let (_, _, b) = get(&shared, "/api/v1/readings?dev%69ce=ups1&utm_source=x&flag").await;
    assert_eq!(devices(&json(&b)), ["ups1"]);
    // No match is an empty list, not an error.
    let (s, _, b) = get(&shared, "/api/v1/readings?device=nope").await;
    assert_eq!(s, StatusCode::OK);
    assert!(json(&b)["readings"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_filters_are_400_json_and_counted() {
    let shared = site();
    for (query, says) in [
        ("kind=toaster", "toaster"),
        ("device=", "needs a value"),
        ("room", "needs a value"),
        ("device=%zz", "percent-encoding"),
        ("device=%C3%28", "percent-encoding"),
        ("device=%4", "percent-encoding"),
    ] {
        let before = bad_input_http();
        let (status, ctype, body) = get(&shared, &format!("/api/v1/readings?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(ctype, "application/json", "{query}");
        let msg = json(&body)["error"].as_str().unwrap().to_string();
        assert!(msg.contains(says), "{query}: {msg}");
        // Other tests may count too; ours must be among them.
        assert!(bad_input_http() > before, "{query} not counted");
    }
}

#[tokio::test]
async fn alarms_and_sinks_have_the_contract_shape() {
    let shared = site();
    shared.write().alarms.push(alarm(Level::Serious));
    let (status, _, body) = get(&shared, "/api/v1/alarms").await;
    assert_eq!(status, StatusCode::OK);
    let b = json(&body);
    let a = &b["alarms"][0];
    let mut keys: Vec<&str> = a.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "device",
            "id",
            "key",
            "level",
            "message",
            "no",
            "point",
            "rule",
            "since",
            "state",
            "threshold",
            "value"
        ]
    );
    assert_eq!(a["level"], "serious");
    assert_eq!(a["state"], "raised");
    assert_eq!(a["since"], "2025-11-25T08:00:00.000Z");
    assert_eq!(a["value"], 31.5);
    assert_eq!(a["threshold"], 30.0);

    let (status, _, body) = get(&shared, "/api/v1/sinks").await;
    assert_eq!(status, StatusCode::OK);
    let s = &json(&body)["sinks"][0];
    assert_eq!(s["name"], "influx");
    assert_eq!(s["kind"], "influxdb");
    assert_eq!(s["queued"], 3);
    for k in [
        "connected",
        "queued_bytes",
        "oldest_age_s",
        "delivered",
        "retried",
        "dropped",
        "dead_lettered",
    ] {
        assert!(s.get(k).is_some(), "sink entry lacks {k}: {s}");
    }

    // No outputs configured: an empty list.
    let (status, _, body) = get(&shared, "/api/v1/outputs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["outputs"], serde_json::json!([]));
    // One siren not written yet: its id, nothing read back.
    let siren = crate::outputs::OutputConfig {
        id: "siren1".into(),
        name: "siren1".into(),
        drive: crate::outputs::Drive::Siren,
        level: crate::model::Level::Serious,
        kinds: Vec::new(),
        rooms: Vec::new(),
        rules: Vec::new(),
        on_stop: crate::outputs::OnStop::Off,
        driver: crate::outputs::Driver::Coil {
            addr: "127.0.0.1:502".into(),
            unit: 1,
            coil: 16,
            timeout: std::time::Duration::from_secs(1),
        },
    };
    let shared = shared.with_outputs(crate::outputs::Handle::with(
        vec![siren],
        Default::default(),
    ));
    let (_, _, body) = get(&shared, "/api/v1/outputs").await;
    let o = &json(&body)["outputs"][0];
    assert_eq!(o["id"], "siren1");
    assert!(o["held"].is_null(), "{o}");
    assert_eq!(o["failures"], 0);
}

#[tokio::test]
async fn unknown_path_is_404_json_and_wrong_method_405() {
    let shared = site();
    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/readings",
        "/api/v1/readings/extra",
    ] {
        let (status, ctype, body) = get(&shared, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(ctype, "application/json");
        assert!(json(&body)["error"].as_str().unwrap().contains(path));
    }
    // Without accounts no state change exists (CONTRACTS.md Round 2): refused before
    // routing, whatever the path.
    let (status, ctype, body) = request(&shared, "POST", "/api/v1/readings").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(ctype, "application/json");
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("dc-gateway user add")
    );
    let (status, _, _) = request(&shared, "DELETE", "/").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A wrong method that is not a change is still a JSON 405.
    let (status, ctype, body) = request(&shared, "GET", "/api/v1/commands").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(ctype, "application/json");
    assert!(json(&body)["error"].as_str().unwrap().contains("GET"));
}

#[tokio::test]
async fn healthz_follows_last_progress() {
    let shared = site();
    let (status, _, body) = get(&shared, "/healthz").await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "ok"));

    shared.write().last_progress = Some(Timestamp(Timestamp::now().0 - 60_000));
    let (status, _, body) = get(&shared, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("no progress for 60 s"), "{body}");

    shared.write().last_progress = None;
    let (status, _, body) = get(&shared, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("no progress yet"), "{body}");
}

#[tokio::test]
async fn healthz_reports_a_sink_failing_longer_than_the_alarm_limit() {
    let shared = site();
    // Failing, but not yet for longer than the sink_unreachable limit: healthy.
    shared.write().sinks[0].failing_s = 299.0;
    let (status, _, body) = get(&shared, "/healthz").await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "ok"));

    shared.write().sinks[0].failing_s = 301.0;
    let (status, _, body) = get(&shared, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body.trim(),
        "sink influx (influxdb) failing to deliver for 301 s (limit 300 s), 3 records queued"
    );

    // Every reason is given, one line each.
    shared.write().last_progress = None;
    let (status, _, body) = get(&shared, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body.lines().count(), 2, "{body}");
    assert!(body.starts_with("no progress yet\n"), "{body}");
}

#[tokio::test]
async fn metrics_are_served_in_the_exposition_format() {
    let shared = site();
    // Make sure the family has a sample to show.
    let _ = get(&shared, "/api/v1/readings?kind=").await;
    let (status, ctype, body) = get(&shared, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(
        body.contains("dcgw_bad_input_total{what=\"http\"}"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn page_speaks_vietnamese_by_default_and_english_on_request() {
    let shared = site();
    let (status, ctype, html) = get(&shared, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "text/html; charset=utf-8");
    assert!(html.contains("<html lang=\"vi\">"));
    assert!(html.contains("<title>Trung tâm dữ liệu Trà Vinh</title>"));
    for text in [
        "Nhiệt độ",
        "Độ ẩm",
        "Dung lượng ắc quy",
        "Mức nhiên liệu",
        "Chạy pin",
        "Sự cố nghiêm trọng",
    ] {
        assert!(html.contains(text), "page lacks {text:?}");
    }
    assert!(
        !html.contains("src=\"http"),
        "the page must not load anything from outside"
    );

    shared.write().language = "en".into();
    let (_, _, html) = get(&shared, "/").await;
    assert!(html.contains("<html lang=\"en\">"));
    for text in [
        "\"Temperature\"",
        "Battery charge",
        "Fuel level",
        "Serious incident",
    ] {
        assert!(html.contains(text), "page lacks {text:?}");
    }
    assert!(!html.contains("Nhiệt độ"));
}

#[tokio::test]
async fn page_escapes_config_text() {
    let shared = site();
    shared.write().title = "</script><script>alert(1)</script> & co".into();
    let (_, _, html) = get(&shared, "/").await;
    assert!(
        !html.contains("<script>alert(1)"),
        "title text reached the markup"
    );
    assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
    assert!(html.contains("\\u003c/script\\u003e"));
}

#[test]
fn layout_key_changes_with_config_not_with_values() {
    let shared = site();
    let k0 = page::layout_key(&shared.read());
    shared.write().devices[0].points[0].value = Some(Value::Number(99.0));
    shared.write().alarms.push(alarm(Level::Normal));
    assert_eq!(page::layout_key(&shared.read()), k0);
    shared.write().language = "en".into();
    let k1 = page::layout_key(&shared.read());
    assert_ne!(k1, k0);
    shared.write().rooms[1].name = "Phòng UPS".into();
    assert_ne!(page::layout_key(&shared.read()), k1);
}

/// Reads server-sent events off a response body.
struct Events {
    stream: axum::body::BodyDataStream,
    buf: String,
}

impl Events {
    async fn open(shared: &Shared) -> Events {
        let req = Request::builder()
            .uri("/api/v1/events")
            .body(Body::empty())
            .unwrap();
        let resp = router(shared.clone()).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
        Events {
            stream: resp.into_body().into_data_stream(),
            buf: String::new(),
        }
    }

    /// The next `(event, data)`, skipping keep-alive comments.
    async fn next(&mut self) -> (String, Json) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if event.is_empty() {
                    continue;
                }
                return (event, json(&data));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("no event within 10 s")
                .expect("event stream ended")
                .expect("body error");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn events_stream_refresh_then_device_and_alarm_updates() {
    let shared = site();
    let mut ev = Events::open(&shared).await;

    let (name, data) = ev.next().await;
    assert_eq!(name, "refresh");
    assert_eq!(data["site"], "tv1");
    assert_eq!(data["layout"], page::layout_key(&shared.read()));
    assert_eq!(data["readings"].as_array().unwrap().len(), 6);
    assert!(data["alarms"].as_array().unwrap().is_empty());

    shared.write().devices[0].points[0].value = Some(Value::Number(25.1));
    shared.updates.send(Update::Device(0)).unwrap();
    let (name, data) = ev.next().await;
    assert_eq!(name, "device");
    assert_eq!(data["device"], "th1");
    assert_eq!(data["comm_ok"], true);
    assert_eq!(entry(&data, "th1", "temperature_c")["value"], 25.1);
    assert_eq!(
        data["readings"].as_array().unwrap().len(),
        2,
        "only th1's points"
    );

    // An index no device has is skipped, not an error.
    shared.updates.send(Update::Device(99)).unwrap();
    shared.write().alarms.push(alarm(Level::Serious));
    shared.updates.send(Update::Alarms).unwrap();
    let (name, data) = ev.next().await;
    assert_eq!(name, "alarms");
    assert_eq!(data["alarms"][0]["level"], "serious");
    assert_eq!(data["alarms"][0]["key"], "th1/temperature_high");
}

#[tokio::test]
async fn a_client_that_falls_behind_gets_a_full_refresh() {
    let shared = site();
    let mut ev = Events::open(&shared).await;
    assert_eq!(ev.next().await.0, "refresh");
    // More updates than the channel holds, while the client reads nothing.
    for _ in 0..1500 {
        shared.updates.send(Update::Device(0)).unwrap();
    }
    shared.write().devices[2].points[0].value = Some(Value::Number(12.0));
    let (name, data) = ev.next().await;
    assert_eq!(name, "refresh", "a lagging client must be resynchronised");
    assert_eq!(entry(&data, "gen1", "fuel_level_pct")["value"], 12.0);
}

#[tokio::test]
async fn events_send_a_periodic_refresh() {
    let shared = site();
    let mut ev = Events::open(&shared).await;
    assert_eq!(ev.next().await.0, "refresh");
    shared.write().devices[2].points[0].value = Some(Value::Number(5.0));
    // Nothing is sent on the channel: only the periodic tick can bring this.
    let (name, data) = ev.next().await;
    assert_eq!(name, "refresh");
    assert_eq!(entry(&data, "gen1", "fuel_level_pct")["value"], 5.0);
}

#[tokio::test]
async fn shutdown_ends_open_event_streams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let shared = site();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(listener, shared, async {
        let _ = rx.await;
    }));
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tx.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "server did not stop with a stream open: {done:?}"
    );
}

/// A site whose journal holds two alarms of `ups1` and a command about `th1`.
fn site_with_journal(dir: &std::path::Path) -> (Shared, Vec<crate::journal::Entry>) {
    use crate::journal::{Journal, Kind as J, NewEntry, Options};
    let j = Journal::open(dir, Options::default()).unwrap();
    let add = |ts: i64, kind: J, device: &str, data: Json| {
        j.append(NewEntry {
            ts: Timestamp(ts),
            kind,
            gateway: "gw1".into(),
            device: Some(device.into()),
            data,
        })
        .unwrap()
    };
    let t0 = 1_796_342_400_000; // 2026-12-04T00:00:00Z
    let entries = vec![
        add(
            t0,
            J::Alarm,
            "ups1",
            serde_json::json!({"rule": "on_battery", "state": "raised"}),
        ),
        add(
            t0 + 60_000,
            J::Command,
            "th1",
            serde_json::json!({"id": "c-1", "verb": "ack", "ok": true}),
        ),
        add(
            t0 + 120_000,
            J::Alarm,
            "ups1",
            serde_json::json!({"rule": "on_battery", "state": "cleared"}),
        ),
    ];
    (site().with_journal(j), entries)
}

#[tokio::test]
async fn journal_entries_are_listed_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let (shared, entries) = site_with_journal(dir.path());
    let seqs = |body: &str| -> Vec<i64> {
        json(body)["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    let (status, ctype, body) = get(&shared, "/api/v1/journal").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/json");
    let b = json(&body);
    assert_eq!(
        b["entries"][1],
        serde_json::json!({"seq": entries[1].seq, "ts": "2026-12-04T00:01:00.000Z", "kind": "command",
            "gateway": "gw1", "device": "th1", "id": "c-1", "verb": "ack", "ok": true})
    );
    assert_eq!(
        seqs(&body),
        entries.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
    let (_, _, body) = get(&shared, "/api/v1/journal?kind=alarm&device=ups1").await;
    assert_eq!(seqs(&body), [entries[0].seq, entries[2].seq]);
    let (_, _, body) = get(
        &shared,
        "/api/v1/journal?since=2026-12-04T07%3A01%3A00%2B07%3A00&until=2026-12-04T00:02:00Z",
    )
    .await;
    assert_eq!(seqs(&body), [entries[1].seq]);
    let (_, _, body) = get(
        &shared,
        &format!("/api/v1/journal?after_seq={}&limit=1", entries[0].seq),
    )
    .await;
    assert_eq!(seqs(&body), [entries[1].seq]);
    let (_, _, body) = get(&shared, "/api/v1/journal?device=gen1").await;
    assert!(seqs(&body).is_empty());
}

#[tokio::test]
async fn malformed_journal_queries_are_400_json_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (shared, _) = site_with_journal(dir.path());
    for (query, says) in [
        ("kind=ups", "unknown journal entry kind \"ups\""),
        ("since=yesterday", "\"since\": \"yesterday\" is not a time"),
        ("until=", "needs a value"),
        ("limit=0", "from 1 to 10000"),
        ("limit=10001", "from 1 to 10000"),
        ("limit=-3", "from 1 to 10000"),
        ("after_seq=x", "\"after_seq\""),
        ("device=%zz", "percent-encoding"),
    ] {
        let before = bad_input_http();
        let (status, ctype, body) = get(&shared, &format!("/api/v1/journal?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(ctype, "application/json", "{query}");
        let msg = json(&body)["error"].as_str().unwrap().to_string();
        assert!(msg.contains(says), "{query}: {msg}");
        assert!(bad_input_http() > before, "{query} not counted");
    }
}

#[tokio::test]
async fn without_a_journal_the_api_says_so() {
    let (status, ctype, body) = get(&site(), "/api/v1/journal").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ctype, "application/json");
    assert!(json(&body)["error"].as_str().unwrap().contains("journal"));
}

#[tokio::test]
async fn oncall_says_who_is_on_call_at_a_time_and_404_without_a_roster() {
    let (status, _, body) = get(&site(), "/api/v1/oncall").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json(&body)["error"].as_str().unwrap().contains("[paging]"));

    let mut cfg = crate::paging::PagingConfig::with_people(vec![crate::paging::Person {
        id: "an".into(),
        name: "Nguyễn Văn An".into(),
        phone: "+84912345678".into(),
        language: crate::model::Language::Vi,
        role: None,
        sms: true,
        call: true,
    }]);
    cfg.shifts = vec![crate::paging::config::Shift {
        person: 0,
        when: crate::schedule::Schedule::parse(&["Mon-Fri 08:00-17:00"]).unwrap(),
        holidays: true,
    }];
    let mut shared = site();
    shared.paging = Some((
        std::sync::Arc::new(cfg),
        crate::texts::time::SiteTime::new("Asia/Ho_Chi_Minh").unwrap(),
    ));
    // Monday 2026-12-07 09:00 +07:00: on call; next change 17:00, nobody then.
    let (status, _, body) = get(&shared, "/api/v1/oncall?at=2026-12-07T02:00:00Z").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v = json(&body);
    assert_eq!(v["now"]["person"], "an");
    assert_eq!(v["now"]["source"], "shift");
    assert_eq!(v["local"], "2026-12-07T09:00:00.000+07:00");
    assert!(v["next"].is_null(), "nobody after 17:00: {v}");
    assert!(!v["gaps"].as_array().unwrap().is_empty());
    let (status, _, _) = get(&shared, "/api/v1/oncall?at=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = get(&shared, "/api/v1/oncall?when=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
