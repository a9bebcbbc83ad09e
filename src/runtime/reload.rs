//! Config reload: `SIGHUP` and `dc-gateway config apply [--by NAME] [FILE]` (the
//! `config_apply` command on the local socket) while the gateway runs.
//!
//! A new config is **validated first** ([`crate::config::load`], the same checks as at
//! start). A config that does not validate is refused: its errors go back to whoever
//! applied it and into the journal (`config_refused`, with the file, its SHA-256 and
//! `by`), and the running config stays, untouched.
//!
//! A valid config (a different SHA-256 from the running one) is applied by restarting
//! the runtime inside the process: every task is stopped and awaited, the queues are
//! committed ([`super::Running::stop_for_reload`]), and [`super::start_with`] starts the
//! new config on the same state directory. So:
//! - **no buffered record is lost**: the queues are committed before the stop and
//!   reopened by the new runtime, and a sink removed from the config keeps its queue
//!   table in `buffer.db` until it is configured again (docs/BUFFER.md);
//! - **alarm state is kept**: the new runtime rebuilds the listed alarms from the
//!   journal, as after a restart — an instance of an unchanged device and rule keeps its
//!   number, its acknowledgement and its shelving, and is judged on the next poll
//!   against the new limits (it clears with an event if the new limit no longer holds);
//! - the journal gets `config_loaded` with the new SHA-256, `reason: "reload"` and
//!   `by` (`unknown, edited on disk` for SIGHUP); the start keeps the text as a new
//!   version in `<state_dir>/config-history/` (`config::history`, `dc-gateway config
//!   history`) when it differs from the newest.
//!
//! Invariants: at most one reload runs at a time (they are handled one after the
//! other by the loop here); if the new config validates but cannot start (a web port
//! taken, a device file gone), the previous config is started again and the reload is
//! refused with the reason. Polling pauses for the restart (well under a second on a
//! board; a poll due in that window is taken when the pollers start again). The MQTT
//! connections are closed without the orderly `offline` status, so the broker
//! publishes the last will (`offline`) and the new connection `online` a moment later.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use super::Running;
use crate::commands::{Reply, Request};
use crate::config::{self, Site};
use crate::journal::{Kind as JKind, NewEntry};
use crate::model::Timestamp;

/// `by` of a reload asked by SIGHUP: someone edited the file on the board.
pub const ON_DISK: &str = "unknown, edited on disk";

/// How a runtime takes reloads and says who loaded it.
pub struct Hook {
    /// Where `config_apply` commands go.
    pub tx: mpsc::Sender<Request>,
    /// Who loaded this config (`None` at start).
    pub by: Option<String>,
    /// `start` or `reload` (journaled).
    pub reason: String,
}

fn load(path: &Path, state_dir: &Option<PathBuf>) -> Result<Site, config::ConfigErrors> {
    let mut site = config::load(path)?;
    if let Some(d) = state_dir {
        site.storage.state_dir = d.clone();
    }
    Ok(site)
}

