//! `[paging]`: the people who can be paged, the roster (shifts, rotations, overrides,
//! holidays, a fallback), the escalation policy and storm control, as written in the
//! site file, and their validation into a [`PagingConfig`] that cannot be wrong
//! (every person named exists, every phone is E.164, every schedule parses).
//!
//! Without a `[paging]` table nobody is paged (notifications are not made); the
//! gateway still raises, journals and publishes every alarm.

use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::DeValue;

use crate::config::Report;
use crate::model::Language;
use crate::schedule::Schedule;

/// Default minutes between two texts about the same unacknowledged serious alarm.
pub const fn default_repeat_min() -> u32 {
    5
}
/// Default minutes after the first text before the phone of the person paged rings.
pub const fn default_call_after_min() -> u32 {
    5
}
/// Default window of storm control, seconds.
pub const fn default_storm_window_s() -> u32 {
    120
}
/// Default texts per person and group of alarms within a storm window.
pub const fn default_storm_max() -> u32 {
    2
}
/// Default texts per person per hour.
pub const fn default_max_per_hour() -> u32 {
    10
}
/// Default wait for the confirming poll of a trap-raised alarm, seconds.
pub const fn default_trap_confirm_s() -> u32 {
    30
}
const fn yes() -> bool {
    true
}

/// `[[paging.people]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPerson {
    /// Short id (`an`), used in shifts, on `<prefix>/notify/<id>` and in the journal.
    pub id: Spanned<String>,
    /// Full name (`Nguyễn Văn An`).
    #[serde(default)]
    pub name: Option<String>,
    /// Mobile number in E.164 (`+84912345678`); replies from it are recognised.
    pub phone: Spanned<String>,
    /// Language of the texts this person gets: `vi` (default) or `en`.
    #[serde(default)]
    pub language: Option<Spanned<String>>,
    /// Free role (`engineer`, `lead`); an escalation step may name a role.
    #[serde(default)]
    pub role: Option<String>,
    /// How the person may be reached: `sms` (texts), `call` (rings). Default both.
    /// Every notification also goes to the sinks that take notifications (MQTT).
    #[serde(default)]
    pub channels: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[[paging.shifts]]` and `[[paging.overrides]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShift {
    /// The person on call.
    pub person: Spanned<String>,
    /// When, in the schedule syntax (src/schedule.rs), site local time.
    pub when: Spanned<Vec<String>>,
    /// Whether the shift also holds on a holiday (default true); office hours set
    /// `false`, so a holiday falls to the next shift, a rotation or the fallback.
    #[serde(default = "yes")]
    pub holidays: bool,
}

/// `[[paging.rotations]]` as written: people taking turns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRotation {
    /// In turn order.
    pub people: Spanned<Vec<Spanned<String>>>,
    /// Local date and time the first person's turn starts (`2026-12-07 08:00`).
    pub start: Spanned<String>,
    /// Length of a turn in days (default 7).
    #[serde(default)]
    pub every_days: Option<Spanned<u32>>,
    /// Restricts the rotation to these times (schedule syntax); default always.
    #[serde(default)]
    pub when: Option<Spanned<Vec<String>>>,
}

/// One escalation step as written: `{ after_min = 15, to = "next" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Minutes after the first page without an acknowledgement; decimals allowed
    /// (`0.1` = 6 s), more than 0 and at most 1440.
    pub after_min: Spanned<f64>,
    /// Who: a person id, `next` (the person on call after the current one), or
    /// `role:<role>` (every person with that role).
    pub to: Spanned<String>,
}

