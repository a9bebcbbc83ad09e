//! Modbus RTU over RS-485: one task per bus (a serial port shared by devices with their
//! own unit ids), tokio-modbus `rtu` over `tokio-serial`, scheduled by [`super::line`].
//!
//! RTU frames carry no transaction id: the only thing that ties a reply to a request
//! is *when* it arrives. What must stay true, request after request:
//!
//! - **A late reply is never taken as the answer to the next request.** Before every
//!   request, whatever the port received while the bus was idle is read and thrown
//!   away. After a timeout or a garbled reply the client context is dropped (with
//!   its half-read buffer), if part of a reply came the bus task reads and throws away
//!   bytes until the line has been quiet for one inter-frame gap (at most one timeout
//!   long), and the unit becomes *suspect*. A late reply that still comes in the middle of a later
//!   exchange is either another unit's frame (tokio-modbus rejects it: unit id and
//!   function code must match) or, on the suspect unit's next exchange, a second
//!   frame. Both cases are settled the same way: the exchange is listened to until
//!   its timeout, every frame in it is examined, and the **last** valid reply of the
//!   addressed unit (a device answers in order) is the answer; the frames before it
//!   are counted as `stray` or `late`. A suspect unit's exchange that brings exactly
//!   one reply clears the suspicion. What RTU cannot tell apart, and nothing here
//!   claims to: a device that skips a request and sends only the late reply of the
//!   previous, identical one.
//! - **Garbage and bad frames are counted and survived.** Bytes received that were not
//!   part of the accepted reply are counted in `dcgw_line_discarded_bytes{line}`; a
//!   frame addressed as our reply whose CRC does not match, a frame from another unit,
//!   an earlier reply of the same unit, or an undecodable reply in
//!   `dcgw_line_bad_frames{line, reason}` (`crc`, `stray`, `late`, `malformed`). A read
//!   without a valid reply fails with quality `comm_error`; the bus and the next
//!   request carry on.
//! - **Inter-frame timing is honoured**: a request is sent only after the line has been
//!   silent for 3.5 character times at the configured settings (1.75 ms above 19200
//!   baud, as the Modbus serial line specification says), or for `frame_gap`. Bytes
//!   written count as on the line until they have left it at the baud rate. A pty
//!   ignores the baud rate; the gap is kept anyway.
//! - **Timeouts cover the whole exchange**: the inter-frame gap before the request, the
//!   request and the reply, so a silent unit costs the bus exactly its timeout, and at
//!   9600 baud a 125-register read (about 280 ms on the wire) needs a timeout above
//!   that; config validation checks it.
//! - **Unplug → reopen by path.** End of file or an I/O error (EIO) on the port closes
//!   it; the line reopens the same path (`/dev/serial/by-id/...` survives re-enumeration
//!   as ttyUSB1) at most every [`REOPEN_MAX`], without a restart.
//!
//! RS-485 direction control is left to the adapter (auto-direction transceivers, as on
//! most USB adapters) or the kernel's RS-485 mode set up by the board's device tree.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_modbus::Slave;
use tokio_modbus::client::Context;
use tokio_modbus::prelude::SlaveContext;
use tokio_serial::{SerialPortBuilderExt as _, SerialStream};

use super::Error;
use super::line;
use super::plan::Read;
use super::probe::ProbeReport;
use super::station::{self, BusDevice, Link, Outcome};
use super::wire::Wire;
use crate::metrics;
use crate::model::{Poll, Quality};

/// Longest wait between attempts to reopen a serial port that went away.
pub const REOPEN_MAX: Duration = Duration::from_secs(1);

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity (the Modbus default).
    Even,
    /// Odd parity.
    Odd,
}

impl Parity {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Parity::None => "none",
            Parity::Even => "even",
            Parity::Odd => "odd",
        }
    }
}

/// Settings of a serial port.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialSettings {
    /// Device path; prefer `/dev/serial/by-id/...`, which names the adapter, not the
    /// order it was plugged in.
    pub port: String,
    /// Baud rate.
    pub baud: u32,
    /// Parity.
    pub parity: Parity,
    /// Data bits (7 or 8; Modbus RTU uses 8).
    pub data_bits: u8,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
    /// Silence before each request; `None`: 3.5 character times (1.75 ms above 19200
    /// baud).
    pub frame_gap: Option<Duration>,
}

