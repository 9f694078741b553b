//! Running a command: its arity checked against the command table (`table.rs`), MULTI
//! queueing, and dispatch to one file per family.

mod admin;
mod arguments;
mod bitfield;
mod bits;
mod claims;
mod command_info;
mod connection;
mod dump;
mod geo;
mod geohash;
mod groups;
mod hash_fields;
mod hashes;
pub(crate) mod held;
mod hyperloglog;
pub(crate) use hyperloglog::round_trip as hyperloglog_round_trip;
mod info;
pub(crate) mod key_positions;
mod keyspace;
mod lcs;
mod lists;
mod migrate;
mod objects;
mod server_info;
mod sets;
mod sort;
mod stream_dump;
pub(crate) mod stream_moves;
mod streams;
mod strings;
pub(crate) mod table;
pub(crate) mod tracking;
mod transaction;
mod tuning;
mod zset_pops;
mod zset_ranges;
mod zsets;

use bytes::Bytes;

use crate::codec::Reply;
use crate::session::{Session, Step};

pub(crate) use arguments::{integer, lowercase, printable, NOT_AN_INTEGER, SYNTAX_ERROR};
pub(crate) use streams::is_stream;
pub(crate) use transaction::Watched;

/// The arity of every command this door knows, or `None` (`table.rs`).
pub(crate) fn arity(name: &str) -> Option<i64> {
    table::find(name).map(|command| command.arity)
}

/// Whether a command writes (its table flags say `write`): a read-only script may not run it.
pub(crate) fn writes(name: &str) -> bool {
    table::find(name).is_some_and(|command| command.flags.contains(&"write"))
}

/// Whether CLIENT PAUSE WRITE holds the command (`arguments` with its name): flagged `write`
/// or `may_replicate` (scripts), or an EXEC with such a command queued — Redis's rule.
pub(crate) fn may_write(session: &Session, arguments: &[Bytes]) -> bool {
    let flagged = |name: &[u8]| {
        table::find(&lowercase(name)).is_some_and(|command| {
            command.flags.contains(&"write") || command.flags.contains(&"may_replicate")
        })
    };
    if arguments[0].eq_ignore_ascii_case(b"exec") {
        return session.transaction.as_ref().is_some_and(|transaction| {
            transaction.queued.iter().any(|queued| flagged(&queued[0]))
        });
    }
    flagged(&arguments[0])
}

/// Whether a command may change a stream through its writer task: the session first waits
/// for the reads queued before it, so a read never sees a change made after it. (The EXPIRE
/// family and PERSIST go to the writer on a stream key: a TTL pipelined between an EXPIRE
/// and a PERSIST must not see the PERSIST.)
pub(crate) fn changes_a_stream(name: &[u8]) -> bool {
    [
        "xadd",
        "xtrim",
        "xsetid",
        "xdel",
        "del",
        "unlink",
        "expire",
        "pexpire",
        "expireat",
        "pexpireat",
        "persist",
        "flushall",
        "flushdb",
    ]
    .iter()
    .any(|command| name.eq_ignore_ascii_case(command.as_bytes()))
}

/// Whether the session answers the command before it runs the next one, when the command
/// waits for stream writers: a move whose source is a stream changes two keys over time
/// (`stream_moves.rs`), and FLUSHALL deletes every stream one writer after the other;
/// nothing pipelined after either may see it half done (in Redis each is one step).
pub(crate) fn settles_first(name: &[u8]) -> bool {
    [
        "rename",
        "renamenx",
        "copy",
        "restore",
        "restore-asking",
        "flushall",
        "flushdb",
    ]
    .iter()
    .any(|command| name.eq_ignore_ascii_case(command.as_bytes()))
}

/// Whether `name` is a container of subcommands (each with a HELP).
fn has_subcommands(name: &str) -> bool {
    matches!(
        name,
        "xgroup"
            | "xinfo"
            | "object"
            | "memory"
            | "config"
            | "client"
            | "command"
            | "pubsub"
            | "script"
            | "function"
            | "slowlog"
            | "latency"
            | "acl"
            | "cluster"
    )
}

