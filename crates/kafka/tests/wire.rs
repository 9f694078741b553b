//! The Kafka listener spoken to in raw bytes over a real socket: framing, version
//! negotiation, pipelining and response order, acks=0, and bad input closing only the
//! connection that sent it.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use omnibus_engine::{Engine, EngineConfig};
use omnibus_kafka::KafkaConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Listener {
    address: String,
    engine: Arc<Engine>,
    _dir: tempfile::TempDir,
}

async fn listen(config: KafkaConfig) -> Listener {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(omnibus_kafka::serve(
        listener,
        engine.clone(),
        config,
        std::future::pending(),
    ));
    Listener {
        address,
        engine,
        _dir: dir,
    }
}

/// A framed request.
fn frame(key: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Vec<u8> {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("wire-test"));
    let mut bytes = BytesMut::new();
    header
        .encode(&mut bytes, key.request_header_version(version))
        .unwrap();
    body.encode(&mut bytes, version).unwrap();
    let mut framed = (bytes.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    framed
}

/// Reads one response frame: (correlation id, the rest after the response header v0).
async fn read_response(stream: &mut TcpStream) -> Option<(i32, Bytes)> {
    let mut length = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut length))
        .await
        .expect("an answer or a close in time")
        .ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).await.ok()?;
    let mut body = Bytes::from(body);
    let correlation_id = body.get_i32();
    Some((correlation_id, body))
}

async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

fn api_versions_request() -> ApiVersionsRequest {
    let mut request = ApiVersionsRequest::default();
    request.client_software_name = StrBytes::from_static_str("wire-test");
    request.client_software_version = StrBytes::from_static_str("1.0");
    request
}

#[tokio::test]
async fn api_versions_lists_what_we_answer() {
    let listener = listen(KafkaConfig::default()).await;
    let mut stream = TcpStream::connect(&listener.address).await.unwrap();
    stream
        .write_all(&frame(ApiKey::ApiVersions, 3, 1, &api_versions_request()))
        .await
        .unwrap();
    let (correlation_id, mut body) = read_response(&mut stream).await.unwrap();
    assert_eq!(correlation_id, 1);
    // ApiVersions responses always use header v0, even in flexible versions.
    let response = ApiVersionsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(response.error_code, 0);
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .unwrap();
    assert_eq!((produce.min_version, produce.max_version), (3, 9));
}

#[tokio::test]
async fn a_newer_api_versions_gets_unsupported_version_in_a_v0_body() {
    let listener = listen(KafkaConfig::default()).await;
    let mut stream = TcpStream::connect(&listener.address).await.unwrap();
    // A v9 request from a future client: its body may have fields we do not know.
    let mut request = frame(ApiKey::ApiVersions, 3, 5, &api_versions_request());
    request[7] = 9;
    request.extend_from_slice(b"future fields");
    let length = (request.len() - 4) as i32;
    request[..4].copy_from_slice(&length.to_be_bytes());
    stream.write_all(&request).await.unwrap();
    let (correlation_id, mut body) = read_response(&mut stream).await.unwrap();
    assert_eq!(correlation_id, 5);
    let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(response.api_keys.len() >= 20);
    assert!(body.is_empty(), "exactly a v0 body");
    // The connection stays usable for the retry.
    stream
        .write_all(&frame(ApiKey::ApiVersions, 3, 6, &api_versions_request()))
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().0, 6);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_acks_zero_is_silent() {
    let listener = listen(KafkaConfig::default()).await;
    let mut stream = TcpStream::connect(&listener.address).await.unwrap();
    let mut produce = ProduceRequest::default();
    produce.acks = 0;
    produce.topic_data = Vec::new();
    let mut burst = Vec::new();
    burst.extend(frame(
        ApiKey::Metadata,
        12,
        10,
        &MetadataRequest::default().with_topics(None),
    ));
    burst.extend(frame(
        ApiKey::ApiVersions,
        0,
        11,
        &ApiVersionsRequest::default(),
    ));
    burst.extend(frame(ApiKey::Produce, 9, 12, &produce));
    burst.extend(frame(ApiKey::ApiVersions, 3, 13, &api_versions_request()));
    // Delivered in small pieces, as a slow network might.
    for chunk in burst.chunks(7) {
        stream.write_all(chunk).await.unwrap();
    }
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(read_response(&mut stream).await.unwrap().0);
    }
    assert_eq!(order, [10, 11, 13], "no response for the acks=0 produce");
}

