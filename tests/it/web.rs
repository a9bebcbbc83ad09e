//! The wall view in a real browser: headless Chromium (Debian's `/usr/bin/chromium`)
//! driven by playwright-core through `tests/web/wall.mjs`, against the gateway's web
//! server started in-process on a free loopback port.
//!
//! The test owns the `Shared` state the server shows: it changes a value and raises an
//! alarm exactly as the runtime would (write the state, send an `Update`) and checks
//! the open page follows without a reload. The script takes `target/wall.png`.
//!
//! Needs `node`, `tests/web/node_modules` (`./tests/run.sh` or `npm install` in
//! `tests/web`) and `/usr/bin/chromium`; a missing one fails with the command to run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dc_gateway::model::{DeviceMeta, Kind, Level, Quality, Timestamp, Value};
use dc_gateway::state::{ActiveAlarm, DeviceState, Live, PointState, RoomInfo, Shared, Update};
use serde_json::{Value as Json, json};

const CHROMIUM: &str = "/usr/bin/chromium";

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

/// Fails (never skips) when a tool the test needs is missing.
pub(crate) fn require_tools() {
    let pw = web_dir().join("node_modules/playwright-core/package.json");
    assert!(
        pw.exists(),
        "playwright-core is not installed ({} missing): run ./tests/run.sh, or `npm install` in tests/web",
        pw.display()
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is missing: apt-get install -y nodejs npm ({node:?})"
    );
}

fn point(
    kind: Kind,
    name: &str,
    value: Option<Value>,
    quality: Quality,
    ts: Option<Timestamp>,
) -> PointState {
    PointState::canonical(kind, name, value, quality, ts).expect("canonical point")
}

fn device(
    id: &str,
    name: &str,
    label: &str,
    room: &str,
    kind: Kind,
    points: Vec<PointState>,
) -> DeviceState {
    let meta = DeviceMeta {
        id: id.into(),
        name: name.into(),
        label: Some(label.into()),
        room: room.into(),
        kind,
    };
    DeviceState::answering(meta, None, points)
}

/// A small site: the climate sensor under test (`th1`), a UPS whose last read timed
/// out, a generator and a leak sensor that never answered.
fn site() -> Shared {
    let now = Timestamp::now();
    let good = |k, n, v| point(k, n, Some(v), Quality::Good, Some(now));
    let live = Live {
        degraded: Vec::new(),
        maintenance: Vec::new(),
        pending: Vec::new(),
        site: "tv1".into(),
        title: "Trung tâm dữ liệu tỉnh Trà Vinh".into(),
        language: "vi".into(),
        rooms: vec![
            RoomInfo {
                id: "server".into(),
                name: "Phòng máy chủ".into(),
            },
            RoomInfo {
                id: "power".into(),
                name: "Phòng nguồn".into(),
            },
        ],
        devices: vec![
            device(
                "th1",
                "Cảm biến rack A3",
                "TH-A3",
                "server",
                Kind::Climate,
                vec![
                    good(Kind::Climate, "temperature_c", Value::Number(23.4)),
                    good(Kind::Climate, "humidity_pct", Value::Number(52.0)),
                    good(Kind::Climate, "dew_point_c", Value::Number(13.1)),
                ],
            ),
            device(
                "leak1",
                "Dây cảm biến nước",
                "LK-01",
                "server",
                Kind::Leak,
                vec![point(
                    Kind::Leak,
                    "leak_detected",
                    None,
                    Quality::CommError,
                    None,
                )],
            ),
            device(
                "ups1",
                "UPS 1",
                "UPS-01",
                "power",
                Kind::Ups,
                vec![
                    good(Kind::Ups, "output_source", Value::Enum("normal")),
                    good(Kind::Ups, "on_battery", Value::Bool(false)),
                    point(
                        Kind::Ups,
                        "battery_charge_pct",
                        Some(Value::Number(97.0)),
                        Quality::Timeout,
                        Some(Timestamp(now.0 - 90_000)),
                    ),
                    good(Kind::Ups, "runtime_remaining_s", Value::Number(1860.0)),
                    good(Kind::Ups, "load_pct", Value::Number(41.0)),
                ],
            ),
            device(
                "gen1",
                "Máy phát điện",
                "GEN-01",
                "power",
                Kind::Generator,
                vec![
                    good(Kind::Generator, "mode", Value::Enum("auto")),
                    good(Kind::Generator, "engine_running", Value::Bool(false)),
                    good(Kind::Generator, "fuel_level_pct", Value::Number(78.0)),
                    point(
                        Kind::Generator,
                        "oil_pressure_kpa",
                        None,
                        Quality::Stale,
                        None,
                    ),
                ],
            ),
        ],
        alarms: vec![],
        sinks: vec![],
        last_progress: Some(now),
    };
    Shared::new(live)
}

