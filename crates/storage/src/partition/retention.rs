//! Retention: deleting whole closed segments by age and by total size. The active segment is
//! never deleted, so the newest records always survive.

use std::sync::atomic::Ordering;

use super::{now_ms, PartitionLog};
use crate::error::Result;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
}

impl PartitionLog {
    /// Deletes closed segments whose newest record is older than `retention_ms`, then the
    /// oldest closed segments while the partition stays at or above `retention_bytes` without
    /// them.
    pub fn enforce_retention(&self) -> Result<RetentionOutcome> {
        self.enforce_retention_at(now_ms())
    }

    pub fn enforce_retention_at(&self, now: i64) -> Result<RetentionOutcome> {
        let mut outcome = RetentionOutcome::default();
        let doomed = {
            let mut segments = self.segments.write().unwrap_or_else(|p| p.into_inner());
            let mut total: u64 = segments.values().map(|s| s.written_bytes()).sum();
            let mut doomed = Vec::new();
            while segments.len() > 1 {
                let (base, oldest) = segments
                    .iter()
                    .next()
                    .map(|(b, s)| (*b, s.clone()))
                    .expect("non-empty");
                let too_old = self.config.retention_ms.is_some_and(|ms| {
                    oldest.max_timestamp() != i64::MIN
                        && now.saturating_sub(oldest.max_timestamp()) > ms as i64
                });
                let too_big = self
                    .config
                    .retention_bytes
                    .is_some_and(|max| total.saturating_sub(oldest.written_bytes()) >= max);
                if !(too_old || too_big) {
                    break;
                }
                segments.remove(&base);
                total -= oldest.written_bytes();
                outcome.segments_deleted += 1;
                outcome.bytes_deleted += oldest.written_bytes();
                doomed.push(oldest);
            }
            if let Some(first) = segments.keys().next() {
                self.log_start.fetch_max(*first, Ordering::AcqRel);
            }
            doomed
        };
        // Readers holding a segment keep reading it: an unlinked file stays readable.
        for segment in doomed {
            segment.delete_files(self.io.as_ref(), &self.dir)?;
        }
        Ok(outcome)
    }
}
