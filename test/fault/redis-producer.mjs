// A producer process for the Redis fault tests: issues COUNT tasks at once with job_queue_size CAP
// and prints one JSON line: the taskids accepted, how many were refused, and any other error.
import { open, QueueFullError } from "../../dist/index.js";
import { createRedisBackend } from "../../dist/backends/redis/index.js";

const { REDIS_URL, NAMESPACE, COUNT = "100", CAP = "20" } = process.env;
const backend = await createRedisBackend(REDIS_URL, { namespace: NAMESPACE, taskRecordTtl: 600, debugChannel: `${NAMESPACE}.debug` });
const js = await open({ backend, worker: false, jobQueueSize: Number(CAP), log: () => {} });
const accepted = [];
const others = [];
let refused = 0;
// Issued one after another in small groups, so that the two producers' pushes interleave.
for (let i = 0; i < Number(COUNT); i += 5) {
  await Promise.all(
    Array.from({ length: 5 }, (_, k) =>
      js.task("work", { ms: 20, i: i + k }, 120).then(
        (id) => accepted.push(id),
        (err) => (err instanceof QueueFullError ? refused++ : others.push(String(err))),
      ),
    ),
  );
}
console.log(JSON.stringify({ accepted, refused, others }));
await js.close();
await backend.close();
