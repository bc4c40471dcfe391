// An AMQP worker process for the isolation fault tests, as `jobshell worker --amqp` runs one but on a
// namespace of its own: `node isolation-worker.mjs` with AMQP_URL, NAMESPACE and JOBS (a folder) in its
// environment. Prints "ready" once it consumes; on SIGTERM it stops gracefully and exits 0.
import { open } from "../../dist/index.js";
import { createAmqpBackend } from "../../dist/backends/amqp/index.js";

const { AMQP_URL, NAMESPACE, JOBS } = process.env;
const backend = await createAmqpBackend(AMQP_URL, {
  namespace: NAMESPACE,
  taskRecordTtl: 600,
  debugChannel: `${NAMESPACE}.debug`,
  maxAttempts: 3,
  onError: (err) => console.error(`queue error: ${err.message}`),
});
const js = await open({ backend, jobs: [JOBS], replaceJobs: true, worker: true, jobScriptTimeout: 2, jobMemoryLimit: 256 });
console.log("ready");
process.on("SIGTERM", async () => {
  await js.close();
  await backend.close();
  process.exit(0);
});
