//! The byte format of one queued record (the `body` column), and its decoding back
//! into a [`Record`].
//!
//! Invariants:
//! - `decode(encode(r))` gives back a record that every sink encodes exactly as it
//!   would have encoded `r` (same device identity, kind, room, label, timestamps,
//!   values with their types, alarm fields). The device's display name is not stored:
//!   a known device gets its configured [`DeviceMeta`] back from the [`Registry`], an
//!   unknown one (the config changed since the record was queued) gets one rebuilt from
//!   the stored fields, named after its id.
//! - Decoding never panics: a truncated or unknown body is an [`Error`] naming what
//!   was wrong, and the caller dead-letters the row.
//!
//! Format, version 1 (all integers little-endian, `varint` = unsigned LEB128,
//! `str` = varint byte length + UTF-8 bytes):
//!
//! ```text
//! record  = tag:u8 (1 = poll, 2 = alarm event, 3 = notification) , payload
//! poll    = ts_ms:i64 , device , comm_ok:u8 , n:varint , sample × n
//! device  = kind:u8 , id:str , room:str , has_label:u8 , [label:str]
//! sample  = point:str , quality:u8 , value
//! value   = 0 (none) | 1 f64 | 2 (false) | 3 (true) | 4 enum_name:str
//! alarm   = ts_ms:i64 , seq:u64 , id:str , site:str , device:str , kind:u8 , room:str ,
//!           point:str , rule:str , level:u8 , state:u8 , value ,
//!           has_threshold:u8 , [threshold:f64] , message:str , [detail:str]
//! notification = ts_ms:i64 , id:str , person:str , phone:str , lang:str ,
//!           has_alarm:u8 , [alarm_no:u64] , call:u8 , text:str , [attempt:u32]
//! audit   = ts_ms:i64 , json:str        (tag 5; [`crate::sinks::Audit`] as JSON)
//! ```
//!
//! Audit records (tag 5, logins, account changes, commands, config loads for sinks
//! that accept `audit`) were added with the web console, additively; tag 4 is left to
//! generator runs.
//!
//! `attempt` (little-endian u32) was added with paging; a notification written
//! without it decodes as attempt 1.
//!
//! Notifications (tag 3) were added in round 2, additively: a reader of the first
//! release never meets one (it has no sink that takes them).
//!
//! `detail` (JSON of [`crate::model::EventDetail`]: gateway, alarm number, operator,
//! ...) was added after the first release; records without it decode with an empty
//! detail.
//!
//! Codes: kind = index in [`Kind::ALL`]; quality 0 good, 1 stale, 2 comm_error,
//! 3 timeout, 4 device_exception, 5 no_such_object, 6 out_of_range, 7 unknown; level
//! 0 normal, 1 serious; state 0 cleared, 1 raised, 2 acked, 3 shelved, 4 unshelved. Points and
//! enumeration values are stored by canonical name (not by position), so a record
//! survives a vocabulary that grew between writing and reading.
//!
//! A climate poll with three samples takes about 100 bytes; each further number
//! sample about 25.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use crate::model::{
    AlarmEvent, AlarmState, Device, DeviceMeta, Kind, Level, Poll, Quality, Sample, Timestamp,
    Value,
};
use crate::points::{self, PointType};
use crate::sinks::Record;

/// Tag byte of a poll.
pub const TAG_POLL: u8 = 1;
/// Tag byte of an alarm event.
pub const TAG_ALARM: u8 = 2;
/// Tag byte of a notification to a person.
pub const TAG_NOTIFICATION: u8 = 3;
/// Tag byte of an audit record (a journal entry for sinks that accept `audit`).
pub const TAG_AUDIT: u8 = 5;

