//! Settling a consumer's deliveries: ack (waited for, or lazily), nack, progress, term, and
//! removing what every removing consumer acknowledged (work-queue and interest retention).

use std::sync::Arc;

use omnibus_storage::StateWrite;

use super::{AckMode, Consumer, ConsumerState};
use crate::engine::{now_ms, Engine};
use crate::error::{EngineError, Result};
use crate::queue::core::Position;
use crate::queue::Durable;

impl Engine {
    /// Acknowledges a delivery (with [`AckMode::All`], every earlier pending one too) and
    /// answers once the ack is durable: it is never delivered again, even after a kill -9.
    /// For an ack whose sender waits for the answer (a JetStream double ack).
    pub async fn consumer_ack(
        &self,
        stream: &str,
        name: &str,
        offset: u64,
        attempt: u32,
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        let writes = ack_writes(&consumer, offset, attempt)?;
        consumer.commit(writes, Durable::default()).await?;
        // Room under max_ack_pending for a reader waiting on it.
        consumer.changed.notify_waiters();
        Ok(())
    }

    /// [`Engine::consumer_ack`] answered as soon as the ack is settled in memory: it is
    /// committed with the consumer's next lazy batch (within `LAZY_WINDOW` plus one group
    /// commit), so a crash before that delivers the record again — never loses it. For acks
    /// nobody waits for (a plain JetStream ack).
    pub async fn consumer_ack_lazily(
        &self,
        stream: &str,
        name: &str,
        offset: u64,
        attempt: u32,
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        let writes = ack_writes(&consumer, offset, attempt)?;
        consumer.changed.notify_waiters();
        consumer.commit_lazily(writes, Durable::default()).await
    }

    /// [`Engine::consumer_ack_lazily`] for several deliveries at once — the plain acks a
    /// client sent one after another — with one consumer lookup, one lock and one lazy
    /// commit for all of them, so an ack costs a few map updates rather than a commit call
    /// of its own. Acks of deliveries that are unknown or already settled are skipped, as
    /// acking each would ignore them. Another error stops at that ack: those before it are
    /// still committed, and the error is returned.
    pub async fn consumer_ack_many_lazily(
        &self,
        stream: &str,
        name: &str,
        acks: &[(u64, u32)],
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        consumer.check_healthy()?;
        let mut writes = Vec::new();
        let mut failed = None;
        {
            let mut state = consumer.lock();
            for &(offset, attempt) in acks {
                match ack_writes_locked(&consumer, &mut state, offset, attempt) {
                    Ok(more) => writes.extend(more),
                    Err(EngineError::UnknownDelivery(_) | EngineError::StaleAttempt(_)) => {}
                    Err(error) => {
                        failed = Some(error);
                        break;
                    }
                }
            }
        }
        consumer.changed.notify_waiters();
        consumer.commit_lazily(writes, Durable::default()).await?;
        failed.map_or(Ok(()), Err)
    }

    /// A failed delivery: redelivered after `delay_ms` (at once without one), unless its
    /// deliveries are used up. Answered once durable.
    pub async fn consumer_nack(
        &self,
        stream: &str,
        name: &str,
        offset: u64,
        attempt: u32,
        delay_ms: Option<u64>,
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        consumer.check_healthy()?;
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
        consumer.commit(writes, Durable::prepaid(prepaid)).await?;
        consumer.changed.notify_waiters();
        Ok(())
    }

    /// Work in progress: the delivery's ack deadline starts again (memory only: a lease is
    /// not durable).
    pub async fn consumer_progress(
        &self,
        stream: &str,
        name: &str,
        offset: u64,
        attempt: u32,
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        consumer.check_healthy()?;
        let wait = consumer
            .ack_wait_of(attempt)
            .unwrap_or(consumer.stored.spec.ack_wait_ms);
        consumer
            .lock()
            .core
            .extend(offset, attempt, wait, now_ms())?;
        Ok(())
    }

    /// Stops redelivering a record: it is finished without being processed. Answered once
    /// durable.
    pub async fn consumer_term(
        &self,
        stream: &str,
        name: &str,
        offset: u64,
        attempt: u32,
        reason: &str,
    ) -> Result<()> {
        let consumer = self.consumer(stream, name)?;
        consumer.check_healthy()?;
        let writes = {
            let mut state = consumer.lock();
            let (mut writes, _letter) = state.core.term(offset, attempt, reason)?;
            writes.extend(state.core.finish_parked(&[offset]));
            writes
        };
        consumer.commit(writes, Durable::default()).await?;
        consumer.changed.notify_waiters();
        Ok(())
    }

    /// For the maintenance pass (blocking): removes what removing consumers acknowledged,
    /// in case a scheduled removal was lost (a restart) or failed.
    pub(crate) fn remove_acked_blocking(&self) {
        let groups: Vec<Arc<super::removal::RemovalGroup>> = self
            .consumers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|consumer| consumer.removal.get().cloned())
            .collect();
        for group in groups {
            group.remove_blocking();
        }
    }
}

/// What acknowledging `offset` (with [`AckMode::All`], every earlier pending delivery too)
/// writes.
fn ack_writes(consumer: &Consumer, offset: u64, attempt: u32) -> Result<Vec<StateWrite>> {
    consumer.check_healthy()?;
    let mut state = consumer.lock();
    ack_writes_locked(consumer, &mut state, offset, attempt)
}

/// [`ack_writes`] under the consumer's lock, held by the caller.
fn ack_writes_locked(
    consumer: &Consumer,
    state: &mut ConsumerState,
    offset: u64,
    attempt: u32,
) -> Result<Vec<StateWrite>> {
    let writes = match consumer.stored.spec.ack {
        AckMode::All => {
            let mut writes = Vec::new();
            for earlier in state.core.leased_offsets() {
                if earlier > offset {
                    break;
                }
                if let Position::Leased(lease) = state.core.position(earlier) {
                    writes.extend(state.core.ack(earlier, lease.attempt)?);
                }
            }
            writes
        }
        _ => state.core.ack(offset, attempt)?,
    };
    Ok(writes)
}
