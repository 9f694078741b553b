//! `omnibus queue create|list|info|pause|resume|purge|delete`.

use std::io::Write;

use clap::ValueEnum;
use clap::{Args, Subcommand};
use omnibus_engine::queue::{Backoff, Completions, ConsumerMode, Overflow, QueueSpec};

use crate::cli::client::Client;
use crate::cli::table::render_table;
use crate::cli::wire_jobs::QueueSummary;

/// The multiplier of `exponential:INITIAL_MS:MAX_MS` when none is given.
const BACKOFF_MULTIPLIER_DEFAULT: f64 = 2.0;

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Create a queue (and its dead-letter stream).
    Create(CreateArgs),
    /// List queues as a table.
    List,
    /// Show a queue's policies, waiting bytes, rates and job counts as JSON.
    Info { name: String },
    /// Stop handing out messages (enqueues are still accepted).
    Pause { name: String },
    /// Hand out messages again after a pause.
    Resume { name: String },
    /// Remove every waiting message.
    Purge { name: String },
    /// Delete a queue and its messages.
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// Deliveries of a message before it is dead-lettered [default: 5].
    #[arg(long, value_name = "N")]
    pub max_deliver: Option<u32>,
    /// Delay before a retry: fixed:MS or exponential:INITIAL_MS:MAX_MS[:MULTIPLIER]
    /// [default: exponential:1000:60000:2].
    #[arg(long, value_name = "POLICY", value_parser = parse_backoff)]
    pub backoff: Option<Backoff>,
    /// Spread retry delays down by up to this fraction, 0 to 1 [default: 0.2].
    #[arg(long, value_name = "F", value_parser = parse_jitter)]
    pub jitter: Option<f64>,
    /// How long a worker holds a message before it is redelivered [default: 30000].
    #[arg(long, value_name = "MS")]
    pub lease_ms: Option<u64>,
    /// Most unacknowledged messages one worker may hold [default: 1000].
    #[arg(long, value_name = "N")]
    pub prefetch: Option<usize>,
    /// Messages not delivered within this long expire.
    #[arg(long, value_name = "MS")]
    pub ttl_ms: Option<u64>,
    /// Stream receiving dead letters [default: NAME.dlq].
    #[arg(long, value_name = "STREAM")]
    pub dlq: Option<String>,
    /// Drop expired messages instead of dead-lettering them.
    #[arg(long)]
    pub drop_expired: bool,
    /// How workers share messages [default: shared].
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<ModeArg>,
    /// Most messages waiting in the queue.
    #[arg(long, value_name = "N")]
    pub max_length: Option<u64>,
    /// Most bytes of waiting messages (each its value alone): a number of bytes, or
    /// with a unit, e.g. 64MiB (KiB, MiB, GiB, TiB).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_bytes: Option<u64>,
    /// What an enqueue into a full queue does [default: reject-new].
    #[arg(long, value_enum, value_name = "POLICY")]
    pub overflow: Option<OverflowArg>,
    /// Window in which a repeated message id is not enqueued again [default: 120000].
    #[arg(long, value_name = "MS")]
    pub dedup_window_ms: Option<u64>,
    /// When a completion (an ack) is answered: after its fsync, or at once and committed
    /// with the next group commit (a broker crash can then re-run a just-completed job)
    /// [default: fsync].
    #[arg(long, value_enum, value_name = "WHEN")]
    pub completions: Option<CompletionsArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionsArg {
    Fsync,
    Batched,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Shared,
    Exclusive,
    KeyShared,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverflowArg {
    RejectNew,
    DropOldest,
    DeadLetterOldest,
    DeadLetterNew,
}

impl CreateArgs {
    fn into_spec(self) -> QueueSpec {
        QueueSpec {
            name: self.name,
            lease_ms: self.lease_ms,
            max_deliver: self.max_deliver,
            backoff: self.backoff,
            jitter: self.jitter,
            max_unacked_per_worker: self.prefetch,
            dead_letter: self.dlq,
            ttl_ms: self.ttl_ms,
            dead_letter_expired: self.drop_expired.then_some(false),
            mode: self.mode.map(|mode| match mode {
                ModeArg::Shared => ConsumerMode::Shared,
                ModeArg::Exclusive => ConsumerMode::Exclusive,
                ModeArg::KeyShared => ConsumerMode::KeyShared,
            }),
            max_length: self.max_length,
            max_bytes: self.max_bytes,
            overflow: self.overflow.map(|overflow| match overflow {
                OverflowArg::RejectNew => Overflow::RejectNew,
                OverflowArg::DropOldest => Overflow::DropOldest,
                OverflowArg::DeadLetterOldest => Overflow::DeadLetterOldest,
                OverflowArg::DeadLetterNew => Overflow::DeadLetterNew,
            }),
            dedup_window_ms: self.dedup_window_ms,
            completions: self.completions.map(|completions| match completions {
                CompletionsArg::Fsync => Completions::Fsync,
                CompletionsArg::Batched => Completions::Batched,
            }),
            // Transient queues are the AMQP door's (non-durable AMQP queues); the CLI makes
            // durable ones.
            durability: None,
        }
    }
}

fn parse_backoff(text: &str) -> Result<Backoff, String> {
    let usage =
        || format!("{text:?}: expected fixed:MS or exponential:INITIAL_MS:MAX_MS[:MULTIPLIER]");
    let parts: Vec<&str> = text.split(':').collect();
    let ms = |part: &str| part.parse::<u64>().map_err(|_| usage());
    match parts.as_slice() {
        ["fixed", delay] => Ok(Backoff::Fixed {
            delay_ms: ms(delay)?,
        }),
        ["exponential", initial, max, rest @ ..] if rest.len() <= 1 => {
            let (initial_ms, max_ms) = (ms(initial)?, ms(max)?);
            if max_ms < initial_ms {
                return Err(format!("{text:?}: MAX_MS is below INITIAL_MS"));
            }
            let multiplier = match rest.first() {
                None => BACKOFF_MULTIPLIER_DEFAULT,
                Some(part) => match part.parse::<f64>() {
                    Ok(value) if value.is_finite() && value >= 1.0 => value,
                    _ => return Err(format!("{text:?}: MULTIPLIER must be a number ≥ 1")),
                },
            };
            Ok(Backoff::Exponential {
                initial_ms,
                max_ms,
                multiplier,
            })
        }
        _ => Err(usage()),
    }
}

/// A byte count: digits, optionally followed by a binary unit (`KiB`, `MiB`, `GiB`, `TiB`;
/// case-insensitive, spaces allowed before it). Zero is refused: leave the flag out for no limit.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let usage = || format!("{text:?}: expected bytes, e.g. 1048576 or 64MiB");
    let number: u64 = digits.parse().map_err(|_| usage())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(usage()),
    };
    match number.checked_mul(multiplier) {
        Some(0) => Err(format!("{text:?}: must be at least 1 byte")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?}: too large")),
    }
}

