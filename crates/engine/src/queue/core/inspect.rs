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

    /// [`QueueCore::counts`] with the offsets below `start` left out, and the delivered-again
    /// counts likewise: for a consumer of a log whose records below `start` are gone
    /// (retention, a trim), which are settled as far as anyone asks.
    pub fn counts_from(&self, start: u64) -> (super::Counts, u64, u64) {
        let ready_below: u64 = self.ready.iter().map(|set| set.len_below(start)).sum();
        let counts = self.counts();
        let delayed_below = self.timers.iter().filter(|(_, o)| *o < start).count() as u64;
        let leased_below = self.leases.keys().filter(|o| **o < start).count() as u64;
        let mut redelivered = 0;
        let mut awaiting = 0;
        for (offset, (attempts, _)) in self.attempts.iter().filter(|(o, _)| **o >= start) {
            if *attempts >= 2 {
                redelivered += 1;
            }
            if *attempts >= 1 && !self.leases.contains_key(offset) {
                awaiting += 1;
            }
        }
        let counts = super::Counts {
            ready: counts.ready - ready_below,
            delayed: counts.delayed.saturating_sub(delayed_below),
            leased: counts.leased - leased_below,
        };
        (counts, redelivered, awaiting)
    }

    /// The first unfinished offset at or above `start` (`end` when there is none): the floor
    /// of a consumer whose log lost everything below `start`.
    pub fn floor_from(&self, start: u64) -> u64 {
        let from = start.max(self.floor);
        match self.finished_above.range_containing(from) {
            // Ranges never touch: the first value past one is not in the set.
            Some((_, end)) => end,
            None => from,
        }
    }

    /// Attempts so far and the last error of an unfinished offset.
    pub fn attempts_of(&self, offset: u64) -> (u32, String) {
        self.attempts.get(&offset).cloned().unwrap_or_default()
    }
}
