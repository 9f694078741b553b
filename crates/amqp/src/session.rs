//! One connection's I/O: the protocol header, then a loop that reads frames and hands them
//! to the connection state machine (`handlers/`), moves deliveries from the consumer tasks
//! into the write buffer, writes that buffer while reads go on, and keeps heartbeats — all
//! in one task, so a connection's state needs no lock.
//!
//! Heartbeats (the spec, §4.2.7): with a negotiated interval of H seconds we send a heartbeat
//! frame when we have sent nothing for H/2 seconds, and close the connection when nothing at
//! all has arrived for 2H (a dead peer). Bounds: a frame over frame_max is refused before it is
//! buffered (501 FRAME_ERROR); deliveries are taken from the consumer tasks only while the
//! write buffer is under `OUT_BYTES_HIGH`, so a client that stops reading holds its consumers
//! back rather than growing our memory; past `OUT_BYTES_MAX` its frames are not read either.
//! A publishing connection's frames are not read while a resource alarm is on
//! (`handlers/blocked.rs`).

use std::sync::Arc;
use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::connection::{self, AMQPMethod};
use amq_protocol::protocol::{basic, AMQPClass};
use bytes::{Buf, BytesMut};
use omnibus_listener::Accepted;
use omnibus_types::read_room::{ReadRoom, READ_ROOM_MIN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::codec::{self, FrameError, PROTOCOL_HEADER};
use crate::error::{reply, AmqpError};
use crate::handlers::{self, Connection, Phase, Shared, OUTBOUND_CAPACITY};

/// Above this much unwritten output, no more deliveries are taken from consumer tasks.
const OUT_BYTES_HIGH: usize = 4 * 1024 * 1024;
/// Above this much, the client's frames are not read either (its replies are waiting): TCP
/// holds it back until it reads what it was sent, as RabbitMQ's flow control does.
const OUT_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Deliveries moved into the write buffer in one round of the loop, so reads and heartbeats
/// still get their turn under a steady stream of deliveries.
const DELIVERIES_PER_ROUND_MAX: usize = 256;
/// How long a closing connection may take to flush its last bytes.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

pub(crate) async fn run(accepted: Accepted, shared: Arc<Shared>) -> Result<(), AmqpError> {
    let Accepted {
        stream,
        address: peer,
        id: connection_id,
        mut stopped,
    } = accepted;
    let (mut reader, mut writer) = stream.into_split();
    let mut input = BytesMut::with_capacity(READ_ROOM_MIN);
    // The protocol header, within the handshake timeout.
    let handshake_timeout = shared.config.handshake_timeout;
    let header = tokio::time::timeout(handshake_timeout, async {
        loop {
            match codec::decode_protocol_header(&mut input) {
                Ok(Some(())) => return Ok(()),
                Ok(None) => {}
                Err(error) => return Err(AmqpError::Frame(error)),
            }
            if reader.read_buf(&mut input).await? == 0 {
                return Err(AmqpError::ClientClosed);
            }
        }
    })
    .await;
    match header {
        Err(_) => return Err(AmqpError::HandshakeTimeout),
        Ok(Err(AmqpError::Frame(FrameError::WrongProtocolHeader))) => {
            // The spec: answer with the protocol header we speak, then close.
            let _ = tokio::time::timeout(CLOSE_FLUSH, writer.write_all(&PROTOCOL_HEADER)).await;
            let _ = writer.shutdown().await;
            return Ok(());
        }
        Ok(Err(error)) => return Err(error),
        Ok(Ok(())) => {}
    }
    let mut alarm = shared.alarm.clone();
    let (outbound_sender, mut outbound) = mpsc::channel(OUTBOUND_CAPACITY);
    let mut connection = Connection::new(shared.clone(), connection_id, outbound_sender);
    handlers::start(&mut connection);
    let handshake_deadline = Instant::now() + handshake_timeout;
    let mut last_received = Instant::now();
    let mut last_sent = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A publisher's pipeline, read in bigger pieces, is appended in bigger batches.
    let mut room = ReadRoom::new();
    let outcome: Result<(), AmqpError> = loop {
        let spare = input.capacity() - input.len();
        let step = tokio::select! {
            read = reader.read_buf(&mut input), if connection.out.len() < OUT_BYTES_MAX
                && !handlers::holds_reads(&connection, &alarm) => match read {
                Ok(0) => Err(AmqpError::ClientClosed),
                Ok(count) => {
                    last_received = Instant::now();
                    room.after_read(count, spare);
                    process(&mut connection, &mut input, room).await
                }
                Err(error) => Err(error.into()),
            },
            written = writer.write(&connection.out), if !connection.out.is_empty() => match written {
                Ok(0) => Err(AmqpError::ClientClosed),
                Ok(count) => {
                    connection.out.advance(count);
                    last_sent = Instant::now();
                    Ok(())
                }
                Err(error) => Err(error.into()),
            },
            Some(message) = outbound.recv(), if connection.out.len() < OUT_BYTES_HIGH => {
                handlers::deliver(&mut connection, message).await;
                // What else is waiting goes into the same write: one syscall for many
                // deliveries rather than a select round (and often a write) for each.
                let mut taken = 1;
                while taken < DELIVERIES_PER_ROUND_MAX && connection.out.len() < OUT_BYTES_HIGH {
                    let Ok(message) = outbound.try_recv() else {
                        break;
                    };
                    handlers::deliver(&mut connection, message).await;
                    taken += 1;
                }
                Ok(())
            }
            Ok(()) = alarm.changed() => Ok(()),
            _ = ticks.tick() => {
                // Input held back by a resource alarm is not a silent peer.
                if handlers::holds_reads(&connection, &alarm) {
                    last_received = Instant::now();
                }
                heartbeat(&mut connection, last_received, last_sent, handshake_deadline)
            }
            _ = stopped.changed() => {
                send_close(&mut connection, reply::CONNECTION_FORCED, "CONNECTION_FORCED - the broker is shutting down", (0, 0));
                break Ok(());
            }
        };
        if let Err(error) = step {
            break Err(error);
        }
        handlers::tell_blocked(&mut connection, &alarm);
        if connection.finished && connection.out.is_empty() {
            break Ok(());
        }
    };
    // A connection exception is told to the client before the connection goes.
    if let Err(AmqpError::Connection {
        code,
        text,
        class_id,
        method_id,
    }) = &outcome
    {
        send_close(&mut connection, *code, text, (*class_id, *method_id));
    }
    if let Err(AmqpError::Frame(error)) = &outcome {
        let ids = match error {
            FrameError::UnknownMethod {
                class_id,
                method_id,
            } => (*class_id, *method_id),
            FrameError::PrefetchSize(_) => (60, 10),
            _ => (0, 0),
        };
        send_close(
            &mut connection,
            frame_error_code(error),
            &error.to_string(),
            ids,
        );
    }
    if !matches!(outcome, Err(AmqpError::ClientClosed)) && !connection.out.is_empty() {
        let _ = tokio::time::timeout(CLOSE_FLUSH, writer.write_all(&connection.out)).await;
    }
    let _ = writer.shutdown().await;
    // Deliveries already handed over by consumer tasks go back to their queues.
    outbound.close();
    connection.tear_down().await;
    while let Ok(message) = outbound.try_recv() {
        handlers::deliver(&mut connection, message).await;
    }
    tracing::debug!(peer = %peer, connection_id, "AMQP connection ended");
    match outcome {
        Err(AmqpError::ClientClosed) => Ok(()),
        other => other,
    }
}

/// Handles every whole frame in `input`, then gives it `room` for the next read. Also the
/// state machines' fuzz entry (`fuzzing::session`), so the fuzzer drives this very path.
pub(crate) async fn process(
    connection: &mut Connection,
    input: &mut BytesMut,
    room: ReadRoom,
) -> Result<(), AmqpError> {
    let processed = process_frames(connection, input, room).await;
    connection.record_requests();
    processed
}

/// [`process`] without the request counting.
async fn process_frames(
    connection: &mut Connection,
    input: &mut BytesMut,
    room: ReadRoom,
) -> Result<(), AmqpError> {
    loop {
        // Body frames (most of a publisher's bytes) are handed over without a copy.
        if let Some((channel, body)) = codec::take_body(input, connection.frame_max)? {
            connection.handle_body(channel, body).await?;
        } else if let Some(header) = codec::take_header(input, connection.frame_max)? {
            // Kept as received: the message is stored with these bytes.
            connection.handle_header(header).await?;
        } else if let Some((channel, publish)) = codec::take_publish(input, connection.frame_max)? {
            // Parsed by hand (one per message), then handled as any method frame is.
            let method = AMQPClass::Basic(basic::AMQPMethod::Publish(publish));
            connection
                .handle_frame(AMQPFrame::Method(channel, method))
                .await?;
        } else if let Some(frame) = codec::decode(input, connection.frame_max)? {
            connection.handle_frame(frame).await?;
        } else {
            break;
        }
        if connection.finished {
            handlers::wake_consumers(connection);
            return Ok(());
        }
    }
    // No whole frame is left: the publishes read so far are enqueued and answered together,
    // and consumers given credit back by the acks read are woken once.
    handlers::flush_publishes(connection).await;
    handlers::wake_consumers(connection);
    let wanted = codec::bytes_wanted(input, connection.frame_max)?;
    room.prepare(input, wanted);
    Ok(())
}

fn heartbeat(
    connection: &mut Connection,
    last_received: Instant,
    last_sent: Instant,
    handshake_deadline: Instant,
) -> Result<(), AmqpError> {
    let now = Instant::now();
    if connection.phase != Phase::Running
        && connection.phase != Phase::Closing
        && now > handshake_deadline
    {
        return Err(AmqpError::HandshakeTimeout);
    }
    if connection.heartbeat == 0 {
        return Ok(());
    }
    let interval = Duration::from_secs(u64::from(connection.heartbeat));
    if now.duration_since(last_received) > interval * 2 {
        return Err(AmqpError::MissedHeartbeats);
    }
    if now.duration_since(last_sent) >= interval / 2 && connection.out.is_empty() {
        codec::encode(&mut connection.out, &AMQPFrame::Heartbeat);
    }
    Ok(())
}

/// RabbitMQ answers a method whose fields cannot be decoded with 501 ("cannot decode"), as
/// the spec defines FRAME_ERROR. For class or method ids it does not know, RabbitMQ's reader
/// exits and drops the socket without a word; we close with the spec's 540 NOT_IMPLEMENTED
/// and the ids, so the client learns why.
fn frame_error_code(error: &FrameError) -> u16 {
    match error {
        FrameError::UnknownType(_) => reply::FRAME_ERROR,
        FrameError::TooLarge { .. } | FrameError::MissingFrameEnd => reply::FRAME_ERROR,
        FrameError::Malformed => reply::FRAME_ERROR,
        FrameError::UnknownMethod { .. } | FrameError::PrefetchSize(_) => reply::NOT_IMPLEMENTED,
        FrameError::WrongProtocolHeader => reply::FRAME_ERROR,
    }
}

fn send_close(connection: &mut Connection, code: u16, text: &str, ids: (u16, u16)) {
    connection.phase = Phase::Closing;
    let text: String = text.chars().take(250).collect();
    connection.send(
        0,
        AMQPClass::Connection(AMQPMethod::Close(connection::Close {
            reply_code: code,
            reply_text: text.as_str().into(),
            class_id: ids.0,
            method_id: ids.1,
        })),
    );
}
