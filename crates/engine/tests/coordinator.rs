//! The group coordinator through its public API, as a Kafka consumer would observe it:
//! join, sync, heartbeat, leave, session expiry, commits, describe, list and delete.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use omnibus_engine::coordinator::*;
use omnibus_engine::*;
use tempfile::TempDir;

/// Long enough that a member which heartbeats never expires in a test.
const SESSION_MS: u64 = 2_000;
/// Short enough for expiry tests; the test limits allow it.
const SHORT_SESSION_MS: u64 = 150;
const WAIT: Duration = Duration::from_secs(5);

struct Setup {
    _dir: TempDir,
    engine: Arc<Engine>,
    coordinator: Arc<GroupCoordinator>,
}

fn test_limits() -> CoordinatorLimits {
    CoordinatorLimits {
        session_timeout_ms_min: 100,
        initial_rebalance_delay_ms: 0,
        tick_ms: 10,
        ..CoordinatorLimits::default()
    }
}

async fn setup_with(limits: CoordinatorLimits) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    engine
        .create_stream(StreamSpec {
            name: "orders".into(),
            partitions: Some(2),
            ..Default::default()
        })
        .unwrap();
    let coordinator = GroupCoordinator::with_limits(engine.clone(), limits);
    Setup {
        _dir: dir,
        engine,
        coordinator,
    }
}

async fn setup() -> Setup {
    setup_with(test_limits()).await
}

fn request(group: &str, member_id: &str, client: &str, metadata: &str) -> JoinRequest {
    JoinRequest {
        group: group.into(),
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: client.into(),
        client_host: "/127.0.0.1".into(),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from(metadata.to_string()))],
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: SESSION_MS,
        require_known_member_id: false,
    }
}

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("the coordinator answered in time")
}

/// Spawns a join so the test can act while it waits for the rebalance.
fn spawn_join(
    coordinator: &Arc<GroupCoordinator>,
    request: JoinRequest,
) -> tokio::task::JoinHandle<Result<JoinResponse, CoordinatorError>> {
    let coordinator = coordinator.clone();
    tokio::spawn(async move { coordinator.join(request).await })
}

fn spawn_sync(
    coordinator: &Arc<GroupCoordinator>,
    request: SyncRequest,
) -> tokio::task::JoinHandle<Result<Bytes, CoordinatorError>> {
    let coordinator = coordinator.clone();
    tokio::spawn(async move { coordinator.sync(request).await })
}

fn sync_request(
    group: &str,
    member_id: &str,
    generation_id: i32,
    assignments: Vec<(String, Bytes)>,
) -> SyncRequest {
    SyncRequest {
        group: group.into(),
        member_id: member_id.into(),
        generation_id,
        group_instance_id: None,
        assignments,
    }
}

/// One member joins alone and syncs an assignment for itself: a Stable group of one.
async fn stable_single(coordinator: &GroupCoordinator, group: &str, client: &str) -> JoinResponse {
    let joined = within(coordinator.join(request(group, "", client, client)))
        .await
        .unwrap();
    let assignment = Bytes::from(format!("all-to-{client}"));
    let own = within(coordinator.sync(sync_request(
        group,
        &joined.member_id,
        joined.generation_id,
        vec![(joined.member_id.clone(), assignment.clone())],
    )))
    .await
    .unwrap();
    assert_eq!(own, assignment);
    joined
}

/// Two members in one Stable generation: `a` joins first (leader), `b` joins, `a` is told to
/// rejoin by its heartbeat, both sync. Returns (leader, follower) join responses.
async fn stable_pair(setup: &Setup, group: &str) -> (JoinResponse, JoinResponse) {
    let coordinator = &setup.coordinator;
    let a = stable_single(coordinator, group, "a").await;
    let b_join = spawn_join(coordinator, request(group, "", "b", "b"));
    wait_for_state(coordinator, group, GroupState::PreparingRebalance).await;
    assert!(matches!(
        coordinator.heartbeat(group, &a.member_id, a.generation_id),
        Err(CoordinatorError::RebalanceInProgress)
    ));
    let a = within(coordinator.join(request(group, &a.member_id, "a", "a")))
        .await
        .unwrap();
    let b = within(b_join).await.unwrap().unwrap();
    let b_sync = spawn_sync(
        coordinator,
        sync_request(group, &b.member_id, b.generation_id, vec![]),
    );
    let a_assignment = within(coordinator.sync(sync_request(
        group,
        &a.member_id,
        a.generation_id,
        vec![
            (a.member_id.clone(), Bytes::from_static(b"p0")),
            (b.member_id.clone(), Bytes::from_static(b"p1")),
        ],
    )))
    .await
    .unwrap();
    assert_eq!(a_assignment, Bytes::from_static(b"p0"));
    assert_eq!(
        within(b_sync).await.unwrap().unwrap(),
        Bytes::from_static(b"p1")
    );
    (a, b)
}

