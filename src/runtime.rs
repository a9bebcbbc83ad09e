//! Wiring: sources → rules → sinks and the live state, with shutdown.
//!
//! One hub task owns the rules engine and the live picture; sources send it one
//! [`Poll`] per device per interval over a bounded channel; the hub derives values
//! (dew point), runs the rules, updates the live state, and queues records for each
//! sink. The hub never waits on the network: sink queues take records without
//! blocking, and each sink drains its own queue in its own task. A slow or dead device
//! only slows its own poller task.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::config::{Connection, DeviceConfig, Site};
use crate::model::{Kind, Poll, Quality, Timestamp};
use crate::points;
use crate::rules::{self, Engine};
use crate::sinks::influx::InfluxSink;
use crate::sinks::mqtt::MqttSink;
use crate::sinks::worker::{self, QueueConfig, SinkQueue};
use crate::sinks::Record;
use crate::sources::modbus;
use crate::state::{DeviceState, Live, PointState, RoomInfo, Shared, Update};

/// A running gateway: its shared state and the address the web server listens on.
pub struct Running {
    /// Live state (what the page and API show).
    pub shared: Shared,
    /// Where the web server listens.
    pub web_addr: std::net::SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    mqtt: Option<crate::sinks::mqtt::MqttHandle>,
}

impl Running {
    /// Orderly stop: publish the retained `offline` status (confirmed by the broker, at
    /// most `timeout`), then stop every task. A crash or SIGKILL leaves that to the
    /// broker's last will instead.
    pub async fn shutdown(&self, timeout: Duration) {
        if let Some(m) = &self.mqtt
            && !m.shutdown(timeout).await
        {
            tracing::warn!("MQTT broker did not confirm the offline status before shutdown");
        }
        self.abort();
    }

    /// Stop every task.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.abort();
    }
}

/// The Modbus TCP poller settings of a configured device.
pub fn tcp_device(d: &DeviceConfig) -> modbus::TcpDevice {
    let Connection::ModbusTcp { host, port, unit_id } = &d.connection;
    modbus::TcpDevice {
        meta: d.meta.clone(),
        addr: format!("{host}:{port}"),
        unit_id: *unit_id,
        poll_interval: d.poll_interval,
        timeout: d.timeout,
        profile: d.profile.clone(),
    }
}

/// Build the initial live picture from the site.
fn initial_live(site: &Site) -> Live {
    Live {
        site: site.name.to_string(),
        title: site.title.clone(),
        language: match site.language {
            crate::model::Language::Vi => "vi".into(),
            crate::model::Language::En => "en".into(),
        },
        rooms: site
            .rooms
            .iter()
            .map(|r| RoomInfo { id: r.id.clone(), name: r.name.clone() })
            .collect(),
        devices: site
            .devices
            .iter()
            .map(|d| {
                let mut pts: Vec<PointState> = d
                    .profile
                    .points
                    .iter()
                    .map(|p| PointState { point: p.point, value: None, quality: Quality::Stale, ts: None })
                    .collect();
                if d.meta.kind == Kind::Climate
                    && !pts.iter().any(|p| p.point.name == "dew_point_c")
                    && let Some(dp) = points::lookup(Kind::Climate, "dew_point_c")
                {
                    pts.push(PointState { point: dp, value: None, quality: Quality::Stale, ts: None });
                }
                DeviceState {
                    meta: d.meta.clone(),
                    location: d.location.clone(),
                    comm_ok: false,
                    last_poll: None,
                    points: pts,
                }
            })
            .collect(),
        alarms: Vec::new(),
        sinks: Vec::new(),
        last_progress: None,
    }
}

