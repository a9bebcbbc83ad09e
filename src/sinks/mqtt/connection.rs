//! The broker connection: client options (TLS, credentials, last will) and the task
//! that drives the MQTT event loop.
//!
//! Invariants:
//! - exactly one task polls the [`EventLoop`]; nothing else awaits on it, so publishes
//!   from the sink never wait on themselves;
//! - a failed connection attempt never ends the task: it is classified (`auth`, `tls`,
//!   `connect`), counted in `sink_errors{sink, reason}`, logged once per change of
//!   state (a broker that keeps refusing our password logs one error, not one per
//!   attempt), and retried after a capped backoff (0.5 s doubling to 10 s);
//! - the shared `connected` flag is true only between a CONNACK and the next error;
//! - the sink has two connections ([`Role`]): the main one carries the status, the last
//!   will and alarm events; the readings one only readings, so an alarm never queues
//!   behind a second's worth of readings in the client or in the broker (a broker
//!   handles one connection's messages in order). Only the main connection publishes
//!   the status, counts failures in `sink_errors` and logs them above debug level: the
//!   readings connection goes to the same broker with the same credentials and TLS, so
//!   one broker problem is reported once; readings it could not send are counted in
//!   `sink_dropped{reason="mqtt_offline_readings"}`;
//! - on every (re)connect the main task publishes the retained `online` status; the broker
//!   publishes the retained `offline` last will when the connection ends without a
//!   DISCONNECT (crash, power cut, network loss);
//! - the socket has `TCP_NODELAY`: an alarm event is one small PUBLISH written right
//!   after others, and with Nagle's algorithm it waited for the broker's delayed ACK
//!   (40 ms on Linux) before leaving, which was most of the alarm latency measured by
//!   the site benchmark (docs/BENCHMARKS.md);
//! - the socket acknowledges at once what it receives (`TCP_QUICKACK`, re-armed after
//!   every read, see [`QuickAck`]): a batch of alarm events is confirmed only when its
//!   last PUBACK arrives, and a broker without `TCP_NODELAY` (Mosquitto's default)
//!   holds each PUBACK after the first until our ACK of the previous one, which Linux
//!   would otherwise delay up to 40 ms; the next batch of alarms waited for that.

use std::io::BufReader;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Packet, PublishOptions, QoS, TlsConfiguration, Transport,
};

use super::Error;
use super::config::MqttConfig;
use super::topics::{OFFLINE, ONLINE};
use crate::metrics;

/// First wait after a failed connection attempt.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest wait between connection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Requests (publishes) the client may queue ahead of the event loop.
const REQUEST_CAPACITY: usize = 1024;
/// Most queued requests the event loop takes per turn and writes with one flush. The
/// client's default is one (a wake-up, an event and a socket write per message), which
/// made the event loop the largest cost of publishing readings in the site benchmark.
pub const REQUEST_BATCH: usize = 128;
/// Largest packet we send or accept: an alarm event is well under 2 KiB, but a long
/// operator message must not be cut off by the client's 10 KiB default.
const MAX_PACKET_BYTES: usize = 256 * 1024;

/// State shared between the sink, its handle and the event-loop task.
#[derive(Debug, Default)]
pub struct Shared {
    /// True between a CONNACK and the next connection error.
    pub connected: AtomicBool,
    /// Set once the sink was shut down on purpose.
    pub stopped: AtomicBool,
    /// The last connection error, as logged (`auth: ...`), cleared on connect.
    pub last_error: Mutex<Option<String>>,
}

/// Why a connection attempt failed, as the `reason` label of `sink_errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The broker refused our user name / password or the client is not authorised.
    Auth,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// Anything else: refused TCP connection, timeout, lost connection, protocol error.
    Connect,
}

impl FailureKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Auth => "auth",
            FailureKind::Tls => "tls",
            FailureKind::Connect => "connect",
        }
    }
}

/// Classify a connection error for metrics and logs.
pub fn classify(e: &ConnectionError) -> FailureKind {
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => FailureKind::Auth,
        ConnectionError::Tls(_) => FailureKind::Tls,
        ConnectionError::Io(io) if is_tls_io(io) => FailureKind::Tls,
        _ => FailureKind::Connect,
    }
}

