//! A partition folder that vanished.
//!
//! When the engine's metadata lists a partition whose folder is missing, its records were
//! lost (a power loss before the folder was durable, or a folder removed by hand). Opening it
//! as a new, empty partition would silently hand out the lost offsets again to new records,
//! so instead the folder is recreated holding a marker file, `partition-lost`, whose text is
//! the reason. Every open of a partition with that marker refuses writes with the reason
//! (reads find an empty log) until an operator restores the folder or removes the marker to
//! accept starting over empty (docs/storage.md, "A missing partition folder").

use std::path::Path;

use super::PartitionLog;
use crate::error::{Result, StorageError};
use crate::io::Io;
use crate::segment::write_file_atomically;

const MARKER: &str = "partition-lost";
/// A reason longer than this is cut when read back: it is display text only.
const REASON_BYTES_MAX: u64 = 4096;

/// The reason recorded in the marker of the partition in `dir`, if it has one.
pub(super) fn load(io: &dyn Io, dir: &Path) -> Option<String> {
    let path = dir.join(MARKER);
    if !io.exists(&path) {
        return None;
    }
    let fallback = || format!("{} exists: the partition's folder was lost", path.display());
    let Ok(file) = io.open(&path, false) else {
        return Some(fallback());
    };
    let length = file.len().unwrap_or(0).min(REASON_BYTES_MAX) as usize;
    let mut bytes = vec![0u8; length];
    if file.read_exact_at(&mut bytes, 0).is_err() || bytes.is_empty() {
        return Some(fallback());
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

impl PartitionLog {
    /// Recreates the missing folder `dir` of a partition its stream's metadata lists, with a
    /// marker holding `reason`, durably. [`PartitionLog::open`] then opens it refusing writes.
    pub fn mark_lost(io: &dyn Io, dir: &Path, reason: &str) -> Result<()> {
        io.create_dir_all(dir)
            .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        let text = format!(
            "{reason}; remove {} to accept this partition empty",
            dir.join(MARKER).display()
        );
        write_file_atomically(io, &dir.join(MARKER), text.as_bytes())
    }
}
