//! Bounded validation of the records inside a RecordBatch v2.
//!
//! [`BatchHeader::parse`] and [`verify_crc`](crate::batch::verify_crc) only look at the
//! 61-byte header. The records section that follows is what the `kafka-protocol` decoder
//! trusts: it sizes allocations from varint counts (a record claiming 2^31 headers makes it
//! reserve a map for them before reading one, which aborts the process) and decompresses
//! without a size bound. [`check_batch`] walks the same grammar without allocating anything
//! that the input does not pay for, and decompresses through a hard cap, so a batch that
//! passes it can be handed to the codec safely.
//!
//! Every rule here is at least as strict as the codec's, so whatever passes decodes the same
//! way there:
//! - varints are at most 5 bytes (varlongs 10) and must not carry bits beyond 32 (64);
//! - record length, key and value lengths are ≥ 0 (key/value may be -1 = null) and fit in
//!   what remains; a record ends exactly at its length;
//! - the header count is ≥ 0 and at most half of what remains of the record (a header needs
//!   at least two bytes), header names are UTF-8 (the codec refuses others);
//! - the timestamp delta does not overflow `base timestamp + delta`, the offset delta is in
//!   `0..=last_offset_delta`;
//! - exactly `record_count` records are present and nothing follows them.

use std::borrow::Cow;
use std::io::Read;

use crate::batch::{BatchHeader, HEADER_BYTES};
use crate::error::StorageError;

/// Ceiling on the decompressed size of one batch's records section (256 MiB), whatever
/// `batch_bytes_max` says; it is also the bound used when reading stored batches.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 256 << 20;

/// The decompression bound used on append for a log whose batches are at most
/// `batch_bytes_max` bytes: four times that (at least 4 MiB), capped at
/// [`DECOMPRESSED_BATCH_BYTES_MAX`].
pub fn decompressed_bytes_max(batch_bytes_max: usize) -> usize {
    batch_bytes_max
        .max(1 << 20)
        .saturating_mul(4)
        .min(DECOMPRESSED_BATCH_BYTES_MAX)
}

/// Checks the records of one whole v2 batch (`batch` is exactly the batch, header included;
/// the caller has already checked the CRC). Compressed records are decompressed, never to
/// more than `decompressed_bytes_max` bytes, then walked record by record.
pub fn check_batch(batch: &[u8], decompressed_bytes_max: usize) -> Result<(), StorageError> {
    let header = BatchHeader::parse(batch)?;
    if header.total_bytes() != batch.len() {
        return Err(StorageError::InvalidBatch(format!(
            "batch claims {} bytes but {} were given",
            header.total_bytes(),
            batch.len()
        )));
    }
    let records = decompress(
        header.compression(),
        &batch[HEADER_BYTES..],
        decompressed_bytes_max,
    )?;
    check_records(&records, &header)
}

/// Decompresses a records section according to the batch's compression bits (0 none,
/// 1 gzip, 2 snappy, 3 lz4, 4 zstd), failing rather than producing more than `limit` bytes.
pub fn decompress(
    compression: i16,
    data: &[u8],
    limit: usize,
) -> Result<Cow<'_, [u8]>, StorageError> {
    let invalid = |what: &str, error: &dyn std::fmt::Display| {
        StorageError::InvalidBatch(format!("{what} records do not decompress: {error}"))
    };
    match compression {
        0 => Ok(Cow::Borrowed(data)),
        1 => read_bounded(flate2::read::MultiGzDecoder::new(data), limit, "gzip").map(Cow::Owned),
        2 => snappy(data, limit).map(Cow::Owned),
        3 => {
            let decoder = lz4::Decoder::new(data).map_err(|error| invalid("lz4", &error))?;
            read_bounded(decoder, limit, "lz4").map(Cow::Owned)
        }
        4 => {
            let decoder = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|error| invalid("zstd", &error))?;
            read_bounded(decoder, limit, "zstd").map(Cow::Owned)
        }
        other => Err(StorageError::InvalidBatch(format!(
            "unknown compression {other}"
        ))),
    }
}

fn too_large(what: &str, limit: usize) -> StorageError {
    StorageError::InvalidBatch(format!(
        "{what} records decompress to more than {limit} bytes"
    ))
}

/// Reads everything from `reader`, but at most `limit + 1` bytes: reaching that is an error.
fn read_bounded(reader: impl Read, limit: usize, what: &str) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| {
            StorageError::InvalidBatch(format!("{what} records do not decompress: {error}"))
        })?;
    if out.len() > limit {
        return Err(too_large(what, limit));
    }
    Ok(out)
}

/// Start of Kafka's (xerial snappy-java) framing: magic, then 4 bytes version and 4 bytes
/// minimum compatible version, then blocks of `[u32 BE length][raw snappy block]`.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

fn snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, StorageError> {
    let invalid = |error: &dyn std::fmt::Display| {
        StorageError::InvalidBatch(format!("snappy records do not decompress: {error}"))
    };
    let mut out = Vec::new();
    if !data.starts_with(XERIAL_MAGIC) {
        // A plain raw snappy block, as some non-Java clients send (and Java accepts).
        append_snappy_block(data, limit, &mut out).map_err(|error| invalid(&error))?;
        return Ok(out);
    }
    let mut rest = data
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| invalid(&"truncated xerial header"))?;
    while !rest.is_empty() {
        let Some((length, tail)) = rest.split_first_chunk::<4>() else {
            return Err(invalid(&"truncated block length"));
        };
        let length = u32::from_be_bytes(*length) as usize;
        if length > tail.len() {
            return Err(invalid(&format!(
                "block of {length} bytes but only {} remain",
                tail.len()
            )));
        }
        let (block, tail) = tail.split_at(length);
        append_snappy_block(block, limit, &mut out).map_err(|error| invalid(&error))?;
        rest = tail;
    }
    Ok(out)
}

