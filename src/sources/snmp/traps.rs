//! The SNMP trap receiver: traps and informs (v1, v2c, v3) from configured agents
//! become immediate [`Poll`]s of the points they speak about, followed by a
//! confirming poll of the agent.
//!
//! What must stay true:
//!
//! - **Only known senders.** A notification is accepted only from the source address
//!   of a configured agent; v1/v2c only with a configured community; v3 only for a
//!   configured user at (at least) that user's security level, and a v3 trap only
//!   when its authoritative snmpEngineID equals the engine ID configured for that
//!   agent (an informs' context engine ID is checked the same way). Everything else
//!   is dropped (an inform is not acknowledged), logged at debug level and counted in
//!   `dcgw_bad_input{what="snmp_trap", reason}`; USM failures the library detects
//!   itself (wrong digest, unknown user, decryption error, ...) are read from its
//!   counters twice a second and counted the same way.
//! - **A trap is news, not truth.** It sets only the points its profile rule names
//!   (plus any varbind that is a polled instance, decoded like a poll), and the
//!   agent's poller is asked for a confirming poll at once.
//! - The receiver never blocks on a slow consumer beyond the bounded channel, and a
//!   malformed datagram never stops it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_snmp::{
    Notification, NotificationAcceptance, NotificationEnvelope, NotificationReceiver,
    SecurityLevel, UsmUser,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::{PrivProto, TrapConfig, V3User, hex};
use super::decode;
use super::poller::{Error, PollTrigger};
use super::profile::{Access, SnmpProfile};
use super::state;
use crate::metrics;
use crate::model::{Device, Poll, Quality, Sample, Timestamp};

/// A configured agent as the trap receiver knows it.
#[derive(Debug, Clone)]
pub struct TrapAgent {
    /// Source address its notifications come from.
    pub source: IpAddr,
    /// Identity for the polls made from its traps.
    pub meta: Device,
    /// Trap rules and OID map.
    pub profile: Arc<SnmpProfile>,
    /// Its snmpEngineID: required to accept its SNMPv3 notifications.
    pub engine_id: Option<Vec<u8>>,
    /// Its poller's trigger, for the confirming poll.
    pub trigger: Option<PollTrigger>,
}

impl TrapAgent {
    /// The trap side of a polled agent: its source address is the agent's address
    /// (resolved once, here, if it is a host name). `None` when it does not resolve.
    pub fn for_agent(
        agent: &super::SnmpAgent,
        engine_id: Option<Vec<u8>>,
        trigger: Option<PollTrigger>,
    ) -> Option<TrapAgent> {
        use std::net::ToSocketAddrs;
        let source = agent.addr.to_socket_addrs().ok()?.next()?.ip();
        Some(TrapAgent {
            source,
            meta: agent.meta.clone(),
            profile: agent.profile.clone(),
            engine_id,
            trigger,
        })
    }
}

