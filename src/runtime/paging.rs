//! Wiring of paging: the pager's notices become notifications for the sinks (and
//! journal entries), and SMS texts received by the modems become commands.
//!
//! - [`Paging::deliver`] turns the pure pager's [`Output`] into
//!   [`Notification`]s, routed to every sink that takes notifications (the SMS
//!   modem, MQTT `<prefix>/notify/<person>`), each journaled (kind `notification`)
//!   with its attempt number before it is queued.
//! - [`replies`] is the SMS entry of the one command path: a text from a roster
//!   phone that reads "OK 123" (or a Vietnamese form, src/paging/reply.rs) is sent
//!   to the hub as an `ack` command `by` the person, origin `sms` with the phone as
//!   peer; the person gets the answer as a text. A text from an unknown number is
//!   journaled, logged and counted (`dcgw_bad_input{what="sms_reply",
//!   reason="unknown_sender"}`) and not answered; a text the gateway does not
//!   understand from a roster phone is journaled, counted (`reason="malformed"`) and
//!   answered with how to reply.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::commands::{Command, Commands, Origin, Verb};
use crate::journal::{Journal, Kind as JKind, NewEntry};
use crate::model::{Language, Timestamp};
use crate::paging::reply::{self, Reply};
use crate::paging::{Notice, Output, PagingConfig};
use crate::sinks::sms::Incoming;
use crate::sinks::worker::SinkQueue;
use crate::sinks::{Notification, Record, Route};

/// Where paging output goes: the sinks' queues and the journal.
#[derive(Clone)]
pub(super) struct Paging {
    pub outlets: Vec<(Route, SinkQueue)>,
    pub journal: Journal,
    pub gateway: Arc<str>,
}

impl Paging {
    /// Journal and queue every notice; journal every note.
    pub(super) fn deliver(&self, out: Output, now: Timestamp) {
        if out.notices.is_empty() && out.notes.is_empty() {
            return;
        }
        let mut entries = Vec::new();
        let mut records = Vec::new();
        let m = crate::metrics::get();
        for n in out.notices {
            let what = serde_json::to_value(n.what)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            m.notifications
                .get_or_create(&crate::metrics::labels(&[("what", &what)]))
                .inc();
            let rec = notification(&n, now);
            tracing::info!(id = %rec.id, person = %n.person, alarm = ?n.alarm, attempt = n.attempt, call = n.call, what = ?n.what, "notification");
            entries.push(NewEntry {
                ts: now,
                kind: JKind::Notification,
                gateway: self.gateway.clone(),
                device: None,
                data: serde_json::json!({
                    "event": "sent",
                    "id": rec.id,
                    "what": n.what,
                    "person": n.person,
                    "alarm": n.alarm,
                    "attempt": n.attempt,
                    "call": n.call,
                    "sms": !n.phone.is_empty(),
                    "text": n.text,
                }),
            });
            records.push(Record::Notification(Arc::new(rec)));
        }
        for note in out.notes {
            if note.event == "held" {
                m.notifications
                    .get_or_create(&crate::metrics::labels(&[("what", "held")]))
                    .inc();
            }
            tracing::info!(event = note.event, alarm = ?note.alarm, device = %note.device, "{}", note.detail);
            entries.push(NewEntry {
                ts: now,
                kind: JKind::Notification,
                gateway: self.gateway.clone(),
                device: (!note.device.is_empty()).then(|| Arc::from(note.device.as_str())),
                data: serde_json::to_value(&note).unwrap_or_default(),
            });
        }
        self.journal(entries);
        for rec in records {
            for (route, q) in &self.outlets {
                if route.passes(&rec) {
                    q.push(rec.clone());
                }
            }
        }
    }

    fn journal(&self, entries: Vec<NewEntry>) {
        if let Err(e) = self.journal.append_all(entries) {
            crate::metrics::get()
                .sink_errors
                .get_or_create(&crate::metrics::labels(&[
                    ("sink", "journal"),
                    ("reason", "write"),
                ]))
                .inc();
            tracing::error!(error = %e, "cannot write paging to the journal");
        }
    }
}

/// The notification a notice becomes (a new id; the queue's retries keep it).
fn notification(n: &Notice, now: Timestamp) -> Notification {
    Notification {
        id: uuid::Uuid::now_v7().to_string(),
        ts: now,
        person: n.person.clone(),
        phone: n.phone.clone(),
        text: n.text.clone(),
        lang: crate::texts::code(n.lang).to_string(),
        alarm_no: n.alarm,
        call: n.call,
        attempt: n.attempt,
    }
}

