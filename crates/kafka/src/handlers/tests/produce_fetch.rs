//! The data path: produce, fetch, list offsets, metadata and idempotence.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::{batch, fixture, fixture_with_faults, Fixture};
use crate::handlers::Outcome;

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn produce_request(name: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut data = produce_request::PartitionProduceData::default();
    data.index = partition;
    data.records = Some(records);
    let mut wanted = produce_request::TopicProduceData::default();
    wanted.name = topic(name);
    wanted.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = acks;
    request.timeout_ms = 5000;
    request.topic_data = vec![wanted];
    request
}

/// (error code, base offset) of a single-partition produce.
async fn produce(fixture: &Fixture, name: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let request = produce_request(name, partition, records, -1);
    let ResponseKind::Produce(response) = fixture.respond(ApiKey::Produce, request, 9).await else {
        panic!("not a produce response")
    };
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

fn fetch_request(name: &str, partition: i32, offset: i64, wait_ms: i32) -> FetchRequest {
    let mut wanted = fetch_request::FetchPartition::default();
    wanted.partition = partition;
    wanted.fetch_offset = offset;
    wanted.partition_max_bytes = 1 << 20;
    let mut fetch_topic = fetch_request::FetchTopic::default();
    fetch_topic.topic = topic(name);
    fetch_topic.partitions = vec![wanted];
    let mut request = FetchRequest::default();
    request.max_wait_ms = wait_ms;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    request.topics = vec![fetch_topic];
    request
}

async fn fetch(fixture: &Fixture, request: FetchRequest) -> fetch_response::PartitionData {
    let ResponseKind::Fetch(response) = fixture.respond(ApiKey::Fetch, request, 12).await else {
        panic!("not a fetch response")
    };
    response.responses[0].partitions[0].clone()
}

fn values(records: &Bytes) -> Vec<(i64, String)> {
    let mut bytes = records.clone();
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
        for record in set.records {
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            out.push((record.offset, value));
        }
    }
    out
}

#[tokio::test]
async fn batches_are_stored_as_sent_and_fetched_whole_even_from_mid_batch() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    let first = batch(&["a", "b", "c"], Compression::None, None);
    let second = batch(&["d", "e"], Compression::Zstd, None);
    assert_eq!(produce(&fixture, "t", 0, first.clone()).await, (0, 0));
    assert_eq!(produce(&fixture, "t", 0, second.clone()).await, (0, 3));

    // Mid-batch: the whole first batch comes back, then the second, byte for byte except
    // for the base offsets the log assigned.
    let data = fetch(&fixture, fetch_request("t", 0, 1, 0)).await;
    assert_eq!(data.error_code, 0);
    assert_eq!(data.high_watermark, 5);
    assert_eq!(data.last_stable_offset, 5);
    assert_eq!(data.log_start_offset, 0);
    let records = data.records.unwrap();
    assert_eq!(records.len(), first.len() + second.len());
    assert_eq!(&records[8..first.len()], &first[8..]);
    assert_eq!(&records[first.len() + 8..], &second[8..]);
    let got = values(&records);
    assert_eq!(
        got.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(got[4].1, "e");
}

#[tokio::test]
async fn an_empty_fetch_has_zero_length_records_never_null() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    let data = fetch(&fixture, fetch_request("t", 0, 0, 0)).await;
    assert_eq!(data.error_code, 0);
    assert_eq!(data.records, Some(Bytes::new()));
    let mut encoded = BytesMut::new();
    let response = crate::codec::Response {
        api_key: ApiKey::Fetch,
        version: 4,
        correlation_id: 1,
        body: {
            let mut response = FetchResponse::default();
            let mut topic_response = fetch_response::FetchableTopicResponse::default();
            topic_response.partitions = vec![data];
            response.responses = vec![topic_response];
            response.into()
        },
    };
    response.encode(&mut encoded).unwrap();
    // The record set is the last field of v4: its i32 length must be 0, not -1.
    assert_eq!(&encoded[encoded.len() - 4..], &[0, 0, 0, 0]);
}

#[tokio::test]
async fn a_long_poll_wakes_when_a_record_arrives() {
    let fixture = std::sync::Arc::new(fixture().await);
    fixture.create("t", 2).await;
    let producer = fixture.clone();
    let produced = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        produce(&producer, "t", 1, batch(&["late"], Compression::None, None)).await
    });
    let started = std::time::Instant::now();
    let mut request = fetch_request("t", 0, 0, 10_000);
    let mut other = fetch_request::FetchPartition::default();
    other.partition = 1;
    other.partition_max_bytes = 1 << 20;
    request.topics[0].partitions.push(other);
    let ResponseKind::Fetch(response) = fixture.respond(ApiKey::Fetch, request, 12).await else {
        panic!()
    };
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(produced.await.unwrap(), (0, 0));
    let partitions = &response.responses[0].partitions;
    assert_eq!(partitions[0].records, Some(Bytes::new()));
    assert_eq!(values(partitions[1].records.as_ref().unwrap())[0].1, "late");
}

