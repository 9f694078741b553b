//! Damage in the active segment: a torn tail or media corruption.
//!
//! After a crash the active segment may end in a torn batch: nothing valid follows it, and
//! since a batch is acknowledged only after its fsync, nothing acknowledged is lost by
//! truncating there. Damage *followed by* valid batches is different: a crash does not write
//! whole, CRC-valid batches after garbage, so it is media corruption (or a stray write), and
//! the batches after it may have been acknowledged. Recovery then copies everything from the
//! damaged byte to the end of the file into a quarantine file beside the segment, fsyncs it
//! and its directory, and only then truncates the segment at the last good batch, so nothing
//! is destroyed and an operator can inspect or salvage the bytes.
//!
//! A quarantine file is named `<base:020>.log.quarantine-<found at, unix ms>-at-<byte>`,
//! where `<byte>` is the position in the segment where the damage starts; it holds the
//! segment's bytes from there to its end, unchanged. It ends in neither `.log` nor `.tmp`, so
//! it is never opened or removed as a segment; it is reported by every later open until an
//! operator removes it.

use std::path::Path;

use crate::batch::{verify_crc, BatchHeader, HEADER_BYTES};
use crate::error::{Result, StorageError};
use crate::io::{Io, IoFile};
use crate::scan::scan_batches;
use crate::segment::file_stem;

/// How much of the damaged remainder is read (and copied) at a time.
const WINDOW_BYTES: usize = 1024 * 1024;
const MARKER: &str = ".log.quarantine-";

/// Bytes of a segment set aside by recovery, as shown in a partition's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedFile {
    /// The file's name inside the partition folder.
    pub file: String,
    pub bytes: u64,
    /// When recovery set the bytes aside (unix ms).
    pub found_at_ms: i64,
    pub reason: String,
}

/// What recovery found after the damage at `from`: the first valid batch, how many valid
/// batches follow back to back from there, and the offsets they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidAfterDamage {
    pub position: u64,
    pub batches: u64,
    pub first_offset: u64,
    pub last_offset: u64,
}

/// Searches `[from, end)` of `file` for a position where a whole batch starts: a header that
/// parses (magic 2), a length within `batch_bytes_max` and the file, and a CRC-32C that
/// verifies. Reads a window at a time, so memory stays bounded whatever the file size.
pub(crate) fn find_valid_batch(
    file: &dyn IoFile,
    from: u64,
    end: u64,
    batch_bytes_max: usize,
) -> Result<Option<u64>> {
    let mut window_start = from;
    while end.saturating_sub(window_start) >= HEADER_BYTES as u64 {
        let length = (end - window_start).min(WINDOW_BYTES as u64) as usize;
        let window = read(file, window_start, length)?;
        for index in 0..=(window.len() - HEADER_BYTES) {
            let position = window_start + index as u64;
            if let Some(total) = plausible_header(&window[index..], end - position, batch_bytes_max)
            {
                let valid = if index + total <= window.len() {
                    verify_crc(&window[index..index + total])
                } else {
                    verify_crc(&read(file, position, total)?)
                };
                if valid {
                    return Ok(Some(position));
                }
            }
        }
        // The next window starts where a header could no longer fit in this one.
        window_start += (window.len() - HEADER_BYTES + 1) as u64;
    }
    Ok(None)
}

/// The whole size of the batch whose header starts `bytes`, when the header is believable.
fn plausible_header(bytes: &[u8], remaining: u64, batch_bytes_max: usize) -> Option<usize> {
    if bytes.get(16) != Some(&2) {
        return None;
    }
    let header = BatchHeader::parse(bytes).ok()?;
    let total = header.total_bytes();
    (total <= batch_bytes_max && total as u64 <= remaining).then_some(total)
}

/// Counts the valid batches back to back from `position` (the first must be valid).
pub(crate) fn describe_valid_after(
    file: &dyn IoFile,
    position: u64,
    end: u64,
    batch_bytes_max: usize,
) -> Result<ValidAfterDamage> {
    let mut found = ValidAfterDamage {
        position,
        batches: 0,
        first_offset: u64::MAX,
        last_offset: 0,
    };
    scan_batches(
        file,
        position,
        end,
        true,
        batch_bytes_max,
        |_, header, _| {
            found.batches += 1;
            found.first_offset = found.first_offset.min(header.base_offset);
            found.last_offset = found.last_offset.max(header.last_offset());
            std::ops::ControlFlow::Continue(())
        },
    )?;
    Ok(found)
}

/// Recovery's decision for an active segment damaged at `damage_at`: when a valid batch
/// follows somewhere before `end`, the remainder is set aside (and reported, at `error`);
/// `None` means a torn tail that may simply be truncated.
#[allow(clippy::too_many_arguments)] // the segment, where it is damaged, and the limits
pub(crate) fn set_aside_if_valid_follows(
    io: &dyn Io,
    dir: &Path,
    base_offset: u64,
    segment: &dyn IoFile,
    damage_at: u64,
    end: u64,
    batch_bytes_max: usize,
    now_ms: i64,
    damage: &str,
) -> Result<Option<QuarantinedFile>> {
    let Some(position) = find_valid_batch(segment, damage_at, end, batch_bytes_max)? else {
        return Ok(None);
    };
    let after = describe_valid_after(segment, position, end, batch_bytes_max)?;
    let segment_name = format!("{}.log", file_stem(base_offset));
    let reason = format!(
        "{segment_name} is damaged at byte {damage_at} ({damage}) and {} valid batches \
         (offsets {}..={}) follow from byte {position}: media corruption, not a torn write; \
         bytes {damage_at}..{end} were set aside and the segment truncated at byte {damage_at}",
        after.batches, after.first_offset, after.last_offset
    );
    let quarantined = set_aside(
        io,
        dir,
        base_offset,
        segment,
        damage_at,
        end,
        now_ms,
        reason.clone(),
    )?;
    tracing::error!(
        dir = %dir.display(),
        file = %segment_name,
        from_byte = damage_at,
        to_byte = end,
        valid_batches_after = after.batches,
        first_offset_after = after.first_offset,
        last_offset_after = after.last_offset,
        quarantine = %quarantined.file,
        "{reason}"
    );
    Ok(Some(quarantined))
}

