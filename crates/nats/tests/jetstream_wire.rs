//! JetStream's bad input byte by byte: malformed API requests get the API's error on the reply
//! subject and the connection goes on; malformed acks are ignored; a pull from a consumer that
//! does not exist gets the no-responders status.

mod support;

use support::{Broker, Raw};

/// Sends a request on `subject` with `body` and returns the reply's payload line.
async fn request(raw: &mut Raw, subject: &str, body: &str) -> serde_json::Value {
    raw.send(&format!(
        "PUB {subject} _INBOX.r.1 {}\r\n{body}\r\n",
        body.len()
    ))
    .await;
    let header = raw.line().await;
    assert!(header.starts_with("MSG _INBOX.r.1 1 "), "{header}");
    serde_json::from_str(&raw.line().await).unwrap()
}

async fn connected(broker: &Broker) -> Raw {
    let mut raw = broker.raw().await;
    raw.send("CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.r.* 1\r\nPING\r\n")
        .await;
    assert_eq!(raw.line().await, "PONG");
    raw
}

#[tokio::test]
async fn malformed_api_requests_get_api_errors_and_the_connection_goes_on() {
    let broker = Broker::start().await;
    let mut raw = connected(&broker).await;
    let invalid = request(&mut raw, "$JS.API.STREAM.CREATE.S", "{not json").await;
    assert_eq!(invalid["error"]["err_code"], 10025, "{invalid}");
    assert_eq!(invalid["error"]["code"], 400);
    assert_eq!(
        invalid["type"],
        "io.nats.jetstream.api.v1.stream_create_response"
    );
    let mismatch = request(&mut raw, "$JS.API.STREAM.CREATE.S", r#"{"name":"T"}"#).await;
    assert_eq!(mismatch["error"]["err_code"], 10056, "{mismatch}");
    let dotted = request(&mut raw, "$JS.API.STREAM.INFO.nothing", "").await;
    assert_eq!(dotted["error"]["err_code"], 10059, "{dotted}");
    let unknown = request(&mut raw, "$JS.API.NO.SUCH.CALL", "").await;
    assert_eq!(unknown["error"]["code"], 503, "{unknown}");
    let created = request(
        &mut raw,
        "$JS.API.STREAM.CREATE.S",
        r#"{"subjects":["s.>"]}"#,
    )
    .await;
    assert_eq!(created["config"]["name"], "S", "{created}");
    let bad_consumer = request(
        &mut raw,
        "$JS.API.CONSUMER.CREATE.S.c",
        r#"{"stream_name":"S","config":{"ack_policy":"sometimes"}}"#,
    )
    .await;
    assert_eq!(bad_consumer["error"]["err_code"], 10052, "{bad_consumer}");
    let account = request(&mut raw, "$JS.API.INFO", "").await;
    assert_eq!(account["streams"], 1);
    assert_eq!(account["api"]["errors"], 5, "{account}");
    raw.send("PING\r\n").await;
    assert_eq!(raw.line().await, "PONG");
}

#[tokio::test]
async fn malformed_acks_are_ignored_and_a_pull_without_consumer_gets_no_responders() {
    let broker = Broker::start().await;
    let mut raw = connected(&broker).await;
    request(
        &mut raw,
        "$JS.API.STREAM.CREATE.S",
        r#"{"subjects":["s.>"]}"#,
    )
    .await;
    for subject in [
        "$JS.ACK.S",
        "$JS.ACK.S.c.x.y.z.1.2",
        "$JS.ACK.S.nobody.1.1.1.1.0",
        "$JS.ACK.S.c.1.1.1.1.0.extra.tokens.here",
    ] {
        raw.send(&format!("PUB {subject} 4\r\n+ACK\r\n")).await;
    }
    raw.send("PUB $JS.ACK.S.c.1.1.1.1.0 9\r\n+WHATEVER\r\n")
        .await;
    raw.send("PUB $JS.API.CONSUMER.MSG.NEXT.S.nobody _INBOX.r.2 0\r\n\r\n")
        .await;
    assert_eq!(raw.line().await, "HMSG _INBOX.r.2 1 16 16");
    assert_eq!(raw.line().await, "NATS/1.0 503");
    // The header block's empty line, then the (empty) payload's CRLF.
    assert_eq!(raw.line().await, "");
    assert_eq!(raw.line().await, "");
    raw.send("PING\r\n").await;
    assert_eq!(raw.line().await, "PONG");
}

/// Reads the next message on a raw connection: (reply subject, status line of its header
/// block if any, payload).
async fn next_message(raw: &mut Raw) -> (String, Option<String>, String) {
    let line = raw.line().await;
    let fields: Vec<&str> = line.split(' ').collect();
    match fields[0] {
        "MSG" => {
            let reply = if fields.len() == 5 { fields[3] } else { "" };
            (reply.to_string(), None, raw.line().await)
        }
        "HMSG" => {
            let reply = if fields.len() == 6 { fields[3] } else { "" };
            let status = raw.line().await;
            while !raw.line().await.is_empty() {}
            (reply.to_string(), Some(status), raw.line().await)
        }
        _ => panic!("a message expected, got {line:?}"),
    }
}

#[tokio::test]
async fn a_flow_controlled_push_consumer_stalls_until_its_request_is_answered() {
    let broker = Broker::start().await;
    let mut raw = connected(&broker).await;
    request(
        &mut raw,
        "$JS.API.STREAM.CREATE.S",
        r#"{"subjects":["s.>"]}"#,
    )
    .await;
    let count = 1_100;
    raw.send(&"PUB s.x 1\r\nx\r\n".repeat(count)).await;
    raw.send("SUB deliver.fc 2\r\nPING\r\n").await;
    assert_eq!(raw.line().await, "PONG");
    let created = request(
        &mut raw,
        "$JS.API.CONSUMER.CREATE.S.fc",
        r#"{"stream_name":"S","config":{"durable_name":"fc","deliver_subject":"deliver.fc","ack_policy":"none","flow_control":true,"idle_heartbeat":30000000000}}"#,
    )
    .await;
    assert_eq!(created["config"]["flow_control"], true, "{created}");
    // The first window, a request, the second window; then nothing until it is answered.
    let mut records = 0;
    let mut requests = Vec::new();
    while records < 1_024 {
        let (reply, status, _) = next_message(&mut raw).await;
        match status {
            None => records += 1,
            Some(status) => {
                assert_eq!(status, "NATS/1.0 100 FlowControl Request");
                assert_eq!(records, 512, "the request comes after the first window");
                requests.push(reply);
            }
        }
    }
    assert_eq!(requests, vec!["$JS.FC.S.fc.1".to_string()]);
    let more = tokio::time::timeout(std::time::Duration::from_millis(300), raw.line()).await;
    assert!(more.is_err(), "stalled until answered, but got {more:?}");
    raw.send("PUB $JS.FC.S.fc.1 0\r\n\r\n").await;
    while records < count {
        let (reply, status, _) = next_message(&mut raw).await;
        match status {
            None => records += 1,
            Some(_) => requests.push(reply),
        }
    }
    assert_eq!(requests.len(), 2, "{requests:?}");
}

/// The ack floor and pending acks of consumer `name` of stream S.
async fn acked(raw: &mut Raw, name: &str) -> (u64, u64) {
    let info = request(raw, &format!("$JS.API.CONSUMER.INFO.S.{name}"), "").await;
    let floor = info["ack_floor"]["stream_seq"].as_u64().unwrap();
    (floor, info["num_ack_pending"].as_u64().unwrap())
}

#[tokio::test]
async fn plain_acks_sent_together_settle_each_of_their_consumers_deliveries() {
    let broker = Broker::start().await;
    let mut raw = connected(&broker).await;
    request(
        &mut raw,
        "$JS.API.STREAM.CREATE.S",
        r#"{"subjects":["s.>"]}"#,
    )
    .await;
    for index in 0..6 {
        let ack = request(&mut raw, "s.x", &format!("m{index}")).await;
        assert_eq!(ack["seq"], index + 1, "{ack}");
    }
    for name in ["c", "d"] {
        let config = format!(
            r#"{{"stream_name":"S","config":{{"durable_name":"{name}","ack_policy":"explicit"}}}}"#
        );
        request(
            &mut raw,
            &format!("$JS.API.CONSUMER.DURABLE.CREATE.S.{name}"),
            &config,
        )
        .await;
    }
    let mut replies = Vec::new();
    for (name, batch) in [("c", 6), ("d", 2)] {
        raw.send(&format!(
            "PUB $JS.API.CONSUMER.MSG.NEXT.S.{name} _INBOX.r.p 1\r\n{batch}\r\n"
        ))
        .await;
        for _ in 0..batch {
            let (reply, status, _) = next_message(&mut raw).await;
            assert_eq!(status, None);
            replies.push(reply);
        }
    }
    let (c, d) = replies.split_at(6);
    // One write: c's first three (one twice), d's first, a malformed one, c's fifth and
    // sixth; c's fourth stays unacknowledged, and so does d's second.
    let mut acks = String::new();
    for reply in [&c[0], &c[1], &c[1], &c[2], &d[0]] {
        acks.push_str(&format!("PUB {reply} 0\r\n\r\n"));
    }
    acks.push_str("PUB $JS.ACK.S.c.1.x.1.1.0 4\r\n+ACK\r\n");
    for reply in [&c[4], &c[5]] {
        acks.push_str(&format!("PUB {reply} 4\r\n+ACK\r\n"));
    }
    raw.send(&acks).await;
    // Settled in memory as the connection goes on, not before the next request is read.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let settled = (acked(&mut raw, "c").await, acked(&mut raw, "d").await);
        if settled == ((3, 1), (1, 1)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{settled:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The fourth is the one c gets again once its ack wait passes; here, acked on its own.
    raw.send(&format!("PUB {} 0\r\n\r\n", c[3])).await;
    loop {
        if acked(&mut raw, "c").await == (6, 0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
