//! A minimal POSIX ustar writer and reader for backup archives: regular files only,
//! names up to 100 bytes, sizes up to 8 GiB. Enough for a state directory, and readable
//! by any `tar`. Every header's checksum is verified when reading.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;

/// An entry's header.
pub struct Header {
    /// Entry name.
    pub name: String,
    /// Bytes of content.
    pub size: u64,
}

fn octal(field: &mut [u8], value: u64) -> io::Result<()> {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{value} does not fit a tar header field"),
        ));
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// Write one regular file of `size` bytes read from `src`.
pub fn append(
    out: &mut impl Write,
    name: &str,
    src: &mut dyn Read,
    size: u64,
    mtime: u64,
) -> io::Result<()> {
    let mut h = [0u8; BLOCK];
    if name.len() > 100 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("file name longer than 100 bytes: {name}"),
        ));
    }
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o600)?;
    octal(&mut h[108..116], 0)?;
    octal(&mut h[116..124], 0)?;
    octal(&mut h[124..136], size)?;
    octal(&mut h[136..148], mtime)?;
    h[148..156].fill(b' ');
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    out.write_all(&h)?;
    let copied = io::copy(&mut src.take(size), out)?;
    if copied != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{name}: {copied} bytes, expected {size} (changed while copied)"),
        ));
    }
    let pad = (BLOCK - (size as usize % BLOCK)) % BLOCK;
    out.write_all(&[0u8; BLOCK][..pad])
}

/// The end-of-archive marker.
pub fn finish(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn parse_octal(field: &[u8]) -> io::Result<u64> {
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let t = text.trim();
    if t.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(t, 8).map_err(|_| invalid(format!("bad octal field {t:?}")))
}

/// The next entry's header, or `None` at the end-of-archive marker.
pub fn next(r: &mut impl Read) -> io::Result<Option<Header>> {
    let mut h = [0u8; BLOCK];
    r.read_exact(&mut h)?;
    if h.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let stored = parse_octal(&h[148..156])?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if stored != sum {
        return Err(invalid(format!(
            "tar header checksum {stored:o}, computed {sum:o}"
        )));
    }
    if h[156] != b'0' && h[156] != 0 {
        return Err(invalid(format!(
            "entry type {:?} (only regular files are expected)",
            h[156] as char
        )));
    }
    let name_len = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let name = String::from_utf8(h[..name_len].to_vec())
        .map_err(|_| invalid("entry name is not UTF-8".into()))?;
    let size = parse_octal(&h[124..136])?;
    Ok(Some(Header { name, size }))
}

/// Skip the padding after an entry of `size` bytes.
pub fn skip_padding(r: &mut impl Read, size: u64) -> io::Result<()> {
    let pad = (BLOCK - (size as usize % BLOCK)) % BLOCK;
    let mut buf = [0u8; BLOCK];
    r.read_exact(&mut buf[..pad])
}
