//! The tx class is not served: tx.select is refused with 540 NOT_IMPLEMENTED, a connection
//! exception (the spec's code for a method the server does not implement). Publisher
//! confirms (confirm.select) are the supported way to know a publish is durable.

use crate::error::{reply, AmqpError};

pub(crate) fn refuse(ids: (u16, u16)) -> Result<(), AmqpError> {
    Err(AmqpError::connection(
        reply::NOT_IMPLEMENTED,
        "NOT_IMPLEMENTED - transactions (tx.select) are not supported; use publisher confirms",
        ids,
    ))
}
