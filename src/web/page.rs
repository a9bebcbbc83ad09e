//! The wall view: one self-contained HTML document for a screen in the operations room.
//!
//! The server renders the *layout* (rooms, device cards, point names in the site's
//! language, every text the page shows) into the document as JSON; the page then loads
//! values from `/api/v1/readings` and `/api/v1/alarms` and keeps them live from
//! `/api/v1/events`. The layout has a key ([`layout_key`]); the event stream repeats
//! it, and a page whose key no longer matches (config changed, gateway restarted with
//! other devices or language) reloads itself.
//!
//! Colours: green = good and no alarm, amber = normal-level alarm, red = serious alarm,
//! grey hatched = no fresh value (the reason is written out: stale, no answer, link
//! error, ...). The header's connection indicator turns amber, then red, when the
//! event stream drops or no data arrived for a while, and the whole view greys out.
//!
//! Texts are Vietnamese (with diacritics) unless the site's language is `en`. Every
//! canonical point has a display name in both languages (a test checks the table
//! against [`crate::points`]); an unknown one falls back to its canonical name.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::api::App;
use crate::model::{Kind, Language};
use crate::points::PointType;
use crate::state::Live;

const TEMPLATE: &str = include_str!("assets/wall.html");
const CSS: &str = include_str!("assets/wall.css");
const JS: &str = include_str!("assets/wall.js");

/// The page's connection indicator turns amber when no data arrived for this long
/// while the stream is open (the stream sends a full refresh every 5 s).
pub const DELAYED_AFTER_S: u64 = 15;
/// ... and red (the view greys out) when no data arrived for this long.
pub const LOST_AFTER_S: u64 = 30;

/// The language the page speaks for this state: English only when it says `en`.
pub fn language(live: &Live) -> Language {
    if live.language.eq_ignore_ascii_case("en") {
        Language::En
    } else {
        Language::Vi
    }
}

/// Display name of a device kind.
pub fn kind_label(kind: Kind, lang: Language) -> &'static str {
    let (vi, en) = match kind {
        Kind::Ups => ("Bộ lưu điện (UPS)", "UPS"),
        Kind::Generator => ("Máy phát điện", "Generator"),
        Kind::Cooling => ("Điều hòa chính xác", "Cooling unit"),
        Kind::Climate => ("Cảm biến nhiệt độ, độ ẩm", "Temperature & humidity sensor"),
        Kind::FirePanel => ("Tủ báo cháy", "Fire alarm panel"),
        Kind::Leak => ("Cảm biến rò rỉ nước", "Water leak sensor"),
        Kind::Door => ("Cửa", "Door"),
        Kind::Nvr => ("Đầu ghi hình (NVR)", "Video recorder (NVR)"),
        Kind::Surge => ("Chống sét lan truyền", "Surge protector"),
        Kind::PowerMeter => ("Đồng hồ đo điện", "Power meter"),
        Kind::Gateway => ("Gateway giám sát", "Monitoring gateway"),
    };
    pick(lang, vi, en)
}