/// Why a stored body could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The body ended inside a field.
    #[error("record truncated at byte {at} while reading {what}")]
    Truncated {
        /// Byte offset.
        at: usize,
        /// Field being read.
        what: &'static str,
    },
    /// A code byte has no meaning in this format version.
    #[error("unknown {what} code {code} at byte {at}")]
    BadCode {
        /// Which code.
        what: &'static str,
        /// Its value.
        code: u64,
        /// Byte offset.
        at: usize,
    },
    /// A string field is not UTF-8.
    #[error("{what} at byte {at} is not UTF-8")]
    NotUtf8 {
        /// Field.
        what: &'static str,
        /// Byte offset.
        at: usize,
    },
    /// A point name is not in the vocabulary of the device's kind.
    #[error("point {name:?} is not a {kind} point")]
    UnknownPoint {
        /// Device kind.
        kind: Kind,
        /// Stored name.
        name: String,
    },
}

/// Append `rec` to `out` in the format above.
pub fn encode(rec: &Record, out: &mut Vec<u8>) {
    match rec {
        Record::Poll(p) => {
            out.push(TAG_POLL);
            out.extend_from_slice(&p.ts.0.to_le_bytes());
            device_header(&p.device, out);
            out.push(u8::from(p.comm_ok));
            varint(p.samples.len() as u64, out);
            for s in &p.samples {
                string(s.point.name, out);
                out.push(quality_code(s.quality));
                value(s.value.as_ref(), out);
            }
        }
        Record::Alarm(a) => {
            out.push(TAG_ALARM);
            out.extend_from_slice(&a.ts.0.to_le_bytes());
            out.extend_from_slice(&a.seq.to_le_bytes());
            string(&a.id, out);
            string(&a.site, out);
            string(&a.device, out);
            out.push(kind_code(a.kind));
            string(&a.room, out);
            string(a.point, out);
            string(&a.rule, out);
            out.push(match a.level {
                Level::Normal => 0,
                Level::Serious => 1,
            });
            out.push(a.state.code() as u8);
            value(a.value.as_ref(), out);
            match a.threshold {
                Some(t) => {
                    out.push(1);
                    out.extend_from_slice(&t.to_le_bytes());
                }
                None => out.push(0),
            }
            string(&a.message, out);
            // Format 1 extension: the round-2 detail as JSON; absent in records of the
            // first release, which decode with an empty detail.
            string(&serde_json::to_string(&a.detail).unwrap_or_default(), out);
        }
        Record::Notification(n) => {
            out.push(TAG_NOTIFICATION);
            out.extend_from_slice(&n.ts.0.to_le_bytes());
            string(&n.id, out);
            string(&n.person, out);
            string(&n.phone, out);
            string(&n.lang, out);
            match n.alarm_no {
                Some(no) => {
                    out.push(1);
                    out.extend_from_slice(&no.to_le_bytes());
                }
                None => out.push(0),
            }
            out.push(u8::from(n.call));
            string(&n.text, out);
            out.extend_from_slice(&n.attempt.to_le_bytes());
        }
        Record::Audit(a) => {
            out.push(TAG_AUDIT);
            out.extend_from_slice(&a.ts.0.to_le_bytes());
            string(&serde_json::to_string(&**a).unwrap_or_default(), out);
        }
    }
}

/// The record encoded into a new vector.
pub fn to_vec(rec: &Record) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    encode(rec, &mut v);
    v
}

/// The device part of a poll body (`device` in the grammar): also the key under which
/// the [`Registry`] finds the device again.
pub fn device_header(d: &DeviceMeta, out: &mut Vec<u8>) {
    out.push(kind_code(d.kind));
    string(&d.id, out);
    string(&d.room, out);
    match &d.label {
        Some(l) => {
            out.push(1);
            string(l, out);
        }
        None => out.push(0),
    }
}

fn kind_code(k: Kind) -> u8 {
    Kind::ALL.iter().position(|x| *x == k).unwrap_or(0) as u8
}

const QUALITIES: [Quality; 8] = [
    Quality::Good,
    Quality::Stale,
    Quality::CommError,
    Quality::Timeout,
    Quality::DeviceException,
    Quality::NoSuchObject,
    Quality::OutOfRange,
    Quality::Unknown,
];

