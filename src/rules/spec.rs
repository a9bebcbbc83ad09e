//! What an alarm rule is, and how a config override changes it.
//!
//! A [`RuleSpec`] is plain data: a name unique per device, the canonical point it
//! watches, a [`Condition`] and the article of the regulation it serves. Overrides
//! (kind default < site < room < device, see `CONTRACTS.md`) go through
//! [`apply_override`], which refuses anything that makes no sense for the rule
//! (a `normal` limit on a boolean rule, a serious limit on the wrong side of the normal
//! one, a negative delay) so that `check-config` can say exactly what is wrong.
//!
//! Invariant kept by [`apply_override`]: limits, hysteresis and delays are finite, the
//! hysteresis and delays are not negative, and a serious limit is never less severe
//! than the normal one.

use std::sync::Arc;

use crate::config::raw::RawRuleOverride;
use crate::model::{Level, Value};

/// One alarm rule of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// snake_case name, unique per device (`temperature_high`); the alarm key is
    /// `device/name`.
    pub name: Arc<str>,
    /// Canonical point the rule watches (`temperature_c`); `"comm"` for
    /// [`Condition::CommLost`].
    pub point: &'static str,
    /// When the alarm is active.
    pub condition: Condition,
    /// Article of the regulation the rule serves (`"10.3"`), cited in the message.
    pub article: &'static str,
    /// A disabled rule is never evaluated and raises nothing.
    pub enabled: bool,
}

/// When a rule's alarm is active, and at which level (Art. 18.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The value is above a limit: `serious` raises serious, else `normal` raises normal.
    /// At least one of the two is set. Clears at or below `normal − hysteresis`.
    Above {
        /// Normal-level limit.
        normal: Option<f64>,
        /// Serious-level limit (at or above `normal`).
        serious: Option<f64>,
        /// Distance back inside a limit before the level drops, in the point's unit.
        hysteresis: f64,
        /// How long the condition must hold before raising, seconds.
        on_delay_s: f64,
    },
    /// The value is below a limit: the mirror image of [`Condition::Above`].
    Below {
        /// Normal-level limit.
        normal: Option<f64>,
        /// Serious-level limit (at or below `normal`).
        serious: Option<f64>,
        /// Distance back inside a limit before the level drops, in the point's unit.
        hysteresis: f64,
        /// How long the condition must hold before raising, seconds.
        on_delay_s: f64,
    },
    /// A boolean point equals `when`.
    Flag {
        /// The value that is the alarm (`true` for `leak_detected`, `false` for `unit_on`).
        when: bool,
        /// Level of the alarm.
        level: Level,
        /// How long the condition must hold before raising, seconds.
        on_delay_s: f64,
    },
    /// An enumeration point is not one of `allowed` (generator mode not `auto`).
    EnumNot {
        /// The values that are fine.
        allowed: &'static [&'static str],
        /// Level of the alarm.
        level: Level,
        /// How long the condition must hold before raising, seconds.
        on_delay_s: f64,
    },
    /// max − min of the good samples within the last `window_s` is above `max_delta`.
    RateOfChange {
        /// Largest allowed change within the window, in the point's unit.
        max_delta: f64,
        /// Window length, seconds.
        window_s: f64,
        /// Level of the alarm.
        level: Level,
    },
    /// A door (Art. 7.5): open outside its access windows raises at once at
    /// `outside_level`; inside one, open longer than `on_delay_s` raises at `level`
    /// ([`super::door`]).
    DoorAccess {
        /// Level of a door open too long inside a window (or with no window).
        level: Level,
        /// Level of a door open outside every access window.
        outside_level: Level,
        /// How long a door may stay open inside a window, seconds.
        on_delay_s: f64,
        /// The access windows covering the door (`None`: none; only the long-open
        /// alarm then applies).
        windows: Option<std::sync::Arc<super::door::Windows>>,
    },
    /// No poll with `comm_ok` for `intervals` poll intervals (point `"comm"`).
    CommLost {
        /// Number of poll intervals of silence that raise.
        intervals: u32,
        /// Level of the alarm.
        level: Level,
    },
    /// An enumeration point whose values carry their own level (a generator
    /// controller's named alarm: `warning` → normal, `shutdown` → serious); any other
    /// value is no alarm.
    EnumLevel {
        /// `(value, level)` pairs.
        levels: &'static [(&'static str, Level)],
        /// How long the condition must hold before raising, seconds.
        on_delay_s: f64,
    },
    /// A condition over points of one or more devices (UPS on battery ∧ generator not
    /// on load; a site's own `[[rules]]`), see [`Expr`].
    Composite {
        /// What must hold.
        expr: Arc<Expr>,
        /// Level of the alarm.
        level: Level,
        /// How long the condition must hold before raising, seconds.
        on_delay_s: f64,
        /// The site's own texts for the condition `(Vietnamese, English)`; `None`:
        /// the gateway's text for the rule name.
        text: Option<Arc<(String, String)>>,
    },
    /// A generator start (`engine_running` false → true) must reach rated voltage
    /// (`gen_voltage_l1_v`) and frequency (`gen_frequency_hz`) within `within_s`
    /// (NFPA 110 Type 10). Raises at the deadline when not reached; clears once the
    /// generator is at rated values.
    StartToRated {
        /// Seconds from the start allowed to reach rated values.
        within_s: f64,
        /// Rated phase voltage, V.
        voltage_v: f64,
        /// Rated frequency, Hz.
        frequency_hz: f64,
        /// Allowed deviation of the voltage, percent of rated.
        voltage_tolerance_pct: f64,
        /// Allowed deviation of the frequency, percent of rated.
        frequency_tolerance_pct: f64,
        /// Level of the alarm.
        level: Level,
    },
}

