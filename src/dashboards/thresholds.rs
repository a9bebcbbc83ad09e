//! A device's effective alarm rules (kind default < site < room < device, already
//! applied by config validation in `DeviceConfig::rules`) turned into Grafana colours.
//!
//! Invariants:
//! - Only enabled rules count; a disabled rule colours nothing.
//! - Numeric points: the colour of a value is the highest level any enabled
//!   upper/lower-threshold rule on that point would raise for it (green when none,
//!   orange for normal, red for serious, Art. 18.2). Grafana steps apply from their value
//!   upwards (`value >= step`), while an upper-threshold rule raises only *above* its
//!   limit: the one value exactly equal to an upper limit is coloured as the band above
//!   it. Hysteresis and on-delays are the engine's business and are not drawn.
//! - Boolean points: the value a flag rule alarms on gets its level's colour, the other
//!   value green. Enumerations: the values a state rule allows are green, every other
//!   code gets the rule's level colour. Without a rule, values are shown in blue
//!   (information, not "fine").

use serde_json::{Value as Json, json};

use crate::model::Level;
use crate::points::{PointDef, PointType};
use crate::rules::{Condition, RuleSpec};

/// Colour of "no alarm".
pub const OK: &str = "green";
/// Colour of a normal-level alarm (sự cố thông thường).
pub const NORMAL: &str = "orange";
/// Colour of a serious-level alarm (sự cố nghiêm trọng).
pub const SERIOUS: &str = "red";
/// Colour of a value no rule watches.
pub const INFO: &str = "blue";

/// The colour of an alarm level.
pub fn level_color(level: Level) -> &'static str {
    match level {
        Level::Normal => NORMAL,
        Level::Serious => SERIOUS,
    }
}

/// One Grafana threshold step: from `from` upwards (`None` = the base step) the value
/// is shown in `color`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Lower bound of the band; `None` for the base (minus infinity).
    pub from: Option<f64>,
    /// Grafana colour name.
    pub color: &'static str,
}

fn rank(c: Option<Level>) -> u8 {
    match c {
        None => 0,
        Some(Level::Normal) => 1,
        Some(Level::Serious) => 2,
    }
}

/// The level the enabled threshold rules on `point` raise for `v`, if any.
fn level_at(rules: &[RuleSpec], point: &str, v: f64) -> Option<Level> {
    let mut worst: Option<Level> = None;
    for r in rules.iter().filter(|r| r.enabled && r.point == point) {
        let lvl = match &r.condition {
            Condition::Above {
                normal, serious, ..
            } => {
                if serious.is_some_and(|s| v > s) {
                    Some(Level::Serious)
                } else if normal.is_some_and(|n| v > n) {
                    Some(Level::Normal)
                } else {
                    None
                }
            }
            Condition::Below {
                normal, serious, ..
            } => {
                if serious.is_some_and(|s| v < s) {
                    Some(Level::Serious)
                } else if normal.is_some_and(|n| v < n) {
                    Some(Level::Normal)
                } else {
                    None
                }
            }
            _ => None,
        };
        if rank(lvl) > rank(worst) {
            worst = lvl;
        }
    }
    worst
}

fn color_of(l: Option<Level>) -> &'static str {
    l.map_or(OK, level_color)
}

/// The threshold steps of a numeric point, or `None` when no enabled threshold rule
/// watches it.
pub fn numeric_steps(rules: &[RuleSpec], point: &str) -> Option<Vec<Step>> {
    let mut limits: Vec<f64> = Vec::new();
    for r in rules.iter().filter(|r| r.enabled && r.point == point) {
        if let Condition::Above {
            normal, serious, ..
        }
        | Condition::Below {
            normal, serious, ..
        } = &r.condition
        {
            limits.extend(normal.iter().chain(serious.iter()).copied());
        }
    }
    limits.retain(|v| v.is_finite());
    if limits.is_empty() {
        return None;
    }
    limits.sort_by(f64::total_cmp);
    limits.dedup();
    let mut steps = vec![Step {
        from: None,
        color: color_of(level_at(rules, point, limits[0] - 1.0)),
    }];
    for (i, &b) in limits.iter().enumerate() {
        // A value inside the band [b, next): its midpoint stands for the whole band.
        let probe = match limits.get(i + 1) {
            Some(&next) => (b + next) / 2.0,
            None => b + 1.0,
        };
        let color = color_of(level_at(rules, point, probe));
        if steps.last().is_some_and(|s| s.color != color) {
            steps.push(Step {
                from: Some(b),
                color,
            });
        }
    }
    Some(steps)
}

