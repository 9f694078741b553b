//! A lean AMQP 0-9-1 publisher for the publish workload (`--client lean`, the default).
//!
//! Why: the client shares the bench machine's cores with the broker, so a heavy client
//! lowers every figure it measures, and the faster broker the most. lapin spent 6–9 µs of
//! CPU per confirmed publish on the 2-core machine (a promise, a channel lock and a hop to
//! its I/O thread for each message), twice what Omnibus spent serving it, so a run measured
//! the client as much as the broker. The same reasoning gave the Omnibus HTTP driver its own
//! lean connection (`http1.rs`).
//!
//! What it does is what lapin does for this workload, on one task per connection: the
//! handshake (PLAIN as guest), channel 1, `confirm.select`, then a window of persistent
//! `basic.publish`es to the default exchange, each message's frames written together and
//! several messages per write, and the confirms (`basic.ack`, `multiple` or not) read as
//! they come. A `basic.nack`, a `channel.close` or a `connection.close` ends the run with an
//! error. Frames are built and parsed by the `amq-protocol` crate's generated code (the codec
//! the Omnibus door and lapin use); the state machine around them is written here.
//!
//! Reads and writes take turns on the one task. That cannot deadlock: at most the window's
//! messages are written before the confirms are read, and the confirms of a whole window
//! (a few bytes each) fit the socket's buffers whatever the broker does.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use amq_protocol::frame::{gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, WriteContext};
use amq_protocol::protocol::basic::{self, AMQPProperties};
use amq_protocol::protocol::{channel, confirm, connection, queue, AMQPClass};
use amq_protocol::types::FieldTable;
use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::error::{BenchError, Result};
use crate::load::{self, Budget};

/// `AMQP 0 0 9 1`.
const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// Type, channel and size before every frame's payload; the frame-end octet after it.
const FRAME_HEADER_BYTES: usize = 7;
const FRAME_END: u8 = 0xCE;
/// The largest frame asked for in tune-ok (the broker may offer less).
const FRAME_MAX: u32 = 128 * 1024;
/// The channel everything is published on.
const CHANNEL: u16 = 1;
/// Class id of basic, for the content header.
const BASIC_CLASS: u16 = 60;
/// Persistent: written to disk before it is confirmed.
const DELIVERY_MODE_PERSISTENT: u8 = 2;
/// How long after the budget's deadline outstanding confirms are waited for.
const CONFIRM_GRACE: Duration = Duration::from_secs(10);
/// Bytes read from the socket at a time.
const READ_BYTES: usize = 64 * 1024;

/// One connection with channel 1 open in confirm mode.
pub struct Publisher {
    stream: TcpStream,
    /// Bytes read and not yet taken as frames.
    input: Vec<u8>,
    frame_max: u32,
}

