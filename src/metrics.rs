//! Prometheus metrics, served on `GET /metrics`.
//!
//! One process-wide registry. Every failure the gateway survives (a timed-out device,
//! a refused batch, a broker that rejects our password) is counted here, so the SOC's
//! Prometheus sees what the log says.

use std::sync::OnceLock;

use prometheus_client::encoding::text::encode;
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label set: a few `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    /// Device polls by outcome (`ok`, `timeout`, `comm_error`, `device_exception`).
    pub polls: Family<Labels, Counter>,
    /// Protocol requests sent (one Modbus read = one request).
    pub requests: Family<Labels, Counter>,
    /// Records a sink's far end confirmed.
    pub sink_delivered: Family<Labels, Counter>,
    /// Failed delivery attempts by reason (`connect`, `auth`, `http_400`, `http_5xx`, ...).
    pub sink_errors: Family<Labels, Counter>,
    /// Records dropped because a queue budget was exceeded.
    pub sink_dropped: Family<Labels, Counter>,
    /// Records the far end refused for good.
    pub sink_dead_lettered: Family<Labels, Counter>,
    /// Records waiting in a sink queue.
    pub sink_queued: Family<Labels, Gauge>,
    /// Alarm events by level and state.
    pub alarm_events: Family<Labels, Counter>,
    /// Notifications to people by what they are (`page`, `repeat`, `escalation`,
    /// `call`, `clear`, `summary`, `test`, `reply`), and texts storm control held
    /// (`held`) (src/paging/).
    pub notifications: Family<Labels, Counter>,
    /// Rejected input at the edges (malformed HTTP request, MQTT command, frame).
    pub bad_input: Family<Labels, Counter>,
    /// Bytes received on a Modbus line (RS-485 bus, TCP connection) that were not
    /// part of an accepted reply: noise, bad frames, late replies (`line`).
    pub line_discarded_bytes: Family<Labels, Counter>,
    /// Frames on a Modbus line that were not an answer to the request (`line`,
    /// `reason`: `crc`, `stray`, `malformed`).
    pub line_bad_frames: Family<Labels, Counter>,
    /// Failed writes of an output (siren, beacon) by output and reason (`write`,
    /// `readback`: the output does not hold the state written).
    pub output_failures: Family<Labels, Counter>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dcgw");
        let polls = Family::<Labels, Counter>::default();
        registry.register("polls", "Device polls by outcome", polls.clone());
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "requests",
            "Protocol requests sent to devices",
            requests.clone(),
        );
        let sink_delivered = Family::<Labels, Counter>::default();
        registry.register(
            "sink_delivered",
            "Records confirmed by the sink's far end",
            sink_delivered.clone(),
        );
        let sink_errors = Family::<Labels, Counter>::default();
        registry.register(
            "sink_errors",
            "Failed delivery attempts by reason",
            sink_errors.clone(),
        );
        let sink_dropped = Family::<Labels, Counter>::default();
        registry.register(
            "sink_dropped",
            "Records dropped over budget",
            sink_dropped.clone(),
        );
        let sink_dead_lettered = Family::<Labels, Counter>::default();
        registry.register(
            "sink_dead_lettered",
            "Records refused for good by the far end",
            sink_dead_lettered.clone(),
        );
        let sink_queued = Family::<Labels, Gauge>::default();
        registry.register(
            "sink_queued",
            "Records waiting in a sink queue",
            sink_queued.clone(),
        );
        let alarm_events = Family::<Labels, Counter>::default();
        registry.register("alarm_events", "Alarm transitions", alarm_events.clone());
        let notifications = Family::<Labels, Counter>::default();
        registry.register(
            "notifications",
            "Notifications to people, and texts held by storm control",
            notifications.clone(),
        );
        let bad_input = Family::<Labels, Counter>::default();
        registry.register("bad_input", "Rejected malformed input", bad_input.clone());
        let line_discarded_bytes = Family::<Labels, Counter>::default();
        registry.register(
            "line_discarded_bytes",
            "Bytes received on a Modbus line that were not part of an accepted reply",
            line_discarded_bytes.clone(),
        );
        let line_bad_frames = Family::<Labels, Counter>::default();
        registry.register(
            "line_bad_frames",
            "Frames on a Modbus line that did not answer the request (CRC error, stray, malformed)",
            line_bad_frames.clone(),
        );
        let output_failures = Family::<Labels, Counter>::default();
        registry.register(
            "output_failures",
            "Failed output writes (siren, beacon) by reason",
            output_failures.clone(),
        );
        Metrics {
            registry,
            polls,
            requests,
            sink_delivered,
            sink_errors,
            sink_dropped,
            sink_dead_lettered,
            sink_queued,
            alarm_events,
            notifications,
            bad_input,
            line_discarded_bytes,
            line_bad_frames,
            output_failures,
        }
    }

    /// Text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// Shorthand for a label set.
pub fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

/// The current value of the counter of `family` with these labels (0 if never
/// counted): for `/metrics`-free checks in tests and the self-monitor.
pub fn count(family: &Family<Labels, Counter>, pairs: &[(&'static str, &str)]) -> u64 {
    family.get_or_create(&labels(pairs)).get()
}
