//! Response encoding into a caller's buffer: the length prefix, the response header (v0, or
//! v1 with tagged fields for flexible versions — except ApiVersions, always v0) and the body.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use super::frame::LENGTH_BYTES;
use super::CodecError;

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub body: ResponseKind,
}

impl Response {
    /// Appends the framed response to `buffer`. On error `buffer` is left as it was.
    pub fn encode(&self, buffer: &mut BytesMut) -> Result<(), CodecError> {
        let start = buffer.len();
        let result = self.encode_unchecked(buffer, start);
        if result.is_err() {
            buffer.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, buffer: &mut BytesMut, start: usize) -> Result<(), CodecError> {
        let error = |reason: String| CodecError::Encode {
            api_key: self.api_key,
            version: self.version,
            reason,
        };
        buffer.put_i32(0);
        let header_version = self.api_key.response_header_version(self.version);
        let mut header = ResponseHeader::default();
        header.correlation_id = self.correlation_id;
        header
            .encode(buffer, header_version)
            .map_err(|e| error(e.to_string()))?;
        self.body
            .encode(buffer, self.version)
            .map_err(|e| error(format!("{e:#}")))?;
        let length = buffer.len() - start - LENGTH_BYTES;
        let length = i32::try_from(length).map_err(|_| error(format!("{length} bytes")))?;
        buffer[start..start + LENGTH_BYTES].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}