impl SerialSettings {
    /// Bits per character: start, data, parity, stop.
    pub fn char_bits(&self) -> u32 {
        1 + u32::from(self.data_bits)
            + u32::from(self.parity != Parity::None)
            + u32::from(self.stop_bits)
    }

    /// Time one character takes on the wire.
    pub fn char_time(&self) -> Duration {
        Duration::from_nanos(
            u64::from(self.char_bits()) * 1_000_000_000 / u64::from(self.baud.max(1)),
        )
    }

    /// Silence required between frames: `frame_gap`, or 3.5 character times (fixed at
    /// 1.75 ms above 19200 baud, Modbus over serial line v1.02 §2.5.1.1).
    pub fn frame_gap(&self) -> Duration {
        match self.frame_gap {
            Some(g) => g,
            None if self.baud > 19_200 => Duration::from_micros(1750),
            None => self.char_time() * 7 / 2,
        }
    }

    /// Time `bytes` characters take on the wire.
    pub fn wire_time(&self, bytes: usize) -> Duration {
        self.char_time()
            .saturating_mul(u32::try_from(bytes).unwrap_or(u32::MAX))
    }

    /// Wire time of one read exchange: gap, request, reply.
    pub fn exchange_time(&self, read: &Read) -> Duration {
        self.frame_gap() + self.wire_time(REQUEST_LEN + reply_len(read))
    }
}

/// An RS-485 bus and the devices on it.
#[derive(Debug, Clone)]
pub struct RtuBus {
    /// Bus id from the config (`bus1`), used in logs and metrics.
    pub id: Arc<str>,
    /// Port settings.
    pub serial: SerialSettings,
    /// Devices on the bus, in config order (unit ids differ).
    pub devices: Vec<BusDevice>,
}

/// Length of a read request frame: unit, function, address, count, CRC.
pub const REQUEST_LEN: usize = 8;

/// Length of the normal reply frame to `read`: unit, function, byte count, data, CRC.
pub fn reply_len(read: &Read) -> usize {
    5 + data_len(read)
}

fn data_len(read: &Read) -> usize {
    if read.table.is_bits() {
        usize::from(read.count).div_ceil(8)
    } else {
        2 * usize::from(read.count)
    }
}

/// CRC-16/MODBUS of `data` (polynomial 0xA001 reflected, initial 0xFFFF); sent low
/// byte first.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A frame found in the bytes of an exchange: addressed as the reply of the unit to
/// the function asked for (normal or exception).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    start: usize,
    len: usize,
    crc_ok: bool,
}

