//! The JSON API (`/api/v1/readings`, `/alarms`, `/sinks`, `/journal`), the live event stream
//! (`/api/v1/events`), `/healthz`, `/metrics` and the JSON error answers.
//!
//! Shapes follow CONTRACTS.md "HTTP API". A readings entry is
//! `{device, kind, room, point, value, unit, quality, ts, age_s}`: `value` is the last
//! good value (kept after a failed read, `null` if never read), `unit` is `""` for
//! booleans and enumerations, `ts` the RFC 3339 time of the last good read and `age_s`
//! the seconds since then (both `null` if never read).
//!
//! Numbers (`value`, and an alarm's `value` and `threshold`) go out at the point's
//! display resolution through [`crate::texts::number`]: `499.9`, never
//! `499.90000000000003`; they stay JSON numbers.
//!
//! `GET /api/v1/journal?since=&until=&kind=&device=&limit=&after_seq=` answers
//! `{"entries": [...]}`, oldest first, each entry as [`crate::journal::Entry`]
//! serialises (`{seq, ts, kind, gateway, device?, ...}`). `since`/`until` are RFC 3339
//! or relative (`-24h`), `since` inclusive and `until` exclusive; `limit` is 1 to
//! [`journal::MAX_LIMIT`] (default [`journal::DEFAULT_LIMIT`]); page on with
//! `after_seq` = the last `seq` received. Without a journal the answer is a JSON 503.
//!
//! Event stream (`text/event-stream`), each `data:` one JSON object:
//! - `refresh` — `{generated_at, site, layout, readings, alarms}`: the whole picture.
//!   Sent first on connect, every [`REFRESH_INTERVAL`], and at once when the client
//!   fell behind the update channel. `layout` changes when rooms, devices, points,
//!   title or language change: the page reloads itself then.
//! - `device` — `{generated_at, device, comm_ok, readings}`: one device's points after
//!   a poll.
//! - `alarms` — `{generated_at, alarms}`: the active alarm list after it changed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{Error, HEALTH_MAX_AGE, REFRESH_INTERVAL, SINK_FAILING_MAX};
use crate::journal::{self, Journal};
use crate::metrics;
use crate::model::{Kind, Quality, Timestamp, Value};
use crate::state::{ActiveAlarm, DeviceState, Live, Shared, SinkStatus, Update};
use crate::texts::number;

/// Router state: the live picture and the server's stop signal.
#[derive(Clone)]
pub(crate) struct App {
    /// The live picture.
    pub(crate) shared: Shared,
    /// Turns `true` when the server shuts down; ends the event streams.
    pub(crate) stop: watch::Receiver<bool>,
    /// Logins, sessions and tokens (src/web/auth.rs).
    pub(crate) auth: std::sync::Arc<super::auth::Auth>,
    /// The way into the hub for commands (none: this server takes none).
    pub(crate) commands: Option<crate::commands::Commands>,
}

impl axum::extract::FromRef<App> for std::sync::Arc<super::auth::Auth> {
    fn from_ref(app: &App) -> Self {
        app.auth.clone()
    }
}

/// Seconds between keep-alive comments on an idle event stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------
// Query filters

/// Filters of `GET /api/v1/readings`. A repeated parameter means "any of these".
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Filter {
    devices: Vec<String>,
    rooms: Vec<String>,
    kinds: Vec<Kind>,
    points: Vec<String>,
}

