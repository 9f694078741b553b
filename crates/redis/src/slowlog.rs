//! The slow log (SLOWLOG GET/LEN/RESET/HELP): the latest commands whose run took at least
//! `slowlog_log_slower_than_us`, newest first, at most `slowlog_max_len` of them, shaped as
//! Redis keeps them so tools that read it (redis-cli, RedisInsight, exporters) work.
//!
//! What is timed is what Redis times: the command's own run on the door's thread, not the
//! wait for its fsync (redis-server's `appendfsync always` fsyncs after the command too), nor
//! a blocked read's wait. EXEC is not logged (as in Redis: its commands are the work), and
//! the arguments of AUTH and of HELLO's AUTH are kept as `(redacted)`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::codec::Reply;

/// Arguments kept per entry (the last says how many more there were).
const ARGUMENTS_MAX: usize = 32;
/// Bytes kept per argument (the rest is counted).
const ARGUMENT_BYTES_MAX: usize = 128;

struct Entry {
    id: u64,
    unix_seconds: i64,
    micros: i64,
    arguments: Vec<Bytes>,
    client: String,
    name: Bytes,
}

#[derive(Default)]
struct Entries {
    next_id: u64,
    newest_first: VecDeque<Entry>,
}

pub(crate) struct SlowLog {
    /// Runs at least this long are logged; negative: none (Redis's convention). Both
    /// change while running (CONFIG SET).
    threshold_us: AtomicI64,
    max_len: AtomicUsize,
    entries: Mutex<Entries>,
}

impl SlowLog {
    pub(crate) fn new(threshold_us: i64, max_len: usize) -> SlowLog {
        SlowLog {
            threshold_us: AtomicI64::new(threshold_us),
            max_len: AtomicUsize::new(max_len),
            entries: Mutex::default(),
        }
    }

    pub(crate) fn threshold_us(&self) -> i64 {
        self.threshold_us.load(Ordering::Relaxed)
    }

    pub(crate) fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }

    /// CONFIG SET slowlog-log-slower-than: from the next command on.
    pub(crate) fn set_threshold_us(&self, threshold_us: i64) {
        self.threshold_us.store(threshold_us, Ordering::Relaxed);
    }

    /// CONFIG SET slowlog-max-len: the log is cut to it at the next entry, as in Redis.
    pub(crate) fn set_max_len(&self, max_len: usize) {
        self.max_len.store(max_len, Ordering::Relaxed);
    }

    /// Logs a command that ran for `elapsed` when that is long enough (cheap otherwise:
    /// one comparison).
    pub(crate) fn observe(
        &self,
        elapsed: Duration,
        arguments: &[Bytes],
        client: SocketAddr,
        name: Option<&Bytes>,
    ) {
        let threshold_us = self.threshold_us();
        if threshold_us < 0 {
            return;
        }
        let micros = i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX);
        if micros < threshold_us || arguments[0].eq_ignore_ascii_case(b"exec") {
            return;
        }
        let unix_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let id = entries.next_id;
        entries.next_id += 1;
        entries.newest_first.push_front(Entry {
            id,
            unix_seconds,
            micros,
            arguments: kept(arguments),
            client: client.to_string(),
            name: name.cloned().unwrap_or_default(),
        });
        let max_len = self.max_len();
        entries.newest_first.truncate(max_len);
    }

    /// SLOWLOG's answer for its arguments (after the name).
    pub(crate) fn command(&self, arguments: &[Bytes]) -> Reply {
        let word = |at: usize| arguments.get(at).map(|w| w.to_ascii_lowercase());
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match (word(0).as_deref(), arguments.len()) {
            (Some(b"help"), 1) => crate::commands::help_reply(&[
                "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
                "HELP",
                "    Prints this help.",
            ]),
            (Some(b"reset"), 1) => {
                entries.newest_first.clear();
                Reply::ok()
            }
            (Some(b"len"), 1) => Reply::Integer(entries.newest_first.len() as i64),
            (Some(b"get"), 1 | 2) => {
                let count = match arguments.get(1) {
                    None => 10,
                    Some(count) => match crate::commands::integer(count).ok() {
                        Some(-1) => usize::MAX,
                        Some(n) if n >= 0 => n as usize,
                        _ => {
                            return Reply::error("ERR count should be greater than or equal to -1")
                        }
                    },
                };
                Reply::Array(entries.newest_first.iter().take(count).map(entry).collect())
            }
            _ => Reply::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
                crate::commands::printable(arguments.first().map_or(&b""[..], |w| w), 128)
            )),
        }
    }
}

