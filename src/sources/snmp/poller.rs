//! The SNMP poller: one task per agent, one [`Poll`] per interval (plus one per
//! confirming-poll request from the trap receiver).
//!
//! What must stay true:
//!
//! - **One task per agent.** A dead or slow agent only delays its own task; the
//!   others keep their period (telegraf#3823 is what happens otherwise).
//! - **Exactly one `Poll` per tick, whatever happens**, with a quality per point: a
//!   timeout, a wrong key or a refused request is a quality, never a gap.
//! - **Fixed rate**: ticks come from a tokio interval with [`MissedTickBehavior::Skip`].
//!   A confirming poll ([`PollTrigger::poll_now`]) is extra and does not move the grid.
//! - **Bounded requests**: every request has the agent's `timeout` and `retries`
//!   (async-snmp retransmits); after a timeout or an authentication failure the rest
//!   of the cycle is not sent, its points get the same quality.
//! - **Requests**: scalars in GET requests of up to [`MAX_OIDS_PER_REQUEST`] varbinds
//!   (async-snmp splits a `tooBig` request), table columns with GETBULK (v2c/v3) or
//!   GETNEXT (v1) walks. An SNMPv1 `noSuchName` marks that OID `no_such_object` and
//!   the request is sent again without it.
//! - **Rows found by a walk**: a GET instance answered noSuchInstance/noSuchObject is
//!   looked for once per agent by walking its column (the OID without its last arc);
//!   a row under it (`column.N.0` for `column.N`) is read from then on
//!   ([`state::FoundRows`]; walked for again only if that row disappears), logged
//!   once, and shown by `probe`.
//! - **Credentials are never logged**: only the device id, address, version and user
//!   name appear in log lines.
//!
//! Qualities: no reply → [`Quality::Timeout`]; SNMPv3 authentication or privacy
//! failure (a `usmStatsWrongDigests`/`usmStatsDecryptionErrors`/`usmStatsUnknownUserNames`
//! Report, or a reply that does not verify) → [`Quality::CommError`] with the result
//! label `auth_error`; an error-status in a response → [`Quality::DeviceException`];
//! noSuchObject/noSuchInstance/endOfMibView → [`Quality::NoSuchObject`]. Failures are
//! logged once per change of state and counted in `dcgw_polls{device, result}` (`ok`,
//! `timeout`, `auth_error`, `comm_error`, `device_exception`) and
//! `dcgw_requests{device}`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_snmp::transport::UdpTransport;
use async_snmp::{Auth, Client, ErrorStatus, Oid, Retry, UsmConfig, VarBind, WalkOptions};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::config::{AgentConnection, Credentials, PrivProto};
use super::decode::{self, Decoded, RateState};
use super::profile::{Access, SnmpProfile};
use super::state;
use crate::metrics;
use crate::model::{Device, Poll, Quality, Sample, Value};
use crate::sources::health::Health;
use crate::sources::probe_table::{ProbeTable, column_width, value_cell};

/// Most varbinds in one GET request.
pub const MAX_OIDS_PER_REQUEST: usize = 32;
/// Most rows read from one walked column (a guard against a looping agent).
pub const MAX_WALK_ROWS: usize = 1000;

/// An SNMP agent to poll.
#[derive(Debug, Clone)]
pub struct SnmpAgent {
    /// Identity carried by every poll.
    pub meta: Device,
    /// `host:port` of the agent.
    pub addr: String,
    /// Version and secrets.
    pub credentials: Credentials,
    /// Limit for each request (each try).
    pub timeout: Duration,
    /// Retries after a timed-out request.
    pub retries: u32,
    /// Period between polls.
    pub poll_interval: Duration,
    /// OID map.
    pub profile: Arc<SnmpProfile>,
}

impl SnmpAgent {
    /// An agent from a validated `[devices.snmp]` table and the device's settings.
    pub fn new(
        meta: Device,
        conn: &AgentConnection,
        poll_interval: Duration,
        timeout: Duration,
        profile: Arc<SnmpProfile>,
    ) -> SnmpAgent {
        let addr = if conn.host.contains(':') && !conn.host.starts_with('[') {
            format!("[{}]:{}", conn.host, conn.port)
        } else {
            format!("{}:{}", conn.host, conn.port)
        };
        SnmpAgent {
            meta,
            addr,
            credentials: conn.credentials.clone(),
            timeout,
            retries: conn.retries,
            poll_interval,
            profile,
        }
    }
}

