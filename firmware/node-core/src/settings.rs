//! The node's persistent settings: unit id, line speed and format, sensor offsets.
//!
//! Settings live in one small record ([`RECORD_LEN`] bytes: magic `"DN"`, version,
//! fields little-endian, CRC-16/MODBUS of the rest) that a [`SettingsStore`] keeps in
//! non-volatile memory: the last 4 KiB flash sector on the RP2040 board, a file in the
//! host simulator, RAM in tests. A record that is missing, from another version or
//! fails its CRC is ignored and the defaults are used, so a blank or half-written
//! flash sector never bricks the node. [`Settings::validate`] is the single check for
//! values arriving over Modbus and from storage.

use crate::crc::crc16_modbus;

/// Line speeds the node accepts, baud.
pub const BAUDS: [u32; 6] = [4_800, 9_600, 19_200, 38_400, 57_600, 115_200];

/// Bytes in a stored record.
pub const RECORD_LEN: usize = 16;

const MAGIC: [u8; 2] = *b"DN";
const VERSION: u8 = 1;

/// Character format on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// 8 data bits, no parity, 1 stop bit (8N1; many cheap sensors' default).
    None1,
    /// 8E1: the Modbus default (Modbus over Serial Line V1.02 §2.5.1).
    Even,
    /// 8O1.
    Odd,
    /// 8N2: the spec's format when there is no parity.
    None2,
}

impl Parity {
    /// The register code: 0 = 8N1, 1 = 8E1, 2 = 8O1, 3 = 8N2.
    pub fn code(self) -> u16 {
        match self {
            Parity::None1 => 0,
            Parity::Even => 1,
            Parity::Odd => 2,
            Parity::None2 => 3,
        }
    }

    /// The parity for a register code.
    pub fn from_code(code: u16) -> Option<Parity> {
        Some(match code {
            0 => Parity::None1,
            1 => Parity::Even,
            2 => Parity::Odd,
            3 => Parity::None2,
            _ => return None,
        })
    }
}

/// The node's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Modbus unit id, 1..=247.
    pub unit_id: u8,
    /// Line speed, one of [`BAUDS`].
    pub baud: u32,
    /// Character format.
    pub parity: Parity,
    /// Added to the measured temperature, 0.1 °C, −100..=100.
    pub temperature_offset_dc: i16,
    /// Added to the measured humidity, 0.1 %RH, −100..=100.
    pub humidity_offset_dpct: i16,
}

impl Default for Settings {
    /// Unit 1, 19200 baud 8E1 (the Modbus default), no offsets.
    fn default() -> Self {
        Settings {
            unit_id: 1,
            baud: 19_200,
            parity: Parity::Even,
            temperature_offset_dc: 0,
            humidity_offset_dpct: 0,
        }
    }
}

/// Why a settings value or record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Unit id outside 1..=247.
    UnitId,
    /// Baud rate not in [`BAUDS`].
    Baud,
    /// Offset outside ±10.0.
    Offset,
    /// A stored record without the magic or of another version.
    Format,
    /// A stored record whose CRC does not match.
    Crc,
}

impl Settings {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(1..=247).contains(&self.unit_id) {
            return Err(Invalid::UnitId);
        }
        if !BAUDS.contains(&self.baud) {
            return Err(Invalid::Baud);
        }
        for o in [self.temperature_offset_dc, self.humidity_offset_dpct] {
            if !(-100..=100).contains(&o) {
                return Err(Invalid::Offset);
            }
        }
        Ok(())
    }

    /// The stored form.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        r[0..2].copy_from_slice(&MAGIC);
        r[2] = VERSION;
        r[3] = self.unit_id;
        r[4..8].copy_from_slice(&self.baud.to_le_bytes());
        r[8] = self.parity.code() as u8;
        r[9..11].copy_from_slice(&self.temperature_offset_dc.to_le_bytes());
        r[11..13].copy_from_slice(&self.humidity_offset_dpct.to_le_bytes());
        // r[13] reserved (0)
        let crc = crc16_modbus(&r[..RECORD_LEN - 2]);
        r[RECORD_LEN - 2..].copy_from_slice(&crc.to_le_bytes());
        r
    }

    /// Reads a stored record; any damage is an error, never a half-right value.
    pub fn decode(r: &[u8]) -> Result<Settings, Invalid> {
        if r.len() < RECORD_LEN || r[0..2] != MAGIC || r[2] != VERSION {
            return Err(Invalid::Format);
        }
        let crc = u16::from_le_bytes([r[RECORD_LEN - 2], r[RECORD_LEN - 1]]);
        if crc16_modbus(&r[..RECORD_LEN - 2]) != crc {
            return Err(Invalid::Crc);
        }
        let s = Settings {
            unit_id: r[3],
            baud: u32::from_le_bytes([r[4], r[5], r[6], r[7]]),
            parity: Parity::from_code(u16::from(r[8])).ok_or(Invalid::Format)?,
            temperature_offset_dc: i16::from_le_bytes([r[9], r[10]]),
            humidity_offset_dpct: i16::from_le_bytes([r[11], r[12]]),
        };
        s.validate()?;
        Ok(s)
    }
}

