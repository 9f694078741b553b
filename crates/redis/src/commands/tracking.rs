//! Client-side caching from the sessions' side (`crate::tracking` keeps the table): CLIENT
//! TRACKING, CACHING, GETREDIR and TRACKINGINFO, with Redis 7.0's checks and words; and the
//! hooks around every command that remember what a tracking connection reads and invalidate
//! what a command changes.
//!
//! A read is remembered before it runs and again after: before, so a change made while it
//! runs is not missed; after, so a change that invalidated the key in between (whose new
//! value the read may or may not have seen) does not leave the key forgotten. A write
//! invalidates the keys whose version (what WATCH compares) it moved, once it is visible;
//! one answered later (a stream's writer, a blocking pop served later) invalidates every key
//! it names when it answers.

use bytes::Bytes;

use super::arguments::{is, SYNTAX_ERROR};
use super::{key_positions, table};
use crate::codec::Reply;
use crate::session::{Session, Step};
use crate::tracking::Options;

/// CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO (`subcommand` lowercase, `rest` after
/// it).
pub(super) fn client(session: &mut Session, subcommand: &str, rest: &[Bytes]) -> Reply {
    match subcommand {
        "tracking" => tracking(session, rest).unwrap_or_else(|error| error),
        "caching" => caching(session, rest).unwrap_or_else(|error| error),
        "getredir" => Reply::Integer(session.tracking.as_ref().map_or(-1, |o| o.redirect as i64)),
        _ => tracking_info(session),
    }
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p …] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
fn tracking(session: &mut Session, words: &[Bytes]) -> Result<Reply, Reply> {
    let mut options = Options::default();
    let mut at = 1;
    while at < words.len() {
        let word = &words[at];
        let more = at + 1 < words.len();
        if is(word, "redirect") && more {
            at += 1;
            if options.redirect != 0 {
                return Err(Reply::error(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = std::str::from_utf8(&words[at])
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or_else(|| Reply::error(super::NOT_AN_INTEGER))?;
            let found = u64::try_from(id)
                .ok()
                .filter(|id| *id != 0 && session.shared.clients.inbox(*id).is_some());
            options.redirect = found.ok_or_else(|| {
                Reply::error("ERR The client ID you want redirect to does not exist")
            })?;
        } else if is(word, "bcast") {
            options.bcast = true;
        } else if is(word, "optin") {
            options.optin = true;
        } else if is(word, "optout") {
            options.optout = true;
        } else if is(word, "noloop") {
            options.noloop = true;
        } else if is(word, "prefix") && more {
            at += 1;
            options.prefixes.push(words[at].clone());
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
        at += 1;
    }
    let tracking = &session.shared.tracking;
    if is(&words[0], "off") {
        if session.tracking.take().is_some() {
            tracking.disable(session.id);
        }
        session.caching = false;
        return Ok(Reply::ok());
    }
    if !is(&words[0], "on") {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    if !options.bcast && !options.prefixes.is_empty() {
        return Err(Reply::error(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if let Some(current) = &session.tracking {
        if current.bcast != options.bcast {
            return Err(Reply::error(
                "ERR You can't switch BCAST mode on/off before disabling tracking for this \
                 client, and then re-enabling it with a different mode.",
            ));
        }
    }
    if options.bcast && (options.optin || options.optout) {
        return Err(Reply::error(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if options.optin && options.optout {
        return Err(Reply::error(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if let Some(current) = &session.tracking {
        if options.optin && current.optout || options.optout && current.optin {
            return Err(Reply::error(
                "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this \
                 client, and then re-enabling it with a different mode.",
            ));
        }
    }
    let inbox = match &session.client {
        Some(client) => client.inbox.clone(),
        None => return Err(Reply::error("ERR the connection is closing")),
    };
    tracking
        .enable(session.id, inbox, options)
        .map_err(Reply::error)?;
    // The options as kept (BCAST prefixes added to those it had).
    session.tracking = tracking.options(session.id).map(|(options, _)| options);
    Ok(Reply::ok())
}

/// CLIENT CACHING YES|NO: whether the next command's reads are remembered (OPTIN / OPTOUT).
fn caching(session: &mut Session, words: &[Bytes]) -> Result<Reply, Reply> {
    let Some(options) = &session.tracking else {
        return Err(Reply::error(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with \
             OPTIN or OPTOUT mode enabled",
        ));
    };
    if words.len() != 1 {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    if is(&words[0], "yes") {
        if !options.optin {
            return Err(Reply::error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(&words[0], "no") {
        if !options.optout {
            return Err(Reply::error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(Reply::error(SYNTAX_ERROR));
    }
    session.caching = true;
    Ok(Reply::ok())
}

/// CLIENT TRACKINGINFO: flags, redirect, prefixes, as Redis answers them.
fn tracking_info(session: &Session) -> Reply {
    let state = session
        .tracking
        .as_ref()
        .and_then(|_| session.shared.tracking.options(session.id));
    let mut flags = Vec::new();
    let (redirect, prefixes) = match &state {
        None => {
            flags.push("off");
            (-1, Vec::new())
        }
        Some((options, broken)) => {
            flags.push("on");
            let caching = session.caching;
            for (set, flag) in [
                (options.bcast, "bcast"),
                (options.optin, "optin"),
                (options.optin && caching, "caching-yes"),
                (options.optout, "optout"),
                (options.optout && caching, "caching-no"),
                (options.noloop, "noloop"),
                (*broken, "broken_redirect"),
            ] {
                if set {
                    flags.push(flag);
                }
            }
            (options.redirect as i64, options.prefixes.clone())
        }
    };
    Reply::Map(vec![
        (
            Reply::text("flags"),
            Reply::Set(flags.into_iter().map(Reply::text).collect()),
        ),
        (Reply::text("redirect"), Reply::Integer(redirect)),
        (
            Reply::text("prefixes"),
            Reply::Array(prefixes.into_iter().map(Reply::Bulk).collect()),
        ),
    ])
}

/// What a command does to the tracking table, decided before it runs.
pub(crate) enum Tracked {
    /// Its keys were remembered for this connection: again after it.
    Read(Vec<Bytes>),
    /// It may change these keys (their versions before it).
    Write(Vec<(Bytes, Option<u64>)>),
    /// It may change these keys, and no key was watched before it: any of them is
    /// invalidated if one is watched after (a read remembered while it ran).
    WriteUnwatched(Vec<Bytes>),
    /// FLUSHALL / FLUSHDB.
    Flush,
}

/// Whether this connection's reads are remembered now (default mode, and OPTIN/OPTOUT's
/// CLIENT CACHING).
fn remembers(session: &Session) -> bool {
    match &session.tracking {
        None => false,
        Some(options) if options.bcast => false,
        Some(options) => !(options.optin && !session.caching || options.optout && session.caching),
    }
}

/// Before command `name` runs: remembers its keys if it reads for a tracking connection, or
/// notes its keys' versions if it writes. `None` when no connection tracks (one atomic load).
pub(crate) fn before(session: &Session, name: &str, arguments: &[Bytes]) -> Option<Tracked> {
    let tracking = &session.shared.tracking;
    if !tracking.active() {
        return None;
    }
    // A script's or a transaction's commands are tracked one by one as they run.
    if matches!(
        name,
        "exec" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    ) {
        return None;
    }
    if matches!(name, "flushall" | "flushdb") {
        return Some(Tracked::Flush);
    }
    let command = table::find(name)?;
    if command.flags.contains(&"readonly") && !command.flags.contains(&"pubsub") {
        if !remembers(session) {
            return None;
        }
        let keys = key_positions::keys_of(command, arguments);
        if keys.is_empty() {
            return None;
        }
        tracking.remember(&session.shared.clients, session.id, &keys);
        return Some(Tracked::Read(keys.into_iter().cloned().collect()));
    }
    if command.flags.contains(&"write") {
        let keys = key_positions::keys_of(command, arguments);
        if !tracking.watching() {
            return Some(Tracked::WriteUnwatched(keys.into_iter().cloned().collect()));
        }
        let versions = keys
            .into_iter()
            .map(|key| (key.clone(), session.keys.version(key)))
            .collect();
        return Some(Tracked::Write(versions));
    }
    None
}

/// After the command: remembers a read's keys again, or invalidates what a write changed.
pub(crate) fn after(session: &mut Session, tracked: Tracked, step: &mut Step) {
    let shared = &session.shared;
    match tracked {
        Tracked::Read(keys) => {
            let keys: Vec<&Bytes> = keys.iter().collect();
            shared.tracking.remember(&shared.clients, session.id, &keys);
        }
        Tracked::Flush => {
            if !step.reply.is_error() {
                shared.tracking.flush(&shared.clients);
            }
        }
        Tracked::WriteUnwatched(keys) => {
            if !step.reply.is_error() && step.later.is_none() && shared.tracking.watching() {
                invalidate(session, keys);
            } else if step.later.is_some() {
                let versions = keys.into_iter().map(|key| (key, None)).collect();
                after(session, Tracked::Write(versions), step);
            }
        }
        Tracked::Write(versions) => {
            if step.reply.is_error() {
                return;
            }
            let writer = session.id;
            if let Some(later) = step.later.take() {
                let shared = shared.clone();
                step.later = Some(Box::pin(async move {
                    let reply = later.await;
                    if !reply.is_error() {
                        let keys: Vec<Bytes> = versions.into_iter().map(|(key, _)| key).collect();
                        shared.tracking.invalidate(&shared.clients, writer, &keys);
                    }
                    reply
                }));
                return;
            }
            let changed: Vec<Bytes> = versions
                .into_iter()
                .filter(|(key, before)| {
                    let now = session.keys.version(key);
                    now != *before || now.is_none() && super::is_stream(session, key)
                })
                .map(|(key, _)| key)
                .collect();
            if !changed.is_empty() {
                invalidate(session, changed);
            }
        }
    }
}

/// Starts holding BCAST's messages for a transaction or a script (`true`), unless an outer
/// one already holds them (EXEC running EVAL): see [`send_held_broadcasts`].
pub(crate) fn hold_broadcasts(session: &mut Session) -> bool {
    if session.broadcasts_held.is_some() {
        return false;
    }
    session.broadcasts_held = Some(Vec::new());
    true
}

/// Sends BCAST's messages for what a transaction or a script changed, once it has run:
/// one per prefix, each key once, as Redis sends them after the command.
pub(crate) fn send_held_broadcasts(session: &mut Session, held: bool) {
    if !held {
        return;
    }
    let keys = session.broadcasts_held.take().unwrap_or_default();
    let shared = session.shared.clone();
    shared
        .tracking
        .broadcast(&shared.clients, session.id, &keys);
}

/// Invalidates what a command changed: at once for the connections that read the keys, and
/// for BCAST's prefixes at once too, or inside EXEC when the transaction has run
/// (`Session::broadcasts_held`).
fn invalidate(session: &mut Session, keys: Vec<Bytes>) {
    let shared = session.shared.clone();
    shared
        .tracking
        .invalidate_readers(&shared.clients, session.id, &keys);
    match &mut session.broadcasts_held {
        Some(held) => held.extend(keys),
        None => shared
            .tracking
            .broadcast(&shared.clients, session.id, &keys),
    }
}

/// The subcommands' arities: TRACKING and CACHING need a word, GETREDIR and TRACKINGINFO
/// none.
pub(super) fn arity_ok(subcommand: &str, rest: &[Bytes]) -> bool {
    match subcommand {
        "tracking" | "caching" => !rest.is_empty(),
        _ => rest.is_empty(),
    }
}
