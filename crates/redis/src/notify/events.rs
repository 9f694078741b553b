//! The keyspace events of the commands that change keys (classes `g`, `$`, `l`, `s`, `h`,
//! `z` and `n`), named and ordered as redis-server 7.0 sends them: `SET k v EX 10` is `set`
//! then `expire`, `LMOVE a b LEFT RIGHT` is `rpush` on `b`, `lpop` on `a`, then `del` if `a`
//! was emptied, and so on per command (`events`).
//!
//! What a command changed is read from the keyspace around it, not from inside each
//! command: the version of each of its keys before ([`before`]) and after ([`after`]),
//! which moves on every write (WATCH reads it), with the reply for what the versions cannot
//! tell (how many were removed, whether a deadline was set). All of it only while such a
//! class is on: a command otherwise pays one atomic load. The events are published before
//! the command's reply is sent, as redis-server publishes them while the command runs, so a
//! subscriber sees them before anything the same client does next.
//!
//! A blocking pop that waited is reported when it is served (its pop, and `del` if the key
//! is then empty), after the events of the command that served it, as in redis-server.

use std::sync::Arc;

use bytes::Bytes;
use omnibus_engine::keys::Keyspace;
use omnibus_engine::Engine;

use super::{misses, stream_events};
use super::{Event, GENERIC, HASH, KEYEVENT, KEYSPACE, KEY_MISS, LIST, NEW, SET, STRING, ZSET};
use crate::codec::Reply;
use crate::commands::{key_positions, table};
use crate::session::{Session, Step};

/// The versions of a command's keys before it ran (`None`: the key did not exist).
pub(crate) struct Before {
    versions: Vec<(Bytes, Option<u64>)>,
    /// A consumer-group command's ([`stream_events`]).
    groups: Option<stream_events::Before>,
    /// The keys it will look up to read and not find ([`misses`]), when `m` is on.
    misses: Vec<Bytes>,
}

/// The keys' versions before `name` runs, when a class it can send is on; `None` (nothing
/// to do afterwards) otherwise.
pub(crate) fn before(session: &Session, name: &str, arguments: &[Bytes]) -> Option<Before> {
    let notifications = &session.shared.notifications;
    if !notifications.changes_wanted() {
        return None;
    }
    let misses = if notifications.sends(KEY_MISS) {
        misses::before(session, name, arguments)
    } else {
        Vec::new()
    };
    if stream_events::reports(name) {
        return Some(Before {
            versions: Vec::new(),
            groups: Some(stream_events::before(session, name, arguments)),
            misses,
        });
    }
    if !reports(name) {
        return (!misses.is_empty()).then_some(Before {
            versions: Vec::new(),
            groups: None,
            misses,
        });
    }
    let command = table::find(name)?;
    let mut versions: Vec<(Bytes, Option<u64>)> = Vec::new();
    // The table lists a SORT's or GEORADIUS's STORE destination after the source.
    for key in key_positions::keys_of(command, arguments) {
        if versions.iter().all(|(seen, _)| seen != key) {
            versions.push((key.clone(), session.keys.version(key)));
        }
    }
    Some(Before {
        versions,
        groups: None,
        misses,
    })
}

