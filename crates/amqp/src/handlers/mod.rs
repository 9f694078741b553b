//! The connection and channel state machines, and the dispatch of every frame to the handler
//! of its method family: `connection.rs` (handshake, tune, close), `channel.rs` (open, close,
//! flow), `exchange.rs`, `queue.rs`, `basic.rs` (publish, get, ack, nack, reject, recover,
//! qos), `publish.rs` (batched enqueues and confirms), `consume.rs` (consume and cancel, and
//! the per-consumer delivery task in `consumer.rs`), `reply_to.rs` (direct reply-to),
//! `confirm.rs`, `tx.rs`.
//!
//! One [`Connection`] is owned by its session task, so its state needs no lock. Consumer
//! tasks hand deliveries to it through a bounded channel ([`Outbound`]); it numbers them
//! (delivery tags are per channel) and writes them.

mod arguments;
mod basic;
mod blocked;
mod channel;
mod confirm;
mod connection;
mod consume;
mod consumer;
pub(crate) mod declared;
mod delivery;
mod equivalence;
mod exchange;
mod expiry;
mod flow;
mod publish;
mod queue;
mod reply_to;
mod rotation;
mod single_active;
mod tx;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{basic as basic_methods, AMQPClass};
use bytes::BytesMut;
use omnibus_engine::queue::Delivery;
use omnibus_engine::Engine;
use tokio::sync::mpsc;

use crate::config::AmqpConfig;
use crate::error::{reply, AmqpError};

pub(crate) use basic::deliver;
pub(crate) use blocked::{holds_reads, tell as tell_blocked, watch_alarm, Alarm};
pub(crate) use connection::start;
pub(crate) use delivery::requeue_all;
pub(crate) use publish::flush as flush_publishes;

/// Wakes the consumers of every channel given prefetch credit back (by acks, nacks and
/// rejects) since the last call; the session calls it after each run of frames it read.
pub(crate) fn wake_consumers(connection: &mut Connection) {
    for flow in connection.credit_returned.drain(..) {
        flow.wake();
    }
}

/// Deliveries waiting for the session, per connection.
pub(crate) const OUTBOUND_CAPACITY: usize = 1024;

/// What every connection shares.
pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    pub config: AmqpConfig,
    /// Exclusive, auto-delete and expiring queues, by engine name: who owns them, how many
    /// consume, when they were last used.
    pub owners: Mutex<HashMap<String, QueueOwner>>,
    /// Direct reply-to tokens (`reply_to.rs`).
    pub replies: Mutex<HashMap<String, reply_to::ReplyTarget>>,
    /// The resource alarm publishers are blocked on (`blocked.rs`).
    pub alarm: Alarm,
    /// Whose turn it is among each queue's consumers (`rotation.rs`).
    pub rotations: Arc<rotation::Rotations>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct QueueOwner {
    /// This door created the queue in this process: `durable` and `auto_delete` are its
    /// declaration's (`equivalence.rs`).
    pub declared_here: bool,
    pub durable: bool,
    pub exclusive_to: Option<u64>,
    pub auto_delete: bool,
    pub consumers: u32,
    /// A consumer that asked for exclusive use holds the queue (basic.consume `exclusive`).
    pub exclusive_consumer: bool,
    /// `x-expires` (`expiry.rs`): how long unused before deletion, when last used, and which
    /// expiry task watches it.
    pub expires_ms: Option<u64>,
    pub used_at: Option<std::time::Instant>,
    pub expiry_token: u64,
    /// `x-single-active-consumer` (`single_active.rs`): the turn order of its consumers.
    pub single_active: Option<Arc<single_active::SingleActive>>,
    /// The declaration's arguments the engine does not keep (`x-expires`, `x-max-priority`,
    /// `x-queue-type`, `x-single-active-consumer`), as text: what a re-declaration is
    /// compared with (`equivalence.rs`).
    pub door_arguments: BTreeMap<&'static str, String>,
}

