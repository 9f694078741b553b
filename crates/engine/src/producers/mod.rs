//! Idempotent producers (Kafka's producer id + epoch + sequence numbers): producer ids come from
//! a durable counter in the state store, and per (producer, stream, partition) the registry
//! remembers the epoch and the last few batches' sequence ranges, so that a retried batch is
//! answered with its original offsets instead of being written twice, a gap in the sequence
//! is refused, and a producer fenced by a newer epoch cannot write.
//!
//! The sequence state is kept in memory; a producer the registry does not know yet (after a
//! restart, or after it was evicted) starts from what the partition's log knows of it — its
//! last batches, kept by storage with snapshots at segment rolls — so a retry that straddles
//! a restart is answered with its original offsets, not written twice. A producer beyond the
//! log's bounds (10,000 producers per partition) is unknown: its first batch is accepted
//! whatever its sequence.
//!
//! Locking: the registry's map lock (a `std` mutex) is held only to find or insert an entry;
//! each entry has its own async mutex, held from the sequence check until the batch has its
//! offsets (not until it is durable), so two batches of one producer on one partition are
//! checked and ordered one at a time while their fsyncs can be shared. The map lock is never
//! held while an entry's lock is awaited.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use omnibus_storage::{PartitionLog, ProducerBatch, StateWrite};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::streams::raw_append::{inspect_raw_batch, PendingRawAppend, RawAppend};

const PRODUCER_IDS_TABLE: &str = "producer_ids";
const NEXT_PRODUCER_ID_KEY: &str = "next";
/// Batches remembered per producer and partition for duplicate detection: as many as the log
/// keeps for recovery (Kafka's five, matching `max.in.flight.requests.per.connection` for
/// idempotent producers).
pub const RECENT_BATCHES_MAX: usize = omnibus_storage::RECOVERED_BATCHES_MAX;
/// Most (producer, stream, partition) entries held; the least recently used goes first.
pub const PRODUCER_STATES_MAX: usize = 100_000;

/// The result of an idempotent append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducedBatch {
    /// Written now.
    Appended(RawAppend),
    /// A retry of a batch already written: its original offsets, nothing written.
    Duplicate(RawAppend),
}

impl ProducedBatch {
    pub fn offsets(&self) -> RawAppend {
        match self {
            ProducedBatch::Appended(offsets) | ProducedBatch::Duplicate(offsets) => *offsets,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct RecentBatch {
    first_sequence: i32,
    last_sequence: i32,
    offsets: RawAppend,
}

#[derive(Debug)]
struct PartitionProducer {
    epoch: i16,
    recent: VecDeque<RecentBatch>,
}

impl PartitionProducer {
    /// The state recovery found in the log for one producer (batches oldest first).
    fn recovered(log: &PartitionLog, batches: Vec<ProducerBatch>) -> Option<PartitionProducer> {
        let epoch = batches.last()?.epoch;
        let log_start_offset = log.log_start_offset();
        let recent = batches
            .into_iter()
            .filter(|b| b.epoch == epoch)
            .map(|b| RecentBatch {
                first_sequence: b.first_sequence,
                last_sequence: b.last_sequence,
                offsets: RawAppend {
                    first_offset: b.first_offset,
                    last_offset: b.last_offset,
                    log_start_offset,
                },
            })
            .collect();
        Some(PartitionProducer { epoch, recent })
    }
}

type Key = (i64, String, u32);

struct Entry {
    state: Arc<tokio::sync::Mutex<Option<PartitionProducer>>>,
    last_used: Instant,
}

/// Sequence state of idempotent producers. One per engine, shared by the front doors that
/// offer idempotent producing.
#[derive(Default)]
pub struct ProducerRegistry {
    entries: Mutex<HashMap<Key, Entry>>,
    /// Serializes id allocations (a read and a durable write of the counter).
    allocation: tokio::sync::Mutex<()>,
}

fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

impl ProducerRegistry {
    /// Allocates a fresh producer id from the durable counter: ids are never reused, even
    /// across restarts. The counter's write is group-committed, off the async runtime.
    pub async fn allocate_producer_id(&self, engine: &Engine) -> Result<i64, EngineError> {
        engine.check_running()?;
        let _serial = self.allocation.lock().await;
        let current = match engine.state.get(PRODUCER_IDS_TABLE, NEXT_PRODUCER_ID_KEY)? {
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                    EngineError::Internal("stored next producer id is not 8 bytes".into())
                })?;
                i64::from_be_bytes(bytes)
            }
            None => 0,
        };
        let next = current
            .checked_add(1)
            .ok_or_else(|| EngineError::Internal("producer ids exhausted".into()))?;
        engine
            .state
            .commit(vec![StateWrite::Put {
                table: PRODUCER_IDS_TABLE,
                key: NEXT_PRODUCER_ID_KEY.to_string(),
                value: next.to_be_bytes().to_vec(),
            }])
            .await?;
        Ok(current)
    }