impl Filter {
    /// Parse a raw query string. Unknown parameters are ignored; a known one that is
    /// empty, badly encoded or (for `kind`) names no kind is an error.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Filter, Error> {
        let mut f = Filter::default();
        let Some(raw) = raw else { return Ok(f) };
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = || Error::BadEncoding {
                param: pair.chars().take(100).collect(),
            };
            let key = percent_decode(k).ok_or_else(bad)?;
            let name: &'static str = match key.as_str() {
                "device" => "device",
                "room" => "room",
                "kind" => "kind",
                "point" => "point",
                _ => continue,
            };
            let value = percent_decode(v).ok_or_else(bad)?;
            if value.is_empty() {
                return Err(Error::EmptyValue { param: name });
            }
            match name {
                "device" => f.devices.push(value),
                "room" => f.rooms.push(value),
                "point" => f.points.push(value),
                _ => match Kind::parse(&value) {
                    Some(kind) => f.kinds.push(kind),
                    None => {
                        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                        return Err(Error::UnknownKind {
                            value: value.chars().take(100).collect(),
                            known: known.join(", "),
                        });
                    }
                },
            }
        }
        Ok(f)
    }

    fn device(&self, d: &DeviceState) -> bool {
        (self.devices.is_empty() || self.devices.iter().any(|x| **x == *d.meta.id))
            && (self.rooms.is_empty() || self.rooms.iter().any(|x| **x == *d.meta.room))
            && (self.kinds.is_empty() || self.kinds.contains(&d.meta.kind))
    }

    fn point(&self, name: &str) -> bool {
        self.points.is_empty() || self.points.iter().any(|x| x == name)
    }
}

/// Parse the query of `GET /api/v1/journal` into a journal query. Unknown parameters
/// are ignored; a repeated one takes its last value; a known one that is empty, badly
/// encoded or out of range is an error.
pub(crate) fn journal_query(raw: Option<&str>, now: Timestamp) -> Result<journal::Query, Error> {
    let mut q = journal::Query::default();
    let Some(raw) = raw else { return Ok(q) };
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || Error::BadEncoding {
            param: pair.chars().take(100).collect(),
        };
        let key = percent_decode(k).ok_or_else(bad)?;
        let name: &'static str = match key.as_str() {
            "since" => "since",
            "until" => "until",
            "kind" => "kind",
            "device" => "device",
            "limit" => "limit",
            "after_seq" => "after_seq",
            _ => continue,
        };
        let value = percent_decode(v).ok_or_else(bad)?;
        if value.is_empty() {
            return Err(Error::EmptyValue { param: name });
        }
        let shown = || value.chars().take(100).collect::<String>();
        match name {
            "since" | "until" => {
                let t = journal::cli::parse_time(&value, now).map_err(|e| Error::BadTime {
                    param: name,
                    reason: e.to_string(),
                })?;
                if name == "since" {
                    q.since = Some(t);
                } else {
                    q.until = Some(t);
                }
            }
            "kind" => {
                q.kind =
                    Some(
                        journal::Kind::parse(&value).ok_or_else(|| Error::UnknownEntryKind {
                            value: shown(),
                            known: journal::Kind::names(),
                        })?,
                    );
            }
            "device" => q.device = Some(value),
            "limit" => {
                q.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=journal::MAX_LIMIT).contains(n))
                    .ok_or_else(|| Error::BadNumber {
                        param: name,
                        value: shown(),
                        expected: format!("a whole number from 1 to {}", journal::MAX_LIMIT),
                    })?;
            }
            _ => {
                q.after_seq = Some(value.parse::<i64>().map_err(|_| Error::BadNumber {
                    param: name,
                    value: shown(),
                    expected: "a whole number (the seq of the last entry received)".into(),
                })?);
            }
        }
    }
    Ok(q)
}

/// Strict `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` must be
/// two hex digits (a lone or short `%` is an error, not kept as text), and the result
/// must be UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

// ---------------------------------------------------------------------------------
// JSON shapes

/// One entry of `readings`.
#[derive(Debug, Serialize)]
pub(crate) struct Reading<'a> {
    device: &'a str,
    kind: Kind,
    room: &'a str,
    point: &'static str,
    value: Option<Value>,
    unit: &'static str,
    quality: Quality,
    ts: Option<Timestamp>,
    age_s: Option<f64>,
    /// Beyond a limit, its on-delay running: the level it will raise at (its own
    /// colour and word on the page, never shown as normal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<crate::model::Level>,
}

