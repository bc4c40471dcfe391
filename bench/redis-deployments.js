// What each Redis deployment's guarantee costs on the issue-and-wait path, in one run: one server,
// a Redis Cluster, the cluster with redis_wait_replicas 1, and (if given) a Sentinel-run master with
// redis_wait_replicas 1. Each with its worker in the producer's process and in a process of its own
// (a waiter there hears ends on the ended channel). No-op tasks, concurrency 32, TASKS issued BLOCK at
// a time then each awaited; then TRIPS sequential round trips. Measured in turns, a round of every
// deployment then again, so that a slow spell falls on all alike; ratios are to one server, per round.
// Run: npm run build && REDIS_CLUSTER_URL=$(scripts/redis-cluster.sh start DIR) node bench/redis-deployments.js
//      (REDIS_URL, REDIS_SENTINEL_URL, TASKS=5000, BLOCK=1000, ROUNDS=3, TRIPS=300)
import { randomBytes } from "node:crypto";
import { deleteRedisNamespace } from "../dist/backends/redis/index.js";
import { open } from "../dist/index.js";
import { issueAndWait, percentile, printTable, ratio, spread, startWorkerProcess } from "./stats.js";

const single = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const cluster = process.env.REDIS_CLUSTER_URL;
const sentinel = process.env.REDIS_SENTINEL_URL;
if (!cluster) throw new Error("REDIS_CLUSTER_URL: the cluster to measure (scripts/redis-cluster.sh start prints it)");
const tasks = Number(process.env.TASKS ?? 5000);
const block = Number(process.env.BLOCK ?? 1000);
const rounds = Number(process.env.ROUNDS ?? 3);
const trips = Number(process.env.TRIPS ?? 300);
const noop = `- {name: noop, topics: [noop], script: "return"}`;

const deployments = [
  { label: "one server", url: single, waitReplicas: 0 },
  { label: "cluster", url: cluster, waitReplicas: 0 },
  { label: "cluster, redis_wait_replicas 1", url: cluster, waitReplicas: 1 },
  ...(sentinel ? [{ label: "Sentinel, redis_wait_replicas 1", url: sentinel, waitReplicas: 1 }] : []),
];

/** A producer on a queue of its own; its worker in this process, or (`cross`) in another. */
async function openPath({ url, waitReplicas }, cross) {
  const namespace = `bench-deploy-${randomBytes(3).toString("hex")}`;
  const js = await open({ redisUrl: url, redisWaitReplicas: waitReplicas, namespace, worker: !cross, jobQueueBulkReadSize: 32, taskRecordTtl: 600, log: () => {} });
  await js.upload(noop);
  const worker = cross ? await startWorkerProcess("redis", url, namespace, waitReplicas) : undefined;
  const wait = (id) =>
    js.waitfor(id, 60).then((r) => {
      if (r.status !== "completed") throw new Error(`task ${r.taskid} ended ${r.status}`);
    });
  return {
    issueAndWait: (n) => issueAndWait(n, block, () => js.task("noop", {}, 60), wait),
    async roundTrip() {
      const began = performance.now();
      await wait(await js.task("noop", {}, 60));
      return performance.now() - began;
    },
    async close() {
      await worker?.stop();
      await js.close();
      await deleteRedisNamespace(url, namespace);
    },
  };
}

const paths = [
  { label: "worker in the same process", cross: false },
  { label: "worker in another process", cross: true },
];
const runs = deployments.flatMap((deployment) => paths.map((path) => ({ deployment, path, rates: [], trips: [] })));
for (const run of runs) run.opened = await openPath(run.deployment, run.path.cross);
for (const run of runs) await run.opened.issueAndWait(tasks); // warm-up
for (let i = 0; i < rounds; i++) {
  for (const run of runs) run.rates.push(await run.opened.issueAndWait(tasks));
}
for (let done = 0; done < trips; done += 50) {
  for (const run of runs) for (let k = 0; k < 50; k++) run.trips.push(await run.opened.roundTrip());
}
for (const run of runs) await run.opened.close();

const baseline = (run) => runs.find((r) => r.deployment === deployments[0] && r.path === run.path);
printTable(
  `${tasks} no-op tasks issued ${block} at a time then each awaited, ${rounds} rounds (median, range); ${trips} sequential round trips`,
  runs.map((run) => [
    `${run.deployment.label}, ${run.path.label}`,
    `${spread(run.rates)} tasks/s, ${ratio(run.rates, baseline(run).rates)} of one server; ` +
      `round trip p50 ${percentile(run.trips, 50).toFixed(2)} ms, p99 ${percentile(run.trips, 99).toFixed(2)} ms`,
  ]),
);
process.exit(0);
