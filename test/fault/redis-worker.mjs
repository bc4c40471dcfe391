// A worker process for the Redis fault tests: `node redis-worker.mjs` with REDIS_URL, NAMESPACE,
// BULK, HEARTBEAT (seconds) and WAIT_REPLICAS (redis_wait_replicas, 0 unless given) in its environment. Prints "ready <worker id>" once it takes tasks;
// on SIGTERM it stops gracefully (held tasks finish) and exits 0. With ISSUE=n it also issues n tasks
// one after another, as a shell with its own worker does (its idle worker claims them), then prints
// "issued " and a JSON line: the taskids accepted, and the errors of the task() calls that failed.
import { open } from "../../dist/index.js";
import { createRedisBackend } from "../../dist/backends/redis/index.js";

const { REDIS_URL, NAMESPACE, BULK = "32", HEARTBEAT = "3", ISSUE = "0", WAIT_REPLICAS = "0" } = process.env;
const backend = await createRedisBackend(REDIS_URL, {
  namespace: NAMESPACE,
  taskRecordTtl: 600,
  debugChannel: `${NAMESPACE}.debug`,
  heartbeatTtl: Number(HEARTBEAT),
  waitReplicas: Number(WAIT_REPLICAS),
  onError: (err) => console.error(`queue error: ${err.message}`),
});
const js = await open({ backend, worker: true, jobQueueBulkReadSize: Number(BULK), log: () => {} });
console.log(`ready ${backend.workerId}`);
if (Number(ISSUE) > 0) {
  const accepted = [];
  const others = [];
  for (let i = 0; i < Number(ISSUE); i++) {
    await js.task("work", { ms: 2, i }, 120).then((id) => accepted.push(id), (err) => others.push(String(err)));
  }
  console.log(`issued ${JSON.stringify({ accepted, refused: 0, others })}`);
}
process.on("SIGTERM", async () => {
  await js.close();
  await backend.close();
  process.exit(0);
});
