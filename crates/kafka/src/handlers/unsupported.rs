//! Answers to requests this broker does not serve: an ApiVersions version newer than ours
//! gets UNSUPPORTED_VERSION (35) with our full key list in a v0-shaped body, so the client
//! retries with a version we know (KIP-511). Other known APIs that carry a top-level error
//! code get UNSUPPORTED_VERSION in their own response shape; anything else cannot be framed
//! and closes the connection.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;

use super::api_versions::supported_keys;

/// The response body and the version to encode it with, or `None` when there is no answer.
pub(crate) fn answer(api_key: ApiKey, version: i16) -> Option<(ResponseKind, i16)> {
    let code = ResponseError::UnsupportedVersion.code();
    if api_key == ApiKey::ApiVersions {
        let mut response = ApiVersionsResponse::default();
        response.error_code = code;
        response.api_keys = supported_keys();
        return Some((response.into(), 0));
    }
    let valid = api_key.valid_versions();
    if version < valid.min || version > valid.max {
        return None;
    }
    let body: ResponseKind = match api_key {
        ApiKey::SaslHandshake => {
            let mut response = SaslHandshakeResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::SaslAuthenticate => {
            let mut response = SaslAuthenticateResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::DescribeCluster => {
            let mut response = DescribeClusterResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::GetTelemetrySubscriptions => {
            let mut response = GetTelemetrySubscriptionsResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::PushTelemetry => {
            let mut response = PushTelemetryResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let mut response = ConsumerGroupHeartbeatResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::EndTxn => {
            let mut response = EndTxnResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::AddOffsetsToTxn => {
            let mut response = AddOffsetsToTxnResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::DescribeAcls => {
            let mut response = DescribeAclsResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::ListTransactions => {
            let mut response = ListTransactionsResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::DescribeClientQuotas => {
            let mut response = DescribeClientQuotasResponse::default();
            response.error_code = code;
            response.into()
        }
        ApiKey::ListPartitionReassignments => {
            let mut response = ListPartitionReassignmentsResponse::default();
            response.error_code = code;
            response.into()
        }
        _ => return None,
    };
    Some((body, version))
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::codec::Response;

    #[test]
    fn every_answer_encodes_at_every_version_it_claims() {
        for api_key in ApiKey::iter() {
            let valid = api_key.valid_versions();
            for version in valid.min..=valid.max + 1 {
                if let Some((body, encode_version)) = answer(api_key, version) {
                    let response = Response {
                        api_key,
                        version: encode_version,
                        correlation_id: 7,
                        body,
                    };
                    let mut buffer = BytesMut::new();
                    response
                        .encode(&mut buffer)
                        .unwrap_or_else(|e| panic!("{api_key:?} v{version}: {e}"));
                }
            }
        }
    }
}
