use bytes::{Bytes, BytesMut};
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

#[test]
fn encoded_batches_have_the_spans_validation_would_find() {
    let mut batches = EncodedBatches::default();
    assert!(batches.is_empty());
    batches
        .push(&[record("a", "one"), record("b", "two")])
        .unwrap();
    batches.push(&[record("c", "three")]).unwrap();
    assert!(!batches.is_empty());
    let length = batches.len();
    let (bytes, spans) = batches.into_parts();
    assert_eq!(bytes.len(), length);
    assert_eq!(spans, validate_batches(&bytes, 1 << 20).unwrap());
    assert_eq!(spans[1].header.record_count, 1);
}

/// A record as kafka-protocol's encoder takes it, with what every Omnibus batch has: no
/// producer, no transaction, `index` as its offset in the batch.
pub(crate) fn wire_record(
    index: usize,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: kafka_protocol::indexmap::IndexMap<kafka_protocol::protocol::StrBytes, Option<Bytes>>,
) -> WireRecord {
    WireRecord {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: kafka_protocol::records::TimestampType::Creation,
        offset: index as i64,
        // The codec starts a new batch whenever `offset - sequence` changes; with no producer
        // id the base sequence must be -1, so sequence = offset - 1 keeps one batch.
        sequence: index as i32 - 1,
        timestamp,
        key,
        value,
        headers,
    }
}

/// The encoder `encode_batch` replaced: records through kafka-protocol's own encoder, which
/// stays the reference the hand encoder must match byte for byte.
fn encode_with_the_codec(records: &[Record]) -> BytesMut {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions};
    let wire: Vec<WireRecord> = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let mut headers = IndexMap::new();
            if !record.subject.is_empty() {
                headers.insert(
                    StrBytes::from_static_str(SUBJECT_HEADER),
                    Some(Bytes::copy_from_slice(record.subject.as_bytes())),
                );
            }
            for header in &record.headers {
                headers.insert(
                    StrBytes::from_string(header.name.clone()),
                    Some(header.value.clone()),
                );
            }
            wire_record(
                index,
                record.timestamp_ms,
                record.key.clone(),
                record.value.clone(),
                headers,
            )
        })
        .collect();
    let mut buffer = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buffer, wire.iter(), &options).unwrap();
    buffer
}

fn record_with_repeats() -> impl Strategy<Value = Record> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from);
    // Few names, so records repeat them.
    let name = prop_oneof![Just("a".to_string()), Just("b".to_string()), "[a-z.]{0,20}"];
    let headers = proptest::collection::vec((name, bytes()), 0..6).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect::<Vec<_>>()
    });
    (
        prop_oneof![Just(String::new()), "[a-z.]{1,30}"],
        proptest::option::of(bytes()),
        proptest::option::of(bytes()),
        headers,
        prop_oneof![
            Just(1_700_000_000_000i64),
            any::<i64>().prop_map(|t| t >> 8),
            Just(-1)
        ],
    )
        .prop_map(|(subject, key, value, headers, timestamp_ms)| Record {
            offset: 0,
            timestamp_ms,
            subject,
            key,
            value,
            headers,
        })
}

proptest! {
    #[test]
    fn the_hand_encoder_writes_what_the_codec_writes(
        records in proptest::collection::vec(record_with_repeats(), 1..8)
    ) {
        let ours = encode_batch(&records).unwrap();
        prop_assert_eq!(&ours[..], &encode_with_the_codec(&records)[..]);
        prop_assert_eq!(validate_batches(&ours, 1 << 24).unwrap().len(), 1);
    }
}

#[test]
fn a_repeated_header_is_stored_once_with_its_last_value_even_among_many() {
    let mut record = record("s", "v");
    record.headers = (0..40)
        .map(|index| Header {
            name: format!("h{}", index % 20),
            value: Bytes::from(index.to_string()),
        })
        .collect();
    let ours = encode_batch(std::slice::from_ref(&record)).unwrap();
    assert_eq!(
        &ours[..],
        &encode_with_the_codec(std::slice::from_ref(&record))[..]
    );
    let decoded = decode_batches(ours.freeze(), 0).unwrap();
    assert_eq!(decoded[0].headers.len(), 20);
    assert_eq!(decoded[0].headers[3].name, "h3");
    assert_eq!(&decoded[0].headers[3].value[..], b"23");
    assert_eq!(decoded[0].subject, "s");
}

#[test]
fn no_records_encode_to_no_bytes_and_no_batch() {
    assert!(encode_batch(&[]).unwrap().is_empty());
    assert!(EncodedBatches::of(&[]).is_err());
}
