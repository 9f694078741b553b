//! Joining, syncing, heartbeats, session expiry, rebalances, leaving, generations and commits.

use bytes::Bytes;
use omnibus_engine::groups::coordinator::*;
use omnibus_engine::EngineError;
use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn two_members_joining_together_share_a_generation_and_only_the_leader_sees_metadata() {
    let setup = setup_with(CoordinatorLimits {
        initial_rebalance_delay_ms: 200,
        ..test_limits()
    })
    .await;
    let coordinator = &setup.coordinator;
    let first = spawn_join(coordinator, request("g", "", "first", "meta-first"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = spawn_join(coordinator, request("g", "", "second", "meta-second"));
    let first = within(first).await.unwrap().unwrap();
    let second = within(second).await.unwrap().unwrap();

    assert_eq!(first.generation_id, 1);
    assert_eq!(second.generation_id, 1);
    assert_eq!(first.leader, first.member_id, "the first joiner leads");
    assert_eq!(second.leader, first.member_id);
    assert!(first.member_id.starts_with("first-"));
    assert!(second.member_id.starts_with("second-"));
    assert_ne!(first.member_id, second.member_id);
    assert_eq!(first.protocol_type, "consumer");
    assert_eq!(first.protocol_name, "range");
    let seen: Vec<(String, Bytes)> = first
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.metadata.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (first.member_id.clone(), Bytes::from_static(b"meta-first")),
            (second.member_id.clone(), Bytes::from_static(b"meta-second")),
        ]
    );
    assert!(second.members.is_empty(), "followers see no member list");
    assert_eq!(
        coordinator.describe("g").await.unwrap().state,
        GroupState::CompletingRebalance
    );
    assert!(coordinator.heartbeat("g", &second.member_id, 1).is_ok());

    // The follower's sync waits for the leader's assignments.
    let follower_sync = spawn_sync(coordinator, sync_request("g", &second.member_id, 1, vec![]));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!follower_sync.is_finished());
    let leader_assignment = within(coordinator.sync(sync_request(
        "g",
        &first.member_id,
        1,
        vec![
            (first.member_id.clone(), Bytes::from_static(b"orders-0")),
            (second.member_id.clone(), Bytes::from_static(b"orders-1")),
        ],
    )))
    .await
    .unwrap();
    assert_eq!(leader_assignment, Bytes::from_static(b"orders-0"));
    assert_eq!(
        within(follower_sync).await.unwrap().unwrap(),
        Bytes::from_static(b"orders-1")
    );

    let description = coordinator.describe("g").await.unwrap();
    assert_eq!(description.state, GroupState::Stable);
    assert_eq!(description.protocol, "range");
    assert_eq!(description.members.len(), 2);
    assert_eq!(
        description.members[1].assignment,
        Bytes::from_static(b"orders-1")
    );
    assert_eq!(
        description.members[1].metadata,
        Bytes::from_static(b"meta-second")
    );
    assert_eq!(description.members[1].client_id, "second");
    assert!(coordinator.heartbeat("g", &first.member_id, 1).is_ok());
    // A late sync in Stable returns the member's assignment at once.
    let again = within(coordinator.sync(sync_request("g", &second.member_id, 1, vec![])))
        .await
        .unwrap();
    assert_eq!(again, Bytes::from_static(b"orders-1"));
}

