//! The last few batches of each idempotent producer in a partition, so that after a restart
//! the engine's producer registry can answer a retry with its original offsets instead of
//! writing it twice, and keep checking that producer's sequence numbers.
//!
//! Kept as Kafka keeps it: every batch written is noted; at each segment roll the state is
//! written to a snapshot named after the new segment (`<base>.producers`, replacing the
//! previous one); at open the snapshot of the active segment is loaded and the active
//! segment's batches (which recovery scans anyway) are noted on top. A missing or damaged
//! snapshot only means producers whose last batch is older than the active segment are
//! unknown after the restart (their first batch is then accepted whatever its sequence).
//! Bounded: at most [`RECOVERED_BATCHES_MAX`] batches per producer and
//! [`RECOVERED_PRODUCERS_MAX`] producers per partition (when full, the half seen longest ago
//! is forgotten).
//!
//! Snapshot format: the magic `OBP1`; then for each producer, oldest seen first: producer id
//! (i64), batch count (u8),
//! then per batch epoch (i16), first and last sequence (i32 each), first and last offset (u64
//! each); all big-endian; then a CRC-32C (u32) of everything before it.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::batch::BatchHeader;
use crate::error::{Result, StorageError};
use crate::io::Io;
use crate::segment::{file_stem, write_file_atomically};

/// Batches remembered per producer: Kafka's limit of in-flight requests for idempotence.
pub const RECOVERED_BATCHES_MAX: usize = 5;
/// Producers remembered per partition.
pub const RECOVERED_PRODUCERS_MAX: usize = 10_000;

/// Starts every snapshot (an empty body's CRC-32C is 0, so a CRC alone is not enough).
const SNAPSHOT_MAGIC: &[u8; 4] = b"OBP1";

fn snapshot_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{}.producers", file_stem(base_offset)))
}

/// The snapshot taken when the segment at `base_offset` was started, if there is a valid one.
pub(super) fn load_snapshot(io: &dyn Io, dir: &Path, base_offset: u64) -> Option<ProducerTails> {
    let path = snapshot_path(dir, base_offset);
    if !io.exists(&path) {
        return None;
    }
    let file = io.open(&path, false).ok()?;
    let length = usize::try_from(file.len().ok()?).ok()?;
    let mut bytes = vec![0u8; length];
    file.read_exact_at(&mut bytes, 0).ok()?;
    let tails = ProducerTails::decode(&bytes);
    if tails.is_none() {
        tracing::warn!(path = %path.display(), "ignoring a damaged producer snapshot");
    }
    tails
}

/// Writes the snapshot for the segment starting at `base_offset` and removes the one of the
/// segment before it (`previous_base`).
pub(super) fn write_snapshot(
    io: &dyn Io,
    dir: &Path,
    tails: &ProducerTails,
    base_offset: u64,
    previous_base: u64,
) -> Result<()> {
    write_file_atomically(io, &snapshot_path(dir, base_offset), &tails.encode())?;
    let previous = snapshot_path(dir, previous_base);
    if io.exists(&previous) {
        io.remove_file(&previous)
            .map_err(|e| StorageError::io(format!("removing {}", previous.display()), e))?;
    }
    Ok(())
}

/// One idempotent batch found in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: u64,
    pub last_offset: u64,
}

/// The last batches of each producer of one partition.
#[derive(Debug, Default)]
pub struct ProducerTails {
    producers: HashMap<i64, (u64, VecDeque<ProducerBatch>)>,
    /// Batches observed so far: orders producers by how recently they were seen.
    seen: u64,
}

