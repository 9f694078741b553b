//! One Kafka connection: read frames, answer each request in the order it arrived, write the
//! responses back in that order.
//!
//! Requests are handled one at a time, as a Kafka broker does (it mutes a connection while a
//! request is in flight): a client that pipelines gets its responses in request order, and two
//! produce requests of one connection reach a partition in the order they were sent, which
//! idempotent sequence numbers and per-key ordering rely on. The session reads ahead only
//! what one read returns, so its buffers stay bounded by the frame limit; responses to
//! requests that arrived together are written together.
//!
//! A frame that cannot be decoded (oversized, truncated, unknown API key, malformed body)
//! closes this connection only.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::codec::{decode_request, DecodedRequest, FrameDecoder, Response};
use crate::error::KafkaError;
use crate::handlers::{self, unsupported, Broker, Outcome, Peer};

/// Responses gathered before they are written, when several requests arrived at once.
const WRITE_BUFFER_BYTES_MAX: usize = 1024 * 1024;

pub(crate) struct Session {
    stream: TcpStream,
    broker: Arc<Broker>,
    peer: Peer,
    decoder: FrameDecoder,
    input: BytesMut,
    output: BytesMut,
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
        }
    }

    /// Serves the connection until the client closes it, a frame cannot be decoded, or
    /// `shutdown` turns true (the request being handled is finished and answered first).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), KafkaError> {
        loop {
            // Answer every whole frame already buffered before reading more.
            while let Some(frame) = self.decoder.decode(&mut self.input)? {
                match self.answer(frame).await? {
                    Some(()) => {}
                    None => return self.flush().await,
                }
                if self.output.len() >= WRITE_BUFFER_BYTES_MAX {
                    self.flush().await?;
                }
            }
            self.flush().await?;
            if *shutdown.borrow() {
                return Ok(());
            }
            self.input.reserve(self.decoder.reserve_hint(&self.input));
            let read = tokio::select! {
                read = self.stream.read_buf(&mut self.input) => read?,
                _ = shutdown.changed() => return Ok(()),
            };
            if read == 0 {
                // The client closed; a partial frame left behind is simply dropped.
                return Ok(());
            }
        }
    }

    /// Handles one frame and queues its response. `Ok(None)` closes the connection quietly.
    async fn answer(&mut self, frame: bytes::Bytes) -> Result<Option<()>, KafkaError> {
        let (api_key, version, correlation_id, body) = match decode_request(frame)? {
            DecodedRequest::Request(request) => {
                let (api_key, version) = (request.api_key, request.version);
                let correlation_id = request.correlation_id();
                match handlers::handle(&self.broker, &self.peer, *request).await {
                    Outcome::Respond(body) => (api_key, version, correlation_id, body),
                    Outcome::Silent => return Ok(Some(())),
                    Outcome::Close(reason) => {
                        tracing::warn!(peer = %self.peer.client_host, "closing: {reason}");
                        return Ok(None);
                    }
                }
            }
            DecodedRequest::Unsupported {
                api_key,
                version,
                correlation_id,
            } => match unsupported::answer(api_key, version) {
                Some((body, encode_version)) => (api_key, encode_version, correlation_id, body),
                None => {
                    tracing::debug!(
                        peer = %self.peer.client_host,
                        "closing: {api_key:?} v{version} is not supported"
                    );
                    return Ok(None);
                }
            },
        };
        let response = Response {
            api_key,
            version,
            correlation_id,
            body,
        };
        response.encode(&mut self.output)?;
        Ok(Some(()))
    }

    async fn flush(&mut self) -> Result<(), KafkaError> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        Ok(())
    }
}
