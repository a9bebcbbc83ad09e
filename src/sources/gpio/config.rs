//! The GPIO source's configuration: `[devices.gpio]` as written (serde) and validated,
//! and its profile format (`protocol = "gpio"`: the contact points a kind of device
//! offers).
//!
//! What validation guarantees: every line maps a point of the device's profile, once;
//! each line is given by `name` or by `offset` (with its own `chip` or the table's);
//! `bias` is one of the known words; `debounce_ms` is 0 to 1000; no line (the same name,
//! or the same chip and offset) is used by two devices: the kernel would refuse the
//! second request. Several devices on one GPIO header are the normal case: each is a
//! logical device (its own id, kind, room, label) holding its own lines.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::backend::{Bias, LineAt, LineSpec};
use crate::config::span::{self, ProfileError};
use crate::config::{DeviceCtx, Report};
use crate::model::Kind;
use crate::points::{PointId, PointType};
use crate::sources::Connection;

/// Debounce when `debounce_ms` is not given.
pub const DEFAULT_DEBOUNCE_MS: u64 = 20;

/// `[devices.gpio]`: the device's contacts on GPIO lines.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGpio {
    /// Chip of the lines given by `offset` without their own `chip` (`gpiochip0` or
    /// `/dev/gpiochip0`).
    #[serde(default)]
    pub chip: Option<Spanned<String>>,
    /// A change counts once the line has been steady this long, in ms (20; 0 to 1000).
    /// Contacts bounce for a few milliseconds when they close.
    #[serde(default)]
    pub debounce_ms: Option<Spanned<u64>>,
    /// One line per point of the profile: `fire_alarm = { name = "GPIO17",
    /// active_low = true, bias = "pull_up" }`.
    pub lines: BTreeMap<Spanned<String>, Spanned<RawLine>>,
}

/// One line of `[devices.gpio.lines]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLine {
    /// The line's name (`gpioinfo` shows them; `GPIO17` on a Raspberry Pi).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// The line's offset on its chip (instead of `name`).
    #[serde(default)]
    pub offset: Option<Spanned<u32>>,
    /// The chip of `offset` (default: the table's `chip`).
    #[serde(default)]
    pub chip: Option<Spanned<String>>,
    /// The point is true while the line is low (an opto-coupler's output pulling the
    /// line to ground when the contact closes). Default false.
    #[serde(default)]
    pub active_low: bool,
    /// `pull_up`, `pull_down`, `disabled` or `as_is` (default: as the board sets it).
    #[serde(default)]
    pub bias: Option<Spanned<String>>,
}

/// A GPIO device's connection, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct GpioConnection {
    /// How long a line must be steady before a change counts.
    pub debounce: Duration,
    /// The lines, each with the point it gives, in point-name order.
    pub lines: Vec<(PointId, LineSpec)>,
}

/// The lines claimed by the devices validated so far (a line can be held once).
#[derive(Debug, Default)]
pub(crate) struct Claimed(HashMap<LineAt, String>);

fn normal_chip(c: &str) -> String {
    c.trim().trim_start_matches("/dev/").to_string()
}

fn bias(s: &str) -> Option<Bias> {
    Some(match s {
        "pull_up" => Bias::PullUp,
        "pull_down" => Bias::PullDown,
        "disabled" => Bias::Disabled,
        "as_is" => Bias::AsIs,
        _ => return None,
    })
}

