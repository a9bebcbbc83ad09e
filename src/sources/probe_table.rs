//! The table `dc-gateway probe` prints, whatever the protocol: one row per point, the
//! point name first, then the protocol's own columns (Modbus table, address and
//! registers; SNMP OID and raw values), then the decoded value with its unit, the
//! quality and, in brackets, why the read went wrong.
//!
//! A technician compares these tables across devices on site, so the shared columns
//! keep the same place and width for every protocol: the point column is as wide as
//! the longest point name, the value column is right-aligned in 14 characters.

use std::fmt;

use crate::model::{Quality, Value};

/// Width of a column: its widest cell, at least as wide as its header.
pub(crate) fn column_width(header: &str, cells: impl IntoIterator<Item = usize>) -> usize {
    cells.into_iter().max().unwrap_or(0).max(header.len())
}

/// A decoded value with its unit (`30.5 °C`), or `-` when nothing was decoded.
pub(crate) fn value_cell(value: Option<&Value>, unit: &str) -> String {
    match value {
        Some(v) if unit.is_empty() => v.to_string(),
        Some(v) => format!("{v} {unit}"),
        None => "-".to_string(),
    }
}

/// The layout of one probe table.
pub(crate) struct ProbeTable {
    point_width: usize,
}

impl ProbeTable {
    /// A table whose point column fits every name in `points`.
    pub(crate) fn new<'a>(points: impl IntoIterator<Item = &'a str>) -> ProbeTable {
        ProbeTable {
            point_width: column_width("point", points.into_iter().map(str::len)),
        }
    }

    /// The header line; `middle` holds the protocol's own column headers.
    pub(crate) fn header(
        &self,
        f: &mut fmt::Formatter<'_>,
        middle: fmt::Arguments<'_>,
    ) -> fmt::Result {
        let w = self.point_width;
        writeln!(f, "  {:w$}  {middle}  {:>14}  quality", "point", "value")
    }

    /// One point's line; `middle` holds the protocol's own cells, `value` the
    /// [`value_cell`].
    pub(crate) fn row(
        &self,
        f: &mut fmt::Formatter<'_>,
        point: &str,
        middle: fmt::Arguments<'_>,
        value: &str,
        quality: Quality,
        note: Option<&str>,
    ) -> fmt::Result {
        let w = self.point_width;
        write!(
            f,
            "  {point:w$}  {middle}  {value:>14}  {}",
            quality.as_str()
        )?;
        if let Some(n) = note {
            write!(f, " ({n})")?;
        }
        writeln!(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sample(ProbeTable);

    impl fmt::Display for Sample {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.header(f, format_args!("{:4}", "oid"))?;
            self.0.row(
                f,
                "load_pct",
                format_args!("{:4}", "1.2"),
                &value_cell(Some(&Value::Number(47.0)), "%"),
                Quality::Good,
                None,
            )?;
            self.0.row(
                f,
                "t",
                format_args!("{:4}", "1.3"),
                &value_cell(None, "°C"),
                Quality::Timeout,
                Some("no answer"),
            )
        }
    }

    #[test]
    fn columns_line_up_and_the_note_follows_the_quality() {
        let t = ProbeTable::new(["load_pct", "t"]);
        let s = Sample(t).to_string();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines,
            [
                "  point     oid            value  quality",
                "  load_pct  1.2             47 %  good",
                "  t         1.3                -  timeout (no answer)",
            ],
            "{s}"
        );
    }

    #[test]
    fn point_column_is_at_least_its_header() {
        assert_eq!(column_width("point", []), 5);
        assert_eq!(column_width("point", [2, 9]), 9);
        assert_eq!(value_cell(Some(&Value::Bool(true)), ""), "true");
    }
}
