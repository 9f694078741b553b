//! `omnibus consume STREAM`: print a stream's records, from every partition or one.
//!
//! One fetch task per partition pulls pages (in partition order) into a small bounded channel;
//! the printing loop writes them to a buffered stdout. With `--group`, a partition's offset is
//! committed only after its records have been flushed to stdout, so a consumer that dies (or
//! whose reader goes away) re-reads rather than skips: at-least-once.
//!
//! When to stop: `--count N` after exactly N records (long-polling as needed); `--follow`
//! never; otherwise at the high watermark each partition had when the command started.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use base64::Engine as _;
use clap::{Args, ValueEnum};
use omnibus_engine::OffsetCommit;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::cli::client::{Client, ClientError};
use crate::cli::progress::{stdout_is_terminal, Progress};
use crate::cli::time::parse_timestamp_ms;
use crate::cli::wire::{FetchParams, FetchedRecord};

/// Records asked for per fetch: large, so a big backlog comes back in few round trips.
const FETCH_RECORDS_MAX: usize = 10_000;
/// How long one fetch waits on the server for new records when we are waiting for more.
const LONG_POLL_WAIT_MS: u64 = 1_000;
/// Pages fetched ahead of the printer, across all partitions; bounds memory.
const PAGES_BUFFERED: usize = 4;
/// Fetches in flight at once, so a stream with thousands of partitions doesn't open
/// thousands of connections.
const FETCHES_CONCURRENT_MAX: usize = 16;
/// If a server answers an empty long poll faster than this, pause before asking again
/// instead of spinning.
const EMPTY_POLL_PAUSE_MS: u64 = 100;
/// Bytes asked for per fetch; the server's default (1 MiB) would cut pages of larger records
/// well below [`FETCH_RECORDS_MAX`]. The server clamps it to its own ceiling.
const FETCH_BYTES_MAX: usize = 16 * 1024 * 1024;
const STDOUT_BUFFER_BYTES: usize = 256 * 1024;

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    pub stream: String,
    /// Consumer group: start at its committed offsets and commit what was printed.
    #[arg(long)]
    pub group: Option<String>,
    /// Where to start (when the group has no committed offset): earliest, latest, an offset,
    /// an RFC 3339 time (2026-11-28T10:00:00Z) or @<epoch_ms>.
    #[arg(long, value_name = "WHERE", default_value = "earliest", value_parser = parse_start)]
    pub from: Start,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(long)]
    pub follow: bool,
    /// Stop after exactly this many records, waiting for them if needed.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Read only this partition.
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
    /// `value`: each record's value on a line; `json`: each record as one JSON line.
    #[arg(long, value_enum, default_value_t = Format::Value)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    Offset(u64),
    TimestampMs(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Value,
    Json,
}

fn parse_start(text: &str) -> Result<Start, String> {
    match text {
        "earliest" => Ok(Start::Earliest),
        "latest" => Ok(Start::Latest),
        _ if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) => text
            .parse()
            .map(Start::Offset)
            .map_err(|_| format!("offset {text} is too large")),
        _ => parse_timestamp_ms(text).map(Start::TimestampMs),
    }
}

/// What one partition's fetch task hands to the printer.
struct Page {
    partition: u32,
    records: Vec<FetchedRecord>,
}

/// A partition to read: where to start and, in bounded mode, where to stop (exclusive).
#[derive(Debug, Clone, Copy)]
struct Span {
    partition: u32,
    start: u64,
    end: Option<u64>,
}

