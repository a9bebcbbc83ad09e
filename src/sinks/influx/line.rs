//! InfluxDB line protocol: the encoder for readings and alarm events, and a small reader
//! of our own lines used to work out which lines a server refused.
//!
//! Schema (CONTRACTS.md "InfluxDB schema"):
//!
//! ```text
//! climate,device=t1,label=R01\ inlet,room=dc1,site=tv humidity_pct=55,temperature_c=22.5,comm_ok=true 1764057600000
//! alarm,device=t1,level=serious,point=temperature_c,rule=temperature_high,site=tv state=1i,value=33.1,threshold=32,seq=42i,message="Nhiệt độ cao" 1764057600000
//! ```
//!
//! - A poll becomes one line: measurement = device kind, tags `device`, `label` (if set),
//!   `room`, `site`; one field per sample of good quality (numbers as floats, booleans as
//!   boolean fields, enumerations as integer codes, [`crate::points::PointDef::enum_code`]),
//!   and always `comm_ok`, so a poll with no good sample still writes a line.
//! - An alarm event becomes one line of measurement `alarm`, tags `device`, `level`,
//!   `point`, `rule`, `site`; fields `state` (integer [`AlarmState::code`]), `value`
//!   (float, omitted for enumerations), `threshold` (float, if any), `seq` (integer),
//!   `message` (string: the operator text in the site's language, if not empty).
//! - Timestamps are milliseconds: the write URL says `precision=ms`.
//!
//! Invariants:
//! - Tag keys are written in sorted order (the order InfluxDB stores them in).
//! - Every line written ends with `\n` and holds at least one field; a line that would
//!   have no field is not written at all.
//! - Non-finite floats are never written (InfluxDB refuses the whole line); the field is
//!   skipped.
//! - Escaping follows the line-protocol spec: measurement escapes comma and space; tag
//!   keys, tag values and field keys escape comma, equals sign and space; string field
//!   values escape double quote and backslash. Line protocol has no way to carry a
//!   newline in a name, and InfluxDB 1.x and 2.x read a backslash in a name differently,
//!   so in names (measurement, tag keys and values, field keys) CR, LF and tab become a
//!   space and a backslash becomes `/`; a measurement starting with `#` (a comment line)
//!   starts with `_` instead; tags with an empty key or value are left out (InfluxDB
//!   refuses them). In string field values CR, LF and tab become a space.
//!   [`sanitize_name`] is that mapping, for tests and documentation.
//! - The encoder appends into buffers it keeps between batches: encoding a record does
//!   not allocate (numbers are formatted straight into the buffer).

use std::fmt::Write as _;
use std::ops::Range;

use crate::model::{AlarmEvent, AlarmState, Poll, Value};
use crate::sinks::Record;

/// Where a piece of text goes in a line; decides what is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Measurement: comma and space.
    Measurement,
    /// Tag key, tag value or field key: comma, equals sign and space.
    Key,
    /// String field value (inside double quotes): double quote and backslash.
    Str,
}

/// Append `s` to `buf`, escaped for `ctx`. Copies runs of plain text in one go.
fn push_escaped(buf: &mut String, s: &str, ctx: Ctx) {
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &str = match (ctx, b) {
            (Ctx::Str, b'\n' | b'\r' | b'\t') => " ",
            (Ctx::Str, b'"') => "\\\"",
            (Ctx::Str, b'\\') => "\\\\",
            (Ctx::Str, _) => continue,
            (_, b'\n' | b'\r' | b'\t' | b' ') => "\\ ",
            (_, b'\\') => "/",
            (_, b',') => "\\,",
            (Ctx::Key, b'=') => "\\=",
            (Ctx::Measurement, b'#') if i == 0 => "_",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `plain..i` and `i + 1` are char
        // boundaries.
        buf.push_str(&s[plain..i]);
        buf.push_str(rep);
        plain = i + 1;
    }
    buf.push_str(&s[plain..]);
}

/// What a name (measurement, tag key or value, field key) reads as after a round trip
/// through the encoder: CR, LF and tab become a space, a backslash becomes `/`, and (for
/// a measurement) a leading `#` becomes `_`. Names without those characters come back
/// unchanged.
pub fn sanitize_name(s: &str, measurement: bool) -> String {
    let mut out: String = s
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '\\' => '/',
            c => c,
        })
        .collect();
    if measurement && out.starts_with('#') {
        out.replace_range(0..1, "_");
    }
    out
}

/// What a string field value reads as after a round trip: CR, LF and tab become a space.
pub fn sanitize_str_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Append a float in a form every InfluxDB version parses: plain decimal for everyday
/// magnitudes, exponent notation for very large or very small ones. `false` if not
/// finite (nothing appended).
fn push_f64(buf: &mut String, v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    let a = v.abs();
    // `Display` is the shortest text that reads back as the same f64.
    if a == 0.0 || (1e-5..1e16).contains(&a) {
        let _ = write!(buf, "{v}");
    } else {
        let _ = write!(buf, "{v:e}");
    }
    true
}

