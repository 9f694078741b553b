//! What keys are made of, for tools: OBJECT (ENCODING, REFCOUNT, FREQ, IDLETIME, HELP),
//! MEMORY (USAGE, STATS, DOCTOR, HELP) and RANDOMKEY. `redis-cli --memkeys` sizes keys with
//! MEMORY USAGE; dashboards read MEMORY STATS.
//!
//! The figures are this broker's own (`Keyspace::object`): a key's name, its value with each
//! element's overhead, and a fixed cost per key; a stream key's are its log's bytes on disk.
//! Encodings are Redis's names for the structures held (docs/redis.md, "OBJECT and MEMORY").

use bytes::Bytes;
use omnibus_engine::keys::KEY_OVERHEAD_BYTES;

use super::arguments::{integer, is, lowercase, SYNTAX_ERROR};
use crate::codec::Reply;
use crate::session::{Session, Step};

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let reply = match name {
        "object" => object(session, arguments),
        "memory" => memory(session, arguments),
        "randomkey" => random_key(session),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    reply.unwrap_or_else(|reply| reply).into()
}

/// What a key is, as OBJECT and MEMORY see it: its bytes and encoding; `None` when missing.
fn described(session: &Session, key: &[u8]) -> Option<(u64, &'static str)> {
    if let Some(object) = session.keys.object(key) {
        return Some((object.bytes, object.encoding));
    }
    if !super::streams::is_stream(session, key) {
        return None;
    }
    let name = std::str::from_utf8(key).ok()?;
    let info = session.shared.engine.stream_info(name).ok()?;
    let bytes: u64 = info.partition_info.iter().map(|p| p.size_bytes).sum();
    Some((key.len() as u64 + bytes + KEY_OVERHEAD_BYTES, "stream"))
}

fn unknown_subcommand(command: &str, word: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {command} HELP.",
        String::from_utf8_lossy(word)
    ))
}

fn wrong_arity(command: &str, subcommand: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{command}|{subcommand}' command"
    ))
}

/// OBJECT ENCODING | REFCOUNT | FREQ | IDLETIME key, OBJECT HELP.
fn object(session: &mut Session, arguments: &[Bytes]) -> Result<Reply, Reply> {
    let subcommand = lowercase(&arguments[0]);
    if subcommand == "help" {
        return Ok(super::help_reply(&[
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    The name of the structure that holds <key>'s value.",
            "FREQ <key>",
            "    Not tracked here: no eviction policy uses access frequencies.",
            "IDLETIME <key>",
            "    Not tracked here: no access times are kept.",
            "REFCOUNT <key>",
            "    1: a value is never shared between keys.",
            "HELP",
            "    Print this help.",
        ]));
    }
    if !matches!(
        subcommand.as_str(),
        "encoding" | "refcount" | "freq" | "idletime"
    ) {
        return Err(unknown_subcommand("OBJECT", &arguments[0]));
    }
    let [_, key] = arguments else {
        return Err(wrong_arity("object", &subcommand));
    };
    let Some((_, encoding)) = described(session, key) else {
        return Ok(Reply::Null);
    };
    Ok(match subcommand.as_str() {
        "encoding" => Reply::text(encoding),
        "refcount" => Reply::Integer(1),
        // Redis's words when its eviction policy does not track frequencies.
        "freq" => Reply::error(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
             Please note that when switching between policies at runtime LRU and LFU data \
             will take some time to adjust.",
        ),
        _ => Reply::error("ERR idle times are not tracked by this server"),
    })
}

/// MEMORY USAGE key [SAMPLES n] | STATS | DOCTOR | HELP.
fn memory(session: &mut Session, arguments: &[Bytes]) -> Result<Reply, Reply> {
    let subcommand = lowercase(&arguments[0]);
    match subcommand.as_str() {
        "usage" => {
            let key = arguments
                .get(1)
                .ok_or_else(|| wrong_arity("memory", "usage"))?;
            // SAMPLES is read and checked; every element is counted whatever it says.
            match &arguments[2..] {
                [] => {}
                [word, samples] if is(word, "samples") => {
                    if integer(samples)? < 0 {
                        return Err(Reply::error(SYNTAX_ERROR));
                    }
                }
                _ => return Err(Reply::error(SYNTAX_ERROR)),
            }
            Ok(described(session, key)
                .map_or(Reply::Null, |(bytes, _)| Reply::Integer(bytes as i64)))
        }
        "stats" => {
            if arguments.len() != 1 {
                return Err(wrong_arity("memory", "stats"));
            }
            let resources = omnibus_engine::metrics::process_resources();
            let used = resources.resident_bytes.unwrap_or(0);
            let peak = resources.peak_resident_bytes.unwrap_or(used).max(used);
            let keys = session.keys.len() as u64;
            let streams = session.shared.engine.stream_count() as u64;
            let dataset = session.keys.bytes();
            let field = |name: &str, value: u64| (Reply::text(name), Reply::Integer(value as i64));
            Ok(Reply::Map(vec![
                field("peak.allocated", peak),
                field("total.allocated", used),
                field("keys.count", keys + streams),
                field("keys.bytes-per-key", KEY_OVERHEAD_BYTES),
                field("dataset.bytes", dataset),
            ]))
        }
        "doctor" if arguments.len() != 1 => Err(wrong_arity("memory", "doctor")),
        "doctor" => Ok(Reply::text(
            "Memory here is the keyspace held in memory and the broker's buffers; streams \
             live on disk. MEMORY STATS and INFO memory give the figures; docs/redis.md, \
             \"Limits\", gives the bounds.",
        )),
        "help" => Ok(super::help_reply(&[
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    What memory is used for here.",
            "STATS",
            "    The process's memory and the keyspace's bytes.",
            "USAGE <key> [SAMPLES <count>]",
            "    The bytes <key> takes: its name, its value and a fixed cost per key",
            "    (a stream key: its log's bytes on disk).",
            "HELP",
            "    Print this help.",
        ])),
        _ => Err(unknown_subcommand("MEMORY", &arguments[0])),
    }
}

/// RANDOMKEY: any key, a stream key among them, or nil when there is none.
fn random_key(session: &mut Session) -> Result<Reply, Reply> {
    // Any seed will do: a fresh RandomState is keyed at random.
    let seed = {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now())
    };
    let streams = super::keyspace::stream_keys(session);
    let keys = session.keys.len();
    let total = keys + streams.len();
    if total == 0 {
        return Ok(Reply::Null);
    }
    let pick = (seed % total as u64) as usize;
    if pick >= keys {
        return Ok(Reply::Bulk(streams[pick - keys].clone()));
    }
    Ok(session
        .keys
        .random_key(seed.rotate_left(17))
        .map_or(Reply::Null, Reply::Bulk))
}