/// rustls reports handshake failures through `io::Error` with a `rustls::Error` inside.
fn is_tls_io(io: &std::io::Error) -> bool {
    io.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// A sentence an operator can act on.
pub fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword) => {
            "broker refused the connection: bad user name or password".to_string()
        }
        ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized) => {
            "broker refused the connection: not authorised (wrong or missing user name / password)"
                .to_string()
        }
        ConnectionError::ConnectionRefused(code) => {
            format!("broker refused the connection: {code:?}")
        }
        ConnectionError::Tls(t) => format!("TLS failed: {t}"),
        other => other.to_string(),
    }
}

/// Next backoff after `current`.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

/// Which of the sink's two broker connections (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Status, last will, alarm events; client id `client_id`.
    Main,
    /// Readings only; client id `<client_id>-readings`, no last will.
    Readings,
}

impl Role {
    /// Name in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Readings => "readings",
        }
    }

    /// The MQTT client id of this connection.
    pub fn client_id(self, cfg: &MqttConfig) -> String {
        match self {
            Role::Main => cfg.client_id.clone(),
            Role::Readings => format!("{}-readings", cfg.client_id),
        }
    }
}

/// `<prefix>/gateways/<gateway>/status`, when the gateway has a name.
pub fn gateway_status_topic(cfg: &MqttConfig) -> Option<String> {
    (!cfg.gateway.is_empty()).then(|| format!("{}/gateways/{}/status", cfg.prefix, cfg.gateway))
}

/// Build the client and its event loop from the sink settings.
pub fn build(
    sink: &str,
    cfg: &MqttConfig,
    status_topic: &str,
    role: Role,
) -> Result<(AsyncClient, EventLoop), Error> {
    let mut opts = MqttOptions::new(role.client_id(cfg), (cfg.host.clone(), cfg.port));
    let keep_alive = u16::try_from(cfg.keep_alive.as_secs().max(1)).unwrap_or(u16::MAX);
    opts.set_keep_alive(keep_alive);
    // Clean session: see the module docs of `sinks::mqtt` for why.
    opts.set_clean_session(true);
    opts.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    opts.set_request_channel_capacity(REQUEST_CAPACITY);
    opts.set_max_request_batch(REQUEST_BATCH);
    opts.set_socket_connector(|host, net| async move {
        rumqttc::default_socket_connect(host, net)
            .await
            .map(QuickAck)
    });
    if role == Role::Main {
        opts.set_last_will(LastWill::new(status_topic, OFFLINE, QoS::AtLeastOnce, true));
    } else if let Some(t) = gateway_status_topic(cfg) {
        // The readings connection carries this gateway's own status and last will, so
        // two gateways of one site (a standby pair) can be told apart.
        opts.set_last_will(LastWill::new(t, OFFLINE, QoS::AtLeastOnce, true));
    }
    match (&cfg.username, &cfg.password) {
        (Some(u), Some(p)) => {
            opts.set_credentials(u.clone(), p.clone().into_bytes());
        }
        (Some(u), None) => {
            opts.set_username(u.clone());
        }
        (None, Some(_)) => {
            return Err(Error::PasswordWithoutUser {
                sink: sink.to_string(),
            });
        }
        (None, None) => {}
    }
    if cfg.tls {
        opts.set_transport(Transport::tls_with_config(tls_config(sink, cfg)?));
    }
    let (client, mut eventloop) =
        AsyncClient::builder(opts)
            .try_build()
            .map_err(|e| Error::Options {
                sink: sink.to_string(),
                reason: e.to_string(),
            })?;
    // Alarm latency: no Nagle delay on small publishes, no delayed ACKs of the
    // broker's PUBACKs (see the module docs).
    let mut net = eventloop.network_options();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    Ok((client, eventloop))
}