fn pick(lang: Language, vi: String, en: String) -> String {
    match lang {
        Language::Vi => vi,
        Language::En => en,
    }
}

fn bad(reason: &'static str) {
    crate::metrics::get()
        .bad_input
        .get_or_create(&crate::metrics::labels(&[
            ("what", "sms_reply"),
            ("reason", reason),
        ]))
        .inc();
}

/// The SMS entry of the command path: every text the modems receive (see the module
/// docs). Runs until every modem is gone.
pub(super) async fn replies(
    mut texts: mpsc::Receiver<Incoming>,
    cfg: Arc<PagingConfig>,
    commands: Commands,
    out: Paging,
) {
    while let Some(t) = texts.recv().await {
        let now = Timestamp::now();
        let from = t.message.from.clone();
        let text = t.message.text.clone();
        let Some(person) = cfg.by_phone(&from) else {
            bad("unknown_sender");
            tracing::warn!(%from, %text, "SMS from a number not in the roster: ignored");
            out.journal(vec![entry(&out, now, serde_json::json!({
                "event": "received", "from": from, "text": text, "result": "ignored: not a roster number",
            }))]);
            continue;
        };
        let lang = person.language;
        let answer = match reply::parse(&text) {
            Reply::Ack { no, comment } => {
                out.journal(vec![entry(&out, now, serde_json::json!({
                    "event": "received", "from": from, "person": person.id, "text": text, "result": format!("ack {no}"),
                }))]);
                let cmd = Command {
                    id: format!("sms-{}", uuid::Uuid::now_v7()),
                    verb: Verb::Ack,
                    target: no.to_string(),
                    by: person.id.clone(),
                    origin: Origin {
                        entry: "sms".into(),
                        peer: from.clone(),
                    },
                    comment,
                    reason: None,
                    minutes: None,
                    cause: None,
                    actions: None,
                    false_alarm: false,
                };
                let r = commands.send(cmd, Duration::from_secs(30)).await;
                if r.ok {
                    pick(
                        lang,
                        format!("Đã nhận cảnh báo #{no}. Cảm ơn."),
                        format!("Alarm #{no} acknowledged. Thank you."),
                    )
                } else {
                    let why = r.error.unwrap_or_default();
                    pick(
                        lang,
                        format!("Không nhận được cảnh báo #{no}: {why}"),
                        format!("Alarm #{no} not acknowledged: {why}"),
                    )
                }
            }
            Reply::Unknown => {
                bad("malformed");
                tracing::warn!(%from, person = %person.id, %text, "SMS reply not understood");
                out.journal(vec![entry(&out, now, serde_json::json!({
                    "event": "received", "from": from, "person": person.id, "text": text, "result": "not understood",
                }))]);
                pick(
                    lang,
                    "Không hiểu tin nhắn. Trả lời \"OK <số>\" (hoặc \"ĐÃ NHẬN <số>\") để nhận một cảnh báo, ví dụ OK 12.".into(),
                    "Reply not understood. Send \"OK <no>\" to acknowledge an alarm, e.g. OK 12.".into(),
                )
            }
        };
        let n = Notice {
            what: crate::paging::What::Reply,
            person: person.id.clone(),
            phone: person.phone.clone(),
            lang,
            text: answer,
            alarm: None,
            call: false,
            attempt: 1,
        };
        out.deliver(
            Output {
                notices: vec![n],
                notes: Vec::new(),
            },
            Timestamp::now(),
        );
    }
}

fn entry(out: &Paging, ts: Timestamp, data: serde_json::Value) -> NewEntry {
    NewEntry {
        ts,
        kind: JKind::Notification,
        gateway: out.gateway.clone(),
        device: None,
        data,
    }
}

/// One stream of every modem's received texts.
pub(super) fn merge(
    handles: &[crate::sinks::sms::SmsHandle],
) -> (mpsc::Receiver<Incoming>, Vec<tokio::task::JoinHandle<()>>) {
    let (tx, rx) = mpsc::channel(64);
    let mut tasks = Vec::new();
    for h in handles {
        let mut sub = h.subscribe();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(t) = sub.recv().await {
                if tx.send(t).await.is_err() {
                    return;
                }
            }
        }));
    }
    (rx, tasks)
}
