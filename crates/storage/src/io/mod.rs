//! The small I/O surface the log needs, behind a trait so the same contract tests run against
//! real files, memory, and a backend that injects faults or simulates a crash.
//!
//! Files are accessed positionally (`read_at` / `write_at`) so one handle can be shared by a
//! writer and many readers without a cursor or a lock.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod faulty;
mod file;
mod memory;

pub use faulty::{FaultPlan, FaultyIo, SyncsHeld};
pub use file::FileIo;
pub use memory::MemoryIo;

/// A directory tree of files.
///
/// A directory entry (a created, renamed or removed file or directory) is durable only once
/// the directory holding it is synced: after a power loss an unsynced new entry may be gone
/// and an unsynced removal undone. The primitives (`create_dir`, `remove_tree`, `rename`,
/// `remove_file`) leave that to the caller; `create_dir_all` and `remove_dir_all` are
/// durable when they return, so every caller gets that for free.
pub trait Io: Send + Sync + 'static {
    /// Creates one directory whose parent exists (`AlreadyExists` if it is there). Not
    /// durable until its parent is synced: prefer [`Io::create_dir_all`].
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries of a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Opens a file for reading and writing, creating it when `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn IoFile>>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything under it. Not durable until its parent is synced:
    /// prefer [`Io::remove_dir_all`].
    fn remove_tree(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created, renamed, removed files) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;

    /// Bytes an unprivileged writer may still use on the filesystem holding `path`
    /// (statvfs). A fault-injecting backend reports a disk it has made full as full.
    fn available_bytes(&self, path: &Path) -> io::Result<u64> {
        crate::disk::statvfs_available(path)
    }

    /// Creates `path` and every missing ancestor, durably: each directory created is
    /// followed by a sync of its parent, so after a power loss no level of the new path can
    /// vanish (a partition folder that vanished would reopen empty while the metadata still
    /// lists its stream).
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut missing = Vec::new();
        for ancestor in path.ancestors() {
            if is_root(ancestor) || self.exists(ancestor) {
                break;
            }
            missing.push(ancestor);
        }
        for dir in missing.into_iter().rev() {
            match self.create_dir(dir) {
                Ok(()) => {}
                // Someone else created it meanwhile; syncing the parent again is harmless.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(error),
            }
            self.sync_dir(&parent_of(dir))?;
        }
        Ok(())
    }

    /// Removes a directory and everything under it, durably (its parent is synced after), so
    /// a deleted stream cannot come back half-present after a power loss. A directory that
    /// is already gone is not an error.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        match self.remove_tree(path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let parent = parent_of(path);
        if self.exists(&parent) {
            self.sync_dir(&parent)?;
        }
        Ok(())
    }
}

/// Whether `path` is a root that always exists: `/`, or the empty or `.` start of a
/// relative path.
pub fn is_root(path: &Path) -> bool {
    path.parent().is_none() || path.as_os_str().is_empty() || path == Path::new(".")
}

/// The directory holding `path`'s entry (`.` for a bare relative name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        Some(_) => PathBuf::from("."),
        None => path.to_path_buf(),
    }
}

/// One open file.
pub trait IoFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;

    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let read = self.read_at(buf, offset)?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file ended before the requested range",
                ));
            }
            buf = &mut buf[read..];
            offset += read as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod contract_tests;
