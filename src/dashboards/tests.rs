use std::path::Path;

use serde_json::{Value as Json, json};

use super::thresholds::{NORMAL, OK, SERIOUS, Step, numeric_steps};
use super::*;
use crate::model::Kind;

/// A small site: two climate sensors in one room and a cooling unit; a room override
/// (dew point), a device override (t1's temperature) and the site layer in `rules`.
fn test_site(rules: &str) -> Site {
    let text = format!(
        r#"
[site]
name = "tv"
title = "Trà Vinh"
{rules}

[[rooms]]
id = "r1"
name = "Phòng 1"
[rooms.rules.dew_point_high]
normal = 14

[[devices]]
id = "t1"
name = "Cảm biến 1"
label = "TH-1"
room = "r1"
kind = "climate"
profile = "xy-md02"
[devices.modbus_tcp]
host = "127.0.0.1"
port = 1502
unit_id = 1
[devices.rules.temperature_high]
normal = 25
serious = 30

[[devices]]
id = "t2"
name = "Cảm biến 2"
room = "r1"
kind = "climate"
profile = "xy-md02"
[devices.modbus_tcp]
host = "127.0.0.1"
port = 1502
unit_id = 2

[[devices]]
id = "crac1"
name = "Điều hòa 1"
room = "r1"
kind = "cooling"
profile = "liebert-icom"
[devices.modbus_tcp]
host = "127.0.0.1"
port = 1502
unit_id = 3
"#
    );
    config::parse(&text, "<test>", Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

use crate::config;

fn opts() -> Options {
    Options {
        time_zone: DEFAULT_TIME_ZONE.into(),
    }
}

fn board(site: &Site, name: &str) -> Json {
    dashboards(site, &opts())
        .unwrap()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
}

/// The stat panel of `device` on the wall view.
fn wall_stat<'a>(wall: &'a Json, device: &str) -> &'a Json {
    wall["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["type"] == "stat"
                && p["targets"][0]["query"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("\"device\" = '{device}'"))
        })
        .unwrap_or_else(|| panic!("no stat panel for {device}"))
}