#[tokio::test]
async fn a_long_poll_with_nothing_new_waits_out_max_wait() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    let started = std::time::Instant::now();
    let data = fetch(&fixture, fetch_request("t", 0, 0, 300)).await;
    assert!(started.elapsed() >= Duration::from_millis(280));
    assert_eq!(data.records, Some(Bytes::new()));
}

#[tokio::test]
async fn min_bytes_beyond_what_the_limits_let_through_does_not_wait() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    let big = "x".repeat(1_000);
    for _ in 0..4 {
        let values: Vec<&str> = (0..10).map(|_| big.as_str()).collect();
        produce(&fixture, "t", 0, batch(&values, Compression::None, None)).await;
    }
    // The partition limit lets about two of the four ~10 KB batches through; asking for
    // 1 MiB at least cannot be met by waiting, since the records are already there
    // (librdkafka with `fetch.min.bytes` equal to its partition limit hits exactly this).
    let mut request = fetch_request("t", 0, 0, 5_000);
    request.min_bytes = 1 << 20;
    request.topics[0].partitions[0].partition_max_bytes = 25_000;
    let started = std::time::Instant::now();
    let data = fetch(&fixture, request).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let got = values(data.records.as_ref().unwrap());
    assert!(!got.is_empty() && got.len() < 40, "{} records", got.len());
    assert_eq!(data.high_watermark, 40);

    // All of it fits but is still less than min_bytes: that waits out max_wait, as in Kafka.
    let mut request = fetch_request("t", 0, 0, 300);
    request.min_bytes = 1 << 20;
    let started = std::time::Instant::now();
    let data = fetch(&fixture, request).await;
    assert!(started.elapsed() >= Duration::from_millis(280));
    assert_eq!(values(data.records.as_ref().unwrap()).len(), 40);
}

#[tokio::test]
async fn fetch_errors_are_per_partition() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    produce(&fixture, "t", 0, batch(&["a"], Compression::None, None)).await;
    let data = fetch(&fixture, fetch_request("t", 0, 5, 0)).await;
    assert_eq!(data.error_code, 1, "OFFSET_OUT_OF_RANGE");
    assert_eq!(data.high_watermark, 1);
    assert_eq!(data.records, Some(Bytes::new()));
    let data = fetch(&fixture, fetch_request("missing", 0, 0, 0)).await;
    assert_eq!(data.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let data = fetch(&fixture, fetch_request("t", 7, 0, 0)).await;
    assert_eq!(data.error_code, 3);
}

#[tokio::test]
async fn produce_errors_are_per_partition() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    let good = batch(&["a"], Compression::None, None);
    assert_eq!(produce(&fixture, "missing", 0, good.clone()).await.0, 3);
    assert_eq!(produce(&fixture, "t", 4, good.clone()).await.0, 3);
    let mut corrupt = good.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&fixture, "t", 0, Bytes::from(corrupt)).await.0,
        2,
        "CORRUPT_MESSAGE for a bad CRC"
    );
    let huge = "x".repeat(2 * 1024 * 1024);
    let large = batch(&[huge.as_str()], Compression::None, None);
    assert_eq!(
        produce(&fixture, "t", 0, large).await.0,
        10,
        "MESSAGE_TOO_LARGE"
    );
    let info = fixture.engine().stream_info("t").unwrap();
    assert_eq!(info.partition_info[0].high_watermark, 0, "nothing stored");
}

#[tokio::test]
async fn acks_zero_is_appended_without_a_response() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    let request = produce_request("t", 0, batch(&["quiet"], Compression::Gzip, None), 0);
    assert!(matches!(
        fixture.call(ApiKey::Produce, request, 9).await,
        Outcome::Silent
    ));
    let info = fixture.engine().stream_info("t").unwrap();
    assert_eq!(info.partition_info[0].high_watermark, 1);
    let request = produce_request("t", 0, batch(&["x"], Compression::None, None), 2);
    let ResponseKind::Produce(response) = fixture.respond(ApiKey::Produce, request, 9).await else {
        panic!()
    };
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 21,
        "INVALID_REQUIRED_ACKS"
    );
}

