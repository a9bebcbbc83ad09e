//! SMS latency benchmark (`docs/BENCHMARKS.md`, "SMS sink"): from a notification
//! entering the SMS sink's queue to the `AT+CMGS` line written to the modem.
//!
//! `cargo bench --bench sms -- [--count N] [--only enqueue|rule]` (default 200 each)
//!
//! The production path: the durable buffer on disk (a notification is committed with
//! fsync before it is sent, like an alarm event), the SMS queue settings of the
//! registry (`sinks::sms::queue_config`), the sink and its modem task on a serial port
//! (a `socat` pty pair). On the pty's other end a minimal modem in this process answers
//! the start-up and health commands and `AT+CMGS` (prompt, PDU up to Ctrl-Z,
//! `+CMGS: <mr>`, `OK`) and takes the time when it has read the `AT+CMGS=` line. One
//! notification at a time: the next is enqueued after the previous was accepted, so
//! the figure is the path's latency, not a queue's wait. Two texts: a short one (one
//! 7-bit part) and a Vietnamese alarm text (3 UCS-2 parts; the time to the first part's
//! `AT+CMGS`).
//!
//! The network's own time (a real `AT+CMGS` takes 1–5 s) is not in the figure: it is
//! what the gateway adds before the modem can start.
//!
//! **Rule fires → `AT+CMGS` written** (the second figure; `--count` alarms): the gateway
//! binary (`dc-gateway run`) with a paging roster, reading an XY-MD02 sensor on pymodbus
//! every 200 ms, its `sms` sink on a second pty to the same minimal modem. Each round
//! raises the serious `temperature_high` alarm (40 °C), waits for its page's `AT+CMGS`,
//! then clears it (23.5 °C) and waits for the clear's text. The figure is from the alarm
//! event's timestamp (the rule firing, journaled by the gateway, millisecond resolution)
//! to the wall-clock time the modem read the page's `AT+CMGS=` line: the rules, the hub,
//! the journal, the pager, the durable SMS queue and the modem task in between.

