//! `omnibus top`: a live terminal view of the broker, refreshed every second — publish
//! rates per stream, queue depths and rates, consumer-group lag — like `htop` for the broker.
//! `q` or Ctrl-C quits; `--once` prints a single frame and exits (scripts, tests).
//!
//! Everything comes from the JSON API (`/v1/streams`, `/v1/queues`, `/v1/groups`,
//! `/v1/groups/{group}/lag`), the same a dashboard reads. Stream and group rates are the
//! change between two samples (high watermarks, committed offsets) over the time between
//! them, so even `--once` samples twice, `--interval-ms` apart; queue rates are the broker's
//! own last-minute rates. Each section shows at most `--rows` lines, busiest first, and at
//! most that many groups are asked for their lag, so a broker with thousands of streams
//! costs a bounded number of calls per frame.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use crate::cli::client::Client;
use crate::cli::table::render_table;

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Print one frame and exit.
    #[arg(long)]
    pub once: bool,
    /// Time between two samples (and between frames).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub interval_ms: u64,
    /// Most lines per section (and most groups asked for their lag).
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub rows: u64,
}

/// What one sample of the broker holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// stream → (sum of high watermarks, bytes on disk).
    pub streams: BTreeMap<String, (u64, u64)>,
    pub queues: Vec<QueueRow>,
    pub groups: BTreeMap<String, GroupSample>,
}

/// One group, summed over its partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupSample {
    pub committed: u64,
    pub lag: u64,
    /// Age of the oldest unconsumed record, in ms, over every partition.
    pub oldest_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueRow {
    pub name: String,
    pub ready: u64,
    pub delayed: u64,
    pub leased: u64,
    pub dead_letters: u64,
    pub enqueued_per_second: f64,
    pub delivered_per_second: f64,
    pub completed_per_second: f64,
}

pub async fn run(client: &Client, args: TopArgs) -> anyhow::Result<()> {
    let interval = Duration::from_millis(args.interval_ms);
    let mut previous = (sample(client, args.rows).await?, Instant::now());
    if args.once {
        tokio::time::sleep(interval).await;
        let current = sample(client, args.rows).await?;
        let elapsed = previous.1.elapsed().as_secs_f64();
        let frame = render(&previous.0, &current, elapsed, args.rows as usize);
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(frame.as_bytes())?;
        stdout.flush()?;
        return Ok(());
    }
    // Listening from here on, so a Ctrl-C while a sample is being read is not lost.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let _terminal = Terminal::raw();
    let (quit_sender, mut quit) = tokio::sync::mpsc::channel::<()>(1);
    if std::io::stdin().is_terminal() {
        // A blocking read of single key presses; `q` quits.
        std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            let mut stdin = std::io::stdin();
            while let Ok(1) = stdin.read(&mut byte) {
                if byte[0] == b'q' || byte[0] == b'Q' || byte[0] == 3 {
                    let _ = quit_sender.blocking_send(());
                    return;
                }
            }
        });
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = quit.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
        }
        let current = sample(client, args.rows).await?;
        let now = Instant::now();
        let elapsed = now.duration_since(previous.1).as_secs_f64();
        let frame = render(&previous.0, &current, elapsed, args.rows as usize);
        let mut stdout = std::io::stdout().lock();
        // Home and clear, then the frame; `\r\n` because the terminal is not cooked.
        write!(stdout, "\x1b[H\x1b[2J{}", frame.replace('\n', "\r\n"))?;
        stdout.flush()?;
        previous = (current, now);
    }
}

/// Turns off line buffering and echo on a terminal for the view's life (via `stty`, so no
/// unsafe terminal calls here), and restores the settings it found when dropped.
struct Terminal {
    saved: Option<String>,
}

impl Terminal {
    fn raw() -> Terminal {
        if !std::io::stdin().is_terminal() {
            return Terminal { saved: None };
        }
        let saved = std::process::Command::new("stty")
            .arg("-g")
            .stdin(std::process::Stdio::inherit())
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string());
        if saved.is_some() {
            let _ = std::process::Command::new("stty")
                .args(["-icanon", "-echo"])
                .stdin(std::process::Stdio::inherit())
                .status();
        }
        Terminal { saved }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = std::process::Command::new("stty")
                .arg(saved)
                .stdin(std::process::Stdio::inherit())
                .status();
        }
    }
}

