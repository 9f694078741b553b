//! The broker's health, protocol-neutral: what keeps it from taking writes, and the upkeep
//! that lets it take them again after a full disk.
//!
//! A full disk is survived without a restart (docs/storage.md, "Full disk"):
//! - the state store releases the disk reserve (`reserve.bin`) on its first ENOSPC, so
//!   metadata deletes still commit, and reopens its database once a write can succeed;
//! - a partition refuses writes with `disk_full` and cuts the refused bytes;
//! - each maintenance pass measures the data folder's free space: once the reserve fits again
//!   it is rewritten, and once there is room for writes the state store is reopened and the
//!   partitions accept writes again;
//! - then a queue that the full disk (or another I/O error of the state store) left refusing
//!   work is reloaded from disk (`queue/recovery.rs`).

use omnibus_storage::{DiskReserve, StorageError};

use crate::engine::Engine;

/// Least free space, in bytes, before writes resume after a full disk (when the reserve is
/// smaller or disabled): resuming into a few free pages would only fail again at once.
pub const DISK_RESUME_BYTES_MIN: u64 = 1024 * 1024;

/// Why the broker cannot take (some) writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthProblemKind {
    /// The data folder's filesystem is (nearly) full, or the disk reserve has been spent.
    DiskFull,
    /// The state store failed and waits to be reopened.
    StateStoreFailed,
    /// A partition refuses writes (a full disk heals by itself; other I/O errors need a
    /// restart).
    PartitionRefusingWrites,
}

impl HealthProblemKind {
    /// The stable name front doors show.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthProblemKind::DiskFull => "disk_full",
            HealthProblemKind::StateStoreFailed => "state_store_failed",
            HealthProblemKind::PartitionRefusingWrites => "partition_refusing_writes",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthProblem {
    pub kind: HealthProblemKind,
    /// The stream and partition, for a partition's problem.
    pub stream: Option<String>,
    pub partition: Option<u32>,
    pub reason: String,
}

impl HealthProblem {
    /// A full disk: the data folder's, or one partition's refusal of writes for want of
    /// space (its reason is storage's `StorageError::DiskFull` text, "disk full while …";
    /// such a partition heals by itself once there is room).
    pub fn is_disk_full(&self) -> bool {
        match self.kind {
            HealthProblemKind::DiskFull => true,
            HealthProblemKind::PartitionRefusingWrites => self.reason.contains("disk full"),
            HealthProblemKind::StateStoreFailed => false,
        }
    }
}

/// What `Engine::health` found. Healthy when there are no problems.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub problems: Vec<HealthProblem>,
}

impl Health {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Creates the reserve at open (a full disk at start is logged, not fatal: the maintenance
/// pass writes the reserve once there is room).
pub(crate) fn open_reserve(data_dir: &std::path::Path, bytes: u64) -> std::sync::Arc<DiskReserve> {
    let reserve = DiskReserve::new(data_dir, bytes);
    if let Err(error) = reserve.restore() {
        tracing::warn!("no disk reserve for now: {error}");
    }
    std::sync::Arc::new(reserve)
}

/// The data folder's filesystem, for dashboards.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiskSpace {
    pub data_dir: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
}

impl Engine {
    /// Size and free space of the data folder's filesystem (one `statvfs`, no disk writes).
    pub fn disk_space(&self) -> crate::Result<DiskSpace> {
        let data_dir = &self.config.data_dir;
        let total_bytes = omnibus_storage::disk_space(data_dir)?.total_bytes;
        // As the I/O backend measures it (a fault-injected full disk shows as full).
        let available_bytes = self.available_bytes()?;
        Ok(DiskSpace {
            data_dir: data_dir.display().to_string(),
            total_bytes,
            available_bytes,
        })
    }

    /// The broker's problems right now. Cheap (one `statvfs`, no disk writes): safe to call
    /// from a health check at any rate.
    pub fn health(&self) -> Health {
        let mut problems = Vec::new();
        if let Some(reason) = self.disk_full_reason() {
            problems.push(HealthProblem {
                kind: HealthProblemKind::DiskFull,
                stream: None,
                partition: None,
                reason,
            });
        }
        if let Some(reason) = self.state.failure() {
            problems.push(HealthProblem {
                kind: HealthProblemKind::StateStoreFailed,
                stream: None,
                partition: None,
                reason,
            });
        }
        for stream in self.read_streams().values() {
            for (partition, log) in stream.partitions.iter().enumerate() {
                if let Some(reason) = log.failure() {
                    problems.push(HealthProblem {
                        kind: HealthProblemKind::PartitionRefusingWrites,
                        stream: Some(stream.config.name.clone()),
                        partition: Some(partition as u32),
                        reason: reason.to_string(),
                    });
                }
            }
        }
        Health { problems }
    }

    /// Free space for the data folder, as its I/O backend measures it.
    fn available_bytes(&self) -> omnibus_storage::Result<u64> {
        let data_dir = &self.config.data_dir;
        self.io.available_bytes(data_dir).map_err(|error| {
            StorageError::io(
                format!("measuring free space of {}", data_dir.display()),
                error,
            )
        })
    }

    fn resume_bytes(&self) -> u64 {
        self.disk_reserve.bytes().max(DISK_RESUME_BYTES_MIN)
    }

    pub(crate) fn disk_full_reason(&self) -> Option<String> {
        let data_dir = &self.config.data_dir;
        let available = match self.available_bytes() {
            Ok(available) => available,
            Err(error) => return Some(error.to_string()),
        };
        if available < self.resume_bytes() {
            return Some(format!(
                "{available} bytes free in {}, writes need {}",
                data_dir.display(),
                self.resume_bytes()
            ));
        }
        if !self.disk_reserve.is_in_place() {
            return Some(format!(
                "the disk reserve of {} bytes was spent and is not back yet ({available} bytes free)",
                self.disk_reserve.bytes()
            ));
        }
        None
    }

    /// The maintenance pass's part: restores the reserve and lets writes in again once the
    /// disk has room. Blocking (statvfs, the reserve's write and fsync).
    pub(crate) fn maintain_disk(&self) {
        let measure = || match self.available_bytes() {
            Ok(available) => Some(available),
            Err(error) => {
                tracing::warn!("cannot measure free space: {error}");
                None
            }
        };
        let Some(mut available) = measure() else {
            return;
        };
        let resume_bytes = self.resume_bytes();
        if !self.disk_reserve.is_in_place()
            && available >= self.disk_reserve.bytes().saturating_add(resume_bytes)
        {
            match self.disk_reserve.restore() {
                Ok(()) => tracing::info!("disk reserve restored"),
                Err(error) => tracing::warn!("disk reserve not restored: {error}"),
            }
            let Some(now) = measure() else {
                return;
            };
            available = now;
        }
        // Writes wait for the reserve, so it is back before the disk can fill up again.
        if available < resume_bytes || !self.disk_reserve.is_in_place() {
            return;
        }
        if let Err(error) = self.state.reopen_if_failed() {
            tracing::warn!("state store not reopened yet: {error}");
        }
        for stream in self.read_streams().values() {
            for log in &stream.partitions {
                log.resume_after_disk_full();
            }
        }
    }
}
