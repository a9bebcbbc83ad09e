//! A serial line for tests: a `socat` pty pair, two symlinks in a temp dir
//! (`device` for the Modbus server, `gateway` for the code under test). It stands for
//! an RS-485 bus: bytes written on one end come out of the other, a few milliseconds
//! per frame. A pty ignores the baud rate and, on some kernels, refuses parity (EINVAL
//! from tcsetattr), so tests use 8N2: the same 11-bit character as the Modbus default
//! 8E1.
//!
//! [`PtyPair::unplug`] kills socat: both ends hang up (EOF/EIO for whoever holds
//! them) and the links dangle, as when a USB adapter is pulled. [`PtyPair::replug`]
//! starts socat again with the same link paths (new pty numbers behind them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dc_gateway::sources::modbus::{BusDevice, Parity, RtuBus, SerialSettings};

use super::process::PeerProcess;
use super::{START_TIMEOUT, peer_tempdir, require_bin};

/// A running pty pair; dropping it kills socat.
pub struct PtyPair {
    dir: tempfile::TempDir,
    proc: Option<PeerProcess>,
    /// The Modbus server's end.
    pub device: PathBuf,
    /// The gateway's end.
    pub gateway: PathBuf,
}

impl PtyPair {
    /// Starts socat; panics with the install command when it is missing.
    pub fn start() -> PtyPair {
        let dir = peer_tempdir("pty");
        let device = dir.path().join("ttyDEVICE");
        let gateway = dir.path().join("ttyGATEWAY");
        let mut pair = PtyPair {
            dir,
            proc: None,
            device,
            gateway,
        };
        pair.replug();
        pair
    }

    /// Kills socat (SIGKILL): both ends hang up.
    pub fn unplug(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts socat again with the same link paths and waits until both exist.
    pub fn replug(&mut self) {
        assert!(
            self.proc.is_none(),
            "PtyPair::replug: still plugged in; unplug() first"
        );
        let socat = require_bin("socat", "apt-get install -y socat");
        let link = |p: &Path| format!("pty,raw,echo=0,link={}", p.display());
        let mut cmd = Command::new(socat);
        cmd.args(["-d", "-d", &link(&self.device), &link(&self.gateway)]);
        let mut proc =
            PeerProcess::spawn("socat", &mut cmd, &self.dir.path().join("socat.log"), false);
        let (device, gateway) = (self.device.clone(), self.gateway.clone());
        proc.wait_ready(START_TIMEOUT, |log| {
            log.contains("starting data transfer loop") && device.exists() && gateway.exists()
        })
        .unwrap_or_else(|e| panic!("socat pty pair: {}", e.message()));
        self.proc = Some(proc);
        // The links exist; give socat a moment to enter its transfer loop.
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl PtyPair {
    /// A bus `id` with `devices` on the gateway's end: 19200 baud 8N2 (the same
    /// 11-bit character as 8E1; a pty refuses parity on some kernels).
    pub fn bus(&self, id: &str, devices: Vec<BusDevice>) -> RtuBus {
        RtuBus {
            id: id.into(),
            serial: SerialSettings {
                port: self.gateway.display().to_string(),
                baud: 19_200,
                parity: Parity::None,
                data_bits: 8,
                stop_bits: 2,
                frame_gap: None,
            },
            devices,
        }
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        self.unplug();
    }
}
