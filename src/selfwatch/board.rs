//! The board's health from the kernel's files: memory (`/proc/meminfo`), free space of
//! the state dir's filesystem (`statvfs`), bytes written to its block device
//! (`/proc/diskstats`), CPU temperature (`/sys/class/thermal`) and, on a Raspberry Pi,
//! throttling and under-voltage (`vcgencmd get_throttled`).
//!
//! Invariants: a figure the board cannot give is absent (`None`), never a zero — a
//! container has no thermal zone, an overlay filesystem has no block device, a board
//! other than a Pi has no `vcgencmd`. The parsers are pure functions of the file's text
//! and are tested on hand-written samples of the kernel's formats.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes per sector in `/proc/diskstats`: always 512, whatever the device's own
/// sector size (Documentation/admin-guide/iostats.rst).
const DISKSTATS_SECTOR: u64 = 512;

/// One collection of the board's figures; `None` where the board gives none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    /// `MemAvailable` in MiB.
    pub memory_available_mib: Option<f64>,
    /// `MemAvailable / MemTotal`, percent.
    pub memory_available_pct: Option<f64>,
    /// Free space for the gateway (not root's reserve) on the state dir's filesystem, MiB.
    pub disk_free_mib: Option<f64>,
    /// The same as a percent of the filesystem's size.
    pub disk_free_pct: Option<f64>,
    /// Bytes written to the state dir's block device, MiB per day (average over the
    /// last 24 h, or since the gateway started if that is shorter; at least 10 min).
    pub disk_written_mib_per_day: Option<f64>,
    /// CPU temperature, °C.
    pub cpu_temperature_c: Option<f64>,
    /// The Pi's firmware reports throttling now (frequency capped, throttled, or soft
    /// temperature limit).
    pub cpu_throttled: Option<bool>,
    /// The Pi's firmware reports under-voltage now.
    pub undervoltage: Option<bool>,
}

/// `MemTotal` and `MemAvailable` in kB from `/proc/meminfo`.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    Some((field("MemTotal")?, field("MemAvailable")?))
}

/// Sectors written to device `major:minor` from `/proc/diskstats` (the 10th field:
/// major, minor, name, reads, reads merged, sectors read, ms reading, writes, writes
/// merged, **sectors written**, ...).
pub fn parse_diskstats(text: &str, major: u32, minor: u32) -> Option<u64> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 10 {
            return None;
        }
        if f[0].parse::<u32>().ok()? == major && f[1].parse::<u32>().ok()? == minor {
            f[9].parse().ok()
        } else {
            None
        }
    })
}

/// Major and minor number of a Linux `dev_t` (glibc's `gnu_dev_major`/`minor`).
pub fn dev_major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// A thermal zone's `temp` file (millidegrees Celsius) in °C.
pub fn parse_thermal(text: &str) -> Option<f64> {
    let milli: i64 = text.trim().parse().ok()?;
    // A disconnected sensor reads as an absurd value on some boards.
    let c = milli as f64 / 1000.0;
    (-40.0..=150.0).contains(&c).then_some(c)
}

/// `vcgencmd get_throttled` output (`throttled=0x50005`): (throttled now, under-voltage
/// now). Bits per the Raspberry Pi documentation ("vcgencmd", get_throttled): 0
/// under-voltage, 1 ARM frequency capped, 2 currently throttled, 3 soft temperature
/// limit active; bits 16–19 say the same happened since boot (not used: the points say
/// what holds now).
pub fn parse_throttled(text: &str) -> Option<(bool, bool)> {
    let hex = text
        .trim()
        .strip_prefix("throttled=")?
        .trim_start_matches("0x");
    let bits = u32::from_str_radix(hex, 16).ok()?;
    Some((bits & 0b1110 != 0, bits & 1 != 0))
}

