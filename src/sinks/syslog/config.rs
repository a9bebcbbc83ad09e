//! The syslog sink's configuration: an entry of kind `syslog` in `[[sinks]]` as
//! written (serde, [`RawSyslog`]), validated into [`SyslogConfig`].
//!
//! What must stay true: a validated config names a transport the sink can speak
//! (`relp://`, `udp://`, `tcp://`, `tls://`), a facility from RFC 5424's table, and
//! for TLS certificate files that were readable PEM when the config was checked (they
//! are read again at every connect, so a renewed certificate is picked up without a
//! restart).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;
use url::Url;

use crate::config::Report;
use crate::sinks::UrlError;

/// How messages travel to the syslog server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// RELP (librelp's protocol over TCP): every message is acknowledged by the server;
    /// a record leaves the queue only on its `200 OK`. Delivery without loss.
    Relp,
    /// Plain UDP (RFC 5426), one message per datagram. Best effort.
    Udp,
    /// TCP with octet-counting framing (RFC 6587 §3.4.1). Best effort.
    Tcp,
    /// TLS (RFC 5425, octet counting). Best effort.
    Tls,
}

impl Transport {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Relp => "relp",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// The port when the URL names none: 2514 for RELP (rsyslog's examples), 514 for
    /// UDP and TCP, 6514 for TLS (RFC 5425).
    pub const fn default_port(self) -> u16 {
        match self {
            Transport::Relp => 2514,
            Transport::Udp | Transport::Tcp => 514,
            Transport::Tls => 6514,
        }
    }
}

