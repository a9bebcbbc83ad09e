//! Rules that name other devices: the power topology (`backed_by` on a UPS) and the
//! site's own `[[composite_rules]]`, read from config into [`Condition::Composite`]
//! specs on the device each alarm belongs to.
//!
//! Invariants: every device a rule names exists and has the right kind, every point
//! exists for that device's kind and every test fits the point's type; anything else
//! is a config problem at file:line:column naming the rule or device, and the rule is
//! left out (the rest of the site still loads).

use std::collections::HashMap;
use std::sync::Arc;

use serde_spanned::Spanned;

use crate::config::raw::{RawCompositeRule, RawCondition, RawDevice};
use crate::config::{DeviceConfig, Report};
use crate::model::{Kind, Level};
use crate::points::{PointType, lookup};

use super::defaults::mains_failure;
use super::spec::{Condition, Expr, RuleSpec, Term, Test};

/// Apply `backed_by` of every UPS: its `mains_failure` rule then names its generator
/// and transfer switch. Problems: `backed_by` on another kind, an unknown device id, a
/// device of the wrong kind.
pub(crate) fn topology<'a>(
    r: &mut Report<'_>,
    raw: impl Iterator<Item = &'a RawDevice> + Clone,
    devices: &mut [DeviceConfig],
) {
    let kinds: HashMap<&str, Option<Kind>> = raw
        .clone()
        .map(|d| (d.id.get_ref().as_str(), Kind::parse(d.kind.get_ref())))
        .collect();
    for (i, d) in raw.enumerate() {
        let Some(b) = &d.backed_by else { continue };
        let ctx = |key: &str| format!("devices[{i}] ({}) .backed_by{key}", d.id.get_ref());
        if Kind::parse(d.kind.get_ref()) != Some(Kind::Ups) {
            r.at(
                b.span(),
                ctx(""),
                format!(
                    "`backed_by` applies to a UPS; this device is a {}",
                    d.kind.get_ref()
                ),
            );
            continue;
        }
        let mut ok = true;
        let mut check =
            |r: &mut Report<'_>, id: &Option<Spanned<String>>, want: Kind, key: &str| {
                let Some(id) = id else { return None };
                match kinds.get(id.get_ref().as_str()) {
                    None => {
                        r.at(
                            id.span(),
                            ctx(key),
                            format!(
                                "unknown device {:?}: no [[devices]] entry has this id",
                                id.get_ref()
                            ),
                        );
                        ok = false;
                        None
                    }
                    Some(k) if *k != Some(want) => {
                        r.at(
                            id.span(),
                            ctx(key),
                            format!(
                                "device {:?} is a {}, not a {want}",
                                id.get_ref(),
                                k.map_or("device of unknown kind", Kind::as_str)
                            ),
                        );
                        ok = false;
                        None
                    }
                    Some(_) => Some(Arc::<str>::from(id.get_ref().as_str())),
                }
            };
        let generator = check(r, &b.get_ref().generator, Kind::Generator, ".generator");
        let ats = check(r, &b.get_ref().ats, Kind::Ats, ".ats");
        if ats.is_some() && generator.is_none() && b.get_ref().generator.is_none() {
            r.at(
                b.span(),
                ctx(""),
                "a transfer switch without a generator: name the generator it switches to (`generator = \"...\"`)",
            );
            ok = false;
        }
        if !ok {
            continue;
        }
        let Some(dev) = devices.iter_mut().find(|x| &*x.meta.id == d.id.get_ref()) else {
            continue;
        };
        for spec in &mut dev.rules {
            if &*spec.name == "mains_failure"
                && let Condition::Composite { expr, .. } = &mut spec.condition
            {
                *expr = mains_failure(generator.as_ref(), ats.as_ref());
            }
        }
    }
}

