// BullMQ, the job-queue library for Node, against the Redis door (run by test_bullmq.py with
// OMNIBUS_REDIS_URL set to a running broker). BullMQ keeps every job in keys and moves it
// with Lua scripts that also XADD to the queue's events stream; QueueEvents reads that stream
// with XREAD BLOCK. Each test uses its own queue.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';

import { FlowProducer, Queue, QueueEvents, Worker } from 'bullmq';

const url = new URL(process.env.OMNIBUS_REDIS_URL ?? 'redis://127.0.0.1:6379');
const connection = {
  host: url.hostname,
  port: Number(url.port),
  // BullMQ's workers block; it asks for this so ioredis never gives up on them.
  maxRetriesPerRequest: null,
};

const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;

/// A queue, its events and the workers started by `body`, all closed at the end.
async function withQueue(body) {
  const name = unique('jobs');
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();
  const workers = [];
  const startWorker = (processor, options = {}) => {
    const worker = new Worker(name, processor, { connection, ...options });
    worker.on('error', (error) => console.error('worker error', error));
    workers.push(worker);
    return worker;
  };
  try {
    await body({ name, queue, events, startWorker });
  } finally {
    await Promise.all(workers.map((worker) => worker.close()));
    await events.close();
    await queue.close();
  }
}

test('jobs added are processed once each, their results kept, and counted', async () => {
  await withQueue(async ({ queue, events, startWorker }) => {
    const total = 60;
    const completedEvents = new Map();
    events.on('completed', ({ jobId, returnvalue }) => completedEvents.set(jobId, returnvalue));
    const added = await Promise.all(
      Array.from({ length: total }, (_, i) => queue.add('double', { i })),
    );
    const seen = [];
    const done = new Promise((resolve) => {
      const worker = startWorker(async (job) => {
        seen.push(job.data.i);
        return job.data.i * 2;
      }, { concurrency: 4 });
      worker.on('completed', () => {
        if (seen.length === total) resolve();
      });
    });
    await done;
    assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i));
    const job = await queue.getJob(added[7].id);
    assert.equal(job.returnvalue, 14);
    assert.ok(job.finishedOn >= job.processedOn, 'finished after it started');
    await waitFor(async () => (await queue.getJobCounts('completed')).completed === total);
    const counts = await queue.getJobCounts();
    assert.equal(counts.completed, total);
    assert.equal(counts.waiting + counts.active + counts.failed, 0);
    // QueueEvents saw every completion through the events stream (XREAD BLOCK).
    await waitFor(() => completedEvents.size === total);
    assert.equal(String(completedEvents.get(added[7].id)), '14');
  });
});

test('a failing job is retried with backoff, then kept as failed with its reason', async () => {
  await withQueue(async ({ queue, events, startWorker }) => {
    const failedEvent = new Promise((resolve) => {
      events.on('failed', ({ jobId, failedReason }) => resolve({ jobId, failedReason }));
    });
    const attempts = [];
    startWorker(async (job) => {
      attempts.push(Date.now());
      throw new Error(`boom ${job.attemptsMade + 1}`);
    });
    const job = await queue.add('fragile', {}, {
      attempts: 3,
      backoff: { type: 'fixed', delay: 200 },
    });
    const { jobId, failedReason } = await failedEvent;
    assert.equal(jobId, job.id);
    assert.equal(failedReason, 'boom 3');
    assert.equal(attempts.length, 3);
    // The retries waited for their backoff (delayed set, then moved back to wait).
    assert.ok(attempts[1] - attempts[0] >= 150, `retried after ${attempts[1] - attempts[0]} ms`);
    const failed = await queue.getJob(job.id);
    assert.equal(failed.attemptsMade, 3);
    assert.equal(await failed.getState(), 'failed');
    assert.equal((await queue.getJobCounts('failed')).failed, 1);
  });
});

test('a delayed job waits its delay, and priorities decide the order', async () => {
  await withQueue(async ({ queue, startWorker }) => {
    const added = Date.now();
    const delayed = await queue.add('later', { kind: 'delayed' }, { delay: 600 });
    assert.equal(await delayed.getState(), 'delayed');
    await queue.add('low', { kind: 'low' }, { priority: 10 });
    await queue.add('high', { kind: 'high' }, { priority: 1 });
    await queue.add('middle', { kind: 'middle' }, { priority: 5 });
    const order = [];
    const processedAt = {};
    await new Promise((resolve) => {
      startWorker(async (job) => {
        order.push(job.data.kind);
        processedAt[job.data.kind] = Date.now();
        if (order.length === 4) resolve();
      }, { concurrency: 1 });
    });
    assert.deepEqual(order.slice(0, 3), ['high', 'middle', 'low']);
    assert.equal(order[3], 'delayed');
    assert.ok(processedAt.delayed - added >= 550, `ran ${processedAt.delayed - added} ms after`);
  });
});

