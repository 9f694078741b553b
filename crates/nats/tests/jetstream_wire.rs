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
    raw.send("CONNECT {\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.r.* 1\r\nPING\r\n")
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