/// The Node driver: one JSON line per answer, read on a thread so every wait has a
/// deadline. Dropping it kills the browser script.
pub(crate) struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Browser {
    pub(crate) fn start(url: &str) -> Browser {
        let script = web_dir().join("wall.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(url)
            .current_dir(web_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        Browser {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn recv(&mut self, timeout: Duration) -> Json {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!(
                    "wall.mjs printed non-JSON ({e}): {line}\nstderr:\n{}",
                    self.stderr()
                )
            }),
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "wall.mjs said nothing for {timeout:?}\nstderr:\n{}",
                    self.stderr()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait();
                panic!("wall.mjs ended ({status:?})\nstderr:\n{}", self.stderr())
            }
        }
    }

    pub(crate) fn send(&mut self, cmd: Json) -> Json {
        writeln!(self.stdin, "{cmd}")
            .unwrap_or_else(|e| panic!("writing to wall.mjs: {e}\nstderr:\n{}", self.stderr()));
        self.stdin.flush().ok();
        self.recv(Duration::from_secs(30))
    }

    /// Waits until the element's `data-<attr>` equals `equals`; returns the snapshot.
    pub(crate) fn wait_attr(&mut self, selector: &str, attr: &str, equals: &str) -> Json {
        let r = self.send(json!({
            "cmd": "wait", "selector": selector, "attr": attr, "equals": equals, "timeout_ms": 10_000
        }));
        assert_eq!(
            r["ok"], true,
            "page never showed {selector} data-{attr}={equals:?}: {}\npage: {:#}",
            r["error"], r["snapshot"]
        );
        r["snapshot"].clone()
    }
}

impl Browser {
    /// Asks the script to close the browser and checks it exits cleanly.
    pub(crate) fn quit(mut self) {
        let _ = writeln!(self.stdin, "{}", json!({ "cmd": "quit" }));
        let _ = self.stdin.flush();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "wall.mjs exited with {status}\nstderr:\n{}",
                        self.stderr()
                    );
                    return;
                }
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                other => panic!(
                    "wall.mjs did not exit after quit: {other:?}\nstderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find<'a>(list: &'a Json, pred: impl Fn(&Json) -> bool, what: &str) -> &'a Json {
    list.as_array()
        .and_then(|a| a.iter().find(|x| pred(x)))
        .unwrap_or_else(|| panic!("{what} not on the page: {list:#}"))
}

fn point_of<'a>(snap: &'a Json, device: &str, point: &str) -> &'a Json {
    find(
        &snap["points"],
        |p| p["device"] == device && p["point"] == point,
        &format!("point {device}/{point}"),
    )
}

fn card_of<'a>(snap: &'a Json, device: &str) -> &'a Json {
    find(
        &snap["cards"],
        |c| c["device"] == device,
        &format!("card {device}"),
    )
}

