//! Fast polling of a generator while it starts: NFPA 110 Type 10 asks for rated
//! voltage and frequency within 10 s of a start, which a poll every 2 s cannot judge.
//!
//! A device of kind `generator` whose profile maps `engine_running` is polled every
//! [`FAST_INTERVAL`] (250 ms) from the first poll that sees its start sequence
//! (`engine_starting`, before the crank) or its engine running after it was seen
//! stopped, until a poll shows it at rated values (generator frequency
//! within ±5 % of 50 or 60 Hz and phase voltage within ±10 % of a standard phase
//! voltage: 220, 230, 240, 110 or 120 V), at most for [`FAST_WINDOW`]. The rule that
//! judges the start (`not_at_rated`, `src/rules/`) then sees the moment the generator
//! reaches rated values within 250 ms.
//!
//! Invariants: never faster than the device's own interval would be slower (a device
//! configured faster than 250 ms keeps its interval); a device that is not a generator,
//! or whose profile lacks `engine_running`, is never polled fast; the window bounds a
//! generator that never reaches rated values (its alarm is raised by the rule anyway).

use std::time::Duration;

use tokio::time::Instant;

use crate::model::{Kind, Poll, Quality, Value};

/// Poll interval while a generator starts.
pub const FAST_INTERVAL: Duration = Duration::from_millis(250);
/// Longest fast polling after a start (the 10 s of NFPA 110 Type 10 and margin).
pub const FAST_WINDOW: Duration = Duration::from_secs(30);

/// Phase voltages a generator may be rated for, V.
const RATED_VOLTAGES: [f64; 5] = [220.0, 230.0, 240.0, 110.0, 120.0];
/// Frequencies a generator may be rated for, Hz.
const RATED_FREQUENCIES: [f64; 2] = [50.0, 60.0];

/// The fast-poll state of one device.
#[derive(Debug, Default)]
pub(crate) struct FastPoll {
    /// Whether the device can be polled fast at all.
    enabled: bool,
    /// `engine_running` as last read.
    running: Option<bool>,
    /// When the present fast polling began.
    since: Option<Instant>,
}

fn good<'a>(poll: &'a Poll, name: &str) -> Option<&'a Value> {
    poll.samples
        .iter()
        .find(|s| s.point.name == name && s.quality == Quality::Good)
        .and_then(|s| s.value.as_ref())
}

fn near(x: f64, rated: &[f64], tolerance: f64) -> bool {
    rated.iter().any(|r| (x - r).abs() <= r * tolerance)
}

impl FastPoll {
    /// For a device of `kind` whose profile maps `maps_running` (`engine_running`).
    pub(crate) fn new(kind: Kind, maps_running: bool) -> FastPoll {
        FastPoll {
            enabled: kind == Kind::Generator && maps_running,
            ..FastPoll::default()
        }
    }

    /// Whether the device is being polled fast now.
    #[cfg(test)]
    fn active(&self) -> bool {
        self.since.is_some()
    }

