//! The connection class: the handshake and closing.
//!
//! The spec's order is: the client's protocol header; our connection.start (mechanisms
//! `PLAIN AMQPLAIN` — exactly these: py-amqp without a login method picks AMQPLAIN, and
//! EXTERNAL is never offered — and the server properties with the capabilities table);
//! the client's start-ok with its credentials; our tune (channel_max, frame_max, heartbeat);
//! its tune-ok, which may lower each (0 meaning "no limit" for channel_max and frame_max is
//! taken as our maximum); its open of a virtual host, and our open-ok.
//!
//! Our choices: the only virtual host is `/` (another gets 530 NOT_ALLOWED), and the only user
//! is `guest`/`guest` until the security work adds users (others get 403 ACCESS_REFUSED, sent
//! as connection.close since the client advertises `authentication_failure_close`).

use amq_protocol::protocol::connection::{self, AMQPMethod};
use amq_protocol::protocol::AMQPClass;
use amq_protocol::types::{AMQPValue, FieldTable, LongString};

use super::{Connection, Phase};
use crate::codec::FRAME_MIN_SIZE;
use crate::error::{reply, AmqpError};

/// The only user there is until the security work adds users: every connection is logged in
/// as guest (`publish` checks a message's `user_id` against it, as RabbitMQ does).
pub(crate) const GUEST: &str = "guest";

const PRODUCT: &str = "Omnibus";
/// The version we announce; kombu reads `version` with the product to choose qos semantics.
const VERSION: &str = "3.13.0";

/// Sends connection.start.
pub(crate) fn start(connection: &mut Connection) {
    let mut capabilities = FieldTable::default();
    for capability in [
        "publisher_confirms",
        "basic.nack",
        "consumer_cancel_notify",
        "authentication_failure_close",
        "per_consumer_qos",
        "connection.blocked",
        "direct_reply_to",
        "exchange_exchange_bindings",
    ] {
        capabilities.insert(capability.into(), AMQPValue::Boolean(true));
    }
    let mut properties = FieldTable::default();
    properties.insert("product".into(), long_string(PRODUCT));
    properties.insert("version".into(), long_string(VERSION));
    properties.insert("platform".into(), long_string("Rust"));
    properties.insert("cluster_name".into(), long_string("omnibus"));
    properties.insert("capabilities".into(), AMQPValue::FieldTable(capabilities));
    connection.send(
        0,
        AMQPClass::Connection(AMQPMethod::Start(connection::Start {
            version_major: 0,
            version_minor: 9,
            server_properties: properties,
            mechanisms: LongString::from("PLAIN AMQPLAIN"),
            locales: LongString::from("en_US"),
        })),
    );
}

fn long_string(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text))
}

