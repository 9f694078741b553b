//! Fuzz bodies, shared by the cargo-fuzz targets and their proptest twins here: the frame
//! decoder path a session uses, fed arbitrary bytes (`frames`, `fuzz_targets/amqp_frames.rs`),
//! and the connection and channel state machines behind it (`session`,
//! `fuzz_targets/amqp_session.rs`), driven without a socket over a real engine.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{channel, connection, AMQPClass};
use bytes::BytesMut;
use omnibus_engine::{Engine, EngineConfig};
use omnibus_types::read_room::ReadRoom;
use tokio::sync::mpsc;

use crate::codec;
use crate::config::AmqpConfig;
use crate::handlers::{self, Connection, Shared, OUTBOUND_CAPACITY};

/// Longer than any input's handling may take: past it, a state machine is stuck.
const SESSION_INPUT_MAX_TIME: Duration = Duration::from_secs(20);
/// Deliveries taken from consumer tasks after each read, at most.
const SESSION_DELIVERIES_MAX: usize = 64;
/// How long a connection with consumers waits for each delivery after a read.
const DELIVERY_WAIT: Duration = Duration::from_millis(20);

/// The temporary folders of the fuzz engines, one per process (`<prefix><pid>`).
const FOLDER_PREFIX: &str = "omnibus-amqp-fuzz-";

/// Removes the folders earlier fuzz processes left behind (a static's engine is never
/// dropped, so its folder outlives the process): those whose process is gone. Only where
/// `/proc` tells which processes live.
fn sweep_leftovers() {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.strip_prefix(FOLDER_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
            if pid != std::process::id() && !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// One runtime and one engine (in a temporary folder) for every input of a process: opening
/// an engine per input would cost more than the input. Queues and exchanges an input
/// declares stay for the next ones, as they would on a broker with many clients.
fn world() -> &'static (tokio::runtime::Runtime, Arc<Shared>) {
    static WORLD: OnceLock<(tokio::runtime::Runtime, Arc<Shared>)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        sweep_leftovers();
        let folder = std::env::temp_dir().join(format!("{FOLDER_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let shared = runtime.block_on(async {
            let engine = Engine::open(EngineConfig::new(&folder))
                .await
                .expect("an engine");
            Arc::new(Shared {
                alarm: handlers::watch_alarm(engine.clone()),
                rotations: Default::default(),
                engine,
                config: AmqpConfig::default(),
                owners: Mutex::new(Default::default()),
                replies: Mutex::new(Default::default()),
            })
        });
        (runtime, shared)
    })
}

/// The client's side of a handshake that succeeds, then channel 1 opened: the prefix every
/// `session` input gets, so that the fuzzer's bytes reach the channel methods.
fn handshake() -> BytesMut {
    let mut out = BytesMut::from(&codec::PROTOCOL_HEADER[..]);
    let methods = [
        (
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: Default::default(),
                mechanism: "PLAIN".into(),
                response: "\0guest\0guest".into(),
                locale: "en_US".into(),
            })),
        ),
        (
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 16,
                frame_max: FUZZ_FRAME_MAX,
                heartbeat: 0,
            })),
        ),
        (
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: "/".into(),
            })),
        ),
        (
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        ),
    ];
    for (channel, method) in methods {
        codec::encode(&mut out, &AMQPFrame::Method(channel, method));
    }
    out
}

/// Feeds `data` (after a handshake and channel.open) to one connection's state machine, in
/// two reads as a socket might deliver it, exactly as the session does, then ends the
/// connection as a dropped socket would. Must never panic nor hang, and everything the
/// server writes must be frames a client can decode.
pub fn session(data: &[u8]) {
    let _ = session_frames(data);
}

