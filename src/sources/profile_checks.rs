//! Checks both device profile formats (Modbus register maps, SNMP OID lists) make the
//! same way and with the same messages: the device kind, canonical points mapped once,
//! the vendor source named, the scale and the valid range.
//!
//! Each check records its problem in the profile's [`ProfileErrors`] at the span of the
//! value it is about and returns what it could read, so validation goes on and reports
//! every problem in file order.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_spanned::Spanned;

use crate::config::span::ProfileErrors;
use crate::model::Kind;
use crate::points::{self, PointId};

/// The profile's id (`id = "ups-mib"`), trimmed: not empty, letters, digits, `-`, `_`
/// and `.` only (devices name it in the site config and it appears in logs and the
/// `probe` header). Modbus and SNMP profiles share this one rule.
pub(crate) fn profile_id(errors: &mut ProfileErrors<'_>, s: &Spanned<String>) -> String {
    let id = s.get_ref().trim().to_string();
    if !valid_profile_id(&id) {
        errors.push(
            s.span(),
            format!(
                "{:?} is not a valid profile id: use letters, digits, '-', '_' and '.'",
                s.get_ref()
            ),
        );
    }
    id
}

/// Whether `id` is a valid profile id (see [`profile_id`]).
pub(crate) fn valid_profile_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Why a number is outside the plausible range `min..=max` of a point, in words
/// (`2369 is above the plausible maximum 600`); `None` when it is inside.
pub(crate) fn range_note(v: f64, min: Option<f64>, max: Option<f64>) -> Option<String> {
    let n = |x: f64| crate::model::fmt_number(x);
    match (min, max) {
        (Some(lo), _) if v < lo => Some(match max {
            Some(hi) => format!(
                "{} is below the plausible range {} to {}",
                n(v),
                n(lo),
                n(hi)
            ),
            None => format!("{} is below the plausible minimum {}", n(v), n(lo)),
        }),
        (_, Some(hi)) if v > hi => Some(match min {
            Some(lo) => format!(
                "{} is above the plausible range {} to {}",
                n(v),
                n(lo),
                n(hi)
            ),
            None => format!("{} is above the plausible maximum {}", n(v), n(hi)),
        }),
        _ => None,
    }
}

/// The profile's device kind (`kind = "ups"`).
pub(crate) fn kind(errors: &mut ProfileErrors<'_>, s: &Spanned<String>) -> Option<Kind> {
    let kind = Kind::parse(s.get_ref());
    if kind.is_none() {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        errors.push(
            s.span(),
            format!(
                "unknown kind {:?}: expected one of {}",
                s.get_ref(),
                names.join(", ")
            ),
        );
    }
    kind
}

/// The canonical point a `point = "..."` key names for `kind`.
pub(crate) fn point(
    errors: &mut ProfileErrors<'_>,
    kind: Kind,
    s: &Spanned<String>,
) -> Option<PointId> {
    let name = s.get_ref();
    let def = points::lookup(kind, name);
    if def.is_none() {
        errors.push(
            s.span(),
            format!("unknown point `{name}` for kind `{kind}`"),
        );
    }
    def
}

/// Adds `p`, the mapping of canonical point `point`, to `points` unless that point is
/// mapped already: a second mapping is an error at `span` (its `point` key).
pub(crate) fn push_once<P>(
    errors: &mut ProfileErrors<'_>,
    points: &mut Vec<P>,
    p: P,
    point: impl Fn(&P) -> PointId,
    span: Range<usize>,
) {
    let def = point(&p);
    if points.iter().any(|q| std::ptr::eq(point(q), def)) {
        errors.push(span, format!("point `{}` is mapped twice", def.name));
    } else {
        points.push(p);
    }
}

/// A profile must have `[[points]]` tables: `given` is how many it has, `id_span` where
/// the problem is shown.
pub(crate) fn some_points(errors: &mut ProfileErrors<'_>, given: usize, id_span: Range<usize>) {
    if given == 0 {
        errors.push(id_span, "the profile maps no points: add [[points]] tables");
    }
}

