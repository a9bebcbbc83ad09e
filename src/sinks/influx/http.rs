//! The HTTP side of the InfluxDB sink: the client, the write URL, credentials, gzip,
//! and one POST with its answer read back (bounded).
//!
//! Invariants: credentials travel only in the `Authorization` header (marked sensitive),
//! never in the URL, so the URL can be logged as is; a reply body is read up to
//! [`MAX_REPLY_BYTES`] so a misbehaving server cannot make us buffer without bound.

use std::error::Error as _;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use super::reply;

/// Largest reply body read; the rest is ignored.
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// How requests authenticate.
#[derive(Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// InfluxDB v2: `Authorization: Token <token>`.
    Token(HeaderValue),
    /// InfluxDB 1.x: HTTP basic auth.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: Option<String>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user:?}, <redacted>)"),
        }
    }
}

/// A reply from the server.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` hint, if any.
    pub retry_after: Option<Duration>,
    /// The body (at most [`MAX_REPLY_BYTES`], lossy UTF-8).
    pub body: String,
}

/// A request that got no HTTP answer.
#[derive(Debug)]
pub struct Failure {
    /// `sink_errors` reason label: `connect`, `timeout` or `io`.
    pub label: &'static str,
    /// What happened, with the error chain.
    pub detail: String,
}

/// The error and its sources, joined with `: `.
fn chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

fn failure(e: &reqwest::Error) -> Failure {
    let label = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "io"
    };
    Failure {
        label,
        detail: chain(e),
    }
}

/// Gzip `body` (fast level: the gateway is a small board, line protocol compresses well
/// even so).
fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// POST `body` (line protocol) to `url` and read the answer.
pub async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    auth: &Auth,
    use_gzip: bool,
    body: &str,
) -> Result<Answer, Failure> {
    let mut req = client.post(url.clone()).header(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    req = match auth {
        Auth::None => req,
        Auth::Token(h) => req.header(AUTHORIZATION, h.clone()),
        Auth::Basic { user, password } => req.basic_auth(user, password.as_ref()),
    };
    let req = if use_gzip {
        match gzip(body.as_bytes()) {
            Ok(z) => req
                .header(CONTENT_ENCODING, HeaderValue::from_static("gzip"))
                .body(z),
            Err(e) => {
                return Err(Failure {
                    label: "io",
                    detail: format!("gzip: {e}"),
                });
            }
        }
    } else {
        req.body(body.as_bytes().to_vec())
    };
    let mut resp = req.send().await.map_err(|e| failure(&e))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| reply::retry_after(v, SystemTime::now()));
    let mut raw = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                let room = MAX_REPLY_BYTES.saturating_sub(raw.len());
                raw.extend_from_slice(&c[..c.len().min(room)]);
                if raw.len() >= MAX_REPLY_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            // The status is what counts; a body cut short still classifies.
            Err(e) if status / 100 != 2 => {
                tracing::debug!(url = %url, error = %chain(&e), "reading the InfluxDB error body failed");
                break;
            }
            Err(e) => return Err(failure(&e)),
        }
    }
    Ok(Answer {
        status,
        retry_after,
        body: String::from_utf8_lossy(&raw).into_owned(),
    })
}

/// Whether a rustls crypto provider is installed for the process (reqwest panics when
/// it builds a client without one).
pub fn crypto_provider_installed() -> bool {
    rustls::crypto::CryptoProvider::get_default().is_some()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn gzip_round_trips() {
        let body = "climate,device=t1 temperature_c=22.5 1\n".repeat(100);
        let z = gzip(body.as_bytes()).unwrap();
        assert!(z.len() < body.len() / 4, "{} bytes", z.len());
        let mut out = String::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let a = Auth::Basic {
            user: "gw".into(),
            password: Some("hunter2".into()),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
        let t = Auth::Token(HeaderValue::from_static("Token abc123"));
        assert!(!format!("{t:?}").contains("abc123"));
    }
}