fn quality_code(q: Quality) -> u8 {
    QUALITIES.iter().position(|x| *x == q).unwrap_or(7) as u8
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

fn value(v: Option<&Value>, out: &mut Vec<u8>) {
    match v {
        None => out.push(0),
        Some(Value::Number(x)) => {
            out.push(1);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Some(Value::Bool(false)) => out.push(2),
        Some(Value::Bool(true)) => out.push(3),
        Some(Value::Enum(name)) => {
            out.push(4);
            string(name, out);
        }
    }
}

/// Devices by their stored header, so decoded polls share the configured
/// [`DeviceMeta`] (and its display name) instead of allocating one per record.
///
/// Bounded by the number of distinct devices ever stored; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<HashMap<Vec<u8>, Device>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Make `devices` known: a stored poll whose kind, id, room and label match one of
    /// them decodes to that very device.
    pub fn add(&self, devices: impl IntoIterator<Item = Device>) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for d in devices {
            let mut key = Vec::new();
            device_header(&d, &mut key);
            g.insert(key, d);
        }
    }

    fn get_or_build(&self, key: &[u8], build: impl FnOnce() -> DeviceMeta) -> Device {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = g.get(key) {
            return d.clone();
        }
        let d: Device = Arc::new(build());
        g.insert(key.to_vec(), d.clone());
        d
    }
}

/// A cursor over a body.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if self.b.len() - self.at < n {
            return Err(Error::Truncated { at: self.at, what });
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, Error> {
        let s = self.take(8, what)?;
        Ok(i64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(self.i64(what)? as u64)
    }
    fn f64(&mut self, what: &'static str) -> Result<f64, Error> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    fn varint(&mut self, what: &'static str) -> Result<u64, Error> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::BadCode {
            what,
            code: v,
            at: self.at,
        })
    }
    fn str(&mut self, what: &'static str) -> Result<&'a str, Error> {
        let n = self.varint(what)? as usize;
        let at = self.at;
        let s = self.take(n, what)?;
        std::str::from_utf8(s).map_err(|_| Error::NotUtf8 { what, at })
    }
    fn kind(&mut self) -> Result<Kind, Error> {
        let at = self.at;
        let c = self.u8("kind")?;
        Kind::ALL.get(c as usize).copied().ok_or(Error::BadCode {
            what: "kind",
            code: c.into(),
            at,
        })
    }
    fn value(&mut self, kind: Kind, point: &str) -> Result<Option<Value>, Error> {
        let at = self.at;
        Ok(match self.u8("value")? {
            0 => None,
            1 => Some(Value::Number(self.f64("number")?)),
            2 => Some(Value::Bool(false)),
            3 => Some(Value::Bool(true)),
            4 => Some(Value::Enum(enum_name(
                kind,
                point,
                self.str("enumeration value")?,
            ))),
            c => {
                return Err(Error::BadCode {
                    what: "value",
                    code: c.into(),
                    at,
                });
            }
        })
    }
}

/// The `&'static` enumeration name: from the point's vocabulary when it is there,
/// otherwise interned (bounded by the distinct names ever stored).
fn enum_name(kind: Kind, point: &str, name: &str) -> &'static str {
    if let Some(p) = points::lookup(kind, point)
        && let PointType::Enum(names) = p.ty
        && let Some(n) = names.iter().find(|n| **n == name)
    {
        return n;
    }
    intern(name)
}

/// A `&'static str` for a name that is not in the vocabulary (an alarm's pseudo-point
/// such as `comm`, or a name from an older vocabulary). Each distinct name is leaked
/// once; the set of such names is small and fixed by the code that produced them.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut g = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = g.get(name) {
        return s;
    }
    let s: &'static str = Box::leak(name.to_owned().into_boxed_str());
    g.insert(s);
    s
}

fn alarm_point(kind: Kind, name: &str) -> &'static str {
    match points::lookup(kind, name) {
        Some(p) => p.name,
        None => intern(name),
    }
}

