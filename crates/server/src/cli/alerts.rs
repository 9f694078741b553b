//! `omnibus alerts [--firing]` and `omnibus alerts rules`: the broker's alarms (newest
//! transition first) and the rules in force, from `GET /v1/alerts` and `/v1/alerts/rules`.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde::Deserialize;

use crate::cli::client::Client;
use crate::cli::table::{one_line, print_list, render_table, ListFormat};

const MESSAGE_CELL_CHARS_MAX: usize = 80;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: Option<AlertsCommand>,
    /// Only the alarms firing now.
    #[arg(long)]
    pub firing: bool,
    /// `table`, or `json`: each alarm as one JSON line.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// The rules in force: defaults, the config file's and the API's.
    Rules {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AlertRow {
    id: String,
    kind: String,
    state: String,
    value: f64,
    threshold: f64,
    since: String,
    resolved_at: Option<String>,
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RuleRow {
    name: String,
    kind: String,
    target: Option<String>,
    threshold: f64,
    for_seconds: u64,
    enabled: bool,
    source: String,
    unit: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AlertList {
    alerts: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct RuleList {
    rules: Vec<serde_json::Value>,
}

pub async fn run(client: &Client, args: AlertsArgs) -> anyhow::Result<()> {
    match args.command {
        Some(AlertsCommand::Rules { format }) => {
            let url = client.url(&["v1", "alerts", "rules"], &[]);
            let list: RuleList = client.send(client.request(Method::GET, &url), &url).await?;
            print_list(&list.rules, format, rule_table)?;
        }
        None => {
            let query = if args.firing {
                vec![("state", "firing".to_string())]
            } else {
                Vec::new()
            };
            let url = client.url(&["v1", "alerts"], &query);
            let list: AlertList = client.send(client.request(Method::GET, &url), &url).await?;
            print_list(&list.alerts, args.format, alert_table)?;
        }
    }
    Ok(())
}

fn alert_table(alerts: &[AlertRow]) -> String {
    let header = [
        "STATE",
        "KIND",
        "ID",
        "VALUE",
        "THRESHOLD",
        "SINCE",
        "RESOLVED",
        "MESSAGE",
    ]
    .map(String::from);
    let rows = alerts.iter().map(|alert| {
        vec![
            alert.state.clone(),
            alert.kind.clone(),
            alert.id.clone(),
            alert.value.to_string(),
            alert.threshold.to_string(),
            alert.since.clone(),
            alert.resolved_at.clone().unwrap_or_default(),
            one_line(&alert.message, MESSAGE_CELL_CHARS_MAX),
        ]
    });
    let right = [false, false, false, true, true, false, false, false];
    render_table(&header, &right, rows)
}

fn rule_table(rules: &[RuleRow]) -> String {
    let header = [
        "NAME",
        "KIND",
        "TARGET",
        "THRESHOLD",
        "UNIT",
        "FOR_S",
        "ENABLED",
        "SOURCE",
    ]
    .map(String::from);
    let rows = rules.iter().map(|rule| {
        vec![
            rule.name.clone(),
            rule.kind.clone(),
            rule.target.clone().unwrap_or_else(|| "*".to_string()),
            rule.threshold.to_string(),
            rule.unit.clone().unwrap_or_default(),
            rule.for_seconds.to_string(),
            rule.enabled.to_string(),
            rule.source.clone(),
        ]
    });
    let right = [false, false, false, true, false, true, false, false];
    render_table(&header, &right, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_render_one_row_each_with_an_empty_resolved_time_as_a_dash() {
        let alert = AlertRow {
            id: "dlq_not_empty:work".into(),
            kind: "dlq_depth".into(),
            state: "firing".into(),
            value: 3.0,
            threshold: 0.0,
            since: "2026-12-03T21:50:00.000Z".into(),
            resolved_at: None,
            message: "dead letters of queue work is 3 messages".into(),
        };
        let table = alert_table(&[alert]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[1].starts_with("firing"), "{table}");
        assert!(lines[1].contains("dlq_not_empty:work"), "{table}");
        assert!(lines[1].contains(" - "), "{table}");
    }
}