/// The readings of one device that pass `filter`.
fn device_readings<'a>(
    d: &'a DeviceState,
    now: Timestamp,
    filter: &'a Filter,
    pending: &'a [crate::state::Pending],
) -> impl Iterator<Item = Reading<'a>> + 'a {
    d.points
        .iter()
        .filter(move |p| filter.point(p.point.name))
        .map(move |p| Reading {
            device: &d.meta.id,
            kind: d.meta.kind,
            room: &d.meta.room,
            point: p.point.name,
            value: p.value.as_ref().map(|v| number::machine_value(p.point, v)),
            unit: p.point.unit,
            quality: p.quality,
            ts: p.ts,
            // A clock step backwards must not show a negative age.
            age_s: p.ts.map(|ts| now.secs_since(ts).max(0.0)),
            pending: pending
                .iter()
                .filter(|x| x.device == d.meta.id && x.point == p.point.name)
                .map(|x| x.level)
                .max(),
        })
}

fn all_readings<'a>(live: &'a Live, now: Timestamp, filter: &'a Filter) -> Vec<Reading<'a>> {
    live.devices
        .iter()
        .filter(|d| filter.device(d))
        .flat_map(|d| device_readings(d, now, filter, &live.pending))
        .collect()
}

#[derive(Serialize)]
struct ReadingsBody<'a> {
    site: &'a str,
    generated_at: Timestamp,
    readings: Vec<Reading<'a>>,
}

#[derive(Serialize)]
struct AlarmsBody<'a> {
    alarms: Vec<ActiveAlarm>,
    /// Values whose alarm is pending (on-delay running).
    pending: &'a [crate::state::Pending],
}

/// The active alarms with their numbers at the point's resolution.
fn alarms_out(alarms: &[ActiveAlarm]) -> Vec<ActiveAlarm> {
    alarms
        .iter()
        .map(|a| {
            let mut a = a.clone();
            let (kind, point) = (a.kind, a.point);
            let round = |x: f64| number::machine_by_name(kind, point, x);
            a.value = match a.value {
                Some(Value::Number(x)) => Some(Value::Number(round(x))),
                other => other,
            };
            a.threshold = a.threshold.map(round);
            a
        })
        .collect()
}

#[derive(Serialize)]
struct SinksBody<'a> {
    sinks: &'a [SinkStatus],
}

#[derive(Serialize)]
struct RefreshEvent<'a> {
    generated_at: Timestamp,
    site: &'a str,
    layout: String,
    readings: Vec<Reading<'a>>,
    alarms: Vec<ActiveAlarm>,
}

#[derive(Serialize)]
struct DeviceEvent<'a> {
    generated_at: Timestamp,
    device: &'a str,
    comm_ok: bool,
    readings: Vec<Reading<'a>>,
}

#[derive(Serialize)]
struct AlarmsEvent<'a> {
    generated_at: Timestamp,
    alarms: Vec<ActiveAlarm>,
    pending: &'a [crate::state::Pending],
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| {
        // Our shapes always serialise; say so loudly if one ever does not.
        tracing::error!(error = %e, "web: JSON encoding failed");
        String::from("{\"error\":\"encoding failed\"}")
    })
}

/// A JSON answer that no cache keeps.
fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    json(status, to_json(&ErrorBody { error: message }))
}

/// A refused request: counted, logged, answered with a JSON 400.
fn bad_request(path: &str, e: &Error) -> Response {
    metrics::get()
        .bad_input
        .get_or_create(&metrics::labels(&[("what", "http")]))
        .inc();
    tracing::info!(path, error = %e, "web: rejected request");
    json_error(StatusCode::BAD_REQUEST, &e.to_string())
}

// ---------------------------------------------------------------------------------
// Handlers

