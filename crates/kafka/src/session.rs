//! One Kafka connection: read frames, answer each request, write the responses back in the
//! order the requests arrived.
//!
//! Produce requests are pipelined: each is *started* in arrival order — every batch gets its
//! place in its partition before the next frame is looked at — and its answer waits for the
//! fsync while the session reads and starts the next ones (librdkafka keeps up to five in
//! flight), so consecutive requests share group commits instead of paying one fsync each.
//! Any other request first waits for every produce in flight to be answered, then is handled
//! on its own, as a Kafka broker handles one request of a connection at a time: a Metadata or
//! ListOffsets that follows a produce sees its effect.
//!
//! Bounds: at most [`IN_FLIGHT_MAX`] produce requests wait at once (the session stops reading
//! until one is answered), and the pending-bytes budget of each partition bounds what they
//! hold; the read buffer holds at most a frame and one read.
//!
//! A frame that cannot be decoded (oversized, truncated, unknown API key, malformed body)
//! closes this connection only, after the answers to the requests before it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use futures_util::stream::{FuturesOrdered, StreamExt};
use kafka_protocol::messages::{ApiKey, RequestKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::codec::{decode_request, DecodedRequest, FrameDecoder, Response};
use crate::error::KafkaError;
use crate::handlers::{self, unsupported, Broker, Outcome, Peer};

/// Responses gathered before they are written, when several requests arrived at once.
const WRITE_BUFFER_BYTES_MAX: usize = 1024 * 1024;
/// Produce requests of one connection waiting for their acknowledgement at once.
pub const IN_FLIGHT_MAX: usize = 16;

/// A request's answer, once known.
struct Answer {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    outcome: Outcome,
}

type InFlight = Pin<Box<dyn Future<Output = Answer> + Send>>;

pub(crate) struct Session {
    stream: TcpStream,
    broker: Arc<Broker>,
    peer: Peer,
    decoder: FrameDecoder,
    input: BytesMut,
    output: BytesMut,
    in_flight: FuturesOrdered<InFlight>,
}

impl Session {
    pub fn new(stream: TcpStream, broker: Arc<Broker>, peer: Peer) -> Session {
        let decoder = FrameDecoder::new(broker.config.frame_bytes_max);
        Session {
            stream,
            broker,
            peer,
            decoder,
            input: BytesMut::new(),
            output: BytesMut::new(),
            in_flight: FuturesOrdered::new(),
        }
    }

    /// Serves the connection until the client closes it, a frame cannot be decoded, or
    /// `shutdown` turns true (requests already read are finished and answered first).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), KafkaError> {
        loop {
            // Start every whole frame already buffered, while the pipeline has room.
            while self.in_flight.len() < IN_FLIGHT_MAX {
                let Some(frame) = self.decoder.decode(&mut self.input)? else {
                    break;
                };
                if !self.dispatch(frame).await? {
                    self.drain().await?;
                    return self.flush().await;
                }
                if self.output.len() >= WRITE_BUFFER_BYTES_MAX {
                    self.flush().await?;
                }
            }
            match self.collect_ready().await? {
                None => return self.flush().await,
                // Answers made room in the pipeline: start frames already buffered first,
                // rather than waiting to read bytes the client may never send.
                Some(collected) if collected > 0 => continue,
                Some(_) => {}
            }
            self.flush().await?;
            if *shutdown.borrow() {
                self.drain().await?;
                return self.flush().await;
            }
            let room = self.in_flight.len() < IN_FLIGHT_MAX;
            if room {
                self.input.reserve(self.decoder.reserve_hint(&self.input));
            }
            tokio::select! {
                Some(answer) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    if !self.write(answer)? {
                        return self.flush().await;
                    }
                }
                read = self.stream.read_buf(&mut self.input), if room => {
                    if read? == 0 {
                        // The client closed; a partial frame left behind is simply dropped,
                        // and produces already started complete without an answer.
                        return Ok(());
                    }
                }
                _ = shutdown.changed() => {
                    self.drain().await?;
                    return self.flush().await;
                }
            }
        }
    }

    /// Starts one frame's request. A produce joins the pipeline; anything else waits for the
    /// pipeline to empty and is answered at once. `Ok(false)` closes the connection.
    async fn dispatch(&mut self, frame: bytes::Bytes) -> Result<bool, KafkaError> {
        self.broker
            .engine
            .metrics()
            .door(omnibus_engine::metrics::Door::Kafka)
            .request();
        match decode_request(frame)? {
            DecodedRequest::Request(request) => {
                let (api_key, version) = (request.api_key, request.version);
                let correlation_id = request.correlation_id();
                if let RequestKind::Produce(body) = request.body {
                    let pending = handlers::start_produce(&self.broker, body, version).await;
                    self.in_flight.push_back(Box::pin(async move {
                        Answer {
                            api_key,
                            version,
                            correlation_id,
                            outcome: pending.await,
                        }
                    }));
                    return Ok(true);
                }
                if !self.drain().await? {
                    return Ok(false);
                }
                let outcome = handlers::handle(&self.broker, &self.peer, *request).await;
                self.write(Answer {
                    api_key,
                    version,
                    correlation_id,
                    outcome,
                })
            }
            DecodedRequest::Unsupported {
                api_key,
                version,
                correlation_id,
            } => {
                if !self.drain().await? {
                    return Ok(false);
                }
                match unsupported::answer(api_key, version) {
                    Some((body, encode_version)) => self.write(Answer {
                        api_key,
                        version: encode_version,
                        correlation_id,
                        outcome: Outcome::Respond(body),
                    }),
                    None => {
                        tracing::debug!(
                            peer = %self.peer.client_host,
                            "closing: {api_key:?} v{version} is not supported"
                        );
                        Ok(false)
                    }
                }
            }
        }
    }

    /// Waits for every produce in flight and queues their answers. `Ok(false)`: one of them
    /// asked to close the connection.
    async fn drain(&mut self) -> Result<bool, KafkaError> {
        while let Some(answer) = self.in_flight.next().await {
            if !self.write(answer)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Queues the answers that are ready now, in order, without waiting for the rest, and
    /// says how many (`None`: one of them closes the connection). Polls with this task's own
    /// waker, so no wake-up of a pending answer is lost.
    async fn collect_ready(&mut self) -> Result<Option<usize>, KafkaError> {
        let mut collected = 0;
        loop {
            let in_flight = &mut self.in_flight;
            let ready = std::future::poll_fn(|context| {
                Poll::Ready(match in_flight.poll_next_unpin(context) {
                    Poll::Ready(answer) => answer,
                    Poll::Pending => None,
                })
            })
            .await;
            match ready {
                Some(answer) => {
                    if !self.write(answer)? {
                        return Ok(None);
                    }
                    collected += 1;
                }
                None => return Ok(Some(collected)),
            }
        }
    }

    /// Encodes one answer into the output buffer. `Ok(false)` closes the connection.
    fn write(&mut self, answer: Answer) -> Result<bool, KafkaError> {
        match answer.outcome {
            Outcome::Respond(body) => {
                let response = Response {
                    api_key: answer.api_key,
                    version: answer.version,
                    correlation_id: answer.correlation_id,
                    body,
                };
                response.encode(&mut self.output)?;
                Ok(true)
            }
            Outcome::Silent => Ok(true),
            Outcome::Close(reason) => {
                tracing::warn!(peer = %self.peer.client_host, "closing: {reason}");
                Ok(false)
            }
        }
    }

    async fn flush(&mut self) -> Result<(), KafkaError> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        Ok(())
    }
}
