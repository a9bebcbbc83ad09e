//! The web server's own accept loop: TLS (rustls) when configured, and the limits that
//! keep a hostile or broken client on the management network from taking the file
//! descriptors the sources need (docs/ACCOUNTS.md, "Hardening").
//!
//! Invariants:
//! - At most [`Limits::max_connections`] connections are open at once, and at most
//!   [`Limits::max_per_address`] from one client address; a connection beyond either
//!   is closed at once after accepting it (its descriptor is freed immediately).
//! - A request's headers must arrive within [`Limits::header_read_timeout`] (slowloris),
//!   a TLS handshake within [`Limits::handshake_timeout`]; headers larger than
//!   [`MAX_HEADER_BYTES`] and bodies larger than [`MAX_BODY_BYTES`] are refused.
//! - An accept error (the process ran out of descriptors) never ends the loop: it waits
//!   a little and accepts again.
//! - Every request carries the client's address as a [`ClientAddr`] extension.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use super::auth::ClientAddr;

/// Largest request body accepted (bytes); commands and logins are far smaller.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest request head (request line and headers) accepted, bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Connection limits and timeouts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client address at most.
    pub max_per_address: usize,
    /// A request's headers must be complete within this.
    pub header_read_timeout: Duration,
    /// A TLS handshake must be complete within this.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_per_address: 32,
            header_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A TLS configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no usable certificate or key.
    #[error("{path}: {what}")]
    Content {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the pair.
    #[error("certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// A rustls server configuration from PEM certificate (chain) and key files.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Content {
            path: cert.to_path_buf(),
            what: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Content {
            path: cert.to_path_buf(),
            what: "no PEM certificate in it".into(),
        });
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| TlsError::Content {
            path: key.to_path_buf(),
            what: e.to_string(),
        })?
        .ok_or_else(|| TlsError::Content {
            path: key.to_path_buf(),
            what: "no PEM private key in it".into(),
        })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Counts open connections per client address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut m = self.0.lock().expect("per-address lock");
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut m = self.table.0.lock().expect("per-address lock");
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Serve `router` on `listener` (over TLS when `tls` is given) within `limits` until
/// `shutdown` resolves; then stop accepting and give open requests a few seconds.
pub async fn run<F>(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused_logged = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept:
                    // never a reason to stop serving.
                    tracing::warn!(error = %e, "web: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            crate::metrics::get()
                .bad_input
                .get_or_create(&crate::metrics::labels(&[("what", "http_connections")]))
                .inc();
            if refused_logged.elapsed() > Duration::from_secs(10) {
                tracing::warn!(%peer, max = limits.max_connections, "web: too many connections; refusing new ones");
                refused_logged = std::time::Instant::now();
            }
            drop(stream);
            continue;
        };
        let Some(slot) = per_address.take(peer.ip(), limits.max_per_address) else {
            crate::metrics::get()
                .bad_input
                .get_or_create(&crate::metrics::labels(&[("what", "http_connections")]))
                .inc();
            if refused_logged.elapsed() > Duration::from_secs(10) {
                tracing::warn!(%peer, max = limits.max_per_address, "web: too many connections from one address; refusing new ones");
                refused_logged = std::time::Instant::now();
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = slot;
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    tower_service::Service::call(&mut router.clone(), req)
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(MAX_HEADER_BYTES.max(8192));
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(
                        limits.handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "web: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "web: TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls), svc);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "web: connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}
