//! String commands over the engine's keyspace: SET and its variants (SETNX, SETEX, PSETEX,
//! GETSET), GET, GETEX, GETDEL, GETRANGE, MGET, MSET, MSETNX, INCR/DECR, APPEND, STRLEN.

use bytes::Bytes;
use omnibus_engine::keys::{
    parse_float, Durable, FloatIncrement, Increment, SetCondition, SetExpiry, SetOptions,
};

use super::arguments::{integer, is, NOT_AN_INTEGER, SYNTAX_ERROR};
use crate::codec::Reply;
use crate::session::{Session, Step};

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    // A key that names a stream holds another type: Redis's WRONGTYPE (MGET answers nil
    // for it instead, and SET does not replace a whole Omnibus stream).
    let single_key = !matches!(name, "mget" | "mset" | "msetnx");
    if single_key && super::streams::is_stream(session, &arguments[0]) {
        // "Only if absent" finds the key present and sets nothing, as Redis answers for a key
        // of any type (SET … NX GET reads the old value first, so that one is WRONGTYPE).
        let options = arguments.get(2..).unwrap_or_default();
        let has = |word: &str| options.iter().any(|option| is(option, word));
        if name == "setnx" {
            return Reply::Integer(0).into();
        }
        if name == "set" && has("nx") && !has("get") {
            return Reply::Null.into();
        }
        return Reply::error(super::streams::WRONGTYPE).into();
    }
    // A list or hash key: SET and its forms replace it (or find it present, for NX), as
    // Redis does; every other single-key string command is refused.
    let replaces = match name {
        "setnx" | "setex" | "psetex" => true,
        "set" => !arguments[2..].iter().any(|option| is(option, "get")),
        _ => false,
    };
    if single_key && !replaces && super::lists::is_collection(session, &arguments[0]) {
        return Reply::error(super::streams::WRONGTYPE).into();
    }
    let keys = session.keys.clone();
    let outcome = match name {
        "get" => return reply_value(keys.get(&arguments[0])).into(),
        "mget" => {
            let values = keys.get_many(arguments);
            return Reply::Array(values.into_iter().map(reply_value).collect()).into();
        }
        "strlen" => {
            let length = keys.get(&arguments[0]).map_or(0, |v| v.len());
            return Reply::Integer(length as i64).into();
        }
        "set" => return set(session, arguments),
        "getset" => {
            let options = SetOptions {
                condition: SetCondition::Always,
                expiry: SetExpiry::Clear,
            };
            keys.set(arguments[0].clone(), arguments[1].clone(), options)
                .map(|d| map(d, |outcome| reply_value(outcome.old)))
        }
        "getrange" => {
            let (start, end) = match (integer(&arguments[1]), integer(&arguments[2])) {
                (Ok(start), Ok(end)) => (start, end),
                (Err(reply), _) | (_, Err(reply)) => return reply.into(),
            };
            let value = keys.get(&arguments[0]).unwrap_or_default();
            return Reply::Bulk(byte_range(&value, start, end)).into();
        }
        "getex" => {
            let change = match getex_change(&arguments[1..]) {
                Ok(change) => change,
                Err(reply) => return reply.into(),
            };
            keys.get_and_expire(&arguments[0], change)
                .map(|d| map(d, reply_value))
        }
        "msetnx" => {
            if !arguments.len().is_multiple_of(2) {
                return Reply::error("ERR wrong number of arguments for 'msetnx' command").into();
            }
            // A stream key exists too: MSETNX then sets nothing.
            if arguments
                .chunks(2)
                .any(|pair| super::streams::is_stream(session, &pair[0]))
            {
                return Reply::Integer(0).into();
            }
            let pairs = arguments
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            keys.set_many_if_absent(pairs)
                .map(|d| map(d, |written| Reply::Integer(i64::from(written))))
        }
        "setnx" => {
            let options = SetOptions {
                condition: SetCondition::IfAbsent,
                expiry: SetExpiry::Clear,
            };
            keys.set(arguments[0].clone(), arguments[1].clone(), options)
                .map(|d| map(d, |outcome| Reply::Integer(i64::from(outcome.written))))
        }
        "setex" | "psetex" => {
            let unit = if name == "setex" { 1000 } else { 1 };
            let deadline = match relative_deadline(&arguments[1], unit, name) {
                Ok(deadline) => deadline,
                Err(reply) => return reply.into(),
            };
            let options = SetOptions {
                condition: SetCondition::Always,
                expiry: SetExpiry::At(deadline),
            };
            keys.set(arguments[0].clone(), arguments[2].clone(), options)
                .map(|d| map(d, |_| Reply::ok()))
        }
        "mset" => {
            if !arguments.len().is_multiple_of(2) {
                return Reply::error("ERR wrong number of arguments for 'mset' command").into();
            }
            // As SET: a whole durable stream is not replaced by a string (all or nothing).
            if arguments
                .chunks(2)
                .any(|pair| super::streams::is_stream(session, &pair[0]))
            {
                return Reply::error(super::streams::WRONGTYPE).into();
            }
            let pairs = arguments
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            keys.set_many(pairs).map(|d| map(d, |()| Reply::ok()))
        }
        "getdel" => keys.take(&arguments[0]).map(|d| map(d, reply_value)),
        "incr" | "decr" | "incrby" | "decrby" => {
            let delta = match name {
                "incr" | "decr" => 1,
                _ => match integer(&arguments[1]) {
                    Ok(delta) => delta,
                    Err(reply) => return reply.into(),
                },
            };
            let delta = if name.starts_with("decr") {
                match delta.checked_neg() {
                    Some(delta) => delta,
                    None => return Reply::error("ERR decrement would overflow").into(),
                }
            } else {
                delta
            };
            keys.increment(&arguments[0], delta)
                .map(|d| map(d, increment_reply))
        }
        "incrbyfloat" => match parse_float(&arguments[1]) {
            None => return Reply::error("ERR value is not a valid float").into(),
            Some(delta) => keys.increment_float(&arguments[0], delta).map(|d| {
                map(d, |outcome| {
                    float_reply(outcome, "ERR value is not a valid float")
                })
            }),
        },
        "append" => keys
            .append(&arguments[0], &arguments[1])
            .map(|d| map(d, |length| Reply::Integer(length as i64))),
        _ => return Reply::error(format!("ERR unknown command '{name}'")).into(),
    };
    step(outcome)
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
fn set(session: &mut Session, arguments: &[Bytes]) -> Step {
    let mut condition = SetCondition::Always;
    let mut expiry = SetExpiry::Clear;
    let mut expiry_given = false;
    let mut get = false;
    let mut options = arguments[2..].iter();
    while let Some(option) = options.next() {
        let mut timed = |unit: i64, absolute: bool| -> Result<(), Reply> {
            if expiry_given {
                return Err(Reply::error(SYNTAX_ERROR));
            }
            let value = options.next().ok_or_else(|| Reply::error(SYNTAX_ERROR))?;
            let at = if absolute {
                let number = integer(value)?;
                if number <= 0 {
                    return Err(invalid_expire("set"));
                }
                number
                    .checked_mul(unit)
                    .ok_or_else(|| invalid_expire("set"))?
            } else {
                relative_deadline(value, unit, "set")?
            };
            expiry = SetExpiry::At(at);
            expiry_given = true;
            Ok(())
        };
        let parsed = if is(option, "nx") && condition == SetCondition::Always {
            condition = SetCondition::IfAbsent;
            Ok(())
        } else if is(option, "xx") && condition == SetCondition::Always {
            condition = SetCondition::IfPresent;
            Ok(())
        } else if is(option, "get") && !get {
            get = true;
            Ok(())
        } else if is(option, "ex") {
            timed(1000, false)
        } else if is(option, "px") {
            timed(1, false)
        } else if is(option, "exat") {
            timed(1000, true)
        } else if is(option, "pxat") {
            timed(1, true)
        } else if is(option, "keepttl") && !expiry_given {
            expiry = SetExpiry::Keep;
            expiry_given = true;
            Ok(())
        } else {
            Err(Reply::error(SYNTAX_ERROR))
        };
        if let Err(reply) = parsed {
            return reply.into();
        }
    }
    let options = SetOptions { condition, expiry };
    let outcome = session
        .keys
        .set(arguments[0].clone(), arguments[1].clone(), options)
        .map(|durable| {
            map(durable, |outcome| match (get, outcome.written) {
                (true, _) => reply_value(outcome.old),
                (false, true) => Reply::ok(),
                (false, false) => Reply::Null,
            })
        });
    step(outcome)
}

