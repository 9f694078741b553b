//! Storage for Omnibus: partition logs and the state store.
//!
//! A partition log is a folder of segments; each segment is a file of Kafka RecordBatch v2
//! batches (`<base_offset:020>.log`) with a sparse offset index and a time index. Appends are
//! group-committed: everything that arrives while one write + fsync is in flight goes into the
//! next one. Recovery truncates a torn tail at the last valid batch and sets aside (never
//! discards) damage followed by valid batches. After a write or fsync error a partition
//! refuses further writes; after ENOSPC only until the disk has room
//! (`partition/disk_full.rs`, `disk.rs`). All file access goes through the [`io::Io`]
//! trait, with file, in-memory and fault-injecting backends.
//!
//! This layer may use `omnibus-types` and the `kafka-protocol` crate's record-batch codec
//! (RecordBatch v2 is the on-disk format). It must never import engine or front-door types.
#![forbid(unsafe_code)]

pub mod batch;
pub mod config;
pub mod disk;
pub mod error;
pub mod fuzzing;
pub mod io;
pub mod metrics;
pub mod partition;
pub mod quarantine;
pub mod records;
mod scan;
mod segment;
pub mod state;
#[doc(hidden)]
pub mod tmpfs;

pub use config::{FsyncPolicy, LogConfig};
pub use disk::{available_bytes, disk_space, DiskReserve, DiskSpace};
pub use error::{Result, StorageError};
pub use partition::{
    AppendInfo, PartitionLog, PartitionStatus, PendingAppend, ProducerBatch, Progress, ReadResult,
    RetentionOutcome, RECOVERED_BATCHES_MAX,
};
pub use quarantine::QuarantinedFile;
pub use state::{StateStats, StateStore, StateWrite, Submitted};
