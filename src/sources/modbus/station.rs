//! One device on a Modbus line: its reads, its backoff, and the [`Poll`] it produces
//! per tick, whatever the line (RS-485 bus or TCP connection) underneath.
//!
//! What must stay true:
//!
//! - **Exactly one `Poll` per tick, whatever happens.** A dead device produces polls
//!   with a bad quality on every tick, so staleness and loss of communication are
//!   visible downstream instead of a silent gap.
//! - **A device that does not answer is backed off, never the others.** After `n`
//!   consecutive ticks in which the device did not answer at all (timeouts, garbled
//!   replies), it skips `min(2^(n-2), cap)` ticks, where `cap` is the number of ticks in
//!   [`MAX_BACKOFF`] (at least 1): tried on the next tick, then every 2nd, 4th, 8th ...
//!   tick. Skipped ticks emit polls with the last failure's quality without touching
//!   the line, so a dead slave costs the bus its timeout only now and then.
//! - **A Modbus exception is the device talking**: that read's points get
//!   [`Quality::DeviceException`], the device is not backed off. An exception 02
//!   (illegal data address) on a read that spans unmapped registers splits that read
//!   into gap-free reads from the next tick on (see [`super::plan`]).
//! - **After a timeout or a garbled reply the device's remaining reads of that tick are
//!   not sent** (the device is not answering properly; the bus has better uses for the
//!   time); their points get the same quality. A link failure (I/O error, port gone,
//!   connection refused) is reported to the line, which closes and reopens the link.
//! - `comm_ok` is true when at least one read of the tick returned data.
//!
//! Qualities: timeout → [`Quality::Timeout`]; garbled reply, I/O, refused →
//! [`Quality::CommError`]; exception → [`Quality::DeviceException`]. Failures are logged
//! once per change of state (with device id, line and unit), not on every tick, and
//! counted in `dcgw_polls{device, result}` (`ok`, `timeout`, `comm_error`,
//! `device_exception`: the first failure of the tick) and `dcgw_requests{device}`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_modbus::ExceptionCode;
use tokio_modbus::client::{Context, Reader};

use super::decode::{self, Decoded};
use super::plan::{self, Read};
use super::probe::{ProbePoint, ProbeReport};
use super::profile::{PointMap, Profile, Table};
use crate::metrics;
use crate::model::{Device, Poll, Quality, Sample};
use crate::sources::health::Health;

/// Longest backoff of a device that does not answer, and of reconnecting a TCP line
/// (or one poll interval, if longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A device on a line (RS-485 bus or TCP connection): what to read and how often.
#[derive(Debug, Clone)]
pub struct BusDevice {
    /// Identity carried by every poll.
    pub meta: Device,
    /// Unit id (slave address) on the line.
    pub unit_id: u8,
    /// Period between polls.
    pub poll_interval: Duration,
    /// Limit for each request: until the last byte of the reply (on an RS-485 bus from
    /// the inter-frame gap before the request on).
    pub timeout: Duration,
    /// Register map.
    pub profile: Arc<Profile>,
}

/// What one read returned.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Registers, exactly as many as asked for.
    Registers(Vec<u16>),
    /// Bits, at least as many as asked for.
    Bits(Vec<bool>),
    /// The device answered with an exception.
    Exception(ExceptionCode),
    /// No (complete) reply within the timeout.
    Timeout,
    /// A reply came but was not a valid answer: the reason (`crc`, `stray`: another
    /// unit's or request's frame, `malformed`) and what happened.
    Garbled(&'static str, String),
    /// The link failed (I/O error, port gone, connection reset).
    Link(String),
}

/// A Modbus line the devices are read over: a serial port or a TCP connection.
pub(crate) trait Link {
    /// Where the line goes (`127.0.0.1:502`, `bus1 (/dev/serial/by-id/...)`), for logs.
    fn name(&self) -> &str;
    /// Whether the link is open (connected, port open).
    fn is_open(&self) -> bool;
    /// Open the link (connect, open the port); errors carry the quality they mean.
    fn open(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), (Quality, String)>> + Send;
    /// Close the link.
    fn close(&mut self);
    /// One read of `unit`, under `timeout`.
    fn read(
        &mut self,
        unit: u8,
        read: &Read,
        timeout: Duration,
    ) -> impl Future<Output = Outcome> + Send;
}