/// Errors of building a client or of a one-off read ([`probe`]); the poller itself
/// turns failures into qualities.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client could not be set up (bad address, name resolution, bad key).
    #[error("device {device} at {addr}: {reason}")]
    Setup {
        /// Device id.
        device: String,
        /// `host:port`.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The trap receiver could not start.
    #[error("SNMP trap receiver on {listen}: {reason}")]
    Receiver {
        /// Listen address.
        listen: String,
        /// What failed.
        reason: String,
    },
}

/// Asks an agent's poller for an immediate extra poll (the trap receiver uses it to
/// confirm what a trap said). Requests made while a poll runs are merged into one.
#[derive(Debug, Clone, Default)]
pub struct PollTrigger(Arc<Notify>);

impl PollTrigger {
    /// A trigger not yet attached to a poller.
    pub fn new() -> PollTrigger {
        PollTrigger::default()
    }

    /// Request a poll now.
    pub fn poll_now(&self) {
        self.0.notify_one();
    }
}

/// A running poller.
#[derive(Debug)]
pub struct AgentTask {
    /// The task; abort it to stop polling.
    pub handle: JoinHandle<()>,
    /// Requests an immediate poll of this agent.
    pub trigger: PollTrigger,
}

/// Start polling an agent. The task runs until the receiver is dropped (or the handle
/// is aborted).
pub fn spawn(agent: SnmpAgent, tx: mpsc::Sender<Poll>) -> AgentTask {
    spawn_at(agent, Duration::ZERO, tx)
}

/// Start polling an agent, the first regular poll `offset` from now (see
/// [`crate::sources::stagger`]); a trap triggers a poll at any time.
pub fn spawn_at(agent: SnmpAgent, offset: Duration, tx: mpsc::Sender<Poll>) -> AgentTask {
    spawn_shared(agent, offset, tx, None)
}

/// As [`spawn_at`], the agent's requests on the gateway's shared sockets when given.
pub fn spawn_shared(
    agent: SnmpAgent,
    offset: Duration,
    tx: mpsc::Sender<Poll>,
    shared: Option<Arc<SharedUdp>>,
) -> AgentTask {
    let trigger = PollTrigger::new();
    let handle = tokio::spawn(run(agent, tx, trigger.clone(), offset, shared));
    AgentTask { handle, trigger }
}

/// Start polling an agent with a trigger made beforehand (so the trap receiver can be
/// given the agents' triggers before the pollers start).
pub fn spawn_with_trigger(
    agent: SnmpAgent,
    tx: mpsc::Sender<Poll>,
    trigger: PollTrigger,
) -> JoinHandle<()> {
    tokio::spawn(run(agent, tx, trigger, Duration::ZERO, None))
}

async fn run(
    agent: SnmpAgent,
    tx: mpsc::Sender<Poll>,
    trigger: PollTrigger,
    offset: Duration,
    shared: Option<Arc<SharedUdp>>,
) {
    let mut poller = Poller::new(agent);
    poller.shared = shared;
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + offset,
        poller.agent.poll_interval,
    );
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tracing::debug!(device = %poller.agent.meta.id, addr = %poller.agent.addr, version = poller.agent.credentials.version(), "snmp poller started");
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = trigger.0.notified() => {
                tracing::debug!(device = %poller.agent.meta.id, "confirming poll requested");
            }
        }
        let poll = poller.cycle().await;
        if tx.send(poll).await.is_err() {
            tracing::debug!(device = %poller.agent.meta.id, "snmp poller stopped: receiver gone");
            return;
        }
    }
}

/// The UDP sockets the agents of one gateway share: one per address family, bound on
/// first use, each with one receive loop and one 64 KiB receive buffer. A client of its
/// own per agent (what [`client`] makes for `probe`) costs a socket, a task and that
/// buffer each: about 90 KiB of memory per agent, measured (docs/BENCHMARKS.md).
/// Replies are told apart by source address and request id, as with one socket each.
#[derive(Default)]
pub struct SharedUdp {
    v4: tokio::sync::OnceCell<UdpTransport>,
    v6: tokio::sync::OnceCell<UdpTransport>,
}

impl SharedUdp {
    /// Sockets not yet bound.
    pub fn new() -> SharedUdp {
        SharedUdp::default()
    }