/// Display name of a canonical point; the canonical name when the table has none.
pub fn point_label(kind: Kind, point: &'static str, lang: Language) -> &'static str {
    POINT_LABELS
        .iter()
        .find(|(k, name, _, _)| *k == kind && *name == point)
        .map_or(point, |(_, _, vi, en)| pick(lang, vi, en))
}

/// Display name of an enumeration value (`on_battery` → "Chạy pin"); the value itself
/// when the table has none.
pub fn enum_label(value: &'static str, lang: Language) -> &'static str {
    ENUM_LABELS
        .iter()
        .find(|(name, _, _)| *name == value)
        .map_or(value, |(_, vi, en)| pick(lang, vi, en))
}

fn pick(lang: Language, vi: &'static str, en: &'static str) -> &'static str {
    match lang {
        Language::Vi => vi,
        Language::En => en,
    }
}

/// `(kind, point, Vietnamese, English)`.
const POINT_LABELS: &[(Kind, &str, &str, &str)] = &[
    // UPS
    (Kind::Ups, "output_source", "Nguồn cấp tải", "Output source"),
    (Kind::Ups, "on_battery", "Đang chạy pin", "On battery"),
    (Kind::Ups, "on_bypass", "Đang ở bypass", "On bypass"),
    (Kind::Ups, "fault", "Lỗi UPS", "UPS fault"),
    (
        Kind::Ups,
        "battery_status",
        "Trạng thái ắc quy",
        "Battery status",
    ),
    (Kind::Ups, "battery_low", "Ắc quy yếu", "Battery low"),
    (Kind::Ups, "overload", "Quá tải", "Overload"),
    (Kind::Ups, "alarms_present", "Số cảnh báo", "Alarms present"),
    (
        Kind::Ups,
        "input_voltage_l2_v",
        "Điện áp vào pha 2",
        "Input voltage L2",
    ),
    (
        Kind::Ups,
        "input_voltage_l3_v",
        "Điện áp vào pha 3",
        "Input voltage L3",
    ),
    (
        Kind::Ups,
        "output_voltage_l2_v",
        "Điện áp ra pha 2",
        "Output voltage L2",
    ),
    (
        Kind::Ups,
        "output_voltage_l3_v",
        "Điện áp ra pha 3",
        "Output voltage L3",
    ),
    (Kind::Ups, "load_l1_pct", "Tải pha 1", "Load L1"),
    (Kind::Ups, "load_l2_pct", "Tải pha 2", "Load L2"),
    (Kind::Ups, "load_l3_pct", "Tải pha 3", "Load L3"),
    (
        Kind::Ups,
        "battery_replace",
        "Cần thay ắc quy",
        "Replace battery",
    ),
    (
        Kind::Ups,
        "battery_charge_pct",
        "Dung lượng ắc quy",
        "Battery charge",
    ),
    (
        Kind::Ups,
        "runtime_remaining_s",
        "Thời gian lưu điện",
        "Runtime remaining",
    ),
    (
        Kind::Ups,
        "battery_voltage_v",
        "Điện áp ắc quy",
        "Battery voltage",
    ),
    (
        Kind::Ups,
        "battery_temperature_c",
        "Nhiệt độ ắc quy",
        "Battery temperature",
    ),
    (Kind::Ups, "load_pct", "Tải", "Load"),
    (Kind::Ups, "input_voltage_v", "Điện áp vào", "Input voltage"),
    (
        Kind::Ups,
        "input_frequency_hz",
        "Tần số vào",
        "Input frequency",
    ),
    (
        Kind::Ups,
        "output_voltage_v",
        "Điện áp ra",
        "Output voltage",
    ),
    (
        Kind::Ups,
        "output_frequency_hz",
        "Tần số ra",
        "Output frequency",
    ),
    (Kind::Ups, "output_power_kw", "Công suất ra", "Output power"),
    // Generator
    (Kind::Generator, "mode", "Chế độ", "Mode"),
    (
        Kind::Generator,
        "engine_running",
        "Động cơ đang chạy",
        "Engine running",
    ),
    (
        Kind::Generator,
        "shutdown_alarm",
        "Báo động dừng máy",
        "Shutdown alarm",
    ),
    (
        Kind::Generator,
        "warning_alarm",
        "Cảnh báo",
        "Warning alarm",
    ),
    (
        Kind::Generator,
        "mains_available",
        "Có điện lưới",
        "Mains available",
    ),
    (
        Kind::Generator,
        "mains_voltage_l1_v",
        "Điện áp lưới L1",
        "Mains voltage L1",
    ),
    (
        Kind::Generator,
        "mains_voltage_l2_v",
        "Điện áp lưới L2",
        "Mains voltage L2",
    ),
    (
        Kind::Generator,
        "mains_voltage_l3_v",
        "Điện áp lưới L3",
        "Mains voltage L3",
    ),
    (
        Kind::Generator,
        "mains_frequency_hz",
        "Tần số lưới",
        "Mains frequency",
    ),
    (
        Kind::Generator,
        "gen_voltage_l1_v",
        "Điện áp máy phát L1",
        "Generator voltage L1",
    ),
    (
        Kind::Generator,
        "gen_voltage_l2_v",
        "Điện áp máy phát L2",
        "Generator voltage L2",
    ),
    (
        Kind::Generator,
        "gen_voltage_l3_v",
        "Điện áp máy phát L3",
        "Generator voltage L3",
    ),
    (
        Kind::Generator,
        "gen_frequency_hz",
        "Tần số máy phát",
        "Generator frequency",
    ),
    (Kind::Generator, "load_kw", "Công suất", "Load"),
    (Kind::Generator, "load_pct", "Tải", "Load"),
    (
        Kind::Generator,
        "coolant_temperature_c",
        "Nhiệt độ nước làm mát",
        "Coolant temperature",
    ),
    (
        Kind::Generator,
        "oil_pressure_kpa",
        "Áp suất dầu",
        "Oil pressure",
    ),
    (
        Kind::Generator,
        "fuel_level_pct",
        "Mức nhiên liệu",
        "Fuel level",
    ),
    (
        Kind::Generator,
        "battery_voltage_v",
        "Điện áp ắc quy đề",
        "Starter battery",
    ),
    (
        Kind::Generator,
        "engine_hours_h",
        "Số giờ chạy máy",
        "Engine hours",
    ),
    // Cooling
    (Kind::Cooling, "unit_on", "Đang chạy", "Running"),
    (
        Kind::Cooling,
        "common_alarm",
        "Báo động chung",
        "Common alarm",
    ),
    (
        Kind::Cooling,
        "critical_alarm",
        "Báo động nghiêm trọng",
        "Critical alarm",
    ),
    (Kind::Cooling, "filter_dirty", "Lọc gió bẩn", "Filter dirty"),
    (
        Kind::Cooling,
        "supply_air_temperature_c",
        "Nhiệt độ gió cấp",
        "Supply air temperature",
    ),
    (
        Kind::Cooling,
        "return_air_temperature_c",
        "Nhiệt độ gió hồi",
        "Return air temperature",
    ),
    (Kind::Cooling, "setpoint_c", "Nhiệt độ cài đặt", "Set point"),
    (
        Kind::Cooling,
        "humidity_pct",
        "Độ ẩm gió hồi",
        "Return air humidity",
    ),
    // Climate
    (Kind::Climate, "temperature_c", "Nhiệt độ", "Temperature"),
    (Kind::Climate, "humidity_pct", "Độ ẩm", "Humidity"),
    (Kind::Climate, "dew_point_c", "Điểm sương", "Dew point"),
    // Fire panel
    (Kind::FirePanel, "fire_alarm", "Báo cháy", "Fire alarm"),
    (
        Kind::FirePanel,
        "extinguishant_released",
        "Đã xả khí chữa cháy",
        "Extinguishant released",
    ),
    (Kind::FirePanel, "fault", "Lỗi tủ báo cháy", "Panel fault"),
    (
        Kind::FirePanel,
        "supervisory",
        "Tín hiệu giám sát",
        "Supervisory",
    ),
    // Leak, door, NVR, surge
    (
        Kind::Leak,
        "leak_detected",
        "Phát hiện rò rỉ nước",
        "Leak detected",
    ),
    (Kind::Door, "door_open", "Cửa mở", "Door open"),
    (Kind::Nvr, "recording", "Đang ghi hình", "Recording"),
    (Kind::Nvr, "disk_fault", "Lỗi ổ cứng", "Disk fault"),
    (Kind::Nvr, "retention_days", "Số ngày lưu trữ", "Retention"),
    (
        Kind::Surge,
        "protector_tripped",
        "Chống sét đã tác động",
        "Protector tripped",
    ),
    // Power meter
    (
        Kind::PowerMeter,
        "mains_present",
        "Có điện",
        "Mains present",
    ),
    (Kind::PowerMeter, "voltage_l1_v", "Điện áp L1", "Voltage L1"),
    (Kind::PowerMeter, "voltage_l2_v", "Điện áp L2", "Voltage L2"),
    (Kind::PowerMeter, "voltage_l3_v", "Điện áp L3", "Voltage L3"),
    (
        Kind::PowerMeter,
        "current_l1_a",
        "Dòng điện L1",
        "Current L1",
    ),
    (
        Kind::PowerMeter,
        "current_l2_a",
        "Dòng điện L2",
        "Current L2",
    ),
    (
        Kind::PowerMeter,
        "current_l3_a",
        "Dòng điện L3",
        "Current L3",
    ),
    (Kind::PowerMeter, "frequency_hz", "Tần số", "Frequency"),
    (
        Kind::PowerMeter,
        "active_power_kw",
        "Công suất tác dụng",
        "Active power",
    ),
    (
        Kind::PowerMeter,
        "power_factor",
        "Hệ số công suất",
        "Power factor",
    ),
    (Kind::PowerMeter, "energy_kwh", "Điện năng", "Energy"),
    // Gateway
    (
        Kind::Gateway,
        "clock_synced",
        "Đồng bộ thời gian",
        "Clock synchronised",
    ),
    (Kind::Gateway, "uptime_s", "Thời gian hoạt động", "Uptime"),
    (
        Kind::Gateway,
        "buffer_used_pct",
        "Mức dùng bộ đệm",
        "Buffer used",
    ),
    (
        Kind::Gateway,
        "sink_failing_s",
        "Thời gian gửi dữ liệu lỗi",
        "Sink failing for",
    ),
    (
        Kind::Gateway,
        "sink_auth_failed",
        "Sai thông tin đăng nhập đích gửi",
        "Sink credentials refused",
    ),
];

/// `(value, Vietnamese, English)` for enumeration values.
const ENUM_LABELS: &[(&str, &str, &str)] = &[
    ("unknown", "Không xác định", "Unknown"),
    ("normal", "Bình thường", "Normal"),
    ("on_battery", "Chạy pin", "On battery"),
    ("on_bypass", "Bypass", "On bypass"),
    ("off", "Tắt", "Off"),
    ("booster", "Tăng áp", "Boost"),
    ("reducer", "Giảm áp", "Buck"),
    ("stop", "Dừng", "Stop"),
    ("auto", "Tự động", "Auto"),
    ("manual", "Bằng tay", "Manual"),
    ("test", "Chạy thử", "Test"),
    ("low", "Yếu", "Low"),
    ("depleted", "Cạn", "Depleted"),
    ("fault", "Lỗi", "Fault"),
];

/// Every text the page script shows, in one language. `{n}`, `{age}`, `{v}`, `{t}`
/// are filled in by the page.
fn strings(lang: Language) -> serde_json::Value {
    match lang {
        Language::Vi => serde_json::json!({
            "locale": "vi-VN",
            "conn": {
                "connecting": "Đang kết nối…",
                "live": "Trực tiếp",
                "delayed": "Không có số liệu mới — số liệu cuối {age}",
                "reconnecting": "Mất kết nối, đang thử lại…",
                "lost": "Mất kết nối với gateway — số liệu cuối {age}",
                "never": "Chưa kết nối được với gateway",
            },
            "alarms_title": "Cảnh báo đang hoạt động",
            "no_alarms": "Không có cảnh báo",
            "level": { "normal": "Sự cố thông thường", "serious": "Sự cố nghiêm trọng" },
            "status_ok": "Bình thường",
            "quality": {
                "good": "Tốt",
                "stale": "Số liệu cũ",
                "comm_error": "Lỗi kết nối",
                "timeout": "Không phản hồi (quá thời gian)",
                "device_exception": "Thiết bị báo lỗi",
                "no_such_object": "Không có đối tượng",
                "out_of_range": "Ngoài dải đo",
                "unknown": "Thiết bị báo không xác định",
                "never": "Chưa có số liệu",
            },
            "yes": "Có",
            "no": "Không",
            "since": "từ {t}",
            "updated": "Cập nhật {age}",
            "last_good": "số liệu cuối {age}",
            "value_threshold": "giá trị {v} · ngưỡng {t}",
            "ago": { "now": "vừa xong", "s": "{n} giây trước", "m": "{n} phút trước",
                     "h": "{n} giờ trước", "d": "{n} ngày trước" },
            "dur": { "s": "{n} giây", "m": "{n} phút", "h": "{n} giờ {m} phút", "d": "{n} ngày" },
            "other_room": "Khác",
        }),
        Language::En => serde_json::json!({
            "locale": "en-GB",
            "conn": {
                "connecting": "Connecting…",
                "live": "Live",
                "delayed": "No new data — last data {age}",
                "reconnecting": "Connection lost, retrying…",
                "lost": "Connection to the gateway lost — last data {age}",
                "never": "Could not reach the gateway",
            },
            "alarms_title": "Active alarms",
            "no_alarms": "No active alarms",
            "level": { "normal": "Normal incident", "serious": "Serious incident" },
            "status_ok": "Normal",
            "quality": {
                "good": "Good",
                "stale": "Stale data",
                "comm_error": "Link error",
                "timeout": "No answer (timeout)",
                "device_exception": "Device reported an error",
                "no_such_object": "No such object",
                "out_of_range": "Out of range",
                "unknown": "Device reports not available",
                "never": "No data yet",
            },
            "yes": "Yes",
            "no": "No",
            "since": "since {t}",
            "updated": "Updated {age}",
            "last_good": "last good {age}",
            "value_threshold": "value {v} · threshold {t}",
            "ago": { "now": "just now", "s": "{n} s ago", "m": "{n} min ago",
                     "h": "{n} h ago", "d": "{n} days ago" },
            "dur": { "s": "{n} s", "m": "{n} min", "h": "{n} h {m} min", "d": "{n} days" },
            "other_room": "Other",
        }),
    }
}

// ---------------------------------------------------------------------------------
// Layout

#[derive(Serialize)]
struct Layout<'a> {
    site: &'a str,
    title: &'a str,
    lang: &'static str,
    rooms: Vec<RoomView<'a>>,
}

