//! Wiring: sources → hub (rules, live state) → sinks, with shutdown.
//!
//! [`start`] wires a gateway in three visible steps and relies on no global init
//! order:
//! 1. **create**: the web listener (a port conflict is reported before anything
//!    else starts), the alarm sequence reservation, the durable buffer (queues on disk
//!    under the first release's sink names carried over to their sinks' names), the
//!    rules engine with every device, and the sources' plan;
//! 2. **connect**: every sink behind its queue, the sources' tasks on the poll
//!    channel;
//! 3. **run**: the hub ([`hub`]) and the web server.
//!
//! The hub owns the rules engine and the live picture; sources send it one [`Poll`]
//! per device per interval over a bounded channel; it derives values (dew point), runs
//! the rules, updates the live state, and puts each record into the queue of every sink
//! whose route takes it. The hub never waits on the network: queues take records
//! without blocking, and each sink drains its own queue in its own task. A slow or dead
//! device only slows its own poller task.

mod hub;
mod paging;
pub mod reload;
mod restore;
mod selfmon;
pub mod standby;

use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::buffer::{self, Buffer};
use crate::commands::Commands;
use crate::config::{DeviceConfig, Site};
use crate::model::{Kind, Poll, Quality, Timestamp};
use crate::points;
use crate::rules::Engine;
use crate::sinks;
use crate::sources::{self, Sources};
use crate::state::{DeviceState, Live, PointState, RoomInfo, Shared};
use selfmon::SelfMonitor;

/// A running gateway: its shared state and the address the web server listens on.
pub struct Running {
    /// Live state (what the page and API show).
    pub shared: Shared,
    /// Where the web server listens.
    pub web_addr: std::net::SocketAddr,
    /// The way into the hub for commands from people.
    pub commands: Commands,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    mqtt: Vec<crate::sinks::mqtt::MqttHandle>,
    /// The sink buffers; committed (pending readings included) on shutdown.
    buffer: Option<Buffer>,
    /// The journal (the orderly stop is written to it).
    journal: crate::journal::Journal,
    /// This gateway's name.
    gateway: std::sync::Arc<str>,
    /// The sources' tasks and what must live as long as they do (the trap receiver).
    _sources: sources::Started,
    /// Sirens and beacons: set to their stop state on an orderly stop.
    outputs: crate::outputs::Handle,
}

impl Running {
    /// Orderly stop: publish the retained `offline` status on every MQTT sink
    /// (confirmed by the broker, at most `timeout`), then stop every task. A crash or
    /// SIGKILL leaves that to the broker's last will instead.
    pub async fn shutdown(&self, timeout: Duration) {
        // Sirens and beacons to their `on_stop` state while the task still runs.
        self.outputs.stop(timeout).await;
        for m in &self.mqtt {
            if !m.shutdown(timeout).await {
                tracing::warn!("MQTT broker did not confirm the offline status before shutdown");
            }
        }
        self.abort();
        let stop = crate::journal::NewEntry {
            ts: Timestamp::now(),
            kind: crate::journal::Kind::GatewayStop,
            gateway: self.gateway.clone(),
            device: None,
            data: serde_json::json!({"orderly": true}),
        };
        if let Err(e) = self.journal.append(stop) {
            tracing::error!(error = %e, "cannot write the gateway's stop to the journal");
        }
        if let Some(b) = &self.buffer
            && let Err(e) = b.flush_async().await
        {
            tracing::error!(error = %e, "could not commit the buffered readings on shutdown");
        }
    }

