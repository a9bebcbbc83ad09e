//! A minimal SNTP client (RFC 4330, packet format of RFC 5905 §7.3) over a tokio UDP
//! socket: one request, one reply, the clock offset and round-trip delay.
//!
//! Invariants:
//! - A reply counts only if it answers *our* request: mode 4 (server), version 3 or
//!   4, its origin timestamp equal to the transmit timestamp we sent (RFC 5905 §8,
//!   the "bogus" check), and a non-zero transmit timestamp. Anything else received on
//!   the socket before the deadline is ignored, so a late reply to an earlier request
//!   never answers this one.
//! - A Kiss-o'-Death (stratum 0) or an unsynchronised server (leap indicator 3) is an
//!   answer, but not a usable one: it is reported as such, never as an offset.
//! - Timestamps are compared as 64-bit differences (RFC 5905 §6), so the NTP era
//!   rollover of 2036 does not disturb the offset.
//! - No clock is ever set: the gateway only measures (the system's own NTP daemon
//!   sets the clock).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::net::UdpSocket;

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// The longest wait for a server name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Length of an NTP packet without extensions.
pub const PACKET_LEN: usize = 48;

/// Why a server gave no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The name does not resolve.
    #[error("cannot resolve {server}: {reason}")]
    Resolve {
        /// The server as configured.
        server: String,
        /// Why.
        reason: String,
    },
    /// A socket error (network unreachable, refused: ICMP port unreachable).
    #[error("{server}: {reason}")]
    Io {
        /// The server.
        server: String,
        /// The error.
        reason: String,
    },
    /// No matching reply before the deadline.
    #[error("{server}: no answer within {timeout_ms} ms")]
    Timeout {
        /// The server.
        server: String,
        /// The deadline.
        timeout_ms: u64,
    },
    /// The server answered but refuses to serve or is unsynchronised.
    #[error("{server}: {reason}")]
    Unusable {
        /// The server.
        server: String,
        /// Kiss code or leap indicator.
        reason: String,
    },
    /// A reply that is not an NTP server reply.
    #[error("malformed reply: {0}")]
    Malformed(String),
}

/// An NTP timestamp: seconds since 1900 in the high 32 bits, fraction in the low 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP timestamp of a system time (era 0 until 2036, then wrapping as NTP does).
    pub fn from_system(t: SystemTime) -> NtpTime {
        let d = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET) & 0xFFFF_FFFF;
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime((secs << 32) | frac)
    }

    /// `self − earlier` in seconds, as a signed 64-bit difference (RFC 5905 §6).
    pub fn secs_since(self, earlier: NtpTime) -> f64 {
        (self.0.wrapping_sub(earlier.0) as i64) as f64 / 4_294_967_296.0
    }
}

/// The fields of a reply the client uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Leap indicator (3 = the server's clock is not synchronised).
    pub leap: u8,
    /// Protocol version.
    pub version: u8,
    /// Association mode (3 client, 4 server).
    pub mode: u8,
    /// Stratum (0 = Kiss-o'-Death, 1 primary, 2–15 secondary, 16 unsynchronised).
    pub stratum: u8,
    /// Reference id: a kiss code when the stratum is 0.
    pub reference_id: [u8; 4],
    /// T1 as the server echoes it.
    pub origin: NtpTime,
    /// T2: when the server received the request.
    pub receive: NtpTime,
    /// T3: when the server sent the reply.
    pub transmit: NtpTime,
}

/// A client request (RFC 4330 §5): LI 0, version 4, mode 3, and `transmit` as its
/// transmit timestamp (echoed by the server as the origin timestamp).
pub fn request(transmit: NtpTime) -> [u8; PACKET_LEN] {
    let mut p = [0u8; PACKET_LEN];
    p[0] = 4 << 3 | 3;
    p[40..48].copy_from_slice(&transmit.0.to_be_bytes());
    p
}

/// Read a packet's header (extension fields and MAC after byte 48 are ignored).
pub fn parse(b: &[u8]) -> Result<Packet, Error> {
    if b.len() < PACKET_LEN {
        return Err(Error::Malformed(format!(
            "{} bytes, an NTP packet has at least {PACKET_LEN}",
            b.len()
        )));
    }
    let ts = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        NtpTime(u64::from_be_bytes(w))
    };
    Ok(Packet {
        leap: b[0] >> 6,
        version: (b[0] >> 3) & 7,
        mode: b[0] & 7,
        stratum: b[1],
        reference_id: [b[12], b[13], b[14], b[15]],
        origin: ts(24),
        receive: ts(32),
        transmit: ts(40),
    })
}

/// One usable answer: what the clock check reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The server's clock minus ours, seconds (positive: our clock is behind).
    pub offset_s: f64,
    /// Round-trip delay, seconds.
    pub delay_s: f64,
    /// The server's stratum (1–15).
    pub stratum: u8,
}

