//! `dc-gateway demo`: the built-in simulated site.
//!
//! Starts the device simulator on a free loopback port, then runs the ordinary gateway
//! against it with the site in `config/demo.toml` (embedded). The demo goes through
//! the same config validation, pollers, rules, sinks and web server as a real site:
//! only the devices are simulated. One climate sensor (`th-a3`) makes a periodic
//! excursion above 27 °C so an alarm is raised and cleared every few minutes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::{self, Connection, InfluxConfig, MqttConfig};
use crate::runtime::{self, Running};
use crate::sim::{self, Gen, SimDevice};

/// The demo site template.
pub const DEMO_SITE: &str = include_str!("../config/demo.toml");

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
    let text = DEMO_SITE.replace("@SIM_PORT@", &sim_port.to_string());
    let mut site = config::parse(&text, "<demo>/demo.toml", Path::new("."))
        .map_err(|e| anyhow::anyhow!("the built-in demo site is invalid:\n{e}"))?;
    site.web_listen = listen;
    Ok(site)
}

/// Start the simulator and the gateway. `mqtt` and `influx` are optional URLs.
pub async fn start(
    listen: SocketAddr,
    mqtt: Option<&str>,
    influx: Option<&str>,
    influx_token: Option<String>,
) -> anyhow::Result<(Running, Simulator)> {
    // Validate once with a placeholder port to learn the devices, then start the
    // simulator with one unit per device.
    let template = site(1, listen)?;
    let mut devices = Vec::new();
    for d in &template.devices {
        let Connection::ModbusTcp { unit_id, .. } = d.connection;
        let mut dev = SimDevice::new(unit_id, Arc::clone(&d.profile));
        if d.meta.id.as_ref() == "th-a3" {
            dev = dev.with("temperature_c", Gen::climate_excursion())?;
        }
        devices.push(dev);
    }
    let (addr, task) = sim::serve("127.0.0.1:0".parse()?, devices.clone())
        .await
        .context("cannot start the device simulator")?;
    let sim = Simulator { addr, devices, task };

    let mut site = site(addr.port(), listen)?;
    if let Some(url) = mqtt {
        site.mqtt = Some(MqttConfig::from_url(url, &site.name).map_err(anyhow::Error::msg)?);
    }
    if let Some(url) = influx {
        site.influx = Some(InfluxConfig::from_url(url, influx_token).map_err(anyhow::Error::msg)?);
    }
    let running = runtime::start(site).await?;
    Ok((running, sim))
}
