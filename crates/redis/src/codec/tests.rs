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

#[test]
fn doubles_given_as_text_keep_their_digits() {
    let reply = Reply::DoubleText("13.36138933897018433".into());
    let mut out = BytesMut::new();
    encode(&reply, Protocol::Resp3, &mut out);
    assert_eq!(&out[..], b",13.36138933897018433\r\n");
    out.clear();
    encode(&reply, Protocol::Resp2, &mut out);
    assert_eq!(&out[..], b"$20\r\n13.36138933897018433\r\n");
}

proptest::proptest! {
    /// Any bytes decode without a panic, and never yield more than the limits allow.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        crate::fuzzing::decode_frames(&data);
    }
}

/// Stands for a missing array in the reference encoding (no reply here holds these bytes).
const NULL_ARRAY_MARKER: &[u8] = b"\0missing array\0";

/// `redis-protocol`'s encoding of a reply: the reference the hand-written encoder matches.
fn reference_encoding(reply: &Reply, protocol: Protocol) -> Vec<u8> {
    use redis_protocol::{resp2, resp3};
    fn one_line(text: &str) -> String {
        text.replace(['\r', '\n'], " ")
    }
    fn to_resp2(reply: &Reply) -> resp2::types::BytesFrame {
        use resp2::types::BytesFrame as Frame;
        match reply {
            Reply::Status(text) => Frame::SimpleString(bytes::Bytes::from(one_line(text))),
            Reply::Error(text) => Frame::Error(one_line(text).into()),
            Reply::Integer(value) => Frame::Integer(*value),
            Reply::Bulk(bytes) => Frame::BulkString(bytes.clone()),
            Reply::Null => Frame::Null,
            // redis-protocol has no missing array: a marker, swapped for `*-1` below.
            Reply::NullArray => Frame::BulkString(bytes::Bytes::from_static(NULL_ARRAY_MARKER)),
            Reply::Many(items) if items.len() == 1 => to_resp2(&items[0]),
            Reply::Array(items) | Reply::Push(items) | Reply::Many(items) | Reply::Set(items) => {
                Frame::Array(items.iter().map(to_resp2).collect())
            }
            Reply::Double(value) => Frame::BulkString(super::reply::double_text(*value).into()),
            Reply::DoubleText(text) => Frame::BulkString(text.clone().into()),
            Reply::Map(pairs) => Frame::Array(
                pairs
                    .iter()
                    .flat_map(|(key, value)| [to_resp2(key), to_resp2(value)])
                    .collect(),
            ),
        }
    }
    fn to_resp3(reply: &Reply) -> resp3::types::BytesFrame {
        use resp3::types::BytesFrame as Frame;
        match reply {
            Reply::Status(text) => Frame::SimpleString {
                data: bytes::Bytes::from(one_line(text)),
                attributes: None,
            },
            Reply::Error(text) => Frame::SimpleError {
                data: one_line(text).into(),
                attributes: None,
            },
            Reply::Integer(value) => Frame::Number {
                data: *value,
                attributes: None,
            },
            Reply::Bulk(bytes) => Frame::BlobString {
                data: bytes.clone(),
                attributes: None,
            },
            Reply::Null | Reply::NullArray => Frame::Null,
            Reply::Many(items) if items.len() == 1 => to_resp3(&items[0]),
            Reply::Array(items) | Reply::Many(items) => Frame::Array {
                data: items.iter().map(to_resp3).collect(),
                attributes: None,
            },
            Reply::Push(items) => Frame::Push {
                data: items.iter().map(to_resp3).collect(),
                attributes: None,
            },
            Reply::Set(items) => Frame::Set {
                data: items.iter().map(to_resp3).collect(),
                attributes: None,
            },
            Reply::Double(value) => Frame::Double {
                data: *value,
                attributes: None,
            },
            // redis-protocol writes a double's shortest digits: checked by hand below.
            Reply::DoubleText(_) => unreachable!("not generated"),
            Reply::Map(pairs) => Frame::Map {
                data: pairs
                    .iter()
                    .map(|(key, value)| (to_resp3(key), to_resp3(value)))
                    .collect(),
                attributes: None,
            },
        }
    }
    let mut out = BytesMut::new();
    match (reply, protocol) {
        (Reply::Many(replies), _) => {
            for reply in replies {
                out.extend_from_slice(&reference_encoding(reply, protocol));
            }
        }
        (_, Protocol::Resp2) => {
            resp2::encode::extend_encode(&mut out, &to_resp2(reply), false).unwrap();
            let marker = format!("${}\r\n", NULL_ARRAY_MARKER.len()).into_bytes();
            let marker = [&marker[..], NULL_ARRAY_MARKER, b"\r\n"].concat();
            let mut swapped = Vec::with_capacity(out.len());
            let mut rest = &out[..];
            while let Some(at) = rest.windows(marker.len()).position(|w| w == marker) {
                swapped.extend_from_slice(&rest[..at]);
                swapped.extend_from_slice(b"*-1\r\n");
                rest = &rest[at + marker.len()..];
            }
            swapped.extend_from_slice(rest);
            return swapped;
        }
        (_, Protocol::Resp3) => {
            resp3::encode::complete::extend_encode(&mut out, &to_resp3(reply), false).unwrap();
        }
    }
    out.to_vec()
}

