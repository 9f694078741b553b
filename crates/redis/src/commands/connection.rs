//! Connection commands: PING, ECHO, SELECT, HELLO, AUTH, CLIENT, COMMAND, QUIT, RESET; and
//! TIME, ROLE, WAIT and WAITAOF, which ask about the server.

use bytes::Bytes;

use super::arguments::{integer, is, lowercase, printable, SYNTAX_ERROR};
use crate::clients::{Filter, Unblocked};
use crate::codec::{Protocol, Reply};
use crate::session::{Session, Step};

/// The Redis version we answer with: clients gate features on it (redis-py and go-redis
/// parse `redis_version`), and 7.4 has every command this door serves.
pub(crate) const REDIS_VERSION: &str = "7.4.0";

pub(super) fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    match name {
        // In RESP2's subscribed mode PING answers as a push-shaped array.
        "ping" if session.protocol == Protocol::Resp2 && session.subscriptions.count() > 0 => {
            let message = arguments.first().cloned().unwrap_or_default();
            Reply::Array(vec![Reply::text("pong"), Reply::Bulk(message)]).into()
        }
        "ping" => match arguments {
            [] => Reply::Status("PONG".into()).into(),
            [message] => Reply::Bulk(message.clone()).into(),
            _ => Reply::error("ERR wrong number of arguments for 'ping' command").into(),
        },
        "echo" => Reply::Bulk(arguments[0].clone()).into(),
        "select" => match integer(&arguments[0]) {
            Ok(0) => Reply::ok().into(),
            Ok(_) => Reply::error("ERR DB index is out of range").into(),
            Err(reply) => reply.into(),
        },
        "hello" => hello(session, arguments),
        // Like a Redis without `requirepass` (`known_user`).
        "auth" if arguments.len() == 2 => match known_user(&arguments[0]) {
            true => Reply::ok().into(),
            false => Reply::error(WRONG_PASS).into(),
        },
        "auth" if arguments.len() > 2 => Reply::error(SYNTAX_ERROR).into(),
        "auth" => Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        )
        .into(),
        "client" => client(session, arguments),
        "command" => super::command_info::answer(session.protocol, arguments).into(),
        "time" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Reply::Array(vec![
                Reply::bulk(now.as_secs().to_string()),
                Reply::bulk(now.subsec_micros().to_string()),
            ])
            .into()
        }
        "wait" => wait_for_copies(arguments, false),
        "waitaof" => wait_for_copies(arguments, true),
        // A lone master: no replication offset, no replicas.
        "role" => Reply::Array(vec![
            Reply::bulk("master"),
            Reply::Integer(0),
            Reply::Array(Vec::new()),
        ])
        .into(),
        "quit" => Step {
            reply: Reply::ok(),
            commits: Vec::new(),
            close: true,
            later: None,
        },
        "reset" => {
            session.stop_monitoring();
            session.transaction = None;
            session.watched.clear();
            session.protocol = Protocol::Resp2;
            session.name = None;
            session.subscriptions.clear();
            if session.tracking.take().is_some() {
                session.shared.tracking.disable(session.id);
            }
            session.caching = false;
            session.replies_off = false;
            session.reply_skip = false;
            session.reply_skip_next = false;
            Reply::Status("RESET".into()).into()
        }
        _ => Reply::error(format!("ERR unknown command '{name}'")).into(),
    }
}

