// node-redis (the `redis` package), the Redis client for Node, against the Redis door (run
// by test_node_redis.py with OMNIBUS_REDIS_URL set to a running broker). RESP2 and RESP3
// connections, auto-pipelining, MULTI, streams with a consumer group, pub/sub on its own
// connection, scripts, and its client-side cache (RESP3, CLIENT TRACKING). Each test uses its
// own key names.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import { createClient } from 'redis';

const url = process.env.OMNIBUS_REDIS_URL;
let client;

const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

before(async () => {
  assert.ok(url, 'OMNIBUS_REDIS_URL is set');
  client = createClient({ url });
  await client.connect();
});

after(async () => {
  client.destroy();
});

test('strings with deadlines, a lock, and auto-pipelined commands', async () => {
  const key = unique('session');
  assert.equal(await client.set(key, 'v', { EX: 60 }), 'OK');
  assert.equal(await client.get(key), 'v');
  const ttl = await client.ttl(key);
  assert.ok(ttl > 0 && ttl <= 60, `ttl ${ttl}`);
  const lock = unique('lock');
  assert.equal(await client.set(lock, 't1', { NX: true, PX: 30000 }), 'OK');
  assert.equal(await client.set(lock, 't2', { NX: true, PX: 30000 }), null);
  // Sent in one tick: one pipeline on the wire, answered in order.
  const counter = unique('counter');
  const answers = await Promise.all([
    client.incr(counter),
    client.incrBy(counter, 5),
    client.get(counter),
    client.hSet(unique('h'), { a: '1', b: '2' }),
  ]);
  assert.deepEqual(answers, [1, 6, '6', 2]);
});

test('a transaction answers every queued command', async () => {
  const key = unique('tx');
  const replies = await client.multi().set(key, '1').incr(key).get(key).exec();
  assert.deepEqual(replies, ['OK', 2, '2']);
});

test('a consumer group splits a stream and XAUTOCLAIM takes over', async () => {
  const stream = unique('orders');
  const ids = [];
  for (let n = 0; n < 4; n += 1) {
    ids.push(await client.xAdd(stream, '*', { n: String(n) }));
  }
  assert.equal(await client.xGroupCreate(stream, 'billing', '0'), 'OK');
  const first = await client.xReadGroup('billing', 'w1', { key: stream, id: '>' }, { COUNT: 2 });
  const second = await client.xReadGroup('billing', 'w2', { key: stream, id: '>' }, { COUNT: 2 });
  assert.deepEqual(first[0].messages.map((m) => m.id), ids.slice(0, 2));
  assert.deepEqual(second[0].messages.map((m) => m.id), ids.slice(2));
  assert.equal(await client.xAck(stream, 'billing', ids[0]), 1);
  const claimed = await client.xAutoClaim(stream, 'billing', 'w3', 0, '0-0');
  assert.deepEqual(claimed.messages.map((m) => m.id), ids.slice(1));
  const pending = await client.xPending(stream, 'billing');
  assert.equal(pending.pending, 3);
});

test('pub/sub on a subscriber connection, with a pattern', async () => {
  const subscriber = client.duplicate();
  await subscriber.connect();
  const channel = unique('news');
  const got = [];
  await subscriber.subscribe(channel, (message, from) => got.push([from, message]));
  await subscriber.pSubscribe(`${channel}.*`, (message, from) => got.push([from, message]));
  assert.equal(await client.publish(channel, 'hello'), 1);
  assert.equal(await client.publish(`${channel}.eu`, 'bonjour'), 1);
  for (let wait = 0; wait < 50 && got.length < 2; wait += 1) await sleep(20);
  assert.deepEqual(got, [[channel, 'hello'], [`${channel}.eu`, 'bonjour']]);
  await subscriber.unsubscribe();
  await subscriber.pUnsubscribe();
  subscriber.destroy();
});

test('scripts: EVAL and a script defined once and called by its SHA-1', async () => {
  const key = unique('script');
  assert.equal(await client.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", {
    keys: [key], arguments: ['7'],
  }), 7);
  const sha = await client.scriptLoad("return redis.call('GET', KEYS[1])");
  assert.equal(await client.evalSha(sha, { keys: [key] }), '7');
});

test('RESP3: maps, sets and doubles as node-redis reads them', async () => {
  const resp3 = createClient({ url, RESP: 3 });
  await resp3.connect();
  try {
    const hash = unique('h3');
    await resp3.hSet(hash, { field: 'value' });
    const all = await resp3.hGetAll(hash);
    assert.equal(all.field ?? all.get?.('field'), 'value');
    const zset = unique('z3');
    await resp3.zAdd(zset, { score: 1.5, value: 'm' });
    assert.equal(Number(await resp3.zScore(zset, 'm')), 1.5);
  } finally {
    resp3.destroy();
  }
});

test('the client-side cache: hits stay local, another client\'s write invalidates', async () => {
  const cached = createClient({ url, RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0 } });
  await cached.connect();
  try {
    const key = unique('csc');
    await client.set(key, 'v1');
    assert.equal(await cached.get(key), 'v1');
    assert.equal(await cached.get(key), 'v1');
    const stats = cached.clientSideCache.stats();
    assert.ok(stats.hitCount >= 1, `hits ${stats.hitCount}`);
    await client.set(key, 'v2');
    let value;
    for (let wait = 0; wait < 50; wait += 1) {
      value = await cached.get(key);
      if (value === 'v2') break;
      await sleep(20);
    }
    assert.equal(value, 'v2');
  } finally {
    cached.destroy();
  }
});
