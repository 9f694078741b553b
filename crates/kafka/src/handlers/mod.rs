//! One file per API key. Each `handle` takes the decoded request and its version, calls the
//! engine (or the group coordinator), and builds the response of the same version. Errors a
//! client should act on become Kafka error codes in the response, per topic or partition where
//! the API has them; nothing here ends a connection except a request that cannot be answered.

mod alter_configs;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_configs;
mod describe_groups;
pub(crate) mod errors;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
mod sync_group;
mod topic_configs;
pub(crate) mod unsupported;

use std::sync::Arc;

use kafka_protocol::messages::{BrokerId, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use omnibus_engine::groups::coordinator::GroupCoordinator;
use omnibus_engine::producers::ProducerRegistry;
use omnibus_engine::Engine;

use crate::codec::Request;
use crate::config::KafkaConfig;

/// This broker's node id: a single node leads every partition.
pub(crate) const NODE_ID: BrokerId = BrokerId(0);
/// The cluster id reported in Metadata and DescribeCluster-like answers.
pub(crate) const CLUSTER_ID: &str = "omnibus";

/// What every connection shares.
pub(crate) struct Broker {
    pub engine: Arc<Engine>,
    pub coordinator: Arc<GroupCoordinator>,
    pub producers: Arc<ProducerRegistry>,
    pub config: KafkaConfig,
    /// Where clients are told to connect.
    pub host: String,
    pub port: i32,
}

impl Broker {
    pub fn host(&self) -> StrBytes {
        StrBytes::from_string(self.host.clone())
    }
}

/// What a connection knows about its peer.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub client_host: String,
}

/// What to send back for one request.
// Boxing would cost an allocation per response to save stack space in one future.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Outcome {
    Respond(ResponseKind),
    /// A produce with `acks=0`: the client expects no response.
    Silent,
    /// The request cannot be answered; the connection closes.
    Close(String),
}

impl<T: Into<ResponseKind>> From<T> for Outcome {
    fn from(response: T) -> Outcome {
        Outcome::Respond(response.into())
    }
}

/// The first phase of a produce request: every batch has its place in its partition when
/// this returns; the returned future waits for their acknowledgements and builds the answer.
pub(crate) async fn start_produce(
    broker: &Broker,
    body: kafka_protocol::messages::ProduceRequest,
    version: i16,
) -> produce::PendingOutcome {
    produce::start(broker, body, version).await
}

/// Answers one decoded request. The codec only yields requests whose key and version are in
/// [`crate::codec::versions::SUPPORTED`], each of which has a handler here.
pub(crate) async fn handle(broker: &Broker, peer: &Peer, request: Request) -> Outcome {
    let version = request.version;
    let client_id = request.client_id().to_string();
    match request.body {
        RequestKind::ApiVersions(body) => api_versions::handle(body, version).into(),
        RequestKind::Metadata(body) => metadata::handle(broker, body, version).await.into(),
        RequestKind::Produce(body) => produce::start(broker, body, version).await.await,
        RequestKind::Fetch(body) => fetch::handle(broker, body, version).await.into(),
        RequestKind::ListOffsets(body) => list_offsets::handle(broker, body, version).await.into(),
        RequestKind::InitProducerId(body) => init_producer_id::handle(broker, body).await.into(),
        RequestKind::FindCoordinator(body) => {
            find_coordinator::handle(broker, body, version).into()
        }
        RequestKind::JoinGroup(body) => join_group::handle(broker, peer, &client_id, body, version)
            .await
            .into(),
        RequestKind::SyncGroup(body) => sync_group::handle(broker, body, version).await.into(),
        RequestKind::Heartbeat(body) => heartbeat::handle(broker, body).into(),
        RequestKind::LeaveGroup(body) => leave_group::handle(broker, body, version).await.into(),
        RequestKind::OffsetCommit(body) => offset_commit::handle(broker, body).await.into(),
        RequestKind::OffsetFetch(body) => offset_fetch::handle(broker, body, version).await.into(),
        RequestKind::OffsetDelete(body) => offset_delete::handle(broker, body).await.into(),
        RequestKind::DescribeGroups(body) => describe_groups::handle(broker, body).await.into(),
        RequestKind::ListGroups(body) => list_groups::handle(broker, body).await.into(),
        RequestKind::DeleteGroups(body) => delete_groups::handle(broker, body).await.into(),
        RequestKind::CreateTopics(body) => create_topics::handle(broker, body).await.into(),
        RequestKind::DeleteTopics(body) => delete_topics::handle(broker, body).await.into(),
        RequestKind::CreatePartitions(body) => create_partitions::handle(broker, body).await.into(),
        RequestKind::DescribeConfigs(body) => describe_configs::handle(broker, body).into(),
        RequestKind::IncrementalAlterConfigs(body) => {
            incremental_alter_configs::handle(broker, body).await.into()
        }
        RequestKind::AlterConfigs(body) => alter_configs::handle(broker, body).await.into(),
        RequestKind::DeleteRecords(body) => delete_records::handle(broker, body).await.into(),
        other => {
            // Unreachable while SUPPORTED and this match agree; a test checks they do.
            Outcome::Close(format!("no handler for {other:?}"))
        }
    }
}

#[cfg(test)]
mod tests;
