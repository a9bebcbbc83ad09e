//! A peer process: spawned with its output in a log file, awaited with a deadline,
//! stopped by PID (SIGTERM then SIGKILL), always reaped. Dropping it kills it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Why a start attempt failed; the caller retries `PortInUse` with a new port.
#[derive(Debug)]
pub(crate) enum StartFailure {
    /// The peer said its port is taken.
    PortInUse(String),
    /// Any other failure, with the peer's log tail.
    Failed(String),
}

impl StartFailure {
    /// The message, for a panic.
    pub(crate) fn message(&self) -> &str {
        match self {
            StartFailure::PortInUse(m) | StartFailure::Failed(m) => m,
        }
    }
}

/// A running peer. Dropping it sends SIGKILL and reaps it.
pub(crate) struct PeerProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    log_offset: u64,
    exit: Option<ExitStatus>,
}

impl PeerProcess {
    /// Spawns `cmd` with stdin closed and stderr (and stdout unless `capture_stdout`)
    /// appended to `log`. Panics if the program cannot be started at all.
    pub(crate) fn spawn(
        name: &str,
        cmd: &mut Command,
        log: &Path,
        capture_stdout: bool,
    ) -> PeerProcess {
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|e| panic!("{name}: cannot open log {}: {e}", log.display()))
        };
        let err = open();
        let log_offset = err.metadata().map(|m| m.len()).unwrap_or(0);
        cmd.stdin(Stdio::null()).stderr(Stdio::from(err));
        if capture_stdout {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(Stdio::from(open()));
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {:?}: {e}", cmd.get_program()));
        PeerProcess {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
            log_offset,
            exit: None,
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Takes the piped stdout (only with `capture_stdout`).
    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut().and_then(|c| c.stdout.take())
    }

    /// The exit status if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.exit = Some(status);
        }
        self.exit
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`, `KILL`) with the shell's `kill`
    /// builtin (present even where procps is not).
    pub(crate) fn signal(&mut self, sig: &str) {
        if self.exited().is_some() {
            return;
        }
        let status = Command::new("sh")
            .args(["-c", "kill -s \"$0\" \"$1\"", sig, &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) && self.exited().is_none() {
            panic!(
                "{}: kill -s {sig} {} failed: {status:?}",
                self.name,
                self.pid()
            );
        }
    }

    /// SIGTERM, wait up to `grace` for a clean exit, then SIGKILL. Always reaps.
    pub(crate) fn terminate(&mut self, grace: Duration) {
        if self.exited().is_none() {
            self.signal("TERM");
            let start = Instant::now();
            while self.exited().is_none() && start.elapsed() < grace {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill();
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exit.is_none() {
                let _ = child.kill();
            }
            if let Ok(status) = child.wait() {
                self.exit.get_or_insert(status);
            }
        }
    }

    /// The log written since this process was spawned.
    pub(crate) fn log_text(&self) -> String {
        match std::fs::read(&self.log) {
            Ok(bytes) => {
                let start = (self.log_offset as usize).min(bytes.len());
                String::from_utf8_lossy(&bytes[start..]).into_owned()
            }
            Err(e) => format!("<cannot read {}: {e}>", self.log.display()),
        }
    }

    /// The last few KiB of the log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = self.log_text();
        let cut = text.len().saturating_sub(4000);
        let cut = (cut..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text[cut..].to_owned()
    }

    /// Waits until `ready(log_since_spawn)` is true, failing early when the process
    /// exits (as `PortInUse` when its log says so) or after `timeout`.
    pub(crate) fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut(&str) -> bool,
    ) -> Result<(), StartFailure> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                let tail = self.log_tail();
                let msg = format!("{} exited during start ({status}); log:\n{tail}", self.name);
                let lower = tail.to_lowercase();
                return Err(
                    if lower.contains("address already in use") || lower.contains("address in use")
                    {
                        StartFailure::PortInUse(msg)
                    } else {
                        StartFailure::Failed(msg)
                    },
                );
            }
            if ready(&self.log_text()) {
                // A peer that lost a port race may have answered a probe meant for the
                // winner; make sure ours is still alive.
                std::thread::sleep(Duration::from_millis(20));
                if self.exited().is_none() {
                    return Ok(());
                }
                continue;
            }
            if start.elapsed() > timeout {
                let tail = self.log_tail();
                self.kill();
                return Err(StartFailure::Failed(format!(
                    "{} not ready after {timeout:?}; log:\n{tail}",
                    self.name
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `attempt` until it starts the peer, retrying when the port was taken.
/// Panics (naming the peer and quoting its log) on any other failure.
pub(crate) fn start_with_retry<T>(
    what: &str,
    mut attempt: impl FnMut() -> Result<T, StartFailure>,
) -> T {
    let mut last = String::new();
    for _ in 0..super::PORT_ATTEMPTS {
        match attempt() {
            Ok(v) => return v,
            Err(StartFailure::PortInUse(m)) => last = m,
            Err(StartFailure::Failed(m)) => panic!("{what} failed to start: {m}"),
        }
    }
    panic!("{what}: every port tried was taken; last attempt: {last}");
}

/// The process of a peer that can be stopped and started again on the same ports and
/// data dir (a database, a broker with persistence): empty while stopped. Dropping it
/// kills the process, so a peer struct declares it before its temp dir (fields drop in
/// order) and the dir is removed only after the process is gone.
pub(crate) struct Restartable {
    /// The peer's program, for panic messages (`influxd`).
    name: &'static str,
    proc: Option<PeerProcess>,
}

impl Restartable {
    /// A stopped peer named `name`.
    pub(crate) fn stopped(name: &'static str) -> Restartable {
        Restartable { name, proc: None }
    }

    /// Takes over a started process.
    pub(crate) fn started(&mut self, proc: PeerProcess) {
        self.proc = Some(proc);
    }

    /// True while no process runs.
    pub(crate) fn is_stopped(&self) -> bool {
        self.proc.is_none()
    }

    /// The running process, if any.
    pub(crate) fn get_mut(&mut self) -> Option<&mut PeerProcess> {
        self.proc.as_mut()
    }

    /// SIGTERM (the peer saves what it holds), wait up to `grace`, then SIGKILL; waits
    /// for it either way. Nothing happens while stopped.
    pub(crate) fn stop(&mut self, grace: Duration) {
        if let Some(mut p) = self.proc.take() {
            p.terminate(grace);
        }
    }

    /// SIGKILL (no clean shutdown) and wait for it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Panics, naming `owner` (the peer type), unless stopped: call before starting it
    /// again.
    pub(crate) fn assert_stopped(&self, owner: &str) {
        assert!(
            self.proc.is_none(),
            "{owner}::start_again: still running; stop() it first"
        );
    }

    /// Takes over the process started again on `port`; panics with the failure.
    pub(crate) fn restarted(&mut self, port: u16, start: Result<PeerProcess, StartFailure>) {
        match start {
            Ok(p) => self.proc = Some(p),
            Err(f) => panic!(
                "{} restart on port {port} failed: {}",
                self.name,
                f.message()
            ),
        }
    }

    /// Its log since the last (re)start; empty while stopped.
    pub(crate) fn log(&self) -> String {
        self.proc.as_ref().map(|p| p.log_text()).unwrap_or_default()
    }
}
