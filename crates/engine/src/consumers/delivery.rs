//! Handing a consumer's records out (next: a lease) and waiting until something may be
//! delivered.
//!
//! Each call takes the consumer's lock only for its state machine's work, then commits what
//! that work wrote (`commit.rs`). Deliveries are handed out only once their attempt is durably
//! counted (`queue/core/leases.rs`): usually it already is, and the writes (a frontier raised
//! ahead, timers fired) ride the next lazy batch; otherwise they are committed first. Records
//! are read through the queues' reader, which keeps the last read decoded: a pull of one
//! record after another decodes each batch once, not once per pull.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use omnibus_storage::StateWrite;
use omnibus_types::{pattern_matches, Record};

use super::{AckMode, Consumer, ConsumerState, WORKER};
use crate::engine::{now_ms, Engine};
use crate::error::Result;
use crate::queue::{message_bytes, Durable, StoredTimers};
use crate::streams::registry::off_the_runtime;

/// Lease rounds one `consumer_next` call makes when records are passed over (filtered out,
/// or gone from the stream), so a call ends even on a stream of nothing but other subjects.
pub(super) const ROUNDS_MAX: usize = 16;

/// What one lease round decided: (offset, attempt) grants, and the writes that go before
/// handing them out — waited for when `wait`, else lazily.
pub(super) struct LeaseRound {
    pub(super) grants: Vec<(u64, u32)>,
    pub(super) writes: Vec<StateWrite>,
    pub(super) wait: bool,
    pub(super) durable: Durable,
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
        consumer.check_healthy()?;
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
                writes,
                wait,
                durable,
            } = self.lease_round(&consumer, max - out.len());
            if wait {
                consumer.commit(writes, durable).await?;
            } else {
                consumer.commit_lazily(writes, durable).await?;
            }
            if grants.is_empty() {
                break;
            }
            let offsets: Vec<u64> = grants.iter().map(|(offset, _)| *offset).collect();
            let mut records = read_records(&consumer, offsets).await?;
            let mut settle = Vec::new();
            {
                let mut state = consumer.lock();
                settle_sizes(&mut state.core, &grants, &records);
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
            if consumer.stored.spec.ack == AckMode::None {
                // At most once: settled on disk before it is handed out.
                consumer.commit(settle, Durable::default()).await?;
            } else {
                // Passed over or deferred: a crash only makes them pass by again.
                consumer.commit_lazily(settle, Durable::default()).await?;
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
        self.lease_round_locked(consumer, &mut consumer.lock(), max)
    }

    /// [`Engine::lease_round`] under a lock the caller holds.
    pub(super) fn lease_round_locked(
        &self,
        consumer: &Consumer,
        state: &mut ConsumerState,
        max: usize,
    ) -> LeaseRound {
        let now = now_ms();
        let mut writes = Vec::new();
        let high_watermark = consumer.log.high_watermark();
        writes.extend(skip_to_log_start(consumer, state, high_watermark));
        let end = state.core.end();
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
            writes,
            wait: leased.wait,
            durable: Durable {
                frontiers: leased.frontiers,
                // Retries that expired leases counted (their next delivery) just now.
                prepaid: state.core.take_prepay_pending(),
            },
        }
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
}

/// Tells the core the sizes of the records of `grants` (0 for one gone from the stream). A
/// lease leaves its offset among those whose size the core waits to be told
/// (`queue/core/bytes.rs`); a consumer that never told it kept one entry for every record it
/// ever delivered, a map that only grew.
pub(super) fn settle_sizes(
    core: &mut crate::queue::core::QueueCore,
    grants: &[(u64, u32)],
    records: &HashMap<u64, Record>,
) {
    for (offset, _) in grants {
        let size = records.get(offset).map_or(0, message_bytes);
        core.settle_size(*offset, size);
    }
}

/// Ready offsets below the log's start, finished per round at most: bounds the time the
/// consumer's lock is held when retention removed a long stretch at once.
const GONE_PER_ROUND_MAX: usize = 100_000;

/// Passes over what the log no longer has (retention or a trim removed records the consumer
/// had not reached) in one step, instead of leasing gone offsets a few at a time: a small
/// read (`COUNT 1`, `fetch(1)`) would otherwise answer nothing for many calls while records
/// wait. Ready offsets below the start are finished; a consumer that had settled everything
/// and registered nothing the log still has starts again at the start. Leased and waiting
/// offsets below the start end as before (their read finds nothing and passes them over).
fn skip_to_log_start(
    consumer: &Consumer,
    state: &mut ConsumerState,
    high_watermark: u64,
) -> Vec<StateWrite> {
    let start = consumer.log.log_start_offset();
    if state.core.floor() >= start {
        return Vec::new();
    }
    let mut writes = state.core.finish_ready_below(start, GONE_PER_ROUND_MAX);
    let core = &state.core;
    if core.end() >= start || core.floor() != core.end() {
        return writes;
    }
    let counts = core.counts();
    if counts.ready + counts.delayed + counts.leased != 0 {
        return writes;
    }
    state.core = crate::queue::reset_core(
        &consumer.core_name,
        super::policy(&consumer.stored.spec),
        start,
        high_watermark.max(start),
    );
    state.delivered_end = state.delivered_end.max(start);
    writes.push(StateWrite::Put {
        table: crate::queue::keys::TABLE,
        key: crate::queue::keys::floor(&consumer.core_name),
        value: start.to_be_bytes().to_vec(),
    });
    writes
}

/// The records at `offsets` still in the stream, from the consumer's reader: without a file
/// read when its kept read holds them all (a pull of the record after the last one), else
/// off the async runtime.
pub(super) async fn read_records(
    consumer: &Arc<Consumer>,
    offsets: Vec<u64>,
) -> Result<HashMap<u64, Record>> {
    let start = consumer.log.log_start_offset();
    if offsets.iter().all(|offset| *offset >= start) {
        if let Some(records) = consumer.reader.cached(&offsets) {
            return Ok(offsets.into_iter().zip(records).collect());
        }
    }
    let reader = consumer.reader.clone();
    off_the_runtime(move || reader.read_present(&offsets)).await
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
    pub(crate) fn ack_wait_of(&self, attempt: u32) -> Option<u64> {
        let backoff = &self.stored.spec.backoff_ms;
        let index = (attempt as usize)
            .saturating_sub(1)
            .min(backoff.len().checked_sub(1)?);
        backoff.get(index).copied()
    }
}
