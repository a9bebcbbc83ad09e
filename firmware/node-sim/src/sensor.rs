//! A simulated SHT3x/SHT4x on a simulated I2C bus, behind the `embedded-hal` 1.0
//! `I2c` trait the firmware's driver uses.
//!
//! It answers the driver's measurement command with the raw words a real sensor would
//! send for the simulated temperature and humidity (the inverse of the datasheet
//! formulas, [`node_core::sht::raw_temperature`]) followed by their Sensirion CRC-8, so
//! the driver's decoding and CRC check run exactly as on the board. `none` refuses
//! every transfer with a NACK; `crc_error` flips one bit of the CRC.

use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};
use node_core::sht::{self, Model};

use crate::control::{Inputs, Sensor};

/// The simulated sensor.
pub struct SimSensor {
    model: Model,
    behaviour: Sensor,
    answer: [u8; 6],
    commanded: bool,
}

/// A transfer the simulated sensor refused.
#[derive(Debug)]
pub enum SimError {
    /// No device acknowledged (no sensor fitted).
    Nack,
    /// A read without a measurement command before it, or a wrong command.
    Protocol,
}

impl embedded_hal::i2c::Error for SimError {
    fn kind(&self) -> ErrorKind {
        match self {
            SimError::Nack => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address),
            SimError::Protocol => ErrorKind::Other,
        }
    }
}

impl SimSensor {
    /// A sensor showing `inputs`.
    pub fn new(inputs: &Inputs) -> Self {
        let mut s = SimSensor {
            model: inputs.model(),
            behaviour: inputs.sensor,
            answer: [0; 6],
            commanded: false,
        };
        s.set(inputs);
        s
    }

    /// Shows new values from now on.
    pub fn set(&mut self, inputs: &Inputs) {
        self.model = inputs.model();
        self.behaviour = inputs.sensor;
        let mc = (inputs.temperature_c * 1000.0).round() as i32;
        let mp = (inputs.humidity_pct * 1000.0).round() as i32;
        let st = sht::raw_temperature(mc);
        let srh = sht::raw_humidity(self.model, mp);
        self.answer = sht::encode_raw(st, srh);
        if self.behaviour == Sensor::CrcError {
            self.answer[2] ^= 0x01;
        }
    }
}

impl ErrorType for SimSensor {
    type Error = SimError;
}

impl I2c for SimSensor {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), SimError> {
        if self.behaviour == Sensor::None || address != sht::DEFAULT_ADDRESS {
            return Err(SimError::Nack);
        }
        for op in operations {
            match op {
                Operation::Write(cmd) => {
                    if *cmd != self.model.command() {
                        return Err(SimError::Protocol);
                    }
                    self.commanded = true;
                }
                Operation::Read(buf) => {
                    if !std::mem::take(&mut self.commanded) || buf.len() > 6 {
                        return Err(SimError::Protocol);
                    }
                    let n = buf.len();
                    buf.copy_from_slice(&self.answer[..n]);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_core::sht::{Error, Sht};

    fn measure(inputs: &Inputs) -> Result<sht::Measurement, Error<SimError>> {
        let mut s = Sht::new(SimSensor::new(inputs), inputs.model(), sht::DEFAULT_ADDRESS);
        s.start()?;
        s.read()
    }

    #[test]
    fn the_driver_reads_back_the_simulated_values() {
        for sensor in [Sensor::Sht4x, Sensor::Sht3x] {
            let m = measure(&Inputs {
                temperature_c: -20.5,
                humidity_pct: 54.6,
                sensor,
                ..Inputs::default()
            })
            .unwrap();
            assert!((m.temperature_mc + 20_500).abs() <= 2, "{sensor:?} {m:?}");
            assert!((m.humidity_mpct - 54_600).abs() <= 2, "{sensor:?} {m:?}");
        }
    }

    #[test]
    fn no_sensor_and_crc_errors_reach_the_driver() {
        let none = Inputs {
            sensor: Sensor::None,
            ..Inputs::default()
        };
        assert!(matches!(measure(&none), Err(Error::I2c(SimError::Nack))));
        let bad = Inputs {
            sensor: Sensor::CrcError,
            ..Inputs::default()
        };
        assert!(matches!(measure(&bad), Err(Error::Crc)));
    }
}
