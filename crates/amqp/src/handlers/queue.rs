//! The queue class: declare, bind, unbind, purge, delete — on engine queues.
//!
//! An AMQP queue is an engine queue (`names.rs` maps the name). Declaring one that exists is
//! answered from memory (kombu re-declares before every publish); a new one is created
//! with the arguments mapped (docs/amqp.md has the table) — durable, or transient when it is
//! non-durable or exclusive ([`durability`]):
//! `x-message-ttl` → ttl_ms, `x-max-length` / `x-max-length-bytes` → max_length / max_bytes,
//! `x-overflow` → overflow (`drop-head`: the oldest go, dead-lettered when the queue has a
//! dead-letter exchange; `reject-publish`: refused, nacked to a confirming publisher),
//! `x-dead-letter-exchange` / `-routing-key` → the engine's dead-letter route,
//! `x-delivery-limit` → max_deliver (limit + 1 deliveries), `x-queue-type` `classic` and
//! `quorum` accepted, `stream` refused with 406. Without `x-delivery-limit` a message is
//! redelivered without bound, as RabbitMQ's classic queues do.
//!
//! A re-declaration is compared with the queue (`equivalence.rs`).
//!
//! The spec's errors: a passive declare of a missing queue is 404; a queue exclusive to
//! another connection is 405 RESOURCE_LOCKED; delete with if-unused/if-empty on a queue in
//! use or not empty is 406.

use std::sync::Arc;

use amq_protocol::protocol::queue::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;
use amq_protocol::types::FieldTable;
use omnibus_engine::exchanges::{Binding, DeadLetterRoute};
use omnibus_engine::queue::{Backoff, Completions, Overflow, QueueDurability, QueueSpec};
use omnibus_engine::EngineError;

use super::exchange::engine_error;
use super::{arguments, equivalence, expiry, single_active};
use super::{Connection, QueueOwner, Shared};
use crate::codec::properties::{integer, string, table_as_text};
use crate::error::{reply, AmqpError};
use crate::names;

/// A lease is how long a consumer may hold a message unacknowledged before it goes back to
/// the queue: RabbitMQ's `consumer_timeout` default, 30 minutes.
pub(super) const LEASE_MS: u64 = 30 * 60 * 1000;
/// The engine's ceiling for unacknowledged messages per worker; the door's prefetch
/// (`flow.rs`) is the bound that applies.
const UNACKED_PER_WORKER: usize = 1_000_000;

