//! The AT command engine: one command at a time over a byte stream (the modem's
//! serial port, or anything `AsyncRead + AsyncWrite` in a test), each under a timeout.
//!
//! What a modem sends (3GPP TS 27.007 §4 / ITU-T V.250 §5.7, TS 27.005 §3): with
//! `ATV1` every line is framed `<CR><LF>text<CR><LF>`; a command ends with a *final
//! result code* (`OK`, `ERROR`, `+CME ERROR: <n>`, `+CMS ERROR: <n>`, and for `ATD`
//! `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`); before it come the command's
//! information lines. *Unsolicited result codes* (`+CMTI`, `+CDS`, `RING`, `+CEREG`,
//! `+CREG`, ...) may arrive at any moment — between commands, and, on the SIMCom
//! SIM7600 and Quectel EC25 alike, between the information lines of a reply (their AT
//! manuals: SIM7600 Series AT Command Manual V1.x §"Unsolicited result codes";
//! Quectel EC2x AT Commands Manual V2.0 §1.4 / `AT+QURCCFG`).
//!
//! Invariants:
//! - every wait has a deadline: a command that gets no final result code in time is
//!   [`Error::Timeout`], and the engine then sends ESC (cancels a half-open `> `
//!   prompt, TS 27.005 §3.5.1) and forgets what it had read, so a late reply never
//!   answers the next command;
//! - an unsolicited line never ends up in a command's reply: it is queued
//!   ([`At::take_urcs`]) whenever it arrives, including `+CDS`'s second (PDU) line;
//! - the echo of the command (before `ATE0` took effect) is dropped.
//!
//! Telling `+CEREG: ...` the URC from `+CEREG: ...` the reply to `AT+CEREG?` apart:
//! with `AT+CEREG=1` the URC has one field (`<stat>`), the reply two (`<n>,<stat>`)
//! (TS 27.007 §10.1.22); the same for `+CREG` (§7.2).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// How an exchange with the modem failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// No final result code within the command's time.
    #[error("no answer to {cmd} within {after:?}")]
    Timeout {
        /// The command.
        cmd: String,
        /// Its time limit.
        after: Duration,
    },
    /// `ERROR` (no extended error reporting, or a syntax error).
    #[error("{cmd}: ERROR")]
    Error {
        /// The command.
        cmd: String,
    },
    /// `+CME ERROR: <n>` (TS 27.007 §9.2: mobile equipment errors, e.g. 10 SIM not
    /// inserted).
    #[error("{cmd}: +CME ERROR: {code}")]
    Cme {
        /// The command.
        cmd: String,
        /// The error number (or text, when the modem is in verbose mode).
        code: String,
    },
    /// `+CMS ERROR: <n>` (TS 27.005 §3.2.5: message service errors).
    #[error("{cmd}: +CMS ERROR: {code}")]
    Cms {
        /// The command.
        cmd: String,
        /// The error number.
        code: u16,
    },
    /// `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE` (V.250 §6.3.1).
    #[error("{cmd}: {result}")]
    Call {
        /// The command.
        cmd: String,
        /// The result code.
        result: String,
    },
    /// The port failed (unplugged: EOF or EIO).
    #[error("serial port: {0}")]
    Io(String),
}

impl Error {
    /// The modem did not answer at all (silence, a dead port).
    pub fn is_silence(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::Io(_))
    }
}

/// An unsolicited result code.
#[derive(Debug, Clone, PartialEq)]
pub enum Urc {
    /// `+CMTI: <mem>,<index>`: a text arrived and is stored (TS 27.005 §3.4.1).
    NewMessage {
        /// Storage (`"SM"`, `"ME"`).
        mem: String,
        /// Index in it.
        index: u32,
    },
    /// `+CDS: <length><CR><LF><pdu>`: a status report (TS 27.005 §3.4.1, PDU mode).
    StatusReport {
        /// TPDU length in octets.
        len: usize,
        /// The PDU in hex.
        pdu: String,
    },
    /// `RING`: an incoming call.
    Ring,
    /// `+CEREG: <stat>` / `+CREG: <stat>`: registration changed (1 home, 5 roaming).
    Registration(u8),
    /// Any other unsolicited line (`NO CARRIER` after a call, `+CLIP`, ...).
    Other(String),
}

/// The answer to a command: its information lines (final result code removed).
pub type Reply = Vec<String>;

