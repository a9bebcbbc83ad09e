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

use crate::buffer::{self, Buffer};
use crate::config::{Connection, DeviceConfig, Site};
use crate::model::{Kind, Poll, Quality, Timestamp};
use crate::points;
use crate::rules::{self, Engine};
use crate::sinks::Record;
use crate::sinks::influx::InfluxSink;
use crate::sinks::mqtt::MqttSink;
use crate::sinks::worker::{self, QueueConfig, SinkQueue};
use crate::sources::{modbus, snmp};
use crate::state::{DeviceState, Live, PointState, RoomInfo, Shared, Update};

/// A running gateway: its shared state and the address the web server listens on.
pub struct Running {
    /// Live state (what the page and API show).
    pub shared: Shared,
    /// Where the web server listens.
    pub web_addr: std::net::SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    mqtt: Option<crate::sinks::mqtt::MqttHandle>,
    /// The sink buffers; committed (pending readings included) on shutdown.
    buffer: Option<Buffer>,
    /// The SNMP trap receiver, if configured; dropping it stops it.
    _traps: Option<snmp::TrapReceiver>,
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
        if let Some(b) = &self.buffer
            && let Err(e) = b.flush_async().await
        {
            tracing::error!(error = %e, "could not commit the buffered readings on shutdown");
        }
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

/// The Modbus TCP poller settings of a configured device (`None` unless it is a
/// Modbus TCP device).
pub fn tcp_device(d: &DeviceConfig) -> Option<modbus::TcpDevice> {
    let Connection::ModbusTcp { host, port, .. } = &d.connection else {
        return None;
    };
    let b = bus_device(d)?;
    Some(modbus::TcpDevice {
        meta: b.meta,
        addr: format!("{host}:{port}"),
        unit_id: b.unit_id,
        poll_interval: b.poll_interval,
        timeout: b.timeout,
        profile: b.profile,
    })
}

/// A configured Modbus device as a member of its line (`None` for other protocols).
pub fn bus_device(d: &DeviceConfig) -> Option<modbus::BusDevice> {
    let (Connection::ModbusTcp { unit_id, .. } | Connection::ModbusRtu { unit_id, .. }) =
        &d.connection
    else {
        return None;
    };
    Some(modbus::BusDevice {
        meta: d.meta.clone(),
        unit_id: *unit_id,
        poll_interval: d.poll_interval,
        timeout: d.timeout,
        profile: d.profile.modbus()?.clone(),
    })
}

/// The SNMP poller settings of a configured device (`None` unless it is an SNMP agent).
pub fn snmp_agent(d: &DeviceConfig) -> Option<snmp::SnmpAgent> {
    let Connection::Snmp(conn) = &d.connection else {
        return None;
    };
    Some(snmp::SnmpAgent::new(
        d.meta.clone(),
        conn,
        d.poll_interval,
        d.timeout,
        d.profile.snmp()?.clone(),
    ))
}

/// The Modbus lines of a site, each polled by one task: one per TCP endpoint
/// (`host:port`; the unit ids behind a Modbus TCP gateway share its connection) and
/// one per RS-485 bus with devices. Devices keep their config order on a line.
pub fn modbus_lines(site: &Site) -> (Vec<modbus::TcpLine>, Vec<modbus::RtuBus>) {
    let mut tcp: Vec<modbus::TcpLine> = Vec::new();
    let mut rtu: Vec<modbus::RtuBus> = Vec::new();
    for d in &site.devices {
        let Some(dev) = bus_device(d) else { continue };
        match &d.connection {
            Connection::ModbusTcp { host, port, .. } => {
                let addr = format!("{host}:{port}");
                match tcp.iter_mut().find(|l| l.addr == addr) {
                    Some(l) => l.devices.push(dev),
                    None => tcp.push(modbus::TcpLine {
                        addr,
                        devices: vec![dev],
                    }),
                }
            }
            Connection::ModbusRtu { bus, .. } => match rtu.iter_mut().find(|b| b.id == *bus) {
                Some(b) => b.devices.push(dev),
                None => {
                    if let Some(cfg) = site.buses.iter().find(|b| b.id == *bus) {
                        rtu.push(modbus::RtuBus {
                            id: cfg.id.clone(),
                            serial: cfg.serial.clone(),
                            devices: vec![dev],
                        });
                    }
                }
            },
            Connection::Snmp(_) => {}
        }
    }
    (tcp, rtu)
}

/// Read one configured device once (`dc-gateway probe`): over Modbus TCP, its RS-485
/// bus, or SNMP. Returns the printable report.
pub async fn probe(site: &Site, d: &DeviceConfig) -> anyhow::Result<String> {
    if let Some(agent) = snmp_agent(d) {
        return Ok(snmp::probe(&agent).await?.to_string());
    }
    if let Some(dev) = tcp_device(d) {
        return Ok(modbus::probe(&dev).await?.to_string());
    }
    let dev = bus_device(d)
        .with_context(|| format!("device {} has no Modbus or SNMP connection", d.meta.id))?;
    let (_, buses) = modbus_lines(site);
    match buses
        .into_iter()
        .find(|b| b.devices.iter().any(|x| x.meta.id == d.meta.id))
    {
        Some(bus) => Ok(modbus::probe_rtu(&bus, &dev).await?.to_string()),
        None => anyhow::bail!("device {} is on no configured bus", d.meta.id),
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
            .map(|r| RoomInfo {
                id: r.id.clone(),
                name: r.name.clone(),
            })
            .collect(),
        devices: site
            .devices
            .iter()
            .map(|d| {
                let mut pts: Vec<PointState> = d
                    .profile
                    .points()
                    .into_iter()
                    .map(|point| PointState {
                        point,
                        value: None,
                        quality: Quality::Stale,
                        ts: None,
                    })
                    .collect();
                if d.meta.kind == Kind::Climate
                    && !pts.iter().any(|p| p.point.name == "dew_point_c")
                    && let Some(dp) = points::lookup(Kind::Climate, "dew_point_c")
                {
                    pts.push(PointState {
                        point: dp,
                        value: None,
                        quality: Quality::Stale,
                        ts: None,
                    });
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

    // Alarm sequence numbers grow across restarts and clock steps: the state directory
    // keeps a reservation above every seq handed out (src/seq.rs).
    let clock_floor = (Timestamp::now().millis().max(0) as u64) * 1000;
    let (seqs, first_seq) = crate::seq::SeqStore::open(&site.storage.state_dir, clock_floor)
        .map_err(|e| anyhow::anyhow!(e))?;

    // Sinks, each behind its durable queue in the buffer (reopened after a restart).
    let storage = &site.storage;
    let buffer = Buffer::open(
        &storage.state_dir,
        buffer::Options {
            commit_interval: storage.commit_interval,
            ..Default::default()
        },
    )
    .with_context(|| {
        format!(
            "cannot open the sink buffer in {} (storage.state_dir)",
            storage.state_dir.display()
        )
    })?;
    let gateway = SelfMonitor::new(&site);
    buffer.registry().add(
        site.devices
            .iter()
            .map(|d| d.meta.clone())
            .chain([gateway.device.clone()]),
    );
    let mut queues: Vec<SinkQueue> = Vec::new();
    let mut mqtt = None;
    if let Some(cfg) = &site.mqtt {
        let sink = MqttSink::start("mqtt", site.name.clone(), cfg)
            .with_context(|| format!("MQTT sink {}:{}", cfg.host, cfg.port))?;
        mqtt = Some(sink.handle());
        // Readings on MQTT are retained current state: not replayed, kept in a ring.
        // Alarm events are durable and delivered in order.
        let (q, h) = worker::spawn_on(
            &buffer,
            sink,
            QueueConfig {
                batch_max: 200,
                linger: Duration::ZERO,
                max_records: cfg.max_queued,
                max_bytes: storage.max_bytes("mqtt"),
                replay_readings: false,
                // Readings are retained current state: a quarter second's worth goes
                // out in one delivery (4 socket writes a second instead of one per
                // poll: docs/BENCHMARKS.md). Alarm events do not wait.
                ring_linger: Duration::from_millis(250),
                live_first: false,
                ..Default::default()
            },
        )
        .context("cannot open the MQTT sink's buffer queue")?;
        queues.push(q);
        tasks.push(h);
    }
    if let Some(cfg) = &site.influx {
        let sink = InfluxSink::new("influx", site.name.clone(), cfg)
            .with_context(|| format!("InfluxDB sink {}", cfg.base_url))?;
        let (q, h) = worker::spawn_on(
            &buffer,
            sink,
            QueueConfig {
                batch_max: cfg.batch_max,
                linger: cfg.flush_interval,
                max_records: cfg.max_queued,
                max_bytes: storage.max_bytes("influx"),
                ..Default::default()
            },
        )
        .context("cannot open the InfluxDB sink's buffer queue")?;
        queues.push(q);
        tasks.push(h);
    }

    // Sources.
    let (tx, rx) = mpsc::channel::<Poll>(1024);
    // Source tasks (Modbus lines and buses, SNMP agents) start at up to 4 offsets within
    // the shortest poll interval, so the site is not read in one burst (sources::stagger).
    let (tcp_lines, rtu_buses) = modbus_lines(&site);
    let n_agents = site.devices.iter().filter_map(snmp_agent).count();
    let n_sources = tcp_lines.len() + rtu_buses.len() + n_agents;
    let shortest = site
        .devices
        .iter()
        .map(|d| d.poll_interval)
        .min()
        .unwrap_or(crate::sources::STAGGER_MAX);
    let mut offsets = (0..n_sources).map(|i| crate::sources::stagger(i, n_sources, shortest));
    for line in tcp_lines {
        let at = offsets.next().unwrap_or_default();
        tasks.push(modbus::spawn_tcp_at(line, at, tx.clone()));
    }
    for bus in rtu_buses {
        let at = offsets.next().unwrap_or_default();
        tasks.push(modbus::spawn_rtu_at(bus, at, tx.clone()));
    }
    // SNMP: one task per agent; a trap from an agent triggers a confirming poll of it.
    let mut trap_agents = Vec::new();
    for d in &site.devices {
        let Some(agent) = snmp_agent(d) else { continue };
        let engine_id = match &d.connection {
            Connection::Snmp(c) => c.engine_id.clone(),
            _ => None,
        };
        let at = offsets.next().unwrap_or_default();
        let task = snmp::spawn_at(agent.clone(), at, tx.clone());
        if let Some(t) = snmp::TrapAgent::for_agent(&agent, engine_id, Some(task.trigger.clone())) {
            trap_agents.push(t);
        }
        tasks.push(task.handle);
    }
    let mut trap_receiver = None;
    if let Some(cfg) = &site.snmp_traps {
        snmp::init_state_dir(Some(&site.storage.state_dir));
        let listen = cfg.listen;
        let receiver = snmp::spawn_traps(cfg.clone(), trap_agents, tx.clone())
            .await
            .with_context(|| {
                format!("cannot receive SNMP traps on {listen} (snmp_traps.listen)")
            })?;
        trap_receiver = Some(receiver);
    }
    drop(tx);

    // Rules.
    let mut engine = Engine::new(site.name.clone(), site.language, first_seq);
    for d in &site.devices {
        engine.add_device(d.meta.clone(), d.poll_interval, d.rules.clone());
    }
    engine.add_device(
        gateway.device.clone(),
        Duration::from_secs(1),
        rules::defaults(Kind::Gateway),
    );
    let intervals: Vec<Duration> = site.devices.iter().map(|d| d.poll_interval).collect();
    tasks.push(tokio::spawn(hub(
        rx,
        engine,
        shared.clone(),
        queues,
        intervals,
        gateway,
        seqs,
    )));

    Ok(Running {
        shared,
        web_addr,
        tasks,
        mqtt,
        buffer: Some(buffer),
        _traps: trap_receiver,
    })
}

/// The gateway's own readings (`gateway` kind): `buffer_used_pct` (the fullest sink
/// queue, percent of its disk budget) and `uptime_s`. The hub evaluates them every
/// second, so `buffer_high` is raised within a second of crossing 80 %, and queues
/// them for the sinks every [`SelfMonitor::EVERY`] ticks.
struct SelfMonitor {
    device: crate::model::Device,
    started: std::time::Instant,
    ticks: u64,
}

impl SelfMonitor {
    /// Ticks between two gateway readings sent to the sinks.
    const EVERY: u64 = 10;

    fn new(site: &Site) -> SelfMonitor {
        let taken = |id: &str| site.devices.iter().any(|d| d.meta.id.as_ref() == id);
        let id = if taken("gateway") {
            "gateway-self"
        } else {
            "gateway"
        };
        SelfMonitor {
            device: Arc::new(crate::model::DeviceMeta {
                id: Arc::from(id),
                name: "dc-gateway".into(),
                label: None,
                room: Arc::from("gateway"),
                kind: Kind::Gateway,
            }),
            started: std::time::Instant::now(),
            ticks: 0,
        }
    }

    /// This second's reading, and whether it goes to the sinks.
    fn poll(&mut self, now: Timestamp, queues: &[SinkQueue]) -> (Poll, bool) {
        let used = queues.iter().map(SinkQueue::used_pct).fold(0.0, f64::max);
        let sample = |name: &str, v: f64| {
            points::lookup(Kind::Gateway, name).map(|point| crate::model::Sample {
                point,
                value: Some(crate::model::Value::Number(v)),
                quality: Quality::Good,
            })
        };
        let failing = queues.iter().map(|q| q.failing_s(now)).fold(0.0, f64::max);
        let auth_failed = queues.iter().any(SinkQueue::auth_failed);
        let samples = [
            sample("buffer_used_pct", (used * 10.0).round() / 10.0),
            sample("uptime_s", self.started.elapsed().as_secs() as f64),
            sample("sink_failing_s", failing.round()),
            points::lookup(Kind::Gateway, "sink_auth_failed").map(|point| crate::model::Sample {
                point,
                value: Some(crate::model::Value::Bool(auth_failed)),
                quality: Quality::Good,
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.ticks += 1;
        let send = self.ticks % Self::EVERY == 1;
        (
            Poll {
                device: self.device.clone(),
                ts: now,
                comm_ok: true,
                samples,
            },
            send,
        )
    }
}

async fn hub(
    mut rx: mpsc::Receiver<Poll>,
    mut engine: Engine,
    shared: Shared,
    queues: Vec<SinkQueue>,
    intervals: Vec<Duration>,
    mut gateway: SelfMonitor,
    mut seqs: crate::seq::SeqStore,
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
    let mut service = crate::service::Service::from_env(intervals.len());
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
                service.polled(i, &shared);
                publish_events(events, &engine, &mut seqs, &shared, &queues);
            }
            _ = tick.tick() => {
                let now = Timestamp::now();
                let (own, send) = gateway.poll(now, &queues);
                let mut events = engine.on_poll(&own);
                if send {
                    let own = Arc::new(own);
                    for q in &queues {
                        q.push(Record::Poll(own.clone()));
                    }
                }
                events.extend(engine.tick(now));
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
                publish_events(events, &engine, &mut seqs, &shared, &queues);
                service.tick(&shared).await;
            }
        }
    }
}

fn publish_events(
    events: Vec<crate::model::AlarmEvent>,
    engine: &Engine,
    seqs: &mut crate::seq::SeqStore,
    shared: &Shared,
    queues: &[SinkQueue],
) {
    if events.is_empty() {
        return;
    }
    // On disk before any of these events can leave (src/seq.rs).
    seqs.cover(engine.next_seq());
    shared.write().alarms = engine.active();
    let m = crate::metrics::get();
    for ev in events {
        m.alarm_events
            .get_or_create(&crate::metrics::labels(&[
                ("level", ev.level.as_str()),
                ("state", ev.state.as_str()),
            ]))
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
