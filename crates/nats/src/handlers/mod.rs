//! One file per client operation; each turns the parsed operation into engine calls and
//! writes what the client must see into the connection's write buffer. [`Connection`] is the
//! per-connection state they share; `session.rs` does the I/O around it.

pub(crate) mod connect;
mod ping;
pub(crate) mod publish;
pub(crate) use publish::{capture_done, flush_publishes, push_capture, PublishBatch};
mod subscribe;
mod unsubscribe;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::stream::FuturesOrdered;
use omnibus_engine::router::{Delivery, Mailbox, MailboxLimits, SubscriptionHandle};
use omnibus_engine::{Engine, EngineError};

use crate::codec::{encode, headers, ClientOp};
use crate::config::NatsConfig;
use crate::error::NatsError;
use crate::jetstream::pull::{PullOutput, PULL_CHANNEL_CHUNKS};
use connect::ConnectOptions;

/// What every connection of one listener shares.
pub(crate) struct Shared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: NatsConfig,
    pub(crate) server_id: String,
    /// The bound address, sent in INFO.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// JetStream's state beside the streams (`crate::jetstream`).
    pub(crate) jetstream: crate::jetstream::JetStream,
}

/// A captured publish waiting for its stream's acknowledgement (`publish.rs`).
pub(crate) type CaptureFuture = Pin<Box<dyn Future<Output = Result<(), EngineError>> + Send>>;

/// Captured publishes one connection may have waiting for their stream at once; the next one
/// waits for the oldest, so a fast publisher is held back rather than queued without bound.
pub(crate) const CAPTURES_IN_FLIGHT_MAX: usize = 1024;

/// Deliveries moved from the mailbox into the write buffer at a time.
pub(crate) const OUT_BATCH_BYTES: usize = 256 * 1024;

/// One connection's state, between the socket (the session) and the engine.
pub(crate) struct Connection {
    pub(crate) shared: Arc<Shared>,
    pub(crate) client_id: u64,
    /// Where the engine puts this connection's deliveries, for all its subscriptions.
    pub(crate) mailbox: Arc<Mailbox>,
    /// From CONNECT; the defaults until one arrives.
    pub(crate) options: ConnectOptions,
    pub(crate) subscriptions: Subscriptions,
    /// Everything waiting to be written to the client, in order.
    pub(crate) out: BytesMut,
    /// Header blocks are written here first to learn their size.
    scratch: BytesMut,
    pub(crate) captures: FuturesOrdered<CaptureFuture>,
    /// The capturing stream of the last core publish's subject (`Engine::publish_live_cached`).
    pub(crate) capture_cache: omnibus_engine::router::CaptureCache,
    /// JetStream publishes read but not yet handed to the engine (`publish.rs`).
    pub(crate) publishes: PublishBatch,
    /// Plain JetStream acks read but not yet handed to the engine (`jetstream/acks.rs`).
    pub(crate) acks: crate::jetstream::acks::AckBatch,
    pub(crate) pings_outstanding: u32,
    /// JetStream pull requests' messages, from their tasks (`jetstream/pull.rs`).
    pub(crate) pulls_tx: tokio::sync::mpsc::Sender<PullOutput>,
    pub(crate) pulls_rx: tokio::sync::mpsc::Receiver<PullOutput>,
    /// Pull requests of this connection still running.
    pub(crate) pulls_active: Arc<std::sync::atomic::AtomicUsize>,
}

/// A subscription of the connection, by its sid.
pub(crate) struct SidEntry {
    pub(crate) sid: String,
    pub(crate) pattern: String,
    /// Dropping it unsubscribes from the engine.
    _handle: SubscriptionHandle,
    /// `UNSUB <sid> <max>`: delivered messages after which the subscription ends.
    pub(crate) max: Option<u64>,
    pub(crate) delivered: u64,
}

/// The connection's subscriptions: by the token the engine's deliveries carry, and by sid.
#[derive(Default)]
pub(crate) struct Subscriptions {
    by_token: HashMap<u64, SidEntry>,
    by_sid: HashMap<String, u64>,
    next_token: u64,
}

impl Subscriptions {
    pub(crate) fn len(&self) -> usize {
        self.by_token.len()
    }

