//! One alarm per root cause: the links several devices share, and whether a link is
//! lost.
//!
//! A **link** is what several devices are reached through: a Modbus TCP endpoint
//! (`host:port`, a TCP-to-RTU gateway with unit ids behind it), an RS-485 bus, or an
//! SNMP agent (`host:port`) serving several logical devices. [`plan`] groups a site's
//! devices by link; only links with two devices or more are tracked (a link with one
//! device is that device: its own `comm_lost` is the root cause).
//!
//! [`Links`] follows each tracked link from the polls of its devices, without I/O or a
//! clock (pure, tested with made-up polls):
//!
//! - A link is **lost** when the latest poll of *every* device behind it failed
//!   (`comm_ok` false). One device that still answers means the link is up and the
//!   silent ones are faults of their own.
//! - **How** it is lost ([`Fault`]): [`Fault::Refused`] when a latest poll failed on
//!   the link itself (connection refused, reset or dropped, port gone: every sample
//!   `comm_error`); otherwise [`Fault::Silent`]: the link answers but the devices do not
//!   (timeouts, or a TCP-to-RTU gateway's exception 0x0A/0x0B "target failed to
//!   respond", which reach the samples as `device_exception` with no data).
//! - A link is **back** as soon as one device behind it answers.
//! - When a device's `comm_lost` falls due before every device behind its link was
//!   polled again (a round of timeouts can take longer than the horizon), the
//!   [`Verdict`] is to wait: until the link is known lost (then it is a child), until
//!   another device answers after it fell silent (then it is its own alarm), or one
//!   more horizon at most. Alarms of other devices and other rules never wait.
//!
//! The engine (`engine/links.rs`) turns this into one alarm per lost link (rule
//! `link_down` or `link_silent` of a device standing for the link, id
//! [`LinkKey::device_id`]) raised when the first device's `comm_lost` falls due; the
//! devices' own `comm_lost` alarms raised while it stands carry its id as their
//! `cause` (journaled, shown, not paged). See docs/ALARMS.md "One alarm per root
//! cause".

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Device, Language, Poll, Quality, Timestamp};

/// What a link is, as the site's config reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkKey {
    /// A Modbus TCP endpoint (a TCP-to-RTU gateway, or one device with several unit
    /// ids): `host:port`.
    ModbusTcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// An RS-485 bus, by its config id.
    Bus(Arc<str>),
    /// An SNMP agent: `host:port` (UDP).
    Snmp {
        /// Host name or address.
        host: String,
        /// UDP port.
        port: u16,
    },
}

impl LinkKey {
    /// The id of the device that stands for the link in alarm events, MQTT topics and
    /// the API: `link_` and the address with every character other than a letter,
    /// digit, `_` or `-` replaced by `_` (`link_10_0_0_5_502`, `link_bus1`,
    /// `link_snmp_10_0_0_7_161`).
    pub fn device_id(&self) -> Arc<str> {
        let raw = match self {
            LinkKey::ModbusTcp { host, port } => format!("link_{host}_{port}"),
            LinkKey::Bus(id) => format!("link_{id}"),
            LinkKey::Snmp { host, port } => format!("link_snmp_{host}_{port}"),
        };
        let clean: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Arc::from(clean)
    }

    /// The link's human name (`Modbus TCP 10.0.0.5:502`, `RS-485 bus1`,
    /// `SNMP 10.0.0.7:161`).
    pub fn name(&self) -> String {
        match self {
            LinkKey::ModbusTcp { host, port } => format!("Modbus TCP {host}:{port}"),
            LinkKey::Bus(id) => format!("RS-485 {id}"),
            LinkKey::Snmp { host, port } => format!("SNMP {host}:{port}"),
        }
    }
}

/// A link and the devices behind it, in config order.
#[derive(Debug, Clone)]
pub struct LinkSpec {
    /// The link.
    pub key: LinkKey,
    /// The devices reached through it (two or more).
    pub devices: Vec<Device>,
}

/// Group devices by link, in order of first appearance; links with fewer than two
/// devices are left out.
pub fn plan(devices: impl IntoIterator<Item = (Device, LinkKey)>) -> Vec<LinkSpec> {
    let mut out: Vec<LinkSpec> = Vec::new();
    let mut at: HashMap<LinkKey, usize> = HashMap::new();
    for (dev, key) in devices {
        match at.get(&key) {
            Some(&i) => out[i].devices.push(dev),
            None => {
                at.insert(key.clone(), out.len());
                out.push(LinkSpec {
                    key,
                    devices: vec![dev],
                });
            }
        }
    }
    out.retain(|l| l.devices.len() >= 2);
    out
}

