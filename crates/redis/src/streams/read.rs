//! Reading a Redis stream from its Omnibus stream (partition 0): finding an ID's offset and
//! reading entries forward and backward.
//!
//! Finding an ID costs one lookup in the partition's time index (the record timestamp is the
//! ID's milliseconds) and then reading forward through that one millisecond's records. There
//! is no index of IDs beside the log: IDs only grow, so the time index orders them too.

use bytes::Bytes;
use omnibus_engine::{Engine, EngineError, FetchRequest, OffsetSpec};

use std::collections::BTreeSet;

use super::entry::{id_of, Entry, FieldNames};
use super::id::StreamId;

/// Records read per fetch when scanning.
const SCAN_RECORDS: usize = 512;
/// Bytes read per fetch, per record wanted, and at least and at most: a fetch decodes every
/// batch it reads, so a lookup of one record must not read a megabyte (a fetch returns at
/// least one whole batch, so larger records still arrive).
const BYTES_PER_RECORD: usize = 1024;
const FETCH_BYTES_MIN: usize = 16 * 1024;
const FETCH_BYTES_MAX: usize = 1024 * 1024;
/// Records an ID lookup reads forward after the time index before it asks the index again.
const LOOKUP_SPAN: usize = 1024;

/// `(log start, high watermark)` of the stream's partition 0, or `None` when the stream does
/// not exist.
pub(crate) fn bounds(engine: &Engine, stream: &str) -> Result<Option<(u64, u64)>, EngineError> {
    match engine.partition_bounds(stream, 0) {
        Ok(bounds) => Ok(Some(bounds)),
        Err(EngineError::StreamNotFound(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

async fn fetch(
    engine: &Engine,
    stream: &str,
    offset: u64,
    max_records: usize,
) -> Result<omnibus_engine::FetchResult, EngineError> {
    fetch_sized(engine, stream, offset, max_records, BYTES_PER_RECORD).await
}

/// A fetch of `max_records` records of about `bytes_per_record` bytes each.
async fn fetch_sized(
    engine: &Engine,
    stream: &str,
    offset: u64,
    max_records: usize,
    bytes_per_record: usize,
) -> Result<omnibus_engine::FetchResult, EngineError> {
    engine
        .fetch(FetchRequest {
            stream: stream.to_string(),
            partition: 0,
            offset,
            max_records,
            max_bytes: max_records
                .saturating_mul(bytes_per_record)
                .clamp(FETCH_BYTES_MIN, FETCH_BYTES_MAX),
            wait_ms: 0,
        })
        .await
}

/// About how many bytes a record of `records` takes in the log (its key, value and headers,
/// and a batch's share of framing), at least 64: a long read sizes its next fetch by it.
/// Entries keep slices of what each fetch read, so a fetch of eight times the bytes it uses
/// held eight times the memory until the reply was written (a 200,000-entry XRANGE of
/// 130-byte entries peaked at ~450 MB).
fn record_bytes(records: &[omnibus_types::Record]) -> usize {
    if records.is_empty() {
        return BYTES_PER_RECORD;
    }
    let total: usize = records
        .iter()
        .map(|record| {
            let key = record.key.as_ref().map_or(0, Bytes::len);
            let value = record.value.as_ref().map_or(0, Bytes::len);
            let headers: usize = record
                .headers
                .iter()
                .map(|header| header.name.len() + header.value.len() + 4)
                .sum();
            key + value + headers + 24
        })
        .sum();
    (total / records.len()).max(64)
}

/// The first offset whose entry's ID is at least `id` (the high watermark if none is).
pub(crate) async fn offset_of(
    engine: &Engine,
    stream: &str,
    id: StreamId,
) -> Result<u64, EngineError> {
    let (start, end) = engine.partition_bounds(stream, 0)?;
    if id == StreamId::MIN {
        return Ok(start);
    }
    let Ok(ms) = i64::try_from(id.ms) else {
        return Ok(end);
    };
    let mut offset = engine
        .resolve_offset(stream, 0, OffsetSpec::Timestamp(ms))
        .await?
        .max(start);
    // The records of one millisecond come first: read a few, then more.
    let mut wanted = 16;
    while offset < end {
        let fetched = fetch(engine, stream, offset, wanted).await?;
        wanted = SCAN_RECORDS;
        for record in &fetched.records {
            if id_of(record) >= id {
                return Ok(record.offset);
            }
        }
        if fetched.next_offset <= offset {
            break;
        }
        offset = fetched.next_offset;
    }
    Ok(end.max(offset))
}

/// What one read may hold: at most `entries` entries, and an error rather than more than
/// `bytes` bytes of them (IDs, field names and values; [`Entry::reply_bytes`]). An XRANGE
/// answers the whole range, as Redis does: a reply cut short would look like the range's end
/// to a client, so a range too big to hold is refused with an error that says to page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) entries: usize,
    pub(crate) bytes: usize,
}

impl Budget {
    /// At most `entries`, however big.
    pub(crate) fn entries(entries: usize) -> Budget {
        Budget {
            entries,
            bytes: usize::MAX,
        }
    }
}

/// Counts the bytes of the entries a read holds against its budget.
struct Held {
    bytes: usize,
    max: usize,
}

impl Held {
    fn new(budget: Budget) -> Held {
        Held {
            bytes: 0,
            max: budget.bytes,
        }
    }

    fn add(&mut self, entry: &Entry) -> Result<(), EngineError> {
        self.bytes = self.bytes.saturating_add(entry.reply_bytes());
        if self.bytes > self.max {
            return Err(EngineError::LimitExceeded(format!(
                "the reply would hold more than {} bytes of entries; read the range in pages with COUNT",
                self.max
            )));
        }
        Ok(())
    }
}

/// Entries from `offset` on with IDs up to `end`, within `budget`, skipping `deleted`.
pub(crate) async fn forward(
    engine: &Engine,
    stream: &str,
    mut offset: u64,
    end: StreamId,
    budget: Budget,
    deleted: &BTreeSet<u64>,
) -> Result<Vec<Entry>, EngineError> {
    let count = budget.entries;
    let mut held = Held::new(budget);
    let mut entries = Vec::new();
    let mut names = FieldNames::default();
    let (_, high_watermark) = engine.partition_bounds(stream, 0)?;
    let mut bytes_per_record = BYTES_PER_RECORD;
    while entries.len() < count && offset < high_watermark {
        let wanted = (count - entries.len()).min(SCAN_RECORDS);
        let fetched = fetch_sized(engine, stream, offset, wanted, bytes_per_record).await?;
        // A little over the records seen so far: a fetch still returns a whole batch.
        bytes_per_record = record_bytes(&fetched.records) * 5 / 4;
        for record in fetched.records {
            if id_of(&record) > end {
                return Ok(entries);
            }
            if deleted.contains(&record.offset) {
                continue;
            }
            let entry = names.entry(record);
            held.add(&entry)?;
            entries.push(entry);
            if entries.len() >= count {
                break;
            }
        }
        if fetched.next_offset <= offset {
            break;
        }
        offset = fetched.next_offset;
    }
    Ok(entries)
}

/// XRANGE: entries with IDs in `[start, end]`, oldest first, within `budget`.
pub(crate) async fn range(
    engine: &Engine,
    stream: &str,
    (start, end): (StreamId, StreamId),
    budget: Budget,
    deleted: &BTreeSet<u64>,
) -> Result<Vec<Entry>, EngineError> {
    if bounds(engine, stream)?.is_none() || start > end || budget.entries == 0 {
        return Ok(Vec::new());
    }
    let offset = offset_of(engine, stream, start).await?;
    forward(engine, stream, offset, end, budget, deleted).await
}

/// XREVRANGE: entries with IDs in `[start, end]`, newest first, within `budget`. Reads
/// backward a window of offsets at a time.
pub(crate) async fn reverse(
    engine: &Engine,
    stream: &str,
    (start, end): (StreamId, StreamId),
    budget: Budget,
    deleted: &BTreeSet<u64>,
) -> Result<Vec<Entry>, EngineError> {
    let count = budget.entries;
    let mut held = Held::new(budget);
    let Some((first, _)) = bounds(engine, stream)? else {
        return Ok(Vec::new());
    };
    if start > end || count == 0 {
        return Ok(Vec::new());
    }
    let mut limit = match end.next() {
        Some(after) => offset_of(engine, stream, after).await?,
        None => engine.partition_bounds(stream, 0)?.1,
    };
    let mut entries = Vec::new();
    let mut names = FieldNames::default();
    while limit > first && entries.len() < count {
        let window_start = limit.saturating_sub(SCAN_RECORDS as u64).max(first);
        let mut window = Vec::new();
        let mut offset = window_start;
        while offset < limit {
            let fetched = fetch(engine, stream, offset, (limit - offset) as usize).await?;
            window.extend(
                fetched
                    .records
                    .into_iter()
                    .filter(|record| record.offset < limit),
            );
            if fetched.next_offset <= offset {
                break;
            }
            offset = fetched.next_offset;
        }
        for record in window.into_iter().rev() {
            let id = id_of(&record);
            if id < start {
                return Ok(entries);
            }
            if id <= end && !deleted.contains(&record.offset) {
                let entry = names.entry(record);
                held.add(&entry)?;
                entries.push(entry);
                if entries.len() >= count {
                    return Ok(entries);
                }
            }
        }
        limit = window_start;
    }
    Ok(entries)
}

/// The ID of the stream's last record, if it has any.
pub(crate) async fn last_record_id(
    engine: &Engine,
    stream: &str,
) -> Result<Option<StreamId>, EngineError> {
    let (start, end) = engine.partition_bounds(stream, 0)?;
    if end <= start {
        return Ok(None);
    }
    let fetched = fetch(engine, stream, end - 1, 1).await?;
    Ok(fetched.records.last().map(id_of))
}

/// The last offset whose entry's ID is at most `id` plus one (the end of an interval).
pub(crate) async fn offset_after(
    engine: &Engine,
    stream: &str,
    id: StreamId,
) -> Result<u64, EngineError> {
    match id.next() {
        Some(next) => offset_of(engine, stream, next).await,
        None => Ok(engine.partition_bounds(stream, 0)?.1),
    }
}

/// The ID of the record at `offset`, if it is still in the stream.
pub(crate) async fn id_at(
    engine: &Engine,
    stream: &str,
    offset: u64,
) -> Result<Option<StreamId>, EngineError> {
    let (start, end) = engine.partition_bounds(stream, 0)?;
    if offset < start || offset >= end {
        return Ok(None);
    }
    let fetched = fetch(engine, stream, offset, 1).await?;
    Ok(fetched
        .records
        .first()
        .filter(|record| record.offset == offset)
        .map(id_of))
}

/// The door setting that keeps a stream's last ID once its records are gone.
pub(crate) const LAST_ID_SETTING: &str = "redis.last-id";

/// The stream's last ID: its last record's, or the one kept when records went.
pub(crate) async fn last_id(engine: &Engine, stream: &str) -> Result<StreamId, EngineError> {
    let mut last = last_record_id(engine, stream)
        .await?
        .unwrap_or(StreamId::MIN);
    if let Some(kept) = engine
        .stream_door_settings(stream)?
        .get(LAST_ID_SETTING)
        .and_then(|text| StreamId::parse(text.as_bytes(), 0))
    {
        last = last.max(kept);
    }
    Ok(last)
}

/// The offsets of the entries with these IDs still in the stream. One time-index lookup per
/// run of nearby IDs: after a lookup the stream is read forward (up to [`LOOKUP_SPAN`]
/// records) matching the IDs in order, so acknowledging a batch read together costs one
/// lookup and one read.
pub(crate) async fn offsets_of_ids(
    engine: &Engine,
    stream: &str,
    ids: &[StreamId],
) -> Result<std::collections::HashMap<StreamId, u64>, EngineError> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut found = std::collections::HashMap::new();
    let (_, end) = engine.partition_bounds(stream, 0)?;
    let mut index = 0;
    while index < sorted.len() {
        let mut offset = offset_of(engine, stream, sorted[index]).await?;
        let mut read = 0;
        let before = index;
        while index < sorted.len() && offset < end && read < LOOKUP_SPAN {
            let fetched = fetch(engine, stream, offset, SCAN_RECORDS).await?;
            for record in &fetched.records {
                let id = id_of(record);
                while index < sorted.len() && sorted[index] < id {
                    index += 1;
                }
                if index < sorted.len() && sorted[index] == id {
                    found.insert(id, record.offset);
                    index += 1;
                }
            }
            read += fetched.records.len();
            if fetched.next_offset <= offset {
                break;
            }
            offset = fetched.next_offset;
        }
        if index == before {
            // Not in the stream (or past its end): next ID.
            index += 1;
        }
    }
    Ok(found)
}

/// The IDs of the records at `offsets` still in the stream, read a run of consecutive
/// offsets at a time.
pub(crate) async fn ids_at(
    engine: &Engine,
    stream: &str,
    offsets: &[u64],
) -> Result<std::collections::HashMap<u64, StreamId>, EngineError> {
    let mut sorted = offsets.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let (start, end) = engine.partition_bounds(stream, 0)?;
    let mut found = std::collections::HashMap::new();
    let mut index = 0;
    while index < sorted.len() {
        let first = sorted[index];
        let mut last = first;
        while index + 1 < sorted.len() && sorted[index + 1] == last + 1 {
            index += 1;
            last = sorted[index];
        }
        index += 1;
        let mut offset = first.max(start);
        while offset <= last && offset < end {
            let count = (last - offset + 1).min(SCAN_RECORDS as u64) as usize;
            let fetched = fetch(engine, stream, offset, count).await?;
            for record in &fetched.records {
                if record.offset >= first && record.offset <= last {
                    found.insert(record.offset, id_of(record));
                }
            }
            if fetched.next_offset <= offset {
                break;
            }
            offset = fetched.next_offset;
        }
    }
    Ok(found)
}
