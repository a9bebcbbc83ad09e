//! The task that owns the modem's port: start-up checks, health checks, unsolicited
//! lines, and the sink's requests one at a time.
//!
//! Start-up (docs/SMS.md "AT sequence"; TS 27.007 / 27.005, SIM7600 and EC25 AT
//! manuals): `AT` (up to 3 tries: a modem still booting), `ATE0` (no echo), `AT+CMEE=1`
//! (numeric `+CME ERROR`s), `AT+CPIN?` (`READY`, else the PIN if configured),
//! `AT+CMGF=0` (PDU mode), `AT+CNMI=2,1,0,1,0` (`+CMTI` for a stored new text, `+CDS`
//! for a status report), `AT+CEREG=1` / `AT+CREG=1` (registration URCs), then the health
//! check (`AT+CPIN?`, `AT+CEREG?` falling back to `AT+CREG?`, `AT+CSQ`) and
//! `AT+CMGL=4` (texts already stored: read and deleted). `AT+CSMP` is not used: it
//! sets text-mode parameters only; in PDU mode the status-report request and validity
//! are in each PDU's first octet.
//!
//! A failure of the port (EOF, EIO: the modem was unplugged or reset) or two silent
//! commands in a row close the port; it is reopened with a capped backoff (1 s to 60 s).
//! While the modem is not usable, requests are answered at once with the error, so the
//! queue keeps them and retries with its own backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::at::{At, Error, Urc};
use super::{Request, Shared, SmsConfig, pdu};
use crate::model::Value;

/// The modem's state as the gateway shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModemStatus {
    /// It answers AT commands.
    pub responding: bool,
    /// The SIM is present and unlocked (`+CPIN: READY`).
    pub sim_ready: bool,
    /// Registered on a network, home or roaming (`+CEREG`/`+CREG` stat 1 or 5).
    pub registered: bool,
    /// Received signal in dBm (`+CSQ`), `None` when the modem reports none (99).
    pub signal_dbm: Option<f64>,
    /// The last send failed with a `+CMS ERROR` that is not about the message itself.
    pub sms_failing: bool,
    /// The start-up sequence completed (PDU mode, new-message and report indications);
    /// false again after the modem restarted on its own (`RDY`, or `AT+CMGF?` no longer
    /// answering 0), until it is run again.
    pub configured: bool,
    /// The last problem, for logs and the API.
    pub last_error: Option<String>,
    /// The modem has been checked at least once (opened and set up, or failed to):
    /// until then it has no points, so a gateway starting up raises no alarm for a
    /// modem it has not asked yet.
    pub checked: bool,
}

impl ModemStatus {
    /// Usable for sending: responding, SIM ready, registered, some signal, sends not
    /// failing.
    pub fn ok(&self) -> bool {
        self.responding
            && self.configured
            && self.sim_ready
            && self.registered
            && self.signal_dbm.is_some()
            && !self.sms_failing
    }

    /// The gateway points (`docs/POINTS.md`, kind `gateway`); none before the first
    /// check.
    pub fn samples(&self) -> Vec<(&'static str, Value)> {
        if !self.checked {
            return Vec::new();
        }
        let mut v = vec![
            ("modem_ok", Value::Bool(self.ok())),
            ("modem_responding", Value::Bool(self.responding)),
            ("modem_sim_ready", Value::Bool(self.sim_ready)),
            ("modem_registered", Value::Bool(self.registered)),
        ];
        if let Some(d) = self.signal_dbm {
            v.push(("modem_signal_dbm", Value::Number(d)));
        }
        v
    }
}

/// A delivery report matched to the notification it reports on.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The notification's id (`None`: a reference this gateway did not wait for).
    pub notification: Option<Arc<str>>,
    /// The report.
    pub report: pdu::StatusReport,
}

/// A text received by the modem.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// Where it was stored (`SM`) and at which index (deleted since).
    pub index: u32,
    /// The decoded text.
    pub message: pdu::Deliver,
}