/// One tick's result.
pub(crate) struct Tick {
    /// The poll to send on.
    pub poll: Poll,
    /// The link failed during the tick: the line must close and reopen it.
    pub link_failure: Option<(Quality, String)>,
}

/// A device on a line and its per-device state.
pub(crate) struct Station {
    pub dev: BusDevice,
    line: Arc<str>,
    reads: Vec<Read>,
    /// Consecutive ticks in which the device did not answer at all.
    failures: u32,
    /// Ticks still to skip (backoff).
    skip: u32,
    /// The failure reported while skipping.
    last_failure: (Quality, String),
    health: Health,
    labels: metrics::Labels,
    /// Fast polling while a generator starts (`super::fastpoll`).
    fast: super::fastpoll::FastPoll,
}

fn result_label(q: Quality) -> &'static str {
    match q {
        Quality::Timeout => "timeout",
        Quality::DeviceException => "device_exception",
        _ => "comm_error",
    }
}

/// Ticks a device skips after `failures` consecutive ticks without an answer.
pub(crate) fn skip_ticks(failures: u32, interval: Duration) -> u32 {
    if failures <= 1 {
        return 0;
    }
    let cap =
        (MAX_BACKOFF.as_nanos() / interval.as_nanos().max(1)).clamp(1, u128::from(u32::MAX)) as u32;
    (1u32 << (failures - 2).min(16)).min(cap)
}