fn assert_same_page(snap: &Json) {
    assert_eq!(
        snap["same_document"], true,
        "the page was reloaded: {snap:#}"
    );
    assert_eq!(snap["loads"], 1, "the page was loaded more than once");
    assert_eq!(snap["errors"], json!([]), "the page reported errors");
}

#[test]
fn wall_page_follows_values_and_alarms_without_reload() {
    require_tools();
    let shared = site();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let url = format!("http://{}/", listener.local_addr().expect("local addr"));
    let server = rt.spawn(dc_gateway::web::serve(listener, shared.clone()));

    let mut browser = Browser::start(&url);

    // First picture: the value, its Vietnamese name and unit, green.
    let loaded = browser.recv(Duration::from_secs(60));
    assert_eq!(
        loaded["ok"],
        true,
        "page did not load: {loaded:#}\nstderr:\n{}",
        browser.stderr()
    );
    let snap = &loaded["snapshot"];
    assert_eq!(snap["lang"], "vi");
    assert_eq!(snap["title"], "Trung tâm dữ liệu tỉnh Trà Vinh");
    assert_eq!(snap["conn"], "live");
    assert_eq!(snap["conn_text"], "Trực tiếp");
    let t = point_of(snap, "th1", "temperature_c");
    assert_eq!(t["value"], "23.4");
    assert_eq!(t["text"], "23,4", "Vietnamese decimal comma");
    assert_eq!(t["unit"], "°C");
    assert_eq!(t["label"], "Nhiệt độ");
    assert_eq!(t["status"], "ok");
    assert_eq!(point_of(snap, "th1", "dew_point_c")["label"], "Điểm sương");
    assert_eq!(card_of(snap, "th1")["status"], "ok");
    assert_eq!(card_of(snap, "th1")["label"], "TH-A3");
    // Honest about old data: the reason in words, the last good value kept.
    let b = point_of(snap, "ups1", "battery_charge_pct");
    assert_eq!(
        (b["status"].as_str(), b["text"].as_str()),
        (Some("stale"), Some("97"))
    );
    assert!(
        b["quality_text"]
            .as_str()
            .unwrap()
            .contains("Không phản hồi"),
        "{b}"
    );
    // One old value hatches its row and is named on the card; the card stays green.
    let u = card_of(snap, "ups1");
    assert_eq!(
        (u["status"].as_str(), u["partial"].as_str()),
        (Some("ok"), Some("true"))
    );
    assert!(
        u["status_text"]
            .as_str()
            .unwrap()
            .contains("Không phản hồi"),
        "{u}"
    );
    // A device with no fresh value at all is grey.
    assert_eq!(card_of(snap, "leak1")["status"], "stale");
    assert!(
        card_of(snap, "leak1")["status_text"]
            .as_str()
            .unwrap()
            .contains("Lỗi kết nối")
    );
    let l = point_of(snap, "leak1", "leak_detected");
    assert_eq!(
        (l["status"].as_str(), l["text"].as_str()),
        (Some("stale"), Some("—"))
    );
    assert!(
        l["quality_text"].as_str().unwrap().contains("Lỗi kết nối"),
        "{l}"
    );
    let o = point_of(snap, "gen1", "oil_pressure_kpa");
    assert_eq!(o["status"], "stale");
    assert_eq!(o["quality_text"], "Chưa có số liệu");
    assert_eq!(
        point_of(snap, "ups1", "output_source")["text"],
        "Bình thường"
    );
    assert_eq!(point_of(snap, "gen1", "mode")["text"], "Tự động");
    assert_eq!(snap["alarms"], json!([]));
    assert_eq!(snap["no_alarms_visible"], true);
    assert_same_page(snap);

    // A new reading, pushed as the runtime does: the page follows without a reload.
    {
        let mut live = shared.write();
        let p = &mut live.devices[0].points[0];
        p.value = Some(Value::Number(25.1));
        p.ts = Some(Timestamp::now());
    }
    shared
        .updates
        .send(Update::Device(0))
        .expect("the page is subscribed");
    let snap = browser.wait_attr(
        r#".point[data-device="th1"][data-point="temperature_c"]"#,
        "value",
        "25.1",
    );
    assert_eq!(point_of(&snap, "th1", "temperature_c")["text"], "25,1");
    assert!(
        snap["events"]["device"].as_u64() >= Some(1),
        "no device event reached the page: {}",
        snap["events"]
    );
    assert_same_page(&snap);

    // Alarms: a normal one on the UPS, then a serious one on th1. The card turns red,
    // the list shows the message, most serious first.
    let message = "Nhiệt độ phòng máy 25,1 °C vượt ngưỡng nghiêm trọng 25 °C (Điều 10.3)";
    {
        let mut live = shared.write();
        live.alarms.push(ActiveAlarm {
            shelved_until: None,
            shelved_by: None,
            no: 0,
            acked_by: None,
            acked_at: None,
            cause: None,
            id: "0190a5b2-0000-7000-8000-000000000001".into(),
            key: "ups1/load_high".into(),
            device: "ups1".into(),
            kind: Kind::Ups,
            point: "load_pct",
            rule: "load_high".into(),
            level: Level::Normal,
            state: "raised",
            since: Timestamp(Timestamp::now().0 - 300_000),
            value: Some(Value::Number(41.0)),
            threshold: Some(40.0),
            message: "Tải UPS 41 % vượt ngưỡng 40 % (Điều 10.2)".into(),
        });
        live.alarms.push(ActiveAlarm {
            shelved_until: None,
            shelved_by: None,
            no: 0,
            acked_by: None,
            acked_at: None,
            cause: None,
            id: "0190a5b2-0000-7000-8000-000000000002".into(),
            key: "th1/temperature_high".into(),
            device: "th1".into(),
            kind: Kind::Climate,
            point: "temperature_c",
            rule: "temperature_high".into(),
            level: Level::Serious,
            state: "raised",
            since: Timestamp::now(),
            value: Some(Value::Number(25.1)),
            threshold: Some(25.0),
            message: message.into(),
        });
    }
    shared
        .updates
        .send(Update::Alarms)
        .expect("the page is subscribed");
    let snap = browser.wait_attr(r#".card[data-device="th1"]"#, "status", "serious");
    assert_eq!(point_of(&snap, "th1", "temperature_c")["status"], "serious");
    assert!(
        snap["events"]["alarms"].as_u64() >= Some(1),
        "no alarms event reached the page: {}",
        snap["events"]
    );
    assert!(
        card_of(&snap, "th1")["status_text"]
            .as_str()
            .unwrap()
            .contains("Sự cố nghiêm trọng")
    );
    assert_eq!(card_of(&snap, "ups1")["status"], "normal");
    assert_eq!(point_of(&snap, "ups1", "load_pct")["status"], "normal");
    let alarms = snap["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 2, "{alarms:#?}");
    assert_eq!(alarms[0]["level"], "serious", "most serious first");
    assert_eq!(alarms[0]["key"], "th1/temperature_high");
    assert!(
        alarms[0]["text"].as_str().unwrap().contains(message),
        "{}",
        alarms[0]
    );
    assert_eq!(alarms[1]["level"], "normal");
    assert_eq!(snap["no_alarms_visible"], false);
    assert_same_page(&snap);

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/wall.png");
    let r = browser.send(json!({ "cmd": "screenshot", "path": shot }));
    assert_eq!(r["ok"], true, "screenshot: {r}");
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "no screenshot at {}",
        shot.display()
    );

    // The gateway goes away: the indicator says so instead of showing old data as live.
    server.abort();
    rt.shutdown_timeout(Duration::from_secs(2));
    let snap = browser.wait_attr("#conn", "conn", "reconnecting");
    assert!(
        snap["conn_text"].as_str().unwrap().contains("Mất kết nối"),
        "{}",
        snap["conn_text"]
    );

    browser.quit();
}

// ---------------------------------------------------------------------------------
// The wall on a 1920×1080 TV, against the real demo sites

/// The gateway on one of the built-in demo sites, in its own runtime so the test can
/// stop it as a power cut would (every connection dropped at once).
struct DemoGateway {
    rt: tokio::runtime::Runtime,
    running: dc_gateway::runtime::Running,
    sim: dc_gateway::demo::Simulator,
    /// Device id → its simulated unit.
    units: Vec<(String, u8)>,
    devices: usize,
    _state: tempfile::TempDir,
}

impl DemoGateway {
    fn start(which: dc_gateway::demo::DemoSite) -> DemoGateway {
        use dc_gateway::config::Connection;
        use dc_gateway::rules::spec::Condition;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let state = tempfile::tempdir().expect("temp dir");
        let (running, sim, units, devices) = rt.block_on(async {
            let sim = dc_gateway::demo::start_simulator_of(which, "127.0.0.1:0".parse().unwrap())
                .await
                .expect("simulator starts");
            let mut site =
                dc_gateway::demo::site_of(which, sim.addr.port(), "127.0.0.1:0".parse().unwrap())
                    .expect("demo site is valid");
            site.storage.state_dir = state.path().to_path_buf();
            // The limit-crossing check wants the alarm within a poll, not after the
            // demo's 10 s on-delay (CONTRACTS: such tests configure on-delay 0).
            let th = site
                .devices
                .iter_mut()
                .find(|d| &*d.meta.id == "th-a1")
                .expect("th-a1 in every demo site");
            for r in th
                .rules
                .iter_mut()
                .filter(|r| &*r.name == "temperature_high")
            {
                if let Condition::Above { on_delay_s, .. } = &mut r.condition {
                    *on_delay_s = 0.0;
                }
            }
            let units = site
                .devices
                .iter()
                .filter_map(|d| match d.connection {
                    Connection::ModbusTcp { unit_id, .. } => Some((d.meta.id.to_string(), unit_id)),
                    _ => None,
                })
                .collect::<Vec<_>>();
            let devices = site.devices.len();
            // The demo's periodic excursion is held off: the test makes every alarm.
            let (_, unit) = units
                .iter()
                .find(|(d, _)| d == which.excursion_device())
                .expect("excursion device in the site");
            sim.devices
                .iter()
                .find(|d| d.unit_id == *unit)
                .expect("simulated unit")
                .values
                .set_value("temperature_c", Value::Number(23.0))
                .expect("settable");
            let running = dc_gateway::runtime::start(site)
                .await
                .expect("gateway starts");
            (running, sim, units, devices)
        });
        DemoGateway {
            rt,
            running,
            sim,
            units,
            devices,
            _state: state,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.running.web_addr)
    }

    fn device(&self, id: &str) -> &dc_gateway::sim::SimDevice {
        let unit = self
            .units
            .iter()
            .find(|(d, _)| d == id)
            .unwrap_or_else(|| panic!("{id} is not a simulated device"))
            .1;
        self.sim
            .devices
            .iter()
            .find(|d| d.unit_id == unit)
            .expect("simulated unit")
    }

    /// Stops the whole gateway at once: web server, event streams, pollers.
    fn stop(self) {
        let DemoGateway {
            rt, running, sim, ..
        } = self;
        drop(running);
        drop(sim);
        rt.shutdown_timeout(Duration::from_secs(2));
    }
}

/// Where the screenshots go: `target/wall-screenshots/`, and `docs/screenshots/` when
/// `DCGW_UPDATE_SCREENSHOTS=1` (how the README's pictures are made).
fn screenshot(browser: &mut Browser, name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("target/wall-screenshots")];
    if std::env::var("DCGW_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        dirs.push(root.join("docs/screenshots"));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        let r = browser.send(json!({ "cmd": "screenshot", "path": path }));
        assert_eq!(r["ok"], true, "screenshot {}: {r}", path.display());
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 10_000),
            "no screenshot at {}",
            path.display()
        );
    }
}

