// BullMQ across a kill -9 of the broker, driven by test_bullmq.py (not node's test runner):
//   node bullmq-kill9.mjs add QUEUE     adds jobs from 4 loops until the broker goes away,
//                                       printing each acknowledged job's id on its own line;
//   node bullmq-kill9.mjs check QUEUE   prints one JSON line: the ids waiting, then the ids a
//                                       Worker processed (each job once) until none is left.
import { Queue, Worker } from 'bullmq';

const [mode, name] = process.argv.slice(2);
const url = new URL(process.env.OMNIBUS_REDIS_URL);
const connection = { host: url.hostname, port: Number(url.port) };

if (mode === 'add') {
  // Fail fast once the broker is gone: no retries, no offline queue.
  const queue = new Queue(name, {
    connection: { ...connection, maxRetriesPerRequest: 0, enableOfflineQueue: false },
  });
  queue.on('error', () => {});
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (;;) {
      next += 1;
      let job;
      try {
        job = await queue.add('survivor', { n: next });
      } catch {
        return;
      }
      process.stdout.write(`${job.id}\n`);
    }
  }));
  process.exit(0);
} else {
  const blocking = { ...connection, maxRetriesPerRequest: null };
  const queue = new Queue(name, { connection: blocking });
  const waiting = (await queue.getJobs(['waiting'], 0, -1)).map((job) => job.id);
  const processed = [];
  const worker = new Worker(name, async (job) => { processed.push(job.id); }, {
    connection: blocking,
    concurrency: 8,
  });
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed');
    if (counts.waiting + counts.active + counts.delayed === 0) break;
  }
  await worker.close();
  await queue.close();
  console.log(JSON.stringify({ waiting, processed }));
  process.exit(0);
}