/// `[paging]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaging {
    /// The people.
    #[serde(default)]
    pub people: Vec<RawPerson>,
    /// Shifts, first match wins.
    #[serde(default)]
    pub shifts: Vec<RawShift>,
    /// Rotations, after the shifts.
    #[serde(default)]
    pub rotations: Vec<RawRotation>,
    /// Overrides (swaps, sick leave): before everything else.
    #[serde(default)]
    pub overrides: Vec<RawShift>,
    /// Holidays (schedule syntax, usually dates).
    #[serde(default)]
    pub holidays: Option<Spanned<Vec<String>>>,
    /// Who is paged when nobody is on call (a gap in the roster).
    #[serde(default)]
    pub fallback: Option<Spanned<String>>,
    /// Page normal alarms (one text to the person on call, no repeat). Default true.
    #[serde(default)]
    pub page_normal: Option<bool>,
    /// Only these rules' normal alarms are paged (default: every rule).
    #[serde(default)]
    pub normal_rules: Option<Vec<String>>,
    /// Normal alarms raised in these times wait until they end (schedule syntax).
    #[serde(default)]
    pub quiet_hours: Option<Spanned<Vec<String>>>,
    /// Minutes between texts about one unacknowledged serious alarm (0: once);
    /// decimals allowed (0.5 = 30 s).
    #[serde(default)]
    pub repeat_min: Option<Spanned<f64>>,
    /// Minutes after the first text before the phone rings (0: never); decimals
    /// allowed.
    #[serde(default)]
    pub call_after_min: Option<Spanned<f64>>,
    /// Escalation steps (default: `next` after 15 min, `role:lead` after 45 min).
    #[serde(default)]
    pub escalate: Option<Vec<RawStep>>,
    /// Storm control window, seconds (default 120).
    #[serde(default)]
    pub storm_window_s: Option<Spanned<u32>>,
    /// Texts per person per group of alarms in a window (default 2); more are summed
    /// up in one text at the end of the window.
    #[serde(default)]
    pub storm_max: Option<Spanned<u32>>,
    /// Texts per person per hour (default 10); more wait and go out as one "and N
    /// more". The first text of a serious alarm outside a storm is never held.
    #[serde(default)]
    pub max_per_hour: Option<Spanned<u32>>,
    /// Seconds a trap-raised alarm waits for its confirming poll before it is paged
    /// anyway (default 30).
    #[serde(default)]
    pub trap_confirm_s: Option<Spanned<u32>>,
    /// A test text to the person on call at the start of each of these windows
    /// (schedule syntax, e.g. `["daily 09:00-09:05"]`); default none.
    #[serde(default)]
    pub daily_test: Option<Spanned<Vec<String>>>,
}

/// A person who can be paged.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Short id.
    pub id: String,
    /// Full name (the id when none is given).
    pub name: String,
    /// E.164 number.
    pub phone: String,
    /// Language of their texts.
    pub language: Language,
    /// Role, if any.
    pub role: Option<String>,
    /// Gets texts by SMS.
    pub sms: bool,
    /// May be rung.
    pub call: bool,
}

/// A shift: a person on call during a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// Index into the people.
    pub person: usize,
    /// When.
    pub when: Schedule,
    /// Holds on holidays too.
    pub holidays: bool,
}

/// People taking turns.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    /// Indexes into the people, in turn order.
    pub people: Vec<usize>,
    /// Local start of the first turn.
    pub start: jiff::civil::DateTime,
    /// Length of a turn.
    pub every_days: u32,
    /// Restriction (empty: always).
    pub when: Schedule,
}

/// Who an escalation step reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum StepTo {
    /// One person (index).
    Person(usize),
    /// The person on call after the current one.
    Next,
    /// Everybody with this role.
    Role(String),
}

/// An escalation step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// After this long without an acknowledgement (from the first page).
    pub after: Duration,
    /// Who.
    pub to: StepTo,
}