#[tokio::test]
async fn idempotent_retries_return_the_original_offset_and_gaps_are_refused() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    let id = init_producer_id(&fixture).await;
    assert!(id >= 0);

    let first = batch(&["a", "b"], Compression::None, Some((id, 0, 0)));
    let second = batch(&["c"], Compression::Lz4, Some((id, 0, 2)));
    assert_eq!(produce(&fixture, "t", 0, first.clone()).await, (0, 0));
    assert_eq!(produce(&fixture, "t", 0, second).await, (0, 2));
    // A retry of the first batch: no error, its original offset, nothing written.
    assert_eq!(produce(&fixture, "t", 0, first).await, (0, 0));
    let gap = batch(&["z"], Compression::None, Some((id, 0, 9)));
    assert_eq!(
        produce(&fixture, "t", 0, gap).await.0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    // A bumped epoch fences the old one.
    let mut bump = InitProducerIdRequest::default().with_transactional_id(None);
    bump.producer_id = ProducerId(id);
    bump.producer_epoch = 0;
    let ResponseKind::InitProducerId(bumped) =
        fixture.respond(ApiKey::InitProducerId, bump, 4).await
    else {
        panic!()
    };
    assert_eq!((bumped.producer_id.0, bumped.producer_epoch), (id, 1));
    let fresh = batch(&["new"], Compression::Snappy, Some((id, 1, 0)));
    assert_eq!(produce(&fixture, "t", 0, fresh).await, (0, 3));
    let stale = batch(&["old"], Compression::None, Some((id, 0, 3)));
    assert_eq!(
        produce(&fixture, "t", 0, stale).await.0,
        47,
        "INVALID_PRODUCER_EPOCH"
    );
    let info = fixture.engine().stream_info("t").unwrap();
    assert_eq!(info.partition_info[0].high_watermark, 4);
}

/// A new idempotent producer's id (epoch 0).
async fn init_producer_id(fixture: &Fixture) -> i64 {
    let request = InitProducerIdRequest::default().with_transactional_id(None);
    let ResponseKind::InitProducerId(init) =
        fixture.respond(ApiKey::InitProducerId, request, 4).await
    else {
        panic!("not an InitProducerId response")
    };
    assert_eq!(init.error_code, 0);
    assert_eq!(init.producer_epoch, 0);
    init.producer_id.0
}

#[tokio::test]
async fn a_produce_not_durable_within_its_timeout_times_out_and_its_retry_gets_the_original_offset()
{
    let (fixture, disk) = fixture_with_faults().await;
    fixture.create("t", 1).await;
    let id = init_producer_id(&fixture).await;
    let records = batch(&["a", "b"], Compression::None, Some((id, 0, 0)));
    disk.hold_syncs(true);
    let mut request = produce_request("t", 0, records.clone(), -1);
    request.timeout_ms = 100;
    let started = std::time::Instant::now();
    let ResponseKind::Produce(response) = fixture.respond(ApiKey::Produce, request, 9).await else {
        panic!("not a produce response")
    };
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 7, "REQUEST_TIMED_OUT");
    assert_eq!(answer.base_offset, -1);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // The producer retries the same batch; it is answered once the original is durable.
    let retry = produce(&fixture, "t", 0, records);
    let disk_recovers = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        disk.hold_syncs(false);
    };
    let (retried, ()) = tokio::join!(retry, disk_recovers);
    assert_eq!(retried, (0, 0), "the original offset, no error");
    let info = fixture.engine().stream_info("t").unwrap();
    assert_eq!(
        info.partition_info[0].high_watermark, 2,
        "written once, not twice"
    );
}

#[tokio::test]
async fn list_offsets_resolves_earliest_latest_and_timestamps() {
    let fixture = fixture().await;
    fixture.create("t", 1).await;
    produce(
        &fixture,
        "t",
        0,
        batch(&["a", "b", "c"], Compression::None, None),
    )
    .await;
    let lookup = |timestamp: i64| {
        let mut partition = list_offsets_request::ListOffsetsPartition::default();
        partition.timestamp = timestamp;
        let mut wanted = list_offsets_request::ListOffsetsTopic::default();
        wanted.name = topic("t");
        wanted.partitions = vec![partition];
        let mut request = ListOffsetsRequest::default();
        request.topics = vec![wanted];
        request
    };
    let answer = |response: ResponseKind| {
        let ResponseKind::ListOffsets(response) = response else {
            panic!()
        };
        let partition = &response.topics[0].partitions[0];
        (partition.error_code, partition.offset, partition.timestamp)
    };
    let fixture = &fixture;
    let ask = |timestamp| async move {
        answer(
            fixture
                .respond(ApiKey::ListOffsets, lookup(timestamp), 5)
                .await,
        )
    };
    assert_eq!(ask(-2).await, (0, 0, -1));
    assert_eq!(ask(-1).await, (0, 3, -1));
    assert_eq!(ask(1_700_000_000_001).await, (0, 1, 1_700_000_000_001));
    assert_eq!(
        ask(1_800_000_000_000).await,
        (0, -1, -1),
        "past every record"
    );
}

