//! `PUB <subject> [reply] <size>` and `HPUB <subject> [reply] <header size> <total size>`.
//!
//! Protocol: core NATS publishing has no acknowledgement; `+OK` follows in verbose mode. The
//! subject must be a concrete subject (`-ERR 'Invalid Publish Subject'` otherwise, and the
//! connection stays open, as nats-server does in pedantic mode). A request (a reply subject
//! given) that reaches no subscriber, from a client that asked for `headers` and
//! `no_responders`, is answered with `HMSG <reply> <sid> 16 16` and the block
//! `NATS/1.0 503`, on the client's own subscription that matches the reply subject (clients
//! subscribe one `_INBOX.<id>.*` for all their requests); nats-py raises NoRespondersError.
//!
//! Our choices: the message goes through [`omnibus_engine::Engine::publish_live`]. A subject
//! that a stream captures is appended to it first and reaches live subscribers once the stream
//! acknowledged it (under the stream's fsync policy); the connection does not wait for that —
//! it keeps up to `CAPTURES_IN_FLIGHT_MAX` appends in flight, which share fsyncs, and reads
//! on. Because of that a request to a captured subject never gets the no-responders status:
//! the stream received it. A failed append is reported with `-ERR 'Publish Failed: …'`.

use std::sync::Arc;

use futures_util::StreamExt;
use omnibus_engine::router::{Delivery, LiveMessage, LivePublish, PendingCapture};
use omnibus_engine::EngineError;
use omnibus_types::validate_subject;

use super::{CaptureFuture, Connection, CAPTURES_IN_FLIGHT_MAX};
use crate::codec::{headers, PublishOp};
use crate::error::NatsError;

/// Plain JetStream publishes (a reply subject, no JetStream header) to subjects one stream
/// captures, read one after another: stored as one append, answered one PubAck each.
#[derive(Default)]
pub(crate) struct PublishBatch {
    stream: String,
    messages: Vec<Arc<LiveMessage>>,
}

/// Publishes one batch holds at most; the next one flushes it.
const PUBLISH_BATCH_MAX: usize = 256;

/// Takes `publish` into the connection's batch when it is a plain JetStream publish to a
/// captured subject (`None`); otherwise flushes the batch, so order holds, and hands the
/// publish back for [`handle`].
pub(crate) async fn batch(
    connection: &mut Connection,
    publish: PublishOp,
) -> Result<Option<PublishOp>, NatsError> {
    if publish
        .subject
        .starts_with(crate::jetstream::acks::ACK_PREFIX)
    {
        flush_stored(connection).await?;
        if crate::jetstream::acks::batch(connection, &publish).await {
            return Ok(None);
        }
    }
    let Some((stream, message_headers)) = batchable(connection, &publish) else {
        flush_publishes(connection).await?;
        return Ok(Some(publish));
    };
    crate::jetstream::acks::flush(connection).await;
    if let Some(stream) = stream {
        if connection.publishes.stream != stream {
            flush_publishes(connection).await?;
            connection.publishes.stream = stream;
        }
    }
    connection.publishes.messages.push(Arc::new(LiveMessage {
        subject: publish.subject,
        reply: publish.reply,
        headers: message_headers,
        payload: publish.payload,
        status: None,
        appended: false,
    }));
    if connection.publishes.messages.len() >= PUBLISH_BATCH_MAX {
        flush_publishes(connection).await?;
    }
    Ok(None)
}

/// The capturing stream and the parsed headers of a publish that may join a batch: valid
/// subjects, a reply subject (the client waits for a PubAck), no JetStream header (their
/// checks run one message at a time in `jetstream::publish`), not verbose (`+OK` follows
/// each operation), and a stream capturing the subject.
///
/// The stream is `None` when the publish repeats the subject of the batch's last message: it
/// joins the batch's stream without checking its subject or looking its stream up again
/// (publishers mostly send runs on one subject). The engine checks every message's capture
/// when the batch is stored, so a stream deleted meanwhile refuses the message in its PubAck.
fn batchable(
    connection: &Connection,
    publish: &PublishOp,
) -> Option<(Option<String>, Vec<omnibus_types::Header>)> {
    let reply = publish.reply.as_deref()?;
    let repeated = connection
        .publishes
        .messages
        .last()
        .is_some_and(|last| last.subject == publish.subject);
    if connection.options.verbose()
        || publish.subject.starts_with('$')
        || (!repeated && validate_subject(&publish.subject).is_err())
        || validate_subject(reply).is_err()
    {
        return None;
    }
    let message_headers = match &publish.headers {
        None => Vec::new(),
        Some(block) => headers::parse(block).ok()?,
    };
    if crate::jetstream::has_jetstream_headers(&message_headers) {
        return None;
    }
    if repeated {
        return Some((None, message_headers));
    }
    let stream = connection
        .shared
        .engine
        .stream_capturing(&publish.subject)?;
    Some((Some(stream), message_headers))
}

