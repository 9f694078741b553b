//! Cursor consumer groups: committed offsets per (group, stream, partition), stored durably
//! in the state store's `group_offsets` table (`offsets.rs`), and the Kafka-style group
//! coordinator that assigns partitions to members (`coordinator/`).
//!
//! Keys are `group 0x1F stream 0x1F partition(10 digits)`. The separator is the ASCII unit
//! separator, a control character, which group and stream names may never contain, so keys
//! are unambiguous and a prefix scan finds one group (or one group's stream) exactly.

use serde::{Deserialize, Serialize};

pub(crate) mod committed;
pub mod coordinator;
mod offsets;

pub use offsets::{COMMIT_METADATA_BYTES_MAX, COMMIT_OFFSETS_MAX};

pub const TABLE: &str = "group_offsets";
const SEPARATOR: char = '\u{1f}';

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredOffset {
    pub offset: u64,
    pub metadata: String,
    pub committed_ms: i64,
}

pub fn key(group: &str, stream: &str, partition: u32) -> String {
    format!("{group}{SEPARATOR}{stream}{SEPARATOR}{partition:010}")
}

pub fn group_prefix(group: &str) -> String {
    format!("{group}{SEPARATOR}")
}

pub fn stream_prefix(group: &str, stream: &str) -> String {
    format!("{group}{SEPARATOR}{stream}{SEPARATOR}")
}

/// Splits a key back into (group, stream, partition).
pub fn parse_key(key: &str) -> Option<(&str, &str, u32)> {
    let mut parts = key.split(SEPARATOR);
    let group = parts.next()?;
    let stream = parts.next()?;
    let partition = parts.next()?.parse().ok()?;
    Some((group, stream, partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_prefixes_do_not_collide() {
        let k = key("g", "orders", 7);
        assert_eq!(parse_key(&k), Some(("g", "orders", 7)));
        assert!(k.starts_with(&stream_prefix("g", "orders")));
        assert!(!key("g", "orders2", 0).starts_with(&stream_prefix("g", "orders")));
        assert!(!key("g2", "orders", 0).starts_with(&group_prefix("g")));
    }
}
