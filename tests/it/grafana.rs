//! The shipped Grafana dashboards (`dashboards/`, generated for the demo site by
//! `dc-gateway dashboards --demo`) checked against the real things they depend on:
//!
//! - InfluxDB 1.6 with what the demo gateway really writes: every panel query, every
//!   annotation query and every template variable query runs and returns series with
//!   the columns the panel reads; every measurement, tag and field a query names is one
//!   the gateway writes and `docs/POINTS.md` / `docs/INTERFACES.md` list.
//! - Grafana's own published dashboard types (npm `@grafana/schema`, pinned to the
//!   Grafana release of `SCHEMA_VERSION`), with the TypeScript compiler.
//!
//! That the files equal the generator's output is a unit test
//! (`dashboards::tests::shipped_dashboards_are_the_generators_output`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::peers::{Influx1, repo_root};

/// The shipped dashboards, by file name.
fn shipped() -> Vec<(String, Json)> {
    let dir = repo_root().join("dashboards");
    let mut out = Vec::new();
    for name in dc_gateway::dashboards::BOARDS {
        let path = dir.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v: Json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        out.push((format!("{name}.json"), v));
    }
    out
}

/// Every panel, including panels nested in collapsed rows.
fn panels(board: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for p in board["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner);
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Type check with tsc against @grafana/schema.
// ---------------------------------------------------------------------------------

/// The published type module of a panel plugin's options and field config.
fn panel_module(ty: &str) -> Option<(&'static str, &'static str, bool)> {
    // (module dir, type prefix, has FieldConfig)
    match ty {
        "stat" => Some(("stat/panelcfg/x/StatPanelCfg_types.gen", "Stat", false)),
        "timeseries" => Some(("timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen", "TimeSeries", true)),
        "state-timeline" => Some(("statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen", "StateTimeline", true)),
        "status-history" => Some(("statushistory/panelcfg/x/StatusHistoryPanelCfg_types.gen", "StatusHistory", true)),
        "table" => Some(("table/panelcfg/x/TablePanelCfg_types.gen", "Table", true)),
        _ => None,
    }
}

/// A TypeScript module that assigns the dashboard, each panel's options, field config
/// and targets to Grafana's published types.
fn typescript_for(name: &str, board: &Json) -> String {
    let mut imports = BTreeSet::new();
    let mut body = String::new();
    for p in panels(board) {
        let ty = p["type"].as_str().unwrap_or_default();
        if ty == "row" {
            continue;
        }
        let id = p["id"].as_u64().expect("every panel has a numeric id");
        let (module, prefix, has_custom) = panel_module(ty)
            .unwrap_or_else(|| panic!("{name}: panel {id} has type {ty:?}, which the check does not know"));
        imports.insert(format!(
            "import type {{ Options as {prefix}Options{} }} from '@grafana/schema/dist/esm/raw/composable/{module}';",
            if has_custom { format!(", FieldConfig as {prefix}FieldConfig") } else { String::new() }
        ));
        body.push_str(&format!(
            "export const panel{id}_options: Json<{prefix}Options> = {};\n",
            p["options"]
        ));
        if has_custom {
            let custom = &p["fieldConfig"]["defaults"]["custom"];
            let custom = if custom.is_null() { Json::Object(Default::default()) } else { custom.clone() };
            body.push_str(&format!(
                "export const panel{id}_custom: Json<Partial<{prefix}FieldConfig>> = {custom};\n"
            ));
        }
        body.push_str(&format!(
            "export const panel{id}_targets: Json<InfluxQuery>[] = {};\n",
            p["targets"]
        ));
        // Override values are `unknown` in the model; check the ones we write by the
        // type their property id means.
        let overrides = p["fieldConfig"]["overrides"].as_array().cloned().unwrap_or_default();
        for (i, o) in overrides.iter().enumerate() {
            for (j, prop) in o["properties"].as_array().into_iter().flatten().enumerate() {
                let ty = match prop["id"].as_str().unwrap_or_default() {
                    "thresholds" => "Json<ThresholdsConfig>",
                    "mappings" => "Json<ValueMapping>[]",
                    "color" => "Json<FieldColor>",
                    "displayName" | "unit" => "string",
                    "custom.cellOptions" => "Json<TableCellOptions>",
                    other => panic!("{name}: panel {id}: override property {other:?} has no type in the check"),
                };
                body.push_str(&format!(
                    "export const panel{id}_override{i}_{j}: {ty} = {};\n",
                    prop["value"]
                ));
            }
        }
    }
    let mut ts = String::from(
        "import type { Dashboard, AnnotationQuery, ThresholdsConfig, ValueMapping, FieldColor, TableCellOptions } from '@grafana/schema';\n\
         import type { Json, InfluxQuery } from '../grafana/prelude';\n",
    );
    for i in imports {
        ts.push_str(&i);
        ts.push('\n');
    }
    ts.push_str(
        "type Board = Json<Omit<Dashboard, 'annotations'>> & {\n  \
         annotations?: { list?: Json<AnnotationQuery<InfluxQuery>>[] };\n};\n",
    );
    ts.push_str(&format!("export const dashboard: Board = {board};\n"));
    ts.push_str(&body);
    ts
}

#[test]
fn shipped_dashboards_type_check_against_grafana_schema() {
    let web = repo_root().join("tests/web");
    let tsc = web.join("node_modules/typescript/bin/tsc");
    let schema = web.join("node_modules/@grafana/schema/package.json");
    assert!(
        tsc.is_file() && schema.is_file(),
        "tests/web/node_modules lacks typescript or @grafana/schema. Install them with:\n    \
         (cd tests/web && npm ci)\nor run ./tests/run.sh (needs node and npm: apt-get install -y nodejs npm)"
    );
    let node = crate::peers::require_bin("node", "apt-get install -y nodejs npm");
    // The pinned schema package is the Grafana release the JSON claims.
    let pkg: Json = serde_json::from_str(&std::fs::read_to_string(&schema).unwrap()).unwrap();
    let version = pkg["version"].as_str().unwrap_or_default().to_string();
    assert!(
        version.starts_with(&format!("{}.", dc_gateway::dashboards::GRAFANA_VERSION)),
        "@grafana/schema {version} is not Grafana {}",
        dc_gateway::dashboards::GRAFANA_VERSION
    );
    let defaults = std::fs::read_to_string(web.join("node_modules/@grafana/schema/dist/esm/raw/dashboard/x/types.gen.mjs")).unwrap();
    assert!(
        defaults.contains(&format!("schemaVersion: {}", dc_gateway::dashboards::SCHEMA_VERSION)),
        "@grafana/schema {version}'s default dashboard has another schemaVersion than {}",
        dc_gateway::dashboards::SCHEMA_VERSION
    );

    let dir = tempfile::Builder::new()
        .prefix("grafana-check-")
        .tempdir_in(&web)
        .expect("temp dir in tests/web");
    let mut files = Vec::new();
    for (name, board) in shipped() {
        assert_eq!(board["schemaVersion"], dc_gateway::dashboards::SCHEMA_VERSION, "{name}");
        let stem = name.trim_end_matches(".json");
        let file = format!("{stem}.ts");
        std::fs::write(dir.path().join(&file), typescript_for(&name, &board)).unwrap();
        files.push(file);
    }
    // A deliberately wrong dashboard proves the check can fail.
    let (_, wall) = &shipped()[0];
    let mut bad = wall.clone();
    bad["panels"][1]["options"]["colorMode"] = Json::from("rainbow");
    bad["graphTooltip"] = Json::from("shared");
    // An override's thresholds are checked too (typed from the property id).
    bad["panels"][1]["fieldConfig"]["overrides"][0]["properties"][1]["value"]["mode"] = Json::from("amber");
    std::fs::write(dir.path().join("broken.ts"), typescript_for("broken", &bad)).unwrap();
    let tsconfig = serde_json::json!({
        "compilerOptions": {
            "strict": true,
            "noEmit": true,
            "target": "es2022",
            "module": "esnext",
            "moduleResolution": "bundler",
            "skipLibCheck": true,
            "types": []
        },
        "files": files
    });
    std::fs::write(dir.path().join("tsconfig.json"), tsconfig.to_string()).unwrap();
    let run = |project: &Path| {
        Command::new(&node)
            .arg(&tsc)
            .arg("-p")
            .arg(project)
            .current_dir(&web)
            .output()
            .expect("run tsc")
    };
    let out = run(&dir.path().join("tsconfig.json"));
    assert!(
        out.status.success(),
        "tsc rejects the shipped dashboards:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let broken = serde_json::json!({
        "compilerOptions": tsconfig["compilerOptions"].clone(),
        "files": ["broken.ts"]
    });
    std::fs::write(dir.path().join("tsconfig.broken.json"), broken.to_string()).unwrap();
    let out = run(&dir.path().join("tsconfig.broken.json"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "tsc accepted a broken dashboard");
    assert!(text.contains("rainbow"), "{text}");
    assert!(text.contains("DashboardCursorSync"), "{text}");
    assert!(text.contains("\"amber\""), "{text}");
}
