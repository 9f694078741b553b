//! The storage layer's one error type.

use omnibus_types::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The partition hit a write or fsync error earlier and refuses writes until restarted,
    /// because after a failed fsync the state of the page cache is unknown.
    #[error("partition refuses writes after an earlier I/O error: {reason}")]
    Poisoned { reason: String },
    /// The filesystem had no room (ENOSPC). Unlike other I/O errors this heals by itself:
    /// see `partition/disk_full.rs` and the state store's reopen.
    #[error("disk full while {context}")]
    DiskFull { context: String },
    #[error("invalid record batch: {0}")]
    InvalidBatch(String),
    #[error("batch of {bytes} bytes exceeds the limit of {max}")]
    BatchTooLarge { bytes: usize, max: usize },
    #[error("offset {offset} is outside the retained range {log_start}..{high_watermark}")]
    OffsetOutOfRange {
        offset: u64,
        log_start: u64,
        high_watermark: u64,
    },
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The partition's folder was missing although its stream's metadata lists it.
    #[error("partition data lost: {0}")]
    Lost(String),
    #[error("state store error: {0}")]
    State(String),
    #[error("invalid log configuration: {0}")]
    Config(String),
    #[error("partition is closed")]
    Closed,
}

impl StorageError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let context = context.into();
        if crate::disk::is_disk_full(&source) {
            return StorageError::DiskFull { context };
        }
        StorageError::Io { context, source }
    }

    /// The same failure for another waiter of one shared commit (`io::Error` is not
    /// `Clone`), keeping what a client sees: its code and message.
    pub fn duplicate(&self) -> StorageError {
        match self {
            StorageError::DiskFull { context } => StorageError::DiskFull {
                context: context.clone(),
            },
            StorageError::Io { context, source } => StorageError::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            StorageError::Poisoned { reason } => StorageError::Poisoned {
                reason: reason.clone(),
            },
            StorageError::Closed => StorageError::Closed,
            other => StorageError::State(other.to_string()),
        }
    }

    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::DiskFull { .. })
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::Io { .. }
            | StorageError::Poisoned { .. }
            | StorageError::Corrupt(_)
            | StorageError::Lost(_) => ErrorCode::StorageFailed,
            StorageError::DiskFull { .. } => ErrorCode::DiskFull,
            StorageError::InvalidBatch(_) => ErrorCode::BadRequest,
            StorageError::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
            StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            StorageError::State(_) => ErrorCode::Internal,
            StorageError::Config(_) => ErrorCode::InvalidConfig,
            StorageError::Closed => ErrorCode::Unavailable,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