pub(crate) async fn handle(
    connection: &mut Connection,
    channel: u16,
    method: AMQPMethod,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    match method {
        AMQPMethod::Declare(declare) => declare_queue(connection, channel, declare, ids).await,
        AMQPMethod::Bind(bind) => {
            // RabbitMQ's order: the default exchange, the exchange, the queue, its owner,
            // the binding's arguments.
            let exchange = bind.exchange.as_str();
            if exchange.is_empty() {
                return Err(super::exchange::default_exchange_refused(ids));
            }
            let Some(source) = connection.engine().exchange(exchange) else {
                return Err(super::exchange::not_found(exchange, ids));
            };
            let queue = existing_queue(connection, bind.queue.as_str(), ids)?;
            check_exclusive(connection, &queue, bind.queue.as_str(), ids)?;
            super::exchange::check_binding_arguments(source.kind, &bind.arguments, ids)?;
            let binding = Binding {
                exchange: exchange.to_string(),
                queue,
                routing_key: bind.routing_key.as_str().to_string(),
                arguments: table_as_text(&bind.arguments),
                durable: true,
                to_exchange: false,
            };
            connection
                .engine()
                .bind_queue(binding)
                .await
                .map_err(|error| engine_error(error, ids))?;
            if !bind.nowait {
                connection.send(
                    channel,
                    AMQPClass::Queue(AMQPMethod::BindOk(queue::BindOk {})),
                );
            }
            Ok(())
        }
        AMQPMethod::Unbind(unbind) => {
            if unbind.exchange.as_str().is_empty() {
                return Err(super::exchange::default_exchange_refused(ids));
            }
            // Unbinding is idempotent, as in RabbitMQ 3.10: a binding whose queue or exchange
            // does not exist is already gone.
            let queue = names::to_engine(unbind.queue.as_str())
                .filter(|queue| connection.engine().queue_info(queue).is_ok());
            let exchange = unbind.exchange.as_str();
            if let (Some(queue), Some(_)) = (queue, connection.engine().exchange(exchange)) {
                let binding = Binding {
                    exchange: exchange.to_string(),
                    queue,
                    routing_key: unbind.routing_key.as_str().to_string(),
                    arguments: table_as_text(&unbind.arguments),
                    durable: true,
                    to_exchange: false,
                };
                match connection.engine().unbind_queue(binding).await {
                    Ok(()) | Err(EngineError::ExchangeNotFound(_)) => {}
                    Err(error) => return Err(engine_error(error, ids)),
                }
            }
            connection.send(
                channel,
                AMQPClass::Queue(AMQPMethod::UnbindOk(queue::UnbindOk {})),
            );
            Ok(())
        }
        AMQPMethod::Purge(purge) => {
            let queue = existing_queue(connection, purge.queue.as_str(), ids)?;
            check_exclusive(connection, &queue, purge.queue.as_str(), ids)?;
            let count = connection
                .engine()
                .purge_queue(&queue)
                .await
                .map_err(|error| engine_error(error, ids))?;
            if !purge.nowait {
                connection.send(
                    channel,
                    AMQPClass::Queue(AMQPMethod::PurgeOk(queue::PurgeOk {
                        message_count: count.min(u64::from(u32::MAX)) as u32,
                    })),
                );
            }
            Ok(())
        }
        AMQPMethod::Delete(delete) => {
            let Some(queue) = names::to_engine(delete.queue.as_str()) else {
                return Err(not_found(delete.queue.as_str(), ids));
            };
            let Ok(info) = connection.engine().queue_info(&queue) else {
                // Deleting a missing queue succeeds (RabbitMQ 3.x).
                if !delete.nowait {
                    connection.send(
                        channel,
                        AMQPClass::Queue(AMQPMethod::DeleteOk(queue::DeleteOk {
                            message_count: 0,
                        })),
                    );
                }
                return Ok(());
            };
            check_exclusive(connection, &queue, delete.queue.as_str(), ids)?;
            let consumers = consumer_count(&connection.shared, &queue);
            if delete.if_unused && consumers > 0 {
                return Err(AmqpError::channel(
                    reply::PRECONDITION_FAILED,
                    format!(
                        "PRECONDITION_FAILED - queue '{}' in vhost '/' in use",
                        delete.queue.as_str()
                    ),
                    ids,
                ));
            }
            let waiting = info.ready + info.delayed;
            if delete.if_empty && waiting + info.leased > 0 {
                return Err(AmqpError::channel(
                    reply::PRECONDITION_FAILED,
                    format!(
                        "PRECONDITION_FAILED - queue '{}' in vhost '/' not empty",
                        delete.queue.as_str()
                    ),
                    ids,
                ));
            }
            delete_queue_everywhere(&connection.shared, &queue).await;
            connection.exclusive_queues.retain(|q| *q != queue);
            if !delete.nowait {
                connection.send(
                    channel,
                    AMQPClass::Queue(AMQPMethod::DeleteOk(queue::DeleteOk {
                        message_count: waiting.min(u64::from(u32::MAX)) as u32,
                    })),
                );
            }
            Ok(())
        }
        AMQPMethod::DeclareOk(_)
        | AMQPMethod::BindOk(_)
        | AMQPMethod::PurgeOk(_)
        | AMQPMethod::DeleteOk(_)
        | AMQPMethod::UnbindOk(_) => Err(AmqpError::connection(
            reply::COMMAND_INVALID,
            "a server-only queue method from the client",
            ids,
        )),
    }
}

