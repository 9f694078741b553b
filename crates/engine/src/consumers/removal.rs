//! Removing what a stream's removing consumers acknowledged (work-queue and interest
//! retention): the stream's start moves up to the lowest of their **durable** ack floors.
//!
//! Moving a log's start writes and fsyncs a checkpoint and its folder (two fsyncs), so it is
//! not done once per ack: a settlement that raised a durable floor schedules one removal for
//! the stream, which runs [`REMOVAL_DELAY`] later and covers everything settled meanwhile.
//! Nobody waits for it: an ack's answer promises the ack, and the record is never delivered
//! again either way; the stream's `messages` count lags by about the delay. Only durable
//! floors count, so a crash that takes an ack back (a lazy one still in its batch) never
//! leaves its record removed: it is delivered again. The maintenance pass removes what a
//! removal lost to a restart (`Engine::remove_acked_blocking`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use omnibus_storage::PartitionLog;

use super::Consumer;

/// How long a scheduled removal collects settlements before it runs.
pub const REMOVAL_DELAY: Duration = Duration::from_millis(20);

/// The removing consumers of one stream, which remove records together.
pub(crate) struct RemovalGroup {
    log: Arc<PartitionLog>,
    /// Weak: a deleted consumer drops out (its floor no longer holds records back).
    members: Mutex<Vec<Weak<Consumer>>>,
    /// A removal is scheduled and has not looked at the floors yet.
    scheduled: AtomicBool,
}

impl RemovalGroup {
    pub(crate) fn new(log: Arc<PartitionLog>) -> RemovalGroup {
        RemovalGroup {
            log,
            members: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
        }
    }

    pub(crate) fn join(&self, consumer: &Arc<Consumer>) {
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members.retain(|member| member.strong_count() > 0);
        members.push(Arc::downgrade(consumer));
    }

    /// The lowest durable ack floor of the group's consumers still open.
    pub(crate) fn floor(&self) -> Option<u64> {
        let members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members
            .iter()
            .filter_map(Weak::upgrade)
            .map(|consumer| consumer.durable_floor.load(Ordering::Acquire))
            .min()
    }

    /// Removes the records below the group's floor now (blocking: a checkpoint and fsyncs).
    pub(crate) fn remove_blocking(&self) {
        let Some(floor) = self.floor() else {
            return;
        };
        if floor <= self.log.log_start_offset() {
            return;
        }
        if let Err(error) = self.log.delete_records_before(floor) {
            tracing::error!("removing acknowledged records failed: {error}");
        }
    }

    /// Schedules a removal [`REMOVAL_DELAY`] from now, unless one is scheduled already.
    pub(crate) fn schedule(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let group = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REMOVAL_DELAY).await;
            // Cleared before the floors are read: a settlement after this schedules again.
            group.scheduled.store(false, Ordering::Release);
            let removing = group.clone();
            let _ = tokio::task::spawn_blocking(move || removing.remove_blocking()).await;
        });
    }
}
