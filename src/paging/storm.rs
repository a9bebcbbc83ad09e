//! Storm control, per person: within a window, at most `storm_max` texts about one
//! group of alarms (one cause, else one room and system); more are held and summed up
//! in one text when the window ends. At most `max_per_hour` texts per rolling hour;
//! more wait and go out as one "and N more" when the hour has room. The first text of
//! a serious alarm whose group is not storming is never held (an unrelated serious
//! alarm during a storm still goes out at once). Pure: times come from the caller.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::model::Timestamp;

/// What to do with a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it now.
    Send,
    /// Held for the group's summary at the end of the window.
    HeldForStorm,
    /// Held for the hourly "and N more".
    HeldForHour,
}

#[derive(Debug, Default, Clone)]
struct Window {
    start: Timestamp,
    count: u32,
    held: Vec<u64>,
}

/// One person's gate.
#[derive(Debug, Default, Clone)]
pub struct Gate {
    sent: VecDeque<Timestamp>,
    groups: BTreeMap<String, Window>,
    held_hour: Vec<u64>,
    last_call: Option<Timestamp>,
}

/// A summary due now: the group (`None`: the hourly one) and the alarm numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// The group of a storm summary; `None` for the hourly "and N more".
    pub group: Option<String>,
    /// Alarm instance numbers held.
    pub alarms: Vec<u64>,
}

const HOUR_MS: i64 = 3_600_000;

/// The limits of a gate (from `[paging]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The storm window.
    pub window: Duration,
    /// Texts per group in a window.
    pub storm_max: u32,
    /// Texts per rolling hour.
    pub per_hour: u32,
}

impl Gate {
    fn in_hour(&mut self, now: Timestamp) -> u32 {
        while self.sent.front().is_some_and(|t| now.0 - t.0 >= HOUR_MS) {
            self.sent.pop_front();
        }
        self.sent.len() as u32
    }

    /// Whether a text about alarm `no` of `group` goes out now. `urgent`: the first
    /// text of a serious alarm (never held for the hour limit).
    pub fn offer(
        &mut self,
        group: &str,
        no: u64,
        urgent: bool,
        now: Timestamp,
        l: Limits,
    ) -> Decision {
        let (window, storm_max, per_hour) = (l.window, l.storm_max, l.per_hour);
        let w = self.groups.entry(group.to_string()).or_default();
        if (w.count == 0 || now.0 - w.start.0 >= window.as_millis() as i64) && w.held.is_empty() {
            *w = Window {
                start: now,
                count: 0,
                held: Vec::new(),
            };
        }
        if w.count >= storm_max {
            if !w.held.contains(&no) {
                w.held.push(no);
            }
            return Decision::HeldForStorm;
        }
        w.count += 1;
        if !urgent && self.in_hour(now) >= per_hour {
            if !self.held_hour.contains(&no) {
                self.held_hour.push(no);
            }
            return Decision::HeldForHour;
        }
        self.sent.push_back(now);
        Decision::Send
    }

    /// Summaries due at `now`: a group whose window ended with texts held, and the
    /// hourly one when the hour has room again. Each is counted as sent.
    pub fn due(&mut self, now: Timestamp, window: Duration, per_hour: u32) -> Vec<Due> {
        let mut out = Vec::new();
        for (g, w) in self.groups.iter_mut() {
            if !w.held.is_empty() && now.0 - w.start.0 >= window.as_millis() as i64 {
                out.push(Due {
                    group: Some(g.clone()),
                    alarms: std::mem::take(&mut w.held),
                });
                // The summary opens the next window.
                *w = Window {
                    start: now,
                    count: 1,
                    held: Vec::new(),
                };
            }
        }
        self.groups.retain(|_, w| {
            w.count > 0 && now.0 - w.start.0 < 2 * window.as_millis() as i64 || !w.held.is_empty()
        });
        let mut sendable = Vec::new();
        for d in out {
            if self.in_hour(now) >= per_hour {
                for no in d.alarms {
                    if !self.held_hour.contains(&no) {
                        self.held_hour.push(no);
                    }
                }
            } else {
                self.sent.push_back(now);
                sendable.push(d);
            }
        }
        if !self.held_hour.is_empty() && self.in_hour(now) < per_hour {
            self.sent.push_back(now);
            sendable.push(Due {
                group: None,
                alarms: std::mem::take(&mut self.held_hour),
            });
        }
        sendable
    }

    /// Whether the phone may ring now (at most once per window), and if so, note it.
    pub fn call(&mut self, now: Timestamp, window: Duration) -> bool {
        if self
            .last_call
            .is_some_and(|t| now.0 - t.0 < window.as_millis() as i64)
        {
            return false;
        }
        self.last_call = Some(now);
        true
    }

    /// Forget alarm `no` in the held lists (acknowledged, cleared).
    pub fn forget(&mut self, no: u64) {
        self.held_hour.retain(|x| *x != no);
        for w in self.groups.values_mut() {
            w.held.retain(|x| *x != no);
        }
    }
}
