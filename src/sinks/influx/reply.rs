//! Reading an InfluxDB write reply: status classes, `Retry-After`, the error text, and
//! which lines of a batch the server refused. Pure functions, no I/O.
//!
//! What the servers say (checked against InfluxDB 1.6.7 here):
//!
//! - a line that does not parse, next to good ones (the good ones are stored):
//!   `400 {"error":"partial write: unable to parse 'LINE': missing field value\nunable to parse 'LINE2': invalid field format dropped=0"}`
//! - a field whose type differs from the type the shard already has (the other lines
//!   are stored; `dropped` counts every refused line, the text names the first field):
//!   `400 {"error":"partial write: field type conflict: input field \"temperature_c\" on measurement \"climate\" is type boolean, already exists as type float dropped=1"}`
//! - the same conflict inside one batch that opens a new shard: nothing is stored:
//!   `400 {"error":"field type conflict"}`
//! - unknown database: `404 {"error":"database not found: \"x\""}`
//! - InfluxDB 2.x and 3.x answer `{"code": "...", "message": "..."}`; 3.x names lines
//!   as `error parsing line N (1-based): ...` and in a `"line": N` member.
//!
//! Invariant: [`identify`] only names lines that are in the batch as sent (`active`), so
//! every round of re-sending the rest strictly shrinks the batch.

use std::time::{Duration, SystemTime};

use super::line::{Encoded, inspect};

/// Longest `Retry-After` honoured; a longer hint is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Longest reason text kept per refused record.
const MAX_REASON: usize = 1000;

/// How a write status is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx: stored.
    Stored,
    /// 400 / 422: some or all lines refused; the body says which.
    BadLines,
    /// 413: the body is too large.
    TooLarge,
    /// 401 / 403: credentials refused or not allowed to write.
    Auth,
    /// 404: unknown database or bucket (or a wrong URL).
    NotFound,
    /// 429 / 503: the server asks us to slow down; honour `Retry-After`.
    Throttled,
    /// Other 5xx.
    ServerError,
    /// Anything else (other 4xx, 1xx, 3xx): keep the records and try again later.
    Unexpected,
}

/// The class of an HTTP status.
pub fn class(status: u16) -> Class {
    match status {
        200..=299 => Class::Stored,
        400 | 422 => Class::BadLines,
        413 => Class::TooLarge,
        401 | 403 => Class::Auth,
        404 => Class::NotFound,
        429 | 503 => Class::Throttled,
        500..=599 => Class::ServerError,
        _ => Class::Unexpected,
    }
}

/// The `reason` label of the `sink_errors` metric for a status (bounded set).
pub fn status_label(status: u16) -> &'static str {
    match status {
        400 => "http_400",
        401 => "http_401",
        403 => "http_403",
        404 => "http_404",
        413 => "http_413",
        422 => "http_422",
        429 => "http_429",
        500..=599 => "http_5xx",
        s if (400..500).contains(&s) => "http_4xx",
        _ => "http_other",
    }
}

/// Parse a `Retry-After` value: seconds, or an HTTP date (relative to `now`). Capped at
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let fmt = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let at = time::PrimitiveDateTime::parse(v, &fmt).ok()?.assume_utc();
        let at =
            SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.unix_timestamp()).ok()?);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// The server's error text: the JSON `error` (1.x) or `message` (2.x, 3.x) member, or the
/// body itself (trimmed) when it is not such JSON.
pub fn error_message(body: &str) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["error", "message", "err"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.clone();
            }
        }
    }
    body.trim().to_string()
}

