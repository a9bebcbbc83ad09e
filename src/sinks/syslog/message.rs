//! RFC 5424 messages: alarm events as `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID
//! [SD-ID param="value" ...] BOM message`. Pure encoding, no I/O.
//!
//! Invariants:
//! - the header fields are printable US-ASCII without spaces (RFC 5424 §6); anything
//!   else in a configured or derived field is replaced by `_`, an empty one is `-`;
//! - PARAM-VALUEs escape `"`, `\` and `]` with a backslash (§6.3.3) and are otherwise
//!   UTF-8 as given, cut at [`MAX_PARAM_BYTES`] (at a character boundary) so no event
//!   can make a message no receiver takes; a parameter without a value is left out,
//!   never sent empty;
//! - MSG is the event's text, UTF-8 with a leading BOM (§6.4); it is the only part cut
//!   (at a character boundary) to keep a message within `max_message_bytes`.
//!
//! Severity of an alarm event (RFC 5424 §6.2.1), documented in docs/SYSLOG.md:
//!
//! | state | serious | normal |
//! |---|---|---|
//! | raised | 2 crit | 4 warning |
//! | shelved | 3 err | 4 warning |
//! | acked, unshelved, cleared | 5 notice | 5 notice |

use crate::model::{AlarmEvent, AlarmState, Level, Value};

/// Longest PARAM-VALUE in bytes before escaping: ids and names are far shorter; an
/// operator comment longer than this is whole in the journal.
pub const MAX_PARAM_BYTES: usize = 200;

/// UTF-8 byte order mark: RFC 5424 §6.4 marks a UTF-8 MSG with it.
pub const BOM: &str = "\u{feff}";

/// What every message of a sink shares.
#[derive(Debug, Clone)]
pub struct Header {
    /// Facility code (0..=23).
    pub facility: u8,
    /// HOSTNAME.
    pub hostname: String,
    /// APP-NAME.
    pub app_name: String,
    /// SD-ID of the gateway's structured data (`dcgw@32473`).
    pub sd_id: String,
}

/// Severity (RFC 5424 §6.2.1) of an alarm event: see the module docs.
pub fn severity(ev: &AlarmEvent) -> u8 {
    match (ev.state, ev.level) {
        (AlarmState::Raised, Level::Serious) => 2,
        (AlarmState::Raised, Level::Normal) => 4,
        (AlarmState::Shelved, Level::Serious) => 3,
        (AlarmState::Shelved, Level::Normal) => 4,
        (AlarmState::Acked | AlarmState::Unshelved | AlarmState::Cleared, _) => 5,
    }
}

