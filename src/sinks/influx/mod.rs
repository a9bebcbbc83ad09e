//! InfluxDB sink: writes readings and alarm events as line protocol to InfluxDB 2.x
//! (`POST /api/v2/write?org=&bucket=&precision=ms`, `Authorization: Token ...`) or 1.x
//! (`POST /write?db=&precision=ms`, basic auth), and to anything that speaks either
//! (VictoriaMetrics).
//!
//! The queue in front of it decides *when* to send; this sink decides *how*
//! ([`line`] encodes, [`http`] posts, [`reply`] reads the answer) and turns the answer
//! into an [`Outcome`]:
//!
//! | Answer | Outcome |
//! |---|---|
//! | 2xx | `Delivered` |
//! | 400 / 422 naming lines (partial write, unparsable line, field type conflict) | `Rejected` for those records only; the rest is stored |
//! | 400 / 422 that names no line we can find | `Rejected` for the whole batch, with the server's text |
//! | 413 | `Split` (a single record: `Rejected`) |
//! | 429 / 503 | `Retry` after the server's `Retry-After` |
//! | other 5xx, no connection, timeout | `Retry` |
//! | 401 / 403 | `Retry`, "authentication failed", logged as an error naming URL and user |
//! | 404 (unknown database or bucket) | `Retry`, logged as an error naming the database |
//!
//! Invariants:
//! - A record is reported `Delivered` only after a 2xx that covered its line, or after
//!   a partial write whose refused lines were all identified. When the server refused
//!   lines without storing the others (e.g. InfluxDB 1.x `field type conflict` in a new
//!   shard), the named lines are taken out and the rest is sent again, at most
//!   [`MAX_ROUNDS`] times in one `deliver`; each round removes at least one line, so
//!   this never loops. Re-sending stored lines is harmless: InfluxDB keeps one point
//!   per series and timestamp.
//! - 401, 403 and 404 never drop records: they are configuration problems the
//!   operator fixes, and the records wait in the queue until then.
//! - Every non-2xx answer and every failed request is counted in
//!   `dcgw_sink_errors{sink, reason}`. Connection trouble is logged when it starts or
//!   changes kind and when it ends (with the count), not on every retry; refused
//!   records are logged at most once a minute.
//! - Credentials never appear in a URL, a log line or an error.

pub mod config;
mod http;
pub mod line;
pub mod reply;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use tracing::{debug, error, info, warn};

use crate::metrics;
use crate::sinks::{Outcome, Record, Sink};
pub use config::{InfluxApi, InfluxConfig, RawInflux};

pub use line::Encoded;
use reply::Class;

/// Most requests one `deliver` makes while taking refused lines out of a batch.
pub const MAX_ROUNDS: usize = 8;

/// Longest server text kept in a retry reason.
const MAX_REASON: usize = 300;

/// Refused records are logged at most this often (the rest is summed up).
const REJECT_LOG_EVERY: Duration = Duration::from_secs(60);

/// Errors building an InfluxDB sink.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configured base URL does not parse.
    #[error("InfluxDB sink {sink:?}: invalid URL {url:?}: {source}")]
    Url {
        /// Sink name.
        sink: String,
        /// The URL.
        url: String,
        /// Why.
        source: url::ParseError,
    },
    /// The token or user name cannot go into an HTTP header.
    #[error("InfluxDB sink {sink:?}: the {what} contains characters not allowed in an HTTP header")]
    Credential {
        /// Sink name.
        sink: String,
        /// `token` or `user name`.
        what: &'static str,
    },
    /// No rustls crypto provider was installed before building the sink.
    #[error(
        "InfluxDB sink {sink:?}: no TLS crypto provider installed; the process must call rustls::crypto::ring::default_provider().install_default() at start"
    )]
    NoCryptoProvider {
        /// Sink name.
        sink: String,
    },
    /// The HTTP client could not be built.
    #[error("InfluxDB sink {sink:?}: cannot build the HTTP client for {url}: {source}")]
    Client {
        /// Sink name.
        sink: String,
        /// Write URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
}

