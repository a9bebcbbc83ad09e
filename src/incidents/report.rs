//! An incident's timeline (from the journal) and its report draft with the fields
//! Art. 18 asks for, Vietnamese by default.
//!
//! The timeline holds, in time order: the alarms of the incident's devices (raised,
//! acknowledged, cleared, shelved; any level — the related alarms), the commands
//! that name one of its alarms or the incident, and the incident's own changes
//! (opened, joined, reminders, closed). It reads only journal entries, so it is the
//! same on the page, in the CLI and after a restart.

use serde::Serialize;

use super::Incident;
use crate::journal::{Entry, Kind as JKind};
use crate::model::{Language, Timestamp};
use crate::texts::time::SiteTime;

/// Margin around the incident in which related entries are looked for.
pub const MARGIN_MS: i64 = 5 * 60 * 1000;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// When.
    pub ts: Timestamp,
    /// `alarm`, `command` or `incident`.
    pub what: &'static str,
    /// The alarm state, command verb or incident event.
    pub event: String,
    /// For people, in the report's language.
    pub text: String,
}

fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

/// The span of the journal the timeline of `inc` reads: from before its first alarm
/// to after its closing (or `now`).
pub fn span(inc: &Incident, now: Timestamp) -> (Timestamp, Timestamp) {
    let end = inc.closed.as_ref().map(|c| c.at).unwrap_or(now);
    (
        Timestamp(inc.first_alarm_at.0 - MARGIN_MS),
        Timestamp(end.0 + MARGIN_MS),
    )
}

/// The timeline of `inc` from journal `entries` (any kinds, any order).
pub fn timeline(inc: &Incident, entries: &[Entry], lang: Language) -> Vec<Item> {
    let devices = inc.devices();
    let nos: Vec<String> = inc.alarms.iter().map(|a| a.no.to_string()).collect();
    let keys: Vec<&str> = inc.alarms.iter().map(|a| a.key.as_str()).collect();
    let vi = lang == Language::Vi;
    let mut out = Vec::new();
    for e in entries {
        let d = &e.data;
        match e.kind {
            JKind::Alarm => {
                let dev = e.device.as_deref().unwrap_or(s(d, "device"));
                let mine = s(d, "incident") == inc.id;
                if !mine && !devices.iter().any(|x| x == dev) {
                    continue;
                }
                let no = d.get("no").and_then(|x| x.as_u64()).unwrap_or(0);
                let state = s(d, "state");
                let level = s(d, "level");
                let by = s(d, "by");
                let msg = s(d, "message");
                let text = match (state, vi) {
                    ("raised", true) => format!(
                        "Cảnh báo {no} ({}) phát sinh: {msg}",
                        if level == "serious" {
                            "nghiêm trọng"
                        } else {
                            "thông thường"
                        }
                    ),
                    ("raised", false) => format!("Alarm {no} ({level}) raised: {msg}"),
                    ("acked", true) => format!("Cảnh báo {no} được xác nhận bởi {by}"),
                    ("acked", false) => format!("Alarm {no} acknowledged by {by}"),
                    ("cleared", true) => format!("Cảnh báo {no} đã hết: {msg}"),
                    ("cleared", false) => format!("Alarm {no} cleared: {msg}"),
                    ("shelved", true) => format!("Cảnh báo {no} được tạm ẩn bởi {by}"),
                    ("shelved", false) => format!("Alarm {no} shelved by {by}"),
                    (other, true) => format!("Cảnh báo {no}: {other}"),
                    (other, false) => format!("Alarm {no}: {other}"),
                };
                out.push(Item {
                    ts: e.ts,
                    what: "alarm",
                    event: state.to_string(),
                    text,
                });
            }
            JKind::Command => {
                let target = s(d, "target");
                let related = target.eq_ignore_ascii_case(&inc.id)
                    || nos.iter().any(|n| n == target)
                    || keys.contains(&target);
                if !related {
                    continue;
                }
                let verb = s(d, "verb");
                let by = s(d, "by");
                let ok = d
                    .get("reply")
                    .and_then(|r| r.get("ok"))
                    .and_then(|x| x.as_bool())
                    .unwrap_or(false);
                let text = if vi {
                    format!(
                        "Lệnh {verb} {target} của {by}: {}",
                        if ok {
                            "đã thực hiện"
                        } else {
                            "bị từ chối"
                        }
                    )
                } else {
                    format!(
                        "Command {verb} {target} by {by}: {}",
                        if ok { "done" } else { "refused" }
                    )
                };
                out.push(Item {
                    ts: e.ts,
                    what: "command",
                    event: verb.to_string(),
                    text,
                });
            }
            JKind::Incident => {
                let Some(i) = d.get("incident") else { continue };
                if s(i, "id") != inc.id {
                    continue;
                }
                let event = s(d, "event");
                let n = i
                    .get("alarms")
                    .and_then(|a| a.as_array())
                    .map(|a| a.len())
                    .unwrap_or(0);
                let text = match (event, vi) {
                    ("opened", true) => {
                        format!("Mở sự cố {} (hạn báo cáo 24 giờ, Điều 18.5e)", inc.id)
                    }
                    ("opened", false) => format!(
                        "Incident {} opened (24 h report deadline, Art. 18.5e)",
                        inc.id
                    ),
                    ("joined", true) => format!("Thêm cảnh báo vào sự cố (tổng {n})"),
                    ("joined", false) => format!("Alarm joined the incident ({n} in all)"),
                    ("alarm_cleared", true) => "Một cảnh báo của sự cố đã hết".to_string(),
                    ("alarm_cleared", false) => "An alarm of the incident cleared".to_string(),
                    ("reminder", true) => format!(
                        "Nhắc hạn báo cáo (còn {} giờ)",
                        d.get("before_s").and_then(|x| x.as_u64()).unwrap_or(0) / 3600
                    ),
                    ("reminder", false) => format!(
                        "Report deadline reminder ({} h left)",
                        d.get("before_s").and_then(|x| x.as_u64()).unwrap_or(0) / 3600
                    ),
                    ("closed", true) => format!(
                        "Đóng sự cố bởi {}",
                        s(i.get("closed").unwrap_or(&serde_json::Value::Null), "by")
                    ),
                    ("closed", false) => format!(
                        "Incident closed by {}",
                        s(i.get("closed").unwrap_or(&serde_json::Value::Null), "by")
                    ),
                    (other, _) => other.to_string(),
                };
                out.push(Item {
                    ts: e.ts,
                    what: "incident",
                    event: event.to_string(),
                    text,
                });
            }
            _ => {}
        }
    }
    out.sort_by_key(|i| i.ts);
    out
}

