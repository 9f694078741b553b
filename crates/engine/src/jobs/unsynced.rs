//! Final records of jobs completed on a queue with `batched` completions, from the answer
//! until their commit is durable. The queue's memory already says such a job is finished,
//! while the state store still holds its active record (or none): without this, reading the
//! job in that window would show it as dead or active. Readers look here first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::model::Job;

/// Bounded by the queue's outstanding lazy commits (`queue/commit.rs`).
#[derive(Default)]
pub struct UnsyncedFinals {
    jobs: Mutex<HashMap<(String, u64), Job>>,
}

impl UnsyncedFinals {
    pub fn insert(&self, queue: &str, id: u64, job: Job) {
        self.lock().insert((queue.to_string(), id), job);
    }

    pub fn get(&self, queue: &str, id: u64) -> Option<Job> {
        self.lock().get(&(queue.to_string(), id)).cloned()
    }

    pub fn remove(&self, queue: &str, ids: &[u64]) {
        let mut jobs = self.lock();
        for id in ids {
            jobs.remove(&(queue.to_string(), *id));
        }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}