/// How a link is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The link itself fails: connection refused, reset or dropped, serial port gone.
    Refused,
    /// The link answers but no device behind it does (timeouts; a TCP-to-RTU
    /// gateway's exception 0x0A/0x0B).
    Silent,
}

impl Fault {
    /// The rule name of its alarm: `link_down` or `link_silent`.
    pub fn rule(self) -> &'static str {
        match self {
            Fault::Refused => "link_down",
            Fault::Silent => "link_silent",
        }
    }

    /// Every rule name a link alarm can have.
    pub const RULES: [&'static str; 2] = ["link_down", "link_silent"];

    /// The failure of one poll: `None` when the device answered (`comm_ok`).
    pub fn of(poll: &Poll) -> Option<Fault> {
        if poll.comm_ok {
            return None;
        }
        let answered = poll
            .samples
            .iter()
            .any(|s| matches!(s.quality, Quality::Timeout | Quality::DeviceException));
        Some(if answered {
            Fault::Silent
        } else {
            Fault::Refused
        })
    }

    /// What the alarm says, before the device list, by kind of link.
    fn text(self, lang: Language, link: &LinkKey, n: usize) -> String {
        use Language::{En, Vi};
        match (link, self, lang) {
            (LinkKey::ModbusTcp { .. }, Fault::Refused, Vi) => format!(
                "Mất đường truyền: cổng từ chối hoặc cắt kết nối; {n} thiết bị phía sau mất liên lạc"
            ),
            (LinkKey::ModbusTcp { .. }, Fault::Refused, En) => format!(
                "Link down: the gateway refuses or drops the connection; {n} devices behind it lost"
            ),
            (LinkKey::ModbusTcp { .. }, Fault::Silent, Vi) => format!(
                "Thiết bị phía sau cổng im lặng: cổng vẫn trả lời nhưng {n} thiết bị phía sau không trả lời"
            ),
            (LinkKey::ModbusTcp { .. }, Fault::Silent, En) => format!(
                "Devices behind the gateway silent: the gateway answers but its {n} devices do not"
            ),
            (LinkKey::Bus(_), Fault::Refused, Vi) => {
                format!("Mất bus RS-485: cổng nối tiếp lỗi; {n} thiết bị trên bus mất liên lạc")
            }
            (LinkKey::Bus(_), Fault::Refused, En) => {
                format!("Bus down: the serial port fails; {n} devices on it lost")
            }
            (LinkKey::Bus(_), Fault::Silent, Vi) => format!(
                "Bus RS-485 im lặng: không thiết bị nào trong {n} thiết bị trả lời (dây, điện trở cuối, nguồn)"
            ),
            (LinkKey::Bus(_), Fault::Silent, En) => {
                format!("Bus silent: none of its {n} devices answers (wiring, termination, power)")
            }
            (LinkKey::Snmp { .. }, Fault::Refused, Vi) => {
                format!("SNMP agent từ chối (cổng không tới được); {n} thiết bị mất liên lạc")
            }
            (LinkKey::Snmp { .. }, Fault::Refused, En) => {
                format!("SNMP agent refuses (port unreachable); {n} devices it serves lost")
            }
            (LinkKey::Snmp { .. }, Fault::Silent, Vi) => {
                format!("SNMP agent không trả lời; {n} thiết bị mất liên lạc")
            }
            (LinkKey::Snmp { .. }, Fault::Silent, En) => {
                format!("SNMP agent not answering; {n} devices it serves lost")
            }
        }
    }
}

/// The text of a link alarm raised: the fault and the devices behind the link, by id.
pub fn raised_what(lang: Language, fault: Fault, spec: &LinkSpec) -> String {
    let ids: Vec<&str> = spec.devices.iter().map(|d| &*d.id).collect();
    format!(
        "{}: {}",
        fault.text(lang, &spec.key, ids.len()),
        ids.join(", ")
    )
}

/// The text of a link alarm cleared.
pub fn cleared_what(lang: Language) -> String {
    match lang {
        Language::Vi => "Đường truyền đã hoạt động trở lại".into(),
        Language::En => "Link back".into(),
    }
}