/// The `"line": N` member of a 2.x/3.x error body (1-based), if any.
pub fn json_line(body: &str) -> Option<usize> {
    match serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("line")?
    {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
}

/// Whether the server says it stored the lines it did not complain about.
pub fn is_partial(msg: &str) -> bool {
    msg.contains("partial write")
}

/// The `dropped=N` count at the end of a 1.x partial-write message.
pub fn dropped(msg: &str) -> Option<usize> {
    let at = msg.rfind("dropped=")?;
    let digits: String = msg[at + "dropped=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

fn clip(s: &str) -> String {
    if s.len() <= MAX_REASON {
        return s.to_string();
    }
    let mut end = MAX_REASON;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A field type conflict as the server states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Field key.
    pub field: String,
    /// Measurement.
    pub measurement: String,
    /// Type of the refused value (`boolean`, `float`, ...), if stated.
    pub input_type: Option<String>,
    /// Type the field already has, if stated.
    pub existing_type: Option<String>,
}

/// Every `input field "F" on measurement "M" is type T, already exists as type X` in
/// `msg`.
pub fn conflicts(msg: &str) -> Vec<Conflict> {
    const FIELD: &str = "input field \"";
    const ON: &str = "\" on measurement \"";
    const IS: &str = "\" is type ";
    const EXISTS: &str = ", already exists as type ";
    let mut out = Vec::new();
    let mut rest = msg;
    while let Some(at) = rest.find(FIELD) {
        rest = &rest[at + FIELD.len()..];
        let Some(on) = rest.find(ON) else { break };
        let field = &rest[..on];
        let after = &rest[on + ON.len()..];
        let Some(is) = after.find(IS) else { break };
        let measurement = &after[..is];
        let tail = &after[is + IS.len()..];
        let word = |s: &str| -> Option<String> {
            let w: String = s
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            (!w.is_empty()).then_some(w)
        };
        let input_type = word(tail);
        let existing_type = tail
            .find(EXISTS)
            .and_then(|e| word(&tail[e + EXISTS.len()..]));
        out.push(Conflict {
            field: unescape_quoted(field),
            measurement: unescape_quoted(measurement),
            input_type,
            existing_type,
        });
        rest = tail;
    }
    out
}

fn unescape_quoted(s: &str) -> String {
    s.replace("\\\"", "\"")
}

/// The lines of `active` (indexes into `enc.lines()`, in the order they were sent) that
/// the error `msg` names, each with the server's reason. Empty if none can be told.
///
/// `line_no` is the 1-based `"line"` member of the reply, if any.
pub fn identify(
    msg: &str,
    line_no: Option<usize>,
    enc: &Encoded,
    active: &[usize],
) -> Vec<(usize, String)> {
    let mut bad: Vec<(usize, String)> = Vec::new();
    let push = |bad: &mut Vec<(usize, String)>, line: usize, why: &str| {
        if !bad.iter().any(|(l, _)| *l == line) {
            bad.push((line, clip(why)));
        }
    };

    // 1. `unable to parse 'LINE': reason` (1.x, 2.x): the line itself is quoted.
    const PARSE: &str = "unable to parse '";
    if msg.contains(PARSE) {
        let mut by_text: std::collections::HashMap<&str, Vec<usize>> =
            std::collections::HashMap::new();
        for &i in active {
            by_text.entry(enc.line(i)).or_default().push(i);
        }
        let mut from = 0;
        while let Some(at) = msg[from..].find(PARSE) {
            let seg_start = from + at;
            let text_start = seg_start + PARSE.len();
            let seg_end = msg[text_start..]
                .find(&format!("\n{PARSE}"))
                .map(|e| text_start + e)
                .unwrap_or(msg.len());
            let segment = msg[seg_start..seg_end].trim_end();
            let segment = match segment.rfind(" dropped=") {
                Some(d) if dropped(&segment[d..]).is_some() => &segment[..d],
                _ => segment,
            };
            // The quoted line ends at one of the `': ` that follow; try each.
            let mut search = text_start;
            while let Some(q) = msg[search..seg_end].find("': ") {
                let end = search + q;
                if let Some(lines) = by_text.get(&msg[text_start..end]) {
                    for &l in lines {
                        push(&mut bad, l, segment);
                    }
                    break;
                }
                search = end + 1;
            }
            from = text_start;
        }
    }

    // 2. Line numbers (3.x): `error parsing line N (1-based)`, `error in line N:`, and
    //    the `"line"` member.
    let mut numbers: Vec<(usize, String)> = Vec::new();
    for pat in ["error parsing line ", "error in line "] {
        let mut from = 0;
        while let Some(at) = msg[from..].find(pat) {
            let start = from + at;
            let num_start = start + pat.len();
            let digits: String = msg[num_start..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            let seg_end = msg[num_start..]
                .find('\n')
                .map(|e| num_start + e)
                .unwrap_or(msg.len());
            if let Ok(n) = digits.parse::<usize>() {
                numbers.push((n, msg[start..seg_end].to_string()));
            }
            from = num_start;
        }
    }
    if let Some(n) = line_no
        && !numbers.iter().any(|(m, _)| *m == n)
    {
        numbers.push((n, msg.to_string()));
    }
    for (n, why) in numbers {
        if let Some(&l) = n.checked_sub(1).and_then(|i| active.get(i)) {
            push(&mut bad, l, &why);
        }
    }

    // 3. Field type conflicts: every line of that measurement whose field has another
    //    type than the one the server keeps (or the type it refused).
    let stated = conflicts(msg);
    if !stated.is_empty() {
        for &i in active {
            let Some((m, fields)) = inspect(enc.line(i)) else {
                continue;
            };
            let hit = stated.iter().any(|c| {
                c.measurement == m
                    && fields.iter().any(|(f, ty)| {
                        *f == c.field
                            && match (&c.existing_type, &c.input_type) {
                                (Some(x), _) => x != ty,
                                (None, Some(t)) => t == ty,
                                (None, None) => true,
                            }
                    })
            });
            if hit {
                push(&mut bad, i, msg);
            }
        }
    } else if msg.contains("field type conflict") {
        // 4. A conflict inside the batch, stated without details (1.x, new shard): the
        //    first line of a measurement sets each field's type; later lines that
        //    disagree are the refused ones.
        let mut first: std::collections::HashMap<(String, String), &'static str> =
            std::collections::HashMap::new();
        for &i in active {
            let Some((m, fields)) = inspect(enc.line(i)) else {
                continue;
            };
            let mut conflict = None;
            for (f, ty) in fields {
                let known = *first.entry((m.clone(), f.clone())).or_insert(ty);
                if known != ty && conflict.is_none() {
                    conflict = Some(format!(
                        "{msg}: field \"{f}\" on measurement \"{m}\" is type {ty} here, type {known} earlier in the batch"
                    ));
                }
            }
            if let Some(why) = conflict {
                push(&mut bad, i, &why);
            }
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{DeviceMeta, Kind, Poll, Quality, Sample, Timestamp, Value};
    use crate::points::lookup;
    use crate::sinks::Record;

    fn climate(id: &str, ts: i64, temp: Value) -> Record {
        Record::Poll(Arc::new(Poll {
            device: Arc::new(DeviceMeta {
                id: Arc::from(id),
                name: id.into(),
                label: None,
                room: Arc::from("dc1"),
                kind: Kind::Climate,
            }),
            ts: Timestamp(ts),
            comm_ok: true,
            samples: vec![Sample {
                point: lookup(Kind::Climate, "temperature_c").unwrap(),
                value: Some(temp),
                quality: Quality::Good,
            }],
        }))
    }

    fn batch() -> Encoded {
        let mut enc = Encoded::new();
        enc.encode(
            "tv",
            &[
                climate("t1", 1, Value::Number(22.5)),
                climate("t2", 2, Value::Bool(true)),
                climate("t3", 3, Value::Number(23.0)),
                climate("t4", 4, Value::Bool(false)),
            ],
        );
        enc
    }

    #[test]
    fn statuses() {
        assert_eq!(class(204), Class::Stored);
        assert_eq!(class(400), Class::BadLines);
        assert_eq!(class(422), Class::BadLines);
        assert_eq!(class(413), Class::TooLarge);
        assert_eq!(class(401), Class::Auth);
        assert_eq!(class(403), Class::Auth);
        assert_eq!(class(404), Class::NotFound);
        assert_eq!(class(429), Class::Throttled);
        assert_eq!(class(503), Class::Throttled);
        assert_eq!(class(500), Class::ServerError);
        assert_eq!(class(502), Class::ServerError);
        assert_eq!(class(405), Class::Unexpected);
        assert_eq!(class(301), Class::Unexpected);
        assert_eq!(status_label(502), "http_5xx");
        assert_eq!(status_label(405), "http_4xx");
        assert_eq!(status_label(401), "http_401");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_057_600); // 2025-11-25 08:00:00 UTC
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("Tue, 25 Nov 2025 08:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Tue, 25 Nov 2025 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            error_message(r#"{"error":"database not found: \"x\""}"#),
            "database not found: \"x\""
        );
        assert_eq!(
            error_message(r#"{"code":"not found","message":"bucket \"b\" not found"}"#),
            "bucket \"b\" not found"
        );
        assert_eq!(
            error_message("  404 page not found\n"),
            "404 page not found"
        );
        assert_eq!(
            json_line(r#"{"code":"invalid","line":2,"message":"x"}"#),
            Some(2)
        );
        assert_eq!(json_line("nope"), None);
        assert_eq!(
            dropped("partial write: points beyond retention policy dropped=3"),
            Some(3)
        );
        assert_eq!(dropped("field type conflict"), None);
        assert!(is_partial("partial write: x dropped=1"));
        assert!(!is_partial("field type conflict"));
    }

    /// The body InfluxDB 1.6.7 sent for a batch with two unparsable lines (recorded here).
    #[test]
    fn influx16_unable_to_parse_names_the_lines() {
        let body = r#"{"error":"partial write: unable to parse 'clim\"ate,device=t2 temperature_c= 1700000000000': missing field value\nunable to parse 'climate,device=t3 x 1700000000001': invalid field format dropped=0"}"#;
        let msg = error_message(body);
        assert!(is_partial(&msg));
        assert_eq!(dropped(&msg), Some(0));
        let mut enc = Encoded::new();
        enc.set_raw_lines(&[
            "climate,device=t1 temperature_c=22.5 1700000000000",
            "clim\"ate,device=t2 temperature_c= 1700000000000",
            "climate,device=t3 x 1700000000001",
        ]);
        let bad = identify(&msg, None, &enc, &[0, 1, 2]);
        assert_eq!(
            bad,
            vec![
                (1, "unable to parse 'clim\"ate,device=t2 temperature_c= 1700000000000': missing field value".to_string()),
                (2, "unable to parse 'climate,device=t3 x 1700000000001': invalid field format".to_string()),
            ]
        );
        // Only lines still in the batch can be named.
        assert_eq!(identify(&msg, None, &enc, &[0, 2]).len(), 1);
    }

    /// Lines that contain `': ` themselves are still found.
    #[test]
    fn quoted_line_containing_the_delimiter() {
        let mut enc = Encoded::new();
        enc.set_raw_lines(&["m,t=a':\\ b x=1 1", "m x=1 2"]);
        let msg = "unable to parse 'm,t=a':\\ b x=1 1': bad timestamp";
        assert_eq!(
            identify(msg, None, &enc, &[0, 1])
                .iter()
                .map(|b| b.0)
                .collect::<Vec<_>>(),
            vec![0]
        );
    }

    /// 1.6.7, an existing float field, a boolean and an integer in the batch:
    /// `dropped=2`, but the text names only the boolean. Both lines are found because the
    /// text says which type the field keeps.
    #[test]
    fn influx16_field_type_conflict_partial() {
        let enc = batch();
        let msg = error_message(
            r#"{"error":"partial write: field type conflict: input field \"temperature_c\" on measurement \"climate\" is type boolean, already exists as type float dropped=2"}"#,
        );
        assert_eq!(
            conflicts(&msg),
            vec![Conflict {
                field: "temperature_c".into(),
                measurement: "climate".into(),
                input_type: Some("boolean".into()),
                existing_type: Some("float".into()),
            }]
        );
        let bad = identify(&msg, None, &enc, &[0, 1, 2, 3]);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(bad[0].1, msg);
        assert_eq!(dropped(&msg), Some(2));
        // Another measurement is not touched.
        let other = msg
            .replace("\\\"climate\\\"", "\"ups\"")
            .replace("\"climate\"", "\"ups\"");
        assert!(identify(&other, None, &enc, &[0, 1, 2, 3]).is_empty());
    }

    /// 1.6.7, a conflict inside a batch that opens a new shard: `400 {"error":"field type
    /// conflict"}` and nothing stored. The later, disagreeing lines are the bad ones.
    #[test]
    fn influx16_bare_field_type_conflict_in_batch() {
        let enc = batch();
        let msg = error_message(r#"{"error":"field type conflict"}"#);
        assert!(!is_partial(&msg));
        let bad = identify(&msg, None, &enc, &[0, 1, 2, 3]);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![1, 3]);
        assert!(bad[0].1.contains("temperature_c"), "{}", bad[0].1);
        // Once they are removed, the rest agrees.
        assert!(identify(&msg, None, &enc, &[0, 2]).is_empty());
    }

    #[test]
    fn v3_line_numbers() {
        let enc = batch();
        let msg = "failed to parse line protocol: errors encountered on line(s):\nerror parsing line 2 (1-based): Invalid measurement was provided\nerror parsing line 4 (1-based): Unable to parse timestamp value '1234'";
        // Numbers count the lines as sent: here the batch was sent without line 0.
        let bad = identify(msg, Some(2), &enc, &[1, 2, 3]);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![2]);
        assert_eq!(
            bad[0].1,
            "error parsing line 2 (1-based): Invalid measurement was provided"
        );
        let bad = identify(msg, Some(2), &enc, &[0, 1, 2, 3]);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn unidentifiable_messages_name_nothing() {
        let enc = batch();
        for msg in [
            "partial write: points beyond retention policy dropped=4",
            "invalid precision \"x\"",
            "",
        ] {
            assert!(identify(msg, None, &enc, &[0, 1, 2, 3]).is_empty(), "{msg}");
        }
    }
}