/// `[paging]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PagingConfig {
    /// The people, in file order.
    pub people: Vec<Person>,
    /// Overrides, before shifts.
    pub overrides: Vec<Shift>,
    /// Shifts, in file order.
    pub shifts: Vec<Shift>,
    /// Rotations, after the shifts.
    pub rotations: Vec<Rotation>,
    /// Holidays.
    pub holidays: Schedule,
    /// Who is paged during a gap.
    pub fallback: Option<usize>,
    /// Page normal alarms.
    pub page_normal: bool,
    /// Only these rules' normal alarms (empty: all).
    pub normal_rules: Vec<String>,
    /// Normal alarms wait while inside.
    pub quiet_hours: Schedule,
    /// Between texts about one serious alarm (zero: once).
    pub repeat: Duration,
    /// Before the phone rings (zero: never).
    pub call_after: Duration,
    /// Escalation steps, by `after`.
    pub escalate: Vec<Step>,
    /// Storm window.
    pub storm_window: Duration,
    /// Texts per person and group in a window.
    pub storm_max: u32,
    /// Texts per person per hour.
    pub max_per_hour: u32,
    /// Wait for a trap's confirming poll.
    pub trap_confirm: Duration,
    /// Windows whose start sends a test text to the person on call.
    pub daily_test: Schedule,
    /// Line and column of the `[paging]` table (for roster warnings).
    pub at: (usize, usize),
}

impl PagingConfig {
    /// A policy with the defaults and these people, no roster (tests, examples).
    pub fn with_people(people: Vec<Person>) -> PagingConfig {
        PagingConfig {
            people,
            overrides: Vec::new(),
            shifts: Vec::new(),
            rotations: Vec::new(),
            holidays: Schedule::default(),
            fallback: None,
            page_normal: true,
            normal_rules: Vec::new(),
            quiet_hours: Schedule::default(),
            repeat: Duration::from_secs(u64::from(default_repeat_min()) * 60),
            call_after: Duration::from_secs(u64::from(default_call_after_min()) * 60),
            escalate: Vec::new(),
            storm_window: Duration::from_secs(u64::from(default_storm_window_s())),
            storm_max: default_storm_max(),
            max_per_hour: default_max_per_hour(),
            trap_confirm: Duration::from_secs(u64::from(default_trap_confirm_s())),
            daily_test: Schedule::default(),
            at: (0, 0),
        }
    }

    /// The person with this id.
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    /// The person with this phone number (digits compared, so `+84 91...` matches).
    pub fn by_phone(&self, phone: &str) -> Option<&Person> {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let want = digits(phone);
        if want.is_empty() {
            return None;
        }
        self.people.iter().find(|p| digits(&p.phone) == want)
    }
}

/// Whether `s` is an E.164 number: `+`, then 8 to 15 digits.
pub fn e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

fn schedule(r: &mut Report<'_>, v: &Spanned<Vec<String>>, ctx: &str) -> Schedule {
    match Schedule::parse(v.get_ref()) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                r.at(v.span(), ctx, e.to_string());
            }
            Schedule::default()
        }
    }
}