    async fn transport(&self, v6: bool) -> Result<&UdpTransport, String> {
        let (cell, bind) = if v6 {
            (&self.v6, "[::]:0")
        } else {
            (&self.v4, "0.0.0.0:0")
        };
        cell.get_or_try_init(|| async { UdpTransport::bind(bind).await })
            .await
            .map_err(|e| format!("cannot open the SNMP UDP socket ({bind}): {e}"))
    }
}

/// Whether `host:port` names an IPv6 address literally (`[::1]:161`).
fn ipv6_literal(addr: &str) -> bool {
    addr.parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.is_ipv6())
}

/// Build the async-snmp client of an agent on a socket of its own (no network I/O
/// beyond name resolution).
pub async fn client(agent: &SnmpAgent) -> Result<Client, Error> {
    client_on(agent, None).await
}

/// Build the async-snmp client of an agent, on the gateway's shared sockets when given.
pub async fn client_on(agent: &SnmpAgent, shared: Option<&SharedUdp>) -> Result<Client, Error> {
    let setup = |reason: String| Error::Setup {
        device: agent.meta.id.to_string(),
        addr: agent.addr.clone(),
        reason,
    };
    let mut des = false;
    let auth: Auth = match &agent.credentials {
        Credentials::V1 { community } => Auth::v1(community.as_str()),
        Credentials::V2c { community } => Auth::v2c(community.as_str()),
        Credentials::V3 { user, context } => {
            let cfg = UsmConfig::new(user.name.clone());
            let cfg = match (&user.auth, &user.privacy) {
                (Some((a, ak)), Some((p, pk))) => {
                    des = *p == PrivProto::Des;
                    cfg.auth_priv(a.to_snmp(), ak.as_bytes(), p.to_snmp(), pk.as_bytes())
                }
                (Some((a, ak)), None) => cfg.auth(a.to_snmp(), ak.as_bytes()),
                (None, _) => Ok(cfg),
            }
            .map_err(|e| setup(format!("SNMPv3 user {}: {e}", user.name)))?;
            Auth::from(cfg.context_name(context.clone()))
        }
    };
    let retry = Retry::fixed(agent.retries, Duration::ZERO).map_err(|e| setup(e.to_string()))?;
    let mut b = Client::builder(agent.addr.as_str(), auth)
        .request_timeout(agent.timeout)
        .retry(retry)
        .max_oids_per_request(MAX_OIDS_PER_REQUEST)
        .construction_timeout(agent.timeout.max(Duration::from_millis(500)))
        .walk_options(WalkOptions {
            result_limit: Some(MAX_WALK_ROWS),
            ..WalkOptions::default()
        });
    if des {
        b = b.des_salt_state(state::des_salt_state().map_err(|e| setup(e.to_string()))?);
    }
    if matches!(agent.credentials, Credentials::V3 { .. }) {
        // An agent answers a wrong key with an unauthenticated Report
        // (usmStatsWrongDigests, usmStatsDecryptionErrors, ...). Accepting those
        // Reports turns a wrong key into an immediate, named error instead of a
        // timeout after every retry. Replies must come from the agent's address, so an
        // injected Report has to spoof it; the worst it can do is fail one poll.
        b = b
            .allow_unauthenticated_v3_time_correction(true)
            .strict_source(true);
    }
    let Some(shared) = shared else {
        return b.connect().await.map_err(|e| setup(e.to_string()));
    };
    let v6 = ipv6_literal(&agent.addr);
    let t = shared.transport(v6).await.map_err(setup)?;
    match b.clone().build_with(t).await {
        // A host name with IPv6 addresses only: the other family's socket.
        Err(_) if !v6 && agent.addr.parse::<std::net::SocketAddr>().is_err() => {
            let t6 = shared.transport(true).await.map_err(setup)?;
            b.build_with(t6).await.map_err(|e| setup(e.to_string()))
        }
        r => r.map_err(|e| setup(e.to_string())),
    }
}

/// How a failed request reads: quality, metric result label, detail for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Quality of the points the request was for.
    pub quality: Quality,
    /// `timeout`, `auth_error`, `comm_error` or `device_exception`.
    pub result: &'static str,
    /// What happened, for the log and `probe`.
    pub detail: String,
    /// Whether the rest of the cycle is pointless (timeout, authentication).
    pub fatal: bool,
}