/// Copies `[from, end)` of the segment into a new quarantine file beside it and makes the
/// copy durable (file and directory) before the caller truncates the segment.
#[allow(clippy::too_many_arguments)] // the segment, the range, and what to record
fn set_aside(
    io: &dyn Io,
    dir: &Path,
    base_offset: u64,
    segment: &dyn IoFile,
    from: u64,
    end: u64,
    now_ms: i64,
    reason: String,
) -> Result<QuarantinedFile> {
    let name = format!("{}{MARKER}{now_ms}-at-{from}", file_stem(base_offset));
    let path = dir.join(&name);
    let context = |what: &str| format!("{what} {}", path.display());
    let copy = io
        .open(&path, true)
        .map_err(|e| StorageError::io(context("creating"), e))?;
    copy.set_len(0)
        .map_err(|e| StorageError::io(context("truncating"), e))?;
    let mut position = from;
    while position < end {
        let length = (end - position).min(WINDOW_BYTES as u64) as usize;
        let bytes = read(segment, position, length)?;
        copy.write_at(&bytes, position - from)
            .map_err(|e| StorageError::io(context("writing"), e))?;
        position += length as u64;
    }
    copy.sync_data()
        .map_err(|e| StorageError::io(context("fsync of"), e))?;
    io.sync_dir(dir)
        .map_err(|e| StorageError::io(format!("syncing directory {}", dir.display()), e))?;
    Ok(QuarantinedFile {
        file: name,
        bytes: end - from,
        found_at_ms: now_ms,
        reason,
    })
}

/// The quarantine files among a partition folder's `names`, left by earlier opens.
pub(crate) fn list(io: &dyn Io, dir: &Path, names: &[String]) -> Vec<QuarantinedFile> {
    let mut found = Vec::new();
    for name in names {
        let Some((stem, rest)) = name.split_once(MARKER) else {
            continue;
        };
        let (found_at, position) = rest.split_once("-at-").unwrap_or((rest, "?"));
        let bytes = io
            .open(&dir.join(name), false)
            .and_then(|file| file.len())
            .unwrap_or(0);
        found.push(QuarantinedFile {
            file: name.clone(),
            bytes,
            found_at_ms: found_at.parse().unwrap_or(0),
            reason: format!(
                "segment {stem}.log was damaged from byte {position} with valid batches after \
                 the damage; these bytes were set aside at an earlier start"
            ),
        });
    }
    found.sort_by(|a, b| a.file.cmp(&b.file));
    found
}

fn read(file: &dyn IoFile, position: u64, length: usize) -> Result<Vec<u8>> {
    let mut buffer = vec![0u8; length];
    file.read_exact_at(&mut buffer, position)
        .map_err(|error| StorageError::io(format!("reading at byte {position}"), error))?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::batch::encode_batch;
    use crate::io::MemoryIo;

    fn one_batch() -> Vec<u8> {
        let record = omnibus_types::Record {
            offset: 0,
            timestamp_ms: 1,
            subject: String::new(),
            key: None,
            value: Some(bytes::Bytes::from_static(b"found")),
            headers: vec![],
        };
        encode_batch(&[record]).expect("encode").to_vec()
    }

    #[test]
    fn a_batch_whose_header_straddles_two_windows_is_found() {
        let io = MemoryIo::new();
        io.create_dir_all(Path::new("/p")).unwrap();
        let file = io.open(Path::new("/p/f"), true).unwrap();
        // Garbage with a fake magic byte every 100 bytes, then a batch starting 30 bytes
        // before the end of the first window.
        let mut bytes: Vec<u8> = (0..WINDOW_BYTES - 30).map(|i| (i % 251) as u8).collect();
        for slot in bytes.iter_mut().skip(16).step_by(100) {
            *slot = 2;
        }
        let at = bytes.len() as u64;
        bytes.extend_from_slice(&one_batch());
        file.write_at(&bytes, 0).unwrap();
        let end = bytes.len() as u64;
        assert_eq!(
            find_valid_batch(file.as_ref(), 0, end, 1 << 20).unwrap(),
            Some(at)
        );
        assert_eq!(
            find_valid_batch(file.as_ref(), at + 1, end, 1 << 20).unwrap(),
            None
        );
        let after = describe_valid_after(file.as_ref(), at, end, 1 << 20).unwrap();
        assert_eq!(
            (after.batches, after.first_offset, after.last_offset),
            (1, 0, 0)
        );
        // A batch larger than the limit is not believed.
        assert_eq!(find_valid_batch(file.as_ref(), 0, end, 64).unwrap(), None);
    }
}
