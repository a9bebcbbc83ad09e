//! MQTT sink: current readings, alarm events and the gateway's own status on an MQTT
//! 3.1.1 broker, in the topic tree of CONTRACTS.md (see [`topics`]).
//!
//! # Client crate
//!
//! We use `rumqttc-v4-next` (imported as `rumqttc`), the maintained fork of rumqttc,
//! because its `publish_tracked()` hands back a notice that resolves when the broker's
//! PUBACK arrives, or fails with "session reset" when the connection was lost before
//! it. Upstream rumqttc's `publish()` returns Ok as soon as the message is *queued* in
//! the client, which says nothing about the broker having it (with a clean session it
//! silently lost 5 of 6 QoS 1 messages across a reconnect in a test here), and it pins
//! a `rustls-webpki` with open advisories. An alarm event leaves the queue in front of
//! this sink only on PUBACK, so we need the PUBACK, not the enqueue.
//!
//! # What is delivered, and when the queue is told so
//!
//! - **Alarm events** (`Record::Alarm`) are published QoS 1 to `<prefix>/alarms/events`
//!   (not retained) and to `<prefix>/alarms/active/<device>/<rule>` (retained: the
//!   event JSON while the alarm stands, an empty payload when it clears, which deletes
//!   the retained message). A batch is [`Outcome::Delivered`] only when *every* one of
//!   these publishes has its PUBACK. No PUBACK within `ack_timeout`, a session reset
//!   (connection lost before the PUBACK) or no broker connection at all give
//!   [`Outcome::Retry`] for the whole batch, promptly: `deliver` never waits longer
//!   than `ack_timeout`, and returns at once while disconnected. Within a batch,
//!   alarms are published in batch order (the client keeps publishes FIFO).
//! - **Generator runs** (`Record::GeneratorRun`) are published QoS 1 (not retained) to
//!   `<prefix>/generator_runs/<device>` as JSON (the run, `site`, `room`, `label`).
//! - **Notifications** (`Record::Notification`) are published QoS 1 (not retained) to
//!   `<prefix>/notify/<person>` as JSON (`topics::notify_payload`), with the same
//!   PUBACK rule as alarm events, so a site can bridge them to other channels.
//! - **Readings** (`Record::Poll`) are published QoS 0, retained, one message per good
//!   sample, to `<prefix>/<device>/<point>` with the value as text. They are retained
//!   *current state*: a reading that could not be handed to a connected client (the
//!   broker is down, or went down mid-batch) is superseded by the next poll a second
//!   later, so it is not replayed. It is dropped and counted in
//!   `sink_dropped{sink, reason="mqtt_offline_readings"}`, and a batch of readings
//!   only is reported `Delivered` so the queue does not fill with stale values while
//!   the broker is away. InfluxDB is where the history of readings is kept without
//!   gaps; MQTT carries the live picture and the alarms. A batch holding an alarm is
//!   retried whole, readings included (they are re-published, which only rewrites the
//!   same retained values in order).
//! - Records whose ids cannot be MQTT topic levels (`/`, `+`, `#`) are refused for good
//!   ([`Outcome::Rejected`] for alarms, counted as dropped with reason `bad_topic` for
//!   readings); config validation normally prevents them.
//!
//! Delivery is at-least-once: a PUBACK lost on the way back means the event is sent
//! again. Consumers drop duplicates by the event's `id` and check order by `seq`.
//!
//! # Two connections
//!
//! The sink keeps two connections to the broker ([`connection::Role`]): the main one
//! (client id `client_id`) carries the status, the last will and the alarm events; a
//! second one (`<client_id>-readings`, no last will) carries only readings. A broker
//! handles one connection's messages in order, so over a single connection an alarm
//! waited behind every reading queued before it, in the client and in the broker: at
//! 100 devices × 20 points polled in step, up to 2 000 messages, which made the alarm
//! latency p99 55–77 ms in the site benchmark against 13–18 ms with its own connection
//! (docs/BENCHMARKS.md). A broker with ACLs per client id must allow both ids.
//!
//! # Cost per reading
//!
//! Readings are most of the traffic (one message per value per poll), so their path is
//! kept short, as measured by the site benchmark (docs/BENCHMARKS.md): each
//! `<prefix>/<device>/<point>` topic is built and checked once and then reused (a
//! validated topic per configured point, so the cache is as large as the site); a
//! reading is handed to the client without waiting (`try_publish`) and only waits, up
//! to the batch deadline, when the client's queue is full; the client writes up to
//! [`connection::REQUEST_BATCH`] queued publishes per socket write.
//!
//! # Session: clean, on purpose
//!
//! The client connects with `clean_session = true`. The durable queue in front of the
//! sink already owns every unconfirmed alarm and resends it; a persistent broker
//! session would be a second, weaker copy of the same state (lost anyway when a broker
//! without persistence restarts) and would replay in-flight messages from a batch the
//! queue has already decided to retry, adding duplicates and reordering. With a clean
//! session the rule is simple: on reconnect the client fails every notice still
//! waiting with "session reset", the batch comes back as `Retry`, and the queue
//! resends it. Correctness never depends on what the broker remembers. (We have no
//! subscriptions yet; when inbound commands come they are re-subscribed on each
//! CONNACK.)
//!
//! # Status and last will
//!
//! The CONNECT carries a last will `<prefix>/gateway/status` = `offline` (retained,
//! QoS 1); after every CONNACK the sink publishes `online` there (retained, QoS 1).
//! If the process dies, the board loses power or the network goes, the broker
//! publishes `offline` itself: this is the failure signal for active/standby pairs.
//! A planned stop goes through [`MqttHandle::shutdown`], which publishes `offline`
//! and then disconnects cleanly (the broker does not publish a will after a clean
//! DISCONNECT). Dropping the sink without shutdown aborts the connection and lets the
//! broker publish the will, as after a crash.
//!
//! # Failures
//!
//! Connection failures are logged once per change of state and counted in
//! `sink_errors{sink, reason}` with reason `auth` (bad user name or password, not
//! authorised), `tls` (handshake or certificate) or `connect` (anything else); the
//! client retries with a backoff from 0.5 s to 10 s and never gives up. Alarm
//! batches that miss their PUBACK count `sink_errors{reason="puback_timeout"}` or
//! `{reason="session_reset"}`.

