//! Kafka RecordBatch v2, the on-disk format.
//!
//! Layout of one batch (big-endian), as in Kafka's `DefaultRecordBatch`:
//!
//! | bytes  | field                  | notes                                         |
//! |--------|------------------------|-----------------------------------------------|
//! | 0..8   | base offset            | assigned by the log on append, not in the CRC |
//! | 8..12  | batch length           | bytes after this field                        |
//! | 12..16 | partition leader epoch | not in the CRC                                |
//! | 16     | magic                  | always 2                                      |
//! | 17..21 | CRC-32C                | of bytes 21..end                              |
//! | 21..23 | attributes             | compression (bits 0-2), transactional, control|
//! | 23..27 | last offset delta      |                                               |
//! | 27..35 | base timestamp         |                                               |
//! | 35..43 | max timestamp          |                                               |
//! | 43..51 | producer id            |                                               |
//! | 51..53 | producer epoch         |                                               |
//! | 53..57 | base sequence          |                                               |
//! | 57..61 | record count           |                                               |
//! | 61..   | records                | varint-encoded, possibly compressed           |
//!
//! Parsing the fixed header and checking the CRC is done here by hand (it is 61 fixed bytes
//! and the hot path of recovery and reads), and so is encoding (`batch/encode.rs` says why);
//! decoding the records themselves uses the `kafka-protocol` crate's codec. That codec trusts
//! the counts inside the records, so every batch is first checked by [`crate::records`] (on
//! append in [`validate_batches`], on read in [`decode_batches`], which also does the bounded
//! decompression for the codec).
//! Because the base offset is outside the CRC, the log assigns offsets by rewriting 8 bytes,
//! never re-encoding what a producer sent.

use std::borrow::Cow;

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record as WireRecord, RecordBatchDecoder};
use omnibus_types::{Header, Record};

use crate::error::{Result, StorageError};
use crate::records;

mod encode;
pub use encode::{encode_batch, EncodedBatches};

/// Bytes before the batch-length field's coverage starts: base offset + length.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed batch header.
pub const HEADER_BYTES: usize = 61;
const CRC_START: usize = 21;
/// Header that carries a record's subject when it differs from the stream name.
pub const SUBJECT_HEADER: &str = "omnibus.subject";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: u64,
    /// Bytes after the length field; the whole batch is `LOG_OVERHEAD + batch_length`.
    pub batch_length: u32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Parses the first [`HEADER_BYTES`] of `bytes`. Checks the structure (magic, lengths,
    /// counts) but not the CRC; see [`verify_crc`].
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_BYTES {
            return Err(StorageError::InvalidBatch(format!(
                "{} bytes is shorter than a batch header",
                bytes.len()
            )));
        }
        let base_offset = be_i64(bytes, 0);
        let batch_length = be_i32(bytes, 8);
        let magic = bytes[16] as i8;
        if magic != 2 {
            return Err(StorageError::InvalidBatch(format!(
                "record batch magic {magic} is not supported (only v2)"
            )));
        }
        if base_offset < 0 {
            return Err(StorageError::InvalidBatch("negative base offset".into()));
        }
        if (batch_length as i64) < (HEADER_BYTES - LOG_OVERHEAD) as i64 {
            return Err(StorageError::InvalidBatch(format!(
                "batch length {batch_length} is shorter than the header"
            )));
        }
        let header = BatchHeader {
            base_offset: base_offset as u64,
            batch_length: batch_length as u32,
            magic,
            crc: be_i32(bytes, 17) as u32,
            attributes: be_i16(bytes, 21),
            last_offset_delta: be_i32(bytes, 23),
            base_timestamp: be_i64(bytes, 27),
            max_timestamp: be_i64(bytes, 35),
            producer_id: be_i64(bytes, 43),
            producer_epoch: be_i16(bytes, 51),
            base_sequence: be_i32(bytes, 53),
            record_count: be_i32(bytes, 57),
        };
        if header.last_offset_delta < 0 || header.record_count < 0 {
            return Err(StorageError::InvalidBatch(
                "negative record count or offset delta".into(),
            ));
        }
        Ok(header)
    }

    /// Bytes the whole batch occupies in the log.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.last_offset_delta as u64
    }

    /// Offsets the batch occupies: `last_offset_delta + 1`.
    pub fn offset_count(&self) -> u64 {
        self.last_offset_delta as u64 + 1
    }

    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }

    pub fn is_control(&self) -> bool {
        self.attributes & (1 << 5) != 0
    }
}

/// Whether the CRC-32C of a whole batch matches its header.
pub fn verify_crc(batch: &[u8]) -> bool {
    if batch.len() < HEADER_BYTES {
        return false;
    }
    let stored = be_i32(batch, 17) as u32;
    crc32c::crc32c(&batch[CRC_START..]) == stored
}