    /// The interval to the next poll after `poll` (taken at `now`), given the
    /// device's own `interval`.
    pub(crate) fn after(&mut self, poll: &Poll, now: Instant, interval: Duration) -> Duration {
        if !self.enabled || interval <= FAST_INTERVAL {
            return interval;
        }
        // A start begins when the start sequence runs (`engine_starting`: DSE
        // "pre-start", before the crank) or the engine turns, whichever is seen first.
        let starting = good(poll, "engine_starting") == Some(&Value::Bool(true));
        let turning = match good(poll, "engine_running") {
            Some(Value::Bool(r)) => Some(*r || starting),
            _ => starting.then_some(true),
        };
        if let Some(running) = turning {
            if running && self.running == Some(false) {
                self.since = Some(now);
            }
            if !running {
                self.since = None;
            }
            self.running = Some(running);
        }
        let at_rated = match (
            good(poll, "gen_frequency_hz"),
            good(poll, "gen_voltage_l1_v"),
        ) {
            (Some(f), Some(v)) => f.as_f64().zip(v.as_f64()).is_some_and(|(f, v)| {
                near(f, &RATED_FREQUENCIES, 0.05) && near(v, &RATED_VOLTAGES, 0.10)
            }),
            _ => false,
        };
        if at_rated
            || self
                .since
                .is_some_and(|s| now.duration_since(s) >= FAST_WINDOW)
        {
            self.since = None;
        }
        if self.since.is_some() {
            FAST_INTERVAL
        } else {
            interval
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{DeviceMeta, Sample, Timestamp};
    use crate::points::lookup;

    fn poll(values: &[(&str, Value)]) -> Poll {
        Poll {
            device: Arc::new(DeviceMeta {
                id: Arc::from("gen1"),
                name: "gen1".into(),
                label: None,
                room: Arc::from("r"),
                kind: Kind::Generator,
            }),
            ts: Timestamp(0),
            comm_ok: true,
            samples: values
                .iter()
                .map(|(p, v)| Sample {
                    point: lookup(Kind::Generator, p).unwrap(),
                    value: Some(v.clone()),
                    quality: Quality::Good,
                })
                .collect(),
        }
    }

    #[test]
    fn fast_from_the_start_until_rated_values() {
        let two = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut f = FastPoll::new(Kind::Generator, true);
        let stopped = poll(&[("engine_running", Value::Bool(false))]);
        let cranking = poll(&[
            ("engine_running", Value::Bool(true)),
            ("gen_frequency_hz", Value::Number(31.0)),
            ("gen_voltage_l1_v", Value::Number(140.0)),
        ]);
        let rated = poll(&[
            ("engine_running", Value::Bool(true)),
            ("gen_frequency_hz", Value::Number(50.2)),
            ("gen_voltage_l1_v", Value::Number(228.0)),
        ]);
        assert_eq!(f.after(&stopped, t0, two), two);
        assert_eq!(f.after(&cranking, t0, two), FAST_INTERVAL);
        assert!(f.active());
        assert_eq!(
            f.after(&cranking, t0 + Duration::from_secs(5), two),
            FAST_INTERVAL
        );
        assert_eq!(f.after(&rated, t0 + Duration::from_secs(9), two), two);
        assert!(!f.active());
        // Running on: no new start, no fast polling.
        assert_eq!(f.after(&cranking, t0 + Duration::from_secs(12), two), two);
        // Stopped, started again and never at rated: fast for the window only.
        assert_eq!(f.after(&stopped, t0 + Duration::from_secs(20), two), two);
        assert_eq!(
            f.after(&cranking, t0 + Duration::from_secs(22), two),
            FAST_INTERVAL
        );
        assert_eq!(
            f.after(&cranking, t0 + Duration::from_secs(51), two),
            FAST_INTERVAL
        );
        assert_eq!(f.after(&cranking, t0 + Duration::from_secs(52), two), two);
    }

    #[test]
    fn the_start_sequence_before_the_crank_starts_fast_polling() {
        let two = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut f = FastPoll::new(Kind::Generator, true);
        let stopped = poll(&[
            ("engine_running", Value::Bool(false)),
            ("engine_starting", Value::Bool(false)),
        ]);
        let pre_start = poll(&[
            ("engine_running", Value::Bool(false)),
            ("engine_starting", Value::Bool(true)),
        ]);
        assert_eq!(f.after(&stopped, t0, two), two);
        assert_eq!(f.after(&pre_start, t0, two), FAST_INTERVAL);
        assert_eq!(f.after(&stopped, t0 + two, two), two, "start aborted");
    }

    #[test]
    fn only_generators_that_report_running_and_only_slower_devices() {
        let two = Duration::from_secs(2);
        let t0 = Instant::now();
        let stopped = poll(&[("engine_running", Value::Bool(false))]);
        let running = poll(&[("engine_running", Value::Bool(true))]);
        for mut f in [
            FastPoll::new(Kind::Ups, true),
            FastPoll::new(Kind::Generator, false),
        ] {
            f.after(&stopped, t0, two);
            assert_eq!(f.after(&running, t0, two), two);
        }
        let mut f = FastPoll::new(Kind::Generator, true);
        let fast = Duration::from_millis(100);
        f.after(&stopped, t0, fast);
        assert_eq!(f.after(&running, t0, fast), fast);
        // A gateway that first sees the engine running does not call it a start.
        let mut f = FastPoll::new(Kind::Generator, true);
        assert_eq!(f.after(&running, t0, two), two);
    }
}
