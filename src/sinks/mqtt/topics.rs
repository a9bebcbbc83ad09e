//! The MQTT topic tree and payloads (CONTRACTS.md "MQTT topics"), with no I/O.
//!
//! | Topic | Retained | QoS | Payload |
//! |---|---|---|---|
//! | `<prefix>/gateway/status` | yes | 1 | `online` / `offline` (last will) |
//! | `<prefix>/<device>/<point>` | yes | 0 | the value as text: `23.4`, `true`, `on_battery` |
//! | `<prefix>/alarms/events` | no | 1 | JSON alarm event |
//! | `<prefix>/alarms/active/<device>/<rule>` | yes | 1 | JSON of the active alarm; empty when cleared |
//!
//! Invariants:
//! - every topic built here is a valid MQTT publish topic: the prefix and each
//!   variable level (device id, point, rule) are checked to be non-empty and free of
//!   `/`, `+`, `#` and NUL, so one bad id can neither break the tree nor publish into
//!   another device's levels;
//! - readings live two levels under the prefix and active alarms four levels, so they
//!   cannot collide; `gateway/status` and `alarms/events` could only be shadowed by a
//!   device named `gateway` with a point `status` or a device named `alarms` with a
//!   point `events`, and the canonical vocabulary has neither point.

use crate::model::{AlarmEvent, AlarmState, Value};
use crate::points::PointDef;

/// Payload of the status topic while the gateway is connected.
pub const ONLINE: &str = "online";
/// Payload of the status topic after the gateway went away (the last will).
pub const OFFLINE: &str = "offline";

/// Why a topic could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The configured prefix is unusable.
    #[error(
        "topic prefix {0:?} is not usable: it must be non-empty, without `+`, `#`, NUL or empty levels"
    )]
    Prefix(String),
    /// A device id, point or rule cannot be a topic level.
    #[error(
        "{what} {value:?} cannot be an MQTT topic level (empty, or holds `/`, `+`, `#` or NUL)"
    )]
    Level {
        /// Which part (`device`, `point`, `rule`).
        what: &'static str,
        /// The offending text.
        value: String,
    },
}

/// The topic tree under one prefix.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics under `prefix` (`dcgw/<site>`); a trailing `/` is ignored.
    pub fn new(prefix: &str) -> Result<Topics, TopicError> {
        let p = prefix.trim_end_matches('/');
        let ok = !p.is_empty()
            && p.split('/')
                .all(|level| !level.is_empty() && level_ok(level));
        if !ok {
            return Err(TopicError::Prefix(prefix.to_string()));
        }
        Ok(Topics {
            prefix: p.to_string(),
        })
    }

    /// The prefix, without trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/gateway/status`: `online` while connected, `offline` as last will.
    pub fn status(&self) -> String {
        format!("{}/gateway/status", self.prefix)
    }

    /// `<prefix>/<device>/<point>`: the current value of one point (retained).
    pub fn reading(&self, device: &str, point: &str) -> Result<String, TopicError> {
        check("device", device)?;
        check("point", point)?;
        Ok(format!("{}/{device}/{point}", self.prefix))
    }

    /// `<prefix>/alarms/events`: every alarm transition.
    pub fn events(&self) -> String {
        format!("{}/alarms/events", self.prefix)
    }

    /// `<prefix>/status/<device>`: the device's communication state (retained).
    pub fn device_status(&self, device: &str) -> Result<String, TopicError> {
        check("device", device)?;
        Ok(format!("{}/status/{device}", self.prefix))
    }

    /// `<prefix>/commands`: commands from people (QoS 1, JSON), taken by a sink with
    /// `commands = true`.
    pub fn commands(&self) -> String {
        format!("{}/commands", self.prefix)
    }

    /// `<prefix>/commands/replies`: the answers (QoS 1, JSON `{id, ok, error?}`).
    pub fn replies(&self) -> String {
        format!("{}/commands/replies", self.prefix)
    }

    /// `<prefix>/alarms/active/<device>/<rule>`: the active alarm of that rule (retained).
    pub fn active(&self, device: &str, rule: &str) -> Result<String, TopicError> {
        check("device", device)?;
        check("rule", rule)?;
        Ok(format!("{}/alarms/active/{device}/{rule}", self.prefix))
    }
}

