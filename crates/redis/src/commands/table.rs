//! The command table: every command this door serves with its arity (Redis's convention: `n`
//! exactly n words with the name, `-n` at least n), flags and key positions. The dispatcher
//! checks arity against it, and COMMAND (COUNT, LIST, INFO, GETKEYS; `command_info.rs`)
//! answers from it, so what a client learns by probing is what the door does. Where a call's
//! keys are is `key_positions.rs`.

/// Where a command's keys are: Redis's first key, last key (negative: from the end) and step,
/// 0/0/0 for none or for keys that only parsing finds (`movablekeys`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys {
    pub(crate) first: i64,
    pub(crate) last: i64,
    pub(crate) step: i64,
}

const NONE: Keys = Keys {
    first: 0,
    last: 0,
    step: 0,
};
const ONE: Keys = Keys {
    first: 1,
    last: 1,
    step: 1,
};
const ALL: Keys = Keys {
    first: 1,
    last: -1,
    step: 1,
};
const TWO: Keys = Keys {
    first: 1,
    last: 2,
    step: 1,
};
/// Every word but the last (BLPOP's timeout).
const ALL_BUT_LAST: Keys = Keys {
    first: 1,
    last: -2,
    step: 1,
};
/// Every word from the second on (BITOP's destination and sources).
const FROM_SECOND: Keys = Keys {
    first: 2,
    last: -1,
    step: 1,
};
const PAIRS: Keys = Keys {
    first: 1,
    last: -1,
    step: 2,
};

#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) name: &'static str,
    pub(crate) arity: i64,
    pub(crate) flags: &'static [&'static str],
    /// ACL categories, as Redis lists them (`@read`, `@string`, …).
    pub(crate) categories: &'static [&'static str],
    pub(crate) keys: Keys,
}

const fn command(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    categories: &'static [&'static str],
    keys: Keys,
) -> Command {
    Command {
        name,
        arity,
        flags,
        categories,
        keys,
    }
}

const READ: &[&str] = &["readonly", "fast"];
const READ_SLOW: &[&str] = &["readonly"];
const WRITE: &[&str] = &["write", "denyoom", "fast"];
const WRITE_SLOW: &[&str] = &["write"];
/// A write that frees or keeps memory, never takes more (HPERSIST): no `denyoom`.
const WRITE_FAST: &[&str] = &["write", "fast"];
const BLOCKING_READ: &[&str] = &["readonly", "blocking", "movablekeys"];
const BLOCKING_WRITE: &[&str] = &["write", "blocking", "movablekeys"];
const BLOCKING_POP: &[&str] = &["write", "blocking"];
const BLOCKING_POP_FAST: &[&str] = &["write", "blocking", "fast"];
const BLOCKING_MOVE: &[&str] = &["write", "denyoom", "blocking"];
const WRITE_MOVABLE: &[&str] = &["write", "movablekeys"];
const WRITE_STORE: &[&str] = &["write", "denyoom"];
const WRITE_STORE_MOVABLE: &[&str] = &["write", "denyoom", "movablekeys"];
const READ_MOVABLE: &[&str] = &["readonly", "movablekeys"];
const SCRIPTING: &[&str] = &[
    "noscript",
    "skip_monitor",
    "may_replicate",
    "no_mandatory_keys",
    "movablekeys",
];
const SCRIPTING_RO: &[&str] = &[
    "readonly",
    "noscript",
    "skip_monitor",
    "no_mandatory_keys",
    "movablekeys",
];
const CONNECTION: &[&str] = &["noscript", "loading", "stale", "fast"];
const PUBSUB: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const TRANSACTION: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const SAVING: &[&str] = &["admin", "noscript", "no_async_loading", "no_multi"];
const REPLICATING: &[&str] = &["admin", "noscript", "stale", "no_async_loading", "no_multi"];
const SHUTTING_DOWN: &[&str] = &[
    "admin",
    "noscript",
    "loading",
    "stale",
    "no_multi",
    "allow_busy",
];

