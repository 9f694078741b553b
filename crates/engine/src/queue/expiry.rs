//! Time-to-live at the head of a queue. A read that reaches an expired message finishes it
//! (`delivery.rs`), but a queue nobody reads would keep its expired messages for ever, and the
//! common "TTL queue dead-lettering into the work queue" delay line would stall. So the
//! queue's timer task also sweeps the head: it reads the oldest ready messages and takes out
//! those whose `omnibus.expires_ms` has passed — dead-lettered or dropped as the queue says —
//! as RabbitMQ expires its queue heads on a timer.
//!
//! Cost: nothing for a queue that never held a message with a TTL (`next_expiry_ms` stays at
//! `i64::MAX` after the first sweep at open). For one that did, a sweep runs when the earliest
//! expiry it knows of is due, and at least every second while it holds messages (a requeued
//! message or one beyond the page read may expire unseen); each reads at most
//! `SWEEP_PAGES × SWEEP_PAGE` records, usually from the read cache.

use std::sync::atomic::Ordering;

use omnibus_types::Record;

use super::overflow::message_bytes;
use super::runtime::{header_i64, Queue, EXPIRES_HEADER};
use crate::error::Result;

/// Ready messages read per page of a sweep.
const SWEEP_PAGE: usize = 64;
/// Pages one sweep reads while every message it finds has expired.
const SWEEP_PAGES: usize = 16;
/// How often a queue that has held messages with a TTL is swept while messages are ready.
const RESWEEP_MS: i64 = 1_000;

/// Why an expired message was dead-lettered (the AMQP door reads `expired` from it).
pub(super) const EXPIRED_REASON: &str = "message expired (TTL)";

impl Queue {
    /// Tells the timer task that a message expiring at `expires_ms` is now in the queue
    /// (called once it is registered, so a sweep that runs at once finds it).
    pub(super) fn note_expiry(&self, expires_ms: i64) {
        self.ttl_seen.store(true, Ordering::Release);
        let before = self.next_expiry_ms.fetch_min(expires_ms, Ordering::AcqRel);
        if expires_ms < before && expires_ms < self.timer_wake_at_ms.load(Ordering::Acquire) {
            self.timer_changed.notify_one();
        }
    }

    /// When the head of the queue should next be swept (ms since the epoch; `i64::MAX` for
    /// never, until a message with a TTL arrives).
    pub(super) fn next_expiry_ms(&self) -> i64 {
        self.next_expiry_ms.load(Ordering::Acquire)
    }

    /// Takes out the expired messages at the head of the ready queue if a sweep is due;
    /// returns how many.
    pub(crate) async fn expire_head(&self, now: i64) -> Result<u64> {
        if self.next_expiry_ms() > now {
            return Ok(0);
        }
        // Cleared first: an expiry noted while the sweep runs lowers it again.
        self.next_expiry_ms.store(i64::MAX, Ordering::Release);
        let swept = self.sweep(now).await;
        if swept.is_err() {
            // A failed read or commit must not stop the sweeps: try again in a while.
            self.next_expiry_ms
                .fetch_min(now + RESWEEP_MS, Ordering::AcqRel);
        }
        swept
    }

    /// One sweep from the head (see [`Queue::expire_head`]); plans the next.
    async fn sweep(&self, now: i64) -> Result<u64> {
        let mut expired_total = 0;
        let mut after = None;
        for _ in 0..SWEEP_PAGES {
            let candidates = self.lock().ready_after(after, SWEEP_PAGE);
            let Some(&last) = candidates.last() else {
                self.plan_next_sweep(i64::MAX, now);
                return Ok(expired_total);
            };
            let records = self.records(&candidates).await?;
            let mut expired = Vec::new();
            let mut expired_records = std::collections::HashMap::new();
            let mut earliest = i64::MAX;
            for (&offset, record) in candidates.iter().zip(records) {
                match header_i64(&record, EXPIRES_HEADER) {
                    Some(expires) if expires <= now => {
                        expired.push((offset, message_bytes(&record)));
                        expired_records.insert(offset, record);
                    }
                    Some(expires) => earliest = earliest.min(expires),
                    None => {}
                }
            }
            let all_expired = expired.len() == candidates.len();
            expired_total += self.expire(&expired, expired_records).await?;
            if earliest < i64::MAX {
                self.ttl_seen.store(true, Ordering::Release);
            }
            if !all_expired || candidates.len() < SWEEP_PAGE {
                self.plan_next_sweep(earliest, now);
                return Ok(expired_total);
            }
            after = Some(last);
        }
        // Every message read had expired: go on at once.
        self.next_expiry_ms.fetch_min(now, Ordering::AcqRel);
        Ok(expired_total)
    }

    fn plan_next_sweep(&self, earliest: i64, now: i64) {
        let mut next = earliest;
        // Messages with a TTL may become ready unseen: given back by a worker, or due
        // after a delay.
        let counts = self.lock().counts();
        if self.ttl_seen.load(Ordering::Acquire)
            && counts.ready + counts.leased + counts.delayed > 0
        {
            next = next.min(now + RESWEEP_MS);
        }
        self.next_expiry_ms.fetch_min(next, Ordering::AcqRel);
    }

    async fn expire(
        &self,
        expired: &[(u64, u64)],
        records: std::collections::HashMap<u64, Record>,
    ) -> Result<u64> {
        if expired.is_empty() {
            return Ok(0);
        }
        self.ttl_seen.store(true, Ordering::Release);
        let dead_letter = self.config.dead_letter_expired;
        self.remove_ready_records(expired, records, dead_letter, EXPIRED_REASON)
            .await
    }
}
