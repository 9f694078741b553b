//! The engine's one error type. Each variant maps to a stable [`ErrorCode`].
//!
//! The group coordinator's and the idempotent producers' variants are named after the Kafka
//! error a front door answers with (its number in brackets), since Kafka's classic group
//! protocol and producer ids are what they implement; the engine still imports no Kafka type.

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
    /// No exchange of that name (`exchanges/`). Its code is `bad_request`: no HTTP route
    /// names exchanges yet, and a new stable code waits for one.
    #[error("exchange {0:?} does not exist")]
    ExchangeNotFound(String),
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
    /// A keyspace command on a key that holds the other kind of value (a list command on a
    /// string key, a string command on a list key).
    #[error("the key holds another kind of value")]
    WrongKind,
    /// A state commit of the queue failed after its memory had changed: it refuses all work
    /// until it is reloaded from what is durable — by maintenance once an I/O failure (a full
    /// disk) has healed, otherwise by a restart.
    #[error("queue {queue:?} refuses work after a failed state commit (it is reloaded from disk once the cause heals): {reason}")]
    QueueFailed { queue: String, reason: String },
    /// A state commit of a stream's acked consumer failed after its memory had changed (a
    /// lazily committed ack or delivery among them): it refuses all work until a restart
    /// reloads it from what is durable.
    #[error("consumer {consumer:?} of stream {stream:?} refuses work after a failed state commit (a restart reloads it from disk): {reason}")]
    ConsumerFailed {
        stream: String,
        consumer: String,
        reason: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("consumer {consumer:?} of stream {stream:?} does not exist")]
    ConsumerNotFound { stream: String, consumer: String },
    #[error(
        "consumer {consumer:?} of stream {stream:?} already exists with another configuration"
    )]
    ConsumerExists { stream: String, consumer: String },

    // The group coordinator's refusals.
    /// MEMBER_ID_REQUIRED (79): join again with this member id.
    #[error("the member must join again with member id {0:?}")]
    MemberIdRequired(String),
    /// UNKNOWN_MEMBER_ID (25): the member (or the group) is unknown; join with an empty id.
    #[error("unknown member id")]
    UnknownMember,
    /// ILLEGAL_GENERATION (22): the request's generation is not the group's.
    #[error("illegal generation")]
    IllegalGeneration,
    /// REBALANCE_IN_PROGRESS (27): the group is rebalancing; the member must rejoin.
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// INCONSISTENT_GROUP_PROTOCOL (23): no protocol (or not the protocol type) in common with
    /// the group, or an empty protocol type or protocol list.
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    /// INVALID_SESSION_TIMEOUT (26): outside the coordinator's session timeout bounds.
    #[error("invalid session timeout")]
    InvalidSessionTimeout,
    /// GROUP_ID_NOT_FOUND (69): no such group (DeleteGroups).
    #[error("group not found")]
    GroupNotFound,
    /// NON_EMPTY_GROUP (68): the group has members (DeleteGroups).
    #[error("the group has members")]
    GroupNotEmpty,
    /// COORDINATOR_NOT_AVAILABLE (15): the group is being deleted or the coordinator stopped;
    /// the client finds the coordinator again and retries. Its code is `unavailable`, as for
    /// [`EngineError::ShuttingDown`], but a Kafka client must hear this name, not
    /// NOT_LEADER_OR_FOLLOWER, to look for the coordinator again.
    #[error("the coordinator is not available")]
    CoordinatorNotAvailable,
    /// FENCED_INSTANCE_ID (82): another member now holds this group instance id.
    #[error("the group instance id is held by another member")]
    FencedInstanceId,
    /// INVALID_GROUP_ID (24): empty, too long or containing a control character. Its code is
    /// `invalid_name`; kept apart from [`EngineError::InvalidName`] because Kafka answers a
    /// bad topic name with another error.
    #[error("invalid group id: {0}")]
    InvalidGroupId(String),
    /// GROUP_MAX_SIZE_REACHED (81): the group holds `members_per_group_max` members.
    #[error("the group has reached its maximum size")]
    GroupFull,
    /// A bound of the coordinator other than the group size (groups held, metadata or
    /// assignment bytes, protocols per member, instance id length). Its code is
    /// `limit_exceeded`; Kafka has no error of its own for these, and INVALID_REQUEST (42) is
    /// the closest (an engine [`EngineError::LimitExceeded`] is POLICY_VIOLATION instead).
    #[error("{0}")]
    GroupLimitExceeded(String),

    // The idempotent producers' refusals.
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45): the batch does not follow the last one accepted.
    #[error("out of order sequence number: expected {expected}, got {received}")]
    OutOfOrderSequence { expected: i32, received: i32 },
    /// INVALID_PRODUCER_EPOCH (47): a newer epoch of this producer id has written.
    #[error("producer epoch {received} is older than the current epoch {current}")]
    ProducerFenced { current: i16, received: i16 },
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
            EngineError::ExchangeNotFound(_) => ErrorCode::BadRequest,
            EngineError::UnknownDelivery(_) => ErrorCode::UnknownDelivery,
            EngineError::StaleAttempt(_) => ErrorCode::StaleAttempt,
            EngineError::JobNotFound(_) => ErrorCode::JobNotFound,
            EngineError::JobFinished(_) => ErrorCode::JobFinished,
            EngineError::QueueFull(_) => ErrorCode::QueueFull,
            EngineError::WrongKind => ErrorCode::BadRequest,
            EngineError::QueueFailed { .. } | EngineError::ConsumerFailed { .. } => {
                ErrorCode::StorageFailed
            }
            EngineError::Storage(error) => error.code(),
            // An acked consumer is the engine's other kind of consumer beside a group
            // (DESIGN.md §1); the codes of groups fit it without a new wire code.
            EngineError::ConsumerNotFound { .. } => ErrorCode::GroupNotFound,
            EngineError::ConsumerExists { .. } => ErrorCode::InvalidConfig,
            EngineError::MemberIdRequired(_) => ErrorCode::MemberIdRequired,
            EngineError::UnknownMember => ErrorCode::UnknownMember,
            EngineError::IllegalGeneration => ErrorCode::IllegalGeneration,
            EngineError::RebalanceInProgress => ErrorCode::RebalanceInProgress,
            EngineError::InconsistentGroupProtocol => ErrorCode::InconsistentGroupProtocol,
            EngineError::InvalidSessionTimeout => ErrorCode::InvalidSessionTimeout,
            EngineError::GroupNotFound => ErrorCode::GroupNotFound,
            EngineError::GroupNotEmpty => ErrorCode::GroupNotEmpty,
            EngineError::CoordinatorNotAvailable => ErrorCode::Unavailable,
            EngineError::FencedInstanceId => ErrorCode::FencedInstanceId,
            EngineError::InvalidGroupId(_) => ErrorCode::InvalidName,
            EngineError::GroupFull => ErrorCode::GroupFull,
            EngineError::GroupLimitExceeded(_) => ErrorCode::LimitExceeded,
            EngineError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequence,
            EngineError::ProducerFenced { .. } => ErrorCode::ProducerFenced,
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
