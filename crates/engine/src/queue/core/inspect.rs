//! Read-only questions about a queue's messages: where an offset is, which are ready,
//! waiting or leased. Used by the jobs layer to derive a job's status and to list jobs.

use super::{Position, QueueCore};

impl QueueCore {
    /// Where an offset is now.
    pub fn position(&self, offset: u64) -> Position {
        // A parked offset is on its way to the dead letters: finished as far as anyone asks.
        if offset < self.floor
            || self.finished_above.contains(offset)
            || self.parked.contains(&offset)
        {
            return Position::Finished;
        }
        if offset >= self.end {
            return Position::Unknown;
        }
        if let Some(lease) = self.leases.get(&offset) {
            return Position::Leased(lease.clone());
        }
        if let Some(priority) = self.ready.iter().position(|set| set.contains(offset)) {
            return Position::Ready {
                priority: priority as u8,
            };
        }
        if let Some((due, _)) = self.timers.iter().find(|(_, o)| *o == offset) {
            return Position::Waiting { due_ms: Some(*due) };
        }
        Position::Waiting { due_ms: None }
    }

    /// Ready offsets after `after`, ascending by offset, at most `limit`.
    pub fn ready_after(&self, after: Option<u64>, limit: usize) -> Vec<u64> {
        let mut all: Vec<u64> = self
            .ready
            .iter()
            .flat_map(|set| set.iter_after(after).take(limit))
            .collect();
        all.sort_unstable();
        all.truncate(limit);
        all
    }

    /// Unfinished offsets (ready, waiting or leased) after `after`, ascending, at most
    /// `limit`: registered offsets from the ack floor on, minus the finished ones above it.
    pub fn unfinished_after(&self, after: Option<u64>, limit: usize) -> Vec<u64> {
        let mut next = after.map_or(self.floor, |a| (a + 1).max(self.floor));
        let mut finished = self.finished_above.iter_ranges().peekable();
        let mut all = Vec::new();
        while next < self.end && all.len() < limit {
            match finished.peek() {
                Some(&(_, end)) if end <= next => {
                    finished.next();
                }
                Some(&(start, end)) if start <= next => next = end,
                _ => {
                    all.push(next);
                    next += 1;
                }
            }
        }
        all
    }

    /// Offsets waiting on an in-memory timer, ascending by offset.
    pub fn waiting_offsets(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.timers.iter().map(|(_, o)| *o).collect();
        all.sort_unstable();
        all
    }

    pub fn leased_offsets(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.leases.keys().copied().collect();
        all.sort_unstable();
        all
    }

    /// Unfinished offsets that failed at least once and are not leased now (retrying).
    pub fn retrying_count(&self) -> u64 {
        self.attempts
            .iter()
            .filter(|(offset, (_, error))| !error.is_empty() && !self.leases.contains_key(offset))
            .count() as u64
    }

    /// Attempts so far and the last error of an unfinished offset.
    pub fn attempts_of(&self, offset: u64) -> (u32, String) {
        self.attempts.get(&offset).cloned().unwrap_or_default()
    }
}
