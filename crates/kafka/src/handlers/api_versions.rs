//! ApiVersions (key 18): the API keys and version ranges this broker answers.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::errors::NONE;
use crate::codec::versions::SUPPORTED;

pub(crate) fn handle(_request: ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = NONE;
    response.api_keys = supported_keys();
    response
}

/// Every supported key with its range, as both the normal answer and the v0-shaped answer to
/// an unsupported ApiVersions version carry it.
pub(crate) fn supported_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|entry| {
            let mut key = ApiVersion::default();
            key.api_key = entry.key as i16;
            key.min_version = entry.min;
            key.max_version = entry.max;
            key
        })
        .collect()
}