/// Where the collector reads from; the real paths in production, a temp dir in tests.
#[derive(Debug, Clone)]
pub struct Sources {
    /// `/proc`.
    pub proc_dir: PathBuf,
    /// `/sys/class/thermal`.
    pub thermal_dir: PathBuf,
    /// The state dir (its filesystem and device are watched).
    pub state_dir: PathBuf,
    /// `vcgencmd`, if found.
    pub vcgencmd: Option<PathBuf>,
}

impl Sources {
    /// The real paths for `state_dir`; `vcgencmd` looked up in `/usr/bin`, `/opt/vc/bin`
    /// and `PATH`.
    pub fn system(state_dir: &Path) -> Sources {
        let mut dirs: Vec<PathBuf> = vec!["/usr/bin".into(), "/opt/vc/bin".into()];
        if let Some(p) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&p));
        }
        Sources {
            proc_dir: "/proc".into(),
            thermal_dir: "/sys/class/thermal".into(),
            state_dir: state_dir.to_path_buf(),
            vcgencmd: dirs
                .into_iter()
                .map(|d| d.join("vcgencmd"))
                .find(|p| p.is_file()),
        }
    }
}

/// Collects [`Board`] figures; keeps the written-sectors history for the daily rate.
#[derive(Debug)]
pub struct Collector {
    src: Sources,
    /// (when, sectors written), oldest first, at most a day.
    written: VecDeque<(Instant, u64)>,
}

/// The shortest span the write rate is computed over: a shorter one extrapolates a
/// start-up burst (opening the databases) to a whole day.
pub const MIN_RATE_SPAN: Duration = Duration::from_secs(600);

impl Collector {
    /// A collector reading from `src`.
    pub fn new(src: Sources) -> Collector {
        Collector {
            src,
            written: VecDeque::new(),
        }
    }

    /// Read every figure once (blocking file reads; `vcgencmd` runs as a child process).
    pub fn collect(&mut self, now: Instant) -> Board {
        let mut b = Board::default();
        if let Some((total, avail)) =
            read(&self.src.proc_dir.join("meminfo")).and_then(|t| parse_meminfo(&t))
            && total > 0
        {
            b.memory_available_mib = Some(round1(avail as f64 / 1024.0));
            b.memory_available_pct = Some(round1(avail as f64 * 100.0 / total as f64));
        }
        if let Some((free, size)) = statvfs(&self.src.state_dir)
            && size > 0
        {
            b.disk_free_mib = Some(round1(free as f64 / 1_048_576.0));
            b.disk_free_pct = Some(round1(free as f64 * 100.0 / size as f64));
        }
        b.disk_written_mib_per_day = self.written_rate(now);
        b.cpu_temperature_c = cpu_temperature(&self.src.thermal_dir).map(round1);
        if let Some(cmd) = &self.src.vcgencmd
            && let Ok(out) = std::process::Command::new(cmd)
                .arg("get_throttled")
                .output()
            && out.status.success()
            && let Some((thr, uv)) = parse_throttled(&String::from_utf8_lossy(&out.stdout))
        {
            b.cpu_throttled = Some(thr);
            b.undervoltage = Some(uv);
        }
        b
    }

    /// Add this collection's sectors written and give the daily rate, if the device is
    /// known and the history spans [`MIN_RATE_SPAN`].
    fn written_rate(&mut self, now: Instant) -> Option<f64> {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(&self.src.state_dir).ok()?.dev();
        let (major, minor) = dev_major_minor(dev);
        let sectors = read(&self.src.proc_dir.join("diskstats"))
            .and_then(|t| parse_diskstats(&t, major, minor))?;
        // A counter that went back (device re-attached): start the history again.
        if self.written.back().is_some_and(|(_, s)| *s > sectors) {
            self.written.clear();
        }
        self.written.push_back((now, sectors));
        while self
            .written
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(86_400))
        {
            self.written.pop_front();
        }
        let (t0, s0) = *self.written.front()?;
        let span = now.duration_since(t0);
        if span < MIN_RATE_SPAN {
            return None;
        }
        let bytes = (sectors - s0) * DISKSTATS_SECTOR;
        Some(round1(
            bytes as f64 / 1_048_576.0 * 86_400.0 / span.as_secs_f64(),
        ))
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// The CPU's thermal zone: the one whose `type` names the CPU or SoC (`cpu-thermal` on
/// a Pi, `x86_pkg_temp`, `soc_thermal`), else `thermal_zone0`.
fn cpu_temperature(dir: &Path) -> Option<f64> {
    let mut zones: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("thermal_zone"))
        })
        .collect();
    zones.sort();
    let cpu = zones.iter().find(|z| {
        read(&z.join("type")).is_some_and(|t| {
            let t = t.trim();
            t.contains("cpu") || t.contains("x86_pkg") || t.contains("soc")
        })
    });
    let zone = cpu.or_else(|| zones.first())?;
    read(&zone.join("temp")).and_then(|t| parse_thermal(&t))
}

