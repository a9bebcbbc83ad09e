//! Every text the gateway shows to people, in Vietnamese (default, with diacritics) and
//! English, and every number it writes, for people and for machines.
//!
//! - [`names`]: what points, device kinds, enumeration values and units are called;
//! - [`words`]: alarm levels and states, value qualities and the other status words;
//! - [`number`]: numbers at a point's display resolution ([`crate::points::PointDef::decimals`]),
//!   one formatter per language for people (`28,5` / `28.5`) and one machine form
//!   (`.` as decimal point, no binary noise) for the HTTP API, MQTT and InfluxDB;
//! - [`alarm`]: alarm messages read on a phone, built from one template;
//! - [`time`]: the site's local time (IANA time zone, default `Asia/Ho_Chi_Minh`);
//! - [`wall`]: the fixed texts of the wall view's script.
//!
//! Invariants:
//! - each text exists in both languages side by side (`(vi, en)` in one entry), so a
//!   translation can never be missing; tests check every canonical point, kind and
//!   enumeration value has both, and that no entry names something the vocabulary
//!   does not have;
//! - the resolution of a point is defined once, in [`crate::points`]; nothing here or
//!   elsewhere picks decimals on its own;
//! - a number is turned into text only through [`number`], so the wall view, the API,
//!   MQTT and the alarm messages of one value agree.

pub mod alarm;
pub mod names;
pub mod number;
pub mod time;
pub mod wall;
pub mod words;

pub use crate::model::Language;

/// The site language from its config spelling: English only when it says `en`
/// (any case); Vietnamese otherwise, the product's default.
pub fn language(code: &str) -> Language {
    if code.trim().eq_ignore_ascii_case("en") {
        Language::En
    } else {
        Language::Vi
    }
}

/// The text of `lang` from a `(vi, en)` pair.
pub(crate) fn pick<T>(lang: Language, vi: T, en: T) -> T {
    match lang {
        Language::Vi => vi,
        Language::En => en,
    }
}

/// The language code used in HTML and `Accept-Language` style places: `vi` / `en`.
pub fn code(lang: Language) -> &'static str {
    pick(lang, "vi", "en")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_from_config() {
        assert_eq!(language("en"), Language::En);
        assert_eq!(language("EN"), Language::En);
        assert_eq!(language("vi"), Language::Vi);
        assert_eq!(language(""), Language::Vi);
        assert_eq!(language("fr"), Language::Vi);
        assert_eq!(code(Language::Vi), "vi");
        assert_eq!(code(Language::En), "en");
    }
}
