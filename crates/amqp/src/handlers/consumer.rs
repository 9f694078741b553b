//! One task per basic.consume: it takes prefetch credit (`flow.rs`), leases that many
//! messages from the engine queue (long-polling while the queue is empty), and hands them to
//! its connection's session, which numbers and writes them.
//!
//! Cancelling is cooperative: the task notices the flag between two receives (the long poll
//! is bounded by `RECEIVE_WAIT_MS`) and gives back what it leased but had not handed over.
//! A message handed over after the consumer is gone is requeued by the session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use omnibus_engine::{Engine, EngineError};
use tokio::sync::mpsc;

use super::flow::Flow;
use super::Outbound;

/// How long one receive waits for a message; also how soon a cancelled consumer stops.
const RECEIVE_WAIT_MS: u64 = 250;
/// Most messages leased per receive.
const RECEIVE_BATCH: u32 = 128;

pub(crate) struct ConsumerTask {
    pub engine: Arc<Engine>,
    pub queue: String,
    pub worker: String,
    pub channel: u16,
    pub consumer_tag: String,
    pub no_ack: bool,
    pub flow: Arc<Flow>,
    pub cancelled: Arc<AtomicBool>,
    pub outbound: mpsc::Sender<Outbound>,
}

impl ConsumerTask {
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        loop {
            // A no-ack consumer is not bound by prefetch (the spec); the bounded outbound
            // channel holds it back instead.
            let credit = if self.no_ack {
                RECEIVE_BATCH
            } else {
                match self
                    .flow
                    .take(&self.consumer_tag, RECEIVE_BATCH, &self.cancelled)
                    .await
                {
                    Some(credit) => credit,
                    None => return,
                }
            };
            let received = self
                .engine
                .receive(&self.queue, &self.worker, credit as usize, RECEIVE_WAIT_MS)
                .await;
            let deliveries = match received {
                Ok(deliveries) => deliveries,
                Err(EngineError::QueueNotFound(_)) => {
                    self.give_back(credit);
                    let _ = self
                        .outbound
                        .send(Outbound::ConsumerGone {
                            channel: self.channel,
                            consumer_tag: self.consumer_tag.clone(),
                        })
                        .await;
                    return;
                }
                Err(error) => {
                    tracing::warn!(
                        queue = self.queue,
                        "an AMQP consumer's receive failed: {error}"
                    );
                    self.give_back(credit);
                    tokio::time::sleep(std::time::Duration::from_millis(RECEIVE_WAIT_MS)).await;
                    if self.cancelled.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
            };
            self.give_back(credit.saturating_sub(deliveries.len() as u32));
            let mut deliveries = deliveries.into_iter();
            while let Some(delivery) = deliveries.next() {
                if self.cancelled.load(Ordering::Acquire) {
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
                if let Err(mpsc::error::SendError(Outbound::Deliver { delivery, .. })) =
                    self.outbound.send(outbound).await
                {
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
            if self.cancelled.load(Ordering::Acquire) {
                return;
            }
        }
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
                offset: d.offset,
                attempt: d.attempt,
                consumer_tag: None,
            })
            .collect();
        super::requeue_all(&self.engine, unacked).await;
    }
}
