//! Mosquitto broker and `mosquitto_sub` subscriber, the third-party MQTT ground truth.
//!
//! The broker runs on a free loopback port with its config, password file, TLS files and
//! persistence dir in a temp dir (0755/0644, and 0777 for the persistence dir, because
//! mosquitto started as root drops to user `mosquitto`). TLS uses a throwaway CA made
//! with `openssl` and a server certificate for `IP:127.0.0.1` signed by it (a server
//! certificate that is its own CA is refused by rustls/webpki as `CaUsedAsEndEntity`).
//!
//! `MqttSubscriber` runs `stdbuf -oL mosquitto_sub -d -F 'MSG %r %q %x %t'`: the payload is printed
//! in hex so any bytes (newlines, empty payloads) survive, and the `-d` debug lines tell
//! when the subscription is acknowledged (start returns only after SUBACK) and whether
//! the broker accepted the credentials (CONNACK code).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::process::{PeerProcess, Restartable, StartFailure, start_with_retry};
use super::{
    PeerError, START_TIMEOUT, chmod, free_port, peer_tempdir, require_bin, tcp_accepts, write_file,
};

const INSTALL: &str = "apt-get install -y --no-install-recommends mosquitto mosquitto-clients";

/// How the broker is set up.
#[derive(Debug, Clone, Default)]
pub struct MosquittoOpts {
    /// Serve MQTT over TLS (the only listener then speaks TLS); see [`Mosquitto::ca_file`].
    pub tls: bool,
    /// Users and passwords. Non-empty → anonymous clients are refused.
    pub users: Vec<(String, String)>,
    /// Keep sessions, subscriptions and queued QoS 1 messages across
    /// [`Mosquitto::stop`]/[`Mosquitto::start_again`].
    pub persistence: bool,
}

