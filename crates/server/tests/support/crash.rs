//! What the kill -9 tests share: their cycle count and seeded kill timing from the
//! environment, a Redis connection to the broker under test, and a pipeline sent to it.

use std::ops::Range;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

/// A multiplexed connection to the broker's Redis listener, which waits up to 60 s for a
/// reply: the client's default (500 ms) is shorter than reading back what a fast run wrote
/// (over 10,000 entries or list items in a debug build) on a machine busy with other tests,
/// and a timeout there failed the check, not the broker. While the broker is killed the
/// wait does not matter: its sockets close, and the pending requests fail at once.
pub async fn redis(broker: &Broker) -> redis::aio::MultiplexedConnection {
    let address = broker.redis_address.expect("the Redis listener");
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(REPLY_WAIT_MAX));
    redis::Client::open(format!("redis://{address}/"))
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect")
}

/// How long a kill -9 test's Redis client waits for a reply.
const REPLY_WAIT_MAX: Duration = Duration::from_secs(60);

/// Lets `tasks` run against `broker` for a random time in `after_ms`, then kills the broker
/// with -9 and stops the tasks.
pub async fn kill_9_after(
    random: &mut StdRng,
    after_ms: Range<u64>,
    broker: &mut Broker,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) {
    let after = random.random_range(after_ms);
    tokio::time::sleep(Duration::from_millis(after)).await;
    broker.kill_9();
    for task in tasks {
        task.abort();
    }
}

/// Sends `pipe` and waits at most 5 s for its replies; `None` when the broker went away
/// (killed) or the replies did not come.
pub async fn send<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    pipe: &redis::Pipeline,
) -> Option<T> {
    let outcome = tokio::time::timeout(Duration::from_secs(5), pipe.query_async::<T>(con)).await;
    outcome.ok()?.ok()
}