#[tokio::test]
async fn a_third_member_makes_the_others_rejoin_through_heartbeat_errors() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let (a, b) = stable_pair(&setup, "g").await;
    assert_eq!(a.generation_id, 2);

    let c_join = spawn_join(coordinator, request("g", "", "c", "c"));
    wait_for_state(coordinator, "g", GroupState::PreparingRebalance).await;
    for member in [&a, &b] {
        assert!(matches!(
            coordinator.heartbeat("g", &member.member_id, member.generation_id),
            Err(EngineError::RebalanceInProgress)
        ));
    }
    let a_join = spawn_join(coordinator, request("g", &a.member_id, "a", "a"));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!c_join.is_finished(), "the join phase waits for b");
    assert!(matches!(
        coordinator.heartbeat("g", &b.member_id, b.generation_id),
        Err(EngineError::RebalanceInProgress)
    ));
    let b_rejoined = within(coordinator.join(request("g", &b.member_id, "b", "b")))
        .await
        .unwrap();
    let a_rejoined = within(a_join).await.unwrap().unwrap();
    let c_joined = within(c_join).await.unwrap().unwrap();
    for response in [&a_rejoined, &b_rejoined, &c_joined] {
        assert_eq!(response.generation_id, 3);
        assert_eq!(
            response.leader, a.member_id,
            "the rejoining leader stays leader"
        );
    }
    assert_eq!(a_rejoined.members.len(), 3);
    assert!(c_joined.members.is_empty());
    // The old generation is over.
    assert!(matches!(
        coordinator.heartbeat("g", &b.member_id, 2),
        Err(EngineError::IllegalGeneration)
    ));
    assert!(coordinator.heartbeat("g", &b.member_id, 3).is_ok());
}

#[tokio::test]
async fn a_member_that_stops_heartbeating_expires_and_the_rest_rebalance_without_it() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let short = |member_id: &str, client: &str| JoinRequest {
        session_timeout_ms: SHORT_SESSION_MS,
        rebalance_timeout_ms: SESSION_MS,
        ..request("g", member_id, client, client)
    };
    let a = within(coordinator.join(short("", "a"))).await.unwrap();
    let b_join = spawn_join(coordinator, short("", "b"));
    wait_for_state(coordinator, "g", GroupState::PreparingRebalance).await;
    let a = within(coordinator.join(short(&a.member_id, "a")))
        .await
        .unwrap();
    let b = within(b_join).await.unwrap().unwrap();
    let b_sync = spawn_sync(
        coordinator,
        sync_request("g", &b.member_id, b.generation_id, vec![]),
    );
    within(coordinator.sync(sync_request("g", &a.member_id, a.generation_id, vec![])))
        .await
        .unwrap();
    within(b_sync).await.unwrap().unwrap();

    // a keeps heartbeating; b goes silent.
    let rebalance = within(async {
        loop {
            match coordinator.heartbeat("g", &a.member_id, a.generation_id) {
                Ok(()) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(error) => return error,
            }
        }
    })
    .await;
    assert!(matches!(rebalance, EngineError::RebalanceInProgress));
    let a_rejoined = within(coordinator.join(short(&a.member_id, "a")))
        .await
        .unwrap();
    assert_eq!(a_rejoined.generation_id, a.generation_id + 1);
    assert_eq!(a_rejoined.leader, a.member_id);
    let members: Vec<&str> = a_rejoined
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(members, vec![a.member_id.as_str()]);
    assert!(matches!(
        coordinator.heartbeat("g", &b.member_id, b.generation_id),
        Err(EngineError::UnknownMember)
    ));
}

#[tokio::test]
async fn a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped() {
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
    assert_eq!(a.generation_id, 2);
    let b_sync = spawn_sync(coordinator, sync_request("g", &b.member_id, 2, vec![]));
    within(coordinator.sync(sync_request("g", &a.member_id, 2, vec![])))
        .await
        .unwrap();
    within(b_sync).await.unwrap().unwrap();

    // The leader's rejoin in Stable starts a rebalance; b never comes back.
    let started = tokio::time::Instant::now();
    let a_again = within(coordinator.join(quick(&a.member_id, "a")))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(a_again.generation_id, 3);
    assert_eq!(a_again.members.len(), 1);
    assert!(matches!(
        coordinator.heartbeat("g", &b.member_id, 2),
        Err(EngineError::UnknownMember)
    ));
}

