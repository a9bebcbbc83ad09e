//! The alarm state after a restart, rebuilt from the journal: the last event of every
//! alarm instance that was still listed (raised, acknowledged, or serious and cleared
//! but not acknowledged), with its acknowledgement.
//!
//! The journal holds every alarm event (`kind = alarm`, the event's JSON as data); the
//! fold reads them oldest first, a page at a time, and keeps per `device/rule` the
//! instance of the latest event. Reading a year of a site's alarm events (tens of
//! thousands) takes well under a second at start.

use std::collections::HashMap;
use std::sync::Arc;

use crate::journal::{Journal, Kind, Query};
use crate::model::{Level, Timestamp, Value};
use crate::rules::engine::{Ack, Restored};

/// One instance as the fold sees it.
struct Seen {
    restored: Restored,
    listed: bool,
}

/// The listed alarm instances at the end of the journal.
pub fn listed_alarms(journal: &Journal) -> Result<Vec<Restored>, crate::journal::Error> {
    let mut by_key: HashMap<String, Seen> = HashMap::new();
    each(journal, Kind::Alarm, |e| fold(&mut by_key, e.ts, &e.data))?;
    let mut out: Vec<Restored> = by_key
        .into_values()
        .filter(|s| s.listed)
        .map(|s| s.restored)
        .collect();
    out.sort_by_key(|r| r.no);
    Ok(out)
}

/// The maintenance windows opened by command and not ended, from the journal's
/// commands that were applied.
pub fn open_maintenance(
    journal: &Journal,
) -> Result<Vec<crate::rules::maintenance::Started>, crate::journal::Error> {
    use crate::rules::maintenance::{Started, Target};
    let mut open: Vec<Started> = Vec::new();
    each(journal, Kind::Command, |e| {
        let d = &e.data;
        if d.pointer("/reply/ok").and_then(|v| v.as_bool()) != Some(true) {
            return;
        }
        let text = |k: &str| {
            d.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let Ok(target) = Target::parse(&text("target")) else {
            return;
        };
        match d.get("verb").and_then(|v| v.as_str()) {
            Some("maintenance_start") => {
                let minutes = d.get("minutes").and_then(|v| v.as_u64()).unwrap_or(60);
                open.retain(|w| w.target != target);
                open.push(Started {
                    target,
                    by: text("by"),
                    reason: d
                        .get("reason")
                        .or(d.get("comment"))
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    since: e.ts,
                    until: e.ts.plus(std::time::Duration::from_secs(minutes * 60)),
                });
            }
            Some("maintenance_end") => open.retain(|w| w.target != target),
            _ => {}
        }
    })?;
    Ok(open)
}

/// Call `f` on every entry of `kind`, oldest first, a page at a time.
fn each(
    journal: &Journal,
    kind: Kind,
    mut f: impl FnMut(crate::journal::Entry),
) -> Result<(), crate::journal::Error> {
    let mut after = None;
    loop {
        let page = journal.query(&Query {
            kind: Some(kind),
            after_seq: after,
            limit: 10_000,
            ..Query::default()
        })?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.seq);
        page.into_iter().for_each(&mut f);
    }
}