#[path = "../tests/it/peers/mod.rs"]
mod peers;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dc_gateway::buffer::{Buffer, Options};
use dc_gateway::model::Timestamp;
use dc_gateway::sinks::sms::{SmsConfig, SmsSink, queue_config};
use dc_gateway::sinks::worker;
use dc_gateway::sinks::{Notification, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const VI: &str = "Cảnh báo NGHIÊM TRỌNG #123 (Điều 10.3): UPS phòng máy chủ 1 đang chạy bằng ắc quy, \
máy phát điện chưa khởi động. Còn 12 phút lưu điện. Trả lời \"OK 123\" để xác nhận.";

/// The minimal modem: answers every command, times the `AT+CMGS=` lines.
async fn modem(path: std::path::PathBuf, cmgs: mpsc::UnboundedSender<(Instant, SystemTime)>) {
    let mut port =
        tokio_serial::SerialStream::open(&tokio_serial::new(path.to_string_lossy(), 115_200))
            .expect("modem end of the pty");
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = [0u8; 1024];
    let mut mr = 0u8;
    loop {
        let n = port.read(&mut tmp).await.expect("pty read");
        buf.extend_from_slice(&tmp[..n]);
        while let Some(pos) = buf.iter().position(|b| *b == b'\r') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let cmd = String::from_utf8_lossy(&line).trim().to_string();
            let reply: &[u8] = match cmd.as_str() {
                "AT+CPIN?" => b"\r\n+CPIN: READY\r\n\r\nOK\r\n",
                "AT+CEREG?" => b"\r\n+CEREG: 1,1\r\n\r\nOK\r\n",
                "AT+CMGF?" => b"\r\n+CMGF: 0\r\n\r\nOK\r\n",
                "AT+CSQ" => b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n",
                c if c.starts_with("AT+CMGS=") => {
                    let _ = cmgs.send((Instant::now(), SystemTime::now()));
                    port.write_all(b"\r\n> ").await.expect("pty write");
                    // The PDU up to Ctrl-Z.
                    loop {
                        if let Some(z) = buf.iter().position(|b| *b == 0x1A) {
                            buf.drain(..=z);
                            break;
                        }
                        let n = port.read(&mut tmp).await.expect("pty read");
                        buf.extend_from_slice(&tmp[..n]);
                    }
                    mr = mr.wrapping_add(1);
                    let r = format!("\r\n+CMGS: {mr}\r\n\r\nOK\r\n");
                    port.write_all(r.as_bytes()).await.expect("pty write");
                    continue;
                }
                "" => continue,
                _ => b"\r\nOK\r\n",
            };
            port.write_all(reply).await.expect("pty write");
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> ExitCode {
    let mut count = 200usize;
    let mut only: Option<String> = None;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        if args[i] == "--count" {
            count = args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(count);
            i += 1;
        } else if args[i] == "--only" {
            only = args.get(i + 1).cloned();
            i += 1;
        }
        i += 1;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if only.as_deref() != Some("rule") {
        enqueue_to_cmgs(&rt, count);
    }
    if only.as_deref() != Some("enqueue")
        && let Err(e) = rule_to_cmgs(&rt, count)
    {
        eprintln!("rule fires -> AT+CMGS: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Enqueue → `AT+CMGS` written, in this process.
fn enqueue_to_cmgs(rt: &tokio::runtime::Runtime, count: usize) {
    let pty = peers::PtyPair::start();
    let state = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(modem(pty.device.clone(), tx));
        let buffer = Buffer::open(state.path(), Options::default()).expect("buffer");
        let mut cfg = SmsConfig::new(pty.gateway.clone());
        cfg.check_interval = Duration::from_secs(3600);
        let sink = SmsSink::start("sms", &cfg);
        let handle = sink.handle();
        let (q, _task) =
            worker::spawn_on(&buffer, sink, queue_config(&cfg, 16 << 20)).expect("queue");
        let start = Instant::now();
        while !handle.status().ok() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "modem start-up: {:?}",
                handle.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("SMS sink: enqueue -> AT+CMGS written, {count} notifications each, one at a time");
        for (label, text) in [
            (
                "short 7-bit text (1 part)",
                "Serious alarm #7: UPS on battery",
            ),
            ("Vietnamese alarm text (3 UCS-2 parts), first part", VI),
        ] {
            let mut lat = Vec::with_capacity(count);
            for k in 0..count {
                let delivered = q.status(Timestamp::now()).delivered;
                let n = Notification {
                    id: format!("bench-{label}-{k}"),
                    ts: Timestamp::now(),
                    person: "an".into(),
                    phone: "+84912345678".into(),
                    text: text.into(),
                    lang: "vi".into(),
                    alarm_no: Some(k as u64),
                    call: false,
                    attempt: 1,
                };
                let t0 = Instant::now();
                q.push(Record::Notification(Arc::new(n)));
                let (t1, _) = rx.recv().await.expect("modem running");
                lat.push(t1 - t0);
                while q.status(Timestamp::now()).delivered == delivered {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // Drain the other parts' timestamps.
                while rx.try_recv().is_ok() {}
            }
            lat.sort();
            println!(
                "  {label}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                pct(&lat, 0.5).as_secs_f64() * 1e3,
                pct(&lat, 0.99).as_secs_f64() * 1e3,
                lat[lat.len() - 1].as_secs_f64() * 1e3
            );
        }
    });
}

/// The gateway's answer to `GET path`, as JSON.
fn api(web: &str, path: &str) -> Result<serde_json::Value, String> {
    let r =
        peers::http_get(&format!("http://{web}{path}")).map_err(|e| format!("{path}: {e:?}"))?;
    r.json().map_err(|e| format!("{path}: {e}"))
}

/// Rule fires → `AT+CMGS` written, through the gateway binary.
fn rule_to_cmgs(rt: &tokio::runtime::Runtime, count: usize) -> Result<(), String> {
    use peers::{ModbusServer, ModbusSpec, UnitSpec};
    let pty = peers::PtyPair::start();
    let (tx, mut rx) = mpsc::unbounded_channel();
    rt.spawn(modem(pty.device.clone(), tx));
    let modbus =
        ModbusServer::start(ModbusSpec::new().unit(1, UnitSpec::new().input(1, &[0x00EB, 0x0222])));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let web = format!("127.0.0.1:{}", peers::free_port());
    // Storm control at its loosest (100 texts per 10 s window, 1 000 an hour): every
    // round's page and clear go out. No repeats, no ring: one page per alarm.
    let site = format!(
        r#"
[site]
name = "bench"
language = "en"

[[rooms]]
id = "server1"

[web]
listen = "{web}"

[[devices]]
id = "th1"
room = "server1"
kind = "climate"
profile = "xy-md02"
poll_interval_ms = 200
timeout_ms = 150
[devices.modbus_tcp]
host = "127.0.0.1"
port = {mb}
unit_id = 1
[devices.rules.temperature_high]
on_delay_s = 0

[[sinks]]
name = "modem"
kind = "sms"
port = "{port}"

[paging]
repeat_min = 0
call_after_min = 0
page_normal = false
storm_window_s = 10
storm_max = 100
max_per_hour = 1000

[[paging.people]]
id = "an"
phone = "+84912345678"
language = "en"
channels = ["sms"]

[[paging.shifts]]
person = "an"
when = ["daily 00:00-24:00"]
"#,
        mb = modbus.addr().port(),
        port = pty.gateway.display(),
    );
    let cfg = dir.path().join("site.toml");
    std::fs::write(&cfg, site).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.path().join("gateway.log")).map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("dc-gateway: {e}"))?;
    let result = rt.block_on(async {
        let start = Instant::now();
        while peers::http_get(&format!("http://{web}/healthz")).is_err() {
            if start.elapsed() > Duration::from_secs(30) || child.try_wait().ok().flatten().is_some() {
                return Err("the gateway did not answer within 30 s".to_string());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The start-up checks and the first poll.
        tokio::time::sleep(Duration::from_secs(3)).await;
        while rx.try_recv().is_ok() {}
        let mut after_seq = 0i64;
        let mut lat: Vec<Duration> = Vec::with_capacity(count);
        let within = |d: u64| Duration::from_secs(d);
        for round in 0..count {
            // 0x0190 = 40.0 °C: above the serious limit (32 °C).
            modbus.set_input(1, 1, &[0x0190]);
            let (_, at) = tokio::time::timeout(within(10), rx.recv())
                .await
                .map_err(|_| format!("round {round}: no page within 10 s"))?
                .ok_or("modem stopped")?;
            // The alarm event the page was about.
            let entries = api(&web, &format!("/api/v1/journal?kind=alarm&after_seq={after_seq}&limit=1000"))?;
            let entries = entries["entries"].as_array().cloned().unwrap_or_default();
            if let Some(last) = entries.iter().filter_map(|e| e["seq"].as_i64()).max() {
                after_seq = last;
            }
            let raised = entries
                .iter()
                .filter(|e| e["rule"] == "temperature_high" && e["state"] == "raised")
                .filter_map(|e| serde_json::from_value::<Timestamp>(e["ts"].clone()).ok())
                .max()
                .ok_or_else(|| format!("round {round}: no temperature_high raise journaled"))?;
            let at = Timestamp::from(at);
            if at.millis() < raised.millis() {
                return Err(format!("round {round}: AT+CMGS before the rule fired"));
            }
            lat.push(Duration::from_millis((at.millis() - raised.millis()) as u64));
            // 23.5 °C: cleared, and the clear texted to whoever was paged.
            modbus.set_input(1, 1, &[0x00EB]);
            tokio::time::timeout(within(10), rx.recv())
                .await
                .map_err(|_| format!("round {round}: no clear text within 10 s"))?
                .ok_or("modem stopped")?;
            // Anything else (none expected) does not count as the next page.
            tokio::time::sleep(Duration::from_millis(300)).await;
            while rx.try_recv().is_ok() {}
        }
        lat.sort();
        println!("Gateway binary: rule fires (alarm event ts) -> AT+CMGS written, {count} serious alarms, one at a time");
        println!(
            "  page (1 part, 7-bit): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            pct(&lat, 0.5).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
            lat[lat.len() - 1].as_secs_f64() * 1e3
        );
        Ok(())
    });
    let _ = child.kill();
    let _ = child.wait();
    if result.is_err() {
        let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!("--- gateway log (last lines) ---");
        for l in tail.into_iter().rev() {
            eprintln!("{l}");
        }
    }
    result
}