/// RFC 5424 facilities by name (§6.2.1, table 1), as rsyslog and logger spell them.
pub const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("alert", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The IANA example Private Enterprise Number (RFC 5612). A site that has its own
/// registered number sets `enterprise_id`; the SD-ID is `dcgw@<enterprise_id>`.
pub const EXAMPLE_ENTERPRISE_ID: u32 = 32473;

/// A validated syslog sink.
#[derive(Debug, Clone)]
pub struct SyslogConfig {
    /// Transport, from the URL's scheme.
    pub transport: Transport,
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// RFC 5424 APP-NAME (`dc-gateway`).
    pub app_name: String,
    /// RFC 5424 HOSTNAME; `None`: the gateway's name (set when the sink starts).
    pub hostname: Option<String>,
    /// Facility code (0..=23).
    pub facility: u8,
    /// Private Enterprise Number in the SD-ID `dcgw@<n>`.
    pub enterprise_id: u32,
    /// CA certificates (PEM) that verify the server (TLS); system roots are not used.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for TLS client authentication.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Name the server's certificate must carry; the URL's host by default.
    pub server_name: Option<String>,
    /// Connect, write and (RELP) acknowledgement timeout.
    pub timeout: Duration,
    /// Largest message in bytes; a longer event text is cut at a character boundary.
    pub max_message_bytes: usize,
    /// Most records per delivery.
    pub batch_max: usize,
    /// Queue limit in records.
    pub max_queued: usize,
}

const fn default_timeout_ms() -> u64 {
    10_000
}
const fn default_max_message_bytes() -> usize {
    2048
}
const fn default_batch_max() -> usize {
    100
}
const fn default_max_queued() -> usize {
    100_000
}

impl SyslogConfig {
    /// From `relp://host:port` (or `udp://`, `tcp://`, `tls://`), with defaults for the
    /// rest.
    pub fn from_url(url: &str) -> Result<SyslogConfig, UrlError> {
        let u =
            Url::parse(url).map_err(|e| UrlError(format!("invalid syslog URL {url:?}: {e}")))?;
        let transport = match u.scheme() {
            "relp" => Transport::Relp,
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            other => {
                return Err(UrlError(format!(
                    "syslog URL scheme must be relp://, udp://, tcp:// or tls://, not {other}://"
                )));
            }
        };
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| UrlError(format!("syslog URL {url:?} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !u.username().is_empty() || u.password().is_some() {
            return Err(UrlError(format!(
                "syslog URL {url:?} holds a user name: syslog has no login; use TLS client certificates (cert_file, key_file)"
            )));
        }
        if !matches!(u.path(), "" | "/") || u.query().is_some() {
            return Err(UrlError(format!(
                "syslog URL {url:?} must be scheme://host:port, without a path or query"
            )));
        }
        Ok(SyslogConfig {
            transport,
            port: u.port().unwrap_or(transport.default_port()),
            host,
            app_name: "dc-gateway".to_string(),
            hostname: None,
            facility: 16,
            enterprise_id: EXAMPLE_ENTERPRISE_ID,
            ca_file: None,
            cert_file: None,
            key_file: None,
            server_name: None,
            timeout: Duration::from_millis(default_timeout_ms()),
            max_message_bytes: default_max_message_bytes(),
            batch_max: default_batch_max(),
            max_queued: default_max_queued(),
        })
    }

    /// `host:port` for messages.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A `[[sinks]]` entry of kind `syslog`, beside its name and routing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslog {
    /// `relp://host:2514` (acknowledged, without loss), `udp://host:514`,
    /// `tcp://host:514` or `tls://host:6514` (best effort).
    pub url: Spanned<String>,
    /// RFC 5424 APP-NAME (default `dc-gateway`).
    #[serde(default)]
    pub app_name: Option<Spanned<String>>,
    /// RFC 5424 HOSTNAME (default the gateway's name, `[site] gateway`).
    #[serde(default)]
    pub hostname: Option<Spanned<String>>,
    /// Facility name: `local0` (default) .. `local7`, `daemon`, `auth`, `authpriv`, ...
    #[serde(default)]
    pub facility: Option<Spanned<String>>,
    /// Private Enterprise Number in the structured data's SD-ID `dcgw@<n>` (default
    /// 32473, IANA's documentation example: replace it with the operator's registered
    /// number where the SOC expects one).
    #[serde(default)]
    pub enterprise_id: Option<Spanned<u32>>,
    /// TLS: CA certificates (PEM) that verify the server. Required for `tls://`.
    #[serde(default)]
    pub ca_file: Option<Spanned<PathBuf>>,
    /// TLS: client certificate chain (PEM), when the server asks for one.
    #[serde(default)]
    pub cert_file: Option<Spanned<PathBuf>>,
    /// TLS: the client certificate's private key (PEM); with `cert_file`.
    #[serde(default)]
    pub key_file: Option<Spanned<PathBuf>>,
    /// TLS: the name the server's certificate must carry (default the URL's host).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Connect, write and RELP acknowledgement timeout in ms (default 10000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Largest message in bytes (default 2048, what RFC 5425/5426 receivers must
    /// take); a longer event text is cut at a character boundary, the structured data
    /// is always sent whole.
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
    /// Most records per delivery (default 100; RELP sends them without waiting for
    /// each acknowledgement).
    #[serde(default)]
    pub batch_max: Option<usize>,
    /// Queue limit in records held in memory (default 100000).
    #[serde(default)]
    pub max_queued: Option<usize>,
}

impl SyslogConfig {
    /// Validate a sink entry of kind `syslog` (`ctx` names it in messages:
    /// `sinks[0] (soc)`). Relative paths are taken from `base` (the site file's folder).
    pub(crate) fn validate(
        r: &mut Report<'_>,
        c: &RawSyslog,
        ctx: &str,
        base: &Path,
    ) -> Option<SyslogConfig> {
        let mut cfg = match SyslogConfig::from_url(c.url.get_ref()) {
            Ok(cfg) => cfg,
            Err(e) => {
                r.at(c.url.span(), format!("{ctx}.url"), e.0);
                return None;
            }
        };
        if let Some(a) = &c.app_name {
            // RFC 5424 §6.2.5: 1..48 printable US-ASCII characters, no space.
            if header_field_ok(a.get_ref(), 48) {
                cfg.app_name = a.get_ref().clone();
            } else {
                r.at(
                    a.span(),
                    format!("{ctx}.app_name"),
                    "app_name must be 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)",
                );
            }
        }
        if let Some(h) = &c.hostname {
            if header_field_ok(h.get_ref(), 255) {
                cfg.hostname = Some(h.get_ref().clone());
            } else {
                r.at(
                    h.span(),
                    format!("{ctx}.hostname"),
                    "hostname must be 1 to 255 printable ASCII characters without spaces (RFC 5424 HOSTNAME)",
                );
            }
        }
        if let Some(f) = &c.facility {
            match FACILITIES.iter().find(|(n, _)| *n == f.get_ref().as_str()) {
                Some((_, code)) => cfg.facility = *code,
                None => r.at(
                    f.span(),
                    format!("{ctx}.facility"),
                    format!(
                        "unknown facility {:?}: use one of {}",
                        f.get_ref(),
                        FACILITIES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        if let Some(n) = &c.enterprise_id {
            if *n.get_ref() == 0 {
                r.at(
                    n.span(),
                    format!("{ctx}.enterprise_id"),
                    "enterprise_id must be a Private Enterprise Number above 0",
                );
            } else {
                cfg.enterprise_id = *n.get_ref();
            }
        }
        let tls = cfg.transport == Transport::Tls;
        let mut pem = |field: &Option<Spanned<PathBuf>>, name: &str, what: PemKind| {
            let f = field.as_ref()?;
            let path = base.join(f.get_ref());
            if !tls {
                r.at(
                    f.span(),
                    format!("{ctx}.{name}"),
                    format!("{name} is only used with tls:// URLs"),
                );
                return None;
            }
            if let Err(e) = check_pem(&path, what) {
                r.at(f.span(), format!("{ctx}.{name}"), e);
            }
            Some(path)
        };
        cfg.ca_file = pem(&c.ca_file, "ca_file", PemKind::Certs);
        cfg.cert_file = pem(&c.cert_file, "cert_file", PemKind::Certs);
        cfg.key_file = pem(&c.key_file, "key_file", PemKind::Key);
        if tls && cfg.ca_file.is_none() {
            r.at(
                c.url.span(),
                format!("{ctx}.ca_file"),
                "a tls:// syslog sink needs ca_file: the CA that signed the server's certificate",
            );
        }
        match (&c.cert_file, &c.key_file) {
            (Some(s), None) => r.at(
                s.span(),
                format!("{ctx}.key_file"),
                "cert_file needs key_file (the client certificate's private key)",
            ),
            (None, Some(s)) => r.at(
                s.span(),
                format!("{ctx}.cert_file"),
                "key_file needs cert_file (the client certificate)",
            ),
            _ => {}
        }
        cfg.server_name = c.server_name.clone();
        if let Some(t) = c.timeout_ms {
            cfg.timeout = Duration::from_millis(t.max(100));
        }
        if let Some(m) = c.max_message_bytes {
            cfg.max_message_bytes = m.clamp(480, 65_000);
        }
        if let Some(b) = c.batch_max {
            cfg.batch_max = b.clamp(1, 10_000);
        }
        if let Some(q) = c.max_queued {
            cfg.max_queued = q.max(1);
        }
        Some(cfg)
    }
}

/// RFC 5424 header fields: printable US-ASCII (33..=126), 1..=max characters.
fn header_field_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b))
}

/// What a PEM file must hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PemKind {
    /// One or more certificates.
    Certs,
    /// A private key.
    Key,
}

/// Whether `path` is a readable PEM file holding what `kind` says; the reason if not.
pub(crate) fn check_pem(path: &Path, kind: PemKind) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut rd = std::io::BufReader::new(&text[..]);
    match kind {
        PemKind::Certs => {
            let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut rd).collect();
            match certs {
                Ok(c) if !c.is_empty() => Ok(()),
                Ok(_) => Err(format!("{} holds no PEM certificate", path.display())),
                Err(e) => Err(format!("{} is not valid PEM: {e}", path.display())),
            }
        }
        PemKind::Key => match rustls_pemfile::private_key(&mut rd) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!("{} holds no PEM private key", path.display())),
            Err(e) => Err(format!("{} is not valid PEM: {e}", path.display())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::sinks::SinkConfig;

    const BASE: &str = "[site]\nname = \"tv\"\n\n[[rooms]]\nid = \"power\"\n\n";

    fn parsed(sinks: &str, dir: &Path) -> Result<crate::config::Site, Vec<String>> {
        parse(&format!("{BASE}{sinks}"), "site.toml", dir)
            .map_err(|e| e.0.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_syslog_entry_is_read_with_its_defaults_and_takes_alarms() {
        let s = parsed(
            "[[sinks]]\nname = \"soc\"\nkind = \"syslog\"\nurl = \"relp://127.0.0.1:2514\"\nfacility = \"local3\"\n",
            Path::new("/"),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let e = &s.sinks[0];
        assert_eq!(
            e.route.accepts.iter().copied().collect::<Vec<_>>(),
            vec![crate::sinks::Accept::Alarms]
        );
        let SinkConfig::Syslog(c) = &e.config else {
            panic!("{:?}", e.config)
        };
        assert_eq!(
            (c.transport, c.facility, c.enterprise_id),
            (Transport::Relp, 19, 32473)
        );
        assert_eq!(
            (c.app_name.as_str(), c.hostname.as_deref()),
            ("dc-gateway", None)
        );
    }

    #[test]
    fn tls_files_are_checked_when_the_config_is() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
        let errs = parsed(
            "[[sinks]]\nname = \"soc\"\nkind = \"syslog\"\nurl = \"tls://soc:6514\"\nca_file = \"ca.pem\"\ncert_file = \"gw.pem\"\n",
            dir.path(),
        )
        .unwrap_err();
        let want = [
            "site.toml:11:11: sinks[0] (soc).ca_file: ",
            "site.toml:12:13: sinks[0] (soc).cert_file: cannot read ",
            "site.toml:12:13: sinks[0] (soc).key_file: cert_file needs key_file",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.starts_with(w)), "{w}\n{errs:#?}");
        }
        assert!(errs[0].contains("holds no PEM certificate"), "{errs:#?}");
    }

    #[test]
    fn broken_syslog_entries_give_exact_messages() {
        let cases: &[(&str, &str)] = &[
            (
                "url = \"syslog://h\"\n",
                "site.toml:10:7: sinks[0] (soc).url: syslog URL scheme must be relp://, udp://, tcp:// or tls://, not syslog://",
            ),
            (
                "url = \"udp://h\"\nfacility = \"local9\"\n",
                "site.toml:11:12: sinks[0] (soc).facility: unknown facility \"local9\": use one of kern, user,",
            ),
            (
                "url = \"tls://h\"\n",
                "site.toml:10:7: sinks[0] (soc).ca_file: a tls:// syslog sink needs ca_file",
            ),
            (
                "url = \"udp://h\"\nca_file = \"ca.pem\"\n",
                "site.toml:11:11: sinks[0] (soc).ca_file: ca_file is only used with tls:// URLs",
            ),
            (
                "url = \"udp://h\"\napp_name = \"dc gateway\"\n",
                "site.toml:11:12: sinks[0] (soc).app_name: app_name must be 1 to 48 printable ASCII",
            ),
            (
                "url = \"udp://h\"\nport = 514\n",
                "site.toml:11:1: sinks[0] (soc): unknown field `port`",
            ),
        ];
        for (rest, want) in cases {
            let errs = parsed(
                &format!("[[sinks]]\nname = \"soc\"\nkind = \"syslog\"\n{rest}"),
                Path::new("/"),
            )
            .unwrap_err();
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "case {rest:?}: expected\n  {want}\ngot\n  {}",
                errs.join("\n  ")
            );
        }
        let errs = parsed(
            "[[sinks]]\nname = \"soc\"\nkind = \"syslog\"\nurl = \"udp://h\"\naccepts = [\"readings\"]\n",
            Path::new("/"),
        )
        .unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains(
                "a sink of kind syslog cannot take \"readings\": it takes alarms, audit"
            )),
            "{errs:?}"
        );
    }

    #[test]
    fn urls_give_transport_host_and_default_port() {
        let c = SyslogConfig::from_url("relp://soc.example").unwrap();
        assert_eq!(
            (c.transport, c.host.as_str(), c.port),
            (Transport::Relp, "soc.example", 2514)
        );
        let c = SyslogConfig::from_url("tls://10.0.0.5").unwrap();
        assert_eq!((c.transport, c.port), (Transport::Tls, 6514));
        let c = SyslogConfig::from_url("udp://[::1]:5514").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 5514));
        assert_eq!(c.addr(), "[::1]:5514");
        for bad in [
            "http://x",
            "tcp://u:p@h:514",
            "tcp://h:514/path",
            "relp://:2514",
        ] {
            assert!(SyslogConfig::from_url(bad).is_err(), "{bad}");
        }
    }
}
