//! Redis 7 functions: FUNCTION LOAD / LIST / DELETE / FLUSH / STATS / KILL / HELP, and
//! FCALL / FCALL_RO. A library is Lua code that starts with `#!lua name=<library>` and
//! registers functions with `redis.register_function`; FCALL calls one by name with its keys
//! and arguments as the function's two parameters.
//!
//! Libraries are durable (unlike SCRIPT LOAD's scripts, and like Redis's, which its RDB and
//! AOF keep): FUNCTION LOAD answers once the library is fsynced in the engine's keyspace
//! store (`keys/libraries.rs`), and a restart reads them back. The listener keeps an index
//! of every function (its library and flags), read from the store on first use; each door
//! thread registers the libraries again in its own Lua state when the index changed since it
//! last did (a generation number), so a FUNCTION LOAD on one thread is seen by FCALL on any.
//! A function flagged `no-writes` runs read-only (and is the only kind FCALL_RO may call).
//! FUNCTION DUMP and RESTORE move every library in Redis's payload (`codec/rdb/`), so
//! libraries go between redis-server and Omnibus either way.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;

use super::run::{call_function, evaluate_library, split_keys};
use crate::codec::Reply;
use crate::commands::{self, lowercase, printable, SYNTAX_ERROR};
use crate::session::{Session, Step};

/// One function of a library.
#[derive(Debug, Clone)]
struct Function {
    name: String,
    flags: Vec<String>,
    description: Option<String>,
}

#[derive(Debug, Clone)]
struct Library {
    /// As loaded, its `#!lua` line first.
    code: Bytes,
    /// The code after that line: what Lua runs.
    body: Bytes,
    functions: Vec<Function>,
}

#[derive(Default)]
struct Index {
    /// Read from the keyspace's store (on first use).
    loaded: bool,
    /// Changes with every load, replace, delete and flush.
    generation: u64,
    libraries: BTreeMap<String, Library>,
}

impl Index {
    fn owner_of(&self, function: &str) -> Option<(&String, &Function)> {
        self.libraries.iter().find_map(|(library, kept)| {
            kept.functions
                .iter()
                .find(|f| f.name == function)
                .map(|f| (library, f))
        })
    }
}

/// The listener's libraries.
#[derive(Default)]
pub(crate) struct Functions {
    index: Mutex<Index>,
}

impl Functions {
    fn index(&self, session: &Session) -> std::sync::MutexGuard<'_, Index> {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if !index.loaded {
            for (name, code) in session.keys.libraries() {
                let name = String::from_utf8_lossy(&name).into_owned();
                // Stored only after it loaded; registering it again cannot fail but by a bound.
                let body =
                    metadata(&code).map_or_else(|_| Bytes::new(), |(_, body)| code.slice_ref(body));
                let functions = evaluate_library(&body)
                    .map(|registered| registered.into_iter().map(described).collect())
                    .unwrap_or_default();
                index.libraries.insert(
                    name,
                    Library {
                        code,
                        body,
                        functions,
                    },
                );
            }
            index.loaded = true;
        }
        index
    }
}

fn described(registered: super::run::Registered) -> Function {
    Function {
        name: registered.name,
        flags: registered.flags,
        description: registered.description,
    }
}