/// `GET /api/v1/readings[?device=&room=&kind=&point=]`.
pub(crate) async fn readings(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    let filter = match Filter::parse(q.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_request("/api/v1/readings", &e),
    };
    let body = {
        let live = app.shared.read();
        let now = Timestamp::now();
        to_json(&ReadingsBody {
            site: &live.site,
            generated_at: now,
            readings: all_readings(&live, now, &filter),
        })
    };
    json(StatusCode::OK, body)
}

/// `GET /api/v1/alarms`.
pub(crate) async fn alarms(State(app): State<App>) -> Response {
    let live = app.shared.read();
    let body = to_json(&AlarmsBody {
        alarms: alarms_out(&live.alarms),
        pending: &live.pending,
    });
    drop(live);
    json(StatusCode::OK, body)
}

/// `GET /api/v1/sinks`.
pub(crate) async fn sinks(State(app): State<App>) -> Response {
    let body = to_json(&SinksBody {
        sinks: &app.shared.read().sinks,
    });
    json(StatusCode::OK, body)
}

#[derive(Serialize)]
struct OutputsBody<'a> {
    outputs: &'a [crate::outputs::Status],
}

/// `GET /api/v1/outputs`: every siren and beacon, the state the alarms want, the
/// state read back after the last write, and its failures.
pub(crate) async fn outputs(State(app): State<App>) -> Response {
    let body = to_json(&OutputsBody {
        outputs: &app.shared.outputs.status(),
    });
    json(StatusCode::OK, body)
}

#[derive(Serialize)]
struct JournalBody {
    entries: Vec<journal::Entry>,
}

/// `GET /api/v1/journal[?since=&until=&kind=&device=&limit=&after_seq=]`.
pub(crate) async fn journal(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    let query = match journal_query(q.as_deref(), Timestamp::now()) {
        Ok(q) => q,
        Err(e) => return bad_request("/api/v1/journal", &e),
    };
    let Some(j): Option<Journal> = app.shared.journal.clone() else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the journal is not available on this gateway",
        );
    };
    // The journal reads from disk: off the async workers.
    match tokio::task::spawn_blocking(move || j.query(&query)).await {
        Ok(Ok(entries)) => json(StatusCode::OK, to_json(&JournalBody { entries })),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "web: journal query failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "web: journal query task failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "journal query failed")
        }
    }
}

/// `GET /api/v1/oncall[?at=RFC3339|-1h]`: who is on call then and next, and the
/// roster's gaps in the coming 7 days ([`crate::paging::roster::Report`]). 404 without
/// a `[paging]` table.
pub(crate) async fn oncall(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    let now = Timestamp::now();
    let mut at = now;
    for pair in q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
        if k != "at" {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("unknown parameter {k:?}: use at"),
            );
        }
        match journal::cli::parse_time(v.trim(), now) {
            Ok(t) => at = t,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("at: {e}")),
        }
    }
    let Some((paging, time)) = app.shared.paging.clone() else {
        return json_error(
            StatusCode::NOT_FOUND,
            "no [paging] roster is configured on this gateway",
        );
    };
    json(
        StatusCode::OK,
        to_json(&crate::paging::roster::report(&paging, at, &time)),
    )
}

/// `GET /healthz`: 200 `ok` while pollers and sinks progress, else 503 with the reason.
pub(crate) async fn healthz(State(app): State<App>) -> Response {
    let (status, text) = {
        let live = app.shared.read();
        let (status, text) = health(live.last_progress, &live.sinks, Timestamp::now());
        if live.degraded.is_empty() {
            (status, text)
        } else {
            let mut lines: Vec<String> = live.degraded.clone();
            if status != StatusCode::OK {
                lines.push(text);
            }
            (StatusCode::SERVICE_UNAVAILABLE, lines.join("\n"))
        }
    };
    (status, [(header::CACHE_CONTROL, "no-store")], text).into_response()
}

