//! The lag of acked consumers (JetStream consumers, Redis consumer groups) for `omnibus group
//! lag` and `group list`, read from `GET /metrics`: the HTTP API has no consumer listing, and
//! the scrape already computes each consumer's lag from memory
//! (`omnibus_consumer_lag_records`, `_ack_pending`, `_lag_seconds`; docs/operations.md).
//!
//! Only lines starting `omnibus_consumer_` are parsed: `name{stream="…",consumer="…"} value`,
//! label values unescaped as OpenMetrics escapes them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// One acked consumer's lag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerLag {
    pub stream: String,
    pub consumer: String,
    pub lag_records: u64,
    pub ack_pending: u64,
    pub lag_seconds: f64,
}

impl ConsumerLag {
    pub fn to_json(&self) -> Value {
        json!({
            "stream": self.stream,
            "consumer": self.consumer,
            "lag_records": self.lag_records,
            "ack_pending": self.ack_pending,
            "lag_ms": (self.lag_seconds * 1000.0).round() as u64,
        })
    }
}

/// Every acked consumer in a scrape, by (stream, consumer).
pub fn parse(text: &str) -> Vec<ConsumerLag> {
    let mut consumers: BTreeMap<(String, String), ConsumerLag> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("omnibus_consumer_") else {
            continue;
        };
        let Some((family, rest)) = rest.split_once('{') else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let labels = parse_labels(labels);
        let (Some(stream), Some(consumer)) = (labels.get("stream"), labels.get("consumer")) else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let entry = consumers
            .entry((stream.clone(), consumer.clone()))
            .or_insert_with(|| ConsumerLag {
                stream: stream.clone(),
                consumer: consumer.clone(),
                ..ConsumerLag::default()
            });
        match family {
            "lag_records" => entry.lag_records = value as u64,
            "ack_pending" => entry.ack_pending = value as u64,
            "lag_seconds" => entry.lag_seconds = value,
            _ => {}
        }
    }
    consumers.into_values().collect()
}

/// `key="value",…` into a map, undoing `\\`, `\"` and `\n`.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut characters = text.chars().peekable();
    loop {
        let key: String = characters.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() || characters.next() != Some('"') {
            return labels;
        }
        let mut value = String::new();
        while let Some(character) = characters.next() {
            match character {
                '"' => break,
                '\\' => match characters.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => return labels,
                },
                other => value.push(other),
            }
        }
        labels.insert(key.trim_start_matches(',').to_string(), value);
        if characters.peek() == Some(&',') {
            characters.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_series_are_gathered_per_consumer_and_labels_unescaped() {
        let text = "# TYPE omnibus_consumer_lag_records gauge\n\
            omnibus_consumer_lag_records{stream=\"orders\",consumer=\"billing\"} 7\n\
            omnibus_consumer_lag_records{stream=\"a\\\"b\",consumer=\"c,d\"} 1\n\
            omnibus_queue_depth{queue=\"q\",state=\"ready\"} 3\n\
            omnibus_consumer_ack_pending{stream=\"orders\",consumer=\"billing\"} 2\n\
            omnibus_consumer_lag_seconds{stream=\"orders\",consumer=\"billing\"} 1.5\n\
            # EOF\n";
        let consumers = parse(text);
        assert_eq!(consumers.len(), 2);
        assert_eq!(
            (consumers[0].stream.as_str(), consumers[0].consumer.as_str()),
            ("a\"b", "c,d")
        );
        assert_eq!(
            consumers[1],
            ConsumerLag {
                stream: "orders".into(),
                consumer: "billing".into(),
                lag_records: 7,
                ack_pending: 2,
                lag_seconds: 1.5,
            }
        );
        assert_eq!(consumers[1].to_json()["lag_ms"], 1500);
    }
}
