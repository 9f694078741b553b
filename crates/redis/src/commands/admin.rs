//! The server-administration commands tools and clients send to probe or manage a
//! redis-server, answered for what Omnibus is — one server, one database, one user, every
//! acknowledged write already fsynced — so a probe gets the answer it expects and a request
//! the door cannot honour gets a clear refusal:
//!
//! - `CLUSTER …`, `READONLY`, `READWRITE`, `ASKING`: Redis's words for a server without
//!   cluster support, which cluster-aware clients read to fall back to a plain connection;
//! - `DEBUG …` and `MODULE LOAD/LOADEX/UNLOAD`: refused with redis-server's words when those
//!   commands are disabled (its default); `MODULE LIST` is empty;
//! - `LATENCY`: no latency monitor runs (as redis-server with `latency-monitor-threshold 0`,
//!   its default): LATEST and HISTORY are empty, RESET resets nothing, GRAPH has no samples;
//!   HISTOGRAM (per-command histograms) is refused, as none are kept;
//! - `SAVE`, `BGSAVE`, `BGREWRITEAOF`, `LASTSAVE`: everything acknowledged is on disk
//!   already, so a save has nothing left to do and LASTSAVE answers the current second;
//! - `FAILOVER`, `REPLICAOF`/`SLAVEOF`: there are no replicas; `REPLICAOF NO ONE` is what the
//!   server is;
//! - `MOVE`, `SWAPDB`: database 0 is the only one;
//! - `ACL`: one user, `default`, with every permission and no password (WHOAMI, USERS,
//!   LIST, GETUSER, CAT, LOG, DRYRUN, GENPASS); changing users is refused.

use std::io::Read;

use bytes::Bytes;

use super::arguments::{integer, is, lowercase, printable, SYNTAX_ERROR};
use super::table::{self, COMMANDS};
use crate::codec::Reply;
use crate::session::{Session, Step};

const NO_CLUSTER: &str = "ERR This instance has cluster support disabled";
const DEBUG_OFF: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
const MODULE_OFF: &str = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
const OUT_OF_RANGE: &str = "ERR DB index is out of range";
/// How ACL LIST spells the one user.
const DEFAULT_USER: &str = "user default on nopass ~* &* +@all";
/// ACL categories in the order redis-server 7.0 lists them.
const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

pub(super) fn run(session: &Session, name: &str, arguments: &[Bytes]) -> Step {
    let reply = match name {
        "cluster" | "readonly" | "readwrite" | "asking" => Reply::error(NO_CLUSTER),
        "debug" => Reply::error(DEBUG_OFF),
        "module" => module(arguments),
        "latency" => latency(session, arguments),
        "save" => Reply::ok(),
        "bgsave" if arguments.iter().all(|word| is(word, "schedule")) && arguments.len() <= 1 => {
            Reply::Status("Background saving started".into())
        }
        "bgsave" => Reply::error(SYNTAX_ERROR),
        "bgrewriteaof" => Reply::Status("Background append only file rewriting started".into()),
        "lastsave" => Reply::Integer(unix_seconds()),
        "failover" if arguments.iter().any(|word| is(word, "abort")) => {
            Reply::error("ERR No failover in progress.")
        }
        "failover" => Reply::error("ERR FAILOVER requires connected replicas."),
        "replicaof" | "slaveof" if is(&arguments[0], "no") && is(&arguments[1], "one") => {
            Reply::ok()
        }
        "replicaof" | "slaveof" => Reply::error(
            "ERR Omnibus does not replicate from another server: REPLICAOF host port is not \
             served (REPLICAOF NO ONE is)",
        ),
        // What a redis-server pointed at Omnibus with REPLICAOF sends: refused in words its
        // log shows, rather than as unknown commands.
        "sync" | "psync" | "replconf" => Reply::error(
            "ERR Omnibus cannot be replicated from: it serves no replicas (every write is \
             fsynced before its reply instead)",
        ),
        "shutdown" => Reply::error(
            "ERR SHUTDOWN is not served by Omnibus: the broker serves every door; stop it \
             with SIGTERM",
        ),
        "move" => match integer(&arguments[1]) {
            Err(reply) => reply,
            Ok(0) => Reply::error("ERR source and destination objects are the same"),
            Ok(_) => Reply::error(OUT_OF_RANGE),
        },
        "swapdb" => match (integer(&arguments[0]), integer(&arguments[1])) {
            (Err(_), _) => Reply::error("ERR invalid first DB index"),
            (_, Err(_)) => Reply::error("ERR invalid second DB index"),
            (Ok(0), Ok(0)) => Reply::ok(),
            _ => Reply::error(OUT_OF_RANGE),
        },
        _ => acl(arguments),
    };
    reply.into()
}

fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

/// The subcommand of a container command (`container` as its HELP names it), lowercased,
/// when it is one of `known` (name, Redis arity counting the container's name and the
/// subcommand) and has as many words as that; else Redis's error for an unknown subcommand
/// or for the wrong number of arguments.
fn subcommand(
    container: &str,
    arguments: &[Bytes],
    known: &[(&str, i64)],
) -> Result<String, Reply> {
    let word = lowercase(&arguments[0]);
    let Some((name, arity)) = known.iter().find(|(name, _)| *name == word) else {
        return Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try {container} HELP.",
            printable(&arguments[0], 128)
        )));
    };
    let count = arguments.len() as i64 + 1;
    if (*arity > 0 && count != *arity) || (*arity < 0 && count < -arity) {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{}|{name}' command",
            container.to_ascii_lowercase()
        )));
    }
    Ok(word)
}

fn module(arguments: &[Bytes]) -> Reply {
    let known = [
        ("list", 2),
        ("load", -3),
        ("loadex", -3),
        ("unload", 3),
        ("help", 2),
    ];
    let word = match subcommand("MODULE", arguments, &known) {
        Ok(word) => word,
        Err(error) => return error,
    };
    match word.as_str() {
        "list" => Reply::Array(Vec::new()),
        "load" | "loadex" | "unload" => Reply::error(MODULE_OFF),
        _ => super::help_reply(&[
            "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LIST",
            "    Return a list of loaded modules (none: Omnibus loads no modules).",
            "LOAD <path> [<arg> ...] / LOADEX … / UNLOAD <name>",
            "    Refused: modules are not served.",
            "HELP",
            "    Prints this help.",
        ]),
    }
}

fn latency(session: &Session, arguments: &[Bytes]) -> Reply {
    let known = [
        ("latest", 2),
        ("history", 3),
        ("reset", -2),
        ("graph", 3),
        ("doctor", 2),
        ("histogram", -2),
        ("help", 2),
    ];
    let word = match subcommand("LATENCY", arguments, &known) {
        Ok(word) => word,
        Err(error) => return error,
    };
    match word.as_str() {
        "latest" | "history" => Reply::Array(Vec::new()),
        "reset" => Reply::Integer(0),
        "graph" => Reply::error(format!(
            "ERR No samples available for event '{}'",
            printable(&arguments[1], 128)
        )),
        "doctor" => Reply::text(
            "Omnibus runs no latency monitor, so there is nothing to diagnose from it. The \
             slow log (SLOWLOG GET) keeps the commands that ran longer than [redis] \
             slowlog_slower_than_us, and /metrics on the HTTP listener has the broker's \
             fsync and request timings.\n",
        ),
        // Each command's calls and cumulative latencies (`latency_histogram.rs`); names
        // that are no command are left out, as Redis leaves them.
        "histogram" => {
            let stats = &session.shared.command_stats;
            if arguments.len() == 1 {
                return stats.histograms(None);
            }
            let positions: Vec<usize> = arguments[1..]
                .iter()
                .filter_map(|name| super::table::position(&lowercase(name)))
                .collect();
            stats.histograms(Some(&positions))
        }
        _ => super::help_reply(&[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LATEST",
            "    Return the latest latency samples for all events (none: no monitor runs).",
            "HISTORY <event>",
            "    Return latency samples for the <event> (none).",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes (nothing to reset).",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class (no samples).",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "HISTOGRAM [<command> ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
            "HELP",
            "    Prints this help.",
        ]),
    }
}