/// [`session`], answering the frames the server wrote.
fn session_frames(data: &[u8]) -> Vec<AMQPFrame> {
    static NEXT_CONNECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let Some((&split, data)) = data.split_first() else {
        return Vec::new();
    };
    let split = (split as usize * data.len()) / 255;
    let (first, second) = data.split_at(split.min(data.len()));
    let (runtime, shared) = world();
    let id = NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    runtime.block_on(async {
        let run = async {
            let (sender, mut outbound) = mpsc::channel(OUTBOUND_CAPACITY);
            let mut connection = Connection::new(shared.clone(), id, sender);
            handlers::start(&mut connection);
            let mut input = handshake();
            // The protocol header is the session's to read, before the state machine runs.
            bytes::Buf::advance(&mut input, codec::PROTOCOL_HEADER.len());
            let mut room = ReadRoom::new();
            for chunk in [first, second] {
                input.extend_from_slice(chunk);
                let spare = input.capacity() - input.len();
                room.after_read(chunk.len(), spare);
                let step = crate::session::process(&mut connection, &mut input, room).await;
                if step.is_err() || connection.finished {
                    break;
                }
                // Consumers hand deliveries over from their own tasks: a moment for them, so
                // the next read's acks can find delivery tags.
                let consuming = connection
                    .channels
                    .values()
                    .any(|channel| !channel.consumers.is_empty());
                for _ in 0..SESSION_DELIVERIES_MAX {
                    let wait = if consuming {
                        DELIVERY_WAIT
                    } else {
                        Duration::ZERO
                    };
                    let Ok(Some(message)) = tokio::time::timeout(wait, outbound.recv()).await
                    else {
                        break;
                    };
                    handlers::deliver(&mut connection, message).await;
                }
            }
            outbound.close();
            connection.tear_down().await;
            while let Ok(message) = outbound.try_recv() {
                handlers::deliver(&mut connection, message).await;
            }
            // What we wrote decodes: no frame of ours is one a client would refuse.
            let mut written = std::mem::take(&mut connection.out);
            let mut frames = Vec::new();
            loop {
                match codec::decode(&mut written, u32::MAX) {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(error) => panic!("the server wrote an undecodable frame: {error}"),
                }
            }
            assert!(written.is_empty(), "the server wrote a partial frame");
            frames
        };
        tokio::time::timeout(SESSION_INPUT_MAX_TIME, run)
            .await
            .expect("the state machines handle an input in time")
    })
}

/// A small frame_max, so that inputs reach the limit.
const FUZZ_FRAME_MAX: u32 = 4096;

