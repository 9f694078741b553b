//! A subscriber's mailbox: the bounded queue live deliveries wait in until the front door
//! writes them to its client.
//!
//! One mailbox serves every subscription of one subscriber (a NATS connection, an AMQP
//! channel): the door waits on one queue instead of one per subscription, and the bound is the
//! subscriber's, as nats-server bounds the pending bytes of a connection. The bound is on both
//! messages and bytes. A delivery that would pass it is dropped for this subscriber only and
//! marks the mailbox *slow*: the door is woken and disconnects the client (NATS does so
//! without an `-ERR`). A slow mailbox takes nothing more, so a subscriber that stops reading
//! never makes the broker's memory grow.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use omnibus_types::Header;

/// A message routed live: the engine's own form, whatever door it came from or goes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveMessage {
    /// A valid subject (no wildcards).
    pub subject: String,
    /// Where a responder should answer (request-reply), if anywhere.
    pub reply: Option<String>,
    pub headers: Vec<Header>,
    pub payload: Bytes,
    /// Set on a control message rather than data: a consumer's idle heartbeat, say. A door
    /// whose protocol has status messages writes it as one (NATS: `NATS/1.0 100 Idle
    /// Heartbeat`); the others skip the message.
    pub status: Option<LiveStatus>,
    /// A stream's record written to the stream by its name — a Kafka produce, a Redis XADD,
    /// an HTTP publish to a stream — rather than published to a subject. Its live copy goes
    /// to the stream's subject like any other, but a mailbox may decline such copies
    /// ([`Mailbox::set_receives_appended`]): a Redis subscriber does, because in Redis a
    /// stream key is not a pub/sub channel.
    pub appended: bool,
}

/// A control message's status: a code and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStatus {
    pub code: u16,
    pub text: String,
}

impl LiveMessage {
    /// What the message counts for against a mailbox's byte bound.
    pub fn size_bytes(&self) -> usize {
        self.subject.len()
            + self.reply.as_ref().map_or(0, String::len)
            + self
                .headers
                .iter()
                .map(|header| header.name.len() + header.value.len())
                .sum::<usize>()
            + self.payload.len()
    }
}

/// One message for one subscription of a mailbox's subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The token the subscriber gave when it subscribed (a NATS door passes its sid's slot).
    pub token: u64,
    /// Shared by every subscriber the message fans out to.
    pub message: Arc<LiveMessage>,
}

/// How much a mailbox may hold before its subscriber is a slow consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    pub messages_max: usize,
    pub bytes_max: usize,
}

#[derive(Debug, Default)]
struct MailboxState {
    queue: VecDeque<Delivery>,
    bytes: usize,
    slow: bool,
}

/// See the module documentation. Created by [`crate::router::LiveRouter::mailbox`].
#[derive(Debug)]
pub struct Mailbox {
    /// The subscriber's identity, compared with a publisher's to honour `echo`.
    pub(crate) id: u64,
    /// Whether the subscriber receives what it publishes itself. A NATS client says so in its
    /// CONNECT, which may come after the mailbox exists.
    echo: AtomicBool,
    /// Whether the subscriber receives [`LiveMessage::appended`] copies.
    receives_appended: AtomicBool,
    limits: MailboxLimits,
    state: Mutex<MailboxState>,
    /// Woken on the first delivery into an empty mailbox and when the mailbox turns slow.
    ready: tokio::sync::Notify,
}

impl Mailbox {
    pub(crate) fn new(id: u64, echo: bool, limits: MailboxLimits) -> Mailbox {
        Mailbox {
            id,
            echo: AtomicBool::new(echo),
            receives_appended: AtomicBool::new(true),
            limits,
            state: Mutex::new(MailboxState::default()),
            ready: tokio::sync::Notify::new(),
        }
    }

    /// The identity to pass as the origin of this subscriber's own publishes.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the subscriber receives its own messages.
    pub fn echo(&self) -> bool {
        self.echo.load(Ordering::Relaxed)
    }

    pub fn set_echo(&self, echo: bool) {
        self.echo.store(echo, Ordering::Relaxed);
    }

    /// Whether records written to a stream by its name reach this subscriber (yes unless
    /// turned off; see [`LiveMessage::appended`]).
    pub fn receives_appended(&self) -> bool {
        self.receives_appended.load(Ordering::Relaxed)
    }

    pub fn set_receives_appended(&self, receives: bool) {
        self.receives_appended.store(receives, Ordering::Relaxed);
    }

    fn state(&self) -> MutexGuard<'_, MailboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a delivery, or drops it and marks the mailbox slow when it would pass the
    /// bound. False when dropped.
    pub(crate) fn offer(&self, delivery: Delivery) -> bool {
        let size = delivery.message.size_bytes();
        let mut state = self.state();
        if state.slow {
            return false;
        }
        if state.queue.len() >= self.limits.messages_max
            || state.bytes.saturating_add(size) > self.limits.bytes_max
        {
            state.slow = true;
            drop(state);
            self.ready.notify_one();
            return false;
        }
        let was_empty = state.queue.is_empty();
        state.queue.push_back(delivery);
        state.bytes += size;
        drop(state);
        if was_empty {
            self.ready.notify_one();
        }
        true
    }

    /// [`Mailbox::offer`] for many deliveries, in order, under one lock and with at most one
    /// wake-up. Returns how many were dropped: none, or every one from the first that would
    /// pass the bound (the mailbox is slow from then on).
    pub(crate) fn offer_many(&self, deliveries: Vec<Delivery>) -> usize {
        let count = deliveries.len();
        let mut state = self.state();
        if state.slow {
            return count;
        }
        let was_empty = state.queue.is_empty();
        let mut taken = 0;
        for delivery in deliveries {
            let size = delivery.message.size_bytes();
            if state.queue.len() >= self.limits.messages_max
                || state.bytes.saturating_add(size) > self.limits.bytes_max
            {
                state.slow = true;
                break;
            }
            state.queue.push_back(delivery);
            state.bytes += size;
            taken += 1;
        }
        let slow = state.slow;
        drop(state);
        if slow || (was_empty && taken > 0) {
            self.ready.notify_one();
        }
        count - taken
    }

    /// Moves queued deliveries into `out`, oldest first, until about `bytes_budget` bytes
    /// moved (at least one delivery when any is queued). Returns the bytes moved.
    pub fn take(&self, out: &mut Vec<Delivery>, bytes_budget: usize) -> usize {
        let mut state = self.state();
        let mut moved = 0;
        while moved < bytes_budget.max(1) {
            let Some(delivery) = state.queue.pop_front() else {
                break;
            };
            let size = delivery.message.size_bytes();
            state.bytes -= size;
            moved += size;
            out.push(delivery);
        }
        moved
    }

    /// Resolves when deliveries may be waiting or the mailbox turned slow. A wake-up given
    /// while nobody waited is kept for the next call, so none is lost.
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    /// Whether a delivery was dropped because the mailbox was full: the door disconnects.
    pub fn is_slow(&self) -> bool {
        self.state().slow
    }

    /// Messages and bytes waiting.
    pub fn pending(&self) -> (usize, usize) {
        let state = self.state();
        (state.queue.len(), state.bytes)
    }
}
