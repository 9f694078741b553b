//! Deserializers for counted JSON inputs that keep at most their limit while parsing: the
//! excess is skipped without allocating and only counted, so the caller can refuse the request
//! with `limit_exceeded` and an exact count (the body limit bounds the parse itself).

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use omnibus_types::limits::HEADERS_MAX;
use omnibus_types::Header;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::ApiError;

/// A JSON array of which at most `MAX` elements are kept; `total` counts all of them.
#[derive(Debug)]
pub struct Bounded<T, const MAX: usize> {
    pub items: Vec<T>,
    pub total: usize,
}

impl<T, const MAX: usize> Bounded<T, MAX> {
    /// The items, or `limit_exceeded` naming `what` when the array was longer than `MAX`.
    pub fn into_items(self, what: &str) -> Result<Vec<T>, ApiError> {
        if self.total > MAX {
            return Err(ApiError::limit_exceeded(format!(
                "{} {what} in one request; the limit is {MAX}",
                self.total
            )));
        }
        Ok(self.items)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Bounded<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const MAX: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVisitor<T, MAX> {
            type Value = Bounded<T, MAX>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let capacity = seq.size_hint().unwrap_or(0).min(MAX).min(1024);
                let mut items = Vec::with_capacity(capacity);
                while items.len() < MAX {
                    match seq.next_element()? {
                        Some(item) => items.push(item),
                        None => {
                            let total = items.len();
                            return Ok(Bounded { items, total });
                        }
                    }
                }
                let mut total = items.len();
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(Bounded { items, total })
            }
        }

        deserializer.deserialize_seq(BoundedVisitor(PhantomData))
    }
}

/// A record's `headers` object, kept in the order given, at most [`HEADERS_MAX`] of them.
#[derive(Debug, Default)]
pub struct HeadersInput {
    pub headers: Vec<Header>,
    pub total: usize,
}

impl<'de> Deserialize<'de> for HeadersInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;

        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = HeadersInput;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object of header name to string value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut input = HeadersInput::default();
                while input.headers.len() < HEADERS_MAX {
                    match map.next_entry::<String, String>()? {
                        Some((name, value)) => input.headers.push(Header {
                            name,
                            value: Bytes::from(value),
                        }),
                        None => break,
                    }
                }
                input.total = input.headers.len();
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    input.total += 1;
                }
                Ok(input)
            }
        }

        deserializer.deserialize_map(HeadersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_within_the_limit_is_kept_whole() {
        let parsed: Bounded<u32, 3> = serde_json::from_str("[1,2,3]").unwrap();
        assert_eq!(parsed.total, 3);
        assert_eq!(parsed.into_items("numbers").unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn an_array_over_the_limit_keeps_only_the_limit_and_counts_the_rest() {
        let parsed: Bounded<u32, 2> = serde_json::from_str(r#"[1,2,3,{"x":[4]},"five"]"#).unwrap();
        assert_eq!(parsed.items, vec![1, 2]);
        assert_eq!(parsed.total, 5);
        let error = parsed.into_items("numbers").unwrap_err();
        assert_eq!(error.code(), "limit_exceeded");
        assert_eq!(
            error.to_string(),
            "5 numbers in one request; the limit is 2"
        );
    }

    #[test]
    fn elements_before_the_limit_must_still_have_the_right_type() {
        assert!(serde_json::from_str::<Bounded<u32, 2>>(r#"["one"]"#).is_err());
        assert!(serde_json::from_str::<Bounded<u32, 2>>("{}").is_err());
    }

    #[test]
    fn headers_keep_their_order_and_count_the_excess() {
        let parsed: HeadersInput = serde_json::from_str(r#"{"z":"1","a":"2"}"#).unwrap();
        let names: Vec<&str> = parsed.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, vec!["z", "a"]);
        assert_eq!(parsed.total, 2);
    }
}
