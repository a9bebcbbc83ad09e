//! `dc-gateway demo`: the built-in simulated sites.
//!
//! Starts the device simulator on a free loopback port, then runs the ordinary gateway
//! against it with an embedded site: `config/demo.toml` (the normal site, 8 devices in
//! 3 rooms) or, with `--site large`, `config/demo-large.toml` (63 devices in 6 rooms,
//! every kind with a shipped Modbus profile). The demo goes through the same config
//! validation, pollers, rules, sinks and web server as a real site: only the devices
//! are simulated. One climate sensor per site (`th-a3`, `th-b1`) makes a periodic
//! excursion above 27 °C so an alarm is raised and cleared every few minutes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::{self, Connection, InfluxConfig, MqttConfig};
use crate::model::{Kind, Value};
use crate::runtime::{self, Running};
use crate::sim::{self, Gen, SimDevice, Wander};
use crate::sinks::{SinkConfig, SinkEntry};
use std::time::Duration;

/// The demo site template.
pub const DEMO_SITE: &str = include_str!("../config/demo.toml");
/// The large demo site template (`demo --site large`).
pub const DEMO_SITE_LARGE: &str = include_str!("../config/demo-large.toml");

/// Which built-in site the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DemoSite {
    /// 8 devices in 3 rooms (`config/demo.toml`).
    #[default]
    Normal,
    /// 63 devices in 6 rooms, every kind with a shipped Modbus profile
    /// (`config/demo-large.toml`).
    Large,
}

impl DemoSite {
    /// The site template, `@SIM_PORT@` still in it.
    pub fn template(self) -> &'static str {
        match self {
            DemoSite::Normal => DEMO_SITE,
            DemoSite::Large => DEMO_SITE_LARGE,
        }
    }

    /// The sensor that makes the periodic temperature excursion.
    pub fn excursion_device(self) -> &'static str {
        match self {
            DemoSite::Normal => "th-a3",
            DemoSite::Large => "th-b1",
        }
    }
}