impl Publisher {
    /// Connects as `guest`/`guest` to vhost `/`, opens channel 1 and selects confirms.
    pub async fn connect(address: &str) -> Result<Publisher> {
        let stream = TcpStream::connect(address).await?;
        // Publishes are written whole; Nagle would only hold the next ones back.
        stream.set_nodelay(true)?;
        let mut publisher = Publisher {
            stream,
            input: Vec::with_capacity(READ_BYTES),
            frame_max: FRAME_MAX,
        };
        publisher.stream.write_all(PROTOCOL_HEADER).await?;
        publisher
            .expect(0, "connection.start", |class| {
                matches!(
                    class,
                    AMQPClass::Connection(connection::AMQPMethod::Start(_))
                )
            })
            .await?;
        let start_ok = connection::StartOk {
            client_properties: FieldTable::default(),
            mechanism: "PLAIN".into(),
            response: "\0guest\0guest".into(),
            locale: "en_US".into(),
        };
        publisher
            .send(
                0,
                AMQPClass::Connection(connection::AMQPMethod::StartOk(start_ok)),
            )
            .await?;
        let tune = publisher
            .expect(0, "connection.tune", |class| {
                matches!(
                    class,
                    AMQPClass::Connection(connection::AMQPMethod::Tune(_))
                )
            })
            .await?;
        let AMQPClass::Connection(connection::AMQPMethod::Tune(tune)) = tune else {
            unreachable!("matched above");
        };
        // 0 means "no limit" from the broker.
        if tune.frame_max != 0 {
            publisher.frame_max = tune.frame_max.min(FRAME_MAX);
        }
        let tune_ok = connection::TuneOk {
            channel_max: tune.channel_max,
            frame_max: publisher.frame_max,
            // No heartbeats: a run lasts seconds and the connection is never idle.
            heartbeat: 0,
        };
        publisher
            .send(
                0,
                AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok)),
            )
            .await?;
        let open = connection::Open {
            virtual_host: "/".into(),
        };
        publisher
            .send(0, AMQPClass::Connection(connection::AMQPMethod::Open(open)))
            .await?;
        publisher
            .expect(0, "connection.open-ok", |class| {
                matches!(
                    class,
                    AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))
                )
            })
            .await?;
        publisher
            .send(
                CHANNEL,
                AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
            )
            .await?;
        publisher
            .expect(CHANNEL, "channel.open-ok", |class| {
                matches!(class, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))
            })
            .await?;
        let select = confirm::Select { nowait: false };
        publisher
            .send(
                CHANNEL,
                AMQPClass::Confirm(confirm::AMQPMethod::Select(select)),
            )
            .await?;
        publisher
            .expect(CHANNEL, "confirm.select-ok", |class| {
                matches!(class, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_)))
            })
            .await?;
        Ok(publisher)
    }

    /// Declares a durable queue (idempotent, as every AMQP declare).
    pub async fn declare_durable(&mut self, name: &str) -> Result<()> {
        let declare = queue::Declare {
            queue: name.into(),
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments: FieldTable::default(),
        };
        self.send(
            CHANNEL,
            AMQPClass::Queue(queue::AMQPMethod::Declare(declare)),
        )
        .await?;
        self.expect(CHANNEL, "queue.declare-ok", |class| {
            matches!(class, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))
        })
        .await?;
        Ok(())
    }

    /// Publishes persistent messages of `payload` to `queue` (default exchange) until the
    /// budget is spent, keeping `window` unconfirmed; returns each message's time from its
    /// write to its confirm.
    pub async fn publish_window(
        &mut self,
        budget: &Budget,
        window: usize,
        queue: &str,
        payload: &[u8],
    ) -> Result<Histogram<u64>> {
        let message = message_frames(queue, payload, self.frame_max);
        let mut latencies = load::histogram();
        // The write time of every unconfirmed message, oldest first; the first has delivery
        // tag `first_tag` (tags count publishes on the channel from 1). `None` once its
        // confirm came ahead of an older one's.
        let mut sent: VecDeque<Option<Instant>> = VecDeque::with_capacity(window);
        let mut first_tag = 1u64;
        let mut unconfirmed = 0usize;
        let mut out = Vec::with_capacity(window.min(1_024) * message.len());
        let mut exhausted = false;
        let patience = budget.deadline() + CONFIRM_GRACE;
        loop {
            while !exhausted && unconfirmed < window {
                if budget.claim(1) == 0 {
                    exhausted = true;
                    break;
                }
                out.extend_from_slice(&message);
                sent.push_back(Some(Instant::now()));
                unconfirmed += 1;
            }
            if !out.is_empty() {
                self.stream.write_all(&out).await?;
                out.clear();
            }
            if unconfirmed == 0 {
                return Ok(latencies);
            }
            let first = match tokio::time::timeout_at(patience.into(), self.next_frame()).await {
                Ok(frame) => frame?,
                Err(_) => {
                    return Err(BenchError::Incomplete(format!(
                        "{unconfirmed} publishes were not confirmed in time"
                    )))
                }
            };
            // Every confirm already read is taken before the window is refilled, so the next
            // write carries all the messages they made room for.
            let mut frame = Some(first);
            while let Some(this) = frame.take() {
                let finished = Self::confirm(this, &mut sent, &mut first_tag, &mut latencies)?;
                unconfirmed -= finished as usize;
                budget.finish(finished);
                frame = self.take_frame()?;
            }
        }
    }

    /// Takes a confirm off the unconfirmed messages (`sent`, the first with delivery tag
    /// `first_tag`), recording each confirmed message's latency; returns how many it
    /// confirmed. A nack or any other method is an error.
    fn confirm(
        frame: AMQPFrame,
        sent: &mut VecDeque<Option<Instant>>,
        first_tag: &mut u64,
        latencies: &mut Histogram<u64>,
    ) -> Result<u64> {
        let (tag, multiple) = match frame {
            AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))) => {
                (ack.delivery_tag, ack.multiple)
            }
            AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Nack(_))) => {
                return Err(BenchError::Broker {
                    system: "rabbitmq",
                    status: "nack".into(),
                    body: "the broker refused a publish".into(),
                })
            }
            AMQPFrame::Heartbeat => return Ok(0),
            other => return Err(unexpected("basic.ack", &other)),
        };
        let last = *first_tag + sent.len() as u64;
        if tag >= last {
            return Err(BenchError::Incomplete(format!(
                "a confirm for delivery tag {tag}, beyond the {} sent",
                last - 1
            )));
        }
        if tag < *first_tag {
            // Already confirmed: a `multiple` ack covered it.
            return Ok(0);
        }
        let now = Instant::now();
        // A `multiple` ack confirms every message up to its tag; a single one, its own.
        let (from, to) = if multiple {
            (0, (tag - *first_tag) as usize)
        } else {
            let index = (tag - *first_tag) as usize;
            (index, index)
        };
        let mut finished = 0u64;
        for slot in sent.range_mut(from..=to) {
            if let Some(at) = slot.take() {
                load::record(latencies, now - at);
                finished += 1;
            }
        }
        while let Some(None) = sent.front() {
            sent.pop_front();
            *first_tag += 1;
        }
        Ok(finished)
    }

    /// Closes the connection as a client should (connection.close, then close-ok), so the
    /// broker does not log a dropped connection; a broker that does not answer is left.
    pub async fn close(mut self) {
        let close = connection::Close {
            reply_code: 200,
            reply_text: "run over".into(),
            class_id: 0,
            method_id: 0,
        };
        if self
            .send(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Close(close)),
            )
            .await
            .is_err()
        {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(frame) = self.next_frame().await {
                if matches!(
                    frame,
                    AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))
                ) {
                    break;
                }
            }
        })
        .await;
    }

    async fn send(&mut self, channel: u16, method: AMQPClass) -> Result<()> {
        let mut out = Vec::new();
        encode(&mut out, &AMQPFrame::Method(channel, method));
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// The next method on `channel`, which must be what `wanted` accepts (`name` for errors).
    async fn expect(
        &mut self,
        channel: u16,
        name: &str,
        wanted: impl Fn(&AMQPClass) -> bool,
    ) -> Result<AMQPClass> {
        loop {
            match self.next_frame().await? {
                AMQPFrame::Heartbeat => continue,
                AMQPFrame::Method(on, class) if on == channel && wanted(&class) => {
                    return Ok(class)
                }
                other => return Err(unexpected(name, &other)),
            }
        }
    }

    /// Reads until one whole frame is there and takes it.
    async fn next_frame(&mut self) -> Result<AMQPFrame> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(frame);
            }
            if crate::drivers::read_into(&mut self.stream, &mut self.input, READ_BYTES).await? == 0
            {
                return Err(broken("the broker closed the connection"));
            }
        }
    }

    fn take_frame(&mut self) -> Result<Option<AMQPFrame>> {
        if self.input.len() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let size = u32::from_be_bytes([self.input[3], self.input[4], self.input[5], self.input[6]]);
        let total = FRAME_HEADER_BYTES + size as usize + 1;
        if total > self.frame_max.max(FRAME_MAX) as usize {
            return Err(broken(&format!(
                "a frame of {total} bytes is over frame_max"
            )));
        }
        if self.input.len() < total {
            return Ok(None);
        }
        if self.input[total - 1] != FRAME_END {
            return Err(broken("a frame does not end with 0xCE"));
        }
        let frame = match parse_frame(&self.input[..total]) {
            Ok(([], frame)) => frame,
            _ => return Err(broken("a frame could not be decoded")),
        };
        self.input.drain(..total);
        Ok(Some(frame))
    }
}