/// Connection health, for logging state changes only.
#[derive(Debug, Default)]
struct Health {
    failing: Option<Failing>,
}

#[derive(Debug)]
struct Failing {
    label: &'static str,
    count: u64,
    since: Instant,
}

impl Health {
    /// Record a failure; `true` if it starts a failure streak or changes its kind (log
    /// it), `false` if it repeats the current one.
    fn fail(&mut self, label: &'static str) -> bool {
        match &mut self.failing {
            Some(f) if f.label == label => {
                f.count += 1;
                false
            }
            Some(f) => {
                f.label = label;
                f.count += 1;
                true
            }
            None => {
                self.failing = Some(Failing {
                    label,
                    count: 1,
                    since: Instant::now(),
                });
                true
            }
        }
    }

    /// Record a success; the streak that ended, if any.
    fn ok(&mut self) -> Option<Failing> {
        self.failing.take()
    }
}

/// Rate limit for logging refused records.
#[derive(Debug, Default)]
struct Rejections {
    last_log: Option<Instant>,
    unlogged: u64,
}

/// The InfluxDB sink. See the module docs for how answers are classified.
pub struct InfluxSink {
    name: String,
    site: Arc<str>,
    client: reqwest::Client,
    url: reqwest::Url,
    base_url: String,
    /// `database "dc"` or `bucket "b" (org "o")`, for messages.
    target: String,
    auth: http::Auth,
    /// User name (1.x) for logs; never the password.
    user: Option<String>,
    token_set: bool,
    gzip: bool,
    timeout: Duration,
    enc: Encoded,
    resend: String,
    health: Health,
    rejections: Rejections,
    connected: bool,
    /// The last answer was 401/403 (cleared by the next stored write).
    auth_failed: bool,
}

