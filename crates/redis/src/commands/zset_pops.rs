//! The sorted-set pops over several keys: ZMPOP, and the blocking BZMPOP, BZPOPMIN and
//! BZPOPMAX, which wait in the keyspace's lines as BLPOP does (`lists::blocking`): a ZADD to
//! one of the keys serves the longest-waiting client under the same lock, so nobody else
//! takes the member first.

use bytes::Bytes;
use omnibus_engine::keys::{ListRequest, Took};

use super::arguments::{is, SYNTAX_ERROR};
use super::lists::{blocking, change, check_not_stream, mpop_parts, seconds};
use super::strings::map;
use crate::codec::Reply;
use crate::session::{Session, Step};

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let result = match name {
        "bzpopmin" | "bzpopmax" => bzpop(session, name == "bzpopmax", arguments),
        "zmpop" | "bzmpop" => zmpop(session, name == "bzmpop", arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    result.unwrap_or_else(Step::from)
}

/// BZPOPMIN / BZPOPMAX key … timeout: `[key, member, score]`, nil on a timeout.
fn bzpop(session: &mut Session, highest: bool, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (timeout, keys) = arguments.split_last().expect("arity checked");
    let timeout = seconds(timeout)?;
    for key in keys {
        check_not_stream(session, key)?;
    }
    let request = ListRequest::ZPop { highest, count: 1 };
    blocking(session, keys.to_vec(), request, timeout, |took: Took| {
        let score = took.scores.first().copied().unwrap_or_default();
        let member = took.items.into_iter().next().unwrap_or_default();
        Reply::Array(vec![
            Reply::Bulk(took.key),
            Reply::Bulk(member),
            Reply::Double(score),
        ])
    })
}

/// ZMPOP numkeys key … MIN|MAX [COUNT count], BZMPOP with a timeout before it:
/// `[key, [[member, score], …]]`, nil when every key is empty (or on a timeout).
fn zmpop(session: &mut Session, blocks: bool, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (timeout, arguments) = if blocks {
        (Some(seconds(&arguments[0])?), &arguments[1..])
    } else {
        (None, arguments)
    };
    let (keys, which, count) = mpop_parts(arguments)?;
    let highest = if is(which, "max") {
        true
    } else if is(which, "min") {
        false
    } else {
        return Err(Reply::error(SYNTAX_ERROR));
    };
    for key in keys {
        check_not_stream(session, key)?;
    }
    let request = ListRequest::ZPop { highest, count };
    match timeout {
        // Inside MULTI `blocking` answers at once too.
        Some(timeout) => blocking(session, keys.to_vec(), request, timeout, answer),
        None => {
            let keys = keys.to_vec();
            let first = session.keys.zset_pop_first(&keys, count, highest);
            change(first.map(|d| map(d, |took| took.map_or(Reply::NullArray, answer))))
        }
    }
}

fn answer(took: Took) -> Reply {
    let pairs = took
        .items
        .into_iter()
        .zip(took.scores)
        .map(|(member, score)| Reply::Array(vec![Reply::Bulk(member), Reply::Double(score)]))
        .collect();
    Reply::Array(vec![Reply::Bulk(took.key), Reply::Array(pairs)])
}