/// Decompresses one raw snappy block onto `out`, checking its declared length first.
fn append_snappy_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let length = snap::raw::decompress_len(block).map_err(|error| error.to_string())?;
    if length > limit - out.len() {
        return Err(format!("more than {limit} bytes"));
    }
    let start = out.len();
    out.resize(start + length, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|error| error.to_string())?;
    out.truncate(start + written);
    Ok(())
}

/// Walks the (decompressed) records section of a batch with the given header.
pub fn check_records(records: &[u8], header: &BatchHeader) -> Result<(), StorageError> {
    let mut cursor = Cursor {
        bytes: records,
        position: 0,
    };
    for index in 0..header.record_count {
        check_record(&mut cursor, header).map_err(|what| {
            StorageError::InvalidBatch(format!("record {index} of {}: {what}", header.record_count))
        })?;
    }
    if cursor.remaining() != 0 {
        return Err(StorageError::InvalidBatch(format!(
            "{} unexpected bytes after {} records",
            cursor.remaining(),
            header.record_count
        )));
    }
    Ok(())
}

fn check_record(outer: &mut Cursor<'_>, header: &BatchHeader) -> Result<(), String> {
    let start = outer.position;
    let length = outer.varint()?;
    let length = outer.length(length, "record length")?;
    let mut cursor = Cursor {
        bytes: outer.take(length)?,
        position: 0,
    };
    let at = |cursor: &Cursor<'_>, what: String| {
        format!(
            "{what} (record at byte {start}, {} bytes in)",
            cursor.position
        )
    };
    (|| -> Result<(), String> {
        cursor.take(1)?; // attributes
        let timestamp_delta = cursor.varlong()?;
        if header.base_timestamp.checked_add(timestamp_delta).is_none() {
            return Err(format!("timestamp delta {timestamp_delta} overflows"));
        }
        let offset_delta = cursor.varint()?;
        if offset_delta < 0 || offset_delta > header.last_offset_delta {
            return Err(format!(
                "offset delta {offset_delta} outside 0..={}",
                header.last_offset_delta
            ));
        }
        let key = cursor.varint()?;
        if let Some(key) = cursor.nullable_length(key, "key length")? {
            cursor.take(key)?;
        }
        let value = cursor.varint()?;
        if let Some(value) = cursor.nullable_length(value, "value length")? {
            cursor.take(value)?;
        }
        let count = cursor.varint()?;
        if count < 0 || count as usize > cursor.remaining() / 2 {
            return Err(format!(
                "header count {count} with {} bytes left",
                cursor.remaining()
            ));
        }
        for _ in 0..count {
            let name = cursor.varint()?;
            let name = cursor.length(name, "header name length")?;
            if std::str::from_utf8(cursor.take(name)?).is_err() {
                return Err("header name is not UTF-8".into());
            }
            let value = cursor.varint()?;
            if let Some(value) = cursor.nullable_length(value, "header value length")? {
                cursor.take(value)?;
            }
        }
        if cursor.remaining() != 0 {
            return Err(format!(
                "{} bytes left over inside the record",
                cursor.remaining()
            ));
        }
        Ok(())
    })()
    .map_err(|what| at(&cursor, what))
}

/// A bounds-checked reader over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if count > self.remaining() {
            return Err(format!(
                "{count} bytes needed but only {} remain",
                self.remaining()
            ));
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1).map_err(|_| "truncated varint".to_string())?[0])
    }

    /// Zigzag varint of at most 5 bytes whose value fits in 32 bits.
    fn varint(&mut self) -> Result<i32, String> {
        let mut raw: u32 = 0;
        for index in 0..5 {
            let byte = self.byte()?;
            if index == 4 && byte > 0x0f {
                return Err("varint longer than 32 bits".into());
            }
            raw |= u32::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
            }
        }
        unreachable!("the fifth byte has no continuation bit")
    }

    /// Zigzag varlong of at most 10 bytes whose value fits in 64 bits.
    fn varlong(&mut self) -> Result<i64, String> {
        let mut raw: u64 = 0;
        for index in 0..10 {
            let byte = self.byte()?;
            if index == 9 && byte > 0x01 {
                return Err("varlong longer than 64 bits".into());
            }
            raw |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        unreachable!("the tenth byte has no continuation bit")
    }

    /// A length that must be ≥ 0 and fit in what remains.
    fn length(&self, length: i32, what: &str) -> Result<usize, String> {
        if length < 0 {
            return Err(format!("negative {what} {length}"));
        }
        let length = length as usize;
        if length > self.remaining() {
            return Err(format!(
                "{what} {length} but only {} bytes remain",
                self.remaining()
            ));
        }
        Ok(length)
    }

    /// Like [`Self::length`] with -1 meaning null.
    fn nullable_length(&self, length: i32, what: &str) -> Result<Option<usize>, String> {
        if length == -1 {
            return Ok(None);
        }
        self.length(length, what).map(Some)
    }
}

#[cfg(test)]
mod tests;
