//! Modbus TCP lines: one connection per `host:port`, shared by every device (unit id)
//! behind it, with requests serialised by the line task ([`super::line`]).
//!
//! Why one connection per endpoint: a Modbus TCP gateway in front of an RS-485 bus
//! (Moxa MGate, DSE890, an IntelliSlot card ...) forwards one request at a time to its
//! bus anyway, and many accept only a few connections. Several connections would only
//! queue inside the gateway, where a dead slave's wait is invisible to our timeouts and
//! eats the other devices' budget. Serialising here makes a gateway behave exactly like
//! a local RS-485 bus: per-device timeouts, healthy devices first, a dead slave backed
//! off. A plain Modbus TCP device is a line with one device.
//!
//! Every connect and every request runs under `tokio::time::timeout` (tokio-modbus has
//! no timeouts). After a timeout or a reply that does not match the request the
//! connection is closed: the late reply then goes to a closed socket and can never be
//! taken as the answer to the next request (tokio-modbus checks transaction ids, but
//! restarts them with every new context). The next request reconnects at once; only
//! failed connects back off.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_modbus::Slave;
use tokio_modbus::client::Context;
use tokio_modbus::prelude::SlaveContext;

use super::Error;
use super::line;
use super::plan::Read;
use super::probe::ProbeReport;
use super::profile::Profile;
use super::station::{self, BusDevice, Link, Outcome};
use crate::model::{Device, Poll, Quality};

/// A Modbus TCP device to poll, alone on its connection.
#[derive(Debug, Clone)]
pub struct TcpDevice {
    /// Identity carried by every poll.
    pub meta: Device,
    /// `host:port` of the device or of the Modbus TCP gateway in front of it.
    pub addr: String,
    /// Unit id (slave address) behind the endpoint.
    pub unit_id: u8,
    /// Period between polls.
    pub poll_interval: Duration,
    /// Limit for connecting and for each request.
    pub timeout: Duration,
    /// Register map.
    pub profile: Arc<Profile>,
}

impl TcpDevice {
    /// The device as a member of a line.
    pub fn bus_device(&self) -> BusDevice {
        BusDevice {
            meta: self.meta.clone(),
            unit_id: self.unit_id,
            poll_interval: self.poll_interval,
            timeout: self.timeout,
            profile: Arc::clone(&self.profile),
        }
    }
}

/// Every device reached through one `host:port`.
#[derive(Debug, Clone)]
pub struct TcpLine {
    /// `host:port`.
    pub addr: String,
    /// Devices behind it, in config order (unit ids differ).
    pub devices: Vec<BusDevice>,
}

/// Start polling one device on its own connection. The task runs until the receiver
/// is dropped (or the handle is aborted).
pub fn spawn(dev: TcpDevice, tx: mpsc::Sender<Poll>) -> JoinHandle<()> {
    spawn_tcp(
        TcpLine {
            addr: dev.addr.clone(),
            devices: vec![dev.bus_device()],
        },
        tx,
    )
}

/// Start polling every device of a TCP line over one connection, now.
pub fn spawn_tcp(line: TcpLine, tx: mpsc::Sender<Poll>) -> JoinHandle<()> {
    spawn_tcp_at(line, Duration::ZERO, tx)
}

/// Start polling every device of a TCP line over one connection, its first tick
/// `offset` from now (see [`crate::sources::stagger`]).
pub fn spawn_tcp_at(line: TcpLine, offset: Duration, tx: mpsc::Sender<Poll>) -> JoinHandle<()> {
    let link = TcpLink {
        addr: line.addr,
        ctx: None,
    };
    tokio::spawn(line::run(
        link,
        line.devices,
        station::MAX_BACKOFF,
        offset,
        tx,
    ))
}

/// Read every point of a device once and report raw and decoded values (the
/// `dc-gateway probe` command). Only a failed connection is an error; a failed read
/// shows in the points' quality and `error`.
pub async fn probe(dev: &TcpDevice) -> Result<ProbeReport, Error> {
    let device = dev.meta.id.to_string();
    let stream =
        match tokio::time::timeout(dev.timeout, TcpStream::connect(dev.addr.as_str())).await {
            Err(_) => {
                return Err(Error::ConnectTimeout {
                    device,
                    addr: dev.addr.clone(),
                    timeout: dev.timeout,
                });
            }
            Ok(Err(source)) => {
                return Err(Error::Connect {
                    device,
                    addr: dev.addr.clone(),
                    source,
                });
            }
            Ok(Ok(stream)) => stream,
        };
    let mut link = TcpLink {
        addr: dev.addr.clone(),
        ctx: Some(attach(stream)),
    };
    Ok(station::probe_device(&mut link, &dev.bus_device()).await)
}

fn attach(stream: TcpStream) -> Context {
    let _ = stream.set_nodelay(true);
    tokio_modbus::client::tcp::attach_slave(stream, Slave(1))
}

/// One TCP connection (see the module docs).
pub(crate) struct TcpLink {
    addr: String,
    ctx: Option<Context>,
}

impl Link for TcpLink {
    fn name(&self) -> &str {
        &self.addr
    }

    fn is_open(&self) -> bool {
        self.ctx.is_some()
    }

    async fn open(&mut self, timeout: Duration) -> Result<(), (Quality, String)> {
        match tokio::time::timeout(timeout, TcpStream::connect(self.addr.as_str())).await {
            Err(_) => Err((
                Quality::Timeout,
                format!("no connection within {} ms", timeout.as_millis()),
            )),
            Ok(Err(e)) => Err((Quality::CommError, format!("cannot connect: {e}"))),
            Ok(Ok(stream)) => {
                self.ctx = Some(attach(stream));
                Ok(())
            }
        }
    }

    fn close(&mut self) {
        self.ctx = None;
    }

    async fn read(&mut self, unit: u8, read: &Read, timeout: Duration) -> Outcome {
        let Some(ctx) = self.ctx.as_mut() else {
            return Outcome::Link("not connected".into());
        };
        ctx.set_slave(Slave(unit));
        let outcome = station::call(ctx, read, timeout).await;
        if matches!(
            outcome,
            Outcome::Timeout | Outcome::Garbled(..) | Outcome::Link(_)
        ) {
            // A late reply must go to a closed socket, never to the next request.
            self.ctx = None;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceMeta, Kind};
    use crate::sources::modbus::profile;

    fn dev(interval_ms: u64) -> TcpDevice {
        let (_, text) = profile::shipped()[0];
        TcpDevice {
            meta: Arc::new(DeviceMeta {
                id: "t1".into(),
                name: "t1".into(),
                label: None,
                room: "r".into(),
                kind: Kind::Climate,
            }),
            addr: "127.0.0.1:1".into(),
            unit_id: 1,
            poll_interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(100),
            profile: Arc::new(profile::parse(text, "xy-md02.toml").unwrap()),
        }
    }

    #[tokio::test]
    async fn refused_connection_still_emits_a_poll_per_tick() {
        // Port 1 on loopback refuses connections.
        let (tx, mut rx) = mpsc::channel(16);
        let h = spawn(dev(50), tx);
        for _ in 0..4 {
            let poll = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(!poll.comm_ok);
            assert_eq!(poll.samples.len(), 2);
            assert!(
                poll.samples
                    .iter()
                    .all(|s| s.quality == Quality::CommError && s.value.is_none())
            );
        }
        h.abort();
    }

    #[tokio::test]
    async fn probe_of_a_refusing_device_names_it() {
        let e = probe(&dev(50)).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("device t1 at 127.0.0.1:1: cannot connect"),
            "{e}"
        );
    }
}