/// Every frame in `bytes` that is addressed as the reply of `unit` to `function`:
/// normal with `data_len` data bytes, or an exception.
fn frames(bytes: &[u8], unit: u8, function: u8, data_len: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 <= bytes.len() {
        let len = if bytes[i] != unit {
            0
        } else if bytes[i + 1] == function
            && bytes.get(i + 2).copied().map(usize::from) == Some(data_len)
        {
            5 + data_len
        } else if bytes[i + 1] == function | 0x80 {
            5
        } else {
            0
        };
        if len > 0 && i + len <= bytes.len() {
            let f = &bytes[i..i + len];
            let crc_ok = u16::from_le_bytes([f[len - 2], f[len - 1]]) == crc16(&f[..len - 2]);
            out.push(Frame {
                start: i,
                len,
                crc_ok,
            });
            if crc_ok {
                i += len;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The answer a valid reply frame carries for `read`.
fn answer(frame: &[u8], read: &Read) -> Outcome {
    if frame[1] & 0x80 != 0 {
        return Outcome::Exception(tokio_modbus::ExceptionCode::new(frame[2]));
    }
    let data = &frame[3..frame.len() - 2];
    if read.table.is_bits() {
        let bits = (0..usize::from(read.count))
            .map(|i| data[i / 8] >> (i % 8) & 1 == 1)
            .collect();
        Outcome::Bits(bits)
    } else {
        Outcome::Registers(
            data.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect(),
        )
    }
}

/// Start polling every device on a bus. The task runs until the receiver is dropped
/// (or the handle is aborted).
pub fn spawn_rtu(bus: RtuBus, tx: mpsc::Sender<Poll>) -> JoinHandle<()> {
    spawn_rtu_at(bus, Duration::ZERO, tx)
}

/// Start polling every device on a bus, the first tick `offset` from now (see
/// [`crate::sources::stagger`]).
pub fn spawn_rtu_at(bus: RtuBus, offset: Duration, tx: mpsc::Sender<Poll>) -> JoinHandle<()> {
    let link = RtuLink::new(&bus);
    tokio::spawn(line::run(link, bus.devices, REOPEN_MAX, offset, tx))
}

/// Read every point of `device` (on `bus`) once and report raw and decoded values
/// (the `dc-gateway probe` command). Only a port that cannot be opened is an error (a
/// running gateway holds its ports exclusively: stop it first); a failed read shows in
/// the points' quality and `error`.
pub async fn probe_rtu(bus: &RtuBus, device: &BusDevice) -> Result<ProbeReport, Error> {
    let mut link = RtuLink::new(bus);
    if let Err((_, detail)) = link.open(device.timeout).await {
        return Err(Error::Open {
            device: device.meta.id.to_string(),
            bus: bus.id.to_string(),
            detail,
        });
    }
    Ok(station::probe_device(&mut link, device).await)
}

/// One serial port (see the module docs).
pub(crate) struct RtuLink {
    name: String,
    serial: SerialSettings,
    gap: Duration,
    wire: Option<Wire<SerialStream>>,
    ctx: Option<Context>,
    /// Units whose last exchange failed: a late reply of theirs may still come.
    suspect: HashSet<u8>,
    labels: metrics::Labels,
}

impl RtuLink {
    pub(crate) fn new(bus: &RtuBus) -> RtuLink {
        RtuLink {
            name: format!("{} ({})", bus.id, bus.serial.port),
            serial: bus.serial.clone(),
            gap: bus.serial.frame_gap(),
            wire: None,
            ctx: None,
            suspect: HashSet::new(),
            labels: metrics::labels(&[("line", &bus.id)]),
        }
    }

    fn discarded(&self, bytes: usize) {
        if bytes > 0 {
            metrics::get()
                .line_discarded_bytes
                .get_or_create(&self.labels)
                .inc_by(bytes as u64);
            tracing::debug!(line = %self.name, bytes, "discarded bytes that answer no request");
        }
    }

    fn bad_frames(&self, reason: &'static str, n: u64) {
        if n > 0 {
            let mut l = self.labels.clone();
            l.push(("reason", reason.to_string()));
            metrics::get().line_bad_frames.get_or_create(&l).inc_by(n);
        }
    }

    fn port_error(&self, e: &std::io::Error) -> Outcome {
        Outcome::Link(format!("{}: {e}", self.serial.port))
    }

    /// One request and its reply, with the bookkeeping of the module docs.
    async fn exchange(&mut self, unit: u8, read: &Read, timeout: Duration) -> Outcome {
        let Some(wire) = self.wire.clone() else {
            return Outcome::Link(format!("{}: port not open", self.serial.port));
        };
        // The timeout covers the whole exchange, inter-frame gap included: a silent
        // unit costs the bus exactly its timeout.
        let deadline = Instant::now() + timeout;
        match wire.discard_pending() {
            Ok(n) => self.discarded(n),
            Err(e) => return self.port_error(&e),
        }
        if let Some(quiet) = wire.quiet_since() {
            tokio::time::sleep_until(quiet + self.gap).await;
        }
        wire.begin_exchange();
        let ctx = self.ctx.get_or_insert_with(|| {
            tokio_modbus::client::rtu::attach_slave(wire.clone(), Slave(unit))
        });
        ctx.set_slave(Slave(unit));
        let left = deadline.saturating_duration_since(Instant::now());
        let mut outcome = station::call(ctx, read, left).await;
        if let Outcome::Link(e) = &outcome {
            return Outcome::Link(format!("{}: {e}", self.serial.port));
        }
        let stray = matches!(outcome, Outcome::Garbled("stray", _));
        let suspect = self.suspect.contains(&unit);
        if stray || suspect {
            // Another frame got in the way, or this unit answered late before: listen
            // to the whole exchange and take its last valid reply.
            if let Err(e) = wire.listen_until(deadline).await {
                return self.port_error(&e);
            }
        }
        let captured = wire.captured();
        let function = read.table.read_function();
        let found = frames(&captured, unit, function, data_len(read));
        let bad_crc = found.iter().filter(|f| !f.crc_ok).count() as u64;
        let valid: Vec<&Frame> = found.iter().filter(|f| f.crc_ok).collect();
        if stray {
            self.bad_frames("stray", 1);
        }
        if stray || suspect {
            self.bad_frames("late", valid.len().saturating_sub(1) as u64);
            if let Some(last) = valid.last() {
                outcome = answer(&captured[last.start..last.start + last.len], read);
            }
        }
        self.bad_frames("crc", bad_crc);
        match outcome {
            Outcome::Registers(_) | Outcome::Bits(_) | Outcome::Exception(_) => {
                if stray || valid.len() > 1 {
                    // The context decoded a frame that was not the answer: start afresh.
                    self.ctx = None;
                }
                let used = valid.last().map_or(0, |f| f.len);
                self.discarded(captured.len().saturating_sub(used));
                if valid.len() <= 1 {
                    self.suspect.remove(&unit);
                }
                outcome
            }
            Outcome::Timeout | Outcome::Garbled(..) | Outcome::Link(_) => {
                self.ctx = None;
                self.suspect.insert(unit);
                // The rest of a frame that began may still be coming: let it pass.
                // Nothing at all came: there is nothing to wait for.
                let drained = if captured.is_empty() {
                    0
                } else {
                    match wire.drain_until_quiet(self.gap, timeout).await {
                        Ok(n) => n,
                        Err(e) => return self.port_error(&e),
                    }
                };
                self.discarded(captured.len() + drained);
                if let Outcome::Garbled(reason, _) = &outcome
                    && *reason != "stray"
                {
                    self.bad_frames(reason, 1);
                }
                if bad_crc > 0 {
                    return Outcome::Garbled(
                        "crc",
                        format!("reply with a bad CRC from unit {unit}"),
                    );
                }
                outcome
            }
        }
    }
}

impl Link for RtuLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_open(&self) -> bool {
        self.wire.is_some()
    }

    async fn open(&mut self, _timeout: Duration) -> Result<(), (Quality, String)> {
        let s = &self.serial;
        let builder = tokio_serial::new(&s.port, s.baud)
            .parity(match s.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            })
            .data_bits(if s.data_bits == 7 {
                tokio_serial::DataBits::Seven
            } else {
                tokio_serial::DataBits::Eight
            })
            .stop_bits(if s.stop_bits == 2 {
                tokio_serial::StopBits::Two
            } else {
                tokio_serial::StopBits::One
            })
            .flow_control(tokio_serial::FlowControl::None);
        match builder.open_native_async() {
            Ok(stream) => {
                let wire = Wire::new(stream, s.char_time());
                // Bytes from before we opened the port answer nothing we asked.
                match wire.discard_pending() {
                    Ok(n) => self.discarded(n),
                    Err(e) => return Err((Quality::CommError, format!("{}: {e}", s.port))),
                }
                self.wire = Some(wire);
                self.ctx = None;
                Ok(())
            }
            Err(e) => Err((Quality::CommError, format!("cannot open {}: {e}", s.port))),
        }
    }

    fn close(&mut self) {
        self.ctx = None;
        self.wire = None;
    }

    async fn read(&mut self, unit: u8, read: &Read, timeout: Duration) -> Outcome {
        self.exchange(unit, read, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::modbus::profile::Table;

    fn settings(baud: u32, parity: Parity, stop_bits: u8) -> SerialSettings {
        SerialSettings {
            port: "/dev/null".into(),
            baud,
            parity,
            data_bits: 8,
            stop_bits,
            frame_gap: None,
        }
    }

    #[test]
    fn crc_matches_the_modbus_specification_example() {
        // Modbus over serial line v1.02, §6.2.2 / appendix B: "01 03 00 00 00 01" has
        // CRC 0x0A84, sent 84 0A.
        assert_eq!(crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x01]), 0x0A84);
        assert_eq!(
            crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x01]).to_le_bytes(),
            [0x84, 0x0A]
        );
    }

    #[test]
    fn character_and_gap_times_follow_the_settings() {
        // 19200 8E1: 11 bits per character = 572.9 µs; 3.5 characters = 2.005 ms.
        let s = settings(19_200, Parity::Even, 1);
        assert_eq!(s.char_bits(), 11);
        assert_eq!(s.char_time().as_nanos(), 572_916);
        assert_eq!(s.frame_gap().as_micros(), 2005);
        // 9600 8N1: 10 bits; 3.5 characters = 3.646 ms.
        let s = settings(9600, Parity::None, 1);
        assert_eq!(s.frame_gap().as_micros(), 3645);
        // Above 19200 baud the gap is fixed at 1.75 ms.
        assert_eq!(
            settings(115_200, Parity::Even, 1).frame_gap(),
            Duration::from_micros(1750)
        );
        let mut s = settings(9600, Parity::Odd, 2);
        s.frame_gap = Some(Duration::from_millis(10));
        assert_eq!(s.frame_gap(), Duration::from_millis(10));
    }

    #[test]
    fn exchange_time_counts_request_reply_and_gap() {
        let read = Read {
            table: Table::Holding,
            start: 0,
            count: 125,
            points: vec![],
        };
        assert_eq!(reply_len(&read), 255);
        // 9600 8N1: (8 + 255) × 1.0417 ms + 3.65 ms gap = 277.6 ms.
        let t = settings(9600, Parity::None, 1).exchange_time(&read);
        assert_eq!(t.as_millis(), 277, "{t:?}");
        let bits = Read {
            table: Table::Discrete,
            start: 0,
            count: 9,
            points: vec![],
        };
        assert_eq!(reply_len(&bits), 7);
    }

    fn frame(bytes: &[u8]) -> Vec<u8> {
        let mut f = bytes.to_vec();
        f.extend_from_slice(&crc16(bytes).to_le_bytes());
        f
    }

    #[test]
    fn frames_are_found_among_noise() {
        let good = frame(&[0x03, 0x04, 0x02, 0x01, 0x31]);
        let mut bad = good.clone();
        bad[6] ^= 0xFF;
        let crc_ok = |b: &[u8], unit| {
            frames(b, unit, 4, 2)
                .iter()
                .map(|f| f.crc_ok)
                .collect::<Vec<_>>()
        };
        assert_eq!(crc_ok(&good, 3), vec![true]);
        assert_eq!(crc_ok(&bad, 3), vec![false]);
        let mut noisy = vec![0x00, 0x03, 0xFF];
        noisy.extend_from_slice(&bad);
        noisy.extend_from_slice(&good);
        let found = frames(&noisy, 3, 4, 2);
        assert_eq!(found.iter().filter(|f| !f.crc_ok).count(), 1);
        assert_eq!(
            found
                .iter()
                .filter(|f| f.crc_ok)
                .map(|f| f.start)
                .collect::<Vec<_>>(),
            vec![10]
        );
        // An exception reply with a bad CRC.
        assert_eq!(crc_ok(&[0x03, 0x84, 0x02, 0x00, 0x00], 3), vec![false]);
        // Another unit's frame is not ours to judge.
        assert!(frames(&bad, 5, 4, 2).is_empty());
    }

    #[test]
    fn the_answer_is_decoded_from_the_frame() {
        let regs = Read {
            table: Table::Input,
            start: 1,
            count: 2,
            points: vec![],
        };
        let f = frame(&[0x01, 0x04, 0x04, 0xFF, 0x33, 0x02, 0x22]);
        assert!(matches!(answer(&f, &regs), Outcome::Registers(r) if r == vec![0xFF33, 0x0222]));
        let bits = Read {
            table: Table::Discrete,
            start: 33,
            count: 6,
            points: vec![],
        };
        let f = frame(&[0x04, 0x02, 0x01, 0b0010_0010]);
        assert!(
            matches!(answer(&f, &bits), Outcome::Bits(b) if b == vec![false, true, false, false, false, true])
        );
        let f = frame(&[0x04, 0x82, 0x02]);
        assert!(matches!(
            answer(&f, &bits),
            Outcome::Exception(tokio_modbus::ExceptionCode::IllegalDataAddress)
        ));
    }
}
