"""redis-py against the Redis door's geospatial commands, as an application uses them: stores
near a customer (GEOADD, GEOSEARCH by radius and by box, nearest first, with distances and
coordinates); GEODIST and GEOHASH; the older GEORADIUS and GEORADIUSBYMEMBER with STORE and
STOREDIST; the asyncio client and RESP3 (coordinates and distances as redis-py types them);
and a geo set read back identical after kill -9.

Figures asserted here (Palermo–Catania 166.2742 km, their geohashes and positions) are the
ones redis-server answers, as in Redis's own documentation; the differential test compares
every answer byte for byte with a redis-server in CI."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from harness import unique

SICILY = [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def test_stores_near_a_customer(client):
    stores = unique("stores")
    # A small chain around Milan, and one far away.
    chain = {
        "duomo": (9.1900, 45.4642),
        "navigli": (9.1733, 45.4520),
        "brera": (9.1880, 45.4720),
        "isola": (9.1900, 45.4860),
        "bergamo": (9.6773, 45.6983),
        "naples": (14.2681, 40.8518),
    }
    values = [v for name, (lon, lat) in chain.items() for v in (lon, lat, name)]
    assert client.geoadd(stores, values) == 6
    assert client.geoadd(stores, [9.1901, 45.4642, "duomo"], nx=True) == 0
    assert client.geoadd(stores, [9.1901, 45.4642, "duomo"], xx=True, ch=True) == 1

    customer = (9.1859, 45.4654)
    near = client.geosearch(
        stores, longitude=customer[0], latitude=customer[1], radius=3, unit="km",
        sort="ASC", withdist=True,
    )
    assert [name for name, _ in near] == ["duomo", "brera", "navigli", "isola"]
    assert all(isinstance(d, float) for _, d in near)
    assert near == sorted(near, key=lambda item: item[1])
    assert near[0][1] < 0.5 and near[-1][1] < 3

    two = client.geosearch(
        stores, longitude=customer[0], latitude=customer[1], radius=100, unit="km",
        count=2, withcoord=True,
    )
    assert [name for name, _ in two] == ["duomo", "brera"]
    lon, lat = two[0][1]
    assert abs(lon - 9.1901) < 1e-5 and abs(lat - 45.4642) < 1e-5

    boxed = client.geosearch(
        stores, member="duomo", width=100, height=60, unit="km", sort="DESC",
    )
    assert boxed == ["bergamo", "isola", "navigli", "brera", "duomo"]
    assert client.geosearch(stores, member="naples", radius=1, unit="m") == ["naples"]
    with pytest.raises(redis.ResponseError, match="could not decode requested zset member"):
        client.geosearch(stores, member="nowhere", radius=1, unit="km")

    # A geo set is a sorted set.
    assert client.zcard(stores) == 6
    assert client.type(stores) == "zset"
    assert client.zrem(stores, "naples") == 1
    assert client.geopos(stores, "naples") == [None]


def test_distances_hashes_and_positions(client):
    sicily = unique("sicily")
    assert client.geoadd(sicily, SICILY) == 2
    assert client.geodist(sicily, "Palermo", "Catania") == 166274.1516
    assert client.geodist(sicily, "Palermo", "Catania", unit="km") == 166.2742
    assert client.geodist(sicily, "Palermo", "Catania", unit="mi") == 103.3182
    assert client.geodist(sicily, "Palermo", "nowhere") is None
    assert client.geohash(sicily, "Palermo", "Catania", "nowhere") == [
        "sqc8b49rny0", "sqdtr74hyu0", None,
    ]
    assert client.geopos(sicily, "Palermo", "nowhere") == [
        (13.36138933897018433, 38.11555639549629859), None,
    ]
    with pytest.raises(redis.ResponseError, match="invalid longitude,latitude pair"):
        client.geoadd(sicily, [200, 10, "nowhere"])
    with pytest.raises(redis.ResponseError, match="unsupported unit"):
        client.execute_command("GEODIST", sicily, "Palermo", "Catania", "furlong")
    client.set(unique("text"), "x")


def test_georadius_store_and_storedist(client):
    sicily, near, dist = unique("sicily"), unique("near"), unique("dist")
    client.geoadd(sicily, SICILY)
    assert client.georadius(sicily, 15, 37, 200, unit="km", sort="ASC") == ["Catania", "Palermo"]
    assert client.georadius(sicily, 15, 37, 200, unit="km", store=near) == 2
    assert client.zrange(near, 0, -1, withscores=True) == [
        ("Palermo", 3479099956230698.0), ("Catania", 3479447370796909.0),
    ]
    assert client.georadiusbymember(sicily, "Palermo", 200, unit="km", store_dist=dist) == 2
    scored = client.zrange(dist, 0, -1, withscores=True)
    assert [name for name, _ in scored] == ["Palermo", "Catania"]
    assert scored[0][1] == 0 and abs(scored[1][1] - 166.2742) < 1e-4
    assert client.geosearchstore(near, sicily, longitude=15, latitude=37, radius=1, unit="m") == 0
    assert client.exists(near) == 0


@pytest.mark.parametrize("protocol", [2, 3])
def test_asyncio_client_in_both_protocols(redis_url, protocol):
    async def run():
        connection = redis.asyncio.Redis.from_url(
            redis_url, decode_responses=True, protocol=protocol
        )
        try:
            sicily = unique("sicily")
            assert await connection.geoadd(sicily, SICILY) == 2
            found = await connection.geosearch(
                sicily, longitude=15, latitude=37, radius=200, unit="km",
                withdist=True, withcoord=True, withhash=True, sort="ASC",
            )
            assert [item[0] for item in found] == ["Catania", "Palermo"]
            name, distance, score, (lon, lat) = found[0]
            assert (name, distance, score) == ("Catania", 56.4413, 3479447370796909)
            assert abs(lon - 15.087269) < 1e-5 and abs(lat - 37.502669) < 1e-5
            # redis-py gives a pair as a tuple in RESP2 and a list in RESP3.
            positions = [tuple(p) for p in await connection.geopos(sicily, "Palermo")]
            assert positions == [(13.36138933897018433, 38.11555639549629859)]
        finally:
            await connection.aclose()

    asyncio.run(run())


def test_a_geo_set_survives_kill_9(broker, redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    places, stored = unique("places"), unique("stored")
    points = [(round(9.0 + n * 0.01, 6), round(45.0 + (n % 7) * 0.01, 6), f"p{n}") for n in range(200)]
    assert client.geoadd(places, [v for point in points for v in point]) == 200
    assert client.geosearchstore(stored, places, longitude=9.5, latitude=45.03, radius=20,
                                 unit="km", storedist=True) > 0
    before = client.zrange(places, 0, -1, withscores=True)
    kept = client.zrange(stored, 0, -1, withscores=True)
    client.close()

    broker.restart()
    client = redis.Redis.from_url(broker.redis_url, decode_responses=True)
    try:
        assert client.zrange(places, 0, -1, withscores=True) == before
        assert client.zrange(stored, 0, -1, withscores=True) == kept
        assert client.geodist(places, "p0", "p1", unit="km") is not None
    finally:
        client.close()
