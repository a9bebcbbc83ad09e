//! The six dashboards, built from a validated site: wall view, power, cooling, climate,
//! alarms and gateway health.
//!
//! What each shows is decided by the site: a panel exists only for a point some
//! device's profile maps (or the gateway derives, like the dew point), so every panel
//! has data once the gateway runs. Titles name devices by their configured name and
//! label; colours come from each device's effective rules ([`super::thresholds`]).

use serde_json::{Value as Json, json};

use super::panels::{self, Layout, ident, lit, target, where_clause};
use super::thresholds::{self, INFO, NORMAL, OK, SERIOUS};
use crate::config::{DeviceConfig, Site};
use crate::model::{Kind, Language};
use crate::points::{self, PointDef, PointId, PointType};
use crate::rules::RuleSpec;

/// Everything a board needs from the site.
pub(super) struct Ctx<'a> {
    pub site: &'a Site,
    pub time_zone: &'a str,
}

impl Ctx<'_> {
    fn t<'s>(&self, vi: &'s str, en: &'s str) -> &'s str {
        match self.site.language {
            Language::En => en,
            _ => vi,
        }
    }

    fn devices(&self, kind: Kind) -> impl Iterator<Item = &DeviceConfig> {
        self.site
            .devices
            .iter()
            .filter(move |d| d.meta.kind == kind)
    }

    fn has_kind(&self, kind: Kind) -> bool {
        self.devices(kind).next().is_some()
    }
}

/// The points a device writes: its profile's, plus the dew point the gateway derives
/// for a climate sensor with temperature and humidity.
pub(super) fn device_points(d: &DeviceConfig) -> Vec<PointId> {
    let mut pts = d.profile.points();
    let has = |pts: &[PointId], n: &str| pts.iter().any(|p| p.name == n);
    if d.meta.kind == Kind::Climate
        && has(&pts, "temperature_c")
        && has(&pts, "humidity_pct")
        && !has(&pts, "dew_point_c")
        && let Some(p) = points::lookup(Kind::Climate, "dew_point_c")
    {
        pts.push(p);
    }
    pts
}

fn maps(d: &DeviceConfig, point: &str) -> bool {
    device_points(d).iter().any(|p| p.name == point)
}

/// A device as people know it: `Name (LABEL)`, or the name alone.
pub(super) fn device_title(d: &DeviceConfig) -> String {
    match &d.meta.label {
        Some(l) if !l.is_empty() && *l != d.meta.name => format!("{} ({l})", d.meta.name),
        _ => d.meta.name.clone(),
    }
}

/// The points shown on a device's stat panel (wall view and system dashboards), in
/// order; only those the device writes are used.
fn headline(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Ups => &[
            "on_battery",
            "battery_charge_pct",
            "runtime_remaining_s",
            "load_pct",
        ],
        Kind::Generator => &[
            "mode",
            "engine_running",
            "fuel_level_pct",
            "mains_available",
        ],
        Kind::Cooling => &[
            "unit_on",
            "critical_alarm",
            "supply_air_temperature_c",
            "return_air_temperature_c",
        ],
        Kind::Climate => &["temperature_c", "humidity_pct", "dew_point_c"],
        Kind::FirePanel => &["fire_alarm", "extinguishant_released", "fault"],
        Kind::Leak => &["leak_detected"],
        Kind::Door => &["door_open"],
        Kind::Nvr => &["recording", "disk_fault", "retention_days"],
        Kind::Surge => &["protector_tripped"],
        Kind::PowerMeter => &[
            "mains_present",
            "active_power_kw",
            "voltage_l1_v",
            "frequency_hz",
        ],
        Kind::Gateway => &["buffer_used_pct", "sink_failing_s", "sink_auth_failed"],
        Kind::Ats => &["position", "mains_available", "generator_available"],
    }
}

/// Grafana unit id of a point unit.
fn grafana_unit(unit: &str) -> &'static str {
    match unit {
        "°C" => "celsius",
        "%" => "percent",
        "s" => "s",
        "V" => "volt",
        "Hz" => "hertz",
        "kW" => "kwatt",
        "A" => "amp",
        "kWh" => "kwatth",
        "kPa" => "pressurekpa",
        "h" => "h",
        "d" => "d",
        _ => "",
    }
}

/// A point's name without its phase (`voltage_l2_v` → `voltage_v`) and the phase
/// (`L2`), if it has one: phases of one quantity share a panel.
fn phase_split(name: &str) -> (String, Option<&'static str>) {
    for (tag, phase) in [("_l1", "L1"), ("_l2", "L2"), ("_l3", "L3")] {
        if let Some(i) = name.find(tag) {
            let rest = &name[i + tag.len()..];
            if rest.is_empty() || rest.starts_with('_') {
                return (format!("{}{rest}", &name[..i]), Some(phase));
            }
        }
    }
    (name.to_string(), None)
}