/// Sets the base offset of the batch starting at `batch[0]`. Outside the CRC, so cheap.
pub fn set_base_offset(batch: &mut [u8], offset: u64) {
    batch[0..8].copy_from_slice(&(offset as i64).to_be_bytes());
}

/// One batch found inside a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub header: BatchHeader,
    pub position: usize,
}

/// Splits a producer's buffer into whole, CRC-valid v2 batches, each at most `batch_bytes_max`,
/// whose records pass [`records::check_batch`] (decompressing to at most
/// [`records::decompressed_bytes_max`]`(batch_bytes_max)` bytes).
pub fn validate_batches(bytes: &[u8], batch_bytes_max: usize) -> Result<Vec<BatchSpan>> {
    let decompressed_limit = records::decompressed_bytes_max(batch_bytes_max);
    let mut spans = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let header = BatchHeader::parse(&bytes[position..])?;
        let total = header.total_bytes();
        if total > batch_bytes_max {
            return Err(StorageError::BatchTooLarge {
                bytes: total,
                max: batch_bytes_max,
            });
        }
        let end = position + total;
        if end > bytes.len() {
            return Err(StorageError::InvalidBatch(format!(
                "batch at byte {position} claims {total} bytes but only {} remain",
                bytes.len() - position
            )));
        }
        if !verify_crc(&bytes[position..end]) {
            return Err(StorageError::InvalidBatch(format!(
                "CRC-32C mismatch in batch at byte {position}"
            )));
        }
        // The records themselves: the codec trusts their counts and lengths, so a batch that
        // would abort or balloon a reader must never be stored.
        records::check_batch(&bytes[position..end], decompressed_limit).map_err(
            |error| match error {
                StorageError::InvalidBatch(what) => {
                    StorageError::InvalidBatch(format!("batch at byte {position}: {what}"))
                }
                other => other,
            },
        )?;
        spans.push(BatchSpan { header, position });
        position = end;
    }
    if spans.is_empty() {
        return Err(StorageError::InvalidBatch("no record batch given".into()));
    }
    Ok(spans)
}

/// Decodes stored batches into records, skipping control batches and records before
/// `from_offset`. A missing subject header leaves `subject` empty for the caller to fill.
///
/// Every decoded batch is first checked by [`records::check_records`] (after decompressing
/// to at most [`records::DECOMPRESSED_BATCH_BYTES_MAX`] bytes); a batch that fails is
/// reported as [`StorageError::Corrupt`] instead of reaching the codec.
pub fn decode_batches(mut bytes: Bytes, from_offset: u64) -> Result<Vec<Record>> {
    let read_limit = records::DECOMPRESSED_BATCH_BYTES_MAX;
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let header = BatchHeader::parse(&bytes)?;
        let total = header.total_bytes();
        if total > bytes.len() {
            return Err(StorageError::Corrupt(
                "batch runs past the end of a read".into(),
            ));
        }
        let mut batch = bytes.split_to(total);
        if header.is_control() || header.last_offset() < from_offset {
            continue;
        }
        // The codec calls this for every batch (compressed or not) after its CRC check and
        // before it parses any record, so its trusting parser only ever sees records that
        // passed `check_records`, decompressed once through the bounded decompressor.
        let checked = |section: &mut Bytes, _: Compression| {
            let stored = section.clone();
            let data = records::decompress(header.compression(), &stored, read_limit)?;
            records::check_records(&data, &header)?;
            let owned = match data {
                Cow::Borrowed(_) => None,
                Cow::Owned(data) => Some(data),
            };
            Ok(owned.map_or(stored, Bytes::from))
        };
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(checked))
            .map_err(|error| {
                StorageError::Corrupt(format!(
                    "undecodable batch at offset {}: {error}",
                    header.base_offset
                ))
            })?;
        for wire in set.records {
            if wire.control || (wire.offset as u64) < from_offset {
                continue;
            }
            records.push(from_wire(wire));
        }
    }
    Ok(records)
}

fn from_wire(wire: WireRecord) -> Record {
    let mut subject = String::new();
    let mut headers = Vec::with_capacity(wire.headers.len());
    for (name, value) in wire.headers {
        let value = value.unwrap_or_default();
        if name.as_str() == SUBJECT_HEADER {
            subject = String::from_utf8_lossy(&value).into_owned();
        } else {
            headers.push(Header {
                name: name.to_string(),
                value,
            });
        }
    }
    Record {
        offset: wire.offset as u64,
        timestamp_ms: wire.timestamp,
        subject,
        key: wire.key,
        value: wire.value,
        headers,
    }
}

#[cfg(test)]
pub(crate) mod tests;
