//! SMS PDUs: SMS-SUBMIT encoding for `AT+CMGS` in PDU mode, and decoding of what a
//! modem hands back (SMS-DELIVER for incoming texts, SMS-STATUS-REPORT for `+CDS`).
//!
//! References: 3GPP TS 23.040 §9.2.2.2 (SMS-SUBMIT), §9.2.2.1 (SMS-DELIVER),
//! §9.2.2.3 (SMS-STATUS-REPORT), §9.2.3.24.1 (concatenation, IEI 0x00, 8-bit
//! reference), §9.2.3.15 (TP-Status); 3GPP TS 23.038 §6.2.1 (GSM 7-bit default
//! alphabet and its extension table), §4 (data coding scheme); 3GPP TS 27.005 §3.5.1
//! (`<length>` of `+CMGS` counts the TPDU only, not the SMSC address octets).
//!
//! Choices (docs/SMS.md):
//! - a text made only of GSM 7-bit characters (default alphabet or extension table) is
//!   sent in 7-bit (DCS 0x00, 160 septets in one part, 153 per part when split);
//!   anything else — Vietnamese with its diacritics — in UCS-2 (DCS 0x08, 70
//!   characters in one part, 67 per part). Characters outside the Basic Multilingual
//!   Plane are sent as UTF-16 surrogate pairs, never split between two parts; an
//!   escape sequence of the 7-bit extension table is never split either;
//! - the SMSC address is left to the SIM (one `00` octet), the message reference to
//!   the modem (`TP-MR` 0), validity relative 24 h (an alarm text older than a day
//!   misleads more than it helps), a status report requested (`TP-SRR`);
//! - longer texts are concatenated with an 8-bit reference (IEI 0x00, 6-octet UDH);
//!   at most 255 parts.
//!
//! Invariants: [`submit`] never produces a part longer than 140 octets of user data;
//! every part's `tpdu_len` is the octet count `AT+CMGS=<length>` wants.

/// Why a text or a PDU cannot be handled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The phone number is not `+` and digits (or digits alone).
    #[error("phone number {0:?} is not a number: use E.164, e.g. +84912345678")]
    BadNumber(String),
    /// More than 255 parts.
    #[error("text too long for one concatenated SMS ({0} parts; at most 255)")]
    TooLong(usize),
    /// A PDU from the modem that does not parse.
    #[error("malformed PDU from the modem: {0}")]
    Malformed(&'static str),
}

/// One part of an SMS-SUBMIT, ready for `AT+CMGS`.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The whole PDU in hex: SMSC octet(s) followed by the TPDU.
    pub hex: String,
    /// TPDU length in octets (`AT+CMGS=<length>`), SMSC octets not counted.
    pub tpdu_len: usize,
}

/// The coding a text gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// GSM 7-bit default alphabet (DCS 0x00).
    Gsm7,
    /// UCS-2 (DCS 0x08).
    Ucs2,
}

