//! The API keys and versions this broker answers, advertised through ApiVersions.
//!
//! Each range is what the handlers actually implement, bounded below by the oldest version the
//! `kafka-protocol` crate decodes (Kafka 4.0's floor) and above by the newest version whose
//! semantics we serve (no topic IDs in Fetch/Produce, no transactions, no KIP-848 groups).
//! librdkafka 2.x, the Java client 3.x/4.x and kafka-python all negotiate down into these.

use kafka_protocol::messages::ApiKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn supported(key: ApiKey, min: i16, max: i16) -> Supported {
    Supported { key, min, max }
}

/// Every API this broker answers, in API-key order.
pub const SUPPORTED: &[Supported] = &[
    supported(ApiKey::Produce, 3, 9),
    supported(ApiKey::Fetch, 4, 12),
    supported(ApiKey::ListOffsets, 1, 7),
    supported(ApiKey::Metadata, 0, 12),
    supported(ApiKey::OffsetCommit, 2, 8),
    supported(ApiKey::OffsetFetch, 1, 8),
    supported(ApiKey::FindCoordinator, 0, 4),
    supported(ApiKey::JoinGroup, 0, 9),
    supported(ApiKey::Heartbeat, 0, 4),
    supported(ApiKey::LeaveGroup, 0, 5),
    supported(ApiKey::SyncGroup, 0, 5),
    supported(ApiKey::DescribeGroups, 0, 5),
    supported(ApiKey::ListGroups, 0, 4),
    supported(ApiKey::ApiVersions, 0, 4),
    supported(ApiKey::CreateTopics, 2, 7),
    supported(ApiKey::DeleteTopics, 1, 6),
    supported(ApiKey::DeleteRecords, 0, 2),
    supported(ApiKey::InitProducerId, 0, 4),
    supported(ApiKey::DescribeConfigs, 1, 4),
    supported(ApiKey::AlterConfigs, 0, 2),
    supported(ApiKey::CreatePartitions, 0, 3),
    supported(ApiKey::DeleteGroups, 0, 2),
    supported(ApiKey::IncrementalAlterConfigs, 0, 1),
    supported(ApiKey::OffsetDelete, 0, 0),
];

/// The version range answered for `key`, if any.
pub fn supported_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|s| s.key == key)
        .map(|s| (s.min, s.max))
}

pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported_range(key).is_some_and(|(min, max)| (min..=max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Advertising a version the codec cannot decode or encode would break every client
    /// that picks it.
    #[test]
    fn every_advertised_version_is_one_the_protocol_crate_handles() {
        for entry in SUPPORTED {
            let valid = entry.key.valid_versions();
            assert!(
                valid.min <= entry.min && entry.max <= valid.max && entry.min <= entry.max,
                "{:?} {}..={} outside {}..={}",
                entry.key,
                entry.min,
                entry.max,
                valid.min,
                valid.max
            );
        }
    }

    #[test]
    fn keys_are_listed_once_in_order() {
        for pair in SUPPORTED.windows(2) {
            assert!((pair[0].key as i16) < (pair[1].key as i16));
        }
    }
}
