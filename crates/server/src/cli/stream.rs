//! `omnibus stream create|list|info|delete`.

use std::io::Write;

use clap::{Args, Subcommand};
use omnibus_engine::{FsyncPolicy, StreamSpec};

use crate::cli::client::Client;
use crate::cli::wire::StreamSummary;

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Create a stream.
    Create(CreateArgs),
    /// List streams as a table.
    List,
    /// Show a stream's configuration and partitions as JSON.
    Info { name: String },
    /// Change a stream's settings; the ones not given are kept, and so is its data.
    Alter(AlterArgs),
    /// Delete a stream and all its records.
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct AlterArgs {
    pub name: String,
    /// Delete closed segments older than this; `unlimited` keeps them forever.
    #[arg(long, value_name = "MS|unlimited", value_parser = parse_limit)]
    pub retention_ms: Option<Limit>,
    /// Delete the oldest closed segments while a partition is larger than this; `unlimited`
    /// keeps them.
    #[arg(long, value_name = "BYTES|unlimited", value_parser = parse_limit)]
    pub retention_bytes: Option<Limit>,
    #[command(flatten)]
    pub segments: SegmentArgs,
}

/// A retention limit: a number, or none.
#[derive(Debug, Clone, Copy)]
pub struct Limit(Option<u64>);

fn parse_limit(text: &str) -> Result<Limit, String> {
    match text {
        "unlimited" => Ok(Limit(None)),
        number => number
            .parse()
            .map(|n| Limit(Some(n)))
            .map_err(|_| format!("{text:?} is neither a number nor \"unlimited\"")),
    }
}

impl AlterArgs {
    /// The PATCH body: only the settings given (a retention limit of `null` is none).
    fn patch(&self) -> serde_json::Value {
        let mut patch = serde_json::Map::new();
        if let Some(Limit(ms)) = self.retention_ms {
            patch.insert("retention_ms".into(), ms.into());
        }
        if let Some(Limit(bytes)) = self.retention_bytes {
            patch.insert("retention_bytes".into(), bytes.into());
        }
        let segments = &self.segments;
        if let Some(bytes) = segments.segment_bytes {
            patch.insert("segment_bytes".into(), bytes.into());
        }
        if let Some(ms) = segments.segment_ms {
            patch.insert("segment_ms".into(), ms.into());
        }
        if let Some(fsync) = segments.fsync {
            patch.insert("fsync".into(), fsync.to_string().into());
        }
        if let Some(bytes) = segments.message_bytes_max {
            patch.insert("message_bytes_max".into(), bytes.into());
        }
        patch.into()
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// Number of partitions [default: the broker's stream_defaults].
    #[arg(long, value_name = "N")]
    pub partitions: Option<u32>,
    /// Subject pattern to capture (repeatable); without one the stream captures its own name.
    #[arg(long = "subject", value_name = "PATTERN")]
    pub subjects: Vec<String>,
    /// Delete closed segments older than this.
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<u64>,
    /// Delete the oldest closed segments while a partition is larger than this.
    #[arg(long, value_name = "BYTES")]
    pub retention_bytes: Option<u64>,
    #[command(flatten)]
    pub segments: SegmentArgs,
}

/// The settings `stream create` and `stream alter` take in the same form.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// Roll a partition's active segment at this size.
    #[arg(long, value_name = "BYTES")]
    pub segment_bytes: Option<u64>,
    /// Roll a partition's active segment at this age.
    #[arg(long, value_name = "MS")]
    pub segment_ms: Option<u64>,
    /// When a publish is acknowledged: always | never | interval:<ms>.
    #[arg(long, value_name = "POLICY", value_parser = parse_fsync)]
    pub fsync: Option<FsyncPolicy>,
    /// Largest single record (key + value + headers).
    #[arg(long, value_name = "BYTES")]
    pub message_bytes_max: Option<usize>,
}

fn parse_fsync(text: &str) -> Result<FsyncPolicy, String> {
    text.parse()
}

pub async fn run(client: &Client, command: StreamCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match command {
        StreamCommand::Create(args) => {
            let spec = StreamSpec {
                name: args.name,
                partitions: args.partitions,
                subjects: args.subjects,
                retention_ms: args.retention_ms,
                retention_bytes: args.retention_bytes,
                segment_bytes: args.segments.segment_bytes,
                segment_ms: args.segments.segment_ms,
                fsync: args.segments.fsync,
                no_time_retention: false,
                message_bytes_max: args.segments.message_bytes_max,
            };
            let created = client.create_stream(&spec).await?;
            writeln!(
                stdout,
                "created stream {} with {} partition{} capturing {}",
                created.name,
                created.partitions,
                if created.partitions == 1 { "" } else { "s" },
                created.subjects.join(", ")
            )?;
        }
        StreamCommand::List => {
            let streams = client.list_streams().await?;
            stdout.write_all(render_table(&streams).as_bytes())?;
        }
        StreamCommand::Info { name } => {
            let info = client.stream_info_json(&name).await?;
            writeln!(stdout, "{}", serde_json::to_string_pretty(&info)?)?;
        }
        StreamCommand::Alter(args) => {
            let info = client.alter_stream(&args.name, &args.patch()).await?;
            writeln!(stdout, "{}", serde_json::to_string_pretty(&info)?)?;
        }
        StreamCommand::Delete { name } => {
            client.delete_stream(&name).await?;
            writeln!(stdout, "deleted stream {name}")?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// Columns padded to their widest cell; numbers right-aligned so magnitudes line up.
fn render_table(streams: &[StreamSummary]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "PARTITIONS".to_string(),
        "SUBJECTS".to_string(),
        "RECORDS".to_string(),
        "BYTES".to_string(),
    ]];
    for stream in streams {
        let records: u64 = stream
            .partition_info
            .iter()
            .map(|partition| {
                partition
                    .high_watermark
                    .saturating_sub(partition.log_start_offset)
            })
            .sum();
        let bytes: u64 = stream.partition_info.iter().map(|p| p.size_bytes).sum();
        rows.push([
            stream.name.clone(),
            stream.partitions.to_string(),
            // A placeholder keeps the columns splittable on whitespace.
            if stream.subjects.is_empty() {
                "-".to_string()
            } else {
                stream.subjects.join(",")
            },
            records.to_string(),
            bytes.to_string(),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    for row in &rows {
        let line = format!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
        table.push_str(line.trim_end());
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::wire::PartitionSummary;

    #[test]
    fn the_table_is_aligned_and_sums_partitions() {
        let partition = |partition, start, end, size| PartitionSummary {
            partition,
            log_start_offset: start,
            high_watermark: end,
            size_bytes: size,
        };
        let streams = vec![
            StreamSummary {
                name: "orders".into(),
                partitions: 2,
                subjects: vec!["order.>".into(), "refund.*".into()],
                partition_info: vec![partition(0, 0, 10, 100), partition(1, 5, 10, 50)],
            },
            StreamSummary {
                name: "a".into(),
                partitions: 1,
                subjects: vec!["a".into()],
                partition_info: vec![partition(0, 0, 0, 0)],
            },
        ];
        let expected = "\
NAME    PARTITIONS  SUBJECTS          RECORDS  BYTES
orders           2  order.>,refund.*       15    150
a                1  a                       0      0
";
        assert_eq!(render_table(&streams), expected);
    }
}
