//! The HTTP door's own counters, recorded into the engine's registry
//! (`omnibus_engine::metrics`): connections (a listener wrapper whose streams count their
//! close when dropped), requests and errors, and requests per route *template* — axum's
//! `MatchedPath`, never the concrete path, so the label set is the route table.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use omnibus_engine::metrics::{ConnectionGuard, DoorCounters};
use omnibus_engine::Engine;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener that counts the connections it accepts and, through each stream's guard,
/// their closes.
pub(crate) struct CountingListener {
    pub listener: TcpListener,
    pub counters: Arc<DoorCounters>,
}

/// A connection that counts itself closed when axum drops it.
pub(crate) struct CountedStream {
    stream: TcpStream,
    _guard: ConnectionGuard,
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, address) = axum::serve::Listener::accept(&mut self.listener).await;
        let stream = CountedStream {
            stream,
            _guard: self.counters.open_connection(),
        };
        (stream, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(context, buffer)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, buffer)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Counts a routed request under its route template and method, by status class. A
/// route layer: it runs only for requests that matched a route.
pub(crate) async fn count_route(
    State(engine): State<Arc<Engine>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    if let Some(matched) = matched {
        engine
            .metrics()
            .api_route(method.as_str(), matched.as_str())
            .answered(response.status().as_u16());
    }
    response
}