/// GETEX's options: none (a GET), PERSIST, or one of EX / PX / EXAT / PXAT.
fn getex_change(options: &[Bytes]) -> Result<Option<Option<i64>>, Reply> {
    match options {
        [] => Ok(None),
        [option] if is(option, "persist") => Ok(Some(None)),
        [option, value] => {
            let at = if is(option, "ex") {
                relative_deadline(value, 1000, "getex")?
            } else if is(option, "px") {
                relative_deadline(value, 1, "getex")?
            } else if is(option, "exat") || is(option, "pxat") {
                let unit = if is(option, "exat") { 1000 } else { 1 };
                let number = integer(value)?;
                if number <= 0 {
                    return Err(invalid_expire("getex"));
                }
                number
                    .checked_mul(unit)
                    .ok_or_else(|| invalid_expire("getex"))?
            } else {
                return Err(Reply::error(SYNTAX_ERROR));
            };
            Ok(Some(Some(at)))
        }
        _ => Err(Reply::error(SYNTAX_ERROR)),
    }
}

/// GETRANGE's bytes `start..=end` of `value`, negative indexes counting from the end, as
/// Redis clamps them (an empty answer when the range is empty or starts past the end).
fn byte_range(value: &Bytes, start: i64, end: i64) -> Bytes {
    let length = value.len() as i64;
    if length == 0 || (start < 0 && end < 0 && start > end) {
        return Bytes::new();
    }
    let start = if start < 0 {
        (length + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { (length + end).max(0) } else { end }.min(length - 1);
    if start > end || start >= length {
        return Bytes::new();
    }
    value.slice(start as usize..=end as usize)
}

/// Now plus `value` × `unit` milliseconds; Redis refuses zero, negatives and overflow.
pub(super) fn relative_deadline(value: &[u8], unit: i64, command: &str) -> Result<i64, Reply> {
    let amount = integer(value)?;
    if amount <= 0 {
        return Err(invalid_expire(command));
    }
    amount
        .checked_mul(unit)
        .and_then(|ms| ms.checked_add(now_ms()))
        .ok_or_else(|| invalid_expire(command))
}

fn invalid_expire(command: &str) -> Reply {
    Reply::error(format!("ERR invalid expire time in '{command}' command"))
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A key holding a list, hash, set, sorted set or stream: WRONGTYPE, as every command that
/// reads or changes a string's bytes answers (bit commands, HyperLogLog, BITFIELD).
pub(super) fn check_string(session: &Session, key: &[u8]) -> Result<(), Reply> {
    if super::streams::is_stream(session, key) || super::lists::is_collection(session, key) {
        return Err(Reply::error(super::streams::WRONGTYPE));
    }
    Ok(())
}

fn reply_value(value: Option<Bytes>) -> Reply {
    value.map_or(Reply::Null, Reply::Bulk)
}

/// INCRBYFLOAT's and HINCRBYFLOAT's reply; `not_a_float` is what each says of a value that
/// is not a number.
pub(super) fn float_reply(outcome: FloatIncrement, not_a_float: &str) -> Reply {
    match outcome {
        FloatIncrement::Value(text) => Reply::Bulk(text),
        FloatIncrement::NotAFloat => Reply::error(not_a_float),
        FloatIncrement::NotFinite => Reply::error("ERR increment would produce NaN or Infinity"),
    }
}

fn increment_reply(outcome: Increment) -> Reply {
    match outcome {
        Increment::Value(value) => Reply::Integer(value),
        Increment::NotAnInteger => Reply::error(NOT_AN_INTEGER),
        Increment::Overflow => Reply::error("ERR increment or decrement would overflow"),
    }
}

/// A reply made from a change's outcome, with the wait for the change.
pub(super) struct Pending(Reply, omnibus_engine::keys::Commit);

pub(super) fn map<T>(durable: Durable<T>, reply: impl FnOnce(T) -> Reply) -> Pending {
    let (value, commit) = durable.split();
    Pending(reply(value), commit)
}

/// The step of a change: its reply once durable, or the engine's refusal (a full keyspace).
pub(super) fn step(outcome: omnibus_engine::Result<Pending>) -> Step {
    match outcome {
        Ok(Pending(reply, commit)) => Step {
            reply,
            commits: vec![commit],
            close: false,
            later: None,
        },
        Err(omnibus_engine::EngineError::LimitExceeded(text)) => {
            Reply::error(format!("OOM command not allowed: {text}")).into()
        }
        Err(error) => Reply::error(format!("ERR {error}")).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::byte_range;
    use bytes::Bytes;

    #[test]
    fn getrange_clamps_and_counts_from_the_end_as_redis_does() {
        let value = Bytes::from_static(b"This is a string");
        let range = |start, end| byte_range(&value, start, end);
        assert_eq!(range(0, 3), "This");
        assert_eq!(range(-3, -1), "ing");
        assert_eq!(range(0, -1), "This is a string");
        assert_eq!(range(10, 100), "string");
        assert_eq!(range(5, 3), "");
        assert_eq!(range(-1, -5), "");
        assert_eq!(range(100, 200), "");
        assert_eq!(range(-100, 2), "Thi");
        assert_eq!(byte_range(&Bytes::new(), 0, -1), "");
    }
}