fn wait_ms(browser: &mut Browser, selector: &str, attr: &str, equals: &str, ms: u64) -> Json {
    let r = browser.send(json!({
        "cmd": "wait", "selector": selector, "attr": attr, "equals": equals, "timeout_ms": ms
    }));
    assert_eq!(
        r["ok"], true,
        "page did not show {selector} data-{attr}={equals:?} within {ms} ms: {}\npage: {:#}",
        r["error"], r["snapshot"]
    );
    r["snapshot"].clone()
}

/// Every tile inside the 1920×1080 viewport, nothing to scroll, main values ≥ 40 px.
fn assert_fits_the_tv(browser: &mut Browser, site: &str, devices: usize) {
    let g = browser.send(json!({ "cmd": "geometry" }));
    assert_eq!(g["ok"], true, "{g}");
    let (vw, vh) = (
        g["viewport"]["w"].as_f64().unwrap(),
        g["viewport"]["h"].as_f64().unwrap(),
    );
    assert_eq!((vw, vh), (1920.0, 1080.0));
    assert!(
        g["scroll"]["w"].as_f64().unwrap() <= vw && g["scroll"]["h"].as_f64().unwrap() <= vh,
        "{site}: the page scrolls: {}",
        g["scroll"]
    );
    assert_eq!(
        g["pages"], 1,
        "{site}: rooms are paged instead of fitting one screen"
    );
    let cards = g["cards"].as_array().unwrap();
    assert_eq!(cards.len(), devices, "{site}: one tile per device");
    for c in cards {
        let (x, y, w, h) = (
            c["x"].as_f64().unwrap(),
            c["y"].as_f64().unwrap(),
            c["w"].as_f64().unwrap(),
            c["h"].as_f64().unwrap(),
        );
        assert!(
            c["visible"] == true && x >= 0.0 && y >= 0.0 && x + w <= vw && y + h <= vh,
            "{site}: tile {} outside the viewport: {c}",
            c["device"]
        );
        assert!(
            c["value_px"].as_f64().unwrap() >= 40.0,
            "{site}: tile {} main value smaller than 40 px: {c}",
            c["device"]
        );
        let v = &c["value_box"];
        assert!(
            v["y"].as_f64().unwrap() >= y
                && v["y"].as_f64().unwrap() + v["h"].as_f64().unwrap() <= y + h + 1.0,
            "{site}: tile {} main value outside its tile: {c}",
            c["device"]
        );
    }
}

