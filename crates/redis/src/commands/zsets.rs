//! Sorted-set commands over the engine's keyspace (`keys/zsets.rs`): ZADD (NX, XX, GT, LT,
//! CH, INCR), ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT, ZRANGE (BYSCORE,
//! BYLEX, REV, LIMIT, WITHSCORES) and the older ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX,
//! ZREVRANGEBYLEX and ZREVRANGE, ZRANGESTORE, ZRANK, ZREVRANK, ZREMRANGEBYRANK/BYSCORE/BYLEX,
//! ZPOPMIN, ZPOPMAX, ZRANDMEMBER, ZSCAN, ZUNION, ZINTER, ZDIFF and their STORE forms, and
//! ZINTERCARD. Every change is durable before its reply. Scores are doubles in RESP3 and
//! their text in RESP2 (`codec::double_text`); a range WITHSCORES is `[member, score]` pairs
//! in RESP3 and a flat array in RESP2, as Redis answers.

use bytes::Bytes;
use omnibus_engine::keys::{
    Aggregate, KeyKind, ScoreUpdate, Scored, SetCondition, ZAddOptions, ZOperation,
};

use super::arguments::{is, SYNTAX_ERROR};
use super::lists::{change, check_not_stream, read};
use super::sets::{
    card_limit, check_all, cursor, numbered_keys, pairs_reply, positive_count, random_options,
    scan_missing, scan_options, scan_reply,
};
use super::strings::map;
use super::zset_ranges::{by_range, range, score, zrange, By, RangeCall, NOT_A_FLOAT};
use crate::codec::{Protocol, Reply};
use crate::session::{Session, Step};

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let key = &arguments[0];
    let result = match name {
        "zadd" => zadd(session, arguments),
        "zincrby" => match score(&arguments[1]) {
            None => Err(Reply::error(NOT_A_FLOAT)),
            Some(delta) => {
                let options = ZAddOptions {
                    increment: true,
                    ..ZAddOptions::default()
                };
                add(
                    session,
                    key,
                    vec![(delta, arguments[2].clone())],
                    options,
                    false,
                )
            }
        },
        "zrem" => check_not_stream(session, key).and_then(|()| {
            let removed = session.keys.zset_remove(key, &arguments[1..]);
            change(removed.map(|d| map(d, count)))
        }),
        "zscore" | "zmscore" => read(session, key, |keys| {
            let scores = keys.zset_scores(key, &arguments[1..])?;
            let mut replies = scores
                .into_iter()
                .map(|s| s.map_or(Reply::Null, Reply::Double));
            Ok(match name {
                "zscore" => replies.next().unwrap_or(Reply::Null),
                _ => Reply::Array(replies.collect()),
            })
        }),
        "zcard" => read(session, key, |keys| Ok(count(keys.zset_len(key)?))),
        "zcount" | "zlexcount" => {
            let by = if name == "zcount" { By::Score } else { By::Lex };
            range(by, &arguments[1], &arguments[2], false).and_then(|range| {
                read(session, key, |keys| Ok(count(keys.zset_count(key, range)?)))
            })
        }
        "zrange" => {
            zrange(&arguments[1..], false).and_then(|call| answer_range(session, key, call))
        }
        "zrangebyscore" | "zrevrangebyscore" | "zrangebylex" | "zrevrangebylex" => {
            let by = if name.ends_with("lex") {
                By::Lex
            } else {
                By::Score
            };
            by_range(&arguments[1..], by, name.starts_with("zrev"))
                .and_then(|call| answer_range(session, key, call))
        }
        "zrevrange" => zrevrange(&arguments[1..]).and_then(|call| answer_range(session, key, call)),
        "zrangestore" => zrange(&arguments[2..], true).and_then(|call| {
            check_all(session, &arguments[..2])?;
            let stored = session
                .keys
                .zset_range_store(key, &arguments[1], &call.query);
            change(stored.map(|d| map(d, count)))
        }),
        "zrank" | "zrevrank" => zrank(session, name, arguments),
        "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" => {
            let by = match name {
                "zremrangebyrank" => By::Rank,
                "zremrangebyscore" => By::Score,
                _ => By::Lex,
            };
            range(by, &arguments[1], &arguments[2], false).and_then(|range| {
                check_not_stream(session, key)?;
                let removed = session.keys.zset_remove_range(key, range);
                change(removed.map(|d| map(d, count)))
            })
        }
        "zpopmin" | "zpopmax" => zpop(session, name, arguments),
        "zrandmember" => zrandmember(session, arguments),
        "zscan" => zscan(session, arguments),
        "zunion" | "zinter" | "zdiff" | "zunionstore" | "zinterstore" | "zdiffstore" => {
            combine(session, name, arguments)
        }
        "zintercard" => zintercard(session, arguments),
        _ => Err(Reply::error(format!("ERR unknown command '{name}'"))),
    };
    result.unwrap_or_else(Step::from)
}

