//! Kafka error codes for the engine's errors.

use kafka_protocol::error::ResponseError;
use omnibus_engine::EngineError;
use omnibus_types::ErrorCode;

pub(crate) const NONE: i16 = 0;

/// The Kafka error code for an engine error, for any API; handlers refine it where the API
/// has a more specific code (a bad batch in a produce is CORRUPT_MESSAGE).
///
/// Mostly by the stable [`ErrorCode`]; three coordinator variants share a code with an error
/// that Kafka answers differently, so they are matched first by variant.
pub(crate) fn engine_error_code(error: &EngineError) -> i16 {
    let kafka = match error {
        // `unavailable`: a client looks for the coordinator again on this, not on
        // NOT_LEADER_OR_FOLLOWER.
        EngineError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        // `invalid_name`, but a group's name, not a topic's.
        EngineError::InvalidGroupId(_) => ResponseError::InvalidGroupId,
        // `limit_exceeded` of a coordinator bound: not a topic policy.
        EngineError::GroupLimitExceeded(_) => ResponseError::InvalidRequest,
        _ => kafka_error_for_code(error.code()),
    };
    kafka.code()
}

/// The Kafka error for each stable error code. Exhaustive on purpose: a new code must be given
/// a Kafka error here before the crate compiles.
fn kafka_error_for_code(code: ErrorCode) -> ResponseError {
    match code {
        ErrorCode::StreamNotFound | ErrorCode::PartitionNotFound => {
            ResponseError::UnknownTopicOrPartition
        }
        ErrorCode::InvalidName | ErrorCode::InvalidSubject => ResponseError::InvalidTopicException,
        ErrorCode::StreamExists => ResponseError::TopicAlreadyExists,
        ErrorCode::InvalidConfig => ResponseError::InvalidConfig,
        ErrorCode::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
        ErrorCode::MessageTooLarge => ResponseError::MessageTooLarge,
        ErrorCode::StorageFailed | ErrorCode::DiskFull => ResponseError::KafkaStorageError,
        // Shutting down, or a partition closed under a request: the client refreshes its
        // metadata and retries (elsewhere, once we have an elsewhere).
        ErrorCode::Unavailable => ResponseError::NotLeaderOrFollower,
        ErrorCode::BadRequest => ResponseError::InvalidRequest,
        ErrorCode::SubjectsOverlap | ErrorCode::LimitExceeded => ResponseError::PolicyViolation,
        ErrorCode::MemberIdRequired => ResponseError::MemberIdRequired,
        ErrorCode::UnknownMember => ResponseError::UnknownMemberId,
        ErrorCode::IllegalGeneration => ResponseError::IllegalGeneration,
        ErrorCode::RebalanceInProgress => ResponseError::RebalanceInProgress,
        ErrorCode::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        ErrorCode::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        ErrorCode::GroupNotFound => ResponseError::GroupIdNotFound,
        ErrorCode::GroupNotEmpty => ResponseError::NonEmptyGroup,
        ErrorCode::FencedInstanceId => ResponseError::FencedInstanceId,
        ErrorCode::GroupFull => ResponseError::GroupMaxSizeReached,
        ErrorCode::OutOfOrderSequence => ResponseError::OutOfOrderSequenceNumber,
        ErrorCode::ProducerFenced => ResponseError::InvalidProducerEpoch,
        // Queues and jobs have no Kafka door; a subject no stream captures cannot come from
        // a Kafka request (topics are streams).
        ErrorCode::NoStreamForSubject
        | ErrorCode::Internal
        | ErrorCode::QueueNotFound
        | ErrorCode::QueueExists
        | ErrorCode::UnknownDelivery
        | ErrorCode::StaleAttempt
        | ErrorCode::JobNotFound
        | ErrorCode::JobFinished
        | ErrorCode::QueueFull => ResponseError::UnknownServerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_the_kafka_codes_clients_act_on() {
        let code = |error: EngineError| engine_error_code(&error);
        assert_eq!(code(EngineError::StreamNotFound("t".into())), 3);
        assert_eq!(code(EngineError::StreamExists("t".into())), 36);
        assert_eq!(code(EngineError::InvalidName("t".into())), 17);
        assert_eq!(code(EngineError::ShuttingDown), 6);
        let too_large = EngineError::MessageTooLarge {
            what: "record",
            bytes: 2,
            max: 1,
        };
        assert_eq!(code(too_large), 10);
    }

    #[test]
    fn coordinator_errors_map_to_their_namesakes() {
        let code = |error: EngineError| engine_error_code(&error);
        assert_eq!(code(EngineError::MemberIdRequired("m".into())), 79);
        assert_eq!(code(EngineError::UnknownMember), 25);
        assert_eq!(code(EngineError::IllegalGeneration), 22);
        assert_eq!(code(EngineError::RebalanceInProgress), 27);
        assert_eq!(code(EngineError::InconsistentGroupProtocol), 23);
        assert_eq!(code(EngineError::InvalidSessionTimeout), 26);
        assert_eq!(code(EngineError::GroupNotFound), 69);
        assert_eq!(code(EngineError::GroupNotEmpty), 68);
        assert_eq!(code(EngineError::CoordinatorNotAvailable), 15);
        assert_eq!(code(EngineError::FencedInstanceId), 82);
        assert_eq!(code(EngineError::InvalidGroupId("".into())), 24);
        assert_eq!(code(EngineError::GroupFull), 81);
        assert_eq!(code(EngineError::GroupLimitExceeded("l".into())), 42);
    }

    /// The coordinator variants that share a stable code with another error keep their own
    /// Kafka codes, and the other error keeps its own.
    #[test]
    fn errors_sharing_a_code_keep_their_kafka_codes_apart() {
        let code = |error: EngineError| engine_error_code(&error);
        assert_eq!(code(EngineError::ShuttingDown), 6);
        assert_eq!(code(EngineError::CoordinatorNotAvailable), 15);
        assert_eq!(code(EngineError::InvalidName("t".into())), 17);
        assert_eq!(code(EngineError::InvalidGroupId("g".into())), 24);
        assert_eq!(code(EngineError::LimitExceeded("l".into())), 44);
        assert_eq!(code(EngineError::GroupLimitExceeded("l".into())), 42);
    }

    #[test]
    fn producer_errors_map_to_their_namesakes() {
        let code = |error: EngineError| engine_error_code(&error);
        let out_of_order = EngineError::OutOfOrderSequence {
            expected: 1,
            received: 3,
        };
        assert_eq!(code(out_of_order), 45);
        let fenced = EngineError::ProducerFenced {
            current: 2,
            received: 1,
        };
        assert_eq!(code(fenced), 47);
    }
}
