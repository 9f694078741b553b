//! `omnibus group list|offsets|lag`: read-only views of consumer groups, printed as the
//! server's JSON so nothing is lost in translation.
//!
//! `lag` adds rates: it reads the lag twice, `--sample-ms` apart, and puts on each partition
//! `records_in_per_second` (how fast its high watermark grew) and `consumed_per_second` (how
//! fast the group's committed offset moved). The age of the oldest unconsumed record,
//! `lag_ms`, comes from the server.
//!
//! Acked consumers (JetStream consumers, Redis consumer groups) keep no committed offsets:
//! `lag` adds, under `consumers`, every acked consumer named like the group (on any stream,
//! or `--stream`) with its lag in records, deliveries awaiting an ack and the age of the
//! oldest unacknowledged record; `list` adds every acked consumer under `consumers`. Both
//! read them from `GET /metrics` (`consumer_lag.rs`).

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::Value;

use crate::cli::client::Client;
use crate::cli::consumer_lag;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups, and acked consumers (JetStream consumers, Redis groups).
    List,
    /// Show a group's committed offsets.
    Offsets {
        group: String,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Show how far a group is behind each partition's high watermark, how old its oldest
    /// unconsumed record is (lag_ms), and the rates in and consumed; and the lag of acked
    /// consumers (JetStream consumers, Redis groups) of that name.
    Lag {
        group: String,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
        /// Time between the two reads the rates are measured over; 0 skips the rates.
        #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        sample_ms: u64,
    },
}

pub async fn run(client: &Client, command: GroupCommand) -> anyhow::Result<()> {
    let answer = match command {
        GroupCommand::List => {
            let mut groups = client.list_groups_json().await?;
            let consumers = consumer_lag::parse(&client.metrics_text().await?);
            groups["consumers"] = consumers
                .iter()
                .map(|c| serde_json::json!({"stream": c.stream, "consumer": c.consumer}))
                .collect();
            groups
        }
        GroupCommand::Offsets { group, stream } => {
            client
                .committed_offsets_json(&group, stream.as_deref())
                .await?
        }
        GroupCommand::Lag {
            group,
            stream,
            sample_ms,
        } => {
            let first = client.group_lag_json(&group, stream.as_deref()).await?;
            let mut answer = if sample_ms == 0 {
                first
            } else {
                let started = Instant::now();
                tokio::time::sleep(Duration::from_millis(sample_ms)).await;
                let mut second = client.group_lag_json(&group, stream.as_deref()).await?;
                add_rates(&first, &mut second, started.elapsed().as_secs_f64());
                second
            };
            let consumers = consumer_lag::parse(&client.metrics_text().await?);
            answer["consumers"] = consumers
                .iter()
                .filter(|c| c.consumer == group)
                .filter(|c| stream.as_deref().is_none_or(|s| c.stream == s))
                .map(|c| c.to_json())
                .collect();
            answer
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&answer)?)?;
    stdout.flush()?;
    Ok(())
}

/// Puts on each partition of `after` its rates since `before`, `seconds` earlier.
fn add_rates(before: &Value, after: &mut Value, seconds: f64) {
    let earlier = before["partitions"].as_array().cloned().unwrap_or_default();
    let Some(partitions) = after["partitions"].as_array_mut() else {
        return;
    };
    for partition in partitions {
        let same = earlier.iter().find(|old| {
            old["stream"] == partition["stream"] && old["partition"] == partition["partition"]
        });
        let rate = |field: &str| {
            let now = partition[field].as_u64();
            let then = same.and_then(|old| old[field].as_u64());
            match (then, now) {
                (Some(then), Some(now)) if seconds > 0.0 => {
                    now.saturating_sub(then) as f64 / seconds
                }
                _ => 0.0,
            }
        };
        let records_in = rate("high_watermark");
        let consumed = rate("committed");
        partition["records_in_per_second"] = serde_json::json!(round(records_in));
        partition["consumed_per_second"] = serde_json::json!(round(consumed));
    }
}

/// Two decimals are plenty for a rate read by a person.
fn round(rate: f64) -> f64 {
    (rate * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_are_the_change_of_watermark_and_commit_over_the_sample() {
        let before = json!({"partitions": [
            {"stream": "s", "partition": 0, "committed": 10, "high_watermark": 100},
            {"stream": "s", "partition": 1, "committed": null, "high_watermark": 0},
        ]});
        let mut after = json!({"partitions": [
            {"stream": "s", "partition": 0, "committed": 40, "high_watermark": 300},
            {"stream": "s", "partition": 1, "committed": null, "high_watermark": 5},
        ]});
        add_rates(&before, &mut after, 2.0);
        assert_eq!(after["partitions"][0]["records_in_per_second"], 100.0);
        assert_eq!(after["partitions"][0]["consumed_per_second"], 15.0);
        assert_eq!(after["partitions"][1]["records_in_per_second"], 2.5);
        assert_eq!(after["partitions"][1]["consumed_per_second"], 0.0);
    }
}
