//! A bounds check of request bodies before the `kafka-protocol` crate decodes them.
//!
//! That crate reads an array's length off the wire and reserves room for that many elements
//! before decoding any of them, so a dozen bytes claiming two billion elements make the
//! allocator abort the whole broker (upstream pull requests #152 and #200 of
//! kafka-protocol-rs, open at the time of writing). Rather than trust it with untrusted
//! input, we first walk the body with a schema of the same message version: every array
//! length must fit in the bytes that remain (each element takes at least one byte), and the
//! request may hold at most [`REQUEST_ELEMENTS_MAX`] array elements in all, which bounds the
//! memory its decoded form can take. The walk allocates nothing and is linear in the body.
//!
//! The schemas (in `schemas.rs`) mirror Kafka's message definitions for the versions we
//! advertise; tests encode populated requests of every advertised version with
//! `kafka-protocol` and check that the walk accepts them and consumes exactly every byte.

mod schemas;

use kafka_protocol::messages::ApiKey;

/// Most array elements (across all arrays) one request may hold. Real requests hold a few
/// thousand at most (a Fetch over every partition of a large cluster).
pub const REQUEST_ELEMENTS_MAX: usize = 250_000;

/// What a field is on the wire. Whether strings, bytes and arrays use the compact (varint)
/// encoding depends on whether the message version is flexible.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// A fixed-width value: booleans and int8 (1), int16 (2), int32 (4), int64 (8), uuid (16).
    Fixed(usize),
    /// A (nullable) string.
    String,
    /// (Nullable) bytes, including record sets.
    Bytes,
    /// A (nullable) array of structs; in flexible versions each struct ends in tagged fields.
    Structs(&'static [Field]),
    /// A (nullable) array of fixed-width values.
    FixedArray(usize),
    /// A (nullable) array of strings.
    Strings,
}

/// A field present in versions `since..=until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    kind: Kind,
    since: i16,
    until: i16,
}

pub(crate) const fn all(kind: Kind) -> Field {
    Field {
        kind,
        since: 0,
        until: i16::MAX,
    }
}

pub(crate) const fn since(version: i16, kind: Kind) -> Field {
    Field {
        kind,
        since: version,
        until: i16::MAX,
    }
}

pub(crate) const fn until(version: i16, kind: Kind) -> Field {
    Field {
        kind,
        since: 0,
        until: version,
    }
}

pub(crate) const fn between(first: i16, last: i16, kind: Kind) -> Field {
    Field {
        kind,
        since: first,
        until: last,
    }
}

/// A request message: its fields and the first flexible version.
pub(crate) struct Schema {
    flexible_since: i16,
    fields: &'static [Field],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("the body ends inside a field at byte {0}")]
    Truncated(usize),
    #[error("invalid length {length} at byte {at}")]
    BadLength { length: i64, at: usize },
    #[error("an array claims {count} elements at byte {at} but only {remaining} bytes remain")]
    ArrayTooLong {
        count: usize,
        at: usize,
        remaining: usize,
    },
    #[error("the request holds more than {REQUEST_ELEMENTS_MAX} array elements")]
    TooManyElements,
    #[error("no schema for this API key")]
    NoSchema,
}

/// Checks that `body` (the bytes after the request header) is a well-formed `key` request of
/// `version` whose arrays are all plausible. Returns the number of bytes the message spans.
pub fn check(key: ApiKey, version: i16, body: &[u8]) -> Result<usize, ShapeError> {
    let schema = schemas::schema(key).ok_or(ShapeError::NoSchema)?;
    let mut walker = Walker {
        bytes: body,
        position: 0,
        elements: 0,
        version,
        flexible: version >= schema.flexible_since,
    };
    walker.fields(schema.fields)?;
    Ok(walker.position)
}

struct Walker<'a> {
    bytes: &'a [u8],
    position: usize,
    elements: usize,
    version: i16,
    flexible: bool,
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn skip(&mut self, count: usize) -> Result<(), ShapeError> {
        if count > self.remaining() {
            return Err(ShapeError::Truncated(self.position));
        }
        self.position += count;
        Ok(())
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], ShapeError> {
        let slice = self
            .bytes
            .get(self.position..self.position + N)
            .ok_or(ShapeError::Truncated(self.position))?;
        self.position += N;
        Ok(slice.try_into().expect("N bytes"))
    }

    /// An unsigned varint as `kafka-protocol` reads it: at most five bytes.
    fn varint(&mut self) -> Result<u32, ShapeError> {
        let mut value = 0u32;
        for index in 0..5 {
            let [byte] = self.take::<1>()?;
            value |= ((byte & 0x7f) as u32) << (index * 7);
            if byte < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// The length of a string, bytes or array: `None` for null.
    fn length(&mut self, classic_width: usize) -> Result<Option<usize>, ShapeError> {
        let at = self.position;
        let length: i64 = if self.flexible {
            self.varint()? as i64 - 1
        } else if classic_width == 2 {
            i16::from_be_bytes(self.take()?) as i64
        } else {
            i32::from_be_bytes(self.take()?) as i64
        };
        match length {
            -1 => Ok(None),
            n if n < 0 => Err(ShapeError::BadLength { length: n, at }),
            n => Ok(Some(n as usize)),
        }
    }

    /// Reads an array length and checks it against the bytes left and the request's budget.
    fn array_length(&mut self) -> Result<usize, ShapeError> {
        let at = self.position;
        let count = self.length(4)?.unwrap_or(0);
        let remaining = self.remaining();
        if count > remaining {
            return Err(ShapeError::ArrayTooLong {
                count,
                at,
                remaining,
            });
        }
        self.elements += count;
        if self.elements > REQUEST_ELEMENTS_MAX {
            return Err(ShapeError::TooManyElements);
        }
        Ok(count)
    }

    fn fields(&mut self, fields: &'static [Field]) -> Result<(), ShapeError> {
        for field in fields {
            if (field.since..=field.until).contains(&self.version) {
                self.field(field.kind)?;
            }
        }
        if self.flexible {
            self.tagged_fields()?;
        }
        Ok(())
    }

    fn field(&mut self, kind: Kind) -> Result<(), ShapeError> {
        match kind {
            Kind::Fixed(width) => self.skip(width),
            Kind::String => {
                let length = self.length(2)?.unwrap_or(0);
                self.skip(length)
            }
            Kind::Bytes => {
                let length = self.length(4)?.unwrap_or(0);
                self.skip(length)
            }
            Kind::Structs(fields) => {
                for _ in 0..self.array_length()? {
                    self.fields(fields)?;
                }
                Ok(())
            }
            Kind::FixedArray(width) => {
                let count = self.array_length()?;
                self.skip(count.saturating_mul(width))
            }
            Kind::Strings => {
                for _ in 0..self.array_length()? {
                    self.field(Kind::String)?;
                }
                Ok(())
            }
        }
    }

    /// Tagged fields are skipped by their declared sizes. The decoder reads the ones it knows
    /// by their own encoding instead; in the versions we accept those are all strings or
    /// fixed-width values (never arrays), so a lying size cannot reach an allocation.
    fn tagged_fields(&mut self) -> Result<(), ShapeError> {
        let at = self.position;
        let count = self.varint()? as usize;
        // Each tagged field takes at least two bytes (tag and size).
        if count > self.remaining() / 2 {
            return Err(ShapeError::ArrayTooLong {
                count,
                at,
                remaining: self.remaining(),
            });
        }
        for _ in 0..count {
            self.varint()?;
            let size = self.varint()? as usize;
            self.skip(size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