pub mod config;
pub(crate) mod connection;
pub mod reconcile;
pub mod topics;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ClientError, PublishNotice, PublishNoticeError, PublishOptions, ValidatedTopic,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::connection::Shared;
pub use self::connection::{BACKOFF_MAX, BACKOFF_MIN};
use self::topics::{OFFLINE, Topics};
use super::{Outcome, Record, Sink};
use crate::metrics;
pub use config::{MqttConfig, RawMqtt};

/// Why the MQTT sink could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topic prefix cannot be used.
    #[error("MQTT sink {sink:?}: {source}")]
    Topic {
        /// Sink name.
        sink: String,
        /// What is wrong with it.
        #[source]
        source: topics::TopicError,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("MQTT sink {sink:?}: CA file {path}: {reason}", path = path.display())]
    CaFile {
        /// Sink name.
        sink: String,
        /// The configured `ca_file`.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// TLS could not be set up.
    #[error("MQTT sink {sink:?}: TLS setup failed: {reason}")]
    Tls {
        /// Sink name.
        sink: String,
        /// What went wrong.
        reason: String,
    },
    /// A password was given without a user name (MQTT 3.1.1 does not allow it).
    #[error("MQTT sink {sink:?}: a password is set but no user name; MQTT 3.1.1 needs both")]
    PasswordWithoutUser {
        /// Sink name.
        sink: String,
    },
    /// The client library refused the options.
    #[error("MQTT sink {sink:?}: invalid client options: {reason}")]
    Options {
        /// Sink name.
        sink: String,
        /// The library's reason.
        reason: String,
    },
}

/// FNV-1a hashing for the reading-topic cache. Its keys are short strings from the
/// site's own config (device ids, point names), looked up once per reading: SipHash's
/// resistance to chosen keys buys nothing here and cost 5 % of the gateway's
/// instructions in the site benchmark.
type Fnv = fnv::FnvBuildHasher;

/// The MQTT sink. Create it with [`MqttSink::start`] inside a tokio runtime.
pub struct MqttSink {
    name: Arc<str>,
    site: Arc<str>,
    topics: Topics,
    client: AsyncClient,
    shared: Arc<Shared>,
    ack_timeout: Duration,
    task: JoinHandle<()>,
    /// The readings connection (see the module docs).
    readings: AsyncClient,
    readings_shared: Arc<Shared>,
    readings_task: JoinHandle<()>,
    /// Reading topics by device id and point, built and validated once.
    reading_topics: HashMap<Arc<str>, HashMap<&'static str, ValidatedTopic, Fnv>, Fnv>,
    /// Per device: the state last published on `status/<device>` and its last poll
    /// with an answer.
    device_states: HashMap<
        Arc<str>,
        (
            Option<(bool, crate::model::Quality)>,
            Option<crate::model::Timestamp>,
        ),
        Fnv,
    >,
}

/// A cheap handle on a running sink, kept by the runtime after the sink itself was
/// moved into its queue worker: connection state and a clean shutdown.
#[derive(Clone)]
pub struct MqttHandle {
    name: Arc<str>,
    client: AsyncClient,
    shared: Arc<Shared>,
    status_topic: String,
    task: tokio::task::AbortHandle,
    readings: AsyncClient,
    readings_shared: Arc<Shared>,
    readings_task: tokio::task::AbortHandle,
}

