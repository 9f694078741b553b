//! Handing a consumer's records out and settling them: next (lease), ack, nack, progress,
//! term, and waiting until something may be delivered.
//!
//! Each call takes the consumer's lock only for its state machine's work, then commits the
//! writes that work produced to the state store (fsynced) before it answers, so what a caller
//! was told is what a restart finds. Deliveries are handed out only once their attempt is
//! durably counted (`queue/core/leases.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use omnibus_storage::StateWrite;
use omnibus_types::{pattern_matches, Record};

use super::{AckMode, Consumer, WORKER};
use crate::engine::{now_ms, Engine};
use crate::error::Result;
use crate::model::FetchRequest;
use crate::queue::StoredTimers;

/// Lease rounds one `consumer_next` call makes when records are passed over (filtered out,
/// or gone from the stream), so a call ends even on a stream of nothing but other subjects.
pub(super) const ROUNDS_MAX: usize = 16;
/// Bytes read per fetch of a run of consecutive offsets, at most.
const READ_BYTES: usize = 8 * 1024 * 1024;
/// Bytes read per offset wanted (and at least [`READ_BYTES_MIN`]): a fetch decodes every batch
/// it reads, and a pull of one message used to read — and decode — up to 8 MiB of the stream
/// after it: 223 jobs/s instead of thousands on a 20,000-message work queue, falling as the
/// stream grew. A fetch returns at least one whole batch, so larger records still arrive (the
/// loop below reads on).
const READ_BYTES_PER_OFFSET: usize = 1024;
const READ_BYTES_MIN: usize = 16 * 1024;

/// What one lease round decided: (offset, attempt) grants, the frontiers its writes raise,
/// and the writes to commit before handing the grants out.
pub(super) struct LeaseRound {
    pub(super) grants: Vec<(u64, u32)>,
    pub(super) frontiers: Vec<(usize, u64)>,
    pub(super) writes: Vec<StateWrite>,
}

/// One record handed to a reader of a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerDelivery {
    pub record: Record,
    /// 1 for the first delivery of the record, 2 for the second…
    pub attempt: u32,
    /// The consumer's count of deliveries, this one included (JetStream's consumer sequence).
    pub delivery_count: u64,
    /// Records not yet delivered after this batch.
    pub pending: u64,
}

