//! Stable error codes. Front doors map these to their protocol's own codes (an HTTP status, a
//! Kafka error number); the string form is part of the public API and never changes meaning.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request itself is malformed (bad JSON, missing field, wrong type).
    BadRequest,
    /// A stream, group or subject name breaks the naming rules.
    InvalidName,
    /// A subject or subject pattern is malformed.
    InvalidSubject,
    /// A configuration value is out of range or inconsistent.
    InvalidConfig,
    StreamNotFound,
    StreamExists,
    PartitionNotFound,
    /// No stream captures the subject a record was published on.
    NoStreamForSubject,
    /// A new stream's subjects overlap an existing stream's.
    SubjectsOverlap,
    /// An offset outside the partition's retained range.
    OffsetOutOfRange,
    /// A record or batch exceeds its size limit.
    MessageTooLarge,
    /// Too many records, headers, or other counted items in one request.
    LimitExceeded,
    /// The partition refused writes after an I/O error; needs operator attention.
    StorageFailed,
    /// The disk is full; writes are refused until space is freed.
    DiskFull,
    /// The broker is shutting down or otherwise cannot serve now; retry later.
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
    QueueNotFound,
    QueueExists,
    /// An ack, nack, extend or term for a message that is not delivered (already settled,
    /// or never delivered).
    UnknownDelivery,
    /// An ack, nack, extend or term from an attempt whose lease was lost: the message was
    /// redelivered and only the newest attempt may settle it.
    StaleAttempt,
    JobNotFound,
    /// The job is already completed, dead or cancelled.
    JobFinished,
    /// The queue is at its `max_length` and its overflow policy is to reject new messages.
    QueueFull,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidSubject => "invalid_subject",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::StreamNotFound => "stream_not_found",
            ErrorCode::StreamExists => "stream_exists",
            ErrorCode::PartitionNotFound => "partition_not_found",
            ErrorCode::NoStreamForSubject => "no_stream_for_subject",
            ErrorCode::SubjectsOverlap => "subjects_overlap",
            ErrorCode::OffsetOutOfRange => "offset_out_of_range",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::StorageFailed => "storage_failed",
            ErrorCode::DiskFull => "disk_full",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::QueueNotFound => "queue_not_found",
            ErrorCode::QueueExists => "queue_exists",
            ErrorCode::UnknownDelivery => "unknown_delivery",
            ErrorCode::StaleAttempt => "stale_attempt",
            ErrorCode::JobNotFound => "job_not_found",
            ErrorCode::JobFinished => "job_finished",
            ErrorCode::QueueFull => "queue_full",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