/// Hands the connection's batched JetStream publishes and plain acks to the engine (at most
/// one of the two batches holds anything: each hands the other over before it takes one).
pub(crate) async fn flush_publishes(connection: &mut Connection) -> Result<(), NatsError> {
    // Checked here, without a future per batch: most operations find both batches empty.
    if nothing_batched(connection) {
        return Ok(());
    }
    crate::jetstream::acks::flush(connection).await;
    flush_stored(connection).await
}

/// Hands the connection's batched JetStream publishes to the engine.
async fn flush_stored(connection: &mut Connection) -> Result<(), NatsError> {
    if connection.publishes.messages.is_empty() {
        return Ok(());
    }
    let messages = std::mem::take(&mut connection.publishes.messages);
    let stream = connection.publishes.stream.clone();
    crate::jetstream::publish_batch(connection, stream, messages).await
}

/// Whether `publish` is a plain core publish the session may hand to [`core_now`]: no reply
/// (nothing to answer), no headers, not a `$` subject (JetStream API, acks, flow control), no
/// `+OK` to write, and no JetStream publish or ack batched ahead of it (order).
pub(crate) fn plain_core(connection: &Connection, publish: &PublishOp) -> bool {
    publish.reply.is_none()
        && publish.headers.is_none()
        && !publish.subject.starts_with('$')
        && !connection.options.verbose()
        && nothing_batched(connection)
}

/// Whether the connection has no JetStream publish and no ack batched, waiting for a flush.
fn nothing_batched(connection: &Connection) -> bool {
    connection.publishes.messages.is_empty() && !crate::jetstream::acks::waiting(connection)
}

/// A [`plain_core`] publish, routed without a future: most core publishes go no further.
/// `Some`: a stream captures the subject, and the message must be appended
/// ([`captured`]) before the next operation.
pub(crate) fn core_now(connection: &mut Connection, publish: PublishOp) -> Option<LiveMessage> {
    // A run on one subject is checked once (the engine's capture cache holds it).
    if !connection.capture_cache.holds(&publish.subject)
        && validate_subject(&publish.subject).is_err()
    {
        connection.refuse("Invalid Publish Subject");
        return None;
    }
    let message = LiveMessage {
        subject: publish.subject,
        reply: None,
        headers: Vec::new(),
        payload: publish.payload,
        status: None,
        appended: false,
    };
    let origin = Some(connection.mailbox.id());
    match connection
        .shared
        .engine
        .publish_live_now(message, origin, &mut connection.capture_cache)
    {
        Ok(Ok(_routed)) => None,
        Ok(Err(message)) => Some(message),
        Err(error) => {
            publish_failed(connection, &error);
            None
        }
    }
}

/// Appends a [`core_now`] message a stream captures; live subscribers get it once durable.
pub(crate) async fn captured(connection: &mut Connection, message: LiveMessage) {
    match publish_live(connection, message).await {
        Ok(LivePublish::Captured(pending)) => store_capture(connection, pending).await,
        // The stream went away since the lookup: delivered live instead. Or the subject is
        // a queue's name: enqueued, durably, already.
        Ok(LivePublish::Delivered(_)) | Ok(LivePublish::Enqueued { .. }) => {}
        Err(error) => publish_failed(connection, &error),
    }
}

/// A live publish through the connection's capture cache. The engine is borrowed, not
/// cloned: every publish of every connection cloning the one `Arc` made its count a cache
/// line the cores fought over (~10 % of a core publish).
async fn publish_live(
    connection: &mut Connection,
    message: LiveMessage,
) -> Result<LivePublish, EngineError> {
    connection
        .shared
        .engine
        .publish_live_cached(
            message,
            Some(connection.mailbox.id()),
            &mut connection.capture_cache,
        )
        .await
}

/// Keeps a captured publish among the connection's in-flight ones until it is durable.
async fn store_capture(connection: &mut Connection, pending: PendingCapture) {
    push_capture(
        connection,
        Box::pin(async move { pending.durable().await.map(drop) }),
    )
    .await;
}

/// `-ERR 'Publish Failed: …'` for a publish the engine refused.
fn publish_failed(connection: &mut Connection, error: &EngineError) {
    tracing::debug!(
        client_id = connection.client_id,
        "NATS publish refused: {error}"
    );
    connection.refuse(&format!("Publish Failed: {error}"));
}