impl MqttSink {
    /// Build the clients (TLS, credentials, last will) and spawn the tasks that connect
    /// and keep the two connections up. Returns at once; the connections are made in
    /// the background and `connected()` turns true on the main connection's CONNACK.
    ///
    /// Fails only on settings that can never work: an unusable topic prefix, an
    /// unreadable CA file, a password without a user name.
    pub fn start(name: &str, site: Arc<str>, cfg: &MqttConfig) -> Result<MqttSink, Error> {
        MqttSink::start_with(name, site, cfg, None)
    }

    /// [`MqttSink::start`], taking commands from `<prefix>/commands` into `commands`
    /// when the sink is configured with `commands = true`.
    pub fn start_with(
        name: &str,
        site: Arc<str>,
        cfg: &MqttConfig,
        commands: Option<crate::commands::Commands>,
    ) -> Result<MqttSink, Error> {
        let topics = Topics::new(&cfg.prefix).map_err(|source| Error::Topic {
            sink: name.to_string(),
            source,
        })?;
        let status_topic = topics.status();
        let (client, eventloop) =
            connection::build(name, cfg, &status_topic, connection::Role::Main)?;
        let (readings, readings_loop) =
            connection::build(name, cfg, &status_topic, connection::Role::Readings)?;
        let shared = Arc::new(Shared::default());
        let readings_shared = Arc::new(Shared::default());
        let name: Arc<str> = Arc::from(name);
        let broker = format!(
            "{}://{}:{}",
            if cfg.tls { "mqtts" } else { "mqtt" },
            cfg.host,
            cfg.port
        );
        let inbound = commands
            .filter(|_| cfg.commands)
            .map(|commands| connection::Inbound {
                topic: topics.commands(),
                replies: topics.replies(),
                commands,
            });
        let task = tokio::spawn(connection::run(
            eventloop,
            client.clone(),
            shared.clone(),
            name.clone(),
            broker.clone(),
            status_topic.clone(),
            connection::Role::Main,
            inbound,
            None,
        ));
        let readings_task = tokio::spawn(connection::run(
            readings_loop,
            readings.clone(),
            readings_shared.clone(),
            name.clone(),
            broker,
            status_topic,
            connection::Role::Readings,
            None,
            connection::gateway_status_topic(cfg),
        ));
        Ok(MqttSink {
            name,
            site,
            topics,
            client,
            shared,
            ack_timeout: cfg.ack_timeout.max(Duration::from_millis(1)),
            task,
            readings,
            readings_shared,
            readings_task,
            reading_topics: HashMap::default(),
            device_states: HashMap::default(),
        })
    }

    /// The validated topic of a reading, from the cache (built on first use).
    fn reading_topic(
        &mut self,
        device: &Arc<str>,
        point: &'static str,
    ) -> Result<ValidatedTopic, topics::TopicError> {
        if let Some(t) = self
            .reading_topics
            .get(&**device)
            .and_then(|m| m.get(point))
        {
            return Ok(t.clone());
        }
        let topic = self.topics.reading(device, point)?;
        // `Topics` already refused every level the client would; this cannot fail.
        let topic = ValidatedTopic::new(topic).map_err(|e| topics::TopicError::Level {
            what: "topic",
            value: e.to_string(),
        })?;
        self.reading_topics
            .entry(device.clone())
            .or_default()
            .insert(point, topic.clone());
        Ok(topic)
    }

    /// Publish `<prefix>/status/<device>` (retained, QoS 1) when the device's state
    /// changed: `{comm_ok, quality, ts, age_s}`, so a consumer tells a fresh retained
    /// value from one of a device that stopped answering. `ts` is the device's last
    /// poll with an answer, `age_s` the seconds since then.
    fn device_status(&mut self, poll: &crate::model::Poll) {
        use crate::model::Quality;
        let quality = if poll.comm_ok {
            poll.samples
                .iter()
                .map(|s| s.quality)
                .find(|q| *q != Quality::Good)
                .unwrap_or(Quality::Good)
        } else {
            poll.samples
                .first()
                .map(|s| s.quality)
                .unwrap_or(Quality::CommError)
        };
        let entry = self
            .device_states
            .entry(poll.device.id.clone())
            .or_insert((None, None));
        if poll.comm_ok {
            entry.1 = Some(poll.ts);
        }
        let state = (poll.comm_ok, quality);
        if entry.0 == Some(state) {
            return;
        }
        let last_ok = entry.1;
        let Ok(topic) = self.topics.device_status(&poll.device.id) else {
            return;
        };
        let payload = serde_json::json!({
            "comm_ok": poll.comm_ok,
            "quality": quality,
            "ts": last_ok,
            "age_s": last_ok.map(|t| (poll.ts.secs_since(t) * 10.0).round() / 10.0),
        });
        let opts = PublishOptions::at_least_once().retained();
        let sent = self.readings_connected()
            && self
                .readings
                .try_publish(
                    topic,
                    serde_json::to_vec(&payload).unwrap_or_default(),
                    opts,
                )
                .is_ok();
        if sent && let Some(e) = self.device_states.get_mut(&poll.device.id) {
            e.0 = Some(state);
        }
    }

