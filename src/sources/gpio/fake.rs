//! An in-process GPIO backend: chips and lines held in memory, levels set by the
//! caller, edges delivered to the requests watching a line. Used by the tests (this
//! CI kernel has no gpio-sim) and by anyone trying the GPIO source without a board.
//!
//! It behaves like the kernel where the source can tell: a line is found by name or by
//! chip and offset; a line already requested is busy; a level change is an edge (with
//! a wall-clock timestamp) to every request holding the line, active-low applied;
//! setting the same level again is no edge; a failed chip fails reads and edges.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::backend::{Backend, Bias, Edge, EdgeFuture, Error, LineAt, LineSpec, Lines};

#[derive(Debug)]
struct FakeLine {
    name: String,
    level: bool,
    held: Option<(bool, Bias)>,
    /// Requested as an output (active-low of the request).
    output: Option<bool>,
    /// The pad is stuck at this level whatever is written (a shorted driver).
    stuck: Option<bool>,
}

#[derive(Debug)]
struct Chip {
    name: String,
    lines: Vec<FakeLine>,
    failing: bool,
}

struct Watcher {
    id: u64,
    lines: Vec<(usize, u32, bool)>,
    tx: mpsc::UnboundedSender<Result<Edge, Error>>,
}

#[derive(Default)]
struct State {
    chips: Vec<Chip>,
    watchers: Vec<Watcher>,
    next_id: u64,
}

/// The fake GPIO backend. Cheap to clone: clones share the same chips.
#[derive(Clone, Default)]
pub struct FakeGpio {
    state: Arc<Mutex<State>>,
}

impl FakeGpio {
    /// No chips yet.
    pub fn new() -> FakeGpio {
        FakeGpio::default()
    }

    /// Add a chip (`gpiochip0`) whose lines have these names (offset = position),
    /// every line at level high (an input with a pull-up and nothing pulling it down).
    pub fn add_chip(&self, name: &str, line_names: &[&str]) {
        let mut s = self.lock();
        s.chips.push(Chip {
            name: name.to_string(),
            lines: line_names
                .iter()
                .map(|n| FakeLine {
                    name: n.to_string(),
                    level: true,
                    held: None,
                    output: None,
                    stuck: None,
                })
                .collect(),
            failing: false,
        });
    }

    /// Set a line's physical level; a change is an edge to every request holding it.
    /// Panics if there is no such line (a test mistake).
    pub fn set_level(&self, chip: &str, offset: u32, level: bool) {
        let mut s = self.lock();
        let ci = s
            .chips
            .iter()
            .position(|c| c.name == chip)
            .unwrap_or_else(|| panic!("fake GPIO: no chip {chip}"));
        let line = &mut s.chips[ci].lines[offset as usize];
        if line.level == level {
            return;
        }
        line.level = level;
        let ts_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        for w in &s.watchers {
            for (i, (c, o, active_low)) in w.lines.iter().enumerate() {
                if *c == ci && *o == offset {
                    let _ = w.tx.send(Ok(Edge {
                        line: i,
                        active: level != *active_low,
                        ts_ns,
                    }));
                }
            }
        }
    }

    /// Make a chip fail (reads and edges error, as an unplugged expander would) or
    /// recover.
    pub fn set_failing(&self, chip: &str, failing: bool) {
        let mut s = self.lock();
        let Some(ci) = s.chips.iter().position(|c| c.name == chip) else {
            return;
        };
        s.chips[ci].failing = failing;
        if failing {
            for w in &s.watchers {
                if w.lines.iter().any(|(c, _, _)| *c == ci) {
                    let _ = w.tx.send(Err(Error::Read(format!("{chip}: device gone"))));
                }
            }
        }
    }

    /// How a line is held: `Some((active_low, bias))` while requested.
    pub fn held(&self, chip: &str, offset: u32) -> Option<(bool, Bias)> {
        let s = self.lock();
        s.chips
            .iter()
            .find(|c| c.name == chip)
            .and_then(|c| c.lines.get(offset as usize))
            .and_then(|l| l.held)
    }

