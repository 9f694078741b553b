//! Bytes of waiting messages (ready or delayed — what `max_length` counts), for `max_bytes`
//! and the queue's stats.
//!
//! The core keeps offsets as ranges, not sizes, so memory does not grow with the queue.
//! Sizes are learned when a message is read from the log (for a delivery, a dead letter, or to
//! make room) and kept only while it is leased (bounded by the workers' prefetch):
//!
//! - an enqueue adds its messages' bytes;
//! - a delivery takes the message out of the waiting set before its record is read, so its
//!   bytes stay counted until [`QueueCore::settle_size`] is told its size after the read;
//! - a lease that ends puts its known size back (a retry) or drops it (finished);
//! - a ready or delayed message finished without being read (a cancelled job) stays counted
//!   until its size is settled the same way; purge zeroes the count.
//!
//! `size_unknown` holds the offsets whose size is not known yet, each with whether its bytes
//! are in `waiting` right now; settling compares that with where the message is now and
//! corrects the count. An offset with neither a `size_unknown` entry nor a known lease size is
//! counted exactly when it is waiting. After a restart the count is rebuilt from the log (see
//! `runtime.rs`).

use super::offset_hash::OffsetMap;
use super::QueueCore;

#[derive(Debug, Default)]
pub(super) struct ByteCount {
    /// Bytes of waiting messages, plus those of deliveries whose size is not settled yet.
    waiting: u64,
    /// Sizes of leased messages.
    leased: OffsetMap<u64>,
    /// Offsets of unknown size → whether their bytes are in `waiting` now.
    size_unknown: OffsetMap<bool>,
}

impl QueueCore {
    /// Bytes of the waiting (ready or delayed) messages.
    pub fn waiting_bytes(&self) -> u64 {
        self.bytes.waiting
    }

    /// Counts just-registered (or recovered) waiting messages.
    pub fn add_waiting_bytes(&mut self, bytes: u64) {
        self.bytes.waiting = self.bytes.waiting.saturating_add(bytes);
    }

    /// Tells the core the size of `offset`'s message, read from the log.
    pub fn settle_size(&mut self, offset: u64, size: u64) {
        if let Some(counted) = self.bytes.size_unknown.remove(&offset) {
            match (counted, self.is_waiting(offset)) {
                (true, false) => self.bytes.waiting = self.bytes.waiting.saturating_sub(size),
                (false, true) => self.bytes.waiting = self.bytes.waiting.saturating_add(size),
                _ => {}
            }
        }
        if self.leases.contains_key(&offset) {
            self.bytes.leased.entry(offset).or_insert(size);
        }
    }

    /// Offsets whose size the core is waiting to be told (deliveries and cancels in flight).
    pub fn unsized_count(&self) -> usize {
        self.bytes.size_unknown.len()
    }

    fn is_waiting(&self, offset: u64) -> bool {
        offset >= self.floor
            && offset < self.end
            && !self.finished_above.contains(offset)
            && !self.leases.contains_key(&offset)
            && !self.parked.contains(&offset)
    }

    /// A ready message was just leased; its bytes leave the count once its size is settled.
    pub(super) fn bytes_granted(&mut self, offset: u64) {
        self.bytes.size_unknown.entry(offset).or_insert(true);
    }

    /// A lease ended: the message is waiting again (`back_to_waiting`) or finished.
    pub(super) fn bytes_lease_ended(&mut self, offset: u64, back_to_waiting: bool) {
        match self.bytes.leased.remove(&offset) {
            Some(size) if back_to_waiting => self.add_waiting_bytes(size),
            Some(_) => {}
            // Not settled yet: the settle sees where the message went.
            None => {
                self.bytes.size_unknown.entry(offset).or_insert(false);
            }
        }
    }

    /// A waiting message was finished without being read: counted until its size is settled.
    pub(super) fn bytes_finished_unread(&mut self, offset: u64) {
        self.bytes.size_unknown.entry(offset).or_insert(true);
    }

    /// A waiting message of known `size` was finished.
    pub(super) fn bytes_finished_sized(&mut self, offset: u64, size: u64) {
        let counted = self.bytes.size_unknown.remove(&offset).unwrap_or(true);
        if counted {
            self.bytes.waiting = self.bytes.waiting.saturating_sub(size);
        }
    }

