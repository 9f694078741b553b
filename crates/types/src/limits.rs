//! Hard limits every layer checks before it allocates. Config may lower some of them; nothing
//! may raise them above these ceilings.

/// Longest subject or subject pattern, in bytes.
pub const SUBJECT_BYTES_MAX: usize = 1024;
/// Most tokens in a subject (`a.b.c` has three).
pub const SUBJECT_TOKENS_MAX: usize = 64;
/// Longest stream name. Kafka topics allow 249 characters; we match it so every topic fits.
pub const STREAM_NAME_BYTES_MAX: usize = 249;
/// Longest consumer group name.
pub const GROUP_NAME_BYTES_MAX: usize = 255;
/// Most subject patterns one stream may capture.
pub const STREAM_SUBJECTS_MAX: usize = 256;
/// Most partitions in one stream.
pub const PARTITIONS_MAX: u32 = 4096;
/// Default and ceiling for one record's value + key + headers.
pub const MESSAGE_BYTES_DEFAULT: usize = 1024 * 1024;
pub const MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Ceiling for one stored record batch (what one append writes).
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most headers on one record.
pub const HEADERS_MAX: usize = 256;
/// Most records in one publish call.
pub const PUBLISH_RECORDS_MAX: usize = 100_000;
/// Longest a fetch may wait for data.
pub const FETCH_WAIT_MS_MAX: u64 = 60_000;

const _: () = assert!(BATCH_BYTES_MAX >= MESSAGE_BYTES_MAX);
const _: () = assert!(MESSAGE_BYTES_MAX >= MESSAGE_BYTES_DEFAULT);
