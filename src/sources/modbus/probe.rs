//! What `dc-gateway probe` prints: every point of a device read once, with the requests
//! sent, the raw registers (or bits) of each point and the decoded value, so a
//! technician can check a register map against the device on site.
//!
//! It speaks the manuals' language: addresses in decimal as profiles and most register
//! tables write them, the hexadecimal beside, and the manual's 1-based Modicon
//! reference (`41025` for holding register 1024) beside that; ranges are inclusive
//! (`1024–1037`, 14 registers); a value that is not good says why in words.

use std::fmt;

use super::profile::Table;
use crate::model::{Quality, Value};
use crate::sources::probe_table::{ProbeTable, value_cell};

/// One point as a probe saw it.
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
    /// The line the device was read over: `host:port`, or the bus id and serial port.
    pub line: String,
    /// Unit id.
    pub unit_id: u8,
    /// Profile id.
    pub profile: String,
    /// Requests sent: `(table, start, count)`.
    pub requests: Vec<(Table, u16, u16)>,
    /// Every mapped point, in profile order.
    pub points: Vec<ProbePoint>,
}

/// The 1-based Modicon reference of a 0-based protocol address: coils 1…, discrete
/// inputs 10001…, input registers 30001…, holding registers 40001… (six digits,
/// 100001… / 300001… / 400001…, above address 9998, as the long form of the manuals).
pub fn reference(table: Table, address: u16) -> u32 {
    let a = u32::from(address) + 1;
    let (five, six) = match table {
        Table::Coil => (0, 0),
        Table::Discrete => (10_000, 100_000),
        Table::Input => (30_000, 300_000),
        Table::Holding => (40_000, 400_000),
    };
    if a <= 9_999 { five + a } else { six + a }
}

/// `1024 (0x0400, ref 41025)`: one address as the manuals write it.
pub fn address_text(table: Table, address: u16) -> String {
    format!(
        "{address} ({address:#06x}, ref {})",
        reference(table, address)
    )
}

/// `holding 1024–1037 (14 registers; 0x0400–0x040d; ref 41025–41038)`: an inclusive
/// range as the manuals write it.
pub fn range_text(table: Table, start: u16, count: u16) -> String {
    let unit = match (table.is_bits(), count) {
        (true, 1) => "bit",
        (true, _) => "bits",
        (false, 1) => "register",
        (false, _) => "registers",
    };
    let last = start.saturating_add(count.max(1) - 1);
    if count <= 1 {
        return format!(
            "{} {start} (1 {unit}; {start:#06x}; ref {})",
            table.as_str(),
            reference(table, start)
        );
    }
    format!(
        "{} {start}\u{2013}{last} ({count} {unit}; {start:#06x}\u{2013}{last:#06x}; ref {}\u{2013}{})",
        table.as_str(),
        reference(table, start),
        reference(table, last)
    )
}

impl fmt::Display for ProbeReport {
    /// A table for the terminal: point, table, address, raw registers, value, quality.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "device {} at {} unit {} (profile {})",
            self.device, self.line, self.unit_id, self.profile
        )?;
        for (t, s, c) in &self.requests {
            writeln!(
                f,
                "  request: read {} (function {:#04x})",
                range_text(*t, *s, *c),
                t.read_function()
            )?;
        }
        let table = ProbeTable::new(self.points.iter().map(|p| p.point));
        let addrs: Vec<String> = self
            .points
            .iter()
            .map(|p| address_text(p.table, p.address))
            .collect();
        let wa = crate::sources::probe_table::column_width(
            "address",
            addrs.iter().map(|a| a.chars().count()),
        );
        table.header(
            f,
            format_args!("{:8}  {:wa$}  {:16}", "table", "address", "raw"),
        )?;
        for (p, addr) in self.points.iter().zip(&addrs) {
            let raw: Vec<String> = p.raw.iter().map(|r| format!("{r:#06x}")).collect();
            table.row(
                f,
                p.point,
                format_args!("{:8}  {:wa$}  {:16}", p.table.as_str(), addr, raw.join(" ")),
                &value_cell(p.value.as_ref(), p.unit),
                p.quality,
                p.error.as_deref(),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23, item 3: decimal addresses with hex beside, the manual's 1-based
    /// reference beside the 0-based address, inclusive ranges.
    #[test]
    fn probe_speaks_the_manuals_language() {
        let cases: &[(Table, u16, u16, &str)] = &[
            (
                Table::Holding,
                1024,
                14,
                "holding 1024\u{2013}1037 (14 registers; 0x0400\u{2013}0x040d; ref 41025\u{2013}41038)",
            ),
            (
                Table::Input,
                99,
                1,
                "input 99 (1 register; 0x0063; ref 30100)",
            ),
            (
                Table::Discrete,
                33,
                6,
                "discrete 33\u{2013}38 (6 bits; 0x0021\u{2013}0x0026; ref 10034\u{2013}10039)",
            ),
            (
                Table::Coil,
                0,
                2,
                "coil 0\u{2013}1 (2 bits; 0x0000\u{2013}0x0001; ref 1\u{2013}2)",
            ),
            (
                Table::Holding,
                39424,
                2,
                "holding 39424\u{2013}39425 (2 registers; 0x9a00\u{2013}0x9a01; ref 439425\u{2013}439426)",
            ),
        ];
        for (t, start, count, want) in cases {
            assert_eq!(range_text(*t, *start, *count), *want);
        }
        assert_eq!(address_text(Table::Holding, 772), "772 (0x0304, ref 40773)");
        assert_eq!(reference(Table::Holding, 9998), 49999);
        assert_eq!(reference(Table::Holding, 9999), 410000);
    }

    #[test]
    fn probe_report_prints_a_table() {
        let r = ProbeReport {
            device: "t1".into(),
            line: "127.0.0.1:502".into(),
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
        assert!(
            s.starts_with("device t1 at 127.0.0.1:502 unit 1 (profile xy-md02)"),
            "{s}"
        );
        assert!(
            s.contains("read input 1\u{2013}2 (2 registers; 0x0001\u{2013}0x0002; ref 30002\u{2013}30003) (function 0x04)"),
            "{s}"
        );
        assert!(s.contains("1 (0x0001, ref 30002)"), "{s}");
        assert!(
            s.contains("0x0131") && s.contains("30.5 °C") && s.contains("good"),
            "{s}"
        );
    }
}