fn entry(entry: &Entry) -> Reply {
    Reply::Array(vec![
        Reply::Integer(entry.id as i64),
        Reply::Integer(entry.unix_seconds),
        Reply::Integer(entry.micros),
        Reply::Array(entry.arguments.iter().cloned().map(Reply::Bulk).collect()),
        Reply::text(&entry.client),
        Reply::Bulk(entry.name.clone()),
    ])
}

/// The arguments as an entry keeps them: at most [`ARGUMENTS_MAX`] (the last then counts the
/// rest), each cut at [`ARGUMENT_BYTES_MAX`] bytes with the rest counted, secrets redacted.
fn kept(arguments: &[Bytes]) -> Vec<Bytes> {
    let redacted_from = if arguments[0].eq_ignore_ascii_case(b"auth") {
        1
    } else if arguments[0].eq_ignore_ascii_case(b"hello") {
        // HELLO [protover [AUTH username password] [SETNAME name]]
        arguments
            .iter()
            .position(|w| w.eq_ignore_ascii_case(b"auth"))
            .map_or(usize::MAX, |at| at + 1)
    } else {
        usize::MAX
    };
    let shown = arguments.len().min(ARGUMENTS_MAX);
    (0..shown)
        .map(|at| {
            if shown != arguments.len() && at == shown - 1 {
                let more = arguments.len() - shown + 1;
                return Bytes::from(format!("... ({more} more arguments)"));
            }
            let argument = &arguments[at];
            let secret = at >= redacted_from && (redacted_from == 1 || at < redacted_from + 2);
            if secret {
                return Bytes::from_static(b"(redacted)");
            }
            if argument.len() > ARGUMENT_BYTES_MAX {
                let mut cut = argument[..ARGUMENT_BYTES_MAX].to_vec();
                let more = argument.len() - ARGUMENT_BYTES_MAX;
                cut.extend_from_slice(format!("... ({more} more bytes)").as_bytes());
                return Bytes::from(cut);
            }
            argument.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn long_commands_are_cut_and_secrets_redacted() {
        let mut many = words(&["RPUSH", "k"]);
        many.extend((0..40).map(|n| Bytes::from(n.to_string())));
        let kept_many = kept(&many);
        assert_eq!(kept_many.len(), 32);
        assert_eq!(kept_many[31], Bytes::from("... (11 more arguments)"));
        let long = vec![
            Bytes::from("SET"),
            Bytes::from("k"),
            Bytes::from(vec![b'v'; 200]),
        ];
        let cut = kept(&long);
        assert_eq!(cut[2].len(), 128 + "... (72 more bytes)".len());
        assert!(cut[2].ends_with(b"... (72 more bytes)"));
        assert_eq!(
            kept(&words(&["AUTH", "user", "pw"])),
            words(&["AUTH", "(redacted)", "(redacted)"])
        );
        assert_eq!(
            kept(&words(&["HELLO", "3", "AUTH", "u", "p", "SETNAME", "n"])),
            words(&[
                "HELLO",
                "3",
                "AUTH",
                "(redacted)",
                "(redacted)",
                "SETNAME",
                "n"
            ])
        );
    }

    #[test]
    fn the_log_keeps_the_newest_within_its_length() {
        let log = SlowLog::new(0, 2);
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        for n in 0..3 {
            log.observe(
                Duration::from_micros(n),
                &words(&["GET", &n.to_string()]),
                client,
                None,
            );
        }
        log.observe(Duration::from_micros(5), &words(&["EXEC"]), client, None);
        assert_eq!(log.command(&words(&["LEN"])), Reply::Integer(2));
        let Reply::Array(got) = log.command(&words(&["GET"])) else {
            panic!()
        };
        let ids: Vec<Reply> = got
            .iter()
            .map(|e| match e {
                Reply::Array(fields) => fields[0].clone(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(ids, vec![Reply::Integer(2), Reply::Integer(1)]);
        assert!(log.command(&words(&["GET", "-2"])).is_error());
        assert_eq!(log.command(&words(&["RESET"])), Reply::ok());
        assert_eq!(log.command(&words(&["LEN"])), Reply::Integer(0));
        let off = SlowLog::new(-1, 10);
        off.observe(Duration::from_secs(1), &words(&["KEYS", "*"]), client, None);
        assert_eq!(off.command(&words(&["LEN"])), Reply::Integer(0));
        let slow = SlowLog::new(10_000, 10);
        slow.observe(
            Duration::from_micros(9_999),
            &words(&["GET", "k"]),
            client,
            None,
        );
        assert_eq!(slow.command(&words(&["LEN"])), Reply::Integer(0));
    }
}
