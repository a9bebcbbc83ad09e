//! Modbus RTU framing: bytes in, whole frames out.
//!
//! *Modbus over Serial Line Specification and Implementation Guide V1.02*, §2.5.1.1
//! "MODBUS Message RTU Framing": a frame ends when the line has been silent for 3.5
//! character times (t3.5). A character is 11 bits (start, 8 data, parity or a second
//! stop bit, stop). "For baud rates greater than 19200 Bps, fixed values for the 2
//! timers should be used: … 1.750 ms for inter-frame delay (t3.5)."
//!
//! [`Receiver`] collects bytes with their arrival time; [`Receiver::poll`] hands out a
//! frame once t3.5 has passed since its last byte. The caller polls before every push
//! and whenever it wakes up ([`Receiver::deadline_us`] says when to). A frame longer
//! than the 256-byte RTU maximum is dropped whole and counted. The inter-character
//! limit t1.5 is not enforced: on the host the bytes arrive through an OS pipe whose
//! timing says nothing about the wire, and a frame damaged by a gap fails its CRC.

/// The largest RTU frame (address + PDU of 253 bytes + CRC), §2.5.1.
pub const MAX_FRAME: usize = 256;

/// Bits per RTU character (§2.5.1: 1 start, 8 data, 1 parity or stop, 1 stop).
pub const BITS_PER_CHAR: u32 = 11;

/// t3.5 in microseconds for `baud`: 3.5 × 11 bits at `baud`, rounded up, or the
/// spec's fixed 1750 µs above 19200 baud.
pub const fn t35_us(baud: u32) -> u32 {
    if baud > 19_200 {
        1_750
    } else if baud == 0 {
        u32::MAX
    } else {
        // 3.5 * 11 * 1e6 = 38.5e6
        38_500_000_u32.div_ceil(baud)
    }
}

/// t1.5 in microseconds for `baud` (750 µs above 19200 baud); for documentation and
/// for boards that time the line in hardware.
pub const fn t15_us(baud: u32) -> u32 {
    if baud > 19_200 {
        750
    } else if baud == 0 {
        u32::MAX
    } else {
        16_500_000_u32.div_ceil(baud)
    }
}

/// Collects bytes into frames by the silent interval.
#[derive(Debug)]
pub struct Receiver {
    buf: [u8; MAX_FRAME],
    len: usize,
    overrun: bool,
    last_us: u64,
    t35_us: u32,
    /// Frames dropped because they were longer than [`MAX_FRAME`].
    pub overruns: u32,
}

impl Receiver {
    /// A receiver for a line at `baud`.
    pub fn new(baud: u32) -> Self {
        Receiver {
            buf: [0; MAX_FRAME],
            len: 0,
            overrun: false,
            last_us: 0,
            t35_us: t35_us(baud),
            overruns: 0,
        }
    }

    /// Changes the line speed (after a settings write); drops a half-received frame.
    pub fn set_baud(&mut self, baud: u32) {
        self.t35_us = t35_us(baud);
        self.len = 0;
        self.overrun = false;
    }

    /// The silent interval in use, µs.
    pub fn t35(&self) -> u32 {
        self.t35_us
    }

    /// Adds one byte received at `now_us`. Call [`Receiver::poll`] first: a byte that
    /// comes t3.5 or more after the previous one starts a new frame, and a frame not
    /// taken by then is lost.
    pub fn push(&mut self, byte: u8, now_us: u64) {
        if (self.len > 0 || self.overrun) && self.silent(now_us) {
            self.finish_overrun();
            self.len = 0;
        }
        if self.len == MAX_FRAME {
            self.overrun = true;
        } else if !self.overrun {
            self.buf[self.len] = byte;
            self.len += 1;
        }
        self.last_us = now_us;
    }

    fn silent(&self, now_us: u64) -> bool {
        now_us.saturating_sub(self.last_us) >= u64::from(self.t35_us)
    }

    fn finish_overrun(&mut self) {
        if self.overrun {
            self.overrun = false;
            self.len = 0;
            self.overruns = self.overruns.wrapping_add(1);
        }
    }

    /// The complete frame, once the line has been silent for t3.5 after it.
    pub fn poll(&mut self, now_us: u64) -> Option<&[u8]> {
        if !self.silent(now_us) {
            return None;
        }
        self.finish_overrun();
        if self.len == 0 {
            return None;
        }
        let n = self.len;
        self.len = 0;
        Some(&self.buf[..n])
    }

    /// When a frame in progress will be complete (µs, same clock as `push`), if one is.
    pub fn deadline_us(&self) -> Option<u64> {
        (self.len > 0 || self.overrun).then(|| self.last_us + u64::from(self.t35_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_interval_from_the_baud_rate() {
        // 9600 baud: 11 bits = 1145.8 µs per character, x3.5 = 4010.4 µs.
        assert_eq!(t35_us(9_600), 4_011);
        // 19200: 2005.2 µs -> 2006; the last rate with a computed value.
        assert_eq!(t35_us(19_200), 2_006);
        // Above 19200: the spec's fixed 1.75 ms / 750 µs.
        assert_eq!(t35_us(38_400), 1_750);
        assert_eq!(t35_us(115_200), 1_750);
        assert_eq!(t15_us(115_200), 750);
        assert_eq!(t15_us(9_600), 1_719);
    }

    #[test]
    fn a_frame_ends_after_three_and_a_half_characters_of_silence() {
        let mut r = Receiver::new(9_600);
        let mut t = 1_000;
        for b in [1u8, 3, 0, 0, 0, 1, 0x84, 0x0A] {
            assert!(r.poll(t).is_none());
            r.push(b, t);
            t += 1_146; // back to back at 9600 baud
        }
        let last = t - 1_146;
        assert!(r.poll(last + 4_010).is_none(), "3.5 chars not yet over");
        assert_eq!(r.deadline_us(), Some(last + 4_011));
        assert_eq!(
            r.poll(last + 4_011),
            Some(&[1u8, 3, 0, 0, 0, 1, 0x84, 0x0A][..])
        );
        assert!(r.poll(last + 10_000).is_none(), "handed out once");
        assert_eq!(r.deadline_us(), None);
    }

    #[test]
    fn a_gap_inside_the_limit_keeps_one_frame_a_longer_one_splits() {
        let mut r = Receiver::new(115_200);
        r.push(1, 0);
        r.push(2, 1_700); // under 1.75 ms: same frame
        assert!(r.poll(1_700 + 1_749).is_none());
        assert_eq!(r.poll(1_700 + 1_750), Some(&[1u8, 2][..]));
        // A caller that did not poll: the old bytes are dropped, not glued on.
        r.push(7, 10_000);
        r.push(8, 20_000);
        assert_eq!(r.poll(30_000), Some(&[8u8][..]));
    }

    #[test]
    fn an_oversized_frame_is_dropped_whole_and_counted() {
        let mut r = Receiver::new(115_200);
        for i in 0..300u64 {
            r.push(i as u8, i * 10);
        }
        assert!(r.poll(3_000 + 1_750).is_none());
        assert_eq!(r.overruns, 1);
        // The next frame is whole again.
        r.push(0x11, 100_000);
        assert_eq!(r.poll(200_000), Some(&[0x11u8][..]));
        assert_eq!(r.overruns, 1);
    }

    #[test]
    fn exactly_256_bytes_is_a_frame() {
        let mut r = Receiver::new(115_200);
        for i in 0..256u64 {
            r.push(i as u8, i);
        }
        assert_eq!(r.poll(10_000).map(<[u8]>::len), Some(256));
        assert_eq!(r.overruns, 0);
    }
}
