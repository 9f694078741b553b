//! The NATS door byte by byte: what real clients depend on that a client library hides.

mod support;

use std::time::Duration;

use omnibus_nats::NatsConfig;
use support::Broker;

#[tokio::test]
async fn info_comes_first_and_says_what_clients_need() {
    let broker = Broker::start().await;
    let mut raw = support::Raw::new(tokio::net::TcpStream::connect(broker.nats).await.unwrap());
    let line = raw.line().await;
    let info: serde_json::Value =
        serde_json::from_str(line.strip_prefix("INFO ").unwrap()).unwrap();
    for field in ["server_id", "server_name", "host", "client_ip"] {
        assert!(info[field].is_string(), "{field} in {info}");
    }
    assert!(info["version"].as_str().unwrap().starts_with("2.10."));
    assert_eq!(info["proto"], 1);
    assert_eq!(info["headers"], true);
    assert_eq!(info["max_payload"], 1024 * 1024);
    assert_eq!(info["port"], broker.nats.port());
    assert!(info["client_id"].is_u64());
    assert_eq!(info["jetstream"], true);
}

#[tokio::test]
async fn the_first_ping_is_answered_by_the_very_next_line_and_ok_is_verbose_only() {
    let broker = Broker::start().await;
    let mut quiet = broker.raw().await;
    quiet
        .send("CONNECT {\"verbose\":false}\r\nSUB a 1\r\nPING\r\n")
        .await;
    assert_eq!(quiet.line().await, "PONG");
    let mut verbose = broker.raw().await;
    verbose
        .send("CONNECT {\"verbose\":true}\r\nPING\r\nSUB a 1\r\n")
        .await;
    assert_eq!(verbose.line().await, "+OK");
    assert_eq!(verbose.line().await, "PONG");
    assert_eq!(verbose.line().await, "+OK");
    // As in nats-server, verbose is on unless the client turns it off: someone typing into
    // telnet, with an empty CONNECT or none at all, sees `+OK` after each operation.
    for start in ["CONNECT {}\r\n", "CONNECT {\"pedantic\":true}\r\n", ""] {
        let mut typed = broker.raw().await;
        typed
            .send(&format!("{start}SUB a 9\r\nPUB a 2\r\nhi\r\nPING\r\n"))
            .await;
        let mut expected = vec!["+OK", "+OK", "+OK", "MSG a 9 2", "hi", "PONG"];
        if start.is_empty() {
            expected.remove(0);
        }
        for line in expected {
            assert_eq!(typed.line().await, line, "after {start:?}");
        }
    }
}

/// nats-py writes `PUB subj  7` and `UNSUB 2 `; operations are case-insensitive.
#[tokio::test]
async fn tolerant_argument_splitting_and_unsubscribe_with_max() {
    let broker = Broker::start().await;
    let mut raw = broker.raw().await;
    raw.send("connect {\"verbose\":false}\r\nsub subj 2 \r\nunsub 2  2 \r\nping\r\n")
        .await;
    assert_eq!(raw.line().await, "PONG");
    raw.send("PUB subj  7\r\npayload\r\nPUB subj 3\r\ntwo\r\nPUB subj 5\r\nthree\r\nPING\r\n")
        .await;
    assert_eq!(raw.line().await, "MSG subj 2 7");
    assert_eq!(raw.line().await, "payload");
    assert_eq!(raw.line().await, "MSG subj 2 3");
    assert_eq!(raw.line().await, "two");
    assert_eq!(raw.line().await, "PONG", "the third is past the max of 2");
}

#[tokio::test]
async fn a_request_nobody_receives_gets_the_503_status_on_the_inbox() {
    let broker = Broker::start().await;
    let mut raw = broker.raw().await;
    raw.send("CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.abc.* 9\r\n")
        .await;
    raw.send("PUB nobody.home _INBOX.abc.1 2\r\nhi\r\nPING\r\n")
        .await;
    assert_eq!(raw.line().await, "HMSG _INBOX.abc.1 9 16 16");
    assert_eq!(raw.line().await, "NATS/1.0 503");
    assert_eq!(raw.line().await, "");
    assert_eq!(raw.line().await, "");
    assert_eq!(raw.line().await, "PONG");
    // Without no_responders (or without headers) there is no status.
    let mut plain = broker.raw().await;
    plain
        .send("CONNECT {\"verbose\":false,\"headers\":false,\"no_responders\":true}\r\nSUB _INBOX.x.* 1\r\n")
        .await;
    plain
        .send("PUB nobody.home _INBOX.x.1 0\r\n\r\nPING\r\n")
        .await;
    assert_eq!(plain.line().await, "PONG");
}

#[tokio::test]
async fn headers_reach_a_header_client_as_hmsg_and_others_as_the_payload_alone() {
    let broker = Broker::start().await;
    let mut with = broker.raw().await;
    with.send("CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB h 1\r\nPING\r\n")
        .await;
    assert_eq!(with.line().await, "PONG");
    let mut without = broker.raw().await;
    without
        .send("CONNECT {\"verbose\":false}\r\nSUB h 1\r\nPING\r\n")
        .await;
    assert_eq!(without.line().await, "PONG");
    let block = "NATS/1.0\r\nA: b\r\n\r\n";
    let mut publisher = broker.raw().await;
    publisher
        .send(&format!(
            "CONNECT {{\"verbose\":false}}\r\nHPUB h {} {}\r\n{block}hi\r\nPING\r\n",
            block.len(),
            block.len() + 2
        ))
        .await;
    assert_eq!(publisher.line().await, "PONG");
    assert_eq!(
        with.line().await,
        format!("HMSG h 1 {} {}", block.len(), block.len() + 2)
    );
    assert_eq!(with.line().await, "NATS/1.0");
    assert_eq!(with.line().await, "A: b");
    assert_eq!(with.line().await, "");
    assert_eq!(with.line().await, "hi");
    assert_eq!(without.line().await, "MSG h 1 2");
    assert_eq!(without.line().await, "hi");
}