/// Whether the session must answer the reads queued before the command first: a change to
/// a stream (see [`changes_a_stream`]), or an XACK, which acks at once the deliveries a
/// pipelined XREADGROUP before it may be about to make.
pub(crate) fn waits_for_reads(name: &[u8]) -> bool {
    changes_a_stream(name) || name.eq_ignore_ascii_case(b"xack")
}

/// Whether the command (`arguments` with its name) holds the keyspace whole while it runs
/// (scripts, EXEC, and a SORT whose BY or GET patterns read other keys or that STOREs): the
/// session takes the hold before running it.
pub(crate) fn holds_keyspace(arguments: &[Bytes]) -> bool {
    let name = &arguments[0];
    name.eq_ignore_ascii_case(b"exec")
        || is_script(name)
        || (name.eq_ignore_ascii_case(b"sort") || name.eq_ignore_ascii_case(b"sort_ro"))
            && arguments.len() > 1
            && sort::reads_other_keys(&arguments[1..])
}

/// EVAL, EVALSHA, FCALL and their `_RO` forms (each `name script-or-function numkeys key…`).
pub(crate) fn is_script(name: &[u8]) -> bool {
    [
        "eval",
        "evalsha",
        "eval_ro",
        "evalsha_ro",
        "fcall",
        "fcall_ro",
    ]
    .iter()
    .any(|command| name.eq_ignore_ascii_case(command.as_bytes()))
}

/// The stream keys a command is about to touch whose deadline has passed
/// (`streams/expiry.rs`); none, without a look, while no stream has a deadline. The session
/// has their writers delete them before it runs the command, as Redis deletes an expired
/// key the moment a command touches it, so that no command — a stream read above all, which
/// reads the engine and not the writer — answers from a stream past its deadline. For EXEC
/// the keys of the queued commands count, for a script the keys it declares; a command inside
/// MULTI is only queued.
pub(crate) fn due_streams(session: &Session, arguments: &[Bytes]) -> Vec<String> {
    let deadlines = session.shared.streams.deadlines();
    if deadlines.len() == 0
        || session.transaction.is_some() && !arguments[0].eq_ignore_ascii_case(b"exec")
    {
        return Vec::new();
    }
    let mut keys = Vec::new();
    keys_touched(session, arguments, &mut keys);
    let engine = &session.shared.engine;
    let mut due: Vec<String> = keys
        .into_iter()
        .filter_map(|key| std::str::from_utf8(key).ok())
        .filter(|name| deadlines.is_due(engine, name))
        .map(str::to_string)
        .collect();
    due.sort_unstable();
    due.dedup();
    due
}

