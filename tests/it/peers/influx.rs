//! InfluxDB 1.x (`influxd` 1.6 from Debian): the peer for error paths, because it
//! answers like a real database — 400 with a message for a bad line (after storing the
//! good ones: partial write), 404 for an unknown database, 401 without credentials when
//! auth is on. 1.x API only (`/write?db=`, `/query`); there is no `/api/v2/write` and no
//! CLI, so everything goes over HTTP.
//!
//! With auth, the admin user is created before anything else: InfluxDB 1.x lets the
//! first admin be created without credentials even with `auth-enabled = true`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use super::process::{PeerProcess, Restartable, StartFailure, start_with_retry};
use super::{
    HttpResponse, PeerError, START_TIMEOUT, free_port, http_get, http_post, peer_tempdir,
    require_bin, urlencode,
};

const INSTALL: &str = "apt-get install -y --no-install-recommends influxdb";

/// A running `influxd` on `127.0.0.1:http_port`. Dropping it kills it.
pub struct Influx1 {
    /// The HTTP API port.
    pub http_port: u16,
    /// The RPC (backup/restore) port it also binds.
    pub bind_port: u16,
    auth: Option<(String, String)>,
    proc: Restartable,
    // Last: removed after the process is gone.
    dir: tempfile::TempDir,
}

impl Influx1 {
    /// Starts one; with `auth = Some((user, pass))`, authentication is on and `user` is
    /// an admin. Panics when influxd is missing or does not come up.
    pub fn start(auth: Option<(&str, &str)>) -> Influx1 {
        let bin = require_bin("influxd", INSTALL);
        let dir = peer_tempdir("influxdb");
        let mut db = Influx1 {
            http_port: 0,
            bind_port: 0,
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
            proc: Restartable::stopped("influxd"),
            dir,
        };
        let (http_port, bind_port, proc) = start_with_retry("influxd", || {
            let (http_port, bind_port) = (free_port(), free_port());
            db.write_config(http_port, bind_port);
            db.spawn(&bin, http_port).map(|p| (http_port, bind_port, p))
        });
        db.http_port = http_port;
        db.bind_port = bind_port;
        db.proc.started(proc);
        if let Some((user, pass)) = db.auth.clone() {
            let q = format!(
                "CREATE USER \"{}\" WITH PASSWORD '{}' WITH ALL PRIVILEGES",
                user.replace('"', "\\\""),
                pass.replace('\'', "\\'")
            );
            let url = format!("{}/query?q={}", db.base_url(), urlencode(&q));
            match http_post(&url, "") {
                Ok(r) if r.status == 200 && !r.text().contains("\"error\"") => {}
                Ok(r) => panic!(
                    "influxd: creating admin {user}: status {}: {}",
                    r.status,
                    r.text()
                ),
                Err(e) => panic!("influxd: creating admin {user}: {e}"),
            }
        }
        db
    }

