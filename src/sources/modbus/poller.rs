//! The Modbus TCP poller: one task per device, one [`Poll`] per interval.
//!
//! What must stay true:
//!
//! - **Exactly one `Poll` per tick, whatever happens.** A dead device produces polls
//!   with a bad quality on every tick, so staleness and loss of communication are
//!   visible downstream instead of a silent gap.
//! - **Fixed rate.** Ticks come from a tokio interval with
//!   [`MissedTickBehavior::Skip`]: polls stay on the original grid (equally spaced
//!   readings), and a cycle that overruns its interval (only possible when `timeout` is
//!   not well below `poll_interval`; the config requires `timeout <= poll_interval`)
//!   skips the missed ticks instead of firing them back to back at a struggling device.
//! - **Every request and every connect runs under `tokio::time::timeout`.** tokio-modbus
//!   has no timeouts of its own. After a timeout or an I/O error the client context is
//!   dropped (closing the socket): a late reply would otherwise be taken as the answer
//!   to the next request. The remaining reads of that cycle are not sent; their points
//!   get the same quality.
//! - **Reconnects back off, polls do not.** After a link failure the next tick tries
//!   again; each further consecutive failure doubles the wait (starting at one
//!   interval) up to `max(10 s, interval)`. Ticks inside the wait emit polls with the
//!   last failure's quality without touching the network.
//! - **A Modbus exception is the device talking**: that read's points get
//!   [`Quality::DeviceException`] and the connection is kept. An exception 02 (illegal
//!   data address) on a read that spans unmapped registers splits that read into
//!   gap-free reads from the next cycle on (see [`super::plan`]).
//! - `comm_ok` is true when at least one read of the cycle returned data.
//!
//! Qualities: timeout → [`Quality::Timeout`]; refused / reset / I/O / protocol error →
//! [`Quality::CommError`]; exception → [`Quality::DeviceException`]. Failures are logged
//! once per change of state (with device id and address), not on every tick, and
//! counted in `dcgw_polls{device, result}` (`ok`, `timeout`, `comm_error`,
//! `device_exception`, the first failure of the cycle) and `dcgw_requests{device}`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::{ExceptionCode, Slave};

use super::decode::{self, Decoded};
use super::plan::{self, Read};
use super::profile::{Profile, Table};
use crate::metrics;
use crate::model::{Device, Poll, Quality, Sample, Timestamp, Value};

/// Longest wait between reconnect attempts (or one poll interval, if longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A Modbus TCP device to poll.
#[derive(Debug, Clone)]
pub struct TcpDevice {
    /// Identity carried by every poll.
    pub meta: Device,
    /// `host:port` of the device or of the Modbus TCP gateway in front of it.
    pub addr: String,
    /// Unit id (slave address) behind the endpoint.
    pub unit_id: u8,
    /// Period between polls.
    pub poll_interval: Duration,
    /// Limit for connecting and for each request.
    pub timeout: Duration,
    /// Register map.
    pub profile: Arc<Profile>,
}

/// Errors of a one-off read ([`probe`]); the poller itself turns failures into qualities.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connection failed.
    #[error("device {device} at {addr}: cannot connect: {source}")]
    Connect {
        /// Device id.
        device: String,
        /// `host:port`.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The TCP connection did not complete in time.
    #[error("device {device} at {addr}: no connection within {} ms", timeout.as_millis())]
    ConnectTimeout {
        /// Device id.
        device: String,
        /// `host:port`.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
}

/// Start polling a device. The task runs until the receiver is dropped (or the handle
/// is aborted).
pub fn spawn(dev: TcpDevice, tx: mpsc::Sender<Poll>) -> JoinHandle<()> {
    tokio::spawn(run(dev, tx))
}

async fn run(dev: TcpDevice, tx: mpsc::Sender<Poll>) {
    let mut poller = Poller::new(dev);
    let mut ticks = tokio::time::interval(poller.dev.poll_interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tracing::debug!(device = %poller.dev.meta.id, addr = %poller.dev.addr, reads = poller.reads.len(), "modbus poller started");
    loop {
        ticks.tick().await;
        let poll = poller.cycle().await;
        if tx.send(poll).await.is_err() {
            tracing::debug!(device = %poller.dev.meta.id, "modbus poller stopped: receiver gone");
            return;
        }
    }
}

/// What one read returned.
#[derive(Debug)]
enum Outcome {
    Registers(Vec<u16>),
    Bits(Vec<bool>),
    Exception(ExceptionCode),
    Timeout,
    Link(String),
}

/// State of the last cycle, for logging once per change.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Starting,
    Ok,
    Failed {
        result: &'static str,
        detail: String,
    },
}

struct Poller {
    dev: TcpDevice,
    reads: Vec<Read>,
    conn: Option<Context>,
    /// Consecutive link failures (connect, timeout, I/O).
    failures: u32,
    retry_at: Instant,
    /// Quality reported while waiting to reconnect.
    link_quality: Quality,
    link_detail: String,
    state: State,
    labels: metrics::Labels,
}

fn result_label(q: Quality) -> &'static str {
    match q {
        Quality::Timeout => "timeout",
        Quality::DeviceException => "device_exception",
        _ => "comm_error",
    }
}

