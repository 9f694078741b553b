//! Reading command arguments as Redis does, with its error words.

use bytes::Bytes;

use crate::codec::Reply;

pub(crate) const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub(crate) const SYNTAX_ERROR: &str = "ERR syntax error";

pub(crate) fn lowercase(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_ascii_lowercase()
}

/// At most `max` characters of `bytes`, line breaks as spaces (so an error line cannot be
/// split by what a client sent).
pub(crate) fn printable(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(max)
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// A signed 64-bit integer in Redis's strict form: exactly the text the number prints as (no
/// `+`, spaces, leading zeros or `-0`).
pub(crate) fn integer(bytes: &[u8]) -> Result<i64, Reply> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| {
            let number = text.parse::<i64>().ok()?;
            (itoa::Buffer::new().format(number) == text).then_some(number)
        })
        .ok_or_else(|| Reply::error(NOT_AN_INTEGER))
}

pub(crate) fn is(argument: &Bytes, word: &str) -> bool {
    argument.eq_ignore_ascii_case(word.as_bytes())
}