/// Publishes what `name` changed, now or (a blocking pop that waits) when it is served.
pub(crate) fn after(
    session: &Session,
    name: &str,
    arguments: &[Bytes],
    mut before: Before,
    step: &mut Step,
) {
    let shared = &session.shared;
    // The misses come from the command's first lookups, before anything it changed (and
    // before a blocking read waits); not when it was refused before looking (`misses`).
    let misses = std::mem::take(&mut before.misses);
    if !misses.is_empty() && misses::looked_up(name, &step.reply) {
        misses::publish(session, misses);
    }
    if let Some(later) = step.later.take() {
        // A stream's own changes, answered by its writer, are sent by the writer.
        if !blocking_pop(name) && !answered_later(name) {
            step.later = Some(later);
            return;
        }
        let (keys, engine) = (session.keys.clone(), shared.engine.clone());
        let shared = shared.clone();
        let (name, arguments) = (name.to_string(), arguments.to_vec());
        step.later = Some(Box::pin(async move {
            let reply = later.await;
            // A pop served after waiting: the popped key existed then; a BLMOVE's
            // destination is as it was when the pop started waiting.
            let served = if blocking_pop(&name) {
                Served::After {
                    destination: matches!(name.as_str(), "blmove" | "brpoplpush")
                        .then(|| arguments[1].clone())
                        .filter(|destination| *destination != arguments[0]),
                }
            } else {
                Served::AtOnce
            };
            let state = State {
                keys: &keys,
                engine: &engine,
                before: &before,
                served,
            };
            let mut out = Vec::new();
            events(&name, &arguments, &reply, &state, &mut out);
            publish(&engine, shared.notifications.flags(), out);
            reply
        }));
        return;
    }
    let state = State {
        keys: &session.keys,
        engine: &shared.engine,
        before: &before,
        served: Served::AtOnce,
    };
    let mut out = Vec::new();
    events(name, arguments, &step.reply, &state, &mut out);
    publish(&shared.engine, shared.notifications.flags(), out);
}

/// The commands [`events`] knows (the others send no events from here).
fn reports(name: &str) -> bool {
    matches!(
        name,
        "set"
            | "setnx"
            | "setex"
            | "psetex"
            | "getset"
            | "mset"
            | "msetnx"
            | "getdel"
            | "getex"
            | "incr"
            | "decr"
            | "incrby"
            | "decrby"
            | "incrbyfloat"
            | "append"
            | "setrange"
            | "setbit"
            | "bitfield"
            | "bitop"
            | "pfadd"
            | "pfmerge"
            | "del"
            | "unlink"
            | "expire"
            | "pexpire"
            | "expireat"
            | "pexpireat"
            | "persist"
            | "rename"
            | "renamenx"
            | "copy"
            | "restore"
            | "restore-asking"
            | "lpush"
            | "rpush"
            | "lpushx"
            | "rpushx"
            | "lpop"
            | "rpop"
            | "linsert"
            | "lset"
            | "ltrim"
            | "lrem"
            | "lmove"
            | "blmove"
            | "rpoplpush"
            | "brpoplpush"
            | "lmpop"
            | "blmpop"
            | "blpop"
            | "brpop"
            | "hset"
            | "hmset"
            | "hsetnx"
            | "hincrby"
            | "hincrbyfloat"
            | "hdel"
            | "hexpire"
            | "hpexpire"
            | "hexpireat"
            | "hpexpireat"
            | "hpersist"
            | "migrate"
            | "sadd"
            | "srem"
            | "smove"
            | "spop"
            | "sinterstore"
            | "sunionstore"
            | "sdiffstore"
            | "zadd"
            | "zincrby"
            | "zrem"
            | "zremrangebyrank"
            | "zremrangebyscore"
            | "zremrangebylex"
            | "zpopmin"
            | "zpopmax"
            | "bzpopmin"
            | "bzpopmax"
            | "zmpop"
            | "bzmpop"
            | "zunionstore"
            | "zinterstore"
            | "zdiffstore"
            | "zrangestore"
            | "geoadd"
            | "geosearchstore"
            | "georadius"
            | "georadiusbymember"
            | "sort"
    )
}

/// Commands that may answer later without being blocking pops, whose events are made once
/// they answer: a DEL with a stream key among its keys (the string keys' `del`; the streams'
/// come from their writers), and the group commands, which commit before they answer.
fn answered_later(name: &str) -> bool {
    matches!(
        name,
        "del"
            | "unlink"
            | "migrate"
            | "rename"
            | "renamenx"
            | "copy"
            | "restore"
            | "restore-asking"
    ) || stream_events::reports(name)
}

fn blocking_pop(name: &str) -> bool {
    matches!(
        name,
        "blpop" | "brpop" | "blmove" | "brpoplpush" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop"
    )
}

/// A key's versions around the command.
struct State<'a> {
    keys: &'a Keyspace,
    engine: &'a Engine,
    before: &'a Before,
    served: Served,
}

/// When the command's changes were made.
enum Served {
    /// As it ran: [`State::before`] is what the keys were just before.
    AtOnce,
    /// A blocking pop served after waiting: the popped key existed then and changed; of the
    /// others, only a BLMOVE's `destination` (not its source) is read from before.
    After { destination: Option<Bytes> },
}