/// The health verdict: readings arrived within [`HEALTH_MAX_AGE`] and no sink has
/// failed to deliver for longer than [`SINK_FAILING_MAX`]. Every reason is given, one
/// line each.
pub(crate) fn health(
    last: Option<Timestamp>,
    sinks: &[SinkStatus],
    now: Timestamp,
) -> (StatusCode, String) {
    let mut problems = Vec::new();
    match last {
        None => problems.push("no progress yet".to_string()),
        Some(t) => {
            let age = now.secs_since(t);
            if age > HEALTH_MAX_AGE.as_secs_f64() {
                problems.push(format!(
                    "no progress for {age:.0} s (limit {} s)",
                    HEALTH_MAX_AGE.as_secs()
                ));
            }
        }
    }
    for s in sinks {
        if s.failing_s > SINK_FAILING_MAX.as_secs_f64() {
            problems.push(format!(
                "sink {} ({}) failing to deliver for {:.0} s (limit {} s), {} records queued",
                s.name,
                s.kind,
                s.failing_s,
                SINK_FAILING_MAX.as_secs(),
                s.queued
            ));
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n")
    }
}

/// `GET /metrics`: the process-wide registry in the exposition format
/// prometheus-client writes (OpenMetrics text, which Prometheus scrapes natively).
pub(crate) async fn metrics() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics::get().encode(),
    )
        .into_response()
}

/// Unknown path.
pub(crate) async fn not_found(uri: Uri) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        &format!("no such resource: {}", uri.path()),
    )
}

/// Known path, wrong method.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let msg = format!("method {method} not allowed on {}", uri.path());
    let mut r = json_error(StatusCode::METHOD_NOT_ALLOWED, &msg);
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

// ---------------------------------------------------------------------------------
// Event stream

/// `GET /api/v1/events`.
/// Event streams open at once in this process, at most: each holds a connection and a
/// subscription; the rest of the descriptors stay for the sources (docs/ACCOUNTS.md).
pub const MAX_EVENT_STREAMS: usize = 64;

static EVENT_STREAMS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_EVENT_STREAMS);

pub(crate) async fn events(State(app): State<App>) -> Response {
    let Ok(permit) = EVENT_STREAMS.try_acquire() else {
        tracing::warn!(
            max = MAX_EVENT_STREAMS,
            "web: too many event streams; refusing one"
        );
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("too many live clients (at most {MAX_EVENT_STREAMS}); try again later"),
        );
    };
    event_stream(app, permit).into_response()
}

fn event_stream(
    app: App,
    permit: tokio::sync::SemaphorePermit<'static>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before the first refresh is built, so no update falls in between.
    let updates = app.shared.updates.subscribe();
    let mut tick = tokio::time::interval_at(Instant::now(), REFRESH_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let st = EventState {
        shared: app.shared,
        updates,
        tick,
        stop: app.stop,
        stop_live: true,
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        let ev = st.next().await?;
        Some((Ok(ev), st))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

struct EventState {
    shared: Shared,
    updates: broadcast::Receiver<Update>,
    tick: Interval,
    stop: watch::Receiver<bool>,
    /// False once the stop sender is gone (no shutdown will ever be signalled).
    stop_live: bool,
    /// This stream's place among [`MAX_EVENT_STREAMS`], given back when it ends.
    _permit: tokio::sync::SemaphorePermit<'static>,
}

impl EventState {
    /// The next event, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            tokio::select! {
                _ = self.tick.tick() => return Some(refresh_event(&self.shared)),
                r = self.updates.recv() => match r {
                    Ok(Update::Device(i)) => {
                        if let Some(ev) = device_event(&self.shared, i) {
                            return Some(ev);
                        }
                        tracing::debug!(index = i, "web: update for an unknown device index");
                    }
                    Ok(Update::Alarms) => return Some(alarms_event(&self.shared)),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "web: live client fell behind; full refresh");
                        self.tick.reset();
                        return Some(refresh_event(&self.shared));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                r = self.stop.changed(), if self.stop_live => {
                    if r.is_err() {
                        self.stop_live = false;
                    }
                }
            }
        }
    }
}