/// What the draft needs beside the incident.
pub struct Context<'a> {
    /// The site's title (the operating unit).
    pub site_title: &'a str,
    /// The site's time zone.
    pub time: &'a SiteTime,
    /// Device id → (name, label, room).
    pub device_name: &'a dyn Fn(&str) -> Option<String>,
    /// Now (deadline state of an open incident).
    pub now: Timestamp,
}

/// The report draft: a title and (heading, text) sections, the timeline among them.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    /// The title.
    pub title: String,
    /// Sections in order.
    pub sections: Vec<(String, String)>,
    /// The timeline.
    pub timeline: Vec<Item>,
}

impl Draft {
    /// Plain text (the CLI, a copy into the official form).
    pub fn text(&self, time: &SiteTime, lang: Language) -> String {
        let mut out = format!(
            "{}\n{}\n\n",
            self.title,
            "=".repeat(self.title.chars().count())
        );
        for (h, body) in &self.sections {
            out.push_str(&format!("{h}\n{body}\n\n"));
        }
        out.push_str(match lang {
            Language::Vi => "Diễn biến\n",
            Language::En => "Timeline\n",
        });
        for i in &self.timeline {
            out.push_str(&format!("- {}  {}\n", time.human(i.ts, lang), i.text));
        }
        out
    }
}

