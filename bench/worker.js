// A worker process for the cross-process benchmarks: runs the no-op job of a shared queue until its
// stdin closes. `node bench/worker.js redis|amqp URL NAMESPACE [REDIS_WAIT_REPLICAS]`; prints "ready" once
// it takes tasks.
import { open } from "../dist/index.js";

const [mode, url, namespace, waitReplicas = "0"] = process.argv.slice(2);
const where = mode === "amqp" ? { amqpUrl: url, debugChannel: `${namespace}.debug` } : { redisUrl: url, redisWaitReplicas: Number(waitReplicas) };
const js = await open({ ...where, namespace, jobQueueBulkReadSize: 32, taskRecordTtl: 600, log: () => {} });
process.stdout.write("ready\n");
process.stdin.resume();
process.stdin.on("end", async () => {
  await js.close();
  process.exit(0);
});