impl Poller {
    fn new(dev: TcpDevice) -> Poller {
        let reads = dev.profile.plan().reads;
        let labels = metrics::labels(&[("device", &dev.meta.id)]);
        Poller {
            dev,
            reads,
            conn: None,
            failures: 0,
            retry_at: Instant::now(),
            link_quality: Quality::CommError,
            link_detail: String::new(),
            state: State::Starting,
            labels,
        }
    }

    fn backoff(&self) -> Duration {
        if self.failures <= 1 {
            return Duration::ZERO;
        }
        let cap = MAX_BACKOFF.max(self.dev.poll_interval);
        let factor = 1u32 << (self.failures - 2).min(16);
        self.dev.poll_interval.saturating_mul(factor).min(cap)
    }

    fn link_failed(&mut self, quality: Quality, detail: String) {
        self.conn = None;
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Instant::now() + self.backoff();
        self.link_quality = quality;
        self.link_detail = detail;
    }

    /// One poll of every read; never fails, never panics.
    async fn cycle(&mut self) -> Poll {
        if self.conn.is_none() && Instant::now() >= self.retry_at {
            match connect(&self.dev).await {
                Ok(ctx) => self.conn = Some(ctx),
                Err((q, detail)) => self.link_failed(q, detail),
            }
        }

        let profile = Arc::clone(&self.dev.profile);
        let points = &profile.points;
        let mut samples: Vec<Sample> = points
            .iter()
            .map(|p| Sample {
                point: p.point,
                value: None,
                quality: self.link_quality,
            })
            .collect();
        let mut first_failure: Option<(Quality, String)> = None;
        let mut any_data = false;
        let mut split: Vec<usize> = Vec::new();

        match self.conn.take() {
            None => first_failure = Some((self.link_quality, self.link_detail.clone())),
            Some(mut ctx) => {
                let reads = std::mem::take(&mut self.reads);
                let mut broken: Option<Quality> = None;
                for (ri, read) in reads.iter().enumerate() {
                    if let Some(q) = broken {
                        for &i in &read.points {
                            samples[i].quality = q;
                        }
                        continue;
                    }
                    metrics::get().requests.get_or_create(&self.labels).inc();
                    match read_once(&mut ctx, read, self.dev.timeout).await {
                        Outcome::Registers(regs) => {
                            any_data = true;
                            for &i in &read.points {
                                let p = &points[i];
                                let off = usize::from(p.address - read.start);
                                let d = decode::decode_registers(p, regs.get(off..).unwrap_or(&[]));
                                samples[i] = sample(p.point, d);
                            }
                        }
                        Outcome::Bits(bits) => {
                            any_data = true;
                            for &i in &read.points {
                                let p = &points[i];
                                let off = usize::from(p.address - read.start);
                                let d = match bits.get(off) {
                                    Some(b) => decode::decode_bit(p, *b),
                                    None => Decoded {
                                        value: None,
                                        quality: Quality::CommError,
                                    },
                                };
                                samples[i] = sample(p.point, d);
                            }
                        }
                        Outcome::Exception(code) => {
                            for &i in &read.points {
                                samples[i].quality = Quality::DeviceException;
                            }
                            if code == ExceptionCode::IllegalDataAddress && read.has_gaps(points) {
                                split.push(ri);
                            }
                            first_failure.get_or_insert_with(|| {
                                (
                                    Quality::DeviceException,
                                    format!(
                                        "exception {code} ({:#04x}) reading {} {}..{}",
                                        u8::from(code),
                                        read.table.as_str(),
                                        read.start,
                                        u32::from(read.start) + u32::from(read.count)
                                    ),
                                )
                            });
                        }
                        Outcome::Timeout => {
                            let detail =
                                format!("no reply within {} ms", self.dev.timeout.as_millis());
                            broken = Some(Quality::Timeout);
                            for &i in &read.points {
                                samples[i].quality = Quality::Timeout;
                            }
                            first_failure.get_or_insert((Quality::Timeout, detail.clone()));
                            self.link_failed(Quality::Timeout, detail);
                        }
                        Outcome::Link(detail) => {
                            broken = Some(Quality::CommError);
                            for &i in &read.points {
                                samples[i].quality = Quality::CommError;
                            }
                            first_failure.get_or_insert((Quality::CommError, detail.clone()));
                            self.link_failed(Quality::CommError, detail);
                        }
                    }
                }
                self.reads = reads;
                if broken.is_none() {
                    // The link works (data or exceptions came back): keep it, reset backoff.
                    self.conn = Some(ctx);
                    self.failures = 0;
                }
            }
        }

        for ri in split.into_iter().rev() {
            let parts = plan::split_gapless(&self.reads[ri], points);
            let r = &self.reads[ri];
            tracing::info!(device = %self.dev.meta.id, addr = %self.dev.addr, table = r.table.as_str(), start = r.start, count = r.count, parts = parts.len(), "device refuses reads across unmapped registers: reading them separately");
            self.reads.splice(ri..=ri, parts);
        }

        let result = first_failure
            .as_ref()
            .map(|(q, _)| result_label(*q))
            .unwrap_or("ok");
        metrics::get()
            .polls
            .get_or_create(&vec![
                ("device", self.dev.meta.id.to_string()),
                ("result", result.to_string()),
            ])
            .inc();
        let state = match first_failure {
            None => State::Ok,
            Some((q, detail)) => State::Failed {
                result: result_label(q),
                detail,
            },
        };
        self.log_transition(state);

        Poll {
            device: self.dev.meta.clone(),
            ts: Timestamp::now(),
            comm_ok: any_data,
            samples,
        }
    }