/// The report draft of `inc` (Art. 18.1, 18.4, 18.5), with its timeline.
pub fn draft(inc: &Incident, timeline: Vec<Item>, cx: &Context<'_>, lang: Language) -> Draft {
    let vi = lang == Language::Vi;
    let t = |ts: Timestamp| cx.time.human(ts, lang);
    let fill = if vi {
        "(cần bổ sung)"
    } else {
        "(to be completed)"
    };
    let devices: Vec<String> = inc
        .devices()
        .iter()
        .map(|d| (cx.device_name)(d).unwrap_or_else(|| d.clone()))
        .collect();
    let system = crate::texts::names::system(inc.system, lang);
    let last_clear = if inc.alarms.iter().all(|a| a.cleared_at.is_some()) {
        inc.alarms.iter().filter_map(|a| a.cleared_at).max()
    } else {
        None
    };
    let c = inc.closed.as_ref();
    let pick = |a: &str, b: &str| if vi { a.to_string() } else { b.to_string() };
    let alarms: Vec<String> = inc
        .alarms
        .iter()
        .map(|a| format!("- {} {}: {}", a.no, a.key, a.message))
        .collect();
    let deadline_state = if let Some(c) = c {
        if c.at <= inc.deadline {
            pick("đã đóng trong hạn", "closed within the deadline")
        } else {
            pick("đã đóng sau hạn", "closed after the deadline")
        }
    } else if inc.overdue(cx.now) {
        pick("QUÁ HẠN", "OVERDUE")
    } else {
        pick("đang mở", "open")
    };
    let sections = vec![
        (
            pick("1. Đơn vị vận hành", "1. Operating unit"),
            cx.site_title.to_string(),
        ),
        (
            pick(
                "2. Thời điểm phát hiện sự cố",
                "2. When the incident was detected",
            ),
            format!(
                "{}: {}\n{}: {}",
                pick("Cảnh báo đầu tiên", "First alarm"),
                t(inc.first_alarm_at),
                pick("Xác định là sự cố", "Judged an incident"),
                t(inc.opened_at)
            ),
        ),
        (
            pick(
                "3. Mức độ sự cố (Điều 18.2, 18.4)",
                "3. Level (Art. 18.2, 18.4)",
            ),
            pick(
                "Nghiêm trọng: ảnh hưởng trực tiếp đến hoạt động của Trung tâm dữ liệu",
                "Serious: directly affects the operation of the data center",
            ),
        ),
        (
            pick(
                "4. Hệ thống và thiết bị bị ảnh hưởng",
                "4. Systems and equipment affected",
            ),
            format!("{system}: {}", devices.join(", ")),
        ),
        (pick("5. Các cảnh báo", "5. Alarms"), alarms.join("\n")),
        (
            pick(
                "6. Đánh giá ảnh hưởng (Điều 18.4)",
                "6. Impact assessment (Art. 18.4)",
            ),
            fill.to_string(),
        ),
        (
            pick("7. Nguyên nhân (Điều 18.1)", "7. Cause (Art. 18.1)"),
            match c {
                Some(c) if c.false_alarm => format!(
                    "{}: {}",
                    pick("Báo động giả", "False alarm"),
                    c.reason.clone().unwrap_or_default()
                ),
                Some(c) => c.cause.clone().unwrap_or_else(|| fill.to_string()),
                None => fill.to_string(),
            },
        ),
        (
            pick(
                "8. Biện pháp cô lập, khắc phục đã thực hiện (Điều 18.1, 18.5)",
                "8. Isolation and remedial actions taken (Art. 18.1, 18.5)",
            ),
            c.and_then(|c| c.actions.clone())
                .unwrap_or_else(|| fill.to_string()),
        ),
        (
            pick(
                "9. Sao lưu dữ liệu quan trọng trước khi xử lý (Điều 18.5c)",
                "9. Important data backed up before the repair (Art. 18.5c)",
            ),
            fill.to_string(),
        ),
        (
            pick(
                "10. Phối hợp Trung tâm Ứng cứu khẩn cấp không gian mạng Việt Nam (Điều 18.5d)",
                "10. Vietnam Computer Emergency Response Center involved (Art. 18.5d)",
            ),
            fill.to_string(),
        ),
        (
            pick(
                "11. Thời gian khắc phục xong (Điều 18.5đ)",
                "11. When the repair was finished (Art. 18.5đ)",
            ),
            match last_clear {
                Some(ts) => format!(
                    "{} ({})",
                    t(ts),
                    pick("cảnh báo cuối cùng hết", "last alarm cleared")
                ),
                None => pick("chưa khắc phục xong", "not yet finished"),
            },
        ),
        (
            pick(
                "12. Hạn báo cáo cơ quan quản lý (Điều 18.5e)",
                "12. Report due to the managing agency (Art. 18.5e)",
            ),
            format!("{} — {}", t(inc.deadline), deadline_state),
        ),
        (
            pick("13. Người lập báo cáo", "13. Reported by"),
            c.map(|c| format!("{} ({})", c.by, t(c.at)))
                .unwrap_or_else(|| fill.to_string()),
        ),
    ];
    Draft {
        title: match lang {
            Language::Vi => format!("BÁO CÁO SỰ CỐ {} (DỰ THẢO)", inc.id),
            Language::En => format!("INCIDENT REPORT {} (DRAFT)", inc.id),
        },
        sections,
        timeline,
    }
}
