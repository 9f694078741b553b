//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
//! [AUTH2 username password] [KEYS key …]: keys moved (or copied) out to another server that
//! speaks Redis — a redis-server, another Omnibus — as redis-server moves them: each key's
//! DUMP payload (`codec/rdb/`) sent as `RESTORE key ttl payload [REPLACE]` after `SELECT
//! db` (and `AUTH` when given), on one connection, and a key the target acknowledged deleted
//! here (unless COPY, or unless it was written meanwhile), durably, before `+OK`.
//!
//! The replies and refusals are redis-server's: `+NOKEY` when none of the keys exists,
//! `-IOERR error or timeout connecting to the client` (a host that does not resolve, no
//! answer in time) / `… writing to target instance` (a connection refused, as
//! redis-server finds it) / `… reading to target instance`, `-ERR Target instance replied with error: …` (the keys
//! the target took before its error are still deleted here, as redis-server does). One
//! connection per MIGRATE (redis-server keeps one cached for 10 s; that saves a connect, not
//! a round trip). A stream key goes with its consumer groups, as DUMP writes it
//! (`stream_dump.rs`): its payload is built when the migration runs, and the stream is
//! deleted here only if nothing was appended to it meanwhile (its writer checks).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::arguments::{integer, is, SYNTAX_ERROR};
use super::strings::now_ms;
use crate::codec::rdb;
use crate::codec::Reply;
use crate::server::Shared;
use crate::session::{Session, Step};
use crate::streams::change::Change;

/// The most one MIGRATE sends (every key's payload is built before the connection): a
/// bound on the memory it takes, 256 MiB.
const REQUEST_BYTES_MAX: usize = 256 * 1024 * 1024;

/// The longest reply line read from the target (a RESTORE, AUTH or SELECT answer is one
/// short line); past it the target is not answering as a Redis server does.
const LINE_BYTES_MAX: usize = 64 * 1024;

/// What MIGRATE sends and where.
struct Migration {
    host: String,
    port: Option<u16>,
    timeout: Duration,
    copy: bool,
    replace: bool,
    /// The AUTH (or AUTH username password) words, when given.
    auth: Option<Vec<Bytes>>,
    /// AUTH and SELECT, then one RESTORE per keyspace key; a stream key's RESTORE is added
    /// in its place when the migration runs.
    request: Vec<BytesMut>,
    /// The keys to send, in order.
    keys: Vec<Outgoing>,
}

/// A key MIGRATE sends.
#[derive(Clone)]
enum Outgoing {
    /// A keyspace key, with its version when it was read (a write since keeps it here).
    Key(Bytes, u64),
    /// A stream key; once its payload is built, the end of its log then (an append since
    /// keeps it here).
    Stream(String, Option<u64>),
}

pub(super) fn run(session: &mut Session, arguments: &[Bytes]) -> Step {
    match prepare(session, arguments) {
        Ok(Some(migration)) => {
            let (keys, shared) = (session.keys.clone(), session.shared.clone());
            Step::later(async move {
                match with_streams(migration, &shared).await {
                    Ok(Some(migration)) => migrate(migration, keys, shared).await,
                    Ok(None) => Reply::Status("NOKEY".into()),
                    Err(refusal) => refusal,
                }
            })
        }
        Ok(None) => Reply::Status("NOKEY".into()).into(),
        Err(refusal) => refusal.into(),
    }
}

