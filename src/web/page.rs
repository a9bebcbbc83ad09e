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
//! Texts are Vietnamese (with diacritics) unless the site's language is `en`; every
//! one of them (point, kind and value names, units, status words, number separators)
//! comes from [`crate::texts`]. Each point carries its display resolution
//! (`decimals`), so the page writes a number as the alarm messages do (`28,5`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::api::App;
use crate::model::{Kind, Language, System};
use crate::points::PointType;
use crate::state::Live;
use crate::texts::{self, names};

const TEMPLATE: &str = include_str!("assets/wall.html");
const CSS: &str = include_str!("assets/wall.css");
const JS: &str = include_str!("assets/wall.js");

/// The page's connection indicator turns amber when no data arrived for this long
/// while the stream is open (the stream sends a full refresh every 5 s).
pub const DELAYED_AFTER_S: u64 = 8;
/// ... and red, with the "gateway unreachable" overlay over a greyed view, when no
/// data arrived for this long (two refreshes missed: a silent, half-open link).
pub const LOST_AFTER_S: u64 = 12;
/// The overlay also shows when the event stream has been down this long (the gateway
/// stopped or the link was cut: the browser notices at once). The short grace keeps
/// a reconnect from flashing it.
pub const UNREACHABLE_AFTER_S: u64 = 2;
/// Seconds between pages when the rooms do not fit one screen.
pub const PAGE_S: u64 = 20;

/// The language the page speaks for this state: English only when it says `en`.
pub fn language(live: &Live) -> Language {
    texts::language(&live.language)
}

// ---------------------------------------------------------------------------------
// Layout

#[derive(Serialize)]
struct Layout<'a> {
    site: &'a str,
    title: &'a str,
    lang: &'static str,
    /// The systems the site has devices in, in [`System::ALL`] order: the wall's
    /// columns and its summary.
    systems: Vec<SystemView>,
    rooms: Vec<RoomView<'a>>,
}

#[derive(Serialize)]
struct SystemView {
    id: System,
    name: &'static str,
}

/// The points a device's tile shows, per kind, most important first: the first one the
/// device has is the tile's large value, the next two its second line. Every other
/// point is still on the page (smaller, as far as the tile has room).
fn tile_points(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Ups => &[
            "load_pct",
            "battery_charge_pct",
            "runtime_remaining_s",
            "output_source",
        ],
        Kind::Generator => &["fuel_level_pct", "mode", "engine_running", "load_kw"],
        Kind::Cooling => &[
            "return_air_temperature_c",
            "supply_air_temperature_c",
            "unit_on",
            "setpoint_c",
            "humidity_pct",
        ],
        Kind::Climate => &["temperature_c", "humidity_pct", "dew_point_c"],
        Kind::FirePanel => &["fire_alarm", "fault", "extinguishant_released"],
        Kind::Leak => &["leak_detected"],
        Kind::Door => &["door_open"],
        Kind::Nvr => &["recording", "retention_days", "disk_fault"],
        Kind::Surge => &["protector_tripped", "mains_present"],
        Kind::PowerMeter => &[
            "active_power_kw",
            "voltage_l1_v",
            "current_l1_a",
            "frequency_hz",
        ],
        Kind::Gateway => &["buffer_used_pct", "clock_synced"],
        Kind::Ats => &["position", "mains_available", "generator_available"],
    }
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
    /// The system the device belongs to ([`Kind::system`]).
    system: System,
    location: Option<&'a str>,
    /// The tile's points, most important first ([`tile_points`]), at most three.
    main: Vec<&'static str>,
    points: Vec<PointView>,
}

#[derive(Serialize)]
struct PointView {
    name: &'static str,
    label: &'static str,
    /// The unit as people read it in the page's language (`°C`, `ngày`).
    unit: &'static str,
    /// Display resolution: decimals at most.
    decimals: u8,
    /// Seconds shown as a duration (`2 giờ 5 phút`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duration: bool,
    /// `number`, `bool` or `enum`.
    #[serde(rename = "type")]
    ty: &'static str,
    /// Display names of enumeration values.
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<BTreeMap<&'static str, &'static str>>,
}