/// The `source` of `what` (a point, a trap): where the vendor documents it, trimmed.
/// Missing (an error at `missing_at`) or empty, it is an error saying `hint`, what to
/// name.
pub(crate) fn source(
    errors: &mut ProfileErrors<'_>,
    s: &Option<Spanned<String>>,
    missing_at: Range<usize>,
    what: &str,
    hint: &str,
) -> String {
    match s {
        Some(s) if !s.get_ref().trim().is_empty() => s.get_ref().trim().to_string(),
        Some(s) => {
            errors.push(s.span(), format!("{what}: `source` is empty: {hint}"));
            String::new()
        }
        None => {
            errors.push(missing_at, format!("{what}: missing `source`: {hint}"));
            String::new()
        }
    }
}

/// The `scale` of point `name` (1 when not given); it must be finite and not zero.
pub(crate) fn scale(errors: &mut ProfileErrors<'_>, name: &str, s: &Option<Spanned<f64>>) -> f64 {
    if let Some(s) = s
        && (!s.get_ref().is_finite() || *s.get_ref() == 0.0)
    {
        errors.push(
            s.span(),
            format!("point `{name}`: scale must be a finite, non-zero number"),
        );
    }
    s.as_ref().map(|s| *s.get_ref()).unwrap_or(1.0)
}

/// The valid range `(min, max)` of point `name` after scaling; `min` must not be above
/// `max`.
pub(crate) fn range(
    errors: &mut ProfileErrors<'_>,
    name: &str,
    min: &Option<Spanned<f64>>,
    max: &Option<Spanned<f64>>,
) -> (Option<f64>, Option<f64>) {
    let lo = min.as_ref().map(|m| *m.get_ref());
    let hi = max.as_ref().map(|m| *m.get_ref());
    if let (Some(lo), Some(hi), Some(m)) = (lo, hi, min)
        && lo > hi
    {
        errors.push(
            m.span(),
            format!("point `{name}`: min {lo} is above max {hi}"),
        );
    }
    (lo, hi)
}

