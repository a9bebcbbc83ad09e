//! RELP, the Reliable Event Logging Protocol of librelp (rsyslog's `imrelp`): framing
//! and one client session.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. A session opens with
//! `1 open N relp_version=0\nrelp_software=...\ncommands=syslog`, which the server
//! answers `1 rsp N 200 OK\n<its offers>`; each message is then `TXNR syslog N MSG`,
//! answered `TXNR rsp 6 200 OK` once the server has taken it (`500 ...` when it could
//! not). Transaction numbers start at 1 in each session and increase by one (librelp
//! checks it), wrapping after 1 000 000 000 to 1. `close` ends a session; a server that
//! ends one sends `0 serverclose 0`.
//!
//! Invariants: a message counts as taken only when a `rsp` with its own txnr and code
//! 200 arrived on the session that sent it; anything else (a 500, a frame that cannot be
//! read, `serverclose`, a timeout, EOF) breaks the session, and what it had not
//! acknowledged is sent again on a new one. Reading never trusts the peer's lengths
//! beyond [`MAX_DATA`].

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest DATA accepted from the server (its answers are a few dozen bytes).
pub const MAX_DATA: usize = 64 * 1024;

/// What can go wrong in a RELP session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server sent something that is not a RELP frame.
    #[error("not a RELP frame from the server: {0}")]
    Frame(String),
    /// The server refused the session or a message.
    #[error("the server answered {0:?}")]
    Refused(String),
    /// The server closed the session (`serverclose` or EOF).
    #[error("the server closed the session")]
    Closed,
    /// No answer within the timeout.
    #[error("no acknowledgement within {0:?}")]
    Timeout(Duration),
}

/// The next transaction number after `t`, as librelp counts.
pub fn next_txnr(t: u32) -> u32 {
    if t > 999_999_999 { 1 } else { t + 1 }
}

/// One frame as bytes.
pub fn frame(txnr: u32, command: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("{txnr} {command} {}", data.len()).into_bytes();
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
    out
}

/// A frame read from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Its transaction number (0 for `serverclose`).
    pub txnr: u32,
    /// `rsp`, `serverclose`, ...
    pub command: String,
    /// Its data.
    pub data: Vec<u8>,
}

impl Frame {
    /// The status code of a `rsp` (`200`), if its data starts with one.
    pub fn code(&self) -> Option<u16> {
        let end = self
            .data
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(self.data.len());
        std::str::from_utf8(&self.data[..end]).ok()?.parse().ok()
    }

    /// The first line of the data, for messages.
    pub fn first_line(&self) -> String {
        let s = String::from_utf8_lossy(&self.data);
        s.lines().next().unwrap_or("").to_string()
    }
}

async fn read_token<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    what: &str,
) -> Result<(String, u8), Error> {
    let mut tok = String::new();
    loop {
        let b = match r.read_u8().await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && tok.is_empty() => {
                return Err(Error::Closed);
            }
            Err(e) => return Err(e.into()),
        };
        if b == b' ' || b == b'\n' {
            if tok.is_empty() {
                return Err(Error::Frame(format!("empty {what}")));
            }
            return Ok((tok, b));
        }
        if tok.len() >= max || !b.is_ascii_graphic() {
            return Err(Error::Frame(format!("bad {what} {tok:?}")));
        }
        tok.push(b as char);
    }
}

/// Read one frame.
pub async fn read_frame<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Frame, Error> {
    let (txnr, sep) = read_token(r, 10, "txnr").await?;
    let txnr: u32 = txnr
        .parse()
        .map_err(|_| Error::Frame(format!("bad txnr {txnr:?}")))?;
    if sep != b' ' {
        return Err(Error::Frame("frame ends after its txnr".into()));
    }
    let (command, sep) = read_token(r, 32, "command").await?;
    if sep != b' ' {
        return Err(Error::Frame(format!("{command}: no data length")));
    }
    let (len, sep) = read_token(r, 9, "data length").await?;
    let len: usize = len
        .parse()
        .map_err(|_| Error::Frame(format!("bad data length {len:?}")))?;
    if len > MAX_DATA {
        return Err(Error::Frame(format!("data length {len} is too large")));
    }
    let mut data = vec![0; len];
    match (sep, len) {
        (b'\n', 0) => {
            return Ok(Frame {
                txnr,
                command,
                data,
            });
        }
        (b' ', _) => {
            r.read_exact(&mut data).await?;
        }
        _ => {
            return Err(Error::Frame(format!(
                "{command}: data length {len} without data"
            )));
        }
    }
    if r.read_u8().await? != b'\n' {
        return Err(Error::Frame(format!(
            "{command}: no LF after {len} bytes of data"
        )));
    }
    Ok(Frame {
        txnr,
        command,
        data,
    })
}

/// An open RELP session over TCP.
pub struct Session {
    io: BufReader<TcpStream>,
    txnr: u32,
    timeout: Duration,
}