/// The frames of one persistent message to `queue` on the default exchange: basic.publish,
/// its content header and its body in frames of at most `frame_max` bytes. Every message of
/// a run is these same bytes, so they are built once.
fn message_frames(queue: &str, payload: &[u8], frame_max: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 128);
    let publish = basic::Publish {
        exchange: "".into(),
        routing_key: queue.into(),
        mandatory: false,
        immediate: false,
    };
    encode(
        &mut out,
        &AMQPFrame::Method(
            CHANNEL,
            AMQPClass::Basic(basic::AMQPMethod::Publish(publish)),
        ),
    );
    let header = AMQPContentHeader {
        class_id: BASIC_CLASS,
        body_size: payload.len() as u64,
        properties: AMQPProperties::default().with_delivery_mode(DELIVERY_MODE_PERSISTENT),
    };
    encode(&mut out, &AMQPFrame::Header(CHANNEL, header));
    let room = frame_max as usize - FRAME_HEADER_BYTES - 1;
    for piece in payload.chunks(room) {
        encode(&mut out, &AMQPFrame::Body(CHANNEL, piece.to_vec()));
    }
    out
}

fn encode(out: &mut Vec<u8>, frame: &AMQPFrame) {
    // Serialising into a growing Vec cannot run out of room.
    if let Ok(written) = gen_frame(frame)(WriteContext::from(Vec::new())) {
        out.extend_from_slice(&written.write);
    }
}

