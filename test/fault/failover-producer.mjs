// A producer process for the failover tests: issues COUNT tasks, GROUP at a time, printing "issued <n>"
// as it goes, then one JSON line: the taskids whose task() returned, and the errors of those that
// threw (a failover makes some throw). On Redis (REDIS_URL) with redis_wait_replicas WAIT_REPLICAS;
// on RabbitMQ (AMQP_URL) with amqp_queue_type QUEUE_TYPE.
import { open } from "../../dist/index.js";
import { createRedisBackend } from "../../dist/backends/redis/index.js";
import { createAmqpBackend } from "../../dist/backends/amqp/index.js";

const { REDIS_URL, AMQP_URL, NAMESPACE, COUNT = "3000", GROUP = "20", WAIT_REPLICAS = "0", QUEUE_TYPE = "classic" } = process.env;
const options = { namespace: NAMESPACE, taskRecordTtl: 600, debugChannel: `${NAMESPACE}.debug`, onError: () => {} };
const backend = REDIS_URL
  ? await createRedisBackend(REDIS_URL, { ...options, waitReplicas: Number(WAIT_REPLICAS) })
  : await createAmqpBackend(AMQP_URL, { ...options, queueType: QUEUE_TYPE });
const js = await open({ backend, worker: false, log: () => {} });
const accepted = [];
const others = [];
for (let i = 0; i < Number(COUNT); i += Number(GROUP)) {
  await Promise.all(
    Array.from({ length: Number(GROUP) }, (_, k) =>
      js.task("work", { ms: 5, i: i + k }, 300).then((id) => accepted.push(id), (err) => others.push(`${err.code}: ${err.message}`)),
    ),
  );
  console.log(`issued ${i + Number(GROUP)}`);
}
console.log(JSON.stringify({ accepted, refused: 0, others }));
await js.close();
await backend.close();
