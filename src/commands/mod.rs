//! Commands from people: one path whatever their entry (MQTT, the board's local socket,
//! later the web console and SMS replies).
//!
//! A command is `{id, verb, target, by, origin, comment, ...}`. Every entry turns what
//! it received into a [`Command`] with [`parse`] (a malformed one is answered with an
//! error and counted, never applied), then sends a [`Request`] to the hub, which:
//! 1. answers a command whose `id` it has seen before with the answer it gave then
//!    (idempotent: a client that resends after a reconnect gets the same answer,
//!    applied once);
//! 2. validates and applies it to the alarm state;
//! 3. writes it, with its origin and result, to the journal (fsync) together with the
//!    alarm events it caused;
//! 4. only then answers with a [`Reply`] and lets the events go to the sinks.
//!
//! `by` is a claim of the entry (an MQTT client says who it is; the broker's ACL is the
//! access control), journaled beside the origin (the MQTT client id, the local socket's
//! peer user).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// What a command asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    /// Acknowledge an alarm instance (`target`: its number, or `device/rule`).
    Ack,
    /// Shelve an alarm (`target`, `reason`, `until`).
    Shelve,
    /// Unshelve an alarm.
    Unshelve,
    /// Start a maintenance window (`target`: a device, room or system).
    MaintenanceStart,
    /// End a maintenance window.
    MaintenanceEnd,
    /// Send a test notification (`target`: a person).
    TestNotification,
    /// Silence the sirens (`target`: `all` or empty, or an output id) for the alarms
    /// sounding them now; a new alarm sounds them again.
    Silence,
    /// Validate and apply a site config (`target`: the file's absolute path; empty:
    /// the file the gateway was started with). Only from the local socket; applied
    /// by the runtime, not the hub (src/runtime/reload.rs).
    ConfigApply,
}

impl Verb {
    /// Every verb.
    pub const ALL: [Verb; 8] = [
        Verb::Ack,
        Verb::Shelve,
        Verb::Unshelve,
        Verb::MaintenanceStart,
        Verb::MaintenanceEnd,
        Verb::TestNotification,
        Verb::Silence,
        Verb::ConfigApply,
    ];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Ack => "ack",
            Verb::Shelve => "shelve",
            Verb::Unshelve => "unshelve",
            Verb::MaintenanceStart => "maintenance_start",
            Verb::MaintenanceEnd => "maintenance_end",
            Verb::TestNotification => "test_notification",
            Verb::Silence => "silence",
            Verb::ConfigApply => "config_apply",
        }
    }
}

/// Where a command came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// The entry: `mqtt`, `socket`, `web`, `sms`.
    pub entry: String,
    /// Who the entry says sent it: the MQTT sink and client id, the socket's peer user.
    pub peer: String,
}

/// A command, parsed and checked for form (not yet against the alarm state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The sender's id for it; the same id is applied once.
    pub id: String,
    /// What it asks.
    pub verb: Verb,
    /// What it acts on.
    #[serde(default)]
    pub target: String,
    /// Who says they send it.
    pub by: String,
    /// Where it came in (set by the entry, never by the sender).
    #[serde(default = "unknown_origin")]
    pub origin: Origin,
    /// The operator's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Why an alarm is shelved (required by `shelve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For how long (`shelve`; default and maximum in the site's `[alarms]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
}

fn unknown_origin() -> Origin {
    Origin {
        entry: String::new(),
        peer: String::new(),
    }
}

/// The answer to a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The command's id (empty when the command could not be read at all).
    pub id: String,
    /// Whether it was applied.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it did, for people (`alarm 12 acknowledged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Whether this answer was given before (the command id was seen already).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
}

impl Reply {
    /// A refusal.
    pub fn error(id: &str, error: impl Into<String>) -> Reply {
        Reply {
            id: id.to_string(),
            ok: false,
            error: Some(error.into()),
            result: None,
            repeated: false,
        }
    }

    /// A success.
    pub fn ok(id: &str, result: impl Into<String>) -> Reply {
        Reply {
            id: id.to_string(),
            ok: true,
            error: None,
            result: Some(result.into()),
            repeated: false,
        }
    }
}