/// A condition over canonical points, possibly of several devices.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every part holds (an empty list holds).
    All(Vec<Expr>),
    /// At least one part holds (an empty list does not).
    Any(Vec<Expr>),
    /// One point's test.
    Term(Term),
}

/// One point's test inside an [`Expr`].
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// Device id; `None`: the device the rule belongs to.
    pub device: Option<Arc<str>>,
    /// Canonical point of that device.
    pub point: &'static str,
    /// The test.
    pub test: Test,
    /// What the term counts as while the point has no good reading younger than the
    /// device's staleness horizon (silent device, unknown value). `None`: unknown —
    /// a rule whose outcome depends on it keeps its state (no raise, no clear), as a
    /// single-point rule does on a bad sample. `Some(x)`: counts as `x`, so missing
    /// data errs on the side of the alarm where that is safe (a silent generator is
    /// not "running").
    pub if_unknown: Option<bool>,
}

/// The test of a [`Term`].
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// A boolean point equals this.
    Is(bool),
    /// An enumeration point has this value.
    IsValue(&'static str),
    /// An enumeration point does not have this value.
    IsNotValue(&'static str),
    /// A number is above this (strictly).
    Above(f64),
    /// A number is below this (strictly).
    Below(f64),
    /// A number is above another point of the same device plus `by` (supply air above
    /// the set point + 3 °C); unknown while either is.
    AbovePoint {
        /// The other point.
        point: &'static str,
        /// Margin, in the points' unit.
        by: f64,
    },
}

/// How an [`Expr`] reads a point: `(device, point)` → its good, fresh value (device
/// `None`: the rule's own device).
pub type PointValue<'a> = dyn Fn(Option<&Arc<str>>, &'static str) -> Option<Value> + 'a;

impl Expr {
    /// Every term, depth first.
    pub fn terms(&self) -> Vec<&Term> {
        match self {
            Expr::Term(t) => vec![t],
            Expr::All(v) | Expr::Any(v) => v.iter().flat_map(Expr::terms).collect(),
        }
    }