/// One line being written into a buffer. Fields are added in call order; the line is
/// committed by [`Line::finish`]. Dropping an unfinished line removes it from the buffer.
pub struct Line<'a> {
    buf: &'a mut String,
    start: usize,
    fields: usize,
    valid: bool,
    finished: bool,
}

impl<'a> Line<'a> {
    /// Start a line of measurement `measurement` at the end of `buf`. An empty
    /// measurement makes a line that [`Line::finish`] refuses.
    pub fn start(buf: &'a mut String, measurement: &str) -> Line<'a> {
        let start = buf.len();
        push_escaped(buf, measurement, Ctx::Measurement);
        Line {
            buf,
            start,
            fields: 0,
            valid: !measurement.is_empty(),
            finished: false,
        }
    }

    /// Add the tags, sorted by key in place (no allocation). Tags with an empty key or
    /// value are left out. Call once, before any field.
    pub fn tags(&mut self, tags: &mut [(&str, &str)]) -> &mut Self {
        debug_assert_eq!(self.fields, 0, "tags must come before fields");
        tags.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, v) in tags.iter() {
            if k.is_empty() || v.is_empty() {
                continue;
            }
            self.buf.push(',');
            push_escaped(self.buf, k, Ctx::Key);
            self.buf.push('=');
            push_escaped(self.buf, v, Ctx::Key);
        }
        self
    }

    fn field_key(&mut self, key: &str) -> bool {
        if key.is_empty() {
            return false;
        }
        self.buf.push(if self.fields == 0 { ' ' } else { ',' });
        push_escaped(self.buf, key, Ctx::Key);
        self.buf.push('=');
        self.fields += 1;
        true
    }

    /// Add a float field; a non-finite value is skipped.
    pub fn field_f64(&mut self, key: &str, v: f64) -> &mut Self {
        if v.is_finite() && self.field_key(key) {
            push_f64(self.buf, v);
        }
        self
    }

    /// Add an integer field (`5i`).
    pub fn field_i64(&mut self, key: &str, v: i64) -> &mut Self {
        if self.field_key(key) {
            let _ = write!(self.buf, "{v}i");
        }
        self
    }

    /// Add a boolean field.
    pub fn field_bool(&mut self, key: &str, v: bool) -> &mut Self {
        if self.field_key(key) {
            self.buf.push_str(if v { "true" } else { "false" });
        }
        self
    }

    /// Add a string field (quoted, escaped).
    pub fn field_str(&mut self, key: &str, v: &str) -> &mut Self {
        if self.field_key(key) {
            self.buf.push('"');
            push_escaped(self.buf, v, Ctx::Str);
            self.buf.push('"');
        }
        self
    }

    /// Finish the line with a timestamp (milliseconds) and a newline. Returns the byte
    /// range of the line in the buffer (without the newline), or `None` if the line had
    /// no field or no measurement, in which case nothing was written.
    pub fn finish(mut self, ts_ms: i64) -> Option<Range<usize>> {
        self.finished = true;
        if self.fields == 0 || !self.valid {
            self.buf.truncate(self.start);
            return None;
        }
        let _ = write!(self.buf, " {ts_ms}");
        let end = self.buf.len();
        self.buf.push('\n');
        Some(self.start..end)
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.buf.truncate(self.start);
        }
    }
}

/// Append the line of one poll. `None` only if the poll could not be written (never for
/// a valid device: `comm_ok` is always there).
pub fn encode_poll(buf: &mut String, site: &str, poll: &Poll) -> Option<Range<usize>> {
    let dev = &poll.device;
    let mut line = Line::start(buf, dev.kind.as_str());
    line.tags(&mut [
        ("device", &dev.id),
        ("label", dev.label.as_deref().unwrap_or("")),
        ("room", &dev.room),
        ("site", site),
    ]);
    for s in &poll.samples {
        if s.quality != crate::model::Quality::Good {
            continue;
        }
        match &s.value {
            Some(Value::Number(v)) => {
                line.field_f64(s.point.name, *v);
            }
            Some(Value::Bool(b)) => {
                line.field_bool(s.point.name, *b);
            }
            Some(Value::Enum(name)) => {
                if let Some(code) = s.point.enum_code(name) {
                    line.field_i64(s.point.name, code);
                }
            }
            None => {}
        }
    }
    line.field_bool("comm_ok", poll.comm_ok);
    line.finish(poll.ts.millis())
}

/// Append the line of one alarm event.
pub fn encode_alarm(buf: &mut String, ev: &AlarmEvent) -> Option<Range<usize>> {
    let mut line = Line::start(buf, "alarm");
    line.tags(&mut [
        ("device", &ev.device),
        ("level", ev.level.as_str()),
        ("point", ev.point),
        ("rule", &ev.rule),
        ("site", &ev.site),
    ]);
    line.field_i64("state", AlarmState::code(ev.state));
    if let Some(v) = ev.value.as_ref().and_then(Value::as_f64) {
        line.field_f64("value", v);
    }
    if let Some(t) = ev.threshold {
        line.field_f64("threshold", t);
    }
    line.field_i64("seq", i64::try_from(ev.seq).unwrap_or(i64::MAX));
    // Added after `seq` (schema addition for the Grafana alarm tables and annotations).
    if !ev.message.is_empty() {
        line.field_str("message", &ev.message);
    }
    line.finish(ev.ts.millis())
}

