//! The scripted LTE modem (`tests/it/sms_modem.py`) on the device end of a socat pty:
//! its AT behaviour follows 3GPP TS 27.005 / 27.007 and the SIM7600 and EC25 manuals
//! (cited in the script), and it decodes every PDU it is sent with PyPI's
//! `smspdudecoder`. A fake, allowed because no modem exists on the test machines; its
//! log (one JSON object per line) is the ground truth of what reached the "modem".

use std::path::{Path, PathBuf};
use std::process::Command;

use super::modbus::python;
use super::process::PeerProcess;
use super::{START_TIMEOUT, peer_tempdir, repo_root};

/// A running scripted modem; dropping it kills the script.
pub struct ScriptedModem {
    proc: PeerProcess,
    /// The script's log of commands, decoded PDUs, calls and deletions.
    pub log: PathBuf,
    control: PathBuf,
    _dir: tempfile::TempDir,
}

impl ScriptedModem {
    /// Starts the modem on `serial` (the device end of a [`super::PtyPair`]); the first
    /// `cms_first` `AT+CMGS` are refused with `+CMS ERROR: 331`.
    pub fn start(serial: &Path, cms_first: u32) -> ScriptedModem {
        let dir = peer_tempdir("modem");
        let log = dir.path().join("modem.jsonl");
        let control = dir.path().join("control");
        let script = repo_root().join("tests/it/sms_modem.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .arg("--port")
            .arg(serial)
            .arg("--log")
            .arg(&log)
            .arg("--control")
            .arg(&control)
            .arg("--cms-first")
            .arg(cms_first.to_string());
        let mut proc = PeerProcess::spawn("modem", &mut cmd, &dir.path().join("modem.out"), false);
        proc.wait_ready(START_TIMEOUT, |out| out.contains("modem ready"))
            .unwrap_or_else(|e| {
                panic!(
                    "scripted modem: {}\n(smspdudecoder and pyserial come from tests/requirements.txt: tests/.venv/bin/pip install -r tests/requirements.txt)",
                    e.message()
                )
            });
        ScriptedModem {
            proc,
            log,
            control,
            _dir: dir,
        }
    }

    /// `normal`, `error` (every command answered ERROR) or `silent`.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(&self.control, mode).expect("control file");
    }

    /// A text from `from` (E.164) arrives at the modem (stored, announced by `+CMTI`).
    /// The control file is replaced whole, so the script never reads half of it.
    pub fn receive(&self, from: &str, text: &str) {
        let tmp = self.control.with_extension("new");
        std::fs::write(&tmp, format!("text {from} {text}")).expect("control file");
        std::fs::rename(&tmp, &self.control).expect("control file");
    }

    /// The log so far, one JSON value per line.
    pub fn entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for ScriptedModem {
    fn drop(&mut self) {
        self.proc.kill();
    }
}