    /// Evaluate with `value(device, point)`: the point's good, fresh value if any.
    /// `None`: the outcome depends on a term that is unknown (three-valued logic: a
    /// false part decides `All`, a true part decides `Any`, whatever is unknown).
    pub fn eval(&self, value: &PointValue<'_>) -> Option<bool> {
        match self {
            Expr::All(v) => {
                let parts: Vec<Option<bool>> = v.iter().map(|e| e.eval(value)).collect();
                if parts.contains(&Some(false)) {
                    Some(false)
                } else if parts.contains(&None) {
                    None
                } else {
                    Some(true)
                }
            }
            Expr::Any(v) => {
                let parts: Vec<Option<bool>> = v.iter().map(|e| e.eval(value)).collect();
                if parts.contains(&Some(true)) {
                    Some(true)
                } else if parts.contains(&None) {
                    None
                } else {
                    Some(false)
                }
            }
            Expr::Term(t) => match value(t.device.as_ref(), t.point) {
                None => t.if_unknown,
                Some(v) => match (&t.test, &v) {
                    (Test::Is(b), Value::Bool(x)) => Some(x == b),
                    (Test::IsValue(s), Value::Enum(x)) => Some(x == s),
                    (Test::IsNotValue(s), Value::Enum(x)) => Some(x != s),
                    (Test::AbovePoint { point, by }, _) => {
                        match (
                            v.as_f64(),
                            value(t.device.as_ref(), point).and_then(|o| o.as_f64()),
                        ) {
                            (Some(x), Some(o)) => Some(x > o + by),
                            _ => t.if_unknown,
                        }
                    }
                    (Test::Above(l), _) => v.as_f64().map(|x| x > *l).or(t.if_unknown),
                    (Test::Below(l), _) => v.as_f64().map(|x| x < *l).or(t.if_unknown),
                    _ => t.if_unknown,
                },
            },
        }
    }

    /// The condition in words for the documentation: `ups: on_battery is true and
    /// (gen1: engine_running is false or ...)`.
    pub fn describe(&self) -> String {
        match self {
            Expr::Term(t) => {
                let dev = t.device.as_deref().unwrap_or("this device");
                let test = match &t.test {
                    Test::Is(b) => format!("is {b}"),
                    Test::IsValue(s) => format!("is {s}"),
                    Test::IsNotValue(s) => format!("is not {s}"),
                    Test::Above(x) => format!("above {}", super::messages::num(*x)),
                    Test::Below(x) => format!("below {}", super::messages::num(*x)),
                    Test::AbovePoint { point, by } => {
                        format!("above {point} + {}", super::messages::num(*by))
                    }
                };
                format!("{dev}: {} {test}", t.point)
            }
            Expr::All(v) | Expr::Any(v) => {
                let sep = if matches!(self, Expr::All(_)) {
                    " and "
                } else {
                    " or "
                };
                let parts: Vec<String> = v
                    .iter()
                    .map(|e| match e {
                        Expr::Term(_) => e.describe(),
                        _ => format!("({})", e.describe()),
                    })
                    .collect();
                parts.join(sep)
            }
        }
    }
}

impl Condition {
    /// Short name of the rule type, used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Condition::Above { .. } => "upper-threshold",
            Condition::Below { .. } => "lower-threshold",
            Condition::Flag { .. } => "boolean",
            Condition::EnumNot { .. } => "state",
            Condition::RateOfChange { .. } => "rate-of-change",
            Condition::DoorAccess { .. } => "door-access",
            Condition::CommLost { .. } => "communication-loss",
            Condition::EnumLevel { .. } => "named-alarm",
            Condition::Composite { .. } => "composite",
            Condition::StartToRated { .. } => "start-to-rated",
        }
    }
}

/// Why an override cannot be applied to a rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OverrideError {
    /// The key has no meaning for this type of rule.
    #[error("rule {rule:?} is {article} {ty} rule: `{key}` does not apply{hint}")]
    NotApplicable {
        /// Rule name.
        rule: String,
        /// "a" or "an".
        article: &'static str,
        /// Rule type (`boolean`, `upper-threshold`, ...).
        ty: &'static str,
        /// The override key.
        key: &'static str,
        /// What does apply, with a leading separator, or empty.
        hint: String,
    },
    /// A number that is not finite, or negative where it must not be.
    #[error("rule {rule:?}: `{key}` = {value} is invalid: {why}")]
    BadNumber {
        /// Rule name.
        rule: String,
        /// The override key.
        key: &'static str,
        /// The value given.
        value: f64,
        /// What is expected.
        why: &'static str,
    },
    /// The serious limit is less severe than the normal one.
    #[error(
        "rule {rule:?}: serious limit {serious} is {relation} normal limit {normal}: on {ty} rule the serious limit must be at or {side} the normal one"
    )]
    Order {
        /// Rule name.
        rule: String,
        /// Serious limit after the override.
        serious: f64,
        /// Normal limit after the override.
        normal: f64,
        /// "below" or "above".
        relation: &'static str,
        /// "an upper-threshold" or "a lower-threshold".
        ty: &'static str,
        /// "above" or "below".
        side: &'static str,
    },
}

