//! Request schemas for the bounds check, transcribed from Kafka's message definitions
//! (`clients/src/main/resources/common/message/*Request.json`) for the versions we advertise.
//! Field order matters; names are in the comments.

use kafka_protocol::messages::ApiKey;

use super::Kind::{Bytes, Fixed, FixedArray, String, Strings, Structs};
use super::{all, between, since, until, Schema};

const BOOLEAN: super::Kind = Fixed(1);
const INT8: super::Kind = Fixed(1);
const INT16: super::Kind = Fixed(2);
const INT32: super::Kind = Fixed(4);
const INT64: super::Kind = Fixed(8);
const UUID: super::Kind = Fixed(16);
const INT32S: super::Kind = FixedArray(4);

pub(super) fn schema(key: ApiKey) -> Option<&'static Schema> {
    Some(match key {
        ApiKey::Produce => &PRODUCE,
        ApiKey::Fetch => &FETCH,
        ApiKey::ListOffsets => &LIST_OFFSETS,
        ApiKey::Metadata => &METADATA,
        ApiKey::OffsetCommit => &OFFSET_COMMIT,
        ApiKey::OffsetFetch => &OFFSET_FETCH,
        ApiKey::FindCoordinator => &FIND_COORDINATOR,
        ApiKey::JoinGroup => &JOIN_GROUP,
        ApiKey::Heartbeat => &HEARTBEAT,
        ApiKey::LeaveGroup => &LEAVE_GROUP,
        ApiKey::SyncGroup => &SYNC_GROUP,
        ApiKey::DescribeGroups => &DESCRIBE_GROUPS,
        ApiKey::ListGroups => &LIST_GROUPS,
        ApiKey::ApiVersions => &API_VERSIONS,
        ApiKey::CreateTopics => &CREATE_TOPICS,
        ApiKey::DeleteTopics => &DELETE_TOPICS,
        ApiKey::DeleteRecords => &DELETE_RECORDS,
        ApiKey::InitProducerId => &INIT_PRODUCER_ID,
        ApiKey::DescribeConfigs => &DESCRIBE_CONFIGS,
        ApiKey::AlterConfigs => &ALTER_CONFIGS,
        ApiKey::IncrementalAlterConfigs => &INCREMENTAL_ALTER_CONFIGS,
        ApiKey::CreatePartitions => &CREATE_PARTITIONS,
        ApiKey::DeleteGroups => &DELETE_GROUPS,
        ApiKey::OffsetDelete => &OFFSET_DELETE,
        _ => return None,
    })
}

static PRODUCE: Schema = Schema {
    flexible_since: 9,
    fields: &[
        all(String), // transactional_id
        all(INT16),  // acks
        all(INT32),  // timeout_ms
        all(Structs(&[
            until(12, String), // name
            since(13, UUID),   // topic_id
            all(Structs(&[
                all(INT32), // index
                all(Bytes), // records
            ])),
        ])),
    ],
};

static FETCH: Schema = Schema {
    flexible_since: 12,
    fields: &[
        until(14, INT32), // replica_id
        all(INT32),       // max_wait_ms
        all(INT32),       // min_bytes
        since(3, INT32),  // max_bytes
        since(4, INT8),   // isolation_level
        since(7, INT32),  // session_id
        since(7, INT32),  // session_epoch
        all(Structs(&[
            until(12, String), // topic
            since(13, UUID),   // topic_id
            all(Structs(&[
                all(INT32),       // partition
                since(9, INT32),  // current_leader_epoch
                all(INT64),       // fetch_offset
                since(12, INT32), // last_fetched_epoch
                since(5, INT64),  // log_start_offset
                all(INT32),       // partition_max_bytes
            ])),
        ])),
        since(
            7,
            Structs(&[
                between(7, 12, String), // topic
                since(13, UUID),        // topic_id
                since(7, INT32S),       // partitions
            ]),
        ), // forgotten_topics_data
        since(11, String), // rack_id
    ],
};