/// (bytes free for unprivileged users, filesystem size in bytes) of `path`'s filesystem.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn statvfs(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let frsize = s.f_frsize as u64;
    Some((s.f_bavail as u64 * frsize, s.f_blocks as u64 * frsize))
}

/// Not available on this target: the disk points are not produced.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn statvfs(_path: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of a real `/proc/meminfo` (Linux 6.1, a 4 GB Raspberry Pi 4).
    const MEMINFO: &str = "MemTotal:        3880192 kB\n\
MemFree:         2601236 kB\n\
MemAvailable:    3264000 kB\n\
Buffers:           49600 kB\n\
Cached:           703540 kB\n";

    /// `/proc/diskstats` lines: an SD card and its two partitions, then a loop device
    /// (format: Documentation/admin-guide/iostats.rst, 17 fields since Linux 5.5).
    const DISKSTATS: &str = "\
 179       0 mmcblk0 20466 8427 1466474 16322 30533 27771 1577818 164416 0 89796 182011 0 0 0 0 2217 1272
 179       1 mmcblk0p1 152 419 9522 142 2 0 2 1 0 140 143 0 0 0 0 0 0
 179       2 mmcblk0p2 20283 8008 1454584 16152 30531 27771 1577816 164414 0 89644 180566 0 0 0 0 0 0
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
";

    #[test]
    fn meminfo_total_and_available() {
        assert_eq!(parse_meminfo(MEMINFO), Some((3_880_192, 3_264_000)));
        // A kernel before 3.14 has no MemAvailable: not guessed.
        assert_eq!(parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n"), None);
        // MemAvailableX is not MemAvailable.
        assert_eq!(parse_meminfo("MemTotal: 1 kB\nMemAvailableX: 5 kB\n"), None);
    }

    #[test]
    fn diskstats_sectors_written_of_one_device() {
        assert_eq!(parse_diskstats(DISKSTATS, 179, 2), Some(1_577_816));
        assert_eq!(parse_diskstats(DISKSTATS, 179, 0), Some(1_577_818));
        assert_eq!(parse_diskstats(DISKSTATS, 7, 0), Some(0));
        assert_eq!(parse_diskstats(DISKSTATS, 8, 0), None);
        assert_eq!(parse_diskstats("179 2 short 1 2\n", 179, 2), None);
    }

    /// glibc's `makedev`.
    fn makedev(major: u64, minor: u64) -> u64 {
        ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12)
    }

    #[test]
    fn dev_t_to_major_minor() {
        assert_eq!(dev_major_minor((179 << 8) | 2), (179, 2));
        assert_eq!(dev_major_minor(makedev(179, 2)), (179, 2));
        assert_eq!(dev_major_minor(makedev(259, 65_536)), (259, 65_536));
        assert_eq!(dev_major_minor(makedev(4095, 1_048_575)), (4095, 1_048_575));
    }

    #[test]
    fn thermal_millidegrees() {
        assert_eq!(parse_thermal("48312\n"), Some(48.312));
        assert_eq!(parse_thermal("-5000"), Some(-5.0));
        assert_eq!(parse_thermal("garbage"), None);
        // An unplugged sensor on some boards.
        assert_eq!(parse_thermal("-273150"), None);
    }

    #[test]
    fn throttled_bits_now_not_since_boot() {
        assert_eq!(parse_throttled("throttled=0x0\n"), Some((false, false)));
        // Under-voltage now and since boot, throttled now.
        assert_eq!(parse_throttled("throttled=0x50005"), Some((true, true)));
        // Only "has occurred" bits: nothing holds now.
        assert_eq!(parse_throttled("throttled=0xf0000"), Some((false, false)));
        assert_eq!(parse_throttled("throttled=0x8"), Some((true, false)));
        assert_eq!(parse_throttled("error=1 error_msg=\"x\""), None);
    }

    /// A fake /proc and /sys in a temp dir: the collector produces what is there and
    /// nothing else (no thermal zone, no vcgencmd: those figures are absent).
    #[test]
    fn collector_reads_files_and_leaves_absent_figures_out() {
        let dir = tempfile::tempdir().unwrap();
        let proc_dir = dir.path().join("proc");
        std::fs::create_dir_all(&proc_dir).unwrap();
        std::fs::write(proc_dir.join("meminfo"), MEMINFO).unwrap();
        let mut c = Collector::new(Sources {
            proc_dir: proc_dir.clone(),
            thermal_dir: dir.path().join("no-thermal"),
            state_dir: dir.path().to_path_buf(),
            vcgencmd: None,
        });
        let b = c.collect(Instant::now());
        assert_eq!(b.memory_available_pct, Some(84.1));
        assert_eq!(b.memory_available_mib, Some(3187.5));
        assert_eq!(b.cpu_temperature_c, None);
        assert_eq!(b.cpu_throttled, None);
        assert_eq!(b.undervoltage, None);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let pct = b.disk_free_pct.expect("statvfs of a temp dir");
            assert!((0.0..=100.0).contains(&pct), "{pct}");
        }

        // A thermal zone named for the CPU wins over zone 0.
        let th = dir.path().join("thermal");
        for (z, ty, t) in [
            ("thermal_zone0", "acpitz", "30000"),
            ("thermal_zone1", "cpu-thermal", "61234"),
        ] {
            std::fs::create_dir_all(th.join(z)).unwrap();
            std::fs::write(th.join(z).join("type"), ty).unwrap();
            std::fs::write(th.join(z).join("temp"), t).unwrap();
        }
        assert_eq!(cpu_temperature(&th), Some(61.234));
    }

    /// The daily write rate from a fake diskstats of the temp dir's own device.
    #[test]
    fn written_per_day_needs_ten_minutes_of_history() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (major, minor) = dev_major_minor(std::fs::metadata(dir.path()).unwrap().dev());
        let proc_dir = dir.path().join("proc");
        std::fs::create_dir_all(&proc_dir).unwrap();
        let write = |sectors: u64| {
            std::fs::write(
                proc_dir.join("diskstats"),
                format!(" {major} {minor} sdx 1 0 8 0 1 0 {sectors} 0 0 0 0 0 0 0 0 0 0\n"),
            )
            .unwrap();
        };
        let mut c = Collector::new(Sources {
            proc_dir: proc_dir.clone(),
            thermal_dir: dir.path().join("none"),
            state_dir: dir.path().to_path_buf(),
            vcgencmd: None,
        });
        let t0 = Instant::now();
        write(1000);
        assert_eq!(c.written_rate(t0), None);
        // 5 min later: too short to extrapolate.
        write(1000 + 2048);
        assert_eq!(c.written_rate(t0 + Duration::from_secs(300)), None);
        // 1 h after the start, 2 MiB (4096 sectors) written in total: 48 MiB a day.
        write(1000 + 4096);
        assert_eq!(c.written_rate(t0 + Duration::from_secs(3600)), Some(48.0));
        // The counter went back (device re-attached): the history starts again.
        write(10);
        assert_eq!(c.written_rate(t0 + Duration::from_secs(3700)), None);
    }
}