/// An `enum` table of point `name`: raw integer keys (read by `key`) to names of the
/// enumeration `names`, sorted by raw value. A key that is not an integer or a name
/// the enumeration does not have is an error, and so is an empty table.
pub(crate) fn enum_table(
    errors: &mut ProfileErrors<'_>,
    name: &str,
    table: &Spanned<BTreeMap<String, Spanned<String>>>,
    names: &'static [&'static str],
    key: impl Fn(&str) -> Option<i64>,
) -> Vec<(i64, &'static str)> {
    let mut out = Vec::new();
    for (k, val) in table.get_ref() {
        let code = key(k);
        if code.is_none() {
            errors.push(
                table.span(),
                format!("point `{name}`: enum key {k:?} is not an integer"),
            );
        }
        let canon = names.iter().find(|n| **n == val.get_ref().as_str());
        if canon.is_none() {
            errors.push(
                val.span(),
                format!(
                    "point `{name}`: {:?} is not a value of this enumeration; use one of {}",
                    val.get_ref(),
                    names.join(", ")
                ),
            );
        }
        if let (Some(c), Some(n)) = (code, canon) {
            out.push((c, *n));
        }
    }
    out.sort_by_key(|(c, _)| *c);
    if table.get_ref().is_empty() {
        errors.push(
            table.span(),
            format!("point `{name}`: the enum table is empty"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spanned<T>(v: T, at: Range<usize>) -> Spanned<T> {
        Spanned::new(at, v)
    }

    fn messages(errors: ProfileErrors<'_>) -> Vec<String> {
        match errors.finish(None::<()>) {
            Ok(()) => vec![],
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn kind_and_point_name_what_exists() {
        let text = "kind = \"ups\"\n";
        let mut e = ProfileErrors::new(text, "p.toml");
        assert_eq!(kind(&mut e, &spanned("ups".into(), 7..12)), Some(Kind::Ups));
        assert!(point(&mut e, Kind::Ups, &spanned("load_pct".into(), 0..1)).is_some());
        assert!(e.is_empty());
        assert_eq!(kind(&mut e, &spanned("toaster".into(), 7..12)), None);
        assert_eq!(
            point(&mut e, Kind::Ups, &spanned("temp".into(), 0..1)),
            None
        );
        let got = messages(e);
        assert!(
            got[0].starts_with("p.toml:1:8: unknown kind \"toaster\": expected one of "),
            "{got:?}"
        );
        assert_eq!(got[1], "p.toml:1:1: unknown point `temp` for kind `ups`");
    }

    #[test]
    fn a_point_is_mapped_once() {
        let mut e = ProfileErrors::new("a\nb\n", "p.toml");
        let load = points::lookup(Kind::Ups, "load_pct").unwrap();
        let mut list: Vec<(PointId, u8)> = Vec::new();
        push_once(&mut e, &mut list, (load, 1), |p| p.0, 0..1);
        push_once(&mut e, &mut list, (load, 2), |p| p.0, 2..3);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].1, 1, "the first mapping stays");
        assert_eq!(
            messages(e),
            ["p.toml:2:1: point `load_pct` is mapped twice"]
        );
    }

    #[test]
    fn source_scale_and_range() {
        let mut e = ProfileErrors::new("x", "p.toml");
        let given = Some(spanned(" manual p.4 ".to_string(), 0..1));
        assert_eq!(
            source(&mut e, &given, 0..1, "point `a`", "name it"),
            "manual p.4"
        );
        assert_eq!(scale(&mut e, "a", &None), 1.0);
        assert_eq!(scale(&mut e, "a", &Some(spanned(0.1, 0..1))), 0.1);
        let (lo, hi) = (Some(spanned(0.0, 0..1)), Some(spanned(100.0, 0..1)));
        assert_eq!(range(&mut e, "a", &lo, &hi), (Some(0.0), Some(100.0)));
        some_points(&mut e, 1, 0..1);
        assert!(e.is_empty());

        let blank = Some(spanned("  ".to_string(), 0..1));
        assert_eq!(source(&mut e, &blank, 0..1, "trap `t`", "name the MIB"), "");
        assert_eq!(source(&mut e, &None, 0..1, "point `b`", "name the MIB"), "");
        assert_eq!(scale(&mut e, "c", &Some(spanned(0.0, 0..1))), 0.0);
        assert!(scale(&mut e, "c", &Some(spanned(f64::NAN, 0..1))).is_nan());
        let (lo, hi) = (Some(spanned(5.0, 0..1)), Some(spanned(1.0, 0..1)));
        assert_eq!(range(&mut e, "d", &lo, &hi), (Some(5.0), Some(1.0)));
        some_points(&mut e, 0, 0..1);
        assert_eq!(
            messages(e),
            [
                "p.toml:1:1: trap `t`: `source` is empty: name the MIB",
                "p.toml:1:1: point `b`: missing `source`: name the MIB",
                "p.toml:1:1: point `c`: scale must be a finite, non-zero number",
                "p.toml:1:1: point `c`: scale must be a finite, non-zero number",
                "p.toml:1:1: point `d`: min 5 is above max 1",
                "p.toml:1:1: the profile maps no points: add [[points]] tables",
            ]
        );
    }

    #[test]
    fn enum_table_maps_keys_to_names_sorted() {
        const NAMES: &[&str] = &["normal", "on_battery"];
        let mut e = ProfileErrors::new("x", "p.toml");
        let table = |pairs: &[(&str, &str)]| {
            let map = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), spanned(v.to_string(), 0..1)))
                .collect();
            spanned(map, 0..1)
        };
        let decimal = |k: &str| k.parse::<i64>().ok();
        let good = table(&[("5", "on_battery"), ("3", "normal")]);
        assert_eq!(
            enum_table(&mut e, "s", &good, NAMES, decimal),
            [(3, "normal"), (5, "on_battery")]
        );
        assert!(e.is_empty());
        let bad = table(&[("x", "normal"), ("4", "off")]);
        assert_eq!(enum_table(&mut e, "s", &bad, NAMES, decimal), []);
        assert_eq!(enum_table(&mut e, "s", &table(&[]), NAMES, decimal), []);
        assert_eq!(
            messages(e),
            [
                "p.toml:1:1: point `s`: \"off\" is not a value of this enumeration; use one of normal, on_battery",
                "p.toml:1:1: point `s`: enum key \"x\" is not an integer",
                "p.toml:1:1: point `s`: the enum table is empty",
            ]
        );
    }
}
