//! One connection: INFO first, then a loop that reads and handles operations, moves the
//! engine's deliveries from the connection's mailbox into the write buffer, writes that buffer
//! whenever the socket takes bytes, sends PINGs, and collects captured publishes as their
//! streams acknowledge them — all in one task, so one connection's state needs no lock.
//!
//! Writing is batched: every delivery and reply is appended to one buffer and the socket gets
//! as much of it as it takes per system call. Reading never waits for writing, so a client
//! that stops reading is noticed: its deliveries stay in the engine mailbox (the write buffer
//! takes a batch of them at a time, see `Connection::pump_mailbox`), the mailbox reaches its
//! bound, and the connection is closed as a slow consumer — without `-ERR`, as nats-server
//! does. Replies the client provokes itself (PONGs, errors) are bounded by
//! `pending_bytes_max` the same way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::{FutureExt, StreamExt};
use omnibus_engine::router::Delivery;
use omnibus_listener::Accepted;
use omnibus_types::ReadRoom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::codec::{bytes_wanted, encode, parse, ClientOp};
use crate::error::NatsError;
use crate::handlers::{Connection, Shared, OUT_BATCH_BYTES};

/// The room the write buffer starts with (and is given back to).
const OUT_BYTES_MIN: usize = 16 * 1024;
/// An empty write buffer holding more room than this (after a burst of deliveries) is given
/// back, so an idle connection does not keep its peak.
const IDLE_BUFFER_BYTES_MAX: usize = 1024 * 1024;
/// How long a closing connection may take to flush its last bytes (an `-ERR`).
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// nats-server's version line we advertise: nats-py uses the consumer API of 2.9 and later
/// only when it sees one, and a 3.x version would break that check.
pub(crate) const ADVERTISED_VERSION: &str = "2.10.22";

pub(crate) async fn run(accepted: Accepted, shared: Arc<Shared>) -> Result<(), NatsError> {
    let Accepted {
        stream,
        address: peer,
        id: client_id,
        mut stopped,
    } = accepted;
    let (mut reader, mut writer) = stream.into_split();
    let mut connection = Connection::new(shared.clone(), client_id);
    write_info(&mut connection, peer);
    // A publisher's pipeline, read in bigger pieces, is stored in bigger batches.
    let mut room = ReadRoom::new();
    let mut input = BytesMut::with_capacity(room.get());
    let mut deliveries: Vec<Delivery> = Vec::new();
    let interval = shared.config.ping_interval.max(Duration::from_millis(10));
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        let spare = input.capacity() - input.len();
        let step = tokio::select! {
            read = reader.read_buf(&mut input) => match read {
                Ok(0) => Err(NatsError::ClientClosed),
                Ok(count) => {
                    room.after_read(count, spare);
                    process(&mut connection, &mut input, room).await
                }
                Err(error) => Err(error.into()),
            },
            written = writer.write(&connection.out), if !connection.out.is_empty() => match written {
                Ok(0) => Err(NatsError::ClientClosed),
                Ok(count) => {
                    connection.out.advance(count);
                    if connection.out.is_empty() && connection.out.capacity() > IDLE_BUFFER_BYTES_MAX {
                        connection.out = BytesMut::with_capacity(OUT_BYTES_MIN);
                    }
                    Ok(())
                }
                Err(error) => Err(error.into()),
            },
            () = connection.mailbox.ready() => Ok(()),
            Some(outcome) = connection.captures.next(), if !connection.captures.is_empty() => {
                crate::handlers::capture_done(&mut connection, outcome);
                // One fsync acknowledges many captures at once: take every one that is
                // ready now, so their answers leave in one write rather than one each.
                while let Some(Some(outcome)) = connection.captures.next().now_or_never() {
                    crate::handlers::capture_done(&mut connection, outcome);
                }
                Ok(())
            }
            // Pulled messages wait in their bounded channel (holding their tasks back) while
            // the write buffer holds a batch already.
            Some(output) = connection.pulls_rx.recv(), if connection.out.len() < OUT_BATCH_BYTES => {
                connection.write_pull(output);
                // Take every hand-over waiting now, so they leave in one write.
                while connection.out.len() < OUT_BATCH_BYTES {
                    let Ok(output) = connection.pulls_rx.try_recv() else {
                        break;
                    };
                    connection.write_pull(output);
                }
                Ok(())
            }
            _ = pings.tick() => server_ping(&mut connection),
            _ = stopped.changed() => break Ok(()),
        };
        if let Err(error) = step.and_then(|()| connection.pump_mailbox(&mut deliveries)) {
            break Err(error);
        }
    };
    if let Err(error) = &outcome {
        if let Some(text) = error.client_text() {
            encode::error(&mut connection.out, text);
        }
    }
    // A slow consumer is cut off at once: flushing to a client that does not read would
    // only wait.
    if !matches!(
        outcome,
        Err(NatsError::SlowConsumer | NatsError::ClientClosed)
    ) {
        let flush = writer.write_all(&connection.out);
        let _ = tokio::time::timeout(CLOSE_FLUSH, flush).await;
    }
    let _ = writer.shutdown().await;
    finish_captures(&mut connection);
    match outcome {
        Err(NatsError::ClientClosed) => Ok(()),
        other => other,
    }
}

