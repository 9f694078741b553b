//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the proptest runs of the same
//! bodies in the ordinary test suite, so CI on stable Rust exercises what the fuzzers do.
//! Each function must never panic, whatever the input.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::batch::{
    decode_batches, encode_batch, validate_batches, BatchHeader, HEADER_BYTES, LOG_OVERHEAD,
};
use crate::io::{Io, MemoryIo};
use crate::partition::PartitionLog;
use crate::records::check_batch;
use crate::LogConfig;

/// Treats `data` as a producer's buffer: validates it as batches, and decodes what passes.
/// Then, since random bytes almost never carry a valid CRC, it also wraps `data` in a batch
/// header with a correct CRC (as the records section, and as edits to a valid batch's
/// records) so the record checks and the decoder see it: neither may panic or abort, and a
/// batch that passes the checks must decode.
pub fn batch_decoding(data: &[u8]) {
    const LIMIT: usize = 1 << 20;
    let _ = BatchHeader::parse(data);
    if let Ok(spans) = validate_batches(data, LIMIT) {
        assert!(!spans.is_empty());
        let _ = decode_batches(Bytes::copy_from_slice(data), 0);
    }
    for batch in [records_as_batch(data), edited_batch(data)] {
        let checked = check_batch(&batch, LIMIT);
        let validated = validate_batches(&batch, LIMIT);
        assert_eq!(checked.is_ok(), validated.is_ok());
        let decoded = decode_batches(Bytes::from(batch), 0);
        if checked.is_ok() {
            decoded.expect("a batch that passes check_batch decodes");
        }
    }
}

/// A batch whose records section is `data[2..]`; `data[0]` picks the attributes (any
/// compression code, sometimes the control bit) and `data[1]` the record count.
fn records_as_batch(data: &[u8]) -> Vec<u8> {
    let attributes = data.first().map_or(0, |b| i16::from(b & 0x27));
    let record_count = data.get(1).map_or(1, |b| i32::from(b % 8));
    wrap(data.get(2..).unwrap_or(&[]), attributes, record_count)
}

/// A valid two-record batch whose records section is edited by `data`, read as pairs of
/// (position, xor mask), so the input mostly hits well-formed records.
fn edited_batch(data: &[u8]) -> Vec<u8> {
    let record = |value: &'static [u8]| omnibus_types::Record {
        offset: 0,
        timestamp_ms: 1_700_000_000_000,
        subject: "a.b".into(),
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::from_static(value)),
        headers: vec![omnibus_types::Header {
            name: "h".into(),
            value: Bytes::from_static(b"v"),
        }],
    };
    let template = encode_batch(&[record(b"one"), record(b"two")]).expect("encode");
    let mut records = template[HEADER_BYTES..].to_vec();
    for edit in data.chunks_exact(2) {
        let at = edit[0] as usize % records.len();
        records[at] ^= edit[1];
    }
    wrap(&records, 0, 2)
}