    fn log_transition(&mut self, state: State) {
        if state == self.state {
            return;
        }
        let (device, addr, unit) = (&self.dev.meta.id, &self.dev.addr, self.dev.unit_id);
        match (&self.state, &state) {
            (State::Starting, State::Ok) => {
                tracing::info!(device = %device, addr = %addr, unit, "modbus device answering")
            }
            (_, State::Ok) => {
                tracing::info!(device = %device, addr = %addr, unit, "modbus device recovered")
            }
            (State::Failed { result: a, .. }, State::Failed { result: b, .. }) if a == b => {
                // Same kind of failure with another detail (e.g. refused, then reset): quiet.
                tracing::debug!(device = %device, addr = %addr, unit, result = b, "modbus poll still failing");
            }
            (_, State::Failed { result, detail }) => {
                tracing::warn!(device = %device, addr = %addr, unit, result, error = %detail, "modbus poll failed")
            }
            (_, State::Starting) => {}
        }
        self.state = state;
    }
}

fn sample(point: crate::points::PointId, d: Decoded) -> Sample {
    let value = if d.quality == Quality::Good {
        d.value
    } else {
        None
    };
    Sample {
        point,
        value,
        quality: d.quality,
    }
}

/// Connect under the device timeout. Errors carry the quality they mean.
async fn connect(dev: &TcpDevice) -> Result<Context, (Quality, String)> {
    match tokio::time::timeout(dev.timeout, TcpStream::connect(dev.addr.as_str())).await {
        Err(_) => Err((
            Quality::Timeout,
            format!("no connection within {} ms", dev.timeout.as_millis()),
        )),
        Ok(Err(e)) => Err((Quality::CommError, format!("cannot connect: {e}"))),
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(tokio_modbus::client::tcp::attach_slave(
                stream,
                Slave(dev.unit_id),
            ))
        }
    }
}

