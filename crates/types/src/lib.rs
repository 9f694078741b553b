//! The vocabulary every Omnibus layer shares: records, subjects and subject patterns, stream
//! and group names, limits and stable error codes.
//!
//! This crate is the bottom layer. It does no I/O, depends on no other Omnibus crate and knows
//! nothing about wire protocols; everything above it (storage, engine, front doors) may use it.
#![forbid(unsafe_code)]

pub mod calendar;
pub mod error_code;
pub mod limits;
pub mod name;
pub mod read_room;
pub mod record;
pub mod subject;

pub use error_code::ErrorCode;
pub use name::{
    stream_folder_name, stream_name_from_folder, validate_group_name, validate_kafka_topic_name,
    validate_stream_name, NameError,
};
pub use read_room::ReadRoom;
pub use record::{Header, Record};
pub use subject::{
    pattern_is_subset, pattern_matches, patterns_overlap, validate_pattern, validate_subject,
    SubjectError,
};
