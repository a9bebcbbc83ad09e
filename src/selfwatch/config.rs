//! `[clock]`: which NTP servers the gateway checks its clock against, how often, and
//! the largest offset it accepts (Art. 16.6).
//!
//! Without a `[clock]` table the clock is not checked (the `clock_*` points are not
//! produced and a warning says so at start). A `[clock]` table without `servers` takes
//! the servers the board's own time daemon uses: `NTP=` of systemd-timesyncd
//! (`/etc/systemd/timesyncd.conf` and its `.conf.d/` drop-ins), else the `server` and
//! `pool` lines of chrony (`/etc/chrony/chrony.conf`, `/etc/chrony.conf`,
//! `/etc/chrony/sources.d/*.sources`); if neither names one, nothing is checked and a
//! warning says so.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::DeValue;

use crate::config::Report;

/// Default time between two checks, seconds (chrony's and ntpd's default minimum poll).
pub const fn default_interval_s() -> u64 {
    64
}
/// Shortest interval: RFC 4330 §10 forbids an SNTP client to poll more often than
/// every 15 s.
pub const MIN_INTERVAL_S: u64 = 15;
/// Default largest accepted offset, ms.
pub const fn default_max_offset_ms() -> u64 {
    1_000
}
/// Default wait for one server's answer, ms.
pub const fn default_timeout_ms() -> u64 {
    1_000
}

/// `[clock]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClock {
    /// NTP servers, `host` or `host:port` (port 123 by default). Default: the servers
    /// of the board's time daemon (timesyncd, else chrony).
    #[serde(default)]
    pub servers: Option<Spanned<Vec<Spanned<String>>>>,
    /// Seconds between two checks (default 64, at least 15).
    #[serde(default)]
    pub interval_s: Option<Spanned<u64>>,
    /// The largest offset from the servers' time accepted as synchronised, ms (default
    /// 1000). Above it `clock_behind` / `clock_ahead` raise and `clock_synced` is false.
    #[serde(default)]
    pub max_offset_ms: Option<Spanned<u64>>,
    /// How long to wait for each server's answer, ms (default 1000).
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
}

/// `[clock]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockConfig {
    /// Servers to ask, in order; empty: the clock is not checked.
    pub servers: Vec<String>,
    /// Where the servers came from (`site file`, a system file, or `none`).
    pub servers_from: String,
    /// Time between two checks.
    pub interval: Duration,
    /// The largest accepted offset, ms.
    pub max_offset_ms: u64,
    /// Wait for one answer.
    pub timeout: Duration,
}

/// Validate the `[clock]` table (taken out of the document by the loader), if any.
pub(crate) fn validate(
    r: &mut Report<'_>,
    table: Option<Spanned<DeValue<'_>>>,
) -> Option<ClockConfig> {
    let raw: RawClock = r.parse_value(table?, "clock")?;
    let mut c = ClockConfig {
        servers: Vec::new(),
        servers_from: String::new(),
        interval: Duration::from_secs(default_interval_s()),
        max_offset_ms: default_max_offset_ms(),
        timeout: Duration::from_millis(default_timeout_ms()),
    };
    match &raw.servers {
        Some(list) => {
            for s in list.get_ref() {
                let v = s.get_ref().trim();
                if v.is_empty() || v.contains(char::is_whitespace) {
                    r.at(
                        s.span(),
                        "clock.servers",
                        format!("{:?} is not a host or host:port", s.get_ref()),
                    );
                } else {
                    c.servers.push(v.to_string());
                }
            }
            c.servers_from = "site file".into();
        }
        None => {
            let (servers, from) = system_servers(Path::new("/etc"));
            c.servers = servers;
            c.servers_from = from;
        }
    }
    let mut range = |v: &Option<Spanned<u64>>, key: &str, lo: u64, hi: u64| -> Option<u64> {
        let v = v.as_ref()?;
        if (lo..=hi).contains(v.get_ref()) {
            Some(*v.get_ref())
        } else {
            r.at(
                v.span(),
                format!("clock.{key}"),
                format!("{} is out of range: use {lo} to {hi}", v.get_ref()),
            );
            None
        }
    };
    if let Some(s) = range(&raw.interval_s, "interval_s", MIN_INTERVAL_S, 86_400) {
        c.interval = Duration::from_secs(s);
    }
    if let Some(ms) = range(&raw.max_offset_ms, "max_offset_ms", 1, 3_600_000) {
        c.max_offset_ms = ms;
    }
    if let Some(ms) = range(&raw.timeout_ms, "timeout_ms", 100, 10_000) {
        c.timeout = Duration::from_millis(ms);
    }
    Some(c)
}

/// The servers of the board's time daemon under `etc` (normally `/etc`), and the file
/// they came from; `(empty, "none")` if no daemon's file names one.
pub fn system_servers(etc: &Path) -> (Vec<String>, String) {
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let sorted = |dir: &Path, ext: &str| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == ext))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    // timesyncd: the last `NTP=` wins (main file, then drop-ins in order).
    let main = etc.join("systemd/timesyncd.conf");
    let mut files = vec![main.clone()];
    files.extend(sorted(&etc.join("systemd/timesyncd.conf.d"), "conf"));
    let mut found: Option<(Vec<String>, String)> = None;
    for f in &files {
        if let Some(t) = read(f)
            && let Some(list) = parse_timesyncd(&t)
        {
            found = Some((list, f.display().to_string()));
        }
    }
    if let Some((list, from)) = found
        && !list.is_empty()
    {
        return (list, from);
    }
    for f in [etc.join("chrony/chrony.conf"), etc.join("chrony.conf")] {
        if let Some(t) = read(&f) {
            let mut list = parse_chrony(&t);
            for s in sorted(&etc.join("chrony/sources.d"), "sources") {
                list.extend(read(&s).map(|t| parse_chrony(&t)).unwrap_or_default());
            }
            if !list.is_empty() {
                return (list, f.display().to_string());
            }
        }
    }
    (Vec::new(), "none".into())
}

