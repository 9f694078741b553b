// BullMQ throughput against whatever answers on REDIS_URL (Omnibus's Redis door or a
// redis-server): run by scripts/bench-bullmq.sh, not by the test suite. Prints one line:
//   add=<jobs/s> process=<jobs/s>
// add: ADDERS loops each awaiting `queue.add` of a small job in turn, JOBS in all.
// process: one Worker with CONCURRENCY running a processor that returns at once, from the
// moment it starts until every job has completed (each job: a moveToActive and a
// moveToFinished script, which also XADD to the events stream).
import { Queue, Worker } from 'bullmq';

const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
const jobs = Number(process.env.JOBS ?? 5000);
const adders = Number(process.env.ADDERS ?? 8);
const concurrency = Number(process.env.CONCURRENCY ?? 8);

const name = `bench-${Date.now()}`;
const queue = new Queue(name, { connection });
await queue.waitUntilReady();

let next = 0;
const addStarted = performance.now();
await Promise.all(
  Array.from({ length: adders }, async () => {
    while (next < jobs) {
      next += 1;
      await queue.add('job', { n: next }, { removeOnComplete: true });
    }
  }),
);
const addSeconds = (performance.now() - addStarted) / 1000;

let completed = 0;
let worker;
const processStarted = performance.now();
await new Promise((resolve) => {
  worker = new Worker(name, async () => 1, { connection, concurrency });
  worker.on('completed', () => {
    completed += 1;
    if (completed === jobs) resolve();
  });
});
const processSeconds = (performance.now() - processStarted) / 1000;
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
console.log(`add=${Math.round(jobs / addSeconds)} process=${Math.round(jobs / processSeconds)}`);
