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
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::peers::{Influx1, repo_root};

/// The shipped dashboards, by file name.
fn shipped() -> Vec<(String, Json)> {
    boards_in(&repo_root().join("dashboards"))
}

/// The dashboards `dc-gateway dashboards` wrote into `dir`, by file name.
fn boards_in(dir: &Path) -> Vec<(String, Json)> {
    let mut out = Vec::new();
    for name in dc_gateway::dashboards::BOARDS {
        let path = dir.join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
// The command on a site file.
// ---------------------------------------------------------------------------------

/// Runs `dc-gateway dashboards` on tests/cases/grafana-site/site.toml into a temp dir.
fn generate_case_site() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["dashboards", "--config"])
        .arg(repo_root().join("tests/cases/grafana-site/site.toml"))
        .arg("--out")
        .arg(out.path())
        .args(["--time-zone", "UTC"])
        // The case site's SNMP community (a secret comes from a file or a variable).
        .env("DCGW_TEST_SNMP_COMMUNITY", "public")
        .output()
        .expect("run dc-gateway dashboards");
    assert!(
        run.status.success(),
        "dc-gateway dashboards failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let listed = String::from_utf8_lossy(&run.stdout).lines().count();
    assert_eq!(
        listed,
        dc_gateway::dashboards::BOARDS.len() + 2,
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    out
}

#[test]
fn dashboards_command_follows_the_site_file_and_reports_its_errors() {
    let out = generate_case_site();
    let boards: BTreeMap<String, Json> = boards_in(out.path()).into_iter().collect();
    let wall = &boards["wall.json"];
    assert_eq!(wall["timezone"], "UTC");
    assert_eq!(wall["uid"], "dcgw-tv-annex-wall");
    let rows: Vec<&str> = wall["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(rows, ["Server hall", "Entrance", "Alarms"]);
    // env1: site normal 26, device serious 30, room humidity 55, in English.
    let env1 = wall["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Rack row A environment (ENV-A)")
        .expect("env1's stat panel");
    let steps = |field: &str| -> Vec<(Option<f64>, String)> {
        let o = env1["fieldConfig"]["overrides"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["matcher"]["options"] == field)
            .unwrap();
        o["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "thresholds")
            .unwrap()["value"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["value"].as_f64(),
                    s["color"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let c = |v: &[(Option<f64>, &str)]| -> Vec<(Option<f64>, String)> {
        v.iter().map(|(a, b)| (*a, b.to_string())).collect()
    };
    assert_eq!(
        steps("temperature_c"),
        c(&[
            (None, "red"),
            (Some(15.0), "orange"),
            (Some(18.0), "green"),
            (Some(26.0), "orange"),
            (Some(30.0), "red")
        ])
    );
    assert_eq!(
        steps("humidity_pct"),
        c(&[
            (None, "red"),
            (Some(8.0), "green"),
            (Some(55.0), "orange"),
            (Some(80.0), "red")
        ])
    );
    let ds = std::fs::read_to_string(out.path().join("provisioning/datasources/dc-gateway.yaml"))
        .unwrap();
    assert!(ds.contains("dbName: \"dcgw-annex\""), "{ds}");
    assert!(ds.contains("url: \"http://influx.example:8086\""), "{ds}");

    // A config error: exit status 2, every problem with file:line:column, no files.
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = bad_dir.path().join("site.toml");
    std::fs::write(
        &bad,
        "[site]\nname = \"x\"\n\n[[rooms]]\nid = \"r\"\n\n[[devices]]\nid = \"t\"\nroom = \"nowhere\"\nkind = \"climate\"\nprofile = \"xy-md02\"\n[devices.modbus_tcp]\nhost = \"127.0.0.1\"\n",
    )
    .unwrap();
    let out2 = bad_dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_dc-gateway"))
        .args(["dashboards", "--config"])
        .arg(&bad)
        .arg("--out")
        .arg(&out2)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:9:", bad.display())), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    assert!(!out2.exists(), "nothing written for an invalid site");
}

// ---------------------------------------------------------------------------------
// Type check with tsc against @grafana/schema.
// ---------------------------------------------------------------------------------

/// The published type module of a panel plugin's options and field config.
fn panel_module(ty: &str) -> Option<(&'static str, &'static str, bool)> {
    // (module dir, type prefix, has FieldConfig)
    match ty {
        "stat" => Some(("stat/panelcfg/x/StatPanelCfg_types.gen", "Stat", false)),
        "timeseries" => Some((
            "timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen",
            "TimeSeries",
            true,
        )),
        "state-timeline" => Some((
            "statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen",
            "StateTimeline",
            true,
        )),
        "status-history" => Some((
            "statushistory/panelcfg/x/StatusHistoryPanelCfg_types.gen",
            "StatusHistory",
            true,
        )),
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
        let (module, prefix, has_custom) = panel_module(ty).unwrap_or_else(|| {
            panic!("{name}: panel {id} has type {ty:?}, which the check does not know")
        });
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
            let custom = if custom.is_null() {
                Json::Object(Default::default())
            } else {
                custom.clone()
            };
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
        let overrides = p["fieldConfig"]["overrides"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, o) in overrides.iter().enumerate() {
            for (j, prop) in o["properties"].as_array().into_iter().flatten().enumerate() {
                let ty = match prop["id"].as_str().unwrap_or_default() {
                    "thresholds" => "Json<ThresholdsConfig>",
                    "mappings" => "Json<ValueMapping>[]",
                    "color" => "Json<FieldColor>",
                    "displayName" | "unit" => "string",
                    "custom.cellOptions" => "Json<TableCellOptions>",
                    other => panic!(
                        "{name}: panel {id}: override property {other:?} has no type in the check"
                    ),
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
    let defaults = std::fs::read_to_string(
        web.join("node_modules/@grafana/schema/dist/esm/raw/dashboard/x/types.gen.mjs"),
    )
    .unwrap();
    assert!(
        defaults.contains(&format!(
            "schemaVersion: {}",
            dc_gateway::dashboards::SCHEMA_VERSION
        )),
        "@grafana/schema {version}'s default dashboard has another schemaVersion than {}",
        dc_gateway::dashboards::SCHEMA_VERSION
    );

    let dir = tempfile::Builder::new()
        .prefix("grafana-check-")
        .tempdir_in(&web)
        .expect("temp dir in tests/web");
    // The shipped (demo) dashboards and those of a second site with other kinds,
    // English texts and an InfluxDB 2 sink, written by the real command.
    let case = generate_case_site();
    let mut sets: Vec<(&str, Vec<(String, Json)>)> = vec![("demo", shipped())];
    sets.push(("case", boards_in(case.path())));
    let mut files = Vec::new();
    for (set, name, board) in sets
        .iter()
        .flat_map(|(set, boards)| boards.iter().map(move |(n, b)| (set, n, b)))
    {
        assert_eq!(
            board["schemaVersion"],
            dc_gateway::dashboards::SCHEMA_VERSION,
            "{name}"
        );
        let stem = name.trim_end_matches(".json");
        let file = format!("{set}-{stem}.ts");
        std::fs::write(dir.path().join(&file), typescript_for(name, board)).unwrap();
        files.push(file);
    }
    // A deliberately wrong dashboard proves the check can fail.
    let (_, wall) = &shipped()[0];
    let mut bad = wall.clone();
    bad["panels"][1]["options"]["colorMode"] = Json::from("rainbow");
    bad["graphTooltip"] = Json::from("shared");
    // An override's thresholds are checked too (typed from the property id).
    bad["panels"][1]["fieldConfig"]["overrides"][0]["properties"][1]["value"]["mode"] =
        Json::from("amber");
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

// ---------------------------------------------------------------------------------
// Contract with InfluxDB 1.6 and what the demo gateway writes.
// ---------------------------------------------------------------------------------

/// Canonical points per measurement, read from docs/POINTS.md (`## \`kind\`` headings,
/// `| \`point\` |` rows).
fn points_md() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(repo_root().join("docs/POINTS.md")).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut kind: Option<String> = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## `") {
            kind = Some(h.trim_end_matches('`').to_string());
        } else if let (Some(k), Some(row)) = (&kind, line.strip_prefix("| `"))
            && let Some(end) = row.find('`')
        {
            out.entry(k.clone())
                .or_default()
                .insert(row[..end].to_string());
        }
    }
    assert!(
        out.contains_key("climate") && out["climate"].contains("temperature_c"),
        "docs/POINTS.md not parsed: {out:?}"
    );
    out
}

/// The "InfluxDB schema" section of docs/INTERFACES.md.
fn interfaces_schema() -> String {
    let text = std::fs::read_to_string(repo_root().join("docs/INTERFACES.md")).unwrap();
    let start = text
        .find("## InfluxDB schema")
        .expect("docs/INTERFACES.md has an InfluxDB schema section");
    let rest = &text[start + 3..];
    let end = rest.find("\n## ").map_or(rest.len(), |e| e + 3);
    text[start..start + end].to_string()
}

/// Tag keys of reading measurements and of `alarm`, and the fields of `alarm`, as the
/// schema documents them.
const READING_TAGS: &[&str] = &["site", "room", "device", "label"];
const ALARM_TAGS: &[&str] = &["site", "device", "point", "rule", "level"];
const ALARM_FIELDS: &[&str] = &["state", "value", "threshold", "seq", "message"];

/// The double-quoted identifiers of an InfluxQL statement, each with what it is:
/// `from` (a measurement), `alias` (after AS) or `name` (a tag or field).
fn identifiers(q: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let b = q.as_bytes();
    let mut i = 0;
    let mut in_from = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                let name = q[start..j.min(b.len())].to_string();
                let before = q[..i].trim_end();
                let role = if before.ends_with(" AS") {
                    "alias"
                } else if in_from {
                    "from"
                } else {
                    "name"
                };
                out.push((role, name));
                i = j + 1;
            }
            b'\'' => {
                // A string literal: skip it.
                let mut j = i + 1;
                while j < b.len() && b[j] != b'\'' {
                    if b[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                i = j + 1;
            }
            _ => {
                let rest = &q[i..];
                if rest.starts_with("FROM ") {
                    in_from = true;
                } else if rest.starts_with("WHERE ") || rest.starts_with("GROUP BY") {
                    in_from = false;
                }
                i += 1;
            }
        }
    }
    out
}

fn substitute(q: &str, range: &str) -> String {
    q.replace("$timeFilter", &format!("time > now() - {range}"))
        .replace("$__interval", "10s")
        .replace("$site", "demo")
        .replace("$room", ".*")
        .replace("$device", ".*")
}

/// `now-15m` → `15m`.
fn range_of(from: &str) -> String {
    from.trim_start_matches("now-").to_string()
}

struct Series {
    tags: BTreeMap<String, String>,
    columns: Vec<String>,
    values: Vec<Vec<Json>>,
}

fn series_of(db: &Influx1, q: &str) -> Result<Vec<Series>, String> {
    let v = db.try_query("dc", q).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for r in v["results"].as_array().into_iter().flatten() {
        if let Some(e) = r.get("error") {
            return Err(format!("error {e}"));
        }
        for s in r["series"].as_array().into_iter().flatten() {
            out.push(Series {
                tags: s["tags"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
                columns: s["columns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| c.as_str().unwrap_or_default().to_string())
                    .collect(),
                values: s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r.as_array().cloned().unwrap_or_default())
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// The name Grafana gives a series from a target alias (`$tag_device`, `$col`).
fn series_name(alias: &str, s: &Series, col: &str) -> String {
    let mut name = alias.replace("$col", col);
    for (k, v) in &s.tags {
        name = name.replace(&format!("$tag_{k}"), v);
    }
    name
}

/// What a query may name: the database, docs/POINTS.md's vocabulary, what the gateway
/// wrote (tag keys, field keys per measurement) and docs/INTERFACES.md's schema section.
struct Known<'a> {
    db: &'a Influx1,
    vocab: BTreeMap<String, BTreeSet<String>>,
    written: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    schema_doc: String,
}

/// Checks one query: it runs, returns series, every alias is a column with at least
/// one value, GROUP BY tags are on every series; names it uses are documented and
/// written. Returns the names its series get (for override checks) and its columns.
fn check_query(
    k: &Known<'_>,
    what: &str,
    raw: &str,
    range: &str,
    alias: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let Known {
        db,
        vocab,
        written,
        schema_doc,
    } = k;
    // Names: measurements, tags and fields are ones the docs list and the gateway wrote.
    let ids = identifiers(raw);
    let froms: Vec<String> = ids
        .iter()
        .filter(|(r, _)| *r == "from")
        .map(|(_, n)| n.clone())
        .collect();
    assert!(
        !froms.is_empty() || raw.starts_with("SHOW"),
        "{what}: no measurement in {raw}"
    );
    for m in &froms {
        assert!(
            m == "alarm" || vocab.contains_key(m),
            "{what}: measurement {m:?} is not in docs/POINTS.md"
        );
        assert!(
            written.contains_key(m),
            "{what}: the gateway wrote no measurement {m:?}"
        );
    }
    for (role, n) in &ids {
        if *role != "name" {
            continue;
        }
        let ok = froms.iter().all(|m| {
            let (tags, fields) = &written[m];
            let documented = if m == "alarm" {
                ALARM_TAGS.contains(&n.as_str()) || ALARM_FIELDS.contains(&n.as_str())
            } else {
                READING_TAGS.contains(&n.as_str()) || n == "comm_ok" || vocab[m].contains(n)
            };
            documented && (tags.contains(n) || fields.contains(n))
        }) || (froms.is_empty() && READING_TAGS.contains(&n.as_str()));
        assert!(
            ok,
            "{what}: {n:?} is not a documented and written tag or field of {froms:?}"
        );
        if !vocab.values().any(|p| p.contains(n)) {
            assert!(
                schema_doc.contains(&format!("`{n}`")),
                "{what}: {n:?} is not in docs/INTERFACES.md's InfluxDB schema"
            );
        }
    }
    // Grafana's time range applies to every SELECT; no variable is left unknown.
    assert!(
        raw.starts_with("SHOW") || raw.contains("$timeFilter"),
        "{what}: no $timeFilter in {raw}"
    );
    let q = substitute(raw, range);
    // (A `$` before `/` is a regular expression's end anchor, not a variable.)
    assert!(
        !q.as_bytes()
            .windows(2)
            .any(|w| w[0] == b'$' && (w[1].is_ascii_alphabetic() || w[1] == b'_')),
        "{what}: a variable the dashboards do not define in {raw}"
    );
    let series = series_of(db, &q).unwrap_or_else(|e| panic!("{what}: {q}: {e}"));
    assert!(!series.is_empty(), "{what}: no series for {q}");
    let aliases: Vec<String> = ids
        .iter()
        .filter(|(r, _)| *r == "alias")
        .map(|(_, n)| n.clone())
        .collect();
    for a in &aliases {
        let mut any_value = false;
        for s in &series {
            let idx = s.columns.iter().position(|c| c == a).unwrap_or_else(|| {
                panic!("{what}: column {a:?} missing in {:?} for {q}", s.columns)
            });
            any_value |= s
                .values
                .iter()
                .any(|row| !row.get(idx).is_none_or(Json::is_null));
        }
        assert!(
            any_value,
            "{what}: column {a:?} has no value in any series of {q}"
        );
    }
    if let Some(g) = raw.split("GROUP BY").nth(1) {
        for tag in identifiers(g).into_iter().map(|(_, n)| n) {
            for s in &series {
                assert!(
                    s.tags.contains_key(&tag),
                    "{what}: series without tag {tag:?} for {q}"
                );
            }
        }
    }
    let mut names = BTreeSet::new();
    let mut columns = BTreeSet::new();
    for s in &series {
        columns.extend(s.columns.iter().cloned());
        columns.extend(s.tags.keys().cloned());
        for a in &aliases {
            names.insert(series_name(
                if alias.is_empty() { "$col" } else { alias },
                s,
                a,
            ));
        }
    }
    (names, columns)
}

/// Waits (with a deadline) until `cond` holds for the database.
fn await_db(db: &Influx1, what: &str, timeout: Duration, mut cond: impl FnMut(&Influx1) -> bool) {
    let start = Instant::now();
    while !cond(db) {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn count(db: &Influx1, q: &str) -> usize {
    series_of(db, q)
        .map(|s| s.iter().map(|s| s.values.len()).sum())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_query_of_the_shipped_dashboards_answers_from_influxdb16() {
    use dc_gateway::model::Value;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = Influx1::start(None);
    db.create_db("dc");
    let state = tempfile::tempdir().unwrap();
    let url = format!("{}?db=dc", db.base_url());
    let (running, sim) = dc_gateway::demo::start(
        "127.0.0.1:0".parse().unwrap(),
        None,
        None,
        Some(&url),
        None,
        state.path(),
    )
    .await
    .expect("demo gateway starts");
    let sim = sim.expect("in-process simulator");
    // th-a1 (unit 1) well above the serious limit, th-a3 (unit 2) between the normal and
    // serious limits: the gateway raises a serious and a normal alarm after the demo's
    // 10 s on-delay, so the alarm panels have both levels to show.
    for (unit, t) in [(1u8, 35.0), (2u8, 29.0)] {
        let d = sim
            .devices
            .iter()
            .find(|d| d.unit_id == unit)
            .expect("demo unit");
        d.values
            .set(
                "temperature_c",
                dc_gateway::sim::Gen::Fixed(Value::Number(t)),
            )
            .unwrap();
    }

    let site = dc_gateway::dashboards::demo_site().unwrap();
    let result = tokio::task::spawn_blocking(move || {
        await_db(&db, "both alarms raised, every device and the gateway written", Duration::from_secs(150), |db| {
            let levels = series_of(db, "SELECT last(\"state\") AS \"state\" FROM \"alarm\" WHERE \"state\" = 1 GROUP BY \"level\"")
                .map(|s| s.len())
                .unwrap_or(0);
            levels == 2
                && site.devices.iter().all(|d| {
                    count(db, &format!(
                        "SELECT last(\"comm_ok\") FROM \"{}\" WHERE \"device\" = '{}' AND \"comm_ok\" = true",
                        d.meta.kind, d.meta.id
                    )) > 0
                })
                && count(db, "SELECT last(\"uptime_s\") FROM \"gateway\"") > 0
        });
        check_all(&db);
        db
    })
    .await;
    running.shutdown(Duration::from_secs(3)).await;
    drop(result.expect("checks"));
}

fn check_all(db: &Influx1) {
    let vocab = points_md();
    let schema_doc = interfaces_schema();
    for n in READING_TAGS
        .iter()
        .chain(ALARM_TAGS)
        .chain(ALARM_FIELDS)
        .chain(["comm_ok", "alarm"].iter())
    {
        assert!(
            schema_doc.contains(&format!("`{n}`")),
            "docs/INTERFACES.md's InfluxDB schema does not list `{n}`"
        );
    }
    // What the gateway really wrote: tag and field keys per measurement.
    let mut written: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for s in series_of(db, "SHOW MEASUREMENTS").unwrap() {
        for row in &s.values {
            let m = row[0].as_str().unwrap().to_string();
            let col0 = |q: String| -> BTreeSet<String> {
                series_of(db, &q)
                    .unwrap()
                    .iter()
                    .flat_map(|s| {
                        s.values
                            .iter()
                            .map(|r| r[0].as_str().unwrap_or_default().to_string())
                    })
                    .collect()
            };
            let tags = col0(format!("SHOW TAG KEYS FROM \"{m}\""));
            let fields = col0(format!("SHOW FIELD KEYS FROM \"{m}\""));
            written.insert(m, (tags, fields));
        }
    }
    assert!(
        written.contains_key("alarm") && written["alarm"].1.contains("message"),
        "{written:?}"
    );
    let known = Known {
        db,
        vocab,
        written,
        schema_doc,
    };

    let mut checked = 0;
    for (name, board) in shipped() {
        let range = range_of(board["time"]["from"].as_str().unwrap());
        // Template variables.
        for v in board["templating"]["list"].as_array().into_iter().flatten() {
            let what = format!("{name}: variable {}", v["name"]);
            let q = v["query"].as_str().unwrap();
            check_query(&known, &what, q, &range, "");
            let values: BTreeSet<String> = series_of(db, &substitute(q, &range))
                .unwrap()
                .iter()
                .flat_map(|s| {
                    s.values
                        .iter()
                        .map(|r| r[1].as_str().unwrap_or_default().to_string())
                })
                .collect();
            let expect = match v["name"].as_str().unwrap() {
                "site" => "demo",
                "room" => "server1",
                _ => "th-a1",
            };
            assert!(values.contains(expect), "{what}: {values:?} lacks {expect}");
            checked += 1;
        }
        // Annotations.
        for a in board["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(q) = a["target"]["query"].as_str() else {
                continue;
            };
            let what = format!("{name}: annotation {}", a["name"]);
            let (_, columns) = check_query(&known, &what, q, &range, "");
            for key in ["textColumn", "tagsColumn"] {
                for c in a["target"][key].as_str().unwrap_or_default().split(',') {
                    assert!(
                        columns.contains(c),
                        "{what}: {key} {c:?} not among {columns:?}"
                    );
                }
            }
            checked += 1;
        }
        // Panels.
        for p in panels(&board) {
            if p["type"] == "row" {
                continue;
            }
            let what = format!("{name}: panel {} {:?}", p["id"], p["title"]);
            let range = p["timeFrom"].as_str().map_or(range.clone(), str::to_string);
            let mut names = BTreeSet::new();
            let mut columns = BTreeSet::new();
            for t in p["targets"].as_array().into_iter().flatten() {
                let q = t["query"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}: target without query"));
                let (n, c) = check_query(
                    &known,
                    &what,
                    q,
                    &range,
                    t["alias"].as_str().unwrap_or_default(),
                );
                names.extend(n);
                columns.extend(c);
                checked += 1;
            }
            // Every field override names a column or a series the panel gets.
            for o in p["fieldConfig"]["overrides"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let n = o["matcher"]["options"].as_str().unwrap();
                assert!(
                    names.contains(n) || columns.contains(n),
                    "{what}: override for {n:?} matches nothing in {names:?} / {columns:?}"
                );
            }
            for tr in p["transformations"].as_array().into_iter().flatten() {
                for f in tr["options"]["filters"].as_array().into_iter().flatten() {
                    let n = f["fieldName"].as_str().unwrap();
                    assert!(
                        columns.contains(n),
                        "{what}: transformation field {n:?} not among {columns:?}"
                    );
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} queries checked");
    eprintln!("{checked} queries checked");
}
