//! The MQTT sink's configuration: an entry of kind `mqtt` in `[[sinks]]` as written
//! (serde), validated into [`MqttConfig`], or built from a `--mqtt` URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;
use url::Url;

use crate::config::raw::RawSecret;
use crate::config::{Report, resolve_secret};
use crate::sinks::{INLINE_PASSWORD, UrlError, url_decode};

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
    /// Take commands from `<prefix>/commands` (answers on `<prefix>/commands/replies`).
    pub commands: bool,
    /// This gateway's name: its own status topic `<prefix>/gateways/<gateway>/status`
    /// (none when empty). Set from the site's `gateway`.
    pub gateway: std::sync::Arc<str>,
}

impl MqttConfig {
    /// From `mqtt://user:pass@host:port` or `mqtts://...`, with defaults for the rest.
    pub fn from_url(url: &str, site: &str) -> Result<MqttConfig, UrlError> {
        let u = Url::parse(url).map_err(|e| UrlError(format!("invalid MQTT URL {url:?}: {e}")))?;
        let tls = match u.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => {
                return Err(UrlError(format!(
                    "MQTT URL scheme must be mqtt:// or mqtts://, not {other}://"
                )));
            }
        };
        let host = u
            .host_str()
            .ok_or_else(|| UrlError(format!("MQTT URL {url:?} has no host")))?
            .to_string();
        let port = u.port().unwrap_or(if tls { 8883 } else { 1883 });
        let username = (!u.username().is_empty()).then(|| url_decode(u.username()));
        let password = u.password().map(url_decode);
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
            commands: false,
            gateway: std::sync::Arc::from(""),
        })
    }
}

/// A `[[sinks]]` entry of kind `mqtt`, beside its name and routing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// `mqtt://host:1883` or `mqtts://host:8883`.
    pub url: Spanned<String>,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (from file or env).
    #[serde(default)]
    pub password: Option<Spanned<RawSecret>>,
    /// CA certificate (PEM) to verify the broker; system roots when unset.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client id; `dcgw-<site>` by default.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Topic prefix; `dcgw/<site>` by default.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Keep-alive in seconds (10).
    #[serde(default)]
    pub keep_alive_s: Option<u64>,
    /// How long a batch with alarm events waits for every PUBACK before it is
    /// retried (10000 ms).
    #[serde(default)]
    pub ack_timeout_ms: Option<u64>,
    /// Queue limit in records.
    #[serde(default)]
    pub max_queued: Option<usize>,
    /// Take commands (acknowledge, shelve, ...) from `<prefix>/commands` (default
    /// false). The broker's ACL on that topic is the access control: see
    /// docs/INTERFACES.md for an example.
    #[serde(default)]
    pub commands: Option<bool>,
}

impl MqttConfig {
    /// Validate a sink entry of kind `mqtt` (`ctx` names it in messages: `sinks[0] (broker)`).
    pub(crate) fn validate(
        r: &mut Report<'_>,
        c: &RawMqtt,
        ctx: &str,
        site: &str,
        base: &Path,
    ) -> Option<MqttConfig> {
        let mut cfg = match MqttConfig::from_url(c.url.get_ref(), site) {
            Ok(cfg) => cfg,
            Err(e) => {
                r.at(c.url.span(), format!("{ctx}.url"), e.0);
                return None;
            }
        };
        if cfg.password.is_some() {
            r.at(c.url.span(), format!("{ctx}.url"), INLINE_PASSWORD);
        }
        if let Some(u) = &c.username {
            cfg.username = Some(u.clone());
        }
        if let Some(p) = &c.password {
            cfg.password = resolve_secret(r, p, &format!("{ctx}.password"), base);
        }
        if let Some(ca) = &c.ca_file {
            cfg.ca_file = Some(base.join(ca));
        }
        if let Some(id) = &c.client_id {
            cfg.client_id = id.clone();
        }
        if let Some(p) = &c.prefix {
            cfg.prefix = p.trim_end_matches('/').to_string();
        }
        if let Some(k) = c.keep_alive_s {
            cfg.keep_alive = Duration::from_secs(k.max(1));
        }
        if let Some(t) = c.ack_timeout_ms {
            cfg.ack_timeout = Duration::from_millis(t.max(100));
        }
        if let Some(q) = c.max_queued {
            cfg.max_queued = q.max(1);
        }
        cfg.commands = c.commands.unwrap_or(false);
        Some(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