#[derive(Serialize)]
struct RoomView<'a> {
    id: &'a str,
    name: &'a str,
    devices: Vec<DeviceView<'a>>,
}

#[derive(Serialize)]
struct DeviceView<'a> {
    id: &'a str,
    name: &'a str,
    label: Option<&'a str>,
    kind: Kind,
    kind_label: &'static str,
    location: Option<&'a str>,
    points: Vec<PointView>,
}

#[derive(Serialize)]
struct PointView {
    name: &'static str,
    label: &'static str,
    unit: &'static str,
    /// `number`, `bool` or `enum`.
    #[serde(rename = "type")]
    ty: &'static str,
    /// Display names of enumeration values.
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<BTreeMap<&'static str, &'static str>>,
}

impl<'a> Layout<'a> {
    fn of(live: &'a Live) -> Layout<'a> {
        let lang = language(live);
        let device = |d: &'a crate::state::DeviceState| DeviceView {
            id: &d.meta.id,
            name: &d.meta.name,
            label: d.meta.label.as_deref(),
            kind: d.meta.kind,
            kind_label: kind_label(d.meta.kind, lang),
            location: d.location.as_deref(),
            points: d
                .points
                .iter()
                .map(|p| {
                    let (ty, values) = match p.point.ty {
                        PointType::Number => ("number", None),
                        PointType::Bool => ("bool", None),
                        PointType::Enum(names) => (
                            "enum",
                            Some(names.iter().map(|n| (*n, enum_label(n, lang))).collect()),
                        ),
                    };
                    PointView {
                        name: p.point.name,
                        label: point_label(d.meta.kind, p.point.name, lang),
                        unit: p.point.unit,
                        ty,
                        values,
                    }
                })
                .collect(),
        };
        let mut rooms: Vec<RoomView<'a>> = live
            .rooms
            .iter()
            .map(|r| RoomView {
                id: &r.id,
                name: &r.name,
                devices: live
                    .devices
                    .iter()
                    .filter(|d| d.meta.room == r.id)
                    .map(&device)
                    .collect(),
            })
            .collect();
        // Devices in a room the room list does not name still get a section, titled
        // with the room id: nothing configured may be missing from the wall.
        for d in &live.devices {
            if live.rooms.iter().any(|r| r.id == d.meta.room) {
                continue;
            }
            match rooms.iter_mut().find(|r| r.id == &*d.meta.room) {
                Some(r) => r.devices.push(device(d)),
                None => rooms.push(RoomView {
                    id: &d.meta.room,
                    name: &d.meta.room,
                    devices: vec![device(d)],
                }),
            }
        }
        rooms.retain(|r| !r.devices.is_empty());
        let title = if live.title.is_empty() {
            &live.site
        } else {
            &live.title
        };
        Layout {
            site: &live.site,
            title,
            lang: match lang {
                Language::Vi => "vi",
                Language::En => "en",
            },
            rooms,
        }
    }
}

