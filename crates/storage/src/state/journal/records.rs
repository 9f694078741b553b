//! The journal's record format (`journal.rs` has it byte by byte): encoding a record, and
//! reading a file's run of valid, consecutive records back. No I/O here.

use std::collections::HashSet;
use std::sync::Mutex;

use super::super::StateWrite;

/// A record longer than this is not one we wrote (a group is bounded well below it).
const RECORD_BYTES_MAX: usize = 1 << 30;
/// A record's length and checksum.
pub(super) const HEADER_BYTES: usize = 8;

/// Encodes one record into `out` (cleared first).
pub(super) fn encode(out: &mut Vec<u8>, sequence: u64, writes: &[StateWrite]) {
    out.clear();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&(writes.len() as u32).to_le_bytes());
    for write in writes {
        let (tag, fields): (u8, [&[u8]; 2]) = match write {
            StateWrite::Put { key, value, .. } => (0, [key.as_bytes(), value]),
            StateWrite::PutMax { key, value, .. } => (1, [key.as_bytes(), value]),
            StateWrite::Delete { key, .. } => (2, [key.as_bytes(), &[]]),
            StateWrite::DeletePrefix { prefix, .. } => (3, [prefix.as_bytes(), &[]]),
            StateWrite::DeleteRange { start, end, .. } => (4, [start.as_bytes(), end.as_bytes()]),
        };
        out.push(tag);
        let table = write.table().as_bytes();
        out.extend_from_slice(&(table.len() as u16).to_le_bytes());
        out.extend_from_slice(table);
        let field_count = if matches!(tag, 2 | 3) { 1 } else { 2 };
        for field in &fields[..field_count] {
            out.extend_from_slice(&(field.len() as u32).to_le_bytes());
            out.extend_from_slice(field);
        }
    }
    let body_length = (out.len() - HEADER_BYTES) as u32;
    let crc = crc32c::crc32c(&out[HEADER_BYTES..]);
    out[..4].copy_from_slice(&body_length.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// One file's run of valid, consecutive records from offset 0.
pub(super) struct Run {
    /// Those after the checkpoint.
    pub(super) records: Vec<(u64, Vec<StateWrite>)>,
    /// The highest sequence read (0: none).
    pub(super) last_sequence: u64,
    /// The offset just after the run's last record.
    pub(super) end: u64,
}

/// The run of valid, consecutive records from offset 0 of `bytes`, keeping those after
/// `checkpoint`.
pub(super) fn parse(bytes: &[u8], checkpoint: u64) -> Run {
    let mut run = Run {
        records: Vec::new(),
        last_sequence: 0,
        end: 0,
    };
    let mut at = 0usize;
    let mut previous: Option<u64> = None;
    while let Some((sequence, writes, next)) = record_at(bytes, at) {
        if previous.is_some_and(|previous| sequence != previous + 1) {
            break;
        }
        previous = Some(sequence);
        run.last_sequence = sequence;
        if sequence > checkpoint {
            run.records.push((sequence, writes));
        }
        at = next;
        run.end = next as u64;
    }
    run
}

/// The record starting at `at`, if it is whole and checks out: its sequence, writes and
/// the offset after it.
fn record_at(bytes: &[u8], at: usize) -> Option<(u64, Vec<StateWrite>, usize)> {
    let header = bytes.get(at..at.checked_add(HEADER_BYTES)?)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if !(12..=RECORD_BYTES_MAX).contains(&length) {
        return None;
    }
    let start = at + HEADER_BYTES;
    let body = bytes.get(start..start.checked_add(length)?)?;
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let mut reader = Reader { bytes: body, at: 0 };
    // Sequences start at 1.
    let sequence = reader.u64().filter(|sequence| *sequence > 0)?;
    let count = reader.u32()? as usize;
    let mut writes = Vec::with_capacity(count.min(body.len()));
    for _ in 0..count {
        writes.push(reader.write()?);
    }
    // A record we wrote ends with its last write: bytes after it mean it is not one.
    if reader.at != body.len() {
        return None;
    }
    Some((sequence, writes, start + length))
}

/// What the fuzz target `state_journal` checks (`crate::fuzzing::state_journal`): `bytes`
/// read as a journal file, raw and as the body of one record with a valid header, never
/// panics; a run read back is consecutive, within the bytes, and encodes back to exactly
/// the bytes it was read from.
pub(crate) fn check_decoding(bytes: &[u8]) {
    let mut framed = Vec::with_capacity(bytes.len() + HEADER_BYTES);
    framed.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    framed.extend_from_slice(&crc32c::crc32c(bytes).to_le_bytes());
    framed.extend_from_slice(bytes);
    for input in [bytes, &framed[..]] {
        let checkpoint = input.first().map_or(0, |byte| u64::from(*byte % 4));
        let after = parse(input, checkpoint);
        assert!(after.end as usize <= input.len());
        let all = parse(input, 0);
        assert_eq!(
            all.end, after.end,
            "the checkpoint does not change where a run ends"
        );
        let mut encoded = Vec::new();
        let mut one = Vec::new();
        for (at, (sequence, writes)) in all.records.iter().enumerate() {
            if at > 0 {
                assert_eq!(*sequence, all.records[at - 1].0 + 1);
            }
            encode(&mut one, *sequence, writes);
            encoded.extend_from_slice(&one);
        }
        assert_eq!(
            encoded,
            input[..all.end as usize],
            "a run encodes back to its bytes"
        );
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        Some(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }

    fn write(&mut self) -> Option<StateWrite> {
        let tag = *self.take(1)?.first()?;
        let n = u16::from_le_bytes(self.take(2)?.try_into().ok()?) as usize;
        let table = intern(std::str::from_utf8(self.take(n)?).ok()?);
        Some(match tag {
            0 => StateWrite::Put {
                table,
                key: self.string()?,
                value: self.bytes()?,
            },
            1 => StateWrite::PutMax {
                table,
                key: self.string()?,
                value: self.bytes()?,
            },
            2 => StateWrite::Delete {
                table,
                key: self.string()?,
            },
            3 => StateWrite::DeletePrefix {
                table,
                prefix: self.string()?,
            },
            4 => StateWrite::DeleteRange {
                table,
                start: self.string()?,
                end: self.string()?,
            },
            _ => return None,
        })
    }
}

/// Table names read back from the journal, as the `&'static str` a [`StateWrite`] holds.
/// The layer above names its tables with constants, so this keeps a handful of names.
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}
