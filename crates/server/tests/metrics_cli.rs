//! The metrics views of the binary, end to end: `omnibus top --once`, `omnibus group lag`
//! and `omnibus queue info` against a real `omnibus serve`, and `/metrics` counting the
//! connections and requests of the other front doors (raw NATS and Kafka sockets).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};
use support::process::Server;

/// One HTTP/1.1 exchange over a raw socket; returns the status line's code and the body.
fn http(address: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().expect("a status code");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn post(server: &Server, path: &str, body: Value) {
    let (status, answer) = http(&server.address, "POST", path, Some(&body));
    assert!(
        (200..300).contains(&status),
        "POST {path}: {status} {answer}"
    );
}

/// A broker with a stream two records ahead of group `billing`, and a queue with work.
fn busy_server() -> Server {
    let server = Server::start();
    post(&server, "/v1/streams", json!({"name": "orders"}));
    // Two minutes old by their timestamps, so the lag's age has a known lower bound.
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 120_000;
    let records: Vec<Value> = (0..5)
        .map(|i| json!({"value": i, "timestamp_ms": old + i}))
        .collect();
    post(
        &server,
        "/v1/streams/orders/records",
        json!({ "records": records }),
    );
    post(
        &server,
        "/v1/groups/billing/offsets",
        json!({"offsets": [{"stream": "orders", "partition": 0, "offset": 3}]}),
    );
    post(&server, "/v1/queues", json!({"name": "emails"}));
    post(
        &server,
        "/v1/queues/emails/messages",
        json!({"messages": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}),
    );
    server
}

#[test]
fn top_once_prints_one_frame_with_streams_queues_and_group_lag() {
    let server = busy_server();
    let top = server
        .cli(&["top", "--once", "--interval-ms", "100"], b"")
        .success("top --once");
    let frame = top.stdout;
    assert!(frame.starts_with("omnibus top  publish "), "{frame}");
    assert!(frame.contains("group lag 2"), "{frame}");
    // The header line, then the streams, queues and groups tables, blank lines between.
    let sections: Vec<&str> = frame.split("\n\n").collect();
    assert_eq!(sections.len(), 4, "{frame}");
    let row = |section: usize, name: &str| -> Vec<String> {
        let line = sections[section]
            .lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in:\n{frame}"));
        line.split_whitespace().map(String::from).collect()
    };
    assert_eq!(row(1, "orders")[2], "5", "records:\n{frame}");
    assert_eq!(row(2, "emails")[1], "3", "ready:\n{frame}");
    assert_eq!(row(3, "billing")[1], "2", "lag:\n{frame}");
    assert!(!frame.contains('\x1b'), "no terminal escapes with --once");
}

#[test]
fn group_lag_shows_the_age_of_the_oldest_unconsumed_record_and_rates() {
    let server = busy_server();
    let lag = server
        .cli(&["group", "lag", "billing", "--sample-ms", "100"], b"")
        .success("group lag");
    let lag: Value = serde_json::from_str(&lag.stdout).expect("JSON");
    let partition = &lag["partitions"][0];
    assert_eq!(partition["lag"], 2);
    assert!(
        partition["lag_ms"]
            .as_i64()
            .is_some_and(|ms| (119_000..600_000).contains(&ms)),
        "the oldest unconsumed record is two minutes old: {lag}"
    );
    assert_eq!(partition["records_in_per_second"], 0.0, "{lag}");
    assert_eq!(partition["consumed_per_second"], 0.0, "{lag}");
}

#[test]
fn queue_info_shows_depths_rates_and_the_oldest_waiting_age() {
    let server = busy_server();
    std::thread::sleep(Duration::from_millis(300));
    let info = server
        .cli(&["queue", "info", "emails"], b"")
        .success("queue info");
    let info: Value = serde_json::from_str(&info.stdout).expect("JSON");
    assert_eq!(info["ready"], 3);
    assert_eq!(info["rates"]["enqueued"]["last_minute"], 3, "{info}");
    assert!(
        info["jobs"]["oldest_waiting_ms"]
            .as_i64()
            .is_some_and(|ms| (250..60_000).contains(&ms)),
        "the messages have waited 300 ms: {info}"
    );
}

#[test]
fn metrics_count_the_connections_and_requests_of_every_door() {
    let server = Server::start();
    // NATS: INFO, then CONNECT and PING answered with PONG.
    let mut nats = TcpStream::connect(&server.nats_address).expect("NATS");
    nats.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(nats.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO "), "{line}");
    nats.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
        .unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "PONG\r\n");
    // Kafka: a connection that sends nothing.
    let kafka = TcpStream::connect(&server.kafka_address).expect("Kafka");
    drop(kafka);

    let (status, text) = http(&server.address, "GET", "/metrics", None);
    assert_eq!(status, 200);
    let sample = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        sample("omnibus_connections_opened_total{door=\"nats\"}"),
        1.0
    );
    assert_eq!(sample("omnibus_connections_open{door=\"nats\"}"), 1.0);
    assert_eq!(
        sample("omnibus_requests_total{door=\"nats\"}"),
        2.0,
        "CONNECT and PING"
    );
    assert!(sample("omnibus_connections_opened_total{door=\"kafka\"}") >= 1.0);
    assert!(sample("omnibus_connections_opened_total{door=\"http\"}") >= 1.0);
    assert_eq!(
        sample("omnibus_connections_opened_total{door=\"amqp\"}"),
        0.0
    );
    drop(nats);
}

