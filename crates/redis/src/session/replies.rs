//! The replies a session decided and has not written yet, in order (`Pending`): each ready,
//! or waiting for its read and its writes' durability (`Waiting::Later`); what each holds of
//! the connection's budget; and writing them out.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use bytes::BytesMut;
use omnibus_engine::keys::Commit;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::Later;
use crate::codec::{encode, Protocol, Reply};
use crate::error::RedisError;
use crate::server::Shared;

/// One reply decided but not yet written.
pub(super) enum Waiting {
    /// Written as it is.
    Ready(Reply),
    /// Resolves to the reply once its read ran and its writes are durable. `read`: it reads
    /// asynchronously (XRANGE, XREAD, …) rather than only waiting for durability. `command`:
    /// the command's table position when an error it resolves to is still to be counted.
    Later {
        reply: Later,
        read: bool,
        command: Option<usize>,
    },
}

/// Replies decided but not yet written, in order, with what each holds of the connection's
/// budget (its reply's estimated size and, while it waits, its request's bytes).
#[derive(Default)]
pub(super) struct Pending {
    pub(super) replies: VecDeque<(Waiting, usize)>,
    pub(super) bytes: usize,
    /// Replies in `replies` that read asynchronously and have not resolved.
    pub(super) reads: usize,
    /// Where errors that later replies resolve to are counted (none in unit tests).
    stats: Option<std::sync::Arc<Shared>>,
}

/// Commands run before their replies are written: this bounds what one connection can queue
/// in the engine (a stream's writer queue among it).
pub(crate) const PENDING_REPLIES_MAX: usize = 16_384;

/// The reply once `later` (if any) has run and every write in `commits` is durable; a failed
/// write replaces the reply with its error.
pub(super) fn settle(reply: Reply, commits: Vec<Commit>, later: Option<Later>) -> Later {
    Box::pin(async move {
        let reply = match later {
            Some(later) => later.await,
            None => reply,
        };
        let mut failure = None;
        for commit in commits {
            if let Err(error) = commit.wait().await {
                failure.get_or_insert(error);
            }
        }
        match failure {
            Some(error) => Reply::error(format!("ERR {error}")),
            None => reply,
        }
    })
}

impl Pending {
    /// Pending replies of a connection of `shared`'s door, which counts their errors.
    pub(super) fn counting_for(shared: std::sync::Arc<Shared>) -> Pending {
        Pending {
            stats: Some(shared),
            ..Pending::default()
        }
    }

    /// Counts an error a later reply resolved to, as an error answered at once is counted
    /// (`session::read_commands`): errorstats, `failed_calls`, the door's errors.
    fn resolved(&self, reply: &Reply, command: Option<usize>) {
        let (Reply::Error(line), Some(command), Some(shared)) = (reply, command, &self.stats)
        else {
            return;
        };
        shared.command_stats.error(line);
        shared.command_stats.failed_later(command);
        shared
            .engine
            .metrics()
            .door(omnibus_engine::metrics::Door::Redis)
            .errors(1);
    }

    pub(super) fn push(&mut self, waiting: Waiting, held: usize) {
        if matches!(waiting, Waiting::Later { read: true, .. }) {
            self.reads += 1;
        }
        self.bytes += held;
        self.replies.push_back((waiting, held));
    }

    /// Removes the first reply (once it resolved).
    pub(super) fn pop(&mut self) {
        if let Some((waiting, held)) = self.replies.pop_front() {
            if matches!(waiting, Waiting::Later { read: true, .. }) {
                self.reads -= 1;
            }
            self.bytes -= held;
        }
    }

    pub(super) fn full(&self, bytes_max: usize) -> bool {
        self.bytes >= bytes_max || self.replies.len() >= PENDING_REPLIES_MAX
    }

    /// Resolves with the first reply; it stays queued (a `select!` may drop this future and
    /// poll the reply again later) until `pop`.
    pub(super) async fn head(&mut self) -> Reply {
        match self.replies.front_mut() {
            Some((Waiting::Ready(reply), _)) => std::mem::replace(reply, Reply::Null),
            Some((Waiting::Later { reply, command, .. }, _)) => {
                let (reply, command) = (reply.await, *command);
                self.resolved(&reply, command);
                reply
            }
            None => std::future::pending().await,
        }
    }

