//! The hub: the one task that owns the rules engine and the live picture.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::selfmon::SelfMonitor;
use crate::commands::{Command, Reply, Request, Verb};
use crate::journal::{Journal, Kind as JKind, NewEntry};
use crate::model::{Poll, Quality, Timestamp};
use crate::rules::maintenance::{Maintenance, Started, Target};
use crate::rules::{self, Engine};
use crate::seq::SeqStore;
use crate::sinks::worker::SinkQueue;
use crate::sinks::{Record, Route};
use crate::state::{DeviceState, Shared, Update};

/// What the hub owns.
pub(super) struct Hub {
    /// Polls from every source.
    pub rx: mpsc::Receiver<Poll>,
    /// The rules.
    pub engine: Engine,
    /// The live picture (page, API).
    pub shared: Shared,
    /// Each sink's route and queue.
    pub outlets: Vec<(Route, SinkQueue)>,
    /// Poll interval of each device, in live-state order (staleness).
    pub intervals: Vec<Duration>,
    /// The gateway's own readings.
    pub gateway: SelfMonitor,
    /// The alarm sequence reservation.
    pub seqs: SeqStore,
    /// The alarm instance number reservation.
    pub nos: SeqStore,
    /// Commands from people (MQTT, the local socket).
    pub commands: mpsc::Receiver<Request>,
    /// The journal.
    pub journal: Journal,
    /// This gateway's name (journal entries).
    pub gateway_name: Arc<str>,
    /// How long alarms may be shelved.
    pub shelve: crate::config::ShelvePolicy,
    /// Maintenance windows.
    pub maintenance: Maintenance,
    /// Incidents (Art. 18), restored from the journal.
    pub incidents: crate::incidents::Incidents,
    /// The site's time zone (reminder texts).
    pub time: crate::texts::time::SiteTime,
    /// Generator runs (src/generator_runs/).
    pub runs: crate::generator_runs::Runs,
    /// The paging roster: incident reminders go to the person on call when
    /// `[incidents] notify` names nobody.
    pub oncall: Option<Arc<crate::paging::PagingConfig>>,
    /// The on-board history's writer (src/history/); `None` when it cannot be opened.
    pub history: Option<crate::history::History>,
    /// Who is paged (src/paging/), and where its notifications go; `None` without a
    /// `[paging]` table.
    pub pager: Option<(crate::paging::Pager, super::paging::Paging)>,
    /// SNMP devices and how many points a poll of theirs carries: a poll with fewer
    /// is one an SNMP trap made (a trap sets only the points its rule names), whose
    /// alarms wait for the confirming poll before they are paged.
    pub trap_points: std::collections::HashMap<Arc<str>, usize>,
    /// Sirens and beacons (the `silence` command).
    pub outputs: crate::outputs::Handle,
}

/// Put `rec` into the queue of every sink whose route takes it.
fn route(outlets: &[(Route, SinkQueue)], rec: Record) {
    for (route, q) in outlets {
        if route.passes(&rec) {
            q.push(rec.clone());
        }
    }
}