/// A device's latest poll, as its link sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seen {
    /// When.
    ts: Timestamp,
    /// `None`: it answered.
    fault: Option<Fault>,
    /// Its first failed poll since it last answered (`None` while it answers).
    silent_since: Option<Timestamp>,
}

/// One tracked link: the latest poll of each device behind it.
#[derive(Debug)]
struct Tracked {
    spec: LinkSpec,
    /// Per device (as in `spec.devices`); `None` until it is polled.
    latest: Vec<Option<Seen>>,
}

/// What to make of a device's `comm_lost` that falls due behind a tracked link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The link is lost this way: the alarm is the link's, the device's a child.
    Lost(Fault),
    /// The device fails on its own: another device behind the link answered after it
    /// fell silent.
    Own,
    /// Not known yet: some devices behind the link have not been polled since this one
    /// fell silent (a slow round of timeouts). The device's `comm_lost` waits for
    /// them, at most one more `comm_lost` horizon (the engine's cap).
    Wait,
}

/// The state of every tracked link. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Links {
    links: Vec<Tracked>,
    /// Device id → (link, position in the link).
    by_device: HashMap<Arc<str>, (usize, usize)>,
}

impl Links {
    /// Track `specs` (from [`plan`]). A device in two links counts in the first.
    pub fn new(specs: Vec<LinkSpec>) -> Links {
        let mut by_device = HashMap::new();
        let links = specs
            .into_iter()
            .enumerate()
            .map(|(l, spec)| {
                for (j, d) in spec.devices.iter().enumerate() {
                    by_device.entry(d.id.clone()).or_insert((l, j));
                }
                Tracked {
                    latest: vec![None; spec.devices.len()],
                    spec,
                }
            })
            .collect();
        Links { links, by_device }
    }

    /// Number of tracked links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether no link is tracked.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The link `l`.
    pub fn spec(&self, l: usize) -> &LinkSpec {
        &self.links[l].spec
    }

    /// The link device `id` is behind, if tracked.
    pub fn link_of(&self, id: &str) -> Option<usize> {
        self.by_device.get(id).map(|&(l, _)| l)
    }

    /// Note a poll's outcome; the link of its device, if tracked.
    pub fn observe(&mut self, poll: &Poll) -> Option<usize> {
        let &(l, j) = self.by_device.get(&poll.device.id)?;
        let slot = &mut self.links[l].latest[j];
        let fault = Fault::of(poll);
        let silent_since = fault.map(|_| slot.and_then(|s| s.silent_since).unwrap_or(poll.ts));
        *slot = Some(Seen {
            ts: poll.ts,
            fault,
            silent_since,
        });
        Some(l)
    }

    /// Whether some device behind link `l` answered on its latest poll: the link is up.
    /// (`false` too while devices have not been polled yet, after a start: a link
    /// alarm restored from the journal is not cleared before a device answers.)
    pub fn up(&self, l: usize) -> bool {
        self.links[l]
            .latest
            .iter()
            .any(|o| o.is_some_and(|s| s.fault.is_none()))
    }

    /// How link `l` is lost, or `None` while it is not known lost (some device
    /// answered on its latest poll, or has not been polled yet).
    pub fn lost(&self, l: usize) -> Option<Fault> {
        let mut fault = Fault::Silent;
        for o in &self.links[l].latest {
            match o.and_then(|s| s.fault) {
                Some(Fault::Refused) => fault = Fault::Refused,
                Some(Fault::Silent) => {}
                None => return None,
            }
        }
        Some(fault)
    }

    /// The verdict on device `id`'s `comm_lost` falling due (see [`Verdict`]); `None`
    /// when the device is behind no tracked link.
    pub fn verdict(&self, id: &str) -> Option<Verdict> {
        let &(l, j) = self.by_device.get(id)?;
        if let Some(f) = self.lost(l) {
            return Some(Verdict::Lost(f));
        }
        // Due without a failed poll of its own (the line is busy with other devices'
        // timeouts): nothing is known about it yet.
        let Some(since) = self.links[l].latest[j].and_then(|s| s.silent_since) else {
            return Some(Verdict::Wait);
        };
        let answered_after = self.links[l]
            .latest
            .iter()
            .any(|o| o.is_some_and(|s| s.fault.is_none() && s.ts > since));
        Some(if answered_after {
            Verdict::Own
        } else {
            Verdict::Wait
        })
    }
}

#[cfg(test)]
mod tests;
