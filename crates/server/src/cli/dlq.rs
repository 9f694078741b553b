//! `omnibus dlq list|redrive`: a queue's dead letters — messages that used up their
//! deliveries or expired — with the reason, attempt count and last error the broker put in
//! their headers, and moving them back to the queue.

use std::io::Write;

use base64::Engine as _;
use clap::{Args, Subcommand};

use crate::cli::client::Client;
use crate::cli::table::{one_line, print_list, render_table, ListFormat};
use crate::cli::wire_jobs::DeadLetterRow;

const REASON_HEADER: &str = "omnibus.dlq.reason";
const ATTEMPTS_HEADER: &str = "omnibus.dlq.attempts";
const LAST_ERROR_HEADER: &str = "omnibus.dlq.last_error";
/// Dead letters asked for per page.
const PAGE_RECORDS_MAX: usize = 1_000;
/// Most dead letters the broker redrives per call.
const REDRIVE_PER_CALL_MAX: u64 = 10_000;
const ERROR_CELL_CHARS_MAX: usize = 60;
const VALUE_CELL_CHARS_MAX: usize = 80;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a queue's dead letters, oldest first.
    List(ListArgs),
    /// Move dead letters back to their queue, oldest first.
    Redrive {
        queue: String,
        /// At most this many [default: all].
        #[arg(long, value_name = "N")]
        max: Option<u64>,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    pub queue: String,
    /// Most dead letters to show.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// Start at this offset of the dead-letter stream [default: the oldest].
    #[arg(long, value_name = "OFFSET")]
    pub offset: Option<u64>,
    /// `table`, or `json`: each dead letter as one JSON line.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

pub async fn run(client: &Client, command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List(args) => list(client, args).await,
        DlqCommand::Redrive { queue, max } => {
            let redriven = redrive(client, &queue, max).await?;
            let mut stdout = std::io::stdout().lock();
            writeln!(
                stdout,
                "redrove {redriven} dead letters back to queue {queue}"
            )?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// Redrives in calls of at most [`REDRIVE_PER_CALL_MAX`] until none is left; without `max`, at
/// most as many as the dead-letter stream held at the start, so letters that die again
/// meanwhile are not chased round and round.
async fn redrive(client: &Client, queue: &str, max: Option<u64>) -> anyhow::Result<u64> {
    let goal = match max {
        Some(max) => max,
        None => client.queue_info(queue).await?.dead_letter_depth,
    };
    let mut redriven = 0;
    while redriven < goal {
        let ask = (goal - redriven).min(REDRIVE_PER_CALL_MAX);
        let moved = client.redrive(queue, Some(ask)).await?;
        // Fewer than asked need not mean the end: letters of other queues sharing the
        // dead-letter stream are skipped but still count against a call's limit.
        if moved == 0 {
            break;
        }
        redriven += moved;
    }
    Ok(redriven)
}

async fn list(client: &Client, args: ListArgs) -> anyhow::Result<()> {
    let mut records = Vec::new();
    let mut offset = args.offset;
    while records.len() < args.limit {
        let want = (args.limit - records.len()).min(PAGE_RECORDS_MAX);
        let page = client.dead_letters(&args.queue, offset, want).await?;
        if page.records.is_empty() {
            break;
        }
        records.extend(page.records.into_iter().take(want));
        match page.next_offset {
            // Only onwards: a server that repeats itself must not make this loop forever.
            Some(next) if offset.is_none_or(|offset| next > offset) => offset = Some(next),
            _ => break,
        }
    }
    print_list(&records, args.format, dead_letter_table)?;
    Ok(())
}

fn dead_letter_table(records: &[DeadLetterRow]) -> String {
    let header = ["OFFSET", "ATTEMPTS", "REASON", "LAST_ERROR", "VALUE"].map(String::from);
    let rows = records.iter().map(|record| {
        vec![
            record.offset.to_string(),
            record.header(ATTEMPTS_HEADER).unwrap_or_default(),
            record.header(REASON_HEADER).unwrap_or_default(),
            one_line(
                &record.header(LAST_ERROR_HEADER).unwrap_or_default(),
                ERROR_CELL_CHARS_MAX,
            ),
            one_line(&value_text(record), VALUE_CELL_CHARS_MAX),
        ]
    });
    render_table(&header, &[true, true, false, false, false], rows)
}

/// The value as text; base64 that decodes to text is shown decoded, other bytes as base64.
fn value_text(record: &DeadLetterRow) -> String {
    if let Some(value) = &record.value {
        return value.clone();
    }
    let Some(encoded) = &record.value_base64 else {
        return String::new();
    };
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| encoded.clone()),
        Err(_) => encoded.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_shows_the_dead_letter_headers() {
        let rows: Vec<DeadLetterRow> = [
            json!({"offset": 0, "value": "{\"n\":1}", "headers": {
                "omnibus.dlq.reason": "max_deliver", "omnibus.dlq.attempts": "3",
                "omnibus.dlq.last_error": "exit status 1:\nno such file"}}),
            json!({"offset": 12, "value_base64": "aGk=", "headers": {
                "omnibus.dlq.reason": "expired", "omnibus.dlq.attempts": "0"}}),
        ]
        .into_iter()
        .map(|value| serde_json::from_value(value).unwrap())
        .collect();
        let expected = "\
OFFSET  ATTEMPTS  REASON       LAST_ERROR                   VALUE
     0         3  max_deliver  exit status 1: no such file  {\"n\":1}
    12         0  expired      -                            hi
";
        assert_eq!(dead_letter_table(&rows), expected);
    }

    #[test]
    fn binary_values_stay_base64() {
        let row = DeadLetterRow {
            value_base64: Some("//4=".into()),
            ..DeadLetterRow::default()
        };
        assert_eq!(value_text(&row), "//4=");
    }
}