/// From a consumer task to its connection's session.
#[derive(Debug)]
pub(crate) enum Outbound {
    Deliver {
        channel: u16,
        consumer_tag: String,
        queue: String,
        no_ack: bool,
        delivery: Box<Delivery>,
    },
    /// The queue went away under the consumer: the client is told with basic.cancel.
    ConsumerGone { channel: u16, consumer_tag: String },
    /// A direct reply-to reply (`reply_to.rs`): delivered as it is, never acknowledged.
    Reply {
        channel: u16,
        consumer_tag: String,
        routing_key: String,
        properties: Box<amq_protocol::protocol::basic::AMQPProperties>,
        body: bytes::Bytes,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// connection.start sent, waiting for start-ok.
    Start,
    /// connection.tune sent, waiting for tune-ok.
    Tune,
    /// Waiting for connection.open.
    Open,
    Running,
    /// connection.close sent; only close-ok (or close) is read.
    Closing,
}

/// A delivery the client has not settled yet.
#[derive(Debug, Clone)]
pub(crate) struct Unacked {
    pub queue: String,
    /// The incarnation of `queue` it came from: a queue deleted (and perhaps declared again)
    /// since has nothing of it to settle (`Unacked::current`).
    pub incarnation: u64,
    pub offset: u64,
    pub attempt: u32,
    /// None for basic.get.
    pub consumer_tag: Option<String>,
}

impl Unacked {
    /// Whether the queue it came from is still there, not replaced by a namesake: only then
    /// may an ack, nack or requeue of it reach the engine (offsets start again in a new queue).
    pub fn current(&self, engine: &Engine) -> bool {
        engine
            .queue_incarnation(&self.queue)
            .is_ok_and(|incarnation| incarnation == self.incarnation)
    }
}

/// A message arriving: its publish method, then its header, then its body frames.
pub(crate) struct PendingContent {
    pub publish: basic_methods::Publish,
    pub header: Option<AMQPContentHeader>,
    /// The body frames so far, when there is more than one.
    pub body: BytesMut,
    /// A body that came whole in one frame, as received (not copied).
    pub whole: Option<bytes::Bytes>,
    /// The header's properties as the client encoded them (`codec::take_header`).
    pub encoded_properties: Option<bytes::Bytes>,
}

impl PendingContent {
    pub fn received(&self) -> usize {
        self.whole
            .as_ref()
            .map_or(self.body.len(), bytes::Bytes::len)
    }

