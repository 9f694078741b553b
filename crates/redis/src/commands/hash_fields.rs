//! Hash field expiry, Redis 7.4's commands over the engine's field deadlines
//! (`keys/field_expiry.rs`): HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT (set a deadline on
//! fields), HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME (read them) and HPERSIST (clear them).
//! Each answers one integer per field named, with redis-server 7.4's codes, and checks its
//! arguments in redis-server's order with its words: the key's type first, then the time,
//! then `FIELDS numfields`.

use bytes::Bytes;
use omnibus_engine::keys::{ExpireCondition, FieldDeadline, FieldExpire, FieldPersist, KeyKind};

use super::arguments::{integer, is};
use super::lists::{change, check_not_stream};
use super::streams::WRONGTYPE;
use super::strings::map;
use crate::codec::Reply;
use crate::session::{Session, Step};

/// The latest deadline a field may have, in Unix ms (redis-server's `HFE_MAX_ABS_TIME_MSEC`,
/// a quarter of its 48-bit expiry clock).
const DEADLINE_MAX_MS: i64 = 0xFFFF_FFFF_FFFF >> 2;

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let key = &arguments[0];
    let result = check_not_stream(session, key).and_then(|()| match name {
        "hexpire" | "hpexpire" | "hexpireat" | "hpexpireat" => expire(session, name, arguments),
        "hpersist" => persist(session, arguments),
        _ => read_deadlines(session, name, arguments),
    });
    // redis-server looks the key up before it reads the arguments, so a key of another type
    // is refused as such whatever the arguments say. Looked at only when something was
    // refused: the engine refuses the type itself when the arguments are right.
    result.unwrap_or_else(|refusal| match session.keys.kind(key) {
        None | Some(KeyKind::Hash) => refusal.into(),
        Some(_) => Reply::error(WRONGTYPE).into(),
    })
}

/// `FIELDS numfields field …` from `words` on: the fields, checked as redis-server checks
/// them (`numfields` a positive integer, in `bad_count`'s words otherwise, and exactly the
/// number of fields that follow).
fn fields<'a>(words: &'a [Bytes], bad_count: &str) -> Result<&'a [Bytes], Reply> {
    if !words.first().is_some_and(|word| is(word, "fields")) {
        return Err(Reply::error(
            "ERR Mandatory argument FIELDS is missing or not at the right position",
        ));
    }
    let count = words
        .get(1)
        .and_then(|count| integer(count).ok())
        .filter(|count| *count >= 1)
        .ok_or_else(|| Reply::error(format!("ERR {bad_count}")))?;
    let fields = &words[2..];
    if count as usize != fields.len() {
        return Err(Reply::error(
            "ERR The `numfields` parameter must match the number of arguments",
        ));
    }
    Ok(fields)
}

/// HEXPIRE key seconds [NX|XX|GT|LT] FIELDS numfields field … (and HPEXPIRE in ms, and
/// the AT forms with a Unix time).
fn expire(session: &Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let mut time = integer(&arguments[1])?;
    if time < 0 {
        return Err(Reply::error("ERR invalid expire time, must be >= 0"));
    }
    let out_of_range = || Reply::error(format!("ERR invalid expire time in '{name}' command"));
    if matches!(name, "hexpire" | "hexpireat") {
        if time > DEADLINE_MAX_MS / 1000 {
            return Err(out_of_range());
        }
        time *= 1000;
    }
    let base = if name.ends_with("at") {
        0
    } else {
        super::strings::now_ms()
    };
    if time > DEADLINE_MAX_MS - base {
        return Err(out_of_range());
    }
    let deadline = time + base;
    let condition = match String::from_utf8_lossy(&arguments[2])
        .to_ascii_lowercase()
        .as_str()
    {
        "nx" => Some(ExpireCondition::IfNone),
        "xx" => Some(ExpireCondition::IfSome),
        "gt" => Some(ExpireCondition::IfLater),
        "lt" => Some(ExpireCondition::IfEarlier),
        _ => None,
    };
    let words = &arguments[2 + usize::from(condition.is_some())..];
    let fields = fields(words, "Parameter `numFields` should be greater than 0")?;
    let condition = condition.unwrap_or_default();
    let outcome = session.keys.hash_expire(key, fields, deadline, condition);
    let shared = session.shared.clone();
    change(outcome.map(|d| {
        map(d, move |outcomes| {
            // A field deleted because its deadline had passed counts as expired, as in Redis.
            let deleted = outcomes
                .iter()
                .filter(|o| **o == FieldExpire::Deleted)
                .count();
            shared
                .expired_subkeys
                .fetch_add(deleted as u64, std::sync::atomic::Ordering::Relaxed);
            codes(outcomes.into_iter().map(|outcome| match outcome {
                FieldExpire::Missing => -2,
                FieldExpire::NotMet => 0,
                FieldExpire::Set => 1,
                FieldExpire::Deleted => 2,
            }))
        })
    }))
}

/// HPERSIST key FIELDS numfields field …
fn persist(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let fields = fields(
        &arguments[1..],
        "Number of fields must be a positive integer",
    )?;
    let outcome = session.keys.hash_persist(&arguments[0], fields);
    change(outcome.map(|d| {
        map(d, |outcomes| {
            codes(outcomes.into_iter().map(|outcome| match outcome {
                FieldPersist::Missing => -2,
                FieldPersist::NoDeadline => -1,
                FieldPersist::Persisted => 1,
            }))
        })
    }))
}

/// HTTL, HPTTL (time left, in seconds rounded up or in ms), HEXPIRETIME, HPEXPIRETIME (the
/// deadline as a Unix time) key FIELDS numfields field …: -2 for a field missing, -1 for one
/// without a deadline.
fn read_deadlines(session: &Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let fields = fields(
        &arguments[1..],
        "Number of fields must be a positive integer",
    )?;
    let deadlines = session
        .keys
        .hash_field_deadlines(&arguments[0], fields)
        .map_err(|_| Reply::error(WRONGTYPE))?;
    let now = super::strings::now_ms();
    let base = if name.ends_with("ttl") { now } else { 0 };
    let seconds = matches!(name, "httl" | "hexpiretime");
    Ok(codes(deadlines.into_iter().map(|deadline| match deadline {
        FieldDeadline::Missing => -2,
        FieldDeadline::Forever => -1,
        FieldDeadline::At(at) if seconds => (at + 999 - base) / 1000,
        FieldDeadline::At(at) => at - base,
    }))
    .into())
}

fn codes(codes: impl Iterator<Item = i64>) -> Reply {
    Reply::Array(codes.map(Reply::Integer).collect())
}
