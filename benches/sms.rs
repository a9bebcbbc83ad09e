//! SMS latency benchmark (`docs/BENCHMARKS.md`, "SMS sink"): from a notification
//! entering the SMS sink's queue to the `AT+CMGS` line written to the modem.
//!
//! `cargo bench --bench sms -- [--count N]` (default 200 per text)
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

#[path = "../tests/it/peers/mod.rs"]
mod peers;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
async fn modem(path: std::path::PathBuf, cmgs: mpsc::UnboundedSender<Instant>) {
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
                    let _ = cmgs.send(Instant::now());
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
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        if args[i] == "--count" {
            count = args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(count);
            i += 1;
        }
        i += 1;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
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
                let t1 = rx.recv().await.expect("modem running");
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
    ExitCode::SUCCESS
}