impl Topics {
    /// `<prefix>/notify/<person>`: notifications to that person (QoS 1, JSON), so a
    /// site can forward them to other channels.
    pub fn notify(&self, person: &str) -> Result<String, TopicError> {
        check("person", person)?;
        Ok(format!("{}/notify/{person}", self.prefix))
    }

    /// `<prefix>/audit`: audit records, for a sink configured to accept `audit`.
    pub fn audit(&self) -> String {
        format!("{}/audit", self.prefix)
    }
}

/// Payload of a notification on `<prefix>/notify/<person>` (CONTRACTS.md
/// "Notifications"): `id`, `person`, `alarm` (the instance `no`, or null), `text`,
/// `channel` (`mqtt`), `attempt` (the paging attempt: the nth notification about the
/// alarm to the person; the queue's retries re-send the same id and attempt).
pub fn notify_payload(n: &crate::sinks::Notification) -> Vec<u8> {
    serde_json::json!({
        "id": n.id,
        "person": n.person,
        "alarm": n.alarm_no,
        "text": n.text,
        "lang": n.lang,
        "channel": "mqtt",
        "attempt": n.attempt,
    })
    .to_string()
    .into_bytes()
}

fn level_ok(level: &str) -> bool {
    !level.contains(['/', '+', '#', '\0'])
}

fn check(what: &'static str, value: &str) -> Result<(), TopicError> {
    if value.is_empty() || !level_ok(value) {
        return Err(TopicError::Level {
            what,
            value: value.to_string(),
        });
    }
    Ok(())
}

/// Payload of a reading of `point`: the value's machine text (`23.4`, `true`,
/// `on_battery`), numbers at the point's display resolution with `.` and no binary
/// noise (`499.9`, not `499.90000000000003`), as the HTTP API writes them.
pub fn reading_payload(point: &PointDef, v: &Value) -> String {
    crate::texts::number::machine_text(point, v)
}

/// Payload of `alarms/events`: the event as JSON (`id`, `seq`, `ts`, `site`, `device`,
/// `point`, `rule`, `level`, `state`, `value`, `threshold`, `message`).
pub fn event_payload(ev: &AlarmEvent) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(ev)
}