#[tokio::test]
async fn invalid_subjects_and_too_many_subscriptions_are_refused_but_the_connection_stays() {
    let broker = Broker::with_config(NatsConfig {
        subscriptions_max: 2,
        ..NatsConfig::default()
    })
    .await;
    let mut raw = broker.raw().await;
    raw.send("CONNECT {\"verbose\":false}\r\nSUB a..b 1\r\nSUB a.>.b 2\r\nPUB a.* 0\r\n\r\n")
        .await;
    assert_eq!(raw.line().await, "-ERR 'Invalid Subject'");
    assert_eq!(raw.line().await, "-ERR 'Invalid Subject'");
    assert_eq!(raw.line().await, "-ERR 'Invalid Publish Subject'");
    raw.send("SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n").await;
    assert_eq!(raw.line().await, "-ERR 'Maximum Subscriptions Exceeded'");
    assert_eq!(raw.line().await, "PONG");
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let broker = Broker::start().await;
    let mut bystander = broker.raw().await;
    bystander
        .send("CONNECT {\"verbose\":false}\r\nSUB t 1\r\nPING\r\n")
        .await;
    assert_eq!(bystander.line().await, "PONG");
    for (garbage, error) in [
        (
            "FOO bar\r\n".to_string(),
            "-ERR 'Unknown Protocol Operation'",
        ),
        ("PUB t x\r\n".to_string(), "-ERR 'Parser Error'"),
        (
            "CONNECT {nope\r\n".to_string(),
            "-ERR 'Invalid Connect Options'",
        ),
        (
            "PUB t 3\r\nabcdef\r\n".to_string(),
            "-ERR 'Unknown Protocol Operation'",
        ),
        ("A".repeat(5000), "-ERR 'Maximum Control Line Exceeded'"),
    ] {
        let mut bad = broker.raw().await;
        bad.send(&garbage).await;
        assert_eq!(
            bad.line().await,
            error,
            "after {:?}",
            &garbage[..garbage.len().min(20)]
        );
        bad.until_closed().await;
    }
    let mut publisher = broker.raw().await;
    publisher.send("PUB t 2\r\nok\r\n").await;
    assert_eq!(bystander.line().await, "MSG t 1 2");
    assert_eq!(bystander.line().await, "ok");
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_as_stale() {
    let broker = Broker::with_config(NatsConfig {
        ping_interval: Duration::from_millis(50),
        pings_outstanding_max: 2,
        ..NatsConfig::default()
    })
    .await;
    let mut silent = broker.raw().await;
    silent.send("CONNECT {\"verbose\":false}\r\n").await;
    assert_eq!(silent.line().await, "PING");
    assert_eq!(silent.line().await, "PING");
    assert_eq!(silent.line().await, "-ERR 'Stale Connection'");
    silent.until_closed().await;
    // One that answers stays.
    let mut lively = broker.raw().await;
    lively.send("CONNECT {\"verbose\":false}\r\n").await;
    for _ in 0..5 {
        assert_eq!(lively.line().await, "PING");
        lively.send("PONG\r\n").await;
    }
}

#[tokio::test]
async fn connections_past_the_bound_are_refused() {
    let broker = Broker::with_config(NatsConfig {
        connections_max: 1,
        ..NatsConfig::default()
    })
    .await;
    let mut first = broker.raw().await;
    let mut second = support::Raw::new(tokio::net::TcpStream::connect(broker.nats).await.unwrap());
    assert_eq!(second.line().await, "-ERR 'maximum connections exceeded'");
    first.send("PING\r\n").await;
    assert_eq!(first.line().await, "PONG");
}

/// A payload of exactly `max_payload`, arriving over many reads, goes through whole; the
/// connection goes on with small messages after it.
#[tokio::test]
async fn a_payload_of_max_payload_goes_through_whole() {
    let broker = Broker::start().await;
    let mut subscriber = broker.raw().await;
    subscriber
        .send("CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n")
        .await;
    assert_eq!(subscriber.line().await, "PONG");
    let mut publisher = broker.raw().await;
    let payload: String = (0..1024 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    publisher
        .send(&format!(
            "PUB big {}\r\n{payload}\r\nPUB big 5\r\nsmall\r\n",
            payload.len()
        ))
        .await;
    assert_eq!(
        subscriber.line().await,
        format!("MSG big 1 {}", payload.len())
    );
    assert!(
        subscriber.line().await == payload,
        "the payload arrived changed"
    );
    assert_eq!(subscriber.line().await, "MSG big 1 5");
    assert_eq!(subscriber.line().await, "small");
}

/// A message routed to a subscription before its UNSUB (here the connection's own PUB just
/// before) is still written, as nats-server writes it; the one after is not.
#[tokio::test]
async fn a_message_published_before_an_unsub_is_still_delivered() {
    let broker = Broker::start().await;
    let mut raw = broker.raw().await;
    raw.send(
        "CONNECT {\"verbose\":false}\r\nSUB u 1\r\nPUB u 1\r\na\r\nUNSUB 1\r\nPUB u 1\r\nb\r\nPING\r\n",
    )
    .await;
    assert_eq!(raw.line().await, "MSG u 1 1");
    assert_eq!(raw.line().await, "a");
    assert_eq!(raw.line().await, "PONG");
}
