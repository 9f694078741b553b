//! Walking the batches of a segment file: used by recovery (with CRC checks), by index
//! rebuilds, and by reads that must find the batch holding an offset.

use std::ops::ControlFlow;

use crate::batch::{verify_crc, BatchHeader, HEADER_BYTES};
use crate::error::{Result, StorageError};
use crate::io::IoFile;

/// What a scan reads at a time when its caller gives no smaller size: recovery and index
/// rebuilds walk whole segments, and fewer, larger reads are cheaper for them.
pub const CHUNK_BYTES: usize = 1024 * 1024;

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
    visit: impl FnMut(u64, &BatchHeader, &[u8]) -> ControlFlow<()>,
) -> Result<ScanOutcome> {
    let chunks = Chunks {
        bytes: CHUNK_BYTES,
        verify,
        batch_bytes_max,
    };
    scan_batches_in_chunks(
        file,
        start,
        end,
        chunks,
        |_, _| ControlFlow::Continue(()),
        visit,
    )
}

/// How [`scan_batches_in_chunks`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Chunks {
    /// Bytes read at a time (more when one batch is larger), at most [`CHUNK_BYTES`].
    pub bytes: usize,
    /// Whether each batch's CRC is checked.
    pub verify: bool,
    /// The most bytes a batch header may claim.
    pub batch_bytes_max: usize,
}

/// [`scan_batches`] reading `chunks.bytes` at a time, and asking `wanted` about each batch
/// from its header alone before its bytes are read: a reader that wants a few kilobytes
/// from a large segment reads (and allocates) about that much, not a whole [`CHUNK_BYTES`]
/// chunk per call, and a search that needs headers only stops without reading the batch
/// it found.
pub fn scan_batches_in_chunks(
    file: &dyn IoFile,
    start: u64,
    end: u64,
    chunks: Chunks,
    mut wanted: impl FnMut(u64, &BatchHeader) -> ControlFlow<()>,
    mut visit: impl FnMut(u64, &BatchHeader, &[u8]) -> ControlFlow<()>,
) -> Result<ScanOutcome> {
    let Chunks {
        bytes: chunk_bytes,
        verify,
        batch_bytes_max,
    } = chunks;
    let chunk_bytes = chunk_bytes.clamp(HEADER_BYTES, CHUNK_BYTES);
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
            chunk = read_chunk(file, position, remaining.min(chunk_bytes as u64) as usize)?;
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
        if wanted(position, &header).is_break() {
            return Ok(ScanOutcome {
                position,
                end: ScanEnd::Stopped,
            });
        }
        if offset_in_chunk + total > chunk.len() {
            chunk_start = position;
            chunk = read_chunk(
                file,
                position,
                remaining.min(chunk_bytes.max(total) as u64) as usize,
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

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use omnibus_types::Record;

    use super::*;
    use crate::batch::encode_batch;

    /// A file in memory that counts the bytes read from it.
    struct CountingFile {
        bytes: Vec<u8>,
        read: AtomicUsize,
    }

    impl IoFile for CountingFile {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let start = (offset as usize).min(self.bytes.len());
            let count = buf.len().min(self.bytes.len() - start);
            buf[..count].copy_from_slice(&self.bytes[start..start + count]);
            self.read.fetch_add(count, Ordering::Relaxed);
            Ok(count)
        }
        fn write_at(&self, _: &[u8], _: u64) -> io::Result<()> {
            Err(io::Error::other("read only"))
        }
        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }
        fn len(&self) -> io::Result<u64> {
            Ok(self.bytes.len() as u64)
        }
        fn set_len(&self, _: u64) -> io::Result<()> {
            Err(io::Error::other("read only"))
        }
    }

    /// 1,000 one-record batches of about 200 bytes each.
    fn segment() -> (CountingFile, usize) {
        let mut bytes = Vec::new();
        let mut batch_bytes = 0;
        for offset in 0..1000u64 {
            let record = Record {
                offset,
                timestamp_ms: 1,
                subject: String::new(),
                key: None,
                value: Some(Bytes::from(vec![7u8; 120])),
                headers: Vec::new(),
            };
            let mut batch = encode_batch(&[record]).expect("encodes");
            crate::batch::set_base_offset(&mut batch, offset);
            batch_bytes = batch.len();
            bytes.extend_from_slice(&batch);
        }
        let file = CountingFile {
            bytes,
            read: AtomicUsize::new(0),
        };
        (file, batch_bytes)
    }

    #[test]
    fn a_small_read_from_a_large_segment_reads_about_what_it_wants() {
        let (file, batch_bytes) = segment();
        let end = file.bytes.len() as u64;
        let budget = 3 * batch_bytes;
        let chunks = Chunks {
            bytes: budget + HEADER_BYTES,
            verify: true,
            batch_bytes_max: 1 << 20,
        };
        let mut visited = Vec::new();
        let outcome = scan_batches_in_chunks(
            &file,
            0,
            end,
            chunks,
            |position, header| {
                if position as usize + header.total_bytes() > budget {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            },
            |_, header, _| {
                visited.push(header.base_offset);
                ControlFlow::Continue(())
            },
        )
        .expect("scans");
        assert_eq!(visited, vec![0, 1, 2]);
        assert_eq!(outcome.end, ScanEnd::Stopped);
        assert_eq!(outcome.position, budget as u64);
        let read = file.read.load(Ordering::Relaxed);
        assert!(
            read <= budget + HEADER_BYTES,
            "read {read} bytes of a {end}-byte segment for {budget}"
        );
    }

    #[test]
    fn a_whole_scan_in_small_chunks_sees_every_batch_once() {
        let (file, batch_bytes) = segment();
        let end = file.bytes.len() as u64;
        let chunks = Chunks {
            // Not a multiple of the batch size: batches straddle chunk ends.
            bytes: batch_bytes * 5 / 2,
            verify: true,
            batch_bytes_max: 1 << 20,
        };
        let mut visited = 0u64;
        let outcome = scan_batches_in_chunks(
            &file,
            0,
            end,
            chunks,
            |_, _| ControlFlow::Continue(()),
            |_, header, _| {
                assert_eq!(header.base_offset, visited);
                visited += 1;
                ControlFlow::Continue(())
            },
        )
        .expect("scans");
        assert_eq!(visited, 1000);
        assert_eq!(outcome.end, ScanEnd::End);
    }
}
