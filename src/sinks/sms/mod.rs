//! The SMS sink: notifications to people as SMS texts (and voice calls) through an
//! LTE/GSM modem on a serial port (SIMCom SIM7600, Quectel EC25/EG25 and the like),
//! with AT commands in PDU mode. See docs/SMS.md for wiring and the AT sequence.
//!
//! Shape: one task owns the port ([`modem`]): it opens it, runs the start-up checks,
//! reads unsolicited lines between and inside commands (new texts are read and
//! deleted, delivery reports matched to the message references they report on), checks
//! the modem's health every `check_interval_s`, and carries out one request at a time
//! from the sink. The sink ([`SmsSink`]) is what the queue drives: it encodes a
//! notification into PDUs ([`pdu`]) and asks the task to send them.
//!
//! Invariants:
//! - a notification leaves the queue only when the modem returned a message reference
//!   (`+CMGS: <mr>`) for every part (a call: when `ATD` was answered `OK`); a part
//!   accepted is not sent again when a later part must be retried (progress is kept
//!   per notification id while the gateway runs);
//! - `+CMS ERROR`s that concern the message itself (a bad number, a refused PDU:
//!   [`permanent`]) dead-letter it; every other error, and silence, keeps it queued and
//!   marks the modem failing;
//! - the modem's state is published as gateway points ([`ModemStatus::samples`]):
//!   a modem that is silent, has no SIM, is not registered, has no signal or answers
//!   `+CMS ERROR` makes `modem_ok` false, which is a serious gateway alarm.

pub mod at;
pub mod config;
pub mod modem;
pub mod pdu;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use config::{RawSms, SmsConfig};
pub use modem::{Incoming, ModemStatus, Report};

use super::{Outcome, Record, Sink};

/// What the sink asks the modem task to do.
#[derive(Debug)]
pub(crate) enum Request {
    /// Send one PDU part; answered with its message reference.
    Part {
        part: pdu::Part,
        /// The notification it belongs to, to match delivery reports.
        id: Arc<str>,
        reply: oneshot::Sender<Result<u8, at::Error>>,
    },
    /// Ring `number`, hang up after the configured time.
    Call {
        number: String,
        reply: oneshot::Sender<Result<(), at::Error>>,
    },
}

/// What the modem task shares with the sink, the hub and tests.
#[derive(Debug, Default)]
pub struct Shared {
    /// The modem's current state.
    pub status: Mutex<ModemStatus>,
    /// Delivery reports received, matched to notifications (the newest 256).
    pub reports: Mutex<Vec<Report>>,
    /// Texts received, read and deleted from the modem (the newest 256).
    pub incoming: Mutex<Vec<Incoming>>,
    /// Message references waiting for a report: mr → notification id.
    pub(crate) waiting: Mutex<HashMap<u8, Arc<str>>>,
    /// Who wants each received text (the paging replies): a full or closed channel
    /// loses the text for that subscriber only (logged).
    pub(crate) subscribers: Mutex<Vec<mpsc::Sender<Incoming>>>,
}

/// A handle on a running modem: its state, the reports and texts it received.
#[derive(Clone)]
pub struct SmsHandle {
    shared: Arc<Shared>,
}

