//! Group coordination through the handlers: the member-id-required join, sync, heartbeat,
//! commits, offset fetch, describe, list, leave and delete.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::fixture;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn join_request(member_id: &str) -> JoinGroupRequest {
    let mut protocol = join_group_request::JoinGroupRequestProtocol::default();
    protocol.name = text("range");
    protocol.metadata = Bytes::from_static(b"subscription");
    let mut request = JoinGroupRequest::default();
    request.group_id = GroupId(text("g"));
    request.session_timeout_ms = 10_000;
    request.rebalance_timeout_ms = 10_000;
    request.member_id = text(member_id);
    request.protocol_type = text("consumer");
    request.protocols = vec![protocol];
    request
}

#[tokio::test]
async fn a_consumer_joins_syncs_commits_and_leaves() {
    let fixture = fixture().await;
    fixture.create("t", 2).await;

    // v4+: the first join only hands out the member id.
    let ResponseKind::JoinGroup(first) = fixture
        .respond(ApiKey::JoinGroup, join_request(""), 7)
        .await
    else {
        panic!()
    };
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let member = first.member_id.to_string();
    assert!(!member.is_empty());

    let ResponseKind::JoinGroup(joined) = fixture
        .respond(ApiKey::JoinGroup, join_request(&member), 7)
        .await
    else {
        panic!()
    };
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader.as_str(), member);
    assert_eq!(
        joined.protocol_name.as_ref().map(|p| p.as_str()),
        Some("range")
    );
    assert_eq!(joined.members.len(), 1);
    let generation = joined.generation_id;

    let mut assignment = sync_group_request::SyncGroupRequestAssignment::default();
    assignment.member_id = text(&member);
    assignment.assignment = Bytes::from_static(b"partitions 0 and 1");
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(text("g"));
    sync.generation_id = generation;
    sync.member_id = text(&member);
    sync.protocol_type = Some(text("consumer"));
    sync.protocol_name = Some(text("range"));
    sync.assignments = vec![assignment];
    let ResponseKind::SyncGroup(synced) = fixture.respond(ApiKey::SyncGroup, sync, 5).await else {
        panic!()
    };
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"partitions 0 and 1");
    assert_eq!(
        synced.protocol_name.as_ref().map(|p| p.as_str()),
        Some("range")
    );

    let mut heartbeat = HeartbeatRequest::default();
    heartbeat.group_id = GroupId(text("g"));
    heartbeat.generation_id = generation;
    heartbeat.member_id = text(&member);
    let ResponseKind::Heartbeat(beat) = fixture
        .respond(ApiKey::Heartbeat, heartbeat.clone(), 4)
        .await
    else {
        panic!()
    };
    assert_eq!(beat.error_code, 0);
    heartbeat.generation_id = generation + 5;
    let ResponseKind::Heartbeat(stale) = fixture.respond(ApiKey::Heartbeat, heartbeat, 4).await
    else {
        panic!()
    };
    assert_eq!(stale.error_code, 22, "ILLEGAL_GENERATION");

    // Commit: one good partition, one unknown partition, one from a stale generation.
    let commit = |generation_id: i32, partitions: Vec<(i32, i64)>| {
        let mut topic = offset_commit_request::OffsetCommitRequestTopic::default();
        topic.name = TopicName(text("t"));
        topic.partitions = partitions
            .into_iter()
            .map(|(index, offset)| {
                let mut partition = offset_commit_request::OffsetCommitRequestPartition::default();
                partition.partition_index = index;
                partition.committed_offset = offset;
                partition.committed_metadata = Some(text("m"));
                partition
            })
            .collect();
        let mut request = OffsetCommitRequest::default();
        request.group_id = GroupId(text("g"));
        request.generation_id_or_member_epoch = generation_id;
        request.member_id = text(&member);
        request.topics = vec![topic];
        request
    };
    let ResponseKind::OffsetCommit(committed) = fixture
        .respond(
            ApiKey::OffsetCommit,
            commit(generation, vec![(0, 42), (9, 1)]),
            8,
        )
        .await
    else {
        panic!()
    };
    let codes: Vec<i16> = committed.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, [0, 3]);
    let ResponseKind::OffsetCommit(refused) = fixture
        .respond(
            ApiKey::OffsetCommit,
            commit(generation + 1, vec![(1, 7)]),
            8,
        )
        .await
    else {
        panic!()
    };
    assert_eq!(refused.topics[0].partitions[0].error_code, 22);

    // Offset fetch in both shapes: -1 where nothing was committed.
    let mut wanted = offset_fetch_request::OffsetFetchRequestTopic::default();
    wanted.name = TopicName(text("t"));
    wanted.partition_indexes = vec![0, 1];
    let mut fetch = OffsetFetchRequest::default();
    fetch.group_id = GroupId(text("g"));
    fetch.topics = Some(vec![wanted]);
    let ResponseKind::OffsetFetch(fetched) = fixture.respond(ApiKey::OffsetFetch, fetch, 5).await
    else {
        panic!()
    };
    let offsets: Vec<i64> = fetched.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(offsets, [42, -1]);
    let mut group = offset_fetch_request::OffsetFetchRequestGroup::default();
    group.group_id = GroupId(text("g"));
    group.topics = None;
    let mut batched = OffsetFetchRequest::default();
    batched.groups = vec![group];
    let ResponseKind::OffsetFetch(fetched) = fixture.respond(ApiKey::OffsetFetch, batched, 8).await
    else {
        panic!()
    };
    let partitions = &fetched.groups[0].topics[0].partitions;
    assert_eq!(
        partitions.len(),
        1,
        "null topics: every committed partition"
    );
    assert_eq!(partitions[0].committed_offset, 42);
    assert_eq!(
        partitions[0].metadata.as_ref().map(|m| m.as_str()),
        Some("m")
    );

    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![GroupId(text("g")), GroupId(text("nobody"))];
    let ResponseKind::DescribeGroups(described) =
        fixture.respond(ApiKey::DescribeGroups, describe, 5).await
    else {
        panic!()
    };
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(described.groups[0].members.len(), 1);
    assert_eq!(
        described.groups[0].members[0].client_host.as_str(),
        "/127.0.0.1"
    );
    assert_eq!(described.groups[1].group_state.as_str(), "Dead");

    let ResponseKind::ListGroups(listed) = fixture
        .respond(ApiKey::ListGroups, ListGroupsRequest::default(), 4)
        .await
    else {
        panic!()
    };
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(listed.groups[0].group_state.as_str(), "Stable");

    let mut delete = DeleteGroupsRequest::default();
    delete.groups_names = vec![GroupId(text("g"))];
    let ResponseKind::DeleteGroups(deleted) = fixture
        .respond(ApiKey::DeleteGroups, delete.clone(), 2)
        .await
    else {
        panic!()
    };
    assert_eq!(deleted.results[0].error_code, 68, "NON_EMPTY_GROUP");

    let mut identity = leave_group_request::MemberIdentity::default();
    identity.member_id = text(&member);
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(text("g"));
    leave.members = vec![identity];
    let ResponseKind::LeaveGroup(left) = fixture.respond(ApiKey::LeaveGroup, leave, 5).await else {
        panic!()
    };
    assert_eq!(left.error_code, 0);
    assert_eq!(left.members[0].error_code, 0);

    let ResponseKind::DeleteGroups(deleted) =
        fixture.respond(ApiKey::DeleteGroups, delete, 2).await
    else {
        panic!()
    };
    assert_eq!(deleted.results[0].error_code, 0);
    assert!(fixture
        .engine()
        .committed_offsets("g", None)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn find_coordinator_answers_both_shapes_and_refuses_transactions() {
    let fixture = fixture().await;
    let mut single = FindCoordinatorRequest::default();
    single.key = text("g");
    let ResponseKind::FindCoordinator(found) =
        fixture.respond(ApiKey::FindCoordinator, single, 3).await
    else {
        panic!()
    };
    assert_eq!(
        (found.error_code, found.node_id, found.port),
        (0, BrokerId(0), 9092)
    );
    assert_eq!(found.host.as_str(), "127.0.0.1");
    let mut batched = FindCoordinatorRequest::default();
    batched.coordinator_keys = vec![text("a"), text("b")];
    let ResponseKind::FindCoordinator(found) =
        fixture.respond(ApiKey::FindCoordinator, batched, 4).await
    else {
        panic!()
    };
    assert_eq!(found.coordinators.len(), 2);
    assert_eq!(found.coordinators[1].key.as_str(), "b");
    let mut transaction = FindCoordinatorRequest::default();
    transaction.key = text("tx");
    transaction.key_type = 1;
    let ResponseKind::FindCoordinator(refused) = fixture
        .respond(ApiKey::FindCoordinator, transaction, 2)
        .await
    else {
        panic!()
    };
    assert_ne!(refused.error_code, 0);
}

fn offset_delete(group: &str, topic: &str, partitions: &[i32]) -> OffsetDeleteRequest {
    let mut wanted = offset_delete_request::OffsetDeleteRequestTopic::default();
    wanted.name = TopicName(text(topic));
    wanted.partitions = partitions
        .iter()
        .map(|index| {
            let mut partition = offset_delete_request::OffsetDeleteRequestPartition::default();
            partition.partition_index = *index;
            partition
        })
        .collect();
    let mut request = OffsetDeleteRequest::default();
    request.group_id = GroupId(text(group));
    request.topics = vec![wanted];
    request
}

#[tokio::test]
async fn offset_delete_forgets_an_empty_groups_offsets_for_the_partitions_named() {
    let fixture = fixture().await;
    fixture.create("t", 2).await;
    let commits = (0..2)
        .map(|partition| omnibus_engine::OffsetCommit {
            stream: "t".into(),
            partition,
            offset: 5,
            metadata: String::new(),
        })
        .collect();
    fixture
        .engine()
        .commit_offsets("billing", commits)
        .await
        .unwrap();

    let ResponseKind::OffsetDelete(deleted) = fixture
        .respond(ApiKey::OffsetDelete, offset_delete("billing", "t", &[0]), 0)
        .await
    else {
        panic!()
    };
    assert_eq!(deleted.error_code, 0);
    assert_eq!(deleted.topics[0].partitions[0].error_code, 0);
    let left = fixture
        .engine()
        .committed_offsets("billing", None)
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|c| c.partition).collect::<Vec<_>>(),
        [1],
        "only partition 0's offset is gone"
    );

    let ResponseKind::OffsetDelete(unknown) = fixture
        .respond(ApiKey::OffsetDelete, offset_delete("nobody", "t", &[0]), 0)
        .await
    else {
        panic!()
    };
    assert_eq!(unknown.error_code, 69, "GROUP_ID_NOT_FOUND");
}
