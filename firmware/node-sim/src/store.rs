//! Settings in a file: the host's stand-in for the flash sector.
//!
//! A save writes the record to `FILE.tmp`, syncs it and renames it over `FILE`, so a
//! crash leaves either the old or the new record, like the board's erase-then-program
//! of one sector guarded by the record's CRC.

use std::io::Write;
use std::path::PathBuf;

use node_core::settings::{RECORD_LEN, SettingsStore};

/// Settings kept in one file.
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path` (created on the first save).
    pub fn new(path: PathBuf) -> Self {
        FileStore { path }
    }
}

impl SettingsStore for FileStore {
    type Error = std::io::Error;

    fn load(&mut self, buf: &mut [u8; RECORD_LEN]) -> bool {
        match std::fs::read(&self.path) {
            Ok(b) if b.len() == RECORD_LEN => {
                buf.copy_from_slice(&b);
                true
            }
            Ok(_) => {
                eprintln!(
                    "node-sim: {}: not a settings record; using the defaults",
                    self.path.display()
                );
                false
            }
            Err(_) => false,
        }
    }

    fn save(&mut self, record: &[u8; RECORD_LEN]) -> Result<(), std::io::Error> {
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(record)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_core::settings::{Settings, load_or_default};

    #[test]
    fn saved_settings_are_loaded_again_and_junk_is_ignored() {
        let dir = std::env::temp_dir().join(format!("node-sim-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("settings.bin");
        let mut s = FileStore::new(path.clone());
        assert!(load_or_default(&mut s, Settings::default()).1);
        let mine = Settings {
            unit_id: 33,
            ..Settings::default()
        };
        s.save(&mine.encode()).unwrap();
        let mut again = FileStore::new(path.clone());
        assert_eq!(
            load_or_default(&mut again, Settings::default()),
            (mine, false)
        );
        std::fs::write(&path, b"junk").unwrap();
        assert!(load_or_default(&mut again, Settings::default()).1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
