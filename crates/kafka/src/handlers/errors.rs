//! Kafka error codes for the engine's errors.

use kafka_protocol::error::ResponseError;
use omnibus_engine::groups::coordinator::CoordinatorError;
use omnibus_engine::EngineError;
use omnibus_types::ErrorCode;

pub(crate) const NONE: i16 = 0;

/// The Kafka error code closest to an engine error, for any API; handlers refine it where the
/// API has a more specific code (a bad batch in a produce is CORRUPT_MESSAGE).
pub(crate) fn engine_error_code(error: &EngineError) -> i16 {
    let kafka = match error.code() {
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
        _ => ResponseError::UnknownServerError,
    };
    kafka.code()
}

/// The Kafka error code for a coordinator error.
pub(crate) fn coordinator_error_code(error: &CoordinatorError) -> i16 {
    let kafka = match error {
        CoordinatorError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
        CoordinatorError::UnknownMemberId => ResponseError::UnknownMemberId,
        CoordinatorError::IllegalGeneration => ResponseError::IllegalGeneration,
        CoordinatorError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        CoordinatorError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        CoordinatorError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        CoordinatorError::GroupIdNotFound => ResponseError::GroupIdNotFound,
        CoordinatorError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        CoordinatorError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        CoordinatorError::FencedInstanceId => ResponseError::FencedInstanceId,
        CoordinatorError::InvalidGroupId(_) => ResponseError::InvalidGroupId,
        CoordinatorError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        CoordinatorError::LimitExceeded(_) => ResponseError::InvalidRequest,
        CoordinatorError::Engine(error) => return engine_error_code(error),
    };
    kafka.code()
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
        let code = |error: CoordinatorError| coordinator_error_code(&error);
        assert_eq!(code(CoordinatorError::MemberIdRequired("m".into())), 79);
        assert_eq!(code(CoordinatorError::UnknownMemberId), 25);
        assert_eq!(code(CoordinatorError::IllegalGeneration), 22);
        assert_eq!(code(CoordinatorError::RebalanceInProgress), 27);
        assert_eq!(code(CoordinatorError::InconsistentGroupProtocol), 23);
        assert_eq!(code(CoordinatorError::InvalidSessionTimeout), 26);
        assert_eq!(code(CoordinatorError::GroupIdNotFound), 69);
        assert_eq!(code(CoordinatorError::NonEmptyGroup), 68);
        assert_eq!(code(CoordinatorError::CoordinatorNotAvailable), 15);
        assert_eq!(code(CoordinatorError::FencedInstanceId), 82);
        assert_eq!(code(CoordinatorError::InvalidGroupId("".into())), 24);
        assert_eq!(code(CoordinatorError::GroupMaxSizeReached), 81);
    }
}
