//! Encoding records into a v2 batch: what every door's publish, every queue and every job
//! write stores.
//!
//! Written by hand rather than through `kafka-protocol`'s encoder, which takes its own record
//! type: building one per record (an ordered map of its headers, hashed, and each header name
//! copied into a string) and then encoding it cost as much as everything else a Redis XADD
//! does on the door's thread (about 11 % of it, perf, 2026-12-05). The format is small and
//! fixed (the table in `batch.rs`; a record is varints and byte strings), and the tests hold
//! this encoder to the crate's, byte for byte, on generated records — the crate stays the
//! decoder and the reference.

use bytes::{BufMut, BytesMut};
use omnibus_types::Record;

use super::{BatchHeader, BatchSpan, CRC_START, HEADER_BYTES, LOG_OVERHEAD, SUBJECT_HEADER};
use crate::error::{Result, StorageError};

/// Above this many headers a record's repeated names are found with a map, not a scan.
const HEADERS_SCANNED_MAX: usize = 32;

/// Encodes records (offsets relative, starting at 0) as one uncompressed v2 batch; no bytes
/// for no records. A record's non-empty `subject` is stored in the [`SUBJECT_HEADER`] header,
/// ahead of its other headers.
///
/// A header name a record repeats is stored once, where it first appears, with the last
/// value given (as the codec's ordered map did when this encoder was its caller).
pub fn encode_batch(records: &[Record]) -> Result<BytesMut> {
    if records.is_empty() {
        return Ok(BytesMut::new());
    }
    let count = i32::try_from(records.len()).map_err(|_| too_large("records in one batch"))?;
    let base_timestamp = records.iter().map(|r| r.timestamp_ms).min().unwrap_or(0);
    let max_timestamp = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0);
    let mut buffer = BytesMut::with_capacity(estimate_bytes(records));
    buffer.put_i64(0); // base offset: the log assigns it
    buffer.put_i32(0); // batch length, filled in below
    buffer.put_i32(-1); // partition leader epoch
    buffer.put_i8(2); // magic
    buffer.put_u32(0); // CRC-32C, filled in below
    buffer.put_i16(0); // attributes: no compression, not transactional, not control
    buffer.put_i32(count - 1); // last offset delta
    buffer.put_i64(base_timestamp);
    buffer.put_i64(max_timestamp);
    buffer.put_i64(-1); // producer id
    buffer.put_i16(-1); // producer epoch
    buffer.put_i32(-1); // base sequence
    buffer.put_i32(count);
    debug_assert_eq!(buffer.len(), HEADER_BYTES);
    let mut headers = Vec::new();
    for (index, record) in records.iter().enumerate() {
        wire_headers(record, &mut headers);
        put_record(&mut buffer, index as i64, record, base_timestamp, &headers)?;
    }
    let length =
        i32::try_from(buffer.len() - LOG_OVERHEAD).map_err(|_| too_large("bytes in one batch"))?;
    buffer[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&buffer[CRC_START..]);
    buffer[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(buffer)
}

fn too_large(what: &str) -> StorageError {
    StorageError::InvalidBatch(format!("encoding failed: too many {what}"))
}

/// The headers a record is stored with: its subject first, then its own, each name once.
fn wire_headers<'a>(record: &'a Record, out: &mut Vec<(&'a [u8], &'a [u8])>) {
    out.clear();
    if !record.subject.is_empty() {
        out.push((SUBJECT_HEADER.as_bytes(), record.subject.as_bytes()));
    }
    if out.len() + record.headers.len() > HEADERS_SCANNED_MAX {
        let mut seen = std::collections::HashMap::with_capacity(record.headers.len() + 1);
        if let Some((name, _)) = out.first() {
            seen.insert(*name, 0);
        }
        for header in &record.headers {
            let name = header.name.as_bytes();
            match seen.get(name) {
                Some(&at) => out[at].1 = &header.value,
                None => {
                    seen.insert(name, out.len());
                    out.push((name, &header.value));
                }
            }
        }
        return;
    }
    for header in &record.headers {
        let name = header.name.as_bytes();
        match out.iter_mut().find(|(seen, _)| *seen == name) {
            Some(slot) => slot.1 = &header.value,
            None => out.push((name, &header.value)),
        }
    }
}

