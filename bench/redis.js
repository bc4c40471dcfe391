// Redis mode against bee-queue and BullMQ on the same Redis, in one run, on the path users take: no-op
// jobs, concurrency 32, TASKS tasks issued BLOCK at a time, then every one awaited (jobshell: task() then
// waitfor(); bee-queue: save() then job.on('succeeded'); BullMQ: add() then job.waitUntilFinished()),
// producer and worker in one process. Beside it: jobshell with its worker in a process of its own (the
// producer runs none), fire-and-forget (every task issued at once, completions counted) with Redis's CPU
// time per task, then task()→waitfor() round trips one at a time.
// Last, with --expose-gc, what 100,000 outstanding waitfor()s cost in Redis mode. jobshell runs scripts
// isolated in its script pool's threads (the default); jobshellInProcess is the same with job_in_process,
// so that what the isolation costs prints as a ratio.
// Run: npm run build && node --expose-gc bench/redis.js   (REDIS_URL, REPEAT=5, TASKS=20000, BLOCK=1000,
//      TRIPS=1000, WARM_TRIPS=3000, WARMUPS=2, SYSTEMS=jobshell,jobshellInProcess,jobshellCross,beeQueue,bullmq:
//      which, in that order, REDIS_WAIT_REPLICAS=0: jobshell's redis_wait_replicas). On a cluster or under
//      Sentinel (REDIS_URL=redis+cluster://... or redis+sentinel://..., see scripts/), run SYSTEMS=jobshell.
// Round trips are measured twice: the first TRIPS right after the throughput runs (cold), and TRIPS more
// after WARM_TRIPS unmeasured ones (warm, the steady state, as the throughput is).
import { randomBytes } from "node:crypto";
import { Queue as BullQueue, QueueEvents, Worker as BullWorker } from "bullmq";
import BeeQueue from "bee-queue";
import { Redis } from "ioredis";
import { deleteRedisNamespace } from "../dist/backends/redis/index.js";
import { open } from "../dist/index.js";
import { issueAndWait, median, percentile, printTable, ratio, spread, startWorkerProcess, waiterMemory } from "./stats.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const repeat = Number(process.env.REPEAT ?? 5);
const tasks = Number(process.env.TASKS ?? 20_000);
const block = Number(process.env.BLOCK ?? 1000);
const trips = Number(process.env.TRIPS ?? 1_000);
const warmTrips = Number(process.env.WARM_TRIPS ?? 3_000);
const warmups = Number(process.env.WARMUPS ?? 2);
const waitReplicas = Number(process.env.REDIS_WAIT_REPLICAS ?? 0);
/** BullMQ's and bee-queue's connection: one server */
const connection = () => {
  const { hostname: host, port } = new URL(url);
  return { host, port: Number(port || 6379) };
};
const unique = (label) => `bench-${label}-${randomBytes(3).toString("hex")}`;
const noop = `- {name: noop, topics: [noop], script: "return"}`;

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

/** jobshell's records, checked: a benchmark that lost one would hang or throw rather than read fast. */
function completed(record) {
  if (record.status !== "completed") throw new Error(`task ${record.taskid} ended ${record.status}`);
}