impl ProducerTails {
    /// Notes one batch, in log order.
    pub(crate) fn observe(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return;
        }
        self.seen += 1;
        if !self.producers.contains_key(&header.producer_id)
            && self.producers.len() >= RECOVERED_PRODUCERS_MAX
        {
            // Forget the half seen longest ago (their batches are the least likely to be
            // retried), in one pass, so many producers cost O(log n) per batch, not O(n).
            let mut last_seen: Vec<u64> = self.producers.values().map(|(seen, _)| *seen).collect();
            let middle = last_seen.len() / 2;
            let (_, cutoff, _) = last_seen.select_nth_unstable(middle);
            let cutoff = *cutoff;
            self.producers.retain(|_, (seen, _)| *seen >= cutoff);
        }
        let count = header.record_count.max(1) as i64;
        let last_sequence =
            ((header.base_sequence as i64 + count - 1) % (i32::MAX as i64 + 1)) as i32;
        let (last_seen, batches) = self.producers.entry(header.producer_id).or_default();
        *last_seen = self.seen;
        if batches
            .back()
            .is_some_and(|b| b.epoch != header.producer_epoch)
        {
            // A new epoch starts its sequences afresh; older batches no longer matter.
            batches.clear();
        }
        if batches.len() == RECOVERED_BATCHES_MAX {
            batches.pop_front();
        }
        batches.push_back(ProducerBatch {
            epoch: header.producer_epoch,
            first_sequence: header.base_sequence,
            last_sequence,
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
        });
    }

    /// The batches of `producer_id`, oldest first.
    pub(crate) fn get(&self, producer_id: i64) -> Option<Vec<ProducerBatch>> {
        self.producers
            .get(&producer_id)
            .map(|(_, batches)| batches.iter().copied().collect())
    }

    /// The snapshot bytes (format in the module comment).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut producers: Vec<(&i64, &(u64, VecDeque<ProducerBatch>))> =
            self.producers.iter().collect();
        producers.sort_unstable_by_key(|(_, (seen, _))| *seen);
        let mut bytes = Vec::with_capacity(producers.len() * 40 + 8);
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        for (id, (_, batches)) in producers {
            bytes.extend_from_slice(&id.to_be_bytes());
            bytes.push(batches.len() as u8);
            for batch in batches {
                bytes.extend_from_slice(&batch.epoch.to_be_bytes());
                bytes.extend_from_slice(&batch.first_sequence.to_be_bytes());
                bytes.extend_from_slice(&batch.last_sequence.to_be_bytes());
                bytes.extend_from_slice(&batch.first_offset.to_be_bytes());
                bytes.extend_from_slice(&batch.last_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        bytes
    }

    /// Reads a snapshot; `None` when it is damaged in any way.
    pub(crate) fn decode(bytes: &[u8]) -> Option<ProducerTails> {
        let (body, crc) = bytes.split_at(bytes.len().checked_sub(4)?);
        if crc32c::crc32c(body).to_be_bytes() != crc {
            return None;
        }
        let mut tails = ProducerTails::default();
        let mut rest = body.strip_prefix(SNAPSHOT_MAGIC)?;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
            rest = tail;
            Some(head)
        };
        while let Some(id) = take(8) {
            let id = i64::from_be_bytes(id.try_into().ok()?);
            let count = *take(1)?.first()? as usize;
            if count > RECOVERED_BATCHES_MAX || tails.producers.len() >= RECOVERED_PRODUCERS_MAX {
                return None;
            }
            let mut batches = VecDeque::with_capacity(count);
            for _ in 0..count {
                let fields = take(26)?;
                batches.push_back(ProducerBatch {
                    epoch: i16::from_be_bytes(fields[0..2].try_into().ok()?),
                    first_sequence: i32::from_be_bytes(fields[2..6].try_into().ok()?),
                    last_sequence: i32::from_be_bytes(fields[6..10].try_into().ok()?),
                    first_offset: u64::from_be_bytes(fields[10..18].try_into().ok()?),
                    last_offset: u64::from_be_bytes(fields[18..26].try_into().ok()?),
                });
            }
            tails.seen += 1;
            tails.producers.insert(id, (tails.seen, batches));
        }
        Some(tails)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.producers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, base_offset: u64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: 2,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            record_count: 3,
        }
    }

    #[test]
    fn keeps_the_last_batches_of_each_producer_of_its_latest_epoch() {
        let mut recovered = ProducerTails::default();
        recovered.observe(&header(-1, -1, -1, 0));
        for index in 0..8 {
            recovered.observe(&header(7, 0, index * 3, 3 + index as u64 * 3));
        }
        recovered.observe(&header(9, 0, 0, 100));
        recovered.observe(&header(9, 1, 0, 103));
        assert_eq!(
            recovered.len(),
            2,
            "non-idempotent batches are not producers"
        );
        let seven = recovered.get(7).unwrap();
        assert_eq!(seven.len(), RECOVERED_BATCHES_MAX);
        assert_eq!(seven[4].first_sequence, 21);
        assert_eq!(seven[4].last_sequence, 23);
        assert_eq!((seven[4].first_offset, seven[4].last_offset), (24, 26));
        let nine = recovered.get(9).unwrap();
        assert_eq!(nine.len(), 1);
        assert_eq!(nine[0].epoch, 1);
    }

    #[test]
    fn the_producers_seen_longest_ago_are_forgotten_first() {
        let mut recovered = ProducerTails::default();
        let max = RECOVERED_PRODUCERS_MAX as i64;
        for id in 0..max {
            recovered.observe(&header(id, 0, 0, id as u64));
        }
        recovered.observe(&header(0, 0, 3, 1_000_000));
        recovered.observe(&header(max, 0, 0, 1_000_001));
        assert!(recovered.len() <= RECOVERED_PRODUCERS_MAX / 2 + 2);
        assert!(recovered.get(0).is_some(), "seen again, so kept");
        assert!(recovered.get(max).is_some(), "the newest is kept");
        assert!(recovered.get(max - 1).is_some(), "recent ones are kept");
        assert!(recovered.get(1).is_none(), "the oldest went");
    }

    #[test]
    fn a_snapshot_round_trips_and_a_damaged_one_is_refused() {
        let mut tails = ProducerTails::default();
        for index in 0..7 {
            tails.observe(&header(3, 1, index * 3, index as u64 * 3));
        }
        tails.observe(&header(4, 0, 0, 100));
        let bytes = tails.encode();
        let back = ProducerTails::decode(&bytes).unwrap();
        assert_eq!(back.get(3), tails.get(3));
        assert_eq!(back.get(4), tails.get(4));
        assert_eq!(back.len(), 2);
        for cut in 0..bytes.len() {
            assert!(
                ProducerTails::decode(&bytes[..cut]).is_none(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[5] ^= 1;
        assert!(ProducerTails::decode(&flipped).is_none());
    }
}