/// Start the gateway for `site`: web server, sinks, pollers and the hub.
pub async fn start(site: Site) -> anyhow::Result<Running> {
    let shared = Shared::new(initial_live(&site));
    let mut tasks = Vec::new();

    // Web first, so a port conflict is reported before anything else starts.
    let listener = tokio::net::TcpListener::bind(site.web_listen)
        .await
        .with_context(|| format!("cannot listen on {} (web.listen)", site.web_listen))?;
    let web_addr = listener.local_addr()?;
    {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = crate::web::serve(listener, shared).await {
                tracing::error!(error = %e, "web server stopped");
            }
        }));
    }

    // Sinks.
    let mut queues: Vec<SinkQueue> = Vec::new();
    let mut mqtt = None;
    if let Some(cfg) = &site.mqtt {
        let sink = MqttSink::start("mqtt", site.name.clone(), cfg)
            .with_context(|| format!("MQTT sink {}:{}", cfg.host, cfg.port))?;
        mqtt = Some(sink.handle());
        let (q, h) = worker::spawn(
            sink,
            QueueConfig { batch_max: 200, linger: Duration::ZERO, max_records: cfg.max_queued, ..Default::default() },
        );
        queues.push(q);
        tasks.push(h);
    }
    if let Some(cfg) = &site.influx {
        let sink = InfluxSink::new("influx", site.name.clone(), cfg)
            .with_context(|| format!("InfluxDB sink {}", cfg.base_url))?;
        let (q, h) = worker::spawn(
            sink,
            QueueConfig {
                batch_max: cfg.batch_max,
                linger: cfg.flush_interval,
                max_records: cfg.max_queued,
                ..Default::default()
            },
        );
        queues.push(q);
        tasks.push(h);
    }

    // Sources.
    let (tx, rx) = mpsc::channel::<Poll>(1024);
    for d in &site.devices {
        tasks.push(modbus::spawn(tcp_device(d), tx.clone()));
    }
    drop(tx);

    // Rules. Sequence numbers must grow across restarts; until the journal keeps the
    // last one, start from the clock (ms × 1000), which does so as long as the clock
    // does not go back and fewer than 1000 events are raised per millisecond.
    let mut engine = Engine::new(site.name.clone(), site.language, (Timestamp::now().millis().max(0) as u64) * 1000);
    for d in &site.devices {
        engine.add_device(d.meta.clone(), d.poll_interval, d.rules.clone());
    }
    let intervals: Vec<Duration> = site.devices.iter().map(|d| d.poll_interval).collect();
    tasks.push(tokio::spawn(hub(rx, engine, shared.clone(), queues, intervals)));

    Ok(Running { shared, web_addr, tasks, mqtt })
}

async fn hub(
    mut rx: mpsc::Receiver<Poll>,
    mut engine: Engine,
    shared: Shared,
    queues: Vec<SinkQueue>,
    intervals: Vec<Duration>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Device index by id, for routing polls to the live state.
    let index: std::collections::HashMap<Arc<str>, usize> = shared
        .read()
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.meta.id.clone(), i))
        .collect();
    loop {
        tokio::select! {
            maybe = rx.recv() => {
                let Some(mut poll) = maybe else { break };
                rules::derive(&mut poll);
                let events = engine.on_poll(&poll);
                let i = index.get(&poll.device.id).copied();
                if let Some(i) = i {
                    let mut live = shared.write();
                    apply_poll(&mut live.devices[i], &poll);
                    live.last_progress = Some(poll.ts);
                }
                let poll = Arc::new(poll);
                for q in &queues {
                    q.push(Record::Poll(poll.clone()));
                }
                if let Some(i) = i {
                    let _ = shared.updates.send(Update::Device(i));
                }
                publish_events(events, &engine, &shared, &queues);
            }
            _ = tick.tick() => {
                let now = Timestamp::now();
                let events = engine.tick(now);
                let mut changed = Vec::new();
                {
                    let mut live = shared.write();
                    for (i, d) in live.devices.iter_mut().enumerate() {
                        let limit = intervals.get(i).copied().unwrap_or(Duration::from_secs(5)) * 3;
                        let mut any = false;
                        for p in d.points.iter_mut() {
                            let old = p.ts.map(|ts| now.secs_since(ts) > limit.as_secs_f64()).unwrap_or(false);
                            if old && p.quality == Quality::Good {
                                p.quality = Quality::Stale;
                                any = true;
                            }
                        }
                        if any {
                            changed.push(i);
                        }
                    }
                    live.sinks = queues.iter().map(|q| q.status(now)).collect();
                }
                for i in changed {
                    let _ = shared.updates.send(Update::Device(i));
                }
                publish_events(events, &engine, &shared, &queues);
            }
        }
    }
}

fn publish_events(events: Vec<crate::model::AlarmEvent>, engine: &Engine, shared: &Shared, queues: &[SinkQueue]) {
    if events.is_empty() {
        return;
    }
    shared.write().alarms = engine.active();
    let m = crate::metrics::get();
    for ev in events {
        m.alarm_events
            .get_or_create(&crate::metrics::labels(&[("level", ev.level.as_str()), ("state", ev.state.as_str())]))
            .inc();
        tracing::warn!(device = %ev.device, rule = %ev.rule, level = ev.level.as_str(), state = ev.state.as_str(), seq = ev.seq, "{}", ev.message);
        let ev = Arc::new(ev);
        for q in queues {
            q.push(Record::Alarm(ev.clone()));
        }
    }
    let _ = shared.updates.send(Update::Alarms);
}

/// Fold one poll into a device's live state: good samples replace the value; bad ones
/// keep the last good value and set the quality.
fn apply_poll(d: &mut DeviceState, poll: &Poll) {
    d.comm_ok = poll.comm_ok;
    d.last_poll = Some(poll.ts);
    for s in &poll.samples {
        if let Some(p) = d.points.iter_mut().find(|p| std::ptr::eq(p.point, s.point)) {
            p.quality = s.quality;
            if s.quality == Quality::Good {
                p.value = s.value.clone();
                p.ts = Some(poll.ts);
            }
        }
    }
}