/// The hub's loop: polls in, rules, live state, records out; a 1 s tick for on-delays,
/// communication loss, staleness and the gateway's own readings.
pub(super) async fn run(h: Hub) {
    let Hub {
        mut rx,
        mut engine,
        shared,
        outlets,
        intervals,
        mut gateway,
        seqs,
        nos,
        mut commands,
        journal,
        gateway_name,
        shelve,
        mut maintenance,
        incidents,
        time,
        runs,
        oncall,
        history,
        pager,
        trap_points,
        outputs,
    } = h;
    let mut minutes = crate::history::Accumulator::default();
    let mut out = Out {
        pager,
        clock: gateway.watch.clone(),
        seqs,
        nos,
        outlets,
        shared: shared.clone(),
        journal,
        gateway: gateway_name,
        incidents,
        time,
        runs,
        oncall,
    };
    let mut sink_failing: Vec<bool> = Vec::new();
    // Journal entries past their retention go once a day (and at the first tick).
    let mut ticks: u64 = 0;
    let mut pending_changed = false;
    let queues: Vec<SinkQueue> = out.outlets.iter().map(|(_, q)| q.clone()).collect();
    let mut answered = Answered::default();
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
    // A site without devices (or whose source tasks all ended) has no poll senders:
    // the hub goes on with its tick (the gateway's own points, rules, the watchdog).
    let mut polls_open = true;
    loop {
        tokio::select! {
            maybe = rx.recv(), if polls_open => {
                let Some(mut poll) = maybe else {
                    polls_open = false;
                    continue;
                };
                let from_trap = trap_points.get(&poll.device.id).is_some_and(|n| poll.samples.len() < *n);
                let confirming = trap_points.contains_key(&poll.device.id) && !from_trap;
                let device = poll.device.id.clone();
                rules::derive(&mut poll);
                let events = engine.on_poll(&poll);
                if history.is_some() {
                    minutes.add(&poll);
                }
                if let Some(run) = out.runs.on_poll(&poll) {
                    out.generator_run(run);
                }
                let i = index.get(&poll.device.id).copied();
                if let Some(i) = i {
                    let mut live = shared.write();
                    apply_poll(&mut live.devices[i], &poll);
                    live.last_progress = Some(poll.ts);
                }
                route(&out.outlets, Record::Poll(Arc::new(poll)));
                if let Some(i) = i {
                    let _ = shared.updates.send(Update::Device(i));
                }
                service.polled(i, &shared);
                out.publish_from(events, &engine, &maintenance, from_trap);
                if confirming {
                    out.confirmed(&device);
                }
            }
            Some(req) = commands.recv() => {
                let now = Timestamp::now();
                if let Some(mut again) = answered.get(&req.command.id).or_else(|| out.answered_before(&req.command.id)) {
                    again.repeated = true;
                    answered.insert(&req.command.id, again.clone());
                    let _ = req.reply.send(again);
                    continue;
                }
                let (reply, events) = if req.command.verb == Verb::IncidentClose {
                    (out.close_incident(&req.command, now), Vec::new())
                } else if req.command.verb == Verb::TestNotification {
                    (out.test_notification(&req.command, now), Vec::new())
                } else if req.command.verb == Verb::Silence {
                    let r = outputs.silence(&engine.active(), &req.command.target);
                    (match r {
                        Ok(text) => Reply::ok(&req.command.id, text),
                        Err(e) => Reply::error(&req.command.id, e),
                    }, Vec::new())
                } else {
                    apply(&mut engine, &mut maintenance, &req.command, now, &shelve)
                };
                shared.write().maintenance = maintenance.started().to_vec();
                answered.insert(&req.command.id, reply.clone());
                out.command(&req.command, &reply, now);
                tracing::info!(id = %req.command.id, verb = req.command.verb.as_str(), target = %req.command.target, by = %req.command.by, entry = %req.command.origin.entry, peer = %req.command.origin.peer, ok = reply.ok, "command");
                out.publish(events, &engine, &maintenance);
                let _ = req.reply.send(reply);
            }
            _ = tick.tick() => {
                let now = Timestamp::now();
                let (mut own, send) = gateway.poll(now, &queues, out.journal.used_pct(), maintenance.overrun(now));
                gateway.mark_degraded(gateway.write_failure().as_deref(), &shared);
                out.sinks_failing(now, &queues, &mut sink_failing);
                if ticks.is_multiple_of(86_400) {
                    match out.journal.prune(now) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(entries = n, "journal entries past their retention removed"),
                        Err(e) => tracing::warn!(error = %e, "cannot prune the journal"),
                    }
                }
                ticks += 1;
                // The monthly generator test (src/generator_runs/): the gateway's own point.
                if out.runs.watches_tests()
                    && let Some(point) = crate::points::lookup(crate::model::Kind::Gateway, "generator_test_overdue")
                {
                    own.samples.push(crate::model::Sample {
                        point,
                        value: Some(crate::model::Value::Bool(out.runs.test_overdue(now))),
                        quality: Quality::Good,
                    });
                }
                if let Some(h) = &history {
                    minutes.add(&own);
                    h.send(minutes.take_done(now));
                }
                let mut events = engine.on_poll(&own);
                if send {
                    route(&out.outlets, Record::Poll(Arc::new(own)));
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
                    let pending = engine.pending();
                    if pending.len() != live.pending.len()
                        || pending.iter().zip(&live.pending).any(|(a, b)| {
                            (&a.device, a.point, a.level) != (&b.device, b.point, b.level)
                        })
                    {
                        // The devices whose tiles change colour: before and after.
                        for p in live.pending.iter().chain(&pending) {
                            if let Some(&i) = index.get(&p.device) && !changed.contains(&i) {
                                changed.push(i);
                            }
                        }
                        live.pending = pending;
                        pending_changed = true;
                    }
                }
                if std::mem::take(&mut pending_changed) {
                    let _ = shared.updates.send(Update::Alarms);
                }
                for i in changed {
                    let _ = shared.updates.send(Update::Device(i));
                }
                out.publish(events, &engine, &maintenance);
                let changes = out.incidents.tick(now);
                out.incident_changes(changes, now);
                out.page_tick(now);
                service.tick(&shared).await;
            }
        }
    }
}