/// The migration `arguments` ask for (`None`: none of the keys exists), read in
/// redis-server's order: the options, then the timeout and the database, then the keys.
fn prepare(session: &Session, arguments: &[Bytes]) -> Result<Option<Migration>, Reply> {
    let (mut copy, mut replace, mut auth) = (false, false, None);
    let mut named = &arguments[2..3];
    let mut at = 5;
    while at < arguments.len() {
        let word = &arguments[at];
        let more = arguments.len() - 1 - at;
        if is(word, "copy") {
            copy = true;
        } else if is(word, "replace") {
            replace = true;
        } else if is(word, "auth") && more >= 1 {
            auth = Some(vec![arguments[at + 1].clone()]);
            at += 1;
        } else if is(word, "auth2") && more >= 2 {
            auth = Some(arguments[at + 1..at + 3].to_vec());
            at += 2;
        } else if is(word, "keys") {
            if !arguments[2].is_empty() {
                return Err(Reply::error(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the \
                     empty string",
                ));
            }
            named = &arguments[at + 1..];
            break;
        } else {
            return Err(Reply::error(SYNTAX_ERROR));
        }
        at += 1;
    }
    let timeout = integer(&arguments[4])?;
    let database = integer(&arguments[3])?;
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let mut request = vec![BytesMut::new()];
    if let Some(auth) = &auth {
        let words = std::iter::once(Bytes::from_static(b"AUTH")).chain(auth.iter().cloned());
        command(&mut request[0], words.collect());
    }
    let select = Bytes::from(database.to_string());
    command(&mut request[0], vec![Bytes::from_static(b"SELECT"), select]);
    let mut keys = Vec::new();
    let now = now_ms();
    for key in named {
        if super::streams::is_stream(session, key) && session.keys.kind(key).is_none() {
            let name = super::streams::valid_stream_name(key)?;
            keys.push(Outgoing::Stream(name, None));
            request.push(BytesMut::new());
            continue;
        }
        // The version first: a write between the two reads leaves the key here (below).
        let Some(version) = session.keys.version(key) else {
            continue;
        };
        let Some((value, deadline)) = session.keys.whole(key) else {
            continue;
        };
        // The time left, at least 1 ms; 0: none.
        let ttl = deadline.map_or(0, |at| (at - now).max(1));
        let payload = Bytes::from(rdb::encode(&value));
        let ttl = Bytes::from(ttl.to_string());
        let mut words = vec![Bytes::from_static(b"RESTORE"), key.clone(), ttl, payload];
        if replace {
            words.push(Bytes::from_static(b"REPLACE"));
        }
        let mut restore = BytesMut::new();
        command(&mut restore, words);
        request.push(restore);
        keys.push(Outgoing::Key(key.clone(), version));
        too_big(&request)?;
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let port = std::str::from_utf8(&arguments[1])
        .ok()
        .and_then(|port| port.parse().ok());
    Ok(Some(Migration {
        host: String::from_utf8_lossy(&arguments[0]).into_owned(),
        port,
        timeout,
        copy,
        replace,
        auth,
        request,
        keys,
    }))
}

fn too_big(request: &[BytesMut]) -> Result<(), Reply> {
    if request.iter().map(BytesMut::len).sum::<usize>() > REQUEST_BYTES_MAX {
        return Err(Reply::error(format!(
            "ERR MIGRATE would send more than {REQUEST_BYTES_MAX} bytes; move fewer keys at a \
             time"
        )));
    }
    Ok(())
}

/// The migration with its stream keys' RESTOREs in place (a stream gone meanwhile is left
/// out); `None` when no key is left.
async fn with_streams(
    mut migration: Migration,
    shared: &Shared,
) -> Result<Option<Migration>, Reply> {
    let mut kept = Vec::with_capacity(migration.keys.len());
    let mut request = vec![std::mem::take(&mut migration.request[0])];
    let now = now_ms();
    for (outgoing, restore) in migration.keys.into_iter().zip(migration.request.drain(1..)) {
        let Outgoing::Stream(name, _) = &outgoing else {
            kept.push(outgoing);
            request.push(restore);
            continue;
        };
        let Some((value, end)) = super::stream_dump::snapshot(shared, name).await? else {
            continue;
        };
        let payload = rdb::encode_stream(&value);
        let deadline = shared.streams.deadlines().of(&shared.engine, name);
        let ttl = deadline.map_or(0, |at| (at - now).max(1));
        let key = Bytes::from(name.clone());
        let mut words = vec![Bytes::from_static(b"RESTORE"), key];
        words.extend([Bytes::from(ttl.to_string()), Bytes::from(payload)]);
        if migration.replace {
            words.push(Bytes::from_static(b"REPLACE"));
        }
        let mut restore = BytesMut::new();
        command(&mut restore, words);
        request.push(restore);
        too_big(&request)?;
        kept.push(Outgoing::Stream(name.clone(), Some(end)));
    }
    if kept.is_empty() {
        return Ok(None);
    }
    migration.keys = kept;
    migration.request = request;
    Ok(Some(migration))
}

/// One command as a client sends it: an array of bulk strings, written by the door's own
/// encoder.
fn command(out: &mut BytesMut, words: Vec<Bytes>) {
    let words = Reply::Array(words.into_iter().map(Reply::Bulk).collect());
    crate::codec::encode(&words, crate::codec::Protocol::Resp2, out);
}

/// Sends the migration and deletes here what the target took (unless COPY).
async fn migrate(
    migration: Migration,
    keys: std::sync::Arc<omnibus_engine::keys::Keyspace>,
    shared: std::sync::Arc<Shared>,
) -> Reply {
    let timeout = migration.timeout;
    // As redis-server words it: a name that does not resolve, or no answer in time, is
    // "connecting"; a connection refused (a port nothing listens on, or not a number, which
    // redis-server reads as 0) shows when it writes.
    let connecting = || Reply::error("IOERR error or timeout connecting to the client");
    let writing = || Reply::error("IOERR error or timeout writing to target instance");
    let resolved = tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((migration.host.as_str(), migration.port.unwrap_or(0))),
    )
    .await;
    let Some(address) = resolved
        .ok()
        .and_then(Result::ok)
        .and_then(|mut found| found.next())
    else {
        return connecting();
    };
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Err(_) => return connecting(),
        Ok(Err(_)) => return writing(),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let request: Vec<u8> = migration.request.concat();
    let written = tokio::time::timeout(timeout, writer.write_all(&request)).await;
    if !matches!(written, Ok(Ok(()))) {
        return writing();
    }
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    // AUTH's and SELECT's answers, then one per RESTORE. A key whose RESTORE the target
    // took is moved, even after another key's error; none is after AUTH or SELECT failed.
    let mut failed: Option<String> = None;
    let preamble = 1 + usize::from(migration.auth.is_some());
    let mut taken = Vec::new();
    let mut preamble_failed = false;
    for at in 0..preamble + migration.keys.len() {
        line.clear();
        let read = tokio::time::timeout(timeout, read_line(&mut reader, &mut line)).await;
        if !matches!(read, Ok(Ok(true))) {
            // The target stopped answering: what it took so far is still moved.
            return finish((&keys, &shared), taken, migration.copy, failed, true).await;
        }
        if line.first() == Some(&b'-') {
            failed.get_or_insert_with(|| String::from_utf8_lossy(&line[1..]).into_owned());
        } else if at >= preamble && !preamble_failed {
            taken.push(migration.keys[at - preamble].clone());
        }
        if at + 1 == preamble {
            preamble_failed = failed.is_some();
        }
    }
    finish((&keys, &shared), taken, migration.copy, failed, false).await
}