/// One record: its length, then attributes, timestamp and offset deltas, key, value, headers.
fn put_record(
    buffer: &mut BytesMut,
    offset_delta: i64,
    record: &Record,
    base_timestamp: i64,
    headers: &[(&[u8], &[u8])],
) -> Result<()> {
    let timestamp_delta = record.timestamp_ms.wrapping_sub(base_timestamp);
    let key = record.key.as_deref();
    let value = record.value.as_deref();
    let mut body = 1 + varint_len(timestamp_delta) + varint_len(offset_delta);
    body += bytes_len(key)? + bytes_len(value)?;
    body += varint_len(headers.len() as i64);
    for (name, value) in headers {
        body += bytes_len(Some(name))? + bytes_len(Some(value))?;
    }
    let body = i32::try_from(body).map_err(|_| too_large("bytes in one record"))?;
    buffer.reserve(body as usize + 5);
    put_varint(buffer, body.into());
    buffer.put_i8(0); // attributes
    put_varint(buffer, timestamp_delta);
    put_varint(buffer, offset_delta);
    put_bytes(buffer, key);
    put_bytes(buffer, value);
    put_varint(buffer, headers.len() as i64);
    for (name, value) in headers {
        put_bytes(buffer, Some(name));
        put_bytes(buffer, Some(value));
    }
    Ok(())
}

/// A length-prefixed byte string (length -1: none), and what it takes.
fn bytes_len(bytes: Option<&[u8]>) -> Result<usize> {
    match bytes {
        None => Ok(1),
        Some(bytes) => {
            let length = i32::try_from(bytes.len()).map_err(|_| too_large("bytes in a field"))?;
            Ok(varint_len(length.into()) + bytes.len())
        }
    }
}

fn put_bytes(buffer: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(buffer, -1),
        Some(bytes) => {
            put_varint(buffer, bytes.len() as i64);
            buffer.put_slice(bytes);
        }
    }
}

/// Kafka's varint and varlong: zig-zag, then 7 bits a byte, low bits first.
fn put_varint(buffer: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        buffer.put_u8(zigzag as u8 | 0x80);
        zigzag >>= 7;
    }
    buffer.put_u8(zigzag as u8);
}

fn varint_len(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let bits = 64 - (zigzag | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn estimate_bytes(records: &[Record]) -> usize {
    HEADER_BYTES
        + records
            .iter()
            .map(|record| {
                24 + record.subject.len()
                    + SUBJECT_HEADER.len()
                    + record.key.as_ref().map_or(0, |k| k.len())
                    + record.value.as_ref().map_or(0, |v| v.len())
                    + record
                        .headers
                        .iter()
                        .map(|h| h.name.len() + h.value.len() + 4)
                        .sum::<usize>()
            })
            .sum::<usize>()
}

/// Batches this process encoded from records with [`encode_batch`]: the log takes them
/// without checking their CRCs and records again, where a producer's bytes go through
/// [`super::validate_batches`]. Re-checking what the engine had just encoded cost about 5 %
/// of a door thread's time per published message (the records parsed twice, the CRC computed
/// twice); only this module can make one, so bytes from outside are never taken on trust.
#[derive(Debug, Default)]
pub struct EncodedBatches {
    bytes: BytesMut,
    spans: Vec<BatchSpan>,
}

impl EncodedBatches {
    /// One batch of `records`.
    pub fn of(records: &[Record]) -> Result<Self> {
        let mut batches = EncodedBatches::default();
        batches.push(records)?;
        Ok(batches)
    }

    /// Encodes `records` as one more batch after those already here.
    pub fn push(&mut self, records: &[Record]) -> Result<()> {
        let batch = encode_batch(records)?;
        let header = BatchHeader::parse(&batch)?;
        let position = self.bytes.len();
        if position == 0 {
            self.bytes = batch;
        } else {
            self.bytes.extend_from_slice(&batch);
        }
        self.spans.push(BatchSpan { header, position });
        Ok(())
    }

    /// Bytes of every batch.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The bytes and where each batch starts: what the log queues.
    pub(crate) fn into_parts(self) -> (BytesMut, Vec<BatchSpan>) {
        (self.bytes, self.spans)
    }
}
