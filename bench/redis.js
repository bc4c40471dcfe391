// Redis mode against BullMQ and bee-queue on the same Redis, in one run: no-op jobs, 20k tasks issued
// one call each, concurrency 32, producer and worker in one process; then task()→waitfor() round trips.
// Run: npm run build && node bench/redis.js   (REDIS_URL, REPEAT=5, TASKS=20000, TRIPS=1000,
//      SYSTEMS=jobshell,bullmq,beeQueue: which ones, in that order)
import { randomBytes } from "node:crypto";
import { Queue as BullQueue, QueueEvents, Worker as BullWorker } from "bullmq";
import BeeQueue from "bee-queue";
import { deleteRedisNamespace } from "../dist/backends/redis.js";
import { open } from "../dist/index.js";
import { median, percentile, printTable } from "./stats.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const repeat = Number(process.env.REPEAT ?? 5);
const tasks = Number(process.env.TASKS ?? 20_000);
const trips = Number(process.env.TRIPS ?? 1_000);
const { hostname: host, port } = new URL(url);
const connection = { host, port: Number(port || 6379) };
const unique = (label) => `bench-${label}-${randomBytes(3).toString("hex")}`;

function until(check) {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (check()) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
}

const systems = {
  async jobshell() {
    const namespace = unique("jobshell");
    const js = await open({ redisUrl: url, namespace, jobQueueBulkReadSize: 32, log: () => {} });
    await js.upload(`- {name: noop, topics: [noop], script: "return"}`);
    return {
      async throughput(n) {
        const before = js.metrics.totals().completed;
        const began = performance.now();
        await Promise.all(Array.from({ length: n }, () => js.task("noop", {}, 60)));
        await until(() => js.metrics.totals().completed - before >= n);
        return n / ((performance.now() - began) / 1000);
      },
      async roundTrip() {
        const began = performance.now();
        await js.waitfor(await js.task("noop", {}, 60), 30);
        return performance.now() - began;
      },
      async close() {
        await js.close();
        await deleteRedisNamespace(url, namespace);
      },
    };
  },

  async bullmq() {
    const name = unique("bullmq");
    const queue = new BullQueue(name, { connection, defaultJobOptions: { removeOnComplete: true } });
    const events = new QueueEvents(name, { connection });
    let completed = 0;
    const worker = new BullWorker(name, async () => undefined, { connection, concurrency: 32 });
    worker.on("completed", () => completed++);
    await Promise.all([worker.waitUntilReady(), events.waitUntilReady()]);
    return {
      async throughput(n) {
        const before = completed;
        const began = performance.now();
        await Promise.all(Array.from({ length: n }, () => queue.add("noop", {})));
        await until(() => completed - before >= n);
        return n / ((performance.now() - began) / 1000);
      },
      async roundTrip() {
        const began = performance.now();
        const job = await queue.add("noop", {}, { removeOnComplete: false });
        await job.waitUntilFinished(events, 30_000);
        return performance.now() - began;
      },
      async close() {
        await worker.close();
        await events.close();
        await queue.obliterate({ force: true });
        await queue.close();
      },
    };
  },

  async beeQueue() {
    const name = unique("bee");
    const queue = new BeeQueue(name, { redis: connection, removeOnSuccess: true, getEvents: true, sendEvents: true });
    let completed = 0;
    queue.on("succeeded", () => completed++);
    queue.process(32, async () => undefined);
    await queue.ready();
    return {
      async throughput(n) {
        const before = completed;
        const began = performance.now();
        await Promise.all(Array.from({ length: n }, () => queue.createJob({}).save()));
        await until(() => completed - before >= n);
        return n / ((performance.now() - began) / 1000);
      },
      async roundTrip() {
        const began = performance.now();
        const job = await queue.createJob({}).save();
        await new Promise((resolve, reject) => {
          job.on("succeeded", resolve);
          job.on("failed", reject);
        });
        return performance.now() - began;
      },
      async close() {
        await queue.destroy();
        await queue.close();
      },
    };
  },
};

const chosen = (process.env.SYSTEMS ?? Object.keys(systems).join(",")).split(",");
for (const label of chosen) if (!systems[label]) throw new Error(`SYSTEMS: no system named ${label} (${Object.keys(systems).join(", ")})`);
const results = {};
for (const label of chosen) {
  const system = await systems[label]();
  await system.throughput(tasks); // warm-up: one full run, so every system is measured in its steady state
  const rates = [];
  // Interleaving would be fairer to a noisy machine, but each system keeps its own connections warm.
  for (let i = 0; i < repeat; i++) rates.push(await system.throughput(tasks));
  const times = [];
  for (let i = 0; i < trips; i++) times.push(await system.roundTrip());
  await system.close();
  results[label] = { rate: median(rates), rates, p50: percentile(times, 50), p99: percentile(times, 99) };
}

const { jobshell: js, beeQueue: bee, bullmq } = results;
printTable(`Redis at ${url}: ${tasks} no-op tasks, concurrency 32, median of ${repeat}; ${trips} sequential round trips`, [
  ...Object.entries(results).map(([label, r]) => [
    `${label}`,
    `${Math.round(r.rate)} tasks/s (runs ${r.rates.map((x) => Math.round(x)).join(" ")}), round trip p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`,
  ]),
  ...(js && bee ? [["jobshell / bee-queue throughput", (js.rate / bee.rate).toFixed(2)]] : []),
  ...(js && bullmq ? [["jobshell / BullMQ throughput", (js.rate / bullmq.rate).toFixed(2)]] : []),
  ...(js && bee ? [["jobshell / bee-queue p50, p99", `${(js.p50 / bee.p50).toFixed(2)}, ${(js.p99 / bee.p99).toFixed(2)}`]] : []),
]);
process.exit(0);