/// Results that end a command.
fn final_code(line: &str) -> Option<Result<(), (&'static str, String)>> {
    match line {
        "OK" => Some(Ok(())),
        "ERROR" => Some(Err(("ERROR", String::new()))),
        "NO CARRIER" | "BUSY" | "NO ANSWER" | "NO DIALTONE" => {
            Some(Err(("CALL", line.to_string())))
        }
        _ => {
            if let Some(c) = line.strip_prefix("+CME ERROR:") {
                Some(Err(("CME", c.trim().to_string())))
            } else {
                line.strip_prefix("+CMS ERROR:")
                    .map(|c| Err(("CMS", c.trim().to_string())))
            }
        }
    }
}

/// The engine over a byte stream.
pub struct At<T> {
    io: T,
    buf: Vec<u8>,
    urcs: VecDeque<Urc>,
    /// `+CDS: <len>` seen; its PDU line comes next.
    cds_len: Option<usize>,
    /// Default time limit of a command.
    pub timeout: Duration,
}

/// Timing of one exchange, for the benchmark hook: when the `AT+CMGS` line was written.
pub type Written = Option<Instant>;

impl<T: AsyncRead + AsyncWrite + Unpin> At<T> {
    /// An engine over `io` with `timeout` per command.
    pub fn new(io: T, timeout: Duration) -> At<T> {
        At {
            io,
            buf: Vec::with_capacity(512),
            urcs: VecDeque::new(),
            cds_len: None,
            timeout,
        }
    }

    /// Put an unsolicited line back (a caller that looked at them and is not the one
    /// to handle it).
    pub fn push_urc(&mut self, u: Urc) {
        self.urcs.push_back(u);
    }

    /// Unsolicited lines collected so far, oldest first.
    pub fn take_urcs(&mut self) -> Vec<Urc> {
        self.urcs.drain(..).collect()
    }

    /// Send `cmd` (without `AT` prefix handling: the full text, e.g. `AT+CSQ`) and
    /// collect its reply under the default timeout.
    pub async fn command(&mut self, cmd: &str) -> Result<Reply, Error> {
        let t = self.timeout;
        self.command_within(cmd, t).await
    }

    /// Like [`At::command`] with its own time limit (`ATD`, `AT+CMGS` take longer).
    pub async fn command_within(&mut self, cmd: &str, limit: Duration) -> Result<Reply, Error> {
        let deadline = Instant::now() + limit;
        self.write(format!("{cmd}\r").as_bytes()).await?;
        self.reply(cmd, deadline, limit).await
    }

    /// Send one SMS part: `AT+CMGS=<len>`, wait for the `> ` prompt, send the PDU and
    /// Ctrl-Z, and return the message reference of `+CMGS: <mr>` (TS 27.005 §3.5.1).
    pub async fn send_pdu(
        &mut self,
        tpdu_len: usize,
        hex: &str,
        limit: Duration,
    ) -> Result<u8, Error> {
        let cmd = format!("AT+CMGS={tpdu_len}");
        let deadline = Instant::now() + limit;
        self.write(format!("{cmd}\r").as_bytes()).await?;
        // The prompt is `<CR><LF>> ` with no line end after it; an error instead of it
        // is a final result code.
        // Unsolicited lines may come before the prompt, even in the same read.
        loop {
            if let Some(pos) = find_prompt(&self.buf) {
                let head: Vec<u8> = self.buf.drain(..pos + 2).collect();
                for raw in head[..pos].split(|b| *b == b'\n') {
                    let line = String::from_utf8_lossy(raw).trim().to_string();
                    if line.is_empty() || line == cmd {
                        continue;
                    }
                    if let Some(len) = self.cds_len.take() {
                        self.urcs.push_back(Urc::StatusReport { len, pdu: line });
                    } else if !self.urc(&line, None) {
                        self.urcs.push_back(Urc::Other(line));
                    }
                }
                break;
            }
            if let Some(line) = self.next_buffered_line(&cmd) {
                if let Some(Err(e)) = final_code(&line) {
                    return Err(to_error(&cmd, e));
                }
                if !self.urc(&line, None) {
                    self.urcs.push_back(Urc::Other(line));
                }
                continue;
            }
            self.fill(&cmd, deadline, limit).await?;
        }
        let mut body = hex.as_bytes().to_vec();
        body.push(0x1A);
        self.write(&body).await?;
        let reply = self.reply(&cmd, deadline, limit).await?;
        reply
            .iter()
            .find_map(|l| l.strip_prefix("+CMGS:"))
            .and_then(|v| v.trim().split(',').next()?.trim().parse::<u16>().ok())
            .map(|mr| (mr & 0xFF) as u8)
            .ok_or_else(|| Error::Error {
                cmd: format!("{cmd} (OK without +CMGS: <mr>)"),
            })
    }