/// A frame that is not the one expected; a close carries the broker's reason.
fn unexpected(wanted: &str, frame: &AMQPFrame) -> BenchError {
    let reason = match frame {
        AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(close))) => {
            format!(
                "connection closed: {} {}",
                close.reply_code, close.reply_text
            )
        }
        AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(close))) => {
            format!("channel closed: {} {}", close.reply_code, close.reply_text)
        }
        other => format!("expected {wanted}, got {other:?}"),
    };
    broken(&reason)
}

fn broken(why: &str) -> BenchError {
    BenchError::Broker {
        system: "rabbitmq",
        status: "protocol".into(),
        body: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_a_publish_a_header_and_its_body_split_by_frame_max() {
        let payload = vec![b'x'; 10_000];
        let bytes = message_frames("jobs", &payload, 4_096);
        let mut frames = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (left, frame) = parse_frame(rest).expect("a whole frame");
            frames.push(frame);
            rest = left;
        }
        assert!(matches!(
            &frames[0],
            AMQPFrame::Method(CHANNEL, AMQPClass::Basic(basic::AMQPMethod::Publish(publish)))
                if publish.routing_key.as_str() == "jobs" && publish.exchange.as_str().is_empty()
        ));
        let AMQPFrame::Header(CHANNEL, header) = &frames[1] else {
            panic!("a content header second, got {:?}", frames[1]);
        };
        assert_eq!(header.body_size, 10_000);
        assert_eq!(header.properties.delivery_mode(), &Some(2));
        let bodies: Vec<usize> = frames[2..]
            .iter()
            .map(|frame| match frame {
                AMQPFrame::Body(CHANNEL, piece) => piece.len(),
                other => panic!("body frames after the header, got {other:?}"),
            })
            .collect();
        // 4,096-byte frames carry 4,088 bytes of body each.
        assert_eq!(bodies, vec![4_088, 4_088, 1_824]);
    }

    fn ack(delivery_tag: u64, multiple: bool) -> AMQPFrame {
        AMQPFrame::Method(
            CHANNEL,
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag,
                multiple,
            })),
        )
    }

    #[test]
    fn confirms_take_single_and_multiple_acks_in_any_order() {
        let mut sent: VecDeque<Option<Instant>> = (0..5).map(|_| Some(Instant::now())).collect();
        let mut first_tag = 1;
        let mut latencies = load::histogram();
        let mut confirm =
            |frame| Publisher::confirm(frame, &mut sent, &mut first_tag, &mut latencies);
        // Tag 3 alone, ahead of 1 and 2: counted, but the window's front stays at 1.
        assert_eq!(confirm(ack(3, false)).unwrap(), 1);
        // Up to 2: tags 1 and 2; 3 was already counted.
        assert_eq!(confirm(ack(2, true)).unwrap(), 2);
        // 3 again (covered), then everything up to 5.
        assert_eq!(confirm(ack(3, false)).unwrap(), 0);
        assert_eq!(confirm(ack(5, true)).unwrap(), 2);
        assert!(confirm(ack(6, false)).is_err(), "a tag never sent");
        let nack = AMQPFrame::Method(
            CHANNEL,
            AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
                delivery_tag: 1,
                multiple: false,
                requeue: false,
            })),
        );
        assert!(confirm(nack).is_err(), "a nack ends the run");
        assert!(sent.is_empty());
        assert_eq!(first_tag, 6);
        assert_eq!(latencies.len(), 5);
    }
}
