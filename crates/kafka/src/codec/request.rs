//! Request decoding: a frame (without its length prefix) becomes a header and a typed body.
//!
//! The header's own version depends on the API key and version (v1 for classic requests, v2
//! with tagged fields for flexible ones), so both are read from the first four bytes before
//! the header is decoded. A supported key at a version we do not answer, including an
//! ApiVersions newer than ours, is returned as [`DecodedRequest::Unsupported`] without
//! decoding its body, so the caller can still answer with the protocol's error.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use super::{shape, versions, CodecError};

/// api key (2) + api version (2) + correlation id (4) + client id length (2).
const HEADER_BYTES_MIN: usize = 10;

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub api_key: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

impl Request {
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }

    /// The client id, or `""`.
    pub fn client_id(&self) -> &str {
        self.header.client_id.as_deref().unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DecodedRequest {
    Request(Box<Request>),
    /// A known API key at a version (or of a kind) this broker does not answer; the body was
    /// not decoded.
    Unsupported {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    },
}

/// Decodes one frame. An unknown API key or a malformed supported request is an error: the
/// caller cannot frame an answer to it and closes the connection.
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, CodecError> {
    if frame.len() < HEADER_BYTES_MIN {
        return Err(CodecError::Truncated(frame.len()));
    }
    let mut fixed = &frame[..8];
    let raw_key = fixed.get_i16();
    let version = fixed.get_i16();
    let correlation_id = fixed.get_i32();
    let api_key = ApiKey::try_from(raw_key).map_err(|()| CodecError::UnknownApiKey {
        api_key: raw_key,
        correlation_id,
    })?;
    if !versions::is_supported(api_key, version) {
        return Ok(DecodedRequest::Unsupported {
            api_key,
            version,
            correlation_id,
        });
    }
    let malformed = |reason: String| CodecError::Malformed {
        api_key,
        version,
        reason,
    };
    let mut bytes = frame;
    let header_version = api_key.request_header_version(version);
    let header =
        RequestHeader::decode(&mut bytes, header_version).map_err(|e| malformed(e.to_string()))?;
    shape::check(api_key, version, &bytes).map_err(|e| malformed(e.to_string()))?;
    let body = RequestKind::decode(api_key, &mut bytes, version)
        .map_err(|e| malformed(format!("{e:#}")))?;
    Ok(DecodedRequest::Request(Box::new(Request {
        api_key,
        version,
        header,
        body,
    })))
}

#[cfg(test)]
mod tests;
