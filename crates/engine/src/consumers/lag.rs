//! How far an acked consumer is behind its stream, from memory: read by `/metrics`
//! (`omnibus_consumer_lag_*`) and by the lag alarms (`alerts/observe.rs`), so both say the
//! same thing.

use super::Consumer;

/// An acked consumer's lag at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ConsumerLag {
    /// Records not acknowledged yet: not yet delivered (for a filtered consumer, records of
    /// other subjects not yet passed over count too) plus delivered and unacknowledged.
    pub records: u64,
    /// Deliveries waiting for an acknowledgement.
    pub ack_pending: u64,
    /// Age of the oldest record not acknowledged, from the partition's sparse time index (a
    /// lower bound, to within one index interval); 0 without lag.
    pub seconds: f64,
}

impl Consumer {
    /// The consumer's lag at `now_ms`, read under its lock.
    pub(crate) fn lag(&self, now_ms: i64) -> ConsumerLag {
        let high_watermark = self.log.high_watermark();
        let (undelivered, ack_pending, oldest) = {
            let state = self.lock();
            let counts = state.core.counts();
            let unregistered = high_watermark.saturating_sub(state.core.end());
            let undelivered = counts.ready + counts.delayed + unregistered;
            let floor = state.core.floor();
            // An owned-pending consumer (a Redis group) settles a delivery in its state
            // machine as it hands it out and keeps it pending in its own list until
            // acknowledged.
            match state.owned.as_ref().map(|owned| owned.pending_summary()) {
                Some((pending, first)) => (
                    undelivered,
                    pending,
                    first.map_or(floor, |first| first.min(floor)),
                ),
                None => (undelivered, counts.leased, floor),
            }
        };
        let records = undelivered + ack_pending;
        let oldest = oldest.max(self.log.log_start_offset());
        let age_ms = match self.log.timestamp_at_most_after(oldest) {
            Some(timestamp) if records > 0 && oldest < high_watermark => {
                now_ms.saturating_sub(timestamp).max(0)
            }
            _ => 0,
        };
        ConsumerLag {
            records,
            ack_pending,
            seconds: age_ms as f64 / 1000.0,
        }
    }
}
