//! The scripted ONVIF recorder (`tests/it/onvif_recorder.py`): GetRecordingSummary of
//! the Recording Search service behind a WS-Security UsernameToken, every request and
//! reply validated against the ONVIF schema shipped in PyPI's `onvif-zeep` (with lxml).
//! A fake, allowed because no recorder exists on the test machines; its log (one JSON
//! object per request) is the ground truth of what reached the "recorder".

use std::process::Command;

use super::modbus::python;
use super::process::PeerProcess;
use super::{START_TIMEOUT, peer_tempdir, repo_root};

/// A running scripted recorder.
pub struct OnvifRecorder {
    _proc: PeerProcess,
    log: std::path::PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl OnvifRecorder {
    /// Starts a recorder accepting `user`/`password`, serving one Recording Search
    /// service per `(name, days kept)` at `/<name>/onvif/search_service`.
    pub fn start(user: &str, password: &str, recorders: &[(&str, f64)]) -> OnvifRecorder {
        let dir = peer_tempdir("onvif");
        let log = dir.path().join("requests.jsonl");
        let out = dir.path().join("recorder.out");
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("tests/it/onvif_recorder.py"))
            .args([
                "--port",
                "0",
                "--user",
                user,
                "--password",
                password,
                "--log",
            ])
            .arg(&log);
        for (name, days) in recorders {
            cmd.arg("--recorder").arg(format!("{name}={days}"));
        }
        let mut proc = PeerProcess::spawn("onvif recorder", &mut cmd, &out, false);
        proc.wait_ready(START_TIMEOUT, |o| o.contains("onvif recorder ready on port"))
            .unwrap_or_else(|e| {
                panic!(
                    "onvif recorder: {}\n(onvif-zeep and lxml come from tests/requirements.txt: tests/.venv/bin/pip install -r tests/requirements.txt)",
                    e.message()
                )
            });
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let port = text
            .split("ready on port ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("onvif recorder printed no port: {text}"));
        OnvifRecorder {
            _proc: proc,
            log,
            port,
            _dir: dir,
        }
    }

    /// The search service URL of recorder `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}/onvif/search_service", self.port)
    }

    /// The requests so far, one JSON value each.
    pub fn entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
