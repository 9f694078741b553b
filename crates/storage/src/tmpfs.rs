//! A small tmpfs mounted for a test: a real filesystem that fills up, for full-disk tests of
//! this crate and the crates above. Mounting needs root (tests and CI run as root); without
//! it [`TmpfsMount::new`] returns `None` and the test prints why it skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on an empty folder the test owns (e.g. a temporary one), unmounted when
/// dropped — also when the test panics, so a failed test leaves no mount behind. Declare it
/// after the folder's owner so it is dropped first.
pub struct TmpfsMount {
    dir: PathBuf,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `size_bytes`, or returns `None` (with a notice on stderr) when this
    /// process may not mount.
    pub fn new(dir: &Path, size_bytes: u64) -> Option<TmpfsMount> {
        let dir = dir.to_path_buf();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_bytes}"), "tmpfs"])
            .arg(&dir)
            .status();
        match status {
            Ok(status) if status.success() => Some(TmpfsMount { dir }),
            outcome => {
                eprintln!(
                    "skipping the full-disk test: cannot mount a tmpfs (needs root): {outcome:?}"
                );
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        // Lazy, so a file a failed test left open does not keep the mount alive.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