/// GSM 7-bit default alphabet, TS 23.038 §6.2.1, by code point 0x00..0x7F.
/// 0x1B is the escape to the extension table (mapped to a placeholder never matched).
const GSM7: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table (after 0x1B), TS 23.038 §6.2.1.1.
const GSM7_EXT: [(char, u8); 10] = [
    ('\u{0C}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

/// The septets of `c` in the 7-bit alphabet (one, or escape + one), if it has them.
fn gsm7_septets(c: char) -> Option<([u8; 2], usize)> {
    if c == '\u{1B}' {
        return None;
    }
    if let Some(i) = GSM7.iter().position(|x| *x == c) {
        return Some(([i as u8, 0], 1));
    }
    GSM7_EXT
        .iter()
        .find(|(x, _)| *x == c)
        .map(|(_, code)| ([0x1B, *code], 2))
}

/// The coding [`submit`] uses for `text`.
pub fn coding_of(text: &str) -> Coding {
    if text.chars().all(|c| gsm7_septets(c).is_some()) {
        Coding::Gsm7
    } else {
        Coding::Ucs2
    }
}

/// Encode `text` to `number` as one or more SMS-SUBMIT PDUs. `reference` is the
/// concatenation reference used when the text needs more than one part (the caller
/// keeps it per message, so a retry of a part reuses it).
pub fn submit(number: &str, text: &str, reference: u8, report: bool) -> Result<Vec<Part>, Error> {
    let address = address(number)?;
    // Units: one entry per character, holding its septets or UTF-16 units; a unit is
    // never split between two parts.
    let (coding, units): (Coding, Vec<Vec<u16>>) = match coding_of(text) {
        Coding::Gsm7 => (
            Coding::Gsm7,
            text.chars()
                .filter_map(gsm7_septets)
                .map(|(s, n)| s[..n].iter().map(|x| u16::from(*x)).collect())
                .collect(),
        ),
        Coding::Ucs2 => (
            Coding::Ucs2,
            text.chars()
                .map(|c| {
                    let mut b = [0u16; 2];
                    c.encode_utf16(&mut b).to_vec()
                })
                .collect(),
        ),
    };
    let total: usize = units.iter().map(Vec::len).sum();
    let (single, per_part) = match coding {
        Coding::Gsm7 => (160, 153),
        Coding::Ucs2 => (70, 67),
    };
    let chunks: Vec<Vec<u16>> = if total <= single {
        vec![units.concat()]
    } else {
        let mut chunks = Vec::new();
        let mut cur: Vec<u16> = Vec::new();
        for u in units {
            if cur.len() + u.len() > per_part {
                chunks.push(std::mem::take(&mut cur));
            }
            cur.extend(u);
        }
        if !cur.is_empty() {
            chunks.push(cur);
        }
        chunks
    };
    let n = chunks.len();
    if n > 255 {
        return Err(Error::TooLong(n));
    }
    Ok(chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let udh = (n > 1).then(|| [0x05, 0x00, 0x03, reference, n as u8, (i + 1) as u8]);
            part(&address, coding, chunk, udh.as_ref(), report)
        })
        .collect())
}

