//! Validated sink settings, built from the site file or from `--mqtt` / `--influx` URLs.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// A validated MQTT sink.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
    /// User name.
    pub username: Option<String>,
    /// Password (already resolved from its file or variable).
    pub password: Option<String>,
    /// CA certificate file (PEM) for TLS; system roots when unset.
    pub ca_file: Option<PathBuf>,
    /// MQTT client id.
    pub client_id: String,
    /// Topic prefix (`dcgw/<site>`).
    pub prefix: String,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Queue limit in records.
    pub max_queued: usize,
    /// How long a batch with alarm events waits for every PUBACK before it is retried.
    pub ack_timeout: Duration,
}

impl MqttConfig {
    /// From `mqtt://user:pass@host:port` or `mqtts://...`, with defaults for the rest.
    pub fn from_url(url: &str, site: &str) -> Result<MqttConfig, String> {
        let u = Url::parse(url).map_err(|e| format!("invalid MQTT URL {url:?}: {e}"))?;
        let tls = match u.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => {
                return Err(format!(
                    "MQTT URL scheme must be mqtt:// or mqtts://, not {other}://"
                ));
            }
        };
        let host = u
            .host_str()
            .ok_or_else(|| format!("MQTT URL {url:?} has no host"))?
            .to_string();
        let port = u.port().unwrap_or(if tls { 8883 } else { 1883 });
        let username = (!u.username().is_empty()).then(|| percent_decode(u.username()));
        let password = u.password().map(percent_decode);
        Ok(MqttConfig {
            host,
            port,
            tls,
            username,
            password,
            ca_file: None,
            client_id: format!("dcgw-{site}"),
            prefix: format!("dcgw/{site}"),
            keep_alive: Duration::from_secs(10),
            max_queued: 100_000,
            ack_timeout: Duration::from_secs(10),
        })
    }
}

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
    pub fn from_url(url: &str, token: Option<String>) -> Result<InfluxConfig, String> {
        let u = Url::parse(url).map_err(|e| format!("invalid InfluxDB URL {url:?}: {e}"))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(format!(
                "InfluxDB URL must be http:// or https://, not {}://",
                u.scheme()
            ));
        }
        let host = u
            .host_str()
            .ok_or_else(|| format!("InfluxDB URL {url:?} has no host"))?;
        let port = u.port_or_known_default().unwrap_or(8086);
        let base_url = format!("{}://{}:{}", u.scheme(), host, port);
        let q: std::collections::HashMap<String, String> = u.query_pairs().into_owned().collect();
        let api = match (q.get("db"), q.get("org"), q.get("bucket")) {
            (Some(db), None, None) => InfluxApi::V1 {
                db: db.clone(),
                username: (!u.username().is_empty()).then(|| percent_decode(u.username())),
                password: u.password().map(percent_decode),
            },
            (None, org, Some(bucket)) => InfluxApi::V2 {
                org: org.cloned().unwrap_or_default(),
                bucket: bucket.clone(),
                token,
            },
            _ => {
                return Err(format!(
                    "InfluxDB URL {url:?} must name either ?db=D (1.x) or ?org=O&bucket=B (v2)"
                ));
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

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

    #[test]
    fn mqtt_urls() {
        let c = MqttConfig::from_url("mqtts://gw:secret@127.0.0.1:8883", "tv").unwrap();
        assert!(c.tls);
        assert_eq!(c.username.as_deref(), Some("gw"));
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert_eq!(c.prefix, "dcgw/tv");
        assert!(MqttConfig::from_url("http://x", "tv").is_err());
    }
}
