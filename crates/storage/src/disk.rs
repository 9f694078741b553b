//! Free space and the disk reserve: what lets a full disk be survived without a restart.
//!
//! When the filesystem of the data folder fills up, every write fails with ENOSPC — including
//! the ones that would free space: redb is copy-on-write, so deleting a stream's metadata needs
//! a few new pages before the old ones are released. The reserve is a preallocated file
//! (`reserve.bin`) of a configured size in the data folder. The state store deletes it on its
//! first ENOSPC and retries, so metadata deletes go through; it is written again once the
//! filesystem has room for it and some to spare.
//!
//! The reserve is a plain file beside `state.redb`, not behind [`crate::io::Io`]: like the
//! state store it only makes sense on a real filesystem.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Result, StorageError};

/// The reserve file's name inside the data folder.
pub const RESERVE_FILE_NAME: &str = "reserve.bin";
/// The reserve is written in chunks of this size, so a large reserve needs no large buffer.
const RESERVE_CHUNK_BYTES: usize = 64 * 1024;

/// Bytes an unprivileged writer may still use on the filesystem holding `path`.
pub fn available_bytes(path: &Path) -> Result<u64> {
    statvfs_available(path).map_err(|error| {
        StorageError::io(format!("measuring free space of {}", path.display()), error)
    })
}

/// [`available_bytes`] with the plain I/O error (what [`crate::io::Io`] answers).
pub(crate) fn statvfs_available(path: &Path) -> std::io::Result<u64> {
    let stats = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// The size of the filesystem holding a path and what an unprivileged writer may still use
/// of it (the alarms' disk-free percentage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    pub available_bytes: u64,
    pub total_bytes: u64,
}

/// [`DiskSpace`] of the filesystem holding `path` (one `statvfs`).
pub fn disk_space(path: &Path) -> Result<DiskSpace> {
    let stats = rustix::fs::statvfs(path).map_err(|errno| {
        StorageError::io(
            format!("measuring the size of {}", path.display()),
            std::io::Error::from(errno),
        )
    })?;
    Ok(DiskSpace {
        available_bytes: stats.f_bavail.saturating_mul(stats.f_frsize),
        total_bytes: stats.f_blocks.saturating_mul(stats.f_frsize),
    })
}

/// Whether `error` (or anything it wraps) is the operating system saying the disk is full.
pub fn is_disk_full(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(libc::ENOSPC) || error.kind() == std::io::ErrorKind::StorageFull
}

/// The preallocated reserve file. Shared by the state store (which releases it) and the
/// engine's maintenance pass (which restores it).
#[derive(Debug)]
pub struct DiskReserve {
    path: PathBuf,
    bytes: u64,
    /// Whether the file is in place at its full size. Guards the file too, so a release and
    /// a restore never interleave.
    in_place: Mutex<bool>,
}

impl DiskReserve {
    /// A reserve of `bytes` in `data_dir` (0 disables it). Nothing is written yet: call
    /// [`DiskReserve::restore`]. A reserve left by an earlier run counts if it is whole.
    pub fn new(data_dir: &Path, bytes: u64) -> DiskReserve {
        let path = data_dir.join(RESERVE_FILE_NAME);
        let whole = bytes > 0 && std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes);
        DiskReserve {
            path,
            bytes,
            in_place: Mutex::new(whole),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn enabled(&self) -> bool {
        self.bytes > 0
    }

    /// Whether the reserve file is there (always true when disabled: nothing is missing).
    pub fn is_in_place(&self) -> bool {
        !self.enabled() || *self.in_place.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deletes the reserve file to give its space back to the filesystem. Returns whether
    /// there was anything to release.
    pub fn release(&self) -> bool {
        let mut in_place = self.in_place.lock().unwrap_or_else(|p| p.into_inner());
        let existed = std::fs::remove_file(&self.path).is_ok();
        let released = *in_place || existed;
        *in_place = false;
        if released {
            tracing::warn!(path = %self.path.display(), bytes = self.bytes, "disk full: released the disk reserve");
        }
        released
    }

    /// Writes the reserve file (fsynced) if it is missing. Fails, leaving no partial file,
    /// when the disk has no room for it.
    pub fn restore(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let mut in_place = self.in_place.lock().unwrap_or_else(|p| p.into_inner());
        if *in_place {
            return Ok(());
        }
        let outcome = self.write_file();
        if outcome.is_err() {
            let _ = std::fs::remove_file(&self.path);
        } else {
            *in_place = true;
        }
        outcome
    }

    /// Real zeros rather than `set_len`: a sparse file would reserve nothing.
    fn write_file(&self) -> Result<()> {
        let context = || format!("writing the disk reserve {}", self.path.display());
        let mut file =
            std::fs::File::create(&self.path).map_err(|e| StorageError::io(context(), e))?;
        let chunk = vec![0u8; RESERVE_CHUNK_BYTES];
        let mut left = self.bytes;
        while left > 0 {
            let size = left.min(RESERVE_CHUNK_BYTES as u64) as usize;
            file.write_all(&chunk[..size])
                .map_err(|e| StorageError::io(context(), e))?;
            left -= size as u64;
        }
        file.sync_all()
            .map_err(|e| StorageError::io(context(), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_is_written_released_and_restored() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = DiskReserve::new(dir.path(), 100_000);
        assert!(!reserve.is_in_place());
        reserve.restore().unwrap();
        let path = dir.path().join(RESERVE_FILE_NAME);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 100_000);
        assert!(reserve.is_in_place());
        assert!(reserve.release());
        assert!(!path.exists());
        assert!(!reserve.release(), "nothing left to release");
        reserve.restore().unwrap();
        assert!(
            DiskReserve::new(dir.path(), 100_000).is_in_place(),
            "adopted at reopen"
        );
        assert!(available_bytes(dir.path()).unwrap() > 0);
    }

    #[test]
    fn a_disabled_reserve_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = DiskReserve::new(dir.path(), 0);
        reserve.restore().unwrap();
        assert!(reserve.is_in_place());
        assert!(!dir.path().join(RESERVE_FILE_NAME).exists());
    }
}
