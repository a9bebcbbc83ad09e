//! The two checksums the node computes.
//!
//! - [`crc16_modbus`]: the RTU frame check, *Modbus over Serial Line Specification and
//!   Implementation Guide V1.02* (modbus.org, 2006), §2.5.1.2 and §6.2.2: polynomial
//!   0xA001 (0x8005 reflected), initial value 0xFFFF, sent low byte first.
//! - [`crc8_sensirion`]: the check byte after every 16-bit word a Sensirion humidity
//!   sensor sends. Sensirion *Datasheet SHT3x-DIS* (Version 5, May 2018), §4.12
//!   "Checksum Calculation", Table 20 "I2C CRC properties" (the *Datasheet SHT4x*
//!   section "Checksum Calculation" gives the same table): CRC-8, polynomial 0x31
//!   (x⁸ + x⁵ + x⁴ + 1), initialisation 0xFF, no reflection, final XOR 0x00; the
//!   table's example is CRC(0xBEEF) = 0x92.

/// CRC-16/MODBUS of `data` (initial 0xFFFF, reflected polynomial 0xA001). On the wire
/// the low byte goes first.
pub fn crc16_modbus(data: &[u8]) -> u16 {
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

/// Sensirion CRC-8 of `data` (polynomial 0x31, initial 0xFF, no reflection, no final
/// XOR), as the SHT3x and SHT4x datasheets define it.
pub fn crc8_sensirion(data: &[u8]) -> u8 {
    let mut crc: u8 = 0xFF;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x31
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensirion_datasheet_example() {
        // SHT3x-DIS V5 §4.12 Table 20: CRC(0xBEEF) = 0x92.
        assert_eq!(crc8_sensirion(&[0xBE, 0xEF]), 0x92);
        // Catalogue check value of CRC-8/NRSC-5 (same parameters): "123456789" -> 0xF7.
        assert_eq!(crc8_sensirion(b"123456789"), 0xF7);
    }

    #[test]
    fn modbus_spec_example() {
        // Modbus over Serial Line V1.02 §6.2.2 and the CRC catalogue's CRC-16/MODBUS
        // check value: "123456789" -> 0x4B37.
        assert_eq!(crc16_modbus(b"123456789"), 0x4B37);
        // A well-known request: unit 1, read holding 0, 1 register -> CRC bytes 84 0A.
        let crc = crc16_modbus(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x01]);
        assert_eq!(crc.to_le_bytes(), [0x84, 0x0A]);
    }
}