async fn sample(client: &Client, rows: u64) -> anyhow::Result<Sample> {
    let mut sample = Sample::default();
    for stream in client.list_streams().await? {
        let high_watermarks = stream.partition_info.iter().map(|p| p.high_watermark).sum();
        let bytes = stream.partition_info.iter().map(|p| p.size_bytes).sum();
        sample.streams.insert(stream.name, (high_watermarks, bytes));
    }
    let queues = client.get_json(&["v1", "queues"]).await?;
    for queue in queues["queues"].as_array().into_iter().flatten() {
        sample.queues.push(queue_row(queue));
    }
    let groups = client.get_json(&["v1", "groups"]).await?;
    for group in groups["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .take(rows as usize)
    {
        let lag = client.get_json(&["v1", "groups", group, "lag"]).await?;
        let partitions = lag["partitions"].as_array().cloned().unwrap_or_default();
        let committed = partitions
            .iter()
            .filter_map(|p| p["committed"].as_u64())
            .sum();
        let oldest = partitions.iter().filter_map(|p| p["lag_ms"].as_i64()).max();
        let total = lag["total_lag"].as_u64().unwrap_or(0);
        let group_sample = GroupSample {
            committed,
            lag: total,
            oldest_ms: oldest,
        };
        sample.groups.insert(group.to_string(), group_sample);
    }
    Ok(sample)
}

fn queue_row(queue: &Value) -> QueueRow {
    let rate = |name: &str| queue["rates"][name]["per_second"].as_f64().unwrap_or(0.0);
    let count = |name: &str| queue[name].as_u64().unwrap_or(0);
    QueueRow {
        name: queue["name"].as_str().unwrap_or("?").to_string(),
        ready: count("ready"),
        delayed: count("delayed"),
        leased: count("leased"),
        dead_letters: count("dead_letter_depth"),
        enqueued_per_second: rate("enqueued"),
        delivered_per_second: rate("delivered"),
        completed_per_second: rate("completed"),
    }
}

fn per_second(before: u64, after: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    after.saturating_sub(before) as f64 / seconds
}

fn rate_text(rate: f64) -> String {
    format!("{rate:.1}")
}

fn age_text(ms: Option<i64>) -> String {
    match ms {
        None => "-".to_string(),
        Some(ms) if ms < 1_000 => format!("{ms}ms"),
        Some(ms) if ms < 120_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m", ms / 60_000),
    }
}

/// One frame: totals, then streams, queues and groups, busiest first, `rows` lines each.
pub fn render(before: &Sample, after: &Sample, seconds: f64, rows: usize) -> String {
    let mut streams: Vec<(String, f64, u64, u64)> = after
        .streams
        .iter()
        .map(|(name, (high_watermarks, bytes))| {
            let old = before.streams.get(name).map_or(*high_watermarks, |s| s.0);
            (
                name.clone(),
                per_second(old, *high_watermarks, seconds),
                *high_watermarks,
                *bytes,
            )
        })
        .collect();
    streams.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let publish: f64 = streams.iter().map(|s| s.1).sum();
    let deliver: f64 = after.queues.iter().map(|q| q.delivered_per_second).sum();
    let total_lag: u64 = after.groups.values().map(|g| g.lag).sum();
    let mut frame = format!(
        "omnibus top  publish {}/s  deliver {}/s  streams {}  queues {}  group lag {}\n\n",
        rate_text(publish),
        rate_text(deliver),
        after.streams.len(),
        after.queues.len(),
        total_lag
    );
    let header = ["STREAM", "IN/S", "RECORDS", "BYTES"].map(String::from);
    let stream_rows = streams
        .iter()
        .take(rows)
        .map(|(name, rate, records, bytes)| {
            vec![
                name.clone(),
                rate_text(*rate),
                records.to_string(),
                bytes.to_string(),
            ]
        });
    frame.push_str(&render_table(
        &header,
        &[false, true, true, true],
        stream_rows,
    ));
    frame.push('\n');

    let mut queues = after.queues.clone();
    queues.sort_by(|a, b| {
        (b.ready + b.delayed + b.leased)
            .cmp(&(a.ready + a.delayed + a.leased))
            .then_with(|| a.name.cmp(&b.name))
    });
    let header = [
        "QUEUE", "READY", "DELAYED", "LEASED", "DLQ", "ENQ/S", "DELIV/S", "DONE/S",
    ]
    .map(String::from);
    let queue_rows = queues.iter().take(rows).map(|q| {
        vec![
            q.name.clone(),
            q.ready.to_string(),
            q.delayed.to_string(),
            q.leased.to_string(),
            q.dead_letters.to_string(),
            rate_text(q.enqueued_per_second),
            rate_text(q.delivered_per_second),
            rate_text(q.completed_per_second),
        ]
    });
    frame.push_str(&render_table(
        &header,
        &[false, true, true, true, true, true, true, true],
        queue_rows,
    ));
    frame.push('\n');

    let mut groups: Vec<(&String, &GroupSample)> = after.groups.iter().collect();
    groups.sort_by(|a, b| b.1.lag.cmp(&a.1.lag).then_with(|| a.0.cmp(b.0)));
    let header = ["GROUP", "LAG", "OLDEST", "READ/S"].map(String::from);
    let group_rows = groups.iter().take(rows).map(|(name, group)| {
        let old = before
            .groups
            .get(*name)
            .map_or(group.committed, |g| g.committed);
        vec![
            (*name).clone(),
            group.lag.to_string(),
            age_text(group.oldest_ms),
            rate_text(per_second(old, group.committed, seconds)),
        ]
    });
    frame.push_str(&render_table(
        &header,
        &[false, true, true, true],
        group_rows,
    ));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_shows_rates_between_samples_and_sorts_busiest_first() {
        let billing = |committed, lag, oldest_ms| GroupSample {
            committed,
            lag,
            oldest_ms,
        };
        let mut before = Sample::default();
        before.streams.insert("quiet".into(), (10, 100));
        before.streams.insert("busy".into(), (0, 0));
        before
            .groups
            .insert("billing".into(), billing(0, 50, Some(90_000)));
        let mut after = before.clone();
        after.streams.insert("busy".into(), (500, 4096));
        after
            .groups
            .insert("billing".into(), billing(20, 480, Some(2_500)));
        after.queues.push(QueueRow {
            name: "emails".into(),
            ready: 7,
            leased: 2,
            delivered_per_second: 3.5,
            ..QueueRow::default()
        });
        let frame = render(&before, &after, 2.0, 10);
        assert!(
            frame.starts_with(
                "omnibus top  publish 250.0/s  deliver 3.5/s  streams 2  queues 1  group lag 480\n"
            ),
            "{frame}"
        );
        let busy = frame.find("busy").unwrap();
        let quiet = frame.find("quiet").unwrap();
        assert!(busy < quiet, "busiest stream first:\n{frame}");
        let row = |name: &str| -> Vec<String> {
            let line = frame.lines().find(|line| line.starts_with(name)).unwrap();
            line.split_whitespace().map(String::from).collect()
        };
        assert_eq!(row("busy"), ["busy", "250.0", "500", "4096"]);
        assert_eq!(
            row("emails"),
            ["emails", "7", "0", "2", "0", "0.0", "3.5", "0.0"]
        );
        assert_eq!(row("billing"), ["billing", "480", "2.5s", "10.0"]);
    }

    #[test]
    fn rows_bound_every_section() {
        let mut sample = Sample::default();
        for index in 0..50 {
            sample.streams.insert(format!("s{index:02}"), (index, 0));
        }
        let frame = render(&sample, &sample, 1.0, 3);
        let listed = frame.lines().filter(|line| line.starts_with('s')).count();
        assert_eq!(listed, 3, "{frame}");
    }
}
