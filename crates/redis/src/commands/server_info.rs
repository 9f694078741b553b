//! INFO and CONFIG: what dashboards, exporters and client libraries ask a server about
//! itself. Every field is what Omnibus does or has (its memory and CPU from `/proc`, the
//! door's counters, the keyspace's sizes), written as Redis names it; replication is a lone
//! master's. CONFIG GET answers a fixed table of the parameters clients and tools read
//! (`maxmemory-policy`, `appendfsync`, `databases`, …) with Omnibus's actual behaviour;
//! CONFIG SET changes the keyspace notifications, the slow log and the compact encodings'
//! tuning (`tuning.rs`); the rest is refused (Omnibus is configured by its file and flags,
//! docs/operations.md).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use omnibus_engine::keys::glob_match;
use omnibus_engine::metrics::{process_resources, Door, ProcessResources};

use super::arguments::{lowercase, printable};
use super::connection::REDIS_VERSION;
use crate::codec::Reply;
use crate::session::{Session, Step};

/// The sections INFO answers, in Redis's order: all of them for `INFO all` / `everything`,
/// all but `commandstats` and `latencystats` for `INFO` / `INFO default` (as Redis).
const SECTIONS: [&str; 11] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "commandstats",
    "errorstats",
    "latencystats",
    "keyspace",
];

/// `INFO [section ...]`.
pub(super) fn info(session: &Session, arguments: &[Bytes]) -> Step {
    let wanted: Vec<String> = arguments.iter().map(|a| lowercase(a)).collect();
    let all = wanted.iter().any(|w| w == "all" || w == "everything");
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let sections: Vec<&str> = SECTIONS
        .into_iter()
        .filter(|section| {
            let extra = matches!(*section, "commandstats" | "latencystats");
            all || default && !extra || wanted.iter().any(|w| w == section)
        })
        .collect();
    // Memory and CPU both come from /proc: read once for the whole reply.
    let resources = sections
        .iter()
        .any(|section| matches!(*section, "memory" | "cpu"))
        .then(process_resources)
        .unwrap_or_default();
    let mut text = String::new();
    for section in sections {
        write_section(session, section, &resources, &mut text);
        text.push_str("\r\n");
    }
    Reply::bulk(text).into()
}