/// Classify an async-snmp error.
pub fn classify(e: &async_snmp::Error, agent: &SnmpAgent) -> Failure {
    use async_snmp::Error as E;
    use async_snmp::v3::ReportStatus as R;
    let auth_fail = |detail: String| Failure {
        quality: Quality::CommError,
        result: "auth_error",
        detail,
        fatal: true,
    };
    let user = match &agent.credentials {
        Credentials::V3 { user, .. } => user.name.as_str(),
        _ => "",
    };
    match e.exchange_source() {
        E::Timeout { .. } => Failure {
            quality: Quality::Timeout,
            result: "timeout",
            detail: format!(
                "no reply within {} ms ({} tries){}",
                agent.timeout.as_millis(),
                agent.retries + 1,
                match agent.credentials {
                    Credentials::V3 { .. } => "",
                    _ => "; a wrong community also looks like this",
                }
            ),
            fatal: true,
        },
        E::Auth { .. } => auth_fail(format!(
            "SNMPv3 authentication failed for user {user:?}: the agent's reply does not verify with the configured auth key"
        )),
        E::Report { status, .. } => match status.as_ref() {
            R::WrongDigest { .. } => auth_fail(format!(
                "SNMPv3 authentication failed for user {user:?}: the agent reports a wrong digest (auth key or auth protocol does not match)"
            )),
            R::DecryptionError { .. } => auth_fail(format!(
                "SNMPv3 decryption failed for user {user:?}: the privacy key or privacy protocol (or AES key extension) does not match the agent's"
            )),
            R::UnknownUserName { .. } => {
                auth_fail(format!("SNMPv3 user {user:?} is unknown to the agent"))
            }
            R::UnsupportedSecurityLevel { .. } => auth_fail(format!(
                "SNMPv3 user {user:?}: the agent does not support this security level for the user"
            )),
            R::NotInTimeWindow { .. } => Failure {
                quality: Quality::CommError,
                result: "comm_error",
                detail: "SNMPv3 message outside the agent's time window".into(),
                fatal: true,
            },
            other => Failure {
                quality: Quality::CommError,
                result: "comm_error",
                detail: format!("SNMPv3 report: {other}"),
                fatal: true,
            },
        },
        E::Snmp { status, oid, .. } => Failure {
            quality: Quality::DeviceException,
            result: "device_exception",
            detail: match oid {
                Some(o) => format!("agent answered {status} for {o}"),
                None => format!("agent answered {status}"),
            },
            fatal: false,
        },
        other => Failure {
            quality: Quality::CommError,
            result: "comm_error",
            detail: other.to_string(),
            fatal: matches!(
                other.kind(),
                async_snmp::ErrorKind::Network | async_snmp::ErrorKind::Closed
            ),
        },
    }
}

/// The raw values of one cycle.
#[derive(Debug, Default)]
pub struct Reading {
    /// GET instances → values (exceptions included).
    pub gets: HashMap<Oid, async_snmp::Value>,
    /// Failure of the GET requests, if any.
    pub get_failure: Option<Failure>,
    /// Walked columns → rows in index order, or the failure of that walk.
    pub columns: HashMap<Oid, Result<Vec<VarBind>, Failure>>,
    /// Whether any request returned data.
    pub any_data: bool,
    /// The first failure of the cycle.
    pub first_failure: Option<Failure>,
    /// Requests sent.
    pub requests: u32,
    /// Profile OIDs read elsewhere on this agent: `(profile's OID, OID read)`.
    pub relocated: Vec<(Oid, Oid)>,
}

