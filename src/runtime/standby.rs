//! A standby pair: two gateways for one site, `primary` and `secondary`
//! (`[standby]`, docs/OPERATIONS.md).
//!
//! Each gateway runs a **watcher**: its own MQTT connection to the broker of the first
//! MQTT sink, subscribed to the peer's `<prefix>/gateways/<peer>/status` (retained,
//! `online` / `standby` / `offline`, `offline` being each gateway's last will) and
//! `<prefix>/gateways/<peer>/heartbeat` (published every second by the active gateway's
//! watcher, not retained, its payload the sender's time in ms).
//!
//! - The **primary** is always active: it polls and alarms from its start.
//! - The **secondary** starts in standby: no polling, no rules, no sink — only the
//!   watcher, which publishes its own status `standby` (retained, again every 5 s, its
//!   last will `offline`). It **takes over** (starts the whole runtime: polling of every
//!   device, rules, alarms, sinks) when the peer has been absent for `takeover_s` (N):
//!   its status not `online`, or no heartbeat for N s. It **hands back** (stops the
//!   runtime, back to `standby`) as soon as the peer is `online` with a heartbeat again.
//!
//! Bounds (MQTT has no compare-and-set, so "never two active" cannot be promised):
//! - primary killed (crash, kill -9, power): the broker publishes its will at once (the
//!   TCP connection closes) or misses its heartbeat; the secondary is active after N s
//!   plus its start (≈ 1 s). No overlap.
//! - primary back: it is active from its start; the secondary hands back when it sees
//!   `online` and a heartbeat (within a second), so both poll for at most ≈ 1 s + the
//!   primary's start, well under 2 × N s.
//! - primary cut off from the broker only (it still reaches the devices): the secondary
//!   takes over after N s and **both poll and alarm** until the cut heals; the
//!   primary cannot know. Alarm events carry `gateway`, so consumers see both.
//! - broker down for both: the secondary hears nothing and stays as it is (standby
//!   stays standby: an unreachable broker is not taken as the primary's death); the
//!   primary goes on. Decision: a standby never takes over on silence alone from the
//!   moment it has not had one connection to the broker.
//!
//! RS-485 buses and GPIO cannot be shared between two boards: the secondary's config
//! should list only network devices (Modbus TCP, SNMP); nothing checks this.

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, PublishOptions, QoS};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use crate::config::{Report, Site};

/// Heartbeats of the active gateway, this often.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A gateway's role in a standby pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Always active.
    Primary,
    /// Active only while the primary is absent.
    Secondary,
}

