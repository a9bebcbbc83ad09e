//! Which records reach a sink: what it `accepts` (readings, alarm events,
//! notifications, audit entries) and optional filters on the alarm level and on the
//! device (room, kind, id). The hub asks [`Route::passes`] before a record enters a
//! sink's queue, so a sink never sees, stores or filters what it does not take.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::model::{Kind, Level};
use crate::sinks::Record;

/// A class of records a sink can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Accept {
    /// Every poll's readings.
    Readings,
    /// Alarm events (raised, cleared, ...).
    Alarms,
    /// Notifications to people (pages, SMS texts).
    Notifications,
    /// Audit entries (logins, commands, config changes).
    Audit,
}

impl Accept {
    /// Every class, in config order.
    pub const ALL: [Accept; 4] = [
        Accept::Readings,
        Accept::Alarms,
        Accept::Notifications,
        Accept::Audit,
    ];

    /// Name in the config (`readings`, `alarms`, `notifications`, `audit`).
    pub fn as_str(self) -> &'static str {
        match self {
            Accept::Readings => "readings",
            Accept::Alarms => "alarms",
            Accept::Notifications => "notifications",
            Accept::Audit => "audit",
        }
    }

    /// From its config name.
    pub fn parse(s: &str) -> Option<Accept> {
        Accept::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Forward audit entries of the journal (see [`crate::sinks::Audit::KINDS`]) to the
/// sinks whose route takes `audit`, until the journal is gone. Other entries are
/// dropped here (they are in the journal).
pub async fn forward_audit(
    mut rx: tokio::sync::mpsc::Receiver<crate::journal::Entry>,
    outlets: Vec<(Route, crate::sinks::worker::SinkQueue)>,
) {
    let outlets: Vec<_> = outlets
        .into_iter()
        .filter(|(r, _)| r.takes(Accept::Audit))
        .collect();
    while let Some(e) = rx.recv().await {
        if outlets.is_empty() {
            continue;
        }
        let Some(a) = crate::sinks::Audit::of(&e) else {
            continue;
        };
        let rec = Record::Audit(Arc::new(a));
        for (route, q) in &outlets {
            if route.passes(&rec) {
                q.push(rec.clone());
            }
        }
    }
}

/// What a sink takes. The default of a sink kind is set by its registry entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Route {
    /// Classes of records taken.
    pub accepts: BTreeSet<Accept>,
    /// Alarm events below this level are not taken (`None`: every level).
    pub min_level: Option<Level>,
    /// Only devices in these rooms (empty: every room).
    pub rooms: Vec<Arc<str>>,
    /// Only devices of these kinds (empty: every kind).
    pub kinds: Vec<Kind>,
    /// Only these devices (empty: every device).
    pub devices: Vec<Arc<str>>,
}

impl Route {
    /// A route taking these classes of every device at every level.
    pub fn all(accepts: &[Accept]) -> Route {
        Route {
            accepts: accepts.iter().copied().collect(),
            ..Route::default()
        }
    }

    /// Whether the sink takes this class of records at all.
    pub fn takes(&self, a: Accept) -> bool {
        self.accepts.contains(&a)
    }

    fn device(&self, id: &str, room: &str, kind: Kind) -> bool {
        (self.devices.is_empty() || self.devices.iter().any(|d| &**d == id))
            && (self.rooms.is_empty() || self.rooms.iter().any(|r| &**r == room))
            && (self.kinds.is_empty() || self.kinds.contains(&kind))
    }

    /// Whether `rec` goes to the sink.
    pub fn passes(&self, rec: &Record) -> bool {
        match rec {
            Record::Poll(p) => {
                self.takes(Accept::Readings)
                    && self.device(&p.device.id, &p.device.room, p.device.kind)
            }
            Record::Alarm(a) => {
                self.takes(Accept::Alarms)
                    && self.min_level.is_none_or(|min| a.level >= min)
                    && self.device(&a.device, &a.room, a.kind)
            }
            // A notification is addressed to a person, not about a device: the
            // device filters do not apply.
            Record::Notification(_) => self.takes(Accept::Notifications),
            // Audit entries are about people's actions, not devices: no device filter.
            Record::Audit(_) => self.takes(Accept::Audit),
        }
    }
}