/// Whether `number` is a phone number this sink can text or call: `+` and digits
/// (E.164) or digits alone, at most 20 digits.
pub fn valid_number(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// TP-DA: length in digits, type of address, semi-octets (TS 23.040 §9.1.2.5).
fn address(number: &str) -> Result<Vec<u8>, Error> {
    let (toa, digits) = match number.strip_prefix('+') {
        Some(d) => (0x91u8, d),
        None => (0x81u8, number),
    };
    if !valid_number(number) {
        return Err(Error::BadNumber(number.to_string()));
    }
    let mut out = vec![digits.len() as u8, toa];
    for pair in digits.as_bytes().chunks(2) {
        let lo = pair[0] - b'0';
        let hi = pair.get(1).map_or(0x0F, |d| d - b'0');
        out.push(hi << 4 | lo);
    }
    Ok(out)
}

fn part(
    address: &[u8],
    coding: Coding,
    chunk: &[u16],
    udh: Option<&[u8; 6]>,
    report: bool,
) -> Part {
    // First octet: TP-MTI 01 (SUBMIT), TP-VPF 10 (relative), TP-SRR, TP-UDHI.
    let mut first = 0x01 | 0x10;
    if report {
        first |= 0x20;
    }
    if udh.is_some() {
        first |= 0x40;
    }
    let mut tpdu = vec![first, 0x00];
    tpdu.extend_from_slice(address);
    tpdu.push(0x00); // TP-PID
    tpdu.push(match coding {
        Coding::Gsm7 => 0x00,
        Coding::Ucs2 => 0x08,
    });
    tpdu.push(0xA7); // TP-VP: 12 h + (167 − 143) × 30 min = 24 h
    match coding {
        Coding::Ucs2 => {
            let mut ud: Vec<u8> = udh.map(|h| h.to_vec()).unwrap_or_default();
            for u in chunk {
                ud.extend_from_slice(&u.to_be_bytes());
            }
            tpdu.push(ud.len() as u8);
            tpdu.extend(ud);
        }
        Coding::Gsm7 => {
            // The UDH is followed by fill bits up to a septet boundary; TP-UDL counts
            // septets, the header's included (TS 23.040 §9.2.3.24).
            let head_bits = udh.map_or(0, |h| h.len() * 8);
            let start = head_bits.div_ceil(7) * 7;
            let udl = start / 7 + chunk.len();
            let mut ud = vec![0u8; (udl * 7).div_ceil(8)];
            if let Some(h) = udh {
                ud[..h.len()].copy_from_slice(h);
            }
            for (i, s) in chunk.iter().enumerate() {
                let bit = start + i * 7;
                let (byte, shift) = (bit / 8, bit % 8);
                let s = *s & 0x7F;
                ud[byte] |= (s << shift) as u8;
                if shift > 1 {
                    ud[byte + 1] |= (s >> (8 - shift)) as u8;
                }
            }
            tpdu.push(udl as u8);
            tpdu.extend(ud);
        }
    }
    let mut hex = String::with_capacity(2 + tpdu.len() * 2);
    hex.push_str("00");
    for b in &tpdu {
        hex.push_str(&format!("{b:02X}"));
    }
    Part {
        hex,
        tpdu_len: tpdu.len(),
    }
}

/// A text that arrived (SMS-DELIVER).
#[derive(Debug, Clone, PartialEq)]
pub struct Deliver {
    /// The sender's number (`+` and digits for an international number).
    pub from: String,
    /// The text of this part.
    pub text: String,
    /// Concatenation `(reference, parts, this part)`, if it is one part of several.
    pub concat: Option<(u16, u8, u8)>,
}

/// A delivery report (SMS-STATUS-REPORT, `+CDS`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    /// TP-MR of the message it reports on (the `+CMGS: <mr>` it got).
    pub mr: u8,
    /// The recipient.
    pub to: String,
    /// TP-ST (TS 23.040 §9.2.3.15).
    pub status: u8,
}

impl StatusReport {
    /// Delivered to the phone (TP-ST 0x00..0x1F: "short message transaction completed").
    pub fn delivered(&self) -> bool {
        self.status < 0x20
    }
    /// The service centre gave up (TP-ST 0x40 and above: permanent error, or a
    /// temporary one it no longer retries); 0x20..0x3F means it is still trying.
    pub fn failed(&self) -> bool {
        self.status >= 0x40
    }
}

fn hex_bytes(hex: &str) -> Result<Vec<u8>, Error> {
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) {
        return Err(Error::Malformed("odd number of hex digits"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(hex.get(i..i + 2).ok_or(Error::Malformed("not hex"))?, 16)
                .map_err(|_| Error::Malformed("not hex"))
        })
        .collect()
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        let v = *self.b.get(self.at).ok_or(Error::Malformed(what))?;
        self.at += 1;
        Ok(v)
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or(Error::Malformed(what))?;
        self.at += n;
        Ok(s)
    }
    fn address(&mut self) -> Result<String, Error> {
        let digits = self.u8("address length")? as usize;
        let toa = self.u8("type of address")?;
        let raw = self.take(digits.div_ceil(2), "address")?;
        if toa & 0x70 == 0x50 {
            // Alphanumeric sender (TS 23.040 §9.1.2.5): 7-bit packed.
            let septets = digits * 4 / 7;
            return Ok(unpack7(raw, 0, septets));
        }
        let mut s = String::new();
        if toa & 0x70 == 0x10 {
            s.push('+');
        }
        for b in raw {
            for d in [b & 0x0F, b >> 4] {
                if d < 10 {
                    s.push(char::from(b'0' + d));
                }
            }
        }
        Ok(s)
    }
}