impl State<'_> {
    fn existed(&self, key: &[u8]) -> bool {
        match &self.served {
            Served::After { destination } if destination.as_deref() != Some(key) => true,
            _ => self.was(key).is_some(),
        }
    }

    fn was(&self, key: &[u8]) -> Option<u64> {
        self.before
            .versions
            .iter()
            .find(|(seen, _)| seen == key)
            .and_then(|(_, version)| *version)
    }

    fn exists(&self, key: &[u8]) -> bool {
        self.keys.version(key).is_some()
    }

    fn changed(&self, key: &[u8]) -> bool {
        matches!(self.served, Served::After { .. }) || self.was(key) != self.keys.version(key)
    }
}

/// Collects events for one command in redis-server's order.
struct Out<'a, 'b> {
    state: &'a State<'b>,
    events: &'a mut Vec<Event>,
}

impl Out<'_, '_> {
    fn event(&mut self, class: u32, name: &'static str, key: &Bytes) {
        self.events.push((class, name, key.clone()));
    }

    /// `new`, when the command made the key.
    fn created(&mut self, key: &Bytes) {
        if !self.state.existed(key) && self.state.exists(key) {
            self.event(NEW, "new", key);
        }
    }

    /// `new` (if made) then `name`, for a write that changed the key.
    fn written(&mut self, class: u32, name: &'static str, key: &Bytes) {
        if self.state.changed(key) {
            self.created(key);
            self.event(class, name, key);
        }
    }

    /// `new` (if the key was missing) then `name`, for an add that may have gone straight
    /// to a waiting pop (so the key may not exist afterwards).
    fn handed(&mut self, class: u32, name: &'static str, key: &Bytes) {
        if !self.state.existed(key) {
            self.event(NEW, "new", key);
        }
        self.event(class, name, key);
    }

    /// `del`, when the command emptied the key (the last element popped or removed).
    fn emptied(&mut self, key: &Bytes) {
        if self.state.existed(key) && !self.state.exists(key) {
            self.event(GENERIC, "del", key);
        }
    }

    /// A pop that names its key in its reply (`[key, …]`): `name`, then `del` if emptied.
    fn popped(&mut self, reply: &Reply, class: u32, name: &'static str) {
        if let Some(key) = popped_key(reply) {
            let key = key.clone();
            self.event(class, name, &key);
            self.emptied(&key);
        }
    }

    /// A STORE's destination: `new` (if made) and `name` when something was stored, `del`
    /// when nothing was and the key was there.
    fn stored(&mut self, class: u32, name: &'static str, key: &Bytes) {
        if self.state.exists(key) {
            self.created(key);
            self.event(class, name, key);
        } else {
            self.emptied(key);
        }
    }
}

fn has(words: &[Bytes], options: &[&str]) -> bool {
    words.iter().any(|word| {
        options
            .iter()
            .any(|option| word.eq_ignore_ascii_case(option.as_bytes()))
    })
}

fn count(reply: &Reply) -> i64 {
    match reply {
        Reply::Integer(n) => *n,
        _ => 0,
    }
}

/// The integers of an array reply (HEXPIRE's per-field codes).
fn codes(reply: &Reply) -> impl Iterator<Item = i64> + '_ {
    let items = match reply {
        Reply::Array(items) => items.as_slice(),
        _ => &[],
    };
    items.iter().map(count)
}

/// The key a pop named in its reply (`[key, …]`), when it popped.
fn popped_key(reply: &Reply) -> Option<&Bytes> {
    match reply {
        Reply::Array(items) => match items.first() {
            Some(Reply::Bulk(key)) => Some(key),
            _ => None,
        },
        _ => None,
    }
}

