//! The engine's one error type. Each variant maps to a stable [`ErrorCode`].

use omnibus_storage::StorageError;
use omnibus_types::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidSubject(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("stream {0:?} does not exist")]
    StreamNotFound(String),
    #[error("stream {0:?} already exists")]
    StreamExists(String),
    #[error("stream {stream:?} has no partition {partition} (it has {partitions})")]
    PartitionNotFound {
        stream: String,
        partition: u32,
        partitions: u32,
    },
    #[error("no stream captures subject {0:?}")]
    NoStreamForSubject(String),
    #[error("subject pattern {pattern:?} overlaps {other:?} of stream {stream:?}")]
    SubjectsOverlap {
        pattern: String,
        other: String,
        stream: String,
    },
    #[error("{what} is {bytes} bytes; the limit is {max}")]
    MessageTooLarge {
        what: &'static str,
        bytes: usize,
        max: usize,
    },
    #[error("{0}")]
    LimitExceeded(String),
    #[error("the broker is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
    #[error("queue {0:?} does not exist")]
    QueueNotFound(String),
    #[error("queue {0:?} already exists")]
    QueueExists(String),
    #[error("{0}")]
    UnknownDelivery(String),
    #[error("{0}")]
    StaleAttempt(String),
    #[error("{0}")]
    JobNotFound(String),
    #[error("{0}")]
    JobFinished(String),
    #[error("{0}")]
    QueueFull(String),
    /// A state commit of the queue failed after its memory had changed: it refuses all work
    /// until a restart recovers it from what is durable.
    #[error("queue {queue:?} refuses work after a failed state commit (a restart recovers it): {reason}")]
    QueueFailed { queue: String, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::InvalidName(_) => ErrorCode::InvalidName,
            EngineError::InvalidSubject(_) => ErrorCode::InvalidSubject,
            EngineError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            EngineError::BadRequest(_) => ErrorCode::BadRequest,
            EngineError::StreamNotFound(_) => ErrorCode::StreamNotFound,
            EngineError::StreamExists(_) => ErrorCode::StreamExists,
            EngineError::PartitionNotFound { .. } => ErrorCode::PartitionNotFound,
            EngineError::NoStreamForSubject(_) => ErrorCode::NoStreamForSubject,
            EngineError::SubjectsOverlap { .. } => ErrorCode::SubjectsOverlap,
            EngineError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            EngineError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            EngineError::ShuttingDown => ErrorCode::Unavailable,
            EngineError::Internal(_) => ErrorCode::Internal,
            EngineError::QueueNotFound(_) => ErrorCode::QueueNotFound,
            EngineError::QueueExists(_) => ErrorCode::QueueExists,
            EngineError::UnknownDelivery(_) => ErrorCode::UnknownDelivery,
            EngineError::StaleAttempt(_) => ErrorCode::StaleAttempt,
            EngineError::JobNotFound(_) => ErrorCode::JobNotFound,
            EngineError::JobFinished(_) => ErrorCode::JobFinished,
            EngineError::QueueFull(_) => ErrorCode::QueueFull,
            EngineError::QueueFailed { .. } => ErrorCode::StorageFailed,
            EngineError::Storage(error) => error.code(),
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
