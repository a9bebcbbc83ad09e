//! The byte stream of an RS-485 bus, shared between the tokio-modbus client context and
//! the bus task, so the task can see what the context cannot: every byte received
//! (noise, bad frames, replies that come too late) and when the line last carried a
//! byte.
//!
//! tokio-modbus owns its transport and silently skips bytes it cannot decode. Wrapping
//! the serial stream in a [`Wire`] (a cheap clone of one shared handle) keeps the port
//! open when the context is dropped after a failure, and lets the bus task:
//!
//! - throw away whatever arrived while the bus was idle before sending a request
//!   ([`Wire::discard_pending`]), so a late reply can never be read as the answer to
//!   the next request;
//! - wait until the line has been quiet for a while ([`Wire::drain_until_quiet`])
//!   after a timeout or a garbled reply;
//! - honour the inter-frame gap: [`Wire::quiet_since`] is when the last byte was
//!   received or, for bytes written, when the last one has left the wire at the
//!   configured baud rate (a pty ignores the baud rate; the gap is kept anyway);
//! - compare the bytes of an exchange with the frame that was accepted
//!   ([`Wire::captured`]) to count discarded bytes and frames with a bad CRC, and,
//!   when an exchange needs a closer look, keep listening to its end
//!   ([`Wire::listen_until`]) and pick the right frame itself.
//!
//! Invariants: only one task uses the handles of a wire, one call at a time, so the
//! lock is never contended; it is held only inside `poll_*`, never across an await. A
//! read of zero bytes is end of file: the port went away.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Most bytes of one exchange kept for inspection: an RTU frame is at most 256 bytes.
const CAPTURE_MAX: usize = 1024;

/// A shared handle on a byte stream (see the module docs).
#[derive(Debug)]
pub(crate) struct Wire<T> {
    shared: Arc<Mutex<Inner<T>>>,
}

impl<T> Clone for Wire<T> {
    fn clone(&self) -> Self {
        Wire {
            shared: Arc::clone(&self.shared),
        }
    }
}

#[derive(Debug)]
struct Inner<T> {
    io: T,
    /// Time one character takes on the wire.
    char_time: Duration,
    /// Bytes received since [`Wire::begin_exchange`] (the first [`CAPTURE_MAX`]).
    capture: Vec<u8>,
    /// When the last byte was received.
    last_rx: Option<Instant>,
    /// When the last byte written has left the wire (estimated from the baud rate).
    tx_done: Option<Instant>,
}