/// Grafana `thresholds` JSON for steps.
pub fn steps_json(steps: &[Step]) -> Json {
    let steps: Vec<Json> = steps
        .iter()
        .map(|s| json!({"color": s.color, "value": s.from}))
        .collect();
    json!({"mode": "absolute", "steps": steps})
}

/// Thresholds for a field no numeric rule colours: one neutral step.
pub fn info_thresholds() -> Json {
    steps_json(&[Step {
        from: None,
        color: INFO,
    }])
}

/// Value mappings (Grafana `mappings`) for a boolean or enumeration point, coloured by
/// the enabled flag/state rules on it; `texts` gives the display text of `true` and
/// `false`. Empty for numbers.
pub fn value_mappings(rules: &[RuleSpec], point: &PointDef, texts: (&str, &str)) -> Vec<Json> {
    let rules: Vec<&RuleSpec> = rules
        .iter()
        .filter(|r| r.enabled && r.point == point.name)
        .collect();
    match point.ty {
        PointType::Number => Vec::new(),
        PointType::Bool => {
            let mut color_true = INFO;
            let mut color_false = INFO;
            for r in &rules {
                if let Condition::Flag { when, level, .. } = &r.condition {
                    let (alarm, fine) = if *when {
                        (&mut color_true, &mut color_false)
                    } else {
                        (&mut color_false, &mut color_true)
                    };
                    *alarm = level_color(*level);
                    if *fine == INFO {
                        *fine = OK;
                    }
                }
                // A door open is an alarm (outside its access windows) at this level.
                if let Condition::DoorAccess { outside_level, .. } = &r.condition {
                    color_true = level_color(*outside_level);
                    if color_false == INFO {
                        color_false = OK;
                    }
                }
            }
            vec![json!({
                "type": "value",
                "options": {
                    "true": {"text": texts.0, "color": color_true, "index": 0},
                    "false": {"text": texts.1, "color": color_false, "index": 1},
                }
            })]
        }
        PointType::Enum(names) => {
            let state_rule = rules.iter().find_map(|r| match &r.condition {
                Condition::EnumNot { allowed, level, .. } => Some((*allowed, *level)),
                _ => None,
            });
            let mut options = serde_json::Map::new();
            for (code, name) in names.iter().enumerate() {
                let color = match state_rule {
                    Some((allowed, _)) if allowed.contains(name) => OK,
                    Some((_, level)) => level_color(level),
                    None => INFO,
                };
                options.insert(
                    code.to_string(),
                    json!({"text": name, "color": color, "index": code}),
                );
            }
            vec![json!({"type": "value", "options": options})]
        }
    }
}

/// Mapping of `comm_ok`: `false` coloured by the device's `comm_lost` rule level
/// (red when the rule is serious, orange when normal, blue when disabled).
pub fn comm_mappings(rules: &[RuleSpec], texts: (&str, &str)) -> Vec<Json> {
    let lost = rules
        .iter()
        .filter(|r| r.enabled)
        .find_map(|r| match &r.condition {
            Condition::CommLost { level, .. } => Some(level_color(*level)),
            _ => None,
        })
        .unwrap_or(INFO);
    vec![json!({
        "type": "value",
        "options": {
            "true": {"text": texts.0, "color": OK, "index": 0},
            "false": {"text": texts.1, "color": lost, "index": 1},
        }
    })]
}