fn fold(by_key: &mut HashMap<String, Seen>, ts: Timestamp, ev: &serde_json::Value) {
    let text = |k: &str| ev.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let (device, rule, state) = (text("device"), text("rule"), text("state"));
    if device.is_empty() || rule.is_empty() {
        return;
    }
    let no = ev.get("no").and_then(|v| v.as_u64()).unwrap_or(0);
    let level = if text("level") == "serious" {
        Level::Serious
    } else {
        Level::Normal
    };
    let key = format!("{device}/{rule}");
    let value = match ev.get("value") {
        Some(serde_json::Value::Number(n)) => n.as_f64().map(Value::Number),
        Some(serde_json::Value::Bool(b)) => Some(Value::Bool(*b)),
        _ => None,
    };
    let prev = by_key.get(&key).filter(|s| s.restored.no == no && no != 0);
    let since = match (state, prev) {
        (_, Some(p)) => p.restored.since,
        _ => ts,
    };
    let mut acked = prev.and_then(|p| p.restored.acked.clone());
    match state {
        "acked" => {
            acked = Some(Ack {
                by: text("by").to_string(),
                at: ts,
                comment: ev
                    .get("comment")
                    .and_then(|c| c.as_str())
                    .map(str::to_string),
            })
        }
        // A rise in level asks for a new acknowledgement (as the engine does).
        "raised" if prev.is_some_and(|p| level > p.restored.level) => acked = None,
        _ => {}
    }
    let mut shelved = prev.and_then(|p| p.restored.shelved.clone());
    match state {
        "shelved" => {
            shelved = ev
                .get("shelved_until")
                .and_then(|u| serde_json::from_value::<Timestamp>(u.clone()).ok())
                .map(|until| crate::rules::engine::Shelve {
                    by: text("by").to_string(),
                    reason: text("comment").to_string(),
                    until,
                })
        }
        "unshelved" => shelved = None,
        _ => {}
    }
    let condition = match state {
        "cleared" => false,
        "acked" | "shelved" | "unshelved" => prev.is_none_or(|p| p.restored.condition),
        _ => true,
    };
    let listed = ev
        .get("listed")
        .and_then(|v| v.as_bool())
        .unwrap_or(state != "cleared");
    by_key.insert(
        key,
        Seen {
            restored: Restored {
                device: Arc::from(device),
                rule: Arc::from(rule),
                level,
                since,
                id: text("id").to_string(),
                value,
                threshold: ev.get("threshold").and_then(|v| v.as_f64()),
                message: match (state, prev) {
                    ("acked" | "shelved" | "unshelved", Some(p)) => p.restored.message.clone(),
                    _ => text("message").to_string(),
                },
                no,
                acked,
                condition,
                shelved,
                cause: ev.get("cause").and_then(|v| v.as_str()).map(Arc::from),
            },
            listed,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{NewEntry, Options};

    fn ev(
        seq: i64,
        device: &str,
        rule: &str,
        state: &str,
        level: &str,
        no: u64,
        listed: bool,
        by: Option<&str>,
    ) -> NewEntry {
        let mut data = serde_json::json!({
            "id": format!("id-{seq}"), "seq": seq, "device": device, "rule": rule, "state": state,
            "level": level, "no": no, "listed": listed, "value": 30.5, "threshold": 27.0,
            "message": format!("{state} {device}/{rule}"),
        });
        if let Some(b) = by {
            data["by"] = b.into();
        }
        NewEntry {
            ts: Timestamp(1_000 + seq),
            kind: Kind::Alarm,
            gateway: "gw".into(),
            device: Some(device.into()),
            data,
        }
    }

    #[test]
    fn the_listed_instances_with_their_acknowledgements_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Options::default()).unwrap();
        j.append_all(vec![
            ev(
                1,
                "th1",
                "temperature_high",
                "raised",
                "normal",
                1,
                true,
                None,
            ),
            ev(
                2,
                "th1",
                "temperature_high",
                "acked",
                "normal",
                1,
                true,
                Some("An"),
            ),
            ev(
                3,
                "th2",
                "temperature_high",
                "raised",
                "serious",
                2,
                true,
                None,
            ),
            ev(
                4,
                "th2",
                "temperature_high",
                "cleared",
                "serious",
                2,
                true,
                None,
            ),
            ev(5, "th3", "humidity_high", "raised", "normal", 3, true, None),
            ev(
                6,
                "th3",
                "humidity_high",
                "cleared",
                "normal",
                3,
                false,
                None,
            ),
            ev(7, "ups1", "on_battery", "raised", "normal", 4, true, None),
            ev(8, "ups1", "on_battery", "cleared", "normal", 4, false, None),
            ev(9, "ups1", "on_battery", "raised", "normal", 5, true, None),
        ])
        .unwrap();
        let got = listed_alarms(&j).unwrap();
        let summary: Vec<(String, u64, bool, Option<String>)> = got
            .iter()
            .map(|r| {
                (
                    format!("{}/{}", r.device, r.rule),
                    r.no,
                    r.condition,
                    r.acked.as_ref().map(|a| a.by.clone()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("th1/temperature_high".into(), 1, true, Some("An".into())),
                ("th2/temperature_high".into(), 2, false, None),
                ("ups1/on_battery".into(), 5, true, None),
            ]
        );
        // An acknowledged alarm keeps the text of its raise and the time it was raised.
        assert_eq!(got[0].message, "raised th1/temperature_high");
        assert_eq!(got[0].since, Timestamp(1_001));
    }

    #[test]
    fn a_child_of_a_link_alarm_comes_back_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), Options::default()).unwrap();
        let mut link = ev(
            1,
            "link_h_502",
            "link_down",
            "raised",
            "normal",
            1,
            true,
            None,
        );
        link.data["behind"] = serde_json::json!(["th1", "th2"]);
        let mut child = ev(2, "th1", "comm_lost", "raised", "normal", 2, true, None);
        child.data["cause"] = "id-1".into();
        let mut acked = ev(
            3,
            "th1",
            "comm_lost",
            "acked",
            "normal",
            2,
            true,
            Some("An"),
        );
        acked.data["cause"] = "id-1".into();
        j.append_all(vec![link, child, acked]).unwrap();
        let got = listed_alarms(&j).unwrap();
        let causes: Vec<(String, Option<&str>)> = got
            .iter()
            .map(|r| (format!("{}/{}", r.device, r.rule), r.cause.as_deref()))
            .collect();
        assert_eq!(
            causes,
            vec![
                ("link_h_502/link_down".to_string(), None),
                ("th1/comm_lost".to_string(), Some("id-1")),
            ]
        );
    }
}
