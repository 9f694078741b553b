//! DUMP and RESTORE: a key's value as Redis's serialized payload (`codec/rdb/`), and a
//! payload put back under a key. RESTORE reads what redis-server 7.0–7.2 DUMPs (and what
//! its MIGRATE sends: `MIGRATE <omnibus host> <port> key 0 5000` on a redis-server copies a
//! key here), so data moves from Redis to Omnibus key by key; DUMP writes a payload
//! redis-server 7.0 and later RESTOREs. A restored key is as durable as any write (fsynced
//! before `+OK`). Stream keys, whose entries live in the engine's log and not in the
//! keyspace, go through `stream_dump.rs`; a payload of another kind is not restored over a
//! stream key.

use bytes::Bytes;

use super::arguments::{integer, is, SYNTAX_ERROR};
use super::lists::change;
use super::strings::{map, now_ms};
use crate::codec::rdb::{self, PayloadError};
use crate::codec::Reply;
use crate::session::{Session, Step};

use crate::streams::writer::BUSY_KEY;

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let result = match name {
        "dump" => dump(session, &arguments[0]),
        _ => restore(session, arguments),
    };
    result.unwrap_or_else(Step::from)
}

fn dump(session: &Session, key: &Bytes) -> Result<Step, Reply> {
    if super::streams::is_stream(session, key) && session.keys.kind(key).is_none() {
        let name = super::streams::valid_stream_name(key)?;
        return Ok(super::stream_dump::dump(session, name));
    }
    Ok(match session.keys.whole(key) {
        None => Reply::Null,
        Some((value, _)) => Reply::Bulk(Bytes::from(rdb::encode(&value))),
    }
    .into())
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency].
fn restore(session: &mut Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let (mut replace, mut absolute) = (false, false);
    let (mut idle, mut frequency) = (false, false);
    let mut at = 3;
    while at < arguments.len() {
        let word = &arguments[at];
        let more = at + 1 < arguments.len();
        match () {
            _ if is(word, "replace") => replace = true,
            _ if is(word, "absttl") => absolute = true,
            // Access times and frequencies are not kept: checked, then let go.
            _ if is(word, "idletime") && more && !frequency => {
                if integer(&arguments[at + 1])? < 0 {
                    return Err(Reply::error("ERR Invalid IDLETIME value, must be >= 0"));
                }
                idle = true;
                at += 1;
            }
            _ if is(word, "freq") && more && !idle => {
                if !(0..=255).contains(&integer(&arguments[at + 1])?) {
                    return Err(Reply::error(
                        "ERR Invalid FREQ value, must be >= 0 and <= 255",
                    ));
                }
                frequency = true;
                at += 1;
            }
            _ => return Err(Reply::error(SYNTAX_ERROR)),
        }
        at += 1;
    }
    let stream = super::streams::is_stream(session, key) && session.keys.kind(key).is_none();
    if !replace && (stream || session.keys.kind(key).is_some()) {
        return Err(Reply::error(BUSY_KEY));
    }
    let ttl = integer(&arguments[1])?;
    if ttl < 0 {
        return Err(Reply::error("ERR Invalid TTL value, must be >= 0"));
    }
    let refused = |error| match error {
        PayloadError::VersionOrChecksum => {
            Reply::error("ERR DUMP payload version or checksum are wrong")
        }
        PayloadError::BadFormat => Reply::error("ERR Bad data format"),
        PayloadError::TooLarge => Reply::error(format!(
            "ERR DUMP payload would take more than {} bytes once read",
            rdb::DECODED_BYTES_MAX
        )),
    };
    let deadline = match (ttl, absolute) {
        (0, _) => None,
        (at, true) => Some(at),
        (ms, false) => Some(now_ms().saturating_add(ms)),
    };
    if rdb::is_stream(&arguments[2]) {
        let value = rdb::decode_stream(&arguments[2]).map_err(refused)?;
        let name = super::streams::valid_stream_name(key)?;
        return Ok(super::stream_dump::restore(
            session, name, value, replace, deadline,
        ));
    }
    let value = rdb::decode(&arguments[2]).map_err(refused)?;
    if stream {
        return Err(Reply::error(
            "ERR RESTORE over a stream key is not served by Omnibus; DEL it first",
        ));
    }
    let put = session.keys.put_whole(key, value, deadline, replace);
    match put {
        // Another client made the key meanwhile.
        Ok(None) => Err(Reply::error(BUSY_KEY)),
        Ok(Some(durable)) => change(Ok(map(durable, |()| Reply::ok()))),
        Err(error) => change(Err(error)),
    }
}
