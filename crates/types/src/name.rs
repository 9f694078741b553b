//! Naming rules for streams and consumer groups.
//!
//! A stream name is any text without control characters, at most 249 bytes, not `.` or
//! `..`. Why so wide: a Redis stream key is the stream of the same name, and Redis keys are
//! free text — `orders:eu`, `{tenant}:events` (a cluster hash tag, how BullMQ and most
//! cluster-ready applications spell keys), `user/42/events`. Refusing `{` refused those
//! users' first XADD. Control characters stay out because the engine's state keys join a
//! stream name to a group or consumer name with them (`\u{1f}`), and they have no business
//! in logs.
//!
//! A stream's folder under `streams/` is its name with every byte other than ASCII letters,
//! digits, `.`, `_`, `-` and `:` written `%XX` ([`stream_folder_name`]), so a name made of
//! those (every name before the rule widened) is its own folder. The folder name must fit a
//! file system's 255 bytes, which bounds a name full of escaped bytes below 249.
//!
//! Kafka keeps its own rule when a client creates a topic ([`validate_kafka_topic_name`]:
//! letters, digits, `.`, `_`, `-`); a stream named otherwise is still listed and readable
//! there by clients that do not check names themselves.

use crate::limits::{GROUP_NAME_BYTES_MAX, STREAM_NAME_BYTES_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

/// Longest folder name a file system takes (ext4, xfs, btrfs: 255 bytes).
const FOLDER_NAME_BYTES_MAX: usize = 255;

/// Bytes of a stream name kept as they are in its folder's name.
fn plain_in_folder(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b':')
}

/// The name of stream `name`'s folder under `streams/`: the name, with each byte other than
/// ASCII letters, digits, `.`, `_`, `-` and `:` written `%XX` (upper-case hex). One to one:
/// `%` is itself escaped, so [`stream_name_from_folder`] gives the name back.
pub fn stream_folder_name(name: &str) -> String {
    let mut folder = String::with_capacity(name.len());
    for &byte in name.as_bytes() {
        if plain_in_folder(byte) {
            folder.push(byte as char);
        } else {
            folder.push('%');
            folder.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            folder.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 15)]));
        }
    }
    folder
}

/// The stream name of a folder under `streams/`; `None` for a folder no stream name makes
/// (so no stream's folder is ever taken for another's): the name read back must write
/// exactly this folder again, which refuses stray bytes, lower-case or needless escapes.
pub fn stream_name_from_folder(folder: &str) -> Option<String> {
    let bytes = folder.as_bytes();
    let mut name = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            name.push(u8::from_str_radix(folder.get(index + 1..index + 3)?, 16).ok()?);
            index += 3;
        } else {
            name.push(bytes[index]);
            index += 1;
        }
    }
    let name = String::from_utf8(name).ok()?;
    (stream_folder_name(&name) == folder).then_some(name)
}

pub fn validate_stream_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError("stream name is empty".into()));
    }
    if name.len() > STREAM_NAME_BYTES_MAX {
        return Err(NameError(format!(
            "stream name is {} bytes; the limit is {STREAM_NAME_BYTES_MAX}",
            name.len()
        )));
    }
    if name == "." || name == ".." {
        return Err(NameError(format!("stream name may not be {name:?}")));
    }
    if let Some(bad) = name.chars().find(|c| c.is_control()) {
        return Err(NameError(format!(
            "stream name {name:?} contains the control character {bad:?}"
        )));
    }
    let folder = name
        .bytes()
        .map(|b| if plain_in_folder(b) { 1 } else { 3 })
        .sum::<usize>();
    if folder > FOLDER_NAME_BYTES_MAX {
        return Err(NameError(format!(
            "stream name {name:?} takes {folder} bytes as a folder name; the limit is \
             {FOLDER_NAME_BYTES_MAX} (a byte other than ASCII letters, digits, '.', '_', '-' \
             and ':' takes three)"
        )));
    }
    Ok(())
}