    pub(crate) fn contains_sid(&self, sid: &str) -> bool {
        self.by_sid.contains_key(sid)
    }

    pub(crate) fn next_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    pub(crate) fn insert(
        &mut self,
        token: u64,
        sid: String,
        pattern: String,
        handle: SubscriptionHandle,
    ) {
        self.by_sid.insert(sid.clone(), token);
        self.by_token.insert(
            token,
            SidEntry {
                sid,
                pattern,
                _handle: handle,
                max: None,
                delivered: 0,
            },
        );
    }

    pub(crate) fn by_sid_mut(&mut self, sid: &str) -> Option<&mut SidEntry> {
        let token = self.by_sid.get(sid)?;
        self.by_token.get_mut(token)
    }

    pub(crate) fn remove_sid(&mut self, sid: &str) {
        if let Some(token) = self.by_sid.remove(sid) {
            self.by_token.remove(&token);
        }
    }

    /// The token of a subscription whose pattern matches `subject`.
    pub(crate) fn matching(&self, subject: &str) -> Option<u64> {
        self.by_token
            .iter()
            .find(|(_, entry)| omnibus_types::pattern_matches(&entry.pattern, subject))
            .map(|(token, _)| *token)
    }
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>, client_id: u64) -> Connection {
        let limits = MailboxLimits {
            messages_max: shared.config.pending_messages_max,
            bytes_max: shared.config.pending_bytes_max,
        };
        let mailbox = shared.engine.live_router().mailbox(true, limits);
        let (pulls_tx, pulls_rx) = tokio::sync::mpsc::channel(PULL_CHANNEL_CHUNKS);
        Connection {
            shared,
            client_id,
            mailbox,
            options: ConnectOptions::default(),
            subscriptions: Subscriptions::default(),
            out: BytesMut::with_capacity(16 * 1024),
            scratch: BytesMut::new(),
            captures: FuturesOrdered::new(),
            capture_cache: Default::default(),
            publishes: PublishBatch::default(),
            acks: Default::default(),
            pings_outstanding: 0,
            pulls_tx,
            pulls_rx,
            pulls_active: Arc::default(),
        }
    }

    /// Handles one operation. An error closes the connection. A plain JetStream publish may
    /// wait in the connection's batch until [`flush_publishes`]: the session flushes after
    /// each read, and any other operation flushes first, so the order holds.
    /// The session counts the operations in its door's request metric.
    pub(crate) async fn handle(&mut self, op: ClientOp) -> Result<(), NatsError> {
        let op = match op {
            ClientOp::Publish(publish) => match publish::batch(self, publish).await? {
                Some(publish) => ClientOp::Publish(publish),
                None => return Ok(()),
            },
            other => {
                flush_publishes(self).await?;
                other
            }
        };
        match op {
            ClientOp::Connect(json) => connect::handle(self, &json),
            ClientOp::Ping => ping::ping(self),
            ClientOp::Pong => {
                ping::pong(self);
                Ok(())
            }
            ClientOp::Publish(publish) => publish::handle(self, publish).await,
            ClientOp::Subscribe {
                subject,
                queue_group,
                sid,
            } => {
                subscribe::handle(self, subject, queue_group, sid);
                Ok(())
            }
            ClientOp::Unsubscribe { sid, max } => unsubscribe::handle(self, &sid, max),
            ClientOp::Ignored => Ok(()),
        }
    }

    /// Moves deliveries from the mailbox into the write buffer while it holds less than a
    /// batch; a mailbox that overflowed, or a write buffer over its bound, ends the
    /// connection.
    pub(crate) fn pump_mailbox(&mut self, deliveries: &mut Vec<Delivery>) -> Result<(), NatsError> {
        if self.mailbox.is_slow() {
            return Err(NatsError::SlowConsumer);
        }
        while self.out.len() < OUT_BATCH_BYTES {
            deliveries.clear();
            self.mailbox
                .take(deliveries, OUT_BATCH_BYTES - self.out.len());
            if deliveries.is_empty() {
                break;
            }
            for delivery in deliveries.drain(..) {
                self.write_delivery(&delivery);
            }
        }
        if self.out.len() > self.shared.config.pending_bytes_max {
            return Err(NatsError::SlowConsumer);
        }
        Ok(())
    }

    /// Moves every delivery waiting in the mailbox into the write buffer (the mailbox's own
    /// bound bounds it); a write buffer over its bound ends the connection.
    pub(crate) fn drain_mailbox(&mut self) -> Result<(), NatsError> {
        if self.mailbox.is_slow() {
            return Err(NatsError::SlowConsumer);
        }
        let mut deliveries = Vec::new();
        self.mailbox.take(&mut deliveries, usize::MAX);
        for delivery in &deliveries {
            self.write_delivery(delivery);
        }
        if self.out.len() > self.shared.config.pending_bytes_max {
            return Err(NatsError::SlowConsumer);
        }
        Ok(())
    }

    /// Writes a pull request's messages or status on this connection's subscription matching
    /// its inbox (dropped when there is none any more: the client unsubscribed). The
    /// subscription is looked up once per hand-over, not once per message.
    pub(crate) fn write_pull(&mut self, output: PullOutput) {
        match output {
            PullOutput::Messages { inbox, messages } => {
                let Some(token) = self.subscriptions.matching(&inbox) else {
                    return;
                };
                for message in &messages {
                    self.write_message(token, message, None);
                }
            }
            PullOutput::Status { inbox, block } => {
                let Some(token) = self.subscriptions.matching(&inbox) else {
                    return;
                };
                let message = omnibus_engine::router::LiveMessage {
                    subject: inbox,
                    reply: None,
                    headers: Vec::new(),
                    payload: bytes::Bytes::new(),
                    status: None,
                    appended: false,
                };
                self.write_message(token, &message, Some(&block));
            }
        }
    }

    /// `+OK`, in verbose mode only.
    pub(crate) fn acknowledge(&mut self) {
        if self.options.verbose() {
            encode::ok(&mut self.out);
        }
    }

    /// `-ERR '<text>'`, keeping the connection open.
    pub(crate) fn refuse(&mut self, text: &str) {
        encode::error(&mut self.out, text);
    }

    /// Writes one delivery as MSG or HMSG for its subscription, counting it against the
    /// subscription's `max`; a subscription that reached its max ends here.
    pub(crate) fn write_delivery(&mut self, delivery: &Delivery) {
        self.write_message(delivery.token, &delivery.message, None);
    }

    /// Writes a status message (a header block of its own, such as no-responders' 503) on
    /// the delivery's subscription.
    pub(crate) fn write_status(&mut self, delivery: &Delivery, block: &[u8]) {
        self.write_message(delivery.token, &delivery.message, Some(block));
    }

    fn write_message(
        &mut self,
        token: u64,
        message: &omnibus_engine::router::LiveMessage,
        status: Option<&[u8]>,
    ) {
        if status.is_none() && message.status.is_some() && !self.options.headers() {
            // A control message needs a header block, which this client cannot read.
            return;
        }
        let Some(entry) = self.subscriptions.by_token.get_mut(&token) else {
            // Unsubscribed while the delivery waited.
            return;
        };
        if entry.max.is_some_and(|max| entry.delivered >= max) {
            return;
        }
        entry.delivered += 1;
        // A client that did not ask for headers gets the payload alone, as from nats-server.
        let block = match status {
            Some(block) => Some(block),
            // A control message (a consumer's heartbeat) is a status block; a client that
            // cannot read headers cannot be sent one.
            None if message.status.is_some() => {
                let status = message.status.as_ref().map(|s| (s.code, s.text.as_str()));
                self.scratch.clear();
                headers::encode_with_status(status, &message.headers, &mut self.scratch);
                Some(&self.scratch[..])
            }
            None if !message.headers.is_empty() && self.options.headers() => {
                self.scratch.clear();
                headers::encode(&message.headers, &mut self.scratch);
                Some(&self.scratch[..])
            }
            None => None,
        };
        encode::message(
            &mut self.out,
            &message.subject,
            &entry.sid,
            message.reply.as_deref(),
            block,
            &message.payload,
        );
        if entry.max.is_some_and(|max| entry.delivered >= max) {
            let sid = entry.sid.clone();
            self.subscriptions.remove_sid(&sid);
        }
    }
}