/// The keys of `arguments` by the command table, of EXEC's queued commands, the ones a
/// script declares (`EVAL script numkeys key …`), or XGROUP's and XINFO's.
fn keys_touched<'a>(session: &'a Session, arguments: &'a [Bytes], keys: &mut Vec<&'a Bytes>) {
    if arguments[0].eq_ignore_ascii_case(b"exec") {
        for queued in session.transaction.iter().flat_map(|t| &t.queued) {
            keys_touched(session, queued, keys);
        }
    } else if is_script(&arguments[0]) {
        let declared = arguments
            .get(2)
            .and_then(|count| std::str::from_utf8(count).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        keys.extend(arguments.iter().skip(3).take(declared));
    } else if ["xgroup", "xinfo"]
        .iter()
        .any(|name| arguments[0].eq_ignore_ascii_case(name.as_bytes()))
    {
        // Containers in the table (no keys of their own): the key follows the subcommand.
        keys.extend(arguments.get(2));
    } else if let Some(command) = table::find(&lowercase(&arguments[0])) {
        keys.extend(key_positions::keys_of(command, &arguments[1..]));
    }
}

/// Runs one command (or queues it inside MULTI).
pub(crate) fn run(session: &mut Session, arguments: Vec<Bytes>) -> Step {
    let name = lowercase(&arguments[0]);
    // Its place in the table, found once: arity, flags and commandstats read it.
    let Some(position) = table::position(&name) else {
        let error = unknown_command(&arguments);
        if let Some(transaction) = &mut session.transaction {
            transaction.failed = true;
        }
        return Reply::Error(error).into();
    };
    let command = &table::COMMANDS[position];
    let (count, arity) = (arguments.len() as i64, command.arity);
    // A container command's HELP takes no argument (Redis checks `<command>|help`'s arity).
    let wrong = if (arity > 0 && count != arity) || (arity < 0 && count < -arity) {
        Some(name.clone())
    } else if count > 2 && arguments[1].eq_ignore_ascii_case(b"help") && has_subcommands(&name) {
        Some(format!("{name}|help"))
    } else {
        None
    };
    if let Some(wrong) = wrong {
        session.shared.command_stats.rejected(position);
        if let Some(transaction) = &mut session.transaction {
            transaction.failed = true;
        }
        return Reply::error(format!(
            "ERR wrong number of arguments for '{wrong}' command"
        ))
        .into();
    }
    // RESP2's subscribed mode: the connection carries pushes, so only these may be sent.
    if session.protocol == crate::codec::Protocol::Resp2
        && session.subscriptions.count() > 0
        && !crate::pubsub::subscribes(&name)
        && !matches!(name.as_str(), "ping" | "quit" | "reset")
    {
        return Reply::error(format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ))
        .into();
    }
    // A monitor is a replica to Redis, and Redis's words say so.
    if session.monitor.is_some()
        && table::find(&name).is_some_and(|command| {
            ["write", "readonly", "may_replicate"]
                .iter()
                .any(|flag| command.flags.contains(flag))
        })
    {
        return Reply::error("ERR Replica can't interact with the keyspace").into();
    }
    // Shown to monitors once it passed the checks above (a refused command is not, as in
    // Redis); inside MULTI when queued, which keeps Redis's order: MULTI, the commands, EXEC.
    if session.shared.monitors.is_watched() {
        let admin = table::find(&name).is_some_and(|command| command.flags.contains(&"admin"));
        session
            .shared
            .monitors
            .feed(session.address, &arguments, admin);
    }
    if let Some(transaction) = &mut session.transaction {
        // SAVE, SHUTDOWN, SYNC and PSYNC (`no_multi`) fail the transaction, as in Redis.
        if command.flags.contains(&"no_multi") {
            transaction.failed = true;
            return Reply::error("ERR Command not allowed inside a transaction").into();
        }
        if !matches!(
            name.as_str(),
            "exec" | "discard" | "multi" | "quit" | "reset" | "watch"
        ) {
            return transaction::queue(session, arguments);
        }
    }
    let started = std::time::Instant::now();
    let step = execute(session, &name, &arguments);
    observed(session, position, &arguments, started, &step.reply);
    session.ran = Some(position);
    step
}

/// A command (at `position` in the table) that ran from `started` and answered `reply`:
/// timed for the slow log and counted for INFO's commandstats (`command_stats.rs`).
pub(crate) fn observed(
    session: &Session,
    position: usize,
    arguments: &[Bytes],
    started: std::time::Instant,
    reply: &Reply,
) {
    let elapsed = started.elapsed();
    let shared = &session.shared;
    shared
        .slowlog
        .observe(elapsed, arguments, session.address, session.name.as_ref());
    shared
        .command_stats
        .ran(position, elapsed, reply.is_error());
}

/// Runs a command whose name and arity were checked, and publishes the keyspace events of
/// what it changed when they are asked for (`notify/events.rs`).
pub(crate) fn execute(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let before = crate::notify::events::before(session, name, &arguments[1..]);
    let tracked = tracking::before(session, name, &arguments[1..]);
    let mut step = dispatch(session, name, arguments);
    if let Some(tracked) = tracked {
        tracking::after(session, tracked, &mut step);
    }
    if let Some(before) = before {
        crate::notify::events::after(session, name, &arguments[1..], before, &mut step);
    }
    step
}