/// `NTP=` in the `[Time]` section of a timesyncd file: `Some(list)` if the key is set
/// (an empty value resets the list, as in systemd), `None` if absent.
pub fn parse_timesyncd(text: &str) -> Option<Vec<String>> {
    let mut in_time = false;
    let mut out = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_time = line == "[Time]";
            continue;
        }
        if in_time && let Some(v) = line.strip_prefix("NTP=") {
            out = Some(v.split_whitespace().map(str::to_string).collect());
        }
    }
    out
}

/// The hosts of `server` and `pool` directives in a chrony file (options after the
/// host are ignored; a `port N` option is kept as `host:N`).
pub fn parse_chrony(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.split(['#', '!', ';']).next()?.trim();
            let mut w = l.split_whitespace();
            let directive = w.next()?;
            if directive != "server" && directive != "pool" {
                return None;
            }
            let host = w.next()?.to_string();
            let rest: Vec<&str> = w.collect();
            let port = rest
                .windows(2)
                .find(|p| p[0] == "port")
                .and_then(|p| p[1].parse::<u16>().ok());
            Some(match port {
                Some(p) if host.contains(':') => format!("[{host}]:{p}"),
                Some(p) => format!("{host}:{p}"),
                None => host,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timesyncd_ntp_key_in_time_section() {
        let t = "#  This file is part of systemd.\n[Time]\n#NTP=\nNTP=ntp1.vnpt.vn  0.vn.pool.ntp.org\nFallbackNTP=0.debian.pool.ntp.org\n";
        assert_eq!(
            parse_timesyncd(t),
            Some(vec!["ntp1.vnpt.vn".into(), "0.vn.pool.ntp.org".into()])
        );
        // Debian's shipped file: every key commented out.
        assert_eq!(
            parse_timesyncd("[Time]\n#NTP=\n#FallbackNTP=0.debian.pool.ntp.org\n"),
            None
        );
        // A key outside [Time] is not ours.
        assert_eq!(parse_timesyncd("[Other]\nNTP=x\n"), None);
        assert_eq!(parse_timesyncd("[Time]\nNTP=\n"), Some(vec![]));
    }

    #[test]
    fn chrony_server_and_pool_lines() {
        let t = "# Debian's chrony.conf\npool 2.debian.pool.ntp.org iburst\n\
                 server 10.0.0.1 iburst prefer\n! server commented.example\n\
                 server ntp.local port 10123 minpoll 4\nsourcedir /run/chrony-dhcp\n\
                 local stratum 10\n";
        assert_eq!(
            parse_chrony(t),
            vec!["2.debian.pool.ntp.org", "10.0.0.1", "ntp.local:10123"]
        );
    }

    #[test]
    fn system_servers_prefer_timesyncd_then_chrony() {
        let etc = tempfile::tempdir().unwrap();
        assert_eq!(system_servers(etc.path()), (vec![], "none".to_string()));
        std::fs::create_dir_all(etc.path().join("chrony")).unwrap();
        std::fs::write(
            etc.path().join("chrony/chrony.conf"),
            "pool a.example iburst\n",
        )
        .unwrap();
        assert_eq!(system_servers(etc.path()).0, vec!["a.example"]);
        std::fs::create_dir_all(etc.path().join("systemd/timesyncd.conf.d")).unwrap();
        std::fs::write(
            etc.path().join("systemd/timesyncd.conf"),
            "[Time]\nNTP=b.example\n",
        )
        .unwrap();
        std::fs::write(
            etc.path().join("systemd/timesyncd.conf.d/site.conf"),
            "[Time]\nNTP=c.example d.example\n",
        )
        .unwrap();
        let (list, from) = system_servers(etc.path());
        assert_eq!(list, vec!["c.example", "d.example"]);
        assert!(from.ends_with("site.conf"), "{from}");
    }

    fn parse(toml: &str) -> Result<crate::config::Site, crate::config::ConfigErrors> {
        let text = format!("[site]\nname = \"t\"\n{toml}");
        crate::config::parse(&text, "site.toml", Path::new("."))
    }

    #[test]
    fn clock_table_validated_with_positions() {
        let s = parse("").unwrap();
        assert_eq!(s.clock, None, "no [clock]: not checked");
        let s = parse(
            "[clock]\nservers = [\"127.0.0.1:1234\"]\ninterval_s = 15\nmax_offset_ms = 500\n",
        )
        .unwrap();
        let c = s.clock.unwrap();
        assert_eq!(c.servers, vec!["127.0.0.1:1234"]);
        assert_eq!(c.interval, Duration::from_secs(15));
        assert_eq!(c.max_offset_ms, 500);
        assert_eq!(c.timeout, Duration::from_millis(1000));
        let e = parse("[clock]\nservers = [\"a b\"]\ninterval_s = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("site.toml:4:12: clock.servers"), "{e}");
        assert!(
            e.contains("site.toml:5:14: clock.interval_s: 5 is out of range: use 15 to 86400"),
            "{e}"
        );
        let e = parse("[clock]\nserver = []\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `server`"), "{e}");
    }
}
