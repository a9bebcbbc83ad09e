//! The node: its state, its register map and the Modbus RTU server that serves it.
//!
//! [`Node::handle`] takes one complete RTU frame (from [`crate::rtu::Receiver`]) and
//! writes the reply, if any, into a buffer. Rules (Modbus over Serial Line V1.02
//! §2.1–2.4, Modbus Application Protocol V1.1b3 §6 and §7):
//!
//! - A frame shorter than 4 bytes or with a wrong CRC is ignored and counted; so is a
//!   frame for another unit id. Nothing is ever answered to them.
//! - Unit id 0 is a broadcast: writes (06, 16) are carried out, never answered; reads
//!   and unknown functions are not carried out.
//! - Functions 03 (holding), 04 (input), 06 (one holding), 16 (several holding).
//!   Exceptions: 01 illegal function (an unsupported function, or a settings write
//!   while the guard is locked — "the server is in the wrong state to process a
//!   request of this type", Application Protocol §7), 02 illegal data address (any
//!   register of the request outside the map), 03 illegal data value (a quantity out
//!   of 1..=125 / 1..=123, a length that does not match the function, a value out of
//!   range), 04 server device failure (the settings could not be stored).
//! - A request is all or nothing: a write with one bad value changes nothing.
//!
//! Settings registers are writable only while the guard is unlocked: write
//! [`map::UNLOCK_KEY`] to [`map::HR_GUARD`]; the unlock lasts [`map::UNLOCK_MS`] or
//! until one settings write has been stored, whichever comes first. A write-multiple
//! that starts at the guard with the key unlocks for the rest of that same request.
//! New settings are stored through the [`SettingsStore`] before they are used; the
//! reply to a write that changes the unit id or baud rate still comes from the old
//! id at the old speed, and the board applies the new line settings after sending
//! it ([`Node::line_changed`]).
//!
//! The register map (also in `firmware/README.md`, which is its documentation of
//! record) is in [`map`].

use crate::settings::{self, Parity, Settings, SettingsStore};
use crate::sht::{Measurement, Model};

/// The register map: 0-based protocol addresses as sent on the wire.
pub mod map {
    /// Input 0 (30001): status bits, see `STATUS_*`.
    pub const IR_STATUS: u16 = 0;
    /// Input 1 (30002): temperature, signed, 0.1 °C; [`TEMPERATURE_FAULT`] without a
    /// valid reading. Same address and scale as the XY-MD02 transmitter.
    pub const IR_TEMPERATURE: u16 = 1;
    /// Input 2 (30003): relative humidity, unsigned, 0.1 %RH; [`HUMIDITY_FAULT`]
    /// without a valid reading.
    pub const IR_HUMIDITY: u16 = 2;
    /// Input 3 (30004): leak rope, 0 dry, 1 water (debounced).
    pub const IR_LEAK: u16 = 3;
    /// Input 4 (30005): door, 0 closed, 1 open (debounced).
    pub const IR_DOOR: u16 = 4;
    /// Input 5 (30006): door openings since power-up (wraps at 65535).
    pub const IR_DOOR_OPENINGS: u16 = 5;
    /// Input 6 (30007): sensor fitted: 0 none found, 3 SHT3x, 4 SHT4x.
    pub const IR_SENSOR_MODEL: u16 = 6;
    /// Input 7 (30008): failed sensor reads since power-up (no answer, CRC error).
    pub const IR_SENSOR_ERRORS: u16 = 7;
    /// Inputs 8–9 (30009–30010): seconds since power-up, unsigned 32-bit, high word
    /// first.
    pub const IR_UPTIME: u16 = 8;
    /// Input 10 (30011): firmware version, major × 256 + minor.
    pub const IR_FIRMWARE: u16 = 10;
    /// Input 11 (30012): 1 when the settings are the defaults because none were stored
    /// (or the stored record was damaged).
    pub const IR_SETTINGS_DEFAULT: u16 = 11;
    /// Input 16 (30017): frames with a good CRC seen on the bus (any unit).
    pub const IR_BUS_MESSAGES: u16 = 16;
    /// Input 17 (30018): frames with a bad CRC.
    pub const IR_CRC_ERRORS: u16 = 17;
    /// Input 18 (30019): exception replies sent.
    pub const IR_EXCEPTIONS: u16 = 18;
    /// Input 19 (30020): requests addressed to this node (its id or broadcast).
    pub const IR_SERVER_MESSAGES: u16 = 19;
    /// Input 20 (30021): requests to this node not answered (broadcasts).
    pub const IR_NO_RESPONSE: u16 = 20;
    /// Input 21 (30022): frames too short or too long to be a request.
    pub const IR_MALFORMED: u16 = 21;
    /// Input registers 0..INPUT_COUNT exist (12–15 are reserved and read 0).
    pub const INPUT_COUNT: u16 = 22;