    /// Whether the readings connection is up.
    fn readings_connected(&self) -> bool {
        self.readings_shared.connected.load(Ordering::SeqCst)
    }

    /// Hand one reading to the readings client: at once when its queue has room, else
    /// waiting for room until `deadline`. Returns whether the client took it.
    async fn publish_reading(
        &self,
        topic: ValidatedTopic,
        point: crate::points::PointId,
        value: &crate::model::Value,
        deadline: Instant,
    ) -> bool {
        let opts = PublishOptions::at_most_once().retained();
        match self
            .readings
            .try_publish(topic.clone(), topics::reading_payload(point, value), opts)
        {
            Ok(()) => true,
            Err(ClientError::RequestChannelFull(_)) => matches!(
                tokio::time::timeout_at(
                    deadline,
                    self.readings
                        .publish(topic, topics::reading_payload(point, value), opts),
                )
                .await,
                Ok(Ok(()))
            ),
            Err(_) => false,
        }
    }

    /// A handle for the runtime: connection state and [`MqttHandle::shutdown`].
    pub fn handle(&self) -> MqttHandle {
        MqttHandle {
            name: self.name.clone(),
            client: self.client.clone(),
            shared: self.shared.clone(),
            status_topic: self.topics.status(),
            task: self.task.abort_handle(),
            readings: self.readings.clone(),
            readings_shared: self.readings_shared.clone(),
            readings_task: self.readings_task.abort_handle(),
        }
    }