#[tokio::test]
async fn metadata_lists_all_topics_and_auto_creates_when_allowed() {
    let mut fixture = fixture().await;
    fixture.create("a", 2).await;
    let all = MetadataRequest::default().with_topics(None);
    let ResponseKind::Metadata(response) = fixture.respond(ApiKey::Metadata, all, 12).await else {
        panic!()
    };
    assert_eq!(response.brokers.len(), 1);
    assert_eq!(response.brokers[0].port, 9092);
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].partitions.len(), 2);
    assert_eq!(response.topics[0].partitions[1].leader_id, BrokerId(0));

    let wanted = |name: &str, allow: bool| {
        let mut entry = metadata_request::MetadataRequestTopic::default();
        entry.name = Some(topic(name));
        let mut request = MetadataRequest::default();
        request.topics = Some(vec![entry]);
        request.allow_auto_topic_creation = allow;
        request
    };
    let ResponseKind::Metadata(response) = fixture
        .respond(ApiKey::Metadata, wanted("b", false), 12)
        .await
    else {
        panic!()
    };
    assert_eq!(
        response.topics[0].error_code, 3,
        "not created when the client forbids it"
    );
    let ResponseKind::Metadata(response) = fixture
        .respond(ApiKey::Metadata, wanted("b", true), 12)
        .await
    else {
        panic!()
    };
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(
        response.topics[0].partitions.len(),
        1,
        "the engine's default partitions"
    );

    fixture.broker.config.auto_create_topics = false;
    let ResponseKind::Metadata(response) = fixture
        .respond(ApiKey::Metadata, wanted("c", true), 12)
        .await
    else {
        panic!()
    };
    assert_eq!(
        response.topics[0].error_code, 3,
        "not created when the broker forbids it"
    );
    let ResponseKind::Metadata(response) = fixture
        .respond(ApiKey::Metadata, wanted("bad name!", true), 12)
        .await
    else {
        panic!()
    };
    assert_eq!(response.topics[0].error_code, 3);
}

