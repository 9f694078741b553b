//! The exchange class: declare, delete, bind and unbind, on the engine's exchanges.
//!
//! The spec and RabbitMQ: a passive declare of a missing exchange is 404 NOT_FOUND; a
//! re-declare with another type, `durable`, `auto_delete`, `internal` or `alternate-exchange`
//! is 406 PRECONDITION_FAILED with RabbitMQ's wording (`equivalence.rs`); names starting
//! with `amq.` are reserved (403 ACCESS_REFUSED); an unknown type is 503 COMMAND_INVALID, a
//! connection exception. exchange.bind routes what reaches `source` on through
//! `destination` (both must exist: 404; the default exchange takes part in none: 403); the
//! `alternate-exchange` argument names where the messages no binding matched go (it need not
//! exist yet). Our choices: `auto_delete` is kept with the exchange but not acted on; an `internal` exchange refuses publishes (403, in
//! `publish.rs`); deleting a missing exchange succeeds, as RabbitMQ 3.x does.

use amq_protocol::protocol::exchange::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;
use amq_protocol::types::{AMQPValue, FieldTable};
use omnibus_engine::exchanges::{Binding, ExchangeKind, ExchangeSpec};
use omnibus_engine::EngineError;

use super::Connection;
use crate::codec::properties::{integer, string, table_as_text, type_name};
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
            if name.is_empty() {
                return Err(default_exchange_refused(ids));
            }
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
                if let Some(value) = declare.arguments.inner().get("alternate-exchange") {
                    if string(value).is_none() {
                        return Err(AmqpError::channel(
                            reply::PRECONDITION_FAILED,
                            format!(
                                "PRECONDITION_FAILED - invalid type '{}' for arg 'alternate-exchange' in exchange '{name}' in vhost '/'",
                                type_name(value)
                            ),
                            ids,
                        ));
                    }
                }
                let existing = connection.engine().exchange(&name);
                if let Some(existing) = &existing {
                    super::equivalence::check_exchange(existing, &declare, ids)?;
                }
                if name.starts_with("amq.") && existing.is_none() {
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
                    alternate_exchange: table_as_text(&declare.arguments)
                        .remove("alternate-exchange"),
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
            if name.is_empty() {
                return Err(default_exchange_refused(ids));
            }
            if name.starts_with("amq.") {
                return Err(AmqpError::channel(
                    reply::ACCESS_REFUSED,
                    format!(
                        "ACCESS_REFUSED - deletion of system exchange '{name}' in vhost '/' not allowed"
                    ),
                    ids,
                ));
            }
            match connection
                .engine()
                .delete_exchange(name, delete.if_unused)
                .await
            {
                Ok(()) | Err(EngineError::ExchangeNotFound(_)) => {}
                // The engine refuses an if-unused delete of a source of bindings; the client
                // gets RabbitMQ's words.
                Err(EngineError::InvalidConfig(_)) if delete.if_unused => {
                    return Err(AmqpError::channel(
                        reply::PRECONDITION_FAILED,
                        format!("PRECONDITION_FAILED - exchange '{name}' in vhost '/' in use"),
                        ids,
                    ));
                }
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
        AMQPMethod::Bind(bind) => {
            let (source, binding) = exchange_binding(
                connection,
                bind.source.as_str(),
                bind.destination.as_str(),
                bind.routing_key.as_str(),
                &bind.arguments,
                ids,
            )?;
            check_binding_arguments(source, &bind.arguments, ids)?;
            connection
                .engine()
                .bind_queue(binding)
                .await
                .map_err(|error| engine_error(error, ids))?;
            if !bind.nowait {
                connection.send(
                    channel,
                    AMQPClass::Exchange(AMQPMethod::BindOk(exchange::BindOk {})),
                );
            }
            Ok(())
        }
        AMQPMethod::Unbind(unbind) => {
            // Idempotent, as in RabbitMQ 3.10: a binding with a missing end is already gone.
            match exchange_binding(
                connection,
                unbind.source.as_str(),
                unbind.destination.as_str(),
                unbind.routing_key.as_str(),
                &unbind.arguments,
                ids,
            ) {
                Ok((_, binding)) => match connection.engine().unbind_queue(binding).await {
                    Ok(()) | Err(EngineError::ExchangeNotFound(_)) => {}
                    Err(error) => return Err(engine_error(error, ids)),
                },
                Err(AmqpError::Channel {
                    code: reply::NOT_FOUND,
                    ..
                }) => {}
                Err(error) => return Err(error),
            }
            if !unbind.nowait {
                connection.send(
                    channel,
                    AMQPClass::Exchange(AMQPMethod::UnbindOk(exchange::UnbindOk {})),
                );
            }
            Ok(())
        }
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

/// An exchange-to-exchange binding, once both ends are checked (RabbitMQ's answers), with the
/// source's kind (a bind checks its arguments against it, an unbind does not).
fn exchange_binding(
    connection: &Connection,
    source: &str,
    destination: &str,
    routing_key: &str,
    arguments: &amq_protocol::types::FieldTable,
    ids: (u16, u16),
) -> Result<(ExchangeKind, Binding), AmqpError> {
    if source.is_empty() || destination.is_empty() {
        return Err(default_exchange_refused(ids));
    }
    let Some(source_exchange) = connection.engine().exchange(source) else {
        return Err(not_found(source, ids));
    };
    if connection.engine().exchange(destination).is_none() {
        return Err(not_found(destination, ids));
    }
    Ok((
        source_exchange.kind,
        Binding {
            exchange: source.to_string(),
            queue: destination.to_string(),
            routing_key: routing_key.to_string(),
            arguments: table_as_text(arguments),
            durable: true,
            to_exchange: true,
        },
    ))
}

/// A headers exchange's binding must say `x-match` as RabbitMQ spells it (406 otherwise);
/// other exchange types ignore their bindings' arguments.
pub(crate) fn check_binding_arguments(
    source: ExchangeKind,
    arguments: &FieldTable,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    let headers = source == ExchangeKind::Headers;
    let Some(value) = arguments.inner().get("x-match").filter(|_| headers) else {
        return Ok(());
    };
    let Some(text) = string(value) else {
        let shown = match value {
            AMQPValue::Boolean(b) => b.to_string(),
            other => integer(other).map_or_else(|| format!("{other:?}"), |n| n.to_string()),
        };
        return Err(AmqpError::channel(
            reply::PRECONDITION_FAILED,
            format!(
                "PRECONDITION_FAILED - Invalid x-match field type {} (value {shown}); expected longstr",
                type_name(value)
            ),
            ids,
        ));
    };
    if ["all", "any", "all-with-x", "any-with-x"].contains(&text.as_str()) {
        return Ok(());
    }
    Err(AmqpError::channel(
        reply::PRECONDITION_FAILED,
        format!(
            "PRECONDITION_FAILED - Invalid x-match field value <<\"{text}\">>; expected all, any, all-with-x, or any-with-x"
        ),
        ids,
    ))
}

/// 403 for what the default exchange takes no part in.
pub(crate) fn default_exchange_refused(ids: (u16, u16)) -> AmqpError {
    AmqpError::channel(
        reply::ACCESS_REFUSED,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
        ids,
    )
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
    // RabbitMQ's reply texts start with the code's name, and name what is missing its way.
    let text = match &error {
        EngineError::ExchangeNotFound(name) => format!("no exchange '{name}' in vhost '/'"),
        EngineError::QueueNotFound(name) => format!("no queue '{name}' in vhost '/'"),
        other => other.to_string(),
    };
    let text = format!("{} - {text}", reply::name(code));
    if code == reply::INTERNAL_ERROR || code == reply::RESOURCE_ERROR {
        // Not channel-level codes in the spec: the connection goes.
        return AmqpError::connection(code, text, ids);
    }
    AmqpError::channel(code, text, ids)
}