/// Apply one override layer to a rule. Unset fields keep the inherited value.
///
/// Errors name the rule and the key, e.g. `rule "leak_detected" is a boolean rule:
/// `normal` does not apply`. On error the spec is left unchanged.
pub fn apply_override(spec: &mut RuleSpec, o: &RawRuleOverride) -> Result<(), OverrideError> {
    let rule = spec.name.to_string();
    let not_applicable = |cond: &Condition, key: &'static str| {
        let ty = cond.type_name();
        let hint = match cond {
            Condition::Flag { .. }
            | Condition::EnumNot { .. }
            | Condition::EnumLevel { .. }
            | Condition::Composite { .. } => "; only `enabled` and `on_delay_s` do".to_string(),
            Condition::StartToRated { .. } => {
                "; only `enabled`, `on_delay_s` (the time allowed), `rated_voltage_v` and `rated_frequency_hz` do".to_string()
            }
            Condition::RateOfChange {
                level: Level::Normal,
                ..
            } => "; only `enabled` and `normal` (the allowed change) do".to_string(),
            Condition::RateOfChange {
                level: Level::Serious,
                ..
            } => "; only `enabled` and `serious` (the allowed change) do".to_string(),
            Condition::CommLost { .. } => "; only `enabled` does".to_string(),
            Condition::DoorAccess { .. } => {
                "; only `enabled`, `on_delay_s` and `outside_level` do".to_string()
            }
            Condition::Above { .. } | Condition::Below { .. } => String::new(),
        };
        let article = if ty.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        OverrideError::NotApplicable {
            rule: rule.clone(),
            article,
            ty,
            key,
            hint,
        }
    };
    let finite = |key: &'static str, v: Option<f64>| match v {
        Some(x) if !x.is_finite() => Err(OverrideError::BadNumber {
            rule: rule.clone(),
            key,
            value: x,
            why: "it must be a finite number",
        }),
        _ => Ok(v),
    };
    let non_negative = |key: &'static str, v: Option<f64>| match finite(key, v)? {
        Some(x) if x < 0.0 => Err(OverrideError::BadNumber {
            rule: rule.clone(),
            key,
            value: x,
            why: "it must not be negative",
        }),
        v => Ok(v),
    };

    if !matches!(spec.condition, Condition::StartToRated { .. }) {
        for (key, set) in [
            ("rated_voltage_v", o.rated_voltage_v.is_some()),
            ("rated_frequency_hz", o.rated_frequency_hz.is_some()),
        ] {
            if set {
                return Err(not_applicable(&spec.condition, key));
            }
        }
    }
    let normal = finite("normal", o.normal)?;
    let serious = finite("serious", o.serious)?;
    let hysteresis = non_negative("hysteresis", o.hysteresis)?;
    let on_delay = non_negative("on_delay_s", o.on_delay_s)?;

    if o.outside_level.is_some() && !matches!(spec.condition, Condition::DoorAccess { .. }) {
        return Err(not_applicable(&spec.condition, "outside_level"));
    }
    let mut cond = spec.condition.clone();
    match &mut cond {
        Condition::Above {
            normal: n,
            serious: s,
            hysteresis: h,
            on_delay_s: d,
        }
        | Condition::Below {
            normal: n,
            serious: s,
            hysteresis: h,
            on_delay_s: d,
        } => {
            if normal.is_some() {
                *n = normal;
            }
            if serious.is_some() {
                *s = serious;
            }
            if let Some(x) = hysteresis {
                *h = x;
            }
            if let Some(x) = on_delay {
                *d = x;
            }
        }
        Condition::StartToRated {
            within_s,
            voltage_v,
            frequency_hz,
            ..
        } => {
            for (key, set) in [
                ("normal", normal.is_some()),
                ("serious", serious.is_some()),
                ("hysteresis", hysteresis.is_some()),
            ] {
                if set {
                    return Err(not_applicable(&spec.condition, key));
                }
            }
            if let Some(x) = on_delay {
                *within_s = x;
            }
            for (key, v, slot) in [
                ("rated_voltage_v", o.rated_voltage_v, voltage_v),
                ("rated_frequency_hz", o.rated_frequency_hz, frequency_hz),
            ] {
                if let Some(x) = v {
                    if !x.is_finite() || x <= 0.0 {
                        return Err(OverrideError::BadNumber {
                            rule: rule.clone(),
                            key,
                            value: x,
                            why: "a rated value must be a positive number",
                        });
                    }
                    *slot = x;
                }
            }
        }
        Condition::Flag { on_delay_s: d, .. }
        | Condition::EnumNot { on_delay_s: d, .. }
        | Condition::EnumLevel { on_delay_s: d, .. }
        | Condition::Composite { on_delay_s: d, .. } => {
            for (key, set) in [
                ("normal", normal.is_some()),
                ("serious", serious.is_some()),
                ("hysteresis", hysteresis.is_some()),
            ] {
                if set {
                    return Err(not_applicable(&spec.condition, key));
                }
            }
            if let Some(x) = on_delay {
                *d = x;
            }
        }
        Condition::RateOfChange {
            max_delta, level, ..
        } => {
            let (own, other, own_key, other_key) = match level {
                Level::Normal => (normal, serious, "normal", "serious"),
                Level::Serious => (serious, normal, "serious", "normal"),
            };
            if other.is_some() {
                return Err(not_applicable(&spec.condition, other_key));
            }
            for (key, set) in [
                ("hysteresis", hysteresis.is_some()),
                ("on_delay_s", on_delay.is_some()),
            ] {
                if set {
                    return Err(not_applicable(&spec.condition, key));
                }
            }
            if let Some(x) = own {
                if x <= 0.0 {
                    return Err(OverrideError::BadNumber {
                        rule: rule.clone(),
                        key: own_key,
                        value: x,
                        why: "the allowed change must be positive",
                    });
                }
                *max_delta = x;
            }
        }
        Condition::DoorAccess {
            on_delay_s: d,
            outside_level,
            ..
        } => {
            for (key, set) in [
                ("normal", normal.is_some()),
                ("serious", serious.is_some()),
                ("hysteresis", hysteresis.is_some()),
            ] {
                if set {
                    return Err(not_applicable(&spec.condition, key));
                }
            }
            if let Some(x) = on_delay {
                *d = x;
            }
            if let Some(l) = o.outside_level {
                *outside_level = l;
            }
        }
        Condition::CommLost { .. } => {
            for (key, set) in [
                ("normal", normal.is_some()),
                ("serious", serious.is_some()),
                ("hysteresis", hysteresis.is_some()),
                ("on_delay_s", on_delay.is_some()),
            ] {
                if set {
                    return Err(not_applicable(&spec.condition, key));
                }
            }
        }
    }

    // The serious limit must not be less severe than the normal one.
    match cond {
        Condition::Above {
            normal: Some(n),
            serious: Some(s),
            ..
        } if s < n => {
            return Err(OverrideError::Order {
                rule,
                serious: s,
                normal: n,
                relation: "below",
                ty: "an upper-threshold",
                side: "above",
            });
        }
        Condition::Below {
            normal: Some(n),
            serious: Some(s),
            ..
        } if s > n => {
            return Err(OverrideError::Order {
                rule,
                serious: s,
                normal: n,
                relation: "above",
                ty: "a lower-threshold",
                side: "below",
            });
        }
        _ => {}
    }

    spec.condition = cond;
    if let Some(e) = o.enabled {
        spec.enabled = e;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::rules::defaults;

    fn rule(kind: Kind, name: &str) -> RuleSpec {
        defaults(kind)
            .into_iter()
            .find(|r| &*r.name == name)
            .expect("default rule exists")
    }

    fn parse(toml_text: &str) -> RawRuleOverride {
        toml::from_str(toml_text).expect("override parses")
    }

    #[test]
    fn threshold_override_changes_limits_and_keeps_the_rest() {
        let mut r = rule(Kind::Climate, "temperature_high");
        apply_override(&mut r, &parse("normal = 25\nhysteresis = 1.0")).unwrap();
        assert_eq!(
            r.condition,
            Condition::Above {
                normal: Some(25.0),
                serious: Some(32.0),
                hysteresis: 1.0,
                on_delay_s: 60.0
            }
        );
        apply_override(&mut r, &parse("enabled = false\non_delay_s = 0")).unwrap();
        assert!(!r.enabled);
        assert!(matches!(
            r.condition,
            Condition::Above {
                on_delay_s: 0.0,
                normal: Some(25.0),
                ..
            }
        ));
    }

    #[test]
    fn normal_on_a_boolean_rule_is_refused() {
        let mut r = rule(Kind::Leak, "leak_detected");
        let before = r.clone();
        let e = apply_override(&mut r, &parse("normal = 1"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "rule \"leak_detected\" is a boolean rule: `normal` does not apply; only `enabled` and `on_delay_s` do"
        );
        assert_eq!(r, before, "a refused override changes nothing");
        apply_override(&mut r, &parse("on_delay_s = 5")).unwrap();
        assert!(matches!(
            r.condition,
            Condition::Flag {
                on_delay_s: 5.0,
                ..
            }
        ));
    }

    #[test]
    fn serious_below_normal_on_an_upper_threshold_is_refused() {
        let mut r = rule(Kind::Climate, "temperature_high");
        let e = apply_override(&mut r, &parse("serious = 25"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("rule \"temperature_high\""), "{e}");
        assert!(
            e.contains("serious limit 25 is below normal limit 27"),
            "{e}"
        );
        // Both in one layer: checked together, so raising both is fine.
        apply_override(&mut r, &parse("normal = 33\nserious = 35")).unwrap();
    }

    #[test]
    fn serious_above_normal_on_a_lower_threshold_is_refused() {
        let mut r = rule(Kind::Generator, "fuel_low");
        let e = apply_override(&mut r, &parse("serious = 60"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("serious limit 60 is above normal limit 50"),
            "{e}"
        );
    }

    #[test]
    fn negative_or_non_finite_numbers_are_refused() {
        let mut r = rule(Kind::Climate, "humidity_high");
        let e = apply_override(&mut r, &parse("hysteresis = -1"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`hysteresis` = -1 is invalid: it must not be negative"),
            "{e}"
        );
        let e = apply_override(&mut r, &parse("on_delay_s = -5"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`on_delay_s`"), "{e}");
        let e = apply_override(&mut r, &parse("normal = nan"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("finite"), "{e}");
    }

    #[test]
    fn rate_rule_takes_its_own_level_only() {
        let mut r = rule(Kind::Climate, "temperature_rate_15min");
        apply_override(&mut r, &parse("normal = 3")).unwrap();
        assert!(matches!(
            r.condition,
            Condition::RateOfChange { max_delta: 3.0, .. }
        ));
        let e = apply_override(&mut r, &parse("serious = 3"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is a rate-of-change rule: `serious` does not apply"),
            "{e}"
        );
        let e = apply_override(&mut r, &parse("normal = 0"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be positive"), "{e}");
    }

    #[test]
    fn comm_lost_takes_only_enabled() {
        let mut r = rule(Kind::Ups, "comm_lost");
        let e = apply_override(&mut r, &parse("on_delay_s = 5"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is a communication-loss rule: `on_delay_s` does not apply"),
            "{e}"
        );
        apply_override(&mut r, &parse("enabled = false")).unwrap();
        assert!(!r.enabled);
    }

    #[test]
    fn state_rule_refuses_limits() {
        let mut r = rule(Kind::Generator, "mode_not_auto");
        let e = apply_override(&mut r, &parse("serious = 1"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("rule \"mode_not_auto\" is a state rule: `serious`"),
            "{e}"
        );
    }
}
