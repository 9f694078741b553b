//! Shared set-up for the coordinator tests: an engine, a coordinator with short limits, and
//! helpers that drive members through join and sync.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use omnibus_engine::groups::coordinator::*;
use omnibus_engine::*;
use tempfile::TempDir;

/// Long enough that a member which heartbeats never expires in a test.
pub const SESSION_MS: u64 = 2_000;
/// Short enough for expiry tests; the test limits allow it.
pub const SHORT_SESSION_MS: u64 = 150;
pub const WAIT: Duration = Duration::from_secs(5);

pub struct Setup {
    pub _dir: TempDir,
    pub engine: Arc<Engine>,
    pub coordinator: Arc<GroupCoordinator>,
}

pub fn test_limits() -> CoordinatorLimits {
    CoordinatorLimits {
        session_timeout_ms_min: 100,
        initial_rebalance_delay_ms: 0,
        tick_ms: 10,
        ..CoordinatorLimits::default()
    }
}

pub async fn setup_with(limits: CoordinatorLimits) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(dir.path());
    config.coordinator = limits;
    let engine = Engine::open(config).await.unwrap();
    engine
        .create_stream(StreamSpec {
            name: "orders".into(),
            partitions: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let coordinator = engine.coordinator().clone();
    Setup {
        _dir: dir,
        engine,
        coordinator,
    }
}

pub async fn setup() -> Setup {
    setup_with(test_limits()).await
}

pub fn request(group: &str, member_id: &str, client: &str, metadata: &str) -> JoinRequest {
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

pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("the coordinator answered in time")
}

/// Spawns a join so the test can act while it waits for the rebalance.
pub fn spawn_join(
    coordinator: &Arc<GroupCoordinator>,
    request: JoinRequest,
) -> tokio::task::JoinHandle<Result<JoinResponse, EngineError>> {
    let coordinator = coordinator.clone();
    tokio::spawn(async move { coordinator.join(request).await })
}

pub fn spawn_sync(
    coordinator: &Arc<GroupCoordinator>,
    request: SyncRequest,
) -> tokio::task::JoinHandle<Result<Bytes, EngineError>> {
    let coordinator = coordinator.clone();
    tokio::spawn(async move { coordinator.sync(request).await })
}

pub fn sync_request(
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
pub async fn stable_single(
    coordinator: &GroupCoordinator,
    group: &str,
    client: &str,
) -> JoinResponse {
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
pub async fn stable_pair(setup: &Setup, group: &str) -> (JoinResponse, JoinResponse) {
    let coordinator = &setup.coordinator;
    let a = stable_single(coordinator, group, "a").await;
    let b_join = spawn_join(coordinator, request(group, "", "b", "b"));
    wait_for_state(coordinator, group, GroupState::PreparingRebalance).await;
    assert!(matches!(
        coordinator.heartbeat(group, &a.member_id, a.generation_id),
        Err(EngineError::RebalanceInProgress)
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

pub async fn wait_for_state(coordinator: &GroupCoordinator, group: &str, state: GroupState) {
    within(async {
        loop {
            if coordinator.describe(group).await.unwrap().state == state {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}
