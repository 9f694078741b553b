//! How much free room a connection's read buffer is given before each read.
//!
//! A front door turns everything one read brought into one batch: the publishes of a read
//! are appended together and share an fsync, their confirms go back in one write. A client
//! that pipelines (a publisher with hundreds of messages in flight) therefore gets bigger
//! batches, and far fewer fsyncs, when a read can take more of what is waiting in the socket:
//! with 16 KiB, a read holds fourteen 1 KiB messages. An idle or chatty connection, though,
//! should not hold a large buffer. So the room starts small, doubles (up to a ceiling) each
//! time a read fills all of it — more was waiting — and halves (down to the floor) each time
//! a read uses less than a quarter of it: a connection that goes quiet is back at the floor
//! after a few reads, while a pipeline whose reads vary keeps its room.

use bytes::BytesMut;

/// The room a connection's reads start with, and return to.
pub const READ_ROOM_MIN: usize = 16 * 1024;
/// The most room one read is given: the bound on what a pipelining client makes a
/// connection hold for reading, beyond a frame that is still arriving.
pub const READ_ROOM_MAX: usize = 256 * 1024;

/// The read room of one connection (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRoom {
    room: usize,
}

impl Default for ReadRoom {
    fn default() -> ReadRoom {
        ReadRoom::new()
    }
}

impl ReadRoom {
    pub const fn new() -> ReadRoom {
        ReadRoom {
            room: READ_ROOM_MIN,
        }
    }

    /// The free room to reserve before the next read.
    pub fn get(&self) -> usize {
        self.room
    }

    /// Learns from a read that brought `read` bytes into `spare` bytes of free room.
    pub fn after_read(&mut self, read: usize, spare: usize) {
        self.room = if read > 0 && read >= spare {
            (self.room * 2).min(READ_ROOM_MAX)
        } else if read < spare / 4 {
            (self.room / 2).max(READ_ROOM_MIN)
        } else {
            self.room
        };
    }

    /// Readies `input` for the next read: gives back a buffer a burst left too big (when it
    /// is empty), then reserves at least `wanted` bytes of free room, and at least the room.
    /// Returns the free room the read will have, for [`ReadRoom::after_read`].
    pub fn prepare(&self, input: &mut BytesMut, wanted: usize) -> usize {
        if input.is_empty() && self.shrinks(input.capacity()) {
            *input = BytesMut::with_capacity(self.room);
        }
        input.reserve(wanted.max(self.room));
        input.capacity() - input.len()
    }

    /// Whether a buffer that is empty now and has `capacity` bytes should be given back and
    /// replaced by a new one of [`ReadRoom::get`] bytes: it holds more than four times what
    /// the next read needs (after a burst that ended, or a large frame), so a connection that
    /// went quiet keeps no more than the floor's worth.
    pub fn shrinks(&self, capacity: usize) -> bool {
        capacity > 4 * self.room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_reads_grow_the_room_to_the_ceiling_and_short_ones_shrink_it_to_the_floor() {
        let mut room = ReadRoom::new();
        assert_eq!(room.get(), READ_ROOM_MIN);
        room.after_read(READ_ROOM_MIN, READ_ROOM_MIN);
        assert_eq!(room.get(), 2 * READ_ROOM_MIN);
        for _ in 0..20 {
            let spare = room.get();
            room.after_read(spare, spare);
        }
        assert_eq!(room.get(), READ_ROOM_MAX);
        // A read using half the room keeps it.
        room.after_read(READ_ROOM_MAX / 2, READ_ROOM_MAX);
        assert_eq!(room.get(), READ_ROOM_MAX);
        room.after_read(100, READ_ROOM_MAX);
        assert_eq!(room.get(), READ_ROOM_MAX / 2);
        for _ in 0..10 {
            room.after_read(100, room.get());
        }
        assert_eq!(room.get(), READ_ROOM_MIN);
    }

    #[test]
    fn prepare_reserves_the_room_and_gives_back_an_idle_buffer() {
        let mut room = ReadRoom::new();
        let mut input = BytesMut::new();
        assert!(room.prepare(&mut input, 0) >= READ_ROOM_MIN);
        // A frame still arriving gets all it needs at once.
        input.extend_from_slice(&[1; 10]);
        assert!(room.prepare(&mut input, 100_000) >= 100_000);
        // Busy: the room grows, and so does the buffer.
        for _ in 0..10 {
            let spare = room.get();
            room.after_read(spare, spare);
        }
        assert!(room.prepare(&mut input, 0) >= READ_ROOM_MAX);
        // Quiet and empty again: the big buffer is given back.
        for _ in 0..4 {
            room.after_read(10, READ_ROOM_MAX);
        }
        input.clear();
        let spare = room.prepare(&mut input, 0);
        assert!(
            spare >= READ_ROOM_MIN && input.capacity() < READ_ROOM_MAX,
            "{spare}"
        );
    }

    #[test]
    fn a_read_of_nothing_does_not_grow_the_room() {
        let mut room = ReadRoom::new();
        room.after_read(0, 0);
        assert_eq!(room.get(), READ_ROOM_MIN);
    }

    #[test]
    fn a_quiet_connection_gives_back_what_a_burst_grew() {
        let mut room = ReadRoom::new();
        assert!(!room.shrinks(4 * READ_ROOM_MIN));
        assert!(room.shrinks(READ_ROOM_MAX));
        for _ in 0..20 {
            let spare = room.get();
            room.after_read(spare, spare);
        }
        // Still busy: the buffer it grew is kept.
        assert!(!room.shrinks(READ_ROOM_MAX + 4096));
        for _ in 0..3 {
            room.after_read(10, READ_ROOM_MAX);
        }
        assert!(room.shrinks(READ_ROOM_MAX));
    }
}