test('progress reported by a worker reaches QueueEvents, and a job can be removed', async () => {
  await withQueue(async ({ queue, events, startWorker }) => {
    const progress = [];
    events.on('progress', ({ data }) => progress.push(data));
    const finished = new Promise((resolve) => events.on('completed', resolve));
    const worker = startWorker(async (job) => {
      for (const step of [25, 50, 100]) {
        await job.updateProgress(step);
      }
      return 'ok';
    });
    const job = await queue.add('steps', {});
    await finished;
    await waitFor(() => progress.length === 3);
    assert.deepEqual(progress, [25, 50, 100]);
    const kept = await queue.getJob(job.id);
    assert.equal(kept.progress, 100);
    await kept.remove();
    assert.equal(await queue.getJob(job.id), undefined);
    // The whole queue goes with obliterate (its worker stopped first: obliterate removes
    // the jobs a worker is running too).
    await worker.close();
    await queue.add('left', {});
    await queue.pause();
    await queue.obliterate({ force: true });
    const counts = await queue.getJobCounts();
    assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 0);
  });
});

test('a job whose worker died is taken over by another once its lock expires', async () => {
  await withQueue(async ({ queue, events, startWorker }) => {
    const stalled = new Promise((resolve) => events.on('stalled', ({ jobId }) => resolve(jobId)));
    let started;
    const running = new Promise((resolve) => { started = resolve; });
    // The first worker takes the job and never finishes it; closed by force, it stops
    // renewing the job's lock, as a worker process killed mid-job would.
    const first = startWorker(async () => {
      started();
      await new Promise(() => {});
    }, { lockDuration: 1000, stalledInterval: 1000 });
    const job = await queue.add('long', {});
    await running;
    await first.close(true);
    const completed = new Promise((resolve) => {
      const second = startWorker(async () => 'recovered', {
        lockDuration: 1000,
        stalledInterval: 300,
      });
      second.on('completed', (done) => resolve(done));
    });
    const done = await completed;
    assert.equal(done.id, job.id);
    assert.equal(done.returnvalue, 'recovered');
    assert.equal(await stalled, job.id);
  });
});

test('a job scheduler repeats its job, and stops once removed', async () => {
  await withQueue(async ({ queue, startWorker }) => {
    await queue.upsertJobScheduler('tick', { every: 300 }, { name: 'tick', data: { x: 1 } });
    assert.equal((await queue.getJobSchedulers()).length, 1);
    let runs = 0;
    startWorker(async (job) => {
      assert.equal(job.data.x, 1);
      runs += 1;
    });
    await waitFor(() => runs >= 3);
    assert.equal(await queue.removeJobScheduler('tick'), true);
    assert.equal((await queue.getJobSchedulers()).length, 0);
  });
});

test('a flow runs its children first and hands their results to the parent', async () => {
  await withQueue(async ({ name, startWorker }) => {
    const flow = new FlowProducer({ connection });
    try {
      const tree = await flow.add({
        name: 'parent',
        queueName: name,
        data: {},
        children: [
          { name: 'child', queueName: name, data: { v: 1 } },
          { name: 'child', queueName: name, data: { v: 2 } },
        ],
      });
      assert.equal(await tree.job.getState(), 'waiting-children');
      const order = [];
      let childrenValues;
      startWorker(async (job) => {
        order.push(job.name);
        if (job.name === 'parent') {
          childrenValues = await job.getChildrenValues();
          return 'done';
        }
        return job.data.v * 10;
      });
      await waitFor(() => order.length === 3);
      assert.deepEqual(order, ['child', 'child', 'parent']);
      assert.deepEqual(Object.values(childrenValues).sort(), [10, 20]);
    } finally {
      await flow.close();
    }
  });
});

test('a rate-limited worker takes at most its share per window', async () => {
  await withQueue(async ({ queue, startWorker }) => {
    await queue.addBulk(Array.from({ length: 6 }, (_, i) => ({ name: 'limited', data: { i } })));
    const started = Date.now();
    const times = [];
    startWorker(async () => {
      times.push(Date.now() - started);
    }, { limiter: { max: 2, duration: 500 } });
    await waitFor(() => times.length === 6);
    // Two per 500 ms window: the fifth and sixth job wait for the third window.
    assert.ok(times[4] >= 900, `jobs ran at ${times} ms`);
  });
});

test('a deduplicated job is added once, and drain empties the queue', async () => {
  await withQueue(async ({ queue }) => {
    const first = await queue.add('once', {}, { deduplication: { id: 'same' } });
    const second = await queue.add('once', {}, { deduplication: { id: 'same' } });
    assert.equal(second.id, first.id);
    assert.equal(await queue.getWaitingCount(), 1);
    await queue.add('other', {});
    assert.equal((await queue.getJobs(['waiting'])).length, 2);
    await queue.drain();
    assert.equal(await queue.getWaitingCount(), 0);
  });
});

async function waitFor(check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