/// Longest command id, operator name, target and comment accepted.
pub const MAX_ID: usize = 128;
/// Longest `by`.
pub const MAX_BY: usize = 128;
/// Longest comment.
pub const MAX_COMMENT: usize = 1000;
/// Largest command message accepted (bytes).
pub const MAX_BYTES: usize = 8192;

/// Read a command as it arrived at `origin`. A refusal is the [`Reply`] to send back
/// (with the id when it could be read).
pub fn parse(bytes: &[u8], origin: Origin) -> Result<Command, Reply> {
    if bytes.len() > MAX_BYTES {
        return Err(Reply::error(
            "",
            format!(
                "command too large: {} bytes, at most {MAX_BYTES}",
                bytes.len()
            ),
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Reply::error("", format!("not a JSON command: {e}")))?;
    let id = v
        .get("id")
        .and_then(|x| x.as_str())
        .unwrap_or("")
        .to_string();
    if id.is_empty() {
        return Err(Reply::error(
            "",
            "missing \"id\": every command needs a unique id",
        ));
    }
    if id.len() > MAX_ID {
        return Err(Reply::error(
            &id[..MAX_ID.min(id.len())],
            format!("\"id\" longer than {MAX_ID} bytes"),
        ));
    }
    let mut cmd: Command = serde_json::from_value(v).map_err(|e| {
        let known: Vec<&str> = Verb::ALL.iter().map(|v| v.as_str()).collect();
        Reply::error(&id, format!("{e} (verbs: {})", known.join(", ")))
    })?;
    cmd.origin = origin;
    let by = cmd.by.trim();
    if by.is_empty() {
        return Err(Reply::error(&id, "missing \"by\": who gives the command"));
    }
    if by.len() > MAX_BY || cmd.target.len() > MAX_ID {
        return Err(Reply::error(&id, "\"by\" or \"target\" too long"));
    }
    if cmd.comment.as_ref().is_some_and(|c| c.len() > MAX_COMMENT) {
        return Err(Reply::error(
            &id,
            format!("comment longer than {MAX_COMMENT} bytes"),
        ));
    }
    if matches!(cmd.verb, Verb::Ack | Verb::Shelve | Verb::Unshelve) && cmd.target.trim().is_empty()
    {
        return Err(Reply::error(
            &id,
            format!(
                "{} needs a \"target\": the alarm's number or device/rule",
                cmd.verb.as_str()
            ),
        ));
    }
    if cmd.verb == Verb::Shelve && cmd.reason.as_ref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Reply::error(&id, "shelve needs a \"reason\""));
    }
    if cmd.reason.as_ref().is_some_and(|r| r.len() > MAX_COMMENT) {
        return Err(Reply::error(
            &id,
            format!("reason longer than {MAX_COMMENT} bytes"),
        ));
    }
    if cmd.minutes == Some(0) {
        return Err(Reply::error(&id, "\"minutes\" must be at least 1"));
    }
    cmd.by = by.to_string();
    Ok(cmd)
}

/// A command on its way to the hub, with where its answer goes.
#[derive(Debug)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// The answer.
    pub reply: oneshot::Sender<Reply>,
}

/// The way into the hub, shared by every entry.
#[derive(Debug, Clone)]
pub struct Commands {
    tx: mpsc::Sender<Request>,
    /// Where [`Verb::ConfigApply`] goes (the runtime's reload loop), if anywhere.
    reload: Option<mpsc::Sender<Request>>,
}

impl Commands {
    /// A path into the hub and the hub's end of it.
    pub fn channel() -> (Commands, mpsc::Receiver<Request>) {
        let (tx, rx) = mpsc::channel(64);
        (Commands { tx, reload: None }, rx)
    }

    /// The same path, with [`Verb::ConfigApply`] handed to `reload` instead of the hub.
    pub fn with_reload(mut self, reload: mpsc::Sender<Request>) -> Commands {
        self.reload = Some(reload);
        self
    }

