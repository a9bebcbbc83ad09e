//! The independent subscribers: one MQTT client on `#` that counts readings per
//! contender (by first topic level, see [`Contender::prefix`]) in one-second bins, and
//! one on `+/alarms/#` only, like an alarm consumer, that hands alarm messages to the
//! latency measurement with their receive time. Apart, so an alarm never waits in the
//! measuring client behind the thousands of readings of the same second (the broker
//! keeps order per connection).
//!
//! Only live messages count: the broker marks what it replays from its retained store
//! to a new subscription with the RETAIN flag (MQTT 3.1.1 §3.3.1.3) and clears it on
//! messages forwarded to an existing subscription, so readings retained by an earlier
//! run are never counted for a later one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::mpsc;

use super::args::Contender;

/// An alarm message as received.
#[derive(Debug, Clone)]
pub struct AlarmMsg {
    /// Receive time, ms since the epoch (the machine's clock, like the simulator's).
    pub recv_ms: i64,
    /// Topic.
    pub topic: String,
    /// Payload as text.
    pub payload: String,
}

#[derive(Default)]
struct Counts {
    /// Per prefix: messages per second since `epoch`.
    bins: HashMap<&'static str, Vec<u64>>,
    total: HashMap<&'static str, u64>,
}

/// Handle to the running subscriber.
#[derive(Clone)]
pub struct Subscriber {
    epoch: Instant,
    counts: Arc<Mutex<Counts>>,
    /// SUBACKs received (both clients subscribed: 2).
    ready: Arc<std::sync::atomic::AtomicUsize>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Subscriber {
    /// Connect to the broker on `127.0.0.1:port` and start counting; alarm messages go
    /// to `alarms`.
    pub fn start(port: u16, alarms: mpsc::UnboundedSender<AlarmMsg>) -> Subscriber {
        let sub = Subscriber {
            epoch: Instant::now(),
            counts: Arc::default(),
            ready: Arc::default(),
            stopping: Arc::default(),
        };
        let prefixes: Vec<&'static str> = Contender::ALL.iter().map(|c| c.prefix()).collect();
        let me = sub.clone();
        sub.client(
            port,
            "bench-counter",
            "#",
            move |topic, _payload, _recv_ms| {
                let mut levels = topic.split('/');
                let first = levels.next().unwrap_or("");
                let second = levels.next().unwrap_or("");
                if second.starts_with("dev")
                    && let Some(prefix) = prefixes.iter().find(|x| **x == first)
                {
                    me.count(prefix);
                }
            },
        );
        sub.client(
            port,
            "bench-alarms",
            "+/alarms/#",
            move |topic, payload, recv_ms| {
                let _ = alarms.send(AlarmMsg {
                    recv_ms,
                    topic: topic.to_string(),
                    payload: String::from_utf8_lossy(payload).into_owned(),
                });
            },
        );
        sub
    }

    /// One client: subscribe to `filter` (again after every reconnect) and hand each
    /// live message to `on_msg(topic, payload, receive time in ms)`.
    fn client(
        &self,
        port: u16,
        id: &str,
        filter: &'static str,
        mut on_msg: impl FnMut(&str, &[u8], i64) + Send + 'static,
    ) {
        let mut opts = MqttOptions::new(id, ("127.0.0.1", port));
        opts.set_keep_alive(30);
        opts.set_clean_session(true);
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = match AsyncClient::builder(opts).try_build() {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("  {id}: invalid options: {e}");
                return;
            }
        };
        let mut net = events.network_options();
        net.set_tcp_nodelay(true);
        events.set_network_options(net);
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        if let Err(e) = client.subscribe(filter, QoS::AtMostOnce).await {
                            eprintln!("  {id}: cannot subscribe: {e}");
                        }
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        me.ready.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        if p.retain {
                            continue;
                        }
                        let recv_ms = dc_gateway::model::Timestamp::now().millis();
                        on_msg(&String::from_utf8_lossy(&p.topic), &p.payload, recv_ms);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if me.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                        eprintln!("  {id}: {e}; reconnecting");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
    }

    fn count(&self, prefix: &'static str) {
        let sec = self.epoch.elapsed().as_secs() as usize;
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let bins = c.bins.entry(prefix).or_default();
        if bins.len() <= sec {
            bins.resize(sec + 1, 0);
        }
        bins[sec] += 1;
        *c.total.entry(prefix).or_default() += 1;
    }

    /// The broker is about to stop: end quietly.
    pub fn stop(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether both subscriptions are in place.
    pub fn ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::SeqCst) >= 2
    }

    /// Readings counted so far for a contender.
    pub fn total(&self, c: Contender) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total.get(c.prefix()).copied().unwrap_or(0)
    }

    /// Seconds since the subscriber started (the bins' clock).
    pub fn now_s(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Per-second counts of the whole seconds inside `[from_s, to_s)`.
    pub fn bins(&self, c: Contender, from_s: f64, to_s: f64) -> Vec<u64> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(bins) = counts.bins.get(c.prefix()) else {
            return Vec::new();
        };
        let first = from_s.ceil() as usize;
        let last = to_s.floor() as usize; // exclusive
        (first..last)
            .map(|s| bins.get(s).copied().unwrap_or(0))
            .collect()
    }
}
