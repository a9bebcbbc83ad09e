//! SHT3x / SHT4x temperature and humidity sensor over I2C (`embedded-hal` 1.0).
//!
//! One single-shot measurement per call, no clock stretching, so the driver works on
//! any I2C controller:
//!
//! - SHT3x: command 0x2400 (high repeatability, clock stretching disabled), at most
//!   about 15 ms to convert (*Datasheet SHT3x-DIS* V5, single-shot command table of
//!   §4.3 and the measurement duration in the timing table; the driver waits 16 ms);
//!   RH = 100 · S_RH / (2¹⁶ − 1), T = −45 + 175 · S_T / (2¹⁶ − 1) (§4.13).
//! - SHT4x: command 0xFD (high precision), at most 8.3 ms (*Datasheet SHT4x*, "Command
//!   overview" and "Timings"); RH = −6 + 125 · S_RH / (2¹⁶ − 1), cropped to 0…100 %RH as
//!   the datasheet recommends; T as for the SHT3x.
//!
//! Both answer six bytes: T MSB, T LSB, CRC, RH MSB, RH LSB, CRC; each CRC is the
//! Sensirion CRC-8 ([`crate::crc::crc8_sensirion`]) of the word before it. A word whose
//! CRC does not match is an error, never a value.
//!
//! Values are integers in thousandths (m°C, m%RH) so the core needs no floating point.
//! [`Sht::start`] / [`Sht::read`] let an async caller wait the conversion time itself;
//! [`Sht::measure`] does both with a blocking `DelayNs`.

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

use crate::crc::crc8_sensirion;

/// The sensor's default 7-bit I2C address (SHT3x ADDR pin low, SHT40-AD1B).
pub const DEFAULT_ADDRESS: u8 = 0x44;

/// Which sensor family is fitted; they differ in command, timing and humidity formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// SHT30, SHT31, SHT35.
    Sht3x,
    /// SHT40, SHT41, SHT45.
    Sht4x,
}

impl Model {
    /// The measurement command bytes.
    pub fn command(self) -> &'static [u8] {
        match self {
            Model::Sht3x => &[0x24, 0x00],
            Model::Sht4x => &[0xFD],
        }
    }

    /// Time to wait between the command and reading the result, in microseconds (the
    /// datasheet maximum, rounded up).
    pub fn conversion_us(self) -> u32 {
        match self {
            Model::Sht3x => 16_000,
            Model::Sht4x => 9_000,
        }
    }

    /// The code served in the `sensor_model` input register (3 or 4).
    pub fn code(self) -> u16 {
        match self {
            Model::Sht3x => 3,
            Model::Sht4x => 4,
        }
    }
}

/// One measurement, in thousandths of a degree Celsius and of a percent RH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// Temperature, m°C.
    pub temperature_mc: i32,
    /// Relative humidity, m%RH, 0..=100 000.
    pub humidity_mpct: i32,
}

/// What can go wrong in one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C transfer failed (no acknowledge, bus error).
    I2c(E),
    /// A word's CRC-8 did not match: the bytes were corrupted on the bus.
    Crc,
}

/// The driver: an I2C bus, the sensor's address and model.
pub struct Sht<I2C> {
    i2c: I2C,
    address: u8,
    model: Model,
}

impl<I2C: I2c> Sht<I2C> {
    /// A driver for `model` at `address` on `i2c`.
    pub fn new(i2c: I2C, model: Model, address: u8) -> Self {
        Sht {
            i2c,
            address,
            model,
        }
    }

    /// The fitted model.
    pub fn model(&self) -> Model {
        self.model
    }

    /// Sends the measurement command; read the result [`Model::conversion_us`] later.
    pub fn start(&mut self) -> Result<(), Error<I2C::Error>> {
        self.i2c
            .write(self.address, self.model.command())
            .map_err(Error::I2c)
    }

    /// Reads and decodes the result of the last [`Sht::start`].
    pub fn read(&mut self) -> Result<Measurement, Error<I2C::Error>> {
        let mut buf = [0u8; 6];
        self.i2c.read(self.address, &mut buf).map_err(Error::I2c)?;
        decode(self.model, &buf).map_err(|Crc| Error::Crc)
    }

    /// Starts a measurement, waits the conversion time on `delay`, reads it.
    pub fn measure(&mut self, delay: &mut impl DelayNs) -> Result<Measurement, Error<I2C::Error>> {
        self.start()?;
        delay.delay_us(self.model.conversion_us());
        self.read()
    }

