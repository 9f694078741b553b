//! RENAME, RENAMENX and COPY: a key's whole value (any kind, with its deadline) moved or
//! copied to another name, replacing what was there. Each is one change, so the source's
//! delete and the destination's rows reach the disk in one commit. A list or sorted set that
//! lands where clients are blocked (BLPOP, BZPOPMIN) serves them, as in Redis.

use bytes::Bytes;

use super::entry::Entry;
use super::{now_ms, stored, Durable, Keyspace};
use crate::error::Result;

/// What RENAME / RENAMENX did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renamed {
    /// The source does not exist (or expired).
    Missing,
    /// RENAMENX only: the destination exists, nothing changed.
    DestinationExists,
    /// Moved (also when source and destination are the same key, which changes nothing).
    Done,
}

/// What COPY did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// The source does not exist (or expired).
    Missing,
    /// The destination exists and REPLACE was not given.
    DestinationExists,
    Done,
}

impl Keyspace {
    /// Moves `source`'s value and deadline to `destination`, replacing whatever it held
    /// (`only_if_absent`: unless it exists).
    pub fn rename(
        &self,
        source: &Bytes,
        destination: &Bytes,
        only_if_absent: bool,
    ) -> Result<Durable<Renamed>> {
        let mut inner = self.lock();
        let now = now_ms();
        if self.live(&mut inner, source, now).is_none() {
            return Ok(Durable::ready(Renamed::Missing));
        }
        let exists = self.live(&mut inner, destination, now).is_some();
        if source == destination {
            // Redis: renaming a key to itself changes nothing; RENAMENX answers 0.
            return Ok(Durable::ready(if only_if_absent {
                Renamed::DestinationExists
            } else {
                Renamed::Done
            }));
        }
        if exists && only_if_absent {
            return Ok(Durable::ready(Renamed::DestinationExists));
        }
        let entry = inner.remove(source).expect("the entry just read");
        let mut writes = stored::delete_entry(source, &entry);
        let old = inner.remove(destination);
        writes.extend(stored::replace_entry(destination, old.as_ref(), &entry));
        inner.insert(destination.clone(), entry);
        let durable = self.durable(Renamed::Done, writes);
        self.serve_waiting(&mut inner, destination);
        Ok(durable)
    }

    /// Copies `source`'s value and deadline to `destination` (`replace`: over whatever it
    /// holds). The copy is independent of the source from then on.
    pub fn copy(
        &self,
        source: &Bytes,
        destination: &Bytes,
        replace: bool,
    ) -> Result<Durable<Copied>> {
        let mut inner = self.lock();
        let now = now_ms();
        let Some(entry) = self.live(&mut inner, source, now) else {
            return Ok(Durable::ready(Copied::Missing));
        };
        let copy = Entry {
            value: entry.value.clone(),
            deadline: entry.deadline,
            version: 0,
        };
        let old_size = self.live(&mut inner, destination, now).map(Entry::size);
        if old_size.is_some() && !replace {
            return Ok(Durable::ready(Copied::DestinationExists));
        }
        inner.check_room(destination, old_size, copy.size())?;
        let old = inner.remove(destination);
        let writes = stored::replace_entry(destination, old.as_ref(), &copy);
        inner.insert(destination.clone(), copy);
        let durable = self.durable(Copied::Done, writes);
        self.serve_waiting(&mut inner, destination);
        Ok(durable)
    }

    /// Deletes each of `keys` whose version (what WATCH compares) is still the one given —
    /// what a door moved elsewhere (MIGRATE), unless it was written since; returns how many.
    pub fn delete_unchanged(&self, keys: &[(Bytes, u64)]) -> Result<Durable<usize>> {
        let mut inner = self.lock();
        let now = now_ms();
        let mut writes = Vec::new();
        let mut count = 0;
        for (key, version) in keys {
            if self.live(&mut inner, key, now).map(|entry| entry.version) == Some(*version) {
                let old = inner.remove(key).expect("the entry just read");
                writes.extend(stored::delete_entry(key, &old));
                count += 1;
            }
        }
        Ok(self.durable(count, writes))
    }
}