#[test]
fn wall_fits_the_tv_and_shows_alarm_stale_and_unreachable_for_both_demo_sites() {
    use dc_gateway::demo::DemoSite;
    require_tools();
    for (which, name) in [(DemoSite::Normal, "normal"), (DemoSite::Large, "large")] {
        let gw = DemoGateway::start(which);
        let mut browser = Browser::start(&gw.url());
        let loaded = browser.recv(Duration::from_secs(60));
        assert_eq!(
            loaded["ok"],
            true,
            "{name}: page did not load: {loaded:#}\nstderr:\n{}",
            browser.stderr()
        );
        // Every device answered once: no grey tile left.
        let r = browser.send(json!({
            "cmd": "wait_none", "selector": ".card[data-stale=\"true\"]", "timeout_ms": 15_000
        }));
        assert_eq!(
            r["ok"], true,
            "{name}: tiles still without data: {:#}",
            r["snapshot"]
        );
        assert_fits_the_tv(&mut browser, name, gw.devices);
        let snap = &r["snapshot"];
        assert_eq!(card_of(snap, "th-a1")["status"], "ok", "{name}");
        assert_eq!(snap["unreachable"], "false");
        screenshot(&mut browser, &format!("{name}-normal"));

        // A value crossing the normal limit (27 °C, below the serious 32 °C): amber
        // within 2 s of the device holding it.
        gw.device("th-a1")
            .values
            .set_value("temperature_c", Value::Number(29.0))
            .expect("settable");
        let snap = wait_ms(
            &mut browser,
            r#".card[data-device="th-a1"]"#,
            "status",
            "normal",
            2_000,
        );
        let alarm = find(
            &snap["alarms"],
            |a| a["key"] == "th-a1/temperature_high",
            "th-a1 alarm",
        );
        assert_eq!(alarm["level"], "normal");
        assert_eq!(point_of(&snap, "th-a1", "temperature_c")["text"], "29");
        assert_eq!(snap["events"]["beeps"], 0, "{name}: a normal alarm beeped");

        // Beyond the limit inside its on-delay (the demo's 10 s): pending, never green.
        // (27.3 °C: above the 27 °C limit, less than the 5 °C rate-of-change limit above
        // the rack's ~23 °C, so only the on-delayed threshold is involved.)
        gw.device("th-a3")
            .values
            .set_value("temperature_c", Value::Number(27.3))
            .expect("settable");
        wait_ms(
            &mut browser,
            r#".card[data-device="th-a3"]"#,
            "status",
            "pending",
            3_000,
        );
        gw.device("th-a3")
            .values
            .set_value("temperature_c", Value::Number(23.0))
            .expect("settable");
        wait_ms(
            &mut browser,
            r#".card[data-device="th-a3"]"#,
            "status",
            "ok",
            5_000,
        );

        // Three causes at once: the rack above the serious limit, the cooling unit
        // stopped, the generator out of auto. Red tiles, one alarm row per cause, a
        // beep for the new serious alarm, and the site still on one screen.
        gw.device("th-a1")
            .values
            .set_value("temperature_c", Value::Number(33.0))
            .expect("settable");
        gw.device("crac1")
            .values
            .set_value("unit_on", Value::Bool(false))
            .expect("settable");
        gw.device("gen1")
            .values
            .set_value("mode", Value::Enum("manual"))
            .expect("settable");
        wait_ms(
            &mut browser,
            r#".card[data-device="th-a1"]"#,
            "status",
            "serious",
            2_000,
        );
        wait_ms(
            &mut browser,
            r#".card[data-device="crac1"]"#,
            "status",
            "serious",
            5_000,
        );
        let snap = wait_ms(
            &mut browser,
            r#".card[data-device="gen1"]"#,
            "status",
            "normal",
            5_000,
        );
        assert!(
            snap["events"]["beeps"].as_u64() >= Some(1),
            "{name}: no alert sounded for a new serious alarm: {}",
            snap["events"]
        );
        let groups: Vec<&str> = snap["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["device"].as_str().unwrap())
            .collect();
        assert_eq!(
            groups.len(),
            3,
            "{name}: one row per device: {:#}",
            snap["alarms"]
        );
        assert_eq!(snap["alarms"][2]["level"], "normal", "serious rows first");
        assert_fits_the_tv(&mut browser, name, gw.devices);
        screenshot(&mut browser, &format!("{name}-alarm"));

        // A device that stops answering: its tile turns stale (grey hatched) and says why.
        gw.device("ups1").values.set_answering(false);
        let snap = wait_ms(
            &mut browser,
            r#".card[data-device="ups1"]"#,
            "stale",
            "true",
            5_000,
        );
        let ups = card_of(&snap, "ups1");
        assert_ne!(ups["status_text"].as_str().unwrap(), "Bình thường", "{ups}");
        assert_same_page(&snap);
        screenshot(&mut browser, &format!("{name}-stale"));

        // The gateway stops: "unreachable" over the whole view within 5 s.
        gw.stop();
        let snap = wait_ms(&mut browser, "body", "unreachable", "true", 5_000);
        assert_ne!(snap["conn"], "live");
        screenshot(&mut browser, &format!("{name}-unreachable"));
        browser.quit();
    }
}