async fn declare_queue(
    connection: &mut Connection,
    channel: u16,
    declare: queue::Declare,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    let amqp_name = if declare.queue.as_str().is_empty() {
        server_name()
    } else {
        declare.queue.as_str().to_string()
    };
    let Some(queue) = names::to_engine(&amqp_name) else {
        return Err(AmqpError::channel(
            reply::PRECONDITION_FAILED,
            format!("PRECONDITION_FAILED - queue name '{amqp_name}' is too long"),
            ids,
        ));
    };
    let exists = connection.engine().queue_info(&queue).is_ok();
    if declare.passive && !exists {
        return Err(not_found(&amqp_name, ids));
    }
    if exists {
        check_exclusive(connection, &queue, &amqp_name, ids)?;
        if !declare.passive {
            equivalence::check(connection, &queue, &amqp_name, &declare, ids)?;
        }
        expiry::touch(&connection.shared, &queue);
    } else {
        if amqp_name.starts_with("amq.") && !declare.queue.as_str().is_empty() {
            return Err(AmqpError::channel(
                reply::ACCESS_REFUSED,
                format!(
                    "ACCESS_REFUSED - queue name '{amqp_name}' contains reserved prefix 'amq.*'"
                ),
                ids,
            ));
        }
        let flags = arguments::Flags {
            durable: declare.durable,
            exclusive: declare.exclusive,
            auto_delete: declare.auto_delete,
        };
        arguments::check(&declare.arguments, &amqp_name, &flags, ids)?;
        let (mut spec, route) = queue_spec(&queue, &declare.arguments, ids)?;
        spec.durability = Some(durability(declare.durable, declare.exclusive));
        let expires_ms = expiry::argument(&declare.arguments);
        match connection.engine().create_queue(spec).await {
            Ok(_) | Err(EngineError::QueueExists(_)) => {}
            Err(error) => return Err(engine_error(error, ids)),
        }
        if let Some(route) = route {
            connection
                .engine()
                .set_dead_letter_route(&queue, Some(route))
                .await
                .map_err(|error| engine_error(error, ids))?;
        }
        {
            // What a re-declaration is compared with (`equivalence.rs`).
            let mut owners = connection
                .shared
                .owners
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let owner = owners.entry(queue.clone()).or_default();
            owner.declared_here = true;
            owner.durable = declare.durable;
            owner.auto_delete = declare.auto_delete;
            owner.door_arguments = equivalence::door_arguments(&declare.arguments);
            if declare.exclusive {
                owner.exclusive_to = Some(connection.id);
            }
        }
        if declare.exclusive {
            connection.exclusive_queues.push(queue.clone());
        }
        if durability(declare.durable, declare.exclusive) == QueueDurability::Durable {
            let owner = connection
                .shared
                .owners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&queue)
                .cloned()
                .unwrap_or_default();
            super::declared::store(connection.engine(), &queue, &owner)
                .await
                .map_err(|error| engine_error(error, ids))?;
        }
        if let Some(expires_ms) = expires_ms {
            expiry::watch(&connection.shared, &queue, expires_ms);
        }
        if single_active::requested(&declare.arguments) {
            connection
                .shared
                .owners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(queue.clone())
                .or_default()
                .single_active = Some(Arc::default());
        }
    }
    if !declare.nowait {
        let ready = connection
            .engine()
            .queue_info(&queue)
            .map(|info| info.ready)
            .unwrap_or(0);
        connection.send(
            channel,
            AMQPClass::Queue(AMQPMethod::DeclareOk(queue::DeclareOk {
                queue: amqp_name.as_str().into(),
                message_count: ready.min(u64::from(u32::MAX)) as u32,
                consumer_count: consumer_count(&connection.shared, &queue),
            })),
        );
    }
    Ok(())
}