impl<'a> Layout<'a> {
    fn of(live: &'a Live) -> Layout<'a> {
        Layout::of_in(live, language(live))
    }

    fn of_in(live: &'a Live, lang: Language) -> Layout<'a> {
        let device = |d: &'a crate::state::DeviceState| DeviceView {
            id: &d.meta.id,
            name: &d.meta.name,
            label: d.meta.label.as_deref(),
            kind: d.meta.kind,
            kind_label: names::kind(d.meta.kind, lang),
            system: d.meta.kind.system(),
            location: d.location.as_deref(),
            main: {
                let has = |n: &str| d.points.iter().any(|p| p.point.name == n);
                let mut m: Vec<&'static str> = tile_points(d.meta.kind)
                    .iter()
                    .copied()
                    .filter(|n| has(n))
                    .collect();
                // A device whose profile maps none of its kind's tile points still
                // shows its first point large.
                if m.is_empty()
                    && let Some(p) = d.points.first()
                {
                    m.push(p.point.name);
                }
                m.truncate(3);
                m
            },
            points: d
                .points
                .iter()
                .map(|p| {
                    let (ty, values) = match p.point.ty {
                        PointType::Number => ("number", None),
                        PointType::Bool => ("bool", None),
                        PointType::Enum(values) => (
                            "enum",
                            Some(
                                values
                                    .iter()
                                    .map(|n| (*n, names::enum_value(n, lang)))
                                    .collect(),
                            ),
                        ),
                    };
                    PointView {
                        name: p.point.name,
                        label: names::point(d.meta.kind, p.point.name, lang),
                        unit: names::unit(p.point.unit, lang),
                        decimals: p.point.decimals,
                        duration: names::is_duration(p.point),
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
        let systems = System::ALL
            .into_iter()
            .filter(|s| {
                rooms
                    .iter()
                    .any(|r| r.devices.iter().any(|d| d.system == *s))
            })
            .map(|s| SystemView {
                id: s,
                name: names::system(s, lang),
            })
            .collect();
        Layout {
            site: &live.site,
            title,
            lang: texts::code(lang),
            systems,
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
    unreachable_after_s: u64,
    page_s: u64,
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
    render_in(live, language(live))
}

/// The wall view in `lang` (a kiosk's `/?lang=en`). The layout key stays the site's,
/// so the page does not take its own language for a changed layout; alarm messages
/// keep the site's language (the gateway writes them once, for every sink).
pub fn render_in(live: &Live, lang: Language) -> String {
    let layout = Layout::of_in(live, lang);
    let title = html_escape(layout.title);
    let lang_code = layout.lang;
    let data = PageData {
        layout,
        layout_key: layout_key(live),
        strings: texts::wall::strings(lang),
        delayed_after_s: DELAYED_AFTER_S,
        lost_after_s: LOST_AFTER_S,
        unreachable_after_s: UNREACHABLE_AFTER_S,
        page_s: PAGE_S,
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

/// The language asked for in the query (`lang=en` or `lang=vi`); anything else is
/// ignored (the site's language).
fn query_language(raw: Option<&str>) -> Option<Language> {
    raw?.split('&').find_map(|p| match p {
        "lang=en" => Some(Language::En),
        "lang=vi" => Some(Language::Vi),
        _ => None,
    })
}

/// `GET /[?lang=en|vi]`.
pub(crate) async fn wall(
    State(app): State<App>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let html = {
        let live = app.shared.read();
        let lang = query_language(q.as_deref()).unwrap_or_else(|| language(&live));
        render_in(&live, lang)
    };
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

    #[test]
    fn points_carry_resolution_and_unit_in_the_page_language() {
        use crate::state::{DeviceState, PointState};
        use std::sync::Arc;
        let meta = Arc::new(crate::model::DeviceMeta {
            id: Arc::from("nvr1"),
            name: "Đầu ghi".into(),
            label: None,
            room: Arc::from("r1"),
            kind: Kind::Nvr,
        });
        let point = |name| PointState {
            point: crate::points::lookup(Kind::Nvr, name).unwrap(),
            value: None,
            quality: crate::model::Quality::Good,
            ts: None,
        };
        let mut live = Live::default();
        live.devices.push(DeviceState {
            meta,
            location: None,
            comm_ok: true,
            last_poll: None,
            points: vec![point("retention_days"), point("recording")],
        });
        let json = serde_json::to_value(Layout::of(&live)).unwrap();
        let p = &json["rooms"][0]["devices"][0]["points"][0];
        assert_eq!(p["label"], "Số ngày lưu trữ ghi hình");
        assert_eq!(p["unit"], "ngày");
        assert_eq!(p["decimals"], 0);
        assert_eq!(
            json["rooms"][0]["devices"][0]["kind_label"],
            "Đầu ghi hình (NVR)"
        );
        live.language = "en".into();
        let json = serde_json::to_value(Layout::of(&live)).unwrap();
        let p = &json["rooms"][0]["devices"][0]["points"][0];
        assert_eq!(p["label"], "Recordings kept");
        assert_eq!(p["unit"], "days");
        assert_eq!(json["lang"], "en");
    }

    #[test]
    fn tiles_name_their_system_and_main_points_and_systems_are_listed_in_order() {
        use crate::state::{DeviceState, PointState};
        let dev = |id: &str, room: &str, kind: Kind, points: &[&'static str]| {
            let meta = crate::model::DeviceMeta {
                id: id.into(),
                name: id.into(),
                label: None,
                room: room.into(),
                kind,
            };
            let points = points
                .iter()
                .map(|n| {
                    PointState::canonical(kind, n, None, crate::model::Quality::Good, None).unwrap()
                })
                .collect();
            DeviceState::answering(meta, None, points)
        };
        let mut live = Live::default();
        live.devices
            .push(dev("leak1", "r1", Kind::Leak, &["leak_detected"]));
        live.devices.push(dev(
            "ups1",
            "r1",
            Kind::Ups,
            &[
                "on_battery",
                "battery_charge_pct",
                "load_pct",
                "output_source",
                "runtime_remaining_s",
            ],
        ));
        live.devices.push(dev(
            "th1",
            "r2",
            Kind::Climate,
            &["humidity_pct", "temperature_c"],
        ));
        let json = serde_json::to_value(Layout::of(&live)).unwrap();
        let systems: Vec<&str> = json["systems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(systems, ["power", "climate", "fire_safety"]);
        assert_eq!(json["systems"][0]["name"], "Nguồn điện");
        let r1 = &json["rooms"][0]["devices"];
        assert_eq!(r1[0]["system"], "fire_safety");
        assert_eq!(r1[1]["system"], "power");
        assert_eq!(
            r1[1]["main"],
            serde_json::json!(["load_pct", "battery_charge_pct", "runtime_remaining_s"])
        );
        assert_eq!(
            json["rooms"][1]["devices"][0]["main"],
            serde_json::json!(["temperature_c", "humidity_pct"])
        );
    }

    #[test]
    fn a_kiosk_may_ask_for_english_and_keeps_the_sites_layout_key() {
        let mut live = Live::default();
        live.title = "Trung tâm".into();
        let vi = render(&live);
        assert!(vi.contains("<html lang=\"vi\">"));
        assert_eq!(query_language(Some("x=1&lang=en")), Some(Language::En));
        assert_eq!(query_language(Some("lang=fr")), None);
        assert_eq!(query_language(None), None);
        let en = render_in(&live, Language::En);
        assert!(en.contains("<html lang=\"en\">"));
        assert!(en.contains("GATEWAY UNREACHABLE"));
        let key = layout_key(&live);
        assert!(en.contains(&key) && vi.contains(&key));
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
