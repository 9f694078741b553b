//! Queues: a stream with work-queue retention and one shared acked consumer, adding
//! priorities, delays, leases, retries with backoff and dead-lettering. (In progress: the
//! state machine and its durable layout are here; the engine API and front doors follow.)

pub mod core;
pub mod keys;
pub mod policy;
pub mod ranges;