/// rustls settings: the CA in `ca_file` when set, the system roots otherwise.
pub(crate) fn tls_config(sink: &str, cfg: &MqttConfig) -> Result<TlsConfiguration, Error> {
    let Some(path) = &cfg.ca_file else {
        return TlsConfiguration::try_default_rustls().map_err(|e| Error::Tls {
            sink: sink.to_string(),
            reason: format!("system CA roots: {e}"),
        });
    };
    let ca_err = |reason: String| Error::CaFile {
        sink: sink.to_string(),
        path: path.clone(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| ca_err(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
        let cert = cert.map_err(|e| ca_err(format!("not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ca_err(format!("unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ca_err("holds no PEM certificate".to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            sink: sink.to_string(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

/// Commands taken from the broker on the main connection (`commands = true`).
#[derive(Debug, Clone)]
pub struct Inbound {
    /// `<prefix>/commands`, subscribed at QoS 1 on every CONNACK (clean session).
    pub topic: String,
    /// `<prefix>/commands/replies`.
    pub replies: String,
    /// The way into the hub.
    pub commands: crate::commands::Commands,
}

/// Take one command message: read it, hand it to the hub, publish the answer.
async fn take_command(client: AsyncClient, inbound: Inbound, sink: Arc<str>, payload: Vec<u8>) {
    // MQTT 3.1.1 does not tell a subscriber who published: the broker's ACL on the
    // command topic is the access control, and `by` / `client` are the sender's claims.
    let claimed = serde_json::from_slice::<serde_json::Value>(&payload)
        .ok()
        .and_then(|v| v.get("client").and_then(|c| c.as_str()).map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let origin = crate::commands::Origin {
        entry: "mqtt".into(),
        peer: format!("sink {sink}, client {claimed}"),
    };
    let reply = match crate::commands::parse(&payload, origin) {
        Ok(cmd) => inbound.commands.send(cmd, Duration::from_secs(10)).await,
        Err(r) => {
            metrics::get()
                .sink_errors
                .get_or_create(&metrics::labels(&[
                    ("sink", &sink),
                    ("reason", "bad_command"),
                ]))
                .inc();
            tracing::warn!(sink = %sink, error = ?r.error, "malformed MQTT command refused");
            r
        }
    };
    let body = serde_json::to_vec(&reply).unwrap_or_default();
    if let Err(e) = client
        .publish(
            inbound.replies.clone(),
            body,
            PublishOptions::at_least_once(),
        )
        .await
    {
        tracing::warn!(sink = %sink, error = %e, "could not queue a command reply");
    }
}

/// Drive the event loop until every client handle is gone or the sink is shut down.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    mut eventloop: EventLoop,
    client: AsyncClient,
    shared: Arc<Shared>,
    sink: Arc<str>,
    broker: String,
    status_topic: String,
    role: Role,
    inbound: Option<Inbound>,
    gateway_status: Option<String>,
) {
    let connection = role.as_str();
    let m = metrics::get();
    let mut backoff = BACKOFF_MIN;
    // What was last logged, so a broker that keeps failing the same way logs once.
    let mut last_logged: Option<String> = None;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if shared.stopped.load(Ordering::SeqCst) {
                    return;
                }
                shared.connected.store(true, Ordering::SeqCst);
                if let Ok(mut g) = shared.last_error.lock() {
                    *g = None;
                }
                backoff = BACKOFF_MIN;
                if last_logged.as_deref() != Some("connected") {
                    tracing::info!(sink = %sink, %broker, connection, "connected to MQTT broker");
                    last_logged = Some("connected".to_string());
                }
                if role == Role::Readings {
                    if let Some(t) = gateway_status.clone() {
                        let client = client.clone();
                        let sink = sink.clone();
                        tokio::spawn(async move {
                            let opts = PublishOptions::at_least_once().retained();
                            if let Err(e) = client.publish(t, ONLINE, opts).await {
                                tracing::warn!(sink = %sink, error = %e, "could not queue the gateway's online status");
                            }
                        });
                    }
                    continue;
                }
                // Publish from another task: this one must keep polling for the
                // request to be sent at all.
                let client = client.clone();
                let topic = status_topic.clone();
                let sink = sink.clone();
                let inbound_topic = inbound.as_ref().map(|i| i.topic.clone());
                tokio::spawn(async move {
                    let opts = PublishOptions::at_least_once().retained();
                    if let Err(e) = client.publish(topic, ONLINE, opts).await {
                        tracing::warn!(sink = %sink, error = %e, "could not queue the online status");
                    }
                    // A clean session forgets subscriptions: subscribe on every CONNACK.
                    if let Some(t) = inbound_topic
                        && let Err(e) = client.subscribe(t, QoS::AtLeastOnce).await
                    {
                        tracing::warn!(sink = %sink, error = %e, "could not subscribe to the command topic");
                    }
                });
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Some(i) = &inbound
                    && p.topic.as_ref() == i.topic.as_bytes()
                {
                    tokio::spawn(take_command(
                        client.clone(),
                        i.clone(),
                        sink.clone(),
                        p.payload.to_vec(),
                    ));
                }
            }
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => {
                shared.connected.store(false, Ordering::SeqCst);
                tracing::info!(sink = %sink, %broker, connection, "MQTT connection closed");
                return;
            }
            Err(e) => {
                shared.connected.store(false, Ordering::SeqCst);
                if shared.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let kind = classify(&e);
                if role == Role::Main {
                    m.sink_errors
                        .get_or_create(&metrics::labels(&[
                            ("sink", &sink),
                            ("reason", kind.as_str()),
                        ]))
                        .inc();
                }
                let text = format!("{}: {}", kind.as_str(), describe(&e));
                if role == Role::Readings {
                    tracing::debug!(sink = %sink, %broker, connection, error = %describe(&e), "MQTT readings connection failed; retrying with backoff");
                } else if last_logged.as_deref() != Some(text.as_str()) {
                    match kind {
                        FailureKind::Auth | FailureKind::Tls => tracing::error!(
                            sink = %sink, %broker, connection, reason = kind.as_str(), error = %describe(&e),
                            "cannot connect to MQTT broker; retrying with backoff"
                        ),
                        FailureKind::Connect => tracing::warn!(
                            sink = %sink, %broker, connection, reason = kind.as_str(), error = %describe(&e),
                            "MQTT broker unreachable or connection lost; retrying with backoff"
                        ),
                    }
                    last_logged = Some(text.clone());
                } else {
                    tracing::debug!(sink = %sink, %broker, connection, error = %e, "MQTT connection attempt failed again");
                }
                if let Ok(mut g) = shared.last_error.lock() {
                    *g = Some(text);
                }
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
            }
        }
    }
}

/// A TCP stream that acknowledges received data at once: `TCP_QUICKACK` is set again
/// after every read, since Linux leaves quick-ACK mode by itself. Elsewhere it is a
/// plain stream.
pub(crate) struct QuickAck(tokio::net::TcpStream);

impl QuickAck {
    fn rearm(&self) {
        #[cfg(target_os = "linux")]
        {
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
    }
}

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.rearm();
        }
        r
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified() {
        let auth = ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword);
        assert_eq!(classify(&auth), FailureKind::Auth);
        assert!(describe(&auth).contains("bad user name or password"));
        let not_auth = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        assert_eq!(classify(&not_auth), FailureKind::Auth);
        assert!(describe(&not_auth).contains("not authorised"));
        let busy = ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable);
        assert_eq!(classify(&busy), FailureKind::Connect);
        let refused =
            ConnectionError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused), FailureKind::Connect);
        let bad_cert = ConnectionError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert_eq!(classify(&bad_cert), FailureKind::Tls);
        assert_eq!(
            classify(&ConnectionError::NetworkTimeout),
            FailureKind::Connect
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let mut b = BACKOFF_MIN;
        let mut seen = vec![b];
        for _ in 0..8 {
            b = next_backoff(b);
            seen.push(b);
        }
        assert_eq!(seen[1], Duration::from_secs(1));
        assert_eq!(seen[2], Duration::from_secs(2));
        assert_eq!(*seen.last().unwrap(), BACKOFF_MAX);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    }
}