impl Engine {
    /// Leases up to `max` records (fewer once `max_bytes` of values, if not 0, are reached;
    /// always at least one if any is ready) and answers them once their attempts are durable.
    pub async fn consumer_next(
        &self,
        stream: &str,
        name: &str,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<ConsumerDelivery>> {
        self.check_running()?;
        let consumer = self.consumer(stream, name)?;
        if consumer.stored.spec.owned_pending {
            // Its deliveries are owned by reader names (`owned.rs`): leasing here would hand
            // records out that no pending entry holds.
            return Err(crate::EngineError::InvalidConfig(format!(
                "consumer {name:?} hands records out with owners (a Redis consumer group)"
            )));
        }
        let mut out: Vec<ConsumerDelivery> = Vec::new();
        let mut bytes = 0usize;
        for _ in 0..ROUNDS_MAX {
            if out.len() >= max || (max_bytes > 0 && bytes >= max_bytes) {
                break;
            }
            let LeaseRound {
                grants,
                frontiers,
                writes,
            } = self.lease_round(&consumer, max - out.len());
            if !writes.is_empty() {
                self.state.commit(writes).await?;
            }
            consumer.lock().core.frontiers_durable(&frontiers);
            if grants.is_empty() {
                break;
            }
            let offsets: Vec<u64> = grants.iter().map(|(offset, _)| *offset).collect();
            let mut records = self.read_offsets(&consumer, &offsets).await?;
            let mut settle = Vec::new();
            {
                let mut state = consumer.lock();
                let now = now_ms();
                for (offset, attempt) in grants {
                    let wanted = records
                        .remove(&offset)
                        .filter(|record| consumer.wants(record));
                    let Some(record) = wanted else {
                        // Passed over: another subject, or retention removed it.
                        settle.extend(state.core.ack(offset, attempt).unwrap_or_default());
                        continue;
                    };
                    let size = record.value.as_ref().map_or(0, |v| v.len());
                    if max_bytes > 0 && !out.is_empty() && bytes + size > max_bytes {
                        // Over the byte budget: back to ready, this attempt not counted.
                        settle.extend(state.core.defer(offset, attempt, now));
                        continue;
                    }
                    bytes += size;
                    if let Some(wait) = consumer.ack_wait_of(attempt) {
                        let _ = state.core.extend(offset, attempt, wait, now);
                    }
                    if consumer.stored.spec.ack == AckMode::None {
                        settle.extend(state.core.ack(offset, attempt).unwrap_or_default());
                    }
                    state.delivered_count += 1;
                    state.delivered_end = state.delivered_end.max(offset + 1);
                    out.push(ConsumerDelivery {
                        record,
                        attempt,
                        delivery_count: state.delivered_count,
                        pending: 0,
                    });
                }
            }
            if !settle.is_empty() {
                self.state.commit(settle).await?;
                self.remove_acked(&consumer).await?;
            }
        }
        let pending = consumer.info().pending;
        for delivery in &mut out {
            delivery.pending = pending;
        }
        Ok(out)
    }

    /// Registers what the stream appended, fires due timers and expired leases, and leases.
    pub(super) fn lease_round(&self, consumer: &Consumer, max: usize) -> LeaseRound {
        let mut state = consumer.lock();
        let now = now_ms();
        let mut writes = Vec::new();
        let end = state.core.end();
        let high_watermark = consumer.log.high_watermark();
        if high_watermark > end {
            writes.extend(state.core.register(end, high_watermark, 0, None, now));
        }
        let timers = StoredTimers {
            state: &self.state,
            queue: &consumer.core_name,
        };
        let (fired, dead) = state.core.tick(now, &timers);
        writes.extend(fired);
        // No dead-letter stream: a record whose deliveries ran out is finished.
        let exhausted: Vec<u64> = dead.iter().map(|letter| letter.offset).collect();
        writes.extend(state.core.finish_parked(&exhausted));
        let leased = state.core.lease(WORKER, max, now);
        writes.extend(leased.writes);
        let exhausted: Vec<u64> = leased.exhausted.iter().map(|l| l.offset).collect();
        writes.extend(state.core.finish_parked(&exhausted));
        let grants = leased
            .grants
            .iter()
            .map(|grant| (grant.offset, grant.attempt))
            .collect();
        LeaseRound {
            grants,
            frontiers: leased.frontiers,
            writes,
        }
    }

    /// The records at `offsets` still in the stream, read a run of consecutive offsets at a
    /// time.
    pub(super) async fn read_offsets(
        &self,
        consumer: &Consumer,
        offsets: &[u64],
    ) -> Result<HashMap<u64, Record>> {
        let mut sorted = offsets.to_vec();
        sorted.sort_unstable();
        let mut found = HashMap::new();
        let mut index = 0;
        while index < sorted.len() {
            let first = sorted[index];
            let mut last = first;
            while index + 1 < sorted.len() && sorted[index + 1] == last + 1 {
                index += 1;
                last = sorted[index];
            }
            index += 1;
            let (start, end) = (
                consumer.log.log_start_offset(),
                consumer.log.high_watermark(),
            );
            let mut offset = first.max(start);
            while offset <= last && offset < end {
                let fetched = self
                    .fetch(FetchRequest {
                        stream: consumer.stored.spec.stream.clone(),
                        partition: 0,
                        offset,
                        max_records: (last - offset + 1) as usize,
                        max_bytes: ((last - offset + 1) as usize)
                            .saturating_mul(READ_BYTES_PER_OFFSET)
                            .clamp(READ_BYTES_MIN, READ_BYTES),
                        wait_ms: 0,
                    })
                    .await?;
                if fetched.next_offset <= offset {
                    break;
                }
                offset = fetched.next_offset;
                for record in fetched.records {
                    if record.offset >= first && record.offset <= last {
                        found.insert(record.offset, record);
                    }
                }
            }
        }
        Ok(found)
    }

    /// Waits until the consumer may have something to deliver — records appended, a retry or
    /// an ack deadline due, a nack — or `timeout` passes.
    pub async fn consumer_wait(&self, stream: &str, name: &str, timeout: Duration) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        let changed = consumer.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let (deliverable, deadline, end) = {
            let state = consumer.lock();
            let counts = state.core.counts();
            let room = (counts.leased as usize) < state.core.policy().max_unacked_per_worker;
            let end = state.core.end();
            let appended = consumer.log.high_watermark() > end;
            (
                room && (counts.ready > 0 || appended),
                state.core.next_deadline(),
                end,
            )
        };
        if deliverable {
            return Ok(());
        }
        let mut wait = timeout;
        if let Some(deadline) = deadline {
            let until = Duration::from_millis(deadline.saturating_sub(now_ms()).max(0) as u64);
            wait = wait.min(until);
        }
        let mut progress = consumer.log.watch();
        let appended = progress.wait_for(|p| p.has_news_after(end));
        tokio::select! {
            _ = appended => {}
            _ = changed => {}
            _ = tokio::time::sleep(wait) => {}
        }
        Ok(())
    }