/// A running trap receiver. Dropping it stops it.
#[derive(Debug)]
pub struct TrapReceiver {
    /// The bound address (useful when the config asked for port 0).
    pub local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl TrapReceiver {
    /// Stop receiving.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for TrapReceiver {
    fn drop(&mut self) {
        self.abort();
    }
}

fn reject(reason: &'static str) {
    metrics::get()
        .bad_input
        .get_or_create(&metrics::labels(&[
            ("what", "snmp_trap"),
            ("reason", reason),
        ]))
        .inc();
}

fn level_rank(l: SecurityLevel) -> u8 {
    match l {
        SecurityLevel::NoAuthNoPriv => 0,
        SecurityLevel::AuthNoPriv => 1,
        SecurityLevel::AuthPriv => 2,
    }
}

/// Bind the trap listener and start receiving. Fails when the address cannot be bound
/// or a user's keys are not usable.
pub async fn spawn_traps(
    cfg: TrapConfig,
    agents: Vec<TrapAgent>,
    tx: mpsc::Sender<Poll>,
) -> Result<TrapReceiver, Error> {
    let listen = cfg.listen.to_string();
    let fail = |reason: String| Error::Receiver {
        listen: listen.clone(),
        reason,
    };
    let by_ip: Arc<HashMap<IpAddr, TrapAgent>> =
        Arc::new(agents.into_iter().map(|a| (a.source, a)).collect());
    let users: Arc<HashMap<Vec<u8>, V3User>> = Arc::new(
        cfg.users
            .iter()
            .map(|u| (u.name.as_bytes().to_vec(), u.clone()))
            .collect(),
    );
    let communities: Arc<Vec<String>> = Arc::new(cfg.communities.clone());

    let mut b = NotificationReceiver::builder().bind(listen.clone());
    if !cfg.users.is_empty() {
        let engine = state::receiver_engine(cfg.engine_id.as_deref(), cfg.state_dir.as_deref())
            .map_err(|e| fail(e.to_string()))?;
        b = b.authoritative_engine(engine);
        if cfg
            .users
            .iter()
            .any(|u| matches!(u.privacy, Some((PrivProto::Des, _))))
        {
            b = b.des_salt_state(state::des_salt_state().map_err(|e| fail(e.to_string()))?);
        }
        for u in &cfg.users {
            let user = u.clone();
            b = b
                .usm_user(u.name.clone(), move |x: UsmUser| {
                    match (&user.auth, &user.privacy) {
                        (Some((a, ak)), Some((p, pk))) => {
                            x.auth_priv(a.to_snmp(), ak.as_bytes(), p.to_snmp(), pk.as_bytes())
                        }
                        (Some((a, ak)), None) => x.auth(a.to_snmp(), ak.as_bytes()),
                        (None, _) => Ok(x),
                    }
                })
                .map_err(|e| fail(format!("user {}: {e}", u.name)))?;
        }
    }
    let policy = {
        let by_ip = by_ip.clone();
        let users = users.clone();
        let communities = communities.clone();
        move |n: &NotificationEnvelope<'_>| -> NotificationAcceptance {
            let Some(agent) = by_ip.get(&n.source.ip()) else {
                tracing::debug!(source = %n.source, "snmp notification from an unknown source rejected");
                reject("unknown_source");
                return NotificationAcceptance::Reject;
            };
            if let Some(c) = n.community {
                if !communities.iter().any(|x| x.as_bytes() == c.as_bytes()) {
                    tracing::debug!(source = %n.source, device = %agent.meta.id, "snmp notification with a wrong community rejected");
                    reject("bad_community");
                    return NotificationAcceptance::Reject;
                }
                return NotificationAcceptance::Accept;
            }
            let (Some(name), Some(level)) = (n.username, n.security_level) else {
                reject("malformed");
                return NotificationAcceptance::Reject;
            };
            let Some(user) = users.get(name) else {
                reject("unknown_user");
                return NotificationAcceptance::Reject;
            };
            if level_rank(level) < level_rank(user.level()) || level == SecurityLevel::NoAuthNoPriv
            {
                tracing::debug!(source = %n.source, device = %agent.meta.id, "snmp v3 notification below the user's security level rejected");
                reject("security_level");
                return NotificationAcceptance::Reject;
            }
            if n.pdu_class == async_snmp::NotificationPduClass::Inform {
                let ok = match (&agent.engine_id, n.context_engine_id) {
                    (Some(want), Some(got)) => want.as_slice() == got,
                    _ => false,
                };
                if !ok {
                    reject("unknown_engine_id");
                    return NotificationAcceptance::Reject;
                }
            }
            NotificationAcceptance::Accept
        }
    };
    let receiver = b
        .acceptance_policy(policy)
        .build()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let local_addr = receiver.local_addr();
    let receiver = Arc::new(receiver);
    tracing::info!(listen = %local_addr, agents = by_ip.len(), users = cfg.users.len(), communities = cfg.communities.len(), "snmp trap receiver listening");