fn write_section(
    session: &Session,
    section: &str,
    resources: &ProcessResources,
    text: &mut String,
) {
    let shared = &session.shared;
    let uptime = shared.started.elapsed().as_secs();
    match section {
        "server" => {
            let now_micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            let _ = write!(
                text,
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\n\
                 redis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\n\
                 arch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\n\
                 process_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{now_micros}\r\n\
                 uptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\n\
                 executable:omnibus\r\nconfig_file:\r\nio_threads_active:0\r\n\
                 omnibus_version:{}\r\n",
                std::env::consts::OS,
                std::process::id(),
                shared.run_id,
                shared.tcp_port,
                uptime / 86_400,
                env!("CARGO_PKG_VERSION"),
            );
        }
        "clients" => {
            let _ = write!(
                text,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n\
                 tracking_clients:{}\r\n",
                shared.clients.len(),
                shared.config.connections_max,
                shared.blocked.load(Ordering::Relaxed),
                shared.tracking.counts().0,
            );
        }
        "memory" => {
            let used = resources.resident_bytes.unwrap_or(0);
            let peak = resources.peak_resident_bytes.unwrap_or(used).max(used);
            let system = resources.system_memory_bytes.unwrap_or(0);
            let _ = write!(
                text,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\n\
                 used_memory_rss:{used}\r\nused_memory_rss_human:{}\r\n\
                 used_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\n\
                 total_system_memory:{system}\r\ntotal_system_memory_human:{}\r\n\
                 maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
                 mem_fragmentation_ratio:1.00\r\nmem_allocator:mimalloc\r\n",
                human(used),
                human(used),
                human(peak),
                human(system),
            );
        }
        "persistence" => {
            // Every acknowledged write is on disk already: the last save is now (LASTSAVE).
            let now_unix = unix_seconds();
            let _ = write!(
                text,
                "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\n\
                 rdb_bgsave_in_progress:0\r\nrdb_last_save_time:{now_unix}\r\n\
                 rdb_last_bgsave_status:ok\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\n\
                 aof_rewrite_scheduled:0\r\naof_last_bgrewrite_status:ok\r\n\
                 aof_last_write_status:ok\r\naof_fsync:always\r\n"
            );
        }
        "stats" => {
            let traffic = shared.engine.metrics().door(Door::Redis).snapshot();
            let traffic = shared.command_stats.since_reset(traffic);
            let (channels, patterns, shards) = shared.pubsub.counts();
            let (_, tracked_keys, tracked_items, tracked_prefixes) = shared.tracking.counts();
            let _ = write!(
                text,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 rejected_connections:{}\r\nexpired_subkeys:{}\r\nexpired_keys:{}\r\n\
                 evicted_keys:0\r\n\
                 pubsub_channels:{channels}\r\n\
                 pubsub_patterns:{patterns}\r\npubsubshard_channels:{shards}\r\n\
                 total_error_replies:{}\r\ntracking_total_keys:{tracked_keys}\r\n\
                 tracking_total_items:{tracked_items}\r\n\
                 tracking_total_prefixes:{tracked_prefixes}\r\n",
                traffic.connections_opened,
                traffic.requests,
                traffic.connections_refused,
                shared.expired_subkeys.load(Ordering::Relaxed),
                shared.expired_keys.load(Ordering::Relaxed),
                traffic.errors,
            );
        }
        "commandstats" => shared.command_stats.write_commands(text),
        "errorstats" => shared.command_stats.write_errors(text),
        "latencystats" => shared.command_stats.write_latencies(text),
        "replication" => {
            let _ = write!(
                text,
                "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\
                 master_failover_state:no-failover\r\nmaster_replid:{}\r\n\
                 master_replid2:0000000000000000000000000000000000000000\r\n\
                 master_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n\
                 repl_backlog_size:0\r\nrepl_backlog_first_byte_offset:0\r\n\
                 repl_backlog_histlen:0\r\n",
                shared.run_id,
            );
        }
        "cpu" => {
            let _ = write!(
                text,
                "# CPU\r\nused_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\n\
                 used_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n",
                resources.cpu_system_seconds.unwrap_or(0.0),
                resources.cpu_user_seconds.unwrap_or(0.0),
            );
        }
        "keyspace" => {
            text.push_str("# Keyspace\r\n");
            // Stream keys count, as in Redis's DBSIZE, and those with a deadline expire.
            let keys = session.keys.len() + shared.engine.stream_count();
            if keys > 0 {
                let _ = write!(
                    text,
                    "db0:keys={keys},expires={},avg_ttl=0,subexpiry={}\r\n",
                    session.keys.expiring() + shared.streams.deadlines().len(),
                    session.keys.hashes_with_field_deadlines(),
                );
            }
        }
        _ => {}
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Bytes as Redis's `*_human` fields write them (`1.50M`).
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

/// The parameters CONFIG GET answers: (name, value), every value what Omnibus does.
fn parameters(session: &Session) -> Vec<(&'static str, String)> {
    let config = &session.shared.config;
    let mut parameters = vec![
        ("appendfsync", "always".into()),
        ("appendonly", "yes".into()),
        ("bind", session.shared.bind.clone()),
        ("cluster-enabled", "no".into()),
        ("databases", "1".into()),
        (
            "dir",
            session.shared.engine.data_dir().display().to_string(),
        ),
        ("io-threads", config.io_threads.max(1).to_string()),
        ("maxclients", config.connections_max.to_string()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        (
            "notify-keyspace-events",
            session.shared.notifications.text(),
        ),
        ("port", session.shared.tcp_port.to_string()),
        ("proto-max-bulk-len", config.bulk_bytes_max.to_string()),
        // No passwords yet (AUTH): the default user takes any.
        ("requirepass", String::new()),
        ("save", String::new()),
        (
            "slowlog-log-slower-than",
            session.shared.slowlog.threshold_us().to_string(),
        ),
        (
            "slowlog-max-len",
            session.shared.slowlog.max_len().to_string(),
        ),
        ("timeout", "0".into()),
        (
            "tracking-table-max-keys",
            session.shared.tracking.keys_max_set().to_string(),
        ),
    ];
    parameters.extend(super::tuning::parameters(session));
    parameters
}

/// A change CONFIG SET makes, once every pair is checked.
enum Setting<'a> {
    Notifications(&'a Bytes),
    SlowerThan(i64),
    SlowLogLength(usize),
    Tuning(super::tuning::Change),
    TrackedKeysMax(usize),
}

/// `CONFIG SET name value [name value …]`, all or nothing, as in Redis. These change
/// while running: `notify-keyspace-events`, the slow log's two and the compact encodings'
/// (`tuning.rs`). The others of
/// [`parameters`] take only the value Omnibus has (so a script making sure of `appendfsync
/// always` or `save ""` passes) and refuse another: Omnibus is configured by its file and
/// flags.
fn config_set(session: &Session, pairs: &[Bytes]) -> Reply {
    let current = parameters(session);
    let mut named: Vec<String> = Vec::new();
    let mut settings = Vec::new();
    for pair in pairs.chunks(2) {
        let (name, value) = (lowercase(&pair[0]), &pair[1]);
        let failed = |why: &str| {
            Reply::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
                printable(&pair[0], 128)
            ))
        };
        if named.contains(&name) {
            return failed("duplicate parameter");
        }
        let number = |min: i64| match std::str::from_utf8(value).ok().map(str::parse::<i64>) {
            Some(Ok(number)) if number >= min => Ok(number),
            Some(Ok(_)) => Err(failed(&format!(
                "argument must be between {min} and {} inclusive",
                i64::MAX
            ))),
            _ => Err(failed("argument couldn't be parsed into an integer")),
        };
        let setting = match name.as_str() {
            "notify-keyspace-events" => {
                let parsed = crate::notify::parse(&String::from_utf8_lossy(value));
                if let Err(why) = parsed {
                    return failed(&why);
                }
                Setting::Notifications(value)
            }
            "slowlog-log-slower-than" => match number(-1) {
                Ok(micros) => Setting::SlowerThan(micros),
                Err(refusal) => return refusal,
            },
            "tracking-table-max-keys" => match number(0) {
                Ok(max) => Setting::TrackedKeysMax(usize::try_from(max).unwrap_or(usize::MAX)),
                Err(refusal) => return refusal,
            },
            "slowlog-max-len" => match number(0) {
                Ok(length) => Setting::SlowLogLength(usize::try_from(length).unwrap_or(usize::MAX)),
                Err(refusal) => return refusal,
            },
            _ => match super::tuning::parse(&name, value) {
                Some(Ok(change)) => Setting::Tuning(change),
                Some(Err(why)) => return failed(&why),
                None => {
                    let kept = current.iter().any(|(parameter, now)| {
                        *parameter == name && now.as_bytes().eq_ignore_ascii_case(value)
                    });
                    if !kept {
                        // In Redis's form for a parameter it will not change, which clients
                        // and tests match on ("CONFIG SET failed").
                        return failed(
                            "not supported by Omnibus: set in the broker's configuration file \
                             or flags",
                        );
                    }
                    named.push(name);
                    continue;
                }
            },
        };
        named.push(name);
        settings.push(setting);
    }
    for setting in settings {
        match setting {
            Setting::Notifications(value) => {
                // Checked above: cannot fail now.
                let _ = session.shared.notifications.set(value);
            }
            Setting::SlowerThan(micros) => session.shared.slowlog.set_threshold_us(micros),
            Setting::SlowLogLength(length) => session.shared.slowlog.set_max_len(length),
            Setting::Tuning(change) => super::tuning::apply(session, change),
            Setting::TrackedKeysMax(max) => session.shared.tracking.set_keys_max(max),
        }
    }
    Reply::ok()
}

/// `CONFIG GET pattern [pattern ...]`, `CONFIG SET` (see [`config_set`]), `CONFIG RESETSTAT`,
/// `CONFIG REWRITE`, `CONFIG HELP`.
pub(super) fn config(session: &Session, arguments: &[Bytes]) -> Step {
    let subcommand = lowercase(&arguments[0]);
    match (subcommand.as_str(), &arguments[1..]) {
        ("get", patterns) if !patterns.is_empty() => {
            // Parameter names match without regard to case, as in Redis.
            let patterns: Vec<Vec<u8>> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
            let pairs = parameters(session)
                .into_iter()
                .filter(|(name, _)| patterns.iter().any(|p| glob_match(p, name.as_bytes())))
                .map(|(name, value)| (Reply::bulk(name), Reply::bulk(value)))
                .collect();
            Reply::Map(pairs).into()
        }
        ("set", pairs) if !pairs.is_empty() && pairs.len().is_multiple_of(2) => {
            config_set(session, pairs).into()
        }
        ("resetstat", []) => {
            let traffic = session.shared.engine.metrics().door(Door::Redis).snapshot();
            session.shared.command_stats.reset(traffic);
            session.shared.expired_keys.store(0, Ordering::Relaxed);
            session.shared.expired_subkeys.store(0, Ordering::Relaxed);
            Reply::ok().into()
        }
        ("rewrite", []) => Reply::error("ERR The server is running without a config file").into(),
        ("help", []) => super::help_reply(&[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value> [<directive> <value> ...]",
            "    notify-keyspace-events, the slow log's and the encodings' parameters change;",
            "    the others take only the value Omnibus has (its file and flags set them).",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Refused: there is no Redis config file.",
            "HELP",
            "    Print this help.",
        ])
        .into(),
        ("get" | "set" | "resetstat" | "rewrite" | "help", _) => Reply::error(format!(
            "ERR wrong number of arguments for 'config|{subcommand}' command"
        ))
        .into(),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            printable(&arguments[0], 128)
        ))
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes_read_as_redis_writes_them() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1536), "1.50K");
        assert_eq!(human(3 * 1024 * 1024), "3.00M");
        assert_eq!(human(5 * 1024 * 1024 * 1024), "5.00G");
    }
}