impl std::fmt::Debug for InfluxSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxSink")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("auth", &self.auth)
            .field("gzip", &self.gzip)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl InfluxSink {
    /// Build the sink (no network traffic yet). `name` labels metrics and logs; `site`
    /// is the `site` tag of readings. A rustls crypto provider must be installed.
    pub fn new(name: &str, site: Arc<str>, cfg: &InfluxConfig) -> Result<InfluxSink, Error> {
        if !http::crypto_provider_installed() {
            return Err(Error::NoCryptoProvider {
                sink: name.to_string(),
            });
        }
        let mut url = reqwest::Url::parse(&cfg.base_url).map_err(|source| Error::Url {
            sink: name.to_string(),
            url: cfg.base_url.clone(),
            source,
        })?;
        let base_url = cfg.base_url.trim_end_matches('/').to_string();
        let (auth, user, token_set, target) = match &cfg.api {
            InfluxApi::V2 { org, bucket, token } => {
                url.set_path("/api/v2/write");
                {
                    let mut q = url.query_pairs_mut();
                    q.clear();
                    if !org.is_empty() {
                        q.append_pair("org", org);
                    }
                    q.append_pair("bucket", bucket)
                        .append_pair("precision", "ms");
                }
                let auth = match token {
                    Some(t) => {
                        let mut h = HeaderValue::from_str(&format!("Token {t}")).map_err(|_| {
                            Error::Credential {
                                sink: name.to_string(),
                                what: "token",
                            }
                        })?;
                        h.set_sensitive(true);
                        http::Auth::Token(h)
                    }
                    None => http::Auth::None,
                };
                let target = if org.is_empty() {
                    format!("bucket {bucket:?}")
                } else {
                    format!("bucket {bucket:?} (org {org:?})")
                };
                (auth, None, token.is_some(), target)
            }
            InfluxApi::V1 {
                db,
                username,
                password,
            } => {
                url.set_path("/write");
                url.query_pairs_mut()
                    .clear()
                    .append_pair("db", db)
                    .append_pair("precision", "ms");
                let auth = match username {
                    Some(u) => {
                        if HeaderValue::from_str(u).is_err() || u.contains(':') {
                            return Err(Error::Credential {
                                sink: name.to_string(),
                                what: "user name",
                            });
                        }
                        http::Auth::Basic {
                            user: u.clone(),
                            password: password.clone(),
                        }
                    }
                    None => http::Auth::None,
                };
                (auth, username.clone(), false, format!("database {db:?}"))
            }
        };
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("dc-gateway/", env!("CARGO_PKG_VERSION")))
            // A redirect (http → https at a proxy) must show up as such: following it
            // can turn the POST into a GET that some page answers with 200.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| Error::Client {
                sink: name.to_string(),
                url: url.to_string(),
                source,
            })?;
        Ok(InfluxSink {
            name: name.to_string(),
            site,
            client,
            url,
            base_url,
            target,
            auth,
            user,
            token_set,
            gzip: cfg.gzip,
            timeout: cfg.timeout,
            enc: Encoded::new(),
            resend: String::new(),
            health: Health::default(),
            rejections: Rejections::default(),
            connected: false,
            auth_failed: false,
        })
    }

    /// The write URL (no credentials in it): `http://host:port/write?db=dc&precision=ms`.
    pub fn write_url(&self) -> &str {
        self.url.as_str()
    }

    fn count(&self, reason: &'static str) {
        metrics::get()
            .sink_errors
            .get_or_create(&metrics::labels(&[
                ("sink", &self.name),
                ("reason", reason),
            ]))
            .inc();
    }

    /// The far end took a write.
    fn stored(&mut self) {
        self.connected = true;
        self.auth_failed = false;
        if let Some(f) = self.health.ok() {
            info!(
                sink = %self.name,
                url = %self.url,
                failed_attempts = f.count,
                down_s = f.since.elapsed().as_secs(),
                last_reason = f.label,
                "InfluxDB accepts writes again after {} failed attempts",
                f.count
            );
        }
    }

    /// A request that got no usable answer: count it, log it if the kind of trouble is
    /// new, and ask for a retry.
    fn retry(
        &mut self,
        label: &'static str,
        after: Option<Duration>,
        reason: String,
        log_as_error: bool,
    ) -> Outcome {
        self.count(label);
        self.connected = false;
        if self.health.fail(label) {
            if log_as_error {
                error!(
                    sink = %self.name,
                    url = %self.url,
                    user = self.user.as_deref().unwrap_or(""),
                    token_set = self.token_set,
                    reason = label,
                    "{reason}; records stay queued until this is fixed"
                );
            } else {
                warn!(
                    sink = %self.name,
                    url = %self.url,
                    reason = label,
                    "InfluxDB write failed, will retry (further failures of this kind are logged when it recovers): {reason}"
                );
            }
        } else {
            debug!(sink = %self.name, reason = label, "InfluxDB write failed again: {reason}");
        }
        Outcome::Retry { after, reason }
    }

    /// Classify an answer that is neither stored nor refused lines.
    fn retry_for(&mut self, status: u16, after: Option<Duration>, body: &str) -> Outcome {
        let msg = reply::error_message(body);
        let msg = clip(&msg, MAX_REASON);
        let label = reply::status_label(status);
        match reply::class(status) {
            Class::Auth => {
                let who = match (&self.user, self.token_set) {
                    (Some(u), _) => format!("user {u:?}"),
                    (None, true) => "the configured token".to_string(),
                    (None, false) => "no credentials".to_string(),
                };
                let reason = format!(
                    "authentication failed (HTTP {status}) on {} with {who}: {msg}",
                    self.url
                );
                self.auth_failed = true;
                self.retry(label, None, reason, true)
            }
            Class::NotFound => {
                let reason = format!(
                    "{} not found on {} (HTTP 404: {msg})",
                    self.target, self.base_url
                );
                self.retry(label, None, reason, true)
            }
            Class::Throttled => self.retry(
                label,
                after,
                format!(
                    "InfluxDB at {} is busy (HTTP {status}): {msg}",
                    self.base_url
                ),
                false,
            ),
            Class::ServerError => self.retry(
                label,
                None,
                format!(
                    "InfluxDB at {} failed (HTTP {status}): {msg}",
                    self.base_url
                ),
                false,
            ),
            _ => self.retry(
                label,
                after,
                format!("unexpected answer from {} (HTTP {status}): {msg}", self.url),
                false,
            ),
        }
    }

    /// Log refused records, at most once per [`REJECT_LOG_EVERY`].
    fn log_refused(&mut self, records: usize, first_reason: &str) {
        let due = self
            .rejections
            .last_log
            .is_none_or(|t| t.elapsed() >= REJECT_LOG_EVERY);
        if due {
            warn!(
                sink = %self.name,
                url = %self.url,
                records,
                not_logged_before = self.rejections.unlogged,
                "InfluxDB refused {records} record(s) for good (they go to the dead-letter store): {}",
                clip(first_reason, 1000)
            );
            self.rejections.last_log = Some(Instant::now());
            self.rejections.unlogged = 0;
        } else {
            self.rejections.unlogged += records as u64;
            debug!(sink = %self.name, records, "InfluxDB refused records: {}", clip(first_reason, 300));
        }
    }

    /// Turn refused lines into the outcome for the batch.
    fn finish(&mut self, refused: Vec<(usize, String)>) -> Outcome {
        if refused.is_empty() {
            if self.rejections.unlogged > 0 {
                info!(
                    sink = %self.name,
                    records = self.rejections.unlogged,
                    "InfluxDB refused {} more record(s) since the last report",
                    self.rejections.unlogged
                );
                self.rejections = Rejections::default();
            }
            return Outcome::Delivered;
        }
        let lines = self.enc.lines();
        let mut records: Vec<(usize, String)> = Vec::with_capacity(refused.len());
        for (line, why) in refused {
            let rec = lines[line].record;
            if !records.iter().any(|(r, _)| *r == rec) {
                records.push((rec, why));
            }
        }
        records.sort_by_key(|(r, _)| *r);
        let first = records[0].1.clone();
        self.log_refused(records.len(), &first);
        Outcome::Rejected { records }
    }
}