pub(crate) async fn handle(
    connection: &mut Connection,
    publish: PublishOp,
) -> Result<(), NatsError> {
    // nats-server takes any subject as a reply, wildcards included (`a.*`): it is only
    // handed on; a responder publishing to it is refused then.
    let reply_valid = publish
        .reply
        .as_deref()
        .is_none_or(|r| omnibus_types::validate_pattern(r).is_ok());
    // A consumer-create call names its filter in the subject, wildcards included
    // (`$JS.API.CONSUMER.CREATE.<stream>.<name>.orders.>`), as nats-py sends it.
    let subject_valid = if publish.subject.starts_with(crate::jetstream::API_PREFIX) {
        omnibus_types::validate_pattern(&publish.subject).is_ok()
    } else {
        // A run on one subject is checked once (the engine's capture cache holds it).
        connection.capture_cache.holds(&publish.subject)
            || validate_subject(&publish.subject).is_ok()
    };
    if !subject_valid || !reply_valid {
        connection.refuse("Invalid Publish Subject");
        return Ok(());
    }
    let message_headers = match &publish.headers {
        None => Vec::new(),
        Some(block) => match headers::parse(block) {
            Ok(parsed) => parsed,
            Err(error) => {
                connection.refuse(&format!("Invalid Header: {error}"));
                return Ok(());
            }
        },
    };
    if publish.subject.starts_with(crate::jetstream::API_PREFIX) {
        crate::jetstream::api(
            connection,
            &publish.subject,
            publish.reply,
            &publish.payload,
        )
        .await;
        connection.acknowledge();
        return Ok(());
    }
    if publish
        .subject
        .starts_with(crate::jetstream::acks::ACK_PREFIX)
    {
        crate::jetstream::acks::handle(
            connection,
            &publish.subject,
            publish.reply,
            &publish.payload,
        )
        .await;
        connection.acknowledge();
        return Ok(());
    }
    if publish.subject.starts_with("$JS.FC.") {
        connection
            .shared
            .jetstream
            .flow_control_answered(&publish.subject);
        connection.acknowledge();
        return Ok(());
    }
    let reply = publish.reply;
    let message = LiveMessage {
        subject: publish.subject,
        reply: reply.clone(),
        headers: message_headers,
        payload: publish.payload,
        status: None,
        appended: false,
    };
    if crate::jetstream::wanted(&message) {
        let capturing = connection
            .shared
            .engine
            .stream_capturing_cached(&message.subject, &mut connection.capture_cache);
        if let Some(stream) = capturing {
            return crate::jetstream::publish(connection, stream, message).await;
        }
    }
    match publish_live(connection, message).await {
        Ok(LivePublish::Delivered(routed)) => {
            if routed.matched == 0 {
                if let Some(reply) = reply {
                    no_responders(connection, reply);
                }
            }
        }
        Ok(LivePublish::Captured(pending)) => store_capture(connection, pending).await,
        // Enqueued into the queue of that name: a worker may answer a request later, so
        // there is no "no responders" for it.
        Ok(LivePublish::Enqueued { .. }) => {}
        Err(error) => {
            publish_failed(connection, &error);
            return Ok(());
        }
    }
    connection.acknowledge();
    Ok(())
}

/// Adds a captured publish to the connection's in-flight ones, first waiting for the oldest
/// when `CAPTURES_IN_FLIGHT_MAX` are in flight.
pub(crate) async fn push_capture(connection: &mut Connection, capture: CaptureFuture) {
    if connection.captures.len() >= CAPTURES_IN_FLIGHT_MAX {
        if let Some(outcome) = connection.captures.next().await {
            capture_done(connection, outcome);
        }
    }
    connection.captures.push_back(capture);
}

/// Reports a captured publish whose append failed.
pub(crate) fn capture_done(connection: &mut Connection, outcome: Result<(), EngineError>) {
    if let Err(error) = outcome {
        tracing::warn!(
            client_id = connection.client_id,
            "a captured NATS publish failed: {error}"
        );
        connection.refuse(&format!("Publish Failed: {error}"));
    }
}

/// The 503 status on the requester's own subscription matching `reply`, if it wants one.
fn no_responders(connection: &mut Connection, reply: String) {
    if !connection.options.no_responders() {
        return;
    }
    let Some(token) = connection.subscriptions.matching(&reply) else {
        return;
    };
    let status = LiveMessage {
        subject: reply,
        reply: None,
        headers: Vec::new(),
        payload: bytes::Bytes::new(),
        status: None,
        appended: false,
    };
    connection.write_status(
        &Delivery {
            token,
            message: Arc::new(status),
        },
        headers::NO_RESPONDERS,
    );
}