pub async fn run(client: &Client, args: ConsumeArgs) -> anyhow::Result<()> {
    if args.count == Some(0) {
        return Ok(());
    }
    let spans = plan(client, &args).await?;
    let total = match args.count {
        Some(count) => Some(count),
        None if args.follow => None,
        None => Some(
            spans
                .iter()
                .map(|span| span.end.unwrap_or(span.start).saturating_sub(span.start))
                .sum(),
        ),
    };
    let progress = Progress::new("consuming", total, !stdout_is_terminal());

    let (sender, mut receiver) = mpsc::channel(PAGES_BUFFERED);
    let permits = Arc::new(Semaphore::new(FETCHES_CONCURRENT_MAX));
    let max_records = args.count.map_or(FETCH_RECORDS_MAX, |count| {
        count.min(FETCH_RECORDS_MAX as u64) as usize
    });
    // Dropping the set aborts fetches still parked in a long poll.
    let mut fetchers = JoinSet::new();
    for span in spans {
        let fetcher = Fetcher {
            client: client.clone(),
            stream: args.stream.clone(),
            max_records,
            permits: Arc::clone(&permits),
            sender: sender.clone(),
        };
        fetchers.spawn(fetcher.run(span));
    }
    drop(sender);

    let mut out = BufWriter::with_capacity(STDOUT_BUFFER_BYTES, std::io::stdout());
    let mut remaining = args.count;
    while let Some(page) = receiver.recv().await {
        let page = page?;
        let take = remaining.map_or(page.records.len(), |remaining| {
            page.records
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX))
        });
        let printed = &page.records[..take];
        for record in printed {
            write_record(&mut out, record, args.format)?;
        }
        out.flush()?;
        progress.add(take as u64);
        if let (Some(group), Some(last)) = (&args.group, printed.last()) {
            let commit = OffsetCommit {
                stream: args.stream.clone(),
                partition: page.partition,
                offset: last.offset + 1,
                metadata: String::new(),
            };
            client.commit_offsets(group, &[commit]).await?;
        }
        if let Some(remaining) = remaining.as_mut() {
            *remaining -= take as u64;
            if *remaining == 0 {
                break;
            }
        }
    }
    out.flush()?;
    progress.finish();
    fetchers.abort_all();
    Ok(())
}

/// Which partitions to read, from where, and (without --follow / --count) up to where.
async fn plan(client: &Client, args: &ConsumeArgs) -> anyhow::Result<Vec<Span>> {
    let info = client.stream_info(&args.stream).await?;
    let partitions: Vec<u32> = match args.partition {
        Some(partition) if partition >= info.partitions => bail!(
            "partition_not_found: stream {:?} has no partition {partition} (it has {})",
            args.stream,
            info.partitions
        ),
        Some(partition) => vec![partition],
        None => (0..info.partitions).collect(),
    };
    let committed: HashMap<u32, u64> = match &args.group {
        Some(group) => client
            .committed_offsets(group, &args.stream)
            .await?
            .into_iter()
            .filter(|committed| committed.stream == args.stream)
            .map(|committed| (committed.partition, committed.offset))
            .collect(),
        None => HashMap::new(),
    };
    let bounded = !args.follow && args.count.is_none();
    let high_watermarks: HashMap<u32, u64> = info
        .partition_info
        .iter()
        .map(|partition| (partition.partition, partition.high_watermark))
        .collect();

    let mut spans = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let start = match committed.get(&partition) {
            Some(offset) => *offset,
            None => resolve_start(client, &args.stream, partition, args.from).await?,
        };
        let end = match bounded {
            true => Some(high_watermarks.get(&partition).copied().unwrap_or(0)),
            false => None,
        };
        spans.push(Span {
            partition,
            start,
            end,
        });
    }
    Ok(spans)
}

async fn resolve_start(
    client: &Client,
    stream: &str,
    partition: u32,
    start: Start,
) -> Result<u64, ClientError> {
    match start {
        Start::Offset(offset) => Ok(offset),
        Start::Earliest => client.offset_at(stream, partition, "earliest").await,
        Start::Latest => client.offset_at(stream, partition, "latest").await,
        Start::TimestampMs(ms) => client.offset_at(stream, partition, &ms.to_string()).await,
    }
}

/// Pulls one partition's records into the printer's channel until its span ends.
struct Fetcher {
    client: Client,
    stream: String,
    max_records: usize,
    permits: Arc<Semaphore>,
    sender: mpsc::Sender<Result<Page, ClientError>>,
}

impl Fetcher {
    async fn run(self, span: Span) {
        if let Err(error) = self.fetch_span(span).await {
            // The printer may already be gone; then nobody needs the error.
            let _ = self.sender.send(Err(error)).await;
        }
    }

