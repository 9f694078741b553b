//! Commands on keys whatever their value: DEL, EXISTS, EXPIRE and its kin, TTL, PERSIST,
//! TYPE, DBSIZE, KEYS, SCAN, FLUSHALL. EXISTS and TYPE see stream keys; the others act on
//! string keys only (docs/redis.md, "Not there yet").

use bytes::Bytes;
use omnibus_engine::keys::{ExpireCondition, TimeToLive};

use super::arguments::{integer, is, lowercase, SYNTAX_ERROR};
use super::strings::{map, now_ms, step};
use crate::codec::Reply;
use crate::session::{Session, Step};

/// Most keys KEYS answers with; a larger keyspace needs SCAN.
const KEYS_REPLY_MAX: usize = 1_000_000;

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let keys = session.keys.clone();
    match name {
        "del" | "unlink" => step(
            keys.delete(arguments)
                .map(|d| map(d, |count| Reply::Integer(count as i64))),
        ),
        "exists" => {
            // A stream key exists too (each argument counts, repeated ones as often as given).
            let count = arguments
                .iter()
                .filter(|key| {
                    keys.exists(std::slice::from_ref(*key)) == 1
                        || super::streams::is_stream(session, key)
                })
                .count();
            Reply::Integer(count as i64).into()
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" => expire(session, name, arguments),
        "persist" => step(
            keys.expire(&arguments[0], None, ExpireCondition::Always)
                .map(|d| map(d, |changed| Reply::Integer(i64::from(changed)))),
        ),
        "ttl" | "pttl" => {
            let reply = match keys.time_to_live(&arguments[0]) {
                TimeToLive::Missing => -2,
                TimeToLive::Forever => -1,
                TimeToLive::Milliseconds(ms) if name == "ttl" => (ms + 500) / 1000,
                TimeToLive::Milliseconds(ms) => ms,
            };
            Reply::Integer(reply).into()
        }
        "type" => {
            let kind = if keys.exists(&arguments[..1]) == 1 {
                "string"
            } else if super::streams::is_stream(session, &arguments[0]) {
                "stream"
            } else {
                "none"
            };
            Reply::Status(kind.into()).into()
        }
        "dbsize" => Reply::Integer(keys.len() as i64).into(),
        "keys" => {
            let (_, found) = keys.scan(0, Some(&arguments[0]), KEYS_REPLY_MAX);
            Reply::Array(found.into_iter().map(Reply::Bulk).collect()).into()
        }
        "scan" => scan(session, arguments),
        "flushall" | "flushdb" => {
            if !session.shared.config.flushall_enabled {
                return Reply::error(format!(
                    "ERR {} is turned off on this server (set redis.flushall_enabled = true)",
                    name.to_ascii_uppercase()
                ))
                .into();
            }
            if arguments.len() > 1
                || arguments
                    .first()
                    .is_some_and(|mode| !is(mode, "sync") && !is(mode, "async"))
            {
                return Reply::error(SYNTAX_ERROR).into();
            }
            step(keys.clear().map(|d| map(d, |()| Reply::ok())))
        }
        _ => Reply::error(format!("ERR unknown command '{name}'")).into(),
    }
}

/// EXPIRE key seconds [NX | XX | GT | LT], and PEXPIRE, EXPIREAT, PEXPIREAT.
fn expire(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let amount = match integer(&arguments[1]) {
        Ok(amount) => amount,
        Err(reply) => return reply.into(),
    };
    let unit = if name.starts_with('p') { 1 } else { 1000 };
    let absolute = name.ends_with("at");
    let deadline = amount.checked_mul(unit).and_then(|ms| {
        if absolute {
            Some(ms)
        } else {
            ms.checked_add(now_ms())
        }
    });
    let Some(deadline) = deadline else {
        return Reply::error(format!("ERR invalid expire time in '{name}' command")).into();
    };
    let mut condition = ExpireCondition::Always;
    for option in &arguments[2..] {
        let wanted = match lowercase(option).as_str() {
            "nx" => ExpireCondition::IfNone,
            "xx" => ExpireCondition::IfSome,
            "gt" => ExpireCondition::IfLater,
            "lt" => ExpireCondition::IfEarlier,
            _ => {
                return Reply::error(format!(
                    "ERR Unsupported option {}",
                    super::arguments::printable(option, 128)
                ))
                .into()
            }
        };
        condition = match (condition, wanted) {
            (ExpireCondition::Always, wanted) => wanted,
            (current, wanted) if current == wanted => wanted,
            (ExpireCondition::IfLater, ExpireCondition::IfEarlier)
            | (ExpireCondition::IfEarlier, ExpireCondition::IfLater) => {
                return Reply::error("ERR GT and LT options at the same time are not compatible")
                    .into()
            }
            _ => {
                return Reply::error(
                    "ERR NX and XX, GT or LT options at the same time are not compatible",
                )
                .into()
            }
        };
    }
    step(
        session
            .keys
            .expire(&arguments[0], Some(deadline), condition)
            .map(|d| map(d, |changed| Reply::Integer(i64::from(changed)))),
    )
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
fn scan(session: &mut Session, arguments: &[Bytes]) -> Step {
    let Some(cursor) = std::str::from_utf8(&arguments[0])
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
    else {
        return Reply::error("ERR invalid cursor").into();
    };
    let mut pattern = None;
    let mut count = 10usize;
    let mut only_strings = true;
    let mut options = arguments[1..].iter();
    while let Some(option) = options.next() {
        let Some(value) = options.next() else {
            return Reply::error(SYNTAX_ERROR).into();
        };
        if is(option, "match") {
            pattern = Some(value.clone());
        } else if is(option, "count") {
            match integer(value) {
                Ok(n) if n >= 1 => count = n.min(100_000) as usize,
                Ok(_) => return Reply::error(SYNTAX_ERROR).into(),
                Err(reply) => return reply.into(),
            }
        } else if is(option, "type") {
            only_strings = is(value, "string");
        } else {
            return Reply::error(SYNTAX_ERROR).into();
        }
    }
    let (next, found) = session.keys.scan(cursor, pattern.as_deref(), count);
    let found = if only_strings { found } else { Vec::new() };
    Reply::Array(vec![
        Reply::text(&next.to_string()),
        Reply::Array(found.into_iter().map(Reply::Bulk).collect()),
    ])
    .into()
}