const STRING_READ: &[&str] = &["@read", "@string", "@fast"];
const STRING_WRITE: &[&str] = &["@write", "@string", "@fast"];
const KEYSPACE_READ: &[&str] = &["@keyspace", "@read", "@fast"];
const KEYSPACE_WRITE: &[&str] = &["@keyspace", "@write", "@fast"];
const KEYSPACE_READ_SLOW: &[&str] = &["@keyspace", "@read", "@slow"];
const KEYSPACE_WRITE_SLOW: &[&str] = &["@keyspace", "@write", "@slow"];
const HASH_READ: &[&str] = &["@read", "@hash", "@fast"];
const HASH_READ_SLOW: &[&str] = &["@read", "@hash", "@slow"];
const HASH_WRITE: &[&str] = &["@write", "@hash", "@fast"];
const LIST_READ: &[&str] = &["@read", "@list", "@slow"];
const LIST_WRITE: &[&str] = &["@write", "@list", "@fast"];
const LIST_WRITE_SLOW: &[&str] = &["@write", "@list", "@slow"];
const LIST_BLOCKING: &[&str] = &["@write", "@list", "@slow", "@blocking"];
const SET_READ: &[&str] = &["@read", "@set", "@fast"];
const SET_READ_SLOW: &[&str] = &["@read", "@set", "@slow"];
const SET_WRITE: &[&str] = &["@write", "@set", "@fast"];
const SET_WRITE_SLOW: &[&str] = &["@write", "@set", "@slow"];
const ZSET_READ: &[&str] = &["@read", "@sortedset", "@fast"];
const ZSET_READ_SLOW: &[&str] = &["@read", "@sortedset", "@slow"];
const ZSET_WRITE: &[&str] = &["@write", "@sortedset", "@fast"];
const ZSET_WRITE_SLOW: &[&str] = &["@write", "@sortedset", "@slow"];
const ZSET_BLOCKING: &[&str] = &["@write", "@sortedset", "@slow", "@blocking"];
const ZSET_BLOCKING_FAST: &[&str] = &["@write", "@sortedset", "@fast", "@blocking"];
const SCRIPTING_CATEGORY: &[&str] = &["@slow", "@scripting"];
const STREAM_READ: &[&str] = &["@read", "@stream"];
const STREAM_WRITE: &[&str] = &["@write", "@stream"];
const BITMAP_READ: &[&str] = &["@read", "@bitmap", "@slow"];
const BITMAP_WRITE: &[&str] = &["@write", "@bitmap", "@slow"];
const GEO_READ: &[&str] = &["@read", "@geo", "@slow"];
const GEO_WRITE: &[&str] = &["@write", "@geo", "@slow"];
const SORT_WRITE: &[&str] = &[
    "@write",
    "@set",
    "@sortedset",
    "@list",
    "@slow",
    "@dangerous",
];
const SORT_READ: &[&str] = &[
    "@read",
    "@set",
    "@sortedset",
    "@list",
    "@slow",
    "@dangerous",
];
const CONNECTION_CATEGORY: &[&str] = &["@fast", "@connection"];
const PUBSUB_CATEGORY: &[&str] = &["@pubsub", "@slow"];
const TRANSACTION_CATEGORY: &[&str] = &["@fast", "@transaction"];
const SERVER_CATEGORY: &[&str] = &["@slow", "@admin", "@dangerous"];