/// Builds a v2 batch header around `records`, with a correct length and CRC.
fn wrap(records: &[u8], attributes: i16, record_count: i32) -> Vec<u8> {
    let mut batch = Vec::with_capacity(HEADER_BYTES + records.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((HEADER_BYTES - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&[0; 4]);
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&(record_count.max(1) - 1).to_be_bytes());
    batch.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    batch.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes());
    batch.extend_from_slice(&(-1i16).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&record_count.to_be_bytes());
    batch.extend_from_slice(records);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// Treats `data` as a producer snapshot (`partition/producers.rs`), raw and framed with the
/// magic and a valid CRC so the body parser is reached: decoding never panics, and whatever
/// decodes encodes back to the same bytes.
pub fn producer_snapshot(data: &[u8]) {
    use crate::partition::producers::ProducerTails;
    let mut framed = b"OBP1".to_vec();
    framed.extend_from_slice(data);
    let crc = crc32c::crc32c(&framed);
    framed.extend_from_slice(&crc.to_be_bytes());
    for bytes in [data, &framed[..]] {
        if let Some(tails) = ProducerTails::decode(bytes) {
            let encoded = tails.encode();
            let again = ProducerTails::decode(&encoded).expect("an encoded snapshot decodes");
            assert_eq!(again.encode(), encoded, "decode/encode is stable");
        }
    }
}

/// Treats `data` as a state-store journal file (`state/journal.rs`), raw and as the body of
/// one record with a valid header so the write decoder is reached: reading never panics, and
/// a run read back encodes to exactly the bytes it came from.
pub fn state_journal(data: &[u8]) {
    crate::state::check_journal_decoding(data);
}

/// Treats `data` as the bytes of a crashed segment file: recovery must succeed with a clean
/// prefix, every retained offset must be readable, and the log must accept a new append.
/// The input arrives in two chunks (as if written by two appends) to vary the layout.
pub fn segment_recovery(data: &[u8]) {
    let log = recover_segment(data);
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let read = log
            .read(offset, 1 << 16)
            .expect("recovered data is readable");
        assert!(!read.bytes.is_empty(), "no progress at offset {offset}");
        let mut position = 0;
        while position < read.bytes.len() {
            let header = BatchHeader::parse(&read.bytes[position..]).expect("whole batches");
            offset = header.last_offset() + 1;
            position += header.total_bytes();
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let record = omnibus_types::Record {
        offset: 0,
        timestamp_ms: 0,
        subject: String::new(),
        key: None,
        value: Some(Bytes::from_static(b"after")),
        headers: vec![],
    };
    let batch: BytesMut = encode_batch(&[record]).expect("encode");
    let high_watermark = log.high_watermark();
    let info = runtime
        .block_on(log.append(batch))
        .expect("append after recovery");
    assert_eq!(info.first_offset, high_watermark);
}

/// Opens a partition whose only segment holds `data`, written in two chunks. Recovery of a
/// lone active segment can always truncate to a clean prefix, so it must never fail.
fn recover_segment(data: &[u8]) -> Arc<PartitionLog> {
    let io = MemoryIo::new();
    let dir = Path::new("/fuzz/p");
    io.create_dir_all(dir).expect("memory io");
    let file = io
        .open(&dir.join("00000000000000000000.log"), true)
        .expect("memory io");
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    file.write_at(&data[..split], 0).expect("memory io");
    file.write_at(&data[split..], split as u64)
        .expect("memory io");
    let config = LogConfig {
        batch_bytes_max: 1 << 20,
        pending_bytes_max: 1 << 20,
        ..LogConfig::default()
    };
    PartitionLog::open(Arc::new(io), dir, config).expect("a lone active segment always recovers")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::batch::set_base_offset;

    /// One-record batches with offsets 0, 1, 2, … back to back.
    fn encoded_batches(values: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        values
            .into_iter()
            .enumerate()
            .map(|(offset, value)| {
                let record = omnibus_types::Record {
                    offset: 0,
                    timestamp_ms: 5,
                    subject: String::new(),
                    key: None,
                    value: Some(Bytes::from(value)),
                    headers: vec![],
                };
                let mut batch = encode_batch(&[record]).expect("encode");
                set_base_offset(&mut batch, offset as u64);
                batch.to_vec()
            })
            .collect()
    }

    fn some_batches() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..6)
            .prop_map(encoded_batches)
    }

    /// Valid batches with garbage and truncation mixed in, so the fuzz bodies see both.
    fn mostly_valid_segment() -> impl Strategy<Value = Vec<u8>> {
        (
            some_batches(),
            proptest::collection::vec(any::<u8>(), 0..80),
            any::<u16>(),
        )
            .prop_map(|(batches, garbage, cut)| {
                let mut bytes = batches.concat();
                bytes.extend_from_slice(&garbage);
                let keep = bytes.len() - (cut as usize % (bytes.len() / 4 + 1));
                bytes.truncate(keep);
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn batch_decoding_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            batch_decoding(&data);
        }

        #[test]
        fn producer_snapshot_decoding_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            producer_snapshot(&data);
        }

        #[test]
        fn batch_decoding_never_panics_on_edits(
            edits in proptest::collection::vec(any::<u8>(), 0..12),
            records in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            batch_decoding(&edits);
            batch_decoding(&records);
        }

        #[test]
        fn segment_recovery_never_panics_on_noise(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            segment_recovery(&data);
        }

        #[test]
        fn segment_recovery_of_mixed_input_never_panics(data in mostly_valid_segment()) {
            batch_decoding(&data);
            segment_recovery(&data);
        }

        /// A segment of valid batches (maybe followed by garbage, as a torn write leaves)
        /// cut at any byte reopens as exactly the batches wholly before the cut: the same
        /// offsets and the same bytes, and nothing set aside.
        #[test]
        fn segment_recovery_keeps_a_clean_prefix(
            batches in some_batches(),
            garbage in proptest::collection::vec(any::<u8>(), 0..80),
            cut in any::<u16>(),
        ) {
            let mut bytes = batches.concat();
            bytes.extend_from_slice(&garbage);
            let cut = cut as usize % (bytes.len() + 1);
            bytes.truncate(cut);
            let mut end = 0;
            let whole: Vec<Vec<u8>> = batches
                .iter()
                .take_while(|batch| {
                    end += batch.len();
                    end <= cut
                })
                .cloned()
                .collect();
            let log = recover_segment(&bytes);
            prop_assert_eq!(log.log_start_offset(), 0);
            prop_assert_eq!(log.high_watermark(), whole.len() as u64);
            prop_assert!(log.status().quarantined.is_empty());
            let read = log.read(0, 1 << 20).expect("recovered data is readable");
            prop_assert_eq!(read.next_offset, whole.len() as u64);
            prop_assert_eq!(read.bytes.to_vec(), whole.concat());
            segment_recovery(&bytes);
        }
    }
}