/// Whether `p` is the reply to the request sent at `t1` (not a stray or late packet).
pub fn answers(p: &Packet, t1: NtpTime) -> bool {
    p.mode == 4 && (3..=4).contains(&p.version) && p.origin == t1 && p.transmit.0 != 0
}

/// Judge a reply to the request sent at `t1` and received at `t4` (RFC 4330 §5, RFC
/// 5905 §8): the offset θ = ((T2 − T1) + (T3 − T4)) / 2 and delay δ = (T4 − T1) −
/// (T3 − T2), or why the server is not usable.
pub fn evaluate(p: &Packet, t1: NtpTime, t4: NtpTime, server: &str) -> Result<Answer, Error> {
    if p.stratum == 0 {
        let code = String::from_utf8_lossy(&p.reference_id)
            .trim_end_matches('\0')
            .to_string();
        return Err(Error::Unusable {
            server: server.to_string(),
            reason: format!("Kiss-o'-Death {code:?}: the server refuses to answer"),
        });
    }
    if p.leap == 3 || p.stratum >= 16 {
        return Err(Error::Unusable {
            server: server.to_string(),
            reason: "the server's own clock is not synchronised".to_string(),
        });
    }
    let offset_s = (p.receive.secs_since(t1) + p.transmit.secs_since(t4)) / 2.0;
    let delay_s = (t4.secs_since(t1) - p.transmit.secs_since(p.receive)).max(0.0);
    Ok(Answer {
        offset_s,
        delay_s,
        stratum: p.stratum,
    })
}

/// Ask one server (`host` or `host:port`, port 123 by default) once, waiting at most
/// `timeout` for the matching reply.
pub async fn query(server: &str, timeout: Duration) -> Result<Answer, Error> {
    // A name server that does not answer must not hold the check for the resolver's
    // own timeouts (often 5 s × attempts × search domains).
    let addr = tokio::time::timeout(timeout.max(RESOLVE_TIMEOUT), resolve(server))
        .await
        .map_err(|_| Error::Resolve {
            server: server.to_string(),
            reason: format!(
                "no answer from the name server within {} ms",
                timeout.max(RESOLVE_TIMEOUT).as_millis()
            ),
        })??;
    let io = |e: std::io::Error| Error::Io {
        server: server.to_string(),
        reason: e.to_string(),
    };
    let local: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await.map_err(io)?;
    sock.connect(addr).await.map_err(io)?;
    let t1 = NtpTime::from_system(SystemTime::now());
    sock.send(&request(t1)).await.map_err(io)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; 512];
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => {
                return Err(Error::Timeout {
                    server: server.to_string(),
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
            Ok(r) => r.map_err(io)?,
        };
        let t4 = NtpTime::from_system(SystemTime::now());
        let Ok(p) = parse(&buf[..n]) else { continue };
        if answers(&p, t1) {
            return evaluate(&p, t1, t4, server);
        }
    }
}

