// amqplib, the AMQP 0-9-1 client for Node, against the AMQP door (run by test_amqplib.py with
// OMNIBUS_AMQP_URL set to a running broker). Each test uses its own queue and exchange names.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import amqp from 'amqplib';

const url = process.env.OMNIBUS_AMQP_URL;
const WAIT_MS = 5000;
let connection;

const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** The next message a consumer on `queue` receives, within WAIT_MS. */
function nextMessage(channel, queue, options = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing on ${queue}`)), WAIT_MS);
    channel
      .consume(queue, (message) => {
        clearTimeout(timer);
        channel.cancel(message.fields.consumerTag).catch(() => {});
        resolve(message);
      }, options)
      .catch(reject);
  });
}

/** basic.get until a message arrives (or WAIT_MS passes). */
async function getOne(channel, queue) {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const message = await channel.get(queue);
    if (message) return message;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`nothing on ${queue}`);
}

before(async () => {
  assert.ok(url, 'OMNIBUS_AMQP_URL is set');
  connection = await amqp.connect(url);
});

after(async () => {
  await connection.close();
});

test('a confirm channel publishes to a topic exchange and properties arrive intact', async () => {
  const channel = await connection.createConfirmChannel();
  const exchange = unique('events');
  const queue = unique('eu');
  await channel.assertExchange(exchange, 'topic', { durable: true });
  await channel.assertQueue(queue, { durable: true });
  await channel.bindQueue(queue, exchange, 'orders.*.eu');
  await new Promise((resolve, reject) => {
    channel.publish(exchange, 'orders.created.eu', Buffer.from('created'), {
      persistent: true,
      contentType: 'text/plain',
      correlationId: 'c-1',
      headers: { tenant: 'acme', n: 3 },
    }, (error) => (error ? reject(error) : resolve()));
  });
  channel.publish(exchange, 'orders.created.us', Buffer.from('elsewhere'));
  await channel.waitForConfirms();
  const message = await getOne(channel, queue);
  assert.equal(message.content.toString(), 'created');
  assert.equal(message.properties.contentType, 'text/plain');
  assert.equal(message.properties.correlationId, 'c-1');
  assert.equal(message.properties.headers.tenant, 'acme');
  assert.equal(message.properties.headers.n, 3);
  assert.equal(message.fields.routingKey, 'orders.created.eu');
  assert.equal(message.fields.exchange, exchange);
  channel.ack(message);
  assert.equal(await channel.get(queue), false);
  await channel.close();
});

test('a fanout exchange copies a message to every bound queue', async () => {
  const channel = await connection.createChannel();
  const exchange = unique('broadcast');
  await channel.assertExchange(exchange, 'fanout', { durable: false });
  const queues = [unique('a'), unique('b'), unique('c')];
  for (const queue of queues) {
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange, '');
  }
  channel.publish(exchange, 'ignored', Buffer.from('everyone'));
  for (const queue of queues) {
    const message = await getOne(channel, queue);
    assert.equal(message.content.toString(), 'everyone');
    channel.ack(message);
  }
  await channel.close();
});

test('prefetch bounds unacknowledged deliveries and a nack requeues redelivered', async () => {
  const channel = await connection.createChannel();
  const queue = unique('work');
  await channel.assertQueue(queue, { durable: true });
  for (let index = 0; index < 4; index += 1) {
    channel.sendToQueue(queue, Buffer.from(String(index)));
  }
  await channel.prefetch(2);
  const held = [];
  const { consumerTag } = await channel.consume(queue, (message) => held.push(message));
  const deadline = Date.now() + WAIT_MS;
  while (held.length < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(held.length, 2, 'prefetch 2 holds two deliveries');
  const first = held[0];
  channel.nack(first, false, true);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(held.length, 3, 'one settled, one more delivered');
  // The requeued message went back to the head of the queue: it is the next one delivered,
  // flagged redelivered.
  assert.equal(held[2].content.toString(), first.content.toString());
  assert.equal(held[2].fields.redelivered, true);
  await channel.cancel(consumerTag);
  for (const message of held.slice(1)) channel.ack(message);
  const remaining = [];
  for (;;) {
    const message = await channel.get(queue, { noAck: true });
    if (!message) break;
    remaining.push(message.content.toString());
  }
  const all = [...remaining, ...held.slice(1).map((m) => m.content.toString())].sort();
  assert.deepEqual(all, ['0', '1', '2', '3']);
  await channel.close();
});

test('a rejected message is dead-lettered with x-death', async () => {
  const channel = await connection.createChannel();
  const dlx = unique('dlx');
  const dead = unique('dead');
  const source = unique('source');
  await channel.assertExchange(dlx, 'fanout', { durable: true });
  await channel.assertQueue(dead, { durable: true });
  await channel.bindQueue(dead, dlx, '');
  await channel.assertQueue(source, { durable: true, deadLetterExchange: dlx });
  channel.sendToQueue(source, Buffer.from('poison'));
  const message = await getOne(channel, source);
  channel.reject(message, false);
  const deadLetter = await nextMessage(channel, dead, { noAck: true });
  assert.equal(deadLetter.content.toString(), 'poison');
  const [death] = deadLetter.properties.headers['x-death'];
  assert.equal(death.reason, 'rejected');
  assert.equal(death.queue, source);
  assert.equal(Number(death.count), 1);
  await channel.close();
});

test('an unroutable mandatory message is returned before its confirm', async () => {
  const channel = await connection.createConfirmChannel();
  const exchange = unique('nowhere');
  await channel.assertExchange(exchange, 'direct', { durable: true });
  const returned = new Promise((resolve) => channel.once('return', resolve));
  await new Promise((resolve, reject) => {
    channel.publish(exchange, 'no-binding', Buffer.from('lost'), { mandatory: true },
      (error) => (error ? reject(error) : resolve()));
  });
  const message = await returned;
  assert.equal(message.content.toString(), 'lost');
  assert.equal(message.fields.replyCode, 312);
  await channel.close();
});

test('direct reply-to carries an RPC reply to the requester', async () => {
  const server = await connection.createChannel();
  const requests = unique('rpc');
  await server.assertQueue(requests, { durable: true });
  await server.consume(requests, (message) => {
    server.sendToQueue(message.properties.replyTo, Buffer.from(message.content.toString().toUpperCase()), {
      correlationId: message.properties.correlationId,
    });
    server.ack(message);
  });
  const client = await connection.createChannel();
  const replies = [];
  await client.consume('amq.rabbitmq.reply-to', (message) => replies.push(message), { noAck: true });
  client.sendToQueue(requests, Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'r-1' });
  const deadline = Date.now() + WAIT_MS;
  while (replies.length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(replies.length, 1, 'one reply');
  assert.equal(replies[0].content.toString(), 'PING');
  assert.equal(replies[0].properties.correlationId, 'r-1');
  await client.close();
  await server.close();
});

test('a passive declare of a missing queue closes only that channel with 404', async () => {
  const channel = await connection.createChannel();
  const closed = new Promise((resolve) => channel.once('error', resolve));
  await assert.rejects(channel.checkQueue(unique('missing')), /404/);
  const error = await closed;
  assert.equal(error.code, 404);
  const other = await connection.createChannel();
  const queue = unique('still');
  await other.assertQueue(queue, { durable: true });
  other.sendToQueue(queue, Buffer.from('ok'));
  const message = await getOne(other, queue);
  assert.equal(message.content.toString(), 'ok');
  other.ack(message);
  await other.close();
});
