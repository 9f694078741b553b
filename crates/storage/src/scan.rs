//! Walking the batches of a segment file: used by recovery (with CRC checks), by index
//! rebuilds, and by reads that must find the batch holding an offset.

use std::ops::ControlFlow;

use crate::batch::{verify_crc, BatchHeader, HEADER_BYTES};
use crate::error::{Result, StorageError};
use crate::io::IoFile;

const CHUNK_BYTES: usize = 1024 * 1024;

/// Why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Reached `end` exactly on a batch boundary.
    End,
    /// The visitor asked to stop at this batch.
    Stopped,
    /// Found something that is not a whole valid batch at `position`.
    Invalid { position: u64, reason: String },
}

pub struct ScanOutcome {
    /// Position just after the last batch the visitor accepted (or where it stopped).
    pub position: u64,
    pub end: ScanEnd,
}

/// Visits each whole batch in `[start, end)` in order, passing its position, header and bytes.
/// With `verify`, a batch whose CRC does not match ends the scan as invalid. `batch_bytes_max`
/// bounds what a header may claim, so a corrupt length never makes us allocate a huge buffer.
pub fn scan_batches(
    file: &dyn IoFile,
    start: u64,
    end: u64,
    verify: bool,
    batch_bytes_max: usize,
    mut visit: impl FnMut(u64, &BatchHeader, &[u8]) -> ControlFlow<()>,
) -> Result<ScanOutcome> {
    let mut chunk: Vec<u8> = Vec::new();
    let mut chunk_start = start;
    let mut position = start;
    loop {
        if position == end {
            return Ok(ScanOutcome {
                position,
                end: ScanEnd::End,
            });
        }
        let remaining = end - position;
        let invalid = |reason: String| ScanOutcome {
            position,
            end: ScanEnd::Invalid { position, reason },
        };
        if remaining < HEADER_BYTES as u64 {
            return Ok(invalid(format!(
                "{remaining} trailing bytes, less than a header"
            )));
        }
        // Make sure the header is in the chunk.
        let offset_in_chunk = (position - chunk_start) as usize;
        if offset_in_chunk + HEADER_BYTES > chunk.len() {
            chunk_start = position;
            chunk = read_chunk(file, position, remaining.min(CHUNK_BYTES as u64) as usize)?;
            continue;
        }
        let header = match BatchHeader::parse(&chunk[offset_in_chunk..]) {
            Ok(header) => header,
            Err(error) => return Ok(invalid(error.to_string())),
        };
        let total = header.total_bytes();
        if total > batch_bytes_max {
            return Ok(invalid(format!(
                "batch claims {total} bytes, over the limit"
            )));
        }
        if total as u64 > remaining {
            return Ok(invalid(format!(
                "batch claims {total} bytes, {remaining} remain"
            )));
        }
        if offset_in_chunk + total > chunk.len() {
            chunk_start = position;
            chunk = read_chunk(
                file,
                position,
                remaining.min(CHUNK_BYTES.max(total) as u64) as usize,
            )?;
            continue;
        }
        let bytes = &chunk[offset_in_chunk..offset_in_chunk + total];
        if verify && !verify_crc(bytes) {
            return Ok(invalid("CRC-32C mismatch".into()));
        }
        if visit(position, &header, bytes).is_break() {
            return Ok(ScanOutcome {
                position,
                end: ScanEnd::Stopped,
            });
        }
        position += total as u64;
    }
}

fn read_chunk(file: &dyn IoFile, position: u64, length: usize) -> Result<Vec<u8>> {
    let mut buffer = vec![0u8; length];
    file.read_exact_at(&mut buffer, position)
        .map_err(|error| StorageError::io(format!("reading at byte {position}"), error))?;
    Ok(buffer)
}
