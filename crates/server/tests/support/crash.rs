//! What the kill -9 tests share: their cycle count and seeded kill timing from the
//! environment, and a Redis connection to the broker under test.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::Broker;

/// The number of cycles `var` asks for, or `default`.
pub fn cycles(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The random source of `test`'s kill timing: `OMNIBUS_CRASH_SEED` replays a run, and the
/// seed is printed so that a failed run can be replayed.
pub fn seeded(test: &str) -> StdRng {
    let seed = std::env::var("OMNIBUS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("{test} seed {seed}");
    StdRng::seed_from_u64(seed)
}

/// A multiplexed connection to the broker's Redis listener.
pub async fn redis(broker: &Broker) -> redis::aio::MultiplexedConnection {
    let address = broker.redis_address.expect("the Redis listener");
    redis::Client::open(format!("redis://{address}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}
