//! `check-config`'s look at every file a site file names: CA and client certificates,
//! private keys, secret files, the profiles directory, serial ports, GPIO chips and the
//! state directory. Each is checked for what it must be — it exists, it is the right
//! kind (a regular file, a directory, a character device), the service can read (or
//! write) it, and a private one is not readable by every user — and every problem is
//! reported at the value's own `file:line:column`.
//!
//! The walk is over the document's keys, not the validated [`super::Site`], so it
//! needs no knowledge of which source or sink owns a key: a key is recognised by its
//! name (`ca_file`, `cert_file`, `key_file`, a secret's `{ file = ... }`,
//! `profiles_dir`, `state_dir`, a string `port` — a serial port —, `chip`). Paths are
//! taken relative to the config file's directory, as the gateway takes them.
//!
//! Invariants: nothing here opens a file that is not a regular file (a FIFO would hang
//! the check); nothing is written; a missing or unreadable file is a problem, never a
//! panic. With `--offline` (a laptop without the site's board), secrets and files given
//! by an absolute path (the board's own: `/dev/...`, `/etc/...`, `/var/lib/...`) are
//! listed as not checked; files given by a relative path travel with the config and
//! are checked.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::Problem;
use super::span::line_col;

/// What a named file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A PEM certificate (or bundle) the service reads.
    Cert,
    /// A PEM private key: readable by the service, by no other user.
    Key,
    /// A secret file: regular, readable by the service, by no other user.
    Secret,
    /// A directory of profile files.
    ProfilesDir,
    /// The state directory (created at start if missing).
    StateDir,
    /// A serial port (character device) the service reads and writes.
    Serial,
    /// A GPIO chip (character device).
    GpioChip,
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct FileReport {
    /// Problems: `check-config` fails.
    pub problems: Vec<Problem>,
    /// Worth a look, not fatal (the gateway fixes it at start, or it may be fine).
    pub warnings: Vec<Problem>,
    /// Files not checked (`--offline`), one line each: where, and which file.
    pub not_checked: Vec<String>,
    /// How many named files were checked.
    pub checked: usize,
}

/// Check every file the site file at `path` names (see the module docs).
pub fn check_file(path: &Path, offline: bool) -> FileReport {
    let Ok(text) = std::fs::read_to_string(path) else {
        // The config's own problems are reported by `load`.
        return FileReport::default();
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    check(&text, &path.display().to_string(), &base, offline)
}

/// Check every file the site file `text` names; `origin` names it in messages and
/// relative paths are taken from `base`.
pub fn check(text: &str, origin: &str, base: &Path, offline: bool) -> FileReport {
    let mut c = Checker {
        text,
        origin,
        base,
        offline,
        out: FileReport::default(),
        skipped: Vec::new(),
    };
    if let Ok(root) = DeTable::parse(text) {
        c.table(root.get_ref(), "");
    }
    // In the file's order (the document's tables are not kept in order).
    c.out.problems.sort_by_key(|p| (p.line, p.column));
    c.out.warnings.sort_by_key(|p| (p.line, p.column));
    c.skipped.sort();
    c.out.not_checked = c.skipped.into_iter().map(|(_, l)| l).collect();
    c.out
}

struct Checker<'a> {
    text: &'a str,
    origin: &'a str,
    base: &'a Path,
    offline: bool,
    out: FileReport,
    /// Not checked (`--offline`), with their place in the file.
    skipped: Vec<(usize, String)>,
}

impl Checker<'_> {
    fn problem(&self, span: &Range<usize>, ctx: &str, message: String) -> Problem {
        let (line, column) = line_col(self.text, span.start);
        Problem {
            file: self.origin.to_string(),
            line,
            column,
            context: ctx.to_string(),
            message,
        }
    }

    fn table(&mut self, t: &DeTable<'_>, ctx: &str) {
        for (k, v) in t.iter() {
            let key = k.get_ref().as_ref();
            let here = if ctx.is_empty() {
                key.to_string()
            } else {
                format!("{ctx}.{key}")
            };
            self.value(key, v.get_ref(), &v.span(), &here);
        }
    }

    fn value(&mut self, key: &str, v: &DeValue<'_>, span: &Range<usize>, ctx: &str) {
        match v {
            DeValue::Table(t) => {
                // A secret: `{ file = "..." }`.
                if let Some(f) = t.get("file")
                    && let DeValue::String(s) = f.get_ref()
                {
                    let fspan = f.span();
                    self.named(Want::Secret, s, &fspan, &format!("{ctx}.file"));
                }
                self.table(t, ctx);
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(key, item.get_ref(), &item.span(), &format!("{ctx}[{i}]"));
                }
            }
            DeValue::String(s) => {
                let want = match key {
                    "ca_file" | "cert_file" => Some(Want::Cert),
                    "key_file" => Some(Want::Key),
                    "profiles_dir" => Some(Want::ProfilesDir),
                    "state_dir" => Some(Want::StateDir),
                    "port" => Some(Want::Serial),
                    "chip" => Some(Want::GpioChip),
                    _ => None,
                };
                if let Some(w) = want {
                    self.named(w, s, span, ctx);
                }
            }
            _ => {}
        }
    }

    fn resolve(&self, want: Want, s: &str) -> PathBuf {
        if want == Want::GpioChip && !s.contains('/') {
            // `gpiochip0` and `0` name /dev/gpiochip0 (as the GPIO source does).
            let name = if s.bytes().all(|b| b.is_ascii_digit()) {
                format!("gpiochip{s}")
            } else {
                s.to_string()
            };
            return Path::new("/dev").join(name);
        }
        self.base.join(s)
    }

    fn named(&mut self, want: Want, s: &str, span: &Range<usize>, ctx: &str) {
        let path = self.resolve(want, s);
        let absolute = Path::new(s).is_absolute() || want == Want::GpioChip;
        if self.offline && (want == Want::Secret || absolute) {
            let (line, column) = line_col(self.text, span.start);
            self.skipped.push((
                span.start,
                format!(
                    "{}:{line}:{column}: {ctx}: {} not checked (--offline)",
                    self.origin,
                    path.display()
                ),
            ));
            return;
        }
        self.out.checked += 1;
        match inspect(want, &path) {
            Ok(None) => {}
            Ok(Some(w)) => {
                let p = self.problem(span, ctx, w);
                self.out.warnings.push(p);
            }
            Err(e) => {
                let p = self.problem(span, ctx, e);
                self.out.problems.push(p);
            }
        }
    }
}

