//! The tx class, as RabbitMQ serves it: after tx.select, the channel's publishes and its
//! acks, nacks and rejects are held until tx.commit, which applies them all and answers
//! commit-ok once the published messages are fsynced and the settlements committed;
//! tx.rollback drops the publishes and puts the settled deliveries back among the channel's
//! unacknowledged ones (they are neither acked nor requeued). A transaction is atomic per
//! channel in that sense only, as in RabbitMQ: a commit that fails half-way (a full queue
//! refusing a message) does not undo what was applied.
//!
//! What is decided at publish time: routing (a missing exchange is 404 then, not at commit)
//! and the mandatory check; what waits for the commit: the enqueue, and a basic.return for
//! an unroutable mandatory message. A direct reply-to reply is not held (it is delivered at
//! once, as it is not queued anywhere).
//!
//! A channel is either transactional or in confirm mode, never both (406, RabbitMQ's words).
//! A transaction holds at most [`TX_MESSAGES_MAX`] publishes and [`TX_BYTES_MAX`] body
//! bytes; beyond that the channel is closed with 406, the transaction dropped.

use amq_protocol::protocol::tx::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;

use super::publish::ReadyPublish;
use super::{Connection, Unacked};
use crate::error::{reply, AmqpError};

/// Publishes held by one transaction.
pub(crate) const TX_MESSAGES_MAX: usize = 65_536;
/// Body bytes held by one transaction.
pub(crate) const TX_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A settlement held until commit, with the delivery tags it took out of `unacked`.
pub(crate) struct HeldSettlement {
    pub deliveries: Vec<(u64, Unacked)>,
    pub outcome: Outcome,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ack,
    Requeue,
    DeadLetter,
}

/// What a transactional channel holds until commit or rollback.
#[derive(Default)]
pub(crate) struct Transaction {
    pub publishes: Vec<ReadyPublish>,
    pub bytes: usize,
    pub settlements: Vec<HeldSettlement>,
}

impl Transaction {
    /// Holds a routed publish, or refuses it past the transaction's bounds.
    pub fn hold(&mut self, publish: ReadyPublish, ids: (u16, u16)) -> Result<(), AmqpError> {
        let bytes = publish.body_len();
        if self.publishes.len() >= TX_MESSAGES_MAX || self.bytes + bytes > TX_BYTES_MAX {
            return Err(AmqpError::channel(
                reply::PRECONDITION_FAILED,
                format!(
                    "PRECONDITION_FAILED - a transaction holds at most {TX_MESSAGES_MAX} \
                     messages and {TX_BYTES_MAX} bytes; commit more often"
                ),
                ids,
            ));
        }
        self.bytes += bytes;
        self.publishes.push(publish);
        Ok(())
    }
}

pub(crate) async fn handle(
    connection: &mut Connection,
    channel: u16,
    method: AMQPMethod,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    let Some(state) = connection.channels.get_mut(&channel) else {
        return Ok(());
    };
    match method {
        AMQPMethod::Select(_) => {
            if state.confirm {
                return Err(AmqpError::channel(
                    reply::PRECONDITION_FAILED,
                    "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
                    ids,
                ));
            }
            if state.tx.is_none() {
                state.tx = Some(Transaction::default());
            }
            connection.send(
                channel,
                AMQPClass::Tx(AMQPMethod::SelectOk(tx::SelectOk {})),
            );
            Ok(())
        }
        AMQPMethod::Commit(_) => {
            let Some(held) = state.tx.as_mut().map(std::mem::take) else {
                return Err(not_transactional(ids));
            };
            commit(connection, channel, held).await;
            connection.send(
                channel,
                AMQPClass::Tx(AMQPMethod::CommitOk(tx::CommitOk {})),
            );
            Ok(())
        }
        AMQPMethod::Rollback(_) => {
            let Some(held) = state.tx.as_mut().map(std::mem::take) else {
                return Err(not_transactional(ids));
            };
            // The settled deliveries are unacknowledged again, under their own tags.
            for settlement in held.settlements {
                for (tag, delivery) in settlement.deliveries {
                    state.unacked.insert(tag, delivery);
                }
            }
            connection.send(
                channel,
                AMQPClass::Tx(AMQPMethod::RollbackOk(tx::RollbackOk {})),
            );
            Ok(())
        }
        AMQPMethod::SelectOk(_) | AMQPMethod::CommitOk(_) | AMQPMethod::RollbackOk(_) => {
            Err(AmqpError::connection(
                reply::COMMAND_INVALID,
                "a server-only tx method from the client",
                ids,
            ))
        }
    }
}

fn not_transactional(ids: (u16, u16)) -> AmqpError {
    AmqpError::channel(
        reply::PRECONDITION_FAILED,
        "PRECONDITION_FAILED - channel is not transactional",
        ids,
    )
}

/// Enqueues the held publishes (one batch: one fsync for all), then applies the held
/// settlements in the order they came, giving the consumers their prefetch credit back.
async fn commit(connection: &mut Connection, channel: u16, held: Transaction) {
    super::publish::enqueue_held(connection, held.publishes).await;
    for settlement in held.settlements {
        let deliveries: Vec<Unacked> = settlement
            .deliveries
            .into_iter()
            .map(|(_, delivery)| delivery)
            .collect();
        if let Some(state) = connection.channels.get(&channel) {
            super::basic::give_credit(state, &deliveries);
        }
        match settlement.outcome {
            Outcome::Ack => super::basic::ack_all(connection, &deliveries).await,
            Outcome::Requeue => super::basic::settle_failed(connection, deliveries, true).await,
            Outcome::DeadLetter => super::basic::settle_failed(connection, deliveries, false).await,
        }
    }
}
