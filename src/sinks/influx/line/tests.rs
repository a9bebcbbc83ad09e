//! Golden lines for the schema, and a property test: an independent line-protocol
//! reader written here recovers exactly what the encoder was given.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::model::{AlarmEvent, DeviceMeta, Kind, Level, Quality, Sample, Timestamp};
use crate::points::lookup;

fn device(kind: Kind, id: &str, label: Option<&str>) -> crate::model::Device {
    Arc::new(DeviceMeta {
        id: Arc::from(id),
        name: id.to_string(),
        label: label.map(str::to_string),
        room: Arc::from("dc1"),
        kind,
    })
}

fn good(kind: Kind, point: &str, v: Value) -> Sample {
    Sample {
        point: lookup(kind, point).unwrap(),
        value: Some(v),
        quality: Quality::Good,
    }
}

fn bad(kind: Kind, point: &str, q: Quality) -> Sample {
    Sample {
        point: lookup(kind, point).unwrap(),
        value: None,
        quality: q,
    }
}

fn poll_line(site: &str, poll: &Poll) -> String {
    let mut buf = String::new();
    let span = encode_poll(&mut buf, site, poll).expect("a poll always makes a line");
    assert_eq!(
        buf.len(),
        span.end + 1,
        "exactly one line, ending with a newline"
    );
    assert!(buf.ends_with('\n'));
    buf[span].to_string()
}

#[test]
fn golden_climate_poll_with_label() {
    let poll = Poll {
        device: device(Kind::Climate, "t1", Some("R01 inlet, Phòng máy")),
        ts: Timestamp(1_764_057_600_123),
        comm_ok: true,
        samples: vec![
            good(Kind::Climate, "temperature_c", Value::Number(22.5)),
            good(Kind::Climate, "humidity_pct", Value::Number(55.0)),
            bad(Kind::Climate, "dew_point_c", Quality::OutOfRange),
        ],
    };
    assert_eq!(
        poll_line("tv", &poll),
        "climate,device=t1,label=R01\\ inlet\\,\\ Phòng\\ máy,room=dc1,site=tv \
         temperature_c=22.5,humidity_pct=55,comm_ok=true 1764057600123"
    );
}

#[test]
fn golden_ups_poll_enum_bool_and_skipped_values() {
    let poll = Poll {
        device: device(Kind::Ups, "ups1", None),
        ts: Timestamp(1_764_057_600_000),
        comm_ok: true,
        samples: vec![
            good(Kind::Ups, "output_source", Value::Enum("on_battery")),
            good(Kind::Ups, "on_battery", Value::Bool(true)),
            good(Kind::Ups, "fault", Value::Bool(false)),
            good(Kind::Ups, "battery_charge_pct", Value::Number(87.25)),
            // Not finite: skipped, never `NaN` on the wire.
            good(Kind::Ups, "load_pct", Value::Number(f64::NAN)),
            good(Kind::Ups, "output_power_kw", Value::Number(f64::INFINITY)),
            // Unknown enumeration name: no code, skipped.
            good(Kind::Ups, "output_source", Value::Enum("warp_drive")),
            // Good quality but no value: nothing to write.
            Sample {
                point: lookup(Kind::Ups, "input_voltage_v").unwrap(),
                value: None,
                quality: Quality::Good,
            },
            Sample {
                point: lookup(Kind::Ups, "runtime_remaining_s").unwrap(),
                value: Some(Value::Number(1200.0)),
                quality: Quality::Stale,
            },
        ],
    };
    assert_eq!(
        poll_line("tv", &poll),
        "ups,device=ups1,room=dc1,site=tv \
         output_source=2i,on_battery=true,fault=false,battery_charge_pct=87.25,comm_ok=true 1764057600000"
    );
}

#[test]
fn golden_failed_poll_writes_comm_ok_false() {
    let poll = Poll {
        device: device(Kind::Ups, "ups2", Some("")),
        ts: Timestamp(1_764_057_601_000),
        comm_ok: false,
        samples: vec![
            bad(Kind::Ups, "battery_charge_pct", Quality::Timeout),
            bad(Kind::Ups, "on_battery", Quality::Timeout),
        ],
    };
    // An empty label is left out (InfluxDB refuses empty tag values).
    assert_eq!(
        poll_line("tv", &poll),
        "ups,device=ups2,room=dc1,site=tv comm_ok=false 1764057601000"
    );
}