pub(crate) async fn handle(
    connection: &mut Connection,
    method: AMQPClass,
) -> Result<(), AmqpError> {
    let ids = (method.get_amqp_class_id(), method.get_amqp_method_id());
    let AMQPClass::Connection(method) = method else {
        return Err(AmqpError::connection(
            reply::COMMAND_INVALID,
            "only connection methods are valid on channel 0",
            ids,
        ));
    };
    match (connection.phase, method) {
        (Phase::Start, AMQPMethod::StartOk(start_ok)) => {
            authenticate(&start_ok, ids)?;
            connection.wants_blocked = announces_blocked(&start_ok.client_properties);
            connection.phase = Phase::Tune;
            let config = &connection.shared.config;
            let tune = connection::Tune {
                channel_max: config.channel_max,
                frame_max: config.frame_max,
                heartbeat: config.heartbeat.as_secs().min(u64::from(u16::MAX)) as u16,
            };
            connection.send(0, AMQPClass::Connection(AMQPMethod::Tune(tune)));
            Ok(())
        }
        (Phase::Tune, AMQPMethod::TuneOk(tune_ok)) => {
            let config = &connection.shared.config;
            if tune_ok.frame_max != 0 && tune_ok.frame_max < FRAME_MIN_SIZE {
                return Err(AmqpError::connection(
                    reply::NOT_ALLOWED,
                    format!(
                        "frame_max {} is below the minimum {FRAME_MIN_SIZE}",
                        tune_ok.frame_max
                    ),
                    ids,
                ));
            }
            if tune_ok.frame_max > config.frame_max {
                return Err(AmqpError::connection(
                    reply::NOT_ALLOWED,
                    format!(
                        "frame_max {} is over the server's {}",
                        tune_ok.frame_max, config.frame_max
                    ),
                    ids,
                ));
            }
            connection.frame_max = match tune_ok.frame_max {
                0 => config.frame_max,
                asked => asked,
            };
            connection.channel_max = match tune_ok.channel_max {
                0 => config.channel_max,
                asked => asked.min(config.channel_max),
            };
            connection.heartbeat = tune_ok.heartbeat;
            connection.phase = Phase::Open;
            Ok(())
        }
        (Phase::Open, AMQPMethod::Open(open)) => {
            if open.virtual_host.as_str() != "/" {
                return Err(AmqpError::connection(
                    reply::NOT_ALLOWED,
                    format!(
                        "NOT_ALLOWED - vhost {} not found (the only one is /)",
                        open.virtual_host.as_str()
                    ),
                    ids,
                ));
            }
            connection.phase = Phase::Running;
            connection.send(
                0,
                AMQPClass::Connection(AMQPMethod::OpenOk(connection::OpenOk {})),
            );
            Ok(())
        }
        (_, AMQPMethod::Close(close)) => {
            tracing::debug!(
                connection = connection.id,
                code = close.reply_code,
                "the client closes: {}",
                close.reply_text.as_str()
            );
            // Released before close-ok, so that once the client has its answer its
            // exclusive queues are gone and its unacknowledged deliveries are back.
            connection.tear_down().await;
            connection.send(
                0,
                AMQPClass::Connection(AMQPMethod::CloseOk(connection::CloseOk {})),
            );
            connection.finished = true;
            Ok(())
        }
        (Phase::Closing, AMQPMethod::CloseOk(_)) => {
            connection.finished = true;
            Ok(())
        }
        (Phase::Closing, _) => Ok(()),
        // Flow control from the client: nothing of ours to block.
        (Phase::Running, AMQPMethod::Blocked(_) | AMQPMethod::Unblocked(_)) => Ok(()),
        (Phase::Running, AMQPMethod::UpdateSecret(_)) => {
            connection.send(
                0,
                AMQPClass::Connection(AMQPMethod::UpdateSecretOk(connection::UpdateSecretOk {})),
            );
            Ok(())
        }
        (_, _) => Err(AmqpError::connection(
            reply::COMMAND_INVALID,
            "a connection method out of the handshake's order",
            ids,
        )),
    }
}

/// guest/guest, by PLAIN (`\0user\0password`) or AMQPLAIN (a field table without its
/// length prefix: `LOGIN` and `PASSWORD`).
/// Whether the client's properties say `capabilities: {connection.blocked: true}`.
fn announces_blocked(properties: &FieldTable) -> bool {
    let Some(AMQPValue::FieldTable(capabilities)) = properties.inner().get("capabilities") else {
        return false;
    };
    matches!(
        capabilities.inner().get("connection.blocked"),
        Some(AMQPValue::Boolean(true))
    )
}

fn authenticate(start_ok: &connection::StartOk, ids: (u16, u16)) -> Result<(), AmqpError> {
    let response = start_ok.response.as_bytes();
    let credentials = match start_ok.mechanism.as_str() {
        "PLAIN" => {
            let mut parts = response.split(|b| *b == 0).skip(1);
            (
                parts
                    .next()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
                parts
                    .next()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
            )
        }
        "AMQPLAIN" => amqplain(response),
        other => {
            return Err(AmqpError::connection(
                reply::ACCESS_REFUSED,
                format!("ACCESS_REFUSED - mechanism {other} is not offered (PLAIN, AMQPLAIN)"),
                ids,
            ))
        }
    };
    match credentials {
        (Some(user), Some(password)) if user == GUEST && password == GUEST => Ok(()),
        _ => Err(AmqpError::connection(
            reply::ACCESS_REFUSED,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN or AMQPLAIN",
            ids,
        )),
    }
}

/// AMQPLAIN's response: `LOGIN` and `PASSWORD` entries of a field table, without its length.
fn amqplain(response: &[u8]) -> (Option<String>, Option<String>) {
    let mut framed = Vec::with_capacity(response.len() + 4);
    framed.extend_from_slice(&(response.len() as u32).to_be_bytes());
    framed.extend_from_slice(response);
    let Ok((_, table)) = amq_protocol::types::parsing::parse_field_table(&framed[..]) else {
        return (None, None);
    };
    let text = |name: &str| match table.inner().get(name) {
        Some(AMQPValue::LongString(value)) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        Some(AMQPValue::ShortString(value)) => Some(value.as_str().to_string()),
        _ => None,
    };
    (text("LOGIN"), text("PASSWORD"))
}