fn count(n: usize) -> Reply {
    Reply::Integer(n as i64)
}

/// Members with their scores, as a range WITHSCORES answers them in `protocol`.
fn scored_reply(members: Vec<Scored>, with_scores: bool, protocol: Protocol) -> Reply {
    if !with_scores {
        return Reply::Array(members.into_iter().map(|(m, _)| Reply::Bulk(m)).collect());
    }
    let pairs = members
        .into_iter()
        .map(|(member, score)| (Reply::Bulk(member), Reply::Double(score)))
        .collect();
    pairs_reply(pairs, protocol)
}

fn answer_range(session: &Session, key: &Bytes, call: RangeCall) -> Result<Step, Reply> {
    let protocol = session.protocol;
    read(session, key, |keys| {
        let members = keys.zset_range(key, &call.query)?;
        Ok(scored_reply(members, call.with_scores, protocol))
    })
}

/// ZREVRANGE key start stop [WITHSCORES].
fn zrevrange(words: &[Bytes]) -> Result<RangeCall, Reply> {
    let with_scores = match &words[2..] {
        [] => false,
        [word] if is(word, "withscores") => true,
        _ => return Err(Reply::error(SYNTAX_ERROR)),
    };
    let mut call = zrange(&words[..2], false)?;
    call.query.reverse = true;
    call.with_scores = with_scores;
    Ok(call)
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member …].
fn zadd(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let mut options = ZAddOptions::default();
    let (mut nx, mut xx, mut gt, mut lt, mut ch) = (false, false, false, false, false);
    let mut at = 1;
    while let Some(word) = arguments.get(at) {
        match () {
            _ if is(word, "nx") => nx = true,
            _ if is(word, "xx") => xx = true,
            _ if is(word, "gt") => gt = true,
            _ if is(word, "lt") => lt = true,
            _ if is(word, "ch") => ch = true,
            _ if is(word, "incr") => options.increment = true,
            _ => break,
        }
        at += 1;
    }
    let pairs = &arguments[at..];
    if nx && xx {
        return Err(Reply::error(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(Reply::error(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    if options.increment && pairs.len() > 2 {
        return Err(Reply::error(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    options.condition = match (nx, xx) {
        (true, _) => SetCondition::IfAbsent,
        (_, true) => SetCondition::IfPresent,
        _ => SetCondition::Always,
    };
    options.update = match (gt, lt) {
        (true, _) => ScoreUpdate::Higher,
        (_, true) => ScoreUpdate::Lower,
        _ => ScoreUpdate::Any,
    };
    let mut scored = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        let score = score(&pair[0]).ok_or_else(|| Reply::error(NOT_A_FLOAT))?;
        scored.push((score, pair[1].clone()));
    }
    add(session, key, scored, options, ch)
}

pub(super) fn add(
    session: &Session,
    key: &Bytes,
    pairs: Vec<(f64, Bytes)>,
    options: ZAddOptions,
    changed: bool,
) -> Result<Step, Reply> {
    check_not_stream(session, key)?;
    let added = session.keys.zset_add(key, pairs, options);
    change(added.map(|d| {
        map(d, |added| match options.increment {
            true => added.score.map_or(Reply::Null, Reply::Double),
            false if changed => count(added.added + added.updated),
            false => count(added.added),
        })
    }))
}

/// ZRANK / ZREVRANK key member [WITHSCORE].
fn zrank(session: &Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let with_score = match &arguments[2..] {
        [] => false,
        [word] if is(word, "withscore") => true,
        _ => return Err(Reply::error(SYNTAX_ERROR)),
    };
    read(session, key, |keys| {
        let found = keys.zset_rank(key, &arguments[1], name == "zrevrank")?;
        Ok(match (found, with_score) {
            (None, false) => Reply::Null,
            (None, true) => Reply::NullArray,
            (Some((rank, _)), false) => count(rank),
            (Some((rank, score)), true) => Reply::Array(vec![count(rank), Reply::Double(score)]),
        })
    })
}

/// ZPOPMIN / ZPOPMAX key [count]: without a count one flat `[member, score]`.
fn zpop(session: &Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let with_count = match &arguments[1..] {
        [] => None,
        [count] => Some(positive_count(count)?),
        _ => return Err(Reply::error(SYNTAX_ERROR)),
    };
    check_not_stream(session, key)?;
    let protocol = session.protocol;
    let popped = session
        .keys
        .zset_pop(key, with_count.unwrap_or(1), name == "zpopmax");
    change(popped.map(|d| {
        map(d, |members| match with_count {
            Some(_) => scored_reply(members, true, protocol),
            None => scored_reply(members, true, Protocol::Resp2),
        })
    }))
}

/// ZRANDMEMBER key [count [WITHSCORES]].
fn zrandmember(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let (with_count, with_scores) = random_options(&arguments[1..], "withscores")?;
    let protocol = session.protocol;
    read(session, key, |keys| {
        let picked = keys.zset_random(key, with_count.unwrap_or(1))?;
        Ok(match with_count {
            Some(_) => scored_reply(picked, with_scores, protocol),
            None => picked
                .into_iter()
                .next()
                .map_or(Reply::Null, |(member, _)| Reply::Bulk(member)),
        })
    })
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: members and scores flat, scores as text.
fn zscan(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let key = &arguments[0];
    let cursor = cursor(&arguments[1])?;
    if let Some(empty) = scan_missing(session, key, KeyKind::SortedSet)? {
        return Ok(empty.into());
    }
    let (pattern, count) = scan_options(&arguments[2..])?;
    read(session, key, |keys| {
        let (next, found) = keys.zset_scan(key, cursor, pattern.as_deref(), count)?;
        let flat = found
            .into_iter()
            .flat_map(|(member, score)| {
                [
                    Reply::Bulk(member),
                    Reply::text(&crate::codec::double_text(score)),
                ]
            })
            .collect();
        Ok(scan_reply(next, flat))
    })
}

/// ZUNION / ZINTER / ZDIFF numkeys key… [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX] [WITHSCORES],
/// and the STORE forms with a destination first (no WITHSCORES; ZDIFF takes neither WEIGHTS
/// nor AGGREGATE).
fn combine(session: &Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let store = name.ends_with("store");
    let base = name.trim_end_matches("store");
    let operation = match base {
        "zunion" => ZOperation::Union,
        "zinter" => ZOperation::Intersection,
        _ => ZOperation::Difference,
    };
    let words = if store { &arguments[1..] } else { arguments };
    let (keys, mut options) = numbered_keys(name, words)?;
    let (mut weights, mut aggregate, mut with_scores) = (Vec::new(), Aggregate::Sum, false);
    while let Some(word) = options.first() {
        if is(word, "weights") && base != "zdiff" && options.len() > keys.len() {
            weights = options[1..=keys.len()]
                .iter()
                .map(|w| score(w).ok_or_else(|| Reply::error("ERR weight value is not a float")))
                .collect::<Result<_, _>>()?;
            options = &options[keys.len() + 1..];
        } else if is(word, "aggregate") && base != "zdiff" && options.len() > 1 {
            aggregate = match () {
                _ if is(&options[1], "sum") => Aggregate::Sum,
                _ if is(&options[1], "min") => Aggregate::Min,
                _ if is(&options[1], "max") => Aggregate::Max,
                _ => return Err(Reply::error(SYNTAX_ERROR)),
            };
            options = &options[2..];
        } else if is(word, "withscores") && !store {
            with_scores = true;
            options = &options[1..];
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
    }
    check_all(session, keys)?;
    if store {
        let destination = &arguments[0];
        check_not_stream(session, destination)?;
        let stored =
            session
                .keys
                .zset_combine_store(operation, destination, keys, &weights, aggregate);
        return change(stored.map(|d| map(d, count)));
    }
    let protocol = session.protocol;
    read(session, &keys[0], |keyspace| {
        let members = keyspace.zset_combine(operation, keys, &weights, aggregate)?;
        Ok(scored_reply(members, with_scores, protocol))
    })
}

/// ZINTERCARD numkeys key… [LIMIT limit].
fn zintercard(session: &Session, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (keys, options) = numbered_keys("zintercard", arguments)?;
    let limit = card_limit(options)?;
    check_all(session, keys)?;
    read(session, &keys[0], |keyspace| {
        let found = keyspace
            .zset_combine(ZOperation::Intersection, keys, &[], Aggregate::Sum)?
            .len();
        Ok(count(if limit > 0 { found.min(limit) } else { found }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_pair_up_in_resp3_and_lie_flat_in_resp2() {
        let members = vec![(Bytes::from_static(b"a"), 1.5)];
        let flat = scored_reply(members.clone(), true, Protocol::Resp2);
        assert_eq!(
            format!("{flat:?}"),
            format!(
                "{:?}",
                Reply::Array(vec![Reply::text("a"), Reply::Double(1.5)])
            )
        );
        let paired = scored_reply(members, true, Protocol::Resp3);
        let pair = Reply::Array(vec![Reply::text("a"), Reply::Double(1.5)]);
        assert_eq!(
            format!("{paired:?}"),
            format!("{:?}", Reply::Array(vec![pair]))
        );
    }
}