/// Whether the service may `mode` (`libc::R_OK`, `W_OK`, ...) `path`.
fn access(path: &Path, mode: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// Check one file; `Ok(Some(warning))` when it is usable but worth a look.
fn inspect(want: Want, path: &Path) -> Result<Option<String>, String> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match want {
                Want::StateDir => match path.parent() {
                    Some(p) if p.is_dir() && access(p, libc::W_OK | libc::X_OK) => Ok(Some(
                        format!("{shown} does not exist yet; the gateway creates it at start"),
                    )),
                    _ => Err(format!(
                        "{shown} does not exist and cannot be created (its parent is missing or not writable): the gateway would start degraded, with its state in a volatile directory"
                    )),
                },
                Want::Serial => Err(format!(
                    "{shown} does not exist: is the adapter plugged in? (/dev/serial/by-id/... names it by its serial number)"
                )),
                Want::GpioChip => Err(format!(
                    "{shown} does not exist: no such GPIO chip on this board"
                )),
                _ => Err(format!("{shown} does not exist")),
            };
        }
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    let mode = meta.permissions().mode() & 0o777;
    let ft = meta.file_type();
    match want {
        Want::Cert | Want::Key | Want::Secret => {
            if !ft.is_file() {
                return Err(format!("{shown} is not a regular file ({})", kind_of(&ft)));
            }
            if !access(path, libc::R_OK) {
                return Err(format!("{shown} cannot be read (mode {mode:04o})"));
            }
            if want != Want::Cert && mode & 0o004 != 0 {
                return Err(format!(
                    "{shown}: its mode {mode:04o} lets every user read it: chmod 0600 (or 0640 with the service's group)"
                ));
            }
            if want != Want::Secret {
                let head = read_head(path).map_err(|e| format!("{shown}: {e}"))?;
                let begin = if want == Want::Key {
                    "PRIVATE KEY-----"
                } else {
                    "-----BEGIN CERTIFICATE-----"
                };
                if !head.contains(begin) {
                    return Err(format!(
                        "{shown} is not a PEM {} (no {begin:?} line)",
                        if want == Want::Key {
                            "private key"
                        } else {
                            "certificate"
                        }
                    ));
                }
            }
            Ok(None)
        }
        Want::ProfilesDir => {
            if !ft.is_dir() {
                return Err(format!("{shown} is not a directory ({})", kind_of(&ft)));
            }
            if !access(path, libc::R_OK | libc::X_OK) {
                return Err(format!("{shown} cannot be read (mode {mode:04o})"));
            }
            // Every profile file in it: a regular file the service can read.
            let entries = std::fs::read_dir(path).map_err(|e| format!("{shown}: {e}"))?;
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) != Some("toml") {
                    continue;
                }
                let Ok(m) = std::fs::metadata(&p) else {
                    return Err(format!("{}: cannot be read", p.display()));
                };
                if !m.is_file() {
                    return Err(format!(
                        "profile {} is not a regular file ({})",
                        p.display(),
                        kind_of(&m.file_type())
                    ));
                }
                if !access(&p, libc::R_OK) {
                    return Err(format!(
                        "profile {} cannot be read (mode {:04o})",
                        p.display(),
                        m.permissions().mode() & 0o777
                    ));
                }
            }
            Ok(None)
        }
        Want::StateDir => {
            if !ft.is_dir() {
                return Err(format!(
                    "{shown} is not a directory ({}): the gateway would start degraded",
                    kind_of(&ft)
                ));
            }
            if !access(path, libc::W_OK | libc::X_OK) {
                return Err(format!(
                    "{shown} cannot be written (mode {mode:04o}): the gateway would start degraded, with its state in a volatile directory"
                ));
            }
            if mode & 0o077 != 0 {
                return Ok(Some(format!(
                    "{shown} has mode {mode:04o}; the gateway restricts it to 0700 at start (the journal and queues are the site's records)"
                )));
            }
            Ok(None)
        }
        Want::Serial | Want::GpioChip => {
            if !ft.is_char_device() {
                return Err(format!(
                    "{shown} is not a character device ({}): {}",
                    kind_of(&ft),
                    if want == Want::Serial {
                        "name the serial port, e.g. /dev/ttyUSB0 or /dev/serial/by-id/..."
                    } else {
                        "name the GPIO chip, e.g. gpiochip0"
                    }
                ));
            }
            if !access(path, libc::R_OK | libc::W_OK) {
                return Err(format!(
                    "{shown} cannot be opened for reading and writing by this user (mode {mode:04o}): the service's user must be in its group ({})",
                    if want == Want::Serial {
                        "dialout"
                    } else {
                        "gpio"
                    }
                ));
            }
            Ok(None)
        }
    }
}