/// Read the site's `[[composite_rules]]` into specs on their devices.
pub(crate) fn composite_rules<'a>(
    r: &mut Report<'_>,
    raw_devices: impl Iterator<Item = &'a RawDevice>,
    rules: &[Spanned<RawCompositeRule>],
    devices: &mut [DeviceConfig],
) {
    let kinds: HashMap<String, Option<Kind>> = raw_devices
        .map(|d| (d.id.get_ref().clone(), Kind::parse(d.kind.get_ref())))
        .collect();
    for (i, rule) in rules.iter().enumerate() {
        let raw = rule.get_ref();
        let ctx = |key: &str| format!("composite_rules[{i}] ({}) {key}", raw.name.get_ref());
        let before = r.problems.len();
        let name = raw.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            r.at(
                raw.name.span(),
                ctx(".name"),
                format!("{name:?} is not a rule name: use lowercase letters, digits and '_'"),
            );
        }
        let host = raw.device.get_ref();
        let host_kind = match kinds.get(host) {
            None => {
                r.at(
                    raw.device.span(),
                    ctx(".device"),
                    format!("unknown device {host:?}: no [[devices]] entry has this id"),
                );
                None
            }
            Some(k) => *k,
        };
        let level = match raw.level.get_ref().as_str() {
            "normal" => Level::Normal,
            "serious" => Level::Serious,
            other => {
                r.at(
                    raw.level.span(),
                    ctx(".level"),
                    format!("level {other:?}: use \"normal\" or \"serious\" (Art. 18.2)"),
                );
                Level::Normal
            }
        };
        let for_s = match &raw.for_s {
            None => 0.0,
            Some(f) if f.get_ref().is_finite() && *f.get_ref() >= 0.0 => *f.get_ref(),
            Some(f) => {
                r.at(
                    f.span(),
                    ctx(".for_s"),
                    format!(
                        "for_s = {} is invalid: give seconds, 0 or more",
                        f.get_ref()
                    ),
                );
                0.0
            }
        };
        if raw.all.is_empty() && raw.any.is_empty() {
            r.at(
                rule.span(),
                ctx(""),
                "no conditions: give `all = [...]` and/or `any = [...]`",
            );
        }
        let term = |r: &mut Report<'_>, key: &str, j: usize, c: &Spanned<RawCondition>| {
            condition(r, &ctx(&format!(".{key}[{j}]")), host, host_kind, &kinds, c)
        };
        let all: Vec<Expr> = raw
            .all
            .iter()
            .enumerate()
            .filter_map(|(j, c)| term(r, "all", j, c))
            .collect();
        let any: Vec<Expr> = raw
            .any
            .iter()
            .enumerate()
            .filter_map(|(j, c)| term(r, "any", j, c))
            .collect();
        let Some(dev) = devices.iter_mut().find(|d| &*d.meta.id == host.as_str()) else {
            continue;
        };
        if dev.rules.iter().any(|s| &*s.name == name.as_str()) {
            r.at(
                raw.name.span(),
                ctx(".name"),
                format!("device {host:?} has a rule {name:?} already: choose another name"),
            );
        }
        if r.problems.len() != before {
            continue;
        }
        let mut parts = all;
        if !any.is_empty() {
            parts.push(Expr::Any(any));
        }
        let expr = Expr::All(parts);
        let point = expr.terms().first().map_or("comm", |t| t.point);
        let article: &'static str = match &raw.article {
            None => "10.1",
            Some(a) => match article(a.get_ref()) {
                Some(a) => a,
                None => {
                    r.at(
                        a.span(),
                        ctx(".article"),
                        format!(
                            "article {:?}: write the regulation's article number, e.g. \"10.5\" or \"8.3a\"",
                            a.get_ref()
                        ),
                    );
                    continue;
                }
            },
        };
        let vi = raw.text_vi.get_ref().clone();
        let en = raw.text_en.clone().unwrap_or_else(|| vi.clone());
        dev.rules.push(RuleSpec {
            name: Arc::from(name.as_str()),
            point,
            condition: Condition::Composite {
                expr: Arc::new(expr),
                level,
                on_delay_s: for_s,
                text: Some(Arc::new((vi, en))),
            },
            article,
            enabled: true,
        });
    }
}

/// An article number (`10.5`, `8.3a`) as a `&'static str`: each distinct one is kept
/// once for the process's life (a config reload does not add copies).
fn article(a: &str) -> Option<&'static str> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    let ok = !a.is_empty()
        && a.len() <= 8
        && a.starts_with(|c: char| c.is_ascii_digit())
        && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    if !ok {
        return None;
    }
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = seen.get(a) {
        return Some(s);
    }
    let s: &'static str = Box::leak(a.to_string().into_boxed_str());
    seen.insert(s);
    Some(s)
}

