//! Where a problem is in a TOML file: byte offsets (serde spans) turned into the 1-based
//! line and column a person finds in an editor, and the located error the device
//! profile parsers (Modbus and SNMP, `config/profiles/*.toml`) report.
//!
//! Every config file is read the same way: serde with spans first (a syntax error
//! stops there, at the place the TOML parser names), then validation that reports every
//! problem at the span of the value it is about. Columns count characters, not bytes,
//! so a Vietnamese description before the problem does not shift the column; an offset
//! inside a multi-byte character counts as that character.

use std::ops::Range;

/// 1-based line and column (in characters) of a byte offset; an offset past the end
/// is the end, and one inside a character is that character.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// Line, column and message of a TOML syntax (or shape) error in `text`; an error
/// without a span is placed at 1:1.
pub fn toml_error_at(text: &str, e: &toml::de::Error) -> (usize, usize, String) {
    let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
    (line, column, e.message().trim().to_string())
}

/// A profile that could not be parsed or is not valid.
///
/// Displayed as `origin:line:column: message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}")]
pub struct ProfileError {
    /// File (or other origin) of the profile.
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads a profile's text into its raw serde form; a TOML syntax error stops there and
/// is the only error reported.
pub fn parse_raw<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, Vec<ProfileError>> {
    toml::from_str(text).map_err(|e| {
        let (line, column, message) = toml_error_at(text, &e);
        vec![ProfileError {
            origin: origin.to_string(),
            line,
            column,
            message,
        }]
    })
}

/// The problems found while validating one profile text, each placed at the span of
/// the value it is about.
#[derive(Debug)]
pub struct ProfileErrors<'a> {
    text: &'a str,
    origin: &'a str,
    errors: Vec<ProfileError>,
}

impl<'a> ProfileErrors<'a> {
    /// No problems yet in `text`, named `origin` in messages.
    pub fn new(text: &'a str, origin: &'a str) -> Self {
        ProfileErrors {
            text,
            origin,
            errors: Vec::new(),
        }
    }

    /// Records a problem at the start of `span`.
    pub fn push(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.errors.push(ProfileError {
            origin: self.origin.to_string(),
            line,
            column,
            message: message.into(),
        });
    }

    /// How many problems have been recorded (to see whether a step added any).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// True while no problem has been recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The validated value when there is one and no problem was recorded; otherwise
    /// every problem, in the order found (never an empty list: a validator that gives
    /// up records why).
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<ProfileError>> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(self.errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("a\nđb", 4), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn line_col_inside_a_character_is_that_character() {
        // "đ" is two bytes: offset 3 is its second byte.
        assert_eq!(line_col("a\nđb", 3), (2, 1));
    }

    #[test]
    fn syntax_error_is_placed_and_alone() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Raw {
            id: String,
        }
        let errs = parse_raw::<Raw>("# đ\nid = \n", "p.toml").unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].origin.as_str(), errs[0].line), ("p.toml", 2));
        assert!(errs[0].to_string().starts_with("p.toml:2:"), "{}", errs[0]);
    }

    #[test]
    fn errors_are_placed_at_their_span_and_kept_in_order() {
        let text = "id = 1\nkind = \"x\"\n";
        let mut errs = ProfileErrors::new(text, "p.toml");
        assert!(errs.is_empty());
        errs.push(7..11, "bad kind");
        errs.push(0..2, "bad id");
        assert_eq!(errs.len(), 2);
        let got: Vec<String> = errs
            .finish(Some(()))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["p.toml:2:1: bad kind", "p.toml:1:1: bad id"]);
    }

    #[test]
    fn finish_gives_the_value_only_without_errors() {
        assert_eq!(ProfileErrors::new("", "p").finish(Some(5)), Ok(5));
        let mut errs = ProfileErrors::new("x", "p");
        errs.push(0..1, "wrong");
        assert_eq!(errs.finish(Some(5)).map_err(|e| e.len()), Err(1));
    }
}

/// A profile that only lists canonical points (GPIO contacts, ONVIF recorders):
/// `id`, `kind`, `protocol`, `description` and `[[points]]` with `point` and an
/// optional `note` or `source` for the installer.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPointList {
    id: serde_spanned::Spanned<String>,
    kind: serde_spanned::Spanned<String>,
    #[allow(dead_code)]
    protocol: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    points: Vec<RawListedPoint>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListedPoint {
    point: serde_spanned::Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
}

/// Parse a point-list profile: its id, kind and points, each point checked by `fits`
/// (`Err` is the message at the point's place); an unknown kind or point and a point
/// listed twice are errors too. The first problem with its position.
pub fn parse_point_list(
    text: &str,
    origin: &str,
    fits: impl Fn(crate::points::PointId) -> Result<(), String>,
) -> Result<(String, crate::model::Kind, Vec<crate::points::PointId>), ProfileError> {
    let first = |mut e: Vec<ProfileError>| e.swap_remove(0);
    let raw: RawPointList = parse_raw(text, origin).map_err(first)?;
    let mut errs = ProfileErrors::new(text, origin);
    let kind = crate::model::Kind::parse(raw.kind.get_ref());
    if kind.is_none() {
        errs.push(
            raw.kind.span(),
            format!("unknown kind {:?}", raw.kind.get_ref()),
        );
    }
    let mut pts = Vec::new();
    if let Some(k) = kind {
        for p in &raw.points {
            match crate::points::lookup(k, p.point.get_ref()) {
                Some(def) if pts.contains(&def) => {
                    errs.push(p.point.span(), format!("point `{}` listed twice", def.name))
                }
                Some(def) => match fits(def) {
                    Ok(()) => pts.push(def),
                    Err(msg) => errs.push(p.point.span(), msg),
                },
                None => errs.push(
                    p.point.span(),
                    format!("unknown point `{}` for kind {k}", p.point.get_ref()),
                ),
            }
        }
    }
    let id = raw.id.get_ref().trim().to_string();
    errs.finish(kind.map(|kind| (id, kind, pts))).map_err(first)
}