/// Where the hub's alarm events go: the reservations on disk first, then the live
/// state and every sink whose route takes them.
struct Out {
    /// The pager and where its notifications go.
    pager: Option<(crate::paging::Pager, super::paging::Paging)>,
    /// Whether the clock is known synchronised (events are marked when not).
    clock: crate::selfwatch::Watch,
    seqs: SeqStore,
    nos: SeqStore,
    outlets: Vec<(Route, SinkQueue)>,
    shared: Shared,
    journal: Journal,
    gateway: Arc<str>,
    /// The paging roster (incident reminders to the person on call).
    oncall: Option<Arc<crate::paging::PagingConfig>>,
    /// Generator runs: fed every poll and alarm event.
    runs: crate::generator_runs::Runs,
    /// Incidents: fed every alarm event, ticked, closed by command.
    incidents: crate::incidents::Incidents,
    /// The site's time zone (reminder texts).
    time: crate::texts::time::SiteTime,
}

impl Out {
    /// Journal a finished generator run.
    fn generator_run(&self, run: crate::generator_runs::Run) {
        tracing::info!(device = %run.device, cause = run.cause.as_str(), duration_s = run.duration_s, passed = ?run.passed, "generator run");
        let data = serde_json::to_value(&run).unwrap_or_default();
        self.journal(vec![self.entry(
            run.end,
            JKind::GeneratorRun,
            Some(Arc::from(run.device.as_str())),
            data,
        )]);
        let record = {
            let live = self.shared.read();
            let meta = live
                .devices
                .iter()
                .find(|d| *d.meta.id == *run.device)
                .map(|d| d.meta.clone());
            crate::generator_runs::RunRecord {
                site: live.site.clone(),
                room: meta
                    .as_ref()
                    .map(|m| m.room.to_string())
                    .unwrap_or_default(),
                label: meta.and_then(|m| m.label.clone()),
                run,
            }
        };
        route(&self.outlets, Record::GeneratorRun(Arc::new(record)));
    }