const WRONG_PASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// No users or passwords yet: the one user is `default` (a name Redis compares byte for
/// byte), which, as on a Redis without `requirepass`, takes any password.
fn known_user(user: &[u8]) -> bool {
    user == b"default"
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(session: &mut Session, arguments: &[Bytes]) -> Step {
    let mut protocol = session.protocol;
    if let Some(version) = arguments.first() {
        protocol = match integer(version) {
            Ok(2) => Protocol::Resp2,
            Ok(3) => Protocol::Resp3,
            Ok(_) => return Reply::error("NOPROTO unsupported protocol version").into(),
            Err(_) => {
                return Reply::error("ERR Protocol version is not an integer or out of range")
                    .into()
            }
        };
    }
    let mut name = None;
    let mut options = arguments.iter().skip(1);
    while let Some(option) = options.next() {
        if is(option, "auth") {
            // Any password passes for the default user, as with Redis's and no password.
            let (Some(user), Some(_)) = (options.next(), options.next()) else {
                return Reply::error(SYNTAX_ERROR).into();
            };
            if !known_user(user) {
                return Reply::error(WRONG_PASS).into();
            }
        } else if is(option, "setname") {
            let Some(value) = options.next() else {
                return Reply::error(SYNTAX_ERROR).into();
            };
            if !valid_name(value) {
                return Reply::error(BAD_NAME).into();
            }
            name = Some(value.clone());
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                printable(option, 128)
            ))
            .into();
        }
    }
    session.protocol = protocol;
    if name.is_some() {
        session.name = name;
    }
    let version = if protocol == Protocol::Resp3 { 3 } else { 2 };
    Reply::Map(vec![
        (Reply::text("server"), Reply::text("redis")),
        (Reply::text("version"), Reply::text(REDIS_VERSION)),
        (Reply::text("proto"), Reply::Integer(version)),
        (Reply::text("id"), Reply::Integer(session.id as i64)),
        (Reply::text("mode"), Reply::text("standalone")),
        (Reply::text("role"), Reply::text("master")),
        (Reply::text("modules"), Reply::Array(Vec::new())),
    ])
    .into()
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn client(session: &mut Session, arguments: &[Bytes]) -> Step {
    let subcommand = lowercase(&arguments[0]);
    let rest = &arguments[1..];
    match (subcommand.as_str(), rest) {
        ("setname", [name]) => {
            if !valid_name(name) {
                return Reply::error(BAD_NAME).into();
            }
            session.name = (!name.is_empty()).then(|| name.clone());
            Reply::ok().into()
        }
        ("getname", []) => session.name.clone().map_or(Reply::Null, Reply::Bulk).into(),
        ("id", []) => Reply::Integer(session.id as i64).into(),
        ("setinfo", [attribute, value]) => {
            if is(attribute, "lib-name") {
                session.library_name = Some(value.clone());
            } else if is(attribute, "lib-ver") {
                session.library_version = Some(value.clone());
            } else {
                return Reply::error(format!(
                    "ERR Unrecognized option '{}'",
                    printable(attribute, 128)
                ))
                .into();
            }
            Reply::ok().into()
        }
        ("info", []) => {
            session.last_command = Some(Bytes::from_static(b"client"));
            session.publish();
            let only = Filter {
                ids: Some(vec![session.id]),
                ..Filter::default()
            };
            Reply::bulk(session.shared.clients.list(&only, session.shared.tcp_port)).into()
        }
        ("list", filters) => match list_filter(filters) {
            Ok(filter) => {
                session.last_command = Some(Bytes::from_static(b"client"));
                session.publish();
                Reply::bulk(
                    session
                        .shared
                        .clients
                        .list(&filter, session.shared.tcp_port),
                )
                .into()
            }
            Err(error) => error.into(),
        },
        ("kill", [address]) => {
            let filter = Filter {
                address: Some(String::from_utf8_lossy(address).into_owned()),
                ..Filter::default()
            };
            match session
                .shared
                .clients
                .kill(&filter, session.shared.tcp_port)
            {
                0 => Reply::error("ERR No such client").into(),
                _ => Reply::ok().into(),
            }
        }
        ("kill", filters) if !filters.is_empty() => match kill_filter(session.id, filters) {
            Ok(filter) => {
                let killed = session
                    .shared
                    .clients
                    .kill(&filter, session.shared.tcp_port);
                Reply::Integer(killed as i64).into()
            }
            Err(error) => error.into(),
        },
        ("unblock", [id, how @ ..]) if how.len() <= 1 => {
            let how = match how.first() {
                None => Unblocked::Timeout,
                Some(word) if is(word, "timeout") => Unblocked::Timeout,
                Some(word) if is(word, "error") => Unblocked::Error,
                Some(_) => {
                    return Reply::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
                        .into()
                }
            };
            let Some(id) = std::str::from_utf8(id)
                .ok()
                .and_then(|id| id.parse::<i64>().ok())
            else {
                return Reply::error(super::NOT_AN_INTEGER).into();
            };
            let unblocked =
                u64::try_from(id).is_ok_and(|id| session.shared.clients.unblock(id, how));
            Reply::Integer(i64::from(unblocked)).into()
        }
        ("unblock", [_, _, _, ..]) => Reply::error(
            "ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.",
        )
        .into(),
        ("tracking" | "caching" | "getredir" | "trackinginfo", rest)
            if super::tracking::arity_ok(&subcommand, rest) =>
        {
            super::tracking::client(session, &subcommand, rest).into()
        }
        ("tracking" | "caching" | "getredir" | "trackinginfo", _) => Reply::error(format!(
            "ERR wrong number of arguments for 'client|{subcommand}' command"
        ))
        .into(),
        // OFF and SKIP answer nothing themselves (the session leaves out what follows).
        ("reply", [mode]) if is(mode, "on") => {
            session.replies_off = false;
            session.reply_skip = false;
            session.reply_skip_next = false;
            Reply::ok().into()
        }
        ("reply", [mode]) if is(mode, "off") => {
            session.replies_off = true;
            Reply::Many(Vec::new()).into()
        }
        ("reply", [mode]) if is(mode, "skip") => {
            session.reply_skip_next = !session.replies_off;
            Reply::Many(Vec::new()).into()
        }
        ("reply", [_]) => Reply::error(SYNTAX_ERROR).into(),
        ("pause", [timeout, mode @ ..]) if mode.len() <= 1 => {
            let all = match mode.first() {
                None => true,
                Some(word) if is(word, "all") => true,
                Some(word) if is(word, "write") => false,
                Some(_) => {
                    return Reply::error("ERR CLIENT PAUSE mode must be WRITE or ALL").into()
                }
            };
            let milliseconds = match std::str::from_utf8(timeout)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
            {
                Some(ms) if ms < 0 => return Reply::error("ERR timeout is negative").into(),
                Some(ms) => ms as u64,
                None => {
                    return Reply::error("ERR timeout is not an integer or out of range").into()
                }
            };
            let until = std::time::Instant::now()
                + std::time::Duration::from_millis(milliseconds.min(100 * 365 * 86_400_000));
            session.shared.pause.pause(until, all);
            Reply::ok().into()
        }
        ("unpause", []) => {
            session.shared.pause.unpause();
            Reply::ok().into()
        }
        // Nothing is evicted and no access times are kept, so both are already true.
        ("no-evict" | "no-touch", [mode]) if is(mode, "on") || is(mode, "off") => {
            Reply::ok().into()
        }
        ("no-evict" | "no-touch", [_]) => Reply::error(SYNTAX_ERROR).into(),
        ("help", []) => super::help_reply(&[
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ID | GETNAME | SETNAME <name> | SETINFO <LIB-NAME|LIB-VER> <value>",
            "    This connection's number and names.",
            "INFO | LIST [TYPE <type>] [ID <id> ...]",
            "    This connection, or every connection, one line each.",
            "KILL <ip:port> | KILL <filter> <value> ...",
            "    Closes the connections named.",
            "UNBLOCK <id> [TIMEOUT|ERROR]",
            "    Ends the blocking command a connection waits in.",
            "PAUSE <milliseconds> [WRITE|ALL] | UNPAUSE",
            "    Holds every client's commands (or only writes) for a while.",
            "REPLY ON|OFF|SKIP",
            "    Whether replies are sent.",
            "TRACKING ON|OFF [options] | CACHING YES|NO | GETREDIR | TRACKINGINFO",
            "    Client-side caching: invalidation messages for the keys read.",
            "NO-EVICT ON|OFF | NO-TOUCH ON|OFF",
            "    Accepted: nothing is evicted and no access times are kept.",
            "HELP",
            "    Print this help.",
        ])
        .into(),
        (
            "setname" | "getname" | "id" | "setinfo" | "info" | "kill" | "unblock" | "reply"
            | "pause" | "unpause" | "no-evict" | "no-touch" | "help",
            _,
        ) => Reply::error(format!(
            "ERR wrong number of arguments for 'client|{subcommand}' command"
        ))
        .into(),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            printable(&arguments[0], 128)
        ))
        .into(),
    }
}

