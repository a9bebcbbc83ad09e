//! Alarm event sequence numbers that keep increasing across restarts, power cuts and
//! clock steps (CONTRACTS: "a per-gateway monotonically increasing `seq`").
//!
//! The rules engine hands out `seq` from a counter in memory. This module keeps a
//! *reservation* on disk: the file `alarm_seq` in the state directory holds a number
//! above every `seq` the gateway may have handed out. Invariants:
//!
//! - before an event leaves the hub (into the sink queues, and so towards the far
//!   end), the reservation on disk is above its `seq`: [`SeqStore::cover`] raises it
//!   (write, fsync, rename, fsync of the directory) when the counter reaches it, in
//!   blocks of [`BLOCK`] so the disk is written once per [`BLOCK`] events (that write
//!   holds the hub for one fsync, a few milliseconds, which the alarm path already
//!   pays per event for the buffer);
//! - after a restart the counter starts at the reservation, so no `seq` that could
//!   have been sent is handed out again, whatever the clock says; numbers reserved but
//!   never used are skipped (`seq` increases, it is not gap-free);
//! - the counter also never starts below `unix time in ms × 1000` (how earlier
//!   versions numbered events, and a sensible start when the state directory is new);
//!   a clock that is behind (a board without a battery-backed clock, before NTP) does
//!   not take `seq` back, because the reservation wins.
//!
//! A reservation that cannot be written (disk full, read-only) is logged and counted
//! (`dcgw_sink_errors{sink="buffer",reason="seq"}`); events still go out, since an
//! alarm must not wait for bookkeeping, and the next event tries again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::metrics;

/// Sequence numbers reserved per write.
pub const BLOCK: u64 = 10_000;

/// File name in the state directory.
pub const FILE: &str = "alarm_seq";

/// Why the reservation cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory cannot be created.
    #[error("cannot create the state directory {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file does not hold a number.
    #[error("{}: not a sequence number ({source}); it holds the next alarm event seq — fix or remove it (removing restarts seq from the clock)", path.display())]
    Garbled {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::num::ParseIntError,
    },
}

/// The on-disk reservation.
#[derive(Debug)]
pub struct SeqStore {
    path: PathBuf,
    reserved: u64,
    failing: bool,
    block: u64,
}

/// File of the alarm instance number reservation (`no`, written for every new instance:
/// the numbers people read stay short and consecutive across restarts).
pub const NO_FILE: &str = "alarm_no";

impl SeqStore {
    /// Open (or create) the reservation in `state_dir`; returns the store and the
    /// first `seq` to hand out: the larger of the reservation and `clock_floor`.
    /// Fails only when the directory cannot be created or the file holds garbage
    /// (which is reported with its path rather than silently restarting the count).
    pub fn open(state_dir: &Path, clock_floor: u64) -> Result<(SeqStore, u64), Error> {
        SeqStore::open_file(state_dir, FILE, clock_floor, BLOCK)
    }

    /// [`SeqStore::open`] for another counter kept the same way: `file` in
    /// `state_dir`, reserved `block` numbers at a time, starting at `floor` at least.
    pub fn open_file(
        state_dir: &Path,
        file: &str,
        clock_floor: u64,
        block: u64,
    ) -> Result<(SeqStore, u64), Error> {
        fs::create_dir_all(state_dir).map_err(|source| Error::CreateDir {
            dir: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(file);
        let on_disk = match fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|source| Error::Garbled {
                    path: path.clone(),
                    source,
                })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(source) => return Err(Error::Read { path, source }),
        };
        let first = on_disk.max(clock_floor);
        let mut store = SeqStore {
            path,
            reserved: on_disk,
            failing: false,
            block: block.max(1),
        };
        store.cover(first);
        Ok((store, first))
    }

    /// Make sure every `seq` below `next` is covered by the reservation on disk.
    /// Writes only when `next` passes the reservation.
    pub fn cover(&mut self, next: u64) {
        if next <= self.reserved {
            return;
        }
        let want = next.saturating_add(self.block);
        match write_durable(&self.path, want) {
            Ok(()) => {
                self.reserved = want;
                if self.failing {
                    tracing::info!(file = %self.path.display(), "alarm seq reservation written again");
                    self.failing = false;
                }
            }
            Err(e) => {
                metrics::get()
                    .sink_errors
                    .get_or_create(&metrics::labels(&[("sink", "buffer"), ("reason", "seq")]))
                    .inc();
                if !self.failing {
                    tracing::error!(file = %self.path.display(), error = %e, "cannot write the alarm seq reservation: after a restart with the clock set back, seq could repeat");
                    self.failing = true;
                }
            }
        }
    }

    /// The number on disk (every `seq` handed out is below it).
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
}

/// Replace `path` with `value` so that a power cut leaves the old or the new number,
/// never a torn one.
fn write_durable(path: &Path, value: u64) -> io::Result<()> {
    crate::durable::replace_file(path, format!("{value}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_state_dir_starts_from_the_clock_and_reserves_a_block() {
        let dir = tempfile::tempdir().unwrap();
        let (s, first) = SeqStore::open(dir.path(), 5_000_000).unwrap();
        assert_eq!(first, 5_000_000);
        assert_eq!(s.reserved(), 5_000_000 + BLOCK);
        let text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert_eq!(text.trim(), (5_000_000 + BLOCK).to_string());
    }

    #[test]
    fn a_restart_with_the_clock_set_back_continues_above_everything_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, first) = SeqStore::open(dir.path(), 1_000_000).unwrap();
        // Hand out numbers past the first block: the reservation follows.
        let handed_out = first + BLOCK + 7;
        s.cover(handed_out + 1);
        assert!(s.reserved() > handed_out);
        drop(s);
        // The board reboots with its clock years behind.
        let (_, again) = SeqStore::open(dir.path(), 1_000).unwrap();
        assert!(again > handed_out, "{again} <= {handed_out}");
        // And a clock that went forward still wins.
        let (_, later) = SeqStore::open(dir.path(), u64::MAX / 2).unwrap();
        assert_eq!(later, u64::MAX / 2);
    }

    #[test]
    fn cover_writes_only_when_the_counter_passes_the_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, first) = SeqStore::open(dir.path(), 10).unwrap();
        let path = dir.path().join(FILE);
        fs::write(&path, "sentinel").unwrap();
        s.cover(first + BLOCK - 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), "sentinel");
        s.cover(first + BLOCK + 1);
        assert_eq!(
            fs::read_to_string(&path).unwrap().trim(),
            (first + 2 * BLOCK + 1).to_string()
        );
    }

    #[test]
    fn a_garbled_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), "12x\n").unwrap();
        let e = SeqStore::open(dir.path(), 1).unwrap_err().to_string();
        assert!(e.contains("alarm_seq: not a sequence number"), "{e}");
    }

    #[test]
    fn an_unwritable_reservation_is_survived() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, first) = SeqStore::open(dir.path(), 10).unwrap();
        // A directory where the temporary file should go makes every write fail.
        fs::create_dir(dir.path().join(FILE).with_extension("tmp")).unwrap();
        let before = s.reserved();
        s.cover(first + 2 * BLOCK);
        assert_eq!(s.reserved(), before);
        assert!(s.failing);
    }
}