/// A header field as RFC 5424 wants it: printable US-ASCII, at most `max` bytes,
/// `-` when empty.
pub fn header_field(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .take(max)
        .collect();
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// Escape a PARAM-VALUE: `"`, `\` and `]` get a backslash (RFC 5424 §6.3.3).
pub fn escape_param(v: &str, out: &mut String) {
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A value as text: numbers in their shortest form (`30.5`, `27`), booleans as
/// `true`/`false`, enumerations by name.
fn value_text(v: &Value) -> String {
    match v {
        Value::Number(n) => format_number(*n),
        Value::Bool(b) => b.to_string(),
        Value::Enum(e) => (*e).to_string(),
    }
}

fn format_number(n: f64) -> String {
    if n.is_finite() {
        format!("{n}")
    } else {
        String::new()
    }
}

/// The structured-data parameters of an alarm event, in a fixed order. Optional ones
/// (label, location, value, threshold, by, comment, shelved_until, in_maintenance,
/// clock_unsynced) only when set.
pub fn alarm_params(ev: &AlarmEvent) -> Vec<(&'static str, String)> {
    let d = &ev.detail;
    let mut p: Vec<(&'static str, String)> = vec![
        ("id", ev.id.clone()),
        ("seq", ev.seq.to_string()),
        ("no", d.no.to_string()),
        ("gateway", d.gateway.to_string()),
        ("site", ev.site.to_string()),
        ("room", ev.room.to_string()),
        ("device", ev.device.to_string()),
    ];
    if let Some(l) = &d.label {
        p.push(("label", l.clone()));
    }
    if let Some(l) = &d.location {
        p.push(("location", l.clone()));
    }
    p.push(("kind", ev.kind.as_str().to_string()));
    p.push(("system", ev.kind.system().as_str().to_string()));
    p.push(("point", ev.point.to_string()));
    p.push(("rule", ev.rule.to_string()));
    p.push(("level", ev.level.as_str().to_string()));
    p.push(("state", ev.state.as_str().to_string()));
    if let Some(v) = &ev.value {
        p.push(("value", value_text(v)));
    }
    if let Some(t) = ev.threshold {
        p.push(("threshold", format_number(t)));
    }
    if let Some(b) = &d.by {
        p.push(("by", b.clone()));
    }
    if let Some(c) = &d.comment {
        p.push(("comment", c.clone()));
    }
    if let Some(t) = d.shelved_until {
        p.push(("shelved_until", t.rfc3339()));
    }
    if d.in_maintenance {
        p.push(("in_maintenance", "true".to_string()));
    }
    if d.clock_unsynced {
        p.push(("clock_unsynced", "true".to_string()));
    }
    p.retain(|(_, v)| !v.is_empty());
    p
}

/// One RFC 5424 message. `ts` is RFC 3339 UTC; the text is cut so the whole message
/// stays within `max_bytes` (the header and structured data are never cut).
pub fn encode(
    h: &Header,
    severity: u8,
    ts: &str,
    msgid: &str,
    params: &[(&'static str, String)],
    text: &str,
    max_bytes: usize,
) -> Vec<u8> {
    let pri = u32::from(h.facility) * 8 + u32::from(severity.min(7));
    let mut s = format!(
        "<{pri}>1 {} {} {} - {} ",
        header_field(ts, 64),
        header_field(&h.hostname, 255),
        header_field(&h.app_name, 48),
        header_field(msgid, 32)
    );
    if params.is_empty() {
        s.push('-');
    } else {
        s.push('[');
        s.push_str(&h.sd_id);
        for (name, value) in params {
            s.push(' ');
            s.push_str(name);
            s.push_str("=\"");
            escape_param(cut(value, MAX_PARAM_BYTES), &mut s);
            s.push('"');
        }
        s.push(']');
    }
    if !text.is_empty() {
        let room = max_bytes.saturating_sub(s.len() + 1 + BOM.len());
        if room > 0 {
            s.push(' ');
            s.push_str(BOM);
            s.push_str(cut(text, room));
        }
    }
    s.into_bytes()
}

/// The longest prefix of `s` of at most `max` bytes ending at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An alarm event as one RFC 5424 message (MSGID `alarm`).
pub fn alarm(h: &Header, ev: &AlarmEvent, max_bytes: usize) -> Vec<u8> {
    encode(
        h,
        severity(ev),
        &ev.ts.rfc3339(),
        "alarm",
        &alarm_params(ev),
        &ev.message,
        max_bytes,
    )
}

/// Fields of an audit record's data that go into the structured data, by name.
const AUDIT_PARAMS: [&str; 12] = [
    "event", "user", "ip", "by", "subject", "origin", "role", "reason", "verb", "target", "sha256",
    "version",
];

/// An audit record (a login, an account change, a command, a config load) as one
/// RFC 5424 message: MSGID `audit`, severity notice (5), or warning (4) for failures,
/// lockouts and refusals; structured data `id`, `seq`, `kind`, `gateway`, `device` and
/// the data's well-known fields ([`AUDIT_PARAMS`]); the whole data as JSON for text.
pub fn audit(h: &Header, a: &crate::sinks::Audit, max_bytes: usize) -> Vec<u8> {
    let mut params: Vec<(&'static str, String)> = vec![
        ("id", a.id.clone()),
        ("seq", a.seq.to_string()),
        ("kind", a.kind.clone()),
        ("gateway", a.gateway.clone()),
    ];
    if let Some(d) = &a.device {
        params.push(("device", d.clone()));
    }
    for name in AUDIT_PARAMS {
        match a.data.get(name) {
            Some(serde_json::Value::String(s)) => params.push((name, s.clone())),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                params.push((name, v.to_string()))
            }
            _ => {}
        }
    }
    let event = a.data.get("event").and_then(|v| v.as_str()).unwrap_or("");
    let warning = matches!(
        event,
        "failure" | "lockout" | "refused_locked" | "refused_disabled" | "refused_address"
    ) || a.data.get("ok") == Some(&serde_json::Value::Bool(false));
    encode(
        h,
        if warning { 4 } else { 5 },
        &a.ts.rfc3339(),
        "audit",
        &params,
        &a.data.to_string(),
        max_bytes,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{EventDetail, Kind, Timestamp};

    fn header() -> Header {
        Header {
            facility: 16,
            hostname: "gw-tv1".into(),
            app_name: "dc-gateway".into(),
            sd_id: "dcgw@32473".into(),
        }
    }

    fn event() -> AlarmEvent {
        AlarmEvent {
            id: "0190a0b0-0000-7000-8000-000000000007".into(),
            seq: 7,
            // 2026-11-25T08:00:00.123Z
            ts: Timestamp(1_795_593_600_123),
            site: Arc::from("tv"),
            device: Arc::from("ups1"),
            kind: Kind::Ups,
            room: Arc::from("power"),
            point: "on_battery",
            rule: Arc::from("on_battery"),
            level: Level::Serious,
            state: AlarmState::Raised,
            value: Some(Value::Bool(true)),
            threshold: None,
            message: "UPS chạy bằng ắc quy (Điều 10.3)".into(),
            detail: EventDetail {
                gateway: Arc::from("gw-tv1"),
                no: 12,
                label: Some("UPS \"A\" [rack]\\1".into()),
                comment: Some("x]y".into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn an_alarm_event_is_an_rfc5424_message_with_escaped_structured_data() {
        let got = String::from_utf8(alarm(&header(), &event(), 2048)).unwrap();
        let want = "<130>1 2026-11-25T08:00:00.123Z gw-tv1 dc-gateway - alarm \
            [dcgw@32473 id=\"0190a0b0-0000-7000-8000-000000000007\" seq=\"7\" no=\"12\" \
            gateway=\"gw-tv1\" site=\"tv\" room=\"power\" device=\"ups1\" \
            label=\"UPS \\\"A\\\" [rack\\]\\\\1\" kind=\"ups\" system=\"power\" point=\"on_battery\" \
            rule=\"on_battery\" level=\"serious\" state=\"raised\" value=\"true\" \
            comment=\"x\\]y\"] \u{feff}UPS chạy bằng ắc quy (Điều 10.3)";
        assert_eq!(got, want);
    }

    #[test]
    fn severity_follows_state_and_level() {
        let mut ev = event();
        let pri = |ev: &AlarmEvent| {
            let m = String::from_utf8(alarm(&header(), ev, 2048)).unwrap();
            m[1..m.find('>').unwrap()].parse::<u32>().unwrap()
        };
        assert_eq!(pri(&ev), 16 * 8 + 2);
        ev.level = Level::Normal;
        assert_eq!(pri(&ev), 16 * 8 + 4);
        ev.state = AlarmState::Cleared;
        assert_eq!(pri(&ev), 16 * 8 + 5);
        ev.level = Level::Serious;
        ev.state = AlarmState::Shelved;
        assert_eq!(pri(&ev), 16 * 8 + 3);
    }

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary_and_the_data_kept() {
        let mut ev = event();
        ev.message = "ắ".repeat(2000);
        let m = alarm(&header(), &ev, 700);
        assert!(m.len() <= 700, "{}", m.len());
        let s = String::from_utf8(m).expect("still UTF-8");
        assert!(s.contains("comment=\"x\\]y\"] \u{feff}ắ"), "{s}");
        // Too small for any text: the structured data goes whole, without a text.
        let s = String::from_utf8(alarm(&header(), &ev, 100)).unwrap();
        assert!(s.ends_with("comment=\"x\\]y\"]"), "{s}");
    }

    #[test]
    fn a_very_long_parameter_is_cut_so_the_message_stays_sendable() {
        let mut ev = event();
        ev.detail.comment = Some(format!("{}]", "ố".repeat(10_000)));
        let s = String::from_utf8(alarm(&header(), &ev, 2048)).unwrap();
        let at = s.find("comment=\"").unwrap() + 9;
        let value = &s[at..at + s[at..].find('"').unwrap()];
        assert_eq!(
            value,
            "ố".repeat(MAX_PARAM_BYTES / 3),
            "cut at a character boundary"
        );
        assert!(s.len() < 2048, "{}", s.len());
    }

    #[test]
    fn header_fields_are_printable_ascii() {
        assert_eq!(header_field("gw 1\tä", 255), "gw_1__");
        assert_eq!(header_field("", 255), "-");
        assert_eq!(header_field("abcdef", 3), "abc");
    }

    #[test]
    fn an_audit_record_is_one_message_with_its_fields_as_structured_data() {
        let a = crate::sinks::Audit {
            id: "gw-tv1-9".into(),
            seq: 9,
            ts: Timestamp(1_795_593_600_123),
            gateway: "gw-tv1".into(),
            kind: "login".into(),
            device: None,
            data: serde_json::json!({"event": "lockout", "user": "an\"]x", "ip": "10.0.0.9", "origin": "web", "failures": 5}),
        };
        let m = String::from_utf8(audit(&header(), &a, 2048)).unwrap();
        assert!(m.starts_with("<132>1 2026-11-25T08:00:00.123Z gw-tv1 dc-gateway - audit [dcgw@32473 id=\"gw-tv1-9\" seq=\"9\" kind=\"login\" gateway=\"gw-tv1\" event=\"lockout\" user=\"an\\\"\\]x\" ip=\"10.0.0.9\" origin=\"web\"] \u{feff}{"), "{m}");
        assert!(m.contains("\"failures\":5"), "the whole data as text: {m}");
        let ok = crate::sinks::Audit {
            data: serde_json::json!({"event": "login", "user": "an"}),
            ..a
        };
        assert!(
            String::from_utf8(audit(&header(), &ok, 2048))
                .unwrap()
                .starts_with("<133>")
        );
    }
}
