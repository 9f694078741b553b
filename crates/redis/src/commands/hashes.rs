//! Hash commands over the engine's keyspace (`keys/hashes.rs`): HSET, HSETNX, HMSET, HGET,
//! HMGET, HGETALL, HDEL, HEXISTS, HLEN, HKEYS, HVALS, HINCRBY, HSTRLEN, HSCAN, HRANDFIELD.
//! Every change
//! is durable before its reply, as a string's is; fields answer in the order they were
//! first set, as redis-server's small hashes do.

use bytes::Bytes;
use omnibus_engine::keys::{Increment, KeyKind};

use super::arguments::integer;
use super::lists::{change, check_not_stream, read};
use super::sets::{cursor, pairs_reply, random_options, scan_missing, scan_options_of, scan_reply};
use super::strings::map;
use crate::codec::Reply;
use crate::session::{Session, Step};

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let key = &arguments[0];
    let result = match name {
        "hset" | "hmset" => hset(session, name, arguments),
        "hsetnx" => check_not_stream(session, key).and_then(|()| {
            let pair = vec![(arguments[1].clone(), arguments[2].clone())];
            change(
                session
                    .keys
                    .hash_set(key, pair, true)
                    .map(|d| map(d, |new| Reply::Integer(new as i64))),
            )
        }),
        "hget" | "hmget" | "hexists" | "hstrlen" => read(session, key, |keys| {
            let values = keys.hash_get(key, &arguments[1..])?;
            Ok(match name {
                "hget" => values[0].clone().map_or(Reply::Null, Reply::Bulk),
                "hexists" => Reply::Integer(i64::from(values[0].is_some())),
                "hstrlen" => Reply::Integer(values[0].as_ref().map_or(0, Bytes::len) as i64),
                _ => Reply::Array(
                    values
                        .into_iter()
                        .map(|value| value.map_or(Reply::Null, Reply::Bulk))
                        .collect(),
                ),
            })
        }),
        "hgetall" | "hkeys" | "hvals" => read(session, key, |keys| {
            let all = keys.hash_all(key)?;
            Ok(match name {
                "hgetall" => Reply::Map(
                    all.into_iter()
                        .map(|(field, value)| (Reply::Bulk(field), Reply::Bulk(value)))
                        .collect(),
                ),
                "hkeys" => Reply::Array(all.into_iter().map(|(f, _)| Reply::Bulk(f)).collect()),
                _ => Reply::Array(all.into_iter().map(|(_, v)| Reply::Bulk(v)).collect()),
            })
        }),
        "hlen" => read(session, key, |keys| {
            Ok(Reply::Integer(keys.hash_len(key)? as i64))
        }),
        "hdel" => check_not_stream(session, key).and_then(|()| {
            change(
                session
                    .keys
                    .hash_delete(key, &arguments[1..])
                    .map(|d| map(d, |removed| Reply::Integer(removed as i64))),
            )
        }),
        "hincrby" => hincrby(session, arguments),
        "hincrbyfloat" => match omnibus_engine::keys::parse_float(&arguments[2]) {
            None => Err(Reply::error("ERR value is not a valid float")),
            // Redis refuses an infinite increment itself first, in these words.
            Some(delta) if delta.is_infinite() => Err(Reply::error("ERR value is NaN or Infinity")),
            Some(delta) => check_not_stream(session, key).and_then(|()| {
                let added = session.keys.hash_increment_float(key, &arguments[1], delta);
                change(added.map(|d| {
                    map(d, |outcome| {
                        super::strings::float_reply(outcome, "ERR hash value is not a float")
                    })
                }))
            }),
        },
        "hscan" => hscan(session, arguments),
        "hrandfield" => hrandfield(session, arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    result.unwrap_or_else(Step::from)
}

fn hset(session: &Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    if !(arguments.len() - 1).is_multiple_of(2) {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    check_not_stream(session, key)?;
    let pairs = arguments[1..]
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    let hmset = name == "hmset";
    change(session.keys.hash_set(key, pairs, false).map(|d| {
        map(d, |new| {
            if hmset {
                Reply::ok()
            } else {
                Reply::Integer(new as i64)
            }
        })
    }))
}

fn hincrby(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (key, field) = (&arguments[0], &arguments[1]);
    let delta = integer(&arguments[2])?;
    check_not_stream(session, key)?;
    change(session.keys.hash_increment(key, field, delta).map(|d| {
        map(d, |outcome| match outcome {
            Increment::Value(value) => Reply::Integer(value),
            Increment::NotAnInteger => Reply::error("ERR hash value is not an integer"),
            Increment::Overflow => Reply::error("ERR increment or decrement would overflow"),
        })
    }))
}

/// HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES] (the fields alone, Redis 7.4).
fn hscan(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let cursor = cursor(&arguments[1])?;
    // As Redis: the key is looked up before the options are read (a missing key answers an
    // empty scan whatever they say, another kind WRONGTYPE).
    if let Some(empty) = scan_missing(session, key, KeyKind::Hash)? {
        return Ok(empty.into());
    }
    let (pattern, count, novalues) = scan_options_of(&arguments[2..], true)?;
    read(session, key, |keys| {
        let (next, found) = keys.hash_scan(key, cursor, pattern.as_deref(), count)?;
        let flat = if novalues {
            found
                .into_iter()
                .map(|(field, _)| Reply::Bulk(field))
                .collect()
        } else {
            found
                .into_iter()
                .flat_map(|(field, value)| [Reply::Bulk(field), Reply::Bulk(value)])
                .collect()
        };
        Ok(scan_reply(next, flat))
    })
}

/// HRANDFIELD key [count [WITHVALUES]]: one field (or nil) without a count; with one, fields
/// as SRANDMEMBER picks members, WITHVALUES pairing each with its value (flat in RESP2,
/// `[field, value]` pairs in RESP3, as redis-server 7 answers).
fn hrandfield(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let (with_count, with_values) = random_options(&arguments[1..], "withvalues")?;
    let protocol = session.protocol;
    read(session, key, |keys| {
        let picked = keys.hash_random(key, with_count.unwrap_or(1))?;
        Ok(match (with_count, with_values) {
            (None, _) => picked
                .into_iter()
                .next()
                .map_or(Reply::Null, |(field, _)| Reply::Bulk(field)),
            (Some(_), false) => {
                Reply::Array(picked.into_iter().map(|(f, _)| Reply::Bulk(f)).collect())
            }
            (Some(_), true) => pairs_reply(
                picked
                    .into_iter()
                    .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
                    .collect(),
                protocol,
            ),
        })
    })
}