    /// The physical level of a line requested as an output (`None` while it is not
    /// one): what a relay driver on the pin would see.
    pub fn output_level(&self, chip: &str, offset: u32) -> Option<bool> {
        let s = self.lock();
        let c = s.chips.iter().find(|c| c.name == chip)?;
        let l = c.lines.get(offset as usize)?;
        l.output.map(|_| l.level)
    }

    /// Make a line's pad stuck at `level` (an output whose driver does not follow:
    /// its read-back then differs), or free it (`None`).
    pub fn set_stuck(&self, chip: &str, offset: u32, level: Option<bool>) {
        let mut s = self.lock();
        if let Some(c) = s.chips.iter_mut().find(|c| c.name == chip)
            && let Some(l) = c.lines.get_mut(offset as usize)
        {
            l.stuck = level;
            if let Some(v) = level {
                l.level = v;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn chip_matches(name: &str, wanted: &str) -> bool {
    name == wanted || wanted.strip_prefix("/dev/") == Some(name)
}

/// Find a line: (chip index, offset).
fn find(s: &State, at: &LineAt) -> Result<(usize, u32), Error> {
    let found = match at {
        LineAt::Name(n) => s.chips.iter().enumerate().find_map(|(ci, c)| {
            c.lines
                .iter()
                .position(|l| &l.name == n)
                .map(|o| (ci, o as u32))
        }),
        LineAt::Offset { chip, offset } => {
            let ci = s
                .chips
                .iter()
                .position(|c| chip_matches(&c.name, chip))
                .ok_or_else(|| Error::Chip {
                    chip: chip.clone(),
                    reason: "No such file or directory".into(),
                })?;
            (*offset < s.chips[ci].lines.len() as u32).then_some((ci, *offset))
        }
    };
    found.ok_or_else(|| match at {
        LineAt::Name(n) => Error::NoSuchLine(n.clone()),
        other => Error::Request {
            lines: other.to_string(),
            reason: "Invalid argument: no such offset".into(),
        },
    })
}

impl Backend for FakeGpio {
    fn request_output(
        &self,
        _consumer: &str,
        spec: &LineSpec,
        active: bool,
    ) -> Result<Box<dyn super::backend::OutputLine>, Error> {
        let mut s = self.lock();
        let (ci, o) = find(&s, &spec.at)?;
        if s.chips[ci].failing {
            return Err(Error::Chip {
                chip: s.chips[ci].name.clone(),
                reason: "device gone".into(),
            });
        }
        let line = &mut s.chips[ci].lines[o as usize];
        if line.held.is_some() {
            return Err(Error::Request {
                lines: spec.at.to_string(),
                reason: "Device or resource busy".into(),
            });
        }
        line.held = Some((spec.active_low, spec.bias));
        line.output = Some(spec.active_low);
        let mut out = FakeOutput {
            gpio: self.clone(),
            at: (ci, o),
            active_low: spec.active_low,
            name: format!("{}:{o}", s.chips[ci].name),
        };
        drop(s);
        out.set_level(active != spec.active_low);
        Ok(Box::new(out))
    }

    fn request(&self, _consumer: &str, specs: &[LineSpec]) -> Result<Box<dyn Lines>, Error> {
        let mut s = self.lock();
        let mut found = Vec::new();
        for spec in specs {
            let at = match &spec.at {
                LineAt::Name(n) => s.chips.iter().enumerate().find_map(|(ci, c)| {
                    c.lines
                        .iter()
                        .position(|l| &l.name == n)
                        .map(|o| (ci, o as u32))
                }),
                LineAt::Offset { chip, offset } => {
                    let ci = s
                        .chips
                        .iter()
                        .position(|c| chip_matches(&c.name, chip))
                        .ok_or_else(|| Error::Chip {
                            chip: chip.clone(),
                            reason: "No such file or directory".into(),
                        })?;
                    (*offset < s.chips[ci].lines.len() as u32).then_some((ci, *offset))
                }
            };
            let Some((ci, o)) = at else {
                return Err(match &spec.at {
                    LineAt::Name(n) => Error::NoSuchLine(n.clone()),
                    other => Error::Request {
                        lines: other.to_string(),
                        reason: "Invalid argument: no such offset".into(),
                    },
                });
            };
            if s.chips[ci].lines[o as usize].held.is_some()
                || found.iter().any(|&(c, x, _)| c == ci && x == o)
            {
                return Err(Error::Request {
                    lines: spec.at.to_string(),
                    reason: "Device or resource busy".into(),
                });
            }
            found.push((ci, o, spec.active_low));
        }
        for ((ci, o, _), spec) in found.iter().zip(specs) {
            s.chips[*ci].lines[*o as usize].held = Some((spec.active_low, spec.bias));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let id = s.next_id;
        s.next_id += 1;
        s.watchers.push(Watcher {
            id,
            lines: found.clone(),
            tx,
        });
        let names = found
            .iter()
            .map(|(ci, o, _)| format!("{}:{o}", s.chips[*ci].name))
            .collect();
        Ok(Box::new(FakeLines {
            gpio: self.clone(),
            id,
            lines: found,
            names,
            rx,
        }))
    }
}

struct FakeLines {
    gpio: FakeGpio,
    id: u64,
    lines: Vec<(usize, u32, bool)>,
    names: Vec<String>,
    rx: mpsc::UnboundedReceiver<Result<Edge, Error>>,
}

impl Lines for FakeLines {
    fn values(&mut self) -> Result<Vec<bool>, Error> {
        let s = self.gpio.lock();
        self.lines
            .iter()
            .map(|(ci, o, active_low)| {
                let c = &s.chips[*ci];
                if c.failing {
                    return Err(Error::Read(format!("{}: device gone", c.name)));
                }
                Ok(c.lines[*o as usize].level != *active_low)
            })
            .collect()
    }

    fn next_edge(&mut self) -> EdgeFuture<'_> {
        Box::pin(async move { self.rx.recv().await.unwrap_or(Err(Error::Closed)) })
    }

    fn found(&self) -> Vec<String> {
        self.names.clone()
    }
}

struct FakeOutput {
    gpio: FakeGpio,
    at: (usize, u32),
    active_low: bool,
    name: String,
}

impl FakeOutput {
    fn set_level(&mut self, level: bool) {
        let mut s = self.gpio.lock();
        let l = &mut s.chips[self.at.0].lines[self.at.1 as usize];
        l.level = l.stuck.unwrap_or(level);
    }
}

impl super::backend::OutputLine for FakeOutput {
    fn set(&mut self, active: bool) -> Result<(), Error> {
        let failing = {
            let s = self.gpio.lock();
            let c = &s.chips[self.at.0];
            c.failing.then(|| c.name.clone())
        };
        if let Some(chip) = failing {
            return Err(Error::Read(format!("{chip}: device gone")));
        }
        self.set_level(active != self.active_low);
        Ok(())
    }

    fn get(&mut self) -> Result<bool, Error> {
        let s = self.gpio.lock();
        let c = &s.chips[self.at.0];
        if c.failing {
            return Err(Error::Read(format!("{}: device gone", c.name)));
        }
        Ok(c.lines[self.at.1 as usize].level != self.active_low)
    }

    fn found(&self) -> String {
        self.name.clone()
    }
}

impl Drop for FakeOutput {
    fn drop(&mut self) {
        let mut s = self.gpio.lock();
        let l = &mut s.chips[self.at.0].lines[self.at.1 as usize];
        l.held = None;
        l.output = None;
    }
}

impl Drop for FakeLines {
    fn drop(&mut self) {
        let mut s = self.gpio.lock();
        for (ci, o, _) in &self.lines {
            s.chips[*ci].lines[*o as usize].held = None;
        }
        s.watchers.retain(|w| w.id != self.id);
    }
}
