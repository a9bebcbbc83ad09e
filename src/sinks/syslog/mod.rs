//! The syslog sink: alarm events to the SOC (Art. 16.2) as RFC 5424 messages with
//! structured data ([`message`]), behind the sink's own durable queue.
//!
//! Transports and what "delivered" means for each (docs/SYSLOG.md):
//! - **RELP** (`relp://`, [`relp`]): a record is delivered only when the server
//!   answered `200 OK` to its message. A broken session is dropped and a new one
//!   opened; the messages it had not acknowledged are sent again, the ones it had are
//!   not (their event ids are kept until the batch is through). Nothing is lost across
//!   a server crash or restart; a message may arrive twice (consumers drop duplicates
//!   by `id`).
//! - **UDP, TCP, TLS** (`udp://`, `tcp://` with RFC 6587 octet counting, `tls://` per
//!   RFC 5425): delivered once written to the socket. Best effort: what the kernel had
//!   accepted when the server crashed or restarted, and any datagram, can be lost
//!   without anyone knowing.
//!
//! Invariants: the sink holds at most one connection; any failure drops it and the
//! batch is retried whole by the queue (at-least-once); a failure is logged once per
//! change of reason, and a recovery once.

pub mod config;
pub mod message;
pub mod relp;
pub mod transport;

use std::collections::HashSet;
use std::sync::Arc;

pub use config::{RawSyslog, SyslogConfig, Transport};
use message::Header;
use transport::Conn;

use super::{Outcome, Record, Sink};

/// The syslog sink: encodes records, sends them, classifies the outcome.
pub struct SyslogSink {
    name: Arc<str>,
    cfg: SyslogConfig,
    header: Header,
    conn: Option<Conn>,
    connected: bool,
    /// RELP: ids of events the server acknowledged in a batch not yet delivered whole.
    acked: HashSet<String>,
    /// The last failure logged, so an outage is logged once.
    last_error: Option<String>,
}

impl SyslogSink {
    /// A sink named `name`; HOSTNAME is the configured one or else `gateway`.
    /// Connects on the first delivery.
    pub fn new(name: &str, cfg: &SyslogConfig, gateway: &str) -> SyslogSink {
        let hostname = cfg.hostname.clone().unwrap_or_else(|| gateway.to_string());
        SyslogSink {
            name: Arc::from(name),
            header: Header {
                facility: cfg.facility,
                hostname,
                app_name: cfg.app_name.clone(),
                sd_id: format!("dcgw@{}", cfg.enterprise_id),
            },
            cfg: cfg.clone(),
            conn: None,
            connected: false,
            acked: HashSet::new(),
            last_error: None,
        }
    }

    async fn send(
        &mut self,
        batch: &[Record],
        msgs: &[(usize, Vec<u8>)],
    ) -> Result<(), transport::Error> {
        if self.conn.as_mut().is_some_and(Conn::peer_closed) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.cfg).await?);
        }
        let addr = self.cfg.addr();
        let acked = &mut self.acked;
        match self.conn.as_mut() {
            Some(Conn::Relp(session)) => session
                .send(msgs, |i| match batch.get(i) {
                    Some(Record::Alarm(ev)) => {
                        acked.insert(ev.id.clone());
                    }
                    Some(Record::Audit(a)) => {
                        acked.insert(a.id.clone());
                    }
                    _ => {}
                })
                .await
                .map_err(|source| transport::Error::Relp { addr, source }),
            Some(conn) => conn.write(&addr, msgs, self.cfg.timeout).await,
            None => Ok(()),
        }
    }

    fn failed(&mut self, e: &transport::Error) {
        self.connected = false;
        let reason = format!("{e}");
        if self.last_error.as_deref() != Some(reason.as_str()) {
            tracing::warn!(
                sink = %self.name,
                transport = self.cfg.transport.scheme(),
                "syslog delivery failed, will retry: {reason}"
            );
            self.last_error = Some(reason);
        }
    }

    fn succeeded(&mut self) {
        self.connected = true;
        if self.last_error.take().is_some() {
            tracing::info!(sink = %self.name, addr = %self.cfg.addr(), "syslog delivery works again");
        }
    }
}

impl Sink for SyslogSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "syslog"
    }

    fn connected(&self) -> bool {
        self.connected
    }

    async fn deliver(&mut self, batch: &[Record]) -> Outcome {
        let relp = self.cfg.transport == Transport::Relp;
        let msgs: Vec<(usize, Vec<u8>)> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, rec)| match rec {
                Record::Alarm(ev) if !(relp && self.acked.contains(&ev.id)) => Some((
                    i,
                    message::alarm(&self.header, ev, self.cfg.max_message_bytes),
                )),
                Record::Audit(a) if !(relp && self.acked.contains(&a.id)) => Some((
                    i,
                    message::audit(&self.header, a, self.cfg.max_message_bytes),
                )),
                // Readings never reach this sink (its kind cannot take them).
                _ => None,
            })
            .collect();
        if msgs.is_empty() {
            self.acked.clear();
            return Outcome::Delivered;
        }
        match self.send(batch, &msgs).await {
            Ok(()) => {
                self.acked.clear();
                self.succeeded();
                Outcome::Delivered
            }
            Err(e) => {
                self.failed(&e);
                if let Some(Conn::Relp(session)) = self.conn.take()
                    && matches!(
                        e,
                        transport::Error::Relp {
                            source: relp::Error::Refused(_) | relp::Error::Timeout(_),
                            ..
                        }
                    )
                {
                    session.close().await;
                }
                Outcome::Retry {
                    after: None,
                    reason: e.to_string(),
                }
            }
        }
    }
}
