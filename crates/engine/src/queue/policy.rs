//! A queue's delivery policy: lease, retries, backoff, dead-lettering.

use serde::{Deserialize, Serialize};

/// How long to wait before redelivering after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backoff {
    /// The same delay after every failure.
    Fixed { delay_ms: u64 },
    /// `initial_ms × multiplier^(attempt−1)`, capped at `max_ms`.
    Exponential {
        initial_ms: u64,
        max_ms: u64,
        multiplier: f64,
    },
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::Exponential {
            initial_ms: 1_000,
            max_ms: 60_000,
            multiplier: 2.0,
        }
    }
}

impl Backoff {
    /// Delay after failed attempt number `attempt` (1-based). `jitter` in 0..=1 spreads the
    /// delay over `[delay × (1 − jitter), delay]`, deterministically from `salt`, so a burst of
    /// failures does not come back as a burst.
    pub fn delay_ms(&self, attempt: u32, jitter: f64, salt: u64) -> u64 {
        let base = match *self {
            Backoff::Fixed { delay_ms } => delay_ms,
            Backoff::Exponential {
                initial_ms,
                max_ms,
                multiplier,
            } => {
                let exponent = attempt.saturating_sub(1).min(64) as i32;
                let raw = initial_ms as f64 * multiplier.max(1.0).powi(exponent);
                raw.min(max_ms as f64) as u64
            }
        };
        let jitter = jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || base == 0 {
            return base;
        }
        // SplitMix64 of the salt: a cheap, well-spread, reproducible fraction in [0, 1).
        let mut z = salt.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let fraction = (z >> 11) as f64 / (1u64 << 53) as f64;
        (base as f64 * (1.0 - jitter * fraction)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_grows_and_caps() {
        let backoff = Backoff::Exponential {
            initial_ms: 100,
            max_ms: 1_000,
            multiplier: 2.0,
        };
        let delays: Vec<u64> = (1..=6).map(|a| backoff.delay_ms(a, 0.0, 0)).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(Backoff::Fixed { delay_ms: 7 }.delay_ms(9, 0.0, 0), 7);
    }

    #[test]
    fn jitter_stays_within_bounds_and_spreads() {
        let backoff = Backoff::Fixed { delay_ms: 1_000 };
        let delays: Vec<u64> = (0..100)
            .map(|salt| backoff.delay_ms(1, 0.5, salt))
            .collect();
        assert!(delays.iter().all(|d| (500..=1_000).contains(d)));
        let distinct: std::collections::BTreeSet<u64> = delays.into_iter().collect();
        assert!(distinct.len() > 50);
    }
}