fn alarm(value: Option<Value>, threshold: Option<f64>, state: AlarmState) -> AlarmEvent {
    AlarmEvent {
        detail: Default::default(),
        id: "0190a0b0-0000-7000-8000-000000000001".into(),
        seq: 42,
        ts: Timestamp(1_764_057_602_500),
        site: Arc::from("tv"),
        device: Arc::from("t1"),
        kind: Kind::Climate,
        room: Arc::from("dc1"),
        point: "temperature_c",
        rule: Arc::from("temperature_high"),
        level: Level::Serious,
        state,
        value,
        threshold,
        message: "Nhiệt độ cao (Điều 10.3)".into(),
    }
}

#[test]
fn golden_alarm_lines() {
    let mut buf = String::new();
    encode_alarm(
        &mut buf,
        &alarm(Some(Value::Number(33.1)), Some(32.0), AlarmState::Raised),
    )
    .unwrap();
    encode_alarm(
        &mut buf,
        &alarm(Some(Value::Bool(true)), None, AlarmState::Cleared),
    )
    .unwrap();
    encode_alarm(
        &mut buf,
        &alarm(Some(Value::Enum("on_battery")), None, AlarmState::Acked),
    )
    .unwrap();
    assert_eq!(
        buf,
        "alarm,device=t1,level=serious,point=temperature_c,rule=temperature_high,site=tv \
         state=1i,value=33.1,threshold=32,seq=42i,message=\"Nhiệt độ cao (Điều 10.3)\" 1764057602500\n\
         alarm,device=t1,level=serious,point=temperature_c,rule=temperature_high,site=tv \
         state=0i,value=1,seq=42i,message=\"Nhiệt độ cao (Điều 10.3)\" 1764057602500\n\
         alarm,device=t1,level=serious,point=temperature_c,rule=temperature_high,site=tv \
         state=2i,seq=42i,message=\"Nhiệt độ cao (Điều 10.3)\" 1764057602500\n"
    );
}

