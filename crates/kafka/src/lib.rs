//! The Kafka front door (being built).