/// A review finding: admin requests ran the engine's disk work on the connection's async
/// worker while holding the global streams lock, so one stalled disk stopped every produce
/// and fetch. Here the disk under one new topic stalls (its directory fsync never returns)
/// while CreateTopics and an auto-creating Metadata for it are in flight; a produce and a
/// fetch on another topic must still be answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_under_one_topic_does_not_stall_produce_and_fetch_on_another() {
    let (fixture, disk) = fixture_with_faults().await;
    let fixture = std::sync::Arc::new(fixture);
    fixture.create("fast", 1).await;
    let streams = fixture.engine().data_dir().join("streams");
    disk.hold_syncs_under(&streams.join("slow"));
    let mut stalled = Vec::new();
    {
        let fixture = fixture.clone();
        stalled.push(tokio::spawn(async move {
            let mut wanted = create_topics_request::CreatableTopic::default();
            wanted.name = topic("slow");
            wanted.num_partitions = 1;
            wanted.replication_factor = 1;
            let mut request = CreateTopicsRequest::default();
            request.topics = vec![wanted];
            request.timeout_ms = 60_000;
            let ResponseKind::CreateTopics(response) =
                fixture.respond(ApiKey::CreateTopics, request, 5).await
            else {
                panic!("not a CreateTopics response")
            };
            response.topics[0].error_code
        }));
    }
    for _ in 0..2 {
        let fixture = fixture.clone();
        stalled.push(tokio::spawn(async move {
            let mut wanted = metadata_request::MetadataRequestTopic::default();
            wanted.name = Some(topic("slow"));
            let mut request = MetadataRequest::default();
            request.topics = Some(vec![wanted]);
            request.allow_auto_topic_creation = true;
            let ResponseKind::Metadata(response) =
                fixture.respond(ApiKey::Metadata, request, 9).await
            else {
                panic!("not a Metadata response")
            };
            response.topics[0].error_code
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        stalled.iter().all(|task| !task.is_finished()),
        "the disk under 'slow' is stalled"
    );
    let served = async {
        let (code, offset) =
            produce(&fixture, "fast", 0, batch(&["x"], Compression::None, None)).await;
        assert_eq!((code, offset), (0, 0));
        let data = fetch(&fixture, fetch_request("fast", 0, 0, 0)).await;
        assert_eq!(
            values(data.records.as_ref().unwrap()),
            vec![(0, "x".into())]
        );
    };
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("produce and fetch on another topic were held up by the stalled disk");
    disk.hold_syncs(false);
    let mut codes = Vec::new();
    for task in stalled {
        let code = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("answered once the disk recovers")
            .unwrap();
        codes.push(code);
    }
    // CreateTopics either made the topic (0) or found that an auto-create had (36,
    // TOPIC_ALREADY_EXISTS); the Metadata requests find the topic either way.
    assert!(matches!(codes[0], 0 | 36), "{codes:?}");
    assert_eq!(codes[1..], [0, 0], "{codes:?}");
}

#[tokio::test]
async fn a_produce_on_a_full_disk_gets_kafka_storage_error_and_a_later_retry_lands() {
    let (fixture, disk) = fixture_with_faults().await;
    fixture.create("t", 1).await;
    assert_eq!(
        produce(&fixture, "t", 0, batch(&["a"], Compression::None, None)).await,
        (0, 0)
    );
    disk.as_disk_full(true);
    disk.fail_write(1);
    let (error_code, base_offset) = produce(
        &fixture,
        "t",
        0,
        batch(&["refused"], Compression::None, None),
    )
    .await;
    assert_eq!(error_code, 56, "KAFKA_STORAGE_ERROR");
    assert_eq!(base_offset, -1);
    // The disk has room again: the engine's maintenance pass lets writes in, and the
    // client's retry lands right after the last acknowledged record.
    disk.clear();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = produce(&fixture, "t", 0, batch(&["b"], Compression::None, None)).await;
        if answer.0 == 0 {
            assert_eq!(answer.1, 1, "offsets stay dense");
            break;
        }
        assert_eq!(
            answer.0, 56,
            "KAFKA_STORAGE_ERROR until the partition resumes"
        );
        assert!(std::time::Instant::now() < deadline, "writes never resumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stream names may hold `:` (Redis keys), Kafka topic names may not: a Kafka client creating
/// `orders:eu`, explicitly or on first use, is refused as Kafka refuses it, while a stream of
/// that name made by another door is listed and readable.
#[tokio::test]
async fn topics_with_a_colon_are_refused_as_kafka_does_but_such_streams_are_served() {
    let fixture = fixture().await;
    let mut wanted = create_topics_request::CreatableTopic::default();
    wanted.name = topic("orders:eu");
    wanted.num_partitions = 1;
    wanted.replication_factor = 1;
    for validate_only in [true, false] {
        let mut request = CreateTopicsRequest::default();
        request.topics = vec![wanted.clone()];
        request.validate_only = validate_only;
        let ResponseKind::CreateTopics(response) =
            fixture.respond(ApiKey::CreateTopics, request, 5).await
        else {
            panic!("not a CreateTopics response")
        };
        assert_eq!(response.topics[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
    }
    let metadata = |name: &str| {
        let mut wanted = metadata_request::MetadataRequestTopic::default();
        wanted.name = Some(topic(name));
        let mut request = MetadataRequest::default();
        request.topics = Some(vec![wanted]);
        request.allow_auto_topic_creation = true;
        request
    };
    let ResponseKind::Metadata(response) = fixture
        .respond(ApiKey::Metadata, metadata("orders:eu"), 9)
        .await
    else {
        panic!("not a Metadata response")
    };
    assert_eq!(
        response.topics[0].error_code, 17,
        "not created on first use"
    );
    assert!(fixture.engine().stream_info("orders:eu").is_err());

    // Made by another door (a Redis XADD), it is a topic like any other.
    fixture.create("orders:eu", 1).await;
    fixture
        .engine()
        .publish(
            omnibus_engine::PublishTarget::Stream("orders:eu".into()),
            vec![omnibus_engine::PublishRecord {
                value: Some(bytes::Bytes::from_static(b"x")),
                ..Default::default()
            }],
        )
        .await
        .unwrap();
    let ResponseKind::Metadata(response) = fixture
        .respond(ApiKey::Metadata, metadata("orders:eu"), 9)
        .await
    else {
        panic!("not a Metadata response")
    };
    assert_eq!(response.topics[0].error_code, 0);
    let data = fetch(&fixture, fetch_request("orders:eu", 0, 0, 0)).await;
    assert_eq!(
        values(data.records.as_ref().unwrap()),
        vec![(0, "x".into())]
    );
}