    /// Whether the main broker connection (status, alarms) is up, between a CONNACK
    /// and the next error.
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// The last connection failure (`auth: broker refused ...`), `None` while connected.
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().ok().and_then(|g| g.clone())
    }

    /// Site this sink publishes for.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// The topic tree in use.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    fn count_error(&self, reason: &str) {
        metrics::get()
            .sink_errors
            .get_or_create(&metrics::labels(&[
                ("sink", &self.name),
                ("reason", reason),
            ]))
            .inc();
    }

    fn count_dropped(&self, reason: &str, n: u64) {
        if n > 0 {
            metrics::get()
                .sink_dropped
                .get_or_create(&metrics::labels(&[
                    ("sink", &self.name),
                    ("reason", reason),
                ]))
                .inc_by(n);
        }
    }

    fn retry(&self, reason: String) -> Outcome {
        Outcome::Retry {
            after: None,
            reason,
        }
    }

    /// Queue one QoS 1 publish of a batch (the broker must still be connected); its
    /// notice resolves on the PUBACK. `Err` is the batch's outcome: retry it.
    async fn publish_tracked<T, P>(
        &mut self,
        deadline: Instant,
        topic: T,
        payload: P,
        opts: PublishOptions,
    ) -> Result<PublishNotice, Outcome>
    where
        T: Into<rumqttc::PublishTopic>,
        P: rumqttc::IntoPublishPayload,
    {
        if !self.connected() {
            return Err(self.retry("MQTT connection lost during the batch".to_string()));
        }
        match tokio::time::timeout_at(deadline, self.client.publish_tracked(topic, payload, opts))
            .await
        {
            Ok(Ok(notice)) => Ok(notice),
            Ok(Err(e)) => {
                self.count_error("publish");
                Err(self.retry(format!("MQTT client refused the publish: {e}")))
            }
            Err(_) => {
                self.count_error("queue_timeout");
                Err(self.retry(format!("MQTT client queue full for {:?}", self.ack_timeout)))
            }
        }
    }

    async fn deliver_batch(&mut self, batch: &[Record]) -> Outcome {
        let has_alarm = batch.iter().any(Record::is_alarm);
        if !self.connected() {
            if has_alarm {
                let why = self
                    .last_error()
                    .unwrap_or_else(|| "not connected".to_string());
                return self.retry(format!("MQTT broker not connected ({why})"));
            }
            self.count_dropped("mqtt_offline_readings", batch.len() as u64);
            tracing::debug!(sink = %self.name, records = batch.len(), "broker not connected; readings skipped");
            return Outcome::Delivered;
        }

        let deadline = Instant::now() + self.ack_timeout;
        let mut notices: Vec<(usize, PublishNotice)> = Vec::new();
        let mut rejected: Vec<(usize, String)> = Vec::new();
        let mut offline_polls = 0u64;
        let mut bad_topic_polls = 0u64;
        for (i, rec) in batch.iter().enumerate() {
            match rec {
                Record::Poll(poll) => {
                    self.device_status(poll);
                    let mut lost = false;
                    let mut bad = false;
                    for s in &poll.samples {
                        let Some(v) = s
                            .value
                            .as_ref()
                            .filter(|_| s.quality == crate::model::Quality::Good)
                        else {
                            continue;
                        };
                        let topic = match self.reading_topic(&poll.device.id, s.point.name) {
                            Ok(t) => t,
                            Err(e) => {
                                if !bad {
                                    tracing::warn!(sink = %self.name, error = %e, "reading not published");
                                }
                                bad = true;
                                continue;
                            }
                        };
                        if lost || !self.readings_connected() {
                            lost = true;
                            continue;
                        }
                        if !self.publish_reading(topic, s.point, v, deadline).await {
                            lost = true;
                        }
                    }
                    offline_polls += u64::from(lost);
                    bad_topic_polls += u64::from(bad && !lost);
                }
                // An MQTT sink configured to accept `audit`: `<prefix>/audit`, QoS 1,
                // the record as JSON (docs/ACCOUNTS.md).
                Record::Audit(a) => {
                    let payload = serde_json::to_vec(&**a).unwrap_or_default();
                    let topic = self.topics.audit();
                    match self
                        .publish_tracked(deadline, topic, payload, PublishOptions::at_least_once())
                        .await
                    {
                        Ok(notice) => notices.push((i, notice)),
                        Err(out) => return out,
                    }
                }
                Record::Notification(n) => {
                    let topic = match self.topics.notify(&n.person) {
                        Ok(t) => t,
                        Err(e) => {
                            rejected.push((i, e.to_string()));
                            continue;
                        }
                    };
                    let payload = topics::notify_payload(n);
                    match self
                        .publish_tracked(deadline, topic, payload, PublishOptions::at_least_once())
                        .await
                    {
                        Ok(notice) => notices.push((i, notice)),
                        Err(out) => return out,
                    }
                }
                Record::GeneratorRun(r) => {
                    let topic = match self.topics.generator_run(&r.run.device) {
                        Ok(t) => t,
                        Err(e) => {
                            rejected.push((i, e.to_string()));
                            continue;
                        }
                    };
                    let payload = serde_json::to_vec(&**r).unwrap_or_default();
                    match self
                        .publish_tracked(deadline, topic, payload, PublishOptions::at_least_once())
                        .await
                    {
                        Ok(notice) => notices.push((i, notice)),
                        Err(out) => return out,
                    }
                }
                Record::Alarm(ev) => {
                    let active = match self.topics.active(&ev.device, &ev.rule) {
                        Ok(t) => t,
                        Err(e) => {
                            rejected.push((i, e.to_string()));
                            continue;
                        }
                    };
                    let json = match topics::event_payload(ev) {
                        Ok(j) => j,
                        Err(e) => {
                            rejected.push((i, format!("cannot encode alarm event as JSON: {e}")));
                            continue;
                        }
                    };
                    let active_payload = topics::active_payload(ev, &json);
                    let publishes = [
                        (self.topics.events(), json, PublishOptions::at_least_once()),
                        (
                            active,
                            active_payload,
                            PublishOptions::at_least_once().retained(),
                        ),
                    ];
                    for (topic, payload, opts) in publishes {
                        match self.publish_tracked(deadline, topic, payload, opts).await {
                            Ok(n) => notices.push((i, n)),
                            Err(out) => return out,
                        }
                    }
                }
            }
        }
        self.count_dropped("mqtt_offline_readings", offline_polls);
        self.count_dropped("bad_topic", bad_topic_polls);

        for (i, notice) in notices {
            match tokio::time::timeout_at(deadline, notice.wait_async()).await {
                Ok(Ok(_)) => {}
                Ok(Err(PublishNoticeError::SessionReset)) => {
                    self.count_error("session_reset");
                    return self.retry(format!(
                        "MQTT connection lost before the PUBACK of batch record {i} (session reset)"
                    ));
                }
                Ok(Err(e)) => {
                    self.count_error("publish");
                    return self.retry(format!("MQTT publish of batch record {i} failed: {e}"));
                }
                Err(_) => {
                    self.count_error("puback_timeout");
                    return self.retry(format!(
                        "no PUBACK for batch record {i} within {:?}",
                        self.ack_timeout
                    ));
                }
            }
        }
        if rejected.is_empty() {
            Outcome::Delivered
        } else {
            Outcome::Rejected { records: rejected }
        }
    }
}

impl Drop for MqttSink {
    /// Without a [`MqttHandle::shutdown`] first, the connections are cut without
    /// DISCONNECT, so the broker publishes the `offline` last will, as after a crash.
    fn drop(&mut self) {
        self.task.abort();
        self.readings_task.abort();
    }
}

