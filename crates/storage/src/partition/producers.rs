//! What recovery learns about idempotent producers: while the active segment is scanned at
//! open, the last few batches of each producer id are kept, so that the engine's producer
//! registry can answer a retry that straddles a restart with its original offsets instead of
//! writing it twice, and keep checking that producer's sequence numbers.
//!
//! Only the active segment is scanned (recovery reads it anyway); a producer whose last batch
//! is in an older segment starts afresh, as before a restart. Bounded: at most
//! [`RECOVERED_BATCHES_MAX`] batches per producer and [`RECOVERED_PRODUCERS_MAX`] producers
//! per partition (when full, the half seen longest ago is forgotten).

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;

/// Batches remembered per producer: Kafka's limit of in-flight requests for idempotence.
pub const RECOVERED_BATCHES_MAX: usize = 5;
/// Producers remembered per partition.
pub const RECOVERED_PRODUCERS_MAX: usize = 10_000;

/// One idempotent batch found in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: u64,
    pub last_offset: u64,
}

/// Producer batches collected by a recovery scan, handed out once per producer.
#[derive(Debug, Default)]
pub struct RecoveredProducers {
    producers: HashMap<i64, (u64, VecDeque<ProducerBatch>)>,
    /// Batches observed so far: orders producers by how recently they were seen.
    seen: u64,
}

impl RecoveredProducers {
    /// Notes one batch of the scan, in log order.
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

    /// The batches of `producer_id`, oldest first, handed out once.
    pub(crate) fn take(&mut self, producer_id: i64) -> Option<Vec<ProducerBatch>> {
        self.producers
            .remove(&producer_id)
            .map(|(_, batches)| batches.into())
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
        let mut recovered = RecoveredProducers::default();
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
        let seven = recovered.take(7).unwrap();
        assert_eq!(seven.len(), RECOVERED_BATCHES_MAX);
        assert_eq!(seven[4].first_sequence, 21);
        assert_eq!(seven[4].last_sequence, 23);
        assert_eq!((seven[4].first_offset, seven[4].last_offset), (24, 26));
        assert_eq!(recovered.take(7), None, "handed out once");
        let nine = recovered.take(9).unwrap();
        assert_eq!(nine.len(), 1);
        assert_eq!(nine[0].epoch, 1);
    }

    #[test]
    fn the_producers_seen_longest_ago_are_forgotten_first() {
        let mut recovered = RecoveredProducers::default();
        let max = RECOVERED_PRODUCERS_MAX as i64;
        for id in 0..max {
            recovered.observe(&header(id, 0, 0, id as u64));
        }
        recovered.observe(&header(0, 0, 3, 1_000_000));
        recovered.observe(&header(max, 0, 0, 1_000_001));
        assert!(recovered.len() <= RECOVERED_PRODUCERS_MAX / 2 + 2);
        assert!(recovered.take(0).is_some(), "seen again, so kept");
        assert!(recovered.take(max).is_some(), "the newest is kept");
        assert!(recovered.take(max - 1).is_some(), "recent ones are kept");
        assert!(recovered.take(1).is_none(), "the oldest went");
    }
}
