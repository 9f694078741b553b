//! First deliveries recorded as runs of offsets instead of one attempt record each.
//!
//! A delivery's attempt count must be durable before the message is handed out (so attempt
//! numbers, and with them `max_deliver` and stale-attempt rejection, survive a crash). Most
//! messages are delivered once and acked: recording that first attempt as its own `D` key
//! costs a write at delivery and a delete at the ack, two of the handful of state-store
//! writes a job costs. A run key `G<end>` → `first` says "every offset in `[first, end)` was
//! delivered at least once" for a whole fetch in one write, and the ack writes nothing for
//! it. After a crash, an unfinished offset in a run without its own `D` key is recovered with
//! one attempt, exactly as its `D` key would have said. A `D` key, once written (a retry, a
//! failure), is the authority for its offset. A run key is deleted when the ack floor passes
//! its end.

use std::collections::BTreeMap;

use omnibus_storage::StateWrite;

use super::offset_hash::OffsetSet;
use super::{keys, QueueCore};

/// Runs of first deliveries and the offsets whose only durable attempt record is a run.
#[derive(Debug, Default)]
pub(super) struct DeliveredRuns {
    /// Stored runs by end offset → first offset.
    by_end: BTreeMap<u64, u64>,
    /// Unfinished offsets delivered once, recorded only by a run (no `D` key of their own).
    covered: OffsetSet,
}

impl QueueCore {
    /// Records first deliveries of `offsets` as runs of consecutive offsets: one write each.
    pub(super) fn record_first_deliveries(&mut self, offsets: &mut [u64]) -> Vec<StateWrite> {
        offsets.sort_unstable();
        let mut writes = Vec::new();
        let mut index = 0;
        while index < offsets.len() {
            let first = offsets[index];
            let mut end = first + 1;
            index += 1;
            while index < offsets.len() && offsets[index] == end {
                end += 1;
                index += 1;
            }
            self.runs.by_end.insert(end, first);
            writes.push(StateWrite::Put {
                table: keys::TABLE,
                key: keys::delivered_run(&self.name, end),
                value: first.to_be_bytes().to_vec(),
            });
        }
        self.runs.covered.extend(offsets.iter().copied());
        writes
    }

    /// The offset's only attempt record is a run or a frontier (`leases.rs`): no `D` key.
    pub(super) fn runs_cover(&mut self, offset: u64) {
        self.runs.covered.insert(offset);
    }

    /// The offset now has its own `D` key, which overrides any run.
    pub(super) fn stop_covering(&mut self, offset: u64) {
        self.runs.covered.remove(&offset);
    }

    /// Whether the offset's attempt record is only a run (so there is no `D` key to delete);
    /// forgets it, as the offset is being finished.
    pub(super) fn finish_covered(&mut self, offset: u64) -> bool {
        self.runs.covered.remove(&offset)
    }

    /// Deletes the runs that end at or below the ack floor: every offset in them is finished.
    pub(super) fn forget_runs_below_floor(&mut self) -> Vec<StateWrite> {
        let mut writes = Vec::new();
        while let Some((&end, _)) = self.runs.by_end.first_key_value() {
            if end > self.floor {
                break;
            }
            self.runs.by_end.pop_first();
            writes.push(StateWrite::Delete {
                table: keys::TABLE,
                key: keys::delivered_run(&self.name, end),
            });
        }
        writes
    }

    /// After [`QueueCore::recover`]: unfinished offsets in stored runs `(first, end)` that
    /// have no attempt record of their own were delivered once.
    pub fn recover_runs(&mut self, runs: impl IntoIterator<Item = (u64, u64)>) {
        for (first, end) in runs {
            self.runs.by_end.insert(end, first);
            for offset in first.max(self.floor)..end {
                if self.finished_above.contains(offset) || self.attempts.contains_key(&offset) {
                    continue;
                }
                self.attempts.insert(offset, (1, String::new()));
                self.runs.covered.insert(offset);
            }
        }
    }
}