    fn entry(&self, key: Key) -> Arc<tokio::sync::Mutex<Option<PartitionProducer>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(entry) = entries.get_mut(&key) {
            entry.last_used = now;
            return entry.state.clone();
        }
        if entries.len() >= PRODUCER_STATES_MAX {
            let oldest = entries
                .iter()
                .filter(|(_, e)| Arc::strong_count(&e.state) == 1)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        let state = Arc::new(tokio::sync::Mutex::new(None));
        entries.insert(
            key,
            Entry {
                state: state.clone(),
                last_used: now,
            },
        );
        state
    }

    /// Appends one producer batch (see [`Engine::append_raw`]); for an idempotent batch
    /// (producer id ≥ 0) checks its epoch and sequence first.
    pub async fn append(
        &self,
        engine: &Engine,
        stream: &str,
        partition: u32,
        batch: BytesMut,
    ) -> Result<ProducedBatch, EngineError> {
        self.enqueue(engine, stream, partition, batch)
            .await?
            .durable()
            .await
    }

    /// The first phase of [`ProducerRegistry::append`]: checks the batch and gives it its
    /// place in the partition; the returned [`PendingProduce`] resolves once it is durable.
    /// A connection that enqueues its batches one after another and waits for them later
    /// keeps their order and lets them share group commits.
    ///
    /// An idempotent batch is recorded as the producer's latest as soon as it has offsets,
    /// so the producer's next batch (possibly already in flight) is checked against it; a
    /// retry of it is answered with its offsets once they are durable, and with the
    /// partition's failure if they never become durable.
    pub async fn enqueue(
        &self,
        engine: &Engine,
        stream: &str,
        partition: u32,
        batch: BytesMut,
    ) -> Result<PendingProduce, EngineError> {
        let bytes_max = engine.raw_batch_bytes_max(stream)?;
        let info = inspect_raw_batch(&batch, bytes_max)?;
        if !info.is_idempotent() {
            let pending = engine.enqueue_raw(stream, partition, batch).await?;
            return Ok(PendingProduce {
                pending,
                duplicate: false,
            });
        }
        // Check the partition exists before making room for its state.
        let log = engine.stream(stream)?.partition(partition)?.clone();
        let entry = self.entry((info.producer_id, stream.to_string(), partition));
        let mut state = entry.lock().await;
        if state.is_none() {
            *state = log
                .producer_batches(info.producer_id)
                .and_then(|batches| PartitionProducer::recovered(&log, batches));
        }
        let first = info.base_sequence;
        let last = info.last_sequence();
        if let Some(current) = state.as_ref() {
            if info.producer_epoch < current.epoch {
                return Err(EngineError::ProducerFenced {
                    current: current.epoch,
                    received: info.producer_epoch,
                });
            }
            if info.producer_epoch == current.epoch {
                if let Some(seen) = current
                    .recent
                    .iter()
                    .find(|b| b.first_sequence == first && b.last_sequence == last)
                {
                    return Ok(PendingProduce {
                        pending: PendingRawAppend::earlier(log, seen.offsets),
                        duplicate: true,
                    });
                }
                if let Some(previous) = current.recent.back() {
                    let expected = next_sequence(previous.last_sequence);
                    if first != expected {
                        return Err(EngineError::OutOfOrderSequence {
                            expected,
                            received: first,
                        });
                    }
                }
            } else if first != 0 {
                // A new epoch starts its sequences again at zero.
                return Err(EngineError::OutOfOrderSequence {
                    expected: 0,
                    received: first,
                });
            }
        }
        let pending = engine.enqueue_raw(stream, partition, batch).await?;
        let producer = state.get_or_insert_with(|| PartitionProducer {
            epoch: info.producer_epoch,
            recent: VecDeque::new(),
        });
        if producer.epoch != info.producer_epoch {
            producer.epoch = info.producer_epoch;
            producer.recent.clear();
        }
        if producer.recent.len() == RECENT_BATCHES_MAX {
            producer.recent.pop_front();
        }
        producer.recent.push_back(RecentBatch {
            first_sequence: first,
            last_sequence: last,
            offsets: pending.offsets(),
        });
        Ok(PendingProduce {
            pending,
            duplicate: false,
        })
    }
}

/// A producer batch with its place in the partition, waiting to be acknowledged.
#[derive(Debug)]
pub struct PendingProduce {
    pending: PendingRawAppend,
    duplicate: bool,
}

impl PendingProduce {
    /// Resolves once the batch (or, for a retry, its original) is durable.
    pub async fn durable(self) -> Result<ProducedBatch, EngineError> {
        let offsets = self.pending.durable().await?;
        Ok(if self.duplicate {
            ProducedBatch::Duplicate(offsets)
        } else {
            ProducedBatch::Appended(offsets)
        })
    }
}

#[cfg(test)]
mod tests;