/// A running simulator: its address and task (dropped → stops).
pub struct Simulator {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The simulated devices, to steer values (benchmarks, screenshots).
    pub devices: Vec<SimDevice>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The demo site, validated, with the simulator's port filled in.
pub fn site(sim_port: u16, listen: SocketAddr) -> anyhow::Result<config::Site> {
    site_of(DemoSite::Normal, sim_port, listen)
}

/// A built-in site, validated, with the simulator's port filled in.
pub fn site_of(which: DemoSite, sim_port: u16, listen: SocketAddr) -> anyhow::Result<config::Site> {
    let text = which
        .template()
        .replace("@SIM_PORT@", &sim_port.to_string());
    let name = match which {
        DemoSite::Normal => "<demo>/demo.toml",
        DemoSite::Large => "<demo>/demo-large.toml",
    };
    let mut site = config::parse(&text, name, Path::new("."))
        .map_err(|e| anyhow::anyhow!("the built-in demo site is invalid:\n{e}"))?;
    site.web_listen = listen;
    Ok(site)
}

/// A healthy site's values per device kind (everything else keeps the simulator's
/// defaults): a UPS on mains, a generator at rest in auto, a running cooling unit.
fn normal_values(kind: Kind) -> Vec<(&'static str, Gen)> {
    let n = |v: f64| Gen::Fixed(Value::Number(v));
    let w = |base: f64, spread: f64| {
        Gen::Wander(Wander {
            base,
            spread,
            period: Duration::from_secs(90),
            excursion: None,
        })
    };
    match kind {
        Kind::Ups => vec![
            ("output_source", Gen::Fixed(Value::Enum("normal"))),
            ("battery_charge_pct", n(100.0)),
            ("runtime_remaining_s", w(2400.0, 60.0)),
            ("battery_voltage_v", n(218.0)),
            ("battery_temperature_c", w(26.0, 0.5)),
            ("load_pct", w(42.0, 4.0)),
            ("output_voltage_v", w(230.0, 1.0)),
            ("output_frequency_hz", n(50.0)),
            ("input_voltage_v", w(228.0, 3.0)),
        ],
        Kind::Generator => vec![
            ("mode", Gen::Fixed(Value::Enum("auto"))),
            ("oil_pressure_kpa", n(0.0)),
            ("coolant_temperature_c", w(35.0, 1.0)),
            ("fuel_level_pct", n(92.0)),
            ("battery_voltage_v", w(13.2, 0.1)),
            ("mains_voltage_l1_v", w(229.0, 2.0)),
            ("mains_voltage_l2_v", w(231.0, 2.0)),
            ("mains_voltage_l3_v", w(230.0, 2.0)),
            ("mains_frequency_hz", w(50.0, 0.05)),
            ("engine_hours_h", n(412.0)),
            // At rest: no generator output until a mains failure or a test run.
            ("gen_voltage_l1_v", n(0.0)),
            ("gen_voltage_l2_v", n(0.0)),
            ("gen_voltage_l3_v", n(0.0)),
            ("gen_frequency_hz", n(0.0)),
            ("load_kw", n(0.0)),
            ("load_pct", n(0.0)),
        ],
        Kind::Cooling => vec![
            ("unit_on", Gen::Fixed(Value::Bool(true))),
            ("setpoint_c", n(22.0)),
            ("humidity_pct", w(48.0, 3.0)),
        ],
        Kind::PowerMeter => vec![
            ("voltage_l1_v", w(229.0, 2.0)),
            ("voltage_l2_v", w(231.0, 2.0)),
            ("voltage_l3_v", w(230.0, 2.0)),
            ("current_l1_a", w(38.0, 3.0)),
            ("current_l2_a", w(35.0, 3.0)),
            ("current_l3_a", w(41.0, 3.0)),
            ("active_power_kw", w(25.0, 2.0)),
            ("power_factor", n(0.95)),
            ("frequency_hz", w(50.0, 0.05)),
            ("energy_kwh", n(182_345.0)),
        ],
        _ => vec![],
    }
}

/// Start the demo site's simulated devices on `addr` (port 0 picks a free one).
pub async fn start_simulator(addr: SocketAddr) -> anyhow::Result<Simulator> {
    start_simulator_of(DemoSite::Normal, addr).await
}

/// Start a built-in site's simulated devices on `addr` (port 0 picks a free one).
pub async fn start_simulator_of(which: DemoSite, addr: SocketAddr) -> anyhow::Result<Simulator> {
    // Validate once with a placeholder port to learn the devices: one unit per device.
    let template = site_of(which, 1, "127.0.0.1:0".parse()?)?;
    let mut devices = Vec::new();
    for d in &template.devices {
        let (Connection::ModbusTcp { unit_id, .. } | Connection::ModbusRtu { unit_id, .. }) =
            d.connection
        else {
            continue;
        };
        let Some(profile) = d.profile.modbus() else {
            continue;
        };
        let mut dev = SimDevice::new(unit_id, Arc::clone(profile));
        for (point, generator) in normal_values(d.meta.kind) {
            if profile.points.iter().any(|p| p.point.name == point) {
                dev = dev.with(point, generator)?;
            }
        }
        if d.meta.id.as_ref() == which.excursion_device() {
            dev = dev.with("temperature_c", Gen::climate_excursion())?;
        }
        devices.push(dev);
    }
    let (addr, task) = sim::serve(addr, devices.clone())
        .await
        .context("cannot start the device simulator")?;
    Ok(Simulator {
        addr,
        devices,
        task,
    })
}

/// Start the gateway on the demo site. The simulator runs in this process unless
/// `external_sim` names one already running (`dc-gateway simulate`), which lets a
/// benchmark measure the gateway process apart from the simulated devices.
/// `mqtt` and `influx` are optional sink URLs; `state_dir` holds the sink buffers.
pub async fn start(
    listen: SocketAddr,
    external_sim: Option<SocketAddr>,
    mqtt: Option<&str>,
    influx: Option<&str>,
    influx_token: Option<String>,
    state_dir: &Path,
) -> anyhow::Result<(Running, Option<Simulator>)> {
    start_site(
        DemoSite::Normal,
        listen,
        external_sim,
        mqtt,
        influx,
        influx_token,
        state_dir,
    )
    .await
}

/// [`start`] for either built-in site.
pub async fn start_site(
    which: DemoSite,
    listen: SocketAddr,
    external_sim: Option<SocketAddr>,
    mqtt: Option<&str>,
    influx: Option<&str>,
    influx_token: Option<String>,
    state_dir: &Path,
) -> anyhow::Result<(Running, Option<Simulator>)> {
    let (sim_port, sim) = match external_sim {
        Some(addr) => (addr.port(), None),
        None => {
            let sim = start_simulator_of(which, "127.0.0.1:0".parse()?).await?;
            (sim.addr.port(), Some(sim))
        }
    };
    let mut site = site_of(which, sim_port, listen)?;
    site.storage.state_dir = state_dir.to_path_buf();
    if let Some(url) = mqtt {
        let cfg = MqttConfig::from_url(url, &site.name)?;
        site.sinks
            .push(SinkEntry::default_for(SinkConfig::Mqtt(cfg)));
    }
    if let Some(url) = influx {
        let cfg = InfluxConfig::from_url(url, influx_token)?;
        site.sinks
            .push(SinkEntry::default_for(SinkConfig::Influx(cfg)));
    }
    let running = runtime::start(site).await?;
    Ok((running, sim))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::sources::modbus::profile;

    #[test]
    fn large_site_has_63_devices_in_6_rooms_covering_every_kind_with_a_modbus_profile() {
        let site = site_of(DemoSite::Large, 5020, "127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(site.devices.len(), 63);
        assert_eq!(site.rooms.len(), 6);
        for r in &site.rooms {
            let n = site
                .devices
                .iter()
                .filter(|d| *d.meta.room == *r.id)
                .count();
            assert!((8..=12).contains(&n), "room {} has {n} devices", r.id);
        }
        let modbus_kinds: BTreeSet<&str> = profile::shipped()
            .into_iter()
            .map(|(file, text)| profile::parse(text, file).unwrap().kind.as_str())
            .collect();
        let kinds: BTreeSet<&str> = site.devices.iter().map(|d| d.meta.kind.as_str()).collect();
        assert_eq!(kinds, modbus_kinds);
        let units: BTreeSet<u8> = site
            .devices
            .iter()
            .filter_map(|d| match d.connection {
                Connection::ModbusTcp { unit_id, .. } => Some(unit_id),
                _ => None,
            })
            .collect();
        assert_eq!(units.len(), site.devices.len(), "one unit id per device");
        assert!(
            site.devices
                .iter()
                .any(|d| *d.meta.id == *DemoSite::Large.excursion_device())
        );
    }

    #[test]
    fn normal_site_is_unchanged_by_the_choice() {
        let a = site(5020, "127.0.0.1:0".parse().unwrap()).unwrap();
        let b = site_of(DemoSite::Normal, 5020, "127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(a.devices.len(), b.devices.len());
        assert_eq!(&*a.name, "demo");
    }
}