fn dispatch(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    let words = arguments;
    let arguments = &arguments[1..];
    match name {
        "multi" => transaction::multi(session),
        // MONITOR again answers nothing, as in Redis.
        "monitor" if !session.start_monitoring() => Reply::Many(Vec::new()).into(),
        "monitor" => Reply::ok().into(),
        "exec" => transaction::exec(session),
        "discard" => transaction::discard(session),
        "watch" => transaction::watch(session, arguments),
        "unwatch" => {
            session.watched.clear();
            Reply::ok().into()
        }
        "get" | "getdel" | "getex" | "getset" | "getrange" | "set" | "setnx" | "setex"
        | "psetex" | "mget" | "mset" | "msetnx" | "incr" | "decr" | "incrby" | "decrby"
        | "incrbyfloat" | "append" | "strlen" => strings::run(session, name, arguments),
        "setbit" | "getbit" | "bitcount" | "bitpos" | "bitop" | "setrange" => {
            bits::run(session, name, arguments)
        }
        "bitfield" | "bitfield_ro" => bitfield::run(session, name, arguments),
        "object" | "memory" | "randomkey" => objects::run(session, name, arguments),
        "pfadd" | "pfcount" | "pfmerge" => hyperloglog::run(session, name, arguments),
        "del" | "unlink" | "exists" | "touch" | "expire" | "pexpire" | "expireat" | "pexpireat"
        | "ttl" | "pttl" | "expiretime" | "pexpiretime" | "persist" | "type" | "dbsize"
        | "keys" | "scan" | "flushall" | "flushdb" | "rename" | "renamenx" | "copy" => {
            keyspace::run(session, name, arguments)
        }
        "lpush" | "rpush" | "lpushx" | "rpushx" | "lpop" | "rpop" | "llen" | "lrange"
        | "lindex" | "lpos" | "lset" | "linsert" | "lrem" | "ltrim" | "lmove" | "rpoplpush"
        | "blmove" | "brpoplpush" | "lmpop" | "blmpop" | "blpop" | "brpop" => {
            lists::run(session, name, arguments)
        }
        "hset" | "hsetnx" | "hmset" | "hget" | "hmget" | "hgetall" | "hdel" | "hexists"
        | "hlen" | "hkeys" | "hvals" | "hincrby" | "hincrbyfloat" | "hstrlen" | "hscan"
        | "hrandfield" => hashes::run(session, name, arguments),
        "hexpire" | "hpexpire" | "hexpireat" | "hpexpireat" | "httl" | "hpttl" | "hexpiretime"
        | "hpexpiretime" | "hpersist" => hash_fields::run(session, name, arguments),
        "sadd" | "srem" | "smembers" | "sismember" | "smismember" | "scard" | "spop"
        | "srandmember" | "smove" | "sinter" | "sunion" | "sdiff" | "sinterstore"
        | "sunionstore" | "sdiffstore" | "sintercard" | "sscan" => {
            sets::run(session, name, arguments)
        }
        "zadd" | "zincrby" | "zrem" | "zscore" | "zmscore" | "zcard" | "zcount" | "zlexcount"
        | "zrange" | "zrangebyscore" | "zrevrangebyscore" | "zrangebylex" | "zrevrangebylex"
        | "zrevrange" | "zrangestore" | "zrank" | "zrevrank" | "zremrangebyrank"
        | "zremrangebyscore" | "zremrangebylex" | "zpopmin" | "zpopmax" | "zrandmember"
        | "zscan" | "zunion" | "zinter" | "zdiff" | "zunionstore" | "zinterstore"
        | "zdiffstore" | "zintercard" => zsets::run(session, name, arguments),
        "zmpop" | "bzmpop" | "bzpopmin" | "bzpopmax" => zset_pops::run(session, name, arguments),
        "geoadd"
        | "geopos"
        | "geohash"
        | "geodist"
        | "geosearch"
        | "geosearchstore"
        | "georadius"
        | "georadius_ro"
        | "georadiusbymember"
        | "georadiusbymember_ro" => geo::run(session, name, words),
        "sort" | "sort_ro" => sort::run(session, name, arguments),
        "lcs" => lcs::run(session, arguments),
        // Redis's old name for GETRANGE.
        "substr" => strings::run(session, "getrange", arguments),
        "cluster" | "readonly" | "readwrite" | "asking" | "debug" | "module" | "latency"
        | "save" | "bgsave" | "bgrewriteaof" | "lastsave" | "failover" | "replicaof"
        | "slaveof" | "move" | "swapdb" | "acl" | "sync" | "psync" | "replconf" | "shutdown" => {
            admin::run(session, name, arguments)
        }
        "migrate" => migrate::run(session, arguments),
        "dump" | "restore" | "restore-asking" => dump::run(session, name, arguments),
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => {
            crate::scripting::eval(session, name, arguments)
        }
        "script" => crate::scripting::script(session, arguments),
        "fcall" | "fcall_ro" => crate::scripting::fcall(session, name, arguments),
        "function" => crate::scripting::function(session, arguments),
        "subscribe" | "psubscribe" | "ssubscribe" => {
            let limit = session.shared.config.subscriptions_max;
            let engine = session.shared.engine.clone();
            Reply::Many(session.subscriptions.subscribe(
                &engine,
                arguments,
                subscription_kind(name),
                limit,
            ))
            .into()
        }
        "unsubscribe" | "punsubscribe" | "sunsubscribe" => {
            let kind = subscription_kind(name);
            Reply::Many(session.subscriptions.unsubscribe(arguments, kind)).into()
        }
        // A shard channel is a subject like any channel (one broker, one shard).
        "publish" | "spublish" => {
            let engine = session.shared.engine.clone();
            let (channel, payload) = (arguments[0].clone(), arguments[1].clone());
            Step::later(async move { crate::pubsub::publish(&engine, &channel, &payload).await })
        }
        "xadd" | "xtrim" | "xsetid" | "xdel" | "xlen" | "xrange" | "xrevrange" | "xread" => {
            streams::run(session, name, arguments)
        }
        "xgroup" | "xreadgroup" | "xack" => groups::run(session, name, arguments),
        "xpending" | "xclaim" | "xautoclaim" => claims::run(session, name, arguments),
        "xinfo" => info::run(session, arguments),
        "pubsub" => {
            let shared = &session.shared;
            shared.pubsub.command(&shared.engine, arguments).into()
        }
        "info" => server_info::info(session, arguments),
        "slowlog" => session.shared.slowlog.command(arguments).into(),
        "config" => server_info::config(session, arguments),
        _ => connection::run(session, name, arguments),
    }
}

/// What a (un)subscribe command ([`crate::pubsub::subscribes`]) subscribes to.
fn subscription_kind(name: &str) -> crate::pubsub::Kind {
    match name {
        "psubscribe" | "punsubscribe" => crate::pubsub::Kind::Pattern,
        "ssubscribe" | "sunsubscribe" => crate::pubsub::Kind::Shard,
        _ => crate::pubsub::Kind::Channel,
    }
}

/// A `… HELP` answer: one status line each, as Redis sends them.
pub(crate) fn help_reply(lines: &[&str]) -> Reply {
    Reply::Array(
        lines
            .iter()
            .map(|line| Reply::Status((*line).into()))
            .collect(),
    )
}

/// Redis's words for a command it does not know: the name, then the first arguments (at
/// most 128 characters of them), each quoted and followed by a space.
fn unknown_command(arguments: &[Bytes]) -> String {
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        arguments::printable(&arguments[0], 128)
    );
    let mut budget = 128usize;
    for argument in &arguments[1..] {
        if budget == 0 {
            break;
        }
        let shown = arguments::printable(argument, budget);
        budget = budget.saturating_sub(shown.len());
        text.push_str(&format!("'{shown}' "));
    }
    text
}
