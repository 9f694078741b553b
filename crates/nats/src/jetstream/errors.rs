//! The JetStream API's errors, with nats-server's codes (its `server/errors.json`): clients
//! match on `err_code` (async-nats maps 10059 to "stream not found", nats-py raises
//! `NotFoundError` for 404), so the numbers are part of the protocol.

use omnibus_engine::EngineError;
use serde_json::{json, Value};

/// One error as the API answers it: `{"error":{"code","err_code","description"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) err_code: u32,
    pub(crate) description: String,
}

impl ApiError {
    fn new(code: u16, err_code: u32, description: impl Into<String>) -> ApiError {
        ApiError {
            code,
            err_code,
            description: description.into(),
        }
    }

    pub(crate) fn bad_request() -> ApiError {
        ApiError::new(400, 10003, "bad request")
    }

    pub(crate) fn invalid_json(error: &serde_json::Error) -> ApiError {
        ApiError::new(400, 10025, format!("invalid JSON: {error}"))
    }

    pub(crate) fn stream_not_found() -> ApiError {
        ApiError::new(404, 10059, "stream not found")
    }

    pub(crate) fn stream_name_in_use() -> ApiError {
        ApiError::new(
            400,
            10058,
            "stream name already in use with a different configuration",
        )
    }

    pub(crate) fn filter_not_subset() -> ApiError {
        ApiError::new(
            400,
            10093,
            "consumer filter subject is not a valid subset of the interest subjects",
        )
    }

    pub(crate) fn start_sequence_missing() -> ApiError {
        ApiError::new(
            400,
            10094,
            "consumer delivery policy is deliver by start sequence, but optional start sequence is not set",
        )
    }

    pub(crate) fn stream_name_mismatch() -> ApiError {
        ApiError::new(400, 10056, "stream name in subject does not match request")
    }

    pub(crate) fn subjects_overlap() -> ApiError {
        ApiError::new(400, 10065, "subjects overlap with an existing stream")
    }

    pub(crate) fn invalid_config(reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 10052, reason.to_string())
    }

    pub(crate) fn no_message_found() -> ApiError {
        ApiError::new(404, 10037, "no message found")
    }

    pub(crate) fn expected_stream_mismatch() -> ApiError {
        ApiError::new(400, 10060, "expected stream does not match")
    }

    pub(crate) fn wrong_last_sequence(last: u64) -> ApiError {
        ApiError::new(400, 10071, format!("wrong last sequence: {last}"))
    }

    pub(crate) fn wrong_last_msg_id(last: &str) -> ApiError {
        ApiError::new(400, 10070, format!("wrong last msg ID: {last}"))
    }

    pub(crate) fn message_too_large() -> ApiError {
        ApiError::new(400, 10054, "message size exceeds maximum allowed")
    }

    pub(crate) fn consumer_not_found() -> ApiError {
        ApiError::new(404, 10014, "consumer not found")
    }

    pub(crate) fn consumer_name_mismatch() -> ApiError {
        ApiError::new(
            400,
            10017,
            "consumer name in subject does not match durable name in request",
        )
    }

    pub(crate) fn consumer_exists() -> ApiError {
        ApiError::new(400, 10148, "consumer already exists")
    }

    pub(crate) fn workqueue_requires_explicit_ack() -> ApiError {
        ApiError::new(400, 10098, "workqueue stream requires explicit ack")
    }

    pub(crate) fn workqueue_multiple_unfiltered() -> ApiError {
        ApiError::new(
            400,
            10099,
            "multiple non-filtered consumers not allowed on workqueue stream",
        )
    }

    pub(crate) fn workqueue_not_unique() -> ApiError {
        ApiError::new(
            400,
            10100,
            "filtered consumer not unique on workqueue stream",
        )
    }

    pub(crate) fn workqueue_not_deliver_all() -> ApiError {
        ApiError::new(
            400,
            10101,
            "consumer must be deliver all on workqueue stream",
        )
    }

    /// What nats-server answers for an API it does not know or does not serve.
    pub(crate) fn not_served(what: &str) -> ApiError {
        ApiError::new(
            503,
            10076,
            format!("JetStream {what} is not served by Omnibus yet"),
        )
    }

    /// An engine failure, mapped onto the nearest nats-server error.
    pub(crate) fn from_engine(error: &EngineError) -> ApiError {
        match error {
            EngineError::StreamNotFound(_) | EngineError::NoStreamForSubject(_) => {
                ApiError::stream_not_found()
            }
            EngineError::StreamExists(_) | EngineError::QueueExists(_) => {
                ApiError::stream_name_in_use()
            }
            EngineError::SubjectsOverlap { .. } => ApiError::subjects_overlap(),
            EngineError::ConsumerNotFound { .. } => ApiError::consumer_not_found(),
            EngineError::ConsumerExists { .. } => ApiError::consumer_exists(),
            EngineError::MessageTooLarge { .. } => ApiError::message_too_large(),
            EngineError::InvalidName(_)
            | EngineError::InvalidSubject(_)
            | EngineError::InvalidConfig(_)
            | EngineError::BadRequest(_)
            | EngineError::LimitExceeded(_) => ApiError::invalid_config(error),
            other => ApiError::new(503, 10008, other.to_string()),
        }
    }

    /// The whole answer, with the response `type` nats-server puts first.
    pub(crate) fn to_json(&self, response_type: &str) -> Value {
        json!({
            "type": response_type,
            "error": {
                "code": self.code,
                "err_code": self.err_code,
                "description": self.description,
            }
        })
    }
}