    fn write_config(&self, http_port: u16, bind_port: u16) {
        let d = self.dir.path();
        let conf = format!(
            r#"reporting-disabled = true
bind-address = "127.0.0.1:{bind_port}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  index-version = "inmem"

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth}
  log-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false
"#,
            d = d.display(),
            auth = self.auth.is_some()
        );
        super::write_file(&d.join("influxdb.conf"), conf);
    }

    fn spawn(&self, bin: &std::path::Path, http_port: u16) -> Result<PeerProcess, StartFailure> {
        let d = self.dir.path();
        let mut cmd = Command::new(bin);
        cmd.arg("run").arg("-config").arg(d.join("influxdb.conf"));
        cmd.env("INFLUXDB_DATA_QUERY_LOG_ENABLED", "false");
        let mut proc = PeerProcess::spawn("influxd", &mut cmd, &d.join("influxd.log"), false);
        let ping = format!("http://127.0.0.1:{http_port}/ping");
        proc.wait_ready(START_TIMEOUT, |log| {
            log.contains("Listening on HTTP")
                && http_get(&ping)
                    .is_ok_and(|r| r.status == 204 && r.header("x-influxdb-version").is_some())
        })?;
        Ok(proc)
    }

    /// `http://127.0.0.1:http_port`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The admin credentials it was started with.
    pub fn auth(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    fn cred_params(&self) -> String {
        match &self.auth {
            Some((u, p)) => format!("&u={}&p={}", urlencode(u), urlencode(p)),
            None => String::new(),
        }
    }

    /// Creates a database (as the admin when auth is on). Panics on failure.
    pub fn create_db(&self, name: &str) {
        let q = format!("CREATE DATABASE \"{}\"", name.replace('"', "\\\""));
        let v = self.query("", &q);
        assert!(
            v.to_string().find("\"error\"").is_none(),
            "influxd: {q}: {v}"
        );
    }

    /// Posts line protocol to `/write?db=<db>` (with the admin credentials when auth is
    /// on); returns the whole response so tests can check 204/400/404 and the message.
    pub fn write(&self, db: &str, lines: &str) -> HttpResponse {
        let url = format!(
            "{}/write?db={}{}",
            self.base_url(),
            urlencode(db),
            self.cred_params()
        );
        http_post(&url, lines).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs InfluxQL (`db` may be empty for server-level statements) and returns the JSON
    /// body. Panics on transport failure or a non-2xx status.
    pub fn query(&self, db: &str, influxql: &str) -> serde_json::Value {
        self.try_query(db, influxql)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Influx1::query`], returning the failure instead.
    pub fn try_query(&self, db: &str, influxql: &str) -> Result<serde_json::Value, PeerError> {
        let url = format!(
            "{}/query?db={}&epoch=ms&q={}{}",
            self.base_url(),
            urlencode(db),
            urlencode(influxql),
            self.cred_params()
        );
        let resp = http_post(&url, "")?;
        let fail = |reason: String| PeerError::Http {
            method: "POST".into(),
            url: url.clone(),
            reason,
        };
        if !(200..300).contains(&resp.status) {
            return Err(fail(format!("status {}: {}", resp.status, resp.text())));
        }
        resp.json()
            .map_err(|e| fail(format!("bad JSON {:?}: {e}", resp.text())))
    }

    /// The rows an InfluxQL `SELECT` returns, each as `column → value` with the series'
    /// tags (from `GROUP BY`) merged in and the series name under `"name"`. Times are
    /// epoch milliseconds. Panics if the result holds an error.
    pub fn rows(&self, db: &str, influxql: &str) -> Vec<BTreeMap<String, serde_json::Value>> {
        let v = self.query(db, influxql);
        let mut out = Vec::new();
        for result in v["results"].as_array().cloned().unwrap_or_default() {
            if let Some(err) = result.get("error") {
                panic!("influxd: {influxql}: {err}");
            }
            for series in result["series"].as_array().cloned().unwrap_or_default() {
                let columns: Vec<String> = series["columns"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .map(|s| s.as_str().unwrap_or_default().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                for values in series["values"].as_array().cloned().unwrap_or_default() {
                    let mut row: BTreeMap<String, serde_json::Value> = BTreeMap::new();
                    row.insert("name".into(), series["name"].clone());
                    if let Some(tags) = series["tags"].as_object() {
                        for (k, t) in tags {
                            row.insert(k.clone(), t.clone());
                        }
                    }
                    for (c, val) in columns
                        .iter()
                        .zip(values.as_array().cloned().unwrap_or_default())
                    {
                        row.insert(c.clone(), val);
                    }
                    out.push(row);
                }
            }
        }
        out
    }

    /// Stops it with SIGTERM, waiting for it.
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(15));
    }

    /// Starts it again on the same ports and data dirs. Panics if a port was taken.
    pub fn start_again(&mut self) {
        self.proc.assert_stopped("Influx1");
        let start = self.spawn(&require_bin("influxd", INSTALL), self.http_port);
        self.proc.restarted(self.http_port, start);
    }

    /// Its log since the last (re)start.
    pub fn log(&self) -> String {
        self.proc.log()
    }
}