fn acl(arguments: &[Bytes]) -> Reply {
    let default = |word: &Bytes| word.as_ref() == b"default";
    let known = [
        ("whoami", 2),
        ("users", 2),
        ("list", 2),
        ("getuser", 3),
        ("cat", -2),
        ("log", -2),
        ("dryrun", -4),
        ("genpass", -2),
        ("setuser", -3),
        ("deluser", -3),
        ("load", 2),
        ("save", 2),
        ("help", 2),
    ];
    let word = match subcommand("ACL", arguments, &known) {
        Ok(word) => word,
        Err(error) => return error,
    };
    match (word.as_str(), arguments.len()) {
        ("whoami", 1) => Reply::text("default"),
        ("users", 1) => Reply::Array(vec![Reply::text("default")]),
        ("list", 1) => Reply::Array(vec![Reply::text(DEFAULT_USER)]),
        ("getuser", 2) if default(&arguments[1]) => Reply::Map(vec![
            (
                Reply::text("flags"),
                Reply::Set(vec![Reply::text("on"), Reply::text("nopass")]),
            ),
            (Reply::text("passwords"), Reply::Array(Vec::new())),
            (Reply::text("commands"), Reply::text("+@all")),
            (Reply::text("keys"), Reply::text("~*")),
            (Reply::text("channels"), Reply::text("&*")),
            (Reply::text("selectors"), Reply::Array(Vec::new())),
        ]),
        ("getuser", 2) => Reply::NullArray,
        ("cat", 1) => Reply::Array(CATEGORIES.iter().map(|c| Reply::text(c)).collect()),
        ("cat", 2) => {
            let category = lowercase(&arguments[1]);
            if !CATEGORIES.contains(&category.as_str()) {
                return Reply::error(format!(
                    "ERR Unknown category '{}'",
                    printable(&arguments[1], 128)
                ));
            }
            let tag = format!("@{category}");
            Reply::Array(
                COMMANDS
                    .iter()
                    .filter(|command| command.categories.contains(&tag.as_str()))
                    .map(|command| Reply::text(command.name))
                    .collect(),
            )
        }
        ("log", 1) => Reply::Array(Vec::new()),
        ("log", 2) if is(&arguments[1], "reset") => Reply::ok(),
        ("log", 2) => match integer(&arguments[1]) {
            Ok(_) => Reply::Array(Vec::new()),
            Err(error) => error,
        },
        ("dryrun", n) if n >= 3 => {
            if !default(&arguments[1]) {
                return Reply::error(format!(
                    "ERR User '{}' not found",
                    printable(&arguments[1], 128)
                ));
            }
            match table::find(&lowercase(&arguments[2])) {
                Some(_) => Reply::ok(),
                None => Reply::error(format!(
                    "ERR Command '{}' not found",
                    printable(&arguments[2], 128)
                )),
            }
        }
        ("genpass", 1 | 2) => {
            let bits = match arguments.get(1).map(|bits| integer(bits)) {
                None => 256,
                Some(Ok(bits @ 1..=4096)) => bits as usize,
                Some(_) => {
                    return Reply::error(
                        "ERR ACL GENPASS argument must be the number of bits for the output \
                         password, a positive number up to 4096",
                    )
                }
            };
            match random_hex(bits.div_ceil(4)) {
                Ok(text) => Reply::bulk(text),
                Err(error) => Reply::error(format!("ERR {error}")),
            }
        }
        ("setuser" | "deluser", n) if n >= 2 => Reply::error(
            "ERR Omnibus has one user, default, with every permission: ACL users cannot be \
             added, changed or deleted",
        ),
        ("load" | "save", 1) => {
            Reply::error("ERR Omnibus has no ACL file: its one user, default, has every permission")
        }
        ("help", _) => super::help_reply(&[
            "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "WHOAMI, USERS, LIST, GETUSER <username>",
            "    The one user, default: on, no password, every command, key and channel.",
            "CAT [<category>]",
            "    List the command categories, or the commands in one.",
            "LOG [<count> | RESET]",
            "    Denied logins and commands (none: nothing is denied).",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Whether the user may run the command (default may run any).",
            "GENPASS [<bits>]",
            "    A random password, <bits> long (default 256) in hex.",
            "SETUSER, DELUSER, LOAD, SAVE",
            "    Refused: users are not served.",
            "HELP",
            "    Prints this help.",
        ]),
        // More words than a subcommand takes (CAT, LOG, GENPASS).
        _ => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            printable(&arguments[0], 128)
        )),
    }
}

/// `digits` hexadecimal digits from the kernel's random source.
fn random_hex(digits: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; digits.div_ceil(2)];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let mut text: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    text.truncate(digits);
    Ok(text)
}
