//! Request decoding, including golden bytes as real clients send them.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;

/// ApiVersions v3, the first request librdkafka sends, captured from `kcat -L` (kcat 1.7.1,
/// librdkafka 2.0.2) without its length prefix: request header v2 (key, version, correlation
/// id, i16 client id, empty tagged fields), then two compact strings and empty tagged fields.
const LIBRDKAFKA_API_VERSIONS_V3: &[u8] = &[
    0x00, 0x12, // api key 18
    0x00, 0x03, // version 3
    0x00, 0x00, 0x00, 0x01, // correlation id
    0x00, 0x07, b'r', b'd', b'k', b'a', b'f', b'k', b'a', // client id
    0x00, // header tagged fields
    0x0b, b'l', b'i', b'b', b'r', b'd', b'k', b'a', b'f', b'k', b'a', // software name
    0x06, b'2', b'.', b'0', b'.', b'2', // software version
    0x00, // body tagged fields
];

/// ApiVersions v4, captured from kafka-python 3.0.12 bootstrapping.
const KAFKA_PYTHON_API_VERSIONS_V4: &[u8] =
    b"\x00\x12\x00\x04\x00\x00\x00\x01\x00\x0ckafka-python\x00\rkafka-python\x073.0.12\x00";

/// Metadata v12, captured from kafka-python 3.0.12 bootstrapping: an empty topic list (in
/// v1+ that means no topics; null would mean all), auto-creation allowed.
const KAFKA_PYTHON_METADATA_V12: &[u8] =
    b"\x00\x03\x00\x0c\x00\x00\x00\x02\x00\x0ckafka-python\x00\x01\x01\x00\x00";

fn request(frame: &'static [u8]) -> Request {
    match decode_request(Bytes::from_static(frame)).unwrap() {
        DecodedRequest::Request(request) => *request,
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn librdkafka_api_versions_v3_decodes() {
    let decoded = request(LIBRDKAFKA_API_VERSIONS_V3);
    assert_eq!(decoded.api_key, ApiKey::ApiVersions);
    assert_eq!(decoded.version, 3);
    assert_eq!(decoded.correlation_id(), 1);
    assert_eq!(decoded.client_id(), "rdkafka");
    let RequestKind::ApiVersions(body) = decoded.body else {
        panic!("wrong body")
    };
    assert_eq!(body.client_software_name.as_str(), "librdkafka");
    assert_eq!(body.client_software_version.as_str(), "2.0.2");
}

#[test]
fn kafka_python_api_versions_v4_decodes() {
    let decoded = request(KAFKA_PYTHON_API_VERSIONS_V4);
    assert_eq!((decoded.api_key, decoded.version), (ApiKey::ApiVersions, 4));
    let RequestKind::ApiVersions(body) = decoded.body else {
        panic!("wrong body")
    };
    assert_eq!(body.client_software_version.as_str(), "3.0.12");
}

#[test]
fn the_golden_frames_match_what_the_encoder_writes() {
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::ApiVersions as i16;
    header.request_api_version = 3;
    header.correlation_id = 1;
    header.client_id = Some(StrBytes::from_static_str("rdkafka"));
    let mut body = ApiVersionsRequest::default();
    body.client_software_name = StrBytes::from_static_str("librdkafka");
    body.client_software_version = StrBytes::from_static_str("2.0.2");
    let mut bytes = BytesMut::new();
    header.encode(&mut bytes, 2).unwrap();
    body.encode(&mut bytes, 3).unwrap();
    assert_eq!(&bytes[..], LIBRDKAFKA_API_VERSIONS_V3);
}

#[test]
fn kafka_python_metadata_v12_decodes() {
    let decoded = request(KAFKA_PYTHON_METADATA_V12);
    assert_eq!(decoded.client_id(), "kafka-python");
    assert_eq!(decoded.version, 12);
    let RequestKind::Metadata(body) = decoded.body else {
        panic!("wrong body")
    };
    assert_eq!(body.topics, Some(Vec::new()));
    assert!(body.allow_auto_topic_creation);
    assert!(!body.include_topic_authorized_operations);
}

#[test]
fn an_api_versions_request_newer_than_ours_is_unsupported_not_an_error() {
    let mut frame = LIBRDKAFKA_API_VERSIONS_V3.to_vec();
    frame[3] = 9;
    let decoded = decode_request(Bytes::from(frame)).unwrap();
    assert_eq!(
        decoded,
        DecodedRequest::Unsupported {
            api_key: ApiKey::ApiVersions,
            version: 9,
            correlation_id: 1
        }
    );
}

#[test]
fn unknown_keys_and_short_frames_are_errors() {
    let mut frame = BytesMut::new();
    frame.put_i16(999);
    frame.put_i16(0);
    frame.put_i32(5);
    frame.put_i16(-1);
    assert!(matches!(
        decode_request(frame.freeze()),
        Err(CodecError::UnknownApiKey {
            api_key: 999,
            correlation_id: 5
        })
    ));
    assert!(matches!(
        decode_request(Bytes::from_static(&[0, 3, 0])),
        Err(CodecError::Truncated(3))
    ));
}

#[test]
fn a_body_that_claims_a_huge_array_is_malformed_not_an_allocation() {
    // The kafka-python Metadata v12 frame with its topic count raised to about four billion.
    let mut frame = KAFKA_PYTHON_METADATA_V12[..23].to_vec();
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x00, 0x00]);
    assert!(matches!(
        decode_request(Bytes::from(frame)),
        Err(CodecError::Malformed { .. })
    ));
}