/// The engine durability of a declared queue. RabbitMQ deletes non-durable queues when it
/// restarts and exclusive ones when their connection goes (a restart among the ways), and
/// confirms their messages once they are in memory, persistent or not: so they are
/// transient engine queues, whose enqueues wait for no fsync and which are deleted at the
/// next start. Durable queues fsync every message before its confirm, transient
/// (delivery mode 1) ones too: the log acknowledges in order, and a message can be
/// delivered only once the log has acknowledged it, so skipping the wait for the confirm
/// alone would make nothing visible sooner (docs/amqp.md, "Durability").
pub(crate) fn durability(durable: bool, exclusive: bool) -> QueueDurability {
    if durable && !exclusive {
        QueueDurability::Durable
    } else {
        QueueDurability::Transient
    }
}

/// `amq.gen-` and 22 characters, as RabbitMQ names them.
fn server_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "amq.gen-{:011x}{:011x}",
        nanos & 0xFFF_FFFF_FFFF,
        (count ^ u64::from(std::process::id())) & 0xFFF_FFFF_FFFF
    )
}

pub(super) fn queue_spec(
    name: &str,
    arguments: &FieldTable,
    ids: (u16, u16),
) -> Result<(QueueSpec, Option<DeadLetterRoute>), AmqpError> {
    let table = arguments.inner();
    let bad = |text: String| AmqpError::channel(reply::PRECONDITION_FAILED, text, ids);
    let number = |key: &str| -> Result<Option<u64>, AmqpError> {
        match table.get(key) {
            None => Ok(None),
            Some(value) => match integer(value) {
                Some(n) if n >= 0 => Ok(Some(n as u64)),
                _ => Err(bad(format!(
                    "PRECONDITION_FAILED - invalid arg '{key}': a non-negative integer is expected"
                ))),
            },
        }
    };
    let text = |key: &str| table.get(key).and_then(string);
    match text("x-queue-type").as_deref() {
        None | Some("classic") | Some("quorum") => {}
        Some("stream") => {
            return Err(bad(
                "PRECONDITION_FAILED - x-queue-type 'stream' is not supported: use a Kafka or HTTP stream".into(),
            ))
        }
        Some(other) => return Err(bad(format!("PRECONDITION_FAILED - invalid x-queue-type '{other}'"))),
    }
    let dead_letter_exchange = text("x-dead-letter-exchange");
    let overflow = match text("x-overflow").as_deref() {
        None | Some("drop-head") if dead_letter_exchange.is_some() => Overflow::DeadLetterOldest,
        None | Some("drop-head") => Overflow::DropOldest,
        Some("reject-publish") => Overflow::RejectNew,
        // Refused and dead-lettered (through the dead-letter exchange, when there is one).
        Some("reject-publish-dlx") => Overflow::DeadLetterNew,
        Some(other) => {
            return Err(bad(format!(
                "PRECONDITION_FAILED - invalid x-overflow '{other}'"
            )))
        }
    };
    let max_length = number("x-max-length")?;
    let max_bytes = number("x-max-length-bytes")?.map(|b| b.max(1));
    // A negative limit is no limit, as RabbitMQ 4 reads it (`arguments.rs`).
    let delivery_limit = match table.get("x-delivery-limit").and_then(integer) {
        Some(limit) if limit < 0 => None,
        _ => number("x-delivery-limit")?,
    };
    let spec = QueueSpec {
        name: name.to_string(),
        lease_ms: Some(LEASE_MS),
        max_deliver: Some(match delivery_limit {
            Some(limit) => u32::try_from(limit.saturating_add(1)).unwrap_or(u32::MAX),
            None => u32::MAX,
        }),
        // A requeue is immediate in AMQP: no backoff, no jitter.
        backoff: Some(Backoff::Fixed { delay_ms: 0 }),
        jitter: Some(0.0),
        max_unacked_per_worker: Some(UNACKED_PER_WORKER),
        // An ack is answered by nothing in AMQP, and RabbitMQ does not sync it to disk
        // either: acks go with the next group commit instead of waiting for their own (a
        // crash before it delivers the message again, as it would in RabbitMQ).
        completions: Some(Completions::Batched),
        ttl_ms: number("x-message-ttl")?,
        // Expired messages go to the dead-letter exchange when there is one; otherwise
        // RabbitMQ drops them.
        dead_letter_expired: Some(dead_letter_exchange.is_some()),
        max_length: if overflow == Overflow::RejectNew || max_length.is_some() {
            max_length
        } else {
            None
        },
        max_bytes,
        overflow: Some(overflow),
        ..Default::default()
    };
    let route = dead_letter_exchange.map(|exchange| {
        let mut routing_key = text("x-dead-letter-routing-key");
        if exchange.is_empty() {
            // The default exchange routes by engine queue name.
            routing_key = routing_key.and_then(|key| names::to_engine(&key));
        }
        DeadLetterRoute {
            exchange,
            routing_key,
        }
    });
    Ok((spec, route))
}

