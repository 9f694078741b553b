//! Subject routing: which streams capture a subject, found through a subject index (a trie
//! over tokens with `*` and `>`) rather than a scan of every stream. Protocol-neutral: the
//! NATS and AMQP front doors will route live subscriptions and exchange bindings through the
//! same index.

mod index;

pub use index::SubjectIndex;
