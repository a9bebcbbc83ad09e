//! The end of every poll, whatever the protocol: count it, log a change of the device's
//! state once (not on every tick), and build the [`Poll`] that goes to the hub.
//!
//! What stays true: every call of [`Health::finish`] yields exactly one `Poll` and one
//! increment of `dcgw_polls{device, result}` (`ok`, or the first failure of the poll:
//! `timeout`, `comm_error`, `device_exception`, ...). A device that keeps failing the
//! same way is logged once at warning level; recovery is logged once.

use crate::metrics;
use crate::model::{Device, Poll, Sample, Timestamp};

/// State of the last poll, for logging once per change.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Starting,
    Ok,
    Failed {
        result: &'static str,
        detail: String,
    },
}

/// A device's poll health: what the last poll's outcome was.
#[derive(Debug)]
pub struct Health {
    device: Device,
    /// What the device is, for logs (`modbus device`, `snmp agent`).
    what: &'static str,
    /// Where it is reached, for logs (`127.0.0.1:502 unit 3`, `udp:10.0.0.5:161 v2c`).
    peer: String,
    state: State,
}

impl Health {
    /// A device that has not been polled yet.
    pub fn new(device: Device, what: &'static str, peer: String) -> Health {
        Health {
            device,
            what,
            peer,
            state: State::Starting,
        }
    }

    /// The failure result of the last poll (`timeout`, ...), `None` when it was good or
    /// none has finished yet.
    pub fn last_failure(&self) -> Option<&'static str> {
        match &self.state {
            State::Failed { result, .. } => Some(result),
            _ => None,
        }
    }

    /// Finish a poll: count it under its result, log a change of state, and build the
    /// poll. `failure` is the first failure of the poll (result label, detail).
    pub fn finish(
        &mut self,
        samples: Vec<Sample>,
        comm_ok: bool,
        failure: Option<(&'static str, String)>,
    ) -> Poll {
        let result = failure.as_ref().map(|(r, _)| *r).unwrap_or("ok");
        metrics::get()
            .polls
            .get_or_create(&vec![
                ("device", self.device.id.to_string()),
                ("result", result.to_string()),
            ])
            .inc();
        let state = match failure {
            None => State::Ok,
            Some((result, detail)) => State::Failed { result, detail },
        };
        self.log_transition(state);
        Poll {
            device: self.device.clone(),
            ts: Timestamp::now(),
            comm_ok,
            samples,
        }
    }

    fn log_transition(&mut self, state: State) {
        if state == self.state {
            return;
        }
        let (device, peer, what) = (&self.device.id, &self.peer, self.what);
        match (&self.state, &state) {
            (State::Starting, State::Ok) => {
                tracing::info!(device = %device, peer = %peer, "{what} answering")
            }
            (_, State::Ok) => tracing::info!(device = %device, peer = %peer, "{what} recovered"),
            (State::Failed { result: a, .. }, State::Failed { result: b, .. }) if a == b => {
                // Same kind of failure with another detail (refused, then reset): quiet.
                tracing::debug!(device = %device, peer = %peer, result = b, "{what}: poll still failing");
            }
            (_, State::Failed { result, detail }) => {
                tracing::warn!(device = %device, peer = %peer, result, error = %detail, "{what}: poll failed")
            }
            (_, State::Starting) => {}
        }
        self.state = state;
    }
}
