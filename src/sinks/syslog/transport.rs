//! The connections of the syslog sink: a UDP socket, a TCP or TLS stream carrying
//! octet-counted messages (RFC 6587 §3.4.1, RFC 5425 §4.3), or a RELP session.
//!
//! Invariants: every connect and write runs under the sink's timeout; a stream whose
//! peer has closed it is noticed before the next write where the kernel already knows
//! (a peek that sees EOF or a reset), so messages are not written into a dead socket
//! after a server restart. That narrows, but cannot close, the window in which the
//! best-effort transports lose messages (docs/SYSLOG.md); only RELP confirms each one.

use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;

use super::config::{SyslogConfig, Transport};
use super::relp;

/// Why a connection could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host name did not resolve.
    #[error("cannot resolve {addr}: {reason}")]
    Resolve {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No connection within the timeout, or refused.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// TLS settings or handshake failed.
    #[error("TLS with {addr}: {reason}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Writing failed or timed out.
    #[error("sending to {addr}: {reason}")]
    Send {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The RELP session failed.
    #[error("RELP with {addr}: {source}")]
    Relp {
        /// `host:port`.
        addr: String,
        /// What failed.
        #[source]
        source: relp::Error,
    },
}

/// An open connection to the syslog server.
pub enum Conn {
    /// A connected UDP socket.
    Udp(UdpSocket),
    /// A TCP stream (octet counting).
    Tcp(TcpStream),
    /// A TLS stream (octet counting).
    Tls(Box<TlsStream<TcpStream>>),
    /// A RELP session.
    Relp(relp::Session),
}

async fn resolve(cfg: &SyslogConfig) -> Result<Vec<SocketAddr>, Error> {
    let err = |reason: String| Error::Resolve {
        addr: cfg.addr(),
        reason,
    };
    let found = tokio::time::timeout(
        cfg.timeout,
        tokio::net::lookup_host((cfg.host.as_str(), cfg.port)),
    )
    .await
    .map_err(|_| err(format!("no answer within {:?}", cfg.timeout)))?
    .map_err(|e| err(e.to_string()))?
    .collect::<Vec<_>>();
    if found.is_empty() {
        return Err(err("no address".into()));
    }
    Ok(found)
}

async fn tcp(cfg: &SyslogConfig) -> Result<TcpStream, Error> {
    let mut last = String::new();
    for addr in resolve(cfg).await? {
        match tokio::time::timeout(cfg.timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no answer within {:?}", cfg.timeout),
        }
    }
    Err(Error::Connect {
        addr: cfg.addr(),
        reason: last,
    })
}

/// rustls settings from the configured files, read at every connect (a renewed
/// certificate is used without a restart).
pub fn tls_config(cfg: &SyslogConfig) -> Result<Arc<rustls::ClientConfig>, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let certs = |p: &std::path::Path| -> Result<Vec<_>, String> {
        let bytes = read(p)?;
        rustls_pemfile::certs(&mut &bytes[..])
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{} is not valid PEM: {e}", p.display()))
    };
    let ca = cfg.ca_file.as_deref().ok_or("no ca_file")?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots
            .add(c)
            .map_err(|e| format!("{}: unusable certificate: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no PEM certificate", ca.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => {
            let chain = certs(cert)?;
            let kb = read(key)?;
            let key = rustls_pemfile::private_key(&mut &kb[..])
                .map_err(|e| format!("{} is not valid PEM: {e}", key.display()))?
                .ok_or_else(|| format!("{} holds no private key", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

impl Conn {
    /// Connect (and for RELP, open the session) under the configured timeout.
    pub async fn open(cfg: &SyslogConfig) -> Result<Conn, Error> {
        match cfg.transport {
            Transport::Udp => {
                let addr = resolve(cfg).await?[0];
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let connect = async {
                    let s = UdpSocket::bind(local).await?;
                    s.connect(addr).await?;
                    Ok::<_, std::io::Error>(s)
                };
                connect.await.map(Conn::Udp).map_err(|e| Error::Connect {
                    addr: cfg.addr(),
                    reason: e.to_string(),
                })
            }
            Transport::Tcp => tcp(cfg).await.map(Conn::Tcp),
            Transport::Tls => {
                let tls_err = |reason: String| Error::Tls {
                    addr: cfg.addr(),
                    reason,
                };
                let config = tls_config(cfg).map_err(tls_err)?;
                let name = cfg.server_name.clone().unwrap_or_else(|| cfg.host.clone());
                let name = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| tls_err(format!("server name {name:?}: {e}")))?;
                let stream = tcp(cfg).await?;
                let connector = tokio_rustls::TlsConnector::from(config);
                match tokio::time::timeout(cfg.timeout, connector.connect(name, stream)).await {
                    Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s))),
                    Ok(Err(e)) => Err(tls_err(e.to_string())),
                    Err(_) => Err(tls_err(format!("no handshake within {:?}", cfg.timeout))),
                }
            }
            Transport::Relp => {
                let stream = tcp(cfg).await?;
                relp::Session::open(stream, cfg.timeout)
                    .await
                    .map(Conn::Relp)
                    .map_err(|source| Error::Relp {
                        addr: cfg.addr(),
                        source,
                    })
            }
        }
    }

    /// Whether the peer has closed the stream, as far as the kernel knows now (EOF or
    /// a reset waiting on the socket). UDP and RELP: never (RELP notices on its own).
    /// TLS: what the server sent (session tickets, `close_notify`) is read through the
    /// TLS layer without waiting, so a close behind a ticket is seen too.
    pub fn peer_closed(&mut self) -> bool {
        match self {
            Conn::Tcp(s) => {
                let mut buf = [MaybeUninit::<u8>::uninit(); 1];
                match socket2::SockRef::from(&*s).peek(&mut buf) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                }
            }
            Conn::Tls(s) => {
                let mut buf = [0u8; 512];
                // A syslog server sends no application data; a few rounds suffice.
                for _ in 0..16 {
                    match s.read(&mut buf).now_or_never() {
                        None => return false,
                        Some(Ok(0)) | Some(Err(_)) => return true,
                        Some(Ok(_)) => {}
                    }
                }
                false
            }
            Conn::Udp(_) | Conn::Relp(_) => false,
        }
    }

    /// Write messages on a UDP, TCP or TLS connection: one datagram each, or
    /// octet-counted frames (`LEN SP MSG`) in one write. Ok means written, not received.
    pub async fn write(
        &mut self,
        addr: &str,
        messages: &[(usize, Vec<u8>)],
        timeout: Duration,
    ) -> Result<(), Error> {
        let send_err = |reason: String| Error::Send {
            addr: addr.to_string(),
            reason,
        };
        let work = async {
            match self {
                Conn::Udp(s) => {
                    for (_, m) in messages {
                        s.send(m).await?;
                    }
                    Ok(())
                }
                Conn::Tcp(_) | Conn::Tls(_) => {
                    let mut out = Vec::new();
                    for (_, m) in messages {
                        out.extend_from_slice(format!("{} ", m.len()).as_bytes());
                        out.extend_from_slice(m);
                    }
                    match self {
                        Conn::Tcp(s) => {
                            s.write_all(&out).await?;
                            s.flush().await
                        }
                        Conn::Tls(s) => {
                            s.write_all(&out).await?;
                            s.flush().await
                        }
                        _ => Ok(()),
                    }
                }
                Conn::Relp(_) => Err(std::io::Error::other("RELP sends with its session")),
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r.map_err(|e| send_err(e.to_string())),
            Err(_) => Err(send_err(format!("not written within {timeout:?}"))),
        }
    }
}
