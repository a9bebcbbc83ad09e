//! What `dc-gateway probe` prints: every point of a device read once, with the requests
//! sent, the raw registers (or bits) of each point and the decoded value, so a
//! technician can check a register map against the device on site.

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
                "  request: read {} {s}..{} ({c}, function {:#04x})",
                t.as_str(),
                u32::from(*s) + u32::from(*c),
                t.read_function()
            )?;
        }
        let table = ProbeTable::new(self.points.iter().map(|p| p.point));
        table.header(
            f,
            format_args!("{:8}  {:>6}  {:16}", "table", "addr", "raw"),
        )?;
        for p in &self.points {
            let raw: Vec<String> = p.raw.iter().map(|r| format!("{r:#06x}")).collect();
            table.row(
                f,
                p.point,
                format_args!(
                    "{:8}  {:>6}  {:16}",
                    p.table.as_str(),
                    format!("{:#06x}", p.address),
                    raw.join(" ")
                ),
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
        assert!(s.contains("read input 1..3 (2, function 0x04)"), "{s}");
        assert!(
            s.contains("0x0131") && s.contains("30.5 °C") && s.contains("good"),
            "{s}"
        );
    }
}