/// Decode a body written by [`encode`].
pub fn decode(body: &[u8], devices: &Registry) -> Result<Record, Error> {
    let mut r = Reader { b: body, at: 0 };
    match r.u8("tag")? {
        TAG_POLL => {
            let ts = Timestamp(r.i64("timestamp")?);
            let start = r.at;
            let kind = r.kind()?;
            let id = r.str("device id")?;
            let room = r.str("room")?;
            let label = match r.u8("label flag")? {
                0 => None,
                _ => Some(r.str("label")?),
            };
            let key = &body[start..r.at];
            let device = devices.get_or_build(key, || DeviceMeta {
                id: Arc::from(id),
                name: id.to_string(),
                label: label.map(str::to_string),
                room: Arc::from(room),
                kind,
            });
            let comm_ok = r.u8("comm_ok")? != 0;
            let n = r.varint("sample count")? as usize;
            let mut samples = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let name = r.str("point")?;
                let point = points::lookup(kind, name).ok_or_else(|| Error::UnknownPoint {
                    kind,
                    name: name.to_string(),
                })?;
                let at = r.at;
                let q = r.u8("quality")?;
                let quality = *QUALITIES.get(q as usize).ok_or(Error::BadCode {
                    what: "quality",
                    code: q.into(),
                    at,
                })?;
                let value = r.value(kind, name)?;
                samples.push(Sample {
                    point,
                    value,
                    quality,
                });
            }
            Ok(Record::Poll(Arc::new(Poll {
                device,
                ts,
                comm_ok,
                samples,
            })))
        }
        TAG_ALARM => {
            let ts = Timestamp(r.i64("timestamp")?);
            let seq = r.u64("seq")?;
            let id = r.str("event id")?.to_string();
            let site = Arc::from(r.str("site")?);
            let device = Arc::from(r.str("device")?);
            let kind = r.kind()?;
            let room = Arc::from(r.str("room")?);
            let point = alarm_point(kind, r.str("point")?);
            let rule = Arc::from(r.str("rule")?);
            let at = r.at;
            let level = match r.u8("level")? {
                0 => Level::Normal,
                1 => Level::Serious,
                c => {
                    return Err(Error::BadCode {
                        what: "level",
                        code: c.into(),
                        at,
                    });
                }
            };
            let at = r.at;
            let state = match r.u8("state")? {
                0 => AlarmState::Cleared,
                1 => AlarmState::Raised,
                2 => AlarmState::Acked,
                3 => AlarmState::Shelved,
                4 => AlarmState::Unshelved,
                c => {
                    return Err(Error::BadCode {
                        what: "state",
                        code: c.into(),
                        at,
                    });
                }
            };
            let value = r.value(kind, point)?;
            let threshold = match r.u8("threshold flag")? {
                0 => None,
                _ => Some(r.f64("threshold")?),
            };
            let message = r.str("message")?.to_string();
            let detail = if r.at < body.len() {
                let text = r.str("detail")?;
                serde_json::from_str(text).map_err(|_| Error::BadCode {
                    what: "detail",
                    code: 0,
                    at: r.at,
                })?
            } else {
                crate::model::EventDetail::default()
            };
            Ok(Record::Alarm(Arc::new(AlarmEvent {
                id,
                seq,
                ts,
                site,
                device,
                kind,
                room,
                point,
                rule,
                level,
                state,
                value,
                threshold,
                message,
                detail,
            })))
        }
        TAG_NOTIFICATION => {
            let ts = Timestamp(r.i64("ts")?);
            let id = r.str("notification id")?.to_string();
            let person = r.str("person")?.to_string();
            let phone = r.str("phone")?.to_string();
            let lang = r.str("lang")?.to_string();
            let alarm_no = match r.u8("has_alarm")? {
                0 => None,
                _ => Some(r.u64("alarm_no")?),
            };
            let call = r.u8("call")? != 0;
            let text = r.str("text")?.to_string();
            // Written before paging: no attempt, which is the first.
            let attempt = if r.b.len() == r.at {
                1
            } else {
                let b = r.take(4, "attempt")?;
                u32::from_le_bytes(b.try_into().unwrap_or([1, 0, 0, 0]))
            };
            Ok(Record::Notification(Arc::new(crate::sinks::Notification {
                attempt,
                call,
                id,
                ts,
                person,
                phone,
                text,
                lang,
                alarm_no,
            })))
        }
        TAG_AUDIT => {
            let _ts = r.i64("ts")?;
            let json = r.str("audit record")?;
            let a: crate::sinks::Audit =
                serde_json::from_str(json).map_err(|_| Error::BadCode {
                    what: "audit record JSON",
                    code: 0,
                    at: 0,
                })?;
            Ok(Record::Audit(Arc::new(a)))
        }
        c => Err(Error::BadCode {
            what: "record tag",
            code: c.into(),
            at: 0,
        }),
    }
}