/// Skip the SMSC address the modem puts before the TPDU (`+CMGR`, `+CMGL`, `+CDS`:
/// TS 27.005 §3.1 `<pdu>`), when `tpdu_len` says there is one.
fn tpdu(bytes: &[u8], tpdu_len: Option<usize>) -> Result<&[u8], Error> {
    match tpdu_len {
        Some(n) if n <= bytes.len() => Ok(&bytes[bytes.len() - n..]),
        Some(_) => Err(Error::Malformed("shorter than its <length>")),
        None => {
            let sca = *bytes.first().ok_or(Error::Malformed("empty"))? as usize;
            bytes.get(1 + sca..).ok_or(Error::Malformed("SMSC address"))
        }
    }
}

fn unpack7(ud: &[u8], start_bit: usize, septets: usize) -> String {
    let mut out = Vec::with_capacity(septets);
    for i in 0..septets {
        let bit = start_bit + i * 7;
        let (byte, shift) = (bit / 8, bit % 8);
        let lo = u16::from(*ud.get(byte).unwrap_or(&0));
        let hi = u16::from(*ud.get(byte + 1).unwrap_or(&0));
        out.push((((hi << 8 | lo) >> shift) & 0x7F) as u8);
    }
    let mut s = String::new();
    let mut esc = false;
    for c in out {
        if esc {
            esc = false;
            s.push(
                GSM7_EXT
                    .iter()
                    .find(|(_, x)| *x == c)
                    .map_or(' ', |(ch, _)| *ch),
            );
        } else if c == 0x1B {
            esc = true;
        } else {
            s.push(GSM7[c as usize]);
        }
    }
    s
}

/// Decode an SMS-DELIVER from `+CMGR` / `+CMGL` (`tpdu_len`: their `<length>`).
pub fn deliver(hex: &str, tpdu_len: Option<usize>) -> Result<Deliver, Error> {
    let bytes = hex_bytes(hex)?;
    let mut c = Cursor {
        b: tpdu(&bytes, tpdu_len)?,
        at: 0,
    };
    let first = c.u8("first octet")?;
    if first & 0x03 != 0x00 {
        return Err(Error::Malformed("not an SMS-DELIVER"));
    }
    let from = c.address()?;
    let _pid = c.u8("TP-PID")?;
    let dcs = c.u8("TP-DCS")?;
    let _scts = c.take(7, "TP-SCTS")?;
    let udl = c.u8("TP-UDL")? as usize;
    let ud = &c.b[c.at..];
    let ucs2 = dcs & 0x0C == 0x08;
    let (udh_len, concat) = if first & 0x40 != 0 {
        let l = *ud.first().ok_or(Error::Malformed("UDH"))? as usize;
        let h = ud.get(1..1 + l).ok_or(Error::Malformed("UDH"))?;
        let mut concat = None;
        let mut i = 0;
        while i + 1 < h.len() {
            let (iei, len) = (h[i], h[i + 1] as usize);
            let v = h
                .get(i + 2..i + 2 + len)
                .ok_or(Error::Malformed("UDH element"))?;
            match (iei, len) {
                (0x00, 3) => concat = Some((u16::from(v[0]), v[1], v[2])),
                (0x08, 4) => concat = Some((u16::from_be_bytes([v[0], v[1]]), v[2], v[3])),
                _ => {}
            }
            i += 2 + len;
        }
        (l + 1, concat)
    } else {
        (0, None)
    };
    let text = if ucs2 {
        let body = ud
            .get(udh_len..udl.min(ud.len()))
            .ok_or(Error::Malformed("user data"))?;
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        let start = (udh_len * 8).div_ceil(7) * 7;
        unpack7(ud, start, udl.saturating_sub(start / 7))
    };
    Ok(Deliver { from, text, concat })
}