fn refresh_event(shared: &Shared) -> Event {
    let data = {
        let live = shared.read();
        let now = Timestamp::now();
        let all = Filter::default();
        to_json(&RefreshEvent {
            generated_at: now,
            site: &live.site,
            layout: super::page::layout_key(&live),
            readings: all_readings(&live, now, &all),
            alarms: alarms_out(&live.alarms),
        })
    };
    Event::default().event("refresh").data(data)
}

fn device_event(shared: &Shared, index: usize) -> Option<Event> {
    let data = {
        let live = shared.read();
        let d = live.devices.get(index)?;
        let now = Timestamp::now();
        let all = Filter::default();
        to_json(&DeviceEvent {
            generated_at: now,
            device: &d.meta.id,
            comm_ok: d.comm_ok,
            readings: device_readings(d, now, &all, &live.pending).collect(),
        })
    };
    Some(Event::default().event("device").data(data))
}

fn alarms_event(shared: &Shared) -> Event {
    let data = {
        let live = shared.read();
        to_json(&AlarmsEvent {
            generated_at: Timestamp::now(),
            alarms: alarms_out(&live.alarms),
            pending: &live.pending,
        })
    };
    Event::default().event("alarms").data(data)
}

#[cfg(test)]
mod number_tests {
    //! Numbers in the API at the point's resolution, as JSON numbers.
    use std::sync::Arc;

    use super::*;
    use crate::model::{DeviceMeta, Level};
    use crate::points::lookup;
    use crate::state::PointState;

    fn ups(value: f64) -> DeviceState {
        DeviceState {
            meta: Arc::new(DeviceMeta {
                id: Arc::from("ups1"),
                name: "UPS 1".into(),
                label: None,
                room: Arc::from("r1"),
                kind: Kind::Ups,
            }),
            location: None,
            comm_ok: true,
            last_poll: None,
            points: vec![
                PointState {
                    point: lookup(Kind::Ups, "input_voltage_v").unwrap(),
                    value: Some(Value::Number(value)),
                    quality: Quality::Good,
                    ts: Some(Timestamp(1_764_057_600_000)),
                },
                PointState {
                    point: lookup(Kind::Ups, "on_battery").unwrap(),
                    value: Some(Value::Bool(true)),
                    quality: Quality::Good,
                    ts: Some(Timestamp(1_764_057_600_000)),
                },
            ],
        }
    }

    #[test]
    fn readings_carry_numbers_at_the_points_resolution() {
        let d = ups(499.90000000000003);
        let all = Filter::default();
        let now = Timestamp(1_764_057_601_000);
        let json = to_json(&device_readings(&d, now, &all, &[]).collect::<Vec<_>>());
        assert!(json.contains(r#""value":499.9,"#), "{json}");
        assert!(!json.contains("499.90000000000003"), "{json}");
        assert!(json.contains(r#""value":true,"#), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(v[0]["value"].is_number());
    }

    #[test]
    fn alarm_value_and_threshold_at_the_points_resolution() {
        let a = ActiveAlarm {
            shelved_until: None,
            shelved_by: None,
            no: 0,
            acked_by: None,
            acked_at: None,
            cause: None,
            id: "x".into(),
            key: "th1/temperature_high".into(),
            device: "th1".into(),
            kind: Kind::Climate,
            point: "temperature_c",
            rule: "temperature_high".into(),
            level: Level::Serious,
            state: "raised",
            since: Timestamp(0),
            value: Some(Value::Number(5.199999999999999)),
            threshold: Some(0.1 + 0.2),
            message: String::new(),
        };
        let comm = ActiveAlarm {
            point: "comm",
            value: None,
            threshold: Some(3.0000000000000004),
            ..a.clone()
        };
        let json = to_json(&AlarmsBody {
            pending: &[],
            alarms: alarms_out(&[a, comm]),
        });
        assert!(json.contains(r#""value":5.2,"threshold":0.3,"#), "{json}");
        assert!(json.contains(r#""value":null,"threshold":3.0,"#), "{json}");
    }
}