/// Payload of `alarms/active/<device>/<rule>` after this event: the event JSON while
/// the alarm is listed (raised, acknowledged; serious, cleared and not yet
/// acknowledged), an empty payload once it is not, which makes the broker delete the
/// retained message.
pub fn active_payload(ev: &AlarmEvent, event_json: &[u8]) -> Vec<u8> {
    // Events of the first release carry no `listed`: a clear unlisted them.
    let listed = if ev.detail.no == 0 {
        ev.state != AlarmState::Cleared
    } else {
        ev.detail.listed
    };
    if listed {
        event_json.to_vec()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, Level, Timestamp};
    use std::sync::Arc;

    fn event(state: AlarmState) -> AlarmEvent {
        AlarmEvent {
            detail: Default::default(),
            id: "0190f0c2-0000-7000-8000-000000000001".into(),
            seq: 42,
            ts: Timestamp(1_764_057_600_123),
            site: "tv".into(),
            device: "crac1".into(),
            kind: Kind::Cooling,
            room: "dc1".into(),
            point: "supply_temp_c",
            rule: Arc::from("temperature_high"),
            level: Level::Serious,
            state,
            value: Some(Value::Number(31.5)),
            threshold: Some(27.0),
            message: "Nhiệt độ cao (Điều 10.3)".into(),
        }
    }

    #[test]
    fn topics_follow_the_contract() {
        let t = Topics::new("dcgw/tv/").unwrap();
        assert_eq!(t.prefix(), "dcgw/tv");
        assert_eq!(t.status(), "dcgw/tv/gateway/status");
        assert_eq!(
            t.reading("ups1", "battery_charge_pct").unwrap(),
            "dcgw/tv/ups1/battery_charge_pct"
        );
        assert_eq!(t.events(), "dcgw/tv/alarms/events");
        assert_eq!(
            t.active("crac1", "temperature_high").unwrap(),
            "dcgw/tv/alarms/active/crac1/temperature_high"
        );
    }

    #[test]
    fn bad_prefixes_and_levels_are_refused() {
        for p in ["", "/", "dcgw/+", "dcgw/#", "a//b", "dcgw/\0"] {
            assert!(Topics::new(p).is_err(), "prefix {p:?} accepted");
        }
        let t = Topics::new("dcgw/tv").unwrap();
        for d in ["", "a/b", "+", "x#"] {
            let e = t.reading(d, "p").unwrap_err();
            assert!(
                matches!(e, TopicError::Level { what: "device", .. }),
                "{d:?}: {e}"
            );
        }
        assert!(matches!(
            t.active("d", "r/x"),
            Err(TopicError::Level { what: "rule", .. })
        ));
    }

    #[test]
    fn reading_payloads_are_value_text_at_the_points_resolution() {
        let p = |kind, name| crate::points::lookup(kind, name).unwrap();
        let temp = p(Kind::Climate, "temperature_c");
        assert_eq!(reading_payload(temp, &Value::Number(23.4)), "23.4");
        assert_eq!(reading_payload(temp, &Value::Number(0.1 * 234.0)), "23.4");
        assert_eq!(reading_payload(temp, &Value::Number(230.0)), "230");
        let volts = p(Kind::Ups, "input_voltage_v");
        assert_eq!(
            reading_payload(volts, &Value::Number(499.90000000000003)),
            "499.9"
        );
        let pf = p(Kind::PowerMeter, "power_factor");
        assert_eq!(reading_payload(pf, &Value::Number(0.9849)), "0.98");
        let ob = p(Kind::Ups, "on_battery");
        assert_eq!(reading_payload(ob, &Value::Bool(true)), "true");
        assert_eq!(reading_payload(ob, &Value::Bool(false)), "false");
        let os = p(Kind::Ups, "output_source");
        assert_eq!(
            reading_payload(os, &Value::Enum("on_battery")),
            "on_battery"
        );
    }

    #[test]
    fn event_json_has_the_contract_fields_only() {
        let ev = event(AlarmState::Raised);
        let json = event_payload(&ev).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "device",
                "gateway",
                "id",
                "in_maintenance",
                "level",
                "listed",
                "local_ts",
                "message",
                "name",
                "no",
                "point",
                "room",
                "rule",
                "seq",
                "site",
                "state",
                "threshold",
                "ts",
                "value"
            ]
        );
        assert_eq!(v["seq"], 42);
        assert_eq!(v["ts"], "2025-11-25T08:00:00.123Z");
        assert_eq!(v["level"], "serious");
        assert_eq!(v["state"], "raised");
        assert_eq!(v["value"], 31.5);
        assert_eq!(v["message"], "Nhiệt độ cao (Điều 10.3)");
    }

    #[test]
    fn active_payload_is_empty_only_when_cleared() {
        for (state, empty) in [
            (AlarmState::Raised, false),
            (AlarmState::Acked, false),
            (AlarmState::Shelved, false),
            (AlarmState::Cleared, true),
        ] {
            let ev = event(state);
            let json = event_payload(&ev).unwrap();
            let p = active_payload(&ev, &json);
            assert_eq!(p.is_empty(), empty, "{state:?}");
            if !empty {
                assert_eq!(p, json);
            }
        }
    }
}