async fn wait_for_state(coordinator: &GroupCoordinator, group: &str, state: GroupState) {
    within(async {
        loop {
            if coordinator.describe(group).unwrap().state == state {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

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
        coordinator.describe("g").unwrap().state,
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

    let description = coordinator.describe("g").unwrap();
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
            Err(CoordinatorError::RebalanceInProgress)
        ));
    }
    let a_join = spawn_join(coordinator, request("g", &a.member_id, "a", "a"));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!c_join.is_finished(), "the join phase waits for b");
    assert!(matches!(
        coordinator.heartbeat("g", &b.member_id, b.generation_id),
        Err(CoordinatorError::RebalanceInProgress)
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
        Err(CoordinatorError::IllegalGeneration)
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
    assert!(matches!(rebalance, CoordinatorError::RebalanceInProgress));
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
        Err(CoordinatorError::UnknownMemberId)
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
        Err(CoordinatorError::UnknownMemberId)
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
    assert!(matches!(
        results[1].1,
        Err(CoordinatorError::UnknownMemberId)
    ));
    assert!(matches!(
        coordinator.heartbeat("g", &a.member_id, a.generation_id),
        Err(CoordinatorError::RebalanceInProgress)
    ));
    let a_rejoined = within(coordinator.join(request("g", &a.member_id, "a", "a")))
        .await
        .unwrap();
    assert_eq!(a_rejoined.generation_id, a.generation_id + 1);
    assert_eq!(a_rejoined.members.len(), 1);

    let results = coordinator.leave("g", vec![a.member_id.clone()]).await;
    assert!(results[0].1.is_ok());
    // No offsets were committed, so the empty group is gone, as in Kafka.
    assert_eq!(coordinator.describe("g").unwrap().state, GroupState::Dead);
    assert!(coordinator.list().unwrap().is_empty());
}

#[tokio::test]
async fn a_new_member_must_join_twice_when_it_requires_a_known_member_id() {
    let setup = setup().await;
    let coordinator = &setup.coordinator;
    let first = JoinRequest {
        require_known_member_id: true,
        ..request("g", "", "rdkafka", "m")
    };
    let Err(CoordinatorError::MemberIdRequired(member_id)) =
        within(coordinator.join(first.clone())).await
    else {
        panic!("a new member is told its id first");
    };
    assert!(member_id.starts_with("rdkafka-"));
    assert_eq!(coordinator.describe("g").unwrap().members.len(), 0);
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
        Err(CoordinatorError::UnknownMemberId)
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
        Err(CoordinatorError::IllegalGeneration)
    ));
    assert!(matches!(
        coordinator.heartbeat("g", &a.member_id, stale),
        Err(CoordinatorError::IllegalGeneration)
    ));
    assert!(matches!(
        coordinator.validate_commit("g", &a.member_id, stale),
        Err(CoordinatorError::IllegalGeneration)
    ));
    assert!(matches!(
        coordinator.validate_commit("g", "stranger", a.generation_id),
        Err(CoordinatorError::UnknownMemberId)
    ));
    assert!(matches!(
        within(coordinator.sync(sync_request("g", "stranger", a.generation_id, vec![]))).await,
        Err(CoordinatorError::UnknownMemberId)
    ));
    // A client committing without membership is refused while the group has members.
    assert!(matches!(
        coordinator.validate_commit("g", "", -1),
        Err(CoordinatorError::IllegalGeneration)
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
        Err(CoordinatorError::IllegalGeneration)
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
        Err(CoordinatorError::RebalanceInProgress)
    ));
    // A sync during PreparingRebalance is refused too.
    let d_join = spawn_join(coordinator, request("g", "", "d", "d"));
    wait_for_state(coordinator, "g", GroupState::PreparingRebalance).await;
    assert!(matches!(
        within(coordinator.sync(sync_request("g", &a.member_id, a_new.generation_id, vec![])))
            .await,
        Err(CoordinatorError::RebalanceInProgress)
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
    assert_eq!(coordinator.describe("g").unwrap().state, GroupState::Stable);
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
        Err(CoordinatorError::InvalidSessionTimeout)
    ));
    assert!(matches!(
        within(coordinator.join(JoinRequest {
            protocols: vec![],
            ..request("g", "", "a", "a")
        }))
        .await,
        Err(CoordinatorError::InconsistentGroupProtocol)
    ));
    assert!(matches!(
        within(coordinator.join(request("", "", "a", "a"))).await,
        Err(CoordinatorError::InvalidGroupId(_))
    ));

    let a = within(coordinator.join(with_protocols("", "a", &["roundrobin", "range"])))
        .await
        .unwrap();
    assert_eq!(a.protocol_name, "roundrobin");
    assert!(matches!(
        within(coordinator.join(with_protocols("", "x", &["sticky"]))).await,
        Err(CoordinatorError::InconsistentGroupProtocol)
    ));
    assert!(matches!(
        within(coordinator.join(JoinRequest {
            protocol_type: "connect".into(),
            ..with_protocols("", "x", &["range"])
        }))
        .await,
        Err(CoordinatorError::InconsistentGroupProtocol)
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
        coordinator.delete("never-seen"),
        Err(CoordinatorError::GroupIdNotFound)
    ));

    let a = stable_single(coordinator, "g", "a").await;
    coordinator
        .validate_commit("g", &a.member_id, a.generation_id)
        .unwrap();
    setup.engine.commit_offsets("g", commit(42)).unwrap();
    assert!(matches!(
        coordinator.delete("g"),
        Err(CoordinatorError::NonEmptyGroup)
    ));
    assert_eq!(setup.engine.committed_offsets("g", None).unwrap().len(), 1);

    coordinator.leave("g", vec![a.member_id.clone()]).await;
    let description = coordinator.describe("g").unwrap();
    assert_eq!(
        description.state,
        GroupState::Empty,
        "offsets keep the group"
    );
    assert_eq!(description.protocol_type, "consumer");
    coordinator.delete("g").unwrap();
    assert!(setup
        .engine
        .committed_offsets("g", None)
        .unwrap()
        .is_empty());
    assert_eq!(coordinator.describe("g").unwrap().state, GroupState::Dead);
    assert!(matches!(
        coordinator.delete("g"),
        Err(CoordinatorError::GroupIdNotFound)
    ));

    // A group known only by offsets (a standalone committer) can be deleted too.
    coordinator.validate_commit("standalone", "", -1).unwrap();
    setup
        .engine
        .commit_offsets("standalone", commit(7))
        .unwrap();
    coordinator.delete("standalone").unwrap();
    assert!(setup.engine.list_groups().unwrap().is_empty());
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
        .unwrap();
    let (a, _b) = stable_pair(&setup, "live").await;
    let joining = within(coordinator.join(request("joining", "", "z", "z")))
        .await
        .unwrap();

    let listed: Vec<(String, String, GroupState)> = coordinator
        .list()
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
    let live = coordinator.describe("live").unwrap();
    assert_eq!(live.state.as_str(), "Stable");
    assert_eq!(live.members[0].member_id, a.member_id);
    assert_eq!(live.members[0].client_host, "/127.0.0.1");
    assert_eq!(live.members[0].assignment, Bytes::from_static(b"p0"));
    // Not Stable: Kafka shows members without metadata or assignment.
    let joining_description = coordinator.describe("joining").unwrap();
    assert_eq!(joining_description.state.as_str(), "CompletingRebalance");
    assert_eq!(joining_description.protocol, "");
    assert_eq!(joining_description.members[0].member_id, joining.member_id);
    assert!(joining_description.members[0].metadata.is_empty());
    let unknown = coordinator.describe("unknown").unwrap();
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
        Err(CoordinatorError::FencedInstanceId)
    ));
    assert_eq!(coordinator.describe("g").unwrap().members.len(), 1);
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
        Err(CoordinatorError::GroupMaxSizeReached)
    ));
    assert!(matches!(
        within(coordinator.join(request("other", "", "b", "b"))).await,
        Err(CoordinatorError::LimitExceeded(_))
    ));
    assert!(matches!(
        within(coordinator.join(request("g", "", "b", &"x".repeat(100)))).await,
        Err(CoordinatorError::LimitExceeded(_))
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
    assert!(matches!(
        waiting,
        Err(CoordinatorError::RebalanceInProgress)
    ));
    let b_alone = within(coordinator.join(quick(&b.member_id, "b")))
        .await
        .unwrap();
    assert_eq!(b_alone.leader, b.member_id, "the remaining member leads");
    assert_eq!(b_alone.members.len(), 1);
    assert!(matches!(
        coordinator.heartbeat("g", &a.member_id, b_alone.generation_id),
        Err(CoordinatorError::UnknownMemberId)
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
    let Err(CoordinatorError::MemberIdRequired(member_id)) =
        within(coordinator.join(first.clone())).await
    else {
        panic!("a new member is told its id first");
    };
    tokio::time::sleep(Duration::from_millis(SHORT_SESSION_MS + 100)).await;
    assert_eq!(coordinator.describe("g").unwrap().state, GroupState::Dead);
    assert!(matches!(
        within(coordinator.join(JoinRequest { member_id, ..first })).await,
        Err(CoordinatorError::UnknownMemberId)
    ));
}
