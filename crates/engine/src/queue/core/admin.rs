//! Taking messages out without delivering them: cancel one, drop the oldest for a full queue,
//! purge everything waiting.

use omnibus_storage::StateWrite;

use super::{keys, Position, QueueCore};

impl QueueCore {
    /// Finishes a ready or waiting offset without delivering it (a cancelled job).
    pub fn cancel(&mut self, offset: u64) -> Option<Vec<StateWrite>> {
        match self.position(offset) {
            Position::Ready { priority } => {
                self.ready[priority as usize].remove(offset);
                Some(self.finish(offset))
            }
            Position::Waiting { due_ms } => {
                let mut writes = Vec::new();
                if let Some(due) = due_ms {
                    self.timers.remove(&(due, offset));
                    writes.push(StateWrite::Delete {
                        table: keys::TABLE,
                        key: keys::timer(&self.name, due, offset),
                    });
                } else {
                    // Its timer is beyond the window; when it fires it finds the offset
                    // finished and drops it.
                    self.timers_beyond = self.timers_beyond.saturating_sub(1);
                }
                writes.extend(self.finish(offset));
                Some(writes)
            }
            Position::Leased(lease) => {
                let _ = self.take_lease(offset, lease.attempt);
                Some(self.finish(offset))
            }
            Position::Finished | Position::Unknown => None,
        }
    }

    /// Takes the `count` oldest ready messages (lowest offsets, any priority) out of the queue:
    /// they are finished. For a full queue's drop-oldest and dead-letter-oldest policies.
    pub fn remove_oldest_ready(&mut self, count: usize) -> (Vec<u64>, Vec<StateWrite>) {
        let mut candidates: Vec<u64> = self
            .ready
            .iter()
            .flat_map(|set| set.iter_after(None).take(count))
            .collect();
        candidates.sort_unstable();
        candidates.truncate(count);
        let mut writes = Vec::new();
        for offset in &candidates {
            for set in self.ready.iter_mut() {
                if set.remove(*offset) {
                    break;
                }
            }
            writes.extend(self.finish(*offset));
        }
        (candidates, writes)
    }

    /// Removes every message not leased: ready and waiting become finished. Returns the writes.
    pub fn purge(&mut self) -> Vec<StateWrite> {
        let mut writes = Vec::new();
        let ready: Vec<u64> = self
            .ready
            .iter_mut()
            .flat_map(|set| {
                let all = set.pop_first(usize::MAX);
                all.into_iter()
            })
            .collect();
        for offset in ready {
            writes.extend(self.finish(offset));
        }
        let timers: Vec<(i64, u64)> = std::mem::take(&mut self.timers).into_iter().collect();
        for (due, offset) in timers {
            writes.push(StateWrite::Delete {
                table: keys::TABLE,
                key: keys::timer(&self.name, due, offset),
            });
            writes.extend(self.finish(offset));
        }
        writes
    }
}