/// The library's name and its code after the `#!` line, or FUNCTION LOAD's error.
fn metadata(code: &[u8]) -> Result<(String, &[u8]), Reply> {
    let Some(rest) = code.strip_prefix(b"#!") else {
        return Err(Reply::error("ERR Missing library metadata"));
    };
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let line = String::from_utf8_lossy(&rest[..end]).into_owned();
    let body = &rest[(end + 1).min(rest.len())..];
    let mut parts = line.split(' ').filter(|part| !part.is_empty());
    let engine = parts.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Reply::error(format!("ERR Engine '{engine}' not found")));
    }
    let mut name = None;
    for part in parts {
        match part.strip_prefix("name=") {
            Some(value) => name = Some(value.to_string()),
            None => {
                return Err(Reply::error(format!(
                    "ERR Invalid metadata value given: {part}"
                )))
            }
        }
    }
    let Some(name) = name else {
        return Err(Reply::error("ERR Library name was not given"));
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Reply::error(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    Ok((name, body))
}

/// A reply that waits for one change to be durable.
fn after<T>(durable: omnibus_engine::keys::Durable<T>, reply: impl FnOnce(T) -> Reply) -> Step {
    let (value, commit) = durable.split();
    Step {
        reply: reply(value),
        commits: vec![commit],
        close: false,
        later: None,
    }
}

/// FUNCTION LOAD / LIST / DELETE / FLUSH / STATS / KILL / DUMP / RESTORE / HELP.
pub(crate) fn function(session: &mut Session, arguments: &[Bytes]) -> Step {
    let subcommand = lowercase(&arguments[0]);
    let rest = &arguments[1..];
    let functions = &session.shared.functions;
    match (subcommand.as_str(), rest) {
        ("load", [code]) => load(session, code, false),
        ("load", [replace, code]) if replace.eq_ignore_ascii_case(b"replace") => {
            load(session, code, true)
        }
        ("load", _) => Reply::error(SYNTAX_ERROR).into(),
        ("list", options) => list(session, options).into(),
        ("delete", [name]) => {
            let mut index = functions.index(session);
            let name = String::from_utf8_lossy(name).into_owned();
            if index.libraries.remove(&name).is_none() {
                return Reply::error("ERR Library not found").into();
            }
            index.generation += 1;
            after(session.keys.library_delete(name.as_bytes()), |_| {
                Reply::ok()
            })
        }
        ("flush", mode) if mode.len() <= 1 => {
            if let Some(mode) = mode.first() {
                if !mode.eq_ignore_ascii_case(b"async") && !mode.eq_ignore_ascii_case(b"sync") {
                    return Reply::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
                        .into();
                }
            }
            let mut index = functions.index(session);
            index.libraries.clear();
            index.generation += 1;
            after(session.keys.libraries_clear(), |_| Reply::ok())
        }
        ("stats", []) => {
            let index = functions.index(session);
            let count: usize = index.libraries.values().map(|l| l.functions.len()).sum();
            Reply::Map(vec![
                (Reply::bulk("running_script"), Reply::Null),
                (
                    Reply::bulk("engines"),
                    Reply::Map(vec![(
                        Reply::bulk("LUA"),
                        Reply::Map(vec![
                            (
                                Reply::bulk("libraries_count"),
                                Reply::Integer(index.libraries.len() as i64),
                            ),
                            (Reply::bulk("functions_count"), Reply::Integer(count as i64)),
                        ]),
                    )]),
                ),
            ])
            .into()
        }
        ("kill", []) => Reply::error("NOTBUSY No scripts in execution right now.").into(),
        ("dump", []) => {
            let index = functions.index(session);
            let codes = index.libraries.values().map(|library| &library.code[..]);
            Reply::bulk(crate::codec::rdb::encode_functions(codes)).into()
        }
        ("restore", [payload, policy @ ..]) if policy.len() <= 1 => {
            restore(session, payload, policy.first())
        }
        // Named as the client wrote it, as redis-server words this one.
        ("restore", _) => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            printable(&arguments[0], 128)
        ))
        .into(),
        ("help", []) => commands::help_reply(&[
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "STATS",
            "    Return information about the current function running.",
            "KILL",
            "    Kill the current running function.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
            "HELP",
            "    Print this help.",
        ])
        .into(),
        ("delete" | "flush" | "stats" | "kill" | "dump" | "help", _) => Reply::error(format!(
            "ERR wrong number of arguments for 'function|{subcommand}' command"
        ))
        .into(),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try FUNCTION HELP.",
            printable(&arguments[0], 128)
        ))
        .into(),
    }
}

