// ioredis, the Redis client for Node, against the Redis door (run by test_ioredis.py with
// OMNIBUS_REDIS_URL set to a running broker). Each test uses its own key names.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import { Redis } from 'ioredis';

const url = process.env.OMNIBUS_REDIS_URL;
let redis;

const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;

before(() => {
  assert.ok(url, 'OMNIBUS_REDIS_URL is set');
  redis = new Redis(url, { maxRetriesPerRequest: 1 });
});

after(async () => {
  await redis.quit();
});

test('the idempotency pattern: SETEX, then EXISTS and GET, then expiry', async () => {
  const key = `idempotency:${unique('k')}`;
  assert.equal(await redis.setex(key, 1, 'result'), 'OK');
  assert.equal(await redis.exists(key), 1);
  assert.equal(await redis.get(key), 'result');
  const ttl = await redis.pttl(key);
  assert.ok(ttl > 0 && ttl <= 1000, `pttl ${ttl}`);
  await new Promise((resolve) => setTimeout(resolve, 1200));
  assert.equal(await redis.exists(key), 0);
  assert.equal(await redis.get(key), null);
});

test('a lock with SET NX PX is taken once', async () => {
  const key = `lock:${unique('l')}`;
  assert.equal(await redis.set(key, 'token-1', 'PX', 30000, 'NX'), 'OK');
  assert.equal(await redis.set(key, 'token-2', 'PX', 30000, 'NX'), null);
  assert.equal(await redis.get(key), 'token-1');
});

test('a pipeline and a transaction answer in order', async () => {
  const key = unique('counter');
  const results = await redis.pipeline().incr(key).incrby(key, 5).get(key).exec();
  assert.deepEqual(results, [[null, 1], [null, 6], [null, '6']]);
  const transaction = await redis.multi().decr(key).get(key).exec();
  assert.deepEqual(transaction, [[null, 5], [null, '5']]);
});

test('streams: XADD, XRANGE, and a consumer group with XREADGROUP and XACK', async () => {
  const stream = unique('events');
  const first = await redis.xadd(stream, '*', 'value', 'a', 'kind', 'created');
  const second = await redis.xadd(stream, '*', 'value', 'b');
  assert.match(first, /^\d+-\d+$/);
  const range = await redis.xrange(stream, '-', '+');
  assert.deepEqual(range, [[first, ['value', 'a', 'kind', 'created']], [second, ['value', 'b']]]);
  assert.equal(await redis.xgroup('CREATE', stream, 'workers', '0'), 'OK');
  const read = await redis.xreadgroup('GROUP', 'workers', 'c1', 'COUNT', 10, 'STREAMS', stream, '>');
  assert.equal(read[0][0], stream);
  assert.deepEqual(read[0][1].map(([id]) => id), [first, second]);
  assert.equal(await redis.xack(stream, 'workers', first), 1);
  const pending = await redis.xpending(stream, 'workers');
  assert.equal(pending[0], 1);
  assert.equal(pending[1], second);
});

test('XREAD BLOCK is woken by an XADD from another connection', async () => {
  const stream = unique('blocked');
  await redis.xadd(stream, '*', 'value', 'first');
  const reader = new Redis(url);
  try {
    const waiting = reader.xread('BLOCK', 5000, 'STREAMS', stream, '$');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const id = await redis.xadd(stream, '*', 'value', 'late');
    const result = await waiting;
    assert.equal(result[0][1][0][0], id);
    assert.deepEqual(result[0][1][0][1], ['value', 'late']);
  } finally {
    reader.disconnect();
  }
});

test('pub/sub: a subscriber receives what another connection publishes', async () => {
  const channel = unique('news');
  const subscriber = new Redis(url);
  try {
    const received = new Promise((resolve) => subscriber.on('message', (ch, message) => resolve([ch, message])));
    await subscriber.subscribe(channel);
    assert.equal(await redis.publish(channel, 'hello'), 1);
    assert.deepEqual(await received, [channel, 'hello']);
  } finally {
    subscriber.disconnect();
  }
});

test('errors are Redis errors on the command, and the connection goes on', async () => {
  const key = unique('text');
  await redis.set(key, 'not a number');
  await assert.rejects(redis.incr(key), /value is not an integer/);
  await assert.rejects(redis.call('NOSUCHCOMMAND', 'x'), /unknown command/);
  assert.equal(await redis.ping(), 'PONG');
});
