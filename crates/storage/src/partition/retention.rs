//! Retention: deleting whole closed segments by age and by total size. The active segment is
//! never deleted, so the newest records always survive.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{now_ms, PartitionLog};
use crate::error::Result;
use crate::segment::Segment;

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
        let mut total: Option<u64> = None;
        let doomed = self.remove_leading_segments(|oldest, segments| {
            let total = total
                .get_or_insert_with(|| segments.values().map(|s| s.written_bytes()).sum::<u64>());
            let too_old = self.config.retention_ms.is_some_and(|ms| {
                oldest.max_timestamp() != i64::MIN
                    && now.saturating_sub(oldest.max_timestamp()) > ms as i64
            });
            let too_big = self
                .config
                .retention_bytes
                .is_some_and(|max| total.saturating_sub(oldest.written_bytes()) >= max);
            if too_old || too_big {
                *total -= oldest.written_bytes();
            }
            too_old || too_big
        });
        for segment in &doomed {
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += segment.written_bytes();
        }
        self.delete_segment_files(doomed)?;
        self.counters
            .retained(outcome.segments_deleted as u64, outcome.bytes_deleted);
        Ok(outcome)
    }

    /// Removes closed segments from the front of the log while `doomed(first, all)` says so
    /// (never the active one), moves the log start past them, and returns them; their files
    /// are deleted by [`PartitionLog::delete_segment_files`] once the lock is released.
    pub(super) fn remove_leading_segments(
        &self,
        mut doomed: impl FnMut(&Arc<Segment>, &BTreeMap<u64, Arc<Segment>>) -> bool,
    ) -> Vec<Arc<Segment>> {
        let mut segments = self.segments.write().unwrap_or_else(|p| p.into_inner());
        let mut removed = Vec::new();
        while segments.len() > 1 {
            let (base, first) = segments
                .iter()
                .next()
                .map(|(b, s)| (*b, s.clone()))
                .expect("non-empty");
            if !doomed(&first, &segments) {
                break;
            }
            segments.remove(&base);
            removed.push(first);
        }
        if let Some(first) = segments.keys().next() {
            self.log_start.fetch_max(*first, Ordering::AcqRel);
        }
        removed
    }

    /// Deletes the files of segments already removed from the log. Readers holding one keep
    /// reading it: an unlinked file stays readable.
    pub(super) fn delete_segment_files(&self, removed: Vec<Arc<Segment>>) -> Result<()> {
        for segment in removed {
            segment.delete_files(self.io.as_ref(), &self.dir)?;
        }
        Ok(())
    }
}
