//! Every failure the API reports, rendered as `{"error":{"code":"…","message":"…"}}` with an
//! HTTP status derived from the stable [`ErrorCode`].

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use omnibus_engine::EngineError;
use omnibus_types::ErrorCode;
use serde::Serialize;

/// Code for a path no route matches. Not an engine [`ErrorCode`]: only HTTP has routes.
pub const CODE_NOT_FOUND: &str = "not_found";
/// Code for a route that exists but not with this method.
pub const CODE_METHOD_NOT_ALLOWED: &str = "method_not_allowed";

/// The one error type of the HTTP front door.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A request this crate refused itself; the status follows from `code`.
    #[error("{message}")]
    Request { code: ErrorCode, message: String },
    /// An axum extractor refused the request; keeps axum's status (400, 413, 415).
    #[error("{message}")]
    Rejected {
        status: StatusCode,
        code: ErrorCode,
        message: String,
    },
    #[error("no route for {method} {path}")]
    RouteNotFound { method: Method, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: Method, path: String },
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Request {
            code: ErrorCode::BadRequest,
            message: message.into(),
        }
    }

    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        ApiError::Request {
            code: ErrorCode::LimitExceeded,
            message: message.into(),
        }
    }

    pub fn message_too_large(message: impl Into<String>) -> Self {
        ApiError::Request {
            code: ErrorCode::MessageTooLarge,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::Request {
            code: ErrorCode::Unavailable,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Request {
            code: ErrorCode::Internal,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Engine(error) => status_for(error.code()),
            ApiError::Request { code, .. } => status_for(*code),
            ApiError::Rejected { status, .. } => *status,
            ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Engine(error) => error.code().as_str(),
            ApiError::Request { code, .. } | ApiError::Rejected { code, .. } => code.as_str(),
            ApiError::RouteNotFound { .. } => CODE_NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => CODE_METHOD_NOT_ALLOWED,
        }
    }

    /// Maps an axum rejection, keeping its status where it says more than 400 does.
    fn rejected(status: StatusCode, message: String) -> Self {
        let (status, code) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => (status, ErrorCode::MessageTooLarge),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (status, ErrorCode::BadRequest),
            status if status.is_server_error() => (status, ErrorCode::Internal),
            _ => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
        };
        ApiError::Rejected {
            status,
            code,
            message,
        }
    }
}