/// Kafka's topic rule, for topics a Kafka client creates: ASCII letters, digits, `.`, `_`
/// and `-`, at most 249 bytes, not `.` or `..`.
pub fn validate_kafka_topic_name(name: &str) -> Result<(), NameError> {
    validate_stream_name(name)?;
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError(format!(
            "topic name {name:?} contains {bad:?}; Kafka allows ASCII letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Group names are free text (Kafka allows any string) but bounded and free of control
/// characters, because they appear in logs and metrics.
pub fn validate_group_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError("group name is empty".into()));
    }
    if name.len() > GROUP_NAME_BYTES_MAX {
        return Err(NameError(format!(
            "group name is {} bytes; the limit is {GROUP_NAME_BYTES_MAX}",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError("group name contains a control character".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_free_text_without_control_characters() {
        assert!(validate_stream_name("orders").is_ok());
        assert!(validate_stream_name("order.created_v1-x").is_ok());
        assert!(validate_stream_name("events:user:42").is_ok());
        assert!(validate_stream_name(":").is_ok());
        assert!(validate_stream_name("a\\b").is_ok());
        assert!(validate_stream_name("{bull}:jobs:events").is_ok());
        assert!(validate_stream_name("é").is_ok());
        assert!(validate_stream_name("a/b").is_ok());
        assert!(validate_stream_name("a b").is_ok());
        assert!(validate_stream_name("%").is_ok());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name(".").is_err());
        assert!(validate_stream_name("..").is_err());
        assert!(validate_stream_name("a\nb").is_err());
        assert!(validate_stream_name("a\u{1f}b").is_err());
        assert!(validate_stream_name("a\u{7f}b").is_err());
        assert!(validate_stream_name(&"x".repeat(249)).is_ok());
        assert!(validate_stream_name(&"x".repeat(250)).is_err());
        // 85 escaped bytes are 255 bytes of folder name; 86 are too many.
        assert!(validate_stream_name(&"{".repeat(85)).is_ok());
        let refused = validate_stream_name(&"{".repeat(86)).unwrap_err();
        assert!(refused.0.contains("as a folder name"), "{refused}");
    }

    #[test]
    fn folder_names_keep_plain_names_and_round_trip_the_others() {
        assert_eq!(stream_folder_name("orders.v1_x-y:z"), "orders.v1_x-y:z");
        assert_eq!(stream_folder_name("s1{t}"), "s1%7Bt%7D");
        assert_eq!(stream_folder_name("a/b c%"), "a%2Fb%20c%25");
        assert_eq!(stream_folder_name("é"), "%C3%A9");
        for name in ["orders", "s1{t}", "a/b c%", "é/ü", "..x", "%41", "a\\b"] {
            let folder = stream_folder_name(name);
            assert!(!folder.contains('/') && folder != "." && folder != "..");
            assert_eq!(stream_name_from_folder(&folder).as_deref(), Some(name));
        }
        // Folders no name makes: stray bytes, lower-case or short escapes, an escaped plain
        // byte, a name that is not UTF-8.
        for folder in ["a b", "%7b", "%7", "%41", "%C3", "x%zz"] {
            assert_eq!(stream_name_from_folder(folder), None, "{folder}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_name_round_trips_through_its_folder(name in "\\PC{1,40}") {
            let folder = stream_folder_name(&name);
            proptest::prop_assert!(folder.bytes().all(|b| plain_in_folder(b) || b == b'%'));
            proptest::prop_assert_eq!(stream_name_from_folder(&folder), Some(name));
        }
    }

    #[test]
    fn kafka_topic_names_keep_kafkas_rule() {
        assert!(validate_kafka_topic_name("order.created_v1-x").is_ok());
        let refused = validate_kafka_topic_name("orders:eu").unwrap_err();
        assert!(refused.0.contains("contains ':'"), "{refused}");
        assert!(validate_kafka_topic_name("a/b").is_err());
        assert!(validate_kafka_topic_name("{t}").is_err());
        assert!(validate_kafka_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn group_names_reject_control_characters() {
        assert!(validate_group_name("my group").is_ok());
        assert!(validate_group_name("bad\ngroup").is_err());
        assert!(validate_group_name("").is_err());
    }
}
