//! The keyspace events of the consumer-group commands (class `t`, and `n` for a stream XGROUP
//! CREATE MKSTREAM made), named as redis-server 7.0 sends them: `xgroup-create`,
//! `xgroup-setid`, `xgroup-destroy`, `xgroup-delconsumer`, and `xgroup-createconsumer` for
//! XGROUP CREATECONSUMER and for the XREADGROUP, XCLAIM or XAUTOCLAIM that made the consumer
//! it names (Redis makes one on its first read or claim of something).
//!
//! Like the other commands' (`events.rs`), they are read from around the command: whether
//! the stream and the named consumer were there before it and are after. What changes a
//! stream's entries (XADD, XTRIM, XDEL, XSETID) is sent by the stream's writer instead
//! (`streams/writer.rs`).

use bytes::Bytes;
use omnibus_engine::Engine;

use super::{Event, NEW, STREAM};
use crate::codec::Reply;
use crate::commands::{key_positions, table};
use crate::session::Session;

/// What a group command's events need from before it ran.
pub(crate) struct Before {
    /// Whether the first key named a stream.
    stream_existed: bool,
    /// Per stream key the command reads, in order, whether the consumer it names was in the
    /// group.
    consumers: Vec<bool>,
}

/// The group commands whose events are made here.
pub(crate) fn reports(name: &str) -> bool {
    matches!(name, "xgroup" | "xreadgroup" | "xclaim" | "xautoclaim")
}

/// The group, the consumer and the stream keys of a command that names a consumer.
fn named<'a>(name: &str, arguments: &'a [Bytes]) -> Option<(&'a Bytes, &'a Bytes, Vec<&'a Bytes>)> {
    match name {
        // GROUP group consumer … STREAMS key …
        "xreadgroup" => {
            let keys = key_positions::keys_of(table::find(name)?, arguments);
            Some((arguments.get(1)?, arguments.get(2)?, keys))
        }
        "xclaim" | "xautoclaim" => Some((
            arguments.get(1)?,
            arguments.get(2)?,
            vec![arguments.first()?],
        )),
        // CREATECONSUMER / DELCONSUMER key group consumer
        "xgroup" => Some((
            arguments.get(2)?,
            arguments.get(3)?,
            vec![arguments.get(1)?],
        )),
        _ => None,
    }
}

/// Whether `consumer` is a consumer of group `group` of the stream `key`.
fn has_consumer(engine: &Engine, key: &[u8], group: &[u8], consumer: &[u8]) -> bool {
    let (Ok(stream), Ok(group)) = (std::str::from_utf8(key), std::str::from_utf8(group)) else {
        return false;
    };
    // The door names a consumer by its name's text, as XREADGROUP does.
    let consumer = String::from_utf8_lossy(consumer);
    engine
        .owned_owners(stream, group)
        .is_ok_and(|owners| owners.iter().any(|owner| owner.name == consumer))
}

pub(crate) fn before(session: &Session, name: &str, arguments: &[Bytes]) -> Before {
    let engine = &session.shared.engine;
    let stream_existed = match name {
        "xgroup" => arguments
            .get(1)
            .is_some_and(|key| crate::commands::is_stream(session, key)),
        _ => false,
    };
    let consumers = match named(name, arguments) {
        Some((group, consumer, keys)) => keys
            .into_iter()
            .map(|key| has_consumer(engine, key, group, consumer))
            .collect(),
        None => Vec::new(),
    };
    Before {
        stream_existed,
        consumers,
    }
}

/// The events of group command `name`, which answered `reply` (not an error).
pub(crate) fn events(
    engine: &Engine,
    name: &str,
    arguments: &[Bytes],
    reply: &Reply,
    before: &Before,
    events: &mut Vec<Event>,
) {
    let mut event = |class, name, key: &Bytes| events.push((class, name, key.clone()));
    if name == "xgroup" {
        let (Some(subcommand), Some(key)) = (arguments.first(), arguments.get(1)) else {
            return;
        };
        let subcommand = subcommand.to_ascii_lowercase();
        match (subcommand.as_slice(), reply) {
            (b"create", Reply::Status(_)) => {
                if !before.stream_existed {
                    event(NEW, "new", key);
                }
                event(STREAM, "xgroup-create", key);
            }
            (b"setid", Reply::Status(_)) => event(STREAM, "xgroup-setid", key),
            (b"destroy", Reply::Integer(1)) => event(STREAM, "xgroup-destroy", key),
            (b"createconsumer", Reply::Integer(1)) => event(STREAM, "xgroup-createconsumer", key),
            (b"delconsumer", Reply::Integer(_)) if before.consumers.first() == Some(&true) => {
                event(STREAM, "xgroup-delconsumer", key)
            }
            _ => {}
        }
        return;
    }
    let Some((group, consumer, keys)) = named(name, arguments) else {
        return;
    };
    for (key, existed) in keys.into_iter().zip(&before.consumers) {
        if !existed && has_consumer(engine, key, group, consumer) {
            event(STREAM, "xgroup-createconsumer", key);
        }
    }
}