static LIST_OFFSETS: Schema = Schema {
    flexible_since: 6,
    fields: &[
        all(INT32),     // replica_id
        since(2, INT8), // isolation_level
        all(Structs(&[
            all(String), // name
            all(Structs(&[
                all(INT32),      // partition_index
                since(4, INT32), // current_leader_epoch
                all(INT64),      // timestamp
            ])),
        ])),
        since(10, INT32), // timeout_ms
    ],
};

static METADATA: Schema = Schema {
    flexible_since: 9,
    fields: &[
        all(Structs(&[
            since(10, UUID), // topic_id
            all(String),     // name
        ])),
        since(4, BOOLEAN),       // allow_auto_topic_creation
        between(8, 10, BOOLEAN), // include_cluster_authorized_operations
        since(8, BOOLEAN),       // include_topic_authorized_operations
    ],
};

static OFFSET_COMMIT: Schema = Schema {
    flexible_since: 8,
    fields: &[
        all(String),      // group_id
        all(INT32),       // generation_id_or_member_epoch
        all(String),      // member_id
        since(7, String), // group_instance_id
        until(4, INT64),  // retention_time_ms
        all(Structs(&[
            all(String), // name
            all(Structs(&[
                all(INT32),      // partition_index
                all(INT64),      // committed_offset
                since(6, INT32), // committed_leader_epoch
                all(String),     // committed_metadata
            ])),
        ])),
    ],
};

static OFFSET_FETCH: Schema = Schema {
    flexible_since: 6,
    fields: &[
        until(7, String), // group_id
        until(
            7,
            Structs(&[
                until(7, String), // name
                until(7, INT32S), // partition_indexes
            ]),
        ), // topics
        since(
            8,
            Structs(&[
                since(8, String), // group_id
                since(9, String), // member_id
                since(9, INT32),  // member_epoch
                since(
                    8,
                    Structs(&[
                        since(8, String), // name
                        since(8, INT32S), // partition_indexes
                    ]),
                ), // topics
            ]),
        ), // groups
        since(7, BOOLEAN), // require_stable
    ],
};

static FIND_COORDINATOR: Schema = Schema {
    flexible_since: 3,
    fields: &[
        until(3, String),  // key
        since(1, INT8),    // key_type
        since(4, Strings), // coordinator_keys
    ],
};

static JOIN_GROUP: Schema = Schema {
    flexible_since: 6,
    fields: &[
        all(String),      // group_id
        all(INT32),       // session_timeout_ms
        since(1, INT32),  // rebalance_timeout_ms
        all(String),      // member_id
        since(5, String), // group_instance_id
        all(String),      // protocol_type
        all(Structs(&[
            all(String), // name
            all(Bytes),  // metadata
        ])),
        since(8, String), // reason
    ],
};

static HEARTBEAT: Schema = Schema {
    flexible_since: 4,
    fields: &[
        all(String),      // group_id
        all(INT32),       // generation_id
        all(String),      // member_id
        since(3, String), // group_instance_id
    ],
};

static LEAVE_GROUP: Schema = Schema {
    flexible_since: 4,
    fields: &[
        all(String),      // group_id
        until(2, String), // member_id
        since(
            3,
            Structs(&[
                since(3, String), // member_id
                since(3, String), // group_instance_id
                since(5, String), // reason
            ]),
        ), // members
    ],
};

static SYNC_GROUP: Schema = Schema {
    flexible_since: 4,
    fields: &[
        all(String),      // group_id
        all(INT32),       // generation_id
        all(String),      // member_id
        since(3, String), // group_instance_id
        since(5, String), // protocol_type
        since(5, String), // protocol_name
        all(Structs(&[
            all(String), // member_id
            all(Bytes),  // assignment
        ])),
    ],
};