/// Read every OID of a profile once; `found` is what earlier reads of this agent
/// learned about where its rows live, and learns more.
pub async fn read(client: &Client, agent: &SnmpAgent, found: &mut state::FoundRows) -> Reading {
    let profile = &agent.profile;
    let mut r = Reading::default();
    let wanted = profile.get_oids();
    // What is asked → what the profile names, for rows found by an earlier walk.
    let mut asked_for: HashMap<Oid, Oid> = HashMap::new();
    let mut oids: Vec<Oid> = Vec::with_capacity(wanted.len());
    for w in &wanted {
        let at = found.resolve(w).clone();
        if at != *w {
            r.relocated.push((w.clone(), at.clone()));
            asked_for.insert(at.clone(), w.clone());
        }
        oids.push(at);
    }
    let back = |o: Oid| asked_for.get(&o).cloned().unwrap_or(o);
    // GETs. SNMPv1 refuses a whole request for one unknown OID (noSuchName); take
    // that OID out and ask again.
    let mut tries = 0;
    while !oids.is_empty() && tries <= oids.len() {
        tries += 1;
        r.requests += oids.len().div_ceil(MAX_OIDS_PER_REQUEST) as u32;
        match client.get_many(&oids).await {
            Ok(resp) => {
                r.any_data = true;
                for vb in resp.varbinds {
                    r.gets.insert(back(vb.oid), vb.value);
                }
                break;
            }
            Err(e) => {
                if let async_snmp::Error::Snmp {
                    status: ErrorStatus::NoSuchName,
                    oid: Some(bad),
                    ..
                } = e.exchange_source()
                    && let Some(i) = oids.iter().position(|o| o == bad.as_ref())
                {
                    r.any_data = true;
                    r.gets
                        .insert(back(oids.remove(i)), async_snmp::Value::NoSuchObject);
                    continue;
                }
                let f = classify(&e, agent);
                r.first_failure.get_or_insert(f.clone());
                r.get_failure = Some(f);
                break;
            }
        }
    }
    let fatal = r.get_failure.as_ref().is_some_and(|f| f.fatal);
    if !fatal {
        find_rows_by_walk(client, agent, &wanted, found, &mut r).await;
    }
    for column in profile.walk_columns() {
        if fatal || r.columns.values().any(|c| matches!(c, Err(f) if f.fatal)) {
            let f = r.first_failure.clone().unwrap_or(Failure {
                quality: Quality::CommError,
                result: "comm_error",
                detail: "not read".into(),
                fatal: true,
            });
            r.columns.insert(column, Err(f));
            continue;
        }
        r.requests += 1;
        let rows = match client.walk(column.clone()) {
            Ok(stream) => stream.collect().await,
            Err(e) => Err(e),
        };
        match rows {
            Ok(rows) => {
                r.any_data = true;
                r.columns.insert(column, Ok(rows));
            }
            Err(e) => {
                let f = classify(&e, agent);
                r.first_failure.get_or_insert(f.clone());
                r.columns.insert(column, Err(f));
            }
        }
    }
    r
}

/// The walk fallback (module docs): for each profile OID the GET answered with
/// noSuchInstance/noSuchObject and not yet walked for, walk its column once and read
/// the first row under it.
async fn find_rows_by_walk(
    client: &Client,
    agent: &SnmpAgent,
    wanted: &[Oid],
    found: &mut state::FoundRows,
    r: &mut Reading,
) {
    let mut walked: HashMap<Oid, Vec<VarBind>> = HashMap::new();
    for w in wanted {
        let missing = matches!(
            r.gets.get(w),
            Some(async_snmp::Value::NoSuchInstance | async_snmp::Value::NoSuchObject)
        );
        if missing && found.resolve(w) != w {
            // The row found earlier is gone (the card re-indexed): look again.
            found.forget(w);
            r.relocated.retain(|(p, _)| p != w);
        }
        if !missing || found.walked(w) || w.arcs().len() < 3 {
            continue;
        }
        let column = Oid::new(w.arcs()[..w.arcs().len() - 1].to_vec());
        if !walked.contains_key(&column) {
            r.requests += 1;
            let rows = match client.walk(column.clone()) {
                Ok(stream) => stream.collect().await,
                Err(e) => Err(e),
            };
            match rows {
                Ok(rows) => {
                    walked.insert(column.clone(), rows);
                }
                // Not remembered: the next poll tries again.
                Err(e) => {
                    let f = classify(&e, agent);
                    tracing::debug!(device = %agent.meta.id, column = %column, error = %f.detail, "walk for a missing row failed");
                    if f.fatal {
                        return;
                    }
                    continue;
                }
            }
        }
        let row = walked.get(&column).and_then(|rows| {
            rows.iter()
                .find(|vb| vb.oid.starts_with(w) && vb.oid.arcs().len() > w.arcs().len())
        });
        match row {
            Some(vb) => {
                tracing::info!(device = %agent.meta.id, profile_oid = %w, found = %vb.oid, "GET answered no such instance; a walk found the row: reading it there from now on");
                r.relocated.push((w.clone(), vb.oid.clone()));
                r.gets.insert(w.clone(), vb.value.clone());
                found.remember(w.clone(), Some(vb.oid.clone()));
            }
            None => found.remember(w.clone(), None),
        }
    }
}

