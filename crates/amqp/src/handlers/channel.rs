//! The channel class: open, close (either side), flow.
//!
//! The spec: opening a channel that is open is a connection exception (504 CHANNEL_ERROR), so
//! is a channel number above the negotiated channel_max or a method on a channel never opened.
//! A channel closed by the client releases its consumers and requeues its unacknowledged
//! deliveries (they come back `redelivered`). After we close a channel, only close and
//! close-ok are read on it until the client's close-ok.

use amq_protocol::protocol::channel::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;

use super::{Channel, Connection};
use crate::error::{reply, AmqpError};

pub(crate) async fn handle(
    connection: &mut Connection,
    id: u16,
    method: AMQPMethod,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    match method {
        AMQPMethod::Open(_) => {
            if connection.channels.contains_key(&id) {
                return Err(AmqpError::connection(
                    reply::CHANNEL_ERROR,
                    format!("CHANNEL_ERROR - channel {id} is already open"),
                    ids,
                ));
            }
            if id > connection.channel_max {
                return Err(AmqpError::connection(
                    reply::CHANNEL_ERROR,
                    format!(
                        "CHANNEL_ERROR - channel {id} is over channel_max ({})",
                        connection.channel_max
                    ),
                    ids,
                ));
            }
            let unacked_max = connection.shared.config.unacked_per_channel_max;
            connection
                .channels
                .insert(id, Channel::new(connection.id, id, unacked_max));
            connection.send(
                id,
                AMQPClass::Channel(AMQPMethod::OpenOk(channel::OpenOk {})),
            );
            Ok(())
        }
        AMQPMethod::Close(_) => {
            if !connection.channels.contains_key(&id) {
                return Err(AmqpError::connection(
                    reply::CHANNEL_ERROR,
                    format!("CHANNEL_ERROR - channel {id} is not open"),
                    ids,
                ));
            }
            connection.release_channel(id, true).await;
            connection.send(
                id,
                AMQPClass::Channel(AMQPMethod::CloseOk(channel::CloseOk {})),
            );
            Ok(())
        }
        AMQPMethod::CloseOk(_) => {
            connection.release_channel(id, true).await;
            Ok(())
        }
        AMQPMethod::Flow(flow) => {
            // Pausing deliveries on a channel is not served; we say so by echoing the state
            // we keep (active), as the spec's flow-ok allows.
            if !connection.channels.contains_key(&id) {
                return Err(AmqpError::connection(
                    reply::CHANNEL_ERROR,
                    format!("CHANNEL_ERROR - channel {id} is not open"),
                    ids,
                ));
            }
            let _ = flow.active;
            connection.send(
                id,
                AMQPClass::Channel(AMQPMethod::FlowOk(channel::FlowOk { active: true })),
            );
            Ok(())
        }
        AMQPMethod::OpenOk(_) | AMQPMethod::FlowOk(_) => Err(AmqpError::connection(
            reply::COMMAND_INVALID,
            "a server-only channel method from the client",
            ids,
        )),
    }
}