    /// Journal incident changes; a reminder becomes a notification to each person of
    /// `[incidents] notify`.
    fn incident_changes(&self, changes: Vec<crate::incidents::Change>, now: Timestamp) {
        if changes.is_empty() {
            return;
        }
        let entries = changes
            .iter()
            .map(|c| {
                tracing::info!(incident = %c.incident().id, event = c.event(), "incident");
                self.entry(
                    now,
                    JKind::Incident,
                    None,
                    crate::incidents::journal_data(c),
                )
            })
            .collect();
        self.journal(entries);
        for c in &changes {
            if let crate::incidents::Change::Reminder { incident, before } = c {
                // The people named in [incidents] notify, else the person on call.
                let Some(pc) = &self.oncall else { continue };
                let named = &self.incidents.config().notify;
                let people: Vec<&crate::paging::config::Person> = if named.is_empty() {
                    crate::paging::roster::on_call(pc, now, &self.time)
                        .and_then(|o| pc.people.get(o.person))
                        .into_iter()
                        .collect()
                } else {
                    pc.people.iter().filter(|p| named.contains(&p.id)).collect()
                };
                for p in people {
                    let text = crate::incidents::Incidents::reminder_text(
                        incident, *before, &self.time, p.language,
                    );
                    let n = crate::sinks::Notification {
                        id: uuid::Uuid::now_v7().to_string(),
                        ts: now,
                        person: p.id.clone(),
                        phone: if p.sms {
                            p.phone.clone()
                        } else {
                            String::new()
                        },
                        text,
                        lang: match p.language {
                            crate::model::Language::Vi => "vi".into(),
                            crate::model::Language::En => "en".into(),
                        },
                        alarm_no: None,
                        call: false,
                        // About no alarm (CONTRACTS.md "Notifications").
                        attempt: 1,
                    };
                    route(&self.outlets, Record::Notification(Arc::new(n)));
                }
            }
        }
    }

    /// `incident_close`: applied, journaled (before the answer), answered.
    fn close_incident(&mut self, c: &Command, now: Timestamp) -> Reply {
        let req = crate::incidents::CloseRequest {
            by: c.by.clone(),
            cause: c.cause.clone(),
            actions: c.actions.clone().or_else(|| c.comment.clone()),
            false_alarm: c.false_alarm,
            reason: c.reason.clone(),
        };
        match self.incidents.close(&c.target, &req, now) {
            Ok(change) => {
                let text = format!(
                    "incident {} closed{}",
                    change.incident().id,
                    if c.false_alarm {
                        " as a false alarm"
                    } else {
                        ""
                    }
                );
                self.incident_changes(vec![change], now);
                Reply::ok(&c.id, text)
            }
            Err(e) => Reply::error(&c.id, e.to_string()),
        }
    }

    fn entry(
        &self,
        ts: Timestamp,
        kind: JKind,
        device: Option<Arc<str>>,
        data: serde_json::Value,
    ) -> NewEntry {
        NewEntry {
            ts,
            kind,
            gateway: self.gateway.clone(),
            device,
            data,
        }
    }

    /// Write entries; a journal that refuses is logged and counted, and monitoring
    /// goes on (the events still reach the sinks' own durable queues).
    fn journal(&self, entries: Vec<NewEntry>) {
        if let Err(e) = self.journal.append_all(entries) {
            crate::metrics::get()
                .sink_errors
                .get_or_create(&crate::metrics::labels(&[
                    ("sink", "journal"),
                    ("reason", "write"),
                ]))
                .inc();
            tracing::error!(error = %e, "cannot write to the journal");
        }
    }

    /// The answer given to command `id` before a restart, from the journal.
    fn answered_before(&self, id: &str) -> Option<Reply> {
        let e = self.journal.find_command(id).ok().flatten()?;
        serde_json::from_value(e.data.get("reply")?.clone()).ok()
    }

    /// Journal a command with its origin and answer (before the answer is given).
    fn command(&self, c: &Command, reply: &Reply, now: Timestamp) {
        let data = serde_json::json!({
            "id": c.id,
            "verb": c.verb,
            "target": c.target,
            "by": c.by,
            "origin": c.origin,
            "comment": c.comment,
            "reason": c.reason,
            "minutes": c.minutes,
            "reply": reply,
        });
        self.journal(vec![self.entry(now, JKind::Command, None, data)]);
    }

    /// Journal a sink's failure (delivering nothing for a minute) and its recovery.
    fn sinks_failing(&self, now: Timestamp, queues: &[SinkQueue], was: &mut Vec<bool>) {
        was.resize(queues.len(), false);
        let mut entries = Vec::new();
        for (q, was) in queues.iter().zip(was.iter_mut()) {
            let failing_s = q.failing_s(now);
            let now_failing = failing_s >= 60.0;
            if now_failing != *was {
                *was = now_failing;
                let st = q.status(now);
                let kind = if now_failing {
                    JKind::SinkFailed
                } else {
                    JKind::SinkRecovered
                };
                let data = serde_json::json!({"sink": st.name, "kind": st.kind, "failing_s": failing_s.round(), "queued": st.queued});
                entries.push(self.entry(now, kind, None, data));
            }
        }
        if !entries.is_empty() {
            self.journal(entries);
        }
    }