    /// The body, once all of it is here.
    pub fn take_body(&mut self) -> bytes::Bytes {
        match self.whole.take() {
            Some(whole) => whole,
            None => std::mem::take(&mut self.body).freeze(),
        }
    }
}

pub(crate) struct ConsumerHandle {
    pub queue: String,
    pub tag: String,
    pub stop: Arc<consumer::Stop>,
    /// The channel's, kept here so a consumer can be stopped after its channel is gone.
    pub flow: Arc<flow::Flow>,
    pub task: tokio::task::JoinHandle<()>,
    /// It holds its queue for exclusive use.
    pub exclusive: bool,
}

pub(crate) struct Channel {
    /// channel.close sent by us; frames other than close/close-ok are dropped until close-ok.
    pub closing: bool,
    pub pending: Option<PendingContent>,
    pub next_delivery_tag: u64,
    pub unacked: BTreeMap<u64, Unacked>,
    pub consumers: HashMap<String, ConsumerHandle>,
    pub flow: Arc<flow::Flow>,
    /// basic.qos with global=false: the prefetch of consumers started after it.
    pub consumer_prefetch: u16,
    pub confirm: bool,
    pub next_publish_sequence: u64,
    /// The first confirm number not answered yet (a basic.ack with `multiple` covers the
    /// run from here).
    pub first_unconfirmed: u64,
    pub next_consumer_number: u64,
    /// An id for the engine's worker of basic.get on this channel.
    pub worker: String,
    /// The channel's direct reply-to consumer: its token and consumer tag.
    pub reply_to: Option<(String, String)>,
    /// After tx.select: what waits for tx.commit (`tx.rs`).
    pub tx: Option<tx::Transaction>,
}

impl Channel {
    fn new(connection: u64, id: u16, unacked_max: u32) -> Self {
        Channel {
            closing: false,
            pending: None,
            next_delivery_tag: 1,
            unacked: BTreeMap::new(),
            consumers: HashMap::new(),
            flow: Arc::new(flow::Flow::new(unacked_max)),
            consumer_prefetch: 0,
            confirm: false,
            next_publish_sequence: 1,
            first_unconfirmed: 1,
            next_consumer_number: 1,
            worker: format!("amqp-{connection}-{id}"),
            reply_to: None,
            tx: None,
        }
    }
}

pub(crate) struct Connection {
    pub shared: Arc<Shared>,
    pub id: u64,
    pub out: BytesMut,
    pub phase: Phase,
    pub frame_max: u32,
    pub channel_max: u16,
    /// Negotiated heartbeat in seconds; 0 is off.
    pub heartbeat: u16,
    pub channels: HashMap<u16, Channel>,
    pub outbound: mpsc::Sender<Outbound>,
    /// Exclusive queues this connection declared (engine names), deleted when it closes.
    pub exclusive_queues: Vec<String>,
    /// The client sent connection.close-ok (or we answered its close): the session ends.
    pub finished: bool,
    /// Method frames handled and not yet added to the door's request counter: the session
    /// adds them once per read ([`Connection::record_requests`]), not one shared-counter
    /// update per frame.
    requests_unrecorded: u64,
    /// Routed publishes not enqueued yet (`publish.rs`).
    pub publishes: publish::PublishBatch,
    /// Channels' flows given credit back since their consumers were last woken
    /// (`wake_consumers`).
    pub credit_returned: Vec<Arc<flow::Flow>>,
    /// It has published at least once: a resource alarm blocks it (`blocked.rs`).
    pub published: bool,
    /// Its client announced the `connection.blocked` capability.
    pub wants_blocked: bool,
    /// It is blocked now (and was told so, if it wanted to be).
    pub blocked_sent: bool,
}

impl Connection {
    pub fn new(shared: Arc<Shared>, id: u64, outbound: mpsc::Sender<Outbound>) -> Self {
        let frame_max = shared.config.frame_max;
        let channel_max = shared.config.channel_max;
        Connection {
            shared,
            id,
            out: BytesMut::with_capacity(16 * 1024),
            phase: Phase::Start,
            frame_max,
            channel_max,
            heartbeat: 0,
            channels: HashMap::new(),
            outbound,
            exclusive_queues: Vec::new(),
            finished: false,
            requests_unrecorded: 0,
            publishes: publish::PublishBatch::default(),
            credit_returned: Vec::new(),
            published: false,
            wants_blocked: false,
            blocked_sent: false,
        }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.shared.engine
    }

    /// This door's counters for /metrics, borrowed: a frame handled costs no reference count
    /// traffic on them.
    fn door_counters(&self) -> &omnibus_engine::metrics::DoorCounters {
        self.shared
            .engine
            .metrics()
            .door(omnibus_engine::metrics::Door::Amqp)
    }

    /// Adds the method frames handled since the last call to the door's request counter.
    pub fn record_requests(&mut self) {
        let count = std::mem::take(&mut self.requests_unrecorded);
        if count > 0 {
            self.door_counters().requests(count);
        }
    }

    pub fn send(&mut self, channel: u16, method: AMQPClass) {
        crate::codec::encode_method(&mut self.out, channel, method);
    }

