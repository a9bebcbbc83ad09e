//! Small files in the state directory that must survive a power cut whole: replaced
//! atomically, so a crash leaves the old or the new content, never a torn one.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Replace `path` with `content`: write a temporary file beside it, fsync it, rename it
/// over, fsync the directory (on Unix; best effort elsewhere).
pub fn replace_file(path: &Path, content: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut o = fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Keep the state directory to the service's user: the directory 0700, every file in
/// it 0600 (journal, queues, counters hold alarm history and operator names). Files a
/// restart finds more open (an older release, a backup restored by hand) are closed
/// down. Errors are returned for the caller to log; nothing here stops monitoring.
pub fn restrict(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        for e in fs::read_dir(dir)? {
            let e = e?;
            let meta = e.metadata()?;
            if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(e.path(), fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alarm_seq");
        replace_file(&p, b"123\n").unwrap();
        replace_file(&p, b"45\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "45\n");
        assert!(!dir.path().join("alarm_seq.tmp").exists());
    }

    #[test]
    fn the_state_dir_is_kept_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(state.join("buffer.db"), b"x").unwrap();
        fs::set_permissions(state.join("buffer.db"), fs::Permissions::from_mode(0o644)).unwrap();
        replace_file(&state.join("alarm_seq"), b"1\n").unwrap();
        restrict(&state).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("buffer.db")), 0o600);
        assert_eq!(mode(&state.join("alarm_seq")), 0o600);
    }
}
