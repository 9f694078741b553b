//! COMMAND and its subcommands (COUNT, LIST, INFO, DOCS, GETKEYS, HELP), answered from the
//! command table (`table.rs`), so what a client learns by probing is what the door does.

use bytes::Bytes;
use omnibus_engine::keys::glob_match;

use super::arguments::{is, lowercase, printable};
use super::key_positions::keys_of;
use super::table::{find, Command, COMMANDS};
use crate::codec::{Protocol, Reply};

/// COMMAND's answer for one command: name, arity, flags, first key, last key, step, ACL
/// categories, then tips, key specifications and subcommands (none kept here).
fn entry(command: &Command) -> Reply {
    let statuses = |words: &[&str]| {
        Reply::Array(
            words
                .iter()
                .map(|word| Reply::Status((*word).into()))
                .collect(),
        )
    };
    Reply::Array(vec![
        Reply::bulk(command.name),
        Reply::Integer(command.arity),
        statuses(command.flags),
        Reply::Integer(command.keys.first),
        Reply::Integer(command.keys.last),
        Reply::Integer(command.keys.step),
        statuses(command.categories),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

/// COMMAND, COMMAND COUNT / LIST [FILTERBY PATTERN p] / INFO [name …] / DOCS / GETKEYS / HELP.
pub(super) fn answer(protocol: Protocol, arguments: &[Bytes]) -> Reply {
    let Some(subcommand) = arguments.first().map(|word| lowercase(word)) else {
        return Reply::Array(COMMANDS.iter().map(entry).collect());
    };
    let rest = &arguments[1..];
    match (subcommand.as_str(), rest) {
        ("count", []) => Reply::Integer(COMMANDS.len() as i64),
        ("list", []) => Reply::Array(COMMANDS.iter().map(|c| Reply::bulk(c.name)).collect()),
        ("list", [filter, kind, pattern]) if is(filter, "filterby") && is(kind, "pattern") => {
            Reply::Array(
                COMMANDS
                    .iter()
                    .filter(|c| glob_match(pattern, c.name.as_bytes()))
                    .map(|c| Reply::bulk(c.name))
                    .collect(),
            )
        }
        // ACL categories as COMMAND INFO lists them (`@scripting`); no modules are loaded.
        ("list", [filter, kind, category]) if is(filter, "filterby") && is(kind, "aclcat") => {
            let category = format!("@{}", lowercase(category));
            Reply::Array(
                COMMANDS
                    .iter()
                    .filter(|c| c.categories.contains(&category.as_str()))
                    .map(|c| Reply::bulk(c.name))
                    .collect(),
            )
        }
        ("list", [filter, kind, _]) if is(filter, "filterby") && is(kind, "module") => {
            Reply::Array(Vec::new())
        }
        ("list", _) => Reply::error("ERR syntax error"),
        ("info", []) => Reply::Array(COMMANDS.iter().map(entry).collect()),
        ("info", names) => Reply::Array(
            names
                .iter()
                .map(|name| find(&lowercase(name)).map_or(Reply::Null, entry))
                .collect(),
        ),
        // No documentation is kept: an empty answer, which clients read as "no hints".
        ("docs", _) if protocol == Protocol::Resp3 => Reply::Map(Vec::new()),
        ("docs", _) => Reply::Array(Vec::new()),
        ("getkeys", [name, words @ ..]) => {
            let Some(command) = find(&lowercase(name)) else {
                return Reply::error("ERR Invalid command specified");
            };
            let count = words.len() as i64 + 1;
            if (command.arity > 0 && count != command.arity) || count < -command.arity {
                return Reply::error("ERR Invalid number of arguments specified for command");
            }
            let keys = keys_of(command, words);
            // A command whose keys its arguments decide (EVAL … 0) may name none.
            if keys.is_empty() && command.flags.contains(&"movablekeys") {
                return Reply::Array(Vec::new());
            }
            if keys.is_empty() {
                return Reply::error("ERR The command has no key arguments");
            }
            Reply::Array(
                keys.into_iter()
                    .map(|key| Reply::Bulk(key.clone()))
                    .collect(),
            )
        }
        ("help", []) => super::help_reply(&[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Every command the server serves: name, arity, flags, key positions.",
            "COUNT",
            "    How many commands the server serves.",
            "LIST [FILTERBY PATTERN <pattern>]",
            "    Their names.",
            "INFO [<command-name> ...]",
            "    The same details as COMMAND for the commands named.",
            "DOCS [<command-name> ...]",
            "    No documentation is kept: an empty answer.",
            "GETKEYS <full-command>",
            "    The keys in a full command.",
            "HELP",
            "    Print this help.",
        ]),
        ("count" | "getkeys" | "help", _) => Reply::error(format!(
            "ERR wrong number of arguments for 'command|{subcommand}' command"
        )),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            printable(&arguments[0], 128)
        )),
    }
}