/** jobshell with its worker in this process; `options` on top (job_in_process). */
async function jobshell(options = {}) {
    const namespace = unique("jobshell");
    const js = await open({ redisUrl: url, redisWaitReplicas: waitReplicas, namespace, jobQueueBulkReadSize: 32, taskRecordTtl: 600, log: () => {}, ...options });
    await js.upload(noop);
    return {
      issueAndWait: (n) => issueAndWait(n, block, () => js.task("noop", {}, 60), (id) => js.waitfor(id, 60).then(completed)),
      async fireAndForget(n) {
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
}

const systems = {
  jobshell: () => jobshell(),

  jobshellInProcess: () => jobshell({ jobInProcess: true }),

  /** A producer that runs no worker, and a worker process. */
  async jobshellCross() {
    const namespace = unique("jobshell-cross");
    const js = await open({ redisUrl: url, redisWaitReplicas: waitReplicas, namespace, worker: false, taskRecordTtl: 600, log: () => {} });
    await js.upload(noop);
    const worker = await startWorkerProcess("redis", url, namespace);
    return {
      issueAndWait: (n) => issueAndWait(n, block, () => js.task("noop", {}, 60), (id) => js.waitfor(id, 60).then(completed)),
      async roundTrip() {
        const began = performance.now();
        await js.waitfor(await js.task("noop", {}, 60), 30);
        return performance.now() - began;
      },
      async close() {
        await worker.stop();
        await js.close();
        await deleteRedisNamespace(url, namespace);
      },
    };
  },

  async beeQueue() {
    const name = unique("bee");
    const queue = new BeeQueue(name, { redis: connection(), removeOnSuccess: true, getEvents: true, sendEvents: true });
    let count = 0;
    queue.on("succeeded", () => count++);
    queue.process(32, async () => undefined);
    await queue.ready();
    // The listener goes on as the job is saved: its end cannot come before.
    const issue = () =>
      queue
        .createJob({})
        .save()
        .then((job) => new Promise((resolve, reject) => (job.on("succeeded", resolve), job.on("failed", reject))))
        .then((ended) => ({ ended }));
    return {
      issueAndWait: (n) => issueAndWait(n, block, issue, ({ ended }) => ended),
      async fireAndForget(n) {
        const before = count;
        const began = performance.now();
        await Promise.all(Array.from({ length: n }, () => queue.createJob({}).save()));
        await until(() => count - before >= n);
        return n / ((performance.now() - began) / 1000);
      },
      async roundTrip() {
        const began = performance.now();
        const { ended } = await issue();
        await ended;
        return performance.now() - began;
      },
      async close() {
        await queue.destroy();
        await queue.close();
      },
    };
  },

  async bullmq() {
    const name = unique("bullmq");
    const queue = new BullQueue(name, { connection: connection(), defaultJobOptions: { removeOnComplete: true } });
    const events = new QueueEvents(name, { connection: connection() });
    // Each waitUntilFinished() listens on both for a while: thousands at once are what this measures.
    queue.setMaxListeners(0);
    events.setMaxListeners(0);
    let count = 0;
    const worker = new BullWorker(name, async () => undefined, { connection: connection(), concurrency: 32 });
    worker.on("completed", () => count++);
    await Promise.all([worker.waitUntilReady(), events.waitUntilReady()]);
    // A job awaited is kept a while once completed: waitUntilFinished() reads it if it ended first.
    const awaited = { removeOnComplete: { age: 600 } };
    return {
      issueAndWait: (n) => issueAndWait(n, block, () => queue.add("noop", {}, awaited), (job) => job.waitUntilFinished(events, 60_000)),
      async fireAndForget(n) {
        const before = count;
        const began = performance.now();
        await Promise.all(Array.from({ length: n }, () => queue.add("noop", {})));
        await until(() => count - before >= n);
        return n / ((performance.now() - began) / 1000);
      },
      async roundTrip() {
        const began = performance.now();
        const job = await queue.add("noop", {}, awaited);
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
};

const chosen = (process.env.SYSTEMS ?? Object.keys(systems).join(",")).split(",");
for (const label of chosen) if (!systems[label]) throw new Error(`SYSTEMS: no system named ${label} (${Object.keys(systems).join(", ")})`);
// All systems open at once and measured in turns (a run of each, then again), so that a slow spell of
// this noisy machine falls on every system alike; the ratios are medians of each round's ratios. An idle
// system costs nothing meanwhile: its workers wait on a blocking call or a subscription.
const opened = {};
for (const label of chosen) opened[label] = await systems[label]();
// Warm-up: every system in its steady state before it is measured.
for (let i = 0; i < warmups; i++) {
  for (const label of chosen) {
    await opened[label].issueAndWait(tasks);
    await opened[label].fireAndForget?.(tasks);
  }
}
// Redis's own CPU time per task in each run (INFO cpu): what a system costs the server.
// One server only: a cluster's or a Sentinel set's CPU is spread over several.
const monitor = /^rediss?:\/\//.test(url) ? new Redis(url) : undefined;
async function redisCpuSeconds() {
  if (!monitor) return NaN;
  const info = await monitor.info("cpu");
  return Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)[1]);
}
const series = () => Object.fromEntries(chosen.map((label) => [label, []]));
const waited = series();
const fired = series();
const redisCpu = series();
const nodeCpu = series();
for (let i = 0; i < repeat; i++) {
  for (const label of chosen) {
    const before = await redisCpuSeconds();
    const cpu = process.cpuUsage();
    waited[label].push(await opened[label].issueAndWait(tasks));
    const used = process.cpuUsage(cpu);
    nodeCpu[label].push((used.user + used.system) / tasks);
    redisCpu[label].push(((await redisCpuSeconds()) - before) * 1e6 / tasks);
    if (opened[label].fireAndForget) fired[label].push(await opened[label].fireAndForget(tasks));
  }
}
monitor?.disconnect();
// Round trips are taken in turns, by blocks of 100, so that no system has its trips all first (coldest).
async function roundTrips(count, into) {
  const turn = 100;
  for (let done = 0; done < count; done += turn) {
    for (const label of chosen) {
      for (let i = done; i < Math.min(count, done + turn); i++) {
        const ms = await opened[label].roundTrip();
        into?.[label].push(ms);
      }
    }
  }
}
const cold = series();
await roundTrips(trips, cold);
await roundTrips(warmTrips);
const warm = series();
await roundTrips(trips, warm);
for (const label of chosen) await opened[label].close();

const perWaiter = globalThis.gc
  ? await (async () => {
      const namespace = unique("waiters");
      const shared = { redisUrl: url, namespace, jobQueueBulkReadSize: 32, jobQueueSize: 200_000, taskRecordTtl: 600, log: () => {} };
      const result = await waiterMemory(
        100_000,
        async () => {
          const js = await open({ ...shared, worker: false });
          await js.upload(noop);
          return {
            js,
            async close() {
              await js.close();
              await deleteRedisNamespace(url, namespace);
            },
          };
        },
        () => open({ ...shared, worker: true }),
      );
      return result;
    })()
  : undefined;

const p = (label, times, q) => percentile(times[label], q);
const has = (...labels) => labels.every((label) => chosen.includes(label));
printTable(
  `Redis at ${url}: ${tasks} no-op tasks issued ${block} at a time then each awaited, concurrency 32, ${repeat} rounds (median, range); ` +
    `fire-and-forget; ${trips} sequential round trips, warm (after ${warmTrips} more) and cold`,
  [
    ...chosen.map((label) => [
      `${label}, issued and awaited`,
      `${spread(waited[label])} tasks/s; CPU a task: Redis ${median(redisCpu[label]).toFixed(1)} µs, this process ${median(nodeCpu[label]).toFixed(1)} µs`,
    ]),
    ...chosen.filter((label) => fired[label].length > 0).map((label) => [`${label}, fire-and-forget`, `${spread(fired[label])} tasks/s`]),
    ...chosen.map((label) => [
      `${label}, round trip`,
      `p50 ${p(label, warm, 50).toFixed(2)} ms, p99 ${p(label, warm, 99).toFixed(2)} ms (cold ${p(label, cold, 50).toFixed(2)}, ${p(label, cold, 99).toFixed(2)})`,
    ]),
    ...(has("jobshell", "beeQueue") ? [["issued and awaited: jobshell / bee-queue", ratio(waited.jobshell, waited.beeQueue)]] : []),
    ...(has("jobshell", "bullmq") ? [["issued and awaited: jobshell / BullMQ", ratio(waited.jobshell, waited.bullmq)]] : []),
    ...(has("jobshell") ? [["jobshell: issued and awaited / fire-and-forget", ratio(waited.jobshell, fired.jobshell)]] : []),
    ...(has("jobshell", "jobshellInProcess")
      ? [
          ["jobshell issued and awaited: isolated / job_in_process", ratio(waited.jobshell, waited.jobshellInProcess)],
          ["jobshell fire-and-forget: isolated / job_in_process", ratio(fired.jobshell, fired.jobshellInProcess)],
        ]
      : []),
    ...(has("jobshell", "jobshellCross") ? [["jobshell issued and awaited: worker in another process / in the same", ratio(waited.jobshellCross, waited.jobshell)]] : []),
    ...(has("jobshell", "beeQueue") ? [["fire-and-forget: jobshell / bee-queue", ratio(fired.jobshell, fired.beeQueue)]] : []),
    ...(has("jobshell", "bullmq") ? [["fire-and-forget: jobshell / BullMQ", ratio(fired.jobshell, fired.bullmq)]] : []),
    ...(has("jobshell", "beeQueue")
      ? [[
          "round trip jobshell / bee-queue p50, p99",
          `${(p("jobshell", warm, 50) / p("beeQueue", warm, 50)).toFixed(2)}, ${(p("jobshell", warm, 99) / p("beeQueue", warm, 99)).toFixed(2)} (cold ${(p("jobshell", cold, 50) / p("beeQueue", cold, 50)).toFixed(2)}, ${(p("jobshell", cold, 99) / p("beeQueue", cold, 99)).toFixed(2)})`,
        ]]
      : []),
    ...(perWaiter
      ? [
          ["100,000 outstanding waitfor()s, Redis mode: heap bytes each", perWaiter.perWaiter.toFixed(0)],
          ["  left per waiter once they timed out / once their tasks ran (bytes)", `${perWaiter.afterTimeout.toFixed(1)} / ${perWaiter.afterResolve.toFixed(1)}`],
        ]
      : [["100,000 outstanding waitfor()s", "run with node --expose-gc to measure"]]),
  ],
);
process.exit(0);