    /// Every waiting message was finished. Deliveries not settled yet are no longer counted.
    pub(super) fn bytes_purged(&mut self) {
        self.bytes.waiting = 0;
        let leases = &self.leases;
        self.bytes.size_unknown.retain(|offset, counted| {
            *counted = false;
            leases.contains_key(offset)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Policy, TimerSource};
    use super::*;
    use crate::queue::policy::Backoff;

    struct NoTimers;
    impl TimerSource for NoTimers {
        fn load_after(&self, _: Option<(i64, u64)>, _: usize) -> Vec<(i64, u64)> {
            Vec::new()
        }
    }

    fn policy() -> Policy {
        Policy {
            lease_ms: 1_000,
            max_deliver: 3,
            backoff: Backoff::Fixed { delay_ms: 100 },
            jitter: 0.0,
            max_unacked_per_worker: 100,
            mode: super::super::ConsumerMode::Shared,
        }
    }

    /// A core with offsets 0..5 of 100 bytes each, waiting.
    fn five_of_100() -> QueueCore {
        let mut core = QueueCore::new("q", policy());
        core.register(0, 5, 0, None, 0);
        core.add_waiting_bytes(500);
        core
    }

    #[test]
    fn a_delivery_leaves_the_count_when_settled_and_a_retry_comes_back() {
        let mut core = five_of_100();
        let (grants, _) = core.deliver("w", 2, 0);
        assert_eq!(
            core.waiting_bytes(),
            500,
            "still counted until the read settles it"
        );
        for grant in &grants {
            core.settle_size(grant.offset, 100);
        }
        assert_eq!(core.waiting_bytes(), 300);
        core.ack(0, 1).unwrap();
        assert_eq!(
            core.waiting_bytes(),
            300,
            "an ack finishes a leased message"
        );
        core.nack(1, 1, Some(0), "again", 0).unwrap();
        assert_eq!(core.waiting_bytes(), 400, "a retry is waiting again");
        assert_eq!(core.unsized_count(), 0);
    }

    #[test]
    fn a_lease_ending_before_its_read_is_settled_by_where_the_message_went() {
        let mut core = five_of_100();
        let (grants, _) = core.deliver("w", 1, 0);
        // The lease expires (1 s) before the delivery's read came back: retried, waiting.
        core.tick(2_000, &NoTimers);
        core.settle_size(grants[0].offset, 100);
        assert_eq!(core.waiting_bytes(), 500);

        // Finished before the read: dead-lettered by term with a guessed attempt.
        let (grants, _) = core.deliver("w", 1, 2_000);
        core.term(grants[0].offset, grants[0].attempt, "x").unwrap();
        core.settle_size(grants[0].offset, 100);
        assert_eq!(core.waiting_bytes(), 400);
        assert_eq!(core.unsized_count(), 0);
    }

    #[test]
    fn purge_zeroes_the_count_even_with_a_delivery_in_flight() {
        let mut core = five_of_100();
        let (grants, _) = core.deliver("w", 1, 0);
        core.purge(&NoTimers);
        assert_eq!(core.waiting_bytes(), 0);
        core.settle_size(grants[0].offset, 100);
        assert_eq!(
            core.waiting_bytes(),
            0,
            "the leased message was not counted again"
        );
        core.nack(grants[0].offset, grants[0].attempt, Some(0), "e", 0)
            .unwrap();
        assert_eq!(core.waiting_bytes(), 100, "only the retried message waits");
    }

    #[test]
    fn a_cancelled_waiting_message_counts_until_its_size_is_known() {
        let mut core = five_of_100();
        core.cancel(3).unwrap();
        assert_eq!(core.waiting_bytes(), 500);
        core.settle_size(3, 100);
        assert_eq!(core.waiting_bytes(), 400);
        let (removed, _) = core.remove_ready(&[(0, 100), (3, 100), (4, 100)], false);
        assert_eq!(removed, vec![(0, 0), (4, 0)], "3 was already finished");
        assert_eq!(core.waiting_bytes(), 200);
    }
}