/// Run the gateway from the config at `path` until SIGTERM or Ctrl-C, reloading it on
/// SIGHUP and on `config_apply` (see the module docs). `state_dir` overrides the
/// config's, for every config applied.
pub async fn run(path: PathBuf, state_dir: Option<PathBuf>) -> anyhow::Result<()> {
    use super::standby::Role;
    use tokio::signal::unix::{SignalKind, signal};
    // Before anything starts: SIGHUP's default action would end the process.
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let site = load(&path, &state_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (tx, mut rx) = mpsc::channel::<Request>(4);
    let hook = |by: Option<String>, reason: &str| Hook {
        tx: tx.clone(),
        by,
        reason: reason.to_string(),
    };
    // A standby pair (src/runtime/standby.rs): a secondary starts watching, not polling.
    let mut watcher = super::standby::start(&site)?;
    let mut running = match &watcher {
        Some(w) if w.role() == Role::Secondary => {
            tracing::info!(
                peer = w.peer(),
                takeover_s = w.takeover().as_secs(),
                "standby: watching the primary; polling starts if it is absent for takeover_s"
            );
            None
        }
        _ => Some(super::start_with(site.clone(), Some(hook(None, "start"))).await?),
    };
    let mut current = site;
    if let Some(r) = &running {
        tracing::info!(web = %r.web_addr, "dc-gateway running");
    }
    let mut tick: u64 = 0;
    loop {
        let (file, by, reply) = tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => (path.clone(), ON_DISK.to_string(), None),
            Some(req) = rx.recv() => {
                let file = if req.command.target.is_empty() {
                    path.clone()
                } else {
                    PathBuf::from(&req.command.target)
                };
                (file, req.command.by.clone(), Some((req.command.id.clone(), req.reply)))
            }
            _ = async {
                match watcher.as_mut() {
                    Some(w) => w.next().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(w) = watcher.as_ref() else { continue };
                tick += 1;
                match (w.should_be_active(), running.is_some()) {
                    (true, false) => {
                        tracing::warn!(peer = w.peer(), absent_s = w.takeover().as_secs(), "standby: the primary is absent; taking over polling and alarming");
                        running = Some(super::start_with(current.clone(), Some(hook(None, "takeover"))).await?);
                        tick = 0;
                    }
                    (false, true) if w.role() == Role::Secondary => {
                        tracing::warn!(peer = w.peer(), "standby: the primary is back; handing back");
                        if let Some(r) = running.take() {
                            r.stop_for_reload().await;
                        }
                        // Past the broker's last will for the connection just closed.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        tick = 0;
                    }
                    _ => {}
                }
                w.announce(running.is_some(), tick).await;
                if let (Some(other), Some(r)) = (w.duplicate(), &running) {
                    const SAME_NAME: &str = "another gateway runs under this gateway's name";
                    let mut live = r.shared.write();
                    if !live.degraded.iter().any(|l| l.starts_with(SAME_NAME)) {
                        live.degraded.push(format!("{SAME_NAME} ({other}): give each gateway its own [site] gateway"));
                    }
                }
                continue;
            }
        };
        tracing::info!(file = %file.display(), by = %by, "config reload asked");
        let outcome = match running.take() {
            Some(r) => {
                let (r, site, outcome) = apply(r, current, &file, &by, &state_dir, &hook).await?;
                running = Some(r);
                current = site;
                outcome
            }
            // A standby only validates: the config is used when it takes over.
            None => match load(&file, &state_dir) {
                Ok(site) => {
                    current = site;
                    Ok(format!(
                        "config {} valid; this standby starts with it when it takes over",
                        file.display()
                    ))
                }
                Err(errs) => Err(format!(
                    "config {} refused; the previous config stays:\n{errs}",
                    file.display()
                )),
            },
        };
        match &outcome {
            Ok(text) => tracing::info!(file = %file.display(), by = %by, "{text}"),
            Err(text) => tracing::error!(file = %file.display(), by = %by, "{text}"),
        }
        if let Some((id, reply)) = reply {
            let _ = reply.send(match outcome {
                Ok(text) => Reply::ok(&id, text),
                Err(text) => Reply::error(&id, text),
            });
        }
    }
    tracing::info!("stopping");
    if let Some(r) = running {
        r.shutdown(Duration::from_secs(3)).await;
    }
    Ok(())
}

/// Journal a refused config.
fn refused(running: &Running, file: &Path, by: &str, errors: Vec<String>) {
    let sha256 = std::fs::read(file)
        .ok()
        .map(|b| config::sha256_hex(&String::from_utf8_lossy(&b)));
    let e = NewEntry {
        ts: Timestamp::now(),
        kind: JKind::ConfigRefused,
        gateway: running.gateway.clone(),
        device: None,
        data: serde_json::json!({
            "file": file.display().to_string(),
            "sha256": sha256,
            "by": by,
            "errors": errors,
        }),
    };
    if let Err(e) = running.journal.append(e) {
        tracing::error!(error = %e, "cannot journal the refused config");
    }
}

type Applied = (Running, Site, Result<String, String>);

/// Validate `file` and apply it (see the module docs). An error here means neither the
/// new nor the previous config could be started.
async fn apply(
    running: Running,
    current: Site,
    file: &Path,
    by: &str,
    state_dir: &Option<PathBuf>,
    hook: &dyn Fn(Option<String>, &str) -> Hook,
) -> anyhow::Result<Applied> {
    let site = match load(file, state_dir) {
        Ok(s) => s,
        Err(errs) => {
            let lines: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
            refused(&running, file, by, lines);
            let text = format!(
                "config {} refused; the running config stays:\n{errs}",
                file.display()
            );
            return Ok((running, current, Err(text)));
        }
    };
    if site.config_sha256 == current.config_sha256 {
        let text = format!(
            "config {} unchanged (sha256 {}): nothing to apply",
            file.display(),
            site.config_sha256
        );
        return Ok((running, current, Ok(text)));
    }
    running.stop_for_reload().await;
    match super::start_with(site.clone(), Some(hook(Some(by.to_string()), "reload"))).await {
        Ok(r) => {
            let text = format!(
                "config {} applied (sha256 {}, by {by})",
                file.display(),
                site.config_sha256
            );
            Ok((r, site, Ok(text)))
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the new config cannot start; starting the previous one again");
            let back = || {
                super::start_with(
                    current.clone(),
                    Some(hook(Some(by.to_string()), "reload_failed")),
                )
            };
            let mut again = back().await;
            for _ in 0..5 {
                if again.is_ok() {
                    break;
                }
                // A port of the stopped runtime may not be free yet.
                tokio::time::sleep(Duration::from_secs(1)).await;
                again = back().await;
            }
            let r = again?;
            refused(&r, file, by, vec![format!("cannot start: {e:#}")]);
            let text = format!(
                "config {} valid but cannot start ({e:#}); the previous config runs again",
                file.display()
            );
            Ok((r, current, Err(text)))
        }
    }
}
