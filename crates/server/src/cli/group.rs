//! `omnibus group list|offsets|lag`: read-only views of consumer groups, printed as the
//! server's JSON so nothing is lost in translation.

use std::io::Write;

use clap::Subcommand;

use crate::cli::client::Client;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups.
    List,
    /// Show a group's committed offsets.
    Offsets {
        group: String,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Show how far a group is behind each partition's high watermark.
    Lag {
        group: String,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
}

pub async fn run(client: &Client, command: GroupCommand) -> anyhow::Result<()> {
    let answer = match command {
        GroupCommand::List => client.list_groups_json().await?,
        GroupCommand::Offsets { group, stream } => {
            client
                .committed_offsets_json(&group, stream.as_deref())
                .await?
        }
        GroupCommand::Lag { group, stream } => {
            client.group_lag_json(&group, stream.as_deref()).await?
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&answer)?)?;
    stdout.flush()?;
    Ok(())
}
