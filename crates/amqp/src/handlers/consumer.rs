//! One task per basic.consume: it takes prefetch credit (`flow.rs`), leases that many
//! messages from the engine queue without waiting, and hands them to its connection's
//! session, which numbers and writes them.
//!
//! Consumers of one queue take turns, one message each as RabbitMQ hands them out
//! (`rotation.rs`).
//!
//! A consumer ends, and its client is sent basic.cancel, when its queue is deleted — also
//! when a queue of the same name is declared at once (`Queue::incarnation` tells them apart).
//!
//! An idle consumer polls nothing: when a receive comes back empty it waits on the queue's
//! [`ReadySignal`] (snapshotted before the receive, so a publish in between is not missed)
//! or on its [`Stop`], whichever comes first. The wait leases nothing, so a consumer
//! cancelled while idle stops at once and takes no message with it; a long-polling receive
//! would lease the next message published and have to requeue it (an attempt counted, the
//! message flagged `redelivered` although no client saw it). What it leased but had not
//! handed over when it notices the stop is given back; a message handed over after the
//! consumer is gone is requeued by the session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use omnibus_engine::queue::QueueRemoval;
use omnibus_engine::{Engine, EngineError};
use tokio::sync::{mpsc, Notify};

use super::flow::Flow;
use super::rotation::{self, Rotations};
use super::single_active::Turn;
use super::Outbound;

/// Pause before retrying after a receive failed for another reason than a missing queue.
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// Most messages leased per receive.
const RECEIVE_BATCH: u32 = 128;

/// A consumer's stop flag, awaitable so an idle consumer wakes when it is cancelled.
#[derive(Default)]
pub(crate) struct Stop {
    stopped: AtomicBool,
    notify: Notify,
}

impl Stop {
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub fn flag(&self) -> &AtomicBool {
        &self.stopped
    }

    /// Returns once stopped (at once if it is already).
    pub async fn stopped(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_stopped() {
            return;
        }
        notified.await;
    }
}

pub(crate) struct ConsumerTask {
    pub engine: Arc<Engine>,
    pub queue: String,
    /// The deletion of the queue it consumes (another under the same name is not its own),
    /// heard even while it waits for prefetch credit.
    pub removal: QueueRemoval,
    pub worker: String,
    pub channel: u16,
    pub consumer_tag: String,
    pub no_ack: bool,
    pub flow: Arc<Flow>,
    pub stop: Arc<Stop>,
    pub outbound: mpsc::Sender<Outbound>,
    /// The door's round-robin turns per queue (`rotation.rs`).
    pub rotations: Arc<Rotations>,
    /// On a single-active-consumer queue: its place in the order, held until it ends.
    pub turn: Option<Turn>,
}

