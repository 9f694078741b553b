//! Protocol choice, delete, list and describe, static membership, and the bounds.

use bytes::Bytes;
use omnibus_engine::groups::coordinator::*;
use omnibus_engine::*;
use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn protocol_choice_and_validation_follow_the_members() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let with_protocols = |member_id: &str, client: &str, names: &[&str]| JoinRequest {
        protocols: names
            .iter()
            .map(|n| (n.to_string(), Bytes::from(format!("{client}:{n}"))))
            .collect(),
        ..request("g", member_id, client, "")
    };
    assert!(matches!(
        within(coordinator.join(JoinRequest {
            session_timeout_ms: 99,
            ..request("g", "", "a", "a")
        }))
        .await,
        Err(EngineError::InvalidSessionTimeout)
    ));
    assert!(matches!(
        within(coordinator.join(JoinRequest {
            protocols: vec![],
            ..request("g", "", "a", "a")
        }))
        .await,
        Err(EngineError::InconsistentGroupProtocol)
    ));
    assert!(matches!(
        within(coordinator.join(request("", "", "a", "a"))).await,
        Err(EngineError::InvalidGroupId(_))
    ));

    let a = within(coordinator.join(with_protocols("", "a", &["roundrobin", "range"])))
        .await
        .unwrap();
    assert_eq!(a.protocol_name, "roundrobin");
    assert!(matches!(
        within(coordinator.join(with_protocols("", "x", &["sticky"]))).await,
        Err(EngineError::InconsistentGroupProtocol)
    ));
    assert!(matches!(
        within(coordinator.join(JoinRequest {
            protocol_type: "connect".into(),
            ..with_protocols("", "x", &["range"])
        }))
        .await,
        Err(EngineError::InconsistentGroupProtocol)
    ));
    // Two members prefer range; roundrobin is common but outvoted.
    let b_join = spawn_join(
        coordinator,
        with_protocols("", "b", &["range", "roundrobin"]),
    );
    let c_join = spawn_join(
        coordinator,
        with_protocols("", "c", &["range", "roundrobin"]),
    );
    wait_for_state(coordinator, "g", GroupState::PreparingRebalance).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let a = within(coordinator.join(with_protocols(&a.member_id, "a", &["roundrobin", "range"])))
        .await
        .unwrap();
    within(b_join).await.unwrap().unwrap();
    within(c_join).await.unwrap().unwrap();
    assert_eq!(a.protocol_name, "range");
    assert_eq!(a.members[0].metadata, Bytes::from_static(b"a:range"));
}

#[tokio::test]
async fn delete_refuses_a_group_with_members_and_removes_an_empty_groups_offsets() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let commit = |offset| {
        vec![OffsetCommit {
            stream: "orders".into(),
            partition: 0,
            offset,
            metadata: String::new(),
        }]
    };
    assert!(matches!(
        coordinator.delete("never-seen").await,
        Err(EngineError::GroupNotFound)
    ));

    let a = stable_single(coordinator, "g", "a").await;
    coordinator
        .validate_commit("g", &a.member_id, a.generation_id)
        .unwrap();
    setup.engine.commit_offsets("g", commit(42)).await.unwrap();
    assert!(matches!(
        coordinator.delete("g").await,
        Err(EngineError::GroupNotEmpty)
    ));
    assert_eq!(
        setup
            .engine
            .committed_offsets("g", None)
            .await
            .unwrap()
            .len(),
        1
    );

    coordinator.leave("g", vec![a.member_id.clone()]).await;
    let description = coordinator.describe("g").await.unwrap();
    assert_eq!(
        description.state,
        GroupState::Empty,
        "offsets keep the group"
    );
    assert_eq!(description.protocol_type, "consumer");
    coordinator.delete("g").await.unwrap();
    assert!(setup
        .engine
        .committed_offsets("g", None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        coordinator.describe("g").await.unwrap().state,
        GroupState::Dead
    );
    assert!(matches!(
        coordinator.delete("g").await,
        Err(EngineError::GroupNotFound)
    ));

    // A group known only by offsets (a standalone committer) can be deleted too.
    coordinator.validate_commit("standalone", "", -1).unwrap();
    setup
        .engine
        .commit_offsets("standalone", commit(7))
        .await
        .unwrap();
    coordinator.delete("standalone").await.unwrap();
    assert!(setup.engine.list_groups().await.unwrap().is_empty());
}