fn parse_jitter(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?}: expected a fraction from 0 to 1")),
    }
}

pub async fn run(client: &Client, command: QueueCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match command {
        QueueCommand::Create(args) => {
            let created = client.create_queue(&args.into_spec()).await?;
            writeln!(
                stdout,
                "created queue {} (lease {} ms, {} deliveries, dead letters to {})",
                created.name, created.lease_ms, created.max_deliver, created.dead_letter
            )?;
        }
        QueueCommand::List => {
            let queues = client.list_queues().await?;
            stdout.write_all(queue_table(&queues).as_bytes())?;
        }
        QueueCommand::Info { name } => {
            let info = client.queue_info_json(&name).await?;
            writeln!(stdout, "{}", serde_json::to_string_pretty(&info)?)?;
        }
        QueueCommand::Pause { name } => {
            client.queue_action(&name, "pause").await?;
            writeln!(stdout, "paused queue {name}")?;
        }
        QueueCommand::Resume { name } => {
            client.queue_action(&name, "resume").await?;
            writeln!(stdout, "resumed queue {name}")?;
        }
        QueueCommand::Purge { name } => {
            let purged = client.purge_queue(&name).await?;
            writeln!(stdout, "purged {purged} messages from queue {name}")?;
        }
        QueueCommand::Delete { name } => {
            client.delete_queue(&name).await?;
            writeln!(stdout, "deleted queue {name}")?;
        }
    }
    stdout.flush()?;
    Ok(())
}