#[test]
fn encoded_batch_maps_lines_to_records_and_rebuilds_subsets() {
    let p = Arc::new(Poll {
        device: device(Kind::Door, "d1", None),
        ts: Timestamp(5),
        comm_ok: true,
        samples: vec![good(Kind::Door, "door_open", Value::Bool(true))],
    });
    let a = Arc::new(alarm(None, None, AlarmState::Raised));
    let batch = vec![Record::Poll(p.clone()), Record::Alarm(a), Record::Poll(p)];
    let mut enc = Encoded::new();
    enc.encode("tv", &batch);
    assert_eq!(enc.lines().len(), 3);
    assert_eq!(
        enc.lines().iter().map(|l| l.record).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(
        enc.line(0),
        "door,device=d1,room=dc1,site=tv door_open=true,comm_ok=true 5"
    );
    assert!(enc.line(1).starts_with("alarm,"));
    assert_eq!(enc.body().lines().count(), 3);
    let mut out = String::from("junk");
    enc.body_of(&[2, 0], &mut out);
    assert_eq!(out, format!("{}\n{}\n", enc.line(2), enc.line(0)));
    // Reuse: encoding again replaces the content.
    enc.encode("tv", &batch[1..2]);
    assert_eq!(enc.lines().len(), 1);
    assert_eq!(enc.lines()[0].record, 0);
    assert!(enc.body().starts_with("alarm,") && enc.body().ends_with('\n'));
}

#[test]
fn line_without_fields_or_measurement_is_not_written() {
    let mut buf = String::from("keep\n");
    let mut l = Line::start(&mut buf, "m");
    l.tags(&mut [("a", "b")])
        .field_f64("x", f64::NAN)
        .field_bool("", true);
    assert_eq!(l.finish(1), None);
    assert_eq!(buf, "keep\n");
    let mut l = Line::start(&mut buf, "");
    l.field_bool("x", true);
    assert_eq!(l.finish(1), None);
    assert_eq!(buf, "keep\n");
    {
        let mut l = Line::start(&mut buf, "m");
        l.field_bool("x", true);
        // Dropped without finish: removed.
    }
    assert_eq!(buf, "keep\n");
}

#[test]
fn inspect_reads_measurement_and_field_types() {
    let (m, f) =
        inspect(r#"cli\ mate,a=b\ c x=1,y\=z=true,s="a \"q\" b,c=d",i=-3i,u=7u 123"#).unwrap();
    assert_eq!(m, "cli mate");
    assert_eq!(
        f,
        vec![
            ("x".to_string(), "float"),
            ("y=z".to_string(), "boolean"),
            ("s".to_string(), "string"),
            ("i".to_string(), "integer"),
            ("u".to_string(), "unsigned"),
        ]
    );
    assert_eq!(inspect("nofields"), None);
}

// ---------------------------------------------------------------------------------
// An independent reader of line protocol, written from the spec
// (https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/),
// character by character: it shares no code with the encoder.

#[derive(Debug, PartialEq)]
enum FieldValue {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(String),
}

#[derive(Debug, PartialEq)]
struct Parsed {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, FieldValue)>,
    ts: i64,
}

/// Read an escaped token until one of `stops` (unescaped). `escapable` are the
/// characters a backslash escapes in this position; any other backslash is literal.
fn read_token(chars: &[char], pos: &mut usize, stops: &[char], escapable: &[char]) -> String {
    let mut out = String::new();
    while *pos < chars.len() {
        let c = chars[*pos];
        if c == '\\' && *pos + 1 < chars.len() && escapable.contains(&chars[*pos + 1]) {
            out.push(chars[*pos + 1]);
            *pos += 2;
            continue;
        }
        if stops.contains(&c) {
            break;
        }
        out.push(c);
        *pos += 1;
    }
    out
}

fn parse_line(line: &str) -> Result<Parsed, String> {
    let chars: Vec<char> = line.chars().collect();
    if chars.is_empty() || chars[0] == '#' {
        return Err("empty or comment".into());
    }
    if chars.contains(&'\n') {
        return Err("newline inside a line".into());
    }
    let mut pos = 0;
    let measurement = read_token(&chars, &mut pos, &[',', ' '], &[',', ' ']);
    if measurement.is_empty() {
        return Err("empty measurement".into());
    }
    let mut tags = Vec::new();
    while pos < chars.len() && chars[pos] == ',' {
        pos += 1;
        let k = read_token(&chars, &mut pos, &['=', ',', ' '], &[',', '=', ' ']);
        if chars.get(pos) != Some(&'=') {
            return Err(format!("tag {k:?} without '='"));
        }
        pos += 1;
        let v = read_token(&chars, &mut pos, &[',', ' ', '='], &[',', '=', ' ']);
        if k.is_empty() || v.is_empty() {
            return Err("empty tag key or value".into());
        }
        tags.push((k, v));
    }
    if chars.get(pos) != Some(&' ') {
        return Err(format!("expected a space at {pos}"));
    }
    pos += 1;
    let mut fields = Vec::new();
    loop {
        let k = read_token(&chars, &mut pos, &['=', ',', ' '], &[',', '=', ' ']);
        if k.is_empty() || chars.get(pos) != Some(&'=') {
            return Err(format!("bad field key at {pos}"));
        }
        pos += 1;
        let value = if chars.get(pos) == Some(&'"') {
            pos += 1;
            let mut s = String::new();
            loop {
                match chars.get(pos) {
                    None => return Err("unterminated string".into()),
                    Some('\\') if matches!(chars.get(pos + 1), Some('"') | Some('\\')) => {
                        s.push(chars[pos + 1]);
                        pos += 2;
                    }
                    Some('"') => {
                        pos += 1;
                        break;
                    }
                    Some(c) => {
                        s.push(*c);
                        pos += 1;
                    }
                }
            }
            FieldValue::Str(s)
        } else {
            let start = pos;
            while pos < chars.len() && chars[pos] != ',' && chars[pos] != ' ' {
                pos += 1;
            }
            let raw: String = chars[start..pos].iter().collect();
            match raw.as_str() {
                "t" | "T" | "true" | "True" | "TRUE" => FieldValue::Bool(true),
                "f" | "F" | "false" | "False" | "FALSE" => FieldValue::Bool(false),
                r if r.ends_with('i') => {
                    FieldValue::Int(r[..r.len() - 1].parse().map_err(|e| format!("{r}: {e}"))?)
                }
                r => {
                    if r.is_empty()
                        || r.chars()
                            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
                    {
                        return Err(format!("bad float {r:?}"));
                    }
                    FieldValue::Float(r.parse().map_err(|e| format!("{r}: {e}"))?)
                }
            }
        };
        fields.push((k, value));
        match chars.get(pos) {
            Some(',') => pos += 1,
            Some(' ') => {
                pos += 1;
                break;
            }
            _ => return Err("expected ',' or ' ' after a field".into()),
        }
    }
    let rest: String = chars[pos..].iter().collect();
    let ts = rest
        .parse()
        .map_err(|e| format!("timestamp {rest:?}: {e}"))?;
    Ok(Parsed {
        measurement,
        tags,
        fields,
        ts,
    })
}

/// Names that stress the escaping: every special character shows up often.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9_ ,=\"\\\\#\n\r\tđ]{0,12}",
        "[ ,=\\\\]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn escaping_round_trips(
        measurement in name().prop_filter("non-empty", |s| !s.is_empty()),
        tags in proptest::collection::btree_map(name(), name(), 0..5),
        fkey in name().prop_filter("non-empty", |s| !s.is_empty()),
        sval in any::<String>(),
        fval in any::<f64>(),
        ival in any::<i64>(),
        ts in any::<i64>(),
    ) {
        let mut buf = String::from("previous 1\n");
        let mut tag_list: Vec<(&str, &str)> =
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut line = Line::start(&mut buf, &measurement);
        line.tags(&mut tag_list)
            .field_str(&fkey, &sval)
            .field_f64("f", fval)
            .field_i64("i", ival)
            .field_bool("b", ival % 2 == 0);
        let span = line.finish(ts).expect("a line with fields is written");
        prop_assert_eq!(&buf[..11], "previous 1\n");
        prop_assert_eq!(buf.len(), span.end + 1);
        prop_assert!(buf.ends_with('\n'));
        let text = &buf[span];
        let parsed = parse_line(text).map_err(|e| TestCaseError::fail(format!("{e}: {text:?}")))?;

        prop_assert_eq!(parsed.measurement, sanitize_name(&measurement, true));
        // BTreeMap iteration is sorted by key: the order the encoder must write.
        let expected_tags: Vec<(String, String)> = tags
            .iter()
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .map(|(k, v)| (sanitize_name(k, false), sanitize_name(v, false)))
            .collect();
        prop_assert_eq!(parsed.tags, expected_tags);
        let mut expected_fields = vec![
            (sanitize_name(&fkey, false), FieldValue::Str(sanitize_str_value(&sval))),
        ];
        if fval.is_finite() {
            expected_fields.push(("f".to_string(), FieldValue::Float(fval)));
        }
        expected_fields.push(("i".to_string(), FieldValue::Int(ival)));
        expected_fields.push(("b".to_string(), FieldValue::Bool(ival % 2 == 0)));
        prop_assert_eq!(parsed.fields, expected_fields);
        prop_assert_eq!(parsed.ts, ts);
        // Our own error-path reader agrees on the measurement and the field types.
        let (m, f) = inspect(text).expect("inspect reads our lines");
        prop_assert_eq!(m, sanitize_name(&measurement, true));
        prop_assert_eq!(f[0].1, "string");
    }

    #[test]
    fn clean_names_round_trip_exactly(
        measurement in "[a-zA-Z0-9_ ,=\"đ]{1,12}",
        k in "[a-zA-Z0-9_ ,=\"đ]{1,12}",
        v in "[a-zA-Z0-9_ ,=\"đ]{1,12}",
    ) {
        let mut buf = String::new();
        let mut line = Line::start(&mut buf, &measurement);
        line.tags(&mut [(k.as_str(), v.as_str())]).field_bool("x", true);
        let span = line.finish(0).unwrap();
        let parsed = parse_line(&buf[span]).map_err(TestCaseError::fail)?;
        prop_assert_eq!(parsed.measurement, measurement);
        prop_assert_eq!(parsed.tags, vec![(k, v)]);
    }

    #[test]
    fn floats_round_trip(v in any::<f64>()) {
        let mut buf = String::new();
        let written = push_f64(&mut buf, v);
        prop_assert_eq!(written, v.is_finite());
        if written {
            prop_assert!(!buf.contains("inf") && !buf.contains("NaN"));
            prop_assert!(buf.len() <= 26, "compact: {}", buf);
            prop_assert_eq!(buf.parse::<f64>().unwrap(), v);
        }
    }
}

#[test]
fn the_property_reader_rejects_what_it_should() {
    // Guard against a reader that accepts anything.
    assert!(parse_line("m,t=a b x=1 1").is_err());
    assert!(parse_line("m x=\"open 1").is_err());
    assert!(parse_line("m,t= x=1 1").is_err());
    assert!(parse_line("#m x=1 1").is_err());
    assert!(parse_line("m x=1").is_err());
    assert_eq!(
        parse_line("m\\ 1,t\\==a\\,b x=1.5,y=\"q\\\"\" 7").unwrap(),
        Parsed {
            measurement: "m 1".into(),
            tags: vec![("t=".into(), "a,b".into())],
            fields: vec![
                ("x".into(), FieldValue::Float(1.5)),
                ("y".into(), FieldValue::Str("q\"".into()))
            ],
            ts: 7,
        }
    );
}

#[test]
fn tags_are_sorted_by_key() {
    let mut buf = String::new();
    let mut l = Line::start(&mut buf, "m");
    l.tags(&mut [("site", "s"), ("device", "d"), ("room", "r")])
        .field_bool("x", true);
    l.finish(1).unwrap();
    assert_eq!(buf, "m,device=d,room=r,site=s x=true 1\n");
}