impl<T> Wire<T> {
    /// Wrap `io`; `char_time` is the time one character takes at the line's settings.
    pub(crate) fn new(io: T, char_time: Duration) -> Wire<T> {
        Wire {
            shared: Arc::new(Mutex::new(Inner {
                io,
                char_time,
                capture: Vec::new(),
                last_rx: None,
                tx_done: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Start recording the bytes of a new exchange.
    pub(crate) fn begin_exchange(&self) {
        self.lock().capture.clear();
    }

    /// The bytes received since [`Wire::begin_exchange`].
    pub(crate) fn captured(&self) -> Vec<u8> {
        self.lock().capture.clone()
    }

    /// When the line last carried a byte (received, or written and sent out).
    pub(crate) fn quiet_since(&self) -> Option<Instant> {
        let g = self.lock();
        match (g.last_rx, g.tx_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

impl<T: AsyncRead + Unpin> Wire<T> {
    /// Read what is already waiting, without waiting for more. `Ok(None)`: nothing was
    /// waiting.
    fn read_ready(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut rb = ReadBuf::new(buf);
        let mut me = self.clone();
        match Pin::new(&mut me).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => Err(eof()),
            Poll::Ready(Ok(())) => Ok(Some(rb.filled().len())),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(None),
        }
    }

    /// Throw away every byte already received and not read; returns how many. An error
    /// (end of file, EIO) means the port is gone.
    pub(crate) fn discard_pending(&self) -> io::Result<usize> {
        let mut buf = [0u8; 256];
        let mut total = 0;
        while let Some(n) = self.read_ready(&mut buf)? {
            total += n;
        }
        Ok(total)
    }

    /// Keep reading (and recording) until `deadline`; returns how many bytes came.
    pub(crate) async fn listen_until(&self, deadline: Instant) -> io::Result<usize> {
        use tokio::io::AsyncReadExt as _;
        let mut buf = [0u8; 256];
        let mut total = 0;
        let mut me = self.clone();
        loop {
            match tokio::time::timeout_at(deadline, me.read(&mut buf)).await {
                Err(_) => return Ok(total),
                Ok(Ok(0)) => return Err(eof()),
                Ok(Ok(n)) => total += n,
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Read and throw away bytes until none has arrived for `quiet`, or for at most
    /// `cap`; returns how many were thrown away.
    pub(crate) async fn drain_until_quiet(
        &self,
        quiet: Duration,
        cap: Duration,
    ) -> io::Result<usize> {
        use tokio::io::AsyncReadExt as _;
        let end = Instant::now() + cap;
        let mut buf = [0u8; 256];
        let mut total = self.discard_pending()?;
        let mut me = self.clone();
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(total);
            }
            let wait = quiet.min(end - now);
            match tokio::time::timeout(wait, me.read(&mut buf)).await {
                Err(_) => return Ok(total),
                Ok(Ok(0)) => return Err(eof()),
                Ok(Ok(n)) => total += n,
                Ok(Err(e)) => return Err(e),
            }
        }
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "end of file: the port went away",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Wire<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut g = self.lock();
        let before = buf.filled().len();
        let r = Pin::new(&mut g.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                let room = CAPTURE_MAX.saturating_sub(g.capture.len());
                let keep = new.len().min(room);
                g.capture.extend_from_slice(&new[..keep]);
                g.last_rx = Some(Instant::now());
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Wire<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut g = self.lock();
        let r = Pin::new(&mut g.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r {
            let now = Instant::now();
            let start = g.tx_done.map_or(now, |t| t.max(now));
            let on_wire = g
                .char_time
                .saturating_mul(u32::try_from(*n).unwrap_or(u32::MAX));
            g.tx_done = Some(start + on_wire);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn records_received_bytes_and_discards_pending_ones() {
        let (a, mut b) = tokio::io::duplex(64);
        let wire = Wire::new(a, Duration::from_micros(500));
        b.write_all(b"noise").await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(wire.discard_pending().unwrap(), 5);
        assert_eq!(wire.discard_pending().unwrap(), 0);

        wire.begin_exchange();
        b.write_all(&[1, 3, 2]).await.unwrap();
        let mut buf = [0u8; 8];
        let mut w = wire.clone();
        let n = tokio::io::AsyncReadExt::read(&mut w, &mut buf)
            .await
            .unwrap();
        assert_eq!(&buf[..n], &[1, 3, 2]);
        assert_eq!(wire.captured(), vec![1, 3, 2]);
        assert!(wire.quiet_since().is_some());
    }

    #[tokio::test]
    async fn written_bytes_keep_the_line_busy_for_their_wire_time() {
        let (a, _b) = tokio::io::duplex(64);
        let mut wire = Wire::new(a, Duration::from_millis(1));
        let before = Instant::now();
        wire.write_all(&[0u8; 8]).await.unwrap();
        let busy_until = wire.quiet_since().unwrap();
        assert!(
            busy_until >= before + Duration::from_millis(8),
            "{:?}",
            busy_until - before
        );
    }

    #[tokio::test]
    async fn closed_peer_is_end_of_file() {
        let (a, b) = tokio::io::duplex(64);
        let wire = Wire::new(a, Duration::from_micros(500));
        drop(b);
        assert!(wire.discard_pending().is_err());
        assert!(
            wire.drain_until_quiet(Duration::from_millis(5), Duration::from_millis(50))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn drain_stops_when_the_line_is_quiet_or_at_the_cap() {
        let (a, mut b) = tokio::io::duplex(4096);
        let wire = Wire::new(a, Duration::from_micros(500));
        b.write_all(&[0xAA; 10]).await.unwrap();
        let n = wire
            .drain_until_quiet(Duration::from_millis(20), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(n, 10);
        // A talker that never stops: the cap ends the drain.
        let talker = tokio::spawn(async move {
            loop {
                if b.write_all(&[0x55]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let start = Instant::now();
        let n = wire
            .drain_until_quiet(Duration::from_millis(20), Duration::from_millis(100))
            .await
            .unwrap();
        assert!(n > 5, "{n}");
        assert!(start.elapsed() < Duration::from_millis(400));
        talker.abort();
    }
}
