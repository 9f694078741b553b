use bytes::BytesMut;

use super::*;

fn limits() -> Limits {
    Limits {
        bulk_bytes_max: 16,
        arguments_max: 4,
        request_bytes_max: 256,
        inline_bytes_max: 32,
    }
}

fn decode_all(input: &[u8]) -> (Vec<Vec<String>>, Result<(), ProtocolError>, usize) {
    let mut buffer = BytesMut::from(input);
    let mut commands = Vec::new();
    loop {
        match decode_request(&mut buffer, &limits()) {
            Ok(Some(arguments)) => commands.push(
                arguments
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            ),
            Ok(None) => return (commands, Ok(()), buffer.len()),
            Err(error) => return (commands, Err(error), buffer.len()),
        }
    }
}

#[test]
fn pipelined_arrays_and_inline_commands_decode_in_order() {
    let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n\r\n*0\r\nSET \"a b\" 'c\\'d' \"\\x41\\n\"\r\n*1\r\n$4\r\nPI";
    let (commands, outcome, left) = decode_all(input);
    assert!(outcome.is_ok());
    assert_eq!(
        commands,
        vec![
            vec!["GET".to_string(), "k".to_string()],
            vec!["PING".to_string()],
            vec![
                "SET".to_string(),
                "a b".to_string(),
                "c'd".to_string(),
                "A\n".to_string()
            ],
        ]
    );
    // The incomplete command stays buffered for the next read.
    assert_eq!(left, b"*1\r\n$4\r\nPI".len());
}

#[test]
fn bounds_are_checked_before_the_bytes_arrive() {
    // A huge bulk length is refused from its header alone.
    let (_, outcome, _) = decode_all(b"*1\r\n$999999999999\r\n");
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "Protocol error: invalid bulk length"
    );
    let (_, outcome, _) = decode_all(b"*5\r\n");
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "Protocol error: invalid multibulk length"
    );
    let (_, outcome, _) = decode_all(b"*1\r\n:1\r\n");
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "Protocol error: expected '$', got ':'"
    );
    let (_, outcome, _) = decode_all(b"*1\r\n$x\r\n");
    assert!(outcome.is_err());
    let (_, outcome, _) = decode_all(&[b'A'; 40]);
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "Protocol error: too big inline request"
    );
    let (_, outcome, _) = decode_all(b"SET \"open\r\n");
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "Protocol error: unbalanced quotes in request"
    );
    let (_, outcome, _) = decode_all(b"*1\r\n$2\r\nabcd\r\n");
    assert!(outcome.is_err());
}

#[test]
fn replies_encode_in_both_protocols() {
    let reply = Reply::Array(vec![
        Reply::Status("OK".into()),
        Reply::error("ERR bad\r\nline"),
        Reply::Integer(-3),
        Reply::text("v"),
        Reply::Null,
    ]);
    let mut out = BytesMut::new();
    encode(&reply, Protocol::Resp2, &mut out);
    assert_eq!(
        &out[..],
        b"*5\r\n+OK\r\n-ERR bad  line\r\n:-3\r\n$1\r\nv\r\n$-1\r\n"
    );
    out.clear();
    encode(&reply, Protocol::Resp3, &mut out);
    assert_eq!(
        &out[..],
        b"*5\r\n+OK\r\n-ERR bad  line\r\n:-3\r\n$1\r\nv\r\n_\r\n"
    );
    out.clear();
    encode(&Reply::NullArray, Protocol::Resp2, &mut out);
    assert_eq!(&out[..], b"*-1\r\n");
    out.clear();
    let map = Reply::Map(vec![(Reply::text("proto"), Reply::Integer(3))]);
    encode(&map, Protocol::Resp3, &mut out);
    assert_eq!(&out[..], b"%1\r\n$5\r\nproto\r\n:3\r\n");
    out.clear();
    encode(&map, Protocol::Resp2, &mut out);
    assert_eq!(&out[..], b"*2\r\n$5\r\nproto\r\n:3\r\n");
}

proptest::proptest! {
    /// Any bytes decode without a panic, and never yield more than the limits allow.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        crate::fuzzing::decode_frames(&data);
    }
}