    /// Holding 256 (40257): the settings guard. Write [`UNLOCK_KEY`] to unlock, 0 to
    /// lock; reads 1 while unlocked.
    pub const HR_GUARD: u16 = 256;
    /// Holding 257 (40258): unit id, 1..=247.
    pub const HR_UNIT_ID: u16 = 257;
    /// Holding 258 (40259): baud rate ÷ 100 (48, 96, 192, 384, 576, 1152).
    pub const HR_BAUD: u16 = 258;
    /// Holding 259 (40260): character format: 0 8N1, 1 8E1, 2 8O1, 3 8N2.
    pub const HR_PARITY: u16 = 259;
    /// Holding 260 (40261): temperature offset, signed, 0.1 °C, −100..=100.
    pub const HR_TEMPERATURE_OFFSET: u16 = 260;
    /// Holding 261 (40262): humidity offset, signed, 0.1 %RH, −100..=100.
    pub const HR_HUMIDITY_OFFSET: u16 = 261;
    /// First holding register.
    pub const HOLDING_START: u16 = 256;
    /// Holding registers HOLDING_START..HOLDING_START+HOLDING_COUNT exist.
    pub const HOLDING_COUNT: u16 = 6;

    /// The value that unlocks the settings.
    pub const UNLOCK_KEY: u16 = 0x5AA5;
    /// How long an unlock lasts, ms.
    pub const UNLOCK_MS: u64 = 30_000;

    /// Temperature register without a valid reading (never a real value: 3276.7 °C).
    pub const TEMPERATURE_FAULT: u16 = 0x7FFF;
    /// Humidity register without a valid reading.
    pub const HUMIDITY_FAULT: u16 = 0xFFFF;

    /// Status bit 0: no valid sensor reading.
    pub const STATUS_SENSOR_FAULT: u16 = 1 << 0;
    /// Status bit 1: leak.
    pub const STATUS_LEAK: u16 = 1 << 1;
    /// Status bit 2: door open.
    pub const STATUS_DOOR_OPEN: u16 = 1 << 2;
    /// Status bit 3: settings unlocked.
    pub const STATUS_UNLOCKED: u16 = 1 << 3;
    /// Status bit 4: running on default settings.
    pub const STATUS_SETTINGS_DEFAULT: u16 = 1 << 4;
}

/// The firmware version served in [`map::IR_FIRMWARE`] (0.1).
pub const FIRMWARE_VERSION: u16 = 0x0001;

/// Modbus exception codes the node sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exception {
    /// 01: function not supported, or not allowed in the current state (locked).
    IllegalFunction = 1,
    /// 02: an address outside the map.
    IllegalDataAddress = 2,
    /// 03: a bad quantity, length or value.
    IllegalDataValue = 3,
    /// 04: the settings could not be stored.
    ServerDeviceFailure = 4,
}

/// What [`Node::handle`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Send the first `n` bytes of the output buffer.
    Reply(usize),
    /// Nothing to send: why.
    Silent(Silence),
}

/// Why a frame got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// Fewer than 4 bytes: not a frame.
    Malformed,
    /// The CRC did not match.
    BadCrc,
    /// For another unit id.
    OtherUnit,
    /// A broadcast (unit 0): carried out if it is a write, never answered.
    Broadcast,
}

/// Bus counters, served in the input registers from [`map::IR_BUS_MESSAGES`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames with a good CRC (any unit).
    pub bus_messages: u16,
    /// Frames with a bad CRC.
    pub crc_errors: u16,
    /// Exception replies sent.
    pub exceptions: u16,
    /// Requests for this node (own id or broadcast).
    pub server_messages: u16,
    /// Requests for this node not answered.
    pub no_response: u16,
    /// Frames too short (or, counted by the board, too long).
    pub malformed: u16,
}

/// The temperature / humidity state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Climate {
    /// No reading yet, or the last read failed.
    Fault,
    /// The last good reading (before offsets).
    Good(Measurement),
}

/// The sensor node.
pub struct Node<S: SettingsStore> {
    store: S,
    settings: Settings,
    settings_default: bool,
    climate: Climate,
    sensor_model: u16,
    sensor_errors: u16,
    leak: bool,
    door: bool,
    door_openings: u16,
    uptime_s: u32,
    unlocked_until_ms: Option<u64>,
    line_changed: bool,
    /// Bus counters.
    pub counters: Counters,
}