fn arbitrary_reply() -> impl proptest::strategy::Strategy<Value = Reply> {
    use proptest::prelude::*;
    let text = "[a-zA-Z0-9 \r\n:-]{0,12}";
    let scalar = prop_oneof![
        text.prop_map(Reply::Status),
        text.prop_map(Reply::Error),
        any::<i64>().prop_map(Reply::Integer),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(|b| Reply::Bulk(b.into())),
        Just(Reply::Null),
        Just(Reply::NullArray),
    ];
    let leaf = prop_oneof![
        4 => scalar.clone(),
        // Doubles whose shortest text is the same in `redis-protocol`'s `to_string` as in
        // Redis's `%g` layout (quarters of small integers, the infinities); the layout of the
        // rest is `double_texts_are_written_as_redis_writes_them`'s.
        1 => prop_oneof![
            (-4000i32..4000).prop_map(|n| Reply::Double(f64::from(n) / 4.0)),
            Just(Reply::Double(f64::INFINITY)),
            Just(Reply::Double(f64::NEG_INFINITY)),
        ],
    ];
    // Map keys and set elements are scalars other than doubles: `redis-protocol` cannot hash
    // an aggregate or a double (nor do we send one there).
    let key = scalar;
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Push),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Many),
            // At most one pair: `redis-protocol`'s RESP3 map is a hash map, which loses the
            // order of pairs (this encoder keeps it, as Redis does) and merges equal keys.
            proptest::collection::vec((key.clone(), inner.clone()), 0..2).prop_map(Reply::Map),
            // At most one element, for the same reason: its RESP3 set is a hash set.
            proptest::collection::vec(key.clone(), 0..2).prop_map(Reply::Set),
        ]
    })
}

/// A command as a client library sends it: an array of bulk strings.
fn resp_array(arguments: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", arguments.len()).into_bytes();
    for argument in arguments {
        out.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
        out.extend_from_slice(argument);
        out.extend_from_slice(b"\r\n");
    }
    out
}

proptest::proptest! {
    /// The hand-written encoder writes exactly what `redis-protocol` writes, in both
    /// protocols, for every reply shape (nested missing arrays and `Many` included).
    #[test]
    fn replies_encode_as_redis_protocol_encodes_them(reply in arbitrary_reply()) {
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            let mut out = BytesMut::new();
            encode(&reply, protocol, &mut out);
            proptest::prop_assert_eq!(&out[..], &reference_encoding(&reply, protocol)[..]);
        }
    }

    /// Commands decode to the arguments `redis-protocol`'s decoder finds, whole or split at
    /// any byte (the rest arrives with the next read).
    #[test]
    fn commands_decode_as_redis_protocol_decodes_them(
        commands in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16), 1..4),
            1..4,
        ),
        split in 0usize..256,
    ) {
        let bytes: Vec<u8> = commands.iter().flat_map(|c| resp_array(c)).collect();
        let mut reference = BytesMut::from(&bytes[..]);
        let mut expected = Vec::new();
        while let Some((redis_protocol::resp2::types::BytesFrame::Array(items), _, _)) =
            redis_protocol::resp2::decode::decode_bytes_mut(&mut reference).unwrap()
        {
            expected.push(
                items
                    .into_iter()
                    .map(|item| match item {
                        redis_protocol::resp2::types::BytesFrame::BulkString(b) => b.to_vec(),
                        other => panic!("not a bulk string: {other:?}"),
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let limits = Limits { bulk_bytes_max: 64, arguments_max: 8, request_bytes_max: 4096, inline_bytes_max: 64 };
        let split = split.min(bytes.len());
        let mut buffer = BytesMut::from(&bytes[..split]);
        let mut decoded = Vec::new();
        while let Some(arguments) = decode_request(&mut buffer, &limits).unwrap() {
            decoded.push(arguments.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
        }
        buffer.extend_from_slice(&bytes[split..]);
        while let Some(arguments) = decode_request(&mut buffer, &limits).unwrap() {
            decoded.push(arguments.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
        }
        proptest::prop_assert_eq!(&decoded, &expected);
        proptest::prop_assert_eq!(decoded, commands);
        proptest::prop_assert!(buffer.is_empty());
    }
}

#[test]
fn double_texts_are_written_as_redis_writes_them() {
    use super::reply::double_text;
    let cases = [
        (3.0, "3"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (1.1, "1.1"),
        (1e20, "1e+20"),
        (1e16, "10000000000000000"),
        (1e17, "1e+17"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-1.25e-7, "-1.25e-07"),
        (123456.789, "123456.789"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ];
    for (value, text) in cases {
        assert_eq!(double_text(value), text, "{value}");
        assert_eq!(text.parse::<f64>().unwrap(), value);
    }
}