/// Every command the door serves, in alphabetical order.
pub(crate) const COMMANDS: &[Command] = &[
    command("acl", -2, &[], &["@slow"], NONE),
    command("append", 3, WRITE, STRING_WRITE, ONE),
    command("asking", 1, &["fast"], CONNECTION_CATEGORY, NONE),
    command("auth", -2, CONNECTION, CONNECTION_CATEGORY, NONE),
    command("bgrewriteaof", 1, SAVING, SERVER_CATEGORY, NONE),
    command("bgsave", -1, SAVING, SERVER_CATEGORY, NONE),
    command("bitcount", -2, READ_SLOW, BITMAP_READ, ONE),
    command("bitfield", -2, WRITE_STORE, BITMAP_WRITE, ONE),
    command("bitfield_ro", -2, READ, &["@read", "@bitmap", "@fast"], ONE),
    command("bitop", -4, WRITE_STORE, BITMAP_WRITE, FROM_SECOND),
    command("bitpos", -3, READ_SLOW, BITMAP_READ, ONE),
    command("blmove", 6, BLOCKING_MOVE, LIST_BLOCKING, TWO),
    command("blmpop", -5, BLOCKING_WRITE, LIST_BLOCKING, NONE),
    command("blpop", -3, BLOCKING_POP, LIST_BLOCKING, ALL_BUT_LAST),
    command("brpop", -3, BLOCKING_POP, LIST_BLOCKING, ALL_BUT_LAST),
    command("brpoplpush", 4, BLOCKING_MOVE, LIST_BLOCKING, TWO),
    command("bzmpop", -5, BLOCKING_WRITE, ZSET_BLOCKING, NONE),
    command(
        "bzpopmax",
        -3,
        BLOCKING_POP_FAST,
        ZSET_BLOCKING_FAST,
        ALL_BUT_LAST,
    ),
    command(
        "bzpopmin",
        -3,
        BLOCKING_POP_FAST,
        ZSET_BLOCKING_FAST,
        ALL_BUT_LAST,
    ),
    command("client", -2, ADMIN, &["@slow", "@connection"], NONE),
    command("cluster", -2, &[], &["@slow"], NONE),
    command("command", -1, CONNECTION, &["@slow", "@connection"], NONE),
    command("config", -2, ADMIN, SERVER_CATEGORY, NONE),
    command("copy", -3, WRITE_STORE, KEYSPACE_WRITE_SLOW, TWO),
    command("dbsize", 1, READ, KEYSPACE_READ, NONE),
    command("debug", -2, ADMIN, SERVER_CATEGORY, NONE),
    command("decr", 2, WRITE, STRING_WRITE, ONE),
    command("decrby", 3, WRITE, STRING_WRITE, ONE),
    command(
        "del",
        -2,
        WRITE_SLOW,
        &["@keyspace", "@write", "@slow"],
        ALL,
    ),
    command("discard", 1, TRANSACTION, TRANSACTION_CATEGORY, NONE),
    command("dump", 2, READ_SLOW, KEYSPACE_READ_SLOW, ONE),
    command("echo", 2, CONNECTION, CONNECTION_CATEGORY, NONE),
    command("eval", -3, SCRIPTING, SCRIPTING_CATEGORY, NONE),
    command("eval_ro", -3, SCRIPTING_RO, SCRIPTING_CATEGORY, NONE),
    command("evalsha", -3, SCRIPTING, SCRIPTING_CATEGORY, NONE),
    command("evalsha_ro", -3, SCRIPTING_RO, SCRIPTING_CATEGORY, NONE),
    command("exec", 1, TRANSACTION, &["@slow", "@transaction"], NONE),
    command("exists", -2, READ, KEYSPACE_READ, ALL),
    command("expire", -3, WRITE, KEYSPACE_WRITE, ONE),
    command("expireat", -3, WRITE, KEYSPACE_WRITE, ONE),
    command("expiretime", 2, READ, KEYSPACE_READ, ONE),
    command("failover", -1, REPLICATING, SERVER_CATEGORY, NONE),
    command("fcall", -3, SCRIPTING, SCRIPTING_CATEGORY, NONE),
    command("fcall_ro", -3, SCRIPTING_RO, SCRIPTING_CATEGORY, NONE),
    command(
        "flushall",
        -1,
        WRITE_SLOW,
        &["@keyspace", "@write", "@slow", "@dangerous"],
        NONE,
    ),
    command(
        "flushdb",
        -1,
        WRITE_SLOW,
        &["@keyspace", "@write", "@slow", "@dangerous"],
        NONE,
    ),
    command("function", -2, &["noscript"], SCRIPTING_CATEGORY, NONE),
    command("geoadd", -5, WRITE_STORE, GEO_WRITE, ONE),
    command("geodist", -4, READ_SLOW, GEO_READ, ONE),
    command("geohash", -2, READ_SLOW, GEO_READ, ONE),
    command("geopos", -2, READ_SLOW, GEO_READ, ONE),
    command("georadius", -6, WRITE_STORE_MOVABLE, GEO_WRITE, ONE),
    command("georadius_ro", -6, READ_SLOW, GEO_READ, ONE),
    command("georadiusbymember", -5, WRITE_STORE_MOVABLE, GEO_WRITE, ONE),
    command("georadiusbymember_ro", -5, READ_SLOW, GEO_READ, ONE),
    command("geosearch", -7, READ_SLOW, GEO_READ, ONE),
    command("geosearchstore", -8, WRITE_STORE, GEO_WRITE, TWO),
    command("get", 2, READ, STRING_READ, ONE),
    command("getbit", 3, READ, &["@read", "@bitmap", "@fast"], ONE),
    command("getdel", 2, WRITE, STRING_WRITE, ONE),
    command("getex", -2, WRITE, STRING_WRITE, ONE),
    command(
        "getrange",
        4,
        READ_SLOW,
        &["@read", "@string", "@slow"],
        ONE,
    ),
    command("getset", 3, WRITE, STRING_WRITE, ONE),
    command("hdel", -3, WRITE, HASH_WRITE, ONE),
    command("hello", -1, CONNECTION, CONNECTION_CATEGORY, NONE),
    command("hexists", 3, READ, HASH_READ, ONE),
    command("hexpire", -6, WRITE, HASH_WRITE, ONE),
    command("hexpireat", -6, WRITE, HASH_WRITE, ONE),
    command("hexpiretime", -5, READ, HASH_READ, ONE),
    command("hget", 3, READ, HASH_READ, ONE),
    command("hgetall", 2, READ_SLOW, HASH_READ_SLOW, ONE),
    command("hincrby", 4, WRITE, HASH_WRITE, ONE),
    command("hincrbyfloat", 4, WRITE, HASH_WRITE, ONE),
    command("hkeys", 2, READ_SLOW, HASH_READ_SLOW, ONE),
    command("hlen", 2, READ, HASH_READ, ONE),
    command("hmget", -3, READ, HASH_READ, ONE),
    command("hmset", -4, WRITE, HASH_WRITE, ONE),
    command("hpersist", -5, WRITE_FAST, HASH_WRITE, ONE),
    command("hpexpire", -6, WRITE, HASH_WRITE, ONE),
    command("hpexpireat", -6, WRITE, HASH_WRITE, ONE),
    command("hpexpiretime", -5, READ, HASH_READ, ONE),
    command("hpttl", -5, READ, HASH_READ, ONE),
    command("hrandfield", -2, READ_SLOW, HASH_READ_SLOW, ONE),
    command("hscan", -3, READ_SLOW, HASH_READ_SLOW, ONE),
    command("hset", -4, WRITE, HASH_WRITE, ONE),
    command("hsetnx", 4, WRITE, HASH_WRITE, ONE),
    command("hstrlen", 3, READ, HASH_READ, ONE),
    command("httl", -5, READ, HASH_READ, ONE),
    command("hvals", 2, READ_SLOW, HASH_READ_SLOW, ONE),
    command("incr", 2, WRITE, STRING_WRITE, ONE),
    command("incrby", 3, WRITE, STRING_WRITE, ONE),
    command("incrbyfloat", 3, WRITE, STRING_WRITE, ONE),
    command(
        "info",
        -1,
        &["loading", "stale"],
        &["@slow", "@dangerous"],
        NONE,
    ),
    command(
        "keys",
        2,
        READ_SLOW,
        &["@keyspace", "@read", "@slow", "@dangerous"],
        NONE,
    ),
    command(
        "lastsave",
        1,
        &["loading", "stale", "fast"],
        &["@admin", "@fast", "@dangerous"],
        NONE,
    ),
    command("latency", -2, &[], &["@slow"], NONE),
    command("lcs", -3, READ_SLOW, &["@read", "@string", "@slow"], TWO),
    command("lindex", 3, READ_SLOW, LIST_READ, ONE),
    command("linsert", 5, WRITE_SLOW, LIST_WRITE_SLOW, ONE),
    command("llen", 2, READ, &["@read", "@list", "@fast"], ONE),
    command("lmove", 5, WRITE_SLOW, LIST_WRITE_SLOW, TWO),
    command("lmpop", -4, WRITE_MOVABLE, LIST_WRITE_SLOW, NONE),
    command("lpop", -2, WRITE, LIST_WRITE, ONE),
    command("lpos", -3, READ_SLOW, LIST_READ, ONE),
    command("lpush", -3, WRITE, LIST_WRITE, ONE),
    command("lpushx", -3, WRITE, LIST_WRITE, ONE),
    command("lrange", 4, READ_SLOW, LIST_READ, ONE),
    command("lrem", 4, WRITE_SLOW, LIST_WRITE_SLOW, ONE),
    command("lset", 4, WRITE_SLOW, LIST_WRITE_SLOW, ONE),
    command("ltrim", 4, WRITE_SLOW, LIST_WRITE_SLOW, ONE),
    command("memory", -2, READ_SLOW, &["@slow"], NONE),
    command("mget", -2, READ, STRING_READ, ALL),
    command(
        "migrate",
        -6,
        &["write", "movablekeys"],
        &["@keyspace", "@write", "@slow", "@dangerous"],
        Keys {
            first: 3,
            last: 3,
            step: 1,
        },
    ),
    command("module", -2, &[], &["@slow"], NONE),
    command("monitor", 1, ADMIN, SERVER_CATEGORY, NONE),
    command("move", 3, WRITE_FAST, KEYSPACE_WRITE, ONE),
    command(
        "mset",
        -3,
        WRITE_SLOW,
        &["@write", "@string", "@slow"],
        PAIRS,
    ),
    command(
        "msetnx",
        -3,
        WRITE_SLOW,
        &["@write", "@string", "@slow"],
        PAIRS,
    ),
    command("multi", 1, TRANSACTION, TRANSACTION_CATEGORY, NONE),
    command(
        "object",
        -2,
        READ_SLOW,
        &["@keyspace", "@read", "@slow"],
        NONE,
    ),
    command("persist", 2, WRITE, KEYSPACE_WRITE, ONE),
    command("pexpire", -3, WRITE, KEYSPACE_WRITE, ONE),
    command("pexpireat", -3, WRITE, KEYSPACE_WRITE, ONE),
    command("pexpiretime", 2, READ, KEYSPACE_READ, ONE),
    command(
        "pfadd",
        -2,
        WRITE,
        &["@write", "@hyperloglog", "@fast"],
        ONE,
    ),
    command(
        "pfcount",
        -2,
        &["readonly", "may_replicate"],
        &["@read", "@hyperloglog", "@slow"],
        ALL,
    ),
    command(
        "pfmerge",
        -2,
        WRITE_STORE,
        &["@write", "@hyperloglog", "@slow"],
        ALL,
    ),
    command("ping", -1, &["fast"], &["@fast", "@connection"], NONE),
    command(
        "psetex",
        4,
        WRITE_SLOW,
        &["@write", "@string", "@slow"],
        ONE,
    ),
    command("psubscribe", -2, PUBSUB, PUBSUB_CATEGORY, NONE),
    command("psync", -3, REPLICATING, SERVER_CATEGORY, NONE),
    command("pttl", 2, READ, KEYSPACE_READ, ONE),
    command(
        "publish",
        3,
        &["pubsub", "loading", "stale", "fast"],
        &["@pubsub", "@fast"],
        NONE,
    ),
    command("pubsub", -2, PUBSUB, PUBSUB_CATEGORY, NONE),
    command("punsubscribe", -1, PUBSUB, PUBSUB_CATEGORY, NONE),
    command("quit", -1, CONNECTION, CONNECTION_CATEGORY, NONE),
    command("randomkey", 1, READ_SLOW, KEYSPACE_READ_SLOW, NONE),
    command(
        "readonly",
        1,
        &["loading", "stale", "fast"],
        CONNECTION_CATEGORY,
        NONE,
    ),
    command(
        "readwrite",
        1,
        &["loading", "stale", "fast"],
        CONNECTION_CATEGORY,
        NONE,
    ),
    command("rename", 3, WRITE_SLOW, KEYSPACE_WRITE_SLOW, TWO),
    command("renamenx", 3, WRITE, KEYSPACE_WRITE, TWO),
    command("replconf", -1, REPLICATING, SERVER_CATEGORY, NONE),
    command("replicaof", 3, REPLICATING, SERVER_CATEGORY, NONE),
    command("reset", 1, CONNECTION, CONNECTION_CATEGORY, NONE),
    command(
        "restore",
        -4,
        WRITE_STORE,
        &["@keyspace", "@write", "@slow", "@dangerous"],
        ONE,
    ),
    // What a cluster node's MIGRATE sends: RESTORE here, as on a server without cluster mode.
    command(
        "restore-asking",
        -4,
        &["write", "denyoom", "asking"],
        &["@keyspace", "@write", "@slow", "@dangerous"],
        ONE,
    ),
    command(
        "role",
        1,
        &["noscript", "loading", "stale", "fast"],
        &["@admin", "@fast", "@dangerous"],
        NONE,
    ),
    command("rpop", -2, WRITE, LIST_WRITE, ONE),
    command("rpoplpush", 3, WRITE_SLOW, LIST_WRITE_SLOW, TWO),
    command("rpush", -3, WRITE, LIST_WRITE, ONE),
    command("rpushx", -3, WRITE, LIST_WRITE, ONE),
    command("sadd", -3, WRITE, SET_WRITE, ONE),
    command("save", 1, SAVING, SERVER_CATEGORY, NONE),
    command(
        "scan",
        -2,
        READ_SLOW,
        &["@keyspace", "@read", "@slow"],
        NONE,
    ),
    command("scard", 2, READ, SET_READ, ONE),
    command("script", -2, &["noscript"], SCRIPTING_CATEGORY, NONE),
    command("sdiff", -2, READ_SLOW, SET_READ_SLOW, ALL),
    command("sdiffstore", -3, WRITE_STORE, SET_WRITE_SLOW, ALL),
    command("select", 2, CONNECTION, CONNECTION_CATEGORY, NONE),
    command(
        "set",
        -3,
        &["write", "denyoom"],
        &["@write", "@string", "@slow"],
        ONE,
    ),
    command("setbit", 4, WRITE_STORE, BITMAP_WRITE, ONE),
    command("setex", 4, WRITE_SLOW, &["@write", "@string", "@slow"], ONE),
    command("setnx", 3, WRITE, STRING_WRITE, ONE),
    command(
        "setrange",
        4,
        WRITE_STORE,
        &["@write", "@string", "@slow"],
        ONE,
    ),
    command("shutdown", -1, SHUTTING_DOWN, SERVER_CATEGORY, NONE),
    command("sinter", -2, READ_SLOW, SET_READ_SLOW, ALL),
    command("sintercard", -3, READ_MOVABLE, SET_READ_SLOW, NONE),
    command("sinterstore", -3, WRITE_STORE, SET_WRITE_SLOW, ALL),
    command("sismember", 3, READ, SET_READ, ONE),
    command("slaveof", 3, REPLICATING, SERVER_CATEGORY, NONE),
    command("slowlog", -2, ADMIN, SERVER_CATEGORY, NONE),
    command("smembers", 2, READ_SLOW, SET_READ_SLOW, ONE),
    command("smismember", -3, READ, SET_READ, ONE),
    command("smove", 4, WRITE, SET_WRITE, TWO),
    command("sort", -2, WRITE_STORE_MOVABLE, SORT_WRITE, ONE),
    command("sort_ro", -2, READ_MOVABLE, SORT_READ, ONE),
    command("spop", -2, WRITE_SLOW, SET_WRITE, ONE),
    command(
        "spublish",
        3,
        &["pubsub", "loading", "stale", "fast"],
        &["@pubsub", "@fast"],
        ONE,
    ),
    command("srandmember", -2, READ_SLOW, SET_READ_SLOW, ONE),
    command("srem", -3, WRITE, SET_WRITE, ONE),
    command("sscan", -3, READ_SLOW, SET_READ_SLOW, ONE),
    command("ssubscribe", -2, PUBSUB, PUBSUB_CATEGORY, ALL),
    command("strlen", 2, READ, STRING_READ, ONE),
    command("subscribe", -2, PUBSUB, PUBSUB_CATEGORY, NONE),
    command("substr", 4, READ_SLOW, &["@read", "@string", "@slow"], ONE),
    command("sunion", -2, READ_SLOW, SET_READ_SLOW, ALL),
    command("sunionstore", -3, WRITE_STORE, SET_WRITE_SLOW, ALL),
    command("sunsubscribe", -1, PUBSUB, PUBSUB_CATEGORY, ALL),
    command(
        "swapdb",
        3,
        &["write", "fast"],
        &["@keyspace", "@write", "@fast", "@dangerous"],
        NONE,
    ),
    command("sync", 1, REPLICATING, SERVER_CATEGORY, NONE),
    command("time", 1, &["loading", "stale", "fast"], &["@fast"], NONE),
    command("touch", -2, READ, KEYSPACE_READ, ALL),
    command("ttl", 2, READ, KEYSPACE_READ, ONE),
    command("type", 2, READ, KEYSPACE_READ, ONE),
    command("unlink", -2, WRITE, KEYSPACE_WRITE, ALL),
    command("unsubscribe", -1, PUBSUB, PUBSUB_CATEGORY, NONE),
    command("unwatch", 1, TRANSACTION, TRANSACTION_CATEGORY, NONE),
    command("wait", 3, &["noscript"], &["@slow", "@connection"], NONE),
    command("waitaof", 4, &["noscript"], &["@slow", "@connection"], NONE),
    command("watch", -2, TRANSACTION, TRANSACTION_CATEGORY, ALL),
    command("xack", -4, WRITE, &["@write", "@stream", "@fast"], ONE),
    command("xadd", -5, WRITE, &["@write", "@stream", "@fast"], ONE),
    command(
        "xautoclaim",
        -6,
        WRITE,
        &["@write", "@stream", "@fast"],
        ONE,
    ),
    command("xclaim", -6, WRITE, &["@write", "@stream", "@fast"], ONE),
    command("xdel", -3, WRITE_SLOW, &["@write", "@stream", "@fast"], ONE),
    command("xgroup", -2, WRITE_SLOW, STREAM_WRITE, NONE),
    command("xinfo", -2, READ_SLOW, STREAM_READ, NONE),
    command("xlen", 2, READ, &["@read", "@stream", "@fast"], ONE),
    command("xpending", -3, READ_SLOW, STREAM_READ, ONE),
    command("xrange", -4, READ_SLOW, STREAM_READ, ONE),
    command(
        "xread",
        -4,
        BLOCKING_READ,
        &["@read", "@stream", "@slow", "@blocking"],
        NONE,
    ),
    command(
        "xreadgroup",
        -7,
        BLOCKING_WRITE,
        &["@write", "@stream", "@slow", "@blocking"],
        NONE,
    ),
    command("xrevrange", -4, READ_SLOW, STREAM_READ, ONE),
    command("xsetid", -3, WRITE, &["@write", "@stream", "@fast"], ONE),
    command("xtrim", -4, WRITE_SLOW, STREAM_WRITE, ONE),
    command("zadd", -4, WRITE, ZSET_WRITE, ONE),
    command("zcard", 2, READ, ZSET_READ, ONE),
    command("zcount", 4, READ, ZSET_READ, ONE),
    command("zdiff", -3, READ_MOVABLE, ZSET_READ_SLOW, NONE),
    command("zdiffstore", -4, WRITE_STORE_MOVABLE, ZSET_WRITE_SLOW, NONE),
    command("zincrby", 4, WRITE, ZSET_WRITE, ONE),
    command("zinter", -3, READ_MOVABLE, ZSET_READ_SLOW, NONE),
    command("zintercard", -3, READ_MOVABLE, ZSET_READ_SLOW, NONE),
    command(
        "zinterstore",
        -4,
        WRITE_STORE_MOVABLE,
        ZSET_WRITE_SLOW,
        NONE,
    ),
    command("zlexcount", 4, READ, ZSET_READ, ONE),
    command("zmpop", -4, WRITE_MOVABLE, ZSET_WRITE_SLOW, NONE),
    command("zmscore", -3, READ, ZSET_READ, ONE),
    command("zpopmax", -2, WRITE, ZSET_WRITE, ONE),
    command("zpopmin", -2, WRITE, ZSET_WRITE, ONE),
    command("zrandmember", -2, READ_SLOW, ZSET_READ_SLOW, ONE),
    command("zrange", -4, READ_SLOW, ZSET_READ_SLOW, ONE),
    command("zrangebylex", -4, READ_SLOW, ZSET_READ_SLOW, ONE),
    command("zrangebyscore", -4, READ_SLOW, ZSET_READ_SLOW, ONE),
    command("zrangestore", -5, WRITE_STORE, ZSET_WRITE_SLOW, TWO),
    command("zrank", -3, READ, ZSET_READ, ONE),
    command("zrem", -3, WRITE, ZSET_WRITE, ONE),
    command("zremrangebylex", 4, WRITE_SLOW, ZSET_WRITE_SLOW, ONE),
    command("zremrangebyrank", 4, WRITE_SLOW, ZSET_WRITE_SLOW, ONE),
    command("zremrangebyscore", 4, WRITE_SLOW, ZSET_WRITE_SLOW, ONE),
    command("zrevrange", -4, READ_SLOW, ZSET_READ_SLOW, ONE),
    command("zrevrangebylex", -4, READ_SLOW, ZSET_READ_SLOW, ONE),
    command("zrevrangebyscore", -4, READ_SLOW, ZSET_READ_SLOW, ONE),
    command("zrevrank", -3, READ, ZSET_READ, ONE),
    command("zscan", -3, READ_SLOW, ZSET_READ_SLOW, ONE),
    command("zscore", 3, READ, ZSET_READ, ONE),
    command("zunion", -3, READ_MOVABLE, ZSET_READ_SLOW, NONE),
    command(
        "zunionstore",
        -4,
        WRITE_STORE_MOVABLE,
        ZSET_WRITE_SLOW,
        NONE,
    ),
];

/// The command called `name` (lowercase), if the door serves it.
pub(crate) fn find(name: &str) -> Option<&'static Command> {
    position(name).map(|index| &COMMANDS[index])
}

/// Where command `name` (lowercase) stands in [`COMMANDS`].
pub(crate) fn position(name: &str) -> Option<usize> {
    COMMANDS
        .binary_search_by(|command| command.name.cmp(name))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_every_command_is_found() {
        for pair in COMMANDS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for command in COMMANDS {
            assert_eq!(find(command.name).map(|c| c.name), Some(command.name));
            assert!(command.arity != 0, "{}", command.name);
        }
        assert!(find("sadd").is_some());
        assert!(find("function").is_some());
        assert!(find("lolwut").is_none());
    }
}