    /// The pager's tick: repeats, calls, escalation, storm summaries, the daily test.
    fn page_tick(&mut self, now: Timestamp) {
        if let Some((pager, to)) = &mut self.pager {
            to.deliver(pager.tick(now), now);
        }
    }

    /// A poll of an SNMP device that no trap made: alarms its traps raised are paged.
    fn confirmed(&mut self, device: &str) {
        if let Some((pager, to)) = &mut self.pager {
            let now = Timestamp::now();
            to.deliver(pager.confirmed(device, now), now);
        }
    }

    /// `test_notification`: a test text to `target` (a person id), or to the person on
    /// call when no target is given.
    fn test_notification(&mut self, c: &Command, now: Timestamp) -> Reply {
        let Some((pager, to)) = &mut self.pager else {
            return Reply::error(
                &c.id,
                "no [paging] roster is configured: nobody to send a test to",
            );
        };
        match pager.test(Some(c.target.as_str()), now) {
            Ok(o) => {
                let who = o
                    .notices
                    .first()
                    .map(|n| n.person.clone())
                    .unwrap_or_default();
                to.deliver(o, now);
                Reply::ok(&c.id, format!("test notification sent to {who}"))
            }
            Err(e) => Reply::error(&c.id, e),
        }
    }

    fn publish(
        &mut self,
        events: Vec<crate::model::AlarmEvent>,
        engine: &Engine,
        maintenance: &Maintenance,
    ) {
        self.publish_from(events, engine, maintenance, false);
    }

    /// Publish events; `from_trap`: they came from a poll an SNMP trap made.
    fn publish_from(
        &mut self,
        mut events: Vec<crate::model::AlarmEvent>,
        engine: &Engine,
        maintenance: &Maintenance,
        from_trap: bool,
    ) {
        if events.is_empty() {
            return;
        }
        // Alarms of a device in a maintenance window: recorded and shown, not paged.
        for ev in &mut events {
            ev.detail.in_maintenance = maintenance.covers(&ev.device, &ev.room, ev.kind, ev.ts);
        }
        if self.clock.unsynced() {
            for ev in &mut events {
                ev.detail.clock_unsynced = true;
            }
        }
        for ev in &events {
            self.runs.on_alarm(ev);
        }
        // Incidents: mark the events of alarms in one (before they are journaled).
        let changes = self.incidents.on_events(&mut events);
        // On disk before any of these events can leave (src/seq.rs).
        self.seqs.cover(engine.next_seq());
        self.nos.cover(engine.next_no());
        // In the journal (the alarm state after a restart is rebuilt from it).
        let entries = events
            .iter()
            .map(|ev| {
                let data = serde_json::to_value(ev).unwrap_or_default();
                self.entry(ev.ts, JKind::Alarm, Some(ev.device.clone()), data)
            })
            .collect();
        self.journal(entries);
        if let Some(now) = events.last().map(|e| e.ts) {
            self.incident_changes(changes, now);
        }
        // Who is told (after the journal has the events, before they leave).
        if let Some((pager, to)) = &mut self.pager {
            for ev in &events {
                to.deliver(pager.on_event(ev, from_trap, ev.ts), ev.ts);
            }
        }
        self.shared.write().alarms = engine.active();
        let m = crate::metrics::get();
        for ev in events {
            m.alarm_events
                .get_or_create(&crate::metrics::labels(&[
                    ("level", ev.level.as_str()),
                    ("state", ev.state.as_str()),
                ]))
                .inc();
            tracing::warn!(device = %ev.device, rule = %ev.rule, level = ev.level.as_str(), state = ev.state.as_str(), seq = ev.seq, no = ev.detail.no, "{}", ev.message);
            route(&self.outlets, Record::Alarm(Arc::new(ev)));
        }
        let _ = self.shared.updates.send(Update::Alarms);
    }
}