    /// Stop every task and wait until each is gone, then commit what the buffer holds:
    /// the queues, the journal and the alarm state are on disk for the next
    /// [`start_with`] (a config reload). No `offline` status is published.
    pub async fn stop_for_reload(mut self) {
        self.abort();
        let tasks: Vec<_> = std::mem::take(&mut self.tasks)
            .into_iter()
            .chain(std::mem::take(&mut self._sources.tasks))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        for m in std::mem::take(&mut self.mqtt) {
            drop(m);
        }
        if let Some(b) = self.buffer.take()
            && let Err(e) = b.flush_async().await
        {
            tracing::error!(error = %e, "could not commit the buffered records before the reload");
        }
        // The trap receiver and the tasks the aborted ones spawned are dropped by the
        // scheduler shortly after: give their sockets time to close before the next
        // start binds the same ports.
        drop(self);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// Stop every task.
    pub fn abort(&self) {
        for t in self.tasks.iter().chain(&self._sources.tasks) {
            t.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Read one configured device once (`dc-gateway probe`). Returns the printable report.
pub async fn probe(site: &Site, d: &DeviceConfig) -> anyhow::Result<String> {
    Ok(sources::probe(site, d).await?)
}

/// Build the initial live picture from the site.
fn initial_live(site: &Site) -> Live {
    Live {
        maintenance: Vec::new(),
        pending: Vec::new(),
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
        degraded: Vec::new(),
    }
}

/// Whether `dir` can hold the gateway's state: created if missing, and a file in it
/// written, fsynced and removed.
fn state_dir_usable(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(".write-check");
    crate::durable::replace_file(&probe, b"ok\n")?;
    std::fs::remove_file(&probe)
}

/// Start the gateway for `site`: create, connect, run (see the module docs).
pub async fn start(site: Site) -> anyhow::Result<Running> {
    start_with(site, None).await
}

/// [`start`], taking config reloads from the local socket to `reload` and journaling
/// who loaded this config (src/runtime/reload.rs).
pub async fn start_with(mut site: Site, reload: Option<reload::Hook>) -> anyhow::Result<Running> {
    for w in &site.warnings {
        tracing::warn!("{w}");
    }
    // Monitoring never stops for the board's storage: a state directory that cannot be
    // created or written (read-only, missing mount, a file in the way) gives a degraded
    // start with the state in a volatile directory, a serious gateway alarm and a 503
    // on /healthz — polling, rules, the page and the sinks go on.
    let state_problem = state_dir_usable(&site.storage.state_dir).err().map(|e| {
        let volatile = std::env::temp_dir().join(format!("dc-gateway-volatile-{}", std::process::id()));
        let why = format!(
            "state directory {} cannot be used ({e}); state kept in {} until it can: queued records, the journal and alarm numbers will not survive a restart",
            site.storage.state_dir.display(),
            volatile.display()
        );
        tracing::error!("{why}");
        site.storage.state_dir = volatile;
        why
    });

    // 1. Create.
    let listener = tokio::net::TcpListener::bind(site.web_listen)
        .await
        .with_context(|| format!("cannot listen on {} (web.listen)", site.web_listen))?;
    let web_addr = listener.local_addr()?;
    // Alarm sequence numbers grow across restarts and clock steps: the state directory
    // keeps a reservation above every seq handed out (src/seq.rs).
    let clock_floor = (Timestamp::now().millis().max(0) as u64) * 1000;
    let (seqs, first_seq) = crate::seq::SeqStore::open(&site.storage.state_dir, clock_floor)?;
    // Alarm instance numbers (`no`, read by people): short, kept across restarts.
    let (nos, first_no) =
        crate::seq::SeqStore::open_file(&site.storage.state_dir, crate::seq::NO_FILE, 1, 1)?;
    let storage = &site.storage;
    let renames = sinks::registry::legacy_queue_renames(&site.sinks);
    for (old, new) in
        buffer::carry_over_queues(&storage.state_dir, &renames).with_context(|| {
            format!(
                "cannot carry over the sink queues in {}",
                storage.state_dir.display()
            )
        })?
    {
        tracing::warn!(from = %old, to = %new, "queue of the first release's sink {old:?} carried over to sink {new:?}");
    }
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
    // The journal: alarm state after a restart, commands, the gateway's own history.
    let journal = crate::journal::Journal::open(&storage.state_dir, storage.journal)
        .with_context(|| format!("cannot open the journal in {}", storage.state_dir.display()))?;
    // Audit entries (logins, account changes, commands, config loads) also go to the
    // sinks that accept `audit` (src/sinks/route.rs `forward_audit`).
    let (audit_tx, audit_rx) = tokio::sync::mpsc::channel(1024);
    journal.tap(audit_tx);
    let restored = restore::listed_alarms(&journal)
        .with_context(|| "cannot read the alarm state from the journal".to_string())?;
    // The clock and the board, measured beside the hub (src/selfwatch/).
    let (watch, watch_tasks) = crate::selfwatch::start(
        site.clock.as_ref(),
        &storage.state_dir,
        crate::selfwatch::JournalTo {
            journal: journal.clone(),
            gateway: site.gateway.clone(),
        },
    );
    let mut gateway = SelfMonitor::new(&site, watch);
    gateway.state_ok = state_problem.is_none();
    // The web console's logins (src/web/auth.rs): closed, with the serious
    // web_console_disabled alarm, while a setting is unsafe; monitoring goes on.
    let web_options = crate::web::options_for(&site, &storage.state_dir, web_addr, &journal);
    gateway.web_console_ok = web_options
        .auth
        .as_ref()
        .map(|a| a.console_ok())
        .unwrap_or_default();
    gateway.storage = Some((buffer.clone(), journal.clone()));
    buffer.registry().add(
        site.devices
            .iter()
            .map(|d| d.meta.clone())
            .chain([gateway.device.clone()]),
    );
    let mut engine = Engine::new(site.name.clone(), site.language, first_seq);
    engine.set_identity(site.gateway.clone(), site.time.clone(), first_no);
    for d in &site.devices {
        engine.add_device(d.meta.clone(), d.poll_interval, d.rules.clone());
        let room = site
            .rooms
            .iter()
            .find(|r| r.id == d.meta.room)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        engine.set_place(d.meta.id.clone(), room, d.location.clone());
    }
    engine.add_device(
        gateway.device.clone(),
        Duration::from_secs(1),
        crate::selfwatch::rules(site.clock.as_ref()),
    );
    // One alarm per root cause: the links several devices share (src/rules/rootcause.rs).
    engine.add_links(crate::rules::rootcause::plan(
        site.devices
            .iter()
            .filter_map(|d| Some((d.meta.clone(), d.connection.link()?))),
    ));
    if !restored.is_empty() {
        tracing::info!(
            alarms = restored.len(),
            "alarm state restored from the journal"
        );
    }
    // Incidents: as journaled, plus the serious alarms still active (they go on
    // counting towards `open_after` from when they were raised).
    let mut incidents =
        crate::incidents::Incidents::new(site.incidents.clone(), site.gateway.clone());
    match crate::incidents::read_entries(&journal) {
        Ok(entries) => incidents.restore(&entries),
        Err(e) => tracing::error!(error = %e, "cannot read the incidents from the journal"),
    }
    engine.restore(restored);
    for a in engine.active() {
        if a.level == crate::model::Level::Serious && a.state != "cleared" {
            incidents.seed(a.kind, &a.key, a.no, &a.rule, &a.message, a.since);
        }
    }
    let started = crate::journal::NewEntry {
        ts: Timestamp::now(),
        kind: crate::journal::Kind::GatewayStart,
        gateway: site.gateway.clone(),
        device: None,
        data: serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "listed_alarms": engine.active().len(),
        }),
    };
    // Every loaded config is kept as a numbered version (Art. 11.7, 11.8).
    let config_version = match crate::config::history::keep(
        &storage.state_dir,
        &site.config_text,
        &site.config_sha256,
        &site.config_origin,
        Timestamp::now(),
    ) {
        Ok((v, _)) => Some(v.version),
        Err(e) => {
            tracing::error!(error = %e, "cannot keep a copy of the loaded config");
            None
        }
    };
    let loaded = crate::journal::NewEntry {
        ts: Timestamp::now(),
        kind: crate::journal::Kind::ConfigLoaded,
        gateway: site.gateway.clone(),
        device: None,
        data: serde_json::json!({
            "sha256": site.config_sha256,
            "origin": site.config_origin,
            "devices": site.devices.len(),
            "sinks": site.sinks.len(),
            "version": config_version,
            "reason": reload.as_ref().map_or("start", |h| h.reason.as_str()),
            "by": reload.as_ref().and_then(|h| h.by.clone()),
        }),
    };
    if let Err(e) = journal.append_all(vec![started, loaded]) {
        tracing::error!(error = %e, "cannot write the gateway's start to the journal");
    }
    let plan = Sources::create(&site);
    let listed: std::collections::HashSet<String> =
        engine.active().into_iter().map(|a| a.key).collect();
    let mut maintenance =
        crate::rules::maintenance::Maintenance::new(site.maintenance.clone(), site.time.clone());
    for w in restore::open_maintenance(&journal)
        .with_context(|| "cannot read the maintenance windows from the journal".to_string())?
    {
        let _ = maintenance.start(w);
    }
    if let Err(e) = crate::durable::restrict(&storage.state_dir) {
        tracing::warn!(dir = %storage.state_dir.display(), error = %e, "cannot restrict the state directory to the service's user");
    }
    let outputs = crate::outputs::Handle::new(&site);
    let mut shared = Shared::new(initial_live(&site))
        .with_journal(journal.clone())
        .with_records(crate::records::SiteInfo::from_site(&site))
        .with_outputs(outputs.clone());
    shared.paging = site.paging.clone().map(|p| (p, site.time.clone()));
    shared.write().maintenance = maintenance.started().to_vec();
    shared.write().degraded.extend(state_problem.clone());
    shared.write().alarms = engine.active();

    let (commands, commands_rx) = Commands::channel();
    let commands = match &reload {
        Some(h) => commands.with_reload(h.tx.clone()),
        None => commands,
    };

    // 2. Connect.
    let sinks = sinks::registry::start(
        &site.sinks,
        &buffer,
        storage,
        &site.name,
        Some(&commands),
        &site.gateway,
    )?;
    let (tx, rx) = mpsc::channel::<Poll>(1024);
    let sources = plan.start(tx).await?;

    // 3. Run.
    let mut tasks = sinks.tasks;
    tasks.push(tokio::spawn(sinks::forward_audit(
        audit_rx,
        sinks.outlets.clone(),
    )));
    tasks.extend(watch_tasks);
    // The broker's retained alarm states agree with the listed alarms (after a restart).
    for e in &site.sinks {
        if let sinks::SinkConfig::Mqtt(cfg) = &e.config {
            let (cfg, gateway, listed, name) = (
                cfg.clone(),
                site.gateway.clone(),
                listed.clone(),
                e.name.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut wait = Duration::from_secs(1);
                loop {
                    match crate::sinks::mqtt::reconcile::retained_alarms(&cfg, &gateway, &listed).await {
                        Ok(emptied) => {
                            if !emptied.is_empty() {
                                tracing::warn!(sink = %name, alarms = ?emptied, "emptied retained alarm states no longer listed");
                            }
                            return;
                        }
                        Err(e) => {
                            tracing::debug!(sink = %name, error = %e, "retained alarm states not checked yet");
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(60));
                        }
                    }
                }
            }));
        }
    }
    match crate::commands::socket::serve(&storage.state_dir, commands.clone()) {
        Ok(t) => tasks.push(t),
        // Monitoring goes on without the console's way in.
        Err(e) => {
            tracing::error!(dir = %storage.state_dir.display(), error = %e, "cannot open the local command socket")
        }
    }
    {
        let shared = shared.clone();
        let web_options = crate::web::Options {
            commands: Some(commands.clone()),
            ..web_options
        };
        tasks.push(tokio::spawn(async move {
            if let Err(e) =
                crate::web::serve_with(listener, shared, web_options, std::future::pending()).await
            {
                tracing::error!(error = %e, "web server stopped");
            }
        }));
    }
    // Sirens and beacons follow the listed alarms (src/outputs/).
    gateway.outputs = outputs.clone();
    tasks.extend(outputs.spawn(shared.clone(), crate::sources::gpio::backend::current()));
    let intervals: Vec<Duration> = site.devices.iter().map(|d| d.poll_interval).collect();
    // Paging (src/paging/): the pager in the hub, SMS replies through the command path.
    let pager = site.paging.clone().map(|cfg| {
        let to = paging::Paging {
            outlets: sinks.outlets.clone(),
            journal: journal.clone(),
            gateway: site.gateway.clone(),
        };
        if !sinks.sms.is_empty() {
            let (texts, merging) = paging::merge(&sinks.sms);
            tasks.extend(merging);
            tasks.push(tokio::spawn(paging::replies(
                texts,
                cfg.clone(),
                commands.clone(),
                to.clone(),
            )));
        }
        let mut pager =
            crate::paging::Pager::new(cfg, site.time.clone(), site.language, &site.gateway);
        // Serious alarms standing unacknowledged across the restart: escalation goes on.
        let now = Timestamp::now();
        for a in engine.active().into_iter().filter(|a| a.state == "raised") {
            let meta = site
                .devices
                .iter()
                .find(|d| d.meta.id == a.device)
                .map(|d| &d.meta);
            let ev = crate::model::AlarmEvent {
                id: a.id.clone(),
                seq: 0,
                ts: a.since,
                site: site.name.clone(),
                device: a.device.clone(),
                kind: a.kind,
                room: meta
                    .map(|m| m.room.clone())
                    .unwrap_or_else(|| std::sync::Arc::from("gateway")),
                point: a.point,
                rule: a.rule.clone(),
                level: a.level,
                state: crate::model::AlarmState::Raised,
                value: a.value.clone(),
                threshold: a.threshold,
                message: a.message.clone(),
                detail: crate::model::EventDetail {
                    no: a.no,
                    name: meta.map(|m| m.name.clone()).unwrap_or_default(),
                    label: meta.and_then(|m| m.label.clone()),
                    shelved_until: a.shelved_until,
                    listed: true,
                    ..Default::default()
                },
            };
            pager.resume(&ev, now);
        }
        (pager, to)
    });
    let trap_points = site
        .devices
        .iter()
        .filter(|d| d.profile.protocol() == "snmp")
        .map(|d| (d.meta.id.clone(), d.profile.points().len()))
        .collect();
    tasks.push(tokio::spawn(hub::run(hub::Hub {
        rx,
        engine,
        shared: shared.clone(),
        outlets: sinks.outlets,
        intervals,
        gateway,
        seqs,
        nos,
        commands: commands_rx,
        journal: journal.clone(),
        gateway_name: site.gateway.clone(),
        shelve: site.shelve,
        maintenance,
        incidents,
        time: site.time.clone(),
        runs: {
            let mut runs = crate::generator_runs::Runs::new(site.generator_runs.clone(), site.time.clone());
            let generators = site
                .devices
                .iter()
                .filter(|d| d.meta.kind == crate::model::Kind::Generator)
                .map(|d| d.meta.id.to_string())
                .collect();
            let first = journal
                .query(&crate::journal::Query { limit: 1, ..Default::default() })
                .ok()
                .and_then(|e| e.first().map(|e| e.ts))
                .unwrap_or_else(Timestamp::now);
            let past = crate::records::reports::entries(
                &journal,
                Some(crate::journal::Kind::GeneratorRun),
                Timestamp(0),
                Timestamp(i64::MAX),
            )
            .unwrap_or_default();
            runs.restore(generators, &past, first);
            runs
        },
        oncall: site.paging.clone(),
        history: match crate::history::History::start(&site.storage.state_dir, site.history) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(error = %e, "the on-board history cannot be opened; reports will lack readings");
                None
            }
        },
        pager,
        trap_points,
        outputs: outputs.clone(),
    })));

    Ok(Running {
        shared,
        web_addr,
        commands,
        tasks,
        mqtt: sinks.mqtt,
        buffer: Some(buffer),
        journal,
        gateway: site.gateway.clone(),
        _sources: sources,
        outputs,
    })
}
