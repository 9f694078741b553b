use bytes::Bytes;
use omnibus_types::{Header, Record};
use proptest::prelude::*;

use super::*;

fn record(subject: &str, value: &str) -> Record {
    Record {
        offset: 0,
        timestamp_ms: 1_700_000_000_000,
        subject: subject.to_string(),
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: vec![Header {
            name: "h".into(),
            value: Bytes::from_static(b"v"),
        }],
    }
}

#[test]
fn encoded_batch_has_a_valid_header_and_crc() {
    let bytes = encode_batch(&[record("a.b", "one"), record("a.c", "two")]).unwrap();
    let header = BatchHeader::parse(&bytes).unwrap();
    assert_eq!(header.total_bytes(), bytes.len());
    assert_eq!(header.record_count, 2);
    assert_eq!(header.last_offset_delta, 1);
    assert_eq!(header.producer_id, -1);
    assert_eq!(header.base_sequence, -1);
    assert!(verify_crc(&bytes));
    assert_eq!(validate_batches(&bytes, 1 << 20).unwrap().len(), 1);
}

#[test]
fn rewriting_the_base_offset_keeps_the_crc_valid() {
    let mut bytes = encode_batch(&[record("s", "x")]).unwrap();
    set_base_offset(&mut bytes, 42);
    assert!(verify_crc(&bytes));
    let records = decode_batches(bytes.freeze(), 0).unwrap();
    assert_eq!(records[0].offset, 42);
}

#[test]
fn flipped_bit_fails_validation() {
    let mut bytes = encode_batch(&[record("s", "payload")]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert!(matches!(
        validate_batches(&bytes, 1 << 20),
        Err(StorageError::InvalidBatch(_))
    ));
}

#[test]
fn oversized_and_truncated_batches_are_rejected() {
    let bytes = encode_batch(&[record("s", &"x".repeat(1000))]).unwrap();
    assert!(matches!(
        validate_batches(&bytes, 100),
        Err(StorageError::BatchTooLarge { .. })
    ));
    assert!(validate_batches(&bytes[..bytes.len() - 1], 1 << 20).is_err());
    assert!(validate_batches(&bytes[..30], 1 << 20).is_err());
    assert!(validate_batches(&[], 1 << 20).is_err());
}

#[test]
fn decode_skips_records_before_the_requested_offset() {
    let records: Vec<Record> = (0..5).map(|i| record("s", &i.to_string())).collect();
    let mut bytes = encode_batch(&records).unwrap();
    set_base_offset(&mut bytes, 10);
    let decoded = decode_batches(bytes.freeze(), 12).unwrap();
    let offsets: Vec<u64> = decoded.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![12, 13, 14]);
}

#[test]
fn empty_subject_writes_no_subject_header() {
    let bytes = encode_batch(&[record("", "v")]).unwrap();
    let decoded = decode_batches(bytes.freeze(), 0).unwrap();
    assert_eq!(decoded[0].subject, "");
    assert_eq!(decoded[0].headers.len(), 1);
}

fn arbitrary_record() -> impl Strategy<Value = Record> {
    (
        any::<i64>().prop_map(|t| t.rem_euclid(4_000_000_000_000)),
        "[a-z]{1,5}(\\.[a-z]{1,5}){0,3}",
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
        proptest::collection::btree_map(
            "[a-z]{1,8}",
            proptest::collection::vec(any::<u8>(), 0..16),
            0..4,
        ),
    )
        .prop_map(|(timestamp_ms, subject, key, value, headers)| Record {
            offset: 0,
            timestamp_ms,
            subject,
            key: key.map(Bytes::from),
            value: value.map(Bytes::from),
            headers: headers
                .into_iter()
                .map(|(name, value)| Header {
                    name,
                    value: Bytes::from(value),
                })
                .collect(),
        })
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(records in proptest::collection::vec(arbitrary_record(), 1..20), base in 0u64..1_000_000) {
        let mut bytes = encode_batch(&records).unwrap();
        set_base_offset(&mut bytes, base);
        let decoded = decode_batches(bytes.freeze(), 0).unwrap();
        prop_assert_eq!(decoded.len(), records.len());
        for (index, (got, want)) in decoded.iter().zip(records.iter()).enumerate() {
            prop_assert_eq!(got.offset, base + index as u64);
            prop_assert_eq!(got.timestamp_ms, want.timestamp_ms);
            prop_assert_eq!(&got.subject, &want.subject);
            prop_assert_eq!(&got.key, &want.key);
            prop_assert_eq!(&got.value, &want.value);
            prop_assert_eq!(&got.headers, &want.headers);
        }
    }
}