/// The record as one line of JSON, for the dead-letter table (read by people with
/// `sqlite3`). Falls back to a hex dump when the body does not decode.
pub fn describe(body: &[u8]) -> String {
    let record = match decode(body, &Registry::new()) {
        Ok(r) => r,
        Err(e) => {
            let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
            return serde_json::json!({ "undecodable": e.to_string(), "hex": hex }).to_string();
        }
    };
    match record {
        Record::Poll(p) => {
            let samples: serde_json::Map<String, serde_json::Value> = p
                .samples
                .iter()
                .map(|s| {
                    let v = match (&s.value, s.quality) {
                        (Some(v), Quality::Good) => serde_json::to_value(v).unwrap_or_default(),
                        _ => serde_json::Value::String(s.quality.as_str().to_string()),
                    };
                    (s.point.name.to_string(), v)
                })
                .collect();
            serde_json::json!({
                "type": "poll",
                "device": &*p.device.id,
                "kind": p.device.kind.as_str(),
                "room": &*p.device.room,
                "label": p.device.label,
                "ts": p.ts.rfc3339(),
                "comm_ok": p.comm_ok,
                "samples": samples,
            })
            .to_string()
        }
        Record::Alarm(a) => {
            let mut v = serde_json::to_value(&*a).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "alarm".into());
            }
            v.to_string()
        }
        Record::Notification(n) => {
            let mut v = serde_json::to_value(&*n).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "notification".into());
            }
            v.to_string()
        }
        Record::Audit(a) => {
            let mut v = serde_json::to_value(&*a).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "audit".into());
            }
            v.to_string()
        }
    }
}

