//! Lua scripts: EVAL, EVALSHA (and their `_RO` forms) and SCRIPT LOAD / EXISTS / FLUSH.
//!
//! Scripts are Lua 5.1, Redis's dialect, run by `mlua` (Lua built from source; no interpreter
//! of our own). A script calls commands with `redis.call` / `redis.pcall`, which run through
//! the same dispatcher as a client's command (`commands::execute`), back to back on the
//! connection's thread while the script holds the keyspace, so no other client's command
//! runs in between (docs/redis.md, "Lua scripts"). Their writes are queued as they run; the
//! script's reply waits until every one of them is fsynced.
//!
//! What a script may call: the keyspace's commands (strings, keys, lists, hashes, sets,
//! sorted sets), stream and group commands and PUBLISH (whose replies the door produces
//! asynchronously: the script waits for each on its thread, `run.rs`), not transaction,
//! subscription or connection commands, which make no sense inside a script.
//!
//! Every listener keeps the scripts it was given by SHA-1 (bounded, [`SCRIPTS_MAX`]); each
//! door thread keeps one Lua state with the scripts it compiled (`run.rs`).

mod functions;
mod libraries;
mod run;
mod values;

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::codec::Reply;
use crate::commands::{lowercase, SYNTAX_ERROR};
use crate::session::{Session, Step};

pub(crate) use functions::{fcall, function, Functions};
pub(crate) use libraries::decode_for_fuzzing;
pub(crate) use run::eval;

/// Most scripts a listener keeps (SCRIPT LOAD beyond it is refused; EVAL still runs).
pub const SCRIPTS_MAX: usize = 10_000;
/// Most bytes of script bodies a listener keeps.
pub const SCRIPT_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The scripts a listener was given, by the hex SHA-1 of their bodies.
#[derive(Default)]
pub(crate) struct Scripts {
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    bodies: HashMap<String, Bytes>,
    bytes: usize,
}

/// The lowercase hex SHA-1 of `body`: the script's name. (Spelled by hand: the digest's
/// `Display` goes through the formatter byte by byte, which cost as much as the hash.)
pub(crate) fn sha1_hex(body: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha1_smol::Sha1::from(body).digest().bytes();
    let mut text = String::with_capacity(2 * digest.len());
    for byte in digest {
        text.push(HEX[usize::from(byte >> 4)] as char);
        text.push(HEX[usize::from(byte & 0xf)] as char);
    }
    text
}

impl Scripts {
    /// Keeps `body`; returns its SHA-1, or `None` when the cache is full.
    pub(crate) fn keep(&self, body: &Bytes) -> Option<String> {
        let sha = sha1_hex(body);
        self.keep_named(sha, body)
    }

    /// [`Scripts::keep`] of a body whose SHA-1 is known.
    pub(crate) fn keep_named(&self, sha: String, body: &Bytes) -> Option<String> {
        let mut kept = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if kept.bodies.contains_key(&sha) {
            return Some(sha);
        }
        if kept.bodies.len() >= SCRIPTS_MAX || kept.bytes + body.len() > SCRIPT_BYTES_MAX {
            return None;
        }
        kept.bytes += body.len();
        kept.bodies
            .insert(sha.clone(), Bytes::copy_from_slice(body));
        Some(sha)
    }

    pub(crate) fn get(&self, sha: &str) -> Option<Bytes> {
        let kept = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        kept.bodies.get(sha).cloned()
    }

    fn flush(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Kept::default();
    }
}

/// SCRIPT LOAD / EXISTS / FLUSH / KILL / HELP.
pub(crate) fn script(session: &mut Session, arguments: &[Bytes]) -> Step {
    let scripts = &session.shared.scripts;
    let subcommand = lowercase(&arguments[0]);
    let rest = &arguments[1..];
    match (subcommand.as_str(), rest) {
        ("load", [body]) => match run::check_compiles(&sha1_hex(body), body) {
            Err(refused) => refused,
            Ok(()) => match scripts.keep(body) {
                Some(sha) => Reply::text(&sha),
                None => Reply::error(format!(
                    "ERR the script cache is full ({SCRIPTS_MAX} scripts or {SCRIPT_BYTES_MAX} bytes); SCRIPT FLUSH empties it"
                )),
            },
        },
        ("load", _) => Reply::error(SYNTAX_ERROR),
        ("exists", shas) if !shas.is_empty() => Reply::Array(
            shas.iter()
                .map(|sha| {
                    let sha = lowercase(sha);
                    Reply::Integer(i64::from(scripts.get(&sha).is_some()))
                })
                .collect(),
        ),
        ("flush", []) => {
            scripts.flush();
            Reply::ok()
        }
        ("flush", [mode]) if ["async", "sync"].contains(&lowercase(mode).as_str()) => {
            scripts.flush();
            Reply::ok()
        }
        ("flush", _) => Reply::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
        ("kill", []) => Reply::error("NOTBUSY No scripts in execution right now."),
        ("help", []) => Reply::Array(
            [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "FLUSH [ASYNC|SYNC]",
                "KILL",
                "LOAD <script>",
                "HELP",
            ]
            .iter()
            .map(|line| Reply::Status((*line).into()))
            .collect(),
        ),
        _ => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SCRIPT HELP.",
            crate::commands::printable(&arguments[0], 128)
        )),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_named_by_their_sha1() {
        // The SHA-1 every Redis client computes for this body (redis-py's Script.sha).
        assert_eq!(
            sha1_hex(b"return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
        let scripts = Scripts::default();
        let body = Bytes::from_static(b"return 1");
        let sha = scripts.keep(&body).unwrap();
        assert_eq!(scripts.get(&sha), Some(body));
        scripts.flush();
        assert_eq!(scripts.get(&sha), None);
    }
}