    /// Wait up to `limit` for unsolicited lines (between commands); returns when at
    /// least one arrived or the time is up. Cancel-safe: what was read stays buffered.
    pub async fn wait_urc(&mut self, limit: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + limit;
        loop {
            while let Some(line) = self.next_buffered_line("") {
                // A line outside any command is unsolicited whatever it is.
                if !self.urc(&line, None) {
                    self.urcs.push_back(Urc::Other(line));
                }
            }
            if !self.urcs.is_empty() {
                return Ok(());
            }
            match self.fill("(idle)", deadline, limit).await {
                Ok(()) => {}
                Err(Error::Timeout { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let w = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.timeout, w).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Io(e.to_string())),
            Err(_) => Err(Error::Io("write blocked (flow control?)".into())),
        }
    }

    async fn reply(
        &mut self,
        cmd: &str,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Reply, Error> {
        let mut lines = Vec::new();
        let prefix = cmd
            .strip_prefix("AT")
            .and_then(|c| c.split(['=', '?']).next())
            .filter(|c| c.starts_with('+'))
            .map(|c| format!("{c}:"));
        loop {
            while let Some(line) = self.next_buffered_line(cmd) {
                if let Some(end) = final_code(&line) {
                    return end.map(|()| lines).map_err(|e| to_error(cmd, e));
                }
                if !self.urc(&line, prefix.as_deref()) {
                    lines.push(line);
                }
            }
            self.fill(cmd, deadline, limit).await?;
        }
    }

    /// Queue `line` if it is unsolicited; `expect` is the reply prefix of the running
    /// command (`+CEREG:` for `AT+CEREG?`).
    fn urc(&mut self, line: &str, expect: Option<&str>) -> bool {
        let fields = |rest: &str| rest.split(',').count();
        let u = if let Some(rest) = line.strip_prefix("+CMTI:") {
            let mut it = rest.split(',');
            let mem = it.next().unwrap_or("").trim().trim_matches('"').to_string();
            let index = it.next().and_then(|i| i.trim().parse().ok()).unwrap_or(0);
            Urc::NewMessage { mem, index }
        } else if let Some(rest) = line.strip_prefix("+CDS:") {
            // PDU mode: `+CDS: <length>`, the PDU on the next line.
            self.cds_len = Some(rest.trim().parse().unwrap_or(0));
            return true;
        } else if line == "RING" {
            Urc::Ring
        } else if let Some((p, rest)) = ["+CEREG:", "+CREG:", "+CGREG:"]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|r| (*p, r)))
        {
            if expect == Some(p) && fields(rest) >= 2 {
                return false;
            }
            Urc::Registration(
                rest.split(',')
                    .next()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0),
            )
        } else if line.starts_with("+CLIP:")
            || line.starts_with("+CRING:")
            || (line.starts_with("+CPIN:") && expect != Some("+CPIN:"))
            || line.starts_with("+QIND:")
            || line == "RDY"
            || line.starts_with("+CIEV:")
        {
            Urc::Other(line.to_string())
        } else {
            return false;
        };
        self.urcs.push_back(u);
        true
    }

    /// The next complete line in the buffer (empty lines and the command's echo
    /// skipped; the line after `+CDS:` taken as its PDU).
    fn next_buffered_line(&mut self, cmd: &str) -> Option<String> {
        loop {
            let pos = self.buf.iter().position(|b| *b == b'\n')?;
            let raw: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&raw).trim().to_string();
            if line.is_empty() || (!cmd.is_empty() && line == cmd) {
                continue;
            }
            if let Some(len) = self.cds_len.take() {
                self.urcs.push_back(Urc::StatusReport { len, pdu: line });
                continue;
            }
            return Some(line);
        }
    }

    async fn fill(&mut self, cmd: &str, deadline: Instant, limit: Duration) -> Result<(), Error> {
        let mut tmp = [0u8; 256];
        match tokio::time::timeout_at(deadline, self.io.read(&mut tmp)).await {
            Ok(Ok(0)) => Err(Error::Io("end of file (port closed or unplugged)".into())),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&tmp[..n]);
                if self.buf.len() > 64 * 1024 {
                    // A modem babbling without line ends: keep the tail only.
                    let cut = self.buf.len() - 4096;
                    self.buf.drain(..cut);
                }
                Ok(())
            }
            Ok(Err(e)) => Err(Error::Io(e.to_string())),
            Err(_) => {
                if !cmd.starts_with('(') {
                    // Cancel a half-open prompt and forget anything half read: a late
                    // reply must not answer the next command.
                    let _ = self.write(&[0x1B]).await;
                    self.buf.clear();
                    self.cds_len = None;
                }
                Err(Error::Timeout {
                    cmd: cmd.to_string(),
                    after: limit,
                })
            }
        }
    }
}