async fn read_once(ctx: &mut Context, read: &Read, timeout: Duration) -> Outcome {
    let (start, count) = (read.start, read.count);
    let fut = async {
        match read.table {
            Table::Holding => ctx
                .read_holding_registers(start, count)
                .await
                .map(|r| r.map(Outcome::Registers)),
            Table::Input => ctx
                .read_input_registers(start, count)
                .await
                .map(|r| r.map(Outcome::Registers)),
            Table::Coil => ctx
                .read_coils(start, count)
                .await
                .map(|r| r.map(Outcome::Bits)),
            Table::Discrete => ctx
                .read_discrete_inputs(start, count)
                .await
                .map(|r| r.map(Outcome::Bits)),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Outcome::Timeout,
        Ok(Err(e)) => Outcome::Link(e.to_string()),
        Ok(Ok(Err(code))) => Outcome::Exception(code),
        Ok(Ok(Ok(Outcome::Registers(r)))) if r.len() < usize::from(count) => {
            Outcome::Link(format!(
                "short reply: {} of {count} registers from {} {start}",
                r.len(),
                read.table.as_str()
            ))
        }
        Ok(Ok(Ok(Outcome::Bits(b)))) if b.len() < usize::from(count) => Outcome::Link(format!(
            "short reply: {} of {count} bits from {} {start}",
            b.len(),
            read.table.as_str()
        )),
        Ok(Ok(Ok(o))) => o,
    }
}

/// One point as [`probe`] saw it.
#[derive(Debug, Clone)]
pub struct ProbePoint {
    /// Canonical point name.
    pub point: &'static str,
    /// Unit of the value.
    pub unit: &'static str,
    /// Table read.
    pub table: Table,
    /// Address of the point's first register or bit.
    pub address: u16,
    /// Raw registers of the point (bits as 0/1); empty if the read failed.
    pub raw: Vec<u16>,
    /// Decoded value (also shown when out of range).
    pub value: Option<Value>,
    /// Quality.
    pub quality: Quality,
    /// What went wrong with the read, if anything (exception, timeout, I/O error).
    pub error: Option<String>,
}

/// The result of reading a device once.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Device id.
    pub device: String,
    /// `host:port`.
    pub addr: String,
    /// Unit id.
    pub unit_id: u8,
    /// Profile id.
    pub profile: String,
    /// Requests sent: `(table, start, count)`.
    pub requests: Vec<(Table, u16, u16)>,
    /// Every mapped point, in profile order.
    pub points: Vec<ProbePoint>,
}

