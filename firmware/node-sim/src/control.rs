//! The simulated inputs and the control file that changes them while the node runs.
//!
//! Format: one `key = value` per line, `#` starts a comment, blank lines are ignored.
//! Keys: `temperature_c` (°C), `humidity_pct` (%RH), `leak`, `door` (`0`/`1`/`true`/
//! `false`), `sensor` (`sht4x`, `sht3x`, `none` = no sensor answers on I2C,
//! `crc_error` = the sensor answers with a corrupted checksum). Keys not in the file
//! keep their previous value. A file with any bad line is refused whole, with
//! `file:line: message`, so a half-written file never applies half its values; a test
//! should write the file to a temporary name and rename it.

use std::path::Path;

use node_core::sht::Model;

/// What the simulated sensor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensor {
    /// An SHT4x answers.
    Sht4x,
    /// An SHT3x answers.
    Sht3x,
    /// Nothing answers on the I2C bus (sensor unplugged).
    None,
    /// An SHT4x answers with a corrupted CRC byte.
    CrcError,
}

/// The simulated physical inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// Air temperature, °C.
    pub temperature_c: f64,
    /// Relative humidity, %.
    pub humidity_pct: f64,
    /// Raw leak rope level: water present.
    pub leak: bool,
    /// Raw door contact level: open.
    pub door: bool,
    /// Sensor behaviour.
    pub sensor: Sensor,
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs {
            temperature_c: 22.0,
            humidity_pct: 45.0,
            leak: false,
            door: false,
            sensor: Sensor::Sht4x,
        }
    }
}

impl Inputs {
    /// The sensor family the driver is set to.
    pub fn model(&self) -> Model {
        match self.sensor {
            Sensor::Sht3x => Model::Sht3x,
            _ => Model::Sht4x,
        }
    }
}

/// Parses a `--sensor` / `sensor =` value.
pub fn parse_sensor(v: &str) -> Result<Sensor, String> {
    Ok(match v {
        "sht4x" => Sensor::Sht4x,
        "sht3x" => Sensor::Sht3x,
        "none" => Sensor::None,
        "crc_error" => Sensor::CrcError,
        _ => return Err(format!("{v:?}: expected sht4x, sht3x, none or crc_error")),
    })
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(format!("{v:?}: expected 0, 1, true or false")),
    }
}

fn parse_num(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("{v:?}: expected a number"))
}

/// Applies `text` (the contents of `origin`) on top of `base`.
pub fn parse(text: &str, origin: &str, base: &Inputs) -> Result<Inputs, String> {
    let mut i = base.clone();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |m: String| format!("{origin}:{}: {m}", n + 1);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| at(format!("{line:?}: expected key = value")))?;
        let v = v.trim();
        match k.trim() {
            "temperature_c" => i.temperature_c = parse_num(v).map_err(at)?,
            "humidity_pct" => i.humidity_pct = parse_num(v).map_err(at)?,
            "leak" => i.leak = parse_bool(v).map_err(at)?,
            "door" => i.door = parse_bool(v).map_err(at)?,
            "sensor" => i.sensor = parse_sensor(v).map_err(at)?,
            other => return Err(at(format!("unknown key {other:?}"))),
        }
    }
    Ok(i)
}

/// Reads and applies the control file; a missing file changes nothing.
pub fn read_file(path: &Path, base: &Inputs) -> Result<Inputs, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &path.display().to_string(), base),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(base.clone()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_apply_on_top_of_the_previous_ones() {
        let base = Inputs::default();
        let i = parse(
            "# rack A3\ntemperature_c = -20.5\n\nleak = 1  # wet\nsensor=sht3x\n",
            "c",
            &base,
        )
        .unwrap();
        assert_eq!(i.temperature_c, -20.5);
        assert_eq!(i.humidity_pct, 45.0, "kept");
        assert!(i.leak);
        assert_eq!(i.sensor, Sensor::Sht3x);
        assert_eq!(i.model(), Model::Sht3x);
    }

    #[test]
    fn a_bad_line_refuses_the_whole_file_with_its_location() {
        let base = Inputs::default();
        let e = parse("leak = 1\ndoor = maybe\n", "ctl.txt", &base).unwrap_err();
        assert_eq!(e, "ctl.txt:2: \"maybe\": expected 0, 1, true or false");
        assert!(
            parse("humidity = 3", "c", &base)
                .unwrap_err()
                .contains("c:1: unknown key")
        );
        assert!(
            parse("temperature_c 3", "c", &base)
                .unwrap_err()
                .contains("key = value")
        );
        assert!(
            parse("temperature_c = NaN", "c", &base)
                .unwrap_err()
                .contains("number")
        );
    }

    #[test]
    fn a_missing_file_changes_nothing() {
        let base = Inputs {
            door: true,
            ..Inputs::default()
        };
        assert_eq!(read_file(Path::new("/nonexistent/ctl"), &base), Ok(base));
    }
}
