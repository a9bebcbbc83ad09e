//! Grafana panel JSON (classic dashboard model) and the InfluxQL that feeds it.
//!
//! Every query is raw InfluxQL in one regular style, so tools and tests can read it:
//! identifiers (measurements, tags, fields, aliases) in double quotes, string literals
//! in single quotes, every selected value named with `AS "alias"` (the column the panel
//! reads), and only the template variables `$site`, `$room`, `$device`, `$timeFilter`
//! and `$__interval`. Tag filters on variables use regular expressions
//! (`"room" =~ /^$room$/`) so "All" (`.*`) and multi-value selections work.
//!
//! [`Layout`] hands out panel ids (unique, increasing) and grid positions on Grafana's
//! 24-column grid, left to right and top to bottom, so panels never overlap.

use serde_json::{Value as Json, json};

/// Datasource uid every panel, variable and annotation uses; the provisioned
/// datasource carries the same uid.
pub const DATASOURCE_UID: &str = "dcgw-influxdb";

/// The datasource reference.
pub fn ds() -> Json {
    json!({"type": "influxdb", "uid": DATASOURCE_UID})
}

/// Where the next panel goes, and the next panel id.
#[derive(Debug)]
pub struct Layout {
    next_id: u32,
    x: u32,
    y: u32,
    row_h: u32,
    /// Panels placed so far, in order.
    pub panels: Vec<Json>,
}

impl Layout {
    /// An empty dashboard grid.
    pub fn new() -> Layout {
        Layout {
            next_id: 1,
            x: 0,
            y: 0,
            row_h: 0,
            panels: Vec::new(),
        }
    }

    /// Start a new line of panels.
    pub fn newline(&mut self) {
        if self.x > 0 {
            self.y += self.row_h;
            self.x = 0;
            self.row_h = 0;
        }
    }

    /// Place `panel` at width `w`, height `h` (wrapping to a new line when it does not
    /// fit), giving it the next id.
    pub fn place(&mut self, mut panel: Json, w: u32, h: u32) {
        let w = w.clamp(1, 24);
        if self.x + w > 24 {
            self.newline();
        }
        panel["id"] = json!(self.next_id);
        panel["gridPos"] = json!({"h": h, "w": w, "x": self.x, "y": self.y});
        self.next_id += 1;
        self.x += w;
        self.row_h = self.row_h.max(h);
        self.panels.push(panel);
    }

    /// A row header across the grid.
    pub fn row(&mut self, title: &str) {
        self.newline();
        self.place(
            json!({"type": "row", "title": title, "collapsed": false, "panels": []}),
            24,
            1,
        );
        self.newline();
    }
}

/// A raw InfluxQL target. `alias` names the series (`$tag_device $col`, `$col`): field
/// overrides match these names, so every time-series target has one (without it
/// Grafana names a series `<measurement>.<column>`). `table` asks for the table
/// result format, whose fields are named by their columns.
pub fn target(ref_id: &str, query: &str, alias: &str, table: bool) -> Json {
    let mut t = json!({
        "refId": ref_id,
        "datasource": ds(),
        "query": query,
        "rawQuery": true,
        "resultFormat": if table { "table" } else { "time_series" },
    });
    if !alias.is_empty() {
        t["alias"] = json!(alias);
    }
    t
}

/// `"site" =~ /^$site$/` plus further conditions, joined with AND, then `$timeFilter`.
pub fn where_clause(extra: &[String]) -> String {
    let mut parts = vec!["\"site\" =~ /^$site$/".to_string()];
    parts.extend(extra.iter().cloned());
    parts.push("$timeFilter".to_string());
    parts.join(" AND ")
}

/// A string literal for InfluxQL (single quotes, backslash and quote escaped).
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A quoted identifier for InfluxQL.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Field config defaults shared by every panel: unit, thresholds, mappings.
pub fn defaults(unit: &str, thresholds: Json, mappings: Vec<Json>, color_mode: &str) -> Json {
    let mut d = json!({
        "color": {"mode": color_mode},
        "thresholds": thresholds,
        "mappings": mappings,
    });
    if !unit.is_empty() {
        d["unit"] = json!(unit);
    }
    d
}