    /// Encodes and removes the replies at the front that are already resolved, so one write
    /// carries all of them.
    pub(super) async fn encode_ready(&mut self, protocol: Protocol, output: &mut BytesMut) {
        while let Some(front) = self.replies.front_mut() {
            let reply = match front {
                (Waiting::Ready(reply), _) => std::mem::replace(reply, Reply::Null),
                (Waiting::Later { reply, command, .. }, _) => {
                    let command = *command;
                    match poll_once(reply.as_mut()).await {
                        Some(reply) => {
                            self.resolved(&reply, command);
                            reply
                        }
                        None => return,
                    }
                }
            };
            self.pop();
            encode(&reply, protocol, output);
        }
    }
}

/// Polls `future` once: its output if it is ready, else `None` (it stays registered with
/// this task's waker).
async fn poll_once(mut future: Pin<&mut (dyn Future<Output = Reply> + Send)>) -> Option<Reply> {
    std::future::poll_fn(|context| match future.as_mut().poll(context) {
        std::task::Poll::Ready(reply) => std::task::Poll::Ready(Some(reply)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// Waits for every pending reply in order and writes them all. A read still waiting when
/// the broker stops (XREAD BLOCK 0) is given up with the replies after it: it must not hold
/// up a shutdown.
pub(super) async fn finish(
    stream: &mut TcpStream,
    pending: &mut Pending,
    protocol: Protocol,
    output: &mut BytesMut,
    stopped: &mut watch::Receiver<bool>,
) -> Result<(), RedisError> {
    while !pending.replies.is_empty() {
        let reply = tokio::select! {
            biased;
            reply = pending.head() => reply,
            _ = stopped.wait_for(|stop| *stop), if pending.reads > 0 => break,
        };
        pending.pop();
        encode(&reply, protocol, output);
    }
    pending.replies.clear();
    pending.bytes = 0;
    pending.reads = 0;
    if !output.is_empty() {
        stream.write_all(output).await?;
        output.clear();
    }
    Ok(())
}

pub(super) fn estimated_size(reply: &Reply) -> usize {
    match reply {
        Reply::Bulk(bytes) => bytes.len() + 16,
        Reply::Array(items) | Reply::Push(items) | Reply::Many(items) | Reply::Set(items) => {
            16 + items.iter().map(estimated_size).sum::<usize>()
        }
        Reply::Map(pairs) => {
            16 + pairs
                .iter()
                .map(|(key, value)| estimated_size(key) + estimated_size(value))
                .sum::<usize>()
        }
        Reply::Status(text) | Reply::Error(text) | Reply::DoubleText(text) => text.len() + 3,
        Reply::Integer(_) | Reply::Double(_) | Reply::Null | Reply::NullArray => 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(receiver: tokio::sync::oneshot::Receiver<Reply>, read: bool) -> Waiting {
        Waiting::Later {
            reply: Box::pin(async move { receiver.await.unwrap_or(Reply::Null) }),
            read,
            command: None,
        }
    }

    #[tokio::test]
    async fn replies_are_written_in_order_and_stop_at_the_first_unresolved_one() {
        let mut pending = Pending::default();
        let (first_sender, first) = tokio::sync::oneshot::channel();
        let (second_sender, second) = tokio::sync::oneshot::channel();
        pending.push(waiting(first, false), 100);
        pending.push(Waiting::Ready(Reply::Integer(2)), 10);
        pending.push(waiting(second, true), 100);
        pending.push(Waiting::Ready(Reply::Integer(4)), 10);
        assert_eq!(pending.reads, 1);
        assert_eq!(pending.bytes, 220);
        assert!(pending.full(220) && !pending.full(221));

        // The ready reply behind an unresolved one waits for it.
        let mut output = BytesMut::new();
        pending.encode_ready(Protocol::Resp2, &mut output).await;
        assert!(output.is_empty());

        first_sender.send(Reply::bulk("1-0")).unwrap();
        let head = pending.head().await;
        pending.pop();
        encode(&head, Protocol::Resp2, &mut output);
        pending.encode_ready(Protocol::Resp2, &mut output).await;
        assert_eq!(&output[..], b"$3\r\n1-0\r\n:2\r\n");
        assert_eq!(
            (pending.replies.len(), pending.reads, pending.bytes),
            (2, 1, 110)
        );

        second_sender.send(Reply::bulk("x")).unwrap();
        output.clear();
        pending.encode_ready(Protocol::Resp2, &mut output).await;
        assert_eq!(&output[..], b"$1\r\nx\r\n:4\r\n");
        assert_eq!(
            (pending.replies.len(), pending.reads, pending.bytes),
            (0, 0, 0)
        );
    }
}