#[tokio::test]
async fn leaving_rebalances_the_rest_and_the_last_leave_empties_the_group() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let (a, b) = stable_pair(&setup, "g").await;

    let results = coordinator
        .leave("g", vec![b.member_id.clone(), "nobody".into()])
        .await;
    assert!(results[0].1.is_ok());
    assert!(matches!(results[1].1, Err(EngineError::UnknownMember)));
    assert!(matches!(
        coordinator.heartbeat("g", &a.member_id, a.generation_id),
        Err(EngineError::RebalanceInProgress)
    ));
    let a_rejoined = within(coordinator.join(request("g", &a.member_id, "a", "a")))
        .await
        .unwrap();
    assert_eq!(a_rejoined.generation_id, a.generation_id + 1);
    assert_eq!(a_rejoined.members.len(), 1);

    let results = coordinator.leave("g", vec![a.member_id.clone()]).await;
    assert!(results[0].1.is_ok());
    // No offsets were committed, so the empty group is gone, as in Kafka.
    assert_eq!(
        coordinator.describe("g").await.unwrap().state,
        GroupState::Dead
    );
    assert!(coordinator.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_new_member_must_join_twice_when_it_requires_a_known_member_id() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let first = JoinRequest {
        require_known_member_id: true,
        ..request("g", "", "rdkafka", "m")
    };
    let Err(EngineError::MemberIdRequired(member_id)) =
        within(coordinator.join(first.clone())).await
    else {
        panic!("a new member is told its id first");
    };
    assert!(member_id.starts_with("rdkafka-"));
    assert_eq!(coordinator.describe("g").await.unwrap().members.len(), 0);
    let joined = within(coordinator.join(JoinRequest {
        member_id: member_id.clone(),
        ..first.clone()
    }))
    .await
    .unwrap();
    assert_eq!(joined.member_id, member_id);
    assert_eq!(joined.leader, member_id);
    assert_eq!(joined.generation_id, 1);
    // An id the coordinator never gave out is refused.
    assert!(matches!(
        within(coordinator.join(JoinRequest {
            member_id: "rdkafka-made-up".into(),
            ..first
        }))
        .await,
        Err(EngineError::UnknownMember)
    ));
}

#[tokio::test]
async fn a_stale_generation_is_illegal_for_sync_heartbeat_and_commit() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let (a, b) = stable_pair(&setup, "g").await;
    let stale = a.generation_id - 1;
    assert!(matches!(
        within(coordinator.sync(sync_request("g", &b.member_id, stale, vec![]))).await,
        Err(EngineError::IllegalGeneration)
    ));
    assert!(matches!(
        coordinator.heartbeat("g", &a.member_id, stale),
        Err(EngineError::IllegalGeneration)
    ));
    assert!(matches!(
        coordinator.validate_commit("g", &a.member_id, stale),
        Err(EngineError::IllegalGeneration)
    ));
    assert!(matches!(
        coordinator.validate_commit("g", "stranger", a.generation_id),
        Err(EngineError::UnknownMember)
    ));
    assert!(matches!(
        within(coordinator.sync(sync_request("g", "stranger", a.generation_id, vec![]))).await,
        Err(EngineError::UnknownMember)
    ));
    // A client committing without membership is refused while the group has members.
    assert!(matches!(
        coordinator.validate_commit("g", "", -1),
        Err(EngineError::IllegalGeneration)
    ));
    assert!(coordinator
        .validate_commit("g", &a.member_id, a.generation_id)
        .is_ok());
}