/// Feeds `data` to the decoder in two chunks (split where the first byte says), as a socket
/// might deliver it: the protocol header, then frames, each decoded frame serialised again.
/// Must never panic, and what waits for more bytes is never more than one frame of
/// frame_max.
pub fn frames(data: &[u8]) {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let split = (split as usize * data.len()) / 255;
    let (first, second) = data.split_at(split.min(data.len()));
    let mut input = BytesMut::new();
    // Inputs that start with the header test the frames; the others the header check.
    let mut header_read = !data.starts_with(b"AMQP");
    for chunk in [first, second] {
        input.extend_from_slice(chunk);
        if !header_read {
            match codec::decode_protocol_header(&mut input) {
                Ok(Some(())) => header_read = true,
                Ok(None) => continue,
                Err(_) => return,
            }
        }
        loop {
            // The session's zero-copy path for body frames must agree with the full decoder.
            let mut copy = input.clone();
            match codec::take_body(&mut input, FUZZ_FRAME_MAX) {
                Ok(Some((channel, body))) => {
                    let decoded = codec::decode(&mut copy, FUZZ_FRAME_MAX);
                    assert_eq!(
                        decoded,
                        Ok(Some(amq_protocol::frame::AMQPFrame::Body(
                            channel,
                            body.to_vec()
                        )))
                    );
                    assert_eq!(copy, input);
                    continue;
                }
                Ok(None) => {}
                Err(_) => return,
            }
            // And its path for basic.publish, taken without the generated parser.
            let mut copy = input.clone();
            match codec::take_publish(&mut input, FUZZ_FRAME_MAX) {
                Ok(Some((channel, publish))) => {
                    let decoded = codec::decode(&mut copy, FUZZ_FRAME_MAX);
                    assert_eq!(
                        decoded,
                        Ok(Some(amq_protocol::frame::AMQPFrame::Method(
                            channel,
                            amq_protocol::protocol::AMQPClass::Basic(
                                amq_protocol::protocol::basic::AMQPMethod::Publish(publish)
                            )
                        )))
                    );
                    assert_eq!(copy, input);
                    continue;
                }
                Ok(None) => {}
                Err(_) => {
                    assert!(codec::decode(&mut copy, FUZZ_FRAME_MAX).is_err());
                    return;
                }
            }
            // So must its path for content headers, which keeps the encoded properties.
            let mut copy = input.clone();
            match codec::take_header(&mut input, FUZZ_FRAME_MAX) {
                Ok(Some(taken)) => {
                    let decoded = codec::decode(&mut copy, FUZZ_FRAME_MAX);
                    assert_eq!(
                        decoded,
                        Ok(Some(amq_protocol::frame::AMQPFrame::Header(
                            taken.channel,
                            taken.header
                        )))
                    );
                    assert_eq!(copy, input);
                    continue;
                }
                Ok(None) => {}
                Err(_) => {
                    assert!(codec::decode(&mut copy, FUZZ_FRAME_MAX).is_err());
                    return;
                }
            }
            match codec::decode(&mut input, FUZZ_FRAME_MAX) {
                Ok(Some(frame)) => {
                    let mut out = BytesMut::new();
                    codec::encode(&mut out, &frame);
                }
                Ok(None) => {
                    // Only a frame that is allowed, and not whole yet, waits.
                    assert!(input.len() < FUZZ_FRAME_MAX as usize);
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// Frames a client sends, as bytes: the fuzzer's starting points for `session`.
    fn client_frames(frames: &[(u16, amq_protocol::protocol::AMQPClass)]) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        for (channel, method) in frames {
            crate::codec::encode_method(&mut out, *channel, method.clone());
        }
        out.to_vec()
    }

    /// A consumer, a publish to it, and (with `ack`) the ack of its delivery.
    fn seed(ack: bool) -> Vec<u8> {
        use amq_protocol::protocol::{basic, queue, AMQPClass};
        let mut data = vec![128];
        data.extend(client_frames(&[
            (
                1,
                AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                    queue: "fuzzed".into(),
                    passive: false,
                    durable: false,
                    exclusive: true,
                    auto_delete: false,
                    nowait: false,
                    arguments: Default::default(),
                })),
            ),
            (
                1,
                AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                    queue: "fuzzed".into(),
                    consumer_tag: "c".into(),
                    no_local: false,
                    no_ack: false,
                    exclusive: false,
                    nowait: false,
                    arguments: Default::default(),
                })),
            ),
        ]));
        let mut publish = bytes::BytesMut::new();
        crate::codec::encode_content(
            &mut publish,
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: "fuzzed".into(),
                mandatory: true,
                immediate: false,
            })),
            basic::AMQPProperties::default(),
            b"body",
            4096,
        );
        data.extend_from_slice(&publish);
        if !ack {
            // Split after everything: one read.
            data[0] = 255;
            return data;
        }
        data.extend(client_frames(&[(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag: 1,
                multiple: true,
            })),
        )]));
        data
    }

    #[test]
    fn a_real_client_conversation_runs_through_the_session_fuzz_body() {
        use amq_protocol::frame::AMQPFrame;
        use amq_protocol::protocol::{basic, channel, AMQPClass};
        let frames = super::session_frames(&seed(false));
        // The prefix reached a running channel, and the seed a delivery: mutations of it
        // start from deep in the state machines, not from the handshake.
        assert!(frames.iter().any(|f| matches!(
            f,
            AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))
        )));
        assert!(
            frames.iter().any(|f| matches!(
                f,
                AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Deliver(_)))
            )),
            "{frames:?}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn mutated_conversations_never_panic_or_stall_the_state_machines(
            position in 0usize..512,
            byte in any::<u8>(),
            cut in 0usize..512,
        ) {
            let mut data = seed(true);
            let index = 1 + position % (data.len() - 1);
            data[index] = byte;
            data.truncate(1 + cut.max(index));
            super::session(&data);
        }

        #[test]
        fn arbitrary_bytes_after_the_handshake_never_panic_the_state_machines(
            data in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            super::session(&data);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(data in prop::collection::vec(any::<u8>(), 0..512)) {
            super::frames(&data);
        }

        #[test]
        fn mutated_real_frames_never_panic_the_decoder(
            position in 0usize..64,
            byte in any::<u8>(),
            split in any::<u8>(),
        ) {
            // A method frame (queue.declare) and a content header with properties, one
            // byte changed.
            let mut out = bytes::BytesMut::new();
            crate::codec::encode_content(
                &mut out,
                1,
                amq_protocol::protocol::AMQPClass::Basic(
                    amq_protocol::protocol::basic::AMQPMethod::Publish(
                        amq_protocol::protocol::basic::Publish {
                            exchange: "e".into(),
                            routing_key: "k".into(),
                            mandatory: true,
                            immediate: false,
                        },
                    ),
                ),
                amq_protocol::protocol::basic::AMQPProperties::default()
                    .with_content_type("text/plain".into()),
                b"body",
                4096,
            );
            let mut data = vec![split];
            data.extend_from_slice(b"AMQP\x00\x00\x09\x01");
            data.extend_from_slice(&out);
            let index = position % data.len().max(1);
            if index > 8 {
                data[index] = byte;
            }
            super::frames(&data);
        }
    }
}
