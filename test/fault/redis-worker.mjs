// A worker process for the Redis fault tests: `node redis-worker.mjs` with REDIS_URL, NAMESPACE,
// BULK and HEARTBEAT (seconds) in its environment. Prints "ready <worker id>" once it takes tasks;
// on SIGTERM it stops gracefully (held tasks finish) and exits 0.
import { open } from "../../dist/index.js";
import { createRedisBackend } from "../../dist/backends/redis.js";

const { REDIS_URL, NAMESPACE, BULK = "32", HEARTBEAT = "3" } = process.env;
const backend = await createRedisBackend(REDIS_URL, {
  namespace: NAMESPACE,
  taskRecordTtl: 600,
  debugChannel: `${NAMESPACE}.debug`,
  heartbeatTtl: Number(HEARTBEAT),
  onError: (err) => console.error(`queue error: ${err.message}`),
});
const js = await open({ backend, worker: true, jobQueueBulkReadSize: Number(BULK), log: () => {} });
console.log(`ready ${backend.workerId}`);
process.on("SIGTERM", async () => {
  await js.close();
  await backend.close();
  process.exit(0);
});