/// Vietnamese operator label of a quantity (a point name without its phase).
fn vi_label(base: &str) -> Option<&'static str> {
    Some(match base {
        "active_power_kw" => "Công suất tác dụng",
        "alarms_present" => "Số cảnh báo của UPS",
        "battery_charge_pct" => "Dung lượng ắc quy",
        "battery_low" => "Ắc quy yếu",
        "battery_replace" => "Cần thay ắc quy",
        "battery_status" => "Tình trạng ắc quy",
        "battery_temperature_c" => "Nhiệt độ ắc quy",
        "battery_voltage_v" => "Điện áp ắc quy",
        "buffer_used_pct" => "Bộ đệm đã dùng",
        "clock_synced" => "Đồng bộ đồng hồ",
        "common_alarm" => "Cảnh báo chung",
        "coolant_temperature_c" => "Nhiệt độ nước làm mát",
        "critical_alarm" => "Lỗi nghiêm trọng",
        "current_a" => "Dòng điện",
        "dew_point_c" => "Điểm sương",
        "disk_fault" => "Lỗi ổ ghi",
        "door_open" => "Cửa mở",
        "energy_kwh" => "Điện năng tiêu thụ",
        "engine_hours_h" => "Giờ chạy máy",
        "engine_running" => "Máy đang chạy",
        "extinguishant_released" => "Đã xả khí chữa cháy",
        "fault" => "Lỗi thiết bị",
        "filter_dirty" => "Lọc gió bẩn",
        "fire_alarm" => "Báo cháy",
        "frequency_hz" => "Tần số",
        "fuel_level_pct" => "Mức nhiên liệu",
        "gen_frequency_hz" => "Tần số máy phát",
        "gen_voltage_v" => "Điện áp máy phát",
        "humidity_pct" => "Độ ẩm",
        "input_frequency_hz" => "Tần số vào",
        "input_voltage_v" => "Điện áp vào",
        "leak_detected" => "Rò nước",
        "load_kw" => "Công suất máy phát",
        "load_pct" => "Tải",
        "mains_available" => "Có điện lưới",
        "mains_frequency_hz" => "Tần số điện lưới",
        "mains_present" => "Có điện lưới",
        "mains_voltage_v" => "Điện áp lưới",
        "mode" => "Chế độ",
        "oil_pressure_kpa" => "Áp suất dầu",
        "on_battery" => "Chạy ắc quy",
        "on_bypass" => "Chạy bypass",
        "output_frequency_hz" => "Tần số ra",
        "output_power_kw" => "Công suất ra",
        "output_source" => "Nguồn cấp tải",
        "output_voltage_v" => "Điện áp ra",
        "overload" => "Quá tải",
        "power_factor" => "Hệ số công suất",
        "protector_tripped" => "Chống sét đã tác động",
        "recording" => "Đang ghi hình",
        "retention_days" => "Số ngày lưu hình",
        "return_air_temperature_c" => "Nhiệt độ gió hồi",
        "runtime_remaining_s" => "Thời gian lưu điện",
        "setpoint_c" => "Nhiệt độ đặt",
        "shutdown_alarm" => "Lỗi dừng máy",
        "sink_auth_failed" => "Sai thông tin đăng nhập đầu ra",
        "sink_failing_s" => "Thời gian gửi lỗi",
        "supervisory" => "Giám sát hệ thống báo cháy",
        "supply_air_temperature_c" => "Nhiệt độ gió cấp",
        "temperature_c" => "Nhiệt độ",
        "unit_on" => "Đang chạy",
        "uptime_s" => "Thời gian chạy gateway",
        "voltage_v" => "Điện áp",
        "warning_alarm" => "Cảnh báo máy phát",
        _ => return None,
    })
}

/// Operator label of a quantity (a point without its phase) in the site's language.
fn group_label(ctx: &Ctx<'_>, p: &PointDef) -> String {
    let (base, phase) = phase_split(p.name);
    match (ctx.site.language, vi_label(&base)) {
        (Language::Vi, Some(l)) => l.to_string(),
        _ => match phase {
            // "Voltage L1-N" → "Voltage"; "Output load, phase 1" → "Output load".
            Some(_) => p
                .doc
                .split([',', '('])
                .next()
                .unwrap_or(p.doc)
                .trim_end_matches(" L1-N")
                .trim_end_matches(" L1")
                .trim()
                .to_string(),
            // "Dew point; derived from ..." → "Dew point".
            None => p
                .doc
                .split([';', '('])
                .next()
                .unwrap_or(p.doc)
                .trim()
                .to_string(),
        },
    }
}

/// Operator label of a point in the site's language (with its phase).
fn point_label(ctx: &Ctx<'_>, p: &PointDef) -> String {
    match phase_split(p.name) {
        (_, Some(phase)) => format!("{} {phase}", group_label(ctx, p)),
        _ => group_label(ctx, p),
    }
}

fn bool_texts(ctx: &Ctx<'_>) -> (&'static str, &'static str) {
    match ctx.site.language {
        Language::En => ("yes", "no"),
        _ => ("có", "không"),
    }
}

fn comm_texts(ctx: &Ctx<'_>) -> (&'static str, &'static str) {
    match ctx.site.language {
        Language::En => ("online", "comm lost"),
        _ => ("kết nối", "mất kết nối"),
    }
}

