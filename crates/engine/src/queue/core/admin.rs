//! Taking messages out without delivering them: cancel one, drop the oldest for a full queue,
//! purge everything waiting.

use omnibus_storage::StateWrite;

use super::{keys, Position, QueueCore, TimerSource};

impl QueueCore {
    /// Finishes a ready or waiting offset without delivering it (a cancelled job).
    pub fn cancel(&mut self, offset: u64) -> Option<Vec<StateWrite>> {
        match self.position(offset) {
            Position::Ready { priority } => {
                self.ready[priority as usize].remove(offset);
                self.bytes_finished_unread(offset);
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
                self.bytes_finished_unread(offset);
                writes.extend(self.finish(offset));
                Some(writes)
            }
            Position::Leased(lease) => {
                let _ = self.take_lease(offset, lease.attempt);
                self.bytes_lease_ended(offset, false);
                Some(self.finish(offset))
            }
            Position::Finished | Position::Unknown => None,
        }
    }

    /// Finishes up to `max` ready offsets below `below` without delivering them: records the
    /// log no longer has (retention or a trim removed them). Consecutive ones from the floor
    /// move it once. Leased and waiting offsets are left to end as they would.
    pub fn finish_ready_below(&mut self, below: u64, max: usize) -> Vec<StateWrite> {
        let mut writes = Vec::new();
        let mut finished = 0;
        for priority in 0..self.ready.len() {
            while finished < max {
                let Some(offset) = self.ready[priority].first().filter(|o| *o < below) else {
                    break;
                };
                writes.extend(self.cancel(offset).unwrap_or_default());
                finished += 1;
            }
        }
        writes
    }

    /// Finishes those of `sized` — `(offset, size)`, from the log — that are still ready, for a
    /// full queue's drop-oldest and dead-letter-oldest policies. Returns each removed offset
    /// with its attempts so far.
    /// With `dead_letter` they are parked instead of finished: the caller appends their dead
    /// letters, then finishes them (`QueueCore::finish_parked`).
    pub fn remove_ready(
        &mut self,
        sized: &[(u64, u64)],
        dead_letter: bool,
    ) -> (Vec<(u64, u32)>, Vec<StateWrite>) {
        let mut removed = Vec::new();
        let mut writes = Vec::new();
        for &(offset, size) in sized {
            let Position::Ready { priority } = self.position(offset) else {
                continue;
            };
            self.ready[priority as usize].remove(offset);
            removed.push((offset, self.attempts_of(offset).0));
            self.bytes_finished_sized(offset, size);
            if dead_letter {
                self.park(offset);
            } else {
                writes.extend(self.finish(offset));
            }
        }
        (removed, writes)
    }

    /// Removes every message not leased: ready and waiting become finished, including timers
    /// beyond the in-memory window (read from `source`). Returns the writes.
    pub fn purge(&mut self, source: &dyn TimerSource) -> Vec<StateWrite> {
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
        loop {
            let timers: Vec<(i64, u64)> = std::mem::take(&mut self.timers).into_iter().collect();
            for (due, offset) in timers {
                writes.push(StateWrite::Delete {
                    table: keys::TABLE,
                    key: keys::timer(&self.name, due, offset),
                });
                // A timer beyond the window may belong to a message cancelled meanwhile.
                if self.is_unfinished(offset) {
                    writes.extend(self.finish(offset));
                }
            }
            if self.timers_complete {
                break;
            }
            // Each pass loads the next stored page after the last one, so this ends.
            self.reload_timers(source);
        }
        self.timers_beyond = 0;
        self.bytes_purged();
        writes
    }
}
