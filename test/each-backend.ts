// The backends the contract suite runs on. A queue mode joins the suite by adding one entry here.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, it } from "vitest";
import type { Backend, BackendOptions } from "../src/backend.js";
import { open, type JobShell, type OpenOptions } from "../src/jobshell.js";
import { MemoryBackend } from "../src/backends/memory.js";

export interface BackendUnderTest {
  name: string;
  /** undefined when the server is there; otherwise what is missing */
  unavailable(): Promise<string | undefined>;
  /** A connection to the queue named by options.namespace: two calls with one namespace are two
   *  processes on the same queue. */
  connect(options: BackendOptions): Promise<Backend>;
  /** Delete everything the namespace left on the server. */
  cleanup?(namespace: string): Promise<void>;
}

/** RabbitMQ for the AMQP mode: AMQP_URL, or the local broker. */
export const amqpUrl = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
/** A Redis Cluster and a Sentinel set of the test run's own: no default, they are started for it. */
export const redisClusterUrl = process.env.REDIS_CLUSTER_URL;
export const redisSentinelUrl = process.env.REDIS_SENTINEL_URL;

/** A Redis deployment at `url`; `variable` says where the URL comes from when it is not set. */
function redisEntry(name: string, url: string | undefined, variable?: string): BackendUnderTest {
  return {
    name,
    unavailable: async () => {
      if (url === undefined) return `no ${variable}`;
      const { RedisConnection } = await import("../src/backends/redis/connection.js");
      const probe = new RedisConnection(url, "jobshell test probe");
      try {
        await probe.connect(() => {});
        return undefined;
      } catch (err) {
        return (err as Error).message;
      } finally {
        probe.client.disconnect();
        probe.subscriber.disconnect();
      }
    },
    connect: async (options) => (await import("../src/backends/redis/index.js")).createRedisBackend(url!, options),
    // Nothing to clean where the deployment was never there (a run outside CI skips its tests).
    cleanup: async (namespace) => {
      if (url !== undefined) await (await import("../src/backends/redis/index.js")).deleteRedisNamespace(url, namespace);
    },
  };
}

const memoryQueues = new Map<string, MemoryBackend>();

export const backends: BackendUnderTest[] = [
  {
    name: "memory",
    unavailable: async () => undefined,
    // One process holds a memory queue: "another process" on it is another JobShell on the same object.
    connect: async (options) => {
      const key = options.namespace ?? "";
      let backend = memoryQueues.get(key);
      if (!backend) memoryQueues.set(key, (backend = new MemoryBackend(options)));
      return backend;
    },
  },
  {
    name: "amqp",
    unavailable: async () => {
      const { AmqpConnection } = await import("../src/backends/amqp/connection.js");
      try {
        const probe = await AmqpConnection.open(amqpUrl, "jobshell test probe");
        await probe.close();
        return undefined;
      } catch (err) {
        return `RabbitMQ at ${amqpUrl}: ${(err as Error).message}`;
      }
    },
    connect: async (options) => (await import("../src/backends/amqp/index.js")).createAmqpBackend(amqpUrl, options),
    cleanup: async (namespace) =>
      (await import("../src/backends/amqp/index.js")).deleteAmqpNamespace(amqpUrl, namespace, `${namespace}.debug`),
  },
  {
    name: "amqp-quorum",
    unavailable: async () => backends.find((b) => b.name === "amqp")!.unavailable(),
    connect: async (options) => (await import("../src/backends/amqp/index.js")).createAmqpBackend(amqpUrl, { ...options, queueType: "quorum" }),
    cleanup: async (namespace) =>
      (await import("../src/backends/amqp/index.js")).deleteAmqpNamespace(amqpUrl, namespace, `${namespace}.debug`),
  },
  redisEntry("redis", redisUrl),
  // Started by scripts/redis-cluster.sh and scripts/redis-sentinel.sh (.ci/run does).
  redisEntry("redis-cluster", redisClusterUrl, "REDIS_CLUSTER_URL (scripts/redis-cluster.sh start)"),
  redisEntry("redis-sentinel", redisSentinelUrl, "REDIS_SENTINEL_URL (scripts/redis-sentinel.sh start)"),
];

/** Delete the keys a test's namespace left in Redis (never the whole database: it is shared). */
export async function deleteRedisNamespace(namespace: string): Promise<void> {
  await (await import("../src/backends/redis/index.js")).deleteRedisNamespace(redisUrl, namespace);
}

export function uniqueNamespace(label: string): string {
  return `jstest-${label}-${randomBytes(4).toString("hex")}`;
}

/** Fail under CI when a server is missing; elsewhere, say so loudly and skip. */
export async function requireServer(backend: BackendUnderTest): Promise<boolean> {
  const missing = await backend.unavailable();
  if (!missing) return true;
  if (process.env.CI) throw new Error(`${backend.name}: required server missing under CI: ${missing}`);
  console.warn(`\n!!! SKIPPING the ${backend.name} tests: ${missing}\n`);
  return false;
}

/** A test that runs only once `ready()` is true: a file's server, found by requireServer (which fails
 *  under CI when it is missing, so only a run outside CI skips). */
export const itWhen =
  (ready: () => boolean, defaultTimeout?: number) =>
  (name: string, fn: () => Promise<void>, timeout = defaultTimeout) =>
    it(name, async (ctx) => {
      if (!ready()) return ctx.skip();
      await fn();
    }, timeout);

/**
 * For a describe() on one backend: checks its server before the tests (requireServer) and closes and
 * cleans up after them whatever `start()` opened. `start()` opens a JobShell on a fresh queue, or on
 * `namespace` (a second process on the same queue), and uploads `yaml` when given.
 */
export function backendSuite(backend: BackendUnderTest) {
  let available = false;
  const namespaces: string[] = [];
  const opened: JobShell[] = [];
  const connections: Backend[] = [];

  beforeAll(async () => {
    available = await requireServer(backend);
  });

  afterAll(async () => {
    await Promise.allSettled(opened.map((js) => js.close()));
    await Promise.allSettled(connections.map((b) => b.close()));
    for (const ns of namespaces) await backend.cleanup?.(ns);
  });

  async function start(options: OpenOptions & { label?: string; yaml?: string | false } = {}) {
    const { label = "t", yaml = false, namespace = uniqueNamespace(label), ...rest } = options;
    if (!namespaces.includes(namespace)) namespaces.push(namespace);
    const b = await backend.connect({
      namespace,
      taskRecordTtl: rest.taskRecordTtl ?? 3600,
      debugChannel: rest.debugChannel ?? `${namespace}.debug`,
      maxAttempts: rest.maxAttempts,
    });
    connections.push(b);
    const logs: { level: string; message: string; job?: string; taskid?: string }[] = [];
    const js = await open({ backend: b, log: (e) => logs.push(e), ...rest });
    opened.push(js);
    if (yaml) await js.upload(yaml, { replace: true });
    return { js, logs, namespace, backend: b };
  }

  return { available: () => available, start };
}
