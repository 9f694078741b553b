//! MONITOR: every command the listener's clients send, as a line to each connection that
//! asked, in Redis's form: `+1339518083.107412 [0 127.0.0.1:60866] "set" "x" "6"`.
//!
//! Only read while some connection monitors: until then a command costs one relaxed atomic
//! load here. Each monitor has a bounded queue of lines ([`LINES_MAX`]); a monitor that does
//! not keep up is dropped (its connection closes), as Redis closes a client over its output
//! buffer limit, so a slow `redis-cli monitor` cannot hold the broker's memory.
//!
//! As Redis does: the commands of administration (the table's `admin` flag: MONITOR itself,
//! CONFIG, …) are not shown, the secrets of AUTH and HELLO … AUTH are shown as
//! `(redacted)`, and the commands a script runs follow its EVAL as `[0 lua]` lines. Unlike
//! Redis, a line is made when the command is run, before its reply.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

/// Lines one monitor may have waiting before it is dropped.
pub(crate) const LINES_MAX: usize = 10_000;

/// The connections monitoring, by connection id.
#[derive(Default)]
pub(crate) struct Monitors {
    watching: AtomicUsize,
    feeds: Mutex<HashMap<u64, mpsc::Sender<Bytes>>>,
}

impl Monitors {
    /// Starts feeding connection `id`; its lines arrive on the receiver (closed when it is
    /// dropped for falling behind).
    pub(crate) fn watch(&self, id: u64) -> mpsc::Receiver<Bytes> {
        let (sender, receiver) = mpsc::channel(LINES_MAX);
        let mut feeds = self.lock();
        feeds.insert(id, sender);
        self.watching.store(feeds.len(), Ordering::Relaxed);
        receiver
    }

    /// Stops feeding connection `id` (RESET, or it closed).
    pub(crate) fn unwatch(&self, id: u64) {
        let mut feeds = self.lock();
        if feeds.remove(&id).is_some() {
            self.watching.store(feeds.len(), Ordering::Relaxed);
        }
    }

    /// Whether any connection monitors (checked before a line is made).
    pub(crate) fn is_watched(&self) -> bool {
        self.watching.load(Ordering::Relaxed) > 0
    }

