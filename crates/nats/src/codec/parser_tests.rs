use proptest::prelude::*;

use super::*;

const MAX: usize = 1024;

fn parse_all(bytes: &[u8]) -> Result<Vec<ClientOp>, ParseError> {
    let mut buffer = BytesMut::from(bytes);
    let mut ops = Vec::new();
    while let Some(op) = parse(&mut buffer, MAX)? {
        ops.push(op);
    }
    assert!(buffer.is_empty(), "left over: {buffer:?}");
    Ok(ops)
}

fn publish(subject: &str, reply: Option<&str>, headers: Option<&str>, payload: &str) -> ClientOp {
    ClientOp::Publish(PublishOp {
        subject: subject.into(),
        reply: reply.map(Into::into),
        headers: headers.map(|h| Bytes::copy_from_slice(h.as_bytes())),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    })
}

#[test]
fn every_operation_parses_in_any_case() {
    let ops = parse_all(
        b"CONNECT {\"verbose\":false}\r\nping\r\nPoNg\r\nPUB a.b 5\r\nhello\r\n\
          pub a.b _INBOX.x 0\r\n\r\nSUB a.* 1\r\nsub a.> workers 2\r\nUNSUB 1\r\nunsub 2 10\r\n\
          HPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n+OK\r\n-ERR 'x'\r\nINFO {}\r\n",
    )
    .unwrap();
    assert_eq!(
        ops,
        vec![
            ClientOp::Connect(Bytes::from_static(b"{\"verbose\":false}")),
            ClientOp::Ping,
            ClientOp::Pong,
            publish("a.b", None, None, "hello"),
            publish("a.b", Some("_INBOX.x"), None, ""),
            ClientOp::Subscribe {
                subject: "a.*".into(),
                queue_group: None,
                sid: "1".into()
            },
            ClientOp::Subscribe {
                subject: "a.>".into(),
                queue_group: Some("workers".into()),
                sid: "2".into()
            },
            ClientOp::Unsubscribe {
                sid: "1".into(),
                max: None
            },
            ClientOp::Unsubscribe {
                sid: "2".into(),
                max: Some(10)
            },
            publish("h", None, Some("NATS/1.0\r\n\r\n"), "hi"),
            ClientOp::Ignored,
            ClientOp::Ignored,
            ClientOp::Ignored,
        ]
    );
}

/// nats-py writes `PUB subj  7` (an empty reply between two spaces) and `UNSUB 2 `.
#[test]
fn runs_of_blanks_and_trailing_blanks_are_tolerated() {
    let ops = parse_all(b"PUB subj  7\r\npayload\r\nUNSUB 2 \r\nSUB\ta\t\t3\r\nPING\n").unwrap();
    assert_eq!(
        ops,
        vec![
            publish("subj", None, None, "payload"),
            ClientOp::Unsubscribe {
                sid: "2".into(),
                max: None
            },
            ClientOp::Subscribe {
                subject: "a".into(),
                queue_group: None,
                sid: "3".into()
            },
            ClientOp::Ping,
        ]
    );
}

#[test]
fn an_incomplete_operation_leaves_the_buffer_untouched() {
    let whole = b"PUB a 5\r\nhello\r\n";
    for cut in 0..whole.len() {
        let mut buffer = BytesMut::from(&whole[..cut]);
        assert_eq!(parse(&mut buffer, MAX), Ok(None), "cut at {cut}");
        assert_eq!(&buffer[..], &whole[..cut]);
    }
    assert_eq!(bytes_wanted(b"PUB a 5\r\nhe", MAX), Some(whole.len()));
}

#[test]
fn bad_input_is_the_protocol_error() {
    let error = |bytes: &[u8]| parse(&mut BytesMut::from(bytes), MAX).unwrap_err();
    assert_eq!(error(b"FOO bar\r\n"), ParseError::UnknownOperation);
    assert_eq!(
        error(b"PUB a\r\n"),
        ParseError::Arguments { operation: "PUB" }
    );
    assert_eq!(
        error(b"PUB a -1\r\n"),
        ParseError::Arguments { operation: "PUB" }
    );
    assert_eq!(
        error(b"PUB a b c 1\r\n"),
        ParseError::Arguments { operation: "PUB" }
    );
    assert_eq!(
        error(b"HPUB a 5 4\r\n"),
        ParseError::Arguments { operation: "HPUB" }
    );
    assert_eq!(
        error(b"SUB a\r\n"),
        ParseError::Arguments { operation: "SUB" }
    );
    assert_eq!(
        error(b"UNSUB\r\n"),
        ParseError::Arguments { operation: "UNSUB" }
    );
    assert_eq!(
        error(b"UNSUB 1 x\r\n"),
        ParseError::Arguments { operation: "UNSUB" }
    );
    assert_eq!(error(b"PUB a 3\r\nabcXY"), ParseError::PayloadNotTerminated);
    let too_large = error(b"PUB a 1025\r\n");
    assert_eq!(too_large.client_text(), "Maximum Payload Violation");
    assert_eq!(
        error(b"PUB a 99999999999999999999999\r\n"),
        ParseError::Arguments { operation: "PUB" }
    );
    let long_line = vec![b'A'; CONTROL_LINE_BYTES_MAX];
    assert_eq!(error(&long_line), ParseError::ControlLineTooLong);
}

proptest! {
    /// Whatever the bytes and however they are split, the parser never panics, and a stream
    /// of valid operations parses the same in any two chunks as in one.
    #[test]
    fn split_chunks_parse_as_the_whole(
        subjects in proptest::collection::vec("[a-z]{1,5}(\\.[a-z*]{1,3}){0,2}", 1..8),
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
        split in any::<prop::sample::Index>(),
    ) {
        let mut wire = Vec::new();
        for (index, (subject, payload)) in subjects.iter().zip(&payloads).enumerate() {
            match index % 3 {
                0 => wire.extend_from_slice(format!("PUB {subject} {}\r\n", payload.len()).as_bytes()),
                1 => wire.extend_from_slice(format!("pub {subject}  r.{index}  {}\r\n", payload.len()).as_bytes()),
                _ => {
                    let block = "NATS/1.0\r\nA: b\r\n\r\n";
                    wire.extend_from_slice(
                        format!("HPUB {subject} {} {}\r\n{block}", block.len(), block.len() + payload.len()).as_bytes(),
                    );
                }
            }
            wire.extend_from_slice(payload);
            wire.extend_from_slice(b"\r\nPING\r\n");
        }
        let expected = parse_all(&wire).unwrap();
        let cut = split.index(wire.len() + 1);
        let mut buffer = BytesMut::new();
        let mut found = Vec::new();
        for chunk in [&wire[..cut], &wire[cut..]] {
            buffer.extend_from_slice(chunk);
            while let Some(op) = parse(&mut buffer, MAX).unwrap() {
                found.push(op);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut buffer = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = parse(&mut buffer, MAX) {}
    }
}