/// Unit, thresholds and mappings of one point of one device.
fn field_props(ctx: &Ctx<'_>, rules: &[RuleSpec], p: &PointDef) -> (Json, Json) {
    let thresholds = match p.ty {
        PointType::Number => thresholds::numeric_steps(rules, p.name)
            .map(|s| thresholds::steps_json(&s))
            .unwrap_or_else(thresholds::info_thresholds),
        _ => thresholds::info_thresholds(),
    };
    let mappings = thresholds::value_mappings(rules, p, bool_texts(ctx));
    (thresholds, json!(mappings))
}

fn has_numeric_rule(rules: &[RuleSpec], p: &PointDef) -> bool {
    p.ty == PointType::Number && thresholds::numeric_steps(rules, p.name).is_some()
}

fn select_last(points: &[&str]) -> String {
    points
        .iter()
        .map(|p| format!("last({}) AS {}", ident(p), ident(p)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The stat panel of one device: its headline points and `comm_ok`, each coloured by
/// the device's own effective rules.
pub(super) fn device_stat(ctx: &Ctx<'_>, d: &DeviceConfig) -> Json {
    let kind = d.meta.kind;
    let pts: Vec<PointId> = headline(kind)
        .iter()
        .filter_map(|n| points::lookup(kind, n))
        .filter(|p| maps(d, p.name))
        .collect();
    let mut names: Vec<&str> = pts.iter().map(|p| p.name).collect();
    names.push("comm_ok");
    let query = format!(
        "SELECT {} FROM {} WHERE {}",
        select_last(&names),
        ident(kind.as_str()),
        where_clause(&[format!("\"device\" = {}", lit(&d.meta.id))])
    );
    let mut overrides = Vec::new();
    for p in &pts {
        let (th, mappings) = field_props(ctx, &d.rules, p);
        let mut props = vec![
            ("displayName", json!(point_label(ctx, p))),
            ("thresholds", th),
            ("mappings", mappings),
        ];
        let unit = grafana_unit(p.unit);
        if !unit.is_empty() {
            props.push(("unit", json!(unit)));
        }
        overrides.push(panels::override_by_name(p.name, props));
    }
    overrides.push(panels::override_by_name(
        "comm_ok",
        vec![
            ("displayName", json!(ctx.t("Kết nối", "Communication"))),
            (
                "mappings",
                json!(thresholds::comm_mappings(&d.rules, comm_texts(ctx))),
            ),
            ("thresholds", thresholds::info_thresholds()),
        ],
    ));
    let mut defaults = panels::defaults("", thresholds::info_thresholds(), vec![], "thresholds");
    defaults["noValue"] = json!(ctx.t("không có dữ liệu", "no data"));
    defaults["decimals"] = json!(1);
    let mut p = panels::stat(
        &device_title(d),
        vec![target("A", &query, "$col", false)],
        defaults,
        overrides,
    );
    if let Some(loc) = &d.location {
        p["description"] = json!(format!("{} · {}", d.meta.id, loc));
    } else {
        p["description"] = json!(d.meta.id.to_string());
    }
    p
}

fn var_filters() -> Vec<String> {
    vec![
        "\"room\" =~ /^$room$/".to_string(),
        "\"device\" =~ /^$device$/".to_string(),
    ]
}

/// The detail panels of `kind`: one time series per numeric quantity (the phases of one
/// quantity together) and one state timeline for all its booleans and enumerations;
/// a series per device and point (`<device> <point>`), each with that device's
/// thresholds and mappings as an override. Only points some device writes.
fn kind_point_panels(ctx: &Ctx<'_>, l: &mut Layout, kind: Kind) {
    let devices: Vec<&DeviceConfig> = ctx.devices(kind).collect();
    let written = |p: &PointDef| devices.iter().any(|d| maps(d, p.name));
    // Numeric quantities, in vocabulary order, phases grouped.
    let mut groups: Vec<(String, Vec<PointId>)> = Vec::new();
    let mut states: Vec<PointId> = Vec::new();
    for p in points::points_of(kind).iter().filter(|p| written(p)) {
        if p.ty != PointType::Number {
            states.push(p);
            continue;
        }
        let (base, _) = phase_split(p.name);
        match groups.iter_mut().find(|(b, _)| *b == base) {
            Some((_, pts)) => pts.push(p),
            None => groups.push((base, vec![p])),
        }
    }
    let series_panel = |pts: &[PointId], numeric: bool| -> (Vec<Json>, Vec<Json>, Vec<Json>) {
        let func = if numeric { "mean" } else { "last" };
        let select = pts
            .iter()
            .map(|p| format!("{func}({}) AS {}", ident(p.name), ident(p.name)))
            .collect::<Vec<_>>()
            .join(", ");
        let query = format!(
            "SELECT {select} FROM {} WHERE {} GROUP BY time($__interval), \"device\" fill(none)",
            ident(kind.as_str()),
            where_clause(&var_filters())
        );
        let mut overrides = Vec::new();
        let mut steps = Vec::new();
        for d in &devices {
            for p in pts.iter().filter(|p| maps(d, p.name)) {
                let (th, mappings) = field_props(ctx, &d.rules, p);
                if has_numeric_rule(&d.rules, p) {
                    steps.push(th.clone());
                }
                let name = if pts.len() == 1 {
                    device_title(d)
                } else {
                    format!("{} · {}", device_title(d), point_label(ctx, p))
                };
                overrides.push(panels::override_by_name(
                    &format!("{} {}", d.meta.id, p.name),
                    vec![
                        ("displayName", json!(name)),
                        ("thresholds", th),
                        ("mappings", mappings),
                    ],
                ));
            }
        }
        (
            vec![target("A", &query, "$tag_device $col", false)],
            overrides,
            steps,
        )
    };
    for (_, pts) in &groups {
        let p = pts[0];
        let (targets, overrides, steps) = series_panel(pts, true);
        // Threshold lines only when every series has the same steps.
        let shared = !steps.is_empty()
            && steps.len() == overrides.len()
            && steps.windows(2).all(|w| w[0] == w[1]);
        let defaults = panels::defaults(
            grafana_unit(p.unit),
            steps
                .first()
                .cloned()
                .unwrap_or_else(thresholds::info_thresholds),
            vec![],
            "palette-classic",
        );
        let title = group_label(ctx, p);
        l.place(
            panels::timeseries(&title, targets, defaults, overrides, shared),
            12,
            8,
        );
    }
    if !states.is_empty() {
        let (targets, overrides, _) = series_panel(&states, false);
        let rows = overrides.len() as u32;
        let defaults = panels::defaults("", thresholds::info_thresholds(), vec![], "thresholds");
        let title = format!(
            "{} — {}",
            kind_title(ctx, kind),
            ctx.t("trạng thái", "states")
        );
        l.newline();
        l.place(
            panels::state_timeline(&title, targets, defaults, overrides),
            24,
            (rows + 3).clamp(5, 20),
        );
    }
}

fn device_stats(ctx: &Ctx<'_>, l: &mut Layout, kind: Kind, h: u32) {
    let devs: Vec<&DeviceConfig> = ctx.devices(kind).collect();
    if devs.is_empty() {
        return;
    }
    let w = (24 / devs.len().min(4) as u32).max(6);
    for d in devs {
        l.place(device_stat(ctx, d), w, h);
    }
    l.newline();
}

fn kind_title(ctx: &Ctx<'_>, kind: Kind) -> &'static str {
    let (vi, en) = match kind {
        Kind::Ups => ("UPS", "UPS"),
        Kind::Generator => ("Máy phát điện", "Generator"),
        Kind::Cooling => ("Điều hòa chính xác", "Precision cooling"),
        Kind::Climate => ("Nhiệt độ, độ ẩm", "Temperature and humidity"),
        Kind::FirePanel => ("Báo cháy", "Fire panel"),
        Kind::Leak => ("Rò nước", "Water leak"),
        Kind::Door => ("Cửa", "Doors"),
        Kind::Nvr => ("Đầu ghi camera", "Camera recorder"),
        Kind::Surge => ("Chống sét", "Surge protection"),
        Kind::PowerMeter => ("Điện lưới, ATS", "Mains and ATS"),
        Kind::Gateway => ("Gateway", "Gateway"),
        Kind::Ats => ("Bộ chuyển nguồn tự động (ATS)", "Transfer switch (ATS)"),
    };
    match ctx.site.language {
        Language::En => en,
        _ => vi,
    }
}

/// Value mappings of the `alarm` measurement's columns for tables.
fn alarm_overrides(ctx: &Ctx<'_>) -> Vec<Json> {
    let state_map = json!([{"type": "value", "options": {
        "0": {"text": ctx.t("đã hết", "cleared"), "color": OK, "index": 0},
        "1": {"text": ctx.t("đang báo", "raised"), "color": SERIOUS, "index": 1},
        "2": {"text": ctx.t("đã xác nhận", "acknowledged"), "color": NORMAL, "index": 2},
        "3": {"text": ctx.t("tạm ẩn", "shelved"), "color": INFO, "index": 3},
    }}]);
    let level_map = json!([{"type": "value", "options": {
        "normal": {"text": ctx.t("thông thường", "normal"), "color": NORMAL, "index": 0},
        "serious": {"text": ctx.t("nghiêm trọng", "serious"), "color": SERIOUS, "index": 1},
    }}]);
    let mut names = serde_json::Map::new();
    for (i, d) in ctx.site.devices.iter().enumerate() {
        names.insert(
            d.meta.id.to_string(),
            json!({"text": device_title(d), "index": i}),
        );
    }
    let cell = |mode: &str| json!({"type": mode});
    vec![
        panels::override_by_name(
            "state",
            vec![
                ("displayName", json!(ctx.t("Trạng thái", "State"))),
                ("mappings", state_map),
                ("custom.cellOptions", cell("color-background")),
            ],
        ),
        panels::override_by_name(
            "level",
            vec![
                ("displayName", json!(ctx.t("Mức", "Level"))),
                ("mappings", level_map),
                ("custom.cellOptions", cell("color-text")),
            ],
        ),
        panels::override_by_name(
            "device",
            vec![
                ("displayName", json!(ctx.t("Thiết bị", "Device"))),
                ("mappings", json!([{"type": "value", "options": names}])),
            ],
        ),
        panels::override_by_name(
            "message",
            vec![("displayName", json!(ctx.t("Nội dung", "Message")))],
        ),
    ]
}

/// The active alarms: per device and rule the latest event, kept when its state is not
/// "cleared".
fn active_alarms_panel(ctx: &Ctx<'_>) -> Json {
    let query = format!(
        "SELECT last(\"state\") AS \"state\", \"level\" AS \"level\", \"point\" AS \"point\", \"value\" AS \"value\", \"threshold\" AS \"threshold\", \"message\" AS \"message\" FROM \"alarm\" WHERE {} GROUP BY \"device\", \"rule\"",
        where_clause(&[])
    );
    let transformations = vec![
        json!({"id": "merge", "options": {}}),
        json!({"id": "filterByValue", "options": {
            "type": "include",
            "match": "any",
            "filters": [{"fieldName": "state", "config": {"id": "greater", "options": {"value": 0}}}]
        }}),
        json!({"id": "sortBy", "options": {"sort": [{"field": "level", "desc": true}]}}),
    ];
    let defaults = panels::defaults("", thresholds::info_thresholds(), vec![], "thresholds");
    let mut p = panels::table(
        ctx.t("Cảnh báo đang hoạt động", "Active alarms"),
        vec![target("A", &query, "", true)],
        defaults,
        alarm_overrides(ctx),
        transformations,
    );
    // An alarm raised weeks ago and still active must stay on the wall.
    p["timeFrom"] = json!("30d");
    p["hideTimeOverride"] = json!(true);
    p
}

fn site_var(ctx: &Ctx<'_>) -> Json {
    panels::tag_variable(
        "site",
        ctx.t("Trạm", "Site"),
        "SHOW TAG VALUES WITH KEY = \"site\"",
        Some(&ctx.site.name),
    )
}

fn room_var(ctx: &Ctx<'_>) -> Json {
    panels::tag_variable(
        "room",
        ctx.t("Phòng", "Room"),
        "SHOW TAG VALUES WITH KEY = \"room\" WHERE \"site\" =~ /^$site$/",
        None,
    )
}

fn device_var(ctx: &Ctx<'_>) -> Json {
    panels::tag_variable(
        "device",
        ctx.t("Thiết bị", "Device"),
        "SHOW TAG VALUES WITH KEY = \"device\" WHERE \"site\" =~ /^$site$/ AND \"room\" =~ /^$room$/",
        None,
    )
}

fn alarm_annotation(ctx: &Ctx<'_>) -> Json {
    json!({
        "name": ctx.t("Sự kiện cảnh báo", "Alarm events"),
        "datasource": panels::ds(),
        "enable": true,
        "hide": false,
        "iconColor": "red",
        "target": {
            "refId": "Anno",
            "query": format!("SELECT \"message\" AS \"message\", \"device\" AS \"device\", \"rule\" AS \"rule\", \"level\" AS \"level\" FROM \"alarm\" WHERE {} AND \"state\" = 1", where_clause(&[])),
            "rawQuery": true,
            "fromAnnotations": true,
            "textEditor": true,
            "textColumn": "message",
            "tagsColumn": "device,rule,level"
        }
    })
}

fn builtin_annotation() -> Json {
    json!({
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": true,
        "hide": true,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard"
    })
}

/// A dashboard around `panels`.
#[allow(clippy::too_many_arguments)]
fn dashboard(
    ctx: &Ctx<'_>,
    key: &str,
    title: &str,
    panels: Vec<Json>,
    vars: Vec<Json>,
    annotations: bool,
    from: &str,
    refresh: &str,
) -> Json {
    let mut list = vec![builtin_annotation()];
    if annotations {
        list.push(alarm_annotation(ctx));
    }
    json!({
        "uid": super::uid(&ctx.site.name, key),
        "title": format!("{} — {}", ctx.site.title, title),
        "description": format!("{} ({})", ctx.t("Sinh bởi dc-gateway dashboards cho trạm", "Generated by dc-gateway dashboards for site"), ctx.site.name),
        "tags": ["dc-gateway", ctx.site.name.to_string(), key],
        "timezone": ctx.time_zone,
        "editable": true,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": false,
        "refresh": refresh,
        "schemaVersion": super::SCHEMA_VERSION,
        "version": 1,
        "time": {"from": from, "to": "now"},
        "timepicker": {"refresh_intervals": ["10s", "30s", "1m", "5m"]},
        "weekStart": "monday",
        "links": [{
            "title": ctx.t("Bảng khác", "Other dashboards"),
            "type": "dashboards",
            "tags": ["dc-gateway", ctx.site.name.to_string()],
            "asDropdown": true,
            "icon": "external link",
            "includeVars": true,
            "keepTime": true,
            "targetBlank": false,
            "tooltip": ""
        }],
        "annotations": {"list": list},
        "templating": {"list": vars},
        "panels": panels,
    })
}

/// Wall view for a 1920×1080 kiosk: one row per room with a stat panel per device,
/// then the active alarms. Heights shrink with the number of rooms so it fits.
pub(super) fn wall(ctx: &Ctx<'_>) -> Json {
    let mut l = Layout::new();
    let rooms: Vec<_> = ctx
        .site
        .rooms
        .iter()
        .filter(|r| ctx.site.devices.iter().any(|d| d.meta.room == r.id))
        .collect();
    // A 1080-pixel kiosk shows about 28 grid units; keep 8 for the alarms table.
    let lines: u32 = rooms
        .iter()
        .map(|r| {
            let n = ctx
                .site
                .devices
                .iter()
                .filter(|d| d.meta.room == r.id)
                .count() as u32;
            n.div_ceil(6).max(1)
        })
        .sum();
    let budget = 28u32.saturating_sub(8 + rooms.len() as u32);
    let h = (budget / lines.max(1)).clamp(3, 6);
    for r in rooms {
        l.row(&r.name);
        let devs: Vec<&DeviceConfig> = ctx
            .site
            .devices
            .iter()
            .filter(|d| d.meta.room == r.id)
            .collect();
        let w = (24 / devs.len().clamp(1, 6) as u32).max(4);
        for d in devs {
            l.place(device_stat(ctx, d), w, h);
        }
    }
    l.row(ctx.t("Cảnh báo", "Alarms"));
    l.place(active_alarms_panel(ctx), 24, 7);
    let mut d = dashboard(
        ctx,
        "wall",
        ctx.t("Màn hình tổng quan", "Wall view"),
        l.panels,
        vec![site_var(ctx)],
        false,
        "now-5m",
        "10s",
    );
    d["description"] = json!(format!(
        "{} {}",
        ctx.t(
            "Chế độ kiosk 1920×1080: thêm ?kiosk vào địa chỉ.",
            "Kiosk 1920x1080: add ?kiosk to the URL."
        ),
        d["description"].as_str().unwrap_or_default()
    ));
    d
}

/// A system dashboard: `first` panels, then per kind a row with each device's stat
/// panel and the kind's detail panels, then `last` panels.
fn system_board(
    ctx: &Ctx<'_>,
    key: &str,
    title: &str,
    kinds: &[Kind],
    first: impl FnOnce(&mut Layout),
    extra: impl FnOnce(&mut Layout),
) -> Json {
    let mut l = Layout::new();
    first(&mut l);
    for &kind in kinds {
        if !ctx.has_kind(kind) {
            continue;
        }
        l.row(kind_title(ctx, kind));
        device_stats(ctx, &mut l, kind, 4);
        kind_point_panels(ctx, &mut l, kind);
    }
    extra(&mut l);
    dashboard(
        ctx,
        key,
        title,
        l.panels,
        vec![site_var(ctx), room_var(ctx), device_var(ctx)],
        true,
        "now-6h",
        "30s",
    )
}

/// Power: mains (power meters, the generator controller's mains sensing), UPS,
/// generator (its runs as a state timeline), and the power path at a glance.
pub(super) fn power(ctx: &Ctx<'_>) -> Json {
    let kinds = [Kind::PowerMeter, Kind::Ups, Kind::Generator];
    let mut path: Vec<(Kind, &str)> = Vec::new();
    for (kind, point) in [
        (Kind::PowerMeter, "mains_present"),
        (Kind::Generator, "mains_available"),
        (Kind::Ups, "on_battery"),
        (Kind::Generator, "engine_running"),
    ] {
        if ctx.devices(kind).any(|d| maps(d, point)) {
            path.push((kind, point));
        }
    }
    let title = ctx.t("Nguồn điện", "Power");
    let path_title = ctx.t(
        "Đường cấp điện: lưới, ATS, UPS, các lần chạy máy phát",
        "Power path: mains, ATS, UPS, generator runs",
    );
    let first = |l: &mut Layout| {
        if path.is_empty() {
            return;
        }
        l.row(path_title);
        let mut targets = Vec::new();
        let mut overrides = Vec::new();
        for (i, (kind, point)) in path.iter().enumerate() {
            let q = format!(
                "SELECT last({}) AS {} FROM {} WHERE {} GROUP BY time($__interval), \"device\" fill(none)",
                ident(point),
                ident(point),
                ident(kind.as_str()),
                where_clause(&var_filters())
            );
            let ref_id = ((b'A' + i as u8) as char).to_string();
            targets.push(target(&ref_id, &q, &format!("$tag_device {point}"), false));
            for d in ctx.devices(*kind).filter(|d| maps(d, point)) {
                let Some(p) = points::lookup(*kind, point) else {
                    continue;
                };
                let (_, mappings) = field_props(ctx, &d.rules, p);
                overrides.push(panels::override_by_name(
                    &format!("{} {point}", d.meta.id),
                    vec![
                        (
                            "displayName",
                            json!(format!("{} · {}", device_title(d), point_label(ctx, p))),
                        ),
                        ("mappings", mappings),
                    ],
                ));
            }
        }
        let defaults = panels::defaults("", thresholds::info_thresholds(), vec![], "thresholds");
        let rows = overrides.len() as u32;
        l.place(
            panels::state_timeline(path_title, targets, defaults, overrides),
            24,
            (rows + 3).clamp(5, 12),
        );
    };
    system_board(ctx, "power", title, &kinds, first, |_| {})
}

/// Precision cooling units, and the room temperatures they hold.
pub(super) fn cooling(ctx: &Ctx<'_>) -> Json {
    let has_climate = ctx.devices(Kind::Climate).any(|d| maps(d, "temperature_c"));
    let room_title = ctx.t(
        "Nhiệt độ trung bình theo phòng",
        "Mean temperature per room",
    );
    system_board(
        ctx,
        "cooling",
        ctx.t("Điều hòa", "Cooling"),
        &[Kind::Cooling],
        |_| {},
        |l| {
            if !has_climate {
                return;
            }
            l.row(room_title);
            let q = format!(
                "SELECT mean(\"temperature_c\") AS \"temperature_c\" FROM \"climate\" WHERE {} GROUP BY time($__interval), \"room\" fill(none)",
                where_clause(&["\"room\" =~ /^$room$/".to_string()])
            );
            let mut overrides = Vec::new();
            for r in &ctx.site.rooms {
                if ctx
                    .devices(Kind::Climate)
                    .any(|d| d.meta.room == r.id && maps(d, "temperature_c"))
                {
                    overrides.push(panels::override_by_name(
                        &r.id,
                        vec![("displayName", json!(r.name))],
                    ));
                }
            }
            let defaults = panels::defaults(
                "celsius",
                thresholds::info_thresholds(),
                vec![],
                "palette-classic",
            );
            l.place(
                panels::timeseries(
                    room_title,
                    vec![target("A", &q, "$tag_room", false)],
                    defaults,
                    overrides,
                    false,
                ),
                24,
                8,
            );
        },
    )
}

/// Climate: the rack heat map (inlet temperature per rack over time, coloured by each
/// sensor's thresholds), dew point, humidity.
pub(super) fn climate(ctx: &Ctx<'_>) -> Json {
    let sensors: Vec<&DeviceConfig> = ctx
        .devices(Kind::Climate)
        .filter(|d| maps(d, "temperature_c"))
        .collect();
    let heat_title = ctx.t(
        "Bản đồ nhiệt theo tủ rack (nhiệt độ gió vào)",
        "Rack heat map (inlet temperature)",
    );
    let mut l = Layout::new();
    let temperature = points::lookup(Kind::Climate, "temperature_c");
    if let (false, Some(p)) = (sensors.is_empty(), temperature) {
        l.row(heat_title);
        let q = format!(
            "SELECT mean(\"temperature_c\") AS \"temperature_c\" FROM \"climate\" WHERE {} GROUP BY time($__interval), \"device\" fill(none)",
            where_clause(&var_filters())
        );
        let mut overrides = Vec::new();
        for d in &sensors {
            let (th, _) = field_props(ctx, &d.rules, p);
            let name = match &d.location {
                Some(loc) => format!("{} · {loc}", device_title(d)),
                None => device_title(d),
            };
            overrides.push(panels::override_by_name(
                &d.meta.id,
                vec![("displayName", json!(name)), ("thresholds", th)],
            ));
        }
        let mut defaults = panels::defaults(
            "celsius",
            thresholds::info_thresholds(),
            vec![],
            "thresholds",
        );
        defaults["decimals"] = json!(1);
        let h = (sensors.len() as u32 + 2).clamp(6, 16);
        l.place(
            panels::status_history(
                heat_title,
                vec![target("A", &q, "$tag_device", false)],
                defaults,
                overrides,
            ),
            24,
            h,
        );
    }
    system_board(
        ctx,
        "climate",
        ctx.t("Môi trường", "Climate"),
        &[Kind::Climate],
        move |first| *first = l,
        |_| {},
    )
}

/// Alarms and incidents: events as annotations, the active set, the event log and the
/// count of raised events per level.
pub(super) fn alarms(ctx: &Ctx<'_>) -> Json {
    let mut l = Layout::new();
    l.place(active_alarms_panel(ctx), 24, 8);
    let dev_filter = vec!["\"device\" =~ /^$device$/".to_string()];
    let q = format!(
        "SELECT count(\"state\") AS \"raised\" FROM \"alarm\" WHERE {} AND \"state\" = 1 GROUP BY time($__interval), \"level\" fill(none)",
        where_clause(&dev_filter)
    );
    let mut defaults =
        panels::defaults("", thresholds::info_thresholds(), vec![], "palette-classic");
    defaults["custom"] = json!({});
    let overrides = vec![
        panels::override_by_name(
            "normal",
            vec![
                ("color", json!({"mode": "fixed", "fixedColor": NORMAL})),
                ("displayName", json!(ctx.t("thông thường", "normal"))),
            ],
        ),
        panels::override_by_name(
            "serious",
            vec![
                ("color", json!({"mode": "fixed", "fixedColor": SERIOUS})),
                ("displayName", json!(ctx.t("nghiêm trọng", "serious"))),
            ],
        ),
    ];
    let mut ts = panels::timeseries(
        ctx.t("Số cảnh báo phát sinh theo mức", "Alarms raised per level"),
        vec![target("A", &q, "$tag_level", false)],
        defaults,
        overrides,
        false,
    );
    ts["fieldConfig"]["defaults"]["custom"]["drawStyle"] = json!("bars");
    ts["fieldConfig"]["defaults"]["custom"]["fillOpacity"] = json!(80);
    l.place(ts, 24, 7);
    let q = format!(
        "SELECT \"state\" AS \"state\", \"level\" AS \"level\", \"device\" AS \"device\", \"rule\" AS \"rule\", \"point\" AS \"point\", \"value\" AS \"value\", \"threshold\" AS \"threshold\", \"message\" AS \"message\", \"seq\" AS \"seq\" FROM \"alarm\" WHERE {} ORDER BY time DESC LIMIT 1000",
        where_clause(&dev_filter)
    );
    let defaults = panels::defaults("", thresholds::info_thresholds(), vec![], "thresholds");
    l.place(
        panels::table(
            ctx.t("Nhật ký sự kiện cảnh báo", "Alarm event log"),
            vec![target("A", &q, "", true)],
            defaults,
            alarm_overrides(ctx),
            vec![],
        ),
        24,
        12,
    );
    dashboard(
        ctx,
        "alarms",
        ctx.t("Cảnh báo và sự cố", "Alarms and incidents"),
        l.panels,
        vec![site_var(ctx), room_var(ctx), device_var(ctx)],
        true,
        "now-24h",
        "30s",
    )
}

/// The gateway's own device id, as the runtime picks it (`gateway`, or
/// `gateway-self` when a configured device already is `gateway`).
pub(super) fn gateway_id(site: &Site) -> &'static str {
    if site.devices.iter().any(|d| d.meta.id.as_ref() == "gateway") {
        "gateway-self"
    } else {
        "gateway"
    }
}

/// The points the runtime's self-monitor writes for the gateway every 10 s.
pub(super) const GATEWAY_WRITTEN: &[&str] = &[
    "buffer_used_pct",
    "uptime_s",
    "sink_failing_s",
    "sink_auth_failed",
];

/// Gateway health: sinks (failing time, refused credentials), the buffer, uptime, and
/// every device's communication.
pub(super) fn gateway(ctx: &Ctx<'_>) -> Json {
    let mut l = Layout::new();
    let gw = gateway_id(ctx.site);
    let rules = crate::rules::defaults(Kind::Gateway);
    l.row(ctx.t(
        "Gateway: bộ đệm và kết nối đầu ra",
        "Gateway: buffer and sinks",
    ));
    for name in GATEWAY_WRITTEN {
        let Some(p) = points::lookup(Kind::Gateway, name) else {
            continue;
        };
        let q = format!(
            "SELECT {} FROM \"gateway\" WHERE {}",
            select_last(&[name]),
            where_clause(&[format!("\"device\" = {}", lit(gw))])
        );
        let (th, mappings) = field_props(ctx, &rules, p);
        let mut defaults = panels::defaults(
            grafana_unit(p.unit),
            th,
            mappings.as_array().cloned().unwrap_or_default(),
            "thresholds",
        );
        defaults["noValue"] = json!(ctx.t("không có dữ liệu", "no data"));
        let mut s = panels::stat(
            &point_label(ctx, p),
            vec![target("A", &q, "$col", false)],
            defaults,
            vec![],
        );
        s["description"] = json!(p.doc);
        l.place(s, 6, 4);
    }
    for name in ["buffer_used_pct", "sink_failing_s"] {
        let Some(p) = points::lookup(Kind::Gateway, name) else {
            continue;
        };
        let q = format!(
            "SELECT max({}) AS {} FROM \"gateway\" WHERE {} GROUP BY time($__interval), \"device\" fill(none)",
            ident(name),
            ident(name),
            where_clause(&[format!("\"device\" = {}", lit(gw))])
        );
        let (th, _) = field_props(ctx, &rules, p);
        let defaults = panels::defaults(grafana_unit(p.unit), th, vec![], "palette-classic");
        l.place(
            panels::timeseries(
                &point_label(ctx, p),
                vec![target("A", &q, "$tag_device", false)],
                defaults,
                vec![],
                true,
            ),
            12,
            8,
        );
    }
    // Every device's communication (comm_ok on every poll), across all its kinds.
    let mut kinds: Vec<Kind> = ctx.site.devices.iter().map(|d| d.meta.kind).collect();
    kinds.sort();
    kinds.dedup();
    if !kinds.is_empty() {
        l.row(ctx.t("Kết nối thiết bị", "Device communication"));
        let from = kinds
            .iter()
            .map(|k| ident(k.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let q = format!(
            "SELECT last(\"comm_ok\") AS \"comm_ok\" FROM {from} WHERE {} GROUP BY time($__interval), \"device\" fill(none)",
            where_clause(&var_filters())
        );
        let mut overrides = Vec::new();
        for d in &ctx.site.devices {
            overrides.push(panels::override_by_name(
                &d.meta.id,
                vec![
                    ("displayName", json!(device_title(d))),
                    (
                        "mappings",
                        json!(thresholds::comm_mappings(&d.rules, comm_texts(ctx))),
                    ),
                ],
            ));
        }
        let defaults = panels::defaults("", thresholds::info_thresholds(), vec![], "thresholds");
        let h = (ctx.site.devices.len() as u32 + 2).clamp(6, 20);
        l.place(
            panels::state_timeline(
                ctx.t("Kết nối theo thiết bị", "Communication per device"),
                vec![target("A", &q, "$tag_device", false)],
                defaults,
                overrides,
            ),
            24,
            h,
        );
    }
    dashboard(
        ctx,
        "gateway",
        ctx.t("Tình trạng gateway", "Gateway health"),
        l.panels,
        vec![site_var(ctx), room_var(ctx), device_var(ctx)],
        true,
        "now-6h",
        "30s",
    )
}