    /// Hands the line of `arguments` (a command, its name first) sent by `client` (an
    /// address, or `lua` for a script's command) to every monitor; a monitor whose queue is
    /// full is dropped.
    pub(crate) fn feed(&self, client: impl std::fmt::Display, arguments: &[Bytes], admin: bool) {
        if admin || !self.is_watched() {
            return;
        }
        let line = line(SystemTime::now(), &client.to_string(), arguments);
        let mut feeds = self.lock();
        feeds.retain(|_, feed| feed.try_send(line.clone()).is_ok());
        self.watching.store(feeds.len(), Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::Sender<Bytes>>> {
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One monitor line, as a status reply: the time in seconds with microseconds, the
/// database (always 0) and the client, then each argument quoted.
pub(crate) fn line(at: SystemTime, client: &str, arguments: &[Bytes]) -> Bytes {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut text =
        BytesMut::with_capacity(48 + arguments.iter().map(|a| a.len() + 3).sum::<usize>());
    text.put_slice(
        format!(
            "+{}.{:06} [0 {client}]",
            since.as_secs(),
            since.subsec_micros()
        )
        .as_bytes(),
    );
    for (index, argument) in arguments.iter().enumerate() {
        text.put_u8(b' ');
        if is_secret(arguments, index) {
            text.put_slice(b"\"(redacted)\"");
        } else {
            quoted(argument, &mut text);
        }
    }
    text.put_slice(b"\r\n");
    text.freeze()
}

/// Whether argument `index` of a command is a secret: AUTH's arguments, and the user name
/// and password after HELLO's AUTH (what follows them, SETNAME, is shown).
fn is_secret(arguments: &[Bytes], index: usize) -> bool {
    let name = &arguments[0];
    if name.eq_ignore_ascii_case(b"auth") {
        return index >= 1;
    }
    name.eq_ignore_ascii_case(b"hello")
        && arguments
            .iter()
            .position(|argument| argument.eq_ignore_ascii_case(b"auth"))
            .is_some_and(|at| index == at + 1 || index == at + 2)
}

/// `bytes` in double quotes, escaped as Redis's `sdscatrepr` does: `\\`, `\"`, `\n`, `\r`,
/// `\t`, `\a`, `\b`, printable ASCII as it is, any other byte as `\xhh`.
fn quoted(bytes: &[u8], text: &mut BytesMut) {
    text.put_u8(b'"');
    for &byte in bytes {
        match byte {
            b'\\' => text.put_slice(b"\\\\"),
            b'"' => text.put_slice(b"\\\""),
            b'\n' => text.put_slice(b"\\n"),
            b'\r' => text.put_slice(b"\\r"),
            b'\t' => text.put_slice(b"\\t"),
            0x07 => text.put_slice(b"\\a"),
            0x08 => text.put_slice(b"\\b"),
            0x20..=0x7e => text.put_u8(byte),
            _ => text.put_slice(format!("\\x{byte:02x}").as_bytes()),
        }
    }
    text.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn words(words: &[&[u8]]) -> Vec<Bytes> {
        words
            .iter()
            .map(|word| Bytes::copy_from_slice(word))
            .collect()
    }

    #[test]
    fn a_line_is_redis_s_time_client_and_quoted_arguments() {
        let at = UNIX_EPOCH + Duration::from_micros(1_339_518_083_107_412);
        let line = line(at, "127.0.0.1:60866", &words(&[b"set", b"x", b"6"]));
        assert_eq!(
            &line[..],
            b"+1339518083.107412 [0 127.0.0.1:60866] \"set\" \"x\" \"6\"\r\n"
        );
    }

    #[test]
    fn arguments_are_escaped_as_sdscatrepr_does() {
        let at = UNIX_EPOCH + Duration::from_micros(5);
        let line = line(
            at,
            "lua",
            &words(&[b"set", b"a\"b\\c", b"\n\r\t\x07\x08\x00\xff~ "]),
        );
        assert_eq!(
            &line[..],
            &b"+0.000005 [0 lua] \"set\" \"a\\\"b\\\\c\" \"\\n\\r\\t\\a\\b\\x00\\xff~ \"\r\n"[..]
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let at = UNIX_EPOCH;
        let auth = line(at, "c", &words(&[b"AUTH", b"user", b"secret"]));
        assert_eq!(
            &auth[..],
            b"+0.000000 [0 c] \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"
        );
        let hello = line(
            at,
            "c",
            &words(&[b"HELLO", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"]),
        );
        assert_eq!(
            &hello[..],
            &b"+0.000000 [0 c] \"HELLO\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\" \"SETNAME\" \"n\"\r\n"[..]
        );
        let plain = line(at, "c", &words(&[b"HELLO", b"3"]));
        assert_eq!(&plain[..], b"+0.000000 [0 c] \"HELLO\" \"3\"\r\n");
    }

    #[test]
    fn a_monitor_that_falls_behind_is_dropped_and_the_others_fed() {
        let monitors = Monitors::default();
        let client = "127.0.0.1:1";
        assert!(!monitors.is_watched());
        let mut slow = monitors.watch(1);
        let mut quick = monitors.watch(2);
        for _ in 0..LINES_MAX {
            monitors.feed(client, &words(&[b"ping"]), false);
            quick.try_recv().unwrap();
        }
        assert!(monitors.is_watched());
        monitors.feed(client, &words(&[b"ping"]), false);
        assert!(quick.try_recv().is_ok(), "the quick one is fed");
        // The slow one has its LINES_MAX lines, then sees its feed closed.
        for _ in 0..LINES_MAX {
            slow.try_recv().unwrap();
        }
        assert!(matches!(
            slow.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        monitors.feed(client, &words(&[b"config"]), true);
        assert!(quick.try_recv().is_err(), "administration is not shown");
        monitors.unwatch(2);
        assert!(!monitors.is_watched());
    }
}