#[tokio::test]
async fn list_and_describe_show_members_offsets_only_groups_and_states() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    setup
        .engine
        .commit_offsets(
            "archived",
            vec![OffsetCommit {
                stream: "orders".into(),
                partition: 1,
                offset: 3,
                metadata: String::new(),
            }],
        )
        .await
        .unwrap();
    let (a, _b) = stable_pair(&setup, "live").await;
    let joining = within(coordinator.join(request("joining", "", "z", "z")))
        .await
        .unwrap();

    let listed: Vec<(String, String, GroupState)> = coordinator
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.group, l.protocol_type, l.state))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("archived".into(), "consumer".into(), GroupState::Empty),
            (
                "joining".into(),
                "consumer".into(),
                GroupState::CompletingRebalance
            ),
            ("live".into(), "consumer".into(), GroupState::Stable),
        ]
    );
    let live = coordinator.describe("live").await.unwrap();
    assert_eq!(live.state.as_str(), "Stable");
    assert_eq!(live.members[0].member_id, a.member_id);
    assert_eq!(live.members[0].client_host, "/127.0.0.1");
    assert_eq!(live.members[0].assignment, Bytes::from_static(b"p0"));
    // Not Stable: Kafka shows members without metadata or assignment.
    let joining_description = coordinator.describe("joining").await.unwrap();
    assert_eq!(joining_description.state.as_str(), "CompletingRebalance");
    assert_eq!(joining_description.protocol, "");
    assert_eq!(joining_description.members[0].member_id, joining.member_id);
    assert!(joining_description.members[0].metadata.is_empty());
    let unknown = coordinator.describe("unknown").await.unwrap();
    assert_eq!(
        (unknown.state, unknown.members.len()),
        (GroupState::Dead, 0)
    );
}

#[tokio::test]
async fn a_static_member_rejoining_under_a_new_id_fences_the_old_one() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let static_request = |member_id: &str| JoinRequest {
        group_instance_id: Some("consumer-1".into()),
        require_known_member_id: true,
        ..request("g", member_id, "a", "a")
    };
    // Static members skip the member-id round trip.
    let first = within(coordinator.join(static_request(""))).await.unwrap();
    assert!(first.member_id.starts_with("consumer-1-"));
    within(coordinator.sync(SyncRequest {
        group_instance_id: Some("consumer-1".into()),
        ..sync_request("g", &first.member_id, first.generation_id, vec![])
    }))
    .await
    .unwrap();
    // The process restarts and rejoins without its member id.
    let second = within(coordinator.join(static_request(""))).await.unwrap();
    assert_ne!(second.member_id, first.member_id);
    assert!(matches!(
        within(coordinator.sync(SyncRequest {
            group_instance_id: Some("consumer-1".into()),
            ..sync_request("g", &first.member_id, second.generation_id, vec![])
        }))
        .await,
        Err(EngineError::FencedInstanceId)
    ));
    assert_eq!(coordinator.describe("g").await.unwrap().members.len(), 1);
}

#[tokio::test]
async fn groups_and_members_are_bounded() {
    let setup = setup_with(CoordinatorLimits {
        groups_max: 1,
        members_per_group_max: 1,
        member_metadata_bytes_max: 64,
        ..test_limits()
    })
    .await;
    let coordinator = &setup.coordinator;
    within(coordinator.join(request("g", "", "a", "a")))
        .await
        .unwrap();
    assert!(matches!(
        within(coordinator.join(request("g", "", "b", "b"))).await,
        Err(EngineError::GroupFull)
    ));
    assert!(matches!(
        within(coordinator.join(request("other", "", "b", "b"))).await,
        Err(EngineError::GroupLimitExceeded(_))
    ));
    assert!(matches!(
        within(coordinator.join(request("g", "", "b", &"x".repeat(100)))).await,
        Err(EngineError::GroupLimitExceeded(_))
    ));
}

#[tokio::test]
async fn a_leader_that_never_sends_assignments_is_dropped_and_the_followers_rejoin() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let quick = |member_id: &str, client: &str| JoinRequest {
        rebalance_timeout_ms: 200,
        ..request("g", member_id, client, client)
    };
    let a = within(coordinator.join(quick("", "a"))).await.unwrap();
    let b_join = spawn_join(coordinator, quick("", "b"));
    wait_for_state(coordinator, "g", GroupState::PreparingRebalance).await;
    let a = within(coordinator.join(quick(&a.member_id, "a")))
        .await
        .unwrap();
    let b = within(b_join).await.unwrap().unwrap();
    assert_eq!(b.leader, a.member_id);

    // b waits for assignments that never come: the leader is dropped after the rebalance
    // timeout and b is told to rejoin.
    let waiting =
        within(coordinator.sync(sync_request("g", &b.member_id, b.generation_id, vec![]))).await;
    assert!(matches!(waiting, Err(EngineError::RebalanceInProgress)));
    let b_alone = within(coordinator.join(quick(&b.member_id, "b")))
        .await
        .unwrap();
    assert_eq!(b_alone.leader, b.member_id, "the remaining member leads");
    assert_eq!(b_alone.members.len(), 1);
    assert!(matches!(
        coordinator.heartbeat("g", &a.member_id, b_alone.generation_id),
        Err(EngineError::UnknownMember)
    ));
}

#[tokio::test]
async fn an_unclaimed_member_id_expires_after_the_session_timeout() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let first = JoinRequest {
        require_known_member_id: true,
        session_timeout_ms: SHORT_SESSION_MS,
        ..request("g", "", "slow", "m")
    };
    let Err(EngineError::MemberIdRequired(member_id)) =
        within(coordinator.join(first.clone())).await
    else {
        panic!("a new member is told its id first");
    };
    tokio::time::sleep(Duration::from_millis(SHORT_SESSION_MS + 100)).await;
    assert_eq!(
        coordinator.describe("g").await.unwrap().state,
        GroupState::Dead
    );
    assert!(matches!(
        within(coordinator.join(JoinRequest { member_id, ..first })).await,
        Err(EngineError::UnknownMember)
    ));
}