/// `[standby]`: this gateway's part in a standby pair.
#[derive(Debug, Clone, PartialEq)]
pub struct StandbyConfig {
    /// Primary or secondary.
    pub role: Role,
    /// The other gateway's name (its `[site] gateway`).
    pub peer: String,
    /// N: how long the peer must be absent before the secondary takes over.
    pub takeover: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStandby {
    role: Spanned<Role>,
    peer: Spanned<String>,
    #[serde(default)]
    takeover_s: Option<Spanned<u64>>,
}

/// Read `[standby]` (`None` without the table).
pub(crate) fn validate(
    r: &mut Report<'_>,
    table: Option<Spanned<DeValue<'_>>>,
) -> Option<StandbyConfig> {
    let raw: RawStandby = r.parse_value(table?, "standby")?;
    let peer = raw.peer.get_ref().trim().to_string();
    if peer.is_empty() || peer.contains(['/', '+', '#']) {
        r.at(
            raw.peer.span(),
            "standby.peer",
            "the peer's gateway name: letters, digits, '-', '_' and '.'",
        );
        return None;
    }
    let takeover = match &raw.takeover_s {
        None => Duration::from_secs(10),
        Some(t) if (2..=600).contains(t.get_ref()) => Duration::from_secs(*t.get_ref()),
        Some(t) => {
            r.at(
                t.span(),
                "standby.takeover_s",
                "use 2 to 600 seconds (above the heartbeat of 1 s, with room for a lost one)",
            );
            return None;
        }
    };
    let _ = raw.role.span();
    Some(StandbyConfig {
        role: *raw.role.get_ref(),
        peer,
        takeover,
    })
}

/// What the watcher knows of the peer.
#[derive(Debug, Default)]
struct Peer {
    online: bool,
    last_heartbeat: Option<Instant>,
    /// Since when the peer is absent (`None`: present).
    absent_since: Option<Instant>,
}

/// The watcher: its MQTT connection and what it has seen.
pub struct Watcher {
    cfg: StandbyConfig,
    client: AsyncClient,
    my_status: String,
    my_heartbeat: String,
    /// `<prefix>/gateway/status`: the active gateway's.
    site_status: String,
    rx: tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    connected_once: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    peer: Peer,
    started: Instant,
    /// This process: `<host>/<pid>/<start ms>`, sent with every heartbeat.
    instance: String,
    /// Another process heartbeating under this gateway's own name (its instance).
    duplicate: Option<String>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the watcher for `site` (its `[standby]`); `None` without `[standby]`. The
/// broker is the first MQTT sink's.
pub fn start(site: &Site) -> anyhow::Result<Option<Watcher>> {
    let Some(cfg) = site.standby.clone() else {
        return Ok(None);
    };
    let mqtt = site
        .sinks
        .iter()
        .find_map(|s| match &s.config {
            crate::sinks::SinkConfig::Mqtt(c) => Some(c.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "[standby] needs an MQTT sink: the pair watches each other through its broker"
            )
        })?;
    let base = format!("{}/gateways", mqtt.prefix);
    let my_status = format!("{base}/{}/status", site.gateway);
    let my_heartbeat = format!("{base}/{}/heartbeat", site.gateway);
    let mut opts = MqttOptions::new(
        // Its own id per process, so that two gateways sharing a name (a mistake it
        // detects) do not also knock each other's watchers off the broker.
        format!(
            "{}-{}-standby-{}",
            mqtt.client_id,
            site.gateway,
            std::process::id()
        ),
        (mqtt.host.clone(), mqtt.port),
    );
    opts.set_keep_alive(5);
    opts.set_clean_session(true);
    if cfg.role == Role::Secondary {
        opts.set_last_will(LastWill::new(&my_status, "offline", QoS::AtLeastOnce, true));
    }
    match (&mqtt.username, &mqtt.password) {
        (Some(u), Some(p)) => {
            opts.set_credentials(u.clone(), p.clone().into_bytes());
        }
        (Some(u), None) => {
            opts.set_username(u.clone());
        }
        _ => {}
    }
    if mqtt.tls {
        opts.set_transport(rumqttc::Transport::tls_with_config(
            crate::sinks::mqtt::connection::tls_config("standby", &mqtt)?,
        ));
    }
    let (client, mut events) = AsyncClient::builder(opts)
        .try_build()
        .map_err(|e| anyhow::anyhow!("standby watcher: {e}"))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    if cfg.peer == site.gateway.as_ref() {
        anyhow::bail!(
            "[standby] peer = {:?} is this gateway's own name ([site] gateway): each gateway of a pair needs its own name, and peer names the other",
            cfg.peer
        );
    }
    let peer_status = format!("{base}/{}/status", cfg.peer);
    let peer_heartbeat = format!("{base}/{}/heartbeat", cfg.peer);
    let own_heartbeat = my_heartbeat.clone();
    let connected_once = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let task = {
        let client = client.clone();
        let connected_once = connected_once.clone();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected_once.store(true, std::sync::atomic::Ordering::SeqCst);
                        for t in [&peer_status, &peer_heartbeat, &own_heartbeat] {
                            let _ = client.subscribe(t.as_str(), QoS::AtMostOnce).await;
                        }
                        let _ = tx.send((String::new(), Vec::new()));
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((
                            String::from_utf8_lossy(&p.topic).into_owned(),
                            p.payload.to_vec(),
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "standby watcher: broker connection");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        })
    };
    Ok(Some(Watcher {
        cfg,
        client,
        my_status,
        my_heartbeat,
        site_status: format!("{}/gateway/status", mqtt.prefix),
        rx,
        connected_once,
        task,
        peer: Peer::default(),
        started: Instant::now(),
        instance: format!(
            "{}/{}/{}",
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            std::process::id(),
            crate::model::Timestamp::now().millis()
        ),
        duplicate: None,
    }))
}

impl Watcher {
    /// This gateway's role.
    pub fn role(&self) -> Role {
        self.cfg.role
    }

