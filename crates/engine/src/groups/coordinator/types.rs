//! The coordinator's public vocabulary: requests, responses, descriptions and limits (its
//! errors are [`EngineError`](crate::EngineError) variants).
//! Protocol-neutral: protocol metadata and assignments are opaque bytes that only the members
//! (and the front door's codec) understand.

use bytes::Bytes;

/// Shortest session timeout a member may ask for (Kafka's `group.min.session.timeout.ms`).
pub const SESSION_TIMEOUT_MS_MIN: u64 = 6_000;
/// Longest session timeout a member may ask for (Kafka's `group.max.session.timeout.ms`,
/// whose default has been 30 minutes since Kafka 2.3).
pub const SESSION_TIMEOUT_MS_MAX: u64 = 1_800_000;
/// Longer rebalance timeouts are clamped to this (Kafka Streams once asked for `i32::MAX`).
pub const REBALANCE_TIMEOUT_MS_MAX: u64 = 1_800_000;
/// How long the first rebalance of an empty group waits for more members to arrive
/// (Kafka's `group.initial.rebalance.delay.ms`).
pub const INITIAL_REBALANCE_DELAY_MS: u64 = 3_000;
/// Most groups held in memory at once (groups known only by committed offsets do not count).
pub const GROUPS_MAX: usize = 10_000;
/// Most members (joined plus awaiting their member id) in one group.
pub const MEMBERS_PER_GROUP_MAX: usize = 1_000;
/// Most protocols one member may offer in a join.
pub const PROTOCOLS_PER_MEMBER_MAX: usize = 64;
/// Most bytes one member may make the coordinator hold for its join: every protocol's name
/// and metadata plus its client id, client host and group instance id.
pub const MEMBER_METADATA_BYTES_MAX: usize = 1 << 20;
/// Most bytes of one member's assignment in a leader's sync.
pub const ASSIGNMENT_BYTES_MAX: usize = 1 << 20;
/// Longest group instance id (Kafka's limit for `group.instance.id`).
pub const GROUP_INSTANCE_ID_BYTES_MAX: usize = 249;
/// How often the timer task looks for expired sessions and rebalance deadlines.
pub const TICK_MS: u64 = 100;

const _: () = assert!(SESSION_TIMEOUT_MS_MIN <= SESSION_TIMEOUT_MS_MAX);
const _: () = assert!(TICK_MS < SESSION_TIMEOUT_MS_MIN);

/// The coordinator's bounds. [`CoordinatorLimits::default`] holds the constants above; tests
/// lower the session timeout floor and the tick to run in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorLimits {
    pub session_timeout_ms_min: u64,
    pub session_timeout_ms_max: u64,
    pub rebalance_timeout_ms_max: u64,
    /// 0 completes an empty group's first rebalance as soon as its members have joined.
    pub initial_rebalance_delay_ms: u64,
    pub groups_max: usize,
    pub members_per_group_max: usize,
    pub protocols_per_member_max: usize,
    pub member_metadata_bytes_max: usize,
    pub assignment_bytes_max: usize,
    /// Period of the timer task: session expiry and rebalance deadlines are noticed at most
    /// this late.
    pub tick_ms: u64,
}

impl Default for CoordinatorLimits {
    fn default() -> Self {
        CoordinatorLimits {
            session_timeout_ms_min: SESSION_TIMEOUT_MS_MIN,
            session_timeout_ms_max: SESSION_TIMEOUT_MS_MAX,
            rebalance_timeout_ms_max: REBALANCE_TIMEOUT_MS_MAX,
            initial_rebalance_delay_ms: INITIAL_REBALANCE_DELAY_MS,
            groups_max: GROUPS_MAX,
            members_per_group_max: MEMBERS_PER_GROUP_MAX,
            protocols_per_member_max: PROTOCOLS_PER_MEMBER_MAX,
            member_metadata_bytes_max: MEMBER_METADATA_BYTES_MAX,
            assignment_bytes_max: ASSIGNMENT_BYTES_MAX,
            tick_ms: TICK_MS,
        }
    }
}

/// A JoinGroup. The front door fills it from any JoinGroup version.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group: String,
    /// `""` for a member joining for the first time; otherwise the id the coordinator gave it.
    pub member_id: String,
    /// Static membership (`group.instance.id`, JoinGroup v5+); `None` for dynamic members.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// E.g. `"consumer"`; every member of a group must use the same one.
    pub protocol_type: String,
    /// `(protocol name, protocol metadata)` in the member's order of preference, e.g.
    /// `[("range", ..), ("roundrobin", ..)]`. Must not be empty.
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout_ms: u64,
    /// JoinGroup v0 has no rebalance timeout: pass the session timeout, as Kafka does.
    pub rebalance_timeout_ms: u64,
    /// JoinGroup v4+: a new member (empty `member_id`, no `group_instance_id`) first receives
    /// [`EngineError::MemberIdRequired`](crate::EngineError::MemberIdRequired) carrying its id and must join again with it.
    pub require_known_member_id: bool,
}

/// The answer to a join, sent to every member when the rebalance completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub generation_id: i32,
    pub protocol_type: String,
    /// The protocol chosen for this generation (every member supports it).
    pub protocol_name: String,
    /// The leader's member id; the member whose id this is must send the assignments.
    pub leader: String,
    /// This member's id (new members learn theirs here).
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol, in join order — only in the
    /// leader's response; empty for followers.
    pub members: Vec<JoinedMember>,
}

/// One member as the leader sees it in its join response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A SyncGroup.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub group: String,
    pub member_id: String,
    pub generation_id: i32,
    pub group_instance_id: Option<String>,
    /// `(member id, assignment)` — only the leader's are used; followers send none. Members
    /// the leader leaves out get an empty assignment; unknown member ids are ignored.
    pub assignments: Vec<(String, Bytes)>,
}

/// A group's state, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (possibly only committed offsets).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignments.
    CompletingRebalance,
    Stable,
    /// Does not exist (or is being deleted).
    Dead,
}

impl GroupState {
    /// Kafka's spelling, as DescribeGroups and ListGroups report it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    pub state: GroupState,
    /// `""` for a group that does not exist; `"consumer"` for one known only by its offsets.
    pub protocol_type: String,
    /// The chosen protocol while `Stable`; `""` otherwise (as Kafka reports it).
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata for the chosen protocol; empty unless the group is `Stable` (as in Kafka).
    pub metadata: Bytes,
    /// The member's assignment; empty unless the group is `Stable` (as in Kafka).
    pub assignment: Bytes,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group: String,
    /// `"consumer"` for a group known only by its committed offsets.
    pub protocol_type: String,
    pub state: GroupState,
}