impl Sink for InfluxSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "influxdb"
    }

    fn connected(&self) -> bool {
        self.connected
    }

    fn auth_failed(&self) -> bool {
        self.auth_failed
    }

    async fn deliver(&mut self, batch: &[Record]) -> Outcome {
        if batch.is_empty() {
            return Outcome::Delivered;
        }
        self.enc.encode(&self.site, batch);
        let n = self.enc.lines().len();
        if n == 0 {
            return Outcome::Delivered;
        }
        // Lines still to be confirmed, and lines refused for good (indexes into
        // `self.enc.lines()`).
        let mut active: Vec<usize> = (0..n).collect();
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut last_msg = String::new();
        for round in 0..MAX_ROUNDS {
            let sent = if round == 0 {
                http::post(
                    &self.client,
                    &self.url,
                    &self.auth,
                    self.gzip,
                    self.enc.body(),
                )
                .await
            } else {
                self.enc.body_of(&active, &mut self.resend);
                http::post(&self.client, &self.url, &self.auth, self.gzip, &self.resend).await
            };
            let answer = match sent {
                Ok(a) => a,
                Err(f) => {
                    let reason = match f.label {
                        "timeout" => format!(
                            "InfluxDB at {} did not answer within {} ms: {}",
                            self.base_url,
                            self.timeout.as_millis(),
                            f.detail
                        ),
                        "connect" => format!(
                            "cannot connect to InfluxDB at {}: {}",
                            self.base_url, f.detail
                        ),
                        _ => format!("request to {} failed: {}", self.url, f.detail),
                    };
                    return self.retry(f.label, None, reason, false);
                }
            };
            match reply::class(answer.status) {
                Class::Stored => {
                    self.stored();
                    return self.finish(refused);
                }
                Class::BadLines => {
                    self.count(reply::status_label(answer.status));
                    self.connected = true;
                    let status = answer.status;
                    let msg = reply::error_message(&answer.body);
                    let bad =
                        reply::identify(&msg, reply::json_line(&answer.body), &self.enc, &active);
                    if bad.is_empty() {
                        // Nothing we can point at: refuse what is left, with the text.
                        let why = format!("HTTP {status}: {}", clip(&msg, 1000));
                        refused.extend(active.iter().map(|&l| (l, why.clone())));
                        return self.finish(refused);
                    }
                    let named = bad.len();
                    active.retain(|l| !bad.iter().any(|(b, _)| b == l));
                    refused.extend(
                        bad.into_iter()
                            .map(|(l, why)| (l, format!("HTTP {status}: {why}"))),
                    );
                    let rest_stored =
                        reply::is_partial(&msg) && reply::dropped(&msg).is_none_or(|d| named >= d);
                    if active.is_empty() || rest_stored {
                        return self.finish(refused);
                    }
                    debug!(
                        sink = %self.name,
                        refused = refused.len(),
                        left = active.len(),
                        "InfluxDB did not confirm the rest of the batch; sending it again without the refused lines"
                    );
                    last_msg = msg;
                }
                Class::TooLarge => {
                    if batch.len() <= 1 {
                        self.count(reply::status_label(answer.status));
                        self.connected = true;
                        let why = format!(
                            "HTTP 413: a single record is larger than InfluxDB accepts: {}",
                            clip(&reply::error_message(&answer.body), MAX_REASON)
                        );
                        refused.extend(active.iter().map(|&l| (l, why.clone())));
                        return self.finish(refused);
                    }
                    self.count(reply::status_label(answer.status));
                    self.connected = true;
                    debug!(sink = %self.name, records = batch.len(), "InfluxDB: batch too large, splitting");
                    return Outcome::Split;
                }
                _ => return self.retry_for(answer.status, answer.retry_after, &answer.body),
            }
        }
        // Out of rounds: what is still unconfirmed goes with the refused ones rather than
        // being retried for ever.
        let why = format!(
            "InfluxDB kept refusing parts of this batch after {MAX_ROUNDS} attempts; not confirmed stored: {}",
            clip(&last_msg, 1000)
        );
        refused.extend(active.iter().map(|&l| (l, why.clone())));
        self.finish(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    #[test]
    fn write_urls_carry_no_credentials() {
        provider();
        let cfg = InfluxConfig::from_url("http://u:s3cret@127.0.0.1:8086?db=dc", None).unwrap();
        let s = InfluxSink::new("i", Arc::from("tv"), &cfg).unwrap();
        assert_eq!(
            s.write_url(),
            "http://127.0.0.1:8086/write?db=dc&precision=ms"
        );
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(!s.connected(), "not connected before the first answer");
        assert_eq!(s.kind(), "influxdb");

        let cfg = InfluxConfig::from_url(
            "https://influx.example:8086?org=dc%20tv&bucket=b",
            Some("tok3n".into()),
        )
        .unwrap();
        let s = InfluxSink::new("i", Arc::from("tv"), &cfg).unwrap();
        assert_eq!(
            s.write_url(),
            "https://influx.example:8086/api/v2/write?org=dc+tv&bucket=b&precision=ms"
        );
        assert!(!format!("{s:?}").contains("tok3n"));

        let cfg = InfluxConfig::from_url("http://127.0.0.1:8428?bucket=b", None).unwrap();
        let s = InfluxSink::new("i", Arc::from("tv"), &cfg).unwrap();
        assert_eq!(
            s.write_url(),
            "http://127.0.0.1:8428/api/v2/write?bucket=b&precision=ms"
        );
    }

    #[test]
    fn bad_token_is_an_error_not_a_panic() {
        provider();
        let cfg =
            InfluxConfig::from_url("http://127.0.0.1:8086?org=o&bucket=b", Some("a\nb".into()))
                .unwrap();
        let e = InfluxSink::new("influx", Arc::from("tv"), &cfg).unwrap_err();
        assert!(e.to_string().contains("token"), "{e}");
    }

    #[test]
    fn health_logs_only_changes() {
        let mut h = Health::default();
        assert!(h.fail("connect"));
        assert!(!h.fail("connect"));
        assert!(!h.fail("connect"));
        assert!(h.fail("http_401"));
        let f = h.ok().unwrap();
        assert_eq!((f.label, f.count), ("http_401", 4));
        assert!(h.ok().is_none());
        assert!(h.fail("connect"));
    }
}
