//! `omnibus publish TARGET [VALUE|-]`: one record from the command line, or one record per
//! line of stdin sent in batches.
//!
//! Batches are sent one after another, never concurrently, so records land in the order of the
//! input lines. Reading stdin runs on its own thread one batch ahead, so reading the next batch
//! overlaps with waiting for the durable acknowledgement of the current one.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use base64::Engine as _;
use clap::Args;
use tokio::sync::mpsc;

use crate::cli::client::Client;
use crate::cli::lines::read_line_batches;
use crate::cli::progress::Progress;
use crate::cli::wire::{OutgoingRecord, Target};

/// Most records in one request; well under the server's per-request ceiling.
const BATCH_RECORDS_MAX: usize = 5_000;
/// Rough JSON framing per record (`{"value":""},`), so many tiny lines still cut batches.
const RECORD_OVERHEAD_BYTES: usize = 16;
/// Batches read ahead of the one being sent.
const READ_AHEAD_BATCHES: usize = 2;

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Stream name, or with --subject a subject the broker routes to the stream capturing it.
    pub target: String,
    /// The record's value; `-` or nothing reads stdin, one record per line.
    pub value: Option<String>,
    /// Record key (decides the partition unless --partition is given).
    #[arg(long)]
    pub key: Option<String>,
    /// A header as NAME=VALUE (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Partition to write to.
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
    /// TARGET is a subject rather than a stream name.
    #[arg(long)]
    pub subject: bool,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{text:?}: expected NAME=VALUE")),
    }
}

pub async fn run(client: &Client, args: PublishArgs) -> anyhow::Result<()> {
    let target = if args.subject {
        Target::Subject(args.target)
    } else {
        Target::Stream(args.target)
    };
    let template = OutgoingRecord {
        key: args.key,
        headers: args.headers.into_iter().collect::<BTreeMap<_, _>>(),
        partition: args.partition,
        ..OutgoingRecord::default()
    };
    match args.value.as_deref() {
        None | Some("-") => publish_stdin(client, &target, template).await,
        Some(value) => {
            let record = record_from_line(value.as_bytes(), &template);
            let positions = client.publish(&target, &[record]).await?;
            let mut stdout = std::io::stdout().lock();
            for position in positions {
                writeln!(stdout, "{} {}", position.partition, position.offset)?;
            }
            stdout.flush()?;
            Ok(())
        }
    }
}

async fn publish_stdin(
    client: &Client,
    target: &Target,
    template: OutgoingRecord,
) -> anyhow::Result<()> {
    let (sender, mut receiver) = mpsc::channel(READ_AHEAD_BATCHES);
    // A plain thread, not the runtime's blocking pool: a read parked on a terminal's stdin
    // must not keep the runtime from shutting down after an error.
    // Someone typing records expects each line to go out when they press Enter, not after
    // 5,000 of them.
    let interactive = std::io::stdin().is_terminal();
    let batch_records_max = if interactive { 1 } else { BATCH_RECORDS_MAX };
    std::thread::spawn(move || {
        let stdin = std::io::stdin().lock();
        let outcome = read_batches(stdin, batch_records_max, &template, |batch| {
            sender.blocking_send(Ok(batch)).is_ok()
        });
        if let Err(error) = outcome {
            let _ = sender.blocking_send(Err(error));
        }
    });

    let started = Instant::now();
    // A bar redrawn under the line being typed would garble it.
    let progress = Progress::new("publishing", None, !interactive);
    let mut published: u64 = 0;
    while let Some(batch) = receiver.recv().await {
        let outcome = match batch {
            Ok(batch) => client
                .publish(target, &batch)
                .await
                .map(|_| batch.len() as u64)
                .map_err(anyhow::Error::from),
            Err(error) => Err(error),
        };
        match outcome {
            Ok(count) => {
                published += count;
                progress.add(count);
            }
            Err(error) => {
                progress.finish();
                // Every earlier batch is durably stored; say so, so a retry can skip them.
                if published > 0 {
                    eprintln!("published {published} records before the error");
                }
                return Err(error);
            }
        }
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "published {published} records in {seconds:.2} s ({:.0} records/s)",
        published as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// Lines of `input` as batches of items made from `template`; see [`read_line_batches`].
fn read_batches(
    input: impl BufRead,
    items_max: usize,
    template: &OutgoingRecord,
    send: impl FnMut(Vec<OutgoingRecord>) -> bool,
) -> anyhow::Result<()> {
    read_line_batches(
        input,
        items_max,
        RECORD_OVERHEAD_BYTES,
        |line| record_from_line(line, template),
        send,
    )
}

/// Text goes as `value`; bytes that are not UTF-8 go as `value_base64` so they arrive intact.
fn record_from_line(line: &[u8], template: &OutgoingRecord) -> OutgoingRecord {
    let mut record = template.clone();
    match std::str::from_utf8(line) {
        Ok(text) => record.value = Some(text.to_string()),
        Err(_) => {
            record.value_base64 = Some(base64::engine::general_purpose::STANDARD.encode(line))
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(input: &[u8]) -> Vec<Vec<OutgoingRecord>> {
        let mut batches = Vec::new();
        read_batches(
            input,
            BATCH_RECORDS_MAX,
            &OutgoingRecord::default(),
            |batch| {
                batches.push(batch);
                true
            },
        )
        .unwrap();
        batches
    }

    #[test]
    fn lines_lose_their_endings_and_a_last_line_needs_none() {
        let batches = values(b"a\r\nb\n\nc");
        let got: Vec<_> = batches[0]
            .iter()
            .map(|r| r.value.clone().unwrap())
            .collect();
        assert_eq!(got, ["a", "b", "", "c"]);
        assert!(values(b"").is_empty());
    }

    #[test]
    fn batches_are_cut_by_record_count() {
        let input: String = (0..12_001).map(|n| format!("{n}\n")).collect();
        let batches = values(input.as_bytes());
        let sizes: Vec<_> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [5_000, 5_000, 2_001]);
        assert_eq!(batches[2][2_000].value.as_deref(), Some("12000"));
    }

    #[test]
    fn batches_are_cut_by_bytes() {
        let line = "x".repeat(100_000);
        let input: String = (0..25).map(|_| format!("{line}\n")).collect();
        let sizes: Vec<_> = values(input.as_bytes()).iter().map(Vec::len).collect();
        assert_eq!(sizes, [11, 11, 3]);
    }

    #[test]
    fn binary_lines_travel_as_base64() {
        let batches = values(b"\xff\xfe\n");
        assert_eq!(batches[0][0].value, None);
        assert_eq!(batches[0][0].value_base64.as_deref(), Some("//4="));
    }

    #[test]
    fn headers_must_have_a_name() {
        assert_eq!(parse_header("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_header("=b").is_err());
        assert!(parse_header("ab").is_err());
    }
}
