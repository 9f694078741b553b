//! Populated requests of every supported API key, for tests: every array holds two elements
//! and every field present in the version is set where the encoder allows it.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn text(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

fn topic(s: &'static str) -> TopicName {
    TopicName(text(s))
}

fn group(s: &'static str) -> GroupId {
    GroupId(text(s))
}

fn twice<T: Clone>(item: T) -> Vec<T> {
    vec![item.clone(), item]
}

/// A request of `key` with every array holding two elements and every field present in
/// `version` set to something other than its default where the encoder allows it.
pub(crate) fn sample(key: ApiKey, version: i16) -> RequestKind {
    match key {
        ApiKey::Produce => {
            let mut partition = produce_request::PartitionProduceData::default();
            partition.index = 1;
            partition.records = Some(Bytes::from_static(b"not really a batch"));
            let mut data = produce_request::TopicProduceData::default();
            data.name = topic("orders");
            data.partition_data = twice(partition);
            let mut request = ProduceRequest::default();
            request.transactional_id = Some(TransactionalId(text("tx")));
            request.acks = -1;
            request.timeout_ms = 1000;
            request.topic_data = twice(data);
            request.into()
        }
        ApiKey::Fetch => {
            let mut partition = fetch_request::FetchPartition::default();
            partition.partition = 2;
            partition.fetch_offset = 77;
            partition.partition_max_bytes = 1 << 20;
            if version >= 12 {
                partition.last_fetched_epoch = 3;
            }
            let mut wanted = fetch_request::FetchTopic::default();
            wanted.topic = topic("orders");
            wanted.partitions = twice(partition);
            let mut request = FetchRequest::default();
            request.max_wait_ms = 500;
            request.min_bytes = 1;
            request.max_bytes = 1 << 20;
            request.topics = twice(wanted);
            if version >= 7 {
                let mut forgotten = fetch_request::ForgottenTopic::default();
                forgotten.topic = topic("old");
                forgotten.partitions = vec![1, 2, 3];
                request.forgotten_topics_data = twice(forgotten);
            }
            if version >= 11 {
                request.rack_id = text("rack-a");
            }
            if version >= 12 {
                request.cluster_id = Some(text("cluster"));
            }
            request.into()
        }
        ApiKey::ListOffsets => {
            let mut partition = list_offsets_request::ListOffsetsPartition::default();
            partition.partition_index = 1;
            partition.timestamp = -2;
            let mut wanted = list_offsets_request::ListOffsetsTopic::default();
            wanted.name = topic("orders");
            wanted.partitions = twice(partition);
            let mut request = ListOffsetsRequest::default();
            request.topics = twice(wanted);
            if version >= 2 {
                request.isolation_level = 1;
            }
            request.into()
        }
        ApiKey::Metadata => {
            let mut wanted = metadata_request::MetadataRequestTopic::default();
            wanted.name = Some(topic("orders"));
            let mut request = MetadataRequest::default();
            request.topics = Some(twice(wanted));
            if version >= 4 {
                request.allow_auto_topic_creation = false;
            }
            if (8..=10).contains(&version) {
                request.include_cluster_authorized_operations = true;
            }
            if version >= 8 {
                request.include_topic_authorized_operations = true;
            }
            request.into()
        }
        ApiKey::OffsetCommit => {
            let mut partition = offset_commit_request::OffsetCommitRequestPartition::default();
            partition.partition_index = 1;
            partition.committed_offset = 10;
            partition.committed_metadata = Some(text("meta"));
            let mut wanted = offset_commit_request::OffsetCommitRequestTopic::default();
            wanted.name = topic("orders");
            wanted.partitions = twice(partition);
            let mut request = OffsetCommitRequest::default();
            request.group_id = group("g");
            request.generation_id_or_member_epoch = 3;
            request.member_id = text("member");
            if version >= 7 {
                request.group_instance_id = Some(text("instance"));
            }
            request.topics = twice(wanted);
            request.into()
        }
        ApiKey::OffsetFetch => {
            let mut request = OffsetFetchRequest::default();
            if version >= 8 {
                let mut wanted = offset_fetch_request::OffsetFetchRequestTopics::default();
                wanted.name = topic("orders");
                wanted.partition_indexes = vec![0, 1];
                let mut entry = offset_fetch_request::OffsetFetchRequestGroup::default();
                entry.group_id = group("g");
                entry.topics = Some(twice(wanted));
                request.groups = twice(entry);
            } else {
                let mut wanted = offset_fetch_request::OffsetFetchRequestTopic::default();
                wanted.name = topic("orders");
                wanted.partition_indexes = vec![0, 1];
                request.group_id = group("g");
                request.topics = Some(twice(wanted));
            }
            if version >= 7 {
                request.require_stable = true;
            }
            request.into()
        }
        ApiKey::FindCoordinator => {
            let mut request = FindCoordinatorRequest::default();
            if version >= 4 {
                request.coordinator_keys = twice(text("g"));
            } else {
                request.key = text("g");
            }
            request.into()
        }
        ApiKey::JoinGroup => {
            let mut protocol = join_group_request::JoinGroupRequestProtocol::default();
            protocol.name = text("range");
            protocol.metadata = Bytes::from_static(b"metadata");
            let mut request = JoinGroupRequest::default();
            request.group_id = group("g");
            request.session_timeout_ms = 10_000;
            request.rebalance_timeout_ms = 20_000;
            request.member_id = text("m");
            if version >= 5 {
                request.group_instance_id = Some(text("i"));
            }
            request.protocol_type = text("consumer");
            request.protocols = twice(protocol);
            if version >= 8 {
                request.reason = Some(text("because"));
            }
            request.into()
        }
        ApiKey::Heartbeat => {
            let mut request = HeartbeatRequest::default();
            request.group_id = group("g");
            request.generation_id = 4;
            request.member_id = text("m");
            if version >= 3 {
                request.group_instance_id = Some(text("i"));
            }
            request.into()
        }
        ApiKey::LeaveGroup => {
            let mut request = LeaveGroupRequest::default();
            request.group_id = group("g");
            if version >= 3 {
                let mut member = leave_group_request::MemberIdentity::default();
                member.member_id = text("m");
                member.group_instance_id = Some(text("i"));
                if version >= 5 {
                    member.reason = Some(text("bye"));
                }
                request.members = twice(member);
            } else {
                request.member_id = text("m");
            }
            request.into()
        }
        ApiKey::SyncGroup => {
            let mut assignment = sync_group_request::SyncGroupRequestAssignment::default();
            assignment.member_id = text("m");
            assignment.assignment = Bytes::from_static(b"assignment");
            let mut request = SyncGroupRequest::default();
            request.group_id = group("g");
            request.generation_id = 4;
            request.member_id = text("m");
            if version >= 3 {
                request.group_instance_id = Some(text("i"));
            }
            if version >= 5 {
                request.protocol_type = Some(text("consumer"));
                request.protocol_name = Some(text("range"));
            }
            request.assignments = twice(assignment);
            request.into()
        }
        ApiKey::DescribeGroups => {
            let mut request = DescribeGroupsRequest::default();
            request.groups = twice(group("g"));
            if version >= 3 {
                request.include_authorized_operations = true;
            }
            request.into()
        }
        ApiKey::ListGroups => {
            let mut request = ListGroupsRequest::default();
            if version >= 4 {
                request.states_filter = twice(text("Stable"));
            }
            request.into()
        }
        ApiKey::ApiVersions => {
            let mut request = ApiVersionsRequest::default();
            request.client_software_name = text("librdkafka");
            request.client_software_version = text("2.10.0");
            request.into()
        }
        ApiKey::CreateTopics => {
            let mut assignment = create_topics_request::CreatableReplicaAssignment::default();
            assignment.partition_index = 0;
            assignment.broker_ids = vec![BrokerId(0), BrokerId(1)];
            let mut config = create_topics_request::CreatableTopicConfig::default();
            config.name = text("retention.ms");
            config.value = Some(text("1000"));
            let mut wanted = create_topics_request::CreatableTopic::default();
            wanted.name = topic("orders");
            wanted.num_partitions = 3;
            wanted.replication_factor = 1;
            wanted.assignments = twice(assignment);
            wanted.configs = twice(config);
            let mut request = CreateTopicsRequest::default();
            request.topics = twice(wanted);
            request.timeout_ms = 1000;
            request.validate_only = true;
            request.into()
        }
        ApiKey::DeleteTopics => {
            let mut request = DeleteTopicsRequest::default();
            if version >= 6 {
                let mut state = delete_topics_request::DeleteTopicState::default();
                state.name = Some(topic("orders"));
                request.topics = twice(state);
            } else {
                request.topic_names = twice(topic("orders"));
            }
            request.timeout_ms = 1000;
            request.into()
        }
        ApiKey::DeleteRecords => {
            let mut partition = delete_records_request::DeleteRecordsPartition::default();
            partition.partition_index = 1;
            partition.offset = 5;
            let mut wanted = delete_records_request::DeleteRecordsTopic::default();
            wanted.name = topic("orders");
            wanted.partitions = twice(partition);
            let mut request = DeleteRecordsRequest::default();
            request.topics = twice(wanted);
            request.into()
        }
        ApiKey::InitProducerId => {
            let mut request = InitProducerIdRequest::default();
            request.transactional_id = Some(TransactionalId(text("tx")));
            request.transaction_timeout_ms = 60_000;
            if version >= 3 {
                request.producer_id = ProducerId(7);
                request.producer_epoch = 2;
            }
            request.into()
        }
        ApiKey::DescribeConfigs => {
            let mut resource = describe_configs_request::DescribeConfigsResource::default();
            resource.resource_type = 2;
            resource.resource_name = text("orders");
            resource.configuration_keys = Some(twice(text("retention.ms")));
            let mut request = DescribeConfigsRequest::default();
            request.resources = twice(resource);
            request.include_synonyms = true;
            if version >= 3 {
                request.include_documentation = true;
            }
            request.into()
        }
        ApiKey::AlterConfigs => {
            let mut config = alter_configs_request::AlterableConfig::default();
            config.name = text("retention.ms");
            config.value = Some(text("60000"));
            let mut resource = alter_configs_request::AlterConfigsResource::default();
            resource.resource_type = 2;
            resource.resource_name = text("orders");
            resource.configs = twice(config);
            let mut request = AlterConfigsRequest::default();
            request.resources = twice(resource);
            request.validate_only = true;
            request.into()
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut config = incremental_alter_configs_request::AlterableConfig::default();
            config.name = text("retention.ms");
            config.config_operation = 1;
            config.value = None;
            let mut resource = incremental_alter_configs_request::AlterConfigsResource::default();
            resource.resource_type = 2;
            resource.resource_name = text("orders");
            resource.configs = twice(config);
            let mut request = IncrementalAlterConfigsRequest::default();
            request.resources = twice(resource);
            request.validate_only = true;
            request.into()
        }
        ApiKey::OffsetDelete => {
            let mut partition = offset_delete_request::OffsetDeleteRequestPartition::default();
            partition.partition_index = 0;
            let mut wanted = offset_delete_request::OffsetDeleteRequestTopic::default();
            wanted.name = topic("orders");
            wanted.partitions = twice(partition);
            let mut request = OffsetDeleteRequest::default();
            request.group_id = group("billing");
            request.topics = twice(wanted);
            request.into()
        }
        ApiKey::CreatePartitions => {
            let mut assignment = create_partitions_request::CreatePartitionsAssignment::default();
            assignment.broker_ids = vec![BrokerId(0)];
            let mut wanted = create_partitions_request::CreatePartitionsTopic::default();
            wanted.name = topic("orders");
            wanted.count = 4;
            wanted.assignments = Some(twice(assignment));
            let mut request = CreatePartitionsRequest::default();
            request.topics = twice(wanted);
            request.into()
        }
        ApiKey::DeleteGroups => {
            let mut request = DeleteGroupsRequest::default();
            request.groups_names = twice(group("g"));
            request.into()
        }
        other => panic!("no sample for {other:?}"),
    }
}