/// The socket address of `host` or `host:port` (`[v6]:port` for IPv6 with a port).
async fn resolve(server: &str) -> Result<SocketAddr, Error> {
    let with_port = if server.parse::<std::net::IpAddr>().is_ok() {
        // A bare IPv6 address contains colons but no port.
        SocketAddr::new(
            server
                .parse()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            123,
        )
        .to_string()
    } else if server
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        server.to_string()
    } else {
        format!("{server}:123")
    };
    let err = |reason: String| Error::Resolve {
        server: server.to_string(),
        reason,
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server reply built by hand after RFC 5905 §7.3, figure 8: LI, VN, Mode in
    /// byte 0; stratum, poll, precision; root delay, root dispersion, reference id;
    /// then the reference, origin, receive and transmit timestamps (32.32 fixed, big
    /// endian).
    fn reply(li: u8, stratum: u8, refid: &[u8; 4], t1: u64, t2: u64, t3: u64) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b[0] = li << 6 | 4 << 3 | 4; // version 4, mode 4 (server)
        b[1] = stratum;
        b[2] = 6; // poll 2^6 s
        b[3] = 0xEC; // precision 2^-20 s
        b[12..16].copy_from_slice(refid);
        b[24..32].copy_from_slice(&t1.to_be_bytes());
        b[32..40].copy_from_slice(&t2.to_be_bytes());
        b[40..48].copy_from_slice(&t3.to_be_bytes());
        b
    }

    /// Seconds (and a fraction in 1/2^32) as an NTP timestamp.
    fn ntp(secs: u64, frac: u32) -> u64 {
        secs << 32 | u64::from(frac)
    }

    #[test]
    fn request_is_version_4_client_mode_with_our_transmit_time() {
        let t = NtpTime(0x1234_5678_9ABC_DEF0);
        let r = request(t);
        assert_eq!(r.len(), 48);
        assert_eq!(r[0], 0x23, "LI 0, VN 4, mode 3");
        assert!(r[1..40].iter().all(|b| *b == 0));
        assert_eq!(
            &r[40..48],
            &[0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0]
        );
    }

    #[test]
    fn offset_and_delay_from_the_four_timestamps() {
        // Our clock is 5 s behind the server's; the path takes 10 ms each way and the
        // server holds the request 1 ms.
        let base = 3_973_000_000u64; // 2025-11 in NTP seconds
        let half = 1u32 << 31; // 0.5 s
        let t1 = ntp(base, 0);
        let t2 = ntp(base + 5, 0) + (u64::from(u32::MAX) / 100); // +5.01 s
        let t3 = t2 + (u64::from(u32::MAX) / 1000); // +1 ms
        let t4 = ntp(base, 0) + (u64::from(u32::MAX) / 1000) * 21; // T1 + 21 ms
        let b = reply(0, 2, b"GPS\0", t1, t2, t3);
        let p = parse(&b).unwrap();
        assert_eq!((p.leap, p.version, p.mode, p.stratum), (0, 4, 4, 2));
        assert!(answers(&p, NtpTime(t1)));
        let a = evaluate(&p, NtpTime(t1), NtpTime(t4), "s").unwrap();
        assert!((a.offset_s - 5.0).abs() < 0.001, "{a:?}");
        assert!((a.delay_s - 0.020).abs() < 0.001, "{a:?}");
        assert_eq!(a.stratum, 2);
        // Our clock ahead by half a second: a negative offset.
        let b = reply(
            0,
            3,
            b"\x7f\x7f\x01\x01",
            t1,
            ntp(base, 0) - u64::from(half),
            ntp(base, 0) - u64::from(half),
        );
        let a = evaluate(&parse(&b).unwrap(), NtpTime(t1), NtpTime(t1), "s").unwrap();
        assert!((a.offset_s + 0.5).abs() < 1e-6, "{a:?}");
    }

    #[test]
    fn offset_across_the_2036_era_rollover() {
        // T1 just before the era ends, server timestamps just after (era 1 wraps to 0).
        let t1 = ntp(0xFFFF_FFFF, 0);
        let t2 = ntp(1, 0); // 2 s later
        let b = reply(0, 1, b"PPS\0", t1, t2, t2);
        let a = evaluate(&parse(&b).unwrap(), NtpTime(t1), NtpTime(t1), "s").unwrap();
        assert!((a.offset_s - 2.0).abs() < 1e-6, "{a:?}");
    }

    #[test]
    fn kiss_of_death_and_unsynchronised_servers_are_not_usable() {
        let t1 = ntp(3_973_000_000, 7);
        let kod = parse(&reply(3, 0, b"RATE", t1, 0, 1)).unwrap();
        let e = evaluate(&kod, NtpTime(t1), NtpTime(t1), "ntp1").unwrap_err();
        assert!(e.to_string().contains("RATE"), "{e}");
        let unsync = parse(&reply(3, 8, b"LOCL", t1, t1, t1)).unwrap();
        let e = evaluate(&unsync, NtpTime(t1), NtpTime(t1), "ntp1").unwrap_err();
        assert!(e.to_string().contains("not synchronised"), "{e}");
        let s16 = parse(&reply(0, 16, b"INIT", t1, t1, t1)).unwrap();
        assert!(evaluate(&s16, NtpTime(t1), NtpTime(t1), "ntp1").is_err());
    }

    #[test]
    fn stray_and_short_packets_are_not_answers() {
        let t1 = ntp(3_973_000_000, 7);
        // Another request's reply (origin differs).
        let p = parse(&reply(0, 2, b"GPS\0", t1 + 1, t1, t1)).unwrap();
        assert!(!answers(&p, NtpTime(t1)));
        // A client packet (mode 3) echoed back.
        let mut b = reply(0, 2, b"GPS\0", t1, t1, t1);
        b[0] = 0x23;
        assert!(!answers(&parse(&b).unwrap(), NtpTime(t1)));
        // Zero transmit timestamp.
        let p = parse(&reply(0, 2, b"GPS\0", t1, t1, 0)).unwrap();
        assert!(!answers(&p, NtpTime(t1)));
        assert!(matches!(parse(&[0u8; 47]), Err(Error::Malformed(_))));
    }

    #[test]
    fn system_time_converts_to_ntp_era_0() {
        // 2026-01-01T00:00:00.5Z
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_600_500);
        let n = NtpTime::from_system(t);
        assert_eq!(n.0 >> 32, 1_767_225_600 + NTP_UNIX_OFFSET);
        assert_eq!(n.0 & 0xFFFF_FFFF, 1 << 31);
    }
}