/// An override of the field named `name` (a column alias or a series name).
pub fn override_by_name(name: &str, properties: Vec<(&str, Json)>) -> Json {
    let props: Vec<Json> = properties
        .into_iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect();
    json!({"matcher": {"id": "byName", "options": name}, "properties": props})
}

/// A stat panel: the last non-null value of each field, background-coloured.
pub fn stat(title: &str, targets: Vec<Json>, defaults: Json, overrides: Vec<Json>) -> Json {
    json!({
        "type": "stat",
        "title": title,
        "datasource": ds(),
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
            "orientation": "horizontal",
            "textMode": "value_and_name",
            "wideLayout": true,
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "showPercentChange": false,
            "percentChangeColorMode": "standard",
            "text": {}
        }
    })
}

/// A time series panel; thresholds drawn as dashed lines when `show_thresholds`.
pub fn timeseries(
    title: &str,
    targets: Vec<Json>,
    mut defaults: Json,
    overrides: Vec<Json>,
    show_thresholds: bool,
) -> Json {
    defaults["custom"] = json!({
        "drawStyle": "line",
        "lineWidth": 2,
        "fillOpacity": 0,
        "showPoints": "never",
        "spanNulls": false,
        "thresholdsStyle": {"mode": if show_thresholds { "dashed" } else { "off" }}
    });
    json!({
        "type": "timeseries",
        "title": title,
        "datasource": ds(),
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": []},
            "tooltip": {"mode": "multi", "sort": "none"}
        }
    })
}

/// A state timeline (booleans and enumerations over time, coloured by mappings).
pub fn state_timeline(
    title: &str,
    targets: Vec<Json>,
    defaults: Json,
    overrides: Vec<Json>,
) -> Json {
    json!({
        "type": "state-timeline",
        "title": title,
        "datasource": ds(),
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {
            "showValue": "auto",
            "mergeValues": true,
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": false, "calcs": []},
            "tooltip": {"mode": "single", "sort": "none"}
        }
    })
}

/// A status history: one row per series, each time bucket coloured by thresholds (the
/// rack heat map).
pub fn status_history(
    title: &str,
    targets: Vec<Json>,
    defaults: Json,
    overrides: Vec<Json>,
) -> Json {
    json!({
        "type": "status-history",
        "title": title,
        "datasource": ds(),
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {
            "showValue": "auto",
            "rowHeight": 0.9,
            "colWidth": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": false, "calcs": []},
            "tooltip": {"mode": "single", "sort": "none"}
        }
    })
}

/// A table panel.
pub fn table(
    title: &str,
    targets: Vec<Json>,
    defaults: Json,
    overrides: Vec<Json>,
    transformations: Vec<Json>,
) -> Json {
    json!({
        "type": "table",
        "title": title,
        "datasource": ds(),
        "targets": targets,
        "transformations": transformations,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {
            "showHeader": true,
            "cellHeight": "sm",
            "frameIndex": 0
        }
    })
}

/// A query template variable over a tag's values (`SHOW TAG VALUES`), multi-value with
/// "All" = `.*`.
pub fn tag_variable(name: &str, label: &str, query: &str, current: Option<&str>) -> Json {
    let (text, value) = match current {
        Some(v) => (json!(v), json!(v)),
        None => (json!("All"), json!("$__all")),
    };
    json!({
        "type": "query",
        "name": name,
        "label": label,
        "datasource": ds(),
        "query": query,
        "refresh": 1,
        "sort": 1,
        "multi": current.is_none(),
        "includeAll": current.is_none(),
        "allValue": ".*",
        "current": {"text": text, "value": value},
        "options": [],
        "hide": 0
    })
}