    /// Hand `command` to the hub and wait (at most `timeout`) for its answer.
    pub async fn send(&self, command: Command, timeout: Duration) -> Reply {
        let id = command.id.clone();
        let (reply, rx) = oneshot::channel();
        let tx = if command.verb == Verb::ConfigApply {
            // A config names files on the board: only its console may apply one.
            if command.origin.entry != "socket" {
                return Reply::error(
                    &id,
                    "config_apply is taken only from the board's local socket (dc-gateway config apply)",
                );
            }
            match &self.reload {
                Some(r) => r,
                None => return Reply::error(&id, "this gateway cannot reload its config"),
            }
        } else {
            &self.tx
        };
        if tx.send(Request { command, reply }).await.is_err() {
            return Reply::error(&id, "the gateway is stopping");
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Reply::error(&id, "the gateway dropped the command"),
            Err(_) => Reply::error(&id, "no answer in time; send it again with the same id"),
        }
    }
}

pub mod socket;

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            entry: "mqtt".into(),
            peer: "broker/ops-console".into(),
        }
    }

    #[test]
    fn a_well_formed_ack_is_read_and_the_origin_is_the_entrys() {
        let c = parse(
            br#"{"id":"c1","verb":"ack","target":"12","by":"Nguyen Van An","comment":"on my way","origin":{"entry":"forged","peer":"x"}}"#,
            origin(),
        )
        .unwrap();
        assert_eq!(c.verb, Verb::Ack);
        assert_eq!(c.target, "12");
        assert_eq!(c.by, "Nguyen Van An");
        assert_eq!(c.comment.as_deref(), Some("on my way"));
        assert_eq!(c.origin, origin(), "the sender cannot claim an origin");
    }

    #[test]
    fn malformed_commands_are_answered_with_the_reason() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"not json", "", "not a JSON command"),
            (
                br#"{"verb":"ack","target":"1","by":"a"}"#,
                "",
                "missing \"id\"",
            ),
            (
                br#"{"id":"c2","verb":"reboot","target":"1","by":"a"}"#,
                "c2",
                "unknown variant `reboot`",
            ),
            (
                br#"{"id":"c3","verb":"ack","target":"1","by":"  "}"#,
                "c3",
                "missing \"by\"",
            ),
            (
                br#"{"id":"c4","verb":"ack","by":"a"}"#,
                "c4",
                "ack needs a \"target\"",
            ),
        ];
        for (bytes, id, want) in cases {
            let r = parse(bytes, origin()).unwrap_err();
            assert!(!r.ok);
            assert_eq!(r.id, *id);
            let e = r.error.unwrap();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
        let big = vec![b' '; MAX_BYTES + 1];
        assert!(
            parse(&big, origin())
                .unwrap_err()
                .error
                .unwrap()
                .contains("too large")
        );
    }

    #[test]
    fn replies_have_the_contract_shape() {
        let j = serde_json::to_value(Reply::ok("c1", "alarm 12 acknowledged")).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"id":"c1","ok":true,"result":"alarm 12 acknowledged"})
        );
        let j = serde_json::to_value(Reply::error("c2", "no listed alarm 99")).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"id":"c2","ok":false,"error":"no listed alarm 99"})
        );
    }

    #[tokio::test]
    async fn config_apply_goes_to_the_reload_path_and_only_from_the_local_socket() {
        let (commands, mut hub) = Commands::channel();
        let (tx, mut reload) = mpsc::channel(1);
        let commands = commands.with_reload(tx);
        let line =
            br#"{"id":"r1","verb":"config_apply","target":"/etc/dc-gateway/site.toml","by":"an"}"#;
        // From MQTT: refused, nothing reaches either path.
        let r = commands
            .send(parse(line, origin()).unwrap(), Duration::from_secs(1))
            .await;
        assert!(!r.ok && r.error.unwrap().contains("local socket"));
        // From the socket: the reload path gets it, not the hub.
        let socket = Origin {
            entry: "socket".into(),
            peer: "uid 0".into(),
        };
        let cmd = parse(line, socket).unwrap();
        let sent = tokio::spawn(async move { commands.send(cmd, Duration::from_secs(5)).await });
        let req = reload.recv().await.unwrap();
        assert_eq!(req.command.target, "/etc/dc-gateway/site.toml");
        req.reply.send(Reply::ok("r1", "applied")).unwrap();
        assert!(sent.await.unwrap().ok);
        assert!(hub.try_recv().is_err());
    }
}
