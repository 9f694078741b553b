//! Set commands over the engine's keyspace (`keys/sets.rs`): SADD, SREM, SMEMBERS,
//! SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SMOVE, SINTER, SINTERCARD, SUNION, SDIFF,
//! SINTERSTORE, SUNIONSTORE, SDIFFSTORE, SSCAN. Every change is durable before its reply.
//! A set promises no order: members answer in the order they were added while the broker
//! runs, and in byte order after a restart (RESP3 sends them as a set).

use bytes::Bytes;
use omnibus_engine::keys::{KeyKind, SetOperation};

use super::arguments::{integer, is, NOT_AN_INTEGER, SYNTAX_ERROR};
use super::lists::{change, check_not_stream, read};
use super::strings::map;
use crate::codec::{Protocol, Reply};
use crate::session::{Session, Step};

/// Most members one SRANDMEMBER or ZRANDMEMBER with a negative count may repeat, so one
/// command cannot build an unbounded reply.
pub(super) const REPEATS_MAX: i64 = 1_000_000;

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let key = &arguments[0];
    let result = match name {
        "sadd" => check_not_stream(session, key).and_then(|()| {
            let members = arguments[1..].to_vec();
            change(session.keys.set_add(key, members).map(|d| map(d, count)))
        }),
        "srem" => check_not_stream(session, key).and_then(|()| {
            change(
                session
                    .keys
                    .set_remove(key, &arguments[1..])
                    .map(|d| map(d, count)),
            )
        }),
        "smembers" => read(session, key, |keys| Ok(set_reply(keys.set_members(key)?))),
        "sismember" | "smismember" => read(session, key, |keys| {
            let found = keys.set_contains(key, &arguments[1..])?;
            let flags = found.into_iter().map(|f| Reply::Integer(i64::from(f)));
            Ok(match name {
                "sismember" => flags.into_iter().next().unwrap_or(Reply::Integer(0)),
                _ => Reply::Array(flags.collect()),
            })
        }),
        "scard" => read(session, key, |keys| Ok(count(keys.set_len(key)?))),
        "spop" => spop(session, arguments),
        "srandmember" => srandmember(session, arguments),
        "smove" => check_not_stream(session, key)
            .and_then(|()| check_not_stream(session, &arguments[1]))
            .and_then(|()| {
                let moved = session.keys.set_move(key, &arguments[1], &arguments[2]);
                change(moved.map(|d| map(d, |moved| Reply::Integer(i64::from(moved)))))
            }),
        "sinter" | "sunion" | "sdiff" => {
            let operation = operation(name);
            check_all(session, arguments).and_then(|()| {
                read(session, key, |keys| {
                    Ok(set_reply(keys.set_combine(operation, arguments)?))
                })
            })
        }
        "sinterstore" | "sunionstore" | "sdiffstore" => {
            let operation = operation(name.trim_end_matches("store"));
            check_all(session, arguments).and_then(|()| {
                let stored = session
                    .keys
                    .set_combine_store(operation, key, &arguments[1..]);
                change(stored.map(|d| map(d, count)))
            })
        }
        "sintercard" => sintercard(session, arguments),
        "sscan" => sscan(session, arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    result.unwrap_or_else(Step::from)
}

fn operation(name: &str) -> SetOperation {
    match name {
        "sinter" => SetOperation::Intersection,
        "sunion" => SetOperation::Union,
        _ => SetOperation::Difference,
    }
}

fn count(n: usize) -> Reply {
    Reply::Integer(n as i64)
}

fn set_reply(members: Vec<Bytes>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

/// Every key is an Omnibus stream's name at most if it is also a keyspace key.
pub(super) fn check_all(session: &Session, keys: &[Bytes]) -> Result<(), Reply> {
    keys.iter()
        .try_for_each(|key| check_not_stream(session, key))
}

/// A count that must not be negative (SPOP's, ZPOPMIN's).
pub(super) fn positive_count(word: &Bytes) -> Result<usize, Reply> {
    match integer(word) {
        Ok(n) if n >= 0 => Ok(n as usize),
        _ => Err(Reply::error("ERR value is out of range, must be positive")),
    }
}

/// SPOP key [count]: one member (or nil), or up to `count` of them.
fn spop(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let with_count = match arguments.get(1..) {
        Some([]) | None => None,
        Some([count]) => Some(positive_count(count)?),
        Some(_) => return Err(Reply::error(SYNTAX_ERROR)),
    };
    check_not_stream(session, key)?;
    let popped = session.keys.set_pop(key, with_count.unwrap_or(1));
    change(popped.map(|d| {
        map(d, |members| match with_count {
            Some(_) => set_reply(members),
            None => members.into_iter().next().map_or(Reply::Null, Reply::Bulk),
        })
    }))
}

/// A random pick's count, bounded for a negative one (repeats) by [`REPEATS_MAX`].
/// `[count [WITH…]]` of ZRANDMEMBER (`WITHSCORES`) and HRANDFIELD (`WITHVALUES`): the count,
/// if any, and whether `with` was given.
pub(super) fn random_options(rest: &[Bytes], with: &str) -> Result<(Option<i64>, bool), Reply> {
    match rest {
        [] => Ok((None, false)),
        [count] => Ok((Some(pick_count(count)?), false)),
        [count, word] if is(word, with) => Ok((Some(pick_count(count)?), true)),
        _ => Err(Reply::error(SYNTAX_ERROR)),
    }
}

/// Pairs (a member and its score, a field and its value) as Redis 7 answers them: flat in
/// RESP2, each pair an array of two in RESP3.
pub(super) fn pairs_reply(pairs: Vec<(Reply, Reply)>, protocol: Protocol) -> Reply {
    Reply::Array(match protocol {
        Protocol::Resp2 => pairs.into_iter().flat_map(|(a, b)| [a, b]).collect(),
        Protocol::Resp3 => pairs
            .into_iter()
            .map(|(a, b)| Reply::Array(vec![a, b]))
            .collect(),
    })
}

fn pick_count(word: &Bytes) -> Result<i64, Reply> {
    let count = integer(word)?;
    if count == i64::MIN {
        // Redis's own words: it cannot negate this one.
        return Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if count < -REPEATS_MAX {
        return Err(Reply::error(format!(
            "ERR value is out of range, a negative count repeats at most {REPEATS_MAX} members"
        )));
    }
    Ok(count)
}

/// SRANDMEMBER key [count].
fn srandmember(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let with_count = match arguments.get(1..) {
        Some([]) | None => None,
        Some([count]) => Some(pick_count(count)?),
        Some(_) => return Err(Reply::error(SYNTAX_ERROR)),
    };
    read(session, key, |keys| {
        let picked = keys.set_random(key, with_count.unwrap_or(1))?;
        Ok(match with_count {
            Some(_) => Reply::Array(picked.into_iter().map(Reply::Bulk).collect()),
            None => picked.into_iter().next().map_or(Reply::Null, Reply::Bulk),
        })
    })
}

/// The keys of a `numkeys key…` command (SINTERCARD, ZUNION…) and the words after them.
pub(super) fn numbered_keys<'a>(
    name: &str,
    arguments: &'a [Bytes],
) -> Result<(&'a [Bytes], &'a [Bytes]), Reply> {
    // SINTERCARD reads its count as one in range (a word is out of it); ZINTERCARD as the
    // ZUNION family does.
    let numkeys = match integer(&arguments[0]) {
        Ok(n) => n,
        Err(_) if name == "sintercard" => 0,
        Err(_) => return Err(Reply::error(NOT_AN_INTEGER)),
    };
    if numkeys <= 0 {
        return Err(Reply::error(match name {
            "sintercard" => "ERR numkeys should be greater than 0".to_string(),
            _ => format!("ERR at least 1 input key is needed for '{name}' command"),
        }));
    }
    let rest = &arguments[1..];
    if numkeys as u64 > rest.len() as u64 {
        return Err(Reply::error(match name {
            "sintercard" | "zintercard" => {
                "ERR Number of keys can't be greater than number of args"
            }
            _ => SYNTAX_ERROR,
        }));
    }
    Ok(rest.split_at(numkeys as usize))
}

/// The `LIMIT n` after SINTERCARD's / ZINTERCARD's keys (0: none; the last one counts).
pub(super) fn card_limit(options: &[Bytes]) -> Result<usize, Reply> {
    let mut found = 0;
    for option in options.chunks(2) {
        match option {
            [word, limit] if is(word, "limit") => match integer(limit) {
                Ok(n) if n >= 0 => found = n as usize,
                _ => return Err(Reply::error("ERR LIMIT can't be negative")),
            },
            _ => return Err(Reply::error(SYNTAX_ERROR)),
        }
    }
    Ok(found)
}

/// SINTERCARD numkeys key… [LIMIT limit].
fn sintercard(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (keys, options) = numbered_keys("sintercard", arguments)?;
    let limit = card_limit(options)?;
    check_all(session, keys)?;
    read(session, &keys[0], |keyspace| {
        let found = keyspace
            .set_combine(SetOperation::Intersection, keys)?
            .len();
        Ok(count(if limit > 0 { found.min(limit) } else { found }))
    })
}

/// The MATCH and COUNT of SSCAN, HSCAN and ZSCAN.
pub(super) fn scan_options(options: &[Bytes]) -> Result<(Option<Bytes>, usize), Reply> {
    let (pattern, count, _) = scan_options_of(options, false)?;
    Ok((pattern, count))
}

/// `[MATCH pattern] [COUNT count] [NOVALUES]`, read a word at a time as Redis reads them:
/// the pattern, the count and whether NOVALUES was given (HSCAN's, Redis 7.4; refused in
/// Redis's words elsewhere).
pub(super) fn scan_options_of(
    options: &[Bytes],
    novalues_allowed: bool,
) -> Result<(Option<Bytes>, usize, bool), Reply> {
    let (mut pattern, mut count, mut novalues) = (None, 10usize, false);
    let mut at = 0;
    while at < options.len() {
        let (word, value) = (&options[at], options.get(at + 1));
        match value {
            Some(value) if is(word, "match") => pattern = Some(value.clone()),
            Some(value) if is(word, "count") => match integer(value) {
                Ok(n) if n >= 1 => count = n.min(100_000) as usize,
                Ok(_) => return Err(Reply::error(SYNTAX_ERROR)),
                Err(_) => return Err(Reply::error(NOT_AN_INTEGER)),
            },
            _ if is(word, "novalues") => {
                if !novalues_allowed {
                    return Err(Reply::error(NOVALUES_REFUSED));
                }
                novalues = true;
                at += 1;
                continue;
            }
            _ => return Err(Reply::error(SYNTAX_ERROR)),
        }
        at += 2;
    }
    Ok((pattern, count, novalues))
}

/// The refusal of NOVALUES anywhere but HSCAN.
pub(super) const NOVALUES_REFUSED: &str = "ERR NOVALUES option can only be used in HSCAN";

/// A scan's cursor.
pub(super) fn cursor(word: &Bytes) -> Result<u64, Reply> {
    std::str::from_utf8(word)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| Reply::error("ERR invalid cursor"))
}

/// A `…SCAN key cursor` of a key that is missing (an empty scan, whatever the options say)
/// or of `kind` (`Ok(None)`: go on), as Redis looks the key up before reading its options.
pub(super) fn scan_missing(
    session: &Session,
    key: &[u8],
    kind: KeyKind,
) -> Result<Option<Reply>, Reply> {
    check_not_stream(session, key)?;
    match session.keys.kind(key) {
        None => Ok(Some(scan_reply(0, Vec::new()))),
        Some(found) if found == kind => Ok(None),
        Some(_) => Err(Reply::error(super::streams::WRONGTYPE)),
    }
}

pub(super) fn scan_reply(next: u64, found: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::text(&next.to_string()), Reply::Array(found)])
}

/// SSCAN key cursor [MATCH pattern] [COUNT count].
fn sscan(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let cursor = cursor(&arguments[1])?;
    if let Some(empty) = scan_missing(session, key, KeyKind::Set)? {
        return Ok(empty.into());
    }
    let (pattern, count) = scan_options(&arguments[2..])?;
    read(session, key, |keys| {
        let (next, found) = keys.set_scan(key, cursor, pattern.as_deref(), count)?;
        Ok(scan_reply(
            next,
            found.into_iter().map(Reply::Bulk).collect(),
        ))
    })
}