    /// Wait for news from the broker or the next heartbeat tick (at most a second).
    pub async fn next(&mut self) {
        let got = tokio::time::timeout(HEARTBEAT, self.rx.recv()).await;
        if let Ok(Some((topic, payload))) = got {
            let text = String::from_utf8_lossy(&payload);
            if topic == self.my_heartbeat {
                // Our own name: either our own heartbeat coming back, or another
                // gateway configured with this gateway's name.
                let from = text.split_once(' ').map(|(_, i)| i.trim()).unwrap_or("");
                if from != self.instance && self.duplicate.as_deref() != Some(from) {
                    tracing::error!(gateway = %self.my_heartbeat, other = from, "another gateway runs under this gateway's name ([site] gateway): the two knock each other off the broker and their alarms mix; give each its own name");
                    self.duplicate = Some(from.to_string());
                }
            } else if topic.ends_with("/status") {
                self.peer.online = text.trim() == "online";
            } else if topic.ends_with("/heartbeat") {
                self.peer.last_heartbeat = Some(Instant::now());
            }
        }
        let present = self.peer.online
            && self
                .peer
                .last_heartbeat
                .is_some_and(|t| t.elapsed() < self.cfg.takeover);
        if present {
            self.peer.absent_since = None;
        } else if self.peer.absent_since.is_none() {
            // Silence counts from the first connection, not from before it.
            if self
                .connected_once
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                self.peer.absent_since = Some(Instant::now());
            }
        }
    }

    /// Whether this gateway should be active now.
    pub fn should_be_active(&self) -> bool {
        match self.cfg.role {
            Role::Primary => true,
            Role::Secondary => self
                .peer
                .absent_since
                .is_some_and(|t| t.elapsed() >= self.cfg.takeover),
        }
    }

    /// Whether the peer is present (online, heartbeat within N s).
    pub fn peer_present(&self) -> bool {
        self.peer.absent_since.is_none() && self.started.elapsed() > Duration::ZERO
    }

    /// Publish what an active gateway's watcher publishes each tick: a heartbeat, and
    /// every 5 s the site's `<prefix>/gateway/status` = `online` (retained: a standby
    /// that handed back left its last will `offline` there); a standby's: its own
    /// `standby` status (retained) every 5 s.
    pub async fn announce(&self, active: bool, tick: u64) {
        if active {
            let now = format!(
                "{} {}",
                crate::model::Timestamp::now().millis(),
                self.instance
            );
            let _ = self.client.try_publish(
                self.my_heartbeat.as_str(),
                now,
                PublishOptions::at_most_once(),
            );
            if tick.is_multiple_of(5) {
                let _ = self.client.try_publish(
                    self.site_status.as_str(),
                    "online",
                    PublishOptions::at_least_once().retained(),
                );
            }
        } else if tick.is_multiple_of(5) {
            let _ = self.client.try_publish(
                self.my_status.as_str(),
                "standby",
                PublishOptions::at_least_once().retained(),
            );
        }
    }

    /// Another process seen heartbeating under this gateway's own name, if any.
    pub fn duplicate(&self) -> Option<&str> {
        self.duplicate.as_deref()
    }

    /// The peer's name.
    pub fn peer(&self) -> &str {
        &self.cfg.peer
    }

    /// N.
    pub fn takeover(&self) -> Duration {
        self.cfg.takeover
    }
}
