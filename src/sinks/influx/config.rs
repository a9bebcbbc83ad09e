//! The InfluxDB sink's configuration: an entry of kind `influx` in `[[sinks]]` as
//! written (serde), validated into [`InfluxConfig`], or built from an `--influx` URL.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;
use url::Url;

use crate::config::raw::RawSecret;
use crate::config::{Report, resolve_secret};
use crate::sinks::{INLINE_PASSWORD, UrlError, url_decode};

/// Which InfluxDB write API to use.
#[derive(Debug, Clone, PartialEq)]
pub enum InfluxApi {
    /// `/api/v2/write?org=&bucket=` with `Authorization: Token ...`.
    V2 {
        /// Organisation.
        org: String,
        /// Bucket.
        bucket: String,
        /// API token.
        token: Option<String>,
    },
    /// 1.x `/write?db=` with optional user and password.
    V1 {
        /// Database.
        db: String,
        /// User name.
        username: Option<String>,
        /// Password.
        password: Option<String>,
    },
}

/// A validated InfluxDB sink.
#[derive(Debug, Clone)]
pub struct InfluxConfig {
    /// `http://host:port` (no path, no query).
    pub base_url: String,
    /// API flavour and credentials.
    pub api: InfluxApi,
    /// Largest batch in records.
    pub batch_max: usize,
    /// How long to wait to fill a batch.
    pub flush_interval: Duration,
    /// Gzip request bodies.
    pub gzip: bool,
    /// HTTP request timeout.
    pub timeout: Duration,
    /// Queue limit in records.
    pub max_queued: usize,
}

impl InfluxConfig {
    /// From a v2 URL (`http://host:port?org=O&bucket=B`) or a 1.x URL
    /// (`http://host:port?db=D`, user and password may be in the URL).
    /// `token` is used for v2 (from `DCGW_INFLUX_TOKEN` on the command line).
    pub fn from_url(url: &str, token: Option<String>) -> Result<InfluxConfig, UrlError> {
        let u =
            Url::parse(url).map_err(|e| UrlError(format!("invalid InfluxDB URL {url:?}: {e}")))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(UrlError(format!(
                "InfluxDB URL must be http:// or https://, not {}://",
                u.scheme()
            )));
        }
        let host = u
            .host_str()
            .ok_or_else(|| UrlError(format!("InfluxDB URL {url:?} has no host")))?;
        let port = u.port_or_known_default().unwrap_or(8086);
        let base_url = format!("{}://{}:{}", u.scheme(), host, port);
        let q: std::collections::HashMap<String, String> = u.query_pairs().into_owned().collect();
        let api = match (q.get("db"), q.get("org"), q.get("bucket")) {
            (Some(db), None, None) => InfluxApi::V1 {
                db: db.clone(),
                username: (!u.username().is_empty()).then(|| url_decode(u.username())),
                password: u.password().map(url_decode),
            },
            (None, org, Some(bucket)) => InfluxApi::V2 {
                org: org.cloned().unwrap_or_default(),
                bucket: bucket.clone(),
                token,
            },
            _ => {
                return Err(UrlError(format!(
                    "InfluxDB URL {url:?} must name either ?db=D (1.x) or ?org=O&bucket=B (v2)"
                )));
            }
        };
        Ok(InfluxConfig {
            base_url,
            api,
            batch_max: 500,
            flush_interval: Duration::from_millis(1000),
            gzip: true,
            timeout: Duration::from_millis(10_000),
            max_queued: 200_000,
        })
    }
}

/// A `[[sinks]]` entry of kind `influx`, beside its name and routing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInflux {
    /// v2: `http://host:8086?org=O&bucket=B`; 1.x: `http://host:8086?db=D`.
    pub url: Spanned<String>,
    /// v2 API token (from file or env; `DCGW_INFLUX_TOKEN` by default).
    #[serde(default)]
    pub token: Option<Spanned<RawSecret>>,
    /// 1.x user name.
    #[serde(default)]
    pub username: Option<String>,
    /// 1.x password (from file or env).
    #[serde(default)]
    pub password: Option<Spanned<RawSecret>>,
    /// Largest batch in records (polls or alarm events) per write (default 500).
    #[serde(default)]
    pub batch_max: Option<usize>,
    /// How long to wait to fill a batch (default 1000 ms).
    #[serde(default)]
    pub flush_interval_ms: Option<u64>,
    /// Gzip request bodies (default true).
    #[serde(default)]
    pub gzip: Option<bool>,
    /// HTTP request timeout (default 10000 ms).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Queue limit in records.
    #[serde(default)]
    pub max_queued: Option<usize>,
}

impl InfluxConfig {
    /// Validate a sink entry of kind `influx` (`ctx` names it in messages).
    pub(crate) fn validate(
        r: &mut Report<'_>,
        c: &RawInflux,
        ctx: &str,
        base: &Path,
    ) -> Option<InfluxConfig> {
        let mut cfg = match InfluxConfig::from_url(c.url.get_ref(), None) {
            Ok(cfg) => cfg,
            Err(e) => {
                r.at(c.url.span(), format!("{ctx}.url"), e.0);
                return None;
            }
        };
        match &mut cfg.api {
            InfluxApi::V2 { token, .. } => {
                *token = match &c.token {
                    Some(t) => resolve_secret(r, t, &format!("{ctx}.token"), base),
                    None => std::env::var("DCGW_INFLUX_TOKEN").ok(),
                };
            }
            InfluxApi::V1 {
                username, password, ..
            } => {
                if password.is_some() {
                    r.at(c.url.span(), format!("{ctx}.url"), INLINE_PASSWORD);
                }
                if let Some(u) = &c.username {
                    *username = Some(u.clone());
                }
                if let Some(p) = &c.password {
                    *password = resolve_secret(r, p, &format!("{ctx}.password"), base);
                }
            }
        }
        if let Some(b) = c.batch_max {
            cfg.batch_max = b.max(1);
        }
        if let Some(f) = c.flush_interval_ms {
            cfg.flush_interval = Duration::from_millis(f.max(10));
        }
        if let Some(g) = c.gzip {
            cfg.gzip = g;
        }
        if let Some(t) = c.timeout_ms {
            cfg.timeout = Duration::from_millis(t.max(100));
        }
        if let Some(q) = c.max_queued {
            cfg.max_queued = q.max(1);
        }
        Some(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn influx_v2_and_v1_urls() {
        let c = InfluxConfig::from_url("http://127.0.0.1:8428?org=o&bucket=b", Some("t".into()))
            .unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:8428");
        assert_eq!(
            c.api,
            InfluxApi::V2 {
                org: "o".into(),
                bucket: "b".into(),
                token: Some("t".into())
            }
        );
        let c = InfluxConfig::from_url("http://u:p%40ss@localhost:8086?db=dc", None).unwrap();
        assert_eq!(
            c.api,
            InfluxApi::V1 {
                db: "dc".into(),
                username: Some("u".into()),
                password: Some("p@ss".into())
            }
        );
        assert!(InfluxConfig::from_url("http://localhost:8086", None).is_err());
    }
}