fn load(session: &mut Session, code: &Bytes, replace: bool) -> Step {
    let (name, body) = match metadata(code) {
        Ok(found) => found,
        Err(refusal) => return refusal.into(),
    };
    let registered = match evaluate_library(body) {
        Ok(registered) => registered,
        Err(refusal) => return refusal.into(),
    };
    let functions: Vec<Function> = registered.into_iter().map(described).collect();
    let mut index = session.shared.functions.index(session);
    if index.libraries.contains_key(&name) && !replace {
        return Reply::error(format!("ERR Library '{name}' already exists")).into();
    }
    for function in &functions {
        if let Some((owner, _)) = index.owner_of(&function.name) {
            if *owner != name {
                return Reply::error(format!("ERR Function {} already exists", function.name))
                    .into();
            }
        }
    }
    let body = Bytes::copy_from_slice(body);
    let code = Bytes::copy_from_slice(code);
    index.libraries.insert(
        name.clone(),
        Library {
            code: code.clone(),
            body,
            functions,
        },
    );
    index.generation += 1;
    drop(index);
    after(
        session.keys.library_put(Bytes::from(name.clone()), code),
        |()| Reply::text(&name),
    )
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]: the payload's libraries, each compiled
/// as FUNCTION LOAD compiles one, added to those loaded (APPEND, the default: a library
/// already there refuses the whole payload), replacing those of the same names (REPLACE),
/// or instead of them all (FLUSH). All or nothing; durable before the reply.
fn restore(session: &mut Session, payload: &[u8], policy: Option<&Bytes>) -> Step {
    let (replace, flush) = match policy {
        None => (false, false),
        Some(word) if word.eq_ignore_ascii_case(b"append") => (false, false),
        Some(word) if word.eq_ignore_ascii_case(b"replace") => (true, false),
        Some(word) if word.eq_ignore_ascii_case(b"flush") => (false, true),
        Some(_) => {
            return Reply::error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or \
                 REPLACE.",
            )
            .into()
        }
    };
    let codes = match crate::codec::rdb::decode_functions(payload) {
        Ok(codes) => codes,
        Err(words) => return Reply::error(format!("ERR {words}")).into(),
    };
    // The payload's libraries on their own first, as a load into an empty server.
    let mut restored: BTreeMap<String, Library> = BTreeMap::new();
    for code in codes {
        let (name, body) = match metadata(&code) {
            Ok(found) => found,
            Err(refusal) => return refusal.into(),
        };
        let functions: Vec<Function> = match evaluate_library(body) {
            Ok(registered) => registered.into_iter().map(described).collect(),
            Err(refusal) => return refusal.into(),
        };
        if restored.contains_key(&name) {
            return Reply::error(format!("ERR Library '{name}' already exists")).into();
        }
        for function in &functions {
            let taken = restored
                .values()
                .any(|other| other.functions.iter().any(|f| f.name == function.name));
            if taken {
                return Reply::error(format!("ERR Function {} already exists", function.name))
                    .into();
            }
        }
        let body = code.slice_ref(body);
        let library = Library {
            code,
            body,
            functions,
        };
        restored.insert(name, library);
    }
    let mut index = session.shared.functions.index(session);
    if !flush {
        if let Some(name) = restored
            .keys()
            .find(|name| !replace && index.libraries.contains_key(*name))
        {
            return Reply::error(format!("ERR Library {name} already exists")).into();
        }
        for library in restored.values() {
            for function in &library.functions {
                let collides = index
                    .owner_of(&function.name)
                    .is_some_and(|(owner, _)| !restored.contains_key(owner));
                if collides {
                    return Reply::error(format!("ERR Function {} already exists", function.name))
                        .into();
                }
            }
        }
    }
    if flush {
        index.libraries.clear();
    }
    let stored: Vec<(String, Bytes)> = restored
        .iter()
        .map(|(name, library)| (name.clone(), library.code.clone()))
        .collect();
    index.libraries.extend(restored);
    index.generation += 1;
    drop(index);
    let mut commits = Vec::new();
    if flush {
        commits.push(session.keys.libraries_clear().split().1);
    }
    for (name, code) in stored {
        commits.push(session.keys.library_put(Bytes::from(name), code).split().1);
    }
    Step {
        reply: Reply::ok(),
        commits,
        close: false,
        later: None,
    }
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
fn list(session: &Session, options: &[Bytes]) -> Reply {
    let (mut pattern, mut with_code) = (None, false);
    let mut at = 0;
    while at < options.len() {
        let word = &options[at];
        if word.eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
        } else if word.eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            let Some(given) = options.get(at + 1) else {
                return Reply::error("ERR library name argument was not given");
            };
            pattern = Some(given.clone());
            at += 1;
        } else {
            return Reply::error(format!("ERR Unknown argument {}", printable(word, 128)));
        }
        at += 1;
    }
    let index = session.shared.functions.index(session);
    let libraries = index
        .libraries
        .iter()
        .filter(|(name, _)| {
            pattern
                .as_ref()
                .is_none_or(|p| omnibus_engine::keys::glob_match(p, name.as_bytes()))
        })
        .map(|(name, library)| {
            // By name (Redis lists them in its hash table's order).
            let mut sorted: Vec<&Function> = library.functions.iter().collect();
            sorted.sort_by(|a, b| a.name.cmp(&b.name));
            let functions = sorted
                .into_iter()
                .map(|function| {
                    Reply::Map(vec![
                        (Reply::bulk("name"), Reply::text(&function.name)),
                        (
                            Reply::bulk("description"),
                            function
                                .description
                                .as_deref()
                                .map_or(Reply::Null, Reply::text),
                        ),
                        (
                            Reply::bulk("flags"),
                            Reply::Set(
                                function
                                    .flags
                                    .iter()
                                    .map(|f| Reply::Status(f.clone()))
                                    .collect(),
                            ),
                        ),
                    ])
                })
                .collect();
            let mut fields = vec![
                (Reply::bulk("library_name"), Reply::text(name)),
                (Reply::bulk("engine"), Reply::bulk("LUA")),
                (Reply::bulk("functions"), Reply::Array(functions)),
            ];
            if with_code {
                fields.push((
                    Reply::bulk("library_code"),
                    Reply::Bulk(library.code.clone()),
                ));
            }
            Reply::Map(fields)
        })
        .collect();
    Reply::Array(libraries)
}

/// FCALL / FCALL_RO function numkeys key… arg….
pub(crate) fn fcall(session: &mut Session, name: &str, arguments: &[Bytes]) -> Step {
    run(session, name, arguments).unwrap_or_else(Step::from)
}

fn run(session: &mut Session, name: &str, arguments: &[Bytes]) -> Result<Step, Reply> {
    let (keys, argv) = split_keys(arguments, "ERR Bad number of keys provided")?;
    let function = String::from_utf8_lossy(&arguments[0]).into_owned();
    let shared = session.shared.clone();
    let (generation, no_writes) = {
        let index = shared.functions.index(session);
        let Some((_, found)) = index.owner_of(&function) else {
            return Err(Reply::error("ERR Function not found"));
        };
        let no_writes = found.flags.iter().any(|f| f == "no-writes");
        (index.generation, no_writes)
    };
    if name == "fcall_ro" && !no_writes {
        return Err(Reply::error(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    // The libraries' code, read only when this thread must register them again.
    let bodies = || {
        let index = shared
            .functions
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let bodies = index.libraries.values().map(|l| l.body.clone()).collect();
        (index.generation, bodies)
    };
    call_function(
        session,
        (generation, bodies),
        &function,
        (keys, argv),
        no_writes,
    )
}
