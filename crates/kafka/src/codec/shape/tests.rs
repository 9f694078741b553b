//! The schemas are checked against the `kafka-protocol` encoder: a populated request of every
//! advertised version must walk to exactly its last byte. Malformed arrays must be refused.

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;

use super::*;
use crate::codec::samples::sample;
use crate::codec::versions::SUPPORTED;

fn encoded(key: ApiKey, version: i16) -> BytesMut {
    let mut body = BytesMut::new();
    sample(key, version)
        .encode(&mut body, version)
        .unwrap_or_else(|e| panic!("encoding {key:?} v{version}: {e:#}"));
    body
}

#[test]
fn every_advertised_request_version_walks_to_its_last_byte() {
    for entry in SUPPORTED {
        for version in entry.min..=entry.max {
            let body = encoded(entry.key, version);
            assert_eq!(
                check(entry.key, version, &body),
                Ok(body.len()),
                "{:?} v{version}",
                entry.key
            );
        }
    }
}

#[test]
fn every_truncation_of_a_valid_request_is_refused() {
    for entry in SUPPORTED {
        for version in entry.min..=entry.max {
            let body = encoded(entry.key, version);
            for cut in 0..body.len() {
                assert!(
                    check(entry.key, version, &body[..cut]).is_err(),
                    "{:?} v{version} cut at {cut} of {}",
                    entry.key,
                    body.len()
                );
            }
        }
    }
}

/// The upstream reproduction: Metadata v0 whose topic array claims 54 million entries.
#[test]
fn an_array_longer_than_the_remaining_bytes_is_refused_before_decoding() {
    let body = [0x03, 0x3c, 0x0c, 0x00, 0xb6];
    assert!(matches!(
        check(ApiKey::Metadata, 0, &body),
        Err(ShapeError::ArrayTooLong { .. })
    ));
    // The same in a flexible version: a varint count of about four billion.
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert!(matches!(
        check(ApiKey::Metadata, 9, &body),
        Err(ShapeError::ArrayTooLong { .. })
    ));
}

#[test]
fn too_many_elements_in_all_are_refused() {
    // DeleteGroups v0 with REQUEST_ELEMENTS_MAX + 1 empty group names (2 bytes each).
    let count = REQUEST_ELEMENTS_MAX + 1;
    let mut body = (count as i32).to_be_bytes().to_vec();
    body.resize(4 + 2 * count, 0);
    assert_eq!(
        check(ApiKey::DeleteGroups, 0, &body),
        Err(ShapeError::TooManyElements)
    );
}

#[test]
fn negative_lengths_other_than_null_are_refused() {
    // DeleteGroups v0: one group name of length -2.
    let body = [0, 0, 0, 1, 0xff, 0xfe];
    assert!(matches!(
        check(ApiKey::DeleteGroups, 0, &body),
        Err(ShapeError::BadLength { length: -2, .. })
    ));
}