/// Validate the `[paging]` table (taken out of the document by the loader), if any.
pub(crate) fn validate(
    r: &mut Report<'_>,
    table: Option<Spanned<DeValue<'_>>>,
    text: &str,
) -> Option<PagingConfig> {
    let table = table?;
    let start = table.span().start;
    let raw: RawPaging = r.parse_value(table, "paging")?;
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let mut c = PagingConfig::with_people(Vec::new());
    c.at = (line, column);
    for (i, p) in raw.people.iter().enumerate() {
        let id = p.id.get_ref().trim().to_string();
        let ctx = |k: &str| format!("paging.people[{i}] ({id}) .{k}");
        if !crate::config::valid_id(&id) {
            r.at(
                p.id.span(),
                ctx("id"),
                format!("{id:?} is not a valid id: use letters, digits, '_' and '-'"),
            );
            continue;
        }
        if c.people.iter().any(|q| q.id == id) {
            r.at(
                p.id.span(),
                ctx("id"),
                format!("person {id:?} is listed twice"),
            );
            continue;
        }
        let phone: String = p
            .phone
            .get_ref()
            .chars()
            .filter(|ch| !ch.is_whitespace())
            .collect();
        if !e164(&phone) {
            r.at(
                p.phone.span(),
                ctx("phone"),
                format!(
                    "{:?} is not an E.164 number: write it as +84912345678",
                    p.phone.get_ref()
                ),
            );
        }
        let language = match p
            .language
            .as_ref()
            .map(|l| l.get_ref().trim().to_ascii_lowercase())
        {
            None => Language::Vi,
            Some(l) if l == "vi" => Language::Vi,
            Some(l) if l == "en" => Language::En,
            Some(l) => {
                r.at(
                    p.language.as_ref().map_or(0..0, |s| s.span()),
                    ctx("language"),
                    format!("{l:?}: use \"vi\" or \"en\""),
                );
                Language::Vi
            }
        };
        let (mut sms, mut call) = (true, true);
        if let Some(ch) = &p.channels {
            sms = false;
            call = false;
            for x in ch.get_ref() {
                match x.get_ref().as_str() {
                    "sms" => sms = true,
                    "call" => call = true,
                    other => r.at(
                        x.span(),
                        ctx("channels"),
                        format!("unknown channel {other:?}: use \"sms\", \"call\""),
                    ),
                }
            }
        }
        c.people.push(Person {
            name: p
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| id.clone()),
            id,
            phone,
            language,
            role: p.role.clone(),
            sms,
            call,
        });
    }
    let find = |r: &mut Report<'_>,
                c: &PagingConfig,
                who: &Spanned<String>,
                ctx: String|
     -> Option<usize> {
        let id = who.get_ref().trim();
        let i = c.people.iter().position(|p| p.id == id);
        if i.is_none() {
            let known: Vec<&str> = c.people.iter().map(|p| p.id.as_str()).collect();
            r.at(
                who.span(),
                ctx,
                format!(
                    "no person {id:?} in [[paging.people]] (known: {})",
                    known.join(", ")
                ),
            );
        }
        i
    };
    for (list, name) in [(&raw.overrides, "overrides"), (&raw.shifts, "shifts")] {
        for (i, s) in list.iter().enumerate() {
            let person = find(r, &c, &s.person, format!("paging.{name}[{i}] .person"));
            let when = schedule(r, &s.when, &format!("paging.{name}[{i}] .when"));
            if let Some(person) = person {
                let shift = Shift {
                    person,
                    when,
                    holidays: s.holidays,
                };
                if name == "overrides" {
                    c.overrides.push(shift);
                } else {
                    c.shifts.push(shift);
                }
            }
        }
    }
    for (i, ro) in raw.rotations.iter().enumerate() {
        let ctx = |k: &str| format!("paging.rotations[{i}] .{k}");
        let people: Vec<usize> = ro
            .people
            .get_ref()
            .iter()
            .filter_map(|p| find(r, &c, p, ctx("people")))
            .collect();
        if ro.people.get_ref().is_empty() {
            r.at(
                ro.people.span(),
                ctx("people"),
                "a rotation needs at least one person",
            );
        }
        let start = match ro
            .start
            .get_ref()
            .trim()
            .replace('T', " ")
            .parse::<jiff::civil::DateTime>()
        {
            Ok(d) => Some(d),
            Err(_) => match ro.start.get_ref().trim().parse::<jiff::civil::Date>() {
                Ok(d) => Some(d.to_datetime(jiff::civil::Time::midnight())),
                Err(_) => {
                    r.at(
                        ro.start.span(),
                        ctx("start"),
                        format!(
                            "{:?} is not a local date and time: write \"2026-12-07 08:00\"",
                            ro.start.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let every_days = ro.every_days.as_ref().map_or(7, |d| *d.get_ref());
        if !(1..=366).contains(&every_days) {
            r.at(
                ro.every_days.as_ref().map_or(0..0, |d| d.span()),
                ctx("every_days"),
                format!("{every_days} is out of range: use 1 to 366"),
            );
        }
        let when = ro
            .when
            .as_ref()
            .map(|w| schedule(r, w, &ctx("when")))
            .unwrap_or_default();
        if let Some(start) = start
            && people.len() == ro.people.get_ref().len()
            && !people.is_empty()
        {
            c.rotations.push(Rotation {
                people,
                start,
                every_days: every_days.clamp(1, 366),
                when,
            });
        }
    }
    if let Some(h) = &raw.holidays {
        c.holidays = schedule(r, h, "paging.holidays");
    }
    if let Some(f) = &raw.fallback {
        c.fallback = find(r, &c, f, "paging.fallback".into());
    }
    c.page_normal = raw.page_normal.unwrap_or(true);
    c.normal_rules = raw.normal_rules.clone().unwrap_or_default();
    if let Some(q) = &raw.quiet_hours {
        c.quiet_hours = schedule(r, q, "paging.quiet_hours");
    }
    if let Some(d) = &raw.daily_test {
        c.daily_test = schedule(r, d, "paging.daily_test");
    }
    let mins = |m: u32| Duration::from_secs(u64::from(m) * 60);
    let mut minutes = |v: &Option<Spanned<f64>>, key: &str, default: u32| -> Duration {
        match v {
            None => mins(default),
            Some(x) if x.get_ref().is_finite() && (0.0..=1440.0).contains(x.get_ref()) => {
                Duration::from_secs_f64(x.get_ref() * 60.0)
            }
            Some(x) => {
                r.at(
                    x.span(),
                    format!("paging.{key}"),
                    format!("{} is out of range: use 0 to 1440 minutes", x.get_ref()),
                );
                mins(default)
            }
        }
    };
    c.repeat = minutes(&raw.repeat_min, "repeat_min", default_repeat_min());
    c.call_after = minutes(
        &raw.call_after_min,
        "call_after_min",
        default_call_after_min(),
    );
    match &raw.escalate {
        None => {
            c.escalate = vec![
                Step {
                    after: mins(15),
                    to: StepTo::Next,
                },
                Step {
                    after: mins(45),
                    to: StepTo::Role("lead".into()),
                },
            ];
        }
        Some(steps) => {
            for (i, s) in steps.iter().enumerate() {
                let to = s.to.get_ref().trim();
                let to = if to == "next" {
                    Some(StepTo::Next)
                } else if let Some(role) = to.strip_prefix("role:") {
                    Some(StepTo::Role(role.trim().to_string()))
                } else {
                    find(r, &c, &s.to, format!("paging.escalate[{i}] .to")).map(StepTo::Person)
                };
                let after = *s.after_min.get_ref();
                let ok = after.is_finite() && after > 0.0 && after <= 1440.0;
                if !ok {
                    r.at(
                        s.after_min.span(),
                        format!("paging.escalate[{i}] .after_min"),
                        format!(
                            "{after}: an escalation step comes after the first page; use more than 0, at most 1440 minutes"
                        ),
                    );
                }
                if let (Some(to), true) = (to, ok) {
                    c.escalate.push(Step {
                        after: Duration::from_secs_f64(after * 60.0),
                        to,
                    });
                }
            }
            c.escalate.sort_by_key(|s| s.after);
        }
    }
    let mut range = |v: &Option<Spanned<u32>>, key: &str, lo: u32, hi: u32, default: u32| -> u32 {
        match v {
            Some(x) if (lo..=hi).contains(x.get_ref()) => *x.get_ref(),
            Some(x) => {
                r.at(
                    x.span(),
                    format!("paging.{key}"),
                    format!("{} is out of range: use {lo} to {hi}", x.get_ref()),
                );
                default
            }
            None => default,
        }
    };
    c.storm_window = Duration::from_secs(u64::from(range(
        &raw.storm_window_s,
        "storm_window_s",
        10,
        3600,
        default_storm_window_s(),
    )));
    c.storm_max = range(&raw.storm_max, "storm_max", 1, 100, default_storm_max());
    c.max_per_hour = range(
        &raw.max_per_hour,
        "max_per_hour",
        1,
        1000,
        default_max_per_hour(),
    );
    c.trap_confirm = Duration::from_secs(u64::from(range(
        &raw.trap_confirm_s,
        "trap_confirm_s",
        1,
        600,
        default_trap_confirm_s(),
    )));
    if c.people.is_empty() {
        r.warn(
            start..start,
            "paging",
            "[paging] lists no people: nobody will be paged",
        );
    }
    Some(c)
}