static DESCRIBE_GROUPS: Schema = Schema {
    flexible_since: 5,
    fields: &[
        all(Strings),      // groups
        since(3, BOOLEAN), // include_authorized_operations
    ],
};

static LIST_GROUPS: Schema = Schema {
    flexible_since: 3,
    fields: &[
        since(4, Strings), // states_filter
        since(5, Strings), // types_filter
    ],
};

static API_VERSIONS: Schema = Schema {
    flexible_since: 3,
    fields: &[
        since(3, String), // client_software_name
        since(3, String), // client_software_version
    ],
};

static CREATE_TOPICS: Schema = Schema {
    flexible_since: 5,
    fields: &[
        all(Structs(&[
            all(String), // name
            all(INT32),  // num_partitions
            all(INT16),  // replication_factor
            all(Structs(&[
                all(INT32),  // partition_index
                all(INT32S), // broker_ids
            ])),
            all(Structs(&[
                all(String), // name
                all(String), // value
            ])),
        ])),
        all(INT32),   // timeout_ms
        all(BOOLEAN), // validate_only
    ],
};

static DELETE_TOPICS: Schema = Schema {
    flexible_since: 4,
    fields: &[
        since(
            6,
            Structs(&[
                since(6, String), // name
                since(6, UUID),   // topic_id
            ]),
        ), // topics
        until(5, Strings), // topic_names
        all(INT32),        // timeout_ms
    ],
};

static DELETE_RECORDS: Schema = Schema {
    flexible_since: 2,
    fields: &[
        all(Structs(&[
            all(String), // name
            all(Structs(&[
                all(INT32), // partition_index
                all(INT64), // offset
            ])),
        ])),
        all(INT32), // timeout_ms
    ],
};

static INIT_PRODUCER_ID: Schema = Schema {
    flexible_since: 2,
    fields: &[
        all(String),     // transactional_id
        all(INT32),      // transaction_timeout_ms
        since(3, INT64), // producer_id
        since(3, INT16), // producer_epoch
    ],
};

static DESCRIBE_CONFIGS: Schema = Schema {
    flexible_since: 4,
    fields: &[
        all(Structs(&[
            all(INT8),    // resource_type
            all(String),  // resource_name
            all(Strings), // configuration_keys
        ])),
        all(BOOLEAN),      // include_synonyms
        since(3, BOOLEAN), // include_documentation
    ],
};

static ALTER_CONFIGS: Schema = Schema {
    flexible_since: 2,
    fields: &[
        all(Structs(&[
            all(INT8),   // resource_type
            all(String), // resource_name
            all(Structs(&[
                all(String), // name
                all(String), // value (nullable)
            ])),
        ])),
        all(BOOLEAN), // validate_only
    ],
};

static INCREMENTAL_ALTER_CONFIGS: Schema = Schema {
    flexible_since: 1,
    fields: &[
        all(Structs(&[
            all(INT8),   // resource_type
            all(String), // resource_name
            all(Structs(&[
                all(String), // name
                all(INT8),   // config_operation
                all(String), // value (nullable)
            ])),
        ])),
        all(BOOLEAN), // validate_only
    ],
};

static CREATE_PARTITIONS: Schema = Schema {
    flexible_since: 2,
    fields: &[
        all(Structs(&[
            all(String), // name
            all(INT32),  // count
            all(Structs(&[
                all(INT32S), // broker_ids
            ])),
        ])),
        all(INT32),   // timeout_ms
        all(BOOLEAN), // validate_only
    ],
};

static DELETE_GROUPS: Schema = Schema {
    flexible_since: 2,
    fields: &[
        all(Strings), // groups_names
    ],
};

static OFFSET_DELETE: Schema = Schema {
    flexible_since: i16::MAX,
    fields: &[
        all(String), // group_id
        all(Structs(&[
            all(String), // name
            all(Structs(&[
                all(INT32), // partition_index
            ])),
        ])),
    ],
};
