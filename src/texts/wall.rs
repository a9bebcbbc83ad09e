//! The fixed texts of the wall view's script, in one language, as the JSON object the
//! page embeds (`strings`). Level, quality and yes/no words come from [`super::words`],
//! the number separators from [`super::number`], so the page says what the messages
//! and the API texts say. `{n}`, `{m}`, `{age}`, `{v}`, `{t}` are filled in by the page.

use serde_json::{Value, json};

use crate::model::{Language, Level, Quality};

use super::number::separators;
use super::pick;
use super::words::{self, Status};

/// The `strings` object of the wall view.
pub fn strings(lang: Language) -> Value {
    let w = |vi: &'static str, en: &'static str| pick(lang, vi, en);
    let (decimal, group) = separators(lang);
    let q = |q: Quality| words::quality(q, lang);
    json!({
        "locale": w("vi-VN", "en-GB"),
        "number": { "decimal": decimal.to_string(), "group": group.to_string() },
        "conn": {
            "connecting": w("Đang kết nối…", "Connecting…"),
            "live": w("Trực tiếp", "Live"),
            "delayed": w("Không có số liệu mới — số liệu cuối {age}", "No new data — last data {age}"),
            "reconnecting": w("Mất kết nối, đang thử lại…", "Connection lost, retrying…"),
            "lost": w("Mất kết nối với gateway — số liệu cuối {age}", "Connection to the gateway lost — last data {age}"),
            "never": w("Chưa kết nối được với gateway", "Could not reach the gateway"),
        },
        "alarms_title": w("Cảnh báo đang hoạt động", "Active alarms"),
        "no_alarms": w("Không có cảnh báo", "No active alarms"),
        "level": {
            "normal": words::level(Level::Normal, lang),
            "serious": words::level(Level::Serious, lang),
        },
        "status_ok": words::status(Status::Ok, lang),
        "quality": {
            "good": q(Quality::Good),
            "stale": q(Quality::Stale),
            "comm_error": q(Quality::CommError),
            "timeout": q(Quality::Timeout),
            "device_exception": q(Quality::DeviceException),
            "no_such_object": q(Quality::NoSuchObject),
            "out_of_range": q(Quality::OutOfRange),
            "unknown": q(Quality::Unknown),
            "never": w("Chưa có số liệu", "No data yet"),
        },
        "yes": words::yes_no(true, lang),
        "no": words::yes_no(false, lang),
        "since": w("từ {t}", "since {t}"),
        "updated": w("Cập nhật {age}", "Updated {age}"),
        "last_good": w("số liệu cuối {age}", "last good {age}"),
        "value_threshold": w("giá trị {v} · ngưỡng {t}", "value {v} · threshold {t}"),
        "ago": {
            "now": w("vừa xong", "just now"),
            "s": w("{n} giây trước", "{n} s ago"),
            "m": w("{n} phút trước", "{n} min ago"),
            "h": w("{n} giờ trước", "{n} h ago"),
            "d": w("{n} ngày trước", "{n} days ago"),
        },
        "dur": {
            "s": w("{n} giây", "{n} s"),
            "m": w("{n} phút", "{n} min"),
            "h": w("{n} giờ {m} phút", "{n} h {m} min"),
            "d": w("{n} ngày", "{n} days"),
        },
        "other_room": w("Khác", "Other"),
        "unreachable_title": w("MẤT KẾT NỐI VỚI GATEWAY", "GATEWAY UNREACHABLE"),
        "unreachable_text": w("Số liệu trên màn hình là số liệu cũ — số liệu cuối {age}", "The values shown are old — last data {age}"),
        "pending": w("Vượt ngưỡng, đang chờ xác nhận", "Beyond a limit, pending"),
        "page": w("Trang {n}/{m}", "Page {n}/{m}"),
        "more_alarms": w("… và {n} nhóm cảnh báo khác", "… and {n} more alarm groups"),
        "group_more": w("{msg} (+{n})", "{msg} (+{n})"),
        "state": {
            "acked": w("đã xác nhận", "acknowledged"),
            "cleared": w("đã hết, chờ xác nhận", "cleared, not acknowledged"),
            "shelved": w("tạm ẩn", "shelved"),
            "pending": w("đang chờ", "pending"),
        },
        "sound_on": w("Chuông: bật", "Sound: on"),
        "sound_off": w("Chuông: tắt", "Sound: off"),
        "flags": {
            "door_open": [w("Đóng", "Closed"), w("MỞ", "OPEN")],
            "leak_detected": [w("Khô", "Dry"), w("CÓ NƯỚC", "LEAK")],
            "fire_alarm": [w("Bình thường", "Normal"), w("CHÁY", "FIRE")],
            "recording": [w("Dừng ghi", "Stopped"), w("Đang ghi", "Recording")],
            "protector_tripped": [w("Tốt", "OK"), w("ĐÃ NHẢY", "TRIPPED")],
            "unit_on": [w("Tắt", "Off"), w("Chạy", "On")],
            "engine_running": [w("Nghỉ", "At rest"), w("Đang chạy", "Running")],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_words_by_hand() {
        let vi = strings(Language::Vi);
        assert_eq!(vi["locale"], "vi-VN");
        assert_eq!(vi["number"]["decimal"], ",");
        assert_eq!(vi["number"]["group"], ".");
        assert_eq!(vi["level"]["serious"], "Sự cố nghiêm trọng");
        assert_eq!(vi["quality"]["timeout"], "Không phản hồi (quá thời gian)");
        assert_eq!(vi["status_ok"], "Bình thường");
        assert_eq!(vi["yes"], "Có");
        let en = strings(Language::En);
        assert_eq!(en["number"]["decimal"], ".");
        assert_eq!(en["number"]["group"], ",");
        assert_eq!(en["level"]["normal"], "Normal incident");
        assert_eq!(en["quality"]["comm_error"], "Link error");
        assert_eq!(en["no"], "No");
    }

    #[test]
    fn both_languages_have_the_same_keys() {
        fn keys(v: &Value, path: &str, out: &mut Vec<String>) {
            if let Value::Object(m) = v {
                for (k, x) in m {
                    let p = format!("{path}.{k}");
                    out.push(p.clone());
                    keys(x, &p, out);
                }
            }
        }
        let (mut vi, mut en) = (Vec::new(), Vec::new());
        keys(&strings(Language::Vi), "", &mut vi);
        keys(&strings(Language::En), "", &mut en);
        assert_eq!(vi, en);
    }
}