/// One encoded line: which record it came from and where it is in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRef {
    /// Index of the record in the batch.
    pub record: usize,
    /// Byte range in [`Encoded::body`], without the newline.
    pub span: Range<usize>,
}

/// A batch encoded as one request body, with the line → record mapping kept so a
/// server's complaint about a line can be traced back to the record. Reused from batch
/// to batch: [`Encoded::encode`] clears it and keeps the capacity.
#[derive(Debug, Default)]
pub struct Encoded {
    body: String,
    lines: Vec<LineRef>,
}

impl Encoded {
    /// An empty buffer.
    pub fn new() -> Encoded {
        Encoded::default()
    }

    /// Encode `batch` (replacing what was there). `site` tags the readings.
    pub fn encode(&mut self, site: &str, batch: &[Record]) {
        self.body.clear();
        self.lines.clear();
        for (i, rec) in batch.iter().enumerate() {
            let span = match rec {
                Record::Poll(p) => encode_poll(&mut self.body, site, p),
                Record::Alarm(a) => encode_alarm(&mut self.body, a),
                // Not a measurement: the registry never routes notifications here.
                Record::Notification(_) => None,
                Record::Audit(_) => None,
            };
            if let Some(span) = span {
                self.lines.push(LineRef { record: i, span });
            }
        }
    }

    /// The request body: every line, each ending with `\n`.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The lines, in body order.
    pub fn lines(&self) -> &[LineRef] {
        &self.lines
    }

    /// The text of line `i` (without the newline).
    pub fn line(&self, i: usize) -> &str {
        &self.body[self.lines[i].span.clone()]
    }

    /// Write the body made of the lines `which` (indexes into [`Encoded::lines`], in that
    /// order) into `out`, replacing its content.
    pub fn body_of(&self, which: &[usize], out: &mut String) {
        out.clear();
        for &i in which {
            out.push_str(self.line(i));
            out.push('\n');
        }
    }

    /// Replace the content with these lines, line `i` standing for record `i` (to replay
    /// recorded server replies in tests).
    #[cfg(test)]
    pub(crate) fn set_raw_lines(&mut self, lines: &[&str]) {
        self.body.clear();
        self.lines.clear();
        for (i, l) in lines.iter().enumerate() {
            let start = self.body.len();
            self.body.push_str(l);
            self.lines.push(LineRef {
                record: i,
                span: start..self.body.len(),
            });
            self.body.push('\n');
        }
    }
}

/// The InfluxDB type name of a field value as written in line protocol: `float`,
/// `integer`, `unsigned`, `string` or `boolean`.
fn value_type(v: &str) -> &'static str {
    if v.starts_with('"') {
        "string"
    } else if matches!(
        v,
        "t" | "T" | "true" | "True" | "TRUE" | "f" | "F" | "false" | "False" | "FALSE"
    ) {
        "boolean"
    } else if v.ends_with('i') {
        "integer"
    } else if v.ends_with('u') {
        "unsigned"
    } else {
        "float"
    }
}

/// Undo name escaping (`\,`, `\=`, `\ `, and `\"` as some servers print it).
fn unescape_name(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ (',' | '=' | ' ' | '"' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The measurement and the fields (key, InfluxDB type name) of a line this encoder
/// wrote; `None` if the line does not have that shape. Used on the error path only.
pub fn inspect(line: &str) -> Option<(String, Vec<(String, &'static str)>)> {
    let b = line.as_bytes();
    // Series key: up to the first unescaped space.
    let mut i = 0;
    let mut meas_end = None;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b',' if meas_end.is_none() => meas_end = Some(i),
            b' ' => break,
            _ => {}
        }
        i += 1;
    }
    if i >= b.len() {
        return None;
    }
    let key_end = i;
    let measurement = unescape_name(&line[..meas_end.unwrap_or(key_end)]).into_owned();
    // Fields: up to the next space outside quotes and escapes.
    let fields_start = key_end + 1;
    let mut fields = Vec::new();
    let mut part_start = fields_start;
    let mut in_str = false;
    // A double quote opens a string only in a field value, never in a field key.
    let mut in_value = false;
    let mut j = fields_start;
    loop {
        let end = j >= b.len() || (!in_str && (b[j] == b' ' || b[j] == b','));
        if end {
            in_value = false;
            let part = &line[part_start..j.min(b.len())];
            let eq = find_unescaped_eq(part)?;
            fields.push((
                unescape_name(&part[..eq]).into_owned(),
                value_type(&part[eq + 1..]),
            ));
            if j >= b.len() || b[j] == b' ' {
                break;
            }
            part_start = j + 1;
        } else if b[j] == b'\\' {
            j += 1;
        } else if b[j] == b'=' && !in_value {
            in_value = true;
        } else if b[j] == b'"' && in_value {
            in_str = !in_str;
        }
        j += 1;
    }
    Some((measurement, fields))
}

fn find_unescaped_eq(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'=' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests;
