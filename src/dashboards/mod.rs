//! Grafana dashboards generated for a site (`dc-gateway dashboards`).
//!
//! From a validated [`Site`] this writes Grafana's classic dashboard JSON model
//! (`schemaVersion` [`SCHEMA_VERSION`], the model of Grafana [`GRAFANA_VERSION`]) and
//! the provisioning files that load them:
//!
//! ```text
//! OUT/wall.json power.json cooling.json climate.json alarms.json gateway.json
//! OUT/provisioning/datasources/dc-gateway.yaml   # InfluxDB (InfluxQL), uid dcgw-influxdb
//! OUT/provisioning/dashboards/dc-gateway.yaml    # file provider for the JSON files
//! ```
//!
//! Invariants:
//! - Output depends only on the site (and the time zone): the same site gives
//!   byte-identical files, so the shipped `dashboards/` can be compared with a fresh
//!   run in a test.
//! - Every colour comes from a device's effective rules after overrides
//!   ([`thresholds`]); nothing is hard-coded per device.
//! - Every query is InfluxQL over the schema in `docs/INTERFACES.md` (measurement =
//!   device kind; tags `site`, `room`, `device`, `label`; fields = canonical points and
//!   `comm_ok`; measurement `alarm`), answered by InfluxDB 1.x and by InfluxDB 2.x
//!   through its v1-compatible API with a DBRP mapping (`docs/GRAFANA.md`).
//! - Panels exist only for points some device writes.
//! - No secret is written: the datasource reads the token (or password) from an
//!   environment variable of the Grafana server.

mod boards;
pub mod panels;
pub mod thresholds;

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::config::{InfluxApi, Site};

/// Grafana release whose dashboard model the JSON follows (and whose
/// `@grafana/schema` types it is checked against).
pub const GRAFANA_VERSION: &str = "12.4";
/// `schemaVersion` of Grafana [`GRAFANA_VERSION`]'s dashboard model.
pub const SCHEMA_VERSION: u32 = 42;
/// Time zone of a site that names none (CONTRACTS.md).
pub const DEFAULT_TIME_ZONE: &str = crate::texts::time::DEFAULT_TIME_ZONE;
/// The dashboards, by file stem, in the order they are written.
pub const BOARDS: [&str; 6] = ["wall", "power", "cooling", "climate", "alarms", "gateway"];
/// Environment variable the provisioned datasource reads the InfluxDB 2 token from.
pub const TOKEN_ENV: &str = "DCGW_INFLUX_TOKEN";
/// Environment variable the provisioned datasource reads an InfluxDB 1.x password from.
pub const PASSWORD_ENV: &str = "DCGW_INFLUX_PASSWORD";

/// Why the dashboards could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The time zone is not an IANA zone name the tz database knows (or `utc`/`browser`).
    #[error("unknown time zone {0:?}: use an IANA zone name such as Asia/Ho_Chi_Minh")]
    TimeZone(String),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Encoding JSON failed (not expected for values built here).
    #[error("cannot encode {file}: {source}")]
    Json {
        /// The file.
        file: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
}

/// Choices that are not in the site file.
#[derive(Debug, Clone)]
pub struct Options {
    /// IANA time zone the dashboards show times in.
    pub time_zone: String,
}

impl Options {
    /// The site's own choices: its time zone, [`DEFAULT_TIME_ZONE`] when it names none
    /// (the site file has no `time_zone` key yet; when it gains one, read it here).
    pub fn for_site(_site: &Site) -> Options {
        Options {
            time_zone: DEFAULT_TIME_ZONE.to_string(),
        }
    }
}

/// One generated file: its path relative to the output directory and its content.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// Relative path (`wall.json`, `provisioning/datasources/dc-gateway.yaml`).
    pub path: String,
    /// Full text.
    pub text: String,
}