/// Run the modem task on the configured serial port until the sink is dropped.
pub(crate) async fn run(
    cfg: SmsConfig,
    mut rx: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    name: String,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let port = tokio_serial::SerialStream::open(&tokio_serial::new(
            cfg.port.to_string_lossy(),
            cfg.baud_rate,
        ));
        match port {
            Ok(p) => {
                if !session(&cfg, p, &mut rx, &shared, &name).await {
                    return;
                }
                backoff = Duration::from_secs(1);
            }
            Err(e) => {
                let msg = format!("cannot open {}: {e}", cfg.port.display());
                set(&shared, |s| {
                    *s = ModemStatus {
                        last_error: Some(msg.clone()),
                        checked: true,
                        ..Default::default()
                    }
                });
                tracing::warn!(sink = %name, error = %msg, "modem port");
            }
        }
        if !refuse_for(backoff, &mut rx, &shared).await {
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

/// Run the modem task on an open stream (tests): one session, then refuse requests.
pub(crate) async fn run_on<T: AsyncRead + AsyncWrite + Unpin>(
    cfg: SmsConfig,
    io: T,
    mut rx: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    name: String,
) {
    if session(&cfg, io, &mut rx, &shared, &name).await {
        while refuse_for(Duration::from_secs(3600), &mut rx, &shared).await {}
    }
}

fn set(shared: &Shared, f: impl FnOnce(&mut ModemStatus)) {
    f(&mut shared.status.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Answer requests with the last error for `wait`; false when the sink is gone.
async fn refuse_for(wait: Duration, rx: &mut mpsc::Receiver<Request>, shared: &Shared) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return true,
            Ok(None) => return false,
            Ok(Some(req)) => {
                let why = shared
                    .status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "modem not ready".into());
                let e = Error::Io(why);
                match req {
                    Request::Part { reply, .. } => {
                        let _ = reply.send(Err(e));
                    }
                    Request::Call { reply, .. } => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }
}

/// One session on an open port: start-up, then requests, URCs and health checks until
/// the port fails (true: reopen) or the sink is gone (false).
async fn session<T: AsyncRead + AsyncWrite + Unpin>(
    cfg: &SmsConfig,
    io: T,
    rx: &mut mpsc::Receiver<Request>,
    shared: &Shared,
    name: &str,
) -> bool {
    let mut at = At::new(io, cfg.command_timeout);
    if let Err(e) = start_up(&mut at, cfg, shared).await {
        tracing::error!(sink = %name, error = %e, "modem start-up failed");
        set(shared, |s| {
            s.checked = true;
            s.last_error = Some(e.to_string());
            s.configured = false;
            if e.is_silence() {
                s.responding = false;
            }
        });
        if e.is_silence() {
            return true;
        }
    }
    let mut silent = 0u32;
    let mut next_check = Instant::now() + cfg.check_interval;
    loop {
        urcs(&mut at, shared, name).await;
        enum Ev {
            Req(Option<Request>),
            Idle(Result<(), Error>),
        }
        let wait = next_check.saturating_duration_since(Instant::now());
        let ev = tokio::select! {
            r = rx.recv() => Ev::Req(r),
            r = at.wait_urc(wait) => Ev::Idle(r),
        };
        let result: Result<(), Error> = match ev {
            Ev::Req(None) => return false,
            Ev::Req(Some(Request::Part { reply, .. })) if !configured(shared) => {
                // Not in PDU mode for sure: sending now could be read as text mode.
                let why = shared
                    .status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .last_error
                    .clone()
                    .unwrap_or_default();
                let _ = reply.send(Err(Error::Io(format!("modem not set up yet: {why}"))));
                Ok(())
            }
            Ev::Req(Some(Request::Part { part, id, reply })) => {
                let r = at
                    .send_pdu(part.tpdu_len, &part.hex, cfg.send_timeout)
                    .await;
                let out = match &r {
                    Ok(mr) => {
                        shared
                            .waiting
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(*mr, id);
                        set(shared, |s| {
                            s.sms_failing = false;
                            s.responding = true;
                        });
                        Ok(())
                    }
                    Err(Error::Cms { code, .. }) if super::permanent(*code) => Ok(()),
                    Err(e @ Error::Cms { .. }) => {
                        set(shared, |s| {
                            s.sms_failing = true;
                            s.responding = true;
                            s.last_error = Some(e.to_string());
                        });
                        Ok(())
                    }
                    Err(e) => Err(e.clone()),
                };
                if let Err(e) = &r {
                    tracing::warn!(sink = %name, error = %e, "SMS part not sent");
                }
                let _ = reply.send(r);
                out
            }
            Ev::Req(Some(Request::Call { number, reply })) => {
                let r = call(&mut at, &number, cfg.call_ring).await;
                let out = match &r {
                    Err(e) if e.is_silence() => Err(e.clone()),
                    _ => Ok(()),
                };
                let _ = reply.send(r);
                out
            }
            Ev::Idle(Err(e)) => Err(e),
            Ev::Idle(Ok(())) => {
                urcs(&mut at, shared, name).await;
                // A restart announced by `RDY` is handled at once, not at the next check.
                if Instant::now() >= next_check || !configured(shared) {
                    next_check = Instant::now() + cfg.check_interval;
                    match health(&mut at, shared).await {
                        Ok(()) if !configured(shared) => match start_up(&mut at, cfg, shared).await
                        {
                            Ok(()) => Ok(()),
                            Err(e) if e.is_silence() => Err(e),
                            Err(e) => {
                                set(shared, |s| s.last_error = Some(e.to_string()));
                                Ok(())
                            }
                        },
                        r => r,
                    }
                } else {
                    Ok(())
                }
            }
        };
        match result {
            Ok(()) => silent = 0,
            Err(e) => {
                tracing::warn!(sink = %name, error = %e, "modem did not answer");
                silent += 1;
                set(shared, |s| {
                    s.checked = true;
                    s.last_error = Some(e.to_string());
                    if silent >= 2 || matches!(e, Error::Io(_)) {
                        s.responding = false;
                    }
                });
                if matches!(e, Error::Io(_)) || silent >= 2 {
                    // Close and reopen the port; meanwhile check once more whether it
                    // answers at all (a reset modem may be back).
                    if matches!(e, Error::Timeout { .. }) && at.command("AT").await.is_ok() {
                        silent = 0;
                        set(shared, |s| s.responding = true);
                        continue;
                    }
                    return true;
                }
            }
        }
    }
}

async fn start_up<T: AsyncRead + AsyncWrite + Unpin>(
    at: &mut At<T>,
    cfg: &SmsConfig,
    shared: &Shared,
) -> Result<(), Error> {
    let mut first = at.command("AT").await;
    for _ in 0..2 {
        if first.is_ok() {
            break;
        }
        first = at.command("AT").await;
    }
    first?;
    set(shared, |s| s.responding = true);
    at.command("ATE0").await?;
    at.command("AT+CMEE=1").await?;
    if let Ok(r) = at.command("AT+CPIN?").await
        && r.iter().any(|l| l.contains("SIM PIN"))
        && let Some(pin) = &cfg.pin
    {
        at.command(&format!("AT+CPIN=\"{pin}\"")).await?;
    }
    at.command("AT+CMGF=0").await?;
    at.command("AT+CNMI=2,1,0,1,0").await?;
    // Registration URCs: LTE (+CEREG) and circuit-switched (+CREG); a modem without
    // LTE answers ERROR to the first, which is not a failure.
    let _ = at.command("AT+CEREG=1").await;
    let _ = at.command("AT+CREG=1").await;
    health(at, shared).await?;
    set(shared, |s| {
        s.configured = true;
        s.checked = true;
    });
    stored(at, shared).await
}

/// How many received texts and delivery reports are kept in memory (the newest).
const KEEP: usize = 256;

fn keep_last<T>(list: &std::sync::Mutex<Vec<T>>, item: T) {
    let mut g = list.lock().unwrap_or_else(|e| e.into_inner());
    g.push(item);
    if g.len() > KEEP {
        let over = g.len() - KEEP;
        g.drain(..over);
    }
}

fn configured(shared: &Shared) -> bool {
    shared
        .status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .configured
}

/// `AT+CPIN?`, `AT+CEREG?` (else `AT+CREG?`), `AT+CSQ` into the shared status. Only
/// silence is an error; what the answers say goes into the status.
async fn health<T: AsyncRead + AsyncWrite + Unpin>(
    at: &mut At<T>,
    shared: &Shared,
) -> Result<(), Error> {
    let sim = match at.command("AT+CPIN?").await {
        Ok(r) => r.iter().any(|l| l.trim() == "+CPIN: READY"),
        Err(e) if e.is_silence() => return Err(e),
        // +CME ERROR: 10 SIM not inserted, 13 SIM failure, ... (TS 27.007 §9.2.1)
        Err(_) => false,
    };
    let stat_of = |r: &[String], p: &str| -> Option<u8> {
        r.iter()
            .find_map(|l| l.strip_prefix(p))
            .and_then(|v| v.split(',').nth(1)?.trim().parse().ok())
    };
    let mut registered = match at.command("AT+CEREG?").await {
        Ok(r) => stat_of(&r, "+CEREG:").is_some_and(|s| s == 1 || s == 5),
        Err(e) if e.is_silence() => return Err(e),
        Err(_) => false,
    };
    if !registered {
        registered = match at.command("AT+CREG?").await {
            Ok(r) => stat_of(&r, "+CREG:").is_some_and(|s| s == 1 || s == 5),
            Err(e) if e.is_silence() => return Err(e),
            Err(_) => false,
        };
    }
    // A modem that restarted on its own is back in text mode (the default): set it
    // up again before the next text.
    match at.command("AT+CMGF?").await {
        Ok(r) if r.iter().any(|l| l.replace(' ', "") == "+CMGF:0") => {}
        Err(e) if e.is_silence() => return Err(e),
        _ => set(shared, |s| s.configured = false),
    }
    let signal = match at.command("AT+CSQ").await {
        // +CSQ: <rssi>,<ber>: 0 ≤ −113 dBm, 1 −111, 2..30 −109..−53, 31 ≥ −51, 99
        // unknown (TS 27.007 §8.5).
        Ok(r) => r
            .iter()
            .find_map(|l| l.strip_prefix("+CSQ:"))
            .and_then(|v| v.split(',').next()?.trim().parse::<u8>().ok())
            .filter(|rssi| *rssi <= 31)
            .map(|rssi| -113.0 + 2.0 * f64::from(rssi)),
        Err(e) if e.is_silence() => return Err(e),
        Err(_) => None,
    };
    set(shared, |s| {
        s.responding = true;
        s.sim_ready = sim;
        s.registered = registered;
        s.signal_dbm = signal;
        let problem = if !sim {
            Some("no SIM ready (AT+CPIN?)")
        } else if !registered {
            Some("not registered on a network")
        } else if signal.is_none() {
            Some("no signal (AT+CSQ 99)")
        } else {
            None
        };
        if let Some(p) = problem {
            s.last_error = Some(p.to_string());
        }
    });
    Ok(())
}

/// Texts already stored: `AT+CMGL=4` (all, PDU mode), each decoded and deleted.
async fn stored<T: AsyncRead + AsyncWrite + Unpin>(
    at: &mut At<T>,
    shared: &Shared,
) -> Result<(), Error> {
    let r = match at.command("AT+CMGL=4").await {
        Ok(r) => r,
        Err(e) if e.is_silence() => return Err(e),
        Err(_) => return Ok(()),
    };
    let mut it = r.iter();
    while let Some(head) = it.next() {
        let Some(rest) = head.strip_prefix("+CMGL:") else {
            continue;
        };
        let mut f = rest.split(',');
        let index: u32 = f.next().and_then(|i| i.trim().parse().ok()).unwrap_or(0);
        let len: Option<usize> = rest.rsplit(',').next().and_then(|l| l.trim().parse().ok());
        if let Some(pdu) = it.next() {
            keep(shared, index, pdu, len);
        }
        let _ = at.command(&format!("AT+CMGD={index}")).await;
    }
    Ok(())
}

fn keep(shared: &Shared, index: u32, hex: &str, len: Option<usize>) {
    match pdu::deliver(hex, len) {
        Ok(message) => {
            tracing::info!(index, from = %message.from, text = %message.text, "SMS received");
            let text = Incoming { index, message };
            shared
                .subscribers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|s| match s.try_send(text.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(index, "received SMS not handed on: its reader is behind");
                        true
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
            keep_last(&shared.incoming, text);
        }
        Err(e) => tracing::warn!(index, error = %e, "received SMS not decoded; deleted"),
    }
}

/// Handle what arrived unasked.
async fn urcs<T: AsyncRead + AsyncWrite + Unpin>(at: &mut At<T>, shared: &Shared, name: &str) {
    // Reading a text can bring more URCs: loop until none is left.
    loop {
        let list = at.take_urcs();
        if list.is_empty() {
            return;
        }
        for u in list {
            match u {
                Urc::NewMessage { index, .. } => {
                    match at.command(&format!("AT+CMGR={index}")).await {
                        Ok(r) => {
                            let len = r
                                .first()
                                .and_then(|h| h.rsplit(',').next()?.trim().parse().ok());
                            if let Some(pdu) = r.get(1) {
                                keep(shared, index, pdu, len);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(sink = %name, index, error = %e, "cannot read a received SMS")
                        }
                    }
                    if let Err(e) = at.command(&format!("AT+CMGD={index}")).await {
                        tracing::warn!(sink = %name, index, error = %e, "cannot delete a received SMS");
                    }
                }
                Urc::StatusReport { len, pdu } => match pdu::status_report(&pdu, Some(len)) {
                    Ok(report) => {
                        let notification = if report.status >= 0x20 && report.status < 0x40 {
                            // Still being tried: the reference stays waiting.
                            shared
                                .waiting
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get(&report.mr)
                                .cloned()
                        } else {
                            shared
                                .waiting
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&report.mr)
                        };
                        if report.failed() {
                            tracing::warn!(sink = %name, mr = report.mr, to = %report.to, status = report.status, ?notification, "SMS not delivered (status report)");
                        } else {
                            tracing::info!(sink = %name, mr = report.mr, to = %report.to, status = report.status, ?notification, "SMS status report");
                        }
                        keep_last(
                            &shared.reports,
                            Report {
                                notification,
                                report,
                            },
                        );
                    }
                    Err(e) => tracing::warn!(sink = %name, error = %e, "status report not decoded"),
                },
                // Back on a network counts at once; a loss only if the next health
                // check still finds it (a cell reselection shows `searching` for a
                // moment, which must not raise a serious alarm and open an incident).
                Urc::Registration(stat) => {
                    if stat == 1 || stat == 5 {
                        set(shared, |s| s.registered = true);
                    }
                    tracing::info!(sink = %name, stat, "modem registration changed");
                }
                Urc::Ring => tracing::info!(sink = %name, "incoming call (not answered)"),
                // Quectel's `RDY` after a (re)start: the start-up settings are gone.
                Urc::Other(line) if line == "RDY" => {
                    tracing::warn!(sink = %name, "the modem restarted; setting it up again");
                    set(shared, |s| s.configured = false);
                }
                Urc::Other(line) => tracing::debug!(sink = %name, %line, "unsolicited line"),
            }
        }
    }
}

/// Ring `number` for `ring`, then hang up (`ATD<number>;` V.250 §6.3.1 with `;` for a
/// voice call; `AT+CHUP` TS 27.007 §6.5, `ATH` on modems without it).
async fn call<T: AsyncRead + AsyncWrite + Unpin>(
    at: &mut At<T>,
    number: &str,
    ring: Duration,
) -> Result<(), Error> {
    if !pdu::valid_number(number) {
        return Err(Error::Error {
            cmd: format!("ATD{number}; (not a phone number)"),
        });
    }
    at.command_within(
        &format!("ATD{number};"),
        at.timeout.max(Duration::from_secs(20)),
    )
    .await?;
    let deadline = Instant::now() + ring;
    let mut ended = false;
    while !ended && Instant::now() < deadline {
        at.wait_urc(deadline.saturating_duration_since(Instant::now()))
            .await?;
        // Keep the URCs for the main loop, but notice the call's end.
        let list = at.take_urcs();
        ended = list.iter().any(|u| {
            matches!(u, Urc::Other(l) if l == "NO CARRIER" || l == "BUSY" || l == "NO ANSWER" || l.starts_with("VOICE CALL: END"))
        });
        for u in list {
            if !matches!(&u, Urc::Other(_)) {
                requeue(at, u);
            }
        }
    }
    if at.command("AT+CHUP").await.is_err() {
        at.command("ATH").await?;
    }
    Ok(())
}

fn requeue<T: AsyncRead + AsyncWrite + Unpin>(at: &mut At<T>, u: Urc) {
    at.push_urc(u);
}
