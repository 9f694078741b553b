//! The exchange class: declare, delete, bind and unbind, on the engine's exchanges.
//!
//! The spec and RabbitMQ: a passive declare of a missing exchange is 404 NOT_FOUND; a
//! re-declare with another type or durability is 406 PRECONDITION_FAILED; names starting
//! with `amq.` are reserved (403 ACCESS_REFUSED); an unknown type is 503 COMMAND_INVALID, a
//! connection exception. Our choices: exchange-to-exchange bindings are not served yet
//! (540 NOT_IMPLEMENTED; the capability is advertised as false); `auto_delete` is kept with
//! the exchange but not acted on; an `internal` exchange refuses publishes (403, in
//! `publish.rs`); deleting a missing exchange succeeds, as RabbitMQ 3.x does.

use amq_protocol::protocol::exchange::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;
use omnibus_engine::exchanges::{ExchangeKind, ExchangeSpec};
use omnibus_engine::EngineError;

use super::Connection;
use crate::error::{reply, AmqpError};

pub(crate) async fn handle(
    connection: &mut Connection,
    channel: u16,
    method: AMQPMethod,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    match method {
        AMQPMethod::Declare(declare) => {
            let name = declare.exchange.as_str().to_string();
            if declare.passive {
                if connection.engine().exchange(&name).is_none() {
                    return Err(not_found(&name, ids));
                }
            } else {
                let Some(kind) = ExchangeKind::parse(declare.kind.as_str()) else {
                    return Err(AmqpError::connection(
                        reply::COMMAND_INVALID,
                        format!(
                            "COMMAND_INVALID - unknown exchange type '{}'",
                            declare.kind.as_str()
                        ),
                        ids,
                    ));
                };
                if name.starts_with("amq.") && connection.engine().exchange(&name).is_none() {
                    return Err(AmqpError::channel(
                        reply::ACCESS_REFUSED,
                        format!("ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'"),
                        ids,
                    ));
                }
                let spec = ExchangeSpec {
                    name: name.clone(),
                    kind,
                    durable: declare.durable,
                    auto_delete: declare.auto_delete,
                    internal: declare.internal,
                };
                connection
                    .engine()
                    .declare_exchange(spec)
                    .await
                    .map_err(|error| engine_error(error, ids))?;
            }
            if !declare.nowait {
                connection.send(
                    channel,
                    AMQPClass::Exchange(AMQPMethod::DeclareOk(exchange::DeclareOk {})),
                );
            }
            Ok(())
        }
        AMQPMethod::Delete(delete) => {
            let name = delete.exchange.as_str();
            if name.is_empty() || name.starts_with("amq.") {
                return Err(AmqpError::channel(
                    reply::ACCESS_REFUSED,
                    format!("ACCESS_REFUSED - exchange '{name}' is built in"),
                    ids,
                ));
            }
            match connection
                .engine()
                .delete_exchange(name, delete.if_unused)
                .await
            {
                Ok(()) | Err(EngineError::ExchangeNotFound(_)) => {}
                Err(error) => return Err(engine_error(error, ids)),
            }
            if !delete.nowait {
                connection.send(
                    channel,
                    AMQPClass::Exchange(AMQPMethod::DeleteOk(exchange::DeleteOk {})),
                );
            }
            Ok(())
        }
        AMQPMethod::Bind(_) | AMQPMethod::Unbind(_) => Err(AmqpError::connection(
            reply::NOT_IMPLEMENTED,
            "NOT_IMPLEMENTED - exchange-to-exchange bindings are not supported yet",
            ids,
        )),
        AMQPMethod::DeclareOk(_)
        | AMQPMethod::DeleteOk(_)
        | AMQPMethod::BindOk(_)
        | AMQPMethod::UnbindOk(_) => Err(AmqpError::connection(
            reply::COMMAND_INVALID,
            "a server-only exchange method from the client",
            ids,
        )),
    }
}

pub(crate) fn not_found(name: &str, ids: (u16, u16)) -> AmqpError {
    AmqpError::channel(
        reply::NOT_FOUND,
        format!("NOT_FOUND - no exchange '{name}' in vhost '/'"),
        ids,
    )
}

/// An engine refusal as the channel exception RabbitMQ would send for it.
pub(crate) fn engine_error(error: EngineError, ids: (u16, u16)) -> AmqpError {
    let code = match &error {
        EngineError::ExchangeNotFound(_) | EngineError::QueueNotFound(_) => reply::NOT_FOUND,
        EngineError::InvalidName(_) => reply::ACCESS_REFUSED,
        EngineError::InvalidConfig(_)
        | EngineError::BadRequest(_)
        | EngineError::QueueExists(_)
        | EngineError::QueueFull(_)
        | EngineError::MessageTooLarge { .. } => reply::PRECONDITION_FAILED,
        EngineError::LimitExceeded(_) => reply::RESOURCE_ERROR,
        _ => reply::INTERNAL_ERROR,
    };
    if code == reply::INTERNAL_ERROR || code == reply::RESOURCE_ERROR {
        // Not channel-level codes in the spec: the connection goes.
        return AmqpError::connection(code, error.to_string(), ids);
    }
    AmqpError::channel(code, error.to_string(), ids)
}