impl SmsHandle {
    /// The modem's current state.
    pub fn status(&self) -> ModemStatus {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// Delivery reports received so far.
    pub fn reports(&self) -> Vec<Report> {
        self.shared
            .reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// Texts received so far.
    pub fn incoming(&self) -> Vec<Incoming> {
        self.shared
            .incoming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// Every text received from now on (replies to pages: "OK 123").
    pub fn subscribe(&self) -> mpsc::Receiver<Incoming> {
        let (tx, rx) = mpsc::channel(64);
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }
    /// The gateway points of the modem's state.
    pub fn samples(&self) -> Vec<(&'static str, crate::model::Value)> {
        self.status().samples()
    }
}

/// The sink: turns notifications into SMS parts (or a call) for the modem task.
pub struct SmsSink {
    name: Arc<str>,
    tx: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    report: bool,
    limit: Duration,
    next_ref: u8,
    /// Progress of notifications partly sent: id → (concatenation reference, message
    /// references of the parts accepted so far).
    progress: HashMap<String, (u8, Vec<u8>)>,
}

impl SmsSink {
    /// Start the modem task on `cfg.port` and return the sink. The port is opened by
    /// the task (and reopened after a failure), so a missing modem is an alarm, not a
    /// start-up error.
    pub fn start(name: &str, cfg: &SmsConfig) -> SmsSink {
        let (tx, rx) = mpsc::channel(8);
        let shared = Arc::new(Shared::default());
        tokio::spawn(modem::run(
            cfg.clone(),
            rx,
            shared.clone(),
            name.to_string(),
        ));
        SmsSink::with(name, cfg, tx, shared)
    }

    /// The sink over a modem task running on any byte stream (tests, benchmarks).
    pub fn start_on<T>(name: &str, cfg: &SmsConfig, io: T) -> SmsSink
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(8);
        let shared = Arc::new(Shared::default());
        tokio::spawn(modem::run_on(
            cfg.clone(),
            io,
            rx,
            shared.clone(),
            name.to_string(),
        ));
        SmsSink::with(name, cfg, tx, shared)
    }

    fn with(
        name: &str,
        cfg: &SmsConfig,
        tx: mpsc::Sender<Request>,
        shared: Arc<Shared>,
    ) -> SmsSink {
        SmsSink {
            name: Arc::from(name),
            tx,
            shared,
            report: cfg.status_reports,
            // The task may be busy with a health check before it takes the request.
            limit: cfg.send_timeout + cfg.command_timeout * 8 + cfg.call_ring,
            next_ref: (crate::model::Timestamp::now().millis() & 0xFF) as u8,
            progress: HashMap::new(),
        }
    }

    /// A handle on the modem's state.
    pub fn handle(&self) -> SmsHandle {
        SmsHandle {
            shared: self.shared.clone(),
        }
    }

    async fn ask<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<R, at::Error>>) -> Request,
    ) -> Result<R, at::Error> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(make(reply)).await.is_err() {
            return Err(at::Error::Io("the modem task has stopped".into()));
        }
        match tokio::time::timeout(self.limit, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(at::Error::Io("the modem task has stopped".into())),
            Err(_) => Err(at::Error::Timeout {
                cmd: "(modem busy)".into(),
                after: self.limit,
            }),
        }
    }

    async fn one(&mut self, n: &super::Notification) -> Result<(), Outcome> {
        // A person who takes no texts (MQTT only) has no phone in the notification.
        if n.phone.is_empty() {
            tracing::debug!(sink = %self.name, id = %n.id, person = %n.person, "notification without a phone: not for SMS");
            return Ok(());
        }
        if n.call {
            if !pdu::valid_number(&n.phone) {
                return Err(Outcome::Rejected {
                    records: vec![(0, pdu::Error::BadNumber(n.phone.clone()).to_string())],
                });
            }
            return self
                .ask(|reply| Request::Call {
                    number: n.phone.clone(),
                    reply,
                })
                .await
                .map_err(|e| classify(&e));
        }
        let (reference, done) = match self.progress.get(&n.id) {
            Some((r, d)) => (*r, d.len()),
            None => {
                self.next_ref = self.next_ref.wrapping_add(1);
                (self.next_ref, 0)
            }
        };
        let parts = pdu::submit(&n.phone, &n.text, reference, self.report).map_err(|e| {
            Outcome::Rejected {
                records: vec![(0, e.to_string())],
            }
        })?;
        let id: Arc<str> = Arc::from(n.id.as_str());
        for part in parts.into_iter().skip(done) {
            let r = self
                .ask(|reply| Request::Part {
                    part,
                    id: id.clone(),
                    reply,
                })
                .await;
            match r {
                Ok(mr) => self
                    .progress
                    .entry(n.id.clone())
                    .or_insert((reference, Vec::new()))
                    .1
                    .push(mr),
                Err(e) => return Err(classify(&e)),
            }
        }
        if let Some((_, mrs)) = self.progress.remove(&n.id) {
            tracing::info!(sink = %self.name, id = %n.id, person = %n.person, parts = mrs.len(), ?mrs, "SMS accepted by the network");
        } else {
            tracing::info!(sink = %self.name, id = %n.id, person = %n.person, "SMS accepted by the network");
        }
        Ok(())
    }
}