impl fmt::Display for ProbeReport {
    /// A table for the terminal: point, table, address, raw registers, value, quality.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "device {} at {} unit {} (profile {})",
            self.device, self.addr, self.unit_id, self.profile
        )?;
        for (t, s, c) in &self.requests {
            writeln!(
                f,
                "  request: read {} {s}..{} ({c}, function {:#04x})",
                t.as_str(),
                u32::from(*s) + u32::from(*c),
                t.read_function()
            )?;
        }
        let w = self
            .points
            .iter()
            .map(|p| p.point.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(
            f,
            "  {:w$}  {:8}  {:>6}  {:16}  {:>14}  quality",
            "point", "table", "addr", "raw", "value"
        )?;
        for p in &self.points {
            let raw: Vec<String> = p.raw.iter().map(|r| format!("{r:#06x}")).collect();
            let value = match &p.value {
                Some(v) if p.unit.is_empty() => v.to_string(),
                Some(v) => format!("{v} {}", p.unit),
                None => "-".to_string(),
            };
            write!(
                f,
                "  {:w$}  {:8}  {:>6}  {:16}  {:>14}  {}",
                p.point,
                p.table.as_str(),
                format!("{:#06x}", p.address),
                raw.join(" "),
                value,
                p.quality.as_str()
            )?;
            if let Some(e) = &p.error {
                write!(f, " ({e})")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Read every point of a device once and report raw and decoded values (the
/// `dc-gateway probe` command). Only a failed connection is an error; a failed read
/// shows in the points' quality and `error`.
pub async fn probe(dev: &TcpDevice) -> Result<ProbeReport, Error> {
    let device = dev.meta.id.to_string();
    let mut ctx =
        match tokio::time::timeout(dev.timeout, TcpStream::connect(dev.addr.as_str())).await {
            Err(_) => {
                return Err(Error::ConnectTimeout {
                    device,
                    addr: dev.addr.clone(),
                    timeout: dev.timeout,
                });
            }
            Ok(Err(source)) => {
                return Err(Error::Connect {
                    device,
                    addr: dev.addr.clone(),
                    source,
                });
            }
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                tokio_modbus::client::tcp::attach_slave(stream, Slave(dev.unit_id))
            }
        };
    let points = &dev.profile.points;
    let mut out: Vec<ProbePoint> = points
        .iter()
        .map(|p| ProbePoint {
            point: p.point.name,
            unit: p.point.unit,
            table: p.table,
            address: p.address,
            raw: Vec::new(),
            value: None,
            quality: Quality::CommError,
            error: None,
        })
        .collect();
    let plan = dev.profile.plan();
    let mut requests = Vec::new();
    let mut broken: Option<(Quality, String)> = None;
    for read in &plan.reads {
        if let Some((q, e)) = &broken {
            for &i in &read.points {
                out[i].quality = *q;
                out[i].error = Some(format!("not read: {e}"));
            }
            continue;
        }
        requests.push((read.table, read.start, read.count));
        metrics::get()
            .requests
            .get_or_create(&metrics::labels(&[("device", &device)]))
            .inc();
        match read_once(&mut ctx, read, dev.timeout).await {
            Outcome::Registers(regs) => {
                for &i in &read.points {
                    let p = &points[i];
                    let off = usize::from(p.address - read.start);
                    let end = (off + usize::from(p.width())).min(regs.len());
                    let raw = regs.get(off..end).unwrap_or(&[]).to_vec();
                    let d = decode::decode_registers(p, &raw);
                    out[i].raw = raw;
                    out[i].value = d.value;
                    out[i].quality = d.quality;
                }
            }
            Outcome::Bits(bits) => {
                for &i in &read.points {
                    let p = &points[i];
                    let off = usize::from(p.address - read.start);
                    if let Some(b) = bits.get(off) {
                        let d = decode::decode_bit(p, *b);
                        out[i].raw = vec![u16::from(*b)];
                        out[i].value = d.value;
                        out[i].quality = d.quality;
                    }
                }
            }
            Outcome::Exception(code) => {
                for &i in &read.points {
                    out[i].quality = Quality::DeviceException;
                    out[i].error = Some(format!("exception {code} ({:#04x})", u8::from(code)));
                }
            }
            Outcome::Timeout => {
                let e = format!("no reply within {} ms", dev.timeout.as_millis());
                for &i in &read.points {
                    out[i].quality = Quality::Timeout;
                    out[i].error = Some(e.clone());
                }
                broken = Some((Quality::Timeout, e));
            }
            Outcome::Link(e) => {
                for &i in &read.points {
                    out[i].quality = Quality::CommError;
                    out[i].error = Some(e.clone());
                }
                broken = Some((Quality::CommError, e));
            }
        }
    }
    Ok(ProbeReport {
        device,
        addr: dev.addr.clone(),
        unit_id: dev.unit_id,
        profile: dev.profile.id.clone(),
        requests,
        points: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceMeta, Kind};
    use crate::sources::modbus::profile;

    fn dev(interval_ms: u64) -> TcpDevice {
        let (_, text) = profile::shipped()[0];
        TcpDevice {
            meta: Arc::new(DeviceMeta {
                id: "t1".into(),
                name: "t1".into(),
                label: None,
                room: "r".into(),
                kind: Kind::Climate,
            }),
            addr: "127.0.0.1:1".into(),
            unit_id: 1,
            poll_interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(100),
            profile: Arc::new(profile::parse(text, "xy-md02.toml").unwrap()),
        }
    }

    #[test]
    fn backoff_doubles_from_one_interval_to_the_cap() {
        let mut p = Poller::new(dev(1000));
        let mut seen = Vec::new();
        for n in 1..=8 {
            p.failures = n;
            seen.push(p.backoff().as_millis());
        }
        assert_eq!(seen, vec![0, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
        let mut slow = Poller::new(dev(60_000));
        slow.failures = 5;
        assert_eq!(slow.backoff(), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn refused_connection_still_emits_a_poll_per_tick() {
        // Port 1 on loopback refuses connections.
        let (tx, mut rx) = mpsc::channel(16);
        let h = spawn(dev(50), tx);
        for _ in 0..4 {
            let poll = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(!poll.comm_ok);
            assert_eq!(poll.samples.len(), 2);
            assert!(
                poll.samples
                    .iter()
                    .all(|s| s.quality == Quality::CommError && s.value.is_none())
            );
        }
        h.abort();
    }

    #[test]
    fn probe_report_prints_a_table() {
        let r = ProbeReport {
            device: "t1".into(),
            addr: "127.0.0.1:502".into(),
            unit_id: 1,
            profile: "xy-md02".into(),
            requests: vec![(Table::Input, 1, 2)],
            points: vec![ProbePoint {
                point: "temperature_c",
                unit: "°C",
                table: Table::Input,
                address: 1,
                raw: vec![0x0131],
                value: Some(Value::Number(30.5)),
                quality: Quality::Good,
                error: None,
            }],
        };
        let s = r.to_string();
        assert!(s.contains("read input 1..3 (2, function 0x04)"), "{s}");
        assert!(
            s.contains("0x0131") && s.contains("30.5 °C") && s.contains("good"),
            "{s}"
        );
    }
}
