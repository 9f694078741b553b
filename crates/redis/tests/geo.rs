//! Geospatial commands through the `redis` crate: the drivers-near-a-rider lookup, checked
//! against a haversine computed here over every driver; searches stored with GEOSEARCHSTORE
//! and GEORADIUS … STORE kept across a restart; WATCH on a GEORADIUS destination; COMMAND
//! GETKEYS. Answers byte for byte beside redis-server are checked by
//! `tests/clients/test_redis_differential.py` (the `geo-…` cases and the seeded `geo` family).

#[allow(dead_code)]
mod support;

use omnibus_redis::RedisConfig;
use redis::{cmd, Value};
use support::Broker;

const EARTH_RADIUS_M: f64 = 6_372_797.560_856;

/// Great-circle distance in metres, written here without the door's code.
fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lon1, lat1, lon2, lat2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// A deterministic scatter of `n` drivers within ~0.1° of central Rome.
fn drivers(n: usize) -> Vec<(f64, f64, String)> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let lon = 12.4964 + (next() - 0.5) * 0.2;
            let lat = 41.9028 + (next() - 0.5) * 0.2;
            (lon, lat, format!("driver:{i}"))
        })
        .collect()
}

async fn positions(
    con: &mut redis::aio::MultiplexedConnection,
    key: &str,
    members: &[String],
) -> Vec<(f64, f64)> {
    let answer: Vec<Option<(f64, f64)>> = cmd("GEOPOS")
        .arg(key)
        .arg(members)
        .query_async(con)
        .await
        .unwrap();
    answer
        .into_iter()
        .map(|p| p.expect("a stored driver"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearest_drivers_match_a_haversine_over_all_of_them_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = drivers(2_000);
    let names: Vec<String> = fleet.iter().map(|(_, _, name)| name.clone()).collect();
    let rider = (12.4922, 41.8902); // the Colosseum
    let stored;
    {
        let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
        let mut con = broker.connect().await;
        for chunk in fleet.chunks(500) {
            let mut add = cmd("GEOADD");
            add.arg("drivers");
            for (lon, lat, name) in chunk {
                add.arg(*lon).arg(*lat).arg(name);
            }
            let added: i64 = add.query_async(&mut con).await.unwrap();
            assert_eq!(added, chunk.len() as i64);
        }
        // Where each driver is, as the door keeps it (a 52-bit cell's centre).
        let kept = positions(&mut con, "drivers", &names).await;
        for ((lon, lat, _), (kept_lon, kept_lat)) in fleet.iter().zip(&kept) {
            assert!((lon - kept_lon).abs() < 1e-5 && (lat - kept_lat).abs() < 1e-5);
        }

        // Every driver within 2 km, nearest first, against the distance computed here.
        let near: Vec<(String, String)> = cmd("GEOSEARCH")
            .arg("drivers")
            .arg("FROMLONLAT")
            .arg(rider.0)
            .arg(rider.1)
            .arg("BYRADIUS")
            .arg(2)
            .arg("km")
            .arg("ASC")
            .arg("WITHDIST")
            .query_async(&mut con)
            .await
            .unwrap();
        let mut expected: Vec<(f64, &str)> = kept
            .iter()
            .zip(&names)
            .map(|(&at, name)| (haversine(rider, at), name.as_str()))
            .filter(|(distance, _)| *distance <= 2_000.0)
            .collect();
        expected.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            expected.len() > 50,
            "the scatter puts drivers near the rider"
        );
        assert_eq!(near.len(), expected.len());
        for ((name, distance), (metres, want)) in near.iter().zip(&expected) {
            assert_eq!(name, want);
            let km: f64 = distance.parse().unwrap();
            assert!(
                (km - metres / 1000.0).abs() < 0.000_2,
                "{name}: {km} km, {metres} m"
            );
        }

        // The ten nearest, stored with their distances in metres.
        let count: i64 = cmd("GEOSEARCHSTORE")
            .arg("nearest")
            .arg("drivers")
            .arg("FROMLONLAT")
            .arg(rider.0)
            .arg(rider.1)
            .arg("BYBOX")
            .arg(5)
            .arg(5)
            .arg("km")
            .arg("COUNT")
            .arg(10)
            .arg("STOREDIST")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(count, 10);
        stored = redis::cmd("ZRANGE")
            .arg("nearest")
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async::<Vec<(String, f64)>>(&mut con)
            .await
            .unwrap();
        let names_first: Vec<&str> = expected.iter().take(10).map(|(_, n)| *n).collect();
        let stored_names: Vec<&str> = stored.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(stored_names, names_first);

        let radius: i64 = cmd("GEORADIUSBYMEMBER")
            .arg("drivers")
            .arg(&names[0])
            .arg(500)
            .arg("m")
            .arg("STORE")
            .arg("around:0")
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(radius >= 1, "a driver is within 500 m of itself");
        broker.stop().await;
    }
    let broker = Broker::start_in(dir.path(), RedisConfig::default()).await;
    let mut con = broker.connect().await;
    let again: Vec<(String, f64)> = cmd("ZRANGE")
        .arg("nearest")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(again, stored);
    let kept = positions(&mut con, "drivers", &names[..3]).await;
    for ((lon, lat, _), (kept_lon, kept_lat)) in fleet.iter().zip(&kept) {
        assert!((lon - kept_lon).abs() < 1e-5 && (lat - kept_lat).abs() < 1e-5);
    }
    let around: i64 = cmd("ZCARD")
        .arg("around:0")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(around >= 1);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_georadius_store_is_a_write_to_its_destination() {
    let broker = Broker::start().await;
    let mut con = broker.connect().await;
    let mut watcher = broker.connect().await;
    let _: i64 = cmd("GEOADD")
        .arg("g")
        .arg(13.361389)
        .arg(38.115556)
        .arg("Palermo")
        .query_async(&mut con)
        .await
        .unwrap();
    let keys: Vec<String> = cmd("COMMAND")
        .arg("GETKEYS")
        .arg("GEORADIUS")
        .arg("g")
        .arg(15)
        .arg(37)
        .arg(200)
        .arg("km")
        .arg("STORE")
        .arg("dest")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(keys, vec!["g", "dest"]);

    // A transaction watching the destination fails once a GEORADIUS has stored into it.
    let () = cmd("WATCH")
        .arg("dest")
        .query_async(&mut watcher)
        .await
        .unwrap();
    let stored: i64 = cmd("GEORADIUS")
        .arg("g")
        .arg(15)
        .arg(37)
        .arg(200)
        .arg("km")
        .arg("STORE")
        .arg("dest")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    let () = cmd("MULTI").query_async(&mut watcher).await.unwrap();
    let _: Value = cmd("ZCARD")
        .arg("dest")
        .query_async(&mut watcher)
        .await
        .unwrap();
    let outcome: Value = cmd("EXEC").query_async(&mut watcher).await.unwrap();
    assert_eq!(outcome, Value::Nil, "the watched destination changed");

    // A read-only form refuses STORE, and a geo command on a stream key is refused.
    let refused = cmd("GEORADIUS_RO")
        .arg("g")
        .arg(15)
        .arg(37)
        .arg(200)
        .arg("km")
        .arg("STORE")
        .arg("dest")
        .query_async::<Value>(&mut con)
        .await;
    assert!(refused.unwrap_err().to_string().contains("syntax error"));
    let _: String = cmd("XADD")
        .arg("events")
        .arg("*")
        .arg("f")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    let wrong = cmd("GEOPOS")
        .arg("events")
        .arg("x")
        .query_async::<Value>(&mut con)
        .await;
    assert!(wrong.unwrap_err().to_string().contains("WRONGTYPE"));
    broker.stop().await;
}
