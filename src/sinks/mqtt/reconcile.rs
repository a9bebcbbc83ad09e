//! After a restart, make the broker's retained alarm states agree with the gateway's:
//! a retained `<prefix>/alarms/active/<device>/<rule>` that this gateway wrote (its
//! `gateway` field is ours, or absent: the first release) and that is no longer listed
//! is emptied. Listed alarms keep their retained message (their events re-publish it on
//! their next transition).
//!
//! It runs once per MQTT sink at start, on its own short connection
//! (`<client_id>-reconcile`): subscribe to `<prefix>/alarms/active/+/+`, take the
//! retained messages the broker sends at once, empty the stale ones (QoS 1, confirmed),
//! disconnect. A broker that is down at start is tried again until it answers.

use std::collections::HashSet;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, PublishOptions, QoS};

use super::config::MqttConfig;

/// How long retained messages are collected after the subscription is granted.
const COLLECT: Duration = Duration::from_millis(1500);

/// Empty the retained alarm states of `cfg`'s broker that this gateway no longer lists.
/// `listed` holds the `device/rule` keys of the listed alarms. Returns the keys emptied.
pub async fn retained_alarms(
    cfg: &MqttConfig,
    gateway: &str,
    listed: &HashSet<String>,
) -> Result<Vec<String>, String> {
    let mut opts = MqttOptions::new(
        format!("{}-reconcile", cfg.client_id),
        (cfg.host.clone(), cfg.port),
    );
    opts.set_keep_alive(10);
    opts.set_clean_session(true);
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        opts.set_credentials(u.clone(), p.clone().into_bytes());
    } else if let Some(u) = &cfg.username {
        opts.set_username(u.clone());
    }
    if cfg.tls {
        let tls = super::connection::tls_config("reconcile", cfg).map_err(|e| e.to_string())?;
        opts.set_transport(rumqttc::Transport::tls_with_config(tls));
    }
    let (client, mut eventloop) = AsyncClient::builder(opts)
        .try_build()
        .map_err(|e| e.to_string())?;
    let prefix = format!("{}/alarms/active/", cfg.prefix);
    let filter = format!("{prefix}+/+");
    let mut stale: Vec<String> = Vec::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, eventloop.poll()).await {
                Ok(e) => e,
                Err(_) => break,
            },
            None => tokio::time::timeout(Duration::from_secs(10), eventloop.poll())
                .await
                .map_err(|_| "no answer from the broker".to_string())?,
        };
        match next.map_err(|e| e.to_string())? {
            Event::Incoming(Packet::ConnAck(_)) => {
                client
                    .subscribe(filter.clone(), QoS::AtLeastOnce)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Event::Incoming(Packet::SubAck(_)) => {
                deadline = Some(tokio::time::Instant::now() + COLLECT);
            }
            Event::Incoming(Packet::Publish(p)) if p.retain && !p.payload.is_empty() => {
                let topic = String::from_utf8_lossy(&p.topic).to_string();
                let Some(key) = topic.strip_prefix(&prefix) else {
                    continue;
                };
                let ours = serde_json::from_slice::<serde_json::Value>(&p.payload)
                    .ok()
                    .map(|v| match v.get("gateway").and_then(|g| g.as_str()) {
                        None | Some("") => true,
                        Some(g) => g == gateway,
                    })
                    .unwrap_or(false);
                if ours && !listed.contains(key) {
                    stale.push(key.to_string());
                }
            }
            _ => {}
        }
    }
    for key in &stale {
        client
            .publish(
                format!("{prefix}{key}"),
                Vec::<u8>::new(),
                PublishOptions::at_least_once().retained(),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    // Let the publishes go out and be confirmed before leaving.
    let mut acks = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while acks < stale.len() {
        match tokio::time::timeout_at(until, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acks += 1,
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    let _ = client.disconnect().await;
    Ok(stale)
}