/// One condition: its device, point and test, checked against the vocabulary.
fn condition(
    r: &mut Report<'_>,
    ctx: &str,
    host: &str,
    host_kind: Option<Kind>,
    kinds: &HashMap<String, Option<Kind>>,
    c: &Spanned<RawCondition>,
) -> Option<Expr> {
    let raw = c.get_ref();
    let (device, kind) = match &raw.device {
        None => (None, host_kind),
        Some(d) => match kinds.get(d.get_ref()) {
            None => {
                r.at(
                    d.span(),
                    format!("{ctx} .device"),
                    format!(
                        "unknown device {:?}: no [[devices]] entry has this id",
                        d.get_ref()
                    ),
                );
                return None;
            }
            Some(k) if d.get_ref() == host => (None, *k),
            Some(k) => (Some(Arc::<str>::from(d.get_ref().as_str())), *k),
        },
    };
    let kind = kind?;
    let Some(point) = lookup(kind, raw.point.get_ref()) else {
        let names: Vec<&str> = crate::points::points_of(kind)
            .iter()
            .map(|p| p.name)
            .collect();
        r.at(
            raw.point.span(),
            format!("{ctx} .point"),
            format!(
                "{kind} has no point {:?}; its points are {}",
                raw.point.get_ref(),
                names.join(", ")
            ),
        );
        return None;
    };
    let given = [
        raw.is.is_some(),
        raw.is_not.is_some(),
        raw.above.is_some(),
        raw.below.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given != 1 {
        r.at(
            c.span(),
            ctx.to_string(),
            "give exactly one test: `is`, `is_not`, `above` or `below`",
        );
        return None;
    }
    let enum_value = |r: &mut Report<'_>, span: std::ops::Range<usize>, key: &str, v: &str| {
        let PointType::Enum(names) = point.ty else {
            r.at(
                span.clone(),
                format!("{ctx} .{key}"),
                format!("point {:?} is not an enumeration", point.name),
            );
            return None;
        };
        match names.iter().find(|n| **n == v) {
            Some(n) => Some(*n),
            None => {
                r.at(
                    span,
                    format!("{ctx} .{key}"),
                    format!(
                        "{v:?} is not a value of {}: use one of {}",
                        point.name,
                        names.join(", ")
                    ),
                );
                None
            }
        }
    };
    let test = if let Some(is) = &raw.is {
        match (is.get_ref(), point.ty) {
            (toml::Value::Boolean(b), PointType::Bool) => Test::Is(*b),
            (toml::Value::String(s), PointType::Enum(_)) => {
                Test::IsValue(enum_value(r, is.span(), "is", s)?)
            }
            _ => {
                let want = match point.ty {
                    PointType::Bool => "true or false",
                    PointType::Enum(_) => "a value name in quotes",
                    PointType::Number => "nothing: use `above` or `below` for a number",
                };
                r.at(
                    is.span(),
                    format!("{ctx} .is"),
                    format!("point {:?} takes {want}", point.name),
                );
                return None;
            }
        }
    } else if let Some(s) = &raw.is_not {
        Test::IsNotValue(enum_value(r, s.span(), "is_not", s.get_ref())?)
    } else {
        let (key, v, above) = match (&raw.above, &raw.below) {
            (Some(a), _) => ("above", a, true),
            (_, Some(b)) => ("below", b, false),
            _ => return None,
        };
        if point.ty != PointType::Number || !v.get_ref().is_finite() {
            r.at(
                v.span(),
                format!("{ctx} .{key}"),
                format!(
                    "`{key}` needs a number point and a finite limit ({:?} is not one)",
                    point.name
                ),
            );
            return None;
        }
        if above {
            Test::Above(*v.get_ref())
        } else {
            Test::Below(*v.get_ref())
        }
    };
    Some(Expr::Term(Term {
        device,
        point: point.name,
        test,
        if_unknown: raw.if_unknown,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::parse;
    use crate::rules::spec::{Condition, Expr, Test};

    /// A UPS, a generator and a transfer switch on one Modbus TCP gateway.
    const POWER: &str = r#"
[site]
name = "tv"

[[rooms]]
id = "power"

[[devices]]
id = "ups1"
room = "power"
kind = "ups"
profile = "apc-smart-ups"
backed_by = { generator = "gen1", ats = "ats1" }
[devices.modbus_tcp]
host = "127.0.0.1"
port = 5020
unit_id = 1

[[devices]]
id = "gen1"
room = "power"
kind = "generator"
profile = "dse-gencomm"
[devices.modbus_tcp]
host = "127.0.0.1"
port = 5020
unit_id = 2

[[devices]]
id = "ats1"
room = "power"
kind = "ats"
profile = "abb-ats022"
[devices.modbus_tcp]
host = "127.0.0.1"
port = 5020
unit_id = 3
"#;

    fn errors(text: &str) -> Vec<String> {
        match parse(text, "site.toml", Path::new("/nonexistent")) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn rule<'a>(site: &'a crate::config::Site, dev: &str, name: &str) -> &'a Condition {
        &site
            .devices
            .iter()
            .find(|d| &*d.meta.id == dev)
            .unwrap()
            .rules
            .iter()
            .find(|r| &*r.name == name)
            .unwrap_or_else(|| panic!("{dev}/{name}"))
            .condition
    }

    #[test]
    fn backed_by_names_the_generator_and_switch_in_mains_failure() {
        let site = parse(POWER, "site.toml", Path::new("/")).expect("valid");
        let Condition::Composite {
            expr, on_delay_s, ..
        } = rule(&site, "ups1", "mains_failure")
        else {
            panic!("composite");
        };
        assert_eq!(*on_delay_s, 60.0);
        assert_eq!(
            expr.describe(),
            "this device: on_battery is true and (gen1: engine_running is false or ats1: position is not generator)"
        );
        // The margin and the 60 s are overridable like any rule.
        let text = format!(
            "{POWER}\n[rules.mains_failure]\non_delay_s = 5\n[rules.on_battery_long]\non_delay_s = 900\n"
        );
        let site = parse(&text, "site.toml", Path::new("/")).expect("valid");
        assert!(matches!(
            rule(&site, "ups1", "mains_failure"),
            Condition::Composite { on_delay_s, .. } if *on_delay_s == 5.0
        ));
        assert!(matches!(
            rule(&site, "ups1", "on_battery_long"),
            Condition::Flag { on_delay_s, .. } if *on_delay_s == 900.0
        ));
    }

    #[test]
    fn bad_topology_is_reported_with_file_line_column() {
        let table = [
            (
                r#"backed_by = { generator = "gen9", ats = "ats1" }"#,
                "site.toml:13:27: devices[0] (ups1) .backed_by.generator: unknown device \"gen9\": no [[devices]] entry has this id",
            ),
            (
                r#"backed_by = { generator = "ats1" }"#,
                "site.toml:13:27: devices[0] (ups1) .backed_by.generator: device \"ats1\" is a ats, not a generator",
            ),
            (
                r#"backed_by = { generator = "gen1", ats = "gen1" }"#,
                "site.toml:13:41: devices[0] (ups1) .backed_by.ats: device \"gen1\" is a generator, not a ats",
            ),
            (
                r#"backed_by = { ats = "ats1" }"#,
                "site.toml:13:13: devices[0] (ups1) .backed_by: a transfer switch without a generator: name the generator it switches to (`generator = \"...\"`)",
            ),
            (
                r#"backed_by = { generatr = "gen1" }"#,
                "site.toml:13:15: devices[0] (ups1): unknown field `generatr`, expected `generator` or `ats`",
            ),
        ];
        for (line, want) in table {
            let text = POWER.replace(r#"backed_by = { generator = "gen1", ats = "ats1" }"#, line);
            let got = errors(&text);
            assert!(got.iter().any(|g| g == want), "{line}: {got:#?}");
        }
        // On another kind.
        let text = POWER.replacen(
            "profile = \"dse-gencomm\"",
            "profile = \"dse-gencomm\"\nbacked_by = { generator = \"gen1\" }",
            1,
        );
        let got = errors(&text);
        assert!(
            got.iter().any(|g| g.contains(
                "(gen1) .backed_by: `backed_by` applies to a UPS; this device is a generator"
            )),
            "{got:#?}"
        );
    }

    const COMPOSITE: &str = r#"
[[composite_rules]]
name = "ups_on_battery_generator_low_fuel"
device = "ups1"
level = "serious"
for_s = 30
article = "10.5"
text_vi = "UPS chạy pin, máy phát sắp hết nhiên liệu"
text_en = "UPS on battery and the generator is low on fuel"
all = [
  { point = "on_battery", is = true },
  { device = "gen1", point = "fuel_level_pct", below = 30 },
]
any = [
  { device = "ats1", point = "position", is_not = "generator", if_unknown = true },
  { device = "gen1", point = "mode", is = "manual" },
]
"#;

    #[test]
    fn composite_rules_become_specs_on_their_device() {
        let site =
            parse(&format!("{POWER}{COMPOSITE}"), "site.toml", Path::new("/")).expect("valid");
        let Condition::Composite {
            expr,
            level,
            on_delay_s,
            text,
        } = rule(&site, "ups1", "ups_on_battery_generator_low_fuel")
        else {
            panic!("composite");
        };
        assert_eq!(*level, crate::model::Level::Serious);
        assert_eq!(*on_delay_s, 30.0);
        assert_eq!(
            text.as_ref().unwrap().1,
            "UPS on battery and the generator is low on fuel"
        );
        let terms = expr.terms();
        assert_eq!(terms.len(), 4);
        assert_eq!(terms[1].test, Test::Below(30.0));
        assert_eq!(terms[2].test, Test::IsNotValue("generator"));
        assert_eq!(terms[2].if_unknown, Some(true));
        assert_eq!(terms[0].if_unknown, None);
        assert!(matches!(&**expr, Expr::All(v) if v.len() == 3));
    }

    #[test]
    fn bad_composite_rules_are_reported_each_with_its_place() {
        let table = [
            (
                "level = \"serious\"",
                "level = \"critical\"",
                "site.toml:42:9: composite_rules[0] (ups_on_battery_generator_low_fuel) .level: level \"critical\": use \"normal\" or \"serious\" (Art. 18.2)",
            ),
            (
                "device = \"ups1\"",
                "device = \"ups7\"",
                "site.toml:41:10: composite_rules[0] (ups_on_battery_generator_low_fuel) .device: unknown device \"ups7\": no [[devices]] entry has this id",
            ),
            (
                "point = \"fuel_level_pct\"",
                "point = \"fuel_pct\"",
                "composite_rules[0] (ups_on_battery_generator_low_fuel) .all[1] .point: generator has no point \"fuel_pct\"; its points are mode,",
            ),
            (
                "is_not = \"generator\"",
                "is_not = \"genset\"",
                ".any[0] .is_not: \"genset\" is not a value of position: use one of unknown, mains, generator, off, transferring",
            ),
            (
                "is = true }",
                "is = 1 }",
                ".all[0] .is: point \"on_battery\" takes true or false",
            ),
            (
                "below = 30 }",
                "below = 30, above = 5 }",
                ".all[1]: give exactly one test: `is`, `is_not`, `above` or `below`",
            ),
            (
                "name = \"ups_on_battery_generator_low_fuel\"",
                "name = \"mains_failure\"",
                ".name: device \"ups1\" has a rule \"mains_failure\" already: choose another name",
            ),
            (
                "for_s = 30",
                "for_s = -1",
                ".for_s: for_s = -1 is invalid: give seconds, 0 or more",
            ),
            (
                "article = \"10.5\"",
                "article = \"Điều 10\"",
                ".article: article \"Điều 10\": write the regulation's article number, e.g. \"10.5\" or \"8.3a\"",
            ),
            (
                "{ device = \"gen1\", point = \"mode\", is = \"manual\" }",
                "{ device = \"gen1\", point = \"mode\", above = 2 }",
                ".any[1] .above: `above` needs a number point and a finite limit (\"mode\" is not one)",
            ),
        ];
        for (from, to, want) in table {
            let text = format!("{POWER}{}", COMPOSITE.replacen(from, to, 1));
            let got = errors(&text);
            assert!(
                got.iter()
                    .any(|g| g.contains(want) && g.starts_with("site.toml:")),
                "{to}: want {want:?} in {got:#?}"
            );
        }
    }
}