/// `dc-gateway modem`: start the modem as the sink would, print its state after the
/// first check, then send `text` (`(number, text)`) and ring `call` if asked. Returns
/// the report and whether everything asked for worked.
pub async fn probe(
    name: &str,
    cfg: &SmsConfig,
    text: Option<(&str, &str)>,
    call: Option<&str>,
) -> (String, bool) {
    use std::fmt::Write;
    let mut sink = SmsSink::start(name, cfg);
    let handle = sink.handle();
    let mut out = format!("modem of sink {name} on {}\n", cfg.port.display());
    let limit = cfg.command_timeout * 16 + Duration::from_secs(2);
    let start = tokio::time::Instant::now();
    while !handle.status().checked && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = handle.status();
    let yes = |b: bool| if b { "yes" } else { "NO" };
    let _ = writeln!(out, "  responding:  {}", yes(st.responding));
    let _ = writeln!(out, "  set up:      {}", yes(st.configured));
    let _ = writeln!(out, "  SIM ready:   {}", yes(st.sim_ready));
    let _ = writeln!(out, "  registered:  {}", yes(st.registered));
    let _ = writeln!(
        out,
        "  signal:      {}",
        st.signal_dbm
            .map_or("none".to_string(), |d| format!("{d} dBm"))
    );
    if let Some(e) = &st.last_error {
        let _ = writeln!(out, "  last error:  {e}");
    }
    let mut ok = st.ok();
    let _ = writeln!(out, "  modem_ok:    {}", yes(ok));
    let asks = [
        ("text", text.map(|t| t.0), text.map_or("", |t| t.1), false),
        ("call", call, "", true),
    ];
    for (what, to, body, is_call) in asks {
        let Some(to) = to else { continue };
        let n = super::Notification {
            id: uuid::Uuid::now_v7().to_string(),
            ts: crate::model::Timestamp::now(),
            person: "test".into(),
            phone: to.to_string(),
            text: body.to_string(),
            lang: "vi".into(),
            alarm_no: None,
            call: is_call,
            attempt: 1,
        };
        let outcome = sink.deliver(&[Record::Notification(Arc::new(n))]).await;
        let done = outcome == Outcome::Delivered;
        ok &= done;
        let _ = match outcome {
            Outcome::Delivered if is_call => writeln!(out, "  {what} to {to}: rang, hung up"),
            Outcome::Delivered => writeln!(out, "  {what} to {to}: accepted by the network"),
            Outcome::Retry { reason, .. } => writeln!(
                out,
                "  {what} to {to}: FAILED ({reason}); the gateway would retry"
            ),
            Outcome::Rejected { records } => writeln!(
                out,
                "  {what} to {to}: REFUSED ({})",
                records.first().map_or("", |r| r.1.as_str())
            ),
            Outcome::Split => writeln!(out, "  {what} to {to}: FAILED"),
        };
    }
    let reports_wait = tokio::time::Instant::now();
    if text.is_some() && cfg.status_reports && ok {
        // A delivery report usually follows within seconds.
        while handle.reports().is_empty() && reports_wait.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = match handle.reports().first() {
            Some(r) if r.report.delivered() => writeln!(out, "  delivery report: delivered"),
            Some(r) => writeln!(out, "  delivery report: status 0x{:02X}", r.report.status),
            None => writeln!(
                out,
                "  delivery report: none within 15 s (the operator may not send them)"
            ),
        };
    }
    (out, ok)
}

/// The queue settings of an SMS sink: one notification per delivery (its outcome —
/// sent, retry, refused — is about that one), no lingering, alarm-event order kept;
/// the modem is slow (seconds per text) and the network may refuse for a while, so
/// retries back off from 5 s to 2 min.
pub fn queue_config(cfg: &SmsConfig, max_bytes: u64) -> super::worker::QueueConfig {
    super::worker::QueueConfig {
        batch_max: 1,
        linger: Duration::ZERO,
        max_records: cfg.max_queued,
        max_bytes,
        backoff_min: Duration::from_secs(5),
        backoff_max: Duration::from_secs(120),
        live_first: false,
        ..Default::default()
    }
}

/// `+CMS ERROR` codes that concern the message, not the modem or the network: sending
/// it again cannot succeed (TS 24.011 Annex E-2 RP causes: 1 unassigned number, 8
/// operator determined barring, 10 call barred, 21 short message transfer rejected,
/// 29 facility rejected, 30 unknown subscriber, 96..99 invalid or unknown message;
/// TS 27.005 §3.2.5: 304 invalid PDU mode parameter, 305 invalid text mode parameter).
pub fn permanent(code: u16) -> bool {
    matches!(code, 1 | 8 | 10 | 21 | 29 | 30 | 96..=99 | 304 | 305)
}

fn classify(e: &at::Error) -> Outcome {
    match e {
        at::Error::Cms { code, .. } if permanent(*code) => Outcome::Rejected {
            records: vec![(0, e.to_string())],
        },
        _ => Outcome::Retry {
            after: None,
            reason: e.to_string(),
        },
    }
}

impl Sink for SmsSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "sms"
    }
    fn connected(&self) -> bool {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ok()
    }
    async fn deliver(&mut self, batch: &[Record]) -> Outcome {
        // The queue hands one notification at a time (batch_max 1): an outcome is
        // about that one.
        for rec in batch {
            if let Record::Notification(n) = rec
                && let Err(o) = self.one(n).await
            {
                if let Outcome::Rejected { .. } = &o {
                    self.progress.remove(&n.id);
                }
                return o;
            }
        }
        Outcome::Delivered
    }
}