/// What the session's open offers: version 0, the `syslog` command.
const OFFERS: &str = concat!(
    "relp_version=0\nrelp_software=dc-gateway,",
    env!("CARGO_PKG_VERSION"),
    "\ncommands=syslog"
);

impl Session {
    /// Open a session on a connected socket: send `open`, wait for `200`.
    pub async fn open(stream: TcpStream, timeout: Duration) -> Result<Session, Error> {
        let mut s = Session {
            io: BufReader::new(stream),
            txnr: 1,
            timeout,
        };
        let t = s.txnr;
        s.write(&frame(t, "open", OFFERS.as_bytes())).await?;
        s.txnr = next_txnr(t);
        let f = s.read().await?;
        if f.command != "rsp" || f.txnr != t {
            return Err(Error::Frame(format!(
                "expected the answer to open ({t}), got {} {}",
                f.txnr, f.command
            )));
        }
        if f.code() != Some(200) {
            return Err(Error::Refused(f.first_line()));
        }
        if !String::from_utf8_lossy(&f.data)
            .lines()
            .any(|l| l.starts_with("commands=") && l[9..].split(',').any(|c| c == "syslog"))
        {
            return Err(Error::Refused(format!(
                "{} (the server does not offer the syslog command)",
                f.first_line()
            )));
        }
        Ok(s)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let t = self.timeout;
        let io = self.io.get_mut();
        match tokio::time::timeout(t, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Err(Error::Timeout(t)),
        }
    }

    async fn read(&mut self) -> Result<Frame, Error> {
        match tokio::time::timeout(self.timeout, read_frame(&mut self.io)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(self.timeout)),
        }
    }

    /// Send `messages` as `syslog` commands without waiting in between, then wait for
    /// their answers. `acked(i)` is called for each message the server answered 200,
    /// as it arrives. Ok once every one is acknowledged; on an error the session must
    /// not be used again.
    pub async fn send(
        &mut self,
        messages: &[(usize, Vec<u8>)],
        mut acked: impl FnMut(usize),
    ) -> Result<(), Error> {
        let mut out = Vec::new();
        let mut waiting: HashMap<u32, usize> = HashMap::with_capacity(messages.len());
        for (i, m) in messages {
            let t = self.txnr;
            out.extend_from_slice(&frame(t, "syslog", m));
            waiting.insert(t, *i);
            self.txnr = next_txnr(t);
        }
        self.write(&out).await?;
        while !waiting.is_empty() {
            let f = self.read().await?;
            match f.command.as_str() {
                "rsp" => match waiting.remove(&f.txnr) {
                    Some(i) if f.code() == Some(200) => acked(i),
                    Some(_) => return Err(Error::Refused(f.first_line())),
                    None => {
                        return Err(Error::Frame(format!(
                            "an answer to txnr {} that was not sent",
                            f.txnr
                        )));
                    }
                },
                "serverclose" => return Err(Error::Closed),
                other => return Err(Error::Frame(format!("unexpected command {other:?}"))),
            }
        }
        Ok(())
    }

    /// End the session politely: `close`, its answer (within a short time), then drop.
    pub async fn close(mut self) {
        let t = self.txnr;
        self.timeout = self.timeout.min(Duration::from_secs(1));
        if self.write(&frame(t, "close", b"")).await.is_ok() {
            let _ = self.read().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Frame, Error> {
        let mut r = BufReader::new(bytes);
        read_frame(&mut r).await
    }

    #[tokio::test]
    async fn frames_as_librelp_writes_them() {
        assert_eq!(frame(2, "syslog", b"hi"), b"2 syslog 2 hi\n");
        assert_eq!(frame(3, "close", b""), b"3 close 0\n");
        let f = parse(b"2 rsp 6 200 OK\n").await.unwrap();
        assert_eq!(
            (f.txnr, f.command.as_str(), f.code()),
            (2, "rsp", Some(200))
        );
        let f = parse(b"3 rsp 0\n").await.unwrap();
        assert!(f.data.is_empty() && f.code().is_none());
        let f = parse(b"0 serverclose 0\n").await.unwrap();
        assert_eq!(f.command, "serverclose");
        let f = parse(b"1 rsp 19 500 queue full\nmore\n").await.unwrap();
        assert_eq!(
            (f.code(), f.first_line().as_str()),
            (Some(500), "500 queue full")
        );
    }

    #[tokio::test]
    async fn broken_frames_are_errors_not_panics() {
        for bad in [
            &b"x rsp 0\n"[..],
            b"1 rsp 5 200\n",
            b"1 rsp 99999999 ",
            b"1 rsp 2 okX",
            b"1\n",
            b"",
        ] {
            assert!(
                parse(bad).await.is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn txnr_wraps_as_librelp_does() {
        assert_eq!(next_txnr(1), 2);
        assert_eq!(next_txnr(999_999_999), 1_000_000_000);
        assert_eq!(next_txnr(1_000_000_000), 1);
    }
}