/// Deletes the keys the target took (unless `copy`), then answers: the target's first error,
/// or the read error, or `+OK`.
async fn finish(
    (keys, shared): (&omnibus_engine::keys::Keyspace, &Shared),
    taken: Vec<Outgoing>,
    copy: bool,
    failed: Option<String>,
    unread: bool,
) -> Reply {
    if !copy && !taken.is_empty() {
        let mut unchanged = Vec::new();
        for outgoing in taken {
            match outgoing {
                Outgoing::Key(key, version) => unchanged.push((key, version)),
                Outgoing::Stream(name, end) => {
                    let end = end.unwrap_or(u64::MAX);
                    let change = Change::DestroyIfUnchanged { end, event: "del" };
                    if let Ok(Reply::Error(error)) = shared.streams.submit(&name, change).await {
                        return Reply::Error(error);
                    }
                }
            }
        }
        let deleted = match keys.delete_unchanged(&unchanged) {
            Ok(durable) => durable.wait().await.map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = deleted {
            return Reply::error(format!("ERR {error}"));
        }
    }
    match (failed, unread) {
        (Some(error), _) => {
            Reply::error(format!("ERR Target instance replied with error: {error}"))
        }
        (None, true) => Reply::error("IOERR error or timeout reading to target instance"),
        (None, false) => Reply::ok(),
    }
}

/// One reply line without its CRLF; `false` at the end of the stream. Longer than
/// [`LINE_BYTES_MAX`]: an error.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(false);
        }
        match available.iter().position(|byte| *byte == b'\n') {
            Some(end) => {
                line.extend_from_slice(&available[..end]);
                reader.consume(end + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(true);
            }
            None => {
                let length = available.len();
                line.extend_from_slice(available);
                reader.consume(length);
            }
        }
        if line.len() > LINE_BYTES_MAX {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}