impl ConsumerTask {
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        if let Some(turn) = &self.turn {
            if !turn.wait(&self.stop).await {
                return;
            }
        }
        let seat = rotation::join(&self.rotations, &self.queue, self.removal.incarnation());
        loop {
            // A no-ack consumer is not bound by prefetch (the spec); the bounded outbound
            // channel holds it back instead.
            let credit = if self.no_ack {
                RECEIVE_BATCH
            } else {
                match self.flow.try_take(&self.consumer_tag, RECEIVE_BATCH) {
                    0 => {
                        // Skipped by the rotation while it cannot take a message.
                        seat.set_eligible(false);
                        let taken = tokio::select! {
                            biased;
                            () = self.removal.removed() => {
                                self.gone().await;
                                return;
                            }
                            taken = self.flow.take(&self.consumer_tag, RECEIVE_BATCH, self.stop.flag()) => taken,
                        };
                        match taken {
                            Some(credit) => credit,
                            None => return,
                        }
                    }
                    credit => credit,
                }
            };
            seat.set_eligible(true);
            let mut want = credit;
            let rotating = !seat.alone();
            if rotating {
                let turn = tokio::select! {
                    biased;
                    () = self.removal.removed() => false,
                    turn = seat.turn(&self.stop) => turn,
                };
                if !turn {
                    self.give_back(credit);
                    if !self.stop.is_stopped() {
                        self.gone().await;
                    }
                    return;
                }
                // One each when messages trickle in; a backlog in even runs (`rotation.rs`).
                let ready = self.engine.queue_ready(&self.queue).unwrap_or(1);
                let share = ready / seat.eligible().max(1) as u64;
                want = credit.min(u32::try_from(share).unwrap_or(u32::MAX).max(1));
            }
            // Taken before the receive: a message made ready after it wakes the wait below.
            let received = match self.engine.ready_signal(&self.queue) {
                Ok(signal) if signal.incarnation() != self.removal.incarnation() => {
                    Err(EngineError::QueueNotFound(self.queue.clone()))
                }
                Ok(signal) if !self.stop.is_stopped() => self
                    .engine
                    .receive(&self.queue, &self.worker, want as usize, 0)
                    .await
                    .map(|deliveries| (deliveries, signal)),
                Ok(_) => {
                    self.give_back(credit);
                    return;
                }
                Err(error) => Err(error),
            };
            let deliveries = match received {
                Ok((deliveries, signal)) if deliveries.is_empty() => {
                    // Credit is not held while idle: the channel's other consumers may use it.
                    self.give_back(credit);
                    if rotating && self.engine.queue_ready(&self.queue).unwrap_or(0) > 0 {
                        // Ready messages this consumer may not take (a key-shared queue's
                        // keys held by others, a worker limit set through another door):
                        // the turn goes on, or the line would wait on it.
                        seat.pass();
                    }
                    tokio::select! {
                        biased;
                        () = self.stop.stopped() => return,
                        () = signal.changed() => continue,
                    }
                }
                Ok((deliveries, _)) => deliveries,
                Err(EngineError::QueueNotFound(_)) => {
                    self.give_back(credit);
                    self.gone().await;
                    return;
                }
                Err(error) => {
                    tracing::warn!(
                        queue = self.queue,
                        "an AMQP consumer's receive failed: {error}"
                    );
                    self.give_back(credit);
                    tokio::select! {
                        biased;
                        () = self.stop.stopped() => return,
                        () = tokio::time::sleep(RETRY_AFTER) => continue,
                    }
                }
            };
            if rotating {
                seat.served();
            }
            self.give_back(credit.saturating_sub(deliveries.len() as u32));
            let mut deliveries = deliveries.into_iter();
            while let Some(delivery) = deliveries.next() {
                if self.stop.is_stopped() {
                    self.requeue(
                        std::iter::once(delivery)
                            .chain(deliveries.by_ref())
                            .collect(),
                    )
                    .await;
                    return;
                }
                if self.no_ack {
                    // At most once: settled before it is sent, as RabbitMQ's autoack is.
                    if let Err(error) = self
                        .engine
                        .ack(&self.queue, delivery.offset, delivery.attempt)
                        .await
                    {
                        tracing::debug!("acking a no-ack delivery failed: {error}");
                        continue;
                    }
                }
                let outbound = Outbound::Deliver {
                    channel: self.channel,
                    consumer_tag: self.consumer_tag.clone(),
                    queue: self.queue.clone(),
                    no_ack: self.no_ack,
                    delivery: Box::new(delivery),
                };
                let sent = match self.outbound.try_send(outbound) {
                    Ok(()) => Ok(()),
                    Err(mpsc::error::TrySendError::Full(outbound)) => {
                        // Not eligible while its connection is backed up: a slow client
                        // holds up no other consumer's turn.
                        seat.set_eligible(false);
                        self.outbound.send(outbound).await
                    }
                    Err(mpsc::error::TrySendError::Closed(outbound)) => {
                        Err(mpsc::error::SendError(outbound))
                    }
                };
                if let Err(mpsc::error::SendError(Outbound::Deliver { delivery, .. })) = sent {
                    // The connection is gone.
                    let rest = std::iter::once(*delivery)
                        .chain(deliveries.by_ref())
                        .collect();
                    if !self.no_ack {
                        self.requeue(rest).await;
                    }
                    return;
                }
            }
            if self.stop.is_stopped() {
                return;
            }
        }
    }

    /// Its queue was deleted: the session cancels it towards the client.
    async fn gone(&self) {
        let _ = self
            .outbound
            .send(Outbound::ConsumerGone {
                channel: self.channel,
                consumer_tag: self.consumer_tag.clone(),
            })
            .await;
    }

    fn give_back(&self, count: u32) {
        if !self.no_ack {
            self.flow.give_back(&self.consumer_tag, count);
        }
    }

    async fn requeue(&self, deliveries: Vec<omnibus_engine::queue::Delivery>) {
        if self.no_ack {
            return;
        }
        self.give_back(deliveries.len() as u32);
        let unacked = deliveries
            .into_iter()
            .map(|d| super::Unacked {
                queue: self.queue.clone(),
                incarnation: d.incarnation,
                offset: d.offset,
                attempt: d.attempt,
                consumer_tag: None,
            })
            .collect();
        super::requeue_all(&self.engine, unacked).await;
    }
}