/// The HTTP status for each stable error code. Exhaustive on purpose: a new code must be given
/// a status here before the crate compiles.
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest
        | ErrorCode::InvalidName
        | ErrorCode::InvalidSubject
        | ErrorCode::InvalidConfig
        | ErrorCode::OffsetOutOfRange
        | ErrorCode::InvalidSessionTimeout => StatusCode::BAD_REQUEST,
        ErrorCode::StreamNotFound
        | ErrorCode::PartitionNotFound
        | ErrorCode::NoStreamForSubject
        | ErrorCode::QueueNotFound
        | ErrorCode::JobNotFound
        | ErrorCode::UnknownDelivery
        | ErrorCode::GroupNotFound
        | ErrorCode::UnknownMember => StatusCode::NOT_FOUND,
        // The group and producer codes come from the group coordinator and idempotent
        // producers, which only the Kafka door offers today; each is a request that clashes
        // with the group's or the producer's current state.
        ErrorCode::StreamExists
        | ErrorCode::SubjectsOverlap
        | ErrorCode::QueueExists
        | ErrorCode::JobFinished
        | ErrorCode::StaleAttempt
        | ErrorCode::MemberIdRequired
        | ErrorCode::IllegalGeneration
        | ErrorCode::RebalanceInProgress
        | ErrorCode::InconsistentGroupProtocol
        | ErrorCode::GroupNotEmpty
        | ErrorCode::FencedInstanceId
        | ErrorCode::GroupFull
        | ErrorCode::OutOfOrderSequence
        | ErrorCode::ProducerFenced => StatusCode::CONFLICT,
        ErrorCode::QueueFull => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::MessageTooLarge | ErrorCode::LimitExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StorageFailed | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::rejected(rejection.status(), rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        ApiError::rejected(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::rejected(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::rejected(rejection.status(), rejection.body_text())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        if status.is_server_error() {
            tracing::error!(code = self.code(), %message, "http request failed");
        } else {
            tracing::debug!(code = self.code(), %message, "http request refused");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: &message,
            },
        };
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_for_every_code_follows_the_documented_table() {
        let table = [
            (ErrorCode::BadRequest, 400),
            (ErrorCode::InvalidName, 400),
            (ErrorCode::InvalidSubject, 400),
            (ErrorCode::InvalidConfig, 400),
            (ErrorCode::OffsetOutOfRange, 400),
            (ErrorCode::StreamNotFound, 404),
            (ErrorCode::PartitionNotFound, 404),
            (ErrorCode::NoStreamForSubject, 404),
            (ErrorCode::QueueNotFound, 404),
            (ErrorCode::UnknownDelivery, 404),
            (ErrorCode::StreamExists, 409),
            (ErrorCode::SubjectsOverlap, 409),
            (ErrorCode::QueueExists, 409),
            (ErrorCode::StaleAttempt, 409),
            (ErrorCode::MessageTooLarge, 413),
            (ErrorCode::LimitExceeded, 413),
            (ErrorCode::DiskFull, 507),
            (ErrorCode::Unavailable, 503),
            (ErrorCode::StorageFailed, 500),
            (ErrorCode::Internal, 500),
            (ErrorCode::InvalidSessionTimeout, 400),
            (ErrorCode::GroupNotFound, 404),
            (ErrorCode::UnknownMember, 404),
            (ErrorCode::MemberIdRequired, 409),
            (ErrorCode::IllegalGeneration, 409),
            (ErrorCode::RebalanceInProgress, 409),
            (ErrorCode::InconsistentGroupProtocol, 409),
            (ErrorCode::GroupNotEmpty, 409),
            (ErrorCode::FencedInstanceId, 409),
            (ErrorCode::GroupFull, 409),
            (ErrorCode::OutOfOrderSequence, 409),
            (ErrorCode::ProducerFenced, 409),
        ];
        for (code, status) in table {
            assert_eq!(status_for(code).as_u16(), status, "{code}");
        }
    }

    #[test]
    fn engine_errors_keep_their_code_and_message() {
        let error = ApiError::from(EngineError::StreamNotFound("orders".into()));
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
        assert_eq!(error.code(), "stream_not_found");
        assert_eq!(error.to_string(), "stream \"orders\" does not exist");

        let error = ApiError::from(EngineError::ShuttingDown);
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code(), "unavailable");

        let error = ApiError::from(EngineError::SubjectsOverlap {
            pattern: "a.*".into(),
            other: "a.>".into(),
            stream: "s".into(),
        });
        assert_eq!(error.status(), StatusCode::CONFLICT);
        assert_eq!(error.code(), "subjects_overlap");

        // Sharing a code with another error, a group's variant answers as that code does.
        let error = ApiError::from(EngineError::InvalidGroupId("empty".into()));
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.code(), "invalid_name");
        let error = ApiError::from(EngineError::CoordinatorNotAvailable);
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code(), "unavailable");
    }

    #[test]
    fn rejections_keep_telling_statuses_and_map_the_rest_to_bad_request() {
        let too_large = ApiError::rejected(StatusCode::PAYLOAD_TOO_LARGE, "big".into());
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(too_large.code(), "message_too_large");

        let media = ApiError::rejected(StatusCode::UNSUPPORTED_MEDIA_TYPE, "type".into());
        assert_eq!(media.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(media.code(), "bad_request");

        // axum answers a JSON body of the wrong shape with 422; the API promises 400.
        let shape = ApiError::rejected(StatusCode::UNPROCESSABLE_ENTITY, "shape".into());
        assert_eq!(shape.status(), StatusCode::BAD_REQUEST);
        assert_eq!(shape.code(), "bad_request");
    }

    #[test]
    fn http_only_errors_have_their_own_codes() {
        let error = ApiError::RouteNotFound {
            method: Method::GET,
            path: "/nope".into(),
        };
        assert_eq!(
            (error.status(), error.code()),
            (StatusCode::NOT_FOUND, "not_found")
        );
        let error = ApiError::MethodNotAllowed {
            method: Method::PUT,
            path: "/health".into(),
        };
        assert_eq!(
            (error.status(), error.code()),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
        );
    }
}
