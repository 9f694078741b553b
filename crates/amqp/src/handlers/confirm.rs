//! confirm.select: from now on every publish on the channel is numbered (1, 2, …) and
//! answered with basic.ack once every queue it was routed to has it durably (fsynced), or
//! basic.nack when one refused it (a full queue with `x-overflow: reject-publish`). An
//! unroutable mandatory message gets its basic.return first, then its ack, as RabbitMQ does.

use amq_protocol::protocol::confirm::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;

use super::Connection;
use crate::error::AmqpError;

pub(crate) fn handle(
    connection: &mut Connection,
    channel: u16,
    method: AMQPMethod,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    match method {
        AMQPMethod::Select(select) => {
            if let Some(state) = connection.channels.get_mut(&channel) {
                if state.tx.is_some() {
                    return Err(AmqpError::channel(
                        crate::error::reply::PRECONDITION_FAILED,
                        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
                        ids,
                    ));
                }
                state.confirm = true;
            }
            if !select.nowait {
                connection.send(
                    channel,
                    AMQPClass::Confirm(AMQPMethod::SelectOk(confirm::SelectOk {})),
                );
            }
            Ok(())
        }
        AMQPMethod::SelectOk(_) => Err(AmqpError::connection(
            crate::error::reply::COMMAND_INVALID,
            "confirm.select-ok is the server's",
            ids,
        )),
    }
}
