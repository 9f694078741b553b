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
    _engine: Arc<Engine>,
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
        _engine: engine,
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