/// The dashboard uid of `board` for `site`: `dcgw-<site>-<board>`, shortened with a
/// hash of the site name when longer than Grafana's 40 characters.
pub fn uid(site: &str, board: &str) -> String {
    let full = format!("dcgw-{site}-{board}");
    if full.len() <= 40 {
        return full;
    }
    // FNV-1a: stable across builds and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in site.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let keep = 40 - (board.len() + 6 + 9);
    let short: String = site.chars().take(keep).collect();
    format!("dcgw-{short}-{h:08x}-{board}")
}

/// An IANA zone name the tz database knows (`Asia/Ho_Chi_Minh`, `UTC`), or Grafana's
/// own `utc` / `browser`.
fn valid_time_zone(tz: &str) -> bool {
    matches!(tz, "utc" | "browser")
        || (tz.trim() == tz && crate::texts::time::SiteTime::new(tz).is_ok())
}

/// The dashboards of `site` as JSON values, by file stem ([`BOARDS`] order).
pub fn dashboards(site: &Site, opts: &Options) -> Result<Vec<(&'static str, Json)>, Error> {
    if !valid_time_zone(&opts.time_zone) {
        return Err(Error::TimeZone(opts.time_zone.clone()));
    }
    let ctx = boards::Ctx {
        site,
        time_zone: &opts.time_zone,
    };
    Ok(vec![
        ("wall", boards::wall(&ctx)),
        ("power", boards::power(&ctx)),
        ("cooling", boards::cooling(&ctx)),
        ("climate", boards::climate(&ctx)),
        ("alarms", boards::alarms(&ctx)),
        ("gateway", boards::gateway(&ctx)),
    ])
}

/// Every file `dc-gateway dashboards` writes, in order.
pub fn generate(site: &Site, opts: &Options) -> Result<Vec<File>, Error> {
    let mut files = Vec::new();
    for (name, board) in dashboards(site, opts)? {
        let file = format!("{name}.json");
        let mut text = serde_json::to_string_pretty(&board).map_err(|source| Error::Json {
            file: file.clone(),
            source,
        })?;
        text.push('\n');
        files.push(File { path: file, text });
    }
    files.push(File {
        path: "provisioning/datasources/dc-gateway.yaml".into(),
        text: datasource_yaml(site),
    });
    files.push(File {
        path: "provisioning/dashboards/dc-gateway.yaml".into(),
        text: provider_yaml(site),
    });
    Ok(files)
}