    /// Switches the expected model (a board that probes which sensor is fitted).
    pub fn set_model(&mut self, model: Model) {
        self.model = model;
    }

    /// The bus, for the caller's own transfers.
    pub fn bus_mut(&mut self) -> &mut I2C {
        &mut self.i2c
    }

    /// Gives the bus back.
    pub fn release(self) -> I2C {
        self.i2c
    }
}

/// A CRC mismatch in a sensor answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc;

/// Decodes a six-byte answer of `model`, checking both CRCs.
pub fn decode(model: Model, buf: &[u8; 6]) -> Result<Measurement, Crc> {
    if crc8_sensirion(&buf[0..2]) != buf[2] || crc8_sensirion(&buf[3..5]) != buf[5] {
        return Err(Crc);
    }
    let st = u16::from_be_bytes([buf[0], buf[1]]);
    let srh = u16::from_be_bytes([buf[3], buf[4]]);
    Ok(Measurement {
        temperature_mc: temperature_mc(st),
        humidity_mpct: humidity_mpct(model, srh),
    })
}

/// `a + b · raw / 65535` in thousandths, rounded to nearest.
fn linear(a_milli: i64, b_milli: i64, raw: u16) -> i64 {
    let num = b_milli * i64::from(raw);
    a_milli + (num + 32_767) / 65_535
}

/// T = −45 + 175 · S_T / 65535 (°C), in m°C. Same formula for both families.
pub fn temperature_mc(raw: u16) -> i32 {
    linear(-45_000, 175_000, raw) as i32
}

/// Relative humidity of `model` from its raw word, in m%RH, cropped to 0..=100 000.
pub fn humidity_mpct(model: Model, raw: u16) -> i32 {
    let v = match model {
        Model::Sht3x => linear(0, 100_000, raw),
        Model::Sht4x => linear(-6_000, 125_000, raw),
    };
    v.clamp(0, 100_000) as i32
}

/// The raw word the sensor sends for `mc` m°C (the inverse of [`temperature_mc`]);
/// used by the simulated sensor and tests.
pub fn raw_temperature(mc: i32) -> u16 {
    let raw = ((i64::from(mc) + 45_000) * 65_535 + 87_500) / 175_000;
    raw.clamp(0, 65_535) as u16
}

/// The raw word `model` sends for `mpct` m%RH (inverse of [`humidity_mpct`]).
pub fn raw_humidity(model: Model, mpct: i32) -> u16 {
    let (a, b) = match model {
        Model::Sht3x => (0i64, 100_000i64),
        Model::Sht4x => (-6_000, 125_000),
    };
    let raw = ((i64::from(mpct) - a) * 65_535 + b / 2) / b;
    raw.clamp(0, 65_535) as u16
}