/// The threshold steps an override of `field` sets, as (value, colour).
fn steps_of(panel: &Json, field: &str) -> Vec<(Option<f64>, String)> {
    let o = panel["fieldConfig"]["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["matcher"]["options"] == field)
        .unwrap_or_else(|| panic!("no override for {field}"));
    let th = o["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "thresholds")
        .unwrap();
    th["value"]["steps"]
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
}

fn s(v: &[(Option<f64>, &str)]) -> Vec<(Option<f64>, String)> {
    v.iter().map(|(a, b)| (*a, b.to_string())).collect()
}

#[test]
fn climate_defaults_become_five_bands() {
    let rules = crate::rules::defaults(Kind::Climate);
    assert_eq!(
        numeric_steps(&rules, "temperature_c").unwrap(),
        vec![
            Step {
                from: None,
                color: SERIOUS
            },
            Step {
                from: Some(15.0),
                color: NORMAL
            },
            Step {
                from: Some(18.0),
                color: OK
            },
            Step {
                from: Some(27.0),
                color: NORMAL
            },
            Step {
                from: Some(32.0),
                color: SERIOUS
            },
        ]
    );
    // Humidity has no normal lower limit: below 8 % is serious at once.
    assert_eq!(
        numeric_steps(&rules, "humidity_pct").unwrap(),
        vec![
            Step {
                from: None,
                color: SERIOUS
            },
            Step {
                from: Some(8.0),
                color: OK
            },
            Step {
                from: Some(60.0),
                color: NORMAL
            },
            Step {
                from: Some(80.0),
                color: SERIOUS
            },
        ]
    );
    assert_eq!(numeric_steps(&rules, "no_such_point"), None);
}

#[test]
fn overrides_at_every_layer_change_the_generated_panel() {
    // Site layer: humidity; device layer (t1, in the TOML): temperature.
    let site =
        test_site("[rules.humidity_high]\nnormal = 55\n[rules.temperature_low]\nenabled = false");
    let wall = board(&site, "wall");
    let t1 = wall_stat(&wall, "t1");
    let t2 = wall_stat(&wall, "t2");
    // t1's own override (25 / 30) and the disabled low-temperature rule (no red base,
    // no 15/18 steps).
    assert_eq!(
        steps_of(t1, "temperature_c"),
        s(&[(None, OK), (Some(25.0), NORMAL), (Some(30.0), SERIOUS)])
    );
    // t2 keeps the kind defaults for the upper limits.
    assert_eq!(
        steps_of(t2, "temperature_c"),
        s(&[(None, OK), (Some(27.0), NORMAL), (Some(32.0), SERIOUS)])
    );
    // The site-wide humidity override reaches both sensors.
    for p in [t1, t2] {
        assert_eq!(
            steps_of(p, "humidity_pct"),
            s(&[
                (None, SERIOUS),
                (Some(8.0), OK),
                (Some(55.0), NORMAL),
                (Some(80.0), SERIOUS)
            ])
        );
    }
    // The room layer: the dew point's normal upper limit is 14 in r1.
    for p in [t1, t2] {
        assert_eq!(
            steps_of(p, "dew_point_c"),
            s(&[
                (None, SERIOUS),
                (Some(-12.0), NORMAL),
                (Some(-9.0), OK),
                (Some(14.0), NORMAL),
                (Some(17.0), SERIOUS)
            ])
        );
    }
    // The same steps colour the device's series on the climate dashboard and the
    // rack heat map.
    let climate = board(&site, "climate");
    let heat = climate["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "status-history")
        .unwrap();
    assert_eq!(steps_of(heat, "t1"), steps_of(t1, "temperature_c"));
    assert_eq!(steps_of(heat, "t2"), steps_of(t2, "temperature_c"));
    let temp = climate["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["type"] == "timeseries"
                && p["targets"][0]["query"]
                    .as_str()
                    .unwrap()
                    .contains("mean(\"temperature_c\")")
        })
        .unwrap();
    assert_eq!(
        steps_of(temp, "t1 temperature_c"),
        steps_of(t1, "temperature_c")
    );
    // Different steps per device: no shared threshold lines.
    assert_eq!(
        temp["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"],
        "off"
    );

    // Without any override the two sensors are alike again.
    let plain = board(&test_site(""), "wall");
    assert_eq!(
        steps_of(wall_stat(&plain, "t2"), "temperature_c"),
        s(&[
            (None, SERIOUS),
            (Some(15.0), NORMAL),
            (Some(18.0), OK),
            (Some(27.0), NORMAL),
            (Some(32.0), SERIOUS)
        ])
    );
}

#[test]
fn flag_rules_colour_boolean_mappings_and_comm_loss() {
    let site = test_site("");
    let wall = board(&site, "wall");
    let crac = wall_stat(&wall, "crac1");
    let mapping = |field: &str| -> Json {
        let o = crac["fieldConfig"]["overrides"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["matcher"]["options"] == field)
            .unwrap();
        o["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "mappings")
            .unwrap()["value"][0]["options"]
            .clone()
    };
    // unit_stopped: unit_on == false is serious.
    assert_eq!(mapping("unit_on")["false"]["color"], SERIOUS);
    assert_eq!(mapping("unit_on")["true"]["color"], OK);
    // critical_alarm == true is serious.
    assert_eq!(mapping("critical_alarm")["true"]["color"], SERIOUS);
    // comm_lost is normal for cooling.
    assert_eq!(mapping("comm_ok")["false"]["color"], NORMAL);
}

#[test]
fn generator_mode_mapping_follows_the_state_rule() {
    let demo = demo_site().unwrap();
    let power = board(&demo, "power");
    let gen_stat = power["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["type"] == "stat"
                && p["targets"][0]["query"]
                    .as_str()
                    .unwrap()
                    .contains("'gen1'")
        })
        .unwrap();
    let o = gen_stat["fieldConfig"]["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["matcher"]["options"] == "mode")
        .unwrap();
    let m = &o["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "mappings")
        .unwrap()["value"][0]["options"];
    // Codes from docs/POINTS.md: 2 = auto (allowed), 3 = manual (mode_not_auto, normal).
    assert_eq!(m["2"], json!({"text": "auto", "color": OK, "index": 2}));
    assert_eq!(m["3"]["color"], NORMAL);
}

#[test]
fn panels_have_unique_ids_and_do_not_overlap() {
    let demo = demo_site().unwrap();
    for (name, b) in dashboards(&demo, &opts()).unwrap() {
        let panels = b["panels"].as_array().unwrap();
        let mut ids = std::collections::HashSet::new();
        let mut cells = std::collections::HashSet::new();
        for p in panels {
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{name}: duplicate id {}",
                p["id"]
            );
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(x + w <= 24, "{name}: panel {} past the grid", p["id"]);
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(
                        cells.insert((cx, cy)),
                        "{name}: panel {} overlaps at {cx},{cy}",
                        p["id"]
                    );
                }
            }
        }
        assert_eq!(b["schemaVersion"], SCHEMA_VERSION);
        assert_eq!(b["timezone"], DEFAULT_TIME_ZONE);
        assert!(b["uid"].as_str().unwrap().len() <= 40);
    }
    // The wall view fits one 1080-pixel kiosk screen (about 28 grid units).
    let wall = board(&demo, "wall");
    let bottom = wall["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["gridPos"]["y"].as_u64().unwrap() + p["gridPos"]["h"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(bottom <= 28, "wall view is {bottom} units high");
    // Rooms as rows, in file order.
    let rows: Vec<&str> = wall["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "Phòng máy chủ 1",
            "Phòng máy chủ 2",
            "Phòng điện",
            "Cảnh báo"
        ]
    );
}

#[test]
fn time_zone_is_checked_and_used() {
    let demo = demo_site().unwrap();
    let e = dashboards(
        &demo,
        &Options {
            time_zone: "Hanoi time".into(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("Hanoi time"), "{e}");
    // A well-formed name that is no zone is refused too.
    assert!(
        dashboards(
            &demo,
            &Options {
                time_zone: "Asia/Atlantis".into()
            }
        )
        .is_err()
    );
    let b = dashboards(
        &demo,
        &Options {
            time_zone: "Asia/Bangkok".into(),
        },
    )
    .unwrap();
    assert!(b.iter().all(|(_, d)| d["timezone"] == "Asia/Bangkok"));
}

#[test]
fn long_site_names_still_give_valid_unique_uids() {
    let long = "a".repeat(64);
    let a = uid(&long, "wall");
    let b = uid(&format!("{long}b"), "wall");
    assert!(a.len() <= 40 && b.len() <= 40, "{a} {b}");
    assert_ne!(a, b);
    assert_eq!(uid("demo", "wall"), "dcgw-demo-wall");
}

#[test]
fn provisioning_holds_no_secret_and_names_the_datasource_uid() {
    let files = generate(&demo_site().unwrap(), &opts()).unwrap();
    let ds = files
        .iter()
        .find(|f| f.path == "provisioning/datasources/dc-gateway.yaml")
        .unwrap();
    assert!(ds.text.contains("uid: dcgw-influxdb"), "{}", ds.text);
    assert!(
        ds.text.contains("\"Token ${DCGW_INFLUX_TOKEN}\""),
        "{}",
        ds.text
    );
    let prov = files
        .iter()
        .find(|f| f.path == "provisioning/dashboards/dc-gateway.yaml")
        .unwrap();
    assert!(
        prov.text
            .contains("path: /var/lib/grafana/dashboards/dc-gateway"),
        "{}",
        prov.text
    );
    // A 1.x sink with a user: the password comes from the environment, never the file.
    let mut site = test_site("");
    let mut cfg =
        crate::config::InfluxConfig::from_url("http://grafana@db.local:8086?db=dc", None).unwrap();
    if let InfluxApi::V1 { password, .. } = &mut cfg.api {
        *password = Some("s3cret-pw".into());
    }
    site.sinks.push(crate::sinks::SinkEntry::default_for(
        crate::sinks::SinkConfig::Influx(cfg),
    ));
    let files = generate(&site, &opts()).unwrap();
    let ds = &files
        .iter()
        .find(|f| f.path.contains("datasources"))
        .unwrap()
        .text;
    assert!(
        ds.contains("url: \"http://db.local:8086\"") && ds.contains("dbName: \"dc\""),
        "{ds}"
    );
    assert!(ds.contains("password: \"${DCGW_INFLUX_PASSWORD}\""), "{ds}");
    assert!(files.iter().all(|f| !f.text.contains("s3cret-pw")));
}

/// The shipped `dashboards/` are exactly `dc-gateway dashboards --demo` output: run
/// `cargo run -- dashboards --demo --out dashboards` after changing the generator.
#[test]
fn shipped_dashboards_are_the_generators_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let files = generate(&demo_site().unwrap(), &opts()).unwrap();
    for f in &files {
        let path = dir.join(&f.path);
        let shipped =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            shipped == f.text,
            "{} differs from the generator's output; regenerate with\n    cargo run -- dashboards --demo --out dashboards",
            path.display()
        );
    }
    // Nothing generated-looking is left over from an older generator.
    let mut stale = Vec::new();
    let mut walk = vec![dir.clone()];
    while let Some(d) = walk.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk.push(p);
            } else if p.extension().is_some_and(|x| x == "json" || x == "yaml") {
                let rel = p.strip_prefix(&dir).unwrap().to_string_lossy().to_string();
                if !files.iter().any(|f| f.path == rel) {
                    stale.push(rel);
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "files in dashboards/ the generator does not write: {stale:?}"
    );
    // And generating twice gives the same bytes.
    assert_eq!(files, generate(&demo_site().unwrap(), &opts()).unwrap());
}