fn queue_table(queues: &[QueueSummary]) -> String {
    let header = ["NAME", "READY", "DELAYED", "ACTIVE", "DEAD_LETTERS"].map(String::from);
    let rows = queues.iter().map(|queue| {
        vec![
            queue.name.clone(),
            queue.ready.to_string(),
            queue.delayed.to_string(),
            queue.leased.to_string(),
            queue.dead_letter_depth.to_string(),
        ]
    });
    render_table(&header, &[false, true, true, true, true], rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: QueueCommand,
    }

    fn create(args: &[&str]) -> Result<QueueSpec, clap::Error> {
        let all = ["queue", "create"].iter().chain(args);
        match Cli::try_parse_from(all)?.command {
            QueueCommand::Create(args) => Ok(args.into_spec()),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn mode_length_overflow_and_dedup_flags_reach_the_spec() {
        let spec = create(&[
            "orders",
            "--mode",
            "key-shared",
            "--max-length",
            "5",
            "--max-bytes",
            "64MiB",
            "--overflow",
            "dead-letter-oldest",
            "--dedup-window-ms",
            "1000",
        ])
        .unwrap();
        assert_eq!(spec.mode, Some(ConsumerMode::KeyShared));
        assert_eq!(spec.max_length, Some(5));
        assert_eq!(spec.max_bytes, Some(64 << 20));
        assert_eq!(spec.overflow, Some(Overflow::DeadLetterOldest));
        assert_eq!(spec.dedup_window_ms, Some(1_000));
        assert_eq!(spec.completions, None, "the engine's default");
        let batched = create(&["orders", "--completions", "batched"]).unwrap();
        assert_eq!(batched.completions, Some(Completions::Batched));
        assert!(create(&["orders", "--completions", "never"]).is_err());
        assert!(create(&["orders", "--overflow", "sometimes"]).is_err());
    }

    #[test]
    fn byte_counts_parse_with_or_without_a_unit() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("2 gib"), Ok(2 << 30));
        assert_eq!(parse_bytes("1TiB"), Ok(1 << 40));
        for bad in [
            "",
            "0",
            "0MiB",
            "MiB",
            "-5",
            "1.5MiB",
            "10MB",
            "7 bytes",
            "99999999TiB",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn backoff_policies_parse() {
        assert_eq!(
            parse_backoff("fixed:250"),
            Ok(Backoff::Fixed { delay_ms: 250 })
        );
        assert_eq!(
            parse_backoff("exponential:100:5000"),
            Ok(Backoff::Exponential {
                initial_ms: 100,
                max_ms: 5_000,
                multiplier: 2.0
            })
        );
        assert_eq!(
            parse_backoff("exponential:100:5000:1.5"),
            Ok(Backoff::Exponential {
                initial_ms: 100,
                max_ms: 5_000,
                multiplier: 1.5
            })
        );
        for bad in [
            "",
            "fixed",
            "fixed:-1",
            "fixed:1:2",
            "linear:5",
            "exponential:100",
            "exponential:100:50",
            "exponential:1:2:0.5",
            "exponential:1:2:NaN",
            "exponential:1:2:3:4",
        ] {
            assert!(parse_backoff(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn create_flags_map_onto_the_spec() {
        let spec = create(&[
            "jobs",
            "--max-deliver",
            "3",
            "--backoff",
            "fixed:10",
            "--jitter",
            "0",
            "--lease-ms",
            "1000",
            "--prefetch",
            "8",
            "--ttl-ms",
            "60000",
            "--dlq",
            "graveyard",
            "--drop-expired",
        ])
        .unwrap();
        assert_eq!(
            spec,
            QueueSpec {
                name: "jobs".into(),
                lease_ms: Some(1_000),
                max_deliver: Some(3),
                backoff: Some(Backoff::Fixed { delay_ms: 10 }),
                jitter: Some(0.0),
                max_unacked_per_worker: Some(8),
                dead_letter: Some("graveyard".into()),
                ttl_ms: Some(60_000),
                dead_letter_expired: Some(false),
                ..QueueSpec::default()
            }
        );
        // Without flags, every policy is left to the server's default.
        assert_eq!(
            create(&["plain"]).unwrap(),
            QueueSpec {
                name: "plain".into(),
                ..QueueSpec::default()
            }
        );
        assert!(create(&["q", "--jitter", "1.5"]).is_err());
        assert!(create(&["q", "--max-deliver", "-1"]).is_err());
    }

    #[test]
    fn the_queue_table_is_aligned() {
        let queue = |name: &str, ready, leased, dead| QueueSummary {
            name: name.into(),
            ready,
            leased,
            dead_letter_depth: dead,
            ..QueueSummary::default()
        };
        let table = queue_table(&[queue("emails", 1200, 4, 0), queue("a", 0, 0, 17)]);
        let expected = "\
NAME    READY  DELAYED  ACTIVE  DEAD_LETTERS
emails   1200        0       4             0
a           0        0       0            17
";
        assert_eq!(table, expected);
    }
}