/// The six bytes `model` would answer for these raw words (with their CRCs).
pub fn encode_raw(st: u16, srh: u16) -> [u8; 6] {
    let t = st.to_be_bytes();
    let h = srh.to_be_bytes();
    [
        t[0],
        t[1],
        crc8_sensirion(&t),
        h[0],
        h[1],
        crc8_sensirion(&h),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A scripted I2C peer: records writes, answers reads with `answer`.
    struct FakeBus {
        writes: Vec<(u8, Vec<u8>)>,
        answer: [u8; 6],
        nack: bool,
    }

    #[derive(Debug, PartialEq)]
    struct Nack;
    impl embedded_hal::i2c::Error for Nack {
        fn kind(&self) -> embedded_hal::i2c::ErrorKind {
            embedded_hal::i2c::ErrorKind::NoAcknowledge(
                embedded_hal::i2c::NoAcknowledgeSource::Address,
            )
        }
    }
    impl embedded_hal::i2c::ErrorType for FakeBus {
        type Error = Nack;
    }
    impl I2c for FakeBus {
        fn transaction(
            &mut self,
            address: u8,
            operations: &mut [embedded_hal::i2c::Operation<'_>],
        ) -> Result<(), Nack> {
            if self.nack {
                return Err(Nack);
            }
            for op in operations {
                match op {
                    embedded_hal::i2c::Operation::Write(b) => {
                        self.writes.push((address, b.to_vec()))
                    }
                    embedded_hal::i2c::Operation::Read(b) => {
                        b.copy_from_slice(&self.answer[..b.len()])
                    }
                }
            }
            Ok(())
        }
    }
    struct NoDelay(u32);
    impl DelayNs for NoDelay {
        fn delay_ns(&mut self, ns: u32) {
            self.0 += ns / 1000;
        }
    }

    fn bus(answer: [u8; 6]) -> FakeBus {
        FakeBus {
            writes: Vec::new(),
            answer,
            nack: false,
        }
    }

    #[test]
    fn formulas_at_the_datasheet_ends() {
        // S = 0 and S = 65535 are the ends of the conversion formulas (SHT3x §4.13).
        assert_eq!(temperature_mc(0), -45_000);
        assert_eq!(temperature_mc(0xFFFF), 130_000);
        assert_eq!(humidity_mpct(Model::Sht3x, 0xFFFF), 100_000);
        // SHT4x: -6 + 125 = 119 %RH at full scale, cropped to 100; 0 %RH at 3145.
        assert_eq!(humidity_mpct(Model::Sht4x, 0xFFFF), 100_000);
        assert_eq!(humidity_mpct(Model::Sht4x, 0), 0);
        // Mid-scale 0x8000: 175 * 32768 / 65535 - 45 = 42.501 °C.
        assert_eq!(temperature_mc(0x8000), 42_501);
        // SHT3x RH at 0x8000: 50.001 %.
        assert_eq!(humidity_mpct(Model::Sht3x, 0x8000), 50_001);
    }

    #[test]
    fn sht4x_measure_sends_fd_and_decodes() {
        // 0x6666 = 26214 = 0.4 * 65535: T = -45 + 175*0.4 = 25.000 °C;
        // RH = -6 + 125*0.4 = 44.000 %.
        let mut b = bus(encode_raw(0x6666, 0x6666));
        let mut d = NoDelay(0);
        let m = {
            let mut s = Sht::new(&mut b, Model::Sht4x, DEFAULT_ADDRESS);
            s.measure(&mut d).unwrap()
        };
        assert_eq!(b.writes, [(0x44, std::vec![0xFD])]);
        assert!(d.0 >= 8_300, "waited {} us", d.0);
        assert_eq!(m.temperature_mc, 25_000);
        assert_eq!(m.humidity_mpct, 44_000);
    }

    #[test]
    fn sht3x_uses_its_command_and_humidity_formula() {
        let mut b = bus(encode_raw(0x6666, 0x6666));
        let mut d = NoDelay(0);
        let m = Sht::new(&mut b, Model::Sht3x, 0x45)
            .measure(&mut d)
            .unwrap();
        assert_eq!(b.writes, [(0x45, std::vec![0x24, 0x00])]);
        assert!(d.0 >= 15_000);
        // RH = 100*0.4 = 40.000 %.
        assert_eq!(m.humidity_mpct, 40_000);
    }

    #[test]
    fn a_corrupted_word_is_a_crc_error_not_a_value() {
        let mut raw = encode_raw(0x6666, 0x6666);
        raw[1] ^= 0x01;
        let mut b = bus(raw);
        let r = Sht::new(&mut b, Model::Sht4x, 0x44).measure(&mut NoDelay(0));
        assert_eq!(r, Err(Error::Crc));
        let mut raw = encode_raw(0x6666, 0x6666);
        raw[5] ^= 0x80;
        let r = Sht::new(bus(raw), Model::Sht4x, 0x44).measure(&mut NoDelay(0));
        assert_eq!(r, Err(Error::Crc));
    }

    #[test]
    fn no_sensor_is_an_i2c_error() {
        let mut b = bus([0; 6]);
        b.nack = true;
        let r = Sht::new(b, Model::Sht4x, 0x44).measure(&mut NoDelay(0));
        assert!(matches!(r, Err(Error::I2c(Nack))));
    }

    #[test]
    fn raw_inverse_round_trips() {
        for mc in [-40_000, -20_500, 0, 21_500, 24_999, 85_000, 125_000] {
            let back = temperature_mc(raw_temperature(mc));
            assert!((back - mc).abs() <= 2, "{mc} -> {back}");
        }
        for model in [Model::Sht3x, Model::Sht4x] {
            for p in [0, 1_000, 45_500, 99_900, 100_000] {
                let back = humidity_mpct(model, raw_humidity(model, p));
                assert!((back - p).abs() <= 2, "{model:?} {p} -> {back}");
            }
        }
    }
}