/// An agent silently drops a request it cannot decrypt (net-snmp does, so a wrong
/// privacy key looks like a dead agent). When an authPriv request timed out, ask for
/// the engine ID (an unauthenticated exchange): if the agent answers that, it is alive
/// and the failure is the privacy key, protocol or AES key extension.
pub async fn diagnose_v3_timeout(client: &Client, agent: &SnmpAgent, r: &mut Reading) {
    let Credentials::V3 { user, .. } = &agent.credentials else {
        return;
    };
    if user.privacy.is_none()
        || r.any_data
        || r.first_failure
            .as_ref()
            .is_none_or(|f| f.result != "timeout")
    {
        return;
    }
    r.requests += 1;
    let limit = agent.timeout.saturating_mul(agent.retries + 1);
    if let Ok(Ok(())) = tokio::time::timeout(limit, client.rediscover_engine()).await {
        let f = Failure {
            quality: Quality::CommError,
            result: "auth_error",
            detail: format!(
                "SNMPv3 user {:?}: the agent answers engine discovery but not our authPriv requests: the privacy key or privacy protocol (or AES key extension) does not match the agent's",
                user.name
            ),
            fatal: true,
        };
        let replace = |x: &mut Failure| {
            if x.result == "timeout" {
                *x = f.clone();
            }
        };
        if let Some(x) = r.first_failure.as_mut() {
            replace(x);
        }
        if let Some(x) = r.get_failure.as_mut() {
            replace(x);
        }
        for c in r.columns.values_mut() {
            if let Err(x) = c {
                replace(x);
            }
        }
    }
}

/// Decode every point of the profile from a reading. `rates` holds one state per
/// point (same order as the profile), for `rate = true` points.
pub fn decode_reading(
    agent: &SnmpAgent,
    r: &Reading,
    rates: &mut [RateState],
    now: Instant,
) -> Vec<Decoded> {
    let profile = &agent.profile;
    profile
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| match &p.access {
            Access::Get(oid) => match (&r.get_failure, r.gets.get(oid)) {
                (_, Some(v)) if p.rate => match decode::raw_number(v) {
                    Ok(raw) => match rates.get_mut(i) {
                        Some(st) => st.update(p, raw, now),
                        None => decode::decode_value(p, v),
                    },
                    Err((q, note)) => Decoded {
                        value: None,
                        quality: q,
                        note: Some(note),
                    },
                },
                (_, Some(v)) => decode::decode_value(p, v),
                (Some(f), None) => Decoded {
                    value: None,
                    quality: f.quality,
                    note: Some(f.detail.clone()),
                },
                (None, None) => Decoded {
                    value: None,
                    quality: Quality::CommError,
                    note: Some(format!("{oid} missing in the reply")),
                },
            },
            Access::Walk {
                column,
                aggregate,
                rows: filter,
            } => match (
                r.columns.get(column),
                filter.as_ref().map(|f| (f, r.columns.get(&f.column))),
            ) {
                (Some(Ok(rows)), None) => {
                    let vals: Vec<&async_snmp::Value> = rows.iter().map(|vb| &vb.value).collect();
                    decode::decode_column(p, aggregate, &vals)
                }
                (Some(Ok(rows)), Some((f, Some(Ok(named_by))))) => {
                    let vals = decode::rows_where(column, rows, f, named_by);
                    decode::decode_column(p, aggregate, &vals)
                }
                (Some(Ok(_)), Some((_, Some(Err(f))))) | (Some(Err(f)), _) => Decoded {
                    value: None,
                    quality: f.quality,
                    note: Some(f.detail.clone()),
                },
                _ => Decoded {
                    value: None,
                    quality: Quality::CommError,
                    note: Some("not read".into()),
                },
            },
        })
        .collect()
}

struct Poller {
    agent: SnmpAgent,
    client: Option<Client>,
    /// The gateway's shared sockets (`None`: a socket of its own).
    shared: Option<Arc<SharedUdp>>,
    rates: Vec<RateState>,
    found: state::FoundRows,
    health: Health,
    labels: metrics::Labels,
}