/// Validate a device's `[devices.gpio]` against its profile's points.
pub(crate) fn connection(
    r: &mut Report<'_>,
    claimed: &mut Claimed,
    d: &DeviceCtx<'_>,
    g: &Spanned<RawGpio>,
    profile: Option<&GpioProfile>,
) -> Option<Connection> {
    let c = g.get_ref();
    let before = r.problems.len();
    let debounce_ms = c
        .debounce_ms
        .as_ref()
        .map(|v| *v.get_ref())
        .unwrap_or(DEFAULT_DEBOUNCE_MS);
    if let Some(v) = &c.debounce_ms
        && debounce_ms > 1000
    {
        r.at(
            v.span(),
            d.key("gpio.debounce_ms"),
            format!("{debounce_ms} is out of range: use 0 to 1000 ms"),
        );
    }
    if c.lines.is_empty() {
        r.at(
            g.span(),
            d.key("gpio.lines"),
            "no lines: map at least one point to a line",
        );
    }
    let mut lines = Vec::new();
    for (point, line) in &c.lines {
        let key = d.key(&format!("gpio.lines.{}", point.get_ref()));
        let l = line.get_ref();
        let pid = match profile {
            Some(p) => match p.points.iter().find(|x| x.name == point.get_ref()) {
                Some(x) => Some(*x),
                None => {
                    let names: Vec<&str> = p.points.iter().map(|x| x.name).collect();
                    r.at(
                        point.span(),
                        key.clone(),
                        format!(
                            "profile {:?} has no point {:?}: its points are {}",
                            p.id,
                            point.get_ref(),
                            names.join(", ")
                        ),
                    );
                    None
                }
            },
            None => None,
        };
        let at = match (&l.name, &l.offset) {
            (Some(n), None) if n.get_ref().trim().is_empty() => {
                r.at(n.span(), format!("{key}.name"), "name is empty");
                None
            }
            (Some(n), None) => Some((LineAt::Name(n.get_ref().trim().to_string()), n.span())),
            (None, Some(o)) => match l.chip.as_ref().or(c.chip.as_ref()) {
                Some(chip) => Some((
                    LineAt::Offset {
                        chip: normal_chip(chip.get_ref()),
                        offset: *o.get_ref(),
                    },
                    o.span(),
                )),
                None => {
                    r.at(
                        o.span(),
                        format!("{key}.offset"),
                        "an offset needs its chip: add chip = \"gpiochip0\" to the line or to [devices.gpio]",
                    );
                    None
                }
            },
            (Some(n), Some(_)) => {
                r.at(
                    n.span(),
                    key.clone(),
                    "give the line's name or its offset, not both",
                );
                None
            }
            (None, None) => {
                r.at(
                    line.span(),
                    key.clone(),
                    "give the line's name (name = \"GPIO17\") or its offset (offset = 17)",
                );
                None
            }
        };
        let b = match &l.bias {
            None => Some(Bias::AsIs),
            Some(s) => {
                let b = bias(s.get_ref());
                if b.is_none() {
                    r.at(
                        s.span(),
                        format!("{key}.bias"),
                        format!(
                            "unknown bias {:?}: use pull_up, pull_down, disabled or as_is",
                            s.get_ref()
                        ),
                    );
                }
                b
            }
        };
        if let Some((at, span)) = &at {
            match claimed.0.get(at) {
                Some(other) => r.at(
                    span.clone(),
                    key.clone(),
                    format!("line {at} is already used by {other}: a line can give one point of one device"),
                ),
                None => {
                    claimed
                        .0
                        .insert(at.clone(), format!("{} ({})", d.id, point.get_ref()));
                }
            }
        }
        if let (Some(pid), Some((at, _)), Some(bias)) = (pid, at, b) {
            lines.push((
                pid,
                LineSpec {
                    at,
                    active_low: l.active_low,
                    bias,
                },
            ));
        }
    }
    (r.problems.len() == before).then(|| {
        Connection::Gpio(GpioConnection {
            debounce: Duration::from_millis(debounce_ms),
            lines,
        })
    })
}

/// A GPIO profile: the contact points a kind of device offers (`protocol = "gpio"`).
/// The wiring (which line, active-low, bias) is the site's, in `[devices.gpio]`.
#[derive(Debug, Clone)]
pub struct GpioProfile {
    /// Profile id (`gpio-fire-panel`).
    pub id: String,
    /// Device kind.
    pub kind: Kind,
    /// The points a device may map to lines (flags only).
    pub points: Vec<PointId>,
}

/// Parse and validate a GPIO profile; the first problem with its position.
pub fn parse_profile(text: &str, origin: &str) -> Result<GpioProfile, ProfileError> {
    let (id, kind, points) = span::parse_point_list(text, origin, |def| {
        if def.ty == PointType::Bool {
            Ok(())
        } else {
            Err(format!(
                "point `{}` is not a flag: a contact gives true or false",
                def.name
            ))
        }
    })?;
    Ok(GpioProfile { id, kind, points })
}

/// The shipped GPIO profiles: (file name, text).
pub fn shipped_profiles() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "gpio-fire-panel.toml",
            include_str!("../../../config/profiles/gpio-fire-panel.toml"),
        ),
        (
            "gpio-leak.toml",
            include_str!("../../../config/profiles/gpio-leak.toml"),
        ),
        (
            "gpio-door.toml",
            include_str!("../../../config/profiles/gpio-door.toml"),
        ),
        (
            "gpio-surge.toml",
            include_str!("../../../config/profiles/gpio-surge.toml"),
        ),
        (
            "gpio-ats.toml",
            include_str!("../../../config/profiles/gpio-ats.toml"),
        ),
        (
            "gpio-generator.toml",
            include_str!("../../../config/profiles/gpio-generator.toml"),
        ),
    ]
}