fn kind_of(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a file"
    }
}

/// The first 64 KiB of a regular file, as text (lossy).
fn read_head(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(64 * 1024)
        .read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn at(r: &FileReport) -> Vec<String> {
        r.problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn every_named_file_is_checked_at_its_place_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "ca.pem", CERT, 0o644);
        write(d, "good.key", KEY, 0o600);
        write(d, "open.key", KEY, 0o644);
        write(d, "notpem.pem", "hello\n", 0o644);
        write(d, "secret", "pw\n", 0o600);
        std::fs::create_dir(d.join("profiles")).unwrap();
        write(&d.join("profiles"), "ups.toml", "[profile]\n", 0o644);
        let fifo = d.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let state = d.join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        let text = format!(
            r#"profiles_dir = "profiles"
[[sinks]]
ca_file = "ca.pem"
key_file = "open.key"
cert_file = "notpem.pem"
password = {{ file = "fifo" }}
[[sinks]]
ca_file = "missing.pem"
key_file = "good.key"
token = {{ file = "secret" }}
[[buses]]
port = "ca.pem"
[storage]
state_dir = "{}"
"#,
            state.display()
        );
        let r = check(&text, "site.toml", d, false);
        let got = at(&r);
        let want = [
            "site.toml:4:12: sinks[0].key_file:",
            "site.toml:5:13: sinks[0].cert_file:",
            "site.toml:6:21: sinks[0].password.file:",
            "site.toml:8:11: sinks[1].ca_file:",
            "site.toml:12:8: buses[0].port:",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "{g} should start with {w}");
        }
        assert!(got[0].contains("every user"), "{}", got[0]);
        assert!(got[1].contains("not a PEM certificate"), "{}", got[1]);
        assert!(got[2].contains("a FIFO"), "{}", got[2]);
        assert!(got[3].contains("does not exist"), "{}", got[3]);
        assert!(got[4].contains("not a character device"), "{}", got[4]);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].message.contains("0755"));
        assert_eq!(r.checked, 10);
    }

    #[test]
    fn a_profile_file_that_is_not_a_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = dir.path().join("profiles");
        std::fs::create_dir_all(profiles.join("bad.toml")).unwrap();
        let r = check(
            "profiles_dir = \"profiles\"\n",
            "site.toml",
            dir.path(),
            false,
        );
        let got = at(&r);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("site.toml:1:16: profiles_dir: profile "),
            "{got:?}"
        );
        assert!(
            got[0].contains("bad.toml is not a regular file (a directory)"),
            "{got:?}"
        );
    }

    #[test]
    fn offline_checks_what_travels_with_the_config_and_lists_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"profiles_dir = "nope"
[[sinks]]
password = { file = "/etc/dc-gateway/mqtt.secret" }
ca_file = "/etc/ssl/site-ca.pem"
[[buses]]
port = "/dev/serial/by-id/usb-FTDI-if00"
[[devices]]
chip = "gpiochip7"
"#;
        let r = check(text, "site.toml", dir.path(), true);
        assert_eq!(r.checked, 1);
        assert_eq!(at(&r).len(), 1);
        assert!(
            at(&r)[0].starts_with("site.toml:1:16: profiles_dir:"),
            "{:?}",
            at(&r)
        );
        assert_eq!(r.not_checked.len(), 4, "{:?}", r.not_checked);
        assert!(r.not_checked[0].starts_with("site.toml:3:21: sinks[0].password.file:"));
        assert!(r.not_checked[3].contains("/dev/gpiochip7"));
        // Online the same file: every one is looked at.
        let r = check(text, "site.toml", dir.path(), false);
        assert_eq!(r.checked, 5);
        assert!(r.not_checked.is_empty());
        assert!(
            at(&r)
                .iter()
                .any(|p| p.contains("/dev/gpiochip7 does not exist"))
        );
    }
}