impl Poller {
    fn new(agent: SnmpAgent) -> Poller {
        let labels = metrics::labels(&[("device", &agent.meta.id)]);
        let rates = vec![RateState::default(); agent.profile.points.len()];
        let health = Health::new(
            agent.meta.clone(),
            "snmp agent",
            format!("{} {}", agent.addr, agent.credentials.version()),
        );
        Poller {
            agent,
            client: None,
            shared: None,
            rates,
            found: state::FoundRows::default(),
            health,
            labels,
        }
    }

    /// One poll of every OID; never fails, never panics.
    async fn cycle(&mut self) -> Poll {
        if self.client.is_none() {
            match client_on(&self.agent, self.shared.as_deref()).await {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    let f = Failure {
                        quality: Quality::CommError,
                        result: "comm_error",
                        detail: e.to_string(),
                        fatal: true,
                    };
                    return self.finish(None, Some(f));
                }
            }
        }
        let Some(client) = self.client.clone() else {
            return self.finish(None, None);
        };
        let mut reading = read(&client, &self.agent, &mut self.found).await;
        let timed_out_before = self.health.last_failure() == Some("timeout");
        if !timed_out_before {
            diagnose_v3_timeout(&client, &self.agent, &mut reading).await;
        }
        metrics::get()
            .requests
            .get_or_create(&self.labels)
            .inc_by(u64::from(reading.requests));
        let failure = reading.first_failure.clone();
        self.finish(Some(reading), failure)
    }

    fn finish(&mut self, reading: Option<Reading>, failure: Option<Failure>) -> Poll {
        let now = Instant::now();
        let (samples, comm_ok) = match &reading {
            Some(r) => {
                let decoded = decode_reading(&self.agent, r, &mut self.rates, now);
                let samples = self
                    .agent
                    .profile
                    .points
                    .iter()
                    .zip(decoded)
                    .map(|(p, d)| Sample {
                        point: p.point,
                        value: if d.quality == Quality::Good {
                            d.value
                        } else {
                            None
                        },
                        quality: d.quality,
                    })
                    .collect();
                (samples, r.any_data)
            }
            None => {
                let q = failure
                    .as_ref()
                    .map(|f| f.quality)
                    .unwrap_or(Quality::CommError);
                let samples = self
                    .agent
                    .profile
                    .points
                    .iter()
                    .map(|p| Sample {
                        point: p.point,
                        value: None,
                        quality: q,
                    })
                    .collect();
                (samples, false)
            }
        };
        self.health
            .finish(samples, comm_ok, failure.map(|f| (f.result, f.detail)))
    }
}

/// One point as [`probe`] saw it.
#[derive(Debug, Clone)]
pub struct ProbePoint {
    /// Canonical point name.
    pub point: &'static str,
    /// Unit of the value.
    pub unit: &'static str,
    /// OID read (`walk <column>` for tables).
    pub oid: String,
    /// Raw values as received (`INTEGER 2`, rows of a column).
    pub raw: Vec<String>,
    /// Decoded value (also shown when out of range).
    pub value: Option<Value>,
    /// Quality.
    pub quality: Quality,
    /// Why the quality is not good.
    pub note: Option<String>,
}

/// The result of reading an agent once.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Device id.
    pub device: String,
    /// `host:port`.
    pub addr: String,
    /// `v1`, `v2c` or `v3`.
    pub version: &'static str,
    /// Profile id.
    pub profile: String,
    /// Requests sent.
    pub requests: u32,
    /// Every mapped point, in profile order.
    pub points: Vec<ProbePoint>,
}

impl fmt::Display for ProbeReport {
    /// A table for the terminal: point, OID, raw value, decoded value, quality.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "device {} at {} snmp {} (profile {}), {} requests",
            self.device, self.addr, self.version, self.profile, self.requests
        )?;
        let table = ProbeTable::new(self.points.iter().map(|p| p.point));
        let wo = column_width("oid", self.points.iter().map(|p| p.oid.len()));
        table.header(f, format_args!("{:wo$}  {:24}", "oid", "raw"))?;
        for p in &self.points {
            let raw = if p.raw.is_empty() {
                "-".to_string()
            } else {
                p.raw.join(", ")
            };
            table.row(
                f,
                p.point,
                format_args!("{:wo$}  {:24}", p.oid, raw),
                &value_cell(p.value.as_ref(), p.unit),
                p.quality,
                p.note.as_deref(),
            )?;
        }
        Ok(())
    }
}