    let rx_task = {
        let receiver = receiver.clone();
        let by_ip = by_ip.clone();
        tokio::spawn(async move {
            loop {
                match receiver.recv().await {
                    Ok(received) => {
                        let Some(agent) = by_ip.get(&received.source.ip()) else {
                            continue;
                        };
                        if let Some(v3) = &received.wire_identity.v3
                            && !received.notification.is_confirmed()
                            && agent.engine_id.as_deref() != Some(&v3.authoritative_engine_id[..])
                        {
                            tracing::warn!(device = %agent.meta.id, source = %received.source, engine_id = %hex(&v3.authoritative_engine_id), "snmp v3 trap from an engine ID not configured for this device rejected (set engine_id in its [devices.snmp])");
                            reject("unknown_engine_id");
                            continue;
                        }
                        if let Some(poll) = notification_poll(agent, &received.notification)
                            && tx.send(poll).await.is_err()
                        {
                            return;
                        }
                        if let Some(t) = &agent.trigger {
                            t.poll_now();
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "snmp notification dropped");
                        reject("malformed");
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        })
    };
    let stats_task = {
        let receiver = receiver.clone();
        tokio::spawn(async move {
            let mut seen = [0u32; 6];
            let names = [
                "wrong_digest",
                "unknown_user",
                "decryption_error",
                "unknown_engine_id",
                "not_in_time_window",
                "security_level",
            ];
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let now = [
                    receiver.usm_wrong_digests(),
                    receiver.usm_unknown_usernames(),
                    receiver.usm_decryption_errors(),
                    receiver.usm_unknown_engine_ids(),
                    receiver.usm_not_in_time_windows(),
                    receiver.usm_unsupported_sec_levels(),
                ];
                for i in 0..now.len() {
                    let delta = now[i].wrapping_sub(seen[i]);
                    if delta > 0 {
                        tracing::warn!(
                            reason = names[i],
                            count = delta,
                            "snmp v3 notifications failed USM checks (wrong key, user or engine)"
                        );
                        metrics::get()
                            .bad_input
                            .get_or_create(&metrics::labels(&[
                                ("what", "snmp_trap"),
                                ("reason", names[i]),
                            ]))
                            .inc_by(u64::from(delta));
                    }
                }
                seen = now;
            }
        })
    };
    Ok(TrapReceiver {
        local_addr,
        tasks: vec![rx_task, stats_task],
    })
}

/// The poll a notification from `agent` means: the points its matching rules set and
/// the polled instances among its varbinds. `None` when it says nothing we map.
pub fn notification_poll(agent: &TrapAgent, n: &Notification) -> Option<Poll> {
    let trap_oid = n.trap_oid().ok()?;
    let v1 = matches!(n, Notification::TrapV1 { .. });
    let varbinds = n.varbinds();
    let mut samples: Vec<Sample> = Vec::new();
    let mut put = |s: Sample| {
        if let Some(old) = samples.iter_mut().find(|x| std::ptr::eq(x.point, s.point)) {
            *old = s;
        } else {
            samples.push(s);
        }
    };
    for vb in varbinds {
        for p in &agent.profile.points {
            if !p.rate
                && let Access::Get(oid) = &p.access
                && *oid == vb.oid
            {
                let d = decode::decode_value(p, &vb.value);
                if d.quality == Quality::Good {
                    put(Sample {
                        point: p.point,
                        value: d.value,
                        quality: Quality::Good,
                    });
                }
            }
        }
    }
    let mut names = Vec::new();
    for rule in &agent.profile.traps {
        if rule.matches(&trap_oid, v1, varbinds) {
            names.push(rule.name.as_str());
            for (point, value) in &rule.set {
                put(Sample {
                    point,
                    value: Some(value.clone()),
                    quality: Quality::Good,
                });
            }
        }
    }
    if names.is_empty() {
        tracing::debug!(device = %agent.meta.id, trap = %trap_oid, "snmp trap not mapped by the profile");
    } else {
        tracing::info!(device = %agent.meta.id, trap = %trap_oid, rules = ?names, "snmp trap");
    }
    if samples.is_empty() {
        return None;
    }
    Some(Poll {
        device: agent.meta.clone(),
        ts: Timestamp::now(),
        comm_ok: true,
        samples,
    })
}