/// Write [`generate`]'s files under `out` (directories created). Returns the paths.
pub fn write(site: &Site, opts: &Options, out: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    for f in generate(site, opts)? {
        let path = out.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, &f.text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Double-quoted YAML scalar.
fn yq(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The InfluxDB datasource: URL and database from the site's first InfluxDB sink when
/// it has one (a v2 sink's bucket is the database name the DBRP mapping gives it), else
/// `http://127.0.0.1:8086` and database `dcgw`. Credentials come from the Grafana
/// server's environment.
fn datasource_yaml(site: &Site) -> String {
    let influx = site.sinks.iter().find_map(|s| match &s.config {
        crate::sinks::SinkConfig::Influx(c) => Some(c),
        _ => None,
    });
    let (url, db, auth) = match influx {
        Some(c) => match &c.api {
            InfluxApi::V2 { bucket, .. } => (c.base_url.clone(), bucket.clone(), Auth::Token),
            InfluxApi::V1 { db, username, .. } => (
                c.base_url.clone(),
                db.clone(),
                match username {
                    Some(u) => Auth::User(u.clone()),
                    None => Auth::None,
                },
            ),
        },
        None => ("http://127.0.0.1:8086".into(), "dcgw".into(), Auth::Token),
    };
    let mut y = String::new();
    y.push_str("# Generated by `dc-gateway dashboards` for site ");
    y.push_str(&site.name);
    y.push_str(".\n# InfluxQL datasource for the dc-gateway dashboards (uid dcgw-influxdb).\n");
    y.push_str(
        "# InfluxDB 1.x: /query; InfluxDB 2.x: its v1-compatible /query with a DBRP mapping\n",
    );
    y.push_str(
        "# from this database name to the bucket (docs/GRAFANA.md). No secret is in this file:\n",
    );
    y.push_str("# the token or password comes from the Grafana server's environment.\n");
    y.push_str("apiVersion: 1\n\ndatasources:\n");
    y.push_str("  - name: dc-gateway InfluxDB\n");
    y.push_str(&format!("    uid: {}\n", panels::DATASOURCE_UID));
    y.push_str("    type: influxdb\n    access: proxy\n");
    y.push_str(&format!("    url: {}\n", yq(&url)));
    y.push_str("    isDefault: false\n    editable: false\n    jsonData:\n");
    y.push_str("      version: InfluxQL\n");
    y.push_str(&format!("      dbName: {}\n", yq(&db)));
    y.push_str("      httpMode: POST\n      timeInterval: 1s\n");
    match auth {
        Auth::Token => {
            y.push_str("      httpHeaderName1: Authorization\n    secureJsonData:\n");
            y.push_str(&format!(
                "      httpHeaderValue1: \"Token ${{{TOKEN_ENV}}}\"\n"
            ));
        }
        Auth::User(u) => {
            y.push_str(&format!("    user: {}\n    secureJsonData:\n", yq(&u)));
            y.push_str(&format!("      password: \"${{{PASSWORD_ENV}}}\"\n"));
        }
        Auth::None => {}
    }
    y
}

enum Auth {
    Token,
    User(String),
    None,
}

/// The dashboard provider: reads the JSON files from
/// `/var/lib/grafana/dashboards/dc-gateway` into a folder named after the site.
fn provider_yaml(site: &Site) -> String {
    format!(
        "# Generated by `dc-gateway dashboards` for site {name}.\n\
         # Copy the dashboard JSON files to the path below (docs/GRAFANA.md).\n\
         apiVersion: 1\n\n\
         providers:\n\
         \x20 - name: dc-gateway-{name}\n\
         \x20   orgId: 1\n\
         \x20   folder: {folder}\n\
         \x20   folderUid: {uid}\n\
         \x20   type: file\n\
         \x20   disableDeletion: false\n\
         \x20   allowUiUpdates: false\n\
         \x20   updateIntervalSeconds: 60\n\
         \x20   options:\n\
         \x20     path: /var/lib/grafana/dashboards/dc-gateway\n\
         \x20     foldersFromFilesStructure: false\n",
        name = site.name,
        folder = yq(&site.title),
        uid = yq(&uid(&site.name, "folder")),
    )
}

#[cfg(test)]
mod tests;

/// The built-in demo site (`config/demo.toml` as `dc-gateway demo` runs it); the
/// simulator's port does not appear in any dashboard.
pub fn demo_site() -> Result<Site, crate::config::ConfigErrors> {
    let text = crate::demo::DEMO_SITE.replace("@SIM_PORT@", "5020");
    crate::config::parse(&text, "<demo>/demo.toml", Path::new("."))
}

/// `dc-gateway dashboards --config FILE | --demo --out DIR [--time-zone TZ]`: load and
/// validate the site (`None`: the demo site), write the files, print what was
/// written. Exit status 2 for an invalid config (every problem printed, as
/// `check-config` does), 1 for a write failure.
pub fn run_cli(
    config: Option<&Path>,
    out: &Path,
    time_zone: Option<String>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let loaded = match config {
        Some(path) => crate::config::load(path),
        None => demo_site(),
    };
    let site = match loaded {
        Ok(s) => s,
        Err(errs) => {
            eprintln!("{errs}");
            eprintln!("{} problem(s) found", errs.0.len());
            return ExitCode::from(2);
        }
    };
    for w in &site.warnings {
        eprintln!("warning: {w}");
    }
    let mut opts = Options::for_site(&site);
    if let Some(tz) = time_zone {
        opts.time_zone = tz;
    }
    match write(&site, &opts, out) {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