/// The events of command `name` with `arguments` (after its name) that answered `reply`.
fn events(name: &str, arguments: &[Bytes], reply: &Reply, state: &State, events: &mut Vec<Event>) {
    // A MIGRATE the target refused part of still moved the rest.
    if matches!(reply, Reply::Error(_)) && name != "migrate" {
        return;
    }
    if let Some(groups) = &state.before.groups {
        stream_events::events(state.engine, name, arguments, reply, groups, events);
        return;
    }
    let mut out = Out { state, events };
    let key = &arguments[0];
    let expiring = ["ex", "px", "exat", "pxat"];
    match name {
        "set" | "setnx" | "getset" | "setex" | "psetex" if state.changed(key) => {
            out.written(STRING, "set", key);
            let options = arguments.get(2..).unwrap_or_default();
            if matches!(name, "setex" | "psetex") || name == "set" && has(options, &expiring) {
                out.event(GENERIC, "expire", key);
            }
        }
        "mset" | "msetnx" => {
            for key in arguments.iter().step_by(2) {
                out.written(STRING, "set", key);
            }
        }
        "getdel" => out.emptied(key),
        "getex" if state.changed(key) => {
            if !state.exists(key) {
                out.event(GENERIC, "del", key);
            } else if has(&arguments[1..], &["persist"]) {
                out.event(GENERIC, "persist", key);
            } else if has(&arguments[1..], &expiring) {
                out.event(GENERIC, "expire", key);
            }
        }
        "incr" | "decr" | "incrby" | "decrby" => out.written(STRING, "incrby", key),
        "incrbyfloat" => out.written(STRING, "incrbyfloat", key),
        "append" => out.written(STRING, "append", key),
        "setrange" => out.written(STRING, "setrange", key),
        "setbit" => out.written(STRING, "setbit", key),
        // `new` when made, and `setbit` when the value changed and a SET or INCRBY wrote
        // (one not failed by `OVERFLOW FAIL`, whose answer is nil): a value grown only for
        // failed writes sends no `setbit`, redis-server's rule.
        "bitfield" => {
            out.created(key);
            if state.changed(key) && bitfield_wrote(&arguments[1..], reply) {
                out.event(STRING, "setbit", key);
            }
        }
        "bitop" => out.stored(STRING, "set", &arguments[1]),
        "pfadd" => out.written(STRING, "pfadd", key),
        // Sent whether or not the merge changed the destination, as redis-server does.
        "pfmerge" => {
            out.created(key);
            out.event(STRING, "pfadd", key);
        }
        "del" | "unlink" => {
            let mut seen: Vec<&Bytes> = Vec::new();
            for key in arguments {
                if !seen.contains(&key) {
                    seen.push(key);
                    out.emptied(key);
                }
            }
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" if count(reply) == 1 => {
            if state.exists(key) {
                out.event(GENERIC, "expire", key);
            } else {
                out.event(GENERIC, "del", key);
            }
        }
        "persist" if count(reply) == 1 => out.event(GENERIC, "persist", key),
        "rename" | "renamenx" => {
            let moved = matches!(reply, Reply::Status(_)) || count(reply) == 1;
            if moved && arguments[0] != arguments[1] {
                // redis-server adds the destination anew, whatever it held.
                out.event(NEW, "new", &arguments[1]);
                out.event(GENERIC, "rename_from", key);
                out.event(GENERIC, "rename_to", &arguments[1]);
            }
        }
        "copy" if count(reply) == 1 => {
            out.event(NEW, "new", &arguments[1]);
            out.event(GENERIC, "copy_to", &arguments[1]);
        }
        "restore" | "restore-asking" if matches!(reply, Reply::Status(_)) => {
            if state.existed(key) {
                out.event(GENERIC, "del", key);
            }
            out.event(NEW, "new", key);
            out.event(GENERIC, "restore", key);
        }
        // A push a waiting pop took at once never made the key here; redis-server made it
        // (`new`), pushed, and then served the pop (its events follow, from the pop).
        "lpush" | "lpushx" if count(reply) > 0 => out.handed(LIST, "lpush", key),
        "rpush" | "rpushx" if count(reply) > 0 => out.handed(LIST, "rpush", key),
        "lpop" | "rpop" if state.changed(key) => {
            out.event(LIST, if name == "lpop" { "lpop" } else { "rpop" }, key);
            out.emptied(key);
        }
        "linsert" => out.written(LIST, "linsert", key),
        "lset" => out.event(LIST, "lset", key),
        "ltrim" if state.existed(key) => {
            out.event(LIST, "ltrim", key);
            out.emptied(key);
        }
        "lrem" if count(reply) > 0 => {
            out.event(LIST, "lrem", key);
            out.emptied(key);
        }
        "lmove" | "blmove" | "rpoplpush" | "brpoplpush" if matches!(reply, Reply::Bulk(_)) => {
            let (from_left, to_left) = match name {
                "lmove" | "blmove" => (
                    arguments[2].eq_ignore_ascii_case(b"left"),
                    arguments[3].eq_ignore_ascii_case(b"left"),
                ),
                _ => (false, true),
            };
            let destination = &arguments[1];
            // A destination missing before is made, even when a waiting pop then took it.
            if !state.existed(destination) {
                out.event(NEW, "new", destination);
            }
            out.event(LIST, if to_left { "lpush" } else { "rpush" }, destination);
            out.event(LIST, if from_left { "lpop" } else { "rpop" }, key);
            out.emptied(key);
        }
        "lmpop" | "blmpop" | "blpop" | "brpop" => {
            let left = match name {
                "blpop" => true,
                "brpop" => false,
                _ => direction(name, arguments)
                    .is_some_and(|word| word.eq_ignore_ascii_case(b"left")),
            };
            out.popped(reply, LIST, if left { "lpop" } else { "rpop" });
        }
        "hset" | "hmset" => out.written(HASH, "hset", key),
        "hsetnx" if count(reply) == 1 => out.written(HASH, "hset", key),
        "hincrby" => out.written(HASH, "hincrby", key),
        "hincrbyfloat" => out.written(HASH, "hincrbyfloat", key),
        "hdel" if count(reply) > 0 => {
            out.event(HASH, "hdel", key);
            out.emptied(key);
        }
        // Redis 7.4: `hdel` (and `del` with the last field) when a deadline already past
        // deleted fields, else `hexpire` when one was set; `hpersist` when one was cleared.
        "hexpire" | "hpexpire" | "hexpireat" | "hpexpireat" => {
            if codes(reply).any(|code| code == 2) {
                out.event(HASH, "hdel", key);
                out.emptied(key);
            } else if codes(reply).any(|code| code == 1) {
                out.event(HASH, "hexpire", key);
            }
        }
        "hpersist" if codes(reply).any(|code| code == 1) => out.event(HASH, "hpersist", key),
        // `del` for each key moved out (not for a COPY, nor a key the target refused).
        "migrate" => {
            if let Some(command) = table::find(name) {
                for moved in key_positions::keys_of(command, arguments) {
                    out.emptied(moved);
                }
            }
        }
        "sadd" if count(reply) > 0 => out.written(SET, "sadd", key),
        "srem" if count(reply) > 0 => {
            out.event(SET, "srem", key);
            out.emptied(key);
        }
        "smove" if count(reply) == 1 && arguments[0] != arguments[1] => {
            out.event(SET, "srem", key);
            out.emptied(key);
            out.written(SET, "sadd", &arguments[1]);
        }
        "spop" => {
            let popped = match reply {
                Reply::Bulk(_) => true,
                Reply::Array(items) | Reply::Set(items) => !items.is_empty(),
                _ => false,
            };
            if popped {
                out.event(SET, "spop", key);
                out.emptied(key);
            }
        }
        "sinterstore" => out.stored(SET, "sinterstore", key),
        "sunionstore" => out.stored(SET, "sunionstore", key),
        "sdiffstore" => out.stored(SET, "sdiffstore", key),
        "zadd" | "geoadd" | "zincrby" => {
            let incr = name == "zincrby" || name == "zadd" && has(&arguments[1..], &["incr"]);
            let event = if incr { "zincr" } else { "zadd" };
            if state.changed(key) {
                out.written(ZSET, event, key);
            } else if count(reply) > 0 || incr && !state.existed(key) && *reply != Reply::Null {
                // Added, and taken at once by a waiting pop (as for a push).
                out.handed(ZSET, event, key);
            }
        }
        "zrem" | "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" if count(reply) > 0 => {
            let event = match name {
                "zrem" => "zrem",
                "zremrangebyrank" => "zremrangebyrank",
                "zremrangebyscore" => "zremrangebyscore",
                _ => "zremrangebylex",
            };
            out.event(ZSET, event, key);
            out.emptied(key);
        }
        "zpopmin" | "zpopmax" => {
            if matches!(reply, Reply::Array(items) if !items.is_empty()) {
                out.event(
                    ZSET,
                    if name == "zpopmin" {
                        "zpopmin"
                    } else {
                        "zpopmax"
                    },
                    key,
                );
                out.emptied(key);
            }
        }
        "bzpopmin" | "bzpopmax" | "zmpop" | "bzmpop" => {
            let min = match name {
                "bzpopmin" => true,
                "bzpopmax" => false,
                _ => {
                    direction(name, arguments).is_some_and(|word| word.eq_ignore_ascii_case(b"min"))
                }
            };
            out.popped(reply, ZSET, if min { "zpopmin" } else { "zpopmax" });
        }
        "zunionstore" => out.stored(ZSET, "zunionstore", key),
        "zinterstore" => out.stored(ZSET, "zinterstore", key),
        "zdiffstore" => out.stored(ZSET, "zdiffstore", key),
        "zrangestore" => out.stored(ZSET, "zrangestore", key),
        "geosearchstore" => out.stored(ZSET, "geosearchstore", key),
        "georadius" | "georadiusbymember" | "sort" => {
            // After the source in the table's keys, the last STORE/STOREDIST's destination.
            let Some(command) = table::find(name) else {
                return;
            };
            let keys = key_positions::keys_of(command, arguments);
            let Some(destination) = keys.get(1..).and_then(<[&Bytes]>::last) else {
                return;
            };
            if name == "sort" {
                out.stored(LIST, "sortstore", destination);
            } else {
                out.stored(ZSET, "georadiusstore", destination);
            }
        }
        _ => {}
    }
}