#[tokio::test]
async fn commits_follow_kafka_rules_during_a_rebalance() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    // A standalone client (no membership) may commit to a group nobody has joined.
    assert!(coordinator.validate_commit("solo", "", -1).is_ok());
    assert!(matches!(
        coordinator.validate_commit("solo", "someone", 3),
        Err(EngineError::IllegalGeneration)
    ));

    let (a, b) = stable_pair(&setup, "g").await;
    let c_join = spawn_join(coordinator, request("g", "", "c", "c"));
    wait_for_state(coordinator, "g", GroupState::PreparingRebalance).await;
    // Members commit what they processed before rejoining, with the ending generation.
    assert!(coordinator
        .validate_commit("g", &a.member_id, a.generation_id)
        .is_ok());
    let a_join = spawn_join(coordinator, request("g", &a.member_id, "a", "a"));
    within(coordinator.join(request("g", &b.member_id, "b", "b")))
        .await
        .unwrap();
    let a_new = within(a_join).await.unwrap().unwrap();
    within(c_join).await.unwrap().unwrap();
    // Joined but not yet assigned: the commit must wait for the sync.
    assert!(matches!(
        coordinator.validate_commit("g", &a.member_id, a_new.generation_id),
        Err(EngineError::RebalanceInProgress)
    ));
    // A sync during PreparingRebalance is refused too.
    let d_join = spawn_join(coordinator, request("g", "", "d", "d"));
    wait_for_state(coordinator, "g", GroupState::PreparingRebalance).await;
    assert!(matches!(
        within(coordinator.sync(sync_request("g", &a.member_id, a_new.generation_id, vec![])))
            .await,
        Err(EngineError::RebalanceInProgress)
    ));
    d_join.abort();
}

#[tokio::test]
async fn a_rejoining_follower_with_the_same_metadata_keeps_its_generation_but_the_leader_rebalances(
) {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let (a, b) = stable_pair(&setup, "g").await;
    let b_again = within(coordinator.join(request("g", &b.member_id, "b", "b")))
        .await
        .unwrap();
    assert_eq!(b_again.generation_id, b.generation_id);
    assert_eq!(b_again.leader, a.member_id);
    assert_eq!(
        coordinator.describe("g").await.unwrap().state,
        GroupState::Stable
    );
    let assignment =
        within(coordinator.sync(sync_request("g", &b.member_id, b.generation_id, vec![])))
            .await
            .unwrap();
    assert_eq!(
        assignment,
        Bytes::from_static(b"p1"),
        "its assignment is kept"
    );

    // Changed metadata from a follower starts a rebalance.
    let b_changed = spawn_join(
        coordinator,
        request("g", &b.member_id, "b", "b-subscribes-more"),
    );
    wait_for_state(coordinator, "g", GroupState::PreparingRebalance).await;
    let a_rejoined = within(coordinator.join(request("g", &a.member_id, "a", "a")))
        .await
        .unwrap();
    let b_changed = within(b_changed).await.unwrap().unwrap();
    assert_eq!(a_rejoined.generation_id, a.generation_id + 1);
    let metadata: Vec<Bytes> = a_rejoined
        .members
        .iter()
        .map(|m| m.metadata.clone())
        .collect();
    assert_eq!(
        metadata,
        vec![
            Bytes::from_static(b"a"),
            Bytes::from_static(b"b-subscribes-more")
        ]
    );

    // In CompletingRebalance an unchanged rejoin (even the leader's) returns the generation.
    let leader_again = within(coordinator.join(request("g", &a.member_id, "a", "a")))
        .await
        .unwrap();
    assert_eq!(leader_again, a_rejoined);
    let b_sync = spawn_sync(
        coordinator,
        sync_request("g", &b.member_id, b_changed.generation_id, vec![]),
    );
    within(coordinator.sync(sync_request(
        "g",
        &a.member_id,
        a_rejoined.generation_id,
        vec![],
    )))
    .await
    .unwrap();
    within(b_sync).await.unwrap().unwrap();

    // In Stable the leader rejoining, even unchanged, starts a rebalance.
    let leader_join = spawn_join(coordinator, request("g", &a.member_id, "a", "a"));
    wait_for_state(coordinator, "g", GroupState::PreparingRebalance).await;
    within(coordinator.join(request("g", &b.member_id, "b", "b-subscribes-more")))
        .await
        .unwrap();
    let leader = within(leader_join).await.unwrap().unwrap();
    assert_eq!(leader.generation_id, a_rejoined.generation_id + 1);
}
