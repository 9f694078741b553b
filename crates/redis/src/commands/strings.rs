//! String commands over the engine's keyspace: SET and its variants, GET, MGET, MSET,
//! GETDEL, INCR/DECR, APPEND, STRLEN.

use bytes::Bytes;
use omnibus_engine::keys::{Durable, Increment, SetCondition, SetExpiry, SetOptions};

use super::arguments::{integer, is, NOT_AN_INTEGER, SYNTAX_ERROR};
use crate::codec::Reply;
use crate::session::{Session, Step};

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    // A key that names a stream holds another type: Redis's WRONGTYPE (MGET answers nil
    // for it instead, and SET does not replace a whole Omnibus stream).
    let single_key = !matches!(name, "mget" | "mset");
    if single_key && super::streams::is_stream(session, &arguments[0]) {
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

fn reply_value(value: Option<Bytes>) -> Reply {
    value.map_or(Reply::Null, Reply::Bulk)
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