#[test]
fn top_refreshes_until_interrupted_and_exits_cleanly() {
    let server = busy_server();
    let mut top = std::process::Command::new(support::BIN)
        .args(["--server", &server.url(), "top", "--interval-ms", "50"])
        .env_remove("OMNIBUS_SERVER")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn omnibus top");
    // Reads frames on a thread; tells when the second one has arrived.
    let stdout = top.stdout.take().unwrap();
    let (frames, seen) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("omnibus top") {
                let _ = frames.send(());
            }
            text.push_str(&line);
            line.clear();
        }
        text
    });
    for _ in 0..2 {
        seen.recv_timeout(Duration::from_secs(30))
            .expect("a frame within 30 s");
    }
    // SAFETY: signalling a child process this test started and still owns.
    unsafe { libc::kill(top.id() as libc::pid_t, libc::SIGINT) };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = top.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = top.kill();
            panic!("omnibus top ignored SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let text = reader.join().unwrap();
    assert!(
        text.contains("\x1b[H\x1b[2J"),
        "each frame clears the screen"
    );
    assert!(text.contains("emails"), "{text}");
}

/// Sends Redis commands over a raw RESP socket, then a PING, and reads until its PONG.
fn redis(address: &str, commands: &[&[&str]]) -> String {
    let mut stream = TcpStream::connect(address).expect("Redis");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = String::new();
    for command in commands.iter().chain([&["PING"][..]].iter()) {
        request.push_str(&format!("*{}\r\n", command.len()));
        for argument in *command {
            request.push_str(&format!("${}\r\n{argument}\r\n", argument.len()));
        }
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.ends_with(b"+PONG\r\n") {
        let read = stream.read(&mut buffer).expect("Redis answers");
        assert!(
            read > 0,
            "Redis closed: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn group_lag_and_list_show_acked_consumers_such_as_a_redis_group() {
    let server = Server::start();
    let listeners = std::fs::read_to_string(server.data_dir.join("listeners.json")).unwrap();
    let listeners: Value = serde_json::from_str(&listeners).unwrap();
    let address = listeners["redis"].as_str().expect("a Redis listener");
    let answer = redis(
        address,
        &[
            &["XADD", "jobs", "*", "n", "1"],
            &["XADD", "jobs", "*", "n", "2"],
            &["XADD", "jobs", "*", "n", "3"],
            &["XGROUP", "CREATE", "jobs", "workers", "0"],
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "alice",
                "COUNT",
                "1",
                "STREAMS",
                "jobs",
                ">",
            ],
        ],
    );
    assert!(!answer.contains("-ERR"), "{answer}");
    let lag = server
        .cli(&["group", "lag", "workers", "--sample-ms", "0"], b"")
        .success("group lag");
    let lag: Value = serde_json::from_str(&lag.stdout).expect("JSON");
    let consumers = lag["consumers"].as_array().expect("consumers");
    assert_eq!(consumers.len(), 1, "{lag}");
    let workers = &consumers[0];
    assert_eq!(workers["stream"], "jobs");
    assert_eq!(workers["consumer"], "workers");
    // Two never read, one read by alice and not acknowledged.
    assert_eq!(workers["lag_records"], 3, "{lag}");
    assert_eq!(workers["ack_pending"], 1, "{lag}");
    assert!(workers["lag_ms"].as_u64().is_some(), "{lag}");
    let other = server
        .cli(&["group", "lag", "nobody", "--sample-ms", "0"], b"")
        .success("group lag of another name");
    let other: Value = serde_json::from_str(&other.stdout).expect("JSON");
    assert_eq!(other["consumers"], json!([]), "{other}");
    let list = server.cli(&["group", "list"], b"").success("group list");
    let list: Value = serde_json::from_str(&list.stdout).expect("JSON");
    assert_eq!(
        list["consumers"],
        json!([{"stream": "jobs", "consumer": "workers"}]),
        "{list}"
    );
}
