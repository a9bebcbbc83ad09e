//! `[incidents]`: when a serious alarm becomes an incident (Art. 18.2–18.5), which
//! incidents it joins, and when people are reminded of the 24-hour report deadline.
//!
//! ```toml
//! [incidents]
//! open_after = "10m"         # a serious alarm lasting this long opens an incident
//! join_window = "1h"         # ... or joins the open incident of its system active this recently
//! reminders = ["12h", "2h"]  # before the report deadline
//! rules = ["fire_alarm"]     # rules whose serious alarm is an incident at once
//! notify = ["an"]          # people of [paging.people]; default: the person on call
//! ```
//!
//! Without the table the defaults hold (10 min, 1 h, 12 h and 2 h, no rule at once,
//! nobody notified: reminders are journaled and shown, not sent).

use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::DeValue;

use crate::config::Report;

/// The report deadline of Art. 18.5e.
pub const DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// Default time a serious alarm must last to open an incident.
pub const fn default_open_after() -> Duration {
    Duration::from_secs(10 * 60)
}

/// Default window in which a qualifying alarm joins an open incident of its system.
pub const fn default_join_window() -> Duration {
    Duration::from_secs(3600)
}

/// Default reminders before the deadline.
pub fn default_reminders() -> Vec<Duration> {
    vec![
        Duration::from_secs(12 * 3600),
        Duration::from_secs(2 * 3600),
    ]
}

/// `[incidents]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncidents {
    /// How long a serious alarm lasts before it opens an incident (`"10m"`).
    #[serde(default)]
    pub open_after: Option<Spanned<String>>,
    /// A qualifying alarm joins the open incident of the same system whose last
    /// alarm is at most this old (`"1h"`); otherwise it opens a new one.
    #[serde(default)]
    pub join_window: Option<Spanned<String>>,
    /// Reminders, each a time before the 24-hour deadline (`["12h", "2h"]`).
    #[serde(default)]
    pub reminders: Option<Spanned<Vec<Spanned<String>>>>,
    /// Rules whose serious alarm opens an incident at once (`["fire_alarm"]`).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Who receives the reminders: ids of `[paging.people]`.
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
}

/// `[incidents]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentConfig {
    /// A serious alarm lasting this long opens (or joins) an incident.
    pub open_after: Duration,
    /// Window to join the open incident of the same system.
    pub join_window: Duration,
    /// Reminders before the deadline, largest first.
    pub reminders: Vec<Duration>,
    /// Rules whose serious alarms are incidents at once.
    pub rules: Vec<String>,
    /// Who is reminded: ids of `[paging.people]` (checked against them); empty: the
    /// person on call.
    pub notify: Vec<String>,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            open_after: default_open_after(),
            join_window: default_join_window(),
            reminders: default_reminders(),
            rules: Vec::new(),
            notify: Vec::new(),
        }
    }
}

/// A duration as people write it: `90s`, `10m`, `2h`, `1d`, or sums such as `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration: write e.g. \"10m\", \"2h\", \"1h30m\"".into());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "{s:?} is not a duration: use a number with s, m, h or d (\"10m\", \"1h30m\")"
                ));
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration: a unit without a number"))?;
        num.clear();
        total = total.saturating_add(n.saturating_mul(unit));
    }
    if !num.is_empty() {
        return Err(format!("{s:?}: a number without a unit (s, m, h or d)"));
    }
    Ok(Duration::from_secs(total))
}

/// Validate the `[incidents]` table (taken out of the document by the loader).
pub(crate) fn validate(
    r: &mut Report<'_>,
    table: Option<Spanned<DeValue<'_>>>,
    paging: Option<&crate::paging::PagingConfig>,
) -> IncidentConfig {
    let mut c = IncidentConfig::default();
    let Some(table) = table else {
        return c;
    };
    let Some(raw) = r.parse_value::<RawIncidents>(table, "incidents") else {
        return c;
    };
    let mut one =
        |v: &Spanned<String>, key: &str, min: Duration, max: Duration| match parse_duration(
            v.get_ref(),
        ) {
            Ok(d) if d >= min && d <= max => Some(d),
            Ok(_) => {
                r.at(
                    v.span(),
                    format!("incidents.{key}"),
                    format!(
                        "{:?} is out of range: use {} s to {} s",
                        v.get_ref(),
                        min.as_secs(),
                        max.as_secs()
                    ),
                );
                None
            }
            Err(e) => {
                r.at(v.span(), format!("incidents.{key}"), e);
                None
            }
        };
    if let Some(v) = &raw.open_after
        && let Some(d) = one(v, "open_after", Duration::ZERO, Duration::from_secs(86_400))
    {
        c.open_after = d;
    }
    if let Some(v) = &raw.join_window
        && let Some(d) = one(
            v,
            "join_window",
            Duration::ZERO,
            Duration::from_secs(7 * 86_400),
        )
    {
        c.join_window = d;
    }
    if let Some(list) = &raw.reminders {
        let mut out = Vec::new();
        for v in list.get_ref() {
            if let Some(d) = one(v, "reminders", Duration::from_secs(60), DEADLINE) {
                out.push(d);
            }
        }
        out.sort_by(|a, b| b.cmp(a));
        out.dedup();
        c.reminders = out;
    }
    c.rules = raw.rules;
    for p in raw.notify {
        match paging {
            None => r.at(
                p.span(),
                "incidents.notify",
                format!(
                    "person {:?}: reminders go to people of [paging.people], and there is no [paging] table",
                    p.get_ref()
                ),
            ),
            Some(pc) if !pc.people.iter().any(|x| &x.id == p.get_ref()) => r.at(
                p.span(),
                "incidents.notify",
                format!("person {:?} is not in [paging.people]", p.get_ref()),
            ),
            Some(_) => c.notify.push(p.into_inner()),
        }
    }
    c
}