/// A running Mosquitto broker on `127.0.0.1:port`. Dropping it kills it.
pub struct Mosquitto {
    /// The listener port (TLS when `opts.tls`).
    pub port: u16,
    opts: MosquittoOpts,
    proc: Restartable,
    // Last: removed after the process is gone.
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts a broker; panics with the install command when mosquitto is missing, or
    /// with the broker log when it does not come up.
    pub fn start(opts: MosquittoOpts) -> Mosquitto {
        let bin = require_bin("mosquitto", INSTALL);
        let dir = peer_tempdir("mosquitto");
        let d = dir.path();
        if !opts.users.is_empty() {
            let passwd_bin = require_bin("mosquitto_passwd", INSTALL);
            let file = d.join("passwd");
            for (i, (user, pass)) in opts.users.iter().enumerate() {
                let mut cmd = Command::new(&passwd_bin);
                if i == 0 {
                    cmd.arg("-c");
                }
                let out = cmd
                    .arg("-b")
                    .arg(&file)
                    .args([user, pass])
                    .output()
                    .unwrap_or_else(|e| panic!("mosquitto_passwd: {e}"));
                assert!(
                    out.status.success(),
                    "mosquitto_passwd {user}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            chmod(&file, 0o644);
        }
        if opts.tls {
            make_tls_files(d);
        }
        if opts.persistence {
            let data = d.join("data");
            std::fs::create_dir(&data).unwrap_or_else(|e| panic!("mkdir {}: {e}", data.display()));
            chmod(&data, 0o777);
        }
        let mut broker = Mosquitto {
            port: 0,
            opts,
            proc: Restartable::stopped("mosquitto"),
            dir,
        };
        let (port, proc) = start_with_retry("mosquitto", || {
            let port = free_port();
            broker.write_config(port);
            broker.spawn(&bin, port).map(|p| (port, p))
        });
        broker.port = port;
        broker.proc.started(proc);
        broker
    }

    fn write_config(&self, port: u16) {
        let d = self.dir.path();
        let mut conf = format!(
            "per_listener_settings true\nlistener {port} 127.0.0.1\nallow_anonymous {}\n",
            self.opts.users.is_empty()
        );
        if !self.opts.users.is_empty() {
            conf.push_str(&format!("password_file {}\n", d.join("passwd").display()));
        }
        if self.opts.tls {
            conf.push_str(&format!(
                "certfile {}\nkeyfile {}\n",
                d.join("server.pem").display(),
                d.join("server.key").display()
            ));
        }
        if self.opts.persistence {
            conf.push_str(&format!(
                "persistence true\npersistence_location {}/\nautosave_interval 1\n",
                d.join("data").display()
            ));
        } else {
            conf.push_str("persistence false\n");
        }
        conf.push_str("log_dest stderr\nlog_type all\nconnection_messages true\n");
        write_file(&d.join("mosquitto.conf"), conf);
    }

    fn spawn(&self, bin: &PathBuf, port: u16) -> Result<PeerProcess, StartFailure> {
        let d = self.dir.path();
        let mut cmd = Command::new(bin);
        cmd.arg("-c").arg(d.join("mosquitto.conf"));
        let mut proc = PeerProcess::spawn("mosquitto", &mut cmd, &d.join("mosquitto.log"), false);
        proc.wait_ready(START_TIMEOUT, |log| {
            log.contains(" running") && tcp_accepts(port)
        })?;
        Ok(proc)
    }

    /// The CA certificate that signed the broker's certificate (PEM). Panics unless
    /// started with `tls: true`.
    pub fn ca_file(&self) -> PathBuf {
        assert!(
            self.opts.tls,
            "Mosquitto::ca_file: broker was started without tls"
        );
        self.dir.path().join("ca.pem")
    }

    /// `mqtt://127.0.0.1:port` or `mqtts://127.0.0.1:port`, without credentials.
    pub fn url(&self) -> String {
        let scheme = if self.opts.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// [`Mosquitto::url`] with `user:pass@` (percent-encoded).
    pub fn url_with_user(&self, user: &str, pass: &str) -> String {
        let scheme = if self.opts.tls { "mqtts" } else { "mqtt" };
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        format!(
            "{scheme}://{}:{}@127.0.0.1:{}",
            enc(user),
            enc(pass),
            self.port
        )
    }

    /// The options it was started with.
    pub fn opts(&self) -> &MosquittoOpts {
        &self.opts
    }

    /// Subscriber options for this broker: its port, its CA (with TLS) and its first
    /// user (if any), QoS 1, clean session.
    pub fn sub_opts(&self, filter: &str) -> SubOpts {
        let mut o = SubOpts::new(self.port, filter);
        o.user = self.opts.users.first().cloned();
        if self.opts.tls {
            o.cafile = Some(self.ca_file());
        }
        o
    }

    /// Starts a `mosquitto_sub` on `filter` with [`Mosquitto::sub_opts`]; returns once
    /// the broker acknowledged the subscription.
    pub fn subscribe(&self, filter: &str) -> MqttSubscriber {
        MqttSubscriber::start(self.sub_opts(filter))
    }

    /// Publishes with `mosquitto_pub` at QoS 1 as the first user (if any); panics on
    /// failure.
    pub fn publish(&self, topic: &str, payload: &str, retain: bool) {
        if let Err(e) = self.try_publish(topic, payload, retain) {
            panic!("{e}");
        }
    }

    /// Like [`Mosquitto::publish`], returning the failure instead.
    pub fn try_publish(&self, topic: &str, payload: &str, retain: bool) -> Result<(), PeerError> {
        let bin = require_bin("mosquitto_pub", INSTALL);
        let mut cmd = Command::new(bin);
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
        ]);
        if payload.is_empty() {
            cmd.arg("-n");
        } else {
            cmd.args(["-m", payload]);
        }
        if retain {
            cmd.arg("-r");
        }
        if let Some((u, p)) = self.opts.users.first() {
            cmd.args(["-u", u, "-P", p]);
        }
        if self.opts.tls {
            cmd.arg("--cafile").arg(self.ca_file());
        }
        let out = cmd.output().map_err(|e| PeerError::Peer {
            peer: "mosquitto_pub".into(),
            reason: e.to_string(),
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PeerError::Peer {
                peer: "mosquitto_pub".into(),
                reason: format!(
                    "publish to {topic} on port {} failed ({}): {}",
                    self.port,
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
            })
        }
    }

    /// True while the broker process runs.
    pub fn is_running(&mut self) -> bool {
        self.proc.get_mut().is_some_and(|p| p.exited().is_none())
    }

    /// Stops the broker with SIGTERM (it saves its persistence file), waiting for it.
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(10));
    }

