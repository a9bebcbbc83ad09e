//! VictoriaMetrics single-node: speaks the InfluxDB line protocol (`/write`,
//! `/api/v2/write`) and lets tests read back exactly what was stored
//! (`/api/v1/export`). Series are named `measurement_field`; string fields are stored
//! as 0. Ingestion is asynchronous: reads force a flush first and poll with a deadline.
//! It answers 204 even for malformed lines, so error-path tests use InfluxDB 1.x.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::{PeerProcess, Restartable, StartFailure, start_with_retry};
use super::{
    PeerError, START_TIMEOUT, free_port, http_get, http_post, peer_tempdir, require_bin, urlencode,
};

const INSTALL: &str = "apt-get install -y --no-install-recommends victoria-metrics";

/// One stored sample from `/api/v1/export`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `__name__`, e.g. `ups_battery_charge_pct`.
    pub name: String,
    /// The other labels (the line protocol tags, plus `db` when written with `?db=`).
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// A running VictoriaMetrics on `127.0.0.1:port`. Dropping it kills it.
pub struct VictoriaMetrics {
    /// HTTP port.
    pub port: u16,
    dedup: bool,
    proc: Restartable,
    // Last: removed after the process is gone.
    dir: tempfile::TempDir,
}

impl VictoriaMetrics {
    /// Starts one that keeps duplicate samples (same series and timestamp).
    pub fn start() -> VictoriaMetrics {
        VictoriaMetrics::start_with(false)
    }

    /// Starts one; with `dedup`, `-dedup.minScrapeInterval=1ms` makes samples with the
    /// same series and timestamp count once (at-least-once resends then show up once).
    pub fn start_with(dedup: bool) -> VictoriaMetrics {
        let bin = require_bin("victoria-metrics", INSTALL);
        let dir = peer_tempdir("victoria-metrics");
        let mut vm = VictoriaMetrics {
            port: 0,
            dedup,
            proc: Restartable::stopped("victoria-metrics"),
            dir,
        };
        let (port, proc) = start_with_retry("victoria-metrics", || {
            let port = free_port();
            vm.spawn(&bin, port).map(|p| (port, p))
        });
        vm.port = port;
        vm.proc.started(proc);
        vm
    }

    fn spawn(&self, bin: &std::path::Path, port: u16) -> Result<PeerProcess, StartFailure> {
        let d = self.dir.path();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("-storageDataPath={}", d.join("data").display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-search.latencyOffset=0s")
            .arg("-loggerLevel=INFO");
        if self.dedup {
            cmd.arg("-dedup.minScrapeInterval=1ms");
        }
        let mut proc = PeerProcess::spawn(
            "victoria-metrics",
            &mut cmd,
            &d.join("victoria-metrics.log"),
            false,
        );
        let health = format!("http://127.0.0.1:{port}/health");
        proc.wait_ready(START_TIMEOUT, |log| {
            log.contains("starting http server at")
                && http_get(&health).is_ok_and(|r| r.status == 200)
        })?;
        Ok(proc)
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether it was started with deduplication.
    pub fn dedup(&self) -> bool {
        self.dedup
    }

    /// Posts line protocol to `/write?db=<db>` (the 1.x path); returns the status.
    pub fn write_lines(&self, db: &str, lines: &str) -> u16 {
        let url = format!("{}/write?db={}", self.base_url(), urlencode(db));
        match http_post(&url, lines) {
            Ok(r) => r.status,
            Err(e) => panic!("{e}"),
        }
    }

    /// Makes recently ingested samples visible to reads.
    pub fn force_flush(&self) {
        let url = format!("{}/internal/force_flush", self.base_url());
        match http_get(&url) {
            Ok(r) if r.status == 200 => {}
            Ok(r) => panic!("GET {url}: status {}: {}", r.status, r.text()),
            Err(e) => panic!("{e}"),
        }
    }

    /// The series matching `match_expr` (e.g. `{__name__=~"ups_.*"}`), one JSON object
    /// per series as `/api/v1/export` prints it: `{"metric":{..},"values":[..],
    /// "timestamps":[..]}`. Forces a flush first. Panics on HTTP failure.
    pub fn export(&self, match_expr: &str) -> Vec<serde_json::Value> {
        self.try_export(match_expr)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`VictoriaMetrics::export`], returning the failure instead (e.g. while stopped).
    pub fn try_export(&self, match_expr: &str) -> Result<Vec<serde_json::Value>, PeerError> {
        let flush = format!("{}/internal/force_flush", self.base_url());
        http_get(&flush)?;
        let url = format!(
            "{}/api/v1/export?match[]={}",
            self.base_url(),
            urlencode(match_expr)
        );
        let resp = http_get(&url)?;
        if resp.status != 200 {
            return Err(PeerError::Http {
                method: "GET".into(),
                url,
                reason: format!("status {}: {}", resp.status, resp.text()),
            });
        }
        let text = resp.text();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| PeerError::Http {
                    method: "GET".into(),
                    url: url.clone(),
                    reason: format!("bad export line {l:?}: {e}"),
                })
            })
            .collect()
    }

    /// Every sample of the series matching `match_expr`, flattened and sorted by name,
    /// labels and timestamp.
    pub fn samples(&self, match_expr: &str) -> Vec<Sample> {
        let mut out = Vec::new();
        for series in self.export(match_expr) {
            let mut labels: BTreeMap<String, String> = series["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let name = labels.remove("__name__").unwrap_or_default();
            let values = series["values"].as_array().cloned().unwrap_or_default();
            let stamps = series["timestamps"].as_array().cloned().unwrap_or_default();
            for (v, t) in values.iter().zip(stamps.iter()) {
                out.push(Sample {
                    name: name.clone(),
                    labels: labels.clone(),
                    value: v.as_f64().unwrap_or(f64::NAN),
                    timestamp_ms: t.as_i64().unwrap_or(0),
                });
            }
        }
        out.sort_by(|a, b| {
            (&a.name, &a.labels, a.timestamp_ms).cmp(&(&b.name, &b.labels, b.timestamp_ms))
        });
        out
    }

    /// Polls [`VictoriaMetrics::samples`] every 100 ms until `cond` holds; returns the
    /// samples then, or a timeout error with the last count.
    pub fn wait_samples(
        &self,
        match_expr: &str,
        cond: impl Fn(&[Sample]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Sample>, PeerError> {
        let start = Instant::now();
        loop {
            let samples = self.samples(match_expr);
            if cond(&samples) {
                return Ok(samples);
            }
            if start.elapsed() >= timeout {
                return Err(PeerError::Timeout {
                    what: format!("VictoriaMetrics samples matching {match_expr}"),
                    waited: start.elapsed(),
                    last: format!(
                        "{} samples: {:?}",
                        samples.len(),
                        samples.iter().take(10).collect::<Vec<_>>()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it with SIGTERM (it flushes to disk), waiting for it.
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(15));
    }

    /// Starts it again on the same port and data dir. Panics if the port was taken.
    pub fn start_again(&mut self) {
        self.proc.assert_stopped("VictoriaMetrics");
        let start = self.spawn(&require_bin("victoria-metrics", INSTALL), self.port);
        self.proc.restarted(self.port, start);
    }

    /// Its log since the last (re)start.
    pub fn log(&self) -> String {
        self.proc.log()
    }
}