use crate::model::stable_hash as fnv1a;

fn layout_json(live: &Live) -> String {
    serde_json::to_string(&Layout::of(live)).unwrap_or_default()
}

/// Fingerprint of what the page renders from config (rooms, devices, points, title,
/// language). Sent in every `refresh` event; a page with another key reloads.
pub(crate) fn layout_key(live: &Live) -> String {
    format!("{:016x}", fnv1a(&layout_json(live)))
}

#[derive(Serialize)]
struct PageData<'a> {
    #[serde(flatten)]
    layout: Layout<'a>,
    layout_key: String,
    strings: serde_json::Value,
    delayed_after_s: u64,
    lost_after_s: u64,
}

/// JSON that is safe inside `<script>`: no `<`, `>` or `&` can end the element.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole wall-view document for the current state.
pub fn render(live: &Live) -> String {
    let lang = language(live);
    let layout = Layout::of(live);
    let title = html_escape(layout.title);
    let lang_code = layout.lang;
    let data = PageData {
        layout,
        layout_key: layout_key(live),
        strings: strings(lang),
        delayed_after_s: DELAYED_AFTER_S,
        lost_after_s: LOST_AFTER_S,
    };
    let data = script_safe(&serde_json::to_string(&data).unwrap_or_else(|_| "{}".into()));
    // The data goes in last: nothing inside it is taken for a placeholder.
    TEMPLATE
        .replace("{{lang}}", lang_code)
        .replace("{{title}}", &title)
        .replace("{{css}}", CSS)
        .replace("{{js}}", JS)
        .replace("{{data}}", &data)
}

