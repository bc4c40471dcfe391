// Redis mode against BullMQ and bee-queue on the same Redis, in one run: no-op jobs, 20k tasks issued
// one call each, concurrency 32, producer and worker in one process, with Redis's CPU time per task; then
// task()→waitfor() round trips.
// Run: npm run build && node bench/redis.js   (REDIS_URL, REPEAT=5, TASKS=20000, TRIPS=1000,
//      WARM_TRIPS=3000, WARMUPS=3, SYSTEMS=jobshell,bullmq,beeQueue: which ones, in that order,
//      REDIS_WAIT_REPLICAS=0: jobshell's redis_wait_replicas). On a cluster or under Sentinel
//      (REDIS_URL=redis+cluster://... or redis+sentinel://..., see scripts/), run SYSTEMS=jobshell.
// Round trips are measured twice: the first TRIPS right after the throughput runs (cold), and TRIPS more
// after WARM_TRIPS unmeasured ones (warm, the steady state, as the throughput is). The ratios are of the
// warm ones.
import { randomBytes } from "node:crypto";
import { Queue as BullQueue, QueueEvents, Worker as BullWorker } from "bullmq";
import BeeQueue from "bee-queue";
import { Redis } from "ioredis";
import { deleteRedisNamespace } from "../dist/backends/redis/index.js";
import { open } from "../dist/index.js";
import { median, percentile, printTable } from "./stats.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const repeat = Number(process.env.REPEAT ?? 5);
const tasks = Number(process.env.TASKS ?? 20_000);
const trips = Number(process.env.TRIPS ?? 1_000);
const warmTrips = Number(process.env.WARM_TRIPS ?? 3_000);
const warmups = Number(process.env.WARMUPS ?? 3);
const waitReplicas = Number(process.env.REDIS_WAIT_REPLICAS ?? 0);
/** BullMQ's and bee-queue's connection: one server */
const connection = () => {
  const { hostname: host, port } = new URL(url);
  return { host, port: Number(port || 6379) };
};
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
    const js = await open({ redisUrl: url, redisWaitReplicas: waitReplicas, namespace, jobQueueBulkReadSize: 32, log: () => {} });
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
    const queue = new BullQueue(name, { connection: connection(), defaultJobOptions: { removeOnComplete: true } });
    const events = new QueueEvents(name, { connection: connection() });
    let completed = 0;
    const worker = new BullWorker(name, async () => undefined, { connection: connection(), concurrency: 32 });
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
    const queue = new BeeQueue(name, { redis: connection(), removeOnSuccess: true, getEvents: true, sendEvents: true });
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
// All systems open at once and measured in turns (a run of each, then again), so that a slow spell of
// this noisy machine falls on every system alike; the ratios are medians of each round's ratios. An idle
// system costs nothing meanwhile: its workers wait on a blocking call or a subscription.
const opened = {};
for (const label of chosen) opened[label] = await systems[label]();
// Warm-up: every system in its steady state before it is measured. jobshell's first full-size runs
// after it starts are slower than those that follow; the peers' are not.
for (let i = 0; i < warmups; i++) for (const label of chosen) await opened[label].throughput(tasks);
// Redis's own CPU time per task in each run (INFO cpu): what a system costs the server. The machine's
// slow spells raise it too, which is why the table shows the median and every round.
// One server only: a cluster's or a Sentinel set's CPU is spread over several.
const single = /^rediss?:\/\//.test(url);
const monitor = single ? new Redis(url) : undefined;
async function redisCpuSeconds() {
  if (!monitor) return NaN;
  const info = await monitor.info("cpu");
  return Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)[1]);
}
const rates = Object.fromEntries(chosen.map((label) => [label, []]));
const redisCpu = Object.fromEntries(chosen.map((label) => [label, []]));
for (let i = 0; i < repeat; i++) {
  for (const label of chosen) {
    const before = await redisCpuSeconds();
    rates[label].push(await opened[label].throughput(tasks));
    redisCpu[label].push(((await redisCpuSeconds()) - before) * 1e6 / tasks);
  }
}
monitor?.disconnect();
// Round trips are taken in turns, by blocks of 100, so that no system has its trips all first (coldest).
async function roundTrips(count, into) {
  const block = 100;
  for (let done = 0; done < count; done += block) {
    for (const label of chosen) {
      for (let i = done; i < Math.min(count, done + block); i++) {
        const ms = await opened[label].roundTrip();
        into?.[label].push(ms);
      }
    }
  }
}
const cold = Object.fromEntries(chosen.map((label) => [label, []]));
await roundTrips(trips, cold);
await roundTrips(warmTrips);
const warm = Object.fromEntries(chosen.map((label) => [label, []]));
await roundTrips(trips, warm);
for (const label of chosen) await opened[label].close();

const p = (label, times, q) => percentile(times[label], q);
const ratio = (a, b, series = rates) => {
  const rounds = series[a].map((value, i) => value / series[b][i]);
  return `${median(rounds).toFixed(2)} (rounds ${rounds.map((r) => r.toFixed(2)).join(" ")})`;
};
const has = (label) => chosen.includes(label);
printTable(`Redis at ${url}${waitReplicas > 0 ? ` (redis_wait_replicas ${waitReplicas})` : ""}: ${tasks} no-op tasks, concurrency 32, ${repeat} rounds; ${trips} sequential round trips, warm (after ${warmTrips} more) and cold`, [
  ...chosen.map((label) => [
    label,
    `${Math.round(median(rates[label]))} tasks/s (runs ${rates[label].map((x) => Math.round(x)).join(" ")}), ${single ? `Redis CPU ${median(redisCpu[label]).toFixed(1)} µs a task, ` : ""}round trip p50 ${p(label, warm, 50).toFixed(2)} ms, p99 ${p(label, warm, 99).toFixed(2)} ms (cold ${p(label, cold, 50).toFixed(2)}, ${p(label, cold, 99).toFixed(2)})`,
  ]),
  ...(has("jobshell") && has("beeQueue") ? [["jobshell / bee-queue throughput", ratio("jobshell", "beeQueue")]] : []),
  ...(has("jobshell") && has("bullmq") ? [["jobshell / BullMQ throughput", ratio("jobshell", "bullmq")]] : []),
  ...(has("jobshell") && has("beeQueue") ? [["bee-queue / jobshell Redis CPU a task", ratio("beeQueue", "jobshell", redisCpu)]] : []),
  ...(has("jobshell") && has("bullmq") ? [["BullMQ / jobshell Redis CPU a task", ratio("bullmq", "jobshell", redisCpu)]] : []),
  ...(has("jobshell") && has("beeQueue")
    ? [[
        "jobshell / bee-queue p50, p99",
        `${(p("jobshell", warm, 50) / p("beeQueue", warm, 50)).toFixed(2)}, ${(p("jobshell", warm, 99) / p("beeQueue", warm, 99)).toFixed(2)} (cold ${(p("jobshell", cold, 50) / p("beeQueue", cold, 50)).toFixed(2)}, ${(p("jobshell", cold, 99) / p("beeQueue", cold, 99)).toFixed(2)})`,
      ]]
    : []),
]);
process.exit(0);