impl Sink for MqttSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "mqtt"
    }

    fn connected(&self) -> bool {
        MqttSink::connected(self)
    }

    fn auth_failed(&self) -> bool {
        self.last_error().is_some_and(|e| e.starts_with("auth"))
    }

    fn deliver(&mut self, batch: &[Record]) -> impl std::future::Future<Output = Outcome> + Send {
        self.deliver_batch(batch)
    }
}

impl MqttHandle {
    /// Whether the broker connection is up.
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Sink name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Planned stop: publish the retained `offline` status (waiting up to `timeout` for
    /// its PUBACK), then disconnect both connections cleanly. Returns whether the broker confirmed
    /// `offline`. Afterwards the sink stops reconnecting, `connected()` is false and
    /// every delivery of alarms is `Retry`. Not connected at all: the connection task is
    /// simply stopped (there is no broker to tell).
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut confirmed = false;
        self.shared.stopped.store(true, Ordering::SeqCst);
        if self.connected() {
            let opts = PublishOptions::at_least_once().retained();
            if let Ok(Ok(notice)) = tokio::time::timeout_at(
                deadline,
                self.client
                    .publish_tracked(self.status_topic.clone(), OFFLINE, opts),
            )
            .await
            {
                confirmed = matches!(
                    tokio::time::timeout_at(deadline, notice.wait_async()).await,
                    Ok(Ok(_))
                );
            }
        }
        if self.connected() {
            let _ = tokio::time::timeout_at(deadline, self.client.disconnect()).await;
            // The event loop sends the DISCONNECT and then ends.
            while !self.task.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.task.abort();
        self.shared.connected.store(false, Ordering::SeqCst);
        // The readings connection has no last will: just close it cleanly.
        self.readings_shared.stopped.store(true, Ordering::SeqCst);
        if self.readings_shared.connected.load(Ordering::SeqCst) {
            let _ = tokio::time::timeout_at(deadline, self.readings.disconnect()).await;
            while !self.readings_task.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.readings_task.abort();
        self.readings_shared
            .connected
            .store(false, Ordering::SeqCst);
        tracing::info!(sink = %self.name, offline_confirmed = confirmed, "MQTT sink shut down");
        confirmed
    }
}

#[cfg(test)]
mod tests {
    //! Without a broker: a closed port, and a few-line fake broker for the faults a
    //! real one does not produce on demand (no PUBACK ever, a connection cut right
    //! after a PUBLISH). Behaviour against real Mosquitto is in `tests/it/mqtt.rs`.

    use super::*;
    use crate::model::{
        AlarmEvent, AlarmState, DeviceMeta, Kind, Level, Poll, Quality, Sample, Timestamp, Value,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    fn cfg(port: u16, ack_timeout: Duration) -> MqttConfig {
        let mut c = MqttConfig::from_url(&format!("mqtt://127.0.0.1:{port}"), "unit").unwrap();
        c.ack_timeout = ack_timeout;
        c
    }

    fn alarm(device: &str, seq: u64) -> Record {
        Record::Alarm(Arc::new(AlarmEvent {
            detail: Default::default(),
            id: format!("id-{seq}"),
            seq,
            ts: Timestamp(1_764_057_600_000),
            site: "unit".into(),
            device: device.into(),
            kind: Kind::Climate,
            room: "r".into(),
            point: "temperature_c",
            rule: "temperature_high".into(),
            level: Level::Normal,
            state: AlarmState::Raised,
            value: Some(Value::Number(30.0)),
            threshold: Some(27.0),
            message: "x".into(),
        }))
    }

    fn poll() -> Record {
        let device = Arc::new(DeviceMeta {
            id: "th1".into(),
            name: "th1".into(),
            label: None,
            room: "r".into(),
            kind: Kind::Climate,
        });
        let point = crate::points::lookup(Kind::Climate, "temperature_c").unwrap();
        Record::Poll(Arc::new(Poll {
            device,
            ts: Timestamp(1),
            comm_ok: true,
            samples: vec![Sample {
                point,
                value: Some(Value::Number(23.4)),
                quality: Quality::Good,
            }],
        }))
    }

    fn counter(
        family: &metrics::Family<metrics::Labels, metrics::Counter>,
        sink: &str,
        reason: &str,
    ) -> u64 {
        metrics::count(family, &[("sink", sink), ("reason", reason)])
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A port nothing listens on.
    async fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    }

    #[derive(Clone, Copy)]
    enum Fake {
        /// CONNACK with this return code, then swallow everything.
        Connack(u8),
        /// CONNACK, then close the connection on a PUBLISH to `<prefix>/alarms/events`.
        CutOnAlarmPublish,
    }

    /// Read one MQTT packet: (first header byte, body).
    async fn read_packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
        let h = s.read_u8().await.ok()?;
        let mut len = 0usize;
        for shift in [0, 7, 14, 21] {
            let b = s.read_u8().await.ok()?;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.ok()?;
        Some((h, body))
    }

    /// Topic of a PUBLISH body.
    fn topic_of(body: &[u8]) -> String {
        let n = body
            .len()
            .min(2 + usize::from(u16::from_be_bytes([body[0], body[1]])));
        String::from_utf8_lossy(&body[2..n]).into_owned()
    }

    /// Client id of a CONNECT body (MQTT 3.1.1: 10 bytes of variable header first).
    fn client_id_of(body: &[u8]) -> String {
        let len = body
            .get(10..12)
            .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        String::from_utf8_lossy(body.get(12..12 + len).unwrap_or(&[])).into_owned()
    }

    /// What a fake broker saw: (client id, topic) of every PUBLISH.
    type Seen = Arc<std::sync::Mutex<Vec<(String, String)>>>;

    /// A fake broker; the counter counts CONNECTs of the main connection only (the
    /// readings connection, `<id>-readings`, connects beside it).
    async fn fake_broker(mode: Fake) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let (port, connects, _) = fake_broker_seen(mode).await;
        (port, connects)
    }

    async fn fake_broker_seen(mode: Fake) -> (u16, Arc<std::sync::atomic::AtomicUsize>, Seen) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let connects = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen: Seen = Arc::default();
        let c = connects.clone();
        let seen2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let c = c.clone();
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let mut id = String::new();
                    while let Some((h, body)) = read_packet(&mut s).await {
                        if h >> 4 == 1 {
                            id = client_id_of(&body);
                            if !id.ends_with("-readings") {
                                c.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        if h >> 4 == 3 {
                            seen.lock().unwrap().push((id.clone(), topic_of(&body)));
                        }
                        match (h >> 4, mode) {
                            (1, Fake::Connack(rc)) => {
                                let _ = s.write_all(&[0x20, 0x02, 0x00, rc]).await;
                            }
                            (1, Fake::CutOnAlarmPublish) => {
                                let _ = s.write_all(&[0x20, 0x02, 0x00, 0x00]).await;
                            }
                            (3, Fake::CutOnAlarmPublish)
                                if topic_of(&body).ends_with("/alarms/events") =>
                            {
                                return;
                            }
                            (12, _) => {
                                let _ = s.write_all(&[0xd0, 0x00]).await;
                            }
                            _ => {}
                        }
                    }
                });
            }
        });
        (port, connects, seen)
    }

    #[tokio::test]
    async fn readings_and_alarms_travel_on_their_own_connections() {
        let name = "unit-mqtt-two";
        let (port, _, seen) = fake_broker_seen(Fake::Connack(0)).await;
        let mut sink =
            MqttSink::start(name, "unit".into(), &cfg(port, Duration::from_millis(300))).unwrap();
        wait_for("both connections", || {
            sink.connected() && sink.readings_connected()
        })
        .await;
        // The fake never acknowledges: the alarm is retried, but it was sent.
        let out = sink.deliver(&[poll(), alarm("th1", 1)]).await;
        assert!(matches!(out, Outcome::Retry { .. }), "{out:?}");
        wait_for("three publishes", || seen.lock().unwrap().len() >= 3).await;
        let seen = seen.lock().unwrap().clone();
        let main = "dcgw-unit".to_string();
        let readings = "dcgw-unit-readings".to_string();
        assert!(
            seen.contains(&(readings.clone(), "dcgw/unit/th1/temperature_c".into())),
            "{seen:?}"
        );
        assert!(
            seen.contains(&(main.clone(), "dcgw/unit/alarms/events".into())),
            "{seen:?}"
        );
        assert!(
            seen.contains(&(main, "dcgw/unit/alarms/active/th1/temperature_high".into())),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .all(|(id, t)| id != &readings || !t.contains("/alarms/")),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn unreachable_broker_retries_alarms_at_once_and_skips_readings() {
        let name = "unit-mqtt-down";
        let port = closed_port().await;
        let mut sink =
            MqttSink::start(name, "unit".into(), &cfg(port, Duration::from_secs(30))).unwrap();
        let m = metrics::get();
        wait_for("a counted connect error", || {
            counter(&m.sink_errors, name, "connect") >= 1
        })
        .await;
        assert!(!sink.connected());
        assert!(
            sink.last_error().unwrap().starts_with("connect:"),
            "{:?}",
            sink.last_error()
        );

        let t = Instant::now();
        let out = sink.deliver(&[poll(), alarm("th1", 1)]).await;
        assert!(
            matches!(&out, Outcome::Retry { reason, .. } if reason.contains("not connected")),
            "{out:?}"
        );
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "took {:?}",
            t.elapsed()
        );

        let before = counter(&m.sink_dropped, name, "mqtt_offline_readings");
        let out = sink.deliver(&[poll(), poll()]).await;
        assert_eq!(out, Outcome::Delivered);
        assert_eq!(
            counter(&m.sink_dropped, name, "mqtt_offline_readings"),
            before + 2
        );
    }

    #[tokio::test]
    async fn refused_credentials_count_as_auth_and_keep_retrying() {
        let name = "unit-mqtt-auth";
        let (port, connects) = fake_broker(Fake::Connack(5)).await;
        let sink =
            MqttSink::start(name, "unit".into(), &cfg(port, Duration::from_secs(1))).unwrap();
        let m = metrics::get();
        wait_for("two refused attempts", || {
            counter(&m.sink_errors, name, "auth") >= 2
        })
        .await;
        assert!(
            connects.load(Ordering::SeqCst) >= 2,
            "the sink gave up after a refusal"
        );
        assert!(!sink.connected());
        let err = sink.last_error().unwrap();
        assert!(
            err.starts_with("auth:") && err.contains("not authorised"),
            "{err}"
        );
        assert_eq!(counter(&m.sink_errors, name, "connect"), 0);
    }

    #[tokio::test]
    async fn alarm_without_puback_is_retried_after_ack_timeout() {
        let name = "unit-mqtt-noack";
        let (port, _) = fake_broker(Fake::Connack(0)).await;
        let ack = Duration::from_millis(400);
        let mut sink = MqttSink::start(name, "unit".into(), &cfg(port, ack)).unwrap();
        wait_for("connected", || sink.connected()).await;

        let t = Instant::now();
        let out = sink.deliver(&[alarm("th1", 1)]).await;
        let took = t.elapsed();
        assert!(
            matches!(&out, Outcome::Retry { reason, .. } if reason.contains("PUBACK")),
            "{out:?}"
        );
        assert!(
            took >= ack && took < ack + Duration::from_secs(2),
            "took {took:?}"
        );
        assert!(counter(&metrics::get().sink_errors, name, "puback_timeout") >= 1);

        // An alarm whose device id cannot be a topic level is refused for good,
        // and readings handed to a connected client count as delivered.
        let out = sink.deliver(&[poll(), alarm("bad/id", 2)]).await;
        assert!(
            matches!(&out, Outcome::Rejected { records } if records.len() == 1 && records[0].0 == 1),
            "{out:?}"
        );
        assert_eq!(sink.deliver(&[poll()]).await, Outcome::Delivered);
    }

    #[tokio::test]
    async fn connection_lost_before_puback_is_a_prompt_retry() {
        let name = "unit-mqtt-cut";
        let (port, connects) = fake_broker(Fake::CutOnAlarmPublish).await;
        let ack = Duration::from_secs(8);
        let mut sink = MqttSink::start(name, "unit".into(), &cfg(port, ack)).unwrap();
        wait_for("connected", || sink.connected()).await;

        let t = Instant::now();
        let out = sink.deliver(&[alarm("th1", 1)]).await;
        assert!(
            connects.load(Ordering::SeqCst) >= 2,
            "the notice failed before a reconnect"
        );
        assert!(
            matches!(&out, Outcome::Retry { reason, .. } if reason.contains("session reset")),
            "{out:?}"
        );
        assert!(
            t.elapsed() < ack,
            "waited for the ack timeout instead of failing on the reset"
        );
        assert!(counter(&metrics::get().sink_errors, name, "session_reset") >= 1);
    }

    #[tokio::test]
    async fn unusable_settings_fail_at_start_naming_the_cause() {
        let mut c = cfg(1883, Duration::from_secs(1));
        c.prefix = "dcgw/#".into();
        let e = MqttSink::start("unit-mqtt-bad", "unit".into(), &c)
            .err()
            .unwrap();
        assert!(e.to_string().contains("dcgw/#"), "{e}");

        let mut c = cfg(1883, Duration::from_secs(1));
        c.tls = true;
        c.ca_file = Some("/nonexistent/ca.pem".into());
        let e = MqttSink::start("unit-mqtt-bad", "unit".into(), &c)
            .err()
            .unwrap();
        assert!(
            matches!(e, Error::CaFile { .. }) && e.to_string().contains("/nonexistent/ca.pem"),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        c.ca_file = Some(empty);
        let e = MqttSink::start("unit-mqtt-bad", "unit".into(), &c)
            .err()
            .unwrap();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");

        let mut c = cfg(1883, Duration::from_secs(1));
        c.password = Some("secret".into());
        let e = MqttSink::start("unit-mqtt-bad", "unit".into(), &c)
            .err()
            .unwrap();
        assert!(matches!(e, Error::PasswordWithoutUser { .. }), "{e}");
    }
}