    /// A body frame taken off the input without a copy (`codec::take_body`): the same
    /// handling as [`Connection::handle_frame`] gives a body frame.
    pub async fn handle_body(&mut self, channel: u16, body: bytes::Bytes) -> Result<(), AmqpError> {
        let outcome = basic::content_body(self, channel, body).await;
        self.close_on_channel_error(channel, outcome).await
    }

    /// A content header taken off the input with its encoded properties
    /// (`codec::take_header`): the same handling as [`Connection::handle_frame`] gives a
    /// header frame, and the message keeps the properties' bytes.
    pub async fn handle_header(
        &mut self,
        header: crate::codec::RawContentHeader,
    ) -> Result<(), AmqpError> {
        let crate::codec::RawContentHeader {
            channel,
            header,
            properties,
        } = header;
        let outcome = basic::content_header(self, channel, header, Some(properties)).await;
        self.close_on_channel_error(channel, outcome).await
    }

    /// A channel exception closes that channel; anything else is the caller's to act on.
    async fn close_on_channel_error(
        &mut self,
        channel: u16,
        outcome: Result<(), AmqpError>,
    ) -> Result<(), AmqpError> {
        match outcome {
            Err(AmqpError::Channel {
                code,
                text,
                class_id,
                method_id,
            }) => {
                self.door_counters().error();
                self.close_channel(channel, code, &text, (class_id, method_id))
                    .await;
                Ok(())
            }
            other => other,
        }
    }

    /// Handles one frame; a channel exception closes that channel here, anything else is
    /// the caller's to act on.
    pub async fn handle_frame(&mut self, frame: AMQPFrame) -> Result<(), AmqpError> {
        let channel_id = frame.channel_id();
        // Publishes go in a batch; anything else sees them enqueued and answered first.
        let publishing = matches!(
            frame,
            AMQPFrame::Header(..)
                | AMQPFrame::Body(..)
                | AMQPFrame::Heartbeat
                | AMQPFrame::Method(_, AMQPClass::Basic(basic_methods::AMQPMethod::Publish(_)))
        );
        if !publishing {
            publish::flush(self).await;
        }
        if matches!(frame, AMQPFrame::Method(..)) {
            self.requests_unrecorded += 1;
        }
        match self.dispatch(frame).await {
            Err(AmqpError::Channel {
                code,
                text,
                class_id,
                method_id,
            }) => {
                tracing::debug!(
                    connection = self.id,
                    channel_id,
                    code,
                    "channel exception: {text}"
                );
                self.door_counters().error();
                self.close_channel(channel_id, code, &text, (class_id, method_id))
                    .await;
                Ok(())
            }
            other => other,
        }
    }

    async fn dispatch(&mut self, frame: AMQPFrame) -> Result<(), AmqpError> {
        match frame {
            AMQPFrame::Heartbeat => Ok(()),
            AMQPFrame::InvalidHeartbeat(_) => Err(AmqpError::connection(
                reply::FRAME_ERROR,
                "heartbeat frames must be on channel 0",
                (0, 0),
            )),
            AMQPFrame::ProtocolHeader(_) => Err(AmqpError::connection(
                reply::UNEXPECTED_FRAME,
                "a protocol header in the middle of a connection",
                (0, 0),
            )),
            AMQPFrame::Method(0, method) => connection::handle(self, method).await,
            AMQPFrame::Method(channel, method) => {
                if self.phase != Phase::Running {
                    if self.phase == Phase::Closing {
                        return Ok(());
                    }
                    return Err(AmqpError::connection(
                        reply::CHANNEL_ERROR,
                        "channel methods before connection.open",
                        (method.get_amqp_class_id(), method.get_amqp_method_id()),
                    ));
                }
                self.channel_method(channel, method).await
            }
            AMQPFrame::Header(channel, header) => {
                basic::content_header(self, channel, header, None).await
            }
            AMQPFrame::Body(channel, body) => {
                basic::content_body(self, channel, bytes::Bytes::from(body)).await
            }
        }
    }

