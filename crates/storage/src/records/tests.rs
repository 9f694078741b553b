use std::io::Write;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as WireRecord, RecordBatchEncoder, RecordEncodeOptions,
};
use omnibus_types::{Header, Record};
use proptest::prelude::*;

use super::*;
use crate::batch::tests::wire_record;
use crate::batch::{decode_batches, encode_batch, validate_batches};

const LIMIT: usize = 1 << 20;
const VALUE: &[u8] = b"some fairly compressible value, ";

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut raw = zigzag(value);
    while raw >= 0x80 {
        out.push(raw as u8 | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

fn put_varint(out: &mut Vec<u8>, value: i32) {
    let mut raw = ((value << 1) ^ (value >> 31)) as u32;
    while raw >= 0x80 {
        out.push(raw as u8 | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// A record's body (everything after its length) with the given header count and headers.
fn body(offset_delta: i32, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8]; // attributes
    put_varlong(&mut out, 0); // timestamp delta
    put_varint(&mut out, offset_delta);
    for field in [key, value] {
        match field {
            None => put_varint(&mut out, -1),
            Some(bytes) => {
                put_varint(&mut out, bytes.len() as i32);
                out.extend_from_slice(bytes);
            }
        }
    }
    out.extend_from_slice(headers);
    out
}

/// `varint header count` followed by nothing: for a record with no headers use `&[0]`.
fn no_headers() -> Vec<u8> {
    vec![0]
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i32);
    out.extend_from_slice(body);
    out
}

/// A whole v2 batch around `records` with a correct length and CRC.
fn batch_with(
    records: &[u8],
    record_count: i32,
    last_offset_delta: i32,
    attributes: i16,
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_BYTES - 12 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&last_offset_delta.to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&record_count.to_be_bytes());
    b.extend_from_slice(records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn refused(batch: &[u8]) -> String {
    let header = BatchHeader::parse(batch).unwrap();
    assert_eq!(header.total_bytes(), batch.len());
    assert!(
        crate::batch::verify_crc(batch),
        "test batch must have a valid CRC"
    );
    let Err(StorageError::InvalidBatch(what)) = check_batch(batch, LIMIT) else {
        panic!("check_batch accepted a bad batch");
    };
    assert!(matches!(
        validate_batches(batch, LIMIT),
        Err(StorageError::InvalidBatch(_))
    ));
    assert!(matches!(
        decode_batches(Bytes::copy_from_slice(batch), 0),
        Err(StorageError::Corrupt(_))
    ));
    what
}

fn wire(index: usize, value: &[u8]) -> WireRecord {
    let mut headers = IndexMap::new();
    headers.insert(
        StrBytes::from_static_str("trace"),
        Some(Bytes::from(format!("t{index}"))),
    );
    headers.insert(StrBytes::from_static_str("none"), None);
    wire_record(
        index,
        1_700_000_000_000 + index as i64,
        (index & 1 == 0).then(|| Bytes::from(format!("key-{index}"))),
        Some(Bytes::copy_from_slice(value)),
        headers,
    )
}

fn kafka_batch(compression: Compression, count: usize) -> BytesMut {
    let value = VALUE.repeat(20);
    let records: Vec<WireRecord> = (0..count).map(|i| wire(i, &value)).collect();
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buffer
}

fn assert_accepted(batch: &[u8], count: usize) {
    check_batch(batch, LIMIT).unwrap();
    assert_eq!(validate_batches(batch, LIMIT).unwrap().len(), 1);
    let decoded = decode_batches(Bytes::copy_from_slice(batch), 0).unwrap();
    assert_eq!(decoded.len(), count);
    for (index, record) in decoded.iter().enumerate() {
        assert_eq!(record.offset, index as u64);
        assert_eq!(
            record.key,
            (index & 1 == 0).then(|| Bytes::from(format!("key-{index}")))
        );
        assert_eq!(record.value.as_ref().unwrap().len(), VALUE.len() * 20);
        assert_eq!(record.headers[0].value, Bytes::from(format!("t{index}")));
    }
}

#[test]
fn encode_batch_output_passes() {
    let record = Record {
        offset: 0,
        timestamp_ms: 5,
        subject: "a.b".into(),
        key: Some(Bytes::from_static(b"k")),
        value: None,
        headers: vec![Header {
            name: "h".into(),
            value: Bytes::from_static(b"v"),
        }],
    };
    let batch = encode_batch(&[record.clone(), record]).unwrap();
    check_batch(&batch, LIMIT).unwrap();
    assert_eq!(validate_batches(&batch, LIMIT).unwrap().len(), 1);
}

#[test]
fn compressed_batches_from_the_kafka_encoder_pass_and_decode() {
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = kafka_batch(compression, 7);
        assert_accepted(&batch, 7);
    }
}

#[test]
fn raw_snappy_without_xerial_framing_is_accepted() {
    let plain = kafka_batch(Compression::None, 3);
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&plain[HEADER_BYTES..])
        .unwrap();
    let batch = batch_with(&compressed, 3, 2, 2);
    assert_accepted(&batch, 3);
}

#[test]
fn a_record_claiming_two_billion_headers_is_refused_without_aborting() {
    let mut headers = Vec::new();
    put_varint(&mut headers, i32::MAX);
    let records = framed(&body(0, None, None, &headers));
    let batch = batch_with(&records, 1, 0, 0);
    let what = refused(&batch);
    assert!(what.contains("header count"), "{what}");
}

#[test]
fn a_key_length_past_the_end_is_refused() {
    let mut record = body(0, Some(b"k"), None, &no_headers());
    record[3] = 100; // zigzag 50: key length 50, with far fewer bytes left
    let what = refused(&batch_with(&framed(&record), 1, 0, 0));
    assert!(what.contains("key length"), "{what}");
}

#[test]
fn truncated_records_and_missing_records_are_refused() {
    let records = framed(&body(0, None, Some(b"value"), &no_headers()));
    let what = refused(&batch_with(&records[..records.len() - 2], 1, 0, 0));
    assert!(what.contains("record length"), "{what}");
    let what = refused(&batch_with(&records, 2, 1, 0));
    assert!(what.contains("record 1 of 2"), "{what}");
    let what = refused(&batch_with(&[], 1, 0, 0));
    assert!(what.contains("truncated varint"), "{what}");
}

#[test]
fn trailing_bytes_are_refused_inside_and_after_records() {
    let mut records = framed(&body(0, None, Some(b"v"), &no_headers()));
    records.push(0);
    let what = refused(&batch_with(&records, 1, 0, 0));
    assert!(what.contains("unexpected bytes"), "{what}");

    let mut inner = body(0, None, Some(b"v"), &no_headers());
    inner.push(7);
    let what = refused(&batch_with(&framed(&inner), 1, 0, 0));
    assert!(what.contains("left over"), "{what}");
}

#[test]
fn bad_fields_are_refused() {
    // Offset delta beyond the batch's last offset delta, or negative.
    refused(&batch_with(
        &framed(&body(1, None, None, &no_headers())),
        1,
        0,
        0,
    ));
    refused(&batch_with(
        &framed(&body(-1, None, None, &no_headers())),
        1,
        0,
        0,
    ));
    // Negative header count, negative header name length, non-UTF-8 header name.
    refused(&batch_with(&framed(&body(0, None, None, &[1])), 1, 0, 0));
    refused(&batch_with(
        &framed(&body(0, None, None, &[2, 1, 0])),
        1,
        0,
        0,
    ));
    let what = refused(&batch_with(
        &framed(&body(0, None, None, &[2, 2, 0xff, 1])),
        1,
        0,
        0,
    ));
    assert!(what.contains("UTF-8"), "{what}");
    // Key length -2.
    let mut record = body(0, None, None, &no_headers());
    record[3] = 3;
    refused(&batch_with(&framed(&record), 1, 0, 0));
    // A varint carrying bits past 32 (the codec would silently drop them).
    let what = refused(&batch_with(&[0x80, 0x80, 0x80, 0x80, 0x10], 1, 0, 0));
    assert!(what.contains("32 bits"), "{what}");
    // A timestamp delta that overflows the base timestamp.
    let mut record = vec![0];
    put_varlong(&mut record, i64::MAX);
    record.extend_from_slice(&[0, 1, 1, 0]);
    let what = refused(&batch_with(&framed(&record), 1, 0, 0));
    assert!(what.contains("overflows"), "{what}");
    // Unknown compression codecs.
    let plain = framed(&body(0, None, None, &no_headers()));
    for codec in 5..8 {
        let what = refused(&batch_with(&plain, 1, 0, codec));
        assert!(what.contains("compression"), "{what}");
    }
    // Compressed bits over data that is not compressed.
    for codec in 1..5 {
        refused(&batch_with(&plain, 1, 0, codec));
    }
}

#[test]
fn varints_match_the_kafka_encoding() {
    for value in [0, 1, -1, 63, -64, 64, 300, -300, i32::MAX, i32::MIN] {
        let mut bytes = Vec::new();
        put_varint(&mut bytes, value);
        let mut cursor = Cursor {
            bytes: &bytes,
            position: 0,
        };
        assert_eq!(cursor.varint().unwrap(), value);
        assert_eq!(cursor.remaining(), 0);
    }
    for value in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
        let mut bytes = Vec::new();
        put_varlong(&mut bytes, value);
        let mut cursor = Cursor {
            bytes: &bytes,
            position: 0,
        };
        assert_eq!(cursor.varlong().unwrap(), value);
    }
    let eleven = [0xffu8; 11];
    let mut cursor = Cursor {
        bytes: &eleven,
        position: 0,
    };
    assert!(cursor.varlong().is_err());
}

#[test]
fn decompression_bombs_are_refused() {
    const BOMB: usize = 64 << 20;
    let zeros = vec![0u8; 1 << 20];

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..BOMB / zeros.len() {
        gzip.write_all(&zeros).unwrap();
    }
    let gzip = gzip.finish().unwrap();
    let what = refused(&batch_with(&gzip, 1, 0, 1));
    assert!(what.contains("more than"), "{what}");

    let zstd = zstd::bulk::compress(&vec![0u8; BOMB], 1).unwrap();
    let what = refused(&batch_with(&zstd, 1, 0, 4));
    assert!(what.contains("more than"), "{what}");

    // Snappy is refused from the declared length alone, framed or raw.
    let block = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
    let mut framed_snappy = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for _ in 0..2 {
        framed_snappy.extend_from_slice(&(block.len() as u32).to_be_bytes());
        framed_snappy.extend_from_slice(&block);
    }
    let what = refused(&batch_with(&framed_snappy, 1, 0, 2));
    assert!(what.contains("more than"), "{what}");
    let raw = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 2 << 20])
        .unwrap();
    let what = refused(&batch_with(&raw, 1, 0, 2));
    assert!(what.contains("more than"), "{what}");

    let mut lz4 = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
    for _ in 0..4 {
        lz4.write_all(&zeros).unwrap();
    }
    let (lz4, result) = lz4.finish();
    result.unwrap();
    let what = refused(&batch_with(&lz4, 1, 0, 3));
    assert!(what.contains("more than"), "{what}");
}

#[test]
fn the_append_bound_scales_with_the_batch_limit() {
    assert_eq!(decompressed_bytes_max(1), 4 << 20);
    assert_eq!(decompressed_bytes_max(8 << 20), 32 << 20);
    assert_eq!(
        decompressed_bytes_max(usize::MAX),
        DECOMPRESSED_BATCH_BYTES_MAX
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever follows a valid header, the check and the decoder return instead of aborting,
    /// and they agree: a batch the check accepts is one the codec decodes.
    #[test]
    fn arbitrary_records_never_abort(
        records in proptest::collection::vec(any::<u8>(), 0..200),
        count in 0i32..4,
        codec in 0i16..8,
    ) {
        let batch = batch_with(&records, count, count.max(1) - 1, codec);
        let checked = check_batch(&batch, LIMIT);
        let decoded = decode_batches(Bytes::from(batch), 0);
        prop_assert_eq!(checked.is_ok(), decoded.is_ok());
    }
}