    /// Acknowledges a delivery (with [`AckMode::All`], every earlier pending one too).
    pub async fn consumer_ack(
        &self,
        stream: &str,
        name: &str,
        offset: u64,
        attempt: u32,
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        let writes = {
            let mut state = consumer.lock();
            match consumer.stored.spec.ack {
                AckMode::All => {
                    let mut writes = Vec::new();
                    for earlier in state.core.leased_offsets() {
                        if earlier > offset {
                            break;
                        }
                        if let crate::queue::core::Position::Leased(lease) =
                            state.core.position(earlier)
                        {
                            writes.extend(state.core.ack(earlier, lease.attempt)?);
                        }
                    }
                    writes
                }
                _ => state.core.ack(offset, attempt)?,
            }
        };
        self.state.commit(writes).await?;
        // Room under max_ack_pending for a reader waiting on it.
        consumer.changed.notify_waiters();
        self.remove_acked(&consumer).await
    }

    /// A failed delivery: redelivered after `delay_ms` (at once without one), unless its
    /// deliveries are used up.
    pub async fn consumer_nack(
        &self,
        stream: &str,
        name: &str,
        offset: u64,
        attempt: u32,
        delay_ms: Option<u64>,
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        let (writes, prepaid) = {
            let mut state = consumer.lock();
            let delay = delay_ms.unwrap_or(0);
            let (mut writes, dead) =
                state
                    .core
                    .nack(offset, attempt, Some(delay), "negative ack", now_ms())?;
            let exhausted: Vec<u64> = dead.iter().map(|letter| letter.offset).collect();
            writes.extend(state.core.finish_parked(&exhausted));
            (writes, state.core.take_prepay_pending())
        };
        self.state.commit(writes).await?;
        consumer.lock().core.prepaid_durable(&prepaid);
        consumer.changed.notify_waiters();
        Ok(())
    }

    /// Work in progress: the delivery's ack deadline starts again.
    pub async fn consumer_progress(
        &self,
        stream: &str,
        name: &str,
        offset: u64,
        attempt: u32,
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        let wait = consumer
            .ack_wait_of(attempt)
            .unwrap_or(consumer.stored.spec.ack_wait_ms);
        consumer
            .lock()
            .core
            .extend(offset, attempt, wait, now_ms())?;
        Ok(())
    }

    /// Stops redelivering a record: it is finished without being processed.
    pub async fn consumer_term(
        &self,
        stream: &str,
        name: &str,
        offset: u64,
        attempt: u32,
        reason: &str,
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        let writes = {
            let mut state = consumer.lock();
            let (mut writes, _letter) = state.core.term(offset, attempt, reason)?;
            writes.extend(state.core.finish_parked(&[offset]));
            writes
        };
        self.state.commit(writes).await?;
        consumer.changed.notify_waiters();
        self.remove_acked(&consumer).await
    }

    /// Consumers that remove what they acknowledged (work-queue and interest retention)
    /// remove the records below the lowest of their ack floors: the log's start moves up to
    /// it. With one such consumer (a work queue) that is its own floor; with several, a
    /// record goes once every one of them has acknowledged it.
    async fn remove_acked(&self, consumer: &Consumer) -> Result<()> {
        if !consumer.stored.spec.remove_acked {
            return Ok(());
        }
        let stream = &consumer.stored.spec.stream;
        let removing: Vec<Arc<Consumer>> = self
            .consumers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|((s, _), c)| s == stream && c.stored.spec.remove_acked)
            .map(|(_, c)| c.clone())
            .collect();
        let Some(floor) = removing.iter().map(|c| c.lock().core.floor()).min() else {
            return Ok(());
        };
        if floor > consumer.log.log_start_offset() {
            self.delete_records(&consumer.stored.spec.stream, 0, Some(floor))
                .await?;
        }
        Ok(())
    }
}

impl Consumer {
    /// Whether the consumer's filter takes `record`.
    pub(super) fn wants(&self, record: &Record) -> bool {
        let filters = &self.stored.spec.filter_subjects;
        if filters.is_empty() {
            return true;
        }
        let subject = if record.subject.is_empty() {
            &self.stored.spec.stream
        } else {
            &record.subject
        };
        filters
            .iter()
            .any(|pattern| pattern_matches(pattern, subject))
    }

    /// The ack wait of attempt `attempt` when a backoff list sets it.
    fn ack_wait_of(&self, attempt: u32) -> Option<u64> {
        let backoff = &self.stored.spec.backoff_ms;
        let index = (attempt as usize)
            .saturating_sub(1)
            .min(backoff.len().checked_sub(1)?);
        backoff.get(index).copied()
    }
}