/// The answers given to recent commands, by command id, so a command sent again
/// (after a reconnect) gets the same answer and is applied once. The journal keeps
/// them for good; this is the quick path for the last [`Answered::KEEP`].
#[derive(Default)]
struct Answered {
    by_id: std::collections::HashMap<String, Reply>,
    order: std::collections::VecDeque<String>,
}

impl Answered {
    const KEEP: usize = 10_000;

    fn get(&self, id: &str) -> Option<Reply> {
        self.by_id.get(id).cloned()
    }

    fn insert(&mut self, id: &str, reply: Reply) {
        if self.by_id.insert(id.to_string(), reply).is_none() {
            self.order.push_back(id.to_string());
            if self.order.len() > Self::KEEP
                && let Some(old) = self.order.pop_front()
            {
                self.by_id.remove(&old);
            }
        }
    }
}

/// Apply a command to the alarm state: its answer and the events it caused.
fn apply(
    engine: &mut Engine,
    maintenance: &mut Maintenance,
    c: &Command,
    now: Timestamp,
    shelve: &crate::config::ShelvePolicy,
) -> (Reply, Vec<crate::model::AlarmEvent>) {
    let done = |r: Result<crate::model::AlarmEvent, crate::rules::engine::AckError>,
                what: &dyn Fn(&crate::model::AlarmEvent) -> String| match r {
        Ok(ev) => (Reply::ok(&c.id, what(&ev)), vec![ev]),
        Err(e) => (Reply::error(&c.id, e.to_string()), Vec::new()),
    };
    match c.verb {
        Verb::Ack => done(
            engine.ack(&c.target, &c.by, c.comment.clone(), now),
            &|ev| format!("alarm {} acknowledged", ev.detail.no),
        ),
        Verb::Shelve => {
            let want = c
                .minutes
                .map(|m| Duration::from_secs(u64::from(m) * 60))
                .unwrap_or(shelve.default);
            let lasts = want.min(shelve.max);
            let until = now.plus(lasts);
            let reason = c.reason.clone().unwrap_or_default();
            done(
                engine.shelve(&c.target, &c.by, &reason, until, now),
                &|ev| {
                    format!(
                        "alarm {} shelved until {} ({} min)",
                        ev.detail.no,
                        until.rfc3339(),
                        lasts.as_secs() / 60
                    )
                },
            )
        }
        Verb::Unshelve => done(
            engine.unshelve(&c.target, &c.by, c.comment.clone(), now),
            &|ev| format!("alarm {} unshelved", ev.detail.no),
        ),
        Verb::MaintenanceStart => {
            let result = Target::parse(&c.target).and_then(|target| {
                let minutes = c.minutes.unwrap_or(60);
                let w = Started {
                    target,
                    by: c.by.clone(),
                    reason: c
                        .reason
                        .clone()
                        .or_else(|| c.comment.clone())
                        .unwrap_or_default(),
                    since: now,
                    until: now.plus(Duration::from_secs(u64::from(minutes) * 60)),
                };
                let text = format!(
                    "maintenance of {} open until {}",
                    w.target.text(),
                    w.until.rfc3339()
                );
                maintenance.start(w).map(|_| text)
            });
            match result {
                Ok(text) => (Reply::ok(&c.id, text), Vec::new()),
                Err(e) => (Reply::error(&c.id, e), Vec::new()),
            }
        }
        Verb::MaintenanceEnd => match Target::parse(&c.target).and_then(|t| maintenance.end(&t)) {
            Ok(w) => (
                Reply::ok(&c.id, format!("maintenance of {} ended", w.target.text())),
                Vec::new(),
            ),
            Err(e) => (Reply::error(&c.id, e), Vec::new()),
        },
        other => (
            Reply::error(
                &c.id,
                format!(
                    "{} is not available in this version of the gateway",
                    other.as_str()
                ),
            ),
            Vec::new(),
        ),
    }
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