    /// Kills the broker with SIGKILL (no clean shutdown; with persistence, what was
    /// autosaved in the last second may be lost).
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the broker again on the same port with the same config and persistence
    /// dir. Panics if the port was taken meanwhile.
    pub fn start_again(&mut self) {
        self.proc.assert_stopped("Mosquitto");
        let start = self.spawn(&require_bin("mosquitto", INSTALL), self.port);
        self.proc.restarted(self.port, start);
    }

    /// The broker's log since its last (re)start.
    pub fn log(&self) -> String {
        self.proc.log()
    }
}

/// Runs `openssl ARGS` in `dir`; fails the test with openssl's message.
pub(super) fn openssl_in(dir: &std::path::Path) -> impl Fn(&[&str]) + '_ {
    let openssl = require_bin(
        "openssl",
        "apt-get install -y --no-install-recommends openssl",
    );
    move |args: &[&str]| {
        let out = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Makes `ca.pem` (CA) and `server.pem`/`server.key` (for IP:127.0.0.1 and localhost,
/// signed by the CA) in `dir`, all world-readable.
pub fn make_tls_files(dir: &std::path::Path) {
    let run = openssl_in(dir);
    write_file(
        &dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    );
    let serial = format!("0x{:016x}", super::random_u64());
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3",
        "-subj",
        "/CN=dc-gateway test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        &serial,
        "-days",
        "3",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    for f in ["ca.pem", "server.pem", "server.key"] {
        chmod(&dir.join(f), 0o644);
    }
}

/// How `mosquitto_sub` connects and subscribes.
#[derive(Debug, Clone)]
pub struct SubOpts {
    /// Broker port on 127.0.0.1.
    pub port: u16,
    /// Topic filters (at least one).
    pub filters: Vec<String>,
    /// Subscription QoS (0, 1, 2).
    pub qos: u8,
    /// `-u`/`-P`.
    pub user: Option<(String, String)>,
    /// `--cafile` (turns TLS on).
    pub cafile: Option<PathBuf>,
    /// `-i`; with `persistent`, the session key.
    pub client_id: Option<String>,
    /// `-c`: persistent session (clean_session=false); needs `client_id`.
    pub persistent: bool,
}

impl SubOpts {
    /// QoS 1, clean session, no credentials, plain TCP.
    pub fn new(port: u16, filter: &str) -> SubOpts {
        SubOpts {
            port,
            filters: vec![filter.to_owned()],
            qos: 1,
            user: None,
            cafile: None,
            client_id: None,
            persistent: false,
        }
    }

    /// Persistent session (`-c -i id`), so QoS 1 messages published while the
    /// subscriber is away are queued for it.
    pub fn persistent(mut self, client_id: &str) -> SubOpts {
        self.client_id = Some(client_id.to_owned());
        self.persistent = true;
        self
    }
}

/// One message `mosquitto_sub` received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttMessage {
    /// Topic.
    pub topic: String,
    /// Payload bytes (empty for a retained-clear).
    pub payload: Vec<u8>,
    /// The retain flag as delivered (true for messages replayed from the retained store).
    pub retained: bool,
    /// Delivered QoS.
    pub qos: u8,
}

impl MqttMessage {
    /// The payload as text (lossy UTF-8).
    pub fn payload_str(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

#[derive(Default)]
struct SubState {
    messages: Vec<MqttMessage>,
    connacks: Vec<u8>,
    subacks: usize,
    last_lines: Vec<String>,
    eof: bool,
}

/// A running `mosquitto_sub` collecting messages in a background thread. Dropping it
/// kills it.
pub struct MqttSubscriber {
    opts: SubOpts,
    state: Arc<(Mutex<SubState>, Condvar)>,
    proc: PeerProcess,
    reader: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl MqttSubscriber {
    /// Starts `mosquitto_sub` and waits (10 s) for the SUBACK; panics on failure.
    pub fn start(opts: SubOpts) -> MqttSubscriber {
        MqttSubscriber::try_start(opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`MqttSubscriber::start`], returning the failure (refused credentials, bad
    /// CA, no broker) instead. The error quotes mosquitto_sub's exit code (5 = not
    /// authorised), the CONNACK codes seen and the tool's stderr.
    pub fn try_start(opts: SubOpts) -> Result<MqttSubscriber, PeerError> {
        let bin = require_bin("mosquitto_sub", INSTALL);
        assert!(!opts.filters.is_empty(), "SubOpts: no topic filter");
        assert!(
            !opts.persistent || opts.client_id.is_some(),
            "SubOpts: persistent needs client_id"
        );
        let dir = peer_tempdir("mosquitto-sub");
        // Line-buffered stdout: mosquitto_sub flushes after messages but not after its
        // debug lines, and the SUBACK line is what start waits for.
        let stdbuf = require_bin("stdbuf", "apt-get install -y coreutils");
        let mut cmd = Command::new(stdbuf);
        cmd.arg("-oL").arg(bin);
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &opts.port.to_string(),
            "-d",
            "-F",
            "MSG %r %q %x %t",
        ]);
        cmd.args(["-q", &opts.qos.to_string()]);
        for f in &opts.filters {
            cmd.args(["-t", f]);
        }
        if let Some((u, p)) = &opts.user {
            cmd.args(["-u", u, "-P", p]);
        }
        if let Some(ca) = &opts.cafile {
            cmd.arg("--cafile").arg(ca);
        }
        if let Some(id) = &opts.client_id {
            cmd.args(["-i", id]);
        }
        if opts.persistent {
            cmd.arg("-c");
        }
        let mut proc = PeerProcess::spawn(
            "mosquitto_sub",
            &mut cmd,
            &dir.path().join("stderr.log"),
            true,
        );
        let stdout = proc.take_stdout().expect("piped stdout");
        let state: Arc<(Mutex<SubState>, Condvar)> = Arc::default();
        let st = Arc::clone(&state);
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line)
                            .trim_end_matches(['\n', '\r'])
                            .to_owned();
                        let (lock, cv) = &*st;
                        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
                        parse_line(&text, &mut s);
                        cv.notify_all();
                    }
                }
            }
            let (lock, cv) = &*st;
            lock.lock().unwrap_or_else(|e| e.into_inner()).eof = true;
            cv.notify_all();
        });
        let mut sub = MqttSubscriber {
            opts,
            state,
            proc,
            reader: Some(reader),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (subacks, eof, connacks) = {
                let s = sub.lock();
                (s.subacks, s.eof, s.connacks.clone())
            };
            if subacks > 0 {
                return Ok(sub);
            }
            if eof || sub.proc.exited().is_some() || Instant::now() > deadline {
                // stdout closes just before the process ends: give it a moment to exit
                // so its exit code (5 = not authorised) can be reported.
                let grace = Instant::now() + Duration::from_secs(2);
                while eof && sub.proc.exited().is_none() && Instant::now() < grace {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let code = sub.proc.exited().and_then(|s| s.code());
                sub.proc.kill();
                let exit = code.map_or_else(
                    || "still running, killed".to_owned(),
                    |c| format!("exit code {c}"),
                );
                return Err(PeerError::Peer {
                    peer: "mosquitto_sub".into(),
                    reason: format!(
                        "no SUBACK from 127.0.0.1:{} ({exit}, CONNACK codes {connacks:?}); stderr:\n{}\nstdout:\n{}",
                        sub.opts.port,
                        sub.proc.log_tail(),
                        sub.lock().last_lines.join("\n")
                    ),
                });
            }
            let (lock, cv) = &*sub.state;
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let _ = cv.wait_timeout(guard, Duration::from_millis(50));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SubState> {
        self.state.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The options it was started with.
    pub fn opts(&self) -> &SubOpts {
        &self.opts
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<MqttMessage> {
        self.lock().messages.clone()
    }

    /// Messages as `(topic, payload text)` pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.lock()
            .messages
            .iter()
            .map(|m| (m.topic.clone(), m.payload_str()))
            .collect()
    }

    /// Messages on exactly `topic`.
    pub fn on_topic(&self, topic: &str) -> Vec<MqttMessage> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.topic == topic)
            .cloned()
            .collect()
    }

    /// Forgets the messages received so far.
    pub fn clear(&self) {
        self.lock().messages.clear();
    }

    /// How many SUBACKs it has seen: 1 after start, +1 after each reconnect.
    pub fn subacks(&self) -> usize {
        self.lock().subacks
    }

    /// CONNACK return codes seen, in order (0 = accepted, 5 = not authorised).
    pub fn connacks(&self) -> Vec<u8> {
        self.lock().connacks.clone()
    }

    /// Waits until `cond(messages)` holds; returns the messages then, or a timeout error
    /// listing what arrived.
    pub fn wait_for(
        &self,
        cond: impl Fn(&[MqttMessage]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<MqttMessage>, PeerError> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if cond(&s.messages) {
                return Ok(s.messages.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timeout_error(&s, timeout));
            }
            s = cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// [`MqttSubscriber::wait_for`] for async tests: polls every 20 ms with
    /// `tokio::time::sleep`, so a current-thread runtime keeps running the gateway.
    pub async fn wait_for_async(
        &self,
        cond: impl Fn(&[MqttMessage]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<MqttMessage>, PeerError> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let s = self.lock();
                if cond(&s.messages) {
                    return Ok(s.messages.clone());
                }
                if Instant::now() >= deadline {
                    return Err(self.timeout_error(&s, timeout));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` subscriptions were acknowledged in total (e.g. 2 after one
    /// broker restart): the subscriber is back and will see new messages.
    pub fn wait_subacks(&self, n: usize, timeout: Duration) -> Result<(), PeerError> {
        super::wait_until(
            &format!("{n} SUBACKs on port {}", self.opts.port),
            timeout,
            || self.subacks() >= n,
        )
    }

    fn timeout_error(&self, s: &SubState, timeout: Duration) -> PeerError {
        let shown: Vec<String> = s
            .messages
            .iter()
            .rev()
            .take(20)
            .rev()
            .map(|m| {
                format!(
                    "{} = {:?}{}",
                    m.topic,
                    m.payload_str(),
                    if m.retained { " (retained)" } else { "" }
                )
            })
            .collect();
        PeerError::Timeout {
            what: format!(
                "MQTT messages on {:?} (port {})",
                self.opts.filters, self.opts.port
            ),
            waited: timeout,
            last: format!(
                "{} messages, last {}: [{}]",
                s.messages.len(),
                shown.len(),
                shown.join(", ")
            ),
        }
    }

    /// Kills the subscriber (a persistent session stays on the broker).
    pub fn stop(mut self) {
        self.proc.kill();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for MqttSubscriber {
    fn drop(&mut self) {
        self.proc.kill();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn parse_line(text: &str, s: &mut SubState) {
    if let Some(rest) = text.strip_prefix("MSG ") {
        let mut parts = rest.splitn(4, ' ');
        let (retained, qos, hex, topic) = (parts.next(), parts.next(), parts.next(), parts.next());
        if let (Some(r), Some(q), Some(hex), Some(topic)) = (retained, qos, hex, topic)
            && let Some(payload) = unhex(hex)
        {
            s.messages.push(MqttMessage {
                topic: topic.to_owned(),
                payload,
                retained: r == "1",
                qos: q.parse().unwrap_or(0),
            });
            return;
        }
    } else if let Some(i) = text.find("received CONNACK (") {
        let code = text[i + "received CONNACK (".len()..].trim_end_matches(')');
        s.connacks.push(code.parse().unwrap_or(255));
    } else if text.contains("received SUBACK") {
        s.subacks += 1;
    }
    s.last_lines.push(text.to_owned());
    if s.last_lines.len() > 50 {
        s.last_lines.remove(0);
    }
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}
