//! The GPIO source: dry contacts (fire panel relays, leak controllers, door reed
//! contacts, surge protector signalling, mains-present relays) on the board's GPIO
//! header, read through the Linux GPIO character device. See docs/GPIO.md.
//!
//! Each configured device (`[devices.gpio]`) is one logical device holding its own
//! lines; several devices share one header. A line's edge becomes a `Poll` as soon as
//! the line is steady (no polling for changes); once per poll interval the lines are
//! read anyway, so staleness and `comm_lost` stay meaningful. The kernel sits behind
//! [`backend::Backend`]: [`kernel`] on a board, [`fake::FakeGpio`] in tests.

pub mod backend;
pub mod config;
pub mod fake;
pub mod kernel;
mod task;

use std::fmt::Write;

pub use backend::{Backend, Bias, LineAt, LineSpec, use_backend};
pub use config::{GpioConnection, GpioProfile, RawGpio, parse_profile, shipped_profiles};
pub use task::{GpioDevice, spawn};

use crate::config::{DeviceConfig, Site};
use crate::sources::Connection;

/// The GPIO devices of a site, one task each.
pub fn devices(site: &Site) -> Vec<GpioDevice> {
    site.devices.iter().filter_map(device).collect()
}

/// A configured device as the GPIO task sees it (`None` unless it is a GPIO device).
pub fn device(d: &DeviceConfig) -> Option<GpioDevice> {
    let Connection::Gpio(conn) = &d.connection else {
        return None;
    };
    Some(GpioDevice {
        meta: d.meta.clone(),
        conn: conn.clone(),
        poll_interval: d.poll_interval,
    })
}

/// `dc-gateway probe` of a GPIO device: request its lines, read them once and print
/// one row per point: the line, where it was found, its bias and active level, and the
/// point's value.
pub fn probe(dev: &GpioDevice, backend: &dyn Backend) -> Result<String, backend::Error> {
    let specs: Vec<LineSpec> = dev.conn.lines.iter().map(|(_, l)| l.clone()).collect();
    let mut lines = backend.request(&format!("dc-gateway-probe:{}", dev.meta.id), &specs)?;
    let values = lines.values()?;
    let found = lines.found();
    let pw = dev
        .conn
        .lines
        .iter()
        .map(|(p, _)| p.name.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let lw = specs
        .iter()
        .map(|s| s.at.to_string().len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}): {} lines, debounce {} ms",
        dev.meta.id,
        dev.meta.kind,
        specs.len(),
        dev.conn.debounce.as_millis()
    );
    let _ = writeln!(
        out,
        "  {:pw$}  {:lw$}  {:14}  {:9}  {:6}  {:>5}",
        "point", "line", "found", "bias", "active", "value"
    );
    for (i, ((p, s), v)) in dev.conn.lines.iter().zip(&values).enumerate() {
        let bias = match s.bias {
            Bias::AsIs => "as_is",
            Bias::PullUp => "pull_up",
            Bias::PullDown => "pull_down",
            Bias::Disabled => "disabled",
        };
        let _ = writeln!(
            out,
            "  {:pw$}  {:lw$}  {:14}  {:9}  {:6}  {:>5}",
            p.name,
            s.at.to_string(),
            found.get(i).map(String::as_str).unwrap_or("?"),
            bias,
            if s.active_low { "low" } else { "high" },
            v
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
