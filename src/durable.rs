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
        let mut f = fs::File::create(&tmp)?;
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
}