/// The raw data of a point, as a read returned it.
pub(crate) enum Raw<'a> {
    /// Registers starting at the point's address (as many as the read still has).
    Registers(&'a [u16]),
    /// Bits starting at the point's address.
    Bits(&'a [bool]),
}

/// Decode every point a successful read carries: `f(point index, raw, decoded)`.
pub(crate) fn decode_read(
    points: &[PointMap],
    read: &Read,
    outcome: &Outcome,
    mut f: impl FnMut(usize, Raw<'_>, Decoded),
) {
    for &i in &read.points {
        let p = &points[i];
        let off = usize::from(p.address - read.start);
        match outcome {
            Outcome::Registers(regs) => {
                let end = (off + usize::from(p.width())).min(regs.len());
                let raw = regs.get(off..end).unwrap_or(&[]);
                f(i, Raw::Registers(raw), decode::decode_registers(p, raw));
            }
            Outcome::Bits(bits) => {
                let end = (off + usize::from(p.width())).min(bits.len());
                let raw = bits.get(off..end).unwrap_or(&[]);
                f(i, Raw::Bits(raw), decode::decode_bits(p, raw));
            }
            _ => {}
        }
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

fn describe_exception(code: ExceptionCode, read: &Read) -> String {
    format!(
        "exception {code} ({:#04x}) reading {} {}..{}",
        u8::from(code),
        read.table.as_str(),
        read.start,
        u32::from(read.start) + u32::from(read.count)
    )
}

impl Station {
    /// A device on the line named `line`.
    pub(crate) fn new(dev: BusDevice, line: Arc<str>) -> Station {
        let reads = dev.profile.plan().reads;
        let labels = metrics::labels(&[("device", &dev.meta.id)]);
        let health = Health::new(
            dev.meta.clone(),
            "modbus device",
            format!("{line} unit {}", dev.unit_id),
        );
        let fast = super::fastpoll::FastPoll::new(
            dev.meta.kind,
            dev.profile
                .points
                .iter()
                .any(|p| p.point.name == "engine_running"),
        );
        Station {
            fast,
            dev,
            line,
            reads,
            failures: 0,
            skip: 0,
            last_failure: (Quality::CommError, String::new()),
            health,
            labels,
        }
    }

    /// The interval to this device's next tick after `poll`: its own, or 250 ms
    /// while a generator starts (`super::fastpoll`).
    pub(crate) fn interval_after(&mut self, poll: &Poll) -> Duration {
        self.fast
            .after(poll, tokio::time::Instant::now(), self.dev.poll_interval)
    }

    /// Whether the device did not answer on its last tick.
    pub(crate) fn failing(&self) -> bool {
        self.failures > 0
    }

    /// A tick while the line is down: every point gets the link's quality; no traffic.
    pub(crate) fn offline(&mut self, quality: Quality, detail: &str) -> Poll {
        let samples = self.samples(quality);
        self.finish(samples, Some((quality, detail.to_string())), false)
    }

    fn samples(&self, quality: Quality) -> Vec<Sample> {
        self.dev
            .profile
            .points
            .iter()
            .map(|p| Sample {
                point: p.point,
                value: None,
                quality,
            })
            .collect()
    }

    /// One tick: every read of the device over `link` (or none while backing off).
    /// Never fails, never panics.
    pub(crate) async fn tick<L: Link>(&mut self, link: &mut L) -> Tick {
        if self.skip > 0 {
            self.skip -= 1;
            let (q, detail) = self.last_failure.clone();
            let samples = self.samples(q);
            return Tick {
                poll: self.finish(samples, Some((q, detail)), false),
                link_failure: None,
            };
        }
        let profile = Arc::clone(&self.dev.profile);
        let points = &profile.points;
        let mut samples = self.samples(Quality::CommError);
        let mut first_failure: Option<(Quality, String)> = None;
        let (mut any_data, mut answered) = (false, false);
        let mut split: Vec<usize> = Vec::new();
        let mut broken: Option<Quality> = None;
        let mut link_failure = None;

        let reads = std::mem::take(&mut self.reads);
        for (ri, read) in reads.iter().enumerate() {
            if let Some(q) = broken {
                for &i in &read.points {
                    samples[i].quality = q;
                }
                continue;
            }
            metrics::get().requests.get_or_create(&self.labels).inc();
            let outcome = link.read(self.dev.unit_id, read, self.dev.timeout).await;
            let failure = match &outcome {
                Outcome::Registers(_) | Outcome::Bits(_) => {
                    any_data = true;
                    answered = true;
                    decode_read(points, read, &outcome, |i, _, d| {
                        samples[i] = sample(points[i].point, d)
                    });
                    None
                }
                Outcome::Exception(code) => {
                    answered = true;
                    if *code == ExceptionCode::IllegalDataAddress && read.has_gaps(points) {
                        split.push(ri);
                    }
                    Some((Quality::DeviceException, describe_exception(*code, read)))
                }
                Outcome::Timeout => {
                    let detail = format!("no reply within {} ms", self.dev.timeout.as_millis());
                    Some((Quality::Timeout, detail))
                }
                Outcome::Garbled(_, d) => Some((Quality::CommError, d.clone())),
                Outcome::Link(d) => {
                    link_failure = Some((Quality::CommError, d.clone()));
                    Some((Quality::CommError, d.clone()))
                }
            };
            if let Some((q, detail)) = failure {
                for &i in &read.points {
                    samples[i].quality = q;
                }
                if q != Quality::DeviceException {
                    broken = Some(q);
                }
                first_failure.get_or_insert((q, detail));
            }
        }
        self.reads = reads;

        if link_failure.is_none() {
            if answered {
                self.failures = 0;
            } else if let Some(f) = &first_failure {
                self.failures = self.failures.saturating_add(1);
                self.skip = skip_ticks(self.failures, self.dev.poll_interval);
                self.last_failure = f.clone();
            }
        }

        for ri in split.into_iter().rev() {
            let parts = plan::split_gapless(&self.reads[ri], points);
            let r = &self.reads[ri];
            tracing::info!(device = %self.dev.meta.id, line = %self.line, unit = self.dev.unit_id, table = r.table.as_str(), start = r.start, count = r.count, parts = parts.len(), "device refuses reads across unmapped registers: reading them separately");
            self.reads.splice(ri..=ri, parts);
        }

        Tick {
            poll: self.finish(samples, first_failure, any_data),
            link_failure,
        }
    }

    fn finish(
        &mut self,
        samples: Vec<Sample>,
        first_failure: Option<(Quality, String)>,
        any_data: bool,
    ) -> Poll {
        let failure = first_failure.map(|(q, detail)| (result_label(q), detail));
        self.health.finish(samples, any_data, failure)
    }
}

/// Read every point of `dev` once over an open `link` and report raw and decoded
/// values. A failed read shows in the points' quality and `error`.
pub(crate) async fn probe_device<L: Link>(link: &mut L, dev: &BusDevice) -> ProbeReport {
    let device = dev.meta.id.to_string();
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
    let labels = metrics::labels(&[("device", &device)]);
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
        metrics::get().requests.get_or_create(&labels).inc();
        let outcome = link.read(dev.unit_id, read, dev.timeout).await;
        let failure = match &outcome {
            Outcome::Registers(_) | Outcome::Bits(_) => {
                decode_read(points, read, &outcome, |i, raw, d| {
                    out[i].raw = match raw {
                        Raw::Registers(r) => r.to_vec(),
                        Raw::Bits(b) => b.iter().map(|b| u16::from(*b)).collect(),
                    };
                    out[i].value = d.value;
                    out[i].quality = d.quality;
                    out[i].error = d.note;
                });
                None
            }
            Outcome::Exception(code) => Some((
                Quality::DeviceException,
                format!("exception {code} ({:#04x})", u8::from(*code)),
            )),
            Outcome::Timeout => Some((
                Quality::Timeout,
                format!("no reply within {} ms", dev.timeout.as_millis()),
            )),
            Outcome::Garbled(_, e) | Outcome::Link(e) => Some((Quality::CommError, e.clone())),
        };
        if let Some((q, e)) = failure {
            for &i in &read.points {
                out[i].quality = q;
                out[i].error = Some(e.clone());
            }
            if q != Quality::DeviceException {
                broken = Some((q, e));
            }
        }
    }
    ProbeReport {
        device,
        line: link.name().to_string(),
        unit_id: dev.unit_id,
        profile: dev.profile.id.clone(),
        requests,
        points: out,
    }
}

/// One read through a tokio-modbus context, under `timeout`, sorted into an outcome:
/// transport errors are link failures, protocol errors garbled replies.
pub(crate) async fn call(ctx: &mut Context, read: &Read, timeout: Duration) -> Outcome {
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
        Ok(Err(tokio_modbus::Error::Protocol(e))) => {
            Outcome::Garbled("stray", format!("reply does not match the request: {e}"))
        }
        Ok(Err(tokio_modbus::Error::Transport(e)))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            Outcome::Garbled("malformed", format!("undecodable reply: {e}"))
        }
        Ok(Err(e)) => Outcome::Link(e.to_string()),
        Ok(Ok(Err(code))) => Outcome::Exception(code),
        Ok(Ok(Ok(Outcome::Registers(r)))) if r.len() != usize::from(count) => Outcome::Garbled(
            "malformed",
            format!(
                "wrong reply length: {} of {count} registers from {} {start}",
                r.len(),
                read.table.as_str()
            ),
        ),
        Ok(Ok(Ok(Outcome::Bits(b)))) if b.len() < usize::from(count) => Outcome::Garbled(
            "malformed",
            format!(
                "short reply: {} of {count} bits from {} {start}",
                b.len(),
                read.table.as_str()
            ),
        ),
        Ok(Ok(Ok(o))) => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_tick_to_the_cap() {
        let second = Duration::from_secs(1);
        let seen: Vec<u32> = (1..=8).map(|n| skip_ticks(n, second)).collect();
        assert_eq!(seen, vec![0, 1, 2, 4, 8, 10, 10, 10]);
        // A slow device still skips at least one tick after repeated failures.
        assert_eq!(skip_ticks(5, Duration::from_secs(60)), 1);
        assert_eq!(skip_ticks(40, Duration::from_millis(100)), 100);
    }
}