/// One idempotent v2 batch of `count` records from producer 7, epoch 0.
fn idempotent_batch(first_sequence: i32, count: i32) -> Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..count)
        .map(|index| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: 7,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            sequence: first_sequence + index,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("record {}", first_sequence + index))),
            headers: Default::default(),
        })
        .collect();
    let mut buffer = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buffer, records.iter(), &options).unwrap();
    buffer.freeze()
}

fn produce_request(topic: &str, records: Bytes) -> ProduceRequest {
    let mut data = produce_request::PartitionProduceData::default();
    data.index = 0;
    data.records = Some(records);
    let mut wanted = produce_request::TopicProduceData::default();
    wanted.name = TopicName(StrBytes::from_string(topic.to_string()));
    wanted.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 5000;
    request.topic_data = vec![wanted];
    request
}

#[tokio::test]
async fn pipelined_produces_land_in_order_and_a_following_request_sees_them() {
    let listener = listen(KafkaConfig::default()).await;
    listener
        .engine
        .create_stream(omnibus_engine::StreamSpec {
            name: "piped".into(),
            partitions: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut stream = TcpStream::connect(&listener.address).await.unwrap();
    // More produce requests than a connection keeps in flight, a retry of one of them that
    // arrives before its original is answered, then a ListOffsets — all in one write.
    let requests = 3 * omnibus_kafka::IN_FLIGHT_MAX as i32;
    let mut burst = Vec::new();
    for index in 0..requests {
        let batch = idempotent_batch(index * 3, 3);
        burst.extend(frame(
            ApiKey::Produce,
            9,
            index,
            &produce_request("piped", batch),
        ));
    }
    // Kafka remembers a producer's last five batches per partition: retry the one before last.
    let retried = requests - 2;
    let retry = idempotent_batch(retried * 3, 3);
    burst.extend(frame(
        ApiKey::Produce,
        9,
        1000,
        &produce_request("piped", retry),
    ));
    let mut list = ListOffsetsRequest::default();
    let mut wanted = list_offsets_request::ListOffsetsTopic::default();
    wanted.name = TopicName(StrBytes::from_static_str("piped"));
    let mut partition = list_offsets_request::ListOffsetsPartition::default();
    partition.timestamp = -1;
    wanted.partitions = vec![partition];
    list.topics = vec![wanted];
    burst.extend(frame(ApiKey::ListOffsets, 6, 2000, &list));
    stream.write_all(&burst).await.unwrap();

    for index in 0..requests {
        let (correlation_id, mut body) = read_response(&mut stream).await.unwrap();
        assert_eq!(correlation_id, index, "answers come in request order");
        assert_eq!(body.get_u8(), 0, "no tagged fields in the flexible header");
        let response = ProduceResponse::decode(&mut body, 9).unwrap();
        let answer = &response.responses[0].partition_responses[0];
        assert_eq!(answer.error_code, 0);
        assert_eq!(
            answer.base_offset,
            index as i64 * 3,
            "batches land in send order"
        );
    }
    let (correlation_id, mut body) = read_response(&mut stream).await.unwrap();
    assert_eq!(correlation_id, 1000);
    assert_eq!(body.get_u8(), 0);
    let response = ProduceResponse::decode(&mut body, 9).unwrap();
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(
        (answer.error_code, answer.base_offset),
        (0, retried as i64 * 3),
        "the retry gets its original offset and is not written again"
    );
    let (correlation_id, mut body) = read_response(&mut stream).await.unwrap();
    assert_eq!(correlation_id, 2000);
    assert_eq!(body.get_u8(), 0);
    let response = ListOffsetsResponse::decode(&mut body, 6).unwrap();
    let latest = &response.topics[0].partitions[0];
    assert_eq!(latest.offset, requests as i64 * 3, "every record, once");
}

#[tokio::test]
async fn undecodable_frames_close_only_their_own_connection() {
    let config = KafkaConfig {
        frame_bytes_max: 1 << 16,
        ..KafkaConfig::default()
    };
    let listener = listen(config).await;
    let mut healthy = TcpStream::connect(&listener.address).await.unwrap();

    // An unknown API key.
    let mut unknown = TcpStream::connect(&listener.address).await.unwrap();
    let mut bad = BytesMut::new();
    bad.put_i32(10);
    bad.put_i16(9999);
    bad.put_i16(0);
    bad.put_i32(1);
    bad.put_i16(-1);
    unknown.write_all(&bad).await.unwrap();
    assert!(is_closed(&mut unknown).await);

    // A length prefix over the frame limit: closed before the frame arrives.
    let mut oversized = TcpStream::connect(&listener.address).await.unwrap();
    oversized
        .write_all(&(1i32 << 20).to_be_bytes())
        .await
        .unwrap();
    assert!(is_closed(&mut oversized).await);

    // A malformed body: Metadata v0 claiming two billion topics.
    let mut malformed = TcpStream::connect(&listener.address).await.unwrap();
    let mut request = frame(ApiKey::Metadata, 0, 3, &MetadataRequest::default());
    request.truncate(request.len() - 4);
    request.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
    malformed.write_all(&request).await.unwrap();
    assert!(is_closed(&mut malformed).await);

    healthy
        .write_all(&frame(ApiKey::ApiVersions, 3, 77, &api_versions_request()))
        .await
        .unwrap();
    assert_eq!(read_response(&mut healthy).await.unwrap().0, 77);
}

#[tokio::test]
async fn a_known_but_unserved_api_gets_its_own_error_response() {
    let listener = listen(KafkaConfig::default()).await;
    let mut stream = TcpStream::connect(&listener.address).await.unwrap();
    stream
        .write_all(&frame(
            ApiKey::DescribeCluster,
            0,
            21,
            &DescribeClusterRequest::default(),
        ))
        .await
        .unwrap();
    let (correlation_id, mut body) = read_response(&mut stream).await.unwrap();
    assert_eq!(correlation_id, 21);
    // DescribeCluster v0 is flexible: response header v1 carries an empty tagged-field set.
    assert_eq!(body.get_u8(), 0);
    let response = DescribeClusterResponse::decode(&mut body, 0).unwrap();
    assert_eq!(response.error_code, 35);
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_once() {
    let config = KafkaConfig {
        connections_max: 1,
        ..KafkaConfig::default()
    };
    let listener = listen(config).await;
    let mut first = TcpStream::connect(&listener.address).await.unwrap();
    first
        .write_all(&frame(ApiKey::ApiVersions, 3, 1, &api_versions_request()))
        .await
        .unwrap();
    assert!(read_response(&mut first).await.is_some());
    let mut second = TcpStream::connect(&listener.address).await.unwrap();
    assert!(is_closed(&mut second).await);
    drop(first);
    // The slot frees once the first session ends.
    let mut third = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut stream = TcpStream::connect(&listener.address).await.unwrap();
        let request = frame(ApiKey::ApiVersions, 3, 3, &api_versions_request());
        if stream.write_all(&request).await.is_ok() && read_response(&mut stream).await.is_some() {
            third = Some(stream);
            break;
        }
    }
    assert!(third.is_some(), "a freed slot is reused");
}