/// Decode an SMS-STATUS-REPORT from `+CDS: <length>` and its PDU line.
pub fn status_report(hex: &str, tpdu_len: Option<usize>) -> Result<StatusReport, Error> {
    let bytes = hex_bytes(hex)?;
    let mut c = Cursor {
        b: tpdu(&bytes, tpdu_len)?,
        at: 0,
    };
    let first = c.u8("first octet")?;
    if first & 0x03 != 0x02 {
        return Err(Error::Malformed("not an SMS-STATUS-REPORT"));
    }
    let mr = c.u8("TP-MR")?;
    let to = c.address()?;
    c.take(7, "TP-SCTS")?;
    c.take(7, "TP-DT")?;
    let status = c.u8("TP-ST")?;
    Ok(StatusReport { mr, to, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_seven_bit_and_matches_a_known_pdu() {
        // "hellohello" packs to E8329BFD4697D9EC37 (TS 23.038 §6.1.2.1.1 packing; the
        // classic worked example of the 7-bit alphabet).
        let p = submit("+84912345678", "hellohello", 0, false).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].hex, "0011000B914819325476F80000A70AE8329BFD4697D9EC37");
        assert_eq!(p[0].tpdu_len, p[0].hex.len() / 2 - 1);
    }

    #[test]
    fn vietnamese_is_ucs2_and_split_in_67_characters() {
        let text = "Cảnh báo nghiêm trọng: UPS phòng máy chủ đang chạy bằng ắc quy, máy phát điện chưa khởi động. Điều 10.3";
        assert_eq!(coding_of(text), Coding::Ucs2);
        let n = text.chars().count();
        let parts = submit("0912345678", text, 42, true).unwrap();
        assert_eq!(parts.len(), n.div_ceil(67));
        for (i, p) in parts.iter().enumerate() {
            // first octet 0x71: SUBMIT, VPF relative, SRR, UDHI; DA unknown-type 0x81.
            assert!(p.hex.starts_with("0071000A81"), "{}", p.hex);
            assert!(
                p.hex
                    .contains(&format!("0500032A{:02X}{:02X}", parts.len(), i + 1))
            );
            assert!(p.tpdu_len <= 140 + 20);
        }
    }

    #[test]
    fn seven_bit_escape_and_surrogates_are_never_split() {
        // 152 + 2 septets > 153: the euro sign goes whole to part 2.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let parts = submit("+1", &text, 1, false).unwrap();
        assert_eq!(parts.len(), 2);
        // UDL of part 1: 7 septets of header and fill + 152.
        assert!(
            parts[0].hex.contains("A79F050003010201"),
            "{}",
            parts[0].hex
        );
        // 66 UCS-2 units, then a surrogate pair that would make 68 > 67.
        let text = format!("{}😀bbbbb", "ả".repeat(66));
        let parts = submit("+1", &text, 1, false).unwrap();
        assert_eq!(parts.len(), 2);
        assert!(
            parts[0].hex.contains("A78A050003010201"),
            "{}",
            parts[0].hex
        );
    }

    #[test]
    fn deliver_and_status_report_decode() {
        // An SMS-DELIVER with SMSC +27381000015, from 27838890001 (unknown type),
        // text "hellohello".
        let d = deliver(
            "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37",
            Some(28),
        )
        .unwrap();
        assert_eq!(d.text, "hellohello");
        assert_eq!(d.concat, None);
        // Status report: MR 0x2A to +84912345678, status 0 (delivered).
        let r = status_report(
            "0006 2A0B914819325476F8 52107211450000 52107211450500 00"
                .replace(' ', "")
                .as_str(),
            None,
        )
        .unwrap();
        assert_eq!(
            (r.mr, r.to.as_str(), r.delivered()),
            (0x2A, "+84912345678", true)
        );
        assert!(status_report("00", None).is_err());
        assert!(deliver("zz", None).is_err());
    }
}