/// Non-volatile storage for one settings record.
pub trait SettingsStore {
    /// Why a save failed (flash erase/program error, I/O error).
    type Error: core::fmt::Debug;

    /// The stored record's bytes, if the store holds anything; the node decodes and
    /// checks them.
    fn load(&mut self, buf: &mut [u8; RECORD_LEN]) -> bool;

    /// Stores `record` durably; the node uses the new settings only after `Ok`.
    fn save(&mut self, record: &[u8; RECORD_LEN]) -> Result<(), Self::Error>;
}

/// A store in RAM (tests, and boards without a spare flash sector).
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    /// The record as stored.
    pub record: Option<[u8; RECORD_LEN]>,
    /// When set, every save fails (to test the node's reaction).
    pub fail: bool,
    /// Successful saves.
    pub saves: u32,
}

/// The error of a failing [`MemStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveFailed;

impl SettingsStore for MemStore {
    type Error = SaveFailed;

    fn load(&mut self, buf: &mut [u8; RECORD_LEN]) -> bool {
        match self.record {
            Some(r) => {
                *buf = r;
                true
            }
            None => false,
        }
    }

    fn save(&mut self, record: &[u8; RECORD_LEN]) -> Result<(), SaveFailed> {
        if self.fail {
            return Err(SaveFailed);
        }
        self.record = Some(*record);
        self.saves += 1;
        Ok(())
    }
}

/// Loads the settings from `store`, or the defaults when it holds no valid record.
/// The flag says whether the defaults were used.
pub fn load_or_default<S: SettingsStore>(store: &mut S, defaults: Settings) -> (Settings, bool) {
    let mut buf = [0u8; RECORD_LEN];
    if store.load(&mut buf)
        && let Ok(s) = Settings::decode(&buf)
    {
        return (s, false);
    }
    (defaults, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Settings {
        Settings {
            unit_id: 17,
            baud: 115_200,
            parity: Parity::None2,
            temperature_offset_dc: -15,
            humidity_offset_dpct: 30,
        }
    }

    #[test]
    fn a_record_round_trips() {
        let s = sample();
        assert_eq!(Settings::decode(&s.encode()), Ok(s));
    }

    #[test]
    fn a_damaged_or_blank_record_falls_back_to_the_defaults() {
        let mut r = sample().encode();
        r[3] ^= 1;
        assert_eq!(Settings::decode(&r), Err(Invalid::Crc));
        // Erased flash reads 0xFF.
        assert_eq!(Settings::decode(&[0xFF; RECORD_LEN]), Err(Invalid::Format));
        let mut store = MemStore {
            record: Some([0xFF; RECORD_LEN]),
            ..MemStore::default()
        };
        assert_eq!(
            load_or_default(&mut store, Settings::default()),
            (Settings::default(), true)
        );
        store.record = Some(sample().encode());
        assert_eq!(
            load_or_default(&mut store, Settings::default()),
            (sample(), false)
        );
    }

    #[test]
    fn a_well_formed_record_with_bad_values_is_refused() {
        let mut s = sample();
        s.unit_id = 0;
        // encode() does not validate; decode() must.
        assert_eq!(Settings::decode(&s.encode()), Err(Invalid::UnitId));
        s.unit_id = 248;
        assert_eq!(s.validate(), Err(Invalid::UnitId));
        let mut s = sample();
        s.baud = 14_400;
        assert_eq!(s.validate(), Err(Invalid::Baud));
        let mut s = sample();
        s.temperature_offset_dc = 101;
        assert_eq!(s.validate(), Err(Invalid::Offset));
    }
}
