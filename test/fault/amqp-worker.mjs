// A worker process for the AMQP fault tests: `node amqp-worker.mjs` with AMQP_URL, NAMESPACE,
// CONNECTION_NAME, BULK and QUEUE_TYPE (amqp_queue_type, classic unless given) in its environment. Prints "ready" once it consumes; on SIGTERM it
// stops gracefully (held tasks finish, unstarted ones go back) and exits 0.
import { open } from "../../dist/index.js";
import { createAmqpBackend } from "../../dist/backends/amqp/index.js";

const { AMQP_URL, NAMESPACE, CONNECTION_NAME, BULK = "8", QUEUE_TYPE = "classic" } = process.env;
const backend = await createAmqpBackend(AMQP_URL, {
  namespace: NAMESPACE,
  taskRecordTtl: 600,
  debugChannel: `${NAMESPACE}.debug`,
  connectionName: CONNECTION_NAME,
  queueType: QUEUE_TYPE,
  onError: (err) => console.error(`queue error: ${err.message}`),
});
const js = await open({ backend, worker: true, jobQueueBulkReadSize: Number(BULK), log: () => {} });
console.log("ready");
process.on("SIGTERM", async () => {
  await js.close();
  await backend.close();
  process.exit(0);
});