fn find_prompt(buf: &[u8]) -> Option<usize> {
    // `> ` at the start of the buffer or after a line end.
    (0..buf.len().saturating_sub(1))
        .find(|&i| buf[i] == b'>' && buf[i + 1] == b' ' && (i == 0 || buf[i - 1] == b'\n'))
}

fn to_error(cmd: &str, (what, code): (&'static str, String)) -> Error {
    let cmd = cmd.to_string();
    match what {
        "CME" => Error::Cme { cmd, code },
        "CMS" => Error::Cms {
            cmd,
            code: code.parse().unwrap_or(500),
        },
        "CALL" => Error::Call { cmd, result: code },
        _ => Error::Error { cmd },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    #[tokio::test]
    async fn unsolicited_lines_inside_a_reply_are_set_aside() {
        let (a, mut modem) = duplex(4096);
        let mut at = At::new(a, Duration::from_secs(2));
        let task = tokio::spawn(async move {
            let mut b = [0u8; 64];
            let n = modem.read(&mut b).await.unwrap();
            assert_eq!(&b[..n], b"AT+CEREG?\r");
            modem
                .write_all(b"AT+CEREG?\r\r\n+CMTI: \"SM\",3\r\n\r\n+CEREG: 1,5\r\nRING\r\n\r\n+CEREG: 2\r\n\r\n+CDS: 6\r\n00062A\r\n\r\nOK\r\n")
                .await
                .unwrap();
            modem
        });
        let reply = at.command("AT+CEREG?").await.unwrap();
        assert_eq!(reply, vec!["+CEREG: 1,5".to_string()]);
        assert_eq!(
            at.take_urcs(),
            vec![
                Urc::NewMessage {
                    mem: "SM".into(),
                    index: 3
                },
                Urc::Ring,
                Urc::Registration(2),
                Urc::StatusReport {
                    len: 6,
                    pdu: "00062A".into()
                },
            ]
        );
        task.await.unwrap();
    }

    #[tokio::test]
    async fn unsolicited_lines_before_the_prompt_are_kept() {
        let (a, mut modem) = duplex(4096);
        let mut at = At::new(a, Duration::from_secs(2));
        let task = tokio::spawn(async move {
            let mut b = [0u8; 256];
            let n = modem.read(&mut b).await.unwrap();
            assert_eq!(&b[..n], b"AT+CMGS=12\r");
            // A new text and a report arrive in the same write as the prompt.
            modem
                .write_all(b"\r\n+CMTI: \"SM\",4\r\n\r\n+CDS: 6\r\n00062A\r\n\r\n> ")
                .await
                .unwrap();
            let mut got = Vec::new();
            while !got.ends_with(&[0x1A]) {
                let n = modem.read(&mut b).await.unwrap();
                got.extend_from_slice(&b[..n]);
            }
            assert_eq!(got, b"0011AA\x1a");
            modem
                .write_all(b"\r\n+CMGS: 7\r\n\r\nOK\r\n")
                .await
                .unwrap();
            modem
        });
        let mr = at
            .send_pdu(12, "0011AA", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(mr, 7);
        assert_eq!(
            at.take_urcs(),
            vec![
                Urc::NewMessage {
                    mem: "SM".into(),
                    index: 4
                },
                Urc::StatusReport {
                    len: 6,
                    pdu: "00062A".into()
                },
            ]
        );
        task.await.unwrap();
    }

    #[tokio::test]
    async fn errors_and_silence() {
        let (a, mut modem) = duplex(4096);
        let mut at = At::new(a, Duration::from_millis(200));
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            let _ = modem.read(&mut b).await.unwrap();
            modem.write_all(b"\r\n+CMS ERROR: 331\r\n").await.unwrap();
            let _ = modem.read(&mut b).await.unwrap();
            // silent from now on
            let _ = modem.read(&mut b).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let e = at
            .send_pdu(10, "00", Duration::from_millis(500))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            Error::Cms {
                cmd: "AT+CMGS=10".into(),
                code: 331
            }
        );
        let e = at.command("AT").await.unwrap_err();
        assert!(e.is_silence(), "{e}");
    }
}
