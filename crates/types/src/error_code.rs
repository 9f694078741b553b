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
    /// A new group member must join again with the member id it was given.
    MemberIdRequired,
    /// The group has no member with this id (it expired, left, or never joined).
    UnknownMember,
    /// The request's group generation is not the group's current one.
    IllegalGeneration,
    /// The group is rebalancing; the member must join again.
    RebalanceInProgress,
    /// A member's protocol type or protocols have nothing in common with the group's.
    InconsistentGroupProtocol,
    /// A member asked for a session timeout outside the coordinator's bounds.
    InvalidSessionTimeout,
    /// No such consumer group.
    GroupNotFound,
    /// The consumer group still has members.
    GroupNotEmpty,
    /// Another member now holds this static group instance id.
    FencedInstanceId,
    /// The consumer group holds as many members as it may.
    GroupFull,
    /// An idempotent producer's batch does not follow its previous one.
    OutOfOrderSequence,
    /// A newer epoch of this producer id has written; the older one may not.
    ProducerFenced,
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
            ErrorCode::MemberIdRequired => "member_id_required",
            ErrorCode::UnknownMember => "unknown_member",
            ErrorCode::IllegalGeneration => "illegal_generation",
            ErrorCode::RebalanceInProgress => "rebalance_in_progress",
            ErrorCode::InconsistentGroupProtocol => "inconsistent_group_protocol",
            ErrorCode::InvalidSessionTimeout => "invalid_session_timeout",
            ErrorCode::GroupNotFound => "group_not_found",
            ErrorCode::GroupNotEmpty => "group_not_empty",
            ErrorCode::FencedInstanceId => "fenced_instance_id",
            ErrorCode::GroupFull => "group_full",
            ErrorCode::OutOfOrderSequence => "out_of_order_sequence",
            ErrorCode::ProducerFenced => "producer_fenced",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The group and producer codes are public strings: spelled once here, and serde's
    /// spelling (what the HTTP door writes) must be the same.
    #[test]
    fn group_and_producer_codes_have_stable_snake_case_names() {
        let codes = [
            (ErrorCode::MemberIdRequired, "member_id_required"),
            (ErrorCode::UnknownMember, "unknown_member"),
            (ErrorCode::IllegalGeneration, "illegal_generation"),
            (ErrorCode::RebalanceInProgress, "rebalance_in_progress"),
            (
                ErrorCode::InconsistentGroupProtocol,
                "inconsistent_group_protocol",
            ),
            (ErrorCode::InvalidSessionTimeout, "invalid_session_timeout"),
            (ErrorCode::GroupNotFound, "group_not_found"),
            (ErrorCode::GroupNotEmpty, "group_not_empty"),
            (ErrorCode::FencedInstanceId, "fenced_instance_id"),
            (ErrorCode::GroupFull, "group_full"),
            (ErrorCode::OutOfOrderSequence, "out_of_order_sequence"),
            (ErrorCode::ProducerFenced, "producer_fenced"),
        ];
        for (code, name) in codes {
            assert_eq!(code.as_str(), name);
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{name}\""));
        }
    }
}