pub(crate) fn not_found(name: &str, ids: (u16, u16)) -> AmqpError {
    AmqpError::channel(
        reply::NOT_FOUND,
        format!("NOT_FOUND - no queue '{name}' in vhost '/'"),
        ids,
    )
}

/// The engine name of a queue that exists, or 404.
pub(crate) fn existing_queue(
    connection: &Connection,
    amqp_name: &str,
    ids: (u16, u16),
) -> Result<String, AmqpError> {
    match names::to_engine(amqp_name) {
        Some(queue) if connection.engine().queue_info(&queue).is_ok() => Ok(queue),
        _ => Err(not_found(amqp_name, ids)),
    }
}

/// 405 RESOURCE_LOCKED when the queue is exclusive to another connection.
pub(crate) fn check_exclusive(
    connection: &Connection,
    queue: &str,
    amqp_name: &str,
    ids: (u16, u16),
) -> Result<(), AmqpError> {
    let owners = connection
        .shared
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    match owners.get(queue).and_then(|owner| owner.exclusive_to) {
        Some(owner) if owner != connection.id => Err(AmqpError::channel(
            reply::RESOURCE_LOCKED,
            format!("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{amqp_name}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."),
            ids,
        )),
        _ => Ok(()),
    }
}

pub(crate) fn consumer_count(shared: &Shared, queue: &str) -> u32 {
    shared
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(queue)
        .map_or(0, |owner| owner.consumers)
}

/// Deletes a queue with its bindings and dead-letter route, and forgets its owner.
pub(crate) async fn delete_queue_everywhere(shared: &Arc<Shared>, queue: &str) {
    let engine = &shared.engine;
    let _ = engine.unbind_queue_everywhere(queue).await;
    let _ = engine.set_dead_letter_route(queue, None).await;
    let _ = engine.set_queue_transient(queue, false).await;
    if let Err(error) = engine.delete_queue(queue).await {
        if !matches!(error, EngineError::QueueNotFound(_)) {
            tracing::warn!(queue, "deleting an AMQP queue failed: {error}");
        }
    }
    shared
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(queue);
}

/// Counts a consumer in (or out); answers whether an auto-delete queue lost its last one.
pub(crate) fn count_consumer(shared: &Shared, queue: &str, added: bool) -> bool {
    let mut owners = shared.owners.lock().unwrap_or_else(|p| p.into_inner());
    let owner: &mut QueueOwner = owners.entry(queue.to_string()).or_default();
    if owner.expires_ms.is_some() {
        // A consumer coming or going is a use (`expiry.rs`).
        owner.used_at = Some(std::time::Instant::now());
    }
    if added {
        owner.consumers += 1;
        false
    } else {
        owner.consumers = owner.consumers.saturating_sub(1);
        owner.consumers == 0 && owner.auto_delete
    }
}