impl<S: SettingsStore> Node<S> {
    /// A node with the settings in `store`, or `defaults` when it holds none.
    pub fn new(mut store: S, defaults: Settings) -> Self {
        let (settings, settings_default) = settings::load_or_default(&mut store, defaults);
        Node {
            store,
            settings,
            settings_default,
            climate: Climate::Fault,
            sensor_model: 0,
            sensor_errors: 0,
            leak: false,
            door: false,
            door_openings: 0,
            uptime_s: 0,
            unlocked_until_ms: None,
            line_changed: false,
            counters: Counters::default(),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store (to inspect it in tests and the simulator).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// True once after a write changed the unit id, baud rate or parity: the board
    /// reconfigures its UART after sending the reply.
    pub fn line_changed(&mut self) -> bool {
        core::mem::take(&mut self.line_changed)
    }

    /// A sensor read's outcome: `Ok` sets the values, `Err` marks them invalid and
    /// counts the error. `model` is the fitted sensor, `None` if none answered.
    pub fn set_climate<E>(&mut self, model: Option<Model>, reading: Result<Measurement, E>) {
        self.sensor_model = model.map_or(0, Model::code);
        match reading {
            Ok(m) => self.climate = Climate::Good(m),
            Err(_) => {
                self.climate = Climate::Fault;
                self.sensor_errors = self.sensor_errors.wrapping_add(1);
            }
        }
    }

    /// The debounced leak input.
    pub fn set_leak(&mut self, wet: bool) {
        self.leak = wet;
    }

    /// The debounced door input; counts openings.
    pub fn set_door(&mut self, open: bool) {
        if open && !self.door {
            self.door_openings = self.door_openings.wrapping_add(1);
        }
        self.door = open;
    }

    /// Advances the node's clock (ms since power-up): uptime and the guard timeout.
    /// An earlier `now_ms` than seen before does not move the uptime back.
    pub fn tick(&mut self, now_ms: u64) {
        let s = (now_ms / 1000).min(u64::from(u32::MAX)) as u32;
        self.uptime_s = self.uptime_s.max(s);
        if self.unlocked_until_ms.is_some_and(|t| now_ms >= t) {
            self.unlocked_until_ms = None;
        }
    }

    fn unlocked(&self) -> bool {
        self.unlocked_until_ms.is_some()
    }

    /// Temperature register after the offset, 0.1 °C.
    fn temperature_reg(&self) -> u16 {
        match self.climate {
            Climate::Good(m) => {
                let mc = i64::from(m.temperature_mc)
                    + i64::from(self.settings.temperature_offset_dc) * 100;
                // Round half away from zero to 0.1 °C.
                let dc = if mc >= 0 {
                    (mc + 50) / 100
                } else {
                    (mc - 50) / 100
                };
                (dc.clamp(-32_768, 32_766) as i16) as u16
            }
            Climate::Fault => map::TEMPERATURE_FAULT,
        }
    }

    /// Humidity register after the offset, 0.1 %RH, 0..=1000.
    fn humidity_reg(&self) -> u16 {
        match self.climate {
            Climate::Good(m) => {
                let mp = i64::from(m.humidity_mpct)
                    + i64::from(self.settings.humidity_offset_dpct) * 100;
                ((mp + 50) / 100).clamp(0, 1000) as u16
            }
            Climate::Fault => map::HUMIDITY_FAULT,
        }
    }

    /// One input register (0 for reserved addresses inside the map).
    pub fn input_register(&self, addr: u16) -> Option<u16> {
        use map::*;
        if addr >= INPUT_COUNT {
            return None;
        }
        let c = &self.counters;
        Some(match addr {
            IR_STATUS => {
                let mut s = 0;
                if self.climate == Climate::Fault {
                    s |= STATUS_SENSOR_FAULT;
                }
                if self.leak {
                    s |= STATUS_LEAK;
                }
                if self.door {
                    s |= STATUS_DOOR_OPEN;
                }
                if self.unlocked() {
                    s |= STATUS_UNLOCKED;
                }
                if self.settings_default {
                    s |= STATUS_SETTINGS_DEFAULT;
                }
                s
            }
            IR_TEMPERATURE => self.temperature_reg(),
            IR_HUMIDITY => self.humidity_reg(),
            IR_LEAK => u16::from(self.leak),
            IR_DOOR => u16::from(self.door),
            IR_DOOR_OPENINGS => self.door_openings,
            IR_SENSOR_MODEL => self.sensor_model,
            IR_SENSOR_ERRORS => self.sensor_errors,
            IR_UPTIME => (self.uptime_s >> 16) as u16,
            9 => self.uptime_s as u16,
            IR_FIRMWARE => FIRMWARE_VERSION,
            IR_SETTINGS_DEFAULT => u16::from(self.settings_default),
            IR_BUS_MESSAGES => c.bus_messages,
            IR_CRC_ERRORS => c.crc_errors,
            IR_EXCEPTIONS => c.exceptions,
            IR_SERVER_MESSAGES => c.server_messages,
            IR_NO_RESPONSE => c.no_response,
            IR_MALFORMED => c.malformed,
            _ => 0,
        })
    }

    /// One holding register.
    pub fn holding_register(&self, addr: u16) -> Option<u16> {
        use map::*;
        let s = &self.settings;
        Some(match addr {
            HR_GUARD => u16::from(self.unlocked()),
            HR_UNIT_ID => u16::from(s.unit_id),
            HR_BAUD => (s.baud / 100) as u16,
            HR_PARITY => s.parity.code(),
            HR_TEMPERATURE_OFFSET => s.temperature_offset_dc as u16,
            HR_HUMIDITY_OFFSET => s.humidity_offset_dpct as u16,
            _ => return None,
        })
    }

    /// Serves one complete RTU frame received at `now_ms`; a reply goes into `out`.
    pub fn handle(&mut self, frame: &[u8], now_ms: u64, out: &mut [u8; 256]) -> Handled {
        self.tick(now_ms);
        if frame.len() < 4 {
            self.counters.malformed = self.counters.malformed.wrapping_add(1);
            return Handled::Silent(Silence::Malformed);
        }
        let (body, crc) = frame.split_at(frame.len() - 2);
        if crate::crc::crc16_modbus(body) != u16::from_le_bytes([crc[0], crc[1]]) {
            self.counters.crc_errors = self.counters.crc_errors.wrapping_add(1);
            return Handled::Silent(Silence::BadCrc);
        }
        self.counters.bus_messages = self.counters.bus_messages.wrapping_add(1);
        let unit = body[0];
        let broadcast = unit == 0;
        if !broadcast && unit != self.settings.unit_id {
            return Handled::Silent(Silence::OtherUnit);
        }
        self.counters.server_messages = self.counters.server_messages.wrapping_add(1);
        let function = body[1];
        let pdu = &body[2..];
        let result = match function {
            0x03 | 0x04 if broadcast => Ok(0), // reads are never broadcast; nothing done
            0x03 | 0x04 => self.read(function, pdu, &mut out[3..]),
            0x06 => self.write_single(pdu, now_ms),
            0x10 => self.write_multiple(pdu, now_ms),
            _ => Err(Exception::IllegalFunction),
        };
        if broadcast {
            self.counters.no_response = self.counters.no_response.wrapping_add(1);
            return Handled::Silent(Silence::Broadcast);
        }
        out[0] = unit;
        let n = match result {
            Ok(_) if matches!(function, 0x06 | 0x10) => {
                // Echo of address and value (06) or address and quantity (16).
                out[1] = function;
                out[2..6].copy_from_slice(&pdu[0..4]);
                6
            }
            Ok(regs) => {
                out[1] = function;
                out[2] = (regs * 2) as u8;
                3 + regs * 2
            }
            Err(e) => {
                self.counters.exceptions = self.counters.exceptions.wrapping_add(1);
                out[1] = function | 0x80;
                out[2] = e as u8;
                3
            }
        };
        let crc = crate::crc::crc16_modbus(&out[..n]);
        out[n..n + 2].copy_from_slice(&crc.to_le_bytes());
        Handled::Reply(n + 2)
    }

    /// 03 / 04: writes the register values at `data`; returns how many.
    fn read(&mut self, function: u8, pdu: &[u8], data: &mut [u8]) -> Result<usize, Exception> {
        if pdu.len() != 4 {
            return Err(Exception::IllegalDataValue);
        }
        let addr = u16::from_be_bytes([pdu[0], pdu[1]]);
        let qty = u16::from_be_bytes([pdu[2], pdu[3]]);
        if !(1..=125).contains(&qty) {
            return Err(Exception::IllegalDataValue);
        }
        if u32::from(addr) + u32::from(qty) > 0x1_0000 {
            return Err(Exception::IllegalDataAddress);
        }
        for i in 0..qty {
            let a = addr + i;
            let v = if function == 0x04 {
                self.input_register(a)
            } else {
                self.holding_register(a)
            }
            .ok_or(Exception::IllegalDataAddress)?;
            data[usize::from(i) * 2..usize::from(i) * 2 + 2].copy_from_slice(&v.to_be_bytes());
        }
        Ok(usize::from(qty))
    }

    /// 06: one holding register.
    fn write_single(&mut self, pdu: &[u8], now_ms: u64) -> Result<usize, Exception> {
        if pdu.len() != 4 {
            return Err(Exception::IllegalDataValue);
        }
        let addr = u16::from_be_bytes([pdu[0], pdu[1]]);
        let value = u16::from_be_bytes([pdu[2], pdu[3]]);
        self.write_registers(addr, |_| value, 1, now_ms)?;
        Ok(1)
    }

    /// 16: several holding registers.
    fn write_multiple(&mut self, pdu: &[u8], now_ms: u64) -> Result<usize, Exception> {
        if pdu.len() < 5 {
            return Err(Exception::IllegalDataValue);
        }
        let addr = u16::from_be_bytes([pdu[0], pdu[1]]);
        let qty = u16::from_be_bytes([pdu[2], pdu[3]]);
        let bytes = usize::from(pdu[4]);
        if !(1..=123).contains(&qty) || bytes != usize::from(qty) * 2 || pdu.len() != 5 + bytes {
            return Err(Exception::IllegalDataValue);
        }
        let values = &pdu[5..];
        self.write_registers(
            addr,
            |i| u16::from_be_bytes([values[i * 2], values[i * 2 + 1]]),
            qty,
            now_ms,
        )?;
        Ok(usize::from(qty))
    }

    /// Validates the whole write first, then stores and applies it.
    fn write_registers(
        &mut self,
        addr: u16,
        value: impl Fn(usize) -> u16,
        qty: u16,
        now_ms: u64,
    ) -> Result<(), Exception> {
        use map::*;
        let end = u32::from(addr) + u32::from(qty);
        if addr < HOLDING_START || end > u32::from(HOLDING_START + HOLDING_COUNT) {
            return Err(Exception::IllegalDataAddress);
        }
        let mut next = self.settings;
        let mut unlocked = self.unlocked();
        let mut guard: Option<bool> = None; // Some(true) unlock, Some(false) lock
        let mut touches_settings = false;
        for i in 0..usize::from(qty) {
            let a = addr + i as u16;
            let v = value(i);
            if a == HR_GUARD {
                match v {
                    UNLOCK_KEY => {
                        unlocked = true;
                        guard = Some(true);
                    }
                    0 => {
                        unlocked = false;
                        guard = Some(false);
                    }
                    _ => return Err(Exception::IllegalDataValue),
                }
                continue;
            }
            if !unlocked {
                return Err(Exception::IllegalFunction);
            }
            touches_settings = true;
            match a {
                HR_UNIT_ID => next.unit_id = u8::try_from(v).unwrap_or(0),
                HR_BAUD => next.baud = u32::from(v) * 100,
                HR_PARITY => {
                    next.parity = Parity::from_code(v).ok_or(Exception::IllegalDataValue)?
                }
                HR_TEMPERATURE_OFFSET => next.temperature_offset_dc = v as i16,
                HR_HUMIDITY_OFFSET => next.humidity_offset_dpct = v as i16,
                _ => return Err(Exception::IllegalDataAddress),
            }
        }
        next.validate().map_err(|_| Exception::IllegalDataValue)?;
        if touches_settings && next != self.settings {
            self.store
                .save(&next.encode())
                .map_err(|_| Exception::ServerDeviceFailure)?;
            let old = self.settings;
            self.line_changed =
                old.unit_id != next.unit_id || old.baud != next.baud || old.parity != next.parity;
            self.settings = next;
            self.settings_default = false;
        }
        self.unlocked_until_ms = match guard {
            Some(true) if !touches_settings => Some(now_ms + UNLOCK_MS),
            _ if touches_settings => None, // one stored write consumes the unlock
            Some(false) => None,
            _ => self.unlocked_until_ms,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc::crc16_modbus;
    use crate::settings::MemStore;
    use std::vec::Vec;

    const UNIT: u8 = 7;

    fn node() -> Node<MemStore> {
        let mut n = Node::new(
            MemStore::default(),
            Settings {
                unit_id: UNIT,
                ..Settings::default()
            },
        );
        n.set_climate::<()>(
            Some(Model::Sht4x),
            Ok(Measurement {
                temperature_mc: 23_450,
                humidity_mpct: 41_260,
            }),
        );
        n
    }

    /// `body` with its CRC appended.
    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = body.to_vec();
        f.extend_from_slice(&crc16_modbus(body).to_le_bytes());
        f
    }

    /// Sends `body` (CRC added) and returns the reply without its CRC, checking it.
    fn ask(n: &mut Node<MemStore>, body: &[u8], now_ms: u64) -> Option<Vec<u8>> {
        let mut out = [0u8; 256];
        match n.handle(&frame(body), now_ms, &mut out) {
            Handled::Reply(len) => {
                let (b, c) = out[..len].split_at(len - 2);
                assert_eq!(crc16_modbus(b).to_le_bytes(), [c[0], c[1]], "reply CRC");
                Some(b.to_vec())
            }
            Handled::Silent(_) => None,
        }
    }

    fn read(n: &mut Node<MemStore>, f: u8, addr: u16, qty: u16) -> Result<Vec<u16>, u8> {
        let a = addr.to_be_bytes();
        let q = qty.to_be_bytes();
        let r = ask(n, &[UNIT, f, a[0], a[1], q[0], q[1]], 0).expect("a reply");
        if r[1] == f | 0x80 {
            return Err(r[2]);
        }
        assert_eq!(r[1], f);
        assert_eq!(usize::from(r[2]), qty as usize * 2);
        Ok(r[3..]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect())
    }

    fn write(n: &mut Node<MemStore>, addr: u16, value: u16, now_ms: u64) -> Result<(), u8> {
        let a = addr.to_be_bytes();
        let v = value.to_be_bytes();
        let req = [UNIT, 6, a[0], a[1], v[0], v[1]];
        let r = ask(n, &req, now_ms).expect("a reply");
        if r[1] == 0x86 {
            return Err(r[2]);
        }
        assert_eq!(r, req, "06 echoes the request");
        Ok(())
    }

    fn write_many(
        n: &mut Node<MemStore>,
        addr: u16,
        values: &[u16],
        now_ms: u64,
    ) -> Result<(), u8> {
        let mut req = Vec::from([UNIT, 0x10]);
        req.extend_from_slice(&addr.to_be_bytes());
        req.extend_from_slice(&(values.len() as u16).to_be_bytes());
        req.push((values.len() * 2) as u8);
        for v in values {
            req.extend_from_slice(&v.to_be_bytes());
        }
        let r = ask(n, &req, now_ms).expect("a reply");
        if r[1] == 0x90 {
            return Err(r[2]);
        }
        assert_eq!(r, req[..6], "16 echoes address and quantity");
        Ok(())
    }

    #[test]
    fn reads_the_measurements_in_the_documented_registers() {
        let mut n = node();
        n.set_leak(true);
        n.set_door(true);
        n.tick(70_000);
        let r = read(&mut n, 4, 0, 11).unwrap();
        // 23.45 °C rounds to 23.5 (235), 41.26 %RH to 41.3 (413).
        assert_eq!(r[1], 235);
        assert_eq!(r[2], 413);
        assert_eq!(&r[3..5], &[1, 1]);
        assert_eq!(r[5], 1, "one door opening");
        assert_eq!(r[6], 4, "SHT4x");
        assert_eq!(&r[8..10], &[0, 70], "uptime 70 s, high word first");
        assert_eq!(r[10], FIRMWARE_VERSION);
        assert_eq!(
            r[0],
            map::STATUS_LEAK | map::STATUS_DOOR_OPEN | map::STATUS_SETTINGS_DEFAULT
        );
    }

    #[test]
    fn negative_temperature_and_sensor_fault() {
        let mut n = node();
        // -20.5 °C as the XY-MD02 manual's example 0xFF33.
        n.set_climate::<()>(
            Some(Model::Sht3x),
            Ok(Measurement {
                temperature_mc: -20_500,
                humidity_mpct: 54_600,
            }),
        );
        assert_eq!(read(&mut n, 4, 1, 2).unwrap(), [0xFF33, 0x0222]);
        n.set_climate(Some(Model::Sht4x), Err(()));
        assert_eq!(
            read(&mut n, 4, 0, 3).unwrap(),
            [
                map::STATUS_SENSOR_FAULT | map::STATUS_SETTINGS_DEFAULT,
                map::TEMPERATURE_FAULT,
                map::HUMIDITY_FAULT
            ]
        );
        assert_eq!(read(&mut n, 4, map::IR_SENSOR_ERRORS, 1).unwrap(), [1]);
    }

    #[test]
    fn wrong_unit_bad_crc_and_short_frames_get_no_reply() {
        let mut n = node();
        let mut out = [0u8; 256];
        // Another unit id.
        assert_eq!(ask(&mut n, &[UNIT + 1, 4, 0, 1, 0, 2], 0), None);
        // Bad CRC: last byte flipped.
        let mut f = frame(&[UNIT, 4, 0, 1, 0, 2]);
        *f.last_mut().unwrap() ^= 0xFF;
        assert_eq!(n.handle(&f, 0, &mut out), Handled::Silent(Silence::BadCrc));
        // Fewer than 4 bytes, and nothing at all.
        assert_eq!(
            n.handle(&[UNIT, 4, 0], 0, &mut out),
            Handled::Silent(Silence::Malformed)
        );
        assert_eq!(
            n.handle(&[], 0, &mut out),
            Handled::Silent(Silence::Malformed)
        );
        // Garbage of every length up to 40 never panics and never gets a reply
        // unless its CRC happens to match for this unit.
        let mut seed = 0x1234_5678u32;
        for len in 0..40 {
            let g: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = n.handle(&g, 0, &mut out);
        }
        let c = n.counters;
        assert_eq!(c.malformed, 2 + 4, "{c:?}");
        assert_eq!(c.crc_errors, 1 + 36, "{c:?}");
        assert_eq!(c.exceptions, 0);
        // The counters are served too.
        let r = read(&mut n, 4, map::IR_BUS_MESSAGES, 6).unwrap();
        assert_eq!(r[1], n.counters.crc_errors);
        assert_eq!(r[5], 6);
    }

    #[test]
    fn exceptions_01_02_03() {
        let mut n = node();
        // 01: function 0x05 (write coil) is not supported; nor is 0x2B.
        assert_eq!(
            ask(&mut n, &[UNIT, 5, 0, 0, 0xFF, 0], 0).unwrap(),
            [UNIT, 0x85, 1]
        );
        assert_eq!(
            ask(&mut n, &[UNIT, 0x2B, 0x0E, 1, 0], 0).unwrap(),
            [UNIT, 0xAB, 1]
        );
        // 02: past the input map; a range that runs off its end; holding 0.
        assert_eq!(read(&mut n, 4, map::INPUT_COUNT, 1), Err(2));
        assert_eq!(read(&mut n, 4, 20, 3), Err(2));
        assert_eq!(read(&mut n, 3, 0, 1), Err(2));
        assert_eq!(read(&mut n, 4, 0xFFFF, 2), Err(2));
        // 03: quantity 0 and 126.
        assert_eq!(read(&mut n, 4, 0, 0), Err(3));
        assert_eq!(read(&mut n, 3, 256, 126), Err(3));
        // 03: a read with a trailing byte (length does not match the function).
        assert_eq!(
            ask(&mut n, &[UNIT, 4, 0, 1, 0, 2, 0], 0).unwrap(),
            [UNIT, 0x84, 3]
        );
        // 16 whose byte count disagrees with the quantity.
        assert_eq!(
            ask(&mut n, &[UNIT, 0x10, 1, 0, 0, 1, 4, 0x5A, 0xA5, 0, 0], 0).unwrap(),
            [UNIT, 0x90, 3]
        );
        // 16 with the right count but a missing byte.
        assert_eq!(
            ask(&mut n, &[UNIT, 0x10, 1, 0, 0, 1, 2, 0x5A], 0).unwrap(),
            [UNIT, 0x90, 3]
        );
        // 06 outside the holding map.
        assert_eq!(write(&mut n, 0, 1, 0), Err(2));
        assert_eq!(n.counters.exceptions, 12);
        // A full-size read fits the frame: 125 registers where the map has them? The
        // input map is 22 long, so 22 is the most; read them all at once.
        assert_eq!(read(&mut n, 4, 0, map::INPUT_COUNT).unwrap().len(), 22);
    }

    #[test]
    fn settings_writes_need_the_guard() {
        let mut n = node();
        assert_eq!(
            read(&mut n, 3, 256, 6).unwrap(),
            [0, UNIT as u16, 192, 1, 0, 0]
        );
        // Locked: exception 01, nothing stored.
        assert_eq!(write(&mut n, map::HR_UNIT_ID, 9, 0), Err(1));
        assert_eq!(write_many(&mut n, map::HR_UNIT_ID, &[9, 96], 0), Err(1));
        assert_eq!(n.store().saves, 0);
        // A wrong key is refused (03), and does not unlock.
        assert_eq!(write(&mut n, map::HR_GUARD, 0x1234, 0), Err(3));
        assert_eq!(write(&mut n, map::HR_TEMPERATURE_OFFSET, 5, 0), Err(1));
        // Unlock; the guard reads 1 and the status bit shows it.
        write(&mut n, map::HR_GUARD, map::UNLOCK_KEY, 1_000).unwrap();
        assert_eq!(read(&mut n, 3, map::HR_GUARD, 1).unwrap(), [1]);
        // Offsets apply at once: -1.5 °C, +2.0 %RH on 23.45 / 41.26.
        write_many(
            &mut n,
            map::HR_TEMPERATURE_OFFSET,
            &[(-15i16) as u16, 20],
            2_000,
        )
        .unwrap();
        assert_eq!(n.store().saves, 1);
        assert_eq!(read(&mut n, 4, 1, 2).unwrap(), [220, 433]);
        // The unlock was consumed by that stored write.
        assert_eq!(read(&mut n, 3, map::HR_GUARD, 1).unwrap(), [0]);
        assert_eq!(write(&mut n, map::HR_HUMIDITY_OFFSET, 0, 2_000), Err(1));
        assert!(!n.line_changed(), "offsets do not touch the line");
    }

    #[test]
    fn unit_id_change_is_stored_answered_from_the_old_id_then_used() {
        let mut n = node();
        // Guard and new unit id + baud in one write-multiple starting at the guard.
        write_many(&mut n, map::HR_GUARD, &[map::UNLOCK_KEY, 42, 1152], 0).unwrap();
        assert!(n.line_changed());
        assert!(!n.line_changed(), "reported once");
        assert_eq!(n.settings().unit_id, 42);
        assert_eq!(n.settings().baud, 115_200);
        // Stored, and a new node on the same store starts with it.
        let stored = n.store().record.unwrap();
        assert_eq!(Settings::decode(&stored).unwrap().unit_id, 42);
        let again = Node::new(n.store().clone(), Settings::default());
        assert_eq!(again.settings().unit_id, 42);
        // The old id is now someone else's.
        assert_eq!(ask(&mut n, &[UNIT, 4, 0, 1, 0, 1], 0), None);
        let r = ask(&mut n, &[42, 4, 0, 1, 0, 1], 0).unwrap();
        assert_eq!(r, [42, 4, 2, 0, 235]);
        // Status bit 4 cleared: no longer on defaults.
        assert_eq!(ask(&mut n, &[42, 4, 0, 0, 0, 1], 0).unwrap()[3..], [0, 0]);
    }

    #[test]
    fn bad_values_change_nothing() {
        let mut n = node();
        for (addr, v) in [
            (map::HR_UNIT_ID, 0u16),
            (map::HR_UNIT_ID, 248),
            (map::HR_BAUD, 144),
            (map::HR_PARITY, 4),
            (map::HR_TEMPERATURE_OFFSET, 101),
            (map::HR_HUMIDITY_OFFSET, (-101i16) as u16),
        ] {
            write(&mut n, map::HR_GUARD, map::UNLOCK_KEY, 0).unwrap();
            assert_eq!(write(&mut n, addr, v, 0), Err(3), "{addr} = {v}");
        }
        // All or nothing: a good unit id next to a bad baud rate.
        write(&mut n, map::HR_GUARD, map::UNLOCK_KEY, 0).unwrap();
        assert_eq!(write_many(&mut n, map::HR_UNIT_ID, &[9, 1], 0), Err(3));
        assert_eq!(n.settings().unit_id, UNIT);
        assert_eq!(n.store().saves, 0);
    }

    #[test]
    fn a_failed_save_is_exception_04_and_keeps_the_old_settings() {
        let mut n = Node::new(
            MemStore {
                fail: true,
                ..MemStore::default()
            },
            Settings {
                unit_id: UNIT,
                ..Settings::default()
            },
        );
        write(&mut n, map::HR_GUARD, map::UNLOCK_KEY, 0).unwrap();
        assert_eq!(write(&mut n, map::HR_UNIT_ID, 9, 0), Err(4));
        assert_eq!(n.settings().unit_id, UNIT);
        assert!(!n.line_changed());
    }

    #[test]
    fn the_unlock_expires() {
        let mut n = node();
        write(&mut n, map::HR_GUARD, map::UNLOCK_KEY, 1_000).unwrap();
        n.tick(1_000 + map::UNLOCK_MS - 1);
        assert_eq!(read(&mut n, 3, map::HR_GUARD, 1).unwrap(), [1]);
        assert_eq!(
            write(&mut n, map::HR_UNIT_ID, 9, 1_000 + map::UNLOCK_MS),
            Err(1)
        );
        // Writing 0 locks at once.
        write(&mut n, map::HR_GUARD, map::UNLOCK_KEY, 50_000).unwrap();
        write(&mut n, map::HR_GUARD, 0, 50_001).unwrap();
        assert_eq!(write(&mut n, map::HR_UNIT_ID, 9, 50_002), Err(1));
    }

    #[test]
    fn broadcast_writes_are_done_without_reply_reads_are_not() {
        let mut n = node();
        let mut out = [0u8; 256];
        let bc = |body: &[u8]| frame(body);
        // Broadcast read: no reply.
        assert_eq!(
            n.handle(&bc(&[0, 4, 0, 1, 0, 1]), 0, &mut out),
            Handled::Silent(Silence::Broadcast)
        );
        // Broadcast unlock + offset: carried out, no reply.
        assert_eq!(
            n.handle(&bc(&[0, 6, 1, 0, 0x5A, 0xA5]), 0, &mut out),
            Handled::Silent(Silence::Broadcast)
        );
        assert_eq!(
            n.handle(&bc(&[0, 6, 1, 4, 0, 10]), 0, &mut out),
            Handled::Silent(Silence::Broadcast)
        );
        assert_eq!(n.settings().temperature_offset_dc, 10);
        // A refused broadcast write (locked again) is silent too and changes nothing.
        assert_eq!(
            n.handle(&bc(&[0, 6, 1, 4, 0, 20]), 0, &mut out),
            Handled::Silent(Silence::Broadcast)
        );
        assert_eq!(n.settings().temperature_offset_dc, 10);
        // An unsupported function broadcast: silent.
        assert_eq!(
            n.handle(&bc(&[0, 5, 0, 0, 0xFF, 0]), 0, &mut out),
            Handled::Silent(Silence::Broadcast)
        );
        assert_eq!(n.counters.exceptions, 0);
        assert_eq!(n.counters.no_response, 5);
    }

    #[test]
    fn random_well_formed_frames_never_panic_and_always_get_a_valid_reply() {
        // Frames with a correct CRC for this unit, random function and body: every one
        // is answered with a normal reply of that function or a 01/02/03 exception.
        let mut n = node();
        let mut seed = 0x9E37_79B9u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..20_000 {
            let f = match next() % 6 {
                0 => 3,
                1 => 4,
                2 => 6,
                3 => 0x10,
                _ => next() as u8,
            };
            let len = (next() % 40) as usize;
            let mut body = Vec::from([UNIT, f]);
            for _ in 0..len {
                // Small numbers often, so some requests land inside the map.
                body.push(if next() % 2 == 0 {
                    (next() % 4) as u8
                } else {
                    next() as u8
                });
            }
            let r = ask(&mut n, &body, 0).expect("a unicast frame with a good CRC is answered");
            assert_eq!(r[0], UNIT);
            if r[1] & 0x80 != 0 {
                assert_eq!(r[1], f | 0x80);
                assert!((1..=4).contains(&r[2]), "exception {}", r[2]);
                assert_eq!(r.len(), 3);
            } else {
                assert_eq!(r[1], f);
            }
        }
    }

    #[test]
    fn debounced_door_counts_openings() {
        let mut n = node();
        for open in [true, true, false, true, false] {
            n.set_door(open);
        }
        assert_eq!(read(&mut n, 4, map::IR_DOOR, 2).unwrap(), [0, 2]);
    }
}
