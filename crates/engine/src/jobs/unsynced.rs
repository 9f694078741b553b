//! Final records of jobs completed on a queue with `batched` completions, from the answer
//! until their commit is durable. The queue's memory already says such a job is finished,
//! while the state store still holds its active record (or none): without this, reading the
//! job in that window would show it as dead or active. Readers look here first.
//!
//! Kept per queue, then per id: every completion inserts and later removes one entry, and a
//! key of (queue name, id) cost a copy of the name for each insert, lookup and removal. A
//! queue's map stays when it empties (a worker taking one job at a time empties it at every
//! commit, and building it again cost an allocation, a copy of the name and a rehash as it
//! grew); only a large one is dropped then, so its memory goes back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::model::Job;
use crate::queue::core::offset_hash::OffsetMap;

/// An emptied queue map with room for more than this many jobs is dropped.
const KEPT_CAPACITY_MAX: usize = 1024;

/// Bounded by the queue's outstanding lazy commits (`queue/commit.rs`).
#[derive(Default)]
pub struct UnsyncedFinals {
    queues: Mutex<HashMap<String, OffsetMap<Job>>>,
}

impl UnsyncedFinals {
    pub fn insert(&self, queue: &str, id: u64, job: Job) {
        let mut queues = self.lock();
        match queues.get_mut(queue) {
            Some(jobs) => {
                jobs.insert(id, job);
            }
            None => {
                let mut jobs = OffsetMap::default();
                jobs.insert(id, job);
                queues.insert(queue.to_string(), jobs);
            }
        }
    }

    pub fn get(&self, queue: &str, id: u64) -> Option<Job> {
        self.lock().get(queue)?.get(&id).cloned()
    }

    pub fn remove(&self, queue: &str, ids: &[u64]) {
        let mut queues = self.lock();
        let Some(jobs) = queues.get_mut(queue) else {
            return;
        };
        for id in ids {
            jobs.remove(id);
        }
        if jobs.is_empty() && jobs.capacity() > KEPT_CAPACITY_MAX {
            queues.remove(queue);
        }
    }

    /// Forgets every final record held for `queue` (deleted).
    pub fn forget_queue(&self, queue: &str) {
        self.lock().remove(queue);
    }

    /// A closure that forgets `ids` once their commit is durable.
    pub fn forget_when_durable(
        self: &Arc<Self>,
        queue: &str,
        ids: Vec<u64>,
    ) -> Box<dyn FnOnce() + Send> {
        let finals = self.clone();
        let queue = queue.to_string();
        Box::new(move || finals.remove(&queue, &ids))
    }

    /// Jobs held, over every queue.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().values().map(|jobs| jobs.len()).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, OffsetMap<Job>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobStatus;

    fn job(queue: &str, id: u64) -> Job {
        Job {
            id: id.to_string(),
            queue: queue.into(),
            name: "n".into(),
            payload: bytes::Bytes::new(),
            status: JobStatus::Completed,
            priority: 0,
            attempts: 1,
            max_attempts: 5,
            backoff: None,
            timeout_ms: None,
            unique_key: None,
            parent: None,
            progress: None,
            result: None,
            errors: Vec::new(),
            created_ms: 1,
            updated_ms: 2,
            run_at_ms: None,
            started_ms: Some(1),
            finished_ms: Some(2),
        }
    }

    #[test]
    fn finals_are_held_per_queue_until_forgotten() {
        let finals = Arc::new(UnsyncedFinals::default());
        finals.insert("a", 1, job("a", 1));
        finals.insert("a", 2, job("a", 2));
        finals.insert("b", 1, job("b", 1));
        assert_eq!(finals.get("a", 2).map(|job| job.queue), Some("a".into()));
        assert_eq!(finals.get("b", 1).map(|job| job.queue), Some("b".into()));
        assert_eq!(finals.get("b", 2), None);
        assert_eq!(finals.get("c", 1), None);
        finals.forget_when_durable("a", vec![1, 2])();
        assert_eq!(finals.get("a", 1), None);
        assert_eq!(finals.len(), 1);
        finals.remove("b", &[1]);
        finals.remove("missing", &[1]);
        assert_eq!(finals.len(), 0);
    }
}