/// `INFO`: what nats-server sends, with `jetstream` (the `$JS.API` subset in `jetstream/`).
fn write_info(connection: &mut Connection, peer: SocketAddr) {
    let shared = &connection.shared;
    let info = serde_json::json!({
        "server_id": shared.server_id,
        "server_name": shared.config.server_name,
        "version": ADVERTISED_VERSION,
        "proto": 1,
        "go": "omnibus",
        "host": shared.host,
        "port": shared.port,
        "headers": true,
        "jetstream": true,
        "max_payload": shared.config.max_payload,
        "client_id": connection.client_id,
        "client_ip": peer.ip().to_string(),
    });
    encode::info(&mut connection.out, info.to_string().as_bytes());
}

/// Parses and handles every whole operation in `input`, then gives it `room` for the next
/// read.
async fn process(
    connection: &mut Connection,
    input: &mut BytesMut,
    room: ReadRoom,
) -> Result<(), NatsError> {
    let max_payload = connection.shared.config.max_payload;
    let mut operations = 0;
    let handled = loop {
        match parse(input, max_payload) {
            Ok(Some(ClientOp::Publish(publish)))
                if crate::handlers::publish::plain_core(connection, &publish) =>
            {
                operations += 1;
                // Routed here without building the handler's future: most of a core publish.
                if let Some(message) = crate::handlers::publish::core_now(connection, publish) {
                    crate::handlers::publish::captured(connection, message).await;
                }
            }
            Ok(Some(op)) => {
                operations += 1;
                if let Err(error) = connection.handle(op).await {
                    break Err(error);
                }
            }
            Ok(None) => break Ok(()),
            Err(error) => break Err(error.into()),
        }
    };
    // Counted once per read: one shared counter bumped per operation was a cache line every
    // connection's core wrote.
    if operations > 0 {
        connection
            .shared
            .engine
            .metrics()
            .door(omnibus_engine::metrics::Door::Nats)
            .requests(operations);
    }
    // Publishes read together are stored together, and never wait for more input (nor are
    // lost to a malformed operation after them).
    let flushed = crate::handlers::flush_publishes(connection).await;
    handled.and(flushed)?;
    // A payload still arriving gets its room once, rather than a little per read.
    let wanted = bytes_wanted(input, max_payload).unwrap_or(0);
    room.prepare(input, wanted.saturating_sub(input.len()));
    Ok(())
}

fn server_ping(connection: &mut Connection) -> Result<(), NatsError> {
    if connection.pings_outstanding >= connection.shared.config.pings_outstanding_max {
        return Err(NatsError::StaleConnection);
    }
    connection.pings_outstanding += 1;
    encode::ping(&mut connection.out);
    Ok(())
}

/// Captured publishes still in flight are in their streams' logs already; they are left to
/// finish (and reach live subscribers) after the connection is gone.
fn finish_captures(connection: &mut Connection) {
    if connection.captures.is_empty() {
        return;
    }
    let mut captures = std::mem::take(&mut connection.captures);
    let client_id = connection.client_id;
    tokio::spawn(async move {
        while let Some(outcome) = captures.next().await {
            if let Err(error) = outcome {
                tracing::warn!(
                    client_id,
                    "a captured NATS publish failed after its client left: {error}"
                );
            }
        }
    });
}
