//! RENAME of a stream key while another client appends to it, through the `redis` crate: a
//! stream is copied to its new name and then deleted only if nothing was appended meanwhile
//! (`commands/stream_moves.rs`), so every XADD acknowledged during the move is found
//! afterwards — in the renamed stream, in the source (when the move gave up), or in a new
//! stream under the old name (an XADD after the move made it, as in Redis).

#[allow(dead_code)]
mod support;

use std::collections::HashSet;

use redis::{cmd, RedisResult};
use support::Broker;

async fn ids(con: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    let entries: Vec<(String, Vec<(String, String)>)> = cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(con)
        .await
        .unwrap();
    entries.into_iter().map(|(id, _)| id).collect()
}

#[tokio::test]
async fn no_xadd_acknowledged_during_a_rename_is_lost() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    // Big enough that its copy takes a while.
    for chunk in 0..10u32 {
        let mut pipe = redis::pipe();
        for n in 0..1_000u32 {
            let id = format!("{}-1", 1 + chunk * 1_000 + n);
            pipe.cmd("XADD")
                .arg("source")
                .arg(id)
                .arg("n")
                .arg(n)
                .ignore();
        }
        let () = pipe.query_async(&mut con).await.unwrap();
    }
    let mut writer = broker.connect().await;
    let appending = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for n in 0..200u32 {
            let added: RedisResult<String> = cmd("XADD")
                .arg("source")
                .arg("*")
                .arg("late")
                .arg(n)
                .query_async(&mut writer)
                .await;
            acknowledged.push(added.unwrap());
            tokio::task::yield_now().await;
        }
        acknowledged
    });
    let renamed: RedisResult<String> = cmd("RENAME")
        .arg("source")
        .arg("renamed")
        .query_async(&mut con)
        .await;
    let acknowledged = appending.await.unwrap();
    let mut found: HashSet<String> = ids(&mut con, "source").await.into_iter().collect();
    let moved = ids(&mut con, "renamed").await;
    found.extend(moved.iter().cloned());
    for id in &acknowledged {
        assert!(found.contains(id), "{id} was acknowledged and is gone");
    }
    match renamed {
        // The renamed stream holds every entry the source had when it was deleted.
        Ok(_) => assert!(moved.len() >= 10_000, "{} entries moved", moved.len()),
        Err(error) => assert!(
            error
                .to_string()
                .contains("appended to during every attempt"),
            "{error}"
        ),
    }
    broker.stop().await;
}
