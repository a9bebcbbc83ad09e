//! Debounced digital inputs: the leak rope and the door reed contact.
//!
//! A reed contact bounces for a few milliseconds when the door moves, and a leak rope
//! can flicker as a drop spreads. An input changes its reported state only after the
//! raw level has held the new value for `hold_ms` without interruption; any return to
//! the old level restarts the wait. Time comes from the caller (`now_ms`, monotonic).

/// One debounced input.
#[derive(Debug, Clone)]
pub struct Debounced {
    stable: bool,
    last_raw: bool,
    raw_since_ms: u64,
    hold_ms: u64,
}

impl Debounced {
    /// An input that reports `initial` until the raw level holds otherwise for
    /// `hold_ms`.
    pub fn new(initial: bool, hold_ms: u64) -> Self {
        Debounced {
            stable: initial,
            last_raw: initial,
            raw_since_ms: 0,
            hold_ms,
        }
    }

    /// Feeds the raw level sampled at `now_ms`; returns `Some(new state)` when the
    /// debounced state changes.
    pub fn update(&mut self, raw: bool, now_ms: u64) -> Option<bool> {
        if raw != self.last_raw {
            self.last_raw = raw;
            self.raw_since_ms = now_ms;
        }
        if raw != self.stable && now_ms.saturating_sub(self.raw_since_ms) >= self.hold_ms {
            self.stable = raw;
            return Some(raw);
        }
        None
    }

    /// The debounced state.
    pub fn state(&self) -> bool {
        self.stable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_shorter_than_the_hold_time_are_ignored() {
        let mut d = Debounced::new(false, 50);
        // Contact bounce: 10 ms pulses.
        for (t, raw) in [(0, true), (10, false), (20, true), (30, false), (40, false)] {
            assert_eq!(d.update(raw, t), None, "t={t}");
        }
        assert!(!d.state());
        // A level that holds 50 ms is taken.
        assert_eq!(d.update(true, 100), None);
        assert_eq!(d.update(true, 149), None);
        assert_eq!(d.update(true, 150), Some(true));
        assert!(d.state());
        assert_eq!(d.update(true, 400), None, "reported once");
    }

    #[test]
    fn a_return_to_the_old_level_restarts_the_wait() {
        let mut d = Debounced::new(true, 50);
        assert_eq!(d.update(false, 0), None);
        assert_eq!(d.update(true, 40), None);
        assert_eq!(d.update(false, 45), None);
        assert_eq!(d.update(false, 90), None, "only 45 ms since the restart");
        assert_eq!(d.update(false, 95), Some(false));
    }

    #[test]
    fn zero_hold_follows_the_input() {
        let mut d = Debounced::new(false, 0);
        assert_eq!(d.update(true, 7), Some(true));
        assert_eq!(d.update(false, 7), Some(false));
    }
}