/// Read every point of an agent once and report raw and decoded values (the
/// `dc-gateway probe` command). Only a client that cannot be set up is an error; a
/// failed read shows in the points' quality and note.
pub async fn probe(agent: &SnmpAgent) -> Result<ProbeReport, Error> {
    let c = client(agent).await?;
    let mut reading = read(&c, agent, &mut state::FoundRows::default()).await;
    diagnose_v3_timeout(&c, agent, &mut reading).await;
    let mut rates = vec![RateState::default(); agent.profile.points.len()];
    let decoded = decode_reading(agent, &reading, &mut rates, Instant::now());
    let points = agent
        .profile
        .points
        .iter()
        .zip(decoded)
        .map(|(p, d)| {
            let (oid, raw) = match &p.access {
                Access::Get(o) => (
                    match reading.relocated.iter().find(|(w, _)| w == o) {
                        Some((_, at)) => format!("{at} (walk; profile {o})"),
                        None => o.to_string(),
                    },
                    reading
                        .gets
                        .get(o)
                        .map(|v| vec![decode::raw_text(v)])
                        .unwrap_or_default(),
                ),
                Access::Walk {
                    column,
                    aggregate,
                    rows,
                } => (
                    match rows {
                        None => format!("walk {column} ({})", aggregate.as_str()),
                        Some(f) => format!(
                            "walk {column} where {} = {} ({})",
                            f.column,
                            f.equals,
                            aggregate.as_str()
                        ),
                    },
                    match reading.columns.get(column) {
                        Some(Ok(rows)) => {
                            rows.iter().map(|vb| decode::raw_text(&vb.value)).collect()
                        }
                        _ => Vec::new(),
                    },
                ),
            };
            ProbePoint {
                point: p.point.name,
                unit: p.point.unit,
                oid,
                raw,
                value: d.value,
                quality: d.quality,
                note: d.note,
            }
        })
        .collect();
    Ok(ProbeReport {
        device: agent.meta.id.to_string(),
        addr: agent.addr.clone(),
        version: agent.credentials.version(),
        profile: agent.profile.id.clone(),
        requests: reading.requests,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceMeta, Kind};
    use crate::sources::snmp::profile::{parse_profile, shipped_profiles};

    fn agent(addr: &str, interval_ms: u64) -> SnmpAgent {
        let (file, text) = shipped_profiles()[0];
        SnmpAgent {
            meta: Arc::new(DeviceMeta {
                id: "u1".into(),
                name: "u1".into(),
                label: None,
                room: "r".into(),
                kind: Kind::Ups,
            }),
            addr: addr.into(),
            credentials: Credentials::V2c {
                community: "secret-community".into(),
            },
            timeout: Duration::from_millis(100),
            retries: 0,
            poll_interval: Duration::from_millis(interval_ms),
            profile: Arc::new(parse_profile(text, file).unwrap()),
        }
    }

    #[tokio::test]
    async fn silent_agent_still_emits_a_poll_per_tick_with_timeout_quality() {
        // A bound UDP socket that never answers.
        let sink = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sink.local_addr().unwrap().to_string();
        let (tx, mut rx) = mpsc::channel(16);
        let task = spawn(agent(&addr, 150), tx);
        for _ in 0..3 {
            let poll = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(!poll.comm_ok);
            assert!(
                poll.samples
                    .iter()
                    .all(|s| s.quality == Quality::Timeout && s.value.is_none()),
                "{poll:?}"
            );
        }
        task.handle.abort();
    }

    #[test]
    fn debug_of_an_agent_hides_the_community() {
        let a = agent("127.0.0.1:161", 1000);
        assert!(!format!("{a:?}").contains("secret-community"));
    }

    #[test]
    fn probe_report_prints_a_table() {
        let r = ProbeReport {
            device: "u1".into(),
            addr: "127.0.0.1:161".into(),
            version: "v3",
            profile: "ups-mib".into(),
            requests: 2,
            points: vec![ProbePoint {
                point: "runtime_remaining_s",
                unit: "s",
                oid: "1.3.6.1.2.1.33.1.2.3.0".into(),
                raw: vec!["INTEGER 42".into()],
                value: Some(Value::Number(2520.0)),
                quality: Quality::Good,
                note: None,
            }],
        };
        let s = r.to_string();
        assert!(
            s.contains("INTEGER 42") && s.contains("2520 s") && s.contains("good"),
            "{s}"
        );
    }
}