/// CLIENT LIST's filters: `TYPE normal|master|replica|slave|pubsub` and `ID id …`.
fn list_filter(words: &[Bytes]) -> Result<Filter, Reply> {
    let mut filter = Filter::default();
    match words {
        [] => {}
        [word, kind] if is(word, "type") => filter.kind = Some(client_type(kind)?),
        [word, ids @ ..] if is(word, "id") && !ids.is_empty() => {
            let ids = ids
                .iter()
                .map(|id| client_id(id).ok_or_else(|| Reply::error("ERR Invalid client ID")))
                .collect::<Result<Vec<u64>, Reply>>()?;
            filter.ids = Some(ids);
        }
        _ => return Err(Reply::error(SYNTAX_ERROR)),
    }
    Ok(filter)
}

/// CLIENT KILL's filters, in pairs: `ID`, `TYPE`, `USER`, `ADDR`, `LADDR`, `SKIPME`, `MAXAGE`.
/// The connection asking is left out unless `SKIPME no`.
fn kill_filter(own_id: u64, words: &[Bytes]) -> Result<Filter, Reply> {
    let mut filter = Filter {
        skip: Some(own_id),
        ..Filter::default()
    };
    let mut user_matches = true;
    for pair in words.chunks(2) {
        let [option, value] = pair else {
            return Err(Reply::error(SYNTAX_ERROR));
        };
        let text = || String::from_utf8_lossy(value).into_owned();
        if is(option, "id") {
            let id = client_id(value)
                .ok_or_else(|| Reply::error("ERR client-id should be greater than 0"))?;
            filter.ids = Some(vec![id]);
        } else if is(option, "type") {
            filter.kind = Some(client_type(value)?);
        } else if is(option, "user") {
            // Every connection is the default user's (no ACL users).
            user_matches = is(value, "default");
        } else if is(option, "addr") {
            filter.address = Some(text());
        } else if is(option, "laddr") {
            filter.local_address = Some(text());
        } else if is(option, "skipme") && (is(value, "yes") || is(value, "no")) {
            filter.skip = is(value, "yes").then_some(own_id);
        } else if is(option, "maxage") {
            let seconds = std::str::from_utf8(value)
                .ok()
                .and_then(|seconds| seconds.parse::<u64>().ok())
                .ok_or_else(|| Reply::error(super::NOT_AN_INTEGER))?;
            filter.older_than_seconds = Some(seconds);
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
    }
    if !user_matches {
        filter.ids = Some(Vec::new());
    }
    Ok(filter)
}

/// A client type Redis knows, lowercased; Redis's error for another.
fn client_type(kind: &Bytes) -> Result<String, Reply> {
    let kind = lowercase(kind);
    match kind.as_str() {
        "normal" | "pubsub" | "master" | "replica" | "slave" => Ok(kind),
        _ => Err(Reply::error(format!(
            "ERR Unknown client type '{}'",
            printable(kind.as_bytes(), 128)
        ))),
    }
}

/// A client id: a positive integer.
fn client_id(id: &[u8]) -> Option<u64> {
    std::str::from_utf8(id)
        .ok()?
        .parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
}

/// `WAIT numreplicas timeout` and `WAITAOF numlocal numreplicas timeout`. Omnibus has no
/// replicas, and every write this connection was answered for is already fsynced (its reply
/// follows its fsync, and replies come in order), so the local count is met at once: WAIT
/// answers 0 and WAITAOF `[1, 0]` — at once when no replica is asked for, else, as a Redis
/// without replicas does, when the timeout passes (0: never).
fn wait_for_copies(arguments: &[Bytes], aof: bool) -> Step {
    let numbers: Result<Vec<i64>, Reply> = arguments.iter().map(|a| integer(a)).collect();
    let numbers = match numbers {
        Ok(numbers) => numbers,
        Err(reply) => return reply.into(),
    };
    let (replicas, timeout) = if aof {
        (numbers[1], numbers[2])
    } else {
        (numbers[0], numbers[1])
    };
    if timeout < 0 {
        return Reply::error("ERR timeout is negative").into();
    }
    let answer = move || {
        if aof {
            Reply::Array(vec![Reply::Integer(1), Reply::Integer(0)])
        } else {
            Reply::Integer(0)
        }
    };
    // One local copy exists: more asked for waits for the timeout like missing replicas.
    let satisfied = replicas <= 0 && (!aof || numbers[0] <= 1);
    if satisfied {
        return answer().into();
    }
    Step::later(async move {
        if timeout == 0 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(timeout as u64)).await;
        answer()
    })
}
