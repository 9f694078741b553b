//! Streams: durable, partitioned logs of records.
//!
//! This module holds a stream in memory (its stored configuration and open partition logs);
//! its submodules publish to streams, fetch from them, append producers' raw batches, choose
//! partitions, and change streams' settings.

mod admin;
pub mod door_settings;
mod fetch;
pub mod partitioner;
mod publish;
pub use publish::PendingPublish;
pub(crate) use publish::{split_for_storage, to_stored};
pub mod raw_append;
pub(crate) mod registry;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use omnibus_storage::io::Io;
use omnibus_storage::{LogConfig, PartitionLog};
use omnibus_types::pattern_matches;

use crate::error::{EngineError, Result};
use crate::model::{PartitionInfo, QuarantinedFile, StreamConfig, StreamInfo};

pub struct Stream {
    pub config: StreamConfig,
    pub partitions: Vec<Arc<PartitionLog>>,
    /// Next partition for records with neither key nor explicit partition.
    round_robin: AtomicU32,
}

/// Stream `name`'s folder: `streams/` and the name with bytes a file name should not hold
/// escaped (`omnibus_types::stream_folder_name`; a name of letters, digits, `.`, `_`, `-`
/// and `:` is its own folder).
pub fn stream_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir
        .join("streams")
        .join(omnibus_types::stream_folder_name(name))
}

pub fn log_config(config: &StreamConfig) -> LogConfig {
    LogConfig {
        segment_bytes: config.segment_bytes,
        segment_ms: config.segment_ms,
        retention_ms: config.retention_ms,
        retention_bytes: config.retention_bytes,
        fsync: config.fsync,
        ..LogConfig::default()
    }
}

impl Stream {
    /// Opens (recovering) or creates every partition of the stream.
    pub fn open(io: Arc<dyn Io>, data_dir: &Path, config: StreamConfig) -> Result<Stream> {
        let dir = stream_dir(data_dir, &config.name);
        let log_config = log_config(&config);
        let mut partitions = Vec::with_capacity(config.partitions as usize);
        for partition in 0..config.partitions {
            let log = PartitionLog::open(
                io.clone(),
                &dir.join(partition.to_string()),
                log_config.clone(),
            )?;
            partitions.push(log);
        }
        Ok(Stream {
            config,
            partitions,
            round_robin: AtomicU32::new(0),
        })
    }

    pub fn captures(&self, subject: &str) -> bool {
        self.config
            .subjects
            .iter()
            .any(|p| pattern_matches(p, subject))
    }

    pub fn partition(&self, partition: u32) -> Result<&Arc<PartitionLog>> {
        self.partitions
            .get(partition as usize)
            .ok_or_else(|| EngineError::PartitionNotFound {
                stream: self.config.name.clone(),
                partition,
                partitions: self.config.partitions,
            })
    }

    pub fn next_round_robin(&self) -> u32 {
        self.round_robin.fetch_add(1, Ordering::Relaxed) % self.config.partitions
    }

    pub fn info(&self) -> StreamInfo {
        let partition_info = self
            .partitions
            .iter()
            .enumerate()
            .map(|(index, log)| {
                let status = log.status();
                PartitionInfo {
                    partition: index as u32,
                    log_start_offset: status.log_start_offset,
                    high_watermark: status.high_watermark,
                    size_bytes: status.size_bytes,
                    segments: status.segments,
                    write_error: status.failure,
                    quarantined: status
                        .quarantined
                        .into_iter()
                        .map(|file| QuarantinedFile {
                            file: file.file,
                            bytes: file.bytes,
                            found_at_ms: file.found_at_ms,
                            reason: file.reason,
                        })
                        .collect(),
                }
            })
            .collect();
        StreamInfo {
            config: self.config.clone(),
            partition_info,
        }
    }

    /// Stops writes and flushes every partition. Blocking.
    pub fn close(&self) -> Result<()> {
        for log in &self.partitions {
            log.close()?;
        }
        Ok(())
    }
}