/// Whether a body is an alarm event or a notification (its first byte), without
/// decoding it: records that are never dropped while a reading can go.
pub fn is_alarm(body: &[u8]) -> bool {
    matches!(
        body.first(),
        Some(&TAG_ALARM) | Some(&TAG_NOTIFICATION) | Some(&TAG_AUDIT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn climate_poll(ts: i64, temp: f64) -> Record {
        let device = Arc::new(DeviceMeta {
            id: "th1".into(),
            name: "Rack 1 inlet".into(),
            label: Some("TH-01".into()),
            room: "server1".into(),
            kind: Kind::Climate,
        });
        Record::Poll(Arc::new(Poll {
            device,
            ts: Timestamp(ts),
            comm_ok: true,
            samples: vec![
                Sample {
                    point: points::lookup(Kind::Climate, "temperature_c").unwrap(),
                    value: Some(Value::Number(temp)),
                    quality: Quality::Good,
                },
                Sample {
                    point: points::lookup(Kind::Climate, "humidity_pct").unwrap(),
                    value: None,
                    quality: Quality::Timeout,
                },
                Sample {
                    point: points::lookup(Kind::Climate, "temperature_c").unwrap(),
                    value: Some(Value::Bool(true)),
                    quality: Quality::Good,
                },
            ],
        }))
    }

    fn ups_poll() -> Record {
        let device = Arc::new(DeviceMeta {
            id: "ups-ä".into(),
            name: "UPS".into(),
            label: None,
            room: "r".into(),
            kind: Kind::Ups,
        });
        Record::Poll(Arc::new(Poll {
            device,
            ts: Timestamp(-5),
            comm_ok: false,
            samples: vec![Sample {
                point: points::lookup(Kind::Ups, "output_source").unwrap(),
                value: Some(Value::Enum("on_battery")),
                quality: Quality::Good,
            }],
        }))
    }

    fn alarm() -> Record {
        Record::Alarm(Arc::new(AlarmEvent {
            detail: Default::default(),
            id: "0190a0b0-0000-7000-8000-000000000042".into(),
            seq: u64::MAX - 3,
            ts: Timestamp(1_764_057_600_123),
            site: "tv".into(),
            device: "th1".into(),
            kind: Kind::Climate,
            room: "server1".into(),
            point: "comm",
            rule: "comm_lost".into(),
            level: Level::Serious,
            state: AlarmState::Cleared,
            value: Some(Value::Number(31.5)),
            threshold: Some(30.0),
            message: "Mất kết nối (Điều 10.1)".into(),
        }))
    }

    fn same(a: &Record, b: &Record) {
        match (a, b) {
            (Record::Poll(a), Record::Poll(b)) => {
                assert_eq!(a.ts, b.ts);
                assert_eq!(a.comm_ok, b.comm_ok);
                assert_eq!(a.device.id, b.device.id);
                assert_eq!(a.device.kind, b.device.kind);
                assert_eq!(a.device.room, b.device.room);
                assert_eq!(a.device.label, b.device.label);
                assert_eq!(a.samples.len(), b.samples.len());
                for (x, y) in a.samples.iter().zip(&b.samples) {
                    assert!(std::ptr::eq(x.point, y.point));
                    assert_eq!(x.value, y.value);
                    assert_eq!(x.quality, y.quality);
                }
            }
            (Record::Alarm(a), Record::Alarm(b)) => {
                assert_eq!(
                    serde_json::to_value(&**a).unwrap(),
                    serde_json::to_value(&**b).unwrap()
                );
                assert_eq!((a.kind, &a.room), (b.kind, &b.room));
            }
            (Record::Notification(a), Record::Notification(b)) => assert_eq!(a, b),
            _ => panic!("different record types"),
        }
    }

    fn notification(alarm_no: Option<u64>) -> Record {
        Record::Notification(Arc::new(crate::sinks::Notification {
            id: "0190a0b0-0000-7000-8000-000000000099".into(),
            ts: Timestamp(1_764_057_600_456),
            person: "an".into(),
            phone: "+84912345678".into(),
            text: "Cảnh báo nghiêm trọng #123: UPS đang chạy bằng ắc quy".into(),
            lang: "vi".into(),
            alarm_no,
            call: alarm_no.is_none(),
            attempt: 3,
        }))
    }

    #[test]
    fn notifications_round_trip_and_are_never_dropped_first() {
        for rec in [notification(Some(123)), notification(None)] {
            let body = to_vec(&rec);
            assert!(is_alarm(&body), "kept like an alarm event");
            same(&rec, &decode(&body, &Registry::new()).unwrap());
            for cut in (0..body.len()).filter(|c| *c != body.len() - 4) {
                assert!(
                    decode(&body[..cut], &Registry::new()).is_err(),
                    "cut at {cut}"
                );
            }
            // A notification written before paging has no attempt: the first.
            let Record::Notification(old) =
                decode(&body[..body.len() - 4], &Registry::new()).unwrap()
            else {
                panic!("not a notification")
            };
            assert_eq!(old.attempt, 1);
        }
        let d: serde_json::Value =
            serde_json::from_str(&describe(&to_vec(&notification(Some(7))))).unwrap();
        assert_eq!(
            (d["type"].as_str(), d["alarm_no"].as_u64()),
            (Some("notification"), Some(7))
        );
    }

    #[test]
    fn records_round_trip() {
        let reg = Registry::new();
        for rec in [climate_poll(1_764_057_600_000, 22.5), ups_poll(), alarm()] {
            let body = to_vec(&rec);
            assert_eq!(is_alarm(&body), rec.is_alarm());
            let back = decode(&body, &reg).unwrap();
            same(&rec, &back);
        }
    }

    #[test]
    fn known_devices_come_back_with_their_configured_meta() {
        let rec = climate_poll(1, 20.0);
        let Record::Poll(p) = &rec else {
            unreachable!()
        };
        let reg = Registry::new();
        reg.add([p.device.clone()]);
        let Record::Poll(back) = decode(&to_vec(&rec), &reg).unwrap() else {
            unreachable!()
        };
        assert!(Arc::ptr_eq(&back.device, &p.device));
        assert_eq!(back.device.name, "Rack 1 inlet");
        // Unknown to the registry: rebuilt from the stored fields, named by its id.
        let Record::Poll(other) = decode(&to_vec(&rec), &Registry::new()).unwrap() else {
            unreachable!()
        };
        assert_eq!(other.device.name, "th1");
    }

    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let body = to_vec(&alarm());
        // A body cut exactly before the detail is a first-release record: valid.
        let first_release = body.len()
            - 1
            - serde_json::to_string(&crate::model::EventDetail::default())
                .unwrap()
                .len();
        for cut in (0..body.len()).filter(|c| *c != first_release) {
            assert!(
                decode(&body[..cut], &Registry::new()).is_err(),
                "cut at {cut}"
            );
        }
        assert!(matches!(
            decode(&[9], &Registry::new()),
            Err(Error::BadCode { .. })
        ));
        let mut bad = to_vec(&ups_poll());
        let n = bad.len();
        bad[n - 12] = 0xff; // inside the enumeration name length / bytes
        let _ = decode(&bad, &Registry::new()); // must not panic
        assert!(describe(&[9, 9]).contains("undecodable"));
    }

    #[test]
    fn describe_is_readable_json() {
        let d: serde_json::Value =
            serde_json::from_str(&describe(&to_vec(&climate_poll(0, 22.5)))).unwrap();
        assert_eq!(d["device"], "th1");
        assert_eq!(d["samples"]["humidity_pct"], "timeout");
        let d: serde_json::Value = serde_json::from_str(&describe(&to_vec(&alarm()))).unwrap();
        assert_eq!(d["type"], "alarm");
        assert_eq!(d["rule"], "comm_lost");
    }

    #[test]
    fn audit_records_round_trip_and_are_kept_like_alarms() {
        let a = crate::sinks::Audit {
            id: "gw1-42".into(),
            seq: 42,
            ts: Timestamp(1_780_000_000_000),
            gateway: "gw1".into(),
            kind: "login".into(),
            device: None,
            data: serde_json::json!({"event": "failure", "user": "binh", "ip": "10.0.0.9"}),
        };
        let rec = Record::Audit(Arc::new(a.clone()));
        let body = to_vec(&rec);
        assert_eq!(body[0], TAG_AUDIT);
        assert!(
            is_alarm(&body) && rec.is_alarm(),
            "never dropped for a reading"
        );
        let Record::Audit(back) = decode(&body, &Registry::new()).unwrap() else {
            panic!("not an audit record")
        };
        assert_eq!(*back, a);
        for cut in 0..body.len() {
            assert!(
                decode(&body[..cut], &Registry::new()).is_err(),
                "cut at {cut}"
            );
        }
        let d: serde_json::Value = serde_json::from_str(&describe(&body)).unwrap();
        assert_eq!(
            (d["type"].as_str(), d["user"].as_str()),
            (Some("audit"), None)
        );
        assert_eq!(d["data"]["user"], "binh");
    }
}
