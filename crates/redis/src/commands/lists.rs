//! List commands over the engine's keyspace (`keys/lists.rs`): LPUSH, RPUSH and their X
//! forms, LPOP and RPOP (with a count), LLEN, LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM,
//! LPOS, LMOVE, RPOPLPUSH, LMPOP, and the blocking BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and
//! BLMPOP. Every change is durable before its reply, as a string's is.
//!
//! A blocking command first looks, in order with the commands before it; if it must wait,
//! its client joins the engine's line for each key and the connection runs nothing else
//! until it is served or times out (its reply is a pending read, `session.rs`), as a blocked
//! Redis client does. Inside MULTI it does not wait: nothing there answers nil at once.

use std::time::Duration;

use bytes::Bytes;
use omnibus_engine::keys::{End, KeyKind, ListRequest, ListSet, Taken, Took};
use omnibus_engine::EngineError;

use super::arguments::{integer, is, SYNTAX_ERROR};
use super::streams::WRONGTYPE;
use super::strings::{map, step};
use crate::clients::Waiting;
use crate::codec::Reply;
use crate::session::{Session, Step};

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let result = match name {
        "lpush" | "rpush" | "lpushx" | "rpushx" => push(session, name, arguments),
        "lpop" | "rpop" => pop(session, name, arguments),
        "llen" => read(session, &arguments[0], |keys| {
            Ok(Reply::Integer(keys.list_len(&arguments[0])? as i64))
        }),
        "lrange" => {
            let (start, stop) = match (integer(&arguments[1]), integer(&arguments[2])) {
                (Ok(start), Ok(stop)) => (start, stop),
                (Err(reply), _) | (_, Err(reply)) => return reply.into(),
            };
            read(session, &arguments[0], |keys| {
                let items = keys.range(&arguments[0], start, stop)?;
                Ok(Reply::Array(items.into_iter().map(Reply::Bulk).collect()))
            })
        }
        "lindex" => {
            let index = match integer(&arguments[1]) {
                Ok(index) => index,
                Err(reply) => return reply.into(),
            };
            read(session, &arguments[0], |keys| {
                Ok(keys
                    .index(&arguments[0], index)?
                    .map_or(Reply::Null, Reply::Bulk))
            })
        }
        "lpos" => lpos(session, arguments),
        "lset" => lset(session, arguments),
        "linsert" => linsert(session, arguments),
        "lrem" => lrem(session, arguments),
        "ltrim" => ltrim(session, arguments),
        "lmove" | "rpoplpush" | "blmove" | "brpoplpush" => lmove(session, name, arguments),
        "lmpop" | "blmpop" => lmpop(session, name, arguments),
        "blpop" | "brpop" => blpop(session, name, arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    result.unwrap_or_else(Step::from)
}

/// A key the door serves as something else (an Omnibus stream) is of the wrong kind.
pub(super) fn check_not_stream(session: &Session, key: &[u8]) -> Result<(), Reply> {
    if super::streams::is_stream(session, key) && session.keys.kind(key).is_none() {
        return Err(Reply::error(WRONGTYPE));
    }
    Ok(())
}

/// The reply for an engine refusal.
fn refusal(error: EngineError) -> Reply {
    match error {
        EngineError::WrongKind => Reply::error(WRONGTYPE),
        EngineError::LimitExceeded(text) => {
            Reply::error(format!("OOM command not allowed: {text}"))
        }
        error => Reply::error(format!("ERR {error}")),
    }
}

/// A read of one key.
pub(super) fn read(
    session: &Session,
    key: &[u8],
    answer: impl FnOnce(&omnibus_engine::keys::Keyspace) -> omnibus_engine::Result<Reply>,
) -> Result<Step, Reply> {
    check_not_stream(session, key)?;
    Ok(answer(&session.keys).unwrap_or_else(refusal).into())
}

/// A change whose reply waits for its commit.
pub(super) fn change(
    outcome: omnibus_engine::Result<super::strings::Pending>,
) -> Result<Step, Reply> {
    match outcome {
        Err(error @ (EngineError::WrongKind | EngineError::LimitExceeded(_))) => {
            Err(refusal(error))
        }
        outcome => Ok(step(outcome)),
    }
}

fn end_of(word: &Bytes) -> Result<End, Reply> {
    if is(word, "left") {
        Ok(End::Left)
    } else if is(word, "right") {
        Ok(End::Right)
    } else {
        Err(Reply::error(SYNTAX_ERROR))
    }
}

fn push(session: &Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    check_not_stream(session, key)?;
    let end = if name.starts_with('l') {
        End::Left
    } else {
        End::Right
    };
    let values = arguments[1..].to_vec();
    change(
        session
            .keys
            .push(key, values, end, name.ends_with('x'))
            .map(|d| map(d, |length| Reply::Integer(length as i64))),
    )
}

fn pop(session: &Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let end = if name == "lpop" {
        End::Left
    } else {
        End::Right
    };
    if arguments.len() > 2 {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    let count = match arguments.get(1) {
        None => None,
        Some(count) => match integer(count) {
            Ok(count) if count >= 0 => Some(count as usize),
            _ => return Err(Reply::error("ERR value is out of range, must be positive")),
        },
    };
    check_not_stream(session, key)?;
    change(session.keys.pop(key, end, count.unwrap_or(1)).map(|d| {
        map(d, |items| match (items, count) {
            (None, None) => Reply::Null,
            (None, Some(_)) => Reply::NullArray,
            (Some(mut items), None) => items.pop().map_or(Reply::Null, Reply::Bulk),
            (Some(items), Some(_)) => Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
        })
    }))
}

fn lpos(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (key, element) = (&arguments[0], &arguments[1]);
    let (mut rank, mut count, mut max_length) = (1i64, None, 0usize);
    let mut options = arguments[2..].chunks(2);
    for option in options.by_ref() {
        let [word, value] = option else {
            return Err(Reply::error(SYNTAX_ERROR));
        };
        let number = integer(value)?;
        if is(word, "rank") {
            // Redis 7.2+ refuses the one rank it cannot negate.
            if number == i64::MIN {
                return Err(Reply::error(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
            if number == 0 {
                return Err(Reply::error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
            rank = number;
        } else if is(word, "count") {
            if number < 0 {
                return Err(Reply::error("ERR COUNT can't be negative"));
            }
            count = Some(number as usize);
        } else if is(word, "maxlen") {
            if number < 0 {
                return Err(Reply::error("ERR MAXLEN can't be negative"));
            }
            max_length = number as usize;
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
    }
    read(session, key, |keys| {
        let found = keys.positions(key, element, rank, count.unwrap_or(1), max_length)?;
        Ok(match count {
            Some(_) => Reply::Array(
                found
                    .into_iter()
                    .map(|i| Reply::Integer(i as i64))
                    .collect(),
            ),
            None => found
                .first()
                .map_or(Reply::Null, |i| Reply::Integer(*i as i64)),
        })
    })
}

fn lset(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    // Redis looks the key up before it reads the index.
    check_not_stream(session, &arguments[0])?;
    match session.keys.kind(&arguments[0]) {
        None => return Err(Reply::error("ERR no such key")),
        Some(KeyKind::List) => {}
        Some(_) => return Err(Reply::error(WRONGTYPE)),
    }
    let index = integer(&arguments[1])?;
    change(
        session
            .keys
            .set_at(&arguments[0], index, arguments[2].clone())
            .map(|d| {
                map(d, |outcome| match outcome {
                    ListSet::Done => Reply::ok(),
                    ListSet::NoSuchKey => Reply::error("ERR no such key"),
                    ListSet::OutOfRange => Reply::error("ERR index out of range"),
                })
            }),
    )
}

fn linsert(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let after = if is(&arguments[1], "after") {
        true
    } else if is(&arguments[1], "before") {
        false
    } else {
        return Err(Reply::error(SYNTAX_ERROR));
    };
    check_not_stream(session, &arguments[0])?;
    change(
        session
            .keys
            .insert(&arguments[0], after, &arguments[2], arguments[3].clone())
            .map(|d| map(d, Reply::Integer)),
    )
}

fn lrem(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let count = integer(&arguments[1])?;
    check_not_stream(session, &arguments[0])?;
    change(
        session
            .keys
            .remove_matching(&arguments[0], count, &arguments[2])
            .map(|d| map(d, |removed| Reply::Integer(removed as i64))),
    )
}

fn ltrim(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let start = integer(&arguments[1])?;
    let stop = integer(&arguments[2])?;
    check_not_stream(session, &arguments[0])?;
    change(
        session
            .keys
            .trim(&arguments[0], start, stop)
            .map(|d| map(d, |()| Reply::ok())),
    )
}

/// LMOVE, RPOPLPUSH and their blocking forms.
fn lmove(session: &mut Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (source, destination) = (&arguments[0], &arguments[1]);
    let (from, to) = match name {
        "rpoplpush" | "brpoplpush" => (End::Right, End::Left),
        _ => (end_of(&arguments[2])?, end_of(&arguments[3])?),
    };
    let timeout = match name {
        "blmove" => Some(seconds(&arguments[4])?),
        "brpoplpush" => Some(seconds(&arguments[2])?),
        _ => None,
    };
    check_not_stream(session, source)?;
    check_not_stream(session, destination)?;
    let Some(timeout) = timeout.filter(|_| !session.in_exec) else {
        return change(
            session
                .keys
                .move_item(source, destination, from, to)
                .map(|d| map(d, |moved| moved.map_or(Reply::Null, Reply::Bulk))),
        );
    };
    let request = ListRequest::Move {
        destination: destination.clone(),
        from,
        to,
    };
    blocking(
        session,
        vec![source.clone()],
        request,
        timeout,
        |mut took| Reply::Bulk(took.items.remove(0)),
    )
}

/// BLPOP and BRPOP: `key … timeout`.
fn blpop(session: &mut Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (timeout, keys) = arguments.split_last().expect("arity checked");
    let timeout = seconds(timeout)?;
    let end = if name == "blpop" {
        End::Left
    } else {
        End::Right
    };
    for key in keys {
        check_not_stream(session, key)?;
    }
    let request = ListRequest::Pop { end, count: 1 };
    blocking(session, keys.to_vec(), request, timeout, |mut took| {
        Reply::Array(vec![
            Reply::Bulk(took.key),
            Reply::Bulk(took.items.remove(0)),
        ])
    })
}

/// LMPOP `numkeys key … LEFT|RIGHT [COUNT count]`, BLMPOP `timeout` before it.
fn lmpop(session: &mut Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (timeout, arguments) = if name == "blmpop" {
        (Some(seconds(&arguments[0])?), &arguments[1..])
    } else {
        (None, arguments)
    };
    let (keys, end, count) = mpop_parts(arguments)?;
    let end = end_of(end)?;
    for key in keys {
        check_not_stream(session, key)?;
    }
    let answer = |key: Bytes, items: Vec<Bytes>| {
        Reply::Array(vec![
            Reply::Bulk(key),
            Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
        ])
    };
    let request = ListRequest::Pop { end, count };
    match timeout.filter(|_| !session.in_exec) {
        Some(timeout) => blocking(session, keys.to_vec(), request, timeout, move |took| {
            answer(took.key, took.items)
        }),
        None => change(session.keys.pop_first(keys, end, count).map(|d| {
            map(d, |taken| {
                taken.map_or(Reply::NullArray, |(k, i)| answer(k, i))
            })
        })),
    }
}

/// LMPOP's and ZMPOP's `numkeys key … WHERE [COUNT count]`: the keys, the WHERE word and
/// the count (1 without COUNT), with Redis's refusals.
pub(super) fn mpop_parts(arguments: &[Bytes]) -> Result<(&[Bytes], &Bytes, usize), Reply> {
    let numkeys = integer(&arguments[0])
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Reply::error("ERR numkeys should be greater than 0"))?
        as usize;
    let rest = &arguments[1..];
    if rest.len() <= numkeys {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    let (keys, options) = rest.split_at(numkeys);
    let count = match &options[1..] {
        [] => 1,
        [word, value] if is(word, "count") => integer(value)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Reply::error("ERR count should be greater than 0"))?
            as usize,
        _ => return Err(Reply::error(SYNTAX_ERROR)),
    };
    Ok((keys, &options[0], count))
}

/// Takes at once, or waits in line (not inside MULTI: then nil at once, as Redis answers).
/// Lists' blocking commands and the sorted sets' (`zsets.rs`) share it.
pub(super) fn blocking(
    session: &mut Session,
    keys: Vec<Bytes>,
    request: ListRequest,
    timeout: Option<Duration>,
    answer: impl FnOnce(Took) -> Reply + Send + 'static,
) -> Result<Step, Reply> {
    let in_transaction = session.in_exec;
    let is_move = matches!(request, ListRequest::Move { .. });
    let taken = session.keys.take_or_block(keys, request).map_err(refusal)?;
    let blocked = match taken {
        Taken::Now(durable) => {
            let (taken, commit) = durable.split();
            let reply = match taken {
                Some(took) => answer(took),
                None => Reply::NullArray,
            };
            return Ok(Step {
                reply,
                commits: vec![commit],
                close: false,
                later: None,
            });
        }
        Taken::Blocked(blocked) => blocked,
    };
    if in_transaction {
        drop(blocked);
        return Ok(if is_move {
            Reply::Null
        } else {
            Reply::NullArray
        }
        .into());
    }
    let mut waiting = Waiting::new(session);
    Ok(Step::later(async move {
        waiting.blocked();
        match blocked.wait_or(timeout, waiting.unblocked()).await {
            Ok(Some(took)) => answer(took),
            // A timeout (or CLIENT UNBLOCK) answers a nil array for every blocking list
            // command.
            Ok(None) => waiting.reply(Reply::NullArray),
            Err(error) => refusal(error),
        }
    }))
}

/// A blocking command's timeout in seconds (decimals allowed; 0: for ever), as Redis 7.2+
/// reads it: as C's `strtold` does (so `0x10` is 16 s and `inf` a number), refusing what
/// overflows its millisecond clock as out of range.
pub(super) fn seconds(value: &[u8]) -> Result<Option<Duration>, Reply> {
    let seconds = std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<f64>().ok().or_else(|| hex_float(text)))
        .filter(|seconds| !seconds.is_nan())
        .ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    let millis = seconds * 1000.0;
    // What redis-server's clock (milliseconds since 1970, in 63 bits) cannot reach.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_millis() as f64);
    if millis > i64::MAX as f64 - now {
        return Err(Reply::error("ERR timeout is out of range"));
    }
    // Redis rounds the milliseconds up: -0.0001 s is 0, for ever.
    if millis.ceil() < 0.0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
}

/// A hexadecimal number as `strtold` reads one: `[sign]0x` digits, an optional fraction
/// and an optional binary exponent (`p`).
fn hex_float(text: &str) -> Option<f64> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exponent) = match rest.find(['p', 'P']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for digit in whole.chars() {
        value = value * 16.0 + f64::from(digit.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for digit in fraction.chars() {
        value += f64::from(digit.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let value = value * 2f64.powi(exponent);
    Some(if negative { -value } else { value })
}

/// Whether `key` holds a list or a hash: a keyspace key that is not a string.
pub(super) fn is_collection(session: &Session, key: &[u8]) -> bool {
    session
        .keys
        .kind(key)
        .is_some_and(|kind| kind != KeyKind::String)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::seconds;
    use crate::codec::Reply;

    fn refusal(text: &str) -> Reply {
        seconds(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn timeouts_read_as_redis_reads_them() {
        assert_eq!(seconds(b"0x10").unwrap(), Some(Duration::from_secs(16)));
        assert_eq!(seconds(b"0.5").unwrap(), Some(Duration::from_millis(500)));
        assert_eq!(seconds(b"0").unwrap(), None);
        assert_eq!(seconds(b"-0.0001").unwrap(), None);
        let out_of_range = Reply::error("ERR timeout is out of range");
        for text in ["0x7FFFFFFFFFFFFF", "inf", "1e400", "9223372036854775"] {
            assert_eq!(refusal(text), out_of_range, "{text}");
        }
        assert_eq!(refusal("-1"), Reply::error("ERR timeout is negative"));
        assert_eq!(refusal("-inf"), Reply::error("ERR timeout is negative"));
        let not_a_float = Reply::error("ERR timeout is not a float or out of range");
        for text in ["soon", "0x", "nan", "1 "] {
            assert_eq!(refusal(text), not_a_float, "{text}");
        }
    }
}
