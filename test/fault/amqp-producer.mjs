// A producer process for the AMQP fault tests: issues COUNT tasks at once with job_queue_size CAP
// and prints one JSON line: the taskids accepted, how many were refused, and any other error.
import { open, QueueFullError } from "../../dist/index.js";
import { createAmqpBackend } from "../../dist/backends/amqp/index.js";

const { AMQP_URL, NAMESPACE, COUNT = "100", CAP = "20" } = process.env;
const backend = await createAmqpBackend(AMQP_URL, { namespace: NAMESPACE, taskRecordTtl: 600, debugChannel: `${NAMESPACE}.debug` });
const js = await open({ backend, worker: false, jobQueueSize: Number(CAP), log: () => {} });
const accepted = [];
const others = [];
let refused = 0;
await Promise.all(
  Array.from({ length: Number(COUNT) }, (_, i) =>
    js.task("work", { ms: 100, i }, 120).then(
      (id) => accepted.push(id),
      (err) => (err instanceof QueueFullError ? refused++ : others.push(String(err))),
    ),
  ),
);
console.log(JSON.stringify({ accepted, refused, others }));
await js.close();
await backend.close();