/// Whether a BITFIELD's SET or INCRBY (`words` after the key) was answered with a value.
fn bitfield_wrote(words: &[Bytes], reply: &Reply) -> bool {
    let Reply::Array(answers) = reply else {
        return false;
    };
    let (mut at, mut answer) = (0, 0);
    while at < words.len() {
        let word = &words[at];
        if word.eq_ignore_ascii_case(b"overflow") {
            at += 2;
            continue;
        }
        let writes = word.eq_ignore_ascii_case(b"set") || word.eq_ignore_ascii_case(b"incrby");
        if writes && !matches!(answers.get(answer), Some(Reply::Null) | None) {
            return true;
        }
        at += if word.eq_ignore_ascii_case(b"get") {
            3
        } else {
            4
        };
        answer += 1;
    }
    false
}

/// The word after the keys of LMPOP/ZMPOP (`numkeys key …`) or BLMPOP/BZMPOP (`timeout
/// numkeys key …`): LEFT/RIGHT or MIN/MAX.
fn direction<'a>(name: &str, arguments: &'a [Bytes]) -> Option<&'a Bytes> {
    let numkeys_at = if matches!(name, "lmpop" | "zmpop") {
        0
    } else {
        1
    };
    let numkeys: usize = std::str::from_utf8(arguments.get(numkeys_at)?)
        .ok()?
        .parse()
        .ok()?;
    arguments.get(numkeys_at + 1 + numkeys)
}

/// Publishes `events` for the classes in `flags`: on `__keyspace@0__:<key>` (the message is
/// the event) with `K`, then on `__keyevent@0__:<event>` (the message is the key) with `E`.
pub(crate) fn publish(engine: &Arc<Engine>, flags: u32, events: Vec<Event>) {
    for (class, event, key) in events {
        if flags & class == 0 {
            continue;
        }
        if flags & KEYSPACE != 0 {
            let mut channel = b"__keyspace@0__:".to_vec();
            channel.extend_from_slice(&key);
            let event = Bytes::from_static(event.as_bytes());
            super::publish_now(engine, Bytes::from(channel), event);
        }
        if flags & KEYEVENT != 0 {
            let channel = format!("__keyevent@0__:{event}");
            super::publish_now(engine, Bytes::from(channel), key);
        }
    }
}