/// `GET /`.
pub(crate) async fn wall(State(app): State<App>) -> Response {
    let html = render(&app.shared.read());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::points_of;

    #[test]
    fn every_canonical_point_has_labels_in_both_languages() {
        for kind in Kind::ALL {
            for p in points_of(kind) {
                let vi = point_label(kind, p.name, Language::Vi);
                let en = point_label(kind, p.name, Language::En);
                assert_ne!(vi, p.name, "no Vietnamese label for {kind}/{}", p.name);
                assert_ne!(en, p.name, "no English label for {kind}/{}", p.name);
            }
        }
        // Entries for points that do not exist would be dead text.
        for (kind, name, _, _) in POINT_LABELS {
            assert!(
                crate::points::lookup(*kind, name).is_some(),
                "label for unknown {kind}/{name}"
            );
        }
    }

    #[test]
    fn every_enumeration_value_has_labels() {
        for kind in Kind::ALL {
            for p in points_of(kind) {
                if let PointType::Enum(names) = p.ty {
                    for n in names {
                        assert_ne!(enum_label(n, Language::Vi), *n, "{kind}/{}: {n}", p.name);
                    }
                }
            }
        }
    }

    #[test]
    fn unknown_point_falls_back_to_canonical_name() {
        assert_eq!(
            point_label(Kind::Door, "temperature_c", Language::Vi),
            "temperature_c"
        );
        assert_eq!(enum_label("sideways", Language::En), "sideways");
    }

    #[test]
    fn template_placeholders_are_all_filled() {
        let html = render(&Live::default());
        assert!(!html.contains("{{"), "a placeholder is left in the page");
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
    }

    #[test]
    fn script_safe_json_cannot_close_the_script_element() {
        let s = script_safe(r#"{"name":"</script><b>&"}"#);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["name"], "</script><b>&");
    }

    #[test]
    fn fnv1a_is_the_published_function() {
        // Reference values of FNV-1a 64.
        assert_eq!(fnv1a(""), 0xcbf29ce484222325);
        assert_eq!(fnv1a("a"), 0xaf63dc4c8601ec8c);
    }
}