    async fn channel_method(&mut self, channel: u16, method: AMQPClass) -> Result<(), AmqpError> {
        let ids = (method.get_amqp_class_id(), method.get_amqp_method_id());
        if let AMQPClass::Channel(method) = method {
            return channel::handle(self, channel, method, ids).await;
        }
        let Some(state) = self.channels.get(&channel) else {
            return Err(AmqpError::connection(
                reply::CHANNEL_ERROR,
                format!("CHANNEL_ERROR - expected 'channel.open' on channel {channel}"),
                ids,
            ));
        };
        if state.closing {
            // Until the client's close-ok, everything else on the channel is dropped (spec).
            return Ok(());
        }
        if state.pending.is_some() {
            return Err(AmqpError::connection(
                reply::UNEXPECTED_FRAME,
                "a method frame while content was expected",
                ids,
            ));
        }
        match method {
            AMQPClass::Exchange(method) => exchange::handle(self, channel, method, ids).await,
            AMQPClass::Queue(method) => queue::handle(self, channel, method, ids).await,
            AMQPClass::Basic(method) => basic::handle(self, channel, method, ids).await,
            AMQPClass::Confirm(method) => confirm::handle(self, channel, method, ids),
            AMQPClass::Tx(method) => tx::handle(self, channel, method, ids).await,
            AMQPClass::Access(_) | AMQPClass::Connection(_) | AMQPClass::Channel(_) => {
                Err(AmqpError::connection(
                    reply::COMMAND_INVALID,
                    "this method is not valid on a channel",
                    ids,
                ))
            }
        }
    }

    /// Our side of a channel exception: channel.close sent, the channel's consumers stopped
    /// and its unacknowledged deliveries requeued; the client answers with close-ok.
    pub async fn close_channel(&mut self, channel: u16, code: u16, text: &str, ids: (u16, u16)) {
        self.send(
            channel,
            AMQPClass::Channel(amq_protocol::protocol::channel::AMQPMethod::Close(
                amq_protocol::protocol::channel::Close {
                    reply_code: code,
                    reply_text: text.into(),
                    class_id: ids.0,
                    method_id: ids.1,
                },
            )),
        );
        if let Some(state) = self.channels.get_mut(&channel) {
            state.closing = true;
            state.pending = None;
        }
        self.release_channel(channel, false).await;
    }

    /// Stops a channel's consumers and requeues what it holds; with `remove`, forgets it.
    pub async fn release_channel(&mut self, channel: u16, remove: bool) {
        let Some(state) = self.channels.get_mut(&channel) else {
            return;
        };
        let consumers: Vec<(String, ConsumerHandle)> = state.consumers.drain().collect();
        if let Some((token, _)) = state.reply_to.take() {
            self.shared
                .replies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&token);
        }
        let Some(state) = self.channels.get_mut(&channel) else {
            return;
        };
        let mut unacked: Vec<Unacked> = std::mem::take(&mut state.unacked).into_values().collect();
        // Settlements an open transaction held were never applied: requeued like the rest.
        if let Some(held) = state.tx.take() {
            for settlement in held.settlements {
                unacked.extend(settlement.deliveries.into_iter().map(|(_, d)| d));
            }
        }
        if remove {
            self.channels.remove(&channel);
        }
        // The consumer tasks end first (each gives back what it leased and had not handed
        // over), so none of them leases a requeued message again on its way out.
        for (_, consumer) in consumers {
            consume::stop_consumer(self, consumer, true).await;
        }
        requeue_all(self.engine(), unacked).await;
    }

    /// The session ended: every channel released, exclusive queues deleted.
    pub async fn tear_down(&mut self) {
        let channels: Vec<u16> = self.channels.keys().copied().collect();
        for channel in channels {
            self.release_channel(channel, true).await;
        }
        for queue in std::mem::take(&mut self.exclusive_queues) {
            queue::delete_queue_everywhere(&self.shared, &queue).await;
        }
    }
}
