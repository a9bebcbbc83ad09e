//! The board's local command socket: `<state_dir>/control.sock`, a Unix socket readable
//! and writable only by the service's user (mode 0600), for `dc-gateway ack ...` and
//! other commands given on the board's console. One JSON command per line in, one JSON
//! [`Reply`] per line out. The origin journaled is `socket` with the peer's uid.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{Commands, Origin, Reply, parse};

/// File name of the socket in the state directory.
pub const FILE: &str = "control.sock";

/// Listen on `<state_dir>/control.sock` (replacing a stale socket file) and hand every
/// command to `commands`.
pub fn serve(state_dir: &Path, commands: Commands) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let path = state_dir.join(FILE);
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let commands = commands.clone();
            tokio::spawn(async move {
                if let Err(e) = session(stream, commands).await {
                    tracing::debug!(error = %e, "command socket session ended");
                }
            });
        }
    }))
}

async fn session(stream: UnixStream, commands: Commands) -> std::io::Result<()> {
    let peer = match stream.peer_cred() {
        Ok(c) => format!("uid {}", c.uid()),
        Err(_) => "uid ?".to_string(),
    };
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r.take(1 << 20)).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let origin = Origin {
            entry: "socket".into(),
            peer: peer.clone(),
        };
        let reply = match parse(line.as_bytes(), origin) {
            Ok(cmd) => commands.send(cmd, Duration::from_secs(10)).await,
            Err(r) => {
                crate::metrics::get()
                    .sink_errors
                    .get_or_create(&crate::metrics::labels(&[
                        ("sink", "commands"),
                        ("reason", "malformed"),
                    ]))
                    .inc();
                r
            }
        };
        let mut out = serde_json::to_vec(&reply).unwrap_or_default();
        out.push(b'\n');
        w.write_all(&out).await?;
    }
    Ok(())
}

/// Send one command (JSON) to the gateway running with `state_dir` and wait for its
/// answer: the client side of `dc-gateway ack ...`.
pub fn send(state_dir: &Path, command: &serde_json::Value) -> Result<Reply, String> {
    use std::io::{BufRead, Write};
    let path: PathBuf = state_dir.join(FILE);
    let mut s = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        format!(
            "cannot reach the running gateway at {}: {e} (is it running, with this state directory, and are you its user?)",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let mut line = serde_json::to_vec(command).map_err(|e| e.to_string())?;
    line.push(b'\n');
    s.write_all(&line).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::BufReader::new(&s)
        .read_line(&mut answer)
        .map_err(|e| format!("no answer from the gateway: {e}"))?;
    serde_json::from_str(&answer).map_err(|e| format!("unreadable answer {answer:?}: {e}"))
}