    async fn fetch_span(&self, span: Span) -> Result<(), ClientError> {
        let mut offset = span.start;
        loop {
            let want = match span.end {
                Some(end) if offset >= end => return Ok(()),
                Some(end) => (end - offset).min(self.max_records as u64) as usize,
                None => self.max_records,
            };
            // Up to the snapshot end, the records exist: no reason to wait for any.
            let wait_ms = if span.end.is_some() {
                0
            } else {
                LONG_POLL_WAIT_MS
            };
            let asked = Instant::now();
            let page = {
                let _permit = self.permits.acquire().await;
                let params = FetchParams {
                    offset,
                    max_records: want,
                    max_bytes: FETCH_BYTES_MAX,
                    wait_ms,
                };
                self.client
                    .fetch(&self.stream, span.partition, params)
                    .await
            };
            let page = match page {
                Ok(page) => page,
                Err(error) if error.code() == "offset_out_of_range" => {
                    offset = self.skip_removed(span.partition, offset, error).await?;
                    continue;
                }
                Err(error) => return Err(error),
            };

            let mut records = page.records;
            if let Some(end) = span.end {
                records.retain(|record| record.offset < end);
            }
            let next_offset = page
                .next_offset
                .max(records.last().map_or(offset, |record| record.offset + 1));
            let advanced = next_offset > offset;
            let empty = records.is_empty();
            if !empty {
                let page = Page {
                    partition: span.partition,
                    records,
                };
                if self.sender.send(Ok(page)).await.is_err() {
                    return Ok(());
                }
            }
            offset = next_offset;
            if empty && !advanced {
                if span.end.is_some() {
                    // Nothing left below the snapshot end (e.g. the records were removed);
                    // asking again would only spin.
                    return Ok(());
                }
                if asked.elapsed() < Duration::from_millis(EMPTY_POLL_PAUSE_MS) {
                    tokio::time::sleep(Duration::from_millis(EMPTY_POLL_PAUSE_MS)).await;
                }
            }
        }
    }

    /// Retention removed records we wanted: continue at the oldest one still there, and say
    /// so, since the output now has a hole.
    async fn skip_removed(
        &self,
        partition: u32,
        offset: u64,
        error: ClientError,
    ) -> Result<u64, ClientError> {
        let earliest = self
            .client
            .offset_at(&self.stream, partition, "earliest")
            .await?;
        if earliest <= offset {
            // Out of range at the top, not the bottom: nothing to skip to.
            return Err(error);
        }
        eprintln!(
            "warning: partition {partition}: offsets {offset}..{earliest} were removed by \
             retention; continuing at {earliest}"
        );
        Ok(earliest)
    }
}

fn write_record(
    out: &mut impl Write,
    record: &FetchedRecord,
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            // Through io::Error, so a closed stdout stays recognisable as a broken pipe.
            serde_json::to_writer(&mut *out, record).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
        Format::Value => {
            write_value(out, record)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// Text values print as they are; a value that is not UTF-8 prints as base64 (the server's
/// base64 may also carry text, which is decoded so it prints as text).
fn write_value(out: &mut impl Write, record: &FetchedRecord) -> std::io::Result<()> {
    if let Some(value) = &record.value {
        return out.write_all(value.as_bytes());
    }
    let Some(encoded) = &record.value_base64 else {
        return Ok(());
    };
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(bytes) if std::str::from_utf8(&bytes).is_ok() => out.write_all(&bytes),
        _ => out.write_all(encoded.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        assert_eq!(parse_start("earliest"), Ok(Start::Earliest));
        assert_eq!(parse_start("latest"), Ok(Start::Latest));
        assert_eq!(parse_start("42"), Ok(Start::Offset(42)));
        assert_eq!(parse_start("@1000"), Ok(Start::TimestampMs(1000)));
        assert_eq!(
            parse_start("1970-01-01T00:00:01Z"),
            Ok(Start::TimestampMs(1000))
        );
        assert!(parse_start("soon").is_err());
        assert!(parse_start("").is_err());
        assert!(parse_start("99999999999999999999999").is_err());
    }

    fn record(value: Option<&str>, value_base64: Option<&str>) -> FetchedRecord {
        FetchedRecord {
            offset: 7,
            timestamp_ms: 1,
            subject: Some("s".into()),
            partition: 0,
            key: None,
            key_base64: None,
            value: value.map(str::to_string),
            value_base64: value_base64.map(str::to_string),
            headers: serde_json::Value::Null,
            headers_base64: serde_json::Value::Null,
        }
    }

    fn printed(record: &FetchedRecord, format: Format) -> String {
        let mut out = Vec::new();
        write_record(&mut out, record, format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_print_as_text_and_binary_as_base64() {
        assert_eq!(
            printed(&record(Some("hello"), None), Format::Value),
            "hello\n"
        );
        assert_eq!(printed(&record(None, Some("aGk=")), Format::Value), "hi\n");
        assert_eq!(
            printed(&record(None, Some("//4=")), Format::Value),
            "//4=\n"
        );
        assert_eq!(printed(&record(None, None), Format::Value), "\n");
    }

    #[test]
    fn json_format_prints_one_line_per_record() {
        let line = printed(&record(Some("v"), None), Format::Json);
        assert_eq!(
            line,
            "{\"offset\":7,\"timestamp_ms\":1,\"subject\":\"s\",\"partition\":0,\"value\":\"v\"}\n"
        );
    }
}
